//! `concadvise doctor`: what this machine and this user allow before a measurement, one check
//! per thing a measurement reads (/proc, ptrace-protected files, cgroup counters, descriptors,
//! the Python interpreter), each with a state and what to do.
//!
//! Each check is a file: it gathers its facts from the live system, and a pure function turns
//! the facts into the one line a user sees (unit-tested from fixtures).

pub mod cgroup;
pub mod open_files;
pub mod proc_files;
pub mod ptrace;
pub mod python;
pub mod render;

use serde::Serialize;

use crate::error::Error;
use crate::sampler::proc_file::{read_once, ReadFailure};
use crate::sampler::tree_reader::{read_command_line, read_stat};

/// How far a measurement can go with what a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Everything this check covers can be measured.
    Ok,
    /// A measurement works, but loses what the check says.
    Limited,
    /// What this check covers cannot be measured at all.
    Missing,
}

impl State {
    pub fn word(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Limited => "limited",
            State::Missing => "missing",
        }
    }
}

/// One line of the diagnosis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub state: State,
    /// What was found, and for a state other than ok, what a measurement loses.
    pub found: String,
    /// What to do about it (absent when there is nothing to do).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub todo: Option<String>,
}

impl Check {
    pub fn ok(name: &'static str, found: String) -> Check {
        Check {
            name,
            state: State::Ok,
            found,
            todo: None,
        }
    }

    pub fn not_ok(name: &'static str, state: State, found: String, todo: String) -> Check {
        Check {
            name,
            state,
            found,
            todo: Some(todo),
        }
    }
}

/// Who is asking: the user concadvise runs as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Who {
    pub uid: u32,
    pub name: Option<String>,
    /// CAP_SYS_PTRACE in the effective set: every process's ptrace-protected files.
    pub cap_sys_ptrace: bool,
    /// The effective capability set (CapEff).
    #[serde(skip)]
    pub capabilities: u64,
}

/// CAP_SYS_PTRACE's bit in the capability sets (linux/capability.h).
const CAP_SYS_PTRACE: u32 = 19;

impl Who {
    pub fn current() -> Who {
        let uid = nix::unistd::geteuid().as_raw();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let capabilities = capability_set(&status, "CapEff").unwrap_or(0);
        Who {
            uid,
            name: user_name(uid),
            cap_sys_ptrace: capabilities & (1 << CAP_SYS_PTRACE) != 0,
            capabilities,
        }
    }

    /// "uid 65534 (nobody)".
    pub fn describe(&self) -> String {
        describe_uid(self.uid, self.name.as_deref())
    }
}

pub fn describe_uid(uid: u32, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("uid {uid} ({name})"),
        None => format!("uid {uid}"),
    }
}

pub fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|user| user.name)
}

/// A capability mask ("CapEff", "CapPrm") of a /proc/PID/status text.
pub fn capability_set(status: &str, set: &str) -> Option<u64> {
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix(set)?.strip_prefix(':'))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

/// The process doctor was asked about, and its tree (it and its descendants now).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub pid: i32,
    pub command: Vec<String>,
    /// Its real, effective and saved uids (ptrace access needs all three to be the caller's).
    pub uids: [u32; 3],
    pub owner: Option<String>,
    /// Its permitted capabilities (CapPrm): a process holding some the caller lacks is
    /// protected from it even when the uids match.
    #[serde(skip)]
    pub capabilities: Option<u64>,
    /// The PIDs of its tree, the target first.
    pub tree: Vec<i32>,
    /// Threads in the whole tree.
    pub threads: u64,
}

impl Target {
    /// The live process `pid` (3 when there is none, as for `attach`).
    pub fn find(pid: i32) -> Result<Target, Error> {
        let mut buf = Vec::new();
        let stat = read_stat(pid, &mut buf).map_err(|_| not_visible(pid))?;
        if matches!(stat.state, 'Z' | 'X') {
            return Err(Error::NoSuchProcess(pid));
        }
        let status = match read_once(format!("/proc/{pid}/status").as_ref(), &mut buf) {
            Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
            Err(ReadFailure::Gone) => return Err(Error::NoSuchProcess(pid)),
            Err(_) => String::new(),
        };
        let uids = status_uids(&status).unwrap_or([u32::MAX; 3]);
        let tree = tree_of(pid);
        let threads = tree
            .iter()
            .filter_map(|&p| read_stat(p, &mut buf).ok())
            .map(|stat| stat.num_threads.max(1) as u64)
            .sum();
        Ok(Target {
            pid,
            command: read_command_line(pid, &mut buf).unwrap_or_else(|| vec![stat.comm]),
            owner: user_name(uids[0]),
            capabilities: capability_set(&status, "CapPrm"),
            uids,
            tree,
            threads,
        })
    }

    pub fn owned_by(&self, uid: u32) -> bool {
        self.uids.iter().all(|&u| u == uid)
    }
}

/// No such process, or (with hidepid) none this user may see.
fn not_visible(pid: i32) -> Error {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    match proc_files::hidepid(&mountinfo) {
        Some(hidepid) if !nix::unistd::geteuid().is_root() => Error::HiddenProcess { pid, hidepid },
        _ => Error::NoSuchProcess(pid),
    }
}

/// The real, effective and saved uids of a /proc/PID/status text.
pub fn status_uids(status: &str) -> Option<[u32; 3]> {
    let line = status.lines().find_map(|line| line.strip_prefix("Uid:"))?;
    let mut ids = line.split_whitespace().map(str::parse::<u32>);
    Some([ids.next()?.ok()?, ids.next()?.ok()?, ids.next()?.ok()?])
}

/// `pid` and its descendants now, from the children files of their threads (a bounded walk:
/// a PID seen twice is not followed again).
fn tree_of(pid: i32) -> Vec<i32> {
    const MOST: usize = 10_000;
    let mut tree = vec![pid];
    let mut next = 0;
    let mut buf = Vec::new();
    while next < tree.len() && tree.len() < MOST {
        let parent = tree[next];
        next += 1;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            if read_once(&task.path().join("children"), &mut buf).is_err() {
                continue;
            }
            for child in String::from_utf8_lossy(&buf)
                .split_whitespace()
                .filter_map(|word| word.parse::<i32>().ok())
            {
                if !tree.contains(&child) {
                    tree.push(child);
                }
            }
        }
    }
    tree
}

/// The whole diagnosis: who asks, about what, and every check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    pub user: Who,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    pub checks: Vec<Check>,
    /// Whether every check is ok: a measurement now would miss nothing.
    pub full_measurement: bool,
}

/// Runs every check, for process `pid` or (without one) for the user's own processes.
pub fn examine(pid: Option<i32>) -> Result<Diagnosis, Error> {
    let user = Who::current();
    let target = pid.map(Target::find).transpose()?;
    let target_ref = target.as_ref();
    let mut checks = vec![
        proc_files::check(target_ref),
        ptrace::check(&user, target_ref),
        cgroup::check(target_ref),
        open_files::check(target_ref),
    ];
    checks.extend(python::check(target_ref));
    let full_measurement = checks.iter().all(|c| c.state == State::Ok);
    Ok(Diagnosis {
        user,
        target,
        checks,
        full_measurement,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_and_uids_from_status() {
        let status = "Name:\tbash\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n\
                      CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\n\
                      CapEff:\t0000000000080000\nCapBnd:\t000001ffffffffff\n";
        assert_eq!(capability_set(status, "CapEff"), Some(0x80000));
        assert_eq!(capability_set(status, "CapPrm"), Some(0));
        assert_eq!(status_uids(status), Some([1000, 1000, 1000]));
        // Root in a docker container: the default capabilities, without CAP_SYS_PTRACE.
        let docker_root = "CapEff:\t00000000a80425fb\n";
        let caps = capability_set(docker_root, "CapEff").unwrap();
        assert_eq!(caps & (1 << CAP_SYS_PTRACE), 0);
        assert_eq!(capability_set("Name:\tx\n", "CapEff"), None);
    }

    #[test]
    fn the_tests_own_tree_is_found() {
        let me = std::process::id() as i32;
        let target = Target::find(me).unwrap();
        assert_eq!(target.tree[0], me);
        assert!(target.threads >= 1);
        assert_eq!(target.uids[0], nix::unistd::getuid().as_raw());
        assert!(matches!(
            Target::find(i32::MAX),
            Err(Error::NoSuchProcess(_))
        ));
    }
}
