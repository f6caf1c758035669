//! The pipeline: ordered detectors per direction, each with an action, a time budget and a
//! failure mode; one shared preparation and one keyword prefilter pass per text; a verdict
//! with every finding and timing; and a streaming mode for responses.

use std::time::{Duration, Instant};

use aho_corasick::{AhoCorasick, MatchKind};
use serde::{Deserialize, Serialize};

use crate::detector::{
    Budget, Detector, Direction, Finding, Redact, RequestContext, ScanInput, Span, StreamMode,
};
use crate::error::{GuardError, Result};
use crate::prepare::{PrepareLimits, prepare};
use crate::registry;
use crate::vault::Vault;

/// What a stage does when its detector reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Record the findings only.
    Allow,
    /// Let the text through, marked for review.
    Flag,
    /// Replace the findings' spans (placeholders, labels, removal); findings that cannot be
    /// redacted count as `flag`.
    Redact,
    /// Stop the text.
    Block,
}

/// When a detector errs or runs out of time: `closed` blocks, `open` lets the text through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    Open,
    Closed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    pub detector: String,
    pub action: Action,
    #[serde(default = "default_budget_ms")]
    pub budget_ms: f64,
    #[serde(default = "default_fail")]
    pub on_error: FailMode,
    /// Findings with a lower score are ignored.
    #[serde(default)]
    pub min_score: f32,
    /// The detector's own typed configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
}

fn default_budget_ms() -> f64 {
    100.0
}

fn default_fail() -> FailMode {
    FailMode::Closed
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamConfig {
    /// Bytes of already-scanned text rescanned with each chunk, so a match split across
    /// chunks is seen whole. At least `holdback_bytes`.
    pub window_bytes: usize,
    /// Bytes kept back from the client until the next chunk (or the end) confirms them, so a
    /// secret that starts in this chunk can still be redacted. This is the latency the
    /// streaming guard adds, in bytes.
    pub holdback_bytes: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            window_bytes: 512,
            holdback_bytes: 256,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Texts above this size are refused with an error rather than scanned.
    pub max_bytes: usize,
    pub decode_depth: u8,
    pub input: Vec<StageConfig>,
    pub output: Vec<StageConfig>,
    pub stream: StreamConfig,
}

fn stage(detector: &str, action: Action) -> StageConfig {
    StageConfig {
        detector: detector.into(),
        action,
        budget_ms: default_budget_ms(),
        on_error: FailMode::Closed,
        min_score: 0.0,
        config: None,
    }
}

impl Default for PipelineConfig {
    /// The default pipelines: what a product team gets before tuning.
    fn default() -> Self {
        let mut code = stage("code", Action::Flag);
        code.config = Some(serde_json::json!({"dangerous_only": true}));
        PipelineConfig {
            max_bytes: 4 << 20,
            decode_depth: 3,
            input: vec![
                stage("hidden_text", Action::Redact),
                stage("prompt_injection", Action::Block),
                stage("secrets", Action::Redact),
                stage("pii", Action::Redact),
                stage("token_limit", Action::Block),
            ],
            output: vec![
                stage("canary", Action::Block),
                stage("system_prompt_leak", Action::Block),
                stage("secrets", Action::Redact),
                stage("pii", Action::Redact),
                stage("links", Action::Redact),
                stage("markup", Action::Redact),
                stage("hidden_text", Action::Redact),
                code,
                stage("toxicity", Action::Flag),
                stage("refusal", Action::Allow),
                stage("json_schema", Action::Flag),
                stage("grounding", Action::Flag),
            ],
            stream: StreamConfig::default(),
        }
    }
}

impl PipelineConfig {
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| GuardError::Config(e.to_string()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Flag,
    Redact,
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    Ok,
    /// Skipped: the prefilter found none of its keywords.
    Skipped,
    /// The detector failed or ran out of budget; `on_error` decided.
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageResult {
    pub detector: String,
    pub action: Action,
    pub status: StageStatus,
    pub elapsed_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    pub direction: Direction,
    pub decision: Decision,
    /// The text to forward when the decision is `redact`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redacted: Option<String>,
    pub stages: Vec<StageResult>,
    /// Preparation (normalising, decoding) and prefilter time.
    pub prepare_us: u64,
    pub total_us: u64,
    /// Some decoding stopped at a limit (depth, views, bytes).
    pub truncated: bool,
}

impl Verdict {
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.stages.iter().flat_map(|s| s.findings.iter())
    }
    pub fn blocked(&self) -> bool {
        self.decision == Decision::Block
    }
}

struct Stage {
    config: StageConfig,
    detector: Box<dyn Detector>,
    budget: Duration,
    mode: StreamMode,
    groups: usize,
    needs_keywords: bool,
}

struct Side {
    stages: Vec<Stage>,
    prefilter: Option<AhoCorasick>,
    /// For each unique keyword: the (stage, group) pairs it belongs to.
    owners: Vec<Vec<(usize, usize)>>,
}

impl Side {
    fn build(configs: &[StageConfig], direction: Direction) -> Result<Side> {
        let mut stages = Vec::new();
        let mut keywords: Vec<String> = Vec::new();
        let mut owners: Vec<Vec<(usize, usize)>> = Vec::new();
        for (si, c) in configs.iter().enumerate() {
            let info = registry::find(&c.detector)
                .ok_or_else(|| GuardError::Config(format!("unknown detector {:?}", c.detector)))?;
            if !info.directions.contains(&direction) {
                return Err(GuardError::Config(format!(
                    "detector {} does not run on {direction:?} text",
                    c.detector
                )));
            }
            if !(c.budget_ms > 0.0 && c.budget_ms.is_finite()) {
                return Err(GuardError::Config(format!(
                    "detector {}: budget_ms must be positive",
                    c.detector
                )));
            }
            let detector = (info.build)(c.config.as_ref())?;
            let groups = detector.keyword_groups();
            for (gi, group) in groups.iter().enumerate() {
                for k in group {
                    let k = k.to_lowercase();
                    match keywords.iter().position(|x| *x == k) {
                        Some(i) => owners[i].push((si, gi)),
                        None => {
                            keywords.push(k);
                            owners.push(vec![(si, gi)]);
                        }
                    }
                }
            }
            stages.push(Stage {
                budget: Duration::from_secs_f64(c.budget_ms / 1000.0),
                mode: detector.stream_mode(),
                needs_keywords: detector.needs_keywords(),
                groups: groups.len(),
                detector,
                config: c.clone(),
            });
        }
        let prefilter = if keywords.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .build(&keywords)
                    .map_err(|e| GuardError::Config(format!("keyword prefilter: {e}")))?,
            )
        };
        Ok(Side {
            stages,
            prefilter,
            owners,
        })
    }
}

/// A built pipeline. Cheap to share across threads; one scan allocates only per request.
pub struct Pipeline {
    config: PipelineConfig,
    limits: PrepareLimits,
    input: Side,
    output: Side,
}

impl Pipeline {
    pub fn new(config: PipelineConfig) -> Result<Self> {
        if config.stream.window_bytes < config.stream.holdback_bytes {
            return Err(GuardError::Config(
                "stream.window_bytes must be at least stream.holdback_bytes".into(),
            ));
        }
        let limits = PrepareLimits {
            max_depth: config.decode_depth,
            ..PrepareLimits::default()
        };
        Ok(Pipeline {
            input: Side::build(&config.input, Direction::Input)?,
            output: Side::build(&config.output, Direction::Output)?,
            limits,
            config,
        })
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    fn side(&self, direction: Direction) -> &Side {
        match direction {
            Direction::Input => &self.input,
            Direction::Output => &self.output,
        }
    }

    /// Scans a prompt. PII placeholders minted by redaction go into `vault`, so the response
    /// can be restored with [`Vault::restore`].
    pub fn scan_input(
        &self,
        text: &str,
        context: &RequestContext,
        vault: &mut Vault,
    ) -> Result<Verdict> {
        self.scan(Direction::Input, text, context, Some(vault), None)
    }

    /// Scans a complete response.
    pub fn scan_output(&self, text: &str, context: &RequestContext) -> Result<Verdict> {
        self.scan(Direction::Output, text, context, None, None)
    }

    /// Scans with all stages, or only those whose stream mode is `only`.
    fn scan(
        &self,
        direction: Direction,
        text: &str,
        context: &RequestContext,
        vault: Option<&mut Vault>,
        only: Option<StreamMode>,
    ) -> Result<Verdict> {
        if text.len() > self.config.max_bytes {
            return Err(GuardError::TooLarge {
                len: text.len(),
                limit: self.config.max_bytes,
            });
        }
        let started = Instant::now();
        let side = self.side(direction);
        let prepared = prepare(text, &self.limits);
        // One prefilter pass over the text and every view for all stages' keywords.
        let mut hits: Vec<Vec<bool>> = side.stages.iter().map(|s| vec![false; s.groups]).collect();
        if let Some(ac) = &side.prefilter {
            let mut seen = vec![false; side.owners.len()];
            let mut scan = |hay: &str| {
                for m in ac.find_overlapping_iter(hay) {
                    let k = m.pattern().as_usize();
                    if !seen[k] {
                        seen[k] = true;
                        for &(s, g) in &side.owners[k] {
                            hits[s][g] = true;
                        }
                    }
                }
            };
            scan(text);
            for v in &prepared.views {
                scan(&v.text);
            }
        }
        let prepare_us = started.elapsed().as_micros() as u64;
        let mut stages = Vec::with_capacity(side.stages.len());
        for (si, stage) in side.stages.iter().enumerate() {
            if only.is_some_and(|m| m != stage.mode) {
                continue;
            }
            let t0 = Instant::now();
            let mut result = StageResult {
                detector: stage.config.detector.clone(),
                action: stage.config.action,
                status: StageStatus::Ok,
                elapsed_us: 0,
                error: None,
                findings: Vec::new(),
            };
            if stage.needs_keywords && !hits[si].iter().any(|&h| h) {
                result.status = StageStatus::Skipped;
                stages.push(result);
                continue;
            }
            let input = ScanInput {
                text,
                prepared: &prepared,
                direction,
                context,
                budget: Budget::starting_now(stage.budget),
                keyword_hits: &hits[si],
            };
            match stage.detector.scan(&input, &mut result.findings) {
                Ok(()) => result
                    .findings
                    .retain(|f| f.score >= stage.config.min_score),
                Err(e) => {
                    result.status = StageStatus::Failed;
                    result.error = Some(e.to_string());
                    result.findings.clear();
                }
            }
            result.elapsed_us = t0.elapsed().as_micros() as u64;
            stages.push(result);
        }
        let mut verdict = Verdict {
            direction,
            decision: Decision::Allow,
            redacted: None,
            stages,
            prepare_us,
            total_us: 0,
            truncated: prepared.truncated,
        };
        decide(&mut verdict, side, text, vault);
        verdict.total_us = started.elapsed().as_micros() as u64;
        Ok(verdict)
    }

    /// A streaming guard for one response.
    pub fn stream<'p>(&'p self, context: &'p RequestContext) -> StreamGuard<'p> {
        StreamGuard {
            pipeline: self,
            context,
            text: String::new(),
            released: 0,
            scanned: 0,
            redactions: Vec::new(),
            findings: Vec::new(),
            blocked: false,
            stage_us: Vec::new(),
        }
    }
}

/// Applies the stages' actions to their findings: the decision, and the redacted text.
fn decide(verdict: &mut Verdict, side: &Side, text: &str, vault: Option<&mut Vault>) {
    let mut decision = Decision::Allow;
    let mut redactions: Vec<(Span, Redact, String)> = Vec::new();
    for stage in &verdict.stages {
        let fail = side
            .stages
            .iter()
            .find(|s| s.config.detector == stage.detector)
            .map_or(FailMode::Closed, |s| s.config.on_error);
        if stage.status == StageStatus::Failed && fail == FailMode::Closed {
            decision = decision.max(Decision::Block);
        }
        if stage.findings.is_empty() {
            continue;
        }
        let d = match stage.action {
            Action::Allow => Decision::Allow,
            Action::Flag => Decision::Flag,
            Action::Block => Decision::Block,
            Action::Redact => {
                let mut any_flag = false;
                for f in &stage.findings {
                    match (&f.redact, f.span) {
                        (Redact::No, _) | (_, None) => any_flag = true,
                        (r, Some(span)) => redactions.push((span, r.clone(), f.kind.clone())),
                    }
                }
                if any_flag && redactions.is_empty() {
                    Decision::Flag
                } else {
                    Decision::Redact
                }
            }
        };
        decision = decision.max(d);
    }
    if decision == Decision::Redact || (!redactions.is_empty() && decision == Decision::Flag) {
        verdict.redacted = Some(apply_redactions(text, redactions, vault));
        decision = decision.max(Decision::Redact);
    }
    verdict.decision = decision;
}

/// Replaces spans (longest first where they overlap) with their placeholders.
fn apply_redactions(
    text: &str,
    mut redactions: Vec<(Span, Redact, String)>,
    mut vault: Option<&mut Vault>,
) -> String {
    redactions.sort_by(|a, b| a.0.start.cmp(&b.0.start).then(b.0.len().cmp(&a.0.len())));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (span, how, kind) in redactions {
        if span.start < at
            || span.end > text.len()
            || !text.is_char_boundary(span.start)
            || !text.is_char_boundary(span.end)
        {
            continue;
        }
        out.push_str(&text[at..span.start]);
        let value = &text[span.start..span.end];
        match how {
            Redact::Vault => match vault.as_deref_mut() {
                Some(v) => out.push_str(&v.placeholder(&kind, value)),
                None => out.push_str(&format!("[{kind}]")),
            },
            Redact::Label(l) => out.push_str(&l),
            Redact::Remove => {}
            Redact::No => out.push_str(value),
        }
        at = span.end;
    }
    out.push_str(&text[at..]);
    out
}

/// What the streaming guard lets through after a chunk.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamChunk {
    /// Text safe to send to the client now (redactions applied).
    pub text: String,
    pub blocked: bool,
    /// Findings first seen in this chunk.
    pub findings: Vec<Finding>,
    /// Time this chunk cost the guard.
    pub elapsed_us: u64,
}

/// Guards a streamed response: each chunk is scanned together with a window of what came
/// before, so a secret or leak split across chunks is seen whole; a hold-back of the last bytes
/// lets a redaction reach text that has not been sent yet. Whole-text detectors (grounding,
/// JSON schema) run at `finish`.
pub struct StreamGuard<'p> {
    pipeline: &'p Pipeline,
    context: &'p RequestContext,
    text: String,
    released: usize,
    scanned: usize,
    redactions: Vec<(Span, String)>,
    findings: Vec<Finding>,
    blocked: bool,
    stage_us: Vec<u64>,
}

impl StreamGuard<'_> {
    fn floor(&self, mut i: usize) -> usize {
        while !self.text.is_char_boundary(i) {
            i -= 1;
        }
        i
    }

    /// Scans `[from, len)` of the text with the window-mode stages and records what is new.
    fn scan_from(&mut self, from: usize, only: StreamMode) -> Result<(Vec<Finding>, Decision)> {
        let from = self.floor(from);
        let piece = &self.text[from..];
        let verdict =
            self.pipeline
                .scan(Direction::Output, piece, self.context, None, Some(only))?;
        let mut new = Vec::new();
        let mut decision = Decision::Allow;
        for stage in verdict.stages {
            self.stage_us.push(stage.elapsed_us);
            if stage.status == StageStatus::Failed {
                let fail = self
                    .pipeline
                    .output
                    .stages
                    .iter()
                    .find(|s| s.config.detector == stage.detector)
                    .map_or(FailMode::Closed, |s| s.config.on_error);
                if fail == FailMode::Closed {
                    decision = Decision::Block;
                }
            }
            for mut f in stage.findings {
                if let Some(s) = f.span.as_mut() {
                    s.start += from;
                    s.end += from;
                }
                let seen = self.findings.iter().any(|g| {
                    g.detector == f.detector
                        && g.kind == f.kind
                        && (g.span.is_none() && f.span.is_none()
                            || g.span.zip(f.span).is_some_and(|(a, b)| a.overlaps(&b)))
                });
                if seen {
                    continue;
                }
                match stage.action {
                    Action::Block => decision = Decision::Block,
                    Action::Flag => decision = decision.max(Decision::Flag),
                    Action::Redact => match (&f.redact, f.span) {
                        (Redact::No, _) | (_, None) => decision = decision.max(Decision::Flag),
                        (r, Some(span)) => {
                            let replacement = match r {
                                Redact::Label(l) => l.clone(),
                                Redact::Vault => format!("[REDACTED:{}]", f.kind),
                                _ => String::new(),
                            };
                            if span.start >= self.released {
                                self.redactions.push((span, replacement));
                                decision = decision.max(Decision::Redact);
                            } else {
                                // Part of it is already out: the hold-back was shorter than
                                // the match. Stop the stream rather than leak the rest.
                                decision = Decision::Block;
                            }
                        }
                    },
                    Action::Allow => {}
                }
                self.findings.push(f.clone());
                new.push(f);
            }
        }
        Ok((new, decision))
    }

    /// Releases text up to `limit`, applying redactions and never cutting one in half.
    fn release(&mut self, limit: usize) -> String {
        let mut limit = self.floor(limit.min(self.text.len()));
        self.redactions.sort_by_key(|(s, _)| s.start);
        for (s, _) in &self.redactions {
            if s.start < limit && s.end > limit {
                limit = s.start;
            }
        }
        let mut out = String::new();
        let mut at = self.released;
        for (s, replacement) in &self.redactions {
            if s.start < at || s.end > limit {
                continue;
            }
            out.push_str(&self.text[at..s.start]);
            out.push_str(replacement);
            at = s.end;
        }
        if at < limit {
            out.push_str(&self.text[at..limit]);
        }
        self.released = limit.max(self.released);
        out
    }

    /// Takes the next chunk of the response.
    pub fn push(&mut self, chunk: &str) -> Result<StreamChunk> {
        let t0 = Instant::now();
        if self.blocked {
            return Ok(StreamChunk {
                blocked: true,
                ..StreamChunk::default()
            });
        }
        if self.text.len() + chunk.len() > self.pipeline.config.max_bytes {
            return Err(GuardError::TooLarge {
                len: self.text.len() + chunk.len(),
                limit: self.pipeline.config.max_bytes,
            });
        }
        self.text.push_str(chunk);
        let from = self
            .scanned
            .saturating_sub(self.pipeline.config.stream.window_bytes);
        let (findings, decision) = self.scan_from(from, StreamMode::Window)?;
        self.scanned = self.text.len();
        if decision == Decision::Block {
            self.blocked = true;
            return Ok(StreamChunk {
                text: String::new(),
                blocked: true,
                findings,
                elapsed_us: t0.elapsed().as_micros() as u64,
            });
        }
        let limit = self
            .text
            .len()
            .saturating_sub(self.pipeline.config.stream.holdback_bytes);
        let text = if limit > self.released {
            self.release(limit)
        } else {
            String::new()
        };
        Ok(StreamChunk {
            text,
            blocked: false,
            findings,
            elapsed_us: t0.elapsed().as_micros() as u64,
        })
    }

    /// Ends the response: runs the whole-text stages and releases what was held back.
    pub fn finish(&mut self) -> Result<StreamChunk> {
        let t0 = Instant::now();
        if self.blocked {
            return Ok(StreamChunk {
                blocked: true,
                ..StreamChunk::default()
            });
        }
        let (findings, decision) = self.scan_from(0, StreamMode::AtEnd)?;
        if decision == Decision::Block {
            self.blocked = true;
            return Ok(StreamChunk {
                text: String::new(),
                blocked: true,
                findings,
                elapsed_us: t0.elapsed().as_micros() as u64,
            });
        }
        let end = self.text.len();
        let text = self.release(end);
        Ok(StreamChunk {
            text,
            blocked: false,
            findings,
            elapsed_us: t0.elapsed().as_micros() as u64,
        })
    }

    /// Every finding of the stream so far.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    pub fn blocked(&self) -> bool {
        self.blocked
    }
}
