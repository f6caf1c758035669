//! `mlsec model` and `mlsec lineage` as a release engineer runs them: register a model
//! directory (every file stored, hashed and scanned), refuse an alias on a quarantined version
//! with exit code 1, move aliases, and walk the lineage as a tree and as JSON.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mlsec");

fn mlsec(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("MLSEC_DATABASE_URL")
        .output()
        .expect("run mlsec")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

#[test]
fn register_scan_alias_and_lineage_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    assert!(mlsec(&data, &["init"]).status.success());
    let good = dir.path().join("good");
    std::fs::create_dir_all(good.join("weights")).unwrap();
    std::fs::write(good.join("MLmodel"), "flavors: {}\n").unwrap();
    std::fs::write(good.join("weights/w.bin"), [1u8; 2048]).unwrap();
    std::fs::write(good.join("requirements.txt"), "numpy==2.4.6\n").unwrap();
    let out = mlsec(
        &data,
        &[
            "model",
            "register",
            "fraud",
            good.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v1 = json(&out);
    assert_eq!(v1["version"], "1");
    assert_eq!(v1["files"].as_array().unwrap().len(), 3);
    assert_eq!(v1["quarantined"], false);

    // A pickle that would run a shell command when loaded: recorded, quarantined, exit 1.
    let evil = dir.path().join("evil");
    std::fs::create_dir_all(&evil).unwrap();
    std::fs::write(evil.join("model.pkl"), b"cos\nsystem\n(S'id'\ntR.").unwrap();
    let out = mlsec(
        &data,
        &[
            "model",
            "register",
            "fraud",
            evil.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v2 = json(&out);
    assert_eq!(v2["quarantined"], true);
    assert_eq!(v2["files"][0]["scan_severity"], "critical");
    let out = mlsec(&data, &["model", "show", "fraud/2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("QUARANTINED"));

    let out = mlsec(&data, &["model", "alias", "fraud", "champion", "2"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("quarantined"), "{}", text(&out));
    let out = mlsec(&data, &["model", "alias", "fraud", "champion", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = mlsec(&data, &["model", "show", "fraud@champion", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["digest"], v1["digest"]);

    let out = mlsec(&data, &["lineage", "model:fraud@champion", "--downstream"]);
    assert!(text(&out).contains("alias @champion"), "{}", text(&out));
    let out = mlsec(&data, &["lineage", "model:fraud/1", "--json"]);
    assert_eq!(json(&out)["root"]["digest"], v1["digest"]);
    let out = mlsec(&data, &["lineage", "nonsense"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let out = mlsec(&data, &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out));
}
