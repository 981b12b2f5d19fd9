//! The situations a measurement can put a program in, one module each, ranked: the first that applies is the advice.
//!
//! Each situation says when it applies (its measured condition), the reason it gives first
//! (the numbers and the rule they trigger), and the sizing formula where one applies; its
//! module's doc says why it matters and what to do instead. What the situation means in a
//! runtime (the model, the "how", the alternatives) is in that runtime's profile under the
//! situation's name.

mod already_overlapping;
mod already_parallel;
mod blocked_event_loop;
mod cpu_bound;
mod cpu_quota;
mod disk_saturated;
mod gil_contention;
mod idle;
mod io_bound;
mod lock_contention;
mod mixed;
mod network_fs;
mod sequential_processes;
mod server_at_capacity;
mod stopped;
mod sync_bound;

use super::expected::{amdahl, Band, Estimate};
use crate::analysis::bottleneck::Bottleneck;
use crate::analysis::code::{CodeFindings, CodeState, Hotspot};
use crate::analysis::contention::SerializedThreads;
use crate::analysis::demand::Demand;
use crate::analysis::findings::{ProcessFinding, WaitCompute};
use crate::analysis::limits::Limits;
use crate::analysis::phases::Phase;
use crate::analysis::structure::Concurrency;
use crate::analysis::verdict::Verdict;
use crate::profile::Profile;
use crate::sampler::SamplerStats;
use crate::target::runtime::Runtime;
pub use disk_saturated::{device_reason, discard_reason};

/// Target utilisation of a core in the pool-size formula.
pub const UTILISATION: f64 = 0.8;
/// Pool sizes above this are reported as this: something else saturates long before.
pub const MAX_WORKERS: f64 = 1024.0;

/// What the advice is computed from: the parts of `Findings` it reads, for the whole run or
/// for one phase.
#[derive(Debug, Clone)]
pub struct AdviceInput<'a> {
    pub verdict: &'a Verdict,
    pub runtime: &'a Runtime,
    pub profile: &'a Profile,
    pub wall_s: f64,
    pub avg_cores: f64,
    /// Cores the tree wanted on average: its CPU and its run-queue wait over the wall time.
    pub avg_cores_wanted: f64,
    /// CPUs the program may use: the machine's (affinity applied), or its CPU quota's when
    /// that is tighter.
    pub cores: f64,
    pub serialized: Option<&'a SerializedThreads>,
    pub wait_compute: Option<WaitCompute>,
    pub concurrency: &'a Concurrency,
    pub limits: &'a Limits,
    /// The process the others wait on, when one dominates.
    pub bottleneck: Option<&'a Bottleneck>,
    /// The verdict is the bottleneck process's own (the tree mostly waited on it).
    pub about_bottleneck: bool,
    /// The runtime of the event loop's process, when there is a loop.
    pub event_loop_runtime: Option<&'a Runtime>,
    /// Busiest first.
    pub processes: &'a [ProcessFinding],
    /// How the sampling went: the samples the verdict rests on, threads not followed, sources
    /// not readable.
    pub sampling: &'a SamplerStats,
    /// About how many waits on I/O the threads made.
    pub io_waits: u64,
    /// Measured by attach (a running server, usually): gains are in capacity, not wall time.
    pub attached: bool,
    /// CPU seconds in user and in system mode.
    pub user_s: f64,
    pub system_s: f64,
    /// Wall-clock seconds the tree spent in sync waits (part of the disk wait).
    pub wall_sync_s: f64,
    /// Cores' worth of CPU other work used meanwhile, when known.
    pub other_load_cores: Option<f64>,
    /// Where in the code the time went, when stacks were read.
    pub code: Option<&'a CodeFindings>,
    /// The accept queues of the tree's listeners, when it held any.
    pub demand: Option<&'a Demand>,
}

impl<'a> AdviceInput<'a> {
    /// A runtime whose threads take turns on an interpreter lock (CPython's GIL).
    pub fn has_gil(&self) -> bool {
        self.profile.traits.gil && !self.runtime.free_threaded
    }

    /// The cores the program wants now, on a CPU or queued for one (at most the cores there
    /// are): what more workers are measured against. Not only the cores it got: a thread
    /// that other work keeps waiting for a CPU would queue as long beside more workers.
    pub fn cores_wanted_now(&self) -> f64 {
        self.avg_cores_wanted
            .min(self.cores.max(1.0))
            .max(self.avg_cores)
            .max(0.0)
    }

    /// "the 2.1 s wall time", or, when the program waited for a CPU over a tenth of it (the
    /// shares are of its own time, run-queue wait excluded), "its own 0.4 s (the 2.1 s wall
    /// time less 1.7 s waiting for a CPU)".
    pub fn own_time(&self) -> String {
        let runqueue = self.verdict.shares.runqueue;
        if runqueue > 0.1 {
            format!(
                "its own {:.1} s (the {:.1} s wall time less {:.1} s waiting for a CPU)",
                self.wall_s * (1.0 - runqueue),
                self.wall_s,
                self.wall_s * runqueue
            )
        } else {
            format!("the {:.1} s wall time", self.wall_s)
        }
    }

    /// The hotspots of a state, most seconds first.
    pub fn hotspots(&self, state: CodeState) -> Vec<&'a Hotspot> {
        self.code
            .map(|code| code.of_state(state).collect())
            .unwrap_or_default()
    }

    /// Whether the advice may speak CPython (`ProcessPoolExecutor`, `asyncio`).
    pub fn is_python(&self) -> bool {
        self.runtime.name == "python"
    }

    /// The same input, narrowed to one phase's verdict, length and CPU use.
    pub fn for_phase(&self, phase: &'a Phase) -> AdviceInput<'a> {
        AdviceInput {
            verdict: &phase.verdict,
            wall_s: phase.seconds(),
            avg_cores: phase.avg_cores(),
            avg_cores_wanted: phase.avg_cores(),
            ..self.clone()
        }
    }
}

/// What the stacks add to a situation's advice.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeAdvice {
    pub reason: String,
    pub how: String,
}

/// "checksum (hotlib.py:12), 83% of the cpu samples (1.94 s)", and the next hotspots of the
/// same state after it.
pub fn hotspots_named(hotspots: &[&Hotspot], samples_of: &str) -> String {
    let mut named: Vec<String> = hotspots
        .iter()
        .take(2)
        .map(|h| {
            format!(
                "{}, {} of the {samples_of} samples ({:.2} s)",
                h.place(),
                pct(h.share),
                h.seconds
            )
        })
        .collect();
    if named.len() > 1 {
        named[1] = format!("then {}", named[1]);
    }
    named.join("; ")
}

/// The code whose CPU time the workers should take over (for the CPU situations).
pub fn parallel_code(input: &AdviceInput) -> Option<CodeAdvice> {
    let hotspots = input.hotspots(CodeState::Cpu);
    let top = hotspots.first()?;
    let place = top.place();
    let how = if let Some(where_it_runs) = unnamed_code(&top.function).filter(|_| input.is_python())
    {
        let pool = if input.has_gil() {
            "the process pool (processes receive it by pickling: its arguments and results \
             must pickle too)"
        } else {
            "the pool's threads"
        };
        format!(
            "Start with {place}: that code runs {where_it_runs}, not in a function of its \
             own: move it into a top-level function that takes one piece of the work, and \
             hand that to {pool}, as pool.map(function, pieces)."
        )
    } else if input.is_python() && input.has_gil() {
        format!(
            "Start with {place}: hand {} to the pool as a top-level function (processes \
             receive it by pickling: its arguments and results must pickle too), over large \
             pieces of the work (pool.map({}, pieces, chunksize=...)).",
            top.function, top.function
        )
    } else if input.is_python() {
        format!(
            "Start with {place}: run {} on the pool's threads (pool.map({}, pieces)).",
            top.function, top.function
        )
    } else {
        format!("Start with {place}: split its work among the workers.")
    };
    Some(CodeAdvice {
        reason: format!("Where the CPU went: {}.", hotspots_named(&hotspots, "cpu")),
        how,
    })
}

/// Pool size and speedup ceiling, with the sentence that shows the formula.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sizing {
    pub workers: Option<u32>,
    pub ceiling: Option<f64>,
    pub text: Option<String>,
}

pub trait Situation: Sync {
    /// The name profiles advise under (`[advice.NAME]`) and the report records.
    fn name(&self) -> &'static str;
    /// Whether the measurement puts the program in this situation.
    fn applies(&self, input: &AdviceInput) -> bool;
    /// The first reason: what was measured and the rule it triggers.
    fn measured(&self, input: &AdviceInput) -> String;
    fn sizing(&self, _input: &AdviceInput) -> Sizing {
        Sizing::default()
    }
    /// The change it advises, in words, when the runtime's profile does not put it better.
    fn change(&self) -> &'static str;
    /// Where in the code the change goes, from the stack samples: a reason naming the
    /// function and line, and what to do there (added to the "how").
    fn code(&self, _input: &AdviceInput) -> Option<CodeAdvice> {
        None
    }

    /// The situation whose advice a profile without this one gives (an optional situation,
    /// or a profile written before it existed).
    fn fallback(&self) -> &'static str {
        "cpu_bound"
    }
    /// Whether what the change buys is measured as capacity (load served) even when the
    /// program was run rather than attached to (a server's clients queued).
    fn measures_capacity(&self) -> bool {
        false
    }
    /// What that change is expected to buy (see `advice::expected`), given the sizing.
    fn expected(&self, _input: &AdviceInput, _sizing: &Sizing) -> Estimate {
        Estimate::Unavailable(
            "no honest model for this situation: what the change buys depends on more than \
             one run can measure"
                .into(),
        )
    }
}

/// The expected gain of spreading the computing share over `workers` (from the `avg_cores`
/// used now): all of the ideal gain if the work divides evenly, down to half of it for
/// start-up, hand-off and uneven pieces. One run cannot tell how well the work divides.
pub fn parallel_cpu(input: &AdviceInput, workers: Option<u32>) -> Estimate {
    let p = input.verdict.shares.computing.min(1.0);
    let now = input.cores_wanted_now().max(0.05);
    let target = f64::from(workers.unwrap_or(1)).min(input.cores.max(1.0));
    // The cores other work left free meanwhile: the low end assumes the after-run finds the
    // machine as busy.
    let free = input
        .other_load_cores
        .map_or(target, |other| (input.cores - other).clamp(now, target));
    if target <= now * 1.05 {
        return Estimate::band(
            Band::unchanged().widened_for(input),
            format!("{now:.2} cores are in use already and {target:.0} are available"),
        );
    }
    let gain = |cores_then: f64, efficiency: f64| {
        let cores = now + efficiency * (cores_then - now);
        1.0 / ((1.0 - p) + p * now / cores.max(now))
    };
    let busy = if free < target {
        format!(
            "; other work used {:.1} cores meanwhile, so the low end has only {free:.1} free",
            input.other_load_cores.unwrap_or(0.0)
        )
    } else {
        String::new()
    };
    Estimate::band(
        Band::new(gain(target, 0.85), gain(free, 0.5), gain(target, 1.0)).widened_for(input),
        format!(
            "{} of the time computing on {now:.2} cores, spread over {target:.0}: the whole \
             gain if the work divides evenly, half of it if start-up, hand-off and uneven \
             pieces take their usual share (one run cannot tell how well it divides: \
             concadvise scale measures it){busy}",
            pct(p)
        ),
    )
}

/// The expected gain of overlapping I/O waits, from `now` in flight to as many as the sizing
/// gives or as there were waits, whichever is fewer: as if the peer took them all at once at
/// best (the computing between waits then overlaps the other waits), only four at a time at
/// worst (a client cannot see its capacity).
pub fn overlapped_io(input: &AdviceInput, sizing: &Sizing, now: f64, peer: &str) -> Estimate {
    let p = input.verdict.shares.io.min(1.0);
    let now = now.max(1.0);
    let waits = input.io_waits.max(1) as f64;
    let most = f64::from(sizing.workers.unwrap_or(1)).min(waits.max(now));
    if most <= now * 1.05 {
        return Estimate::band(
            Band::unchanged().widened_for(input),
            format!("{now:.1} waits are in flight already and no more would fit"),
        );
    }
    // At best the work between the waits hides under the other requests' waits: what is
    // left is the longer of the two, not their sum. The work is the computing; the rest of
    // the time that was not I/O (a main thread on its pool's futex, a CPU the machine was
    // slow to give) need not stay serial.
    let serial = input.verdict.shares.computing.clamp(0.0, 1.0 - p);
    let high = 1.0 / serial.max(p * now / most).max(f64::MIN_POSITIVE);
    let low = amdahl(p, (4.0 / now).max(1.0).min(most / now));
    Estimate::band(
        Band::new((low * high).sqrt(), low, high).widened_for(input),
        format!(
            "{} of the time waiting on I/O, about {waits:.0} waits, {now:.1} at a time now; up \
             to {most:.0} at once if the {peer} keeps up, which cannot be measured from this \
             side: the band runs from a {peer} that takes four at a time to one that takes them \
             all",
            pct(p)
        ),
    )
}

/// Every situation, most specific first; `mixed` applies to anything and comes last.
static RANKED: [&dyn Situation; 22] = [
    &stopped::Stopped,
    &blocked_event_loop::BlockedEventLoop,
    &cpu_quota::CpuQuota,
    &sync_bound::SyncBound,
    &disk_saturated::DiskSaturated,
    &server_at_capacity::ServerAtCapacity::CPU,
    &server_at_capacity::ServerAtCapacity::WAITING,
    &idle::Idle,
    &already_parallel::AlreadyParallel,
    &gil_contention::GilContention,
    &lock_contention::LockContention,
    &sequential_processes::SequentialProcesses,
    &cpu_bound::CpuBound {
        free_threaded: true,
    },
    &cpu_bound::CpuBound {
        free_threaded: false,
    },
    &already_overlapping::AlreadyOverlapping { event_loop: true },
    &already_overlapping::AlreadyOverlapping { event_loop: false },
    &network_fs::NetworkFs,
    &io_bound::IoBound::NETWORK,
    &io_bound::IoBound::IPC,
    &io_bound::IoBound::PAGING,
    &io_bound::IoBound::DISK,
    &mixed::Mixed,
];

/// The situation the measurement puts the program in.
pub fn choose(input: &AdviceInput) -> &'static dyn Situation {
    RANKED
        .iter()
        .copied()
        .find(|situation| situation.applies(input))
        .unwrap_or(&mixed::Mixed)
}

/// Every situation's name, for profile validation.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = RANKED.iter().map(|s| s.name()).collect();
    names.dedup();
    names
}

/// Where code that is no function runs ("at the top level of its module"), for Python's
/// `<module>`, `<lambda>`, `<listcomp>`...: a pool cannot be handed it, it has to become a
/// function first. `None` for a named function.
pub fn unnamed_code(function: &str) -> Option<&'static str> {
    let place = match function {
        "<module>" => "at the top level of its module",
        "<lambda>" => "in a lambda",
        _ => "in a comprehension or generator",
    };
    function.starts_with('<').then_some(place)
}

pub fn pct(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// A short duration for people: "12 ms", "0.4 ms", "26 µs".
pub fn short_duration(seconds: f64) -> String {
    if seconds >= 0.001 {
        format!("{:.1} ms", seconds * 1000.0)
    } else {
        format!("{:.0} µs", seconds * 1e6)
    }
}

pub fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// CPU-bound sizing: every core available, and the Amdahl ceiling for the computing share.
pub fn cpu_sizing(input: &AdviceInput) -> Sizing {
    let shares = &input.verdict.shares;
    let cores = input.cores.max(1.0);
    // The computing part spread over every core; the rest of the wall time unchanged:
    // new wall = (1 - p) x wall + cpu / N, so S = 1 / ((1 - p) + cores_now / N).
    let p = shares.computing.min(1.0);
    let now = input.cores_wanted_now();
    let ceiling = 1.0 / ((1.0 - p) + now / cores).max(f64::MIN_POSITIVE);
    let text = format!(
        "Workers: the {cores:.0} cores available (machine or cgroup quota, whichever is \
         smaller). Speedup ceiling (Amdahl): 1 / ((1 - p) + c / N) = 1 / ({:.2} + {now:.2} / \
         {cores:.0}) = {ceiling:.2}x, with p = {} of the wall time computing, c = {now:.2} \
         cores wanted now (on a CPU or queued for one) and N = {cores:.0}; an upper bound, as \
         real work rarely splits evenly.",
        1.0 - p,
        pct(p)
    );
    Sizing {
        workers: Some(cores as u32),
        ceiling: Some(round2(ceiling)),
        text: Some(text),
    }
}

/// I/O-bound sizing: the activities in flight that would keep the cores busy,
/// N = cores x utilisation x (1 + W/C), and the Amdahl ceiling for going from today's
/// `in_flight` to N on the waiting share.
pub fn io_sizing(input: &AdviceInput, in_flight: f64) -> Sizing {
    let Some(wc) = input.wait_compute else {
        return Sizing::default();
    };
    let shares = &input.verdict.shares;
    let cores = input.cores.max(1.0);
    let ratio = wc.wait_s / wc.compute_s.max(1e-3);
    let n = (cores * UTILISATION * (1.0 + ratio))
        .ceil()
        .clamp(1.0, MAX_WORKERS);
    let now = in_flight.max(1.0);
    let p = shares.io.min(1.0);
    let ceiling = (1.0 / ((1.0 - p) + p * now.min(n) / n)).max(1.0);
    let amdahl = if now > 1.05 {
        format!(
            "1 / ((1 - p) + p x k / N) = {ceiling:.1}x with p = {} of the wall time waiting on \
             I/O and k = {now:.1} in flight now",
            pct(p)
        )
    } else {
        format!(
            "1 / ((1 - p) + p / N) = {ceiling:.1}x with p = {} of the wall time waiting on I/O",
            pct(p)
        )
    };
    let text = format!(
        "Workers: N = cores x utilisation x (1 + W/C) = {cores:.0} x {UTILISATION} x (1 + \
         {ratio:.1}) = {n:.0}{}, where W/C = {:.2} s waiting / {:.3} s computing (each request \
         in flight counts its own wait). Speedup ceiling (Amdahl): {amdahl}. Both are upper \
         bounds: the server, disk or network saturates first.",
        if n >= MAX_WORKERS { " (capped)" } else { "" },
        wc.wait_s,
        wc.compute_s,
    );
    Sizing {
        workers: Some(n as u32),
        ceiling: Some(round2(ceiling)),
        text: Some(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{OPTIONAL, REQUIRED};

    #[test]
    fn every_situation_is_one_profiles_know_and_every_known_one_exists() {
        let mut known: Vec<&str> = REQUIRED.iter().chain(OPTIONAL.iter()).copied().collect();
        known.sort();
        let mut names = names();
        names.sort();
        assert_eq!(names, known);
    }
}
