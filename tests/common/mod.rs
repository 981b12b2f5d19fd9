//! Helpers for the integration tests: the binaries, a lock for timing-sensitive runs, report parsing.

#![allow(dead_code)] // each test crate uses a different subset

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use assert_cmd::Command;
use concadvise::report::Report;

/// Tests that measure time run one at a time, so they do not load the 2 cores for each other.
static TIMING: Mutex<()> = Mutex::new(());

pub fn timing_lock() -> MutexGuard<'static, ()> {
    TIMING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Million loop iterations of `workload cpu --work` for about a second of CPU on this project's
/// VM (debug build: about 230 million a second). CPU assertions use fixed work: how much CPU
/// a fixed amount of work takes does not depend on how busy the machine is; how much work
/// fits in a wall-clock second does.
pub const WORK_1S: u64 = 230;

/// Thread-seconds the tree wanted a CPU (on one, or queued for one) per wall second: the
/// number of cores its runnable threads asked for, whatever the machine's load gave them.
/// Asserted on wall-clock loops (`workload cpu --seconds S`), which want their cores until
/// the same deadline on any machine.
pub fn cores_wanted(report: &Report) -> f64 {
    (report.breakdown.cpu_s + report.breakdown.runqueue_s) / report.time.wall_s
}

/// The Python interpreter itself (`sys.executable`), not a wrapper such as a pyenv shim, whose
/// start-up (shells and pipes) would be a phase of its own on a busy machine.
pub fn python3() -> String {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let output = std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    })
    .clone()
}

/// The example workload program (cargo builds examples for `cargo test`).
pub fn workload() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir.join("examples").join("workload");
    assert!(
        path.exists(),
        "{} missing: run `cargo test` (it builds examples)",
        path.display()
    );
    path
}

pub fn workload_str() -> String {
    workload().display().to_string()
}

pub fn concadvise() -> Command {
    Command::cargo_bin("concadvise").unwrap()
}

/// A scratch directory on the same disk as the build (not a tmpfs).
pub fn scratch_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// Runs `concadvise run -q --report FILE -- command...` and returns the parsed report and the
/// process output.
pub fn run_measured(extra_args: &[&str], command: &[&str]) -> (Report, Output) {
    let dir = scratch_dir();
    let report_path = dir.path().join("report.toml");
    let output = concadvise()
        .arg("run")
        .arg("-q")
        .arg("--report")
        .arg(&report_path)
        .args(extra_args)
        .arg("--")
        .args(command)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let report = read_report(&report_path).unwrap_or_else(|| {
        panic!(
            "no report; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (report, output)
}

pub fn read_report(path: &Path) -> Option<Report> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(toml::from_str(&text).expect("report is valid TOML of the schema"))
}

/// A deliberately slow server on loopback: each request line is answered after `delay`.
/// Runs on threads of the test process until the test ends.
pub fn slow_server(delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                for line in BufReader::new(stream).lines() {
                    if line.is_err() {
                        break;
                    }
                    std::thread::sleep(delay);
                    if writer.write_all(b"ok\n").is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// The first listed thread whose name is `name`.
pub fn thread_named<'a>(report: &'a Report, name: &str) -> &'a concadvise::report::ThreadSection {
    report
        .threads
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no thread named {name} in {:?}", report.threads))
}

/// The run failed with `code` and exactly one line on stderr that mentions `mentions`.
pub fn assert_one_line_error(output: &Output, code: i32, mentions: &str) {
    assert_eq!(output.status.code(), Some(code), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(mentions), "{stderr}");
}

/// Nothing was left in `dir` (no report, no temporary file).
pub fn assert_empty(dir: &Path) {
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
}

/// A deliberately slow HTTP/1.1 server on loopback: every request is answered after `delay`,
/// one connection at a time per thread, `Connection: close`. Returns its URL.
pub fn slow_http_server(delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                // Read the request head up to its blank line.
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line == "\r\n" || line == "\n" {
                        break;
                    }
                    line.clear();
                }
                std::thread::sleep(delay);
                let _ = writer.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            });
        }
    });
    url
}

/// Waits (up to 10 s) until process `pid` has a child: concadvise has started the program.
pub fn wait_for_a_child(pid: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten();
        let has_child = tasks.flatten().any(|task| {
            std::fs::read_to_string(task.path().join("children"))
                .is_ok_and(|children| !children.trim().is_empty())
        });
        if has_child {
            // And its signal handlers are installed (they are before the spawn).
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("process {pid} started no child within 10 s");
}

/// The path of a file in examples/.
pub fn example(path: &str) -> String {
    format!("{}/examples/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// `concadvise attach PID --duration 1s` run as user `nobody` (the tests run as root: a
/// process of another user, without ptrace access to it); its output and its report.
pub fn attach_as_nobody(pid: u32) -> (Output, Report) {
    use std::os::unix::process::CommandExt;
    let dir = scratch_dir();
    // nobody must be able to create the report in this directory.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let path = dir.path().join("r.toml");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_concadvise"))
        .args(["attach", "--report"])
        .arg(&path)
        .args([&pid.to_string(), "--duration", "1s", "--color", "never"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let report = read_report(&path).unwrap();
    (output, report)
}

/// The requests per second examples/python/load_generator.py printed.
fn rps(output: &Output) -> f64 {
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("rps = "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rps in {text:?}"))
}

/// A line server (`server` PORTFILE `mode` 20, as examples/python/sleepy_server.py and
/// examples/node/line_server.js take) under 20 clients of examples/python/load_generator.py
/// for 4 s, attached to for 2 s of it: the report, its path, and the requests per second the
/// clients got.
pub fn line_server_under_load(dir: &Path, mode: &str, server: &[String]) -> (Report, PathBuf, f64) {
    line_server_under(dir, mode, server, Load::persistent(20))
}

/// The clients of examples/python/load_generator.py: how many, and whether each opens a new
/// connection for every line (a server that answers one request per connection).
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub clients: u32,
    pub reconnect: bool,
}

impl Load {
    pub fn persistent(clients: u32) -> Load {
        Load {
            clients,
            reconnect: false,
        }
    }

    pub fn reconnecting(clients: u32) -> Load {
        Load {
            clients,
            reconnect: true,
        }
    }
}

/// `line_server_under_load` with the load given.
pub fn line_server_under(
    dir: &Path,
    mode: &str,
    server: &[String],
    load: Load,
) -> (Report, PathBuf, f64) {
    let tag = format!("{mode}-{}", load.clients);
    let port_file = dir.join(format!("{tag}.port"));
    let mut server = std::process::Command::new(&server[0])
        .args(&server[1..])
        .arg(&port_file)
        .args([mode, "20"])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let port = loop {
        if let Ok(port) = std::fs::read_to_string(&port_file) {
            break port;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let load = std::process::Command::new(python3())
        .arg(example("python/load_generator.py"))
        .args([
            format!("127.0.0.1:{port}"),
            load.clients.to_string(),
            "4".into(),
        ])
        .args(load.reconnect.then_some("reconnect"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let report_path = dir.join(format!("{tag}.toml"));
    let attached = concadvise()
        .args(["attach", "-q", "--duration", "2s", "--report"])
        .arg(&report_path)
        .arg(server.id().to_string())
        .output()
        .unwrap();
    assert!(attached.status.success(), "{attached:?}");
    let load = load.wait_with_output().unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    (read_report(&report_path).unwrap(), report_path, rps(&load))
}
