//! Signing keys and signed model versions from the command line: keys generated and imported
//! for accounts, sealed at rest and audited; a registered version signed from its recorded
//! digests, verified against the registered signers, pulled and checked byte for byte; a
//! revoked key's signature refused everywhere.

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
        "{:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", text(&out));
    out
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

#[test]
fn keys_sign_verify_pull_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    ok(mlsec(&data, &["init"]));
    ok(mlsec(&data, &["user", "add", "alice"]));
    ok(mlsec(&data, &["user", "add", "bob"]));
    let alice_pub = dir.path().join("alice.pub");
    ok(mlsec(
        &data,
        &[
            "key",
            "generate",
            "alice-release",
            "--principal",
            "alice",
            "--curve",
            "p384",
            "--public-out",
            &s(&alice_pub),
        ],
    ));
    // A key for an account that does not exist, a duplicate name, a bad curve: refused.
    assert!(
        !mlsec(&data, &["key", "generate", "x", "--principal", "nobody"])
            .status
            .success()
    );
    assert!(
        !mlsec(
            &data,
            &["key", "generate", "alice-release", "--principal", "alice"]
        )
        .status
        .success()
    );
    assert_eq!(
        mlsec(
            &data,
            &[
                "key",
                "generate",
                "y",
                "--principal",
                "bob",
                "--curve",
                "secp256k1"
            ]
        )
        .status
        .code(),
        Some(2)
    );
    // Import: a private key (sealed) and a public key alone.
    let bob_key = mlsec_attest::PrivateKey::generate(mlsec_attest::Curve::P256).unwrap();
    std::fs::write(
        dir.path().join("bob.pem"),
        bob_key.to_pkcs8_pem().as_bytes(),
    )
    .unwrap();
    ok(mlsec(
        &data,
        &[
            "key",
            "import",
            "bob-ci",
            "--principal",
            "bob",
            "--file",
            &s(&dir.path().join("bob.pem")),
        ],
    ));
    let ext = mlsec_attest::PrivateKey::generate(mlsec_attest::Curve::P256).unwrap();
    std::fs::write(dir.path().join("ext.pub"), ext.public_key().to_pem()).unwrap();
    ok(mlsec(
        &data,
        &[
            "key",
            "import",
            "bob-hsm",
            "--principal",
            "bob",
            "--file",
            &s(&dir.path().join("ext.pub")),
        ],
    ));
    let keys = json(&ok(mlsec(&data, &["key", "list", "--json"])));
    assert_eq!(keys.as_array().unwrap().len(), 3);
    assert_eq!(keys[2]["can_sign"], false);
    // No private material anywhere in the listing, nor in the database file in the clear.
    let listing =
        String::from_utf8_lossy(&ok(mlsec(&data, &["key", "list", "--json"])).stdout).to_string();
    assert!(!listing.contains("PRIVATE KEY"));
    let db = std::fs::read(data.join("mlsec.db")).unwrap_or_default();
    let pkcs8 = bob_key.pkcs8_der();
    assert!(
        !db.windows(pkcs8.len()).any(|w| w == pkcs8),
        "private key stored in the clear"
    );

    // Register a version and sign it with alice's key.
    let model = dir.path().join("model");
    std::fs::create_dir_all(model.join("weights")).unwrap();
    std::fs::write(model.join("config.json"), b"{}").unwrap();
    std::fs::write(model.join("weights/w.bin"), [7u8; 4096]).unwrap();
    ok(mlsec(&data, &["model", "register", "fraud", &s(&model)]));
    assert_eq!(
        mlsec(&data, &["model", "verify", "fraud/1"]).status.code(),
        Some(1),
        "unsigned yet"
    );
    // A public-only key cannot sign.
    assert!(
        !mlsec(&data, &["model", "sign", "fraud/1", "--key", "bob-hsm"])
            .status
            .success()
    );
    ok(mlsec(
        &data,
        &["model", "sign", "fraud/1", "--key", "alice-release"],
    ));
    let report = json(&ok(mlsec(&data, &["model", "verify", "fraud/1", "--json"])));
    assert_eq!(report["signed"], true, "{report}");
    assert_eq!(report["signers"], serde_json::json!(["alice"]));

    // The same version's files on disk verify with the exported public key, offline, and the
    // root digest is the one the registry signed.
    let pulled = dir.path().join("pulled");
    let out = ok(mlsec(
        &data,
        &["model", "pull", "fraud/1", "-o", &s(&pulled), "--verify"],
    ));
    assert!(
        text(&out).contains("verified (signed by alice"),
        "{}",
        text(&out)
    );
    // A file planted in the output directory is not part of what was signed: refused.
    std::fs::write(pulled.join("weights/loader.py"), b"import os").unwrap();
    let out = mlsec(
        &data,
        &["model", "pull", "fraud/1", "-o", &s(&pulled), "--verify"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("not signed: weights/loader.py"),
        "{}",
        text(&out)
    );

    // Provenance: created offline, attached (checked against the version's files), verified.
    let prov = dir.path().join("prov.json");
    std::fs::write(
        dir.path().join("bob.pem"),
        bob_key.to_pkcs8_pem().as_bytes(),
    )
    .unwrap();
    ok(mlsec(
        &data,
        &[
            "provenance",
            "create",
            &s(&model),
            "--key",
            &s(&dir.path().join("bob.pem")),
            "-o",
            &s(&prov),
            "--param",
            "epochs=3",
        ],
    ));
    ok(mlsec(
        &data,
        &["model", "attach-provenance", "fraud/1", &s(&prov)],
    ));
    let report = json(&ok(mlsec(&data, &["model", "verify", "fraud/1", "--json"])));
    assert_eq!(report["provenance_verified"], true, "{report}");
    // Provenance about other files is refused.
    std::fs::write(model.join("config.json"), b"{\"changed\": true}").unwrap();
    ok(mlsec(
        &data,
        &[
            "provenance",
            "create",
            &s(&model),
            "--key",
            &s(&dir.path().join("bob.pem")),
            "-o",
            &s(&prov),
        ],
    ));
    let out = mlsec(&data, &["model", "attach-provenance", "fraud/1", &s(&prov)]);
    assert!(
        !out.status.success() && text(&out).contains("not this model"),
        "{}",
        text(&out)
    );

    // Revoking alice's key: the version is no longer signed by a trusted key, and a pull with
    // --verify fails naming the revocation.
    ok(mlsec(
        &data,
        &["key", "revoke", "alice-release", "--reason", "laptop lost"],
    ));
    assert!(
        !mlsec(
            &data,
            &["key", "revoke", "alice-release", "--reason", "again"]
        )
        .status
        .success()
    );
    let out = mlsec(&data, &["model", "verify", "fraud/1", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = json(&out);
    assert!(
        report["signatures"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{report}"
    );
    let out = mlsec(
        &data,
        &[
            "model",
            "pull",
            "fraud/1",
            "-o",
            &s(&dir.path().join("again")),
            "--verify",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("revoked"), "{}", text(&out));
    // A revoked key cannot sign.
    assert!(
        !mlsec(
            &data,
            &["model", "sign", "fraud/1", "--key", "alice-release"]
        )
        .status
        .success()
    );

    // Every key operation is in the audit log, which still verifies.
    let out = ok(mlsec(&data, &["audit", "export", "--format", "jsonl"]));
    let log = String::from_utf8_lossy(&out.stdout);
    for action in [
        "signing_key.create",
        "signing_key.revoke",
        "model.oms",
        "model.provenance",
    ] {
        assert!(log.contains(action), "{action} not audited");
    }
    ok(mlsec(&data, &["audit", "verify"]));
}
