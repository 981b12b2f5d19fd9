//! Turns `Findings` into a concurrency model with reasons, from the profile of the program's runtime.
//!
//! The code decides the situation (CPU-bound, already parallel, GIL contention, network-bound...)
//! and writes the measured reason and the sizing formulas; the profile (profiles/*.toml) says
//! what that situation means in its runtime: the model, why, how, and the alternatives.

pub mod expected;
pub mod situations;

use crate::analysis::findings::Findings;
use crate::analysis::phases::Phase;
use crate::analysis::verdict::{Unknowable, Verdict, WorkloadClass};
use crate::analysis::wait_kind::WaitKind;
use crate::profile::{fill, Profile, SituationAdvice};
use crate::sampler::tree_reader::UnseenCause;
use crate::sampler::SamplerStats;
use expected::{Estimate, Expected, Measure};
use situations::{pct, AdviceInput, Sizing};

pub use crate::profile::Model;

pub const WARNING: &str = "Concurrency adds complexity (races, deadlocks, harder debugging and \
testing) and pays only for a measured bottleneck: change nothing unless this run's time is a \
known problem, then measure again and compare.";

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
        // When the tree mostly waited on one process, the advice is about that process.
        verdict: findings
            .bottleneck_verdict
            .as_ref()
            .unwrap_or(&findings.verdict),
        runtime: &findings.runtime,
        profile,
        wall_s: findings.wall_s,
        avg_cores: findings.avg_cores,
        avg_cores_wanted: findings.avg_cores_wanted,
        cores: findings.limits.usable_cores(findings.cores),
        serialized: findings.contention.as_ref(),
        wait_compute: findings.wait_compute,
        concurrency: &findings.concurrency,
        limits: &findings.limits,
        bottleneck: findings.bottleneck.as_ref(),
        about_bottleneck: findings.bottleneck_verdict.is_some(),
        event_loop_runtime: findings.event_loop_runtime.as_ref(),
        processes: &findings.processes,
        sampling: &findings.sampling,
        io_waits: findings.io_waits,
        attached: findings.attached,
        user_s: findings.cpu.user_s,
        system_s: findings.cpu.system_s,
        wall_sync_s: findings.wall.disk_sync_ns / 1e9,
        other_load_cores: findings.other_load_cores,
        code: findings.code.as_ref(),
        demand: findings.demand.as_ref(),
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
    /// What the change it advises is expected to buy.
    pub expected: Expected,
}

/// The advice on a measurement that cannot tell: none, and what was missing. No profile
/// advises on it.
fn unknown_advice(input: &AdviceInput) -> Advice {
    Advice {
        model: Model::None,
        situation: "unknown",
        reasons: vec![unknown_reason(input)],
        how: String::new(),
        alternatives: Vec::new(),
        workers: None,
        speedup_ceiling: None,
        warning: WARNING.to_string(),
        expected: Expected {
            change: String::new(),
            measure: if input.attached {
                Measure::Capacity
            } else {
                Measure::Wall
            },
            estimate: Estimate::Unavailable(
                "the measurement cannot tell what the program spends its time on".to_string(),
            ),
        },
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

// Long because it fills one `Advice` from the chosen situation; the reasons, the caveats and
// the how are functions of their own.
fn advise(input: &AdviceInput) -> Advice {
    if input.verdict.class == WorkloadClass::Unknown {
        return unknown_advice(input);
    }
    let chosen = situations::choose(input);
    let situation = chosen.name();
    // A profile written before a situation existed gets the nearest one's advice.
    let entry = input
        .profile
        .advice_for(situation, chosen.fallback())
        .cloned()
        .unwrap_or_else(|| SituationAdvice {
            model: Model::None,
            reasons: Vec::new(),
            how: String::new(),
            alternatives: Vec::new(),
            change: None,
        });
    let sizing = chosen.sizing(input);
    let estimate = chosen.expected(input, &sizing);
    let Sizing {
        workers,
        ceiling: speedup_ceiling,
        text: sizing_text,
    } = sizing;
    let values = placeholder_values(input, workers, speedup_ceiling);
    let mut reasons = vec![chosen.measured(input)];
    let code = chosen.code(input);
    if let Some(code) = &code {
        reasons.push(code.reason.clone());
    }
    add_bottleneck_reasons(input, &mut reasons);
    if situation != "disk_saturated" {
        reasons.extend(situations::device_reason(input));
    }
    reasons.extend(situations::discard_reason(input));
    reasons.extend(entry.reasons.iter().map(|r| fill(r, &values)));
    reasons.extend(sizing_text);
    add_caveats(input, situation, &mut reasons);
    let (how, alternatives) = how_and_alternatives(input, situation, &entry, code, &values);
    Advice {
        model: entry.model,
        situation,
        reasons,
        how,
        alternatives,
        workers,
        speedup_ceiling,
        warning: WARNING.to_string(),
        expected: Expected {
            change: match one_core_stage(input) {
                Some(stage) => format!("{stage} run on every core"),
                None => entry
                    .change
                    .as_deref()
                    .map_or_else(|| chosen.change().to_string(), |c| fill(c, &values)),
            },
            measure: if input.attached || chosen.measures_capacity() {
                Measure::Capacity
            } else {
                Measure::Wall
            },
            estimate,
        },
    }
}

/// The reasons about the process the tree waited on, if any: first when the verdict is that
/// process's own.
fn add_bottleneck_reasons(input: &AdviceInput, reasons: &mut Vec<String>) {
    if let Some(bottleneck) = input.bottleneck {
        if input.about_bottleneck {
            // The verdict is that process's own: say so before its numbers.
            reasons[0] = format!("In that process's own time: {}", reasons[0]);
            reasons.insert(0, bottleneck.reason());
        } else {
            reasons.push(bottleneck.reason());
        }
        if one_core_stage(input).is_some() {
            reasons.push(
                "That stage computes on about one core: the whole pipeline goes at its pace."
                    .to_string(),
            );
        }
    }
}

/// What makes the measurement less telling: a busy machine, a short run, stops from outside,
/// waits that could not be read.
fn add_caveats(input: &AdviceInput, situation: &str, reasons: &mut Vec<String>) {
    let shares = &input.verdict.shares;
    if shares.runqueue > 0.1 {
        reasons.push(runqueue_reason(input, shares.runqueue));
    }
    if input.verdict.too_short {
        reasons.push(format!(
            "The run was too short to judge reliably: {} samples in {:.2} s (at least {} are \
             needed). Measure a longer run (a bigger input, more iterations, or attach for \
             longer), or sample faster with --rate.",
            input.sampling.samples,
            input.wall_s,
            crate::analysis::verdict::ENOUGH_TICKS
        ));
    }
    if shares.stopped > 0.1 && situation != "stopped" {
        reasons.push(format!(
            "{} of the wall time the program was stopped from outside (a stop signal, a \
             tracer, a frozen cgroup): that time is left out of the shares above.",
            pct(shares.stopped)
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
}

/// What to do (the profile's advice, then the code's) and the alternatives; for a pipeline
/// waiting on a single-core stage, giving that stage more cores comes first, and for a
/// CPU-bound tool with its own parallel option (xz -T0), that option.
fn how_and_alternatives(
    input: &AdviceInput,
    situation: &str,
    entry: &SituationAdvice,
    code: Option<situations::CodeAdvice>,
    values: &[(&str, String)],
) -> (String, Vec<String>) {
    let mut how = fill(&entry.how, values);
    if let Some(code) = code {
        how = format!("{how} {}", code.how).trim().to_string();
    }
    let mut alternatives: Vec<String> =
        entry.alternatives.iter().map(|a| fill(a, values)).collect();
    // A pipeline waiting on one single-core stage: that stage is what to change, and it is
    // often a tool with a threads option rather than code of one's own.
    if let Some(stage) = one_core_stage(input) {
        alternatives.insert(0, format!("if {stage} is your own code: {how}"));
        how = match input.profile.tool(&stage, false) {
            Some(tool) => format!("Give {stage} more cores: {}", tool.how),
            None => format!(
                "Give {stage} more cores: its own threads option if it has one (xz -T0, zstd \
                 -T0, pigz instead of gzip, sort --parallel=N), or split its input among \
                 several copies of it."
            ),
        };
    } else if let Some((program, tool)) = busy_tool(input).filter(|_| situation == "cpu_bound") {
        alternatives.insert(0, format!("if {program} is your own code: {how}"));
        how = format!("{program} has its own way to use more cores: {}", tool.how);
    } else if let Some((program, tool)) =
        io_tool(input).filter(|_| IO_SITUATIONS.contains(&situation))
    {
        alternatives.insert(0, format!("if {program} is your own code: {how}"));
        how = format!(
            "{program} has its own way to run more at once: {}",
            tool.how
        );
    }
    (how, alternatives)
}

/// The serial I/O situations a tool's own option answers.
const IO_SITUATIONS: [&str; 3] = ["io_network", "io_ipc", "io_disk"];

/// The first of the tree's processes (most CPU first) that is an I/O tool the profile knows
/// (pgbench, curl): its name and the tool.
fn io_tool<'a>(input: &AdviceInput<'a>) -> Option<(String, &'a crate::profile::Tool)> {
    input.processes.iter().find_map(|process| {
        let program = crate::analysis::bottleneck::program_name(&process.command)?;
        let tool = input.profile.tool(program, true)?;
        Some((program.to_string(), tool))
    })
}

/// Most of the CPU is one process's this share of it, at least...
const ONE_PROCESS_CPU: f64 = 0.8;

/// ...and that process is a tool the profile knows (xz, gzip, sort): its name and the tool.
fn busy_tool<'a>(input: &AdviceInput<'a>) -> Option<(String, &'a crate::profile::Tool)> {
    let total: f64 = input.processes.iter().map(|p| p.cpu_s).sum();
    let busiest = input
        .processes
        .iter()
        .max_by(|a, b| a.cpu_s.total_cmp(&b.cpu_s))
        .filter(|p| p.cpu_s > 0.0 && p.cpu_s >= ONE_PROCESS_CPU * total)?;
    let program = crate::analysis::bottleneck::program_name(&busiest.command)?;
    let tool = input.profile.tool(program, false)?;
    Some((program.to_string(), tool))
}

/// Why the program waited for a CPU: its own threads wanting more cores than there are, or
/// other work on the machine taking them.
fn runqueue_reason(input: &AdviceInput, runqueue_share: f64) -> String {
    let waited = format!(
        "{} of the wall time the program was ready to run but waited for a CPU",
        pct(runqueue_share)
    );
    let others = input
        .other_load_cores
        .filter(|cores| *cores >= 0.05)
        .map(|cores| format!(" (other work used {cores:.1} cores meanwhile)"))
        .unwrap_or_default();
    if input.avg_cores_wanted > input.cores + 0.5 {
        format!(
            "{waited}: its own threads wanted {:.1} cores of the {:.0}{others}, so they queue \
             for them: more threads or processes would only queue longer.",
            input.avg_cores_wanted, input.cores
        )
    } else {
        format!(
            "{waited}: the machine is busy with other work{others}, and more parallelism will \
             not help until it is not."
        )
    }
}

/// The program the tree waited on, when it computes on about one core and is not the
/// launched program itself (a stage of a pipeline): its name.
fn one_core_stage(input: &AdviceInput) -> Option<String> {
    let bottleneck = input.bottleneck?;
    let stage =
        bottleneck.kind == "cpu" && bottleneck.cores < 1.2 && !bottleneck.waiters.is_empty();
    stage
        .then(|| crate::analysis::bottleneck::program_name(&bottleneck.command).map(str::to_string))
        .flatten()
}

/// The measured numbers a profile's texts may cite as {name} (see `profile::PLACEHOLDERS`).
fn placeholder_values(
    input: &AdviceInput,
    workers: Option<u32>,
    speedup_ceiling: Option<f64>,
) -> Vec<(&'static str, String)> {
    let shares = &input.verdict.shares;
    let concurrency = input.concurrency;
    let event_loop = concurrency.event_loop.as_ref();
    vec![
        ("wall_s", format!("{:.1}", input.wall_s)),
        ("computing", pct(shares.computing)),
        ("io", pct(shares.io)),
        ("idle", pct(shares.idle)),
        ("runqueue", pct(shares.runqueue)),
        ("avg_cores", format!("{:.2}", input.avg_cores)),
        ("cores_wanted", format!("{:.2}", input.avg_cores_wanted)),
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
        ("structure", concurrency.structure.name().replace('_', " ")),
        ("in_flight", format!("{:.1}", concurrency.in_flight)),
        ("peak_in_flight", concurrency.peak_in_flight.to_string()),
        ("busy_threads", concurrency.busy_threads.to_string()),
        (
            "loop_blocked_s",
            event_loop.map_or("?".into(), |l| format!("{:.2}", l.blocked_s)),
        ),
        (
            "loop_blocked_share",
            event_loop.map_or("?".into(), |l| pct(l.blocked_share)),
        ),
        (
            "blocked_by",
            event_loop.map_or("?".into(), |l| {
                let kinds: Vec<&str> = l.blocked_by.iter().map(|(k, _)| k.as_str()).collect();
                kinds.join(" and ")
            }),
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
    use crate::analysis::code::{CodeFindings, CodeState, Hotspot};
    use crate::analysis::findings::WaitCompute;
    use crate::analysis::limits::Limits;
    use crate::analysis::structure::Concurrency;
    use crate::analysis::verdict::classify;
    use crate::profile::ProfileSet;
    use crate::target::runtime::Runtime;

    fn verdict(cpu: f64, waits: &[(WaitKind, f64)]) -> Verdict {
        classify(&TimeSplit::with_waits(cpu, waits), 100)
    }

    fn advise_for(verdict: &Verdict, runtime: &str, avg_cores: f64) -> Advice {
        advise_with(verdict, runtime, avg_cores, &Limits::default(), None)
    }

    fn advise_with_code(
        verdict: &Verdict,
        runtime: &str,
        avg_cores: f64,
        code: Option<&CodeFindings>,
    ) -> Advice {
        advise_with(verdict, runtime, avg_cores, &Limits::default(), code)
    }

    fn advise_with(
        verdict: &Verdict,
        runtime: &str,
        avg_cores: f64,
        limits: &Limits,
        code: Option<&CodeFindings>,
    ) -> Advice {
        let set = ProfileSet::built_in().unwrap();
        let runtime = Runtime::named(runtime);
        let concurrency = Concurrency {
            in_flight: 1.0,
            ..Concurrency::default()
        };
        advise(&AdviceInput {
            verdict,
            runtime: &runtime,
            profile: set.get(&runtime.name).unwrap(),
            wall_s: 2.0,
            avg_cores,
            avg_cores_wanted: avg_cores,
            cores: 2.0,
            serialized: None,
            wait_compute: Some(WaitCompute {
                wait_s: 1.9,
                compute_s: 0.1,
            }),
            concurrency: &concurrency,
            limits,
            bottleneck: None,
            about_bottleneck: false,
            event_loop_runtime: None,
            processes: &[],
            sampling: &SamplerStats {
                samples: 100,
                ..SamplerStats::default()
            },
            io_waits: 20,
            attached: false,
            user_s: 0.1,
            system_s: 0.0,
            wall_sync_s: 0.0,
            other_load_cores: None,
            code,
            demand: None,
        })
    }

    fn hotspot(state: CodeState, function: &str, file: &str, line: u32) -> Hotspot {
        Hotspot {
            state,
            function: function.into(),
            file: file.into(),
            line,
            share: 0.9,
            seconds: 1.5,
            samples: 30,
            pid: 7,
            tids: vec![8, 9],
            innermost: format!("{function} (x:{line})"),
            stack: Vec::new(),
            blocked_in: None,
        }
    }

    #[test]
    fn the_advice_names_the_function_and_line_the_stacks_found() {
        let lock = CodeState::Wait(WaitKind::Lock);
        let code = CodeFindings::of_hotspots(vec![
            hotspot(lock, "deposit", "/srv/bank.py", 12),
            hotspot(CodeState::Cpu, "audit", "/srv/bank.py", 30),
        ]);
        // Threads that wait on a lock a third of the time: the line where they wait.
        let waiting = verdict(40.0, &[(WaitKind::Lock, 35.0), (WaitKind::Disk, 25.0)]);
        let advice = advise_with_code(&waiting, "python", 0.4, Some(&code));
        assert_eq!(advice.situation, "lock_contention");
        assert!(
            advice.reasons[1]
                .contains("Where the threads waited for the lock: deposit (bank.py:12)"),
            "{:?}",
            advice.reasons
        );
        assert!(
            advice.how.contains("They wait at deposit (bank.py:12)"),
            "{}",
            advice.how
        );
        // CPU-bound CPython: the function for the process pool.
        let computing = verdict(98.0, &[(WaitKind::Sleep, 2.0)]);
        let advice = advise_with_code(&computing, "python", 0.98, Some(&code));
        assert!(
            advice.how.contains("pool.map(audit, pieces"),
            "{}",
            advice.how
        );
        assert!(
            advice.reasons[1].contains("audit (bank.py:30)"),
            "{:?}",
            advice.reasons
        );
        // Without a GIL the same work is split among threads, and the words say nothing of
        // pickling.
        let advice = advise_with_code(&computing, "native", 0.98, Some(&code));
        assert!(
            advice
                .how
                .contains("Start with audit (bank.py:30): split its work"),
            "{}",
            advice.how
        );
        assert!(!advice.how.contains("pickl"), "{}", advice.how);
        // No stacks: the advice as before.
        let advice = advise_with_code(&computing, "python", 0.98, None);
        assert!(!advice.how.contains("Start with"), "{}", advice.how);
        // Code at a module's top level is no function to hand a pool: it must become one.
        let script =
            CodeFindings::of_hotspots(vec![hotspot(CodeState::Cpu, "<module>", "/srv/burn.py", 4)]);
        let advice = advise_with_code(&computing, "python", 0.98, Some(&script));
        assert!(
            advice.how.contains("runs at the top level of its module")
                && advice.how.contains("move it into a top-level function")
                && !advice.how.contains("pool.map(<module>"),
            "{}",
            advice.how
        );
    }

    #[test]
    fn network_waits_at_a_module_s_top_level_are_to_become_a_function_before_a_pool() {
        let waiting = verdict(2.0, &[(WaitKind::Network, 98.0)]);
        let waiting_in = |function: &str, line| {
            let state = CodeState::Wait(WaitKind::Network);
            CodeFindings::of_hotspots(vec![hotspot(state, function, "/srv/client.py", line)])
        };
        let named = waiting_in("fetch", 7);
        let advice = advise_with_code(&waiting, "python", 0.02, Some(&named));
        assert!(
            advice.how.contains("pool.map(fetch, items)"),
            "{}",
            advice.how
        );
        let script = waiting_in("<module>", 5);
        let advice = advise_with_code(&waiting, "python", 0.02, Some(&script));
        assert!(
            advice
                .how
                .contains("which runs at the top level of its module: move the code of one call")
                && !advice.how.contains("<module> at once")
                && !advice.how.contains("pool.map(<module>"),
            "{}",
            advice.how
        );
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

    /// Limits with one disk holding 90 % of the disk wait, measured over 1.8 s of waiting.
    fn disk_limits(busy_share: f64, in_flight: f64, own_in_flight: f64) -> Limits {
        use crate::analysis::devices::{DeviceUse, DiskMeasure};
        use crate::sampler::observation::DiskInfo;
        Limits {
            devices: vec![DeviceUse {
                disk: Some(DiskInfo {
                    id: 0,
                    name: "sdb".into(),
                    major_minor: "8:16".into(),
                    via: vec!["sdb1".into()],
                    rotational: Some(false),
                }),
                unmeasured: None,
                mounts: vec!["/data".into()],
                filesystem: "ext4".into(),
                discard: false,
                wait_s: 1.8,
                share: 0.9,
                measured: Some(DiskMeasure {
                    waited_s: 1.8,
                    busy_share,
                    in_flight,
                    own_in_flight,
                    run_busy_share: Some(busy_share),
                }),
            }],
            ..Limits::default()
        }
    }

    fn band_of(advice: &Advice) -> (expected::Band, &str) {
        match &advice.expected.estimate {
            Estimate::Band { band, basis } => (*band, basis.as_str()),
            Estimate::Unavailable(why) => panic!("no band: {why}"),
        }
    }

    #[test]
    fn a_disk_busy_with_other_work_is_saturated_and_more_concurrency_is_not_advised() {
        let disk = verdict(10.0, &[(WaitKind::Disk, 90.0)]);
        let advice = advise_with(&disk, "python", 0.1, &disk_limits(0.97, 4.2, 1.0), None);
        assert_eq!(advice.situation, "disk_saturated");
        assert_eq!(advice.model, Model::None);
        assert!(
            advice.reasons[0].contains("sdb (8:16) behind /data, through sdb1 was busy 97%")
                && advice.reasons[0].contains("4.2 requests in flight")
                && advice.reasons[0].contains("disk is saturated")
                && advice.reasons[0].contains("more concurrency will not make it faster"),
            "{:?}",
            advice.reasons
        );
        assert!(advice.how.contains("Do less I/O"), "{}", advice.how);
        // The waits can shrink by 1 / 0.97 at most: 1 / (0.1 + 0.9 x 0.97).
        assert_eq!(advice.speedup_ceiling, Some(1.03));
        let (band, _) = band_of(&advice);
        assert!(band.high <= 1.1 && band.speedup == 1.0, "{band:?}");
    }

    #[test]
    fn a_disk_busy_only_with_the_program_s_own_requests_is_not_saturated() {
        let disk = verdict(10.0, &[(WaitKind::Disk, 90.0)]);
        let advice = advise_with(&disk, "python", 0.1, &disk_limits(0.99, 1.1, 1.0), None);
        assert_eq!(advice.situation, "io_disk");
        assert_eq!(advice.model, Model::Threads);
        assert!(
            advice.reasons.iter().any(|r| r.contains("not saturation")),
            "{:?}",
            advice.reasons
        );
        let (band, _) = band_of(&advice);
        assert!(band.high > 2.0, "not held to the disk: {band:?}");
    }

    #[test]
    fn overlapping_disk_waits_are_not_promised_more_than_the_disk_has_left() {
        let disk = verdict(10.0, &[(WaitKind::Disk, 90.0)]);
        // Busy 60 %, mostly with others' requests: the waits shrink at most by 1 / 0.6.
        let advice = advise_with(&disk, "native", 0.1, &disk_limits(0.6, 3.0, 1.0), None);
        assert_eq!(advice.situation, "io_disk");
        let ceiling = 1.0 / (0.1 + 0.9 * 0.6);
        let (band, basis) = band_of(&advice);
        assert!((band.high - ceiling).abs() < 1e-9, "{band:?}");
        assert!(basis.contains("the band stops at x1.56"), "{basis}");
        assert_eq!(advice.speedup_ceiling, Some(1.56));
    }

    #[test]
    fn a_sync_per_record_with_its_journal_s_unlinks_is_sync_bound_but_few_syncs_are_not() {
        use crate::analysis::limits::Syncs;
        let disk = verdict(10.0, &[(WaitKind::Disk, 90.0)]);
        // A quarter syncs and 40 % deleting the journal (a `discard` mount), 1500 commits.
        let journal = |syncs| Limits {
            syncs: Some(Syncs {
                sync_s: 0.45,
                disk_s: 1.8,
                metadata_s: 0.72,
                syncs,
            }),
            ..Limits::default()
        };
        let advice = advise_with(&disk, "native", 0.1, &journal(1500), None);
        assert_eq!(advice.situation, "sync_bound");
        assert!(
            advice.reasons[0].contains("0.72 s (40%) went creating, renaming or deleting files"),
            "{:?}",
            advice.reasons
        );
        // Ten syncs in 2 s are not one per record: the file work is the program's own.
        let advice = advise_with(&disk, "native", 0.1, &journal(10), None);
        assert_ne!(advice.situation, "sync_bound");
    }

    #[test]
    fn deleting_files_on_a_disk_mounted_with_discard_names_the_option_and_fstrim() {
        let disk = verdict(10.0, &[(WaitKind::Disk, 90.0)]);
        let mut limits = disk_limits(0.3, 1.0, 1.0);
        limits.disk_s = 1.8;
        limits.file_metadata_s = 0.6;
        let said = |limits: &Limits| {
            advise_with(&disk, "native", 0.1, limits, None)
                .reasons
                .iter()
                .any(|r| r.contains("/data (ext4) is mounted with discard") && r.contains("fstrim"))
        };
        assert!(!said(&limits), "no discard, no word of it");
        limits.devices[0].discard = true;
        assert!(said(&limits));
        // A few deletes among many reads: not worth a word.
        limits.file_metadata_s = 0.1;
        assert!(!said(&limits));
    }

    #[test]
    fn syncs_to_a_saturated_disk_stay_sync_bound_and_say_the_disk_is_saturated() {
        use crate::analysis::limits::Syncs;
        let disk = verdict(10.0, &[(WaitKind::Disk, 90.0)]);
        let limits = Limits {
            syncs: Some(Syncs {
                sync_s: 1.6,
                disk_s: 1.8,
                metadata_s: 0.0,
                syncs: 400,
            }),
            ..disk_limits(0.95, 3.0, 1.0)
        };
        let advice = advise_with(&disk, "python", 0.1, &limits, None);
        assert_eq!(advice.situation, "sync_bound");
        assert!(
            advice
                .reasons
                .iter()
                .any(|r| r.contains("disk is saturated") && r.contains("fewer syncs")),
            "{:?}",
            advice.reasons
        );
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

    #[test]
    fn a_network_filesystem_is_not_disk_advice_and_gets_no_pool_size() {
        let nfs = verdict(5.0, &[(WaitKind::NetworkFs, 95.0)]);
        for runtime in ["python", "node", "jvm", "go", "native"] {
            let advice = advise_for(&nfs, runtime, 0.05);
            assert_eq!(advice.situation, "io_network_fs", "{runtime}");
            assert_eq!(advice.model, Model::None, "{runtime}");
            assert_eq!(advice.workers, None, "{runtime}: more local workers queue");
            assert!(advice.reasons.iter().any(|r| r.contains("file server")));
        }
    }

    #[test]
    fn a_stopped_run_is_not_idle_and_stopped_time_is_said_otherwise() {
        let stopped = verdict(1.0, &[(WaitKind::Stopped, 99.0)]);
        let advice = advise_for(&stopped, "native", 0.0);
        assert_eq!(advice.situation, "stopped");
        assert_eq!(advice.model, Model::None);
        assert!(advice.reasons[0].contains("stopped from outside"));
        let partly = verdict(70.0, &[(WaitKind::Stopped, 30.0)]);
        let advice = advise_for(&partly, "native", 0.7);
        assert_eq!(advice.situation, "cpu_bound");
        assert!(advice
            .reasons
            .iter()
            .any(|r| r.contains("30% of the wall time the program was stopped")));
    }
}
