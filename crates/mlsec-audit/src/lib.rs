//! The tamper-evident audit log of mlsec, as a pure library.
//!
//! Every event is encoded canonically (RFC 8785 JSON) and chained:
//! `hash_n = SHA-256(hash_{n-1} || canonical_n)`, with `hash_{-1}` all zeros. Checkpoints sign the
//! head of the chain with an Ed25519 key, so rewriting history is detectable even by someone who can
//! write to the database: they would need the server key as well. The crate has no I/O; the store
//! persists records and the server decides when to checkpoint.

mod checkpoint;
mod event;
pub mod export;
mod verify;

pub use checkpoint::{
    Checkpoint, CheckpointProblem, CheckpointSigner, KeyId, SignedCheckpoint, TrustedKeys,
};
pub use event::{AuditError, AuditEvent, AuditRecord, Decision, chain_hash, format_time};
pub use verify::{ChainVerifier, Failure, FailureKind, VerifyReport, verify_records};
