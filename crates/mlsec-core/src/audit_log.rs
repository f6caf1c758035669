//! Reading the audit log. Reads are decisions too: they go through here so that the role that may
//! read the log (auditor, admin) is checked in one place once roles exist.

use mlsec_audit::{AuditRecord, SignedCheckpoint, VerifyReport};
use mlsec_store::AuditQuery;

use crate::error::CoreError;
use crate::service::{Mlsec, RequestCtx};

impl Mlsec {
    /// Events matching `query`, newest first.
    pub async fn audit_events(
        &self,
        _ctx: &RequestCtx,
        query: &AuditQuery,
    ) -> Result<Vec<AuditRecord>, CoreError> {
        Ok(self.store().audit_search(query).await?)
    }

    /// Every signed checkpoint of the chain head.
    pub async fn audit_checkpoints(
        &self,
        _ctx: &RequestCtx,
    ) -> Result<Vec<SignedCheckpoint>, CoreError> {
        Ok(self.store().audit_checkpoints().await?)
    }

    /// Verifies the whole chain and its checkpoints against this server's key.
    pub async fn verify_audit(
        &self,
        _ctx: &RequestCtx,
        deep: bool,
    ) -> Result<VerifyReport, CoreError> {
        Ok(self
            .store()
            .verify_audit_with(self.trusted_keys(), deep)
            .await?)
    }
}
