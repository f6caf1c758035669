//! Console sessions and brute-force protection.
//!
//! Login takes a password and, once a second factor is enrolled, a one-time code. Failures are
//! counted per account and per source address; past a threshold each further failure locks the
//! key for twice as long (1 s, 2 s, 4 s … up to 15 min), and while locked the password is not even
//! checked, so guessing gains nothing. One account's lock never affects another account.
//! Sessions are a random cookie (stored as SHA-256) plus a CSRF token that every state-changing
//! request must echo in a header.

use mlsec_audit::Decision as AuditDecision;
use mlsec_store::{SessionRow, ThrottleRow};
use serde::Serialize;

use crate::access::{kind_of, same_hash};
use crate::error::CoreError;
use crate::secrets;
use crate::service::{Credential, Mlsec, Principal, RequestCtx};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "mlsec_session";
/// Header carrying the CSRF token on state-changing requests made with a session.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A new session: the cookie value and CSRF token are shown once.
#[derive(Debug, Clone, Serialize)]
pub struct NewSession {
    #[serde(skip)]
    pub cookie_value: String,
    pub csrf_token: String,
    pub principal: String,
    pub expires_at: i64,
    pub max_age_secs: i64,
    /// Whether the account has a second factor (privileged actions need a step-up).
    pub second_factor_enrolled: bool,
}

/// What a login presents.
pub struct LoginRequest<'a> {
    pub principal: &'a str,
    pub password: &'a str,
    pub code: Option<&'a str>,
}

impl Mlsec {
    fn throttle_keys(ctx: &RequestCtx, principal_id: &str) -> Vec<(String, i64)> {
        let mut keys = Vec::with_capacity(2);
        keys.push((format!("account:{principal_id}"), 0));
        if let Some(src) = &ctx.source {
            keys.push((format!("source:{src}"), 1));
        }
        keys
    }

    /// Refuses (and records) an attempt while the account or the source address is locked.
    pub(crate) async fn check_not_locked(
        &self,
        ctx: &RequestCtx,
        principal_id: &str,
        purpose: &str,
    ) -> Result<(), CoreError> {
        let now = self.now();
        for (key, _) in Self::throttle_keys(ctx, principal_id) {
            if let Some(t) = self.store().throttle(&key).await?
                && t.locked_until > now
            {
                let retry_after_secs = ((t.locked_until - now) + 999) / 1000;
                let event = ctx
                    .event(purpose, format!("principal:{principal_id}"), AuditDecision::Deny, "locked after repeated failures")
                    .with_details(serde_json::json!({ "lock": key, "retry_after_secs": retry_after_secs, "source": ctx.source }));
                self.store().append_audit(&[event]).await?;
                return Err(CoreError::TooManyAttempts { retry_after_secs });
            }
        }
        Ok(())
    }

    /// Counts a failed password or code against the account and the source, locking them past
    /// their thresholds, and records it — in one transaction.
    pub(crate) async fn record_failure(
        &self,
        ctx: &RequestCtx,
        principal_id: &str,
        purpose: &str,
        reason: &str,
    ) -> Result<(), CoreError> {
        let cfg = &self.inner.config.access;
        let now = self.now();
        let mut w = self.store().begin_write().await?;
        let mut state = Vec::new();
        for (key, kind) in Self::throttle_keys(ctx, principal_id) {
            let old = w.throttle_in_tx(&key).await?.unwrap_or_default();
            let failures = if now - old.last_failure_at > cfg.failure_window_secs * 1000 {
                1
            } else {
                old.failures + 1
            };
            let threshold = if kind == 0 {
                cfg.account_failures_before_lock
            } else {
                cfg.source_failures_before_lock
            };
            let locked_until = if failures >= threshold {
                let doublings = (failures - threshold).min(20) as u32;
                let lock =
                    (cfg.first_lock_secs.saturating_mul(1 << doublings)).min(cfg.max_lock_secs);
                now + lock * 1000
            } else {
                old.locked_until
            };
            let row = ThrottleRow {
                failures,
                last_failure_at: now,
                locked_until,
            };
            w.put_throttle(&key, &row).await?;
            state.push(serde_json::json!({ "key": key, "failures": failures, "locked_until": (locked_until > now).then_some(locked_until) }));
        }
        w.commit(&[ctx
            .event(
                purpose,
                format!("principal:{principal_id}"),
                AuditDecision::Deny,
                reason,
            )
            .with_details(serde_json::json!({ "throttle": state, "source": ctx.source }))])
            .await?;
        Ok(())
    }

    /// Logs in with a password (and a one-time code once a second factor is enrolled).
    pub async fn login(
        &self,
        ctx: &RequestCtx,
        req: LoginRequest<'_>,
    ) -> Result<NewSession, CoreError> {
        const ACTION: &str = "session.login";
        if req.password.len() > secrets::MAX_PASSWORD_BYTES {
            return Err(CoreError::InvalidRequest("credentials are too long".into()));
        }
        // An id that cannot name an account is refused before any hashing, and leaves no
        // throttle row behind (attackers cannot fill the table with junk keys).
        crate::identity::check_principal_id(req.principal)?;
        self.check_not_locked(ctx, req.principal, ACTION).await?;
        let account = self
            .store()
            .principal(req.principal)
            .await?
            .filter(|p| !p.disabled && p.deleted_at.is_none());
        let phc = account
            .as_ref()
            .and_then(|p| p.password_hash.clone())
            .unwrap_or_else(|| secrets::dummy_password_hash().to_owned());
        let password = req.password.to_owned();
        // Argon2 takes tens of milliseconds of CPU: keep it off the async workers. Unknown
        // accounts are checked against a dummy hash so that both answers take as long.
        let password_ok =
            tokio::task::spawn_blocking(move || secrets::verify_password(&password, &phc))
                .await
                .map_err(|e| CoreError::Key(format!("password check: {e}")))?;
        let Some(account) = account.filter(|p| password_ok && p.password_hash.is_some()) else {
            self.record_failure(ctx, req.principal, ACTION, "invalid credentials")
                .await?;
            return Err(CoreError::Unauthenticated);
        };
        let enrolled = self
            .store()
            .totp(&account.id)
            .await?
            .is_some_and(|t| t.confirmed_at.is_some());
        if enrolled {
            let Some(code) = req.code else {
                return Err(CoreError::SecondFactorRequired(
                    "this account has a second factor: send `code` with the password".into(),
                ));
            };
            self.verify_second_factor(ctx, &account.id, code, ACTION)
                .await?;
        }
        let now = self.now();
        let ttl = self.inner.config.access.session_ttl_secs;
        let cookie_value = hex::encode(secrets::random_bytes::<32>());
        let csrf_token = hex::encode(secrets::random_bytes::<32>());
        let row = SessionRow {
            id_hash: secrets::sha256(cookie_value.as_bytes()),
            principal_id: account.id.clone(),
            csrf_hash: secrets::sha256(csrf_token.as_bytes()),
            created_at: now,
            expires_at: now + ttl * 1000,
            // A login that presented a code counts as a fresh step-up.
            stepped_up_at: enrolled.then_some(now),
            source: ctx.source.clone().unwrap_or_default(),
        };
        let mut w = self.store().begin_write().await?;
        w.insert_session(&row).await?;
        w.clear_throttle(&format!("account:{}", account.id)).await?;
        let mut event_ctx = ctx.clone();
        event_ctx.principal = Principal {
            id: account.id.clone(),
            kind: kind_of(&account.kind),
            display_name: account.display_name.clone(),
            token_id: None,
        };
        w.commit(&[event_ctx
            .event(
                ACTION,
                format!("principal:{}", account.id),
                AuditDecision::Allow,
                "password and second factor verified",
            )
            .with_details(serde_json::json!({ "second_factor": enrolled, "source": ctx.source }))])
            .await?;
        Ok(NewSession {
            cookie_value,
            csrf_token,
            principal: account.id,
            expires_at: row.expires_at,
            max_age_secs: ttl,
            second_factor_enrolled: enrolled,
        })
    }

    /// Resolves a session cookie. State-changing requests must carry the session's CSRF token.
    pub async fn authenticate_session(
        &self,
        cookie_value: &str,
        csrf: Option<&str>,
        changes_state: bool,
        request_id: Option<String>,
    ) -> Result<RequestCtx, CoreError> {
        if cookie_value.len() != 64 || !cookie_value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CoreError::Unauthenticated);
        }
        let id_hash = secrets::sha256(cookie_value.as_bytes());
        let now = self.now();
        let Some(session) = self
            .store()
            .session(&id_hash)
            .await?
            .filter(|s| s.expires_at > now)
        else {
            return Err(CoreError::Unauthenticated);
        };
        let owner = self
            .store()
            .principal(&session.principal_id)
            .await?
            .filter(|p| !p.disabled && p.deleted_at.is_none())
            .ok_or(CoreError::Unauthenticated)?;
        if changes_state {
            let ok =
                csrf.is_some_and(|c| same_hash(&secrets::sha256(c.as_bytes()), &session.csrf_hash));
            if !ok {
                let event = mlsec_audit::AuditEvent::new(
                    time::OffsetDateTime::now_utc(),
                    mlsec_types::Actor {
                        kind: kind_of(&owner.kind),
                        id: owner.id.clone(),
                    },
                    "auth.csrf",
                    format!("principal:{}", owner.id),
                    AuditDecision::Deny,
                    "session request without its CSRF token",
                )
                .with_request_id(request_id.clone());
                self.store().append_audit(&[event]).await?;
                return Err(CoreError::PermissionDenied(format!(
                    "state-changing requests with a session need the `{CSRF_HEADER}` header from login"
                )));
            }
        }
        Ok(RequestCtx::new(
            Principal {
                kind: kind_of(&owner.kind),
                id: owner.id,
                display_name: owner.display_name,
                token_id: None,
            },
            Credential::Session {
                id_hash,
                stepped_up_at: session.stepped_up_at,
            },
        )
        .with_request_id(request_id))
    }

    /// Refreshes a console session's second factor for the step-up window.
    pub async fn step_up(&self, ctx: &RequestCtx, code: &str) -> Result<i64, CoreError> {
        let Credential::Session { id_hash, .. } = &ctx.credential else {
            return Err(CoreError::InvalidRequest(
                "step-up applies to console sessions; API clients send `x-mlsec-otp` with each privileged request".into(),
            ));
        };
        self.verify_second_factor(ctx, &ctx.principal.id, code, "session.step_up")
            .await?;
        let now = self.now();
        let mut w = self.store().begin_write().await?;
        w.step_up_session(id_hash, now).await?;
        w.commit(&[ctx.event(
            "session.step_up",
            format!("principal:{}", ctx.principal.id),
            AuditDecision::Allow,
            "second factor verified",
        )])
        .await?;
        Ok(now + self.inner.config.access.step_up_secs * 1000)
    }

    pub async fn logout(&self, ctx: &RequestCtx) -> Result<(), CoreError> {
        let Credential::Session { id_hash, .. } = &ctx.credential else {
            return Err(CoreError::InvalidRequest("not a console session".into()));
        };
        let mut w = self.store().begin_write().await?;
        w.delete_session(id_hash).await?;
        w.commit(&[ctx.event(
            "session.logout",
            format!("principal:{}", ctx.principal.id),
            AuditDecision::Allow,
            "logged out",
        )])
        .await?;
        Ok(())
    }
}
