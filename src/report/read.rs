//! Reads a saved report (TOML or JSON) back, with a one-line error for anything that is not one.

use std::path::Path;

use serde::de::DeserializeOwned;

use super::{Report, SCHEMA_VERSION};
use crate::error::Error;

pub fn load(path: &Path) -> Result<Report, Error> {
    let text = read_text(path)?;
    parse(&text).map_err(|reason| input_error(path, reason))
}

/// The one-line error for a file that is not a readable report.
pub fn input_error(path: &Path, reason: String) -> Error {
    Error::InputFile {
        path: path.to_path_buf(),
        reason,
    }
}

/// A report file's text, with a one-line error for a missing or binary file.
pub fn read_text(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| {
        input_error(
            path,
            match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_string(),
                std::io::ErrorKind::InvalidData => "not a text file, so not a report".to_string(),
                _ => e.to_string(),
            },
        )
    })
}

/// Parses a report, JSON if it looks like JSON, else TOML; the error is one line.
pub fn parse(text: &str) -> Result<Report, String> {
    parse_as(text)
}

fn looks_like_json(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// Parses any report of schema `T` (a run report, a scale report) as `parse` does.
pub fn parse_as<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    if looks_like_json(text) {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        check_version(
            value
                .get("schema_version")
                .and_then(serde_json::Value::as_u64),
        )?;
        serde_json::from_value(value).map_err(|e| format!("not a concadvise report: {e}"))
    } else {
        let value: toml::Table =
            toml::from_str(text).map_err(|e| toml_error("not valid TOML", text, &e))?;
        check_version(
            value
                .get("schema_version")
                .and_then(toml::Value::as_integer)
                .map(|v| v.max(0) as u64),
        )?;
        toml::from_str(text).map_err(|e| toml_error("not a concadvise report", text, &e))
    }
}

/// Whether the document (TOML or JSON) has a top-level table named `key`; false for text
/// that does not parse (its error comes from `parse_as`).
pub fn has_top_level_table(text: &str, key: &str) -> bool {
    if looks_like_json(text) {
        serde_json::from_str::<serde_json::Value>(text)
            .is_ok_and(|value| value.get(key).is_some_and(serde_json::Value::is_object))
    } else {
        toml::from_str::<toml::Table>(text)
            .is_ok_and(|table| table.get(key).is_some_and(toml::Value::is_table))
    }
}

fn check_version(version: Option<u64>) -> Result<(), String> {
    match version {
        None => Err("not a concadvise report: missing key schema_version".to_string()),
        Some(v) if v > u64::from(SCHEMA_VERSION) => Err(format!(
            "written by a newer concadvise (schema_version {v}; this one reads up to \
             {SCHEMA_VERSION}): upgrade concadvise"
        )),
        Some(_) => Ok(()),
    }
}

/// toml's errors span several lines with a snippet; keep the message and the line number.
fn toml_error(what: &str, text: &str, error: &toml::de::Error) -> String {
    let line = error
        .span()
        .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
    let message = error.message().trim().replace('\n', " ");
    match line {
        Some(line) => format!("{what}: line {line}: {message}"),
        None => format!("{what}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line_and_say_what_is_wrong() {
        let cases = [
            ("this is = = not toml", "not valid TOML: line 1"),
            ("title = \"x\"\n", "missing key schema_version"),
            (
                "schema_version = 99\n",
                "newer concadvise (schema_version 99",
            ),
            ("schema_version = 1\n[target]\npid = 3\n", "missing field"),
            ("{\"schema_version\": 1}", "not a concadvise report"),
            ("{ nope", "not valid JSON"),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }

    #[test]
    fn a_top_level_table_is_found_in_toml_and_json() {
        assert!(has_top_level_table(
            "schema_version = 1\n[scale]\nx = 1\n",
            "scale"
        ));
        assert!(has_top_level_table("{\"scale\": {\"x\": 1}}", "scale"));
        assert!(!has_top_level_table("scale = 3\n", "scale"));
        assert!(!has_top_level_table("[target]\npid = 1\n", "scale"));
        assert!(!has_top_level_table("not = = toml", "scale"));
    }
}
