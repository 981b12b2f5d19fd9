//! Whether the disks behind the files the program waited on were already saturated: their busy time (diskstats io_ticks) while it waited on them.
//!
//! Each tick pairs the disks' counters (read by the sampler) with the tree's disk wait on the
//! files of each (the accountant's, by mount). A tick counts for the share of it the tree
//! waited on the disk (its waiting threads' time over the tick, at most 1), so the disk's busy
//! share is taken over the time the program waited on it, however its waits are spread.
//!
//! A disk busy all the time is not yet saturated: any device has a request in flight the whole
//! time a program waits on it one request at a time (io_ticks counts time with at least one
//! request in flight, not how many the device could serve at once). It is saturated when it
//! was busy at least `SATURATED_BUSY` of that time and its queue held at least as many
//! requests beyond the program's own waits as the program had waiting (and at least one):
//! other work (another process, the kernel's writeback or readahead) keeps it busy, and more
//! requests from the program only join that queue.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::accountant::TickIntervals;
use crate::sampler::observation::{DeviceInfo, DiskInfo, DiskSample, FileMount, TickSnapshot};

/// Busy at least this share of the time the program waited on it...
pub const SATURATED_BUSY: f64 = 0.9;
/// ...for at least this long (wall seconds waited on it), to judge at all.
pub const MIN_WAITED_S: f64 = 0.2;
/// Devices whose files were waited on less than this (thread-seconds) are not reported.
const MIN_WAIT_S: f64 = 0.001;

/// What one device did while the program waited on its files.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceUse {
    /// The disk whose busy time counts, when there is one.
    pub disk: Option<DiskInfo>,
    /// Why there is none (memory, overlay, several disks...).
    pub unmeasured: Option<String>,
    /// The mount points waited on whose files are on it, most waited first.
    pub mounts: Vec<String>,
    /// The filesystem type of the first of them.
    pub filesystem: String,
    /// One of them is mounted with online discard (see `FileMount::discard`).
    pub discard: bool,
    /// Thread-seconds of the program's disk waits on it, and their share of all its disk wait.
    pub wait_s: f64,
    pub share: f64,
    /// The measurement, when there is a disk and it was sampled while waited on.
    pub measured: Option<DiskMeasure>,
}

/// A disk's counters over the time the program waited on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskMeasure {
    /// Wall seconds the program waited on it (at least one thread; sampled span).
    pub waited_s: f64,
    /// The share of that time it had a request in flight (io_ticks).
    pub busy_share: f64,
    /// Requests in flight on it on average meanwhile (diskstats' weighted time).
    pub in_flight: f64,
    /// The program's waits on it in the same time: about its own requests among them.
    pub own_in_flight: f64,
    /// Its busy share over the whole time it was sampled.
    pub run_busy_share: Option<f64>,
}

impl DiskMeasure {
    /// Requests in flight beyond the program's own waits (another process, writeback,
    /// readahead).
    pub fn others_in_flight(&self) -> f64 {
        (self.in_flight - self.own_in_flight).max(0.0)
    }

    /// Its busy time is mostly others' queue: what is not busy is what it has left for more
    /// requests (a device serving only the program's one request at a time may serve more
    /// at once: its busy time says nothing of that).
    pub fn busy_is_shared(&self) -> bool {
        self.others_in_flight() >= self.own_in_flight.max(1.0)
    }

    /// Busy nearly all the time it was waited on, mostly with others' requests.
    pub fn saturated(&self) -> bool {
        self.waited_s >= MIN_WAITED_S && self.busy_share >= SATURATED_BUSY && self.busy_is_shared()
    }
}

impl DeviceUse {
    pub fn saturated(&self) -> bool {
        self.measured.as_ref().is_some_and(DiskMeasure::saturated)
    }

    /// "vda (254:0)", or the first mount point without a disk.
    pub fn label(&self) -> String {
        match &self.disk {
            Some(disk) => format!("{} ({})", disk.name, disk.major_minor),
            None => self.mounts.first().cloned().unwrap_or_default(),
        }
    }
}

/// One disk's counters and what they summed to while waited on.
#[derive(Debug, Clone)]
struct DiskTrack {
    info: DiskInfo,
    first: Option<(u64, DiskSample)>,
    last: Option<(u64, DiskSample)>,
    /// Over the ticks the tree waited on it, each weighted by the share of the tick it
    /// waited: wall time, busy time, request-time in flight, the tree's waiting.
    waited_ns: f64,
    busy_ns: f64,
    queue_ns: f64,
    own_ns: f64,
}

#[derive(Debug, Default)]
pub struct DeviceTracker {
    /// What the sampler found behind each filesystem device ("major:minor").
    devices: HashMap<String, DeviceInfo>,
    disks: BTreeMap<u32, DiskTrack>,
    /// The tree's disk wait over the run, by mount.
    mounts: MountWaits,
}

/// The difference of two of the kernel's 32-bit millisecond counters, in nanoseconds.
fn ms_delta_ns(now: u32, before: u32) -> f64 {
    f64::from(now.wrapping_sub(before)) * 1e6
}

impl DeviceTracker {
    /// One tick: the devices met, the tree's disk wait on each (`tick`, from the accountant)
    /// and the disks' counters.
    pub fn ingest(&mut self, snapshot: &TickSnapshot, tick: &TickIntervals) {
        for info in &snapshot.new_devices {
            if let Some(disk) = &info.disk {
                self.disks.entry(disk.id).or_insert_with(|| DiskTrack {
                    info: disk.clone(),
                    first: None,
                    last: None,
                    waited_ns: 0.0,
                    busy_ns: 0.0,
                    queue_ns: 0.0,
                    own_ns: 0.0,
                });
            }
            self.devices.insert(info.device.clone(), info.clone());
        }
        let mut own: HashMap<u32, f64> = HashMap::new();
        for (mount, ns) in &tick.disk_waits {
            match self.mounts.iter_mut().find(|(known, _)| known == mount) {
                Some((_, total)) => *total += ns,
                None => self.mounts.push((Arc::clone(mount), *ns)),
            }
            if let Some(id) = self.disk_id(&mount.device) {
                *own.entry(id).or_insert(0.0) += ns;
            }
        }
        for sample in &snapshot.disks {
            let Some(track) = self.disks.get_mut(&sample.id) else {
                continue;
            };
            if let Some((at_ns, last)) = track.last {
                let tick_ns = snapshot.at_ns.saturating_sub(at_ns) as f64;
                let own_ns = own.get(&sample.id).copied().unwrap_or(0.0);
                if tick_ns > 0.0 && own_ns > 0.0 {
                    let weight = (own_ns / tick_ns).min(1.0);
                    track.waited_ns += weight * tick_ns;
                    track.busy_ns += weight * ms_delta_ns(sample.busy_ms, last.busy_ms);
                    track.queue_ns += weight * ms_delta_ns(sample.queue_ms, last.queue_ms);
                    track.own_ns += weight * own_ns;
                }
            }
            track.first.get_or_insert((snapshot.at_ns, *sample));
            track.last = Some((snapshot.at_ns, *sample));
        }
    }

    fn disk_id(&self, device: &str) -> Option<u32> {
        self.devices
            .get(device)
            .and_then(|info| info.disk.as_ref())
            .map(|disk| disk.id)
    }

    /// Every device the program's disk waits were on, most waited first; `disk_wait_ns` is
    /// the tree's whole disk wait (thread-nanoseconds).
    pub fn conclude(&self, disk_wait_ns: f64) -> Vec<DeviceUse> {
        // The mounts by what they are on: a disk's number, or a device without one.
        let mut groups: Vec<(GroupKey, MountWaits)> = Vec::new();
        for (mount, ns) in &self.mounts {
            let Some(info) = self.devices.get(&mount.device) else {
                continue;
            };
            let key = match &info.disk {
                Some(disk) => GroupKey::Disk(disk.id),
                None => GroupKey::Device(info.device.clone()),
            };
            match groups.iter_mut().find(|(known, _)| *known == key) {
                Some((_, mounts)) => mounts.push((Arc::clone(mount), *ns)),
                None => groups.push((key, vec![(Arc::clone(mount), *ns)])),
            }
        }
        let mut uses: Vec<DeviceUse> = groups
            .into_iter()
            .filter_map(|(key, mounts)| self.device_use(key, mounts, disk_wait_ns))
            .collect();
        uses.sort_by(|a, b| b.wait_s.total_cmp(&a.wait_s));
        uses
    }

    /// One device's use from the waits on its mounts; `None` when they add up to too little.
    fn device_use(
        &self,
        key: GroupKey,
        mut mounts: MountWaits,
        disk_wait_ns: f64,
    ) -> Option<DeviceUse> {
        mounts.sort_by(|a, b| b.1.total_cmp(&a.1));
        let wait_ns: f64 = mounts.iter().map(|(_, ns)| ns).sum();
        if wait_ns / 1e9 < MIN_WAIT_S {
            return None;
        }
        let (disk, unmeasured, measured) = match key {
            GroupKey::Disk(id) => {
                let track = self.disks.get(&id)?;
                (Some(track.info.clone()), None, measure(track))
            }
            GroupKey::Device(device) => (None, self.devices.get(&device)?.unmeasured.clone(), None),
        };
        let mut points: Vec<String> = Vec::new();
        for (mount, _) in &mounts {
            if !points.contains(&mount.point) {
                points.push(mount.point.clone());
            }
        }
        Some(DeviceUse {
            disk,
            unmeasured,
            filesystem: mounts
                .first()
                .map(|(m, _)| m.fs_type.clone())
                .unwrap_or_default(),
            discard: mounts.iter().any(|(mount, _)| mount.discard),
            mounts: points,
            wait_s: wait_ns / 1e9,
            share: if disk_wait_ns > 0.0 {
                (wait_ns / disk_wait_ns).min(1.0)
            } else {
                0.0
            },
            measured,
        })
    }
}

/// Disk waits by mount (thread-nanoseconds).
type MountWaits = Vec<(Arc<FileMount>, f64)>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum GroupKey {
    Disk(u32),
    Device(String),
}

/// A disk's measurement, when it was sampled while the program waited on it.
fn measure(track: &DiskTrack) -> Option<DiskMeasure> {
    if track.waited_ns <= 0.0 {
        return None;
    }
    let run_busy_share = match (track.first, track.last) {
        (Some((first_at, first)), Some((last_at, last))) if last_at > first_at => {
            Some((ms_delta_ns(last.busy_ms, first.busy_ms) / (last_at - first_at) as f64).min(1.0))
        }
        _ => None,
    };
    Some(DiskMeasure {
        waited_s: track.waited_ns / 1e9,
        busy_share: (track.busy_ns / track.waited_ns).min(1.0),
        in_flight: track.queue_ns / track.waited_ns,
        own_in_flight: track.own_ns / track.waited_ns,
        run_busy_share,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(point: &str, fs_type: &str, device: &str) -> Arc<FileMount> {
        Arc::new(FileMount {
            point: point.into(),
            fs_type: fs_type.into(),
            source: String::new(),
            device: device.into(),
            network: false,
            discard: false,
        })
    }

    fn disk(id: u32, name: &str) -> DiskInfo {
        DiskInfo {
            id,
            name: name.into(),
            major_minor: format!("8:{}", id * 16),
            via: Vec::new(),
            rotational: Some(false),
        }
    }

    /// Ticks of 10 ms: the disk's busy and queue milliseconds added per tick, and the tree's
    /// disk wait on `on` per tick (ms of thread time).
    fn run(ticks: &[(u32, u32, f64)], on: &Arc<FileMount>) -> DeviceTracker {
        let mut tracker = DeviceTracker::default();
        let (mut busy, mut queue) = (u32::MAX - 5, 1000u32);
        for (index, (busy_ms, queue_ms, own_ms)) in ticks.iter().enumerate() {
            busy = busy.wrapping_add(*busy_ms);
            queue = queue.wrapping_add(*queue_ms);
            let snapshot = TickSnapshot {
                at_ns: index as u64 * 10_000_000,
                new_devices: if index == 0 {
                    vec![DeviceInfo {
                        device: on.device.clone(),
                        disk: Some(disk(0, "sda")),
                        unmeasured: None,
                    }]
                } else {
                    Vec::new()
                },
                disks: vec![DiskSample {
                    id: 0,
                    busy_ms: busy,
                    queue_ms: queue,
                }],
                ..TickSnapshot::default()
            };
            let tick = TickIntervals {
                tick_ns: 10e6,
                threads: Vec::new(),
                disk_waits: vec![(Arc::clone(on), own_ms * 1e6)],
            };
            tracker.ingest(&snapshot, &tick);
        }
        tracker
    }

    #[test]
    fn a_disk_busy_with_others_queue_while_the_program_waited_is_saturated() {
        let data = mount("/data", "ext4", "8:1");
        // 40 ticks: busy the whole tick, 4 requests in flight, the program waiting with one
        // thread; the counters wrap past 2^32 ms on the way.
        let tracker = run(&[(10, 40, 10.0); 40], &data);
        let uses = tracker.conclude(400e6);
        let device = &uses[0];
        let measured = device.measured.unwrap();
        assert_eq!(device.mounts, ["/data"]);
        assert!((measured.busy_share - 1.0).abs() < 1e-9, "{measured:?}");
        assert!((measured.in_flight - 4.0).abs() < 1e-9);
        assert!((measured.own_in_flight - 1.0).abs() < 1e-9);
        assert!(
            (measured.waited_s - 0.39).abs() < 1e-9,
            "the first tick has no difference"
        );
        assert!(device.saturated());
        assert!((device.share - 1.0).abs() < 1e-9);
    }

    #[test]
    fn one_request_at_a_time_keeps_a_disk_busy_without_saturating_it() {
        let data = mount("/data", "ext4", "8:1");
        let tracker = run(&[(10, 10, 10.0); 40], &data);
        let measured = tracker.conclude(400e6)[0].measured.unwrap();
        assert!(measured.busy_share > 0.99);
        assert!(!measured.busy_is_shared());
        assert!(!measured.saturated());
    }

    #[test]
    fn only_the_time_the_program_waited_counts_and_each_tick_for_its_share() {
        let data = mount("/data", "ext4", "8:1");
        // Waiting half of every tick while the disk is busy half of it: 50 %, not 100 %;
        // ticks without a wait (the disk busy with others all along) do not count.
        let mut ticks = vec![(5, 5, 5.0); 20];
        ticks.extend([(10, 30, 0.0); 20]);
        let measured = run(&ticks, &data).conclude(100e6)[0].measured.unwrap();
        assert!((measured.busy_share - 0.5).abs() < 1e-9, "{measured:?}");
        assert!((measured.waited_s - 0.095).abs() < 1e-9);
        let run_share = measured.run_busy_share.unwrap();
        assert!((run_share - 0.5 * 19.0 / 39.0 - 20.0 / 39.0).abs() < 1e-9);
        assert!(!measured.saturated());
    }

    #[test]
    fn devices_without_a_disk_are_named_with_why_and_partitions_share_their_disk() {
        let mut tracker = DeviceTracker::default();
        let (home, var, shm) = (
            mount("/home", "ext4", "8:1"),
            mount("/var", "ext4", "8:2"),
            mount("/dev/shm", "tmpfs", "0:23"),
        );
        let snapshot = TickSnapshot {
            new_devices: vec![
                DeviceInfo {
                    device: "8:1".into(),
                    disk: Some(disk(0, "sda")),
                    unmeasured: None,
                },
                DeviceInfo {
                    device: "8:2".into(),
                    disk: Some(disk(0, "sda")),
                    unmeasured: None,
                },
                DeviceInfo {
                    device: "0:23".into(),
                    disk: None,
                    unmeasured: Some("tmpfs: in memory, no device".into()),
                },
            ],
            ..TickSnapshot::default()
        };
        let tick = TickIntervals {
            tick_ns: 10e6,
            threads: Vec::new(),
            disk_waits: vec![(var, 2e6), (home, 6e6), (shm, 3e6)],
        };
        tracker.ingest(&snapshot, &tick);
        let uses = tracker.conclude(11e6);
        assert_eq!(uses.len(), 2);
        assert_eq!(uses[0].mounts, ["/home", "/var"]);
        assert!((uses[0].wait_s - 0.008).abs() < 1e-12);
        assert!(uses[0].measured.is_none(), "never sampled while waited on");
        assert_eq!(uses[1].label(), "/dev/shm");
        assert_eq!(
            uses[1].unmeasured.as_deref(),
            Some("tmpfs: in memory, no device")
        );
        assert!(!uses[1].saturated());
    }
}
