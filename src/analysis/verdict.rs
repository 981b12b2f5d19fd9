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
    /// Stopped from outside (a stop signal, a tracer, a frozen cgroup) for most of the run:
    /// too little of the program's own time is left to classify.
    Stopped,
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
            WorkloadClass::Stopped => "stopped",
            WorkloadClass::Unknown => "unknown",
        }
    }
}

/// Shares (0..1) by what the tree was doing, from the wall split. `runqueue` and `stopped` are
/// shares of the whole wall time; the others are shares of the program's own time (the wall
/// time less the run-queue wait and the time it was stopped), so a busy machine or a debugger
/// does not change what kind of program it is.
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
    /// Waits whose reason could not be read (unknown and uninterruptible).
    pub unknown: f64,
    /// Stopped from outside (a share of the whole wall time, like `runqueue`).
    #[serde(default)]
    pub stopped: f64,
    /// The part of `unknown` in uninterruptible sleep (state D: usually disk).
    #[serde(default)]
    pub uninterruptible: f64,
}

impl WallShares {
    pub fn from_wall(wall: &TimeSplit) -> Self {
        let all = wall.total_ns();
        let stopped = wall.wait(WaitKind::Stopped);
        let total = all - wall.runqueue_ns - stopped;
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
            other: sum(|k| k == WaitKind::Other || k.is_unread()),
            unknown: sum(WaitKind::is_unread),
            uninterruptible: sum(|k| k == WaitKind::Uninterruptible),
            stopped: stopped / all,
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
    /// Why the class is `Unknown`, when it is.
    pub unknown_because: Option<Unknowable>,
}

/// An event loop blocked (in a `time.sleep`, a blocking call, or computing without yielding)
/// for at least this share of the wall time is bound by it: everything else on the loop
/// waits behind it.
pub const LOOP_BLOCKED_SHARE: f64 = 0.5;

impl Verdict {
    /// A run that looks idle because its event loop sleeps in blocking calls, with work
    /// waiting behind it, is not idle: those waits are its work (an idle class computed
    /// little, so they are most of the blocking), and they could overlap like I/O.
    /// `blocked_share`: the time the loop was blocked over the wall time.
    pub fn count_loop_blocking(&mut self, blocked_share: f64) {
        if self.class == WorkloadClass::Idle && blocked_share >= LOOP_BLOCKED_SHARE {
            self.class = WorkloadClass::IoBound;
            let confidence = self.confidence.min(blocked_share.min(1.0));
            self.confidence = (confidence * 100.0).round() / 100.0;
        }
    }

    /// The class becomes `Unknown` for `why`, with no confidence.
    pub fn make_unknown(&mut self, why: Unknowable) {
        self.class = WorkloadClass::Unknown;
        self.confidence = 0.0;
        self.unknown_because = Some(why);
    }
}

/// Below this many ticks (half a second at 100 Hz) the measurement is too short to judge
/// reliably: the confidence grows with the ticks up to this many, and stays at most
/// `TOO_SHORT_CONFIDENCE` below it.
pub const ENOUGH_TICKS: u64 = 50;
const TOO_SHORT_CONFIDENCE: f64 = 0.5;
/// Stopped at least this share of the wall time: the class is `stopped`.
pub const STOPPED_SHARE: f64 = 0.5;
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
    // The program's own waits: being stopped is not one of them, unless it is the story.
    let mut own = *wall;
    own.waits_ns[WaitKind::Stopped.index()] = 0.0;
    let dominant_wait = if shares.stopped >= STOPPED_SHARE {
        Some(WaitKind::Stopped)
    } else {
        own.dominant_wait()
    };
    // Time held off the CPU by a quota is time the program wanted to compute.
    let wants_cpu = shares.computing + shares.throttled;
    let (class, strength) = if shares.stopped >= STOPPED_SHARE {
        (WorkloadClass::Stopped, shares.stopped)
    } else if wants_cpu >= thresholds.cpu_bound_share {
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
    let mut verdict = Verdict {
        class,
        confidence: (confidence * 100.0).round() / 100.0,
        shares,
        dominant_wait,
        too_short,
        unknown_because: None,
    };
    if ticks < MIN_SAMPLES {
        verdict.make_unknown(Unknowable::TooFewSamples);
    } else if shares.unknown >= UNREAD_SHARE && verdict.class != WorkloadClass::Stopped {
        verdict.make_unknown(Unknowable::WaitsUnread);
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_looking_run_whose_loop_is_blocked_in_waits_is_io_bound() {
        let mut sleeping = classify(&TimeSplit::with_waits(2.0, &[(WaitKind::Sleep, 98.0)]), 100);
        assert_eq!(sleeping.class, WorkloadClass::Idle);
        sleeping.count_loop_blocking(0.3);
        assert_eq!(sleeping.class, WorkloadClass::Idle, "blocked a little");
        sleeping.count_loop_blocking(0.9);
        assert_eq!(sleeping.class, WorkloadClass::IoBound);
        assert_eq!(sleeping.confidence, 0.9);
        let mut computing = classify(
            &TimeSplit::with_waits(90.0, &[(WaitKind::Sleep, 10.0)]),
            100,
        );
        computing.count_loop_blocking(0.9);
        assert_eq!(
            computing.class,
            WorkloadClass::CpuBound,
            "only an idle class changes"
        );
    }

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

    #[test]
    fn stopped_time_is_outside_the_programs_own_time() {
        // Stopped half of the wall time: that is the story.
        let half = classify(
            &TimeSplit::with_waits(1.0, &[(WaitKind::Stopped, 1.0)]),
            100,
        );
        assert_eq!(half.class, WorkloadClass::Stopped);
        // Stopped a quarter of it: classified on its own time, which is all computing.
        let some = classify(
            &TimeSplit::with_waits(3.0, &[(WaitKind::Stopped, 1.0)]),
            100,
        );
        assert_eq!(some.class, WorkloadClass::CpuBound);
        assert!((some.shares.computing - 1.0).abs() < 1e-9);
        assert!((some.shares.stopped - 0.25).abs() < 1e-9);
        assert_eq!(some.dominant_wait, None);
        // Stopped most of the time: that is the class, whatever little else happened.
        let stopped = classify(
            &TimeSplit::with_waits(0.01, &[(WaitKind::Stopped, 2.0), (WaitKind::Sleep, 0.02)]),
            100,
        );
        assert_eq!(stopped.class, WorkloadClass::Stopped);
        assert_eq!(stopped.dominant_wait, Some(WaitKind::Stopped));
        assert!(stopped.confidence > 0.9);
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
