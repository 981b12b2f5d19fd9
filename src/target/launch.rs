//! Starts the program as concadvise's child (same stdio, environment and directory) and waits for its whole tree.

use std::io::ErrorKind;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::Error;

/// Makes orphaned descendants re-parent to concadvise rather than init, so a program that
/// daemonizes or leaves children behind is still followed and reaped (with their CPU counted).
pub fn become_subreaper() -> Result<(), Error> {
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| Error::Setup(format!("cannot become a child subreaper: {e}")))
}

/// Spawns `command` with inherited stdin, stdout, stderr, environment and working directory.
pub fn spawn(command: &[String]) -> Result<Pid, Error> {
    let Some((program, args)) = command.split_first() else {
        return Err(Error::Spawn {
            command: String::new(),
            reason: "no command given".into(),
        });
    };
    match Command::new(program).args(args).spawn() {
        // The std handle is dropped without waiting: the tree is reaped by `wait_for_tree`.
        Ok(child) => Ok(Pid::from_raw(child.id() as i32)),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::CommandNotFound(program.clone())),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            Err(Error::CommandNotExecutable(program.clone()))
        }
        Err(e) => Err(Error::Spawn {
            command: program.clone(),
            reason: e.to_string(),
        }),
    }
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

/// Reaps children until the launched program and every orphan that re-parented to
/// concadvise has exited. After the program itself has ended, an interrupt stops following.
pub fn wait_for_tree(main: Pid, interrupted: &AtomicBool, announce_orphans: bool) -> TreeEnd {
    let mut ending = None;
    let mut announced = false;
    loop {
        // Blocking while the program runs; polling afterwards so an interrupt can end the wait.
        let flags = ending.map(|_| WaitPidFlag::WNOHANG);
        match waitpid(None, flags) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => ending = Some(Ending::Exited(code)),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == main => {
                ending = Some(Ending::Signaled(signal as i32))
            }
            Ok(WaitStatus::StillAlive) => {
                if interrupted.load(Ordering::SeqCst) {
                    return TreeEnd {
                        ending: ending.unwrap_or(Ending::Exited(0)),
                        ended: Instant::now(),
                        orphans_left: true,
                    };
                }
                if announce_orphans && !announced {
                    eprintln!(
                        "concadvise: the program exited; still following the processes it left \
                         running (Ctrl-C to stop)"
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
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).ok()?;
    let seconds = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    Some((seconds(usage.user_time()), seconds(usage.system_time())))
}
