use std::path::{Path, PathBuf};

/// Why signing or verification failed. Every variant names the file, key or field concerned,
/// so a failed verification in CI says what to look at.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error("{action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The model tree cannot be signed or verified as it is (symlink, special file, name).
    #[error("{0}")]
    Tree(String),
    /// The bundle or envelope is not well formed.
    #[error("malformed bundle: {0}")]
    Bundle(String),
    /// A signature does not verify, or a key or certificate is not trusted.
    #[error("signature: {0}")]
    Signature(String),
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("key: {0}")]
    Key(String),
    /// The files on disk are not the files that were signed.
    #[error("{0}")]
    Mismatch(crate::manifest::Mismatch),
    #[error("{what} exceeds the limit of {limit}")]
    Limit { what: String, limit: u64 },
}

impl AttestError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        AttestError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

pub type Result<T, E = AttestError> = std::result::Result<T, E>;
