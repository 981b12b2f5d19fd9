//! `sync_bound`: disk time that is mostly waiting for syncs, one per write or transaction.
//!
//! ## What it detects
//! An I/O-bound run whose disk wait is at least half syncs: fsync, fdatasync,
//! sync_file_range, msync, or writes to a descriptor opened with O_SYNC or O_DSYNC.
//!
//! ## Why it matters
//! Each sync waits for the device to confirm the data is durable: a few milliseconds on a
//! disk, far more than the write itself. One sync per insert or per record makes the program
//! as slow as the device's flush latency times the number of records. Threads help only when
//! the syncs go to independent files on a device that overlaps them; one SQLite database has
//! one writer, so there they do not help at all.
//!
//! ## Example
//! `sqlite3` running 1500 autocommit INSERTs (each its own transaction, each synced);
//! `dd oflag=dsync`.
//!
//! ## Instead
//! Fewer syncs: group the writes into one transaction per batch, let a write-ahead log
//! commit groups of them, relax the durability where it is not needed (`PRAGMA synchronous`),
//! or write with O_DIRECT and flush once.

use super::{pct, AdviceInput, Situation};
use crate::analysis::verdict::WorkloadClass;
use crate::analysis::wait_kind::WaitKind;

/// At least this share of the disk wait was syncs.
const MOSTLY_SYNCS: f64 = 0.5;

pub struct SyncBound;

impl Situation for SyncBound {
    fn name(&self) -> &'static str {
        "sync_bound"
    }

    fn applies(&self, input: &AdviceInput) -> bool {
        input.limits.syncs.as_ref().is_some_and(|syncs| {
            input.verdict.class == WorkloadClass::IoBound
                && input.verdict.dominant_wait == Some(WaitKind::Disk)
                && syncs.share() >= MOSTLY_SYNCS
        })
    }

    fn measured(&self, input: &AdviceInput) -> String {
        let Some(syncs) = input.limits.syncs.as_ref() else {
            return String::new();
        };
        let count = if syncs.syncs > 0 {
            format!(
                ", about {} of them ({:.0} a second, {:.1} ms each)",
                syncs.syncs,
                syncs.syncs as f64 / input.wall_s.max(f64::MIN_POSITIVE),
                1000.0 * syncs.sync_s / syncs.syncs as f64
            )
        } else {
            String::new()
        };
        format!(
            "{} of {} was spent waiting on the disk, and {:.2} s of the {:.2} s of disk wait \
             ({}) were syncs (fsync, fdatasync, O_SYNC writes){count}: each waits for the device \
             to make the data durable, so the number of syncs, not the amount of data or of \
             concurrency, sets the time.",
            pct(input.verdict.shares.io),
            input.own_time(),
            syncs.sync_s,
            syncs.disk_s,
            pct(syncs.share())
        )
    }
}
