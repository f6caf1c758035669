//! `mlsec data` as a data engineer and a CI job run it: add versions of a directory tree,
//! check them (exit 1 and quarantine on planted poisoning), verify a tampered working copy
//! (exit 1, every change named), check out a version byte for byte, and nothing recorded half
//! when a file is bad.

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

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn add_check_verify_checkout_with_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&mlsec(&data, &["init"]));
    let pair = dir.path().join("pair");
    ok(&mlsec(
        &data,
        &[
            "data",
            "synth",
            pair.to_str().unwrap(),
            "--rows",
            "8000",
            "--poison",
        ],
    ));

    // Version 1: a directory tree with a table and a sidecar file.
    let v1 = dir.path().join("v1");
    std::fs::create_dir_all(v1.join("meta")).unwrap();
    std::fs::copy(pair.join("reference.parquet"), v1.join("train.parquet")).unwrap();
    std::fs::write(v1.join("meta/README.md"), "labelled transactions\n").unwrap();
    let added = json(&mlsec(
        &data,
        &[
            "data",
            "add",
            v1.to_str().unwrap(),
            "--dataset",
            "fraud/train",
            "-m",
            "first",
            "--json",
        ],
    ));
    assert_eq!(added["reference"], "fraud/train@1");
    assert_eq!(added["files"], 2);
    assert_eq!(added["rows"], 8000);
    let check1 = mlsec(&data, &["data", "check", "fraud/train@1", "--json"]);
    assert_eq!(check1.status.code(), Some(0));
    assert_eq!(json(&check1)["verdict"], "passed");

    // Version 2: poisoned. The check fails with exit 1 and quarantines it.
    let v2 = dir.path().join("v2");
    std::fs::create_dir_all(v2.join("meta")).unwrap();
    std::fs::copy(pair.join("current.parquet"), v2.join("train.parquet")).unwrap();
    std::fs::copy(v1.join("meta/README.md"), v2.join("meta/README.md")).unwrap();
    ok(&mlsec(
        &data,
        &[
            "data",
            "add",
            v2.to_str().unwrap(),
            "--dataset",
            "fraud/train",
            "-m",
            "nightly",
        ],
    ));
    let report = dir.path().join("report.html");
    let check2 = mlsec(
        &data,
        &[
            "data",
            "check",
            "fraud/train@2",
            "--json",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(
        check2.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&check2.stderr)
    );
    let c2 = json(&check2);
    assert_eq!(c2["verdict"], "failed");
    assert_eq!(c2["quarantined"], true);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.starts_with("<!doctype html>") && html.contains("label_conflicts"));
    let log = json(&mlsec(&data, &["data", "log", "fraud/train", "--json"]));
    assert_eq!(log[0]["status"], "failed");
    assert_eq!(log[0]["quarantined"], true);
    assert_eq!(log[1]["status"], "passed");

    // The same tree again records nothing new.
    let again = json(&mlsec(
        &data,
        &[
            "data",
            "add",
            v1.to_str().unwrap(),
            "--dataset",
            "fraud/train",
            "--json",
        ],
    ));
    assert_eq!(again["created"], false);
    assert_eq!(again["version"], 1);

    // Tamper with the working copy: every change is named, exit 1.
    std::fs::write(v1.join("meta/README.md"), "edited\n").unwrap();
    std::fs::write(v1.join("extra.csv"), "x\n1\n").unwrap();
    let verify = mlsec(
        &data,
        &[
            "data",
            "verify",
            "fraud/train@1",
            v1.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(verify.status.code(), Some(1));
    let v = json(&verify);
    assert_eq!(v["clean"], false);
    assert_eq!(v["added"], serde_json::json!(["extra.csv"]));
    assert_eq!(v["modified"][0]["path"], "meta/README.md");
    std::fs::remove_file(v1.join("train.parquet")).unwrap();
    let v = json(&mlsec(
        &data,
        &[
            "data",
            "verify",
            "fraud/train@1",
            v1.to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(v["removed"], serde_json::json!(["train.parquet"]));

    // Checkout restores version 1 byte for byte (by digest here), and it verifies clean.
    let digest = added["digest"].as_str().unwrap().to_owned();
    let restored = dir.path().join("restored");
    ok(&mlsec(
        &data,
        &[
            "data",
            "checkout",
            &format!("fraud/train@{digest}"),
            restored.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        std::fs::read(restored.join("train.parquet")).unwrap(),
        std::fs::read(pair.join("reference.parquet")).unwrap()
    );
    let clean = mlsec(
        &data,
        &[
            "data",
            "verify",
            "fraud/train@1",
            restored.to_str().unwrap(),
        ],
    );
    assert_eq!(clean.status.code(), Some(0));
    // Into a non-empty directory: refused.
    assert_eq!(
        mlsec(
            &data,
            &[
                "data",
                "checkout",
                "fraud/train@1",
                restored.to_str().unwrap()
            ]
        )
        .status
        .code(),
        Some(2)
    );

    // A quarantined version is not restored unless asked for explicitly.
    let q = dir.path().join("quarantined");
    let refused = mlsec(
        &data,
        &["data", "checkout", "fraud/train@2", q.to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("quarantined"));
    ok(&mlsec(
        &data,
        &[
            "data",
            "checkout",
            "fraud/train@2",
            q.to_str().unwrap(),
            "--allow-quarantined",
        ],
    ));
    assert!(q.join("train.parquet").is_file() && q.join("meta/README.md").is_file());
    assert!(std::fs::read_dir(&q).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".mlsec")
    }));

    // A bad table records nothing: the error names the file and line.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("rows.csv"), "a,b\n1,2\n3\n").unwrap();
    let out = mlsec(
        &data,
        &["data", "add", bad.to_str().unwrap(), "--dataset", "broken"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rows.csv") && err.contains("line"), "{err}");
    let list = json(&mlsec(&data, &["data", "list", "--json"]));
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "no dataset half-recorded: {list}"
    );

    // Show and schema.
    let show = json(&mlsec(&data, &["data", "show", "fraud/train@1", "--json"]));
    assert_eq!(show["columns"].as_array().unwrap().len(), 9);
    let schema = json(&mlsec(&data, &["data", "schema", "fraud/train"]));
    assert_eq!(schema["label"], "label");

    // The audit log holds every add, check, verify and checkout, and verifies.
    let export = mlsec(&data, &["audit", "export", "--format", "jsonl"]);
    ok(&export);
    let text = String::from_utf8_lossy(&export.stdout);
    for (action, n) in [
        ("dataset.version.add", 2),
        ("dataset.check", 2),
        ("dataset.verify", 3),
        ("dataset.checkout", 2),
    ] {
        let found = text
            .lines()
            .filter(|l| l.contains(&format!("\"action\":\"{action}\"")))
            .count();
        assert_eq!(found, n, "{action}");
    }
    ok(&mlsec(&data, &["audit", "verify"]));
}
