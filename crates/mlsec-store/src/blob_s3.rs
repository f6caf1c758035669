//! Blobs in S3-compatible object storage, behind the `s3` feature.
//!
//! Layout mirrors the local store: `PREFIX/sha256/ab/cd/<hex>`. An upload streams to a temporary
//! key with a multipart upload while it is hashed; when the digest is known it is copied to its
//! content address (unless identical content is already there) and the temporary key deleted.
//! A failed or abandoned upload is aborted, so nothing appears under any digest.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};
use mlsec_types::{Digest, Sha256Writer};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, WriteMultipart};

use crate::blob::{BlobInfo, BlobStore, ByteStream, VerifyOutcome, hash_stream};
use crate::blob_s3_config::S3Config;
use crate::error::StoreError;

/// Part size of multipart uploads (S3's minimum is 5 MiB).
const PART: usize = 8 << 20;
/// Parts in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

#[derive(Debug, Clone)]
pub struct S3BlobStore {
    store: Arc<AmazonS3>,
    prefix: String,
    describe: String,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl S3BlobStore {
    pub fn new(config: &S3Config) -> Result<Self, StoreError> {
        // One TLS provider for the process: ring, as everywhere else in mlsec. Installing twice
        // is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_allow_http(config.allow_http);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &config.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = builder.build().map_err(backend)?;
        let prefix = config
            .prefix
            .as_deref()
            .map(|p| format!("{}/", p.trim_matches('/')))
            .filter(|p| p != "/")
            .unwrap_or_default();
        Ok(S3BlobStore {
            store: Arc::new(store),
            describe: format!(
                "s3://{}/{}{}",
                config.bucket,
                prefix,
                config
                    .endpoint
                    .as_deref()
                    .map(|e| format!(" at {e}"))
                    .unwrap_or_default()
            ),
            prefix,
        })
    }

    fn key(&self, digest: &Digest) -> ObjectPath {
        let hex = digest.hex();
        ObjectPath::from(format!(
            "{}sha256/{}/{}/{}",
            self.prefix,
            &hex[0..2],
            &hex[2..4],
            hex
        ))
    }

    fn temporary_key(&self) -> ObjectPath {
        let mut bytes = [0u8; 12];
        getrandom::fill(&mut bytes).expect("the OS provides randomness");
        ObjectPath::from(format!("{}tmp/put-{}", self.prefix, hex::encode(bytes)))
    }

    async fn exists(&self, key: &ObjectPath) -> Result<bool, StoreError> {
        match self.store.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }
}

impl BlobStore for S3BlobStore {
    fn put_stream(&self, data: ByteStream) -> BoxFuture<'_, Result<BlobInfo, StoreError>> {
        Box::pin(async move {
            let tmp = self.temporary_key();
            let upload = self.store.put_multipart(&tmp).await.map_err(backend)?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
            let mut hasher = Sha256Writer::new();
            let mut data = data;
            while let Some(chunk) = data.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = writer.abort().await;
                        return Err(StoreError::UploadAborted(e.to_string()));
                    }
                };
                hasher.update(&chunk);
                if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                    let _ = writer.abort().await;
                    return Err(backend(e));
                }
                writer.put(chunk);
            }
            writer.finish().await.map_err(backend)?;
            let size = hasher.len();
            let digest = hasher.finish();
            let key = self.key(&digest);
            let created = !self.exists(&key).await?;
            if created {
                self.store.copy(&tmp, &key).await.map_err(backend)?;
            }
            self.store.delete(&tmp).await.map_err(backend)?;
            Ok(BlobInfo {
                digest,
                size,
                created,
            })
        })
    }

    fn get<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<ByteStream, StoreError>> {
        Box::pin(async move {
            match self.store.get(&self.key(digest)).await {
                Ok(result) => {
                    Ok(Box::pin(result.into_stream().map_err(std::io::Error::other)) as ByteStream)
                }
                Err(object_store::Error::NotFound { .. }) => Err(StoreError::NotFound {
                    what: "blob",
                    id: digest.to_string(),
                }),
                Err(e) => Err(backend(e)),
            }
        })
    }

    fn contains<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { self.exists(&self.key(digest)).await })
    }

    fn verify<'a>(
        &'a self,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<VerifyOutcome, StoreError>> {
        Box::pin(async move {
            let stream = match self.get(digest).await {
                Ok(s) => s,
                Err(StoreError::NotFound { .. }) => return Ok(VerifyOutcome::Missing),
                Err(e) => return Err(e),
            };
            let (actual, size) = hash_stream(stream).await.map_err(backend)?;
            Ok(if actual == *digest {
                VerifyOutcome::Intact { size }
            } else {
                VerifyOutcome::Corrupt { actual, size }
            })
        })
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}
