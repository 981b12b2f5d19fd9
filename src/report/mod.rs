//! The report: the schema written as TOML or JSON, read back by `show` and `diff`.

pub mod assemble;
pub mod diff;
pub mod export;
pub mod html;
pub mod read;
pub mod terminal;
pub mod trace;
pub mod write;

use serde::{Deserialize, Serialize};

use crate::analysis::accountant::{TimeSplit, WaitDetail};
use crate::analysis::wait_kind::WaitKind;
use crate::sampler::observation::Stopper;

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
    /// The program's own concurrency (absent in reports written before it was measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<ConcurrencySection>,
    /// The process the others waited on, when one dominated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bottleneck: Option<BottleneckSection>,
    /// Where in the code the time went (absent when no process's stacks were to be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeSection>,
    /// The accept queues of the tree's TCP listeners (absent when it held none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demand: Option<DemandSection>,
    /// The devices behind the files the program waited on, and how busy they were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceSection>,
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
    /// The threads without a timeline of their own (beyond the busiest 32), summed into one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_threads: Option<OtherThreadsSection>,
    /// Who stopped the program, and for how long (wall seconds), where it could be told.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stops: Vec<StopSection>,
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
    /// The cgroup whose CPU quota was in force (when there was one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
}

impl TargetSection {
    /// How the program ran, for a headline: its runtime, how it ended, whether it was cut short.
    pub fn status(&self) -> Vec<String> {
        let mut status = vec![crate::printable::printable(&self.runtime).into_owned()];
        match (self.exit_code, self.signal) {
            (_, Some(signal)) => status.push(format!("killed by signal {signal}")),
            (Some(code), None) => status.push(format!("exit {code}")),
            (None, None) => {}
        }
        if self.exited == Some(true) {
            status.push("exited while attached".into());
        }
        if self.interrupted {
            status.push("interrupted".into());
        }
        status
    }
}

/// `text` cut to `max` characters (at least 8), the cut marked with an ellipsis.
pub fn shorten(text: &str, max: usize) -> String {
    let max = max.max(8);
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max - 1).collect();
    format!("{kept}…")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineSection {
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    /// The CPU quota of the tightest cgroup the program ran under, in cores (quota / period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota_cores: Option<f64>,
    /// Cores' worth of CPU other work on the machine used during the measurement, on average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_load_cores: Option<f64>,
}

impl From<&crate::machine::Machine> for MachineSection {
    fn from(machine: &crate::machine::Machine) -> Self {
        MachineSection {
            cores: machine.cores,
            memory_gib: machine.memory_gib,
            kernel: machine.kernel.clone(),
            cpu_quota_cores: None,
            other_load_cores: machine.other_load_cores.map(round3),
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
    /// Runnable but held off the CPU by the cgroup's CPU quota.
    #[serde(default)]
    pub throttled_s: f64,
    pub disk_s: f64,
    /// The part of disk_s spent in syncs (fsync, fdatasync, O_SYNC writes...).
    #[serde(default)]
    pub disk_sync_s: f64,
    /// The part of disk_s spent creating, renaming, truncating or deleting files.
    #[serde(default)]
    pub disk_metadata_s: f64,
    pub network_s: f64,
    /// Files of network filesystems (NFS, SMB, a network FUSE...).
    #[serde(default)]
    pub network_fs_s: f64,
    pub ipc_s: f64,
    pub lock_s: f64,
    pub sleep_s: f64,
    pub event_wait_s: f64,
    pub child_s: f64,
    pub input_s: f64,
    pub paging_s: f64,
    /// Stopped from outside (a stop signal, a tracer, a frozen cgroup).
    #[serde(default)]
    pub stopped_s: f64,
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

fn is_false(value: &bool) -> bool {
    !*value
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
            throttled_s: w(WaitKind::Throttled),
            disk_s: w(WaitKind::Disk),
            disk_sync_s: s(split.disk_sync_ns),
            disk_metadata_s: s(split.disk_metadata_ns),
            network_s: w(WaitKind::Network),
            network_fs_s: w(WaitKind::NetworkFs),
            ipc_s: w(WaitKind::Ipc),
            lock_s: w(WaitKind::Lock),
            sleep_s: w(WaitKind::Sleep),
            event_wait_s: w(WaitKind::EventWait),
            child_s: w(WaitKind::Child),
            input_s: w(WaitKind::Input),
            paging_s: w(WaitKind::Paging),
            stopped_s: w(WaitKind::Stopped),
            other_s: w(WaitKind::Other),
            unknown_s: w(WaitKind::Unknown),
            uninterruptible_s: w(WaitKind::Uninterruptible),
            unsampled_cpu_s: 0.0,
        }
    }

    pub fn wait_s(&self, kind: WaitKind) -> f64 {
        match kind {
            WaitKind::Throttled => self.throttled_s,
            WaitKind::Disk => self.disk_s,
            WaitKind::Network => self.network_s,
            WaitKind::NetworkFs => self.network_fs_s,
            WaitKind::Ipc => self.ipc_s,
            WaitKind::Lock => self.lock_s,
            WaitKind::Sleep => self.sleep_s,
            WaitKind::EventWait => self.event_wait_s,
            WaitKind::Child => self.child_s,
            WaitKind::Input => self.input_s,
            WaitKind::Paging => self.paging_s,
            WaitKind::Stopped => self.stopped_s,
            WaitKind::Other => self.other_s,
            WaitKind::Unknown => self.unknown_s,
            WaitKind::Uninterruptible => self.uninterruptible_s,
        }
    }

    /// (name, seconds) for cpu, runqueue and every wait kind, in report order (disk_sync_s
    /// and disk_metadata_s are parts of disk_s, not states of their own).
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
    /// Too few samples to judge reliably (under 50): the confidence is capped at 0.5.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub too_short: bool,
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
    /// What the advised change is expected to buy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<ExpectedSection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectedSection {
    /// The change, in a few words.
    pub change: String,
    /// "wall": a run doing the same work; "capacity": how much more load a server takes.
    pub measure: String,
    /// The point estimate of before / after, and the band a measurement should fall in
    /// (absent, with `unavailable`, where no honest model exists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speedup: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    /// What the estimate rests on (measured numbers, and what it assumes).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub basis: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConcurrencySection {
    /// serial, threads, event_loop, processes or mixed.
    pub structure: String,
    /// Mean activities overlapping at once over the busy ticks: threads computing, threads
    /// blocked on I/O, and the peers an event loop waits on.
    pub in_flight: f64,
    pub peak_in_flight: u32,
    /// Threads that computed or waited on I/O for over 5% of the wall time, and their processes.
    pub busy_threads: usize,
    pub busy_processes: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_loop: Option<EventLoopSection>,
}

/// Whether clients waited at the tree's listeners: their accept queues over the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemandSection {
    /// At some listener, connections were queued in at least half of the samples, one or
    /// more on average.
    pub clients_waited: bool,
    /// Threads (and their processes) of the listeners' processes that served, what they
    /// mostly did ("cpu" or a wait kind) and its share of their time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_threads: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_processes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_share: Option<f64>,
    pub listeners: Vec<ListenerSection>,
}

/// One listening address and its accept queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListenerSection {
    pub address: String,
    /// Reads of its accept queue (about every 200 ms).
    pub samples: u64,
    /// Connections waiting to be accepted: on average, at most, and the share of the samples
    /// with at least one.
    pub mean_queued: f64,
    pub max_queued: u32,
    pub queued_share: f64,
    pub pids: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BottleneckSection {
    pub pid: i32,
    pub command: Vec<String>,
    /// What it spends its own time on: "cpu", or a wait kind.
    pub kind: String,
    /// Thread-seconds of the other processes' waits that lead to it.
    pub waited_on_s: f64,
    pub reason: String,
}

/// Where in the code the time of the states that matter went, from stack samples joined to
/// the sampler's thread states. Independent of the reader: `source` names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeSection {
    /// The stack reader ("py-spy"); absent when none could read a process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Stacks joined to a thread's state.
    pub stack_samples: u64,
    /// Reads that failed part-way (the target moved on while it was read).
    pub failed_reads: u64,
    /// Reads per second while stacks were read (the CPU budget sets it).
    pub rate_hz: f64,
    /// CPU time one read cost, on average (ms).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub read_cpu_ms: f64,
    /// Why there are no stacks, and how to get them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// Processes whose stacks could not be read, with the reason ("pid 42: ...").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_read: Vec<String>,
    /// Per (state, user frame), summed over threads, most seconds first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hotspots: Vec<HotspotSection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotspotSection {
    /// "cpu", "loop_blocked" (the time `concurrency.event_loop.blocked_s` counts), or a wait
    /// kind ("network", "sleep", "lock"...): the states exclude each other.
    pub state: String,
    /// The innermost frame of the user's own code (not the standard library, not
    /// site-packages).
    pub function: String,
    pub file: String,
    pub line: u32,
    /// Of this state's stack samples in the tree.
    pub share: f64,
    /// Thread-seconds of this state charged to this frame.
    pub seconds: f64,
    #[serde(default)]
    pub samples: u64,
    pub pid: i32,
    /// The threads that contributed.
    pub tids: Vec<i32>,
    /// The innermost frame of its most common stack ("readinto (socket.py:706)").
    pub innermost: String,
    /// That stack, innermost first (at most 8 frames).
    pub stack: Vec<String>,
    /// loop_blocked only: what the loop thread mostly did there ("sleep", "cpu"...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_in: Option<String>,
}

/// A device the program's disk waits were on: the disk whose busy time counts, and what it
/// did while the program waited on it; or, for a filesystem without a single disk, why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceSection {
    /// The whole disk's kernel name (sda for sda1), and its major:minor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major_minor: Option<String>,
    /// The block devices between the filesystem and the disk (a partition, dm-0...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotational: Option<bool>,
    /// The mount points waited on whose files are on it.
    #[serde(default)]
    pub mounts: Vec<String>,
    #[serde(default)]
    pub filesystem: String,
    /// Thread-seconds of disk wait on it, and their share of all the disk wait.
    pub wait_s: f64,
    #[serde(default)]
    pub disk_wait_share: f64,
    /// Wall seconds the program waited on it, and over them (each tick counted for the share
    /// of it waited): the share it was busy (io_ticks), the requests in flight on it, the
    /// program's own waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waited_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_share: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_in_flight: Option<f64>,
    /// Its busy share over the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_busy_share: Option<f64>,
    #[serde(default)]
    pub saturated: bool,
    /// Why it has no numbers: no single disk behind the filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmeasured: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLoopSection {
    pub pid: i32,
    pub tid: i32,
    /// The runtime of the loop's process (python: asyncio or another loop; node: libuv...).
    pub runtime: String,
    /// Descriptors in its poll set at the busiest tick.
    pub watched: u32,
    /// Time the loop could not run its callbacks: blocked in other calls, or computing in
    /// stretches of 100 ms or more without returning to its poller.
    pub blocked_s: f64,
    /// blocked_s / the loop thread's non-idle time.
    pub blocked_share: f64,
    pub longest_block_s: f64,
    /// What blocked it, most first (wait kinds, and "cpu").
    pub blocked_by: Vec<String>,
    /// The system calls it blocked in outside its poller, most time first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocking_calls: Vec<String>,
    /// Other threads of the tree that ran a loop too.
    #[serde(default, skip_serializing_if = "is_zero_usize")]
    pub other_loops: usize,
    /// Connections (or pipes to other processes) in its poll set, at most.
    #[serde(default)]
    pub peers: u32,
    /// Never seen waiting in its poller (found by its epoll instance): all its time counted
    /// as blocked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub never_polled: bool,
}

fn is_zero_usize(value: &usize) -> bool {
    *value == 0
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
    /// The fewest samples taken in one whole second after the first (absent for a run
    /// shorter than two seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lowest_second_hz: Option<u64>,
    /// The most /proc descriptors the sampler held at once, and the most it may hold (three
    /// quarters of its open-file limit): past it, threads are read by opening their files for
    /// each read.
    #[serde(default)]
    pub held_descriptors: usize,
    #[serde(default)]
    pub descriptor_budget: usize,
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
    /// Ticks that took longer than their period (the sampler was held up), and the longest.
    #[serde(default)]
    pub stalled_ticks: u64,
    #[serde(default)]
    pub longest_stall_s: f64,
    /// How processes joining the tree were found: "children" (each thread's children file)
    /// or "scan" (/proc/*/stat, on kernels without children files).
    #[serde(default)]
    pub discovery: String,
    /// Files the sampler needed to read or stat and did not: on a network or FUSE mount
    /// (never touched), or a helper thread did not answer.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub unresolved_files: u64,
    /// The sampler's last tick did not finish in time: the report covers the ticks before it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cut_short: bool,
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
/// d disk, n network, f network_fs, i ipc, l lock, s sleep, e event_wait, w child, t input,
/// p paging, h stopped, o other, ? unknown, space: nothing measured).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelineSection {
    pub bucket_s: f64,
    pub states: String,
    /// Only when the event budget merged per-thread stretches shorter than this (seconds):
    /// the threads' timelines are no finer than it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub thread_resolution_s: f64,
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
    /// When the thread was first followed (its birth, or its first sight when attaching),
    /// in seconds since the measurement started.
    #[serde(default)]
    pub started_s: f64,
    /// How long it was followed: its CPU, run-queue and wait time together.
    #[serde(default)]
    pub alive_s: f64,
    /// The busiest 32 threads only: what the thread mostly did, as runs of `[timeline]`
    /// buckets; buckets in which it did not exist are left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<StateRunSection>,
}

/// Buckets `start..start + buckets` of `[timeline]` in which most of the time was `state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateRunSection {
    pub start: usize,
    pub buckets: usize,
    /// cpu, runqueue, or a wait kind (as in `[breakdown]`, without `_s`).
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OtherThreadsSection {
    pub threads: u64,
    /// What most of their thread-time went to, bucket by bucket.
    #[serde(default)]
    pub timeline: Vec<StateRunSection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitSeconds {
    pub kind: String,
    pub seconds: f64,
    /// For waits on files (disk, network_fs): the mount point the thread waited on most,
    /// its filesystem type (nfs4, fuse.sshfs...) and source (server:/export, a device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl WaitSeconds {
    /// `seconds` of wait `kind`, on the mount `detail` names (if it names one).
    pub fn on(kind: WaitKind, seconds: f64, detail: Option<&WaitDetail>) -> Self {
        let mount = match detail {
            Some(WaitDetail::Mount(mount)) => Some(mount),
            _ => None,
        };
        WaitSeconds {
            kind: kind.name().to_string(),
            seconds,
            mount: mount.map(|m| m.point.clone()),
            filesystem: mount.map(|m| m.fs_type.clone()),
            source: mount.map(|m| m.source.clone()).filter(|s| !s.is_empty()),
        }
    }
}

/// Who stopped the program: `by` is "signal" (SIGSTOP or job control), "tracer" (a debugger
/// or strace: `tracer_pid`, `tracer`) or "frozen_cgroup" (`cgroup`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopSection {
    pub by: String,
    /// Wall seconds.
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracer_pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
}

impl StopSection {
    pub fn new(by: &Stopper, seconds: f64) -> Self {
        let mut section = StopSection {
            by: String::new(),
            seconds: round3(seconds),
            tracer_pid: None,
            tracer: None,
            cgroup: None,
        };
        section.by = match by {
            Stopper::Signal => "signal".into(),
            Stopper::Tracer { pid, name } => {
                section.tracer_pid = Some(*pid);
                section.tracer = Some(name.clone()).filter(|n| !n.is_empty());
                "tracer".into()
            }
            Stopper::FrozenCgroup { cgroup } => {
                section.cgroup = Some(cgroup.clone());
                "frozen_cgroup".into()
            }
        };
        section
    }

    /// "a stop signal", "tracer PID 4242 (gdb)", "the frozen cgroup /sys/fs/cgroup/x".
    pub fn describe(&self) -> String {
        match self.by.as_str() {
            "signal" => "a stop signal (SIGSTOP, or job control: Ctrl-Z)".into(),
            "tracer" => {
                let pid = self.tracer_pid.map_or("?".into(), |p| p.to_string());
                match &self.tracer {
                    Some(name) => format!("tracer PID {pid} ({name})"),
                    None => format!("tracer PID {pid}"),
                }
            }
            "frozen_cgroup" => format!(
                "the frozen cgroup {}",
                self.cgroup.as_deref().unwrap_or("?")
            ),
            other => other.to_string(),
        }
    }
}
