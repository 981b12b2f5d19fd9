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
    assert!(sqlite.breakdown.disk_sync_s > 0.5 * sqlite.breakdown.disk_s);

    let out = format!("of={}", dir.path().join("dsync.bin").display());
    let (dd, _) = run_measured(
        &[],
        &[
            "dd",
            "if=/dev/zero",
            &out,
            "bs=4k",
            "count=3000",
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
