//! in-toto Statement v1 and the OMS v1.0 predicate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{AttestError, Result};
use crate::hashing::{HashAlgorithm, resource_algorithm};
use crate::manifest::{Resource, Serialization, SerializationParams};
use crate::tree::{MAX_FILES, check_name};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const OMS_PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// Resources beyond this many (files or shards) make a payload malformed.
pub const MAX_RESOURCES: usize = 4 * MAX_FILES;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    pub name: String,
    pub digest: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    #[serde(default)]
    pub predicate: Value,
}

impl Statement {
    pub fn new(subject: Vec<Subject>, predicate_type: &str, predicate: Value) -> Self {
        Statement {
            statement_type: STATEMENT_TYPE.into(),
            subject,
            predicate_type: predicate_type.into(),
            predicate,
        }
    }

    pub fn from_slice(payload: &[u8]) -> Result<Self> {
        let s: Statement = serde_json::from_slice(payload).map_err(|e| {
            AttestError::Bundle(format!("payload is not an in-toto statement: {e}"))
        })?;
        if s.statement_type != STATEMENT_TYPE {
            return Err(AttestError::Bundle(format!(
                "statement type is {:?}, expected {STATEMENT_TYPE}",
                s.statement_type
            )));
        }
        Ok(s)
    }

    /// The single subject's SHA-256 digest, as raw bytes.
    pub fn single_sha256_subject(&self) -> Result<(&Subject, [u8; 32])> {
        let [subject] = self.subject.as_slice() else {
            return Err(AttestError::Bundle(format!(
                "expected one subject, found {}",
                self.subject.len()
            )));
        };
        let hex_digest = subject
            .digest
            .get("sha256")
            .ok_or_else(|| AttestError::Bundle("the subject has no sha256 digest".into()))?;
        let mut raw = [0u8; 32];
        hex::decode_to_slice(hex_digest, &mut raw).map_err(|_| {
            AttestError::Bundle(format!(
                "subject digest {hex_digest:?} is not 64 hex digits"
            ))
        })?;
        Ok((subject, raw))
    }
}

/// Builds the OMS predicate. `shard_size` is written as an integer (the reference writes a
/// float, which its own configuration guesser then cannot read back).
pub fn oms_predicate(params: &SerializationParams, resources: &[Resource]) -> Value {
    let mut serialization = json!({
        "method": params.serialization.method(),
        "hash_type": params.hash.name(),
        "allow_symlinks": params.allow_symlinks,
    });
    if let Serialization::Shards { shard_size } = params.serialization {
        serialization["shard_size"] = json!(shard_size);
    }
    if !params.ignore_paths.is_empty() {
        serialization["ignore_paths"] = json!(params.ignore_paths);
    }
    json!({ "serialization": serialization, "resources": resources })
}

fn field<'v>(object: &'v Value, key: &str, within: &str) -> Result<&'v Value> {
    object
        .get(key)
        .ok_or_else(|| AttestError::Bundle(format!("`{within}` has no `{key}`")))
}

fn as_str<'v>(value: &'v Value, what: &str) -> Result<&'v str> {
    value
        .as_str()
        .ok_or_else(|| AttestError::Bundle(format!("`{what}` is not a string")))
}

/// An integer, also when written as an integral float (`1048576.0`, as the reference does).
fn as_u64(value: &Value, what: &str) -> Result<u64> {
    if let Some(n) = value.as_u64() {
        return Ok(n);
    }
    match value.as_f64() {
        Some(f) if f.fract() == 0.0 && f > 0.0 && f < 9.0e15 => Ok(f as u64),
        _ => Err(AttestError::Bundle(format!(
            "`{what}` is not a positive integer"
        ))),
    }
}

/// The file a resource name refers to and, for shards, its byte range.
pub fn split_resource_name(
    name: &str,
    serialization: Serialization,
) -> Result<(&str, Option<(u64, u64)>)> {
    match serialization {
        Serialization::Files => {
            check_name(name)?;
            Ok((name, None))
        }
        Serialization::Shards { shard_size } => {
            let bad =
                || AttestError::Bundle(format!("shard name {name:?} is not `path:start:end`"));
            let (rest, end) = name.rsplit_once(':').ok_or_else(bad)?;
            let (path, start) = rest.rsplit_once(':').ok_or_else(bad)?;
            let start: u64 = start.parse().map_err(|_| bad())?;
            let end: u64 = end.parse().map_err(|_| bad())?;
            if start >= end || end - start > shard_size || !start.is_multiple_of(shard_size) {
                return Err(AttestError::Bundle(format!(
                    "shard {name:?} is not a {shard_size}-byte shard"
                )));
            }
            check_name(path)?;
            Ok((path, Some((start, end))))
        }
    }
}

/// Reads and checks an OMS v1.0 predicate: known method and hash, resource names that stay
/// inside the model, no duplicates, digests of the right length.
pub fn parse_oms_predicate(predicate: &Value) -> Result<(SerializationParams, Vec<Resource>)> {
    let ser = field(predicate, "serialization", "predicate")?;
    let method = as_str(
        field(ser, "method", "serialization")?,
        "serialization.method",
    )?;
    let hash = HashAlgorithm::parse(as_str(
        field(ser, "hash_type", "serialization")?,
        "serialization.hash_type",
    )?)?;
    let serialization = match method {
        "files" => Serialization::Files,
        "shards" => Serialization::Shards {
            shard_size: as_u64(field(ser, "shard_size", "serialization")?, "shard_size")?,
        },
        other => {
            return Err(AttestError::Bundle(format!(
                "serialization method {other:?} is not known (files, shards)"
            )));
        }
    };
    let allow_symlinks = match ser.get("allow_symlinks") {
        None => false,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| AttestError::Bundle("`allow_symlinks` is not a boolean".into()))?,
    };
    let mut ignore_paths = Vec::new();
    if let Some(list) = ser.get("ignore_paths") {
        let list = list
            .as_array()
            .ok_or_else(|| AttestError::Bundle("`ignore_paths` is not a list".into()))?;
        for p in list {
            ignore_paths.push(as_str(p, "ignore_paths[]")?.to_owned());
        }
    }
    ignore_paths.sort();
    let list = field(predicate, "resources", "predicate")?
        .as_array()
        .ok_or_else(|| AttestError::Bundle("`resources` is not a list".into()))?;
    if list.len() > MAX_RESOURCES {
        return Err(AttestError::Limit {
            what: "resources in one signature".into(),
            limit: MAX_RESOURCES as u64,
        });
    }
    let expected_algorithm = resource_algorithm(serialization, hash);
    let digest_len = 32;
    let mut seen = std::collections::HashSet::with_capacity(list.len());
    let mut resources = Vec::with_capacity(list.len());
    for r in list {
        let name = as_str(field(r, "name", "resource")?, "resource.name")?;
        split_resource_name(name, serialization)?;
        let algorithm = as_str(field(r, "algorithm", "resource")?, "resource.algorithm")?;
        if algorithm != expected_algorithm {
            return Err(AttestError::Bundle(format!(
                "resource {name:?} uses {algorithm:?}, the serialization says {expected_algorithm:?}"
            )));
        }
        let digest_hex = as_str(field(r, "digest", "resource")?, "resource.digest")?;
        let digest = hex::decode(digest_hex)
            .ok()
            .filter(|d| d.len() == digest_len)
            .ok_or_else(|| {
                AttestError::Bundle(format!("resource {name:?} has a malformed digest"))
            })?;
        if !seen.insert(name) {
            return Err(AttestError::Bundle(format!(
                "resource {name:?} is listed twice"
            )));
        }
        resources.push(Resource {
            name: name.to_owned(),
            algorithm: algorithm.to_owned(),
            digest,
        });
    }
    Ok((
        SerializationParams {
            serialization,
            hash,
            allow_symlinks,
            ignore_paths,
        },
        resources,
    ))
}
