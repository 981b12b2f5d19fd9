//! The CPU quotas the tree runs under: each process's cgroup when it is first seen, and the throttling counters of the cgroups with a quota at every tick.
//!
//! The cgroup files are kernel pseudo-files (cgroupfs), never a network or FUSE mount; the
//! counters of a cgroup with a quota are held open and read with one pread per tick, whatever
//! the number of its processes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::observation::{CgroupInfo, CgroupSample, TickSnapshot};
use super::proc_file::{read_once, ProcFile};
use crate::target::cgroup::{locate, parse_cpu_stat, CgroupVersion};

/// /proc/self/mountinfo is read again at most this often (mounts rarely change during a run).
const MOUNTS_REFRESH: Duration = Duration::from_secs(2);

struct Tracked {
    id: u32,
    version: CgroupVersion,
    dir: PathBuf,
    stat: Option<ProcFile>,
    /// v1 only, when cpuacct shares the cpu hierarchy: the cgroup's own CPU use.
    usage: Option<ProcFile>,
}

#[derive(Default)]
pub struct CgroupReader {
    /// By the directory of the cgroup whose quota is in force.
    tracked: HashMap<PathBuf, Tracked>,
    mountinfo: Option<(String, Instant)>,
    buf: Vec<u8>,
}

impl CgroupReader {
    /// The id of the quota'd cgroup process `pid` runs under, if any; a cgroup met for the
    /// first time is added to `snapshot.new_cgroups`.
    pub fn assign(&mut self, pid: i32, snapshot: &mut TickSnapshot) -> Option<u32> {
        read_once(&PathBuf::from(format!("/proc/{pid}/cgroup")), &mut self.buf).ok()?;
        let membership = String::from_utf8_lossy(&self.buf).into_owned();
        let mountinfo = self.mountinfo()?;
        let cgroup = locate(&membership, &mountinfo, Path::new("/")).ok()?;
        let quota = cgroup.quota.ok()??;
        if let Some(known) = self.tracked.get(&quota.set_by) {
            return Some(known.id);
        }
        let id = self.tracked.len() as u32;
        let dir = quota.set_by.clone();
        let usage = match cgroup.version {
            CgroupVersion::V1 => ProcFile::open(&dir.join("cpuacct.usage")).ok(),
            CgroupVersion::V2 => None,
        };
        self.tracked.insert(
            dir.clone(),
            Tracked {
                id,
                version: cgroup.version,
                stat: ProcFile::open(&dir.join("cpu.stat")).ok(),
                usage,
                dir: dir.clone(),
            },
        );
        snapshot.new_cgroups.push(CgroupInfo {
            id,
            path: cgroup_path(&cgroup.path, &cgroup.dir, &dir),
            version: match cgroup.version {
                CgroupVersion::V1 => 1,
                CgroupVersion::V2 => 2,
            },
            quota_cores: quota.cores(),
            period_ns: quota.period_us.saturating_mul(1000),
        });
        Some(id)
    }

    /// The counters of every cgroup with a quota, into the snapshot.
    pub fn read(&mut self, snapshot: &mut TickSnapshot) {
        for tracked in self.tracked.values() {
            let Some(stat) = &tracked.stat else { continue };
            if stat.read_into(&mut self.buf).is_err() {
                continue;
            }
            let text = String::from_utf8_lossy(&self.buf);
            let Some(throttling) = parse_cpu_stat(&text, tracked.version, &tracked.dir) else {
                continue;
            };
            let usage_ns = match tracked.version {
                CgroupVersion::V2 => usage_usec(&text).map(|usec| usec.saturating_mul(1000)),
                CgroupVersion::V1 => tracked.usage.as_ref().and_then(|file| {
                    file.read_into(&mut self.buf).ok()?;
                    String::from_utf8_lossy(&self.buf).trim().parse().ok()
                }),
            };
            snapshot.cgroups.push(CgroupSample {
                id: tracked.id,
                nr_throttled: throttling.throttled_periods,
                throttled_ns: throttling.throttled_ns,
                usage_ns,
            });
        }
    }

    fn mountinfo(&mut self) -> Option<String> {
        let stale = self
            .mountinfo
            .as_ref()
            .is_none_or(|(_, at)| at.elapsed() >= MOUNTS_REFRESH);
        if stale {
            read_once(Path::new("/proc/self/mountinfo"), &mut self.buf).ok()?;
            self.mountinfo = Some((
                String::from_utf8_lossy(&self.buf).into_owned(),
                Instant::now(),
            ));
        }
        self.mountinfo.as_ref().map(|(text, _)| text.clone())
    }
}

/// v2 cpu.stat's usage_usec.
fn usage_usec(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("usage_usec "))?
        .trim()
        .parse()
        .ok()
}

/// The cgroup path of the quota's directory: the process's own path, shortened by as many
/// levels as the quota's directory is above the process's.
fn cgroup_path(own_path: &str, own_dir: &Path, quota_dir: &Path) -> String {
    let levels_up = own_dir
        .strip_prefix(quota_dir)
        .map_or(0, |rest| rest.components().count());
    let mut path = own_path.trim_end_matches('/').to_string();
    for _ in 0..levels_up {
        match path.rfind('/') {
            Some(0) | None => {
                path = "/".into();
                break;
            }
            Some(slash) => path.truncate(slash),
        }
    }
    if path.is_empty() {
        "/".into()
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_s_cgroup_path_is_the_process_s_or_an_ancestor_s() {
        let own = Path::new("/sys/fs/cgroup/kubepods.slice/pod1/ctr");
        assert_eq!(
            cgroup_path("/kubepods.slice/pod1/ctr", own, own),
            "/kubepods.slice/pod1/ctr"
        );
        assert_eq!(
            cgroup_path(
                "/kubepods.slice/pod1/ctr",
                own,
                Path::new("/sys/fs/cgroup/kubepods.slice")
            ),
            "/kubepods.slice"
        );
        assert_eq!(usage_usec("usage_usec 1234\nuser_usec 1000\n"), Some(1234));
    }
}
