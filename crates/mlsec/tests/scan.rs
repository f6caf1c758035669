//! `mlsec scan` as CI runs it: exit codes, output formats, directory walks.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mlsec");

fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mlsec-scan/fixtures")
        .join(kind)
}

fn scan(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).arg("scan").args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn exit_codes_keep_findings_errors_and_unscanned_apart() {
    let benign = fixtures("benign");
    let malicious = fixtures("malicious");
    assert_eq!(scan(&[benign.to_str().unwrap()]).0, 0);
    assert_eq!(scan(&[malicious.to_str().unwrap()]).0, 1);

    let dir = tempfile::tempdir().unwrap();
    let unknown = dir.path().join("weights.onnx");
    std::fs::write(&unknown, [0u8, 1, 2, 3, 200]).unwrap();
    assert_eq!(scan(&[unknown.to_str().unwrap()]).0, 4);
    assert_eq!(scan(&["--allow-unscanned", unknown.to_str().unwrap()]).0, 0);

    let damaged = dir.path().join("damaged.pkl");
    std::fs::write(&damaged, b"\x80\x02K\x01\xff").unwrap();
    assert_eq!(scan(&[damaged.to_str().unwrap()]).0, 3);

    // A scan error never hides a finding.
    let evil = malicious.join("truncated_after_payload.pkl");
    assert_eq!(
        scan(&[evil.to_str().unwrap(), damaged.to_str().unwrap()]).0,
        1
    );

    // Warnings fail only in strict mode.
    let custom = dir.path().join("custom.pkl");
    std::fs::write(&custom, b"\x80\x02cmypkg.model\nNet\n)\x81.").unwrap();
    assert_eq!(scan(&[custom.to_str().unwrap()]).0, 0);
    assert_eq!(scan(&["--strict", custom.to_str().unwrap()]).0, 1);
    // Suppression and user policy.
    assert_eq!(
        scan(&["--strict", "--suppress", "PKL002", custom.to_str().unwrap()]).0,
        0
    );
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "[[allow]]\npattern = \"mypkg.*:*\"\n").unwrap();
    assert_eq!(
        scan(&[
            "--strict",
            "--policy",
            policy.to_str().unwrap(),
            custom.to_str().unwrap()
        ])
        .0,
        0
    );
    assert_eq!(
        scan(&["--suppress", "NOPE1", custom.to_str().unwrap()]).0,
        2
    );
    assert_eq!(scan(&["/does/not/exist"]).0, 2);
}

#[test]
fn json_and_sarif_name_every_finding() {
    let evil = fixtures("malicious").join("zip_hidden_member.pt");
    let (code, json) = scan(&["--format", "json", evil.to_str().unwrap()]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let findings = v["files"][0]["findings"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["rule"] == "ZIP004"));
    assert!(
        findings
            .iter()
            .any(|f| f["rule"] == "PKL001" && f["member"] == "archive/evil.pkl")
    );

    let (_, sarif) = scan(&["--format", "sarif", evil.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&sarif).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    for result in run["results"].as_array().unwrap() {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], result["ruleId"]);
        assert!(["error", "warning", "note"].contains(&result["level"].as_str().unwrap()));
        assert!(result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].is_string());
    }
}

#[test]
fn hugging_face_snapshot_directory_scans_like_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("models--org--name/snapshots/abc123");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::write(
        snap.join("config.json"),
        br#"{"architectures": ["BertModel"]}"#,
    )
    .unwrap();
    std::fs::write(snap.join("README.md"), "# model card\n").unwrap();
    std::fs::copy(
        fixtures("benign").join("model.safetensors"),
        snap.join("model.safetensors"),
    )
    .unwrap();
    std::fs::copy(
        fixtures("benign").join("torch_checkpoint.pt"),
        snap.join("pytorch_model.bin"),
    )
    .unwrap();
    assert_eq!(scan(&[dir.path().to_str().unwrap()]).0, 0);
    std::fs::copy(
        fixtures("malicious").join("torch_checkpoint_payload.pt"),
        snap.join("training_args.bin"),
    )
    .unwrap();
    let (code, text) = scan(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(text.contains("training_args.bin"), "{text}");
}
