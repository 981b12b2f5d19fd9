//! `concadvise show`: print a saved report as the live summary did, as TOML/JSON, or as an HTML page.

use crate::cli::ShowArgs;
use crate::error::Error;
use crate::report::read::load;
use crate::report::terminal::{render, Look};
use crate::report::write::to_stdout;

pub fn show(args: ShowArgs) -> Result<u8, Error> {
    let report = load(&args.report)?;
    let bytes = match args.format {
        None if args.html => crate::report::html::render(&report).into_bytes(),
        Some(format) => format
            .exporter()
            .serialize(&report)
            .map_err(|e| Error::Setup(format!("{e:#}")))?,
        None => render(&report, Look::for_stdout(args.color)).into_bytes(),
    };
    to_stdout(&bytes)?;
    Ok(0)
}
