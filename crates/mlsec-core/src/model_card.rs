//! What the registry knows about a model version, gathered for its ML-BOM and model card: the
//! files and their scan results, the training run's pinned datasets, code commit, metrics and
//! parameters, the signatures checked now, and the packages of the training environment.

use std::collections::BTreeMap;

use mlsec_attest::facts::{
    CardFields, DatasetFact, FileFact, MetricFact, ModelFacts, SignatureFact,
};
use mlsec_attest::lockfile::{self, LockFormat, Package};
use mlsec_types::Digest;

use crate::error::CoreError;
use crate::service::{Mlsec, RequestCtx};

/// Files of a version that describe its environment, in order of preference.
const ENVIRONMENT_FILES: &[&str] = &["uv.lock", "poetry.lock", "requirements.txt", "conda.yaml"];

/// The version's environment file (by [`ENVIRONMENT_FILES`] preference, at any depth).
pub(crate) fn environment_file(files: &[crate::ModelFileView]) -> Option<&crate::ModelFileView> {
    ENVIRONMENT_FILES.iter().find_map(|wanted| {
        files
            .iter()
            .find(|f| f.path.rsplit('/').next() == Some(wanted))
    })
}

pub(crate) fn rfc3339(millis: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

impl Mlsec {
    /// Reads a small file of the version (a lock file) through the blob store.
    async fn version_text(
        &self,
        ctx: &RequestCtx,
        sha256: &str,
        size: i64,
    ) -> Result<Option<String>, CoreError> {
        if size < 0 || size as usize > lockfile::MAX_LOCK_BYTES {
            return Ok(None);
        }
        let digest = Digest::parse(sha256)
            .or_else(|_| Digest::parse(&format!("sha256:{sha256}")))
            .map_err(|e| CoreError::Key(format!("stored digest: {e}")))?;
        let (mut stream, _) = self.open_blob(ctx, &digest).await?;
        let mut bytes = Vec::with_capacity(size as usize);
        while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
            bytes.extend_from_slice(
                &chunk.map_err(|e| CoreError::Key(format!("reading a blob: {e}")))?,
            );
            if bytes.len() > lockfile::MAX_LOCK_BYTES {
                return Ok(None);
            }
        }
        Ok(String::from_utf8(bytes).ok())
    }

    /// Facts for the BOM and card. `environment` overrides the lock file found among the
    /// version's files (`uv.lock`, `poetry.lock`, `requirements.txt`, `conda.yaml`).
    pub async fn model_facts(
        &self,
        ctx: &RequestCtx,
        name: &str,
        version: &str,
        card: CardFields,
        environment: Option<(String, Vec<Package>)>,
    ) -> Result<ModelFacts, CoreError> {
        let v = self.model_version(ctx, name, version).await?;
        let verification = self.verify_model_version(ctx, &v.name, &v.version).await?;
        let lineage = &v.lineage;
        let datasets = lineage["inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                let pinned = i["mlsec_version"].as_str();
                let (ds_name, ds_version) = match pinned.and_then(|p| p.rsplit_once('@')) {
                    Some((n, ver)) => (n.to_owned(), Some(ver.to_owned())),
                    None => (i["name"].as_str().unwrap_or("unnamed").to_owned(), None),
                };
                DatasetFact {
                    name: ds_name,
                    version: ds_version,
                    digest: i["mlsec_digest"].as_str().map(str::to_owned),
                    classification: None,
                    owner: None,
                }
            })
            .collect();
        let (mut metrics, mut params) = (Vec::new(), BTreeMap::new());
        if let Some(run_id) = &v.run_id
            && let Ok(run) = self.run(ctx, run_id).await
        {
            // The last value of each metric (highest step, then latest time).
            let mut last: BTreeMap<&str, (i64, i64, f64)> = BTreeMap::new();
            for m in &run.metrics {
                let e = last
                    .entry(m.key.as_str())
                    .or_insert((m.step, m.timestamp, m.value));
                if (m.step, m.timestamp) >= (e.0, e.1) {
                    *e = (m.step, m.timestamp, m.value);
                }
            }
            metrics = last
                .into_iter()
                .map(|(k, (_, _, value))| MetricFact {
                    name: k.to_owned(),
                    value,
                    slice: None,
                })
                .collect();
            params = run
                .params
                .iter()
                .map(|p| (p.key.clone(), p.value.clone()))
                .collect();
        }
        let (environment_source, libraries) = match environment {
            Some((source, packages)) => (Some(source), packages),
            None => {
                let mut found = (None, Vec::new());
                for wanted in ENVIRONMENT_FILES {
                    let Some(f) = v
                        .files
                        .iter()
                        .find(|f| f.path.rsplit('/').next() == Some(wanted))
                    else {
                        continue;
                    };
                    let Some(text) = self.version_text(ctx, &f.sha256, f.size).await? else {
                        continue;
                    };
                    let format = LockFormat::from_file_name(wanted).expect("known names");
                    if let Ok(packages) = lockfile::parse(format, &text) {
                        found = (Some(f.path.clone()), packages);
                        break;
                    }
                }
                found
            }
        };
        Ok(ModelFacts {
            name: v.name.clone(),
            version: v.version.clone(),
            description: v.description.clone(),
            created_at: rfc3339(v.creation_timestamp),
            created_by: v.user_id.clone(),
            root_digest: verification.root_digest.clone(),
            files: v
                .files
                .iter()
                .map(|f| FileFact {
                    path: f.path.clone(),
                    sha256: f.sha256.clone(),
                    size: f.size.max(0) as u64,
                    scan_severity: f.scan_severity.clone(),
                })
                .collect(),
            quarantined: v.quarantined,
            scan_severity: v.scan_severity.clone(),
            run_id: v.run_id.clone(),
            code_commit: lineage["code_commit"].as_str().map(str::to_owned),
            datasets,
            metrics,
            params,
            signatures: verification
                .signatures
                .iter()
                .map(|s| SignatureFact {
                    kind: s.kind.clone(),
                    key_id: s.key_id.clone(),
                    principal: s.principal_id.clone(),
                    valid: s.valid,
                    reason: s.reason.clone(),
                })
                .collect(),
            environment_source,
            libraries,
            card,
        })
    }
}
