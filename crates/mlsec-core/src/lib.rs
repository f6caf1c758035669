//! The use cases of mlsec. Every mutation goes through here as authorize → act → audit, with the
//! audit event committed in the same transaction as the change. Handlers and CLI commands are
//! thin callers of [`Mlsec`].

mod audit_log;
mod blobs;
mod error;
mod keys;
mod service;
mod tokens;

pub use blobs::BlobSummary;
pub use error::CoreError;
pub use keys::{PUBLIC_FILE, SECRET_FILE, ServerKey, load_or_create_server_key, read_public_key};
pub use service::{BlobBackend, CoreConfig, InitOutcome, Mlsec, Principal, RequestCtx};
pub use tokens::{ApiToken, TOKEN_PREFIX};

pub use mlsec_audit as audit;
pub use mlsec_store as store;
