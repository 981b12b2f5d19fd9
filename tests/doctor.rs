//! `concadvise doctor` on this machine, as root and as `nobody`, for processes the tests start
//! as either user: the lines that must differ between them do, and the open-file verdict
//! predicts what `attach` then measures.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

const NOBODY: u32 = 65534;

/// A process started by a test, killed when the test ends however it ends.
struct Target(Child);

impl Target {
    fn start(command: &mut Command) -> Target {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // Started (exec done) before anyone looks at it.
        std::thread::sleep(Duration::from_millis(300));
        Target(child)
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sleeper() -> Command {
    let mut command = Command::new(workload());
    command.args(["sleep", "--seconds", "60"]);
    command
}

/// `python3 -c 'sleep'` if python3 is on PATH.
fn python_sleeper() -> Option<Command> {
    let found = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    found.then(|| {
        let mut command = Command::new("python3");
        command.args(["-c", "import time; time.sleep(60)"]);
        command
    })
}

/// concadvise doctor ARGS --format json, as `uid` (None: as the tests run).
fn doctor(args: &[&str], uid: Option<u32>) -> (Value, Output) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_concadvise"));
    command.arg("doctor").args(args).args(["--format", "json"]);
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    let output = command.output().unwrap();
    let json = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("doctor's JSON does not parse ({e}): {output:?}"));
    (json, output)
}

/// The check called `name`: its state and what it found.
fn line<'a>(diagnosis: &'a Value, name: &str) -> (&'a str, &'a str) {
    let check = diagnosis["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {diagnosis:#}"));
    (
        check["state"].as_str().unwrap(),
        check["found"].as_str().unwrap(),
    )
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// The exit status follows the checks: 0 exactly when all are ok, else 7.
fn assert_exit_follows_checks(diagnosis: &Value, output: &Output) {
    let all_ok = diagnosis["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["state"] == "ok");
    assert_eq!(diagnosis["full_measurement"], all_ok);
    assert_eq!(output.status.code(), Some(if all_ok { 0 } else { 7 }));
}

#[test]
fn own_process_reads_fully_and_the_text_has_a_line_per_check() {
    let target = Target::start(&mut sleeper());
    let (diagnosis, output) = doctor(&[&target.pid()], None);
    assert_exit_follows_checks(&diagnosis, &output);
    assert_eq!(
        diagnosis["target"]["pid"].as_i64().unwrap().to_string(),
        target.pid()
    );
    for name in ["proc", "ptrace", "cgroup", "open-files"] {
        line(&diagnosis, name);
    }
    let (state, found) = line(&diagnosis, "ptrace");
    assert_eq!(state, "ok", "{found}");
    assert!(found.contains("it runs as you"), "{found}");
    // This machine has no Yama; where a kernel has it, the line names its scope instead.
    let yama = std::path::Path::new("/proc/sys/kernel/yama/ptrace_scope").exists();
    assert_eq!(found.contains("no Yama"), !yama, "{found}");
    assert_eq!(line(&diagnosis, "proc").0, "ok");
    // Not Python: no python line.
    assert!(!diagnosis["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "python"));

    let text = concadvise()
        .args(["doctor", &target.pid(), "--color", "never"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&text.stdout);
    for name in ["proc", "ptrace", "cgroup", "open-files"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(name)),
            "no {name} line: {stdout}"
        );
    }
    assert_eq!(text.status.code(), output.status.code());
}

#[test]
fn a_pid_that_does_not_exist_is_exit_3() {
    let output = concadvise()
        .args(["doctor", "2147483646"])
        .output()
        .unwrap();
    assert_one_line_error(&output, 3, "2147483646");
}

#[test]
fn without_a_pid_root_and_nobody_differ_in_the_capability_only() {
    if !is_root() {
        eprintln!("skipped: needs root to run concadvise as another user (nobody)");
        return;
    }
    let (root, root_out) = doctor(&[], None);
    let (nobody, nobody_out) = doctor(&[], Some(NOBODY));
    assert_exit_follows_checks(&root, &root_out);
    assert_exit_follows_checks(&nobody, &nobody_out);
    assert_eq!(root["user"]["cap_sys_ptrace"], true);
    assert_eq!(nobody["user"]["cap_sys_ptrace"], false);
    assert_eq!(nobody["user"]["name"], "nobody");
    // ptrace: both read their own processes; root reads other users' with CAP_SYS_PTRACE,
    // nobody lacks it.
    let (root_state, root_found) = line(&root, "ptrace");
    let (nobody_state, nobody_found) = line(&nobody, "ptrace");
    assert_eq!((root_state, nobody_state), ("ok", "ok"));
    assert!(
        root_found.contains("other users' too, with CAP_SYS_PTRACE"),
        "{root_found}"
    );
    assert!(
        nobody_found.contains("other users' need CAP_SYS_PTRACE, which you lack"),
        "{nobody_found}"
    );
    assert!(
        nobody_found.contains("uid 65534 (nobody)"),
        "{nobody_found}"
    );
    // proc, cgroup and open-files: the same for both (same files, same limits).
    for name in ["proc", "cgroup", "open-files"] {
        assert_eq!(line(&root, name).0, line(&nobody, name).0, "{name}");
    }
    // python: the python3 on PATH is checked for both (nobody may find another one: root's
    // PATH can start with directories nobody cannot enter).
    line(&root, "python");
    line(&nobody, "python");
}

#[test]
fn nobody_cannot_read_roots_process_where_root_can() {
    if !is_root() {
        eprintln!("skipped: needs root to run concadvise as another user (nobody)");
        return;
    }
    let python = python_sleeper();
    let target = match python {
        Some(mut command) => Target::start(&mut command),
        None => {
            eprintln!("python3 not on PATH: checking a native process only");
            Target::start(&mut sleeper())
        }
    };
    let is_python = python_sleeper().is_some();
    let (root, root_out) = doctor(&[&target.pid()], None);
    let (nobody, nobody_out) = doctor(&[&target.pid()], Some(NOBODY));
    assert_exit_follows_checks(&root, &root_out);
    assert_exit_follows_checks(&nobody, &nobody_out);
    // What differs: ptrace is ok for root (its own process), limited for nobody, with why
    // and what is lost.
    let (state, found) = line(&root, "ptrace");
    assert_eq!(state, "ok", "{found}");
    assert!(found.contains("it runs as you, uid 0 (root)"), "{found}");
    let (state, found) = line(&nobody, "ptrace");
    assert_eq!(state, "limited", "{found}");
    assert!(
        found.contains("it runs as uid 0 (root), you as uid 65534 (nobody) without CAP_SYS_PTRACE"),
        "{found}"
    );
    assert!(
        found.contains("'unknown'") && found.contains("Python stacks"),
        "{found}"
    );
    assert_eq!(
        nobody_out.status.code(),
        Some(7),
        "a limited check is exit 7"
    );
    // What differs for Python: root sees the version through exe/maps; nobody only the
    // command line, and cannot read its stacks.
    if is_python {
        let (state, found) = line(&root, "python");
        assert_eq!(state, "ok", "{found}");
        assert!(found.contains("runs CPython 3."), "{found}");
        let (state, found) = line(&nobody, "python");
        assert_eq!(state, "limited", "{found}");
        assert!(found.contains("its command line"), "{found}");
        assert!(found.contains("needs ptrace access"), "{found}");
    }
    // What does not differ: stat, schedstat and children are world-readable; the cgroup
    // files too; the limits are the same.
    for name in ["proc", "cgroup", "open-files"] {
        assert_eq!(line(&root, name), line(&nobody, name), "{name}");
    }
}

#[test]
fn root_reads_nobodys_process_by_capability_and_nobody_by_uid() {
    if !is_root() {
        eprintln!("skipped: needs root to start a process as another user (nobody)");
        return;
    }
    let target = Target::start(sleeper().uid(NOBODY).gid(NOBODY));
    let (root, _) = doctor(&[&target.pid()], None);
    let (nobody, _) = doctor(&[&target.pid()], Some(NOBODY));
    assert_eq!(root["target"]["owner"], "nobody");
    // Both may read it, for different reasons: root through CAP_SYS_PTRACE, nobody because
    // the process is its own.
    let (state, found) = line(&root, "ptrace");
    assert_eq!(state, "ok", "{found}");
    assert!(
        found.contains("it runs as uid 65534 (nobody), you as uid 0 (root) with CAP_SYS_PTRACE"),
        "{found}"
    );
    let (state, found) = line(&nobody, "ptrace");
    assert_eq!(state, "ok", "{found}");
    assert!(
        found.contains("it runs as you, uid 65534 (nobody)"),
        "{found}"
    );
}

/// `doctor PID` and `attach PID` under the same open-file limit, set with the shell's ulimit.
fn under_limit(limit: u64, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -Sn {limit} && ulimit -Hn {limit} && exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_concadvise"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn under_a_limited_open_file_limit_attach_still_follows_every_thread() {
    let _lock = timing_lock();
    // 302 threads (the main one, one computing, 300 blocked): a schedstat held for each needs
    // a limit of about (302 + 1 + 32) x 4/3 = 447.
    let mut command = Command::new(workload());
    command.args([
        "many-threads",
        "--threads",
        "301",
        "--busy",
        "1",
        "--seconds",
        "60",
    ]);
    let target = Target::start(&mut command);
    let pid = target.pid();
    let dir = scratch_dir();
    for (limit, expected) in [(256, "limited"), (1024, "ok")] {
        let output = under_limit(limit, &["doctor", &pid, "--format", "json"]);
        let diagnosis: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("at {limit}: {e}: {output:?}"));
        let (state, found) = line(&diagnosis, "open-files");
        assert_eq!(state, expected, "at {limit}: {found}");
        assert!(found.contains("302 threads in 1 process"), "{found}");

        let report = dir.path().join(format!("r{limit}.toml"));
        let output = under_limit(
            limit,
            &[
                "attach",
                &pid,
                "--duration",
                "1s",
                "-q",
                "--report",
                report.to_str().unwrap(),
            ],
        );
        assert!(output.status.success(), "{output:?}");
        let report = read_report(&report).unwrap();
        let sampling = &report.sampling;
        // Limited or not, nothing is lost: past the budget threads are read by opening.
        assert_eq!(sampling.threads_unseen, 0, "at {limit}: {sampling:?}");
        assert!(sampling.threads_seen >= 302, "at {limit}: {sampling:?}");
        assert!(!sampling.out_of_descriptors, "at {limit}: {sampling:?}");
        assert_eq!(sampling.descriptor_budget as u64, limit * 3 / 4);
        assert!(
            sampling.held_descriptors <= sampling.descriptor_budget,
            "at {limit}: {sampling:?}"
        );
        // Limited: the budget did not cover a schedstat for each thread.
        assert_eq!(
            sampling.held_descriptors < 302,
            expected == "limited",
            "at {limit}: {sampling:?}"
        );
    }
}
