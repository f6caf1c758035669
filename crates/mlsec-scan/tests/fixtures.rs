//! The fixture corpus (`fixtures/generate.py`): every malicious fixture is detected with the
//! rules listed in `fixtures/expected.toml`, and no benign fixture has a finding above info.

use std::collections::BTreeMap;
use std::path::Path;

use mlsec_scan::{Coverage, ScanOptions, Severity, scan_bytes};

fn fixtures(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(kind);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn findings(data: &[u8]) -> Vec<(String, Severity, String)> {
    let report = scan_bytes(data, &ScanOptions::default());
    report
        .findings
        .into_iter()
        .map(|f| {
            (
                f.rule.to_owned(),
                f.severity,
                format!("{} [{}]", f.message, f.member),
            )
        })
        .collect()
}

#[test]
fn benign_fixtures_are_clean() {
    let all = fixtures("benign");
    assert!(all.len() >= 10);
    for (name, data) in all {
        let above_info: Vec<_> = findings(&data)
            .into_iter()
            .filter(|f| f.1 > Severity::Info)
            .collect();
        assert!(above_info.is_empty(), "{name}: {above_info:#?}");
        let report = scan_bytes(&data, &ScanOptions::default());
        assert_eq!(
            report.coverage,
            Coverage::Scanned,
            "{name} ({})",
            report.format
        );
    }
}

#[test]
fn malicious_fixtures_are_detected_with_the_expected_rules() {
    let expected: BTreeMap<String, Vec<String>> = toml::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/expected.toml"),
        )
        .unwrap(),
    )
    .unwrap();
    let all = fixtures("malicious");
    for (name, data) in &all {
        let found = findings(data);
        let worst = found.iter().map(|f| f.1).max();
        assert!(
            worst >= Some(Severity::High),
            "{name} not detected: {found:#?}"
        );
        let mut rules: Vec<String> = found.iter().map(|f| f.0.clone()).collect();
        rules.sort();
        rules.dedup();
        let want = expected.get(name).unwrap_or_else(|| {
            panic!("{name} has no entry in expected.toml; found {rules:?} {found:#?}")
        });
        assert_eq!(&rules, want, "{name}: {found:#?}");
    }
    assert_eq!(
        all.len(),
        expected.len(),
        "expected.toml lists fixtures that do not exist"
    );
}

/// Snapshot of every finding on every fixture (`fixtures/findings.snap`): a change in what the
/// scanner reports shows up as a reviewable diff. `MLSEC_UPDATE_SNAPSHOTS=1` rewrites it.
#[test]
fn findings_match_the_snapshot() {
    let mut text = String::new();
    for kind in ["benign", "malicious"] {
        for (name, data) in fixtures(kind) {
            let report = scan_bytes(&data, &ScanOptions::default());
            text.push_str(&format!(
                "== {kind}/{name} [{}] {:?}\n",
                report.format, report.coverage
            ));
            for f in &report.findings {
                text.push_str(&format!(
                    "   {} {} [{}] @{} {}\n",
                    f.rule,
                    f.severity.as_str(),
                    f.member,
                    f.offset,
                    f.message
                ));
            }
        }
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/findings.snap");
    if std::env::var_os("MLSEC_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if want != text {
        let first = want.lines().zip(text.lines()).find(|(a, b)| a != b);
        panic!(
            "findings differ from fixtures/findings.snap (first difference: {first:?}); review and rerun with MLSEC_UPDATE_SNAPSHOTS=1"
        );
    }
}
