//! Starts the program as concadvise's child (same stdio, environment and directory) and waits for its whole tree.

use std::ffi::OsString;
use std::io::ErrorKind;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::resource::{getrlimit, getrusage, setrlimit, Resource, UsageWho};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::Error;

/// Makes orphaned descendants re-parent to concadvise rather than init, so a program that
/// daemonizes or leaves children behind is still followed and reaped (with their CPU counted).
pub fn become_subreaper() -> Result<(), Error> {
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| Error::Setup(format!("cannot become a child subreaper: {e}")))
}

/// Raises concadvise's own open-file limit to the hard limit (it holds /proc descriptors for
/// every thread it follows) and returns the limit it had, for the program to get back.
pub fn raise_open_file_limit() -> Option<(u64, u64)> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    Some((soft, hard))
}

/// Spawns `command` with inherited stdin, stdout, stderr, environment and working directory,
/// and the open-file limit concadvise itself was started with (`original_nofile`).
pub fn spawn(command: &[OsString], original_nofile: Option<(u64, u64)>) -> Result<Pid, Error> {
    let Some((program, args)) = command.split_first() else {
        return Err(Error::Spawn {
            command: String::new(),
            reason: "no command given".into(),
        });
    };
    let mut child = Command::new(program);
    child.args(args);
    if let Some((soft, hard)) = original_nofile {
        // SAFETY: runs in the forked child before exec; setrlimit is async-signal-safe and
        // touches no memory shared with the parent.
        unsafe {
            child.pre_exec(move || {
                setrlimit(Resource::RLIMIT_NOFILE, soft, hard).map_err(std::io::Error::from)
            });
        }
    }
    const ENOEXEC: i32 = 8;
    const ETXTBSY: i32 = 26;
    match child.spawn() {
        // The std handle is dropped without waiting: the tree is reaped by `wait_for_tree`.
        Ok(child) => Ok(Pid::from_raw(child.id() as i32)),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::CommandNotFound(shown(program))),
        Err(e)
            if e.kind() == ErrorKind::PermissionDenied
                || matches!(e.raw_os_error(), Some(ENOEXEC | ETXTBSY)) =>
        {
            Err(Error::CommandNotExecutable(shown(program)))
        }
        Err(e) => Err(Error::Spawn {
            command: shown(program),
            reason: e.to_string(),
        }),
    }
}

/// An argument as text for messages and the report: bytes that are not UTF-8 become U+FFFD
/// (the program itself received them exactly).
pub fn shown(arg: &OsString) -> String {
    arg.to_string_lossy().into_owned()
}

/// How the launched program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    Signaled(i32),
}

impl Ending {
    /// The shell's convention: the code, or 128 + the signal number.
    pub fn exit_code(self) -> i32 {
        match self {
            Ending::Exited(code) => code,
            Ending::Signaled(signal) => 128 + signal,
        }
    }
}

pub struct TreeEnd {
    pub ending: Ending,
    /// When the last process of the tree was reaped (or following stopped).
    pub ended: Instant,
    /// Descendants still running when following stopped (after an interrupt).
    pub orphans_left: bool,
}

/// How to treat processes the program leaves running when it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orphans {
    /// Keep measuring until they exit too (or an interrupt comes after the program's exit).
    Follow { announce: bool },
    /// Stop when the program itself exits.
    Leave,
}

/// Reaps children until the launched program and every orphan that re-parented to
/// concadvise has exited. `on_program_exit` runs as soon as the program itself is reaped.
/// After that, an interrupt (a new one, not one the program already lived through) stops
/// following.
// Long because one reaping loop covers the program running, the orphans followed after it
// and the interrupt that ends them, over the same few locals.
pub fn wait_for_tree(
    main: Pid,
    interrupts: &AtomicU64,
    orphans: Orphans,
    mut on_program_exit: impl FnMut(),
) -> TreeEnd {
    let mut ending = None;
    let mut announced = false;
    let mut interrupts_at_exit = 0;
    loop {
        // Blocking while the program runs; polling afterwards so an interrupt can end the wait.
        let flags = ending.map(|_| WaitPidFlag::WNOHANG);
        let status = waitpid(None, flags);
        let program_ended = match status {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => Some(Ending::Exited(code)),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == main => {
                Some(Ending::Signaled(signal as i32))
            }
            _ => None,
        };
        if program_ended.is_some() {
            ending = program_ended;
            interrupts_at_exit = interrupts.load(Ordering::SeqCst);
            on_program_exit();
            if orphans == Orphans::Leave {
                return TreeEnd {
                    ending: ending.unwrap_or(Ending::Exited(0)),
                    ended: Instant::now(),
                    orphans_left: false,
                };
            }
            continue;
        }
        match status {
            Ok(WaitStatus::StillAlive) => {
                if interrupts.load(Ordering::SeqCst) > interrupts_at_exit {
                    return TreeEnd {
                        ending: ending.unwrap_or(Ending::Exited(0)),
                        ended: Instant::now(),
                        orphans_left: true,
                    };
                }
                if orphans == (Orphans::Follow { announce: true }) && !announced {
                    crate::notice::line(
                        "the program exited; still following the processes it left running \
                         (Ctrl-C to stop, or --leave-orphans next time)",
                    );
                    announced = true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => {
                // ECHILD: no children left at all.
                return TreeEnd {
                    ending: ending.unwrap_or(Ending::Exited(0)),
                    ended: Instant::now(),
                    orphans_left: false,
                };
            }
        }
    }
}

/// User and system CPU seconds of every child concadvise has reaped: the kernel's own
/// accounting of the finished tree, as time(1) reports it.
pub fn reaped_children_cpu() -> Option<(f64, f64)> {
    cpu_of(UsageWho::RUSAGE_CHILDREN)
}

/// concadvise's own user and system CPU seconds so far (all its threads).
pub fn own_cpu() -> Option<(f64, f64)> {
    cpu_of(UsageWho::RUSAGE_SELF)
}

fn cpu_of(who: UsageWho) -> Option<(f64, f64)> {
    let usage = getrusage(who).ok()?;
    let seconds = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    Some((seconds(usage.user_time()), seconds(usage.system_time())))
}
