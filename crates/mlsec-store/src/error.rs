use std::path::PathBuf;

/// Everything that can go wrong in persistence, named so an operator knows what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database `{target}`: {message}")]
    Open { target: String, message: String },
    #[error("database `{target}` is corrupt or not an mlsec database: {message}")]
    Corrupt { target: String, message: String },
    #[error("migration {version} (`{name}`) failed: {message}")]
    Migration {
        version: i64,
        name: String,
        message: String,
    },
    #[error(
        "migration {version} (`{name}`) differs from the one applied to this database; refusing to start"
    )]
    MigrationChanged { version: i64, name: String },
    #[error("database is newer than this mlsec (has migration {found}, knows up to {known})")]
    TooNew { found: i64, known: i64 },
    #[error("storage is full: {0}")]
    StorageFull(String),
    #[error("{what} `{id}` was not found")]
    NotFound { what: &'static str, id: String },
    #[error("{what} `{id}` already exists")]
    AlreadyExists { what: &'static str, id: String },
    #[error("upload abandoned: {0}")]
    UploadAborted(String),
    #[error("blob backend: {0}")]
    Backend(String),
    #[error("a write transaction must record at least one audit event")]
    NoAuditEvent,
    #[error("audit: {0}")]
    Audit(#[from] mlsec_audit::AuditError),
    #[error("stored data is inconsistent: {0}")]
    Inconsistent(String),
    #[error("{action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        let path = path.into();
        if is_disk_full(&source) {
            return StoreError::StorageFull(format!("{action} `{}`: {source}", path.display()));
        }
        StoreError::Io {
            action,
            path,
            source,
        }
    }

    /// Whether the error is a full disk, which operators fix differently from a bug.
    pub fn is_storage_full(&self) -> bool {
        matches!(self, StoreError::StorageFull(_))
    }
}

pub(crate) fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || e.kind() == std::io::ErrorKind::StorageFull
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        classify(e, "database")
    }
}

/// Maps driver errors to the conditions operators act on (full disk, corruption).
pub(crate) fn classify(e: sqlx::Error, target: &str) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
        // SQLite primary codes: 13 FULL, 11 CORRUPT, 26 NOTADB; PostgreSQL 53100 disk_full.
        let primary = code.parse::<i64>().ok().map(|c| c & 0xff);
        match (primary, code.as_str()) {
            (Some(13), _) | (_, "53100") => {
                return StoreError::StorageFull(db.message().to_owned());
            }
            (Some(11), _) | (Some(26), _) => {
                return StoreError::Corrupt {
                    target: target.to_owned(),
                    message: db.message().to_owned(),
                };
            }
            _ => {}
        }
    }
    if let sqlx::Error::Io(io) = &e
        && is_disk_full(io)
    {
        return StoreError::StorageFull(io.to_string());
    }
    StoreError::Database(e.to_string())
}
