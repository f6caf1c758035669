//! Dataset schemas: inferred from the first version's profile, stored, editable, and enforced on
//! later versions. Violations are reported per column with counts and example rows.

use std::collections::BTreeSet;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type};
use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::profile::{ColumnKind, DatasetProfile};

/// Categorical columns get an inferred domain only with at most this many values…
pub const DOMAIN_MAX_VALUES: usize = 100;
/// …and at least this many rows per value (a rare value unseen in the first version would
/// otherwise be a false violation later).
pub const DOMAIN_MIN_ROWS_PER_VALUE: u64 = 20;
/// Inferred numeric ranges are widened by this share of the observed span on each side.
pub const RANGE_MARGIN: f64 = 0.25;
/// Example rows kept per violation.
pub const EXAMPLES: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSchema {
    pub columns: Vec<ColumnSchema>,
    /// The label (target) column, for the poisoning signals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// A column naming where each row came from (vendor, pipeline, region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Whether columns not listed are violations.
    #[serde(default)]
    pub allow_extra_columns: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSchema {
    pub name: String,
    pub kind: ColumnKind,
    pub nullable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// Whether NaN and infinite values are allowed (inferred: whether the first version had any).
    #[serde(default)]
    pub allow_non_finite: bool,
}

/// Column names that usually hold the label, tried in order when none is configured.
const LABEL_NAMES: [&str; 5] = ["label", "target", "y", "class", "is_fraud"];
const SOURCE_NAMES: [&str; 3] = ["source", "vendor", "origin"];

impl DataSchema {
    pub fn infer(profile: &DatasetProfile) -> DataSchema {
        let columns = profile
            .columns
            .iter()
            .map(|c| {
                let mut s = ColumnSchema {
                    name: c.name.clone(),
                    kind: c.kind,
                    nullable: c.nulls > 0,
                    min: None,
                    max: None,
                    categories: None,
                    min_length: None,
                    max_length: None,
                    allow_non_finite: c.non_finite > 0,
                };
                if let Some(m) = c.values.as_ref().filter(|m| m.count > 0) {
                    let (lo, hi) = (m.min.unwrap_or(0.0), m.max.unwrap_or(0.0));
                    let margin = (hi - lo) * RANGE_MARGIN;
                    if c.kind == ColumnKind::Integer {
                        s.min = Some((lo - margin).floor());
                        s.max = Some((hi + margin).ceil());
                    } else if c.kind == ColumnKind::Float {
                        s.min = Some(lo - margin);
                        s.max = Some(hi + margin);
                    }
                }
                if let Some(cats) = &c.categories
                    && !cats.overflowed()
                    && cats.counts.len() <= DOMAIN_MAX_VALUES
                    && c.present() >= DOMAIN_MIN_ROWS_PER_VALUE * cats.counts.len() as u64
                {
                    s.categories = Some(cats.counts.keys().cloned().collect());
                }
                if let Some(l) = c.lengths.as_ref().filter(|l| l.count > 0) {
                    s.min_length = l.min.map(|x| x as u64);
                    s.max_length = l.max.map(|x| (x * (1.0 + RANGE_MARGIN)).ceil() as u64);
                }
                s
            })
            .collect();
        let find = |names: &[&str]| {
            names.iter().find_map(|n| {
                profile
                    .columns
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case(n))
                    .map(|c| c.name.clone())
            })
        };
        DataSchema {
            columns,
            label: find(&LABEL_NAMES),
            source: find(&SOURCE_NAMES),
            allow_extra_columns: false,
        }
    }

    /// Parses an edited schema (JSON) and checks it makes sense.
    pub fn parse(text: &str) -> Result<DataSchema, DataError> {
        if text.len() > 4 << 20 {
            return Err(DataError::Limit {
                what: "schema document".into(),
                limit: 4 << 20,
            });
        }
        let schema: DataSchema =
            serde_json::from_str(text).map_err(|e| DataError::Invalid(format!("schema: {e}")))?;
        let mut seen = BTreeSet::new();
        for c in &schema.columns {
            if !seen.insert(c.name.as_str()) {
                return Err(DataError::Invalid(format!(
                    "schema lists `{}` twice",
                    c.name
                )));
            }
            if let (Some(a), Some(b)) = (c.min, c.max)
                && a > b
            {
                return Err(DataError::Invalid(format!(
                    "`{}`: min is above max",
                    c.name
                )));
            }
        }
        for role in [&schema.label, &schema.source].into_iter().flatten() {
            if !seen.contains(role.as_str()) {
                return Err(DataError::Invalid(format!(
                    "schema names `{role}`, which is not a column"
                )));
            }
        }
        Ok(schema)
    }

    pub fn column(&self, name: &str) -> Option<&ColumnSchema> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    MissingColumn,
    UnexpectedColumn,
    TypeMismatch,
    Null,
    BelowMin,
    AboveMax,
    NonFinite,
    UnknownCategory,
    LengthOutOfRange,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Row index in the version (0-based, files in path order).
    pub row: u64,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaViolation {
    pub column: String,
    pub kind: ViolationKind,
    pub count: u64,
    pub detail: String,
    pub examples: Vec<Example>,
    /// Offending rows (first 10,000), for the poisoning report.
    #[serde(skip)]
    pub rows: Vec<u64>,
}

/// Checks record batches against a schema, accumulating violations.
pub struct SchemaChecker<'a> {
    schema: &'a DataSchema,
    violations: Vec<SchemaViolation>,
}

const MAX_ROWS_KEPT: usize = 10_000;

impl<'a> SchemaChecker<'a> {
    pub fn new(schema: &'a DataSchema) -> Self {
        SchemaChecker {
            schema,
            violations: Vec::new(),
        }
    }

    fn record(
        &mut self,
        column: &str,
        kind: ViolationKind,
        detail: String,
        row: Option<u64>,
        value: String,
        n: u64,
    ) {
        let v = match self
            .violations
            .iter_mut()
            .find(|v| v.column == column && v.kind == kind)
        {
            Some(v) => v,
            None => {
                self.violations.push(SchemaViolation {
                    column: column.to_owned(),
                    kind,
                    count: 0,
                    detail,
                    examples: Vec::new(),
                    rows: Vec::new(),
                });
                self.violations.last_mut().expect("just pushed")
            }
        };
        v.count += n;
        if let Some(row) = row {
            if v.examples.len() < EXAMPLES {
                v.examples.push(Example { row, value });
            }
            if v.rows.len() < MAX_ROWS_KEPT {
                v.rows.push(row);
            }
        }
    }

    /// Checks a file's columns against the schema: missing and unexpected columns. Called for
    /// every file before its rows, so a file without rows is still checked.
    pub fn check_columns(&mut self, file_schema: &arrow::datatypes::Schema) {
        for c in &self.schema.columns {
            if file_schema.field_with_name(&c.name).is_err() {
                self.record(
                    &c.name,
                    ViolationKind::MissingColumn,
                    "column is missing".into(),
                    None,
                    String::new(),
                    1,
                );
            }
        }
        if !self.schema.allow_extra_columns {
            for f in file_schema.fields() {
                if self.schema.column(f.name()).is_none() {
                    self.record(
                        f.name(),
                        ViolationKind::UnexpectedColumn,
                        "column is not in the schema".into(),
                        None,
                        String::new(),
                        1,
                    );
                }
            }
        }
    }

    /// Checks one batch whose first row is `first_row` of the version.
    pub fn check(&mut self, batch: &RecordBatch, first_row: u64) -> Result<(), DataError> {
        let file_schema = batch.schema();
        let rows = batch.num_rows() as u64;
        for c in &self.schema.columns {
            let Ok(index) = file_schema.index_of(&c.name) else {
                continue;
            };
            let array = batch.column(index);
            let kind = ColumnKind::of(array.data_type());
            let compatible =
                kind == c.kind || (c.kind == ColumnKind::Float && kind == ColumnKind::Integer);
            if !compatible {
                self.record(
                    &c.name,
                    ViolationKind::TypeMismatch,
                    format!("expected {:?}, found {}", c.kind, array.data_type()),
                    Some(first_row),
                    array.data_type().to_string(),
                    rows,
                );
                continue;
            }
            if !c.nullable && array.null_count() > 0 {
                for i in 0..array.len() {
                    if array.is_null(i) {
                        self.record(
                            &c.name,
                            ViolationKind::Null,
                            "null in a column that has none".into(),
                            Some(first_row + i as u64),
                            "null".into(),
                            1,
                        );
                    }
                }
            }
            if (c.min.is_some() || c.max.is_some() || !c.allow_non_finite) && kind.is_numeric() {
                let values = arrow::compute::cast(array, &DataType::Float64)
                    .map_err(|e| DataError::Invalid(format!("column `{}`: {e}", c.name)))?;
                let values = values.as_primitive::<Float64Type>();
                for (i, v) in values.iter().enumerate() {
                    let Some(v) = v else { continue };
                    if !v.is_finite() {
                        if !c.allow_non_finite {
                            self.record(
                                &c.name,
                                ViolationKind::NonFinite,
                                "NaN or infinite value in a column that has none".into(),
                                Some(first_row + i as u64),
                                v.to_string(),
                                1,
                            );
                        }
                        continue;
                    }
                    if let Some(min) = c.min
                        && v < min
                    {
                        self.record(
                            &c.name,
                            ViolationKind::BelowMin,
                            format!("below the minimum {min}"),
                            Some(first_row + i as u64),
                            v.to_string(),
                            1,
                        );
                    }
                    if let Some(max) = c.max
                        && v > max
                    {
                        self.record(
                            &c.name,
                            ViolationKind::AboveMax,
                            format!("above the maximum {max}"),
                            Some(first_row + i as u64),
                            v.to_string(),
                            1,
                        );
                    }
                }
            }
            if kind == ColumnKind::String
                && (c.categories.is_some() || c.min_length.is_some() || c.max_length.is_some())
            {
                let strings = arrow::compute::cast(array, &DataType::Utf8)
                    .map_err(|e| DataError::Invalid(format!("column `{}`: {e}", c.name)))?;
                let strings = strings.as_string::<i32>();
                let domain: Option<BTreeSet<&str>> = c
                    .categories
                    .as_ref()
                    .map(|v| v.iter().map(String::as_str).collect());
                for (i, s) in strings.iter().enumerate() {
                    let Some(s) = s else { continue };
                    if let Some(d) = &domain
                        && !d.contains(s)
                    {
                        self.record(
                            &c.name,
                            ViolationKind::UnknownCategory,
                            "value outside the category domain".into(),
                            Some(first_row + i as u64),
                            truncate(s),
                            1,
                        );
                    }
                    let len = s.chars().count() as u64;
                    if c.min_length.is_some_and(|m| len < m)
                        || c.max_length.is_some_and(|m| len > m)
                    {
                        self.record(
                            &c.name,
                            ViolationKind::LengthOutOfRange,
                            format!(
                                "length outside {}..{}",
                                c.min_length.unwrap_or(0),
                                c.max_length.map_or("∞".to_string(), |m| m.to_string())
                            ),
                            Some(first_row + i as u64),
                            truncate(s),
                            1,
                        );
                    }
                }
            } else if kind == ColumnKind::Boolean
                && let Some(domain) = &c.categories
            {
                let b = array.as_boolean();
                for (i, v) in b.iter().enumerate() {
                    if let Some(v) = v
                        && !domain.iter().any(|d| d == if v { "true" } else { "false" })
                    {
                        self.record(
                            &c.name,
                            ViolationKind::UnknownCategory,
                            "value outside the category domain".into(),
                            Some(first_row + i as u64),
                            v.to_string(),
                            1,
                        );
                    }
                }
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Vec<SchemaViolation> {
        self.violations
            .sort_by(|a, b| a.column.cmp(&b.column).then(a.kind.cmp(&b.kind)));
        self.violations
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() <= 80 {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(80).collect::<String>())
    }
}
