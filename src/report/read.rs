//! Reads a saved report (TOML or JSON) back, with a one-line error for anything that is not one.

use std::path::Path;

use serde::de::DeserializeOwned;

use super::{Report, SCHEMA_VERSION};
use crate::error::Error;
use crate::input_file::read_text;
use crate::printable::printable;

pub fn load(path: &Path) -> Result<Report, Error> {
    let text = read_report_text(path)?;
    parse(&text).map_err(|reason| input_error(path, reason))
}

/// The one-line error for a file that is not a readable report.
pub fn input_error(path: &Path, reason: String) -> Error {
    Error::InputFile {
        path: path.to_path_buf(),
        reason,
    }
}

/// A report file's text (of a run or a scale scan), with a one-line error for a missing,
/// binary or oversized file.
pub fn read_report_text(path: &Path) -> Result<String, Error> {
    read_text(path).map_err(|reason| input_error(path, reason))
}

/// Parses a report, JSON if it looks like JSON, else TOML, and checks its numbers; the error
/// is one line.
pub fn parse(text: &str) -> Result<Report, String> {
    let checked = parse_as::<Report>(text).and_then(|report| validate(&report).map(|()| report));
    // Parsers quote what they could not read: a newline or an escape in it stays one line.
    checked.map_err(|error| printable(&error).into_owned())
}

/// The largest number of seconds (or hertz, cores, GiB) a report may hold: about 31 years.
const MAX_QUANTITY: f64 = 1e9;

/// Every number in the report is finite and in range: shares and the confidence in 0..1,
/// everything else (seconds, rates, cores, memory) from 0 to `MAX_QUANTITY`. Reports are files
/// people edit and pass around; `show` and `diff` must not divide by what they hold unchecked.
pub fn validate(report: &Report) -> Result<(), String> {
    let value = toml::Value::try_from(report)
        .map_err(|e| format!("not a concadvise report: {}", e.to_string().trim()))?;
    check_numbers(&value, "")
}

fn check_numbers(value: &toml::Value, key: &str) -> Result<(), String> {
    match value {
        toml::Value::Float(number) => {
            let name = key.rsplit('.').next().unwrap_or(key);
            let share = name == "confidence" || name.ends_with("_share");
            let max = if share { 1.0 } else { MAX_QUANTITY };
            if number.is_finite() && (0.0..=max).contains(number) {
                Ok(())
            } else {
                let shown = if number.abs() >= 1e6 {
                    format!("{number:e}")
                } else {
                    number.to_string()
                };
                Err(format!(
                    "not a concadvise report: {key} is {shown} (expected a number from 0 to {})",
                    if share { "1" } else { "1e9" }
                ))
            }
        }
        toml::Value::Table(table) => table.iter().try_for_each(|(name, value)| {
            let key = if key.is_empty() {
                name.clone()
            } else {
                format!("{key}.{name}")
            };
            check_numbers(value, &key)
        }),
        toml::Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, value)| check_numbers(value, &format!("{key}[{i}]"))),
        _ => Ok(()),
    }
}

fn looks_like_json(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// Parses any report of schema `T` (a run report, a scale report), JSON if it looks like
/// JSON, else TOML, after checking its schema version; numbers unchecked. The error is one
/// line.
pub fn parse_as<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let parsed = if looks_like_json(text) {
        serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| format!("not valid JSON: {e}"))
            .and_then(|value| {
                check_version(
                    value
                        .get("schema_version")
                        .and_then(serde_json::Value::as_u64),
                )?;
                serde_json::from_value(value).map_err(|e| format!("not a concadvise report: {e}"))
            })
    } else {
        toml::from_str::<toml::Table>(text)
            .map_err(|e| toml_error("not valid TOML", text, &e))
            .and_then(|value| {
                check_version(
                    value
                        .get("schema_version")
                        .and_then(toml::Value::as_integer)
                        .map(|v| v.max(0) as u64),
                )?;
                toml::from_str(text).map_err(|e| toml_error("not a concadvise report", text, &e))
            })
    };
    parsed.map_err(|error| printable(&error).into_owned())
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

    #[test]
    fn numbers_out_of_range_are_refused_naming_the_key() {
        let text = include_str!("../../tests/fixtures/reports/phases.toml");
        assert!(parse(text).is_ok());
        for (from, to, key) in [
            ("wall_s = ", "wall_s = -5.0 #", "time.wall_s is -5"),
            ("wall_s = ", "wall_s = nan #", "time.wall_s is NaN"),
            ("wall_s = ", "wall_s = inf #", "time.wall_s is inf"),
            ("wall_s = ", "wall_s = 1e308 #", "time.wall_s is 1e308"),
            (
                "confidence = ",
                "confidence = 1.5 #",
                "verdict.confidence is 1.5",
            ),
        ] {
            let text = text.replacen(from, to, 1);
            let error = parse(&text).unwrap_err();
            assert!(error.contains(key), "{to}: {error}");
        }
    }
}
