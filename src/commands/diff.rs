//! `concadvise diff`: compare two saved reports, before and after a change.

use crate::cli::{DiffArgs, TextFormat};
use crate::error::Error;
use crate::report::diff::{compare, render};
use crate::report::read::load;
use crate::report::terminal::Look;
use crate::report::write::to_stdout;

pub fn diff(args: DiffArgs) -> Result<u8, Error> {
    let before = load(&args.before)?;
    let after = load(&args.after)?;
    let comparison = compare(&before, &after, args.same_work);
    let bytes = match args.format {
        TextFormat::Text => render(&comparison, Look::for_stdout(args.color)).into_bytes(),
        TextFormat::Json => super::json_bytes(&comparison, "comparison")?,
    };
    to_stdout(&bytes)?;
    Ok(0)
}
