//! Evaluation over labelled datasets: precision, recall, F1 and false-positive rate per label,
//! per-source breakdowns, span-level scores per PII type, and latency percentiles per detector.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::dataset::Example;
use crate::detector::Direction;
use crate::error::Result;
use crate::pipeline::{Action, Decision, FailMode, Pipeline, PipelineConfig, StageConfig};
use crate::registry::REGISTRY;

/// Which detector (and which finding kind of it, if not any) answers for a dataset label.
pub const LABELS: &[(&str, &str, Option<&str>)] = &[
    ("injection", "prompt_injection", None),
    ("pii", "pii", None),
    ("secret", "secrets", None),
    ("hidden_text", "hidden_text", None),
    ("system_prompt_leak", "system_prompt_leak", None),
    ("canary", "canary", None),
    (
        "markdown_exfiltration",
        "links",
        Some("markdown_exfiltration"),
    ),
    ("ip_url", "links", Some("ip_url")),
    ("code", "code", Some("code")),
    ("sql", "code", Some("sql")),
    ("shell", "code", Some("shell")),
    ("xss", "markup", None),
    ("toxicity", "toxicity", None),
    ("refusal", "refusal", None),
    ("ungrounded", "grounding", None),
];

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
}

impl Counts {
    fn add(&mut self, truth: bool, predicted: bool) {
        match (truth, predicted) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
            (true, false) => self.fn_ += 1,
        }
    }
    fn ratio(a: u64, b: u64) -> Option<f64> {
        (b > 0).then(|| a as f64 / b as f64)
    }
    pub fn precision(&self) -> Option<f64> {
        Self::ratio(self.tp, self.tp + self.fp)
    }
    pub fn recall(&self) -> Option<f64> {
        Self::ratio(self.tp, self.tp + self.fn_)
    }
    pub fn fpr(&self) -> Option<f64> {
        Self::ratio(self.fp, self.fp + self.tn)
    }
    pub fn f1(&self) -> Option<f64> {
        let (p, r) = (self.precision()?, self.recall()?);
        (p + r > 0.0).then(|| 2.0 * p * r / (p + r))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LabelReport {
    pub label: String,
    pub detector: String,
    pub counts: Counts,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    pub fpr: Option<f64>,
    /// Per `source`: the counts of rows from that source.
    pub by_source: BTreeMap<String, Counts>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpanReport {
    pub kind: String,
    pub gold: u64,
    pub predicted: u64,
    pub matched_gold: u64,
    pub correct_predicted: u64,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub detector: String,
    pub n: usize,
    pub p50_us: f64,
    pub p95_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub rows: usize,
    pub labels: Vec<LabelReport>,
    pub spans: Vec<SpanReport>,
    pub latency: Vec<Latency>,
    /// The default pipeline: blocked rate on rows labelled `injection` and on the others.
    pub pipeline: Option<PipelineReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PipelineReport {
    pub direction: Direction,
    pub counts: Counts,
    pub recall: Option<f64>,
    pub fpr: Option<f64>,
    pub latency: Latency,
}

pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn latency(detector: &str, mut v: Vec<f64>) -> Latency {
    v.sort_by(f64::total_cmp);
    Latency {
        detector: detector.into(),
        n: v.len(),
        p50_us: percentile(&v, 0.5),
        p95_us: percentile(&v, 0.95),
        p99_us: percentile(&v, 0.99),
        max_us: v.last().copied().unwrap_or(0.0),
    }
}

fn single(
    detector: &str,
    direction: Direction,
    config: Option<serde_json::Value>,
) -> Result<Pipeline> {
    let stage = StageConfig {
        detector: detector.into(),
        action: Action::Flag,
        budget_ms: 10_000.0,
        on_error: FailMode::Closed,
        min_score: 0.0,
        config,
    };
    let mut c = PipelineConfig {
        input: Vec::new(),
        output: Vec::new(),
        ..PipelineConfig::default()
    };
    match direction {
        Direction::Input => c.input.push(stage),
        Direction::Output => c.output.push(stage),
    }
    Pipeline::new(c)
}

/// Evaluates every detector that answers for a label present in `examples` (and `pii` for
/// span-labelled rows), each alone with its default configuration (or `configs[id]`), plus the
/// default pipeline when the set has `injection` labels. `progress` is called per row.
pub fn evaluate(
    examples: &[Example],
    configs: &BTreeMap<String, serde_json::Value>,
    mut progress: impl FnMut(usize),
) -> Result<Report> {
    let present: Vec<&str> = LABELS
        .iter()
        .map(|l| l.0)
        .filter(|l| examples.iter().any(|e| e.labels.iter().any(|x| x == l)))
        .collect();
    let has_spans = examples.iter().any(|e| e.spans.is_some());
    let mut detectors: Vec<&str> = LABELS
        .iter()
        .filter(|l| present.contains(&l.0))
        .map(|l| l.1)
        .collect();
    if has_spans && !detectors.contains(&"pii") {
        detectors.push("pii");
    }
    detectors.dedup();
    let mut pipelines: BTreeMap<(&str, Direction), Pipeline> = BTreeMap::new();
    for d in &detectors {
        let info = REGISTRY
            .iter()
            .find(|i| i.id == *d)
            .expect("label table names registered detectors");
        for dir in info.directions {
            pipelines.insert((d, *dir), single(d, *dir, configs.get(*d).cloned())?);
        }
    }
    let default_pipeline = if present.contains(&"injection") {
        Some(Pipeline::new(PipelineConfig::default())?)
    } else {
        None
    };
    let mut label_counts: BTreeMap<&str, (Counts, BTreeMap<String, Counts>)> = BTreeMap::new();
    let mut times: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut spans: BTreeMap<String, SpanReport> = BTreeMap::new();
    let mut pipe_counts = Counts::default();
    let mut pipe_times = Vec::new();
    for (row, ex) in examples.iter().enumerate() {
        progress(row);
        let mut kinds_by_detector: BTreeMap<&str, Vec<crate::Finding>> = BTreeMap::new();
        for d in &detectors {
            // A detector runs in the row's direction if it can, else in the one it has.
            let Some((&(_, dir), p)) = pipelines
                .get_key_value(&(*d, ex.direction))
                .or_else(|| pipelines.iter().find(|((n, _), _)| n == d))
            else {
                continue;
            };
            let verdict = match dir {
                Direction::Input => {
                    p.scan_input(&ex.text, &ex.context, &mut crate::Vault::new())?
                }
                Direction::Output => p.scan_output(&ex.text, &ex.context)?,
            };
            let stage = &verdict.stages[0];
            times
                .entry(d)
                .or_default()
                .push(stage.elapsed_us as f64 + verdict.prepare_us as f64);
            kinds_by_detector.insert(d, stage.findings.clone());
        }
        for (label, detector, kind) in LABELS.iter().filter(|l| present.contains(&l.0)) {
            let findings = kinds_by_detector
                .get(detector)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let predicted = findings.iter().any(|f| kind.is_none_or(|k| f.kind == k));
            let truth = ex.labels.iter().any(|l| l == label);
            let entry = label_counts.entry(label).or_default();
            entry.0.add(truth, predicted);
            entry
                .1
                .entry(if ex.source.is_empty() {
                    "-".into()
                } else {
                    ex.source.clone()
                })
                .or_default()
                .add(truth, predicted);
        }
        if let Some(gold) = &ex.spans {
            let predicted: Vec<&crate::Finding> = kinds_by_detector
                .get("pii")
                .map(|f| f.iter().collect())
                .unwrap_or_default();
            for kind in crate::detectors::pii::ALL_ENTITIES {
                let r = spans.entry(kind.to_string()).or_insert_with(|| SpanReport {
                    kind: kind.to_string(),
                    gold: 0,
                    predicted: 0,
                    matched_gold: 0,
                    correct_predicted: 0,
                    precision: None,
                    recall: None,
                });
                for g in gold.iter().filter(|g| g.kind == *kind) {
                    r.gold += 1;
                    if predicted
                        .iter()
                        .any(|p| p.kind == *kind && p.span.is_some_and(|s| s.overlaps(&g.span)))
                    {
                        r.matched_gold += 1;
                    }
                }
                for p in predicted.iter().filter(|p| p.kind == *kind) {
                    r.predicted += 1;
                    if gold
                        .iter()
                        .any(|g| g.kind == *kind && p.span.is_some_and(|s| s.overlaps(&g.span)))
                    {
                        r.correct_predicted += 1;
                    }
                }
            }
        }
        if let Some(p) = &default_pipeline
            && ex.direction == Direction::Input
        {
            let v = p.scan_input(&ex.text, &ex.context, &mut crate::Vault::new())?;
            pipe_times.push(v.total_us as f64);
            pipe_counts.add(
                ex.labels.iter().any(|l| l == "injection"),
                v.decision == Decision::Block,
            );
        }
    }
    let labels = label_counts
        .into_iter()
        .map(|(label, (c, by_source))| LabelReport {
            detector: LABELS
                .iter()
                .find(|l| l.0 == label)
                .map(|l| l.1)
                .unwrap_or_default()
                .to_string(),
            label: label.to_string(),
            precision: c.precision(),
            recall: c.recall(),
            f1: c.f1(),
            fpr: c.fpr(),
            counts: c,
            by_source,
        })
        .collect();
    let spans = spans
        .into_values()
        .filter(|s| s.gold > 0 || s.predicted > 0)
        .map(|mut s| {
            s.precision = Counts::ratio(s.correct_predicted, s.predicted);
            s.recall = Counts::ratio(s.matched_gold, s.gold);
            s
        })
        .collect();
    Ok(Report {
        rows: examples.len(),
        labels,
        spans,
        latency: times.into_iter().map(|(d, v)| latency(d, v)).collect(),
        pipeline: default_pipeline.map(|_| PipelineReport {
            direction: Direction::Input,
            recall: pipe_counts.recall(),
            fpr: pipe_counts.fpr(),
            counts: pipe_counts,
            latency: latency("pipeline", pipe_times),
        }),
    })
}
