//! Synthetic tables with planted drift and planted poisoning, for tests and benchmarks: every
//! planted effect is known, so a test can require that each is found and nothing else is.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

use crate::error::DataError;

/// A small deterministic generator (splitmix64), so tables are identical on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(f64::MIN_POSITIVE);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// The shape of a generated table.
#[derive(Debug, Clone)]
pub struct Spec {
    pub rows: usize,
    /// Numeric features `f0…`, each normal with its own mean and scale.
    pub numeric: usize,
    /// Categorical features `c0…` with these numbers of levels (Zipf-like frequencies).
    pub categorical: Vec<usize>,
    /// Adds `n0` (float, 10% nulls) and `n1` (string, 20% nulls).
    pub nullable: bool,
    /// Adds `label` ("0"/"1", from a logistic model of f0 and f1) and `source` (a/b/c).
    pub supervised: bool,
}

impl Spec {
    /// The benchmark table: 12 numeric, 6 categorical (5 to 1,000 levels), 2 with nulls.
    pub fn benchmark(rows: usize) -> Spec {
        Spec {
            rows,
            numeric: 12,
            categorical: vec![5, 10, 50, 100, 500, 1000],
            nullable: true,
            supervised: false,
        }
    }

    /// A labelled table for the poisoning tests.
    pub fn labelled(rows: usize) -> Spec {
        Spec {
            rows,
            numeric: 6,
            categorical: vec![4],
            nullable: false,
            supervised: true,
        }
    }
}

/// Effects planted in a "current" table relative to its reference.
#[derive(Debug, Clone, Default)]
pub struct Plant {
    /// Shift numeric feature `f<i>` by this many of its standard deviations.
    pub drift: Option<(usize, f64)>,
    /// Append exact copies of this share of rows.
    pub duplicates: f64,
    /// Append copies of this share of reference rows with their label flipped.
    pub label_flips: f64,
    /// Shift feature `f<i>` by this many std only in rows of class "1".
    pub class_shift: Option<(usize, f64)>,
    /// Append this share of rows from a new source `vendor-x`.
    pub source_jump: f64,
    /// Append this share of rows far from the data (every feature at ±6 std).
    pub outliers: f64,
}

struct Row {
    numeric: Vec<f64>,
    categorical: Vec<String>,
    n0: Option<f64>,
    n1: Option<String>,
    label: String,
    source: String,
}

fn feature_mean(i: usize) -> f64 {
    10.0 * i as f64 - 20.0
}

fn feature_std(i: usize) -> f64 {
    1.0 + i as f64 * 0.5
}

fn sample_row(spec: &Spec, rng: &mut Rng, plant: &Plant) -> Row {
    let mut z: Vec<f64> = (0..spec.numeric).map(|_| rng.normal()).collect();
    let label_p = if spec.numeric >= 2 {
        1.0 / (1.0 + (-(1.5 * z[0] - 1.0 * z[1] - 0.8)).exp())
    } else {
        0.3
    };
    let label = if rng.uniform() < label_p { "1" } else { "0" };
    if let Some((i, shift)) = plant.drift
        && i < z.len()
    {
        z[i] += shift;
    }
    if let Some((i, shift)) = plant.class_shift
        && i < z.len()
        && label == "1"
    {
        z[i] += shift;
    }
    let numeric = z
        .iter()
        .enumerate()
        .map(|(i, v)| feature_mean(i) + feature_std(i) * v)
        .collect();
    let categorical = spec
        .categorical
        .iter()
        .map(|&levels| {
            // Zipf-like: level k with weight 1/(k+1).
            let h: f64 = (1..=levels).map(|k| 1.0 / k as f64).sum();
            let mut u = rng.uniform() * h;
            let mut k = 0;
            while k + 1 < levels {
                u -= 1.0 / (k + 1) as f64;
                if u <= 0.0 {
                    break;
                }
                k += 1;
            }
            format!("L{k}")
        })
        .collect();
    let n0 = (rng.uniform() >= 0.1).then(|| rng.normal() * 3.0 + 1.0);
    let n1 = (rng.uniform() >= 0.2).then(|| format!("t{}", rng.below(20)));
    let u = rng.uniform();
    let source = if u < 0.5 {
        "a"
    } else if u < 0.8 {
        "b"
    } else {
        "c"
    };
    Row {
        numeric,
        categorical,
        n0,
        n1,
        label: label.to_owned(),
        source: source.to_owned(),
    }
}

/// Generates a table; with `reference` given, plants `plant` relative to it (label flips copy
/// reference rows).
pub fn generate(
    spec: &Spec,
    seed: u64,
    plant: &Plant,
    reference: Option<&RecordBatch>,
) -> RecordBatch {
    let mut rng = Rng::new(seed);
    let mut rows: Vec<Row> = (0..spec.rows)
        .map(|_| sample_row(spec, &mut rng, plant))
        .collect();
    let extra = |share: f64| (share * spec.rows as f64).round() as usize;
    for _ in 0..extra(plant.duplicates) {
        let i = rng.below(spec.rows);
        let r = &rows[i];
        let copy = Row {
            numeric: r.numeric.clone(),
            categorical: r.categorical.clone(),
            n0: r.n0,
            n1: r.n1.clone(),
            label: r.label.clone(),
            source: r.source.clone(),
        };
        rows.push(copy);
    }
    if let Some(reference) = reference {
        let ref_rows = rows_of(spec, reference);
        for _ in 0..extra(plant.label_flips) {
            let r = &ref_rows[rng.below(ref_rows.len())];
            rows.push(Row {
                numeric: r.numeric.clone(),
                categorical: r.categorical.clone(),
                n0: r.n0,
                n1: r.n1.clone(),
                label: if r.label == "1" {
                    "0".into()
                } else {
                    "1".into()
                },
                source: r.source.clone(),
            });
        }
    }
    for _ in 0..extra(plant.source_jump) {
        let mut r = sample_row(spec, &mut rng, &Plant::default());
        r.source = "vendor-x".into();
        rows.push(r);
    }
    for _ in 0..extra(plant.outliers) {
        let mut r = sample_row(spec, &mut rng, &Plant::default());
        for (i, v) in r.numeric.iter_mut().enumerate() {
            let sign = if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
            *v = feature_mean(i) + sign * 6.0 * feature_std(i);
        }
        rows.push(r);
    }
    to_batch(spec, &rows)
}

fn to_batch(spec: &Spec, rows: &[Row]) -> RecordBatch {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for i in 0..spec.numeric {
        fields.push(Field::new(format!("f{i}"), DataType::Float64, false));
        columns.push(Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.numeric[i]),
        )));
    }
    for i in 0..spec.categorical.len() {
        fields.push(Field::new(format!("c{i}"), DataType::Utf8, false));
        columns.push(Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.categorical[i].as_str()),
        )));
    }
    if spec.nullable {
        fields.push(Field::new("n0", DataType::Float64, true));
        columns.push(Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.n0))));
        fields.push(Field::new("n1", DataType::Utf8, true));
        columns.push(Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.n1.as_deref()),
        )));
    }
    if spec.supervised {
        fields.push(Field::new("label", DataType::Utf8, false));
        columns.push(Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.label.as_str()),
        )));
        fields.push(Field::new("source", DataType::Utf8, false));
        columns.push(Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.source.as_str()),
        )));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("columns match the schema")
}

fn rows_of(spec: &Spec, batch: &RecordBatch) -> Vec<Row> {
    use arrow::array::AsArray;
    use arrow::datatypes::Float64Type;
    let f = |name: &str| batch.column_by_name(name).expect("generated column");
    (0..batch.num_rows())
        .map(|r| Row {
            numeric: (0..spec.numeric)
                .map(|i| f(&format!("f{i}")).as_primitive::<Float64Type>().value(r))
                .collect(),
            categorical: (0..spec.categorical.len())
                .map(|i| f(&format!("c{i}")).as_string::<i32>().value(r).to_owned())
                .collect(),
            n0: None,
            n1: None,
            label: if spec.supervised {
                f("label").as_string::<i32>().value(r).to_owned()
            } else {
                String::new()
            },
            source: if spec.supervised {
                f("source").as_string::<i32>().value(r).to_owned()
            } else {
                String::new()
            },
        })
        .collect()
}

/// Writes a batch as Parquet (row groups of 128k rows, Snappy) or CSV, chosen by extension.
pub fn write(batch: &RecordBatch, path: &Path) -> Result<(), DataError> {
    let file = std::fs::File::create(path).map_err(|e| DataError::io("create", path, e))?;
    let name = path.display().to_string();
    if path.extension().is_some_and(|e| e == "csv") {
        let mut w = arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(file);
        return w.write(batch).map_err(|e| DataError::read(name, e));
    }
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props))
        .map_err(|e| DataError::read(&name, e))?;
    for start in (0..batch.num_rows()).step_by(64 * 1024) {
        let len = (64 * 1024).min(batch.num_rows() - start);
        w.write(&batch.slice(start, len))
            .map_err(|e| DataError::read(&name, e))?;
    }
    w.close().map_err(|e| DataError::read(&name, e))?;
    Ok(())
}
