//! concadvise: measure where a program's time goes and advise processes, threads, async or nothing.
//!
//! The pipeline, one folder each: `target` (launch or attach) -> `sampler` (read /proc) ->
//! `analysis` (wait kinds, time accounting, verdict) -> `advice` (concurrency model) ->
//! `report` (TOML/JSON and the terminal summary); `scale` runs `run` at several concurrency
//! levels and fits the scaling laws.

pub mod advice;
pub mod analysis;
pub mod cli;
pub mod commands;
pub mod doctor;
pub mod error;
pub mod input_file;
pub mod machine;
pub mod notice;
pub mod output_path;
pub mod printable;
pub mod profile;
pub mod progress;
pub mod report;
pub mod sampler;
pub mod scale;
pub mod target;

/// The version, with the git commit when built from a checkout (`build.rs`).
pub const VERSION: &str = env!("CONCADVISE_VERSION");
