//! Turns tick snapshots into time: per-thread and whole-tree thread-seconds, and the wall-clock view.
//!
//! Pure: fed the snapshots the sampler read (or recorded ones, in tests), it does no I/O.

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::sync::Arc;

use super::throttling::{allowances, ThreadNs, Throttling};
use super::timeline::Timeline;
use super::wait_kind::{classify, is_file_metadata_change, is_sync, WaitKind};
use crate::sampler::observation::{
    FileMount, ProcessCpu, ProcessInfo, Sighting, Stopper, ThreadObservation, ThreadState,
    TickSnapshot,
};

/// Nanoseconds on the CPU, waiting for a CPU, and off the CPU by wait kind.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TimeSplit {
    pub cpu_ns: f64,
    pub runqueue_ns: f64,
    pub waits_ns: [f64; WaitKind::COUNT],
    /// The part of the disk wait spent in syncs (counted in `waits_ns` as disk too).
    pub disk_sync_ns: f64,
    /// The part spent creating, renaming, truncating or deleting files (disk too).
    pub disk_metadata_ns: f64,
}

impl TimeSplit {
    /// A split with this CPU time and these waits (nanoseconds); no run-queue time.
    pub fn with_waits(cpu_ns: f64, waits: &[(WaitKind, f64)]) -> Self {
        let mut split = TimeSplit {
            cpu_ns,
            ..TimeSplit::default()
        };
        for (kind, ns) in waits {
            split.waits_ns[kind.index()] += ns;
        }
        split
    }

    pub fn wait(&self, kind: WaitKind) -> f64 {
        self.waits_ns[kind.index()]
    }

    pub fn add(&mut self, other: &TimeSplit) {
        self.cpu_ns += other.cpu_ns;
        self.runqueue_ns += other.runqueue_ns;
        self.disk_sync_ns += other.disk_sync_ns;
        self.disk_metadata_ns += other.disk_metadata_ns;
        for (mine, theirs) in self.waits_ns.iter_mut().zip(other.waits_ns) {
            *mine += theirs;
        }
    }

    pub fn total_ns(&self) -> f64 {
        self.cpu_ns + self.runqueue_ns + self.waits_ns.iter().sum::<f64>()
    }

    /// The wait kind with the most time, if any wait has time at all.
    pub fn dominant_wait(&self) -> Option<WaitKind> {
        WaitKind::ALL
            .into_iter()
            .filter(|kind| self.wait(*kind) > 0.0)
            .max_by(|a, b| self.wait(*a).total_cmp(&self.wait(*b)))
    }
}

/// What a wait was on, beyond its kind: the mount of a file, or who stopped the thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitDetail {
    Mount(Arc<FileMount>),
    StoppedBy(Stopper),
}

/// The detail of a thread's wait of kind `kind` at a sample, when the sampler knew it.
pub fn detail_of(state: &ThreadState, kind: Option<WaitKind>) -> Option<WaitDetail> {
    match kind? {
        WaitKind::Stopped => state.stopped_by.clone().map(WaitDetail::StoppedBy),
        WaitKind::Disk | WaitKind::NetworkFs => state.mount.clone().map(WaitDetail::Mount),
        _ => None,
    }
}

/// One thread's account over the measurement.
#[derive(Debug, Clone)]
pub struct ThreadAccount {
    pub pid: i32,
    pub tid: i32,
    pub name: String,
    /// Where the account begins (ns since sampling started): the thread's birth, or its first
    /// sight. With pid and tid, it tells a thread from a later one that reused its TID.
    pub started_ns: u64,
    pub time: TimeSplit,
    /// Times the thread was scheduled onto a CPU during the measurement.
    pub timeslices: u64,
    prev_at_ns: u64,
    prev_timeslices: u64,
    prev_cpu_ns: u64,
    prev_runqueue_ns: u64,
    prev_wait: Option<Wait>,
    /// The last wait this thread was seen in, however long ago.
    last_wait: Option<Wait>,
    /// Wait time by what it was on (a file's mount, who stopped the thread), by kind.
    pub details: Vec<(WaitKind, WaitDetail, f64)>,
    /// Stopped time charged in the current interval, by who stopped it (taken by `ingest`).
    stopped_now: Vec<(Stopper, f64)>,
    /// Disk wait charged in the current interval, by the mount of its file (taken by
    /// `ingest`).
    disk_now: Vec<(Arc<FileMount>, f64)>,
    /// Off-CPU time not yet attributed: negative when counters ran ahead of the clock
    /// (schedstat is updated at scheduler ticks), positive while the thread was seen running
    /// at both ends of its intervals.
    pending_off_ns: i64,
    /// Throttled time charged while the thread's counters stood still, that its run-queue
    /// counter may show later (some kernels add a throttled stretch to run_delay when the
    /// thread runs again), and when it was charged: paid back from that run-queue time.
    throttle_debt: (f64, u64),
}

/// Throttled time not seen in the run-queue counter within this long never will be (the
/// kernel does not count throttling as run delay).
const THROTTLE_DEBT_LIFE_NS: u64 = 250_000_000;

/// What a thread was blocked in, as the accounting needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wait {
    kind: WaitKind,
    /// A disk wait that was a sync (fsync, O_SYNC write...).
    sync: bool,
    /// A disk wait that changed a file's metadata (unlink, rename, a file created...).
    metadata: bool,
    /// What it was on, when the sampler knew.
    detail: Option<WaitDetail>,
}

impl Wait {
    fn plain(kind: WaitKind) -> Wait {
        Wait {
            kind,
            sync: false,
            metadata: false,
            detail: None,
        }
    }
}

/// One process's account: what it runs and the CPU its threads used.
#[derive(Debug, Clone)]
pub struct ProcessAccount {
    pub info: ProcessInfo,
    /// CPU of the threads sampled.
    pub cpu_ns: f64,
    pub threads: u64,
    /// The process's own CPU counters, first and last read (they include exited threads).
    kernel_first_ns: Option<u64>,
    kernel_last_ns: u64,
}

impl ProcessAccount {
    /// CPU the process used during the measurement: its own counters' difference, which
    /// includes threads too short-lived to sample, or the sampled threads' sum if larger
    /// (the counters tick at 10 ms).
    pub fn cpu_seen_ns(&self) -> f64 {
        let counted = self
            .kernel_first_ns
            .map_or(0, |first| self.kernel_last_ns.saturating_sub(first));
        (counted as f64).max(self.cpu_ns)
    }
}

/// Stopped time by who stopped the thread.
type StoppedBy = Vec<(Stopper, f64)>;

/// Off-CPU time of a thread seen running at both ends of its intervals, before any wait of
/// it was seen, is kept for the first wait seen up to this much; past it, it is `other`.
const UNSEEN_WAIT_LIMIT_NS: i64 = 1_000_000_000;

/// Exited threads whose accounts are kept (the busiest); the report lists fewer.
const KEPT_FINISHED_THREADS: usize = 100;

// Groups of wait kinds, for the order they explain wall time in (see `WALL_PRIORITY`).
const THROTTLED: &[WaitKind] = &[WaitKind::Throttled];
const IO: &[WaitKind] = &[
    WaitKind::Disk,
    WaitKind::Network,
    WaitKind::NetworkFs,
    WaitKind::Ipc,
    WaitKind::Paging,
];
const STOPPED: &[WaitKind] = &[WaitKind::Stopped];
const LOCK: &[WaitKind] = &[WaitKind::Lock];
const UNEXPLAINED: &[WaitKind] = &[
    WaitKind::Other,
    WaitKind::Unknown,
    WaitKind::Uninterruptible,
];
const IDLE: &[WaitKind] = &[WaitKind::Sleep, WaitKind::EventWait, WaitKind::Input];
const CHILD: &[WaitKind] = &[WaitKind::Child];

/// The order wait kinds explain wall time in when nothing computes: held off the CPU by a
/// quota (the program wanted to compute), then I/O, then a stopped thread (the program cannot
/// go on while it is held), what could not be told, timers and event loops, locks, children.
/// Locks come late: a lock that threads contend for is held by a thread that computes or
/// waits on I/O meanwhile, which explains the wall first; a thread on a futex while the
/// others wait on timers or poll is waiting for them (a pool's idle worker on its condition
/// variable, a runtime's compiler or GC thread, a main thread joining its workers or waiting
/// on a future), not contending.
const WALL_PRIORITY: [&[WaitKind]; 7] = [THROTTLED, IO, STOPPED, UNEXPLAINED, IDLE, LOCK, CHILD];

/// One thread's share of one tick, as accounted: what analyses that follow each thread over
/// time (the per-thread timeline) are built from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThreadInterval {
    pub pid: i32,
    pub tid: i32,
    /// Index of the thread's observation in the tick's snapshot (`TickSnapshot::threads`).
    pub observation: usize,
    /// `ThreadAccount::started_ns` of the account this interval was added to.
    pub account_started_ns: u64,
    /// The time accounted to the thread in this interval.
    pub split: TimeSplit,
    /// The wait the thread was in at the interval's start, and at its end (None: running).
    pub wait_before: Option<WaitKind>,
    pub wait_after: Option<WaitKind>,
}

#[derive(Debug, Default)]
pub struct Accountant {
    threads: FxHashMap<(i32, i32), ThreadAccount>,
    finished_threads: Vec<ThreadAccount>,
    processes: FxHashMap<i32, ProcessAccount>,
    /// Processes whose PID was reused by another during the run (the busiest kept).
    finished_processes: Vec<ProcessAccount>,
    last_tick_ns: Option<u64>,
    /// Thread-seconds over the whole tree.
    pub tree: TimeSplit,
    /// Wall-clock time, each interval split once: computing, else the most telling wait.
    pub wall: TimeSplit,
    /// The wall split over time, in a fixed number of buckets.
    pub timeline: Timeline,
    /// The wall split since `take_recent` was last called (for live progress).
    recent: TimeSplit,
    recent_cpu_ns: f64,
    pub ticks: u64,
    /// The last tick, thread by thread, for the analyses that follow the accountant.
    pub last_tick: TickIntervals,
    /// The cgroups with a CPU quota the tree ran under.
    pub throttling: Throttling,
    /// Times threads were scheduled onto a CPU around their sync waits: each sync that
    /// blocks ends in one, so this estimates the number of syncs.
    pub sync_switches: u64,
    /// The same around waits on I/O (disk, network, pipes): about the number of waits.
    pub io_switches: u64,
    /// Stopped wall time by who stopped the threads (a signal, a tracer, a frozen cgroup).
    pub stops: Vec<(Stopper, f64)>,
}

/// Each thread's interval up to the last tick, as the accountant split it.
#[derive(Debug, Default)]
pub struct TickIntervals {
    /// The tick's wall time (0 at the first tick).
    pub tick_ns: f64,
    pub threads: Vec<ThreadInterval>,
    /// The tree's disk wait in the tick (thread-nanoseconds), by the mount of the files.
    pub disk_waits: Vec<(Arc<FileMount>, f64)>,
}

impl Accountant {
    pub fn ingest(&mut self, snapshot: &TickSnapshot) {
        for info in &snapshot.new_processes {
            self.note_process(info);
        }
        self.throttling.note(&snapshot.new_cgroups);
        let throttled = self.throttled_allowances(snapshot);
        let mut interval = TimeSplit::default();
        let mut interval_busy_ns = 0.0;
        // Stopped thread-time in this tick, by who stopped the threads.
        let mut interval_stops: Vec<(Stopper, f64)> = Vec::new();
        self.last_tick.threads.clear();
        self.last_tick.disk_waits.clear();
        for (index, observation) in snapshot.threads.iter().enumerate() {
            let key = (observation.pid, observation.tid);
            let allowance = if throttled.is_empty() {
                0.0
            } else {
                throttled.get(&key).copied().unwrap_or(0.0)
            };
            if let Some((split, busy_ns, stopped)) =
                self.account_thread(index, observation, allowance)
            {
                for (by, ns) in stopped {
                    add_to(&mut interval_stops, &by, ns);
                }
                interval_busy_ns += busy_ns;
                if split.cpu_ns != 0.0 {
                    if let Some(process) = self.processes.get_mut(&observation.pid) {
                        process.cpu_ns += split.cpu_ns;
                    }
                }
                interval.add(&split);
            }
        }
        self.note_kernel_cpu(&snapshot.process_cpu);
        for key in &snapshot.exited {
            if let Some(account) = self.threads.remove(key) {
                self.finish(account);
            }
        }
        self.tree.add(&interval);
        let tick_ns = match self.last_tick_ns {
            Some(last) => snapshot.at_ns.saturating_sub(last) as f64,
            None => 0.0,
        };
        self.last_tick_ns = Some(snapshot.at_ns);
        self.last_tick.tick_ns = tick_ns;
        let wall = wall_split(tick_ns, &interval, interval_busy_ns);
        self.wall.add(&wall);
        self.share_stopped(&wall, &interval_stops);
        self.timeline.add(snapshot.at_ns, &wall, interval.cpu_ns);
        self.recent.add(&wall);
        self.recent_cpu_ns += interval.cpu_ns;
        self.ticks += 1;
    }

    /// The processes' CPU as the kernel counts it (their stat), first and last reading.
    fn note_kernel_cpu(&mut self, process_cpu: &[ProcessCpu]) {
        for process_cpu in process_cpu {
            if let Some(account) = self.processes.get_mut(&process_cpu.pid) {
                let baseline = if process_cpu.born_during {
                    0
                } else {
                    process_cpu.cpu_ns
                };
                account.kernel_first_ns.get_or_insert(baseline);
                account.kernel_last_ns = process_cpu.cpu_ns;
            }
        }
    }

    /// The tick's stopped wall time (in `wall`), shared among who stopped its threads in
    /// proportion to the thread-time each stopped (`interval_stops`).
    fn share_stopped(&mut self, wall: &TimeSplit, interval_stops: &[(Stopper, f64)]) {
        let stopped_threads_ns: f64 = interval_stops.iter().map(|(_, ns)| ns).sum();
        for (by, ns) in interval_stops {
            let share = wall.wait(WaitKind::Stopped) * ns / stopped_threads_ns;
            add_to(&mut self.stops, by, share);
        }
    }

    /// How much of each thread's waiting for a CPU in this tick its cgroup's quota caused
    /// (see `throttling`); empty when no cgroup of the tree has a quota.
    fn throttled_allowances(&mut self, snapshot: &TickSnapshot) -> FxHashMap<(i32, i32), f64> {
        if self.throttling.is_empty() {
            return FxHashMap::default();
        }
        let mut usage: HashMap<u32, f64> = HashMap::new();
        let mut candidates: HashMap<u32, Vec<ThreadNs>> = HashMap::new();
        for observation in &snapshot.threads {
            let Some(group) = self
                .processes
                .get(&observation.pid)
                .and_then(|p| p.info.cgroup)
            else {
                continue;
            };
            let key = (observation.pid, observation.tid);
            let Some(account) = self.threads.get(&key) else {
                continue;
            };
            let wait = wait_of(observation, account.prev_wait.clone());
            let (cpu_ns, candidate_ns) = account.preview(observation, wait.as_ref());
            *usage.entry(group).or_insert(0.0) += cpu_ns;
            candidates
                .entry(group)
                .or_default()
                .push((key, candidate_ns));
        }
        let ticks = self
            .throttling
            .tick(snapshot.at_ns, &snapshot.cgroups, &usage);
        let mut allowed = FxHashMap::default();
        for (group, threads) in candidates {
            if let Some(tick) = ticks.get(&group) {
                allowed.extend(allowances(*tick, &threads));
            }
        }
        allowed
    }

    /// A process seen for the first time, or again after an exec; the same PID with another
    /// start time is another process (the PID was reused), and the old one's account is kept.
    fn note_process(&mut self, info: &ProcessInfo) {
        let reused = self
            .processes
            .get(&info.pid)
            .is_some_and(|old| old.info.start_ticks != info.start_ticks);
        if reused {
            if let Some(old) = self.processes.remove(&info.pid) {
                self.finished_processes.push(old);
                if self.finished_processes.len() > 2 * KEPT_FINISHED_THREADS {
                    self.finished_processes
                        .sort_by(|a, b| b.cpu_ns.total_cmp(&a.cpu_ns));
                    self.finished_processes.truncate(KEPT_FINISHED_THREADS);
                }
            }
        }
        let account = self
            .processes
            .entry(info.pid)
            .or_insert_with(|| ProcessAccount {
                info: info.clone(),
                cpu_ns: 0.0,
                threads: 0,
                kernel_first_ns: None,
                kernel_last_ns: 0,
            });
        account.info = info.clone();
    }

    /// Accounts one thread's interval up to this observation: its split, how much of the
    /// interval it was busy (see `ThreadAccount::advance`) and its stopped time by who stopped
    /// it; the interval itself goes to `last_tick`. `None` if the thread has no account.
    fn account_thread(
        &mut self,
        index: usize,
        observation: &ThreadObservation,
        throttled_ns: f64,
    ) -> Option<(TimeSplit, f64, StoppedBy)> {
        let key = (observation.pid, observation.tid);
        let known = self.threads.get(&key);
        let has_account = known.is_some();
        let previous = known.and_then(|a| a.prev_wait.clone());
        let wait = wait_of(observation, previous);
        let born = match observation.sighting {
            Sighting::BornAt(_) => true,
            Sighting::Continuing | Sighting::Baseline => false,
        };
        self.open_account(key, observation, wait.as_ref(), has_account);
        let account = self.threads.get_mut(&key)?;
        if let Some(name) = &observation.comm {
            account.name.clone_from(name);
        }
        let exited = observation
            .state
            .as_ref()
            .is_some_and(|state| matches!(state.letter, 'Z' | 'X'));
        let either = |test: fn(&Wait) -> bool| {
            wait.as_ref().is_some_and(test) || account.prev_wait.as_ref().is_some_and(test)
        };
        let syncing = either(|w| w.sync);
        let on_io = either(|w| w.kind.is_io());
        // A thread born during the interval started it running.
        let wait_before = if born {
            None
        } else {
            account.prev_wait.as_ref().map(|w| w.kind)
        };
        let wait_after = wait.as_ref().map(|w| w.kind);
        let reading = Reading::of(observation);
        let (split, busy_ns) = account.advance(reading, wait, exited, throttled_ns);
        account.time.add(&split);
        let switches = account.count_switches(observation.timeslices);
        if syncing {
            self.sync_switches += switches;
        }
        if on_io {
            self.io_switches += switches;
        }
        self.last_tick.threads.push(ThreadInterval {
            pid: observation.pid,
            tid: observation.tid,
            observation: index,
            account_started_ns: account.started_ns,
            split,
            wait_before,
            wait_after,
        });
        for (mount, ns) in account.disk_now.drain(..).filter(|(_, ns)| *ns > 0.0) {
            add_to(&mut self.last_tick.disk_waits, &mount, ns);
        }
        Some((split, busy_ns, std::mem::take(&mut account.stopped_now)))
    }

    /// Opens the thread's account when this observation starts one: from its birth, or from
    /// this observation (a baseline, or a thread without an account); a continuing one keeps
    /// its own.
    fn open_account(
        &mut self,
        key: (i32, i32),
        observation: &ThreadObservation,
        wait: Option<&Wait>,
        has_account: bool,
    ) {
        let (pid, tid) = key;
        match observation.sighting {
            Sighting::Continuing if has_account => {}
            Sighting::Continuing | Sighting::Baseline => {
                let since = Reading::of(observation);
                let baseline = ThreadAccount::new(pid, tid, wait, since, observation.timeslices);
                self.start_thread(key, baseline);
            }
            Sighting::BornAt(born_ns) => {
                let since = Reading {
                    at_ns: born_ns.min(observation.at_ns),
                    cpu_ns: 0,
                    runqueue_ns: 0,
                };
                self.start_thread(key, ThreadAccount::new(pid, tid, wait, since, 0));
            }
        }
    }

    fn start_thread(&mut self, key: (i32, i32), account: ThreadAccount) {
        if let Some(old) = self.threads.insert(key, account) {
            self.finish(old);
        }
        if let Some(process) = self.processes.get_mut(&key.0) {
            process.threads += 1;
        }
    }

    /// Keeps an exited thread's account, but only the busiest ones: memory stays bounded
    /// however many threads come and go (their time is in the totals already).
    fn finish(&mut self, account: ThreadAccount) {
        self.finished_threads.push(account);
        if self.finished_threads.len() > 2 * KEPT_FINISHED_THREADS {
            self.finished_threads
                .sort_by(|a, b| b.time.cpu_ns.total_cmp(&a.time.cpu_ns));
            self.finished_threads.truncate(KEPT_FINISHED_THREADS);
        }
    }

    /// Each thread's interval in the last tick ingested, in the order of its observations.
    pub fn intervals(&self) -> &[ThreadInterval] {
        &self.last_tick.threads
    }

    /// The wall split and tree CPU since the last call, for a live display.
    pub fn take_recent(&mut self) -> (TimeSplit, f64) {
        let recent = std::mem::take(&mut self.recent);
        (recent, std::mem::take(&mut self.recent_cpu_ns))
    }

    /// What is known of a live (or last seen) process with this PID.
    pub fn process_info(&self, pid: i32) -> Option<&ProcessInfo> {
        self.processes.get(&pid).map(|p| &p.info)
    }

    pub fn ppid_of(&self, pid: i32) -> Option<i32> {
        self.process_info(pid).map(|info| info.ppid)
    }

    pub fn threads(&self) -> impl Iterator<Item = &ThreadAccount> {
        self.threads.values().chain(self.finished_threads.iter())
    }

    pub fn processes(&self) -> impl Iterator<Item = &ProcessAccount> {
        self.processes
            .values()
            .chain(self.finished_processes.iter())
    }

    /// CPU the sampler accounted for, per process from its own counters where they say more
    /// than the sampled threads (threads that came and went between samples).
    pub fn cpu_seen_ns(&self) -> f64 {
        self.processes().map(ProcessAccount::cpu_seen_ns).sum()
    }

    /// Sampled span: the wall time the ticks covered.
    pub fn span_ns(&self) -> f64 {
        self.wall.total_ns()
    }
}

/// A thread's counters at one observation.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at_ns: u64,
    cpu_ns: u64,
    runqueue_ns: u64,
}

impl Reading {
    fn of(observation: &ThreadObservation) -> Reading {
        Reading {
            at_ns: observation.at_ns,
            cpu_ns: observation.cpu_ns,
            runqueue_ns: observation.runqueue_ns,
        }
    }
}

/// The wait a thread is in at an observation: what its state says, or, when it has not run
/// since the last one (no state read), the wait it was in then.
fn wait_of(observation: &ThreadObservation, previous: Option<Wait>) -> Option<Wait> {
    match &observation.state {
        Some(state) => {
            let kind = classify(state);
            let detail = detail_of(state, kind);
            kind.map(|kind| Wait {
                kind,
                sync: kind == WaitKind::Disk && is_sync(state),
                metadata: kind == WaitKind::Disk && is_file_metadata_change(state),
                detail,
            })
        }
        None => previous,
    }
}

/// A counter's or the clock's advance between two readings, capped at about 52 days of
/// nanoseconds: a damaged recording cannot overflow the sums built from it.
fn delta(now: u64, before: u64) -> u64 {
    now.saturating_sub(before).min(1 << 52)
}

impl ThreadAccount {
    /// An account that begins at `since` (with `timeslices` switches before it), in `wait`.
    fn new(pid: i32, tid: i32, wait: Option<&Wait>, since: Reading, timeslices: u64) -> Self {
        ThreadAccount {
            pid,
            tid,
            name: String::new(),
            started_ns: since.at_ns,
            time: TimeSplit::default(),
            timeslices: 0,
            prev_at_ns: since.at_ns,
            prev_timeslices: timeslices,
            prev_cpu_ns: since.cpu_ns,
            prev_runqueue_ns: since.runqueue_ns,
            prev_wait: wait.cloned(),
            last_wait: wait.cloned(),
            details: Vec::new(),
            stopped_now: Vec::new(),
            disk_now: Vec::new(),
            pending_off_ns: 0,
            throttle_debt: (0.0, 0),
        }
    }

    /// Counts the switches since the last observation, up to `timeslices`; returns them.
    fn count_switches(&mut self, timeslices: u64) -> u64 {
        let switches = timeslices.saturating_sub(self.prev_timeslices);
        self.timeslices += switches;
        self.prev_timeslices = timeslices;
        switches
    }

    /// The CPU this observation adds, and how long the thread waited for a CPU in the
    /// interval: its run-queue wait, and the time it was runnable at both ends without
    /// running (what a cgroup's quota does on some kernels).
    fn preview(&self, observation: &ThreadObservation, wait: Option<&Wait>) -> (f64, f64) {
        let elapsed = delta(observation.at_ns, self.prev_at_ns) as i64;
        let cpu = delta(observation.cpu_ns, self.prev_cpu_ns);
        let runqueue = delta(observation.runqueue_ns, self.prev_runqueue_ns);
        let off = (elapsed - cpu as i64 - runqueue as i64).saturating_add(self.pending_off_ns);
        let runnable = self.prev_wait.is_none() && wait.is_none();
        let runnable_off = match (runnable, cpu + runqueue) {
            // Runnable, and its counters stood still: held the whole interval.
            (true, 0) => elapsed.max(0) as f64,
            (true, _) => off.max(0) as f64,
            (false, _) => 0.0,
        };
        (cpu as f64, runqueue as f64 + runnable_off)
    }

    /// Accounts the interval from the previous reading to this one. Also returns how much of
    /// the interval the thread was busy (on a CPU or queued for one), smoothed for counter lag:
    /// the part of the interval not attributed to a wait. A thread seen `exited` (a zombie)
    /// is charged its last CPU, but no wait: after its exit it waits for nothing.
    /// `throttled_ns` of its waiting for a CPU was its cgroup's quota: first the time it was
    /// runnable at both ends without running, then its run-queue wait.
    fn advance(
        &mut self,
        reading: Reading,
        wait: Option<Wait>,
        exited: bool,
        throttled_ns: f64,
    ) -> (TimeSplit, f64) {
        let Reading {
            at_ns,
            cpu_ns,
            runqueue_ns,
        } = reading;
        let mut split = TimeSplit::default();
        let elapsed = delta(at_ns, self.prev_at_ns) as i64;
        let cpu = delta(cpu_ns, self.prev_cpu_ns);
        let runqueue = delta(runqueue_ns, self.prev_runqueue_ns);
        split.cpu_ns = cpu as f64;
        split.runqueue_ns = runqueue as f64;
        let mut off = (elapsed - cpu as i64 - runqueue as i64).saturating_add(self.pending_off_ns);
        self.pending_off_ns = 0;
        if exited {
            let busy = ((cpu + runqueue) as f64).min(elapsed.max(0) as f64);
            self.prev_at_ns = at_ns;
            self.prev_cpu_ns = cpu_ns;
            self.prev_runqueue_ns = runqueue_ns;
            return (split, busy);
        }
        let runnable = self.prev_wait.is_none() && wait.is_none();
        off = self.charge_throttled(&mut split, elapsed, off, at_ns, runnable, throttled_ns);
        if off < 0 {
            self.pending_off_ns = off;
        } else {
            self.charge_off(&mut split, off, wait.as_ref());
        }
        if wait.is_some() {
            self.last_wait = wait.clone();
        }
        self.prev_at_ns = at_ns;
        self.prev_cpu_ns = cpu_ns;
        self.prev_runqueue_ns = runqueue_ns;
        self.prev_wait = wait;
        // Run-queue time moved to `throttled` is a wait, not busy time.
        let busy = (elapsed as f64 - split.waits_ns.iter().sum::<f64>()).max(0.0);
        (split, busy)
    }

    /// Charges `throttled_ns` of the interval's waiting for a CPU to the cgroup's quota: first
    /// the time the thread was `runnable` at both ends without running (a stretch held while
    /// its counters stood still is kept as a debt its run-queue counter may show later), then
    /// its run-queue wait. Returns the off-CPU time `off` less what was charged.
    fn charge_throttled(
        &mut self,
        split: &mut TimeSplit,
        elapsed: i64,
        mut off: i64,
        at_ns: u64,
        runnable: bool,
        throttled_ns: f64,
    ) -> i64 {
        let mut throttle_left = throttled_ns;
        let throttled = Wait::plain(WaitKind::Throttled);
        let (debt, debt_at) = self.throttle_debt;
        if debt > 0.0 && at_ns.saturating_sub(debt_at) > THROTTLE_DEBT_LIFE_NS {
            self.throttle_debt = (0.0, 0);
        }
        if split.cpu_ns + split.runqueue_ns == 0.0 && runnable && throttle_left > 0.0 {
            // Held the whole interval: charged now, so the wall view shows it when it happened.
            let held = (elapsed.max(0) as f64).min(throttle_left);
            self.charge(split, &throttled, held);
            throttle_left = 0.0;
            off -= held as i64;
            self.throttle_debt = (self.throttle_debt.0 + held, at_ns);
        } else if self.throttle_debt.0 > 0.0 && split.runqueue_ns > 0.0 {
            // The run-queue counter now shows what was already charged: not twice.
            let paid = split.runqueue_ns.min(self.throttle_debt.0);
            split.runqueue_ns -= paid;
            self.throttle_debt.0 -= paid;
            off += paid as i64;
            throttle_left = (throttle_left - paid).max(0.0);
        }
        if off > 0 && runnable && throttle_left > 0.0 {
            let held = (off as f64).min(throttle_left);
            self.charge(split, &throttled, held);
            throttle_left -= held;
            off -= held as i64;
        }
        if throttle_left > 0.0 {
            let held = split.runqueue_ns.min(throttle_left);
            split.runqueue_ns -= held;
            self.charge(split, &throttled, held);
        }
        off
    }

    /// Charges the interval's off-CPU time `off` (not negative) to the waits at its two ends
    /// (`wait` now, the previous one before).
    fn charge_off(&mut self, split: &mut TimeSplit, off: i64, wait: Option<&Wait>) {
        match (self.prev_wait.clone(), wait) {
            // Half each side of a change of wait (or of what the same wait was on).
            (Some(before), Some(now)) if before != *now => {
                self.charge(split, &before, off as f64 / 2.0);
                self.charge(split, now, off as f64 / 2.0);
            }
            (Some(kind), _) => self.charge(split, &kind, off as f64),
            (None, Some(kind)) => self.charge(split, kind, off as f64),
            // Running at both ends: waits too short to be seen (a thread doing many quick
            // fsyncs) or counter lag, which the next interval takes back. Give it to the
            // wait this thread was last seen in; with none seen yet, keep it for the first
            // wait seen (most likely the same kind), unless it grows past a second.
            (None, None) => match self.last_wait.clone() {
                Some(kind) => self.charge(split, &kind, off as f64),
                None if off > UNSEEN_WAIT_LIMIT_NS => {
                    split.waits_ns[WaitKind::Other.index()] += off as f64
                }
                None => self.pending_off_ns = off,
            },
        }
    }
}

impl ThreadAccount {
    /// Adds `ns` of `wait` to `split` (and to its sync share), and to the time of what it was
    /// on.
    fn charge(&mut self, split: &mut TimeSplit, wait: &Wait, ns: f64) {
        split.waits_ns[wait.kind.index()] += ns;
        if wait.sync {
            split.disk_sync_ns += ns;
        }
        if wait.metadata {
            split.disk_metadata_ns += ns;
        }
        let Some(detail) = &wait.detail else { return };
        match detail {
            WaitDetail::StoppedBy(by) => add_to(&mut self.stopped_now, by, ns),
            WaitDetail::Mount(mount) if wait.kind == WaitKind::Disk => {
                add_to(&mut self.disk_now, mount, ns);
            }
            WaitDetail::Mount(_) => {}
        }
        match self
            .details
            .iter_mut()
            .find(|(k, d, _)| *k == wait.kind && d == detail)
        {
            Some((_, _, total)) => *total += ns,
            None => self.details.push((wait.kind, detail.clone(), ns)),
        }
    }

    /// What this thread's wait of `kind` was mostly on, if known.
    pub fn main_detail(&self, kind: WaitKind) -> Option<&WaitDetail> {
        main_detail(&self.details, kind)
    }
}

/// Of wait time by what it was on, by kind: what the waits of `kind` were mostly on.
pub fn main_detail(details: &[(WaitKind, WaitDetail, f64)], kind: WaitKind) -> Option<&WaitDetail> {
    details
        .iter()
        .filter(|(k, _, _)| *k == kind)
        .max_by(|a, b| a.2.total_cmp(&b.2))
        .map(|(_, detail, _)| detail)
}

/// Adds `ns` to the time of `what` (who stopped a thread, the mount of a file...).
fn add_to<T: PartialEq + Clone>(totals: &mut Vec<(T, f64)>, what: &T, ns: f64) {
    match totals.iter_mut().find(|(known, _)| known == what) {
        Some((_, total)) => *total += ns,
        None => totals.push((what.clone(), ns)),
    }
}

/// Splits one tick's wall time: the share the tree computed (or queued for a CPU) first, then
/// what is left by the wait groups in priority order, proportionally within a group.
/// `busy_ns` is the threads' busy time in the tick (thread-seconds, lag-smoothed).
pub fn wall_split(tick_ns: f64, interval: &TimeSplit, busy_ns: f64) -> TimeSplit {
    let mut wall = TimeSplit::default();
    if tick_ns <= 0.0 {
        return wall;
    }
    let computing = busy_ns.min(tick_ns);
    let counted = interval.cpu_ns + interval.runqueue_ns;
    if counted > 0.0 {
        // A thread on a CPU explains the wall before others queued for one: eight threads
        // sharing two cores compute all the time, however long each of them queues.
        wall.cpu_ns = (computing * interval.cpu_ns / counted).max(interval.cpu_ns.min(computing));
        wall.runqueue_ns = computing - wall.cpu_ns;
    } else {
        wall.cpu_ns = computing;
    }
    let mut left = tick_ns - computing;
    for group in WALL_PRIORITY {
        if left <= 0.0 {
            break;
        }
        let total: f64 = group.iter().map(|kind| interval.wait(*kind)).sum();
        if total <= 0.0 {
            continue;
        }
        let take = total.min(left);
        for kind in group {
            wall.waits_ns[kind.index()] += take * interval.wait(*kind) / total;
        }
        left -= take;
    }
    // Nothing observed explains the rest (between processes, or before the first thread).
    wall.waits_ns[WaitKind::Other.index()] += left.max(0.0);
    let disk = interval.wait(WaitKind::Disk);
    if disk > 0.0 {
        wall.disk_sync_ns = wall.wait(WaitKind::Disk) * interval.disk_sync_ns / disk;
        wall.disk_metadata_ns = wall.wait(WaitKind::Disk) * interval.disk_metadata_ns / disk;
    }
    wall
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computing_explains_the_wall_before_any_wait() {
        // One thread computing all the tick, seven pool threads parked on futexes.
        let interval = TimeSplit::with_waits(10.0, &[(WaitKind::Lock, 70.0)]);
        let wall = wall_split(10.0, &interval, 10.0);
        assert_eq!(wall.cpu_ns, 10.0);
        assert_eq!(wall.wait(WaitKind::Lock), 0.0);
    }

    #[test]
    fn threads_on_futexes_explain_the_wall_after_timers_and_pollers() {
        // A pool's main thread on its futures (a futex) while four workers sleep.
        let joining =
            TimeSplit::with_waits(0.0, &[(WaitKind::Lock, 10.0), (WaitKind::Sleep, 40.0)]);
        let wall = wall_split(10.0, &joining, 0.0);
        assert_eq!(wall.wait(WaitKind::Sleep), 10.0);
        assert_eq!(wall.wait(WaitKind::Lock), 0.0);
        // Node or a JVM serving little: its loop in epoll, four helper threads on futexes.
        let serving =
            TimeSplit::with_waits(0.0, &[(WaitKind::EventWait, 10.0), (WaitKind::Lock, 40.0)]);
        assert_eq!(
            wall_split(10.0, &serving, 0.0).wait(WaitKind::EventWait),
            10.0
        );
        // Alone, a lock is the wall; and it comes before a wait on a child.
        let alone = TimeSplit::with_waits(0.0, &[(WaitKind::Lock, 10.0), (WaitKind::Child, 10.0)]);
        assert_eq!(wall_split(10.0, &alone, 0.0).wait(WaitKind::Lock), 10.0);
        // Threads contending for a lock whose holder does I/O: the I/O explains the wall.
        let contended =
            TimeSplit::with_waits(0.0, &[(WaitKind::Lock, 30.0), (WaitKind::Disk, 10.0)]);
        assert_eq!(wall_split(10.0, &contended, 0.0).wait(WaitKind::Disk), 10.0);
    }

    #[test]
    fn io_outranks_idle_waits_and_the_rest_is_shared_in_group() {
        let interval = TimeSplit::with_waits(
            2.0,
            &[
                (WaitKind::Network, 6.0),
                (WaitKind::Disk, 2.0),
                (WaitKind::Sleep, 10.0),
            ],
        );
        let wall = wall_split(10.0, &interval, 2.0);
        assert_eq!(wall.cpu_ns, 2.0);
        assert_eq!(wall.wait(WaitKind::Network), 6.0);
        assert_eq!(wall.wait(WaitKind::Disk), 2.0);
        assert_eq!(wall.wait(WaitKind::Sleep), 0.0);
        assert_eq!(wall.total_ns(), 10.0);
    }

    #[test]
    fn a_parent_waiting_on_its_child_explains_only_what_nothing_else_does() {
        let interval = TimeSplit::with_waits(10.0, &[(WaitKind::Child, 10.0)]);
        let wall = wall_split(10.0, &interval, 10.0);
        assert_eq!(wall.wait(WaitKind::Child), 0.0);
        let idle = wall_split(
            10.0,
            &TimeSplit::with_waits(0.0, &[(WaitKind::Child, 10.0)]),
            0.0,
        );
        assert_eq!(idle.wait(WaitKind::Child), 10.0);
    }

    fn account_waiting_on(kind: WaitKind) -> ThreadAccount {
        ThreadAccount {
            pid: 1,
            tid: 1,
            name: String::new(),
            started_ns: 0,
            time: TimeSplit::default(),
            timeslices: 0,
            prev_at_ns: 0,
            prev_timeslices: 0,
            prev_cpu_ns: 0,
            prev_runqueue_ns: 0,
            prev_wait: Some(plain(kind)),
            last_wait: Some(plain(kind)),
            details: Vec::new(),
            stopped_now: Vec::new(),
            disk_now: Vec::new(),
            pending_off_ns: 0,
            throttle_debt: (0.0, 0),
        }
    }

    fn plain(kind: WaitKind) -> Wait {
        Wait::plain(kind)
    }

    fn read(at_ns: u64, cpu_ns: u64, runqueue_ns: u64) -> Reading {
        Reading {
            at_ns,
            cpu_ns,
            runqueue_ns,
        }
    }

    #[test]
    fn off_cpu_time_goes_half_and_half_across_a_change_of_wait() {
        let mut account = account_waiting_on(WaitKind::Disk);
        let sleep = Some(plain(WaitKind::Sleep));
        let (s, busy) = account.advance(read(100, 20, 0), sleep, false, 0.0);
        assert_eq!(s.cpu_ns, 20.0);
        assert_eq!(busy, 20.0);
        assert_eq!(s.wait(WaitKind::Disk), 40.0);
        assert_eq!(s.wait(WaitKind::Sleep), 40.0);
        // Counters ahead of the clock: nothing negative, the excess is settled next time,
        // and the thread counts as busy for the whole interval.
        let (s, busy) = account.advance(read(110, 35, 0), None, false, 0.0);
        assert_eq!(s.wait(WaitKind::Sleep), 0.0);
        assert_eq!(busy, 10.0);
        let disk = Some(plain(WaitKind::Disk));
        let (s, _) = account.advance(read(200, 40, 0), disk, false, 0.0);
        assert_eq!(s.wait(WaitKind::Disk), 80.0);
    }

    #[test]
    fn sync_waits_are_disk_waits_counted_apart_too() {
        let mut account = account_waiting_on(WaitKind::Disk);
        let sync = Some(Wait {
            sync: true,
            ..Wait::plain(WaitKind::Disk)
        });
        account.prev_wait = sync.clone();
        let (s, _) = account.advance(read(100, 10, 0), sync, false, 0.0);
        assert_eq!(s.wait(WaitKind::Disk), 90.0);
        assert_eq!(s.disk_sync_ns, 90.0);
        let (s, _) = account.advance(read(200, 10, 0), Some(plain(WaitKind::Disk)), false, 0.0);
        assert_eq!(s.wait(WaitKind::Disk), 100.0);
        assert_eq!(s.disk_sync_ns, 50.0, "half the interval was the sync");
    }

    #[test]
    fn throttling_that_run_delay_shows_late_is_charged_when_it_happened_and_only_once() {
        let mut account = account_waiting_on(WaitKind::Disk);
        account.prev_wait = None;
        account.last_wait = None;
        // Held for a whole 10 ns tick: the counters stand still.
        let (s, busy) = account.advance(read(10, 0, 0), None, false, 10.0);
        assert_eq!((s.wait(WaitKind::Throttled), busy), (10.0, 0.0));
        // Then it runs 2 ns, and run_delay shows the 10 ns held plus 8 more now.
        let (s, _) = account.advance(read(20, 2, 18), None, false, 18.0);
        assert_eq!(s.wait(WaitKind::Throttled), 8.0);
        assert_eq!(s.runqueue_ns, 0.0);
        assert_eq!(account.pending_off_ns, 0, "the totals telescope");
    }

    #[test]
    fn a_quota_turns_run_queue_wait_and_unexplained_runnable_time_into_throttled() {
        let mut account = account_waiting_on(WaitKind::Disk);
        account.prev_wait = None;
        account.last_wait = None;
        // Runnable at both ends: 40 ns ran, 20 queued, 40 unaccounted.
        let (s, busy) = account.advance(read(100, 40, 20), None, false, 60.0);
        assert_eq!(s.wait(WaitKind::Throttled), 60.0);
        assert_eq!(s.runqueue_ns, 0.0);
        assert_eq!(s.cpu_ns, 40.0);
        assert_eq!(busy, 40.0);
        // Without a quota the same interval is busy, as before.
        let (s, busy) = account.advance(read(200, 80, 40), None, false, 0.0);
        assert_eq!(s.wait(WaitKind::Throttled), 0.0);
        assert_eq!(s.runqueue_ns, 20.0);
        assert_eq!(busy, 100.0);
    }

    #[test]
    fn a_threads_waits_on_files_name_their_mount() {
        let mut accountant = Accountant::default();
        accountant.ingest(&tick(0, 0, Some(blocked('D', Some("/nfs/a"), None))));
        accountant.ingest(&tick(1000, 0, None));
        accountant.ingest(&tick(2000, 0, Some(blocked('D', Some("/nfs/a"), None))));
        // Another file on another mount for the last second.
        accountant.ingest(&tick(3000, 0, Some(blocked('D', Some("/nfs/b"), None))));
        let thread = accountant.threads().next().unwrap();
        assert_eq!(thread.time.wait(WaitKind::NetworkFs), 3e9);
        let Some(WaitDetail::Mount(main)) = thread.main_detail(WaitKind::NetworkFs) else {
            panic!("no mount named: {:?}", thread.details);
        };
        assert_eq!(main.point, "/nfs/a");
        assert_eq!(thread.main_detail(WaitKind::Disk), None);
        let on_b: f64 = thread
            .details
            .iter()
            .filter(|(_, d, _)| matches!(d, WaitDetail::Mount(m) if m.point == "/nfs/b"))
            .map(|(_, _, ns)| ns)
            .sum();
        assert_eq!(on_b, 0.5e9, "half of the interval across the change");
    }

    #[test]
    fn each_tick_names_the_disk_wait_on_each_mount() {
        let mut accountant = Accountant::default();
        accountant.ingest(&tick(0, 0, Some(blocked('D', Some("/data"), None))));
        // Still blocked, not run since: the wait goes on, on the same mount.
        accountant.ingest(&tick(1000, 0, None));
        let waits = &accountant.last_tick.disk_waits;
        assert_eq!(waits.len(), 1);
        assert_eq!((waits[0].0.point.as_str(), waits[0].1), ("/data", 1e9));
        accountant.ingest(&tick(2000, 500, Some(ThreadState::running())));
        // Half of the second went to computing; the rest to the wait on /data.
        assert_eq!(accountant.last_tick.disk_waits[0].1, 0.5e9);
        accountant.ingest(&tick(3000, 1500, Some(ThreadState::running())));
        assert_eq!(accountant.last_tick.disk_waits, vec![]);
    }

    #[test]
    fn stopped_wall_time_goes_to_who_stopped_the_thread() {
        let tracer = Stopper::Tracer {
            pid: 77,
            name: "gdb".into(),
        };
        let mut accountant = Accountant::default();
        accountant.ingest(&tick(0, 0, Some(blocked('S', None, None))));
        accountant.ingest(&tick(
            1000,
            0,
            Some(blocked('t', None, Some(tracer.clone()))),
        ));
        accountant.ingest(&tick(3000, 0, None));
        accountant.ingest(&tick(4000, 0, Some(blocked('S', None, None))));
        // Half of the first second (across the change) and the next two.
        assert_eq!(accountant.wall.wait(WaitKind::Stopped), 3e9);
        assert_eq!(accountant.stops, vec![(tracer, 3e9)]);
    }

    fn tick(at_ms: u64, cpu_ms: u64, state: Option<ThreadState>) -> TickSnapshot {
        use crate::sampler::observation::ThreadObservation;
        TickSnapshot {
            at_ns: at_ms * 1_000_000,
            threads: vec![ThreadObservation {
                pid: 1,
                tid: 1,
                at_ns: at_ms * 1_000_000,
                sighting: if at_ms == 0 {
                    Sighting::BornAt(0)
                } else {
                    Sighting::Continuing
                },
                comm: None,
                cpu_ns: cpu_ms * 1_000_000,
                runqueue_ns: 0,
                timeslices: cpu_ms,
                state: state.map(Box::new),
            }],
            ..TickSnapshot::default()
        }
    }

    fn blocked(letter: char, mount: Option<&str>, stopped_by: Option<Stopper>) -> ThreadState {
        use crate::sampler::observation::{FdKind, SyscallState};
        ThreadState {
            letter,
            syscall: SyscallState::Blocked {
                call: syscalls::Sysno::read,
                args: [3, 0, 0, 0, 0, 0],
            },
            wchan: None,
            fds: vec![if mount.is_some_and(|m| m.starts_with("/nfs")) {
                FdKind::NetworkFile
            } else {
                FdKind::RegularFile
            }],
            mount: mount.map(|point| {
                let network = point.starts_with("/nfs");
                Arc::new(FileMount {
                    point: point.into(),
                    fs_type: if network { "nfs4" } else { "ext4" }.into(),
                    source: "server:/export".into(),
                    device: if network { "0:53" } else { "8:1" }.into(),
                    network,
                    discard: false,
                })
            }),
            watched: 0,
            watched_peers: 0,
            fd_sync: false,
            peers: Vec::new(),
            stopped_by,
            served: None,
        }
    }
}
