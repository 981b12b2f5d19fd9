//! The sampling thread: paced ticks that read the tree from /proc and feed the accountant.

pub mod cgroups;
pub mod fd_resolver;
pub mod observation;
pub mod peers;
pub mod proc_file;
pub mod stacks;
pub mod tree_reader;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use observation::TickSnapshot;
use stacks::Stacks;
use tree_reader::{Scope, SourceStatus, TreeReader};

/// The tree is searched for new processes and threads at most this often; counters of known
/// threads are read at every tick. A thread found late still counts from its birth.
const DISCOVERY_PERIOD: Duration = Duration::from_millis(100);
/// The live view is refreshed this often.
const LIVE_PERIOD: Duration = Duration::from_millis(250);
/// The sampler's own CPU budget, as a share of one core: above it the rate is lowered (never
/// below `MIN_RATE_HZ`); it climbs back towards the rate asked for while the higher rate would
/// cost under 80% of the budget.
pub const CPU_BUDGET: f64 = 0.05;
const MIN_RATE_HZ: f64 = 1.0;
/// The start-up time the CPU budget leaves alone.
const STARTUP: Duration = Duration::from_millis(500);
/// How often the sampler checks its own CPU use.
const SELF_CHECK_PERIOD: Duration = Duration::from_millis(250);

/// What consumes the snapshots as they are taken: the analysis, plugged in by the command layer
/// (the sampler knows nothing of what is made of them).
pub trait TickSink: Send + 'static {
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
    /// concadvise's open descriptors when sampling started and when it ended.
    pub fds: (usize, usize),
    /// Threads that could not be followed (out of descriptors, or unreadable).
    pub threads_untracked: u64,
    pub threads_seen: u64,
    pub processes_seen: u64,
    pub sources: SourceStatus,
}

pub struct Sampler<S> {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<SamplerOutcome<S>>,
    live: Arc<Mutex<LiveStatus>>,
}

impl<S: TickSink> Sampler<S> {
    pub fn start(config: SamplerConfig<S>) -> std::io::Result<Sampler<S>> {
        let stop = Arc::new(AtomicBool::new(false));
        let live = Arc::new(Mutex::new(LiveStatus::default()));
        let thread = {
            let stop = Arc::clone(&stop);
            let live = Arc::clone(&live);
            std::thread::Builder::new()
                .name("sampler".into())
                .spawn(move || sample_until_stopped(config, &stop, &live))?
        };
        Ok(Sampler { stop, thread, live })
    }

    pub fn live(&self) -> Arc<Mutex<LiveStatus>> {
        Arc::clone(&self.live)
    }

    /// Stops after one last tick and hands over what was measured.
    pub fn stop(self) -> Option<SamplerOutcome<S>> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.thread().unpark();
        self.thread.join().ok()
    }
}

/// The sampler thread's loop: a tick (discovery when due, every thread's counters), the
/// recording, the live status, then the CPU budget and the pacing. Kept in one function so the
/// order of those steps within a tick reads top to bottom.
fn sample_until_stopped<S: TickSink>(
    config: SamplerConfig<S>,
    stop: &AtomicBool,
    live: &Mutex<LiveStatus>,
) -> SamplerOutcome<S> {
    let mut rate_hz = config.rate_hz;
    let mut period = Duration::from_secs_f64(1.0 / rate_hz);
    let discover_every = |period: Duration| {
        (DISCOVERY_PERIOD.as_secs_f64() / period.as_secs_f64())
            .round()
            .max(1.0) as u64
    };
    let mut lowest_rate_hz: Option<f64> = None;
    let fds_start = open_descriptors();
    let mut last_check = Instant::now();
    let mut stacks = config.stacks;
    // The stack thread's CPU counts in the same budget as the sampler's own.
    let spent =
        |stacks: &Option<Stacks>| thread_cpu_seconds() + stacks.as_ref().map_or(0.0, Stacks::cpu_s);
    let mut cpu_at_check = spent(&stacks);
    let mut threads_seen_at_check = 0;
    let mut reader = TreeReader::new(config.scope, config.origin);
    let mut sink = config.sink;
    let mut recorder = config.record.map(BufWriter::new);
    let mut record_error = None;
    let mut snapshot = TickSnapshot::default();
    let mut samples = 0u64;
    let mut late_samples = 0u64;
    let mut next = Instant::now();
    let mut last_live = Instant::now();
    loop {
        // Read the stop flag before the tick, so the last tick happens after the stop request.
        let stopping = stop.load(Ordering::SeqCst);
        snapshot.at_ns = config.origin.elapsed().as_nanos() as u64;
        snapshot.clear();
        if samples.is_multiple_of(discover_every(period)) || stopping {
            reader.discover(&mut snapshot);
        }
        reader.read_threads(&mut snapshot, stopping);
        reader.read_cgroups(&mut snapshot);
        if let Some(stacks) = stacks.as_mut() {
            stacks.tick(&mut snapshot, stopping);
        }
        sink.ingest(&snapshot);
        if let Some(writer) = recorder.as_mut() {
            let written = serde_json::to_writer(&mut *writer, &snapshot)
                .map_err(|e| e.to_string())
                .and_then(|()| writer.write_all(b"\n").map_err(|e| e.to_string()));
            if let Err(error) = written {
                record_error = Some(error);
                recorder = None;
            }
        }
        samples += 1;
        if last_live.elapsed() >= LIVE_PERIOD {
            let span = last_live.elapsed().as_nanos() as f64;
            last_live = Instant::now();
            let recent = sink.recent(span);
            if let Ok(mut status) = live.lock() {
                *status = LiveStatus {
                    cores: recent.cores,
                    doing: recent.doing,
                    threads: reader.live_threads(),
                };
            }
        }
        if stopping {
            break;
        }
        // The first half second, and any window in which many new threads were found and
        // opened, pay a one-off cost that lowering the rate would not save.
        let many_new = reader.threads_seen > threads_seen_at_check + 64;
        if last_check.elapsed() >= SELF_CHECK_PERIOD
            && (config.origin.elapsed() < STARTUP || many_new)
        {
            (last_check, cpu_at_check) = (Instant::now(), spent(&stacks));
            threads_seen_at_check = reader.threads_seen;
        }
        if last_check.elapsed() >= SELF_CHECK_PERIOD {
            let window = last_check.elapsed().as_secs_f64();
            let cpu = spent(&stacks);
            let share = (cpu - cpu_at_check) / window;
            (last_check, cpu_at_check) = (Instant::now(), cpu);
            threads_seen_at_check = reader.threads_seen;
            let climbed = (rate_hz * 1.5).min(config.rate_hz);
            let adjusted = if share > CPU_BUDGET {
                (rate_hz * CPU_BUDGET / share).max(MIN_RATE_HZ)
            } else if share * climbed / rate_hz < 0.8 * CPU_BUDGET {
                // Climb back while the higher rate would still stay well within the budget.
                climbed
            } else {
                rate_hz
            };
            if adjusted != rate_hz {
                rate_hz = adjusted;
                period = Duration::from_secs_f64(1.0 / rate_hz);
                if rate_hz < config.rate_hz {
                    lowest_rate_hz = Some(lowest_rate_hz.map_or(rate_hz, |low| low.min(rate_hz)));
                }
            }
        }
        next += period;
        let now = Instant::now();
        if now > next + period / 2 {
            // Fell behind: count it, and skip the missed ticks rather than bursting.
            late_samples += 1;
            let missed = (now - next).as_nanos() / period.as_nanos().max(1);
            next += period * missed as u32;
        }
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::park_timeout(wait);
        }
    }
    if let Some(writer) = recorder.as_mut() {
        if let Err(error) = writer.flush() {
            record_error = Some(error.to_string());
        }
    }
    let (threads_untracked, threads_seen, processes_seen, sources) = (
        reader.threads_untracked,
        reader.threads_seen,
        reader.processes_seen,
        reader.sources(),
    );
    // Counted once the reader has closed everything it held: what is left open is a leak.
    drop(reader);
    drop(stacks);
    drop(recorder);
    let fds_end = open_descriptors();
    SamplerOutcome {
        sink,
        stats: SamplerStats {
            samples,
            late_samples,
            lowest_rate_hz,
            fds: (fds_start, fds_end),
            threads_untracked,
            threads_seen,
            processes_seen,
            sources,
        },
        record_error,
    }
}

/// This thread's CPU time in seconds.
fn thread_cpu_seconds() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map_or(0.0, |t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
}

/// How many descriptors concadvise has open.
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}
