//! The files concadvise writes (the report, `--record-samples`): it never destroys a file it
//! was not asked to write, refuses bad paths before anything runs, leaves nothing beside the
//! report while the program runs, and never loses a measurement when the write fails.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// `concadvise run -q --report REPORT EXTRA... -- touch DIR/ran`: the output, and whether it ran.
fn run_touching(report: &Path, extra: &[&str], dir: &Path) -> (Output, bool) {
    let mut args = vec![OsStr::new("--report"), report.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    touch_under(&args, dir)
}

/// `concadvise run -q ARGS... -- touch DIR/ran`: the output, and whether the program ran.
fn touch_under(args: &[&OsStr], dir: &Path) -> (Output, bool) {
    let marker = dir.join("ran");
    let output = concadvise()
        .args(["run", "-q"])
        .args(args)
        .arg("--")
        .arg("touch")
        .arg(&marker)
        .output()
        .unwrap();
    (output, marker.exists())
}

fn assert_refused_before_running(report: &Path, extra: &[&str], mentions: &str) {
    let dir = scratch_dir();
    let (output, ran) = run_touching(report, extra, dir.path());
    assert_one_line_error(&output, 125, mentions);
    assert!(!ran, "the program ran although {report:?} was refused");
}

#[test]
fn a_device_node_fifo_or_socket_is_refused_and_left_alone() {
    let dir = scratch_dir();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    assert_refused_before_running(&fifo, &[], "FIFO");
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    let socket = dir.path().join("socket");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    assert_refused_before_running(&socket, &[], "socket");
    let recorded = ["--record-samples", fifo.to_str().unwrap()];
    assert_refused_before_running(&dir.path().join("r.toml"), &recorded, "FIFO");

    if !is_root() {
        eprintln!("skipped the device node: mknod needs root");
        return;
    }
    // The safe stand-in for /dev/null: the same device, made here.
    let node = dir.path().join("mynull");
    nix::sys::stat::mknod(
        &node,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    assert_refused_before_running(&node, &[], "character device");
    let meta = std::fs::symlink_metadata(&node).unwrap();
    assert!(meta.file_type().is_char_device(), "the node was replaced");
    assert_eq!(meta.rdev(), nix::sys::stat::makedev(1, 3));
    // A symbolic link to it is followed, and refused the same way.
    let link = dir.path().join("link-to-null");
    std::os::unix::fs::symlink(&node, &link).unwrap();
    assert_refused_before_running(&link, &[], "character device");
}

#[test]
fn a_symlink_is_followed_its_target_replaced_and_a_dangling_one_refused() {
    let dir = scratch_dir();
    let real = dir.path().join("real.toml");
    std::fs::write(&real, "old").unwrap();
    let link = dir.path().join("link.toml");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let (output, ran) = run_touching(&link, &[], dir.path());
    assert!(output.status.success() && ran, "{output:?}");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(read_report(&real).unwrap().target.command[0], "touch");

    let dangling = dir.path().join("dangling.toml");
    std::os::unix::fs::symlink(dir.path().join("nowhere.toml"), &dangling).unwrap();
    assert_refused_before_running(&dangling, &[], "does not exist");
}

#[test]
fn the_same_file_for_two_outputs_is_refused() {
    let dir = scratch_dir();
    let path = dir.path().join("out");
    let same = ["--record-samples", path.to_str().unwrap()];
    assert_refused_before_running(&path, &same, "same file");
    let link = dir.path().join("alias");
    std::fs::write(&path, "").unwrap();
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let aliased = ["--record-samples", link.to_str().unwrap()];
    assert_refused_before_running(&path, &aliased, "same file");
}

#[test]
fn an_existing_report_keeps_its_mode_and_owner() {
    let dir = scratch_dir();
    let path = dir.path().join("r.toml");
    std::fs::write(&path, "old").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let owner = if is_root() {
        let nobody = Some(nix::unistd::Uid::from_raw(65534));
        let nogroup = Some(nix::unistd::Gid::from_raw(65534));
        nix::unistd::chown(&path, nobody, nogroup).unwrap();
        (65534, 65534)
    } else {
        eprintln!("not root: only the mode is checked");
        let meta = std::fs::metadata(&path).unwrap();
        (meta.uid(), meta.gid())
    };
    let (output, _) = run_touching(&path, &[], dir.path());
    assert!(output.status.success(), "{output:?}");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o640);
    assert_eq!((meta.uid(), meta.gid()), owner);
    assert!(read_report(&path).is_some());
}

#[test]
fn a_read_only_report_or_another_users_report_is_not_replaced() {
    let dir = scratch_dir();
    let read_only = dir.path().join("kept.toml");
    std::fs::write(&read_only, "precious").unwrap();
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o444)).unwrap();
    if !is_root() {
        // Root may write any file; this refusal is for everyone else.
        assert_refused_before_running(&read_only, &[], "not writable");
        return;
    }
    // As nobody, in a directory nobody may write in: root's file there is refused.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let roots = dir.path().join("roots.toml");
    std::fs::write(&roots, "root's").unwrap();
    std::fs::set_permissions(&roots, std::fs::Permissions::from_mode(0o666)).unwrap();
    let output = {
        use std::os::unix::process::CommandExt;
        Command::new(env!("CARGO_BIN_EXE_concadvise"))
            .args(["run", "-q", "--report"])
            .arg(&roots)
            .args(["--", "true"])
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap()
    };
    assert_one_line_error(&output, 125, "another user");
    assert_eq!(std::fs::read_to_string(&roots).unwrap(), "root's");
}

#[test]
fn a_fifo_the_program_puts_at_the_report_path_is_not_replaced() {
    let dir = scratch_dir();
    let fallback = scratch_dir();
    let report = dir.path().join("r.toml");
    let output = concadvise()
        .args(["run", "-q", "--report"])
        .arg(&report)
        .args(["--", "mkfifo"])
        .arg(&report)
        .env("TMPDIR", fallback.path())
        .output()
        .unwrap();
    assert_one_line_error(&output, 0, "became a FIFO");
    assert!(std::fs::symlink_metadata(&report)
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(std::fs::read_dir(fallback.path()).unwrap().count(), 1);
}

#[test]
fn an_empty_path_or_a_trailing_slash_is_refused_before_anything_starts() {
    let dir = scratch_dir();
    assert_refused_before_running(&dir.path().join("newdir/"), &[], "ends with '/'");
    // An empty path is a usage error (clap's: "a value is required"), for both outputs.
    for option in ["--report", "--record-samples"] {
        let (output, ran) = touch_under(&[OsStr::new(option), OsStr::new("")], dir.path());
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        assert!(!ran);
    }
    // attach checks before attaching, not after the whole --duration.
    let started = std::time::Instant::now();
    let me = std::process::id().to_string();
    let slash = format!("{}/", dir.path().display());
    let output = concadvise()
        .args(["attach", &me, "--duration", "30s", "--report", &slash])
        .output()
        .unwrap();
    assert_one_line_error(&output, 6, "ends with '/'");
    let output = concadvise()
        .args(["attach", &me, "--duration", "30s", "--report", ""])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn nothing_sits_beside_the_report_while_the_program_runs() {
    let dir = scratch_dir();
    let out = scratch_dir();
    let listing = out.path().join("listing");
    let script = format!("ls -A {} > {}", dir.path().display(), listing.display());
    let output = concadvise()
        .args(["run", "-q", "--report"])
        .arg(dir.path().join("r.toml"))
        .arg("--record-samples")
        .arg(dir.path().join("s.jsonl"))
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(std::fs::read_to_string(&listing).unwrap(), "");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["r.toml", "s.jsonl"]);
}

#[test]
fn a_killed_concadvise_leaves_no_file_behind() {
    let dir = scratch_dir();
    let child = Command::new(env!("CARGO_BIN_EXE_concadvise"))
        .args(["run", "-q", "--report"])
        .arg(dir.path().join("r.toml"))
        .arg("--record-samples")
        .arg(dir.path().join("s.jsonl"))
        .args(["--", "sleep", "30"])
        .spawn()
        .unwrap();
    wait_for_a_child(child.id());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let sleeps = children_of(child.id());
    let mut child = child;
    child.kill().unwrap();
    child.wait().unwrap();
    for pid in sleeps {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert_empty(dir.path());
}

/// The children of every thread of `pid`.
fn children_of(pid: u32) -> Vec<i32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// A directory this test mounted (a tmpfs, or a read-only bind mount), unmounted at the end.
struct Mounted {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mounted {
    /// `mount ARGS... DIR`, or `None` (with a message) where the test may not mount.
    fn new(args: &[&str]) -> Option<Mounted> {
        if !is_root() {
            eprintln!("skipped: mounting needs root");
            return None;
        }
        let dir = scratch_dir();
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        let status = Command::new("mount").args(args).arg(&path).status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("skipped: cannot mount here ({args:?})");
            return None;
        }
        Some(Mounted { path, _dir: dir })
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

#[test]
fn on_a_full_disk_the_summary_is_printed_the_report_saved_elsewhere_and_the_code_kept() {
    let Some(full) = Mounted::new(&["-t", "tmpfs", "-o", "size=64k", "tmpfs"]) else {
        return;
    };
    // Fill it: the check before the run passes (the directory is writable), the write fails.
    let filler = full.path.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 1 << 20]);
    let fallback = scratch_dir();
    let report = full.path.join("r.toml");
    let output = concadvise()
        .args(["run", "--color", "never", "--report"])
        .arg(&report)
        .args(["--", "sh", "-c", "sleep 0.2; exit 3"])
        .env("TMPDIR", fallback.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("concadvise: idle"),
        "summary first: {stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.contains("saved to"))
        .unwrap_or_else(|| panic!("no line names the fallback: {stderr}"));
    assert!(
        line.contains("cannot write") && line.contains("r.toml"),
        "{line}"
    );
    let saved: Vec<PathBuf> = std::fs::read_dir(fallback.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert!(line.contains(&saved[0].display().to_string()), "{line}");
    let kept = read_report(&saved[0]).unwrap();
    assert_eq!(kept.target.exit_code, Some(3));
    assert_eq!(
        std::fs::metadata(&saved[0]).unwrap().mode() & 0o777,
        0o600,
        "a report in a shared directory is its owner's alone"
    );
    assert!(!report.exists());

    // attach: the same fallback, and exit 6 (it has no program's code to pass on).
    let target = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let attach_fallback = scratch_dir();
    let output = concadvise()
        .args(["attach", "-q", "--duration", "300ms", "--report"])
        .arg(full.path.join("a.toml"))
        .arg(target.id().to_string())
        .env("TMPDIR", attach_fallback.path())
        .output()
        .unwrap();
    let mut target = target;
    target.kill().unwrap();
    target.wait().unwrap();
    assert_one_line_error(&output, 6, "saved to");
    assert_eq!(
        std::fs::read_dir(attach_fallback.path()).unwrap().count(),
        1
    );
}

#[test]
fn a_report_stdout_cannot_take_is_saved_elsewhere_and_the_code_kept() {
    let fallback = scratch_dir();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_concadvise"))
        .args(["run", "-q", "--report", "-", "--", "sh", "-c", "exit 4"])
        .env("TMPDIR", fallback.path())
        .stdout(full)
        .output()
        .unwrap();
    assert_one_line_error(&output, 4, "standard output");
    let saved: Vec<PathBuf> = std::fs::read_dir(fallback.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(saved.len(), 1);
    assert_eq!(read_report(&saved[0]).unwrap().target.exit_code, Some(4));
}

#[test]
fn a_read_only_mount_is_refused_before_anything_starts() {
    let source = scratch_dir();
    let source_arg = source.path().display().to_string();
    let Some(read_only) = Mounted::new(&["--bind", "-o", "ro", &source_arg]) else {
        return;
    };
    let report = read_only.path.join("r.toml");
    assert_refused_before_running(&report, &[], "Read-only file system");
    let me = std::process::id().to_string();
    let output = concadvise()
        .args(["attach", &me, "--duration", "30s", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert_one_line_error(&output, 6, "Read-only file system");
}
