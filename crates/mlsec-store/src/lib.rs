//! Persistence of mlsec: metadata repositories on SQLite (embedded default) and PostgreSQL
//! (scale-out), their migrations, and the content-addressed blob store.
//!
//! The one way to change metadata is a [`WriteTx`]: it commits only together with the audit
//! events that describe the change, so no change exists without its event.

mod audit;
pub mod blob;
mod blob_s3_config;
mod datasets;
mod db;
mod error;
mod identity;
mod migrate;
mod principals;
mod registry;
mod signing;
mod tracking;

pub use audit::{AuditQuery, WriteTx};
#[cfg(feature = "s3")]
mod blob_s3;

pub use blob::{BlobInfo, BlobStore, BlobWriter, ByteStream, LocalBlobStore, VerifyOutcome};
#[cfg(feature = "s3")]
pub use blob_s3::S3BlobStore;
pub use blob_s3_config::S3Config;
pub use datasets::{DatasetCheckRow, DatasetFileRow, DatasetRow, DatasetVersionRow};
pub use db::{Backend, Store, StoreOptions};
pub use error::StoreError;
pub use identity::{GrantRow, PolicyRow, SessionRow, ThrottleRow, TotpRow};
pub use principals::{BlobRow, PrincipalRow, TokenRow};
pub use registry::{
    ModelAliasRow, ModelVersionFileRow, ModelVersionRow, RegisteredModelRow, VersionQuery,
};
pub use signing::{AttestationRow, SigningKeyRow};
pub use tracking::{
    ArtifactRow, CompareOp, ExperimentRow, FilterValue, LoggedModelRow, MetricRow, RunClause,
    RunData, RunField, RunInputRow, RunOrder, RunQuery, RunRow,
};
