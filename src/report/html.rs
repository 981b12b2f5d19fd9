//! A saved report as one self-contained HTML page to share: inline CSS and SVG, no scripts, readable with JavaScript off and in print.
//!
//! Sections, top to bottom: the verdict and the model, where the wall time went, the timeline
//! with its phases and the busiest threads over time, why, how, the warning, and how the
//! measurement was taken. Built with maud, which escapes every piece of text it is given.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::{shorten, Report, StateRunSection};
use crate::analysis::timeline::letter_name;

/// Width of the timeline drawing (SVG user units; it scales to the page).
const WIDTH: f64 = 960.0;
/// Room for the row labels on the left of the timeline.
const LABEL_WIDTH: f64 = 230.0;
const PLOT_WIDTH: f64 = WIDTH - LABEL_WIDTH - 10.0;
const ROW_HEIGHT: f64 = 18.0;
const ROW_GAP: f64 = 4.0;
/// A state under this share of the wall time gets no bar.
const TRIVIAL_SHARE: f64 = 0.005;

const STYLE: &str = r#"
:root { color-scheme: light; }
* { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
       color: #1a1a1a; background: #fff; max-width: 1000px; margin: 1.5em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin: 0 0 .2em; }
h2 { font-size: 1.15em; margin: 1.6em 0 .5em; border-bottom: 1px solid #ccc; padding-bottom: .2em; }
code { font: .92em/1.3 ui-monospace, "DejaVu Sans Mono", monospace; }
.command { margin: .2em 0; word-break: break-all; }
.totals, .muted { color: #555; margin: .2em 0; }
.verdict { color: #8a4b00; }
.model { color: #1b5e20; }
table { border-collapse: collapse; }
th, td { text-align: left; padding: .15em .8em .15em 0; vertical-align: middle; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font: 12px "DejaVu Sans", sans-serif; fill: #1a1a1a; }
svg text.axis { fill: #555; font-size: 11px; }
.legend { display: flex; flex-wrap: wrap; gap: .3em 1.2em; margin: .6em 0 0; padding: 0; list-style: none; }
.legend li { display: flex; align-items: center; gap: .35em; }
.warning { border-left: 4px solid #c62828; padding: .4em .8em; background: #fff5f5; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .1em 1.2em; }
dl.facts dt { color: #555; }
dl.facts dd { margin: 0; }
footer { margin-top: 2em; color: #777; font-size: .85em; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } svg { break-inside: avoid; } }
"#;

/// The page for a report.
pub fn render(report: &Report) -> String {
    let title = format!(
        "concadvise: {} — {}",
        shorten(&report.target.command.join(" "), 80),
        readable_date(&report.target.started_at)
    );
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="generator" content={ "concadvise " (crate::VERSION) };
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                (headline(report))
                (wall_section(report))
                (timeline_section(report))
                (advice_sections(report))
                (sampling_section(report))
                footer {
                    "Rendered by concadvise " (crate::VERSION) " from a report of schema version "
                    (report.schema_version) ". Times are wall-clock seconds; thread-seconds in the breakdown."
                }
            }
        }
    }
    .into_string()
}

fn headline(report: &Report) -> Markup {
    let target = &report.target;
    let status = target.status();
    let time = &report.time;
    html! {
        header id="verdict" {
            h1 {
                "concadvise: " span.verdict { (report.verdict.class) } " → "
                span.model { (report.recommendation.model) }
            }
            p.command { code { (target.command.join(" ")) } " [" (status.join(", ")) "]" }
            p.totals {
                "wall " (fixed(time.wall_s, 2)) " s · cpu " (fixed(time.cpu_s, 2)) " s (user "
                (fixed(time.user_s, 2)) ", sys " (fixed(time.system_s, 2)) ") · "
                (fixed(time.avg_cores, 2)) " of " (report.machine.cores) " cores · confidence "
                (fixed(report.verdict.confidence, 2)) " · started "
                (readable_date(&target.started_at))
            }
        }
    }
}

/// One bar per state with a share of the wall time worth showing, and the thread-seconds.
fn wall_section(report: &Report) -> Markup {
    let total = report.wall.total_s().max(f64::MIN_POSITIVE);
    let breakdown: Vec<(&str, f64)> = report.breakdown.states();
    let bar_width = 360.0;
    html! {
        section id="wall" {
            h2 { "Where the wall time went" }
            table {
                thead {
                    tr {
                        th { "state" } th { "share of the wall time" } th.num { "wall s" }
                        th.num { "share" } th.num { "thread-seconds" }
                    }
                }
                tbody {
                    @for (name, seconds) in report.wall.states() {
                        @if seconds / total >= TRIVIAL_SHARE {
                            @let share = seconds / total;
                            @let thread_s = breakdown.iter().find(|(n, _)| *n == name).map_or(0.0, |(_, s)| *s);
                            tr data-state=(name) {
                                th { (name) }
                                td {
                                    svg width=(bar_width) height="14" viewBox={ "0 0 " (bar_width) " 14" }
                                        role="img" aria-label={ (name) " " (percent(share)) } {
                                        rect x="0" y="1" width=(fixed(bar_width, 0)) height="12" fill="#eee" {}
                                        rect x="0" y="1" width=(fixed((share * bar_width).max(1.0), 1)) height="12"
                                            fill=(colour(name)) {}
                                    }
                                }
                                td.num { (fixed(share * report.time.wall_s, 2)) }
                                td.num { (percent(share)) }
                                td.num { (fixed(thread_s, 2)) }
                            }
                        }
                    }
                }
            }
            p.muted {
                "Each instant counted once: computing if any thread computed, else the most telling wait. "
                "Thread-seconds add up every thread's time (ten idle threads make ten seconds per second)."
            }
        }
    }
}

/// One row of the timeline drawing: a label and coloured runs of buckets.
struct Row {
    label: String,
    runs: Vec<(usize, usize, String)>,
}

/// The rows of the drawing: the whole program (the wall view's letters), the threads with a
/// timeline of their own, and the other threads summed.
fn timeline_rows(report: &Report, letters: &[char]) -> Vec<Row> {
    let mut rows = vec![Row {
        label: "whole program (wall)".into(),
        runs: letter_runs(letters),
    }];
    for thread in report.threads.iter().filter(|t| !t.timeline.is_empty()) {
        rows.push(Row {
            label: format!("{} {}", shorten(&thread.name, 18), thread.tid),
            runs: state_runs(&thread.timeline),
        });
    }
    if let Some(other) = report.other_threads.as_ref().filter(|o| o.threads > 0) {
        rows.push(Row {
            label: count(other.threads, "other thread"),
            runs: state_runs(&other.timeline),
        });
    }
    rows
}

/// The whole program's timeline, the phases under it, then the busiest threads, one row each,
/// and the other threads summed into the last row.
// Long because the SVG's axis, rows and phase band are one maud template over one coordinate
// system; the legend and the phases table are apart.
fn timeline_section(report: &Report) -> Markup {
    let letters: Vec<char> = report.timeline.states.chars().collect();
    let buckets = letters.len();
    if buckets == 0 {
        return html! {};
    }
    let bucket_s = report.timeline.bucket_s;
    let rows = timeline_rows(report, &letters);
    let thread_rows = rows.len() - 1;
    let phase_band = !report.phases.is_empty();
    let top = 22.0;
    let phase_y = top + ROW_HEIGHT + ROW_GAP;
    let threads_y = phase_y
        + if phase_band {
            ROW_HEIGHT + 3.0 * ROW_GAP
        } else {
            ROW_GAP
        };
    let height = threads_y + thread_rows as f64 * (ROW_HEIGHT + ROW_GAP) + 6.0;
    let x = |bucket: f64| LABEL_WIDTH + bucket / buckets as f64 * PLOT_WIDTH;
    let span_s = buckets as f64 * bucket_s;
    let x_s = |seconds: f64| LABEL_WIDTH + (seconds / span_s).clamp(0.0, 1.0) * PLOT_WIDTH;
    let mut states: Vec<String> = Vec::new();
    for (_, _, state) in rows.iter().flat_map(|row| &row.runs) {
        if !states.contains(state) {
            states.push(state.clone());
        }
    }
    // One piece of markup: the axis, the rows and the phase band share one coordinate system
    // (x, x_s, the row offsets above).
    html! {
        section id="timeline" {
            h2 { "Over time" }
            svg id="threads" viewBox={ "0 0 " (WIDTH) " " (fixed(height, 0)) } width=(WIDTH)
                height=(fixed(height, 0)) role="img"
                aria-label="Timeline of the whole program and of its busiest threads" {
                @for (tick_s, label) in ticks(span_s) {
                    line x1=(fixed(x_s(tick_s), 1)) x2=(fixed(x_s(tick_s), 1)) y1="14"
                        y2=(fixed(height - 4.0, 0)) stroke="#ddd" stroke-width="1" {}
                    // A label at the right edge would be cut in half.
                    @let anchor = if x_s(tick_s) > WIDTH - 25.0 { "end" } else { "middle" };
                    text.axis x=(fixed(x_s(tick_s), 1)) y="11" text-anchor=(anchor) { (label) }
                }
                @for (index, row) in rows.iter().enumerate() {
                    @let y = if index == 0 { top } else { threads_y + (index - 1) as f64 * (ROW_HEIGHT + ROW_GAP) };
                    g.row data-label=(row.label) {
                        text x=(fixed(LABEL_WIDTH - 8.0, 0)) y=(fixed(y + 13.0, 1)) text-anchor="end" { (row.label) }
                        @for (start, count, state) in &row.runs {
                            rect x=(fixed(x(*start as f64), 2)) y=(fixed(y, 1))
                                width=(fixed((x((start + count) as f64) - x(*start as f64)).max(0.6), 2))
                                height=(ROW_HEIGHT) fill=(colour(state)) data-state=(state) {
                                title {
                                    (row.label) ": " (state) " " (fixed(*start as f64 * bucket_s, 1)) "–"
                                    (fixed((start + count) as f64 * bucket_s, 1)) " s"
                                }
                            }
                        }
                    }
                }
                @if phase_band {
                    text x=(fixed(LABEL_WIDTH - 8.0, 0)) y=(fixed(phase_y + 13.0, 1)) text-anchor="end" { "phases" }
                    @for phase in &report.phases {
                        @let (x0, x1) = (x_s(phase.start_s), x_s(phase.end_s));
                        g.phase {
                            rect x=(fixed(x0, 2)) y=(fixed(phase_y, 1)) width=(fixed((x1 - x0 - 1.0).max(0.6), 2))
                                height=(ROW_HEIGHT) fill="#fff" stroke="#555" stroke-width="1" {
                                title { (phase.class) " " (fixed(phase.start_s, 1)) "–" (fixed(phase.end_s, 1)) " s → " (phase.model) }
                            }
                            @if x1 - x0 > 60.0 {
                                text x=(fixed(x0 + 5.0, 1)) y=(fixed(phase_y + 13.0, 1)) { (phase.class) " → " (phase.model) }
                            }
                        }
                    }
                }
            }
            (timeline_legend(report, &states))
        }
        (phases_table(report))
    }
}

/// The timeline's legend (one swatch per state shown) and the note on how to read it.
fn timeline_legend(report: &Report, states: &[String]) -> Markup {
    let bucket_s = report.timeline.bucket_s;
    html! {
        ul.legend {
            @for state in states {
                li data-state=(state) {
                    svg width="14" height="14" viewBox="0 0 14 14" aria-hidden="true" {
                        rect x="0" y="0" width="14" height="14" fill=(colour(state)) {}
                    }
                    (state)
                }
            }
        }
        p.muted {
            "Each cell is " (fixed(bucket_s, 2)) " s, coloured by the state with the most time in it. "
            @if report.threads.iter().any(|t| !t.timeline.is_empty()) {
                "The busiest threads (most CPU first) have a row each"
                @if report.other_threads.is_some() { "; the last row sums the rest" }
                ". "
            }
            @if report.timeline.thread_resolution_s > 0.0 {
                "To stay within its event budget, concadvise merged per-thread stretches shorter than "
                (fixed(report.timeline.thread_resolution_s, 3)) " s."
            }
        }
    }
}

/// The phases as a table, when the run had more than one.
fn phases_table(report: &Report) -> Markup {
    html! {
        @if report.phases.len() > 1 {
            section id="phases" {
                h2 { "Phases" }
                table {
                    thead { tr { th { "phase" } th { "kind of work" } th { "mostly waiting on" } th { "alone it would get" } } }
                    tbody {
                        @for phase in &report.phases {
                            tr {
                                td { (fixed(phase.start_s, 1)) "–" (fixed(phase.end_s, 1)) " s" }
                                td { (phase.class) }
                                td { (phase.dominant_waits.join(", ")) }
                                td { (phase.model) }
                            }
                        }
                    }
                }
                p.muted { "Where the kind of work changed and stayed changed; each phase with the model it alone would get." }
            }
        }
    }
}

fn advice_sections(report: &Report) -> Markup {
    let recommendation = &report.recommendation;
    html! {
        section id="why" {
            h2 { "Why" }
            ul { @for reason in &recommendation.reasons { li { (reason) } } }
        }
        @if !recommendation.how.is_empty() {
            section id="how" {
                h2 { "How" }
                p { (recommendation.how) }
                @for alternative in &recommendation.alternatives { p { "or: " (alternative) } }
            }
        }
        section id="warning" {
            h2 { "Before you change anything" }
            p.warning { (recommendation.warning) }
        }
    }
}

fn sampling_section(report: &Report) -> Markup {
    let sampling = &report.sampling;
    let sources = &sampling.sources;
    let readable: Vec<&str> = [
        ("schedstat", sources.schedstat),
        ("syscall", sources.syscall),
        ("wchan", sources.wchan),
        ("fd", sources.fds),
    ]
    .into_iter()
    .map(|(name, ok)| if ok { name } else { "" })
    .filter(|name| !name.is_empty())
    .collect();
    html! {
        section id="sampling" {
            h2 { "How it was measured" }
            dl.facts {
                dt { "mode" } dd { (sampling.mode) }
                dt { "rate" } dd {
                    (sampling.rate_hz) " Hz asked, " (fixed(sampling.achieved_rate_hz, 1)) " Hz achieved ("
                    (sampling.samples) " samples, " (sampling.late_samples) " late)"
                    @if let Some(lowered) = sampling.lowered_to_hz {
                        "; slowed to " (fixed(lowered, 1)) " Hz to keep its own CPU under 5% of a core"
                    }
                }
                dt { "seen" } dd {
                    (count(sampling.threads_seen, "thread")) " in " (count(sampling.processes_seen, "process"))
                }
                @if sampling.threads_unseen > 0 {
                    dt { "not followed" } dd {
                        (sampling.threads_unseen) " threads ("
                        (sampling.unseen_cause.as_deref().unwrap_or("unreadable")) ")"
                    }
                }
                dt { "CPU totals" } dd { "from " (report.time.cpu_source) "; the sampler saw " (fixed(sampling.cpu_seen_s, 2)) " s" }
                dt { "concadvise's own CPU" } dd { (fixed(sampling.self_cpu_s, 3)) " s" }
                dt { "readable sources" } dd { (readable.join(", ")) }
                dt { "advice profile" } dd { (report.recommendation.profile) }
                dt { "machine" } dd {
                    (report.machine.cores) " cores, " (fixed(report.machine.memory_gib, 1)) " GiB, Linux "
                    (report.machine.kernel)
                }
            }
        }
    }
}

/// Runs of equal letters of the whole-program timeline, named; blank buckets are left out.
fn letter_runs(letters: &[char]) -> Vec<(usize, usize, String)> {
    let mut runs: Vec<(usize, usize, String)> = Vec::new();
    for (index, letter) in letters.iter().enumerate() {
        let Some(name) = letter_name(*letter) else {
            continue;
        };
        match runs.last_mut() {
            Some((start, count, state)) if state == name && *start + *count == index => *count += 1,
            _ => runs.push((index, 1, name.to_string())),
        }
    }
    runs
}

fn state_runs(runs: &[StateRunSection]) -> Vec<(usize, usize, String)> {
    runs.iter()
        .map(|run| (run.start, run.buckets, run.state.clone()))
        .collect()
}

/// Axis ticks: a round step that gives at most eight of them over `span_s`.
fn ticks(span_s: f64) -> Vec<(f64, String)> {
    const STEPS: [f64; 14] = [
        0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    ];
    let step = STEPS
        .into_iter()
        .find(|step| span_s / step <= 8.0)
        .unwrap_or_else(|| (span_s / 8.0 / 3600.0).ceil() * 3600.0);
    let decimals = if step < 0.1 {
        2
    } else if step < 1.0 {
        1
    } else {
        0
    };
    (0..)
        .map(|i| f64::from(i) * step)
        .take_while(|t| *t <= span_s + 1e-9)
        .map(|t| {
            let label = fixed(t, decimals);
            let label = if label.contains('.') {
                label.trim_end_matches('0').trim_end_matches('.')
            } else {
                &label
            };
            (t, format!("{label} s"))
        })
        .collect()
}

/// A colour per state that reads on white and in print; states added later get one of a
/// spare set, always the same for the same name.
pub fn colour(state: &str) -> &'static str {
    match state {
        "cpu" => "#2e7d32",
        "runqueue" => "#c62828",
        "disk" => "#1565c0",
        "network" => "#00838f",
        "ipc" => "#6a1b9a",
        "lock" => "#e65100",
        "sleep" => "#b0bec5",
        "event_wait" => "#bcaaa4",
        "child" => "#8d6e63",
        "input" => "#f9a825",
        "paging" => "#ad1457",
        "other" => "#546e7a",
        "unknown" => "#9e9e9e",
        _ => {
            const SPARE: [&str; 6] = [
                "#827717", "#283593", "#4e342e", "#00695c", "#880e4f", "#37474f",
            ];
            let hash = state.bytes().fold(0usize, |h, b| {
                h.wrapping_mul(31).wrapping_add(usize::from(b))
            });
            SPARE[hash % SPARE.len()]
        }
    }
}

/// "1 thread", "3 threads", "2 processes".
fn count(n: u64, noun: &str) -> String {
    match (n, noun.ends_with('s')) {
        (1, _) => format!("1 {noun}"),
        (_, true) => format!("{n} {noun}es"),
        (_, false) => format!("{n} {noun}s"),
    }
}

fn fixed(value: f64, decimals: usize) -> String {
    format!("{value:.decimals$}")
}

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// "2026-11-24T05:00:00Z" as "2026-11-24 05:00 UTC"; anything else as it is.
fn readable_date(rfc3339: &str) -> String {
    match humantime::parse_rfc3339(rfc3339) {
        Ok(time) => {
            let text = humantime::format_rfc3339_seconds(time).to_string();
            format!("{} {} UTC", &text[..10], &text[11..16])
        }
        Err(_) => rfc3339.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_a_colour_and_new_ones_get_a_stable_spare() {
        for state in crate::analysis::thread_timeline::State::all() {
            assert!(colour(state.name()).starts_with('#'));
        }
        assert_eq!(colour("throttled"), colour("throttled"));
        assert_ne!(colour("cpu"), colour("sleep"));
    }

    #[test]
    fn text_from_the_report_is_escaped() {
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/reports/before_thread_timelines.toml"
        );
        let text = std::fs::read_to_string(fixture).expect("the fixture exists");
        let mut report = crate::report::read::parse(&text).expect("the fixture is a report");
        report.target.command = vec!["<script>alert(1)</script>".into(), "a&b".into()];
        report.threads[0].name = "<b>x</b>".into();
        report.threads[0].timeline = vec![StateRunSection {
            start: 0,
            buckets: 3,
            state: "sleep".into(),
        }];
        let page = render(&report);
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<b>x"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; a&amp;b"));
        assert!(page.contains("&lt;b&gt;x&lt;/b&gt;"));
    }

    #[test]
    fn ticks_are_round_and_few() {
        let ticks = ticks(3.2);
        assert_eq!(ticks.first().map(|t| t.1.as_str()), Some("0 s"));
        assert_eq!(ticks.last().map(|t| t.1.as_str()), Some("3 s"));
        assert_eq!(ticks.get(1).map(|t| t.1.as_str()), Some("0.5 s"));
        assert!(ticks.len() <= 9);
        assert_eq!(
            super::ticks(65.0).last().map(|t| t.1.as_str()),
            Some("60 s")
        );
        assert_eq!(
            readable_date("2026-11-24T05:00:00Z"),
            "2026-11-24 05:00 UTC"
        );
    }
}
