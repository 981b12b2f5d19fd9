//! `concadvise scale`: run the command at each level, fit the scaling laws, write the report and print the summary.

use super::session::keep_elsewhere;
use crate::cli::ScaleArgs;
use crate::error::{exit_code, Error};
use crate::profile::ProfileSet;
use crate::report::export::Format;
use crate::report::terminal::Look;
use crate::report::write::Destination;
use crate::scale::assemble::{assemble, Setup};
use crate::scale::levels::mentions_placeholder;
use crate::scale::report::serialize;
use crate::scale::runner::{scan, LevelFiles, Outcome, Plan};
use crate::scale::summary::render;

pub fn scale(args: ScaleArgs) -> Result<u8, Error> {
    check_options(&args)?;
    let destination = args
        .output
        .report
        .as_deref()
        .map(Destination::prepare)
        .transpose()?;
    let report_path = destination
        .as_ref()
        .and_then(|d| d.path())
        .map(|p| p.to_path_buf());
    let format = Format::choose(args.output.format, report_path.as_deref());
    let files = match &report_path {
        Some(path) => LevelFiles::beside(path, format),
        None => LevelFiles::temporary(format)?,
    };
    let plan = plan_of(&args, files);
    let scan = match scan(&plan)? {
        Outcome::Scanned(scan) => scan,
        Outcome::MeasurementFailed(code) => return Ok(code),
    };
    let metric = args.metric.as_ref().map(|r| r.as_str().to_string());
    let report = assemble(
        &Setup {
            command: &args.command,
            metric: metric.as_deref(),
            env: args.env.as_deref(),
            levels_asked: &args.levels.0,
            repeat: args.repeat,
            files_kept: plan.files.kept(),
        },
        &scan,
    );
    // The summary first: whatever happens to the report, the numbers have been shown.
    if !args.output.quiet {
        crate::notice::to_stderr(&render(&report, Look::for_stderr(args.output.color)));
    }
    let mut report_failed = false;
    if let Some(destination) = destination {
        let bytes = serialize(&report, format)?;
        if let Err(error) = destination.commit(&bytes) {
            report_failed = true;
            keep_elsewhere(&error, &bytes, format);
        }
    }
    Ok(if scan.interrupted {
        exit_code::INTERRUPTED
    } else if scan.failed {
        exit_code::LEVEL_FAILED
    } else if report_failed {
        exit_code::OUTPUT_NOT_WRITABLE
    } else {
        0
    })
}

/// Options that cannot work together fail before the first level: a command that does not
/// change with the level, --trace, a bad profile or --runtime.
fn check_options(args: &ScaleArgs) -> Result<(), Error> {
    if !mentions_placeholder(&args.command) && args.env.is_none() {
        return Err(Error::Usage(
            "nothing in the command changes with the level: put {n} where it goes (e.g. \
             --threads {n}) or give --env NAME"
                .into(),
        ));
    }
    if args.output.trace.is_some() {
        return Err(Error::Usage(
            "--trace is for run and attach: scale runs many programs; trace the level you \
             want with concadvise run --trace"
                .into(),
        ));
    }
    check_advice_options(args)
}

/// What the scan runs: the command at each level, its repeats, where the level reports go.
fn plan_of(args: &ScaleArgs, files: LevelFiles) -> Plan {
    Plan {
        command: args.command.clone(),
        levels: args.levels.0.clone(),
        repeat: args.repeat,
        env: args.env.clone(),
        metric: args.metric.clone(),
        keep_going: args.keep_going,
        run_options: run_options(args),
        files,
        progress: !args.output.quiet && console::Term::stderr().is_term(),
    }
}

/// A malformed profile or an unknown --runtime fails before the first level, not in it.
fn check_advice_options(args: &ScaleArgs) -> Result<(), Error> {
    let profiles = ProfileSet::load(args.advice.profiles.as_deref())?;
    match &args.advice.runtime {
        Some(name) if profiles.get(name).is_none() => Err(Error::UnknownRuntime {
            name: name.clone(),
            known: profiles.names().iter().map(|n| n.to_string()).collect(),
        }),
        _ => Ok(()),
    }
}

/// The options every level's `concadvise run` gets.
fn run_options(args: &ScaleArgs) -> Vec<String> {
    let mut options = vec!["--rate".to_string(), args.rate.to_string()];
    if let Some(runtime) = &args.advice.runtime {
        options.extend(["--runtime".to_string(), runtime.clone()]);
    }
    if let Some(dir) = &args.advice.profiles {
        options.extend(["--profiles".to_string(), dir.display().to_string()]);
    }
    if args.leave_orphans {
        options.push("--leave-orphans".to_string());
    }
    options
}
