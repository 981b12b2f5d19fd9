//! The expected speedup of the advised change, checked on pairs of programs: the run before
//! the change predicts a band, the run after it measures where the ratio fell, and `diff`
//! sets one beside the other.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use concadvise::report::{ExpectedSection, Report};

/// Runs `command` under concadvise with its report at `dir/NAME.toml`.
fn measured_into(dir: &Path, name: &str, command: &[&str]) -> (Report, PathBuf) {
    let path = dir.join(format!("{name}.toml"));
    let output = concadvise()
        .args(["run", "-q", "--report"])
        .arg(&path)
        .arg("--")
        .args(command)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    (read_report(&path).unwrap(), path)
}

fn band(report: &Report) -> (f64, f64, &ExpectedSection) {
    let expected = report
        .recommendation
        .expected
        .as_ref()
        .unwrap_or_else(|| panic!("no expectation: {:?}", report.recommendation));
    (
        expected.low.unwrap_or_else(|| panic!("{expected:?}")),
        expected.high.unwrap(),
        expected,
    )
}

/// Whether a band of `low`-`high` is at most x3 wide, as it must be for a measurement that
/// was neither short nor on a busy machine (those widen it, honestly; the test says so).
fn at_most_three_wide(report: &Report, low: f64, high: f64) -> bool {
    let busy = report.wall.runqueue_s > 0.1 * report.time.wall_s;
    if busy || report.verdict.too_short {
        eprintln!(
            "band x{low}-x{high}: its width is not checked, as the run was short or the \
             machine busy ({:?})",
            report.wall.runqueue_s
        );
        return true;
    }
    high / low <= 3.0
}

/// `diff --same-work --format json` of the pair: the check's band, measured ratio and verdict.
fn checked(before: &Path, after: &Path) -> serde_json::Value {
    let output = concadvise()
        .args(["diff", "--same-work", "--format", "json"])
        .arg(before)
        .arg(after)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let comparison: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let text = concadvise()
        .args(["diff", "--same-work"])
        .arg(before)
        .arg(after)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(text.contains("prediction:"), "{text}");
    comparison["prediction"].clone()
}

fn assert_inside(prediction: &serde_json::Value) {
    assert_eq!(prediction["inside"], true, "{prediction}");
}

#[test]
fn a_serial_cpu_job_predicts_what_a_process_pool_of_its_workers_measures() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    let job = example("python/checksums.py");
    let (before, before_path) =
        measured_into(dir.path(), "serial", &[python3().as_str(), &job, "24", "1"]);
    let (low, high, _) = band(&before);
    assert!(
        at_most_three_wide(&before, low, high),
        "at most x3 wide: {low}-{high}"
    );
    let workers = before
        .recommendation
        .workers
        .unwrap()
        .min(before.machine.cores as u32);
    let k = workers.to_string();
    let (_, after_path) = measured_into(dir.path(), "pool", &[python3().as_str(), &job, "24", &k]);
    assert_inside(&checked(&before_path, &after_path));
}

#[test]
fn a_serial_http_client_predicts_what_a_thread_pool_measures_in_a_wide_band() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    let url = slow_http_server(Duration::from_millis(100));
    let client = example("python/pool_client.py");
    let (before, before_path) = measured_into(
        dir.path(),
        "serial",
        &[python3().as_str(), &client, &url, "60", "1"],
    );
    let (low, high, expected) = band(&before);
    assert!(low >= 1.0 && high > low, "{expected:?}");
    let threads = before.recommendation.workers.unwrap().min(64).to_string();
    let (_, after_path) = measured_into(
        dir.path(),
        "pool",
        &[python3().as_str(), &client, &url, "60", &threads],
    );
    assert_inside(&checked(&before_path, &after_path));
}

#[test]
fn autocommit_inserts_predict_what_one_transaction_measures() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    let inserts: String = (0..1500)
        .map(|i| format!("INSERT INTO t(v) VALUES ('row {i}');\n"))
        .collect();
    let create = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);";
    let each = dir.path().join("each.sql");
    let batched = dir.path().join("batched.sql");
    std::fs::write(&each, format!("{create}\n{inserts}")).unwrap();
    std::fs::write(&batched, format!("{create}\nBEGIN;\n{inserts}COMMIT;\n")).unwrap();
    let db = |name: &str| dir.path().join(name).display().to_string();
    let read = |file: &Path| format!(".read {}", file.display());
    let (before, before_path) =
        measured_into(dir.path(), "each", &["sqlite3", &db("a.db"), &read(&each)]);
    assert_eq!(before.recommendation.situation, "sync_bound");
    let (low, high, expected) = band(&before);
    // One run cannot tell the statements' user time from each commit's own (a short run's user
    // time is known only to a timer tick), nor how long the one flush left takes: the band is
    // wide (x5-x40 here), and the summary calls it uncertain.
    assert!(high / low <= 60.0, "{low}-{high}");
    assert!(expected.basis.contains("user time"), "{expected:?}");
    let (_, after_path) = measured_into(
        dir.path(),
        "batched",
        &["sqlite3", &db("b.db"), &read(&batched)],
    );
    assert_inside(&checked(&before_path, &after_path));
}

#[test]
fn a_cpu_job_at_its_quota_expects_nothing_from_more_processes_and_gets_nothing() {
    let _lock = timing_lock();
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: making a cgroup needs root");
        return;
    }
    let v1 = Path::new("/sys/fs/cgroup/cpu");
    let dir_name = format!("concadvise-expected-{}", std::process::id());
    let cgroup = if v1.join("cpu.cfs_quota_us").exists() {
        let dir = v1.join(&dir_name);
        if std::fs::create_dir(&dir)
            .and_then(|()| std::fs::write(dir.join("cpu.cfs_quota_us"), "50000"))
            .is_err()
        {
            eprintln!("skipped: cannot make a v1 cgroup with a quota");
            return;
        }
        dir
    } else {
        let dir = Path::new("/sys/fs/cgroup").join(&dir_name);
        let _ = std::fs::write("/sys/fs/cgroup/cgroup.subtree_control", "+cpu");
        if std::fs::create_dir(&dir)
            .and_then(|()| std::fs::write(dir.join("cpu.max"), "50000 100000"))
            .is_err()
        {
            eprintln!("skipped: cannot make a v2 cgroup with a quota");
            return;
        }
        dir
    };
    let dir = scratch_dir();
    let job = example("python/checksums.py");
    let inside = |processes: &str| {
        format!(
            "echo $$ > {}/cgroup.procs && exec python3 {job} 16 {processes}",
            cgroup.display()
        )
    };
    let (before, before_path) = measured_into(dir.path(), "one", &["sh", "-c", &inside("1")]);
    let (low, high, expected) = band(&before);
    assert_eq!(expected.speedup, Some(1.0), "{expected:?}");
    assert!(low < 1.0 && high <= 1.5, "{expected:?}");
    let (_, after_path) = measured_into(dir.path(), "two", &["sh", "-c", &inside("2")]);
    assert_inside(&checked(&before_path, &after_path));
    let _ = std::fs::remove_dir(&cgroup);
}

/// A sleepy server in `mode` under 20 clients for 4 s, attached to for 2 s of it: the report
/// and the requests per second the clients got.
fn server_under_load(dir: &Path, mode: &str) -> (Report, PathBuf, f64) {
    let server = [python3(), example("python/sleepy_server.py")];
    line_server_under_load(dir, mode, &server)
}

#[test]
fn an_asyncio_server_blocked_by_a_sleep_predicts_the_load_it_takes_once_it_awaits() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    let (before, before_path, rps_before) = server_under_load(dir.path(), "blocking");
    assert_eq!(
        before.recommendation.situation, "blocked_event_loop",
        "{before:#?}"
    );
    let (low, high, expected) = band(&before);
    assert_eq!(expected.measure, "capacity");
    let (_, after_path, rps_after) = server_under_load(dir.path(), "async");
    let measured = rps_after / rps_before;
    assert!(
        (low..=high).contains(&measured),
        "predicted x{low}-x{high}, measured x{measured:.1} ({rps_before} -> {rps_after} rps)"
    );
    let prediction = checked(&before_path, &after_path);
    assert_eq!(prediction["measure"], "capacity", "{prediction}");
    assert!(
        prediction["loop_blocked"][0].as_f64().unwrap() > 0.5,
        "{prediction}"
    );
}
