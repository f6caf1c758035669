//! Signing keys bound to principals, and signatures kept with model versions.
//!
//! Private keys are sealed at rest with a key derived from the server key (they must stay
//! usable, so they cannot be hashed); public keys are the trust list that verification reads,
//! revoked ones included so that a signature by a revoked key is refused by name. Every key
//! operation, and every use of a key, commits with its audit event.
//!
//! A model version's files are content-addressed with their SHA-256, which is exactly an OMS
//! `files`/`sha256` resource: the registry signs a version from its recorded digests without
//! reading the bytes again, and `model pull --verify` checks the bytes it wrote against that
//! bundle with the ordinary OMS verifier.

use mlsec_attest::dsse::TrustedKey;
use mlsec_attest::manifest::{Resource, root_digest};
use mlsec_attest::provenance;
use mlsec_attest::statement::{Statement, parse_oms_predicate};
use mlsec_attest::tree::component_order;
use mlsec_attest::{Bundle, Curve, Envelope, HashAlgorithm, PrivateKey, PublicKey, Serialization};
use mlsec_audit::Decision as AuditDecision;
use mlsec_policy::{Resource as PolicyResource, ResourceType};
use mlsec_store::{AttestationRow, SigningKeyRow};
use serde::Serialize;
use sha2::Digest as _;

use crate::error::CoreError;
use crate::registry::{model_resource, parse_version};
use crate::secrets;
use crate::service::{Credential, Mlsec, RequestCtx};

/// Longest key name accepted.
pub const MAX_KEY_NAME: usize = 128;
/// Largest provenance envelope accepted for a version.
pub const MAX_PROVENANCE_BYTES: usize = 4 << 20;

#[derive(Debug, Clone, Serialize)]
pub struct SigningKeyView {
    /// The key's hint: hex SHA-256 of its SPKI PEM, as OMS bundles name it.
    pub id: String,
    pub name: String,
    pub principal_id: String,
    pub curve: String,
    pub public_key_pem: String,
    /// Whether mlsec holds the private key (sealed) and can sign with it.
    pub can_sign: bool,
    pub created_at: i64,
    pub created_by: String,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
    pub revoke_reason: Option<String>,
}

fn key_view(k: &SigningKeyRow) -> SigningKeyView {
    SigningKeyView {
        id: k.id.clone(),
        name: k.name.clone(),
        principal_id: k.principal_id.clone(),
        curve: k.curve.clone(),
        public_key_pem: k.public_pem.clone(),
        can_sign: k.private_sealed.is_some(),
        created_at: k.created_at,
        created_by: k.created_by.clone(),
        revoked_at: k.revoked_at,
        revoked_by: k.revoked_by.clone(),
        revoke_reason: k.revoke_reason.clone(),
    }
}

/// Where a new key comes from.
pub enum KeySource {
    Generate(Curve),
    /// A PEM private key (PKCS#8 or SEC1): sealed and stored.
    PrivatePem(Vec<u8>),
    /// A PEM public key: registered as a trusted signer; signing happens elsewhere.
    PublicPem(Vec<u8>),
}

#[derive(Debug, Clone, Serialize)]
pub struct AttestationView {
    pub kind: String,
    pub digest: String,
    pub key_id: String,
    pub root_digest: String,
    pub created_at: i64,
    pub created_by: String,
    /// The bundle or envelope itself (JSON).
    pub document: serde_json::Value,
}

/// One signature on a version, checked now against the current trust list and files.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureCheck {
    pub kind: String,
    pub digest: String,
    pub key_id: String,
    pub principal_id: Option<String>,
    pub valid: bool,
    /// Why it does not count, when it does not.
    pub reason: Option<String>,
}

/// What approval gates read: whether a version carries valid signatures by trusted keys.
#[derive(Debug, Clone, Serialize)]
pub struct VersionVerification {
    pub name: String,
    pub version: String,
    /// The OMS root digest of the version's recorded files.
    pub root_digest: String,
    /// At least one valid OMS signature by a trusted, unrevoked key.
    pub signed: bool,
    /// Distinct principals with a valid OMS signature.
    pub signers: Vec<String>,
    pub provenance_verified: bool,
    pub signatures: Vec<SignatureCheck>,
}

fn principal_resource(id: &str) -> PolicyResource {
    PolicyResource::new(ResourceType::Principal, id)
}

fn invalid(e: mlsec_attest::AttestError) -> CoreError {
    CoreError::InvalidRequest(e.to_string())
}

fn check_key_name(name: &str) -> Result<(), CoreError> {
    // A name that looks like a key id could shadow another account's key in lookups.
    let looks_like_id = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
    let ok = !name.is_empty()
        && !looks_like_id
        && name.len() <= MAX_KEY_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CoreError::InvalidRequest(format!(
            "key name {name:?}: 1 to {MAX_KEY_NAME} of letters, digits, `-`, `_`, `.`, `@`, and not 64 hex digits (that is a key id)"
        )))
    }
}

/// The OMS resources of a version: its files with their recorded SHA-256, in OMS order.
fn version_resources(
    files: &[mlsec_store::ModelVersionFileRow],
) -> Result<Vec<Resource>, CoreError> {
    let mut resources = files
        .iter()
        .map(|f| {
            let hex_digest = f.sha256.strip_prefix("sha256:").unwrap_or(&f.sha256);
            let digest = hex::decode(hex_digest)
                .ok()
                .filter(|d| d.len() == 32)
                .ok_or_else(|| {
                    CoreError::Key(format!("stored digest of {} is malformed", f.path))
                })?;
            Ok(Resource {
                name: f.path.clone(),
                algorithm: HashAlgorithm::Sha256.name().to_owned(),
                digest,
            })
        })
        .collect::<Result<Vec<_>, CoreError>>()?;
    resources.sort_by(|a, b| component_order(&a.name, &b.name));
    Ok(resources)
}

impl Mlsec {
    fn trusted(rows: &[SigningKeyRow]) -> Vec<TrustedKey> {
        rows.iter()
            .filter_map(|r| {
                Some(TrustedKey {
                    key: PublicKey::from_pem(r.public_pem.as_bytes()).ok()?,
                    principal: r.principal_id.clone(),
                    revoked: r.revoked_at.is_some(),
                })
            })
            .collect()
    }

    /// Public keys of every registered signer, for verification. Revoked keys, and keys of
    /// accounts that are deleted or disabled, are marked revoked: listed so that a signature by
    /// one is refused by name, never counted.
    pub async fn trusted_signing_keys(&self) -> Result<Vec<TrustedKey>, CoreError> {
        let live: std::collections::HashSet<String> = self
            .store()
            .principals()
            .await?
            .into_iter()
            .filter(|p| p.deleted_at.is_none() && !p.disabled)
            .map(|p| p.id)
            .collect();
        let mut keys = Self::trusted(&self.store().signing_keys(None).await?);
        for k in &mut keys {
            if !live.contains(&k.principal) {
                k.revoked = true;
            }
        }
        Ok(keys)
    }

    pub async fn add_signing_key(
        &self,
        ctx: &RequestCtx,
        principal_id: &str,
        name: &str,
        source: KeySource,
    ) -> Result<SigningKeyView, CoreError> {
        self.authorize(ctx, "signing_key.write", &principal_resource(principal_id))
            .await?;
        check_key_name(name)?;
        self.live_principal(principal_id).await?;
        let (public, sealed, how) = match source {
            KeySource::Generate(curve) => {
                let key = PrivateKey::generate(curve).map_err(invalid)?;
                let sealed = secrets::seal(&self.inner.sealing_key, key.pkcs8_der());
                (key.public_key(), Some(sealed), "generated")
            }
            KeySource::PrivatePem(pem) => {
                let key = PrivateKey::from_pem(&pem).map_err(invalid)?;
                let sealed = secrets::seal(&self.inner.sealing_key, key.pkcs8_der());
                (
                    key.public_key(),
                    Some(sealed),
                    "imported with its private key",
                )
            }
            KeySource::PublicPem(pem) => (
                PublicKey::from_pem(&pem).map_err(invalid)?,
                None,
                "imported (public key only)",
            ),
        };
        let row = SigningKeyRow {
            id: public.hint(),
            name: name.to_owned(),
            principal_id: principal_id.to_owned(),
            curve: public.curve.name().to_owned(),
            public_pem: public.to_pem(),
            private_sealed: sealed,
            created_at: self.now(),
            created_by: ctx.principal.id.clone(),
            revoked_at: None,
            revoked_by: None,
            revoke_reason: None,
        };
        let mut w = self.store().begin_write().await?;
        w.insert_signing_key(&row).await?;
        w.commit(&[ctx.event(
            "signing_key.create",
            format!("signing_key:{}", row.id),
            AuditDecision::Allow,
            format!("{} key `{name}` for {principal_id} {how}", row.curve),
        )])
        .await?;
        Ok(key_view(&row))
    }

    /// Keys the caller may see (all for the local operator and admins; one's own otherwise).
    pub async fn list_signing_keys(
        &self,
        ctx: &RequestCtx,
        principal_id: Option<&str>,
    ) -> Result<Vec<SigningKeyView>, CoreError> {
        if let Some(p) = principal_id {
            self.authorize(ctx, "signing_key.read", &principal_resource(p))
                .await?;
        }
        let rows = self.store().signing_keys(principal_id).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            if principal_id.is_some()
                || self
                    .authorize_quiet(
                        ctx,
                        "signing_key.read",
                        &principal_resource(&r.principal_id),
                    )
                    .await
            {
                out.push(key_view(r));
            }
        }
        Ok(out)
    }

    async fn key_row(&self, id_or_name: &str) -> Result<SigningKeyRow, CoreError> {
        self.store()
            .signing_key(id_or_name)
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: "signing key",
                id: id_or_name.to_owned(),
            })
    }

    /// Revokes a key for good: signatures it made stop counting everywhere they are checked.
    pub async fn revoke_signing_key(
        &self,
        ctx: &RequestCtx,
        id_or_name: &str,
        reason: &str,
    ) -> Result<SigningKeyView, CoreError> {
        let row = self.key_row(id_or_name).await?;
        self.authorize(
            ctx,
            "signing_key.write",
            &principal_resource(&row.principal_id),
        )
        .await?;
        let now = self.now();
        let mut w = self.store().begin_write().await?;
        if !w
            .revoke_signing_key(&row.id, now, &ctx.principal.id, reason)
            .await?
        {
            return Err(CoreError::Conflict(format!(
                "key `{}` is already revoked",
                row.name
            )));
        }
        w.commit(&[ctx.event(
            "signing_key.revoke",
            format!("signing_key:{}", row.id),
            AuditDecision::Allow,
            format!(
                "key `{}` of {} revoked: {reason}",
                row.name, row.principal_id
            ),
        )])
        .await?;
        Ok(key_view(&self.key_row(&row.id).await?))
    }

    /// Unseals a key for signing. Only its principal (or the local operator) may use it.
    async fn usable_key(
        &self,
        ctx: &RequestCtx,
        id_or_name: &str,
    ) -> Result<(SigningKeyRow, PrivateKey), CoreError> {
        let row = self.key_row(id_or_name).await?;
        let own =
            row.principal_id == ctx.principal.id || matches!(ctx.credential, Credential::Local);
        if !own {
            return Err(CoreError::PermissionDenied(format!(
                "key `{}` belongs to {}; only they can sign with it",
                row.name, row.principal_id
            )));
        }
        if row.revoked_at.is_some() {
            return Err(CoreError::Conflict(format!(
                "key `{}` is revoked",
                row.name
            )));
        }
        let sealed = row.private_sealed.as_deref().ok_or_else(|| {
            CoreError::InvalidRequest(format!(
                "key `{}` is registered by its public half only; sign elsewhere and attach the bundle",
                row.name
            ))
        })?;
        let der = zeroize::Zeroizing::new(secrets::unseal(&self.inner.sealing_key, sealed)?);
        let key = PrivateKey::from_pkcs8_der(&der).map_err(|e| CoreError::Key(e.to_string()))?;
        Ok((row, key))
    }

    /// Signs a registered version's files (OMS v1.0, files/sha256, from the recorded digests)
    /// and stores the bundle with the version.
    pub async fn sign_model_version(
        &self,
        ctx: &RequestCtx,
        name: &str,
        version: &str,
        key: &str,
    ) -> Result<AttestationView, CoreError> {
        self.authorize(ctx, "model.write", &model_resource(name))
            .await?;
        let number = parse_version(version)?;
        let v = self.live_version(name, number).await?;
        let files = self.store().model_version_files(name, number).await?;
        let resources = version_resources(&files)?;
        let (key_row, private) = self.usable_key(ctx, key).await?;
        let root = hex::encode(root_digest(&resources));
        let params = mlsec_attest::manifest::SerializationParams {
            serialization: Serialization::Files,
            hash: HashAlgorithm::Sha256,
            allow_symlinks: false,
            // Only git paths the version has no file under: a signed `.gitattributes` must not
            // also be listed as ignored.
            ignore_paths: mlsec_attest::tree::GIT_PATHS
                .iter()
                .filter(|g| {
                    !resources
                        .iter()
                        .any(|r| mlsec_attest::tree::is_ignored(&r.name, &[g.to_string()]))
                })
                .map(|s| s.to_string())
                .collect(),
        };
        let bundle = mlsec_attest::oms::sign_manifest(
            &v.name,
            &params,
            &resources,
            mlsec_attest::SigningMaterial::Key(&private),
        )
        .map_err(|e| CoreError::Key(e.to_string()))?;
        let document = String::from_utf8(bundle.to_json()).expect("JSON is UTF-8");
        self.store_attestation(
            ctx,
            name,
            number,
            "oms",
            &key_row.id,
            &root,
            document,
            "signed",
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn store_attestation(
        &self,
        ctx: &RequestCtx,
        name: &str,
        version: i64,
        kind: &str,
        key_id: &str,
        root: &str,
        document: String,
        verb: &str,
    ) -> Result<AttestationView, CoreError> {
        let row = AttestationRow {
            name: name.to_owned(),
            version,
            kind: kind.to_owned(),
            digest: hex::encode(sha2::Sha256::digest(document.as_bytes())),
            key_id: key_id.to_owned(),
            root_digest: root.to_owned(),
            document,
            created_at: self.now(),
            created_by: ctx.principal.id.clone(),
        };
        let mut w = self.store().begin_write().await?;
        w.insert_attestation(&row).await?;
        w.commit(&[ctx.event(
            &format!("model.{kind}"),
            format!("model:{name}/{version}"),
            AuditDecision::Allow,
            format!("{kind} {verb} with key {key_id} (root sha256:{root})"),
        )])
        .await?;
        Ok(attestation_view(&row))
    }

    /// Attaches a signed provenance envelope to a version after checking it: signed by a
    /// trusted, unrevoked key, about this version's files.
    pub async fn attach_provenance(
        &self,
        ctx: &RequestCtx,
        name: &str,
        version: &str,
        envelope_json: &[u8],
    ) -> Result<AttestationView, CoreError> {
        self.authorize(ctx, "model.write", &model_resource(name))
            .await?;
        if envelope_json.len() > MAX_PROVENANCE_BYTES {
            return Err(CoreError::TooLarge {
                limit: MAX_PROVENANCE_BYTES as u64,
            });
        }
        let number = parse_version(version)?;
        self.live_version(name, number).await?;
        let files = self.store().model_version_files(name, number).await?;
        let root = hex::encode(root_digest(&version_resources(&files)?));
        let envelope: Envelope = serde_json::from_slice(envelope_json)
            .map_err(|e| CoreError::InvalidRequest(format!("not a DSSE envelope: {e}")))?;
        let keys = self.trusted_signing_keys().await?;
        let (_, _, report) = provenance::verify_trusted(&envelope, &keys, Some(&root))
            .map_err(|e| CoreError::InvalidRequest(format!("provenance refused: {e}")))?;
        let key_id = report.keys.first().cloned().ok_or_else(|| {
            CoreError::InvalidRequest("provenance refused: no trusted signature".into())
        })?;
        let document = String::from_utf8_lossy(envelope_json).into_owned();
        self.store_attestation(
            ctx,
            name,
            number,
            "provenance",
            &key_id,
            &root,
            document,
            "attached",
        )
        .await
    }

    /// Signed training provenance generated from what the registry knows about a version: the
    /// subject is its root digest; resolved dependencies are the run's pinned dataset versions
    /// (with their manifest digests), the code commit and the version's environment lock file;
    /// external parameters are the run's hyper-parameters. Stored with the version.
    pub async fn create_provenance(
        &self,
        ctx: &RequestCtx,
        name: &str,
        version: &str,
        key: &str,
    ) -> Result<AttestationView, CoreError> {
        use mlsec_attest::provenance::{BuildMetadata, ResourceDescriptor};
        self.authorize(ctx, "model.write", &model_resource(name))
            .await?;
        let number = parse_version(version)?;
        let v = self.model_version(ctx, name, &number.to_string()).await?;
        let files = self.store().model_version_files(name, number).await?;
        let root = hex::encode(root_digest(&version_resources(&files)?));
        let (key_row, private) = self.usable_key(ctx, key).await?;
        let mut deps = Vec::new();
        for input in v.lineage["inputs"].as_array().into_iter().flatten() {
            if let (Some(pinned), Some(digest)) = (
                input["mlsec_version"].as_str(),
                input["mlsec_digest"].as_str(),
            ) {
                let uri = Some(format!("mlsec:dataset/{pinned}"));
                deps.push(ResourceDescriptor::new(
                    pinned, uri, "sha256", digest, "dataset",
                ));
            }
        }
        if let Some(commit) = v.lineage["code_commit"].as_str() {
            deps.push(ResourceDescriptor::new(
                "source",
                None,
                "gitCommit",
                commit,
                "code",
            ));
        }
        if let Some(f) = crate::model_card::environment_file(&v.files) {
            deps.push(ResourceDescriptor::new(
                &f.path,
                None,
                "sha256",
                &f.sha256,
                "environment",
            ));
        }
        let (mut params, mut metadata) = (
            serde_json::Map::new(),
            BuildMetadata {
                invocation_id: v.run_id.clone(),
                started_on: None,
                finished_on: None,
            },
        );
        if let Some(run_id) = &v.run_id
            && let Ok(run) = self.run(ctx, run_id).await
        {
            for p in &run.params {
                params.insert(p.key.clone(), serde_json::Value::String(p.value.clone()));
            }
            metadata.started_on = Some(crate::model_card::rfc3339(run.start_time));
            metadata.finished_on = run.end_time.map(crate::model_card::rfc3339);
        }
        let builder = format!("mlsec:{}", ctx.principal.id);
        let prov = provenance::training(deps, params, &builder, metadata);
        let statement = provenance::statement(&v.name, &root, &prov);
        let envelope =
            provenance::sign(&statement, &private).map_err(|e| CoreError::Key(e.to_string()))?;
        let document = serde_json::to_string(&envelope).expect("serialises");
        self.store_attestation(
            ctx,
            name,
            number,
            "provenance",
            &key_row.id,
            &root,
            document,
            "generated",
        )
        .await
    }

    pub async fn model_version_attestations(
        &self,
        ctx: &RequestCtx,
        name: &str,
        version: &str,
    ) -> Result<Vec<AttestationView>, CoreError> {
        self.authorize(ctx, "model.read", &model_resource(name))
            .await?;
        let number = parse_version(version)?;
        self.live_version(name, number).await?;
        Ok(self
            .store()
            .attestations(name, number)
            .await?
            .iter()
            .map(attestation_view)
            .collect())
    }

    /// Checks every signature stored with a version against the current trust list (so a
    /// revocation counts at once) and the version's recorded files.
    pub async fn verify_model_version(
        &self,
        ctx: &RequestCtx,
        name: &str,
        version: &str,
    ) -> Result<VersionVerification, CoreError> {
        self.authorize(ctx, "model.read", &model_resource(name))
            .await?;
        let number = parse_version(version)?;
        self.live_version(name, number).await?;
        let files = self.store().model_version_files(name, number).await?;
        let resources = version_resources(&files)?;
        let root = hex::encode(root_digest(&resources));
        let keys = self.trusted_signing_keys().await?;
        let mut checks = Vec::new();
        let mut signers = std::collections::BTreeSet::new();
        let mut provenance_verified = false;
        for a in self.store().attestations(name, number).await? {
            let outcome = match a.kind.as_str() {
                "oms" => check_oms(&a.document, &keys, &resources),
                "provenance" => serde_json::from_str::<Envelope>(&a.document)
                    .map_err(|e| format!("not a DSSE envelope: {e}"))
                    .and_then(|env| {
                        provenance::verify_trusted(&env, &keys, Some(&root))
                            .map(|(_, _, report)| report.principals.join(", "))
                            .map_err(|e| e.to_string())
                    }),
                other => Err(format!("unknown attestation kind {other}")),
            };
            let (valid, principal, reason) = match outcome {
                Ok(p) => (true, Some(p), None),
                Err(reason) => (false, None, Some(reason)),
            };
            if valid {
                match a.kind.as_str() {
                    "oms" => {
                        signers.insert(principal.clone().unwrap_or_default());
                    }
                    _ => provenance_verified = true,
                }
            }
            checks.push(SignatureCheck {
                kind: a.kind,
                digest: a.digest,
                key_id: a.key_id,
                principal_id: principal,
                valid,
                reason,
            });
        }
        Ok(VersionVerification {
            name: name.to_owned(),
            version: number.to_string(),
            root_digest: root,
            signed: !signers.is_empty(),
            signers: signers.into_iter().collect(),
            provenance_verified,
            signatures: checks,
        })
    }
}

/// An OMS bundle stored with a version: signature by a trusted key, resources equal to the
/// version's files. Returns the signer's principal.
fn check_oms(document: &str, keys: &[TrustedKey], files: &[Resource]) -> Result<String, String> {
    let bundle = Bundle::from_slice(document.as_bytes()).map_err(|e| e.to_string())?;
    let hint = bundle
        .verification_material
        .public_key
        .as_ref()
        .and_then(|k| k.hint.clone())
        .ok_or("the bundle names no key")?;
    let key = keys
        .iter()
        .find(|k| k.key.hint() == hint)
        .ok_or_else(|| format!("key {hint} is not a registered signer"))?;
    let payload = bundle
        .dsse_envelope
        .verify_with(&key.key, mlsec_attest::dsse::IN_TOTO_PAYLOAD_TYPE)
        .map_err(|e| e.to_string())?;
    if key.revoked {
        return Err(format!("key {hint} of {} is revoked", key.principal));
    }
    let statement = Statement::from_slice(&payload).map_err(|e| e.to_string())?;
    let (_, root) = statement
        .single_sha256_subject()
        .map_err(|e| e.to_string())?;
    let (_, signed) = parse_oms_predicate(&statement.predicate).map_err(|e| e.to_string())?;
    if root_digest(&signed) != root {
        return Err("the subject is not the root digest of the listed files".into());
    }
    let mismatch = mlsec_attest::manifest::compare(&signed, files);
    if !mismatch.is_empty() {
        return Err(mismatch.to_string());
    }
    Ok(key.principal.clone())
}

fn attestation_view(a: &AttestationRow) -> AttestationView {
    AttestationView {
        kind: a.kind.clone(),
        digest: a.digest.clone(),
        key_id: a.key_id.clone(),
        root_digest: a.root_digest.clone(),
        created_at: a.created_at,
        created_by: a.created_by.clone(),
        document: serde_json::from_str(&a.document).unwrap_or(serde_json::Value::Null),
    }
}
