//! Classifies a measurement as cpu-bound, io-bound, mixed or idle, with a confidence; or as unknown when the measurement cannot tell.

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
    /// The measurement cannot tell: too few samples, most of the time spent in waits that
    /// could not be read, or most threads never followed (`Verdict::unknown_because`).
    Unknown,
}

/// What was missing when the class is `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknowable {
    /// The run lasted only a few samples.
    TooFewSamples,
    /// Most of the program's time went to waits whose reason could not be read.
    WaitsUnread,
    /// Most of the tree's threads were never followed.
    ThreadsUnseen,
}

impl WorkloadClass {
    pub fn name(self) -> &'static str {
        match self {
            WorkloadClass::CpuBound => "cpu-bound",
            WorkloadClass::IoBound => "io-bound",
            WorkloadClass::Mixed => "mixed",
            WorkloadClass::Idle => "idle",
            WorkloadClass::Unknown => "unknown",
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
    /// Waits whose reason could not be read (unknown and uninterruptible).
    pub unknown: f64,
    /// The part of `unknown` in uninterruptible sleep (state D: usually disk).
    #[serde(default)]
    pub uninterruptible: f64,
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
            runqueue: wall.runqueue_ns / all,
            io: sum(WaitKind::is_io),
            lock: sum(|k| k == WaitKind::Lock),
            idle: sum(WaitKind::is_idle),
            child: sum(|k| k == WaitKind::Child),
            other: sum(|k| k == WaitKind::Other || k.is_unread()),
            unknown: sum(WaitKind::is_unread),
            uninterruptible: sum(|k| k == WaitKind::Uninterruptible),
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
    /// Why the class is `Unknown`, when it is.
    pub unknown_because: Option<Unknowable>,
}

impl Verdict {
    /// The class becomes `Unknown` for `why`, with no confidence.
    pub fn make_unknown(&mut self, why: Unknowable) {
        self.class = WorkloadClass::Unknown;
        self.confidence = 0.0;
        self.unknown_because = Some(why);
    }
}

/// Below this many ticks the measurement is thin and the confidence says so.
const FULL_CONFIDENCE_TICKS: f64 = 20.0;
/// Fewer ticks than this (four intervals) cannot tell what a run did: the class is unknown.
pub const MIN_SAMPLES: u64 = 5;
/// When waits whose reason could not be read take at least this share of the program's own
/// time, the class is unknown.
pub const UNREAD_SHARE: f64 = 0.5;

/// The class of the workload from its wall split (already reconciled with the kernel's totals).
pub fn classify(wall: &TimeSplit, ticks: u64) -> Verdict {
    classify_with(wall, ticks, &Thresholds::default())
}

pub fn classify_with(wall: &TimeSplit, ticks: u64, thresholds: &Thresholds) -> Verdict {
    let shares = WallShares::from_wall(wall);
    let dominant_wait = wall.dominant_wait();
    let (class, strength) = if shares.computing >= thresholds.cpu_bound_share {
        (WorkloadClass::CpuBound, shares.computing)
    } else if shares.io >= thresholds.io_bound_share && shares.io > shares.computing {
        (WorkloadClass::IoBound, shares.io)
    } else if shares.idle >= thresholds.idle_share {
        (WorkloadClass::Idle, shares.idle)
    } else if shares.computing + shares.io + shares.lock + shares.unknown < 0.2 {
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
    let thin = (ticks as f64 / FULL_CONFIDENCE_TICKS).min(1.0);
    let confidence = (strength * (1.0 - shares.unknown) * thin).clamp(0.0, 1.0);
    let mut verdict = Verdict {
        class,
        confidence: (confidence * 100.0).round() / 100.0,
        shares,
        dominant_wait,
        unknown_because: None,
    };
    if ticks < MIN_SAMPLES {
        verdict.make_unknown(Unknowable::TooFewSamples);
    } else if shares.unknown >= UNREAD_SHARE {
        verdict.make_unknown(Unknowable::WaitsUnread);
    }
    verdict
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
        let thin = classify(&TimeSplit::with_waits(100.0, &[]), 6);
        assert!(thin.confidence <= 0.3);
    }

    #[test]
    fn a_few_samples_or_mostly_unread_waits_are_unknown() {
        let v = classify(&TimeSplit::with_waits(100.0, &[]), 2);
        assert_eq!(v.class, WorkloadClass::Unknown);
        assert_eq!(v.unknown_because, Some(Unknowable::TooFewSamples));
        assert_eq!(v.confidence, 0.0);
        let v = classify(
            &TimeSplit::with_waits(
                10.0,
                &[(WaitKind::Unknown, 60.0), (WaitKind::Uninterruptible, 30.0)],
            ),
            100,
        );
        assert_eq!(v.class, WorkloadClass::Unknown);
        assert_eq!(v.unknown_because, Some(Unknowable::WaitsUnread));
        let v = classify(
            &TimeSplit::with_waits(60.0, &[(WaitKind::Unknown, 40.0)]),
            100,
        );
        assert_eq!(v.class, WorkloadClass::CpuBound);
    }
}
