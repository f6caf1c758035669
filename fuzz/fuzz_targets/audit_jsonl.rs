//! The JSON-lines export reader takes files from anywhere (`mlsec audit verify --file`): it must
//! return an error, never panic, on any bytes, and whatever it accepts must verify without panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mlsec_audit::{TrustedKeys, export, verify_records};

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = export::read_jsonl(std::io::Cursor::new(data)) {
        let trusted = TrustedKeys::new();
        let _ = verify_records(&parsed.records, &parsed.checkpoints, &trusted, true);
    }
    let _ = mlsec_types::Digest::parse(&String::from_utf8_lossy(data));
});
