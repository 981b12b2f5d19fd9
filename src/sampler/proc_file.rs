//! One /proc file read again and again: a held descriptor read with pread at offset 0.
//!
//! Opening a /proc file costs several syscalls; a held descriptor returns fresh content in one.
//! A held descriptor of a thread that exited fails with ESRCH, so a reused PID never yields
//! another task's numbers.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Why a /proc read failed, in the terms the sampler acts on.
#[derive(Debug)]
pub enum ReadFailure {
    /// The task or process is gone (exited, or reaped between two reads).
    Gone,
    /// No permission (ptrace access mode is needed for syscall, wchan, fd/, mem).
    Denied,
    Other(io::Error),
}

impl From<io::Error> for ReadFailure {
    fn from(error: io::Error) -> Self {
        const ESRCH: i32 = 3;
        match error.kind() {
            io::ErrorKind::NotFound => ReadFailure::Gone,
            io::ErrorKind::PermissionDenied => ReadFailure::Denied,
            _ if error.raw_os_error() == Some(ESRCH) => ReadFailure::Gone,
            _ => ReadFailure::Other(error),
        }
    }
}

pub struct ProcFile {
    file: File,
}

impl ProcFile {
    pub fn open(path: &Path) -> Result<Self, ReadFailure> {
        Ok(ProcFile {
            file: File::open(path)?,
        })
    }

    /// Reads the whole file into `buf` (cleared first) with pread at offset 0.
    pub fn read_into(&self, buf: &mut Vec<u8>) -> Result<(), ReadFailure> {
        buf.clear();
        if buf.capacity() < 512 {
            buf.reserve(512);
        }
        loop {
            let len = buf.len();
            let spare = buf.capacity() - len;
            buf.resize(len + spare, 0);
            let read = match self.file.read_at(&mut buf[len..], len as u64) {
                Ok(read) => read,
                Err(error) => {
                    buf.truncate(len);
                    if error.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(error.into());
                }
            };
            buf.truncate(len + read);
            if read == 0 || buf.len() < buf.capacity() {
                return Ok(());
            }
            buf.reserve(buf.capacity());
        }
    }

    /// Reads `out.len()` bytes at `offset` (for /proc/PID/mem).
    pub fn read_exact_at(&self, out: &mut [u8], offset: u64) -> Result<(), ReadFailure> {
        self.file
            .read_exact_at(out, offset)
            .map_err(ReadFailure::from)
    }
}

/// Reads a small /proc file once (open, read, close).
pub fn read_once(path: &Path, buf: &mut Vec<u8>) -> Result<(), ReadFailure> {
    ProcFile::open(path)?.read_into(buf)
}
