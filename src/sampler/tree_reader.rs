//! Walks the measured process tree in /proc and reads every thread's counters and wait state.

use std::collections::{HashSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use procfs::FromRead;
use rustc_hash::{FxHashMap, FxHashSet};
use syscalls::Sysno;

use super::cgroups::CgroupReader;
use super::discovery::{parse_parent_and_start, Discovery, ProcScan};
use super::fd_resolver::{FdResolver, ProcessFiles, WaitTargets};
use super::listeners::ListenerReader;
use super::loops::LoopScanner;
use super::observation::{
    FdKind, OutsidePeer, ProcessCpu, ProcessInfo, Sighting, Stopper, SyscallState,
    ThreadObservation, ThreadState, TickSnapshot,
};
use super::offload::Offload;
use super::proc_file::{open_files, read_once, ProcFile, ReadFailure};
use super::stops::{sleeps_in_freezer, ProcessCgroups, Stops};
use super::thread_files::{DescriptorBudget, ThreadFile, ThreadFiles};

/// /proc/PID/task is listed again at least this often even when the thread count is steady
/// (a thread that ended and one that began between two looks leave the count alone)...
const TASK_RELIST_PERIOD: Duration = Duration::from_secs(1);
/// ...or, for a process with more threads than this a second, once per that many threads
/// (listing 10,000 threads costs 4 ms: every 4 s).
const RELIST_THREADS_PER_SECOND: u64 = 2500;

/// Which processes make up the measured tree.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// Every descendant of concadvise itself (`run`: the launched program, and orphans that
    /// concadvise reaps as a child subreaper).
    DescendantsOfSelf,
    /// One process (identified by PID and start time, against PID reuse) and its descendants.
    Process { pid: i32, start_ticks: u64 },
}

/// Which per-thread sources could be read; the report records it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SourceStatus {
    pub syscall_denied: bool,
    pub wchan_denied: bool,
    pub fds_denied: bool,
    /// Some file could not be opened because concadvise had no descriptor left: threads were
    /// not followed, or their waits not read (then `unknown`).
    pub descriptors_ran_out: bool,
}

/// Why threads of the tree were not followed (the most telling cause seen).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum UnseenCause {
    #[default]
    None,
    /// A read failed for another reason.
    Errors,
    /// Their files were not readable (a hidepid /proc, for instance).
    Permissions,
    /// concadvise ran out of file descriptors.
    Descriptors,
}

impl UnseenCause {
    pub fn name(self) -> Option<&'static str> {
        match self {
            UnseenCause::None => None,
            UnseenCause::Errors => Some("errors"),
            UnseenCause::Permissions => Some("permissions"),
            UnseenCause::Descriptors => Some("descriptors"),
        }
    }

    fn of(failure: &ReadFailure) -> UnseenCause {
        match failure {
            ReadFailure::NoDescriptors => UnseenCause::Descriptors,
            ReadFailure::Denied => UnseenCause::Permissions,
            _ => UnseenCause::Errors,
        }
    }
}

/// The counters at the previous read of a thread.
struct LastRead {
    cpu_ns: u64,
    runqueue_ns: u64,
    timeslices: u64,
    /// Consecutive reads that found the counters unchanged.
    unchanged_reads: u32,
    /// Its state was R (running or runnable) at that read.
    running: bool,
    /// When its counters were last seen to move (ns since sampling started), or, for a thread
    /// found blocked, a `DORMANT_AFTER_NS` before it was found.
    changed_at_ns: u64,
}

/// A process with more than `MANY_THREADS` threads has its own stat read at most this often,
/// and one with more than `STAT_THREADS_PER_PERIOD` once per that many threads' worth of the
/// period (the kernel sums it over every thread: about 1 ms for 10,000 of them, every 0.5 s).
const LARGE_PROCESS_STAT_PERIOD: Duration = Duration::from_millis(100);
const STAT_THREADS_PER_PERIOD: u64 = 2000;
/// With more threads than this, threads that stay blocked are read less often.
const MANY_THREADS: usize = 64;
/// A thread unchanged at this many reads in a row, and for this long, is dormant (a worker
/// that wakes for a request every few hundred milliseconds is not: skipped between its wake-
/// ups, its waits would be charged to the futex it parks on between them)...
const DORMANT_AFTER: u32 = 4;
const DORMANT_AFTER_NS: u64 = 1_000_000_000;
/// ...and then read about this often (its wait goes on meanwhile; if it ran after all, its
/// counters say so at the next read and the accounting settles the difference), or at the
/// next tick when its process used more CPU than the threads read account for...
const DORMANT_SWEEP: Duration = Duration::from_secs(1);
/// ...and with more threads than this, at this many reads a second (10,000 threads: each
/// every 4 s; a read costs about a microsecond).
const SWEEP_READS_PER_SECOND: usize = 2500;
/// CPU of a process beyond what its threads' reads showed, past which its dormant threads
/// are all read at the next tick: one of them ran. Its stat counts in clock ticks (10 ms):
/// three of them.
const UNEXPLAINED_CPU_NS: i64 = 30_000_000;
/// New threads are opened and read for at most this share of a tick's period (the rest wait
/// for the next tick; each counts from its birth all the same)...
const NEW_THREADS_SHARE_OF_TICK: f64 = 0.5;
/// ...but at least this many a tick.
const NEW_THREADS_AT_LEAST: usize = 64;

struct TrackedThread {
    pid: i32,
    tid: i32,
    files: ThreadFiles,
    /// The state letter read when it was found, for its first observation.
    found_letter: Option<char>,
    comm: String,
    sighting: Sighting,
    last: Option<LastRead>,
    /// Its children at the last look, and its timeslice count then: a thread that has not
    /// run since cannot have forked, so the list is reused.
    children: Vec<i32>,
    children_read_at: Option<(u64, u64)>,
    /// Its children file, held once it has been read (threads that fork are few).
    children_file: Option<ProcFile>,
    /// Its last observation was taken while its cgroup was frozen.
    reported_frozen: bool,
    /// Missing from its process's task list at the last listing: read at the next tick, to
    /// close its account.
    unlisted: bool,
}

impl TrackedThread {
    /// Unchanged at `DORMANT_AFTER` reads in a row.
    fn dormant(&self) -> bool {
        self.last
            .as_ref()
            .is_some_and(|last| last.unchanged_reads >= DORMANT_AFTER)
    }

    /// Not run since its last read (same CPU time and timeslices), its cgroup neither frozen
    /// nor thawed since, and not seen running then: one more unchanged read, and true. A
    /// thread read as running may have blocked a moment later without its counters moving
    /// (a child just forked, then sleeping): its state is read again until it is seen
    /// blocked, or it would count as running as long as it sleeps.
    fn unchanged_since_last(
        &mut self,
        cpu_ns: u64,
        timeslices: u64,
        frozen: bool,
        budget: &DescriptorBudget,
    ) -> bool {
        let Some(last) = &mut self.last else {
            return false;
        };
        let unchanged = last.cpu_ns == cpu_ns && last.timeslices == timeslices;
        if !unchanged || last.running || self.reported_frozen != frozen {
            return false;
        }
        last.unchanged_reads = last.unchanged_reads.saturating_add(1);
        // Dormant: its wait files are closed once descriptors grow scarce.
        if last.unchanged_reads >= DORMANT_AFTER && budget.pressed() {
            self.files.release_wait_files();
        }
        true
    }

    /// Its state letter, and its name when that changed (always at the first read). `hold`:
    /// keep its stat's descriptor.
    fn read_letter(
        &mut self,
        hold: bool,
        buf: &mut Vec<u8>,
    ) -> Result<(char, Option<String>), ReadFailure> {
        match self.found_letter.take() {
            // First read: its stat was read when it was found, a moment ago.
            Some(letter) => Ok((letter, Some(self.comm.clone()))),
            None => {
                self.files.read(ThreadFile::Stat, hold, buf)?;
                let (letter, name) = parse_stat_state(buf).ok_or_else(|| {
                    ReadFailure::Other(std::io::Error::other("stat has an unexpected form"))
                })?;
                let comm = (name != self.comm.as_str()).then(|| {
                    self.comm = name.into_owned();
                    self.comm.clone()
                });
                Ok((letter, comm))
            }
        }
    }

    /// Its counters and state as read now, for the next read. Found blocked at its first
    /// read: dormant after one more unchanged read (most threads of a large program are found
    /// blocked and stay so).
    fn remember(&mut self, counters: (u64, u64, u64), letter: char, first_read: bool, at_ns: u64) {
        let (cpu_ns, runqueue_ns, timeslices) = counters;
        let running = letter == 'R';
        let found_blocked = first_read && !running;
        self.last = Some(LastRead {
            changed_at_ns: if found_blocked {
                at_ns.saturating_sub(DORMANT_AFTER_NS)
            } else {
                at_ns
            },
            cpu_ns,
            runqueue_ns,
            timeslices,
            unchanged_reads: if found_blocked { DORMANT_AFTER - 1 } else { 0 },
            running,
        });
    }

    /// Reads its children file again unless it has not run since the last look (a thread
    /// that has not run cannot have forked); true when it was read.
    fn refresh_children(&mut self, budget: &DescriptorBudget, buf: &mut Vec<u8>) -> bool {
        // CPU time as well as switches: a thread that never leaves its CPU can fork too.
        let ran = self
            .last
            .as_ref()
            .map(|last| (last.cpu_ns, last.timeslices));
        if ran.is_some() && self.children_read_at == ran {
            return false;
        }
        self.children.clear();
        // Held only for threads that run again and again (the few that may fork), while the
        // budget has room.
        let children = self.files.dir().join("children");
        let read = match &self.children_file {
            Some(file) => file.read_all(buf),
            None if self.children_read_at.is_none() || !budget.room() => read_once(&children, buf),
            None => ProcFile::open(&children).and_then(|file| {
                file.read_all(buf)?;
                self.children_file = Some(file);
                Ok(())
            }),
        };
        if read.is_ok() {
            self.children.extend(parse_pids(buf));
        }
        self.children_read_at = ran;
        true
    }
}

struct TrackedProcess {
    /// As first read (and after an exec), for an update when a helper finds more.
    info: ProcessInfo,
    files: ProcessFiles,
    cgroups: ProcessCgroups,
    /// The frozen cgroup it is in at this tick, if any.
    frozen: Option<Arc<str>>,
    /// Its main thread was in D, or a thread slept in the freezer, at the last look: it may
    /// have been frozen (a frozen task does not run, so nothing else would show it).
    looks_frozen: bool,
    /// /proc/PID/stat, held: the process's CPU including its exited threads.
    stat: Option<ProcFile>,
    /// When it was last read (a large process's is read at most every
    /// `LARGE_PROCESS_STAT_PERIOD`).
    stat_read_at: Option<Instant>,
    /// Whether its threads' reads explain the CPU it used (see `CpuCheck`).
    cpu_check: CpuCheck,
    born_during: bool,
    /// Its thread count at the last read of stat, and when /proc/PID/task was last listed
    /// with that count: the listing is repeated only when the count changes, or after a while
    /// (a thread that ended and one that began between two looks leave the count alone).
    num_threads: u64,
    listed: Option<(u64, Instant)>,
    /// Its threads at the last listing, sorted.
    tids: Vec<i32>,
    /// The most threads it had beyond those followed when /proc/PID/task could not be listed
    /// (out of descriptors): threads never even found.
    unlisted: u64,
    /// How many times its command line was read again because it came back empty (a process
    /// read in the middle of an exec).
    command_retries: u8,
}

/// At most this many outside processes are named (a server with thousands of clients).
const MAX_NAMED_OUTSIDE: usize = 1000;

/// How often each process's executable is compared with the one it was first seen running.
const PROGRAM_CHECK_PERIOD: Duration = Duration::from_secs(1);

/// Whether process `pid` now runs another executable than `info` names (an exec that kept
/// the thread's name). The link is read from /proc, not followed.
fn executable_changed(pid: i32, info: &ProcessInfo) -> bool {
    let Some(known) = &info.exe else {
        return false;
    };
    fs::read_link(format!("/proc/{pid}/exe"))
        .is_ok_and(|now| now.to_string_lossy() != known.as_str())
}

/// An empty command line is read again at this many ticks at most.
const COMMAND_RETRIES: u8 = 5;

/// The command `read_process_info` writes when the command line could not be read.
fn command_unread(info: &ProcessInfo) -> bool {
    matches!(info.command.as_slice(), [only] if only.starts_with('[') && only.ends_with(']'))
}

/// Whether a process's CPU (its stat, which sums every thread) is explained by the threads
/// the sampler read: when it used more than they showed, a dormant thread ran.
#[derive(Debug, Default)]
struct CpuCheck {
    /// The process's CPU at its last stat read (None until the first, and after a wake).
    kernel_ns: Option<u64>,
    /// CPU its threads' reads showed since then.
    sampled_ns: u64,
    /// CPU used and not shown, summed over the reads since the last wake.
    unexplained_ns: i64,
    /// Read its dormant threads at the next tick.
    wake_dormant: bool,
}

impl CpuCheck {
    /// The process's CPU as its stat says now; true when its dormant threads are to be read.
    fn kernel_read(&mut self, kernel_ns: u64) -> bool {
        if let Some(last) = self.kernel_ns {
            let used = kernel_ns.saturating_sub(last) as i64;
            self.unexplained_ns += used - self.sampled_ns as i64;
            if self.unexplained_ns > UNEXPLAINED_CPU_NS {
                self.wake_dormant = true;
            }
        }
        self.kernel_ns = Some(kernel_ns);
        self.sampled_ns = 0;
        self.wake_dormant
    }

    /// Its dormant threads were read: start over from the next stat read.
    fn woken(&mut self) {
        *self = CpuCheck::default();
    }
}

pub struct TreeReader {
    scope: Scope,
    origin: Instant,
    origin_boot_ns: u64,
    ns_per_tick: u64,
    threads: FxHashMap<i32, TrackedThread>,
    processes: FxHashMap<i32, TrackedProcess>,
    discovered_once: bool,
    discovery: Discovery,
    /// When the processes' executables were last compared with what they were seen running.
    programs_checked_at: Option<Instant>,
    /// Processes outside the tree already named in a snapshot.
    named_outside: HashSet<i32>,
    scan: ProcScan,
    cgroups: CgroupReader,
    loops: LoopScanner,
    listeners: ListenerReader,
    resolver: FdResolver,
    stops: Stops,
    /// Reads of executables for Go's build info, on helper threads.
    go_reads: Offload<GoAnswer>,
    /// Files that would have had to be read on a network, FUSE or unknown mount (never done),
    /// or whose helper refused or did not answer.
    unresolved: u64,
    buf: Vec<u8>,
    sources: SourceStatus,
    /// Every process and thread ever seen, for the report's counts.
    pub processes_seen: u64,
    pub threads_seen: u64,
    /// Reads that failed for another reason than the task being gone (kept and retried).
    pub read_errors: u64,
    /// Threads found but not followed (their files could not be opened), until they are:
    /// tid -> pid.
    untracked: FxHashMap<i32, i32>,
    /// Threads found and not opened yet (discovery spreads the cost over ticks): in the order
    /// found, and by tid.
    pending: VecDeque<(i32, i32)>,
    pending_tids: FxHashSet<i32>,
    /// Threads that ran (or were found) since their children file was last read, and threads
    /// whose children list is not empty: the only ones a large process's walk visits.
    to_look: FxHashSet<i32>,
    parents: FxHashSet<i32>,
    /// What the sampler may hold, and the most it held at once.
    budget: DescriptorBudget,
    pub held_descriptors_max: usize,
    /// The tick period, for the sweep of dormant threads and the time new threads may take.
    period: Duration,
    /// CPU spent finding new processes and threads (discovery, every 100 ms whatever the
    /// rate), opening them and reading them the first time: costs that the sampler's rate
    /// does not change.
    pub new_threads_cpu: Duration,
    /// Threads of processes no longer followed that were never found (see `unlisted`).
    unlisted_gone: u64,
    /// Why threads were not followed.
    pub unseen_cause: UnseenCause,
    ticks: u64,
    /// concadvise's own threads and their held children files (run).
    own_tasks: Vec<(PathBuf, Option<ProcFile>)>,
    own_listed: Option<Instant>,
}

impl TreeReader {
    /// `origin` is time zero of the measurement; threads born after it count from their birth.
    pub fn new(scope: Scope, origin: Instant, discovery: Discovery) -> Self {
        let ticks_per_second = procfs::ticks_per_second().max(1);
        let boot_now = boottime_ns();
        let since_origin = origin.elapsed().as_nanos() as u64;
        TreeReader {
            scope,
            origin,
            origin_boot_ns: boot_now.saturating_sub(since_origin),
            ns_per_tick: 1_000_000_000 / ticks_per_second,
            threads: FxHashMap::default(),
            processes: FxHashMap::default(),
            discovered_once: false,
            discovery,
            programs_checked_at: None,
            named_outside: HashSet::new(),
            scan: ProcScan::default(),
            cgroups: CgroupReader::default(),
            loops: LoopScanner::default(),
            listeners: ListenerReader::default(),
            resolver: FdResolver::default(),
            stops: Stops::default(),
            go_reads: Offload::new("concadvise-exe"),
            unresolved: 0,
            buf: Vec::with_capacity(1024),
            sources: SourceStatus::default(),
            processes_seen: 0,
            threads_seen: 0,
            read_errors: 0,
            untracked: FxHashMap::default(),
            pending: VecDeque::new(),
            pending_tids: FxHashSet::default(),
            to_look: FxHashSet::default(),
            parents: FxHashSet::default(),
            budget: DescriptorBudget::from_limit(),
            held_descriptors_max: 0,
            period: Duration::from_millis(10),
            new_threads_cpu: Duration::ZERO,
            unlisted_gone: 0,
            unseen_cause: UnseenCause::None,
            ticks: 0,
            own_tasks: Vec::new(),
            own_listed: None,
        }
    }

    pub fn sources(&self) -> SourceStatus {
        SourceStatus {
            fds_denied: self.sources.fds_denied || self.resolver.denied,
            descriptors_ran_out: self.sources.descriptors_ran_out
                || self.unseen_cause == UnseenCause::Descriptors,
            ..self.sources
        }
    }

    /// Threads of the tree that were never followed: found but not opened, or (when their
    /// process's task list could not be read) counted by the process but never found. A lower
    /// bound: threads that came and went unseen meanwhile are not counted.
    pub fn threads_unseen(&self) -> u64 {
        let unlisted: u64 = self.processes.values().map(|p| p.unlisted).sum();
        self.untracked.len() as u64 + unlisted + self.unlisted_gone
    }

    fn note_unseen(&mut self, failure: &ReadFailure) {
        self.unseen_cause = self.unseen_cause.max(UnseenCause::of(failure));
    }

    pub fn live_threads(&self) -> usize {
        self.threads.len()
    }

    /// Threads found and not opened yet (they are opened over the next ticks).
    pub fn opening_new(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The sampler's tick period now (it changes with the rate).
    pub fn set_period(&mut self, period: Duration) {
        self.period = period;
    }

    /// The most descriptors it may hold (from the open-file limit when it was made).
    pub fn descriptor_budget(&self) -> usize {
        self.budget.held_at_most()
    }

    #[cfg(test)]
    fn set_budget(&mut self, budget: DescriptorBudget) {
        self.budget = budget;
    }

    /// The throttling counters of the cgroups with a CPU quota the tree runs under.
    pub fn read_cgroups(&mut self, snapshot: &mut TickSnapshot) {
        self.cgroups.read(snapshot);
    }

    /// The accept queues of the tree's TCP listeners, when they are due (see `listeners`).
    pub fn read_listeners(&mut self, snapshot: &mut TickSnapshot) {
        self.listeners
            .read(self.processes.keys().copied(), snapshot);
    }

    pub fn discovery(&self) -> Discovery {
        self.discovery
    }

    /// Files the sampler needed to read or stat but did not: on a network, FUSE or unknown
    /// mount (never touched), or not answered by a helper thread (refused, or still pending).
    pub fn unresolved_files(&mut self) -> u64 {
        self.unresolved + self.go_reads.pending() as u64 + self.resolver.unresolved()
    }

    fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    /// Finds processes and threads that joined the tree since the last call.
    pub fn discover(&mut self, snapshot: &mut TickSnapshot) {
        let cpu_before = thread_cpu();
        self.discover_new(snapshot);
        self.new_threads_cpu += thread_cpu().saturating_sub(cpu_before);
    }

    fn discover_new(&mut self, snapshot: &mut TickSnapshot) {
        let scanning = self.discovery == Discovery::Scan;
        if scanning {
            self.scan.refresh();
        }
        let own_pid = std::process::id() as i32;
        let mut queue = self.roots(scanning, own_pid);
        // Every process already followed is walked too, whether or not a parent's children
        // list still names it (its parent thread may have exited and handed it on).
        queue.extend(self.processes.keys().copied());
        // concadvise never measures itself, even inside a tree it was asked to follow.
        let mut visited = HashSet::from([own_pid]);
        while let Some(pid) = queue.pop() {
            if !visited.insert(pid) {
                continue;
            }
            if !self.processes.contains_key(&pid) && !self.follow_process(pid, snapshot) {
                continue;
            }
            let mut tids = self.threads_of(pid);
            if scanning {
                queue.extend_from_slice(self.scan.children_of(pid));
                continue;
            }
            // In a large process, only threads that ran since the last look can have forked,
            // and only those that did have children to walk.
            if tids.len() > MANY_THREADS {
                tids = (self.to_look.iter().chain(&self.parents))
                    .copied()
                    .filter(|tid| self.threads.get(tid).is_some_and(|t| t.pid == pid))
                    .collect();
            }
            for tid in tids {
                self.to_look.remove(&tid);
                let Some(thread) = self.threads.get_mut(&tid) else {
                    continue;
                };
                if thread.refresh_children(&self.budget, &mut self.buf) {
                    if thread.children.is_empty() {
                        self.parents.remove(&tid);
                    } else {
                        self.parents.insert(tid);
                    }
                }
                queue.extend_from_slice(&thread.children);
            }
        }
        self.discovered_once = true;
        // Event loops that never sleep in their poller show only in their epoll instance.
        let files = self
            .processes
            .iter_mut()
            .map(|(pid, p)| (*pid, &mut p.files));
        self.loops.scan(files, &mut self.resolver, snapshot);
    }

    /// Where the walk for the tree starts: concadvise's children, or the measured process
    /// while it is still the one asked for (same start time).
    fn roots(&mut self, scanning: bool, own_pid: i32) -> Vec<i32> {
        match self.scope {
            Scope::DescendantsOfSelf if scanning => self.scan.children_of(own_pid).to_vec(),
            Scope::DescendantsOfSelf => self.own_children(),
            Scope::Process { pid, start_ticks } => {
                if process_start_ticks(pid, &mut self.buf) == Some(start_ticks) {
                    vec![pid]
                } else {
                    Vec::new()
                }
            }
        }
    }

    /// Starts following process `pid`, new in the tree, and reports it in `snapshot`; false
    /// when it could not be read (gone already).
    fn follow_process(&mut self, pid: i32, snapshot: &mut TickSnapshot) -> bool {
        let Some(mut info) = read_process_info(pid, &mut self.buf) else {
            return false;
        };
        info.cgroup = self.cgroups.assign(pid, snapshot);
        let born_during = info.start_ticks.saturating_mul(self.ns_per_tick) + self.ns_per_tick
            >= self.origin_boot_ns;
        let mut files = ProcessFiles::default();
        self.read_go_buildinfo(&info, &mut files);
        snapshot.new_processes.push(info.clone());
        self.processes.insert(
            pid,
            TrackedProcess {
                info,
                files,
                cgroups: ProcessCgroups::default(),
                frozen: None,
                looks_frozen: false,
                stat: ProcFile::open(&PathBuf::from(format!("/proc/{pid}/stat"))).ok(),
                stat_read_at: None,
                cpu_check: CpuCheck::default(),
                born_during,
                num_threads: 0,
                listed: None,
                tids: Vec::new(),
                unlisted: 0,
                command_retries: 0,
            },
        );
        self.processes_seen += 1;
        true
    }

    /// Children of concadvise's own threads (the launched program, and orphans it reaps):
    /// their children files are held, and the thread list is refreshed once a second.
    fn own_children(&mut self) -> Vec<i32> {
        let stale = self
            .own_listed
            .is_none_or(|at| at.elapsed() >= TASK_RELIST_PERIOD);
        if stale {
            if let Ok(entries) = fs::read_dir("/proc/self/task") {
                let dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
                self.own_tasks.retain(|(dir, _)| dirs.contains(dir));
                for dir in dirs {
                    if !self.own_tasks.iter().any(|(known, _)| *known == dir) {
                        self.own_tasks.push((dir, None));
                    }
                }
            }
            self.own_listed = Some(Instant::now());
        }
        let mut pids = Vec::new();
        for (dir, file) in &mut self.own_tasks {
            if held_file(file, dir, "children")
                .and_then(|f| f.read_all(&mut self.buf))
                .is_ok()
            {
                pids.extend(parse_pids(&self.buf));
            }
        }
        pids
    }

    /// The threads of `pid` to walk for children: all tracked ones, after listing
    /// /proc/PID/task (and tracking new threads) when the thread count says it may have
    /// changed.
    fn threads_of(&mut self, pid: i32) -> Vec<i32> {
        let due = match self.processes.get(&pid) {
            Some(process) => match process.listed {
                Some((count, at)) => {
                    let every = TASK_RELIST_PERIOD
                        .max(Duration::from_secs(count / RELIST_THREADS_PER_SECOND));
                    count != process.num_threads || at.elapsed() >= every
                }
                None => true,
            },
            None => true,
        };
        if due {
            let task_dir = PathBuf::from(format!("/proc/{pid}/task"));
            match fs::read_dir(&task_dir) {
                Ok(entries) => {
                    let mut tids: Vec<i32> = entries
                        .flatten()
                        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
                        .collect();
                    tids.sort_unstable();
                    // New threads are opened at the next ticks (`track_pending`); those of a
                    // process listed for the first time with few threads at once, so that its
                    // children are found in this walk.
                    let first_listing =
                        self.processes.get(&pid).is_some_and(|p| p.listed.is_none());
                    let at_once = first_listing && tids.len() <= NEW_THREADS_AT_LEAST;
                    for &tid in &tids {
                        if self.threads.contains_key(&tid) {
                            continue;
                        }
                        if at_once {
                            self.track_now(pid, tid);
                        } else if self.pending_tids.insert(tid) {
                            self.pending.push_back((pid, tid));
                        }
                    }
                    if let Some(process) = self.processes.get_mut(&pid) {
                        // Threads listed before and not now have exited: a dormant one is
                        // read at the next tick, which closes its account.
                        for old in &process.tids {
                            if tids.binary_search(old).is_err() {
                                if let Some(thread) = self.threads.get_mut(old) {
                                    thread.unlisted = true;
                                }
                            }
                        }
                        process.listed = Some((process.num_threads, Instant::now()));
                        process.tids = tids;
                    }
                }
                Err(error) => self.note_unlisted(pid, ReadFailure::from(error)),
            }
        }
        self.processes
            .get(&pid)
            .map(|process| process.tids.clone())
            .unwrap_or_default()
    }

    /// /proc/PID/task could not be listed: if for lack of descriptors, the threads the
    /// process counts beyond those followed were never found.
    fn note_unlisted(&mut self, pid: i32, failure: ReadFailure) {
        if !matches!(failure, ReadFailure::NoDescriptors | ReadFailure::Denied) {
            return;
        }
        self.note_unseen(&failure);
        let followed = self.threads.values().filter(|t| t.pid == pid).count()
            + self.untracked.values().filter(|p| **p == pid).count();
        if let Some(process) = self.processes.get_mut(&pid) {
            let never_found = process.num_threads.saturating_sub(followed as u64);
            process.unlisted = process.unlisted.max(never_found);
        }
    }

    /// Opens threads found by discovery, oldest found first: all of them when `all`, else
    /// for at most half the tick period (and at least `NEW_THREADS_AT_LEAST`), so that
    /// finding thousands at once costs a few ticks rather than one long stall.
    fn track_pending(&mut self, all: bool) {
        let cpu_before = thread_cpu();
        let started = Instant::now();
        let allowed = self.period.mul_f64(NEW_THREADS_SHARE_OF_TICK);
        let mut opened = 0usize;
        while let Some(&(pid, tid)) = self.pending.front() {
            if !all && opened >= NEW_THREADS_AT_LEAST && started.elapsed() >= allowed {
                break;
            }
            self.pending.pop_front();
            self.pending_tids.remove(&tid);
            if self.threads.contains_key(&tid) || !self.processes.contains_key(&pid) {
                continue;
            }
            opened += 1;
            self.track_now(pid, tid);
        }
        if opened > 0 {
            self.new_threads_cpu += thread_cpu().saturating_sub(cpu_before);
        }
    }

    /// Opens a thread found by discovery (or counts it as unseen if that fails).
    fn track_now(&mut self, pid: i32, tid: i32) {
        match self.track_thread(pid, tid) {
            Ok(thread) => {
                self.threads.insert(tid, thread);
                self.threads_seen += 1;
                self.untracked.remove(&tid);
            }
            Err(ReadFailure::Gone) => {
                self.untracked.remove(&tid);
            }
            Err(failure) => {
                self.note_unseen(&failure);
                self.untracked.insert(tid, pid);
            }
        }
    }

    /// A new thread: its stat read once (open, read, close), for its birth time, and its name
    /// and state at its first observation. Its schedstat is opened by that first read; its
    /// wait files are read when it is seen blocked.
    fn track_thread(&mut self, pid: i32, tid: i32) -> Result<TrackedThread, ReadFailure> {
        let mut files = ThreadFiles::new(PathBuf::from(format!("/proc/{pid}/task/{tid}")));
        files.read(ThreadFile::Stat, false, &mut self.buf)?;
        let unexpected =
            || ReadFailure::Other(std::io::Error::other("stat has an unexpected form"));
        let (letter, name) = parse_stat_state(&self.buf).ok_or_else(unexpected)?;
        let (_, starttime) = parse_parent_and_start(&self.buf).ok_or_else(unexpected)?;
        // A zombie is listed until reaped, but its account was closed when it exited.
        if matches!(letter, 'Z' | 'X') {
            return Err(ReadFailure::Gone);
        }
        let comm = name.into_owned();
        // A thread born before the measurement began (attach) counts from now; one born
        // during it counts from its birth, even if it was found late.
        let born_boot_ns = starttime.saturating_mul(self.ns_per_tick);
        let sighting = match self.scope {
            Scope::Process { .. } if !self.discovered_once => Sighting::Baseline,
            Scope::Process { .. } if born_boot_ns + self.ns_per_tick < self.origin_boot_ns => {
                Sighting::Baseline
            }
            _ => Sighting::BornAt(born_boot_ns.saturating_sub(self.origin_boot_ns)),
        };
        Ok(TrackedThread {
            pid,
            tid,
            files,
            found_letter: Some(letter),
            comm,
            sighting,
            last: None,
            children: Vec::new(),
            children_read_at: None,
            children_file: None,
            reported_frozen: false,
            unlisted: false,
        })
    }

    /// Asks a helper thread whether `info`'s executable carries Go's build info, unless it
    /// lies on a network, FUSE or unknown mount (never read; counted as unresolved).
    fn read_go_buildinfo(&mut self, info: &ProcessInfo, files: &mut ProcessFiles) {
        let Some(exe) = &info.exe else {
            return;
        };
        let space = files.mount_space(info.pid);
        let mount = self.resolver.mounts.for_path(info.pid, space, exe);
        if !mount.is_some_and(|m| m.class.may_touch()) {
            self.unresolved += 1;
            return;
        }
        let (pid, start_ticks) = (info.pid, info.start_ticks);
        let asked = self.go_reads.submit(move || GoAnswer {
            pid,
            start_ticks,
            found: go_buildinfo_of(pid, start_ticks),
        });
        if asked.is_err() {
            self.unresolved += 1;
        }
    }

    /// Answers of the Go build-info reads: a process found to be a Go program is reported
    /// again in `snapshot`, with the flag set.
    fn take_go_answers(&mut self, snapshot: &mut TickSnapshot) {
        for answer in self.go_reads.answers() {
            let Some(found) = answer.found else {
                self.unresolved += 1;
                continue;
            };
            let process = self
                .processes
                .get_mut(&answer.pid)
                .filter(|p| p.info.start_ticks == answer.start_ticks);
            if let (true, Some(process)) = (found, process) {
                process.info.go_buildinfo = true;
                snapshot.new_processes.push(process.info.clone());
            }
        }
    }

    /// Opens new threads (some, or all when `full`), then reads every tracked thread (dormant
    /// ones only when due, unless `full`); threads that are gone are dropped.
    pub fn read_threads(&mut self, snapshot: &mut TickSnapshot, full: bool) {
        self.ticks += 1;
        self.take_go_answers(snapshot);
        self.stops.next_tick();
        self.note_frozen_processes();
        self.track_pending(full);
        let tids = self.observe_skipped(snapshot, full);
        let (gone, execed) = self.read_due_threads(tids, snapshot);
        self.drop_gone_threads(gone);
        self.reread_execed(execed, snapshot);
        self.reread_empty_commands(snapshot);
        self.name_outside_peers(snapshot);
        self.drop_ended_processes();
        self.held_descriptors_max = self.held_descriptors_max.max(open_files());
        self.read_process_stats(snapshot, full);
    }

    /// Which processes sit in a frozen cgroup at this tick (looked at when one may be).
    fn note_frozen_processes(&mut self) {
        for (pid, process) in self.processes.iter_mut() {
            process.frozen = self
                .stops
                .frozen(*pid, &mut process.cgroups, process.looks_frozen);
            process.looks_frozen = false;
        }
    }

    /// Observes the dormant threads not due for a read at this tick (with many threads, unless
    /// `full`) at their last counters; returns the threads to read.
    fn observe_skipped(&self, snapshot: &mut TickSnapshot, full: bool) -> Vec<i32> {
        let many = !full && self.threads.len() > MANY_THREADS;
        // Dormant threads are read in turn, each about every DORMANT_SWEEP (longer with many).
        let sweep = DORMANT_SWEEP
            .as_secs_f64()
            .max(self.threads.len() as f64 / SWEEP_READS_PER_SECOND as f64);
        let sweep_every = (sweep / self.period.as_secs_f64().max(1e-6))
            .round()
            .max(1.0) as u64;
        // Threads skipped are observed at the tick's time; those read, when they were read.
        let tick_ns = self.now_ns();
        let mut tids = Vec::new();
        for (tid, thread) in &self.threads {
            match many.then(|| self.skipped(thread, tick_ns, sweep_every)) {
                Some(Some(observation)) => snapshot.threads.push(observation),
                _ => tids.push(*tid),
            }
        }
        tids
    }

    /// Reads threads `tids` into `snapshot`; returns those gone, and the main threads whose
    /// name changed (pid, new name).
    fn read_due_threads(
        &mut self,
        tids: Vec<i32>,
        snapshot: &mut TickSnapshot,
    ) -> (Vec<i32>, Vec<(i32, String)>) {
        let mut gone = Vec::new();
        let mut execed = Vec::new();
        for tid in tids {
            let at_ns = self.now_ns();
            let first = self
                .threads
                .get(&tid)
                .is_some_and(|t| t.found_letter.is_some());
            let cpu_before = first.then(thread_cpu);
            let read = self.read_thread(tid, at_ns);
            if let Some(before) = cpu_before {
                self.new_threads_cpu += thread_cpu().saturating_sub(before);
            }
            match read {
                Ok(observation) => {
                    // It ran (or is new): it may have forked.
                    if observation.state.is_some() {
                        self.to_look.insert(tid);
                    }
                    if let (Some(comm), true) =
                        (&observation.comm, observation.pid == observation.tid)
                    {
                        execed.push((observation.pid, comm.clone()));
                    }
                    // A zombie has exited: this last interval is its end.
                    let zombie = observation
                        .state
                        .as_ref()
                        .is_some_and(|state| matches!(state.letter, 'Z' | 'X'));
                    if zombie {
                        snapshot.exited.push((observation.pid, tid));
                        gone.push(tid);
                    }
                    snapshot.threads.push(observation);
                }
                Err(ReadFailure::Gone) => {
                    if let Some(thread) = self.threads.get(&tid) {
                        snapshot.exited.push((thread.pid, tid));
                    }
                    gone.push(tid);
                }
                // Kept: a transient failure (EMFILE, EINTR...) is not an exit.
                Err(_) => self.read_errors += 1,
            }
        }
        (gone, execed)
    }

    /// Forgets the threads in `gone`; their processes' other threads are looked at again for
    /// the children they left.
    fn drop_gone_threads(&mut self, gone: Vec<i32>) {
        let mut handed_on = HashSet::new();
        for tid in gone {
            self.to_look.remove(&tid);
            self.parents.remove(&tid);
            if let Some(thread) = self.threads.remove(&tid) {
                if !thread.children.is_empty() {
                    handed_on.insert(thread.pid);
                }
            }
        }
        // An exited thread's children pass to another thread of its process: look again.
        if !handed_on.is_empty() {
            for (tid, thread) in self.threads.iter_mut() {
                if handed_on.contains(&thread.pid) {
                    thread.children_read_at = None;
                    self.to_look.insert(*tid);
                }
            }
        }
    }

    /// A changed main-thread name after the first sight means exec: read the program again,
    /// and forget the old program's memory.
    fn reread_execed(&mut self, execed: Vec<(i32, String)>, snapshot: &mut TickSnapshot) {
        for (pid, comm) in execed {
            // Found and first read in the same tick: the exec may have come between the two
            // (a forked shell that became `xz`); the info read at discovery says which.
            let first_sight = snapshot.new_processes.iter().position(|p| p.pid == pid);
            if first_sight.is_some_and(|i| runs_program_named(&snapshot.new_processes[i], &comm)) {
                continue;
            }
            let Some(mut info) = read_process_info(pid, &mut self.buf) else {
                continue;
            };
            // A program started in a cgroup of its own (`echo $$ > cgroup.procs; exec prog`)
            // moved there before the exec.
            info.cgroup = self.cgroups.assign(pid, snapshot);
            let mut files = ProcessFiles::default();
            self.read_go_buildinfo(&info, &mut files);
            match first_sight {
                Some(index) => snapshot.new_processes[index] = info.clone(),
                None => snapshot.new_processes.push(info.clone()),
            }
            if let Some(process) = self.processes.get_mut(&pid) {
                process.files = files;
                process.info = info;
            }
        }
    }

    /// Forgets the processes none of whose threads is followed any more.
    fn drop_ended_processes(&mut self) {
        let live_pids: FxHashSet<i32> = self.threads.values().map(|t| t.pid).collect();
        let loops = &mut self.loops;
        let listeners = &mut self.listeners;
        let unlisted_gone = &mut self.unlisted_gone;
        self.processes.retain(|pid, process| {
            let live = live_pids.contains(pid);
            if !live {
                loops.forget(*pid);
                listeners.forget(*pid);
                *unlisted_gone += process.unlisted;
            }
            live
        });
    }

    /// Reads each process's own stat (a large one's less often, unless `full`): its CPU
    /// including exited threads, its thread count, and a main thread in D.
    fn read_process_stats(&mut self, snapshot: &mut TickSnapshot, full: bool) {
        for (pid, process) in self.processes.iter_mut() {
            // Its dormant threads were read at this tick (if many): its stat starts over.
            if process.cpu_check.wake_dormant {
                process.cpu_check.woken();
            }
            let Some(stat) = &process.stat else { continue };
            // The kernel sums a process's stat over all its threads: for a large process, read
            // it less often (the difference it adds is only the threads never sampled).
            let large = process.num_threads > MANY_THREADS as u64;
            let every = LARGE_PROCESS_STAT_PERIOD
                .mul_f64((process.num_threads as f64 / STAT_THREADS_PER_PERIOD as f64).max(1.0));
            let recent = process.stat_read_at.is_some_and(|at| at.elapsed() < every);
            if large && recent && !full {
                continue;
            }
            process.stat_read_at = Some(Instant::now());
            if stat.read_into(&mut self.buf).is_err() {
                continue;
            }
            // A frozen task sits in D without running: a main thread in D is worth a look at
            // the process's cgroups at the next tick.
            if parse_stat_state(&self.buf).is_some_and(|(letter, _)| letter == 'D') {
                process.looks_frozen = true;
            }
            if let Some((ticks, num_threads)) = parse_stat_cpu_and_threads(&self.buf) {
                let cpu_ns = ticks.saturating_mul(self.ns_per_tick);
                process.num_threads = num_threads;
                process.cpu_check.kernel_read(cpu_ns);
                snapshot.process_cpu.push(ProcessCpu {
                    pid: *pid,
                    cpu_ns,
                    born_during: process.born_during,
                });
            }
        }
    }

    /// Processes whose command line came back empty (read in the middle of an exec) are read
    /// again, a few ticks at most; what they run now is reported as an update.
    ///
    /// Once a second, each process's executable is looked at too: an exec that kept the
    /// thread's name (a wrapper script named like the program it runs, as Debian's pgbench is)
    /// shows only there.
    fn reread_empty_commands(&mut self, snapshot: &mut TickSnapshot) {
        let due = self
            .programs_checked_at
            .is_none_or(|at| at.elapsed() >= PROGRAM_CHECK_PERIOD);
        if due {
            self.programs_checked_at = Some(Instant::now());
        }
        let pending: Vec<i32> = self
            .processes
            .iter()
            .filter(|(pid, p)| {
                (command_unread(&p.info) && p.command_retries < COMMAND_RETRIES)
                    || (due && executable_changed(**pid, &p.info))
            })
            .map(|(pid, _)| *pid)
            .collect();
        for pid in pending {
            let Some(mut info) = read_process_info(pid, &mut self.buf) else {
                continue;
            };
            let Some(process) = self.processes.get_mut(&pid) else {
                continue;
            };
            process.command_retries += 1;
            if command_unread(&info) || info.start_ticks != process.info.start_ticks {
                continue;
            }
            info.cgroup = process.info.cgroup;
            if info.exe == process.info.exe {
                info.go_buildinfo = process.info.go_buildinfo;
            } else {
                // Another program: its memory and descriptors are new, and so is what it is.
                process.files = ProcessFiles::default();
                let mut files = ProcessFiles::default();
                self.read_go_buildinfo(&info, &mut files);
                if let Some(process) = self.processes.get_mut(&pid) {
                    process.files = files;
                }
            }
            let Some(process) = self.processes.get_mut(&pid) else {
                continue;
            };
            process.info = info.clone();
            match snapshot.new_processes.iter().position(|p| p.pid == pid) {
                Some(index) => snapshot.new_processes[index] = info,
                None => snapshot.new_processes.push(info),
            }
        }
    }

    /// The command lines of processes outside the tree that its threads were seen talking to
    /// for the first time (read once each, from /proc).
    fn name_outside_peers(&mut self, snapshot: &mut TickSnapshot) {
        let peers: Vec<i32> = snapshot
            .threads
            .iter()
            .filter_map(|t| t.state.as_ref())
            .flat_map(|state| state.peers.iter().copied())
            .filter(|pid| !self.processes.contains_key(pid))
            .collect();
        for pid in peers {
            if self.named_outside.len() >= MAX_NAMED_OUTSIDE || !self.named_outside.insert(pid) {
                continue;
            }
            let command = read_command_line(pid, &mut self.buf).unwrap_or_default();
            snapshot.outside_peers.push(OutsidePeer { pid, command });
        }
    }

    /// For a dormant thread not due for a read at this tick: an observation at its last
    /// counters, unchanged. Due: its turn in the sweep (every `sweep_every` ticks), its
    /// process used CPU its read threads do not explain, it left its process's task list, or
    /// its cgroup was frozen or thawed.
    fn skipped(
        &self,
        thread: &TrackedThread,
        at_ns: u64,
        sweep_every: u64,
    ) -> Option<ThreadObservation> {
        let last = thread.last.as_ref()?;
        let tid = thread.tid;
        let due = (self.ticks + tid as u64).is_multiple_of(sweep_every);
        let process = self.processes.get(&thread.pid);
        let woken = process.is_some_and(|p| p.cpu_check.wake_dormant);
        // Frozen or thawed since its last read: a frozen thread does not run to show it.
        let freezer = process.is_some_and(|p| p.frozen.is_some() != thread.reported_frozen);
        let lately = at_ns.saturating_sub(last.changed_at_ns) < DORMANT_AFTER_NS;
        if last.unchanged_reads < DORMANT_AFTER
            || lately
            || due
            || woken
            || thread.unlisted
            || freezer
        {
            return None;
        }
        Some(ThreadObservation {
            pid: thread.pid,
            tid,
            at_ns,
            sighting: Sighting::Continuing,
            comm: None,
            cpu_ns: last.cpu_ns,
            runqueue_ns: last.runqueue_ns,
            timeslices: last.timeslices,
            state: None,
        })
    }

    // Long because the quick path (a thread unchanged since its last read) and the full read
    // share the fields borrowed apart at the top; steps that fit alone are methods already.
    fn read_thread(&mut self, tid: i32, at_ns: u64) -> Result<ThreadObservation, ReadFailure> {
        let TreeReader {
            threads,
            processes,
            resolver,
            stops,
            buf,
            sources,
            budget,
            ..
        } = self;
        let thread = threads.get_mut(&tid).ok_or(ReadFailure::Gone)?;
        let mut process = processes.get_mut(&thread.pid);
        let frozen = process.as_ref().and_then(|p| p.frozen.clone());
        let (cpu_ns, runqueue_ns, timeslices) = read_counters(thread, budget, buf)?;
        if let (Some(last), Some(process)) = (&thread.last, process.as_mut()) {
            process.cpu_check.sampled_ns += cpu_ns.saturating_sub(last.cpu_ns);
        }
        // Taken only when an observation is returned: a failed read keeps the birth time.
        let sighting = thread.sighting;
        let (pid, tid) = (thread.pid, thread.tid);
        let observation = move |state, comm| ThreadObservation {
            pid,
            tid,
            at_ns,
            sighting,
            comm,
            cpu_ns,
            runqueue_ns,
            timeslices,
            state,
        };
        // A thread that has not run since the last tick is still where it was: one read is
        // all it costs. (One woken but still queued for a CPU shows as running next time.)
        // A thread of a cgroup frozen or thawed since is read again: it was frozen in place.
        if thread.unchanged_since_last(cpu_ns, timeslices, frozen.is_some(), budget) {
            thread.sighting = Sighting::Continuing;
            return Ok(observation(None, None));
        }
        // A thread that ran since an earlier read is worth holding files for (while there is
        // room); one read for the first time may well never run again.
        let hold = thread.last.is_some() && budget.room();
        let first_read = thread.found_letter.is_some();
        let (letter, comm) = thread.read_letter(hold, buf)?;
        let (mut state, conversation) = if letter == 'R' {
            (ThreadState::running(), None)
        } else {
            let files = process.as_mut().map(|p| &mut p.files);
            read_wait_state(thread, letter, hold, buf, sources, resolver, files)
        };
        if letter != 'R' {
            state.stopped_by = stopper(letter, frozen.as_deref(), stops, thread.files.dir());
        }
        // Asleep in the freezer (cgroup v2, or v1 while freezing): look at its cgroups.
        let in_freezer = state.wchan.as_deref().is_some_and(sleeps_in_freezer);
        if let (true, Some(process)) = (in_freezer, process) {
            process.looks_frozen = true;
        }
        if let Some(conversation) = conversation {
            let tree: Vec<i32> = processes.keys().copied().collect();
            state.peers = resolver.peer_processes(thread.pid, conversation, &tree);
        }
        thread.reported_frozen = frozen.is_some();
        thread.remember((cpu_ns, runqueue_ns, timeslices), letter, first_read, at_ns);
        thread.sighting = Sighting::Continuing;
        Ok(observation(Some(Box::new(state)), comm))
    }
}

/// Who stopped a thread not running, in state `letter`: its tracer or a stop signal ('t',
/// 'T'), or the frozen cgroup it is in.
fn stopper(
    letter: char,
    frozen: Option<&str>,
    stops: &mut Stops,
    task_dir: &Path,
) -> Option<Stopper> {
    match (letter, frozen) {
        ('t', _) => Some(stops.stopper_of(task_dir)),
        (_, Some(cgroup)) => Some(Stopper::FrozenCgroup {
            cgroup: cgroup.to_string(),
        }),
        ('T', None) => Some(stops.stopper_of(task_dir)),
        _ => None,
    }
}

/// A thread's schedstat counters: on-CPU ns, run-queue ns, timeslices. The descriptor is
/// held while the budget has room, except a dormant thread's once it is nearly all taken
/// (then closed: that thread is read by opening the file). Counters that went backwards are
/// another thread's that reused the TID (possible only through a path opened anew): the
/// thread read before is gone.
fn read_counters(
    thread: &mut TrackedThread,
    budget: &DescriptorBudget,
    buf: &mut Vec<u8>,
) -> Result<(u64, u64, u64), ReadFailure> {
    let spare = thread.dormant() && budget.nearly_full();
    thread
        .files
        .read(ThreadFile::Schedstat, budget.room() && !spare, buf)?;
    if spare {
        thread.files.release(ThreadFile::Schedstat);
    }
    let counters = parse_schedstat(buf).ok_or_else(|| {
        ReadFailure::Other(std::io::Error::other("schedstat has an unexpected form"))
    })?;
    if let Some(last) = &thread.last {
        if counters.0 < last.cpu_ns || counters.2 < last.timeslices {
            return Err(ReadFailure::Gone);
        }
    }
    Ok(counters)
}

/// What a blocked thread waits in: its syscall, wchan and the descriptors the call names.
/// `hold`: keep the descriptors of its syscall and wchan files.
fn read_wait_state(
    thread: &mut TrackedThread,
    letter: char,
    hold: bool,
    buf: &mut Vec<u8>,
    sources: &mut SourceStatus,
    resolver: &mut FdResolver,
    files: Option<&mut ProcessFiles>,
) -> (ThreadState, Option<(FdKind, u64)>) {
    let syscall = read_syscall(thread, hold, buf, sources);
    let wchan = read_wchan(thread, hold, buf, sources);
    let targets = match (&syscall, files) {
        (SyscallState::Blocked { call, args }, Some(files)) => {
            resolver.resolve(thread.pid, *call, args, files, letter)
        }
        _ => WaitTargets::default(),
    };
    let state = ThreadState {
        letter,
        syscall,
        wchan,
        fds: targets.kinds,
        watched: targets.watched,
        watched_peers: targets.watched_peers,
        fd_sync: targets.fd_sync,
        peers: Vec::new(),
        mount: targets.mount,
        stopped_by: None,
        served: Some(targets.served),
    };
    (state, targets.conversation)
}

/// A blocked thread's syscall file: the call and its arguments, with what could not be read
/// noted in `sources`.
fn read_syscall(
    thread: &mut TrackedThread,
    hold: bool,
    buf: &mut Vec<u8>,
    sources: &mut SourceStatus,
) -> SyscallState {
    let syscall = match thread.files.read(ThreadFile::Syscall, hold, buf) {
        Ok(()) => parse_syscall(&String::from_utf8_lossy(buf)),
        Err(ReadFailure::Denied) => {
            sources.syscall_denied = true;
            SyscallState::Denied
        }
        Err(ReadFailure::NoDescriptors) => {
            sources.descriptors_ran_out = true;
            SyscallState::NotRead
        }
        Err(_) => SyscallState::NotRead,
    };
    if syscall == SyscallState::Denied {
        // Without ptrace access the kernel shows wchan as "0" rather than failing, and the
        // blocking descriptors cannot be known without the syscall.
        sources.wchan_denied = true;
        sources.fds_denied = true;
    }
    syscall
}

/// A blocked thread's wchan (the kernel function it sleeps in), None when empty or hidden.
fn read_wchan(
    thread: &mut TrackedThread,
    hold: bool,
    buf: &mut Vec<u8>,
    sources: &mut SourceStatus,
) -> Option<String> {
    match thread.files.read(ThreadFile::Wchan, hold, buf) {
        Ok(()) => {
            let text = String::from_utf8_lossy(buf).trim().to_string();
            (!text.is_empty() && text != "0").then_some(text)
        }
        Err(ReadFailure::Denied) => {
            sources.wchan_denied = true;
            None
        }
        Err(ReadFailure::NoDescriptors) => {
            sources.descriptors_ran_out = true;
            None
        }
        Err(_) => None,
    }
}

/// A per-thread file through a descriptor opened on first use and then held.
fn held_file<'a>(
    held: &'a mut Option<ProcFile>,
    dir: &Path,
    name: &str,
) -> Result<&'a ProcFile, ReadFailure> {
    if held.is_none() {
        *held = Some(ProcFile::open(&dir.join(name))?);
    }
    held.as_ref().ok_or(ReadFailure::Gone)
}

/// "running", "-1 SP PC", or "NR ARG0..ARG5 SP PC" (hex arguments).
pub fn parse_syscall(text: &str) -> SyscallState {
    let text = text.trim();
    if text == "running" {
        return SyscallState::Running;
    }
    let mut fields = text.split_whitespace();
    let Some(nr) = fields.next().and_then(|nr| nr.parse::<i64>().ok()) else {
        return SyscallState::NotRead;
    };
    if nr < 0 {
        return SyscallState::OutsideSyscall;
    }
    let mut args = [0u64; 6];
    for arg in args.iter_mut() {
        *arg = fields
            .next()
            .and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
            .unwrap_or(0);
    }
    match usize::try_from(nr).ok().and_then(Sysno::new) {
        Some(call) => SyscallState::Blocked { call, args },
        None => SyscallState::BlockedUnknown { nr },
    }
}

/// The state letter and the name from a /proc/PID/task/TID/stat line: "TID (NAME) S ...".
/// Parsed by hand (not with procfs's Stat) because it runs for every thread at every tick and
/// needs two fields of fifty-two; the name may contain spaces and parentheses, so the last ')'
/// ends it.
pub fn parse_stat_state(buf: &[u8]) -> Option<(char, std::borrow::Cow<'_, str>)> {
    let open = buf.iter().position(|b| *b == b'(')?;
    let close = buf.iter().rposition(|b| *b == b')')?;
    let name = String::from_utf8_lossy(buf.get(open + 1..close)?);
    let letter = buf
        .get(close + 1..)?
        .iter()
        .find(|b| !b.is_ascii_whitespace())?;
    Some((char::from(*letter), name))
}

/// utime + stime (clock ticks) and num_threads from a /proc/PID/stat line: fields 14, 15
/// and 20, counted from the state letter after the name's closing parenthesis (field 3).
pub fn parse_stat_cpu_and_threads(buf: &[u8]) -> Option<(u64, u64)> {
    // The name may be any bytes; what follows its last ')' is ASCII.
    let close = buf.iter().rposition(|b| *b == b')')?;
    let after_name = std::str::from_utf8(buf.get(close + 1..)?).ok()?;
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let num_threads: u64 = fields.nth(4)?.parse().ok()?;
    Some((utime + stime, num_threads))
}

fn parse_schedstat(buf: &[u8]) -> Option<(u64, u64, u64)> {
    let text = std::str::from_utf8(buf).ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    Some((fields.next()??, fields.next()??, fields.next()??))
}

fn parse_pids(buf: &[u8]) -> impl Iterator<Item = i32> + '_ {
    buf.split(|b| b.is_ascii_whitespace())
        .filter_map(|word| std::str::from_utf8(word).ok()?.parse().ok())
}

/// The start time (clock ticks after boot) of a process, the half of its identity a PID lacks.
pub fn process_start_ticks(pid: i32, buf: &mut Vec<u8>) -> Option<u64> {
    Some(read_stat(pid, buf).ok()?.starttime)
}

/// A process's /proc/PID/stat, parsed.
pub fn read_stat(pid: i32, buf: &mut Vec<u8>) -> Result<procfs::process::Stat, ReadFailure> {
    read_once(&PathBuf::from(format!("/proc/{pid}/stat")), buf)?;
    procfs::process::Stat::from_read(&buf[..])
        .map_err(|e| ReadFailure::Other(std::io::Error::other(e.to_string())))
}

/// A process's arguments from /proc/PID/cmdline; `None` if unreadable or empty (kernel
/// threads, zombies, a process between fork and exec).
pub fn read_command_line(pid: i32, buf: &mut Vec<u8>) -> Option<Vec<String>> {
    read_once(&PathBuf::from(format!("/proc/{pid}/cmdline")), buf).ok()?;
    let args: Vec<String> = buf
        .split(|b| *b == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    (!args.is_empty()).then_some(args)
}

/// Command line, executable and mapped libraries of a process; `None` if it is gone.
pub fn read_process_info(pid: i32, buf: &mut Vec<u8>) -> Option<ProcessInfo> {
    let dir = PathBuf::from(format!("/proc/{pid}"));
    let stat = read_stat(pid, buf).ok()?;
    // A zombie waiting to be reaped has exited: nothing of it is left to follow.
    if matches!(stat.state, 'Z' | 'X') {
        return None;
    }
    let command = read_command_line(pid, buf).unwrap_or_else(|| vec![format!("[{}]", stat.comm)]);
    let exe = fs::read_link(dir.join("exe"))
        .ok()
        .map(|path| path.to_string_lossy().into_owned());
    let libraries = match read_once(&dir.join("maps"), buf) {
        Ok(()) => mapped_libraries(&String::from_utf8_lossy(buf)),
        Err(_) => Vec::new(),
    };
    Some(ProcessInfo {
        pid,
        start_ticks: stat.starttime,
        ppid: stat.ppid,
        command,
        exe,
        libraries,
        // Reading the executable reaches its filesystem: done later, on a helper thread.
        go_buildinfo: false,
        cgroup: None,
    })
}

/// Whether a process's info names the program its thread name says it runs (the name is the
/// executable's file name, cut to 15 bytes).
fn runs_program_named(info: &ProcessInfo, comm: &str) -> bool {
    let base = |path: &str| path.rsplit('/').next().unwrap_or(path).to_string();
    let named = |name: String| name.starts_with(comm) || comm.starts_with(&name);
    info.exe.as_deref().map(base).is_some_and(named)
        || info.command.first().map(|c| base(c)).is_some_and(named)
}

/// On a helper thread: whether the executable of process `pid` (if it is still the process
/// that started at `start_ticks`) carries Go's build info; `None` if it could not be read.
/// Opened through /proc/PID/exe: the very file, whatever the process's root or namespace.
fn go_buildinfo_of(pid: i32, start_ticks: u64) -> Option<bool> {
    if process_start_ticks(pid, &mut Vec::new()) != Some(start_ticks) {
        return None;
    }
    let file = fs::File::open(format!("/proc/{pid}/exe")).ok()?;
    Some(has_go_buildinfo(file))
}

/// Whether an executable carries Go's build info section; reads only the ELF section headers
/// and their names, not the symbol tables.
fn has_go_buildinfo(file: fs::File) -> bool {
    use object::elf::{FileHeader32, FileHeader64};
    use object::read::elf::FileHeader;
    use object::{Endianness, FileKind};
    let data = object::ReadCache::new(file);
    fn has_section<H: FileHeader<Endian = Endianness>>(data: &object::ReadCache<fs::File>) -> bool {
        let Ok(header) = H::parse(data) else {
            return false;
        };
        let Ok(endian) = header.endian() else {
            return false;
        };
        header
            .sections(endian, data)
            .is_ok_and(|sections| sections.section_by_name(endian, b".go.buildinfo").is_some())
    }
    match FileKind::parse(&data) {
        Ok(FileKind::Elf64) => has_section::<FileHeader64<Endianness>>(&data),
        Ok(FileKind::Elf32) => has_section::<FileHeader32<Endianness>>(&data),
        _ => false,
    }
}

/// File names of the shared objects in a /proc/PID/maps text, each once.
pub fn mapped_libraries(maps: &str) -> Vec<String> {
    let mut names: Vec<String> = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter(|path| path.starts_with('/') && path.contains(".so"))
        .filter_map(|path| path.rsplit('/').next())
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// What a helper thread found about a process's executable.
struct GoAnswer {
    pid: i32,
    start_ticks: u64,
    found: Option<bool>,
}

/// The calling thread's CPU time.
fn thread_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map_or(Duration::ZERO, Duration::from)
}

fn boottime_ns() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME) {
        Ok(spec) => (spec.tv_sec() as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(spec.tv_nsec() as u64),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_file_forms() {
        assert_eq!(parse_syscall("running\n"), SyscallState::Running);
        assert_eq!(
            parse_syscall("-1 0x7ffc8b8a1e28 0x7f1f3c0c4b5a\n"),
            SyscallState::OutsideSyscall
        );
        let nr = Sysno::clock_nanosleep.id();
        let line = format!("{nr} 0x0 0x0 0x7ffd42395d00 0x7ffd42395d40 0x0 0x0 0x7ffd4 0x7f9f");
        assert_eq!(
            parse_syscall(&line),
            SyscallState::Blocked {
                call: Sysno::clock_nanosleep,
                args: [0, 0, 0x7ffd42395d00, 0x7ffd42395d40, 0, 0]
            }
        );
        assert_eq!(
            parse_syscall("99999 0x0 0x0 0x0 0x0 0x0 0x0 0x1 0x2"),
            SyscallState::BlockedUnknown { nr: 99999 }
        );
    }

    #[test]
    fn stat_state_and_names_with_parentheses() {
        let line = b"4242 (my (weird) prog) S 1 4242 4242 0 -1 4194560 98 0 0 0 1 2 0 0 20 0 1";
        assert_eq!(
            parse_stat_state(line),
            Some(('S', std::borrow::Cow::from("my (weird) prog")))
        );
        let odd = b"7 (w\xff\xfek) R 1 7 7 0 -1 0 0 0 0 0 4 5 0 0 20 0 3";
        assert_eq!(parse_stat_state(odd).map(|(l, _)| l), Some('R'));
        assert_eq!(parse_stat_cpu_and_threads(odd), Some((9, 3)));
        assert_eq!(parse_stat_state(b"garbage"), None);
        assert_eq!(parse_stat_cpu_and_threads(line), Some((3, 1)));
    }

    #[test]
    fn schedstat_and_children() {
        assert_eq!(parse_schedstat(b"1333583 20 3\n"), Some((1333583, 20, 3)));
        assert_eq!(parse_schedstat(b"garbage"), None);
        assert_eq!(parse_pids(b"12 345 \n").collect::<Vec<_>>(), vec![12, 345]);
    }

    #[test]
    fn a_pid_with_another_start_time_is_not_the_target() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let start_ticks = process_start_ticks(pid, &mut Vec::new()).unwrap();
        let threads_found = |start_ticks| {
            let mut reader = TreeReader::new(
                Scope::Process { pid, start_ticks },
                Instant::now(),
                Discovery::Children,
            );
            let mut snapshot = TickSnapshot::default();
            reader.discover(&mut snapshot);
            reader.read_threads(&mut snapshot, false);
            snapshot.threads.len()
        };
        // As if the PID had been reused by a process started later.
        assert_eq!(threads_found(start_ticks + 1), 0);
        assert_eq!(threads_found(start_ticks), 1);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// A Python child with `threads` threads, all but the main one waiting on an event:
    /// killed on drop.
    struct Blocked(std::process::Child);

    impl Drop for Blocked {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn blocked_threads(threads: usize) -> Blocked {
        // Python is on every machine the tests run on (tests/common checks it too).
        let script = format!(
            "import threading, time\n\
             e = threading.Event()\n\
             ts = [threading.Thread(target=e.wait) for _ in range({})]\n\
             [t.start() for t in ts]\n\
             print('ready', flush=True)\n\
             time.sleep(30)\n",
            threads - 1
        );
        let mut child = std::process::Command::new("python3")
            .args(["-c", &script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready");
        Blocked(child)
    }

    /// The count of open /proc files is the process's: tests that open hundreds of them
    /// take turns, or one would see the other's.
    static MANY_FILES: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// A reader of the process `target` runs, following its children.
    fn reader_of(target: &Blocked) -> TreeReader {
        let pid = target.0.id() as i32;
        let start_ticks = process_start_ticks(pid, &mut Vec::new()).unwrap();
        TreeReader::new(
            Scope::Process { pid, start_ticks },
            Instant::now(),
            Discovery::Children,
        )
    }

    #[test]
    fn past_the_descriptor_budget_every_thread_is_still_followed() {
        let _turn = MANY_FILES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let target = blocked_threads(200);
        let mut reader = reader_of(&target);
        // Room for 40 descriptors, of which this test process's others take some.
        let held_before = open_files();
        reader.set_budget(DescriptorBudget::with_limit(held_before + 40));
        let mut snapshot = TickSnapshot::default();
        for tick in 0..12 {
            snapshot.clear();
            if tick % 4 == 0 {
                reader.discover(&mut snapshot);
            }
            reader.read_threads(&mut snapshot, false);
        }
        assert_eq!(reader.threads_seen, 200);
        assert_eq!(reader.threads_unseen(), 0);
        assert_eq!(
            snapshot.threads.len(),
            200,
            "every thread observed at every tick"
        );
        assert!(
            reader.held_descriptors_max <= held_before + 40,
            "held {} with room for {}",
            reader.held_descriptors_max,
            held_before + 40
        );
        // The last tick, full: every thread read, most of them by opening their files.
        snapshot.clear();
        reader.read_threads(&mut snapshot, true);
        assert_eq!(snapshot.threads.len(), 200);
        assert!(snapshot.exited.is_empty(), "{:?}", snapshot.exited);
    }

    #[test]
    fn thousands_found_at_once_are_opened_over_several_ticks() {
        let _turn = MANY_FILES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let target = blocked_threads(400);
        let mut reader = reader_of(&target);
        // A 1 ms tick leaves half a millisecond for new threads, and at least 64 a tick.
        reader.set_period(Duration::from_millis(1));
        let mut snapshot = TickSnapshot::default();
        reader.discover(&mut snapshot);
        reader.read_threads(&mut snapshot, false);
        let first = reader.threads_seen;
        assert!(
            (64..400).contains(&first),
            "{first} opened at the first tick"
        );
        assert!(reader.opening_new());
        for _ in 0..20 {
            snapshot.clear();
            reader.read_threads(&mut snapshot, false);
        }
        assert_eq!(reader.threads_seen, 400);
        assert!(!reader.opening_new());
        assert_eq!(reader.threads_unseen(), 0);
    }

    #[test]
    fn a_dormant_thread_is_read_when_its_process_used_cpu_its_read_threads_do_not_show() {
        let mut check = CpuCheck::default();
        assert!(
            !check.kernel_read(1_000_000_000),
            "the first read is a baseline"
        );
        // 20 ms used, all of it seen in the threads read: nothing dormant ran.
        check.sampled_ns = 20_000_000;
        assert!(!check.kernel_read(1_020_000_000));
        // 10 ms more than seen, three times: 30 ms unexplained is not yet past the mark...
        for used in [1_030_000_000, 1_040_000_000, 1_050_000_000] {
            assert!(!check.kernel_read(used));
        }
        // ...and 10 more is.
        assert!(check.kernel_read(1_060_000_000));
        check.woken();
        assert!(
            !check.kernel_read(1_200_000_000),
            "a baseline again after the wake"
        );
    }

    #[test]
    fn libraries_from_maps() {
        let maps =
            "7f00-7f01 r-xp 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0\n\
                    7f01-7f02 r--p 00000000 08:01 2 /usr/lib/x86_64-linux-gnu/libc.so.6\n\
                    7f02-7f03 rw-p 00000000 00:00 0 [heap]\n\
                    7f03-7f04 r--p 00000000 08:01 2 /usr/lib/x86_64-linux-gnu/libc.so.6\n";
        assert_eq!(
            mapped_libraries(maps),
            vec!["libc.so.6".to_string(), "libpython3.11.so.1.0".to_string()]
        );
    }
}
