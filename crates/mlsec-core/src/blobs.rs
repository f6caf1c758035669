use std::path::Path;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use mlsec_audit::Decision;
use mlsec_store::{BlobInfo, BlobRow, VerifyOutcome};
use mlsec_types::Digest;
use serde::Serialize;

use crate::error::CoreError;
use crate::service::{Mlsec, RequestCtx, now_millis};

/// What a client learns about a stored blob.
#[derive(Debug, Clone, Serialize)]
pub struct BlobSummary {
    pub digest: Digest,
    pub size: u64,
    /// False when identical content was already stored.
    pub created: bool,
}

/// Pieces in flight between the request body and the blocking writer.
const UPLOAD_QUEUE: usize = 8;

impl Mlsec {
    /// Stores an upload arriving as a stream of chunks, then records it with its audit event.
    pub async fn put_blob_stream<S, E>(
        &self,
        ctx: &RequestCtx,
        body: S,
    ) -> Result<BlobSummary, CoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let limit = self.inner.config.max_upload_bytes;
        let mut writer = self.inner.blobs.writer()?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<Bytes>>(UPLOAD_QUEUE);
        // File writes and hashing block; they run on a blocking thread fed through a channel.
        // Only an explicit end (`None`) completes the blob: a closed channel means the upload was
        // abandoned, and dropping the writer removes its temporary file.
        let worker = tokio::task::spawn_blocking(move || -> Result<Option<BlobInfo>, CoreError> {
            while let Some(message) = rx.blocking_recv() {
                match message {
                    Some(chunk) => writer.write(&chunk)?,
                    None => return Ok(Some(writer.finish()?)),
                }
            }
            Ok(None)
        });
        let mut body = body;
        let mut received = 0u64;
        let mut failure = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    received += chunk.len() as u64;
                    if received > limit {
                        failure = Some(CoreError::TooLarge { limit });
                        break;
                    }
                    if tx.send(Some(chunk)).await.is_err() {
                        break; // the writer stopped; its error is reported below
                    }
                }
                Err(e) => {
                    failure = Some(CoreError::InvalidRequest(format!(
                        "upload interrupted: {e}"
                    )));
                    break;
                }
            }
        }
        if let Some(e) = failure {
            drop(tx);
            let _ = worker.await;
            return Err(e);
        }
        // If the writer already failed, this send fails too and its error surfaces below.
        let _ = tx.send(None).await;
        drop(tx);
        let info = worker
            .await
            .map_err(|e| CoreError::InvalidRequest(format!("upload worker failed: {e}")))??
            .ok_or_else(|| CoreError::InvalidRequest("upload abandoned".into()))?;
        self.record_blob(ctx, info).await
    }

    /// Stores a local file (the CLI's path): streaming hash, temporary name, fsync, rename.
    pub async fn put_blob_file(
        &self,
        ctx: &RequestCtx,
        path: &Path,
    ) -> Result<BlobSummary, CoreError> {
        let blobs = self.inner.blobs.clone();
        let path = path.to_owned();
        let info = tokio::task::spawn_blocking(move || blobs.put_file(&path))
            .await
            .map_err(|e| CoreError::InvalidRequest(format!("ingest worker failed: {e}")))??;
        self.record_blob(ctx, info).await
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
                "authenticated principal",
            )
            .with_details(serde_json::json!({ "size": info.size, "new": new_row }));
        w.commit(&[event]).await?;
        Ok(BlobSummary {
            digest: info.digest,
            size: info.size,
            created: new_row,
        })
    }

    /// Opens a recorded blob for reading.
    pub async fn open_blob(&self, digest: &Digest) -> Result<(std::fs::File, u64), CoreError> {
        let row = self
            .inner
            .store
            .blob(digest)
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: "blob",
                id: digest.to_string(),
            })?;
        let file = self.inner.blobs.open_blob(digest)?;
        Ok((file, row.size))
    }

    /// Re-hashes a stored blob against its digest.
    pub async fn verify_blob(&self, digest: &Digest) -> Result<u64, CoreError> {
        let blobs = self.inner.blobs.clone();
        let d = *digest;
        let outcome = tokio::task::spawn_blocking(move || blobs.verify(&d))
            .await
            .map_err(|e| CoreError::InvalidRequest(format!("verify worker failed: {e}")))??;
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
