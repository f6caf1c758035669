//! Signing and verifying a model directory or file as OpenSSF Model Signing v1.0 specifies:
//! walk → hash (files or shards, SHA-256 or BLAKE3) → in-toto statement with the root digest →
//! DSSE envelope → Sigstore bundle v0.3.

use std::collections::HashSet;
use std::path::Path;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::bundle::{
    BUNDLE_MEDIA_TYPE, Bundle, CertificateChain, PublicKeyMaterial, RawCertificate,
    VerificationMaterial,
};
use crate::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE, Signer, TrustedKey, pae};
use crate::error::{AttestError, Result};
use crate::hashing::{HashAlgorithm, hash_tree};
use crate::keys::PublicKey;
use crate::manifest::{Resource, Serialization, SerializationParams, compare, root_digest};
use crate::statement::{
    OMS_PREDICATE_TYPE, Statement, Subject, oms_predicate, parse_oms_predicate, split_resource_name,
};
use crate::tree::{WalkOptions, normalize_ignore_path, walk};
use crate::x509::{CertificateSigner, TrustRoots, verify_certificate_signature};

#[derive(Debug, Clone)]
pub struct SignOptions {
    pub hash: HashAlgorithm,
    pub serialization: Serialization,
    pub walk: WalkOptions,
    /// The subject name; by default the model's file or directory name.
    pub model_name: Option<String>,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            hash: HashAlgorithm::Sha256,
            serialization: Serialization::Files,
            walk: WalkOptions {
                ignore_git_paths: true,
                ..WalkOptions::default()
            },
            model_name: None,
        }
    }
}

/// How the bundle names its signer.
pub enum SigningMaterial<'a> {
    /// The key method: the bundle carries the key's hint.
    Key(&'a dyn Signer),
    /// The certificate method: `chain` is the signing certificate (DER) first, then the
    /// intermediates to include.
    Certificate {
        signer: &'a dyn Signer,
        chain: Vec<Vec<u8>>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Signed {
    #[serde(skip)]
    pub bundle: Bundle,
    pub model_name: String,
    pub root_digest: String,
    pub files: usize,
    pub resources: usize,
    pub bytes: u64,
    pub ignored: Vec<String>,
}

pub fn model_name(model: &Path) -> String {
    match model.file_name().and_then(|n| n.to_str()) {
        Some(n) if !n.is_empty() && n != ".." => n.to_owned(),
        _ => std::fs::canonicalize(model)
            .ok()
            .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .unwrap_or_else(|| "model".into()),
    }
}

/// Hashes `model` as `options` say and returns the resources with the walk's exclusions.
pub fn manifest(
    model: &Path,
    hash: HashAlgorithm,
    serialization: Serialization,
    walk_options: &WalkOptions,
) -> Result<(Vec<Resource>, Vec<String>, usize, u64)> {
    let tree = walk(model, walk_options)?;
    let resources = hash_tree(&tree, serialization, hash)?;
    let bytes = tree.files.iter().map(|f| f.size).sum();
    Ok((resources, tree.ignored, tree.files.len(), bytes))
}

pub fn sign_model(
    model: &Path,
    options: &SignOptions,
    material: SigningMaterial<'_>,
) -> Result<Signed> {
    if let SigningMaterial::Certificate { signer, chain } = &material {
        // Refuse a certificate that is not the signer's before hashing anything.
        check_pairing(*signer, chain)?;
    }
    let (resources, ignored, files, bytes) =
        manifest(model, options.hash, options.serialization, &options.walk)?;
    let name = options
        .model_name
        .clone()
        .unwrap_or_else(|| model_name(model));
    let params = SerializationParams {
        serialization: options.serialization,
        hash: options.hash,
        allow_symlinks: options.walk.allow_symlinks,
        ignore_paths: ignored.clone(),
    };
    let bundle = sign_manifest(&name, &params, &resources, material)?;
    Ok(Signed {
        bundle,
        model_name: name,
        root_digest: hex::encode(root_digest(&resources)),
        files,
        resources: resources.len(),
        bytes,
        ignored,
    })
}

fn check_pairing(signer: &dyn Signer, chain: &[Vec<u8>]) -> Result<()> {
    let probe = b"mlsec certificate/key pairing check";
    let sig = signer.sign(probe)?;
    let leaf = chain
        .first()
        .ok_or_else(|| AttestError::Certificate("no signing certificate".into()))?;
    if !crate::x509::leaf_signature_verifies(leaf, probe, &sig)? {
        return Err(AttestError::Certificate(
            "the signing certificate's public key is not the private key's".into(),
        ));
    }
    Ok(())
}

/// Signs already-hashed resources into an OMS bundle: the statement (subject = root digest),
/// its DSSE envelope and the verification material. `sign_model` hashes a tree first; the
/// registry passes a version's recorded digests.
pub fn sign_manifest(
    model_name: &str,
    params: &SerializationParams,
    resources: &[Resource],
    material: SigningMaterial<'_>,
) -> Result<Bundle> {
    let statement = Statement::new(
        vec![Subject {
            name: model_name.to_owned(),
            digest: [("sha256".to_owned(), hex::encode(root_digest(resources)))].into(),
            annotations: None,
        }],
        OMS_PREDICATE_TYPE,
        oms_predicate(params, resources),
    );
    let payload = serde_json::to_vec_pretty(&statement).expect("statements serialise");
    let mut envelope = Envelope::new(IN_TOTO_PAYLOAD_TYPE, &payload);
    let (signer, verification_material) = match material {
        SigningMaterial::Key(s) => (
            s,
            VerificationMaterial {
                public_key: Some(PublicKeyMaterial {
                    hint: Some(s.public_key().hint()),
                    raw_bytes: None,
                    key_details: None,
                }),
                x509_certificate_chain: None,
                tlog_entries: Vec::new(),
            },
        ),
        SigningMaterial::Certificate { signer, chain } => (
            signer,
            VerificationMaterial {
                public_key: None,
                x509_certificate_chain: Some(CertificateChain {
                    certificates: chain
                        .iter()
                        .map(|c| RawCertificate {
                            raw_bytes: STANDARD.encode(c),
                        })
                        .collect(),
                }),
                tlog_entries: Vec::new(),
            },
        ),
    };
    // The reference writes an empty key id and finds the key through the hint.
    envelope.sign(signer, true)?;
    Ok(Bundle {
        media_type: BUNDLE_MEDIA_TYPE.into(),
        verification_material,
        dsse_envelope: envelope,
    })
}

/// Whose signature to accept.
pub enum Trust<'a> {
    /// Exactly this key.
    Key(&'a PublicKey),
    /// Any unrevoked key of the registry; the bundle's hint picks it.
    Keys(&'a [TrustedKey]),
    /// A certificate chaining to one of the roots, valid at `time`.
    Certificates {
        roots: &'a TrustRoots,
        time: SystemTime,
    },
}

#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    pub walk: WalkOptions,
    /// Hash only the signed files: files present but not signed are then not an error.
    pub ignore_unsigned_files: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum SignerIdentity {
    Key {
        hint: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        principal: Option<String>,
    },
    Certificate(CertificateSigner),
}

#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub model_name: String,
    pub root_digest: String,
    pub serialization: SerializationParams,
    pub resources: usize,
    pub files: usize,
    pub bytes: u64,
    pub signer: SignerIdentity,
    /// Paths not checked: the verifier's exclusions plus those recorded at signing.
    pub ignored: Vec<String>,
    pub warnings: Vec<String>,
}

/// Checks the envelope's signature against `trust`; returns the payload and the signer.
fn verify_signature(
    bundle: &Bundle,
    trust: &Trust<'_>,
    warnings: &mut Vec<String>,
) -> Result<(Vec<u8>, SignerIdentity)> {
    let envelope = &bundle.dsse_envelope;
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(AttestError::Bundle(format!(
            "payload type is {:?}, expected {IN_TOTO_PAYLOAD_TYPE}",
            envelope.payload_type
        )));
    }
    let material = &bundle.verification_material;
    let hint = material
        .public_key
        .as_ref()
        .and_then(|k| k.hint.clone())
        .filter(|h| !h.is_empty());
    match trust {
        Trust::Key(key) => {
            if material.public_key.is_none() {
                return Err(AttestError::Signature(
                    "the bundle was signed with a certificate; verify it with trust roots".into(),
                ));
            }
            match &hint {
                Some(h) if *h != key.hint() => {
                    return Err(AttestError::Signature(format!(
                        "the bundle names key {h}, not the given key {}",
                        key.hint()
                    )));
                }
                None => warnings.push(
                    "the bundle does not name its key (an older signer); checked against the given key".into(),
                ),
                _ => {}
            }
            let payload = envelope.verify_with(key, IN_TOTO_PAYLOAD_TYPE)?;
            Ok((
                payload,
                SignerIdentity::Key {
                    hint: key.hint(),
                    principal: None,
                },
            ))
        }
        Trust::Keys(keys) => {
            if material.public_key.is_none() {
                return Err(AttestError::Signature(
                    "the bundle was signed with a certificate; verify it with trust roots".into(),
                ));
            }
            let candidates: Vec<&TrustedKey> = keys
                .iter()
                .filter(|k| hint.as_ref().is_none_or(|h| *h == k.key.hint()))
                .collect();
            if candidates.is_empty() {
                return Err(AttestError::Signature(format!(
                    "the bundle's key {} is not a trusted signer",
                    hint.as_deref().unwrap_or("(unnamed)")
                )));
            }
            for k in candidates {
                if let Ok(payload) = envelope.verify_with(&k.key, IN_TOTO_PAYLOAD_TYPE) {
                    if k.revoked {
                        return Err(AttestError::Signature(format!(
                            "signed by key {} of {}, which is revoked",
                            k.key.hint(),
                            k.principal
                        )));
                    }
                    return Ok((
                        payload,
                        SignerIdentity::Key {
                            hint: k.key.hint(),
                            principal: Some(k.principal.clone()),
                        },
                    ));
                }
            }
            Err(AttestError::Signature(
                "the signature does not verify with any trusted key".into(),
            ))
        }
        Trust::Certificates { roots, time } => {
            if material.x509_certificate_chain.is_none() {
                return Err(AttestError::Signature(
                    "the bundle was signed with a key; verify it with the public key".into(),
                ));
            }
            let chain = bundle.certificates()?;
            let payload = envelope.payload_bytes()?;
            let message = pae(IN_TOTO_PAYLOAD_TYPE, &payload);
            let mut last = None;
            for s in &envelope.signatures {
                let sig = STANDARD
                    .decode(&s.sig)
                    .map_err(|e| AttestError::Bundle(format!("a signature is not base64: {e}")))?;
                match verify_certificate_signature(&chain, roots, *time, &message, &sig) {
                    Ok(signer) => return Ok((payload, SignerIdentity::Certificate(signer))),
                    Err(e) => last = Some(e),
                }
            }
            Err(last
                .unwrap_or_else(|| AttestError::Signature("the envelope has no signature".into())))
        }
    }
}

/// Verifies `model` against `bundle` following OMS v1.0: signature by a trusted signer,
/// statement and predicate well formed, root digest consistent with the resources, and every
/// file on disk (less exclusions) exactly the signed set with the signed digests.
pub fn verify_model(
    model: &Path,
    bundle: &Bundle,
    trust: Trust<'_>,
    options: &VerifyOptions,
) -> Result<Verified> {
    let mut warnings = Vec::new();
    let (payload, signer) = verify_signature(bundle, &trust, &mut warnings)?;
    let statement = Statement::from_slice(&payload)?;
    if statement.predicate_type != OMS_PREDICATE_TYPE {
        return Err(AttestError::Bundle(format!(
            "predicate type is {:?}, expected {OMS_PREDICATE_TYPE}",
            statement.predicate_type
        )));
    }
    let (subject, root) = statement.single_sha256_subject()?;
    let (params, signed) = parse_oms_predicate(&statement.predicate)?;
    if root_digest(&signed) != root {
        return Err(AttestError::Bundle(format!(
            "the subject digest {} is not the root digest of the listed resources {}",
            hex::encode(root),
            hex::encode(root_digest(&signed))
        )));
    }
    let mut walk_options = options.walk.clone();
    for p in &params.ignore_paths {
        match normalize_ignore_path(p) {
            Ok(p) => walk_options.ignore_paths.push(p),
            Err(_) => warnings.push(format!(
                "signed ignore path {p:?} is outside the model; not used"
            )),
        }
    }
    // What the signer signed is always checked: an exclusion (the verifier's git defaults, a
    // requested path) that covers a signed resource is dropped, with a warning.
    if walk_options.ignore_git_paths {
        walk_options.ignore_git_paths = false;
        walk_options
            .ignore_paths
            .extend(crate::tree::GIT_PATHS.iter().map(|s| s.to_string()));
    }
    let signed_files: Vec<&str> = signed
        .iter()
        .filter_map(|r| {
            split_resource_name(&r.name, params.serialization)
                .ok()
                .map(|(f, _)| f)
        })
        .collect();
    walk_options.ignore_paths.retain(|p| {
        let covers = signed_files
            .iter()
            .any(|f| crate::tree::is_ignored(f, std::slice::from_ref(p)));
        if covers && !crate::tree::GIT_PATHS.contains(&p.as_str()) {
            warnings.push(format!(
                "ignore path {p:?} covers signed files; they are checked"
            ));
        }
        !covers
    });
    let (mut local, ignored, files, bytes) =
        manifest(model, params.hash, params.serialization, &walk_options)?;
    if options.ignore_unsigned_files {
        let signed_files: HashSet<&str> = signed
            .iter()
            .filter_map(|r| {
                split_resource_name(&r.name, params.serialization)
                    .ok()
                    .map(|(f, _)| f)
            })
            .collect();
        local.retain(|r| {
            split_resource_name(&r.name, params.serialization)
                .map(|(f, _)| signed_files.contains(f))
                .unwrap_or(false)
        });
    }
    let mismatch = compare(&signed, &local);
    if !mismatch.is_empty() {
        return Err(AttestError::Mismatch(mismatch));
    }
    Ok(Verified {
        model_name: subject.name.clone(),
        root_digest: hex::encode(root),
        serialization: params,
        resources: signed.len(),
        files,
        bytes,
        signer,
        ignored,
        warnings,
    })
}
