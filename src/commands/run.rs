//! `concadvise run`: launch a program, sample its tree until it ends, report.

use std::time::{Instant, SystemTime};

use super::session::{conclude, Outputs};
use crate::analysis::findings::RunFacts;
use crate::cli::RunArgs;
use crate::error::Error;
use crate::report::assemble::TargetFacts;
use crate::sampler::tree_reader::Scope;
use crate::target::launch::{
    become_subreaper, raise_open_file_limit, reaped_children_cpu, shown, spawn, wait_for_tree,
    Orphans,
};
use crate::target::signals::SignalRelay;

/// Returns the exit code: the program's own, or 128 + the signal that killed it.
pub fn run(args: RunArgs) -> Result<u8, Error> {
    let outputs = Outputs::prepare(&args.sampling, &args.advice, &args.output)?;
    become_subreaper()?;
    let original_nofile = raise_open_file_limit();
    let signals = SignalRelay::install()?;

    let origin = Instant::now();
    let started_at = SystemTime::now();
    let pid = spawn(&args.command, original_nofile)?;
    signals.forward_to(pid.as_raw());
    let measuring = outputs.start(Scope::DescendantsOfSelf, origin)?;
    let orphans = if args.leave_orphans {
        Orphans::Leave
    } else {
        Orphans::Follow {
            announce: !args.output.quiet,
        }
    };
    // Once reaped, the program's PID may be reused: forward nothing more to it.
    let end = wait_for_tree(pid, signals.counter(), orphans, || {
        signals.stop_forwarding()
    });
    let kernel_cpu = reaped_children_cpu();

    conclude(
        measuring,
        TargetFacts {
            mode: "run",
            command: args.command.iter().map(shown).collect(),
            pid: pid.as_raw(),
            ending: Some(end.ending),
            started_at,
            interrupted: signals.interrupted() || end.orphans_left,
            exited: None,
        },
        RunFacts {
            wall: end.ended.duration_since(origin),
            kernel_cpu,
            // When the kernel totals do not cover the tree (orphans left running), split the
            // sampled CPU as the reaped part was split.
            user_fraction: kernel_cpu
                .filter(|(user, system)| user + system > 0.0)
                .map(|(user, system)| user / (user + system)),
            runtime_override: args.advice.runtime.clone(),
            attached: false,
        },
    )?;
    // Exit codes are 8 bits: 128 + signal stays in range, and so does any code a program used.
    Ok((end.ending.exit_code() & 0xff) as u8)
}
