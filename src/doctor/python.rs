//! Check "python": for a target whose tree runs Python, whether the stack reader supports its
//! interpreter (version, build, and the ptrace access reading another process's memory needs);
//! without a PID, the same for the `python3` on PATH.

use std::path::Path;

use super::{Check, State, Target};
use crate::target::attach::wait_sources_readable;
use crate::target::python::{
    of_process, probe, python3_on_path, stack_reader_supports, version_from_executable_name,
    Interpreter, Probed, PythonProcess, PythonVersion, STACK_READER, STACK_READER_RANGE,
};

pub const NAME: &str = "python";

/// With a target: one line when its tree runs Python, none otherwise.
pub fn check(target: Option<&Target>) -> Option<Check> {
    match target {
        Some(target) => {
            let found: Vec<(i32, PythonProcess, bool)> = target
                .tree
                .iter()
                .filter_map(|&pid| {
                    let python = of_process(pid).ok()??;
                    Some((pid, python, wait_sources_readable(pid)))
                })
                .collect();
            tree_verdict(&found)
        }
        None => Some(on_path_verdict(python3_on_path().as_deref())),
    }
}

/// One verdict per Python process: the worst is shown, with how many more there are.
pub fn tree_verdict(found: &[(i32, PythonProcess, bool)]) -> Option<Check> {
    let mut checks: Vec<Check> = found
        .iter()
        .map(|(pid, python, readable)| process_verdict(*pid, python, *readable))
        .collect();
    checks.sort_by_key(|check| std::cmp::Reverse(check.state));
    let more = checks.len().saturating_sub(1);
    let mut worst = checks.into_iter().next()?;
    if more > 0 {
        worst.found.push_str(&format!(
            " ({more} more Python process{} in its tree)",
            if more == 1 { "" } else { "es" }
        ));
    }
    Some(worst)
}

fn unsupported(what: String, version: &PythonVersion) -> Check {
    let why = if version.free_threaded {
        "free-threaded builds are not supported yet"
    } else {
        "this version is not"
    };
    Check::not_ok(
        NAME,
        State::Limited,
        format!(
            "{what}: the stack reader ({STACK_READER}) reads {STACK_READER_RANGE}; {why}, so its \
             Python stacks (which code the time went to) cannot be read"
        ),
        "measure it on a supported CPython (a build with the GIL) for code locations; the rest \
         of the measurement is unaffected"
            .to_string(),
    )
}

/// `readable`: the process's ptrace-protected files could be read (reading its memory needs
/// the same access).
pub fn process_verdict(pid: i32, python: &PythonProcess, readable: bool) -> Check {
    let what = match &python.version {
        Some(version) => format!("PID {pid} runs CPython {version} (from {})", python.seen_in),
        None => format!("PID {pid} runs CPython (from {})", python.seen_in),
    };
    if python.interpreter == Interpreter::PyPy {
        return Check::not_ok(
            NAME,
            State::Limited,
            format!(
                "PID {pid} runs PyPy (from {}): the stack reader ({STACK_READER}) reads CPython only, \
                 so its Python stacks cannot be read",
                python.seen_in
            ),
            "nothing to do for PyPy; the rest of the measurement is unaffected".to_string(),
        );
    }
    if !readable || !python.inspected {
        return Check::not_ok(
            NAME,
            State::Limited,
            format!(
                "{what}: reading its stacks (and its executable and maps, which tell the version) \
                 needs ptrace access, which concadvise lacks for it"
            ),
            "see the ptrace line".to_string(),
        );
    }
    match &python.version {
        Some(version) if stack_reader_supports(version) => Check::ok(
            NAME,
            format!("{what}: a version the stack reader ({STACK_READER}) supports"),
        ),
        Some(version) => unsupported(what, version),
        None => Check::not_ok(
            NAME,
            State::Limited,
            format!(
                "{what}: its version could not be told from its executable, libraries or \
                 pyvenv.cfg, so whether its stacks can be read is unknown"
            ),
            "run it through an interpreter named with its version (python3.12), or tell the \
             version in an issue"
                .to_string(),
        ),
    }
}

/// What `python3` says it is; when it will not answer, what its real file's name says.
fn ask(python3: &Path) -> Result<Probed, String> {
    probe(python3).or_else(|why| {
        let real = std::fs::canonicalize(python3).unwrap_or_else(|_| python3.to_path_buf());
        let name = real.file_name().map(|n| n.to_string_lossy().into_owned());
        let version = name
            .as_deref()
            .and_then(version_from_executable_name)
            .ok_or(why)?;
        Ok(Probed {
            interpreter: Some(Interpreter::CPython),
            version,
            executable: real.display().to_string(),
        })
    })
}

/// Without a PID: the `python3` a program started from here would run.
pub fn on_path_verdict(python3: Option<&Path>) -> Check {
    let Some(python3) = python3 else {
        return Check::ok(
            NAME,
            "no python3 on PATH (Python stacks matter only for Python programs)".to_string(),
        );
    };
    let probed = match ask(python3) {
        Ok(probed) => probed,
        Err(why) => {
            return Check::not_ok(
                NAME,
                State::Limited,
                format!(
                    "{} is on PATH, but asking it its version failed ({why})",
                    python3.display()
                ),
                format!("check that `{} --version` works", python3.display()),
            )
        }
    };
    // A shim or a link names the real interpreter only when asked.
    let real = if Path::new(&probed.executable) == python3 {
        String::new()
    } else {
        format!(", {}", probed.executable)
    };
    let at = format!("python3 on PATH ({}{real})", python3.display());
    if probed.interpreter == Some(Interpreter::PyPy) {
        return Check::not_ok(
            NAME,
            State::Limited,
            format!("{at} is PyPy: the stack reader ({STACK_READER}) reads CPython only"),
            "nothing to do for PyPy; the rest of the measurement is unaffected".to_string(),
        );
    }
    let what = format!("{at} is CPython {}", probed.version);
    if stack_reader_supports(&probed.version) {
        Check::ok(
            NAME,
            format!("{what}: a version the stack reader ({STACK_READER}) supports"),
        )
    } else {
        unsupported(what, &probed.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpython(version: Option<PythonVersion>, inspected: bool) -> PythonProcess {
        PythonProcess {
            interpreter: Interpreter::CPython,
            version,
            seen_in: "/usr/bin/python3.11".into(),
            inspected,
        }
    }

    fn version(minor: u32, free_threaded: bool) -> Option<PythonVersion> {
        Some(PythonVersion {
            major: 3,
            minor,
            patch: None,
            free_threaded,
        })
    }

    #[test]
    fn supported_unsupported_and_unreadable() {
        let check = process_verdict(5, &cpython(version(11, false), true), true);
        assert_eq!(check.state, State::Ok);
        assert!(check.found.contains("CPython 3.11"), "{check:?}");
        let check = process_verdict(5, &cpython(version(16, false), true), true);
        assert_eq!(check.state, State::Limited);
        assert!(check.found.contains("3.3-3.15"));
        let check = process_verdict(5, &cpython(version(13, true), true), true);
        assert!(check
            .found
            .contains("free-threaded builds are not supported"));
        let check = process_verdict(5, &cpython(None, false), false);
        assert_eq!(check.state, State::Limited);
        assert!(check.found.contains("needs ptrace access"));
    }

    #[test]
    fn the_worst_of_a_tree_is_shown() {
        let found = vec![
            (1, cpython(version(11, false), true), true),
            (2, cpython(version(16, false), true), true),
        ];
        let check = tree_verdict(&found).unwrap();
        assert_eq!(check.state, State::Limited);
        assert!(check.found.starts_with("PID 2"));
        assert!(check.found.ends_with("(1 more Python process in its tree)"));
        assert_eq!(tree_verdict(&[]), None);
    }

    #[test]
    fn no_python3_on_path_is_not_a_limit() {
        assert_eq!(on_path_verdict(None).state, State::Ok);
    }
}
