//! `concadvise attach`: measure a running process and its descendants for a while, reading /proc only.

use std::time::{Duration, Instant, SystemTime};

use super::session::{conclude, Outputs};
use crate::analysis::findings::RunFacts;
use crate::cli::AttachArgs;
use crate::error::Error;
use crate::notice;
use crate::report::assemble::TargetFacts;
use crate::sampler::tree_reader::Scope;
use crate::target::attach::{cpu_ticks, ending, resolve, wait_sources_readable, AttachTarget};
use crate::target::launch::Ending;
use crate::target::python::Interpreter;
use crate::target::signals::SignalRelay;

/// How often the target's liveness, the deadline and interrupts are checked.
const POLL: Duration = Duration::from_millis(20);

/// Resolves the target, samples it until the deadline, Ctrl-C or its exit, then concludes.
/// One function so the order of the checks before attaching (outputs, target, permissions)
/// reads top to bottom.
pub fn attach(args: AttachArgs) -> Result<u8, Error> {
    let outputs = Outputs::prepare(&args.sampling, &args.advice, &args.output)?;
    let name = args.name.as_ref().map(|name| name.to_string_lossy());
    let target = resolve(args.pid, name.as_deref())?;
    if let Some(thread) = target.thread_given {
        notice::line(&format!(
            "{thread} is a thread of process {}: measuring the process",
            target.pid
        ));
    }
    crate::target::launch::raise_open_file_limit();
    // Signals stop the measurement; none is ever forwarded to the target.
    let signals = SignalRelay::install()?;
    if !wait_sources_readable(target.pid) {
        warn_waits_unreadable(&target, !args.sampling.no_stacks);
    }
    let ticks_before = cpu_ticks(target.pid);
    let origin = Instant::now();
    let started_at = SystemTime::now();
    let scope = Scope::Process {
        pid: target.pid,
        start_ticks: target.start_ticks,
    };
    let measuring = outputs.start(scope, origin)?;

    // Bounded by the parser (a year), so the addition cannot overflow; checked all the same.
    let deadline = args
        .duration
        .and_then(|duration| origin.checked_add(duration));
    let (exit, ticks_after) = wait_for_end(&target, &signals, deadline, ticks_before);
    let wall = origin.elapsed();
    if exit.is_some() && !args.output.quiet {
        notice::line(&format!(
            "PID {} exited after {:.1} s of measurement",
            target.pid,
            wall.as_secs_f64()
        ));
    }
    let user_fraction = user_fraction(ticks_before, ticks_after);
    let concluded = conclude(
        measuring,
        TargetFacts {
            mode: "attach",
            command: target.command.clone(),
            pid: target.pid,
            ending: exit.flatten(),
            started_at,
            interrupted: signals.interrupted(),
            exited: Some(exit.is_some()),
        },
        RunFacts {
            wall,
            kernel_cpu: None,
            user_fraction,
            runtime_override: args.advice.runtime.clone(),
            attached: true,
        },
    )?;
    // The measurement was kept (saved elsewhere), but not where it was asked to go.
    Ok(if concluded.report_failed {
        crate::error::exit_code::OUTPUT_NOT_WRITABLE
    } else {
        0
    })
}

/// Says once that what the target waits on cannot be read (no ptrace access), nor its Python
/// stacks when they were wanted and it runs CPython.
fn warn_waits_unreadable(target: &AttachTarget, stacks_wanted: bool) {
    // One notice for all that ptrace access would give: Python stacks too.
    let python = stacks_wanted
        && crate::target::python::of_process(target.pid)
            .is_ok_and(|found| found.is_some_and(|p| p.interpreter == Interpreter::CPython));
    let stacks = if python {
        " and its Python stacks cannot be read"
    } else {
        ""
    };
    notice::line(&format!(
        "cannot read what PID {} waits on (its syscall, wchan and fd/ need ptrace access): \
         off-CPU time will be 'unknown'{stacks}; run as the process's user or root (in a \
         container, with CAP_SYS_PTRACE) for wait kinds{}",
        target.pid,
        if python { " and stacks" } else { "" }
    ));
}

/// Waits for the end of the measurement: Ctrl-C or a termination signal, the target's exit
/// (then `Some` of how it ended) or the deadline. Also returns the target's CPU ticks (user,
/// system) at the last look before it ended.
fn wait_for_end(
    target: &AttachTarget,
    signals: &SignalRelay,
    deadline: Option<Instant>,
    ticks_before: Option<(u64, u64)>,
) -> (Option<Option<Ending>>, Option<(u64, u64)>) {
    let mut ticks_after = ticks_before;
    let exit = loop {
        if signals.interrupted() {
            break None;
        }
        if let Some(exit) = ending(target) {
            break Some(exit);
        }
        ticks_after = cpu_ticks(target.pid).or(ticks_after);
        let now = Instant::now();
        match deadline {
            Some(deadline) if now >= deadline => break None,
            Some(deadline) => std::thread::sleep(POLL.min(deadline - now)),
            None => std::thread::sleep(POLL),
        }
    };
    (exit, ticks_after)
}

/// The user share of the target's CPU between two readings of its (user, system) ticks.
fn user_fraction(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> Option<f64> {
    match (before, after) {
        (Some((user0, system0)), Some((user1, system1))) => {
            let (user, system) = (user1.saturating_sub(user0), system1.saturating_sub(system0));
            (user + system > 0).then(|| user as f64 / (user + system) as f64)
        }
        _ => None,
    }
}
