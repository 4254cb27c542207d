//! The workload spec as written in TOML: a strict serde mirror of the file.
//!
//! This module owns the file format only: parsing, environment and command-line overrides, and
//! error messages that point at a file, line, column and field path. It knows nothing of the
//! engine or the driver; [`crate::plan`] turns a [`Spec`] into something runnable.

mod error;
mod locate;
mod model;
mod overrides;
mod secret;
mod types;

pub use error::SpecError;
pub use model::{MODEL_NAMES, MODELS, ModelName, ModelRow, knob_rows, model_table};
pub use overrides::{Override, env_overrides};
pub use secret::{REDACTED, SECRET_KEYS, Secret};
pub use types::*;

use std::path::{Path, PathBuf};

/// Where a spec came from, kept so that later (semantic) errors can point at a line.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn read(path: &Path) -> Result<Source, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| SpecError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(Source {
            path: path.to_path_buf(),
            text,
        })
    }

    /// An error about `field` (a path such as `ops[1].weight`), located in the file if the
    /// field is written there.
    pub fn error_at(&self, field: &str, message: impl Into<String>) -> SpecError {
        let position = locate::find(&self.text, field);
        SpecError::Invalid {
            path: self.path.clone(),
            position,
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// Parses a spec file strictly, then applies `overrides` (environment first, then command line).
pub fn load(path: &Path, overrides: &[Override]) -> Result<(Spec, Source), SpecError> {
    let source = Source::read(path)?;
    let spec = parse(&source, overrides)?;
    Ok((spec, source))
}

/// Parses spec text. Errors carry the line and column of the offending key or value.
pub fn parse(source: &Source, overrides: &[Override]) -> Result<Spec, SpecError> {
    let deserializer = toml::de::Deserializer::parse(&source.text)
        .map_err(|e| SpecError::from_toml(source, "", &e))?;
    let spec: Spec = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let field = e.path().to_string();
        SpecError::from_toml(source, &field, e.inner())
    })?;
    if overrides.is_empty() {
        return Ok(spec);
    }
    // Overrides are patched into the parsed table and the whole is deserialised again, so an
    // override is held to exactly the same rules as the file.
    let mut table: toml::Table =
        toml::from_str(&source.text).map_err(|e| SpecError::from_toml(source, "", &e))?;
    for o in overrides {
        o.apply(&mut table)?;
    }
    let value = toml::Value::Table(table);
    serde_path_to_error::deserialize(value).map_err(|e| SpecError::Override {
        origin: overrides_touching(overrides, &e.path().to_string()),
        field: e.path().to_string(),
        message: e.inner().message().to_string(),
    })
}

/// Names the override(s) most likely responsible for an error at `field`.
fn overrides_touching(overrides: &[Override], field: &str) -> String {
    let hits: Vec<&str> = overrides
        .iter()
        .filter(|o| field.starts_with(&o.dotted_key()) || o.dotted_key().starts_with(field))
        .map(|o| o.origin.as_str())
        .collect();
    if hits.is_empty() {
        "overrides".to_string()
    } else {
        hits.join(", ")
    }
}
