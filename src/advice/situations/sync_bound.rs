//! `sync_bound`: disk time that is mostly waiting for syncs, one per write or transaction.
//!
//! ## What it detects
//! An I/O-bound run whose disk wait is at least half syncs: fsync, fdatasync,
//! sync_file_range, msync, or writes to a descriptor opened with O_SYNC or O_DSYNC. At 50
//! syncs a second or more (one per record), a third is enough, or half with the files each
//! commit creates, renames or deletes around its syncs (SQLite's rollback journal: on a
//! filesystem mounted with `discard` its unlink waits for the device too).
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

use super::{pct, short_duration, AdviceInput, Situation, Sizing};
use crate::advice::expected::{Band, Estimate};
use crate::analysis::verdict::WorkloadClass;
use crate::analysis::wait_kind::WaitKind;

/// At least this share of the disk wait was syncs...
const MOSTLY_SYNCS: f64 = 0.5;
/// ...or at least this share, at this many syncs a second or more (one per record: the
/// rest of the disk wait is then mostly each commit's own file work, such as a journal's).
const MANY_SYNCS_SHARE: f64 = 0.3;
const MANY_SYNCS_PER_S: f64 = 50.0;

pub struct SyncBound;

/// How well a short run's user time is known: about one timer tick (4 ms at 250 Hz).
const SPLIT_UNCERTAINTY_S: f64 = 0.004;
/// What the one sync left may take at worst: a batch of pages written through (measured
/// here: 1-12 ms for 1500 rows on an SSD).
const BATCH_FLUSH_S: f64 = 0.01;

impl Situation for SyncBound {
    fn name(&self) -> &'static str {
        "sync_bound"
    }

    fn applies(&self, input: &AdviceInput) -> bool {
        input.limits.syncs.as_ref().is_some_and(|syncs| {
            input.verdict.class == WorkloadClass::IoBound
                && input.verdict.dominant_wait == Some(WaitKind::Disk)
                && (syncs.share() >= MOSTLY_SYNCS
                    || (syncs.syncs as f64 >= MANY_SYNCS_PER_S * input.wall_s
                        && (syncs.share() >= MANY_SYNCS_SHARE
                            || syncs.commit_share() >= MOSTLY_SYNCS)))
        })
    }

    fn measured(&self, input: &AdviceInput) -> String {
        let Some(syncs) = input.limits.syncs.as_ref() else {
            return String::new();
        };
        let count = if syncs.syncs > 0 {
            format!(
                ", up to about {} of them ({:.0} a second, {} each at least)",
                syncs.syncs,
                syncs.syncs as f64 / input.wall_s.max(f64::MIN_POSITIVE),
                short_duration(syncs.sync_s / syncs.syncs as f64)
            )
        } else {
            String::new()
        };
        let files = if syncs.metadata_s >= 0.01 * syncs.disk_s.max(f64::MIN_POSITIVE) {
            format!(
                "; another {:.2} s ({}) went creating, renaming or deleting files around them \
                 (a journal's, a temporary file's)",
                syncs.metadata_s,
                pct(syncs.metadata_s / syncs.disk_s)
            )
        } else {
            String::new()
        };
        format!(
            "{} of {} was spent waiting on the disk, and {:.2} s of the {:.2} s of disk wait \
             ({}) were syncs (fsync, fdatasync, O_SYNC writes){count}{files}: each waits for the device \
             to make the data durable, so the number of syncs, not the amount of data or of \
             concurrency, sets the time.",
            pct(input.verdict.shares.io),
            input.own_time(),
            syncs.sync_s,
            syncs.disk_s,
            pct(syncs.share())
        )
    }

    fn change(&self) -> &'static str {
        "the writes grouped into fewer syncs (one transaction per batch)"
    }

    /// The syncs go but one per batch stays, and with them the rest of the per-commit work:
    /// its system time (journal files, the syncs' own work) and its other disk waits. What
    /// stays is the statements' own work, a part of the user time: assumed 20 % to 55 % of
    /// it (33 % at the point), as a commit also costs user time in the library that makes it.
    fn expected(&self, input: &AdviceInput, _sizing: &Sizing) -> Estimate {
        let Some(syncs) = input.limits.syncs.as_ref() else {
            return Estimate::Unavailable("no syncs were measured".into());
        };
        let wall = input.wall_s.max(f64::MIN_POSITIVE);
        let one_sync = syncs.sync_s / syncs.syncs.max(1) as f64;
        // What stays: one sync, the process's start and exit, and the statements' own part of
        // the user time. That user time is known only to about a timer tick: the kernel splits
        // CPU time into user and system by sampling at its ticks.
        // The sync that stays writes every page the batch changed: from one average sync of
        // the run to the time a drive takes to write such a batch through (`BATCH_FLUSH_S`).
        let after = |user_share: f64, user_s: f64, flush_s: f64, fixed_s: f64| {
            (user_share * user_s + flush_s + fixed_s).max(0.001 * wall)
        };
        let user = input.user_s;
        let (low, point, high) = (
            wall / after(
                0.6,
                user + SPLIT_UNCERTAINTY_S,
                (3.0 * one_sync).max(BATCH_FLUSH_S),
                0.001,
            ),
            wall / after(0.33, user, 1.5 * one_sync, 0.0007),
            wall / after(0.1, user, one_sync, 0.0005),
        );
        Estimate::band(
            Band::new(point, low, high).widened_for(input),
            format!(
                "{:.2} s of the {wall:.2} s were syncs, up to about {} of them; one stays, and \
                 the rest of each commit's work goes with them (its {:.2} s of kernel time, \
                 its other disk waits; the one left writes the whole batch, from one average sync to \
                 about 10 ms); of the {:.3} s of user time (known to about 4 ms), the \
                 statements' own part stays, assumed a tenth to three fifths of it (a slow disk makes each commit's own user time grow), and the \
                 program's start and exit (0.5 to 1 ms)",
                input.wall_sync_s, syncs.syncs, input.system_s, input.user_s
            ),
        )
    }
}
