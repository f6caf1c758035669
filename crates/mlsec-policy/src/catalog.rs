//! What can be protected and what can be done to it: the resource types, the action catalog and
//! the built-in roles. The Cedar schema is generated from this table, so a policy that names an
//! unknown action or misspells a context field is rejected before it can take effect.

use std::fmt;

use serde::Serialize;

/// The kinds of things a decision is about. Each is a Cedar entity type `Mlsec::<Name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    /// The server itself (settings, catalog queries).
    Server,
    /// Content-addressed blobs.
    Blob,
    Dataset,
    /// Experiments and their runs.
    Experiment,
    /// Registered models, their versions and aliases.
    Model,
    Approval,
    /// The authorization policy.
    Policy,
    /// The audit log.
    Audit,
    /// Users and service accounts, and the tokens, roles and second factors they own.
    Principal,
    /// API keys of the LLM gateway.
    GatewayKey,
}

impl ResourceType {
    pub const ALL: &'static [ResourceType] = &[
        ResourceType::Server,
        ResourceType::Blob,
        ResourceType::Dataset,
        ResourceType::Experiment,
        ResourceType::Model,
        ResourceType::Approval,
        ResourceType::Policy,
        ResourceType::Audit,
        ResourceType::Principal,
        ResourceType::GatewayKey,
    ];

    /// The name used in scopes (`model:fraud-*`) and resource references (`model:fraud`).
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Server => "server",
            ResourceType::Blob => "blob",
            ResourceType::Dataset => "dataset",
            ResourceType::Experiment => "experiment",
            ResourceType::Model => "model",
            ResourceType::Approval => "approval",
            ResourceType::Policy => "policy",
            ResourceType::Audit => "audit",
            ResourceType::Principal => "principal",
            ResourceType::GatewayKey => "gateway_key",
        }
    }

    /// The Cedar entity type name, without the namespace.
    pub fn cedar_name(self) -> &'static str {
        match self {
            ResourceType::Server => "Server",
            ResourceType::Blob => "Blob",
            ResourceType::Dataset => "Dataset",
            ResourceType::Experiment => "Experiment",
            ResourceType::Model => "Model",
            ResourceType::Approval => "Approval",
            ResourceType::Policy => "Policy",
            ResourceType::Audit => "Audit",
            ResourceType::Principal => "Principal",
            ResourceType::GatewayKey => "GatewayKey",
        }
    }

    pub fn parse(text: &str) -> Option<ResourceType> {
        ResourceType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == text)
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One action of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ActionSpec {
    /// Stable name, `<resource>.<verb>`; also the Cedar action id.
    pub name: &'static str,
    pub resource: ResourceType,
    /// Action groups it belongs to (Cedar `in`), which policies refer to.
    pub groups: &'static [&'static str],
    pub description: &'static str,
}

/// Action groups: `read` holds every action that changes nothing.
pub const GROUPS: &[(&str, &str)] = &[
    ("read", "every action that changes nothing"),
    (
        "content.read",
        "read datasets, experiments, runs, models, approvals and blobs",
    ),
    (
        "content.write",
        "add datasets, runs, model versions and blobs (never delete, promote or approve)",
    ),
    (
        "governance.read",
        "read the audit log, the policy and the accounts",
    ),
    (
        "self",
        "what every principal may do to its own account (tokens, second factor, password)",
    ),
];

macro_rules! action {
    ($name:literal, $res:ident, [$($g:literal),*], $desc:literal) => {
        ActionSpec { name: $name, resource: ResourceType::$res, groups: &[$($g),*], description: $desc }
    };
}

/// Every action mlsec asks about. A route or command that acts must name one of these.
pub const ACTIONS: &[ActionSpec] = &[
    action!(
        "blob.read",
        Blob,
        ["read", "content.read"],
        "download or verify a blob"
    ),
    action!("blob.write", Blob, ["content.write"], "upload a blob"),
    action!(
        "dataset.read",
        Dataset,
        ["read", "content.read"],
        "read dataset versions, profiles and reports"
    ),
    action!(
        "dataset.write",
        Dataset,
        ["content.write"],
        "add a dataset version"
    ),
    action!(
        "dataset.delete",
        Dataset,
        [],
        "delete a dataset or a version"
    ),
    action!(
        "dataset.approve",
        Dataset,
        [],
        "approve a dataset version for training"
    ),
    action!(
        "experiment.read",
        Experiment,
        ["read", "content.read"],
        "read experiments, runs, metrics and artifacts"
    ),
    action!(
        "experiment.write",
        Experiment,
        ["content.write"],
        "create experiments and runs, log metrics, params and artifacts"
    ),
    action!(
        "experiment.delete",
        Experiment,
        [],
        "delete experiments and runs"
    ),
    action!(
        "model.read",
        Model,
        ["read", "content.read"],
        "read registered models, versions and aliases"
    ),
    action!(
        "model.write",
        Model,
        ["content.write"],
        "register models and create versions"
    ),
    action!("model.delete", Model, [], "delete models and versions"),
    action!("model.alias", Model, [], "move an unprotected alias"),
    action!(
        "model.promote",
        Model,
        [],
        "move a protected alias (production promotion)"
    ),
    action!(
        "approval.read",
        Approval,
        ["read", "content.read"],
        "read approval requests and decisions"
    ),
    action!("approval.request", Approval, [], "open an approval request"),
    action!(
        "approval.decide",
        Approval,
        [],
        "approve or reject a request"
    ),
    action!(
        "policy.read",
        Policy,
        ["read", "governance.read"],
        "read the authorization policy and evaluate it"
    ),
    action!(
        "policy.write",
        Policy,
        [],
        "replace the authorization policy"
    ),
    action!(
        "audit.read",
        Audit,
        ["read", "governance.read"],
        "read, search, verify and export the audit log"
    ),
    action!(
        "principal.read",
        Principal,
        ["read", "governance.read", "self"],
        "read an account, its roles and tokens (not their secrets)"
    ),
    action!(
        "principal.write",
        Principal,
        [],
        "create, update, disable, enable or delete an account"
    ),
    action!(
        "principal.password",
        Principal,
        ["self"],
        "set an account's password"
    ),
    action!("role.grant", Principal, [], "grant or revoke a role"),
    action!(
        "token.create",
        Principal,
        ["self"],
        "create an API token for an account"
    ),
    action!(
        "token.revoke",
        Principal,
        ["self"],
        "revoke an API token of an account"
    ),
    action!(
        "mfa.manage",
        Principal,
        ["self"],
        "enrol or remove a second factor"
    ),
    action!(
        "signing_key.read",
        Principal,
        ["self", "read"],
        "list an account's signing keys"
    ),
    action!(
        "signing_key.write",
        Principal,
        ["self"],
        "generate, import or revoke a signing key of an account"
    ),
    action!(
        "gateway_key.read",
        GatewayKey,
        ["read"],
        "list gateway API keys"
    ),
    action!(
        "gateway_key.write",
        GatewayKey,
        [],
        "create or revoke gateway API keys"
    ),
];

pub fn action(name: &str) -> Option<&'static ActionSpec> {
    ACTIONS.iter().find(|a| a.name == name)
}

/// A built-in role. What it permits is written in the policy, not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RoleSpec {
    pub name: &'static str,
    pub description: &'static str,
}

pub const ROLES: &[RoleSpec] = &[
    RoleSpec {
        name: "admin",
        description: "everything, including accounts, roles and policy (privileged actions still need a second factor)",
    },
    RoleSpec {
        name: "maintainer",
        description: "read and write content, delete it, move aliases, promote models, request approvals, manage gateway keys",
    },
    RoleSpec {
        name: "reviewer",
        description: "read content and decide approval requests",
    },
    RoleSpec {
        name: "viewer",
        description: "read datasets, experiments, models, approvals and blobs",
    },
    RoleSpec {
        name: "auditor",
        description: "read the audit log, the policy, the accounts and all content; change nothing",
    },
    RoleSpec {
        name: "ci",
        description: "for CI and training jobs: read content, add dataset versions, runs, model versions and blobs",
    },
];

pub fn role(name: &str) -> Option<&'static RoleSpec> {
    ROLES.iter().find(|r| r.name == name)
}
