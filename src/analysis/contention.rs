//! Evidence that a process's threads took turns instead of running in parallel (a GIL, or one hot lock).

use std::collections::HashMap;

use super::accountant::{Accountant, ThreadAccount};
use super::wait_kind::WaitKind;

/// A thread "wants the CPU" if it computed, or waited for a CPU, at least this share of the
/// wall time (on a busy machine, the run queue takes what computing would have had).
const BUSY_SHARE: f64 = 0.10;
/// Together the busy threads used at most this many cores...
const ABOUT_ONE_CORE: f64 = 1.3;
/// ...while spending at least this share of their time parked on futexes...
const MIN_LOCK_SHARE: f64 = 0.2;
/// ...and switching at least this often (per thread per second).
const MIN_SWITCHES_PER_S: f64 = 20.0;

#[derive(Debug, Clone, PartialEq)]
pub struct SerializedThreads {
    pub pid: i32,
    /// Threads that wanted the CPU.
    pub threads: usize,
    /// Cores they used together, on average.
    pub cores_used: f64,
    /// Share of their time spent waiting on futexes.
    pub lock_share: f64,
    /// How often each was scheduled onto a CPU, per second.
    pub switches_per_s: f64,
}

/// The process whose busy threads took turns on about one core, parked on futexes and
/// switching often, if there is one (on a machine with at least two cores).
pub fn serialized_threads(
    accountant: &Accountant,
    wall_ns: f64,
    cores: f64,
) -> Option<SerializedThreads> {
    if wall_ns <= 0.0 || cores < 2.0 {
        return None;
    }
    let mut busy: HashMap<i32, Vec<&ThreadAccount>> = HashMap::new();
    for thread in accountant.threads() {
        if thread.time.cpu_ns + thread.time.runqueue_ns >= BUSY_SHARE * wall_ns {
            busy.entry(thread.pid).or_default().push(thread);
        }
    }
    busy.into_iter()
        .filter(|(_, threads)| threads.len() >= 2)
        .map(|(pid, threads)| {
            let cpu: f64 = threads.iter().map(|t| t.time.cpu_ns).sum();
            let lock: f64 = threads.iter().map(|t| t.time.wait(WaitKind::Lock)).sum();
            let total: f64 = threads.iter().map(|t| t.time.total_ns()).sum();
            let switches: u64 = threads.iter().map(|t| t.timeslices).sum();
            SerializedThreads {
                pid,
                threads: threads.len(),
                cores_used: cpu / wall_ns,
                lock_share: if total > 0.0 { lock / total } else { 0.0 },
                switches_per_s: switches as f64 / (wall_ns / 1e9) / threads.len() as f64,
            }
        })
        .filter(|e| {
            e.cores_used <= ABOUT_ONE_CORE
                && e.lock_share >= MIN_LOCK_SHARE
                && e.switches_per_s >= MIN_SWITCHES_PER_S
        })
        .max_by_key(|e| e.threads)
}
