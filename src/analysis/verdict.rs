//! Classifies a measurement as cpu-bound, io-bound, mixed or idle, with a confidence.

use serde::{Deserialize, Serialize};

use super::accountant::TimeSplit;
use super::wait_kind::WaitKind;
pub use crate::profile::Thresholds;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadClass {
    CpuBound,
    IoBound,
    Mixed,
    Idle,
}

impl WorkloadClass {
    pub fn name(self) -> &'static str {
        match self {
            WorkloadClass::CpuBound => "cpu-bound",
            WorkloadClass::IoBound => "io-bound",
            WorkloadClass::Mixed => "mixed",
            WorkloadClass::Idle => "idle",
        }
    }
}

/// Shares (0..1) by what the tree was doing, from the wall split. `runqueue` is a share of the
/// whole wall time; the others are shares of the program's own time (the wall time less the
/// run-queue wait), so a busy machine does not change what kind of program it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct WallShares {
    /// On a CPU.
    pub computing: f64,
    /// Runnable, but held off the CPU by a cgroup's quota.
    #[serde(default)]
    pub throttled: f64,
    /// Ready to run but waiting for a CPU (other load on the machine, or more threads than cores).
    pub runqueue: f64,
    /// Disk, network, IPC, paging.
    pub io: f64,
    pub lock: f64,
    /// Timers, event loops with nothing to do, terminal input.
    pub idle: f64,
    pub child: f64,
    /// Other and unknown waits.
    pub other: f64,
    pub unknown: f64,
}

impl WallShares {
    pub fn from_wall(wall: &TimeSplit) -> Self {
        let all = wall.total_ns();
        let total = all - wall.runqueue_ns;
        if total <= 0.0 || all <= 0.0 {
            return WallShares::default();
        }
        let sum = |pred: fn(WaitKind) -> bool| -> f64 {
            WaitKind::ALL
                .into_iter()
                .filter(|k| pred(*k))
                .map(|k| wall.wait(k))
                .sum::<f64>()
                / total
        };
        WallShares {
            computing: wall.cpu_ns / total,
            throttled: wall.wait(WaitKind::Throttled) / total,
            runqueue: wall.runqueue_ns / all,
            io: sum(WaitKind::is_io),
            lock: sum(|k| k == WaitKind::Lock),
            idle: sum(WaitKind::is_idle),
            child: sum(|k| k == WaitKind::Child),
            other: sum(|k| matches!(k, WaitKind::Other | WaitKind::Unknown)),
            unknown: sum(|k| k == WaitKind::Unknown),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub class: WorkloadClass,
    pub confidence: f64,
    pub shares: WallShares,
    /// The wait kind with the most wall time, if the tree waited at all.
    pub dominant_wait: Option<WaitKind>,
    /// Fewer than `ENOUGH_TICKS` samples: too few to judge reliably.
    pub too_short: bool,
}

/// Below this many ticks (half a second at 100 Hz) the measurement is too short to judge
/// reliably: the confidence grows with the ticks up to this many, and stays at most
/// `TOO_SHORT_CONFIDENCE` below it.
pub const ENOUGH_TICKS: u64 = 50;
const TOO_SHORT_CONFIDENCE: f64 = 0.5;

/// The class of the workload from its wall split (already reconciled with the kernel's totals).
pub fn classify(wall: &TimeSplit, ticks: u64) -> Verdict {
    classify_with(wall, ticks, &Thresholds::default())
}

pub fn classify_with(wall: &TimeSplit, ticks: u64, thresholds: &Thresholds) -> Verdict {
    let shares = WallShares::from_wall(wall);
    let dominant_wait = wall.dominant_wait();
    // Time held off the CPU by a quota is time the program wanted to compute.
    let wants_cpu = shares.computing + shares.throttled;
    let (class, strength) = if wants_cpu >= thresholds.cpu_bound_share {
        (WorkloadClass::CpuBound, wants_cpu)
    } else if shares.io >= thresholds.io_bound_share && shares.io > shares.computing {
        (WorkloadClass::IoBound, shares.io)
    } else if shares.idle >= thresholds.idle_share {
        (WorkloadClass::Idle, shares.idle)
    } else if wants_cpu + shares.io + shares.lock + shares.unknown < 0.2 {
        // Hardly any work and hardly any I/O: waiting on timers or children.
        (WorkloadClass::Idle, 1.0 - shares.computing - shares.io)
    } else {
        // Neither side dominates (or the waits could not be read): the strength is how much
        // of the wall the measured work explains.
        (
            WorkloadClass::Mixed,
            shares.computing + shares.io + shares.lock,
        )
    };
    let too_short = ticks < ENOUGH_TICKS;
    let thin = (ticks as f64 / ENOUGH_TICKS as f64).min(1.0);
    let mut confidence = (strength * (1.0 - shares.unknown) * thin).clamp(0.0, 1.0);
    if too_short {
        confidence = confidence.min(TOO_SHORT_CONFIDENCE);
    }
    Verdict {
        class,
        confidence: (confidence * 100.0).round() / 100.0,
        shares,
        dominant_wait,
        too_short,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_from_clear_splits() {
        let v = classify(&TimeSplit::with_waits(95.0, &[(WaitKind::Sleep, 5.0)]), 100);
        assert_eq!(v.class, WorkloadClass::CpuBound);
        assert!(v.confidence > 0.9);
        let v = classify(
            &TimeSplit::with_waits(5.0, &[(WaitKind::Network, 95.0)]),
            100,
        );
        assert_eq!(v.class, WorkloadClass::IoBound);
        assert_eq!(v.dominant_wait, Some(WaitKind::Network));
        let v = classify(&TimeSplit::with_waits(1.0, &[(WaitKind::Sleep, 99.0)]), 100);
        assert_eq!(v.class, WorkloadClass::Idle);
        let v = classify(
            &TimeSplit::with_waits(45.0, &[(WaitKind::Disk, 40.0), (WaitKind::Sleep, 15.0)]),
            100,
        );
        assert_eq!(v.class, WorkloadClass::Mixed);
    }

    #[test]
    fn unknown_waits_and_few_ticks_lower_confidence() {
        let known = classify(
            &TimeSplit::with_waits(10.0, &[(WaitKind::Sleep, 90.0)]),
            100,
        );
        let unknown = classify(
            &TimeSplit::with_waits(10.0, &[(WaitKind::Unknown, 90.0)]),
            100,
        );
        assert!(unknown.confidence < known.confidence);
        let thin = classify(&TimeSplit::with_waits(100.0, &[]), 2);
        assert!(thin.confidence <= 0.1);
        assert!(thin.too_short);
        // Just short of enough: capped however clear the split.
        let short = classify(&TimeSplit::with_waits(100.0, &[]), ENOUGH_TICKS - 1);
        assert!(short.too_short && short.confidence <= 0.5, "{short:?}");
        let enough = classify(&TimeSplit::with_waits(100.0, &[]), ENOUGH_TICKS);
        assert!(!enough.too_short && enough.confidence > 0.9, "{enough:?}");
    }
}
