//! What `run` and `attach` share: outputs checked before anything starts, the sampler and progress line while measuring, the summary and report at the end.

use std::time::Instant;

use crate::advice::profiles::ProfileSet;
use crate::cli::{AdviceArgs, OutputArgs, SamplingArgs};
use crate::error::Error;
use crate::machine;
use crate::progress::Progress;
use crate::report::assemble::{assemble, SamplingFacts, TargetFacts};
use crate::report::export::Format;
use crate::report::terminal::{render, Look};
use crate::report::write::Destination;
use crate::report::Report;
use crate::sampler::discovery::Discovery;
use crate::sampler::tree_reader::Scope;
use crate::sampler::{Sampler, SamplerConfig};

/// Outputs the user asked for, each proven writable.
pub struct Outputs<'a> {
    output: &'a OutputArgs,
    sampling: &'a SamplingArgs,
    destination: Option<Destination>,
    /// Where the raw samples go: streamed into a temporary file, renamed at the end.
    record: Option<Destination>,
    profiles: ProfileSet,
    discovery: Discovery,
}

impl<'a> Outputs<'a> {
    /// Fails on anything the user typed wrong, before the program is started or attached to.
    pub fn prepare(
        sampling: &'a SamplingArgs,
        advice: &AdviceArgs,
        output: &'a OutputArgs,
    ) -> Result<Self, Error> {
        let profiles = ProfileSet::load(advice.profiles.as_deref())?;
        let discovery = Discovery::choose(Discovery::from_env().map_err(Error::Setup)?);
        if let Some(name) = &advice.runtime {
            if profiles.get(name).is_none() {
                return Err(Error::UnknownRuntime {
                    name: name.clone(),
                    known: profiles.names().iter().map(|n| n.to_string()).collect(),
                });
            }
        }
        let destination = output
            .report
            .as_deref()
            .map(Destination::prepare)
            .transpose()?;
        let record = match &sampling.record_samples {
            Some(path) if path.as_os_str() == "-" => {
                return Err(Error::Report {
                    path: path.clone(),
                    reason: "samples are recorded to a file; give its name".into(),
                })
            }
            Some(path) => Some(Destination::prepare(&path.to_string_lossy())?),
            None => None,
        };
        Ok(Outputs {
            output,
            sampling,
            destination,
            record,
            profiles,
            discovery,
        })
    }

    /// Starts sampling `scope` from `origin`, with a progress line when stderr is a terminal.
    pub fn start(self, scope: Scope, origin: Instant) -> Result<Measuring<'a>, Error> {
        let record = match self.record.as_ref().and_then(Destination::file_handle) {
            Some(handle) => Some(handle.map_err(|e| Error::Setup(format!("recording: {e}")))?),
            None => None,
        };
        let sampler = Sampler::start(SamplerConfig {
            rate_hz: self.sampling.rate,
            scope,
            origin,
            record,
            discovery: self.discovery,
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
    // Bounded: if the sampler's last tick hangs, what it measured before is reported.
    let outcome = sampler.stop();
    if let Some(error) = &outcome.record_error {
        crate::notice::line(&format!("warning: recording samples stopped: {error}"));
    }
    let sampling = SamplingFacts {
        rate_hz: outputs.sampling.rate,
        self_cpu_s: crate::target::launch::own_cpu().map_or(0.0, |(user, system)| user + system),
        machine: machine::describe(),
    };
    let report = assemble(target, sampling, &outcome, &outputs.profiles)?;
    let output = outputs.output;
    // The report first: a summary that cannot be printed must not cost the report.
    if let Some(destination) = outputs.destination {
        let path = destination
            .path()
            .map_or("-".into(), |p| p.display().to_string());
        let format = Format::choose(output.format, &path);
        let bytes = format
            .exporter()
            .serialize(&report)
            .map_err(|e| Error::Report {
                path: path.clone().into(),
                reason: format!("{e:#}"),
            })?;
        destination.commit(&bytes)?;
    }
    if let Some(recording) = outputs.record {
        // Everything was streamed into the temporary file: rename it into place.
        recording.commit(&[])?;
    }
    if !output.quiet {
        crate::notice::to_stderr(&render(&report, Look::for_stderr(output.color)));
    }
    Ok(report)
}
