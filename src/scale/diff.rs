//! Compares two scale reports: the fitted laws (σ, κ, the peak) and the speedup at each level both measured.

use serde::{Deserialize, Serialize};

use super::fit::{percent, Law};
use super::report::{LevelSection, ScaleReport};
use super::summary::format_throughput;
use crate::report::terminal::{wrap, Look};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitSide {
    pub command: Vec<String>,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub law: Option<Law>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kappa: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r2: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_n: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_speedup: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amdahl_sigma: Option<f64>,
    /// The best measured speedup and the level it was measured at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_speedup: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_n: Option<u32>,
    /// Why there is no fit, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_fit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelChange {
    pub n: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_speedup: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_speedup: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_throughput: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_throughput: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleComparison {
    pub before: FitSide,
    pub after: FitSide,
    /// Every level either scan measured, ascending.
    pub levels: Vec<LevelChange>,
    pub summary: String,
    pub warnings: Vec<String>,
}

fn side(report: &ScaleReport) -> FitSide {
    let scale = &report.scale;
    let fit = scale.fit.as_ref();
    let best = scale
        .levels
        .iter()
        .filter_map(|l| l.speedup.map(|s| (l.n, s)))
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
    FitSide {
        command: scale.command.clone(),
        started_at: scale.started_at.clone(),
        law: fit.map(|f| f.law),
        sigma: fit.map(|f| f.sigma),
        kappa: fit.map(|f| f.kappa),
        r2: fit.map(|f| f.r2),
        peak_n: fit.and_then(|f| f.peak_n),
        peak_speedup: fit.and_then(|f| f.peak_speedup),
        amdahl_sigma: fit.map(|f| f.amdahl.sigma),
        best_speedup: best.map(|b| b.1),
        best_n: best.map(|b| b.0),
        no_fit: scale.no_fit.clone(),
    }
}

fn find(report: &ScaleReport, n: u32) -> Option<&LevelSection> {
    report.scale.levels.iter().find(|l| l.n == n)
}

pub fn compare(before: &ScaleReport, after: &ScaleReport) -> ScaleComparison {
    let (b, a) = (side(before), side(after));
    let mut ns: Vec<u32> = before
        .scale
        .levels
        .iter()
        .chain(&after.scale.levels)
        .map(|l| l.n)
        .collect();
    ns.sort_unstable();
    ns.dedup();
    let levels = ns
        .into_iter()
        .map(|n| LevelChange {
            n,
            before_speedup: find(before, n).and_then(|l| l.speedup),
            after_speedup: find(after, n).and_then(|l| l.speedup),
            before_throughput: find(before, n).and_then(|l| l.throughput),
            after_throughput: find(after, n).and_then(|l| l.throughput),
        })
        .collect();
    let mut warnings = Vec::new();
    if before.scale.command != after.scale.command {
        warnings.push(format!(
            "different commands: {} / {}",
            before.scale.command.join(" "),
            after.scale.command.join(" ")
        ));
    }
    if before.scale.metric != after.scale.metric {
        warnings.push(
            "throughput was read differently (--metric): compare the speedups, not the \
             throughputs"
                .to_string(),
        );
    }
    if before.scale.cores != after.scale.cores {
        warnings.push(format!(
            "measured on {} and {} cores",
            before.scale.cores, after.scale.cores
        ));
    }
    ScaleComparison {
        summary: summary(&b, &a),
        before: b,
        after: a,
        levels,
        warnings,
    }
}

/// σ of the law that fits: the USL's, or Amdahl's.
fn serial_share(side: &FitSide) -> Option<f64> {
    if side.law == Some(Law::Usl) {
        side.sigma
    } else {
        side.amdahl_sigma
    }
}

/// One sentence: how the peak, the serial share and the best speedup moved.
fn summary(before: &FitSide, after: &FitSide) -> String {
    let mut parts = Vec::new();
    match (before.no_fit.as_ref(), after.no_fit.as_ref()) {
        (Some(reason), _) => parts.push(format!("no fit before ({reason})")),
        (_, Some(reason)) => parts.push(format!("no fit after ({reason})")),
        (None, None) => {
            let peak = |side: &FitSide| match (side.peak_n, side.peak_speedup) {
                (Some(n), Some(s)) => format!("N* {n:.1} ({s:.2}x)"),
                _ => "none".to_string(),
            };
            // The USL's peak matters where the USL is the law that fits.
            if before.law == Some(Law::Usl) || after.law == Some(Law::Usl) {
                parts.push(format!("peak {} -> {}", peak(before), peak(after)));
            }
            if let (Some(b), Some(a)) = (serial_share(before), serial_share(after)) {
                parts.push(format!("serial share (σ) {} -> {}", percent(b), percent(a)));
            }
        }
    }
    let best = |side: &FitSide| match (side.best_speedup, side.best_n) {
        (Some(s), Some(n)) => format!("{s:.2}x at {n}"),
        _ => "none".to_string(),
    };
    parts.push(format!(
        "best measured speedup {} -> {}",
        best(before),
        best(after)
    ));
    parts.join("; ")
}

pub fn render(comparison: &ScaleComparison, look: Look) -> String {
    let mut out = wrap(
        &format!("concadvise diff (scale): {}", comparison.summary),
        look.width,
        "",
        "  ",
    );
    out.push_str(&fit_table(&comparison.before, &comparison.after));
    out.push_str(&levels_table(comparison));
    if !comparison.warnings.is_empty() {
        out.push('\n');
    }
    for warning in &comparison.warnings {
        out.push_str(&wrap(&format!("warning: {warning}"), look.width, "", "  "));
    }
    out
}

/// The fitted laws side by side: σ, κ, R², the peak, Amdahl's σ.
fn fit_table(b: &FitSide, a: &FitSide) -> String {
    let mut out = String::new();
    let number = |value: Option<f64>, digits: usize| {
        value.map_or("-".to_string(), |v| format!("{v:.digits$}"))
    };
    let law = |side: &FitSide| {
        side.law.map_or("-".to_string(), |law| {
            match law {
                Law::Linear => "linear",
                Law::Amdahl => "amdahl",
                Law::Usl => "usl",
            }
            .to_string()
        })
    };
    let rows = [
        ("law", law(b), law(a)),
        ("σ (serial)", number(b.sigma, 4), number(a.sigma, 4)),
        ("κ (coherency)", number(b.kappa, 5), number(a.kappa, 5)),
        ("R²", number(b.r2, 3), number(a.r2, 3)),
        ("peak N*", number(b.peak_n, 1), number(a.peak_n, 1)),
        (
            "peak speedup",
            number(b.peak_speedup, 2),
            number(a.peak_speedup, 2),
        ),
        (
            "Amdahl σ",
            number(b.amdahl_sigma, 4),
            number(a.amdahl_sigma, 4),
        ),
    ];
    out.push_str(&format!(
        "\n  {:<15} {:>10} {:>10}\n",
        "", "before", "after"
    ));
    for (name, before, after) in rows {
        out.push_str(&format!("  {name:<15} {before:>10} {after:>10}\n"));
    }
    out
}

/// The speedup and throughput at each level, before and after.
fn levels_table(comparison: &ScaleComparison) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "\n  {:>4} {:>10} {:>10}   {:>12} {:>12}\n",
        "N", "speedup", "", "throughput", ""
    ));
    out.push_str(&format!(
        "  {:>4} {:>10} {:>10}   {:>12} {:>12}\n",
        "", "before", "after", "before", "after"
    ));
    for level in &comparison.levels {
        let speedup = |s: Option<f64>| s.map_or("-".to_string(), |s| format!("{s:.2}x"));
        let throughput = |x: Option<f64>| x.map_or("-".to_string(), format_throughput);
        out.push_str(&format!(
            "  {:>4} {:>10} {:>10}   {:>12} {:>12}\n",
            level.n,
            speedup(level.before_speedup),
            speedup(level.after_speedup),
            throughput(level.before_throughput),
            throughput(level.after_throughput)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scale::report::sample::pgbench_like;

    #[test]
    fn the_peak_and_serial_share_moves_are_the_summary() {
        let before = pgbench_like();
        let mut after = pgbench_like();
        let fit = after.scale.fit.as_mut().unwrap();
        fit.sigma = 0.03;
        fit.peak_n = Some(7.2);
        fit.peak_speedup = Some(4.1);
        after.scale.levels[3].speedup = Some(4.0);
        after.scale.levels[3].throughput = Some(7236.0);
        after.scale.command[3] = "bench2".into();
        let comparison = compare(&before, &after);
        assert_eq!(
            comparison.summary,
            "peak N* 5.0 (2.80x) -> N* 7.2 (4.10x); serial share (σ) 0.0 % -> 3.0 %; \
             best measured speedup 3.08x at 4 -> 4.00x at 8"
        );
        assert_eq!(comparison.levels.len(), 4);
        assert_eq!(comparison.levels[3].after_speedup, Some(4.0));
        assert!(comparison.warnings[0].starts_with("different commands"));
        let text = render(
            &comparison,
            Look {
                width: 80,
                color: false,
            },
        );
        assert!(
            text.contains("peak N*                5.0        7.2"),
            "{text}"
        );
        assert!(text.contains("   8      2.50x      4.00x"), "{text}");
        assert!(text.contains("warning: different commands"));
    }

    #[test]
    fn a_side_without_a_fit_says_why() {
        let before = pgbench_like();
        let mut after = pgbench_like();
        after.scale.fit = None;
        after.scale.no_fit = Some("2 levels measured: a fit needs at least 3".into());
        let comparison = compare(&before, &after);
        assert!(
            comparison
                .summary
                .starts_with("no fit after (2 levels measured"),
            "{}",
            comparison.summary
        );
        assert_eq!(comparison.after.sigma, None);
    }
}
