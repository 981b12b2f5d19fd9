//! Input a hostile or careless user gives: bytes that would drive the terminal, absurd numbers,
//! endless files, non-UTF-8 arguments, unknown options, broken profiles. Each gets one line and
//! its exit code, never a panic, and nothing from data reaches the terminal raw.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use concadvise::report::Report;

const TITLE: &str = "\u{1b}]0;PWNED\u{7}";

/// A report of a real short run, written to `dir`.
fn real_report(dir: &Path) -> (PathBuf, Report) {
    let path = dir.join("real.toml");
    concadvise()
        .args(["run", "-q", "--report"])
        .arg(&path)
        .args(["--", "sleep", "0.2"])
        .assert()
        .success();
    let report = read_report(&path).unwrap();
    (path, report)
}

fn write_report(path: &Path, report: &Report) {
    std::fs::write(path, toml::to_string(report).unwrap()).unwrap();
}

/// No terminal control byte (C0 but newline, DEL, C1) in `bytes`.
fn assert_no_control_bytes(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let raw: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(raw.is_empty(), "raw control characters {raw:?} in {text}");
}

#[test]
fn control_characters_in_a_report_are_escaped_by_show_and_diff() {
    let dir = scratch_dir();
    let (_, mut report) = real_report(dir.path());
    report.target.command = vec![TITLE.into(), "arg\u{9b}31m".into()];
    report.target.runtime = format!("native{TITLE}");
    report.verdict.class = format!("idle{TITLE}");
    report.recommendation.model = format!("none{TITLE}");
    report.recommendation.reasons = vec![format!("because{TITLE} it\nsays so")];
    report.recommendation.how = format!("do{TITLE}");
    report.timeline.states = format!("ss{TITLE}ss");
    if let Some(thread) = report.threads.first_mut() {
        thread.name = format!("t{TITLE}");
    }
    let hostile = dir.path().join("hostile.toml");
    write_report(&hostile, &report);
    let shown = concadvise()
        .args(["show", "--color", "never"])
        .arg(&hostile)
        .output()
        .unwrap();
    assert!(shown.status.success(), "{shown:?}");
    assert_no_control_bytes(&shown.stdout);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("\\x1b]0;PWNED\\x07"), "{text}");
    assert!(text.contains("arg\\u{9b}31m"), "{text}");
    let diffed = concadvise()
        .args(["diff", "--color", "never"])
        .arg(&hostile)
        .arg(dir.path().join("real.toml"))
        .output()
        .unwrap();
    assert!(diffed.status.success(), "{diffed:?}");
    assert_no_control_bytes(&diffed.stdout);
    assert!(String::from_utf8_lossy(&diffed.stdout).contains("\\x1b]0;PWNED"));
}

#[test]
fn control_characters_from_proc_and_in_error_messages_are_escaped() {
    let _lock = timing_lock();
    // An argument, and a thread name set by the program itself, that would set the title.
    let script = "import ctypes, sys, threading, time\n\
                  libc = ctypes.CDLL(None)\n\
                  def work():\n    libc.prctl(15, ctypes.c_char_p(b'\\x1b]0;T\\x07'), 0, 0, 0)\n    \
                  t = time.thread_time()\n    while time.thread_time() - t < 0.3: pass\n\
                  th = threading.Thread(target=work); th.start(); th.join()\n";
    let dir = scratch_dir();
    std::fs::write(dir.path().join("t.py"), script).unwrap();
    let output = concadvise()
        .current_dir(dir.path())
        .args(["run", "--color", "never", "--", "python3", "t.py", TITLE])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_no_control_bytes(&output.stderr);
    let summary = String::from_utf8_lossy(&output.stderr);
    assert!(summary.contains("\\x1b]0;PWNED\\x07"), "{summary}");
    assert!(summary.contains("\\x1b]0;T\\x07"), "{summary}");

    let missing = concadvise()
        .arg("show")
        .arg(format!("/nonexistent/{TITLE}.toml"))
        .output()
        .unwrap();
    assert_one_line_error(&missing, 5, "\\x1b]0;PWNED\\x07");
    assert_no_control_bytes(&missing.stderr);
}

#[test]
fn control_characters_in_a_profile_are_escaped_in_the_listing() {
    let dir = scratch_dir();
    let text = std::fs::read_to_string(format!(
        "{}/profiles/native.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let hostile = text
        .replacen("name = \"native\"", "name = \"evil\"", 1)
        .replacen(
            "description = \"",
            "description = \"\\u001b]0;PWNED\\u0007",
            1,
        );
    std::fs::write(dir.path().join("evil.toml"), hostile).unwrap();
    let output = concadvise()
        .args(["profiles", "--profiles"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_no_control_bytes(&output.stdout);
    assert!(String::from_utf8_lossy(&output.stdout).contains("\\x1b]0;PWNED"));
}

#[test]
fn an_absurd_duration_is_a_usage_error_not_a_panic() {
    let target = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = target.id().to_string();
    for (duration, says) in [
        ("300000000000y", "at most 365 days"),
        ("0s", "zero duration"),
        ("soon", "not a duration"),
    ] {
        let output = concadvise()
            .args(["attach", &pid, "--duration", duration])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{duration}: {output:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains(says));
    }
    let mut target = target;
    target.kill().unwrap();
    target.wait().unwrap();
}

#[test]
fn an_endless_file_is_refused_after_a_bounded_read() {
    let started = std::time::Instant::now();
    let output = concadvise().args(["show", "/dev/zero"]).output().unwrap();
    assert_one_line_error(&output, 5, "larger than 64 MiB");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let output = concadvise().args(["show", "/"]).output().unwrap();
    assert_one_line_error(&output, 5, "directory");
}

#[test]
fn numbers_a_report_cannot_hold_are_refused_naming_the_key() {
    let dir = scratch_dir();
    let (path, report) = real_report(dir.path());
    let text = std::fs::read_to_string(&path).unwrap();
    let wall = format!("wall_s = {}\n", report.time.wall_s);
    assert!(text.contains(&wall), "{text}");
    for bad in ["-5.0", "nan", "inf", "1e308"] {
        let edited = dir.path().join("edited.toml");
        std::fs::write(
            &edited,
            text.replacen(&wall, &format!("wall_s = {bad}\n"), 1),
        )
        .unwrap();
        for command in [&["show"][..], &["show", "--format", "json"], &["diff"]] {
            let mut cmd = concadvise();
            cmd.args(command).arg(&edited);
            if command == ["diff"] {
                cmd.arg(&path);
            }
            let output = cmd.output().unwrap();
            assert_one_line_error(&output, 5, "time.wall_s");
        }
    }
    // JSON cannot say NaN, but it can say 1e308 and -1.
    let json = concadvise()
        .args(["show", "--format", "json"])
        .arg(&path)
        .output()
        .unwrap();
    let mut value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    value["verdict"]["confidence"] = serde_json::json!(-1.0);
    let edited = dir.path().join("edited.json");
    std::fs::write(&edited, value.to_string()).unwrap();
    let output = concadvise().arg("show").arg(&edited).output().unwrap();
    assert_one_line_error(&output, 5, "verdict.confidence");
}

/// `concadvise profiles --profiles DIR`, and `run` with the same directory.
fn profiles_in(dir: &Path) -> (Output, Output) {
    let listing = concadvise()
        .args(["profiles", "--profiles"])
        .arg(dir)
        .output()
        .unwrap();
    let run = concadvise()
        .args(["run", "-q", "--profiles"])
        .arg(dir)
        .args(["--", "true"])
        .output()
        .unwrap();
    (listing, run)
}

#[test]
fn broken_profile_directories_exit_5_naming_the_file() {
    let native = std::fs::read_to_string(format!(
        "{}/profiles/native.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let renamed = native.replacen("name = \"native\"", "name = \"mine\"", 1);
    // Two files of one directory naming the same profile: an error naming both.
    let dir = scratch_dir();
    std::fs::write(dir.path().join("a.toml"), &renamed).unwrap();
    std::fs::write(dir.path().join("b.toml"), &renamed).unwrap();
    let (listing, run) = profiles_in(dir.path());
    assert_one_line_error(&listing, 5, "a.toml");
    assert!(String::from_utf8_lossy(&listing.stderr).contains("b.toml"));
    assert_one_line_error(&run, 125, "b.toml");

    type Make = fn(&Path);
    let broken: [(&str, Make, &str); 3] = [
        (
            "binary",
            |p| std::fs::write(p, [0u8, 159, 146, 150, 255]).unwrap(),
            "not a text file",
        ),
        (
            "directory",
            |p| std::fs::create_dir(p).unwrap(),
            "directory",
        ),
        (
            "symlink loop",
            |p| std::os::unix::fs::symlink(p, p).unwrap(),
            "symbolic links",
        ),
    ];
    for (what, make, says) in broken {
        let dir = scratch_dir();
        make(&dir.path().join("x.toml"));
        let (listing, run) = profiles_in(dir.path());
        assert_one_line_error(&listing, 5, "x.toml");
        assert!(
            String::from_utf8_lossy(&listing.stderr).contains(says),
            "{what}: {listing:?}"
        );
        assert_eq!(run.status.code(), Some(125), "{what}");
    }
    let (listing, run) = profiles_in(Path::new("/nonexistent"));
    assert_one_line_error(&listing, 5, "/nonexistent");
    assert_one_line_error(&run, 125, "/nonexistent");
}

#[test]
fn a_program_with_arguments_that_are_not_utf8_is_measured_with_those_exact_bytes() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = scratch_dir();
    let cafe = OsStr::from_bytes(b"caf\xe9");
    let recording = dir.path().join(OsStr::from_bytes(b"samples-caf\xe9.jsonl"));
    let report = dir.path().join("r.toml");
    let output = concadvise()
        .args(["run", "-q", "--report"])
        .arg(&report)
        .arg("--record-samples")
        .arg(&recording)
        .args(["--", "printf", "%s\\n"])
        .arg(cafe)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        output.stdout, b"caf\xe9\n",
        "the program got the exact bytes"
    );
    // The report holds text: the invalid byte is U+FFFD there.
    let kept = read_report(&report).unwrap();
    assert_eq!(kept.target.command, ["printf", "%s\\n", "caf\u{fffd}"]);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.as_bytes() == b"samples-caf\xe9.jsonl"),
        "the recording has exactly the name asked for: {names:?}"
    );
}

#[test]
fn an_unknown_option_before_the_command_is_a_usage_error() {
    let dir = scratch_dir();
    let marker = dir.path().join("ran");
    let output = concadvise()
        .args(["run", "--bogus", "--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--bogus"));
    assert!(!marker.exists());
    // Options of the program after the command (or after --) are the program's.
    let output = concadvise()
        .args(["run", "-q", "printf", "%s", "--bogus"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(output.stdout, b"--bogus");
}
