//! `concadvise run`: launch a program, sample its tree until it ends, report.

use std::fs::File;
use std::time::{Instant, SystemTime};

use crate::cli::RunArgs;
use crate::error::Error;
use crate::machine;
use crate::progress::Progress;
use crate::report::assemble::{assemble, RunFacts};
use crate::report::export::Format;
use crate::report::terminal::{render, Look};
use crate::report::write::Destination;
use crate::sampler::tree_reader::Scope;
use crate::sampler::{Sampler, SamplerConfig};
use crate::target::launch::{become_subreaper, reaped_children_cpu, spawn, wait_for_tree};
use crate::target::signals::SignalRelay;

/// Returns the exit code: the program's own, or 128 + the signal that killed it.
pub fn run(args: RunArgs) -> Result<u8, Error> {
    let output = &args.output;
    // Everything that can fail because of what the user typed fails before the program starts.
    let destination = output
        .report
        .as_deref()
        .map(Destination::prepare)
        .transpose()?;
    let record = match &args.sampling.record_samples {
        Some(path) => Some(
            File::create(path)
                .map_err(|e| Error::Setup(format!("cannot create {}: {e}", path.display())))?,
        ),
        None => None,
    };
    become_subreaper()?;
    let signals = SignalRelay::install()?;

    let origin = Instant::now();
    let started_at = SystemTime::now();
    let pid = spawn(&args.command)?;
    signals.forward_to(pid.as_raw());
    let sampler = Sampler::start(SamplerConfig {
        rate_hz: args.sampling.rate,
        scope: Scope::DescendantsOfSelf,
        origin,
        record,
    })
    .map_err(|e| Error::Setup(format!("cannot start the sampler thread: {e}")))?;
    let progress = Progress::start(sampler.live(), output.quiet);

    let end = wait_for_tree(pid, signals.flag(), !output.quiet);
    drop(progress);
    let outcome = sampler
        .stop()
        .ok_or_else(|| Error::Setup("the sampler thread failed".into()))?;
    if let Some(error) = &outcome.record_error {
        eprintln!("concadvise: warning: recording samples stopped: {error}");
    }
    let facts = RunFacts {
        mode: "run",
        command: args.command.clone(),
        pid: pid.as_raw(),
        ending: Some(end.ending),
        started_at,
        interrupted: signals.interrupted() || end.orphans_left,
        wall: end.ended.duration_since(origin),
        kernel_cpu: reaped_children_cpu(),
        rate_hz: args.sampling.rate,
        self_cpu_s: own_cpu_seconds(),
        machine: machine::describe(),
        runtime_override: None,
    };
    let report = assemble(facts, &outcome);
    if !output.quiet {
        eprint!("{}", render(&report, Look::for_stderr(output.color)));
    }
    if let Some(destination) = destination {
        let path = destination
            .path()
            .map_or("-".into(), |p| p.display().to_string());
        let format = Format::choose(output.format, &path);
        let bytes = format
            .exporter()
            .serialize(&report)
            .map_err(|e| Error::ReportWrite {
                path: path.clone().into(),
                reason: format!("{e:#}"),
            })?;
        destination.commit(&bytes)?;
    }
    // Exit codes are 8 bits: 128 + signal stays in range, and so does any code a program used.
    Ok((end.ending.exit_code() & 0xff) as u8)
}

/// concadvise's own CPU seconds so far (all its threads).
fn own_cpu_seconds() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |usage| {
        let seconds = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        seconds(usage.user_time()) + seconds(usage.system_time())
    })
}
