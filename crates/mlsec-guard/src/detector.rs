//! The detector interface: what a detector sees, what it reports, and how it is configured.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{GuardError, Result};
use crate::prepare::Prepared;

/// Which side of the model a text is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// A prompt on its way to the model.
    Input,
    /// A response on its way back to the user.
    Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// A byte range in the text the caller passed in (never in a normalised or decoded copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
    pub fn overlaps(&self, other: &Span) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// One thing a detector found. `evidence` is safe to log: secrets and personal data are masked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The detector's stable id.
    pub detector: String,
    /// What exactly matched: a rule id, an entity type, a category.
    pub kind: String,
    /// Where, in the caller's text. `None` when the finding is about the whole text
    /// (a classifier score, a token count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
    /// 0..=1; rules report 1.0, classifiers their probability.
    pub score: f32,
    pub severity: Severity,
    /// A masked excerpt, never the secret or personal value itself.
    pub evidence: String,
    /// How the text was transformed before this matched (`base64>rot13`), empty for the text as given.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub layer: String,
    /// What a `redact` action puts in place of the span.
    #[serde(skip)]
    pub redact: Redact,
}

/// How a finding's span is redacted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Redact {
    /// Not redactable (an attack phrase is blocked or flagged, not edited).
    #[default]
    No,
    /// A typed placeholder from the request's vault (`[EMAIL_1]`), restored in the response.
    Vault,
    /// A fixed label (`[REDACTED:github-token]`), never restored.
    Label(String),
    /// Removed (invisible characters).
    Remove,
}

impl Finding {
    /// A finding with the common defaults: score 1, no layer, not redactable.
    pub fn new(
        detector: &str,
        kind: impl Into<String>,
        span: Option<Span>,
        severity: Severity,
        evidence: String,
    ) -> Self {
        Finding {
            detector: detector.to_string(),
            kind: kind.into(),
            span,
            score: 1.0,
            severity,
            evidence,
            layer: String::new(),
            redact: Redact::No,
        }
    }
}

/// Facts about the request that some detectors need. Everything is optional.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// The application's system prompt (system-prompt leakage).
    pub system_prompt: Option<String>,
    /// Retrieved documents the answer should be grounded in.
    pub grounding: Option<String>,
    /// Canary tokens planted in the system prompt or documents.
    pub canaries: Vec<String>,
    /// A JSON schema the response must satisfy.
    pub json_schema: Option<serde_json::Value>,
}

/// A cooperative deadline: detectors check it between units of work (a view, a rule), so a
/// budget holds without threads or preemption.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    deadline: Option<Instant>,
    limit: Duration,
}

impl Budget {
    pub fn unlimited() -> Self {
        Budget {
            deadline: None,
            limit: Duration::MAX,
        }
    }
    pub fn starting_now(limit: Duration) -> Self {
        Budget {
            deadline: Instant::now().checked_add(limit),
            limit,
        }
    }
    pub fn limit(&self) -> Duration {
        self.limit
    }
    /// Errs once the deadline has passed; `detector` names who ran out.
    pub fn check(&self, detector: &'static str) -> Result<()> {
        match self.deadline {
            Some(deadline) if Instant::now() > deadline => Err(GuardError::Budget {
                detector,
                budget_us: self.limit.as_micros().min(u64::MAX as u128) as u64,
            }),
            _ => Ok(()),
        }
    }
}

/// What a detector is given: the raw text, the shared preparation (normalised and decoded
/// views, keyword hits), the request context and its budget.
pub struct ScanInput<'a> {
    pub text: &'a str,
    pub prepared: &'a Prepared,
    pub direction: Direction,
    pub context: &'a RequestContext,
    pub budget: Budget,
    /// For each keyword group this detector declared, whether any of its keywords occurs in
    /// the text or one of its views. A group with no keywords is always `true`.
    pub keyword_hits: &'a [bool],
}

/// How a detector behaves on a streamed response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    /// Sound on any window at least `window` bytes wider than what it matches: run on every chunk.
    Window,
    /// Needs the whole text (grounding, JSON validity): run once at the end.
    AtEnd,
}

pub trait Detector: Send + Sync {
    fn id(&self) -> &'static str;
    /// Keyword groups for the shared prefilter (lowercase literals). The pipeline matches all
    /// detectors' keywords in one pass and hands each detector its `keyword_hits`.
    fn keyword_groups(&self) -> Vec<Vec<String>> {
        Vec::new()
    }
    /// Whether this detector runs at all when none of its keyword groups hit.
    fn needs_keywords(&self) -> bool {
        false
    }
    fn stream_mode(&self) -> StreamMode {
        StreamMode::Window
    }
    fn scan(&self, input: &ScanInput<'_>, out: &mut Vec<Finding>) -> Result<()>;
}

/// Parses a detector's typed configuration from the generic value of a pipeline file, so an
/// unknown key (`#[serde(deny_unknown_fields)]`) or a wrong type is an error naming the detector.
pub fn parse_config<T: serde::de::DeserializeOwned + Default>(
    detector: &str,
    value: Option<&serde_json::Value>,
) -> Result<T> {
    match value {
        None => Ok(T::default()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| GuardError::Config(format!("detector {detector}: {e}"))),
    }
}

/// Masks a sensitive value for evidence: keeps a short prefix (useful to tell an AWS key from a
/// GitHub token) and the length.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let keep = match chars.len() {
        0..=7 => 0,
        8..=15 => 2,
        _ => 4,
    };
    let prefix: String = chars[..keep].iter().collect();
    format!("{prefix}…[{} chars]", chars.len())
}

/// A short excerpt of non-sensitive matched text (attack phrases), cut at a char boundary.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let mut out: String = text.chars().take(max_chars).collect();
    if text.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
