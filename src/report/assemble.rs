//! Puts a report together: kernel totals, the sampled accounts, the verdict and the advice.

use std::time::{Duration, SystemTime};

use super::{
    round3, MachineSection, PhaseSection, ProcessSection, RecommendationSection, Report,
    SamplingSection, SourcesSection, StateSeconds, StopSection, TargetSection, ThreadSection,
    TimeSection, TimelineSection, VerdictSection, WaitSeconds, SCHEMA_VERSION,
};
use crate::advice::profiles::{Profile, ProfileSet};
use crate::advice::runtime::{detect, Runtime};
use crate::advice::{advise, advise_phases, AdviceInput, WaitCompute};
use crate::analysis::accountant::{Accountant, TimeSplit};
use crate::analysis::contention::serialized_threads;
use crate::analysis::phases::{self, Phase};
use crate::analysis::timeline::state_letter;
use crate::analysis::verdict::{classify_with, WorkloadClass};
use crate::analysis::wait_kind::WaitKind;
use crate::error::Error;
use crate::sampler::SamplerOutcome;
use crate::target::launch::Ending;

/// Threads and processes listed in a report, busiest first; the counts say how many there were.
const LISTED: usize = 50;

/// What is known about the measured program besides the samples.
pub struct TargetFacts {
    pub mode: &'static str,
    pub command: Vec<String>,
    pub pid: i32,
    pub ending: Option<Ending>,
    pub started_at: SystemTime,
    pub interrupted: bool,
    /// attach only: whether the process exited while attached.
    pub exited: Option<bool>,
    pub wall: Duration,
    /// User and system CPU seconds from the kernel's accounting of the finished tree.
    pub kernel_cpu: Option<(f64, f64)>,
    /// Without kernel totals: the share of CPU time spent in user mode, to split sampled CPU.
    pub user_fraction: Option<f64>,
    /// --runtime: the profile to advise with, instead of the detected one.
    pub runtime_override: Option<String>,
}

/// How the measurement was taken.
pub struct SamplingFacts {
    pub rate_hz: f64,
    pub self_cpu_s: f64,
    pub machine: MachineSection,
}

pub fn assemble(
    facts: TargetFacts,
    sampling: SamplingFacts,
    outcome: &SamplerOutcome,
    profiles: &ProfileSet,
) -> Result<Report, Error> {
    let accountant = &outcome.accountant;
    let wall_s = facts.wall.as_secs_f64();
    let sampled_cpu_s = accountant.tree.cpu_ns / 1e9;
    // What the sampler accounted itself: sampled threads, plus the CPU of threads that came
    // and went between samples (from their process's own counters).
    let seen_cpu_s = (accountant.cpu_seen_ns() / 1e9).max(sampled_cpu_s);
    let (user_s, system_s, cpu_source) = match facts.kernel_cpu {
        Some((user, system)) if user + system >= seen_cpu_s * 0.98 => (user, system, "rusage"),
        // The tree did not finish under concadvise (attach, or orphans left running).
        _ => {
            let user = seen_cpu_s * facts.user_fraction.unwrap_or(1.0).clamp(0.0, 1.0);
            (user, seen_cpu_s - user, "sampled")
        }
    };
    let cpu_s = user_s + system_s;

    // CPU the kernel counted but no sample saw belongs to processes or threads too
    // short-lived to sample: while they ran, their parent waited on them (wait4 for a child,
    // a futex for a thread join), so that wall time was computing.
    let unsampled_cpu_s = (cpu_s - sampled_cpu_s).max(0.0);
    let mut wall = accountant.wall;
    let mut unexplained_ns = unsampled_cpu_s * 1e9;
    for kind in [WaitKind::Child, WaitKind::Lock] {
        let moved = unexplained_ns.min(wall.waits_ns[kind.index()]);
        wall.waits_ns[kind.index()] -= moved;
        wall.cpu_ns += moved;
        unexplained_ns -= moved;
    }
    let mut tree = accountant.tree;
    tree.cpu_ns += unsampled_cpu_s * 1e9;

    let busiest_process = accountant
        .processes()
        .max_by(|a, b| a.cpu_ns.total_cmp(&b.cpu_ns));
    let runtime = match &facts.runtime_override {
        Some(name) => Runtime::named(name),
        None => busiest_process.map_or(Runtime::named(crate::advice::profiles::FALLBACK), |p| {
            detect(profiles, &p.info)
        }),
    };
    let profile: &Profile = match profiles.get(&runtime.name) {
        Some(profile) => profile,
        None => profiles.fallback()?,
    };
    let mut verdict = classify_with(&wall, outcome.samples, &profile.thresholds);
    let phases = phases::detect(&accountant.timeline, accountant.span_ns());
    let phases_disagree = phases::disagree(&phases);
    if phases_disagree {
        verdict.class = WorkloadClass::Mixed;
    }
    let avg_cores = if wall_s > 0.0 { cpu_s / wall_s } else { 0.0 };
    let cores = sampling.machine.cores as f64;
    let serialized = serialized_threads(accountant, accountant.span_ns(), cores);
    let input = AdviceInput {
        verdict: &verdict,
        runtime: &runtime,
        profile,
        wall_s,
        avg_cores,
        cores,
        serialized: serialized.as_ref(),
        wait_compute: wait_compute(accountant),
    };
    let advice = if phases_disagree {
        advise_phases(&input, &phases)
    } else {
        advise(&input)
    };
    let phase_sections = phases
        .iter()
        .map(|phase| phase_section(phase, &input))
        .collect();
    let timeline = TimelineSection {
        bucket_s: round3(accountant.timeline.bucket_ns() / 1e9),
        states: accountant
            .timeline
            .buckets()
            .iter()
            .map(state_letter)
            .collect(),
    };

    // Scale the wall split (which covers the sampled span) to the measured wall time.
    let span_ns = accountant.span_ns();
    let mut wall_seconds = StateSeconds::default();
    if span_ns > 0.0 {
        let scale = wall_s * 1e9 / span_ns;
        let mut scaled = wall;
        scaled.cpu_ns *= scale;
        scaled.runqueue_ns *= scale;
        scaled.waits_ns.iter_mut().for_each(|ns| *ns *= scale);
        wall_seconds = StateSeconds::from_split(&scaled);
    }
    let mut breakdown = StateSeconds::from_split(&tree);
    breakdown.unsampled_cpu_s = round3(unsampled_cpu_s);

    let mut processes: Vec<ProcessSection> = accountant
        .processes()
        .map(|p| ProcessSection {
            pid: p.info.pid,
            ppid: p.info.ppid,
            command: p.info.command.clone(),
            runtime: detect(profiles, &p.info).name,
            cpu_s: round3(p.cpu_ns / 1e9),
            threads: p.threads,
        })
        .collect();
    processes.sort_by(|a, b| b.cpu_s.total_cmp(&a.cpu_s).then(a.pid.cmp(&b.pid)));
    processes.truncate(LISTED);

    let mut threads: Vec<ThreadSection> = accountant
        .threads()
        .map(|t| {
            let mut waits: Vec<WaitSeconds> = WaitKind::ALL
                .into_iter()
                .map(|kind| {
                    let seconds = round3(t.time.wait(kind) / 1e9);
                    WaitSeconds::on(kind, seconds, t.main_detail(kind))
                })
                .filter(|w| w.seconds >= 0.001)
                .collect();
            waits.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
            waits.truncate(3);
            ThreadSection {
                pid: t.pid,
                tid: t.tid,
                name: t.name.clone(),
                cpu_s: round3(t.time.cpu_ns / 1e9),
                runqueue_s: round3(t.time.runqueue_ns / 1e9),
                waits,
            }
        })
        .collect();
    threads.sort_by(|a, b| b.cpu_s.total_cmp(&a.cpu_s).then(a.tid.cmp(&b.tid)));
    threads.truncate(LISTED);

    let shares = &verdict.shares;
    let sources = &outcome.sources;
    Ok(Report {
        schema_version: SCHEMA_VERSION,
        target: TargetSection {
            command: facts.command,
            pid: facts.pid,
            runtime: runtime.name.clone(),
            exit_code: facts.ending.map(Ending::exit_code),
            signal: match facts.ending {
                Some(Ending::Signaled(signal)) => Some(signal),
                _ => None,
            },
            started_at: humantime::format_rfc3339_seconds(facts.started_at).to_string(),
            interrupted: facts.interrupted,
            exited: facts.exited,
        },
        machine: sampling.machine,
        time: TimeSection {
            wall_s: round3(wall_s),
            cpu_s: round3(cpu_s),
            user_s: round3(user_s),
            system_s: round3(system_s),
            avg_cores: round3(avg_cores),
            cpu_source: cpu_source.to_string(),
        },
        breakdown,
        wall: wall_seconds,
        verdict: VerdictSection {
            class: verdict.class.name().to_string(),
            confidence: verdict.confidence,
            dominant_wait: verdict.dominant_wait.map(|k| k.name().to_string()),
            computing_share: round3(shares.computing),
            io_share: round3(shares.io),
            idle_share: round3(shares.idle),
            lock_share: round3(shares.lock),
        },
        recommendation: RecommendationSection {
            model: advice.model.name().to_string(),
            situation: advice.situation.to_string(),
            profile: format!("{} ({})", profile.name, profile.source),
            reasons: advice.reasons,
            how: advice.how,
            alternatives: advice.alternatives,
            workers: advice.workers,
            speedup_ceiling: advice.speedup_ceiling,
            warning: advice.warning,
        },
        sampling: SamplingSection {
            mode: facts.mode.to_string(),
            rate_hz: sampling.rate_hz,
            samples: outcome.samples,
            late_samples: outcome.late_samples,
            threads_seen: outcome.threads_seen,
            processes_seen: outcome.processes_seen,
            self_cpu_s: round3(sampling.self_cpu_s),
            cpu_seen_s: round3(seen_cpu_s),
            achieved_rate_hz: if wall_s > 0.0 {
                round3(outcome.samples as f64 / wall_s)
            } else {
                0.0
            },
            lowered_to_hz: outcome.lowest_rate_hz.map(round3),
            fds_start: outcome.fds.0,
            fds_end: outcome.fds.1,
            threads_untracked: outcome.threads_untracked,
            stalled_ticks: outcome.stalled_ticks,
            longest_stall_s: round3(outcome.longest_stall.as_secs_f64()),
            discovery: outcome.discovery.name().to_string(),
            unresolved_files: outcome.unresolved_files,
            cut_short: outcome.cut_short,
            sources: SourcesSection {
                schedstat: true,
                syscall: !sources.syscall_denied,
                wchan: !sources.wchan_denied,
                fds: !sources.fds_denied,
            },
        },
        timeline,
        phases: phase_sections,
        processes,
        threads,
        stops: stop_sections(accountant, wall_s),
    })
}

/// Who stopped the program, longest first, in wall seconds scaled like the wall split.
fn stop_sections(accountant: &Accountant, wall_s: f64) -> Vec<StopSection> {
    let scale = wall_s * 1e9 / accountant.span_ns().max(f64::MIN_POSITIVE);
    let mut stops: Vec<StopSection> = accountant
        .stops
        .iter()
        .map(|(by, ns)| StopSection::new(by, ns * scale / 1e9))
        .filter(|stop| stop.seconds >= 0.001)
        .collect();
    stops.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    stops
}

/// The I/O wait and CPU time of the threads that did I/O (W and C of the pool-size formula).
fn wait_compute(accountant: &Accountant) -> Option<WaitCompute> {
    let mut wc = WaitCompute {
        wait_s: 0.0,
        compute_s: 0.0,
    };
    for thread in accountant.threads() {
        let io: f64 = WaitKind::ALL
            .into_iter()
            .filter(|kind| kind.is_io())
            .map(|kind| thread.time.wait(kind))
            .sum();
        if io > 0.0 {
            wc.wait_s += io / 1e9;
            wc.compute_s += thread.time.cpu_ns / 1e9;
        }
    }
    (wc.wait_s > 0.0).then_some(wc)
}

fn phase_section(phase: &Phase, input: &AdviceInput) -> PhaseSection {
    let advice = advise(&AdviceInput {
        verdict: &phase.verdict,
        wall_s: phase.seconds(),
        avg_cores: phase.avg_cores(),
        ..input.clone()
    });
    PhaseSection {
        start_s: round3(phase.start_ns / 1e9),
        end_s: round3(phase.end_ns / 1e9),
        class: phase.verdict.class.name().to_string(),
        dominant_waits: top_waits(&phase.wall, 2),
        model: advice.model.name().to_string(),
    }
}

/// Names of the `count` wait kinds with the most time, largest first.
pub fn top_waits(split: &TimeSplit, count: usize) -> Vec<String> {
    let mut kinds: Vec<WaitKind> = WaitKind::ALL
        .into_iter()
        .filter(|kind| split.wait(*kind) > 0.01 * split.total_ns())
        .collect();
    kinds.sort_by(|a, b| split.wait(*b).total_cmp(&split.wait(*a)));
    kinds
        .into_iter()
        .take(count)
        .map(|k| k.name().to_string())
        .collect()
}
