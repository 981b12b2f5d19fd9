//! One /proc file read again and again: a held descriptor read with pread at offset 0.
//!
//! Opening a /proc file costs several syscalls; a held descriptor returns fresh content in one.
//! A held descriptor of a thread that exited fails with ESRCH, so a reused PID never yields
//! another task's numbers. Every `ProcFile` alive is counted (`open_files`): what the sampler
//! holds, against its descriptor budget.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `ProcFile`s alive in this process (held ones, and the one a `read_once` has open).
static OPEN_FILES: AtomicUsize = AtomicUsize::new(0);

/// How many /proc descriptors are open through `ProcFile` right now.
pub fn open_files() -> usize {
    OPEN_FILES.load(Ordering::Relaxed)
}

/// Why a /proc read failed, in the terms the sampler acts on.
#[derive(Debug)]
pub enum ReadFailure {
    /// The task or process is gone (exited, or reaped between two reads).
    Gone,
    /// No permission (ptrace access mode is needed for syscall, wchan, fd/, mem).
    Denied,
    /// concadvise has no file descriptor left (EMFILE, ENFILE): nothing could be opened.
    NoDescriptors,
    Other(io::Error),
}

impl From<io::Error> for ReadFailure {
    fn from(error: io::Error) -> Self {
        const ESRCH: i32 = 3;
        const ENFILE: i32 = 23;
        const EMFILE: i32 = 24;
        match error.kind() {
            _ if matches!(error.raw_os_error(), Some(EMFILE | ENFILE)) => {
                ReadFailure::NoDescriptors
            }
            io::ErrorKind::NotFound => ReadFailure::Gone,
            io::ErrorKind::PermissionDenied => ReadFailure::Denied,
            _ if error.raw_os_error() == Some(ESRCH) => ReadFailure::Gone,
            _ => ReadFailure::Other(error),
        }
    }
}

/// Room for one single-record file: a page is the most /proc gives in one read.
const RECORD_BUFFER: usize = 4096;

pub struct ProcFile {
    file: File,
}

impl ProcFile {
    pub fn open(path: &Path) -> Result<Self, ReadFailure> {
        let file = File::open(path)?;
        OPEN_FILES.fetch_add(1, Ordering::Relaxed);
        Ok(ProcFile { file })
    }

    /// Reads a single-record file (stat, schedstat, syscall, wchan) into `buf` (cleared
    /// first) with one pread at offset 0: such files fit in one read of a page.
    pub fn read_into(&self, buf: &mut Vec<u8>) -> Result<(), ReadFailure> {
        buf.clear();
        buf.resize(RECORD_BUFFER, 0);
        loop {
            match self.file.read_at(buf, 0) {
                Ok(read) => {
                    buf.truncate(read);
                    return Ok(());
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    buf.clear();
                    return Err(error.into());
                }
            }
        }
    }

    /// Reads a whole multi-record file (maps, children, fdinfo, net tables): /proc hands
    /// these out a page at a time, so read until a read returns nothing.
    pub fn read_all(&self, buf: &mut Vec<u8>) -> Result<(), ReadFailure> {
        buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            match self.file.read_at(&mut chunk, buf.len() as u64) {
                Ok(0) => return Ok(()),
                Ok(read) => buf.extend_from_slice(&chunk[..read]),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Reads `out.len()` bytes at `offset` (for /proc/PID/mem).
    pub fn read_exact_at(&self, out: &mut [u8], offset: u64) -> Result<(), ReadFailure> {
        self.file
            .read_exact_at(out, offset)
            .map_err(ReadFailure::from)
    }
}

impl Drop for ProcFile {
    fn drop(&mut self) {
        OPEN_FILES.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsFd for ProcFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Reads a whole /proc file once (open, read to the end, close).
pub fn read_once(path: &Path, buf: &mut Vec<u8>) -> Result<(), ReadFailure> {
    ProcFile::open(path)?.read_all(buf)
}
