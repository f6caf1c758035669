//! Stored records come back from a database an attacker may have written to: the verifier must
//! report, never panic, whatever the bytes, indexes and hashes are.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mlsec_audit::{AuditRecord, TrustedKeys, verify_records};
use mlsec_types::Digest;

fuzz_target!(|data: &[u8]| {
    let mut records = Vec::new();
    for (i, chunk) in data.chunks(64).enumerate() {
        let index = if chunk.first().is_some_and(|b| b & 1 == 1) {
            u64::from(chunk[0])
        } else {
            i as u64
        };
        records.push(AuditRecord {
            index,
            canonical: chunk.to_vec(),
            hash: Digest::of(chunk),
        });
    }
    let _ = verify_records(&records, &[], &TrustedKeys::new(), true);
    for r in &records {
        let _ = r.event();
    }
});
