//! `concadvise completions SHELL`: the shell completion script, generated from the command-line definition.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::Error;
use crate::report::write::Destination;

pub fn completions(shell: clap_complete::Shell) -> Result<u8, Error> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "concadvise", &mut script);
    Destination::Stdout.commit(&script)?;
    Ok(0)
}
