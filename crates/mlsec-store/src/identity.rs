//! Repositories for identity and access: role grants, second factors, console sessions,
//! brute-force throttles, the versioned policy and the identity epoch.
//!
//! Every change here goes through a [`WriteTx`] (so it commits with its audit event); changes
//! that can take a credential's power away also bump the identity epoch in the same
//! transaction, which tells every replica to drop its cached credentials.

use sqlx::Row;

use crate::audit::WriteTx;
use crate::db::Store;
use crate::error::StoreError;
use crate::principals::is_unique_violation;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    pub principal_id: String,
    pub role: String,
    pub scope: String,
    pub created_at: i64,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpRow {
    pub principal_id: String,
    pub secret_sealed: Vec<u8>,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub last_step: i64,
}

/// A console session; the cookie value and CSRF token are stored only as SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id_hash: Vec<u8>,
    pub principal_id: String,
    pub csrf_hash: Vec<u8>,
    pub created_at: i64,
    pub expires_at: i64,
    pub stepped_up_at: Option<i64>,
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThrottleRow {
    pub failures: i64,
    pub last_failure_at: i64,
    pub locked_until: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRow {
    pub version: i64,
    pub text: String,
    pub digest: String,
    pub created_at: i64,
    pub created_by: String,
}

impl WriteTx {
    /// Makes every replica drop cached credentials (at its next epoch check).
    pub async fn bump_identity_epoch(&mut self) -> Result<(), StoreError> {
        sqlx::query("UPDATE identity_epoch SET epoch = epoch + 1 WHERE id = 1")
            .execute(self.conn())
            .await?;
        Ok(())
    }

    pub async fn update_principal(
        &mut self,
        id: &str,
        display_name: Option<&str>,
        disabled: Option<bool>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE principals SET display_name = COALESCE($1, display_name),
                 disabled = COALESCE($2, disabled), updated_at = $3
             WHERE id = $4 AND deleted_at IS NULL",
        )
        .bind(display_name.map(str::to_owned))
        .bind(disabled.map(i64::from))
        .bind(now)
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn set_password(
        &mut self,
        id: &str,
        hash: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE principals SET password_hash = $1, updated_at = $2 WHERE id = $3 AND deleted_at IS NULL",
        )
        .bind(hash.map(str::to_owned))
        .bind(now)
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Deletes a principal: its credentials, grants, factors and sessions go; a tombstone row
    /// stays so that the id (which the audit log refers to) is never given to someone else.
    pub async fn delete_principal(&mut self, id: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE principals SET deleted_at = $1, disabled = 1, password_hash = NULL, updated_at = $1
             WHERE id = $2 AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(self.conn())
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE principal_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(self.conn())
        .await?;
        for table in ["role_grants", "mfa_totp", "mfa_recovery_codes", "sessions"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE principal_id = $1"))
                .bind(id)
                .execute(self.conn())
                .await?;
        }
        Ok(true)
    }

    /// Revokes a token; `false` if it was unknown or already revoked.
    pub async fn revoke_token(&mut self, id: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Adds a grant; `false` if the principal already held it.
    pub async fn insert_grant(&mut self, g: &GrantRow) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO role_grants (principal_id, role, scope, created_at, created_by) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (principal_id, role, scope) DO NOTHING",
        )
        .bind(&g.principal_id)
        .bind(&g.role)
        .bind(&g.scope)
        .bind(g.created_at)
        .bind(&g.created_by)
        .execute(self.conn())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn delete_grant(
        &mut self,
        principal_id: &str,
        role: &str,
        scope: &str,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "DELETE FROM role_grants WHERE principal_id = $1 AND role = $2 AND scope = $3",
        )
        .bind(principal_id)
        .bind(role)
        .bind(scope)
        .execute(self.conn())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Starts (or restarts, while unconfirmed) a TOTP enrolment.
    pub async fn put_totp(&mut self, t: &TotpRow) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM mfa_totp WHERE principal_id = $1 AND confirmed_at IS NULL")
            .bind(&t.principal_id)
            .execute(self.conn())
            .await?;
        sqlx::query(
            "INSERT INTO mfa_totp (principal_id, secret_sealed, created_at, confirmed_at, last_step) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&t.principal_id)
        .bind(t.secret_sealed.clone())
        .bind(t.created_at)
        .bind(t.confirmed_at)
        .bind(t.last_step)
        .execute(self.conn())
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists {
                    what: "second factor",
                    id: t.principal_id.clone(),
                }
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    pub async fn confirm_totp(&mut self, principal_id: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE mfa_totp SET confirmed_at = $1 WHERE principal_id = $2 AND confirmed_at IS NULL",
        )
        .bind(now)
        .bind(principal_id)
        .execute(self.conn())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Accepts time step `step` for `principal_id` only if it is newer than every step accepted
    /// before: the check and the update are one statement, so two replicas cannot both accept
    /// the same code.
    pub async fn consume_totp_step(
        &mut self,
        principal_id: &str,
        step: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE mfa_totp SET last_step = $1 WHERE principal_id = $2 AND last_step < $1",
        )
        .bind(step)
        .bind(principal_id)
        .execute(self.conn())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn delete_totp(&mut self, principal_id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM mfa_totp WHERE principal_id = $1")
            .bind(principal_id)
            .execute(self.conn())
            .await?;
        sqlx::query("DELETE FROM mfa_recovery_codes WHERE principal_id = $1")
            .bind(principal_id)
            .execute(self.conn())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Replaces the recovery codes of a principal.
    pub async fn put_recovery_codes(
        &mut self,
        principal_id: &str,
        hashes: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM mfa_recovery_codes WHERE principal_id = $1")
            .bind(principal_id)
            .execute(self.conn())
            .await?;
        for h in hashes {
            sqlx::query("INSERT INTO mfa_recovery_codes (principal_id, code_hash) VALUES ($1, $2)")
                .bind(principal_id)
                .bind(h.clone())
                .execute(self.conn())
                .await?;
        }
        Ok(())
    }

    /// Uses a recovery code once; `false` if unknown or already used.
    pub async fn use_recovery_code(
        &mut self,
        principal_id: &str,
        hash: &[u8],
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE mfa_recovery_codes SET used_at = $1 WHERE principal_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(principal_id)
        .bind(hash.to_vec())
        .execute(self.conn())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn insert_session(&mut self, s: &SessionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, principal_id, csrf_hash, created_at, expires_at, stepped_up_at, source)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(s.id_hash.clone())
        .bind(&s.principal_id)
        .bind(s.csrf_hash.clone())
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(s.stepped_up_at)
        .bind(&s.source)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn step_up_session(&mut self, id_hash: &[u8], now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE sessions SET stepped_up_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(id_hash.to_vec())
            .execute(self.conn())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn delete_session(&mut self, id_hash: &[u8]) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash.to_vec())
            .execute(self.conn())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn delete_sessions_of(&mut self, principal_id: &str) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM sessions WHERE principal_id = $1")
            .bind(principal_id)
            .execute(self.conn())
            .await?;
        Ok(r.rows_affected())
    }

    pub async fn put_throttle(&mut self, key: &str, t: &ThrottleRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO auth_throttle (key, failures, last_failure_at, locked_until) VALUES ($1, $2, $3, $4)
             ON CONFLICT (key) DO UPDATE SET failures = $2, last_failure_at = $3, locked_until = $4",
        )
        .bind(key)
        .bind(t.failures)
        .bind(t.last_failure_at)
        .bind(t.locked_until)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn clear_throttle(&mut self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM auth_throttle WHERE key = $1")
            .bind(key)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Stores a new policy version (the highest version is the one in force).
    pub async fn insert_policy(&mut self, p: &PolicyRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO policies (version, text, digest, created_at, created_by) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(p.version)
        .bind(&p.text)
        .bind(&p.digest)
        .bind(p.created_at)
        .bind(&p.created_by)
        .execute(self.conn())
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists {
                    what: "policy version",
                    id: p.version.to_string(),
                }
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    /// The grants of a principal, read inside the transaction.
    pub async fn grants_of_in_tx(
        &mut self,
        principal_id: &str,
    ) -> Result<Vec<GrantRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM role_grants WHERE principal_id = $1"
        ))
        .bind(principal_id)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(grant_from_row).collect()
    }

    /// The throttle state of a key, read inside the transaction (the row the update replaces).
    pub async fn throttle_in_tx(&mut self, key: &str) -> Result<Option<ThrottleRow>, StoreError> {
        let row = sqlx::query(
            "SELECT failures, last_failure_at, locked_until FROM auth_throttle WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(self.conn())
        .await?;
        row.map(|r| throttle_from_row(&r)).transpose()
    }

    /// The newest policy version number, read inside the transaction.
    pub async fn policy_version_in_tx(&mut self) -> Result<i64, StoreError> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM policies")
            .fetch_one(self.conn())
            .await?;
        Ok(v.unwrap_or(0))
    }
}

const GRANT_COLUMNS: &str = "principal_id, role, scope, created_at, created_by";

fn grant_from_row(r: &sqlx::any::AnyRow) -> Result<GrantRow, StoreError> {
    Ok(GrantRow {
        principal_id: r.try_get("principal_id")?,
        role: r.try_get("role")?,
        scope: r.try_get("scope")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}

fn throttle_from_row(r: &sqlx::any::AnyRow) -> Result<ThrottleRow, StoreError> {
    Ok(ThrottleRow {
        failures: r.try_get("failures")?,
        last_failure_at: r.try_get("last_failure_at")?,
        locked_until: r.try_get("locked_until")?,
    })
}

impl Store {
    pub async fn identity_epoch(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT epoch FROM identity_epoch WHERE id = 1")
                .fetch_one(self.pool())
                .await?,
        )
    }

    pub async fn grants_of(&self, principal_id: &str) -> Result<Vec<GrantRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM role_grants WHERE principal_id = $1 ORDER BY role, scope"
        ))
        .bind(principal_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(grant_from_row).collect()
    }

    pub async fn totp(&self, principal_id: &str) -> Result<Option<TotpRow>, StoreError> {
        let row = sqlx::query(
            "SELECT principal_id, secret_sealed, created_at, confirmed_at, last_step FROM mfa_totp WHERE principal_id = $1",
        )
        .bind(principal_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(TotpRow {
                principal_id: r.try_get("principal_id")?,
                secret_sealed: r.try_get("secret_sealed")?,
                created_at: r.try_get("created_at")?,
                confirmed_at: r.try_get("confirmed_at")?,
                last_step: r.try_get("last_step")?,
            })
        })
        .transpose()
    }

    /// Unused recovery codes left.
    pub async fn recovery_codes_left(&self, principal_id: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM mfa_recovery_codes WHERE principal_id = $1 AND used_at IS NULL",
        )
        .bind(principal_id)
        .fetch_one(self.pool())
        .await?;
        Ok(n as u64)
    }

    pub async fn session(&self, id_hash: &[u8]) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id_hash, principal_id, csrf_hash, created_at, expires_at, stepped_up_at, source FROM sessions WHERE id_hash = $1",
        )
        .bind(id_hash.to_vec())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(SessionRow {
                id_hash: r.try_get("id_hash")?,
                principal_id: r.try_get("principal_id")?,
                csrf_hash: r.try_get("csrf_hash")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
                stepped_up_at: r.try_get("stepped_up_at")?,
                source: r.try_get("source")?,
            })
        })
        .transpose()
    }

    pub async fn throttle(&self, key: &str) -> Result<Option<ThrottleRow>, StoreError> {
        let row = sqlx::query(
            "SELECT failures, last_failure_at, locked_until FROM auth_throttle WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| throttle_from_row(&r)).transpose()
    }

    /// The policy in force (the newest version), if one was ever stored.
    pub async fn active_policy(&self) -> Result<Option<PolicyRow>, StoreError> {
        let row = sqlx::query(
            "SELECT version, text, digest, created_at, created_by FROM policies ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(PolicyRow {
                version: r.try_get("version")?,
                text: r.try_get("text")?,
                digest: r.try_get("digest")?,
                created_at: r.try_get("created_at")?,
                created_by: r.try_get("created_by")?,
            })
        })
        .transpose()
    }
}
