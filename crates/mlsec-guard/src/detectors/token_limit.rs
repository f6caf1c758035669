//! `token_limit`: prompts longer than the application allows, counted in the model's tokens.
//!
//! Counting uses OpenAI's BPE vocabularies (`cl100k_base`, `o200k_base`), embedded in the
//! binary: no download, exact counts for the OpenAI model families and a close estimate for
//! others. A BPE token covers at least one byte, so texts with no more bytes than the limit
//! pass without tokenising at all.

use std::sync::LazyLock;

use serde::Deserialize;
use tiktoken_rs::CoreBPE;

use crate::detector::{Detector, Finding, ScanInput, Severity, parse_config};
use crate::error::{GuardError, Result};
use crate::registry::{DetectorInfo, INPUT};

pub const INFO: DetectorInfo = DetectorInfo {
    id: "token_limit",
    name: "Token limit",
    directions: INPUT,
    summary: "Prompts above a token budget: resource exhaustion and cost attacks, context stuffing that pushes the system prompt out of the window, and many-shot jailbreaks that need long prompts.",
    false_positives: "Legitimate long documents exceed a tight limit; for non-OpenAI models the count is an estimate within a few percent.",
    references: &[
        "OWASP LLM10:2025 Unbounded Consumption",
        "AML.T0034 Cost Harvesting",
        "AML.T0029 Denial of AI Service",
    ],
    eval_label: Some("token_limit"),
    build: |v| {
        let config: Config = parse_config(INFO.id, v)?;
        if !matches!(config.encoding.as_str(), "cl100k_base" | "o200k_base") {
            return Err(GuardError::Config(format!(
                "detector token_limit: unknown encoding {:?} (cl100k_base, o200k_base)",
                config.encoding
            )));
        }
        Ok(Box::new(TokenLimit { config }))
    },
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub max_tokens: usize,
    pub encoding: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_tokens: 8192,
            encoding: "o200k_base".into(),
        }
    }
}

pub struct TokenLimit {
    config: Config,
}

/// The number of tokens of `text` in `encoding` (`cl100k_base` or `o200k_base`).
pub fn count_tokens(encoding: &str, text: &str) -> Result<usize> {
    static CL100K: LazyLock<std::result::Result<CoreBPE, String>> =
        LazyLock::new(|| tiktoken_rs::cl100k_base().map_err(|e| e.to_string()));
    static O200K: LazyLock<std::result::Result<CoreBPE, String>> =
        LazyLock::new(|| tiktoken_rs::o200k_base().map_err(|e| e.to_string()));
    let bpe = match encoding {
        "cl100k_base" => &*CL100K,
        "o200k_base" => &*O200K,
        other => return Err(GuardError::Config(format!("unknown encoding {other:?}"))),
    };
    let bpe = bpe.as_ref().map_err(|e| GuardError::Model(e.clone()))?;
    Ok(bpe.encode_ordinary(text).len())
}

impl Detector for TokenLimit {
    fn id(&self) -> &'static str {
        INFO.id
    }

    fn stream_mode(&self) -> crate::detector::StreamMode {
        crate::detector::StreamMode::AtEnd
    }

    fn scan(&self, input: &ScanInput<'_>, out: &mut Vec<Finding>) -> Result<()> {
        if input.text.len() <= self.config.max_tokens {
            return Ok(());
        }
        let n = count_tokens(&self.config.encoding, input.text)?;
        if n > self.config.max_tokens {
            let mut f = Finding::new(
                INFO.id,
                "over_limit",
                None,
                Severity::Medium,
                format!(
                    "{n} tokens > {} ({})",
                    self.config.max_tokens, self.config.encoding
                ),
            );
            f.score = 1.0;
            out.push(f);
        }
        Ok(())
    }
}
