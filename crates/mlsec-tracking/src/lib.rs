//! Experiment-tracking vocabulary shared by the store, the core and the MLflow-compatible API:
//! the search grammar of runs, registered models and model versions (MLflow's filter and
//! order-by syntax), and the limits MLflow puts on keys and values.
//!
//! Pure: no I/O. The parser works on untrusted text and is bounded in input length, clause
//! count and list length.

mod search;

pub use search::{
    Clause, CompareOp, Entity, FilterValue, MAX_CLAUSES, MAX_FILTER_LEN, MAX_LIST_ITEMS, OrderTerm,
    SearchError, parse_filter, parse_order_by,
};

/// Longest metric, param or tag key (MLflow's limit).
pub const MAX_KEY_LEN: usize = 250;
/// Longest param value (MLflow ≥ 2.x).
pub const MAX_PARAM_VALUE_LEN: usize = 6000;
/// Longest tag value.
pub const MAX_TAG_VALUE_LEN: usize = 8000;
/// Most metrics in one log-batch call.
pub const MAX_BATCH_METRICS: usize = 1000;
/// Most params in one log-batch call.
pub const MAX_BATCH_PARAMS: usize = 100;
/// Most tags in one log-batch call.
pub const MAX_BATCH_TAGS: usize = 100;
/// Most entries of any kind in one log-batch call.
pub const MAX_BATCH_ENTRIES: usize = 1000;

/// Why a key is refused, if it is: empty, too long, or a path that climbs (`..`, `/x`).
pub fn key_problem(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some("a key may not be empty".into());
    }
    if key.len() > MAX_KEY_LEN {
        return Some(format!("key exceeds {MAX_KEY_LEN} bytes"));
    }
    if key.starts_with('/') || key.split('/').any(|p| p == ".." || p == ".") {
        return Some(format!("key {key:?} is not a relative path"));
    }
    if key.chars().any(|c| c.is_control()) {
        return Some(format!("key {key:?} contains control characters"));
    }
    None
}
