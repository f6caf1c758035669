//! Where a role applies (its scope) and what a decision is about (the resource).
//!
//! Scopes: `server` (everything), `project:<name>` (every dataset, experiment and model whose name
//! starts with `<name>/`), or `<type>:<pattern>` where `*` in the pattern matches any run of
//! characters (`model:fraud-*`, `dataset:claims`). Resources: `<type>:<name>`, or the bare type for
//! singletons (`audit`, `policy`, `server`).

use std::fmt;

use serde::Serialize;

use crate::catalog::ResourceType;
use crate::error::PolicyError;

/// Longest scope or resource name accepted.
pub const MAX_NAME_LEN: usize = 256;

fn check_name(what: &str, name: &str) -> Result<(), PolicyError> {
    if name.len() > MAX_NAME_LEN {
        return Err(PolicyError::InvalidName(format!(
            "{what} is longer than {MAX_NAME_LEN} bytes"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(PolicyError::InvalidName(format!(
            "{what} contains control characters"
        )));
    }
    Ok(())
}

/// What a decision is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Resource {
    pub kind: ResourceType,
    /// Empty for singletons.
    pub name: String,
}

impl Resource {
    pub fn new(kind: ResourceType, name: impl Into<String>) -> Self {
        Resource {
            kind,
            name: name.into(),
        }
    }

    pub fn singleton(kind: ResourceType) -> Self {
        Resource::new(kind, "")
    }

    /// The project of a dataset, experiment or model: the part of its name before the first `/`.
    pub fn project(&self) -> Option<&str> {
        match self.kind {
            ResourceType::Dataset | ResourceType::Experiment | ResourceType::Model => {
                self.name.split_once('/').map(|(p, _)| p)
            }
            _ => None,
        }
    }

    /// Parses `type:name` or a bare type.
    pub fn parse(text: &str) -> Result<Resource, PolicyError> {
        let (kind, name) = text.split_once(':').unwrap_or((text, ""));
        let kind = ResourceType::parse(kind).ok_or_else(|| {
            PolicyError::InvalidName(format!(
                "unknown resource type `{kind}` (expected one of: {})",
                ResourceType::ALL
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        check_name("resource name", name)?;
        Ok(Resource::new(kind, name))
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}:{}", self.kind, self.name)
        }
    }
}

/// Where a role grant (or a token restriction) applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub enum Scope {
    Server,
    Project(String),
    Pattern { kind: ResourceType, pattern: String },
}

impl From<Scope> for String {
    fn from(s: Scope) -> String {
        s.to_string()
    }
}

impl Scope {
    pub fn parse(text: &str) -> Result<Scope, PolicyError> {
        if text == "server" || text == "*" {
            return Ok(Scope::Server);
        }
        let Some((kind, rest)) = text.split_once(':') else {
            return Err(PolicyError::InvalidName(format!(
                "scope `{text}`: expected `server`, `project:<name>` or `<type>:<pattern>`"
            )));
        };
        check_name("scope", rest)?;
        if rest.is_empty() {
            return Err(PolicyError::InvalidName(format!(
                "scope `{text}` has an empty name"
            )));
        }
        if kind == "project" {
            if rest.contains('*') || rest.contains('/') {
                return Err(PolicyError::InvalidName(format!(
                    "project scope `{text}`: a project name has no `*` or `/`"
                )));
            }
            return Ok(Scope::Project(rest.to_owned()));
        }
        let kind = ResourceType::parse(kind)
            .filter(|k| *k != ResourceType::Server)
            .ok_or_else(|| {
                PolicyError::InvalidName(format!("scope `{text}`: unknown resource type `{kind}`"))
            })?;
        Ok(Scope::Pattern {
            kind,
            pattern: rest.to_owned(),
        })
    }

    pub fn covers(&self, resource: &Resource) -> bool {
        match self {
            Scope::Server => true,
            Scope::Project(p) => resource.project() == Some(p.as_str()),
            Scope::Pattern { kind, pattern } => {
                *kind == resource.kind && wildcard_match(pattern, &resource.name)
            }
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Server => f.write_str("server"),
            Scope::Project(p) => write!(f, "project:{p}"),
            Scope::Pattern { kind, pattern } => write!(f, "{kind}:{pattern}"),
        }
    }
}

/// `*` matches any run of characters; everything else matches itself. Linear in practice: the
/// classic greedy matcher with one backtrack point.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        for (p, t, ok) in [
            ("*", "", true),
            ("*", "anything", true),
            ("fraud-*", "fraud-detector", true),
            ("fraud-*", "fraud", false),
            ("*-prod", "model-prod", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("**", "x", true),
        ] {
            assert_eq!(wildcard_match(p, t), ok, "{p} vs {t}");
        }
    }

    #[test]
    fn scopes_cover_what_they_name() {
        let m = Resource::parse("model:fraud/detector").unwrap();
        assert!(Scope::parse("server").unwrap().covers(&m));
        assert!(Scope::parse("project:fraud").unwrap().covers(&m));
        assert!(!Scope::parse("project:fra").unwrap().covers(&m));
        assert!(Scope::parse("model:fraud/*").unwrap().covers(&m));
        assert!(!Scope::parse("dataset:fraud/*").unwrap().covers(&m));
        assert!(
            !Scope::parse("project:fraud")
                .unwrap()
                .covers(&Resource::parse("principal:fraud").unwrap())
        );
        for bad in [
            "",
            "project:",
            "project:a*",
            "nope:x",
            "server:x",
            "model",
            "model:\u{0}",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Scope::parse("model:a-*").unwrap().to_string(), "model:a-*");
    }
}
