//! The seam between measurement and advice: `analyse` turns what the sampler fed the analysis into one `Findings` value.
//!
//! Every question the analysis answers (where the time went, the verdict, the phases, threads
//! taking turns, ...) is a module of its own; this one runs them in order and gathers their
//! answers. Advice reads only `Findings` (and a profile); the report only serialises
//! `Findings` and the advice.

use std::time::Duration;

use super::accountant::{Accountant, TimeSplit, WaitDetail};
use super::bottleneck::Bottleneck;
use super::code::{CodeFindings, CodeState};
use super::contention::{serialized_threads, SerializedThreads};
use super::demand::Demand;
use super::limits::{self, Limits};
use super::phases::{self, Phase};
use super::structure::Concurrency;
use super::thread_timeline::{bucket_runs, StateRun, ThreadTimelines};
use super::timeline::state_letter;
use super::verdict::{classify_with, Unknowable, Verdict, WorkloadClass};
use super::wait_kind::WaitKind;
use super::TickAnalyser;
use crate::error::Error;
use crate::machine::Machine;
use crate::profile::{ProfileSet, FALLBACK};
use crate::sampler::observation::Stopper;
use crate::sampler::{SamplerOutcome, SamplerStats};
use crate::target::runtime::{detect, Runtime};

/// What the command layer knows about the run besides the samples.
#[derive(Debug, Clone)]
pub struct RunFacts {
    /// Wall time of the measurement.
    pub wall: Duration,
    /// User and system CPU seconds from the kernel's accounting of the finished tree.
    pub kernel_cpu: Option<(f64, f64)>,
    /// Without kernel totals: the share of CPU time spent in user mode, to split sampled CPU.
    pub user_fraction: Option<f64>,
    /// --runtime: the profile to advise with, instead of the detected one.
    pub runtime_override: Option<String>,
    /// Measured by attaching to a running process (a server, usually) rather than running it.
    pub attached: bool,
}

/// Where the tree's CPU total comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuSource {
    /// The kernel's accounting of the finished tree (getrusage), as time(1) reports it.
    Rusage,
    /// Schedstat deltas, when the tree did not finish under concadvise (attach, orphans left).
    Sampled,
}

impl CpuSource {
    pub fn name(self) -> &'static str {
        match self {
            CpuSource::Rusage => "rusage",
            CpuSource::Sampled => "sampled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuTotals {
    pub user_s: f64,
    pub system_s: f64,
    pub source: CpuSource,
    /// The tree's CPU as the sampler accounted it (a check against the kernel's total).
    pub seen_s: f64,
    /// CPU the kernel counted but no sample saw (processes or threads too short-lived).
    pub unsampled_s: f64,
}

impl CpuTotals {
    pub fn cpu_s(&self) -> f64 {
        self.user_s + self.system_s
    }
}

/// The busy threads' time waiting on I/O and computing (W and C of the pool-size formula).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WaitCompute {
    pub wait_s: f64,
    pub compute_s: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProcessFinding {
    pub pid: i32,
    pub ppid: i32,
    pub command: Vec<String>,
    pub runtime: Runtime,
    pub cpu_s: f64,
    pub threads: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ThreadFinding {
    pub pid: i32,
    pub tid: i32,
    pub name: String,
    /// When its account began (ns since sampling started): its birth or first sight.
    pub started_ns: u64,
    pub time: TimeSplit,
    /// What its waits were on (a mount, for file waits), with the nanoseconds of each.
    pub details: Vec<(WaitKind, WaitDetail, f64)>,
    /// What it mostly did in each bucket of the timeline (the busiest `TIMELINE_THREADS` only).
    pub timeline: Vec<StateRun>,
}

/// Threads that get a row of their own in the per-thread timeline (busiest first); the rest
/// share one row.
pub const TIMELINE_THREADS: usize = 32;

/// The threads without a timeline row of their own, summed into one.
#[derive(Debug, Clone, PartialEq)]
pub struct OtherThreads {
    pub threads: u64,
    /// What most of their thread-time went to, bucket by bucket.
    pub timeline: Vec<StateRun>,
}

impl ThreadFinding {
    /// Up to `count` wait kinds with at least a millisecond, largest first, in seconds.
    pub fn top_waits(&self, count: usize) -> Vec<(WaitKind, f64)> {
        let mut waits: Vec<(WaitKind, f64)> = WaitKind::ALL
            .into_iter()
            .map(|kind| (kind, self.time.wait(kind) / 1e9))
            .filter(|(_, seconds)| *seconds >= 0.0005)
            .collect();
        waits.sort_by(|a, b| b.1.total_cmp(&a.1));
        waits.truncate(count);
        waits
    }

    /// What its waits of `kind` were on, mostly.
    pub fn main_detail(&self, kind: WaitKind) -> Option<&WaitDetail> {
        super::accountant::main_detail(&self.details, kind)
    }
}

/// The one-line timeline: a letter per bucket (see `timeline::state_letter`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimelineView {
    pub bucket_s: f64,
    pub letters: String,
}

/// Everything the analysis concluded about one measurement.
#[derive(Debug, Clone)]
pub struct Findings {
    pub wall_s: f64,
    /// CPUs available to the program.
    pub cores: f64,
    /// cpu_s / wall_s.
    pub avg_cores: f64,
    /// (cpu_s + the threads' run-queue seconds) / wall_s: the cores the tree wanted.
    pub avg_cores_wanted: f64,
    pub cpu: CpuTotals,
    /// Thread-seconds over the whole tree (unsampled CPU included in its CPU).
    pub breakdown: TimeSplit,
    /// Wall-clock time, each instant counted once, scaled to `wall_s`.
    pub wall: TimeSplit,
    pub verdict: Verdict,
    /// Stretches with one kind of work, in time order.
    pub phases: Vec<Phase>,
    /// Significant phases that are not idle want different things (the verdict is mixed).
    pub phases_disagree: bool,
    pub timeline: TimelineView,
    /// Every thread's states over time, within the event budget (the trace's content).
    pub thread_timelines: ThreadTimelines,
    /// The threads after the first `TIMELINE_THREADS`, their timelines summed.
    pub other_threads: Option<OtherThreads>,
    /// Threads of one process that took turns on about one core (a GIL, a hot lock).
    pub contention: Option<SerializedThreads>,
    pub wait_compute: Option<WaitCompute>,
    /// About how many waits on I/O the threads made (their switches around them).
    pub io_waits: u64,
    /// Measured by attach (see `RunFacts::attached`).
    pub attached: bool,
    /// Cores' worth of CPU other work on the machine used meanwhile (set by the command
    /// layer, which reads the machine's clock around the measurement).
    pub other_load_cores: Option<f64>,
    /// The program's own concurrency: its structure, what overlaps, its event loop.
    pub concurrency: Concurrency,
    /// What limits it from outside its code: a CPU quota, syncs.
    pub limits: Limits,
    /// The process the others wait on, when one dominates.
    pub bottleneck: Option<Bottleneck>,
    /// When the tree mostly waited on that process (through pipes, sockets or for it to
    /// exit), the verdict of its own time: what the advice is about.
    pub bottleneck_verdict: Option<Verdict>,
    /// The runtime of the loop thread's process, when there is a loop.
    pub event_loop_runtime: Option<Runtime>,
    /// Where in the code the time of the states that matter went (`None` when no process's
    /// stacks were to be read: not Python, or `--no-stacks`).
    pub code: Option<CodeFindings>,
    /// The accept queues of the tree's TCP listeners, and whether clients waited at them
    /// (`None` when it held no listener).
    pub demand: Option<Demand>,
    /// The runtime of the process that used the most CPU (or the one asked for).
    pub runtime: Runtime,
    /// Busiest first.
    pub processes: Vec<ProcessFinding>,
    /// Busiest first.
    pub threads: Vec<ThreadFinding>,
    /// Who stopped the program (a signal, a tracer, a frozen cgroup), in wall seconds scaled
    /// like `wall`, longest first.
    pub stops: Vec<(Stopper, f64)>,
    pub sampling: SamplerStats,
}

/// Runs every analysis on what the sampler fed the analyser.
pub fn analyse(
    outcome: SamplerOutcome<TickAnalyser>,
    facts: &RunFacts,
    machine: &Machine,
    profiles: &ProfileSet,
) -> Result<Findings, Error> {
    analyse_ticks(&outcome.sink, outcome.stats, facts, machine, profiles)
}

/// `analyse` on the analyser alone (replayed recordings in tests have no sampler outcome).
// Long because it is the one place where every finding is computed (each by a call) and joined
// into `Findings`, in the order they depend on one another.
pub fn analyse_ticks(
    analyser: &TickAnalyser,
    sampling: SamplerStats,
    facts: &RunFacts,
    machine: &Machine,
    profiles: &ProfileSet,
) -> Result<Findings, Error> {
    let accountant = &analyser.accountant;
    let wall_s = facts.wall.as_secs_f64();
    let cpu = cpu_totals(accountant, facts);
    let (breakdown, unscaled_wall) = reconcile(accountant, &cpu);

    let span_ns = accountant.span_ns();
    let bottleneck = analyser.bottleneck.conclude(accountant, span_ns);
    let runtime = runtime_of(accountant, bottleneck.as_ref(), facts, profiles);
    let profile = profiles.for_runtime(&runtime.name)?;
    let mut verdict = classify_with(&unscaled_wall, sampling.samples, &profile.thresholds);
    let phases = phases::detect(&accountant.timeline, span_ns);
    let phases_disagree = qualify_verdict(&mut verdict, &sampling, &phases);
    let demand = analyser.demand.conclude(accountant);
    served_waits_are_work(&mut verdict, demand.as_ref());
    let bottleneck_verdict = bottleneck.as_ref().and_then(|b| {
        let waits_on_it = matches!(verdict.dominant_wait, Some(WaitKind::Ipc | WaitKind::Child));
        // A process outside the tree was not measured: there is no own time to classify.
        let measured = b.kind != super::bottleneck::OUTSIDE;
        (waits_on_it && measured && verdict.class != WorkloadClass::CpuBound)
            .then(|| classify_with(&b.own, sampling.samples, &profile.thresholds))
    });
    let concurrency = analyser.structure.conclude(
        accountant,
        analyser.event_loops.finish(accountant, span_ns),
        span_ns,
    );
    if let Some(found) = &concurrency.event_loop {
        verdict.count_loop_blocking(found.blocked_s / wall_s.max(1e-9));
    }
    let processes = processes(accountant, profiles);
    let event_loop_runtime = concurrency.event_loop.as_ref().and_then(|found| {
        processes
            .iter()
            .find(|p| p.pid == found.pid)
            .map(|p| p.runtime.clone())
    });
    let code = analyser
        .code
        .conclude(&analyser.event_loops, &code_states(&verdict));
    let thread_timelines = analyser.thread_timeline.timelines();
    let mut threads = threads(accountant);
    let other_threads = timeline_rows(&mut threads, &thread_timelines, accountant);
    let cores = machine.cores as f64;
    let (avg_cores, avg_cores_wanted) = average_cores(cpu.cpu_s(), &breakdown, wall_s);
    Ok(Findings {
        wall_s,
        cores,
        avg_cores,
        avg_cores_wanted,
        cpu,
        breakdown,
        wall: scaled(&unscaled_wall, span_ns, wall_s),
        stops: scaled_stops(accountant, span_ns, wall_s),
        verdict,
        phases,
        phases_disagree,
        timeline: timeline_view(accountant),
        thread_timelines,
        other_threads,
        contention: serialized_threads(accountant, span_ns, cores),
        wait_compute: wait_compute(accountant, concurrency.io_wait_s),
        io_waits: accountant.io_switches,
        attached: facts.attached,
        other_load_cores: machine.other_load_cores,
        concurrency,
        limits: limits::conclude(accountant, &breakdown, &analyser.devices),
        bottleneck,
        bottleneck_verdict,
        event_loop_runtime,
        code,
        demand,
        processes,
        threads,
        runtime,
        sampling,
    })
}

/// Lowers the verdict's confidence for threads never followed (out of descriptors...), down to
/// unknown when most were; mixed when the phases disagree with it (then true).
fn qualify_verdict(verdict: &mut Verdict, sampling: &SamplerStats, phases: &[Phase]) -> bool {
    // Threads never followed (out of descriptors...): what was seen speaks for fewer threads.
    let coverage = coverage(sampling);
    verdict.confidence = (verdict.confidence * coverage * 100.0).round() / 100.0;
    if coverage < 0.5 && verdict.class != WorkloadClass::Unknown {
        verdict.make_unknown(Unknowable::ThreadsUnseen);
    }
    let phases_disagree = verdict.class != WorkloadClass::Unknown && phases::disagree(phases);
    if phases_disagree {
        verdict.class = WorkloadClass::Mixed;
    }
    phases_disagree
}

/// A server whose clients queued at its listener is not idle, whatever its threads waited
/// on: the waits of the threads that served (a handler's sleep, its call to a database) were
/// the work the clients waited for. An `idle` verdict becomes `io-bound` then (its shares
/// stay as measured).
fn served_waits_are_work(verdict: &mut Verdict, demand: Option<&Demand>) {
    if verdict.class == WorkloadClass::Idle && demand.is_some_and(|d| d.clients_waited) {
        verdict.class = WorkloadClass::IoBound;
    }
}

/// Cores used on average over the wall time, and cores wanted (used, plus the time spent
/// waiting for a CPU).
fn average_cores(cpu_s: f64, breakdown: &TimeSplit, wall_s: f64) -> (f64, f64) {
    let avg_cores = if wall_s > 0.0 { cpu_s / wall_s } else { 0.0 };
    let avg_cores_wanted = if wall_s > 0.0 {
        avg_cores + breakdown.runqueue_ns / 1e9 / wall_s
    } else {
        0.0
    };
    (avg_cores, avg_cores_wanted)
}

/// The whole program's timeline as letters, one per bucket.
fn timeline_view(accountant: &Accountant) -> TimelineView {
    TimelineView {
        bucket_s: accountant.timeline.bucket_ns() / 1e9,
        letters: accountant
            .timeline
            .buckets()
            .iter()
            .map(state_letter)
            .collect(),
    }
}

/// The states whose code the report names, most telling first: a loop's blocked time, the
/// dominant wait (unless the program is CPU-bound: its few waits are not the story) and
/// computing when it is a tenth of the wall time (computing first for a CPU-bound program),
/// locks when they hold the program a tenth of the time.
fn code_states(verdict: &Verdict) -> Vec<CodeState> {
    let mut states = vec![CodeState::LoopBlocked];
    let cpu_bound = verdict.class == WorkloadClass::CpuBound;
    let wait = verdict
        .dominant_wait
        .filter(|_| !cpu_bound)
        .map(CodeState::Wait);
    let cpu = (verdict.shares.computing >= 0.1).then_some(CodeState::Cpu);
    // What the verdict is about comes first: the computing of a CPU-bound program, the
    // dominant wait of any other.
    if cpu_bound {
        states.extend(cpu);
    } else {
        states.extend(wait.into_iter().chain(cpu));
    }
    let lock = CodeState::Wait(WaitKind::Lock);
    if verdict.shares.lock >= 0.1 && !states.contains(&lock) {
        states.push(lock);
    }
    states
}

/// The share of the tree's threads that were followed (1 when none was missed).
pub fn coverage(sampling: &SamplerStats) -> f64 {
    let total = sampling.threads_seen + sampling.threads_unseen;
    if total == 0 {
        1.0
    } else {
        sampling.threads_seen as f64 / total as f64
    }
}

/// The tree's CPU: the kernel's totals when they cover what the sampler saw, else the sampled
/// CPU split into user and system as the process's own counters split it.
fn cpu_totals(accountant: &Accountant, facts: &RunFacts) -> CpuTotals {
    let sampled_cpu_s = accountant.tree.cpu_ns / 1e9;
    // What the sampler accounted itself: sampled threads, plus the CPU of threads that came
    // and went between samples (from their process's own counters).
    let seen_s = (accountant.cpu_seen_ns() / 1e9).max(sampled_cpu_s);
    let (user_s, system_s, source) = match facts.kernel_cpu {
        Some((user, system)) if user + system >= seen_s * 0.98 => (user, system, CpuSource::Rusage),
        // The tree did not finish under concadvise (attach, or orphans left running).
        _ => {
            let user = seen_s * facts.user_fraction.unwrap_or(1.0).clamp(0.0, 1.0);
            (user, seen_s - user, CpuSource::Sampled)
        }
    };
    CpuTotals {
        user_s,
        system_s,
        source,
        seen_s,
        unsampled_s: (user_s + system_s - sampled_cpu_s).max(0.0),
    }
}

/// The thread-seconds and the wall split with the CPU no sample saw put back: it belongs to
/// processes or threads too short-lived to sample, and while they ran, their parent waited on
/// them (wait4 for a child, a futex for a thread join), so that wall time was computing.
fn reconcile(accountant: &Accountant, cpu: &CpuTotals) -> (TimeSplit, TimeSplit) {
    let mut wall = accountant.wall;
    let mut unexplained_ns = cpu.unsampled_s * 1e9;
    for kind in [WaitKind::Child, WaitKind::Lock] {
        let moved = unexplained_ns.min(wall.waits_ns[kind.index()]);
        wall.waits_ns[kind.index()] -= moved;
        wall.cpu_ns += moved;
        unexplained_ns -= moved;
    }
    let mut tree = accountant.tree;
    tree.cpu_ns += cpu.unsampled_s * 1e9;
    (tree, wall)
}

/// Who stopped the program, longest first, in wall seconds scaled like the wall split.
fn scaled_stops(accountant: &Accountant, span_ns: f64, wall_s: f64) -> Vec<(Stopper, f64)> {
    let scale = wall_s / span_ns.max(f64::MIN_POSITIVE);
    let mut stops: Vec<(Stopper, f64)> = accountant
        .stops
        .iter()
        .map(|(by, ns)| (by.clone(), ns * scale))
        .filter(|(_, seconds)| *seconds >= 0.001)
        .collect();
    stops.sort_by(|a, b| b.1.total_cmp(&a.1));
    stops
}

/// The wall split (which covers the sampled span) scaled to the measured wall time.
fn scaled(wall: &TimeSplit, span_ns: f64, wall_s: f64) -> TimeSplit {
    if span_ns <= 0.0 {
        return TimeSplit::default();
    }
    let scale = wall_s * 1e9 / span_ns;
    let mut scaled = *wall;
    scaled.cpu_ns *= scale;
    scaled.runqueue_ns *= scale;
    scaled.waits_ns.iter_mut().for_each(|ns| *ns *= scale);
    scaled
}

/// The runtime asked for, else that of the process the others wait on, else that of the
/// process that used the most CPU.
fn runtime_of(
    accountant: &Accountant,
    bottleneck: Option<&Bottleneck>,
    facts: &RunFacts,
    profiles: &ProfileSet,
) -> Runtime {
    if let Some(name) = &facts.runtime_override {
        return Runtime::named(name);
    }
    if let Some(info) = bottleneck.and_then(|b| accountant.process_info(b.pid)) {
        return detect(profiles, info);
    }
    accountant
        .processes()
        .max_by(|a, b| a.cpu_ns.total_cmp(&b.cpu_ns))
        .map_or(Runtime::named(FALLBACK), |p| detect(profiles, &p.info))
}

fn processes(accountant: &Accountant, profiles: &ProfileSet) -> Vec<ProcessFinding> {
    let mut processes: Vec<ProcessFinding> = accountant
        .processes()
        .map(|p| ProcessFinding {
            pid: p.info.pid,
            ppid: p.info.ppid,
            command: p.info.command.clone(),
            runtime: detect(profiles, &p.info),
            cpu_s: p.cpu_ns / 1e9,
            threads: p.threads,
        })
        .collect();
    processes.sort_by(|a, b| b.cpu_s.total_cmp(&a.cpu_s).then(a.pid.cmp(&b.pid)));
    processes
}

fn threads(accountant: &Accountant) -> Vec<ThreadFinding> {
    let mut threads: Vec<ThreadFinding> = accountant
        .threads()
        .map(|t| ThreadFinding {
            pid: t.pid,
            tid: t.tid,
            name: t.name.clone(),
            started_ns: t.started_ns,
            time: t.time,
            details: t.details.clone(),
            timeline: Vec::new(),
        })
        .collect();
    threads.sort_by(|a, b| {
        b.time
            .cpu_ns
            .total_cmp(&a.time.cpu_ns)
            .then(a.tid.cmp(&b.tid))
    });
    threads
}

/// Gives the busiest threads their timeline at the tree timeline's resolution, and sums the
/// others' (threads beyond the first `TIMELINE_THREADS`, and those no longer listed or left out
/// of the budget) into one row.
fn timeline_rows(
    threads: &mut [ThreadFinding],
    timelines: &ThreadTimelines,
    accountant: &Accountant,
) -> Option<OtherThreads> {
    let bucket_ns = accountant.timeline.bucket_ns();
    let buckets = accountant.timeline.buckets().len();
    let mut own_rows = Vec::new();
    for thread in threads.iter_mut().take(TIMELINE_THREADS) {
        if let Some(track) = timelines.track(thread.pid, thread.tid, thread.started_ns) {
            thread.timeline = bucket_runs([track], bucket_ns, buckets);
            own_rows.push((track.pid, track.tid, track.start_ns));
        }
    }
    let others: Vec<_> = timelines
        .tracks
        .iter()
        .filter(|t| !own_rows.contains(&(t.pid, t.tid, t.start_ns)))
        .collect();
    let count = others.len() as u64 + timelines.threads_left_out;
    (count > 0).then(|| OtherThreads {
        threads: count,
        timeline: bucket_runs(others, bucket_ns, buckets),
    })
}

/// W and C of the pool-size formula: the activity-seconds spent waiting on I/O (a blocked
/// thread's wait, or each peer an event loop waited on) and the CPU time of the threads that
/// did I/O.
fn wait_compute(accountant: &Accountant, io_wait_s: f64) -> Option<WaitCompute> {
    let compute_s: f64 = accountant
        .threads()
        .filter(|thread| {
            WaitKind::ALL
                .into_iter()
                .any(|kind| kind.is_io() && thread.time.wait(kind) > 0.0)
        })
        .map(|thread| thread.time.cpu_ns / 1e9)
        .sum();
    (io_wait_s > 0.0).then_some(WaitCompute {
        wait_s: io_wait_s,
        compute_s,
    })
}
