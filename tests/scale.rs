//! `concadvise scale` end to end: real scans of real workloads, the fit, the prediction check, --metric, failures, Ctrl-C, and `show`/`diff` of the reports.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{assert_one_line_error, concadvise, scratch_dir, timing_lock, workload_str};
use concadvise::scale::report::{LevelSection, ScaleReport};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Runs `concadvise scale --report DIR/scale.toml ARGS -- COMMAND` and returns the output and
/// the parsed report (when one was written).
fn scan(dir: &Path, args: &[&str], command: &[&str]) -> (Output, Option<ScaleReport>) {
    let path = dir.join("scale.toml");
    let output = concadvise()
        .arg("scale")
        .arg("--report")
        .arg(&path)
        .args(args)
        .arg("--")
        .args(command)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    (output, read_scale(&path))
}

fn read_scale(path: &Path) -> Option<ScaleReport> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(concadvise::scale::report::parse(&text).expect("a valid scale report"))
}

fn level(report: &ScaleReport, n: u32) -> &LevelSection {
    report
        .scale
        .levels
        .iter()
        .find(|l| l.n == n)
        .unwrap_or_else(|| panic!("no level {n} in {:#?}", report.scale.levels))
}

fn speedup(report: &ScaleReport, n: u32) -> f64 {
    level(report, n).speedup.unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The summary part of a scan's stderr (the program's own stderr comes before it).
fn summary_of(output: &Output) -> String {
    let text = stderr(output);
    let start = text.find("concadvise scale:").expect("a summary on stderr");
    text[start..].to_string()
}

#[test]
fn a_fixed_work_cpu_job_doubles_at_2_cores_then_stays_flat_and_peaks_between_2_and_4() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    let workload = workload_str();
    // About a second of work in all at every level (debug build), split among the threads.
    let (output, report) = scan(
        dir.path(),
        &["--levels", "1..4"],
        &[&workload, "cpu", "--total-work", "250", "--threads", "{n}"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = report.unwrap();
    // On a machine other work keeps busy, the speedups measure the load: the summary must
    // say so, and the shape is not checked.
    let busy = report
        .scale
        .levels
        .iter()
        .filter(|l| l.n as usize <= report.scale.cores && l.wall_s > 0.0)
        .any(|l| l.runqueue_s > 0.1 * l.wall_s);
    if busy {
        let summary = summary_of(&output);
        assert!(summary.contains("the machine was busy"), "{summary}");
        eprintln!("the machine was busy: the speedups' shape is not checked\n{summary}");
        return;
    }
    let at_2 = speedup(&report, 2);
    assert!(
        (1.5..=2.4).contains(&at_2),
        "speedup {at_2} at 2: {}",
        summary_of(&output)
    );
    for n in [3, 4] {
        let s = speedup(&report, n);
        assert!(
            (0.85 * at_2..=1.15 * at_2).contains(&s),
            "speedup {s} at {n}, not flat after {at_2} at 2: {}",
            summary_of(&output)
        );
    }
    let fit = report.scale.fit.as_ref().expect("four levels are fitted");
    let peak = fit.peak_n.expect("a peak");
    assert!((2.0..=4.0).contains(&peak), "peak N* {peak}: {fit:?}");
    assert_eq!(level(&report, 1).class, "cpu-bound");
    // The summary has the table, the chart and the fit.
    let summary = summary_of(&output);
    assert!(
        summary.contains("speedup against N") && summary.contains('●'),
        "{summary}"
    );
    assert!(summary.contains("USL     σ"), "{summary}");
    // The N = 1 run's expected band for its advised workers, beside what N = 2 measured.
    let expected = report
        .scale
        .prediction
        .as_ref()
        .and_then(|p| p.expected.as_ref())
        .unwrap_or_else(|| panic!("no expected band: {summary}"));
    assert_eq!(expected.at_n, 2, "{expected:?}");
    assert_eq!(expected.measured, Some(at_2), "{expected:?}");
    assert!(summary.contains("expected x"), "{summary}");
}

#[test]
fn an_io_job_scales_about_linearly_and_the_prediction_is_set_beside_it() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    let workload = workload_str();
    // 32 round trips of 50 ms each, over N connections to the slow server in the process.
    let (output, report) = scan(
        dir.path(),
        &["--levels", "1,2,4,8"],
        &[
            &workload,
            "net-client",
            "--concurrency",
            "{n}",
            "--requests",
            "32",
            "--delay-ms",
            "50",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = report.unwrap();
    for n in [2, 4, 8] {
        let s = speedup(&report, n);
        assert!(
            s >= 0.7 * f64::from(n) && s <= 1.1 * f64::from(n),
            "speedup {s} at {n}: {}",
            summary_of(&output)
        );
    }
    assert_eq!(
        level(&report, 1).class,
        "io-bound",
        "{:?}\n{}",
        level(&report, 1),
        summary_of(&output)
    );
    assert_eq!(level(&report, 1).dominant_wait.as_deref(), Some("network"));
    let prediction = report.scale.prediction.as_ref().unwrap();
    assert_eq!(prediction.from_n, 1);
    assert!(prediction.workers.is_some() && prediction.speedup_ceiling.is_some());
    let summary = summary_of(&output);
    assert!(
        summary.contains("prediction (from the N = 1 run")
            && summary.contains(&format!(
                "predicted at most {:.1}x with {} workers; measured",
                prediction.speedup_ceiling.unwrap(),
                prediction.workers.unwrap()
            )),
        "{summary}"
    );
    // Each level's full report is beside the scale report, named after it.
    for n in [1, 2, 4, 8] {
        let file = level(&report, n).report.clone().unwrap();
        assert_eq!(file, format!("scale.{n}.toml"));
        let run = common::read_report(&dir.path().join(&file)).unwrap();
        assert!(run
            .target
            .command
            .join(" ")
            .contains(&format!("--concurrency {n} ")));
    }
    // `show` prints the same summary from the report.
    let shown = concadvise()
        .arg("show")
        .arg(dir.path().join("scale.toml"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&shown.stdout), summary);
}

#[test]
fn metric_reads_the_rate_the_program_prints_and_its_output_is_teed() {
    let _lock = timing_lock();
    let dir = scratch_dir();
    let workload = workload_str();
    let (output, report) = scan(
        dir.path(),
        &[
            "--levels",
            "1,2,4",
            "--metric",
            r"\(([0-9.]+) requests/s\)",
            "-q",
        ],
        &[
            &workload,
            "net-client",
            "--concurrency",
            "{n}",
            "--requests",
            "8",
            "--delay-ms",
            "50",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = report.unwrap();
    // One connection, 50 ms a round trip: about 20 requests per second.
    let one = level(&report, 1).throughput.unwrap();
    assert!((15.0..=21.0).contains(&one), "{one} requests/s at N = 1");
    assert!(speedup(&report, 4) >= 2.8, "{:#?}", report.scale.levels);
    assert_eq!(
        report.scale.metric.as_deref(),
        Some(r"\(([0-9.]+) requests/s\)")
    );
    // The program's output still reaches ours, stdout to stdout, stderr to stderr.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.matches("net-client: 8 requests in").count(),
        3,
        "{stdout}"
    );
    assert_eq!(stderr(&output).matches("started a slow server").count(), 3);
}

#[test]
fn env_carries_the_level_and_the_last_match_of_either_stream_wins() {
    let dir = scratch_dir();
    // Throughput 10 N / (1 + 0.1 (N - 1)): Amdahl with a 10 % serial share, printed last on
    // stderr, a moment after a decoy on stdout.
    let script = "echo 'rate 1'; sleep 0.1; awk -v n=$WORKERS \
                  'BEGIN { printf \"rate %f\\n\", 10 * n / (1 + 0.1 * (n - 1)) }' >&2";
    let (output, report) = scan(
        dir.path(),
        &[
            "--levels",
            "1,2,4,8",
            "--env",
            "WORKERS",
            "--metric",
            r"rate ([0-9.]+)",
            "-q",
        ],
        &["sh", "-c", script],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = report.unwrap();
    assert_eq!(level(&report, 8).throughput, Some(47.06));
    let fit = report.scale.fit.unwrap();
    assert!((fit.amdahl.sigma - 0.1).abs() < 0.001, "{fit:?}");
    assert!(fit.amdahl.r2 > 0.999, "{fit:?}");
    assert!(
        fit.meaning
            .starts_with("contention: 10 % of the work is serial"),
        "{fit:?}"
    );
    assert_eq!(report.scale.env.as_deref(), Some("WORKERS"));
}

#[test]
fn a_metric_that_never_matches_is_a_one_line_error_naming_the_level_and_regex() {
    let dir = scratch_dir();
    let workload = workload_str();
    let (output, report) = scan(
        dir.path(),
        &["--levels", "1,2", "--metric", r"tps = ([0-9.]+)"],
        &[&workload, "sleep", "--seconds", "0.{n}"],
    );
    assert_one_line_error(
        &output,
        9,
        r#"level 1: --metric "tps = ([0-9.]+)" matched no line"#,
    );
    assert!(report.is_none());
    // The program's stdout was still passed through.
    assert_eq!(String::from_utf8_lossy(&output.stdout), "sleep: done\n");
}

#[test]
fn ctrl_c_during_the_third_of_five_levels_reports_the_two_done() {
    let dir = scratch_dir();
    let path = dir.path().join("scale.toml");
    // Its own process group, as a shell gives a job: Ctrl-C reaches the whole group.
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_concadvise"))
        .args(["scale", "-q", "--levels", "1..5", "--env", "N", "--report"])
        .arg(&path)
        .args(["--", "sleep", "0.6"])
        .process_group(0)
        .spawn()
        .unwrap();
    let third_started = dir.path().join("scale.2.toml");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !third_started.exists() {
        assert!(Instant::now() < deadline, "level 2 never finished");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(250));
    killpg(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{output:?}");
    let report = read_scale(&path).expect("the report is written after Ctrl-C");
    assert!(report.scale.interrupted);
    let statuses: Vec<(u32, &str)> = report
        .scale
        .levels
        .iter()
        .map(|l| (l.n, l.status.as_str()))
        .collect();
    assert_eq!(statuses, [(1, "ok"), (2, "ok"), (3, "interrupted")]);
    assert!(report.scale.fit.is_none());
    assert_eq!(
        report.scale.no_fit.as_deref(),
        Some("2 levels measured: a fit needs at least 3")
    );
    assert!(!dir.path().join("scale.4.toml").exists());
}

#[test]
fn a_failing_level_stops_the_scan_unless_keep_going() {
    let dir = scratch_dir();
    let fails_at_2 = ["sh", "-c", "exit $(( {n} == 2 ? 3 : 0 ))"];
    let (output, report) = scan(dir.path(), &["--levels", "1..3", "-q"], &fails_at_2);
    assert_eq!(output.status.code(), Some(8), "{output:?}");
    let report = report.unwrap();
    assert_eq!(report.scale.levels.len(), 2);
    assert_eq!(level(&report, 2).status, "failed");
    assert_eq!(level(&report, 2).exit_code, Some(3));
    assert_eq!(level(&report, 2).throughput, None);

    let (output, report) = scan(
        dir.path(),
        &["--levels", "1..3", "--keep-going"],
        &fails_at_2,
    );
    assert_eq!(output.status.code(), Some(8), "{output:?}");
    let report = report.unwrap();
    assert_eq!(report.scale.levels.len(), 3);
    assert_eq!(level(&report, 3).status, "ok");
    assert!(summary_of(&output).contains("N = 2 failed"));

    // The level reports of that scan are not taken for a run that could not start.
    let (output, _) = scan(dir.path(), &["--levels", "1..3"], &["no-such-command-{n}"]);
    assert_one_line_error(&output, 127, "command not found: no-such-command-1");
    assert!(!dir.path().join("scale.1.toml").exists());
}

#[test]
fn usage_errors_and_a_missing_command_are_one_line_with_their_codes() {
    let dir = scratch_dir();
    let (output, _) = scan(dir.path(), &["--levels", "1,2"], &["sleep", "0"]);
    assert_one_line_error(&output, 2, "nothing in the command changes with the level");
    let (output, _) = scan(
        dir.path(),
        &["--levels", "1,2", "--runtime", "cobol"],
        &["x{n}"],
    );
    assert_one_line_error(&output, 2, "unknown runtime \"cobol\"");
    let (output, _) = scan(dir.path(), &["--levels", "1,2"], &["no-such-command-{n}"]);
    assert_one_line_error(&output, 127, "command not found: no-such-command-1");
    let output = concadvise()
        .args(["scale", "--levels", "2..1", "--", "x{n}"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("empty range: write 1..2"));
    // clap would print a literal {n} in help as a newline: the placeholder survives.
    let help = concadvise().args(["scale", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("./crawler --workers {n} urls.txt"), "{help}");
    assert!(!help.contains('\x1b'), "no escapes when not a terminal");
    // Nothing was left behind by the failed scans.
    common::assert_empty(dir.path());
}

#[test]
fn show_converts_and_diff_compares_two_scale_reports_but_not_a_scale_and_a_run() {
    let dir = scratch_dir();
    let rates = |serial: &str| {
        format!(
            "awk -v n={{n}} 'BEGIN {{ printf \"rate %f\\n\", 10 * n / (1 + {serial} * (n - 1)) }}'"
        )
    };
    let path = |name: &str| dir.path().join(name).display().to_string();
    for (name, serial) in [("before.toml", "0.2"), ("after.json", "0.05")] {
        concadvise()
            .args([
                "scale",
                "-q",
                "--levels",
                "1,2,4,8",
                "--metric",
                r"rate ([0-9.]+)",
            ])
            .args(["--report", &path(name), "--", "sh", "-c", &rates(serial)])
            .assert()
            .success();
    }
    assert!(
        dir.path().join("after.8.json").exists(),
        "level reports follow the format"
    );
    let diff = concadvise()
        .args(["diff", &path("before.toml"), &path("after.json")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&diff.stdout);
    assert!(
        text.starts_with("concadvise diff (scale): serial share (σ) 20 % -> 5.0 %"),
        "{text}"
    );
    let json = concadvise()
        .args([
            "diff",
            "--format",
            "json",
            &path("before.toml"),
            &path("after.json"),
        ])
        .output()
        .unwrap();
    let comparison: concadvise::scale::diff::ScaleComparison =
        serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(comparison.levels.len(), 4);
    assert!((comparison.after.amdahl_sigma.unwrap() - 0.05).abs() < 0.001);

    let shown = concadvise()
        .args(["show", "--format", "toml", &path("after.json")])
        .output()
        .unwrap();
    let converted = concadvise::scale::report::parse(&String::from_utf8_lossy(&shown.stdout));
    assert_eq!(converted.unwrap().scale.levels.len(), 4);

    let output = concadvise()
        .args(["diff", &path("before.toml"), &path("before.1.toml")])
        .output()
        .unwrap();
    assert_one_line_error(&output, 5, "it is a run report and");
}

#[test]
fn repeat_runs_each_level_k_times_and_reports_the_band() {
    let dir = scratch_dir();
    // Each run prints 10 N plus how many runs came before it: 10, 11 at N = 1; 22, 23 at 2...
    let counter = dir.path().join("runs");
    let script = format!(
        "c=$(cat {0} 2>/dev/null || echo 0); echo $((c + 1)) > {0}; echo \"rate $(({{n}} * 10 + c))\"",
        counter.display()
    );
    let (output, report) = scan(
        dir.path(),
        &[
            "--levels",
            "1..3",
            "--repeat",
            "2",
            "--metric",
            r"rate (\d+)",
            "-q",
        ],
        &["sh", "-c", &script],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = report.unwrap();
    let one = level(&report, 1);
    assert_eq!(one.throughput, Some(10.5));
    assert_eq!(
        (one.throughput_min, one.throughput_max),
        (Some(10.0), Some(11.0))
    );
    assert_eq!(one.runs.len(), 2);
    assert_eq!(one.runs[1].report.as_deref(), Some("scale.1.r2.toml"));
    assert_eq!(level(&report, 3).throughput, Some(34.5));
    assert!(dir.path().join("scale.3.r2.toml").exists());
    assert_eq!(report.scale.repeat, 2);
}
