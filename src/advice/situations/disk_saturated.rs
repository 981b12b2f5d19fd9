//! `disk_saturated`: an I/O-bound program waiting on a disk that other work already keeps busy.
//!
//! ## What it detects
//! An I/O-bound run whose disk wait is mostly on one disk (half of it or more) that was busy
//! (io_ticks of /proc/diskstats: time with a request in flight) at least 90 % of the time
//! the program waited on it, for at least 0.2 s, while its queue held at least as many
//! requests beyond the program's own waits as the program had waiting (and at least one).
//!
//! ## Why it matters
//! More threads or more requests in flight help only while the device has time left to serve
//! them. A disk busy nearly all the time with other work (another process, the kernel's
//! writeback or readahead) has none: the program's extra requests join its queue, each waits
//! longer, and the run is no faster. A disk busy only with the program's one request at a time
//! is a different case (any device is busy while a program waits on it one request at a
//! time; an SSD serves several at once): that stays `io_disk`, and its reasons say so.
//!
//! ## Example
//! A loop of 4 KiB O_DIRECT writes on a disk that a backup job keeps busy with writes of its
//! own.
//!
//! ## Instead
//! Less I/O rather than more concurrency: read less (cache what is read again), write less and
//! in larger sequential pieces, move the other load off the disk (or run at a quieter time),
//! or a faster device. `iostat -x`, `pidstat -d` or `iotop` show what else uses it.

use super::{pct, AdviceInput, Situation, Sizing};
use crate::advice::expected::{amdahl, Band, Estimate};
use crate::analysis::devices::{DeviceUse, DiskMeasure};
use crate::analysis::verdict::WorkloadClass;
use crate::analysis::wait_kind::WaitKind;

pub struct DiskSaturated;

/// The saturated disk most of the disk wait was on, with its measurement.
fn saturated<'a>(input: &AdviceInput<'a>) -> Option<(&'a DeviceUse, DiskMeasure)> {
    let device = input.limits.saturated_disk()?;
    Some((device, device.measured?))
}

/// "the device vda (254:0) behind /, /home", with the devices between when there are.
fn named(device: &DeviceUse) -> String {
    let via = device
        .disk
        .as_ref()
        .filter(|disk| !disk.via.is_empty())
        .map_or(String::new(), |disk| {
            format!(", through {}", disk.via.join(", "))
        });
    format!(
        "the disk {} behind {}{via}",
        device.label(),
        device.mounts.join(", ")
    )
}

/// What the disk did while the program waited on it, in one clause.
fn busy_clause(device: &DeviceUse, measured: &DiskMeasure) -> String {
    format!(
        "{} was busy {} of the time over the {:.1} s the program waited on it (io_ticks in \
         /proc/diskstats, each sampling tick counted for the share of it the program waited), \
         with {:.1} requests in flight on average: {:.1} beyond the program's own waits \
         ({:.1})",
        named(device),
        pct(measured.busy_share),
        measured.waited_s,
        measured.in_flight,
        measured.others_in_flight(),
        measured.own_in_flight
    )
}

impl Situation for DiskSaturated {
    fn name(&self) -> &'static str {
        "disk_saturated"
    }

    fn applies(&self, input: &AdviceInput) -> bool {
        input.verdict.class == WorkloadClass::IoBound
            && input.verdict.dominant_wait == Some(WaitKind::Disk)
            && saturated(input).is_some()
    }

    fn measured(&self, input: &AdviceInput) -> String {
        let Some((device, measured)) = saturated(input) else {
            return String::new();
        };
        format!(
            "{} of {} was spent waiting on the disk, and {}. The disk is saturated, mostly \
             with other work (another process, the kernel's writeback or readahead): more \
             concurrency will not make it faster, as the program's extra requests would only \
             join its queue.",
            pct(input.verdict.shares.io),
            input.own_time(),
            busy_clause(device, &measured)
        )
    }

    fn sizing(&self, input: &AdviceInput) -> Sizing {
        let Some((_, measured)) = saturated(input) else {
            return Sizing::default();
        };
        let ceiling = device_ceiling(input, &measured);
        Sizing {
            workers: None,
            ceiling: Some(super::round2(ceiling)),
            text: Some(format!(
                "Speedup ceiling: {ceiling:.2}x. The disk had {} of its time left while the \
                 program waited on it: its waits can shrink at most by 1 / {:.2}, whatever the \
                 concurrency.",
                pct(1.0 - measured.busy_share),
                measured.busy_share
            )),
        }
    }

    fn change(&self) -> &'static str {
        "more requests in flight on the same disk"
    }

    /// A profile without advice of its own for it gets none but the measured reasons (no
    /// other situation's "how" fits).
    fn fallback(&self) -> &'static str {
        "disk_saturated"
    }

    fn expected(&self, input: &AdviceInput, _sizing: &Sizing) -> Estimate {
        let Some((device, measured)) = saturated(input) else {
            return Estimate::Unavailable("no saturated disk was measured".into());
        };
        let ceiling = device_ceiling(input, &measured);
        Estimate::band(
            Band::new(1.0, 0.8, ceiling.max(1.1)).widened_for(input),
            format!(
                "{} was busy {} of the time the program waited on it, mostly with other work: \
                 more requests join its queue; at most its idle {} is left",
                device.label(),
                pct(measured.busy_share),
                pct(1.0 - measured.busy_share)
            ),
        )
    }
}

/// Amdahl on the waiting share, with the disk waits shrinking at most by what the disk had
/// left (1 / its busy share).
fn device_ceiling(input: &AdviceInput, measured: &DiskMeasure) -> f64 {
    amdahl(input.verdict.shares.io, 1.0 / measured.busy_share.max(0.01))
}

/// What the disk the program mostly waited on says, for situations other than this one
/// whose dominant wait is the disk: that it was saturated (the advice still stands, as fewer
/// syncs mean less work for it), or that it was busy only with the program's own requests,
/// which is not saturation.
/// Deleting, truncating and renaming files took at least this share of the disk wait...
const METADATA_SHARE: f64 = 0.2;
/// ...and the disk wait at least this share of the wall time (thread-seconds).
const DISK_SHARE_OF_WALL: f64 = 0.05;

/// When deleting files waited on a device mounted with online discard: the mount option, and
/// a periodic fstrim instead.
pub fn discard_reason(input: &AdviceInput) -> Option<String> {
    let limits = input.limits;
    let heavy = limits.file_metadata_s >= METADATA_SHARE * limits.disk_s
        && limits.disk_s >= DISK_SHARE_OF_WALL * input.wall_s
        && limits.file_metadata_s > 0.0;
    let device = limits
        .devices
        .iter()
        .find(|d| d.discard)
        .filter(|_| heavy)?;
    let mount = device
        .mounts
        .first()
        .map_or("its filesystem", String::as_str);
    Some(format!(
        "{:.2} s of the {:.2} s of disk wait went creating, deleting, truncating or renaming \
         files, and {mount} ({}) is mounted with discard: each deleted file's blocks are \
         trimmed on the device before the call returns. A periodic fstrim (systemd's \
         fstrim.timer) instead of the mount option takes that wait off the program; fewer \
         files created and deleted (a temporary directory in memory, a journal that is kept) \
         does too.",
        limits.file_metadata_s, limits.disk_s, device.filesystem
    ))
}

pub fn device_reason(input: &AdviceInput) -> Option<String> {
    if input.verdict.dominant_wait != Some(WaitKind::Disk) {
        return None;
    }
    let device = input.limits.main_disk()?;
    let measured = device.measured?;
    if measured.saturated() {
        return Some(format!(
            "{}. The disk is saturated, mostly with other work: more concurrency will not make \
             it faster (less work for it will: fewer syncs, less I/O).",
            capitalised(&busy_clause(device, &measured))
        ));
    }
    if measured.busy_share >= crate::analysis::devices::SATURATED_BUSY {
        let rotational = match device.disk.as_ref().and_then(|d| d.rotational) {
            Some(true) => {
                " The kernel marks it rotational: if it is a spinning disk, its busy time is \
                 about its capacity (virtual disks often claim to be one)."
            }
            _ => "",
        };
        return Some(format!(
            "{}. Busy nearly all the time, but with the program's own requests, about one at \
             a time: that is what waiting on a disk one request at a time looks like, not \
             saturation; a device that serves several at once (an SSD) may take more.\
             {rotational}",
            capitalised(&busy_clause(device, &measured))
        ));
    }
    None
}

/// The band of overlapping disk waits, held to what the disk had left when its busy time was
/// mostly others' queue: the waits can shrink at most by 1 / its busy share.
pub fn held_to_disk(input: &AdviceInput, estimate: Estimate) -> Estimate {
    let Estimate::Band { band, basis } = estimate else {
        return estimate;
    };
    let Some((device, measured, ceiling)) = disk_headroom(input) else {
        return Estimate::Band { band, basis };
    };
    if ceiling >= band.high {
        return Estimate::Band { band, basis };
    }
    let high = ceiling.max(1.0);
    Estimate::band(
        Band::new(band.speedup.min(high), band.low.min(high), high),
        format!(
            "{basis}; but {} was busy {} of the time the program waited on it, mostly with \
             other work, so the disk waits can shrink at most by 1 / {:.2}: the band stops at \
             x{high:.2}",
            device.label(),
            pct(measured.busy_share),
            measured.busy_share
        ),
    )
}

/// The sizing of overlapping disk waits, its ceiling held the same way as the band.
pub fn sizing_held_to_disk(input: &AdviceInput, mut sizing: Sizing) -> Sizing {
    let Some((device, measured, ceiling)) = disk_headroom(input) else {
        return sizing;
    };
    if sizing.ceiling.is_some_and(|c| c > ceiling) {
        sizing.ceiling = Some(super::round2(ceiling));
        if let Some(text) = sizing.text.as_mut() {
            text.push_str(&format!(
                " The disk {} was busy {} of the time the program waited on it, mostly with \
                 other work: what it has left holds the ceiling to {ceiling:.2}x.",
                device.label(),
                pct(measured.busy_share)
            ));
        }
    }
    sizing
}

/// The main disk, when its busy time was mostly others' (so its idle time is what it has left
/// for more requests), and the ceiling that leaves.
fn disk_headroom<'a>(input: &AdviceInput<'a>) -> Option<(&'a DeviceUse, DiskMeasure, f64)> {
    if input.verdict.dominant_wait != Some(WaitKind::Disk) {
        return None;
    }
    let device = input.limits.main_disk()?;
    let measured = device.measured?;
    if !measured.busy_is_shared() || measured.waited_s < crate::analysis::devices::MIN_WAITED_S {
        return None;
    }
    Some((device, measured, device_ceiling(input, &measured)))
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
