//! Compares two reports: what changed in wall time, CPU, cores used and where the time went, in numbers and one sentence.

use serde::{Deserialize, Serialize};

use super::terminal::Look;
use super::Report;
use crate::analysis::wait_kind::WaitKind;
use crate::printable::printable;

/// A wall-time change smaller than this (relative) is within run-to-run noise...
const NOISE_SHARE: f64 = 0.05;
/// ...or this, when either run waited for a CPU over 10% of its wall time (a busy machine).
const BUSY_NOISE_SHARE: f64 = 0.10;
/// ...or smaller than this in absolute terms.
const NOISE_FLOOR_S: f64 = 0.05;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Side {
    pub command: Vec<String>,
    pub started_at: String,
    pub wall_s: f64,
    pub cpu_s: f64,
    pub avg_cores: f64,
    pub class: String,
    pub model: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateRow {
    pub state: String,
    /// Wall-clock seconds (from each report's [wall]) and share of that run's wall time.
    pub before_s: f64,
    pub before_share: f64,
    pub after_s: f64,
    pub after_share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub before: Side,
    pub after: Side,
    /// before wall / after wall: above 1, the after run was faster.
    pub speedup: f64,
    pub within_noise: bool,
    pub summary: String,
    pub states: Vec<StateRow>,
    pub warnings: Vec<String>,
    /// The before-run's expected speedup set beside what was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<PredictionCheck>,
}

/// A band predicted from the before-run and the ratio the two runs measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionCheck {
    /// "wall" or "capacity" (see the report's recommendation.expected).
    pub measure: String,
    pub change: String,
    pub low: f64,
    pub high: f64,
    /// before wall / after wall ("wall" only: a capacity is measured by the load tool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inside: Option<bool>,
    /// "capacity" only: the event loop's blocked share before and after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_blocked: Option<(f64, f64)>,
}

/// The prediction check, when the before-run carries a band and the runs did the same work
/// (same command, or `same_work`); a capacity band is set beside the loop's blocked share.
fn prediction(
    before: &Report,
    after: &Report,
    same_work: bool,
    speedup: f64,
) -> Option<PredictionCheck> {
    let expected = before.recommendation.expected.as_ref()?;
    let (low, high) = (expected.low?, expected.high?);
    let blocked = |report: &Report| {
        report
            .concurrency
            .as_ref()
            .and_then(|c| c.event_loop.as_ref())
            .map_or(0.0, |l| l.blocked_share)
    };
    let mut check = PredictionCheck {
        measure: expected.measure.clone(),
        change: expected.change.clone(),
        low,
        high,
        measured: None,
        inside: None,
        loop_blocked: None,
    };
    if expected.measure == "capacity" {
        check.loop_blocked = Some((blocked(before), blocked(after)));
        return Some(check);
    }
    if !same_work && before.target.command != after.target.command {
        return None;
    }
    let measured = (speedup * 100.0).round() / 100.0;
    check.measured = Some(measured);
    // Two runs of the same work differ by a few per cent: that much past an edge is inside.
    let noise = 1.0 + NOISE_SHARE;
    check.inside = Some(low / noise <= measured && measured <= high * noise);
    Some(check)
}

fn side(report: &Report) -> Side {
    Side {
        command: report.target.command.clone(),
        started_at: report.target.started_at.clone(),
        wall_s: report.time.wall_s,
        cpu_s: report.time.cpu_s,
        avg_cores: report.time.avg_cores,
        class: report.verdict.class.clone(),
        model: report.recommendation.model.clone(),
    }
}

fn share(seconds: f64, total: f64) -> f64 {
    if total > 0.0 {
        ((seconds / total) * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

/// The comparison of two runs: the wall-time ratio, whether it is within run-to-run noise,
/// each state's seconds side by side, and warnings for comparisons that mislead.
pub fn compare(before: &Report, after: &Report, same_work: bool) -> Comparison {
    // Reports hold milliseconds: a wall time of 0 is under 1 ms (and the ratio stays finite).
    let speedup = before.time.wall_s.max(0.001) / after.time.wall_s.max(0.001);
    let busy = [before, after]
        .iter()
        .any(|r| r.wall.runqueue_s > 0.1 * r.time.wall_s);
    let noise = if busy { BUSY_NOISE_SHARE } else { NOISE_SHARE };
    let change = after.time.wall_s - before.time.wall_s;
    let within_noise = change.abs() < NOISE_FLOOR_S
        || change.abs() < noise * before.time.wall_s.max(after.time.wall_s);

    let before_states = before.wall.states();
    let after_states = after.wall.states();
    let states: Vec<StateRow> = before_states
        .iter()
        .zip(&after_states)
        .filter(|((_, b), (_, a))| *b >= 0.005 || *a >= 0.005)
        .map(|((name, b), (_, a))| StateRow {
            state: name.to_string(),
            before_s: *b,
            before_share: share(*b, before.time.wall_s),
            after_s: *a,
            after_share: share(*a, after.time.wall_s),
        })
        .collect();

    let mut warnings = Vec::new();
    if before.target.command != after.target.command && !same_work {
        warnings.push(format!(
            "the reports measured different commands ({} vs {}): compare like with like",
            before.target.command.join(" "),
            after.target.command.join(" ")
        ));
    }
    if within_noise {
        warnings.push(format!(
            "the change in wall time ({:+.0}%) is within run-to-run noise (under {:.0}%{} or \
             {:.0} ms): measure each version several times before concluding",
            100.0 * change / before.time.wall_s.max(f64::MIN_POSITIVE),
            noise * 100.0,
            if busy {
                ", as the machine was busy"
            } else {
                ""
            },
            NOISE_FLOOR_S * 1000.0
        ));
    }
    Comparison {
        prediction: prediction(before, after, same_work, speedup),
        summary: sentence(before, after, speedup, within_noise),
        before: side(before),
        after: side(after),
        speedup: (speedup * 100.0).round() / 100.0,
        within_noise,
        states,
        warnings,
    }
}

/// "wall time 2.9x shorter; network wait now overlaps: avg cores 0.02 -> 0.09".
fn sentence(before: &Report, after: &Report, speedup: f64, within_noise: bool) -> String {
    let mut parts = Vec::new();
    parts.push(if within_noise {
        "wall time about the same".to_string()
    } else if speedup >= 1.0 {
        format!("wall time {speedup:.1}x shorter")
    } else {
        format!("wall time {:.1}x longer", 1.0 / speedup)
    });
    let dominant = before
        .verdict
        .dominant_wait
        .as_deref()
        .and_then(|name| WaitKind::ALL.into_iter().find(|k| k.name() == name));
    let mut cores = format!(
        "avg cores {:.2} -> {:.2}",
        before.time.avg_cores, after.time.avg_cores
    );
    if let Some(kind) = dominant {
        let wall_before = before.wall.wait_s(kind);
        let wall_after = after.wall.wait_s(kind);
        let threads_before = before.breakdown.wait_s(kind);
        let threads_after = after.breakdown.wait_s(kind);
        if wall_before > 0.2 * before.time.wall_s && wall_after < 0.7 * wall_before {
            if threads_after >= 0.7 * threads_before {
                // As much waiting as before, in less wall time: the waits run side by side.
                cores = format!("{} wait now overlaps: {cores}", kind.name());
            } else {
                cores = format!("{} wait cut: {cores}", kind.name());
            }
        }
    }
    parts.push(cores);
    if before.verdict.class != after.verdict.class {
        parts.push(format!(
            "verdict {} -> {}",
            before.verdict.class, after.verdict.class
        ));
    }
    parts.join("; ")
}

/// The comparison as a table, row by row (one function: the rows share the column layout).
pub fn render(comparison: &Comparison, look: Look) -> String {
    let bold = |text: &str| {
        if look.color {
            console::style(text).bold().force_styling(true).to_string()
        } else {
            text.to_string()
        }
    };
    let (b, a) = (&comparison.before, &comparison.after);
    let mut out = format!(
        "{} {}\n\n",
        bold("concadvise diff:"),
        printable(&comparison.summary)
    );
    let row = |label: &str, before: String, after: String, change: String| {
        format!("  {label:<14}{before:>16}{after:>16}   {change}")
            .trim_end()
            .to_string()
            + "\n"
    };
    out.push_str(&row("", "before".into(), "after".into(), "change".into()));
    out.push_str(&row(
        "wall",
        format!("{:.2} s", b.wall_s),
        format!("{:.2} s", a.wall_s),
        ratio_words(b.wall_s, a.wall_s, "shorter", "longer"),
    ));
    out.push_str(&row(
        "cpu",
        format!("{:.2} s", b.cpu_s),
        format!("{:.2} s", a.cpu_s),
        ratio_words(b.cpu_s, a.cpu_s, "less", "more"),
    ));
    out.push_str(&row(
        "avg cores",
        format!("{:.2}", b.avg_cores),
        format!("{:.2}", a.avg_cores),
        format!("{:+.2}", a.avg_cores - b.avg_cores),
    ));
    out.push_str(&row(
        "verdict",
        printable(&b.class).into_owned(),
        printable(&a.class).into_owned(),
        String::new(),
    ));
    out.push_str(&row(
        "model",
        printable(&b.model).into_owned(),
        printable(&a.model).into_owned(),
        String::new(),
    ));
    out.push_str(&format!("\n{}\n", bold("where the wall time went")));
    for state in &comparison.states {
        out.push_str(&row(
            &format!("  {}", printable(&state.state)),
            format!(
                "{:.2} s {:>3.0}%",
                state.before_s,
                state.before_share * 100.0
            ),
            format!("{:.2} s {:>3.0}%", state.after_s, state.after_share * 100.0),
            format!("{:+.2} s", state.after_s - state.before_s),
        ));
    }
    if let Some(check) = &comparison.prediction {
        out.push_str(&format!("\n{}\n", prediction_line(check)));
    }
    for warning in &comparison.warnings {
        out.push_str(&format!("\nwarning: {}\n", printable(warning)));
    }
    out
}

/// "predicted x30-x90 with ..., measured x88: inside".
fn prediction_line(check: &PredictionCheck) -> String {
    let times = |v: f64| {
        if v >= 10.0 {
            format!("x{v:.0}")
        } else {
            format!("x{v:.1}")
        }
    };
    let band = format!("{}-{}", times(check.low), times(check.high));
    match (check.measured, check.inside, check.loop_blocked) {
        (Some(measured), Some(inside), _) => format!(
            "prediction: {band} with {}; measured {}: {}",
            check.change,
            times(measured),
            if inside {
                "inside"
            } else if measured < check.low {
                "below (the change bought less than expected)"
            } else {
                "above (the change bought more than expected)"
            }
        ),
        (_, _, Some((before, after))) => format!(
            "prediction: {band} the load it can take, with {}; the event loop was blocked {:.0}% \
             of its busy time before and {:.0}% after (the load generator measures the \
             requests per second)",
            check.change,
            before * 100.0,
            after * 100.0
        ),
        _ => format!("prediction: {band} with {}", check.change),
    }
}

/// "2.9x shorter", "12% more", "same".
fn ratio_words(before: f64, after: f64, less: &str, more: &str) -> String {
    if before <= 0.0 || after <= 0.0 {
        return String::new();
    }
    let ratio = before / after;
    if (ratio - 1.0).abs() < 0.01 {
        "same".to_string()
    } else if ratio >= 1.5 {
        format!("{ratio:.1}x {less}")
    } else if ratio <= 1.0 / 1.5 {
        format!("{:.1}x {more}", 1.0 / ratio)
    } else if ratio > 1.0 {
        format!("{:.0}% {less}", (1.0 - 1.0 / ratio) * 100.0)
    } else {
        format!("{:.0}% {more}", (1.0 / ratio - 1.0) * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_in_words() {
        assert_eq!(ratio_words(3.0, 1.0, "shorter", "longer"), "3.0x shorter");
        assert_eq!(ratio_words(1.0, 1.2, "less", "more"), "20% more");
        assert_eq!(ratio_words(1.0, 1.0, "less", "more"), "same");
    }
}
