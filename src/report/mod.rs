//! The report: the schema written as TOML or JSON, read back by `show` and `diff`.

pub mod assemble;
pub mod diff;
pub mod export;
pub mod read;
pub mod terminal;
pub mod write;

use serde::{Deserialize, Serialize};

use crate::analysis::accountant::TimeSplit;
use crate::analysis::wait_kind::WaitKind;

/// Bumped when a key changes meaning or disappears; new keys do not bump it.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub target: TargetSection,
    pub machine: MachineSection,
    pub time: TimeSection,
    /// Thread-seconds over the whole tree: every thread's time on a CPU, waiting for one, and
    /// off the CPU by wait kind.
    pub breakdown: StateSeconds,
    /// Wall-clock seconds, each instant counted once: computing if any thread computed, else
    /// the most telling wait (I/O before locks before timers and event loops).
    pub wall: StateSeconds,
    pub verdict: VerdictSection,
    pub recommendation: RecommendationSection,
    pub sampling: SamplingSection,
    #[serde(default)]
    pub timeline: TimelineSection,
    /// Stretches of the run with one kind of work, in time order.
    #[serde(default)]
    pub phases: Vec<PhaseSection>,
    #[serde(default)]
    pub processes: Vec<ProcessSection>,
    #[serde(default)]
    pub threads: Vec<ThreadSection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetSection {
    pub command: Vec<String>,
    pub pid: i32,
    /// The runtime of the process that used the most CPU: python, node, jvm, go or native.
    pub runtime: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that ended the program, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// Measurement cut short by Ctrl-C or a termination signal.
    #[serde(default)]
    pub interrupted: bool,
    /// attach only: whether the process exited while attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exited: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineSection {
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
}

impl From<&crate::machine::Machine> for MachineSection {
    fn from(machine: &crate::machine::Machine) -> Self {
        MachineSection {
            cores: machine.cores,
            memory_gib: machine.memory_gib,
            kernel: machine.kernel.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeSection {
    pub wall_s: f64,
    pub cpu_s: f64,
    pub user_s: f64,
    pub system_s: f64,
    /// cpu_s / wall_s.
    pub avg_cores: f64,
    /// Where cpu_s comes from: "rusage" (the kernel's accounting of the finished tree) or
    /// "sampled" (schedstat deltas, when the tree did not finish under concadvise).
    pub cpu_source: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateSeconds {
    pub cpu_s: f64,
    pub runqueue_s: f64,
    pub disk_s: f64,
    pub network_s: f64,
    pub ipc_s: f64,
    pub lock_s: f64,
    pub sleep_s: f64,
    pub event_wait_s: f64,
    pub child_s: f64,
    pub input_s: f64,
    pub paging_s: f64,
    pub other_s: f64,
    #[serde(default)]
    pub unknown_s: f64,
    #[serde(default)]
    pub uninterruptible_s: f64,
    /// CPU the kernel accounted but the sampler did not see (processes too short-lived to
    /// sample); already included in cpu_s.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unsampled_cpu_s: f64,
}

fn is_zero_u64(value: &u64) -> bool {
    *value == 0
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

/// Rounds to the millisecond (reports are read by people; nanoseconds are noise here).
pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

impl StateSeconds {
    pub fn from_split(split: &TimeSplit) -> Self {
        let s = |ns: f64| round3(ns / 1e9);
        let w = |kind: WaitKind| s(split.wait(kind));
        StateSeconds {
            cpu_s: s(split.cpu_ns),
            runqueue_s: s(split.runqueue_ns),
            disk_s: w(WaitKind::Disk),
            network_s: w(WaitKind::Network),
            ipc_s: w(WaitKind::Ipc),
            lock_s: w(WaitKind::Lock),
            sleep_s: w(WaitKind::Sleep),
            event_wait_s: w(WaitKind::EventWait),
            child_s: w(WaitKind::Child),
            input_s: w(WaitKind::Input),
            paging_s: w(WaitKind::Paging),
            other_s: w(WaitKind::Other),
            unknown_s: w(WaitKind::Unknown),
            uninterruptible_s: w(WaitKind::Uninterruptible),
            unsampled_cpu_s: 0.0,
        }
    }

    pub fn wait_s(&self, kind: WaitKind) -> f64 {
        match kind {
            WaitKind::Disk => self.disk_s,
            WaitKind::Network => self.network_s,
            WaitKind::Ipc => self.ipc_s,
            WaitKind::Lock => self.lock_s,
            WaitKind::Sleep => self.sleep_s,
            WaitKind::EventWait => self.event_wait_s,
            WaitKind::Child => self.child_s,
            WaitKind::Input => self.input_s,
            WaitKind::Paging => self.paging_s,
            WaitKind::Other => self.other_s,
            WaitKind::Unknown => self.unknown_s,
            WaitKind::Uninterruptible => self.uninterruptible_s,
        }
    }

    /// (name, seconds) for cpu, runqueue and every wait kind, in report order.
    pub fn states(&self) -> Vec<(&'static str, f64)> {
        let mut states = vec![("cpu", self.cpu_s), ("runqueue", self.runqueue_s)];
        states.extend(WaitKind::ALL.map(|kind| (kind.name(), self.wait_s(kind))));
        states
    }

    pub fn total_s(&self) -> f64 {
        self.states().iter().map(|(_, s)| s).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictSection {
    /// cpu-bound, io-bound, mixed or idle.
    pub class: String,
    /// 0..1: how clearly the measurement supports the class.
    pub confidence: f64,
    /// The wait kind with the most wall time, if the program waited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dominant_wait: Option<String>,
    /// Shares (0..1) of the wall time.
    pub computing_share: f64,
    pub io_share: f64,
    pub idle_share: f64,
    pub lock_share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecommendationSection {
    /// multiprocessing, threads, async or none.
    pub model: String,
    /// What the program's situation was called: cpu_bound, io_network, gil_contention...
    #[serde(default)]
    pub situation: String,
    /// The runtime profile the advice came from, and where it was read.
    #[serde(default)]
    pub profile: String,
    pub reasons: Vec<String>,
    /// A short pointer to the tools that do it (ProcessPoolExecutor, tokio, worker_threads...).
    #[serde(default)]
    pub how: String,
    #[serde(default)]
    pub alternatives: Vec<String>,
    /// Upper bound on useful concurrent workers (see the reasons for the formula).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    /// Upper bound on the speedup, Amdahl-style (see the reasons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speedup_ceiling: Option<f64>,
    pub warning: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingSection {
    /// "run" or "attach".
    pub mode: String,
    pub rate_hz: f64,
    pub samples: u64,
    /// Ticks that started more than half a period late (the sampler fell behind).
    pub late_samples: u64,
    pub threads_seen: u64,
    pub processes_seen: u64,
    /// concadvise's own CPU time over the run.
    pub self_cpu_s: f64,
    /// The tree's CPU time as the sampler accounted it (threads' schedstat, and processes'
    /// own counters for threads too short-lived to sample): a check against time.cpu_s.
    #[serde(default)]
    pub cpu_seen_s: f64,
    /// Samples per second actually taken (samples / wall time).
    #[serde(default)]
    pub achieved_rate_hz: f64,
    /// The lowest rate the sampler slowed to, to keep its own CPU use under 5% of a core
    /// (absent when it never had to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lowered_to_hz: Option<f64>,
    /// concadvise's open descriptors when sampling started and when it ended.
    #[serde(default)]
    pub fds_start: usize,
    #[serde(default)]
    pub fds_end: usize,
    /// Threads of the tree never followed (no descriptor left, or unreadable): their time is
    /// missing from the breakdown. (Written as threads_untracked before.)
    #[serde(
        default,
        alias = "threads_untracked",
        skip_serializing_if = "is_zero_u64"
    )]
    pub threads_unseen: u64,
    /// Why: "descriptors" (concadvise ran out of them), "permissions" or "errors".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unseen_cause: Option<String>,
    /// concadvise ran out of file descriptors: threads were not followed, or their waits not
    /// read (counted as unknown).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub out_of_descriptors: bool,
    /// Its open-file limit then.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub descriptor_limit: u64,
    /// Which per-thread sources were readable (false: denied for some thread).
    pub sources: SourcesSection,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourcesSection {
    pub schedstat: bool,
    pub syscall: bool,
    pub wchan: bool,
    pub fds: bool,
}

/// What took most of the wall time, bucket by bucket, as one letter each (c cpu, r runqueue,
/// d disk, n network, i ipc, l lock, s sleep, e event_wait, w child, t input, p paging,
/// o other, ? unknown, space: nothing measured).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelineSection {
    pub bucket_s: f64,
    pub states: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseSection {
    pub start_s: f64,
    pub end_s: f64,
    pub class: String,
    /// Up to two wait kinds with the most wall time in the phase, largest first.
    pub dominant_waits: Vec<String>,
    /// The model this phase alone would get.
    pub model: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessSection {
    pub pid: i32,
    pub ppid: i32,
    pub command: Vec<String>,
    pub runtime: String,
    pub cpu_s: f64,
    pub threads: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadSection {
    pub pid: i32,
    pub tid: i32,
    pub name: String,
    pub cpu_s: f64,
    pub runqueue_s: f64,
    /// Up to three waits, largest first.
    pub waits: Vec<WaitSeconds>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitSeconds {
    pub kind: String,
    pub seconds: f64,
}
