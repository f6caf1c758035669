//! Per-column profiles computed in one streaming pass and mergeable: a profile of two partitions
//! merged equals the profile of the whole — exactly for counts, nulls, min/max, category counts
//! and the distinct-count sketch; to floating-point rounding for mean and variance; within the
//! KLL rank-error bound ([`crate::sketch::kll::RANK_ERROR_BOUND`]) for quantiles.

use std::collections::{BTreeMap, HashMap};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, SchemaRef};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::read::{TableFormat, TableSource};
use crate::sketch::{HyperLogLog, Kll, Moments, hash_bytes, hash_f64};

/// Columns keep all their values up to this count, so small tables get exact tests.
pub const EXACT_LIMIT: usize = 5000;
/// Numeric columns with at most this many distinct values keep exact value counts.
pub const SMALL_DOMAIN_LIMIT: usize = 64;
/// Categorical columns count at most this many distinct values exactly; later new values are
/// counted together as `other`.
pub const CATEGORY_LIMIT: usize = 10_000;
/// Quantiles reported in summaries.
pub const SUMMARY_QUANTILES: [f64; 7] = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    Integer,
    Float,
    Boolean,
    String,
    Timestamp,
    /// Nested, binary and other types: counted, not summarised.
    Other,
}

impl ColumnKind {
    pub fn of(data_type: &DataType) -> ColumnKind {
        use DataType::*;
        match data_type {
            Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => ColumnKind::Integer,
            Float16 | Float32 | Float64 | Decimal32(..) | Decimal64(..) | Decimal128(..)
            | Decimal256(..) => ColumnKind::Float,
            Boolean => ColumnKind::Boolean,
            Utf8 | LargeUtf8 | Utf8View => ColumnKind::String,
            Dictionary(_, value) => match ColumnKind::of(value) {
                ColumnKind::String => ColumnKind::String,
                _ => ColumnKind::Other,
            },
            Date32 | Date64 | Timestamp(..) | Time32(..) | Time64(..) | Duration(..) => {
                ColumnKind::Timestamp
            }
            Null => ColumnKind::Other,
            _ => ColumnKind::Other,
        }
    }

    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            ColumnKind::Integer | ColumnKind::Float | ColumnKind::Timestamp
        )
    }

    pub fn is_categorical(self) -> bool {
        matches!(self, ColumnKind::Boolean | ColumnKind::String)
    }
}

/// Category counts, exact until [`CATEGORY_LIMIT`] distinct values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Categories {
    pub counts: BTreeMap<String, u64>,
    /// Values seen after the limit that were not already counted.
    pub other: u64,
}

impl Categories {
    pub fn overflowed(&self) -> bool {
        self.other > 0
    }

    fn merge(&mut self, other: &Categories) {
        self.other += other.other;
        for (k, v) in &other.counts {
            if let Some(c) = self.counts.get_mut(k) {
                *c += v;
            } else if self.counts.len() < CATEGORY_LIMIT {
                self.counts.insert(k.clone(), *v);
            } else {
                self.other += v;
            }
        }
    }

    pub fn top(&self, n: usize) -> Vec<(String, u64)> {
        let mut all: Vec<(String, u64)> =
            self.counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub name: String,
    pub kind: ColumnKind,
    /// The Arrow type the column was read as.
    pub data_type: String,
    pub rows: u64,
    pub nulls: u64,
    /// NaN and infinite floats (not in the moments or sketches).
    #[serde(default)]
    pub non_finite: u64,
    /// Numeric values (timestamps as their integer encoding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Moments>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantiles: Option<Kll>,
    /// Every value, while the column has at most [`EXACT_LIMIT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<Vec<f64>>,
    /// Exact value counts of a numeric column with few distinct values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub small_domain: Option<Vec<(f64, u64)>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Categories>,
    /// String lengths in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lengths: Option<Moments>,
    pub distinct: HyperLogLog,
}

impl ColumnProfile {
    pub fn new(name: &str, data_type: &DataType) -> Self {
        let kind = ColumnKind::of(data_type);
        ColumnProfile {
            name: name.to_owned(),
            kind,
            data_type: data_type.to_string(),
            rows: 0,
            nulls: 0,
            non_finite: 0,
            values: kind.is_numeric().then(Moments::default),
            quantiles: kind.is_numeric().then(Kll::default),
            exact: kind.is_numeric().then(Vec::new),
            small_domain: kind.is_numeric().then(Vec::new),
            categories: kind.is_categorical().then(Categories::default),
            lengths: (kind == ColumnKind::String).then(Moments::default),
            distinct: HyperLogLog::default(),
        }
    }

    /// Non-null values counted.
    pub fn present(&self) -> u64 {
        // Saturating: a stored profile is data, and data can be inconsistent.
        self.rows.saturating_sub(self.nulls)
    }

    /// Distinct values: exact where the profile still knows every value, else the HLL estimate.
    pub fn distinct_estimate(&self) -> f64 {
        if let Some(c) = &self.categories
            && !c.overflowed()
        {
            return c.counts.len() as f64;
        }
        if let Some(d) = &self.small_domain {
            return d.len() as f64;
        }
        if let Some(e) = &self.exact {
            let mut v = e.clone();
            v.sort_by(f64::total_cmp);
            v.dedup();
            return v.len() as f64;
        }
        self.distinct.estimate()
    }

    /// Updates the profile with one column of a record batch.
    pub fn update(&mut self, array: &ArrayRef) -> Result<(), DataError> {
        self.rows += array.len() as u64;
        self.nulls += array.logical_null_count() as u64;
        if self.kind.is_numeric() {
            let as_f64 = numeric_values(array)?;
            let values = as_f64.as_primitive::<Float64Type>();
            if values.null_count() == 0 {
                for &v in values.values() {
                    self.push_numeric(v);
                }
            } else {
                for v in values.iter().flatten() {
                    self.push_numeric(v);
                }
            }
        } else if self.kind == ColumnKind::Boolean {
            let b = array.as_boolean();
            let (mut t, mut f) = (0u64, 0u64);
            for v in b.iter().flatten() {
                if v { t += 1 } else { f += 1 }
            }
            let cats = self
                .categories
                .as_mut()
                .expect("boolean columns count categories");
            for (key, n) in [("true", t), ("false", f)] {
                if n > 0 {
                    *cats.counts.entry(key.to_owned()).or_default() += n;
                    self.distinct.insert_hash(hash_bytes(key.as_bytes()));
                }
            }
        } else if self.kind == ColumnKind::String {
            let strings = arrow::compute::cast(array, &DataType::Utf8)
                .map_err(|e| DataError::Invalid(format!("column `{}`: {e}", self.name)))?;
            let strings = strings.as_string::<i32>();
            let mut local: HashMap<&str, u64, xxhash_rust::xxh3::Xxh3DefaultBuilder> =
                HashMap::with_hasher(Default::default());
            for s in strings.iter().flatten() {
                *local.entry(s).or_default() += 1;
            }
            let lengths = self.lengths.as_mut().expect("string columns track lengths");
            for (s, n) in &local {
                lengths.push_n(s.chars().count() as f64, *n);
            }
            let cats = self
                .categories
                .as_mut()
                .expect("string columns count categories");
            for (s, n) in local {
                self.distinct.insert_hash(hash_bytes(s.as_bytes()));
                if let Some(c) = cats.counts.get_mut(s) {
                    *c += n;
                } else if cats.counts.len() < CATEGORY_LIMIT {
                    cats.counts.insert(s.to_owned(), n);
                } else {
                    cats.other += n;
                }
            }
        }
        Ok(())
    }

    fn push_numeric(&mut self, v: f64) {
        if !v.is_finite() {
            self.non_finite += 1;
            return;
        }
        self.values.as_mut().expect("numeric").push(v);
        self.quantiles.as_mut().expect("numeric").push(v);
        self.distinct.insert_hash(hash_f64(v));
        if let Some(exact) = &mut self.exact {
            if exact.len() < EXACT_LIMIT {
                exact.push(v);
            } else {
                self.exact = None;
            }
        }
        if let Some(domain) = &mut self.small_domain {
            if let Some(slot) = domain.iter().position(|(x, _)| *x == v) {
                domain[slot].1 += 1;
            } else if domain.len() < SMALL_DOMAIN_LIMIT {
                domain.push((v, 1));
            } else {
                self.small_domain = None;
            }
        }
    }

    /// Adds another partition's profile of the same column.
    pub fn merge(&mut self, other: &ColumnProfile) -> Result<(), DataError> {
        if self.kind != other.kind || self.name != other.name {
            return Err(DataError::Invalid(format!(
                "cannot merge profiles of `{}` ({:?}) and `{}` ({:?})",
                self.name, self.kind, other.name, other.kind
            )));
        }
        self.rows += other.rows;
        self.nulls += other.nulls;
        self.non_finite += other.non_finite;
        if let (Some(a), Some(b)) = (&mut self.values, &other.values) {
            a.merge(b);
        }
        if let (Some(a), Some(b)) = (&mut self.quantiles, &other.quantiles) {
            a.merge(b);
        }
        self.exact = match (self.exact.take(), &other.exact) {
            (Some(mut a), Some(b)) if a.len() + b.len() <= EXACT_LIMIT => {
                a.extend_from_slice(b);
                Some(a)
            }
            _ => None,
        };
        self.small_domain = match (self.small_domain.take(), &other.small_domain) {
            (Some(mut a), Some(b)) => {
                for &(v, n) in b {
                    match a.iter_mut().find(|(x, _)| *x == v) {
                        Some((_, c)) => *c += n,
                        None => a.push((v, n)),
                    }
                }
                (a.len() <= SMALL_DOMAIN_LIMIT).then_some(a)
            }
            _ => None,
        };
        if let (Some(a), Some(b)) = (&mut self.categories, &other.categories) {
            a.merge(b);
        }
        if let (Some(a), Some(b)) = (&mut self.lengths, &other.lengths) {
            a.merge(b);
        }
        self.distinct.merge(&other.distinct);
        Ok(())
    }

    /// Exact value counts when the column has a small domain (numeric) or is categorical and
    /// counted exactly; keys are display strings.
    pub fn value_counts(&self) -> Option<Vec<(String, u64)>> {
        if let Some(c) = &self.categories {
            let mut v: Vec<(String, u64)> = c.counts.iter().map(|(k, n)| (k.clone(), *n)).collect();
            if c.other > 0 {
                v.push(("(other)".to_owned(), c.other));
            }
            return Some(v);
        }
        self.small_domain.as_ref().map(|d| {
            let mut d = d.clone();
            d.sort_by(|a, b| a.0.total_cmp(&b.0));
            d.into_iter().map(|(x, n)| (format_number(x), n)).collect()
        })
    }

    /// Values with weights for distribution tests: exact values when kept, else the sketch.
    pub fn weighted_values(&self) -> Vec<(f64, f64)> {
        if let Some(e) = &self.exact {
            let mut v: Vec<(f64, f64)> = e.iter().map(|&x| (x, 1.0)).collect();
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            return v;
        }
        self.quantiles
            .as_ref()
            .map(Kll::weighted_items)
            .unwrap_or_default()
    }

    /// Fractions of values ≤ each edge (sorted ascending).
    pub fn cdf_at(&self, edges: &[f64]) -> Vec<f64> {
        if let Some(e) = &self.exact {
            let mut v = e.clone();
            v.sort_by(f64::total_cmp);
            let n = v.len().max(1) as f64;
            return edges
                .iter()
                .map(|&x| v.partition_point(|&y| y <= x) as f64 / n)
                .collect();
        }
        self.quantiles
            .as_ref()
            .map(|k| k.cdf_many(edges))
            .unwrap_or_else(|| vec![0.0; edges.len()])
    }

    pub fn summary(&self) -> ColumnSummary {
        let quantiles = match (&self.exact, &self.quantiles) {
            (Some(e), _) if !e.is_empty() => {
                let mut v = e.clone();
                v.sort_by(f64::total_cmp);
                SUMMARY_QUANTILES
                    .iter()
                    .map(|&q| {
                        let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
                        (q, v[i])
                    })
                    .collect()
            }
            (_, Some(k)) => SUMMARY_QUANTILES
                .iter()
                .zip(k.quantiles(&SUMMARY_QUANTILES))
                .filter_map(|(&q, v)| v.map(|v| (q, v)))
                .collect(),
            _ => Vec::new(),
        };
        let values = self.values.as_ref().filter(|m| m.count > 0);
        ColumnSummary {
            name: self.name.clone(),
            kind: self.kind,
            rows: self.rows,
            nulls: self.nulls,
            distinct: self.distinct_estimate().round() as u64,
            min: values.and_then(|m| m.min),
            max: values.and_then(|m| m.max),
            mean: values.map(|m| m.mean),
            std: values.map(Moments::std),
            quantiles,
            histogram: self.histogram(20),
            top: self
                .categories
                .as_ref()
                .map(|c| c.top(10))
                .unwrap_or_default(),
            min_length: self.lengths.as_ref().and_then(|l| l.min).map(|x| x as u64),
            max_length: self.lengths.as_ref().and_then(|l| l.max).map(|x| x as u64),
        }
    }

    /// Equal-width histogram over the column's range.
    pub fn histogram(&self, bins: usize) -> Vec<HistogramBin> {
        let Some(m) = self.values.as_ref().filter(|m| m.count > 0) else {
            return Vec::new();
        };
        let (lo, hi) = (m.min.unwrap_or(0.0), m.max.unwrap_or(0.0));
        let edges = equal_width_edges(lo, hi, bins);
        let cdf = self.cdf_at(&edges);
        let n = m.count as f64;
        let mut out = Vec::with_capacity(bins);
        for i in 0..edges.len() - 1 {
            let below = if i == 0 { 0.0 } else { cdf[i] };
            out.push(HistogramBin {
                lo: edges[i],
                hi: edges[i + 1],
                count: ((cdf[i + 1] - below) * n).round().max(0.0) as u64,
            });
        }
        out
    }
}

pub fn equal_width_edges(lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, hi + 0.5)
    };
    let bins = bins.max(1);
    (0..=bins)
        .map(|i| lo + (hi - lo) * i as f64 / bins as f64)
        .collect()
}

fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// Numeric and temporal arrays as Float64 (temporal values as their integer encoding).
fn numeric_values(array: &ArrayRef) -> Result<ArrayRef, DataError> {
    let array = match array.data_type() {
        DataType::Float64 => return Ok(array.clone()),
        DataType::Timestamp(..)
        | DataType::Date64
        | DataType::Time64(_)
        | DataType::Duration(_) => arrow::compute::cast(array, &DataType::Int64),
        DataType::Date32 | DataType::Time32(_) => arrow::compute::cast(array, &DataType::Int32),
        _ => Ok(array.clone()),
    }
    .and_then(|a| arrow::compute::cast(&a, &DataType::Float64));
    array.map_err(|e| DataError::Invalid(format!("numeric column: {e}")))
}

#[derive(Debug, Clone, Serialize)]
pub struct HistogramBin {
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
}

/// What people read about a column.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnSummary {
    pub name: String,
    pub kind: ColumnKind,
    pub rows: u64,
    pub nulls: u64,
    pub distinct: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub quantiles: Vec<(f64, f64)>,
    pub histogram: Vec<HistogramBin>,
    pub top: Vec<(String, u64)>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
}

/// Profiles of every column of a table (all tabular files of a version, in path order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetProfile {
    pub rows: u64,
    pub columns: Vec<ColumnProfile>,
}

impl DatasetProfile {
    pub fn empty(schema: &SchemaRef) -> Self {
        DatasetProfile {
            rows: 0,
            columns: schema
                .fields()
                .iter()
                .map(|f| ColumnProfile::new(f.name(), f.data_type()))
                .collect(),
        }
    }

    pub fn column(&self, name: &str) -> Option<&ColumnProfile> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Adds a record batch, profiling its columns in parallel.
    pub fn update(&mut self, batch: &RecordBatch) -> Result<(), DataError> {
        if batch.num_columns() != self.columns.len() {
            return Err(DataError::Invalid(format!(
                "a batch has {} columns, the table {}",
                batch.num_columns(),
                self.columns.len()
            )));
        }
        self.rows += batch.num_rows() as u64;
        self.columns
            .par_iter_mut()
            .zip(batch.columns().par_iter())
            .try_for_each(|(profile, array)| profile.update(array))
    }

    /// Adds another partition's profile (same columns, same order).
    pub fn merge(&mut self, other: &DatasetProfile) -> Result<(), DataError> {
        if self.columns.len() != other.columns.len() {
            return Err(DataError::Invalid(
                "cannot merge profiles with different columns".into(),
            ));
        }
        self.rows += other.rows;
        for (a, b) in self.columns.iter_mut().zip(&other.columns) {
            a.merge(b)?;
        }
        Ok(())
    }

    /// Profiles tabular files in order. Parquet files are split by row groups and the parts
    /// profiled in parallel, then merged; other formats stream with columns in parallel.
    pub fn from_sources(sources: &[TableSource]) -> Result<(DatasetProfile, Vec<u64>), DataError> {
        let mut total: Option<DatasetProfile> = None;
        let mut rows_per_file = Vec::with_capacity(sources.len());
        for source in sources {
            let part = profile_source(source)?;
            rows_per_file.push(part.rows);
            match &mut total {
                None => total = Some(part),
                Some(t) => {
                    check_same_columns(t, &part, &source.name)?;
                    t.merge(&part)?;
                }
            }
        }
        let total =
            total.ok_or_else(|| DataError::Invalid("no tabular files to profile".into()))?;
        // Sums of huge finite values overflow; a profile with infinities could not be stored
        // and read back (JSON has no infinity), so refuse it here, naming the column.
        for c in &total.columns {
            if let Some(m) = &c.values
                && !(m.mean.is_finite() && m.m2.is_finite())
            {
                return Err(DataError::Invalid(format!(
                    "column `{}`: values too large to summarise (the variance overflows 64-bit floats)",
                    c.name
                )));
            }
        }
        Ok((total, rows_per_file))
    }
}

fn check_same_columns(a: &DatasetProfile, b: &DatasetProfile, file: &str) -> Result<(), DataError> {
    let names = |p: &DatasetProfile| {
        p.columns
            .iter()
            .map(|c| (c.name.clone(), c.kind))
            .collect::<Vec<_>>()
    };
    let (x, y) = (names(a), names(b));
    if x != y {
        let detail = x
            .iter()
            .zip(&y)
            .find(|(p, q)| p != q)
            .map(|(p, q)| {
                format!(
                    "column `{}` ({:?}) where earlier files have `{}` ({:?})",
                    q.0, q.1, p.0, p.1
                )
            })
            .unwrap_or_else(|| format!("{} columns where earlier files have {}", y.len(), x.len()));
        return Err(DataError::SchemaMismatch {
            file: file.to_owned(),
            message: detail,
        });
    }
    Ok(())
}

fn profile_source(source: &TableSource) -> Result<DatasetProfile, DataError> {
    if source.format == TableFormat::Parquet {
        return profile_parquet(source);
    }
    let batches = source.open()?;
    let mut profile = DatasetProfile::empty(&batches.schema);
    for batch in batches {
        profile.update(&batch?)?;
    }
    Ok(profile)
}

fn profile_parquet(source: &TableSource) -> Result<DatasetProfile, DataError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let schema = source.schema()?;
    let open = || -> Result<ParquetRecordBatchReaderBuilder<std::fs::File>, DataError> {
        let file = std::fs::File::open(&source.path)
            .map_err(|e| DataError::io("open", &source.path, e))?;
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| DataError::read(&source.name, e))
    };
    let groups = open()?.metadata().num_row_groups();
    let parts = rayon::current_num_threads().max(1).min(groups.max(1));
    let partials: Vec<DatasetProfile> = (0..parts)
        .into_par_iter()
        .map(|p| {
            let mine: Vec<usize> = (0..groups).filter(|g| g % parts == p).collect();
            let mut profile = DatasetProfile::empty(&schema);
            if mine.is_empty() {
                return Ok(profile);
            }
            let reader = open()?
                .with_row_groups(mine)
                .with_batch_size(crate::read::BATCH_ROWS)
                .build()
                .map_err(|e| DataError::read(&source.name, e))?;
            for batch in reader {
                let batch = batch.map_err(|e| DataError::read(&source.name, e))?;
                profile.rows += batch.num_rows() as u64;
                for (c, array) in profile.columns.iter_mut().zip(batch.columns()) {
                    c.update(array)?;
                }
            }
            Ok(profile)
        })
        .collect::<Result<_, DataError>>()?;
    let mut iter = partials.into_iter();
    let mut total = iter.next().expect("at least one part");
    for p in iter {
        total.merge(&p)?;
    }
    Ok(total)
}
