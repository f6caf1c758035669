//! Versioned migrations, one folder per backend. Applied on start, each in its own transaction,
//! recorded with a checksum; running them again is a no-op, and a migration edited after it was
//! applied stops the server instead of silently diverging.

use sqlx::Acquire;

use crate::db::{Backend, Store};
use crate::error::StoreError;
use mlsec_types::Digest;

pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sql: include_str!("../migrations/sqlite/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "identity",
        sql: include_str!("../migrations/sqlite/0002_identity.sql"),
    },
    Migration {
        version: 3,
        name: "datasets",
        sql: include_str!("../migrations/sqlite/0003_datasets.sql"),
    },
    Migration {
        version: 4,
        name: "tracking",
        sql: include_str!("../migrations/sqlite/0004_tracking.sql"),
    },
    Migration {
        version: 5,
        name: "signing",
        sql: include_str!("../migrations/sqlite/0005_signing.sql"),
    },
];

const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sql: include_str!("../migrations/postgres/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "identity",
        sql: include_str!("../migrations/postgres/0002_identity.sql"),
    },
    Migration {
        version: 3,
        name: "datasets",
        sql: include_str!("../migrations/postgres/0003_datasets.sql"),
    },
    Migration {
        version: 4,
        name: "tracking",
        sql: include_str!("../migrations/postgres/0004_tracking.sql"),
    },
    Migration {
        version: 5,
        name: "signing",
        sql: include_str!("../migrations/postgres/0005_signing.sql"),
    },
];

/// Arbitrary constant naming the migration lock among PostgreSQL advisory locks.
const PG_MIGRATION_LOCK: i64 = 0x6d6c_7365_635f_6d67;

pub(crate) fn migrations(backend: Backend) -> &'static [Migration] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

pub(crate) async fn run(store: &Store) -> Result<(), StoreError> {
    let backend = store.backend();
    let target = store.target().to_owned();
    let mut conn = store.pool().acquire().await?;
    if backend == Backend::Postgres {
        // Replicas starting together: one migrates, the others wait and then find nothing to do.
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(PG_MIGRATION_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    let result = apply_pending(&mut conn, backend, &target).await;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(PG_MIGRATION_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    result
}

async fn apply_pending(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    target: &str,
) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL,
            applied_at BIGINT NOT NULL
        )",
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| crate::error::classify(e, target))?;

    let applied: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await?;
    let known = migrations(backend);
    let newest_known = known.last().map(|m| m.version).unwrap_or(0);
    if let Some((found, _, _)) = applied.iter().find(|(v, _, _)| *v > newest_known) {
        return Err(StoreError::TooNew {
            found: *found,
            known: newest_known,
        });
    }
    for migration in known {
        let checksum = Digest::of(migration.sql.as_bytes()).to_string();
        if let Some((_, _, recorded)) = applied.iter().find(|(v, _, _)| *v == migration.version) {
            if *recorded != checksum {
                return Err(StoreError::MigrationChanged {
                    version: migration.version,
                    name: migration.name.to_owned(),
                });
            }
            continue;
        }
        let fail = |e: sqlx::Error| StoreError::Migration {
            version: migration.version,
            name: migration.name.to_owned(),
            message: e.to_string(),
        };
        let mut tx = conn.begin().await.map_err(fail)?;
        sqlx::raw_sql(migration.sql)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(&checksum)
        .bind(crate::audit::now_millis())
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied migration"
        );
    }
    Ok(())
}
