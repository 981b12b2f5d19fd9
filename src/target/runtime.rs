//! Names the runtime a process runs on (CPython, Node.js, JVM, Go, native) by the profiles' detection rules.

use serde::{Deserialize, Serialize};

use crate::profile::{Profile, ProfileSet, FALLBACK};
use crate::sampler::observation::ProcessInfo;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runtime {
    /// The profile's name: python, node, jvm, go, native, or one a user added.
    pub name: String,
    /// A build of a GIL runtime without its GIL (python3.13t).
    pub free_threaded: bool,
}

impl Runtime {
    pub fn named(name: &str) -> Runtime {
        Runtime {
            name: name.to_string(),
            free_threaded: false,
        }
    }
}

/// The first profile whose rules match the process's executable name, mapped libraries or
/// Go build info; the fallback profile otherwise.
pub fn detect(profiles: &ProfileSet, info: &ProcessInfo) -> Runtime {
    let exe_name = info
        .exe
        .as_deref()
        .or(info.command.first().map(String::as_str))
        .map(|path| path.rsplit('/').next().unwrap_or(path))
        .unwrap_or("");
    let matched = profiles
        .iter()
        .filter(|p| p.name != FALLBACK)
        .find(|p| matches(p, exe_name, info));
    match matched {
        Some(profile) => Runtime {
            name: profile.name.clone(),
            free_threaded: profile.traits.gil && free_threaded(exe_name, &info.libraries),
        },
        None => Runtime::named(FALLBACK),
    }
}

fn matches(profile: &Profile, exe_name: &str, info: &ProcessInfo) -> bool {
    (profile.detect.go_buildinfo && info.go_buildinfo)
        || profile.executables.iter().any(|p| p.matches(exe_name))
        || profile
            .libraries
            .iter()
            .any(|p| info.libraries.iter().any(|lib| p.matches(lib)))
}

/// "python3.13t", "libpython3.13t.so.1.0": CPython's free-threaded builds end their version in t.
fn free_threaded(exe_name: &str, libraries: &[String]) -> bool {
    let version_ends_in_t = |name: &str, prefix: &str| {
        name.strip_prefix(prefix)
            .map(|rest| rest.split(".so").next().unwrap_or(rest))
            .is_some_and(|v| v.ends_with('t') && v.starts_with(|c: char| c.is_ascii_digit()))
    };
    version_ends_in_t(exe_name, "python")
        || libraries
            .iter()
            .any(|lib| version_ends_in_t(lib, "libpython"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(exe: &str, libraries: &[&str], go_buildinfo: bool) -> ProcessInfo {
        ProcessInfo {
            pid: 1,
            start_ticks: 0,
            ppid: 0,
            command: vec![exe.to_string()],
            exe: Some(exe.to_string()),
            libraries: libraries.iter().map(|l| l.to_string()).collect(),
            go_buildinfo,
            cgroup: None,
        }
    }

    #[test]
    fn runtimes_from_executables_libraries_and_build_info() {
        let set = ProfileSet::built_in().unwrap();
        let name = |i: &ProcessInfo| detect(&set, i).name;
        assert_eq!(
            name(&info("/usr/bin/python3.11", &["libc.so.6"], false)),
            "python"
        );
        assert_eq!(
            name(&info("/usr/bin/uwsgi", &["libpython3.12.so.1.0"], false)),
            "python"
        );
        assert_eq!(name(&info("/usr/bin/node", &[], false)), "node");
        assert_eq!(
            name(&info("/opt/jdk/bin/java", &["libjvm.so"], false)),
            "jvm"
        );
        assert_eq!(
            name(&info("/usr/local/bin/hugo", &["libc.so.6"], true)),
            "go"
        );
        assert_eq!(name(&info("/bin/dd", &["libc.so.6"], false)), "native");
    }

    #[test]
    fn free_threaded_python_is_recognised() {
        let set = ProfileSet::built_in().unwrap();
        assert!(detect(&set, &info("/opt/py/bin/python3.13t", &[], false)).free_threaded);
        assert!(!detect(&set, &info("/usr/bin/python3.13", &[], false)).free_threaded);
        assert!(
            detect(
                &set,
                &info("/usr/bin/app", &["libpython3.14t.so.1.0"], false)
            )
            .free_threaded
        );
    }
}
