use std::path::Path;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use mlsec_audit::Decision;
use mlsec_store::{BlobInfo, BlobRow, ByteStream, StoreError, VerifyOutcome};
use mlsec_types::Digest;
use serde::Serialize;

use crate::error::CoreError;
use crate::service::{Mlsec, RequestCtx, now_millis};
use mlsec_policy::{Resource, ResourceType};

fn blob_resource(digest: Option<&Digest>) -> Resource {
    Resource::new(
        ResourceType::Blob,
        digest.map(|d| d.to_string()).unwrap_or_default(),
    )
}

/// What a client learns about a stored blob.
#[derive(Debug, Clone, Serialize)]
pub struct BlobSummary {
    pub digest: Digest,
    pub size: u64,
    /// False when identical content was already stored.
    pub created: bool,
}

impl Mlsec {
    /// Stores an upload arriving as a stream of chunks, then records it with its audit event.
    pub async fn put_blob_stream<S, E>(
        &self,
        ctx: &RequestCtx,
        body: S,
    ) -> Result<BlobSummary, CoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        // Authorized before a byte is read: a caller without the permission uploads nothing.
        self.authorize(ctx, "blob.write", &blob_resource(None))
            .await?;
        let info = self.store_limited(body).await?;
        self.record_blob(ctx, info).await
    }

    /// Stores a local file (the CLI's path): streaming hash, temporary name, fsync, rename.
    pub async fn put_blob_file(
        &self,
        ctx: &RequestCtx,
        path: &Path,
    ) -> Result<BlobSummary, CoreError> {
        self.authorize(ctx, "blob.write", &blob_resource(None))
            .await?;
        let info = self.inner.blobs.put_file(path).await?;
        self.record_blob(ctx, info).await
    }

    /// Streams an upload into the blob store, enforcing the upload limit as the bytes arrive:
    /// the store sees an error and abandons the write, so an oversized upload leaves nothing.
    pub(crate) async fn store_limited<S, E>(&self, body: S) -> Result<BlobInfo, CoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        let limit = self.inner.config.max_upload_bytes;
        let exceeded = Arc::new(AtomicBool::new(false));
        let flag = exceeded.clone();
        let mut received = 0u64;
        // The limit is enforced as the bytes arrive: the store sees an error and abandons the
        // write, so an oversized upload leaves nothing behind.
        let limited = body.map(move |chunk| {
            let chunk =
                chunk.map_err(|e| std::io::Error::other(format!("upload interrupted: {e}")))?;
            received += chunk.len() as u64;
            if received > limit {
                flag.store(true, Ordering::Relaxed);
                return Err(std::io::Error::other("upload exceeds the size limit"));
            }
            Ok(chunk)
        });
        let result = self.inner.blobs.put_stream(Box::pin(limited)).await;
        if exceeded.load(Ordering::Relaxed) {
            return Err(CoreError::TooLarge { limit });
        }
        result.map_err(|e| match e {
            StoreError::UploadAborted(message) => CoreError::InvalidRequest(message),
            other => other.into(),
        })
    }

    async fn record_blob(
        &self,
        ctx: &RequestCtx,
        info: BlobInfo,
    ) -> Result<BlobSummary, CoreError> {
        let mut w = self.inner.store.begin_write().await?;
        let new_row = w
            .insert_blob(&BlobRow {
                digest: info.digest,
                size: info.size,
                created_at: now_millis(),
                created_by: ctx.principal.actor().to_string(),
            })
            .await?;
        let event = ctx
            .event(
                "blob.put",
                format!("blob:{}", info.digest),
                Decision::Allow,
                "stored",
            )
            .with_details(serde_json::json!({ "size": info.size, "new": new_row }));
        w.commit(&[event]).await?;
        Ok(BlobSummary {
            digest: info.digest,
            size: info.size,
            created: new_row,
        })
    }

    /// A recorded blob's bytes and size.
    pub async fn open_blob(
        &self,
        ctx: &RequestCtx,
        digest: &Digest,
    ) -> Result<(ByteStream, u64), CoreError> {
        self.authorize(ctx, "blob.read", &blob_resource(Some(digest)))
            .await?;
        let row = self
            .inner
            .store
            .blob(digest)
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: "blob",
                id: digest.to_string(),
            })?;
        let stream = self.inner.blobs.get(digest).await?;
        Ok((stream, row.size))
    }

    /// Re-hashes a stored blob against its digest.
    pub async fn verify_blob(&self, ctx: &RequestCtx, digest: &Digest) -> Result<u64, CoreError> {
        self.authorize(ctx, "blob.read", &blob_resource(Some(digest)))
            .await?;
        let outcome = self.inner.blobs.verify(digest).await?;
        match outcome {
            VerifyOutcome::Intact { size } => Ok(size),
            VerifyOutcome::Missing => Err(CoreError::NotFound {
                what: "blob",
                id: digest.to_string(),
            }),
            VerifyOutcome::Corrupt { actual, .. } => Err(CoreError::Integrity {
                digest: digest.to_string(),
                actual: actual.to_string(),
            }),
        }
    }
}
