//! Ctrl-C and termination signals: concadvise survives them, forwards what the program would not get, and remembers the interruption.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
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
    interrupted: Arc<AtomicBool>,
    forward_to: Arc<AtomicI32>,
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl SignalRelay {
    /// Catches SIGINT, SIGQUIT, SIGTERM and SIGHUP from now on. A terminal's Ctrl-C reaches the
    /// whole foreground process group, the program included, so it is only noted; a signal
    /// sent to concadvise alone (kill) is forwarded to the program once `forward_to` is set.
    pub fn install() -> Result<SignalRelay, Error> {
        let mut signals = SignalsInfo::<WithOrigin>::new([SIGINT, SIGQUIT, SIGTERM, SIGHUP])
            .map_err(|e| Error::Setup(format!("cannot install signal handlers: {e}")))?;
        let handle = signals.handle();
        let interrupted = Arc::new(AtomicBool::new(false));
        let forward_to = Arc::new(AtomicI32::new(0));
        let thread = {
            let interrupted = Arc::clone(&interrupted);
            let forward_to = Arc::clone(&forward_to);
            std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || {
                    for origin in signals.forever() {
                        interrupted.store(true, Ordering::SeqCst);
                        let from_terminal = matches!(origin.cause, Cause::Kernel);
                        let keyboard = origin.signal == SIGINT || origin.signal == SIGQUIT;
                        let pid = forward_to.load(Ordering::SeqCst);
                        if pid > 0 && !(keyboard && from_terminal) {
                            if let Ok(signal) = Signal::try_from(origin.signal) {
                                // The program may have exited meanwhile: nothing to do then.
                                let _ = kill(Pid::from_raw(pid), signal);
                            }
                        }
                    }
                })
                .map_err(|e| Error::Setup(format!("cannot start the signal thread: {e}")))?
        };
        Ok(SignalRelay {
            interrupted,
            forward_to,
            handle,
            thread: Some(thread),
        })
    }

    /// Forwards signals sent to concadvise to this process from now on (0: forward nothing).
    pub fn forward_to(&self, pid: i32) {
        self.forward_to.store(pid, Ordering::SeqCst);
    }

    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    pub fn flag(&self) -> &AtomicBool {
        &self.interrupted
    }
}

impl Drop for SignalRelay {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
