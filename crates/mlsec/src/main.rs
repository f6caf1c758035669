//! `mlsec`: the command line and the server of the mlsec MLOps security control plane.
//!
//! Exit codes: 0 success; 1 a check failed (tampered audit log, corrupt blob); 2 invalid usage or
//! configuration; 3 an operational error (storage unavailable or full, I/O).

mod access_cmd;
mod commands;
mod config;
mod data_cmd;
mod guard_cmd;
mod key_cmd;
mod registry_cmd;
mod scan_cmd;
mod sign_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::FlagOverrides;

#[derive(Parser)]
#[command(name = "mlsec", version, about = "MLOps security control plane", long_about = None)]
struct Cli {
    /// Configuration file (TOML). Default: `mlsec.toml` in the working directory, if present.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data directory (SQLite database, blobs, server key). Default: `.mlsec`.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// PostgreSQL URL for the metadata store instead of the embedded SQLite file.
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Log filter (`info`, `debug`, `mlsec=debug,sqlx=warn`, …).
    #[arg(long, global = true)]
    log_level: Option<String>,
    /// Log format: `text` or `json`.
    #[arg(long, global = true)]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the data directory, the server key and the first admin token (printed once).
    Init,
    /// Run the server (initialises on first run).
    Serve {
        /// Listen address. Default: 127.0.0.1:8750.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Inspect and export the tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Scan model files and directories for code-execution payloads, without loading them.
    ///
    /// Exit codes: 0 clean; 1 findings at or above the threshold; 3 some file only partly
    /// scanned; 4 some file not scanned (unsupported format) or nothing to scan.
    Scan(scan_cmd::ScanArgs),
    /// Store, fetch and verify content-addressed blobs.
    Blob {
        #[command(subcommand)]
        command: BlobCommand,
    },
    /// Manage users and service accounts.
    User {
        #[command(subcommand)]
        command: access_cmd::UserCommand,
    },
    /// Create, list and revoke API tokens.
    Token {
        #[command(subcommand)]
        command: access_cmd::TokenCommand,
    },
    /// Grant and revoke roles.
    Role {
        #[command(subcommand)]
        command: access_cmd::RoleCommand,
    },
    /// Enrol, confirm and reset second factors (TOTP).
    Mfa {
        #[command(subcommand)]
        command: access_cmd::MfaCommand,
    },
    /// Read, replace and test the authorization policy.
    Policy {
        #[command(subcommand)]
        command: access_cmd::PolicyCommand,
    },
    /// Version, verify, check and restore datasets.
    Data {
        #[command(subcommand)]
        command: data_cmd::DataCommand,
    },
    /// Tracked runs (logged through the MLflow-compatible API).
    Run {
        #[command(subcommand)]
        command: registry_cmd::RunCommand,
    },
    /// The model registry: versions pinned by digest, scanned, aliased.
    Model {
        #[command(subcommand)]
        command: registry_cmd::ModelCommand,
    },
    /// Signing keys bound to accounts: generate, import, list, revoke.
    Key {
        #[command(subcommand)]
        command: key_cmd::KeyCommand,
    },
    /// Sign a model directory or file (OpenSSF Model Signing v1.0 bundle).
    Sign(sign_cmd::SignArgs),
    /// Verify a model against its OMS bundle and, optionally, its signed provenance.
    ///
    /// Exit codes: 0 verified; 1 verification failed; 2 usage; 3 I/O.
    Verify(sign_cmd::VerifyArgs),
    /// Signed training provenance (in-toto statement, SLSA Provenance v1 predicate).
    Provenance {
        #[command(subcommand)]
        command: sign_cmd::ProvenanceCommand,
    },
    /// LLM guardrails: scan prompts and responses, evaluate and train the detectors.
    ///
    /// Exit codes of `guard scan`: 0 passed; 1 blocked (or reached `--fail-on`); 2 usage; 3 I/O.
    Guard {
        #[command(subcommand)]
        command: guard_cmd::GuardCommand,
    },
    /// Walk the lineage graph from `dataset:NAME@N`, `run:ID`, `model:NAME/N` or
    /// `model:NAME@ALIAS`: upstream (what it was made from) or `--downstream` (what used it).
    Lineage {
        start: String,
        #[arg(long)]
        downstream: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the hash chain and the signed checkpoints; report the first bad index.
    Verify {
        /// Verify a JSON-lines export instead of the local store.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Trusted public key (file or 64 hex digits). Default: the data directory's `server.pub`.
        #[arg(long)]
        public_key: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Also decode every event and check its canonical form (slower).
        #[arg(long)]
        deep: bool,
    },
    /// Write the log for a SIEM.
    Export {
        /// `jsonl` (lossless, verifiable), `ocsf` or `cef`.
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Output file. Default: standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BlobCommand {
    /// Store files; prints each digest.
    Put { files: Vec<PathBuf> },
    /// Copy a blob out of the store.
    Get {
        digest: String,
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Re-hash a stored blob against its digest.
    Verify { digest: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut flags = FlagOverrides {
        config: cli.config,
        data_dir: cli.data_dir,
        database_url: cli.database_url,
        log_level: cli.log_level,
        log_format: cli.log_format,
        listen: None,
    };
    if let Command::Serve { listen } = &cli.command {
        flags.listen = listen.clone();
    }
    let config = match config::Config::load(&flags) {
        Ok(mut c) => {
            if !c.log_level_explicit && !matches!(cli.command, Command::Serve { .. }) {
                c.log_level = "warn".to_owned();
            }
            c
        }
        Err(e) => {
            eprintln!("mlsec: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = commands::init_logging(&config) {
        eprintln!("mlsec: configuration error: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mlsec: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    if let Command::Guard { command } = cli.command {
        // A pure library call, like `scan`.
        return finish(guard_cmd::run(command));
    }
    match cli.command {
        // Pure library calls, like `scan`.
        Command::Sign(args) => return finish(sign_cmd::sign(args)),
        Command::Verify(args) => return finish(sign_cmd::verify(args)),
        Command::Provenance { command } => return finish(sign_cmd::provenance(command)),
        _ => {}
    }
    if let Command::Scan(args) = cli.command {
        // A pure library call: no data directory, no runtime, no server.
        return finish(scan_cmd::run(args));
    }
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Init => commands::init(&config).await,
            Command::Serve { .. } => commands::serve(&config).await,
            Command::Audit { command } => match command {
                AuditCommand::Verify {
                    file,
                    public_key,
                    json,
                    deep,
                } => commands::audit_verify(&config, file, public_key, json, deep).await,
                AuditCommand::Export { format, output } => {
                    commands::audit_export(&config, &format, output).await
                }
            },
            Command::Scan(_)
            | Command::Guard { .. }
            | Command::Sign(_)
            | Command::Verify(_)
            | Command::Provenance { .. } => unreachable!("handled above"),
            Command::Blob { command } => match command {
                BlobCommand::Put { files } => commands::blob_put(&config, files).await,
                BlobCommand::Get { digest, output } => {
                    commands::blob_get(&config, &digest, output).await
                }
                BlobCommand::Verify { digest } => commands::blob_verify(&config, &digest).await,
            },
            Command::User { command } => access_cmd::user(&config, command).await,
            Command::Token { command } => access_cmd::token(&config, command).await,
            Command::Role { command } => access_cmd::role(&config, command).await,
            Command::Mfa { command } => access_cmd::mfa(&config, command).await,
            Command::Policy { command } => access_cmd::policy(&config, command).await,
            Command::Data { command } => data_cmd::data(&config, command).await,
            Command::Run { command } => registry_cmd::run(&config, command).await,
            Command::Model { command } => registry_cmd::model(&config, command).await,
            Command::Key { command } => key_cmd::run(&config, command).await,
            Command::Lineage {
                start,
                downstream,
                json,
            } => registry_cmd::lineage(&config, start, downstream, json).await,
        }
    });
    finish(result)
}

/// Prints a failed command's error and turns it into its exit code.
fn finish(result: Result<ExitCode, commands::CliError>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mlsec: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
