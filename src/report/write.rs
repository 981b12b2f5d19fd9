//! Where a report goes: checked writable before the program starts, then written atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::error::Error;

pub enum Destination {
    Stdout,
    /// A temporary file beside the final path, created up front (proving the directory is
    /// writable) and renamed over the path once the report is complete.
    File {
        path: PathBuf,
        temp: NamedTempFile,
    },
}

impl Destination {
    /// Checks that a report can be written to `path` ("-" is stdout) before anything runs.
    pub fn prepare(path: &str) -> Result<Destination, Error> {
        if path == "-" {
            return Ok(Destination::Stdout);
        }
        let target = PathBuf::from(path);
        if target.is_dir() {
            return Err(Error::Report {
                path: target,
                reason: "it is a directory; give a file name".into(),
            });
        }
        let dir = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(Error::Report {
                path: target,
                reason: format!("directory {} does not exist", dir.display()),
            });
        }
        let temp = tempfile::Builder::new()
            .prefix(".concadvise-")
            .suffix(".tmp")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .tempfile_in(&dir)
            .map_err(|e| Error::Report {
                path: target.clone(),
                reason: format!("cannot create a file in {}: {e}", dir.display()),
            })?;
        Ok(Destination::File { path: target, temp })
    }

    /// A second handle on the temporary file, for a writer that streams into it (the sample
    /// recording); `None` for stdout.
    pub fn file_handle(&self) -> Option<std::io::Result<std::fs::File>> {
        match self {
            Destination::Stdout => None,
            Destination::File { temp, .. } => Some(temp.as_file().try_clone()),
        }
    }

    pub fn path(&self) -> Option<&Path> {
        match self {
            Destination::Stdout => None,
            Destination::File { path, .. } => Some(path),
        }
    }

    /// Writes the bytes and, for a file, renames it into place.
    pub fn commit(self, bytes: &[u8]) -> Result<(), Error> {
        match self {
            Destination::Stdout => {
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(bytes)
                    .and_then(|()| stdout.flush())
                    .or_else(ignore_broken_pipe)
                    .map_err(|e| Error::Report {
                        path: PathBuf::from("-"),
                        reason: e.to_string(),
                    })
            }
            Destination::File { path, mut temp } => {
                let failed = |e: std::io::Error| Error::Report {
                    path: path.clone(),
                    reason: e.to_string(),
                };
                temp.write_all(bytes).map_err(failed)?;
                temp.as_file().sync_all().map_err(failed)?;
                temp.persist(&path).map_err(|e| failed(e.error))?;
                Ok(())
            }
        }
    }
}

/// A reader that closed the pipe (`| head`) is not an error.
fn ignore_broken_pipe(error: std::io::Error) -> std::io::Result<()> {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(error)
    }
}
