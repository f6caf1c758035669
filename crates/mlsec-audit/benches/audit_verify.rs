//! Chain verification throughput of the pure library over records in memory.
//!
//! `cargo bench -p mlsec-audit --bench audit_verify -- [EVENTS]`

use std::time::Instant;

use mlsec_audit::{
    AuditEvent, AuditRecord, ChainVerifier, CheckpointSigner, Decision, TrustedKeys,
};
use mlsec_types::{Actor, Digest};

fn main() {
    let events: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let signer = CheckpointSigner::from_secret_bytes(&[3; 32]);
    let trusted = TrustedKeys::new().with(signer.verifying_key());
    let now = time::OffsetDateTime::now_utc();
    let mut prev = Digest::ZERO;
    let mut records = Vec::with_capacity(events);
    let mut checkpoints = Vec::new();
    for i in 0..events {
        let event = AuditEvent::new(
            now,
            Actor::user(format!("user{}", i % 50)),
            "blob.put",
            format!("blob:sha256:{:064x}", i),
            Decision::Allow,
            "granted by role maintainer",
        )
        .with_request_id(Some(format!("req-{i}")))
        .with_details(serde_json::json!({ "size": i * 31, "new": true }));
        let r = AuditRecord::seal(i as u64, &prev, &event).unwrap();
        prev = r.hash;
        if (i + 1) % 1000 == 0 {
            checkpoints.push(signer.sign(i as u64, r.hash, "t".into()).unwrap());
        }
        records.push(r);
    }
    let bytes: usize = records.iter().map(|r| r.canonical.len()).sum();
    println!(
        "{events} events, mean {} bytes canonical, {} checkpoints, {} threads",
        bytes / events,
        checkpoints.len(),
        rayon::current_num_threads()
    );
    for (label, deep) in [
        ("links + checkpoints", false),
        ("deep: + decode and canonical form", true),
    ] {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            let mut v = ChainVerifier::new(&trusted, &checkpoints);
            if deep {
                v = v.deep();
            }
            for page in records.chunks(20_000) {
                v.push_batch(page);
            }
            let report = v.finish();
            assert!(report.ok());
            best = best.min(started.elapsed().as_secs_f64());
        }
        println!(
            "verify ({label}): {:.0} events/s ({:.3} s best of 3)",
            events as f64 / best,
            best
        );
    }
}
