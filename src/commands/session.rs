//! What `run` and `attach` share: outputs checked before anything starts, the sampler and progress line while measuring, the summary and report at the end.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use crate::advice::recommend;
use crate::analysis::findings::{analyse, RunFacts};
use crate::analysis::TickAnalyser;
use crate::cli::{AdviceArgs, OutputArgs, SamplingArgs};
use crate::error::Error;
use crate::machine;
use crate::profile::ProfileSet;
use crate::progress::Progress;
use crate::report::assemble::{assemble, SamplingFacts, TargetFacts};
use crate::report::export::Format;
use crate::report::terminal::{render, Look};
use crate::report::trace::{self, TraceInput};
use crate::report::write::Destination;
use crate::report::Report;
use crate::sampler::stacks::Stacks;
use crate::sampler::tree_reader::Scope;
use crate::sampler::{Sampler, SamplerConfig};
use crate::target::py_spy::PySpySource;

/// Outputs the user asked for, each proven writable.
pub struct Outputs<'a> {
    output: &'a OutputArgs,
    sampling: &'a SamplingArgs,
    destination: Option<Destination>,
    /// Where the raw samples go: streamed into a temporary file, renamed at the end.
    record: Option<Destination>,
    /// Where the Perfetto trace goes.
    trace: Option<Destination>,
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
        if output.report.as_deref() == Some("-") && output.trace.as_deref() == Some("-") {
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
            Some(path) => Some(Destination::prepare(&path.to_string_lossy())?),
            None => None,
        };
        Ok(Outputs {
            output,
            sampling,
            destination,
            record,
            trace,
            profiles,
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
            sink: TickAnalyser::with_event_budget(self.output.trace_events),
            stacks: (!self.sampling.no_stacks)
                .then(|| Stacks::new(PySpySource::new(&self.profiles))),
        })
        .map_err(|e| Error::Setup(format!("cannot start the sampler thread: {e}")))?;
        let progress = Progress::start(sampler.live(), self.output.quiet);
        Ok(Measuring {
            outputs: self,
            sampler,
            progress,
            clock_at_start: machine::CpuClock::now(),
        })
    }
}

pub struct Measuring<'a> {
    outputs: Outputs<'a>,
    sampler: Sampler<TickAnalyser>,
    progress: Option<Progress>,
    /// The machine's CPU clock when measuring began, for the other load on it.
    clock_at_start: Option<machine::CpuClock>,
}

/// Streams the trace into its temporary file (or stdout) and puts it in place.
fn write_trace(input: &TraceInput, destination: Destination) -> Result<(), Error> {
    let failed = |e: serde_json::Error| Error::Report {
        path: destination
            .path()
            .map_or_else(|| "-".into(), Path::to_path_buf),
        reason: format!("writing the trace: {e}"),
    };
    match destination.file_handle() {
        Some(file) => {
            let file = file.map_err(|e| failed(serde_json::Error::io(e)))?;
            let mut writer = BufWriter::new(file);
            trace::write(input, &mut writer).map_err(failed)?;
            writer
                .flush()
                .map_err(|e| failed(serde_json::Error::io(e)))?;
            drop(writer);
            // Everything is in the temporary file: rename it into place.
            destination.commit(&[])
        }
        None => {
            let mut bytes = Vec::new();
            trace::write(input, &mut bytes).map_err(failed)?;
            destination.commit(&bytes)
        }
    }
}

/// Analyses what was measured, advises, assembles the report, prints the summary and writes
/// the report.
pub fn conclude(
    measuring: Measuring<'_>,
    target: TargetFacts,
    run: RunFacts,
) -> Result<Report, Error> {
    let Measuring {
        outputs,
        sampler,
        progress,
        clock_at_start,
    } = measuring;
    drop(progress);
    let outcome = sampler
        .stop()
        .ok_or_else(|| Error::Setup("the sampler thread failed".into()))?;
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
    if let Some(destination) = outputs.trace {
        let input = TraceInput {
            findings: &findings,
            recommendation: &recommendation,
            command: &report.target.command,
            loop_thread: findings
                .concurrency
                .event_loop
                .as_ref()
                .map(|found| (found.pid, found.tid)),
        };
        write_trace(&input, destination)?;
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
