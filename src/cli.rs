//! The command line, as clap definitions only.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::analysis::thread_timeline::{DEFAULT_EVENT_BUDGET, MIN_EVENT_BUDGET};
use crate::report::export::Format;
use crate::report::terminal::ColorChoice;

#[derive(Debug, Parser)]
#[command(
    name = "concadvise",
    version = crate::VERSION,
    about = "Measure where a program's time goes and whether processes, threads or async would help",
    long_about = "Measure where a program's time goes (on a CPU, waiting for one, or off the CPU \
                  on disk, network, pipes, locks, timers...) across its whole process tree, \
                  classify the workload, and recommend a concurrency model (multiprocessing, \
                  threads, async or none) with the measured reasons.\n\n\
                  Linux only: it reads /proc."
)]
#[command(
    after_help = "Examples:\n  concadvise run -- ./myprog --flag input.dat\n  \
                  concadvise attach 4242 --duration 30s --report svc.toml\n  \
                  concadvise show --html svc.toml > svc.html"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a program and measure its whole process tree until it exits.
    #[command(
        after_help = "Examples:\n  concadvise run -- ./myprog --flag input.dat\n  \
                      concadvise run --report before.toml -- python3 etl.py\n  \
                      concadvise run --trace trace.json -- python3 app.py   \
                      (then open trace.json in ui.perfetto.dev)\n\n\
                      Exit status: the program's own (also when the report could not be \
                      written at the end: a line on stderr names where it was saved instead); \
                      128+N if it died of signal N; 127 if the command was not found, 126 if it \
                      could not be executed, 125 if concadvise itself failed (nothing was run); \
                      2 for usage errors."
    )]
    Run(RunArgs),
    /// Measure a process that is already running, and its descendants, without disturbing it.
    #[command(after_help = "Examples:\n  concadvise attach 4242\n  \
                      concadvise attach 4242 --duration 30s --report svc.toml\n  \
                      concadvise attach --name gunicorn\n\n\
                      Stops at --duration, at Ctrl-C, or when the process exits; the process is \
                      only read from /proc, never stopped, traced or signalled.\n\n\
                      Exit status: 0 when measured; 3 if no such process; 4 if it may not be \
                      measured (concadvise itself, an ancestor such as its shell or init, a \
                      kernel thread); 5 for a malformed profile; 6 if the report or the trace \
                      cannot be written (checked before attaching; at the end the report is \
                      saved elsewhere); 2 for usage errors.")]
    Attach(AttachArgs),
    /// Print a saved report as the live summary, convert it (--format json), or make a page to
    /// share (--html).
    #[command(after_help = "Examples:\n  concadvise show before.toml\n  \
                      concadvise show --html before.toml > report.html\n  \
                      concadvise show --format json before.toml\n\n\
                      Exit status: 0; 5 if the file is missing, not TOML/JSON, not a \
                      concadvise report (or a number in it is out of range), over 64 MiB, or \
                      from a newer concadvise; 6 if stdout cannot be written.")]
    Show(ShowArgs),
    /// List the runtime profiles in force and where each came from, or show one.
    #[command(
        after_help = "Profiles are read from the binary (built-in), then from \
                      ~/.config/concadvise/profiles/*.toml, then from --profiles DIR; a file \
                      whose name matches a profile replaces it.\n\n\
                      Exit status: 0; 5 for a malformed or unreadable profile (the error names \
                      the file, line and key), or two files of one directory with the same \
                      name; 2 for an unknown profile name; 6 if stdout cannot be written."
    )]
    Profiles(ProfilesArgs),
    /// Compare two saved reports: before and after a change.
    #[command(
        after_help = "Examples:\n  concadvise run --report before.toml -- ./job\n  \
                      (change the code)\n  concadvise run --report after.toml -- ./job\n  \
                      concadvise diff before.toml after.toml\n  \
                      concadvise diff --format json before.toml after.toml\n\n\
                      A wall-time change under 5% (10% if either run waited for a CPU over \
                      10% of its time) or under 50 ms is called run-to-run noise.\n\n\
                      Exit status: 0; 5 if a file is not a readable report; 6 if stdout cannot \
                      be written."
    )]
    Diff(DiffArgs),
    /// Check what this machine and this user allow before measuring: /proc, ptrace, cgroup
    /// counters, the open-file limit, the Python stack reader.
    #[command(
        after_help = "Examples:\n  concadvise doctor\n  concadvise doctor 4242\n  \
                      concadvise doctor 4242 --format json\n\n\
                      One line per check: ok, limited (a measurement works but loses what the \
                      line says) or missing (that part cannot be measured), with what to do.\n\n\
                      Exit status: 0 when a full measurement is possible; 7 when a check is \
                      limited or missing; 3 if no such process; 2 for usage errors."
    )]
    Doctor(DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Examples:\n  \
                      concadvise completions bash > ~/.local/share/bash-completion/completions/concadvise\n  \
                      concadvise completions zsh > ~/.zfunc/_concadvise\n  \
                      concadvise completions fish > ~/.config/fish/completions/concadvise.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout, or write every page into a directory.
    #[command(after_help = "Examples:\n  concadvise man | man -l -\n  \
                      concadvise man run | man -l -\n  \
                      concadvise man --dir ~/.cargo/share/man/man1")]
    Man(ManArgs),
    /// Run a program at several concurrency levels, fit the scaling laws, find where it peaks.
    #[command(after_help = "Examples:\n  \
                      concadvise scale --levels 1,2,4,8,16 -- ./crawler --workers {\x1b[1mn\x1b[22m} urls.txt\n  \
                      concadvise scale --levels 1..8 --metric 'tps = ([0-9.]+)' -- pgbench -c {\x1b[1mn\x1b[22m} -j 2 -T 5 bench\n  \
                      concadvise scale --levels 1,2,4 --env WORKERS -- python3 etl.py\n  \
                      concadvise scale --report scale.toml ...; concadvise show scale.toml\n\n\
                      {\x1b[1mn\x1b[22m} in any argument is replaced by the level. Each level is one \
                      `concadvise run` of the command; its report is written beside the scale \
                      report as NAME.N.toml. Throughput is 1 / wall time (the same work at \
                      every level) or, with --metric, the number the program prints.\n\n\
                      Exit status: 0; 8 if a level's program failed; 9 if --metric matched \
                      nothing at a level; 130 if interrupted (the levels done are still \
                      reported); 6 if the report cannot be written; 5 for a malformed profile; \
                      127/126 if the command was not found / not executable; 2 for usage \
                      errors; 1 if concadvise failed otherwise.")]
    Scale(ScaleArgs),
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Check for this running process (and its descendants); without it, for your own
    /// processes and `concadvise run`.
    pub pid: Option<i32>,
    #[arg(long, value_enum, default_value_t)]
    pub format: TextFormat,
    /// Colour in the text output.
    #[arg(long, value_enum, default_value_t, value_name = "WHEN")]
    pub color: ColorChoice,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The page of this subcommand (concadvise-COMMAND(1)) instead of concadvise(1).
    #[arg(value_name = "COMMAND", conflicts_with = "dir")]
    pub command: Option<String>,
    /// Write concadvise.1 and a concadvise-COMMAND.1 for each subcommand into this directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The concurrency levels: a list and inclusive ranges (1,2,4,8 or 1..8 or 1..4,8,16), run
    /// in ascending order.
    #[arg(long, value_name = "LIST", value_parser = crate::scale::levels::parse_levels)]
    pub levels: crate::scale::levels::Levels,
    // clap turns a literal "{n}" in help into a newline: the braces are written around a bold n.
    #[arg(long, value_name = "NAME", value_parser = parse_env_name,
          help = "Also put the level in this environment variable (as well as in {\x1b[1mn\x1b[22m})")]
    pub env: Option<String>,
    /// Read throughput from the program's stdout or stderr: the first capture group of the
    /// last line matching REGEX (for programs that run for a fixed time).
    #[arg(long, value_name = "REGEX", value_parser = crate::scale::metric::parse_metric)]
    pub metric: Option<regex::Regex>,
    /// Runs per level (more runs give the noise band).
    #[arg(long, value_name = "K", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Go on to the next level after one whose program failed (default: stop there).
    #[arg(long)]
    pub keep_going: bool,
    /// Samples per second (1 to 1000).
    #[arg(long, value_name = "HZ", default_value_t = 100.0, value_parser = parse_rate,
          help_heading = "Sampling")]
    pub rate: f64,
    #[command(flatten)]
    pub advice: AdviceArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Stop measuring a level when the program exits, even if processes it started still run.
    #[arg(long, help_heading = "Process tree")]
    pub leave_orphans: bool,
    #[arg(
        help = "The program to run and its arguments (after --), with {\x1b[1mn\x1b[22m} where \
                the level goes",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The report file (TOML or JSON).
    pub report: PathBuf,
    /// Print the report in this format instead of the summary.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Print the report as one self-contained HTML page (inline CSS and SVG, no scripts).
    #[arg(long, conflicts_with = "format")]
    pub html: bool,
    /// Colour in the summary.
    #[arg(long, value_enum, default_value_t, value_name = "WHEN")]
    pub color: ColorChoice,
}

#[derive(Debug, Args)]
pub struct ProfilesArgs {
    #[command(subcommand)]
    pub action: Option<ProfilesAction>,
    /// Read more profiles from this directory (*.toml).
    #[arg(long, value_name = "DIR", global = true)]
    pub profiles: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ProfilesAction {
    /// Print one profile's TOML.
    Show {
        /// The profile's name (python, node, jvm, go, native...).
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The report from before the change.
    pub before: PathBuf,
    /// The report from after the change.
    pub after: PathBuf,
    /// The two runs did the same work even though their commands differ (check the
    /// before-run's expected speedup against the measured wall-time ratio).
    #[arg(long)]
    pub same_work: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: TextFormat,
    /// Colour in the text output.
    #[arg(long, value_enum, default_value_t, value_name = "WHEN")]
    pub color: ColorChoice,
}

/// Text for people, JSON for scripts (`diff`, `doctor`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TextFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// PID of the process to measure.
    #[arg(required_unless_present = "name", conflicts_with = "name")]
    pub pid: Option<i32>,
    /// Find the process by name (command name, program file name, or script name) instead.
    #[arg(long, value_name = "NAME", value_parser = clap::value_parser!(OsString))]
    pub name: Option<OsString>,
    /// Stop after this long (500ms, 30s, 2m; at most 365 days); default: until Ctrl-C or the
    /// process exits.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub advice: AdviceArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub advice: AdviceArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Stop measuring when the program exits, even if processes it started still run
    /// (daemons, background jobs). By default they are followed until they exit.
    #[arg(long, help_heading = "Process tree")]
    pub leave_orphans: bool,
    /// The program to run and its arguments (put them after --), passed on byte for byte
    /// (they need not be UTF-8). An option concadvise does not know, before the command, is
    /// a usage error, not the command.
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "COMMAND",
        value_parser = clap::value_parser!(OsString)
    )]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Sampling")]
pub struct SamplingArgs {
    /// Samples per second (1 to 1000).
    #[arg(long, value_name = "HZ", default_value_t = 100.0, value_parser = parse_rate)]
    pub rate: f64,
    /// Also write every raw sample to this file, one JSON object per tick (for fixtures).
    #[arg(long, value_name = "PATH")]
    pub record_samples: Option<PathBuf>,
    /// Do not read Python stacks (by default concadvise reads the stacks of CPython
    /// processes, to name the functions and lines behind the verdict).
    #[arg(long)]
    pub no_stacks: bool,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Advice")]
pub struct AdviceArgs {
    /// Advise for this runtime's profile instead of the detected one (python, node, jvm, go,
    /// native, or a profile you added).
    #[arg(long, value_name = "NAME")]
    pub runtime: Option<String>,
    /// Read more profiles from this directory (*.toml); one named like a built-in replaces it.
    #[arg(long, value_name = "DIR")]
    pub profiles: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Write the report to this file ("-" for stdout): a regular file (a symlink is followed),
    /// checked before the program starts, written at the end.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Report format [default: json for a .json file, else toml].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Also write each thread's states over time to this file as a Chrome/Perfetto trace
    /// (JSON; "-" for stdout). Open it in ui.perfetto.dev or chrome://tracing.
    #[arg(long, value_name = "PATH")]
    pub trace: Option<PathBuf>,
    /// Events the trace (and the report's per-thread timeline) may hold: past it, the shortest
    /// stretches are merged into their neighbours.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_EVENT_BUDGET,
          value_parser = parse_event_budget)]
    pub trace_events: usize,
    /// Print neither the progress line nor the summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Colour in the summary.
    #[arg(long, value_enum, default_value_t, value_name = "WHEN")]
    pub color: ColorChoice,
}

/// The longest `attach --duration`: a year is longer than any measurement, and shorter than
/// what a clock can add without overflowing.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// A human duration ("500ms", "30s", "1h 30m"), more than zero and at most `MAX_DURATION`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| {
        format!("{text:?} is not a duration ({e}): write it like 500ms, 30s, 2m or 1h")
    })?;
    if duration.is_zero() {
        Err("a zero duration measures nothing: give at least 1ms".into())
    } else if duration > MAX_DURATION {
        Err(format!("{text:?} is too long: at most 365 days"))
    } else {
        Ok(duration)
    }
}

/// An environment variable's name: letters, digits and _, not starting with a digit.
fn parse_env_name(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && !text.starts_with(|c: char| c.is_ascii_digit())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{text:?} is not an environment variable name: use letters, digits and _"
        ))
    }
}

/// Samples per second, 1 to 1000.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of samples per second"))?;
    if (1.0..=1000.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} Hz is out of range: use 1 to 1000"))
    }
}

fn parse_event_budget(text: &str) -> Result<usize, String> {
    let budget: usize = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of events"))?;
    if budget >= MIN_EVENT_BUDGET {
        Ok(budget)
    } else {
        Err(format!(
            "{budget} events is too few: use at least {MIN_EVENT_BUDGET}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn everything_after_the_double_dash_is_the_command() {
        let cli = Cli::parse_from([
            "concadvise",
            "run",
            "--rate",
            "50",
            "--",
            "ls",
            "-l",
            "--all",
        ]);
        let Command::Run(args) = cli.command else {
            panic!("parsed as another subcommand")
        };
        assert_eq!(args.command, ["ls", "-l", "--all"]);
        assert_eq!(args.sampling.rate, 50.0);
        assert!(Cli::try_parse_from(["concadvise", "run", "--rate", "0", "--", "ls"]).is_err());
    }

    #[test]
    fn scale_takes_levels_a_metric_and_the_command() {
        let cli = Cli::parse_from([
            "concadvise",
            "scale",
            "--levels",
            "1..3,8",
            "--metric",
            "tps = ([0-9.]+)",
            "--",
            "pgbench",
            "-c",
            "{n}",
        ]);
        let Command::Scale(args) = cli.command else {
            panic!("parsed as another subcommand")
        };
        assert_eq!(args.levels.0, [1, 2, 3, 8]);
        assert_eq!(args.metric.unwrap().as_str(), "tps = ([0-9.]+)");
        assert_eq!(args.command, ["pgbench", "-c", "{n}"]);
        assert_eq!(args.repeat, 1);
        for bad in [
            &["--levels", "0,1"][..],
            &["--levels", "1,2", "--metric", "no group"],
            &["--levels", "1,2", "--env", "1X"],
            &["--levels", "1,2", "--repeat", "0"],
        ] {
            let mut argv = vec!["concadvise", "scale"];
            argv.extend_from_slice(bad);
            argv.extend_from_slice(&["--", "ls"]);
            assert!(Cli::try_parse_from(&argv).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn attach_takes_a_pid_or_a_name_and_human_durations() {
        let cli = Cli::parse_from(["concadvise", "attach", "42", "--duration", "1m30s"]);
        let Command::Attach(args) = cli.command else {
            panic!("parsed as another subcommand")
        };
        assert_eq!(args.pid, Some(42));
        assert_eq!(args.duration, Some(std::time::Duration::from_secs(90)));
        assert!(Cli::try_parse_from(["concadvise", "attach"]).is_err());
        assert!(Cli::try_parse_from(["concadvise", "attach", "42", "--name", "x"]).is_err());
        assert!(Cli::try_parse_from(["concadvise", "attach", "42", "--duration", "soon"]).is_err());
        for bad in ["300000000000y", "366d", "0s", ""] {
            let error = parse_duration(bad).unwrap_err();
            assert!(!error.contains('\n'), "{error}");
        }
        assert_eq!(parse_duration("365d"), Ok(MAX_DURATION));
    }

    #[test]
    fn doctor_takes_an_optional_pid_and_a_format() {
        let cli = Cli::parse_from(["concadvise", "doctor", "42", "--format", "json"]);
        let Command::Doctor(args) = cli.command else {
            panic!("parsed as another subcommand")
        };
        assert_eq!(args.pid, Some(42));
        assert_eq!(args.format, TextFormat::Json);
        let cli = Cli::parse_from(["concadvise", "doctor"]);
        assert!(matches!(
            cli.command,
            Command::Doctor(DoctorArgs { pid: None, .. })
        ));
        assert!(Cli::try_parse_from(["concadvise", "doctor", "x"]).is_err());
    }
}
