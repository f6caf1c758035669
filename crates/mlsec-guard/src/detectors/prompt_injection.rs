//! `prompt_injection`: direct and indirect prompt injection and jailbreaks, in layers.
//!
//! 1. Every prepared view of the text: the normalised text (compatibility forms, homoglyphs,
//!    invisible characters and case folded) and what decoding found inside it (base64, hex,
//!    percent-encoding, escapes, tag characters; recursively) and the deciphered readings
//!    (rot13, leetspeak, spelled-out letters, reversed).
//! 2. Signature rules for the known families (`rules/injection.toml`): instruction override,
//!    role-play personas, system-prompt extraction, chat-template and fake-turn delimiters,
//!    refusal suppression, hypothetical framing, encoded instructions, indirect injection
//!    addressed to the model, exfiltration through links; and an adversarial-suffix heuristic
//!    for optimiser-generated jailbreaks (GCG-style token soup).
//! 3. The statistical classifier shipped in the binary (see `classifier`), on the whole text,
//!    on windows of it (an injection buried in a long document) and on each decoded payload.
//!
//! Scores of distinct rules and the classifier combine as 1 − Π(1 − sᵢ); the detector reports
//! when the combination reaches `threshold`.

use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use crate::charlm::{CharLm, odd_token};
use crate::classifier::Model;
use crate::detector::{Detector, Finding, ScanInput, Severity, excerpt, parse_config};
use crate::error::{GuardError, Result};
use crate::prepare::ViewKind;
use crate::registry::{DetectorInfo, INPUT};

pub const INFO: DetectorInfo = DetectorInfo {
    id: "prompt_injection",
    name: "Prompt injection and jailbreak",
    directions: INPUT,
    summary: "Attempts to override the application's instructions or the model's safety training: instruction overrides, DAN-style personas, system-prompt extraction, chat-template and fake-turn injection, refusal suppression, optimiser-generated suffixes, and instructions hidden in documents, tool results or encodings.",
    false_positives: "Questions about prompt injection that quote attacks, prompt-engineering requests, and pasted chat transcripts with role lines can score high; role-play requests without a rule-breaking clause do not trigger the persona rule but may raise the classifier score.",
    references: &[
        "OWASP LLM01:2025 Prompt Injection",
        "OWASP LLM07:2025 System Prompt Leakage",
        "AML.T0051 LLM Prompt Injection",
        "AML.T0054 LLM Jailbreak",
        "AML.T0056 Extract LLM System Prompt",
        "AML.M0020 Generative AI Guardrails",
    ],
    eval_label: Some("injection"),
    build: |v| Ok(Box::new(PromptInjection::new(parse_config(INFO.id, v)?)?)),
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Combined score at which the detector reports.
    pub threshold: f32,
    /// Whether the statistical classifier runs.
    pub classifier: bool,
    /// Weight of the classifier's probability in the combination (its probability is
    /// multiplied by this before combining).
    pub classifier_weight: f32,
    /// Window size in bytes for classifying long texts piecewise (0: whole text only).
    pub window_bytes: usize,
    /// Whether the adversarial-suffix heuristic runs.
    pub suffix_heuristic: bool,
    /// Mean surprisal (bits per character, over a 32-character window) of the character
    /// model at which a text counts as optimiser-generated token soup; 0 switches it off.
    pub perplexity_threshold: f32,
    /// Rule ids to switch off.
    pub disable: Vec<String>,
    /// A classifier model file to use instead of the shipped one (from `mlsec guard train`).
    pub model_path: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            threshold: 0.5,
            classifier: true,
            classifier_weight: 1.0,
            window_bytes: 480,
            suffix_heuristic: true,
            // Chosen on the training side only: a model trained on one half of the benign
            // training rows flags 0.13 % of the other half at 6.5 bits (docs/guard.md).
            perplexity_threshold: 6.5,
            disable: Vec::new(),
            model_path: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    rule: Vec<RuleSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Folded,
    Raw,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub id: String,
    pub family: String,
    pub target: Target,
    pub regex: String,
    #[serde(default)]
    pub also: Vec<String>,
    pub keywords: Vec<String>,
    pub score: f32,
    pub examples: Vec<String>,
    pub negatives: Vec<String>,
}

pub struct Rule {
    pub spec: RuleSpec,
    pub regex: Regex,
    pub also: Vec<Regex>,
}

const RULES_TOML: &str = include_str!("../../rules/injection.toml");
static MODEL_BYTES: &[u8] = include_bytes!("../../model/injection.bin");
static CHARLM_BYTES: &[u8] = include_bytes!("../../model/charlm.bin");

/// The shipped character model, parsed once.
pub fn shipped_charlm() -> Result<&'static CharLm> {
    static LM: LazyLock<std::result::Result<CharLm, String>> =
        LazyLock::new(|| CharLm::parse(CHARLM_BYTES).map_err(|e| e.to_string()));
    LM.as_ref().map_err(|e| GuardError::Model(e.clone()))
}

pub fn load_rules(text: &str) -> Result<Vec<Rule>> {
    let file: RuleFile = toml::from_str(text).map_err(|e| GuardError::Rule {
        rule: "injection.toml".into(),
        reason: e.to_string(),
    })?;
    let compile = |id: &str, p: &str| {
        regex::RegexBuilder::new(p)
            .size_limit(1 << 23)
            .build()
            .map_err(|e| GuardError::Rule {
                rule: id.to_string(),
                reason: e.to_string(),
            })
    };
    let mut out = Vec::new();
    for spec in file.rule {
        if !(0.0..=1.0).contains(&spec.score)
            || spec
                .keywords
                .iter()
                .any(|k| k.is_empty() || k.to_lowercase() != *k)
        {
            return Err(GuardError::Rule {
                rule: spec.id.clone(),
                reason: "score must be in 0..=1 and keywords lowercase".into(),
            });
        }
        let regex = compile(&spec.id, &spec.regex)?;
        let also = spec
            .also
            .iter()
            .map(|p| compile(&spec.id, p))
            .collect::<Result<Vec<_>>>()?;
        out.push(Rule { spec, regex, also });
    }
    Ok(out)
}

/// The shipped rules and classifier, parsed once.
pub fn shipped() -> Result<(&'static [Rule], &'static Model)> {
    static RULES: LazyLock<std::result::Result<Vec<Rule>, String>> =
        LazyLock::new(|| load_rules(RULES_TOML).map_err(|e| e.to_string()));
    static MODEL: LazyLock<std::result::Result<Model, String>> =
        LazyLock::new(|| Model::parse(MODEL_BYTES).map_err(|e| e.to_string()));
    let rules = RULES.as_deref().map_err(|e| GuardError::Rule {
        rule: "injection.toml".into(),
        reason: e.clone(),
    })?;
    let model = MODEL.as_ref().map_err(|e| GuardError::Model(e.clone()))?;
    Ok((rules, model))
}

pub struct PromptInjection {
    config: Config,
    rules: &'static [Rule],
    enabled: Vec<usize>,
    model: std::borrow::Cow<'static, Model>,
    charlm: &'static CharLm,
}

/// One reason the detector believes the text is an attack.
struct Signal {
    id: String,
    score: f32,
    finding: Finding,
}

impl PromptInjection {
    pub fn new(config: Config) -> Result<Self> {
        let (rules, model) = shipped()?;
        for d in &config.disable {
            if !rules.iter().any(|r| &r.spec.id == d) {
                return Err(GuardError::Config(format!(
                    "detector prompt_injection: no rule {d:?} to disable"
                )));
            }
        }
        if !(0.0..=1.0).contains(&config.threshold)
            || !(0.0..=1.0).contains(&config.classifier_weight)
        {
            return Err(GuardError::Config(
                "detector prompt_injection: threshold and classifier_weight must be in 0..=1"
                    .into(),
            ));
        }
        let enabled = (0..rules.len())
            .filter(|&i| !config.disable.contains(&rules[i].spec.id))
            .collect();
        let model = match &config.model_path {
            None => std::borrow::Cow::Borrowed(model),
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| {
                    GuardError::Config(format!(
                        "detector prompt_injection: model {}: {e}",
                        path.display()
                    ))
                })?;
                std::borrow::Cow::Owned(Model::parse(&bytes)?)
            }
        };
        if !(0.0..=16.0).contains(&config.perplexity_threshold) {
            return Err(GuardError::Config(
                "detector prompt_injection: perplexity_threshold must be in 0..=16 bits".into(),
            ));
        }
        Ok(PromptInjection {
            config,
            rules,
            enabled,
            model,
            charlm: shipped_charlm()?,
        })
    }

    /// The classifier's probability for a text, with long texts also scored in windows.
    pub fn classify(&self, folded: &str) -> f32 {
        let w = self.config.window_bytes;
        if w == 0 || folded.len() <= w * 3 / 2 {
            return self.model.score(folded);
        }
        self.model.score_windows(folded, w)
    }
}

/// Optimiser-generated suffixes (GCG and its successors) are runs of tokens no writer produces:
/// punctuation fused to words, stray brackets and escapes, mid-word capitals. Scores a text by
/// the densest window of such tokens on one line that does not look like code.
pub fn suffix_score(text: &str) -> f32 {
    let mut best = 0f32;
    for line in text.lines() {
        if line.len() < 40 || line.starts_with("    ") || line.starts_with('\t') {
            continue;
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.len() < 8 {
            continue;
        }
        let odd: Vec<bool> = tokens.iter().map(|t| odd_token(t)).collect();
        const W: usize = 12;
        let window = W.min(tokens.len());
        let mut count = odd[..window].iter().filter(|&&o| o).count();
        let mut peak = count;
        for i in window..tokens.len() {
            count += usize::from(odd[i]);
            count -= usize::from(odd[i - window]);
            peak = peak.max(count);
        }
        let density = peak as f32 / window as f32;
        let s = if peak < 5 {
            0.0
        } else if density >= 0.4 {
            0.9
        } else if density >= 0.3 {
            0.6
        } else {
            0.0
        };
        // Code has odd tokens too, but also calls, assignments and statement ends (checked last:
        // it is the expensive part).
        if s > best && CODE_SHAPES.find_iter(line).take(3).count() < 3 {
            best = s;
        }
    }
    best
}

static CODE_SHAPES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<<|>>|\|\||&&|==|<=|>=|\+\+|',|\w\(|\)\s*\{|;\s*$|\w\s*=\s*[\w\x22'\[{(]|=>|::|</\w|\bimport\s|\bdef\s|\breturn\b|\bfn\s|\bconst\s|\blet\s|\$\w|\w\.\w+\(").expect("static regex")
});

impl Detector for PromptInjection {
    fn id(&self) -> &'static str {
        INFO.id
    }

    fn keyword_groups(&self) -> Vec<Vec<String>> {
        self.enabled
            .iter()
            .map(|&i| self.rules[i].spec.keywords.clone())
            .collect()
    }

    fn scan(&self, input: &ScanInput<'_>, out: &mut Vec<Finding>) -> Result<()> {
        let mut signals: Vec<Signal> = Vec::new();
        let add =
            |signals: &mut Vec<Signal>, id: String, score: f32, finding: Finding| match signals
                .iter_mut()
                .find(|s| s.id == id)
            {
                Some(s) if s.score >= score => {}
                Some(s) => *s = Signal { id, score, finding },
                None => signals.push(Signal { id, score, finding }),
            };
        for (group, &i) in self.enabled.iter().enumerate() {
            if !input.keyword_hits.get(group).copied().unwrap_or(true) {
                continue;
            }
            input.budget.check(INFO.id)?;
            let rule = &self.rules[i];
            let severity = if rule.spec.score >= 0.8 {
                Severity::High
            } else {
                Severity::Medium
            };
            let hit = |text: &str, view: Option<&crate::prepare::View>| -> Option<Finding> {
                let m = rule.regex.find(text)?;
                if !rule.also.iter().all(|a| a.is_match(text)) {
                    return None;
                }
                let (span, layer) = match view {
                    Some(v) => (v.original_span(m.start(), m.end()), v.layer.clone()),
                    None => (
                        crate::detector::Span::new(m.start(), m.end()),
                        String::new(),
                    ),
                };
                let mut f = Finding::new(
                    INFO.id,
                    rule.spec.family.clone(),
                    Some(span),
                    severity,
                    format!("{}: {:?}", rule.spec.id, excerpt(m.as_str(), 80)),
                );
                f.score = rule.spec.score;
                f.layer = layer;
                Some(f)
            };
            match rule.spec.target {
                Target::Raw => {
                    if let Some(f) = hit(input.text, None) {
                        add(&mut signals, rule.spec.id.clone(), rule.spec.score, f);
                    }
                }
                Target::Folded => {
                    for view in &input.prepared.views {
                        if let Some(f) = hit(&view.text, Some(view)) {
                            add(&mut signals, rule.spec.id.clone(), rule.spec.score, f);
                            break;
                        }
                    }
                }
            }
        }
        if self.config.suffix_heuristic {
            let s = suffix_score(input.text);
            if s > 0.0 {
                let mut f = Finding::new(
                    INFO.id,
                    "adversarial_suffix",
                    None,
                    Severity::High,
                    "optimiser-like token soup".into(),
                );
                f.score = s;
                add(&mut signals, "adversarial-suffix".into(), s, f);
            }
        }
        if self.config.perplexity_threshold > 0.0 {
            input.budget.check(INFO.id)?;
            let bits = self.charlm.max_window_surprisal(input.text);
            if bits >= self.config.perplexity_threshold {
                let mut f = Finding::new(
                    INFO.id,
                    "adversarial_suffix",
                    None,
                    Severity::High,
                    format!("unpredictable token run: {bits:.1} bits per character"),
                );
                f.score = 0.9;
                add(&mut signals, "token-soup".into(), 0.9, f);
            }
        }
        if self.config.classifier {
            input.budget.check(INFO.id)?;
            let mut best = (0f32, String::new());
            for view in &input.prepared.views {
                if view.kind == ViewKind::Transform {
                    continue;
                }
                let p = if view.kind == ViewKind::Normalized {
                    self.classify(&view.text)
                } else {
                    self.model.score(&view.text)
                };
                if p > best.0 {
                    best = (p, view.layer.clone());
                }
            }
            let s = best.0 * self.config.classifier_weight;
            if s > 0.0 {
                let mut f = Finding::new(
                    INFO.id,
                    "classifier",
                    None,
                    Severity::High,
                    format!("classifier probability {:.3}", best.0),
                );
                f.score = s;
                f.layer = best.1;
                add(&mut signals, "classifier".into(), s, f);
            }
        }
        let combined = 1.0
            - signals
                .iter()
                .fold(1.0f32, |acc, s| acc * (1.0 - s.score.clamp(0.0, 1.0)));
        if combined >= self.config.threshold {
            let ids: Vec<String> = signals
                .iter()
                .filter(|s| s.score >= 0.05)
                .map(|s| format!("{}={:.2}", s.id, s.score))
                .collect();
            let mut summary = Finding::new(
                INFO.id,
                "prompt_injection",
                None,
                Severity::High,
                ids.join(", "),
            );
            summary.score = combined;
            out.push(summary);
            out.extend(
                signals
                    .into_iter()
                    .filter(|s| s.id != "classifier" && s.score > 0.0)
                    .map(|s| s.finding),
            );
        }
        Ok(())
    }
}
