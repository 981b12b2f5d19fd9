//! Reads a saved report (TOML or JSON) back, with a one-line error for anything that is not one.

use std::path::Path;

use super::{Report, SCHEMA_VERSION};
use crate::error::Error;

pub fn load(path: &Path) -> Result<Report, Error> {
    let bad = |reason: String| Error::InputFile {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        bad(match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            std::io::ErrorKind::InvalidData => "not a text file, so not a report".to_string(),
            _ => e.to_string(),
        })
    })?;
    parse(&text).map_err(bad)
}

/// Parses a report, JSON if it looks like JSON, else TOML; the error is one line.
pub fn parse(text: &str) -> Result<Report, String> {
    if text.trim_start().starts_with('{') {
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
}
