//! What a signature covers: the list of resources (files or shards with their digests), the
//! serialization parameters, and the root digest that the statement's subject carries.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::hashing::HashAlgorithm;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Serialization {
    /// One resource per file, hashed whole.
    Files,
    /// One resource per `shard_size` bytes of each file (empty files have none).
    Shards { shard_size: u64 },
}

impl Serialization {
    pub fn method(self) -> &'static str {
        match self {
            Serialization::Files => "files",
            Serialization::Shards { .. } => "shards",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    pub name: String,
    pub algorithm: String,
    #[serde(serialize_with = "hex_bytes")]
    pub digest: Vec<u8>,
}

fn hex_bytes<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

/// The serialization block of an OMS predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SerializationParams {
    pub serialization: Serialization,
    pub hash: HashAlgorithm,
    pub allow_symlinks: bool,
    pub ignore_paths: Vec<String>,
}

/// SHA-256 over the concatenated raw digests, in the order given (OMS v1.0 root digest; it is
/// SHA-256 whatever the resources were hashed with).
pub fn root_digest(resources: &[Resource]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    for r in resources {
        h.update(&r.digest);
    }
    h.finalize().into()
}

/// The difference between what was signed and what is on disk. Names are sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// Signed, with another digest now.
    pub changed: Vec<String>,
    /// Signed, not present.
    pub missing: Vec<String>,
    /// Present, not signed.
    pub unsigned: Vec<String>,
}

impl Mismatch {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.missing.is_empty() && self.unsigned.is_empty()
    }
}

fn list(f: &mut fmt::Formatter<'_>, what: &str, names: &[String]) -> fmt::Result {
    const SHOWN: usize = 20;
    write!(f, "{} {what}: ", names.len())?;
    for (i, n) in names.iter().take(SHOWN).enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{n}")?;
    }
    if names.len() > SHOWN {
        write!(f, ", … ({} more)", names.len() - SHOWN)?;
    }
    Ok(())
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the model does not match its signature: ")?;
        let mut first = true;
        for (what, names) in [
            ("changed", &self.changed),
            ("missing", &self.missing),
            ("not signed", &self.unsigned),
        ] {
            if names.is_empty() {
                continue;
            }
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            list(f, what, names)?;
        }
        Ok(())
    }
}

/// Compares signed and local resources as maps of name → (algorithm, digest).
pub fn compare(signed: &[Resource], local: &[Resource]) -> Mismatch {
    let signed: BTreeMap<&str, &Resource> = signed.iter().map(|r| (r.name.as_str(), r)).collect();
    let local: BTreeMap<&str, &Resource> = local.iter().map(|r| (r.name.as_str(), r)).collect();
    let mut m = Mismatch::default();
    for (name, s) in &signed {
        match local.get(name) {
            None => m.missing.push((*name).to_owned()),
            Some(l) if l.algorithm != s.algorithm || l.digest != s.digest => {
                m.changed.push((*name).to_owned())
            }
            Some(_) => {}
        }
    }
    for name in local.keys() {
        if !signed.contains_key(name) {
            m.unsigned.push((*name).to_owned());
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, d: u8) -> Resource {
        Resource {
            name: name.into(),
            algorithm: "sha256".into(),
            digest: vec![d; 32],
        }
    }

    #[test]
    fn root_digest_is_order_sensitive_sha256_of_raw_digests() {
        assert_eq!(
            hex::encode(root_digest(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let a = [r("a", 1), r("b", 2)];
        let b = [r("b", 2), r("a", 1)];
        assert_ne!(root_digest(&a), root_digest(&b));
    }

    #[test]
    fn compare_names_every_difference() {
        let signed = [r("a", 1), r("b", 2), r("c", 3)];
        let local = [r("a", 1), r("b", 9), r("d", 4)];
        let m = compare(&signed, &local);
        assert_eq!(m.changed, ["b"]);
        assert_eq!(m.missing, ["c"]);
        assert_eq!(m.unsigned, ["d"]);
        let text = m.to_string();
        assert!(
            text.contains("1 changed: b") && text.contains("1 missing: c"),
            "{text}"
        );
        assert!(compare(&signed, &signed).is_empty());
    }
}
