//! What `run` and `attach` share: outputs checked before anything starts, the sampler and progress line while measuring, the summary and report at the end.

use std::time::Instant;

use crate::advice::recommend;
use crate::analysis::findings::{analyse, RunFacts};
use crate::analysis::TickAnalyser;
use crate::cli::{AdviceArgs, OutputArgs, SamplingArgs};
use crate::error::Error;
use crate::machine;
use crate::output_path::{OutputPath, Stream};
use crate::profile::ProfileSet;
use crate::progress::Progress;
use crate::report::assemble::{assemble, SamplingFacts, TargetFacts};
use crate::report::export::Format;
use crate::report::terminal::{render, Look};
use crate::report::write::{save_fallback, Destination};
use crate::sampler::tree_reader::Scope;
use crate::sampler::{Sampler, SamplerConfig};

/// Outputs the user asked for, each proven writable (nothing is created before the end).
pub struct Outputs<'a> {
    output: &'a OutputArgs,
    sampling: &'a SamplingArgs,
    destination: Option<Destination>,
    /// Where the raw samples go: streamed into an unnamed file, put in place at the end.
    record: Option<OutputPath>,
    profiles: ProfileSet,
}

impl<'a> Outputs<'a> {
    /// Fails on anything the user typed wrong, before the program is started or attached to.
    pub fn prepare(
        sampling: &'a SamplingArgs,
        advice: &AdviceArgs,
        output: &'a OutputArgs,
    ) -> Result<Self, Error> {
        let profiles = ProfileSet::load(advice.profiles.as_deref())?;
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
            Some(path) => Some(OutputPath::check(path)?),
            None => None,
        };
        if let (Some(Destination::File(report)), Some(record)) = (&destination, &record) {
            if report.same_file(record) {
                return Err(Error::Report {
                    path: record.given().to_path_buf(),
                    reason: "--report and --record-samples name the same file: give each its own"
                        .into(),
                });
            }
        }
        Ok(Outputs {
            output,
            sampling,
            destination,
            record,
            profiles,
        })
    }

    /// Starts sampling `scope` from `origin`, with a progress line when stderr is a terminal.
    pub fn start(self, scope: Scope, origin: Instant) -> Result<Measuring<'a>, Error> {
        let recording = match &self.record {
            Some(path) => {
                let failed = |e: std::io::Error| Error::Report {
                    path: path.given().to_path_buf(),
                    reason: e.to_string(),
                };
                let stream = path.stream().map_err(failed)?;
                let handle = stream.handle().map_err(failed)?;
                Some((stream, handle))
            }
            None => None,
        };
        let (recording, record) = match recording {
            Some((stream, handle)) => (Some(stream), Some(handle)),
            None => (None, None),
        };
        let sampler = Sampler::start(SamplerConfig {
            rate_hz: self.sampling.rate,
            scope,
            origin,
            record,
            sink: TickAnalyser::default(),
        })
        .map_err(|e| Error::Setup(format!("cannot start the sampler thread: {e}")))?;
        let progress = Progress::start(sampler.live(), self.output.quiet);
        Ok(Measuring {
            outputs: self,
            sampler,
            progress,
            recording,
        })
    }
}

pub struct Measuring<'a> {
    outputs: Outputs<'a>,
    sampler: Sampler<TickAnalyser>,
    progress: Option<Progress>,
    /// The sample recording being streamed, put in place at the end.
    recording: Option<Stream>,
}

/// What a measurement ended with.
pub struct Concluded {
    /// The report could not be written where asked (it was saved elsewhere, or printed).
    pub report_failed: bool,
}

/// Analyses what was measured, advises, assembles the report, prints the summary and writes
/// the report (to a fallback file when the path asked for fails: the numbers are never lost).
pub fn conclude(
    measuring: Measuring<'_>,
    target: TargetFacts,
    run: RunFacts,
) -> Result<Concluded, Error> {
    let Measuring {
        outputs,
        sampler,
        progress,
        recording,
    } = measuring;
    drop(progress);
    let outcome = sampler
        .stop()
        .ok_or_else(|| Error::Setup("the sampler thread failed".into()))?;
    if let Some(error) = &outcome.record_error {
        crate::notice::line(&format!("warning: recording samples stopped: {error}"));
    }
    let self_cpu_s = crate::target::launch::own_cpu().map_or(0.0, |(user, system)| user + system);
    let machine = machine::describe();
    let findings = analyse(outcome, &run, &machine, &outputs.profiles)?;
    let profile = outputs.profiles.for_runtime(&findings.runtime.name)?;
    let recommendation = recommend(&findings, profile);
    let sampling = SamplingFacts {
        rate_hz: outputs.sampling.rate,
        self_cpu_s,
        machine,
        profile: format!("{} ({})", profile.name, profile.source),
    };
    let report = assemble(target, sampling, &findings, &recommendation);
    let output = outputs.output;
    // The summary first: whatever happens to the report, the numbers have been shown.
    if !output.quiet {
        crate::notice::to_stderr(&render(&report, Look::for_stderr(output.color)));
    }
    let mut report_failed = false;
    if let Some(destination) = &outputs.destination {
        let format = Format::choose(output.format, destination.path());
        let bytes = format
            .exporter()
            .serialize(&report)
            .map_err(|e| Error::Setup(format!("{e:#}")))?;
        if let Err(error) = destination.commit(&bytes) {
            report_failed = true;
            keep_elsewhere(&error, &bytes, format);
        }
    }
    if let (Some(stream), Some(path)) = (recording, &outputs.record) {
        if let Err(error) = stream.persist() {
            crate::notice::line(&format!(
                "warning: the sample recording could not be saved to {}: {error}",
                path.given().display()
            ));
        }
    }
    Ok(Concluded { report_failed })
}

/// A report that could not be written where asked: saved to a fallback file, named in one
/// line, or, when no fallback takes it either, printed on stderr after that line.
fn keep_elsewhere(error: &Error, bytes: &[u8], format: Format) {
    match save_fallback(bytes, format.extension()) {
        Ok(saved) => crate::notice::line(&format!(
            "error: {error}; the report was saved to {} instead",
            saved.display()
        )),
        Err(why) => {
            crate::notice::line(&format!(
                "error: {error}; it could not be saved elsewhere either ({why}): the report \
                 follows on stderr"
            ));
            crate::notice::to_stderr(&String::from_utf8_lossy(bytes));
        }
    }
}
