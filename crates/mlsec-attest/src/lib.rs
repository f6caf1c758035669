//! Provenance for models and datasets, as a pure library: OpenSSF Model Signing (OMS) v1.0
//! bundles for a directory or file (key and certificate methods, files and shards
//! serialization, SHA-256 and BLAKE3), DSSE envelopes with k-of-n verification over distinct
//! principals, in-toto statements and SLSA Provenance v1 predicates, CycloneDX 1.6 ML-BOMs
//! with the training environment read from lock files, and model cards (Markdown, HTML).
//!
//! Nothing here reads a clock, a database or the network: verification times, trusted keys and
//! roots are passed in.

pub mod bundle;
pub mod card;
pub mod dsse;
pub mod error;
pub mod facts;
pub mod hashing;
pub mod keys;
pub mod lockfile;
pub mod manifest;
pub mod mlbom;
pub mod oms;
pub mod provenance;
pub mod statement;
pub mod tree;
pub mod x509;

pub use bundle::Bundle;
pub use dsse::{Envelope, Signer, TrustedKey, verify_threshold};
pub use error::{AttestError, Result};
pub use hashing::HashAlgorithm;
pub use keys::{Curve, PrivateKey, PublicKey};
pub use manifest::{Mismatch, Serialization};
pub use oms::{
    SignOptions, SigningMaterial, Trust, Verified, VerifyOptions, sign_model, verify_model,
};
pub use tree::WalkOptions;
