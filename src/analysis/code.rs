//! Where in the code: each stack sample joined to the state the sampler saw for its thread, and the time of each state shared among the user's functions.
//!
//! A stack says where a thread was, the sampler's state says what it was doing: computing, a
//! wait kind, or (for a loop thread out of its poller in a stretch that blocked the loop)
//! `loop_blocked`. The time of a state is never taken from the stacks: per thread, the
//! accountant's time in each state (from the moment its process's stacks are read) is shared
//! among the frames its samples in that state saw, in proportion to the samples
//! (a ratio estimator: exact totals, sampled shares).
//!
//! Stacks come from any `StackSource` (py-spy for CPython today); nothing here knows which.
//! The frame that matters is the innermost frame of the user's own code: not the runtime's
//! (files under the interpreter's standard library, `<frozen ...>`), not third-party
//! (a `site-packages` or `dist-packages` folder). The innermost frame is kept beside it.

use std::collections::{HashMap, VecDeque};

use super::accountant::TickIntervals;
use super::event_loop::LoopTracker;
use super::wait_kind::WaitKind;
use crate::sampler::observation::TickSnapshot;
use crate::sampler::stacks::{StackFrame, StackNote, StackRead, ThreadStack};

/// States a sample can be in: computing, then each wait kind.
const STATES: usize = 1 + WaitKind::COUNT;
const CPU: u8 = 0;
/// Frames of a hotspot's stack in the report.
pub const STACK_FRAMES: usize = 8;
/// Hotspots per state in the report.
pub const HOTSPOTS_PER_STATE: usize = 3;
/// A hotspot below this share of its state's samples is left out (but the first).
const MIN_SHARE: f64 = 0.05;
/// Samples kept in time order for the trace's slices, over all threads: past it, every
/// other one is dropped and only every other one is kept from then on.
const MAX_SERIES: usize = 100_000;
/// Asked-for ticks whose stacks have not come back yet: reads are one at a time, so more
/// than a few means the replies were lost.
const MAX_ASKED: usize = 8;
/// Closed stretches remembered per thread, for samples that come back after their stretch
/// ended.
const CLOSED_KEPT: usize = 8;
/// Thread ids listed per hotspot.
const MAX_TIDS: usize = 64;

/// The state a hotspot is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeState {
    Cpu,
    Wait(WaitKind),
    /// A loop thread's time out of its poller in stretches that blocked the loop (what
    /// `concurrency.event_loop.blocked_s` counts), whatever it did there.
    LoopBlocked,
}

impl CodeState {
    pub fn name(self) -> &'static str {
        match self {
            CodeState::Cpu => "cpu",
            CodeState::Wait(kind) => kind.name(),
            CodeState::LoopBlocked => "loop_blocked",
        }
    }

    fn of_index(index: u8) -> CodeState {
        match index {
            CPU => CodeState::Cpu,
            _ => CodeState::Wait(WaitKind::ALL[usize::from(index) - 1]),
        }
    }
}

fn state_index(wait: Option<WaitKind>) -> u8 {
    wait.map_or(CPU, |kind| kind.index() as u8 + 1)
}

/// Whose code a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameOwner {
    User,
    /// The runtime's own: its standard library, frozen modules.
    Runtime,
    ThirdParty,
}

/// Whose code the file is, given the directories of the process's runtime.
pub fn owner(file: &str, runtime_dirs: &[String]) -> FrameOwner {
    if file.starts_with("<frozen") {
        return FrameOwner::Runtime;
    }
    if file
        .split('/')
        .any(|part| part == "site-packages" || part == "dist-packages")
    {
        return FrameOwner::ThirdParty;
    }
    if runtime_dirs
        .iter()
        .any(|dir| file.starts_with(dir.as_str()))
    {
        return FrameOwner::Runtime;
    }
    FrameOwner::User
}

/// The frame that matters in a stack (innermost first): the innermost of the user's own
/// code, else the innermost third-party one, else the innermost.
pub fn user_frame(frames: &[StackFrame], runtime_dirs: &[String]) -> Option<usize> {
    let owners: Vec<FrameOwner> = frames
        .iter()
        .map(|frame| owner(&frame.file, runtime_dirs))
        .collect();
    owners
        .iter()
        .position(|o| *o == FrameOwner::User)
        .or_else(|| owners.iter().position(|o| *o == FrameOwner::ThirdParty))
        .or((!frames.is_empty()).then_some(0))
}

/// Where event loops wait for their descriptors, as (file suffix, function): a stack whose
/// innermost frame is one of these is a loop in its poller, whatever the sampler saw of the
/// thread at the tick (the stack is read a little later, and a loop is known only after a few
/// ticks). uvloop's loop is C: its innermost Python frame is asyncio.run's.
const POLLERS: [(&str, &str); 5] = [
    ("/selectors.py", "select"),
    ("/asyncio/base_events.py", "_run_once"),
    ("/asyncio/base_events.py", "run_forever"),
    ("/asyncio/runners.py", "run"),
    ("/trio/_core/_io_epoll.py", "get_events"),
];

/// Whether a stack (innermost first) is an event loop waiting in its poller.
pub fn in_poller(frames: &[StackFrame]) -> bool {
    frames.first().is_some_and(|frame| {
        POLLERS
            .iter()
            .any(|(file, function)| frame.function == *function && frame.file.ends_with(file))
    })
}

/// "checksum (hotlib.py:12)": a frame as people read it.
pub fn label(frame: &StackFrame) -> String {
    let base = frame.file.rsplit('/').next().unwrap_or(&frame.file);
    format!("{} ({base}:{})", frame.function, frame.line)
}

/// What a process's stacks are read with.
#[derive(Debug, Clone)]
struct ProcessCode {
    runtime_dirs: Vec<String>,
    /// Its stacks are read (from its first note until it was given up).
    reading: bool,
}

/// A thread's state at a tick that asked for stacks.
#[derive(Debug, Clone, Copy)]
struct Asked {
    state: u8,
    /// An event loop's thread waiting in its poller: its stack says only that the loop
    /// runs (`asyncio.run`), not which code waits.
    polling: bool,
    /// The loop stretch it was in, if any.
    stretch: Option<u64>,
}

type AskedStates = HashMap<(i32, i32), Asked>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SampleKey {
    /// In a stretch that blocked its loop.
    blocked: bool,
    /// In its loop's poller (see `Asked::polling`): its time is shared like any sample's,
    /// but it names no hotspot.
    polling: bool,
    state: u8,
    user: u32,
    stack: u32,
}

#[derive(Debug, Clone, Default)]
struct ThreadCode {
    /// ns in each state since its process's stacks were read: [outside blocked stretches,
    /// in them].
    time: [[f64; STATES]; 2],
    /// What the open stretch took so far: blocked when it ends back in the poller.
    pending_time: [f64; STATES],
    samples: HashMap<SampleKey, u32>,
    /// Samples taken in a stretch still open: (its number, the sample).
    pending_samples: Vec<(u64, SampleKey)>,
    /// Recently closed stretches: number, and whether its CPU blocked the loop.
    closed: VecDeque<(u64, bool)>,
    /// (tick, user frame) of each sample, in time order (for the trace).
    series: Vec<(u64, u32)>,
}

impl ThreadCode {
    /// A stretch ended: its waits blocked the loop, its CPU too when it lasted long enough.
    fn close(&mut self, number: u64, cpu_blocked: bool) {
        for (state, ns) in self.pending_time.iter_mut().enumerate() {
            let blocked = state != usize::from(CPU) || cpu_blocked;
            self.time[usize::from(blocked)][state] += *ns;
            *ns = 0.0;
        }
        let (ended, open): (Vec<_>, Vec<_>) = self
            .pending_samples
            .drain(..)
            .partition(|(stretch, _)| *stretch == number);
        self.pending_samples = open;
        for (_, mut key) in ended {
            key.blocked = key.state != CPU || cpu_blocked;
            *self.samples.entry(key).or_insert(0) += 1;
        }
        self.closed.push_back((number, cpu_blocked));
        if self.closed.len() > CLOSED_KEPT {
            self.closed.pop_front();
        }
    }

    /// The run (or the thread) ended with a stretch open: like the event-loop analysis, it
    /// is not charged to the loop.
    fn settle(&mut self) {
        for (state, ns) in self.pending_time.iter_mut().enumerate() {
            self.time[0][state] += *ns;
            *ns = 0.0;
        }
        for (_, key) in self.pending_samples.drain(..) {
            *self.samples.entry(key).or_insert(0) += 1;
        }
    }
}

/// Frames and stacks by number, so samples are a few integers each.
#[derive(Debug, Default)]
struct Interner {
    frames: Vec<StackFrame>,
    frame_ids: HashMap<StackFrame, u32>,
    /// Each frame's function: (function, file) by number.
    function_of: Vec<u32>,
    function_ids: HashMap<(String, String), u32>,
    stacks: Vec<Vec<u32>>,
    stack_ids: HashMap<Vec<u32>, u32>,
}

impl Interner {
    fn frame(&mut self, frame: &StackFrame) -> u32 {
        if let Some(&id) = self.frame_ids.get(frame) {
            return id;
        }
        let id = self.frames.len() as u32;
        self.frames.push(frame.clone());
        self.frame_ids.insert(frame.clone(), id);
        let functions = self.function_ids.len() as u32;
        let function = *self
            .function_ids
            .entry((frame.function.clone(), frame.file.clone()))
            .or_insert(functions);
        self.function_of.push(function);
        id
    }

    fn stack(&mut self, frames: &[StackFrame]) -> u32 {
        let ids: Vec<u32> = frames
            .iter()
            .take(STACK_FRAMES)
            .map(|f| self.frame(f))
            .collect();
        if let Some(&id) = self.stack_ids.get(&ids) {
            return id;
        }
        let id = self.stacks.len() as u32;
        self.stacks.push(ids.clone());
        self.stack_ids.insert(ids, id);
        id
    }
}

/// Follows the stack samples tick by tick (fed by `TickAnalyser` after the event-loop
/// analysis, whose stretches it shares).
#[derive(Debug, Default)]
pub struct CodeTracker {
    source: Option<String>,
    processes: HashMap<i32, ProcessCode>,
    /// Processes a source wanted, and why each that could not be read was not.
    wanted: usize,
    unavailable: Vec<(i32, String)>,
    /// The ticks that asked for stacks (their `at_ns`), with the thread states then.
    asked: VecDeque<(u64, AskedStates)>,
    threads: HashMap<(i32, i32), ThreadCode>,
    finished: Vec<((i32, i32), ThreadCode)>,
    interner: Interner,
    reads: u64,
    failed_reads: u64,
    samples: u64,
    read_cpu_ns: u64,
    first_read_ns: Option<u64>,
    last_tick_ns: u64,
    series_len: usize,
    /// Every `series_stride`-th sample goes into the series.
    series_stride: u64,
}

impl CodeTracker {
    pub fn ingest(&mut self, snapshot: &TickSnapshot, tick: &TickIntervals, loops: &LoopTracker) {
        self.last_tick_ns = snapshot.at_ns;
        if let Some(read) = &snapshot.stacks {
            self.take(read);
        }
        self.account(snapshot, tick, loops);
        if snapshot.stacks_requested {
            let states = tick
                .threads
                .iter()
                .filter(|i| self.processes.get(&i.pid).is_some_and(|p| p.reading))
                .map(|interval| {
                    let asked = Asked {
                        state: state_index(interval.wait_after),
                        polling: loops.polling_peers(interval.pid, interval.tid).is_some(),
                        stretch: loops
                            .charge(interval.pid, interval.tid)
                            .and_then(|charge| charge.open),
                    };
                    ((interval.pid, interval.tid), asked)
                })
                .collect();
            self.asked.push_back((snapshot.at_ns, states));
            if self.asked.len() > MAX_ASKED {
                self.asked.pop_front();
            }
        }
    }

    /// A read's stacks and news.
    fn take(&mut self, read: &StackRead) {
        for note in &read.notes {
            match note {
                StackNote::Attaching { .. } => self.wanted += 1,
                StackNote::Following {
                    pid,
                    source,
                    runtime_dirs,
                    ..
                } => {
                    self.source.get_or_insert_with(|| source.clone());
                    self.processes.insert(
                        *pid,
                        ProcessCode {
                            runtime_dirs: runtime_dirs.clone(),
                            reading: true,
                        },
                    );
                }
                StackNote::Unavailable { pid, reason } => {
                    if let Some(process) = self.processes.get_mut(pid) {
                        process.reading = false;
                    }
                    self.unavailable.push((*pid, reason.clone()));
                }
            }
        }
        self.read_cpu_ns += read.read_cpu_ns;
        let Some(at_ns) = read.requested_at_ns else {
            return;
        };
        self.reads += 1;
        self.first_read_ns.get_or_insert(at_ns);
        self.failed_reads += read.failed.len() as u64;
        // The ticks asked before this one will get no stacks any more.
        while self.asked.front().is_some_and(|(at, _)| *at < at_ns) {
            self.asked.pop_front();
        }
        let Some((_, states)) = self.asked.pop_front().filter(|(at, _)| *at == at_ns) else {
            return;
        };
        for stack in &read.threads {
            if let Some(asked) = states.get(&(stack.pid, stack.tid)) {
                self.sample(at_ns, stack, *asked);
            }
        }
    }

    fn sample(&mut self, at_ns: u64, stack: &ThreadStack, asked: Asked) {
        let Some(process) = self.processes.get(&stack.pid) else {
            return;
        };
        let Some(user) = user_frame(&stack.frames, &process.runtime_dirs) else {
            return;
        };
        let user = self.interner.frame(&stack.frames[user]);
        let key = SampleKey {
            blocked: false,
            polling: asked.polling || (asked.state != CPU && in_poller(&stack.frames)),
            state: asked.state,
            user,
            stack: self.interner.stack(&stack.frames),
        };
        self.samples += 1;
        let keep_in_series = self.samples.is_multiple_of(self.series_stride.max(1));
        let thread = self.threads.entry((stack.pid, stack.tid)).or_default();
        match asked.stretch {
            Some(number) => match thread.closed.iter().find(|(n, _)| *n == number) {
                Some(&(_, cpu_blocked)) => {
                    let blocked = key.state != CPU || cpu_blocked;
                    *thread
                        .samples
                        .entry(SampleKey { blocked, ..key })
                        .or_insert(0) += 1;
                }
                None => thread.pending_samples.push((number, key)),
            },
            None => *thread.samples.entry(key).or_insert(0) += 1,
        }
        if keep_in_series {
            thread.series.push((at_ns, user));
            self.series_len += 1;
            if self.series_len > MAX_SERIES {
                self.thin_series();
            }
        }
    }

    fn thin_series(&mut self) {
        self.series_stride = self.series_stride.max(1) * 2;
        self.series_len = 0;
        for thread in self
            .threads
            .values_mut()
            .chain(self.finished.iter_mut().map(|(_, t)| t))
        {
            let mut index = 0;
            thread.series.retain(|_| {
                index += 1;
                index % 2 == 0
            });
            self.series_len += thread.series.len();
        }
    }

    /// Each thread's time in each state, for the processes whose stacks are read.
    fn account(&mut self, snapshot: &TickSnapshot, tick: &TickIntervals, loops: &LoopTracker) {
        for interval in &tick.threads {
            if !self.processes.get(&interval.pid).is_some_and(|p| p.reading) {
                continue;
            }
            let thread = self
                .threads
                .entry((interval.pid, interval.tid))
                .or_default();
            let charge = loops
                .charge(interval.pid, interval.tid)
                .copied()
                .unwrap_or_default();
            let split = &interval.split;
            thread.time[0][usize::from(CPU)] += split.cpu_ns - charge.cpu_ns;
            thread.pending_time[usize::from(CPU)] += charge.cpu_ns;
            for kind in WaitKind::ALL {
                let state = kind.index() + 1;
                let charged = charge.waits_ns[kind.index()];
                thread.time[0][state] += split.wait(kind) - charged;
                thread.pending_time[state] += charged;
            }
            if let Some((number, cpu_blocked)) = charge.closed {
                thread.close(number, cpu_blocked);
            }
        }
        for key in &snapshot.exited {
            if let Some(mut thread) = self.threads.remove(key) {
                thread.settle();
                if !thread.samples.is_empty() {
                    self.finished.push((*key, thread));
                }
            }
        }
    }

    /// The hotspots of the states asked for (`None` when no process's stacks were wanted).
    pub fn conclude(&self, loops: &LoopTracker, states: &[CodeState]) -> Option<CodeFindings> {
        if self.source.is_none() && self.unavailable.is_empty() && self.wanted == 0 {
            return None;
        }
        let charged = self.charged(loops);
        let mut hotspots: Vec<Hotspot> = states
            .iter()
            .flat_map(|&state| self.ranked(&charged, state))
            .collect();
        // The states in the order given (most telling first), each by its seconds.
        let rank = |h: &Hotspot| states.iter().position(|s| *s == h.state);
        hotspots.sort_by(|a, b| rank(a).cmp(&rank(b)).then(b.seconds.total_cmp(&a.seconds)));
        let span_s = self.first_read_ns.map_or(0.0, |first| {
            self.last_tick_ns.saturating_sub(first) as f64 / 1e9
        });
        Some(CodeFindings {
            source: self.source.clone(),
            stack_samples: self.samples,
            failed_reads: self.failed_reads,
            reads: self.reads,
            rate_hz: if span_s > 0.0 {
                self.reads as f64 / span_s
            } else {
                0.0
            },
            read_cpu_ms: if self.reads > 0 {
                self.read_cpu_ns as f64 / 1e6 / self.reads as f64
            } else {
                0.0
            },
            unavailable: self.unavailable_reason(),
            // With no stacks at all, `unavailable` says why already.
            not_read: if self.samples == 0 {
                Vec::new()
            } else {
                self.unavailable
                    .iter()
                    .map(|(pid, reason)| format!("pid {pid}: {reason}"))
                    .collect()
            },
            hotspots,
            series: charged.series,
            labels: self.interner.frames.iter().map(label).collect(),
        })
    }

    /// Every thread's time per state shared among its samples' functions, summed per
    /// (state, user function): a function's lines are summed (the busy loop of a function
    /// spans several), and its line is the one most samples were on.
    fn charged(&self, loops: &LoopTracker) -> Charged {
        let mut charged = Charged::default();
        let threads = self
            .threads
            .iter()
            .chain(self.finished.iter().map(|(k, t)| (k, t)));
        for (&(pid, tid), thread) in threads {
            let mut thread = thread.clone();
            thread.settle();
            let is_loop = loops.is_loop(pid, tid);
            // The time of each state is shared among the samples in that state: for a loop
            // thread's blocked time, per what it did while blocked (its sleep among the
            // samples that slept, its computing among those that computed).
            let fine = |blocked: bool, state: u8| (blocked && is_loop, state);
            let mut time: HashMap<(bool, u8), f64> = HashMap::new();
            for (blocked, row) in thread.time.iter().enumerate() {
                for (state, ns) in row.iter().enumerate() {
                    *time.entry(fine(blocked == 1, state as u8)).or_insert(0.0) += ns.max(0.0);
                }
            }
            let mut counts: HashMap<(bool, u8), u32> = HashMap::new();
            for (key, n) in &thread.samples {
                *counts.entry(fine(key.blocked, key.state)).or_insert(0) += n;
            }
            for (key, &n) in &thread.samples {
                let fine = fine(key.blocked, key.state);
                let per_sample_ns = time.get(&fine).copied().unwrap_or(0.0)
                    / f64::from(counts.get(&fine).copied().unwrap_or(1).max(1));
                let state = match fine {
                    (true, _) => CodeState::LoopBlocked,
                    (false, index) => CodeState::of_index(index),
                };
                *charged.state_samples.entry(state).or_insert(0) += u64::from(n);
                if key.polling {
                    continue;
                }
                let function = self.interner.function_of[key.user as usize];
                let spot = charged.spots.entry((state, function)).or_default();
                spot.add(pid, tid, key, n, per_sample_ns);
            }
            if !thread.series.is_empty() {
                charged.series.insert((pid, tid), thread.series);
            }
        }
        charged
    }

    /// A state's first few functions, most seconds first.
    fn ranked(&self, charged: &Charged, state: CodeState) -> Vec<Hotspot> {
        let total = charged.state_samples.get(&state).copied().unwrap_or(0);
        let mut of_state: Vec<(&u32, &Spot)> = charged
            .spots
            .iter()
            .filter(|((s, _), _)| *s == state)
            .map(|((_, function), spot)| (function, spot))
            .collect();
        of_state.sort_by(|a, b| {
            b.1.seconds_ns
                .total_cmp(&a.1.seconds_ns)
                .then(b.1.samples.cmp(&a.1.samples))
                .then(a.0.cmp(b.0))
        });
        let mut hotspots = Vec::new();
        for (rank, (_, spot)) in of_state.into_iter().enumerate() {
            let share = spot.samples as f64 / total.max(1) as f64;
            if rank >= HOTSPOTS_PER_STATE || (rank > 0 && share < MIN_SHARE) {
                break;
            }
            hotspots.push(self.hotspot(state, spot, share));
        }
        hotspots
    }

    /// Why no stack could be joined, when none was.
    fn unavailable_reason(&self) -> Option<String> {
        if self.samples > 0 {
            return None;
        }
        Some(match self.unavailable.first() {
            Some((_, reason)) => reason.clone(),
            None if self.source.is_some() => {
                "no stack was read while the program ran (it ended too soon after the \
                 reader attached)"
                    .to_string()
            }
            None => "the program ended before its stacks could be read (attaching takes a \
                     few milliseconds after the interpreter starts)"
                .to_string(),
        })
    }

    fn hotspot(&self, state: CodeState, spot: &Spot, share: f64) -> Hotspot {
        // The function's line most samples were on.
        let user = most(&spot.lines).unwrap_or(0);
        let frame = &self.interner.frames[user as usize];
        let labels = |stack: u32| -> Vec<String> {
            self.interner.stacks[stack as usize]
                .iter()
                .map(|&id| label(&self.interner.frames[id as usize]))
                .collect()
        };
        let stack = most(&spot.stacks).map_or_else(Vec::new, labels);
        let mut tids: Vec<i32> = spot.tids.keys().copied().collect();
        tids.sort_unstable();
        tids.truncate(MAX_TIDS);
        Hotspot {
            state,
            function: frame.function.clone(),
            file: frame.file.clone(),
            line: frame.line,
            share,
            seconds: spot.seconds_ns / 1e9,
            samples: spot.samples,
            pid: most(&spot.pids).unwrap_or(0),
            tids,
            innermost: stack.first().cloned().unwrap_or_else(|| label(frame)),
            stack,
            blocked_in: (state == CodeState::LoopBlocked)
                .then(|| most(&spot.underlying).map(CodeState::of_index))
                .flatten(),
        }
    }
}

/// The key with the most.
fn most<K: Copy + Ord>(counts: &HashMap<K, u64>) -> Option<K> {
    counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(key, _)| *key)
}

/// What `CodeTracker::charged` sums over threads.
#[derive(Debug, Default)]
struct Charged {
    spots: HashMap<(CodeState, u32), Spot>,
    state_samples: HashMap<CodeState, u64>,
    series: HashMap<(i32, i32), Vec<(u64, u32)>>,
}

/// A (state, user function) as it is summed over threads.
#[derive(Debug, Default)]
struct Spot {
    samples: u64,
    /// Samples per user frame (the function's lines).
    lines: HashMap<u32, u64>,
    seconds_ns: f64,
    pids: HashMap<i32, u64>,
    tids: HashMap<i32, u64>,
    stacks: HashMap<u32, u64>,
    /// The states the samples were in under `loop_blocked`.
    underlying: HashMap<u8, u64>,
}

impl Spot {
    fn add(&mut self, pid: i32, tid: i32, key: &SampleKey, n: u32, per_sample_ns: f64) {
        let n64 = u64::from(n);
        self.samples += n64;
        self.seconds_ns += per_sample_ns * f64::from(n);
        *self.lines.entry(key.user).or_insert(0) += n64;
        *self.pids.entry(pid).or_insert(0) += n64;
        *self.tids.entry(tid).or_insert(0) += n64;
        *self.stacks.entry(key.stack).or_insert(0) += n64;
        *self.underlying.entry(key.state).or_insert(0) += n64;
    }
}

/// One function of the user's code and the time of one state charged to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hotspot {
    pub state: CodeState,
    pub function: String,
    pub file: String,
    /// The line most of its samples were on.
    pub line: u32,
    /// Of this state's stack samples in the tree.
    pub share: f64,
    /// Thread-seconds of this state charged to this frame.
    pub seconds: f64,
    pub samples: u64,
    /// The process with most of its samples, and every thread that contributed.
    pub pid: i32,
    pub tids: Vec<i32>,
    /// The innermost frame of its most common stack ("recv_into (socket.py:706)").
    pub innermost: String,
    /// That stack, innermost first, at most `STACK_FRAMES`.
    pub stack: Vec<String>,
    /// For `loop_blocked`: what the loop thread mostly did there (cpu, sleep, network...).
    pub blocked_in: Option<CodeState>,
}

impl Hotspot {
    /// "checksum (hotlib.py:12)".
    pub fn place(&self) -> String {
        label(&StackFrame {
            function: self.function.clone(),
            file: self.file.clone(),
            line: self.line,
        })
    }
}

/// What the stacks said about where the time went.
#[derive(Debug, Clone, Default)]
pub struct CodeFindings {
    /// The reader ("py-spy"), once one read a process.
    pub source: Option<String>,
    /// Stacks joined to a thread state.
    pub stack_samples: u64,
    pub failed_reads: u64,
    pub reads: u64,
    /// Reads per second while stacks were read.
    pub rate_hz: f64,
    /// CPU time one read cost, on average.
    pub read_cpu_ms: f64,
    /// Why there are no hotspots, when there are none for lack of stacks.
    pub unavailable: Option<String>,
    /// The processes whose stacks could not be read, and why.
    pub not_read: Vec<String>,
    /// Most seconds first.
    pub hotspots: Vec<Hotspot>,
    /// Each thread's samples in time order: (tick, frame number), for the trace.
    series: HashMap<(i32, i32), Vec<(u64, u32)>>,
    labels: Vec<String>,
}

impl CodeFindings {
    /// Findings that are only these hotspots (no samples in time order: the trace gets no
    /// frames from them).
    pub fn of_hotspots(hotspots: Vec<Hotspot>) -> CodeFindings {
        CodeFindings {
            hotspots,
            ..CodeFindings::default()
        }
    }

    /// The first hotspot of a state.
    pub fn top(&self, state: CodeState) -> Option<&Hotspot> {
        self.hotspots.iter().find(|h| h.state == state)
    }

    pub fn of_state(&self, state: CodeState) -> impl Iterator<Item = &Hotspot> {
        self.hotspots.iter().filter(move |h| h.state == state)
    }

    /// The user frame a thread was seen in most between two instants (ns since sampling
    /// started), if a sample fell between them.
    pub fn frame_between(&self, pid: i32, tid: i32, start_ns: u64, end_ns: u64) -> Option<&str> {
        let series = self.series.get(&(pid, tid))?;
        let first = series.partition_point(|(at, _)| *at < start_ns);
        let within = series[first..].iter().take_while(|(at, _)| *at <= end_ns);
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for (_, frame) in within {
            *counts.entry(*frame).or_insert(0) += 1;
        }
        let frame = counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))?
            .0;
        self.labels.get(frame as usize).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::accountant::{ThreadInterval, TimeSplit};

    const TICK_NS: u64 = 10_000_000;
    const PID: i32 = 40;
    const STDLIB: &str = "/opt/py/lib/python3.11/";

    fn frame(function: &str, file: &str, line: u32) -> StackFrame {
        StackFrame {
            function: function.into(),
            file: file.into(),
            line,
        }
    }

    fn following() -> StackRead {
        StackRead {
            notes: vec![StackNote::Following {
                pid: PID,
                source: "test".into(),
                interpreter: "CPython 3.11.7".into(),
                runtime_dirs: vec![STDLIB.into()],
            }],
            ..StackRead::default()
        }
    }

    /// Feeds one tick: the thread's interval (10 ms in `wait`, or computing), the stacks that
    /// came back for the previous tick, and a request for this one.
    fn tick(
        tracker: &mut CodeTracker,
        loops: &LoopTracker,
        n: u64,
        wait: Option<WaitKind>,
        back: Option<(u64, Vec<StackFrame>)>,
    ) {
        let split = match wait {
            Some(kind) => TimeSplit::with_waits(0.0, &[(kind, TICK_NS as f64)]),
            None => TimeSplit::with_waits(TICK_NS as f64, &[]),
        };
        let intervals = TickIntervals {
            tick_ns: TICK_NS as f64,
            threads: vec![ThreadInterval {
                pid: PID,
                tid: PID,
                observation: 0,
                account_started_ns: 0,
                split,
                wait_before: wait,
                wait_after: wait,
            }],
            ..TickIntervals::default()
        };
        let mut snapshot = TickSnapshot {
            at_ns: n * TICK_NS,
            stacks_requested: true,
            ..TickSnapshot::default()
        };
        if n == 0 {
            snapshot.stacks = Some(following());
        }
        if let Some((asked_at, frames)) = back {
            let read = snapshot.stacks.get_or_insert_with(StackRead::default);
            read.requested_at_ns = Some(asked_at);
            read.threads.push(ThreadStack {
                pid: PID,
                tid: PID,
                frames,
            });
        }
        tracker.ingest(&snapshot, &intervals, loops);
    }

    #[test]
    // Long because it checks one scenario (a second computing, a second asleep, one raced
    // stack) from every side, all from the one conclusion.
    fn the_time_of_each_state_comes_from_the_sampler_and_the_stacks_only_share_it() {
        let loops = LoopTracker::default();
        let mut tracker = CodeTracker::default();
        let crunch = vec![
            frame("crunch", "/srv/app/work.py", 5),
            frame("main", "/srv/app/main.py", 9),
        ];
        let nap = vec![
            frame("sleep", &format!("{STDLIB}time_helpers.py"), 3),
            frame("nap", "/srv/app/work.py", 12),
            frame("main", "/srv/app/main.py", 10),
        ];
        // 1 s computing in crunch, then 1 s asleep in nap; one stack of crunch comes back
        // for a tick at which the thread was asleep (a read that raced a state change).
        for n in 0..200u64 {
            let wait = (n >= 100).then_some(WaitKind::Sleep);
            let back = n.checked_sub(1).map(|asked| {
                let frames = if asked < 100 || asked == 150 {
                    crunch.clone()
                } else {
                    nap.clone()
                };
                (asked * TICK_NS, frames)
            });
            tick(&mut tracker, &loops, n, wait, back);
        }
        let states = [CodeState::Cpu, CodeState::Wait(WaitKind::Sleep)];
        let code = tracker.conclude(&loops, &states).unwrap();
        assert_eq!(code.source.as_deref(), Some("test"));
        assert_eq!(code.stack_samples, 199);
        let cpu = code.top(CodeState::Cpu).unwrap();
        assert_eq!((cpu.function.as_str(), cpu.line), ("crunch", 5));
        // All the CPU time, no more: the odd crunch stack seen asleep took none of it.
        assert!((cpu.seconds - 1.0).abs() < 1e-6, "{cpu:?}");
        assert_eq!(cpu.share, 1.0);
        let sleep = code.top(CodeState::Wait(WaitKind::Sleep)).unwrap();
        // The user's frame, not the library's innermost one, which is kept beside it.
        assert_eq!(sleep.function, "nap");
        assert_eq!(sleep.innermost, "sleep (time_helpers.py:3)");
        assert_eq!(
            sleep.stack,
            [
                "sleep (time_helpers.py:3)",
                "nap (work.py:12)",
                "main (main.py:10)"
            ]
        );
        // 98 of the 99 sleeping samples: 98 % of the second.
        assert!((sleep.seconds - 98.0 / 99.0).abs() < 1e-6, "{sleep:?}");
        let odd = code
            .of_state(CodeState::Wait(WaitKind::Sleep))
            .find(|h| h.function == "crunch");
        assert!(odd.is_none_or(|h| h.samples == 1), "{odd:?}");
        // The trace finds the frame of a stretch from its samples.
        assert_eq!(
            code.frame_between(PID, PID, 20 * TICK_NS, 40 * TICK_NS),
            Some("crunch (work.py:5)")
        );
        assert_eq!(
            code.frame_between(PID, PID, 500 * TICK_NS, 600 * TICK_NS),
            None
        );
    }

    #[test]
    fn a_loop_seen_in_its_poller_by_its_stack_names_no_function_before_the_loop_is_known() {
        // No loop is known to the tracker (too early in the run): the stack alone says the
        // thread waits in asyncio's selector, and asyncio.run's caller is no code to fix.
        let loops = LoopTracker::default();
        let mut tracker = CodeTracker::default();
        let polling = vec![
            frame("select", &format!("{STDLIB}selectors.py"), 468),
            frame(
                "_run_once",
                &format!("{STDLIB}asyncio/base_events.py"),
                1898,
            ),
            frame("<module>", "/srv/app/client.py", 29),
        ];
        let fetch = vec![
            frame("recv_into", &format!("{STDLIB}socket.py"), 12),
            frame("fetch", "/srv/app/client.py", 14),
        ];
        for n in 0..100u64 {
            let back = n.checked_sub(1).map(|asked| {
                (
                    asked * TICK_NS,
                    if asked % 2 == 0 {
                        polling.clone()
                    } else {
                        fetch.clone()
                    },
                )
            });
            tick(&mut tracker, &loops, n, Some(WaitKind::Network), back);
        }
        let code = tracker
            .conclude(&loops, &[CodeState::Wait(WaitKind::Network)])
            .unwrap();
        let named: Vec<&str> = code
            .of_state(CodeState::Wait(WaitKind::Network))
            .map(|h| h.function.as_str())
            .collect();
        assert_eq!(named, ["fetch"]);
        assert!(in_poller(&polling));
        assert!(!in_poller(&fetch));
    }

    #[test]
    fn the_users_frame_is_the_innermost_outside_the_runtime_and_site_packages() {
        let dirs = vec![STDLIB.to_string()];
        let frames = [
            frame("SocketIO.readinto", &format!("{STDLIB}socket.py"), 706),
            frame(
                "get",
                "/srv/venv/lib/python3.11/site-packages/requests/api.py",
                73,
            ),
            frame(
                "_call_with_frames_removed",
                "<frozen importlib._bootstrap>",
                241,
            ),
            frame("fetch", "/srv/app/client.py", 10),
            frame("<module>", "/srv/app/client.py", 20),
        ];
        assert_eq!(user_frame(&frames, &dirs), Some(3));
        assert_eq!(owner(&frames[1].file, &dirs), FrameOwner::ThirdParty);
        assert_eq!(owner(&frames[2].file, &dirs), FrameOwner::Runtime);
        assert_eq!(owner("<string>", &dirs), FrameOwner::User);
        // Nothing of the user's: the innermost third-party frame, else the innermost.
        assert_eq!(user_frame(&frames[..3], &dirs), Some(1));
        assert_eq!(user_frame(&frames[..1], &dirs), Some(0));
        assert_eq!(user_frame(&[], &dirs), None);
    }

    #[test]
    fn a_process_never_read_leaves_a_reason_and_no_process_wanted_leaves_nothing() {
        let loops = LoopTracker::default();
        let tracker = CodeTracker::default();
        assert!(tracker.conclude(&loops, &[CodeState::Cpu]).is_none());
        let mut tracker = CodeTracker::default();
        let snapshot = TickSnapshot {
            stacks: Some(StackRead {
                notes: vec![
                    StackNote::Attaching { pid: PID },
                    StackNote::Unavailable {
                        pid: PID,
                        reason: "ptrace access denied".into(),
                    },
                ],
                ..StackRead::default()
            }),
            ..TickSnapshot::default()
        };
        tracker.ingest(&snapshot, &TickIntervals::default(), &loops);
        let code = tracker.conclude(&loops, &[CodeState::Cpu]).unwrap();
        assert_eq!(code.unavailable.as_deref(), Some("ptrace access denied"));
        assert!(code.hotspots.is_empty() && code.source.is_none());
    }
}
