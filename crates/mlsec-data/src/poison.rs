//! Poisoning signals on a new version relative to the last approved one (ATLAS AML.T0020 Poison
//! Training Data, AML.T0059 Erode Dataset Integrity; OWASP ML02, LLM04).
//!
//! Each signal compares a rate in the new version with the same rate in the reference, so what
//! a dataset naturally has (some duplicates, some outliers) is not an alarm; what was injected
//! is. Every signal carries a score, the threshold it was held to, and the offending rows.
//!
//! | signal | score | fires when |
//! |---|---|---|
//! | `label_shift` | Jensen–Shannon distance (nats) of the label distribution | ≥ 0.05 |
//! | `class_feature_shift` | Wasserstein shift of a feature within one class, minus its overall shift, in reference std units | ≥ 0.1 |
//! | `exact_duplicates` | share of rows repeating an earlier row | exceeds the reference's share by 0.5 points |
//! | `near_duplicates` | share of rows within 0.05 std (every feature) of another row | exceeds the reference's share by 0.5 points |
//! | `label_conflicts` | share of rows whose label disagrees with near-identical rows (possible flips) | exceeds the reference's share by 0.2 points |
//! | `out_of_schema` | share of rows with values outside the schema | > 0 |
//! | `multivariate_outliers` | share of rows beyond the reference's 99.9th percentile Mahalanobis distance | above 0.1% by more than chance (4 σ) and 3× |
//! | `source_jump` | largest gain in one source's share of rows | ≥ 0.1 |

use std::collections::{BTreeMap, HashMap};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type};
use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::profile::{ColumnKind, DatasetProfile};
use crate::read::TableSource;
use crate::schema::{DataSchema, SchemaChecker, SchemaViolation, ViolationKind};
use crate::stats;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoisonOptions {
    pub label_shift_threshold: f64,
    pub class_shift_threshold: f64,
    /// Classes need this many rows on both sides to be compared.
    pub class_min_rows: usize,
    pub duplicate_tolerance: f64,
    pub near_duplicate_tolerance: f64,
    /// Grid cell for near-identical rows, in reference standard deviations.
    pub near_cell: f64,
    pub label_conflict_tolerance: f64,
    pub outlier_quantile: f64,
    pub outlier_factor: f64,
    pub source_share_threshold: f64,
    /// Offending rows listed per signal (the count is always complete).
    pub max_rows_listed: usize,
    /// Largest version analysed row by row; larger checks skip the row-level signals and say so.
    pub max_rows: u64,
    /// Largest rows × columns analysed row by row (8 bytes a numeric cell, 4 a categorical one,
    /// for each side).
    pub max_cells: u64,
    /// Columns left out of row comparisons (identifiers, timestamps of ingestion).
    pub ignore: Vec<String>,
}

impl Default for PoisonOptions {
    fn default() -> Self {
        PoisonOptions {
            label_shift_threshold: 0.05,
            class_shift_threshold: 0.1,
            class_min_rows: 50,
            duplicate_tolerance: 0.005,
            near_duplicate_tolerance: 0.005,
            near_cell: 0.05,
            label_conflict_tolerance: 0.002,
            outlier_quantile: 0.999,
            outlier_factor: 3.0,
            source_share_threshold: 0.1,
            max_rows_listed: 1000,
            max_rows: 5_000_000,
            max_cells: 100_000_000,
            ignore: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Signal {
    pub id: String,
    pub fired: bool,
    pub score: f64,
    pub threshold: f64,
    /// The same measure on the reference, where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_score: Option<f64>,
    pub detail: String,
    /// How many rows are implicated.
    pub row_count: u64,
    /// The first offending rows (0-based indices into the new version).
    pub rows: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PoisonReport {
    pub signals: Vec<Signal>,
    /// Why row-level signals were not computed, if they were not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl PoisonReport {
    pub fn fired(&self) -> impl Iterator<Item = &Signal> {
        self.signals.iter().filter(|s| s.fired)
    }
}

/// A version's rows in memory, column by column: numeric features as f64 (NaN for null),
/// categorical features as codes shared with the other version.
struct Rows {
    n: usize,
    numeric: Vec<Vec<f64>>,
    categorical: Vec<Vec<u32>>,
    label: Option<Vec<u32>>,
    source: Option<Vec<u32>>,
}

/// Which columns play which part, decided from the reference.
struct Layout {
    numeric: Vec<String>,
    categorical: Vec<String>,
    label: Option<String>,
    source: Option<String>,
}

#[derive(Default)]
struct Dictionaries {
    columns: HashMap<String, HashMap<String, u32>>,
}

impl Dictionaries {
    fn code(&mut self, column: &str, value: &str) -> u32 {
        if !self.columns.contains_key(column) {
            self.columns.insert(column.to_owned(), HashMap::new());
        }
        let d = self.columns.get_mut(column).expect("inserted above");
        if let Some(&c) = d.get(value) {
            return c;
        }
        let next = d.len() as u32;
        d.insert(value.to_owned(), next);
        next
    }

    fn name(&self, column: &str, code: u32) -> String {
        self.columns
            .get(column)
            .and_then(|d| d.iter().find(|(_, c)| **c == code).map(|(k, _)| k.clone()))
            .unwrap_or_default()
    }
}

fn layout(reference: &DatasetProfile, schema: &DataSchema, options: &PoisonOptions) -> Layout {
    let mut l = Layout {
        numeric: Vec::new(),
        categorical: Vec::new(),
        label: schema.label.clone(),
        source: schema.source.clone(),
    };
    for c in &reference.columns {
        if Some(&c.name) == l.label.as_ref()
            || Some(&c.name) == l.source.as_ref()
            || options.ignore.contains(&c.name)
        {
            continue;
        }
        let name = c.name.to_ascii_lowercase();
        let id_like = name == "id" || name.ends_with("_id") || name.ends_with("uuid");
        let mostly_unique = c.distinct_estimate() >= 0.9 * c.present().max(1) as f64;
        match c.kind {
            ColumnKind::Integer | ColumnKind::Float if !id_like => l.numeric.push(c.name.clone()),
            ColumnKind::String | ColumnKind::Boolean if !id_like && !mostly_unique => {
                l.categorical.push(c.name.clone())
            }
            _ => {}
        }
    }
    l
}

fn cell_text(array: &dyn Array, i: usize) -> Option<String> {
    if array.is_null(i) {
        return None;
    }
    arrow::util::display::array_value_to_string(array, i).ok()
}

fn load(
    sources: &[TableSource],
    layout: &Layout,
    dicts: &mut Dictionaries,
    max_rows: u64,
    mut on_batch: impl FnMut(&RecordBatch, u64) -> Result<(), DataError>,
) -> Result<Rows, DataError> {
    let mut rows = Rows {
        n: 0,
        numeric: vec![Vec::new(); layout.numeric.len()],
        categorical: vec![Vec::new(); layout.categorical.len()],
        label: layout.label.as_ref().map(|_| Vec::new()),
        source: layout.source.as_ref().map(|_| Vec::new()),
    };
    for source in sources {
        for batch in source.open()? {
            let batch = batch?;
            on_batch(&batch, rows.n as u64)?;
            let schema = batch.schema();
            let len = batch.num_rows();
            if rows.n as u64 + len as u64 > max_rows {
                return Err(DataError::Limit {
                    what: "rows for row-level poisoning signals".into(),
                    limit: max_rows,
                });
            }
            for (k, name) in layout.numeric.iter().enumerate() {
                let out = &mut rows.numeric[k];
                match schema.index_of(name) {
                    Ok(i) => {
                        let cast = arrow::compute::cast(batch.column(i), &DataType::Float64);
                        match cast {
                            Ok(a) => out.extend(
                                a.as_primitive::<Float64Type>()
                                    .iter()
                                    .map(|v| v.unwrap_or(f64::NAN)),
                            ),
                            Err(_) => out.extend(std::iter::repeat_n(f64::NAN, len)),
                        }
                    }
                    Err(_) => out.extend(std::iter::repeat_n(f64::NAN, len)),
                }
            }
            let mut codes = |name: &str, out: &mut Vec<u32>| match schema.index_of(name) {
                Ok(i) => match arrow::compute::cast(batch.column(i), &DataType::Utf8) {
                    Ok(text) => {
                        for v in text.as_string::<i32>().iter() {
                            out.push(v.map_or(u32::MAX, |t| dicts.code(name, t)));
                        }
                    }
                    Err(_) => {
                        let a = batch.column(i);
                        for r in 0..len {
                            let code =
                                cell_text(a.as_ref(), r).map_or(u32::MAX, |t| dicts.code(name, &t));
                            out.push(code);
                        }
                    }
                },
                Err(_) => out.extend(std::iter::repeat_n(u32::MAX, len)),
            };
            for (k, name) in layout.categorical.iter().enumerate() {
                codes(name, &mut rows.categorical[k]);
            }
            if let (Some(name), Some(out)) = (&layout.label, &mut rows.label) {
                codes(name, out);
            }
            if let (Some(name), Some(out)) = (&layout.source, &mut rows.source) {
                codes(name, out);
            }
            rows.n += len;
        }
    }
    Ok(rows)
}

/// Per-feature centre and scale from the reference, for grids and distances.
struct Scales {
    mean: Vec<f64>,
    std: Vec<f64>,
}

fn scales(rows: &Rows) -> Scales {
    let mut mean = Vec::new();
    let mut std = Vec::new();
    for col in &rows.numeric {
        let mut m = crate::sketch::Moments::default();
        col.iter()
            .filter(|v| v.is_finite())
            .for_each(|&v| m.push(v));
        mean.push(m.mean);
        std.push(if m.std() > 0.0 { m.std() } else { 1.0 });
    }
    Scales { mean, std }
}

const GRIDS: usize = 4;
/// Most label values for which the label-based signals are computed.
pub const MAX_CLASSES: usize = 100;
/// Most numeric features in the Mahalanobis model (its cost grows with the square).
pub const MAX_MAHALANOBIS_FEATURES: usize = 64;

/// Keys of the cells a row falls in, on `GRIDS` grids offset by a fraction of a cell, so two
/// rows closer than a cell in every feature share a cell on some grid with high probability.
fn grid_keys(rows: &Rows, s: &Scales, cell: f64, with_label: bool) -> Vec<[u64; GRIDS]> {
    (0..rows.n)
        .map(|r| {
            let mut keys = [0u64; GRIDS];
            for (g, key) in keys.iter_mut().enumerate() {
                let offset = g as f64 / GRIDS as f64;
                let mut h = xxhash_rust::xxh3::Xxh3Default::new();
                for (k, col) in rows.numeric.iter().enumerate() {
                    let v = col[r];
                    let q = if v.is_finite() {
                        ((v - s.mean[k]) / (s.std[k] * cell) + offset).floor() as i64
                    } else {
                        i64::MIN
                    };
                    h.update(&q.to_le_bytes());
                }
                for col in &rows.categorical {
                    h.update(&col[r].to_le_bytes());
                }
                if with_label && let Some(l) = &rows.label {
                    h.update(&l[r].to_le_bytes());
                }
                *key = h.digest();
            }
            keys
        })
        .collect()
}

fn exact_keys(rows: &Rows) -> Vec<u64> {
    (0..rows.n)
        .map(|r| {
            let mut h = xxhash_rust::xxh3::Xxh3Default::new();
            for col in &rows.numeric {
                let v = col[r];
                h.update(&(if v == 0.0 { 0.0f64 } else { v }).to_bits().to_le_bytes());
            }
            for col in &rows.categorical {
                h.update(&col[r].to_le_bytes());
            }
            if let Some(l) = &rows.label {
                h.update(&l[r].to_le_bytes());
            }
            h.digest()
        })
        .collect()
}

/// Rows that repeat an earlier row's key.
fn repeats(keys: &[u64]) -> Vec<u64> {
    let mut seen: HashMap<u64, ()> = HashMap::with_capacity(keys.len());
    let mut out = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        if seen.insert(*k, ()).is_some() {
            out.push(i as u64);
        }
    }
    out
}

/// Rows sharing a cell with an earlier row on some grid, excluding exact repeats. Sorting keys
/// (12 bytes a row) instead of hashing them keeps memory flat for millions of rows.
fn near_repeats(keys: &[[u64; GRIDS]], exact: &[u64]) -> Vec<u64> {
    let mut flagged = vec![false; keys.len()];
    let mut order: Vec<(u64, u32)> = Vec::with_capacity(keys.len());
    for g in 0..GRIDS {
        order.clear();
        order.extend(keys.iter().enumerate().map(|(i, k)| (k[g], i as u32)));
        order.sort_unstable();
        for w in order.windows(2) {
            if w[0].0 == w[1].0 {
                // Sorted by (cell, row): every row after the first of its cell repeats it.
                flagged[w[1].1 as usize] = true;
            }
        }
    }
    for &e in exact {
        flagged[e as usize] = false;
    }
    flagged
        .iter()
        .enumerate()
        .filter(|(_, f)| **f)
        .map(|(i, _)| i as u64)
        .collect()
}

/// Rows of `cur` whose label disagrees with the rows near them. Labels of the reference (the
/// approved version) are trusted over the new version's; within the new version, the minority
/// label of a cell is the suspect (on a tie, every label of the cell is). Cells are found by
/// sorting, so memory stays at a few bytes a row.
fn label_conflicts(
    ref_keys: &[[u64; GRIDS]],
    ref_labels: &[u32],
    cur_keys: &[[u64; GRIDS]],
    cur_labels: &[u32],
) -> Vec<u64> {
    let mut flagged = vec![false; cur_keys.len()];
    // (cell, label, from the reference, row)
    let mut cells: Vec<(u64, u32, bool, u32)> = Vec::with_capacity(ref_keys.len() + cur_keys.len());
    for g in 0..GRIDS {
        cells.clear();
        cells.extend(
            ref_keys
                .iter()
                .zip(ref_labels)
                .enumerate()
                .map(|(i, (k, l))| (k[g], *l, true, i as u32)),
        );
        cells.extend(
            cur_keys
                .iter()
                .zip(cur_labels)
                .enumerate()
                .map(|(i, (k, l))| (k[g], *l, false, i as u32)),
        );
        cells.sort_unstable_by_key(|c| c.0);
        for group in cells.chunk_by(|a, b| a.0 == b.0) {
            if group.len() < 2 {
                continue;
            }
            // Distinct trusted labels (a cell can hold many reference rows, few labels).
            let mut trusted: Vec<u32> = group.iter().filter(|c| c.2).map(|c| c.1).collect();
            trusted.sort_unstable();
            trusted.dedup();
            let mut counts: BTreeMap<u32, u32> = BTreeMap::new();
            for c in group.iter().filter(|c| !c.2) {
                *counts.entry(c.1).or_default() += 1;
            }
            let top = counts.values().copied().max().unwrap_or(0);
            let tied = counts.values().filter(|&&n| n == top).count() > 1;
            for c in group.iter().filter(|c| !c.2) {
                let suspect = if !trusted.is_empty() {
                    !trusted.contains(&c.1)
                } else {
                    counts.len() > 1 && (counts[&c.1] < top || tied)
                };
                if suspect {
                    flagged[c.3 as usize] = true;
                }
            }
        }
    }
    flagged
        .iter()
        .enumerate()
        .filter(|(_, f)| **f)
        .map(|(i, _)| i as u64)
        .collect()
}

/// Lower-triangular Cholesky factor of a symmetric positive-definite matrix (row-major).
fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut sum = a[i * n + j];
            for k in 0..j {
                sum -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if sum <= 0.0 {
                    return None;
                }
                l[i * n + i] = sum.sqrt();
            } else {
                l[i * n + j] = sum / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// Squared Mahalanobis distances of every row, with the reference's mean and covariance of
/// standardised numeric features (a small ridge keeps the matrix invertible).
struct Mahalanobis {
    mean: Vec<f64>,
    std: Vec<f64>,
    chol: Vec<f64>,
    dim: usize,
}

impl Mahalanobis {
    fn fit(rows: &Rows, s: &Scales) -> Option<Mahalanobis> {
        let dim = rows.numeric.len();
        if dim == 0 || dim > MAX_MAHALANOBIS_FEATURES || rows.n < 10 * (dim + 1) {
            return None;
        }
        let mut cov = vec![0.0; dim * dim];
        let mut count = 0usize;
        let mut z = vec![0.0; dim];
        for r in 0..rows.n {
            if !standardise(rows, s, r, &mut z) {
                continue;
            }
            count += 1;
            for i in 0..dim {
                for j in 0..=i {
                    cov[i * dim + j] += z[i] * z[j];
                }
            }
        }
        if count < 10 * (dim + 1) {
            return None;
        }
        for i in 0..dim {
            for j in 0..=i {
                let v = cov[i * dim + j] / count as f64;
                cov[i * dim + j] = v;
                cov[j * dim + i] = v;
            }
            cov[i * dim + i] += 1e-6;
        }
        Some(Mahalanobis {
            mean: s.mean.clone(),
            std: s.std.clone(),
            chol: cholesky(&cov, dim)?,
            dim,
        })
    }

    fn distances(&self, rows: &Rows) -> Vec<f64> {
        let s = Scales {
            mean: self.mean.clone(),
            std: self.std.clone(),
        };
        let mut z = vec![0.0; self.dim];
        let mut y = vec![0.0; self.dim];
        (0..rows.n)
            .map(|r| {
                if !standardise(rows, &s, r, &mut z) {
                    return f64::NAN;
                }
                // Forward substitution: L y = z, distance² = |y|².
                for i in 0..self.dim {
                    let row = &self.chol[i * self.dim..i * self.dim + i];
                    let sum = z[i] - row.iter().zip(&y[..i]).map(|(l, y)| l * y).sum::<f64>();
                    y[i] = sum / self.chol[i * self.dim + i];
                }
                y.iter().map(|v| v * v).sum()
            })
            .collect()
    }
}

fn standardise(rows: &Rows, s: &Scales, r: usize, z: &mut [f64]) -> bool {
    for (k, col) in rows.numeric.iter().enumerate() {
        let v = col[r];
        if !v.is_finite() {
            return false;
        }
        z[k] = (v - s.mean[k]) / s.std[k];
    }
    true
}

fn share(count: usize, n: usize) -> f64 {
    if n == 0 { 0.0 } else { count as f64 / n as f64 }
}

fn listed(mut rows: Vec<u64>, max: usize) -> (u64, Vec<u64>) {
    let n = rows.len() as u64;
    rows.truncate(max);
    (n, rows)
}

/// Everything a check computes from the rows of both versions.
pub struct RowAnalysis {
    pub poison: PoisonReport,
    pub violations: Vec<SchemaViolation>,
}

/// Reads both versions row by row, enforces `schema` on the new one, and computes the signals.
pub fn analyse(
    reference: &[TableSource],
    reference_profile: &DatasetProfile,
    current: &[TableSource],
    schema: &DataSchema,
    options: &PoisonOptions,
) -> Result<RowAnalysis, DataError> {
    let layout = layout(reference_profile, schema, options);
    let mut dicts = Dictionaries::default();
    let ref_rows = load(reference, &layout, &mut dicts, options.max_rows, |_, _| {
        Ok(())
    })?;
    let mut checker = SchemaChecker::new(schema);
    for source in current {
        checker.check_columns(source.schema()?.as_ref());
    }
    let cur_rows = load(
        current,
        &layout,
        &mut dicts,
        options.max_rows,
        |b, first| checker.check(b, first),
    )?;
    let violations = checker.finish();
    let mut signals = Vec::new();
    let max = options.max_rows_listed;
    let s = scales(&ref_rows);

    // Label distribution and class-conditional feature shifts.
    // Label-based signals need a categorical label: a regression target would make every
    // value a class (and the per-class work quadratic).
    let label_classes = ref_rows.label.as_ref().map_or(0, |l| {
        let mut c: Vec<u32> = l.clone();
        c.sort_unstable();
        c.dedup();
        c.len()
    });
    let label_usable = label_classes <= MAX_CLASSES;
    if !label_usable && let Some(label) = &layout.label {
        for id in ["label_shift", "class_feature_shift", "label_conflicts"] {
            signals.push(Signal {
                id: id.into(),
                fired: false,
                score: 0.0,
                threshold: 0.0,
                reference_score: None,
                detail: format!("not computed: label `{label}` has {label_classes} values (more than {MAX_CLASSES}); set the schema's label to a categorical column"),
                row_count: 0,
                rows: Vec::new(),
            });
        }
    }
    if label_usable
        && let (Some(rl), Some(cl), Some(label)) = (&ref_rows.label, &cur_rows.label, &layout.label)
    {
        let classes: Vec<u32> = {
            let mut c: Vec<u32> = rl
                .iter()
                .chain(cl)
                .copied()
                .filter(|&c| c != u32::MAX)
                .collect();
            c.sort_unstable();
            c.dedup();
            c
        };
        let count = |labels: &[u32], c: u32| labels.iter().filter(|&&l| l == c).count() as f64;
        let rc: Vec<f64> = classes.iter().map(|&c| count(rl, c)).collect();
        let cc: Vec<f64> = classes.iter().map(|&c| count(cl, c)).collect();
        let js = stats::jensen_shannon(&rc, &cc, std::f64::consts::E);
        let fired = js >= options.label_shift_threshold;
        let (nr, nc) = (rl.len().max(1) as f64, cl.len().max(1) as f64);
        let grown: Vec<u32> = classes
            .iter()
            .zip(rc.iter().zip(&cc))
            .filter(|(_, (r, c))| **c / nc > **r / nr)
            .map(|(k, _)| *k)
            .collect();
        let offending: Vec<u64> = if fired {
            cl.iter()
                .enumerate()
                .filter(|(_, l)| grown.contains(l))
                .map(|(i, _)| i as u64)
                .collect()
        } else {
            Vec::new()
        };
        let shares = classes
            .iter()
            .zip(rc.iter().zip(&cc))
            .map(|(k, (r, c))| {
                format!(
                    "{}: {:.1}% → {:.1}%",
                    dicts.name(label, *k),
                    100.0 * r / nr,
                    100.0 * c / nc
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let (row_count, rows) = listed(offending, max);
        signals.push(Signal {
            id: "label_shift".into(),
            fired,
            score: js,
            threshold: options.label_shift_threshold,
            reference_score: None,
            detail: format!("label `{label}` shares {shares}"),
            row_count,
            rows,
        });

        let mut worst: Option<(f64, String, Vec<u64>)> = None;
        let mut findings = Vec::new();
        for (k, feature) in layout.numeric.iter().enumerate() {
            let all_r = sorted_weighted(ref_rows.numeric[k].iter().copied());
            let all_c = sorted_weighted(cur_rows.numeric[k].iter().copied());
            let overall = stats::wasserstein(&all_r, &all_c) / s.std[k];
            for &class in &classes {
                let pick = |rows: &Rows, labels: &[u32]| {
                    sorted_weighted(
                        rows.numeric[k]
                            .iter()
                            .zip(labels)
                            .filter(|(_, l)| **l == class)
                            .map(|(v, _)| *v),
                    )
                };
                let (r, c) = (pick(&ref_rows, rl), pick(&cur_rows, cl));
                if r.len() < options.class_min_rows || c.len() < options.class_min_rows {
                    continue;
                }
                let excess = stats::wasserstein(&r, &c) / s.std[k] - overall;
                if excess >= options.class_shift_threshold {
                    findings.push(format!(
                        "`{feature}` in class {} ({excess:.3})",
                        dicts.name(label, class)
                    ));
                }
                if worst.as_ref().is_none_or(|w| excess > w.0) {
                    let q = |p: f64| r[((p * r.len() as f64) as usize).min(r.len() - 1)].0;
                    let (p1, p99) = (q(0.01), q(0.99));
                    let rows: Vec<u64> = cur_rows.numeric[k]
                        .iter()
                        .zip(cl)
                        .enumerate()
                        .filter(|(_, (v, l))| **l == class && (**v < p1 || **v > p99))
                        .map(|(i, _)| i as u64)
                        .collect();
                    worst = Some((
                        excess,
                        format!("`{feature}` in class {}", dicts.name(label, class)),
                        rows,
                    ));
                }
            }
        }
        let (score, what, rows) = worst.unwrap_or((0.0, String::new(), Vec::new()));
        let fired = score >= options.class_shift_threshold;
        let (row_count, rows) = listed(if fired { rows } else { Vec::new() }, max);
        signals.push(Signal {
            id: "class_feature_shift".into(),
            fired,
            score,
            threshold: options.class_shift_threshold,
            reference_score: None,
            detail: if findings.is_empty() {
                format!("largest within-class shift beyond the overall one: {what}")
            } else {
                format!("shifted within one class: {}", findings.join(", "))
            },
            row_count,
            rows,
        });
    }

    // Duplicates.
    let ref_exact = repeats(&exact_keys(&ref_rows));
    let cur_exact = repeats(&exact_keys(&cur_rows));
    let (rs, cs) = (
        share(ref_exact.len(), ref_rows.n),
        share(cur_exact.len(), cur_rows.n),
    );
    let threshold = rs + options.duplicate_tolerance;
    let fired = cs > threshold;
    let (row_count, rows) = listed(cur_exact.clone(), max);
    signals.push(Signal {
        id: "exact_duplicates".into(),
        fired,
        score: cs,
        threshold,
        reference_score: Some(rs),
        detail: format!(
            "{} rows repeat an earlier row ({:.2}%; reference {:.2}%)",
            cur_exact.len(),
            100.0 * cs,
            100.0 * rs
        ),
        row_count,
        rows,
    });

    let ref_grid = grid_keys(&ref_rows, &s, options.near_cell, false);
    let cur_grid = grid_keys(&cur_rows, &s, options.near_cell, false);
    if !layout.numeric.is_empty() {
        let ref_near = near_repeats(&ref_grid, &ref_exact);
        let cur_near = near_repeats(&cur_grid, &cur_exact);
        let (rs, cs) = (
            share(ref_near.len(), ref_rows.n),
            share(cur_near.len(), cur_rows.n),
        );
        let threshold = rs + options.near_duplicate_tolerance;
        let (row_count, rows) = listed(cur_near.clone(), max);
        signals.push(Signal {
            id: "near_duplicates".into(),
            fired: cs > threshold,
            score: cs,
            threshold,
            reference_score: Some(rs),
            detail: format!(
                "{} rows lie within {} std of an earlier row in every feature ({:.2}%; reference {:.2}%)",
                cur_near.len(),
                options.near_cell,
                100.0 * cs,
                100.0 * rs
            ),
            row_count,
            rows,
        });
    }

    // Possible label flips.
    if label_usable && let (Some(rl), Some(cl)) = (&ref_rows.label, &cur_rows.label) {
        let empty_keys: Vec<[u64; GRIDS]> = Vec::new();
        let baseline = label_conflicts(&empty_keys, &[], &ref_grid, rl);
        let flagged = label_conflicts(&ref_grid, rl, &cur_grid, cl);
        let (rs, cs) = (
            share(baseline.len(), ref_rows.n),
            share(flagged.len(), cur_rows.n),
        );
        let threshold = rs + options.label_conflict_tolerance;
        let (row_count, rows) = listed(flagged.clone(), max);
        signals.push(Signal {
            id: "label_conflicts".into(),
            fired: cs > threshold,
            score: cs,
            threshold,
            reference_score: Some(rs),
            detail: format!(
                "{} rows carry a different label than near-identical rows ({:.2}%; reference {:.2}%)",
                flagged.len(),
                100.0 * cs,
                100.0 * rs
            ),
            row_count,
            rows,
        });
    }

    // Out-of-schema values.
    {
        let mut bad: Vec<u64> = violations
            .iter()
            .filter(|v| {
                !matches!(
                    v.kind,
                    ViolationKind::MissingColumn
                        | ViolationKind::UnexpectedColumn
                        | ViolationKind::TypeMismatch
                )
            })
            .flat_map(|v| v.rows.iter().copied())
            .collect();
        bad.sort_unstable();
        bad.dedup();
        let total: u64 = violations.iter().map(|v| v.count).sum();
        let cs = share(bad.len(), cur_rows.n);
        let structural = violations.iter().any(|v| {
            matches!(
                v.kind,
                ViolationKind::MissingColumn
                    | ViolationKind::UnexpectedColumn
                    | ViolationKind::TypeMismatch
            )
        });
        let (row_count, rows) = listed(bad, max);
        signals.push(Signal {
            id: "out_of_schema".into(),
            fired: cs > 0.0 || structural,
            score: cs,
            threshold: 0.0,
            reference_score: None,
            detail: format!(
                "{total} schema violations in {} columns",
                violations
                    .iter()
                    .map(|v| &v.column)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
            ),
            row_count,
            rows,
        });
    }

    // Multivariate outliers.
    if let Some(model) = Mahalanobis::fit(&ref_rows, &s) {
        let mut ref_d: Vec<f64> = model
            .distances(&ref_rows)
            .into_iter()
            .filter(|d| d.is_finite())
            .collect();
        ref_d.sort_by(f64::total_cmp);
        let tau =
            ref_d[((options.outlier_quantile * ref_d.len() as f64) as usize).min(ref_d.len() - 1)];
        let cur_d = model.distances(&cur_rows);
        let mut beyond: Vec<(u64, f64)> = cur_d
            .iter()
            .enumerate()
            .filter(|(_, d)| d.is_finite() && **d > tau)
            .map(|(i, d)| (i as u64, *d))
            .collect();
        beyond.sort_by(|a, b| b.1.total_cmp(&a.1));
        let expected = 1.0 - options.outlier_quantile;
        let n = cur_rows.n.max(1) as f64;
        let threshold = (expected * options.outlier_factor)
            .max(expected + 4.0 * (expected * (1.0 - expected) / n).sqrt());
        let cs = share(beyond.len(), cur_rows.n);
        let (row_count, rows) = listed(beyond.iter().map(|x| x.0).collect(), max);
        signals.push(Signal {
            id: "multivariate_outliers".into(),
            fired: cs > threshold,
            score: cs,
            threshold,
            reference_score: Some(expected),
            detail: format!(
                "{} rows beyond the reference's {} quantile of Mahalanobis distance over {} numeric features",
                beyond.len(),
                options.outlier_quantile,
                model.dim
            ),
            row_count,
            rows,
        });
    }

    // Row counts by source.
    if let (Some(rsrc), Some(csrc), Some(source)) =
        (&ref_rows.source, &cur_rows.source, &layout.source)
    {
        let mut counts: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
        rsrc.iter()
            .for_each(|s| counts.entry(*s).or_default().0 += 1.0);
        csrc.iter()
            .for_each(|s| counts.entry(*s).or_default().1 += 1.0);
        let (nr, nc) = (ref_rows.n.max(1) as f64, cur_rows.n.max(1) as f64);
        let (best, gain, rcount, ccount) = counts
            .iter()
            .map(|(k, (r, c))| (*k, c / nc - r / nr, *r, *c))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((u32::MAX, 0.0, 0.0, 0.0));
        let fired = gain >= options.source_share_threshold;
        let offending: Vec<u64> = if fired {
            csrc.iter()
                .enumerate()
                .filter(|(_, s)| **s == best)
                .map(|(i, _)| i as u64)
                .collect()
        } else {
            Vec::new()
        };
        let (row_count, rows) = listed(offending, max);
        signals.push(Signal {
            id: "source_jump".into(),
            fired,
            score: gain,
            threshold: options.source_share_threshold,
            reference_score: None,
            detail: format!(
                "source `{}` = `{}`: {rcount} → {ccount} rows ({:.1}% → {:.1}% of the version)",
                source,
                dicts.name(source, best),
                100.0 * rcount / nr,
                100.0 * ccount / nc
            ),
            row_count,
            rows,
        });
    }

    Ok(RowAnalysis {
        poison: PoisonReport {
            signals,
            skipped: None,
        },
        violations,
    })
}

fn sorted_weighted(values: impl Iterator<Item = f64>) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, f64)> = values.filter(|x| x.is_finite()).map(|x| (x, 1.0)).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

/// Schema enforcement alone (no reference), for a first version or a quick check.
pub fn enforce_schema(
    sources: &[TableSource],
    schema: &DataSchema,
) -> Result<Vec<SchemaViolation>, DataError> {
    let mut checker = SchemaChecker::new(schema);
    let mut first = 0u64;
    for source in sources {
        let batches = source.open()?;
        checker.check_columns(&batches.schema);
        for batch in batches {
            let batch = batch?;
            checker.check(&batch, first)?;
            first += batch.num_rows() as u64;
        }
    }
    Ok(checker.finish())
}
