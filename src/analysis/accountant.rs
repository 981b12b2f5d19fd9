//! Turns tick snapshots into time: per-thread and whole-tree thread-seconds, and the wall-clock view.
//!
//! Pure: fed the snapshots the sampler read (or recorded ones, in tests), it does no I/O.

use std::collections::HashMap;

use super::timeline::Timeline;
use super::wait_kind::{classify, WaitKind};
use crate::sampler::observation::{ProcessInfo, Sighting, ThreadObservation, TickSnapshot};

/// Nanoseconds on the CPU, waiting for a CPU, and off the CPU by wait kind.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TimeSplit {
    pub cpu_ns: f64,
    pub runqueue_ns: f64,
    pub waits_ns: [f64; WaitKind::COUNT],
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

/// One thread's account over the measurement.
#[derive(Debug, Clone)]
pub struct ThreadAccount {
    pub pid: i32,
    pub tid: i32,
    pub name: String,
    pub time: TimeSplit,
    /// Times the thread was scheduled onto a CPU during the measurement.
    pub timeslices: u64,
    prev_at_ns: u64,
    prev_timeslices: u64,
    prev_cpu_ns: u64,
    prev_runqueue_ns: u64,
    prev_wait: Option<WaitKind>,
    /// The last wait this thread was seen in, however long ago.
    last_wait: Option<WaitKind>,
    /// Off-CPU time not yet attributed: negative when counters ran ahead of the clock
    /// (schedstat is updated at scheduler ticks), positive while the thread was seen running
    /// at both ends of its intervals.
    pending_off_ns: i64,
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

/// Exited threads whose accounts are kept (the busiest); the report lists fewer.
const KEPT_FINISHED_THREADS: usize = 100;

/// Groups of wait kinds, in the order they explain wall time when nothing computes:
/// a thread waiting on I/O explains the wall better than a pool thread parked on a futex.
const WALL_PRIORITY: [&[WaitKind]; 5] = [
    &[
        WaitKind::Disk,
        WaitKind::Network,
        WaitKind::Ipc,
        WaitKind::Paging,
    ],
    &[WaitKind::Lock],
    &[
        WaitKind::Other,
        WaitKind::Unknown,
        WaitKind::Uninterruptible,
    ],
    &[WaitKind::Sleep, WaitKind::EventWait, WaitKind::Input],
    &[WaitKind::Child],
];

#[derive(Debug, Default)]
pub struct Accountant {
    threads: HashMap<(i32, i32), ThreadAccount>,
    finished_threads: Vec<ThreadAccount>,
    processes: HashMap<i32, ProcessAccount>,
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
}

impl Accountant {
    pub fn ingest(&mut self, snapshot: &TickSnapshot) {
        for info in &snapshot.new_processes {
            self.note_process(info);
        }
        let mut interval = TimeSplit::default();
        let mut interval_busy_ns = 0.0;
        for observation in &snapshot.threads {
            if let Some((split, busy_ns)) = self.account_thread(observation) {
                interval_busy_ns += busy_ns;
                if let Some(process) = self.processes.get_mut(&observation.pid) {
                    process.cpu_ns += split.cpu_ns;
                }
                interval.add(&split);
            }
        }
        for process_cpu in &snapshot.process_cpu {
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
        let wall = wall_split(tick_ns, &interval, interval_busy_ns);
        self.wall.add(&wall);
        self.timeline.add(snapshot.at_ns, &wall, interval.cpu_ns);
        self.recent.add(&wall);
        self.recent_cpu_ns += interval.cpu_ns;
        self.ticks += 1;
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

    /// Accounts one thread's interval up to this observation: its split and how much of the
    /// interval it was busy (see `ThreadAccount::advance`); `None` if it has no account.
    fn account_thread(&mut self, observation: &ThreadObservation) -> Option<(TimeSplit, f64)> {
        let key = (observation.pid, observation.tid);
        let previous = self.threads.get(&key).map(|a| a.prev_wait);
        let wait = match (&observation.state, previous) {
            (Some(state), _) => classify(state),
            // Unchanged since the previous observation.
            (None, Some(previous)) => previous,
            (None, None) => None,
        };
        let fresh = |prev_at_ns, prev_cpu_ns, prev_runqueue_ns, prev_timeslices| ThreadAccount {
            pid: observation.pid,
            tid: observation.tid,
            name: String::new(),
            time: TimeSplit::default(),
            timeslices: 0,
            prev_at_ns,
            prev_timeslices,
            prev_cpu_ns,
            prev_runqueue_ns,
            prev_wait: wait,
            last_wait: wait,
            pending_off_ns: 0,
        };
        match observation.sighting {
            Sighting::Continuing if self.threads.contains_key(&key) => {}
            Sighting::Continuing | Sighting::Baseline => {
                let baseline = fresh(
                    observation.at_ns,
                    observation.cpu_ns,
                    observation.runqueue_ns,
                    observation.timeslices,
                );
                self.start_thread(key, baseline);
            }
            Sighting::BornAt(born_ns) => {
                self.start_thread(key, fresh(born_ns.min(observation.at_ns), 0, 0, 0));
            }
        }
        let account = self.threads.get_mut(&key)?;
        if let Some(name) = &observation.comm {
            account.name.clone_from(name);
        }
        let exited = observation
            .state
            .as_ref()
            .is_some_and(|state| matches!(state.letter, 'Z' | 'X'));
        let (split, busy_ns) = account.advance(
            observation.at_ns,
            observation.cpu_ns,
            observation.runqueue_ns,
            wait,
            exited,
        );
        account.time.add(&split);
        account.timeslices += observation
            .timeslices
            .saturating_sub(account.prev_timeslices);
        account.prev_timeslices = observation.timeslices;
        Some((split, busy_ns))
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

    /// The wall split and tree CPU since the last call, for a live display.
    pub fn take_recent(&mut self) -> (TimeSplit, f64) {
        let recent = std::mem::take(&mut self.recent);
        (recent, std::mem::take(&mut self.recent_cpu_ns))
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

impl ThreadAccount {
    /// Accounts the interval from the previous reading to this one. Also returns how much of
    /// the interval the thread was busy (on a CPU or queued for one), smoothed for counter lag:
    /// the part of the interval not attributed to a wait. A thread seen `exited` (a zombie)
    /// is charged its last CPU, but no wait: after its exit it waits for nothing.
    fn advance(
        &mut self,
        at_ns: u64,
        cpu_ns: u64,
        runqueue_ns: u64,
        wait: Option<WaitKind>,
        exited: bool,
    ) -> (TimeSplit, f64) {
        let mut split = TimeSplit::default();
        let elapsed = at_ns.saturating_sub(self.prev_at_ns) as i64;
        let cpu = cpu_ns.saturating_sub(self.prev_cpu_ns);
        let runqueue = runqueue_ns.saturating_sub(self.prev_runqueue_ns);
        split.cpu_ns = cpu as f64;
        split.runqueue_ns = runqueue as f64;
        let off = elapsed - cpu as i64 - runqueue as i64 + self.pending_off_ns;
        self.pending_off_ns = 0;
        if exited {
            let busy = ((cpu + runqueue) as f64).min(elapsed.max(0) as f64);
            self.prev_at_ns = at_ns;
            self.prev_cpu_ns = cpu_ns;
            self.prev_runqueue_ns = runqueue_ns;
            return (split, busy);
        }
        if off < 0 {
            self.pending_off_ns = off;
        } else {
            match (self.prev_wait, wait) {
                (Some(before), Some(now)) if before != now => {
                    split.waits_ns[before.index()] += off as f64 / 2.0;
                    split.waits_ns[now.index()] += off as f64 / 2.0;
                }
                (Some(kind), _) | (None, Some(kind)) => split.waits_ns[kind.index()] += off as f64,
                // Running at both ends: waits too short to be seen (a thread doing many quick
                // fsyncs) or counter lag, which the next interval takes back. Give it to the
                // wait this thread was last seen in; with none seen yet, keep it for later,
                // unless it grows past the interval itself.
                (None, None) => match self.last_wait {
                    Some(kind) => split.waits_ns[kind.index()] += off as f64,
                    None if off > elapsed => split.waits_ns[WaitKind::Other.index()] += off as f64,
                    None => self.pending_off_ns = off,
                },
            }
        }
        if wait.is_some() {
            self.last_wait = wait;
        }
        self.prev_at_ns = at_ns;
        self.prev_cpu_ns = cpu_ns;
        self.prev_runqueue_ns = runqueue_ns;
        self.prev_wait = wait;
        let busy = (elapsed as f64 - split.waits_ns.iter().sum::<f64>()).max(0.0);
        (split, busy)
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
        wall.cpu_ns = computing * interval.cpu_ns / counted;
        wall.runqueue_ns = computing * interval.runqueue_ns / counted;
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

    #[test]
    fn off_cpu_time_goes_half_and_half_across_a_change_of_wait() {
        let mut account = ThreadAccount {
            pid: 1,
            tid: 1,
            name: String::new(),
            time: TimeSplit::default(),
            timeslices: 0,
            prev_at_ns: 0,
            prev_timeslices: 0,
            prev_cpu_ns: 0,
            prev_runqueue_ns: 0,
            prev_wait: Some(WaitKind::Disk),
            last_wait: Some(WaitKind::Disk),
            pending_off_ns: 0,
        };
        let (s, busy) = account.advance(100, 20, 0, Some(WaitKind::Sleep), false);
        assert_eq!(s.cpu_ns, 20.0);
        assert_eq!(busy, 20.0);
        assert_eq!(s.wait(WaitKind::Disk), 40.0);
        assert_eq!(s.wait(WaitKind::Sleep), 40.0);
        // Counters ahead of the clock: nothing negative, the excess is settled next time,
        // and the thread counts as busy for the whole interval.
        let (s, busy) = account.advance(110, 35, 0, None, false);
        assert_eq!(s.wait(WaitKind::Sleep), 0.0);
        assert_eq!(busy, 10.0);
        let (s, _) = account.advance(200, 40, 0, Some(WaitKind::Disk), false);
        assert_eq!(s.wait(WaitKind::Disk), 80.0);
    }
}
