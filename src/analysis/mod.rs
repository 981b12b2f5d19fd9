//! From snapshots to conclusions: wait kinds, time accounting, runtime detection, the verdict.

pub mod accountant;
pub mod runtime;
pub mod verdict;
pub mod wait_kind;
