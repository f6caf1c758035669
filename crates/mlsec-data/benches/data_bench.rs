//! Dataset benchmark: a reference/current Parquet pair of N rows × 20 columns (12 numeric, 6
//! categorical with 5–1,000 levels, 2 with nulls) is generated once into a directory, then
//! profiled, compared with every drift test and rendered as a report. Prints CPU seconds
//! (user + system of this process, all threads), wall seconds and peak RSS as JSON lines.
//!
//!     cargo bench -p mlsec-data --bench data_bench -- [ROWS] [DIR]
//!
//! ROWS defaults to 1,000,000; DIR to `$TMPDIR/mlsec-data-bench`. The full check (row-level
//! poisoning signals) is measured too up to 2M rows, unless `MLSEC_BENCH_SKIP_CHECK` is set. The same files can be given to
//! `benches/data/polars_baseline.py` for the comparison.

use std::path::PathBuf;
use std::time::Instant;

use mlsec_data::check::{CheckInput, CheckOptions, CheckOutcome, Verdict};
use mlsec_data::synth::{self, Plant, Spec};
use mlsec_data::{DataSchema, DatasetProfile, TableFormat, TableSource, drift, report};

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass and reads nothing else.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn peak_rss_mb() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    u.ru_maxrss as f64 / 1024.0
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let rows: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = args
        .get(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("mlsec-data-bench"));
    std::fs::create_dir_all(&dir).unwrap();
    let (rp, cp) = (
        dir.join(format!("reference-{rows}.parquet")),
        dir.join(format!("current-{rows}.parquet")),
    );
    if !rp.exists() || !cp.exists() {
        let spec = Spec::benchmark(rows);
        // Generated in slices of 1M rows so 10M rows do not need 10M rows of memory at once.
        for (path, seed, plant) in [
            (&rp, 1u64, Plant::default()),
            (
                &cp,
                2,
                Plant {
                    drift: Some((3, 0.3)),
                    ..Plant::default()
                },
            ),
        ] {
            let slice = rows.min(1_000_000);
            let file = std::fs::File::create(path).unwrap();
            let first = synth::generate(
                &Spec {
                    rows: slice,
                    ..spec.clone()
                },
                seed,
                &plant,
                None,
            );
            let props = parquet::file::properties::WriterProperties::builder()
                .set_max_row_group_row_count(Some(128 * 1024))
                .build();
            let mut w =
                parquet::arrow::ArrowWriter::try_new(file, first.schema(), Some(props)).unwrap();
            w.write(&first).unwrap();
            let mut done = slice;
            let mut part = 1;
            while done < rows {
                let n = slice.min(rows - done);
                let b = synth::generate(
                    &Spec {
                        rows: n,
                        ..spec.clone()
                    },
                    seed * 1000 + part,
                    &plant,
                    None,
                );
                w.write(&b).unwrap();
                done += n;
                part += 1;
            }
            w.close().unwrap();
        }
        eprintln!("generated {} and {}", rp.display(), cp.display());
    }
    let source = |p: &PathBuf, n: &str| TableSource::new(p, n, TableFormat::Parquet);
    let (rs, cs) = (
        [source(&rp, "reference.parquet")],
        [source(&cp, "current.parquet")],
    );

    let (c0, w0) = (cpu_seconds(), Instant::now());
    let (reference, _) = DatasetProfile::from_sources(&rs).unwrap();
    let (current, _) = DatasetProfile::from_sources(&cs).unwrap();
    let c1 = cpu_seconds();
    let options = CheckOptions::default();
    let drift = drift::compare(&reference, &current, &options.drift);
    let outcome = CheckOutcome {
        dataset: "bench".into(),
        current: "bench@2".into(),
        reference: Some("bench@1".into()),
        verdict: if drift.dataset_drift {
            Verdict::Failed
        } else {
            Verdict::Passed
        },
        reasons: Vec::new(),
        warnings: Vec::new(),
        current_rows: current.rows,
        reference_rows: reference.rows,
        violations: Vec::new(),
        drift: Some(drift),
        poison: None,
    };
    let html = report::render(&outcome, "bench");
    let (c2, w2) = (cpu_seconds(), Instant::now());
    let drifted: Vec<&str> = outcome
        .drift
        .as_ref()
        .unwrap()
        .drifted()
        .map(|c| c.column.as_str())
        .collect();
    println!(
        "{{\"bench\":\"profile both + drift + report\",\"rows\":{rows},\"cpu_s\":{:.3},\"wall_s\":{:.3},\"profile_cpu_s\":{:.3},\"drift_report_cpu_s\":{:.3},\"report_bytes\":{},\"drifted\":{:?},\"peak_rss_mb\":{:.0}}}",
        c2 - c0,
        (w2 - w0).as_secs_f64(),
        c1 - c0,
        c2 - c1,
        html.len(),
        drifted,
        peak_rss_mb()
    );

    // The whole check, row-level poisoning signals included (not part of the target above).
    if rows <= 2_000_000 && std::env::var_os("MLSEC_BENCH_SKIP_CHECK").is_none() {
        let schema = DataSchema::infer(&reference);
        let (c3, w3) = (cpu_seconds(), Instant::now());
        let full = mlsec_data::check::run(
            "bench",
            CheckInput {
                label: "bench@2".into(),
                profile: &current,
                sources: &cs,
            },
            Some(CheckInput {
                label: "bench@1".into(),
                profile: &reference,
                sources: &rs,
            }),
            &schema,
            &options,
        )
        .unwrap();
        println!(
            "{{\"bench\":\"full check (schema + drift + poisoning signals)\",\"rows\":{rows},\"cpu_s\":{:.3},\"wall_s\":{:.3},\"verdict\":\"{:?}\",\"peak_rss_mb\":{:.0}}}",
            cpu_seconds() - c3,
            w3.elapsed().as_secs_f64(),
            full.verdict,
            peak_rss_mb()
        );
    }
}
