//! `system_prompt_leak`: the response reproduces the application's system prompt.
//!
//! The system prompt (from the request context or the configuration) is cut into shingles of
//! `shingle_words` folded words; the response leaks it when it contains at least
//! `min_shingles` of them or `min_fraction` of all of them. Folding means a leak in other
//! case or with look-alike characters still counts; shingles mean paraphrase does not.

use std::collections::HashSet;

use serde::Deserialize;

use crate::detector::{Detector, Finding, ScanInput, Severity, parse_config};
use crate::error::{GuardError, Result};
use crate::prepare::fold;
use crate::registry::{DetectorInfo, OUTPUT};

pub const INFO: DetectorInfo = DetectorInfo {
    id: "system_prompt_leak",
    name: "System-prompt leakage",
    directions: OUTPUT,
    summary: "Responses that repeat a substantial part of the configured system prompt word for word: the system prompt holds business logic, hidden rules and sometimes credentials, and extracting it is the first step of most targeted attacks.",
    false_positives: "System prompts built from common phrases ('you are a helpful assistant') overlap with ordinary answers; the shingle length (6 words) and count threshold keep that rare. Paraphrased leaks are not caught.",
    references: &[
        "OWASP LLM07:2025 System Prompt Leakage",
        "AML.T0056 Extract LLM System Prompt",
        "AML.T0057 LLM Data Leakage",
    ],
    eval_label: Some("system_prompt_leak"),
    build: |v| {
        let config: Config = parse_config(INFO.id, v)?;
        if config.shingle_words < 3 {
            return Err(GuardError::Config(
                "detector system_prompt_leak: shingle_words must be at least 3".into(),
            ));
        }
        Ok(Box::new(SystemPromptLeak { config }))
    },
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// A system prompt used when the request context has none.
    pub system_prompt: Option<String>,
    pub shingle_words: usize,
    pub min_shingles: usize,
    pub min_fraction: f32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            system_prompt: None,
            shingle_words: 6,
            min_shingles: 4,
            min_fraction: 0.3,
        }
    }
}

pub struct SystemPromptLeak {
    config: Config,
}

fn words(folded: &str) -> Vec<&str> {
    folded
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect()
}

fn shingles<'a>(words: &'a [&'a str], n: usize) -> impl Iterator<Item = String> + 'a {
    words.windows(n).map(|w| w.join(" "))
}

impl Detector for SystemPromptLeak {
    fn id(&self) -> &'static str {
        INFO.id
    }

    fn scan(&self, input: &ScanInput<'_>, out: &mut Vec<Finding>) -> Result<()> {
        let Some(system) = input
            .context
            .system_prompt
            .as_deref()
            .or(self.config.system_prompt.as_deref())
        else {
            return Ok(());
        };
        let n = self.config.shingle_words;
        let sys_folded = fold(system).0;
        let sys_words = words(&sys_folded);
        let sys: HashSet<String> = shingles(&sys_words, n).collect();
        if sys.is_empty() {
            return Ok(());
        }
        let mut best = (0usize, String::new());
        for view in &input.prepared.views {
            if view.kind == crate::prepare::ViewKind::Transform && !view.layer.ends_with("rot13") {
                continue;
            }
            let w = words(&view.text);
            let found: HashSet<String> = shingles(&w, n).filter(|s| sys.contains(s)).collect();
            if found.len() > best.0 {
                best = (found.len(), view.layer.clone());
            }
        }
        let fraction = best.0 as f32 / sys.len() as f32;
        if best.0 >= self.config.min_shingles.min(sys.len()) || fraction >= self.config.min_fraction
        {
            let mut f = Finding::new(
                INFO.id,
                "system_prompt_overlap",
                None,
                Severity::High,
                format!(
                    "{} of {} system-prompt shingles ({:.0}%)",
                    best.0,
                    sys.len(),
                    fraction * 100.0
                ),
            );
            f.score = fraction.clamp(0.5, 1.0);
            f.layer = best.1;
            out.push(f);
        }
        Ok(())
    }
}
