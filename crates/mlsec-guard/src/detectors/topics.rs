//! `topics`: keep a conversation on the application's subject.
//!
//! A topic is a name and the terms that signal it (words or phrases, matched on the normalised
//! text at word boundaries). A denied topic whose terms reach `min_hits` is reported; when
//! allowed topics are configured, a text that reaches none of them is reported as off-topic.
//! Term lists are explicit and auditable, work offline and cost one Aho-Corasick pass.

use aho_corasick::{AhoCorasick, MatchKind};
use serde::Deserialize;

use crate::detector::{Detector, Finding, ScanInput, Severity, parse_config};
use crate::error::{GuardError, Result};
use crate::prepare::fold;
use crate::registry::{BOTH, DetectorInfo};

pub const INFO: DetectorInfo = DetectorInfo {
    id: "topics",
    name: "Topic restriction",
    directions: BOTH,
    summary: "Allowed and denied topics defined by term lists: a banking assistant that must not give medical or legal advice, or must stay on banking. Off-topic use of an LLM product is abuse of its budget and a liability.",
    false_positives: "Term lists miss paraphrases and can match a term used in another sense; short texts ('thanks!') reach no allowed topic, so `min_chars` exempts them.",
    references: &[
        "OWASP LLM06:2025 Excessive Agency",
        "OWASP LLM10:2025 Unbounded Consumption",
        "AML.M0020 Generative AI Guardrails",
    ],
    eval_label: Some("topic"),
    build: |v| Ok(Box::new(Topics::new(parse_config(INFO.id, v)?)?)),
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    pub name: String,
    pub terms: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub allowed: Vec<Topic>,
    pub denied: Vec<Topic>,
    /// Distinct terms of a topic needed to count it as present.
    pub min_hits: usize,
    /// Texts shorter than this are not checked against the allowed topics.
    pub min_chars: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            allowed: Vec::new(),
            denied: Vec::new(),
            min_hits: 1,
            min_chars: 40,
        }
    }
}

pub struct Topics {
    config: Config,
    ac: Option<AhoCorasick>,
    /// For each pattern: (denied?, topic index).
    owner: Vec<(bool, usize)>,
}

impl Topics {
    fn new(config: Config) -> Result<Self> {
        let mut patterns = Vec::new();
        let mut owner = Vec::new();
        for (denied, list) in [(false, &config.allowed), (true, &config.denied)] {
            for (t, topic) in list.iter().enumerate() {
                if topic.terms.is_empty() {
                    return Err(GuardError::Config(format!(
                        "detector topics: topic {:?} has no terms",
                        topic.name
                    )));
                }
                for term in &topic.terms {
                    patterns.push(fold(term).0);
                    owner.push((denied, t));
                }
            }
        }
        let ac = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&patterns)
                    .map_err(|e| GuardError::Config(format!("detector topics: {e}")))?,
            )
        };
        Ok(Topics { config, ac, owner })
    }
}

impl Detector for Topics {
    fn id(&self) -> &'static str {
        INFO.id
    }

    fn scan(&self, input: &ScanInput<'_>, out: &mut Vec<Finding>) -> Result<()> {
        let Some(ac) = &self.ac else { return Ok(()) };
        let text = &input.prepared.normalized().text;
        let t = text.as_bytes();
        let mut hits: Vec<Vec<usize>> = vec![Vec::new(); self.owner.len()];
        let mut allowed = vec![Vec::new(); self.config.allowed.len()];
        let mut denied = vec![Vec::new(); self.config.denied.len()];
        for m in ac.find_iter(text.as_str()) {
            let word = |i: usize| t.get(i).is_some_and(|b| b.is_ascii_alphanumeric());
            if m.start() > 0 && word(m.start() - 1) || word(m.end()) {
                continue;
            }
            let p = m.pattern().as_usize();
            hits[p].push(m.start());
            let (is_denied, topic) = self.owner[p];
            let list = if is_denied {
                &mut denied[topic]
            } else {
                &mut allowed[topic]
            };
            if !list.contains(&p) {
                list.push(p);
            }
        }
        for (i, terms) in denied.iter().enumerate() {
            if terms.len() >= self.config.min_hits {
                let mut f = Finding::new(
                    INFO.id,
                    format!("denied:{}", self.config.denied[i].name),
                    None,
                    Severity::Medium,
                    format!("{} term(s) of a denied topic", terms.len()),
                );
                f.score = 1.0;
                out.push(f);
            }
        }
        if !self.config.allowed.is_empty()
            && text.len() >= self.config.min_chars
            && allowed
                .iter()
                .all(|terms| terms.len() < self.config.min_hits)
        {
            out.push(Finding::new(
                INFO.id,
                "off_topic",
                None,
                Severity::Low,
                "no allowed topic reached".into(),
            ));
        }
        Ok(())
    }
}
