//! The scale report's schema (`[scale]`, `[[scale.levels]]`, `[scale.fit]`, `[scale.prediction]`), and reading and writing it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::fit::Law;
use crate::error::Error;
use crate::report::export::Format;
use crate::report::read;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleReport {
    pub schema_version: u32,
    pub scale: ScaleSection,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleSection {
    /// The command as given, `{n}` where the level goes.
    pub command: Vec<String>,
    /// The regex throughput was read with; absent: throughput = 1 / wall time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// The environment variable that carried the level, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// The levels asked for, in the order they were to run.
    pub levels_asked: Vec<u32>,
    /// Runs per level.
    pub repeat: u32,
    /// RFC 3339, UTC: when the first level started.
    pub started_at: String,
    /// Cores available to the program (from the first level's report).
    pub cores: usize,
    /// Stopped by Ctrl-C or a termination signal before every level ran.
    #[serde(default)]
    pub interrupted: bool,
    pub levels: Vec<LevelSection>,
    /// Why no law was fitted, when none was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_fit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<FitSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<PredictionSection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelSection {
    pub n: u32,
    /// "ok", "failed" (the program exited non-zero or was killed) or "interrupted"; only
    /// "ok" levels are fitted.
    pub status: String,
    /// The program's exit code when it was not 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that killed the program, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Units of work per second: the metric read, or 1 / wall_s (mean over the runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<f64>,
    /// Throughput relative to the lowest level measured (level 1 when it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speedup: Option<f64>,
    /// Speedup per worker added: speedup / (n / lowest level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efficiency: Option<f64>,
    /// With --repeat: the lowest and highest throughput of the runs (the noise band).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_max: Option<f64>,
    /// From the level's report (the run with the median throughput, with --repeat).
    pub avg_cores: f64,
    pub class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dominant_wait: Option<String>,
    pub wall_s: f64,
    /// Thread-seconds the program's threads waited for a CPU (the level's breakdown): at a
    /// level no larger than the cores, time the machine's other processes took.
    #[serde(default)]
    pub runqueue_s: f64,
    /// The level's full `run` report, a file beside this one (absent when none was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// With --repeat: each run's numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<RunSection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<f64>,
    pub wall_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

/// The Universal Scalability Law's fit, with Amdahl's beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitSection {
    /// The USL's serial share (contention).
    pub sigma: f64,
    /// The USL's coherency cost.
    pub kappa: f64,
    /// R² of the USL's speedup against the measured speedups.
    pub r2: f64,
    /// Where the USL's throughput peaks, N* = sqrt((1 − σ) / κ); absent when κ = 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_n: Option<f64>,
    /// The USL's speedup at N*.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_speedup: Option<f64>,
    /// The law that describes the measurements: linear, amdahl or usl.
    pub law: Law,
    /// What it means, in words.
    pub meaning: String,
    pub amdahl: AmdahlSection,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AmdahlSection {
    pub sigma: f64,
    pub r2: f64,
    /// 1 / σ: the speedup no number of workers passes (absent when σ = 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<f64>,
}

/// What the lowest level's own run predicted, set beside what the scan measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionSection {
    /// The level whose report made the prediction.
    pub from_n: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speedup_ceiling: Option<f64>,
    /// The model that run recommended.
    pub model: String,
    /// "predicted at most 3.1x with 8 workers; measured 3.08x at 4, falling to 2.5x at 8".
    pub check: String,
    /// The run's expected speedup for its advised change (its `[recommendation.expected]`),
    /// and where the scan's measurement at that many workers fell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<ExpectedCheck>,
}

/// The single run's band beside the scan's measurement at the advised number of workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectedCheck {
    pub change: String,
    pub low: f64,
    pub high: f64,
    /// The level the band is about (the advised workers), and the speedup measured there if
    /// the scan ran it.
    pub at_n: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inside: Option<bool>,
    /// "expected x1.4-x2.0 at N = 2 (the work spread over 2 processes); measured 1.98x: inside".
    pub text: String,
}

/// Whether `text` (TOML or JSON) is a scale report: it has a `[scale]` table.
pub fn is_scale(text: &str) -> bool {
    read::has_top_level_table(text, "scale")
}

pub fn load(path: &Path) -> Result<ScaleReport, Error> {
    let text = read::read_report_text(path)?;
    parse(&text).map_err(|reason| read::input_error(path, reason))
}

pub fn parse(text: &str) -> Result<ScaleReport, String> {
    read::parse_as(text)
}

pub fn serialize(report: &ScaleReport, format: Format) -> Result<Vec<u8>, Error> {
    format
        .serialize_value(report)
        .map_err(|e| Error::Setup(format!("{e:#}")))
}

/// A report as a pgbench scan would write it, for the tests of its readers.
#[cfg(test)]
pub mod sample {
    use super::*;

    pub fn level(n: u32, throughput: f64, speedup: f64) -> LevelSection {
        LevelSection {
            n,
            status: "ok".into(),
            exit_code: None,
            signal: None,
            throughput: Some(throughput),
            speedup: Some(speedup),
            efficiency: Some(speedup / f64::from(n)),
            throughput_min: None,
            throughput_max: None,
            avg_cores: 0.5 * f64::from(n),
            class: "io-bound".into(),
            dominant_wait: Some("network".into()),
            wall_s: 5.0,
            runqueue_s: 0.0,
            report: Some(format!("scale.{n}.toml")),
            runs: Vec::new(),
        }
    }

    pub fn pgbench_like() -> ScaleReport {
        ScaleReport {
            schema_version: 1,
            scale: ScaleSection {
                command: ["pgbench", "-c", "{n}", "bench"].map(String::from).to_vec(),
                metric: Some("tps = ([0-9.]+)".into()),
                env: None,
                levels_asked: vec![1, 2, 4, 8],
                repeat: 1,
                started_at: "2026-01-01T00:00:00Z".into(),
                cores: 2,
                interrupted: false,
                levels: vec![
                    level(1, 1809.0, 1.0),
                    level(2, 3106.0, 1.717),
                    level(4, 5563.0, 3.075),
                    level(8, 4528.0, 2.503),
                ],
                no_fit: None,
                fit: Some(FitSection {
                    sigma: 0.0,
                    kappa: 0.04,
                    r2: 0.95,
                    peak_n: Some(5.0),
                    peak_speedup: Some(2.8),
                    law: Law::Usl,
                    meaning: "coherency: past 5 workers they cost each other more than they add"
                        .into(),
                    amdahl: AmdahlSection {
                        sigma: 0.2,
                        r2: 0.7,
                        ceiling: Some(5.0),
                    },
                }),
                prediction: Some(PredictionSection {
                    expected: None,
                    from_n: 1,
                    workers: Some(8),
                    speedup_ceiling: Some(3.1),
                    model: "threads".into(),
                    check: "predicted at most 3.1x with 8 workers; measured 3.08x at 4".into(),
                }),
            },
        }
    }
}
