//! Runtime-aware advice: CPython (GIL), native, Node.js and the JVM measured live; profiles
//! overridden and rejected with errors that name the file, line and key.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

#[test]
fn cpython_single_thread_loop_is_cpu_bound_and_told_multiprocessing() {
    let _lock = timing_lock();
    let (report, output) = run_measured(
        &[],
        &[&python3(), &example("python/cpu_loop.py"), "--work", "2000"],
    );
    assert!(output.status.success());
    assert_eq!(report.target.runtime, "python");
    assert_eq!(report.verdict.class, "cpu-bound");
    assert_eq!(report.recommendation.model, "multiprocessing");
    assert!(report.recommendation.how.contains("ProcessPoolExecutor"));
    assert_eq!(
        report.recommendation.workers,
        Some(report.machine.cores as u32)
    );
    assert!(report.recommendation.speedup_ceiling.unwrap() > 1.0);
}

#[test]
fn cpython_cpu_threads_take_turns_on_the_gil() {
    let _lock = timing_lock();
    let (report, _) = run_measured(
        &[],
        &[
            &python3(),
            &example("python/gil_threads.py"),
            "4",
            "--work",
            "5000",
        ],
    );
    assert_eq!(report.verdict.class, "cpu-bound", "{report:#?}");
    assert_eq!(report.recommendation.model, "multiprocessing");
    assert_eq!(report.recommendation.situation, "gil_contention");
    assert!(report
        .recommendation
        .reasons
        .iter()
        .any(|r| r.contains("GIL")));
    // 4 threads under the GIL use one core at most, however many are free. (Not "cores
    // wanted": on a busy machine each thread the GIL hands over to queues for a CPU, so
    // several are runnable at once.) The fixed work did run: about 0.7 s of CPU here.
    assert!(report.time.avg_cores <= 1.3, "{:?}", report.time);
    assert!(report.time.cpu_s >= 0.3, "{:?}", report.time);
}

#[test]
fn cpython_sequential_http_requests_to_a_slow_server_are_io_bound_and_told_async() {
    let _lock = timing_lock();
    let url = slow_http_server(Duration::from_millis(150));
    let (report, output) = run_measured(
        &[],
        &["python3", &example("python/http_client.py"), &url, "10"],
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(report.target.runtime, "python");
    assert_eq!(report.verdict.class, "io-bound", "{report:#?}");
    assert_eq!(report.verdict.dominant_wait.as_deref(), Some("network"));
    assert_eq!(report.recommendation.model, "async");
    assert!(report
        .recommendation
        .reasons
        .iter()
        .any(|r| r.contains("W/C")));
    assert!(report.recommendation.workers.unwrap() > 2);
}

#[test]
fn native_cpu_threads_get_native_advice_without_a_gil() {
    let _lock = timing_lock();
    let (report, _) = run_measured(
        &[],
        &[&workload_str(), "cpu", "--seconds", "1.5", "--threads", "2"],
    );
    assert_eq!(report.target.runtime, "native");
    let text = report.recommendation.reasons.join(" ") + &report.recommendation.how;
    assert!(!text.contains("GIL"), "{text}");
}

#[test]
fn a_shell_script_running_python_gets_pythons_advice() {
    let _lock = timing_lock();
    let script = format!(
        "python3 {} --work 2000; true",
        example("python/cpu_loop.py")
    );
    let (report, _) = run_measured(&[], &["sh", "-c", &script]);
    assert_eq!(report.target.runtime, "python");
    assert_eq!(report.recommendation.model, "multiprocessing");
    let runtimes: Vec<&str> = report
        .processes
        .iter()
        .map(|p| p.runtime.as_str())
        .collect();
    assert!(
        runtimes.contains(&"native") && runtimes.contains(&"python"),
        "{runtimes:?}"
    );
}

#[test]
fn node_and_the_jvm_are_recognised() {
    let _lock = timing_lock();
    let (report, _) = run_measured(
        &[],
        &[
            "node",
            "-e",
            "const t = Date.now(); while (Date.now() - t < 800) {}",
        ],
    );
    assert_eq!(report.target.runtime, "node");
    assert!(report.recommendation.how.contains("worker_threads"));

    let dir = scratch_dir();
    let source = dir.path().join("Busy.java");
    std::fs::write(
        &source,
        "public class Busy { public static void main(String[] a) { \
         long end = System.nanoTime() + 800_000_000L; long x = 0; \
         while (System.nanoTime() < end) { x++; } System.out.println(x > 0); } }",
    )
    .unwrap();
    let (report, output) = run_measured(&[], &["java", source.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(report.target.runtime, "jvm");
}

#[test]
fn runtime_override_changes_the_advice() {
    let (report, _) = run_measured(
        &["--runtime", "python"],
        &[&workload_str(), "cpu", "--seconds", "0.5"],
    );
    assert_eq!(report.target.runtime, "python");
    assert_eq!(report.recommendation.model, "multiprocessing");
    let output = concadvise()
        .args(["run", "--runtime", "cobol", "--", "true"])
        .output()
        .unwrap();
    assert_one_line_error(&output, 125, "cobol");
}

#[test]
fn a_profile_from_profiles_dir_changes_the_advice() {
    let dir = scratch_dir();
    let native = concadvise()
        .args(["profiles", "show", "native"])
        .output()
        .unwrap();
    let text = String::from_utf8(native.stdout).unwrap().replace(
        "[advice.cpu_bound]\nmodel = \"threads\"\nreasons = [",
        "[advice.cpu_bound]\nmodel = \"multiprocessing\"\nreasons = [\"Our build farm isolates jobs in processes.\", ",
    );
    assert!(
        text.contains("build farm"),
        "the built-in profile changed shape"
    );
    std::fs::write(dir.path().join("native.toml"), text).unwrap();
    let dir_arg = dir.path().display().to_string();

    let (report, _) = run_measured(
        &["--profiles", &dir_arg],
        &[&workload_str(), "cpu", "--seconds", "0.5"],
    );
    assert_eq!(report.recommendation.model, "multiprocessing");
    assert!(report
        .recommendation
        .reasons
        .iter()
        .any(|r| r.contains("build farm")));
    assert!(report.recommendation.profile.contains(&dir_arg));

    let listing = concadvise()
        .args(["profiles", "--profiles", &dir_arg])
        .output()
        .unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    let native_line = listing.lines().find(|l| l.starts_with("native")).unwrap();
    assert!(native_line.contains(&dir_arg), "{listing}");
    assert!(listing
        .lines()
        .any(|l| l.starts_with("python") && l.ends_with("built-in")));
}

#[test]
fn invalid_profiles_are_rejected_naming_file_line_and_key() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid_profiles");
    let cases = [
        ("bad_toml.toml", "line 17", "expected `]`"),
        (
            "unknown_model.toml",
            "line 40",
            "advice.io_disk.model: unknown model \"coroutines\"",
        ),
        (
            "missing_key.toml",
            "line 51",
            "advice.paging: missing field `how`",
        ),
        (
            "unknown_placeholder.toml",
            "line 35",
            "advice.io_network.reasons: unknown placeholder {wokers}",
        ),
        ("missing_situation.toml", "line 21", "advice.idle: missing"),
    ];
    for (file, line, message) in cases {
        let dir = scratch_dir();
        std::fs::copy(fixtures.join(file), dir.path().join(file)).unwrap();
        let output = concadvise()
            .args(["profiles", "--profiles"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert_one_line_error(&output, 5, file);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&format!("{line}:")), "{file}: {stderr}");
        assert!(stderr.contains(message), "{file}: {stderr}");
        // run refuses before starting anything, with its own failure code.
        let marker = dir.path().join("ran");
        let output = concadvise()
            .args(["run", "--profiles"])
            .arg(dir.path())
            .args(["--", "touch"])
            .arg(&marker)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(125));
        assert!(!marker.exists());
    }
}
