//! How processes that join the tree are found: each thread's children file, or, on kernels without them (CONFIG_PROC_CHILDREN off), a scan of /proc/*/stat for processes whose parent is in the tree.
//!
//! The scan lists /proc and reads the stat of each process not seen at the previous scan (of
//! every process once a second, so a reused PID is noticed), keeping each one's parent. It is
//! paced by its own cost: the next scan comes no sooner than `COST_FACTOR` times the last one
//! took, so it takes at most 1/COST_FACTOR of a core (2%, inside the sampler's 5% budget), and
//! never more often than the discovery period of the children files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::proc_file::read_once;

/// The environment variable that chooses the discovery: `scan` or `children`.
pub const DISCOVERY_VAR: &str = "CONCADVISE_DISCOVERY";
/// The scan waits at least this many times its own duration before the next one.
const COST_FACTOR: u32 = 50;
/// Every process's stat is read again at least this often (PIDs are reused).
const FULL_SCAN_PERIOD: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Discovery {
    /// /proc/PID/task/TID/children of every thread.
    #[default]
    Children,
    /// The parent of every process on the machine, from /proc/*/stat.
    Scan,
}

impl Discovery {
    pub fn name(self) -> &'static str {
        match self {
            Discovery::Children => "children",
            Discovery::Scan => "scan",
        }
    }

    /// The discovery asked for in the environment, if any; an error for another value.
    pub fn from_env() -> Result<Option<Discovery>, String> {
        match std::env::var(DISCOVERY_VAR) {
            Err(_) => Ok(None),
            Ok(value) => match value.as_str() {
                "" => Ok(None),
                "children" => Ok(Some(Discovery::Children)),
                "scan" => Ok(Some(Discovery::Scan)),
                other => Err(format!(
                    "{DISCOVERY_VAR}={other:?} is not a discovery: use `scan` or `children` \
                     (or unset it)"
                )),
            },
        }
    }

    /// `forced`, or the children files when this kernel has them.
    pub fn choose(forced: Option<Discovery>) -> Discovery {
        forced.unwrap_or_else(|| {
            if Path::new("/proc/thread-self/children").exists() {
                Discovery::Children
            } else {
                Discovery::Scan
            }
        })
    }
}

/// The machine's processes and their parents, kept from scan to scan.
#[derive(Default)]
pub struct ProcScan {
    /// PID -> (parent PID, start time in clock ticks) at the last scan.
    parents: HashMap<i32, (i32, u64)>,
    children: HashMap<i32, Vec<i32>>,
    full_at: Option<Instant>,
    next_at: Option<Instant>,
    buf: Vec<u8>,
    /// Scans done, and stat files read by them (for the cost notes).
    pub scans: u64,
    pub stat_reads: u64,
}

impl ProcScan {
    /// Scans again when the pacing allows (else the last scan stands).
    pub fn refresh(&mut self) {
        let due = self.next_at.is_none_or(|at| Instant::now() >= at);
        if due {
            let started = Instant::now();
            self.scan();
            let took = started.elapsed();
            self.next_at = Some(Instant::now() + took * COST_FACTOR);
        }
    }

    /// The children of `pid` at the last scan.
    pub fn children_of(&self, pid: i32) -> &[i32] {
        self.children.get(&pid).map_or(&[], Vec::as_slice)
    }

    fn scan(&mut self) {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        let full = self
            .full_at
            .is_none_or(|at| at.elapsed() >= FULL_SCAN_PERIOD);
        if full {
            self.full_at = Some(Instant::now());
        }
        let mut parents = HashMap::with_capacity(self.parents.len());
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            if let Some(known) = self.parents.get(&pid).filter(|_| !full) {
                parents.insert(pid, *known);
                continue;
            }
            self.stat_reads += 1;
            let stat = PathBuf::from(format!("/proc/{pid}/stat"));
            if read_once(&stat, &mut self.buf).is_ok() {
                if let Some(parent) = parse_parent_and_start(&self.buf) {
                    parents.insert(pid, parent);
                }
            }
        }
        self.scans += 1;
        self.children = children_by_parent(&parents);
        self.parents = parents;
    }
}

/// Children by parent, each list sorted.
pub fn children_by_parent(parents: &HashMap<i32, (i32, u64)>) -> HashMap<i32, Vec<i32>> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (pid, (ppid, _)) in parents {
        children.entry(*ppid).or_default().push(*pid);
    }
    children.values_mut().for_each(|list| list.sort_unstable());
    children
}

/// The parent PID (field 4) and start time (field 22) of a /proc/PID/stat line.
pub fn parse_parent_and_start(buf: &[u8]) -> Option<(i32, u64)> {
    let close = buf.iter().rposition(|b| *b == b')')?;
    let after_name = std::str::from_utf8(buf.get(close + 1..)?).ok()?;
    let mut fields = after_name.split_whitespace();
    let ppid = fields.nth(1)?.parse().ok()?;
    let start = fields.nth(17)?.parse().ok()?;
    Some((ppid, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_and_start_from_stat() {
        let line =
            b"4242 (a (b) c) S 4241 4242 4242 0 -1 4194560 98 0 0 0 1 2 0 0 20 0 1 0 987654 1 2";
        assert_eq!(parse_parent_and_start(line), Some((4241, 987654)));
        assert_eq!(parse_parent_and_start(b"garbage"), None);
    }

    #[test]
    fn children_are_grouped_by_parent() {
        let parents = HashMap::from([(10, (1, 0)), (11, (10, 0)), (12, (10, 0)), (13, (11, 0))]);
        let children = children_by_parent(&parents);
        assert_eq!(children[&1], vec![10]);
        assert_eq!(children[&10], vec![11, 12]);
        assert_eq!(children[&11], vec![13]);
    }

    #[test]
    fn a_scan_finds_this_process_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let mut scan = ProcScan::default();
        scan.refresh();
        let own = std::process::id() as i32;
        assert!(scan.children_of(own).contains(&(child.id() as i32)));
        // Paced by its cost: an immediate second call keeps the last scan.
        scan.refresh();
        assert_eq!(scan.scans, 1);
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
