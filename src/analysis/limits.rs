//! What limits the program from outside its own code: a container's CPU quota, one sync per write, a disk already saturated.
//!
//! The measurement of each is done tick by tick elsewhere (the accountant's `throttled` wait
//! kind, its sync share of the disk wait, the device tracker's busy time of each disk); this
//! module concludes from the totals.

use super::accountant::{Accountant, TimeSplit};
use super::devices::{DeviceTracker, DeviceUse};
use super::wait_kind::WaitKind;

/// The CPU quota in force for the tree, and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Quota {
    /// quota / period of the tightest cgroup the tree ran under.
    pub cores: f64,
    /// That cgroup's path, and its version (1 or 2).
    pub cgroup: String,
    pub version: u8,
    /// Thread-seconds the accounting put in `throttled`.
    pub throttled_s: f64,
    /// The cgroups' own throttled-time counters over the run (kernels differ in what they
    /// count there; some count little of it).
    pub counted_s: f64,
}

/// The part of the disk wait spent waiting for syncs.
#[derive(Debug, Clone, PartialEq)]
pub struct Syncs {
    /// Thread-seconds of sync waits (part of the disk wait) and of all disk waits.
    pub sync_s: f64,
    pub disk_s: f64,
    /// Thread-seconds of disk waits creating, renaming or deleting files (a journal's).
    pub metadata_s: f64,
    /// About how many syncs blocked: the times the syncing threads were scheduled back onto a
    /// CPU around them (each sync that blocks ends in one), so an upper-bound estimate.
    pub syncs: u64,
}

impl Syncs {
    pub fn share(&self) -> f64 {
        if self.disk_s > 0.0 {
            self.sync_s / self.disk_s
        } else {
            0.0
        }
    }

    /// The share of the disk wait that was syncs or file metadata changes: with one sync
    /// per record, the commits' whole disk cost.
    pub fn commit_share(&self) -> f64 {
        if self.disk_s > 0.0 {
            (self.sync_s + self.metadata_s) / self.disk_s
        } else {
            0.0
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub quota: Option<Quota>,
    pub syncs: Option<Syncs>,
    /// The devices the program's disk waits were on, most waited first.
    pub devices: Vec<DeviceUse>,
    /// Thread-seconds of disk wait, and of the part changing files' metadata (unlink...).
    pub disk_s: f64,
    pub file_metadata_s: f64,
}

/// A device holds "the" disk wait when at least this share of it was on its files.
pub const MOST_DISK_WAIT: f64 = 0.5;

impl Limits {
    /// The cores the program may use: the machine's, or its quota's when that is tighter.
    pub fn usable_cores(&self, machine_cores: f64) -> f64 {
        match &self.quota {
            Some(quota) => machine_cores.min(quota.cores),
            None => machine_cores,
        }
    }

    /// The measured disk most of the disk wait was on, if one was.
    pub fn main_disk(&self) -> Option<&DeviceUse> {
        self.devices
            .iter()
            .find(|d| d.share >= MOST_DISK_WAIT && d.measured.is_some())
    }

    /// That disk, when it was saturated.
    pub fn saturated_disk(&self) -> Option<&DeviceUse> {
        self.main_disk().filter(|d| d.saturated())
    }
}

pub fn conclude(accountant: &Accountant, breakdown: &TimeSplit, devices: &DeviceTracker) -> Limits {
    let quota = accountant.throttling.tightest().map(|cgroup| Quota {
        cores: cgroup.quota_cores,
        cgroup: cgroup.path.clone(),
        version: cgroup.version,
        throttled_s: breakdown.wait(WaitKind::Throttled) / 1e9,
        counted_s: accountant.throttling.counted_ns() / 1e9,
    });
    let syncs = (breakdown.disk_sync_ns > 0.0).then(|| Syncs {
        sync_s: breakdown.disk_sync_ns / 1e9,
        disk_s: breakdown.wait(WaitKind::Disk) / 1e9,
        metadata_s: breakdown.disk_metadata_ns / 1e9,
        syncs: accountant.sync_switches,
    });
    Limits {
        quota,
        syncs,
        devices: devices.conclude(breakdown.wait(WaitKind::Disk)),
        disk_s: breakdown.wait(WaitKind::Disk) / 1e9,
        file_metadata_s: breakdown.disk_metadata_ns / 1e9,
    }
}
