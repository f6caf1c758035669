//! `mlsec run`, `mlsec model` and `mlsec lineage`: tracked runs, the model registry and the
//! lineage graph, on the local data directory as the local operator. Every change is audited.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use mlsec_core::data::manifest;
use mlsec_core::{
    Direction, LineageStart, Mlsec, ModelVersionView, RequestCtx, RunSearch, StagedFile,
    VersionSource, render_tree,
};
use serde::Serialize;

use crate::commands::{CliError, open_existing};
use crate::config::Config;

type CmdResult = Result<ExitCode, CliError>;

#[derive(Subcommand)]
pub enum RunCommand {
    /// List runs of an experiment, newest first, optionally filtered (MLflow syntax).
    List {
        /// Experiment name.
        #[arg(long)]
        experiment: String,
        /// e.g. `metrics.acc > 0.9 and params.lr = '0.01'`.
        #[arg(long, default_value = "")]
        filter: String,
        /// e.g. `metrics.acc DESC` (repeatable).
        #[arg(long)]
        order_by: Vec<String>,
        #[arg(long, default_value_t = 100)]
        max: i64,
        #[arg(long)]
        json: bool,
    },
    /// Show a run: params, latest metrics, tags and dataset inputs with their pinned versions.
    Show {
        run_id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum ModelCommand {
    /// List registered models with their aliases and newest version.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a version (`NAME/N` or `NAME@ALIAS`): files with digests and scan results.
    ///
    /// Exit codes: 0 the version may be deployed; 1 it is quarantined.
    Show {
        version: String,
        #[arg(long)]
        json: bool,
    },
    /// Register local files (a file or a directory) as a new version: every file is stored,
    /// hashed and scanned; a critical finding quarantines the version.
    ///
    /// Exit codes: 0 registered; 1 registered but quarantined.
    Register {
        name: String,
        path: PathBuf,
        /// The run that produced the files.
        #[arg(long)]
        run: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// Sign the new version with this registered key (as `model sign` does). A quarantined
        /// version is not signed.
        #[arg(long)]
        sign_key: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Sign a version's files (OpenSSF Model Signing bundle from the recorded digests) with a
    /// registered key, and keep the bundle with the version.
    Sign {
        version: String,
        /// Key name or id (`mlsec key list`).
        #[arg(long)]
        key: String,
    },
    /// Generate signed training provenance (SLSA Provenance v1) for a version from what the
    /// registry knows (pinned dataset versions, code commit, environment lock, run parameters)
    /// and keep it with the version.
    Provenance {
        version: String,
        #[arg(long)]
        key: String,
        /// Also write the envelope here.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Attach a signed provenance envelope (`mlsec provenance create`) to a version; it must be
    /// signed by a registered key and be about this version's files.
    AttachProvenance { version: String, file: PathBuf },
    /// Check the signatures and provenance kept with a version against the registered signers.
    ///
    /// Exit codes: 0 signed by a trusted, unrevoked key; 1 not.
    Verify {
        version: String,
        #[arg(long)]
        json: bool,
    },
    /// Download a version's files into a directory; with `--verify`, check the bytes written
    /// against the version's OMS signature by a registered, unrevoked key before exiting 0.
    ///
    /// Exit codes: 0 written (and verified); 1 verification failed (files are left for
    /// inspection); 3 I/O.
    Pull {
        version: String,
        #[arg(long, short)]
        output: PathBuf,
        #[arg(long)]
        verify: bool,
    },
    /// CycloneDX 1.6 ML-BOM of a version: the model with its files' hashes and model card,
    /// its datasets, the training environment's packages, the dependency graph.
    Bom {
        version: String,
        /// Lock or requirements file of the training environment (default: the one among the
        /// version's files: uv.lock, poetry.lock, requirements.txt, conda.yaml).
        #[arg(long)]
        lock: Option<PathBuf>,
        /// Card fields a maintainer edits (TOML: summary, task, intended_uses, limitations, …).
        #[arg(long)]
        fields: Option<PathBuf>,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Model card of a version (Markdown or self-contained HTML) from registry facts and the
    /// maintainer's card fields.
    Card {
        version: String,
        #[arg(long, default_value = "markdown")]
        format: String,
        #[arg(long)]
        fields: Option<PathBuf>,
        #[arg(long)]
        lock: Option<PathBuf>,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Point an alias at a version, or remove it with `--delete`.
    Alias {
        name: String,
        alias: String,
        version: Option<String>,
        #[arg(long)]
        delete: bool,
    },
}

fn print_json(value: &impl Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("views serialise")
    );
}

async fn close(core: Mlsec) {
    let _ = core.store().checkpoint_now().await;
    core.store().close().await;
}

async fn with_core<F, Fut>(config: &Config, f: F) -> CmdResult
where
    F: FnOnce(Mlsec, RequestCtx) -> Fut,
    Fut: std::future::Future<Output = CmdResult>,
{
    let core = open_existing(config).await?;
    let result = f(core.clone(), RequestCtx::local()).await;
    close(core).await;
    result
}

pub async fn run(config: &Config, command: RunCommand) -> CmdResult {
    with_core(config, |core, ctx| async move {
        match command {
            RunCommand::List {
                experiment,
                filter,
                order_by,
                max,
                json,
            } => {
                let exp = core.experiment_by_name(&ctx, &experiment).await?;
                let (runs, _) = core
                    .search_runs(
                        &ctx,
                        &RunSearch {
                            experiment_ids: vec![exp.experiment_id],
                            filter,
                            order_by,
                            max_results: max,
                            ..Default::default()
                        },
                    )
                    .await?;
                if json {
                    print_json(&runs);
                } else {
                    for r in &runs {
                        let metrics: Vec<String> = r
                            .metrics
                            .iter()
                            .take(4)
                            .map(|m| format!("{}={:.4}", m.key, m.value))
                            .collect();
                        println!(
                            "{}  {:<9} {:<24} {}",
                            r.run_id,
                            r.status,
                            r.run_name,
                            metrics.join(" ")
                        );
                    }
                }
            }
            RunCommand::Show { run_id, json } => {
                let r = core.run(&ctx, &run_id).await?;
                if json {
                    print_json(&r);
                } else {
                    println!("run {}  `{}` in `{}`", r.run_id, r.run_name, r.experiment);
                    println!("status {}  by {}", r.status, r.user_id);
                    for p in &r.params {
                        println!("param  {} = {}", p.key, p.value);
                    }
                    for m in &r.metrics {
                        println!("metric {} = {} (step {})", m.key, m.value, m.step);
                    }
                    for i in &r.inputs {
                        println!(
                            "input  {}  {}",
                            i.name,
                            match (&i.mlsec_version, &i.mlsec_digest) {
                                (Some(v), Some(d)) => format!("pinned to {v} {d}"),
                                _ => format!("not pinned (client digest {})", i.digest),
                            }
                        );
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
    .await
}

fn print_version(v: &ModelVersionView) {
    println!(
        "{} version {}  {}{}",
        v.name,
        v.version,
        v.digest,
        if v.quarantined { "  QUARANTINED" } else { "" }
    );
    println!(
        "source {}  run {}",
        v.source,
        v.run_id.as_deref().unwrap_or("-")
    );
    println!("scan   {}", v.status_message);
    if !v.aliases.is_empty() {
        println!("aliases {}", v.aliases.join(", "));
    }
    for f in &v.files {
        println!(
            "  {}  {:>10}  {}{}",
            f.sha256,
            f.size,
            f.path,
            f.scan_severity
                .as_deref()
                .map(|s| format!("  [{s}]"))
                .unwrap_or_default()
        );
    }
}

fn verdict(v: &ModelVersionView) -> ExitCode {
    if v.quarantined {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

pub async fn model(config: &Config, command: ModelCommand) -> CmdResult {
    with_core(config, |core, ctx| async move {
        match command {
            ModelCommand::List { json } => {
                let (models, _) = core.search_registered_models(&ctx, "", 1000, None).await?;
                if json {
                    print_json(&models);
                } else {
                    for m in &models {
                        let aliases: Vec<String> = m
                            .aliases
                            .iter()
                            .map(|a| format!("@{}→{}", a.alias, a.version))
                            .collect();
                        println!(
                            "{}  latest {}  {}",
                            m.name,
                            m.latest_versions
                                .first()
                                .map(|v| v.version.as_str())
                                .unwrap_or("-"),
                            aliases.join(" ")
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            ModelCommand::Sign { version, key } => {
                let v = resolve(&core, &ctx, &version).await?;
                let a = core
                    .sign_model_version(&ctx, &v.name, &v.version, &key)
                    .await?;
                println!(
                    "signed {}/{} with key {}: root sha256:{}",
                    v.name, v.version, a.key_id, a.root_digest
                );
                Ok(ExitCode::SUCCESS)
            }
            ModelCommand::Provenance {
                version,
                key,
                output,
            } => {
                let v = resolve(&core, &ctx, &version).await?;
                let a = core
                    .create_provenance(&ctx, &v.name, &v.version, &key)
                    .await?;
                if let Some(path) = output {
                    write_out(
                        Some(&path),
                        &serde_json::to_string_pretty(&a.document).expect("serialises"),
                    )?;
                }
                println!(
                    "provenance for {}/{} signed with key {} (root sha256:{})",
                    v.name, v.version, a.key_id, a.root_digest
                );
                Ok(ExitCode::SUCCESS)
            }
            ModelCommand::AttachProvenance { version, file } => {
                let v = resolve(&core, &ctx, &version).await?;
                let bytes = std::fs::read(&file).map_err(|e| {
                    CliError::Runtime(format!("cannot read `{}`: {e}", file.display()))
                })?;
                let a = core
                    .attach_provenance(&ctx, &v.name, &v.version, &bytes)
                    .await?;
                println!(
                    "provenance attached to {}/{} (signed by key {})",
                    v.name, v.version, a.key_id
                );
                Ok(ExitCode::SUCCESS)
            }
            ModelCommand::Verify { version, json } => {
                let v = resolve(&core, &ctx, &version).await?;
                let report = core.verify_model_version(&ctx, &v.name, &v.version).await?;
                if json {
                    print_json(&report);
                } else {
                    for s in &report.signatures {
                        println!(
                            "{} {} key {} {}",
                            if s.valid { "valid  " } else { "INVALID" },
                            s.kind,
                            s.key_id,
                            s.principal_id
                                .as_deref()
                                .or(s.reason.as_deref())
                                .unwrap_or("")
                        );
                    }
                    println!(
                        "{}/{}: {}",
                        report.name,
                        report.version,
                        if report.signed {
                            format!("signed by {}", report.signers.join(", "))
                        } else {
                            "not signed by a trusted key".into()
                        }
                    );
                }
                Ok(ExitCode::from(if report.signed { 0 } else { 1 }))
            }
            ModelCommand::Pull {
                version,
                output,
                verify,
            } => {
                let v = resolve(&core, &ctx, &version).await?;
                // Written into a fresh directory beside the output, moved into place only when
                // complete (and verified): nothing half-written or unverified at `output`, and
                // no file written through a link that was already there.
                if output.exists()
                    && std::fs::read_dir(&output)
                        .map(|mut d| d.next().is_some())
                        .unwrap_or(true)
                {
                    return Err(CliError::Usage(format!(
                        "`{}` exists and is not an empty directory",
                        output.display()
                    )));
                }
                let staging = output.with_file_name(format!(
                    ".{}.partial-{}",
                    output
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("pull"),
                    std::process::id()
                ));
                std::fs::create_dir(&staging).map_err(|e| {
                    CliError::Runtime(format!("cannot create `{}`: {e}", staging.display()))
                })?;
                pull(&core, &ctx, &v, &staging).await?;
                let code = if verify {
                    verify_pulled(&core, &ctx, &v, &staging, &output).await?
                } else {
                    println!(
                        "{}/{}: {} files → {}",
                        v.name,
                        v.version,
                        v.files.len(),
                        output.display()
                    );
                    ExitCode::SUCCESS
                };
                if code == ExitCode::SUCCESS {
                    let _ = std::fs::remove_dir(&output);
                    std::fs::rename(&staging, &output).map_err(|e| {
                        CliError::Runtime(format!("cannot move into `{}`: {e}", output.display()))
                    })?;
                } else {
                    eprintln!("the unverified files are left in `{}`", staging.display());
                }
                Ok(code)
            }
            ModelCommand::Bom {
                version,
                lock,
                fields,
                output,
            } => {
                let facts =
                    facts(&core, &ctx, &version, fields.as_deref(), lock.as_deref()).await?;
                let serial = uuid::Uuid::new_v4().hyphenated().to_string();
                let now = time::OffsetDateTime::now_utc()
                    .replace_nanosecond(0)
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                let bom = mlsec_core::attest::mlbom::cyclonedx(
                    &facts,
                    &serial,
                    &now,
                    env!("CARGO_PKG_VERSION"),
                );
                write_out(
                    output.as_deref(),
                    &serde_json::to_string_pretty(&bom).expect("serialises"),
                )?;
                Ok(ExitCode::SUCCESS)
            }
            ModelCommand::Card {
                version,
                format,
                fields,
                lock,
                output,
            } => {
                let facts =
                    facts(&core, &ctx, &version, fields.as_deref(), lock.as_deref()).await?;
                let text = match format.as_str() {
                    "markdown" | "md" => mlsec_core::attest::card::markdown(&facts),
                    "html" => mlsec_core::attest::card::html(&facts),
                    other => {
                        return Err(CliError::Usage(format!(
                            "--format {other:?}: markdown or html"
                        )));
                    }
                };
                write_out(output.as_deref(), &text)?;
                Ok(ExitCode::SUCCESS)
            }
            ModelCommand::Show { version, json } => {
                let v = match LineageStart::parse(&format!("model:{version}"))? {
                    LineageStart::Model {
                        name,
                        version: mlsec_core::ModelRef::Number(n),
                    } => core.model_version(&ctx, &name, &n.to_string()).await?,
                    LineageStart::Model {
                        name,
                        version: mlsec_core::ModelRef::Alias(a),
                    } => core.model_version_by_alias(&ctx, &name, &a).await?,
                    _ => unreachable!("a model: start parses to a model"),
                };
                if json {
                    print_json(&v);
                } else {
                    print_version(&v);
                }
                Ok(verdict(&v))
            }
            ModelCommand::Register {
                name,
                path,
                run,
                description,
                sign_key,
                json,
            } => {
                let mut staged = Vec::new();
                for file in manifest::walk(&path).map_err(mlsec_core::CoreError::from)? {
                    let stored = core.put_blob_file(&ctx, &file.absolute).await?;
                    staged.push(StagedFile {
                        path: file.path,
                        sha256: stored.digest,
                        stored_size: Some(stored.size),
                    });
                }
                match core.create_registered_model(&ctx, &name, "", vec![]).await {
                    Ok(_) => {}
                    Err(e) if e.code() == mlsec_types::ErrorCode::AlreadyExists => {}
                    Err(e) => return Err(e.into()),
                }
                let v = core
                    .create_model_version(
                        &ctx,
                        &name,
                        VersionSource::Blobs(staged),
                        run.as_deref(),
                        &description,
                        vec![],
                    )
                    .await?;
                if json {
                    print_json(&v);
                } else {
                    print_version(&v);
                }
                if let Some(key) = sign_key.filter(|_| !v.quarantined) {
                    let a = core
                        .sign_model_version(&ctx, &v.name, &v.version, &key)
                        .await?;
                    eprintln!("signed {}/{} with key {}", v.name, v.version, a.key_id);
                }
                Ok(verdict(&v))
            }
            ModelCommand::Alias {
                name,
                alias,
                version,
                delete,
            } => {
                if delete == version.is_some() {
                    return Err(CliError::Usage(
                        "give a version to point the alias at, or --delete".into(),
                    ));
                }
                core.move_alias(&ctx, &name, &alias, version.as_deref())
                    .await?;
                match version {
                    Some(v) => println!("{name}@{alias} → version {v}"),
                    None => println!("{name}@{alias} removed"),
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
    .await
}

/// `mlsec lineage START`: the graph from a dataset version, run or model version.
pub async fn lineage(config: &Config, start: String, downstream: bool, json: bool) -> CmdResult {
    with_core(config, |core, ctx| async move {
        let start = LineageStart::parse(&start)?;
        let direction = if downstream {
            Direction::Downstream
        } else {
            Direction::Upstream
        };
        let view = core.lineage(&ctx, &start, direction).await?;
        if json {
            print_json(&view);
        } else {
            print!("{}", render_tree(&view));
        }
        Ok(ExitCode::SUCCESS)
    })
    .await
}

async fn resolve(
    core: &Mlsec,
    ctx: &RequestCtx,
    text: &str,
) -> Result<mlsec_core::ModelVersionView, CliError> {
    Ok(match LineageStart::parse(&format!("model:{text}"))? {
        LineageStart::Model {
            name,
            version: mlsec_core::ModelRef::Number(n),
        } => core.model_version(ctx, &name, &n.to_string()).await?,
        LineageStart::Model {
            name,
            version: mlsec_core::ModelRef::Alias(a),
        } => core.model_version_by_alias(ctx, &name, &a).await?,
        _ => unreachable!("a model: start parses to a model"),
    })
}

/// Writes every file of a version under `dir`, refusing names that would leave it.
async fn pull(
    core: &Mlsec,
    ctx: &RequestCtx,
    v: &mlsec_core::ModelVersionView,
    dir: &std::path::Path,
) -> Result<(), CliError> {
    use std::io::Write;
    for f in &v.files {
        // Never into `.git` (hooks and config there run code on the next git command).
        let into_git = f.path.split('/').any(|c| c.eq_ignore_ascii_case(".git"));
        if mlsec_core::attest::tree::check_name(&f.path).is_err() || into_git {
            return Err(CliError::Runtime(format!(
                "refusing to write {:?}: not a plain path inside the output",
                f.path
            )));
        }
        let digest = mlsec_types::Digest::parse(&f.sha256)
            .or_else(|_| mlsec_types::Digest::parse(&format!("sha256:{}", f.sha256)))
            .map_err(|e| CliError::Runtime(format!("stored digest of {}: {e}", f.path)))?;
        let target = dir.join(&f.path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                CliError::Runtime(format!("cannot create `{}`: {e}", parent.display()))
            })?;
        }
        let (mut stream, _) = core.open_blob(ctx, &digest).await?;
        let io =
            |e: std::io::Error| CliError::Runtime(format!("writing `{}`: {e}", target.display()));
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(io)?;
        while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
            out.write_all(&chunk.map_err(io)?).map_err(io)?;
        }
        out.sync_all().map_err(io)?;
    }
    Ok(())
}

/// Verifies the pulled bytes with the OMS verifier against each stored bundle until one by a
/// registered, unrevoked key passes.
async fn verify_pulled(
    core: &Mlsec,
    ctx: &RequestCtx,
    v: &mlsec_core::ModelVersionView,
    dir: &std::path::Path,
    shown: &std::path::Path,
) -> CmdResult {
    use mlsec_core::attest::{Bundle, Trust, VerifyOptions, WalkOptions, verify_model};
    let keys = core.trusted_signing_keys().await?;
    let bundles: Vec<_> = core
        .model_version_attestations(ctx, &v.name, &v.version)
        .await?
        .into_iter()
        .filter(|a| a.kind == "oms")
        .collect();
    if bundles.is_empty() {
        eprintln!(
            "verification failed: {}/{} carries no signature (`mlsec model sign`)",
            v.name, v.version
        );
        return Ok(ExitCode::from(1));
    }
    let options = VerifyOptions {
        walk: WalkOptions::default(),
        ignore_unsigned_files: false,
    };
    let mut reasons = Vec::new();
    for a in bundles {
        let bytes = serde_json::to_vec(&a.document).expect("serialises");
        match Bundle::from_slice(&bytes)
            .and_then(|b| verify_model(dir, &b, Trust::Keys(&keys), &options))
        {
            Ok(verified) => {
                let who = match &verified.signer {
                    mlsec_core::attest::oms::SignerIdentity::Key { principal, hint } => {
                        principal.clone().unwrap_or_else(|| hint.clone())
                    }
                    mlsec_core::attest::oms::SignerIdentity::Certificate(c) => {
                        c.fingerprint.clone()
                    }
                };
                println!(
                    "{}/{}: {} files → {}, verified (signed by {who}, root sha256:{})",
                    v.name,
                    v.version,
                    verified.files,
                    shown.display(),
                    verified.root_digest
                );
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => reasons.push(format!(
                "bundle {}: {e}",
                a.digest.get(..12).unwrap_or(&a.digest)
            )),
        }
    }
    eprintln!("verification failed: {}", reasons.join("; "));
    Ok(ExitCode::from(1))
}

/// Registry facts of a version with the maintainer's card fields and environment, for the
/// BOM and the card.
async fn facts(
    core: &Mlsec,
    ctx: &RequestCtx,
    version: &str,
    fields: Option<&std::path::Path>,
    lock: Option<&std::path::Path>,
) -> Result<mlsec_core::attest::facts::ModelFacts, CliError> {
    let v = resolve(core, ctx, version).await?;
    Ok(core
        .model_facts(
            ctx,
            &v.name,
            &v.version,
            card_fields(fields)?,
            environment(lock)?,
        )
        .await?)
}

fn card_fields(
    path: Option<&std::path::Path>,
) -> Result<mlsec_core::attest::facts::CardFields, CliError> {
    let Some(path) = path else {
        return Ok(Default::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Runtime(format!("cannot read `{}`: {e}", path.display())))?;
    if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text)
            .map_err(|e| CliError::Usage(format!("`{}`: {e}", path.display())))
    } else {
        toml::from_str(&text).map_err(|e| CliError::Usage(format!("`{}`: {e}", path.display())))
    }
}

fn environment(
    path: Option<&std::path::Path>,
) -> Result<Option<(String, Vec<mlsec_core::attest::lockfile::Package>)>, CliError> {
    use mlsec_core::attest::lockfile::{LockFormat, parse};
    let Some(path) = path else { return Ok(None) };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let format = LockFormat::from_file_name(&name).ok_or_else(|| {
        CliError::Usage(format!(
            "`{name}`: not a lock file mlsec reads (requirements *.txt, poetry.lock, uv.lock, conda *.yml)"
        ))
    })?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Runtime(format!("cannot read `{}`: {e}", path.display())))?;
    let packages = parse(format, &text).map_err(|e| CliError::Usage(format!("`{name}`: {e}")))?;
    Ok(Some((name, packages)))
}

fn write_out(path: Option<&std::path::Path>, text: &str) -> Result<(), CliError> {
    match path {
        Some(p) => std::fs::write(p, text)
            .map_err(|e| CliError::Runtime(format!("cannot write `{}`: {e}", p.display()))),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}
