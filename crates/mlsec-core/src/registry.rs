//! The model registry: registered models, immutable versions, tags and aliases; and MLflow 3
//! logged models (a run's model artifacts before registration).
//!
//! A version is created from artifacts mlsec stores (a run's, a logged model's) or from uploaded
//! blobs; its files and their digests, the manifest digest over them, the source and the run are
//! fixed at creation. Every file has been through the model scanner; a version with a critical
//! finding is quarantined and can never receive an alias. Every alias change goes through
//! [`Mlsec::move_alias`], the one place where promotion rules (and later approval gates) apply.

use mlsec_audit::Decision;
use mlsec_data::{FileEntry, Manifest};
use mlsec_policy::{Resource, ResourceType};
use mlsec_store::{
    LoggedModelRow, ModelAliasRow, ModelVersionFileRow, ModelVersionRow, RegisteredModelRow,
    VersionQuery,
};
use mlsec_tracking::{self as tracking, CompareOp, Entity, FilterValue};
use mlsec_types::Digest;
use serde::Serialize;

use crate::artifacts::{ArtifactOwner, ArtifactPath};
use crate::datasets::StagedFile;
use crate::error::CoreError;
use crate::service::{Mlsec, RequestCtx};
use crate::tracking::{
    KeyValue, check_key, experiment_resource, kv, parse_experiment_id, parse_page_token,
    text_matches,
};

/// Longest model name.
const MAX_MODEL_NAME: usize = 256;
/// Longest description.
const MAX_DESCRIPTION: usize = 64 * 1024;
/// First segment of the read-only artifact paths that serve registered versions
/// (`_registry/<manifest digest hex>/<file>`).
pub const PINNED_ROOT: &str = "_registry";

/// Aliases whose move is a production promotion (`model.promote`, which needs a fresh second
/// factor under the default policy); other aliases need `model.alias`.
pub const PROTECTED_ALIASES: &[&str] = &["production", "prod"];

pub(crate) fn model_resource(name: &str) -> Resource {
    Resource::new(ResourceType::Model, name)
}

fn check_model_name(name: &str) -> Result<(), CoreError> {
    if name.trim().is_empty()
        || name.len() > MAX_MODEL_NAME
        || name.chars().any(|c| c.is_control() || c == '%')
        || name.contains("..")
    {
        return Err(CoreError::InvalidRequest(format!(
            "model name {name:?}: 1 to {MAX_MODEL_NAME} bytes, no control characters, `%` or `..`"
        )));
    }
    Ok(())
}

fn check_description(d: &str) -> Result<(), CoreError> {
    if d.contains('\0') {
        return Err(CoreError::InvalidRequest(
            "description contains a NUL character".into(),
        ));
    }
    if d.len() > MAX_DESCRIPTION {
        return Err(CoreError::InvalidRequest(format!(
            "description exceeds {MAX_DESCRIPTION} bytes"
        )));
    }
    Ok(())
}

/// Keys as for runs; values bounded like run tags and free of NUL (PostgreSQL text refuses it).
fn check_tag_value(key: &str, value: &str) -> Result<(), CoreError> {
    check_key(key)?;
    if value.len() > mlsec_tracking::MAX_TAG_VALUE_LEN || value.contains('\0') {
        return Err(CoreError::InvalidRequest(format!(
            "tag `{key}`: value longer than {} bytes or containing NUL",
            mlsec_tracking::MAX_TAG_VALUE_LEN
        )));
    }
    Ok(())
}

fn check_alias(alias: &str) -> Result<(), CoreError> {
    let lower = alias.to_ascii_lowercase();
    let reserved = lower == "latest"
        || (lower.starts_with('v')
            && lower.len() > 1
            && lower[1..].chars().all(|c| c.is_ascii_digit()));
    if alias.is_empty()
        || alias.len() > 255
        || reserved
        || !alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(CoreError::InvalidRequest(format!(
            "alias {alias:?}: letters, digits, `_` and `-`, not `latest` or `v<number>`"
        )));
    }
    Ok(())
}

pub(crate) fn parse_version(v: &str) -> Result<i64, CoreError> {
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            CoreError::InvalidRequest(format!("model version `{v}` is not a number ≥ 1"))
        })
}

#[derive(Debug, Clone, Serialize)]
pub struct AliasView {
    pub alias: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelFileView {
    pub path: String,
    pub size: i64,
    pub sha256: String,
    pub scan_severity: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelVersionView {
    pub name: String,
    pub version: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub user_id: String,
    pub description: String,
    pub source: String,
    pub run_id: Option<String>,
    pub model_id: Option<String>,
    /// `READY`: the version is recorded with all its files.
    pub status: String,
    pub status_message: String,
    pub tags: Vec<KeyValue>,
    pub aliases: Vec<String>,
    /// SHA-256 of the canonical manifest of the files.
    pub digest: String,
    pub size: i64,
    pub file_count: i64,
    pub scan_severity: Option<String>,
    pub quarantined: bool,
    pub files: Vec<ModelFileView>,
    /// What the version was made from, frozen at creation: the run, its pinned dataset inputs,
    /// code commit and parent run.
    pub lineage: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegisteredModelView {
    pub name: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub user_id: String,
    pub description: String,
    pub tags: Vec<KeyValue>,
    pub aliases: Vec<AliasView>,
    /// The newest live version.
    pub latest_versions: Vec<ModelVersionView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoggedModelView {
    pub model_id: String,
    pub experiment_id: String,
    pub name: String,
    pub source_run_id: Option<String>,
    pub status: String,
    pub model_type: Option<String>,
    pub artifact_uri: String,
    pub creation_timestamp_ms: i64,
    pub last_updated_timestamp_ms: i64,
    pub creator: String,
    pub params: Vec<KeyValue>,
    pub tags: Vec<KeyValue>,
}

fn logged_model_view(m: LoggedModelRow) -> LoggedModelView {
    let params: Vec<(String, String)> = serde_json::from_str(&m.params_json).unwrap_or_default();
    let tags: Vec<(String, String)> = serde_json::from_str(&m.tags_json).unwrap_or_default();
    LoggedModelView {
        model_id: m.model_id,
        experiment_id: m.experiment_id.to_string(),
        name: m.name,
        source_run_id: m.source_run_id,
        status: m.status,
        model_type: m.model_type,
        artifact_uri: m.artifact_location,
        creation_timestamp_ms: m.created_at,
        last_updated_timestamp_ms: m.updated_at,
        creator: m.created_by,
        params: kv(params),
        tags: kv(tags),
    }
}

/// A logged model as a client creates it (MLflow 3 `logged-models`).
#[derive(Debug, Clone, Default)]
pub struct NewLoggedModel {
    pub experiment_id: String,
    pub name: Option<String>,
    pub source_run_id: Option<String>,
    pub model_type: Option<String>,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
}

/// Where a version's files come from.
#[derive(Debug, Clone)]
pub enum VersionSource {
    /// `runs:/RUN/path`, `mlflow-artifacts:/EXP/…`, `models:/m-ID` or a bare artifact path.
    Artifacts(String),
    /// Blobs uploaded beforehand, with their relative paths.
    Blobs(Vec<StagedFile>),
}

/// The artifact directory (or file) a source names, as a path in the artifact namespace.
async fn resolve_source(
    mlsec: &Mlsec,
    source: &str,
) -> Result<(ArtifactPath, Option<String>, Option<String>), CoreError> {
    let bad = || {
        CoreError::InvalidRequest(format!(
            "source {source:?}: a version must come from artifacts stored in mlsec (runs:/RUN/PATH, models:/m-ID or mlflow-artifacts:/…)"
        ))
    };
    if let Some(rest) = source.strip_prefix("runs:/") {
        let (run_id, path) = rest
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or((rest, ""));
        let run = mlsec
            .store()
            .run(run_id)
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: "run",
                id: run_id.to_owned(),
            })?;
        let full = if path.trim_matches('/').is_empty() {
            format!("{}/{run_id}/artifacts", run.experiment_id)
        } else {
            format!(
                "{}/{run_id}/artifacts/{}",
                run.experiment_id,
                path.trim_matches('/')
            )
        };
        return Ok((ArtifactPath::parse(&full)?, Some(run.run_id), None));
    }
    if let Some(id) = source.strip_prefix("models:/") {
        let id = id.trim_matches('/');
        if !id.starts_with("m-") {
            return Err(bad());
        }
        let model = mlsec
            .store()
            .logged_model(id)
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: "logged model",
                id: id.to_owned(),
            })?;
        let path = ArtifactPath::parse(&format!("{}/models/{id}/artifacts", model.experiment_id))?;
        return Ok((path, model.source_run_id, Some(model.model_id)));
    }
    let rest = source
        .strip_prefix("mlflow-artifacts:")
        .map(|r| r.trim_start_matches('/'))
        .or_else(|| {
            // `http(s)://host/api/2.0/mlflow-artifacts/artifacts/…`, as resolved by clients.
            source
                .split_once("/api/2.0/mlflow-artifacts/artifacts/")
                .map(|(_, r)| r)
        })
        .ok_or_else(bad)?;
    let path = ArtifactPath::parse(rest)?;
    let (run_id, model_id) = match &path.owner {
        ArtifactOwner::Run(r) => (Some(r.clone()), None),
        ArtifactOwner::LoggedModel(m) => (
            mlsec
                .store()
                .logged_model(m)
                .await?
                .and_then(|l| l.source_run_id),
            Some(m.clone()),
        ),
    };
    Ok((path, run_id, model_id))
}

impl Mlsec {
    async fn live_model(&self, name: &str) -> Result<RegisteredModelRow, CoreError> {
        self.store()
            .registered_model(name)
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: "registered model",
                id: name.to_owned(),
            })
    }

    pub(crate) async fn live_version(
        &self,
        name: &str,
        version: i64,
    ) -> Result<ModelVersionRow, CoreError> {
        self.store()
            .model_version(name, version)
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: "model version",
                id: format!("{name}/{version}"),
            })
    }

    async fn version_view(&self, v: ModelVersionRow) -> Result<ModelVersionView, CoreError> {
        let tags = self.store().model_version_tags(&v.name, v.version).await?;
        let aliases = self
            .store()
            .model_aliases(&v.name)
            .await?
            .into_iter()
            .filter(|a| a.version == v.version)
            .map(|a| a.alias)
            .collect();
        let files = self
            .store()
            .model_version_files(&v.name, v.version)
            .await?
            .into_iter()
            .map(|f| ModelFileView {
                path: f.path,
                size: f.size,
                sha256: f.sha256,
                scan_severity: f.scan_severity,
            })
            .collect();
        Ok(ModelVersionView {
            name: v.name,
            version: v.version.to_string(),
            creation_timestamp: v.created_at,
            last_updated_timestamp: v.updated_at,
            user_id: v.created_by,
            description: v.description,
            source: v.source,
            run_id: v.run_id,
            model_id: v.model_id,
            status: "READY".into(),
            status_message: v.scan_summary,
            tags: kv(tags),
            aliases,
            digest: v.digest,
            size: v.size,
            file_count: v.file_count,
            scan_severity: v.scan_severity,
            quarantined: v.quarantined,
            files,
            lineage: serde_json::from_str(&v.lineage_json).unwrap_or_default(),
        })
    }

    async fn model_view(&self, m: RegisteredModelRow) -> Result<RegisteredModelView, CoreError> {
        let tags = self.store().registered_model_tags(&m.name).await?;
        let aliases = self
            .store()
            .model_aliases(&m.name)
            .await?
            .into_iter()
            .map(|a| AliasView {
                alias: a.alias,
                version: a.version.to_string(),
            })
            .collect();
        let latest = self
            .store()
            .model_versions(&VersionQuery {
                name: Some(m.name.clone()),
                limit: 1,
                ..Default::default()
            })
            .await?;
        let mut latest_versions = Vec::new();
        for v in latest {
            latest_versions.push(self.version_view(v).await?);
        }
        Ok(RegisteredModelView {
            name: m.name,
            creation_timestamp: m.created_at,
            last_updated_timestamp: m.updated_at,
            user_id: m.created_by,
            description: m.description,
            tags: kv(tags),
            aliases,
            latest_versions,
        })
    }

    pub async fn create_registered_model(
        &self,
        ctx: &RequestCtx,
        name: &str,
        description: &str,
        tags: Vec<(String, String)>,
    ) -> Result<RegisteredModelView, CoreError> {
        check_model_name(name)?;
        check_description(description)?;
        for (k, v) in &tags {
            check_tag_value(k, v)?;
        }
        self.authorize(ctx, "model.write", &model_resource(name))
            .await?;
        let now = self.now();
        let mut w = self.store().begin_write().await?;
        w.insert_registered_model(name, description, now, &ctx.principal.actor().to_string())
            .await?;
        for (k, v) in &tags {
            w.set_registered_model_tag(name, k, v).await?;
        }
        w.commit(&[ctx.event(
            "model.create",
            model_resource(name).to_string(),
            Decision::Allow,
            "registered",
        )])
        .await?;
        let m = self.live_model(name).await?;
        self.model_view(m).await
    }

    pub async fn registered_model(
        &self,
        ctx: &RequestCtx,
        name: &str,
    ) -> Result<RegisteredModelView, CoreError> {
        self.authorize(ctx, "model.read", &model_resource(name))
            .await?;
        let m = self.live_model(name).await?;
        self.model_view(m).await
    }

    /// Registered models the caller may read; `filter` may compare `name` and `tags.KEY`.
    pub async fn search_registered_models(
        &self,
        ctx: &RequestCtx,
        filter: &str,
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<(Vec<RegisteredModelView>, Option<String>), CoreError> {
        let clauses =
            tracking::parse_filter(filter).map_err(|e| CoreError::InvalidRequest(e.to_string()))?;
        let limit = max_results.clamp(1, 1000);
        let mut offset = parse_page_token(page_token)?;
        let mut out = Vec::new();
        loop {
            let rows = self.store().registered_models(None, 500, offset).await?;
            let exhausted = rows.len() < 500;
            for m in rows {
                offset += 1;
                if !self
                    .authorize_quiet(ctx, "model.read", &model_resource(&m.name))
                    .await
                {
                    continue;
                }
                let tags = self.store().registered_model_tags(&m.name).await?;
                let ok = clauses.iter().all(|c| {
                    let actual = match (c.entity, c.key.as_str()) {
                        (Entity::Bare | Entity::Attribute, "name") => Some(m.name.as_str()),
                        (Entity::Tag, k) => {
                            tags.iter().find(|(tk, _)| tk == k).map(|(_, v)| v.as_str())
                        }
                        _ => return false,
                    };
                    text_matches(actual, c.op, &c.value)
                });
                if ok {
                    out.push(self.model_view(m).await?);
                    if out.len() as i64 == limit {
                        return Ok((out, Some(offset.to_string())));
                    }
                }
            }
            if exhausted {
                return Ok((out, None));
            }
        }
    }

    pub async fn update_registered_model(
        &self,
        ctx: &RequestCtx,
        name: &str,
        description: &str,
    ) -> Result<RegisteredModelView, CoreError> {
        check_description(description)?;
        self.authorize(ctx, "model.write", &model_resource(name))
            .await?;
        let mut w = self.store().begin_write().await?;
        w.update_registered_model(name, description, self.now())
            .await?;
        w.commit(&[ctx.event(
            "model.update",
            model_resource(name).to_string(),
            Decision::Allow,
            "description",
        )])
        .await?;
        self.registered_model(ctx, name).await
    }

    /// Hides a model with its versions and aliases; the records (and digests) stay.
    pub async fn delete_registered_model(
        &self,
        ctx: &RequestCtx,
        name: &str,
    ) -> Result<(), CoreError> {
        self.authorize(ctx, "model.delete", &model_resource(name))
            .await?;
        let aliases = self.store().model_aliases(name).await?;
        // Removing a production alias is a promotion decision too.
        if aliases.iter().any(|a| is_protected(&a.alias)) {
            self.authorize(ctx, "model.promote", &model_resource(name))
                .await?;
        }
        let mut w = self.store().begin_write().await?;
        w.delete_registered_model(name, self.now()).await?;
        w.commit(&[ctx
            .event(
                "model.delete",
                model_resource(name).to_string(),
                Decision::Allow,
                "deleted",
            )
            .with_details(serde_json::json!({
                "aliases_removed": aliases.iter().map(|a| format!("{}→{}", a.alias, a.version)).collect::<Vec<_>>(),
            }))])
            .await?;
        Ok(())
    }

    pub async fn set_registered_model_tag(
        &self,
        ctx: &RequestCtx,
        name: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), CoreError> {
        check_tag_value(key, value.unwrap_or(""))?;
        self.authorize(ctx, "model.write", &model_resource(name))
            .await?;
        self.live_model(name).await?;
        let mut w = self.store().begin_write().await?;
        match value {
            Some(v) => w.set_registered_model_tag(name, key, v).await?,
            None => {
                w.delete_registered_model_tag(name, key).await?;
            }
        }
        w.commit(&[ctx
            .event(
                if value.is_some() {
                    "model.tag"
                } else {
                    "model.untag"
                },
                model_resource(name).to_string(),
                Decision::Allow,
                key.to_owned(),
            )
            .with_details(serde_json::json!({ "key": key }))])
            .await?;
        Ok(())
    }

    /// Creates a version: resolves its files, pins their digests, scans every file, records it.
    pub async fn create_model_version(
        &self,
        ctx: &RequestCtx,
        name: &str,
        source: VersionSource,
        run_id: Option<&str>,
        description: &str,
        tags: Vec<(String, String)>,
    ) -> Result<ModelVersionView, CoreError> {
        check_model_name(name)?;
        check_description(description)?;
        for (k, v) in &tags {
            check_tag_value(k, v)?;
        }
        self.authorize(ctx, "model.write", &model_resource(name))
            .await?;
        self.live_model(name).await?;
        // (path, size, sha256, severity, coverage)
        let mut files: Vec<(String, i64, String, Option<String>, String)> = Vec::new();
        let (source_text, source_run, model_id) = match &source {
            VersionSource::Artifacts(text) => {
                let (path, resolved_run, model_id) = resolve_source(self, text).await?;
                // The source's experiment must be readable by the caller.
                let exp = self
                    .store()
                    .experiment(path.experiment_id)
                    .await?
                    .ok_or_else(|| CoreError::NotFound {
                        what: "experiment",
                        id: path.experiment_id.to_string(),
                    })?;
                self.authorize_experiment(
                    ctx,
                    "experiment.read",
                    &exp.name,
                    &format!("source {text:?}"),
                )
                .await?;
                if let ArtifactOwner::LoggedModel(id) = &path.owner
                    && let Some(m) = self.store().logged_model(id).await?
                    && m.status != "READY"
                {
                    return Err(CoreError::Conflict(format!(
                        "logged model `{id}` is {}: finalize it (status READY) before registering it, so every file is in",
                        m.status
                    )));
                }
                let full = path.full();
                if let Some(single) = self.store().artifact(&full).await? {
                    let file_name = full.rsplit('/').next().unwrap_or(&full).to_owned();
                    files.push((
                        file_name,
                        single.size,
                        single.sha256,
                        single.scan_severity,
                        single.scan_coverage,
                    ));
                } else {
                    let prefix = format!("{full}/");
                    for a in self.store().artifacts_under(&prefix).await? {
                        files.push((
                            a.path[prefix.len()..].to_owned(),
                            a.size,
                            a.sha256,
                            a.scan_severity,
                            a.scan_coverage,
                        ));
                    }
                }
                if files.is_empty() {
                    return Err(CoreError::InvalidRequest(format!(
                        "source {text:?} names no stored artifacts"
                    )));
                }
                (text.clone(), resolved_run, model_id)
            }
            VersionSource::Blobs(staged) => {
                if staged.is_empty() {
                    return Err(CoreError::InvalidRequest("a version needs files".into()));
                }
                for f in staged {
                    let digest = f.sha256;
                    self.authorize(
                        ctx,
                        "blob.read",
                        &Resource::new(ResourceType::Blob, digest.to_string()),
                    )
                    .await?;
                    let blob =
                        self.store()
                            .blob(&digest)
                            .await?
                            .ok_or_else(|| CoreError::NotFound {
                                what: "blob",
                                id: digest.to_string(),
                            })?;
                    let scan = self.scan_blob(&digest, blob.size).await?;
                    files.push((
                        f.path.clone(),
                        blob.size as i64,
                        digest.to_string(),
                        scan.severity,
                        scan.coverage,
                    ));
                }
                ("upload".to_owned(), None, None)
            }
        };
        if let (Some(given), Some(resolved)) = (run_id.filter(|r| !r.is_empty()), &source_run)
            && given != resolved
        {
            return Err(CoreError::InvalidRequest(format!(
                "run_id `{given}` is not the run of source {source_text:?} (`{resolved}`)"
            )));
        }
        let run_id = source_run.or_else(|| run_id.filter(|r| !r.is_empty()).map(str::to_owned));
        if let Some(r) = &run_id {
            self.authorized_run(ctx, r, "experiment.read").await?;
        }
        let lineage = self.lineage_snapshot(run_id.as_deref()).await?;
        let manifest = Manifest::new(
            files
                .iter()
                .map(|(path, size, sha, _, _)| {
                    Ok(FileEntry {
                        path: path.clone(),
                        size: *size as u64,
                        sha256: Digest::parse(sha).map_err(|e| CoreError::Key(e.to_string()))?,
                        format: None,
                        rows: None,
                    })
                })
                .collect::<Result<Vec<_>, CoreError>>()?,
        )?;
        let worst = files
            .iter()
            .filter_map(|f| f.3.as_deref())
            .max_by_key(|s| severity_rank(s))
            .map(str::to_owned);
        let quarantined = worst.as_deref() == Some("critical");
        let flagged: Vec<&str> = files
            .iter()
            .filter(|f| f.3.as_deref().is_some_and(|s| severity_rank(s) >= 3))
            .map(|f| f.0.as_str())
            .collect();
        let unscanned = files.iter().filter(|f| f.4 != "scanned").count();
        let summary = format!(
            "{} file(s) scanned{}{}{}",
            files.len(),
            match &worst {
                Some(s) => format!("; worst finding: {s}"),
                None => "; no findings".into(),
            },
            if flagged.is_empty() {
                String::new()
            } else {
                format!(" in {}", flagged.join(", "))
            },
            if quarantined {
                "; QUARANTINED: cannot receive an alias".to_owned()
            } else if unscanned > 0 {
                format!("; {unscanned} file(s) not fully scanned")
            } else {
                String::new()
            }
        );
        let now = self.now();
        let mut w = self.store().begin_write().await?;
        let version = w.next_model_version(name).await?;
        let row = ModelVersionRow {
            name: name.to_owned(),
            version,
            digest: manifest.digest().to_string(),
            size: manifest.size() as i64,
            file_count: files.len() as i64,
            source: source_text,
            run_id,
            model_id,
            description: description.to_owned(),
            created_at: now,
            updated_at: now,
            created_by: ctx.principal.actor().to_string(),
            scan_severity: worst.clone(),
            quarantined,
            scan_summary: summary,
            lineage_json: lineage.to_string(),
        };
        let file_rows: Vec<ModelVersionFileRow> = manifest
            .files
            .iter()
            .map(|f| {
                let severity = files
                    .iter()
                    .find(|x| x.0 == f.path)
                    .and_then(|x| x.3.clone());
                ModelVersionFileRow {
                    path: f.path.clone(),
                    size: f.size as i64,
                    sha256: f.sha256.to_string(),
                    scan_severity: severity,
                }
            })
            .collect();
        w.insert_model_version(&row, &file_rows).await?;
        for (k, v) in &tags {
            w.set_model_version_tag(name, version, k, v).await?;
        }
        w.commit(&[ctx
            .event(
                "model.version.create",
                model_resource(name).to_string(),
                Decision::Allow,
                if quarantined { "quarantined" } else { "created" },
            )
            .with_details(serde_json::json!({
                "version": version,
                "digest": row.digest,
                "source": row.source,
                "run_id": row.run_id,
                "files": file_rows.iter().map(|f| serde_json::json!({"path": f.path, "sha256": f.sha256})).collect::<Vec<_>>(),
                "scan_severity": worst,
                "quarantined": quarantined,
            }))])
            .await?;
        let v = self.live_version(name, version).await?;
        let view = self.version_view(v).await?;
        if self.openlineage_enabled()
            && let Some(run_id) = &view.run_id
        {
            // Best effort: the version is committed, so a failed read only loses the event.
            match self.run_for_lineage(run_id).await {
                Ok(Some(run)) => self.openlineage_version_registered(&run, &view),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "OpenLineage event for a version not built"),
            }
        }
        Ok(view)
    }

    pub async fn model_version(
        &self,
        ctx: &RequestCtx,
        name: &str,
        version: &str,
    ) -> Result<ModelVersionView, CoreError> {
        self.authorize(ctx, "model.read", &model_resource(name))
            .await?;
        let v = self.live_version(name, parse_version(version)?).await?;
        self.version_view(v).await
    }

    /// Versions the caller may read: `name = 'x'`, `name LIKE 'x%'`, `run_id = '…'`,
    /// `run_id IN (…)`, `tags.KEY = 'v'`, `digest = 'sha256:…'`.
    pub async fn search_model_versions(
        &self,
        ctx: &RequestCtx,
        filter: &str,
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<(Vec<ModelVersionView>, Option<String>), CoreError> {
        let clauses =
            tracking::parse_filter(filter).map_err(|e| CoreError::InvalidRequest(e.to_string()))?;
        let mut query = VersionQuery::default();
        let mut tag_clauses = Vec::new();
        for c in clauses {
            match (c.entity, c.key.as_str(), c.op, &c.value) {
                (Entity::Bare | Entity::Attribute, "name", CompareOp::Eq, FilterValue::Text(t)) => {
                    query.name = Some(t.clone())
                }
                (
                    Entity::Bare | Entity::Attribute,
                    "name",
                    CompareOp::Like | CompareOp::ILike,
                    FilterValue::Text(t),
                ) => query.name_like = Some(t.clone()),
                (
                    Entity::Bare | Entity::Attribute,
                    "run_id",
                    CompareOp::Eq,
                    FilterValue::Text(t),
                ) => query.run_ids = vec![t.clone()],
                (
                    Entity::Bare | Entity::Attribute,
                    "run_id",
                    CompareOp::In,
                    FilterValue::List(l),
                ) => query.run_ids = l.clone(),
                (
                    Entity::Bare | Entity::Attribute,
                    "digest",
                    CompareOp::Eq,
                    FilterValue::Text(t),
                ) => query.digest = Some(t.clone()),
                (Entity::Tag, _, _, _) => tag_clauses.push(c),
                _ => {
                    return Err(CoreError::InvalidRequest(format!(
                        "model version searches support name, run_id, digest and tags; not `{} {}`",
                        c.key, c.op
                    )));
                }
            }
        }
        let limit = max_results.clamp(1, 10_000);
        let mut offset = parse_page_token(page_token)?;
        let mut out = Vec::new();
        loop {
            query.limit = 500;
            query.offset = offset;
            let rows = self.store().model_versions(&query).await?;
            let exhausted = rows.len() < 500;
            for v in rows {
                offset += 1;
                if !self
                    .authorize_quiet(ctx, "model.read", &model_resource(&v.name))
                    .await
                {
                    continue;
                }
                if !tag_clauses.is_empty() {
                    let tags = self.store().model_version_tags(&v.name, v.version).await?;
                    let ok = tag_clauses.iter().all(|c| {
                        let actual = tags
                            .iter()
                            .find(|(k, _)| *k == c.key)
                            .map(|(_, v)| v.as_str());
                        text_matches(actual, c.op, &c.value)
                    });
                    if !ok {
                        continue;
                    }
                }
                out.push(self.version_view(v).await?);
                if out.len() as i64 == limit {
                    return Ok((out, Some(offset.to_string())));
                }
            }
            if exhausted {
                return Ok((out, None));
            }
        }
    }

    /// Changes a version's description — the one mutable field of a version.
    pub async fn update_model_version(
        &self,
        ctx: &RequestCtx,
        name: &str,
        version: &str,
        description: &str,
    ) -> Result<ModelVersionView, CoreError> {
        check_description(description)?;
        let n = parse_version(version)?;
        self.authorize(ctx, "model.write", &model_resource(name))
            .await?;
        let mut w = self.store().begin_write().await?;
        w.update_model_version_description(name, n, description, self.now())
            .await?;
        w.commit(&[ctx
            .event(
                "model.version.update",
                model_resource(name).to_string(),
                Decision::Allow,
                "description",
            )
            .with_details(serde_json::json!({ "version": n }))])
            .await?;
        self.model_version(ctx, name, version).await
    }

    /// Hides a version and drops its aliases; its record and digests stay in the store.
    pub async fn delete_model_version(
        &self,
        ctx: &RequestCtx,
        name: &str,
        version: &str,
    ) -> Result<(), CoreError> {
        let n = parse_version(version)?;
        self.authorize(ctx, "model.delete", &model_resource(name))
            .await?;
        let v = self.live_version(name, n).await?;
        let dropped: Vec<String> = self
            .store()
            .model_aliases(name)
            .await?
            .into_iter()
            .filter(|a| a.version == n)
            .map(|a| a.alias)
            .collect();
        // Removing a production alias is a promotion decision too.
        if dropped.iter().any(|a| is_protected(a)) {
            self.authorize(ctx, "model.promote", &model_resource(name))
                .await?;
        }
        let mut w = self.store().begin_write().await?;
        w.delete_model_version(name, n, self.now()).await?;
        w.commit(&[ctx
            .event(
                "model.version.delete",
                model_resource(name).to_string(),
                Decision::Allow,
                "deleted",
            )
            .with_details(
                serde_json::json!({ "version": n, "digest": v.digest, "aliases_removed": dropped }),
            )])
        .await?;
        Ok(())
    }

    pub async fn set_model_version_tag(
        &self,
        ctx: &RequestCtx,
        name: &str,
        version: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), CoreError> {
        check_tag_value(key, value.unwrap_or(""))?;
        let n = parse_version(version)?;
        self.authorize(ctx, "model.write", &model_resource(name))
            .await?;
        self.live_version(name, n).await?;
        let mut w = self.store().begin_write().await?;
        match value {
            Some(v) => w.set_model_version_tag(name, n, key, v).await?,
            None => {
                w.delete_model_version_tag(name, n, key).await?;
            }
        }
        w.commit(&[ctx
            .event(
                if value.is_some() {
                    "model.version.tag"
                } else {
                    "model.version.untag"
                },
                model_resource(name).to_string(),
                Decision::Allow,
                key.to_owned(),
            )
            .with_details(serde_json::json!({ "version": n, "key": key }))])
            .await?;
        Ok(())
    }

    /// Points `alias` at `version`, or removes it (`None`). The one place aliases change:
    /// protected aliases need `model.promote`, others `model.alias`; a quarantined version
    /// never receives one.
    pub async fn move_alias(
        &self,
        ctx: &RequestCtx,
        name: &str,
        alias: &str,
        version: Option<&str>,
    ) -> Result<(), CoreError> {
        check_alias(alias)?;
        let protected = is_protected(alias);
        let action = if protected {
            "model.promote"
        } else {
            "model.alias"
        };
        self.authorize(ctx, action, &model_resource(name)).await?;
        self.live_model(name).await?;
        let mut w = self.store().begin_write().await?;
        let (previous, target, digest) = match version {
            Some(v) => {
                let n = parse_version(v)?;
                let Some(row) = w.model_version_in_tx(name, n).await? else {
                    w.rollback().await?;
                    return Err(CoreError::NotFound {
                        what: "model version",
                        id: format!("{name}/{n}"),
                    });
                };
                if row.quarantined {
                    w.rollback().await?;
                    let event = ctx
                        .event(
                            "model.alias",
                            model_resource(name).to_string(),
                            Decision::Deny,
                            "version is quarantined",
                        )
                        .with_details(serde_json::json!({ "alias": alias, "version": n, "digest": row.digest, "scan": row.scan_summary }));
                    self.store().append_audit(&[event]).await?;
                    return Err(CoreError::Conflict(format!(
                        "version {n} of `{name}` is quarantined ({}); it cannot receive the alias `{alias}`",
                        row.scan_summary
                    )));
                }
                let previous = w
                    .set_model_alias(&ModelAliasRow {
                        name: name.to_owned(),
                        alias: alias.to_owned(),
                        version: n,
                        updated_at: self.now(),
                        updated_by: ctx.principal.actor().to_string(),
                    })
                    .await?;
                (previous, Some(n), Some(row.digest))
            }
            None => {
                let previous = w.delete_model_alias(name, alias).await?;
                if previous.is_none() {
                    w.rollback().await?;
                    return Err(CoreError::NotFound {
                        what: "alias",
                        id: format!("{name}@{alias}"),
                    });
                }
                (previous, None, None)
            }
        };
        w.commit(&[ctx
            .event(
                if protected {
                    "model.promote"
                } else {
                    "model.alias"
                },
                model_resource(name).to_string(),
                Decision::Allow,
                match target {
                    Some(_) => "moved",
                    None => "removed",
                },
            )
            .with_details(serde_json::json!({
                "alias": alias,
                "from_version": previous,
                "to_version": target,
                "digest": digest,
                "protected": protected,
            }))])
        .await?;
        Ok(())
    }

    pub async fn model_version_by_alias(
        &self,
        ctx: &RequestCtx,
        name: &str,
        alias: &str,
    ) -> Result<ModelVersionView, CoreError> {
        self.authorize(ctx, "model.read", &model_resource(name))
            .await?;
        let a = self
            .store()
            .model_alias(name, alias)
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: "alias",
                id: format!("{name}@{alias}"),
            })?;
        let v = self.live_version(name, a.version).await?;
        self.version_view(v).await
    }

    /// Where a version's files can be downloaded: a read-only artifact directory holding
    /// exactly the version's files, named by the version's digest. Downloads through it are
    /// served from the pinned file list, so files added to the source run or logged model later
    /// are never part of the version.
    pub async fn model_version_download_uri(
        &self,
        ctx: &RequestCtx,
        name: &str,
        version: &str,
    ) -> Result<String, CoreError> {
        let v = self.model_version(ctx, name, version).await?;
        Ok(format!(
            "mlflow-artifacts:/{PINNED_ROOT}/{}",
            v.digest.trim_start_matches("sha256:")
        ))
    }

    /// The live version with this manifest digest that the caller may read.
    pub(crate) async fn pinned_version(
        &self,
        ctx: &RequestCtx,
        digest_hex: &str,
    ) -> Result<ModelVersionRow, CoreError> {
        let digest = Digest::parse(&format!("sha256:{digest_hex}"))
            .map_err(|e| CoreError::InvalidRequest(format!("pinned artifact path: {e}")))?;
        let versions = self
            .store()
            .model_versions(&VersionQuery {
                digest: Some(digest.to_string()),
                limit: 100,
                ..Default::default()
            })
            .await?;
        let any = !versions.is_empty();
        for v in versions {
            if self
                .authorize_quiet(ctx, "model.read", &model_resource(&v.name))
                .await
            {
                return Ok(v);
            }
        }
        if any {
            return Err(CoreError::PermissionDenied(format!(
                "`{}` may not read the model version with digest {digest}",
                ctx.principal.id
            )));
        }
        Err(CoreError::NotFound {
            what: "model version with digest",
            id: digest.to_string(),
        })
    }

    pub async fn create_logged_model(
        &self,
        ctx: &RequestCtx,
        new: NewLoggedModel,
    ) -> Result<LoggedModelView, CoreError> {
        let NewLoggedModel {
            experiment_id,
            name,
            source_run_id,
            model_type,
            params,
            tags,
        } = new;
        let (experiment_id, name, source_run_id, model_type) = (
            experiment_id.as_str(),
            name.as_deref(),
            source_run_id.as_deref(),
            model_type.as_deref(),
        );
        let exp_id = parse_experiment_id(experiment_id)?;
        let exp = self
            .store()
            .experiment(exp_id)
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: "experiment",
                id: experiment_id.to_owned(),
            })?;
        self.authorize_experiment(
            ctx,
            "experiment.write",
            &exp.name,
            &format!("experiment {experiment_id}"),
        )
        .await?;
        if let Some(r) = source_run_id.filter(|r| !r.is_empty()) {
            let run = self.authorized_run(ctx, r, "experiment.write").await?;
            if run.experiment_id != exp_id {
                return Err(CoreError::InvalidRequest(format!(
                    "run `{r}` is not in experiment {exp_id}"
                )));
            }
        }
        for (k, v) in params.iter().chain(&tags) {
            check_tag_value(k, v)?;
        }
        let model_id = format!("m-{}", uuid::Uuid::new_v4().simple());
        let now = self.now();
        let row = LoggedModelRow {
            model_id: model_id.clone(),
            experiment_id: exp_id,
            name: name.filter(|n| !n.is_empty()).unwrap_or("model").to_owned(),
            source_run_id: source_run_id.filter(|r| !r.is_empty()).map(str::to_owned),
            status: "PENDING".into(),
            model_type: model_type.map(str::to_owned),
            artifact_location: format!("mlflow-artifacts:/{exp_id}/models/{model_id}/artifacts"),
            params_json: serde_json::to_string(&params).unwrap_or_else(|_| "[]".into()),
            tags_json: serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into()),
            created_at: now,
            updated_at: now,
            created_by: ctx.principal.actor().to_string(),
            lifecycle_stage: "active".into(),
        };
        let mut w = self.store().begin_write().await?;
        w.insert_logged_model(&row).await?;
        w.commit(&[ctx
            .event(
                "logged_model.create",
                experiment_resource(&exp.name).to_string(),
                Decision::Allow,
                "created",
            )
            .with_details(
                serde_json::json!({ "model_id": model_id, "run_id": row.source_run_id }),
            )])
        .await?;
        Ok(logged_model_view(row))
    }

    async fn authorized_logged_model(
        &self,
        ctx: &RequestCtx,
        model_id: &str,
        action: &str,
    ) -> Result<(LoggedModelRow, String), CoreError> {
        let m = self
            .store()
            .logged_model(model_id)
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: "logged model",
                id: model_id.to_owned(),
            })?;
        let exp = self
            .store()
            .experiment(m.experiment_id)
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: "experiment",
                id: m.experiment_id.to_string(),
            })?;
        self.authorize_experiment(
            ctx,
            action,
            &exp.name,
            &format!("logged model `{model_id}`"),
        )
        .await?;
        Ok((m, exp.name))
    }

    pub async fn logged_model(
        &self,
        ctx: &RequestCtx,
        model_id: &str,
    ) -> Result<LoggedModelView, CoreError> {
        let (m, _) = self
            .authorized_logged_model(ctx, model_id, "experiment.read")
            .await?;
        Ok(logged_model_view(m))
    }

    /// Sets a logged model's status (`READY` when its artifacts are uploaded), adds tags, or
    /// deletes it.
    pub async fn update_logged_model(
        &self,
        ctx: &RequestCtx,
        model_id: &str,
        status: Option<&str>,
        new_tags: Vec<(String, String)>,
        delete: bool,
    ) -> Result<LoggedModelView, CoreError> {
        if let Some(s) = status
            && !["PENDING", "READY", "FAILED"].contains(&s)
        {
            return Err(CoreError::InvalidRequest(format!(
                "logged model status `{s}`"
            )));
        }
        let action = if delete {
            "experiment.delete"
        } else {
            "experiment.write"
        };
        let (_, exp) = self.authorized_logged_model(ctx, model_id, action).await?;
        for (k, v) in &new_tags {
            check_tag_value(k, v)?;
        }
        let mut w = self.store().begin_write().await?;
        // Status and tags are read again inside the write: concurrent updates apply one after
        // the other instead of overwriting each other.
        let Some(m) = w.logged_model_for_update(model_id).await? else {
            w.rollback().await?;
            return Err(CoreError::NotFound {
                what: "logged model",
                id: model_id.to_owned(),
            });
        };
        // A finalized logged model is a fixed set of files: it does not go back to PENDING.
        if m.status == "READY" && status.is_some_and(|s| s != "READY") {
            w.rollback().await?;
            return Err(CoreError::Conflict(format!(
                "logged model `{model_id}` is finalized (READY) and cannot change status"
            )));
        }
        let mut tags: Vec<(String, String)> =
            serde_json::from_str(&m.tags_json).unwrap_or_default();
        for (k, v) in new_tags {
            tags.retain(|(tk, _)| *tk != k);
            tags.push((k, v));
        }
        let tags_json = serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into());
        w.update_logged_model(
            model_id,
            status,
            Some(&tags_json),
            delete.then_some("deleted"),
            self.now(),
        )
        .await?;
        w.commit(&[ctx
            .event(
                if delete {
                    "logged_model.delete"
                } else {
                    "logged_model.update"
                },
                experiment_resource(&exp).to_string(),
                Decision::Allow,
                status.unwrap_or("updated").to_owned(),
            )
            .with_details(serde_json::json!({ "model_id": model_id }))])
            .await?;
        let (m, _) = self
            .authorized_logged_model(ctx, model_id, "experiment.read")
            .await?;
        Ok(logged_model_view(m))
    }

    pub async fn search_logged_models(
        &self,
        ctx: &RequestCtx,
        experiment_ids: &[String],
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<(Vec<LoggedModelView>, Option<String>), CoreError> {
        let mut ids = Vec::new();
        for id in experiment_ids {
            let n = parse_experiment_id(id)?;
            let exp = self
                .store()
                .experiment(n)
                .await?
                .ok_or_else(|| CoreError::NotFound {
                    what: "experiment",
                    id: id.clone(),
                })?;
            self.authorize_experiment(
                ctx,
                "experiment.read",
                &exp.name,
                &format!("experiment {id}"),
            )
            .await?;
            ids.push(n);
        }
        let offset = parse_page_token(page_token)?;
        let limit = max_results.clamp(1, 1000);
        let mut rows = self
            .store()
            .logged_models_of_experiments(&ids, limit + 1, offset)
            .await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        Ok((
            rows.into_iter().map(logged_model_view).collect(),
            more.then(|| (offset + limit).to_string()),
        ))
    }
}

impl Mlsec {
    /// The run a version is made from, as it stands now: its pinned inputs, code commit and
    /// parent, kept with the version so that later changes to the run cannot rewrite what the
    /// version was trained on.
    async fn lineage_snapshot(&self, run_id: Option<&str>) -> Result<serde_json::Value, CoreError> {
        let Some(run_id) = run_id else {
            return Ok(serde_json::json!({}));
        };
        let Some(run) = self.store().run(run_id).await? else {
            return Ok(serde_json::json!({}));
        };
        let data = self
            .store()
            .run_data(std::slice::from_ref(&run.run_id))
            .await?
            .remove(&run.run_id)
            .unwrap_or_default();
        let inputs: Vec<serde_json::Value> = data
            .inputs
            .iter()
            .map(|i| {
                serde_json::json!({
                    "name": i.name,
                    "client_digest": i.digest,
                    "mlsec_version": match (&i.mlsec_dataset, i.mlsec_number) {
                        (Some(d), Some(n)) => Some(format!("{d}@{n}")),
                        _ => None,
                    },
                    "mlsec_dataset": i.mlsec_dataset,
                    "mlsec_digest": i.mlsec_digest,
                })
            })
            .collect();
        let commit = data
            .tags
            .iter()
            .find(|(k, _)| k == "mlflow.source.git.commit")
            .map(|(_, v)| v.clone());
        Ok(serde_json::json!({
            "run_id": run.run_id,
            "experiment": run.experiment_name,
            "parent_run_id": run.parent_run_id,
            "inputs": inputs,
            "code_commit": commit,
        }))
    }
}

fn is_protected(alias: &str) -> bool {
    PROTECTED_ALIASES.contains(&alias.to_ascii_lowercase().as_str())
}

fn severity_rank(s: &str) -> u8 {
    match s {
        "critical" => 4,
        "high" => 3,
        "warning" => 2,
        "info" => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_refuse_reserved_and_odd_names() {
        assert!(check_alias("champion").is_ok());
        assert!(check_alias("prod-eu_1").is_ok());
        for bad in ["", "latest", "LATEST", "v1", "V22", "a b", "a/b", "é"] {
            assert!(check_alias(bad).is_err(), "{bad}");
        }
        assert!(check_alias("v").is_ok());
        assert!(check_alias("v1a").is_ok());
    }

    #[test]
    fn model_names_are_bounded() {
        assert!(check_model_name("fraud-detector").is_ok());
        assert!(check_model_name("team/fraud").is_ok());
        for bad in ["", " ", "a%2Fb", "../x", &"x".repeat(300), "a\nb"] {
            assert!(check_model_name(bad).is_err(), "{bad:?}");
        }
    }
}
