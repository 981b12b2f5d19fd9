//! Decides whether a path concadvise was given to write (the report, `--record-samples`) may be written, before anything runs, and writes it without destroying what it was not asked to write.
//!
//! The rules, checked up front so a mistyped path costs nothing:
//! - the path is not empty and does not end with `/` (that names a directory);
//! - an existing path must be a regular file: a device node, a FIFO, a socket or a directory
//!   is refused (`-` is the way to stdout);
//! - a symbolic link is followed: its target must be a regular file (a link to nothing, or a
//!   loop, is refused), and the target is what gets replaced, the link stays;
//! - the directory that will hold the file must allow creating files in it (`faccessat` with
//!   W_OK|X_OK: a read-only mount or a directory of another user is refused);
//! - an existing file must be writable by concadvise, and one it could not give back its owner
//!   and group (another user's file, when not root) is refused.
//!
//! Writing is atomic: a temporary file in the same directory, created only when writing (so
//! nothing sits beside the report while the program runs), given the old file's mode, owner
//! and group, synced, and renamed over the path. Just before the rename the path is looked at
//! again: if something that is not a regular file appeared there during the run (the program
//! made a FIFO, a link...), it is not replaced and the write fails (the report then goes to
//! the fallback, see `report::write`). A stream (the sample recording) goes into an
//! unnamed file (O_TMPFILE) that a killed concadvise leaves nowhere, linked into place at the
//! end; on a file system without O_TMPFILE it falls back to a named temporary file.

use std::ffi::OsString;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, AT_FDCWD};
use nix::unistd::{faccessat, fchown, getgroups, linkat, AccessFlags, Gid, Uid};

use crate::error::io_message as plain;
use crate::error::Error;

/// A path proven writable: where it leads (symbolic links resolved) and what is there now.
#[derive(Debug, Clone)]
pub struct OutputPath {
    /// As the user gave it, for messages.
    given: PathBuf,
    /// The file that will be replaced or created: symbolic links resolved, the directory made
    /// absolute (two outputs are the same file when their targets are equal).
    target: PathBuf,
    /// Mode, owner and group of the file already there, to give the new one.
    existing: Option<Existing>,
}

#[derive(Debug, Clone, Copy)]
struct Existing {
    mode: u32,
    uid: u32,
    gid: u32,
}

impl OutputPath {
    /// Checks that `path` may be written (see the module's rules), before anything runs.
    pub fn check(path: &Path) -> Result<OutputPath, Error> {
        let refuse = |reason: String| Error::Report {
            path: path.to_path_buf(),
            reason,
        };
        if path.as_os_str().is_empty() {
            return Err(refuse("the path is empty: give a file name".into()));
        }
        if path.as_os_str().as_bytes().ends_with(b"/") {
            return Err(refuse(
                "it ends with '/', so it names a directory: give a file name".into(),
            ));
        }
        let (target, existing) = resolve_target(path)?;
        let existing = existing.map(|meta| Existing {
            mode: meta.mode() & 0o777,
            uid: meta.uid(),
            gid: meta.gid(),
        });
        let checked = OutputPath {
            given: path.to_path_buf(),
            target,
            existing,
        };
        checked.check_permissions()?;
        Ok(checked)
    }

    /// The directory accepts new files; an existing file is writable and its owner and group
    /// can be given to its replacement.
    fn check_permissions(&self) -> Result<(), Error> {
        let refuse = |reason: String| Error::Report {
            path: self.given.clone(),
            reason,
        };
        let dir = self.dir();
        let creatable = AccessFlags::W_OK | AccessFlags::X_OK;
        if let Err(errno) = faccessat(AT_FDCWD, dir, creatable, nix::fcntl::AtFlags::AT_EACCESS) {
            return Err(refuse(format!(
                "cannot create files in {}: {}",
                dir.display(),
                errno.desc()
            )));
        }
        let Some(existing) = self.existing else {
            return Ok(());
        };
        if let Err(errno) = faccessat(
            AT_FDCWD,
            &self.target,
            AccessFlags::W_OK,
            nix::fcntl::AtFlags::AT_EACCESS,
        ) {
            return Err(refuse(format!(
                "the file is not writable ({}): concadvise does not replace it",
                errno.desc()
            )));
        }
        let euid = Uid::effective();
        if !euid.is_root() {
            let other_owner = existing.uid != euid.as_raw();
            let egid = Gid::effective();
            let other_group = existing.gid != egid.as_raw()
                && !getgroups()
                    .unwrap_or_default()
                    .contains(&Gid::from_raw(existing.gid));
            if other_owner || other_group {
                return Err(refuse(format!(
                    "it belongs to another {} ({}): concadvise replaces a file whole and \
                     could not give the new one that owner; write elsewhere or run as root",
                    if other_owner { "user" } else { "group" },
                    if other_owner {
                        existing.uid
                    } else {
                        existing.gid
                    }
                )));
            }
        }
        Ok(())
    }

    /// As the user gave it.
    pub fn given(&self) -> &Path {
        &self.given
    }

    /// Whether two outputs would write the same file.
    pub fn same_file(&self, other: &OutputPath) -> bool {
        self.target == other.target
    }

    fn dir(&self) -> &Path {
        self.target.parent().unwrap_or(Path::new("/"))
    }

    /// Writes `bytes` to the path atomically: nothing is created before this call.
    pub fn write_atomically(&self, bytes: &[u8]) -> io::Result<()> {
        let mut temp = tempfile::Builder::new()
            .prefix(".concadvise-")
            .suffix(".tmp")
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(self.dir())?;
        self.give_existing_identity(temp.as_file())?;
        temp.write_all(bytes)?;
        temp.as_file().sync_all()?;
        self.still_replaceable()?;
        temp.persist(&self.target).map_err(|e| e.error)?;
        Ok(())
    }

    /// The target is still absent or a regular file (not a link, a device, a FIFO...).
    fn still_replaceable(&self) -> io::Result<()> {
        match std::fs::symlink_metadata(&self.target) {
            Ok(meta) if !meta.is_file() => Err(io::Error::other(format!(
                "{} became {} during the run: not replaced",
                self.target.display(),
                if meta.file_type().is_symlink() {
                    "a symbolic link"
                } else {
                    kind_of(&meta)
                }
            ))),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// An unnamed file in the path's directory to stream into; `Stream::persist` puts it in
    /// place. Where the file system has no unnamed files, a named temporary file instead.
    pub fn stream(&self) -> io::Result<Stream> {
        let unnamed = OpenOptions::new()
            .write(true)
            .mode(0o666)
            .custom_flags(OFlag::O_TMPFILE.bits())
            .open(self.dir());
        let file = match unnamed {
            Ok(file) => StreamFile::Unnamed(file),
            // EOPNOTSUPP, or EISDIR from kernels that predate O_TMPFILE.
            Err(e) if matches!(e.raw_os_error(), Some(95 | 21)) => StreamFile::Named(
                tempfile::Builder::new()
                    .prefix(".concadvise-")
                    .suffix(".tmp")
                    .permissions(std::fs::Permissions::from_mode(0o666))
                    .tempfile_in(self.dir())?,
            ),
            Err(e) => return Err(e),
        };
        self.give_existing_identity(file.as_file())?;
        Ok(Stream {
            path: self.clone(),
            file,
        })
    }

    /// The mode, owner and group of the file being replaced, given to its replacement.
    fn give_existing_identity(&self, file: &File) -> io::Result<()> {
        let Some(existing) = self.existing else {
            return Ok(());
        };
        file.set_permissions(std::fs::Permissions::from_mode(existing.mode))?;
        let now = file.metadata()?;
        if now.uid() != existing.uid || now.gid() != existing.gid {
            fchown(
                file,
                Some(Uid::from_raw(existing.uid)),
                Some(Gid::from_raw(existing.gid)),
            )
            .map_err(io::Error::from)?;
        }
        Ok(())
    }
}

/// A file being streamed into, put in place by `persist`.
pub struct Stream {
    path: OutputPath,
    file: StreamFile,
}

enum StreamFile {
    Unnamed(File),
    Named(tempfile::NamedTempFile),
}

impl StreamFile {
    fn as_file(&self) -> &File {
        match self {
            StreamFile::Unnamed(file) => file,
            StreamFile::Named(temp) => temp.as_file(),
        }
    }
}

impl Stream {
    /// A second handle for the writer.
    pub fn handle(&self) -> io::Result<File> {
        self.file.as_file().try_clone()
    }

    /// Syncs the file and renames it over the path (an unnamed file is first linked under a
    /// temporary name beside it).
    pub fn persist(self) -> io::Result<()> {
        self.file.as_file().sync_all()?;
        self.path.still_replaceable()?;
        match self.file {
            StreamFile::Named(temp) => temp
                .persist(&self.path.target)
                .map(drop)
                .map_err(|e| e.error),
            StreamFile::Unnamed(file) => {
                let proc_link = format!("/proc/self/fd/{}", file.as_raw_fd());
                let dir = self.path.dir();
                for attempt in 0..100u32 {
                    let mut name =
                        OsString::from(format!(".concadvise-{}-{attempt}.tmp", std::process::id()));
                    name = dir.join(name).into_os_string();
                    match linkat(
                        AT_FDCWD,
                        proc_link.as_str(),
                        AT_FDCWD,
                        Path::new(&name),
                        nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
                    ) {
                        Ok(()) => {
                            return std::fs::rename(&name, &self.path.target).inspect_err(|_| {
                                let _ = std::fs::remove_file(&name);
                            })
                        }
                        Err(nix::errno::Errno::EEXIST) => continue,
                        Err(errno) => return Err(errno.into()),
                    }
                }
                Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "no free temporary name in the directory",
                ))
            }
        }
    }
}

/// The file `path` names, made absolute (a symbolic link to a regular file followed), and its
/// metadata when it exists; refused when it is not a regular file or cannot be looked at.
fn resolve_target(path: &Path) -> Result<(PathBuf, Option<Metadata>), Error> {
    let refuse = |reason: String| Error::Report {
        path: path.to_path_buf(),
        reason,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => match std::fs::metadata(path) {
            Ok(followed) if followed.is_file() => {
                let resolved = std::fs::canonicalize(path).map_err(|e| {
                    refuse(format!("cannot resolve the symbolic link: {}", plain(&e)))
                })?;
                Ok((resolved, Some(followed)))
            }
            Ok(followed) => Err(refuse(format!(
                "it is a symbolic link to {}: concadvise writes only regular files \
                     (use - for stdout)",
                kind_of(&followed)
            ))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(refuse(
                "it is a symbolic link to a file that does not exist: give the file's \
                     own path"
                    .into(),
            )),
            Err(e) => Err(refuse(format!(
                "cannot follow the symbolic link: {}",
                plain(&e)
            ))),
        },
        Ok(meta) if meta.is_file() => Ok((absolute_in_dir(path)?, Some(meta))),
        Ok(meta) => Err(refuse(format!(
            "it is {}: concadvise writes only regular files{}",
            kind_of(&meta),
            if meta.is_dir() {
                "; give a file name"
            } else {
                " (use - for stdout)"
            }
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((absolute_in_dir(path)?, None)),
        Err(e) => Err(refuse(plain(&e))),
    }
}

/// The path with its directory made absolute and resolved (the file itself may not exist).
fn absolute_in_dir(path: &Path) -> Result<PathBuf, Error> {
    let refuse = |reason: String| Error::Report {
        path: path.to_path_buf(),
        reason,
    };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| refuse("it names no file: give a file name".into()))?;
    match std::fs::canonicalize(dir) {
        Ok(resolved) if resolved.is_dir() => Ok(resolved.join(name)),
        Ok(_) => Err(refuse(format!("{} is not a directory", dir.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(refuse(format!(
            "directory {} does not exist",
            dir.display()
        ))),
        Err(e) => Err(refuse(format!("{}: {}", dir.display(), plain(&e)))),
    }
}

/// "a directory", "a character device"...: what a non-regular file is, in words.
fn kind_of(meta: &Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(path: &Path) -> String {
        match OutputPath::check(path) {
            Err(Error::Report { reason, .. }) => reason,
            other => panic!("{path:?} accepted: {other:?}"),
        }
    }

    #[test]
    fn empty_paths_directories_and_trailing_slashes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(reason(Path::new("")).contains("empty"));
        assert!(reason(&dir.path().join("new/")).contains("ends with '/'"));
        assert!(reason(dir.path()).contains("a directory"));
        assert!(reason(&dir.path().join("no/such/r.toml")).contains("does not exist"));
    }

    #[test]
    fn a_symlink_is_followed_to_its_target_and_a_dangling_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.toml");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let checked = OutputPath::check(&link).unwrap();
        checked.write_atomically(b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        assert!(checked.same_file(&OutputPath::check(&real).unwrap()));
        let dangling = dir.path().join("dangling.toml");
        std::os::unix::fs::symlink(dir.path().join("nothing"), &dangling).unwrap();
        assert!(reason(&dangling).contains("does not exist"));
        let looped = dir.path().join("loop.toml");
        std::os::unix::fs::symlink(&looped, &looped).unwrap();
        assert!(reason(&looped).contains("symbolic link"));
    }

    #[test]
    fn a_replaced_file_keeps_its_mode_and_a_stream_appears_only_when_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.toml");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        OutputPath::check(&path)
            .unwrap()
            .write_atomically(b"new")
            .unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        let streamed = dir.path().join("s.jsonl");
        let stream = OutputPath::check(&streamed).unwrap().stream().unwrap();
        stream.handle().unwrap().write_all(b"line\n").unwrap();
        let names = || std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(names(), 1, "nothing visible while streaming");
        stream.persist().unwrap();
        assert_eq!(std::fs::read_to_string(&streamed).unwrap(), "line\n");
        assert_eq!(names(), 2);
    }
}
