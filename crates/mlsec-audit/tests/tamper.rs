//! Property tests: any single change to a sealed log is reported at the index where it happened.

use mlsec_audit::{
    AuditEvent, AuditRecord, CheckpointSigner, Decision, FailureKind, TrustedKeys, verify_records,
};
use mlsec_types::{Actor, Digest};
use proptest::prelude::*;
use time::macros::datetime;

fn build_log(n: usize) -> Vec<AuditRecord> {
    let mut prev = Digest::ZERO;
    (0..n)
        .map(|i| {
            let event = AuditEvent::new(
                datetime!(2026-12-01 20:00:00 UTC),
                Actor::user(format!("user{}", i % 3)),
                "blob.put",
                format!("blob:{i}"),
                Decision::Allow,
                "granted",
            )
            .with_details(serde_json::json!({ "n": i }));
            let record = AuditRecord::seal(i as u64, &prev, &event).unwrap();
            prev = record.hash;
            record
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Tamper {
    Change,
    Delete,
    Insert,
    Swap,
}

fn tamper_strategy() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        Just(Tamper::Change),
        Just(Tamper::Delete),
        Just(Tamper::Insert),
        Just(Tamper::Swap),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn single_tamper_is_reported_at_its_index(
        len in 2usize..60,
        at_seed in any::<usize>(),
        tamper in tamper_strategy(),
        byte_seed in any::<usize>(),
    ) {
        let mut log = build_log(len);
        let trusted = TrustedKeys::new();
        prop_assert!(verify_records(&log, &[], &trusted, false).ok());
        let at = at_seed % (len - 1);
        match tamper {
            Tamper::Change => {
                // Flip one byte of the stored canonical event.
                let bytes = &mut log[at].canonical;
                let pos = byte_seed % bytes.len();
                bytes[pos] ^= 0x01;
            }
            Tamper::Delete => {
                log.remove(at);
            }
            Tamper::Insert => {
                // A new event slipped in at `at`, carrying the position and hash it displaced.
                let mut forged = log[at].clone();
                forged.canonical = log[(at + 1) % len].canonical.clone();
                log.insert(at, forged);
            }
            Tamper::Swap => {
                log.swap(at, at + 1);
            }
        }
        let report = verify_records(&log, &[], &trusted, false);
        prop_assert!(!report.ok());
        prop_assert_eq!(report.first_bad_index(), Some(at as u64), "{:?}", report.failures);
    }
}

#[test]
fn sealed_insertion_breaks_the_next_link() {
    // An insertion sealed onto the chain is a valid link itself; the event after it can no longer
    // link to its stored predecessor, so the report names the first index that moved.
    let mut log = build_log(10);
    let event = log[3].event().unwrap();
    let sealed = AuditRecord::seal(3, &log[2].hash, &event).unwrap();
    log.insert(3, sealed);
    let report = verify_records(&log, &[], &TrustedKeys::new(), false);
    assert_eq!(report.first_bad_index(), Some(4));
}

#[test]
fn rewritten_history_is_caught_by_the_signed_checkpoint() {
    let signer = CheckpointSigner::from_secret_bytes(&[1; 32]);
    let trusted = TrustedKeys::new().with(signer.verifying_key());
    let log = build_log(20);
    let cp = signer.sign(15, log[15].hash, "t".into()).unwrap();
    let ok = verify_records(&log, std::slice::from_ref(&cp), &trusted, false);
    assert!(ok.ok(), "{:?}", ok.failures);
    assert_eq!(ok.last_checkpointed_index, Some(15));
    assert_eq!(ok.unsigned_tail, 4);

    // An attacker with database access rewrites event 5 and re-seals everything after it.
    let mut forged = log[..5].to_vec();
    let mut prev = forged[4].hash;
    for (i, original) in log.iter().enumerate().skip(5) {
        let mut event = original.event().unwrap();
        if i == 5 {
            event.reason = "forged".into();
        }
        let r = AuditRecord::seal(i as u64, &prev, &event).unwrap();
        prev = r.hash;
        forged.push(r);
    }
    let report = verify_records(&forged, std::slice::from_ref(&cp), &trusted, false);
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert_eq!(report.failures[0].kind, FailureKind::CheckpointMismatch);
    assert_eq!(report.first_bad_index(), Some(15));

    // Truncating the log below a checkpoint is caught too.
    let report = verify_records(&log[..10], std::slice::from_ref(&cp), &trusted, false);
    assert_eq!(
        report.failures[0].kind,
        FailureKind::Truncated {
            checkpoint_index: 15
        }
    );
}

#[test]
fn checkpoint_signed_by_another_key_is_rejected() {
    let server = CheckpointSigner::from_secret_bytes(&[1; 32]);
    let intruder = CheckpointSigner::from_secret_bytes(&[2; 32]);
    let trusted = TrustedKeys::new().with(server.verifying_key());
    let log = build_log(5);
    let foreign = intruder.sign(4, log[4].hash, "t".into()).unwrap();
    let report = verify_records(&log, &[foreign], &trusted, false);
    assert!(matches!(
        report.failures[0].kind,
        FailureKind::CheckpointUntrustedKey { .. }
    ));
}

#[test]
fn non_canonical_encoding_is_malformed() {
    let mut log = build_log(3);
    // Same JSON meaning, different bytes (whitespace), re-sealed so the hash link holds.
    let spaced = String::from_utf8(log[1].canonical.clone())
        .unwrap()
        .replace(',', ", ");
    log[1].canonical = spaced.into_bytes();
    log[1].hash = mlsec_audit::chain_hash(&log[0].hash, &log[1].canonical);
    log[2].hash = mlsec_audit::chain_hash(&log[1].hash, &log[2].canonical);
    assert!(verify_records(&log, &[], &TrustedKeys::new(), false).ok());
    let report = verify_records(&log, &[], &TrustedKeys::new(), true);
    assert_eq!(report.first_bad_index(), Some(1));
    assert!(matches!(
        report.failures[0].kind,
        FailureKind::Malformed { .. }
    ));
}
