//! What users expect of a Rust CLI: shell completions that load, man pages that render, a version that names its build, examples in every `--help`.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::process::Command as Process;

use common::*;

fn binary() -> String {
    assert_cmd::cargo::cargo_bin("concadvise")
        .display()
        .to_string()
}

fn stdout_of(args: &[&str]) -> String {
    let output = concadvise().args(args).output().unwrap();
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_bash_completion_script_loads_into_bash() {
    let script = format!(
        "source <('{}' completions bash) && complete -p concadvise",
        binary()
    );
    let output = Process::new("bash").args(["-c", &script]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let registered = String::from_utf8(output.stdout).unwrap();
    assert!(registered.starts_with("complete "), "{registered}");
    assert!(
        registered.trim_end().ends_with(" concadvise"),
        "{registered}"
    );
    // It completes the subcommands and the options of run.
    let text = stdout_of(&["completions", "bash"]);
    for word in ["attach", "show", "completions", "--trace", "--trace-events"] {
        assert!(text.contains(word), "{word}");
    }
}

#[test]
fn completions_exist_for_the_other_shells() {
    assert!(stdout_of(&["completions", "zsh"]).starts_with("#compdef concadvise"));
    assert!(stdout_of(&["completions", "fish"]).contains("complete -c concadvise"));
    assert!(stdout_of(&["completions", "elvish"]).contains("concadvise"));
    assert!(stdout_of(&["completions", "powershell"]).contains("concadvise"));
    let bad = concadvise().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// `man -l FILE` as a person would read it, without a pager.
fn man_l(page: &Path) -> Option<String> {
    let output = Process::new("man")
        .arg("-l")
        .arg(page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .ok()?;
    assert!(output.status.success(), "{output:?}");
    Some(String::from_utf8(output.stdout).unwrap())
}

#[test]
fn the_man_pages_render_with_man() {
    let dir = scratch_dir();
    let main_page = dir.path().join("main.1");
    std::fs::write(&main_page, stdout_of(&["man"])).unwrap();
    let Some(text) = man_l(&main_page) else {
        eprintln!("skipped: no man on PATH (apt-get install man-db)");
        return;
    };
    for part in [
        "NAME",
        "SYNOPSIS",
        "SUBCOMMANDS",
        "concadvise-run(1)",
        "EXAMPLES",
        "VERSION",
    ] {
        assert!(text.contains(part), "{part} missing from:\n{text}");
    }
    // One page per subcommand, with its options, examples and exit status.
    let pages = dir.path().join("man1");
    std::fs::create_dir(&pages).unwrap();
    concadvise()
        .args(["man", "--dir"])
        .arg(&pages)
        .assert()
        .success();
    for name in [
        "concadvise",
        "concadvise-run",
        "concadvise-attach",
        "concadvise-show",
        "concadvise-diff",
    ] {
        let text = man_l(&pages.join(format!("{name}.1"))).unwrap();
        assert!(text.contains("NAME"), "{name}:\n{text}");
    }
    let run = man_l(&pages.join("concadvise-run.1")).unwrap();
    for part in [
        "--trace",
        "--trace-events",
        "EXAMPLES",
        "EXIT STATUS",
        "concadvise run -- ./myprog",
    ] {
        assert!(run.contains(part), "{part} missing from:\n{run}");
    }
    assert_eq!(
        stdout_of(&["man", "run"]),
        std::fs::read_to_string(pages.join("concadvise-run.1")).unwrap()
    );
    let unknown = concadvise().args(["man", "nope"]).output().unwrap();
    assert_one_line_error(&unknown, 2, "no subcommand \"nope\"");
}

#[test]
fn the_version_names_the_commit_of_a_checkout() {
    let version = stdout_of(&["--version"]);
    assert!(
        version.starts_with(&format!("concadvise {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let manifest = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        Process::new("git")
            .args(args)
            .current_dir(manifest)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_string())
    };
    let is_checkout = git(&["rev-parse", "--show-toplevel"]).is_some_and(|top| {
        Path::new(&top).canonicalize().ok() == Path::new(manifest).canonicalize().ok()
    });
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(commit) if is_checkout => {
            assert!(
                version.contains(&format!("({commit})")),
                "{version} vs {commit}"
            )
        }
        _ => eprintln!("not a git checkout: the version is the package's alone ({version})"),
    }
}

#[test]
fn every_measuring_and_reading_command_ends_its_help_with_examples() {
    for command in ["run", "attach", "show", "diff"] {
        let help = stdout_of(&[command, "--help"]);
        let examples = help
            .split_once("Examples:")
            .unwrap_or_else(|| panic!("{command} --help has no examples:\n{help}"))
            .1;
        let lines: Vec<&str> = examples
            .lines()
            .skip(1)
            .take_while(|line| !line.is_empty())
            .filter(|line| line.starts_with("  concadvise "))
            .collect();
        assert!(lines.len() >= 2, "{command}: {lines:?}");
        assert!(
            lines
                .iter()
                .any(|line| line.contains(&format!("concadvise {command}"))),
            "{command}: {lines:?}"
        );
    }
}
