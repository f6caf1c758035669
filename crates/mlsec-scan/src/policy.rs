//! The pickle policy: which globals a pickle may name. Data, not code: the default ships inside
//! the binary (`policy/default.toml`), and users extend it with their own file.

use serde::Deserialize;

const DEFAULT_POLICY: &str = include_str!("../policy/default.toml");

/// What the policy says about one global.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobalVerdict {
    /// Matches a deny entry: loading this pickle can run code or touch the system.
    Denied { pattern: String, reason: String },
    /// Matches an allow entry and no deny entry.
    Allowed,
    /// Matches neither.
    Unknown,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    deny: Vec<DenyEntry>,
    #[serde(default)]
    allow: Vec<AllowEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyEntry {
    pub pattern: String,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowEntry {
    pub pattern: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy file: {0}")]
    Parse(String),
    #[error("policy pattern `{0}` must look like `module:name` (with optional `*`)")]
    Pattern(String),
}

#[derive(Debug, Clone)]
struct Pattern {
    module: String,
    name: String,
    text: String,
}

impl Pattern {
    fn parse(text: &str) -> Result<Self, PolicyError> {
        let (module, name) = text
            .split_once(':')
            .filter(|(m, n)| !m.is_empty() && !n.is_empty())
            .ok_or_else(|| PolicyError::Pattern(text.to_owned()))?;
        Ok(Pattern {
            module: module.to_owned(),
            name: name.to_owned(),
            text: text.to_owned(),
        })
    }

    fn matches(&self, module: &str, name: &str) -> bool {
        glob(&self.module, module) && glob(&self.name, name)
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

#[derive(Debug, Clone)]
pub struct Policy {
    deny: Vec<(Pattern, String)>,
    allow: Vec<Pattern>,
}

impl Policy {
    /// The policy shipped with mlsec.
    pub fn default_policy() -> Self {
        Policy::from_toml(DEFAULT_POLICY).expect("the shipped policy parses")
    }

    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let file: PolicyFile =
            toml::from_str(text).map_err(|e| PolicyError::Parse(e.to_string()))?;
        let mut policy = Policy {
            deny: Vec::new(),
            allow: Vec::new(),
        };
        policy.add(file)?;
        Ok(policy)
    }

    /// Adds a user's entries to this policy (deny entries still win over allow entries).
    pub fn extend_from_toml(&mut self, text: &str) -> Result<(), PolicyError> {
        let file: PolicyFile =
            toml::from_str(text).map_err(|e| PolicyError::Parse(e.to_string()))?;
        self.add(file)
    }

    fn add(&mut self, file: PolicyFile) -> Result<(), PolicyError> {
        for d in file.deny {
            self.deny.push((Pattern::parse(&d.pattern)?, d.reason));
        }
        for a in file.allow {
            self.allow.push(Pattern::parse(&a.pattern)?);
        }
        Ok(())
    }

    /// Judges the global `module.name` as `find_class` would resolve it.
    ///
    /// Dotted names (`a.b.c`, allowed from protocol 4) are walked attribute by attribute, so each
    /// prefix is judged too: `torch:_utils.os.system` is denied through `os`, and any dunder
    /// step (`__globals__`, `__builtins__`, `__class__`) reaches interpreter internals and is
    /// denied outright.
    pub fn judge(&self, module: &str, name: &str) -> GlobalVerdict {
        if let Some(dunder) = name
            .split('.')
            .find(|p| p.starts_with("__") && p.ends_with("__") && p.len() > 4)
            && (name.contains('.')
                || matches!(
                    dunder,
                    "__builtins__" | "__globals__" | "__class__" | "__subclasses__" | "__dict__"
                ))
        {
            return GlobalVerdict::Denied {
                pattern: format!("{module}:{name}"),
                reason: format!(
                    "attribute traversal through `{dunder}` reaches interpreter internals"
                ),
            };
        }
        // Each dotted step: module.a.b as (module, a), (module.a, b), … and the full name.
        let parts: Vec<&str> = name.split('.').collect();
        for split in 0..parts.len() {
            let m = if split == 0 {
                module.to_owned()
            } else {
                format!("{module}.{}", parts[..split].join("."))
            };
            let n = parts[split..].join(".");
            if let Some((p, reason)) = self
                .deny
                .iter()
                .find(|(p, _)| p.matches(&m, &n) || p.matches(&m, parts[split]))
            {
                return GlobalVerdict::Denied {
                    pattern: p.text.clone(),
                    reason: reason.clone(),
                };
            }
        }
        if parts.len() > 1 {
            // The module a dotted name walks into through an attribute is a module too.
            // An attribute named like a dangerous module (`torch:_utils.os.system`) is taken to be
            // that module: a loader resolving the name walks straight into it.
            for step in parts.windows(2) {
                if let Some((p, reason)) =
                    self.deny.iter().find(|(p, _)| p.matches(step[0], step[1]))
                {
                    return GlobalVerdict::Denied {
                        pattern: p.text.clone(),
                        reason: format!("{reason} (reached as an attribute of `{module}`)"),
                    };
                }
            }
        }
        if self.allow.iter().any(|p| p.matches(module, name)) {
            GlobalVerdict::Allowed
        } else {
            GlobalVerdict::Unknown
        }
    }

    /// Every pattern, for the test that checks each entry is exercised.
    pub fn patterns(&self) -> (Vec<String>, Vec<String>) {
        (
            self.deny.iter().map(|(p, _)| p.text.clone()).collect(),
            self.allow.iter().map(|p| p.text.clone()).collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_runs() {
        assert!(glob("os", "os"));
        assert!(!glob("os", "osx"));
        assert!(glob("*", ""));
        assert!(glob(
            "torch:*Storage".split(':').nth(1).unwrap(),
            "FloatStorage"
        ));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXcYYb"));
        assert!(glob("importlib*", "importlib.machinery"));
    }

    #[test]
    fn verdicts() {
        let p = Policy::default_policy();
        assert!(matches!(
            p.judge("os", "system"),
            GlobalVerdict::Denied { .. }
        ));
        assert!(matches!(
            p.judge("posix", "system"),
            GlobalVerdict::Denied { .. }
        ));
        assert!(matches!(
            p.judge("builtins", "eval"),
            GlobalVerdict::Denied { .. }
        ));
        assert_eq!(
            p.judge("torch._utils", "_rebuild_tensor_v2"),
            GlobalVerdict::Allowed
        );
        assert_eq!(
            p.judge("collections", "OrderedDict"),
            GlobalVerdict::Allowed
        );
        assert_eq!(p.judge("mypkg.model", "Net"), GlobalVerdict::Unknown);
        // Dotted names are walked.
        assert!(matches!(
            p.judge("torch", "_utils.os.system"),
            GlobalVerdict::Denied { .. }
        ));
        assert!(matches!(
            p.judge("collections", "OrderedDict.__class__"),
            GlobalVerdict::Denied { .. }
        ));
        assert!(matches!(
            p.judge("numpy", "testing._private.utils.runstring"),
            GlobalVerdict::Denied { .. }
        ));
        // Deny wins over allow.
        let mut q = Policy::default_policy();
        q.extend_from_toml("[[allow]]\npattern = \"os:system\"\n")
            .unwrap();
        assert!(matches!(
            q.judge("os", "system"),
            GlobalVerdict::Denied { .. }
        ));
    }

    #[test]
    fn bad_policy_files_are_errors() {
        assert!(Policy::from_toml("[[deny]]\npattern = \"os\"\nreason = \"x\"\n").is_err());
        assert!(Policy::from_toml("[[deny]]\npattern = \"os:*\"\n").is_err());
        assert!(Policy::from_toml("[[allow]]\npattern = \"a:b\"\nextra = 1\n").is_err());
    }

    /// Every shipped entry decides at least one concrete global the way it says.
    #[test]
    fn every_shipped_entry_is_exercised() {
        let p = Policy::default_policy();
        let (deny, allow) = p.patterns();
        let concrete = |pat: &str| pat.replace('*', "x");
        for d in &deny {
            let (m, n) = concrete(d)
                .split_once(':')
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .unwrap();
            assert!(
                matches!(p.judge(&m, &n), GlobalVerdict::Denied { .. }),
                "deny `{d}` not exercised"
            );
        }
        for a in &allow {
            let (m, n) = concrete(a)
                .split_once(':')
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .unwrap();
            assert_eq!(
                p.judge(&m, &n),
                GlobalVerdict::Allowed,
                "allow `{a}` is shadowed by a deny entry"
            );
        }
    }
}

#[cfg(test)]
mod false_positive_tests {
    use super::*;

    /// Module names that merely start like a dangerous one are not caught by its pattern.
    #[test]
    fn lookalike_module_names_are_not_denied() {
        let p = Policy::default_policy();
        for (m, n) in [
            ("tests.models", "Net"),
            ("pipeline", "Stage"),
            ("dillon", "X"),
            ("testing_utils", "f"),
        ] {
            assert_eq!(p.judge(m, n), GlobalVerdict::Unknown, "{m}.{n}");
        }
        for (m, n) in [
            ("test.support.script_helper", "assert_python_ok"),
            ("pip._internal", "main"),
            ("dill._dill", "loads"),
        ] {
            assert!(
                matches!(p.judge(m, n), GlobalVerdict::Denied { .. }),
                "{m}.{n}"
            );
        }
    }
}
