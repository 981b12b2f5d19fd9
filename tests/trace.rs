//! `--trace`: the Chrome/Perfetto trace of real runs, checked against the report of the same run.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::*;
use concadvise::report::trace::PHASES_PID;
use concadvise::report::Report;
use serde_json::Value;

/// One thread's track in a trace: its name and its slices (state, start µs, duration µs).
#[derive(Debug, Default)]
struct TrackSeen {
    name: Option<String>,
    slices: Vec<(String, u64, u64)>,
}

impl TrackSeen {
    fn seconds_in(&self, state: &str) -> f64 {
        let us: u64 = self
            .slices
            .iter()
            .filter(|(name, _, _)| name == state)
            .map(|s| s.2)
            .sum();
        us as f64 / 1e6
    }

    fn total_s(&self) -> f64 {
        self.slices.iter().map(|s| s.2).sum::<u64>() as f64 / 1e6
    }
}

/// Runs concadvise with a report and a trace; returns both, the trace parsed as JSON.
fn run_traced(extra: &[&str], command: &[&str]) -> (Report, Value) {
    let dir = scratch_dir();
    let trace = dir.path().join("trace.json");
    let trace_arg = trace.display().to_string();
    let mut args = vec!["--trace", &trace_arg];
    args.extend_from_slice(extra);
    let (report, output) = run_measured(&args, command);
    assert!(output.status.success(), "{output:?}");
    let text = std::fs::read_to_string(&trace).unwrap();
    (
        report,
        serde_json::from_str(&text).expect("the trace is JSON"),
    )
}

/// The threads' tracks, keyed by (pid, tid); the phases' track is left out.
fn tracks(trace: &Value) -> BTreeMap<(i64, i64), TrackSeen> {
    assert_eq!(trace["displayTimeUnit"], "ms");
    let mut tracks: BTreeMap<(i64, i64), TrackSeen> = BTreeMap::new();
    for event in trace["traceEvents"]
        .as_array()
        .expect("traceEvents is a list")
    {
        let key = (
            event["pid"].as_i64().unwrap(),
            event["tid"].as_i64().unwrap(),
        );
        if key.0 == i64::from(PHASES_PID) {
            continue;
        }
        match (
            event["ph"].as_str().unwrap(),
            event["name"].as_str().unwrap(),
        ) {
            ("M", "thread_name") => {
                tracks.entry(key).or_default().name =
                    Some(event["args"]["name"].as_str().unwrap().to_string());
            }
            ("X", state) => tracks.entry(key).or_default().slices.push((
                state.to_string(),
                event["ts"].as_u64().unwrap(),
                event["dur"].as_u64().unwrap(),
            )),
            _ => {}
        }
    }
    tracks
}

/// What every trace must be: each thread named, its slices end to end over its lifetime (2 %),
/// each state's time as the report's per-thread totals say (5 %), the verdict and the model as
/// metadata, the phases on their own track.
fn assert_consistent(trace: &Value, report: &Report) {
    let other = &trace["otherData"];
    assert_eq!(other["verdict"], report.verdict.class.as_str());
    assert_eq!(other["model"], report.recommendation.model.as_str());
    let tracks = tracks(trace);
    assert!(!tracks.is_empty());
    for ((pid, tid), track) in &tracks {
        let name = track.name.as_deref().unwrap_or_default();
        assert!(!name.is_empty(), "thread {pid}/{tid} has no name");
        let mut slices = track.slices.clone();
        slices.sort_by_key(|s| s.1);
        for pair in slices.windows(2) {
            assert!(
                pair[1].1 >= pair[0].1 + pair[0].2,
                "{name}: overlapping slices {pair:?}"
            );
        }
        let (first, last) = (&slices[0], &slices[slices.len() - 1]);
        let span_s = (last.1 + last.2 - first.1) as f64 / 1e6;
        assert!(
            (track.total_s() - span_s).abs() <= 0.02 * span_s + 1e-5,
            "{name}: slices cover {} s of a {span_s} s track",
            track.total_s()
        );
        let Some(listed) = report
            .threads
            .iter()
            .find(|t| i64::from(t.tid) == *tid && i64::from(t.pid) == *pid)
        else {
            continue;
        };
        assert!(
            (track.total_s() - listed.alive_s).abs() <= 0.02 * listed.alive_s + 0.002,
            "{name}: slices add up to {} s, the report has it alive {} s",
            track.total_s(),
            listed.alive_s
        );
        let mut states = vec![("cpu", listed.cpu_s), ("runqueue", listed.runqueue_s)];
        states.extend(listed.waits.iter().map(|w| (w.kind.as_str(), w.seconds)));
        for (state, seconds) in states {
            // 5 %, and never finer than the report's millisecond rounding.
            let in_trace = track.seconds_in(state);
            assert!(
                (in_trace - seconds).abs() <= 0.05 * seconds + 0.002,
                "{name}: {state} {in_trace} s in the trace, {seconds} s in the report"
            );
        }
    }
    let phases: Vec<&str> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["pid"] == PHASES_PID && e["ph"] == "X")
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    let classes: Vec<&str> = report.phases.iter().map(|p| p.class.as_str()).collect();
    assert_eq!(phases, classes);
}

#[test]
fn a_trace_of_sleep_compute_disk_shows_the_three_in_order() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    let dir_arg = dir.path().display().to_string();
    let (report, trace) = run_traced(
        &[],
        &[
            &workload_str(),
            "phases",
            "--each",
            "0.7",
            "--dir",
            &dir_arg,
        ],
    );
    assert_consistent(&trace, &report);
    let tracks = tracks(&trace);
    let main = tracks
        .get(&(i64::from(report.target.pid), i64::from(report.target.pid)))
        .expect("the program's main thread has a track");
    assert_eq!(main.name.as_deref(), Some("workload"));
    // The main thread lives the whole run.
    assert!(
        (main.total_s() - report.time.wall_s).abs() <= 0.02 * report.time.wall_s,
        "{} s of slices in a {} s run",
        main.total_s(),
        report.time.wall_s
    );
    assert!(main.seconds_in("sleep") >= 0.6, "{main:?}");
    // On a loaded machine the computing phase is partly spent queued for a CPU.
    assert!(main.seconds_in("cpu") + main.seconds_in("runqueue") >= 0.6);
    // fdatasync waits, however much of the disk phase a loaded machine leaves to the queue.
    assert!(main.seconds_in("disk") >= 0.02, "{main:?}");
    let longest = |state: &str| {
        main.slices
            .iter()
            .filter(|s| s.0 == state)
            .max_by_key(|s| s.2)
            .map(|s| s.1)
            .unwrap()
    };
    assert!(longest("sleep") < longest("cpu"));
    assert!(longest("cpu") < longest("disk"));
    let sleep_slice = main.slices.iter().find(|s| s.0 == "sleep" && s.2 > 500_000);
    assert!(sleep_slice.is_some(), "one slice for the whole sleep");
    assert_eq!(trace["otherData"]["merged_below_ms"], 0.0);
}

#[test]
fn a_trace_of_an_asyncio_loop_blocked_by_its_coroutines_shows_each_block() {
    let _lock = timing_lock();
    let script = example("python/blocked_loop.py");
    let (report, trace) = run_traced(&[], &[python3().as_str(), &script, "3"]);
    assert_consistent(&trace, &report);
    let tracks = tracks(&trace);
    let main = tracks
        .get(&(i64::from(report.target.pid), i64::from(report.target.pid)))
        .expect("the loop thread has a track");
    // Each round's time.sleep(0.25) is one slice of sleep, in clock_nanosleep.
    let sleeps: Vec<u64> = main
        .slices
        .iter()
        .filter(|s| s.0 == "sleep" && s.2 >= 200_000)
        .map(|s| s.2)
        .collect();
    assert_eq!(sleeps.len(), 3, "{main:?}");
    let blocked_in = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "sleep" && e["dur"].as_u64() >= Some(200_000))
        .map(|e| e["args"]["syscall"].clone());
    assert_eq!(blocked_in, Some(Value::from("clock_nanosleep")));
    // 2M iterations per round without awaiting: computing (or queued to compute).
    assert!(main.seconds_in("cpu") + main.seconds_in("runqueue") >= 0.2);
}

#[test]
fn a_small_event_budget_merges_slices_but_keeps_each_threads_totals() {
    let _lock = timing_lock();
    // Sixty threads that sleep 10 ms, then wait 10 ms on a condition variable, over and
    // over: thousands of slices as sampled, even at the lower rate a busy machine leaves.
    let (report, trace) = run_traced(
        &["--trace-events", "1000"],
        &[
            &workload_str(),
            "flicker",
            "--threads",
            "60",
            "--seconds",
            "2",
        ],
    );
    let events = trace["traceEvents"].as_array().unwrap().len();
    assert!(events <= 1000, "{events} events");
    let merged_below_ms = trace["otherData"]["merged_below_ms"].as_f64().unwrap();
    assert!(merged_below_ms > 0.0, "{}", trace["otherData"]);
    assert!(trace["otherData"]["resolution"]
        .as_str()
        .unwrap()
        .contains("merged"));
    assert!(report.timeline.thread_resolution_s > 0.0);
    assert_consistent(&trace, &report);
}

#[test]
fn an_unwritable_trace_path_fails_before_the_program_starts() {
    let dir = scratch_dir();
    let marker = dir.path().join("ran");
    let output = concadvise()
        .args(["run", "-q", "--trace", "/nonexistent-dir/trace.json", "--"])
        .args(["touch", &marker.display().to_string()])
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_one_line_error(&output, 125, "/nonexistent-dir/trace.json");
    assert!(!Path::new(&marker).exists(), "the program ran");
    let both = concadvise()
        .args(["run", "-q", "--report", "-", "--trace", "-", "--", "true"])
        .output()
        .unwrap();
    assert_one_line_error(&both, 125, "both go to stdout");
    let too_few = concadvise()
        .args(["run", "--trace-events", "10", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(too_few.status.code(), Some(2));
}

#[test]
fn attach_writes_a_trace_of_the_attached_time_only() {
    let _lock = timing_lock();
    let mut target = std::process::Command::new(workload())
        .args(["cpu", "--seconds", "6", "--threads", "2"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let dir = scratch_dir();
    let (report_path, trace_path) = (dir.path().join("a.toml"), dir.path().join("a.json"));
    let output = concadvise()
        .args(["attach", "-q", "--duration", "1s", "--report"])
        .arg(&report_path)
        .arg("--trace")
        .arg(&trace_path)
        .arg(target.id().to_string())
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let _ = target.kill();
    let _ = target.wait();
    assert!(output.status.success(), "{output:?}");
    let report = read_report(&report_path).unwrap();
    let trace: Value =
        serde_json::from_str(&std::fs::read_to_string(&trace_path).unwrap()).unwrap();
    assert_consistent(&trace, &report);
    let tracks = tracks(&trace);
    assert_eq!(tracks.len(), 2, "{tracks:?}");
    for track in tracks.values() {
        // Both threads compute (or wait for a core) through the second of attachment.
        let busy = track.seconds_in("cpu") + track.seconds_in("runqueue");
        assert!((0.9..=1.1).contains(&busy), "{busy} s busy: {track:?}");
    }
}
