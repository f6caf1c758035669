//! The synthetic generator plants drift and poisoning; every planted effect must be found and
//! nothing else flagged.

use std::path::Path;

use mlsec_data::arrow;
use mlsec_data::check::{self, CheckInput, CheckOptions, Verdict};
use mlsec_data::synth::{self, Plant, Spec};
use mlsec_data::{DataSchema, DatasetProfile, TableFormat, TableSource};

const ROWS: usize = 20_000;

fn source(dir: &Path, name: &str, batch: &arrow::array::RecordBatch) -> TableSource {
    let path = dir.join(name);
    synth::write(batch, &path).unwrap();
    TableSource::new(path, name, TableFormat::Parquet)
}

struct Outcome {
    fired: Vec<String>,
    drifted: Vec<String>,
    violations: usize,
    verdict: Verdict,
    signal_rows: std::collections::BTreeMap<String, Vec<u64>>,
}

fn run(plant: &Plant, seed: u64) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::labelled(ROWS);
    let reference = synth::generate(&spec, 1, &Plant::default(), None);
    let current = synth::generate(&spec, seed, plant, Some(&reference));
    let rs = [source(dir.path(), "ref.parquet", &reference)];
    let cs = [source(dir.path(), "cur.parquet", &current)];
    let (rp, _) = DatasetProfile::from_sources(&rs).unwrap();
    let (cp, _) = DatasetProfile::from_sources(&cs).unwrap();
    let schema = DataSchema::infer(&rp);
    assert_eq!(schema.label.as_deref(), Some("label"));
    assert_eq!(schema.source.as_deref(), Some("source"));
    let outcome = check::run(
        "synthetic",
        CheckInput {
            label: "synthetic@2".into(),
            profile: &cp,
            sources: &cs,
        },
        Some(CheckInput {
            label: "synthetic@1".into(),
            profile: &rp,
            sources: &rs,
        }),
        &schema,
        &CheckOptions::default(),
    )
    .unwrap();
    let poison = outcome.poison.as_ref().unwrap();
    for s in &poison.signals {
        eprintln!(
            "{:>22} fired={} score={:.5} threshold={:.5} rows={}",
            s.id, s.fired, s.score, s.threshold, s.row_count
        );
    }
    let drift = outcome.drift.as_ref().unwrap();
    for c in &drift.columns {
        eprintln!(
            "{:>8} {:?} {:.4} drifted={}",
            c.column, c.test, c.score, c.drifted
        );
    }
    for v in &outcome.violations {
        eprintln!("violation {} {:?} {}", v.column, v.kind, v.count);
    }
    Outcome {
        fired: poison.fired().map(|s| s.id.clone()).collect(),
        drifted: drift.drifted().map(|c| c.column.clone()).collect(),
        violations: outcome.violations.len(),
        verdict: outcome.verdict,
        signal_rows: poison
            .signals
            .iter()
            .map(|s| (s.id.clone(), s.rows.clone()))
            .collect(),
    }
}

#[test]
fn a_fresh_sample_of_the_same_process_flags_nothing() {
    for seed in [2, 3] {
        let o = run(&Plant::default(), seed);
        assert!(o.fired.is_empty(), "seed {seed}: {:?}", o.fired);
        assert!(o.drifted.is_empty(), "seed {seed}: {:?}", o.drifted);
        assert_eq!(o.violations, 0);
        assert_eq!(o.verdict, Verdict::Passed);
    }
}

#[test]
fn planted_drift_is_found_in_that_column_only() {
    let o = run(
        &Plant {
            drift: Some((3, 0.5)),
            ..Plant::default()
        },
        2,
    );
    assert_eq!(o.drifted, vec!["f3".to_string()]);
    assert!(o.fired.is_empty(), "{:?}", o.fired);
}

#[test]
fn injected_duplicates_are_found_with_their_rows() {
    let o = run(
        &Plant {
            duplicates: 0.02,
            ..Plant::default()
        },
        2,
    );
    assert_eq!(o.fired, vec!["exact_duplicates".to_string()]);
    let rows = &o.signal_rows["exact_duplicates"];
    assert!(
        rows.iter().all(|&r| r >= ROWS as u64),
        "only appended copies are flagged"
    );
    assert_eq!(rows.len(), 400);
}

#[test]
fn flipped_labels_are_found_with_their_rows() {
    let o = run(
        &Plant {
            label_flips: 0.01,
            ..Plant::default()
        },
        2,
    );
    assert_eq!(o.fired, vec!["label_conflicts".to_string()]);
    let rows = &o.signal_rows["label_conflicts"];
    assert!(rows.iter().all(|&r| r >= ROWS as u64), "{rows:?}");
    assert!(rows.len() >= 190, "{} of 200 flips found", rows.len());
}

#[test]
fn a_shifted_class_is_found() {
    let o = run(
        &Plant {
            class_shift: Some((2, 1.0)),
            ..Plant::default()
        },
        2,
    );
    assert!(
        o.fired.contains(&"class_feature_shift".to_string()),
        "{:?}",
        o.fired
    );
    assert!(
        o.fired.iter().all(|f| f == "class_feature_shift"),
        "{:?}",
        o.fired
    );
    assert!(o.drifted.iter().all(|c| c == "f2"), "{:?}", o.drifted);
}

#[test]
fn a_jump_from_one_source_is_found() {
    let o = run(
        &Plant {
            source_jump: 0.3,
            ..Plant::default()
        },
        2,
    );
    assert!(
        o.fired.contains(&"source_jump".to_string()),
        "{:?}",
        o.fired
    );
    // A new source value is also outside the inferred category domain.
    assert!(
        o.fired
            .iter()
            .all(|f| f == "source_jump" || f == "out_of_schema"),
        "{:?}",
        o.fired
    );
    let rows = &o.signal_rows["source_jump"];
    assert!(rows.iter().all(|&r| r >= ROWS as u64));
}

#[test]
fn injected_outliers_are_found() {
    let o = run(
        &Plant {
            outliers: 0.01,
            ..Plant::default()
        },
        2,
    );
    assert!(
        o.fired.contains(&"multivariate_outliers".to_string()),
        "{:?}",
        o.fired
    );
    let rows = &o.signal_rows["multivariate_outliers"];
    let planted = rows.iter().filter(|&&r| r >= ROWS as u64).count();
    assert!(planted >= 195, "{planted} of 200 outliers");
}

#[test]
fn large_unchanged_samples_raise_no_drift_alarm() {
    // Two independent 200,000-row samples of the benchmark table (12 numeric, 6 categorical
    // with up to 1,000 levels, 2 with nulls): p-value tests would flag some columns by chance at
    // this size; the distances Evidently's rules use for large samples must not.
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::benchmark(200_000);
    let a = synth::generate(&spec, 11, &Plant::default(), None);
    let b = synth::generate(&spec, 12, &Plant::default(), None);
    let (pa, _) = DatasetProfile::from_sources(&[source(dir.path(), "a.parquet", &a)]).unwrap();
    let (pb, _) = DatasetProfile::from_sources(&[source(dir.path(), "b.parquet", &b)]).unwrap();
    let report = mlsec_data::drift::compare(&pa, &pb, &Default::default());
    assert_eq!(report.tested_columns, 20);
    for c in &report.columns {
        assert!(!c.drifted, "{} {:?} {}", c.column, c.test, c.score);
        assert!(
            c.score < 0.5 * c.threshold,
            "{} {:?} {} is not far below the threshold",
            c.column,
            c.test,
            c.score
        );
    }
    // The same table with one column shifted by 0.2 std: exactly that column drifts.
    let shifted = synth::generate(
        &spec,
        12,
        &Plant {
            drift: Some((7, 0.2)),
            ..Plant::default()
        },
        None,
    );
    let (ps, _) =
        DatasetProfile::from_sources(&[source(dir.path(), "s.parquet", &shifted)]).unwrap();
    let report = mlsec_data::drift::compare(&pa, &ps, &Default::default());
    let drifted: Vec<&str> = report.drifted().map(|c| c.column.as_str()).collect();
    assert_eq!(drifted, vec!["f7"]);
}

#[test]
fn versions_too_large_for_row_signals_still_get_schema_and_drift() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::labelled(3000);
    let reference = synth::generate(&spec, 1, &Plant::default(), None);
    let current = synth::generate(
        &spec,
        2,
        &Plant {
            drift: Some((3, 1.0)),
            ..Plant::default()
        },
        Some(&reference),
    );
    let rs = [source(dir.path(), "ref.parquet", &reference)];
    let cs = [source(dir.path(), "cur.parquet", &current)];
    let (rp, _) = DatasetProfile::from_sources(&rs).unwrap();
    let (cp, _) = DatasetProfile::from_sources(&cs).unwrap();
    let mut options = CheckOptions::default();
    options.poison.max_rows = 1000;
    let outcome = check::run(
        "big",
        CheckInput {
            label: "big@2".into(),
            profile: &cp,
            sources: &cs,
        },
        Some(CheckInput {
            label: "big@1".into(),
            profile: &rp,
            sources: &rs,
        }),
        &DataSchema::infer(&rp),
        &options,
    )
    .unwrap();
    let poison = outcome.poison.unwrap();
    assert!(poison.signals.is_empty());
    assert!(poison.skipped.unwrap().contains("1000"));
    assert!(outcome.warnings.iter().any(|w| w.contains("not computed")));
    assert!(outcome.drift.unwrap().drifted().any(|c| c.column == "f3"));
}

fn profile_batch(
    dir: &Path,
    name: &str,
    batch: &arrow::array::RecordBatch,
) -> (DatasetProfile, [TableSource; 1]) {
    let s = [source(dir, name, batch)];
    (DatasetProfile::from_sources(&s).unwrap().0, s)
}

fn one_column(name: &str, values: Vec<f64>) -> arrow::array::RecordBatch {
    use std::sync::Arc;
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new(name, arrow::datatypes::DataType::Float64, false),
    ]));
    arrow::array::RecordBatch::try_new(
        schema,
        vec![Arc::new(arrow::array::Float64Array::from(values))],
    )
    .unwrap()
}

#[test]
fn a_version_without_rows_or_columns_fails_its_check() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::labelled(2000);
    let reference = synth::generate(&spec, 1, &Plant::default(), None);
    let (rp, rs) = profile_batch(dir.path(), "ref.parquet", &reference);
    let empty = one_column("other", Vec::new());
    let (cp, cs) = profile_batch(dir.path(), "empty.parquet", &empty);
    let outcome = check::run(
        "d",
        CheckInput {
            label: "d@2".into(),
            profile: &cp,
            sources: &cs,
        },
        Some(CheckInput {
            label: "d@1".into(),
            profile: &rp,
            sources: &rs,
        }),
        &DataSchema::infer(&rp),
        &CheckOptions::default(),
    )
    .unwrap();
    assert_eq!(outcome.verdict, Verdict::Failed);
    assert!(
        outcome.reasons.iter().any(|r| r.contains("no rows")),
        "{:?}",
        outcome.reasons
    );
    assert!(
        outcome
            .violations
            .iter()
            .any(|v| v.column == "label"
                && v.kind == mlsec_data::schema::ViolationKind::MissingColumn)
    );
}

#[test]
fn drift_tests_see_changes_the_category_tests_would_miss() {
    let dir = tempfile::tempdir().unwrap();
    let options = mlsec_data::DriftOptions::default();
    // A 0/1 flag that becomes continuous: the categorical tests have nothing to count.
    let flag = one_column("flag", (0..5000).map(|i| (i % 2) as f64).collect());
    let continuous = one_column("flag", (0..5000).map(|i| i as f64 / 5000.0).collect());
    let (a, _) = profile_batch(dir.path(), "a.parquet", &flag);
    let (b, _) = profile_batch(dir.path(), "b.parquet", &continuous);
    let d = mlsec_data::drift::compare(&a, &b, &options);
    assert!(d.columns[0].drifted, "{:?}", d.columns[0]);
    // Two values replaced by another pair: the one-proportion z-test would see nothing.
    let ab = one_column("code", (0..600).map(|i| (i % 2) as f64).collect());
    let ac = one_column(
        "code",
        (0..600)
            .map(|i| if i % 2 == 0 { 0.0 } else { 2.0 })
            .collect(),
    );
    let (a, _) = profile_batch(dir.path(), "c.parquet", &ab);
    let (b, _) = profile_batch(dir.path(), "d.parquet", &ac);
    let d = mlsec_data::drift::compare(&a, &b, &options);
    assert_eq!(d.columns[0].test, Some(mlsec_data::DriftTest::ChiSquare));
    assert!(d.columns[0].drifted);
    // All values NaN in the new version: drift, and a schema violation on every row.
    let (fa, _) = profile_batch(dir.path(), "f.parquet", &flag);
    let nan = one_column("flag", vec![f64::NAN; 5000]);
    let (b, bs) = profile_batch(dir.path(), "e.parquet", &nan);
    let d = mlsec_data::drift::compare(&fa, &b, &options);
    assert!(d.columns[0].drifted, "{:?}", d.columns[0]);
    let violations = mlsec_data::poison::enforce_schema(&bs, &DataSchema::infer(&fa)).unwrap();
    assert!(
        violations
            .iter()
            .any(|v| v.kind == mlsec_data::schema::ViolationKind::NonFinite && v.count == 5000),
        "{violations:?}"
    );
}

#[test]
fn check_options_out_of_range_are_refused() {
    let mut o = CheckOptions::default();
    assert!(o.validate().is_ok());
    o.poison.near_cell = 0.0;
    assert!(o.validate().unwrap_err().to_string().contains("near_cell"));
    let mut o = CheckOptions::default();
    o.drift.drift_share = 2.0;
    assert!(o.validate().is_err());
    let mut o = CheckOptions::default();
    o.poison.class_min_rows = 0;
    assert!(o.validate().is_err());
}
