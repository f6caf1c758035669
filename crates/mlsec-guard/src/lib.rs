//! mlsec-guard: runtime guardrails for LLM applications.
//!
//! Detectors (one file each under `detectors/`, listed in [`registry::REGISTRY`]) look at a
//! prompt or a response; the [`pipeline::Pipeline`] runs them in order with an action each
//! (allow, flag, redact, block), a time budget and a failure mode, and returns a
//! [`pipeline::Verdict`]. Everything is offline and in-process: no model hub, no network, no
//! global state beyond rules compiled once.
//!
//! ```
//! use mlsec_guard::{Pipeline, PipelineConfig, RequestContext, Vault};
//! let pipeline = Pipeline::new(PipelineConfig::default()).unwrap();
//! let mut vault = Vault::new();
//! let v = pipeline.scan_input("Mail jane.doe@example.com the report", &RequestContext::default(), &mut vault).unwrap();
//! assert_eq!(v.redacted.as_deref(), Some("Mail [EMAIL_1] the report"));
//! assert_eq!(vault.restore("Sent to [EMAIL_1]."), "Sent to jane.doe@example.com.");
//! ```

pub mod charlm;
pub mod classifier;
pub mod dataset;
pub mod detector;
pub mod detectors;
pub mod error;
pub mod eval;
pub mod pipeline;
pub mod prepare;
pub mod registry;
pub mod vault;

pub use detector::{Detector, Direction, Finding, RequestContext, Severity, Span};
pub use error::{GuardError, Result};
pub use pipeline::{Action, Decision, Pipeline, PipelineConfig, StreamGuard, Verdict};
pub use vault::Vault;
