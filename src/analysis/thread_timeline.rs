//! Each thread's states over time (on a CPU, queued, each wait kind), as run-length segments built tick by tick and kept within an event budget.
//!
//! The accountant splits each thread's tick into CPU, run-queue and wait time; this module lays
//! that split out along the thread's own time line (the wait it was in at the tick's start
//! first, the wait it was in at the end last), joins it to the thread's last segment when the
//! state is the same, and remembers what the thread was blocked in (the syscall, the kind of
//! descriptor). Pieces shorter than a millisecond are gathered per state and laid out when they
//! add up to one, so a computing thread queued for a few microseconds each tick shows as one
//! long slice. Snapshots are not kept, so this is the only record of who did what when.
//!
//! Bounded: when the segments outgrow the budget, runs of segments shorter than a resolution
//! are merged window by window (each window keeps one segment per state with that state's total
//! time, so per-thread totals stay exact; only where within the window it happened is lost),
//! and the resolution doubles until they fit. The result says which resolution it took.

use std::collections::{HashMap, HashSet};

use rustc_hash::FxHashMap;

use super::accountant::ThreadInterval;
use super::wait_kind::{fd_wait_kind, WaitKind};
use crate::sampler::observation::{FdKind, SyscallState, ThreadState, TickSnapshot};

/// Trace events kept by default: threads' slices plus the records that name threads and
/// processes.
pub const DEFAULT_EVENT_BUDGET: usize = 200_000;
/// The smallest budget accepted: it must leave room for the records besides the slices.
pub const MIN_EVENT_BUDGET: usize = 1_000;
/// Events of a trace that are neither a thread's slices nor its or its process's name: the
/// phases and the trace's own metadata.
pub const RESERVED_EVENTS: usize = 256;
/// Trace records each thread costs besides its slices (see `events`).
pub const RECORDS_PER_THREAD: usize = 3;
/// The resolution the first merge uses; it doubles until the segments fit.
const FIRST_RESOLUTION_NS: u64 = 1_000_000;
/// Pieces of a tick shorter than this (a thread queued for 40 us of a 10 ms tick of computing)
/// are gathered per state until they add up to it, or until the thread next spends a longer
/// stretch in that state, instead of cutting every tick's slice in two.
const SLIVER_NS: u64 = 1_000_000;

/// What a thread was doing in a stretch of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Cpu,
    Runqueue,
    Wait(WaitKind),
}

impl State {
    pub const COUNT: usize = 2 + WaitKind::COUNT;

    pub fn index(self) -> usize {
        match self {
            State::Cpu => 0,
            State::Runqueue => 1,
            State::Wait(kind) => 2 + kind.index(),
        }
    }

    pub fn from_index(index: usize) -> Option<State> {
        match index {
            0 => Some(State::Cpu),
            1 => Some(State::Runqueue),
            _ => WaitKind::ALL.get(index - 2).map(|kind| State::Wait(*kind)),
        }
    }

    /// Every state, in report order: cpu, runqueue, then the wait kinds.
    pub fn all() -> impl Iterator<Item = State> {
        [State::Cpu, State::Runqueue]
            .into_iter()
            .chain(WaitKind::ALL.into_iter().map(State::Wait))
    }

    /// "cpu", "runqueue", or the wait kind's name.
    pub fn name(self) -> &'static str {
        match self {
            State::Cpu => "cpu",
            State::Runqueue => "runqueue",
            State::Wait(kind) => kind.name(),
        }
    }
}

/// What a waiting thread was blocked in, when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WaitDetail {
    /// The system call's name.
    pub syscall: Option<&'static str>,
    /// The kind of the descriptor that decided the wait kind.
    pub fd: Option<FdKind>,
}

impl WaitDetail {
    /// What `state` says about a wait of `kind`; `None` when it says nothing.
    fn of(state: &ThreadState, kind: WaitKind) -> Option<WaitDetail> {
        let syscall = match &state.syscall {
            SyscallState::Blocked { call, .. } => Some(call.name()),
            _ => None,
        };
        let fd = state
            .fds
            .iter()
            .copied()
            .find(|fd| fd_wait_kind(*fd) == Some(kind));
        (syscall.is_some() || fd.is_some()).then_some(WaitDetail { syscall, fd })
    }
}

/// A stretch of one state, ending at `end_ns`; it starts where the one before it ends (or at
/// the track's start). Sixteen bytes: the budget bounds how many are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub end_ns: u64,
    pub state: State,
    /// Index into `ThreadTimelines::details`.
    pub detail: Option<u16>,
}

/// One thread's time line, from the start of its account to its last interval.
#[derive(Debug, Clone)]
pub struct Track {
    pub pid: i32,
    pub tid: i32,
    pub name: String,
    /// ns since sampling started (`ThreadAccount::started_ns`).
    pub start_ns: u64,
    pub segments: Vec<Segment>,
    /// The thread exited during the measurement.
    pub exited: bool,
    /// CPU and run-queue time: which threads to leave out first when even merging does not fit.
    busy_ns: f64,
    /// The last wait the thread was seen in, with what it was blocked in.
    last_wait: Option<(WaitKind, Option<u16>)>,
    /// Segments before this index are merged at the current resolution already.
    settled: usize,
    /// Slivers not laid out yet, per state (see `SLIVER_NS`).
    slivers: [u64; State::COUNT],
    /// Left out to keep the budget: its intervals are ignored from then on.
    left_out: bool,
}

/// pid, tid and the start of the account: one thread, even when its TID was reused.
type TrackId = (i32, i32, u64);

/// A stretch of one state on a track, with absolute times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slice {
    pub start_ns: u64,
    pub end_ns: u64,
    pub state: State,
    pub detail: Option<u16>,
}

impl Track {
    fn new(interval: &ThreadInterval) -> Track {
        Track {
            pid: interval.pid,
            tid: interval.tid,
            name: String::new(),
            start_ns: interval.account_started_ns,
            segments: Vec::new(),
            exited: false,
            busy_ns: 0.0,
            last_wait: None,
            settled: 0,
            slivers: [0; State::COUNT],
            left_out: false,
        }
    }

    /// Adds `ns` of `state` to the slivers of that state, and lays them out once the piece or
    /// their sum is at least `SLIVER_NS`. Returns whether a segment was added.
    fn place(&mut self, state: State, ns: u64, detail: Option<u16>) -> bool {
        let gathered = &mut self.slivers[state.index()];
        *gathered += ns;
        if ns < SLIVER_NS && *gathered < SLIVER_NS {
            return false;
        }
        let ns = std::mem::take(gathered);
        self.push(state, ns, detail)
    }

    /// Lays out the slivers still gathered (at the end of the track); returns the segments added.
    fn flush_slivers(&mut self) -> usize {
        let mut added = 0;
        for index in 0..State::COUNT {
            let ns = std::mem::take(&mut self.slivers[index]);
            if let Some(state) = State::from_index(index) {
                added += usize::from(self.push(state, ns, None));
            }
        }
        added
    }

    fn id(&self) -> TrackId {
        (self.pid, self.tid, self.start_ns)
    }

    /// Nanoseconds the track spent in `state`.
    pub fn time_in(&self, state: State) -> u64 {
        self.slices()
            .filter(|s| s.state == state)
            .map(|s| s.end_ns - s.start_ns)
            .sum()
    }

    pub fn end_ns(&self) -> u64 {
        self.segments.last().map_or(self.start_ns, |s| s.end_ns)
    }

    /// The segments with their start times.
    pub fn slices(&self) -> impl Iterator<Item = Slice> + '_ {
        let starts = std::iter::once(self.start_ns).chain(self.segments.iter().map(|s| s.end_ns));
        starts.zip(&self.segments).map(|(start_ns, s)| Slice {
            start_ns,
            end_ns: s.end_ns,
            state: s.state,
            detail: s.detail,
        })
    }

    /// Appends `ns` of `state`, joining the last segment if it is in the same state. Returns
    /// whether a segment was added.
    fn push(&mut self, state: State, ns: u64, detail: Option<u16>) -> bool {
        if ns == 0 {
            return false;
        }
        let end_ns = self.end_ns() + ns;
        match self.segments.last_mut() {
            Some(last) if last.state == state => {
                last.end_ns = end_ns;
                last.detail = last.detail.or(detail);
                false
            }
            _ => {
                self.segments.push(Segment {
                    end_ns,
                    state,
                    detail,
                });
                true
            }
        }
    }
}

/// The per-thread timeline being built (fed by `TickAnalyser`).
#[derive(Debug)]
pub struct ThreadTimeline {
    live: FxHashMap<(i32, i32), Track>,
    finished: Vec<Track>,
    details: Vec<WaitDetail>,
    detail_index: HashMap<WaitDetail, u16>,
    budget: usize,
    /// Segments on all tracks, and tracks not left out: what `events` counts.
    segments: usize,
    kept_tracks: usize,
    resolution_ns: u64,
    threads_left_out: u64,
    /// The latest time seen (ns since sampling started).
    latest_ns: u64,
}

impl Default for ThreadTimeline {
    fn default() -> Self {
        ThreadTimeline::with_budget(DEFAULT_EVENT_BUDGET)
    }
}

/// The per-thread timeline of a whole measurement, as the trace and the report read it.
#[derive(Debug, Clone, Default)]
pub struct ThreadTimelines {
    /// Threads that had any time, in the order they were first seen.
    pub tracks: Vec<Track>,
    /// What `Segment::detail` indexes.
    pub details: Vec<WaitDetail>,
    /// The budget the segments were kept within (slices and name records).
    pub event_budget: usize,
    /// Runs of segments shorter than this were merged to fit the budget (0: none were).
    pub resolution_ns: u64,
    /// Threads left out entirely because even merging did not fit them in the budget.
    pub threads_left_out: u64,
}

impl ThreadTimelines {
    pub fn detail(&self, index: Option<u16>) -> Option<&WaitDetail> {
        self.details.get(usize::from(index?))
    }

    /// The track of the thread whose account started at `started_ns`.
    pub fn track(&self, pid: i32, tid: i32, started_ns: u64) -> Option<&Track> {
        self.tracks
            .iter()
            .find(|t| t.pid == pid && t.tid == tid && t.start_ns == started_ns)
    }

    pub fn slices(&self) -> usize {
        self.tracks.iter().map(|t| t.segments.len()).sum()
    }
}

impl ThreadTimeline {
    /// `budget`: trace events at most (at least `MIN_EVENT_BUDGET`).
    pub fn with_budget(budget: usize) -> ThreadTimeline {
        ThreadTimeline {
            live: FxHashMap::default(),
            finished: Vec::new(),
            details: Vec::new(),
            detail_index: HashMap::new(),
            budget: budget.max(MIN_EVENT_BUDGET),
            segments: 0,
            kept_tracks: 0,
            resolution_ns: 0,
            threads_left_out: 0,
            latest_ns: 0,
        }
    }

    /// Lays each thread's interval of this tick out on its track.
    pub fn ingest(&mut self, snapshot: &TickSnapshot, intervals: &[ThreadInterval]) {
        self.latest_ns = self.latest_ns.max(snapshot.at_ns);
        for interval in intervals {
            let Some(observation) = snapshot.threads.get(interval.observation) else {
                continue;
            };
            let key = (interval.pid, interval.tid);
            let reused = self
                .live
                .get(&key)
                .is_some_and(|track| track.start_ns != interval.account_started_ns);
            if reused {
                if let Some(mut old) = self.live.remove(&key) {
                    old.exited = true;
                    self.finish(old);
                }
            }
            let after_detail = match (&observation.state, interval.wait_after) {
                (Some(state), Some(kind)) => {
                    WaitDetail::of(state, kind).and_then(|d| self.intern(d))
                }
                _ => None,
            };
            let track = match self.live.entry(key) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    self.kept_tracks += 1;
                    entry.insert(Track::new(interval))
                }
            };
            if let Some(name) = &observation.comm {
                track.name.clone_from(name);
            }
            if track.left_out {
                continue;
            }
            self.segments += lay_out(track, interval, after_detail, observation.state.is_some());
        }
        for key in &snapshot.exited {
            if let Some(mut track) = self.live.remove(key) {
                track.exited = true;
                self.finish(track);
            }
        }
        if self.events() > self.budget - RESERVED_EVENTS {
            self.fit_budget();
        }
    }

    fn finish(&mut self, mut track: Track) {
        if !track.left_out {
            self.segments += track.flush_slivers();
            self.finished.push(track);
        }
    }

    fn intern(&mut self, detail: WaitDetail) -> Option<u16> {
        if let Some(index) = self.detail_index.get(&detail) {
            return Some(*index);
        }
        let index = u16::try_from(self.details.len()).ok()?;
        self.details.push(detail);
        self.detail_index.insert(detail, index);
        Some(index)
    }

    /// Trace events the tracks would make: their slices, and per thread the records of its
    /// name and its place in the order, and (at most) one naming its process.
    pub fn events(&self) -> usize {
        self.segments + RECORDS_PER_THREAD * self.kept_tracks
    }

    fn tracks(&self) -> impl Iterator<Item = &Track> {
        self.live.values().chain(self.finished.iter())
    }

    fn tracks_mut(&mut self) -> impl Iterator<Item = &mut Track> {
        self.live.values_mut().chain(self.finished.iter_mut())
    }

    /// Merges short segments until the events take at most three quarters of what the budget
    /// allows (room to grow before the next merge): first what came since the last merge, at
    /// the resolution reached, then everything at double the resolution, and so on. When even
    /// a resolution as long as the run does not fit, the least busy threads are left out.
    fn fit_budget(&mut self) {
        let target = (self.budget - RESERVED_EVENTS) * 3 / 4;
        if self.resolution_ns > 0 {
            self.merge_all(self.resolution_ns);
        }
        while self.events() > target {
            if self.resolution_ns > self.latest_ns {
                self.leave_out_least_busy(target);
                return;
            }
            self.resolution_ns = (self.resolution_ns * 2).max(FIRST_RESOLUTION_NS);
            for track in self.tracks_mut() {
                track.settled = 0;
            }
            self.merge_all(self.resolution_ns);
        }
    }

    fn merge_all(&mut self, min_ns: u64) {
        let mut segments = 0;
        for track in self.tracks_mut() {
            merge_short(track, min_ns);
            segments += track.segments.len();
        }
        self.segments = segments;
    }

    fn leave_out_least_busy(&mut self, target: usize) {
        // Finished threads first (they will not come back), least busy first.
        let mut order: Vec<(bool, f64, usize, TrackId)> = self
            .tracks()
            .filter(|t| !t.left_out)
            .map(|t| (!t.exited, t.busy_ns, t.segments.len(), t.id()))
            .collect();
        order.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let mut events = self.events();
        let mut chosen: HashSet<TrackId> = HashSet::new();
        for (_, _, segments, id) in order {
            if events <= target {
                break;
            }
            events -= segments + RECORDS_PER_THREAD;
            chosen.insert(id);
        }
        self.threads_left_out += chosen.len() as u64;
        self.kept_tracks -= chosen.len();
        for track in self.tracks_mut() {
            if chosen.contains(&track.id()) {
                track.left_out = true;
                track.segments = Vec::new();
            }
        }
        self.finished.retain(|t| !t.left_out);
        self.segments = self.tracks().map(|t| t.segments.len()).sum();
    }

    /// The result: every track with time, in the order of their start.
    pub fn timelines(&self) -> ThreadTimelines {
        let mut tracks: Vec<Track> = self.tracks().filter(|t| !t.left_out).cloned().collect();
        for track in &mut tracks {
            track.flush_slivers();
        }
        tracks.retain(|t| !t.segments.is_empty());
        tracks.sort_by_key(|t| (t.start_ns, t.pid, t.tid));
        ThreadTimelines {
            tracks,
            details: self.details.clone(),
            event_budget: self.budget,
            resolution_ns: self.resolution_ns,
            threads_left_out: self.threads_left_out,
        }
    }
}

/// Lays one interval out on the track: the wait the thread was in at the start, its CPU and
/// run-queue time, any other wait (time the accountant gave to the wait last seen), then the
/// wait it was in at the end (when it was the same wait at both ends, half of it goes first and
/// half last, as the accountant splits a change of wait). Slivers are gathered (`Track::place`).
/// Returns the segments added.
// Long because the pieces are placed in time order from one running `left` array of wait
// time; split, each step would take the track, the split and `left` again (a hot path).
fn lay_out(
    track: &mut Track,
    interval: &ThreadInterval,
    after_detail: Option<u16>,
    observed: bool,
) -> usize {
    let split = &interval.split;
    let (before, after) = (interval.wait_before, interval.wait_after);
    let detail_of = |track: &Track, kind: WaitKind| match track.last_wait {
        Some((last, detail)) if last == kind => detail,
        _ => None,
    };
    // Unchanged since the last observation: still blocked in what it was blocked in then.
    let after_detail = match after {
        Some(kind) if !observed => detail_of(track, kind),
        _ => after_detail,
    };
    // Unchanged since its last observation and blocked throughout in the same wait (most
    // threads of a large program at most ticks): one piece of that wait.
    if let (false, Some(kind), true) = (observed, after, before == after) {
        let only_that_wait = split.cpu_ns == 0.0
            && split.runqueue_ns == 0.0
            && (split.waits_ns.iter().enumerate()).all(|(i, ns)| i == kind.index() || *ns == 0.0);
        if only_that_wait {
            let detail = after_detail;
            let ns = nanos(split.waits_ns[kind.index()]);
            track.last_wait = Some((kind, detail));
            return usize::from(track.place(State::Wait(kind), ns, detail));
        }
    }
    let mut added = 0;
    let mut left = split.waits_ns;
    if let Some(kind) = before {
        let ns = if after == before {
            left[kind.index()] / 2.0
        } else {
            left[kind.index()]
        };
        left[kind.index()] -= ns;
        let detail = detail_of(track, kind);
        added += usize::from(track.place(State::Wait(kind), nanos(ns), detail));
    }
    added += usize::from(track.place(State::Cpu, nanos(split.cpu_ns), None));
    added += usize::from(track.place(State::Runqueue, nanos(split.runqueue_ns), None));
    for kind in WaitKind::ALL {
        if Some(kind) != after && left[kind.index()] > 0.0 {
            let detail = detail_of(track, kind);
            added += usize::from(track.place(State::Wait(kind), nanos(left[kind.index()]), detail));
        }
    }
    if let Some(kind) = after {
        added += usize::from(track.place(
            State::Wait(kind),
            nanos(left[kind.index()]),
            after_detail.or(detail_of(track, kind)),
        ));
        track.last_wait = Some((kind, after_detail));
    }
    track.busy_ns += split.cpu_ns + split.runqueue_ns;
    added
}

fn nanos(ns: f64) -> u64 {
    ns.max(0.0).round() as u64
}

/// Merges the track's runs of segments shorter than `min_ns` (from its first unsettled one),
/// window by window: a window gathers consecutive short segments until it spans `min_ns`, and
/// becomes one segment per state it held, with that state's total time, in the order the
/// states first appeared. Segments at least `min_ns` long stay as they are.
fn merge_short(track: &mut Track, min_ns: u64) {
    let from = track.settled.min(track.segments.len());
    let mut start_ns = match from {
        0 => track.start_ns,
        n => track.segments[n - 1].end_ns,
    };
    let tail = track.segments.split_off(from);
    let mut merged = std::mem::take(&mut track.segments);
    let mut window = Window::new(start_ns);
    for segment in &tail {
        let ns = segment.end_ns - start_ns;
        if ns >= min_ns {
            window.flush_into(&mut merged);
            join(&mut merged, *segment);
            window = Window::new(segment.end_ns);
        } else {
            window.add(segment.state, ns, segment.detail);
            if window.ns >= min_ns {
                window.flush_into(&mut merged);
                window = Window::new(segment.end_ns);
            }
        }
        start_ns = segment.end_ns;
    }
    // The last window is not full yet: what it becomes is merged again with what follows.
    track.settled = merged.len();
    window.flush_into(&mut merged);
    track.segments = merged;
}

/// Appends a segment, joining the last one if it is in the same state.
fn join(segments: &mut Vec<Segment>, segment: Segment) {
    match segments.last_mut() {
        Some(last) if last.state == segment.state => {
            last.end_ns = segment.end_ns;
            last.detail = last.detail.or(segment.detail);
        }
        _ => segments.push(segment),
    }
}

/// Short segments being merged: each state's total time and detail, in order of appearance.
struct Window {
    start_ns: u64,
    ns: u64,
    per_state: [u64; State::COUNT],
    details: [Option<u16>; State::COUNT],
    order: Vec<State>,
}

impl Window {
    fn new(start_ns: u64) -> Window {
        Window {
            start_ns,
            ns: 0,
            per_state: [0; State::COUNT],
            details: [None; State::COUNT],
            order: Vec::new(),
        }
    }

    fn add(&mut self, state: State, ns: u64, detail: Option<u16>) {
        let index = state.index();
        if !self.order.contains(&state) {
            self.order.push(state);
        }
        self.per_state[index] += ns;
        self.details[index] = self.details[index].or(detail);
        self.ns += ns;
    }

    fn flush_into(&self, segments: &mut Vec<Segment>) {
        let mut end_ns = self.start_ns;
        for state in &self.order {
            end_ns += self.per_state[state.index()];
            join(
                segments,
                Segment {
                    end_ns,
                    state: *state,
                    detail: self.details[state.index()],
                },
            );
        }
    }
}

/// A run of timeline buckets in which a thread (or a group of threads) spent the most time in
/// one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateRun {
    /// Index of the first bucket.
    pub start: usize,
    pub buckets: usize,
    pub state: State,
}

/// The state with the most time in each of `buckets` buckets of `bucket_ns`, over these tracks
/// summed, as runs; buckets in which none of them had time are left out.
pub fn bucket_runs<'a>(
    tracks: impl IntoIterator<Item = &'a Track>,
    bucket_ns: f64,
    buckets: usize,
) -> Vec<StateRun> {
    if buckets == 0 || bucket_ns <= 0.0 {
        return Vec::new();
    }
    let mut time = vec![[0.0f64; State::COUNT]; buckets];
    for track in tracks {
        for slice in track.slices() {
            let (start, end) = (slice.start_ns as f64, slice.end_ns as f64);
            let first = ((start / bucket_ns) as usize).min(buckets - 1);
            let last = (((end - 1.0).max(start) / bucket_ns) as usize).min(buckets - 1);
            for (bucket, states) in time.iter_mut().enumerate().take(last + 1).skip(first) {
                let from = start.max(bucket as f64 * bucket_ns);
                let to = if bucket == buckets - 1 {
                    end
                } else {
                    end.min((bucket + 1) as f64 * bucket_ns)
                };
                states[slice.state.index()] += (to - from).max(0.0);
            }
        }
    }
    let mut runs: Vec<StateRun> = Vec::new();
    for (bucket, states) in time.iter().enumerate() {
        let Some((index, _)) = states
            .iter()
            .enumerate()
            .filter(|(_, ns)| **ns > 0.0)
            .max_by(|a, b| a.1.total_cmp(b.1))
        else {
            continue;
        };
        let Some(state) = State::from_index(index) else {
            continue;
        };
        match runs.last_mut() {
            Some(run) if run.state == state && run.start + run.buckets == bucket => {
                run.buckets += 1;
            }
            _ => runs.push(StateRun {
                start: bucket,
                buckets: 1,
                state,
            }),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::accountant::TimeSplit;
    use crate::sampler::observation::{Sighting, ThreadObservation};

    const MS: f64 = 1e6;

    fn observation(tid: i32, at_ns: u64, state: Option<ThreadState>) -> ThreadObservation {
        ThreadObservation {
            pid: 1,
            tid,
            at_ns,
            sighting: Sighting::Continuing,
            comm: Some(format!("t{tid}")),
            cpu_ns: 0,
            runqueue_ns: 0,
            timeslices: 0,
            state: state.map(Box::new),
        }
    }

    fn interval(
        tid: i32,
        split: TimeSplit,
        before: Option<WaitKind>,
        after: Option<WaitKind>,
    ) -> ThreadInterval {
        ThreadInterval {
            pid: 1,
            tid,
            observation: 0,
            account_started_ns: 0,
            split,
            wait_before: before,
            wait_after: after,
        }
    }

    fn feed(
        timeline: &mut ThreadTimeline,
        tick: u64,
        tid: i32,
        split: TimeSplit,
        before: Option<WaitKind>,
        after: Option<WaitKind>,
    ) {
        let snapshot = TickSnapshot {
            at_ns: tick,
            threads: vec![observation(tid, tick, None)],
            ..TickSnapshot::default()
        };
        timeline.ingest(&snapshot, &[interval(tid, split, before, after)]);
    }

    fn totals(track: &Track) -> [u64; State::COUNT] {
        let mut totals = [0; State::COUNT];
        for slice in track.slices() {
            totals[slice.state.index()] += slice.end_ns - slice.start_ns;
        }
        totals
    }

    #[test]
    fn a_tick_is_laid_out_from_the_wait_before_to_the_wait_after_and_equal_states_join() {
        let mut timeline = ThreadTimeline::default();
        let sleep = Some(WaitKind::Sleep);
        // 10 ms ticks: sleeping through, then 4 ms of CPU between two sleeps, then sleeping.
        let asleep = TimeSplit::with_waits(0.0, &[(WaitKind::Sleep, 10.0 * MS)]);
        let woke = TimeSplit::with_waits(4.0 * MS, &[(WaitKind::Sleep, 6.0 * MS)]);
        feed(&mut timeline, 10_000_000, 7, asleep, sleep, sleep);
        feed(&mut timeline, 20_000_000, 7, woke, sleep, sleep);
        feed(&mut timeline, 30_000_000, 7, asleep, sleep, sleep);
        let result = timeline.timelines();
        let slices: Vec<(u64, u64, &str)> = result.tracks[0]
            .slices()
            .map(|s| (s.start_ns / 1_000_000, s.end_ns / 1_000_000, s.state.name()))
            .collect();
        assert_eq!(
            slices,
            [(0, 13, "sleep"), (13, 17, "cpu"), (17, 30, "sleep")]
        );
        assert_eq!(result.tracks[0].name, "t7");
    }

    #[test]
    fn slivers_gather_until_they_add_up_to_a_millisecond() {
        let mut timeline = ThreadTimeline::default();
        // Computing for a second, queued 40 us of each 10 ms tick.
        let split = TimeSplit {
            cpu_ns: 9.96 * MS,
            runqueue_ns: 0.04 * MS,
            ..TimeSplit::default()
        };
        for n in 1..=100 {
            feed(&mut timeline, n * 10_000_000, 3, split, None, None);
        }
        let track = &timeline.timelines().tracks[0];
        // A gathered millisecond of run queue every 250 ms: 8 slices, not 200.
        assert_eq!(track.segments.len(), 8, "{:?}", track.segments);
        assert_eq!(track.time_in(State::Runqueue), 4_000_000);
        assert_eq!(track.time_in(State::Cpu), 996_000_000);
        assert_eq!(track.end_ns(), 1_000_000_000);
    }

    #[test]
    fn the_budget_merges_short_segments_keeping_each_states_total() {
        // 400 threads alternating 3 ms of CPU and 7 ms of sleep for 60 s at 100 Hz: 4.8M
        // segments as sampled, against a budget of 20 000 events.
        let budget = 20_000;
        let mut timeline = ThreadTimeline::with_budget(budget);
        let threads = 400;
        let tick = 10_000_000u64;
        let split = TimeSplit::with_waits(3.0 * MS, &[(WaitKind::Sleep, 7.0 * MS)]);
        let intervals: Vec<ThreadInterval> = (0..threads)
            .map(|i| ThreadInterval {
                observation: i as usize,
                ..interval(i, split, Some(WaitKind::Sleep), Some(WaitKind::Sleep))
            })
            .collect();
        let mut snapshot = TickSnapshot::default();
        let mut peak = 0;
        for n in 1..=6000u64 {
            snapshot.at_ns = n * tick;
            snapshot.threads = (0..threads)
                .map(|i| observation(i, n * tick, None))
                .collect();
            timeline.ingest(&snapshot, &intervals);
            peak = peak.max(timeline.events());
        }
        assert!(peak <= budget - RESERVED_EVENTS, "peak {peak} events");
        let result = timeline.timelines();
        assert!(
            result.resolution_ns >= 10_000_000,
            "{}",
            result.resolution_ns
        );
        assert_eq!(result.threads_left_out, 0);
        assert_eq!(result.tracks.len(), threads as usize);
        for track in &result.tracks {
            let totals = totals(track);
            assert_eq!(track.end_ns() - track.start_ns, 60_000_000_000);
            assert_eq!(totals[State::Cpu.index()], 18_000_000_000, "CPU total kept");
            assert_eq!(totals[State::Wait(WaitKind::Sleep).index()], 42_000_000_000);
            // Still a picture of alternation, not one block of each.
            assert!(track.segments.len() > 20, "{}", track.segments.len());
        }
    }

    #[test]
    fn merging_keeps_long_segments_and_time_order() {
        let mut track = Track::new(&interval(1, TimeSplit::default(), None, None));
        let sleep = State::Wait(WaitKind::Sleep);
        // 1 s of sleep, then 100 alternations of 1 ms CPU / 1 ms disk, then 1 s of CPU.
        track.push(sleep, 1_000_000_000, None);
        for _ in 0..100 {
            track.push(State::Cpu, 1_000_000, None);
            track.push(State::Wait(WaitKind::Disk), 1_000_000, Some(0));
        }
        track.push(State::Cpu, 1_000_000_000, None);
        merge_short(&mut track, 10_000_000);
        let slices: Vec<Slice> = track.slices().collect();
        assert_eq!(slices[0].end_ns, 1_000_000_000);
        assert_eq!(slices[0].state, sleep);
        // 200 ms of 1 ms segments in 10 ms windows: 20 windows of two segments each.
        assert_eq!(slices.len(), 1 + 40 + 1, "{slices:?}");
        assert_eq!(slices[1].end_ns - slices[1].start_ns, 5_000_000);
        assert_eq!(slices.last().map(|s| s.end_ns), Some(2_200_000_000));
        assert_eq!(slices[2].detail, Some(0), "details survive the merge");
    }

    #[test]
    fn when_nothing_else_fits_the_least_busy_threads_are_left_out() {
        let mut timeline = ThreadTimeline::with_budget(MIN_EVENT_BUDGET);
        // 2000 threads that each lived one tick: their name records alone exceed the budget.
        for tid in 0..2000 {
            let snapshot = TickSnapshot {
                at_ns: 10_000_000,
                threads: vec![observation(tid, 10_000_000, None)],
                exited: vec![(1, tid)],
                ..TickSnapshot::default()
            };
            let split = TimeSplit::with_waits(f64::from(tid) * 1000.0, &[]);
            timeline.ingest(&snapshot, &[interval(tid, split, None, None)]);
        }
        assert!(timeline.events() <= MIN_EVENT_BUDGET - RESERVED_EVENTS);
        let result = timeline.timelines();
        assert!(result.threads_left_out > 1000);
        // The busiest are the ones kept.
        assert!(result.tracks.iter().any(|t| t.tid == 1999));
        assert!(result.tracks.iter().all(|t| t.tid > 1000));
    }

    #[test]
    fn buckets_take_the_state_with_the_most_time() {
        let mut track = Track::new(&interval(1, TimeSplit::default(), None, None));
        track.push(State::Wait(WaitKind::Sleep), 250, None);
        track.push(State::Cpu, 200, None);
        let runs = bucket_runs([&track], 100.0, 6);
        let named: Vec<(usize, usize, &str)> = runs
            .iter()
            .map(|r| (r.start, r.buckets, r.state.name()))
            .collect();
        assert_eq!(named, [(0, 3, "sleep"), (3, 2, "cpu")]);
        assert!(State::all().all(|s| State::from_index(s.index()) == Some(s)));
    }
}
