//! Names the runtime a process runs on (CPython, Node.js, JVM, Go, native) from its executable and libraries.

use serde::{Deserialize, Serialize};

use crate::sampler::observation::ProcessInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    /// CPython; `free_threaded` for the builds without a GIL (python3.13t and later "t" builds).
    Python {
        free_threaded: bool,
    },
    Node,
    Jvm,
    Go,
    /// C, C++, Rust and anything else compiled to machine code.
    Native,
}

impl Runtime {
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Python { .. } => "python",
            Runtime::Node => "node",
            Runtime::Jvm => "jvm",
            Runtime::Go => "go",
            Runtime::Native => "native",
        }
    }

    /// Whether threads of this runtime can compute in parallel.
    pub fn threads_run_in_parallel(self) -> bool {
        !matches!(
            self,
            Runtime::Python {
                free_threaded: false
            } | Runtime::Node
        )
    }
}

/// The runtime of a process, from its executable's name and the libraries it maps.
pub fn detect(info: &ProcessInfo) -> Runtime {
    let exe_name = info
        .exe
        .as_deref()
        .or(info.command.first().map(String::as_str))
        .map(|path| path.rsplit('/').next().unwrap_or(path))
        .unwrap_or("");
    let maps = |prefix: &str| info.libraries.iter().find(|lib| lib.starts_with(prefix));
    if let Some(version) = python_version(exe_name) {
        return Runtime::Python {
            free_threaded: version.ends_with('t'),
        };
    }
    if let Some(lib) = maps("libpython") {
        let version = lib.trim_start_matches("libpython").split(".so").next();
        return Runtime::Python {
            free_threaded: version.is_some_and(|v| v.ends_with('t')),
        };
    }
    if exe_name == "node" || exe_name == "nodejs" || maps("libnode").is_some() {
        return Runtime::Node;
    }
    if maps("libjvm").is_some() || exe_name == "java" {
        return Runtime::Jvm;
    }
    Runtime::Native
}

/// "python3.11" -> "3.11", "python3.13t" -> "3.13t", "python3" -> "3", "python" -> "".
fn python_version(exe_name: &str) -> Option<&str> {
    let version = exe_name.strip_prefix("python")?;
    let valid = version
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.' || c == 't');
    valid.then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(exe: &str, libraries: &[&str]) -> ProcessInfo {
        ProcessInfo {
            pid: 1,
            ppid: 0,
            command: vec![exe.to_string()],
            exe: Some(exe.to_string()),
            libraries: libraries.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn runtimes_from_executables_and_libraries() {
        assert_eq!(
            detect(&info("/usr/bin/python3.11", &["libc.so.6"])),
            Runtime::Python {
                free_threaded: false
            }
        );
        assert_eq!(
            detect(&info("/opt/py/bin/python3.13t", &[])),
            Runtime::Python {
                free_threaded: true
            }
        );
        assert_eq!(
            detect(&info("/usr/bin/uwsgi", &["libpython3.12.so.1.0"])),
            Runtime::Python {
                free_threaded: false
            }
        );
        assert_eq!(detect(&info("/usr/bin/node", &[])), Runtime::Node);
        assert_eq!(
            detect(&info("/usr/lib/jvm/bin/java", &["libjvm.so"])),
            Runtime::Jvm
        );
        assert_eq!(
            detect(&info("/usr/bin/python-config-tool", &[])),
            Runtime::Native
        );
        assert_eq!(detect(&info("/bin/dd", &["libc.so.6"])), Runtime::Native);
    }
}
