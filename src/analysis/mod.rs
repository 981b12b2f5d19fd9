//! From snapshots to conclusions: wait kinds, time accounting, runtime detection, the verdict.

pub mod accountant;
pub mod contention;
pub mod phases;
pub mod timeline;
pub mod verdict;
pub mod wait_kind;
