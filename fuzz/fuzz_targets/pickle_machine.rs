//! The symbolic pickle machine on arbitrary bytes: findings or a malformation, never a panic, a
//! hang or unbounded memory (libFuzzer's -rss_limit_mb and -timeout enforce the last two).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mlsec_scan::{Limits, Policy, scan_pickle};

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(Policy::default_policy)
}

fuzz_target!(|data: &[u8]| {
    let report = scan_pickle(data, policy(), &Limits::default());
    assert!(report.findings.len() <= 10_000);
});
