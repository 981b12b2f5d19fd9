//! One module per subcommand; `dispatch` runs one and turns its outcome into an exit code.

pub mod attach;
pub mod completions;
pub mod diff;
pub mod doctor;
pub mod man;
pub mod profiles;
pub mod run;
pub mod scale;
mod session;
pub mod show;

use crate::cli::{Cli, Command};
use crate::error::Error;

/// Runs the subcommand; errors are printed here as one line.
pub fn dispatch(cli: Cli) -> u8 {
    let (result, in_run) = match cli.command {
        Command::Run(args) => (run::run(args), true),
        Command::Attach(args) => (attach::attach(args), false),
        Command::Show(args) => (show::show(args), false),
        Command::Diff(args) => (diff::diff(args), false),
        Command::Profiles(args) => (profiles::profiles(args), false),
        Command::Doctor(args) => (doctor::doctor(args), false),
        Command::Completions { shell } => (completions::completions(shell), false),
        Command::Man(args) => (man::man(args), false),
        Command::Scale(args) => (scale::scale(args), false),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            crate::notice::line(&format!("error: {error}"));
            error.exit_code(in_run)
        }
    }
}

/// `value` as pretty JSON and a newline, for commands that print JSON on stdout.
fn json_bytes<T: serde::Serialize>(value: &T, what: &str) -> Result<Vec<u8>, Error> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Setup(format!("serialising the {what}: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}
