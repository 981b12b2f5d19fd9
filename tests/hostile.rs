//! Input a hostile or careless user gives: bytes that would drive the terminal, absurd numbers,
//! endless files, non-UTF-8 arguments, unknown options, broken profiles. Each gets one line and
//! its exit code, never a panic, and nothing from data reaches the terminal raw.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};

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
