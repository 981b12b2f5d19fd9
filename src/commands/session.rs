//! What `run` and `attach` share: outputs checked before anything starts, the sampler and progress line while measuring, the summary and report at the end.

use std::io::{BufWriter, Write};
use std::time::Instant;

use crate::advice::{recommend, Recommendation};
use crate::analysis::findings::{analyse, Findings, RunFacts};
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
use crate::report::trace::{self, TraceInput};
use crate::report::write::{save_fallback, to_stdout, Destination};
use crate::report::Report;
use crate::sampler::discovery::Discovery;
use crate::sampler::stacks::Stacks;
use crate::sampler::tree_reader::Scope;
use crate::sampler::{Sampler, SamplerConfig};
use crate::target::py_spy::PySpySource;

/// Outputs the user asked for, each proven writable (nothing is created before the end).
pub struct Outputs<'a> {
    output: &'a OutputArgs,
    sampling: &'a SamplingArgs,
    destination: Option<Destination>,
    /// Where the raw samples go: streamed into an unnamed file, put in place at the end.
    record: Option<OutputPath>,
    /// Where the Perfetto trace goes.
    trace: Option<Destination>,
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
        let stdout = |path: &Option<std::path::PathBuf>| {
            path.as_deref().is_some_and(|p| p.as_os_str() == "-")
        };
        if stdout(&output.report) && stdout(&output.trace) {
            return Err(Error::Usage(
                "the report and the trace cannot both go to stdout: give one a file name".into(),
            ));
        }
        let destination = output
            .report
            .as_deref()
            .map(Destination::prepare)
            .transpose()?;
        let trace = output
            .trace
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
        refuse_shared_files(destination.as_ref(), trace.as_ref(), record.as_ref())?;
        Ok(Outputs {
            output,
            sampling,
            destination,
            record,
            trace,
            profiles,
            discovery,
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
            sink: TickAnalyser::with_event_budget(self.output.trace_events),
            discovery: self.discovery,
            stacks: (!self.sampling.no_stacks)
                .then(|| Stacks::new(PySpySource::new(&self.profiles))),
        })
        .map_err(|e| Error::Setup(format!("cannot start the sampler thread: {e}")))?;
        let progress = Progress::start(sampler.live(), self.output.quiet);
        Ok(Measuring {
            outputs: self,
            sampler,
            progress,
            recording,
            clock_at_start: machine::CpuClock::now(),
        })
    }
}

/// Refuses two outputs (the report, the trace, the sample recording) that name one file.
fn refuse_shared_files(
    destination: Option<&Destination>,
    trace: Option<&Destination>,
    record: Option<&OutputPath>,
) -> Result<(), Error> {
    let files: Vec<(&str, &OutputPath)> = [("--report", destination), ("--trace", trace)]
        .into_iter()
        .filter_map(|(flag, d)| match d {
            Some(Destination::File(path)) => Some((flag, path)),
            _ => None,
        })
        .chain(record.map(|path| ("--record-samples", path)))
        .collect();
    for (i, (flag, path)) in files.iter().enumerate() {
        if let Some((other, _)) = files[i + 1..].iter().find(|(_, p)| p.same_file(path)) {
            return Err(Error::Report {
                path: path.given().to_path_buf(),
                reason: format!("{flag} and {other} name the same file: give each its own"),
            });
        }
    }
    Ok(())
}

pub struct Measuring<'a> {
    outputs: Outputs<'a>,
    sampler: Sampler<TickAnalyser>,
    progress: Option<Progress>,
    /// The sample recording being streamed, put in place at the end.
    recording: Option<Stream>,
    /// The machine's CPU clock when measuring began, for the other load on it.
    clock_at_start: Option<machine::CpuClock>,
}

/// What a measurement ended with.
pub struct Concluded {
    /// The report could not be written where asked (it was saved elsewhere, or printed), or
    /// the trace could not be written.
    pub report_failed: bool,
}

/// Analyses what was measured, advises, assembles the report, prints the summary and writes
/// the report (to a fallback file when the path asked for fails: the numbers are never lost)
/// and the trace.
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
        clock_at_start,
    } = measuring;
    drop(progress);
    // Bounded: if the sampler's last tick hangs, what it measured before is reported.
    let outcome = sampler.stop();
    if let Some(error) = &outcome.record_error {
        crate::notice::line(&format!("warning: recording samples stopped: {error}"));
    }
    let self_cpu_s = crate::target::launch::own_cpu().map_or(0.0, |(user, system)| user + system);
    let mut machine = machine::describe();
    let mut findings = analyse(outcome, &run, &machine, &outputs.profiles)?;
    // The machine's busy time less the tree's and concadvise's own: other work's load.
    if let (Some(start), Some(end)) = (clock_at_start, machine::CpuClock::now()) {
        let wall = run.wall.as_secs_f64().max(f64::MIN_POSITIVE);
        let other = end.busy_since(&start) - findings.cpu.cpu_s() - self_cpu_s;
        machine.other_load_cores = Some((other / wall).max(0.0));
        findings.other_load_cores = machine.other_load_cores;
    }
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
    let report_failed = write_outputs(&outputs, &report, &findings, &recommendation)?;
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

/// Writes the report (to a fallback file when the path asked for fails) and the trace, where
/// they were asked for; true when either could not be written there.
fn write_outputs(
    outputs: &Outputs,
    report: &Report,
    findings: &Findings,
    recommendation: &Recommendation,
) -> Result<bool, Error> {
    let mut report_failed = false;
    if let Some(destination) = &outputs.destination {
        let format = Format::choose(outputs.output.format, destination.path());
        let bytes = format
            .exporter()
            .serialize(report)
            .map_err(|e| Error::Setup(format!("{e:#}")))?;
        if let Err(error) = destination.commit(&bytes) {
            report_failed = true;
            keep_elsewhere(&error, &bytes, format);
        }
    }
    if let Some(destination) = &outputs.trace {
        let input = TraceInput {
            findings,
            recommendation,
            command: &report.target.command,
            loop_thread: findings
                .concurrency
                .event_loop
                .as_ref()
                .map(|found| (found.pid, found.tid)),
        };
        if let Err(error) = write_trace(&input, destination) {
            report_failed = true;
            crate::notice::line(&format!("error: {error}"));
        }
    }
    Ok(report_failed)
}

/// Streams the trace into an unnamed file (or stdout) and puts it in place.
fn write_trace(input: &TraceInput, destination: &Destination) -> Result<(), Error> {
    let path = destination.path().map_or("-".into(), |p| p.to_path_buf());
    let failed = |reason: String| Error::Report {
        path: path.clone(),
        reason: format!("writing the trace: {reason}"),
    };
    match destination {
        Destination::File(file) => {
            let stream = file.stream().map_err(|e| failed(e.to_string()))?;
            let handle = stream.handle().map_err(|e| failed(e.to_string()))?;
            let mut writer = BufWriter::new(handle);
            trace::write(input, &mut writer).map_err(|e| failed(e.to_string()))?;
            writer.flush().map_err(|e| failed(e.to_string()))?;
            drop(writer);
            stream.persist().map_err(|e| failed(e.to_string()))
        }
        Destination::Stdout => {
            let mut bytes = Vec::new();
            trace::write(input, &mut bytes).map_err(|e| failed(e.to_string()))?;
            to_stdout(&bytes)
        }
    }
}

/// A report that could not be written where asked: saved to a fallback file, named in one
/// line, or, when no fallback takes it either, printed on stderr after that line.
pub fn keep_elsewhere(error: &Error, bytes: &[u8], format: Format) {
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
