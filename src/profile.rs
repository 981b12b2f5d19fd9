//! Runtime profiles: the per-runtime advice kept as TOML in profiles/, embedded at build time and overridable from directories.
//!
//! At the bottom of the pipeline: runtime detection (target), classification thresholds
//! (analysis) and advice all read the profiles, so the vocabulary they share (the models, the
//! thresholds) is defined here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{io_message, Error};
use crate::input_file::read_text;

/// A concurrency model a profile can advise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    Multiprocessing,
    Threads,
    Async,
    None,
}

impl Model {
    pub fn name(self) -> &'static str {
        match self {
            Model::Multiprocessing => "multiprocessing",
            Model::Threads => "threads",
            Model::Async => "async",
            Model::None => "none",
        }
    }
}

/// The share of the program's own time a class needs (a profile may change them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub cpu_bound_share: f64,
    pub io_bound_share: f64,
    pub idle_share: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            cpu_bound_share: 0.6,
            io_bound_share: 0.5,
            idle_share: 0.6,
        }
    }
}

/// The profiles that ship inside the binary, in detection order (native, the fallback, last).
const BUILT_IN: [(&str, &str); 5] = [
    ("python.toml", include_str!("../profiles/python.toml")),
    ("node.toml", include_str!("../profiles/node.toml")),
    ("jvm.toml", include_str!("../profiles/jvm.toml")),
    ("go.toml", include_str!("../profiles/go.toml")),
    ("native.toml", include_str!("../profiles/native.toml")),
];

/// The profile used when no other recognises the program.
pub const FALLBACK: &str = "native";

/// Situations every profile must advise on.
pub const REQUIRED: [&str; 15] = [
    "cpu_bound",
    "cpu_quota",
    "sync_bound",
    "already_parallel",
    "sequential_processes",
    "io_network",
    "io_disk",
    "io_ipc",
    "already_async",
    "already_threaded",
    "blocked_event_loop",
    "paging",
    "lock_contention",
    "mixed",
    "idle",
];
/// Situations a profile may advise on (used only where they apply).
pub const OPTIONAL: [&str; 7] = [
    "cpu_bound_free_threaded",
    "gil_contention",
    "io_network_fs",
    "stopped",
    "disk_saturated",
    "server_at_capacity",
    "server_at_capacity_cpu",
];

/// Measured numbers a profile's text may cite, as {name}.
pub const PLACEHOLDERS: [&str; 19] = [
    "wall_s",
    "computing",
    "io",
    "idle",
    "runqueue",
    "avg_cores",
    "cores_wanted",
    "cores",
    "dominant_wait",
    "workers",
    "speedup_ceiling",
    "threads",
    "structure",
    "in_flight",
    "peak_in_flight",
    "busy_threads",
    "loop_blocked_s",
    "loop_blocked_share",
    "blocked_by",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: Spanned<String>,
    description: String,
    detect: DetectRules,
    runtime: RuntimeTraits,
    #[serde(default)]
    thresholds: Option<ThresholdOverrides>,
    advice: BTreeMap<String, Spanned<AdviceFile>>,
    #[serde(default)]
    tools: Vec<ToolFile>,
}

/// A program people run rather than write (xz, gzip, sort), with its own way to use more
/// cores.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolFile {
    executables: Vec<String>,
    how: String,
    /// "cpu" (the default): its option for more cores, for a CPU-bound run; "io": its option
    /// for more at once, for an I/O-bound one (a load generator's clients).
    #[serde(default)]
    when: Option<String>,
}

/// See `ToolFile`: the executables' name patterns and what to do instead of writing threads.
#[derive(Debug, Clone)]
pub struct Tool {
    pub executables: Vec<glob::Pattern>,
    pub how: String,
    /// For an I/O-bound run (else a CPU-bound one).
    pub for_io: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectRules {
    /// Patterns for the executable's file name (python3*).
    pub executables: Vec<String>,
    /// Patterns for mapped shared objects (libjvm.so*).
    pub libraries: Vec<String>,
    /// Recognise Go binaries by their .go.buildinfo section.
    #[serde(default)]
    pub go_buildinfo: bool,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeTraits {
    pub threads_run_in_parallel: bool,
    /// A global interpreter lock serialises threads (unless a free-threaded build is detected).
    pub gil: bool,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdOverrides {
    cpu_bound_share: Option<f64>,
    io_bound_share: Option<f64>,
    idle_share: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdviceFile {
    model: Spanned<String>,
    reasons: Vec<Spanned<String>>,
    how: Spanned<String>,
    #[serde(default)]
    alternatives: Vec<Spanned<String>>,
    /// The change the advice is, in a few words, for the expected speedup's line.
    #[serde(default)]
    change: Option<Spanned<String>>,
}

/// What a profile says for one situation; texts still hold {placeholders}.
#[derive(Debug, Clone, PartialEq)]
pub struct SituationAdvice {
    pub model: Model,
    pub reasons: Vec<String>,
    pub how: String,
    pub alternatives: Vec<String>,
    /// "the work in a ProcessPoolExecutor of {workers}" (the situation's own words if absent).
    pub change: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// "built-in" or the file it was read from.
    pub source: String,
    pub detect: DetectRules,
    pub executables: Vec<glob::Pattern>,
    pub libraries: Vec<glob::Pattern>,
    pub traits: RuntimeTraits,
    pub thresholds: Thresholds,
    pub advice: BTreeMap<String, SituationAdvice>,
    /// Tools with their own parallel option, for a CPU-bound run that is one of them.
    pub tools: Vec<Tool>,
    /// The TOML text, for `profiles show`.
    pub text: String,
}

impl Profile {
    /// The advice for a situation, or for `fallback` when the profile has none for it.
    pub fn advice_for(&self, situation: &str, fallback: &str) -> Option<&SituationAdvice> {
        self.advice
            .get(situation)
            .or_else(|| self.advice.get(fallback))
    }

    /// The tool whose executable this is ("xz", from its command's first word), if any.
    pub fn tool(&self, program: &str, for_io: bool) -> Option<&Tool> {
        self.tools.iter().find(|tool| {
            tool.for_io == for_io && tool.executables.iter().any(|p| p.matches(program))
        })
    }
}

/// All profiles in force: the built-in ones, replaced or extended by files from directories.
#[derive(Debug, Clone)]
pub struct ProfileSet {
    /// In detection order: profiles from directories first, then the built-in ones.
    profiles: Vec<Profile>,
}

impl ProfileSet {
    pub fn built_in() -> Result<ProfileSet, Error> {
        let mut profiles = Vec::new();
        for (file, text) in BUILT_IN {
            profiles.push(parse(text, &format!("profiles/{file}"), "built-in")?);
        }
        Ok(ProfileSet { profiles })
    }

    /// Built-in profiles, then the user's config directory (if it exists), then `extra_dir`
    /// (which must exist). A file whose `name` matches a profile replaces it; others add one.
    /// Anything unreadable in them is a bad input file (exit 5), naming the file.
    pub fn load(extra_dir: Option<&Path>) -> Result<ProfileSet, Error> {
        let mut set = ProfileSet::built_in()?;
        if let Some(user_dir) = user_profile_dir().filter(|dir| dir.is_dir()) {
            set.add_dir(&user_dir)?;
        }
        if let Some(dir) = extra_dir {
            if !dir.is_dir() {
                return Err(Error::InputFile {
                    path: dir.to_path_buf(),
                    reason: if dir.exists() {
                        "--profiles needs a directory of profile files (*.toml)".into()
                    } else {
                        "no such directory (--profiles)".into()
                    },
                });
            }
            set.add_dir(dir)?;
        }
        Ok(set)
    }

    fn add_dir(&mut self, dir: &Path) -> Result<(), Error> {
        let unreadable = |path: &Path, reason: String| Error::InputFile {
            path: path.to_path_buf(),
            reason,
        };
        let entries = std::fs::read_dir(dir).map_err(|e| unreadable(dir, io_message(&e)))?;
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .collect();
        files.sort();
        // Two files of one directory with the same name: neither silently wins.
        let mut named_by: BTreeMap<String, PathBuf> = BTreeMap::new();
        for path in files {
            let shown = path.display().to_string();
            let text = read_text(&path).map_err(|reason| unreadable(&path, reason))?;
            let profile = parse(&text, &shown, &shown)?;
            if let Some(first) = named_by.get(&profile.name) {
                return Err(unreadable(
                    &path,
                    format!(
                        "it names its profile {:?}, as {} does: one file per profile name in a \
                         directory",
                        profile.name,
                        first.display()
                    ),
                ));
            }
            named_by.insert(profile.name.clone(), path.clone());
            self.profiles.retain(|p| p.name != profile.name);
            self.profiles.insert(0, profile);
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// The profile of a runtime, or the fallback profile for one that has none.
    pub fn for_runtime(&self, name: &str) -> Result<&Profile, Error> {
        match self.get(name) {
            Some(profile) => Ok(profile),
            None => self.fallback(),
        }
    }

    pub fn fallback(&self) -> Result<&Profile, Error> {
        self.get(FALLBACK)
            .ok_or_else(|| Error::Setup(format!("no {FALLBACK:?} profile")))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.iter()
    }

    pub fn names(&self) -> Vec<&str> {
        self.profiles.iter().map(|p| p.name.as_str()).collect()
    }
}

fn user_profile_dir() -> Option<PathBuf> {
    Some(dirs::config_dir()?.join("concadvise").join("profiles"))
}

/// Where a profile's text came from, for errors that name the file, the line and the key.
struct Checker<'a> {
    text: &'a str,
    file: &'a str,
}

impl Checker<'_> {
    fn fail(&self, offset: Option<usize>, key: &str, problem: String) -> Error {
        Error::Profile {
            file: self.file.to_string(),
            line: offset.map_or(1, |o| line_of(self.text, o)),
            key: key.to_string(),
            problem,
        }
    }

    fn patterns(&self, list: &[String], key: &str) -> Result<Vec<glob::Pattern>, Error> {
        list.iter()
            .map(|p| {
                glob::Pattern::new(p).map_err(|e| {
                    self.fail(find(self.text, p), key, format!("bad pattern {p:?}: {e}"))
                })
            })
            .collect()
    }

    fn thresholds(&self, overrides: Option<ThresholdOverrides>) -> Result<Thresholds, Error> {
        let mut thresholds = Thresholds::default();
        let Some(overrides) = overrides else {
            return Ok(thresholds);
        };
        for (key, value, slot) in [
            (
                "cpu_bound_share",
                overrides.cpu_bound_share,
                &mut thresholds.cpu_bound_share,
            ),
            (
                "io_bound_share",
                overrides.io_bound_share,
                &mut thresholds.io_bound_share,
            ),
            (
                "idle_share",
                overrides.idle_share,
                &mut thresholds.idle_share,
            ),
        ] {
            if let Some(value) = value {
                if !(0.0..=1.0).contains(&value) || value == 0.0 {
                    return Err(self.fail(
                        find(self.text, key),
                        &format!("thresholds.{key}"),
                        format!("{value} is not a share between 0 and 1"),
                    ));
                }
                *slot = value;
            }
        }
        Ok(thresholds)
    }

    /// A text with only known {placeholders}.
    fn placeholders_known(&self, item: &Spanned<String>, key: &str) -> Result<String, Error> {
        if let Some(unknown) = unknown_placeholder(item.get_ref()) {
            return Err(self.fail(
                Some(item.span().start),
                key,
                format!(
                    "unknown placeholder {{{unknown}}} (known: {})",
                    PLACEHOLDERS.join(", ")
                ),
            ));
        }
        Ok(item.get_ref().clone())
    }

    fn situation(
        &self,
        situation: &str,
        entry: &Spanned<AdviceFile>,
    ) -> Result<SituationAdvice, Error> {
        let key = format!("advice.{situation}");
        if !REQUIRED.contains(&situation) && !OPTIONAL.contains(&situation) {
            return Err(self.fail(
                Some(entry.span().start),
                &key,
                format!(
                    "unknown situation (expected one of {}, {})",
                    REQUIRED.join(", "),
                    OPTIONAL.join(", ")
                ),
            ));
        }
        let entry = entry.get_ref();
        let model = match entry.model.get_ref().as_str() {
            "multiprocessing" => Model::Multiprocessing,
            "threads" => Model::Threads,
            "async" => Model::Async,
            "none" => Model::None,
            other => {
                return Err(self.fail(
                    Some(entry.model.span().start),
                    &format!("{key}.model"),
                    format!(
                        "unknown model {other:?} (expected multiprocessing, threads, async or none)"
                    ),
                ))
            }
        };
        if entry.reasons.is_empty() {
            return Err(self.fail(
                find(self.text, &format!("[{key}]")),
                &format!("{key}.reasons"),
                "needs at least one reason".into(),
            ));
        }
        let texts = |items: &[Spanned<String>], field: &str| -> Result<Vec<String>, Error> {
            items
                .iter()
                .map(|item| self.placeholders_known(item, &format!("{key}.{field}")))
                .collect()
        };
        Ok(SituationAdvice {
            model,
            reasons: texts(&entry.reasons, "reasons")?,
            how: self.placeholders_known(&entry.how, &format!("{key}.how"))?,
            alternatives: texts(&entry.alternatives, "alternatives")?,
            change: entry
                .change
                .as_ref()
                .map(|change| self.placeholders_known(change, &format!("{key}.change")))
                .transpose()?,
        })
    }
}

/// Parses and checks one profile; every mistake names the file, the line and the key.
pub fn parse(text: &str, file: &str, source: &str) -> Result<Profile, Error> {
    let checker = Checker { text, file };
    let raw: ProfileFile = toml::from_str(text).map_err(|error| {
        let (message, key) = toml_message_and_key(&error);
        checker.fail(error.span().map(|s| s.start), &key, message)
    })?;
    let name = raw.name.get_ref().trim().to_string();
    if name.is_empty() {
        return Err(checker.fail(Some(raw.name.span().start), "name", "is empty".into()));
    }
    let executables = checker.patterns(&raw.detect.executables, "detect.executables")?;
    let libraries = checker.patterns(&raw.detect.libraries, "detect.libraries")?;
    let thresholds = checker.thresholds(raw.thresholds)?;
    let mut tools = Vec::new();
    for (index, tool) in raw.tools.iter().enumerate() {
        let for_io = match tool.when.as_deref() {
            None | Some("cpu") => false,
            Some("io") => true,
            Some(other) => {
                return Err(checker.fail(
                    find(text, other),
                    &format!("tools[{index}].when"),
                    format!("unknown {other:?} (expected \"cpu\" or \"io\")"),
                ))
            }
        };
        tools.push(Tool {
            executables: checker
                .patterns(&tool.executables, &format!("tools[{index}].executables"))?,
            how: tool.how.clone(),
            for_io,
        });
    }
    let mut advice = BTreeMap::new();
    for (situation, entry) in &raw.advice {
        advice.insert(situation.clone(), checker.situation(situation, entry)?);
    }
    if let Some(missing) = REQUIRED.iter().find(|s| !advice.contains_key(**s)) {
        return Err(checker.fail(
            find(text, "\n[advice.").map(|offset| offset + 1),
            &format!("advice.{missing}"),
            "missing: every profile advises on every situation".into(),
        ));
    }
    Ok(Profile {
        name,
        description: raw.description,
        source: source.to_string(),
        detect: raw.detect,
        executables,
        libraries,
        traits: raw.runtime,
        thresholds,
        advice,
        tools,
        text: text.to_string(),
    })
}

/// The first {name} in `text` that is not a known placeholder.
fn unknown_placeholder(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Some(name.to_string());
        }
        rest = &after[close + 1..];
    }
    None
}

/// Replaces {placeholders} with the measured values.
pub fn fill(text: &str, values: &[(&str, String)]) -> String {
    let mut out = text.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn find(text: &str, needle: &str) -> Option<usize> {
    text.find(needle)
}

/// toml's error as one line, and the dotted key it concerns ("" if none).
fn toml_message_and_key(error: &toml::de::Error) -> (String, String) {
    let mut detached = error.clone();
    detached.set_input(None);
    let shown = detached.to_string();
    let key = shown
        .lines()
        .find_map(|line| line.strip_prefix("in `")?.strip_suffix('`'))
        .unwrap_or("")
        .to_string();
    (error.message().trim().replace('\n', " "), key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_profiles_are_valid_and_complete() {
        let set = ProfileSet::built_in().unwrap();
        assert_eq!(set.names(), ["python", "node", "jvm", "go", "native"]);
        for profile in set.iter() {
            for situation in REQUIRED {
                assert!(
                    profile.advice.contains_key(situation),
                    "{} {situation}",
                    profile.name
                );
            }
        }
        for profile in set.iter() {
            for situation in ["io_network_fs", "stopped"] {
                assert!(
                    profile.advice.contains_key(situation),
                    "{} {situation}",
                    profile.name
                );
            }
        }
        let python = set.get("python").unwrap();
        assert!(python.traits.gil);
        assert_eq!(python.advice["cpu_bound"].model, Model::Multiprocessing);
    }

    #[test]
    fn tools_are_found_by_executable_for_cpu_or_io_and_a_bad_when_is_an_error() {
        let set = ProfileSet::built_in().unwrap();
        let native = set.get("native").unwrap();
        assert!(native.tool("xz", false).unwrap().how.contains("-T0"));
        assert!(native.tool("sha256sum", false).is_some());
        assert!(native.tool("pgbench", true).unwrap().how.contains("-c N"));
        assert!(native.tool("pgbench", false).is_none());
        assert!(native.tool("xz", true).is_none());
        assert!(native.tool("myprog", false).is_none());
        let text = native.text.replacen("when = \"io\"", "when = \"disk\"", 1);
        let error = parse(&text, "native.toml", "test").unwrap_err().to_string();
        assert!(
            error.contains("tools[") && error.contains("when") && error.contains("\"disk\""),
            "{error}"
        );
    }

    #[test]
    fn placeholders_are_checked_and_filled() {
        assert_eq!(unknown_placeholder("{workers} and {cores}"), None);
        assert_eq!(unknown_placeholder("{workrs}"), Some("workrs".into()));
        assert_eq!(fill("{workers} x", &[("workers", "4".into())]), "4 x");
    }
}
