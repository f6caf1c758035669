//! Repositories for principals, API tokens and blob records.

use mlsec_types::Digest;
use sqlx::Row;

use crate::audit::WriteTx;
use crate::db::Store;
use crate::error::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalRow {
    pub id: String,
    /// `user` or `service_account`.
    pub kind: String,
    pub display_name: String,
    pub disabled: bool,
    pub created_at: i64,
    /// Argon2id PHC string; `None` for service accounts and users without a console login.
    pub password_hash: Option<String>,
    /// Set when the principal was deleted: the row stays so that its id is never reused.
    pub deleted_at: Option<i64>,
}

/// A stored API token: only the SHA-256 of its secret, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub principal_id: String,
    pub name: String,
    pub secret_hash: Vec<u8>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub read_only: bool,
    /// JSON array of scopes the token is limited to.
    pub resources: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRow {
    pub digest: Digest,
    pub size: u64,
    pub created_at: i64,
    pub created_by: String,
}

const PRINCIPAL_COLUMNS: &str =
    "id, kind, display_name, disabled, created_at, password_hash, deleted_at";
const TOKEN_COLUMNS: &str = "id, principal_id, name, secret_hash, created_at, expires_at, revoked_at, last_used_at, read_only, resources";

fn principal_from_row(row: &sqlx::any::AnyRow) -> Result<PrincipalRow, StoreError> {
    Ok(PrincipalRow {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        display_name: row.try_get("display_name")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: row.try_get("created_at")?,
        password_hash: row.try_get("password_hash")?,
        deleted_at: row.try_get("deleted_at")?,
    })
}

fn token_from_row(row: &sqlx::any::AnyRow) -> Result<TokenRow, StoreError> {
    Ok(TokenRow {
        id: row.try_get("id")?,
        principal_id: row.try_get("principal_id")?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        last_used_at: row.try_get("last_used_at")?,
        read_only: row.try_get::<i64, _>("read_only")? != 0,
        resources: row.try_get("resources")?,
    })
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl WriteTx {
    pub async fn insert_principal(&mut self, p: &PrincipalRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO principals (id, kind, display_name, disabled, created_at, password_hash, deleted_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&p.id)
        .bind(&p.kind)
        .bind(&p.display_name)
        .bind(i64::from(p.disabled))
        .bind(p.created_at)
        .bind(p.password_hash.clone())
        .bind(p.deleted_at)
        .execute(self.conn())
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists {
                    what: "principal",
                    id: p.id.clone(),
                }
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    pub async fn insert_token(&mut self, t: &TokenRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, principal_id, name, secret_hash, created_at, expires_at, revoked_at, last_used_at, read_only, resources)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&t.id)
        .bind(&t.principal_id)
        .bind(&t.name)
        .bind(t.secret_hash.clone())
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.revoked_at)
        .bind(t.last_used_at)
        .bind(i64::from(t.read_only))
        .bind(t.resources.clone())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Records a blob; recording the same digest again is a no-op. Returns whether it was new.
    pub async fn insert_blob(&mut self, b: &BlobRow) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO blobs (digest, size, created_at, created_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (digest) DO NOTHING",
        )
        .bind(b.digest.to_string())
        .bind(b.size as i64)
        .bind(b.created_at)
        .bind(&b.created_by)
        .execute(self.conn())
        .await?;
        Ok(result.rows_affected() == 1)
    }
}

impl Store {
    /// The principal, deleted ones included (callers check `deleted_at`).
    pub async fn principal(&self, id: &str) -> Result<Option<PrincipalRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| principal_from_row(&r)).transpose()
    }

    /// Every principal that is not deleted, by id.
    pub async fn principals(&self) -> Result<Vec<PrincipalRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE deleted_at IS NULL ORDER BY id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(principal_from_row).collect()
    }

    pub async fn token(&self, id: &str) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| token_from_row(&r)).transpose()
    }

    /// Every token of a principal, newest first.
    pub async fn tokens_of(&self, principal_id: &str) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE principal_id = $1 ORDER BY created_at DESC, id"
        ))
        .bind(principal_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Bookkeeping, not a security decision: not audited, and throttled by the caller.
    pub async fn touch_token(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn blob(&self, digest: &Digest) -> Result<Option<BlobRow>, StoreError> {
        let row =
            sqlx::query("SELECT digest, size, created_at, created_by FROM blobs WHERE digest = $1")
                .bind(digest.to_string())
                .fetch_optional(self.pool())
                .await?;
        row.map(|row| {
            let text: String = row.try_get("digest")?;
            Ok(BlobRow {
                digest: Digest::parse(&text)
                    .map_err(|e| StoreError::Inconsistent(e.to_string()))?,
                size: row.try_get::<i64, _>("size")? as u64,
                created_at: row.try_get("created_at")?,
                created_by: row.try_get("created_by")?,
            })
        })
        .transpose()
    }

    pub async fn blob_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blobs")
            .fetch_one(self.pool())
            .await?;
        Ok(n as u64)
    }
}
