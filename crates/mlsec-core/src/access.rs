//! Authentication and authorization: the one place that answers "may this principal do this to
//! this resource?".
//!
//! Hot path (every API and gateway call): a token is resolved from an in-process cache (hash
//! compared in constant time, expiry checked), the owner's grants come from the same cache, and
//! the Cedar policy decides. The cache is dropped whenever this process changes a credential,
//! grant or policy, and whenever the store's identity epoch moves (another replica, or the CLI,
//! changed one); the epoch is read at most once per `epoch_check_ms`, so a revocation made
//! elsewhere takes effect within that bound (1 s by default) and at once on the replica that
//! made it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use mlsec_audit::{AuditEvent, Decision as AuditDecision};
use mlsec_policy::{
    ActionSpec, Decision, Grant, PolicyEngine, Resource, Scope, Subject, TokenRestriction,
};
use mlsec_types::{Actor, ActorKind};
use time::OffsetDateTime;

use crate::error::CoreError;
use crate::secrets;
use crate::service::{Credential, Mlsec, Principal, RequestCtx};
use crate::tokens;

#[derive(Clone)]
struct CachedToken {
    secret_hash: Vec<u8>,
    principal: Principal,
    expires_at: Option<i64>,
    restriction: Arc<TokenRestriction>,
}

#[derive(Default)]
struct Cache {
    tokens: HashMap<String, CachedToken>,
    grants: HashMap<String, Arc<Vec<Grant>>>,
    /// Last refresh of `last_used_at` per token (the column is bookkeeping, refreshed ≤ 1/min).
    touched: HashMap<String, i64>,
}

pub(crate) struct AccessState {
    cache: RwLock<Cache>,
    policy: RwLock<Option<Arc<PolicyEngine>>>,
    /// (epoch seen, when it was read); `None` forces a read.
    epoch: RwLock<Option<(i64, i64)>>,
}

impl AccessState {
    pub(crate) fn new() -> Self {
        AccessState {
            cache: RwLock::new(Cache::default()),
            policy: RwLock::new(None),
            epoch: RwLock::new(None),
        }
    }

    fn clear(&self) {
        *self.cache.write().expect("cache lock") = Cache::default();
        *self.policy.write().expect("policy lock") = None;
    }
}

pub(crate) fn kind_of(kind: &str) -> ActorKind {
    match kind {
        "service_account" => ActorKind::ServiceAccount,
        _ => ActorKind::User,
    }
}

pub(crate) fn kind_name(kind: ActorKind) -> &'static str {
    match kind {
        ActorKind::ServiceAccount => "service_account",
        _ => "user",
    }
}

fn deny_event(request_id: &Option<String>, resource: String, reason: &str) -> AuditEvent {
    AuditEvent::new(
        OffsetDateTime::now_utc(),
        Actor::anonymous(),
        "auth.authenticate",
        resource,
        AuditDecision::Deny,
        reason,
    )
    .with_request_id(request_id.clone())
}

pub(crate) fn parse_grants(rows: &[mlsec_store::GrantRow]) -> Vec<Grant> {
    rows.iter()
        .filter_map(|g| {
            // A grant whose scope no longer parses grants nothing (deny by default).
            Scope::parse(&g.scope).ok().map(|scope| Grant {
                role: g.role.clone(),
                scope,
            })
        })
        .collect()
}

pub(crate) fn parse_restriction(read_only: bool, resources: Option<&str>) -> TokenRestriction {
    let resources = resources.map(|json| {
        serde_json::from_str::<Vec<String>>(json)
            .unwrap_or_default()
            .iter()
            .filter_map(|s| Scope::parse(s).ok())
            .collect::<Vec<_>>()
    });
    TokenRestriction {
        read_only,
        resources,
    }
}

impl Mlsec {
    pub(crate) fn now(&self) -> i64 {
        self.inner.config.clock.now_millis()
    }

    /// Drops every cached credential, grant and the compiled policy (after a local change).
    pub(crate) fn invalidate_access(&self) {
        self.inner.access.clear();
        *self.inner.access.epoch.write().expect("epoch lock") = None;
    }

    /// Reads the identity epoch if the last read is older than the configured interval, and
    /// drops the caches when it moved.
    async fn refresh_epoch(&self) -> Result<(), CoreError> {
        let now = self.now();
        let every = self.inner.config.access.epoch_check_ms;
        let seen = *self.inner.access.epoch.read().expect("epoch lock");
        if let Some((_, at)) = seen
            && now - at < every
            && now >= at
        {
            return Ok(());
        }
        let epoch = self.store().identity_epoch().await?;
        if seen.map(|(e, _)| e) != Some(epoch) {
            self.inner.access.clear();
        }
        *self.inner.access.epoch.write().expect("epoch lock") = Some((epoch, now));
        Ok(())
    }

    /// The policy in force, compiled once per change.
    pub(crate) async fn policy_engine(&self) -> Result<Arc<PolicyEngine>, CoreError> {
        if let Some(p) = self
            .inner
            .access
            .policy
            .read()
            .expect("policy lock")
            .as_ref()
        {
            return Ok(p.clone());
        }
        let engine = match self.store().active_policy().await? {
            Some(row) => PolicyEngine::new(&row.text).map_err(|e| {
                CoreError::Key(format!(
                    "stored policy version {} no longer validates: {e}",
                    row.version
                ))
            })?,
            None => PolicyEngine::default_policy(),
        };
        let engine = Arc::new(engine);
        *self.inner.access.policy.write().expect("policy lock") = Some(engine.clone());
        Ok(engine)
    }

    async fn grants(&self, principal_id: &str) -> Result<Arc<Vec<Grant>>, CoreError> {
        if let Some(g) = self
            .inner
            .access
            .cache
            .read()
            .expect("cache lock")
            .grants
            .get(principal_id)
        {
            return Ok(g.clone());
        }
        let grants = Arc::new(parse_grants(&self.store().grants_of(principal_id).await?));
        self.inner
            .access
            .cache
            .write()
            .expect("cache lock")
            .grants
            .insert(principal_id.to_owned(), grants.clone());
        Ok(grants)
    }

    /// Resolves a bearer token to its principal and credential. Every failure is an audit event
    /// (except a missing header: scanners and probes would drown the log).
    pub async fn authenticate(
        &self,
        bearer: Option<&str>,
        request_id: Option<String>,
    ) -> Result<RequestCtx, CoreError> {
        let Some(presented) = bearer else {
            return Err(CoreError::Unauthenticated);
        };
        let Some((id, hash)) = tokens::parse(presented) else {
            self.store()
                .append_audit(&[deny_event(
                    &request_id,
                    "token:malformed".into(),
                    "malformed token",
                )])
                .await?;
            return Err(CoreError::Unauthenticated);
        };
        self.refresh_epoch().await?;
        let now = self.now();
        let cached = self
            .inner
            .access
            .cache
            .read()
            .expect("cache lock")
            .tokens
            .get(id)
            .cloned();
        let token = match cached {
            Some(t) => t,
            None => match self.load_token(id, &request_id).await? {
                Some(t) => t,
                None => return Err(CoreError::Unauthenticated),
            },
        };
        let problem = if !tokens::hashes_match(&token.secret_hash, &hash) {
            Some("wrong secret")
        } else if token.expires_at.is_some_and(|e| e <= now) {
            Some("token expired")
        } else {
            None
        };
        if let Some(reason) = problem {
            self.store()
                .append_audit(&[deny_event(&request_id, format!("token:{id}"), reason)])
                .await?;
            return Err(CoreError::Unauthenticated);
        }
        self.touch(id, now).await?;
        Ok(RequestCtx::new(
            token.principal.clone(),
            Credential::Token {
                id: id.to_owned(),
                restriction: token.restriction.clone(),
            },
        )
        .with_request_id(request_id))
    }

    /// Loads a token from the store; records and refuses revoked tokens and disabled owners.
    async fn load_token(
        &self,
        id: &str,
        request_id: &Option<String>,
    ) -> Result<Option<CachedToken>, CoreError> {
        let deny = |reason: &str| deny_event(request_id, format!("token:{id}"), reason);
        let Some(row) = self.store().token(id).await? else {
            self.store().append_audit(&[deny("unknown token")]).await?;
            return Ok(None);
        };
        if row.revoked_at.is_some() {
            self.store().append_audit(&[deny("token revoked")]).await?;
            return Ok(None);
        }
        let owner = self.store().principal(&row.principal_id).await?;
        let Some(owner) = owner.filter(|p| !p.disabled && p.deleted_at.is_none()) else {
            self.store()
                .append_audit(&[deny("principal disabled or deleted")])
                .await?;
            return Ok(None);
        };
        let token = CachedToken {
            secret_hash: row.secret_hash.clone(),
            principal: Principal {
                kind: kind_of(&owner.kind),
                id: owner.id,
                display_name: owner.display_name,
                token_id: Some(row.id.clone()),
            },
            expires_at: row.expires_at,
            restriction: Arc::new(parse_restriction(row.read_only, row.resources.as_deref())),
        };
        let mut cache = self.inner.access.cache.write().expect("cache lock");
        cache.tokens.insert(id.to_owned(), token.clone());
        if let Some(used) = row.last_used_at {
            cache.touched.entry(id.to_owned()).or_insert(used);
        }
        Ok(Some(token))
    }

    async fn touch(&self, id: &str, now: i64) -> Result<(), CoreError> {
        let last = self
            .inner
            .access
            .cache
            .read()
            .expect("cache lock")
            .touched
            .get(id)
            .copied();
        if last.is_none_or(|t| now - t > 60_000) {
            self.inner
                .access
                .cache
                .write()
                .expect("cache lock")
                .touched
                .insert(id.to_owned(), now);
            self.store().touch_token(id, now).await?;
        }
        Ok(())
    }

    /// Decides without side effects: what the policy says about this request as it stands.
    pub async fn decide(
        &self,
        ctx: &RequestCtx,
        action: &'static ActionSpec,
        resource: &Resource,
        mfa: bool,
    ) -> Result<Decision, CoreError> {
        self.refresh_epoch().await?;
        let engine = self.policy_engine().await?;
        let grants = self.grants(&ctx.principal.id).await?;
        let unrestricted = TokenRestriction::default();
        let (restriction, session) = match &ctx.credential {
            Credential::Token { restriction, .. } => (restriction.as_ref(), false),
            Credential::Session { .. } => (&unrestricted, true),
            Credential::Local | Credential::Anonymous => (&unrestricted, false),
        };
        let subject = Subject {
            id: &ctx.principal.id,
            kind: kind_name(ctx.principal.kind),
            grants: &grants,
            restriction,
            session,
        };
        Ok(engine.decide(&subject, action, resource, mfa))
    }

    /// Whether the caller may do `action` on `resource`, without recording anything: for
    /// filtering listings to what the caller may see (a listing is not an attempt).
    pub(crate) async fn authorize_quiet(
        &self,
        ctx: &RequestCtx,
        action_name: &str,
        resource: &Resource,
    ) -> bool {
        if matches!(ctx.credential, Credential::Local) {
            return true;
        }
        let Ok(action) = mlsec_policy::action_named(action_name) else {
            return false;
        };
        self.decide(ctx, action, resource, false)
            .await
            .map(|d| d.allowed)
            .unwrap_or(false)
    }

    /// Authorizes `action` on `resource` for the caller, or records the denial and refuses.
    ///
    /// When the only obstacle is a missing second factor, a console session's recent step-up
    /// counts, and otherwise the one-time code presented with the request is verified (and
    /// consumed) now — never for actions that do not need it.
    pub async fn authorize(
        &self,
        ctx: &RequestCtx,
        action_name: &str,
        resource: &Resource,
    ) -> Result<(), CoreError> {
        if matches!(ctx.credential, Credential::Local) {
            // The local operator holds the data directory and with it every secret.
            return Ok(());
        }
        let action = mlsec_policy::action_named(action_name)
            .map_err(|e| CoreError::Key(format!("authorization of an unknown action: {e}")))?;
        let decision = self.decide(ctx, action, resource, false).await?;
        if decision.allowed {
            return Ok(());
        }
        if decision.needs_second_factor {
            if let Credential::Session {
                stepped_up_at: Some(at),
                ..
            } = &ctx.credential
                && self.now() - at <= self.inner.config.access.step_up_secs * 1000
            {
                return Ok(());
            }
            if let Some(code) = &ctx.second_factor {
                self.verify_second_factor(ctx, &ctx.principal.id, code, action_name)
                    .await?;
                return Ok(());
            }
            self.record_denial(
                ctx,
                action_name,
                resource,
                &decision,
                "second factor required",
            )
            .await?;
            return Err(CoreError::SecondFactorRequired(format!(
                "`{action_name}` needs a fresh second factor: send a one-time code in the `x-mlsec-otp` header{}",
                if matches!(ctx.credential, Credential::Session { .. }) {
                    " or step up the session"
                } else {
                    ""
                }
            )));
        }
        self.record_denial(ctx, action_name, resource, &decision, "denied by policy")
            .await?;
        Err(CoreError::PermissionDenied(format!(
            "`{}` may not `{action_name}` on `{resource}`",
            ctx.principal.id
        )))
    }

    async fn record_denial(
        &self,
        ctx: &RequestCtx,
        action: &str,
        resource: &Resource,
        decision: &Decision,
        summary: &str,
    ) -> Result<(), CoreError> {
        let event = ctx
            .event(action, resource.to_string(), AuditDecision::Deny, summary)
            .with_details(serde_json::json!({
                "reasons": decision.reasons,
                "roles": decision.roles,
                "source": ctx.source,
            }));
        self.store().append_audit(&[event]).await?;
        Ok(())
    }

    /// Verifies a TOTP or recovery code of `principal_id`, consuming it; failures count towards
    /// the account's lock.
    pub(crate) async fn verify_second_factor(
        &self,
        ctx: &RequestCtx,
        principal_id: &str,
        code: &str,
        purpose: &str,
    ) -> Result<(), CoreError> {
        self.check_not_locked(ctx, principal_id, purpose).await?;
        let now = self.now();
        let totp = self.store().totp(principal_id).await?;
        let Some(totp) = totp.filter(|t| t.confirmed_at.is_some()) else {
            self.record_failure(ctx, principal_id, purpose, "no second factor enrolled")
                .await?;
            return Err(CoreError::SecondFactorRequired(
                "no second factor is enrolled for this account: enrol one with `POST /api/v1/principals/{id}/mfa`".into(),
            ));
        };
        let secret = secrets::unseal(&self.inner.sealing_key, &totp.secret_sealed)?;
        let generator = secrets::totp(&secret, principal_id)?;
        let mut w = self.store().begin_write().await?;
        let (accepted, kind) =
            if let Some(step) = secrets::totp_step(&generator, code, (now / 1000) as u64) {
                (w.consume_totp_step(principal_id, step).await?, "totp")
            } else if let Some(hash) = secrets::recovery_code_hash(code) {
                (
                    w.use_recovery_code(principal_id, &hash, now).await?,
                    "recovery_code",
                )
            } else {
                (false, "totp")
            };
        if !accepted {
            w.rollback().await?;
            self.record_failure(
                ctx,
                principal_id,
                purpose,
                "invalid or replayed one-time code",
            )
            .await?;
            return Err(CoreError::SecondFactorRequired(
                "the one-time code is invalid or was already used".into(),
            ));
        }
        w.clear_throttle(&format!("account:{principal_id}")).await?;
        w.commit(&[ctx
            .event(
                "mfa.verify",
                format!("principal:{principal_id}"),
                AuditDecision::Allow,
                format!("second factor for {purpose}"),
            )
            .with_details(serde_json::json!({ "method": kind, "source": ctx.source }))])
            .await?;
        Ok(())
    }
}

/// Constant-time comparison of two stored hashes (sessions, CSRF tokens).
pub(crate) fn same_hash(a: &[u8], b: &[u8]) -> bool {
    secrets::hashes_equal(a, b)
}
