//! The errors concadvise reports itself, each with the one-line message and exit code it ends with.

use std::path::PathBuf;

/// Exit codes. `run` passes the program's own code through, so its own failures use the
/// coreutils convention (125, 126, 127); the other commands have one code per kind of failure.
pub mod exit_code {
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NO_SUCH_PROCESS: u8 = 3;
    pub const NOT_PERMITTED: u8 = 4;
    pub const BAD_INPUT_FILE: u8 = 5;
    pub const OUTPUT_NOT_WRITABLE: u8 = 6;
    pub const RUN_FAILED: u8 = 125;
    pub const NOT_EXECUTABLE: u8 = 126;
    pub const NOT_FOUND: u8 = 127;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("command not found: {0} (check the spelling, or give its path)")]
    CommandNotFound(String),
    #[error("cannot execute {0}: permission denied (is it a directory, or missing chmod +x?)")]
    CommandNotExecutable(String),
    #[error("cannot start {command}: {reason}")]
    Spawn { command: String, reason: String },
    #[error("cannot write the report to {}: {reason}", path.display())]
    ReportPath { path: PathBuf, reason: String },
    #[error("cannot write the report to {}: {reason}", path.display())]
    ReportWrite { path: PathBuf, reason: String },
    #[error("{0}")]
    Setup(String),
}

impl Error {
    /// The exit code for this error; `in_run` when the exit code space is the program's.
    pub fn exit_code(&self, in_run: bool) -> u8 {
        use exit_code::*;
        match self {
            Error::CommandNotFound(_) => NOT_FOUND,
            Error::CommandNotExecutable(_) => NOT_EXECUTABLE,
            _ if in_run => RUN_FAILED,
            Error::ReportPath { .. } | Error::ReportWrite { .. } => OUTPUT_NOT_WRITABLE,
            Error::Spawn { .. } | Error::Setup(_) => FAILURE,
        }
    }
}
