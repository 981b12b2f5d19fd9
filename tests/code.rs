//! Where in the code (issue 16): CPython programs the tests start, their stacks read from
//! outside by py-spy, joined to the states the sampler saw, and named in the report, the
//! summary, the advice and the trace.
//!
//! The interpreters: `python3` (CPython 3.11 here), and pyenv's others where installed
//! (/root/.pyenv/versions/X.Y.Z: 2.7, 3.8, 3.13); a test whose interpreter is missing says it
//! was skipped.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use concadvise::report::{HotspotSection, Report};

/// The interpreter behind `python3` (pyenv's shim starts a shell first) and its version.
fn python3() -> (String, (u32, u32)) {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys; print(sys.executable); print(*sys.version_info[:2])",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let exe = lines.next().unwrap().to_string();
    let mut version = lines.next().unwrap().split(' ').map(|n| n.parse().unwrap());
    (exe, (version.next().unwrap(), version.next().unwrap()))
}

/// pyenv's interpreter of this version (its major.minor), if installed.
fn pyenv(minor_version: &str) -> Option<PathBuf> {
    let versions = std::fs::read_dir("/root/.pyenv/versions").ok()?;
    versions
        .flatten()
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().to_string();
            name.starts_with(&format!("{minor_version}."))
        })
        .map(|entry| entry.path().join("bin/python"))
        .find(|path| path.exists())
}

/// A measured run: its report, its summary and the directory holding its trace.
struct Run {
    report: Report,
    summary: String,
    dir: tempfile::TempDir,
}

impl Run {
    fn trace(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dir.path().join("trace.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

/// `concadvise run` with the summary on stderr (no colour), a report and a trace.
fn run_summarised(command: &[&str]) -> Run {
    let dir = scratch_dir();
    let output = concadvise()
        .args(["run", "--color", "never", "--report"])
        .arg(dir.path().join("report.toml"))
        .arg("--trace")
        .arg(dir.path().join("trace.json"))
        .arg("--")
        .args(command)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let summary = String::from_utf8_lossy(&output.stderr).to_string();
    let report = read_report(&dir.path().join("report.toml"))
        .unwrap_or_else(|| panic!("no report: {summary}"));
    Run {
        report,
        summary,
        dir,
    }
}

/// The number of the first line of `file` that contains `text`.
fn line_of(file: &str, text: &str) -> u32 {
    let source = std::fs::read_to_string(file).unwrap();
    let index = source.lines().position(|l| l.contains(text)).unwrap();
    index as u32 + 1
}

fn hotspots<'a>(report: &'a Report, state: &str) -> Vec<&'a HotspotSection> {
    let code = report.code.as_ref().expect("a [code] section");
    code.hotspots.iter().filter(|h| h.state == state).collect()
}

fn top<'a>(report: &'a Report, state: &str) -> &'a HotspotSection {
    hotspots(report, state)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {state} hotspot in {:#?}", report.code))
}

/// The summary's "where" line(s).
fn where_lines(summary: &str) -> Vec<&str> {
    let lines: Vec<&str> = summary.lines().collect();
    let Some(first) = lines
        .iter()
        .position(|l| l.trim_start().starts_with("where:"))
    else {
        return Vec::new();
    };
    lines[first..]
        .iter()
        .take(2)
        .copied()
        .take_while(|l| l.trim_start().starts_with("where:") || l.starts_with("         "))
        .collect()
}

#[test]
fn the_function_that_takes_the_cpu_is_named_with_its_file_and_line() {
    let _lock = timing_lock();
    let (python, _) = python3();
    let run = run_summarised(&[&python, &example("python/cpu_hotspot.py"), "20"]);
    let (report, summary) = (&run.report, &run.summary);
    assert_eq!(report.recommendation.situation, "cpu_bound", "{report:#?}");
    let code = report.code.as_ref().unwrap();
    assert_eq!(code.source.as_deref(), Some("py-spy"));
    assert!(code.rate_hz > 1.0 && code.rate_hz <= 20.5, "{code:?}");
    let hot = top(report, "cpu");
    assert_eq!(hot.function, "checksum", "{hot:?}");
    assert!(hot.file.ends_with("examples/python/hotlib.py"), "{hot:?}");
    // Its loop: the `for` line and the line it repeats.
    let hotlib = example("python/hotlib.py");
    let (for_line, body_line) = (
        line_of(&hotlib, "for i in range(steps)"),
        line_of(&hotlib, "total = (total * 31 + i)"),
    );
    assert!(
        (for_line - 1..=body_line + 1).contains(&hot.line),
        "{hot:?}"
    );
    assert!(hot.share >= 0.8, "{hot:?}");
    assert_eq!(hot.tids, [report.target.pid]);
    assert!(hot
        .stack
        .iter()
        .any(|f| f.starts_with("main (cpu_hotspot.py:")));
    // The CPU it is charged is the sampler's, never more than the thread computed.
    let thread_cpu: f64 = report.threads.iter().map(|t| t.cpu_s).sum();
    assert!(hot.seconds <= thread_cpu * 1.001, "{hot:?} of {thread_cpu}");
    let place = format!("checksum (hotlib.py:{})", hot.line);
    let reasons = report.recommendation.reasons.join(" ");
    assert!(reasons.contains(&place), "{reasons}");
    let how = &report.recommendation.how;
    assert!(
        how.contains(&place) && how.contains("ProcessPoolExecutor"),
        "{how}"
    );
    let lines = where_lines(summary);
    assert!(
        lines
            .first()
            .is_some_and(|l| l.contains(&format!("where: {place} · ")) && l.contains("% of cpu")),
        "{summary}"
    );
    // The trace's CPU slices carry the frame.
    let trace = run.trace();
    let slices = trace["traceEvents"].as_array().unwrap();
    assert!(
        slices.iter().any(|e| e["ph"] == "X"
            && e["name"] == "cpu"
            && e["args"]["code"]
                .as_str()
                .is_some_and(|c| c.starts_with("checksum (hotlib.py:"))),
        "no cpu slice names checksum"
    );
}

#[test]
fn the_line_that_blocks_an_asyncio_loop_and_its_replacement_are_named() {
    let _lock = timing_lock();
    let (python, _) = python3();
    let script = example("python/blocked_loop.py");
    let Run {
        report, summary, ..
    } = run_summarised(&[&python, &script, "4"]);
    assert_eq!(report.recommendation.situation, "blocked_event_loop");
    let sleep_line = line_of(&script, "time.sleep(0.25)");
    let blocked = hotspots(&report, "loop_blocked");
    let handler = blocked
        .iter()
        .find(|h| h.function == "handler")
        .unwrap_or_else(|| panic!("{:#?}", report.code));
    assert!(
        handler.line.abs_diff(sleep_line) <= 1,
        "{handler:?}, time.sleep is on line {sleep_line}"
    );
    assert_eq!(handler.blocked_in.as_deref(), Some("sleep"), "{handler:?}");
    let event_loop = report
        .concurrency
        .as_ref()
        .unwrap()
        .event_loop
        .as_ref()
        .unwrap();
    assert_eq!(handler.tids, [event_loop.tid]);
    let charged: f64 = blocked.iter().map(|h| h.seconds).sum();
    assert!(
        charged <= event_loop.blocked_s * 1.01 + 0.01,
        "{charged} > {}",
        event_loop.blocked_s
    );
    let how = &report.recommendation.how;
    assert!(
        how.contains(&format!("handler (blocked_loop.py:{})", handler.line))
            && how.contains("await asyncio.sleep"),
        "{how}"
    );
    assert!(
        where_lines(&summary)
            .iter()
            .any(|l| l.contains("(blocked_loop.py:") && l.contains("loop blocked")),
        "{summary}"
    );
}

#[test]
fn a_serial_urllib_client_is_charged_to_the_function_that_calls_urlopen() {
    let _lock = timing_lock();
    let (python, _) = python3();
    let url = slow_http_server(Duration::from_millis(100));
    let script = example("python/http_client.py");
    let Run {
        report, summary, ..
    } = run_summarised(&[&python, &script, &url, "12"]);
    assert_eq!(report.verdict.dominant_wait.as_deref(), Some("network"));
    let network = top(&report, "network");
    assert_eq!(network.function, "fetch", "{network:?}");
    assert!(network.file.ends_with("examples/python/http_client.py"));
    let urlopen_line = line_of(&script, "urllib.request.urlopen(address)");
    assert!(network.line.abs_diff(urlopen_line) <= 1, "{network:?}");
    assert!(network.share >= 0.8, "{network:?}");
    // The innermost frame is the standard library's (socket.py, http/client.py...).
    let innermost_file = network
        .innermost
        .rsplit_once(" (")
        .and_then(|(_, rest)| rest.split(':').next())
        .unwrap();
    assert!(
        in_standard_library(&python, innermost_file),
        "{} is not in the standard library",
        network.innermost
    );
    assert_ne!(
        network.innermost,
        format!("fetch (http_client.py:{})", network.line)
    );
    assert!(
        report.recommendation.how.contains("fetch (http_client.py:"),
        "{}",
        report.recommendation.how
    );
    assert!(
        where_lines(&summary)
            .first()
            .is_some_and(|l| l.contains("where: fetch (http_client.py:") && l.contains("network")),
        "{summary}"
    );
}

/// Whether a file of this name is in the interpreter's standard library.
fn in_standard_library(python: &str, file_name: &str) -> bool {
    let out = Command::new(python)
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['stdlib'])",
        ])
        .output()
        .unwrap();
    let stdlib = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    fn find(dir: &Path, name: &str, depth: u32) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        entries.flatten().any(|entry| {
            let path = entry.path();
            if path.is_dir() {
                depth > 0 && !path.ends_with("site-packages") && find(&path, name, depth - 1)
            } else {
                entry.file_name() == name
            }
        })
    }
    find(&stdlib, file_name, 2)
}

#[test]
fn a_thread_pools_waits_are_charged_to_its_worker_threads() {
    let (python, version) = python3();
    if version < (3, 11) {
        eprintln!("skipped: python3 is {version:?}; OS thread ids need CPython 3.11 or later");
        return;
    }
    let _lock = timing_lock();
    let url = slow_http_server(Duration::from_millis(100));
    let script = example("python/pool_client.py");
    let (report, _) = run_measured(&[], &[&python, &script, &url, "40", "4"]);
    let network = top(&report, "network");
    assert_eq!(network.function, "fetch", "{network:?}");
    let main_thread = report.target.pid;
    assert!(
        !network.tids.contains(&main_thread),
        "the main thread only waits for results: {network:?}"
    );
    assert!(network.tids.len() >= 3, "{network:?}");
    for tid in &network.tids {
        let thread = report.threads.iter().find(|t| t.tid == *tid).unwrap();
        assert_eq!(thread.pid, main_thread);
        assert!(
            thread.waits.first().is_some_and(|w| w.kind == "network"),
            "{thread:?}"
        );
    }
}

#[test]
fn no_stacks_leaves_the_code_out_and_a_program_that_is_not_python_has_none() {
    let _lock = timing_lock();
    let (python, _) = python3();
    let (report, _) = run_measured(
        &["--no-stacks"],
        &[&python, &example("python/cpu_hotspot.py"), "4"],
    );
    assert_eq!(report.target.runtime, "python");
    assert!(report.code.is_none(), "{:?}", report.code);
    let Run {
        report, summary, ..
    } = run_summarised(&[&workload_str(), "cpu", "--seconds", "0.5"]);
    assert!(report.code.is_none(), "{:?}", report.code);
    assert!(where_lines(&summary).is_empty(), "{summary}");
    assert!(
        !summary.contains("stack") && !summary.contains("py-spy"),
        "{summary}"
    );
}

#[test]
fn older_cpythons_join_a_single_thread_by_its_pid_and_say_why_not_with_more() {
    let Some(python38) = pyenv("3.8") else {
        eprintln!("skipped: no CPython 3.8 under /root/.pyenv/versions");
        return;
    };
    let _lock = timing_lock();
    let python38 = python38.display().to_string();
    let (report, _) = run_measured(&[], &[&python38, &example("python/cpu_hotspot.py"), "12"]);
    let hot = top(&report, "cpu");
    assert_eq!(hot.function, "checksum", "{hot:?}");
    assert_eq!(hot.tids, [report.target.pid]);
    let (report, _) = run_measured(
        &[],
        &[&python38, &example("python/gil_threads.py"), "3", "1"],
    );
    let code = report.code.as_ref().unwrap();
    assert!(code.hotspots.is_empty(), "{code:?}");
    let why = code.unavailable.as_deref().unwrap_or_default();
    assert!(why.contains("CPython 3.8") && why.contains("3.11"), "{why}");
}

#[test]
fn python_2_7_and_3_13_are_read_too() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    let script = dir.path().join("hot27.py");
    std::fs::write(
        &script,
        "def checksum(seed):\n    total = seed\n    for i in range(1000000):\n        \
         total = (total * 31 + i) % 1000003\n    return total\n\n\
         print(sum(checksum(s) for s in range(12)))\n",
    )
    .unwrap();
    let mut tried = 0;
    for version in ["2.7", "3.13"] {
        let Some(python) = pyenv(version) else {
            eprintln!("skipped: no CPython {version} under /root/.pyenv/versions");
            continue;
        };
        tried += 1;
        let (report, _) = run_measured(
            &[],
            &[&python.display().to_string(), &script.display().to_string()],
        );
        let hot = top(&report, "cpu");
        assert_eq!(hot.function, "checksum", "{version}: {hot:?}");
        assert!((3..=4).contains(&hot.line), "{version}: {hot:?}");
        assert_eq!(hot.tids, [report.target.pid], "{version}");
    }
    if tried == 0 {
        eprintln!("skipped: neither CPython 2.7 nor 3.13 is installed");
    }
}

/// A Python process started by a test as root, killed when the test ends.
struct PythonTarget(Child);

impl Drop for PythonTarget {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn attaching_without_ptrace_access_says_why_there_are_no_stacks_in_the_one_notice() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root to run concadvise as another user (nobody)");
        return;
    }
    let _lock = timing_lock();
    let (python, _) = python3();
    let target = PythonTarget(
        Command::new(&python)
            .args([&example("python/cpu_loop.py"), "30"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let (output, report) = attach_as_nobody(target.0.id());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let notices: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ptrace") || l.contains("stacks"))
        .collect();
    assert_eq!(notices.len(), 1, "one line says what was denied: {stderr}");
    assert!(
        notices[0].contains("Python stacks cannot be read"),
        "{stderr}"
    );
    let code = report.code.as_ref().expect("[code] says why it is empty");
    assert!(
        code.unavailable
            .as_deref()
            .is_some_and(|why| why.starts_with("ptrace access denied")),
        "{code:?}"
    );
    assert!(code.hotspots.is_empty());
    // The rest of the report as before: what /proc tells without ptrace access.
    assert_eq!(report.target.runtime, "python");
    // A core wanted most of the second (on it, or queued for it on a busy machine).
    let wanted_s = report.breakdown.cpu_s + report.breakdown.runqueue_s;
    assert!(wanted_s > 0.5, "{:?}", report.breakdown);
    assert_eq!(report.verdict.class, "cpu-bound");
}

#[test]
fn an_event_loop_waiting_in_its_poller_names_no_function() {
    let _lock = timing_lock();
    let (python, _) = python3();
    let server = slow_server(Duration::from_millis(50));
    let run = run_summarised(&[
        &python,
        &example("python/async_client.py"),
        &server,
        "100",
        "10",
    ]);
    assert_eq!(
        run.report
            .concurrency
            .as_ref()
            .map(|c| c.structure.as_str()),
        Some("event_loop"),
        "{}",
        run.summary
    );
    // The loop's stack in its poller is asyncio.run's caller: no code to point at.
    let network = hotspots(&run.report, "network");
    assert!(
        network.iter().all(|h| h.function != "<module>"),
        "{network:#?}"
    );
    assert!(
        where_lines(&run.summary)
            .iter()
            .all(|l| !l.contains("<module>")),
        "{}",
        run.summary
    );
}
