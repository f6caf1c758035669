//! `mlsec sign`, `mlsec verify` and `mlsec provenance`: OpenSSF Model Signing bundles for a
//! model directory or file, and signed SLSA provenance, with keys and certificates from files.
//!
//! Exit codes of `verify`: 0 verified; 1 verification failed (signature, trust, files, bundle);
//! 2 usage; 3 I/O.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use mlsec_attest::provenance::{self, BuildMetadata, ResourceDescriptor};
use mlsec_attest::x509::{TrustRoots, certificates_from_pem};
use mlsec_attest::{
    AttestError, Bundle, Envelope, HashAlgorithm, PrivateKey, PublicKey, Serialization,
    SignOptions, SigningMaterial, Trust, VerifyOptions, WalkOptions, sign_model, verify_model,
};
use serde_json::{Value, json};

use crate::commands::CliError;

#[derive(clap::Args, Clone)]
pub struct TreeArgs {
    /// Exclude a model-relative path (and everything under it). Repeatable.
    #[arg(long = "ignore-paths")]
    pub ignore_paths: Vec<String>,
    /// Also sign `.git`, `.gitattributes`, `.github` and `.gitignore` at the top level.
    #[arg(long)]
    pub no_ignore_git_paths: bool,
    /// Follow symbolic links that stay inside the model (hashed under the link's name).
    #[arg(long)]
    pub allow_symlinks: bool,
}

#[derive(clap::Args)]
pub struct SignArgs {
    /// The model directory or file.
    pub model: PathBuf,
    /// Private key (PEM, PKCS#8 or SEC1; P-256 or P-384).
    #[arg(long)]
    pub key: PathBuf,
    /// Sign with the certificate method: the signing certificate (PEM) for `--key`.
    #[arg(long)]
    pub certificate: Option<PathBuf>,
    /// Intermediate certificates to include in the bundle (PEM). Repeatable.
    #[arg(long = "certificate-chain")]
    pub certificate_chain: Vec<PathBuf>,
    /// Where to write the bundle. Inside the model it is excluded from what is signed.
    #[arg(long, default_value = "model.sig")]
    pub signature: PathBuf,
    /// Content hash: `sha256` (the interoperable default) or `blake3`.
    #[arg(long, default_value = "sha256")]
    pub hash: String,
    /// Hash files in shards of `--shard-size` bytes instead of whole.
    #[arg(long)]
    pub shards: bool,
    #[arg(long, default_value_t = mlsec_attest::hashing::DEFAULT_SHARD_SIZE)]
    pub shard_size: u64,
    #[command(flatten)]
    pub tree: TreeArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The model directory or file.
    pub model: PathBuf,
    /// The OMS bundle.
    #[arg(long)]
    pub signature: Option<PathBuf>,
    /// Trust this public key (PEM `PUBLIC KEY`).
    #[arg(long)]
    pub public_key: Option<PathBuf>,
    /// Trust certificates chaining to these roots (PEM). Repeatable.
    #[arg(long = "trust-root")]
    pub trust_roots: Vec<PathBuf>,
    /// Verification time for certificates (RFC 3339 or Unix seconds). Default: now.
    #[arg(long)]
    pub at: Option<String>,
    /// Accept files present in the model but not signed.
    #[arg(long)]
    pub ignore_unsigned_files: bool,
    /// A signed provenance envelope to check against the model (its subject must be the
    /// model's root digest), with `--provenance-key`.
    #[arg(long)]
    pub provenance: Option<PathBuf>,
    /// Public key of the provenance signer (default: `--public-key`).
    #[arg(long)]
    pub provenance_key: Option<PathBuf>,
    #[command(flatten)]
    pub tree: TreeArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Subcommand)]
pub enum ProvenanceCommand {
    /// Write a signed in-toto statement with an SLSA Provenance v1 predicate for a model:
    /// subject = the model's root digest, computed as `mlsec sign` computes it (files, SHA-256),
    /// so pass the same `--ignore-paths`, including a bundle kept inside the model.
    Create(ProvenanceArgs),
}

#[derive(clap::Args)]
pub struct ProvenanceArgs {
    pub model: PathBuf,
    #[arg(long)]
    pub key: PathBuf,
    /// Where to write the DSSE envelope.
    #[arg(long, short)]
    pub output: PathBuf,
    /// A dataset version the run read: `NAME=sha256:HEX` (or `NAME=HEX`). Repeatable.
    #[arg(long = "dataset")]
    pub datasets: Vec<String>,
    /// The base model's root digest: `NAME=sha256:HEX`.
    #[arg(long)]
    pub base_model: Option<String>,
    /// The code commit: `REPO_URI@COMMIT` or just the commit id.
    #[arg(long)]
    pub commit: Option<String>,
    /// The environment's lock or requirements file; its SHA-256 is recorded.
    #[arg(long)]
    pub lock: Option<PathBuf>,
    /// A hyper-parameter `KEY=VALUE` (values parsed as JSON when they parse). Repeatable.
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// The builder identity (who or what ran the training).
    #[arg(long, default_value = "mlsec-cli")]
    pub builder: String,
    /// The run id, recorded as the invocation id.
    #[arg(long)]
    pub run: Option<String>,
    #[command(flatten)]
    pub tree: TreeArgs,
}

/// Reads a small input file, refusing more than a bundle may hold.
fn read(path: &Path, what: &str) -> Result<Vec<u8>, CliError> {
    use std::io::Read;
    let limit = mlsec_attest::bundle::MAX_BUNDLE_BYTES as u64;
    let err = |e: std::io::Error| {
        CliError::Runtime(format!("cannot read {what} `{}`: {e}", path.display()))
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(err)?
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    if bytes.len() as u64 > limit {
        return Err(CliError::Usage(format!(
            "{what} `{}` is larger than {limit} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

fn usage(e: AttestError) -> CliError {
    CliError::Usage(e.to_string())
}

/// Ignore paths for the walk: the requested ones, plus the signature file when it lies inside
/// the model (a bundle cannot sign itself).
fn walk_options(model: &Path, tree: &TreeArgs, signature: Option<&Path>) -> WalkOptions {
    let mut ignore_paths = tree.ignore_paths.clone();
    if let (Some(sig), Ok(root)) = (signature, std::fs::canonicalize(model)) {
        // `model.sig` has the parent "": the working directory.
        let parent = match sig.parent() {
            Some(p) if p.as_os_str().is_empty() => Some(Path::new(".")),
            other => other,
        };
        let sig_abs = match parent.map(std::fs::canonicalize) {
            Some(Ok(dir)) => sig.file_name().map(|n| dir.join(n)),
            _ => None,
        };
        if let Some(rel) = sig_abs
            .as_deref()
            .and_then(|s| s.strip_prefix(&root).ok())
            .and_then(|rel| rel.to_str())
            .filter(|r| !r.is_empty())
        {
            ignore_paths.push(rel.to_owned());
        }
    }
    WalkOptions {
        ignore_paths,
        ignore_git_paths: !tree.no_ignore_git_paths,
        allow_symlinks: tree.allow_symlinks,
    }
}

fn attest_error(e: AttestError) -> CliError {
    match e {
        AttestError::Io { .. } => CliError::Runtime(e.to_string()),
        _ => CliError::Usage(e.to_string()),
    }
}

pub fn sign(args: SignArgs) -> Result<ExitCode, CliError> {
    let key = PrivateKey::from_pem(&read(&args.key, "the private key")?).map_err(usage)?;
    let hash = HashAlgorithm::parse(&args.hash).map_err(usage)?;
    let serialization = if args.shards {
        if args.shard_size == 0 {
            return Err(CliError::Usage("--shard-size must be positive".into()));
        }
        Serialization::Shards {
            shard_size: args.shard_size,
        }
    } else {
        Serialization::Files
    };
    let options = SignOptions {
        hash,
        serialization,
        walk: walk_options(&args.model, &args.tree, Some(&args.signature)),
        model_name: None,
    };
    let material = match &args.certificate {
        None => SigningMaterial::Key(&key),
        Some(cert) => {
            let mut chain =
                certificates_from_pem(&read(cert, "the certificate")?).map_err(usage)?;
            chain.truncate(1);
            for c in &args.certificate_chain {
                chain.extend(
                    certificates_from_pem(&read(c, "the certificate chain")?).map_err(usage)?,
                );
            }
            SigningMaterial::Certificate {
                signer: &key,
                chain,
            }
        }
    };
    let signed = sign_model(&args.model, &options, material).map_err(attest_error)?;
    std::fs::write(&args.signature, signed.bundle.to_json()).map_err(|e| {
        CliError::Runtime(format!("cannot write `{}`: {e}", args.signature.display()))
    })?;
    if args.json {
        let mut v = serde_json::to_value(&signed).expect("serialises");
        v["signature"] = json!(args.signature.display().to_string());
        v["key"] = json!(key.public_key().hint());
        println!("{}", serde_json::to_string_pretty(&v).expect("serialises"));
    } else {
        println!(
            "signed {} ({} files, {} resources, {} bytes): root sha256:{} → {}",
            signed.model_name,
            signed.files,
            signed.resources,
            signed.bytes,
            signed.root_digest,
            args.signature.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_time(text: &str) -> Result<SystemTime, CliError> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs));
    }
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            CliError::Usage(format!("--at {text:?}: not RFC 3339 or Unix seconds: {e}"))
        })?;
    Ok(t.into())
}

struct Failure(String);

fn print_outcome(json_out: bool, result: Result<Value, Failure>) -> ExitCode {
    match result {
        Ok(v) => {
            if json_out {
                println!("{}", serde_json::to_string_pretty(&v).expect("serialises"));
            } else {
                if let Some(w) = v["warnings"].as_array() {
                    for w in w {
                        eprintln!("warning: {}", w.as_str().unwrap_or_default());
                    }
                }
                println!("verified: {}", v["summary"].as_str().unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        Err(Failure(reason)) => {
            if json_out {
                println!("{}", json!({"verified": false, "error": reason}));
            } else {
                eprintln!("verification failed: {reason}");
            }
            ExitCode::from(1)
        }
    }
}

pub fn verify(args: VerifyArgs) -> Result<ExitCode, CliError> {
    if args.signature.is_none() && args.provenance.is_none() {
        return Err(CliError::Usage(
            "give --signature, --provenance or both".into(),
        ));
    }
    let public_key = match &args.public_key {
        Some(p) => Some(PublicKey::from_pem(&read(p, "the public key")?).map_err(usage)?),
        None => None,
    };
    let mut out = json!({"verified": true, "warnings": []});
    let mut summary = Vec::new();
    let mut root_digest = None;
    if let Some(sig_path) = &args.signature {
        let bytes = read(sig_path, "the signature")?;
        let options = VerifyOptions {
            walk: walk_options(&args.model, &args.tree, Some(sig_path)),
            ignore_unsigned_files: args.ignore_unsigned_files,
        };
        let roots;
        let trust = match (&public_key, args.trust_roots.is_empty()) {
            (Some(k), true) => Trust::Key(k),
            (None, false) => {
                let mut certs = Vec::new();
                for r in &args.trust_roots {
                    certs
                        .extend(certificates_from_pem(&read(r, "the trust root")?).map_err(usage)?);
                }
                roots = TrustRoots::from_der(&certs).map_err(usage)?;
                let time = match &args.at {
                    Some(t) => parse_time(t)?,
                    None => SystemTime::now(),
                };
                Trust::Certificates {
                    roots: &roots,
                    time,
                }
            }
            _ => {
                return Err(CliError::Usage(
                    "give exactly one of --public-key and --trust-root".into(),
                ));
            }
        };
        let verified = Bundle::from_slice(&bytes)
            .and_then(|bundle| verify_model(&args.model, &bundle, trust, &options));
        let verified = match verified {
            Ok(v) => v,
            Err(e @ AttestError::Io { .. }) => return Err(CliError::Runtime(e.to_string())),
            Err(e) => return Ok(print_outcome(args.json, Err(Failure(e.to_string())))),
        };
        summary.push(format!(
            "{} ({} files, {} resources) root sha256:{}",
            verified.model_name, verified.files, verified.resources, verified.root_digest
        ));
        root_digest = Some(verified.root_digest.clone());
        out["warnings"] = json!(verified.warnings);
        out["model"] = serde_json::to_value(&verified).expect("serialises");
    }
    if let Some(prov_path) = &args.provenance {
        let key_path = args
            .provenance_key
            .as_ref()
            .or(args.public_key.as_ref())
            .ok_or_else(|| {
                CliError::Usage("--provenance needs --provenance-key or --public-key".into())
            })?;
        let key = PublicKey::from_pem(&read(key_path, "the provenance key")?).map_err(usage)?;
        let root = match root_digest {
            Some(r) => r,
            None => {
                let walk = walk_options(&args.model, &args.tree, None);
                let (resources, ..) = mlsec_attest::oms::manifest(
                    &args.model,
                    HashAlgorithm::Sha256,
                    Serialization::Files,
                    &walk,
                )
                .map_err(attest_error)?;
                hex::encode(mlsec_attest::manifest::root_digest(&resources))
            }
        };
        let envelope: Result<Envelope, _> =
            serde_json::from_slice(&read(prov_path, "the provenance")?);
        let checked = envelope
            .map_err(|e| AttestError::Bundle(format!("not a DSSE envelope: {e}")))
            .and_then(|env| provenance::verify(&env, &key, Some(&root)));
        match checked {
            Ok((_, p)) => {
                summary.push(format!(
                    "provenance by {} with {} dependencies",
                    p.run_details.builder.id,
                    p.build_definition.resolved_dependencies.len()
                ));
                out["provenance"] = serde_json::to_value(&p).expect("serialises");
            }
            Err(e) => {
                return Ok(print_outcome(
                    args.json,
                    Err(Failure(format!("provenance: {e}"))),
                ));
            }
        }
    }
    out["summary"] = json!(summary.join("; "));
    Ok(print_outcome(args.json, Ok(out)))
}

fn digest_arg(text: &str, what: &str) -> Result<(String, String), CliError> {
    let (name, digest) = text
        .split_once('=')
        .ok_or_else(|| CliError::Usage(format!("{what} {text:?}: expected NAME=sha256:HEX")))?;
    let hex_digest = digest.strip_prefix("sha256:").unwrap_or(digest);
    if hex_digest.len() != 64 || !hex_digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CliError::Usage(format!(
            "{what} {text:?}: the digest is not 64 hex digits"
        )));
    }
    Ok((name.to_owned(), hex_digest.to_ascii_lowercase()))
}

pub fn provenance(command: ProvenanceCommand) -> Result<ExitCode, CliError> {
    let ProvenanceCommand::Create(args) = command;
    let key = PrivateKey::from_pem(&read(&args.key, "the private key")?).map_err(usage)?;
    let walk = walk_options(&args.model, &args.tree, Some(&args.output));
    let (resources, ..) = mlsec_attest::oms::manifest(
        &args.model,
        HashAlgorithm::Sha256,
        Serialization::Files,
        &walk,
    )
    .map_err(attest_error)?;
    let root = hex::encode(mlsec_attest::manifest::root_digest(&resources));
    let mut deps = Vec::new();
    for d in &args.datasets {
        let (name, digest) = digest_arg(d, "--dataset")?;
        deps.push(ResourceDescriptor::new(
            &name, None, "sha256", &digest, "dataset",
        ));
    }
    if let Some(b) = &args.base_model {
        let (name, digest) = digest_arg(b, "--base-model")?;
        deps.push(ResourceDescriptor::new(
            &name,
            None,
            "sha256",
            &digest,
            "base-model",
        ));
    }
    if let Some(c) = &args.commit {
        let (uri, commit) = match c.rsplit_once('@') {
            Some((uri, commit)) => (Some(uri.to_owned()), commit.to_owned()),
            None => (None, c.clone()),
        };
        deps.push(ResourceDescriptor::new(
            "source",
            uri,
            "gitCommit",
            &commit,
            "code",
        ));
    }
    if let Some(lock) = &args.lock {
        use sha2::Digest as _;
        let bytes = read(lock, "the lock file")?;
        let name = lock
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("lock")
            .to_owned();
        let digest = hex::encode(sha2::Sha256::digest(&bytes));
        deps.push(ResourceDescriptor::new(
            &name,
            None,
            "sha256",
            &digest,
            "environment",
        ));
    }
    let mut params = serde_json::Map::new();
    for p in &args.params {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("--param {p:?}: expected KEY=VALUE")))?;
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
        params.insert(k.to_owned(), value);
    }
    let prov = provenance::training(
        deps,
        params,
        &args.builder,
        BuildMetadata {
            invocation_id: args.run.clone(),
            started_on: None,
            finished_on: None,
        },
    );
    let name = mlsec_attest::oms::model_name(&args.model);
    let statement = provenance::statement(&name, &root, &prov);
    let envelope = provenance::sign(&statement, &key).map_err(usage)?;
    std::fs::write(
        &args.output,
        serde_json::to_vec_pretty(&envelope).expect("serialises"),
    )
    .map_err(|e| CliError::Runtime(format!("cannot write `{}`: {e}", args.output.display())))?;
    println!(
        "provenance for {name} (root sha256:{root}) → {}",
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
