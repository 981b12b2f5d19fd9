//! Ctrl-C and termination signals: concadvise survives them, forwards what the program would not get, and remembers the interruption.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::{Handle, SignalsInfo};
use signal_hook::low_level::siginfo::Cause;

use crate::error::Error;

pub struct SignalRelay {
    /// How many interrupting signals have arrived.
    interrupts: Arc<AtomicU64>,
    /// 0 before the program is known, its PID while it runs, `ENDED` after it was reaped.
    forward_to: Arc<AtomicI32>,
    /// The program's PID once known, kept after it was reaped: a signal it sent just before
    /// it exited is its own even when its process can no longer be looked up.
    program: Arc<AtomicI32>,
    /// A signal that arrived before the program was known (between fork and `forward_to`),
    /// sent to it as soon as it is.
    held: Arc<AtomicI32>,
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl SignalRelay {
    /// Catches SIGINT, SIGQUIT, SIGTERM and SIGHUP from now on. A terminal's Ctrl-C (or
    /// hang-up) reaches the whole foreground process group, the program included, so it is
    /// only noted; a signal sent by another process is noted and forwarded to the program
    /// while `forward_to` is set. A signal sent by a process of the measured tree (the
    /// program's own `kill 0`) concerns the program, which got it too: it is ignored.
    /// A signal sent from outside to the whole process group reaches the program twice
    /// (directly, and forwarded): a known limit.
    pub fn install() -> Result<SignalRelay, Error> {
        let mut signals = SignalsInfo::<WithOrigin>::new([SIGINT, SIGQUIT, SIGTERM, SIGHUP])
            .map_err(|e| Error::Setup(format!("cannot install signal handlers: {e}")))?;
        let handle = signals.handle();
        let interrupts = Arc::new(AtomicU64::new(0));
        let forward_to = Arc::new(AtomicI32::new(0));
        let held = Arc::new(AtomicI32::new(0));
        let program = Arc::new(AtomicI32::new(0));
        let thread = {
            let interrupts = Arc::clone(&interrupts);
            let forward_to = Arc::clone(&forward_to);
            let program = Arc::clone(&program);
            let held = Arc::clone(&held);
            std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || {
                    for origin in signals.forever() {
                        let from_tree = origin.process.is_some_and(|p| {
                            p.pid == program.load(Ordering::SeqCst) || descends_from_self(p.pid)
                        });
                        if from_tree {
                            continue;
                        }
                        interrupts.fetch_add(1, Ordering::SeqCst);
                        let from_kernel = matches!(origin.cause, Cause::Kernel);
                        if from_kernel {
                            continue;
                        }
                        let pid = forward_to.load(Ordering::SeqCst);
                        if pid > 0 {
                            send(pid, origin.signal);
                        } else if pid == 0 {
                            // Not started yet (or started, not yet known): hold it, then look
                            // again in case `forward_to` ran meanwhile (whoever takes it sends).
                            held.store(origin.signal, Ordering::SeqCst);
                            let pid = forward_to.load(Ordering::SeqCst);
                            if pid > 0 {
                                send(pid, held.swap(0, Ordering::SeqCst));
                            }
                        }
                    }
                })
                .map_err(|e| Error::Setup(format!("cannot start the signal thread: {e}")))?
        };
        Ok(SignalRelay {
            interrupts,
            forward_to,
            program,
            held,
            handle,
            thread: Some(thread),
        })
    }

    /// Forwards signals sent to concadvise to this process from now on, and one that came
    /// before it was known (a kill right after the fork).
    pub fn forward_to(&self, pid: i32) {
        self.program.store(pid, Ordering::SeqCst);
        self.forward_to.store(pid, Ordering::SeqCst);
        send(pid, self.held.swap(0, Ordering::SeqCst));
    }

    /// Forwards nothing more (the program was reaped: its PID may be reused).
    pub fn stop_forwarding(&self) {
        self.forward_to.store(ENDED, Ordering::SeqCst);
    }

    pub fn interrupted(&self) -> bool {
        self.interrupts.load(Ordering::SeqCst) > 0
    }

    /// The count of interrupts so far, for a waiter that cares only about new ones.
    pub fn counter(&self) -> &AtomicU64 {
        &self.interrupts
    }
}

/// `forward_to` once the program was reaped.
const ENDED: i32 = -1;

/// Sends `signal` (0: none) to `pid`; the program may have exited meanwhile: nothing to do then.
fn send(pid: i32, signal: i32) {
    if signal == 0 || pid <= 0 {
        return;
    }
    if let Ok(signal) = Signal::try_from(signal) {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

/// Whether `pid` is a descendant of concadvise (part of the measured tree).
fn descends_from_self(pid: i32) -> bool {
    let me = std::process::id() as i32;
    let mut buf = Vec::new();
    let mut current = pid;
    // A bounded walk up the parents: trees are not deeper than this.
    for _ in 0..256 {
        if current <= 1 {
            return false;
        }
        match crate::sampler::tree_reader::read_stat(current, &mut buf) {
            Ok(stat) if stat.ppid == me => return true,
            Ok(stat) => current = stat.ppid,
            Err(_) => return false,
        }
    }
    false
}

impl Drop for SignalRelay {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
