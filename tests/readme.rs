//! README.md and the code agree: the keys README's report schema lists are the keys a report
//! writes (no more, no fewer), every exit code the code uses has its row, and the behaviour a
//! row promises is there.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;

use common::*;
use concadvise::report::read;

fn readme() -> String {
    std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// "table.key" for every key README's ```toml schema block shows.
fn documented_keys(readme: &str) -> BTreeSet<String> {
    let start = readme.find("```toml\nschema_version = 1").unwrap();
    let block = &readme[start + "```toml\n".len()..];
    let block = &block[..block.find("```").unwrap()];
    let mut keys = BTreeSet::new();
    let mut table = String::new();
    for line in block.lines() {
        let line = line.split('#').next().unwrap().trim();
        if let Some(name) = line.strip_prefix('[') {
            table = name.trim_matches(['[', ']']).to_string();
        } else if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            keys.insert(if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            });
        }
    }
    keys
}

/// The sections a report has only sometimes, appended to the fixture (its last table is a
/// thread's, which the timeline rows join).
const OPTIONAL_SECTIONS: &str = r#"
[[threads.timeline]]
start = 0
buckets = 10
state = "cpu"

[other_threads]
threads = 3

[[other_threads.timeline]]
start = 0
buckets = 20
state = "lock"

[recommendation.expected]
change = "the work spread over 2 processes"
measure = "wall"
speedup = 1.8
low = 1.4
high = 2.0
basis = "..."
unavailable = "..."

[bottleneck]
pid = 4321
command = ["xz"]
kind = "cpu"
waited_on_s = 1.0
reason = "..."

[demand]
clients_waited = true
serving_threads = 2
serving_processes = 2
serving_state = "sleep"
serving_share = 0.98

[[demand.listeners]]
address = "127.0.0.1:8802"
samples = 30
mean_queued = 18.0
max_queued = 18
queued_share = 1.0
pids = [1, 2]

[[devices]]
device = "vda"
major_minor = "254:0"
via = ["vda1"]
rotational = true
mounts = ["/"]
filesystem = "ext4"
wait_s = 1.0
disk_wait_share = 0.9
waited_s = 1.0
busy_share = 0.95
in_flight = 3.0
own_in_flight = 1.0
run_busy_share = 0.9
saturated = true
unmeasured = "..."

[concurrency]
structure = "event_loop"
in_flight = 1.5
peak_in_flight = 3
busy_threads = 1
busy_processes = 1

[concurrency.event_loop]
pid = 1
tid = 1
runtime = "python"
watched = 3
blocked_s = 0.5
blocked_share = 0.5
longest_block_s = 0.2
blocked_by = ["cpu"]
blocking_calls = ["read"]
other_loops = 1
peers = 2
never_polled = true

[code]
source = "py-spy"
stack_samples = 10
failed_reads = 1
rate_hz = 20.0
read_cpu_ms = 0.2
unavailable = "..."
not_read = ["..."]

[[code.hotspots]]
state = "loop_blocked"
function = "handler"
file = "app.py"
line = 3
share = 1.0
seconds = 0.5
samples = 10
pid = 1
tids = [1]
innermost = "sleep"
stack = ["handler (app.py:3)"]
blocked_in = "sleep"

[[stops]]
by = "frozen_cgroup"
seconds = 1.0
tracer_pid = 7
tracer = "gdb"
cgroup = "/sys/fs/cgroup/freezer/x"
"#;

/// "table.key" for every key of a report with every optional key present.
fn written_keys() -> BTreeSet<String> {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/reports/phases.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    // The optional sections, through the report's own parser: a key the code does not have
    // is dropped there, so it cannot count as written.
    let text = format!("{text}{OPTIONAL_SECTIONS}");
    let mut report = read::parse(&text).unwrap();
    report.target.exit_code = Some(0);
    report.target.cgroup = Some("/sys/fs/cgroup/cpu/job".into());
    report.machine.cpu_quota_cores = Some(0.5);
    report.machine.other_load_cores = Some(0.2);
    report.verdict.too_short = true;
    let wait = &mut report.threads[0].waits[0];
    wait.mount = Some("/mnt/data".into());
    wait.filesystem = Some("nfs4".into());
    wait.source = Some("fileserver:/export/data".into());
    report.target.signal = Some(9);
    report.target.exited = Some(false);
    report.breakdown.unsampled_cpu_s = 0.1;
    report.verdict.dominant_wait = Some("sleep".into());
    report.recommendation.workers = Some(2);
    report.recommendation.speedup_ceiling = Some(1.5);
    let sampling = &mut report.sampling;
    sampling.lowered_to_hz = Some(25.0);
    sampling.lowest_second_hz = Some(24);
    sampling.threads_unseen = 1;
    sampling.unseen_cause = Some("descriptors".into());
    sampling.out_of_descriptors = true;
    sampling.descriptor_limit = 64;
    sampling.unresolved_files = 1;
    sampling.cut_short = true;
    assert!(
        !report.phases.is_empty() && !report.processes.is_empty() && !report.threads.is_empty()
    );
    let mut keys = BTreeSet::new();
    collect(&toml::Value::try_from(&report).unwrap(), "", &mut keys);
    keys
}

fn collect(value: &toml::Value, prefix: &str, keys: &mut BTreeSet<String>) {
    let toml::Value::Table(table) = value else {
        return;
    };
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::Table(_) => collect(value, &key, keys),
            // Arrays of tables ([[phases]], [[threads.waits]]): the keys of their elements.
            toml::Value::Array(items) if items.first().is_some_and(toml::Value::is_table) => {
                collect(&items[0], &key, keys)
            }
            _ => {
                keys.insert(key);
            }
        }
    }
}

#[test]
fn readme_lists_exactly_the_keys_a_report_writes() {
    let documented = documented_keys(&readme());
    let written = written_keys();
    // README says [wall] has "the same keys but unsampled_cpu_s" as [breakdown].
    let written_but_wall: BTreeSet<String> = written
        .iter()
        .filter(|key| !key.starts_with("wall."))
        .cloned()
        .collect();
    for key in written.iter().filter_map(|k| k.strip_prefix("wall.")) {
        assert!(
            documented.contains(&format!("breakdown.{key}")),
            "wall.{key} is written but breakdown.{key} is not in README"
        );
    }
    let undocumented: Vec<_> = written_but_wall.difference(&documented).collect();
    let never_written: Vec<_> = documented.difference(&written_but_wall).collect();
    assert!(
        undocumented.is_empty(),
        "written, not in README: {undocumented:?}"
    );
    assert!(
        never_written.is_empty(),
        "in README, never written: {never_written:?}"
    );
}

#[test]
fn every_exit_code_has_its_row_in_readme() {
    use concadvise::error::exit_code::*;
    let readme = readme();
    for code in [
        FAILURE,
        USAGE,
        NO_SUCH_PROCESS,
        REFUSED_TARGET,
        BAD_INPUT_FILE,
        OUTPUT_NOT_WRITABLE,
        RUN_FAILED,
        NOT_EXECUTABLE,
        NOT_FOUND,
    ] {
        assert!(
            readme.contains(&format!("\n| {code} |")),
            "no row for {code}"
        );
    }
}

#[test]
fn show_diff_and_profiles_exit_6_when_stdout_cannot_be_written() {
    let dir = scratch_dir();
    let report = format!(
        "{}/tests/fixtures/reports/phases.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    for args in [
        vec!["show", report.as_str()],
        vec!["diff", report.as_str(), report.as_str()],
        vec!["profiles"],
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_concadvise"))
            .args(&args)
            .current_dir(dir.path())
            .stdout(full.try_clone().unwrap())
            .output()
            .unwrap();
        assert_one_line_error(&output, 6, "cannot write to standard output");
    }
}
