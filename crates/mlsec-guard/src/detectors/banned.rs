//! `banned`: operator-defined substrings and regular expressions that must not appear.
//!
//! Substrings are matched in one Aho-Corasick pass over the normalised text (so case,
//! compatibility forms and invisible characters do not evade them), optionally on word
//! boundaries; regexes run on the text as given with the linear-time engine.

use aho_corasick::{AhoCorasick, MatchKind};
use regex::Regex;
use serde::Deserialize;

use crate::detector::{Detector, Finding, ScanInput, Severity, excerpt, parse_config};
use crate::error::{GuardError, Result};
use crate::prepare::fold;
use crate::registry::{BOTH, DetectorInfo};

pub const INFO: DetectorInfo = DetectorInfo {
    id: "banned",
    name: "Banned substrings and patterns",
    directions: BOTH,
    summary: "Operator-defined words, phrases and regular expressions: competitor names, internal project code names, phrases from known attacks, forbidden commands. Matching is on the normalised text so case and look-alike characters do not evade it.",
    false_positives: "Substrings without word boundaries match inside longer words (`ass` in `class`); keep word_boundary on unless the list is of distinctive tokens.",
    references: &[
        "OWASP LLM01:2025 Prompt Injection",
        "OWASP LLM05:2025 Improper Output Handling",
        "AML.M0020 Generative AI Guardrails",
    ],
    eval_label: Some("banned"),
    build: |v| Ok(Box::new(Banned::new(parse_config(INFO.id, v)?)?)),
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub substrings: Vec<String>,
    pub regexes: Vec<String>,
    pub word_boundary: bool,
    pub severity: Severity,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            substrings: Vec::new(),
            regexes: Vec::new(),
            word_boundary: true,
            severity: Severity::Medium,
        }
    }
}

pub struct Banned {
    config: Config,
    folded: Vec<String>,
    ac: Option<AhoCorasick>,
    regexes: Vec<Regex>,
}

impl Banned {
    fn new(config: Config) -> Result<Self> {
        let folded: Vec<String> = config
            .substrings
            .iter()
            .map(|s| fold(s).0)
            .filter(|s| !s.is_empty())
            .collect();
        let ac = if folded.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&folded)
                    .map_err(|e| GuardError::Config(format!("detector banned: {e}")))?,
            )
        };
        let regexes = config
            .regexes
            .iter()
            .map(|r| {
                regex::RegexBuilder::new(r)
                    .size_limit(1 << 22)
                    .build()
                    .map_err(|e| GuardError::Config(format!("detector banned: regex {r:?}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Banned {
            config,
            folded,
            ac,
            regexes,
        })
    }
}

impl Detector for Banned {
    fn id(&self) -> &'static str {
        INFO.id
    }

    fn scan(&self, input: &ScanInput<'_>, out: &mut Vec<Finding>) -> Result<()> {
        let view = input.prepared.normalized();
        if let Some(ac) = &self.ac {
            let t = view.text.as_bytes();
            for m in ac.find_iter(&view.text) {
                let word = |i: usize| t.get(i).is_some_and(|b| b.is_ascii_alphanumeric());
                if self.config.word_boundary
                    && (m.start() > 0 && word(m.start() - 1) || word(m.end()))
                {
                    continue;
                }
                let span = view.original_span(m.start(), m.end());
                let phrase = &self.folded[m.pattern().as_usize()];
                out.push(Finding::new(
                    INFO.id,
                    "substring",
                    Some(span),
                    self.config.severity,
                    excerpt(phrase, 60),
                ));
            }
        }
        for (i, re) in self.regexes.iter().enumerate() {
            input.budget.check(INFO.id)?;
            for m in re.find_iter(input.text) {
                let span = crate::detector::Span::new(m.start(), m.end());
                out.push(Finding::new(
                    INFO.id,
                    format!("regex_{i}"),
                    Some(span),
                    self.config.severity,
                    excerpt(m.as_str(), 60),
                ));
            }
        }
        Ok(())
    }
}
