//! Where a report goes: stdout or a path checked before the program starts, and where it goes when that write fails at the end (a run's numbers are never lost).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::output_path::OutputPath;

pub enum Destination {
    Stdout,
    /// A path proven writable; the file is created only when the report is written.
    File(OutputPath),
}

impl Destination {
    /// Checks that a report can be written to `path` ("-" is stdout) before anything runs.
    pub fn prepare(path: &Path) -> Result<Destination, Error> {
        if path.as_os_str() == "-" {
            return Ok(Destination::Stdout);
        }
        OutputPath::check(path).map(Destination::File)
    }

    pub fn path(&self) -> Option<&Path> {
        match self {
            Destination::Stdout => None,
            Destination::File(path) => Some(path.given()),
        }
    }

    /// Writes the bytes: to stdout, or atomically to the file.
    pub fn commit(&self, bytes: &[u8]) -> Result<(), Error> {
        match self {
            Destination::Stdout => to_stdout(bytes),
            Destination::File(path) => path.write_atomically(bytes).map_err(|e| Error::Report {
                path: path.given().to_path_buf(),
                reason: e.to_string(),
            }),
        }
    }
}

/// Writes to stdout; a reader that closed the pipe (`| head`) is not an error.
pub fn to_stdout(bytes: &[u8]) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Stdout(e.to_string())),
        _ => Ok(()),
    }
}

/// Saves a report that could not be written where asked: in `$TMPDIR` (else /tmp), else in
/// the user's cache directory (~/.cache/concadvise), as a new file only its owner may read
/// (command lines can hold secrets). Returns where it went, or why neither place would take it.
pub fn save_fallback(bytes: &[u8], extension: &str) -> Result<PathBuf, String> {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "");
    let name = format!(
        "concadvise-report-{stamp}-{}.{extension}",
        std::process::id()
    );
    let mut failures = Vec::new();
    let cache = dirs::cache_dir().map(|dir| dir.join("concadvise"));
    for dir in std::iter::once(std::env::temp_dir()).chain(cache) {
        let path = dir.join(&name);
        let created = std::fs::create_dir_all(&dir).and_then(|()| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
        });
        let written = created.and_then(|mut file| {
            // Created by this call: a failed write removes only what it made.
            file.write_all(bytes)
                .and_then(|()| file.sync_all())
                .inspect_err(|_| {
                    let _ = std::fs::remove_file(&path);
                })
        });
        match written {
            Ok(()) => return Ok(path),
            Err(e) => failures.push(format!("{}: {e}", dir.display())),
        }
    }
    Err(failures.join("; "))
}
