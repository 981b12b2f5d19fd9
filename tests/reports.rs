//! Reports people keep and compare: phases, `show` re-rendering, `diff`, JSON, malformed input.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use concadvise::report::Report;

#[test]
fn sleep_then_compute_then_fsync_is_three_phases_in_order_and_mixed() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    let dir_arg = dir.path().display().to_string();
    let (report, _) = run_measured(
        &[],
        &[&workload_str(), "phases", "--each", "1", "--dir", &dir_arg],
    );
    let classes: Vec<&str> = report.phases.iter().map(|p| p.class.as_str()).collect();
    assert_eq!(
        classes,
        ["idle", "cpu-bound", "io-bound"],
        "{:#?}",
        report.phases
    );
    assert_eq!(
        report.phases[0].dominant_waits.first().map(String::as_str),
        Some("sleep")
    );
    assert_eq!(
        report.phases[2].dominant_waits.first().map(String::as_str),
        Some("disk")
    );
    for (phase, (start, end)) in report
        .phases
        .iter()
        .zip([(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)])
    {
        assert!((phase.start_s - start).abs() <= 0.3, "{phase:?}");
        assert!((phase.end_s - end).abs() <= 0.3, "{phase:?}");
    }
    assert_eq!(report.verdict.class, "mixed");
    assert!(report.recommendation.reasons[0].contains("changes character"));
    assert!(report.timeline.states.starts_with("sss"));
}

#[test]
fn show_prints_the_same_summary_as_the_live_run() {
    let dir = scratch_dir();
    let path = dir.path().join("r.toml");
    let live = concadvise()
        .args(["run", "--color", "never", "--report"])
        .arg(&path)
        .args(["--", "sleep", "0.5"])
        .output()
        .unwrap();
    let shown = concadvise()
        .args(["show", "--color", "never"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(shown.status.success());
    let live_text = String::from_utf8(live.stderr).unwrap();
    assert!(live_text.starts_with("concadvise: idle"), "{live_text}");
    assert_eq!(String::from_utf8(shown.stdout).unwrap(), live_text);
}

#[test]
fn json_output_deserialises_into_the_same_report() {
    let dir = scratch_dir();
    let path = dir.path().join("r.toml");
    concadvise()
        .args(["run", "-q", "--report"])
        .arg(&path)
        .args(["--", "sh", "-c", "sleep 0.2; exit 4"])
        .assert()
        .code(4);
    let from_toml = read_report(&path).unwrap();
    let json = concadvise()
        .args(["show", "--format", "json"])
        .arg(&path)
        .output()
        .unwrap();
    let from_json: Report = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(from_json, from_toml);
    assert_eq!(from_json.target.exit_code, Some(4));
    // And JSON files are read back by show and diff too.
    let json_path = dir.path().join("r.json");
    std::fs::write(&json_path, &json.stdout).unwrap();
    let toml_again = concadvise()
        .args(["show", "--format", "toml"])
        .arg(&json_path)
        .output()
        .unwrap();
    let again: Report = toml::from_str(&String::from_utf8(toml_again.stdout).unwrap()).unwrap();
    assert_eq!(again, from_toml);
}

#[test]
fn diff_of_serial_and_concurrent_requests_reports_the_speedup() {
    let _lock = timing_lock();
    let addr = slow_server(Duration::from_millis(100));
    let serial = ["net-client", "--addr", &addr, "--requests", "16"];
    let concurrent = [&serial[..], &["--parallel", "4"]].concat();
    let dir = scratch_dir();
    let before = dir.path().join("before.toml");
    let after = dir.path().join("after.json");
    for (path, args) in [(&before, &serial[..]), (&after, &concurrent[..])] {
        let status = Command::new(env!("CARGO_BIN_EXE_concadvise"))
            .args(["run", "-q", "--report"])
            .arg(path)
            .arg("--")
            .arg(workload())
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
    let text = concadvise()
        .arg("diff")
        .arg(&before)
        .arg(&after)
        .output()
        .unwrap();
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    let first = text.lines().next().unwrap();
    assert!(first.contains("x shorter"), "{text}");
    assert!(first.contains("network wait now overlaps"), "{text}");
    assert!(first.contains("avg cores"), "{text}");
    assert!(text.contains("different commands"), "{text}");

    let json = concadvise()
        .args(["diff", "--format", "json"])
        .arg(&before)
        .arg(&after)
        .output()
        .unwrap();
    let comparison: concadvise::report::diff::Comparison =
        serde_json::from_slice(&json.stdout).unwrap();
    // 16 requests of 100 ms, one at a time vs four at a time: about 4x.
    assert!(comparison.speedup > 2.5, "{comparison:?}");
    assert!(!comparison.within_noise);
    assert!(comparison.after.avg_cores >= comparison.before.avg_cores);
}

#[test]
fn diff_of_a_report_with_itself_is_within_noise() {
    let dir = scratch_dir();
    let path = dir.path().join("r.toml");
    concadvise()
        .args(["run", "-q", "--report"])
        .arg(&path)
        .args(["--", "sleep", "0.2"])
        .assert()
        .success();
    let output = concadvise()
        .arg("diff")
        .arg(&path)
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with("concadvise diff: wall time about the same"),
        "{text}"
    );
    assert!(text.contains("within run-to-run noise"), "{text}");
}

#[test]
fn malformed_reports_get_a_one_line_error_and_exit_5() {
    let dir = scratch_dir();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let cases = [
        (
            write("garbage.toml", "this is = = not toml\n"),
            "not valid TOML",
        ),
        (
            write("other.toml", "[package]\nname = \"x\"\n"),
            "missing key schema_version",
        ),
        (
            write("future.toml", "schema_version = 7\n"),
            "newer concadvise",
        ),
        (
            write("partial.toml", "schema_version = 1\n[target]\npid = 1\n"),
            "missing field",
        ),
        (dir.path().join("absent.toml"), "no such file"),
    ];
    for (path, expected) in &cases {
        let output = concadvise().arg("show").arg(path).output().unwrap();
        assert_one_line_error(&output, 5, expected);
        let output = concadvise()
            .arg("diff")
            .arg(path)
            .arg(path)
            .output()
            .unwrap();
        assert_one_line_error(&output, 5, expected);
    }
}

#[test]
fn a_report_written_before_network_fs_and_stopped_existed_still_loads_shows_and_diffs() {
    let old = example_fixture("reports/before_issue19.toml");
    let report = read_report(std::path::Path::new(&old)).unwrap();
    assert_eq!(report.wall.network_fs_s, 0.0);
    assert_eq!(report.wall.stopped_s, 0.0);
    assert_eq!(report.sampling.stalled_ticks, 0);
    assert!(report.stops.is_empty());
    assert!(report
        .threads
        .iter()
        .flat_map(|t| &t.waits)
        .all(|w| w.mount.is_none()));
    let shown = concadvise()
        .args(["show", "--color", "never", &old])
        .output()
        .unwrap();
    assert!(shown.status.success(), "{shown:?}");
    let dir = scratch_dir();
    let new = dir.path().join("new.toml");
    concadvise()
        .args(["run", "-q", "--report"])
        .arg(&new)
        .args(["--", "sleep", "0.3"])
        .assert()
        .success();
    let diff = concadvise()
        .args(["diff", &old])
        .arg(&new)
        .output()
        .unwrap();
    assert!(diff.status.success(), "{diff:?}");
}

fn example_fixture(path: &str) -> String {
    format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))
}
