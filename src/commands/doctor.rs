//! `concadvise doctor`: what this machine and this user allow before a measurement, as text or JSON.

use crate::cli::{DoctorArgs, TextFormat};
use crate::doctor::{examine, render::render};
use crate::error::{exit_code, Error};
use crate::report::terminal::Look;
use crate::report::write::Destination;

pub fn doctor(args: DoctorArgs) -> Result<u8, Error> {
    let diagnosis = examine(args.pid)?;
    let bytes = match args.format {
        TextFormat::Text => render(&diagnosis, Look::for_stdout(args.color)).into_bytes(),
        TextFormat::Json => super::json_bytes(&diagnosis, "diagnosis")?,
    };
    Destination::Stdout.commit(&bytes)?;
    Ok(if diagnosis.full_measurement {
        0
    } else {
        exit_code::LIMITED
    })
}
