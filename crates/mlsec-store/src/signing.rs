//! Repositories for provenance: signing keys bound to principals, and the signed documents
//! (OMS bundles, provenance envelopes) kept with model versions.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::WriteTx;
use crate::db::Store;
use crate::error::StoreError;
use crate::principals::is_unique_violation;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRow {
    /// The key's hint (hex SHA-256 of its SPKI PEM).
    pub id: String,
    pub name: String,
    pub principal_id: String,
    pub curve: String,
    pub public_pem: String,
    /// The sealed PKCS#8 private key; `None` for a public key registered alone.
    pub private_sealed: Option<Vec<u8>>,
    pub created_at: i64,
    pub created_by: String,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
    pub revoke_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationRow {
    pub name: String,
    pub version: i64,
    pub kind: String,
    pub digest: String,
    pub key_id: String,
    pub root_digest: String,
    pub document: String,
    pub created_at: i64,
    pub created_by: String,
}

const KEY_COLUMNS: &str = "id, name, principal_id, curve, public_pem, private_sealed, created_at, created_by, revoked_at, revoked_by, revoke_reason";
const ATTESTATION_COLUMNS: &str =
    "name, version, kind, digest, key_id, root_digest, document, created_at, created_by";

fn key_from_row(r: &AnyRow) -> Result<SigningKeyRow, StoreError> {
    Ok(SigningKeyRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        principal_id: r.try_get("principal_id")?,
        curve: r.try_get("curve")?,
        public_pem: r.try_get("public_pem")?,
        private_sealed: r.try_get("private_sealed")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        revoked_at: r.try_get("revoked_at")?,
        revoked_by: r.try_get("revoked_by")?,
        revoke_reason: r.try_get("revoke_reason")?,
    })
}

fn attestation_from_row(r: &AnyRow) -> Result<AttestationRow, StoreError> {
    Ok(AttestationRow {
        name: r.try_get("name")?,
        version: r.try_get("version")?,
        kind: r.try_get("kind")?,
        digest: r.try_get("digest")?,
        key_id: r.try_get("key_id")?,
        root_digest: r.try_get("root_digest")?,
        document: r.try_get("document")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}

impl WriteTx {
    pub async fn insert_signing_key(&mut self, k: &SigningKeyRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO signing_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(&k.id)
        .bind(&k.name)
        .bind(&k.principal_id)
        .bind(&k.curve)
        .bind(&k.public_pem)
        .bind(k.private_sealed.clone())
        .bind(k.created_at)
        .bind(&k.created_by)
        .bind(k.revoked_at)
        .bind(k.revoked_by.clone())
        .bind(k.revoke_reason.clone())
        .execute(self.conn())
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists {
                    what: "signing key",
                    id: format!("{} ({})", k.name, k.id),
                }
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    /// Marks a key revoked; returns whether it was live. Revocation is never undone.
    pub async fn revoke_signing_key(
        &mut self,
        id: &str,
        at: i64,
        by: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE signing_keys SET revoked_at = $1, revoked_by = $2, revoke_reason = $3 WHERE id = $4 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(by)
        .bind(reason)
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_attestation(&mut self, a: &AttestationRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO model_version_attestations ({ATTESTATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&a.name)
        .bind(a.version)
        .bind(&a.kind)
        .bind(&a.digest)
        .bind(&a.key_id)
        .bind(&a.root_digest)
        .bind(&a.document)
        .bind(a.created_at)
        .bind(&a.created_by)
        .execute(self.conn())
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists {
                    what: "attestation",
                    id: a.digest.clone(),
                }
            } else {
                e.into()
            }
        })?;
        Ok(())
    }
}

impl Store {
    /// A key by id (hint) or, when no key has that id, by name.
    pub async fn signing_key(&self, id_or_name: &str) -> Result<Option<SigningKeyRow>, StoreError> {
        for column in ["id", "name"] {
            let row = sqlx::query(&format!(
                "SELECT {KEY_COLUMNS} FROM signing_keys WHERE {column} = $1"
            ))
            .bind(id_or_name)
            .fetch_optional(self.pool())
            .await?;
            if let Some(r) = row {
                return key_from_row(&r).map(Some);
            }
        }
        Ok(None)
    }

    /// Every key (revoked ones included: verification must see them to refuse them).
    pub async fn signing_keys(
        &self,
        principal_id: Option<&str>,
    ) -> Result<Vec<SigningKeyRow>, StoreError> {
        let rows = match principal_id {
            Some(p) => sqlx::query(&format!(
                "SELECT {KEY_COLUMNS} FROM signing_keys WHERE principal_id = $1 ORDER BY created_at, id"
            ))
            .bind(p)
            .fetch_all(self.pool())
            .await?,
            None => sqlx::query(&format!(
                "SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at, id"
            ))
            .fetch_all(self.pool())
            .await?,
        };
        rows.iter().map(key_from_row).collect()
    }

    pub async fn attestations(
        &self,
        name: &str,
        version: i64,
    ) -> Result<Vec<AttestationRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ATTESTATION_COLUMNS} FROM model_version_attestations WHERE name = $1 AND version = $2 ORDER BY created_at, digest"
        ))
        .bind(name)
        .bind(version)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(attestation_from_row).collect()
    }
}
