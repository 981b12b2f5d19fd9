//! From snapshots to conclusions: wait kinds, time accounting, runtime detection, the verdict.

pub mod accountant;
pub mod phases;
pub mod runtime;
pub mod timeline;
pub mod verdict;
pub mod wait_kind;
