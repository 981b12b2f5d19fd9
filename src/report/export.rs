//! Report serialisation: one exporter per file format behind one trait.

use std::path::Path;

use anyhow::{Context, Result};
use clap::ValueEnum;

use super::Report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Toml,
    Json,
}

impl Format {
    /// The format asked for, else the one the file's extension names, else TOML.
    pub fn choose(asked: Option<Format>, path: Option<&Path>) -> Format {
        asked.unwrap_or_else(
            || match path.and_then(Path::extension).and_then(|e| e.to_str()) {
                Some(ext) if ext.eq_ignore_ascii_case("json") => Format::Json,
                _ => Format::Toml,
            },
        )
    }

    /// Any serialisable value in this format (the run report's exporters use it too).
    pub fn serialize_value<T: serde::Serialize>(self, value: &T) -> Result<Vec<u8>> {
        match self {
            Format::Toml => {
                let text = toml::to_string(value).context("serialising the report as TOML")?;
                Ok(text.into_bytes())
            }
            Format::Json => {
                let mut bytes =
                    serde_json::to_vec_pretty(value).context("serialising the report as JSON")?;
                bytes.push(b'\n');
                Ok(bytes)
            }
        }
    }

    /// The file extension of the format.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Toml => "toml",
            Format::Json => "json",
        }
    }

    pub fn exporter(self) -> &'static dyn Exporter {
        match self {
            Format::Toml => &TomlExporter,
            Format::Json => &JsonExporter,
        }
    }
}

pub trait Exporter {
    fn serialize(&self, report: &Report) -> Result<Vec<u8>>;
}

pub struct TomlExporter;
pub struct JsonExporter;

impl Exporter for TomlExporter {
    fn serialize(&self, report: &Report) -> Result<Vec<u8>> {
        Format::Toml.serialize_value(report)
    }
}

impl Exporter for JsonExporter {
    fn serialize(&self, report: &Report) -> Result<Vec<u8>> {
        Format::Json.serialize_value(report)
    }
}
