//! `concadvise show`: print a saved report (of a run, or of a scale scan) as the live summary did, as TOML/JSON, or as an HTML page.

use crate::cli::ShowArgs;
use crate::error::Error;
use crate::report::read::{input_error, parse, read_report_text};
use crate::report::terminal::{render, Look};
use crate::report::write::to_stdout;
use crate::scale;

pub fn show(args: ShowArgs) -> Result<u8, Error> {
    let text = read_report_text(&args.report)?;
    let look = Look::for_stdout(args.color);
    let bytes =
        if scale::report::is_scale(&text) {
            let report =
                scale::report::parse(&text).map_err(|reason| input_error(&args.report, reason))?;
            match args.format {
                None if args.html => return Err(input_error(
                    &args.report,
                    "it is a scale report, which --html does not draw: show it without --html, \
                     or show the report of one of its levels with --html"
                        .into(),
                )),
                Some(format) => scale::report::serialize(&report, format)?,
                None => scale::summary::render(&report, look).into_bytes(),
            }
        } else {
            let report = parse(&text).map_err(|reason| input_error(&args.report, reason))?;
            match args.format {
                None if args.html => crate::report::html::render(&report).into_bytes(),
                Some(format) => format
                    .exporter()
                    .serialize(&report)
                    .map_err(|e| Error::Setup(format!("{e:#}")))?,
                None => render(&report, look).into_bytes(),
            }
        };
    to_stdout(&bytes)?;
    Ok(0)
}
