//! What CPython a process runs: its version from the executable's name, a mapped libpython, or a
//! virtual environment's pyvenv.cfg, and whether the Python stack reader supports that version.
//!
//! /proc/PID/exe and /proc/PID/maps need ptrace read access; without it only the command line
//! (always readable) is left, which names the interpreter but rarely its version.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Serialize;

use crate::sampler::proc_file::{read_once, ReadFailure};
use crate::sampler::tree_reader::{mapped_libraries, read_command_line};

/// A CPython version as far as it could be told (the patch level only when the interpreter
/// itself or a pyvenv.cfg said it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PythonVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: Option<u32>,
    /// A build without the GIL (python3.13t, libpython3.14t.so).
    pub free_threaded: bool,
}

impl fmt::Display for PythonVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if let Some(patch) = self.patch {
            write!(f, ".{patch}")?;
        }
        if self.free_threaded {
            write!(f, "t")?;
        }
        Ok(())
    }
}

/// The stack reader concadvise builds on: the py-spy crate, 0.4.3 (the newest 0.4 release).
pub const STACK_READER: &str = "py-spy 0.4";
/// What it reads, for messages (its `python_bindings`: v2_7_15, v3_3_7 ... v3_15_0).
pub const STACK_READER_RANGE: &str = "CPython 2.3-2.7 and 3.3-3.15 with the GIL";

/// Whether the py-spy 0.4 stack reader reads this version. py-spy 0.4.3 dispatches on the
/// version to one memory layout per minor release, 2.3-2.7 and 3.3-3.15
/// (`PythonSpy::get_stack_traces`); free-threaded builds are not supported yet
/// (benfred/py-spy issue 711 is open). 0.4.2 stopped at 3.14, 0.4.0 and 0.4.1 at 3.13:
/// cargo resolves "0.4" to 0.4.3.
pub fn stack_reader_supports(version: &PythonVersion) -> bool {
    !version.free_threaded && matches!((version.major, version.minor), (2, 3..=7) | (3, 3..=15))
}

/// The interpreter family: py-spy reads CPython only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpreter {
    CPython,
    PyPy,
}

/// What a process's interpreter is, and where that was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PythonProcess {
    pub interpreter: Interpreter,
    pub version: Option<PythonVersion>,
    /// What told it: "/usr/bin/python3.11", "libpython3.12.so.1.0, mapped",
    /// "/venv/pyvenv.cfg", or "python3, its command line".
    pub seen_in: String,
    /// Whether /proc/PID/exe and maps were readable (they need ptrace read access).
    pub inspected: bool,
}

/// "python3.11" -> 3.11, "python3.13t" -> 3.13 free-threaded, "python2.7", "python3.11d"
/// (debug), "python3.6m" (pymalloc); "python3" and "python" have no minor version: None.
pub fn version_from_executable_name(name: &str) -> Option<PythonVersion> {
    version_after(name.strip_prefix("python")?)
}

/// "libpython3.11.so.1.0" -> 3.11, "libpython3.14t.so" -> 3.14 free-threaded.
pub fn version_from_library_name(name: &str) -> Option<PythonVersion> {
    let rest = name.strip_prefix("libpython")?;
    version_after(rest.split(".so").next()?)
}

/// "3.11", "3.13t", "3.6m", "3.11d": a major.minor version and the ABI flags CPython puts
/// after it (d debug, m pymalloc, t free-threaded); nothing else may follow.
fn version_after(text: &str) -> Option<PythonVersion> {
    let (major, rest) = text.split_once('.')?;
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (minor, flags) = rest.split_at(digits_end);
    if !flags.chars().all(|c| matches!(c, 'd' | 'm' | 't')) {
        return None;
    }
    Some(PythonVersion {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        patch: None,
        free_threaded: flags.contains('t'),
    })
}

/// The version a virtual environment's pyvenv.cfg records: `version = 3.11.7` (venv) or
/// `version_info = 3.12.1.final.0` (virtualenv, uv). A free-threaded base interpreter is
/// recorded in `home` or `executable` (a python3.13t).
pub fn version_from_pyvenv_cfg(text: &str) -> Option<PythonVersion> {
    let value = |wanted: &str| {
        text.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == wanted).then(|| value.trim().to_string())
        })
    };
    let recorded = value("version").or_else(|| value("version_info"))?;
    let mut parts = recorded.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next().and_then(|p| p.parse().ok());
    let free_threaded = value("executable")
        .or_else(|| value("base-executable"))
        .and_then(|exe| version_from_executable_name(base_name(&exe)))
        .is_some_and(|v| v.free_threaded);
    Some(PythonVersion {
        major,
        minor,
        patch,
        free_threaded,
    })
}

/// The interpreter an executable's file name names, if any.
/// "python", "python3", "python3.11", "python3.13t": CPython; "pypy3.10": PyPy.
fn interpreter_named(name: &str) -> Option<Interpreter> {
    if name.starts_with("pypy") {
        return Some(Interpreter::PyPy);
    }
    let rest = name.strip_prefix("python")?;
    (rest.chars().all(|c| c.is_ascii_digit()) || version_after(rest).is_some())
        .then_some(Interpreter::CPython)
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The pyvenv.cfg of the environment an interpreter at `exe` belongs to (ENV/bin/python ->
/// ENV/pyvenv.cfg), read if it exists.
fn pyvenv_cfg_of(exe: &Path) -> Option<(PathBuf, String)> {
    let cfg = exe.parent()?.parent()?.join("pyvenv.cfg");
    let text = std::fs::read_to_string(&cfg).ok()?;
    Some((cfg, text))
}

/// The Python interpreter process `pid` runs, if it runs one: from its executable (or, without
/// ptrace access, its command line), a libpython it maps (embedded interpreters such as
/// uwsgi), or its virtual environment. `Err(Gone)` when there is no such process.
pub fn of_process(pid: i32) -> Result<Option<PythonProcess>, ReadFailure> {
    let dir = PathBuf::from(format!("/proc/{pid}"));
    let mut buf = Vec::new();
    let command = read_command_line(pid, &mut buf).unwrap_or_default();
    let exe = match std::fs::read_link(dir.join("exe")) {
        Ok(path) => Some(path),
        Err(error) => match ReadFailure::from(error) {
            ReadFailure::Gone if !dir.exists() => return Err(ReadFailure::Gone),
            _ => None,
        },
    };
    let libraries = match read_once(&dir.join("maps"), &mut buf) {
        Ok(()) => Some(mapped_libraries(&String::from_utf8_lossy(&buf))),
        Err(ReadFailure::Gone) if !dir.exists() => return Err(ReadFailure::Gone),
        Err(_) => None,
    };
    Ok(identify(
        exe.as_deref(),
        libraries.as_deref(),
        command.first().map(String::as_str),
    ))
}

/// The interpreter from what could be read of a process: its executable path, its mapped
/// libraries' file names, its argv[0]. Pure but for reading a pyvenv.cfg beside the
/// executable.
pub fn identify(
    exe: Option<&Path>,
    libraries: Option<&[String]>,
    argv0: Option<&str>,
) -> Option<PythonProcess> {
    let inspected = exe.is_some() && libraries.is_some();
    let library = libraries
        .unwrap_or_default()
        .iter()
        .find(|lib| lib.starts_with("libpython") || lib.starts_with("libpypy"));
    let exe_text = exe.map(|p| p.to_string_lossy().into_owned());
    // The executable, else (without ptrace access) argv[0]: the first that names an
    // interpreter.
    let named = [(exe_text.as_deref(), false), (argv0, true)]
        .into_iter()
        .find_map(|(path, from_command_line)| {
            let path = path?;
            Some((path, interpreter_named(base_name(path))?, from_command_line))
        });
    let interpreter = match (named, library) {
        (Some((_, interpreter, _)), _) => interpreter,
        (None, Some(lib)) if lib.starts_with("libpypy") => Interpreter::PyPy,
        (None, Some(_)) => Interpreter::CPython,
        (None, None) => return None,
    };
    let found = |version: Option<PythonVersion>, seen_in: String| PythonProcess {
        interpreter,
        version,
        seen_in,
        inspected,
    };
    if let Some(version) = library.and_then(|lib| version_from_library_name(lib)) {
        return Some(found(Some(version), format!("{}, mapped", library?)));
    }
    if let Some((path, _, from_command_line)) = named {
        let seen_in = if from_command_line {
            format!("{path}, its command line")
        } else {
            path.to_string()
        };
        if let Some(version) = version_from_executable_name(base_name(path)) {
            return Some(found(Some(version), seen_in));
        }
        if let Some((cfg, text)) = pyvenv_cfg_of(Path::new(path)) {
            if let Some(version) = version_from_pyvenv_cfg(&text) {
                return Some(found(Some(version), cfg.display().to_string()));
            }
        }
        return Some(found(None, seen_in));
    }
    Some(found(None, format!("{}, mapped", library?)))
}

/// The first `python3` on PATH that this user may execute (as execvp looks for it).
pub fn python3_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("python3"))
        .find(|candidate| {
            candidate.is_file()
                && nix::unistd::access(candidate.as_path(), nix::unistd::AccessFlags::X_OK).is_ok()
        })
}

/// What an interpreter says about itself when asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probed {
    pub interpreter: Option<Interpreter>,
    pub version: PythonVersion,
    /// `sys.executable`: the real interpreter behind a shim or a virtual environment's link.
    pub executable: String,
}

const PROBE: &str = "import sys, sysconfig; print(sys.implementation.name); \
                     print(*sys.version_info[:3]); \
                     print(sysconfig.get_config_var('Py_GIL_DISABLED') or 0); \
                     print(sys.executable)";

/// How long an interpreter may take to answer (a pyenv shim starting for the first time is slow).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `python -c PROBE` (killed after PROBE_TIMEOUT) and parses its four lines.
pub fn probe(python: &Path) -> Result<Probed, String> {
    use wait_timeout::ChildExt;
    let mut child = Command::new(python)
        .args(["-I", "-c", PROBE])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    let status = match child.wait_timeout(PROBE_TIMEOUT) {
        Ok(Some(status)) => status,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "it did not answer within {} s",
                PROBE_TIMEOUT.as_secs()
            ));
        }
        Err(e) => return Err(format!("waiting for it failed: {e}")),
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        use std::io::Read;
        let _ = stdout.read_to_string(&mut out);
    }
    if !status.success() {
        return Err(format!("it failed ({status})"));
    }
    parse_probe(&out).ok_or_else(|| format!("unexpected answer {out:?}"))
}

fn parse_probe(out: &str) -> Option<Probed> {
    let mut lines = out.lines();
    let interpreter = match lines.next()?.trim() {
        "cpython" => Some(Interpreter::CPython),
        "pypy" => Some(Interpreter::PyPy),
        _ => None,
    };
    let mut numbers = lines.next()?.split_whitespace().map(str::parse::<u32>);
    let (major, minor, patch) = (
        numbers.next()?.ok()?,
        numbers.next()?.ok()?,
        numbers.next()?.ok()?,
    );
    let free_threaded = lines.next()?.trim() == "1";
    let executable = lines.next()?.trim().to_string();
    Some(Probed {
        interpreter,
        version: PythonVersion {
            major,
            minor,
            patch: Some(patch),
            free_threaded,
        },
        executable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32, minor: u32, free_threaded: bool) -> PythonVersion {
        PythonVersion {
            major,
            minor,
            patch: None,
            free_threaded,
        }
    }

    #[test]
    fn versions_from_executable_and_library_names() {
        assert_eq!(
            version_from_executable_name("python3.11"),
            Some(v(3, 11, false))
        );
        assert_eq!(
            version_from_executable_name("python3.13t"),
            Some(v(3, 13, true))
        );
        assert_eq!(
            version_from_executable_name("python3.6m"),
            Some(v(3, 6, false))
        );
        assert_eq!(
            version_from_executable_name("python2.7"),
            Some(v(2, 7, false))
        );
        assert_eq!(version_from_executable_name("python3"), None);
        assert_eq!(version_from_executable_name("python3.11-config"), None);
        assert_eq!(version_from_executable_name("pythonw"), None);
        assert_eq!(
            version_from_library_name("libpython3.12.so.1.0"),
            Some(v(3, 12, false))
        );
        assert_eq!(
            version_from_library_name("libpython3.14t.so.1.0"),
            Some(v(3, 14, true))
        );
        assert_eq!(version_from_library_name("libpthread.so.0"), None);
    }

    #[test]
    fn versions_from_pyvenv_cfg_of_venv_and_uv() {
        let venv = "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n\
                    executable = /usr/bin/python3.11\ncommand = /usr/bin/python3 -m venv /v\n";
        let version = version_from_pyvenv_cfg(venv).unwrap();
        assert_eq!(
            (version.major, version.minor, version.patch),
            (3, 11, Some(2))
        );
        assert!(!version.free_threaded);
        let uv = "home = /opt/py/bin\nimplementation = CPython\nuv = 0.5.1\n\
                  version_info = 3.13.1.final.0\nexecutable = /opt/py/bin/python3.13t\n";
        let version = version_from_pyvenv_cfg(uv).unwrap();
        assert_eq!(version.to_string(), "3.13.1t");
        assert_eq!(version_from_pyvenv_cfg("home = /usr/bin\n"), None);
    }

    #[test]
    fn the_stack_reader_range_is_py_spy_0_4_3s() {
        assert!(stack_reader_supports(&v(3, 11, false)));
        assert!(stack_reader_supports(&v(3, 3, false)));
        assert!(stack_reader_supports(&v(3, 15, false)));
        assert!(stack_reader_supports(&v(2, 7, false)));
        assert!(!stack_reader_supports(&v(3, 16, false)));
        assert!(!stack_reader_supports(&v(3, 2, false)));
        assert!(!stack_reader_supports(&v(2, 2, false)));
        assert!(!stack_reader_supports(&v(3, 13, true)), "free-threaded");
    }

    #[test]
    fn interpreters_from_what_could_be_read() {
        let libs = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        // The executable names the version.
        let found = identify(
            Some(Path::new("/usr/bin/python3.11")),
            Some(&libs(&["libc.so.6"])),
            Some("python3"),
        )
        .unwrap();
        assert_eq!(found.interpreter, Interpreter::CPython);
        assert_eq!(found.version, Some(v(3, 11, false)));
        assert!(found.inspected);
        // An embedded interpreter: the library tells.
        let found = identify(
            Some(Path::new("/usr/bin/uwsgi")),
            Some(&libs(&["libc.so.6", "libpython3.12.so.1.0"])),
            Some("uwsgi"),
        )
        .unwrap();
        assert_eq!(found.version, Some(v(3, 12, false)));
        assert_eq!(found.seen_in, "libpython3.12.so.1.0, mapped");
        // Without ptrace access: the command line names CPython but not its version.
        let found = identify(None, None, Some("python3")).unwrap();
        assert_eq!(found.interpreter, Interpreter::CPython);
        assert_eq!(found.seen_in, "python3, its command line");
        assert_eq!(found.version, None);
        assert!(!found.inspected);
        // PyPy is recognised, not taken for CPython.
        let found = identify(Some(Path::new("/opt/pypy/bin/pypy3.10")), Some(&[]), None).unwrap();
        assert_eq!(found.interpreter, Interpreter::PyPy);
        // Not Python at all.
        assert_eq!(
            identify(
                Some(Path::new("/bin/sleep")),
                Some(&libs(&["libc.so.6"])),
                None
            ),
            None
        );
    }

    #[test]
    fn a_copied_venv_interpreter_is_told_by_its_pyvenv_cfg() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::write(
            dir.path().join("pyvenv.cfg"),
            "home = /usr/bin\nversion = 3.12.4\n",
        )
        .unwrap();
        let exe = dir.path().join("bin/python");
        let found = identify(Some(&exe), Some(&[]), None).unwrap();
        assert_eq!(found.version.unwrap().to_string(), "3.12.4");
        assert!(found.seen_in.ends_with("pyvenv.cfg"));
    }

    #[test]
    fn probe_answers_parse() {
        let probed =
            parse_probe("cpython\n3 11 7\n0\n/root/.pyenv/versions/3.11.7/bin/python3\n").unwrap();
        assert_eq!(probed.version.to_string(), "3.11.7");
        assert_eq!(probed.interpreter, Some(Interpreter::CPython));
        let probed = parse_probe("cpython\n3 13 1\n1\n/opt/py/bin/python3.13t\n").unwrap();
        assert!(probed.version.free_threaded);
        assert_eq!(parse_probe("cpython\n3 x\n"), None);
    }
}
