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
    // A name that looks like a key id could shadow another key in lookups: refused.
    let fake_id = "ab".repeat(32);
    assert_eq!(
        mlsec(&data, &["key", "generate", &fake_id, "--principal", "bob"])
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
    // A pull never writes into a directory that already holds files (a planted link or file
    // there could redirect or join the pulled ones).
    std::fs::write(pulled.join("weights/loader.py"), b"import os").unwrap();
    let out = mlsec(
        &data,
        &["model", "pull", "fraud/1", "-o", &s(&pulled), "--verify"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("not an empty directory"),
        "{}",
        text(&out)
    );
    // (The planted file stays there; the provenance check below excludes it explicitly.)

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
    // Provenance generated by the registry verifies offline against the pulled files.
    let generated = dir.path().join("generated.json");
    ok(mlsec(
        &data,
        &[
            "model",
            "provenance",
            "fraud/1",
            "--key",
            "alice-release",
            "-o",
            &s(&generated),
        ],
    ));
    ok(mlsec(
        &data,
        &[
            "verify",
            &s(&pulled),
            "--provenance",
            &s(&generated),
            "--public-key",
            &s(&alice_pub),
            "--ignore-paths",
            "weights/loader.py",
        ],
    ));
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

#[test]
fn ml_bom_and_model_card_from_registry_facts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    ok(mlsec(&data, &["init"]));
    ok(mlsec(&data, &["user", "add", "alice"]));
    ok(mlsec(
        &data,
        &["key", "generate", "alice-release", "--principal", "alice"],
    ));
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("model.safetensors"), [3u8; 2048]).unwrap();
    std::fs::write(
        model.join("requirements.txt"),
        "torch==2.3.1+cu121\nnumpy==1.26.4\nscikit_learn>=1.4\n",
    )
    .unwrap();
    ok(mlsec(
        &data,
        &[
            "model",
            "register",
            "fraud",
            &s(&model),
            "--description",
            "Fraud <b>scoring</b>",
            "--sign-key",
            "alice-release",
        ],
    ));
    let fields = dir.path().join("card.toml");
    std::fs::write(
        &fields,
        "task = \"binary classification\"\napproach = \"supervised\"\nintended_uses = [\"score card-not-present transactions\"]\nlimitations = [\"<script>alert(1)</script> not validated outside the EU\"]\n",
    )
    .unwrap();

    let bom_path = dir.path().join("bom.json");
    ok(mlsec(
        &data,
        &[
            "model",
            "bom",
            "fraud/1",
            "--fields",
            &s(&fields),
            "-o",
            &s(&bom_path),
        ],
    ));
    let bom: Value = serde_json::from_slice(&std::fs::read(&bom_path).unwrap()).unwrap();
    assert_eq!(bom["specVersion"], "1.6");
    let names: Vec<&str> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["fraud", "torch", "numpy", "scikit-learn"],
        "{bom:#}"
    );
    let model_c = &bom["components"][0];
    assert_eq!(
        model_c["modelCard"]["modelParameters"]["task"],
        "binary classification"
    );
    let props = model_c["properties"].to_string();
    assert!(
        props.contains("mlsec:signature:oms") && props.contains("valid key"),
        "{props}"
    );
    // Unknown card fields are refused, naming the key.
    std::fs::write(&fields, "taks = \"typo\"\n").unwrap();
    let out = mlsec(&data, &["model", "bom", "fraud/1", "--fields", &s(&fields)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("taks"), "{}", text(&out));
    std::fs::write(
        &fields,
        "intended_uses = [\"score card-not-present transactions\"]\nlimitations = [\"<script>alert(1)</script> not validated outside the EU\"]\n",
    )
    .unwrap();

    let md = String::from_utf8(
        ok(mlsec(
            &data,
            &["model", "card", "fraud/1", "--fields", &s(&fields)],
        ))
        .stdout,
    )
    .unwrap();
    assert!(
        md.contains("# Model card: fraud version 1") && md.contains("alice"),
        "{md}"
    );
    let page = dir.path().join("card.html");
    ok(mlsec(
        &data,
        &[
            "model",
            "card",
            "fraud/1",
            "--format",
            "html",
            "--fields",
            &s(&fields),
            "-o",
            &s(&page),
        ],
    ));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script>"), "untrusted text is escaped");

    // Renders cleanly in headless Chromium: no console errors, every section in the DOM, and a
    // screenshot that is not blank.
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("Chromium is installed by scripts/test.sh");
    let profile = dir.path().join("chrome-profile");
    let shot = dir.path().join("card.png");
    let run = |extra: &[String]| {
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .output()
            .unwrap()
    };
    let out = run(&["--dump-dom".into()]);
    assert!(out.status.success(), "{}", text(&out));
    let dom = String::from_utf8_lossy(&out.stdout);
    for section in [
        "Intended use",
        "Limitations",
        "Training data",
        "Metrics",
        "Signatures",
        "Files",
        "Environment",
    ] {
        assert!(
            dom.contains(&format!("<h2>{section}</h2>")),
            "{section} missing"
        );
    }
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let log = String::from_utf8_lossy(&out.stderr);
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("Refused"))
        .collect();
    assert!(console.is_empty(), "console output: {console:?}");
    let out = run(&[
        format!("--screenshot={}", shot.display()),
        "--window-size=1000,1400".into(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot of {} bytes",
        png.len()
    );
}
