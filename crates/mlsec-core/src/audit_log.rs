//! Reading the audit log. Reads are decisions too: only principals with `audit.read` (auditors,
//! admins by default) see the log.

use mlsec_audit::{AuditRecord, SignedCheckpoint, VerifyReport};
use mlsec_policy::{Resource, ResourceType};
use mlsec_store::AuditQuery;

use crate::error::CoreError;
use crate::service::{Mlsec, RequestCtx};

impl Mlsec {
    /// Events matching `query`, newest first.
    pub async fn audit_events(
        &self,
        ctx: &RequestCtx,
        query: &AuditQuery,
    ) -> Result<Vec<AuditRecord>, CoreError> {
        self.authorize(ctx, "audit.read", &audit()).await?;
        Ok(self.store().audit_search(query).await?)
    }

    /// Every signed checkpoint of the chain head.
    pub async fn audit_checkpoints(
        &self,
        ctx: &RequestCtx,
    ) -> Result<Vec<SignedCheckpoint>, CoreError> {
        self.authorize(ctx, "audit.read", &audit()).await?;
        Ok(self.store().audit_checkpoints().await?)
    }

    /// Verifies the whole chain and its checkpoints against this server's key.
    pub async fn verify_audit(
        &self,
        ctx: &RequestCtx,
        deep: bool,
    ) -> Result<VerifyReport, CoreError> {
        self.authorize(ctx, "audit.read", &audit()).await?;
        Ok(self
            .store()
            .verify_audit_with(self.trusted_keys(), deep)
            .await?)
    }
}

fn audit() -> Resource {
    Resource::singleton(ResourceType::Audit)
}
