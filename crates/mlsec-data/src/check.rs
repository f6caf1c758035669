//! A dataset check: schema, drift and poisoning signals of a version against the last approved
//! one, and the verdict recorded on the version.

use serde::{Deserialize, Serialize};

use crate::drift::{self, DriftOptions, DriftReport};
use crate::error::DataError;
use crate::poison::{self, PoisonOptions, PoisonReport};
use crate::profile::DatasetProfile;
use crate::read::TableSource;
use crate::schema::{DataSchema, SchemaViolation};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Passed,
    Failed,
}

/// What a check is configured to fail on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckOptions {
    pub drift: DriftOptions,
    pub poison: PoisonOptions,
    /// Fail when any single column drifts (by default only dataset drift fails).
    pub fail_on_column_drift: bool,
}

impl CheckOptions {
    /// Rejects thresholds that would make a check meaningless or fail to run.
    pub fn validate(&self) -> Result<(), DataError> {
        let d = &self.drift;
        let p = &self.poison;
        let unit = |x: f64| x.is_finite() && (0.0..=1.0).contains(&x);
        let positive = |x: f64| x.is_finite() && x > 0.0;
        let checks = [
            (
                "drift.p_value_threshold",
                unit(d.p_value_threshold) && d.p_value_threshold > 0.0,
            ),
            ("drift.distance_threshold", positive(d.distance_threshold)),
            ("drift.psi_threshold", positive(d.psi_threshold)),
            (
                "drift.drift_share",
                unit(d.drift_share) && d.drift_share > 0.0,
            ),
            (
                "poison.label_shift_threshold",
                positive(p.label_shift_threshold),
            ),
            (
                "poison.class_shift_threshold",
                positive(p.class_shift_threshold),
            ),
            ("poison.class_min_rows", p.class_min_rows >= 2),
            ("poison.duplicate_tolerance", unit(p.duplicate_tolerance)),
            (
                "poison.near_duplicate_tolerance",
                unit(p.near_duplicate_tolerance),
            ),
            (
                "poison.near_cell",
                positive(p.near_cell) && p.near_cell <= 10.0,
            ),
            (
                "poison.label_conflict_tolerance",
                unit(p.label_conflict_tolerance),
            ),
            (
                "poison.outlier_quantile",
                unit(p.outlier_quantile) && p.outlier_quantile > 0.5 && p.outlier_quantile < 1.0,
            ),
            (
                "poison.outlier_factor",
                p.outlier_factor.is_finite() && p.outlier_factor >= 1.0,
            ),
            (
                "poison.source_share_threshold",
                positive(p.source_share_threshold) && p.source_share_threshold <= 1.0,
            ),
            ("poison.max_rows_listed", p.max_rows_listed <= 100_000),
            ("poison.max_rows", p.max_rows >= 1),
            ("poison.max_cells", p.max_cells >= 1),
        ];
        match checks.iter().find(|(_, ok)| !ok) {
            Some((name, _)) => Err(DataError::Invalid(format!(
                "check option `{name}` is out of range"
            ))),
            None => Ok(()),
        }
    }
}

/// One side of a check.
pub struct CheckInput<'a> {
    pub label: String,
    pub profile: &'a DatasetProfile,
    pub sources: &'a [TableSource],
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckOutcome {
    pub dataset: String,
    pub current: String,
    /// `None` for a first version: only the schema applies.
    pub reference: Option<String>,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub warnings: Vec<String>,
    pub current_rows: u64,
    pub reference_rows: u64,
    pub violations: Vec<SchemaViolation>,
    pub drift: Option<DriftReport>,
    pub poison: Option<PoisonReport>,
}

pub fn run(
    dataset: &str,
    current: CheckInput<'_>,
    reference: Option<CheckInput<'_>>,
    schema: &DataSchema,
    options: &CheckOptions,
) -> Result<CheckOutcome, DataError> {
    let mut reasons = Vec::new();
    let mut warnings = Vec::new();
    let (violations, drift, poison) = match &reference {
        None => (poison::enforce_schema(current.sources, schema)?, None, None),
        Some(r)
            if r.profile.rows.max(current.profile.rows) > options.poison.max_rows
                || r.profile
                    .rows
                    .max(current.profile.rows)
                    .saturating_mul(r.profile.columns.len() as u64)
                    > options.poison.max_cells =>
        {
            // Too large to hold in memory row by row: schema and drift still apply (streaming
            // and from the profiles); the row-level signals are reported as not computed.
            let drift = drift::compare(r.profile, current.profile, &options.drift);
            let why = format!(
                "row-level signals not computed: more than {} rows or {} cells (raise `poison.max_rows` / `poison.max_cells`)",
                options.poison.max_rows, options.poison.max_cells
            );
            warnings.push(why.clone());
            (
                poison::enforce_schema(current.sources, schema)?,
                Some(drift),
                Some(PoisonReport {
                    signals: Vec::new(),
                    skipped: Some(why),
                }),
            )
        }
        Some(r) => {
            let analysis = poison::analyse(
                r.sources,
                r.profile,
                current.sources,
                schema,
                &options.poison,
            )?;
            let drift = drift::compare(r.profile, current.profile, &options.drift);
            (analysis.violations, Some(drift), Some(analysis.poison))
        }
    };
    if current.profile.rows == 0 && reference.as_ref().is_some_and(|r| r.profile.rows > 0) {
        reasons.push("the version has no rows".into());
    }
    for v in &violations {
        reasons.push(format!(
            "schema: `{}` {}: {} ({} rows)",
            v.column,
            kind_text(v),
            v.detail,
            v.count
        ));
    }
    if let Some(d) = &drift {
        if d.dataset_drift {
            reasons.push(format!(
                "drift: {} of {} columns drifted (share {:.2} ≥ {})",
                d.drifted_columns, d.tested_columns, d.drift_share, d.options.drift_share
            ));
        }
        for c in d.drifted() {
            let text = format!(
                "drift: `{}` {} = {:.4} (threshold {})",
                c.column,
                c.test.map_or("", |t| t.label()),
                c.score,
                c.threshold
            );
            if options.fail_on_column_drift {
                reasons.push(text);
            } else if !d.dataset_drift {
                warnings.push(text);
            }
        }
    }
    if let Some(p) = &poison {
        for s in p.fired() {
            reasons.push(format!(
                "poisoning: {} fired (score {:.4}, threshold {:.4}): {}",
                s.id, s.score, s.threshold, s.detail
            ));
        }
    }
    Ok(CheckOutcome {
        dataset: dataset.to_owned(),
        current: current.label,
        reference: reference.as_ref().map(|r| r.label.clone()),
        verdict: if reasons.is_empty() {
            Verdict::Passed
        } else {
            Verdict::Failed
        },
        reasons,
        warnings,
        current_rows: current.profile.rows,
        reference_rows: reference.as_ref().map_or(0, |r| r.profile.rows),
        violations,
        drift,
        poison,
    })
}

fn kind_text(v: &SchemaViolation) -> String {
    serde_json::to_value(v.kind)
        .ok()
        .and_then(|x| x.as_str().map(str::to_owned))
        .unwrap_or_default()
        .replace('_', " ")
}
