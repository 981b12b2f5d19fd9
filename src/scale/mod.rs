//! `concadvise scale`: run a program at several concurrency levels, fit Amdahl's law and the Universal Scalability Law to its throughput, and find where it peaks.
//!
//! levels (what runs) -> runner (each level is a `concadvise run` child; --metric teed and
//! read) -> assemble (throughput, speedup, fit, prediction check) -> report / summary / diff.

pub mod assemble;
pub mod chart;
pub mod diff;
pub mod fit;
pub mod levels;
pub mod metric;
pub mod report;
pub mod runner;
pub mod summary;
