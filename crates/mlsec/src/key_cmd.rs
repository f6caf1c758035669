//! `mlsec key`: signing keys bound to accounts. Private keys are sealed at rest with a key
//! derived from the server key; every operation is audited.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use mlsec_core::attest::Curve;
use mlsec_core::{KeySource, SigningKeyView};

use crate::commands::{CliError, open_existing};
use crate::config::Config;

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Generate a key pair for an account; the private key stays sealed in mlsec.
    Generate {
        name: String,
        /// The account the key signs for.
        #[arg(long)]
        principal: String,
        /// `p256` or `p384`.
        #[arg(long, default_value = "p256")]
        curve: String,
        /// Also write the public key (PEM) here, for verifiers outside mlsec.
        #[arg(long)]
        public_out: Option<PathBuf>,
    },
    /// Import a PEM key: a private key (PKCS#8 or SEC1; sealed at rest) or a public key only
    /// (a trusted signer whose private key lives elsewhere).
    Import {
        name: String,
        #[arg(long)]
        principal: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// List keys (never private material), revoked ones included.
    List {
        #[arg(long)]
        principal: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by name or id: its signatures stop counting everywhere.
    Revoke {
        key: String,
        #[arg(long)]
        reason: String,
    },
}

fn print_key(k: &SigningKeyView) {
    let state = match (&k.revoked_at, k.can_sign) {
        (Some(_), _) => "revoked",
        (None, true) => "active",
        (None, false) => "active (public only)",
    };
    println!(
        "{}  {}  {}  {}  {}",
        k.name, k.id, k.curve, k.principal_id, state
    );
}

pub async fn run(config: &Config, command: KeyCommand) -> Result<ExitCode, CliError> {
    let core = open_existing(config).await?;
    let ctx = mlsec_core::RequestCtx::local();
    let result = async {
        match command {
            KeyCommand::Generate {
                name,
                principal,
                curve,
                public_out,
            } => {
                let curve = Curve::parse(&curve).map_err(|e| CliError::Usage(e.to_string()))?;
                let k = core
                    .add_signing_key(&ctx, &principal, &name, KeySource::Generate(curve))
                    .await?;
                if let Some(path) = public_out {
                    std::fs::write(&path, &k.public_key_pem).map_err(|e| {
                        CliError::Runtime(format!("cannot write `{}`: {e}", path.display()))
                    })?;
                }
                print_key(&k);
            }
            KeyCommand::Import {
                name,
                principal,
                file,
            } => {
                let pem = std::fs::read(&file).map_err(|e| {
                    CliError::Runtime(format!("cannot read `{}`: {e}", file.display()))
                })?;
                let source = if String::from_utf8_lossy(&pem).contains("PUBLIC KEY-----") {
                    KeySource::PublicPem(pem)
                } else {
                    KeySource::PrivatePem(pem)
                };
                print_key(
                    &core
                        .add_signing_key(&ctx, &principal, &name, source)
                        .await?,
                );
            }
            KeyCommand::List { principal, json } => {
                let keys = core.list_signing_keys(&ctx, principal.as_deref()).await?;
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&keys).expect("serialises")
                    );
                } else {
                    keys.iter().for_each(print_key);
                }
            }
            KeyCommand::Revoke { key, reason } => {
                print_key(&core.revoke_signing_key(&ctx, &key, &reason).await?);
            }
        }
        Ok(ExitCode::SUCCESS)
    }
    .await;
    let _ = core.store().checkpoint_now().await;
    core.store().close().await;
    result
}
