//! Spec errors: each names the file, the line and column, and the field path.

use std::fmt;
use std::path::PathBuf;

use super::Source;

/// A 1-based line and column in the spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// Converts a byte offset in `text` to a line and column.
    pub fn of_offset(text: &str, offset: usize) -> Position {
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Position { line, column }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SpecError {
    #[error("{}: cannot read spec: {message}", path.display())]
    Io { path: PathBuf, message: String },

    /// A syntax, type or validation error located in the file.
    #[error("{}", located(path, position, field, message))]
    Invalid {
        path: PathBuf,
        position: Option<Position>,
        field: String,
        message: String,
    },

    /// An error caused by an environment or command-line override.
    #[error("{origin}: {field}: {message}")]
    Override {
        origin: String,
        field: String,
        message: String,
    },
}

impl SpecError {
    pub(super) fn from_toml(source: &Source, field: &str, err: &toml::de::Error) -> SpecError {
        let position = err
            .span()
            .map(|s| Position::of_offset(&source.text, s.start));
        SpecError::Invalid {
            path: source.path.clone(),
            position,
            field: field.trim_start_matches('.').to_string(),
            message: err.message().trim().to_string(),
        }
    }
}

fn located(
    path: &std::path::Path,
    position: &Option<Position>,
    field: &str,
    message: &str,
) -> String {
    let mut out = path.display().to_string();
    if let Some(p) = position {
        out.push_str(&format!(":{}:{}", p.line, p.column));
    }
    // serde_path_to_error reports "." for the root.
    if !field.is_empty() && field != "." {
        out.push_str(": ");
        out.push_str(field);
    }
    out.push_str(": ");
    out.push_str(message);
    out
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}
