//! Policy test cases: a TOML file of requests and the decision each must get, so a policy change
//! can be tested in CI before it is applied (`mlsec policy check --cases FILE`).
//!
//! ```toml
//! [[case]]
//! name = "CI may not promote"
//! principal = "ci-bot"
//! kind = "service_account"          # default "user"
//! grants = ["ci@project:fraud"]     # role@scope
//! action = "model.promote"
//! resource = "model:fraud/detector"
//! mfa = false                       # default false
//! expect = "deny"                   # allow | deny | second_factor
//! ```

use serde::{Deserialize, Serialize};

use crate::engine::{Grant, PolicyEngine, Subject, TokenRestriction, action_named};
use crate::error::PolicyError;
use crate::scope::{Resource, Scope};

/// Largest cases file accepted.
const MAX_CASES_BYTES: usize = 4 << 20;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    #[serde(default)]
    case: Vec<PolicyCase>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyCase {
    #[serde(default)]
    pub name: Option<String>,
    pub principal: String,
    #[serde(default = "user")]
    pub kind: String,
    #[serde(default)]
    pub grants: Vec<String>,
    #[serde(default)]
    pub read_only_token: bool,
    #[serde(default)]
    pub token_resources: Option<Vec<String>>,
    pub action: String,
    pub resource: String,
    #[serde(default)]
    pub mfa: bool,
    #[serde(default)]
    pub session: bool,
    pub expect: Expect,
}

fn user() -> String {
    "user".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    Allow,
    Deny,
    SecondFactor,
}

/// One case and what the policy answered.
#[derive(Debug, Clone, Serialize)]
pub struct CaseOutcome {
    pub name: String,
    pub expected: Expect,
    pub got: Expect,
    pub passed: bool,
    pub decision: crate::engine::Decision,
}

/// Parses `role@scope`.
pub fn parse_grant(text: &str) -> Result<Grant, PolicyError> {
    let (role, scope) = text.split_once('@').unwrap_or((text, "server"));
    if crate::catalog::role(role).is_none() {
        return Err(PolicyError::InvalidName(format!("unknown role `{role}`")));
    }
    Ok(Grant {
        role: role.to_owned(),
        scope: Scope::parse(scope)?,
    })
}

/// Runs every case of a TOML cases file against `engine`.
pub fn run_cases(engine: &PolicyEngine, toml_text: &str) -> Result<Vec<CaseOutcome>, PolicyError> {
    if toml_text.len() > MAX_CASES_BYTES {
        return Err(PolicyError::Cases(format!(
            "file is larger than {MAX_CASES_BYTES} bytes"
        )));
    }
    let file: CasesFile =
        toml::from_str(toml_text).map_err(|e| PolicyError::Cases(e.to_string()))?;
    let mut out = Vec::with_capacity(file.case.len());
    for (i, case) in file.case.into_iter().enumerate() {
        let name = case.name.clone().unwrap_or_else(|| {
            format!(
                "case {} ({} {} {})",
                i + 1,
                case.principal,
                case.action,
                case.resource
            )
        });
        let fail = |e: PolicyError| PolicyError::Cases(format!("{name}: {e}"));
        let grants = case
            .grants
            .iter()
            .map(|g| parse_grant(g))
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail)?;
        let restriction = TokenRestriction {
            read_only: case.read_only_token,
            resources: case
                .token_resources
                .as_ref()
                .map(|v| {
                    v.iter()
                        .map(|s| Scope::parse(s))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()
                .map_err(fail)?,
        };
        let action = action_named(&case.action).map_err(fail)?;
        let resource = Resource::parse(&case.resource).map_err(fail)?;
        let subject = Subject {
            id: &case.principal,
            kind: &case.kind,
            grants: &grants,
            restriction: &restriction,
            session: case.session,
        };
        let decision = engine.decide(&subject, action, &resource, case.mfa);
        let got = if decision.allowed {
            Expect::Allow
        } else if decision.needs_second_factor {
            Expect::SecondFactor
        } else {
            Expect::Deny
        };
        out.push(CaseOutcome {
            name,
            expected: case.expect,
            got,
            passed: got == case.expect,
            decision,
        });
    }
    Ok(out)
}
