//! `canary`: planted tokens coming back.
//!
//! A canary is a random token placed in the system prompt or in retrieved documents; seeing it
//! in a response proves the model is repeating hidden context. Matching is on the folded text
//! and every decoded view, so spacing, case or base64 do not hide it.

use serde::Deserialize;

use crate::detector::{Detector, Finding, ScanInput, Severity, Span, parse_config};
use crate::error::Result;
use crate::prepare::fold;
use crate::registry::{BOTH, DetectorInfo};

pub const INFO: DetectorInfo = DetectorInfo {
    id: "canary",
    name: "Canary tokens",
    directions: BOTH,
    summary: "Canary tokens planted in the system prompt or documents appearing in a response (system-prompt or context leakage), or in a prompt (an attacker replaying leaked context).",
    false_positives: "None in practice for random tokens of 8 or more characters; short or dictionary-word canaries do collide.",
    references: &[
        "OWASP LLM07:2025 System Prompt Leakage",
        "OWASP LLM02:2025 Sensitive Information Disclosure",
        "AML.T0056 Extract LLM System Prompt",
        "AML.T0057 LLM Data Leakage",
    ],
    eval_label: Some("canary"),
    build: |v| {
        Ok(Box::new(Canary {
            config: parse_config(INFO.id, v)?,
        }))
    },
};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Canaries configured for every request, besides those in the request context.
    pub tokens: Vec<String>,
}

pub struct Canary {
    config: Config,
}

impl Detector for Canary {
    fn id(&self) -> &'static str {
        INFO.id
    }

    fn scan(&self, input: &ScanInput<'_>, out: &mut Vec<Finding>) -> Result<()> {
        for token in self
            .config
            .tokens
            .iter()
            .chain(input.context.canaries.iter())
        {
            if token.len() < 4 {
                continue;
            }
            if let Some(i) = input.text.find(token.as_str()) {
                let mut f = Finding::new(
                    INFO.id,
                    "canary",
                    Some(Span::new(i, i + token.len())),
                    Severity::Critical,
                    crate::detector::mask(token),
                );
                f.redact = crate::detector::Redact::Label("[REDACTED:canary]".into());
                out.push(f);
                continue;
            }
            let folded = fold(token).0;
            let squeezed: String = folded.chars().filter(|c| !c.is_whitespace()).collect();
            for view in &input.prepared.views {
                let hay: String = view.text.chars().filter(|c| !c.is_whitespace()).collect();
                if hay.contains(&squeezed) {
                    let mut f = Finding::new(
                        INFO.id,
                        "canary",
                        None,
                        Severity::Critical,
                        crate::detector::mask(token),
                    );
                    f.layer = view.layer.clone();
                    out.push(f);
                    break;
                }
            }
        }
        Ok(())
    }
}
