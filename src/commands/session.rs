//! What `run` and `attach` share: outputs checked before anything starts, the sampler and progress line while measuring, the summary and report at the end.

use std::fs::File;
use std::time::Instant;

use crate::cli::{OutputArgs, SamplingArgs};
use crate::error::Error;
use crate::machine;
use crate::progress::Progress;
use crate::report::assemble::{assemble, SamplingFacts, TargetFacts};
use crate::report::export::Format;
use crate::report::terminal::{render, Look};
use crate::report::write::Destination;
use crate::report::Report;
use crate::sampler::tree_reader::Scope;
use crate::sampler::{Sampler, SamplerConfig};

/// Outputs the user asked for, each proven writable.
pub struct Outputs<'a> {
    output: &'a OutputArgs,
    sampling: &'a SamplingArgs,
    destination: Option<Destination>,
    record: Option<File>,
}

impl<'a> Outputs<'a> {
    /// Fails on anything the user typed wrong, before the program is started or attached to.
    pub fn prepare(sampling: &'a SamplingArgs, output: &'a OutputArgs) -> Result<Self, Error> {
        let destination = output
            .report
            .as_deref()
            .map(Destination::prepare)
            .transpose()?;
        let record = match &sampling.record_samples {
            Some(path) => Some(File::create(path).map_err(|e| Error::ReportPath {
                path: path.clone(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        Ok(Outputs {
            output,
            sampling,
            destination,
            record,
        })
    }

    /// Starts sampling `scope` from `origin`, with a progress line when stderr is a terminal.
    pub fn start(mut self, scope: Scope, origin: Instant) -> Result<Measuring<'a>, Error> {
        let sampler = Sampler::start(SamplerConfig {
            rate_hz: self.sampling.rate,
            scope,
            origin,
            record: self.record.take(),
        })
        .map_err(|e| Error::Setup(format!("cannot start the sampler thread: {e}")))?;
        let progress = Progress::start(sampler.live(), self.output.quiet);
        Ok(Measuring {
            outputs: self,
            sampler,
            progress,
        })
    }
}

pub struct Measuring<'a> {
    outputs: Outputs<'a>,
    sampler: Sampler,
    progress: Option<Progress>,
}

/// Assembles the report from the facts, prints the summary and writes the report.
pub fn conclude(measuring: Measuring<'_>, target: TargetFacts) -> Result<Report, Error> {
    let Measuring {
        outputs,
        sampler,
        progress,
    } = measuring;
    drop(progress);
    let outcome = sampler
        .stop()
        .ok_or_else(|| Error::Setup("the sampler thread failed".into()))?;
    if let Some(error) = &outcome.record_error {
        eprintln!("concadvise: warning: recording samples stopped: {error}");
    }
    let sampling = SamplingFacts {
        rate_hz: outputs.sampling.rate,
        self_cpu_s: own_cpu_seconds(),
        machine: machine::describe(),
    };
    let report = assemble(target, sampling, &outcome);
    let output = outputs.output;
    if !output.quiet {
        eprint!("{}", render(&report, Look::for_stderr(output.color)));
    }
    if let Some(destination) = outputs.destination {
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
    Ok(report)
}

/// concadvise's own CPU seconds so far (all its threads).
fn own_cpu_seconds() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |usage| {
        let seconds = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        seconds(usage.user_time()) + seconds(usage.system_time())
    })
}
