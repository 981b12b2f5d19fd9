//! The disks behind the files the tree waits on, and their busy time: /proc/diskstats once a tick, for those disks only.
//!
//! A file's device comes from the mount table (`FileMount::device`, the st_dev of its files),
//! never from a stat of the file: the sampler does not touch the program's filesystems. That
//! major:minor is followed through sysfs (a kernel view, which never hangs) to the whole disk
//! whose busy time counts: a partition's disk (`/sys/dev/block/MAJ:MIN` is the partition's
//! directory, inside its disk's), the one disk under a device-mapper or md device
//! (`/sys/block/NAME/slaves`). A filesystem with no single disk behind it (in memory, overlay,
//! a network server, several devices) is named with the reason instead. Nothing is read until
//! a thread of the tree waits on a file; then /proc/diskstats, held open, is read once a tick.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::mounts::{classify_fs, FsClass};
use super::observation::{DeviceInfo, DiskInfo, DiskSample, FileMount, TickSnapshot};
use super::proc_file::ProcFile;

/// At most this many filesystem devices are looked up (a tree touching more is unusual; the
/// ones past it are not measured).
const MAX_DEVICES: usize = 64;
/// Device-mapper and md devices stacked deeper than this are not followed.
const MAX_DEPTH: usize = 8;

/// A disk being sampled.
struct Tracked {
    id: u32,
    major: i32,
    minor: i32,
}

pub struct DiskReader {
    /// Where /sys and /proc are (`/`, or a fixture's directory in tests).
    root: PathBuf,
    /// Filesystem devices already looked up, by "major:minor".
    known: HashSet<String>,
    disks: Vec<Tracked>,
    /// /proc/diskstats, held; `None` until a disk is tracked, or when it cannot be opened.
    file: Option<ProcFile>,
    /// Opening /proc/diskstats failed: not tried again.
    unreadable: bool,
    buf: Vec<u8>,
}

impl Default for DiskReader {
    fn default() -> Self {
        DiskReader::with_root(Path::new("/"))
    }
}

impl DiskReader {
    pub fn with_root(root: &Path) -> DiskReader {
        DiskReader {
            root: root.to_path_buf(),
            known: HashSet::new(),
            disks: Vec::new(),
            file: None,
            unreadable: false,
            buf: Vec::new(),
        }
    }

    /// Looks up the devices of the files this tick's blocked threads wait on (the first
    /// time each is met) and reads the counters of every disk found so far.
    pub fn read(&mut self, snapshot: &mut TickSnapshot) {
        let mut met: Vec<Arc<FileMount>> = Vec::new();
        for state in snapshot.threads.iter().filter_map(|t| t.state.as_ref()) {
            let Some(mount) = &state.mount else { continue };
            if self.known.len() < MAX_DEVICES && self.known.insert(mount.device.clone()) {
                met.push(Arc::clone(mount));
            }
        }
        for mount in met {
            if let Some(info) = self.note(&mount) {
                snapshot.new_devices.push(info);
            }
        }
        if !self.disks.is_empty() {
            self.sample(&mut snapshot.disks);
        }
    }

    /// What is behind a filesystem device met for the first time; `None` for kernel views
    /// (proc, sysfs...), whose files are no data on a device.
    fn note(&mut self, mount: &FileMount) -> Option<DeviceInfo> {
        if classify_fs(&mount.fs_type, &mount.source).0 == FsClass::Pseudo {
            return None;
        }
        let (disk, unmeasured) = match disk_of(&self.root, mount) {
            Ok(found) => (Some(self.track(found)), None),
            Err(why) => (None, Some(why)),
        };
        Some(DeviceInfo {
            device: mount.device.clone(),
            disk,
            unmeasured,
        })
    }

    /// The disk's number: a new one, or that of a disk already tracked for another device.
    fn track(&mut self, found: FoundDisk) -> DiskInfo {
        let id = match self
            .disks
            .iter()
            .find(|d| (d.major, d.minor) == (found.major, found.minor))
        {
            Some(known) => known.id,
            None => {
                let id = self.disks.len() as u32;
                self.disks.push(Tracked {
                    id,
                    major: found.major,
                    minor: found.minor,
                });
                id
            }
        };
        DiskInfo {
            id,
            name: found.name,
            major_minor: format!("{}:{}", found.major, found.minor),
            via: found.via,
            rotational: found.rotational,
        }
    }

    /// One read of /proc/diskstats: the counters of the tracked disks.
    fn sample(&mut self, out: &mut Vec<DiskSample>) {
        if self.file.is_none() && !self.unreadable {
            match ProcFile::open(&self.root.join("proc/diskstats")) {
                Ok(file) => self.file = Some(file),
                Err(_) => self.unreadable = true,
            }
        }
        let Some(file) = &self.file else { return };
        if file.read_all(&mut self.buf).is_err() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        out.extend(parse_samples(&text, |major, minor| {
            self.disks
                .iter()
                .find(|d| (d.major, d.minor) == (major, minor))
                .map(|d| d.id)
        }));
    }
}

/// The samples of the disks `id_of` knows, from a /proc/diskstats text. Lines that do not
/// parse are skipped; the counters are the kernel's 32-bit milliseconds.
pub fn parse_samples(text: &str, id_of: impl Fn(i32, i32) -> Option<u32>) -> Vec<DiskSample> {
    text.lines()
        .filter_map(|line| procfs::DiskStat::from_line(line).ok())
        .filter_map(|stat| {
            Some(DiskSample {
                id: id_of(stat.major, stat.minor)?,
                busy_ms: stat.time_in_progress as u32,
                queue_ms: stat.weighted_time_in_progress as u32,
            })
        })
        .collect()
}

/// A whole disk found behind a filesystem device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundDisk {
    pub name: String,
    pub major: i32,
    pub minor: i32,
    pub via: Vec<String>,
    pub rotational: Option<bool>,
}

/// The disk whose busy time counts for the files of `mount`, looked up under `root` (its
/// `sys/` and `dev/`), or why there is no single one.
pub fn disk_of(root: &Path, mount: &FileMount) -> Result<FoundDisk, String> {
    let fs = mount.fs_type.as_str();
    no_single_disk(fs, &mount.source)?;
    let (major, minor) = parse_major_minor(&mount.device)
        .ok_or_else(|| format!("{fs}: no device number ({:?})", mount.device))?;
    let dir = if major == 0 {
        // An anonymous device (btrfs gives every subvolume one): the source names the disk.
        let anonymous =
            || format!("{fs}: no block device (its device {major}:{minor} is anonymous)");
        let source = mount.source.strip_prefix("/dev/").ok_or_else(anonymous)?;
        let node = std::fs::canonicalize(root.join("dev").join(source)).map_err(|_| anonymous())?;
        let name = node.file_name().ok_or_else(anonymous)?;
        sys_dir(&root.join("sys/class/block").join(name)).map_err(|_| anonymous())?
    } else {
        sys_dir(&root.join(format!("sys/dev/block/{major}:{minor}")))
            .map_err(|e| format!("{fs}: device {major}:{minor} is not in /sys/dev/block ({e})"))?
    };
    let mut via = Vec::new();
    let disk = leaf_disk(root, &dir, &mut via, 0)?;
    let name = file_name(&disk);
    let (major, minor) = read_text(&disk.join("dev"))
        .as_deref()
        .and_then(|text| parse_major_minor(text.trim()))
        .ok_or_else(|| format!("{name}: its device number is not readable in /sys"))?;
    let rotational = read_text(&disk.join("queue/rotational")).and_then(|text| match text.trim() {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    });
    Ok(FoundDisk {
        name,
        major,
        minor,
        via,
        rotational,
    })
}

/// Why files on filesystem `fs` (mounted from `source`) have no single disk whose busy time
/// counts for them: a network, FUSE, device or kernel filesystem, memory, overlay, zfs.
fn no_single_disk(fs: &str, source: &str) -> Result<(), String> {
    match classify_fs(fs, source).0 {
        FsClass::Network => Err(format!("{fs}: a network filesystem, on the server's disks")),
        FsClass::Fuse => Err(format!(
            "{fs}: FUSE, whose daemon decides where the data is"
        )),
        FsClass::Devices => Err("a device node: the device it names is not followed".into()),
        FsClass::Pseudo => Err(format!("{fs}: a kernel view, not data on a device")),
        FsClass::Local => Ok(()),
    }?;
    match fs {
        "tmpfs" | "ramfs" | "hugetlbfs" => Err(format!("{fs}: in memory, no device")),
        "overlay" => Err(
            "overlay: its files are on the upper and lower directories' filesystems, \
             often more than one device"
                .into(),
        ),
        "zfs" => Err("zfs: a pool over its devices, not one disk".into()),
        _ => Ok(()),
    }
}

/// The whole disk under the block device at `dir`: its disk for a partition, and, below a
/// device-mapper or md device, the one disk it is made of. Each device passed is added to
/// `via`. Several disks below is an error: one busy share says nothing about each.
fn leaf_disk(
    root: &Path,
    dir: &Path,
    via: &mut Vec<String>,
    depth: usize,
) -> Result<PathBuf, String> {
    let mut disk = dir.to_path_buf();
    if dir.join("partition").exists() {
        via.push(file_name(dir));
        disk = dir
            .parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| format!("{}: a partition without its disk", file_name(dir)))?;
    }
    let slaves: Vec<String> = match std::fs::read_dir(disk.join("slaves")) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    let name = file_name(&disk);
    if slaves.is_empty() {
        return Ok(disk);
    }
    if depth >= MAX_DEPTH {
        return Err(format!("{name}: devices stacked too deep to follow"));
    }
    let mut leaves: Vec<(PathBuf, Vec<String>)> = Vec::new();
    for slave in &slaves {
        let slave_dir = sys_dir(&root.join("sys/class/block").join(slave))
            .map_err(|e| format!("{name}: its device {slave} is not in /sys/class/block ({e})"))?;
        let mut below = Vec::new();
        let leaf = leaf_disk(root, &slave_dir, &mut below, depth + 1)?;
        if !leaves.iter().any(|(known, _)| *known == leaf) {
            leaves.push((leaf, below));
        }
    }
    match leaves.as_slice() {
        [(leaf, below)] => {
            via.push(name);
            via.extend(below.iter().cloned());
            Ok(leaf.clone())
        }
        _ => {
            let mut names: Vec<String> = leaves.iter().map(|(leaf, _)| file_name(leaf)).collect();
            names.sort();
            Err(format!(
                "{name} spreads over {} disks ({}): one busy share cannot say whether they are \
                 saturated",
                names.len(),
                names.join(", ")
            ))
        }
    }
}

/// A sysfs link followed to the device's directory.
fn sys_dir(link: &Path) -> io::Result<PathBuf> {
    std::fs::canonicalize(link)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

fn read_text(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn parse_major_minor(text: &str) -> Option<(i32, i32)> {
    let (major, minor) = text.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysfs/machine")
    }

    fn mount(fs_type: &str, source: &str, device: &str) -> FileMount {
        FileMount {
            point: "/data".into(),
            fs_type: fs_type.into(),
            source: source.into(),
            device: device.into(),
            network: false,
            discard: false,
        }
    }

    fn disk(fs_type: &str, source: &str, device: &str) -> Result<FoundDisk, String> {
        disk_of(&machine(), &mount(fs_type, source, device))
    }

    #[test]
    fn a_partition_counts_as_its_whole_disk() {
        let found = disk("ext4", "/dev/sda1", "8:1").unwrap();
        assert_eq!(
            found,
            FoundDisk {
                name: "sda".into(),
                major: 8,
                minor: 0,
                via: vec!["sda1".into()],
                rotational: Some(true),
            }
        );
        let whole = disk("ext4", "/dev/vda", "254:0").unwrap();
        assert_eq!((whole.name.as_str(), whole.via.len()), ("vda", 0));
        let looped = disk("squashfs", "/dev/loop0", "7:0").unwrap();
        assert_eq!(looped.name, "loop0");
    }

    #[test]
    fn device_mapper_over_one_partition_is_that_partition_s_disk() {
        let found = disk("ext4", "/dev/mapper/cryptroot", "253:0").unwrap();
        assert_eq!(found.name, "nvme0n1");
        assert_eq!((found.major, found.minor), (259, 0));
        assert_eq!(found.via, ["dm-0", "nvme0n1p2"]);
        assert_eq!(found.rotational, Some(false));
    }

    #[test]
    fn an_array_over_several_disks_is_named_not_measured() {
        let why = disk("ext4", "/dev/md0", "9:0").unwrap_err();
        assert!(why.contains("md0 spreads over 2 disks (sdb, sdc)"), "{why}");
    }

    #[test]
    fn btrfs_anonymous_devices_are_found_through_their_source() {
        let found = disk("btrfs", "/dev/sda3", "0:45").unwrap();
        assert_eq!(
            (found.name.as_str(), found.via.as_slice()),
            ("sda", &["sda3".to_string()][..])
        );
        let mapped = disk("btrfs", "/dev/mapper/cryptroot", "0:46").unwrap();
        assert_eq!(mapped.name, "nvme0n1");
        assert_eq!(mapped.via, ["dm-0", "nvme0n1p2"]);
        let why = disk("btrfs", "/dev/sdz9", "0:47").unwrap_err();
        assert!(why.contains("anonymous"), "{why}");
    }

    #[test]
    fn filesystems_without_a_single_disk_say_why() {
        let cases = [
            (mount("tmpfs", "tmpfs", "0:23"), "in memory"),
            (mount("overlay", "overlay", "0:52"), "upper and lower"),
            (mount("nfs4", "server:/export", "0:53"), "network"),
            (mount("fuse.mergerfs", "pool", "0:54"), "FUSE"),
            (mount("zfs", "tank/data", "0:55"), "pool"),
            (mount("devtmpfs", "devtmpfs", "0:6"), "device node"),
            (mount("xfs", "/dev/sdq", "8:99"), "not in /sys/dev/block"),
            (mount("ext4", "/dev/sdq", "junk"), "no device number"),
        ];
        for (mount, expected) in cases {
            let why = disk_of(&machine(), &mount).unwrap_err();
            assert!(why.contains(expected), "{}: {why}", mount.fs_type);
        }
    }

    #[test]
    fn diskstats_lines_give_busy_and_queue_milliseconds_of_the_disks_asked_for() {
        let text = std::fs::read_to_string(machine().join("proc/diskstats")).unwrap();
        let samples = parse_samples(&text, |major, minor| match (major, minor) {
            (8, 0) => Some(1),
            (254, 0) => Some(2),
            (8, 16) => Some(3),
            (9, 0) => Some(4),
            _ => None,
        });
        assert_eq!(
            samples,
            [
                DiskSample {
                    id: 1,
                    busy_ms: 309628,
                    queue_ms: 3094517
                },
                // A kernel before 4.18: 11 fields.
                DiskSample {
                    id: 3,
                    busy_ms: 120,
                    queue_ms: 130
                },
                // At the edge of the kernel's 32-bit milliseconds.
                DiskSample {
                    id: 2,
                    busy_ms: 4294967290,
                    queue_ms: 4294967295
                },
            ],
            "a line cut short is skipped"
        );
    }

    #[test]
    fn the_reader_looks_a_device_up_once_and_samples_its_disk_every_tick() {
        use crate::sampler::observation::{Sighting, ThreadObservation, ThreadState};
        let blocked_on = |device: &str, fs: &str| ThreadObservation {
            pid: 1,
            tid: 1,
            at_ns: 0,
            sighting: Sighting::Continuing,
            comm: None,
            cpu_ns: 0,
            runqueue_ns: 0,
            timeslices: 0,
            state: Some(Box::new(ThreadState {
                mount: Some(Arc::new(mount(fs, "/dev/sda1", device))),
                ..ThreadState::running()
            })),
        };
        let mut reader = DiskReader::with_root(&machine());
        let mut snapshot = TickSnapshot::default();
        reader.read(&mut snapshot);
        assert!(
            snapshot.disks.is_empty(),
            "nothing read before a wait on a file"
        );
        snapshot.threads = vec![
            blocked_on("8:1", "ext4"),
            blocked_on("8:3", "ext4"),
            blocked_on("0:23", "tmpfs"),
            blocked_on("0:21", "proc"),
        ];
        reader.read(&mut snapshot);
        let devices: Vec<_> = snapshot
            .new_devices
            .iter()
            .map(|d| (d.device.as_str(), d.disk.as_ref().map(|disk| disk.id)))
            .collect();
        assert_eq!(
            devices,
            [("8:1", Some(0)), ("8:3", Some(0)), ("0:23", None)]
        );
        assert_eq!(snapshot.disks.len(), 1, "two partitions, one disk");
        assert_eq!(snapshot.disks[0].busy_ms, 309628);
        snapshot.clear();
        snapshot.threads = vec![blocked_on("8:1", "ext4")];
        reader.read(&mut snapshot);
        assert!(snapshot.new_devices.is_empty());
        assert_eq!(snapshot.disks.len(), 1);
    }
}
