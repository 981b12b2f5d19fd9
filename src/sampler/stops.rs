//! Who stopped a thread: a tracer (TracerPid of its status), a stop signal, or a frozen cgroup (cgroup v1 freezer.state, v2 cgroup.events).
//!
//! A task of a frozen cgroup is frozen in place: a thread asleep in nanosleep stays there, in
//! state D, without running, so its counters do not move and the sampler, which reads only
//! threads that ran, would go on seeing it asleep. So the freezer is watched per cgroup: each
//! tick reads the state file of every non-root cgroup the tree is in (one pread of a held
//! file; none at all for a tree in the root cgroup, the common case), and a process's cgroup is
//! read again when it is first seen, when it looks frozen (its main thread in D, or a thread
//! sleeping in the freezer), and every two seconds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::observation::Stopper;
use super::proc_file::{read_once, ProcFile};

/// A process's cgroups are read again at least this often...
const MEMBERSHIP_REFRESH: Duration = Duration::from_secs(2);
/// ...and, when it looks frozen, at most this often.
const SUSPECT_REFRESH: Duration = Duration::from_millis(100);

/// Which cgroups a process is in that can be frozen (v1 freezer, v2), as last read.
#[derive(Debug, Default)]
pub struct ProcessCgroups {
    cgroups: Vec<Arc<str>>,
    read_at: Option<Instant>,
}

/// A cgroup's freezer state file, held.
struct Watched {
    file: ProcFile,
    v2: bool,
    frozen: bool,
    read_at_tick: u64,
}

pub struct Stops {
    /// Where the v1 freezer hierarchy and the v2 hierarchy are mounted (concadvise's view).
    v1_freezer: Option<PathBuf>,
    v2: Option<PathBuf>,
    watched: HashMap<Arc<str>, Option<Watched>>,
    tracer_names: HashMap<i32, String>,
    buf: Vec<u8>,
    tick: u64,
}

impl Default for Stops {
    /// Finds where the freezer hierarchies are mounted (concadvise's own mountinfo).
    fn default() -> Self {
        let mut buf = Vec::new();
        let (mut v1_freezer, mut v2) = (None, None);
        if read_once(Path::new("/proc/self/mountinfo"), &mut buf).is_ok() {
            for line in String::from_utf8_lossy(&buf).lines() {
                let Ok(info) = procfs::process::MountInfo::from_line(line) else {
                    continue;
                };
                // Only a hierarchy mounted at its root maps cgroup paths to directories.
                if info.root != "/" {
                    continue;
                }
                match info.fs_type.as_str() {
                    "cgroup" if info.super_options.contains_key("freezer") => {
                        v1_freezer.get_or_insert(info.mount_point);
                    }
                    "cgroup2" => {
                        v2.get_or_insert(info.mount_point);
                    }
                    _ => {}
                }
            }
        }
        Stops {
            v1_freezer,
            v2,
            watched: HashMap::new(),
            tracer_names: HashMap::new(),
            buf,
            tick: 0,
        }
    }
}

impl Stops {
    /// Starts a tick: each watched cgroup is read at most once per tick.
    pub fn next_tick(&mut self) {
        self.tick += 1;
    }

    /// The frozen cgroup process `pid` is in now, if any. `suspect`: it looks frozen (its main
    /// thread in D, or a thread asleep in the freezer), so its cgroups are read again.
    pub fn frozen(
        &mut self,
        pid: i32,
        membership: &mut ProcessCgroups,
        suspect: bool,
    ) -> Option<Arc<str>> {
        if self.v1_freezer.is_none() && self.v2.is_none() {
            return None;
        }
        let due = match membership.read_at {
            None => true,
            Some(at) if suspect => at.elapsed() >= SUSPECT_REFRESH,
            Some(at) => at.elapsed() >= MEMBERSHIP_REFRESH,
        };
        if due {
            membership.cgroups = self.cgroups_of(pid);
            membership.read_at = Some(Instant::now());
        }
        membership
            .cgroups
            .iter()
            .find(|cgroup| self.is_frozen(cgroup))
            .cloned()
    }

    /// The directories of `pid`'s freezable cgroups that are not a hierarchy's root.
    fn cgroups_of(&mut self, pid: i32) -> Vec<Arc<str>> {
        if read_once(&PathBuf::from(format!("/proc/{pid}/cgroup")), &mut self.buf).is_err() {
            return Vec::new();
        }
        let text = String::from_utf8_lossy(&self.buf);
        let mut dirs = Vec::new();
        for line in text.lines() {
            let mut fields = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(path)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let mount = if id == "0" && controllers.is_empty() {
                self.v2.as_ref()
            } else if controllers.split(',').any(|c| c == "freezer") {
                self.v1_freezer.as_ref()
            } else {
                None
            };
            // The root cgroup cannot be frozen (and has no state file).
            if let (Some(mount), false) = (mount, path == "/") {
                let dir = mount.join(path.trim_start_matches('/'));
                dirs.push(Arc::from(dir.to_string_lossy().as_ref()));
            }
        }
        dirs
    }

    /// Whether a cgroup (its directory) is frozen: v1 freezer.state FROZEN, v2 cgroup.events
    /// `frozen 1`; read at most once per tick through a held descriptor.
    fn is_frozen(&mut self, cgroup: &Arc<str>) -> bool {
        let tick = self.tick;
        let Stops { watched, buf, .. } = self;
        let entry = watched.entry(Arc::clone(cgroup)).or_insert_with(|| {
            let v1 = Path::new(cgroup.as_ref()).join("freezer.state");
            let v2 = Path::new(cgroup.as_ref()).join("cgroup.events");
            match ProcFile::open(&v1) {
                Ok(file) => Some((file, false)),
                Err(_) => ProcFile::open(&v2).ok().map(|file| (file, true)),
            }
            .map(|(file, v2)| Watched {
                file,
                v2,
                frozen: false,
                read_at_tick: 0,
            })
        });
        let Some(watch) = entry else { return false };
        if watch.read_at_tick != tick {
            watch.read_at_tick = tick;
            watch.frozen = watch.file.read_all(buf).is_ok() && {
                let text = String::from_utf8_lossy(buf);
                if watch.v2 {
                    text.lines().any(|line| line.trim() == "frozen 1")
                } else {
                    text.trim() == "FROZEN"
                }
            };
        }
        watch.frozen
    }

    /// Who stopped a thread seen in state T or t (its task directory): the tracer named in its
    /// status, or else a stop signal.
    pub fn stopper_of(&mut self, task_dir: &Path) -> Stopper {
        let tracer = read_once(&task_dir.join("status"), &mut self.buf)
            .ok()
            .and_then(|()| tracer_pid(&String::from_utf8_lossy(&self.buf)));
        let Some(pid) = tracer else {
            return Stopper::Signal;
        };
        let buf = &mut self.buf;
        let name = self
            .tracer_names
            .entry(pid)
            .or_insert_with(|| {
                read_once(&PathBuf::from(format!("/proc/{pid}/comm")), buf)
                    .map(|()| String::from_utf8_lossy(buf).trim().to_string())
                    .unwrap_or_default()
            })
            .clone();
        Stopper::Tracer { pid, name }
    }
}

/// Whether a thread's wchan is the freezer's: v1's refrigerator, v2's signal trap.
pub fn sleeps_in_freezer(wchan: &str) -> bool {
    wchan.contains("refrigerator") || wchan.contains("freezer_trap")
}

/// The TracerPid of a status text, when a tracer is attached.
pub fn tracer_pid(status: &str) -> Option<i32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("TracerPid:"))
        .and_then(|pid| pid.trim().parse().ok())
        .filter(|pid| *pid > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracer_pid_from_status() {
        let status = "Name:\tsleep\nState:\tt (tracing stop)\nTgid:\t42\nTracerPid:\t4242\n";
        assert_eq!(tracer_pid(status), Some(4242));
        assert_eq!(tracer_pid("Name:\tsleep\nTracerPid:\t0\n"), None);
    }

    #[test]
    fn a_process_in_the_root_cgroup_is_never_frozen_and_costs_no_state_read() {
        let mut stops = Stops::default();
        stops.next_tick();
        let mut membership = ProcessCgroups::default();
        let pid = std::process::id() as i32;
        let frozen = stops.frozen(pid, &mut membership, false);
        // The tests run in whatever cgroup the machine gives them: not a frozen one.
        assert_eq!(frozen, None);
        assert!(membership.read_at.is_some());
    }
}
