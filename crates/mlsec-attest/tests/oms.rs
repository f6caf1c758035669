//! OMS signing and verification end to end on real directories, and every kind of tampering
//! the verifier must name: changed, missing, added and renamed files, reordered or duplicated
//! resources, names that escape the tree, symlinks, malformed bundles, wrong and revoked keys,
//! certificates outside their validity or chain.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mlsec_attest::bundle::{BUNDLE_MEDIA_TYPE, PublicKeyMaterial, VerificationMaterial};
use mlsec_attest::dsse::IN_TOTO_PAYLOAD_TYPE;
use mlsec_attest::statement::OMS_PREDICATE_TYPE;
use mlsec_attest::x509::{TrustRoots, certificates_from_pem};
use mlsec_attest::*;
use serde_json::{Value, json};

fn model(dir: &Path) {
    fs::create_dir_all(dir.join("sub/a")).unwrap();
    fs::create_dir_all(dir.join(".git")).unwrap();
    fs::write(dir.join("config.json"), b"{\"layers\": 2}").unwrap();
    fs::write(dir.join("empty.txt"), b"").unwrap();
    fs::write(dir.join("sub/a/x.txt"), b"slash").unwrap();
    fs::write(dir.join("sub/a-b.txt"), b"dash").unwrap();
    fs::write(dir.join(".git/HEAD"), b"ref: refs/heads/main").unwrap();
    let weights: Vec<u8> = (0..3_000_061u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(dir.join("weights.bin"), weights).unwrap();
}

fn key_trust(key: &PublicKey) -> Trust<'_> {
    Trust::Key(key)
}

fn sign(dir: &Path, key: &PrivateKey, options: &SignOptions) -> Bundle {
    sign_model(dir, options, SigningMaterial::Key(key))
        .unwrap()
        .bundle
}

fn verify(dir: &Path, bundle: &Bundle, key: &PublicKey) -> Result<Verified> {
    verify_model(dir, bundle, key_trust(key), &VerifyOptions::default())
}

/// A bundle over a hand-made statement, correctly signed: what a malicious signer (or a
/// compromised key) could produce. The verifier must still refuse what is wrong inside.
fn forge(key: &PrivateKey, statement: &Value) -> Bundle {
    let payload = serde_json::to_vec(statement).unwrap();
    let mut envelope = Envelope::new(IN_TOTO_PAYLOAD_TYPE, &payload);
    envelope.sign(key, true).unwrap();
    Bundle {
        media_type: BUNDLE_MEDIA_TYPE.into(),
        verification_material: VerificationMaterial {
            public_key: Some(PublicKeyMaterial {
                hint: Some(key.public_key().hint()),
                raw_bytes: None,
                key_details: None,
            }),
            x509_certificate_chain: None,
            tlog_entries: vec![],
        },
        dsse_envelope: envelope,
    }
}

fn payload(bundle: &Bundle) -> Value {
    serde_json::from_slice(&bundle.dsse_envelope.payload_bytes().unwrap()).unwrap()
}

#[test]
fn every_method_round_trips_and_agrees_on_the_root_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    model(&dir);
    for curve in [Curve::P256, Curve::P384] {
        let key = PrivateKey::generate(curve).unwrap();
        for hash in [HashAlgorithm::Sha256, HashAlgorithm::Blake3] {
            for serialization in [
                Serialization::Files,
                Serialization::Shards {
                    shard_size: 1 << 20,
                },
            ] {
                let options = SignOptions {
                    hash,
                    serialization,
                    ..SignOptions::default()
                };
                let signed = sign_model(&dir, &options, SigningMaterial::Key(&key)).unwrap();
                let bundle = Bundle::from_slice(&signed.bundle.to_json()).unwrap();
                let verified = verify(&dir, &bundle, &key.public_key()).unwrap();
                assert_eq!(verified.root_digest, signed.root_digest);
                assert_eq!(verified.model_name, "model");
                assert_eq!(verified.files, 5, "{:?}", verified.ignored);
                let expected_resources = match serialization {
                    Serialization::Files => 5,
                    // 3 MB in 1 MiB shards + three small files; the empty file has no shard.
                    Serialization::Shards { .. } => 3 + 3,
                };
                assert_eq!(verified.resources, expected_resources);
            }
        }
    }
}

#[test]
fn resources_are_in_component_order_with_git_paths_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    model(&dir);
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let p = payload(&sign(&dir, &key, &SignOptions::default()));
    let names: Vec<&str> = p["predicate"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "config.json",
            "empty.txt",
            "sub/a/x.txt",
            "sub/a-b.txt",
            "weights.bin"
        ]
    );
    assert_eq!(
        p["predicate"]["serialization"]["ignore_paths"],
        json!([".git", ".gitattributes", ".github", ".gitignore"])
    );
    assert_eq!(p["predicateType"], OMS_PREDICATE_TYPE);
    // Known digest of a known file: the empty file.
    assert_eq!(
        p["predicate"]["resources"][1]["digest"],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn tampering_with_files_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    model(&dir);
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let public = key.public_key();
    let bundle = sign(&dir, &key, &SignOptions::default());
    verify(&dir, &bundle, &public).unwrap();

    let expect = |needle: &str| {
        let err = verify(&dir, &bundle, &public).unwrap_err();
        assert!(matches!(err, AttestError::Mismatch(_)), "{err}");
        assert!(err.to_string().contains(needle), "{needle:?} not in: {err}");
    };
    // Changed (one byte at the end of the big file).
    let mut weights = fs::read(dir.join("weights.bin")).unwrap();
    *weights.last_mut().unwrap() ^= 1;
    fs::write(dir.join("weights.bin"), &weights).unwrap();
    expect("1 changed: weights.bin");
    *weights.last_mut().unwrap() ^= 1;
    fs::write(dir.join("weights.bin"), &weights).unwrap();
    verify(&dir, &bundle, &public).unwrap();
    // Added.
    fs::write(dir.join("sub/extra.py"), b"import os").unwrap();
    expect("1 not signed: sub/extra.py");
    // ...unless unsigned files are explicitly allowed.
    let lenient = VerifyOptions {
        ignore_unsigned_files: true,
        ..VerifyOptions::default()
    };
    verify_model(&dir, &bundle, Trust::Key(&public), &lenient).unwrap();
    fs::remove_file(dir.join("sub/extra.py")).unwrap();
    // Missing (a new empty file is also caught: the files method lists empty files).
    fs::rename(dir.join("empty.txt"), dir.join("empty2.txt")).unwrap();
    expect("1 missing: empty.txt");
    expect("1 not signed: empty2.txt");
    fs::rename(dir.join("empty2.txt"), dir.join("empty.txt")).unwrap();
    // Two files swapping names.
    fs::rename(dir.join("sub/a-b.txt"), dir.join("tmp")).unwrap();
    fs::rename(dir.join("sub/a/x.txt"), dir.join("sub/a-b.txt")).unwrap();
    fs::rename(dir.join("tmp"), dir.join("sub/a/x.txt")).unwrap();
    expect("2 changed: sub/a-b.txt, sub/a/x.txt");
}

#[test]
fn symlinks_are_refused_and_never_leave_the_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    model(&dir);
    fs::write(tmp.path().join("outside.txt"), b"secret").unwrap();
    std::os::unix::fs::symlink(tmp.path().join("outside.txt"), dir.join("link.txt")).unwrap();
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let err = sign_model(&dir, &SignOptions::default(), SigningMaterial::Key(&key)).unwrap_err();
    assert!(
        err.to_string().contains("`link.txt` is a symbolic link"),
        "{err}"
    );
    let mut allow = SignOptions::default();
    allow.walk.allow_symlinks = true;
    let err = sign_model(&dir, &allow, SigningMaterial::Key(&key)).unwrap_err();
    assert!(err.to_string().contains("outside the model"), "{err}");
    // A link inside the tree is hashed by content when allowed.
    fs::remove_file(dir.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(dir.join("config.json"), dir.join("link.json")).unwrap();
    let signed = sign_model(&dir, &allow, SigningMaterial::Key(&key)).unwrap();
    let options = VerifyOptions {
        walk: allow.walk.clone(),
        ..VerifyOptions::default()
    };
    verify_model(
        &dir,
        &signed.bundle,
        Trust::Key(&key.public_key()),
        &options,
    )
    .unwrap();
    // Verifying without allowing links refuses the tree.
    assert!(verify(&dir, &signed.bundle, &key.public_key()).is_err());
}

#[test]
fn forged_payloads_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    model(&dir);
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let public = key.public_key();
    let good = payload(&sign(&dir, &key, &SignOptions::default()));

    let check = |statement: &Value, needle: &str| {
        let err = verify(&dir, &forge(&key, statement), &public).unwrap_err();
        assert!(err.to_string().contains(needle), "{needle:?} not in: {err}");
    };
    let resources = good["predicate"]["resources"].as_array().unwrap().clone();
    let with_resources = |list: Vec<Value>| {
        let mut s = good.clone();
        s["predicate"]["resources"] = Value::Array(list);
        s
    };
    // Reordered resources with the original root: the root no longer matches.
    let mut reversed = resources.clone();
    reversed.reverse();
    check(&with_resources(reversed), "is not the root digest");
    // Names escaping the model, absolute names.
    for bad in ["../etc/passwd", "/etc/passwd", "sub/../../x", "a//b"] {
        let mut list = resources.clone();
        list[0]["name"] = json!(bad);
        check(
            &with_resources(list),
            "not a relative path inside the model",
        );
    }
    // Duplicates.
    let mut list = resources.clone();
    list.push(resources[0].clone());
    check(&with_resources(list), "listed twice");
    // Wrong digest length, unknown method, hash and predicate.
    let mut list = resources.clone();
    list[0]["digest"] = json!("abcd");
    check(&with_resources(list), "malformed digest");
    let mut s = good.clone();
    s["predicate"]["serialization"]["method"] = json!("chunks");
    check(&s, "serialization method");
    let mut s = good.clone();
    s["predicate"]["serialization"]["hash_type"] = json!("md5");
    check(&s, "hash type");
    let mut s = good.clone();
    s["predicateType"] = json!("https://model_signing/signature/v9");
    check(&s, "predicate type");
    let mut s = good.clone();
    s["_type"] = json!("https://in-toto.io/Statement/v0.1");
    check(&s, "statement type");
    let mut s = good.clone();
    s["subject"] = json!([]);
    check(&s, "expected one subject");
}

#[test]
fn malformed_bundles_are_errors_not_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    model(&dir);
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let json_bytes = sign(&dir, &key, &SignOptions::default()).to_json();
    for cut in [0, 1, 10, json_bytes.len() / 2, json_bytes.len() - 1] {
        assert!(
            Bundle::from_slice(&json_bytes[..cut]).is_err(),
            "truncated at {cut}"
        );
    }
    let mut v: Value = serde_json::from_slice(&json_bytes).unwrap();
    v["extra"] = json!(1);
    assert!(
        Bundle::from_slice(&serde_json::to_vec(&v).unwrap())
            .unwrap_err()
            .to_string()
            .contains("unknown field")
    );
    let mut v: Value = serde_json::from_slice(&json_bytes).unwrap();
    v["mediaType"] = json!("application/vnd.dev.sigstore.bundle+json;version=0.2");
    assert!(
        Bundle::from_slice(&serde_json::to_vec(&v).unwrap())
            .unwrap_err()
            .to_string()
            .contains("media type")
    );
    // A payload that is not JSON, a signature that is not base64, a flipped signature byte.
    let mut bundle = Bundle::from_slice(&json_bytes).unwrap();
    bundle.dsse_envelope.payload = STANDARD.encode(b"not json");
    assert!(verify(&dir, &bundle, &key.public_key()).is_err());
    let mut bundle = Bundle::from_slice(&json_bytes).unwrap();
    bundle.dsse_envelope.signatures[0].sig = "***".into();
    assert!(verify(&dir, &bundle, &key.public_key()).is_err());
    let mut bundle = Bundle::from_slice(&json_bytes).unwrap();
    let mut sig = STANDARD
        .decode(&bundle.dsse_envelope.signatures[0].sig)
        .unwrap();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    bundle.dsse_envelope.signatures[0].sig = STANDARD.encode(sig);
    assert!(
        verify(&dir, &bundle, &key.public_key())
            .unwrap_err()
            .to_string()
            .contains("no signature on the envelope verifies")
    );
    // Deep nesting is refused by the JSON parser's depth limit.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(Bundle::from_slice(deep.as_bytes()).is_err());
}

#[test]
fn wrong_untrusted_and_revoked_keys_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    model(&dir);
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let other = PrivateKey::generate(Curve::P256).unwrap();
    let bundle = sign(&dir, &key, &SignOptions::default());
    let err = verify(&dir, &bundle, &other.public_key()).unwrap_err();
    assert!(err.to_string().contains("names key"), "{err}");
    // Without the hint, the signature itself decides.
    let mut anonymous = bundle.clone();
    anonymous
        .verification_material
        .public_key
        .as_mut()
        .unwrap()
        .hint = None;
    let err = verify(&dir, &anonymous, &other.public_key()).unwrap_err();
    assert!(
        err.to_string()
            .contains("no signature on the envelope verifies"),
        "{err}"
    );
    assert!(
        !verify(&dir, &anonymous, &key.public_key())
            .unwrap()
            .warnings
            .is_empty()
    );

    let registry = |revoked| {
        vec![
            TrustedKey {
                key: other.public_key(),
                principal: "bob".into(),
                revoked: false,
            },
            TrustedKey {
                key: key.public_key(),
                principal: "alice".into(),
                revoked,
            },
        ]
    };
    let keys = registry(false);
    let v = verify_model(&dir, &bundle, Trust::Keys(&keys), &VerifyOptions::default()).unwrap();
    assert!(
        matches!(v.signer, oms::SignerIdentity::Key { principal: Some(ref p), .. } if p == "alice")
    );
    let keys = registry(true);
    let err =
        verify_model(&dir, &bundle, Trust::Keys(&keys), &VerifyOptions::default()).unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
    let keys = vec![TrustedKey {
        key: other.public_key(),
        principal: "bob".into(),
        revoked: false,
    }];
    let err =
        verify_model(&dir, &bundle, Trust::Keys(&keys), &VerifyOptions::default()).unwrap_err();
    assert!(err.to_string().contains("not a trusted signer"), "{err}");
}

fn pki(name: &str) -> Vec<u8> {
    fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/pki")
            .join(name),
    )
    .unwrap()
}

fn sign_with_certificate(dir: &Path, leaf: &str) -> Bundle {
    let key = PrivateKey::from_pem(&pki(&format!("{leaf}.key"))).unwrap();
    let mut chain = certificates_from_pem(&pki(&format!("{leaf}.pem"))).unwrap();
    chain.extend(certificates_from_pem(&pki("intermediate.pem")).unwrap());
    let material = SigningMaterial::Certificate {
        signer: &key,
        chain,
    };
    sign_model(dir, &SignOptions::default(), material)
        .unwrap()
        .bundle
}

#[test]
fn certificate_method_checks_chain_validity_and_usage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    model(&dir);
    let roots = TrustRoots::from_pem(&pki("root.pem")).unwrap();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000); // 2027
    let verify_at = |bundle: &Bundle, roots: &TrustRoots, time| {
        verify_model(
            &dir,
            bundle,
            Trust::Certificates { roots, time },
            &VerifyOptions::default(),
        )
    };
    for leaf in ["leaf", "leaf-p384"] {
        let bundle = sign_with_certificate(&dir, leaf);
        let v = verify_at(&bundle, &roots, now).unwrap();
        assert!(matches!(v.signer, oms::SignerIdentity::Certificate(ref c) if c.chain_length == 2));
        // Another root does not vouch for it; a key verifier refuses a certificate bundle.
        let other = TrustRoots::from_pem(&pki("other-root.pem")).unwrap();
        assert!(
            verify_at(&bundle, &other, now)
                .unwrap_err()
                .to_string()
                .contains("does not chain")
        );
    }
    let expired = sign_with_certificate(&dir, "leaf-expired");
    assert!(
        verify_at(&expired, &roots, now)
            .unwrap_err()
            .to_string()
            .contains("does not chain")
    );
    let inside = SystemTime::UNIX_EPOCH + Duration::from_secs(1_590_000_000); // 2020-05
    let err = verify_at(&expired, &roots, inside).unwrap_err();
    // The leaf was valid then, but the intermediate was not yet.
    assert!(err.to_string().contains("does not chain"), "{err}");
    let future = sign_with_certificate(&dir, "leaf-future");
    assert!(verify_at(&future, &roots, now).is_err());
    let server = sign_with_certificate(&dir, "leaf-server");
    assert!(verify_at(&server, &roots, now).is_err());
    // A certificate that is not the signing key's is refused at signing time.
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let chain = certificates_from_pem(&pki("leaf.pem")).unwrap();
    let err = sign_model(
        &dir,
        &SignOptions::default(),
        SigningMaterial::Certificate {
            signer: &key,
            chain,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("not the private key's"), "{err}");
}

#[test]
fn single_files_and_ignored_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    model(&dir);
    let key = PrivateKey::generate(Curve::P384).unwrap();
    let file = dir.join("weights.bin");
    let signed = sign_model(&file, &SignOptions::default(), SigningMaterial::Key(&key)).unwrap();
    assert_eq!(signed.model_name, "weights.bin");
    let p = payload(&signed.bundle);
    assert_eq!(p["predicate"]["resources"][0]["name"], ".");
    verify(&file, &signed.bundle, &key.public_key()).unwrap();

    let mut options = SignOptions::default();
    options.walk.ignore_paths = vec!["sub/".into()];
    let bundle = sign(&dir, &key, &options);
    fs::write(
        dir.join("sub/new.txt"),
        b"not signed, but ignored by the signer",
    )
    .unwrap();
    let v = verify(&dir, &bundle, &key.public_key()).unwrap();
    assert!(v.ignored.contains(&"sub".to_string()));
}
