//! Accounts, API tokens, role grants, second factors and the policy: each use case authorizes,
//! changes the store and records its audit event in one transaction, and changes that can take
//! power away bump the identity epoch so that every replica drops cached credentials.

use mlsec_audit::Decision as AuditDecision;
use mlsec_policy::{
    Decision, PolicyEngine, ROLES, Resource, ResourceType, Scope, TokenRestriction,
};
use mlsec_store::{GrantRow, PolicyRow, PrincipalRow, TokenRow, TotpRow};
use mlsec_types::Digest;
use serde::Serialize;

use crate::access::kind_name;
use crate::error::CoreError;
use crate::secrets;
use crate::service::{Credential, Mlsec, RequestCtx};
use crate::tokens::ApiToken;

/// Longest display or token name accepted.
const MAX_LABEL: usize = 256;
/// Recovery codes issued at enrolment.
const RECOVERY_CODES: usize = 10;

/// An account as clients see it (never a secret).
#[derive(Debug, Clone, Serialize)]
pub struct PrincipalView {
    pub id: String,
    /// `user` or `service_account`.
    pub kind: String,
    pub display_name: String,
    pub disabled: bool,
    pub created_at: i64,
    pub has_password: bool,
    pub second_factor: bool,
    pub roles: Vec<GrantView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GrantView {
    pub role: String,
    pub scope: String,
}

/// A token as clients see it: the secret is shown only at creation.
#[derive(Debug, Clone, Serialize)]
pub struct TokenView {
    pub id: String,
    pub principal: String,
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub read_only: bool,
    pub resources: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CreatedToken {
    /// The token itself: shown once, stored only as a hash.
    pub token: String,
    #[serde(flatten)]
    pub view: TokenView,
}

/// What a new account needs.
#[derive(Debug, Clone, Default)]
pub struct NewPrincipal {
    pub id: String,
    pub service_account: bool,
    pub display_name: Option<String>,
    pub password: Option<String>,
}

/// What a new token carries.
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    pub name: String,
    /// Lifetime in days; `None` takes the configured default, `Some(0)` never expires.
    pub expires_in_days: Option<i64>,
    pub read_only: bool,
    pub resources: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TotpEnrolment {
    /// Base32 key for manual entry.
    pub secret: String,
    pub otpauth_uri: String,
    /// The URI as a QR code, SVG.
    pub qr_svg: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MfaStatus {
    pub enrolled: bool,
    pub pending: bool,
    pub recovery_codes_left: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyView {
    pub version: i64,
    pub digest: String,
    pub text: String,
    pub updated_at: Option<i64>,
    pub updated_by: Option<String>,
}

/// Account ids: lowercase letters, digits, `.`, `_`, `-`, starting with a letter or digit. They
/// appear in audit resources (`principal:<id>`) and scopes, so nothing else is allowed.
pub fn check_principal_id(id: &str) -> Result<(), CoreError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if !ok || matches!(id, "system" | "anonymous") {
        return Err(CoreError::InvalidRequest(format!(
            "account id `{}`: use 1–64 of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit",
            id.escape_debug()
        )));
    }
    Ok(())
}

fn check_label(what: &str, text: &str) -> Result<(), CoreError> {
    if text.trim().is_empty() || text.len() > MAX_LABEL || text.chars().any(char::is_control) {
        return Err(CoreError::InvalidRequest(format!(
            "{what} must be 1–{MAX_LABEL} bytes of printable text"
        )));
    }
    Ok(())
}

fn principal_resource(id: &str) -> Resource {
    Resource::new(ResourceType::Principal, id)
}

fn token_view(t: &TokenRow) -> TokenView {
    TokenView {
        id: t.id.clone(),
        principal: t.principal_id.clone(),
        name: t.name.clone(),
        created_at: t.created_at,
        expires_at: t.expires_at,
        revoked_at: t.revoked_at,
        last_used_at: t.last_used_at,
        read_only: t.read_only,
        resources: t
            .resources
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok()),
    }
}

fn not_found(what: &'static str, id: &str) -> CoreError {
    CoreError::NotFound {
        what,
        id: id.to_owned(),
    }
}

impl Mlsec {
    pub(crate) async fn live_principal(&self, id: &str) -> Result<PrincipalRow, CoreError> {
        self.store()
            .principal(id)
            .await?
            .filter(|p| p.deleted_at.is_none())
            .ok_or_else(|| not_found("principal", id))
    }

    async fn view(&self, p: PrincipalRow) -> Result<PrincipalView, CoreError> {
        let totp = self.store().totp(&p.id).await?;
        let roles = self
            .store()
            .grants_of(&p.id)
            .await?
            .into_iter()
            .map(|g| GrantView {
                role: g.role,
                scope: g.scope,
            })
            .collect();
        Ok(PrincipalView {
            has_password: p.password_hash.is_some(),
            second_factor: totp.is_some_and(|t| t.confirmed_at.is_some()),
            id: p.id,
            kind: p.kind,
            display_name: p.display_name,
            disabled: p.disabled,
            created_at: p.created_at,
            roles,
        })
    }

    pub async fn list_principals(&self, ctx: &RequestCtx) -> Result<Vec<PrincipalView>, CoreError> {
        self.authorize(ctx, "principal.read", &principal_resource("*"))
            .await?;
        let mut out = Vec::new();
        for p in self.store().principals().await? {
            out.push(self.view(p).await?);
        }
        Ok(out)
    }

    pub async fn get_principal(
        &self,
        ctx: &RequestCtx,
        id: &str,
    ) -> Result<PrincipalView, CoreError> {
        self.authorize(ctx, "principal.read", &principal_resource(id))
            .await?;
        let p = self.live_principal(id).await?;
        self.view(p).await
    }

    pub async fn create_principal(
        &self,
        ctx: &RequestCtx,
        new: NewPrincipal,
    ) -> Result<PrincipalView, CoreError> {
        check_principal_id(&new.id)?;
        self.authorize(ctx, "principal.write", &principal_resource(&new.id))
            .await?;
        let display_name = new.display_name.clone().unwrap_or_else(|| new.id.clone());
        check_label("display name", &display_name)?;
        if new.service_account && new.password.is_some() {
            return Err(CoreError::InvalidRequest(
                "service accounts authenticate with tokens, not passwords".into(),
            ));
        }
        let password_hash = match new.password {
            Some(pw) => Some(secrets::hash_new_password(pw).await?),
            None => None,
        };
        let row = PrincipalRow {
            id: new.id.clone(),
            kind: if new.service_account {
                "service_account"
            } else {
                "user"
            }
            .into(),
            display_name,
            disabled: false,
            created_at: self.now(),
            password_hash,
            deleted_at: None,
        };
        let mut w = self.store().begin_write().await?;
        w.insert_principal(&row).await?;
        w.commit(&[ctx
            .event("principal.create", format!("principal:{}", row.id), AuditDecision::Allow, "created")
            .with_details(serde_json::json!({ "kind": row.kind, "display_name": row.display_name, "password": row.password_hash.is_some() }))])
            .await?;
        self.view(row).await
    }

    /// Changes the display name and/or the disabled flag. Disabling takes effect at once: the
    /// account's sessions are deleted and cached tokens dropped.
    pub async fn update_principal(
        &self,
        ctx: &RequestCtx,
        id: &str,
        display_name: Option<String>,
        disabled: Option<bool>,
    ) -> Result<PrincipalView, CoreError> {
        self.authorize(ctx, "principal.write", &principal_resource(id))
            .await?;
        if let Some(n) = &display_name {
            check_label("display name", n)?;
        }
        let mut w = self.store().begin_write().await?;
        if !w
            .update_principal(id, display_name.as_deref(), disabled, self.now())
            .await?
        {
            w.rollback().await?;
            return Err(not_found("principal", id));
        }
        if disabled == Some(true) {
            w.delete_sessions_of(id).await?;
        }
        w.bump_identity_epoch().await?;
        let action = match disabled {
            Some(true) => "principal.disable",
            Some(false) => "principal.enable",
            None => "principal.update",
        };
        w.commit(&[ctx
            .event(
                action,
                format!("principal:{id}"),
                AuditDecision::Allow,
                "updated",
            )
            .with_details(
                serde_json::json!({ "display_name": display_name, "disabled": disabled }),
            )])
        .await?;
        self.invalidate_access();
        let p = self.live_principal(id).await?;
        self.view(p).await
    }

    /// Deletes an account: tokens revoked, grants, factors and sessions removed; the id stays
    /// reserved (the audit log refers to it).
    pub async fn delete_principal(&self, ctx: &RequestCtx, id: &str) -> Result<(), CoreError> {
        self.authorize(ctx, "principal.write", &principal_resource(id))
            .await?;
        if id == ctx.principal.id {
            return Err(CoreError::Conflict(
                "an account cannot delete itself".into(),
            ));
        }
        let mut w = self.store().begin_write().await?;
        if !w.delete_principal(id, self.now()).await? {
            w.rollback().await?;
            return Err(not_found("principal", id));
        }
        w.bump_identity_epoch().await?;
        w.commit(&[ctx.event(
            "principal.delete",
            format!("principal:{id}"),
            AuditDecision::Allow,
            "deleted",
        )])
        .await?;
        self.invalidate_access();
        Ok(())
    }

    pub async fn set_password(
        &self,
        ctx: &RequestCtx,
        id: &str,
        password: Option<String>,
    ) -> Result<(), CoreError> {
        self.authorize(ctx, "principal.password", &principal_resource(id))
            .await?;
        let p = self.live_principal(id).await?;
        if p.kind == "service_account" && password.is_some() {
            return Err(CoreError::InvalidRequest(
                "service accounts authenticate with tokens, not passwords".into(),
            ));
        }
        let hash = match password {
            Some(pw) => Some(secrets::hash_new_password(pw).await?),
            None => None,
        };
        let mut w = self.store().begin_write().await?;
        w.set_password(id, hash.as_deref(), self.now()).await?;
        // A new password ends every other session of the account.
        w.delete_sessions_of(id).await?;
        w.commit(&[ctx.event(
            "principal.password",
            format!("principal:{id}"),
            AuditDecision::Allow,
            if hash.is_some() {
                "password set"
            } else {
                "password removed"
            },
        )])
        .await?;
        Ok(())
    }

    pub async fn create_token(
        &self,
        ctx: &RequestCtx,
        owner: &str,
        new: NewToken,
    ) -> Result<CreatedToken, CoreError> {
        self.authorize(ctx, "token.create", &principal_resource(owner))
            .await?;
        check_label("token name", &new.name)?;
        let owner_row = self.live_principal(owner).await?;
        if owner_row.disabled {
            return Err(CoreError::Conflict(format!(
                "account `{owner}` is disabled"
            )));
        }
        let days = new
            .expires_in_days
            .unwrap_or(self.inner.config.access.token_ttl_days);
        if !(0..=3650).contains(&days) {
            return Err(CoreError::InvalidRequest(
                "expires_in_days must be 0–3650 (0: never)".into(),
            ));
        }
        let resources = match &new.resources {
            Some(list) => {
                if list.is_empty() || list.len() > 64 {
                    return Err(CoreError::InvalidRequest(
                        "a token names 1–64 resource scopes".into(),
                    ));
                }
                for s in list {
                    Scope::parse(s).map_err(|e| CoreError::InvalidRequest(e.to_string()))?;
                }
                Some(serde_json::to_string(list).expect("strings serialise"))
            }
            None => None,
        };
        let now = self.now();
        let token = ApiToken::generate();
        let row = TokenRow {
            id: token.id.clone(),
            principal_id: owner.to_owned(),
            name: new.name.clone(),
            secret_hash: token.secret_hash.as_bytes().to_vec(),
            created_at: now,
            expires_at: (days > 0).then(|| now + days * 86_400_000),
            revoked_at: None,
            last_used_at: None,
            read_only: new.read_only,
            resources,
        };
        let mut w = self.store().begin_write().await?;
        w.insert_token(&row).await?;
        w.commit(&[ctx
            .event("token.create", format!("token:{}", row.id), AuditDecision::Allow, "created")
            .with_details(serde_json::json!({ "principal": owner, "name": row.name, "expires_at": row.expires_at, "read_only": row.read_only, "resources": new.resources }))])
            .await?;
        Ok(CreatedToken {
            token: token.secret_text,
            view: token_view(&row),
        })
    }

    pub async fn list_tokens(
        &self,
        ctx: &RequestCtx,
        owner: &str,
    ) -> Result<Vec<TokenView>, CoreError> {
        self.authorize(ctx, "principal.read", &principal_resource(owner))
            .await?;
        self.live_principal(owner).await?;
        Ok(self
            .store()
            .tokens_of(owner)
            .await?
            .iter()
            .map(token_view)
            .collect())
    }

    pub async fn revoke_token(
        &self,
        ctx: &RequestCtx,
        token_id: &str,
    ) -> Result<TokenView, CoreError> {
        let row = self
            .store()
            .token(token_id)
            .await?
            .ok_or_else(|| not_found("token", token_id))?;
        self.authorize(ctx, "token.revoke", &principal_resource(&row.principal_id))
            .await?;
        let now = self.now();
        let mut w = self.store().begin_write().await?;
        if !w.revoke_token(token_id, now).await? {
            w.rollback().await?;
            return Err(CoreError::Conflict(format!(
                "token `{token_id}` is already revoked"
            )));
        }
        w.bump_identity_epoch().await?;
        w.commit(&[ctx
            .event(
                "token.revoke",
                format!("token:{token_id}"),
                AuditDecision::Allow,
                "revoked",
            )
            .with_details(serde_json::json!({ "principal": row.principal_id }))])
            .await?;
        self.invalidate_access();
        let row = self
            .store()
            .token(token_id)
            .await?
            .ok_or_else(|| not_found("token", token_id))?;
        Ok(token_view(&row))
    }

    pub async fn grant_role(
        &self,
        ctx: &RequestCtx,
        principal_id: &str,
        role: &str,
        scope: &str,
    ) -> Result<bool, CoreError> {
        self.authorize(ctx, "role.grant", &principal_resource(principal_id))
            .await?;
        if mlsec_policy::catalog::role(role).is_none() {
            return Err(CoreError::InvalidRequest(format!(
                "unknown role `{}` (roles: {})",
                role.escape_debug(),
                ROLES.iter().map(|r| r.name).collect::<Vec<_>>().join(", ")
            )));
        }
        let scope = Scope::parse(scope).map_err(|e| CoreError::InvalidRequest(e.to_string()))?;
        self.live_principal(principal_id).await?;
        let mut w = self.store().begin_write().await?;
        let added = w
            .insert_grant(&GrantRow {
                principal_id: principal_id.to_owned(),
                role: role.to_owned(),
                scope: scope.to_string(),
                created_at: self.now(),
                created_by: ctx.principal.actor().to_string(),
            })
            .await?;
        w.bump_identity_epoch().await?;
        w.commit(&[ctx
            .event(
                "role.grant",
                format!("principal:{principal_id}"),
                AuditDecision::Allow,
                if added { "granted" } else { "already held" },
            )
            .with_details(serde_json::json!({ "role": role, "scope": scope.to_string() }))])
            .await?;
        self.invalidate_access();
        Ok(added)
    }

    pub async fn revoke_role(
        &self,
        ctx: &RequestCtx,
        principal_id: &str,
        role: &str,
        scope: &str,
    ) -> Result<(), CoreError> {
        self.authorize(ctx, "role.grant", &principal_resource(principal_id))
            .await?;
        let scope = Scope::parse(scope).map_err(|e| CoreError::InvalidRequest(e.to_string()))?;
        let mut w = self.store().begin_write().await?;
        if !w
            .delete_grant(principal_id, role, &scope.to_string())
            .await?
        {
            w.rollback().await?;
            return Err(not_found(
                "grant",
                &format!("{principal_id}: {role}@{scope}"),
            ));
        }
        w.bump_identity_epoch().await?;
        w.commit(&[ctx
            .event(
                "role.revoke",
                format!("principal:{principal_id}"),
                AuditDecision::Allow,
                "revoked",
            )
            .with_details(serde_json::json!({ "role": role, "scope": scope.to_string() }))])
            .await?;
        self.invalidate_access();
        Ok(())
    }

    pub async fn policy(&self, ctx: &RequestCtx) -> Result<PolicyView, CoreError> {
        self.authorize(
            ctx,
            "policy.read",
            &Resource::singleton(ResourceType::Policy),
        )
        .await?;
        Ok(match self.store().active_policy().await? {
            Some(row) => PolicyView {
                version: row.version,
                digest: row.digest,
                text: row.text,
                updated_at: Some(row.created_at),
                updated_by: Some(row.created_by),
            },
            None => PolicyView {
                version: 0,
                digest: Digest::of(mlsec_policy::DEFAULT_POLICY.as_bytes()).to_string(),
                text: mlsec_policy::DEFAULT_POLICY.to_owned(),
                updated_at: None,
                updated_by: None,
            },
        })
    }

    /// Replaces the policy after validating it; the old and new digests go into the audit log.
    pub async fn set_policy(&self, ctx: &RequestCtx, text: &str) -> Result<PolicyView, CoreError> {
        self.authorize(
            ctx,
            "policy.write",
            &Resource::singleton(ResourceType::Policy),
        )
        .await?;
        PolicyEngine::new(text).map_err(|e| CoreError::InvalidRequest(e.to_string()))?;
        let previous = self
            .store()
            .active_policy()
            .await?
            .map(|p| p.digest)
            .unwrap_or_else(|| Digest::of(mlsec_policy::DEFAULT_POLICY.as_bytes()).to_string());
        let digest = Digest::of(text.as_bytes()).to_string();
        let now = self.now();
        let mut w = self.store().begin_write().await?;
        let version = w.policy_version_in_tx().await? + 1;
        w.insert_policy(&PolicyRow {
            version,
            text: text.to_owned(),
            digest: digest.clone(),
            created_at: now,
            created_by: ctx.principal.actor().to_string(),
        })
        .await?;
        w.bump_identity_epoch().await?;
        w.commit(&[ctx
            .event("policy.update", "policy", AuditDecision::Allow, "policy replaced")
            .with_details(serde_json::json!({ "version": version, "digest": digest, "previous_digest": previous }))])
            .await?;
        self.invalidate_access();
        Ok(PolicyView {
            version,
            digest,
            text: text.to_owned(),
            updated_at: Some(now),
            updated_by: Some(ctx.principal.actor().to_string()),
        })
    }

    /// What the policy in force (or `candidate`) decides for `principal_id` with its real grants.
    pub async fn check_policy(
        &self,
        ctx: &RequestCtx,
        principal_id: &str,
        action: &str,
        resource: &str,
        mfa: bool,
        candidate: Option<&str>,
    ) -> Result<Decision, CoreError> {
        self.authorize(
            ctx,
            "policy.read",
            &Resource::singleton(ResourceType::Policy),
        )
        .await?;
        let action = mlsec_policy::action_named(action)
            .map_err(|e| CoreError::InvalidRequest(e.to_string()))?;
        let resource =
            Resource::parse(resource).map_err(|e| CoreError::InvalidRequest(e.to_string()))?;
        let p = self.live_principal(principal_id).await?;
        let grants = crate::access::parse_grants(&self.store().grants_of(principal_id).await?);
        let engine = match candidate {
            Some(text) => std::sync::Arc::new(
                PolicyEngine::new(text).map_err(|e| CoreError::InvalidRequest(e.to_string()))?,
            ),
            None => self.policy_engine().await?,
        };
        let open = TokenRestriction::default();
        let subject = mlsec_policy::Subject {
            id: &p.id,
            kind: kind_name(crate::access::kind_of(&p.kind)),
            grants: &grants,
            restriction: &open,
            session: false,
        };
        Ok(engine.decide(&subject, action, &resource, mfa))
    }

    /// Starts TOTP enrolment for `principal_id` (unconfirmed until a first code is shown).
    pub async fn enroll_totp(
        &self,
        ctx: &RequestCtx,
        principal_id: &str,
    ) -> Result<TotpEnrolment, CoreError> {
        self.authorize(ctx, "mfa.manage", &principal_resource(principal_id))
            .await?;
        let p = self.live_principal(principal_id).await?;
        if p.kind == "service_account" {
            return Err(CoreError::InvalidRequest(
                "service accounts have no second factor".into(),
            ));
        }
        if self
            .store()
            .totp(principal_id)
            .await?
            .is_some_and(|t| t.confirmed_at.is_some())
        {
            return Err(CoreError::Conflict(
                "a second factor is already enrolled; remove it first".into(),
            ));
        }
        let secret = secrets::random_bytes::<20>();
        let generator = secrets::totp(&secret, principal_id)?;
        let mut w = self.store().begin_write().await?;
        w.put_totp(&TotpRow {
            principal_id: principal_id.to_owned(),
            secret_sealed: secrets::seal(&self.inner.sealing_key, &secret),
            created_at: self.now(),
            confirmed_at: None,
            last_step: -1,
        })
        .await?;
        w.commit(&[ctx.event(
            "mfa.enroll",
            format!("principal:{principal_id}"),
            AuditDecision::Allow,
            "TOTP enrolment started",
        )])
        .await?;
        let uri = generator
            .to_url()
            .map_err(|e| CoreError::Key(format!("otpauth URI: {e}")))?;
        Ok(TotpEnrolment {
            secret: generator.secret().to_base32(),
            qr_svg: crate::qr::svg(&uri)?,
            otpauth_uri: uri,
        })
    }

    /// Confirms enrolment with a first code; returns the recovery codes (shown once).
    pub async fn confirm_totp(
        &self,
        ctx: &RequestCtx,
        principal_id: &str,
        code: &str,
    ) -> Result<Vec<String>, CoreError> {
        self.authorize(ctx, "mfa.manage", &principal_resource(principal_id))
            .await?;
        self.check_not_locked(ctx, principal_id, "mfa.confirm")
            .await?;
        let pending = self
            .store()
            .totp(principal_id)
            .await?
            .filter(|t| t.confirmed_at.is_none())
            .ok_or_else(|| {
                CoreError::Conflict("no enrolment is pending; start one first".into())
            })?;
        let secret = secrets::unseal(&self.inner.sealing_key, &pending.secret_sealed)?;
        let generator = secrets::totp(&secret, principal_id)?;
        let now = self.now();
        let Some(step) = secrets::totp_step(&generator, code, (now / 1000) as u64) else {
            self.record_failure(ctx, principal_id, "mfa.confirm", "invalid one-time code")
                .await?;
            return Err(CoreError::SecondFactorRequired(
                "the one-time code is invalid".into(),
            ));
        };
        let codes: Vec<String> = (0..RECOVERY_CODES)
            .map(|_| secrets::new_recovery_code())
            .collect();
        let hashes: Vec<Vec<u8>> = codes
            .iter()
            .map(|c| secrets::recovery_code_hash(c).expect("generated codes are well-formed"))
            .collect();
        let mut w = self.store().begin_write().await?;
        w.confirm_totp(principal_id, now).await?;
        w.consume_totp_step(principal_id, step).await?;
        w.put_recovery_codes(principal_id, &hashes).await?;
        w.commit(&[ctx
            .event(
                "mfa.confirm",
                format!("principal:{principal_id}"),
                AuditDecision::Allow,
                "TOTP enrolled",
            )
            .with_details(serde_json::json!({ "recovery_codes": RECOVERY_CODES }))])
            .await?;
        Ok(codes)
    }

    /// Removes the second factor. The account's owner proves a fresh factor first; an admin
    /// resetting someone else's (lost phone) needs the `mfa.manage` permission on that account.
    pub async fn remove_totp(&self, ctx: &RequestCtx, principal_id: &str) -> Result<(), CoreError> {
        self.authorize(ctx, "mfa.manage", &principal_resource(principal_id))
            .await?;
        if principal_id == ctx.principal.id && !matches!(ctx.credential, Credential::Local) {
            let code = ctx.second_factor.as_deref().ok_or_else(|| {
                CoreError::SecondFactorRequired(
                    "removing your second factor needs a current code in `x-mlsec-otp`".into(),
                )
            })?;
            self.verify_second_factor(ctx, principal_id, code, "mfa.remove")
                .await?;
        }
        let mut w = self.store().begin_write().await?;
        if !w.delete_totp(principal_id).await? {
            w.rollback().await?;
            return Err(not_found("second factor", principal_id));
        }
        w.commit(&[ctx.event(
            "mfa.remove",
            format!("principal:{principal_id}"),
            AuditDecision::Allow,
            "second factor removed",
        )])
        .await?;
        Ok(())
    }

    pub async fn mfa_status(
        &self,
        ctx: &RequestCtx,
        principal_id: &str,
    ) -> Result<MfaStatus, CoreError> {
        self.authorize(ctx, "principal.read", &principal_resource(principal_id))
            .await?;
        self.live_principal(principal_id).await?;
        let totp = self.store().totp(principal_id).await?;
        Ok(MfaStatus {
            enrolled: totp.as_ref().is_some_and(|t| t.confirmed_at.is_some()),
            pending: totp.as_ref().is_some_and(|t| t.confirmed_at.is_none()),
            recovery_codes_left: self.store().recovery_codes_left(principal_id).await?,
        })
    }

    /// The caller, as the API's `whoami` shows it.
    pub async fn whoami(&self, ctx: &RequestCtx) -> Result<PrincipalView, CoreError> {
        let p = self.live_principal(&ctx.principal.id).await?;
        self.view(p).await
    }

    /// The current code of a factor. Test support only: it is compiled in with the
    /// `test-support` feature, never into the shipped binary.
    #[cfg(feature = "test-support")]
    pub async fn current_totp_code(
        &self,
        principal_id: &str,
        at_millis: i64,
    ) -> Result<String, CoreError> {
        let t = self
            .store()
            .totp(principal_id)
            .await?
            .ok_or_else(|| not_found("second factor", principal_id))?;
        let secret = secrets::unseal(&self.inner.sealing_key, &t.secret_sealed)?;
        Ok(secrets::totp(&secret, principal_id)?
            .generate((at_millis / 1000) as u64)
            .to_string())
    }
}
