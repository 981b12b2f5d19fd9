//! Whether clients waited for the server: the accept queues of its listeners over the run, and the threads that served meanwhile.
//!
//! A server whose workers are all busy queues the connections that arrive meanwhile at its
//! listener (the kernel accepts them and keeps them until a worker calls accept). From the
//! workers' side nothing shows it: a worker sleeping or waiting in its handler looks like a
//! program with nothing to do. The accept queue says the opposite: work waited for them.

use std::collections::BTreeMap;

use super::accountant::Accountant;
use super::code::CodeState;
use super::wait_kind::WaitKind;
use crate::sampler::observation::TickSnapshot;

/// Clients waited at a listener when at least one connection was queued in at least this
/// share of its samples...
pub const MOSTLY_QUEUED: f64 = 0.5;
/// ...and this many on average.
pub const MEAN_QUEUED: f64 = 1.0;
/// A thread of the listener's processes served when it used at least this share of the CPU
/// of the busiest of them (a pre-fork server's master wakes now and then; its workers parse
/// every request).
const SERVING_CPU_SHARE: f64 = 0.1;

/// Per listener address: samples, queued connections summed, the most, samples with some
/// queued, and the processes that held it.
#[derive(Debug, Default, Clone)]
struct QueueCounts {
    samples: u64,
    queued_sum: u64,
    max: u32,
    with_queue: u64,
    pids: Vec<i32>,
}

/// The queue lengths seen at every listener, tick by tick.
#[derive(Debug, Default)]
pub struct DemandTracker {
    listeners: BTreeMap<String, QueueCounts>,
}

impl DemandTracker {
    pub fn ingest(&mut self, snapshot: &TickSnapshot) {
        for sample in &snapshot.listeners {
            let counts = self.listeners.entry(sample.address.clone()).or_default();
            counts.samples += 1;
            counts.queued_sum += u64::from(sample.queued);
            counts.max = counts.max.max(sample.queued);
            counts.with_queue += u64::from(sample.queued > 0);
            for pid in &sample.pids {
                if !counts.pids.contains(pid) {
                    counts.pids.push(*pid);
                }
            }
        }
    }

    /// What the queues say, with the threads that served them (from the accountant); `None`
    /// when the tree held no listener.
    pub fn conclude(&self, accountant: &Accountant) -> Option<Demand> {
        let listeners: Vec<ListenerDemand> = self
            .listeners
            .iter()
            .map(|(address, counts)| ListenerDemand {
                address: address.clone(),
                samples: counts.samples,
                mean_queued: counts.queued_sum as f64 / counts.samples.max(1) as f64,
                max_queued: counts.max,
                queued_share: counts.with_queue as f64 / counts.samples.max(1) as f64,
                pids: {
                    let mut pids = counts.pids.clone();
                    pids.sort_unstable();
                    pids
                },
            })
            .collect();
        if listeners.is_empty() {
            return None;
        }
        let clients_waited = listeners.iter().any(ListenerDemand::clients_waited);
        let mut pids: Vec<i32> = listeners
            .iter()
            .filter(|l| l.clients_waited() || !clients_waited)
            .flat_map(|l| l.pids.iter().copied())
            .collect();
        pids.sort_unstable();
        pids.dedup();
        Some(Demand {
            listeners,
            clients_waited,
            serving: serving(accountant, &pids),
        })
    }
}

/// One listening address over the run.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerDemand {
    /// "127.0.0.1:8802".
    pub address: String,
    /// Reads of its accept queue.
    pub samples: u64,
    pub mean_queued: f64,
    pub max_queued: u32,
    /// Of the samples, those with at least one connection queued.
    pub queued_share: f64,
    /// The processes that held it.
    pub pids: Vec<i32>,
}

impl ListenerDemand {
    /// Connections waited at it for most of the run (see `MOSTLY_QUEUED`, `MEAN_QUEUED`).
    pub fn clients_waited(&self) -> bool {
        self.queued_share >= MOSTLY_QUEUED && self.mean_queued >= MEAN_QUEUED
    }
}

/// The threads of the listeners' processes that served, and what they mostly did.
#[derive(Debug, Clone, PartialEq)]
pub struct Serving {
    pub threads: u64,
    pub processes: u64,
    /// Their dominant state (computing, or a wait kind) and its share of their time.
    pub state: CodeState,
    pub share: f64,
}

/// Everything the listeners' queues said.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    /// Every listener the tree held, by address.
    pub listeners: Vec<ListenerDemand>,
    /// At some listener, connections waited for most of the run.
    pub clients_waited: bool,
    /// The threads that served (of the queued listeners' processes, when clients waited).
    pub serving: Option<Serving>,
}

impl Demand {
    /// The listener connections waited at the most (by mean queue), among those where they
    /// waited for most of the run.
    pub fn most_queued(&self) -> Option<&ListenerDemand> {
        self.listeners
            .iter()
            .filter(|l| l.clients_waited())
            .max_by(|a, b| a.mean_queued.total_cmp(&b.mean_queued))
    }
}

/// The serving threads of processes `pids`: those that used at least `SERVING_CPU_SHARE` of
/// the busiest one's CPU; their dominant state over their summed time (run-queue wait
/// counts as computing: it is CPU they wanted).
fn serving(accountant: &Accountant, pids: &[i32]) -> Option<Serving> {
    let threads: Vec<_> = accountant
        .threads()
        .filter(|t| pids.contains(&t.pid))
        .collect();
    let busiest = threads.iter().map(|t| t.time.cpu_ns).fold(0.0, f64::max);
    let serving: Vec<_> = threads
        .into_iter()
        .filter(|t| busiest > 0.0 && t.time.cpu_ns >= SERVING_CPU_SHARE * busiest)
        .collect();
    if serving.is_empty() {
        return None;
    }
    let cpu: f64 = serving
        .iter()
        .map(|t| t.time.cpu_ns + t.time.runqueue_ns)
        .sum();
    let mut states = vec![(CodeState::Cpu, cpu)];
    states.extend(WaitKind::ALL.into_iter().map(|kind| {
        let ns: f64 = serving.iter().map(|t| t.time.wait(kind)).sum();
        (CodeState::Wait(kind), ns)
    }));
    let total: f64 = states.iter().map(|(_, ns)| ns).sum();
    let (state, ns) = states
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((CodeState::Cpu, 0.0));
    let mut processes: Vec<i32> = serving.iter().map(|t| t.pid).collect();
    processes.sort_unstable();
    processes.dedup();
    Some(Serving {
        threads: serving.len() as u64,
        processes: processes.len() as u64,
        state,
        share: if total > 0.0 { ns / total } else { 0.0 },
    })
}
