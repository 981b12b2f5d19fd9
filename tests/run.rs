//! `concadvise run` on real workloads launched by the tests: verdicts, totals, exit codes, signals.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[test]
fn single_threaded_cpu_loop_is_cpu_bound_on_one_core() {
    let _lock = timing_lock();
    // A wall-clock loop: the thread wants its core until the deadline, however busy the
    // machine (fixed work would be right for CPU seconds, not for cores wanted).
    let (report, output) = run_measured(&[], &[&workload_str(), "cpu", "--seconds", "2"]);
    assert!(output.status.success());
    // The program's stdout passes through untouched.
    assert_eq!(String::from_utf8_lossy(&output.stdout), "cpu: done\n");
    assert_eq!(report.verdict.class, "cpu-bound", "{report:#?}");
    // One thread: never more than one core, and on it (or queued for it) all the time,
    // however busy the machine was.
    assert!(report.time.avg_cores <= 1.1, "{:?}", report.time);
    let wanted = cores_wanted(&report);
    assert!((0.9..=1.1).contains(&wanted), "{wanted} cores wanted");
    assert!(["threads", "multiprocessing"].contains(&report.recommendation.model.as_str()));
    assert_eq!(report.target.runtime, "native");
    assert!(report.recommendation.warning.contains("complexity"));
}

#[test]
fn a_cpu_bound_tool_with_its_own_threads_option_is_told_that_option_first() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    // 5 MB of pseudo-random letters: about a second of xz -6 on one core.
    let input = dir.path().join("input.txt");
    let text: String = (0..5_000_000u64)
        .map(|i| {
            let x = i.wrapping_mul(6364136223846793005).rotate_left(17) ^ (i >> 3);
            char::from(b'A' + (x % 26) as u8)
        })
        .collect();
    std::fs::write(&input, text).unwrap();
    let input = input.display().to_string();
    let (report, output) = run_measured(&[], &["xz", "-6", "-T1", "-k", "-f", &input]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(report.verdict.class, "cpu-bound", "{:?}", report.breakdown);
    assert_eq!(report.recommendation.situation, "cpu_bound");
    let how = &report.recommendation.how;
    assert!(
        how.starts_with("xz has its own way to use more cores: xz -T0"),
        "{how}"
    );
    // Threads in code of one's own stay the alternative.
    let first = &report.recommendation.alternatives[0];
    assert!(
        first.starts_with("if xz is your own code: A thread pool"),
        "{first}"
    );
}

#[test]
fn sleep_is_idle_with_sleep_the_dominant_wait() {
    let _lock = timing_lock();
    let (report, _) = run_measured(&[], &["sleep", "2"]);
    assert_eq!(report.verdict.class, "idle");
    assert_eq!(report.recommendation.model, "none");
    assert_eq!(report.verdict.dominant_wait.as_deref(), Some("sleep"));
    assert!(report.wall.sleep_s > 1.8, "{:?}", report.wall);
    assert!((1.9..2.5).contains(&report.time.wall_s));
}

#[test]
fn synchronous_disk_writes_are_io_bound_on_disk() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    let dir_arg = dir.path().display().to_string();
    let (report, _) = run_measured(
        &[],
        &[&workload_str(), "disk", "--seconds", "2", "--dir", &dir_arg],
    );
    assert_eq!(report.verdict.class, "io-bound", "{report:#?}");
    assert_eq!(report.verdict.dominant_wait.as_deref(), Some("disk"));
    // Every write is fdatasync'ed: the syncs are the time, and fewer of them is the advice.
    assert_eq!(report.recommendation.situation, "sync_bound");
    assert_eq!(report.recommendation.model, "none");
    assert!(report.breakdown.disk_sync_s > 0.5 * report.breakdown.disk_s);
}

#[test]
fn client_of_a_slow_loopback_server_is_io_bound_on_network_and_told_async() {
    let _lock = timing_lock();
    let addr = slow_server(Duration::from_millis(150));
    let (report, output) = run_measured(
        &[],
        &[
            &workload_str(),
            "net-client",
            "--addr",
            &addr,
            "--requests",
            "12",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(report.verdict.class, "io-bound", "{report:#?}");
    assert_eq!(report.verdict.dominant_wait.as_deref(), Some("network"));
    assert_eq!(report.recommendation.model, "async");
    assert!(report.wall.network_s > 1.5, "{:?}", report.wall);
}

#[test]
fn a_shell_running_cpu_work_is_cpu_bound_and_the_shell_waits_on_its_child() {
    let _lock = timing_lock();
    let script = format!("{} cpu --work {}; true", workload_str(), WORK_1S * 3 / 2);
    let (report, _) = run_measured(&[], &["sh", "-c", &script]);
    assert_eq!(report.verdict.class, "cpu-bound", "{report:#?}");
    // The CPU is the child's: the shell only waited.
    let child = report
        .processes
        .iter()
        .find(|p| p.command.iter().any(|a| a == "cpu"))
        .unwrap();
    assert!(
        child.cpu_s >= 0.95 * report.time.cpu_s,
        "{:?}",
        report.processes
    );
    assert!(report.time.cpu_s > 0.6, "{:?}", report.time);
    let shell = thread_named(&report, "sh");
    assert_eq!(shell.waits.first().map(|w| w.kind.as_str()), Some("child"));
    assert!(report.sampling.processes_seen >= 2);
}

#[test]
fn many_short_processes_still_count_through_the_kernel_totals() {
    let _lock = timing_lock();
    // 150 processes of about 9 ms of CPU each: most are too short to sample. What they wait
    // in the run queue on a busy machine no sample can see either: it would show as the
    // shell's child wait. So as root they run in the real-time class (chrt), ahead of any
    // other load (nice cannot: autogroups share the CPU by session): the verdict is about
    // them, not about the machine's load.
    let script = format!(
        "i=0; while [ $i -lt 150 ]; do {} cpu --work 2 >/dev/null; i=$((i+1)); done",
        workload_str()
    );
    let shell = ["sh", "-c", &script];
    let realtime = [&["chrt", "-f", "1"][..], &shell].concat();
    let is_root = nix::unistd::Uid::effective().is_root();
    let (report, _) = run_measured(&[], if is_root { &realtime } else { &shell });
    assert!(report.time.cpu_s >= 0.6, "{:?}", report.time);
    assert!(
        report.breakdown.unsampled_cpu_s > 0.0,
        "{:?}",
        report.breakdown
    );
    assert_eq!(report.time.cpu_source, "rusage");
    assert_eq!(report.verdict.class, "cpu-bound", "{report:#?}");
}

#[test]
fn two_busy_threads_use_both_cores() {
    let _lock = timing_lock();
    // Wall-clock loops: both threads want a core until the same deadline (with fixed work,
    // one thread may finish early on a busy machine and want nothing for the rest).
    let (report, _) = run_measured(
        &[],
        &[&workload_str(), "cpu", "--seconds", "2", "--threads", "2"],
    );
    // Both threads wanted a core all the time; what they got depends on the machine's load
    // (on an idle machine, avg_cores is the same number).
    let wanted = cores_wanted(&report);
    assert!((1.8..=2.2).contains(&wanted), "{wanted} cores wanted");
    assert!(report.time.avg_cores <= 2.1, "{:?}", report.time);
    assert_eq!(report.verdict.class, "cpu-bound");
}

#[test]
fn exit_code_passes_through_and_is_reported() {
    let (report, output) = run_measured(&[], &[&workload_str(), "exit", "--code", "3"]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(report.target.exit_code, Some(3));
}

#[test]
fn death_by_signal_exits_128_plus_the_signal() {
    let (report, output) = run_measured(&[], &["sh", "-c", "kill -TERM $$"]);
    assert_eq!(output.status.code(), Some(143));
    assert_eq!(report.target.signal, Some(15));
    assert_eq!(report.target.exit_code, Some(143));
}

#[test]
fn missing_command_exits_127_with_one_line_and_leaves_no_report() {
    let dir = scratch_dir();
    let report_path = dir.path().join("r.toml");
    let output = concadvise()
        .args(["run", "--report"])
        .arg(&report_path)
        .args(["--", "no-such-command-xyz"])
        .output()
        .unwrap();
    assert_one_line_error(&output, 127, "no-such-command-xyz");
    assert_empty(dir.path());
}

#[test]
fn a_directory_as_command_exits_126() {
    let output = concadvise().args(["run", "--", "/"]).output().unwrap();
    assert_eq!(output.status.code(), Some(126));
}

#[test]
fn unwritable_report_path_fails_before_the_program_starts() {
    let dir = scratch_dir();
    let marker = dir.path().join("ran");
    let output = concadvise()
        .args(["run", "--report", "/nonexistent-dir/r.toml", "--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(125));
    assert!(
        !marker.exists(),
        "the program ran although the report could not be written"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent-dir"));
}

#[test]
fn cpu_seconds_match_the_kernels_accounting_as_time_reports_it() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    let time_file = dir.path().join("time.txt");
    let time_arg = time_file.display().to_string();
    let (report, _) = run_measured(
        &[],
        &[
            "/usr/bin/time",
            "-f",
            "%U %S",
            "-o",
            &time_arg,
            &workload_str(),
            "cpu",
            "--seconds",
            "1.5",
        ],
    );
    let text = std::fs::read_to_string(&time_file).unwrap();
    let timed: f64 = text
        .split_whitespace()
        .map(|n| n.parse::<f64>().unwrap())
        .sum();
    let reported = report.time.cpu_s;
    // time(1) prints hundredths and its own few milliseconds are in the report too.
    let tolerance = (0.01 * timed).max(0.02);
    assert!(
        (reported - timed).abs() <= tolerance,
        "report {reported} vs time {timed}"
    );
    // The sampler's own schedstat accounting agrees with the kernel totals within 2 %.
    let sampled = report.breakdown.cpu_s - report.breakdown.unsampled_cpu_s;
    assert!(
        (sampled - reported).abs() <= 0.02 * reported + 0.01,
        "{:?}",
        report.breakdown
    );
}

#[test]
fn with_leave_orphans_the_run_ends_with_the_program() {
    let (report, _) = run_measured(&["--leave-orphans"], &["sh", "-c", "sleep 2 & exit 0"]);
    assert!(report.time.wall_s < 1.0, "{:?}", report.time);
}

#[test]
fn a_signal_the_program_sends_its_own_group_is_not_an_interruption() {
    // setsid: the program's `kill 0` reaches concadvise too, as under a job-control shell.
    let dir = scratch_dir();
    let path = dir.path().join("r.toml");
    let output = std::process::Command::new("setsid")
        .arg(env!("CARGO_BIN_EXE_concadvise"))
        .args(["run", "-q", "--report"])
        .arg(&path)
        .args(["--", "sh", "-c", "trap 'exit 0' TERM; kill 0; sleep 0.3"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(!read_report(&path).unwrap().target.interrupted);
}

#[test]
fn orphaned_children_are_followed_and_counted() {
    let _lock = timing_lock();
    let script = format!(
        "{} cpu --work {WORK_1S} >/dev/null & exit 0",
        workload_str()
    );
    let (report, _) = run_measured(&[], &["sh", "-c", &script]);
    assert!(report.time.cpu_s >= 0.5, "{:?}", report.time);
    assert!(report.time.wall_s >= report.time.cpu_s, "{:?}", report.time);
    let orphan = report
        .processes
        .iter()
        .find(|p| p.command.iter().any(|a| a == "cpu"))
        .unwrap_or_else(|| panic!("the orphan was not followed: {:?}", report.processes));
    assert!(orphan.cpu_s >= 0.95 * report.time.cpu_s, "{orphan:?}");
    assert_eq!(report.target.exit_code, Some(0));
}

/// Runs `concadvise run --report DIR/r.toml -- sleep 30` and sends `signal` to concadvise alone.
fn signal_a_run_of_sleep(signal: Signal) -> (tempfile::TempDir, std::process::Output) {
    let dir = scratch_dir();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_concadvise"))
        .args(["run", "-q", "--report"])
        .arg(dir.path().join("r.toml"))
        .args(["--", "sleep", "30"])
        .spawn()
        .unwrap();
    wait_for_a_child(child.id());
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    (dir, child.wait_with_output().unwrap())
}

#[test]
fn sigint_sent_to_concadvise_alone_is_forwarded_and_the_report_still_written() {
    let (dir, output) = signal_a_run_of_sleep(Signal::SIGINT);
    let report_path = dir.path().join("r.toml");
    assert_eq!(output.status.code(), Some(130));
    let report = read_report(&report_path).expect("report written after Ctrl-C");
    assert!(report.target.interrupted);
    assert_eq!(report.target.signal, Some(2));
    assert!(report.time.wall_s < 5.0);
}

#[test]
fn sigterm_is_forwarded_to_the_program() {
    let (dir, output) = signal_a_run_of_sleep(Signal::SIGTERM);
    let report_path = dir.path().join("r.toml");
    assert_eq!(output.status.code(), Some(143));
    assert!(read_report(&report_path).unwrap().target.interrupted);
}

#[test]
fn report_to_stdout_and_json_by_extension() {
    let output = concadvise()
        .args(["run", "-q", "--report", "-", "--", "true"])
        .output()
        .unwrap();
    let report: concadvise::report::Report =
        toml::from_str(&String::from_utf8_lossy(&output.stdout)).unwrap();
    assert_eq!(report.schema_version, 1);
    assert_eq!(report.target.command, ["true"]);

    let dir = scratch_dir();
    let path = dir.path().join("r.json");
    concadvise()
        .args(["run", "-q", "--report"])
        .arg(&path)
        .args(["--", "true"])
        .assert()
        .success();
    let json: concadvise::report::Report =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json.target.exit_code, Some(0));
}

#[test]
fn summary_goes_to_stderr_with_the_verdict_first() {
    let output = concadvise()
        .args(["run", "--color", "never", "--", "sleep", "0.3"])
        .output()
        .unwrap();
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with("concadvise: idle"), "{stderr}");
    assert!(stderr.contains("where the wall time went"));
    assert!(!stderr.contains('\u{1b}'), "colour with --color never");
}

#[test]
fn threads_born_and_dying_fast_leak_no_descriptors_and_their_cpu_is_accounted() {
    let _lock = timing_lock();
    let (report, _) = run_measured(
        &[],
        &[
            &workload_str(),
            "thread-churn",
            "--count",
            "500",
            "--work",
            "1",
            // Idle at the end: the CPU of the last threads reaches the process's counters
            // before the sampler's last read, however late a busy machine lets it run.
            "--linger",
            "0.3",
        ],
    );
    let sampling = &report.sampling;
    assert_eq!(sampling.fds_end, sampling.fds_start, "{sampling:?}");
    // Most of these threads live 4 ms, between two samples; their process's own counters
    // still account for them.
    let kernel = report.time.cpu_s;
    assert!(kernel > 1.5, "{:?}", report.time);
    assert!(
        (sampling.cpu_seen_s - kernel).abs() <= 0.02 * kernel,
        "sampler accounted {} s of {} s",
        sampling.cpu_seen_s,
        kernel
    );
}

#[test]
fn a_child_left_unreaped_for_a_while_is_counted_once() {
    let _lock = timing_lock();
    // The child computes 0.5 s and exits; the parent reaps it only 1.5 s later.
    let script = "import os, time\n\
                  pid = os.fork()\n\
                  if pid == 0:\n    t = time.process_time()\n    \
                  while time.process_time() - t < 0.5: pass\n    os._exit(0)\n\
                  time.sleep(1.5)\nos.waitpid(pid, 0)\n";
    let (report, _) = run_measured(&[], &["python3", "-c", script]);
    assert_eq!(report.time.cpu_source, "rusage", "{:?}", report.time);
    assert!(report.time.cpu_s < 1.0, "{:?}", report.time);
    assert!(report.sampling.cpu_seen_s < 1.0, "{:?}", report.sampling);
}

#[test]
fn a_grandchild_handed_to_another_thread_is_still_followed() {
    let _lock = timing_lock();
    // A short-lived thread starts a shell that starts the CPU work after the thread is gone;
    // the main thread only sleeps, so nothing else points at the work.
    let script = format!(
        "import threading, subprocess, time\n\
         procs = []\n\
         def start():\n    procs.append(subprocess.Popen(['sh', '-c', 'sleep 0.5; {} cpu --work {WORK_1S}; true']))\n\
         t = threading.Thread(target=start); t.start(); t.join()\n\
         time.sleep(2.5)\nprocs[0].wait()\n",
        workload_str()
    );
    let (report, _) = run_measured(&[], &["python3", "-c", &script]);
    let work = report
        .processes
        .iter()
        .find(|p| p.command.iter().any(|a| a == "cpu"))
        .unwrap_or_else(|| panic!("the CPU work was not followed: {:?}", report.processes));
    assert!(work.cpu_s > 0.5, "{work:?}");
}

#[test]
fn a_thread_with_a_name_that_is_not_utf8_is_measured() {
    let _lock = timing_lock();
    let script = "import ctypes, threading, time\n\
                  libc = ctypes.CDLL(None)\n\
                  def work():\n    libc.prctl(15, ctypes.c_char_p(b'w\\xff\\xfek'), 0, 0, 0)\n    \
                  t = time.thread_time()\n    while time.thread_time() - t < 1.0: pass\n\
                  th = threading.Thread(target=work); th.start(); th.join()\n";
    let (report, _) = run_measured(&[], &["python3", "-c", script]);
    let busiest = &report.threads[0];
    assert!(busiest.cpu_s > 0.8, "{:?}", report.threads);
    assert!(busiest.name.starts_with('w'), "{busiest:?}");
}

#[test]
fn a_run_of_a_few_samples_is_unknown_and_told_to_measure_longer() {
    let (report, _) = run_measured(&["--leave-orphans"], &["true"]);
    assert!(report.sampling.samples < 5, "{:?}", report.sampling);
    assert_eq!(report.verdict.class, "unknown");
    assert_eq!(report.recommendation.model, "none");
    assert_eq!(report.recommendation.workers, None);
    assert!(
        report.recommendation.reasons[0].contains("longer run"),
        "{:?}",
        report.recommendation.reasons
    );
}

#[test]
fn a_low_open_file_limit_still_follows_every_thread() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    let path = dir.path().join("r.toml");
    // The hard limit too: concadvise cannot raise itself above it. 64 descriptors: it holds
    // at most 48, and reads the other threads by opening their files each time.
    let script = format!(
        "ulimit -n 64 && exec {} run --color never --report {} -- {} many-threads --threads 300 \
         --busy 1 --seconds 1",
        env!("CARGO_BIN_EXE_concadvise"),
        path.display(),
        workload_str()
    );
    let output = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let report = read_report(&path).unwrap();
    let sampling = &report.sampling;
    assert_eq!(sampling.threads_seen, 301, "{sampling:?}");
    assert_eq!(sampling.threads_unseen, 0, "{sampling:?}");
    assert!(!sampling.out_of_descriptors, "{sampling:?}");
    assert_eq!(sampling.descriptor_budget, 48);
    assert!(sampling.held_descriptors <= 48, "{sampling:?}");
    assert_eq!(sampling.fds_start, sampling.fds_end, "{sampling:?}");
    // The waits were read: the blocked threads wait on a lock, not on 'unknown'.
    assert!(report.breakdown.unknown_s < 1.0, "{:?}", report.breakdown);
    assert_ne!(report.verdict.class, "unknown", "{:?}", report.verdict);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("ran out of file descriptors"), "{stderr}");
}
