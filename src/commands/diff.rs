//! `concadvise diff`: compare two saved reports, before and after a change (two runs, or two scale scans).

use std::path::Path;

use serde::Serialize;

use crate::cli::{DiffArgs, DiffFormat};
use crate::error::Error;
use crate::report::diff::{compare, render};
use crate::report::read::{input_error, parse, read_text};
use crate::report::terminal::Look;
use crate::report::write::Destination;
use crate::scale;

pub fn diff(args: DiffArgs) -> Result<u8, Error> {
    let before = read_text(&args.before)?;
    let after = read_text(&args.after)?;
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
                DiffFormat::Text => scale::diff::render(&comparison, look).into_bytes(),
                DiffFormat::Json => json(&comparison)?,
            }
        }
        (false, false) => {
            let load =
                |text: &str, path: &Path| parse(text).map_err(|reason| input_error(path, reason));
            let comparison = compare(&load(&before, &args.before)?, &load(&after, &args.after)?);
            match args.format {
                DiffFormat::Text => render(&comparison, look).into_bytes(),
                DiffFormat::Json => json(&comparison)?,
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
                    "it is a run report and {} a scale report: diff compares two run reports or two scale reports",
                    scale_path.display()
                ),
            ));
        }
    };
    Destination::Stdout.commit(&bytes)?;
    Ok(0)
}

fn json(comparison: &impl Serialize) -> Result<Vec<u8>, Error> {
    let mut bytes = serde_json::to_vec_pretty(comparison)
        .map_err(|e| Error::Setup(format!("serialising the comparison: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}
