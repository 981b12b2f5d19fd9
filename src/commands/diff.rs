//! `concadvise diff`: compare two saved reports, before and after a change.

use crate::cli::{DiffArgs, DiffFormat};
use crate::error::Error;
use crate::report::diff::{compare, render};
use crate::report::read::load;
use crate::report::terminal::Look;
use crate::report::write::to_stdout;

pub fn diff(args: DiffArgs) -> Result<u8, Error> {
    let before = load(&args.before)?;
    let after = load(&args.after)?;
    let comparison = compare(&before, &after);
    let bytes = match args.format {
        DiffFormat::Text => render(&comparison, Look::for_stdout(args.color)).into_bytes(),
        DiffFormat::Json => {
            let mut bytes = serde_json::to_vec_pretty(&comparison)
                .map_err(|e| Error::Setup(format!("serialising the comparison: {e}")))?;
            bytes.push(b'\n');
            bytes
        }
    };
    to_stdout(&bytes)?;
    Ok(0)
}
