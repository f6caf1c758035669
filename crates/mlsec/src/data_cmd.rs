//! `mlsec data`: dataset versions, verification, checkout, checks and reports, on the local
//! data directory as the local operator. Every add, verify, checkout and check is audited.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use mlsec_core::data::check::{CheckOptions, Verdict};
use mlsec_core::data::synth::{self, Plant, Spec};
use mlsec_core::{Mlsec, RequestCtx, VersionRef};
use serde::Serialize;

use crate::commands::{CliError, open_existing};
use crate::config::Config;

type CmdResult = Result<ExitCode, CliError>;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Record an immutable version of a file or directory tree.
    Add {
        path: PathBuf,
        #[arg(long)]
        dataset: String,
        /// Why this version exists.
        #[arg(long, short, default_value = "")]
        message: String,
        /// Where the data came from (a URL, a pipeline, a vendor).
        #[arg(long, default_value = "")]
        source: String,
        #[arg(long)]
        json: bool,
    },
    /// List datasets.
    List {
        #[arg(long)]
        json: bool,
    },
    /// List a dataset's versions, newest first.
    Log {
        dataset: String,
        #[arg(long)]
        json: bool,
    },
    /// Show a version (`NAME@N`, `NAME@sha256:…`, `NAME`): files and column profiles.
    Show {
        version: String,
        #[arg(long)]
        json: bool,
    },
    /// Compare a working copy with a version and name every added, removed or modified file.
    ///
    /// Exit codes: 0 identical; 1 the working copy differs.
    Verify {
        version: String,
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Restore a version's files into an empty or new directory (each file re-hashed).
    Checkout {
        version: String,
        destination: PathBuf,
        /// Restore even a quarantined version (its check failed).
        #[arg(long)]
        allow_quarantined: bool,
        #[arg(long)]
        json: bool,
    },
    /// Check a version against the last approved one: schema, drift and poisoning signals.
    /// The verdict is recorded on the version; a failed version is quarantined.
    ///
    /// Exit codes: 0 passed; 1 failed.
    Check {
        version: String,
        /// Check options (JSON): thresholds of the drift tests and poisoning signals.
        #[arg(long)]
        options: Option<PathBuf>,
        /// Also write the HTML report here.
        #[arg(long)]
        report: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Write the HTML report of a version's newest check.
    Report {
        version: String,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Print a dataset's schema, or replace it with `--set FILE` (JSON).
    Schema {
        dataset: String,
        #[arg(long)]
        set: Option<PathBuf>,
    },
    /// Print a version's stored profile (mergeable JSON).
    Profile { version: String },
    /// Write a synthetic reference/current Parquet pair, optionally with planted effects.
    Synth {
        directory: PathBuf,
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        /// The benchmark shape (12 numeric, 6 categorical, 2 with nulls) instead of the
        /// labelled one.
        #[arg(long)]
        benchmark: bool,
        /// Shift feature f3 by 0.5 std in the current table.
        #[arg(long)]
        drift: bool,
        /// Plant poisoning: duplicates, label flips, a shifted class and outliers.
        #[arg(long)]
        poison: bool,
    },
}

fn print_json(value: &impl Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("views serialise")
    );
}

fn parse_ref(text: &str) -> Result<VersionRef, CliError> {
    Ok(VersionRef::parse(text)?)
}

async fn close(core: Mlsec) {
    let _ = core.store().checkpoint_now().await;
    core.store().close().await;
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub async fn data(config: &Config, command: DataCommand) -> CmdResult {
    if let DataCommand::Synth {
        directory,
        rows,
        benchmark,
        drift,
        poison,
    } = command
    {
        return synth_pair(directory, rows, benchmark, drift, poison);
    }
    let core = open_existing(config).await?;
    let ctx = RequestCtx::local();
    let result = run(&core, &ctx, command).await;
    close(core).await;
    result
}

async fn run(core: &Mlsec, ctx: &RequestCtx, command: DataCommand) -> CmdResult {
    match command {
        DataCommand::Add {
            path,
            dataset,
            message,
            source,
            json,
        } => {
            let source = if source.is_empty() {
                path.display().to_string()
            } else {
                source
            };
            let added = core
                .add_dataset_from_path(ctx, &dataset, &path, &message, &source)
                .await?;
            if json {
                print_json(&added);
            } else if added.created {
                let v = &added.version;
                println!(
                    "{}  {}  {} files, {}{}{}",
                    v.reference,
                    v.digest,
                    v.files,
                    human_size(v.size),
                    v.rows.map(|r| format!(", {r} rows")).unwrap_or_default(),
                    if added.schema_inferred {
                        "  (schema inferred)"
                    } else {
                        ""
                    }
                );
            } else {
                println!(
                    "{} already holds exactly this content ({}); nothing recorded",
                    added.version.reference, added.version.digest
                );
            }
        }
        DataCommand::List { json } => {
            let list = core.list_datasets(ctx).await?;
            if json {
                print_json(&list);
            } else {
                for d in list {
                    println!("{}", d.name);
                }
            }
        }
        DataCommand::Log { dataset, json } => {
            let versions = core.dataset_versions(ctx, &dataset).await?;
            if json {
                print_json(&versions);
            } else {
                for v in versions {
                    println!(
                        "{:<24} {:<10} {:>10} {:>10}  {}  {}",
                        v.reference,
                        v.status,
                        human_size(v.size),
                        v.rows.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
                        &v.digest[..v.digest.len().min(19)],
                        v.message
                    );
                }
            }
        }
        DataCommand::Show { version, json } => {
            let detail = core.dataset_version(ctx, &parse_ref(&version)?).await?;
            if json {
                print_json(&detail);
            } else {
                let v = &detail.version;
                println!("{}  {}  {}", v.reference, v.digest, v.status);
                println!(
                    "added by {} — {} files, {}{}",
                    v.created_by,
                    v.files,
                    human_size(v.size),
                    v.rows.map(|r| format!(", {r} rows")).unwrap_or_default()
                );
                for c in &detail.columns {
                    let range = match (c.min, c.max) {
                        (Some(a), Some(b)) => format!("{a:.4} .. {b:.4}"),
                        _ => c
                            .top
                            .iter()
                            .take(3)
                            .map(|(k, n)| format!("{k}:{n}"))
                            .collect::<Vec<_>>()
                            .join(" "),
                    };
                    println!(
                        "  {:<20} {:<9} nulls {:>8}  distinct ~{:>8}  {}",
                        c.name,
                        format!("{:?}", c.kind).to_lowercase(),
                        c.nulls,
                        c.distinct,
                        range
                    );
                }
            }
        }
        DataCommand::Verify {
            version,
            path,
            json,
        } => {
            let view = core
                .verify_dataset_path(ctx, &parse_ref(&version)?, &path)
                .await?;
            if json {
                print_json(&view);
            } else if view.clean {
                println!(
                    "{}: working copy matches ({} files)",
                    view.reference, view.diff.unchanged
                );
            } else {
                println!("{}: working copy differs", view.reference);
                for p in &view.diff.added {
                    println!("  added     {p}");
                }
                for p in &view.diff.removed {
                    println!("  removed   {p}");
                }
                for m in &view.diff.modified {
                    println!(
                        "  modified  {}  (expected {}, found {})",
                        m.path, m.expected, m.actual
                    );
                }
            }
            return Ok(if view.clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        DataCommand::Checkout {
            version,
            destination,
            allow_quarantined,
            json,
        } => {
            let view = core
                .checkout_dataset(ctx, &parse_ref(&version)?, &destination, allow_quarantined)
                .await?;
            if json {
                print_json(&view);
            } else {
                println!(
                    "{}: {} files ({}) restored to {}",
                    view.reference,
                    view.files,
                    human_size(view.bytes),
                    view.destination
                );
            }
        }
        DataCommand::Check {
            version,
            options,
            report,
            json,
        } => {
            let options: CheckOptions = match options {
                None => CheckOptions::default(),
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
                    serde_json::from_str(&text)
                        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?
                }
            };
            let reference = parse_ref(&version)?;
            let view = core.check_dataset(ctx, &reference, options).await?;
            if let Some(path) = report {
                write_report(core, ctx, &reference, Some(path)).await?;
            }
            if json {
                print_json(&view);
            } else {
                let o = &view.outcome;
                println!(
                    "{}: {} (against {})",
                    view.reference,
                    match o.verdict {
                        Verdict::Passed => "passed",
                        Verdict::Failed => "FAILED — quarantined",
                    },
                    o.reference
                        .as_deref()
                        .unwrap_or("no approved version: schema only")
                );
                for r in &o.reasons {
                    println!("  ✗ {r}");
                }
                for w in &o.warnings {
                    println!("  ! {w}");
                }
                println!(
                    "  report: mlsec data report {} -o report.html",
                    view.reference
                );
            }
            return Ok(match view.verdict {
                Verdict::Passed => ExitCode::SUCCESS,
                Verdict::Failed => ExitCode::from(1),
            });
        }
        DataCommand::Report { version, output } => {
            write_report(core, ctx, &parse_ref(&version)?, output).await?;
        }
        DataCommand::Schema { dataset, set } => match set {
            None => match core.dataset_schema(ctx, &dataset).await? {
                Some(s) => print_json(&s),
                None => println!("`{dataset}` has no schema (no tabular files yet)"),
            },
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
                let revision = core.set_dataset_schema(ctx, &dataset, &text).await?;
                println!("schema of `{dataset}` replaced (revision {revision})");
            }
        },
        DataCommand::Profile { version } => {
            match core.dataset_profile(ctx, &parse_ref(&version)?).await? {
                Some(p) => print_json(&p),
                None => println!("{version} has no tabular files"),
            }
        }
        DataCommand::Synth { .. } => unreachable!("handled without a data directory"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn write_report(
    core: &Mlsec,
    ctx: &RequestCtx,
    reference: &VersionRef,
    output: Option<PathBuf>,
) -> Result<(), CliError> {
    use futures_util::StreamExt;
    let (mut stream, _) = core.dataset_report(ctx, reference).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes
            .extend_from_slice(&chunk.map_err(|e| CliError::Runtime(format!("read report: {e}")))?);
    }
    match output {
        Some(path) => std::fs::write(&path, &bytes)
            .map_err(|e| CliError::Runtime(format!("{}: {e}", path.display())))?,
        None => std::io::stdout()
            .write_all(&bytes)
            .map_err(|e| CliError::Runtime(format!("stdout: {e}")))?,
    }
    Ok(())
}

fn synth_pair(dir: PathBuf, rows: usize, benchmark: bool, drift: bool, poison: bool) -> CmdResult {
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Usage(format!("{}: {e}", dir.display())))?;
    let spec = if benchmark {
        Spec::benchmark(rows)
    } else {
        Spec::labelled(rows)
    };
    let mut plant = Plant::default();
    if drift {
        plant.drift = Some((3, 0.5));
    }
    if poison {
        plant.duplicates = 0.02;
        plant.label_flips = 0.01;
        plant.class_shift = Some((2, 1.0));
        plant.outliers = 0.005;
    }
    let reference = synth::generate(&spec, 1, &Plant::default(), None);
    let current = synth::generate(&spec, 2, &plant, Some(&reference));
    let err = |e: mlsec_core::data::DataError| CliError::Runtime(e.to_string());
    synth::write(&reference, &dir.join("reference.parquet")).map_err(err)?;
    synth::write(&current, &dir.join("current.parquet")).map_err(err)?;
    println!(
        "wrote {} and {} ({} and {} rows)",
        dir.join("reference.parquet").display(),
        dir.join("current.parquet").display(),
        reference.num_rows(),
        current.num_rows()
    );
    Ok(ExitCode::SUCCESS)
}
