//! Finds the running process to measure (by PID or name), refuses what must not be measured, and watches for its exit.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::sampler::proc_file::{read_once, ReadFailure};
use crate::sampler::tree_reader::{read_command_line, read_stat};
use crate::target::launch::Ending;

/// PF_KTHREAD in /proc/PID/stat's flags: a kernel thread, with no program of its own.
const PF_KTHREAD: u32 = 0x0020_0000;

#[derive(Debug, Clone)]
pub struct AttachTarget {
    pub pid: i32,
    /// Start time in clock ticks after boot: with the PID, the process's identity.
    pub start_ticks: u64,
    pub command: Vec<String>,
    /// The thread ID given instead of a PID, resolved to its process.
    pub thread_given: Option<i32>,
}

/// The process named by `pid`, or the one process called `name`, checked for measurability.
pub fn resolve(pid: Option<i32>, name: Option<&str>) -> Result<AttachTarget, Error> {
    let pid = match (pid, name) {
        (Some(pid), _) => pid,
        (None, Some(name)) => find_by_name(name)?,
        (None, None) => return Err(Error::Setup("give a PID or --name".into())),
    };
    // A thread ID has a /proc entry of its own (not listed): measure its process instead.
    let given = pid;
    let pid = thread_group_of(pid).unwrap_or(pid);
    let mut buf = Vec::new();
    let stat = read_stat(pid, &mut buf).map_err(|_| Error::NoSuchProcess(pid))?;
    let refuse = |reason: &str| Error::RefusedTarget {
        pid,
        reason: reason.to_string(),
    };
    if pid == std::process::id() as i32 {
        return Err(refuse("that is concadvise itself"));
    }
    if pid == 1 {
        return Err(refuse(
            "it is init, the ancestor of every process (concadvise included): it would measure \
             the whole system and itself; attach to the program you care about",
        ));
    }
    if ancestors_of_self().contains(&pid) {
        return Err(refuse(
            "concadvise runs inside it (it is the shell or program concadvise was started \
             from), so it would measure itself; attach to a program it runs instead",
        ));
    }
    if stat.flags & PF_KTHREAD != 0 {
        return Err(refuse(
            "it is a kernel thread, with no program to advise on",
        ));
    }
    if matches!(stat.state, 'Z' | 'X') {
        return Err(Error::NoSuchProcess(pid));
    }
    Ok(AttachTarget {
        pid,
        start_ticks: stat.starttime,
        command: read_command_line(pid, &mut buf).unwrap_or_else(|| vec![stat.comm]),
        thread_given: (given != pid).then_some(given),
    })
}

/// Whether the target still runs; once it has exited, how (when its parent has not reaped it
/// yet, the zombie still tells its exit status).
pub fn ending(target: &AttachTarget) -> Option<Option<Ending>> {
    match read_stat(target.pid, &mut Vec::new()) {
        Ok(stat) if stat.starttime == target.start_ticks => match stat.state {
            'Z' | 'X' => Some(stat.exit_code.map(decode_wait_status)),
            _ => None,
        },
        // The PID now belongs to another process.
        Ok(_) => Some(None),
        Err(ReadFailure::Gone) => Some(None),
        // Unreadable for now (out of descriptors...): not evidence that it exited.
        Err(_) => None,
    }
}

/// A wait(2) status word as the exit code / signal it encodes.
fn decode_wait_status(status: i32) -> Ending {
    let signal = status & 0x7f;
    if signal == 0 {
        Ending::Exited((status >> 8) & 0xff)
    } else {
        Ending::Signaled(signal)
    }
}

/// User and system CPU clock ticks of a process and its reaped children, for the user/system
/// split of sampled CPU time.
pub fn cpu_ticks(pid: i32) -> Option<(u64, u64)> {
    let stat = read_stat(pid, &mut Vec::new()).ok()?;
    Some((
        stat.utime + stat.cutime.max(0) as u64,
        stat.stime + stat.cstime.max(0) as u64,
    ))
}

/// Whether the ptrace-protected sources (syscall, wchan, fd/) of `pid` are readable by us.
pub fn wait_sources_readable(pid: i32) -> bool {
    let mut buf = Vec::new();
    !matches!(
        read_once(&proc_path(pid, "syscall"), &mut buf),
        Err(ReadFailure::Denied)
    )
}

/// The process (thread group) a task ID belongs to, from /proc/ID/status; `None` if unreadable.
fn thread_group_of(tid: i32) -> Option<i32> {
    let mut buf = Vec::new();
    read_once(&proc_path(tid, "status"), &mut buf).ok()?;
    String::from_utf8_lossy(&buf)
        .lines()
        .find_map(|line| line.strip_prefix("Tgid:")?.trim().parse().ok())
}

/// The parent, grandparent... of concadvise, init (PID 1) included.
fn ancestors_of_self() -> Vec<i32> {
    let mut ancestors = Vec::new();
    let mut pid = nix::unistd::getppid().as_raw();
    while pid >= 1 && !ancestors.contains(&pid) {
        ancestors.push(pid);
        match read_stat(pid, &mut Vec::new()) {
            Ok(stat) => pid = stat.ppid,
            Err(_) => break,
        }
    }
    ancestors
}

fn proc_path(pid: i32, file: &str) -> PathBuf {
    Path::new("/proc").join(pid.to_string()).join(file)
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The one process called `name`: its command name, its program's file name, or the script an
/// interpreter runs. A match whose parent also matches (workers of a master) is the master's.
fn find_by_name(name: &str) -> Result<i32, Error> {
    let me = std::process::id() as i32;
    let ancestors = ancestors_of_self();
    let mut matches: Vec<(i32, i32)> = Vec::new();
    let mut buf = Vec::new();
    let processes = procfs::process::all_processes()
        .map_err(|e| Error::Setup(format!("cannot list processes in /proc: {e}")))?;
    for process in processes.flatten() {
        let pid = process.pid();
        if pid == me || ancestors.contains(&pid) {
            continue;
        }
        let Ok(stat) = read_stat(pid, &mut buf) else {
            continue;
        };
        if stat.flags & PF_KTHREAD != 0 {
            continue;
        }
        let args = read_command_line(pid, &mut buf).unwrap_or_default();
        let named = stat.comm == name
            || args.first().is_some_and(|a| base_name(a) == name)
            || args.get(1).is_some_and(|a| base_name(a) == name);
        if named {
            matches.push((pid, stat.ppid));
        }
    }
    let pids: Vec<i32> = matches.iter().map(|(pid, _)| *pid).collect();
    let roots: Vec<i32> = matches
        .iter()
        .filter(|(_, ppid)| !pids.contains(ppid))
        .map(|(pid, _)| *pid)
        .collect();
    match roots.as_slice() {
        [pid] => Ok(*pid),
        [] => Err(Error::NoProcessNamed(name.to_string())),
        several => Err(Error::AmbiguousName {
            name: name.to_string(),
            pids: several.to_vec(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_decode_like_the_shell() {
        assert_eq!(decode_wait_status(3 << 8), Ending::Exited(3));
        assert_eq!(decode_wait_status(9), Ending::Signaled(9));
        assert_eq!(decode_wait_status(0), Ending::Exited(0));
    }

    #[test]
    fn refuses_itself_and_reports_missing_pids() {
        let me = std::process::id() as i32;
        assert!(matches!(
            resolve(Some(me), None),
            Err(Error::RefusedTarget { .. })
        ));
        // PIDs are below 2^22 on Linux: this one cannot exist.
        assert!(matches!(
            resolve(Some(i32::MAX), None),
            Err(Error::NoSuchProcess(_))
        ));
    }
}
