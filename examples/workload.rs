//! A test workload for concadvise: one program whose modes each have a single,
//! unambiguous character (CPU-bound, disk-bound, sleeping, waiting on the
//! network, on a lock...), launched under the profiler by the integration tests
//! and the README demo. Standard library only, Linux only.
//!
//! Usage: `workload MODE [--flag value]...` (durations are wall-clock seconds,
//! fractions allowed). An unknown mode or flag, or a bad value, exits with 2;
//! a failure at run time exits with 1. Every mode but `exit` and `net-server`
//! ends with one summary line on stdout (`MODE: ...`); diagnostics go to stderr.
//!
//! - `cpu`: N threads computing for S seconds, then `cpu: done` on stdout —
//!   `workload cpu --seconds 2 --threads 1`; or, with `--work M` instead of
//!   `--seconds`, each thread runs M million iterations of the same loop and
//!   exits (fixed work, for measuring slowdown) — `workload cpu --work 2000`;
//!   or, with `--total-work M`, the M million iterations are split among the
//!   threads (the same work at any thread count, for `concadvise scale`) —
//!   `workload cpu --total-work 2000 --threads 4`
//! - `cpu-procs`: N child processes, each `cpu --seconds S`; fails if one fails —
//!   `workload cpu-procs --seconds 2 --procs 2`
//! - `disk`: 4 KiB writes, each followed by fdatasync, in a temporary file in D —
//!   `workload disk --seconds 2 --dir .`
//! - `direct-writes`: N threads, each overwriting a temporary file of M MiB in D
//!   in blocks of K KiB with O_DIRECT (one request to the device at a time per
//!   thread, no page cache), for S seconds —
//!   `workload direct-writes --seconds 2 --dir . --threads 1 --block-kib 4 --span-mib 8`
//! - `sleep`: sleeps S seconds — `workload sleep --seconds 2`
//! - `exit`: exits at once with code N — `workload exit --code 3`
//! - `net-server`: slow TCP server on 127.0.0.1 (answers each line with `ok`
//!   after D ms), prints `listening on 127.0.0.1:PORT`, runs until killed —
//!   `workload net-server --port 0 --delay-ms 200`
//! - `net-client`: N request/response round-trips over K connections, against
//!   ADDR or, without `--addr`, a slow server started in this process (which
//!   is what `--delay-ms` is for); `--concurrency K` is another name for
//!   `--parallel K`; ends with `net-client: N requests in S s (R requests/s)` —
//!   `workload net-client --addr 127.0.0.1:7878 --requests 10 --delay-ms 200 --parallel 1`
//! - `phases`: sleep, then compute, then disk, S seconds each —
//!   `workload phases --each 1 --dir .`
//! - `spawn-cpu-later`: sleeps S seconds, then runs a child `cpu --seconds T` (or, with
//!   `--work M`, `cpu --work M`: fixed work) and waits for it —
//!   `workload spawn-cpu-later --after 1 --seconds 2`
//! - `thread-churn`: N short-lived threads, B at a time, M ms of computation each (or, with
//!   `--work K`, K million loop iterations each: fixed work), then idle for `--linger S` —
//!   `workload thread-churn --count 500 --batch 50 --work-ms 2`; or, with `--per-second R`,
//!   R threads a second for `--seconds S` (a batch of B started, and joined, every B/R s) —
//!   `workload thread-churn --per-second 2000 --seconds 10 --batch 20 --work-ms 0.2`
//! - `many-threads`: N threads alive at once, K computing for S seconds, the rest
//!   blocked until the end — `workload many-threads --threads 1000 --busy 2 --seconds 5`
//! - `locks`: N threads taking turns on one mutex, computing ~1 ms while holding
//!   it — `workload locks --threads 4 --seconds 2`
//! - `flicker`: N threads that change state all the time (for the trace's event
//!   budget), each over and over computing W ms, sleeping P ms, then waiting L ms
//!   on a condition variable nobody signals, for S seconds —
//!   `workload flicker --threads 1000 --seconds 60 --work-ms 0 --sleep-ms 10 --wait-ms 10`
//! - `read`: reads a file to its end in 64 KiB reads, with no stat of it (open and
//!   read only), then prints the byte count and the time it ended (Unix seconds) —
//!   `workload read --file data.bin`

use std::fs::{self, OpenOptions};
use std::hint::black_box;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::str::FromStr;
use std::sync::{Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: workload MODE [--flag value]...
  cpu             [--seconds S=2 | --work M | --total-work M] [--threads N=1]
  cpu-procs       [--seconds S=2] [--procs N=2]
  disk            [--seconds S=2] [--dir D=.]
  direct-writes   [--seconds S=2] [--dir D=.] [--threads N=1] [--block-kib K=4] [--span-mib M=8]
  sleep           [--seconds S=2]
  exit            --code N
  net-server      [--port P=0] [--delay-ms D=200]
  net-client      [--addr HOST:PORT] [--requests N=10] [--delay-ms D=200] [--parallel K=1 | --concurrency K]
  phases          [--each S=1] [--dir D=.]
  spawn-cpu-later [--after S=1] [--seconds T=2 | --work M]
  thread-churn    [--count N=500 | --per-second R --seconds S] [--batch B=50]
                  [--work-ms M=2 | --work K] [--linger S=0]
  many-threads    [--threads N=1000] [--busy K=2] [--seconds S=5]
  locks           [--threads N=4] [--seconds S=2]
  flicker         [--threads N=100] [--seconds S=5] [--work-ms W=0] [--sleep-ms P=10] [--wait-ms L=10]
  read            --file PATH";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(mode) = args.next() else {
        usage_error("missing MODE")
    };
    let mut opts = Opts::parse(&mode, args);
    match mode.as_str() {
        "cpu" => {
            let work = opts.take::<u64>("work");
            let total_work = opts.take::<u64>("total-work");
            let given_secs = opts.take::<f64>("seconds");
            let threads = opts.count("threads", 1);
            opts.finish();
            let given = [work.is_some(), total_work.is_some(), given_secs.is_some()];
            if given.iter().filter(|&&g| g).count() > 1 {
                usage_error("--work, --total-work and --seconds conflict: give one");
            }
            match (work, total_work, given_secs) {
                (Some(0), _, _) => usage_error("--work must be at least 1"),
                (_, Some(0), _) => usage_error("--total-work must be at least 1"),
                (Some(millions), _, _) => cpu_work(&vec![millions; threads]),
                (_, Some(total), _) => cpu_work(&split_evenly(total, threads)),
                (None, None, secs) => {
                    let s = secs.unwrap_or(2.0);
                    let secs = Duration::try_from_secs_f64(s).unwrap_or_else(|_| {
                        usage_error(&format!("bad duration `{s}` for --seconds"))
                    });
                    cpu(secs, threads);
                }
            }
        }
        "cpu-procs" => {
            let (secs, procs) = (opts.secs("seconds", 2.0), opts.count("procs", 2));
            opts.finish();
            return cpu_procs(secs, procs);
        }
        "disk" => {
            let secs = opts.secs("seconds", 2.0);
            let dir = opts.get("dir", PathBuf::from("."));
            opts.finish();
            let blocks = disk(secs, &dir);
            println!("disk: {blocks} blocks of 4 KiB written and fdatasync'd");
        }
        "direct-writes" => {
            let secs = opts.secs("seconds", 2.0);
            let dir = opts.get("dir", PathBuf::from("."));
            let threads = opts.count("threads", 1);
            let block = opts.count("block-kib", 4) * 1024;
            let span = opts.count("span-mib", 8) * 1024 * 1024;
            opts.finish();
            let blocks = direct_writes(secs, &dir, threads, block, span);
            println!(
                "direct-writes: {blocks} blocks of {} KiB written with O_DIRECT by {threads} threads",
                block / 1024
            );
        }
        "sleep" => {
            let secs = opts.secs("seconds", 2.0);
            opts.finish();
            thread::sleep(secs);
            println!("sleep: done");
        }
        "exit" => {
            let Some(code) = opts.take::<i32>("code") else {
                usage_error("mode `exit` needs --code N")
            };
            opts.finish();
            std::process::exit(code);
        }
        "net-server" => {
            let port = opts.get::<u16>("port", 0);
            let delay = Duration::from_millis(opts.get("delay-ms", 200));
            opts.finish();
            let listener = bind_local(port);
            println!("listening on {}", local_addr(&listener));
            io::stdout().flush().expect("flushing stdout");
            serve_slowly(&listener, delay);
        }
        "net-client" => {
            let addr = opts.take::<String>("addr");
            let requests: usize = opts.get("requests", 10);
            let delay = Duration::from_millis(opts.get("delay-ms", 200));
            let parallel = match opts.take::<usize>("concurrency") {
                Some(_) if opts.flags.iter().any(|(n, _)| n == "parallel") => {
                    usage_error("--concurrency is another name for --parallel: give one")
                }
                Some(0) => usage_error("--concurrency must be at least 1"),
                Some(k) => k,
                None => opts.count("parallel", 1),
            };
            opts.finish();
            return net_client(addr, requests, delay, parallel);
        }
        "phases" => {
            let each = opts.secs("each", 1.0);
            let dir = opts.get("dir", PathBuf::from("."));
            opts.finish();
            eprintln!("phases: sleep");
            thread::sleep(each);
            eprintln!("phases: cpu");
            burn_for(each);
            eprintln!("phases: disk");
            let blocks = disk(each, &dir);
            println!("phases: done ({blocks} disk blocks)");
        }
        "spawn-cpu-later" => {
            let after = opts.secs("after", 1.0);
            let work = opts.take::<u64>("work");
            let secs = opts.secs("seconds", 2.0);
            opts.finish();
            thread::sleep(after);
            let child = match work {
                Some(millions) => spawn_self(&["cpu", "--work", &millions.to_string()]),
                None => spawn_self_cpu(secs),
            };
            if !wait_ok(child, "cpu child") {
                return ExitCode::FAILURE;
            }
            println!("spawn-cpu-later: done");
        }
        "thread-churn" => {
            let count = opts.take::<usize>("count");
            let per_second = opts.take::<f64>("per-second");
            let secs = opts.take::<f64>("seconds");
            let batch = opts.count("batch", 50);
            let iterations = opts.take::<u64>("work");
            let work = opts.secs("work-ms", 2.0) / 1000;
            let linger = opts.secs("linger", 0.0);
            opts.finish();
            let pace = match (count, per_second, secs) {
                (count, None, None) => Churn::Count(count.unwrap_or(500)),
                (None, Some(rate), Some(s)) if rate > 0.0 && s >= 0.0 => Churn::Paced(rate, s),
                (None, Some(_), Some(_)) => usage_error("--per-second must be above 0"),
                (None, _, _) => usage_error("--per-second and --seconds go together"),
                (Some(_), _, _) => usage_error("--count conflicts with --per-second"),
            };
            thread_churn(pace, batch, work, iterations);
            // Alive, idle, after its threads: the last CPU is in its counters before it exits.
            thread::sleep(linger);
        }
        "many-threads" => {
            let threads = opts.count("threads", 1000);
            let busy = opts.get::<usize>("busy", 2).min(threads);
            let secs = opts.secs("seconds", 5.0);
            opts.finish();
            return many_threads(threads, busy, secs);
        }
        "locks" => {
            let (threads, secs) = (opts.count("threads", 4), opts.secs("seconds", 2.0));
            opts.finish();
            locks(threads, secs);
        }
        "flicker" => {
            let (threads, secs) = (opts.count("threads", 100), opts.secs("seconds", 5.0));
            let work = Duration::from_millis(opts.get("work-ms", 0));
            let pause = Duration::from_millis(opts.get("sleep-ms", 10));
            let wait = Duration::from_millis(opts.get("wait-ms", 10));
            opts.finish();
            return flicker(threads, secs, [work, pause, wait]);
        }
        "read" => {
            let Some(path) = opts.take::<PathBuf>("file") else {
                usage_error("mode `read` needs --file PATH")
            };
            opts.finish();
            read_file(&path);
        }
        other => usage_error(&format!("unknown mode `{other}`")),
    }
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------
// Argument parsing: `--name value` pairs, each taken by the mode that knows it.

struct Opts {
    mode: String,
    flags: Vec<(String, String)>,
}

impl Opts {
    fn parse(mode: &str, mut args: impl Iterator<Item = String>) -> Opts {
        let mut flags: Vec<(String, String)> = Vec::new();
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--") else {
                usage_error(&format!(
                    "unexpected argument `{arg}` (flags are `--name value`)"
                ))
            };
            let Some(value) = args.next() else {
                usage_error(&format!("flag --{name} needs a value"))
            };
            if flags.iter().any(|(n, _)| n == name) {
                usage_error(&format!("flag --{name} given twice"));
            }
            flags.push((name.to_string(), value));
        }
        Opts {
            mode: mode.to_string(),
            flags,
        }
    }

    /// Removes and parses flag `name`, if given.
    fn take<T: FromStr>(&mut self, name: &str) -> Option<T> {
        let i = self.flags.iter().position(|(n, _)| n == name)?;
        let (_, value) = self.flags.remove(i);
        match value.parse() {
            Ok(v) => Some(v),
            Err(_) => usage_error(&format!("bad value `{value}` for --{name}")),
        }
    }

    fn get<T: FromStr>(&mut self, name: &str, default: T) -> T {
        self.take(name).unwrap_or(default)
    }

    /// A count that must be at least 1.
    fn count(&mut self, name: &str, default: usize) -> usize {
        let n = self.get(name, default);
        if n == 0 {
            usage_error(&format!("--{name} must be at least 1"));
        }
        n
    }

    /// Wall-clock seconds (fractions allowed).
    fn secs(&mut self, name: &str, default: f64) -> Duration {
        let s: f64 = self.get(name, default);
        Duration::try_from_secs_f64(s)
            .unwrap_or_else(|_| usage_error(&format!("bad duration `{s}` for --{name}")))
    }

    /// Rejects the flags that the mode did not take.
    fn finish(self) {
        if let Some((name, _)) = self.flags.first() {
            usage_error(&format!("unknown flag --{name} for mode `{}`", self.mode));
        }
    }
}

fn usage_error(msg: &str) -> ! {
    eprintln!("workload: {msg}\n{USAGE}");
    std::process::exit(2)
}

fn fail(msg: &str) -> ! {
    eprintln!("workload: {msg}");
    std::process::exit(1)
}

// ---------------------------------------------------------------------------
// Shared workloads.

/// Pure computation (an LCG, no syscalls) until `deadline`, looking at the
/// clock (vDSO, not a syscall) only every 100k iterations.
fn burn_until(deadline: Instant) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    loop {
        for _ in 0..100_000 {
            x = black_box(
                x.wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407),
            );
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    black_box(x);
}

/// The loop of `burn_until`, for a fixed `millions` of million iterations and
/// no clock reads at all.
fn burn_iterations(millions: u64) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..millions {
        for _ in 0..1_000_000 {
            x = black_box(
                x.wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407),
            );
        }
    }
    black_box(x);
}

fn burn_for(d: Duration) {
    burn_until(Instant::now() + d);
}

fn cpu(secs: Duration, threads: usize) {
    let deadline = Instant::now() + secs;
    thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(|| burn_until(deadline));
        }
        burn_until(deadline);
    });
    println!("cpu: done");
}

/// `threads` threads, each running `millions` million loop iterations.
/// One thread per entry of `millions`, each running that many million iterations.
fn cpu_work(millions: &[u64]) {
    thread::scope(|s| {
        let (first, rest) = millions.split_first().expect("at least one thread");
        for &share in rest {
            s.spawn(move || burn_iterations(share));
        }
        burn_iterations(*first);
    });
    println!("cpu: done");
}

/// `total` split into `parts` shares that differ by at most one.
fn split_evenly(total: u64, parts: usize) -> Vec<u64> {
    let parts = parts as u64;
    (0..parts)
        .map(|i| total / parts + u64::from(i < total % parts))
        .collect()
}

/// `procs` children `cpu --seconds S` at once; fails if any of them fails.
fn cpu_procs(secs: Duration, procs: usize) -> ExitCode {
    let children: Vec<Child> = (0..procs).map(|_| spawn_self_cpu(secs)).collect();
    let failed = children
        .into_iter()
        .map(|c| wait_ok(c, "cpu child"))
        .filter(|ok| !ok)
        .count();
    if failed > 0 {
        eprintln!("workload: {failed} of {procs} cpu children failed");
        return ExitCode::FAILURE;
    }
    println!("cpu-procs: {procs} children done");
    ExitCode::SUCCESS
}

/// Starts this program again as `cpu --seconds S`.
fn spawn_self_cpu(secs: Duration) -> Child {
    spawn_self(&["cpu", "--seconds", &secs.as_secs_f64().to_string()])
}

/// This program again, with `args`.
fn spawn_self(args: &[&str]) -> Child {
    let exe = std::env::current_exe()
        .unwrap_or_else(|e| fail(&format!("cannot find own executable: {e}")));
    Command::new(&exe)
        .args(args)
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot start {}: {e}", exe.display())))
}

/// Waits for `child`; true if it exited with success.
fn wait_ok(mut child: Child, what: &str) -> bool {
    match child.wait() {
        Ok(status) if status.success() => true,
        Ok(status) => {
            eprintln!("workload: {what} {} failed: {status}", child.id());
            false
        }
        Err(e) => {
            eprintln!("workload: waiting for {what} {}: {e}", child.id());
            false
        }
    }
}

/// Deletes the scratch file however `disk` ends (errors ignored).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Appends 4 KiB blocks to a scratch file in `dir`, each followed by an
/// fdatasync, for `secs`; returns the number of blocks written.
fn disk(secs: Duration, dir: &Path) -> u64 {
    fn run(secs: Duration, path: &Path) -> io::Result<u64> {
        let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
        let _remove = RemoveOnDrop(path.to_path_buf());
        let block = [0xA5u8; 4096];
        let start = Instant::now();
        let mut blocks = 0;
        while start.elapsed() < secs {
            file.write_all(&block)?;
            file.sync_data()?;
            blocks += 1;
        }
        Ok(blocks)
    }
    let path = dir.join(format!(".workload-disk-{}.tmp", std::process::id()));
    run(secs, &path).unwrap_or_else(|e| fail(&format!("disk workload on {}: {e}", path.display())))
}

/// O_DIRECT (bypasses the page cache: each write is a request to the device).
#[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
const O_DIRECT: i32 = 0o200000;
#[cfg(not(any(target_arch = "aarch64", target_arch = "arm")))]
const O_DIRECT: i32 = 0o40000;

/// `threads` threads, each overwriting its own scratch file of `span` bytes in
/// `dir` (written once through the page cache and synced first, so the timed
/// writes only overwrite) in `block`-byte O_DIRECT writes, round and round.
fn direct_writes(secs: Duration, dir: &Path, threads: usize, block: usize, span: usize) -> u64 {
    fn run(secs: Duration, path: &Path, block: usize, span: usize) -> io::Result<u64> {
        use std::os::unix::fs::{FileExt, OpenOptionsExt};
        let _remove = RemoveOnDrop(path.to_path_buf());
        let mut plain = OpenOptions::new().write(true).create_new(true).open(path)?;
        plain.write_all(&vec![0u8; span])?;
        plain.sync_all()?;
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(O_DIRECT)
            .open(path)?;
        // O_DIRECT wants the buffer aligned like the device's blocks: 4 KiB covers them all.
        let space = vec![0xA5u8; block + 4096];
        let start = space.as_ptr().align_offset(4096);
        let buffer = &space[start..start + block];
        let begun = Instant::now();
        let (mut blocks, mut offset) = (0u64, 0usize);
        while begun.elapsed() < secs {
            file.write_all_at(buffer, offset as u64)?;
            blocks += 1;
            offset = (offset + block) % (span - span % block).max(block);
        }
        Ok(blocks)
    }
    let pid = std::process::id();
    let workers: Vec<_> = (0..threads)
        .map(|index| {
            let path = dir.join(format!(".workload-direct-{pid}-{index}.tmp"));
            thread::spawn(move || {
                run(secs, &path, block, span)
                    .unwrap_or_else(|e| fail(&format!("direct-writes on {}: {e}", path.display())))
            })
        })
        .collect();
    workers
        .into_iter()
        .map(|worker| {
            worker
                .join()
                .unwrap_or_else(|_| fail("a writer thread panicked"))
        })
        .sum()
}

// ---------------------------------------------------------------------------
// The slow TCP server and its client.

fn bind_local(port: u16) -> TcpListener {
    TcpListener::bind(("127.0.0.1", port))
        .unwrap_or_else(|e| fail(&format!("cannot listen on 127.0.0.1:{port}: {e}")))
}

fn local_addr(listener: &TcpListener) -> String {
    match listener.local_addr() {
        Ok(addr) => addr.to_string(),
        Err(e) => fail(&format!("listening socket has no address: {e}")),
    }
}

/// Thread per connection; each newline-terminated request is answered with
/// `ok\n` after `delay`. Never returns.
fn serve_slowly(listener: &TcpListener, delay: Duration) -> ! {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                thread::spawn(move || {
                    let _ = answer_slowly(&stream, delay);
                });
            }
            Err(e) => {
                eprintln!("workload: accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn answer_slowly(stream: &TcpStream, delay: Duration) -> io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(()); // client closed the connection
        }
        thread::sleep(delay);
        (&*stream).write_all(b"ok\n")?;
    }
}

/// `requests` round-trips on one connection; each waits in a plain blocking
/// `read` on the socket for the reply.
fn round_trips(addr: &str, requests: usize) -> io::Result<()> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(&stream);
    let mut reply = Vec::new();
    for _ in 0..requests {
        (&stream).write_all(b"req\n")?;
        reply.clear();
        if reader.read_until(b'\n', &mut reply)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
    }
    Ok(())
}

fn net_client(addr: Option<String>, requests: usize, delay: Duration, parallel: usize) -> ExitCode {
    let addr = addr.unwrap_or_else(|| {
        let listener = bind_local(0);
        let addr = local_addr(&listener);
        thread::spawn(move || serve_slowly(&listener, delay));
        eprintln!("no --addr: started a slow server in this process on {addr}");
        addr
    });
    let addr = addr.as_str();
    let start = Instant::now();
    let result = if parallel == 1 {
        round_trips(addr, requests)
    } else {
        // Split the requests among `parallel` connections, one thread each.
        thread::scope(|s| {
            let handles: Vec<_> = (0..parallel)
                .map(|i| requests / parallel + usize::from(i < requests % parallel))
                .filter(|&n| n > 0)
                .map(|n| s.spawn(move || round_trips(addr, n)))
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().expect("client thread panicked"))
        })
    };
    if let Err(e) = result {
        eprintln!("workload: net-client to {addr}: {e}");
        return ExitCode::FAILURE;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "net-client: {requests} requests in {secs:.2}s ({:.1} requests/s)",
        requests as f64 / secs.max(1e-9)
    );
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------

/// `threads` threads alive at once (64 KiB stacks): `busy` of them compute
/// for `secs`, the others wait on a condition variable until the busy ones
/// are done; then all are released and joined.
fn many_threads(threads: usize, busy: usize, secs: Duration) -> ExitCode {
    let deadline = Instant::now() + secs;
    let released = (Mutex::new(false), Condvar::new());
    let release = || {
        *released.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
        released.1.notify_all();
    };
    let spawned = thread::scope(|s| {
        let builder = || thread::Builder::new().stack_size(64 * 1024);
        let mut busy_handles = Vec::new();
        for _ in 0..busy {
            match builder().spawn_scoped(s, || burn_until(deadline)) {
                Ok(h) => busy_handles.push(h),
                Err(e) => {
                    release();
                    return Err(e);
                }
            }
        }
        for _ in busy..threads {
            let idle = || {
                let mut done = released.0.lock().unwrap_or_else(PoisonError::into_inner);
                while !*done {
                    done = released
                        .1
                        .wait(done)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            if let Err(e) = builder().spawn_scoped(s, idle) {
                release();
                return Err(e);
            }
        }
        for h in busy_handles {
            h.join().expect("busy thread panicked");
        }
        release();
        Ok(())
    });
    if let Err(e) = spawned {
        eprintln!("workload: cannot start {threads} threads: {e}");
        return ExitCode::FAILURE;
    }
    println!("many-threads: {threads} threads ({busy} busy)");
    ExitCode::SUCCESS
}

/// `threads` threads each computing, sleeping, then waiting on a condition variable (for the
/// three durations of `steps`) until `secs` pass.
fn flicker(threads: usize, secs: Duration, steps: [Duration; 3]) -> ExitCode {
    let deadline = Instant::now() + secs;
    let [work, pause, wait] = steps;
    let never = (Mutex::new(()), Condvar::new());
    let spawned = thread::scope(|s| {
        for _ in 0..threads {
            let never = &never;
            let flick = move || {
                while Instant::now() < deadline {
                    if !work.is_zero() {
                        burn_for(work);
                    }
                    thread::sleep(pause);
                    let guard = never.0.lock().unwrap_or_else(PoisonError::into_inner);
                    drop(never.1.wait_timeout(guard, wait));
                }
            };
            thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn_scoped(s, flick)?;
        }
        Ok::<(), io::Error>(())
    });
    if let Err(e) = spawned {
        eprintln!("workload: cannot start {threads} threads: {e}");
        return ExitCode::FAILURE;
    }
    println!("flicker: {threads} threads");
    ExitCode::SUCCESS
}

/// How many short-lived threads `thread-churn` starts, and how fast.
enum Churn {
    /// This many, a batch as soon as the last one ended.
    Count(usize),
    /// This many a second for this many seconds.
    Paced(f64, f64),
}

/// Short-lived threads, `batch` at a time, each computing for `work` (or `millions` million
/// iterations).
fn thread_churn(pace: Churn, batch: usize, work: Duration, millions: Option<u64>) {
    let (count, per_second) = match pace {
        Churn::Count(count) => (count, None),
        Churn::Paced(rate, secs) => ((rate * secs).round() as usize, Some(rate)),
    };
    let begun = Instant::now();
    let mut started = 0;
    while started < count {
        if let Some(rate) = per_second {
            // This batch's slot; a batch that is late starts at once (no sleep).
            let due = begun + Duration::from_secs_f64(started as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
        }
        let n = batch.min(count - started);
        let handles: Vec<_> = (0..n)
            .map(|_| {
                thread::spawn(move || match millions {
                    Some(millions) => burn_iterations(millions),
                    None => burn_for(work),
                })
            })
            .collect();
        for h in handles {
            h.join().expect("churn thread panicked");
        }
        started += n;
    }
    println!(
        "thread-churn: {count} threads in {:.2}s",
        begun.elapsed().as_secs_f64()
    );
}

/// `threads` threads contending on one mutex, each computing ~1 ms while
/// holding it: about one core busy in total, the others waiting on the futex.
/// Open and read only: no fstat (std's `read_to_end` would ask the file's size).
fn read_file(path: &Path) {
    let mut file = fs::File::open(path)
        .unwrap_or_else(|e| fail(&format!("cannot open {}: {e}", path.display())));
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match io::Read::read(&mut file, &mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => fail(&format!("cannot read {}: {e}", path.display())),
        }
    }
    drop(file);
    let ended = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    println!("read: {total} bytes, ended at {ended:.3}");
}

fn locks(threads: usize, secs: Duration) {
    let deadline = Instant::now() + secs;
    let acquisitions = Mutex::new(0u64);
    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while Instant::now() < deadline {
                    let mut n = acquisitions.lock().unwrap_or_else(PoisonError::into_inner);
                    burn_for(Duration::from_millis(1));
                    *n += 1;
                }
            });
        }
    });
    let n = acquisitions
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    println!("locks: {threads} threads, {n} acquisitions");
}
