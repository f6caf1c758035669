//! `mlsec guard`: run the guardrail pipeline on text, files or JSON lines; evaluate detectors on
//! labelled data; train the shipped injection classifier; list the detectors.
//!
//! Exit codes of `guard scan`: 0 every text passed (allowed, or flagged/redacted below
//! `--fail-on`); 1 some text was blocked (or reached `--fail-on`); 2 usage; 3 I/O.

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use mlsec_guard::classifier::{self, TrainOptions};
use mlsec_guard::dataset;
use mlsec_guard::eval::{self, Report};
use mlsec_guard::pipeline::StreamChunk;
use mlsec_guard::prepare::fold;
use mlsec_guard::registry::REGISTRY;
use mlsec_guard::{Decision, Direction, Pipeline, PipelineConfig, RequestContext, Vault, Verdict};
use serde_json::json;

use crate::commands::CliError;

#[derive(Subcommand)]
pub enum GuardCommand {
    /// Scan a prompt or a response: `--text`, a file, or JSON lines on standard input
    /// (`{"text": …, "direction"?, "system_prompt"?, "context"?, "canary"?}` per line).
    Scan(ScanArgs),
    /// Run every detector over labelled JSON-lines datasets and print precision, recall, F1,
    /// false-positive rate and latency percentiles per detector.
    Eval {
        /// Dataset files (repeatable); see docs/guard.md for the line format.
        #[arg(long = "dataset", required = true)]
        datasets: Vec<PathBuf>,
        /// Detector configurations: TOML with one table per detector id.
        #[arg(long)]
        detector_config: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Train the prompt-injection classifier from labelled JSON lines (`label` = `injection` or
    /// `benign`). Deterministic: the same data gives the same model bytes.
    Train {
        #[arg(long = "data", required = true)]
        data: Vec<PathBuf>,
        /// Where to write the classifier.
        #[arg(long, short)]
        output: PathBuf,
        /// Where to write the character model of benign text (the token-soup signal).
        #[arg(long)]
        charlm_output: Option<PathBuf>,
        #[arg(long, default_value_t = TrainOptions::default().epochs)]
        epochs: u32,
    },
    /// List the detectors with their directions and references.
    Detectors {
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
pub struct ScanArgs {
    /// The text to scan.
    #[arg(long, conflicts_with = "file")]
    pub text: Option<String>,
    /// A file whose whole content is one text (`-` for standard input).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// `input` (a prompt) or `output` (a response). JSON lines may set it per line.
    #[arg(long, default_value = "input")]
    pub direction: String,
    /// Pipeline configuration (TOML). Default: the built-in pipelines.
    #[arg(long)]
    pub pipeline: Option<PathBuf>,
    /// The application's system prompt, for leak detection (a file).
    #[arg(long)]
    pub system_prompt: Option<PathBuf>,
    /// Retrieved context the answer should be grounded in (a file).
    #[arg(long)]
    pub context: Option<PathBuf>,
    /// A canary token (repeatable).
    #[arg(long)]
    pub canary: Vec<String>,
    /// Scan a response as a stream of chunks of this many bytes (output only).
    #[arg(long)]
    pub stream_chunk: Option<usize>,
    /// `text` or `json` (one verdict per line).
    #[arg(long, default_value = "text")]
    pub format: String,
    /// Lowest decision that fails the command: flag, redact or block.
    #[arg(long, default_value = "block")]
    pub fail_on: String,
}

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

fn io(path: &std::path::Path, e: std::io::Error) -> CliError {
    CliError::Runtime(format!("{}: {e}", path.display()))
}

fn read_text(path: &std::path::Path) -> Result<String, CliError> {
    let bytes = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .map_err(|e| io(path, e))?;
        b
    } else {
        std::fs::read(path).map_err(|e| io(path, e))?
    };
    // Invalid UTF-8 is scanned as replacement characters rather than refused: an attacker
    // controls these bytes, and refusing would be a way around the guard.
    Ok(String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

fn parse_direction(s: &str) -> Result<Direction, CliError> {
    match s {
        "input" => Ok(Direction::Input),
        "output" => Ok(Direction::Output),
        other => Err(usage(format!(
            "--direction must be input or output, not {other:?}"
        ))),
    }
}

fn parse_decision(s: &str) -> Result<Decision, CliError> {
    match s {
        "flag" => Ok(Decision::Flag),
        "redact" => Ok(Decision::Redact),
        "block" => Ok(Decision::Block),
        other => Err(usage(format!(
            "--fail-on must be flag, redact or block, not {other:?}"
        ))),
    }
}

pub fn run(command: GuardCommand) -> Result<ExitCode, CliError> {
    match command {
        GuardCommand::Scan(args) => scan(args),
        GuardCommand::Eval {
            datasets,
            detector_config,
            json,
        } => evaluate(&datasets, detector_config.as_deref(), json),
        GuardCommand::Train {
            data,
            output,
            charlm_output,
            epochs,
        } => train(&data, &output, charlm_output.as_deref(), epochs),
        GuardCommand::Detectors { json } => detectors(json),
    }
}

struct Job {
    text: String,
    direction: Direction,
    context: RequestContext,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonJob {
    text: String,
    #[serde(default)]
    direction: Option<Direction>,
    #[serde(default)]
    system_prompt: Option<String>,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    canary: Option<String>,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

fn scan(args: ScanArgs) -> Result<ExitCode, CliError> {
    let config = match &args.pipeline {
        Some(p) => PipelineConfig::from_toml(&read_text(p)?).map_err(usage)?,
        None => PipelineConfig::default(),
    };
    let pipeline = Pipeline::new(config).map_err(usage)?;
    let direction = parse_direction(&args.direction)?;
    let fail_on = parse_decision(&args.fail_on)?;
    if !matches!(args.format.as_str(), "text" | "json") {
        return Err(usage("--format must be text or json"));
    }
    let base = RequestContext {
        system_prompt: args.system_prompt.as_deref().map(read_text).transpose()?,
        grounding: args.context.as_deref().map(read_text).transpose()?,
        canaries: args.canary.clone(),
        json_schema: None,
    };
    let mut jobs: Vec<(Option<serde_json::Value>, Job)> = Vec::new();
    if let Some(text) = &args.text {
        jobs.push((
            None,
            Job {
                text: text.clone(),
                direction,
                context: base.clone(),
            },
        ));
    } else if let Some(file) = &args.file {
        jobs.push((
            None,
            Job {
                text: read_text(file)?,
                direction,
                context: base.clone(),
            },
        ));
    } else {
        let stdin = std::io::stdin();
        for (n, line) in stdin.lock().split(b'\n').enumerate() {
            let line = line.map_err(|e| CliError::Runtime(format!("standard input: {e}")))?;
            let line = String::from_utf8_lossy(&line);
            if line.trim().is_empty() {
                continue;
            }
            if line.len() > dataset::MAX_LINE_BYTES {
                return Err(usage(format!(
                    "line {}: longer than {} bytes",
                    n + 1,
                    dataset::MAX_LINE_BYTES
                )));
            }
            let j: JsonJob =
                serde_json::from_str(&line).map_err(|e| usage(format!("line {}: {e}", n + 1)))?;
            let mut context = base.clone();
            context.system_prompt = j.system_prompt.or(context.system_prompt);
            context.grounding = j.context.or(context.grounding);
            context.canaries.extend(j.canary);
            jobs.push((
                j.id,
                Job {
                    text: j.text,
                    direction: j.direction.unwrap_or(direction),
                    context,
                },
            ));
        }
    }
    let mut worst = Decision::Allow;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (id, job) in jobs {
        let result = match (job.direction, args.stream_chunk) {
            (Direction::Output, Some(chunk)) => stream(&pipeline, &job, chunk.max(1)),
            (Direction::Input, _) => {
                let mut vault = Vault::new();
                pipeline
                    .scan_input(&job.text, &job.context, &mut vault)
                    .map(|v| (v, None))
            }
            (Direction::Output, None) => pipeline
                .scan_output(&job.text, &job.context)
                .map(|v| (v, None)),
        };
        let (verdict, streamed) = match result {
            Ok(v) => v,
            Err(e) => {
                // A text the pipeline refuses (too large) is blocked, with the reason.
                worst = Decision::Block;
                writeln!(
                    out,
                    "{}",
                    json!({"id": id, "decision": "block", "error": e.to_string()})
                )
                .map_err(|e| CliError::Runtime(e.to_string()))?;
                continue;
            }
        };
        worst = worst.max(verdict.decision);
        let written = if args.format == "json" {
            let mut v =
                serde_json::to_value(&verdict).map_err(|e| CliError::Runtime(e.to_string()))?;
            if let Some(id) = id {
                v["id"] = id;
            }
            if let Some(s) = streamed {
                v["stream"] = s;
            }
            writeln!(out, "{v}")
        } else {
            write_text(&mut out, &verdict, streamed.as_ref())
        };
        written.map_err(|e| CliError::Runtime(e.to_string()))?;
    }
    Ok(if worst >= fail_on {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Streams a response through the guard in fixed-size chunks; the verdict is assembled from the
/// stream's findings, and the chunk timings are reported.
fn stream(
    pipeline: &Pipeline,
    job: &Job,
    chunk: usize,
) -> mlsec_guard::Result<(Verdict, Option<serde_json::Value>)> {
    let mut guard = pipeline.stream(&job.context);
    let mut released = String::new();
    let mut chunk_us = Vec::new();
    let mut at = 0;
    let text = &job.text;
    let mut blocked = false;
    while at < text.len() {
        let mut end = (at + chunk).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        let c: StreamChunk = guard.push(&text[at..end])?;
        chunk_us.push(c.elapsed_us);
        released.push_str(&c.text);
        at = end;
        if c.blocked {
            blocked = true;
            break;
        }
    }
    if !blocked {
        let c = guard.finish()?;
        chunk_us.push(c.elapsed_us);
        released.push_str(&c.text);
        blocked = c.blocked;
    }
    // The stream's verdict: the whole-text verdict's shape with the stream's findings.
    let mut verdict = pipeline.scan_output(text, &job.context)?;
    let streamed_findings = guard.findings().to_vec();
    verdict.decision = if blocked {
        Decision::Block
    } else if released != *text {
        Decision::Redact.max(verdict.decision.min(Decision::Redact))
    } else {
        verdict.decision.min(Decision::Flag)
    };
    let mut sorted = chunk_us.clone();
    sorted.sort_unstable();
    let info = json!({
        "chunks": chunk_us.len(),
        "blocked": blocked,
        "released": released,
        "findings": streamed_findings,
        "chunk_p50_us": sorted.get(sorted.len() / 2),
        "chunk_max_us": sorted.last(),
    });
    Ok((verdict, Some(info)))
}

fn write_text(
    out: &mut impl Write,
    v: &Verdict,
    streamed: Option<&serde_json::Value>,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:?} ({:?}, {} µs)",
        v.decision, v.direction, v.total_us
    )?;
    for stage in &v.stages {
        for f in &stage.findings {
            let span = f
                .span
                .map(|s| format!(" [{}..{}]", s.start, s.end))
                .unwrap_or_default();
            let layer = if f.layer.is_empty() {
                String::new()
            } else {
                format!(" via {}", f.layer)
            };
            writeln!(
                out,
                "  {:<18} {:<8} {:<24} {:.2}{span}{layer}  {}",
                f.detector,
                format!("{:?}", stage.action).to_lowercase(),
                f.kind,
                f.score,
                f.evidence
            )?;
        }
        if let Some(e) = &stage.error {
            writeln!(out, "  {:<18} failed: {e}", stage.detector)?;
        }
    }
    if let Some(r) = &v.redacted {
        writeln!(out, "  redacted: {r}")?;
    }
    if let Some(s) = streamed {
        writeln!(
            out,
            "  stream: {} chunks, blocked {}, released {:?}",
            s["chunks"],
            s["blocked"],
            s["released"].as_str().unwrap_or("")
        )?;
    }
    Ok(())
}

fn load_examples(paths: &[PathBuf]) -> Result<Vec<dataset::Example>, CliError> {
    let mut all = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p).map_err(|e| io(p, e))?;
        all.extend(dataset::parse(&text).map_err(|e| usage(format!("{}: {e}", p.display())))?);
    }
    Ok(all)
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{:.2}%", x * 100.0))
}

fn print_report(r: &Report) {
    println!("{} rows", r.rows);
    println!(
        "\n{:<22} {:<18} {:>6} {:>6} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8}",
        "label", "detector", "tp", "fp", "tn", "fn", "prec", "recall", "f1", "fpr"
    );
    for l in &r.labels {
        let c = &l.counts;
        println!(
            "{:<22} {:<18} {:>6} {:>6} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8}",
            l.label,
            l.detector,
            c.tp,
            c.fp,
            c.tn,
            c.fn_,
            pct(l.precision),
            pct(l.recall),
            pct(l.f1),
            pct(l.fpr)
        );
    }
    for l in r.labels.iter().filter(|l| l.by_source.len() > 1) {
        println!("\n{} by source:", l.label);
        for (source, c) in &l.by_source {
            let pos = c.tp + c.fn_;
            let neg = c.fp + c.tn;
            let recall = if pos > 0 {
                format!("recall {} ({}/{})", pct(c.recall()), c.tp, pos)
            } else {
                String::new()
            };
            let fpr = if neg > 0 {
                format!("fpr {} ({}/{})", pct(c.fpr()), c.fp, neg)
            } else {
                String::new()
            };
            println!("  {source:<28} {recall:<28} {fpr}");
        }
    }
    if !r.spans.is_empty() {
        println!(
            "\n{:<14} {:>6} {:>6} {:>9} {:>9}",
            "entity", "gold", "pred", "precision", "recall"
        );
        for s in &r.spans {
            println!(
                "{:<14} {:>6} {:>6} {:>9} {:>9}",
                s.kind,
                s.gold,
                s.predicted,
                pct(s.precision),
                pct(s.recall)
            );
        }
    }
    if let Some(p) = &r.pipeline {
        println!(
            "\ndefault input pipeline (block): recall {} fpr {} ({} tp, {} fp, {} tn, {} fn); p50 {:.0} µs p99 {:.0} µs",
            pct(p.recall),
            pct(p.fpr),
            p.counts.tp,
            p.counts.fp,
            p.counts.tn,
            p.counts.fn_,
            p.latency.p50_us,
            p.latency.p99_us
        );
    }
    println!(
        "\n{:<20} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "detector latency", "n", "p50 µs", "p95 µs", "p99 µs", "max µs"
    );
    for l in &r.latency {
        println!(
            "{:<20} {:>7} {:>9.0} {:>9.0} {:>9.0} {:>9.0}",
            l.detector, l.n, l.p50_us, l.p95_us, l.p99_us, l.max_us
        );
    }
}

fn evaluate(
    datasets: &[PathBuf],
    config: Option<&std::path::Path>,
    as_json: bool,
) -> Result<ExitCode, CliError> {
    let examples = load_examples(datasets)?;
    let configs: BTreeMap<String, serde_json::Value> = match config {
        Some(p) => {
            toml::from_str(&read_text(p)?).map_err(|e| usage(format!("{}: {e}", p.display())))?
        }
        None => BTreeMap::new(),
    };
    // A progress bar on an interactive terminal only; CI logs stay clean.
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let bar = indicatif::ProgressBar::new(examples.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} evaluating {pos}/{len} {wide_bar} {eta}",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let report = eval::evaluate(&examples, &configs, |_| bar.inc(1)).map_err(usage)?;
    bar.finish_and_clear();
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| CliError::Runtime(e.to_string()))?
        );
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn train(
    data: &[PathBuf],
    output: &std::path::Path,
    charlm_output: Option<&std::path::Path>,
    epochs: u32,
) -> Result<ExitCode, CliError> {
    let examples = load_examples(data)?;
    let pairs: Vec<(String, bool)> = examples
        .iter()
        .filter(|e| e.direction == Direction::Input)
        .map(|e| (fold(&e.text).0, e.labels.iter().any(|l| l == "injection")))
        .collect();
    let positives = pairs.iter().filter(|p| p.1).count();
    let model = classifier::train(
        &pairs,
        &TrainOptions {
            epochs,
            ..TrainOptions::default()
        },
    );
    let bytes = model.to_bytes();
    std::fs::write(output, &bytes).map_err(|e| io(output, e))?;
    let digest = mlsec_types::Digest::of(&bytes).hex();
    println!(
        "trained on {} examples ({positives} injection, {} benign), {epochs} epochs: {} ({} bytes, {digest})",
        pairs.len(),
        pairs.len() - positives,
        output.display(),
        bytes.len()
    );
    if let Some(path) = charlm_output {
        let benign = examples
            .iter()
            .filter(|e| {
                e.direction == Direction::Input && e.labels.iter().all(|l| l != "injection")
            })
            .map(|e| e.text.as_str());
        let bytes = mlsec_guard::charlm::CharLm::train(benign).to_bytes();
        std::fs::write(path, &bytes).map_err(|e| io(path, e))?;
        println!(
            "character model of the benign rows: {} ({} bytes, {})",
            path.display(),
            bytes.len(),
            mlsec_types::Digest::of(&bytes).hex()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn detectors(as_json: bool) -> Result<ExitCode, CliError> {
    if as_json {
        let list: Vec<_> = REGISTRY
            .iter()
            .map(|d| json!({"id": d.id, "name": d.name, "directions": d.directions, "summary": d.summary, "false_positives": d.false_positives, "references": d.references}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&list).map_err(|e| CliError::Runtime(e.to_string()))?
        );
    } else {
        for d in REGISTRY {
            let dirs: Vec<String> = d
                .directions
                .iter()
                .map(|x| format!("{x:?}").to_lowercase())
                .collect();
            println!("{:<20} {:<14} {}", d.id, dirs.join("+"), d.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}
