//! The program's own concurrency, measured live: event loops (blocked and healthy), thread
//! pools, process pools, serial chains of processes, and runs too short to judge.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::*;
use concadvise::report::Report;

fn event_loop(report: &Report) -> &concadvise::report::EventLoopSection {
    report
        .concurrency
        .as_ref()
        .and_then(|c| c.event_loop.as_ref())
        .unwrap_or_else(|| panic!("no event loop found: {report:#?}"))
}

fn structure(report: &Report) -> (&str, f64) {
    let concurrency = report.concurrency.as_ref().unwrap();
    (concurrency.structure.as_str(), concurrency.in_flight)
}

#[test]
fn an_asyncio_loop_blocked_by_sleep_and_cpu_is_told_to_move_them_off_the_loop() {
    let _lock = timing_lock();
    let (report, output) = run_measured(
        &[],
        &[python3().as_str(), &example("python/blocked_loop.py"), "5"],
    );
    assert!(output.status.success(), "{output:?}");
    let recommendation = &report.recommendation;
    assert_eq!(
        recommendation.situation, "blocked_event_loop",
        "{report:#?}"
    );
    assert_eq!(recommendation.model, "async");
    let found = event_loop(&report);
    assert!(found.blocked_share >= 0.5, "{found:?}");
    assert!(found.blocked_by.iter().any(|k| k == "sleep"), "{found:?}");
    assert!(found.blocked_by.iter().any(|k| k == "cpu"), "{found:?}");
    let reasons = recommendation.reasons.join(" ");
    assert!(
        reasons.contains("sleep") && reasons.contains("computing"),
        "{reasons}"
    );
    assert!(
        recommendation.how.contains("asyncio.to_thread")
            || recommendation.how.contains("run_in_executor"),
        "{}",
        recommendation.how
    );
}

#[test]
fn a_healthy_asyncio_client_with_ten_in_flight_is_already_async() {
    let _lock = timing_lock();
    let addr = slow_server(Duration::from_millis(100));
    let (report, output) = run_measured(
        &[],
        &[
            python3().as_str(),
            &example("python/async_client.py"),
            &addr,
            "100",
            "10",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let (shape, in_flight) = structure(&report);
    assert_eq!(shape, "event_loop", "{report:#?}");
    assert!(in_flight >= 5.0, "{:?}", report.concurrency);
    assert_ne!(report.recommendation.situation, "blocked_event_loop");
    assert!(event_loop(&report).blocked_share < 0.3);
    assert!(
        report.recommendation.reasons[0].contains("already"),
        "{:?}",
        report.recommendation.reasons
    );
}

#[test]
fn an_asyncio_server_without_clients_is_idle() {
    let _lock = timing_lock();
    let (report, _) = run_measured(
        &[],
        &[python3().as_str(), &example("python/async_server.py"), "2"],
    );
    assert_eq!(report.verdict.class, "idle", "{report:#?}");
    assert_eq!(report.recommendation.model, "none");
    assert_ne!(report.recommendation.situation, "blocked_event_loop");
    // asyncio's self-pipe (a Unix socketpair it holds both ends of) is not IPC.
    assert!(report.wall.ipc_s < 0.1, "{:?}", report.wall);
}

#[test]
fn a_thread_pool_doing_http_is_threads_and_the_same_requests_one_at_a_time_are_serial() {
    let _lock = timing_lock();
    let url = slow_http_server(Duration::from_millis(200));
    let client = example("python/pool_client.py");
    let (pooled, _) = run_measured(&[], &[python3().as_str(), &client, &url, "40", "8"]);
    let (shape, in_flight) = structure(&pooled);
    assert_eq!(shape, "threads", "{pooled:#?}");
    assert!(in_flight >= 5.0, "{:?}", pooled.concurrency);
    let (serial, _) = run_measured(&[], &[python3().as_str(), &client, &url, "8", "1"]);
    let (shape, in_flight) = structure(&serial);
    assert_eq!(shape, "serial", "{serial:#?}");
    assert!((0.8..=1.3).contains(&in_flight), "{:?}", serial.concurrency);
    assert_eq!(serial.recommendation.model, "async");
}

#[test]
fn a_main_thread_waiting_on_its_pools_results_is_not_lock_contention() {
    let _lock = timing_lock();
    let (report, output) = run_measured(
        &[],
        &[
            python3().as_str(),
            &example("python/pool_sleeps.py"),
            "20",
            "4",
            "0.2",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    // The main thread sat on a futex the whole run; the workers slept.
    assert_ne!(
        report.recommendation.situation, "lock_contention",
        "{report:#?}"
    );
    assert_eq!(
        report.verdict.dominant_wait.as_deref(),
        Some("sleep"),
        "{report:#?}"
    );
    assert!(
        report.wall.lock_s < 0.2 * report.time.wall_s,
        "{:?}",
        report.wall
    );
}

#[test]
fn a_process_pool_on_every_core_is_processes_and_needs_nothing_more() {
    let _lock = timing_lock();
    let (report, output) = run_measured(
        &[],
        &[
            python3().as_str(),
            &example("python/process_pool.py"),
            "40",
            "2",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(structure(&report).0, "processes", "{report:#?}");
    assert_eq!(report.recommendation.situation, "already_parallel");
    assert_eq!(report.recommendation.model, "none");
}

#[test]
fn a_shell_loop_compiling_one_file_after_another_is_serial_and_told_to_run_them_side_by_side() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    for i in 0..4 {
        let body: String = (0..400)
            .map(|f| {
                format!(
                    "static int f{f}(int x) {{ int s = 0; for (int j = 0; j < x; j++) \
                     s += (j * {}) ^ (s >> 3); return s; }}\n",
                    f + i
                )
            })
            .collect();
        let calls: String = (0..400).map(|f| format!("t += f{f}({f});\n")).collect();
        let source = format!("{body}int main(void) {{ int t = 0;\n{calls}return t & 1; }}\n");
        std::fs::write(dir.path().join(format!("unit{i}.c")), source).unwrap();
    }
    // The compiler's own files read once before (cc1 and as are tens of megabytes: on a
    // fresh machine the first compile waits on the disk to load them).
    std::fs::write(
        dir.path().join("warm.c.txt"),
        "int main(void) { return 0; }\n",
    )
    .unwrap();
    let warm = std::process::Command::new("cc")
        .args(["-O2", "-x", "c", "-c", "warm.c.txt", "-o", "warm.o"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(warm.success());
    // cc's temporary files in memory where it can: deleting one on a disk mounted with
    // `discard` waits for the device (CI measured a 0.26 s unlink stall, a disk phase).
    let script = format!(
        "cd {} && if [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi && \
         for f in *.c; do cc -O2 -c \"$f\" -o \"${{f%.c}}.o\" || exit 1; done",
        dir.path().display()
    );
    let (report, output) = run_measured(&[], &["sh", "-c", &script]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(report.verdict.class, "cpu-bound", "{report:#?}");
    let (shape, in_flight) = structure(&report);
    assert_eq!(shape, "serial", "{report:#?}");
    assert!((0.7..=1.4).contains(&in_flight), "{:?}", report.concurrency);
    assert_eq!(report.recommendation.situation, "sequential_processes");
    assert!(
        report.recommendation.how.contains("-j") || report.recommendation.how.contains("-P"),
        "{}",
        report.recommendation.how
    );
}

#[test]
fn a_node_callback_that_busy_loops_blocks_its_event_loop() {
    let _lock = timing_lock();
    let (report, output) = run_measured(&[], &["node", &example("node/blocked_loop.js"), "2"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(report.target.runtime, "node");
    assert_eq!(
        report.recommendation.situation, "blocked_event_loop",
        "{report:#?}"
    );
    assert!(
        report.recommendation.how.contains("worker_threads")
            && report.recommendation.how.contains("fs.promises"),
        "{}",
        report.recommendation.how
    );
}

#[test]
fn a_tenth_of_a_second_is_too_short_to_judge() {
    let dir = scratch_dir();
    let path = dir.path().join("short.toml");
    let output = concadvise()
        .args(["run", "--color", "never", "--report"])
        .arg(&path)
        .args(["--", &workload_str(), "sleep", "--seconds", "0.1"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let summary = String::from_utf8_lossy(&output.stderr);
    assert!(summary.contains("too short to judge"), "{summary}");
    let report = read_report(&path).unwrap();
    assert!(report.verdict.too_short);
    assert!(report.verdict.confidence <= 0.5, "{:?}", report.verdict);
}

/// `node`, when it is installed (.ci/run installs it); `None`, saying so, when it is not.
fn node() -> Option<String> {
    let found = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        eprintln!("skipped: node is not installed");
    }
    found.then(|| "node".to_string())
}

/// The loop of a line server under load is its main thread, with the clients' connections.
fn served_by_main_thread(report: &Report) -> &concadvise::report::EventLoopSection {
    let found = event_loop(report);
    assert_eq!(found.pid, report.target.pid, "{found:?}");
    assert_eq!(found.tid, found.pid, "{found:?}");
    found
}

#[test]
fn an_asyncio_server_running_subprocess_run_in_its_handler_is_a_blocked_loop() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    let server = [python3(), example("python/sleepy_server.py")];
    let (report, _, _) = line_server_under_load(dir.path(), "subprocess", &server);
    assert_eq!(
        report.recommendation.situation, "blocked_event_loop",
        "{report:#?}"
    );
    let found = served_by_main_thread(&report);
    assert!(found.blocked_share > 0.8, "{found:?}");
    assert_eq!(found.blocked_by[0], "ipc", "{found:?}");
}

#[test]
fn node_servers_blocked_by_exec_sync_or_computing_are_blocked_loops_and_one_awaiting_is_not() {
    let Some(node) = node() else { return };
    let _lock = timing_lock();
    let dir = scratch_dir();
    let server = [node, example("node/line_server.js")];
    for (mode, blocked_by) in [("exec", "ipc"), ("busy", "cpu")] {
        let (report, _, _) = line_server_under_load(dir.path(), mode, &server);
        assert_eq!(
            report.recommendation.situation, "blocked_event_loop",
            "{mode}: {report:#?}"
        );
        let found = served_by_main_thread(&report);
        assert!(found.blocked_share > 0.8, "{mode}: {found:?}");
        assert_eq!(found.blocked_by[0], blocked_by, "{mode}: {found:?}");
    }
    let (report, _, rps) = line_server_under_load(dir.path(), "await", &server);
    assert_ne!(
        report.recommendation.situation, "blocked_event_loop",
        "{report:#?}"
    );
    let found = served_by_main_thread(&report);
    assert!(found.blocked_share < 0.3, "{found:?}");
    // 20 clients, 30 ms each, overlapped: far more than the 33 a second of a blocked loop
    // (about 600 on a quiet machine; three times a blocked loop's on a loaded one).
    assert!(rps > 100.0, "{rps}");
}

#[test]
fn a_sync_server_whose_two_workers_are_busy_queues_its_clients_and_is_at_capacity() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    let server = [python3(), example("python/sync_server.py")];
    // 16 clients, 2 workers: 14 wait at the listener all the time.
    let (report, _, rps) =
        line_server_under(dir.path(), "processes", &server, Load::reconnecting(16));
    let demand = report
        .demand
        .as_ref()
        .unwrap_or_else(|| panic!("no listener found: {report:#?}"));
    assert!(demand.clients_waited, "{demand:#?}");
    let listener = &demand.listeners[0];
    assert!(listener.mean_queued >= 1.0, "{demand:#?}");
    assert!(listener.queued_share >= 0.5, "{demand:#?}");
    assert_eq!(demand.serving_threads, Some(2), "{demand:#?}");
    assert_eq!(
        demand.serving_state.as_deref(),
        Some("sleep"),
        "{demand:#?}"
    );
    assert_eq!(
        report.recommendation.situation, "server_at_capacity",
        "{report:#?}"
    );
    assert_ne!(report.verdict.class, "idle", "{:#?}", report.verdict);
    let expected = report.recommendation.expected.as_ref().unwrap();
    assert_eq!(expected.measure, "capacity");
    // 2 workers / 20 ms: at most 100 a second.
    assert!(rps < 110.0, "{rps}");
}

#[test]
fn the_same_sync_server_with_one_client_at_a_time_is_not_at_capacity() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    let server = [python3(), example("python/sync_server.py")];
    let (report, _, _) = line_server_under(dir.path(), "processes", &server, Load::reconnecting(1));
    let demand = report
        .demand
        .as_ref()
        .unwrap_or_else(|| panic!("no listener found: {report:#?}"));
    assert!(!demand.clients_waited, "{demand:#?}");
    assert!(demand.listeners[0].mean_queued < 0.5, "{demand:#?}");
    assert_ne!(
        report.recommendation.situation, "server_at_capacity",
        "{report:#?}"
    );
}
