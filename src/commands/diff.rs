//! `concadvise diff`: compare two saved reports (of runs, or of scale scans), before and after a change.

use std::path::Path;

use crate::cli::{DiffArgs, TextFormat};
use crate::error::Error;
use crate::report::diff::{compare, render};
use crate::report::read::{input_error, parse, read_report_text};
use crate::report::terminal::Look;
use crate::report::write::to_stdout;
use crate::scale;

pub fn diff(args: DiffArgs) -> Result<u8, Error> {
    let before = read_report_text(&args.before)?;
    let after = read_report_text(&args.after)?;
    let look = Look::for_stdout(args.color);
    let bytes = match (
        scale::report::is_scale(&before),
        scale::report::is_scale(&after),
    ) {
        (true, true) => {
            let load = |text: &str, path: &Path| {
                scale::report::parse(text).map_err(|reason| input_error(path, reason))
            };
            let comparison =
                scale::diff::compare(&load(&before, &args.before)?, &load(&after, &args.after)?);
            match args.format {
                TextFormat::Text => scale::diff::render(&comparison, look).into_bytes(),
                TextFormat::Json => super::json_bytes(&comparison, "comparison")?,
            }
        }
        (false, false) => {
            let load =
                |text: &str, path: &Path| parse(text).map_err(|reason| input_error(path, reason));
            let comparison = compare(
                &load(&before, &args.before)?,
                &load(&after, &args.after)?,
                args.same_work,
            );
            match args.format {
                TextFormat::Text => render(&comparison, look).into_bytes(),
                TextFormat::Json => super::json_bytes(&comparison, "comparison")?,
            }
        }
        (before_is_scale, _) => {
            let (scale_path, run_path) = if before_is_scale {
                (&args.before, &args.after)
            } else {
                (&args.after, &args.before)
            };
            return Err(input_error(
                run_path,
                format!(
                    "it is a run report and {} a scale report: diff compares two run reports \
                     or two scale reports",
                    scale_path.display()
                ),
            ));
        }
    };
    to_stdout(&bytes)?;
    Ok(0)
}
