//! A thread's /proc files (schedstat, stat, syscall, wchan): held open while the descriptor budget allows, opened for each read past it.
//!
//! A held file costs one pread a read; one opened for the read costs an open, a read and a
//! close (about two and a half times the CPU on this machine kind). The sampler holds at most
//! `DescriptorBudget` descriptors, three quarters of its soft open-file limit (the rest is for
//! what it opens in passing: task lists, fdinfo, socket tables, the report). Holding is for
//! the threads that are read often: every thread's schedstat while there is room, and the
//! files a blocked thread's wait is read from (stat, syscall, wchan) only for threads that
//! ran since an earlier read. When half the budget is held, dormant threads give up their
//! wait files; when it is nearly all held, they give up their schedstat too, and are read by
//! opening it. No thread goes unfollowed for lack of a descriptor to hold.

use std::path::{Path, PathBuf};

use super::proc_file::{open_files, ProcFile, ReadFailure};

/// The most /proc descriptors the sampler holds, as a share of its soft open-file limit.
const HELD_SHARE_OF_LIMIT: f64 = 0.75;
/// Without a limit to read (or an unlimited one), hold at most this many.
const HELD_WITHOUT_LIMIT: usize = 16_384;

/// How many /proc descriptors the sampler may hold.
#[derive(Debug, Clone, Copy)]
pub struct DescriptorBudget {
    held_at_most: usize,
}

impl DescriptorBudget {
    /// Three quarters of concadvise's soft open-file limit as it is now (`run` and `attach`
    /// raise it to the hard limit before sampling starts).
    pub fn from_limit() -> Self {
        let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_or(0, |(soft, _)| soft);
        let held_at_most = match usize::try_from(soft) {
            Ok(0) | Err(_) => HELD_WITHOUT_LIMIT,
            Ok(soft) => (soft as f64 * HELD_SHARE_OF_LIMIT) as usize,
        };
        DescriptorBudget { held_at_most }
    }

    pub fn with_limit(held_at_most: usize) -> Self {
        DescriptorBudget { held_at_most }
    }

    pub fn held_at_most(&self) -> usize {
        self.held_at_most
    }

    /// Another thread's descriptor may be held. A sixteenth of the budget (at least four) is
    /// left to the files each process, cgroup and the machine keep open (a process's stat and
    /// mountinfo, a cgroup's counters, diskstats), which are opened as they are needed.
    pub fn room(&self) -> bool {
        open_files() + (self.held_at_most / 16).max(4) < self.held_at_most
    }

    /// Half the budget is held: dormant threads close their wait files.
    pub fn pressed(&self) -> bool {
        open_files() >= self.held_at_most / 2
    }

    /// All but a twentieth is held: dormant threads close their schedstat too, leaving room
    /// for the threads that run.
    pub fn nearly_full(&self) -> bool {
        open_files() + self.held_at_most / 20 >= self.held_at_most
    }
}

/// The per-thread files the sampler reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadFile {
    Schedstat,
    Stat,
    Syscall,
    Wchan,
}

impl ThreadFile {
    fn name(self) -> &'static str {
        match self {
            ThreadFile::Schedstat => "schedstat",
            ThreadFile::Stat => "stat",
            ThreadFile::Syscall => "syscall",
            ThreadFile::Wchan => "wchan",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// One thread's directory and the descriptors held for it.
pub struct ThreadFiles {
    dir: PathBuf,
    held: [Option<ProcFile>; 4],
}

impl ThreadFiles {
    pub fn new(dir: PathBuf) -> Self {
        ThreadFiles {
            dir,
            held: [None, None, None, None],
        }
    }

    /// /proc/PID/task/TID.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads `file` into `buf`: through its held descriptor, or by opening it, keeping the
    /// descriptor when `hold` (else it is closed after the read).
    pub fn read(
        &mut self,
        file: ThreadFile,
        hold: bool,
        buf: &mut Vec<u8>,
    ) -> Result<(), ReadFailure> {
        let slot = &mut self.held[file.slot()];
        if let Some(held) = slot {
            return held.read_into(buf);
        }
        let opened = ProcFile::open(&self.dir.join(file.name()))?;
        opened.read_into(buf)?;
        if hold {
            *slot = Some(opened);
        }
        Ok(())
    }

    pub fn holds(&self, file: ThreadFile) -> bool {
        self.held[file.slot()].is_some()
    }

    /// Closes `file`'s descriptor, if held.
    pub fn release(&mut self, file: ThreadFile) {
        self.held[file.slot()] = None;
    }

    /// Closes the files only a blocked thread's read needs (stat, syscall, wchan).
    pub fn release_wait_files(&mut self) {
        for file in [ThreadFile::Stat, ThreadFile::Syscall, ThreadFile::Wchan] {
            self.release(file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_read_without_holding_leaves_no_descriptor_and_the_same_content() {
        let dir = PathBuf::from(format!("/proc/self/task/{}", nix::unistd::gettid()));
        let mut files = ThreadFiles::new(dir);
        let mut buf = Vec::new();
        files.read(ThreadFile::Stat, false, &mut buf).unwrap();
        assert!(!files.holds(ThreadFile::Stat));
        let once = String::from_utf8_lossy(&buf).into_owned();
        files.read(ThreadFile::Stat, true, &mut buf).unwrap();
        assert!(files.holds(ThreadFile::Stat));
        // The same thread either way (its name and state letter lead the line).
        let held = String::from_utf8_lossy(&buf).into_owned();
        assert_eq!(once.split(' ').next(), held.split(' ').next());
        files.release_wait_files();
        assert!(!files.holds(ThreadFile::Stat));
        files.read(ThreadFile::Schedstat, true, &mut buf).unwrap();
        assert!(files.holds(ThreadFile::Schedstat));
    }

    #[test]
    fn the_budget_is_three_quarters_of_the_soft_limit() {
        let (soft, _) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        let budget = DescriptorBudget::from_limit();
        assert_eq!(budget.held_at_most(), (soft as f64 * 0.75) as usize);
        let none = DescriptorBudget::with_limit(0);
        assert!(!none.room() && none.pressed() && none.nearly_full());
    }
}
