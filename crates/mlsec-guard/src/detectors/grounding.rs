//! `grounding`: claims in the answer that the provided context does not support.
//!
//! For retrieval-augmented answers: the answer is split into sentences; a sentence is a claim
//! unless it is a question, a hedge or a courtesy. A claim is supported when its numbers all
//! occur in the context, its capitalised names occur in the context, and enough of its content
//! words (lightly stemmed) occur in the best-matching context sentence or the context as a
//! whole. Lexical, offline and explainable; it does not understand negation or paraphrase far
//! from the source wording, so it reports candidates for review rather than proofs.

use std::collections::HashSet;

use serde::Deserialize;

use crate::detector::{Detector, Finding, ScanInput, Severity, Span, excerpt, parse_config};
use crate::error::{GuardError, Result};
use crate::registry::{DetectorInfo, OUTPUT};

pub const INFO: DetectorInfo = DetectorInfo {
    id: "grounding",
    name: "Grounding",
    directions: OUTPUT,
    summary: "Sentences of a retrieval-augmented answer whose numbers, names or content words are not found in the provided context: candidate hallucinations and misinformation presented as coming from the user's documents.",
    false_positives: "Heavy paraphrase and general knowledge the context does not spell out are reported; negations and swapped relations with the same words are not caught.",
    references: &[
        "OWASP LLM09:2025 Misinformation",
        "AML.T0048 External Harms",
        "AML.M0020 Generative AI Guardrails",
    ],
    eval_label: Some("ungrounded"),
    build: |v| {
        let config: Config = parse_config(INFO.id, v)?;
        if !(0.0..=1.0).contains(&config.min_support) {
            return Err(GuardError::Config(
                "detector grounding: min_support must be in 0..=1".into(),
            ));
        }
        Ok(Box::new(Grounding { config }))
    },
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Fraction of a claim's content words that must occur in the context.
    pub min_support: f32,
    /// Claims with fewer content words are not judged.
    pub min_words: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min_support: 0.6,
            min_words: 3,
        }
    }
}

pub struct Grounding {
    config: Config,
}

const STOP: &[&str] = &[
    "the",
    "and",
    "for",
    "are",
    "but",
    "not",
    "you",
    "all",
    "any",
    "can",
    "had",
    "her",
    "was",
    "one",
    "our",
    "out",
    "has",
    "have",
    "been",
    "were",
    "they",
    "this",
    "that",
    "with",
    "from",
    "which",
    "their",
    "there",
    "these",
    "those",
    "then",
    "than",
    "into",
    "also",
    "its",
    "his",
    "she",
    "him",
    "who",
    "what",
    "when",
    "where",
    "will",
    "would",
    "could",
    "should",
    "about",
    "after",
    "before",
    "because",
    "being",
    "both",
    "each",
    "more",
    "most",
    "other",
    "some",
    "such",
    "only",
    "over",
    "very",
    "just",
    "does",
    "did",
    "doing",
    "how",
    "why",
    "may",
    "might",
    "must",
    "per",
    "via",
    "while",
    "within",
    "without",
    "based",
    "according",
    "context",
    "document",
    "text",
    "provided",
    "mentioned",
    "states",
    "says",
    "answer",
    "yes",
    "here",
    "your",
];

fn stem(w: &str) -> String {
    let w = w.to_lowercase();
    for suffix in [
        "ational", "ization", "ations", "ation", "ments", "ment", "ings", "ing", "edly", "ies",
        "ied", "ness", "ers", "est", "ed", "es", "ly", "er", "s",
    ] {
        if w.len() > suffix.len() + 3 && w.ends_with(suffix) {
            return w[..w.len() - suffix.len()].to_string();
        }
    }
    w
}

fn numbers(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in s.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() || (c == '.' || c == ',') && !cur.is_empty() {
            if c != ',' {
                cur.push(c);
            }
        } else if !cur.is_empty() {
            let n = cur.trim_end_matches('.').to_string();
            if !n.is_empty() {
                out.push(n);
            }
            cur.clear();
        }
    }
    out
}

fn content_words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3 && !w.chars().all(|c| c.is_ascii_digit()))
        .map(|w| w.to_lowercase())
        .filter(|w| !STOP.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
}

/// Sentence spans: split after `.`, `!`, `?` followed by whitespace, and at line breaks.
fn sentences(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut start = 0;
    let b = text.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        let end_here = match c {
            b'.' | b'!' | b'?' => {
                b.get(i + 1).is_none_or(|n| n.is_ascii_whitespace())
                    && !(c == b'.'
                        && i > 0
                        && b[i - 1].is_ascii_digit()
                        && b.get(i + 1).is_some_and(|n| n.is_ascii_digit()))
            }
            b'\n' => true,
            _ => false,
        };
        if end_here {
            if text[start..=i].trim().len() > 1 {
                out.push(Span::new(start, i + 1));
            }
            start = i + 1;
        }
    }
    if text[start..].trim().len() > 1 {
        out.push(Span::new(start, text.len()));
    }
    out
}

fn is_claim(s: &str) -> bool {
    let t = s.trim().to_lowercase();
    !(t.ends_with('?')
        || t.starts_with("i hope")
        || t.starts_with("let me know")
        || t.starts_with("feel free")
        || t.starts_with("i'm not sure")
        || t.starts_with("i am not sure")
        || t.starts_with("the context does not")
        || t.starts_with("the provided context does not")
        || t.starts_with("i don't know")
        || t.starts_with("i do not know")
        || t.contains("not mentioned in"))
}

impl Detector for Grounding {
    fn id(&self) -> &'static str {
        INFO.id
    }

    fn stream_mode(&self) -> crate::detector::StreamMode {
        crate::detector::StreamMode::AtEnd
    }

    fn scan(&self, input: &ScanInput<'_>, out: &mut Vec<Finding>) -> Result<()> {
        let Some(context) = input.context.grounding.as_deref() else {
            return Ok(());
        };
        let ctx_words: HashSet<String> = content_words(context).into_iter().collect();
        let ctx_numbers: HashSet<String> = numbers(context).into_iter().collect();
        let ctx_lower = context.to_lowercase();
        let ctx_sentences: Vec<HashSet<String>> = sentences(context)
            .iter()
            .map(|s| {
                content_words(&context[s.start..s.end])
                    .into_iter()
                    .collect()
            })
            .collect();
        for span in sentences(input.text) {
            input.budget.check(INFO.id)?;
            let sentence = &input.text[span.start..span.end];
            if !is_claim(sentence) {
                continue;
            }
            let words = content_words(sentence);
            let missing_numbers: Vec<String> = numbers(sentence)
                .into_iter()
                .filter(|n| !ctx_numbers.contains(n))
                .collect();
            // Capitalised words that are not sentence-initial are names; they must appear.
            let missing_names: Vec<&str> = sentence
                .split_whitespace()
                .skip(1)
                .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
                .filter(|w| {
                    w.len() >= 3
                        && w.chars().next().is_some_and(char::is_uppercase)
                        && !ctx_lower.contains(&w.to_lowercase())
                })
                .collect();
            if words.len() < self.config.min_words
                && missing_numbers.is_empty()
                && missing_names.is_empty()
            {
                continue;
            }
            let uniq: HashSet<&String> = words.iter().collect();
            let overall = uniq.iter().filter(|w| ctx_words.contains(**w)).count() as f32
                / uniq.len().max(1) as f32;
            let best_local = ctx_sentences
                .iter()
                .map(|cs| {
                    uniq.iter().filter(|w| cs.contains(**w)).count() as f32
                        / uniq.len().max(1) as f32
                })
                .fold(0f32, f32::max);
            let support = overall.min(1.0).max(best_local);
            let unsupported = !missing_numbers.is_empty()
                || !missing_names.is_empty()
                || support < self.config.min_support;
            if unsupported {
                let why = if !missing_numbers.is_empty() {
                    format!("numbers not in context: {}", missing_numbers.join(", "))
                } else if !missing_names.is_empty() {
                    format!("names not in context: {}", missing_names.join(", "))
                } else {
                    format!("{:.0}% of content words found in context", support * 100.0)
                };
                let mut f = Finding::new(
                    INFO.id,
                    "unsupported_claim",
                    Some(span),
                    Severity::Medium,
                    format!("{why}: {:?}", excerpt(sentence.trim(), 80)),
                );
                f.score = 1.0 - support;
                out.push(f);
            }
        }
        Ok(())
    }
}
