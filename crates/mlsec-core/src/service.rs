use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mlsec_audit::{AuditEvent, Decision, TrustedKeys};
use mlsec_store::{
    BlobStore, LocalBlobStore, PrincipalRow, S3Config, Store, StoreOptions, TokenRow,
};
use mlsec_types::{Actor, ActorKind};
use time::OffsetDateTime;

use crate::error::CoreError;
use crate::keys::{ServerKey, load_or_create_server_key};
use crate::tokens::{self, ApiToken};

/// Settings the use cases need; the binary builds this from file, environment and flags.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Holds the SQLite database, the blobs and the server key.
    pub data_dir: PathBuf,
    /// PostgreSQL URL for scale-out; `None` means the embedded SQLite file in `data_dir`.
    pub database_url: Option<String>,
    pub checkpoint_every: u64,
    pub max_upload_bytes: u64,
    pub blob_backend: BlobBackend,
}

/// Where blobs live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BlobBackend {
    /// `DATA_DIR/blobs` on the local file system.
    #[default]
    Local,
    /// An S3-compatible bucket (needs the `s3` cargo feature).
    S3(S3Config),
}

impl CoreConfig {
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        CoreConfig {
            data_dir: data_dir.into(),
            database_url: None,
            checkpoint_every: 1000,
            max_upload_bytes: 64 << 30,
            blob_backend: BlobBackend::Local,
        }
    }
}

/// An authenticated principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub kind: ActorKind,
    pub display_name: String,
    /// The token the request authenticated with, if any.
    pub token_id: Option<String>,
}

impl Principal {
    pub fn actor(&self) -> Actor {
        Actor {
            kind: self.kind,
            id: self.id.clone(),
        }
    }

    /// The operator at a terminal on the server machine: whoever can read the data directory
    /// already holds every secret in it, so local commands act in their name.
    pub fn local_operator() -> Self {
        let name = std::env::var("USER").unwrap_or_else(|_| "operator".into());
        Principal {
            id: format!("local:{name}"),
            kind: ActorKind::User,
            display_name: name,
            token_id: None,
        }
    }
}

/// Who is asking, and under which request id.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub principal: Principal,
    pub request_id: Option<String>,
}

impl RequestCtx {
    pub fn local() -> Self {
        RequestCtx {
            principal: Principal::local_operator(),
            request_id: None,
        }
    }

    pub(crate) fn event(
        &self,
        action: &str,
        resource: impl Into<String>,
        decision: Decision,
        reason: impl Into<String>,
    ) -> AuditEvent {
        AuditEvent::new(
            OffsetDateTime::now_utc(),
            self.principal.actor(),
            action,
            resource,
            decision,
            reason,
        )
        .with_request_id(self.request_id.clone())
    }
}

/// What `init` did.
#[derive(Debug)]
pub struct InitOutcome {
    pub data_dir: PathBuf,
    pub key_created: bool,
    pub public_key_path: PathBuf,
    /// The first admin token, present only when this call created it. Shown once.
    pub admin_token: Option<String>,
}

/// The application: store, blobs and keys, and the use cases over them.
#[derive(Clone)]
pub struct Mlsec {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) blobs: Arc<dyn BlobStore>,
    /// The local store when blobs are local (for direct file access by the CLI and tests).
    pub(crate) local_blobs: Option<LocalBlobStore>,
    pub(crate) trusted: TrustedKeys,
    pub(crate) config: CoreConfig,
    pub(crate) key_created: bool,
    pub(crate) public_key_path: PathBuf,
}

pub(crate) fn now_millis() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Creates the data directory readable by its owner only.
fn prepare_data_dir(dir: &Path) -> Result<(), CoreError> {
    let io_err = |action: &str, e: std::io::Error| {
        CoreError::DataDir(format!("{action} `{}`: {e}", dir.display()))
    };
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| io_err("create data directory", e))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io_err("restrict data directory", e))?;
    } else if !dir.is_dir() {
        return Err(CoreError::InvalidRequest(format!(
            "data directory `{}` exists and is not a directory",
            dir.display()
        )));
    }
    Ok(())
}

type Blobs = (Arc<dyn BlobStore>, Option<LocalBlobStore>);

fn open_blobs(config: &CoreConfig) -> Result<Blobs, CoreError> {
    match &config.blob_backend {
        BlobBackend::Local => {
            let local = LocalBlobStore::open(config.data_dir.join("blobs"))?;
            Ok((Arc::new(local.clone()), Some(local)))
        }
        #[cfg(feature = "s3")]
        BlobBackend::S3(s3) => Ok((Arc::new(mlsec_store::S3BlobStore::new(s3)?), None)),
        #[cfg(not(feature = "s3"))]
        BlobBackend::S3(_) => Err(CoreError::InvalidRequest(
            "blobs.backend = \"s3\" needs an mlsec built with the `s3` feature".into(),
        )),
    }
}

impl Mlsec {
    /// Opens (and on first use creates) everything under the configured data directory.
    pub async fn open(config: CoreConfig) -> Result<Mlsec, CoreError> {
        prepare_data_dir(&config.data_dir)?;
        let ServerKey {
            signer,
            public_path,
            created,
            ..
        } = load_or_create_server_key(&config.data_dir)?;
        let trusted = TrustedKeys::new().with(signer.verifying_key());
        let options = match &config.database_url {
            Some(url) => StoreOptions::new(url.clone()),
            None => StoreOptions::sqlite_file(&config.data_dir.join("mlsec.db")),
        }
        .with_signer(Arc::new(signer), config.checkpoint_every);
        let store = Store::open(options).await?;
        let (blobs, local_blobs) = open_blobs(&config)?;
        tracing::info!(
            blobs = blobs.describe(),
            database = store.target(),
            "mlsec opened"
        );
        Ok(Mlsec {
            inner: Arc::new(Inner {
                store,
                blobs,
                local_blobs,
                trusted,
                config,
                key_created: created,
                public_key_path: public_path,
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.inner.blobs
    }

    /// The local blob store, when blobs are kept on the local file system.
    pub fn local_blobs(&self) -> Option<&LocalBlobStore> {
        self.inner.local_blobs.as_ref()
    }

    pub fn config(&self) -> &CoreConfig {
        &self.inner.config
    }

    /// Keys whose checkpoints this server accepts: its own.
    pub fn trusted_keys(&self) -> &TrustedKeys {
        &self.inner.trusted
    }

    /// Creates the first admin and its token if the server has no principal yet.
    pub async fn init(&self) -> Result<InitOutcome, CoreError> {
        let store = &self.inner.store;
        let mut admin_token = None;
        if store.principal("admin").await?.is_none() {
            let now = now_millis();
            let token = ApiToken::generate();
            let mut w = store.begin_write().await?;
            w.insert_principal(&PrincipalRow {
                id: "admin".into(),
                kind: "user".into(),
                display_name: "Administrator".into(),
                disabled: false,
                created_at: now,
            })
            .await?;
            w.insert_token(&TokenRow {
                id: token.id.clone(),
                principal_id: "admin".into(),
                name: "initial admin token".into(),
                secret_hash: token.secret_hash.as_bytes().to_vec(),
                created_at: now,
                expires_at: None,
                revoked_at: None,
                last_used_at: None,
            })
            .await?;
            let ctx = RequestCtx {
                principal: Principal {
                    id: "system".into(),
                    kind: ActorKind::System,
                    display_name: "system".into(),
                    token_id: None,
                },
                request_id: None,
            };
            w.commit(&[
                ctx.event(
                    "principal.create",
                    "principal:admin",
                    Decision::Allow,
                    "first start",
                ),
                ctx.event(
                    "token.create",
                    format!("token:{}", token.id),
                    Decision::Allow,
                    "first start",
                )
                .with_details(serde_json::json!({ "principal": "admin" })),
            ])
            .await?;
            admin_token = Some(token.secret_text);
        }
        Ok(InitOutcome {
            data_dir: self.inner.config.data_dir.clone(),
            key_created: self.inner.key_created,
            public_key_path: self.inner.public_key_path.clone(),
            admin_token,
        })
    }

    /// Resolves a bearer token to its principal. Every failure is an audit event.
    pub async fn authenticate(
        &self,
        bearer: Option<&str>,
        request_id: Option<String>,
    ) -> Result<Principal, CoreError> {
        let deny = |resource: String, reason: &str| {
            AuditEvent::new(
                OffsetDateTime::now_utc(),
                Actor::anonymous(),
                "auth.authenticate",
                resource,
                Decision::Deny,
                reason,
            )
            .with_request_id(request_id.clone())
        };
        let Some(presented) = bearer else {
            // Requests without any credentials are refused without an audit event: they are
            // scanners and health probes, and would drown the log.
            return Err(CoreError::Unauthenticated);
        };
        let Some((id, hash)) = tokens::parse(presented) else {
            self.inner
                .store
                .append_audit(&[deny("token:malformed".into(), "malformed token")])
                .await?;
            return Err(CoreError::Unauthenticated);
        };
        let resource = format!("token:{id}");
        let now = now_millis();
        let token = self.inner.store.token(id).await?;
        let problem = match &token {
            None => Some("unknown token"),
            Some(t) if !tokens::hashes_match(&t.secret_hash, &hash) => Some("wrong secret"),
            Some(t) if t.revoked_at.is_some() => Some("token revoked"),
            Some(t) if t.expires_at.is_some_and(|e| e <= now) => Some("token expired"),
            Some(_) => None,
        };
        if let Some(reason) = problem {
            self.inner
                .store
                .append_audit(&[deny(resource, reason)])
                .await?;
            return Err(CoreError::Unauthenticated);
        }
        let token = token.expect("checked above");
        let principal = self.inner.store.principal(&token.principal_id).await?;
        let Some(principal) = principal.filter(|p| !p.disabled) else {
            self.inner
                .store
                .append_audit(&[deny(resource, "principal disabled or deleted")])
                .await?;
            return Err(CoreError::Unauthenticated);
        };
        // Last-used is refreshed at most once a minute to keep reads free of writes.
        if token.last_used_at.is_none_or(|t| now - t > 60_000) {
            self.inner.store.touch_token(&token.id, now).await?;
        }
        Ok(Principal {
            kind: match principal.kind.as_str() {
                "service_account" => ActorKind::ServiceAccount,
                _ => ActorKind::User,
            },
            id: principal.id,
            display_name: principal.display_name,
            token_id: Some(token.id),
        })
    }

    /// Records a server lifecycle event (start, stop) as the system actor.
    pub async fn record_system_event(
        &self,
        action: &str,
        details: serde_json::Value,
    ) -> Result<(), CoreError> {
        let event = AuditEvent::new(
            OffsetDateTime::now_utc(),
            Actor::system(),
            action,
            "server",
            Decision::Allow,
            "lifecycle",
        )
        .with_details(details);
        self.inner.store.append_audit(&[event]).await?;
        Ok(())
    }

    /// Records the stop, signs a final checkpoint and closes the pool.
    pub async fn shutdown(&self) -> Result<(), CoreError> {
        self.record_system_event("server.stop", serde_json::Value::Null)
            .await?;
        self.inner.store.checkpoint_now().await?;
        self.inner.store.close().await;
        Ok(())
    }
}
