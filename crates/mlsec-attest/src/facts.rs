//! What mlsec knows about a model version, gathered once and rendered as a CycloneDX ML-BOM
//! ([`crate::mlbom`]) and as a model card ([`crate::card`]). The [`CardFields`] are the part a
//! maintainer writes (intended use, limitations); everything else comes from the registry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::lockfile::Package;

/// Fields a maintainer edits (a TOML or JSON file kept with the model's code).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CardFields {
    pub summary: Option<String>,
    /// CycloneDX learning approach: supervised, unsupervised, reinforcement-learning,
    /// semi-supervised, self-supervised.
    pub approach: Option<String>,
    pub task: Option<String>,
    pub architecture_family: Option<String>,
    pub model_architecture: Option<String>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub intended_uses: Vec<String>,
    pub out_of_scope_uses: Vec<String>,
    pub users: Vec<String>,
    pub limitations: Vec<String>,
    pub tradeoffs: Vec<String>,
    pub ethical_considerations: Vec<EthicalConsideration>,
    pub license: Option<String>,
    pub contact: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EthicalConsideration {
    pub name: String,
    #[serde(default)]
    pub mitigation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileFact {
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub scan_severity: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetFact {
    /// `name@version` as mlsec versions it, or the name a client logged.
    pub name: String,
    pub version: Option<String>,
    /// SHA-256 of the dataset version's manifest, when it is pinned to an mlsec version.
    pub digest: Option<String>,
    pub classification: Option<String>,
    pub owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricFact {
    pub name: String,
    pub value: f64,
    pub slice: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignatureFact {
    pub kind: String,
    pub key_id: String,
    pub principal: Option<String>,
    pub valid: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelFacts {
    pub name: String,
    pub version: String,
    pub description: String,
    /// RFC 3339.
    pub created_at: String,
    pub created_by: String,
    /// OMS v1.0 root digest of the files (hex).
    pub root_digest: String,
    pub files: Vec<FileFact>,
    pub quarantined: bool,
    pub scan_severity: Option<String>,
    pub run_id: Option<String>,
    pub code_commit: Option<String>,
    pub datasets: Vec<DatasetFact>,
    pub metrics: Vec<MetricFact>,
    pub params: BTreeMap<String, String>,
    pub signatures: Vec<SignatureFact>,
    /// Where the library list came from (a file of the version, or one given).
    pub environment_source: Option<String>,
    pub libraries: Vec<Package>,
    pub card: CardFields,
}
