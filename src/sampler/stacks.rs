//! Stacks read beside the ticks: the `StackSource` the command layer plugs in, the thread it reads on, and the pacing that keeps it within the sampler's CPU budget.
//!
//! The sampler knows nothing of how stacks are read (py-spy for CPython is the command layer's
//! choice). It tells the source which processes appeared and went, asks for a read when one
//! is due, and puts what comes back into a later snapshot, marked with the tick that asked:
//! the analysis joins each stack to the thread states of that tick. Reads happen on a thread
//! of their own that the sampler never waits for: a read of a thousand threads takes tens of
//! milliseconds, and the ticks go on meanwhile. Its CPU time counts in the sampler's budget.

use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::observation::{ProcessInfo, TickSnapshot};
use super::CPU_BUDGET;

/// Stacks are read at most this often.
pub const MAX_STACK_HZ: f64 = 20.0;
/// The share of the sampler's CPU budget the stack reads may use: the reads slow down (down
/// to one every `MAX_STACK_INTERVAL`) when one costs more than this allows.
pub const STACK_SHARE_OF_BUDGET: f64 = 0.4;
/// Stacks are read at least this often while something is followed, whatever a read costs
/// (the sampler lowers its tick rate to stay within the budget then).
const MAX_STACK_INTERVAL: Duration = Duration::from_secs(10);
/// While nothing is followed, the stack thread is asked this often for news (a process it
/// started to follow, or could not).
const NEWS_PERIOD: Duration = Duration::from_millis(100);

/// One frame of a stack, as the target's memory names it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct StackFrame {
    pub function: String,
    pub file: String,
    pub line: u32,
}

/// One thread's stack at one read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThreadStack {
    pub pid: i32,
    /// The OS thread id (the process's own PID for its main thread).
    pub tid: i32,
    /// Innermost first.
    pub frames: Vec<StackFrame>,
}

/// What happened to the reading of one process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "note")]
pub enum StackNote {
    /// The source will try to read it (it looks like a runtime the source reads).
    Attaching { pid: i32 },
    /// Its stacks are read from now on.
    Following {
        pid: i32,
        /// The reader ("py-spy").
        source: String,
        /// What it runs ("CPython 3.11.7").
        interpreter: String,
        /// Directories whose files are the runtime's own (the interpreter's standard library):
        /// frames there are not the user's code.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        runtime_dirs: Vec<String>,
    },
    /// Its stacks cannot be read (any more): why, and how to get them.
    Unavailable { pid: i32, reason: String },
}

/// What the stack thread handed back: a read's stacks and the news since the last one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StackRead {
    /// The tick that asked for this read (its `at_ns`); absent when it carries news only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub threads: Vec<ThreadStack>,
    /// Processes whose read failed part-way (the target moved on while it was read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<StackNote>,
    /// The read's CPU time on the stack thread, ns.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub read_cpu_ns: u64,
    /// CPU time spent attaching to processes (on the source's own threads) since the last
    /// read, ns.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attach_cpu_ns: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl StackRead {
    pub fn is_empty(&self) -> bool {
        self.requested_at_ns.is_none() && self.notes.is_empty() && self.attach_cpu_ns == 0
    }
}

/// Reads the stacks of the processes it follows (py-spy for CPython). Every method but
/// `wants` runs on the stack thread; none may wait on a file: what opens files (an
/// executable's symbols) goes to a thread of the source's own, which calls the `Waker` when
/// it has news.
pub trait StackSource: Send + 'static {
    /// Which processes may run something this source reads: a test of the names the tree
    /// reader already has (executable, libraries), cheap enough for the sampler's thread,
    /// where it stays when the source moves to the stack thread.
    fn selector(&self) -> Selector;
    /// Starts following a process (again, after an exec).
    fn follow(&mut self, info: ProcessInfo, waker: Waker);
    /// The process is gone.
    fn forget(&mut self, pid: i32);
    /// Reads the stack of every thread of every process it reads now.
    fn read(&mut self, out: &mut StackRead);
    /// The news since the last call (`StackRead::notes`, `attach_cpu_ns`).
    fn news(&mut self, out: &mut StackRead);
    /// How many processes it reads now.
    fn following(&self) -> usize;
}

/// See `StackSource::selector`.
pub type Selector = Box<dyn Fn(&ProcessInfo) -> bool + Send>;

/// Wakes the stack thread when a source's own thread has news (an attach that succeeded or
/// gave up).
#[derive(Clone)]
pub struct Waker(Sender<Command>);

impl Waker {
    pub fn wake(&self) {
        // The stack thread is gone only when sampling ended: nobody is left to tell.
        let _ = self.0.send(Command::Wake);
    }
}

pub enum Command {
    Follow(ProcessInfo),
    Forget(i32),
    /// Read now, for the tick at this `at_ns`.
    Read(u64),
    /// The sampler asks for news.
    News,
    /// The source has news (see `Waker`).
    Wake,
    Stop,
}

struct Reply {
    read: StackRead,
    following: usize,
    /// It answers the sampler's `Read` or `News` (not a `Wake`).
    answers: bool,
}

/// The sampler's side: which processes the source is told of, when a read is due, what
/// came back.
pub struct Stacks {
    /// The source until the stack thread is started (at the first process it wants).
    source: Option<Box<dyn StackSource>>,
    wants: Selector,
    thread: Option<(Sender<Command>, Receiver<Reply>)>,
    /// A read or a request for news is out and not answered yet.
    in_flight: bool,
    following: usize,
    next_ask: Instant,
    asked_at: Instant,
    /// The CPU a read costs, smoothed (seconds).
    read_cost_s: Option<f64>,
    /// The stack thread's and the source's CPU so far (seconds), for the budget.
    cpu_s: f64,
}

impl Stacks {
    pub fn new<S: StackSource>(source: S) -> Stacks {
        Stacks {
            wants: source.selector(),
            source: Some(Box::new(source)),
            thread: None,
            in_flight: false,
            following: 0,
            next_ask: Instant::now(),
            asked_at: Instant::now(),
            read_cost_s: None,
            cpu_s: 0.0,
        }
    }

    /// The CPU time stack reading has cost so far, seconds (off the sampler's own thread).
    pub fn cpu_s(&self) -> f64 {
        self.cpu_s
    }

    /// Takes what came back from the stack thread into this tick's snapshot, then tells the
    /// source of the tick's new and departed processes, then asks for a read when one is due.
    pub fn tick(&mut self, snapshot: &mut TickSnapshot, stopping: bool) {
        self.collect(snapshot);
        self.tell(snapshot);
        if !stopping {
            self.ask(snapshot);
        }
    }

    fn collect(&mut self, snapshot: &mut TickSnapshot) {
        let Some((_, replies)) = &self.thread else {
            return;
        };
        loop {
            match replies.try_recv() {
                Ok(reply) => {
                    if reply.answers {
                        self.in_flight = false;
                    }
                    self.following = reply.following;
                    let read = reply.read;
                    let cpu_s = (read.read_cpu_ns + read.attach_cpu_ns) as f64 / 1e9;
                    self.cpu_s += cpu_s;
                    if read.requested_at_ns.is_some() {
                        let cost = read.read_cpu_ns as f64 / 1e9;
                        let smoothed = self
                            .read_cost_s
                            .map_or(cost, |before| 0.7 * before + 0.3 * cost);
                        self.read_cost_s = Some(smoothed);
                        let interval = (smoothed / (STACK_SHARE_OF_BUDGET * CPU_BUDGET))
                            .max(1.0 / MAX_STACK_HZ)
                            .min(MAX_STACK_INTERVAL.as_secs_f64());
                        self.next_ask = self.asked_at + Duration::from_secs_f64(interval);
                    }
                    if !read.is_empty() {
                        match &mut snapshot.stacks {
                            Some(earlier) => merge(earlier, read),
                            None => snapshot.stacks = Some(read),
                        }
                    }
                }
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    // The stack thread ended (a source that panicked): sampling goes on
                    // without stacks.
                    self.thread = None;
                    return;
                }
            }
        }
    }

    fn tell(&mut self, snapshot: &TickSnapshot) {
        for info in &snapshot.new_processes {
            if (self.wants)(info) {
                if let Some(commands) = self.started() {
                    let _ = commands.send(Command::Follow(info.clone()));
                }
            }
        }
        if let Some((commands, _)) = &self.thread {
            for &(pid, tid) in &snapshot.exited {
                if pid == tid {
                    let _ = commands.send(Command::Forget(pid));
                }
            }
        }
    }

    fn ask(&mut self, snapshot: &mut TickSnapshot) {
        let Some((commands, _)) = &self.thread else {
            return;
        };
        let now = Instant::now();
        if self.in_flight || now < self.next_ask {
            return;
        }
        let command = if self.following > 0 {
            snapshot.stacks_requested = true;
            Command::Read(snapshot.at_ns)
        } else {
            self.next_ask = now + NEWS_PERIOD;
            Command::News
        };
        if commands.send(command).is_ok() {
            self.in_flight = true;
            self.asked_at = now;
        } else {
            snapshot.stacks_requested = false;
        }
    }

    /// The stack thread's command channel, starting the thread if this is the first process
    /// the source wants.
    fn started(&mut self) -> Option<&Sender<Command>> {
        if self.thread.is_none() {
            let mut source = self.source.take()?;
            let (commands, inbox) = mpsc::channel();
            let (outbox, replies) = mpsc::channel();
            let waker = Waker(commands.clone());
            let spawned = std::thread::Builder::new()
                .name("stacks".into())
                .spawn(move || read_on_request(&mut *source, &inbox, &outbox, &waker));
            if spawned.is_err() {
                return None;
            }
            self.thread = Some((commands, replies));
        }
        self.thread.as_ref().map(|(commands, _)| commands)
    }
}

impl Drop for Stacks {
    fn drop(&mut self) {
        if let Some((commands, _)) = &self.thread {
            let _ = commands.send(Command::Stop);
        }
    }
}

/// Two replies that arrived in one tick: the later read's stacks join the tick that asked
/// for them, so only news is merged (a second read cannot arrive before the first's reply).
fn merge(earlier: &mut StackRead, later: StackRead) {
    if earlier.requested_at_ns.is_none() {
        earlier.requested_at_ns = later.requested_at_ns;
        earlier.threads = later.threads;
        earlier.failed = later.failed;
        earlier.read_cpu_ns = later.read_cpu_ns;
    }
    earlier.notes.extend(later.notes);
    earlier.attach_cpu_ns += later.attach_cpu_ns;
}

/// The stack thread: follows, forgets and reads as asked, replying to every read and request
/// for news.
fn read_on_request(
    source: &mut dyn StackSource,
    inbox: &Receiver<Command>,
    outbox: &Sender<Reply>,
    waker: &Waker,
) {
    while let Ok(command) = inbox.recv() {
        let mut read = StackRead::default();
        let answers = matches!(command, Command::Read(_) | Command::News);
        match command {
            Command::Follow(info) => {
                source.follow(info, waker.clone());
                continue;
            }
            Command::Forget(pid) => {
                source.forget(pid);
                continue;
            }
            Command::Read(at_ns) => {
                let before = thread_cpu_ns();
                source.read(&mut read);
                read.read_cpu_ns = thread_cpu_ns().saturating_sub(before).max(1);
                read.requested_at_ns = Some(at_ns);
            }
            Command::News | Command::Wake => {}
            Command::Stop => return,
        }
        source.news(&mut read);
        let reply = Reply {
            read,
            following: source.following(),
            answers,
        };
        if outbox.send(reply).is_err() {
            return;
        }
    }
}

/// This thread's CPU time in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    })
}
