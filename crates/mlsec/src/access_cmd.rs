//! `mlsec user|token|role|mfa|policy`: identity and access administration on the local data
//! directory, as the local operator (who holds the data directory and so every secret in it).
//! Every change is audited like its API counterpart.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use mlsec_core::policy::{self, Expect, PolicyEngine, ROLES};
use mlsec_core::{Mlsec, NewPrincipal, NewToken, RequestCtx};
use serde::Serialize;

use crate::commands::{CliError, open_existing};
use crate::config::Config;

type CmdResult = Result<ExitCode, CliError>;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user (or, with --service-account, an account for CI and training jobs).
    Add {
        id: String,
        #[arg(long)]
        service_account: bool,
        #[arg(long)]
        name: Option<String>,
        /// Read the console password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
    /// Show one account with its roles.
    Show { id: String },
    /// Disable an account: its tokens and sessions stop working at once.
    Disable { id: String },
    /// Re-enable a disabled account.
    Enable { id: String },
    /// Delete an account (its id stays reserved).
    Delete { id: String },
    /// Set the console password from standard input (first line).
    Passwd { id: String },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an API token for an account; the token is printed once.
    Create {
        owner: String,
        #[arg(long)]
        name: String,
        /// Lifetime in days (default 90; 0 never expires).
        #[arg(long)]
        expires_in_days: Option<i64>,
        /// Only actions that change nothing.
        #[arg(long)]
        read_only: bool,
        /// Limit the token to a scope (repeatable): `model:fraud-*`, `project:churn`.
        #[arg(long = "resource")]
        resources: Vec<String>,
    },
    /// List an account's tokens (never their secrets).
    List { owner: String },
    /// Revoke a token by id.
    Revoke { id: String },
}

#[derive(Subcommand)]
pub enum RoleCommand {
    /// The built-in roles.
    List,
    /// Grant a role on a scope (`server`, `project:<name>`, `<type>:<pattern>`).
    Grant {
        principal: String,
        role: String,
        #[arg(long, default_value = "server")]
        scope: String,
    },
    /// Revoke a role grant.
    Revoke {
        principal: String,
        role: String,
        #[arg(long, default_value = "server")]
        scope: String,
    },
}

#[derive(Subcommand)]
pub enum MfaCommand {
    /// Start TOTP enrolment: prints the otpauth URI and a QR code to scan.
    Enroll { principal: String },
    /// Confirm enrolment with the first code; prints the recovery codes once.
    Confirm { principal: String, code: String },
    /// Remove an account's second factor (lost authenticator).
    Reset { principal: String },
    /// Show whether an account has a second factor.
    Status { principal: String },
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Print the policy in force.
    Show,
    /// Print the Cedar schema policies are validated against.
    Schema,
    /// Validate a policy file and make it the policy in force (audited).
    Set { file: PathBuf },
    /// Validate a policy and test it: against a cases file, and/or one request.
    ///
    /// Exit codes: 0 valid and every case passed; 1 a case failed or the request was denied;
    /// 2 the policy or the cases do not parse.
    Check(CheckArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    /// The policy to check (default: the one in force, or the built-in default without a
    /// data directory).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// A TOML file of `[[case]]` entries with the expected decision.
    #[arg(long)]
    cases: Option<PathBuf>,
    /// Evaluate one request for this account (with its real grants).
    #[arg(long, requires_all = ["action", "resource"])]
    principal: Option<String>,
    #[arg(long)]
    action: Option<String>,
    #[arg(long)]
    resource: Option<String>,
    /// Assume a fresh second factor.
    #[arg(long)]
    mfa: bool,
    #[arg(long)]
    json: bool,
}

fn print_json(value: &impl Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("views serialise")
    );
}

fn read_stdin_line() -> Result<String, CliError> {
    let mut text = String::new();
    std::io::stdin()
        .take(64 << 10)
        .read_to_string(&mut text)
        .map_err(|e| CliError::Usage(format!("read standard input: {e}")))?;
    Ok(text.lines().next().unwrap_or("").to_owned())
}

async fn finish(core: Mlsec) -> CmdResult {
    core.store().checkpoint_now().await?;
    core.store().close().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn user(config: &Config, command: UserCommand) -> CmdResult {
    let core = open_existing(config).await?;
    let ctx = RequestCtx::local();
    match command {
        UserCommand::Add {
            id,
            service_account,
            name,
            password_stdin,
        } => {
            let password = password_stdin.then(read_stdin_line).transpose()?;
            let view = core
                .create_principal(
                    &ctx,
                    NewPrincipal {
                        id,
                        service_account,
                        display_name: name,
                        password,
                    },
                )
                .await?;
            print_json(&view);
        }
        UserCommand::List => print_json(&core.list_principals(&ctx).await?),
        UserCommand::Show { id } => print_json(&core.get_principal(&ctx, &id).await?),
        UserCommand::Disable { id } => {
            print_json(&core.update_principal(&ctx, &id, None, Some(true)).await?)
        }
        UserCommand::Enable { id } => {
            print_json(&core.update_principal(&ctx, &id, None, Some(false)).await?)
        }
        UserCommand::Delete { id } => {
            core.delete_principal(&ctx, &id).await?;
            println!("deleted `{id}`");
        }
        UserCommand::Passwd { id } => {
            let password = read_stdin_line()?;
            core.set_password(&ctx, &id, Some(password)).await?;
            println!("password of `{id}` set; its console sessions were ended");
        }
    }
    finish(core).await
}

pub async fn token(config: &Config, command: TokenCommand) -> CmdResult {
    let core = open_existing(config).await?;
    let ctx = RequestCtx::local();
    match command {
        TokenCommand::Create {
            owner,
            name,
            expires_in_days,
            read_only,
            resources,
        } => {
            let created = core
                .create_token(
                    &ctx,
                    &owner,
                    NewToken {
                        name,
                        expires_in_days,
                        read_only,
                        resources: (!resources.is_empty()).then_some(resources),
                    },
                )
                .await?;
            eprintln!("token for `{owner}` (shown once, store it now):");
            println!("{}", created.token);
        }
        TokenCommand::List { owner } => print_json(&core.list_tokens(&ctx, &owner).await?),
        TokenCommand::Revoke { id } => print_json(&core.revoke_token(&ctx, &id).await?),
    }
    finish(core).await
}

pub async fn role(config: &Config, command: RoleCommand) -> CmdResult {
    if let RoleCommand::List = command {
        for r in ROLES {
            println!("{:<11} {}", r.name, r.description);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let core = open_existing(config).await?;
    let ctx = RequestCtx::local();
    match command {
        RoleCommand::List => unreachable!("handled above"),
        RoleCommand::Grant {
            principal,
            role,
            scope,
        } => {
            let added = core.grant_role(&ctx, &principal, &role, &scope).await?;
            println!(
                "{principal}: {role}@{scope} {}",
                if added { "granted" } else { "was already held" }
            );
        }
        RoleCommand::Revoke {
            principal,
            role,
            scope,
        } => {
            core.revoke_role(&ctx, &principal, &role, &scope).await?;
            println!("{principal}: {role}@{scope} revoked");
        }
    }
    finish(core).await
}

pub async fn mfa(config: &Config, command: MfaCommand) -> CmdResult {
    let core = open_existing(config).await?;
    let ctx = RequestCtx::local();
    match command {
        MfaCommand::Enroll { principal } => {
            let e = core.enroll_totp(&ctx, &principal).await?;
            print!("{}", mlsec_core::qr::terminal(&e.otpauth_uri)?);
            println!("otpauth URI: {}", e.otpauth_uri);
            println!("key (manual entry): {}", e.secret);
            println!("then: mlsec mfa confirm {principal} <code>");
        }
        MfaCommand::Confirm { principal, code } => {
            let codes = core.confirm_totp(&ctx, &principal, &code).await?;
            println!("second factor of `{principal}` enrolled. Recovery codes (shown once):");
            for c in codes {
                println!("  {c}");
            }
        }
        MfaCommand::Reset { principal } => {
            core.remove_totp(&ctx, &principal).await?;
            println!("second factor of `{principal}` removed");
        }
        MfaCommand::Status { principal } => print_json(&core.mfa_status(&ctx, &principal).await?),
    }
    finish(core).await
}

pub async fn policy(config: &Config, command: PolicyCommand) -> CmdResult {
    match command {
        PolicyCommand::Schema => {
            print!("{}", policy::schema_text());
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Show => {
            let core = open_existing(config).await?;
            let view = core.policy(&RequestCtx::local()).await?;
            eprintln!("policy version {} ({})", view.version, view.digest);
            print!("{}", view.text);
            finish(core).await
        }
        PolicyCommand::Set { file } => {
            let text = read_policy(&file)?;
            let core = open_existing(config).await?;
            let view = core.set_policy(&RequestCtx::local(), &text).await?;
            println!("policy version {} in force ({})", view.version, view.digest);
            finish(core).await
        }
        PolicyCommand::Check(args) => check(config, args).await,
    }
}

fn read_policy(file: &PathBuf) -> Result<String, CliError> {
    let meta = std::fs::metadata(file)
        .map_err(|e| CliError::Usage(format!("`{}`: {e}", file.display())))?;
    if meta.len() > policy::MAX_POLICY_BYTES as u64 {
        return Err(CliError::Usage(format!(
            "`{}` is larger than {} bytes",
            file.display(),
            policy::MAX_POLICY_BYTES
        )));
    }
    std::fs::read_to_string(file).map_err(|e| CliError::Usage(format!("`{}`: {e}", file.display())))
}

async fn check(config: &Config, args: CheckArgs) -> CmdResult {
    let core = if config.data_dir.is_dir() {
        Some(open_existing(config).await?)
    } else {
        None
    };
    let text = match (&args.policy, &core) {
        (Some(file), _) => read_policy(file)?,
        (None, Some(core)) => core.policy(&RequestCtx::local()).await?.text,
        (None, None) => policy::DEFAULT_POLICY.to_owned(),
    };
    let engine = PolicyEngine::new(&text).map_err(|e| CliError::Usage(e.to_string()))?;
    let mut failed = false;
    let mut report = serde_json::json!({ "valid": true, "policies": engine.policy_ids() });
    if let Some(cases) = &args.cases {
        let cases_text = std::fs::read_to_string(cases)
            .map_err(|e| CliError::Usage(format!("`{}`: {e}", cases.display())))?;
        let outcomes =
            policy::run_cases(&engine, &cases_text).map_err(|e| CliError::Usage(e.to_string()))?;
        for o in &outcomes {
            failed |= !o.passed;
            if !args.json {
                println!(
                    "{} {}: expected {:?}, got {:?} ({})",
                    if o.passed { "pass" } else { "FAIL" },
                    o.name,
                    o.expected,
                    o.got,
                    o.decision.reasons.join(", ")
                );
            }
        }
        report["cases"] = serde_json::to_value(&outcomes).expect("outcomes serialise");
    }
    if let (Some(principal), Some(action), Some(resource)) =
        (&args.principal, &args.action, &args.resource)
    {
        let core = core.as_ref().ok_or_else(|| {
            CliError::Usage(
                "--principal needs a data directory (the account's grants live there)".into(),
            )
        })?;
        let decision = core
            .check_policy(
                &RequestCtx::local(),
                principal,
                action,
                resource,
                args.mfa,
                Some(&text),
            )
            .await?;
        let got = if decision.allowed {
            Expect::Allow
        } else if decision.needs_second_factor {
            Expect::SecondFactor
        } else {
            Expect::Deny
        };
        failed |= got != Expect::Allow;
        if !args.json {
            println!(
                "{principal} {action} {resource}: {got:?} (roles: {}; reasons: {})",
                decision.roles.join(", "),
                decision.reasons.join(", ")
            );
        }
        report["decision"] = serde_json::to_value(&decision).expect("decisions serialise");
    }
    if args.json {
        print_json(&report);
    } else if args.cases.is_none() && args.principal.is_none() {
        println!("policy is valid ({} policies)", engine.policy_ids().len());
    }
    if let Some(core) = core {
        core.store().close().await;
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
