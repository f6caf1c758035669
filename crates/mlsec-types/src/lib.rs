//! Shared vocabulary of mlsec.
//!
//! Every other crate speaks in these types: content digests, request ids, principals, and the
//! table of stable error codes that the server maps to HTTP statuses. This crate has no I/O.

mod digest;
mod error_code;
mod principal;

pub use digest::{Digest, DigestParseError, Sha256Writer};
pub use error_code::ErrorCode;
pub use principal::{Actor, ActorKind};
