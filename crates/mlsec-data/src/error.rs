//! The one error type of dataset handling. Every variant names the file, and where it can the
//! row and column, so a user can find the bad byte without a debugger.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {op}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A tabular file that does not parse (ragged rows, mixed types, invalid UTF-8, truncation).
    #[error("{file}: {message}")]
    Read { file: String, message: String },
    /// Files of one dataset version whose columns disagree.
    #[error("{file}: {message}")]
    SchemaMismatch { file: String, message: String },
    #[error("{file} changed while it was being read ({detail}); nothing was recorded")]
    Changed { file: String, detail: String },
    #[error("{what} exceeds the limit of {limit}")]
    Limit { what: String, limit: u64 },
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    pub fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        DataError::Io {
            op,
            path: path.display().to_string(),
            source,
        }
    }

    pub fn read(file: impl Into<String>, message: impl std::fmt::Display) -> Self {
        DataError::Read {
            file: file.into(),
            message: message.to_string(),
        }
    }
}
