use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of principal acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A human account.
    User,
    /// A non-human account used by CI or training jobs.
    ServiceAccount,
    /// The server itself (startup, checkpoints, migrations).
    System,
    /// A caller that presented no valid credentials.
    Anonymous,
}

/// The principal an action is attributed to, as recorded in audit events.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    /// Stable account name (`alice`, `ci-bot`, `system`).
    pub id: String,
}

impl Actor {
    pub fn system() -> Self {
        Actor {
            kind: ActorKind::System,
            id: "system".to_owned(),
        }
    }

    pub fn anonymous() -> Self {
        Actor {
            kind: ActorKind::Anonymous,
            id: "anonymous".to_owned(),
        }
    }

    pub fn user(id: impl Into<String>) -> Self {
        Actor {
            kind: ActorKind::User,
            id: id.into(),
        }
    }

    pub fn service_account(id: impl Into<String>) -> Self {
        Actor {
            kind: ActorKind::ServiceAccount,
            id: id.into(),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ActorKind::User => "user",
            ActorKind::ServiceAccount => "service",
            ActorKind::System => "system",
            ActorKind::Anonymous => "anonymous",
        };
        write!(f, "{kind}:{}", self.id)
    }
}
