//! Datasets: content-addressed versions, tabular readers, schemas, mergeable profiles, drift
//! tests, poisoning signals and the HTML check report.
//!
//! A pure library: it reads files it is pointed at and computes; it keeps no state, opens no
//! database and starts no server. `mlsec-core` records what it computes.

pub mod check;
pub mod drift;
pub mod error;
pub mod manifest;
pub mod poison;
pub mod profile;
pub mod read;
pub mod report;
pub mod schema;
pub mod sketch;
pub mod stats;
pub mod synth;

/// The Arrow crate the readers use, for callers that build or inspect record batches.
pub use arrow;
pub use check::{CheckOptions, CheckOutcome, Verdict};
pub use drift::{ColumnDrift, DriftOptions, DriftReport, DriftTest};
pub use error::DataError;
pub use manifest::{FileEntry, Manifest, ManifestDiff};
pub use poison::{PoisonOptions, PoisonReport, Signal};
pub use profile::{ColumnKind, ColumnProfile, DatasetProfile};
pub use read::{TableFormat, TableSource};
pub use schema::{DataSchema, SchemaViolation};
