use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use mlsec_audit::CheckpointSigner;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};
use tokio::sync::Mutex;

use crate::error::{StoreError, classify};
use crate::migrate;

/// Which database engine holds the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to open a [`Store`].
#[derive(Clone)]
pub struct StoreOptions {
    /// `sqlite://PATH` or `postgres://…`.
    pub url: String,
    pub max_connections: u32,
    /// Sign a checkpoint every this many events (0 disables periodic checkpoints).
    pub checkpoint_every: u64,
    /// Key that signs checkpoints; without one, no checkpoints are written.
    pub signer: Option<Arc<CheckpointSigner>>,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        StoreOptions {
            url: url.into(),
            max_connections: 8,
            checkpoint_every: 1000,
            signer: None,
        }
    }

    /// The embedded default: a SQLite file, created if missing.
    pub fn sqlite_file(path: &Path) -> Self {
        Self::new(format!("sqlite://{}?mode=rwc", path.display()))
    }

    pub fn with_signer(mut self, signer: Arc<CheckpointSigner>, every: u64) -> Self {
        self.signer = Some(signer);
        self.checkpoint_every = every;
        self
    }
}

/// The metadata store. Cheap to clone; all clones share one pool.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    /// SQLite has one writer; queueing writers here keeps them fair and off SQLite's busy loop.
    pub(crate) write_lock: Arc<Mutex<()>>,
    pub(crate) signer: Option<Arc<CheckpointSigner>>,
    pub(crate) checkpoint_every: u64,
    pub(crate) target: String,
    /// The SQLite file, for bulk reads that bypass the pool.
    pub(crate) sqlite_path: Option<std::path::PathBuf>,
}

impl Store {
    /// Opens the database, applies pending migrations, and checks it is usable.
    pub async fn open(options: StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let target = redact_url(&options.url);
        let backend = if options.url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if options.url.starts_with("postgres:") || options.url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Open {
                target,
                message: "unsupported database url (expected sqlite:// or postgres://)".into(),
            });
        };
        if backend == Backend::Sqlite {
            check_sqlite_parent(&options.url, &target)?;
            // The pool retries failed connections until its timeout; a first direct connection
            // surfaces a corrupt or unreadable file at once, with SQLite's own words.
            probe_sqlite(&options.url, &target).await?;
        }
        let pool_options = AnyPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30));
        let pool_options = match backend {
            Backend::Sqlite => pool_options.after_connect(|conn, _meta| -> BoxFuture<'_, _> {
                Box::pin(async move {
                    // WAL lets readers run beside the writer; FULL makes every commit survive
                    // power loss, not only a process crash.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    // Checkpoint every ~40 MB of WAL instead of ~4 MB: pages rewritten by
                    // consecutive commits (index interiors, latest-value rows) are copied back
                    // once, and fewer commits pay for a checkpoint on the writer's path.
                    conn.execute("PRAGMA wal_autocheckpoint = 10000").await?;
                    Ok(())
                })
            }),
            Backend::Postgres => pool_options,
        };
        let pool =
            pool_options
                .connect(&options.url)
                .await
                .map_err(|e| match classify(e, &target) {
                    StoreError::Database(message) => StoreError::Open {
                        target: target.clone(),
                        message,
                    },
                    other => other,
                })?;
        let store = Store {
            inner: Arc::new(Inner {
                pool,
                backend,
                write_lock: Arc::new(Mutex::new(())),
                signer: options.signer,
                checkpoint_every: options.checkpoint_every,
                target,
                sqlite_path: (backend == Backend::Sqlite)
                    .then(|| sqlite_file_path(&options.url))
                    .flatten(),
            }),
        };
        migrate::run(&store).await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Where the store lives, with any password removed (safe to log).
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    pub fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// A cheap query that proves the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.inner.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.inner.pool.close().await;
    }
}

async fn probe_sqlite(url: &str, target: &str) -> Result<(), StoreError> {
    use sqlx::Connection;
    let result = async {
        let mut conn = sqlx::AnyConnection::connect(url).await?;
        conn.execute("PRAGMA journal_mode = WAL").await?;
        sqlx::query("SELECT COUNT(*) FROM sqlite_master")
            .execute(&mut conn)
            .await?;
        conn.close().await
    }
    .await;
    result.map_err(|e| match classify(e, target) {
        StoreError::Database(message) => StoreError::Open {
            target: target.to_owned(),
            message,
        },
        other => other,
    })
}

/// The file a `sqlite://PATH?…` URL names (`None` for in-memory databases).
fn sqlite_file_path(url: &str) -> Option<std::path::PathBuf> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or("");
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

fn check_sqlite_parent(url: &str, target: &str) -> Result<(), StoreError> {
    let Some(path) = sqlite_file_path(url) else {
        return Ok(());
    };
    let path = path.as_path();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.is_dir()
    {
        return Err(StoreError::Open {
            target: target.to_owned(),
            message: format!("directory `{}` does not exist", parent.display()),
        });
    }
    if path.is_dir() {
        return Err(StoreError::Open {
            target: target.to_owned(),
            message: "path is a directory".into(),
        });
    }
    Ok(())
}

/// Removes the password from `scheme://user:password@host/…`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let Some(at) = rest.find('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}://{}:***{}",
            &url[..scheme_end],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

/// `INSERT … VALUES (…), (…), …` for `rows` rows of `columns` values: one statement for many
/// rows. PostgreSQL gets `$1, $2, …`; SQLite gets positional `?`, because it looks a named
/// parameter up by a linear scan, which makes binding `$n` parameters quadratic in their number.
pub(crate) fn multi_row_insert(
    backend: Backend,
    head: &str,
    columns: usize,
    rows: usize,
) -> String {
    let mut sql = String::with_capacity(head.len() + rows * columns * 5);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..columns {
            if c > 0 {
                sql.push(',');
            }
            match backend {
                Backend::Postgres => sql.push_str(&format!("${}", r * columns + c + 1)),
                Backend::Sqlite => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::{Backend, multi_row_insert, redact_url};

    #[test]
    fn multi_row_insert_numbers_placeholders_row_by_row() {
        assert_eq!(
            multi_row_insert(Backend::Postgres, "INSERT INTO t (a, b)", 2, 2),
            "INSERT INTO t (a, b) VALUES ($1,$2),($3,$4)"
        );
        assert_eq!(
            multi_row_insert(Backend::Sqlite, "INSERT INTO t (a, b)", 2, 2),
            "INSERT INTO t (a, b) VALUES (?,?),(?,?)"
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact_url("sqlite:///x/y.db"), "sqlite:///x/y.db");
    }
}
