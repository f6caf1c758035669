//! Drift between two profiles, column by column, with the test chosen by column type and
//! reference size — Evidently's default rules, which users know:
//!
//! | reference rows | numeric (> 5 distinct values)       | categorical, or numeric ≤ 5 values                   |
//! |----------------|-------------------------------------|------------------------------------------------------|
//! | ≤ 1,000        | Kolmogorov–Smirnov, drift if p < 0.05 | chi-square (z-test for two values), drift if p < 0.05 |
//! | > 1,000        | Wasserstein / reference std ≥ 0.1   | Jensen–Shannon distance (nats) ≥ 0.1                 |
//!
//! The dataset drifts when at least half of the tested columns drift. Large samples use
//! distances, not p-values, because with a million rows any test finds a negligible difference
//! "significant": distances measure how much the distribution moved, not how sure we are it
//! moved at all. PSI and the Jensen–Shannon distance over the histogram are reported for every
//! numeric column as context.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::profile::{ColumnKind, ColumnProfile, DatasetProfile};
use crate::stats;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftTest {
    KolmogorovSmirnov,
    ChiSquare,
    ZTest,
    Wasserstein,
    JensenShannon,
    Psi,
}

impl DriftTest {
    /// True for tests whose score is a p-value (drift when below the threshold).
    pub fn is_p_value(self) -> bool {
        matches!(
            self,
            DriftTest::KolmogorovSmirnov | DriftTest::ChiSquare | DriftTest::ZTest
        )
    }

    /// What the score measures, on what scale.
    pub fn scale(self) -> &'static str {
        match self {
            DriftTest::KolmogorovSmirnov => "p-value of the two-sample KS test (drift if below)",
            DriftTest::ChiSquare => {
                "p-value of the chi-square test of homogeneity (drift if below)"
            }
            DriftTest::ZTest => "p-value of the two-proportion z-test (drift if below)",
            DriftTest::Wasserstein => {
                "Wasserstein-1 distance divided by the reference standard deviation (dimensionless)"
            }
            DriftTest::JensenShannon => {
                "Jensen-Shannon distance, natural log: the square root of the divergence in nats, 0 to 0.833"
            }
            DriftTest::Psi => {
                "population stability index, a divergence in nats (0.1 moderate, 0.25 large)"
            }
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            DriftTest::KolmogorovSmirnov => "Kolmogorov-Smirnov",
            DriftTest::ChiSquare => "chi-square",
            DriftTest::ZTest => "z-test",
            DriftTest::Wasserstein => "Wasserstein (normed)",
            DriftTest::JensenShannon => "Jensen-Shannon",
            DriftTest::Psi => "PSI",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftOptions {
    /// Reference rows up to which statistical tests are used, above which distances.
    pub small_sample_rows: u64,
    pub p_value_threshold: f64,
    pub distance_threshold: f64,
    pub psi_threshold: f64,
    /// Numeric columns with at most this many distinct reference values are tested as categories.
    pub categorical_max_distinct: u64,
    /// Share of drifted columns at which the dataset is said to drift.
    pub drift_share: f64,
    /// Per-column choice of test, overriding the rules above.
    pub tests: BTreeMap<String, DriftTest>,
    /// Columns not tested (identifiers, free text).
    pub ignore: Vec<String>,
}

impl Default for DriftOptions {
    fn default() -> Self {
        DriftOptions {
            small_sample_rows: 1000,
            p_value_threshold: 0.05,
            distance_threshold: 0.1,
            psi_threshold: 0.1,
            categorical_max_distinct: 5,
            drift_share: 0.5,
            tests: BTreeMap::new(),
            ignore: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measure {
    pub test: DriftTest,
    pub score: f64,
    pub scale: String,
}

/// Reference and current distributions over shared bins (or categories), for people to look at.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Distribution {
    pub labels: Vec<String>,
    /// Bin edges for numeric columns (labels.len() + 1 of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<f64>,
    pub reference: Vec<f64>,
    pub current: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnDrift {
    pub column: String,
    pub kind: ColumnKind,
    pub reference_rows: u64,
    pub current_rows: u64,
    /// The deciding test; `None` when the column was not tested (see `skipped`).
    pub test: Option<DriftTest>,
    pub score: f64,
    pub threshold: f64,
    pub scale: String,
    pub drifted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Other measures, for context.
    pub measures: Vec<Measure>,
    pub distribution: Distribution,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DriftReport {
    pub columns: Vec<ColumnDrift>,
    pub tested_columns: usize,
    pub drifted_columns: usize,
    pub drift_share: f64,
    pub dataset_drift: bool,
    pub options: DriftOptions,
}

impl DriftReport {
    pub fn drifted(&self) -> impl Iterator<Item = &ColumnDrift> {
        self.columns.iter().filter(|c| c.drifted)
    }
}

/// Compares every column of `reference` that `current` also has.
pub fn compare(
    reference: &DatasetProfile,
    current: &DatasetProfile,
    options: &DriftOptions,
) -> DriftReport {
    let columns: Vec<ColumnDrift> = reference
        .columns
        .iter()
        .map(|r| match current.column(&r.name) {
            Some(c) => column_drift(r, c, options),
            None => skipped(r, None, "missing from the current version"),
        })
        .collect();
    let tested = columns.iter().filter(|c| c.test.is_some()).count();
    let drifted = columns.iter().filter(|c| c.drifted).count();
    let share = if tested == 0 {
        0.0
    } else {
        drifted as f64 / tested as f64
    };
    DriftReport {
        columns,
        tested_columns: tested,
        drifted_columns: drifted,
        drift_share: share,
        dataset_drift: tested > 0 && share >= options.drift_share,
        options: options.clone(),
    }
}

fn skipped(r: &ColumnProfile, c: Option<&ColumnProfile>, why: &str) -> ColumnDrift {
    ColumnDrift {
        column: r.name.clone(),
        kind: r.kind,
        reference_rows: r.present(),
        current_rows: c.map_or(0, ColumnProfile::present),
        test: None,
        score: 0.0,
        threshold: 0.0,
        scale: String::new(),
        drifted: false,
        skipped: Some(why.to_owned()),
        measures: Vec::new(),
        distribution: Distribution::default(),
    }
}

/// Tests one column.
pub fn column_drift(r: &ColumnProfile, c: &ColumnProfile, options: &DriftOptions) -> ColumnDrift {
    if options.ignore.iter().any(|i| i == &r.name) {
        return skipped(r, Some(c), "ignored by configuration");
    }
    if r.kind != c.kind && !(r.kind.is_numeric() && c.kind.is_numeric()) {
        return skipped(r, Some(c), "type changed (see the schema check)");
    }
    if r.kind == ColumnKind::Other {
        return skipped(r, Some(c), "type not tested");
    }
    if r.present() == 0 || c.present() == 0 {
        return skipped(r, Some(c), "no values on one side");
    }
    // Values that are all NaN or infinite: nothing to compare, and that itself is a change.
    let finite = |p: &ColumnProfile| p.values.as_ref().map_or(u64::MAX, |m| m.count);
    if r.kind.is_numeric() && finite(c) == 0 && finite(r) > 0 {
        let mut d = skipped(r, Some(c), "no finite values in the current version");
        d.skipped = None;
        d.drifted = true;
        d.score = 1.0;
        d.scale = "share of values that are not finite".into();
        return d;
    }
    let distinct = r.distinct_estimate();
    if r.kind == ColumnKind::String && distinct > 1000.0 && distinct > 0.5 * r.present() as f64 {
        return skipped(r, Some(c), "identifier-like: most values are unique");
    }
    // A numeric column with few values is tested as categories only while both sides still
    // have exact counts; if the current side grew past them, the numeric tests see the change.
    let categorical = r.kind.is_categorical()
        || (distinct <= options.categorical_max_distinct as f64
            && r.small_domain.is_some()
            && c.small_domain.is_some());
    let distribution = if categorical {
        categorical_distribution(r, c)
    } else {
        numeric_distribution(r, c)
    };
    let small = r.present() <= options.small_sample_rows;
    let default_test = match (categorical, small) {
        (false, true) => DriftTest::KolmogorovSmirnov,
        (false, false) => DriftTest::Wasserstein,
        // The z-test compares one proportion: only when both sides together have two values.
        (true, true) if distribution.labels.len() == 2 => DriftTest::ZTest,
        (true, true) => DriftTest::ChiSquare,
        (true, false) => DriftTest::JensenShannon,
    };
    let test = options.tests.get(&r.name).copied().unwrap_or(default_test);
    let score = score(test, r, c, &distribution, categorical);
    // The other distances, for context (never deciding).
    let measures: Vec<Measure> = [DriftTest::JensenShannon, DriftTest::Psi]
        .into_iter()
        .filter(|&t| t != test)
        .map(|t| Measure {
            test: t,
            score: self::score(t, r, c, &distribution, categorical),
            scale: t.scale().to_owned(),
        })
        .collect();
    let threshold = if test.is_p_value() {
        options.p_value_threshold
    } else if test == DriftTest::Psi {
        options.psi_threshold
    } else {
        options.distance_threshold
    };
    let drifted = if test.is_p_value() {
        score < threshold
    } else {
        score >= threshold
    };
    ColumnDrift {
        column: r.name.clone(),
        kind: r.kind,
        reference_rows: r.present(),
        current_rows: c.present(),
        test: Some(test),
        score,
        threshold,
        scale: test.scale().to_owned(),
        drifted,
        skipped: None,
        measures,
        distribution,
    }
}

fn score(
    test: DriftTest,
    r: &ColumnProfile,
    c: &ColumnProfile,
    dist: &Distribution,
    categorical: bool,
) -> f64 {
    match test {
        DriftTest::KolmogorovSmirnov => {
            if categorical {
                // KS on category codes means nothing; fall back to the share test.
                return stats::chi2_homogeneity(&dist.reference, &dist.current)
                    .0
                    .p_value;
            }
            stats::ks_2samp(
                &r.weighted_values(),
                &c.weighted_values(),
                r.values.as_ref().map_or(0, |m| m.count),
                c.values.as_ref().map_or(0, |m| m.count),
            )
            .p_value
        }
        DriftTest::ChiSquare => {
            stats::chi2_homogeneity(&dist.reference, &dist.current)
                .0
                .p_value
        }
        DriftTest::ZTest => {
            let nr: f64 = dist.reference.iter().sum();
            let nc: f64 = dist.current.iter().sum();
            let a = dist.reference.first().copied().unwrap_or(0.0);
            let b = dist.current.first().copied().unwrap_or(0.0);
            stats::two_proportion_z(a, nr, b, nc).p_value
        }
        DriftTest::Wasserstein => {
            if categorical {
                return stats::jensen_shannon(&dist.reference, &dist.current, std::f64::consts::E);
            }
            let std = r.values.as_ref().map_or(0.0, |m| m.std()).max(0.001);
            stats::wasserstein(&r.weighted_values(), &c.weighted_values()) / std
        }
        DriftTest::JensenShannon => {
            stats::jensen_shannon(&dist.reference, &dist.current, std::f64::consts::E)
        }
        DriftTest::Psi => stats::psi(&dist.reference, &dist.current),
    }
}

/// Counts over the union of categories, in reference-frequency order.
fn categorical_distribution(r: &ColumnProfile, c: &ColumnProfile) -> Distribution {
    let rc: BTreeMap<String, u64> = r.value_counts().unwrap_or_default().into_iter().collect();
    let cc: BTreeMap<String, u64> = c.value_counts().unwrap_or_default().into_iter().collect();
    let mut keys: Vec<&String> = rc
        .keys()
        .chain(cc.keys().filter(|k| !rc.contains_key(*k)))
        .collect();
    keys.sort_by(|a, b| {
        rc.get(*b)
            .unwrap_or(&0)
            .cmp(rc.get(*a).unwrap_or(&0))
            .then_with(|| cc.get(*b).unwrap_or(&0).cmp(cc.get(*a).unwrap_or(&0)))
            .then_with(|| a.cmp(b))
    });
    Distribution {
        labels: keys.iter().map(|k| (*k).clone()).collect(),
        edges: Vec::new(),
        reference: keys
            .iter()
            .map(|k| *rc.get(*k).unwrap_or(&0) as f64)
            .collect(),
        current: keys
            .iter()
            .map(|k| *cc.get(*k).unwrap_or(&0) as f64)
            .collect(),
    }
}

/// Counts over Sturges bins spanning both sides (numpy's `histogram_bin_edges(bins="sturges")`
/// of the combined data, as Evidently bins), capped at 50 bins.
fn numeric_distribution(r: &ColumnProfile, c: &ColumnProfile) -> Distribution {
    let (rm, cm) = (
        r.values.clone().unwrap_or_default(),
        c.values.clone().unwrap_or_default(),
    );
    let lo = rm.min.unwrap_or(0.0).min(cm.min.unwrap_or(f64::INFINITY));
    let hi = rm
        .max
        .unwrap_or(0.0)
        .max(cm.max.unwrap_or(f64::NEG_INFINITY));
    let mut edges = stats::sturges_edges(lo, hi, rm.count + cm.count);
    if edges.len() > 51 {
        edges = crate::profile::equal_width_edges(lo, hi, 50);
    }
    let counts = |p: &ColumnProfile, n: u64| -> Vec<f64> {
        let cdf = p.cdf_at(&edges);
        (0..edges.len() - 1)
            .map(|i| {
                // The first bin is closed on the left, like numpy's.
                let below = if i == 0 { 0.0 } else { cdf[i] };
                ((cdf[i + 1] - below) * n as f64).max(0.0)
            })
            .collect()
    };
    Distribution {
        labels: edges
            .windows(2)
            .map(|w| format!("{:.4}..{:.4}", w[0], w[1]))
            .collect(),
        reference: counts(r, rm.count),
        current: counts(c, cm.count),
        edges,
    }
}
