//! The sampling thread: paced ticks that read the tree from /proc and feed the analysis (a `TickSink`).
//!
//! What it measured is kept behind a mutex that `Sampler::stop` can take as it is: if the
//! thread does not finish its last tick in time (a read of /proc that blocks), the report is
//! still written, from the ticks that did finish, and says so.

pub mod cgroups;
pub mod discovery;
pub mod diskstats;
pub mod fd_resolver;
pub mod listeners;
pub mod loops;
pub mod mounts;
pub mod observation;
pub mod offload;
pub mod peers;
pub mod proc_file;
pub mod stacks;
pub mod stops;
pub mod thread_files;
pub mod tree_reader;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use discovery::Discovery;
use observation::TickSnapshot;
use stacks::Stacks;
use tree_reader::{Scope, SourceStatus, TreeReader, UnseenCause};

/// The tree is searched for new processes and threads at most this often; counters of known
/// threads are read at every tick. A thread found late still counts from its birth.
const DISCOVERY_PERIOD: Duration = Duration::from_millis(100);
/// The live view is refreshed this often.
const LIVE_PERIOD: Duration = Duration::from_millis(250);
/// concadvise's own CPU budget, as a share of one core over the whole run (start-up
/// included): above it the rate is lowered (never below `MIN_RATE_HZ`); it climbs back towards
/// the rate asked for while the higher rate would cost under 80% of the budget.
pub const CPU_BUDGET: f64 = 0.05;
const MIN_RATE_HZ: f64 = 1.0;
/// CPU spent beyond the budget so far (start-up, mostly) is paid back over this long: the
/// budget of the next windows is lowered by the debt / REPAY, to a quarter of it at most.
const REPAY: Duration = Duration::from_secs(30);
/// The rate aims at this share of the budget it may use (headroom for the next window).
const AIM: f64 = 0.9;
/// How often the sampler checks its own CPU use.
const SELF_CHECK_PERIOD: Duration = Duration::from_millis(250);
/// How long `stop` waits for the last tick before it takes what was measured as it is.
pub const STOP_WAIT: Duration = Duration::from_millis(500);

/// What consumes the snapshots as they are taken: the analysis, plugged in by the command layer
/// (the sampler knows nothing of what is made of them).
pub trait TickSink: Send + Default + 'static {
    fn ingest(&mut self, snapshot: &TickSnapshot);
    /// What the tree did since the last call, over `span_ns` of wall time, for the live line.
    fn recent(&mut self, span_ns: f64) -> RecentActivity;
}

/// The tree's recent activity, as a progress display shows it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecentActivity {
    /// CPU cores the tree used.
    pub cores: f64,
    /// What the tree mostly did ("cpu", or a wait kind's name).
    pub doing: &'static str,
}

pub struct SamplerConfig<S> {
    pub rate_hz: f64,
    pub scope: Scope,
    /// Time zero of the measurement.
    pub origin: Instant,
    /// Where to write every snapshot as a JSON line (fixtures, debugging).
    pub record: Option<File>,
    /// How new processes are found (the children files, or a scan of /proc).
    pub discovery: Discovery,
    pub sink: S,
    /// Where stacks come from, if they are read (`--no-stacks` leaves it out).
    pub stacks: Option<Stacks>,
}

/// What a progress display shows while sampling.
#[derive(Debug, Clone, Default)]
pub struct LiveStatus {
    /// CPU cores the tree used over the last quarter second.
    pub cores: f64,
    /// What the tree mostly did over the last quarter second.
    pub doing: &'static str,
    pub threads: usize,
}

pub struct SamplerOutcome<S> {
    /// The sink, with everything it was fed.
    pub sink: S,
    pub stats: SamplerStats,
    /// Why recording snapshots stopped, if it failed.
    pub record_error: Option<String>,
}

/// How the sampling went: its counts, its rate, what it could and could not read.
#[derive(Debug, Clone, Copy, Default)]
pub struct SamplerStats {
    pub samples: u64,
    pub late_samples: u64,
    /// The lowest rate the CPU budget forced, if it forced one.
    pub lowest_rate_hz: Option<f64>,
    /// The fewest samples taken in one whole second after the first (None before the second
    /// second ended).
    pub lowest_second_samples: Option<u64>,
    /// The most /proc descriptors held at once, and the most the sampler may hold.
    pub held_descriptors: usize,
    pub descriptor_budget: usize,
    /// concadvise's open descriptors when sampling started and when it ended.
    pub fds: (usize, usize),
    /// Threads of the tree never followed (out of descriptors, or unreadable), and why.
    pub threads_unseen: u64,
    pub unseen_cause: UnseenCause,
    /// concadvise's open-file limit at the end (what "out of descriptors" ran into).
    pub descriptor_limit: u64,
    pub threads_seen: u64,
    pub processes_seen: u64,
    pub sources: SourceStatus,
    /// Ticks that took longer than their period, and the longest of them.
    pub stalled_ticks: u64,
    pub longest_stall: Duration,
    pub discovery: Discovery,
    /// Files that needed a read or stat the sampler did not do (see `TreeReader`).
    pub unresolved_files: u64,
    /// The last tick did not finish within `STOP_WAIT`: this is what was measured before it.
    pub cut_short: bool,
}

impl SamplerStats {
    /// What the tree reader counted so far: descriptors, threads seen and unseen, sources.
    fn note_reader(&mut self, reader: &mut TreeReader) {
        self.held_descriptors = reader.held_descriptors_max;
        self.descriptor_budget = reader.descriptor_budget();
        self.threads_unseen = reader.threads_unseen();
        self.unseen_cause = reader.unseen_cause;
        self.threads_seen = reader.threads_seen;
        self.processes_seen = reader.processes_seen;
        self.sources = reader.sources();
        self.unresolved_files = reader.unresolved_files();
    }
}

/// What the sampling thread has measured so far, shared with `Sampler::stop`.
#[derive(Default)]
struct Measured<S> {
    sink: S,
    stats: SamplerStats,
    /// When the tick under way began (None between ticks).
    tick_started: Option<Instant>,
}

impl<S> Measured<S> {
    /// The outcome from what was measured, when the sampling thread did not finish.
    fn into_cut_short(mut self, discovery: Discovery) -> SamplerOutcome<S> {
        if let Some(started) = self.tick_started {
            self.stats.stalled_ticks += 1;
            self.stats.longest_stall = self.stats.longest_stall.max(started.elapsed());
        }
        self.stats.fds.1 = open_descriptors();
        self.stats.descriptor_limit = descriptor_limit();
        self.stats.discovery = discovery;
        self.stats.cut_short = true;
        SamplerOutcome {
            sink: self.sink,
            stats: self.stats,
            record_error: None,
        }
    }
}

fn lock<S>(measured: &Mutex<Measured<S>>) -> MutexGuard<'_, Measured<S>> {
    measured.lock().unwrap_or_else(PoisonError::into_inner)
}

pub struct Sampler<S> {
    stop: Arc<AtomicBool>,
    thread: std::thread::Thread,
    done: Receiver<SamplerOutcome<S>>,
    measured: Arc<Mutex<Measured<S>>>,
    live: Arc<Mutex<LiveStatus>>,
    discovery: Discovery,
}

impl<S: TickSink> Sampler<S> {
    pub fn start(config: SamplerConfig<S>) -> std::io::Result<Sampler<S>> {
        let discovery = config.discovery;
        Sampler::spawn(discovery, move |stop, live, measured| {
            sample_until_stopped(config, stop, live, measured)
        })
    }

    /// Runs `body` on the sampling thread (never joined: `stop` waits for its outcome at
    /// most STOP_WAIT).
    fn spawn(
        discovery: Discovery,
        body: impl FnOnce(&AtomicBool, &Mutex<LiveStatus>, &Mutex<Measured<S>>) -> SamplerOutcome<S>
            + Send
            + 'static,
    ) -> std::io::Result<Sampler<S>> {
        let stop = Arc::new(AtomicBool::new(false));
        let live = Arc::new(Mutex::new(LiveStatus::default()));
        let measured = Arc::new(Mutex::new(Measured::default()));
        let (finished, done) = channel();
        let thread = {
            let stop = Arc::clone(&stop);
            let live = Arc::clone(&live);
            let measured = Arc::clone(&measured);
            std::thread::Builder::new()
                .name("sampler".into())
                .spawn(move || {
                    let outcome = body(&stop, &live, &measured);
                    let _ = finished.send(outcome);
                })?
        };
        Ok(Sampler {
            stop,
            thread: thread.thread().clone(),
            done,
            measured,
            live,
            discovery,
        })
    }

    pub fn live(&self) -> Arc<Mutex<LiveStatus>> {
        Arc::clone(&self.live)
    }

    /// Stops after one last tick and hands over what was measured; if that tick does not end
    /// within `STOP_WAIT`, what the ticks before it measured (`cut_short`).
    pub fn stop(self) -> SamplerOutcome<S> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.unpark();
        match self.done.recv_timeout(STOP_WAIT) {
            Ok(outcome) => outcome,
            Err(_) => std::mem::take(&mut *lock(&self.measured)).into_cut_short(self.discovery),
        }
    }
}

/// The sampling loop: one tick reads the tree, the accountant ingests it under the lock, the
/// pacing keeps the rate (and lowers it to stay within the CPU budget).
// Long because it is one loop over state every step shares (the reader, the pace, the lock, the
// counters); the steps that stand alone are functions.
fn sample_until_stopped<S: TickSink>(
    config: SamplerConfig<S>,
    stop: &AtomicBool,
    live: &Mutex<LiveStatus>,
    measured: &Mutex<Measured<S>>,
) -> SamplerOutcome<S> {
    let mut pace = Pace::new(config.rate_hz);
    {
        let mut measured = lock(measured);
        measured.sink = config.sink;
        measured.stats.fds.0 = open_descriptors();
        measured.stats.discovery = config.discovery;
    }
    let mut reader = TreeReader::new(config.scope, config.origin, config.discovery);
    reader.set_period(pace.period);
    let mut seconds = SecondCounts::default();
    let mut stacks = config.stacks;
    let mut disks = diskstats::DiskReader::default();
    let mut recorder = config.record.map(BufWriter::new);
    let mut record_error = None;
    let mut snapshot = TickSnapshot::default();
    let mut ticks = 0u64;
    let mut last_live = Instant::now();
    loop {
        // Read the stop flag before the tick, so the last tick happens after the stop request.
        let stopping = stop.load(Ordering::SeqCst);
        let started = Instant::now();
        lock(measured).tick_started = Some(started);
        snapshot.at_ns = config.origin.elapsed().as_nanos() as u64;
        snapshot.clear();
        if ticks.is_multiple_of(pace.discover_every()) || stopping {
            reader.discover(&mut snapshot);
        }
        reader.read_threads(&mut snapshot, stopping);
        reader.read_cgroups(&mut snapshot);
        reader.read_listeners(&mut snapshot);
        if let Some(stacks) = stacks.as_mut() {
            stacks.tick(&mut snapshot, stopping);
        }
        disks.read(&mut snapshot);
        ticks += 1;
        seconds.count(started.saturating_duration_since(config.origin));
        {
            let mut measured = lock(measured);
            measured.sink.ingest(&snapshot);
            let stats = &mut measured.stats;
            stats.samples += 1;
            stats.lowest_second_samples = seconds.lowest;
            let took = started.elapsed();
            if took > pace.period {
                stats.stalled_ticks += 1;
                stats.longest_stall = stats.longest_stall.max(took);
            }
            stats.note_reader(&mut reader);
            measured.tick_started = None;
            if last_live.elapsed() >= LIVE_PERIOD {
                let span = last_live.elapsed().as_nanos() as f64;
                last_live = Instant::now();
                update_live(live, &mut measured.sink, span, reader.live_threads());
            }
        }
        record(&mut recorder, &snapshot, &mut record_error);
        if stopping {
            break;
        }
        if let Some(lowered) = pace.keep_to_budget(reader.new_threads_cpu) {
            let stats = &mut lock(measured).stats;
            stats.lowest_rate_hz =
                Some(stats.lowest_rate_hz.map_or(lowered, |low| low.min(lowered)));
        }
        reader.set_period(pace.period);
        if pace.wait_for_next_tick() {
            lock(measured).stats.late_samples += 1;
        }
    }
    if let Some(writer) = recorder.as_mut() {
        if let Err(error) = writer.flush() {
            record_error = Some(error.to_string());
        }
    }
    // Counted once the reader has closed everything it held: what is left open is a leak.
    drop(reader);
    drop(stacks);
    drop(recorder);
    let fds_end = open_descriptors();
    let mut measured = std::mem::take(&mut *lock(measured));
    measured.stats.fds.1 = fds_end;
    measured.stats.descriptor_limit = descriptor_limit();
    SamplerOutcome {
        sink: measured.sink,
        stats: measured.stats,
        record_error,
    }
}

/// Appends the tick's snapshot to the recording (`--record-samples`); the first failure ends
/// the recording and is kept for the report.
fn record(
    recorder: &mut Option<BufWriter<File>>,
    snapshot: &TickSnapshot,
    record_error: &mut Option<String>,
) {
    if let Some(writer) = recorder.as_mut() {
        let written = serde_json::to_writer(&mut *writer, snapshot)
            .map_err(|e| e.to_string())
            .and_then(|()| writer.write_all(b"\n").map_err(|e| e.to_string()));
        if let Err(error) = written {
            *record_error = Some(error);
            *recorder = None;
        }
    }
}

/// concadvise's open-file limit (what "out of descriptors" ran into).
fn descriptor_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(0, |(soft, _)| soft)
}

/// The live view: what the tree mostly did over the last quarter second.
fn update_live<S: TickSink>(live: &Mutex<LiveStatus>, sink: &mut S, span: f64, threads: usize) {
    let recent = sink.recent(span);
    if let Ok(mut status) = live.lock() {
        *status = LiveStatus {
            cores: recent.cores,
            doing: recent.doing,
            threads,
        };
    }
}

/// Samples per whole second since time zero, and the fewest in one after the first.
#[derive(Default)]
struct SecondCounts {
    second: u64,
    samples: u64,
    lowest: Option<u64>,
}

impl SecondCounts {
    /// One sample taken `at` after time zero.
    fn count(&mut self, at: Duration) {
        let second = at.as_secs();
        if second != self.second {
            let mut note = |samples: u64| {
                self.lowest = Some(self.lowest.map_or(samples, |low| low.min(samples)));
            };
            // The second that ended (unless it was the first), and any whole second after the
            // first that passed without a sample.
            if self.second >= 1 {
                note(self.samples);
            }
            if second > self.second + 1 && second >= 2 {
                note(0);
            }
            (self.second, self.samples) = (second, 0);
        }
        self.samples += 1;
    }
}

/// The sampling rate: the one asked for, lowered while concadvise's own CPU use is over the
/// budget, and the time of the next tick.
struct Pace {
    asked_hz: f64,
    rate_hz: f64,
    period: Duration,
    next: Instant,
    started: Instant,
    cpu_at_start: f64,
    last_check: Instant,
    cpu_at_check: f64,
    one_off_at_check: Duration,
}

impl Pace {
    fn new(rate_hz: f64) -> Self {
        let cpu = process_cpu_seconds();
        Pace {
            asked_hz: rate_hz,
            rate_hz,
            period: Duration::from_secs_f64(1.0 / rate_hz),
            next: Instant::now(),
            started: Instant::now(),
            cpu_at_start: cpu,
            last_check: Instant::now(),
            cpu_at_check: cpu,
            one_off_at_check: Duration::ZERO,
        }
    }

    /// Discovery runs every this many ticks (about every DISCOVERY_PERIOD).
    fn discover_every(&self) -> u64 {
        (DISCOVERY_PERIOD.as_secs_f64() / self.period.as_secs_f64())
            .round()
            .max(1.0) as u64
    }

    /// Checks concadvise's CPU use every SELF_CHECK_PERIOD and adjusts the rate; returns the
    /// new rate when it was lowered below the one asked for. `one_off`: the CPU spent so far
    /// opening new threads, which the rate does not change (it counts in the whole run's
    /// budget all the same).
    fn keep_to_budget(&mut self, one_off: Duration) -> Option<f64> {
        if self.last_check.elapsed() < SELF_CHECK_PERIOD {
            return None;
        }
        let window = self.last_check.elapsed().as_secs_f64();
        let cpu = process_cpu_seconds();
        let one_off_now = one_off.saturating_sub(self.one_off_at_check).as_secs_f64();
        let share = ((cpu - self.cpu_at_check - one_off_now) / window).max(0.0);
        (self.last_check, self.cpu_at_check) = (Instant::now(), cpu);
        self.one_off_at_check = one_off;
        // The budget holds over the whole run: what was spent beyond it so far is paid back
        // over the next REPAY.
        let debt = (cpu - self.cpu_at_start) - CPU_BUDGET * self.started.elapsed().as_secs_f64();
        let allowed = (CPU_BUDGET - debt.max(0.0) / REPAY.as_secs_f64()).max(CPU_BUDGET / 4.0);
        let climbed = (self.rate_hz * 1.5).min(self.asked_hz);
        let adjusted = if share > allowed {
            (self.rate_hz * AIM * allowed / share).max(MIN_RATE_HZ)
        } else if share * climbed / self.rate_hz < 0.8 * allowed {
            // Climb back while the higher rate would still stay well within the budget.
            climbed
        } else {
            self.rate_hz
        };
        if adjusted == self.rate_hz {
            return None;
        }
        self.rate_hz = adjusted;
        self.period = Duration::from_secs_f64(1.0 / adjusted);
        (adjusted < self.asked_hz).then_some(adjusted)
    }

    /// Sleeps until the next tick is due; true if this tick started over half a period late
    /// (the missed ticks are skipped rather than burst).
    fn wait_for_next_tick(&mut self) -> bool {
        self.next += self.period;
        let now = Instant::now();
        let late = now > self.next + self.period / 2;
        if late {
            let missed = (now - self.next).as_nanos() / self.period.as_nanos().max(1);
            self.next += self.period * missed as u32;
        }
        if let Some(wait) = self.next.checked_duration_since(Instant::now()) {
            std::thread::park_timeout(wait);
        }
        late
    }
}

/// concadvise's CPU time in seconds (all its threads: the sampler, the helpers, the main one).
fn process_cpu_seconds() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |usage| {
        let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        seconds(usage.user_time()) + seconds(usage.system_time())
    })
}

/// How many descriptors concadvise has open.
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_last_tick_that_never_ends_still_hands_over_what_was_measured() {
        let (release, blocked) = channel::<()>();
        let sampler = Sampler::spawn(Discovery::Children, move |_, _, measured| {
            {
                let mut measured = lock::<crate::analysis::TickAnalyser>(measured);
                measured.stats.samples = 42;
                measured.tick_started = Some(Instant::now());
            }
            // A read of /proc that does not return (a task's memory lock held by a stuck
            // thread, say).
            let _ = blocked.recv();
            std::mem::take(&mut *lock(measured)).into_cut_short(Discovery::Children)
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let asked = Instant::now();
        let outcome = sampler.stop();
        assert!(asked.elapsed() < STOP_WAIT + Duration::from_millis(300));
        assert!(outcome.stats.cut_short);
        assert_eq!(outcome.stats.samples, 42);
        assert_eq!(
            outcome.stats.stalled_ticks, 1,
            "the tick under way is a stall"
        );
        assert!(outcome.stats.longest_stall >= STOP_WAIT);
        drop(release);
    }
}
