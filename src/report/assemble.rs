//! Puts a report together from the findings and the recommendation: it copies and rounds, it decides nothing.

use std::time::SystemTime;

use super::{
    round3, BottleneckSection, CodeSection, ConcurrencySection, DeviceSection, EventLoopSection,
    ExpectedSection, HotspotSection, MachineSection, OtherThreadsSection, PhaseSection,
    ProcessSection, RecommendationSection, Report, SamplingSection, SourcesSection,
    StateRunSection, StateSeconds, StopSection, TargetSection, ThreadSection, TimeSection,
    TimelineSection, VerdictSection, WaitSeconds, SCHEMA_VERSION,
};
use crate::advice::expected::{Estimate, Expected};
use crate::advice::{Advice, Recommendation};
use crate::analysis::code::CodeFindings;
use crate::analysis::devices::DeviceUse;
use crate::analysis::findings::Findings;
use crate::analysis::thread_timeline::StateRun;
use crate::machine::Machine;
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
}

/// How the measurement was taken, besides what the sampler counted.
pub struct SamplingFacts {
    pub rate_hz: f64,
    pub self_cpu_s: f64,
    pub machine: Machine,
    /// The profile the advice came from, and where it was read ("python (built-in)").
    pub profile: String,
}

pub fn assemble(
    facts: TargetFacts,
    sampling: SamplingFacts,
    findings: &Findings,
    recommendation: &Recommendation,
) -> Report {
    let mut breakdown = StateSeconds::from_split(&findings.breakdown);
    breakdown.unsampled_cpu_s = round3(findings.cpu.unsampled_s);
    let mode = facts.mode;
    Report {
        schema_version: SCHEMA_VERSION,
        target: target_section(facts, findings),
        machine: MachineSection {
            cpu_quota_cores: findings.limits.quota.as_ref().map(|q| round3(q.cores)),
            ..MachineSection::from(&sampling.machine)
        },
        time: time_section(findings),
        breakdown,
        wall: StateSeconds::from_split(&findings.wall),
        verdict: verdict_section(findings),
        recommendation: recommendation_section(&recommendation.advice, &sampling),
        concurrency: Some(concurrency_section(findings)),
        bottleneck: findings.bottleneck.as_ref().map(|b| BottleneckSection {
            pid: b.pid,
            command: b.command.clone(),
            kind: b.kind.clone(),
            waited_on_s: round3(b.waited_on_s),
            reason: b.reason(),
        }),
        code: findings.code.as_ref().map(code_section),
        demand: findings.demand.as_ref().map(demand_section),
        devices: findings.limits.devices.iter().map(device_section).collect(),
        sampling: sampling_section(mode, &sampling, findings),
        timeline: TimelineSection {
            bucket_s: round3(findings.timeline.bucket_s),
            states: findings.timeline.letters.clone(),
            thread_resolution_s: round3(findings.thread_timelines.resolution_ns as f64 / 1e9),
        },
        phases: phase_sections(findings, recommendation),
        processes: process_sections(findings),
        threads: thread_sections(findings),
        other_threads: findings
            .other_threads
            .as_ref()
            .map(|other| OtherThreadsSection {
                threads: other.threads,
                timeline: run_sections(&other.timeline),
            }),
        stops: findings
            .stops
            .iter()
            .map(|(by, seconds)| StopSection::new(by, *seconds))
            .collect(),
    }
}

fn verdict_section(findings: &Findings) -> VerdictSection {
    let shares = &findings.verdict.shares;
    VerdictSection {
        class: findings.verdict.class.name().to_string(),
        confidence: findings.verdict.confidence,
        dominant_wait: findings.verdict.dominant_wait.map(|k| k.name().to_string()),
        computing_share: round3(shares.computing),
        io_share: round3(shares.io),
        idle_share: round3(shares.idle),
        lock_share: round3(shares.lock),
        too_short: findings.verdict.too_short,
    }
}

fn recommendation_section(advice: &Advice, sampling: &SamplingFacts) -> RecommendationSection {
    RecommendationSection {
        model: advice.model.name().to_string(),
        situation: advice.situation.to_string(),
        profile: sampling.profile.clone(),
        reasons: advice.reasons.clone(),
        how: advice.how.clone(),
        alternatives: advice.alternatives.clone(),
        workers: advice.workers,
        speedup_ceiling: advice.speedup_ceiling,
        warning: advice.warning.clone(),
        expected: Some(expected_section(&advice.expected)),
    }
}

fn code_section(code: &CodeFindings) -> CodeSection {
    CodeSection {
        source: code.source.clone(),
        stack_samples: code.stack_samples,
        failed_reads: code.failed_reads,
        rate_hz: round3(code.rate_hz),
        read_cpu_ms: round3(code.read_cpu_ms),
        unavailable: code.unavailable.clone(),
        not_read: code.not_read.clone(),
        hotspots: code
            .hotspots
            .iter()
            .map(|h| HotspotSection {
                state: h.state.name().to_string(),
                function: h.function.clone(),
                file: h.file.clone(),
                line: h.line,
                share: round3(h.share),
                seconds: round3(h.seconds),
                samples: h.samples,
                pid: h.pid,
                tids: h.tids.clone(),
                innermost: h.innermost.clone(),
                stack: h.stack.clone(),
                blocked_in: h.blocked_in.map(|s| s.name().to_string()),
            })
            .collect(),
    }
}

fn target_section(facts: TargetFacts, findings: &Findings) -> TargetSection {
    TargetSection {
        command: facts.command,
        pid: facts.pid,
        runtime: findings.runtime.name.clone(),
        exit_code: facts.ending.map(Ending::exit_code),
        signal: match facts.ending {
            Some(Ending::Signaled(signal)) => Some(signal),
            _ => None,
        },
        started_at: humantime::format_rfc3339_seconds(facts.started_at).to_string(),
        interrupted: facts.interrupted,
        exited: facts.exited,
        cgroup: findings.limits.quota.as_ref().map(|q| q.cgroup.clone()),
    }
}

fn concurrency_section(findings: &Findings) -> ConcurrencySection {
    let concurrency = &findings.concurrency;
    ConcurrencySection {
        structure: concurrency.structure.name().to_string(),
        in_flight: round2(concurrency.in_flight),
        peak_in_flight: concurrency.peak_in_flight,
        busy_threads: concurrency.busy_threads,
        busy_processes: concurrency.busy_processes,
        event_loop: concurrency
            .event_loop
            .as_ref()
            .map(|found| EventLoopSection {
                pid: found.pid,
                tid: found.tid,
                runtime: findings
                    .event_loop_runtime
                    .as_ref()
                    .map_or_else(String::new, |r| r.name.clone()),
                watched: found.watched,
                blocked_s: round3(found.blocked_s),
                blocked_share: round3(found.blocked_share),
                longest_block_s: round3(found.longest_block_s),
                blocked_by: found
                    .blocked_by
                    .iter()
                    .map(|(kind, _)| kind.clone())
                    .collect(),
                blocking_calls: found
                    .blocking_calls
                    .iter()
                    .map(|(call, _)| call.clone())
                    .collect(),
                other_loops: found.loops.saturating_sub(1),
                peers: found.peers,
                never_polled: found.never_polled,
            }),
    }
}

fn expected_section(expected: &Expected) -> ExpectedSection {
    let (band, basis, unavailable) = match &expected.estimate {
        Estimate::Band { band, basis } => (Some(*band), basis.clone(), None),
        Estimate::Unavailable(why) => (None, String::new(), Some(why.clone())),
    };
    // Two significant digits: a band is an estimate.
    let shown = |value: f64| {
        let digits = if value >= 10.0 {
            0.0
        } else if value >= 1.0 {
            1.0
        } else {
            2.0
        };
        let scale = 10f64.powf(digits);
        (value * scale).round() / scale
    };
    ExpectedSection {
        change: expected.change.clone(),
        measure: expected.measure.name().to_string(),
        speedup: band.map(|b| shown(b.speedup)),
        low: band.map(|b| shown(b.low)),
        high: band.map(|b| shown(b.high)),
        basis,
        unavailable,
    }
}

fn device_section(device: &DeviceUse) -> DeviceSection {
    let disk = device.disk.as_ref();
    let measured = device.measured.as_ref();
    DeviceSection {
        device: disk.map(|d| d.name.clone()),
        major_minor: disk.map(|d| d.major_minor.clone()),
        via: disk.map(|d| d.via.clone()).unwrap_or_default(),
        rotational: disk.and_then(|d| d.rotational),
        mounts: device.mounts.clone(),
        filesystem: device.filesystem.clone(),
        wait_s: round3(device.wait_s),
        disk_wait_share: round3(device.share),
        waited_s: measured.map(|m| round3(m.waited_s)),
        busy_share: measured.map(|m| round3(m.busy_share)),
        in_flight: measured.map(|m| round2(m.in_flight)),
        own_in_flight: measured.map(|m| round2(m.own_in_flight)),
        run_busy_share: measured.and_then(|m| m.run_busy_share).map(round3),
        saturated: device.saturated(),
        unmeasured: device.unmeasured.clone(),
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn time_section(findings: &Findings) -> TimeSection {
    let cpu = &findings.cpu;
    TimeSection {
        wall_s: round3(findings.wall_s),
        cpu_s: round3(cpu.cpu_s()),
        user_s: round3(cpu.user_s),
        system_s: round3(cpu.system_s),
        avg_cores: round3(findings.avg_cores),
        cpu_source: cpu.source.name().to_string(),
    }
}

fn sampling_section(mode: &str, sampling: &SamplingFacts, findings: &Findings) -> SamplingSection {
    let stats = &findings.sampling;
    let sources = &stats.sources;
    SamplingSection {
        mode: mode.to_string(),
        rate_hz: sampling.rate_hz,
        samples: stats.samples,
        late_samples: stats.late_samples,
        threads_seen: stats.threads_seen,
        processes_seen: stats.processes_seen,
        self_cpu_s: round3(sampling.self_cpu_s),
        cpu_seen_s: round3(findings.cpu.seen_s),
        achieved_rate_hz: if findings.wall_s > 0.0 {
            round3(stats.samples as f64 / findings.wall_s)
        } else {
            0.0
        },
        lowered_to_hz: stats.lowest_rate_hz.map(round3),
        lowest_second_hz: stats.lowest_second_samples,
        held_descriptors: stats.held_descriptors,
        descriptor_budget: stats.descriptor_budget,
        fds_start: stats.fds.0,
        fds_end: stats.fds.1,
        threads_unseen: stats.threads_unseen,
        unseen_cause: stats.unseen_cause.name().map(str::to_string),
        out_of_descriptors: sources.descriptors_ran_out,
        descriptor_limit: if sources.descriptors_ran_out {
            stats.descriptor_limit
        } else {
            0
        },
        stalled_ticks: stats.stalled_ticks,
        longest_stall_s: round3(stats.longest_stall.as_secs_f64()),
        discovery: stats.discovery.name().to_string(),
        unresolved_files: stats.unresolved_files,
        cut_short: stats.cut_short,
        sources: SourcesSection {
            schedstat: true,
            syscall: !sources.syscall_denied,
            wchan: !sources.wchan_denied,
            fds: !sources.fds_denied,
        },
    }
}

fn phase_sections(findings: &Findings, recommendation: &Recommendation) -> Vec<PhaseSection> {
    findings
        .phases
        .iter()
        .zip(&recommendation.phase_models)
        .map(|(phase, model)| PhaseSection {
            start_s: round3(phase.start_ns / 1e9),
            end_s: round3(phase.end_ns / 1e9),
            class: phase.verdict.class.name().to_string(),
            dominant_waits: phase
                .dominant_waits(2)
                .into_iter()
                .map(|kind| kind.name().to_string())
                .collect(),
            model: model.name().to_string(),
        })
        .collect()
}

fn process_sections(findings: &Findings) -> Vec<ProcessSection> {
    findings
        .processes
        .iter()
        .take(LISTED)
        .map(|p| ProcessSection {
            pid: p.pid,
            ppid: p.ppid,
            command: p.command.clone(),
            runtime: p.runtime.name.clone(),
            cpu_s: round3(p.cpu_s),
            threads: p.threads,
        })
        .collect()
}

fn thread_sections(findings: &Findings) -> Vec<ThreadSection> {
    findings
        .threads
        .iter()
        .take(LISTED)
        .map(|t| ThreadSection {
            pid: t.pid,
            tid: t.tid,
            name: t.name.clone(),
            cpu_s: round3(t.time.cpu_ns / 1e9),
            runqueue_s: round3(t.time.runqueue_ns / 1e9),
            waits: t
                .top_waits(3)
                .into_iter()
                .map(|(kind, seconds)| WaitSeconds::on(kind, round3(seconds), t.main_detail(kind)))
                .collect(),
            started_s: round3(t.started_ns as f64 / 1e9),
            alive_s: round3(t.time.total_ns() / 1e9),
            timeline: run_sections(&t.timeline),
        })
        .collect()
}

fn run_sections(runs: &[StateRun]) -> Vec<StateRunSection> {
    runs.iter()
        .map(|run| StateRunSection {
            start: run.start,
            buckets: run.buckets,
            state: run.state.name().to_string(),
        })
        .collect()
}

/// The listeners' accept queues, rounded for the report.
fn demand_section(demand: &crate::analysis::demand::Demand) -> super::DemandSection {
    let serving = demand.serving.as_ref();
    super::DemandSection {
        clients_waited: demand.clients_waited,
        serving_threads: serving.map(|s| s.threads),
        serving_processes: serving.map(|s| s.processes),
        serving_state: serving.map(|s| s.state.name().to_string()),
        serving_share: serving.map(|s| round3(s.share)),
        listeners: demand
            .listeners
            .iter()
            .map(|l| super::ListenerSection {
                address: l.address.clone(),
                samples: l.samples,
                mean_queued: round3(l.mean_queued),
                max_queued: l.max_queued,
                queued_share: round3(l.queued_share),
                pids: l.pids.clone(),
            })
            .collect(),
    }
}
