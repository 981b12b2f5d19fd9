//! `show --html`: pages of three kinds of runs (cpu-bound, io-bound, mixed with phases), parsed as a browser would and rendered in headless Chromium.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::OnceLock;

use common::*;
use concadvise::report::html::colour;
use concadvise::report::Report;
use scraper::{ElementRef, Html, Selector};

/// A measured run: its name, its report file and the report.
struct Measured {
    name: &'static str,
    path: PathBuf,
    report: Report,
}

/// The three runs, measured once for all the tests of this file.
fn measured() -> &'static [Measured] {
    static RUNS: OnceLock<Vec<Measured>> = OnceLock::new();
    RUNS.get_or_init(|| {
        let _lock = timing_lock();
        // Kept for the whole test run (the screenshots are looked at afterwards).
        let dir = std::mem::ManuallyDrop::new(scratch_dir());
        let dir_arg = dir.path().display().to_string();
        let workload = workload_str();
        let runs: [(&str, Vec<&str>); 3] = [
            (
                "cpu",
                vec![&workload, "cpu", "--seconds", "1.5", "--threads", "2"],
            ),
            (
                "io",
                vec![
                    &workload,
                    "net-client",
                    "--requests",
                    "8",
                    "--delay-ms",
                    "150",
                ],
            ),
            (
                "mixed",
                vec![&workload, "phases", "--each", "0.7", "--dir", &dir_arg],
            ),
        ];
        runs.into_iter()
            .map(|(name, command)| {
                let path = dir.path().join(format!("{name}.toml"));
                let output = concadvise()
                    .args(["run", "-q", "--report"])
                    .arg(&path)
                    .arg("--")
                    .args(&command)
                    .output()
                    .unwrap();
                assert!(output.status.success(), "{name}: {output:?}");
                let report = read_report(&path).unwrap();
                Measured { name, path, report }
            })
            .collect()
    })
}

fn page(path: &Path) -> String {
    let output = concadvise()
        .args(["show", "--html"])
        .arg(path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

fn select<'a>(element: ElementRef<'a>, selector: &str) -> Vec<ElementRef<'a>> {
    element
        .select(&Selector::parse(selector).unwrap())
        .collect()
}

fn text(element: ElementRef) -> String {
    element.text().collect::<String>()
}

/// Every part the report has is on the page, drawn from the report's numbers.
fn assert_parts(html: &str, report: &Report) {
    let document = Html::parse_document(html);
    let root = document.root_element();
    let one = |selector: &str| {
        let found = select(root, selector);
        assert_eq!(found.len(), 1, "one {selector}");
        found[0]
    };
    // Self-contained and readable with JavaScript off: nothing runs, nothing is fetched.
    assert!(select(root, "script, link, img, iframe, object").is_empty());
    assert!(select(root, "[src]").is_empty());
    assert!(select(root, "[href]").is_empty());
    assert!(select(root, "[onload], [onclick]").is_empty());

    let title = text(one("head > title"));
    let program = Path::new(&report.target.command[0]).file_name().unwrap();
    assert!(title.contains(program.to_str().unwrap()), "{title}");
    assert!(title.contains(&report.target.started_at[..10]), "{title}");
    let headline = text(one("h1"));
    assert!(headline.contains(&report.verdict.class), "{headline}");
    assert!(
        headline.contains(&report.recommendation.model),
        "{headline}"
    );

    // The bars: one row per state with at least 0.5 % of the wall time, with its seconds.
    let total = report.wall.total_s();
    let expected: Vec<(&str, f64)> = report
        .wall
        .states()
        .into_iter()
        .filter(|(_, s)| s / total >= 0.005)
        .collect();
    let rows = select(one("#wall"), "tbody tr");
    assert_eq!(rows.len(), expected.len(), "{expected:?}");
    for (row, (state, seconds)) in rows.iter().zip(&expected) {
        assert_eq!(row.attr("data-state"), Some(*state));
        let cells: Vec<String> = select(*row, "td.num").into_iter().map(text).collect();
        let shown: f64 = cells[0].parse().unwrap();
        let wall = seconds / total * report.time.wall_s;
        assert!((shown - wall).abs() <= 0.006, "{state}: {shown} vs {wall}");
        let bar = select(*row, "rect[fill]")[1];
        assert_eq!(bar.attr("fill"), Some(colour(state)));
    }

    // The timeline: the whole program, then a row per thread with a timeline, then the rest.
    let svg = one("svg#threads");
    let drawn_rows = select(svg, "g.row");
    let with_timeline: Vec<_> = report
        .threads
        .iter()
        .filter(|t| !t.timeline.is_empty())
        .collect();
    assert!(
        !with_timeline.is_empty(),
        "the report has per-thread timelines"
    );
    let others = usize::from(report.other_threads.is_some());
    assert_eq!(drawn_rows.len(), 1 + with_timeline.len() + others);
    for (row, thread) in drawn_rows[1..].iter().zip(&with_timeline) {
        let label = row.attr("data-label").unwrap();
        assert!(label.ends_with(&thread.tid.to_string()), "{label}");
        let rects = select(*row, "rect");
        assert_eq!(rects.len(), thread.timeline.len(), "{label}");
        for (rect, run) in rects.iter().zip(&thread.timeline) {
            assert_eq!(rect.attr("data-state"), Some(run.state.as_str()));
            assert_eq!(rect.attr("fill"), Some(colour(&run.state)));
        }
    }
    let drawn: BTreeSet<&str> = select(svg, "rect[data-state]")
        .into_iter()
        .map(|r| r.attr("data-state").unwrap())
        .collect();
    let legend: BTreeSet<&str> = select(root, ".legend li")
        .into_iter()
        .map(|li| li.attr("data-state").unwrap())
        .collect();
    assert_eq!(
        drawn, legend,
        "the legend names every state drawn, and no other"
    );

    // The phases: a band in the drawing, and a table when there are several.
    assert_eq!(select(svg, "g.phase").len(), report.phases.len());
    let phase_rows = select(root, "#phases tbody tr");
    if report.phases.len() > 1 {
        assert_eq!(phase_rows.len(), report.phases.len());
        for (row, phase) in phase_rows.iter().zip(&report.phases) {
            assert!(text(*row).contains(&phase.class));
        }
    } else {
        assert!(phase_rows.is_empty());
    }

    // Why, how, the warning, and the sampling facts.
    let reasons: Vec<String> = select(one("#why"), "li").into_iter().map(text).collect();
    assert_eq!(reasons, report.recommendation.reasons);
    if !report.recommendation.how.is_empty() {
        assert!(text(one("#how")).contains(&report.recommendation.how));
    }
    assert_eq!(text(one("#warning p")), report.recommendation.warning);
    let facts = text(one("#sampling"));
    assert!(
        facts.contains(&format!("{} samples", report.sampling.samples)),
        "{facts}"
    );
    assert!(facts.contains(&report.machine.kernel));
}

#[test]
fn pages_of_three_kinds_of_runs_show_every_part_of_their_report() {
    let runs = measured();
    let classes: Vec<&str> = runs
        .iter()
        .map(|m| m.report.verdict.class.as_str())
        .collect();
    assert_eq!(classes, ["cpu-bound", "io-bound", "mixed"]);
    assert!(runs[2].report.phases.len() >= 2);
    for run in runs {
        assert_parts(&page(&run.path), &run.report);
    }
}

/// The pixels of a PNG as RGB triples.
fn pixels(path: &Path) -> Vec<[u8; 3]> {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buffer).unwrap();
    let channels = info.color_type.samples();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buffer[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect()
}

fn rgb(hex: &str) -> [u8; 3] {
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap();
    [byte(1), byte(3), byte(5)]
}

#[test]
fn pages_render_in_headless_chromium() {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| {
            Process::new(name)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        eprintln!("skipped: no chromium on PATH (apt-get install chromium)");
        return;
    };
    let runs = measured();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let _lock = timing_lock();
    for run in runs {
        let html = shots.join(format!("{}.html", run.name));
        std::fs::write(&html, page(&run.path)).unwrap();
        let png = shots.join(format!("{}.png", run.name));
        let _ = std::fs::remove_file(&png);
        let output = Process::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .arg(format!("--screenshot={}", png.display()))
            .arg("--window-size=1100,1400")
            .arg(format!("file://{}", html.display()))
            .output()
            .unwrap();
        assert!(png.exists(), "no screenshot: {output:?}");
        let pixels = pixels(&png);
        let near_white = |p: &[u8; 3]| p.iter().all(|c| *c >= 245);
        let inked = pixels.iter().filter(|p| !near_white(p)).count();
        assert!(
            inked * 100 > pixels.len() * 3,
            "{}: only {inked} of {} pixels are not white",
            run.name,
            pixels.len()
        );
        // The drawing was rendered: the colour of the state that took most of the wall time
        // covers a good area (its bar, its timeline cells, its legend swatch).
        let (state, _) = run
            .report
            .wall
            .states()
            .into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        let wanted = rgb(colour(state));
        let painted = pixels.iter().filter(|p| **p == wanted).count();
        assert!(painted > 5_000, "{}: {painted} pixels of {state}", run.name);
        eprintln!(
            "{}: {} ({inked} pixels inked, {painted} of {state})",
            run.name,
            png.display()
        );
    }
}

#[test]
fn a_report_from_before_thread_timelines_still_renders() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reports/before_thread_timelines.toml");
    let html = page(&fixture);
    let document = Html::parse_document(&html);
    let rows = select(document.root_element(), "svg#threads g.row");
    assert_eq!(rows.len(), 1, "only the whole program's row");
    assert!(html.contains("mixed"));
    concadvise().arg("show").arg(&fixture).assert().success();
    let both = concadvise()
        .args(["show", "--html", "--format", "json"])
        .arg(&fixture)
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
}
