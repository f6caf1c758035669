//! Search filters and order-by terms arrive from any MLflow client (`runs/search`,
//! `model-versions/search`): the parser must return clauses or an error, never panic, and stay
//! within its length, clause and list bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mlsec_tracking::{MAX_CLAUSES, MAX_LIST_ITEMS, FilterValue, parse_filter, parse_order_by};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(clauses) = parse_filter(&text) {
        assert!(clauses.len() <= MAX_CLAUSES);
        for c in &clauses {
            if let FilterValue::List(items) = &c.value {
                assert!(items.len() <= MAX_LIST_ITEMS);
            }
        }
    }
    let _ = parse_order_by(&text);
    let _ = mlsec_tracking::key_problem(&text);
});
