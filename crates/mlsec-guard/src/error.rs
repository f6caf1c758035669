//! The one error type of the guard library.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum GuardError {
    /// A pipeline or detector configuration is invalid (unknown detector, unknown key, bad value).
    #[error("invalid guard configuration: {0}")]
    Config(String),
    /// A rule file (secrets, injection signatures) does not load or a rule's examples disagree.
    #[error("invalid rule {rule}: {reason}")]
    Rule { rule: String, reason: String },
    /// The text is larger than the pipeline accepts.
    #[error("text of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge { len: usize, limit: usize },
    /// A detector ran past its time budget.
    #[error("detector {detector} exceeded its budget of {budget_us} µs")]
    Budget {
        detector: &'static str,
        budget_us: u64,
    },
    /// A model file (the statistical classifier) is malformed.
    #[error("invalid model: {0}")]
    Model(String),
    /// A labelled dataset line is malformed.
    #[error("dataset line {line}: {reason}")]
    Dataset { line: usize, reason: String },
}

pub type Result<T, E = GuardError> = std::result::Result<T, E>;
