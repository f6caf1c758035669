//! `mlsec sign` / `mlsec verify` end to end, and interoperability with the OpenSSF reference
//! implementation both ways: bundles made by `mlsec sign` verify with `model_signing verify`,
//! and bundles made by `model_signing` (CLI and Python API) verify with `mlsec verify`.
//!
//! The reference runs from the test venv (`MLSEC_TEST_MODEL_SIGNING`, `MLSEC_TEST_OMS_PYTHON`,
//! set by `scripts/test.sh`); without it the interop half is skipped with a message.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mlsec_attest::{Curve, PrivateKey};

fn mlsec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlsec"))
        .args(args)
        .output()
        .expect("mlsec runs")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn pki(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mlsec-attest/tests/pki")
        .join(name)
        .display()
        .to_string()
}

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    model: String,
}

impl Setup {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let model = root.join("model");
        fs::create_dir_all(model.join("sub/a")).unwrap();
        fs::create_dir_all(model.join(".github")).unwrap();
        fs::write(model.join("config.json"), b"{\"arch\": \"toy\"}\n").unwrap();
        fs::write(model.join("empty.txt"), b"").unwrap();
        fs::write(model.join("sub/a/x.txt"), b"slash").unwrap();
        fs::write(model.join("sub/a-b.txt"), b"dash").unwrap();
        fs::write(model.join(".github/ci.yml"), b"name: ci").unwrap();
        let weights: Vec<u8> = (0..2_500_003u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        fs::write(model.join("weights.bin"), weights).unwrap();
        for curve in [Curve::P256, Curve::P384] {
            let key = PrivateKey::generate(curve).unwrap();
            fs::write(
                root.join(format!("{}.pem", curve.name())),
                key.to_pkcs8_pem().as_bytes(),
            )
            .unwrap();
            fs::write(
                root.join(format!("{}.pub", curve.name())),
                key.public_key().to_pem(),
            )
            .unwrap();
        }
        let model = model.display().to_string();
        Setup {
            _tmp: tmp,
            root,
            model,
        }
    }
    fn path(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }
}

fn reference() -> Option<(String, String)> {
    match (
        std::env::var("MLSEC_TEST_MODEL_SIGNING"),
        std::env::var("MLSEC_TEST_OMS_PYTHON"),
    ) {
        (Ok(cli), Ok(python)) => Some((cli, python)),
        _ => {
            eprintln!(
                "skipping interop: MLSEC_TEST_MODEL_SIGNING / MLSEC_TEST_OMS_PYTHON not set (scripts/test.sh sets them)"
            );
            None
        }
    }
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .expect("the reference runs")
}

#[test]
fn sign_and_verify_with_exit_codes() {
    let s = Setup::new();
    let sig = s.path("model.sig");
    let o = mlsec(&[
        "sign",
        &s.model,
        "--key",
        &s.path("p256.pem"),
        "--signature",
        &sig,
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let signed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(signed["files"], 5);
    let o = mlsec(&[
        "verify",
        &s.model,
        "--signature",
        &sig,
        "--public-key",
        &s.path("p256.pub"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // The other key: verification fails (exit 1), naming the key mismatch.
    let o = mlsec(&[
        "verify",
        &s.model,
        "--signature",
        &sig,
        "--public-key",
        &s.path("p384.pub"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("names key"),
        "{}",
        text(&o)
    );
    // A changed file: exit 1, naming the file; JSON output says why.
    fs::write(
        Path::new(&s.model).join("config.json"),
        b"{\"arch\": \"evil\"}\n",
    )
    .unwrap();
    let o = mlsec(&[
        "verify",
        &s.model,
        "--signature",
        &sig,
        "--public-key",
        &s.path("p256.pub"),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verified"], false);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("1 changed: config.json"),
        "{v}"
    );
    // Usage errors: exit 2. A missing model: exit 3.
    let o = mlsec(&["verify", &s.model, "--public-key", &s.path("p256.pub")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = mlsec(&["verify", &s.model, "--signature", &sig]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = mlsec(&[
        "verify",
        &s.path("nothing"),
        "--signature",
        &sig,
        "--public-key",
        &s.path("p256.pub"),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    // A bundle that is not one: exit 1 with the reason.
    fs::write(&sig, b"{\"mediaType\": 1}").unwrap();
    let o = mlsec(&[
        "verify",
        &s.model,
        "--signature",
        &sig,
        "--public-key",
        &s.path("p256.pub"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("malformed bundle"),
        "{}",
        text(&o)
    );
}

#[test]
fn signature_inside_the_model_is_excluded_and_provenance_binds_to_the_root() {
    let s = Setup::new();
    let sig = format!("{}/model.sig", s.model);
    let o = mlsec(&[
        "sign",
        &s.model,
        "--key",
        &s.path("p384.pem"),
        "--signature",
        &sig,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let prov = s.path("provenance.json");
    fs::write(s.path("requirements.txt"), b"torch==2.5.1\nnumpy==2.1.3\n").unwrap();
    let dataset = format!("train=sha256:{}", "ab".repeat(32));
    let o = mlsec(&[
        "provenance",
        "create",
        &s.model,
        "--key",
        &s.path("p384.pem"),
        "-o",
        &prov,
        "--dataset",
        &dataset,
        "--commit",
        "https://git.example/repo@0123abcd",
        "--lock",
        &s.path("requirements.txt"),
        "--param",
        "lr=0.001",
        "--param",
        "optimizer=adamw",
        "--run",
        "run-42",
        "--ignore-paths",
        "model.sig",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = mlsec(&[
        "verify",
        &s.model,
        "--signature",
        &sig,
        "--public-key",
        &s.path("p384.pub"),
        "--provenance",
        &prov,
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let deps = &v["provenance"]["buildDefinition"]["resolvedDependencies"];
    assert_eq!(deps.as_array().unwrap().len(), 3, "{v}");
    assert_eq!(
        v["provenance"]["buildDefinition"]["externalParameters"]["hyperparameters"]["lr"],
        0.001
    );
    // Provenance for another model does not verify against this one.
    fs::write(Path::new(&s.model).join("weights.bin"), b"retrained").unwrap();
    let o = mlsec(&[
        "verify",
        &s.model,
        "--provenance",
        &prov,
        "--public-key",
        &s.path("p384.pub"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not this model"),
        "{}",
        text(&o)
    );
}

#[test]
fn mlsec_bundles_verify_with_the_reference() {
    let Some((reference_cli, _)) = reference() else {
        return;
    };
    let s = Setup::new();
    for curve in ["p256", "p384"] {
        let sig = s.path(&format!("{curve}.sig"));
        let o = mlsec(&[
            "sign",
            &s.model,
            "--key",
            &s.path(&format!("{curve}.pem")),
            "--signature",
            &sig,
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let o = run(
            &reference_cli,
            &[
                "verify",
                "key",
                &s.model,
                "--signature",
                &sig,
                "--public_key",
                &s.path(&format!("{curve}.pub")),
            ],
        );
        assert!(
            o.status.success(),
            "reference refused our {curve} bundle: {}",
            text(&o)
        );
    }
    let sig = s.path("cert.sig");
    let o = mlsec(&[
        "sign",
        &s.model,
        "--key",
        &pki("leaf.key"),
        "--certificate",
        &pki("leaf.pem"),
        "--certificate-chain",
        &pki("intermediate.pem"),
        "--signature",
        &sig,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(
        &reference_cli,
        &[
            "verify",
            "certificate",
            &s.model,
            "--signature",
            &sig,
            "--certificate_chain",
            &pki("root.pem"),
        ],
    );
    assert!(
        o.status.success(),
        "reference refused our certificate bundle: {}",
        text(&o)
    );
    // The reference also refuses a tampered model signed by us.
    fs::write(Path::new(&s.model).join("sub/new.py"), b"import os").unwrap();
    let o = run(
        &reference_cli,
        &[
            "verify",
            "key",
            &s.model,
            "--signature",
            &s.path("p256.sig"),
            "--public_key",
            &s.path("p256.pub"),
        ],
    );
    assert!(!o.status.success(), "{}", text(&o));
}

#[test]
fn reference_bundles_verify_with_mlsec() {
    let Some((reference_cli, python)) = reference() else {
        return;
    };
    let s = Setup::new();
    let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/model_signing_api.py");
    let api = api.display().to_string();
    let mut roots = Vec::new();
    for curve in ["p256", "p384"] {
        let sig = s.path(&format!("ref-{curve}.sig"));
        let o = run(
            &reference_cli,
            &[
                "sign",
                "key",
                &s.model,
                "--private_key",
                &s.path(&format!("{curve}.pem")),
                "--signature",
                &sig,
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        let o = mlsec(&[
            "verify",
            &s.model,
            "--signature",
            &sig,
            "--public-key",
            &s.path(&format!("{curve}.pub")),
            "--json",
        ]);
        assert!(
            o.status.success(),
            "mlsec refused the reference's {curve} bundle: {}",
            text(&o)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        roots.push(v["model"]["root_digest"].as_str().unwrap().to_owned());
    }
    // Both tools compute the same root digest for the same directory.
    let o = mlsec(&[
        "sign",
        &s.model,
        "--key",
        &s.path("p256.pem"),
        "--signature",
        &s.path("ours.sig"),
        "--json",
    ]);
    let ours: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(roots, [ours["root_digest"].as_str().unwrap(); 2]);
    // Certificate method.
    let sig = s.path("ref-cert.sig");
    let o = run(
        &reference_cli,
        &[
            "sign",
            "certificate",
            &s.model,
            "--private_key",
            &pki("leaf-p384.key"),
            "--signing_certificate",
            &pki("leaf-p384.pem"),
            "--certificate_chain",
            &pki("intermediate.pem"),
            "--signature",
            &sig,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = mlsec(&[
        "verify",
        &s.model,
        "--signature",
        &sig,
        "--trust-root",
        &pki("root.pem"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = mlsec(&[
        "verify",
        &s.model,
        "--signature",
        &sig,
        "--trust-root",
        &pki("other-root.pem"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // Shards (written with a float shard size by 1.1.1) and BLAKE3, through the API.
    for mode in [vec!["shards", "1048576"], vec!["blake3"]] {
        let sig = s.path(&format!("ref-{}.sig", mode[0]));
        let mut args = vec![api.clone(), s.model.clone(), s.path("p256.pem")];
        args.push(sig.clone());
        args.extend(mode.iter().map(|m| m.to_string()));
        let o = Command::new(&python).args(&args).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let o = mlsec(&[
            "verify",
            &s.model,
            "--signature",
            &sig,
            "--public-key",
            &s.path("p256.pub"),
        ]);
        assert!(
            o.status.success(),
            "mlsec refused the reference's {} bundle: {}",
            mode[0],
            text(&o)
        );
    }
    // A reference bundle over a model changed afterwards fails with the file named.
    fs::write(Path::new(&s.model).join("sub/a/x.txt"), b"changed").unwrap();
    let o = mlsec(&[
        "verify",
        &s.model,
        "--signature",
        &s.path("ref-p256.sig"),
        "--public-key",
        &s.path("p256.pub"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("sub/a/x.txt"),
        "{}",
        text(&o)
    );
}
