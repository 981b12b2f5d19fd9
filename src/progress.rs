//! The live line on stderr while sampling: elapsed time, CPU use, what the program is doing now.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::sampler::LiveStatus;

pub struct Progress {
    bar: ProgressBar,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Shows the line only when stderr is a terminal and the user did not ask for quiet.
    pub fn start(live: Arc<Mutex<LiveStatus>>, quiet: bool) -> Option<Progress> {
        if quiet || !console::Term::stderr().is_term() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style =
            ProgressStyle::with_template("{spinner} concadvise {elapsed_precise} {msg}").ok()?;
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(120));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let bar = bar.clone();
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("progress".into())
                .spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        if let Ok(status) = live.lock() {
                            bar.set_message(format!(
                                "· {:.2} cores · now: {} · {} threads",
                                status.cores, status.doing, status.threads
                            ));
                        }
                        // Woken at once by the drop: the summary never waits for it.
                        std::thread::park_timeout(Duration::from_millis(250));
                    }
                })
                .ok()?
        };
        Some(Progress {
            bar,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
        self.bar.finish_and_clear();
    }
}
