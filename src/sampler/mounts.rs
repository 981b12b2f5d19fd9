//! The filesystems a process's files live on, from /proc/PID/mountinfo: never from a stat, which reaches the filesystem (and hangs on a dead NFS or FUSE server).
//!
//! A descriptor's `mnt_id` (its fdinfo) names its mount; the mount table of the process's mount
//! namespace says what that mount is. Reading mountinfo asks no filesystem anything: the kernel
//! prints its own records. One table is kept per mount namespace, read when the first process
//! of it needs one, and read again when the kernel says it changed (poll on the held file) or an
//! unknown mount ID shows up.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};

use super::observation::FileMount;
use super::proc_file::ProcFile;

/// A namespace's table is checked for changes (one poll) at most this often, and read again
/// for an unknown mount ID at most this often.
const CHECK_PERIOD: Duration = Duration::from_millis(100);

/// What a filesystem is, for the sampler: whether it may ever be touched, and what waiting on
/// its files means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsClass {
    /// Backed by a local disk or by memory (ext4, xfs, btrfs, tmpfs, overlay...): a stat on a
    /// helper thread is safe. Waits are disk.
    Local,
    /// Device nodes (devtmpfs): local; what a node is (character or block) needs a stat.
    Devices,
    /// FUSE without a network subtype: waits are disk, but its daemon may hang: never touched.
    Fuse,
    /// NFS, SMB, Ceph, 9p, GlusterFS, Lustre, a network FUSE: never touched; waits are
    /// network_fs.
    Network,
    /// Kernel views (proc, sysfs, cgroup...): their files are not data on a device.
    Pseudo,
}

impl FsClass {
    /// Whether a helper thread may stat or read a file of it (never a network or FUSE
    /// filesystem, whose server or daemon may never answer).
    pub fn may_touch(self) -> bool {
        matches!(self, FsClass::Local | FsClass::Devices | FsClass::Pseudo)
    }
}

/// Kernel filesystems whose files live on a server.
const NETWORK_TYPES: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "ceph",
    "9p",
    "glusterfs",
    "lustre",
    "afs",
    "coda",
    "ncpfs",
    "orangefs",
    "pvfs2",
    "gpfs",
    "beegfs",
    "davfs",
];
/// FUSE subtypes (fuse.NAME, or the NAME#... source of old mounts) that reach a server.
const NETWORK_FUSE: &[&str] = &[
    "sshfs",
    "s3fs",
    "gcsfuse",
    "rclone",
    "glusterfs",
    "ceph-fuse",
    "goofys",
    "juicefs",
    "mountpoint-s3",
    "blobfuse",
    "blobfuse2",
    "geesefs",
    "curlftpfs",
    "cvmfs",
    "cvmfs2",
    "ossfs",
    "cosfs",
    "s3backer",
    "smbnetfs",
    "davfs",
    "davfs2",
    "lizardfs",
    "moosefs",
    "mfs",
    "seaweedfs",
    "alluxio-fuse",
    "objectivefs",
];
/// Kernel views and plumbing: nothing there is a wait on a device.
const PSEUDO_TYPES: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "debugfs",
    "tracefs",
    "securityfs",
    "configfs",
    "bpf",
    "pstore",
    "efivarfs",
    "fusectl",
    "mqueue",
    "devpts",
    "binfmt_misc",
    "autofs",
    "nsfs",
    "rpc_pipefs",
    "nfsd",
    "selinuxfs",
];

/// The class of a filesystem from its mountinfo type and source, and its type as shown to
/// people: `fuse.SUBTYPE` also for old mounts whose subtype is in the source (`sshfs#host:`).
pub fn classify_fs(fs_type: &str, source: &str) -> (FsClass, String) {
    let subtype = match fs_type.strip_prefix("fuse.") {
        Some(subtype) => Some(subtype),
        None if fs_type == "fuse" => source.split_once('#').map(|(subtype, _)| subtype),
        None => None,
    };
    if let Some(subtype) = subtype {
        let class = if NETWORK_FUSE.contains(&subtype) {
            FsClass::Network
        } else {
            FsClass::Fuse
        };
        return (class, format!("fuse.{subtype}"));
    }
    let class = if fs_type == "fuse" || fs_type == "fuseblk" {
        FsClass::Fuse
    } else if NETWORK_TYPES.contains(&fs_type) {
        FsClass::Network
    } else if PSEUDO_TYPES.contains(&fs_type) {
        FsClass::Pseudo
    } else if fs_type == "devtmpfs" {
        FsClass::Devices
    } else {
        FsClass::Local
    };
    (class, fs_type.to_string())
}

/// One mount of a mount table.
#[derive(Debug)]
pub struct Mount {
    pub id: i32,
    pub class: FsClass,
    /// As observations name it.
    pub named: Arc<FileMount>,
}

/// The mounts of a mountinfo text, in its order (later mounts over earlier ones at the same
/// point). Lines that do not parse are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Arc<Mount>> {
    text.lines()
        .filter_map(|line| procfs::process::MountInfo::from_line(line).ok())
        .map(|info| {
            let source = unescape(info.mount_source.as_deref().unwrap_or(""));
            let (class, fs_type) = classify_fs(&info.fs_type, &source);
            Arc::new(Mount {
                id: info.mnt_id,
                class,
                named: Arc::new(FileMount {
                    point: unescape(&info.mount_point.to_string_lossy()),
                    fs_type,
                    source,
                    device: info.majmin,
                    network: class == FsClass::Network,
                    discard: online_discard(&info.super_options)
                        || online_discard(&info.mount_options),
                }),
            })
        })
        .collect()
}

/// Whether mount options ask for online discard: ext4's and XFS's `discard`, btrfs's
/// `discard=sync` (its `discard=async` trims in the background).
fn online_discard(options: &std::collections::HashMap<String, Option<String>>) -> bool {
    matches!(options.get("discard"), Some(None))
        || matches!(options.get("discard"), Some(Some(v)) if v == "sync")
}

/// mountinfo writes space, tab, newline and backslash in paths as octal escapes (`\040`).
fn unescape(text: &str) -> String {
    if !text.contains('\\') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|digits| bytes[i] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)))
            .map(|d| (d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount `path` (absolute, as the process sees it) lies on: the longest mount point that
/// is a whole-component prefix of it, the last mounted of equals.
pub fn mount_for_path<'a>(mounts: &'a [Arc<Mount>], path: &str) -> Option<&'a Arc<Mount>> {
    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
    let under = |point: &str| {
        point == "/"
            || path == point
            || path
                .strip_prefix(point)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    mounts
        .iter()
        .filter(|mount| under(&mount.named.point))
        .max_by_key(|mount| mount.named.point.len())
        .and_then(|longest| {
            // Of mounts stacked at the same point, the last one is the one in view.
            mounts
                .iter()
                .rev()
                .find(|m| m.named.point == longest.named.point)
        })
}

/// The mount namespace of a process, as the inode of /proc/PID/ns/mnt (a readlink of a /proc
/// link: no filesystem is asked); a key of its own for the process when that is unreadable.
pub fn mount_namespace(pid: i32) -> u64 {
    std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .ok()
        .and_then(|link| {
            let text = link.to_string_lossy().into_owned();
            text.strip_prefix("mnt:[")?.strip_suffix(']')?.parse().ok()
        })
        .unwrap_or(1 << 63 | pid as u64)
}

/// One namespace's table.
struct Space {
    /// /proc/PID/mountinfo of the first process seen in it, held: polled for changes.
    file: Option<ProcFile>,
    mounts: Vec<Arc<Mount>>,
    by_id: HashMap<i32, Arc<Mount>>,
    checked_at: Instant,
    read_at: Instant,
}

/// Mount tables by mount namespace.
#[derive(Default)]
pub struct MountTable {
    spaces: HashMap<u64, Space>,
    buf: Vec<u8>,
    /// How many times a mountinfo was read (for the cost notes).
    pub reads: u64,
}

impl MountTable {
    /// The mount with ID `id`, for process `pid` of namespace `key`.
    pub fn by_id(&mut self, pid: i32, key: u64, id: i32) -> Option<Arc<Mount>> {
        if let Some(found) = self.fresh_space(pid, key)?.by_id.get(&id) {
            return Some(Arc::clone(found));
        }
        // Mounted since the table was read: read it again (not more often than every
        // CHECK_PERIOD, for an ID that no table shows, e.g. one outside the process's root).
        if self
            .spaces
            .get(&key)
            .is_some_and(|space| space.read_at.elapsed() < CHECK_PERIOD)
        {
            return None;
        }
        self.reread(pid, key)?.by_id.get(&id).map(Arc::clone)
    }

    /// The mount a path (absolute, as `pid` sees it) lies on.
    pub fn for_path(&mut self, pid: i32, key: u64, path: &str) -> Option<Arc<Mount>> {
        let space = self.fresh_space(pid, key)?;
        mount_for_path(&space.mounts, path).map(Arc::clone)
    }

    /// The table of namespace `key`, read on first use and again when the kernel says it
    /// changed (checked at most every CHECK_PERIOD, with one poll of the held file).
    fn fresh_space(&mut self, pid: i32, key: u64) -> Option<&mut Space> {
        let stale = match self.spaces.get_mut(&key) {
            None => true,
            Some(space) if space.checked_at.elapsed() < CHECK_PERIOD => false,
            Some(space) => {
                space.checked_at = Instant::now();
                space.file.as_ref().is_none_or(changed)
            }
        };
        if stale {
            return self.reread(pid, key);
        }
        self.spaces.get_mut(&key)
    }

    /// Reads the table of namespace `key` again: through the held file, or from `pid`'s
    /// mountinfo (also when the held file fails).
    fn reread(&mut self, pid: i32, key: u64) -> Option<&mut Space> {
        let held = self.spaces.remove(&key).and_then(|space| space.file);
        let file = match held {
            Some(file) if file.read_all(&mut self.buf).is_ok() => file,
            _ => {
                let file = ProcFile::open(&PathBuf::from(format!("/proc/{pid}/mountinfo"))).ok()?;
                file.read_all(&mut self.buf).ok()?;
                file
            }
        };
        self.reads += 1;
        let mounts = parse_mountinfo(&String::from_utf8_lossy(&self.buf));
        let by_id = mounts.iter().map(|m| (m.id, Arc::clone(m))).collect();
        let now = Instant::now();
        let space = Space {
            file: Some(file),
            mounts,
            by_id,
            checked_at: now,
            read_at: now,
        };
        Some(self.spaces.entry(key).or_insert(space))
    }
}

/// Whether the mount table behind a held mountinfo changed since the last look: the kernel
/// flags it with POLLPRI (and POLLERR) until it is polled.
fn changed(file: &ProcFile) -> bool {
    let mut fds = [PollFd::new(file, PollFlags::PRI)];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&zero)) {
        Ok(0) => false,
        Ok(_) => fds[0].revents().intersects(PollFlags::PRI | PollFlags::ERR),
        // Cannot tell: read it again.
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<Arc<Mount>> {
        let path = format!(
            "{}/tests/fixtures/mountinfo/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        parse_mountinfo(&std::fs::read_to_string(path).unwrap())
    }

    fn at<'a>(mounts: &'a [Arc<Mount>], point: &str) -> &'a Mount {
        mounts
            .iter()
            .find(|m| m.named.point == point)
            .unwrap_or_else(|| panic!("no mount at {point}"))
    }

    #[test]
    fn network_filesystems_and_network_fuse_are_network() {
        let mounts = fixture("network.txt");
        for point in [
            "/mnt/nfs3",
            "/mnt/nfs4",
            "/mnt/smb",
            "/mnt/smb3",
            "/mnt/ceph",
            "/mnt/9p",
            "/mnt/lustre",
            "/mnt/gluster",
            "/mnt/sshfs",
            "/mnt/s3",
            "/mnt/gcs",
            "/mnt/rclone",
            "/mnt/old sshfs",
        ] {
            let mount = at(&mounts, point);
            assert_eq!(mount.class, FsClass::Network, "{point}: {:?}", mount.named);
            assert!(mount.named.network);
            assert!(!mount.class.may_touch());
        }
        let nfs = at(&mounts, "/mnt/nfs4");
        assert_eq!(nfs.named.fs_type, "nfs4");
        assert_eq!(nfs.named.source, "fileserver:/export/data");
        assert_eq!(nfs.named.device, "0:53");
        assert_eq!(at(&mounts, "/mnt/sshfs").named.fs_type, "fuse.sshfs");
        // The old form keeps the subtype in the source.
        assert_eq!(at(&mounts, "/mnt/old sshfs").named.fs_type, "fuse.sshfs");
    }

    #[test]
    fn local_filesystems_and_other_fuse_stay_disk_and_only_fuse_is_never_touched() {
        let mounts = fixture("local.txt");
        let class = |point| at(&mounts, point).class;
        assert_eq!(class("/"), FsClass::Local);
        assert_eq!(class("/home"), FsClass::Local);
        assert_eq!(class("/tmp"), FsClass::Local);
        assert_eq!(class("/var/lib/docker/overlay2/abc/merged"), FsClass::Local);
        assert_eq!(class("/dev"), FsClass::Devices);
        assert_eq!(class("/proc"), FsClass::Pseudo);
        assert_eq!(class("/sys/fs/cgroup/freezer"), FsClass::Pseudo);
        assert_eq!(class("/mnt/pool"), FsClass::Fuse);
        assert_eq!(class("/media/usb"), FsClass::Fuse);
        assert_eq!(at(&mounts, "/mnt/pool").named.fs_type, "fuse.mergerfs");
        assert!(!FsClass::Fuse.may_touch());
        assert!(FsClass::Local.may_touch());
        assert!(mounts.iter().all(|m| !m.named.network));
    }

    #[test]
    fn online_discard_is_read_from_the_options_and_background_discard_is_not() {
        let mounts = parse_mountinfo(
            "29 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard,resv_strict\n\
             30 29 254:16 / /data rw,relatime shared:2 - btrfs /dev/vdb rw,discard=async,space_cache=v2\n\
             31 29 254:32 / /sync rw,relatime shared:3 - btrfs /dev/vdc rw,discard=sync\n\
             32 29 254:48 / /plain rw,relatime shared:4 - xfs /dev/vdd rw,attr2,inode64\n",
        );
        let discard = |point| at(&mounts, point).named.discard;
        assert!(discard("/"));
        assert!(!discard("/data"));
        assert!(discard("/sync"));
        assert!(!discard("/plain"));
    }

    #[test]
    fn a_path_lies_on_its_longest_mount_point() {
        let mounts = fixture("network.txt");
        let point = |path| mount_for_path(&mounts, path).map(|m| m.named.point.clone());
        assert_eq!(point("/mnt/nfs4/a/b.csv").as_deref(), Some("/mnt/nfs4"));
        assert_eq!(point("/mnt/nfs4").as_deref(), Some("/mnt/nfs4"));
        // Not a whole component: /mnt/nfs40 is not under /mnt/nfs4.
        assert_eq!(point("/mnt/nfs40/x").as_deref(), Some("/"));
        assert_eq!(
            point("/mnt/old sshfs/f (deleted)").as_deref(),
            Some("/mnt/old sshfs")
        );
        assert_eq!(point("/usr/bin/python3").as_deref(), Some("/"));
        // Two mounts stacked at one point: the later one is in view.
        assert_eq!(
            mount_for_path(&mounts, "/mnt/stacked/f").map(|m| m.named.fs_type.as_str()),
            Some("nfs4")
        );
    }

    #[test]
    fn a_mount_made_after_the_table_was_read_is_seen_through_the_kernels_change_flag() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting a tmpfs needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let point = std::fs::canonicalize(dir.path()).unwrap();
        let point = point.to_string_lossy().into_owned();
        let mut table = MountTable::default();
        let pid = std::process::id() as i32;
        let key = mount_namespace(pid);
        let before = table.for_path(pid, key, &point).unwrap();
        assert_ne!(before.named.point, point);
        nix::mount::mount(
            Some("concadvise-test"),
            dir.path(),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        std::thread::sleep(CHECK_PERIOD);
        let after = table.for_path(pid, key, &point);
        let _ = nix::mount::umount(dir.path());
        let after = after.unwrap();
        assert_eq!(after.named.point, point);
        assert_eq!(after.named.fs_type, "tmpfs");
        assert_eq!(
            table.reads, 2,
            "read again once, after the kernel flagged a change"
        );
    }

    #[test]
    fn this_process_mount_table_has_its_root() {
        let mut table = MountTable::default();
        let pid = std::process::id() as i32;
        let key = mount_namespace(pid);
        let root = table.for_path(pid, key, "/").expect("a root mount");
        assert_eq!(root.named.point, "/");
        assert!(table.by_id(pid, key, root.id).is_some());
        assert_eq!(table.reads, 1, "one read serves both lookups");
        assert!(table.by_id(pid, key, -5).is_none());
    }
}
