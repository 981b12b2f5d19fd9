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

    /// The file name extension of the format.
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
        let text = toml::to_string(report).context("serialising the report as TOML")?;
        Ok(text.into_bytes())
    }
}

impl Exporter for JsonExporter {
    fn serialize(&self, report: &Report) -> Result<Vec<u8>> {
        let mut bytes =
            serde_json::to_vec_pretty(report).context("serialising the report as JSON")?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}
