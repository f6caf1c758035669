//! `secrets`: credentials in prompts (pasted config, logs, code) and in responses.
//!
//! Rules are data (`rules/secrets.toml`): each has a regex whose capture group is the secret,
//! keywords for the shared prefilter (a rule's regex runs only when one of its keywords occurs),
//! an optional minimum Shannon entropy to drop placeholders, and true- and false-positive
//! examples that a test checks. Evidence keeps a 4-character prefix and the length, never the
//! secret.

use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use crate::detector::{Detector, Finding, Redact, ScanInput, Severity, Span, mask, parse_config};
use crate::error::{GuardError, Result};
use crate::registry::{BOTH, DetectorInfo};

pub const INFO: DetectorInfo = DetectorInfo {
    id: "secrets",
    name: "Secrets",
    directions: BOTH,
    summary: "API keys of the major clouds and SaaS, tokens, private keys, JWTs, connection strings and URLs with passwords, and high-entropy values assigned to key words. A key pasted into a prompt is sent to a third party and kept in its logs; a key in a response is a leak from training data, tools or retrieval.",
    false_positives: "Generic assignment rules (password = …) fire on realistic-looking sample values in documentation; test keys (sk_test_) are reported at low severity; entropy thresholds drop obvious placeholders but not every made-up example.",
    references: &[
        "OWASP LLM02:2025 Sensitive Information Disclosure",
        "OWASP LLM07:2025 System Prompt Leakage",
        "AML.T0057 LLM Data Leakage",
        "AML.T0055 Unsecured Credentials",
    ],
    eval_label: Some("secret"),
    build: |v| {
        let config: Config = parse_config(INFO.id, v)?;
        let rules = rules()?;
        let enabled: Vec<usize> = (0..rules.len())
            .filter(|&i| config.disable.iter().all(|d| d != &rules[i].id))
            .collect();
        for d in &config.disable {
            if !rules.iter().any(|r| &r.id == d) {
                return Err(GuardError::Config(format!(
                    "detector secrets: no rule {d:?} to disable"
                )));
            }
        }
        Ok(Box::new(Secrets { rules, enabled }))
    },
};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Rule ids to switch off.
    pub disable: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    rule: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub id: String,
    pub name: String,
    pub regex: String,
    #[serde(default)]
    pub secret_group: usize,
    pub keywords: Vec<String>,
    #[serde(default)]
    pub min_entropy: f64,
    pub severity: Severity,
    pub description: String,
    pub examples: Vec<String>,
    pub negatives: Vec<String>,
}

pub struct Rule {
    pub id: String,
    pub spec: RuleSpec,
    pub regex: Regex,
}

const RULES_TOML: &str = include_str!("../../rules/secrets.toml");

/// The shipped rules, compiled once.
pub fn rules() -> Result<&'static [Rule]> {
    static RULES: LazyLock<std::result::Result<Vec<Rule>, String>> =
        LazyLock::new(|| load(RULES_TOML).map_err(|e| e.to_string()));
    RULES.as_deref().map_err(|e| GuardError::Rule {
        rule: "secrets.toml".into(),
        reason: e.clone(),
    })
}

pub fn load(toml_text: &str) -> Result<Vec<Rule>> {
    let file: RuleFile = toml::from_str(toml_text).map_err(|e| GuardError::Rule {
        rule: "secrets.toml".into(),
        reason: e.to_string(),
    })?;
    let mut rules = Vec::with_capacity(file.rule.len());
    for spec in file.rule {
        let err = |reason: String| GuardError::Rule {
            rule: spec.id.clone(),
            reason,
        };
        let regex = regex::RegexBuilder::new(&spec.regex)
            .size_limit(1 << 22)
            .build()
            .map_err(|e| err(e.to_string()))?;
        if spec.secret_group >= regex.captures_len() {
            return Err(err(format!(
                "secret_group {} but the regex has {} groups",
                spec.secret_group,
                regex.captures_len() - 1
            )));
        }
        if spec.keywords.is_empty()
            || spec
                .keywords
                .iter()
                .any(|k| k.is_empty() || k.to_lowercase() != *k)
        {
            return Err(err("keywords must be non-empty lowercase literals".into()));
        }
        rules.push(Rule {
            id: spec.id.clone(),
            spec,
            regex,
        });
    }
    Ok(rules)
}

/// Shannon entropy in bits per character.
pub fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for b in s.bytes() {
        counts[b as usize] += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = f64::from(n);
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

impl Rule {
    /// Secret spans this rule finds in `text`.
    pub fn matches(&self, text: &str) -> Vec<Span> {
        let mut out = Vec::new();
        for caps in self.regex.captures_iter(text) {
            let Some(m) = caps.get(self.spec.secret_group).or_else(|| caps.get(0)) else {
                continue;
            };
            if self.spec.min_entropy > 0.0 && entropy(m.as_str()) < self.spec.min_entropy {
                continue;
            }
            out.push(Span::new(m.start(), m.end()));
        }
        out
    }
}

pub struct Secrets {
    rules: &'static [Rule],
    enabled: Vec<usize>,
}

impl Detector for Secrets {
    fn id(&self) -> &'static str {
        INFO.id
    }

    fn keyword_groups(&self) -> Vec<Vec<String>> {
        self.enabled
            .iter()
            .map(|&i| self.rules[i].spec.keywords.clone())
            .collect()
    }

    fn needs_keywords(&self) -> bool {
        true
    }

    fn scan(&self, input: &ScanInput<'_>, out: &mut Vec<Finding>) -> Result<()> {
        let mut taken: Vec<Span> = Vec::new();
        for (group, &i) in self.enabled.iter().enumerate() {
            if !input.keyword_hits.get(group).copied().unwrap_or(true) {
                continue;
            }
            input.budget.check(INFO.id)?;
            let rule = &self.rules[i];
            for span in rule.matches(input.text) {
                if taken.iter().any(|t| t.overlaps(&span)) {
                    continue;
                }
                taken.push(span);
                let value = &input.text[span.start..span.end];
                let mut f = Finding::new(
                    INFO.id,
                    rule.id.clone(),
                    Some(span),
                    rule.spec.severity,
                    mask(value),
                );
                f.redact = Redact::Label(format!("[REDACTED:{}]", rule.id));
                out.push(f);
            }
        }
        Ok(())
    }
}
