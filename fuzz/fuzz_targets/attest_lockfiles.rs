//! Lock files come from the training repository: the requirements, poetry, uv and conda
//! parsers must return packages or an error, never panic, within their bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mlsec_attest::lockfile::{LockFormat, MAX_PACKAGES, parse};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let format = match selector % 4 {
        0 => LockFormat::Requirements,
        1 => LockFormat::Poetry,
        2 => LockFormat::Uv,
        _ => LockFormat::Conda,
    };
    if let Ok(packages) = parse(format, &text) {
        assert!(packages.len() <= MAX_PACKAGES);
        for p in &packages {
            let _ = p.purl();
        }
    }
});
