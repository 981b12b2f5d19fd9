//! Turns a verdict into a concurrency model with reasons, for the runtime the program runs on.

use serde::{Deserialize, Serialize};

use crate::analysis::phases::Phase;
use crate::analysis::runtime::Runtime;
use crate::analysis::verdict::{Verdict, WorkloadClass};
use crate::analysis::wait_kind::WaitKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    Multiprocessing,
    Threads,
    Async,
    None,
}

impl Model {
    pub fn name(self) -> &'static str {
        match self {
            Model::Multiprocessing => "multiprocessing",
            Model::Threads => "threads",
            Model::Async => "async",
            Model::None => "none",
        }
    }
}

pub const WARNING: &str = "Concurrency adds complexity (races, deadlocks, harder debugging and \
testing) and pays only for a measured bottleneck: change nothing unless this run's time is a \
known problem, then measure again and compare.";

/// What the advice is computed from.
#[derive(Debug, Clone)]
pub struct AdviceInput<'a> {
    pub verdict: &'a Verdict,
    pub runtime: Runtime,
    pub wall_s: f64,
    pub avg_cores: f64,
    /// CPUs this machine offers the program.
    pub cores: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    pub model: Model,
    pub reasons: Vec<String>,
    pub warning: String,
}

fn pct(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// The built-in advice: parallelism for CPU-bound work (processes where a GIL serialises
/// threads), overlapped waits for I/O-bound work (async for network, threads for disk).
pub fn advise(input: &AdviceInput) -> Advice {
    let verdict = input.verdict;
    let shares = &verdict.shares;
    let mut reasons = Vec::new();
    let model = match verdict.class {
        WorkloadClass::Idle => {
            reasons.push(format!(
                "{} of the {:.1} s wall time was spent waiting on timers, terminal input or an \
                 event loop with nothing to do ({} computing): there is no throughput \
                 bottleneck for concurrency to remove.",
                pct(shares.idle + shares.child + shares.other),
                input.wall_s,
                pct(shares.computing)
            ));
            Model::None
        }
        WorkloadClass::CpuBound => cpu_bound(input, &mut reasons),
        WorkloadClass::IoBound => io_bound(input, &mut reasons),
        WorkloadClass::Mixed => mixed(input, &mut reasons),
    };
    if shares.runqueue > 0.1 {
        reasons.push(format!(
            "{} of the wall time the program was ready to run but waited for a CPU: the machine \
             is busy with other work, and more parallelism will not help until it is not.",
            pct(shares.runqueue)
        ));
    }
    if shares.unknown > 0.2 {
        reasons.push(format!(
            "{} of the wall time was spent off the CPU for reasons that could not be read \
             (permissions), so this advice is less certain.",
            pct(shares.unknown)
        ));
    }
    Advice {
        model,
        reasons,
        warning: WARNING.to_string(),
    }
}

/// Advice for a run whose phases want different things: the phases are the reason, each gets
/// its own advice, and the model is that of the longest phase that is not idle.
pub fn advise_phases(input: &AdviceInput, phases: &[Phase]) -> Advice {
    let mut reasons = vec![format!(
        "The run changes character: {}. One model does not fit it all; each phase gets its own \
         advice below.",
        phases
            .iter()
            .map(|p| format!(
                "{:.1}-{:.1} s {}",
                p.start_ns / 1e9,
                p.end_ns / 1e9,
                describe(&p.verdict)
            ))
            .collect::<Vec<_>>()
            .join(", ")
    )];
    let mut longest: Option<(f64, Model)> = None;
    for phase in phases {
        let seconds = phase.seconds();
        let advice = advise(&AdviceInput {
            verdict: &phase.verdict,
            wall_s: seconds,
            avg_cores: phase.avg_cores(),
            ..input.clone()
        });
        if phase.verdict.class != WorkloadClass::Idle && longest.is_none_or(|(s, _)| seconds > s) {
            longest = Some((seconds, advice.model));
        }
        if let Some(first) = advice.reasons.first() {
            reasons.push(format!(
                "{:.1}-{:.1} s ({}): {}. {}",
                phase.start_ns / 1e9,
                phase.end_ns / 1e9,
                phase.verdict.class.name(),
                advice.model.name(),
                first
            ));
        }
    }
    Advice {
        model: longest.map_or(Model::None, |(_, model)| model),
        reasons,
        warning: WARNING.to_string(),
    }
}

/// "cpu-bound", "io-bound (disk)", "idle (sleep)".
fn describe(verdict: &Verdict) -> String {
    match (verdict.class, verdict.dominant_wait) {
        (WorkloadClass::CpuBound, _) | (_, None) => verdict.class.name().to_string(),
        (class, Some(kind)) => format!("{} ({})", class.name(), kind.name()),
    }
}

fn cpu_bound(input: &AdviceInput, reasons: &mut Vec<String>) -> Model {
    let shares = &input.verdict.shares;
    let used = format!(
        "{} of the wall time was spent computing, using {:.2} of {:.0} cores on average",
        pct(shares.computing),
        input.avg_cores,
        input.cores
    );
    if input.avg_cores >= 0.85 * input.cores {
        reasons.push(format!(
            "{used}: the program is already parallel and uses the whole machine; more \
             concurrency cannot make it faster here, only a faster algorithm or more cores can."
        ));
        return Model::None;
    }
    reasons.push(format!(
        "{used}: CPU-bound work gains only from parallelism (tasks running at the same \
         instant on several cores), not from overlapping waits."
    ));
    match input.runtime {
        Runtime::Python {
            free_threaded: false,
        } => {
            reasons.push(
                "In CPython the GIL lets only one thread run Python code at a time, so threads \
                 would not run in parallel: use processes (multiprocessing, \
                 concurrent.futures.ProcessPoolExecutor)."
                    .to_string(),
            );
            Model::Multiprocessing
        }
        Runtime::Node => {
            reasons.push(
                "Node.js runs JavaScript on one thread; CPU-bound work needs worker_threads (or \
                 child processes) to use more cores."
                    .to_string(),
            );
            Model::Threads
        }
        runtime => {
            reasons.push(format!(
                "The {} runtime has no global interpreter lock, so threads run in parallel on \
                 all cores and share memory more cheaply than processes.",
                runtime.name()
            ));
            Model::Threads
        }
    }
}

fn io_bound(input: &AdviceInput, reasons: &mut Vec<String>) -> Model {
    let verdict = input.verdict;
    let dominant = verdict.dominant_wait.unwrap_or(WaitKind::Other);
    reasons.push(format!(
        "{} of the {:.1} s wall time was spent waiting on I/O (mostly {}) while only {} was \
         spent computing: I/O-bound work gains from overlapping its waits, not from more cores.",
        pct(verdict.shares.io),
        input.wall_s,
        dominant.name(),
        pct(verdict.shares.computing)
    ));
    match dominant {
        WaitKind::Network | WaitKind::Ipc => {
            reasons.push(format!(
                "Waiting on {} suits an event loop: use async when you can (one thread, tasks \
                 yield at each await, thousands of waits overlap cheaply), threads when you must \
                 (the libraries you use block, and one task that never yields blocks the whole \
                 loop).",
                if dominant == WaitKind::Network {
                    "the network"
                } else {
                    "pipes and sockets"
                }
            ));
            Model::Async
        }
        WaitKind::Paging => {
            reasons.push(
                "The waits are page faults: the program is short of memory. Concurrency would \
                 add memory pressure; reduce the working set or add memory instead."
                    .to_string(),
            );
            Model::None
        }
        _ => {
            let python = matches!(input.runtime, Runtime::Python { .. });
            reasons.push(if python {
                "Disk files have no real asynchronous path in asyncio (it hands file I/O to \
                 threads anyway): overlap the disk waits with threads \
                 (concurrent.futures.ThreadPoolExecutor); the GIL is released while a thread \
                 waits on I/O."
                    .to_string()
            } else {
                "Disk waits are overlapped most simply with threads (a pool issuing reads and \
                 writes at once); fsync-heavy work may gain more from batching syncs."
                    .to_string()
            });
            Model::Threads
        }
    }
}

fn mixed(input: &AdviceInput, reasons: &mut Vec<String>) -> Model {
    let shares = &input.verdict.shares;
    reasons.push(format!(
        "Neither computing ({}) nor waiting on I/O ({}) dominates the {:.1} s wall time.",
        pct(shares.computing),
        pct(shares.io),
        input.wall_s
    ));
    if shares.lock > 0.2 {
        reasons.push(format!(
            "{} of the wall time every thread waited on a lock: the threads serialise on \
             shared state; reduce the contention before adding concurrency.",
            pct(shares.lock)
        ));
        return Model::None;
    }
    if shares.computing + shares.io < 0.3 {
        reasons.push(
            "Too little of the time is explained by work or I/O to recommend a model.".to_string(),
        );
        return Model::None;
    }
    if shares.computing >= shares.io && !input.runtime.threads_run_in_parallel() {
        reasons.push(
            "The computing part needs parallelism and this runtime's threads do not run in \
             parallel; processes overlap the I/O part too."
                .to_string(),
        );
        return Model::Multiprocessing;
    }
    reasons.push(
        "Threads overlap the I/O part with the computing part; an event loop would be blocked \
         by the computing part."
            .to_string(),
    );
    Model::Threads
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::accountant::TimeSplit;
    use crate::analysis::verdict::classify;

    fn verdict(cpu: f64, waits: &[(WaitKind, f64)]) -> Verdict {
        classify(&TimeSplit::with_waits(cpu, waits), 100)
    }

    fn advise_for(verdict: &Verdict, runtime: Runtime, avg_cores: f64) -> Advice {
        advise(&AdviceInput {
            verdict,
            runtime,
            wall_s: 2.0,
            avg_cores,
            cores: 2.0,
        })
    }

    const CPYTHON: Runtime = Runtime::Python {
        free_threaded: false,
    };

    #[test]
    fn cpu_bound_is_processes_under_a_gil_and_threads_without() {
        let v = verdict(98.0, &[(WaitKind::Sleep, 2.0)]);
        let python = advise_for(&v, CPYTHON, 0.98);
        assert_eq!(python.model, Model::Multiprocessing);
        assert!(python.reasons.iter().any(|r| r.contains("GIL")));
        let native = advise_for(&v, Runtime::Native, 0.98);
        assert_eq!(native.model, Model::Threads);
        assert!(!native.reasons.iter().any(|r| r.contains("GIL")));
        assert!(native.reasons[0].contains("98%"), "{:?}", native.reasons);
    }

    #[test]
    fn a_program_using_every_core_is_told_so() {
        let v = verdict(100.0, &[]);
        let advice = advise_for(&v, Runtime::Native, 1.95);
        assert_eq!(advice.model, Model::None);
        assert!(advice.reasons[0].contains("already parallel"));
    }

    #[test]
    fn io_bound_network_is_async_and_disk_is_threads() {
        let net = verdict(3.0, &[(WaitKind::Network, 97.0)]);
        assert_eq!(advise_for(&net, CPYTHON, 0.03).model, Model::Async);
        let disk = verdict(30.0, &[(WaitKind::Disk, 70.0)]);
        let advice = advise_for(&disk, CPYTHON, 0.3);
        assert_eq!(advice.model, Model::Threads);
        assert!(advice.reasons.iter().any(|r| r.contains("asyncio")));
    }

    #[test]
    fn idle_is_none_and_every_advice_carries_the_warning() {
        let v = verdict(1.0, &[(WaitKind::Sleep, 99.0)]);
        let advice = advise_for(&v, Runtime::Native, 0.0);
        assert_eq!(advice.model, Model::None);
        assert_eq!(advice.warning, WARNING);
    }
}
