//! The command implementations: each loads what it needs, calls the core, and prints.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use mlsec_audit::export::{self, ExportFormat};
use mlsec_audit::{TrustedKeys, VerifyReport};
use mlsec_core::{CoreError, Mlsec, RequestCtx};
use mlsec_types::{Digest, ErrorCode};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// A failed command, classified for its exit code.
#[derive(Debug)]
pub enum CliError {
    /// Bad usage or configuration: exit 2.
    Usage(String),
    /// Storage, I/O or other operational trouble: exit 3.
    Runtime(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Runtime(_) => 3,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Runtime(m) => f.write_str(m),
        }
    }
}

impl From<CoreError> for CliError {
    fn from(e: CoreError) -> Self {
        match e.code() {
            ErrorCode::InvalidRequest | ErrorCode::InvalidDigest => CliError::Usage(e.to_string()),
            _ => CliError::Runtime(e.to_string()),
        }
    }
}

impl From<mlsec_core::store::StoreError> for CliError {
    fn from(e: mlsec_core::store::StoreError) -> Self {
        CliError::from(CoreError::from(e))
    }
}

type CmdResult = Result<ExitCode, CliError>;

pub fn init_logging(config: &Config) -> Result<(), String> {
    let filter = EnvFilter::try_new(&config.log_level)
        .map_err(|e| format!("`log.level` `{}`: {e}", config.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    Ok(())
}

async fn open(config: &Config) -> Result<Mlsec, CliError> {
    Ok(Mlsec::open(config.core()).await?)
}

/// Commands other than `init` and `serve` work on an existing installation only.
pub(crate) async fn open_existing(config: &Config) -> Result<Mlsec, CliError> {
    if !config.data_dir.is_dir() {
        return Err(CliError::Usage(format!(
            "no mlsec data directory at `{}` (run `mlsec init`, or pass --data-dir)",
            config.data_dir.display()
        )));
    }
    open(config).await
}

fn print_token(token: &str) {
    println!("admin token (shown once, store it now): {token}");
}

pub async fn init(config: &Config) -> CmdResult {
    let core = open(config).await?;
    let outcome = core.init().await?;
    println!("data directory: {}", outcome.data_dir.display());
    println!("database: {}", core.store().target());
    println!("server public key: {}", outcome.public_key_path.display());
    match outcome.admin_token {
        Some(token) => print_token(&token),
        None => println!("already initialised; the admin token was shown when it was created"),
    }
    core.store().checkpoint_now().await?;
    core.store().close().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn serve(config: &Config) -> CmdResult {
    let core = open(config).await?;
    let outcome = core.init().await?;
    if let Some(token) = outcome.admin_token {
        print_token(&token);
    }
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| CliError::Runtime(format!("cannot listen on `{}`: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    tracing::info!(
        %addr,
        database = core.store().target(),
        data_dir = %config.data_dir.display(),
        config_file = ?config.source_file,
        "mlsec listening"
    );
    let lineage_delivery = match &config.openlineage {
        Some(ol) => {
            tracing::info!(namespace = %ol.namespace, "emitting OpenLineage events");
            Some(mlsec_server::start_openlineage(&core, ol.clone())?)
        }
        None => None,
    };
    println!("listening on http://{addr}");
    let _ = std::io::stdout().flush();
    mlsec_server::serve(core, listener, shutdown_signal()).await?;
    if let Some(delivery) = lineage_delivery {
        // The queue closed at shutdown: give the queued events a bounded time to go out.
        if tokio::time::timeout(std::time::Duration::from_secs(15), delivery)
            .await
            .is_err()
        {
            tracing::warn!("OpenLineage events still queued at exit were not delivered");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutdown requested; draining requests");
}

fn trusted_keys(config: &Config, public_key: Option<String>) -> Result<TrustedKeys, CliError> {
    let source = public_key.unwrap_or_else(|| {
        config
            .data_dir
            .join(mlsec_core::PUBLIC_FILE)
            .display()
            .to_string()
    });
    let key = mlsec_core::read_public_key(&source).map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(TrustedKeys::new().with(key))
}

fn print_report(report: &VerifyReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).expect("reports serialise")
        );
        return;
    }
    if report.ok() {
        println!(
            "ok: {} events, {} checkpoints, head {}",
            report.events,
            report.checkpoints,
            report
                .head
                .map(|h| h.to_string())
                .unwrap_or_else(|| "(empty log)".into())
        );
        match report.last_checkpointed_index {
            Some(i) => println!(
                "signed through index {i}; {} later events are protected by the chain only",
                report.unsigned_tail
            ),
            None if report.events > 0 => println!("warning: no checkpoint covers this log yet"),
            None => {}
        }
    } else {
        println!(
            "TAMPERED: first bad index {} ({} problems found)",
            report.first_bad_index().unwrap_or(0),
            report.failures.len()
        );
        for f in report.failures.iter().take(20) {
            println!("  {f}");
        }
    }
}

pub async fn audit_verify(
    config: &Config,
    file: Option<PathBuf>,
    public_key: Option<String>,
    json: bool,
    deep: bool,
) -> CmdResult {
    let report = match file {
        Some(path) => {
            let trusted = trusted_keys(config, public_key)?;
            let f = std::fs::File::open(&path)
                .map_err(|e| CliError::Usage(format!("cannot open `{}`: {e}", path.display())))?;
            let parsed = export::read_jsonl(std::io::BufReader::new(f))
                .map_err(|e| CliError::Usage(format!("`{}`: {e}", path.display())))?;
            mlsec_audit::verify_records(&parsed.records, &parsed.checkpoints, &trusted, deep)
        }
        None => {
            let core = open_existing(config).await?;
            let trusted = match public_key {
                Some(_) => trusted_keys(config, public_key)?,
                None => core.trusted_keys().clone(),
            };
            let report = core.store().verify_audit_with(&trusted, deep).await?;
            core.store().close().await;
            report
        }
    };
    print_report(&report, json);
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub async fn audit_export(config: &Config, format: &str, output: Option<PathBuf>) -> CmdResult {
    let format: ExportFormat = format.parse().map_err(CliError::Usage)?;
    let core = open_existing(config).await?;
    let sink: Box<dyn Write> =
        match &output {
            Some(path) => Box::new(std::fs::File::create(path).map_err(|e| {
                CliError::Runtime(format!("cannot create `{}`: {e}", path.display()))
            })?),
            None => Box::new(std::io::stdout().lock()),
        };
    let mut out = BufWriter::with_capacity(1 << 20, sink);
    let write_err = |e: std::io::Error| CliError::Runtime(format!("writing the export: {e}"));
    let mut from = 0u64;
    loop {
        let page = core.store().audit_records(from, 10_000).await?;
        let Some(last) = page.last() else { break };
        from = last.index + 1;
        for record in &page {
            let line = export::encode_record(format, record).map_err(|e| {
                CliError::Runtime(format!("event {} cannot be exported: {e}", record.index))
            })?;
            writeln!(out, "{line}").map_err(write_err)?;
        }
    }
    if format == ExportFormat::Jsonl {
        for cp in core.store().audit_checkpoints().await? {
            writeln!(out, "{}", export::encode_checkpoint(&cp)).map_err(write_err)?;
        }
    }
    out.flush().map_err(write_err)?;
    core.store().close().await;
    Ok(ExitCode::SUCCESS)
}

fn parse_digest(text: &str) -> Result<Digest, CliError> {
    Digest::parse(text).map_err(|e| CliError::Usage(format!("`{text}`: {e}")))
}

pub async fn blob_put(config: &Config, files: Vec<PathBuf>) -> CmdResult {
    if files.is_empty() {
        return Err(CliError::Usage("name at least one file".into()));
    }
    let core = open_existing(config).await?;
    let ctx = RequestCtx::local();
    for file in files {
        let summary = core.put_blob_file(&ctx, &file).await?;
        println!(
            "{}  {}  {} bytes",
            summary.digest,
            file.display(),
            summary.size
        );
    }
    core.store().close().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn blob_get(config: &Config, digest: &str, output: PathBuf) -> CmdResult {
    let digest = parse_digest(digest)?;
    let core = open_existing(config).await?;
    let (mut stream, _) = core.open_blob(&RequestCtx::local(), &digest).await?;
    let copy_err =
        |e: std::io::Error| CliError::Runtime(format!("copying to `{}`: {e}", output.display()));
    let mut out = std::fs::File::create(&output)
        .map_err(|e| CliError::Runtime(format!("cannot create `{}`: {e}", output.display())))?;
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        out.write_all(&chunk.map_err(copy_err)?).map_err(copy_err)?;
    }
    out.sync_all().map_err(copy_err)?;
    core.store().close().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn blob_verify(config: &Config, digest: &str) -> CmdResult {
    let digest = parse_digest(digest)?;
    let core = open_existing(config).await?;
    let result = core.verify_blob(&RequestCtx::local(), &digest).await;
    core.store().close().await;
    match result {
        Ok(size) => {
            println!("ok: {digest} ({size} bytes)");
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ CoreError::Integrity { .. }) => {
            println!("CORRUPT: {e}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}
