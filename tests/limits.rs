//! What limits a program from outside its code, measured live: a cgroup CPU quota, one sync
//! per write, and the process of a pipeline the others wait on.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A cgroup with a CPU quota of half a core, made by the test (root only), removed on drop.
struct HalfCoreCgroup {
    dir: PathBuf,
}

impl HalfCoreCgroup {
    /// `None` (with the reason printed) where it cannot be made: not root, no cpu controller.
    fn create() -> Option<HalfCoreCgroup> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: making a cgroup needs root");
            return None;
        }
        let name = format!("concadvise-test-{}", std::process::id());
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        let made = if v1.join("cpu.cfs_quota_us").exists() {
            let dir = v1.join(&name);
            std::fs::create_dir(&dir)
                .and_then(|()| std::fs::write(dir.join("cpu.cfs_period_us"), "100000"))
                .and_then(|()| std::fs::write(dir.join("cpu.cfs_quota_us"), "50000"))
                .map(|()| dir)
        } else {
            let root = Path::new("/sys/fs/cgroup");
            let _ = std::fs::write(root.join("cgroup.subtree_control"), "+cpu");
            let dir = root.join(&name);
            std::fs::create_dir(&dir)
                .and_then(|()| std::fs::write(dir.join("cpu.max"), "50000 100000"))
                .map(|()| dir)
        };
        match made {
            Ok(dir) => Some(HalfCoreCgroup { dir }),
            Err(e) => {
                eprintln!("skipped: cannot make a cgroup with a CPU quota here: {e}");
                None
            }
        }
    }

    /// A shell command that moves itself into the cgroup, then runs `command`.
    fn run_inside(&self, command: &str) -> String {
        format!(
            "echo $$ > {}/cgroup.procs && exec {command}",
            self.dir.display()
        )
    }
}

impl Drop for HalfCoreCgroup {
    fn drop(&mut self) {
        // Empty by now (the program exited); a cgroup directory is removed with rmdir.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[test]
fn a_cpu_loop_under_a_half_core_quota_is_throttled_and_told_the_quota_is_the_limit() {
    let _lock = timing_lock();
    let Some(cgroup) = HalfCoreCgroup::create() else {
        return;
    };
    let command = cgroup.run_inside(&format!("{} cpu --seconds 3", workload_str()));
    let (report, output) = run_measured(&[], &["sh", "-c", &command]);
    assert!(output.status.success(), "{output:?}");
    let wall = report.time.wall_s;
    assert!(
        report.wall.throttled_s >= 0.3 * wall,
        "{:?} of {wall}",
        report.wall
    );
    assert!(
        (0.3..=0.7).contains(&report.verdict.computing_share),
        "{:?}",
        report.verdict
    );
    assert_eq!(report.machine.cpu_quota_cores, Some(0.5));
    assert!(report.target.cgroup.is_some());
    assert_eq!(report.recommendation.situation, "cpu_quota", "{report:#?}");
    assert_eq!(report.recommendation.model, "none");
    assert!(report.recommendation.speedup_ceiling.unwrap() <= 1.1);
}

#[test]
fn the_same_loop_without_a_quota_is_never_throttled() {
    let _lock = timing_lock();
    let (report, _) = run_measured(&[], &[&workload_str(), "cpu", "--seconds", "1"]);
    assert_eq!(report.breakdown.throttled_s, 0.0, "{:?}", report.breakdown);
    assert_eq!(report.machine.cpu_quota_cores, None);
    assert_ne!(report.recommendation.situation, "cpu_quota");
}

#[test]
fn sqlite_autocommit_inserts_and_dsync_writes_are_sync_bound_and_buffered_writes_are_not() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    let sql: String = std::iter::once("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n".into())
        .chain((0..1500).map(|i| format!("INSERT INTO t(v) VALUES ('row {i}');\n")))
        .collect();
    let script = dir.path().join("inserts.sql");
    std::fs::write(&script, sql).unwrap();
    let db = dir.path().join("t.db");
    let read = format!(".read {}", script.display());
    let (sqlite, output) = run_measured(&[], &["sqlite3", &db.display().to_string(), &read]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        sqlite.recommendation.situation, "sync_bound",
        "{:?} {:?}",
        sqlite.verdict, sqlite.breakdown
    );
    assert_eq!(sqlite.recommendation.model, "none");
    // The syncs and each commit's own file work (the rollback journal created and deleted
    // per INSERT: on a filesystem mounted with `discard`, its unlink waits for the device,
    // up to 60% of the disk wait sampled here) are the disk time.
    let commits = sqlite.breakdown.disk_sync_s + sqlite.breakdown.disk_metadata_s;
    assert!(sqlite.breakdown.disk_sync_s > 0.0, "{:?}", sqlite.breakdown);
    assert!(
        commits > 0.7 * sqlite.breakdown.disk_s,
        "{:?}",
        sqlite.breakdown
    );

    let out = format!("of={}", dir.path().join("dsync.bin").display());
    let (dd, _) = run_measured(
        &[],
        &[
            "dd",
            "if=/dev/zero",
            &out,
            "bs=4k",
            "count=10000",
            "oflag=dsync",
        ],
    );
    assert_eq!(
        dd.recommendation.situation, "sync_bound",
        "{:?} {:?} {:?}",
        dd.verdict, dd.breakdown, dd.wall
    );

    let out = format!("of={}", dir.path().join("buffered.bin").display());
    let (buffered, _) = run_measured(&[], &["dd", "if=/dev/zero", &out, "bs=4k", "count=20000"]);
    assert_ne!(
        buffered.recommendation.situation, "sync_bound",
        "{:?}",
        buffered.breakdown
    );
    assert_eq!(buffered.breakdown.disk_sync_s, 0.0);
}

#[test]
fn in_a_pipeline_the_compressor_is_the_stage_the_others_wait_on() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    let input = dir.path().join("input.txt");
    // Text that compresses slowly: numbers in a scrambled order, about 6 MB.
    let text: String = (0u64..600_000)
        .map(|i| format!("{}\n", i.wrapping_mul(2_654_435_761) % 1_000_003))
        .collect();
    std::fs::write(&input, text).unwrap();
    let pipeline = format!("cat {0} {0} | xz -T1 -6 | wc -c", input.display());
    let (report, output) = run_measured(&[], &["sh", "-c", &pipeline]);
    assert!(output.status.success(), "{output:?}");
    let bottleneck = report
        .bottleneck
        .as_ref()
        .unwrap_or_else(|| panic!("{report:#?}"));
    assert_eq!(bottleneck.command[0], "xz", "{bottleneck:?}");
    assert_eq!(bottleneck.kind, "cpu");
    // What to change is that stage, a tool with a threads option, not the code around it.
    let recommendation = &report.recommendation;
    assert!(
        recommendation.how.starts_with("Give xz more cores: xz -T0"),
        "{recommendation:?}"
    );
}

#[test]
fn after_a_sleep_the_cpu_work_is_the_bottleneck() {
    let _lock = timing_lock();
    let script = format!("sleep 0.5; {} cpu --work 1500", workload_str());
    let (report, _) = run_measured(&[], &["sh", "-c", &script]);
    let bottleneck = report
        .bottleneck
        .as_ref()
        .unwrap_or_else(|| panic!("{report:#?}"));
    assert!(
        bottleneck.command[0].ends_with("workload"),
        "{bottleneck:?}"
    );
    assert_eq!(bottleneck.kind, "cpu");
}

#[test]
fn a_producer_waits_on_its_slow_consumer_over_a_unix_socketpair() {
    let _lock = timing_lock();
    let (report, output) = run_measured(
        &[],
        &[
            python3().as_str(),
            &example("python/socketpair_pipeline.py"),
            "500",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let bottleneck = report
        .bottleneck
        .as_ref()
        .unwrap_or_else(|| panic!("{report:#?}"));
    // The consumer is the forked child: not the launched process.
    assert_ne!(bottleneck.pid, report.target.pid, "{bottleneck:?}");
    assert!(
        report
            .processes
            .iter()
            .any(|p| p.pid == bottleneck.pid && p.ppid == report.target.pid),
        "{bottleneck:?} {:?}",
        report.processes
    );
}

#[test]
fn a_client_of_a_server_outside_the_tree_names_it_and_says_to_attach_to_it() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    let socket = dir.path().join("server.sock").display().to_string();
    let mut server = std::process::Command::new(python3())
        .args([&example("python/unix_echo_server.py"), &socket, "0.02"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert_eq!(ready.trim(), "ready");
    let (report, output) = run_measured(
        &[],
        &[
            python3().as_str(),
            &example("python/unix_client.py"),
            &socket,
            "50",
        ],
    );
    let _ = server.kill();
    let _ = server.wait();
    assert!(output.status.success(), "{output:?}");
    let bottleneck = report
        .bottleneck
        .as_ref()
        .unwrap_or_else(|| panic!("{report:#?}"));
    assert_eq!(bottleneck.pid, server.id() as i32, "{bottleneck:?}");
    assert_eq!(bottleneck.kind, "outside", "{bottleneck:?}");
    assert!(
        bottleneck
            .command
            .iter()
            .any(|a| a.ends_with("unix_echo_server.py")),
        "{bottleneck:?}"
    );
    let attach = format!("concadvise attach {}", server.id());
    assert!(bottleneck.reason.contains(&attach), "{bottleneck:?}");
    // No verdict is drawn from the server's own time, which was not measured.
    assert_eq!(
        report.verdict.dominant_wait.as_deref(),
        Some("ipc"),
        "{:?}",
        report.verdict
    );
}

/// An ext4 filesystem on a loop device over a file in /dev/shm (memory: the test loads no
/// real disk), made by the test (root only), unmounted and detached on drop.
struct LoopDisk {
    /// The loop device's kernel name (loop3), as the report's `device`.
    name: String,
    device: String,
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl LoopDisk {
    /// `None` (with the reason printed) where it cannot be made: not root, no loop devices, no
    /// mkfs.ext4.
    fn create() -> Option<LoopDisk> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: making a loop device needs root");
            return None;
        }
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::tempdir_in(base).unwrap();
        let image = dir.path().join("disk.img");
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).unwrap();
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(256 << 20))
            .unwrap();
        let run = |program: &str, args: &[&str]| {
            std::process::Command::new(program)
                .args(args)
                .output()
                .ok()
                .filter(|out| out.status.success())
                .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        let image_arg = image.display().to_string();
        if run("mkfs.ext4", &["-q", "-F", &image_arg]).is_none() {
            eprintln!("skipped: mkfs.ext4 is not there or failed");
            return None;
        }
        let Some(device) = run("losetup", &["--find", "--show", &image_arg]) else {
            eprintln!("skipped: no loop device could be set up (losetup --find --show)");
            return None;
        };
        let mount_arg = mount.display().to_string();
        if run("mount", &[&device, &mount_arg]).is_none() {
            let _ = run("losetup", &["-d", &device]);
            eprintln!("skipped: cannot mount {device}");
            return None;
        }
        Some(LoopDisk {
            name: device.trim_start_matches("/dev/").to_string(),
            device,
            mount,
            _dir: dir,
        })
    }

    fn writers(&self, threads: usize, block_kib: usize, seconds: f64) -> Vec<String> {
        [
            workload_str(),
            "direct-writes".into(),
            "--dir".into(),
            self.mount.display().to_string(),
            "--threads".into(),
            threads.to_string(),
            "--block-kib".into(),
            block_kib.to_string(),
            "--seconds".into(),
            seconds.to_string(),
        ]
        .into()
    }

    /// The report's entry for this disk.
    fn in_report<'a>(
        &self,
        report: &'a concadvise::report::Report,
    ) -> &'a concadvise::report::DeviceSection {
        report
            .devices
            .iter()
            .find(|d| d.device.as_deref() == Some(self.name.as_str()))
            .unwrap_or_else(|| panic!("{} not in {:?}", self.name, report.devices))
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        let _ = nix::mount::umount(&self.mount);
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.device])
            .status();
    }
}

/// Other writers on the disk, outside the measured tree, stopped on drop.
struct Background(std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_disk_kept_busy_by_other_writers_is_saturated_and_more_concurrency_is_not_advised() {
    let _lock = timing_lock();
    let Some(disk) = LoopDisk::create() else {
        return;
    };
    let load = disk.writers(8, 256, 12.0);
    let background = Background(
        std::process::Command::new(&load[0])
            .args(&load[1..])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let program = disk.writers(1, 4, 2.0);
    let program: Vec<&str> = program.iter().map(String::as_str).collect();
    let (report, output) = run_measured(&[], &program);
    drop(background);
    assert!(output.status.success(), "{output:?}");
    let device = disk.in_report(&report);
    let busy = device.busy_share.unwrap();
    let (queue, own) = (device.in_flight.unwrap(), device.own_in_flight.unwrap());
    assert!(busy >= 0.9, "{device:?}");
    assert!(queue - own >= own.max(1.0), "{device:?}");
    assert!(device.saturated, "{device:?}");
    assert_eq!(device.mounts, [disk.mount.display().to_string()]);
    let advice = &report.recommendation;
    assert_eq!(advice.situation, "disk_saturated", "{:?}", report.verdict);
    assert_eq!(advice.model, "none");
    assert!(
        advice.reasons[0].contains("disk is saturated")
            && advice.reasons[0].contains("more concurrency will not make it faster"),
        "{:?}",
        advice.reasons
    );
    assert!(advice.speedup_ceiling.unwrap() <= 1.12, "{advice:?}");
    let expected = advice.expected.as_ref().unwrap();
    assert_eq!(expected.speedup, Some(1.0), "{expected:?}");
    assert!(expected.high.unwrap() <= 1.1 * 1.5, "{expected:?}");
}

#[test]
fn a_disk_busy_only_with_the_program_s_own_writes_is_not_saturated() {
    let _lock = timing_lock();
    let Some(disk) = LoopDisk::create() else {
        return;
    };
    let program = disk.writers(1, 4, 2.0);
    let program: Vec<&str> = program.iter().map(String::as_str).collect();
    let (report, output) = run_measured(&[], &program);
    assert!(output.status.success(), "{output:?}");
    let device = disk.in_report(&report);
    assert!(
        device.busy_share.is_some() && device.waited_s.unwrap() >= 0.2,
        "{device:?}"
    );
    assert!(!device.saturated, "{device:?}");
    let advice = &report.recommendation;
    assert_ne!(advice.situation, "disk_saturated");
    assert!(
        !advice
            .reasons
            .iter()
            .any(|r| r.contains("disk is saturated")),
        "{:?}",
        advice.reasons
    );
}
