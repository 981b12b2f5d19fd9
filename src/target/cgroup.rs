//! A process's CPU cgroup: v1 or v2, the CPU quota in force (the tightest up its hierarchy) and
//! its throttling counters, from /proc/PID/cgroup, the mounts and the cgroup files.
//!
//! cgroup v1 (`cpu.cfs_quota_us`, `cpu.cfs_period_us`, `cpu.stat` `throttled_time` in ns) is
//! preferred where the cpu controller is mounted there (hybrid systems also mount an empty v2
//! hierarchy); cgroup v2 otherwise (`cpu.max`, `cpu.stat` `throttled_usec`).

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    V1,
    V2,
}

/// A CPU bandwidth limit: `quota_us` of CPU time per `period_us`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuQuota {
    pub quota_us: u64,
    pub period_us: u64,
    /// The cgroup directory that sets it (the process's own or an ancestor).
    pub set_by: PathBuf,
}

impl CpuQuota {
    pub fn cores(&self) -> f64 {
        self.quota_us as f64 / self.period_us.max(1) as f64
    }
}

/// How often a cgroup was held off the CPU by its quota, since it was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Throttling {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_ns: u64,
    /// The cgroup whose cpu.stat these are.
    pub of: PathBuf,
}

/// What could be read of a process's CPU cgroup.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuCgroup {
    pub version: CgroupVersion,
    /// Its path as /proc/PID/cgroup gives it ("/system.slice/app.service").
    pub path: String,
    /// Its directory under the cpu controller's mount.
    pub dir: PathBuf,
    /// The tightest quota of the cgroup and its ancestors (None: no limit); Err says why it
    /// could not be read.
    pub quota: Result<Option<CpuQuota>, String>,
    /// The throttling counters of the nearest cgroup up the hierarchy that has them (None:
    /// there are none, so no quota can apply, as in a v2 root cgroup).
    pub throttling: Result<Option<Throttling>, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupProblem {
    /// No such process.
    Gone,
    /// The cpu controller is not mounted, or the process's cgroup is not under its mount.
    NoCpuController(String),
    Unreadable(String),
}

/// The CPU cgroup of process `pid`, as this process sees the cgroup filesystems.
pub fn cpu_cgroup(pid: i32) -> Result<CpuCgroup, CgroupProblem> {
    let membership = match std::fs::read_to_string(format!("/proc/{pid}/cgroup")) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(CgroupProblem::Gone),
        Err(e) => {
            return Err(CgroupProblem::Unreadable(format!(
                "/proc/{pid}/cgroup: {e}"
            )))
        }
    };
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| CgroupProblem::Unreadable(format!("/proc/self/mountinfo: {e}")))?;
    locate(&membership, &mountinfo, Path::new("/"))
}

/// One line of /proc/PID/cgroup: `ID:CONTROLLERS:PATH`.
#[derive(Debug, PartialEq, Eq)]
struct Membership<'a> {
    hierarchy: &'a str,
    controllers: Vec<&'a str>,
    path: &'a str,
}

fn parse_memberships(text: &str) -> Vec<Membership<'_>> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(Membership {
                hierarchy,
                controllers: controllers.split(',').filter(|c| !c.is_empty()).collect(),
                path,
            })
        })
        .collect()
}

/// A cgroup or cgroup2 mount from mountinfo.
#[derive(Debug, PartialEq, Eq)]
struct CgroupMount {
    /// The directory of the hierarchy mounted there (not always its root, in containers).
    root: String,
    mount_point: String,
    version: CgroupVersion,
    /// For v1: the controllers of the hierarchy (its super options).
    options: Vec<String>,
}

/// The cgroup mounts of a mountinfo: `ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS...] - TYPE SRC SUPER`.
fn parse_cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split_whitespace().collect();
            let mut after = after.split_whitespace();
            let version = match after.next()? {
                "cgroup" => CgroupVersion::V1,
                "cgroup2" => CgroupVersion::V2,
                _ => return None,
            };
            let options = after.nth(1).unwrap_or("");
            Some(CgroupMount {
                root: unescape_mount_path(fields.get(3)?),
                mount_point: unescape_mount_path(fields.get(4)?),
                version,
                options: options.split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash in paths as octal escapes (`\040`).
fn unescape_mount_path(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            let digits = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(digits, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The process's CPU cgroup from its /proc/PID/cgroup and the mounts, with the filesystem
/// under `root` ("/" live; a fixture directory in tests).
pub fn locate(membership: &str, mountinfo: &str, root: &Path) -> Result<CpuCgroup, CgroupProblem> {
    let memberships = parse_memberships(membership);
    let mounts = parse_cgroup_mounts(mountinfo);
    let Some((membership, mount)) = cpu_hierarchy(&memberships, &mounts) else {
        return Err(CgroupProblem::NoCpuController(
            "no mounted cgroup hierarchy has the cpu controller for it".into(),
        ));
    };
    let mount_dir = root.join(mount.mount_point.trim_start_matches('/'));
    let relative = membership
        .path
        .strip_prefix(mount.root.trim_end_matches('/'))
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .ok_or_else(|| {
            CgroupProblem::NoCpuController(format!(
                "its cgroup {} is outside the hierarchy mounted at {}",
                membership.path, mount.mount_point
            ))
        })?;
    let dir = mount_dir.join(relative.trim_start_matches('/'));
    if !dir.is_dir() {
        return Err(CgroupProblem::NoCpuController(format!(
            "its cgroup directory {} is not visible here",
            dir.display()
        )));
    }
    // The directories from the process's cgroup up to the mount, nearest first.
    let levels: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| d.starts_with(&mount_dir))
        .map(Path::to_path_buf)
        .collect();
    if mount.version == CgroupVersion::V2 && !v2_has_cpu_controller(&levels) {
        return Err(CgroupProblem::NoCpuController(format!(
            "cgroup v2 at {} has no cpu controller (not in cgroup.controllers)",
            mount.mount_point
        )));
    }
    Ok(CpuCgroup {
        version: mount.version,
        path: membership.path.to_string(),
        quota: tightest_quota(mount.version, &levels),
        throttling: nearest_throttling(mount.version, &levels),
        dir,
    })
}

/// The membership and mount of the cpu controller: v1 where a v1 hierarchy has it (hybrid
/// systems mount an empty v2 beside), else the v2 hierarchy.
fn cpu_hierarchy<'m, 'a>(
    memberships: &'m [Membership<'a>],
    mounts: &'m [CgroupMount],
) -> Option<(&'m Membership<'a>, &'m CgroupMount)> {
    let v1 = memberships
        .iter()
        .filter(|m| m.controllers.contains(&"cpu"))
        .find_map(|m| {
            let mount = mounts.iter().find(|mount| {
                mount.version == CgroupVersion::V1 && mount.options.iter().any(|o| o == "cpu")
            })?;
            Some((m, mount))
        });
    v1.or_else(|| {
        let m = memberships
            .iter()
            .find(|m| m.hierarchy == "0" && m.controllers.is_empty())?;
        let mount = mounts
            .iter()
            .find(|mount| mount.version == CgroupVersion::V2)?;
        Some((m, mount))
    })
}

/// Whether any level (the mount's root included) lists the cpu controller.
fn v2_has_cpu_controller(levels: &[PathBuf]) -> bool {
    levels.iter().any(|level| {
        std::fs::read_to_string(level.join("cgroup.controllers"))
            .is_ok_and(|text| text.split_whitespace().any(|c| c == "cpu"))
    })
}

/// A file of a cgroup directory: None if it does not exist there.
fn read_optional(dir: &Path, name: &str) -> Result<Option<String>, String> {
    match std::fs::read_to_string(dir.join(name)) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", dir.join(name).display())),
    }
}

fn tightest_quota(version: CgroupVersion, levels: &[PathBuf]) -> Result<Option<CpuQuota>, String> {
    let mut tightest: Option<CpuQuota> = None;
    for level in levels {
        let quota = match version {
            CgroupVersion::V2 => {
                read_optional(level, "cpu.max")?.and_then(|text| parse_cpu_max(&text, level))
            }
            CgroupVersion::V1 => match (
                read_optional(level, "cpu.cfs_quota_us")?,
                read_optional(level, "cpu.cfs_period_us")?,
            ) {
                (Some(quota), Some(period)) => parse_cfs(&quota, &period, level),
                _ => None,
            },
        };
        if let Some(quota) = quota {
            if tightest.as_ref().is_none_or(|t| quota.cores() < t.cores()) {
                tightest = Some(quota);
            }
        }
    }
    Ok(tightest)
}

/// cgroup v2 `cpu.max`: "max 100000" (no limit) or "50000 100000".
fn parse_cpu_max(text: &str, dir: &Path) -> Option<CpuQuota> {
    let mut fields = text.split_whitespace();
    let quota = fields.next()?.parse().ok()?;
    let period = fields.next().map_or(Some(100_000), |p| p.parse().ok())?;
    Some(CpuQuota {
        quota_us: quota,
        period_us: period,
        set_by: dir.to_path_buf(),
    })
}

/// cgroup v1 `cpu.cfs_quota_us` (-1: no limit) and `cpu.cfs_period_us`.
fn parse_cfs(quota: &str, period: &str, dir: &Path) -> Option<CpuQuota> {
    let quota: i64 = quota.trim().parse().ok()?;
    let period: u64 = period.trim().parse().ok()?;
    (quota > 0).then(|| CpuQuota {
        quota_us: quota as u64,
        period_us: period,
        set_by: dir.to_path_buf(),
    })
}

fn nearest_throttling(
    version: CgroupVersion,
    levels: &[PathBuf],
) -> Result<Option<Throttling>, String> {
    for level in levels {
        if let Some(text) = read_optional(level, "cpu.stat")? {
            if let Some(throttling) = parse_cpu_stat(&text, version, level) {
                return Ok(Some(throttling));
            }
        }
    }
    Ok(None)
}

/// `cpu.stat`'s nr_periods, nr_throttled and throttled_time (v1, ns) or throttled_usec (v2).
pub fn parse_cpu_stat(text: &str, version: CgroupVersion, dir: &Path) -> Option<Throttling> {
    let field = |name: &str| {
        text.lines().find_map(|line| {
            let (key, value) = line.split_once(' ')?;
            (key == name).then(|| value.trim().parse::<u64>().ok())?
        })
    };
    let throttled_ns = match version {
        CgroupVersion::V1 => field("throttled_time")?,
        CgroupVersion::V2 => field("throttled_usec")?.saturating_mul(1000),
    };
    Some(Throttling {
        periods: field("nr_periods")?,
        throttled_periods: field("nr_throttled")?,
        throttled_ns,
        of: dir.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixture machine under tests/fixtures/cgroup/NAME: its /proc/PID/cgroup
    /// (`proc_cgroup`), its mountinfo, and the cgroup files under `fs/`.
    fn fixture(name: &str) -> Result<CpuCgroup, CgroupProblem> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cgroup")
            .join(name);
        let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap();
        locate(&read("proc_cgroup"), &read("mountinfo"), &dir.join("fs"))
    }

    #[test]
    fn v2_service_with_a_tighter_quota_than_its_slice() {
        let cgroup = fixture("v2-service").unwrap();
        assert_eq!(cgroup.version, CgroupVersion::V2);
        assert_eq!(cgroup.path, "/system.slice/app.service");
        let quota = cgroup.quota.unwrap().unwrap();
        assert_eq!((quota.quota_us, quota.period_us), (50_000, 100_000));
        assert!(quota.set_by.ends_with("system.slice/app.service"));
        assert_eq!(quota.cores(), 0.5);
        let throttling = cgroup.throttling.unwrap().unwrap();
        assert_eq!(throttling.throttled_periods, 10);
        assert_eq!(throttling.throttled_ns, 1_040_000_000);
    }

    #[test]
    fn v2_ancestor_quota_applies_when_the_leaf_has_none() {
        let cgroup = fixture("v2-ancestor-quota").unwrap();
        let quota = cgroup.quota.unwrap().unwrap();
        assert_eq!(quota.cores(), 1.5);
        assert!(quota.set_by.ends_with("kubepods.slice"));
    }

    #[test]
    fn v2_root_cgroup_has_no_quota_and_no_counters() {
        let cgroup = fixture("v2-root").unwrap();
        assert_eq!(cgroup.quota, Ok(None));
        assert_eq!(cgroup.throttling, Ok(None));
    }

    #[test]
    fn v2_without_the_cpu_controller_is_a_problem() {
        assert!(matches!(
            fixture("v2-no-cpu"),
            Err(CgroupProblem::NoCpuController(_))
        ));
    }

    #[test]
    fn v1_like_this_machine_and_a_container_with_a_quota() {
        // This machine: cgroup v1, cpu alone at /sys/fs/cgroup/cpu, the process at its root,
        // beside an empty cgroup2 hierarchy (hybrid).
        let cgroup = fixture("v1-hybrid-root").unwrap();
        assert_eq!(cgroup.version, CgroupVersion::V1);
        assert_eq!(cgroup.quota, Ok(None));
        let throttling = cgroup.throttling.unwrap().unwrap();
        assert_eq!(throttling.throttled_periods, 0);
        // A docker container on v1: cpu,cpuacct mounted with the container's cgroup as root.
        let cgroup = fixture("v1-container").unwrap();
        assert_eq!(cgroup.version, CgroupVersion::V1);
        let quota = cgroup.quota.unwrap().unwrap();
        assert_eq!(quota.cores(), 0.5);
        let throttling = cgroup.throttling.unwrap().unwrap();
        assert_eq!(throttling.throttled_ns, 1_040_000_000);
        assert_eq!(throttling.throttled_periods, 21);
    }

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape_mount_path(r"/mnt/a\040b"), "/mnt/a b");
        assert_eq!(unescape_mount_path("/sys/fs/cgroup"), "/sys/fs/cgroup");
    }

    #[test]
    fn this_machine_is_read_without_error() {
        // Whatever it is, reading the test's own cgroup either works or says why.
        match cpu_cgroup(std::process::id() as i32) {
            Ok(cgroup) => assert!(cgroup.dir.is_dir()),
            Err(CgroupProblem::Gone) => panic!("the test process is not gone"),
            Err(_) => {}
        }
    }
}
