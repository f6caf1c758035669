//! Experiment tracking: experiments, runs, params, metrics and tags, dataset inputs pinned to
//! mlsec dataset versions, and the run search in MLflow's syntax.
//!
//! Runs belong to experiments and are authorized as the experiment (`experiment:NAME`): reading
//! needs `experiment.read`, creating and logging `experiment.write`, deleting
//! `experiment.delete`. Every mutation is an audit event; run logging goes through the group
//! commit writer.

use mlsec_audit::Decision;
use mlsec_policy::{Resource, ResourceType};
use mlsec_store::{
    CompareOp as StoreOp, ExperimentRow, FilterValue as StoreValue, MetricRow, RunClause, RunData,
    RunField, RunInputRow, RunOrder, RunQuery, RunRow,
};
use mlsec_tracking::{
    self as tracking, CompareOp, Entity, FilterValue, MAX_PARAM_VALUE_LEN, MAX_TAG_VALUE_LEN,
};
use serde::Serialize;

use crate::datasets::VersionRef;
use crate::error::CoreError;
use crate::group_commit::{RunLog, run_refuses_writes};
use crate::service::{Mlsec, RequestCtx};

/// Longest experiment or run name.
const MAX_NAME: usize = 500;
/// Most results of one search page.
pub const MAX_SEARCH_RESULTS: i64 = 50_000;
/// Most dataset inputs in one call.
const MAX_INPUTS: usize = 100;
/// Longest dataset source, schema or profile text of an input.
const MAX_INPUT_FIELD: usize = 1 << 20;
/// How long a run's experiment is remembered for authorizing run logging.
const RUN_CACHE_MS: i64 = 1000;
/// Tag keys only the server writes.
pub const RESERVED_TAG_PREFIX: &str = "mlsec.";

pub(crate) fn experiment_resource(name: &str) -> Resource {
    Resource::new(ResourceType::Experiment, name)
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

pub(crate) fn kv(pairs: Vec<(String, String)>) -> Vec<KeyValue> {
    pairs
        .into_iter()
        .map(|(key, value)| KeyValue { key, value })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct ExperimentView {
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: String,
    pub creation_time: i64,
    pub last_update_time: i64,
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricView {
    pub key: String,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
}

/// A dataset a run consumed, with the mlsec version it is pinned to.
#[derive(Debug, Clone, Serialize)]
pub struct InputView {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    pub schema: Option<String>,
    pub profile: Option<String>,
    pub tags: Vec<KeyValue>,
    /// `dataset@N` of the pinned mlsec dataset version.
    pub mlsec_version: Option<String>,
    /// Digest of the pinned version's manifest.
    pub mlsec_digest: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    pub run_id: String,
    pub experiment_id: String,
    pub experiment: String,
    pub run_name: String,
    pub user_id: String,
    pub status: String,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub lifecycle_stage: String,
    pub artifact_uri: String,
    pub parent_run_id: Option<String>,
    pub params: Vec<KeyValue>,
    pub metrics: Vec<MetricView>,
    pub tags: Vec<KeyValue>,
    pub inputs: Vec<InputView>,
}

/// A dataset input as a client logs it (MLflow's `DatasetInput`).
#[derive(Debug, Clone, Default)]
pub struct NewInput {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    pub schema: Option<String>,
    pub profile: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// A search of runs as clients send it.
#[derive(Debug, Clone, Default)]
pub struct RunSearch {
    pub experiment_ids: Vec<String>,
    pub filter: String,
    /// `ACTIVE_ONLY` (default), `DELETED_ONLY`, `ALL`.
    pub view_type: String,
    pub max_results: i64,
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

pub(crate) fn metric_view(m: MetricRow) -> MetricView {
    MetricView {
        key: m.key,
        value: m.value,
        timestamp: m.timestamp,
        step: m.step,
    }
}

fn input_view(i: RunInputRow) -> InputView {
    let tags: Vec<(String, String)> = serde_json::from_str(&i.tags_json).unwrap_or_default();
    InputView {
        name: i.name,
        digest: i.digest,
        source_type: i.source_type,
        source: i.source,
        schema: i.schema_json,
        profile: i.profile,
        tags: kv(tags),
        mlsec_version: match (&i.mlsec_dataset, i.mlsec_number) {
            (Some(d), Some(n)) => Some(format!("{d}@{n}")),
            _ => None,
        },
        mlsec_digest: i.mlsec_digest,
    }
}

pub(crate) fn run_view(row: RunRow, data: RunData) -> RunView {
    RunView {
        run_id: row.run_id,
        experiment_id: row.experiment_id.to_string(),
        experiment: row.experiment_name,
        run_name: row.name,
        user_id: row.user_id,
        status: row.status,
        start_time: row.start_time,
        end_time: row.end_time,
        lifecycle_stage: row.lifecycle_stage,
        artifact_uri: row.artifact_uri,
        parent_run_id: row.parent_run_id,
        params: kv(data.params),
        metrics: data
            .metrics
            .into_iter()
            .map(|(m, _)| metric_view(m))
            .collect(),
        tags: kv(data.tags),
        inputs: data.inputs.into_iter().map(input_view).collect(),
    }
}

fn check_name(what: &str, name: &str) -> Result<(), CoreError> {
    if name.trim().is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(CoreError::InvalidRequest(format!(
            "{what} name {name:?}: 1 to {MAX_NAME} bytes without control characters"
        )));
    }
    Ok(())
}

pub(crate) fn check_key(key: &str) -> Result<(), CoreError> {
    match tracking::key_problem(key) {
        Some(p) => Err(CoreError::InvalidRequest(p)),
        None => Ok(()),
    }
}

fn check_tag(key: &str, value: &str, server: bool) -> Result<(), CoreError> {
    check_key(key)?;
    if value.contains('\0') {
        return Err(CoreError::InvalidRequest(format!(
            "tag `{key}`: value contains a NUL character"
        )));
    }
    if value.len() > MAX_TAG_VALUE_LEN {
        return Err(CoreError::InvalidRequest(format!(
            "tag `{key}`: value exceeds {MAX_TAG_VALUE_LEN} bytes"
        )));
    }
    if !server && key.starts_with(RESERVED_TAG_PREFIX) {
        return Err(CoreError::InvalidRequest(format!(
            "tag `{key}`: keys starting with `{RESERVED_TAG_PREFIX}` are set by the server"
        )));
    }
    Ok(())
}

pub(crate) fn parse_experiment_id(id: &str) -> Result<i64, CoreError> {
    id.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| CoreError::InvalidRequest(format!("experiment id `{id}` is not a number")))
}

pub(crate) fn parse_page_token(token: Option<&str>) -> Result<i64, CoreError> {
    match token.filter(|t| !t.is_empty()) {
        None => Ok(0),
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| CoreError::InvalidRequest("invalid page token".into())),
    }
}

fn search_error(e: tracking::SearchError) -> CoreError {
    CoreError::InvalidRequest(e.to_string())
}

fn store_op(op: CompareOp) -> Result<StoreOp, CoreError> {
    Ok(match op {
        CompareOp::Eq => StoreOp::Eq,
        CompareOp::Ne => StoreOp::Ne,
        CompareOp::Gt => StoreOp::Gt,
        CompareOp::Ge => StoreOp::Ge,
        CompareOp::Lt => StoreOp::Lt,
        CompareOp::Le => StoreOp::Le,
        CompareOp::Like => StoreOp::Like,
        CompareOp::ILike => StoreOp::ILike,
        CompareOp::In => StoreOp::In,
        CompareOp::NotIn => StoreOp::NotIn,
        CompareOp::IsNull | CompareOp::IsNotNull => {
            return Err(CoreError::InvalidRequest(
                "IS NULL is supported only in model searches".into(),
            ));
        }
    })
}

fn attribute(key: &str) -> Result<&'static str, CoreError> {
    Ok(match key {
        "status" => "status",
        "run_name" | "runName" => "run_name",
        "user_id" => "user_id",
        "artifact_uri" => "artifact_uri",
        "run_id" | "run_uuid" => "run_id",
        "start_time" | "created" | "Created" => "start_time",
        "end_time" => "end_time",
        other => {
            return Err(CoreError::InvalidRequest(format!(
                "invalid attribute key `{other}`: use status, run_name, user_id, artifact_uri, run_id, start_time or end_time"
            )));
        }
    })
}

/// Turns MLflow's filter clauses into the store's typed query, checking each comparison makes
/// sense for its field (numbers for metrics and times, text for the rest).
/// Most clauses that join a table (metrics, params, tags) and most order-by terms: SQLite joins
/// at most 64 tables in one statement.
const MAX_JOINED_CLAUSES: usize = 40;
const MAX_ORDER_TERMS: usize = 10;
/// Most values across all `IN (…)` lists of one filter (bound parameters are limited too).
const MAX_FILTER_VALUES: usize = 2000;

fn run_clauses(filter: &str) -> Result<Vec<RunClause>, CoreError> {
    let mut out = Vec::new();
    for c in tracking::parse_filter(filter).map_err(search_error)? {
        let op = store_op(c.op)?;
        let field = match c.entity {
            Entity::Metric => RunField::Metric(c.key.clone()),
            Entity::Param => RunField::Param(c.key.clone()),
            Entity::Tag => RunField::Tag(c.key.clone()),
            Entity::Attribute | Entity::Bare => RunField::Attribute(attribute(&c.key)?),
            Entity::Dataset => RunField::Dataset(match c.key.as_str() {
                "name" => "name",
                "digest" => "digest",
                "context" => "context",
                other => {
                    return Err(CoreError::InvalidRequest(format!(
                        "invalid dataset key `{other}`: use name, digest or context"
                    )));
                }
            }),
        };
        let numeric = matches!(
            field,
            RunField::Metric(_) | RunField::Attribute("start_time" | "end_time")
        );
        let value = match (c.value, numeric) {
            (FilterValue::Number(n), true) => StoreValue::Number(n),
            (FilterValue::Text(t), true) => StoreValue::Number(t.parse::<f64>().map_err(|_| {
                CoreError::InvalidRequest(format!("`{}` compares with a number", c.key))
            })?),
            (FilterValue::Text(t), false) => StoreValue::Text(t),
            (FilterValue::Number(_), false) => {
                return Err(CoreError::InvalidRequest(format!(
                    "`{}` compares with a quoted string",
                    c.key
                )));
            }
            (FilterValue::List(items), _) => StoreValue::List(items),
            (FilterValue::None, _) => unreachable!("IS NULL refused above"),
        };
        let list_ok = matches!(
            field,
            RunField::Attribute("run_id") | RunField::Dataset(_) | RunField::Attribute("status")
        );
        if matches!(op, StoreOp::In | StoreOp::NotIn) != matches!(value, StoreValue::List(_))
            || (matches!(op, StoreOp::In | StoreOp::NotIn) && !list_ok)
        {
            return Err(CoreError::InvalidRequest(format!(
                "`{}` does not support {}",
                c.key, c.op
            )));
        }
        if numeric && matches!(op, StoreOp::Like | StoreOp::ILike) {
            return Err(CoreError::InvalidRequest(format!(
                "`{}` is numeric and does not support {}",
                c.key, c.op
            )));
        }
        if !numeric
            && op_is_ordering(op)
            && !matches!(field, RunField::Attribute(_) | RunField::Param(_))
        {
            return Err(CoreError::InvalidRequest(format!(
                "`{}` does not support {}",
                c.key, c.op
            )));
        }
        if matches!(field, RunField::Dataset(_)) && op_is_ordering(op) {
            return Err(CoreError::InvalidRequest(format!(
                "`datasets.{}` does not support {}",
                c.key, c.op
            )));
        }
        out.push(RunClause { field, op, value });
    }
    let joined = out
        .iter()
        .filter(|c| {
            matches!(
                c.field,
                RunField::Metric(_) | RunField::Param(_) | RunField::Tag(_)
            )
        })
        .count();
    let values: usize = out
        .iter()
        .map(|c| match &c.value {
            StoreValue::List(l) => l.len(),
            _ => 1,
        })
        .sum();
    if joined > MAX_JOINED_CLAUSES || values > MAX_FILTER_VALUES {
        return Err(CoreError::InvalidRequest(format!(
            "filter too large: at most {MAX_JOINED_CLAUSES} metric/param/tag clauses and {MAX_FILTER_VALUES} values"
        )));
    }
    Ok(out)
}

fn op_is_ordering(op: StoreOp) -> bool {
    matches!(op, StoreOp::Gt | StoreOp::Ge | StoreOp::Lt | StoreOp::Le)
}

fn run_order(terms: &[String]) -> Result<Vec<RunOrder>, CoreError> {
    if terms.len() > MAX_ORDER_TERMS {
        return Err(CoreError::InvalidRequest(format!(
            "at most {MAX_ORDER_TERMS} order_by terms"
        )));
    }
    terms
        .iter()
        .map(|t| {
            let o = tracking::parse_order_by(t).map_err(search_error)?;
            let field = match o.entity {
                Entity::Metric => RunField::Metric(o.key),
                Entity::Param => RunField::Param(o.key),
                Entity::Tag => RunField::Tag(o.key),
                Entity::Attribute | Entity::Bare => RunField::Attribute(attribute(&o.key)?),
                Entity::Dataset => {
                    return Err(CoreError::InvalidRequest(
                        "runs cannot be ordered by datasets".into(),
                    ));
                }
            };
            Ok(RunOrder {
                field,
                ascending: o.ascending,
            })
        })
        .collect()
}

fn lifecycle_stages(view_type: &str) -> Result<Vec<&'static str>, CoreError> {
    Ok(match view_type {
        "" | "ACTIVE_ONLY" | "1" => vec!["active"],
        "DELETED_ONLY" | "2" => vec!["deleted"],
        "ALL" | "3" => vec!["active", "deleted"],
        other => {
            return Err(CoreError::InvalidRequest(format!(
                "view type `{other}`: use ACTIVE_ONLY, DELETED_ONLY or ALL"
            )));
        }
    })
}

fn experiment_view(row: ExperimentRow, tags: Vec<(String, String)>) -> ExperimentView {
    ExperimentView {
        experiment_id: row.id.to_string(),
        name: row.name,
        artifact_location: row.artifact_location,
        lifecycle_stage: row.lifecycle_stage,
        creation_time: row.created_at,
        last_update_time: row.updated_at,
        tags: kv(tags),
    }
}

/// Where a dataset input names an mlsec dataset version: a `mlsec.dataset` tag, an
/// `mlsec://NAME@VERSION` source, or a full `sha256:` digest.
fn pinned_reference(input: &NewInput) -> Result<Option<VersionRef>, CoreError> {
    if let Some((_, v)) = input.tags.iter().find(|(k, _)| k == "mlsec.dataset") {
        return VersionRef::parse(v.trim()).map(Some);
    }
    if let Some(at) = input.source.find("mlsec://") {
        let rest = &input.source[at + "mlsec://".len()..];
        let end = rest
            .find(|c: char| matches!(c, '"' | '\'' | '\\' | '}' | ',') || c.is_whitespace())
            .unwrap_or(rest.len());
        let text = rest[..end].trim_start_matches("datasets/");
        return VersionRef::parse(text).map(Some);
    }
    let digest = input.digest.trim();
    if digest.len() == 71 && digest.starts_with("sha256:") {
        return VersionRef::parse(digest).map(Some);
    }
    Ok(None)
}

impl Mlsec {
    /// Authorizes `action` on an experiment the caller named by id (or through a run, an
    /// artifact or a logged model): a refusal names what the caller gave, never the
    /// experiment's name, so ids cannot be walked to learn names.
    pub(crate) async fn authorize_experiment(
        &self,
        ctx: &RequestCtx,
        action: &str,
        experiment_name: &str,
        shown: &str,
    ) -> Result<(), CoreError> {
        self.authorize(ctx, action, &experiment_resource(experiment_name))
            .await
            .map_err(|e| match e {
                CoreError::PermissionDenied(_) => CoreError::PermissionDenied(format!(
                    "`{}` may not `{action}` on {shown}",
                    ctx.principal.id
                )),
                other => other,
            })
    }

    async fn experiment_row(&self, id: i64) -> Result<ExperimentRow, CoreError> {
        self.store()
            .experiment(id)
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: "experiment",
                id: id.to_string(),
            })
    }

    /// The experiment a run belongs to, from a short-lived cache (run logging is the hot path:
    /// a metric per call from every training job). An experiment renamed on another replica
    /// is seen here within `RUN_CACHE_MS`, like the identity caches.
    async fn run_experiment_cached(&self, run_id: &str) -> Result<String, CoreError> {
        let now = self.now();
        if let Some((name, at)) = self
            .inner
            .run_experiments
            .read()
            .expect("run cache lock")
            .get(run_id)
            && now - *at < RUN_CACHE_MS
            && now >= *at
        {
            return Ok(name.clone());
        }
        let run = self
            .store()
            .run(run_id)
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: "run",
                id: run_id.to_owned(),
            })?;
        let mut cache = self.inner.run_experiments.write().expect("run cache lock");
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(run_id.to_owned(), (run.experiment_name.clone(), now));
        Ok(run.experiment_name)
    }

    /// A run, authorized for `action` on its experiment.
    pub(crate) async fn authorized_run(
        &self,
        ctx: &RequestCtx,
        run_id: &str,
        action: &str,
    ) -> Result<RunRow, CoreError> {
        let run = self
            .store()
            .run(run_id)
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: "run",
                id: run_id.to_owned(),
            })?;
        self.authorize_experiment(
            ctx,
            action,
            &run.experiment_name,
            &format!("run `{run_id}`"),
        )
        .await?;
        Ok(run)
    }

    pub async fn create_experiment(
        &self,
        ctx: &RequestCtx,
        name: &str,
        tags: Vec<(String, String)>,
    ) -> Result<String, CoreError> {
        check_name("experiment", name)?;
        for (k, v) in &tags {
            check_tag(k, v, false)?;
        }
        self.authorize(ctx, "experiment.write", &experiment_resource(name))
            .await?;
        let now = self.now();
        let by = ctx.principal.actor().to_string();
        let mut w = self.store().begin_write().await?;
        let id = w.insert_experiment(name, now, &by).await?;
        for (k, v) in &tags {
            w.set_experiment_tag(id, k, v).await?;
        }
        w.commit(&[ctx
            .event(
                "experiment.create",
                experiment_resource(name).to_string(),
                Decision::Allow,
                "created",
            )
            .with_details(serde_json::json!({ "experiment_id": id.to_string() }))])
            .await?;
        Ok(id.to_string())
    }

    pub async fn experiment(
        &self,
        ctx: &RequestCtx,
        id: &str,
    ) -> Result<ExperimentView, CoreError> {
        let row = self.experiment_row(parse_experiment_id(id)?).await?;
        self.authorize_experiment(
            ctx,
            "experiment.read",
            &row.name,
            &format!("experiment {id}"),
        )
        .await?;
        let tags = self.store().experiment_tags(row.id).await?;
        Ok(experiment_view(row, tags))
    }

    pub async fn experiment_by_name(
        &self,
        ctx: &RequestCtx,
        name: &str,
    ) -> Result<ExperimentView, CoreError> {
        // Authorized on the name before the lookup: a caller without access learns nothing of
        // whether it exists.
        self.authorize(ctx, "experiment.read", &experiment_resource(name))
            .await?;
        let row = self
            .store()
            .experiment_by_name(name)
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: "experiment",
                id: name.to_owned(),
            })?;
        let tags = self.store().experiment_tags(row.id).await?;
        Ok(experiment_view(row, tags))
    }

    /// Experiments the caller may read, a page at a time; `filter` may compare `name` and
    /// `tags.KEY` (`=`, `!=`, `LIKE`, `ILIKE`).
    pub async fn search_experiments(
        &self,
        ctx: &RequestCtx,
        view_type: &str,
        filter: &str,
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<(Vec<ExperimentView>, Option<String>), CoreError> {
        let stages = lifecycle_stages(view_type)?;
        let clauses = tracking::parse_filter(filter).map_err(search_error)?;
        let limit = max_results.clamp(1, MAX_SEARCH_RESULTS);
        let mut after = match page_token.filter(|t| !t.is_empty()) {
            None => -1,
            Some(t) => t
                .parse::<i64>()
                .map_err(|_| CoreError::InvalidRequest("invalid page token".into()))?,
        };
        let mut out = Vec::new();
        loop {
            let rows = self.store().experiments(&stages, after, 1000).await?;
            let exhausted = rows.len() < 1000;
            for row in rows {
                after = row.id;
                if !self
                    .authorize_quiet(ctx, "experiment.read", &experiment_resource(&row.name))
                    .await
                {
                    continue;
                }
                let tags = self.store().experiment_tags(row.id).await?;
                if clauses.iter().all(|c| experiment_matches(c, &row, &tags)) {
                    out.push(experiment_view(row, tags));
                    if out.len() as i64 == limit {
                        return Ok((out, Some(after.to_string())));
                    }
                }
            }
            if exhausted {
                return Ok((out, None));
            }
        }
    }

    pub async fn rename_experiment(
        &self,
        ctx: &RequestCtx,
        id: &str,
        new_name: &str,
    ) -> Result<(), CoreError> {
        check_name("experiment", new_name)?;
        let row = self.experiment_row(parse_experiment_id(id)?).await?;
        self.authorize_experiment(
            ctx,
            "experiment.write",
            &row.name,
            &format!("experiment {id}"),
        )
        .await?;
        self.authorize(ctx, "experiment.write", &experiment_resource(new_name))
            .await?;
        let mut w = self.store().begin_write().await?;
        w.update_experiment(row.id, Some(new_name), None, self.now())
            .await?;
        w.commit(&[ctx
            .event(
                "experiment.update",
                experiment_resource(&row.name).to_string(),
                Decision::Allow,
                "renamed",
            )
            .with_details(serde_json::json!({ "experiment_id": id, "new_name": new_name }))])
            .await?;
        // Runs are authorized by their experiment's name: forget the old one at once here.
        self.inner
            .run_experiments
            .write()
            .expect("run cache lock")
            .clear();
        Ok(())
    }

    /// Moves an experiment to `deleted` (or back to `active`); its runs stay.
    pub async fn set_experiment_deleted(
        &self,
        ctx: &RequestCtx,
        id: &str,
        deleted: bool,
    ) -> Result<(), CoreError> {
        let row = self.experiment_row(parse_experiment_id(id)?).await?;
        if row.id == 0 && deleted {
            return Err(CoreError::InvalidRequest(
                "the default experiment cannot be deleted".into(),
            ));
        }
        self.authorize_experiment(
            ctx,
            "experiment.delete",
            &row.name,
            &format!("experiment {id}"),
        )
        .await?;
        let stage = if deleted { "deleted" } else { "active" };
        let mut w = self.store().begin_write().await?;
        w.update_experiment(row.id, None, Some(stage), self.now())
            .await?;
        w.commit(&[ctx
            .event(
                if deleted {
                    "experiment.delete"
                } else {
                    "experiment.restore"
                },
                experiment_resource(&row.name).to_string(),
                Decision::Allow,
                stage,
            )
            .with_details(serde_json::json!({ "experiment_id": id }))])
            .await?;
        Ok(())
    }

    pub async fn set_experiment_tag(
        &self,
        ctx: &RequestCtx,
        id: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), CoreError> {
        check_tag(key, value.unwrap_or(""), false)?;
        let row = self.experiment_row(parse_experiment_id(id)?).await?;
        self.authorize_experiment(
            ctx,
            "experiment.write",
            &row.name,
            &format!("experiment {id}"),
        )
        .await?;
        let mut w = self.store().begin_write().await?;
        match value {
            Some(v) => w.set_experiment_tag(row.id, key, v).await?,
            None => {
                w.delete_experiment_tag(row.id, key).await?;
            }
        }
        w.commit(&[ctx
            .event(
                if value.is_some() {
                    "experiment.tag"
                } else {
                    "experiment.untag"
                },
                experiment_resource(&row.name).to_string(),
                Decision::Allow,
                key.to_owned(),
            )
            .with_details(serde_json::json!({ "experiment_id": id, "key": key }))])
            .await?;
        Ok(())
    }

    /// Starts a run in an experiment (status RUNNING unless told otherwise).
    pub async fn create_run(
        &self,
        ctx: &RequestCtx,
        experiment_id: &str,
        run_name: Option<&str>,
        start_time: Option<i64>,
        user_id: Option<&str>,
        tags: Vec<(String, String)>,
    ) -> Result<RunView, CoreError> {
        let experiment = self
            .experiment_row(parse_experiment_id(experiment_id)?)
            .await?;
        self.authorize_experiment(
            ctx,
            "experiment.write",
            &experiment.name,
            &format!("experiment {experiment_id}"),
        )
        .await?;
        if experiment.lifecycle_stage != "active" {
            return Err(CoreError::InvalidRequest(format!(
                "experiment `{}` is deleted",
                experiment.name
            )));
        }
        for (k, v) in &tags {
            check_tag(k, v, false)?;
        }
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let name = run_name
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .or_else(|| {
                tags.iter()
                    .find(|(k, _)| k == "mlflow.runName")
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_else(|| format!("run-{}", &run_id[..8]));
        check_name("run", &name)?;
        let parent = tags
            .iter()
            .find(|(k, _)| k == "mlflow.parentRunId")
            .map(|(_, v)| v.clone());
        if let Some(p) = &parent {
            // A child may only hang under a run the caller can read.
            self.authorized_run(ctx, p, "experiment.read").await?;
        }
        let mut tags = tags;
        if !tags.iter().any(|(k, _)| k == "mlflow.runName") {
            tags.push(("mlflow.runName".into(), name.clone()));
        }
        let row = RunRow {
            run_id: run_id.clone(),
            experiment_id: experiment.id,
            experiment_name: experiment.name.clone(),
            name,
            // The authenticated principal, whatever the client claims.
            user_id: user_id
                .filter(|u| *u == ctx.principal.id)
                .unwrap_or(&ctx.principal.id)
                .to_owned(),
            status: "RUNNING".into(),
            start_time: start_time.unwrap_or_else(|| self.now()),
            end_time: None,
            lifecycle_stage: "active".into(),
            artifact_uri: format!("mlflow-artifacts:/{}/{run_id}/artifacts", experiment.id),
            parent_run_id: parent,
            created_by: ctx.principal.actor().to_string(),
        };
        let mut w = self.store().begin_write().await?;
        w.insert_run(&row).await?;
        w.set_run_tags(&run_id, &tags).await?;
        w.commit(&[ctx
            .event(
                "run.create",
                experiment_resource(&experiment.name).to_string(),
                Decision::Allow,
                "created",
            )
            .with_details(
                serde_json::json!({ "run_id": run_id, "parent_run_id": row.parent_run_id }),
            )])
        .await?;
        let view = self.run(ctx, &run_id).await?;
        self.openlineage_run_started(&view);
        Ok(view)
    }

    /// A run as lineage events describe it, without an authorization check: the events go to
    /// the configured lineage endpoint, not to the caller.
    pub(crate) async fn run_for_lineage(&self, run_id: &str) -> Result<Option<RunView>, CoreError> {
        let Some(row) = self.store().run(run_id).await? else {
            return Ok(None);
        };
        let mut data = self
            .store()
            .run_data(std::slice::from_ref(&row.run_id))
            .await?;
        let d = data.remove(&row.run_id).unwrap_or_default();
        Ok(Some(run_view(row, d)))
    }

    pub async fn run(&self, ctx: &RequestCtx, run_id: &str) -> Result<RunView, CoreError> {
        let row = self.authorized_run(ctx, run_id, "experiment.read").await?;
        let mut data = self
            .store()
            .run_data(std::slice::from_ref(&row.run_id))
            .await?;
        let d = data.remove(&row.run_id).unwrap_or_default();
        Ok(run_view(row, d))
    }

    /// Sets a run's status, end time or name.
    pub async fn update_run(
        &self,
        ctx: &RequestCtx,
        run_id: &str,
        status: Option<&str>,
        end_time: Option<i64>,
        run_name: Option<&str>,
    ) -> Result<RunView, CoreError> {
        if let Some(s) = status
            && !["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"].contains(&s)
        {
            return Err(CoreError::InvalidRequest(format!("run status `{s}`")));
        }
        if let Some(n) = run_name {
            check_name("run", n)?;
        }
        let run = self.authorized_run(ctx, run_id, "experiment.write").await?;
        if let Some(refused) = run_refuses_writes(&run) {
            return Err(refused);
        }
        let mut w = self.store().begin_write().await?;
        // The status before this write, read inside it (writes are serial), so concurrent
        // updates each see the state the other left and lineage sees each change once.
        let before = w.run_in_tx(run_id).await?.map(|r| r.status);
        w.update_run(run_id, status, end_time, run_name).await?;
        if let Some(n) = run_name {
            w.set_run_tags(run_id, &[("mlflow.runName".into(), n.to_owned())])
                .await?;
        }
        w.commit(&[ctx
            .event(
                "run.update",
                experiment_resource(&run.experiment_name).to_string(),
                Decision::Allow,
                status.unwrap_or("updated").to_owned(),
            )
            .with_details(
                serde_json::json!({ "run_id": run_id, "status": status, "end_time": end_time }),
            )])
        .await?;
        let view = self.run(ctx, run_id).await?;
        if let Some(s) = status
            && before.as_deref() != Some(s)
        {
            self.openlineage_run_ended(&view, s);
        }
        Ok(view)
    }

    pub async fn set_run_deleted(
        &self,
        ctx: &RequestCtx,
        run_id: &str,
        deleted: bool,
    ) -> Result<(), CoreError> {
        let run = self
            .authorized_run(ctx, run_id, "experiment.delete")
            .await?;
        let mut w = self.store().begin_write().await?;
        let (stage, at) = if deleted {
            ("deleted", Some(self.now()))
        } else {
            ("active", None)
        };
        w.set_run_lifecycle(run_id, stage, at).await?;
        w.commit(&[ctx
            .event(
                if deleted { "run.delete" } else { "run.restore" },
                experiment_resource(&run.experiment_name).to_string(),
                Decision::Allow,
                stage,
            )
            .with_details(serde_json::json!({ "run_id": run_id }))])
            .await?;
        Ok(())
    }

    /// Logs metrics, params and tags to a run in one durable, audited write (group commit).
    pub async fn log_to_run(
        &self,
        ctx: &RequestCtx,
        run_id: &str,
        metrics: Vec<MetricRow>,
        params: Vec<(String, String)>,
        tags: Vec<(String, String)>,
    ) -> Result<(), CoreError> {
        if metrics.len() > tracking::MAX_BATCH_METRICS
            || params.len() > tracking::MAX_BATCH_PARAMS
            || tags.len() > tracking::MAX_BATCH_TAGS
            || metrics.len() + params.len() + tags.len() > tracking::MAX_BATCH_ENTRIES
        {
            return Err(CoreError::InvalidRequest(format!(
                "a batch holds at most {} metrics, {} params, {} tags and {} entries in all",
                tracking::MAX_BATCH_METRICS,
                tracking::MAX_BATCH_PARAMS,
                tracking::MAX_BATCH_TAGS,
                tracking::MAX_BATCH_ENTRIES
            )));
        }
        for m in &metrics {
            check_key(&m.key)?;
        }
        let mut seen = std::collections::HashMap::new();
        for (k, v) in &params {
            check_key(k)?;
            if v.len() > MAX_PARAM_VALUE_LEN || v.contains('\0') {
                return Err(CoreError::InvalidRequest(format!(
                    "param `{k}`: value exceeds {MAX_PARAM_VALUE_LEN} bytes or contains NUL"
                )));
            }
            if let Some(old) = seen.insert(k.as_str(), v.as_str())
                && old != v
            {
                return Err(CoreError::InvalidRequest(format!(
                    "param `{k}` is given twice with different values"
                )));
            }
        }
        for (k, v) in &tags {
            check_tag(k, v, false)?;
        }
        let experiment = self.run_experiment_cached(run_id).await?;
        self.authorize_experiment(
            ctx,
            "experiment.write",
            &experiment,
            &format!("run `{run_id}`"),
        )
        .await?;
        let mut metric_keys: Vec<&str> = metrics.iter().map(|m| m.key.as_str()).collect();
        metric_keys.sort_unstable();
        metric_keys.dedup();
        let details = serde_json::json!({
            "run_id": run_id,
            "metrics": metrics.len(),
            "metric_keys": metric_keys.iter().take(50).collect::<Vec<_>>(),
            "params": params.iter().map(|(k, v)| serde_json::json!({"key": k, "value": v})).collect::<Vec<_>>(),
            "tags": tags.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        });
        let event = ctx
            .event(
                "run.log",
                experiment_resource(&experiment).to_string(),
                Decision::Allow,
                "logged",
            )
            .with_details(details);
        self.inner
            .run_writer
            .write(RunLog {
                run_id: run_id.to_owned(),
                metrics,
                params,
                tags,
                event,
            })
            .await
    }

    pub async fn delete_run_tag(
        &self,
        ctx: &RequestCtx,
        run_id: &str,
        key: &str,
    ) -> Result<(), CoreError> {
        check_tag(key, "", false)?;
        let run = self.authorized_run(ctx, run_id, "experiment.write").await?;
        if let Some(refused) = run_refuses_writes(&run) {
            return Err(refused);
        }
        let mut w = self.store().begin_write().await?;
        if !w.delete_run_tag(run_id, key).await? {
            w.rollback().await?;
            return Err(CoreError::NotFound {
                what: "tag",
                id: key.to_owned(),
            });
        }
        w.commit(&[ctx
            .event(
                "run.untag",
                experiment_resource(&run.experiment_name).to_string(),
                Decision::Allow,
                key.to_owned(),
            )
            .with_details(serde_json::json!({ "run_id": run_id, "key": key }))])
            .await?;
        Ok(())
    }

    /// Records dataset inputs; each one naming an mlsec dataset version is pinned to that
    /// version's digest (and refused if the version does not exist or the caller cannot read it).
    pub async fn log_inputs(
        &self,
        ctx: &RequestCtx,
        run_id: &str,
        inputs: Vec<NewInput>,
    ) -> Result<Vec<InputView>, CoreError> {
        if inputs.len() > MAX_INPUTS {
            return Err(CoreError::InvalidRequest(format!(
                "at most {MAX_INPUTS} inputs per call"
            )));
        }
        let run = self.authorized_run(ctx, run_id, "experiment.write").await?;
        if let Some(refused) = run_refuses_writes(&run) {
            return Err(refused);
        }
        let now = self.now();
        let mut rows = Vec::with_capacity(inputs.len());
        for input in inputs {
            check_name("dataset", &input.name)?;
            for field in [&input.source, &input.digest]
                .into_iter()
                .chain(input.schema.as_ref())
                .chain(input.profile.as_ref())
            {
                if field.len() > MAX_INPUT_FIELD {
                    return Err(CoreError::InvalidRequest(format!(
                        "input `{}`: a field exceeds {MAX_INPUT_FIELD} bytes",
                        input.name
                    )));
                }
            }
            for (k, v) in &input.tags {
                check_tag(k, v, true)?;
            }
            let pinned = match pinned_reference(&input)? {
                Some(reference) => Some(
                    self.authorized_version(ctx, &reference, "dataset.read")
                        .await?,
                ),
                None => None,
            };
            rows.push(RunInputRow {
                run_id: run_id.to_owned(),
                name: input.name,
                digest: input.digest,
                source_type: input.source_type,
                source: input.source,
                schema_json: input.schema,
                profile: input.profile,
                tags_json: serde_json::to_string(&input.tags).unwrap_or_else(|_| "[]".into()),
                mlsec_dataset: pinned.as_ref().map(|v| v.dataset.clone()),
                mlsec_number: pinned.as_ref().map(|v| v.number),
                mlsec_digest: pinned.as_ref().map(|v| v.digest.clone()),
                created_at: now,
            });
        }
        let mut w = self.store().begin_write().await?;
        let mut events = Vec::new();
        for row in &rows {
            let new = w.insert_run_input(row).await?;
            events.push(
                ctx.event(
                    "run.input",
                    experiment_resource(&run.experiment_name).to_string(),
                    Decision::Allow,
                    if new { "recorded" } else { "already recorded" },
                )
                .with_details(serde_json::json!({
                    "run_id": run_id,
                    "dataset": row.name,
                    "digest": row.digest,
                    "mlsec_version": row.mlsec_dataset.as_ref().map(|d| format!("{d}@{}", row.mlsec_number.unwrap_or(0))),
                    "mlsec_digest": row.mlsec_digest,
                })),
            );
        }
        if events.is_empty() {
            w.rollback().await?;
            return Ok(Vec::new());
        }
        w.commit(&events).await?;
        // An input recorded before keeps its first pin: answer with what is stored.
        let stored = self
            .store()
            .run_data(&[run_id.to_owned()])
            .await?
            .remove(run_id)
            .unwrap_or_default()
            .inputs;
        Ok(rows
            .into_iter()
            .map(|r| {
                stored
                    .iter()
                    .find(|s| s.name == r.name && s.digest == r.digest)
                    .cloned()
                    .unwrap_or(r)
            })
            .map(input_view)
            .collect())
    }

    /// A metric's history, a page at a time.
    pub async fn metric_history(
        &self,
        ctx: &RequestCtx,
        run_id: &str,
        key: &str,
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<(Vec<MetricView>, Option<String>), CoreError> {
        self.authorized_run(ctx, run_id, "experiment.read").await?;
        let offset = parse_page_token(page_token)?;
        let limit = max_results.clamp(1, 100_000);
        let rows = self
            .store()
            .metric_history(run_id, key, limit + 1, offset)
            .await?;
        let more = rows.len() as i64 > limit;
        let page: Vec<MetricView> = rows
            .into_iter()
            .take(limit as usize)
            .map(metric_view)
            .collect();
        Ok((page, more.then(|| (offset + limit).to_string())))
    }

    /// Runs of the given experiments matching an MLflow filter, in the requested order.
    pub async fn search_runs(
        &self,
        ctx: &RequestCtx,
        search: &RunSearch,
    ) -> Result<(Vec<RunView>, Option<String>), CoreError> {
        let mut experiment_ids = Vec::with_capacity(search.experiment_ids.len());
        for id in &search.experiment_ids {
            let row = self.experiment_row(parse_experiment_id(id)?).await?;
            self.authorize_experiment(
                ctx,
                "experiment.read",
                &row.name,
                &format!("experiment {id}"),
            )
            .await?;
            experiment_ids.push(row.id);
        }
        let offset = parse_page_token(search.page_token.as_deref())?;
        let limit = if search.max_results <= 0 {
            1000
        } else {
            search.max_results.min(MAX_SEARCH_RESULTS)
        };
        let query = RunQuery {
            experiment_ids,
            lifecycle_stages: lifecycle_stages(&search.view_type)?,
            clauses: run_clauses(&search.filter)?,
            order: run_order(&search.order_by)?,
            limit: limit + 1,
            offset,
        };
        let mut rows = self.store().search_runs(&query).await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let ids: Vec<String> = rows.iter().map(|r| r.run_id.clone()).collect();
        let mut data = self.store().run_data(&ids).await?;
        let runs = rows
            .into_iter()
            .map(|r| {
                let d = data.remove(&r.run_id).unwrap_or_default();
                run_view(r, d)
            })
            .collect();
        Ok((runs, more.then(|| (offset + limit).to_string())))
    }
}

fn experiment_matches(
    c: &tracking::Clause,
    row: &ExperimentRow,
    tags: &[(String, String)],
) -> bool {
    let actual: Option<&str> = match (c.entity, c.key.as_str()) {
        (Entity::Attribute | Entity::Bare, "name") => Some(&row.name),
        (Entity::Tag, key) => tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()),
        _ => return false,
    };
    text_matches(actual, c.op, &c.value)
}

/// Whether a text value satisfies a comparison (used where searches run in memory).
pub fn text_matches(actual: Option<&str>, op: CompareOp, value: &FilterValue) -> bool {
    match (op, value, actual) {
        (CompareOp::IsNull, _, a) => a.is_none(),
        (CompareOp::IsNotNull, _, a) => a.is_some(),
        // A missing value differs from every value (MLflow's clients filter prompts out with
        // `tags.mlflow.prompt.is_prompt != 'true'`, which models without the tag must pass).
        (CompareOp::Ne | CompareOp::NotIn, _, None) => true,
        (_, _, None) => false,
        (CompareOp::Eq, FilterValue::Text(t), Some(a)) => a == t,
        (CompareOp::Ne, FilterValue::Text(t), Some(a)) => a != t,
        (CompareOp::Like, FilterValue::Text(t), Some(a)) => like(a, t),
        (CompareOp::ILike, FilterValue::Text(t), Some(a)) => {
            like(&a.to_lowercase(), &t.to_lowercase())
        }
        (CompareOp::In, FilterValue::List(l), Some(a)) => l.iter().any(|v| v == a),
        (CompareOp::NotIn, FilterValue::List(l), Some(a)) => !l.iter().any(|v| v == a),
        _ => false,
    }
}

/// SQL LIKE with `%` and `_`, iterative (no backtracking blow-up on long patterns).
pub(crate) fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut ti, mut pi) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_sql_semantics() {
        assert!(like("fraud-model", "fraud%"));
        assert!(like("fraud-model", "%model"));
        assert!(like("abc", "a_c"));
        assert!(!like("abc", "A%"));
        assert!(like("", "%"));
        assert!(!like("ab", "a_c"));
        assert!(like(&"a".repeat(10_000), &"%a".repeat(100)));
    }

    #[test]
    fn filters_become_typed_clauses_and_bad_ones_are_refused() {
        let c = run_clauses(
            "metrics.acc > 0.9 and params.lr = '0.01' and attributes.status = 'FINISHED'",
        )
        .unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].value, StoreValue::Number(0.9));
        assert_eq!(c[2].field, RunField::Attribute("status"));
        for bad in [
            "metrics.acc = 'x'",
            "params.lr > 1",
            "metrics.acc LIKE '1%'",
            "attributes.nope = 'x'",
            "tags.t IN ('a')",
            "datasets.size = 'x'",
            "metrics.acc IS NULL",
        ] {
            assert!(run_clauses(bad).is_err(), "{bad}");
        }
        assert!(run_clauses("attributes.run_id IN ('a', 'b')").is_ok());
        assert!(run_clauses("datasets.digest IN ('abc')").is_ok());
    }

    #[test]
    fn inputs_name_mlsec_versions_three_ways() {
        let by_tag = NewInput {
            name: "train".into(),
            tags: vec![("mlsec.dataset".into(), "fraud/train@2".into())],
            ..Default::default()
        };
        assert_eq!(
            pinned_reference(&by_tag).unwrap(),
            Some(VersionRef::Number("fraud/train".into(), 2))
        );
        let by_source = NewInput {
            name: "train".into(),
            source: r#"{"uri": "mlsec://fraud/train@3"}"#.into(),
            ..Default::default()
        };
        assert_eq!(
            pinned_reference(&by_source).unwrap(),
            Some(VersionRef::Number("fraud/train".into(), 3))
        );
        let plain = NewInput {
            name: "train".into(),
            digest: "1a2b3c4d".into(),
            ..Default::default()
        };
        assert_eq!(pinned_reference(&plain).unwrap(), None);
    }
}
