//! Event-loop threads: which threads run a loop, and how long their loop was blocked instead of waiting in its poller.
//!
//! A loop thread waits in a multiplexing call (epoll, io_uring, poll or select on several
//! descriptors) between stretches of work. Its time splits into: polling (idle, or with
//! peers to hear from), short callbacks, and *blocked* time: waits in any other call (sleep,
//! disk, a blocking recv, a futex) and computing stretches of 100 ms or more without going
//! back to the poller. 100 ms is asyncio's own `slow_callback_duration` in debug mode.
//! "A task that never yields blocks the whole loop": the blocked time is what that costs.
//!
//! At the sampling rate one cannot tell one long callback from a loop saturated with short
//! ones that never waits (both keep the thread out of its poller); both mean the loop's one
//! core is the limit, and the report says so in those words.

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use super::accountant::{Accountant, ThreadAccount, TickIntervals, TimeSplit};
use super::wait_kind::{is_multiplexing, WaitKind};
use crate::sampler::observation::{ProcessPoll, SyscallState, ThreadState, TickSnapshot};

/// A computing stretch at least this long, out of the poller, blocks the loop.
pub const SLOW_CALLBACK_NS: f64 = 100e6;
/// A thread is a loop thread when it was seen in its poller at least this many times...
const MIN_POLL_SIGHTINGS: u64 = 3;
/// ...and its polling took at least this share of its time off the CPU.
const MIN_POLL_SHARE: f64 = 0.1;

/// Which poller a multiplexing wait is in: an epoll instance (or io_uring ring) by its
/// descriptor, or a poll/select set, which has no identity beyond what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Poller {
    Instance(i32),
    Set,
}

impl Poller {
    fn of(state: &ThreadState) -> Poller {
        use syscalls::Sysno::*;
        match &state.syscall {
            SyscallState::Blocked {
                call: epoll_wait | epoll_pwait | epoll_pwait2 | io_uring_enter,
                args,
            } => Poller::Instance(args[0] as i32),
            _ => Poller::Set,
        }
    }
}

/// Where a loop thread was, as far as the loop is concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
enum LoopWait {
    /// In the poller; `io` when its set holds peers (sockets, pipes to other processes).
    Poll { io: bool },
    /// Waiting anywhere else: the loop cannot run.
    Other(WaitKind),
}

/// A stretch out of the poller: from the observation before the first one out of it (when
/// it may have left) to the last one out of it. What it blocked is committed when the thread
/// is back in its poller: a stretch still open at the end (the program shutting down after
/// its loop ended) is not charged to the loop.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    /// Its number among the thread's stretches (see `StretchCharge`).
    number: u64,
    first_out_ns: u64,
    last_out_ns: u64,
    cpu_ns: f64,
    blocked_ns: [f64; WaitKind::COUNT],
}

#[derive(Debug, Clone, Default)]
struct ThreadLoop {
    /// The poller it was first seen in holding what it serves (`FdKind::is_served`).
    serving: Option<Poller>,
    /// Ticks at which the thread was in its poller; the first starts the loop's accounting
    /// (what a thread does before it ever polls is not its loop's).
    poll_sightings: u64,
    /// The largest poll set seen, the most peers seen in one, and the peers now.
    max_watched: u32,
    max_peers: u32,
    peers_now: u32,
    /// Stretches that blocked the loop.
    blocks: u64,
    poll_idle_ns: f64,
    poll_io_ns: f64,
    callback_cpu_ns: f64,
    slow_cpu_ns: f64,
    blocked_ns: [f64; WaitKind::COUNT],
    off_cpu_ns: f64,
    longest_block_ns: f64,
    prev: Option<LoopWait>,
    prev_at_ns: Option<u64>,
    last: Option<LoopWait>,
    stretch: Option<Stretch>,
    /// Stretches opened so far.
    stretches: u64,
    /// What the last interval gave to a stretch.
    charge: StretchCharge,
    /// The last syscall seen outside the poller, by name, most time first at the end.
    blocking_calls: HashMap<&'static str, f64>,
}

/// What the last interval of a thread gave to a stretch out of its poller, for the analyses
/// that split the thread's time the same way (the code behind the blocked time): the CPU and
/// waits it added to the open stretch, and whether a stretch ended with it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StretchCharge {
    pub cpu_ns: f64,
    pub waits_ns: [f64; WaitKind::COUNT],
    /// The stretch that ended with this interval (its number), and whether its CPU blocked
    /// the loop (it lasted 100 ms or more; its waits always did).
    pub closed: Option<(u64, bool)>,
    /// The stretch open after this interval, by number.
    pub open: Option<u64>,
}

/// What the analysis found about one loop thread.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLoop {
    pub pid: i32,
    pub tid: i32,
    /// Descriptors in its poll set at the busiest tick.
    pub watched: u32,
    /// Time blocked: in other waits, and computing in stretches of 100 ms or more.
    pub blocked_s: f64,
    /// blocked_s / the thread's non-idle time (computing, blocked, polling with peers).
    pub blocked_share: f64,
    pub longest_block_s: f64,
    /// What blocked it, most first: wait kinds by name, and "cpu".
    pub blocked_by: Vec<(String, f64)>,
    /// The syscalls it blocked in outside its poller, most time first.
    pub blocking_calls: Vec<(String, f64)>,
    /// Its time in the poller with peers to hear from, and computing in short callbacks.
    pub polling_io_s: f64,
    pub callbacks_s: f64,
    /// Its time in the poller with nothing to hear from.
    pub polling_idle_s: f64,
    /// Of `blocked_s`: the waits, and the long computing stretches.
    pub blocked_wait_s: f64,
    pub blocked_cpu_s: f64,
    /// The most peers its poll set held (connections it serves or waits on).
    pub peers: u32,
    /// Stretches out of the poller that blocked it: about one per blocking call or long
    /// callback (for a server, about one per request that blocked).
    pub blocks: u64,
    /// How many threads of the tree ran a loop (this one is the busiest).
    pub loops: usize,
    /// Never seen waiting in its poller: found by its process's epoll instance (see
    /// `LoopTracker::finish`); all its time counts as blocked.
    pub never_polled: bool,
}

/// Follows every thread's loop-relevant state tick by tick.
#[derive(Debug, Default)]
pub struct LoopTracker {
    threads: FxHashMap<(i32, i32), ThreadLoop>,
    finished: Vec<((i32, i32), ThreadLoop)>,
    /// Each process's epoll instance at its last look, with the most descriptors and peers
    /// it held: a loop, even one never seen waiting in it. One that serves (holds sockets)
    /// stands for the process from when it is first seen.
    polls: HashMap<i32, ProcessPoll>,
}

/// A process's one dominant thread does at least this share of its busy time...
const DOMINANT: f64 = 0.8;
/// ...and is busy at least this share of the wall time, to be taken for its loop thread.
const DOMINANT_BUSY: f64 = 0.3;
/// A thread other than the process's main one that ran less than this share of its time was
/// parked (V8's and the JVM's idle workers on their futexes, woken now and then for nothing
/// much), not busy; the main thread (where Node's and asyncio's loops run), only when it also
/// ran less than this share of what the process's most running thread ran. A main thread
/// blocked in execSync runs as little as its helpers: judged against it, they were busy.
const PARKED_CPU_SHARE: f64 = 0.01;
const PARKED_OF_MOST_CPU: f64 = 0.25;

/// Whether a thread was parked (see `PARKED_CPU_SHARE`) given its time, whether it is its
/// process's main thread, and the CPU of the process's thread that ran most.
fn parked(time: &TimeSplit, main_thread: bool, most_cpu: f64) -> bool {
    time.cpu_ns < PARKED_CPU_SHARE * time.total_ns()
        && (!main_thread || time.cpu_ns < PARKED_OF_MOST_CPU * most_cpu)
}

impl LoopTracker {
    pub fn ingest(&mut self, snapshot: &TickSnapshot, tick: &TickIntervals) {
        for poll in &snapshot.polls {
            let known = self.polls.entry(poll.pid).or_insert(*poll);
            if poll.serves && !known.serves {
                *known = *poll;
            } else if poll.serves == known.serves {
                known.epfd = poll.epfd;
                known.watched = known.watched.max(poll.watched);
                known.peers = known.peers.max(poll.peers);
            }
        }
        for interval in &tick.threads {
            let Some(observation) = snapshot.threads.get(interval.observation) else {
                continue;
            };
            let key = (interval.pid, interval.tid);
            let serving_epoll = self
                .polls
                .get(&interval.pid)
                .filter(|poll| poll.serves)
                .and_then(|poll| poll.epfd);
            let thread = self.threads.entry(key).or_default();
            let now = match &observation.state {
                Some(state)
                    if is_multiplexing(state) && !thread.is_nested(state, serving_epoll) =>
                {
                    if thread.serving.is_none() && state.serves_many() {
                        thread.serving = Some(Poller::of(state));
                    }
                    if state.watched > thread.max_watched {
                        thread.max_watched = state.watched;
                    }
                    thread.peers_now = state.watched_peers;
                    thread.max_peers = thread.max_peers.max(state.watched_peers);
                    Some(LoopWait::Poll {
                        io: interval.wait_after.is_some_and(WaitKind::is_io),
                    })
                }
                Some(state) => {
                    thread.peers_now = 0;
                    let looping = thread.poll_sightings > 0;
                    if let (SyscallState::Blocked { call, .. }, Some(_), true) =
                        (&state.syscall, interval.wait_after, looping)
                    {
                        *thread.blocking_calls.entry(call.name()).or_insert(0.0) +=
                            interval.split.waits_ns.iter().sum::<f64>();
                    }
                    interval.wait_after.map(LoopWait::Other)
                }
                // Unchanged since the last observation: still where it was.
                None => thread.prev,
            };
            if matches!(now, Some(LoopWait::Poll { .. })) {
                thread.poll_sightings += 1;
            }
            thread.advance(observation.at_ns, now, &interval.split);
        }
        for key in &snapshot.exited {
            if let Some(thread) = self.threads.remove(key) {
                self.finished.push((*key, thread));
                // Keep memory bounded: only threads that polled can be loops.
                self.finished.retain(|(_, t)| t.poll_sightings > 0);
            }
        }
    }

    /// What the thread's last interval gave to a stretch out of its poller (none before it
    /// first polled).
    pub fn charge(&self, pid: i32, tid: i32) -> Option<&StretchCharge> {
        self.threads.get(&(pid, tid)).map(|thread| &thread.charge)
    }

    /// Whether the thread ran an event loop (as `finish` counts loops).
    pub fn is_loop(&self, pid: i32, tid: i32) -> bool {
        self.threads
            .get(&(pid, tid))
            .into_iter()
            .chain(
                self.finished
                    .iter()
                    .filter(|(key, _)| *key == (pid, tid))
                    .map(|(_, thread)| thread),
            )
            .any(ThreadLoop::is_loop)
    }

    /// For a thread in its poller at its last observation: the peers it waits to hear from
    /// as I/O in flight (a client's requests; a server's idle connections are none).
    pub fn polling_peers(&self, pid: i32, tid: i32) -> Option<u32> {
        let thread = self.threads.get(&(pid, tid))?;
        match thread.prev {
            Some(LoopWait::Poll { io: true }) => Some(thread.peers_now),
            Some(LoopWait::Poll { io: false }) => Some(0),
            _ => None,
        }
    }

    /// The program's loop thread, if any thread ran a loop: the busiest one seen waiting in
    /// a poller that holds listeners or connections (the loop that serves); else the one dominant thread of a
    /// process whose serving epoll instance no thread was seen waiting in (always work ready,
    /// or blocked between requests); else the busiest thread seen polling anything (a loop on
    /// pipes, or a runtime's helper thread when nothing serves).
    pub fn finish(&self, accountant: &Accountant, wall_ns: f64) -> Option<EventLoop> {
        let mut loops: Vec<(&(i32, i32), ThreadLoop)> = self
            .threads
            .iter()
            .map(|(key, thread)| (key, thread.clone()))
            .chain(self.finished.iter().map(|(key, t)| (key, t.clone())))
            .filter(|(_, thread)| thread.is_loop())
            .collect();
        let count = loops.len();
        loops.sort_by(|a, b| {
            let serves = |thread: &ThreadLoop| thread.serving.is_some();
            serves(&b.1)
                .cmp(&serves(&a.1))
                .then(b.1.non_idle_ns().total_cmp(&a.1.non_idle_ns()))
        });
        let workers = per_process_workers(&loops);
        let best = loops.into_iter().next().filter(|_| !workers);
        if let Some((&(pid, tid), thread)) = &best {
            if thread.serving.is_some() {
                return Some(thread.conclusion(pid, tid, count));
            }
        }
        self.never_polling(accountant, wall_ns, best.is_some())
            .or_else(|| best.map(|(&(pid, tid), thread)| thread.conclusion(pid, tid, count)))
    }

    /// A loop thread never seen in its poller: a process with an epoll instance watching two
    /// or more descriptors (one that serves, if `serving_only`: another thread was seen
    /// polling) whose one dominant thread was busy a good part of the run. All its time
    /// counts as blocked (at no sample was it free to serve another task). Threads parked
    /// the whole time (a runtime's idle workers on their futexes) are idle, not busy.
    fn never_polling(
        &self,
        accountant: &Accountant,
        wall_ns: f64,
        serving_only: bool,
    ) -> Option<EventLoop> {
        // `most_cpu`: the CPU of the process's thread that ran most.
        let busy = |thread: &ThreadAccount, most_cpu: f64| {
            let time = &thread.time;
            let total = time.total_ns();
            if parked(time, thread.tid == thread.pid, most_cpu) {
                return 0.0;
            }
            total - time.wait(WaitKind::EventWait) - time.wait(WaitKind::Input)
        };
        let mut found: Option<EventLoop> = None;
        let candidates = self
            .polls
            .values()
            .filter(|p| p.watched >= 2 && (p.serves || !serving_only));
        for poll in candidates {
            let threads: Vec<_> = accountant.threads().filter(|t| t.pid == poll.pid).collect();
            let most_cpu = threads.iter().map(|t| t.time.cpu_ns).fold(0.0, f64::max);
            let busy = |thread: &ThreadAccount| busy(thread, most_cpu);
            let total: f64 = threads.iter().map(|t| busy(t)).sum();
            let Some(main) = threads.iter().max_by(|a, b| busy(a).total_cmp(&busy(b))) else {
                continue;
            };
            let main_busy = busy(main);
            if main_busy < DOMINANT * total || main_busy < DOMINANT_BUSY * wall_ns {
                continue;
            }
            let waits: f64 = WaitKind::ALL
                .into_iter()
                .filter(|k| !matches!(k, WaitKind::EventWait | WaitKind::Input))
                .map(|k| main.time.wait(k))
                .sum();
            let mut blocked_by: Vec<(String, f64)> = WaitKind::ALL
                .into_iter()
                .filter(|k| !matches!(k, WaitKind::EventWait | WaitKind::Input))
                .map(|k| (k.name().to_string(), main.time.wait(k) / 1e9))
                .chain(std::iter::once(("cpu".to_string(), main.time.cpu_ns / 1e9)))
                .filter(|(_, s)| *s >= 0.001 && *s * 1e9 >= 0.05 * main_busy)
                .collect();
            blocked_by.sort_by(|a, b| b.1.total_cmp(&a.1));
            let candidate = EventLoop {
                pid: main.pid,
                tid: main.tid,
                watched: poll.watched,
                blocked_s: (waits + main.time.cpu_ns) / 1e9,
                blocked_share: 1.0,
                longest_block_s: 0.0,
                blocked_by,
                blocking_calls: Vec::new(),
                polling_io_s: 0.0,
                callbacks_s: 0.0,
                polling_idle_s: 0.0,
                blocked_wait_s: waits / 1e9,
                blocked_cpu_s: main.time.cpu_ns / 1e9,
                peers: poll.peers,
                blocks: main.timeslices,
                loops: 1,
                never_polled: true,
            };
            if found
                .as_ref()
                .is_none_or(|f| f.blocked_s < candidate.blocked_s)
            {
                found = Some(candidate);
            }
        }
        found
    }
}

/// A poller's thread doing at least this share of the busiest one's work is its peer...
const PEER_WORKER_SHARE: f64 = 0.5;

/// ...and the busiest of `loops` (sorted, serving first) serves no listener nor several
/// connections, while another process's thread polls with work like it: each process serves
/// its own connection (a PostgreSQL backend, a prefork worker), workers of one server rather
/// than one program's event loop.
fn per_process_workers(loops: &[(&(i32, i32), ThreadLoop)]) -> bool {
    let Some((&(pid, _), best)) = loops.first() else {
        return false;
    };
    best.serving.is_none()
        && loops.iter().skip(1).any(|(&(other, _), thread)| {
            other != pid && thread.non_idle_ns() >= PEER_WORKER_SHARE * best.non_idle_ns()
        })
}

impl ThreadLoop {
    /// A wait in a poller other than the one the thread serves from (its own, or the
    /// process's that holds the sockets), on a set that holds no sockets but peers (the pipes
    /// of a child run to completion: Node's `execSync` runs a private libuv loop, Python's
    /// `subprocess.run` its own selector): a blocking call, not the loop waiting for work.
    /// A set with no peers either (a runtime's own wake-up descriptors) is another thread's
    /// idle loop, not a blocking call.
    fn is_nested(&self, state: &ThreadState, serving_epoll: Option<i32>) -> bool {
        if state.watched_peers == 0 || state.fds.iter().any(|fd| fd.is_served()) {
            return false;
        }
        let Some(serving) = self.serving.or(serving_epoll.map(Poller::Instance)) else {
            return false;
        };
        // Two poll/select sets cannot be told apart but by what they hold: one without the
        // sockets is another.
        match Poller::of(state) {
            Poller::Set => true,
            instance => instance != serving,
        }
    }

    fn is_loop(&self) -> bool {
        let polling = self.poll_idle_ns + self.poll_io_ns;
        self.poll_sightings >= MIN_POLL_SIGHTINGS
            && polling >= MIN_POLL_SHARE * self.off_cpu_ns.max(f64::MIN_POSITIVE)
    }

    fn blocked_wait_ns(&self) -> f64 {
        self.blocked_ns.iter().sum()
    }

    fn non_idle_ns(&self) -> f64 {
        self.callback_cpu_ns + self.slow_cpu_ns + self.blocked_wait_ns() + self.poll_io_ns
    }

    /// Accounts the interval that ends with an observation at `at_ns` in state `now`
    /// (`poll_sightings` already counts this one).
    fn advance(&mut self, at_ns: u64, now: Option<LoopWait>, split: &TimeSplit) {
        self.charge = StretchCharge::default();
        let before = (self.prev, self.prev_at_ns);
        self.prev = now;
        self.prev_at_ns = Some(at_ns);
        if now.is_some() {
            self.last = now;
        }
        if self.poll_sightings == 0 {
            return;
        }
        let (prev, prev_at_ns) = before;
        let out_of_poller = !matches!(now, Some(LoopWait::Poll { .. }));
        if out_of_poller && self.stretch.is_none() {
            self.stretches += 1;
            self.stretch = Some(Stretch {
                number: self.stretches,
                first_out_ns: prev_at_ns.unwrap_or(at_ns),
                last_out_ns: at_ns,
                cpu_ns: 0.0,
                blocked_ns: [0.0; WaitKind::COUNT],
            });
        }
        let off_ns: f64 = split.waits_ns.iter().sum();
        self.off_cpu_ns += off_ns;
        // Off-CPU time between two observations goes to what the thread was in at either
        // end, half each if they differ (as the accountant splits wait kinds).
        match (prev, now) {
            (Some(before), Some(after)) if before != after => {
                self.charge_wait(before, off_ns / 2.0);
                self.charge_wait(after, off_ns / 2.0);
            }
            (Some(wait), _) | (None, Some(wait)) => self.charge_wait(wait, off_ns),
            (None, None) => {
                if let Some(wait) = self.last {
                    self.charge_wait(wait, off_ns);
                }
            }
        }
        match self.stretch.as_mut() {
            // Out of the poller, or just back in it: the CPU since the last observation was
            // part of the stretch.
            Some(stretch) => {
                stretch.cpu_ns += split.cpu_ns;
                self.charge.cpu_ns = split.cpu_ns;
                if out_of_poller {
                    stretch.last_out_ns = at_ns;
                } else {
                    self.close_stretch();
                }
            }
            None => self.callback_cpu_ns += split.cpu_ns,
        }
        self.charge.open = self.stretch.map(|stretch| stretch.number);
    }

    fn charge_wait(&mut self, wait: LoopWait, ns: f64) {
        match (wait, self.stretch.as_mut()) {
            (LoopWait::Poll { io: true }, _) => self.poll_io_ns += ns,
            (LoopWait::Poll { io: false }, _) => self.poll_idle_ns += ns,
            (LoopWait::Other(kind), Some(stretch)) => {
                stretch.blocked_ns[kind.index()] += ns;
                self.charge.waits_ns[kind.index()] += ns;
            }
            // Out of the poller always means a stretch is open.
            (LoopWait::Other(_), None) => {}
        }
    }

    /// The thread is back in its poller: the stretch's waits blocked the loop, and so did its
    /// CPU if it lasted 100 ms or more.
    fn close_stretch(&mut self) {
        let Some(stretch) = self.stretch.take() else {
            return;
        };
        let span = stretch.last_out_ns.saturating_sub(stretch.first_out_ns) as f64;
        let waits: f64 = stretch.blocked_ns.iter().sum();
        for (total, ns) in self.blocked_ns.iter_mut().zip(stretch.blocked_ns) {
            *total += ns;
        }
        self.charge.closed = Some((stretch.number, span >= SLOW_CALLBACK_NS));
        let block_ns = if span >= SLOW_CALLBACK_NS {
            self.slow_cpu_ns += stretch.cpu_ns;
            stretch.cpu_ns + waits
        } else {
            self.callback_cpu_ns += stretch.cpu_ns;
            waits
        };
        if block_ns > 0.0 {
            self.blocks += 1;
        }
        self.longest_block_ns = self.longest_block_ns.max(block_ns);
    }

    fn conclusion(&self, pid: i32, tid: i32, loops: usize) -> EventLoop {
        let blocked_ns = self.blocked_wait_ns() + self.slow_cpu_ns;
        let mut blocked_by: Vec<(String, f64)> = WaitKind::ALL
            .into_iter()
            .map(|kind| (kind.name().to_string(), self.blocked_ns[kind.index()] / 1e9))
            .chain(std::iter::once(("cpu".to_string(), self.slow_cpu_ns / 1e9)))
            .filter(|(_, seconds)| *seconds >= 0.001 && *seconds * 1e9 >= 0.05 * blocked_ns)
            .collect();
        blocked_by.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut blocking_calls: Vec<(String, f64)> = self
            .blocking_calls
            .iter()
            .map(|(call, ns)| (call.to_string(), ns / 1e9))
            .filter(|(_, seconds)| *seconds >= 0.001)
            .collect();
        blocking_calls.sort_by(|a, b| b.1.total_cmp(&a.1));
        blocking_calls.truncate(3);
        let non_idle = self.non_idle_ns();
        EventLoop {
            pid,
            tid,
            watched: self.max_watched,
            blocked_s: blocked_ns / 1e9,
            blocked_share: if non_idle > 0.0 {
                (blocked_ns / non_idle).min(1.0)
            } else {
                0.0
            },
            longest_block_s: self.longest_block_ns / 1e9,
            blocked_by,
            blocking_calls,
            polling_io_s: self.poll_io_ns / 1e9,
            callbacks_s: self.callback_cpu_ns / 1e9,
            polling_idle_s: self.poll_idle_ns / 1e9,
            blocked_wait_s: self.blocked_wait_ns() / 1e9,
            blocked_cpu_s: self.slow_cpu_ns / 1e9,
            peers: self.max_peers,
            blocks: self.blocks,
            loops,
            never_polled: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::observation::FdKind;

    const MS: u64 = 1_000_000;

    fn tick(thread: &mut ThreadLoop, at_ms: u64, now: Option<LoopWait>, split: TimeSplit) {
        let polling = matches!(now, Some(LoopWait::Poll { .. }))
            || (now.is_none() && matches!(thread.prev, Some(LoopWait::Poll { .. })));
        if polling {
            thread.poll_sightings += 1;
        }
        thread.advance(at_ms * MS, now, &split);
    }

    fn cpu(ms: f64) -> TimeSplit {
        TimeSplit::with_waits(ms * 1e6, &[])
    }

    fn waited(kind: WaitKind, ms: f64) -> TimeSplit {
        TimeSplit::with_waits(0.0, &[(kind, ms * 1e6)])
    }

    const POLL_IDLE: Option<LoopWait> = Some(LoopWait::Poll { io: false });
    const POLL_IO: Option<LoopWait> = Some(LoopWait::Poll { io: true });

    #[test]
    fn a_sleep_and_a_long_computation_between_polls_block_the_loop() {
        let mut t = ThreadLoop::default();
        let mut at = 0;
        // Poll idle for 100 ms, sleep 250 ms, compute 300 ms, poll again, three times.
        for _ in 0..3 {
            for _ in 0..10 {
                at += 10;
                tick(&mut t, at, POLL_IDLE, waited(WaitKind::EventWait, 10.0));
            }
            at += 10;
            tick(
                &mut t,
                at,
                Some(LoopWait::Other(WaitKind::Sleep)),
                waited(WaitKind::Sleep, 10.0),
            );
            for _ in 0..24 {
                at += 10;
                tick(&mut t, at, None, waited(WaitKind::Sleep, 10.0));
            }
            for _ in 0..30 {
                at += 10;
                tick(&mut t, at, None, cpu(10.0));
            }
        }
        at += 10;
        tick(&mut t, at, POLL_IDLE, waited(WaitKind::EventWait, 10.0));
        assert!(t.is_loop());
        let found = t.conclusion(1, 1, 1);
        assert!(found.blocked_share > 0.95, "{found:?}");
        assert!((found.blocked_s - 3.0 * 0.55).abs() < 0.05, "{found:?}");
        assert_eq!(found.blocked_by[0].0, "cpu");
        assert_eq!(found.blocked_by[1].0, "sleep");
        assert!((found.longest_block_s - 0.55).abs() < 0.03, "{found:?}");
    }

    #[test]
    fn short_callbacks_between_network_polls_do_not_block_it() {
        let mut t = ThreadLoop::default();
        let mut at = 0;
        for i in 0..200 {
            at += 10;
            // Mostly in the poller on sockets, a 2 ms callback now and then.
            let split = if i % 3 == 0 {
                TimeSplit::with_waits(2e6, &[(WaitKind::Network, 8e6)])
            } else {
                waited(WaitKind::Network, 10.0)
            };
            tick(&mut t, at, POLL_IO, split);
        }
        assert!(t.is_loop());
        let found = t.conclusion(1, 1, 1);
        assert!(found.blocked_share < 0.01, "{found:?}");
        assert!(found.polling_io_s > 1.5, "{found:?}");
    }

    fn polling(call: syscalls::Sysno, epfd: u64, fds: &[FdKind], peers: u32) -> ThreadState {
        ThreadState {
            letter: 'S',
            syscall: SyscallState::Blocked {
                call,
                args: [epfd, 0, 0, 0, 0, 0],
            },
            fds: fds.to_vec(),
            watched: fds.len() as u32,
            watched_peers: peers,
            ..ThreadState::running()
        }
    }

    #[test]
    fn a_second_poller_on_a_child_s_pipes_is_a_blocking_call_and_the_loop_s_own_is_not() {
        use syscalls::Sysno::{epoll_pwait, poll};
        let child_pipes = [FdKind::UnixSocket, FdKind::EventFd, FdKind::SelfPipe];
        let loop_set = [FdKind::TcpListener, FdKind::TcpAccepted, FdKind::EventFd];
        let mut t = ThreadLoop::default();
        // Nothing known to serve from yet: any poller is the loop's.
        assert!(!t.is_nested(&polling(epoll_pwait, 25, &child_pipes, 2), None));
        // The process serves from epoll 14: epoll 25 on a child's pipes is a blocking call,
        // and so is a poll set of pipes (Python's selector in subprocess.run).
        assert!(t.is_nested(&polling(epoll_pwait, 25, &child_pipes, 2), Some(14)));
        assert!(t.is_nested(&polling(poll, 0, &[FdKind::Pipe], 2), Some(14)));
        // Epoll 14 itself, even holding only a child's pipes for a moment, is the loop's.
        assert!(!t.is_nested(&polling(epoll_pwait, 14, &child_pipes, 2), Some(14)));
        // A poller of wake-up descriptors only is another thread's idle loop, not a wait.
        let wake_up = [FdKind::EventFd, FdKind::SelfPipe];
        assert!(!t.is_nested(&polling(epoll_pwait, 9, &wake_up, 0), Some(14)));
        // A thread seen serving from its own poller knows it without the process's.
        t.serving = Some(Poller::Instance(3));
        assert!(t.is_nested(&polling(epoll_pwait, 25, &child_pipes, 2), None));
        assert!(!t.is_nested(&polling(epoll_pwait, 3, &loop_set, 5), None));
    }

    #[test]
    fn helpers_that_barely_ran_are_parked_beside_a_main_thread_blocked_in_exec_sync() {
        // As measured (attach 2 s, Node blocked in execSync under load): the main thread ran
        // 23 ms and waited on the child's pipes, a V8 helper ran 7 ms on its futex.
        let ms = 1e6;
        let main = TimeSplit::with_waits(23.0 * ms, &[(WaitKind::Ipc, 1915.0 * ms)]);
        let helper = TimeSplit::with_waits(7.0 * ms, &[(WaitKind::Lock, 1986.0 * ms)]);
        assert!(!parked(&main, true, 23.0 * ms));
        assert!(parked(&helper, false, 23.0 * ms));
        // A main thread parked on a futex beside a helper that computes is parked too.
        let computing = TimeSplit::with_waits(900.0 * ms, &[(WaitKind::Lock, 1000.0 * ms)]);
        let main_parked = TimeSplit::with_waits(7.0 * ms, &[(WaitKind::Lock, 1986.0 * ms)]);
        assert!(parked(&main_parked, true, 900.0 * ms));
        assert!(!parked(&computing, false, 900.0 * ms));
    }

    #[test]
    fn a_thread_that_never_polls_is_not_a_loop() {
        let mut t = ThreadLoop::default();
        for i in 1..100 {
            tick(
                &mut t,
                i * 10,
                Some(LoopWait::Other(WaitKind::Network)),
                waited(WaitKind::Network, 10.0),
            );
        }
        assert!(!t.is_loop());
    }
}
