//! From the runs of each level to the scale report: throughput and speedup per level, the fits, the prediction check.

use super::fit::{choose_law, fit_amdahl, fit_usl, meaning, Law, Point};
use super::report::{
    AmdahlSection, ExpectedCheck, FitSection, LevelSection, PredictionSection, RunSection,
    ScaleReport, ScaleSection,
};
use super::runner::{Level, Run, RunStatus, Scan};
use crate::report::{round3, SCHEMA_VERSION};

/// Wall times are in milliseconds: a faster run counts as one millisecond.
const SHORTEST_WALL_S: f64 = 0.001;

/// What the scan was asked to do.
pub struct Setup<'a> {
    pub command: &'a [String],
    pub metric: Option<&'a str>,
    pub env: Option<&'a str>,
    pub levels_asked: &'a [u32],
    pub repeat: u32,
    /// Whether the level reports are kept beside the scale report.
    pub files_kept: bool,
}

/// Below this R², the fit's words come with a warning.
pub const LOOSE_FIT_R2: f64 = 0.8;

/// A scan needs this many levels for a fit.
pub const MIN_FIT_LEVELS: usize = 3;

pub fn assemble(setup: &Setup<'_>, scan: &Scan) -> ScaleReport {
    let mut levels: Vec<LevelSection> = scan
        .levels
        .iter()
        .map(|level| level_section(level, setup))
        .collect();
    set_speedups(&mut levels);
    let measured: Vec<&LevelSection> = levels.iter().filter(|l| l.status == "ok").collect();
    let (fit, no_fit) = match fit_levels(&measured) {
        Ok(fit) => (Some(fit), None),
        Err(reason) => (None, Some(reason)),
    };
    let prediction = scan
        .levels
        .first()
        .filter(|level| level.status() == RunStatus::Ok)
        .and_then(|level| level.runs.first().map(|run| (level.n, run)))
        .map(|(n, run)| prediction(n, run, &measured));
    ScaleReport {
        schema_version: SCHEMA_VERSION,
        scale: ScaleSection {
            command: setup.command.to_vec(),
            metric: setup.metric.map(str::to_string),
            env: setup.env.map(str::to_string),
            levels_asked: setup.levels_asked.to_vec(),
            repeat: setup.repeat,
            started_at: humantime::format_rfc3339_seconds(scan.started_at).to_string(),
            cores: scan
                .levels
                .first()
                .and_then(|l| l.runs.first())
                .map_or(0, |run| run.report.machine.cores),
            interrupted: scan.interrupted,
            levels,
            no_fit,
            fit,
            prediction,
        },
    }
}

/// Units of work per second of one run: the metric read, else one run's work per wall second.
fn throughput(run: &Run) -> f64 {
    run.metric
        .unwrap_or_else(|| 1.0 / run.report.time.wall_s.max(SHORTEST_WALL_S))
}

fn level_section(level: &Level, setup: &Setup<'_>) -> LevelSection {
    let status = level.status();
    let file = |run: &Run| setup.files_kept.then(|| run.file.clone());
    let throughputs: Vec<f64> = level.runs.iter().map(throughput).collect();
    // The run that speaks for the level: the one with the median throughput, or the one
    // that did not end well.
    let representative = if status == RunStatus::Ok {
        let mut order: Vec<usize> = (0..level.runs.len()).collect();
        order.sort_by(|&a, &b| throughputs[a].total_cmp(&throughputs[b]));
        order.get(order.len() / 2).copied().unwrap_or(0)
    } else {
        level
            .runs
            .iter()
            .position(|run| run.status == status)
            .unwrap_or(0)
    };
    let run = &level.runs[representative];
    let report = &run.report;
    let ok = status == RunStatus::Ok;
    let repeated = level.runs.len() > 1;
    let mean = throughputs.iter().sum::<f64>() / throughputs.len().max(1) as f64;
    let band = |pick: fn(f64, f64) -> f64| {
        (ok && repeated)
            .then(|| round_sig(throughputs.iter().copied().reduce(pick).unwrap_or(mean)))
    };
    LevelSection {
        n: level.n,
        status: status.name().to_string(),
        exit_code: report.target.exit_code.filter(|&code| code != 0),
        signal: report.target.signal,
        throughput: ok.then(|| round_sig(mean)),
        speedup: None,
        efficiency: None,
        throughput_min: band(f64::min),
        throughput_max: band(f64::max),
        avg_cores: report.time.avg_cores,
        class: report.verdict.class.clone(),
        dominant_wait: report.verdict.dominant_wait.clone(),
        wall_s: report.time.wall_s,
        runqueue_s: report.breakdown.runqueue_s,
        report: file(run),
        runs: if repeated {
            level
                .runs
                .iter()
                .zip(&throughputs)
                .map(|(run, &x)| RunSection {
                    throughput: (run.status == RunStatus::Ok).then(|| round_sig(x)),
                    wall_s: run.report.time.wall_s,
                    report: file(run),
                })
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// Speedup and efficiency relative to the lowest level measured.
fn set_speedups(levels: &mut [LevelSection]) {
    let Some((base_n, base_x)) = levels
        .iter()
        .filter_map(|l| l.throughput.map(|x| (l.n, x)))
        .min_by_key(|&(n, _)| n)
    else {
        return;
    };
    if base_x <= 0.0 {
        return;
    }
    for level in levels {
        if let Some(x) = level.throughput {
            let speedup = x / base_x;
            level.speedup = Some(round3(speedup));
            level.efficiency = Some(round3(speedup * f64::from(base_n) / f64::from(level.n)));
        }
    }
}

/// The USL and Amdahl fits over the measured levels, or why there is none.
fn fit_levels(measured: &[&LevelSection]) -> Result<FitSection, String> {
    if measured.len() < MIN_FIT_LEVELS {
        return Err(format!(
            "{} level{} measured: a fit needs at least {MIN_FIT_LEVELS}",
            measured.len(),
            if measured.len() == 1 { "" } else { "s" }
        ));
    }
    if measured.first().is_none_or(|l| l.n != 1) {
        return Err(
            "level 1 was not measured: the laws are fitted to throughput relative to \
                    one worker (add 1 to --levels)"
                .to_string(),
        );
    }
    let points: Vec<Point> = measured
        .iter()
        .filter_map(|l| {
            l.speedup.map(|speedup| Point {
                n: f64::from(l.n),
                capacity: speedup,
            })
        })
        .collect();
    let (Some(usl), Some(amdahl)) = (fit_usl(&points), fit_amdahl(&points)) else {
        return Err("the measured levels do not determine a fit".to_string());
    };
    let law = choose_law(&usl, &amdahl, &points);
    let max_n = measured.iter().map(|l| l.n).max().unwrap_or(1);
    let peak = usl.peak();
    let chosen_r2 = if law == Law::Usl { usl.r2 } else { amdahl.r2 };
    let mut meaning = meaning(law, &usl, &amdahl, max_n);
    if chosen_r2 < LOOSE_FIT_R2 {
        meaning.push_str(&format!(
            " (a loose fit, R² {chosen_r2:.2}: the levels may be noisy; try --repeat 3)"
        ));
    }
    Ok(FitSection {
        sigma: round_sig(usl.sigma),
        kappa: round_sig(usl.kappa),
        r2: round3(usl.r2),
        peak_n: peak.map(|(n, _)| round3(n)),
        peak_speedup: peak.map(|(_, c)| round3(c)),
        law,
        meaning,
        amdahl: AmdahlSection {
            sigma: round_sig(amdahl.sigma),
            r2: round3(amdahl.r2),
            ceiling: amdahl.ceiling().map(round3),
        },
    })
}

/// What the lowest level's run predicted, beside what was measured.
fn prediction(from_n: u32, run: &Run, measured: &[&LevelSection]) -> PredictionSection {
    let recommendation = &run.report.recommendation;
    let speedups: Vec<(u32, f64)> = measured
        .iter()
        .filter_map(|l| l.speedup.map(|s| (l.n, s)))
        .collect();
    PredictionSection {
        expected: expected_check(recommendation, &speedups),
        from_n,
        workers: recommendation.workers,
        speedup_ceiling: recommendation.speedup_ceiling,
        model: recommendation.model.clone(),
        check: prediction_check(
            recommendation.workers,
            recommendation.speedup_ceiling,
            &recommendation.model,
            &speedups,
        ),
    }
}

/// The run's expected band for its change at its advised workers, beside the speedup the scan
/// measured at that level (when it ran it). Only a `wall` band of a change that adds workers
/// is about the scan's axis.
fn expected_check(
    recommendation: &crate::report::RecommendationSection,
    speedups: &[(u32, f64)],
) -> Option<ExpectedCheck> {
    let expected = recommendation.expected.as_ref()?;
    let (Some(low), Some(high), Some(at_n)) = (expected.low, expected.high, recommendation.workers)
    else {
        return None;
    };
    if expected.measure != "wall" {
        return None;
    }
    let measured = speedups.iter().find(|(n, _)| *n == at_n).map(|(_, s)| *s);
    let inside = measured.map(|m| (low..=high).contains(&m));
    let band = format!(
        "expected x{low:.1}-x{high:.1} at N = {at_n} ({})",
        expected.change
    );
    let text = match (measured, inside) {
        (Some(m), Some(true)) => format!("{band}; measured {m:.2}x: inside"),
        (Some(m), Some(false)) if m < low => {
            format!("{band}; measured {m:.2}x: below (the change bought less than expected)")
        }
        (Some(m), _) => {
            format!("{band}; measured {m:.2}x: above (the change bought more than expected)")
        }
        (None, _) => format!("{band}; N = {at_n} was not among the levels"),
    };
    Some(ExpectedCheck {
        change: expected.change.clone(),
        low,
        high,
        at_n,
        measured,
        inside,
        text,
    })
}

/// A measured speedup this much above the predicted ceiling proves it wrong (noise aside).
const CEILING_MARGIN: f64 = 1.05;
/// The speedup at the highest level "fell" when it is this far below the best.
const FELL: f64 = 0.95;

/// "predicted at most 3.1x with 8 workers; measured 3.08x at 4, falling to 2.50x at 8; ..."
pub fn prediction_check(
    workers: Option<u32>,
    ceiling: Option<f64>,
    model: &str,
    speedups: &[(u32, f64)],
) -> String {
    let predicted = match (workers, ceiling) {
        (Some(w), Some(c)) => format!("predicted at most {c:.1}x with {w} workers"),
        (Some(w), None) => format!("predicted {w} workers"),
        (None, Some(c)) => format!("predicted at most {c:.1}x"),
        (None, None) => format!("predicted no gain from more workers (model {model})"),
    };
    // The best speedup, at the fewest workers on a tie.
    let best = speedups
        .iter()
        .copied()
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
    let last = speedups.iter().copied().max_by_key(|&(n, _)| n);
    let (Some((best_n, best)), Some((last_n, last))) = (best, last) else {
        return format!("{predicted}; nothing measured to compare");
    };
    if speedups.len() < 2 {
        return format!("{predicted}; only N = {best_n} measured");
    }
    let mut text = format!("{predicted}; measured {best:.2}x at {best_n}");
    let fell = last_n > best_n && last < FELL * best;
    if fell {
        text.push_str(&format!(", falling to {last:.2}x at {last_n}"));
    }
    match (ceiling, workers) {
        (Some(c), _) if best > CEILING_MARGIN * c => text.push_str(": above the predicted ceiling"),
        (Some(_), Some(w)) if fell && best_n < w => text.push_str(&format!(
            ": the ceiling held, but the speedup peaked at {}, not {w}",
            count_workers(best_n)
        )),
        (Some(_), Some(w)) if w > last_n => text.push_str(&format!(
            ": the ceiling held up to N = {last_n} (the prediction's {w} workers were not tried)"
        )),
        (Some(_), _) => text.push_str(": the ceiling held"),
        (None, _) if best > CEILING_MARGIN => text.push_str(": more workers did help"),
        (None, _) => {}
    }
    text
}

fn count_workers(n: u32) -> String {
    if n == 1 {
        "1 worker".to_string()
    } else {
        format!("{n} workers")
    }
}

/// Four significant digits: throughput spans tps in thousands and runs per second in
/// fractions.
fn round_sig(value: f64) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return value;
    }
    let magnitude = value.abs().log10().floor() as i32;
    let factor = 10f64.powi(3 - magnitude);
    (value * factor).round() / factor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_example_reads_as_written() {
        let check = prediction_check(
            Some(8),
            Some(3.1),
            "threads",
            &[(1, 1.0), (2, 1.717), (4, 3.075), (8, 2.503)],
        );
        assert_eq!(
            check,
            "predicted at most 3.1x with 8 workers; measured 3.08x at 4, falling to 2.50x at 8: \
             the ceiling held, but the speedup peaked at 4 workers, not 8"
        );
    }

    #[test]
    fn a_ceiling_beaten_or_untested_says_so() {
        let above = prediction_check(Some(2), Some(1.5), "threads", &[(1, 1.0), (2, 1.9)]);
        assert!(
            above.ends_with("measured 1.90x at 2: above the predicted ceiling"),
            "{above}"
        );
        let untried = prediction_check(Some(933), Some(182.7), "async", &[(1, 1.0), (8, 7.6)]);
        assert!(
            untried.contains("held up to N = 8 (the prediction's 933 workers"),
            "{untried}"
        );
        let none = prediction_check(None, None, "none", &[(1, 1.0), (2, 1.0)]);
        assert_eq!(
            none,
            "predicted no gain from more workers (model none); measured 1.00x at 1"
        );
        let one = prediction_check(Some(2), Some(2.0), "threads", &[(1, 1.0)]);
        assert!(one.ends_with("only N = 1 measured"), "{one}");
    }

    #[test]
    fn four_significant_digits() {
        assert_eq!(round_sig(1809.123), 1809.0);
        assert_eq!(round_sig(0.123456), 0.1235);
        assert_eq!(round_sig(12.3456), 12.35);
        assert_eq!(round_sig(0.0), 0.0);
    }
}
