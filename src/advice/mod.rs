//! Turns `Findings` into a concurrency model with reasons, from the profile of the program's runtime.
//!
//! The code decides the situation (CPU-bound, already parallel, GIL contention, network-bound...)
//! and writes the measured reason and the sizing formulas; the profile (profiles/*.toml) says
//! what that situation means in its runtime: the model, why, how, and the alternatives.

use crate::analysis::contention::SerializedThreads;
use crate::analysis::findings::{Findings, WaitCompute};
use crate::analysis::phases::Phase;
use crate::analysis::verdict::{Unknowable, Verdict, WorkloadClass};
use crate::analysis::wait_kind::WaitKind;
use crate::profile::{fill, Profile, SituationAdvice};
use crate::sampler::tree_reader::UnseenCause;
use crate::sampler::SamplerStats;
use crate::target::runtime::Runtime;

pub use crate::profile::Model;

pub const WARNING: &str = "Concurrency adds complexity (races, deadlocks, harder debugging and \
testing) and pays only for a measured bottleneck: change nothing unless this run's time is a \
known problem, then measure again and compare.";

/// Target utilisation of a core in the pool-size formula.
const UTILISATION: f64 = 0.8;
/// Pool sizes above this are reported as this: something else saturates long before.
const MAX_WORKERS: f64 = 1024.0;

/// What the advice is computed from: the parts of `Findings` it reads, for the whole run or
/// for one phase.
#[derive(Debug, Clone)]
struct AdviceInput<'a> {
    pub verdict: &'a Verdict,
    pub runtime: &'a Runtime,
    pub profile: &'a Profile,
    pub wall_s: f64,
    pub avg_cores: f64,
    /// CPUs this machine offers the program (cgroup quota and affinity applied).
    pub cores: f64,
    pub serialized: Option<&'a SerializedThreads>,
    pub wait_compute: Option<WaitCompute>,
    /// How the sampling went (samples, threads not followed, sources not readable).
    pub sampling: &'a SamplerStats,
}

/// The situation of a measurement that cannot tell: no profile advises on it.
const UNKNOWN: &str = "unknown";

/// The advice for the run, and the model each phase alone would get.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    pub advice: Advice,
    /// In the order of `Findings::phases`.
    pub phase_models: Vec<Model>,
}

/// Advises on a whole measurement with its runtime's profile.
pub fn recommend(findings: &Findings, profile: &Profile) -> Recommendation {
    let input = AdviceInput {
        verdict: &findings.verdict,
        runtime: &findings.runtime,
        profile,
        wall_s: findings.wall_s,
        avg_cores: findings.avg_cores,
        cores: findings.cores,
        serialized: findings.contention.as_ref(),
        wait_compute: findings.wait_compute,
        sampling: &findings.sampling,
    };
    let advice = if findings.phases_disagree {
        advise_phases(&input, &findings.phases)
    } else {
        advise(&input)
    };
    let phase_models = findings
        .phases
        .iter()
        .map(|phase| advise(&input.for_phase(phase)).model)
        .collect();
    Recommendation {
        advice,
        phase_models,
    }
}

impl<'a> AdviceInput<'a> {
    /// The same input, narrowed to one phase's verdict, length and CPU use.
    fn for_phase(&self, phase: &'a Phase) -> AdviceInput<'a> {
        AdviceInput {
            verdict: &phase.verdict,
            wall_s: phase.seconds(),
            avg_cores: phase.avg_cores(),
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    pub model: Model,
    /// The profile's name for the situation (cpu_bound, io_network, gil_contention...).
    pub situation: &'static str,
    pub reasons: Vec<String>,
    pub how: String,
    pub alternatives: Vec<String>,
    pub workers: Option<u32>,
    pub speedup_ceiling: Option<f64>,
    pub warning: String,
}

fn pct(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// The situation a verdict puts the program in, as the profiles name it.
fn situation(input: &AdviceInput) -> &'static str {
    let verdict = input.verdict;
    let gil = input.profile.traits.gil && !input.runtime.free_threaded;
    match verdict.class {
        WorkloadClass::Unknown => UNKNOWN,
        WorkloadClass::Idle => "idle",
        WorkloadClass::CpuBound if input.avg_cores >= 0.85 * input.cores => "already_parallel",
        WorkloadClass::CpuBound if input.serialized.is_some() && gil => "gil_contention",
        WorkloadClass::CpuBound if input.serialized.is_some() => "lock_contention",
        WorkloadClass::CpuBound if input.runtime.free_threaded => "cpu_bound_free_threaded",
        WorkloadClass::CpuBound => "cpu_bound",
        WorkloadClass::IoBound => match verdict.dominant_wait {
            Some(WaitKind::Network) => "io_network",
            Some(WaitKind::Ipc) => "io_ipc",
            Some(WaitKind::Paging) => "paging",
            _ => "io_disk",
        },
        WorkloadClass::Mixed if verdict.shares.lock > 0.2 => "lock_contention",
        WorkloadClass::Mixed => "mixed",
    }
}

/// Pool size and speedup ceiling for the situation, with the sentence that shows the formula.
fn sizing(input: &AdviceInput, situation: &str) -> (Option<u32>, Option<f64>, Option<String>) {
    let shares = &input.verdict.shares;
    let cores = input.cores.max(1.0);
    let amdahl = |p: f64, n: f64| 1.0 / ((1.0 - p) + p / n);
    match situation {
        "cpu_bound" | "cpu_bound_free_threaded" | "gil_contention" | "mixed" => {
            // The computing part spread over every core; the rest of the wall time unchanged:
            // new wall = (1 - p) x wall + cpu / N, so S = 1 / ((1 - p) + cores_now / N).
            let p = shares.computing.min(1.0);
            let now = input.avg_cores.max(0.0);
            let ceiling = 1.0 / ((1.0 - p) + now / cores).max(f64::MIN_POSITIVE);
            let text = format!(
                "Workers: the {cores:.0} cores available (machine or cgroup quota, whichever is \
                 smaller). Speedup ceiling (Amdahl): 1 / ((1 - p) + c / N) = 1 / ({:.2} + \
                 {now:.2} / {cores:.0}) = {ceiling:.2}x, with p = {} of the wall time computing, \
                 c = {now:.2} cores used now and N = {cores:.0}; an upper bound, as real work \
                 rarely splits evenly.",
                1.0 - p,
                pct(p)
            );
            (Some(cores as u32), Some(round2(ceiling)), Some(text))
        }
        "io_network" | "io_disk" | "io_ipc" => {
            let Some(wc) = input.wait_compute else {
                return (None, None, None);
            };
            let ratio = wc.wait_s / wc.compute_s.max(1e-3);
            let n = (cores * UTILISATION * (1.0 + ratio))
                .ceil()
                .clamp(1.0, MAX_WORKERS);
            let ceiling = amdahl(shares.io.min(1.0), n);
            let text = format!(
                "Workers: N = cores x utilisation x (1 + W/C) = {cores:.0} x {UTILISATION} x \
                 (1 + {ratio:.1}) = {n:.0}{}, where W/C = {:.2} s waiting / {:.3} s computing \
                 of the busy threads. Speedup ceiling (Amdahl): 1 / ((1 - p) + p / N) = \
                 {ceiling:.1}x with p = {} of the wall time waiting on I/O. Both are upper \
                 bounds: the server, disk or network saturates first.",
                if n >= MAX_WORKERS { " (capped)" } else { "" },
                wc.wait_s,
                wc.compute_s,
                pct(shares.io)
            );
            (Some(n as u32), Some(round2(ceiling)), Some(text))
        }
        _ => (None, None, None),
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The measured reason: the numbers and the rule they trigger.
fn measured_reason(input: &AdviceInput, situation: &str) -> String {
    let verdict = input.verdict;
    let shares = &verdict.shares;
    let wall = input.wall_s;
    match situation {
        "idle" => format!(
            "{} of the {wall:.1} s wall time was spent waiting on timers, terminal input or an \
             event loop with nothing to do ({} computing): there is no throughput bottleneck \
             for concurrency to remove.",
            pct(shares.idle + shares.child + shares.other),
            pct(shares.computing)
        ),
        "already_parallel" => format!(
            "{} of the wall time was spent computing, using {:.2} of {:.0} cores on average: \
             the program is already parallel and uses the whole machine.",
            pct(shares.computing),
            input.avg_cores,
            input.cores
        ),
        "gil_contention" | "lock_contention" => match input.serialized {
            Some(s) => format!(
                "{} threads wanted the CPU but together used {:.2} cores, spending {} of their \
                 time parked on futexes and switching {:.0} times a second each: the threads \
                 did not run in parallel, they took turns.",
                s.threads,
                s.cores_used,
                pct(s.lock_share),
                s.switches_per_s
            ),
            None => format!(
                "{} of the wall time every thread waited on a lock: the threads serialise on \
                 shared state.",
                pct(shares.lock)
            ),
        },
        "cpu_bound" | "cpu_bound_free_threaded" => format!(
            "{} of the wall time was spent computing, using {:.2} of {:.0} cores on average: \
             CPU-bound work gains only from parallelism (tasks running at the same instant on \
             several cores), not from overlapping waits.",
            pct(shares.computing),
            input.avg_cores,
            input.cores
        ),
        "mixed" => format!(
            "Neither computing ({}) nor waiting on I/O ({}) dominates the {wall:.1} s wall time.",
            pct(shares.computing),
            pct(shares.io)
        ),
        _ => format!(
            "{} of the {wall:.1} s wall time was spent waiting on I/O (mostly {}) while only {} \
             was spent computing: I/O-bound work gains from overlapping its waits, not from \
             more cores.",
            pct(shares.io),
            verdict.dominant_wait.map_or("other", WaitKind::name),
            pct(shares.computing)
        ),
    }
}

/// What was missing from a measurement that cannot tell, and how to get it.
fn unknown_reason(input: &AdviceInput) -> String {
    let shares = &input.verdict.shares;
    let sampling = input.sampling;
    match input.verdict.unknown_because {
        Some(Unknowable::TooFewSamples) | None => format!(
            "The run lasted {:.0} ms ({} samples): too few to tell what it spends its time on. \
             Measure a longer run (the work in a loop, a bigger input), or raise --rate.",
            input.wall_s * 1000.0,
            sampling.samples
        ),
        Some(Unknowable::WaitsUnread) => format!(
            "{} of the program's time was spent off the CPU where what it waited on could not \
             be read ({} in uninterruptible sleep, usually disk or paging; the rest \
             interruptible: locks, timers, sockets, pipes...). No advice from that. {}",
            pct(shares.unknown),
            pct(shares.uninterruptible),
            unread_remedy(sampling)
        ),
        Some(Unknowable::ThreadsUnseen) => format!(
            "Only {} of the {} threads of the program could be followed: what the others did \
             is not known. {}",
            sampling.threads_seen,
            sampling.threads_seen + sampling.threads_unseen,
            unread_remedy(sampling)
        ),
    }
}

/// Why waits or threads could not be read, and what to do about it.
fn unread_remedy(sampling: &SamplerStats) -> String {
    let sources = &sampling.sources;
    let denied = sources.syscall_denied || sources.wchan_denied;
    if sources.descriptors_ran_out && !denied {
        format!(
            "concadvise ran out of file descriptors (limit {}): raise the hard limit (ulimit -Hn) \
             and measure again.",
            sampling.descriptor_limit
        )
    } else if sampling.unseen_cause == UnseenCause::Errors && !denied {
        "Reading /proc failed for them: measure again.".to_string()
    } else {
        "What a thread waits on (/proc/PID/task/TID/syscall, wchan, fd/) needs ptrace access: \
         measure as the process's user or as root (in a container, with CAP_SYS_PTRACE)."
            .to_string()
    }
}

fn advise(input: &AdviceInput) -> Advice {
    let situation = situation(input);
    if situation == UNKNOWN {
        return Advice {
            model: Model::None,
            situation,
            reasons: vec![unknown_reason(input)],
            how: String::new(),
            alternatives: Vec::new(),
            workers: None,
            speedup_ceiling: None,
            warning: WARNING.to_string(),
        };
    }
    let entry = input
        .profile
        .advice_for(situation, "cpu_bound")
        .cloned()
        .unwrap_or_else(|| SituationAdvice {
            model: Model::None,
            reasons: Vec::new(),
            how: String::new(),
            alternatives: Vec::new(),
        });
    let (workers, speedup_ceiling, sizing_text) = sizing(input, situation);
    let values = placeholder_values(input, workers, speedup_ceiling);
    let shares = &input.verdict.shares;
    let mut reasons = vec![measured_reason(input, situation)];
    reasons.extend(entry.reasons.iter().map(|r| fill(r, &values)));
    reasons.extend(sizing_text);
    if shares.runqueue > 0.1 {
        reasons.push(format!(
            "{} of the wall time the program was ready to run but waited for a CPU: the machine \
             is busy with other work, and more parallelism will not help until it is not.",
            pct(shares.runqueue)
        ));
    }
    if shares.unknown > 0.2 {
        reasons.push(format!(
            "{} of the wall time was spent off the CPU for reasons that could not be read, so \
             this advice is less certain. {}",
            pct(shares.unknown),
            unread_remedy(input.sampling)
        ));
    }
    Advice {
        model: entry.model,
        situation,
        reasons,
        how: fill(&entry.how, &values),
        alternatives: entry
            .alternatives
            .iter()
            .map(|a| fill(a, &values))
            .collect(),
        workers,
        speedup_ceiling,
        warning: WARNING.to_string(),
    }
}

/// The measured numbers a profile's texts may cite as {name} (see `profile::PLACEHOLDERS`).
fn placeholder_values(
    input: &AdviceInput,
    workers: Option<u32>,
    speedup_ceiling: Option<f64>,
) -> Vec<(&'static str, String)> {
    let shares = &input.verdict.shares;
    vec![
        ("wall_s", format!("{:.1}", input.wall_s)),
        ("computing", pct(shares.computing)),
        ("io", pct(shares.io)),
        ("idle", pct(shares.idle)),
        ("runqueue", pct(shares.runqueue)),
        ("avg_cores", format!("{:.2}", input.avg_cores)),
        ("cores", format!("{:.0}", input.cores)),
        (
            "dominant_wait",
            input
                .verdict
                .dominant_wait
                .map_or("none", WaitKind::name)
                .to_string(),
        ),
        ("workers", workers.map_or("?".into(), |w| w.to_string())),
        (
            "speedup_ceiling",
            speedup_ceiling.map_or("?".into(), |s| format!("{s:.1}")),
        ),
        (
            "threads",
            input
                .serialized
                .map_or("?".into(), |s| s.threads.to_string()),
        ),
    ]
}

/// Advice for a run whose phases want different things: the phases are the reason, each gets
/// its own advice, and the model is that of the longest phase that is not idle.
fn advise_phases(input: &AdviceInput, phases: &[Phase]) -> Advice {
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
    let mut longest: Option<(f64, Advice)> = None;
    for phase in phases {
        let advice = advise(&input.for_phase(phase));
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
        let longer = longest.as_ref().is_none_or(|(s, _)| phase.seconds() > *s);
        if phase.verdict.class != WorkloadClass::Idle && longer {
            longest = Some((phase.seconds(), advice));
        }
    }
    match longest {
        Some((_, main)) => Advice { reasons, ..main },
        None => Advice {
            reasons,
            ..advise(input)
        },
    }
}

/// "cpu-bound", "io-bound (disk)", "idle (sleep)".
fn describe(verdict: &Verdict) -> String {
    match (verdict.class, verdict.dominant_wait) {
        (WorkloadClass::CpuBound, _) | (_, None) => verdict.class.name().to_string(),
        (class, Some(kind)) => format!("{} ({})", class.name(), kind.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::accountant::TimeSplit;
    use crate::analysis::verdict::classify;
    use crate::profile::ProfileSet;

    fn verdict(cpu: f64, waits: &[(WaitKind, f64)]) -> Verdict {
        classify(&TimeSplit::with_waits(cpu, waits), 100)
    }

    fn advise_for(verdict: &Verdict, runtime: &str, avg_cores: f64) -> Advice {
        let set = ProfileSet::built_in().unwrap();
        let runtime = Runtime::named(runtime);
        advise(&AdviceInput {
            verdict,
            runtime: &runtime,
            profile: set.get(&runtime.name).unwrap(),
            wall_s: 2.0,
            avg_cores,
            cores: 2.0,
            serialized: None,
            wait_compute: Some(WaitCompute {
                wait_s: 1.9,
                compute_s: 0.1,
            }),
            sampling: &SamplerStats::default(),
        })
    }

    #[test]
    fn cpu_bound_is_processes_under_a_gil_and_threads_without() {
        let v = verdict(98.0, &[(WaitKind::Sleep, 2.0)]);
        let python = advise_for(&v, "python", 0.98);
        assert_eq!(python.model, Model::Multiprocessing);
        assert!(python.reasons.iter().any(|r| r.contains("GIL")));
        assert!(python.how.contains("ProcessPoolExecutor(max_workers=2)"));
        let native = advise_for(&v, "native", 0.98);
        assert_eq!(native.model, Model::Threads);
        assert!(!native.reasons.iter().any(|r| r.contains("GIL")));
        assert!(native.reasons[0].contains("98%"), "{:?}", native.reasons);
        // Amdahl with p = 98%, one core used now, two available: 1 / (0.02 + 0.98 / 2).
        assert_eq!(native.speedup_ceiling, Some(1.96));
        assert_eq!(native.workers, Some(2));
    }

    #[test]
    fn a_program_using_every_core_is_told_so() {
        let v = verdict(100.0, &[]);
        let advice = advise_for(&v, "native", 1.95);
        assert_eq!(advice.model, Model::None);
        assert!(advice.reasons[0].contains("already parallel"));
    }

    #[test]
    fn io_bound_network_is_async_and_disk_is_threads_with_a_pool_size() {
        let net = verdict(3.0, &[(WaitKind::Network, 97.0)]);
        let advice = advise_for(&net, "python", 0.03);
        assert_eq!(advice.model, Model::Async);
        // N = 2 x 0.8 x (1 + 1.9 / 0.1) = 32.
        assert_eq!(advice.workers, Some(32));
        assert!(advice.reasons.iter().any(|r| r.contains("(1 + W/C)")));
        let disk = verdict(30.0, &[(WaitKind::Disk, 70.0)]);
        let advice = advise_for(&disk, "python", 0.3);
        assert_eq!(advice.model, Model::Threads);
        assert!(advice.reasons.iter().any(|r| r.contains("asyncio")));
    }

    #[test]
    fn a_measurement_that_cannot_tell_advises_nothing_and_says_what_was_missing() {
        let mut v = verdict(
            10.0,
            &[(WaitKind::Unknown, 50.0), (WaitKind::Uninterruptible, 40.0)],
        );
        assert_eq!(v.class, WorkloadClass::Unknown);
        let advice = advise_for(&v, "native", 0.1);
        assert_eq!((advice.model, advice.situation), (Model::None, "unknown"));
        assert!(
            advice.reasons[0].contains("(40% in uninterruptible"),
            "{:?}",
            advice.reasons
        );
        assert!(advice.reasons[0].contains("CAP_SYS_PTRACE"));
        v.make_unknown(Unknowable::TooFewSamples);
        let advice = advise_for(&v, "native", 0.1);
        assert!(
            advice.reasons[0].contains("longer run"),
            "{:?}",
            advice.reasons
        );
        assert_eq!(advice.workers, None);
    }

    #[test]
    fn idle_is_none_and_every_advice_carries_the_warning() {
        let v = verdict(1.0, &[(WaitKind::Sleep, 99.0)]);
        let advice = advise_for(&v, "native", 0.0);
        assert_eq!(advice.model, Model::None);
        assert_eq!(advice.warning, WARNING);
        assert_eq!(advice.workers, None);
    }
}
