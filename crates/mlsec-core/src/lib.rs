//! The use cases of mlsec. Every mutation goes through here as authorize → act → audit, with the
//! audit event committed in the same transaction as the change. Handlers and CLI commands are
//! thin callers of [`Mlsec`].

mod access;
mod artifacts;
mod audit_log;
mod blobs;
mod datasets;
mod error;
mod group_commit;
mod identity;
mod keys;
mod lineage;
mod model_card;
mod openlineage;
pub mod qr;
mod registry;
mod secrets;
mod service;
mod sessions;
mod signing;
mod tokens;
mod tracking;

pub use artifacts::{ArtifactEntry, ArtifactOwner, ArtifactPath};
pub use blobs::BlobSummary;
pub use datasets::{
    AddedVersion, CheckSummary, CheckView, CheckoutView, DatasetSummaryView, DatasetVersionDetail,
    DatasetVersionView, FileView, StagedFile, VerifyView, VersionRef, check_dataset_name,
};
pub use error::CoreError;
pub use identity::{
    CreatedToken, GrantView, MfaStatus, NewPrincipal, NewToken, PolicyView, PrincipalView,
    TokenView, TotpEnrolment, check_principal_id,
};
pub use keys::{PUBLIC_FILE, SECRET_FILE, ServerKey, load_or_create_server_key, read_public_key};
pub use lineage::{Direction, LineageNode, LineageStart, LineageView, ModelRef, render_tree};
pub use mlsec_data as data;
pub use mlsec_policy as policy;
pub use openlineage::{OPENLINEAGE_PRODUCER, OPENLINEAGE_SCHEMA_URL, run_uuid};
pub use registry::{
    AliasView, LoggedModelView, ModelFileView, ModelVersionView, NewLoggedModel, PROTECTED_ALIASES,
    RegisteredModelView, VersionSource,
};
pub use secrets::{MIN_PASSWORD_CHARS, TOTP_STEP_SECONDS};
pub use service::{
    AccessConfig, BlobBackend, Clock, CoreConfig, Credential, InitOutcome, Mlsec, Principal,
    RequestCtx,
};
pub use sessions::{CSRF_HEADER, LoginRequest, NewSession, SESSION_COOKIE};
pub use signing::{
    AttestationView, KeySource, SignatureCheck, SigningKeyView, VersionVerification,
};
pub use tokens::{ApiToken, TOKEN_PREFIX};
pub use tracking::{
    ExperimentView, InputView, KeyValue, MAX_SEARCH_RESULTS, MetricView, NewInput,
    RESERVED_TAG_PREFIX, RunSearch, RunView, text_matches,
};

pub use mlsec_attest as attest;
pub use mlsec_audit as audit;
pub use mlsec_store as store;
pub use mlsec_tracking as tracking_syntax;
