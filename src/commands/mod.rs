//! One module per subcommand; `dispatch` runs one and turns its outcome into an exit code.

pub mod attach;
pub mod diff;
pub mod profiles;
pub mod run;
pub mod scale;
mod session;
pub mod show;

use crate::cli::{Cli, Command};

/// Runs the subcommand; errors are printed here as one line.
pub fn dispatch(cli: Cli) -> u8 {
    let (result, in_run) = match cli.command {
        Command::Run(args) => (run::run(args), true),
        Command::Attach(args) => (attach::attach(args), false),
        Command::Show(args) => (show::show(args), false),
        Command::Diff(args) => (diff::diff(args), false),
        Command::Profiles(args) => (profiles::profiles(args), false),
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
