//! The stack source for CPython: the py-spy crate reads each interpreter's thread stacks from its memory, never pausing it.
//!
//! Attaching (`PythonSpy::new`) opens the executable and libpython to find the interpreter's
//! symbols, and fails until the interpreter has started: it runs on an attach thread of its
//! own, with retries up to a deadline, and hands the reader back. Reading (`get_stack_traces`)
//! only reads memory (and lists /proc/PID/task): it runs on the sampler's stack thread.
//!
//! The attach thread is the place that opens files; when the sampler gets a facility for such
//! work (issue 19: a helper thread, and nothing on a network or FUSE mount), attaching moves
//! onto it: `attach` is the one function to hand over.
//!
//! In py-spy's non-blocking mode CPython 3.11 and later record each thread's OS id; older
//! versions do not, so their stacks are joined to the process's main thread while the
//! process runs one Python thread, and left unread when it runs more.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use py_spy::config::{LineNo, LockingStrategy};
use py_spy::{Config, PythonSpy};

use super::python::{self, Interpreter, STACK_READER, STACK_READER_RANGE};
use super::runtime::detect;
use crate::profile::ProfileSet;
use crate::sampler::observation::ProcessInfo;
use crate::sampler::stacks::{
    thread_cpu_ns, Selector, StackFrame, StackNote, StackRead, StackSource, ThreadStack, Waker,
};

/// The name `[code] source` gives.
pub const SOURCE: &str = "py-spy";
/// Frames kept per stack, innermost first (a deep recursion is cut; the user's frame is
/// almost always among the innermost).
const MAX_FRAMES: usize = 48;
/// How long attaching is retried while the interpreter is not up yet.
const ATTACH_DEADLINE: Duration = Duration::from_secs(5);
const FIRST_RETRY: Duration = Duration::from_millis(20);
const LONGEST_RETRY: Duration = Duration::from_millis(500);
/// At most this many processes are read at once (a process pool's workers, a pipeline).
const MAX_FOLLOWED: usize = 16;
/// A process whose reads failed this many times in a row is given up.
const MAX_FAILURES_IN_A_ROW: u32 = 50;

/// The reason when the memory of the process may not be read.
pub const DENIED: &str = "ptrace access denied: attach as the process's user (where the kernel \
                          has Yama, with ptrace_scope 0) or as root (in a container, with \
                          CAP_SYS_PTRACE)";

/// Reads the stacks of the tree's CPython processes.
pub struct PySpySource {
    profiles: ProfileSet,
    processes: HashMap<i32, Followed>,
    attach: Option<Sender<(ProcessInfo, u64, Waker)>>,
    attached: (Sender<Attached>, Receiver<Attached>),
    /// Attaches asked for so far (numbers each one).
    attempts: u64,
    /// CPU time the attach thread spent, ns, and how much of it was reported.
    attach_cpu_ns: Arc<AtomicU64>,
    reported_attach_cpu_ns: u64,
    notes: Vec<StackNote>,
}

enum Followed {
    /// `attempt` tells this attach's result from an earlier one's for the same process (a
    /// process followed again after an exec, whose first attach may end after the second
    /// began).
    Attaching {
        start_ticks: u64,
        attempt: u64,
    },
    Reading(Box<Reader>),
}

struct Reader {
    spy: PythonSpy,
    /// CPython 3.11 or later: every thread's OS id is in its thread state.
    thread_ids: bool,
    failures_in_a_row: u32,
}

/// What the attach thread hands back for a process.
struct Attached {
    pid: i32,
    start_ticks: u64,
    attempt: u64,
    /// The reader and the note saying it is followed; or why not (`None`: it is not CPython
    /// after all, or it is gone, which needs no note).
    result: Result<(Reader, StackNote), Option<String>>,
}

impl PySpySource {
    pub fn new(profiles: &ProfileSet) -> PySpySource {
        PySpySource {
            profiles: profiles.clone(),
            processes: HashMap::new(),
            attach: None,
            attached: mpsc::channel(),
            attempts: 0,
            attach_cpu_ns: Arc::new(AtomicU64::new(0)),
            reported_attach_cpu_ns: 0,
            notes: Vec::new(),
        }
    }

    /// The attach thread's request channel, started at the first process.
    fn attacher(&mut self) -> Option<&Sender<(ProcessInfo, u64, Waker)>> {
        if self.attach.is_none() {
            let (requests, inbox) = mpsc::channel::<(ProcessInfo, u64, Waker)>();
            let results = self.attached.0.clone();
            let cpu = Arc::clone(&self.attach_cpu_ns);
            std::thread::Builder::new()
                .name("stacks-attach".into())
                .spawn(move || {
                    for (info, attempt, waker) in inbox {
                        let before = thread_cpu_ns();
                        let result = attach(&info);
                        cpu.fetch_add(thread_cpu_ns().saturating_sub(before), Ordering::Relaxed);
                        let attached = Attached {
                            pid: info.pid,
                            start_ticks: info.start_ticks,
                            attempt,
                            result,
                        };
                        if results.send(attached).is_err() {
                            return;
                        }
                        waker.wake();
                    }
                })
                .ok()?;
            self.attach = Some(requests);
        }
        self.attach.as_ref()
    }

    fn read_one(pid: i32, reader: &mut Reader, out: &mut StackRead) -> Option<StackNote> {
        let traces = match reader.spy.get_stack_traces() {
            Ok(traces) => traces,
            Err(error) => {
                out.failed.push(pid);
                reader.failures_in_a_row += 1;
                return (reader.failures_in_a_row >= MAX_FAILURES_IN_A_ROW).then(|| {
                    StackNote::Unavailable {
                        pid,
                        reason: format!(
                            "{SOURCE} failed {MAX_FAILURES_IN_A_ROW} reads in a row: {error:#}"
                        ),
                    }
                });
            }
        };
        reader.failures_in_a_row = 0;
        if !reader.thread_ids && traces.len() > 1 {
            return Some(StackNote::Unavailable {
                pid,
                reason: format!(
                    "CPython {} does not record its threads' OS ids, which a reader that never \
                     pauses the process needs to tell its {} threads apart (3.11 and later \
                     do): run it on CPython 3.11 or later for the code behind each thread",
                    reader.spy.version,
                    traces.len()
                ),
            });
        }
        for trace in traces {
            let tid = match trace.os_thread_id {
                Some(tid) => tid as i32,
                // One Python thread, before 3.11: the main thread.
                None if !reader.thread_ids => pid,
                None => continue,
            };
            let frames = trace
                .frames
                .into_iter()
                .take(MAX_FRAMES)
                .map(|frame| StackFrame {
                    function: frame.name,
                    file: frame.filename,
                    line: frame.line.max(0) as u32,
                })
                .collect();
            out.threads.push(ThreadStack { pid, tid, frames });
        }
        None
    }
}

impl StackSource for PySpySource {
    fn selector(&self) -> Selector {
        let profiles = self.profiles.clone();
        Box::new(move |info| detect(&profiles, info).name == "python")
    }

    fn follow(&mut self, info: ProcessInfo, waker: Waker) {
        let pid = info.pid;
        self.processes.remove(&pid);
        if self.processes.len() >= MAX_FOLLOWED {
            self.notes.push(StackNote::Unavailable {
                pid,
                reason: format!(
                    "{MAX_FOLLOWED} other Python processes were read already (the stack reads \
                     stay within concadvise's CPU budget)"
                ),
            });
            return;
        }
        let start_ticks = info.start_ticks;
        self.attempts += 1;
        let attempt = self.attempts;
        if let Some(attacher) = self.attacher() {
            if attacher.send((info, attempt, waker)).is_ok() {
                self.processes.insert(
                    pid,
                    Followed::Attaching {
                        start_ticks,
                        attempt,
                    },
                );
                self.notes.push(StackNote::Attaching { pid });
            }
        }
    }

    fn forget(&mut self, pid: i32) {
        self.processes.remove(&pid);
    }

    fn read(&mut self, out: &mut StackRead) {
        let mut given_up = Vec::new();
        for (&pid, followed) in &mut self.processes {
            if let Followed::Reading(reader) = followed {
                if let Some(note) = Self::read_one(pid, reader, out) {
                    given_up.push(pid);
                    self.notes.push(note);
                }
            }
        }
        for pid in given_up {
            self.processes.remove(&pid);
        }
    }

    fn news(&mut self, out: &mut StackRead) {
        while let Ok(attached) = self.attached.1.try_recv() {
            let current = matches!(
                self.processes.get(&attached.pid),
                Some(Followed::Attaching { start_ticks, attempt })
                    if *start_ticks == attached.start_ticks && *attempt == attached.attempt
            );
            if !current {
                // Forgotten, exec'd into another program meanwhile, or followed again.
                continue;
            }
            match attached.result {
                Ok((reader, note)) => {
                    self.processes
                        .insert(attached.pid, Followed::Reading(Box::new(reader)));
                    out.notes.push(note);
                }
                Err(reason) => {
                    self.processes.remove(&attached.pid);
                    if let Some(reason) = reason {
                        out.notes.push(StackNote::Unavailable {
                            pid: attached.pid,
                            reason,
                        });
                    }
                }
            }
        }
        out.notes.append(&mut self.notes);
        let spent = self.attach_cpu_ns.load(Ordering::Relaxed);
        out.attach_cpu_ns += spent.saturating_sub(self.reported_attach_cpu_ns);
        self.reported_attach_cpu_ns = spent;
    }

    fn following(&self) -> usize {
        self.processes
            .values()
            .filter(|followed| matches!(followed, Followed::Reading(_)))
            .count()
    }
}

/// py-spy as concadvise uses it: never pausing the target, no native frames, filenames as the
/// interpreter has them (shortening them would look for `__init__.py` in the target's
/// folders), no thread names (a lookup in the target's `threading` module at every read).
fn config() -> Config {
    Config {
        blocking: LockingStrategy::NonBlocking,
        native: false,
        full_filenames: true,
        collect_thread_names: false,
        lineno: LineNo::LastInstruction,
        ..Config::default()
    }
}

/// Attaches to one process: tells whether it runs a CPython py-spy reads, then retries
/// `PythonSpy::new` and a first read until the interpreter is up or the deadline passes. Runs
/// on the attach thread: it opens files (the executable, libpython, a pyvenv.cfg).
fn attach(info: &ProcessInfo) -> Result<(Reader, StackNote), Option<String>> {
    let pid = info.pid;
    let exe = info.exe.as_deref().map(Path::new);
    let libraries = exe.is_some().then_some(info.libraries.as_slice());
    let found =
        python::identify(exe, libraries, info.command.first().map(String::as_str)).ok_or(None)?;
    if found.interpreter == Interpreter::PyPy {
        return Err(Some(format!("PyPy: {STACK_READER} reads CPython only")));
    }
    if !found.inspected {
        return Err(Some(DENIED.to_string()));
    }
    if let Some(version) = found
        .version
        .as_ref()
        .filter(|v| !python::stack_reader_supports(v))
    {
        return Err(Some(format!(
            "CPython {version}: {STACK_READER} reads {STACK_READER_RANGE}"
        )));
    }
    let started = Instant::now();
    let deadline = started + ATTACH_DEADLINE;
    let mut wait = FIRST_RETRY;
    let config = config();
    let mut tries = 0u32;
    let mut last_error: Option<anyhow::Error> = None;
    loop {
        if !same_process(pid, info.start_ticks) {
            return Err(ended_while_attaching(started, tries, last_error.as_ref()));
        }
        tries += 1;
        let error = match PythonSpy::new(pid, &config) {
            Ok(mut spy) => match spy.get_stack_traces() {
                Ok(_) => break Ok(reader(spy, info)),
                Err(error) => error,
            },
            Err(error) => error,
        };
        if denied(&error) {
            return Err(Some(DENIED.to_string()));
        }
        if Instant::now() + wait > deadline {
            if !same_process(pid, info.start_ticks) {
                return Err(ended_while_attaching(started, tries, Some(&error)));
            }
            return Err(Some(format!(
                "{SOURCE} could not find a running interpreter in it within {} s: {error:#}",
                ATTACH_DEADLINE.as_secs()
            )));
        }
        last_error = Some(error);
        std::thread::sleep(wait);
        wait = (wait * 2).min(LONGEST_RETRY);
    }
}

/// A process that ended before its interpreter could be read: nothing to say of one that
/// lived only moments (a short-lived child), the tries and the last error of one that was
/// tried for a while (what kept the reader from it).
fn ended_while_attaching(
    started: Instant,
    tries: u32,
    last_error: Option<&anyhow::Error>,
) -> Option<String> {
    /// A process tried for less than this needs no note.
    const WORTH_A_NOTE: Duration = Duration::from_millis(250);
    let tried = started.elapsed();
    (tried >= WORTH_A_NOTE).then(|| {
        let last = last_error.map_or(String::new(), |error| format!("; the last: {error:#}"));
        format!(
            "it ended while {SOURCE} was still attaching ({tries} tries over {} ms{last})",
            tried.as_millis()
        )
    })
}

fn reader(spy: PythonSpy, info: &ProcessInfo) -> (Reader, StackNote) {
    let version = &spy.version;
    let (major, minor) = (version.major, version.minor);
    let libpython = libpython_path(info.pid);
    let exe = info.exe.as_deref();
    let venv_home = exe.and_then(|exe| pyvenv_home(Path::new(exe)));
    let note = StackNote::Following {
        pid: info.pid,
        source: SOURCE.to_string(),
        interpreter: format!("CPython {version}"),
        runtime_dirs: runtime_dirs(
            exe,
            libpython.as_deref(),
            venv_home.as_deref(),
            (major, minor),
        ),
    };
    let reader = Reader {
        thread_ids: (major, minor) >= (3, 11),
        spy,
        failures_in_a_row: 0,
    };
    (reader, note)
}

/// Whether `pid` is still the process that was asked for (a reused PID is another one).
fn same_process(pid: i32, start_ticks: u64) -> bool {
    let mut buf = Vec::new();
    crate::sampler::tree_reader::read_stat(pid, &mut buf)
        .is_ok_and(|stat| start_ticks == 0 || stat.starttime == start_ticks)
}

/// Whether py-spy failed for lack of permission to read the process (its executable, maps or
/// memory).
fn denied(error: &anyhow::Error) -> bool {
    use nix::errno::Errno;
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied)
            || matches!(
                cause.downcast_ref::<Errno>(),
                Some(Errno::EPERM | Errno::EACCES)
            )
    })
}

/// The path of the libpython the process maps, if any (from /proc/PID/maps).
fn libpython_path(pid: i32) -> Option<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| {
            path.rsplit('/')
                .next()
                .is_some_and(|name| name.starts_with("libpython"))
        })
        .map(str::to_string)
}

/// The `home` a virtual environment's pyvenv.cfg names (the base interpreter's bin folder),
/// for an interpreter at ENV/bin/python.
fn pyvenv_home(exe: &Path) -> Option<String> {
    let cfg = exe.parent()?.parent()?.join("pyvenv.cfg");
    let text = std::fs::read_to_string(cfg).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "home").then(|| value.trim().to_string())
    })
}

/// Where the interpreter's standard library lives: `PREFIX/lib/pythonX.Y` (and lib64) for
/// the prefix of its executable (`PREFIX/bin/pythonX.Y`), of the base interpreter a virtual
/// environment's `home` names, and of its libpython (`PREFIX/lib/libpythonX.Y.so`, or a
/// multiarch folder below it such as `/usr/lib/x86_64-linux-gnu`).
pub fn runtime_dirs(
    exe: Option<&str>,
    libpython: Option<&str>,
    venv_home: Option<&str>,
    (major, minor): (u64, u64),
) -> Vec<String> {
    let stdlib = format!("python{major}.{minor}");
    let mut prefixes: Vec<PathBuf> = Vec::new();
    for bin in [
        exe.and_then(|e| Path::new(e).parent()),
        venv_home.map(Path::new),
    ]
    .into_iter()
    .flatten()
    {
        if let Some(prefix) = bin.parent() {
            prefixes.push(prefix.join("lib"));
            prefixes.push(prefix.join("lib64"));
        }
    }
    if let Some(dir) = libpython.and_then(|lib| Path::new(lib).parent()) {
        prefixes.push(dir.to_path_buf());
        // A multiarch folder (/usr/lib/x86_64-linux-gnu): the library is one level down.
        let multiarch = dir
            .file_name()
            .is_some_and(|name| name.to_string_lossy().contains("-linux-"));
        if let (true, Some(up)) = (multiarch, dir.parent()) {
            prefixes.push(up.to_path_buf());
        }
    }
    let mut dirs: Vec<String> = prefixes
        .into_iter()
        .map(|lib| format!("{}/", lib.join(&stdlib).display()))
        .collect();
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|dir| seen.insert(dir.clone()));
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_library_is_found_beside_the_interpreter_its_venv_and_its_libpython() {
        let dirs = runtime_dirs(
            Some("/root/.pyenv/versions/3.11.7/bin/python3.11"),
            None,
            None,
            (3, 11),
        );
        assert_eq!(
            dirs,
            [
                "/root/.pyenv/versions/3.11.7/lib/python3.11/",
                "/root/.pyenv/versions/3.11.7/lib64/python3.11/"
            ]
        );
        // A venv made with --copies: its python is a copy, its home names the base.
        let dirs = runtime_dirs(
            Some("/srv/app/venv/bin/python3"),
            None,
            Some("/usr/bin"),
            (3, 12),
        );
        assert!(
            dirs.contains(&"/usr/lib/python3.12/".to_string()),
            "{dirs:?}"
        );
        // Debian's shared interpreter: libpython in a multiarch folder.
        let dirs = runtime_dirs(
            Some("/usr/bin/uwsgi-core"),
            Some("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"),
            None,
            (3, 11),
        );
        assert!(
            dirs.contains(&"/usr/lib/python3.11/".to_string()),
            "{dirs:?}"
        );
    }

    #[test]
    fn permission_errors_are_told_from_others() {
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(denied(
            &anyhow::Error::new(io).context("Failed to open process")
        ));
        assert!(denied(&anyhow::Error::new(nix::errno::Errno::EPERM)));
        let other = anyhow::anyhow!("Failed to find python version from target process");
        assert!(!denied(&other));
    }
}
