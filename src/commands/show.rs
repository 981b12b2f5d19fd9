//! `concadvise show`: print a saved report (of a run, or of a scale scan) as the live summary did, or as TOML/JSON.

use crate::cli::ShowArgs;
use crate::error::Error;
use crate::report::read::{input_error, parse, read_text};
use crate::report::terminal::{render, Look};
use crate::report::write::Destination;
use crate::scale;

pub fn show(args: ShowArgs) -> Result<u8, Error> {
    let text = read_text(&args.report)?;
    let look = Look::for_stdout(args.color);
    let bytes = if scale::report::is_scale(&text) {
        let report =
            scale::report::parse(&text).map_err(|reason| input_error(&args.report, reason))?;
        match args.format {
            Some(format) => scale::report::serialize(&report, format)?,
            None => scale::summary::render(&report, look).into_bytes(),
        }
    } else {
        let report = parse(&text).map_err(|reason| input_error(&args.report, reason))?;
        match args.format {
            Some(format) => format
                .exporter()
                .serialize(&report)
                .map_err(|e| Error::Setup(format!("{e:#}")))?,
            None => render(&report, look).into_bytes(),
        }
    };
    Destination::Stdout.commit(&bytes)?;
    Ok(0)
}
