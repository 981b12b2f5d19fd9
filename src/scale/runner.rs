//! Runs the levels: one `concadvise run -q --report LEVEL-FILE -- COMMAND` child per level and repeat, the program's output teed and scanned for the metric.
//!
//! Each level is measured by the concadvise binary itself, as a child: the same measurement
//! as `run`, and a level that crashes or leaves processes behind cannot disturb the next.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use regex::Regex;

use super::levels::substitute;
use super::metric::{LineScan, Reading};
use crate::error::{exit_code, Error};
use crate::notice;
use crate::report::export::Format;
use crate::report::Report;
use crate::target::signals::SignalRelay;

/// Where each level's `run` report goes.
pub struct LevelFiles {
    dir: PathBuf,
    stem: String,
    format: Format,
    /// Kept after the scan (beside the scale report), or in a temporary directory removed
    /// at the end.
    temporary: Option<tempfile::TempDir>,
}

impl LevelFiles {
    /// Beside the scale report `path`: `NAME.N.EXT` for `NAME.EXT`.
    pub fn beside(path: &Path, format: Format) -> LevelFiles {
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let stem = path
            .file_stem()
            .map_or("scale".into(), |s| s.to_string_lossy().into_owned());
        LevelFiles {
            dir,
            stem,
            format,
            temporary: None,
        }
    }

    /// In a temporary directory, removed when the scan is done (no scale report is kept).
    pub fn temporary(format: Format) -> Result<LevelFiles, Error> {
        let temp = tempfile::Builder::new()
            .prefix("concadvise-scale-")
            .tempdir()
            .map_err(|e| Error::Setup(format!("cannot create a temporary directory: {e}")))?;
        Ok(LevelFiles {
            dir: temp.path().to_path_buf(),
            stem: "scale".into(),
            format,
            temporary: Some(temp),
        })
    }

    pub fn kept(&self) -> bool {
        self.temporary.is_none()
    }

    /// `NAME.4.toml`, or `NAME.4.r2.toml` for the second run of level 4 under --repeat.
    fn name(&self, n: u32, run: Option<u32>) -> String {
        let run = run.map_or(String::new(), |r| format!(".r{r}"));
        format!("{}.{n}{run}.{}", self.stem, self.format.extension())
    }
}

/// What to run, and how.
pub struct Plan {
    pub command: Vec<String>,
    /// Ascending: the order they run in.
    pub levels: Vec<u32>,
    pub repeat: u32,
    /// Also put the level in this environment variable.
    pub env: Option<String>,
    pub metric: Option<Regex>,
    pub keep_going: bool,
    /// Options every `concadvise run` gets (--rate, --runtime, --profiles, --leave-orphans).
    pub run_options: Vec<String>,
    pub files: LevelFiles,
    /// A line on stderr as each level starts and ends.
    pub progress: bool,
}

/// How one run of the program ended, as its report says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RunStatus {
    Ok,
    Failed,
    Interrupted,
}

/// A program that SIGINT killed was stopped by a Ctrl-C, even when the level's concadvise
/// noticed the signal too late to mark its report `interrupted` (its signal thread may not
/// have run yet when the program's exit was reaped, on a loaded machine).
const SIGINT: i32 = 2;

impl RunStatus {
    pub fn of(report: &Report) -> RunStatus {
        if report.target.interrupted || report.target.signal == Some(SIGINT) {
            RunStatus::Interrupted
        } else if report.target.exit_code != Some(0) || report.target.signal.is_some() {
            RunStatus::Failed
        } else {
            RunStatus::Ok
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// One run of the program at one level.
pub struct Run {
    pub report: Report,
    /// The number --metric read (absent without --metric, or when the run failed before
    /// printing one).
    pub metric: Option<f64>,
    /// The level report's file name (in the level files' directory).
    pub file: String,
    pub status: RunStatus,
}

pub struct Level {
    pub n: u32,
    pub runs: Vec<Run>,
}

impl Level {
    /// The worst status of its runs.
    pub fn status(&self) -> RunStatus {
        self.runs
            .iter()
            .map(|run| run.status)
            .max()
            .unwrap_or(RunStatus::Interrupted)
    }
}

pub struct Scan {
    pub levels: Vec<Level>,
    pub started_at: SystemTime,
    /// Stopped by Ctrl-C or a termination signal.
    pub interrupted: bool,
    /// Some level's program failed.
    pub failed: bool,
}

pub enum Outcome {
    Scanned(Scan),
    /// A level's `concadvise run` failed before measuring anything (its own one-line error
    /// is already on stderr): the exit code to end with.
    MeasurementFailed(u8),
}

/// Runs every level in order, stopping after the running level on an interrupt, and after
/// a failed level unless `keep_going`.
// Long because the level loop and its repeat loop share the interrupt and failure rules that
// end both; split, each would hand them back to the other.
pub fn scan(plan: &Plan) -> Result<Outcome, Error> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::Setup(format!("cannot find concadvise's own executable: {e}")))?;
    // Ctrl-C reaches the level's concadvise and program too (one process group); a signal
    // sent to this process alone is forwarded to the level's concadvise.
    let signals = SignalRelay::install()?;
    let started_at = SystemTime::now();
    let mut levels = Vec::new();
    let mut failed = false;
    for (index, &n) in plan.levels.iter().enumerate() {
        if signals.interrupted() {
            break;
        }
        if plan.progress {
            notice::line(&format!(
                "level {} of {}: N = {n}",
                index + 1,
                plan.levels.len()
            ));
        }
        let mut level = Level {
            n,
            runs: Vec::new(),
        };
        for repeat in 1..=plan.repeat {
            let run_index = (plan.repeat > 1).then_some(repeat);
            let run = match run_once(plan, &exe, n, run_index, &signals)? {
                Ok(run) => run,
                Err(code) => return Ok(Outcome::MeasurementFailed(code)),
            };
            if plan.progress {
                notice::line(&format!(
                    "  N = {n}: {} in {:.2} s",
                    run.status.name(),
                    run.report.time.wall_s
                ));
            }
            let status = run.status;
            level.runs.push(run);
            if status != RunStatus::Ok || signals.interrupted() {
                break;
            }
        }
        let status = level.status();
        levels.push(level);
        if status == RunStatus::Interrupted || signals.interrupted() {
            break;
        }
        if status == RunStatus::Failed {
            failed = true;
            if !plan.keep_going {
                break;
            }
        }
    }
    // A level can know of a Ctrl-C before this process's signal thread has counted it.
    let interrupted = signals.interrupted()
        || levels
            .last()
            .is_some_and(|level: &Level| level.status() == RunStatus::Interrupted);
    Ok(Outcome::Scanned(Scan {
        levels,
        started_at,
        interrupted,
        failed,
    }))
}

/// One `concadvise run` of the program at level `n`: the run, or the exit code to end with
/// when the measurement itself failed.
// Long because it is one child's life in order: spawn, tee its output, reap it, read its
// report and its metric.
fn run_once(
    plan: &Plan,
    exe: &Path,
    n: u32,
    run_index: Option<u32>,
    signals: &SignalRelay,
) -> Result<Result<Run, u8>, Error> {
    let file = plan.files.name(n, run_index);
    let path = plan.files.dir.join(&file);
    // A report left by an earlier scan must not pass for this run's.
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::Report {
                path,
                reason: format!("cannot replace it: {e}"),
            })
        }
        _ => {}
    }
    let mut child = level_command(plan, exe, n, &path);
    let mut child = child
        .spawn()
        .map_err(|e| Error::Setup(format!("cannot start {}: {e}", exe.display())))?;
    signals.forward_to(child.id() as i32);
    let latest = Arc::new(Mutex::new(Reading::NoMatch));
    let mut tees: Vec<JoinHandle<()>> = Vec::new();
    if let Some(regex) = &plan.metric {
        let scan = || LineScan::new(regex.clone(), Arc::clone(&latest));
        if let Some(out) = child.stdout.take() {
            tees.push(tee(out, std::io::stdout, scan()));
        }
        if let Some(err) = child.stderr.take() {
            tees.push(tee(err, std::io::stderr, scan()));
        }
    }
    let status = child.wait();
    // The child is reaped: its PID may be reused from now on.
    signals.forward_to(0);
    finish_tees(tees);
    let status =
        status.map_err(|e| Error::Setup(format!("waiting for level {n}'s run failed: {e}")))?;
    let report = match crate::report::read::load(&path) {
        Ok(report) => report,
        // No report: concadvise run said why on stderr (command not found, ...).
        Err(_) => {
            let code = match status.code() {
                Some(code @ (126 | 127)) => code as u8,
                _ => exit_code::FAILURE,
            };
            return Ok(Err(code));
        }
    };
    let status = RunStatus::of(&report);
    let reading = std::mem::take(&mut *latest.lock().unwrap_or_else(PoisonError::into_inner));
    let metric = match &plan.metric {
        Some(regex) => metric_of(reading, status, regex, n)?,
        None => None,
    };
    Ok(Ok(Run {
        report,
        metric,
        file,
        status,
    }))
}

/// `concadvise run -q --report PATH [options] -- COMMAND-at-n`, its output piped for --metric.
fn level_command(plan: &Plan, exe: &Path, n: u32, path: &Path) -> Command {
    let mut child = Command::new(exe);
    child
        .args(["run", "-q", "--report"])
        .arg(path)
        .args(&plan.run_options)
        .arg("--")
        .args(substitute(&plan.command, n))
        // Each level is a fresh run of the same program: there is no one input to give them all.
        .stdin(Stdio::null());
    if let Some(name) = &plan.env {
        child.env(name, n.to_string());
    }
    if plan.metric.is_some() {
        child.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    child
}

/// The number --metric read; a run that ended well must have printed one.
fn metric_of(
    reading: Reading,
    status: RunStatus,
    regex: &Regex,
    n: u32,
) -> Result<Option<f64>, Error> {
    let missing = |captured: Option<String>| Error::Metric {
        level: n,
        regex: regex.to_string(),
        captured,
    };
    match (reading, status) {
        (Reading::Number(value), _) => Ok(Some(value)),
        (_, RunStatus::Failed | RunStatus::Interrupted) => Ok(None),
        (Reading::NotANumber(text), RunStatus::Ok) => Err(missing(Some(text))),
        (Reading::NoMatch, RunStatus::Ok) => Err(missing(None)),
    }
}

/// How long the output copies may go on after the level's concadvise exited (a process the
/// program left running, with --leave-orphans, may hold the pipes open for ever).
const TEE_GRACE: Duration = Duration::from_secs(2);

/// Waits for the copies of the output to reach its end, or for `TEE_GRACE`; copies still
/// running then go on in the background.
fn finish_tees(tees: Vec<JoinHandle<()>>) {
    let deadline = Instant::now() + TEE_GRACE;
    while tees.iter().any(|tee| !tee.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    for tee in tees.into_iter().filter(JoinHandle::is_finished) {
        let _ = tee.join();
    }
}

/// Copies the child's output to ours as it arrives, and feeds it to the metric scan.
fn tee<W: Write + 'static>(
    mut source: impl Read + Send + 'static,
    sink: fn() -> W,
    mut scan: LineScan,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        loop {
            let read = match source.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let chunk = &buffer[..read];
            // A closed stdout of ours must not block the program: keep draining its pipe.
            let mut out = sink();
            let _ = out.write_all(chunk).and_then(|()| out.flush());
            scan.feed(chunk);
        }
        scan.finish();
    })
}
