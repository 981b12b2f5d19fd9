//! The concadvise binary: parse the command line, run the subcommand, exit with its code.

use std::process::ExitCode;

use clap::Parser;
use concadvise::cli::Cli;

fn main() -> ExitCode {
    ExitCode::from(concadvise::commands::dispatch(Cli::parse()))
}
