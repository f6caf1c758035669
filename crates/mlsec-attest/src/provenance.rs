//! Training provenance: an in-toto statement whose subject is a model's root digest and whose
//! SLSA Provenance v1 predicate records what the model was made from (dataset versions, base
//! model, code commit, environment lock) and with which hyper-parameters.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE, Signer, TrustedKey};
use crate::error::{AttestError, Result};
use crate::keys::PublicKey;
use crate::statement::{Statement, Subject};

pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// The build type mlsec records for a tracked training run.
pub const TRAINING_BUILD_TYPE: &str = "https://mlsec.dev/training/v1";

/// An in-toto ResourceDescriptor: something the run consumed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescriptor {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    pub digest: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    pub build_type: String,
    /// What the person starting the run chose: hyper-parameters, entry point.
    pub external_parameters: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub internal_parameters: Value,
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Builder {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_on: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_on: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDetails {
    pub builder: Builder,
    pub metadata: BuildMetadata,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub build_definition: BuildDefinition,
    pub run_details: RunDetails,
}

impl ResourceDescriptor {
    /// A dependency with one digest, tagged with what it is (`dataset`, `code`, `base-model`,
    /// `environment`) in the `mlsec.kind` annotation.
    pub fn new(name: &str, uri: Option<String>, algorithm: &str, digest: &str, kind: &str) -> Self {
        ResourceDescriptor {
            name: name.to_owned(),
            uri,
            digest: [(
                algorithm.to_owned(),
                digest.trim_start_matches("sha256:").to_owned(),
            )]
            .into(),
            annotations: Some(serde_json::json!({ "mlsec.kind": kind })),
        }
    }
}

/// Provenance of a training run: what it consumed and the hyper-parameters chosen for it.
pub fn training(
    dependencies: Vec<ResourceDescriptor>,
    hyperparameters: serde_json::Map<String, Value>,
    builder_id: &str,
    metadata: BuildMetadata,
) -> Provenance {
    Provenance {
        build_definition: BuildDefinition {
            build_type: TRAINING_BUILD_TYPE.into(),
            external_parameters: serde_json::json!({ "hyperparameters": hyperparameters }),
            internal_parameters: Value::Null,
            resolved_dependencies: dependencies,
        },
        run_details: RunDetails {
            builder: Builder {
                id: builder_id.to_owned(),
            },
            metadata,
        },
    }
}

/// The statement for a model whose OMS root digest is `root_digest` (hex).
pub fn statement(model_name: &str, root_digest: &str, provenance: &Provenance) -> Statement {
    Statement::new(
        vec![Subject {
            name: model_name.to_owned(),
            digest: [("sha256".to_owned(), root_digest.to_owned())].into(),
            annotations: None,
        }],
        SLSA_PROVENANCE_V1,
        serde_json::to_value(provenance).expect("provenance serialises"),
    )
}

/// Signs the provenance statement into a DSSE envelope (key id = the key's hint).
pub fn sign(statement: &Statement, signer: &dyn Signer) -> Result<Envelope> {
    let payload = serde_json::to_vec(statement).expect("statements serialise");
    let mut envelope = Envelope::new(IN_TOTO_PAYLOAD_TYPE, &payload);
    envelope.sign(signer, false)?;
    Ok(envelope)
}

fn parse_checked(payload: &[u8], expected_root: Option<&str>) -> Result<(Statement, Provenance)> {
    let statement = Statement::from_slice(payload)?;
    if statement.predicate_type != SLSA_PROVENANCE_V1 {
        return Err(AttestError::Bundle(format!(
            "predicate type is {:?}, expected {SLSA_PROVENANCE_V1}",
            statement.predicate_type
        )));
    }
    let (_, root) = statement.single_sha256_subject()?;
    if let Some(expected) = expected_root
        && !hex::encode(root).eq_ignore_ascii_case(expected)
    {
        return Err(AttestError::Signature(format!(
            "the provenance is about {}, not this model ({expected})",
            hex::encode(root)
        )));
    }
    let provenance: Provenance = serde_json::from_value(statement.predicate.clone())
        .map_err(|e| AttestError::Bundle(format!("not an SLSA Provenance v1 predicate: {e}")))?;
    Ok((statement, provenance))
}

/// Verifies a provenance envelope signed by `key` and, when given, that it is about the model
/// with root digest `expected_root`.
pub fn verify(
    envelope: &Envelope,
    key: &PublicKey,
    expected_root: Option<&str>,
) -> Result<(Statement, Provenance)> {
    let payload = envelope.verify_with(key, IN_TOTO_PAYLOAD_TYPE)?;
    parse_checked(&payload, expected_root)
}

/// As [`verify`], with the signer found among trusted keys (revoked ones refused); the report
/// names the keys and principals that signed.
pub fn verify_trusted(
    envelope: &Envelope,
    keys: &[TrustedKey],
    expected_root: Option<&str>,
) -> Result<(Statement, Provenance, crate::dsse::ThresholdReport)> {
    let (payload, report) = crate::dsse::verify_threshold(envelope, IN_TOTO_PAYLOAD_TYPE, keys, 1)?;
    let (s, p) = parse_checked(&payload, expected_root)?;
    Ok((s, p, report))
}
