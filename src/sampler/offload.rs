//! Work that has to reach a real filesystem, done on helper threads that the sampler hands jobs to and never waits for.
//!
//! Reading an executable's ELF headers, a stat on a descriptor, opening a venv's pyvenv.cfg or
//! starting a stack reader all ask a filesystem, and a filesystem can stop answering (a dead
//! NFS server, a hung FUSE daemon, a failing disk). The sampler submits such work here and
//! picks the answers up at a later tick; a job that never finishes costs one helper thread,
//! not the measurement. Callers still never submit work on a network or FUSE filesystem (see
//! `mounts::FsClass::may_touch`): a stuck helper is the last line of defence, not the plan.
//!
//! One `Offload` per kind of work (its answer type); each starts its first thread on its first
//! job. When every thread has been busy on one job for longer than `STUCK_AFTER`, another is
//! started, up to `MAX_WORKERS`; beyond that, and beyond `MAX_QUEUED` waiting jobs, jobs are
//! refused at once. Threads are never joined: a thread stuck in a filesystem ends with the
//! process (or, in an uninterruptible sleep, delays its exit, never the report).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A worker busy on one job for longer than this is presumed stuck.
pub const STUCK_AFTER: Duration = Duration::from_millis(250);
/// Helper threads per `Offload` at most.
pub const MAX_WORKERS: usize = 4;
/// Jobs waiting for a thread at most.
pub const MAX_QUEUED: usize = 256;

type Job<T> = Box<dyn FnOnce() -> T + Send>;

/// Why a job was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every helper thread is stuck and the queue is full.
    Full,
    /// No helper thread could be started.
    NoThread,
}

struct Queue<T> {
    jobs: VecDeque<Job<T>>,
    closed: bool,
}

struct Shared<T> {
    queue: Mutex<Queue<T>>,
    ready: Condvar,
    origin: Instant,
}

/// One helper thread's state: when it started its current job (ns after `origin`, plus one),
/// or 0 while it waits for work.
struct Worker {
    busy_since: Arc<AtomicU64>,
}

pub struct Offload<T: Send + 'static> {
    name: &'static str,
    shared: Arc<Shared<T>>,
    workers: Vec<Worker>,
    answers: Receiver<T>,
    answer_to: Sender<T>,
    /// Jobs submitted and not answered yet (queued, running, or stuck).
    pending: usize,
}

impl<T: Send + 'static> Offload<T> {
    /// `name` names the helper threads (`name-1`, `name-2`...).
    pub fn new(name: &'static str) -> Self {
        let (answer_to, answers) = channel();
        Offload {
            name,
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    jobs: VecDeque::new(),
                    closed: false,
                }),
                ready: Condvar::new(),
                origin: Instant::now(),
            }),
            workers: Vec::new(),
            answers,
            answer_to,
            pending: 0,
        }
    }

    /// Queues `job`; never blocks. Its answer comes out of `answers` at some later call.
    pub fn submit(&mut self, job: impl FnOnce() -> T + Send + 'static) -> Result<(), Refused> {
        // A helper that is idle, or busy for a short while, will take the job; when every
        // helper is stuck (or there is none yet), start another.
        let now_ns = self.shared.origin.elapsed().as_nanos() as u64 + 1;
        let all_stuck = self.workers.iter().all(|worker| {
            let since = worker.busy_since.load(Ordering::SeqCst);
            since != 0 && now_ns.saturating_sub(since) >= STUCK_AFTER.as_nanos() as u64
        });
        if all_stuck && self.workers.len() < MAX_WORKERS {
            let started = self.start_worker();
            if self.workers.is_empty() {
                return started;
            }
        }
        let mut queue = self
            .shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if queue.jobs.len() >= MAX_QUEUED {
            return Err(Refused::Full);
        }
        queue.jobs.push_back(Box::new(job));
        self.pending += 1;
        self.shared.ready.notify_one();
        Ok(())
    }

    /// The answers that came back since the last call.
    pub fn answers(&mut self) -> Vec<T> {
        let answers: Vec<T> = self.answers.try_iter().collect();
        self.pending = self.pending.saturating_sub(answers.len());
        answers
    }

    /// Jobs submitted and not answered yet.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Helper threads started so far.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    fn start_worker(&mut self) -> Result<(), Refused> {
        let busy_since = Arc::new(AtomicU64::new(0));
        let shared = Arc::clone(&self.shared);
        let answer_to = self.answer_to.clone();
        let state = Arc::clone(&busy_since);
        std::thread::Builder::new()
            .name(format!("{}-{}", self.name, self.workers.len() + 1))
            .spawn(move || work(&shared, &state, &answer_to))
            .map_err(|_| Refused::NoThread)?;
        self.workers.push(Worker { busy_since });
        Ok(())
    }
}

impl<T: Send + 'static> Drop for Offload<T> {
    /// Tells idle helpers to end; a helper stuck in a job is left alone (never joined).
    fn drop(&mut self) {
        let mut queue = self
            .shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        queue.closed = true;
        queue.jobs.clear();
        self.shared.ready.notify_all();
    }
}

/// A helper thread: takes jobs until the queue is closed, sends each answer back.
fn work<T>(shared: &Shared<T>, busy_since: &AtomicU64, answer_to: &Sender<T>) {
    loop {
        let job = {
            let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if queue.closed {
                    return;
                }
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                queue = shared
                    .ready
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        busy_since.store(
            shared.origin.elapsed().as_nanos() as u64 + 1,
            Ordering::SeqCst,
        );
        let answer = job();
        busy_since.store(0, Ordering::SeqCst);
        if answer_to.send(answer).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_for<T: Send + 'static>(offload: &mut Offload<T>, count: usize) -> Vec<T> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        while got.len() < count && Instant::now() < deadline {
            got.extend(offload.answers());
            std::thread::sleep(Duration::from_millis(5));
        }
        got
    }

    #[test]
    fn answers_come_back_without_the_caller_waiting() {
        let mut offload = Offload::new("test-io");
        for i in 0..10 {
            offload.submit(move || i * 2).unwrap();
        }
        let mut got = wait_for(&mut offload, 10);
        got.sort();
        assert_eq!(got, (0..10).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(offload.pending(), 0);
        assert_eq!(offload.threads(), 1, "one thread does quick jobs");
    }

    #[test]
    fn a_stuck_job_neither_blocks_submit_nor_the_jobs_after_it() {
        let mut offload = Offload::new("test-stuck");
        // A job that never returns while the test runs (a filesystem that stopped answering).
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        offload
            .submit(move || {
                let _ = stuck.recv();
                "stuck"
            })
            .unwrap();
        std::thread::sleep(STUCK_AFTER + Duration::from_millis(50));
        let started = Instant::now();
        offload.submit(|| "after").unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "submit waited"
        );
        assert_eq!(wait_for(&mut offload, 1), vec!["after"]);
        assert_eq!(offload.pending(), 1, "the stuck job is still counted");
        assert_eq!(offload.threads(), 2);
        drop(release);
    }

    #[test]
    fn when_every_helper_is_stuck_jobs_are_refused_at_once() {
        let mut offload = Offload::new("test-full");
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let stuck = Arc::new(Mutex::new(stuck));
        for _ in 0..MAX_WORKERS {
            let stuck = Arc::clone(&stuck);
            offload
                .submit(move || {
                    let _ = stuck.lock().map(|s| s.recv());
                })
                .unwrap();
            std::thread::sleep(STUCK_AFTER + Duration::from_millis(30));
        }
        let mut refused = 0;
        for _ in 0..MAX_QUEUED + 10 {
            if offload.submit(|| ()) == Err(Refused::Full) {
                refused += 1;
            }
        }
        assert!(refused >= 10, "refused {refused}");
        assert!(offload.threads() <= MAX_WORKERS);
        drop(release);
    }
}
