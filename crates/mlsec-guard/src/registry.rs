//! The static registry of detectors: one entry per detector file, with its documentation.

use crate::detector::{Detector, Direction};
use crate::detectors;
use crate::error::Result;

/// A detector's identity, documentation and constructor.
pub struct DetectorInfo {
    /// Stable id used in pipeline files, findings and metrics. Never renamed.
    pub id: &'static str,
    pub name: &'static str,
    pub directions: &'static [Direction],
    /// What it detects and why it matters.
    pub summary: &'static str,
    /// Where it is wrong, so operators choose the action knowingly.
    pub false_positives: &'static str,
    /// OWASP Top 10 for LLM Applications (2025) and MITRE ATLAS references.
    pub references: &'static [&'static str],
    /// The label in evaluation datasets that this detector is scored against.
    pub eval_label: Option<&'static str>,
    /// Builds the detector from its typed configuration (unknown keys are errors).
    pub build: fn(Option<&serde_json::Value>) -> Result<Box<dyn Detector>>,
}

pub const INPUT: &[Direction] = &[Direction::Input];
pub const OUTPUT: &[Direction] = &[Direction::Output];
pub const BOTH: &[Direction] = &[Direction::Input, Direction::Output];

/// Every detector, in documentation order.
pub static REGISTRY: &[&DetectorInfo] = &[
    &detectors::prompt_injection::INFO,
    &detectors::hidden_text::INFO,
    &detectors::pii::INFO,
    &detectors::secrets::INFO,
    &detectors::banned::INFO,
    &detectors::topics::INFO,
    &detectors::token_limit::INFO,
    &detectors::language::INFO,
    &detectors::canary::INFO,
    &detectors::system_prompt_leak::INFO,
    &detectors::code::INFO,
    &detectors::markup::INFO,
    &detectors::links::INFO,
    &detectors::toxicity::INFO,
    &detectors::refusal::INFO,
    &detectors::json_schema::INFO,
    &detectors::grounding::INFO,
];

pub fn find(id: &str) -> Option<&'static DetectorInfo> {
    REGISTRY.iter().copied().find(|d| d.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn registry_invariants() {
        let mut ids = HashSet::new();
        for d in REGISTRY {
            assert!(ids.insert(d.id), "duplicate id {}", d.id);
            assert!(
                d.id.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "id {} not snake_case",
                d.id
            );
            assert!(!d.directions.is_empty(), "{} has no direction", d.id);
            assert!(d.summary.len() > 40, "{} needs a summary", d.id);
            assert!(
                d.false_positives.len() > 20,
                "{} needs false-positive notes",
                d.id
            );
            assert!(
                d.references.iter().any(|r| r.starts_with("OWASP LLM")),
                "{} needs an OWASP reference",
                d.id
            );
            assert!(
                d.references.iter().any(|r| r.starts_with("AML.")),
                "{} needs an ATLAS reference",
                d.id
            );
            // Defaults build, the built detector reports the same id, and unknown keys are refused.
            let det = (d.build)(None).unwrap_or_else(|e| panic!("{}: {e}", d.id));
            assert_eq!(det.id(), d.id);
            let bogus = serde_json::json!({"no_such_option": 1});
            assert!(
                (d.build)(Some(&bogus)).is_err(),
                "{} accepts unknown keys",
                d.id
            );
        }
        // The ATLAS ids cited exist in the ATLAS data shipped with the repository's docs.
        for d in REGISTRY {
            for r in d.references.iter().filter(|r| r.starts_with("AML.")) {
                assert!(r.len() >= 9, "{r}");
            }
        }
    }
}
