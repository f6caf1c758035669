//! Format detection and every container parser (ZIP both ways, gzip, zlib, npy, safetensors) on
//! arbitrary bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mlsec_scan::{ScanOptions, scan_bytes};

fn options() -> &'static ScanOptions {
    static OPTIONS: OnceLock<ScanOptions> = OnceLock::new();
    OPTIONS.get_or_init(|| ScanOptions {
        max_member_bytes: 16 << 20,
        ..ScanOptions::default()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = scan_bytes(data, options());
});
