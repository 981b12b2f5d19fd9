//! The program's own concurrency as it runs: serial, threads, an event loop, processes, and how many activities overlap.
//!
//! At every tick each thread contributes what it does: the share of the tick it computed (or
//! queued for a CPU), or waited on I/O in a blocking call, and, for an event loop in its
//! poller, the peers it is waiting to hear from. Their sum is the number of activities in
//! flight at that tick; its mean over the ticks where anything happened is `in_flight`.
//! Thresholds, all here: a tick is busy when at least half an activity was in flight; a
//! thread is active in a tick when busy or blocked on I/O for half of it (or polling peers);
//! a structure holds when it describes at least 30 % of the busy ticks (an event loop also
//! when its thread is busy half the busy time, and only when its thread does 30 % of the
//! program's work); a thread or process is busy when it computed or waited on I/O for over
//! 5 % of the wall time.

use std::collections::HashMap;

use super::accountant::{Accountant, TickIntervals};
use super::event_loop::{EventLoop, LoopTracker};
use super::wait_kind::WaitKind;

/// A tick is busy (not idle) when at least this many activities were in flight.
const BUSY_TICK: f64 = 0.5;
/// A thread is active in a tick when it did something for at least this share of it.
const ACTIVE_THREAD: f64 = 0.5;
/// A structure holds when it describes at least this share of the busy ticks.
const HOLDS: f64 = 0.3;
/// An event loop also holds when its thread's non-idle time is this share of the busy time...
const LOOP_HOLDS: f64 = 0.5;
/// ...and in any case only when its thread does this share of the program's work (its loop's
/// CPU and blocked time against that plus every other thread's CPU): a helper thread polling
/// worker pipes (a multiprocessing pool's result handler) is not the program's structure.
const LOOP_WORK: f64 = 0.3;
/// A thread or process is busy when it computed or waited on I/O this share of the wall.
const BUSY_THREAD: f64 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Structure {
    /// One activity at a time: one busy thread, or child processes run one after another.
    #[default]
    Serial,
    /// Several threads of one process busy at once.
    Threads,
    /// One thread multiplexing many waits.
    EventLoop,
    /// Several processes of the tree busy at once.
    Processes,
    /// More than one of the above, each for a large share of the run.
    Mixed,
}

impl Structure {
    pub fn name(self) -> &'static str {
        match self {
            Structure::Serial => "serial",
            Structure::Threads => "threads",
            Structure::EventLoop => "event_loop",
            Structure::Processes => "processes",
            Structure::Mixed => "mixed",
        }
    }
}

/// What the analysis found about the program's concurrency.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Concurrency {
    pub structure: Structure,
    /// Mean activities overlapping at once, over the busy ticks.
    pub in_flight: f64,
    pub peak_in_flight: u32,
    pub busy_threads: usize,
    pub busy_processes: usize,
    /// Threads that computed over 5 % of the wall time, and their processes.
    pub computing_threads: usize,
    pub computing_processes: usize,
    /// Shares of the busy time with threads of one process overlapping, processes
    /// overlapping, and an event loop waiting on two or more peers.
    pub threads_share: f64,
    pub processes_share: f64,
    pub multiplexing_share: f64,
    /// Activity-seconds spent waiting on I/O: blocked threads, and each peer a loop waited on
    /// (the W of the pool-size formula, per activity rather than per thread).
    pub io_wait_s: f64,
    pub event_loop: Option<EventLoop>,
}

#[derive(Debug, Default)]
pub struct StructureTracker {
    busy_ns: f64,
    in_flight_ns: f64,
    peak: f64,
    threads_ns: f64,
    processes_ns: f64,
    multiplexing_ns: f64,
    io_wait_ns: f64,
}

impl StructureTracker {
    /// One tick: what each thread did in it, as the accountant split it, which threads sit
    /// in an event loop's poller, and which wait on another process of the tree (a pipeline's
    /// stages waiting on each other are one activity, not several).
    pub fn ingest(
        &mut self,
        tick: &TickIntervals,
        loops: &LoopTracker,
        on_tree: impl Fn(i32, i32) -> bool,
    ) {
        let tick_ns = tick.tick_ns;
        if tick_ns <= 0.0 {
            return;
        }
        let mut in_flight = 0.0;
        let mut peers_total = 0.0;
        let mut active_threads: HashMap<i32, u32> = HashMap::new();
        for interval in &tick.threads {
            let split = &interval.split;
            let busy = ((split.cpu_ns + split.runqueue_ns) / tick_ns).min(1.0);
            let (io, peers) = match loops.polling_peers(interval.pid, interval.tid) {
                Some(peers) => (0.0, f64::from(peers)),
                None if on_tree(interval.pid, interval.tid) => (0.0, 0.0),
                None => {
                    let io: f64 = WaitKind::ALL
                        .into_iter()
                        .filter(|kind| kind.is_io())
                        .map(|kind| split.wait(kind))
                        .sum();
                    ((io / tick_ns).min(1.0), 0.0)
                }
            };
            let activity = (busy + io).min(1.0);
            in_flight += activity + peers;
            peers_total += peers;
            self.io_wait_ns += (io + peers) * tick_ns;
            if activity >= ACTIVE_THREAD || peers >= 1.0 {
                *active_threads.entry(interval.pid).or_insert(0) += 1;
            }
        }
        if in_flight < BUSY_TICK {
            return;
        }
        self.busy_ns += tick_ns;
        self.in_flight_ns += in_flight * tick_ns;
        self.peak = self.peak.max(in_flight);
        if active_threads.values().any(|count| *count >= 2) {
            self.threads_ns += tick_ns;
        }
        if active_threads.len() >= 2 {
            self.processes_ns += tick_ns;
        }
        if peers_total >= 2.0 {
            self.multiplexing_ns += tick_ns;
        }
    }

    /// `ns` as a share of the busy time (0 when nothing was busy).
    fn share(&self, ns: f64) -> f64 {
        if self.busy_ns > 0.0 {
            ns / self.busy_ns
        } else {
            0.0
        }
    }

    /// Whether the event loop `found` holds the program: it does most of the program's work,
    /// and multiplexing held, or the loop was busy (not idle in its poller), or it never polled.
    fn loop_holds(
        &self,
        found: &EventLoop,
        accountant: &Accountant,
        multiplexing_share: f64,
    ) -> bool {
        let work_ns = (found.blocked_s + found.callbacks_s) * 1e9;
        let others_cpu_ns: f64 = accountant
            .threads()
            .filter(|t| (t.pid, t.tid) != (found.pid, found.tid))
            .map(|t| t.time.cpu_ns)
            .sum();
        let program_work_ns = work_ns + others_cpu_ns;
        let non_idle_ns = work_ns + found.polling_io_s * 1e9;
        // No busy tick at all: a loop whose callbacks are short and spread out (a server
        // with room to spare) is still the program's shape when it does its work.
        let no_busy_tick = self.busy_ns <= 0.0 && work_ns > 0.0;
        work_ns >= LOOP_WORK * program_work_ns
            && (multiplexing_share >= HOLDS
                || self.share(non_idle_ns) >= LOOP_HOLDS
                || found.never_polled
                || no_busy_tick)
    }

    /// The structure of the whole run, from the shares of the busy time each shape held.
    pub fn conclude(
        &self,
        accountant: &Accountant,
        event_loop: Option<EventLoop>,
        wall_ns: f64,
    ) -> Concurrency {
        let (threads_share, processes_share, multiplexing_share) = (
            self.share(self.threads_ns),
            self.share(self.processes_ns),
            self.share(self.multiplexing_ns),
        );
        let loop_holds = event_loop
            .as_ref()
            .is_some_and(|found| self.loop_holds(found, accountant, multiplexing_share));
        let holding: Vec<Structure> = [
            (Structure::EventLoop, loop_holds),
            (Structure::Threads, threads_share >= HOLDS),
            (Structure::Processes, processes_share >= HOLDS),
        ]
        .into_iter()
        .filter(|(_, holds)| *holds)
        .map(|(structure, _)| structure)
        .collect();
        let structure = match holding.as_slice() {
            [] => Structure::Serial,
            [one] => *one,
            _ => Structure::Mixed,
        };
        let (busy_threads, busy_processes) = busy_counts(accountant, wall_ns, true);
        let (computing_threads, computing_processes) = busy_counts(accountant, wall_ns, false);
        Concurrency {
            structure,
            in_flight: self.share(self.in_flight_ns),
            peak_in_flight: self.peak.round() as u32,
            busy_threads,
            busy_processes,
            computing_threads,
            computing_processes,
            threads_share,
            processes_share,
            multiplexing_share,
            io_wait_s: self.io_wait_ns / 1e9,
            event_loop,
        }
    }
}

/// Threads that computed (or waited on I/O, with `io`) over 5 % of the wall time, and their
/// processes.
fn busy_counts(accountant: &Accountant, wall_ns: f64, io: bool) -> (usize, usize) {
    if wall_ns <= 0.0 {
        return (0, 0);
    }
    let mut processes: Vec<i32> = Vec::new();
    let mut threads = 0;
    for thread in accountant.threads() {
        let io_ns: f64 = WaitKind::ALL
            .into_iter()
            .filter(|kind| io && kind.is_io())
            .map(|kind| thread.time.wait(kind))
            .sum();
        if thread.time.cpu_ns + io_ns > BUSY_THREAD * wall_ns {
            threads += 1;
            if !processes.contains(&thread.pid) {
                processes.push(thread.pid);
            }
        }
    }
    (threads, processes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::accountant::{ThreadInterval, TimeSplit};

    fn interval(pid: i32, tid: i32, split: TimeSplit) -> ThreadInterval {
        ThreadInterval {
            pid,
            tid,
            observation: 0,
            account_started_ns: 0,
            split,
            wait_before: None,
            wait_after: None,
        }
    }

    fn feed(tracker: &mut StructureTracker, ticks: usize, threads: &[ThreadInterval]) {
        let loops = LoopTracker::default();
        for _ in 0..ticks {
            tracker.ingest(
                &TickIntervals {
                    tick_ns: 10e6,
                    threads: threads.to_vec(),
                    ..TickIntervals::default()
                },
                &loops,
                |_, _| false,
            );
        }
    }

    #[test]
    fn eight_threads_blocked_on_sockets_are_threads_with_eight_in_flight() {
        let mut tracker = StructureTracker::default();
        let waiting = TimeSplit::with_waits(0.0, &[(WaitKind::Network, 10e6)]);
        let pool: Vec<_> = (2..10).map(|tid| interval(1, tid, waiting)).collect();
        feed(&mut tracker, 100, &pool);
        let found = tracker.conclude(&Accountant::default(), None, 1e9);
        assert_eq!(found.structure, Structure::Threads);
        assert!((found.in_flight - 8.0).abs() < 1e-9, "{found:?}");
        assert_eq!(found.peak_in_flight, 8);
    }

    #[test]
    fn one_thread_at_a_time_is_serial_and_idle_ticks_do_not_count() {
        let mut tracker = StructureTracker::default();
        let computing = TimeSplit::with_waits(10e6, &[]);
        let sleeping = TimeSplit::with_waits(0.0, &[(WaitKind::Sleep, 10e6)]);
        // A shell waiting on its child while the child computes, then a pause.
        feed(
            &mut tracker,
            100,
            &[
                interval(1, 1, TimeSplit::with_waits(0.0, &[(WaitKind::Child, 10e6)])),
                interval(2, 2, computing),
            ],
        );
        feed(&mut tracker, 100, &[interval(1, 1, sleeping)]);
        let found = tracker.conclude(&Accountant::default(), None, 2e9);
        assert_eq!(found.structure, Structure::Serial);
        assert!((found.in_flight - 1.0).abs() < 1e-9, "{found:?}");
    }

    #[test]
    fn two_processes_computing_are_processes() {
        let mut tracker = StructureTracker::default();
        let computing = TimeSplit::with_waits(10e6, &[]);
        feed(
            &mut tracker,
            100,
            &[interval(2, 2, computing), interval(3, 3, computing)],
        );
        let found = tracker.conclude(&Accountant::default(), None, 1e9);
        assert_eq!(found.structure, Structure::Processes);
    }
}
