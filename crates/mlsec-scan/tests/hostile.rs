//! Hostile containers finish within their limits with a finding, never a panic or an OOM.

use mlsec_scan::{Coverage, ScanOptions, Severity, scan_bytes};

fn stored_zip(name: &str, data: &[u8], method: u16, uncompressed: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let name = name.as_bytes();
    out.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00");
    out.extend_from_slice(&method.to_le_bytes());
    out.extend_from_slice(&[0; 8]); // time, date, crc
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&uncompressed.to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(data);
    let cd = out.len();
    out.extend_from_slice(b"PK\x01\x02\x14\x00\x14\x00\x00\x00");
    out.extend_from_slice(&method.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&uncompressed.to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(name);
    let cd_len = out.len() - cd;
    out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00");
    out.extend_from_slice(&(cd_len as u32).to_le_bytes());
    out.extend_from_slice(&(cd as u32).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[test]
fn zip_bomb_stops_at_the_member_limit() {
    // 64 MiB of zeros deflates to about 64 KiB.
    let zeros = vec![0u8; 64 << 20];
    let deflated = miniz_oxide::deflate::compress_to_vec(&zeros, 6);
    let zip = stored_zip("archive/data.pkl", &deflated, 8, zeros.len() as u32);
    let options = ScanOptions {
        max_member_bytes: 1 << 20,
        ..ScanOptions::default()
    };
    let report = scan_bytes(&zip, &options);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.rule == "ARC001" && f.message.contains("more than")),
        "{:?}",
        report.findings
    );
    assert!(matches!(report.coverage, Coverage::Partial(_)));
}

#[test]
fn deep_nesting_stops_with_a_finding() {
    let mut data = b"\x80\x02K\x01.".to_vec();
    for _ in 0..10 {
        data = stored_zip("inner.zip", &data, 0, data.len() as u32);
    }
    let report = scan_bytes(&data, &ScanOptions::default());
    assert!(
        report.findings.iter().any(|f| f.rule == "ARC002"),
        "{:?}",
        report.findings
    );
}

#[test]
fn truncated_and_lying_archives_do_not_panic() {
    let good = stored_zip("archive/data.pkl", b"cos\nsystem\n(S'id'\ntR.", 0, 22);
    for cut in 0..good.len() {
        let report = scan_bytes(&good[..cut], &ScanOptions::default());
        let _ = report.max_severity();
    }
    // Declared sizes far larger than the file.
    let mut lying = good.clone();
    let cd = lying.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    lying[cd + 20..cd + 24].copy_from_slice(&u32::MAX.to_le_bytes());
    let report = scan_bytes(&lying, &ScanOptions::default());
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.severity >= Severity::Warning)
    );
    // Every byte flipped in turn.
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0xff;
        let _ = scan_bytes(&bad, &ScanOptions::default());
    }
}

#[test]
fn unknown_formats_are_not_scanned_never_clean() {
    let report = scan_bytes(&[0u8, 1, 2, 3, 250, 251], &ScanOptions::default());
    assert!(
        matches!(report.coverage, Coverage::NotScanned(_)),
        "{:?}",
        report.coverage
    );
    // A damaged compressed stream is a partial scan, not a clean one.
    let report = scan_bytes(b"BZh91AY&SY", &ScanOptions::default());
    assert!(
        matches!(report.coverage, Coverage::Partial(_)),
        "{:?}",
        report.coverage
    );
    assert!(report.findings.iter().any(|f| f.rule == "ARC001"));
}

#[test]
fn onnx_custom_domain_is_a_warning() {
    fn varint(mut n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n > 0 { b | 0x80 } else { b });
            if n == 0 {
                return out;
            }
        }
    }
    fn field(number: u64, value: &[u8]) -> Vec<u8> {
        let mut out = varint((number << 3) | 2);
        out.extend(varint(value.len() as u64));
        out.extend_from_slice(value);
        out
    }
    let node = [field(4, b"EvilOp"), field(7, b"com.evil")].concat();
    let graph = field(1, &node);
    let model = [
        vec![0x08, 0x08],
        field(7, &graph),
        field(8, &field(1, b"com.evil")),
    ]
    .concat();
    let report = scan_bytes(&model, &ScanOptions::default());
    assert_eq!(report.format, "onnx");
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.rule == "ONX001" && f.severity == Severity::Warning),
        "{:?}",
        report.findings
    );
    assert_eq!(report.findings.len(), 2);
}

/// Inputs the fuzzers once crashed on; each must now scan without panicking.
#[test]
fn fuzzer_regressions_do_not_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let _ = scan_bytes(&data, &ScanOptions::default());
        let _ = mlsec_scan::scan_pickle(
            &data,
            &mlsec_scan::Policy::default_policy(),
            &mlsec_scan::Limits::default(),
        );
    }
}

#[test]
fn pop_past_a_mark_is_an_underflow() {
    // POP right after MARK must not remove the mark itself (the fuzzer's first crash).
    let report = mlsec_scan::scan_pickle(
        b"(0t.",
        &mlsec_scan::Policy::default_policy(),
        &mlsec_scan::Limits::default(),
    );
    assert!(report.incomplete.is_some());
}

#[test]
fn text_and_databases_that_resemble_old_pickles_are_not_scanned_not_partial() {
    let mut sqlite = b"SQLite format 3\0".to_vec();
    sqlite.extend_from_slice(&[0x10, 0x00, 0x01, 0x01, b'.', 0x40]);
    for data in [
        sqlite,
        b"Some notes.\x01".to_vec(),
        b"(not a pickle at all.\x02".to_vec(),
    ] {
        let report = scan_bytes(&data, &ScanOptions::default());
        assert!(
            matches!(report.coverage, Coverage::NotScanned(_)),
            "{:?}: {:?}",
            String::from_utf8_lossy(&data),
            report.coverage
        );
    }
    // A headerless pickle that does something before breaking is still reported.
    let report = scan_bytes(b"cos\nsystem\n(S'id'\ntR\xff", &ScanOptions::default());
    assert!(report.findings.iter().any(|f| f.rule == "PKL003"));
}
