use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mlsec_audit::{AuditEvent, Decision, TrustedKeys};
use mlsec_store::{
    BlobStore, GrantRow, LocalBlobStore, PrincipalRow, S3Config, Store, StoreOptions, TokenRow,
};
use mlsec_types::{Actor, ActorKind};
use time::OffsetDateTime;

use crate::error::CoreError;
use crate::keys::{ServerKey, load_or_create_server_key};
use crate::tokens::ApiToken;

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
    pub access: AccessConfig,
    /// Where time comes from (a manual clock in tests of expiry, lockout and TOTP).
    pub clock: Clock,
}

/// Settings of authentication and brute-force protection.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    /// How long a console session lives.
    pub session_ttl_secs: i64,
    /// How long a console step-up counts as a fresh second factor.
    pub step_up_secs: i64,
    /// Failures of one account (passwords and codes) before it locks.
    pub account_failures_before_lock: i64,
    /// Failures from one source address before it locks.
    pub source_failures_before_lock: i64,
    /// First lock; it doubles with each further failure, up to `max_lock_secs`.
    pub first_lock_secs: i64,
    pub max_lock_secs: i64,
    /// Failures older than this are forgotten.
    pub failure_window_secs: i64,
    /// How often a replica checks whether another one changed credentials, grants or policy.
    pub epoch_check_ms: i64,
    /// Default lifetime of a new API token.
    pub token_ttl_days: i64,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            session_ttl_secs: 12 * 3600,
            step_up_secs: 5 * 60,
            account_failures_before_lock: 5,
            source_failures_before_lock: 20,
            first_lock_secs: 1,
            max_lock_secs: 15 * 60,
            failure_window_secs: 15 * 60,
            epoch_check_ms: 1000,
            token_ttl_days: 90,
        }
    }
}

/// Milliseconds since the Unix epoch, from the system or from a hand-moved clock.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<std::sync::atomic::AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Clock { manual: None }
    }

    /// A clock that only moves when told to.
    pub fn manual(start_millis: i64) -> Self {
        Clock {
            manual: Some(Arc::new(std::sync::atomic::AtomicI64::new(start_millis))),
        }
    }

    pub fn now_millis(&self) -> i64 {
        match &self.manual {
            Some(t) => t.load(std::sync::atomic::Ordering::SeqCst),
            None => now_millis(),
        }
    }

    /// Moves a manual clock forward (no effect on the system clock).
    pub fn advance_millis(&self, ms: i64) {
        if let Some(t) = &self.manual {
            t.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
        }
    }
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
            access: AccessConfig::default(),
            clock: Clock::system(),
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

/// How the caller proved who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    /// Nothing yet (a login in progress): holds no grants.
    Anonymous,
    /// The operator at the server's terminal, holding the data directory.
    Local,
    /// An API token, with the limits it carries.
    Token {
        id: String,
        restriction: Arc<mlsec_policy::TokenRestriction>,
    },
    /// A console session.
    Session {
        id_hash: Vec<u8>,
        stepped_up_at: Option<i64>,
    },
}

/// Who is asking, how, from where, and under which request id.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub principal: Principal,
    pub request_id: Option<String>,
    pub credential: Credential,
    /// A one-time code (TOTP or recovery) presented with the request, used only if the action
    /// needs a fresh second factor.
    pub second_factor: Option<String>,
    /// The client address, for brute-force limits and the audit log.
    pub source: Option<String>,
}

impl RequestCtx {
    pub fn local() -> Self {
        RequestCtx {
            principal: Principal::local_operator(),
            request_id: None,
            credential: Credential::Local,
            second_factor: None,
            source: None,
        }
    }

    /// A request from `principal` with `credential` (the server's extractor builds these).
    pub fn new(principal: Principal, credential: Credential) -> Self {
        RequestCtx {
            principal,
            request_id: None,
            credential,
            second_factor: None,
            source: None,
        }
    }

    /// A caller that has not authenticated (logging in).
    pub fn anonymous() -> Self {
        RequestCtx::new(
            Principal {
                id: "anonymous".into(),
                kind: ActorKind::Anonymous,
                display_name: "anonymous".into(),
                token_id: None,
            },
            Credential::Anonymous,
        )
    }

    pub fn with_request_id(mut self, id: Option<String>) -> Self {
        self.request_id = id;
        self
    }

    pub fn with_second_factor(mut self, code: Option<String>) -> Self {
        self.second_factor = code;
        self
    }

    pub fn with_source(mut self, source: Option<String>) -> Self {
        self.source = source;
        self
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
    pub(crate) sealing_key: [u8; 32],
    pub(crate) access: crate::access::AccessState,
    /// Group commit of run logging.
    pub(crate) run_writer: crate::group_commit::RunWriter,
    /// Run id → (experiment name, when read): authorization of run logging without a query
    /// per call. Entries live `RUN_CACHE_MS`; the writer re-checks the run in its transaction.
    pub(crate) run_experiments: std::sync::RwLock<std::collections::HashMap<String, (String, i64)>>,
    /// Set when the server emits OpenLineage events.
    pub(crate) openlineage: std::sync::OnceLock<Arc<crate::openlineage::OpenLineageSink>>,
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
            sealing_key,
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
                store: store.clone(),
                blobs,
                local_blobs,
                trusted,
                config,
                key_created: created,
                public_key_path: public_path,
                sealing_key,
                access: crate::access::AccessState::new(),
                run_writer: crate::group_commit::RunWriter::start(store.clone()),
                run_experiments: Default::default(),
                openlineage: Default::default(),
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
                password_hash: None,
                deleted_at: None,
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
                read_only: false,
                resources: None,
            })
            .await?;
            w.insert_grant(&GrantRow {
                principal_id: "admin".into(),
                role: "admin".into(),
                scope: "server".into(),
                created_at: now,
                created_by: "system".into(),
            })
            .await?;
            let ctx = RequestCtx::new(
                Principal {
                    id: "system".into(),
                    kind: ActorKind::System,
                    display_name: "system".into(),
                    token_id: None,
                },
                Credential::Local,
            );
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
                ctx.event(
                    "role.grant",
                    "principal:admin",
                    Decision::Allow,
                    "first start",
                )
                .with_details(serde_json::json!({ "role": "admin", "scope": "server" })),
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
        // No events after this; the delivery task drains what is queued and ends.
        self.close_openlineage();
        self.record_system_event("server.stop", serde_json::Value::Null)
            .await?;
        self.inner.store.checkpoint_now().await?;
        self.inner.store.close().await;
        Ok(())
    }
}
