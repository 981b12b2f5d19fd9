//! The scan's summary for the terminal (and `show`): the law in words, a table per level, the chart, the fits, the prediction check.

use console::Style;

use super::assemble::LOOSE_FIT_R2;
use super::chart::Chart;
use super::fit::{usl_capacity, Law};
use super::report::{FitSection, LevelSection, ScaleReport};
use crate::report::shorten;
use crate::report::terminal::{wrap, Look};

/// Rows of the chart's plot.
const CHART_ROWS: usize = 12;

pub fn render(report: &ScaleReport, look: Look) -> String {
    let scale = &report.scale;
    let mut out = String::new();
    out.push_str(&heading(report, look));

    out.push_str(&format!("\n{}\n", bold(look, &table_header())));
    for level in &scale.levels {
        out.push_str(&table_row(level));
        out.push('\n');
    }

    if let Some(note) = stop_note(report) {
        out.push_str(&wrap(&note, look.width, "  ", "  "));
    }
    for note in [busy_machine_note(report), cores_note(report)]
        .into_iter()
        .flatten()
    {
        out.push_str(&wrap(&note, look.width, "  ", "  "));
    }

    out.push_str(&chart_section(report, look));
    out.push_str(&fit_and_prediction(report, look));
    out.push_str(&level_reports_line(report, look));
    out
}

/// `text` in bold (when colouring).
fn bold(look: Look, text: &str) -> String {
    look.paint(Style::new().bold(), text)
}

/// The headline (the law in words, or why there is none) and the command with its facts.
fn heading(report: &ScaleReport, look: Look) -> String {
    let scale = &report.scale;
    let mut out = String::new();
    let headline = match (&scale.fit, &scale.no_fit) {
        (Some(fit), _) => fit.meaning.clone(),
        (None, Some(reason)) => format!("no fit: {reason}"),
        (None, None) => "no fit".to_string(),
    };
    out.push_str(&wrap(
        &format!("{} {headline}", bold(look, "concadvise scale:")),
        look.width,
        "",
        "  ",
    ));
    out.push_str(&wrap(
        &format!(
            "{}  [{}]",
            shorten(&scale.command.join(" "), 2 * look.width),
            facts(report).join(", ")
        ),
        look.width,
        "  ",
        "    ",
    ));
    out
}

/// The speedup-against-N chart, with the fitted curve; empty with fewer than two speedups.
fn chart_section(report: &ScaleReport, look: Look) -> String {
    let scale = &report.scale;
    let mut out = String::new();
    let measured: Vec<(f64, f64)> = scale
        .levels
        .iter()
        .filter_map(|l| l.speedup.map(|s| (f64::from(l.n), s)))
        .collect();
    if measured.len() >= 2 {
        out.push_str(&format!("\n{}\n", bold(look, "speedup against N")));
        let fit = scale.fit.as_ref();
        let curve = fit.map(fitted_curve);
        let label = fit.map_or("", |fit| match fit.law {
            Law::Usl => "USL fit",
            Law::Amdahl | Law::Linear => "Amdahl fit",
        });
        let chart = Chart {
            measured: &measured,
            curve: curve.as_ref().map(|f| (f as &dyn Fn(f64) -> f64, label)),
            width: look.width,
            height: CHART_ROWS,
        };
        for line in chart.render() {
            out.push_str(&line);
            out.push('\n');
        }
    }

    out
}

/// The fit's parameters and the prediction check, when there are.
fn fit_and_prediction(report: &ScaleReport, look: Look) -> String {
    let scale = &report.scale;
    let mut out = String::new();
    if let Some(fit) = &scale.fit {
        out.push_str(&format!(
            "\n{}\n",
            bold(look, "fit (least squares on the speedups)")
        ));
        out.push_str(&fit_lines(fit));
    }
    if let Some(prediction) = &scale.prediction {
        out.push_str(&format!(
            "\n{}\n",
            bold(
                look,
                &format!(
                    "prediction (from the N = {} run, model {})",
                    prediction.from_n, prediction.model
                )
            )
        ));
        out.push_str(&wrap(&prediction.check, look.width, "  ", "  "));
        if let Some(expected) = &prediction.expected {
            out.push_str(&wrap(&expected.text, look.width, "  ", "  "));
        }
    }
    out
}

/// Where the level reports were written (first … last), when any were.
fn level_reports_line(report: &ScaleReport, look: Look) -> String {
    let scale = &report.scale;
    let mut out = String::new();
    let files: Vec<&str> = scale
        .levels
        .iter()
        .flat_map(|l| {
            if l.runs.is_empty() {
                l.report.iter().map(String::as_str).collect::<Vec<_>>()
            } else {
                l.runs.iter().filter_map(|r| r.report.as_deref()).collect()
            }
        })
        .collect();
    if let (Some(first), Some(last)) = (files.first(), files.last()) {
        let span = if files.len() == 1 {
            first.to_string()
        } else {
            format!("{first} … {last}")
        };
        out.push('\n');
        out.push_str(&wrap(
            &format!(
                "level reports: {span} (beside the scale report; `concadvise show` prints one)"
            ),
            look.width,
            "",
            "  ",
        ));
    }
    out
}

/// The bracketed facts after the command: how throughput was read, levels, cores, trouble.
fn facts(report: &ScaleReport) -> Vec<String> {
    let scale = &report.scale;
    let mut facts = vec![match &scale.metric {
        Some(metric) => format!("throughput from {metric:?}"),
        None => "throughput = 1 / wall time".to_string(),
    }];
    if let Some(env) = &scale.env {
        facts.push(format!("N in ${env}"));
    }
    facts.push(format!(
        "{} of {} levels",
        scale.levels.iter().filter(|l| l.status == "ok").count(),
        scale.levels_asked.len()
    ));
    if scale.repeat > 1 {
        facts.push(format!("{} runs each", scale.repeat));
    }
    facts.push(format!("{} cores", scale.cores));
    for level in scale.levels.iter().filter(|l| l.status == "failed") {
        facts.push(format!("N = {} failed", level.n));
    }
    if scale.interrupted {
        facts.push("interrupted".to_string());
    }
    facts
}

/// Why the scan ended before its last level, if it did.
fn stop_note(report: &ScaleReport) -> Option<String> {
    let scale = &report.scale;
    let last = scale.levels.last();
    let all_ran = scale.levels.len() == scale.levels_asked.len();
    match last {
        Some(level) if level.status == "interrupted" => Some(format!(
            "(interrupted during N = {}: only the levels before it count)",
            level.n
        )),
        Some(level) if scale.interrupted && !all_ran => Some(format!(
            "(interrupted after N = {}: the levels after it did not run)",
            level.n
        )),
        None if scale.interrupted => Some("(interrupted before the first level ended)".into()),
        Some(level) if level.status == "failed" && !all_ran => Some(format!(
            "(stopped at N = {}: its program failed; --keep-going runs the remaining levels)",
            level.n
        )),
        _ => None,
    }
}

/// Waiting for a CPU this share of the wall time, with no more threads than cores, means
/// other processes were using the cores.
const BUSY_RUNQUEUE_SHARE: f64 = 0.1;

/// A warning when, at a level that fits in the cores, the program waited for a CPU: the
/// speedups then measure the machine's load as much as the program.
fn busy_machine_note(report: &ScaleReport) -> Option<String> {
    let cores = report.scale.cores;
    let (level, share) = report
        .scale
        .levels
        .iter()
        .filter(|l| l.n as usize <= cores && l.wall_s > 0.0)
        .map(|l| (l, l.runqueue_s / l.wall_s))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    (share > BUSY_RUNQUEUE_SHARE).then(|| {
        format!(
            "(the machine was busy: at N = {} the program's threads waited for a CPU {:.0} % of \
             the time, though it had {cores} cores: other processes took them, so the \
             speedups are uncertain; measure on a quiet machine, or with --repeat)",
            level.n,
            share * 100.0
        )
    })
}

/// A cpu-bound program whose speedup reached this share of the cores was stopped by them.
const CORES_REACHED: f64 = 0.85;

/// When every level was cpu-bound and the speedup reached about the number of cores: the
/// machine, not the program, set the limit the fit describes.
fn cores_note(report: &ScaleReport) -> Option<String> {
    let scale = &report.scale;
    let measured: Vec<&LevelSection> = scale.levels.iter().filter(|l| l.status == "ok").collect();
    let best = measured
        .iter()
        .filter_map(|l| l.speedup)
        .fold(0.0, f64::max);
    let cores = scale.cores as f64;
    let all_cpu_bound = !measured.is_empty() && measured.iter().all(|l| l.class == "cpu-bound");
    let past_cores = measured.iter().any(|l| f64::from(l.n) > cores);
    (all_cpu_bound && past_cores && cores > 0.0 && best >= CORES_REACHED * cores).then(|| {
        format!(
            "(every level was cpu-bound and the speedup reached {best:.2}x on {} cores: past \
             that the cores, not the program, set the limit)",
            scale.cores
        )
    })
}

fn table_header() -> String {
    format!(
        "{:>4}{:>12}{:>9}{:>11}{:>11}  {:<14}{:<9}{:>8}",
        "N", "throughput", "speedup", "efficiency", "avg cores", "dominant wait", "verdict", "wall"
    )
}

fn table_row(level: &LevelSection) -> String {
    let throughput = match (level.status.as_str(), level.throughput) {
        ("ok", Some(x)) => {
            let band = match (level.throughput_min, level.throughput_max) {
                (Some(low), Some(high)) if x > 0.0 => {
                    format!(" ±{:.0}%", 50.0 * (high - low) / x)
                }
                _ => String::new(),
            };
            format!("{}{band}", format_throughput(x))
        }
        ("failed", _) => match (level.exit_code, level.signal) {
            (_, Some(signal)) => format!("signal {signal}"),
            (Some(code), None) => format!("exit {code}"),
            (None, None) => "failed".to_string(),
        },
        (status, _) => status.to_string(),
    };
    let speedup = level
        .speedup
        .map_or("-".to_string(), |s| format!("{s:.2}x"));
    let efficiency = level
        .efficiency
        .map_or("-".to_string(), |e| format!("{:.0}%", e * 100.0));
    format!(
        "{:>4}{:>12}{:>9}{:>11}{:>11.2}  {:<14}{:<9}{:>8}",
        level.n,
        throughput,
        speedup,
        efficiency,
        level.avg_cores,
        shorten(level.dominant_wait.as_deref().unwrap_or("-"), 13),
        level.class,
        format!("{:.2} s", level.wall_s)
    )
}

/// Enough digits to compare levels: 1809, 312.5, 2.47, 0.987.
pub fn format_throughput(x: f64) -> String {
    if x >= 1000.0 {
        format!("{x:.0}")
    } else if x >= 100.0 {
        format!("{x:.1}")
    } else if x >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// The speedup curve of the law the fit chose.
fn fitted_curve(fit: &FitSection) -> impl Fn(f64) -> f64 {
    let (sigma, kappa) = match fit.law {
        Law::Usl => (fit.sigma, fit.kappa),
        Law::Amdahl | Law::Linear => (fit.amdahl.sigma, 0.0),
    };
    move |n| usl_capacity(sigma, kappa, n)
}

fn fit_lines(fit: &FitSection) -> String {
    let peak = match (fit.peak_n, fit.peak_speedup) {
        (Some(n), Some(speedup)) => format!("peak at N = {n:.1}: {speedup:.2}x"),
        _ => "no peak (κ = 0)".to_string(),
    };
    let ceiling = fit
        .amdahl
        .ceiling
        .map_or("no ceiling (σ = 0)".to_string(), |c| {
            format!("ceiling {c:.1}x")
        });
    let chosen_r2 = if fit.law == Law::Usl {
        fit.r2
    } else {
        fit.amdahl.r2
    };
    let verdict = match fit.law {
        _ if chosen_r2 < LOOSE_FIT_R2 => {
            "neither law fits these levels closely (R² under 0.8): noisy? try --repeat 3"
        }
        Law::Usl => "the USL fits best: its κ explains what Amdahl's law cannot",
        Law::Amdahl => "Amdahl's law fits: the USL's κ adds nothing",
        Law::Linear => "linear: neither law finds a serial share or a coherency cost",
    };
    format!(
        "  USL     σ {:<8.4} κ {:<8.5} R² {:<6.3} {peak}\n  \
         Amdahl  σ {:<8.4} {:10} R² {:<6.3} {ceiling}\n  {verdict}\n",
        fit.sigma, fit.kappa, fit.r2, fit.amdahl.sigma, "", fit.amdahl.r2
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scale::report::sample::pgbench_like;

    /// The summary at 80 columns, without colour.
    fn plain(report: &ScaleReport) -> String {
        render(
            report,
            Look {
                width: 80,
                color: false,
            },
        )
    }

    #[test]
    fn the_summary_has_the_law_the_table_the_chart_and_the_prediction() {
        let text = plain(&pgbench_like());
        assert!(
            text.starts_with("concadvise scale: coherency: past 5 workers"),
            "{text}"
        );
        assert!(
            text.contains("throughput from \"tps = ([0-9.]+)\", 4 of 4"),
            "{text}"
        );
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("4 "))
            .unwrap();
        assert!(
            row.contains("5563") && row.contains("3.08x") && row.contains("77%"),
            "{row}"
        );
        assert!(text.contains("speedup against N") && text.contains('●'));
        assert!(
            text.contains("USL     σ 0.0000   κ 0.04000  R² 0.950  peak at N = 5.0: 2.80x"),
            "{text}"
        );
        assert!(text.contains("predicted at most 3.1x with 8 workers"));
        assert!(text.contains("level reports: scale.1.toml … scale.8.toml"));
        assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn a_cpu_bound_scan_that_filled_the_cores_says_so() {
        let mut report = pgbench_like();
        for level in &mut report.scale.levels {
            level.class = "cpu-bound".into();
        }
        let text = plain(&report);
        assert!(
            text.contains("(every level was cpu-bound and the speedup reached 3.08x on 2"),
            "{text}"
        );
        report.scale.cores = 8;
        let text = plain(&report);
        assert!(!text.contains("every level was cpu-bound"), "{text}");
    }

    #[test]
    fn without_a_fit_the_reason_leads_and_failed_levels_show_their_exit() {
        let mut report = pgbench_like();
        report.scale.fit = None;
        report.scale.no_fit = Some("2 levels measured: a fit needs at least 3".into());
        report.scale.levels.truncate(3);
        let failed = &mut report.scale.levels[2];
        failed.status = "failed".into();
        failed.exit_code = Some(3);
        failed.throughput = None;
        failed.speedup = None;
        failed.efficiency = None;
        let text = plain(&report);
        assert!(
            text.starts_with("concadvise scale: no fit: 2 levels measured"),
            "{text}"
        );
        assert!(text.contains("N = 4 failed"));
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("4 "))
            .unwrap();
        assert!(row.contains("exit 3"), "{row}");
        assert!(!text.contains("fit (least squares"));
        assert!(
            text.contains("(stopped at N = 4: its program failed; --keep-going"),
            "{text}"
        );
    }
}
