//! Latency of the default pipelines on one core: the input pipeline over whole prompts and the
//! output pipeline in streaming mode, chunk by chunk. Run by `benches/guard/run.sh`, which pins
//! it to one CPU and compares it with LLM Guard on the same prompts.
//!
//! ```text
//! cargo run --release -p mlsec-guard --example guard_bench -- \
//!     --prompts benches/guard/prompts.jsonl [--rounds 20] [--chunk-bytes 24] [--json-out FILE]
//! ```

use std::collections::BTreeMap;
use std::time::Instant;

use mlsec_guard::{Pipeline, PipelineConfig, RequestContext, Vault};

struct Args {
    prompts: String,
    rounds: usize,
    chunk_bytes: usize,
    json_out: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        prompts: "benches/guard/prompts.jsonl".into(),
        rounds: 20,
        chunk_bytes: 24,
        json_out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--prompts" => args.prompts = value()?,
            "--rounds" => args.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--chunk-bytes" => {
                args.chunk_bytes = value()?
                    .parse()
                    .map_err(|e| format!("--chunk-bytes: {e}"))?
            }
            "--json-out" => args.json_out = Some(value()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.rounds == 0 || args.chunk_bytes == 0 {
        return Err("--rounds and --chunk-bytes must be positive".into());
    }
    Ok(args)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Splits at roughly `size` bytes on character boundaries, as a token stream would arrive.
fn chunks(text: &str, size: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + size).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        out.push(&text[start..end]);
        start = end;
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let prompts: Vec<String> = std::fs::read_to_string(&args.prompts)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)?;
            Ok(v["text"].as_str().unwrap_or_default().to_owned())
        })
        .collect::<Result<_, serde_json::Error>>()?;
    if prompts.is_empty() {
        return Err("no prompts".into());
    }
    let mean_bytes = prompts.iter().map(|p| p.len()).sum::<usize>() / prompts.len();
    let pipeline = Pipeline::new(PipelineConfig::default())?;
    let context = RequestContext::default();

    // Warm-up: lazily built tables (tokenizer, regex caches) are not part of a request.
    for p in &prompts {
        pipeline.scan_input(p, &context, &mut Vault::default())?;
        pipeline.scan_output(p, &context)?;
    }

    let mut input_us = Vec::with_capacity(prompts.len() * args.rounds);
    let mut per_detector: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut blocked = 0usize;
    for _ in 0..args.rounds {
        for p in &prompts {
            let mut vault = Vault::default();
            let started = Instant::now();
            let verdict = pipeline.scan_input(p, &context, &mut vault)?;
            input_us.push(started.elapsed().as_nanos() as u64);
            blocked += usize::from(verdict.blocked());
            for stage in &verdict.stages {
                per_detector
                    .entry(stage.detector.clone())
                    .or_default()
                    .push(stage.elapsed_us);
            }
        }
    }

    // Streaming: each prompt stands in for a response of the same size.
    let mut chunk_us = Vec::new();
    let mut finish_us = Vec::new();
    for _ in 0..args.rounds.div_ceil(4) {
        for p in &prompts {
            let mut guard = pipeline.stream(&context);
            for c in chunks(p, args.chunk_bytes) {
                let started = Instant::now();
                guard.push(c)?;
                chunk_us.push(started.elapsed().as_nanos() as u64);
            }
            let started = Instant::now();
            guard.finish()?;
            finish_us.push(started.elapsed().as_nanos() as u64);
        }
    }

    input_us.sort_unstable();
    chunk_us.sort_unstable();
    finish_us.sort_unstable();
    let us = |ns: u64| ns as f64 / 1000.0;
    let detectors: BTreeMap<String, serde_json::Value> = per_detector
        .into_iter()
        .map(|(name, mut v)| {
            v.sort_unstable();
            let value = serde_json::json!({
                "p50_us": percentile(&v, 50.0),
                "p99_us": percentile(&v, 99.0),
            });
            (name, value)
        })
        .collect();
    let report = serde_json::json!({
        "prompts": prompts.len(),
        "mean_prompt_bytes": mean_bytes,
        "rounds": args.rounds,
        "input_samples": input_us.len(),
        "input_blocked_fraction": blocked as f64 / input_us.len() as f64,
        "input_p50_us": us(percentile(&input_us, 50.0)),
        "input_p99_us": us(percentile(&input_us, 99.0)),
        "input_max_us": us(*input_us.last().unwrap_or(&0)),
        "stream_chunk_bytes": args.chunk_bytes,
        "stream_chunks": chunk_us.len(),
        "stream_chunk_p50_us": us(percentile(&chunk_us, 50.0)),
        "stream_chunk_p99_us": us(percentile(&chunk_us, 99.0)),
        "stream_finish_p50_us": us(percentile(&finish_us, 50.0)),
        "stream_finish_p99_us": us(percentile(&finish_us, 99.0)),
        "detectors": detectors,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(())
}
