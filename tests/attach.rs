//! `concadvise attach` on processes the tests start: only the attached time counts, children
//! born meanwhile count, the target is never disturbed, and bad targets are refused.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A process started by a test, killed when the test ends however it ends.
struct Target(Child);

impl Target {
    fn start(args: &[&str]) -> Target {
        let child = Command::new(workload())
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Target(child)
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }

    /// Alive and not stopped: state letter from /proc.
    fn state(&self) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0.id())).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.chars().next().unwrap()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn attach_measured(args: &[&str]) -> (concadvise::report::Report, std::process::Output) {
    let dir = scratch_dir();
    let path = dir.path().join("attach.toml");
    let output = concadvise()
        .args(["attach", "-q", "--report"])
        .arg(&path)
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let report = read_report(&path)
        .unwrap_or_else(|| panic!("no report: {}", String::from_utf8_lossy(&output.stderr)));
    (report, output)
}

#[test]
fn cpu_bound_process_measured_for_the_attach_duration_only() {
    let _lock = timing_lock();
    let target = Target::start(&["cpu", "--seconds", "30"]);
    std::thread::sleep(Duration::from_millis(1500));
    let (report, output) = attach_measured(&[&target.pid(), "--duration", "2s"]);
    assert!(output.status.success());
    assert_eq!(report.verdict.class, "cpu-bound", "{report:#?}");
    assert!(
        (1.8..=2.2).contains(&report.time.wall_s),
        "{:?}",
        report.time
    );
    // Only what happened while attached: a core wanted for about 2 s (on it, or queued for
    // it on a busy machine), not the 3.5 s the process has run.
    let wanted_s = report.breakdown.cpu_s + report.breakdown.runqueue_s;
    assert!((1.6..=2.3).contains(&wanted_s), "{:?}", report.breakdown);
    assert!(report.time.cpu_s <= 2.3, "{:?}", report.time);
    assert_eq!(report.sampling.mode, "attach");
    assert_eq!(report.target.exited, Some(false));
    assert_eq!(report.target.exit_code, None);
    assert_eq!(report.target.command[1], "cpu");
    assert_eq!(
        target.state(),
        'R',
        "the target keeps running after --duration"
    );
}

#[test]
fn sleeping_process_is_idle() {
    let _lock = timing_lock();
    let target = Target::start(&["sleep", "--seconds", "30"]);
    let (report, _) = attach_measured(&[&target.pid(), "--duration", "1s"]);
    assert_eq!(report.verdict.class, "idle");
    assert_eq!(report.verdict.dominant_wait.as_deref(), Some("sleep"));
}

#[test]
fn a_child_forked_after_attach_is_counted() {
    let _lock = timing_lock();
    // Fixed work, measured until the target (which waits for its child) exits.
    let work = WORK_1S.to_string();
    let target = Target::start(&["spawn-cpu-later", "--after", "0.5", "--work", &work]);
    let (report, _) = attach_measured(&[&target.pid()]);
    assert_eq!(report.target.exited, Some(true));
    assert!(report.time.cpu_s >= 0.5, "{:?}", report.time);
    assert!(report.sampling.processes_seen >= 2);
    let child = report
        .processes
        .iter()
        .find(|p| p.command.iter().any(|a| a == "cpu"))
        .unwrap_or_else(|| panic!("the child was not followed: {:?}", report.processes));
    assert!(child.cpu_s >= 0.9 * report.time.cpu_s, "{child:?}");
}

#[test]
fn target_exiting_during_attach_ends_the_measurement_and_is_reported() {
    let _lock = timing_lock();
    let target = Target::start(&["sleep", "--seconds", "1"]);
    let started = Instant::now();
    let (report, output) = attach_measured(&[&target.pid(), "--duration", "20s"]);
    assert!(output.status.success());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(report.target.exited, Some(true));
    assert!(report.time.wall_s < 2.0);
    // The test (its parent) had not reaped it yet, so the zombie told its exit status.
    assert_eq!(report.target.exit_code, Some(0));
}

#[test]
fn sigint_to_concadvise_alone_stops_and_leaves_the_target_running() {
    let _lock = timing_lock();
    let target = Target::start(&["cpu", "--seconds", "30"]);
    let dir = scratch_dir();
    let path = dir.path().join("r.toml");
    let child = Command::new(env!("CARGO_BIN_EXE_concadvise"))
        .args(["attach", "-q", "--report"])
        .arg(&path)
        .arg(target.pid())
        .spawn()
        .unwrap();
    // Attached once its sampler has read the target for a while.
    std::thread::sleep(Duration::from_millis(800));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let report = read_report(&path).expect("report written after Ctrl-C");
    assert!(report.target.interrupted);
    assert_eq!(report.target.exited, Some(false));
    assert_eq!(target.state(), 'R', "the target keeps running after Ctrl-C");
}

#[test]
fn missing_pid_is_a_one_line_error_with_exit_3_and_no_report() {
    let dir = scratch_dir();
    let path = dir.path().join("r.toml");
    let output = concadvise()
        .args(["attach", "--report"])
        .arg(&path)
        .arg("2147483646")
        .output()
        .unwrap();
    assert_one_line_error(&output, 3, "2147483646");
    assert_empty(dir.path());
}

#[test]
fn refuses_itself_its_parent_and_kernel_threads() {
    let bin = env!("CARGO_BIN_EXE_concadvise");
    // `exec` makes $$ concadvise's own PID; with a command after it, $$ is the parent shell.
    for (script, reason) in [
        (format!("exec {bin} attach $$"), "concadvise itself"),
        (
            format!("{bin} attach $$; exit $?"),
            "concadvise runs inside it",
        ),
    ] {
        let output = Command::new("sh").args(["-c", &script]).output().unwrap();
        assert_one_line_error(&output, 4, reason);
    }
    if let Some(kthread) = a_kernel_thread() {
        let output = concadvise().args(["attach", &kthread]).output().unwrap();
        assert_eq!(output.status.code(), Some(4));
        assert!(String::from_utf8_lossy(&output.stderr).contains("kernel thread"));
    }
}

#[test]
fn init_is_refused_as_an_ancestor_and_a_thread_id_measures_its_process() {
    let output = concadvise().args(["attach", "1"]).output().unwrap();
    assert_one_line_error(&output, 4, "init");
    let target = Target::start(&["cpu", "--seconds", "30", "--threads", "2"]);
    let tasks = format!("/proc/{}/task", target.pid());
    let deadline = Instant::now() + Duration::from_secs(10);
    let thread = loop {
        let other = std::fs::read_dir(&tasks)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .find(|tid| *tid != target.pid());
        match other {
            Some(tid) => break tid,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            None => panic!("the target started no second thread"),
        }
    };
    let dir = scratch_dir();
    let path = dir.path().join("r.toml");
    let output = concadvise()
        .args(["attach", "--report"])
        .arg(&path)
        .args([&thread, "--duration", "300ms", "--color", "never"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{thread} is a thread of process {}", target.pid())),
        "{stderr}"
    );
    assert_eq!(
        read_report(&path).unwrap().target.pid.to_string(),
        target.pid()
    );
}

/// A kernel thread visible in this PID namespace (kthreadd's children), if any.
fn a_kernel_thread() -> Option<String> {
    let stat = std::fs::read_to_string("/proc/2/stat").ok()?;
    stat.contains("(kthreadd)").then(|| "2".to_string())
}

#[test]
fn attach_by_name_finds_the_one_process() {
    let _lock = timing_lock();
    // A name no other process has: the workload started through a link named after this test.
    let dir = scratch_dir();
    let link = dir.path().join(format!("wl{}", std::process::id()));
    std::os::unix::fs::symlink(workload(), &link).unwrap();
    let target = Target(
        Command::new(&link)
            .args(["sleep", "--seconds", "30"])
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(200));
    let name = link.file_name().unwrap().to_str().unwrap().to_string();
    let (report, _) = attach_measured(&["--name", &name, "--duration", "500ms"]);
    assert_eq!(report.target.pid.to_string(), target.pid());
}

/// `concadvise attach PID --duration 1s ARGS` run as user nobody (no ptrace access to a
/// root-owned target), with its report in a directory nobody may write in; it succeeded.
fn attach_as_nobody(
    target: &Target,
    args: &[&str],
) -> (concadvise::report::Report, std::process::Output) {
    use std::os::unix::process::CommandExt;
    let dir = scratch_dir();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let path = dir.path().join("r.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_concadvise"))
        .args(["attach", "--report"])
        .arg(&path)
        .args([&target.pid(), "--duration", "1s"])
        .args(args)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    (read_report(&path).unwrap(), output)
}

#[test]
fn without_ptrace_access_waits_are_unknown_and_confidence_drops() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root to run concadvise as another user (nobody)");
        return;
    }
    let _lock = timing_lock();
    let target = Target::start(&["sleep", "--seconds", "30"]);
    let (report, output) = attach_as_nobody(&target, &["--color", "never"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let hints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("concadvise: cannot read") && l.contains("ptrace"))
        .collect();
    assert_eq!(hints.len(), 1, "one line says what was denied: {stderr}");
    // Not a Python program: nothing about stacks, and no [code].
    assert!(!stderr.contains("stacks"), "{stderr}");
    assert!(report.code.is_none(), "{:?}", report.code);
    assert!(!report.sampling.sources.syscall);
    assert!(report.wall.unknown_s > 0.8, "{:?}", report.wall);
    assert_eq!(report.wall.sleep_s, 0.0, "no guessing");
    // No advice from no data: the class says so, and the reason says how to get the data.
    assert_eq!(report.verdict.class, "unknown", "{:?}", report.verdict);
    assert_eq!(report.verdict.confidence, 0.0);
    assert_eq!(report.recommendation.model, "none");
    assert!(
        report.recommendation.reasons[0].contains("CAP_SYS_PTRACE"),
        "{:?}",
        report.recommendation.reasons
    );
}

#[test]
fn without_ptrace_access_uninterruptible_waits_are_still_told_apart() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root to run concadvise as another user (nobody)");
        return;
    }
    let _lock = timing_lock();
    // fdatasync after every write: the target sleeps uninterruptibly (D) most of the time.
    let disk_dir = scratch_dir();
    let target = Target::start(&[
        "disk",
        "--seconds",
        "30",
        "--dir",
        disk_dir.path().to_str().unwrap(),
    ]);
    let (report, _) = attach_as_nobody(&target, &["-q"]);
    // The state letter is world-readable: computing, and the two kinds of blocked, apart.
    // Off the CPU and out of the run queue (which a busy machine makes long), the target is
    // mostly in D.
    let b = &report.breakdown;
    let blocked_s = b.total_s() - b.cpu_s - b.runqueue_s;
    assert!(blocked_s > 0.05, "{b:?}");
    assert!(b.uninterruptible_s >= 0.8 * blocked_s, "{b:?}");
    assert_eq!(report.breakdown.disk_s, 0.0, "no guessing");
    // A bucket shows its largest state: the D time, unless a busy machine kept the target
    // queued for a CPU longer still.
    if b.uninterruptible_s > b.runqueue_s {
        assert!(
            report.timeline.states.contains('u'),
            "{:?}",
            report.timeline
        );
    }
}
