//! `language`: only the languages the application serves.
//!
//! Detection is whatlang's trigram model over 69 languages, embedded, offline. Attacks switch
//! to low-resource languages because safety training and filters are weakest there; an
//! allow-list closes that path for applications that serve known languages.

use serde::Deserialize;
use whatlang::Lang;

use crate::detector::{Detector, Finding, ScanInput, Severity, parse_config};
use crate::error::{GuardError, Result};
use crate::registry::{BOTH, DetectorInfo};

pub const INFO: DetectorInfo = DetectorInfo {
    id: "language",
    name: "Language allow-list",
    directions: BOTH,
    summary: "Text in a language outside the allow-list (ISO 639-3 codes): translation attacks move a request into a language where the model's refusals and the filters are weakest.",
    false_positives: "Short texts, code, and names are hard to identify, so texts under `min_chars` or with an unreliable identification pass; mixed-language texts are judged by their majority language.",
    references: &[
        "OWASP LLM01:2025 Prompt Injection",
        "AML.T0054 LLM Jailbreak",
        "AML.M0020 Generative AI Guardrails",
    ],
    eval_label: Some("language"),
    build: |v| {
        let config: Config = parse_config(INFO.id, v)?;
        let mut allowed = Vec::new();
        for code in &config.allowed {
            allowed.push(Lang::from_code(code).ok_or_else(|| {
                GuardError::Config(format!(
                    "detector language: unknown ISO 639-3 code {code:?}"
                ))
            })?);
        }
        Ok(Box::new(Language { config, allowed }))
    },
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// ISO 639-3 codes (`eng`, `fra`, `deu`…). Empty: every language passes.
    pub allowed: Vec<String>,
    pub min_chars: usize,
    pub min_confidence: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            allowed: Vec::new(),
            min_chars: 24,
            min_confidence: 0.5,
        }
    }
}

pub struct Language {
    config: Config,
    allowed: Vec<Lang>,
}

impl Detector for Language {
    fn id(&self) -> &'static str {
        INFO.id
    }

    fn scan(&self, input: &ScanInput<'_>, out: &mut Vec<Finding>) -> Result<()> {
        if self.allowed.is_empty()
            || input.text.chars().filter(|c| c.is_alphabetic()).count() < self.config.min_chars
        {
            return Ok(());
        }
        // Identification on a bounded prefix: the cost is fixed and the majority language of
        // a long text shows in its first few kilobytes.
        let mut end = input.text.len().min(4096);
        while !input.text.is_char_boundary(end) {
            end -= 1;
        }
        let Some(info) = whatlang::detect(&input.text[..end]) else {
            return Ok(());
        };
        if info.confidence() < self.config.min_confidence || self.allowed.contains(&info.lang()) {
            return Ok(());
        }
        let mut f = Finding::new(
            INFO.id,
            format!("lang:{}", info.lang().code()),
            None,
            Severity::Low,
            format!(
                "{} (confidence {:.2})",
                info.lang().eng_name(),
                info.confidence()
            ),
        );
        f.score = info.confidence() as f32;
        out.push(f);
        Ok(())
    }
}
