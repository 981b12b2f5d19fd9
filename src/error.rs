//! The errors concadvise reports itself, each with the one-line message and exit code it ends with.

use std::path::PathBuf;

/// Exit codes. `run` passes the program's own code through, so its own failures use the
/// coreutils convention (125, 126, 127); the other commands have one code per kind of failure.
pub mod exit_code {
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NO_SUCH_PROCESS: u8 = 3;
    pub const REFUSED_TARGET: u8 = 4;
    pub const BAD_INPUT_FILE: u8 = 5;
    pub const OUTPUT_NOT_WRITABLE: u8 = 6;
    /// `doctor`: a check is limited or missing, so a measurement now would not be complete.
    pub const LIMITED: u8 = 7;
    /// scale: a level's program exited non-zero or was killed.
    pub const LEVEL_FAILED: u8 = 8;
    /// scale: --metric found no number in a level's output.
    pub const METRIC_NOT_FOUND: u8 = 9;
    /// scale: stopped by Ctrl-C (or SIGTERM, SIGHUP) before every level ran.
    pub const INTERRUPTED: u8 = 130;
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
    #[error("cannot write {}: {reason}", path.display())]
    Report { path: PathBuf, reason: String },
    #[error("cannot write to standard output: {0}")]
    Stdout(String),
    #[error("no process with PID {0} (check `ps`; it may have exited)")]
    NoSuchProcess(i32),
    #[error(
        "no process with PID {pid} visible here: /proc is mounted with hidepid={hidepid}, which \
         hides other users' processes (run as root or as the process's user)"
    )]
    HiddenProcess { pid: i32, hidepid: String },
    #[error("no process named {0:?} (check `ps -e`, or give its PID)")]
    NoProcessNamed(String),
    #[error(
        "several processes are named {name:?} ({}): give the PID",
        join_pids(pids)
    )]
    AmbiguousName { name: String, pids: Vec<i32> },
    #[error("will not attach to PID {pid}: {reason}")]
    RefusedTarget { pid: i32, reason: String },
    #[error("cannot read {}: {reason}", path.display())]
    InputFile { path: PathBuf, reason: String },
    #[error("profile {file}: line {line}: {}", keyed(key, problem))]
    Profile {
        file: String,
        line: usize,
        key: String,
        problem: String,
    },
    #[error("unknown runtime {name:?} for --runtime (profiles: {})", known.join(", "))]
    UnknownRuntime { name: String, known: Vec<String> },
    /// A wrong argument clap could not check itself.
    #[error("{0}")]
    Usage(String),
    #[error("level {level}: {}", metric_problem(regex, captured))]
    Metric {
        level: u32,
        regex: String,
        /// What the last matching line captured, when it was not a number.
        captured: Option<String>,
    },
    #[error("{0}")]
    Setup(String),
}

/// An I/O error's message without the "(os error N)" suffix, for one-line errors.
pub fn io_message(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

fn metric_problem(regex: &str, captured: &Option<String>) -> String {
    match captured {
        None => format!(
            "--metric {regex:?} matched no line of the program's output (check the regex \
             against what the program prints)"
        ),
        Some(text) => format!(
            "--metric {regex:?} captured {text:?}, which is not a number (capture only the \
             digits, e.g. ([0-9.]+))"
        ),
    }
}

fn keyed(key: &str, problem: &str) -> String {
    if key.is_empty() {
        problem.to_string()
    } else {
        format!("{key}: {problem}")
    }
}

fn join_pids(pids: &[i32]) -> String {
    let shown: Vec<String> = pids.iter().take(10).map(i32::to_string).collect();
    let more = pids.len().saturating_sub(10);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

impl Error {
    /// The exit code for this error; `in_run` when the exit code space is the program's.
    pub fn exit_code(&self, in_run: bool) -> u8 {
        use exit_code::*;
        match self {
            Error::CommandNotFound(_) => NOT_FOUND,
            Error::CommandNotExecutable(_) => NOT_EXECUTABLE,
            _ if in_run => RUN_FAILED,
            Error::Report { .. } | Error::Stdout(_) => OUTPUT_NOT_WRITABLE,
            Error::NoSuchProcess(_)
            | Error::HiddenProcess { .. }
            | Error::NoProcessNamed(_)
            | Error::AmbiguousName { .. } => NO_SUCH_PROCESS,
            Error::RefusedTarget { .. } => REFUSED_TARGET,
            Error::InputFile { .. } | Error::Profile { .. } => BAD_INPUT_FILE,
            Error::UnknownRuntime { .. } | Error::Usage(_) => USAGE,
            Error::Metric { .. } => METRIC_NOT_FOUND,
            Error::Spawn { .. } | Error::Setup(_) => FAILURE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_hidden_by_hidepid_is_no_such_process_with_the_reason() {
        let error = Error::HiddenProcess {
            pid: 42,
            hidepid: "invisible".into(),
        };
        assert_eq!(error.exit_code(false), exit_code::NO_SUCH_PROCESS);
        assert!(error.to_string().contains("hidepid=invisible"));
    }
}
