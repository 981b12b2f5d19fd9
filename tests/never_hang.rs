//! Never hang, never disturb (issue 19): a FUSE filesystem that stops answering, an executable on FUSE, stopped and traced and frozen programs, discovery without children files.
//!
//! The FUSE tests mount a filesystem made here (the `fuser` crate, mounted directly: they need
//! root and /dev/fuse, and say they were skipped otherwise). `CONCADVISE_UNDER_TEST=PATH` runs
//! them against another concadvise binary (an older build, to show what they catch).

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{read_report, scratch_dir, timing_lock, workload, workload_str};
use concadvise::report::Report;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyEntry, ReplyOpen, Request,
};

/// The concadvise binary under test: this build, or the one `CONCADVISE_UNDER_TEST` names.
fn binary() -> PathBuf {
    match std::env::var_os("CONCADVISE_UNDER_TEST") {
        Some(path) => PathBuf::from(path),
        None => assert_cmd::cargo::cargo_bin("concadvise"),
    }
}

fn concadvise() -> assert_cmd::Command {
    assert_cmd::Command::new(binary())
}

/// Where FUSE cannot be mounted (no /dev/fuse, not root), says so and returns false.
fn fuse_available(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    let device = Path::new("/dev/fuse").exists();
    if !(root && device) {
        eprintln!("{test}: skipped: needs root and /dev/fuse to mount a test filesystem");
    }
    root && device
}

const DATA: INodeNo = INodeNo(2);
const PROG: INodeNo = INodeNo(3);
/// The data file: 20 reads of 64 KiB, each answered after 100 ms: 2 s alone.
const DATA_LEN: u64 = 20 * 64 * 1024;
const READ_DELAY: Duration = Duration::from_millis(100);

/// What the test filesystem serves and what it saw.
struct FsState {
    /// getattr stops answering once a file has been opened (a server that went away).
    hang_getattr_after_open: bool,
    opened: AtomicBool,
    /// Requests never answered: the kernel waits on them (killably) until the unmount.
    held: Mutex<Vec<ReplyAttr>>,
    /// An executable served as `prog` (the workload binary), if any.
    prog: Vec<u8>,
    /// The PIDs (thread IDs) that sent requests.
    callers: Mutex<HashSet<u32>>,
}

impl FsState {
    fn new(hang_getattr_after_open: bool, prog: Vec<u8>) -> Arc<FsState> {
        Arc::new(FsState {
            hang_getattr_after_open,
            opened: AtomicBool::new(false),
            held: Mutex::new(Vec::new()),
            prog,
            callers: Mutex::new(HashSet::new()),
        })
    }

    fn attr(&self, ino: INodeNo) -> FileAttr {
        let (kind, size, perm) = match ino {
            DATA => (FileType::RegularFile, DATA_LEN, 0o644),
            PROG => (FileType::RegularFile, self.prog.len() as u64, 0o755),
            _ => (FileType::Directory, 0, 0o755),
        };
        FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: UNIX_EPOCH,
            mtime: UNIX_EPOCH,
            ctime: UNIX_EPOCH,
            crtime: UNIX_EPOCH,
            kind,
            perm,
            nlink: 1,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn saw(&self, req: &Request) {
        self.callers.lock().unwrap().insert(req.pid());
    }

    fn callers(&self) -> HashSet<u32> {
        std::mem::take(&mut *self.callers.lock().unwrap())
    }

    /// Nothing but the program (and the kernel, pid 0) asked the filesystem anything.
    fn assert_only_asked_by(&self, program: i32) {
        let callers = self.callers();
        assert!(
            callers
                .iter()
                .all(|pid| *pid == program as u32 || *pid == 0),
            "requests from {callers:?}, the program is {program}"
        );
    }

    /// Answers the held requests (with an error: dropping a reply sends EIO).
    fn release_held(&self) {
        self.held.lock().unwrap().clear();
    }
}

/// Runs `command` (stdout and stderr captured) and returns its output, or, if it is still
/// running after `limit`, calls `unstick`, kills it and returns None.
fn output_within(
    mut command: std::process::Command,
    limit: Duration,
    unstick: impl FnOnce(),
) -> Option<std::process::Output> {
    use std::process::Stdio;
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    let deadline = Instant::now() + limit;
    while !waiter.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if waiter.is_finished() {
        return Some(waiter.join().unwrap());
    }
    unstick();
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = waiter.join();
    None
}

struct TestFs(Arc<FsState>);

impl Filesystem for TestFs {
    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.0.saw(req);
        let ino = match name.to_str() {
            Some("data") => DATA,
            Some("prog") if !self.0.prog.is_empty() => PROG,
            _ => return reply.error(Errno::ENOENT),
        };
        if parent != INodeNo::ROOT {
            return reply.error(Errno::ENOENT);
        }
        // TTL 0: the kernel asks again every time.
        reply.entry(&Duration::ZERO, &self.0.attr(ino), Generation(0));
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.0.saw(req);
        if self.0.hang_getattr_after_open && self.0.opened.load(Ordering::SeqCst) {
            self.0.held.lock().unwrap().push(reply);
            return;
        }
        reply.attr(&Duration::ZERO, &self.0.attr(ino));
    }

    fn open(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.0.saw(req);
        self.0.opened.store(true, Ordering::SeqCst);
        // Direct I/O for the data file: its reads need no attributes (no getattr), so the
        // program alone never notices that getattr hangs.
        let flags = if ino == DATA {
            FopenFlags::FOPEN_DIRECT_IO
        } else {
            FopenFlags::empty()
        };
        reply.opened(FileHandle(0), flags);
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.0.saw(req);
        if ino == PROG {
            let start = (offset as usize).min(self.0.prog.len());
            let end = (start + size as usize).min(self.0.prog.len());
            return reply.data(&self.0.prog[start..end]);
        }
        std::thread::sleep(READ_DELAY);
        let left = DATA_LEN.saturating_sub(offset).min(u64::from(size));
        reply.data(&vec![7u8; left as usize]);
    }
}

/// A mounted test filesystem, unmounted (lazily: held requests are aborted) when dropped.
struct Mounted {
    dir: tempfile::TempDir,
    state: Arc<FsState>,
    session: Option<fuser::BackgroundSession>,
}

impl Mounted {
    /// Mounted as fuse.SUBTYPE (the kernel records the subtype in mountinfo).
    fn new(state: Arc<FsState>, subtype: &str) -> Mounted {
        let dir = scratch_dir();
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            MountOption::FSName("concadvise-test".into()),
            MountOption::CUSTOM(format!("subtype={subtype}")),
        ];
        let session = fuser::spawn_mount(TestFs(Arc::clone(&state)), dir.path(), &config)
            .expect("mounting the test filesystem");
        Mounted {
            dir,
            state,
            session: Some(session),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The mount point as mountinfo shows it.
    fn point(&self) -> String {
        std::fs::canonicalize(self.dir.path().parent().unwrap())
            .unwrap()
            .join(self.dir.path().file_name().unwrap())
            .display()
            .to_string()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.dir.path(), nix::mount::MntFlags::MNT_DETACH);
        if let Some(session) = self.session.take() {
            let _ = session.join();
        }
        self.state.held.lock().unwrap().clear();
    }
}

/// The time the workload's `read` mode printed it ended (Unix seconds).
fn ended_at(stdout: &[u8]) -> f64 {
    let text = String::from_utf8_lossy(stdout);
    text.lines()
        .find_map(|line| line.split("ended at ").nth(1))
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("no end time in {text:?}"))
}

fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn a_filesystem_that_stops_answering_neither_hangs_nor_slows_the_program() {
    if !fuse_available("a_filesystem_that_stops_answering") {
        return;
    }
    let _timing = timing_lock();
    // Not a network subtype: its waits are disk.
    let fs = Mounted::new(FsState::new(true, Vec::new()), "concadvise-test");
    let data = fs.path("data");
    let read =
        |cmd: &mut assert_cmd::Command| cmd.timeout(Duration::from_secs(30)).output().unwrap();
    let started = Instant::now();
    let alone = read(
        assert_cmd::Command::new(workload())
            .args(["read", "--file"])
            .arg(&data),
    );
    let alone_s = started.elapsed().as_secs_f64();
    assert!(alone.status.success(), "{alone:?}");
    assert!(alone_s < 5.0, "alone it took {alone_s:.1} s");
    fs.state.callers();

    let dir = scratch_dir();
    let report_path = dir.path().join("report.toml");
    let mut run = std::process::Command::new(binary());
    run.args(["run", "-q", "--report"])
        .arg(&report_path)
        .arg("--")
        .arg(workload())
        .args(["read", "--file"])
        .arg(&data);
    // A concadvise stuck in the filesystem cannot even be killed (a FUSE request already
    // read by the daemon waits uninterruptibly): answer the held requests to let it go.
    let under = output_within(run, Duration::from_secs(15), || fs.state.release_held())
        .unwrap_or_else(|| {
            panic!("concadvise did not finish within 15 s (the program alone: {alone_s:.1} s)")
        });
    assert!(under.status.success(), "{under:?}");
    let report: Report = read_report(&report_path).expect("a report");
    let written = unix_seconds(std::fs::metadata(&report_path).unwrap().modified().unwrap());
    let program_ended = ended_at(&under.stdout);
    assert!(
        (report.time.wall_s - alone_s).abs() < 0.5,
        "under concadvise {:.2} s, alone {alone_s:.2} s",
        report.time.wall_s
    );
    assert!(
        written - program_ended < 1.0,
        "report written {:.2} s after the program ended",
        written - program_ended
    );
    // The wait is disk (a test FUSE mount is not a network filesystem), on that mount.
    let wait = report
        .threads
        .iter()
        .flat_map(|t| &t.waits)
        .find(|w| w.mount.is_some())
        .unwrap_or_else(|| panic!("no wait names a mount: {:?}", report.threads));
    assert_eq!(wait.kind, "disk", "{wait:?}");
    assert_eq!(wait.mount.as_deref(), Some(fs.point().as_str()));
    assert_eq!(wait.filesystem.as_deref(), Some("fuse.concadvise-test"));
    assert!(wait.seconds > 1.0, "{wait:?}");
    assert!(report.wall.network_fs_s == 0.0 && report.wall.disk_s > 1.0);
    assert!(
        report.sampling.longest_stall_s < 0.5,
        "{:?}",
        report.sampling
    );
    fs.state.assert_only_asked_by(report.target.pid);
}

#[test]
fn a_fuse_mount_of_a_network_kind_is_a_network_fs_wait_with_its_own_advice() {
    if !fuse_available("a_fuse_mount_of_a_network_kind") {
        return;
    }
    let _timing = timing_lock();
    // What sshfs mounts look like in mountinfo: fuse.sshfs.
    let fs = Mounted::new(FsState::new(false, Vec::new()), "sshfs");
    let dir = scratch_dir();
    let report_path = dir.path().join("report.toml");
    let output = concadvise()
        .args(["run", "-q", "--report"])
        .arg(&report_path)
        .args(["--", &workload_str(), "read", "--file"])
        .arg(fs.path("data"))
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let report = read_report(&report_path).unwrap();
    assert!(report.wall.network_fs_s > 1.5, "{:?}", report.wall);
    assert_eq!(report.wall.disk_s, 0.0, "{:?}", report.wall);
    assert_eq!(report.verdict.class, "io-bound");
    assert_eq!(report.verdict.dominant_wait.as_deref(), Some("network_fs"));
    assert_eq!(report.recommendation.situation, "io_network_fs");
    assert_eq!(report.recommendation.model, "none");
    assert!(
        report.timeline.states.contains('f'),
        "{}",
        report.timeline.states
    );
    let wait = &common::thread_named(&report, "workload").waits[0];
    assert_eq!(wait.kind, "network_fs");
    assert_eq!(wait.mount.as_deref(), Some(fs.point().as_str()));
    assert_eq!(wait.filesystem.as_deref(), Some("fuse.sshfs"));
    assert_eq!(wait.source.as_deref(), Some("concadvise-test"));
}

#[test]
fn an_executable_on_a_fuse_mount_is_never_read_by_concadvise() {
    if !fuse_available("an_executable_on_a_fuse_mount") {
        return;
    }
    let fs = Mounted::new(
        FsState::new(false, std::fs::read(workload()).unwrap()),
        "concadvise-test",
    );
    let prog = fs.path("prog");
    let dir = scratch_dir();
    let report_path = dir.path().join("report.toml");
    let output = concadvise()
        .args(["run", "-q", "--report"])
        .arg(&report_path)
        .arg("--")
        .arg(&prog)
        .args(["sleep", "--seconds", "1"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let report = read_report(&report_path).unwrap();
    fs.state.assert_only_asked_by(report.target.pid);
    // Its Go build info could not be read (never on FUSE): counted, not guessed.
    assert!(
        report.sampling.unresolved_files >= 1,
        "{:?}",
        report.sampling
    );
    assert_eq!(report.target.runtime, "native");
}

/// The PID of the first child of `parent` (waits up to 10 s for it).
fn child_of(parent: u32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        for task in std::fs::read_dir(format!("/proc/{parent}/task"))
            .unwrap()
            .flatten()
        {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            if let Some(pid) = children.split_whitespace().next() {
                return pid.parse().unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{parent} started no child within 10 s");
}

/// Starts `concadvise run -q --report FILE -- command...` in the background.
fn start_run(report: &Path, command: &[&str]) -> std::process::Child {
    std::process::Command::new(binary())
        .args(["run", "-q", "--report"])
        .arg(report)
        .arg("--")
        .args(command)
        .spawn()
        .unwrap()
}

fn finish(mut run: std::process::Child, report: &Path) -> Report {
    let status = run.wait().unwrap();
    assert!(status.success(), "{status:?}");
    read_report(report).unwrap()
}

fn assert_about_two_seconds_stopped(report: &Report) {
    let stopped = report.wall.stopped_s;
    assert!(
        (1.6..=2.6).contains(&stopped),
        "stopped {stopped:.2} s: {:?}",
        report.wall
    );
    assert!(report.breakdown.stopped_s >= 1.6, "{:?}", report.breakdown);
    assert_eq!(report.verdict.class, "stopped", "{:?}", report.verdict);
    assert_eq!(report.recommendation.situation, "stopped");
    assert!(
        report.timeline.states.contains('h'),
        "{}",
        report.timeline.states
    );
}

#[test]
fn a_program_stopped_by_sigstop_is_stopped_not_idle() {
    let _timing = timing_lock();
    let dir = scratch_dir();
    let report_path = dir.path().join("report.toml");
    // The shell stops itself; a child of it sends SIGCONT 2 s later.
    let output = concadvise()
        .args(["run", "--report"])
        .arg(&report_path)
        .args([
            "--",
            "sh",
            "-c",
            "(sleep 2; kill -CONT $$) & kill -STOP $$; wait",
        ])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let report = read_report(&report_path).unwrap();
    assert_about_two_seconds_stopped(&report);
    assert_eq!(report.stops[0].by, "signal", "{:?}", report.stops);
    let summary = String::from_utf8_lossy(&output.stderr);
    assert!(summary.starts_with("concadvise: stopped"), "{summary}");
    assert!(summary.contains("a stop signal"), "{summary}");
    assert!(!summary.contains("idle"), "{summary}");
}

#[test]
fn a_program_held_by_a_tracer_is_stopped_and_the_tracer_named() {
    use nix::sys::ptrace;
    use nix::sys::wait::{waitpid, WaitPidFlag};
    use nix::unistd::Pid;
    let _timing = timing_lock();
    let dir = scratch_dir();
    let report_path = dir.path().join("report.toml");
    let run = start_run(&report_path, &[&workload_str(), "sleep", "--seconds", "1"]);
    let program = Pid::from_raw(child_of(run.id()));
    std::thread::sleep(Duration::from_millis(300));
    // Seize and interrupt: the program stops in a trap (state t) until we let it go.
    ptrace::seize(program, ptrace::Options::empty()).unwrap();
    ptrace::interrupt(program).unwrap();
    waitpid(program, Some(WaitPidFlag::__WALL)).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    ptrace::detach(program, None).unwrap();
    let report = finish(run, &report_path);
    assert_about_two_seconds_stopped(&report);
    let tracer = nix::unistd::gettid().as_raw();
    let stop = &report.stops[0];
    assert_eq!(
        (stop.by.as_str(), stop.tracer_pid),
        ("tracer", Some(tracer)),
        "{:?}",
        report.stops
    );
}

/// A freezer cgroup of its own, removed when dropped: v1 (freezer.state) or v2 (cgroup.freeze).
struct Freezer {
    dir: PathBuf,
    v2: bool,
}

impl Freezer {
    fn new() -> Option<Freezer> {
        let name = format!("concadvise-test-{}", std::process::id());
        let (base, v2) = if Path::new("/sys/fs/cgroup/freezer/freezer.state").exists()
            || Path::new("/sys/fs/cgroup/freezer/tasks").exists()
        {
            ("/sys/fs/cgroup/freezer", false)
        } else if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            ("/sys/fs/cgroup", true)
        } else {
            return None;
        };
        let dir = Path::new(base).join(name);
        std::fs::create_dir(&dir).ok()?;
        Some(Freezer { dir, v2 })
    }

    fn add(&self, pid: i32) {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).unwrap();
    }

    fn freeze(&self, frozen: bool) {
        if self.v2 {
            std::fs::write(
                self.dir.join("cgroup.freeze"),
                if frozen { "1" } else { "0" },
            )
        } else {
            std::fs::write(
                self.dir.join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
            )
        }
        .unwrap();
    }
}

impl Drop for Freezer {
    fn drop(&mut self) {
        self.freeze(false);
        // Empty once the program has exited.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_program_in_a_frozen_cgroup_is_stopped_and_the_cgroup_named() {
    let Some(freezer) = nix::unistd::geteuid()
        .is_root()
        .then(Freezer::new)
        .flatten()
    else {
        eprintln!("a_program_in_a_frozen_cgroup: skipped: needs root and a cgroup freezer");
        return;
    };
    let _timing = timing_lock();
    let dir = scratch_dir();
    let report_path = dir.path().join("report.toml");
    let run = start_run(&report_path, &[&workload_str(), "sleep", "--seconds", "3"]);
    let program = child_of(run.id());
    freezer.add(program);
    std::thread::sleep(Duration::from_millis(300));
    freezer.freeze(true);
    std::thread::sleep(Duration::from_secs(2));
    freezer.freeze(false);
    let report = finish(run, &report_path);
    let stopped = report.wall.stopped_s;
    assert!(
        (1.6..=2.6).contains(&stopped),
        "stopped {stopped:.2} s: {:?}",
        report.wall
    );
    assert_eq!(report.verdict.class, "stopped", "{:?}", report.verdict);
    let stop = &report.stops[0];
    assert_eq!(stop.by, "frozen_cgroup", "{:?}", report.stops);
    assert_eq!(
        stop.cgroup.as_deref(),
        Some(freezer.dir.to_string_lossy().as_ref())
    );
}

/// `sh` running `sh` running the workload: three levels of processes.
fn three_levels(discovery: &str) -> Report {
    let inner = format!("{} cpu --seconds 1.5; true", workload_str());
    let middle = format!("sh -c '{inner}'; true");
    let (report, output) = {
        let dir = scratch_dir();
        let report_path = dir.path().join("report.toml");
        let output = concadvise()
            .env("CONCADVISE_DISCOVERY", discovery)
            .args(["run", "-q", "--report"])
            .arg(&report_path)
            .args(["--", "sh", "-c", &middle])
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap();
        (read_report(&report_path), output)
    };
    assert!(output.status.success(), "{output:?}");
    report.unwrap()
}

#[test]
fn discovery_by_scanning_proc_follows_a_tree_as_the_children_files_do() {
    let _timing = timing_lock();
    for discovery in ["scan", "children"] {
        let report = three_levels(discovery);
        assert_eq!(report.sampling.discovery, discovery);
        assert_eq!(
            report.sampling.processes_seen, 3,
            "{discovery}: {:?}",
            report.processes
        );
        let by_pid = |pid| report.processes.iter().find(|p| p.pid == pid);
        let work = report
            .processes
            .iter()
            .find(|p| p.command.first().is_some_and(|c| c.ends_with("workload")))
            .unwrap_or_else(|| panic!("{discovery}: no workload in {:?}", report.processes));
        let middle = by_pid(work.ppid).expect("the middle shell");
        assert_eq!(middle.command[0], "sh");
        assert_eq!(middle.ppid, report.target.pid, "{discovery}");
        assert!(by_pid(report.target.pid).is_some());
        // Sampled: the workload's threads did most of the tree's CPU.
        assert!(
            work.cpu_s >= 0.5 * report.time.cpu_s && work.cpu_s > 0.3,
            "{discovery}: {work:?}, tree {:?}",
            report.time
        );
    }
}

#[test]
fn a_discovery_that_does_not_exist_is_refused_before_anything_runs() {
    let output = concadvise()
        .env("CONCADVISE_DISCOVERY", "psychic")
        .args(["run", "--", "true"])
        .output()
        .unwrap();
    common::assert_one_line_error(&output, 125, "CONCADVISE_DISCOVERY");
}
