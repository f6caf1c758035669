//! The MLflow REST API (`/api/2.0/mlflow/...`, `/api/2.0/mlflow-artifacts/...`), so MLflow
//! clients work unchanged: `mlflow.set_tracking_uri("http://mlsec:8750")` with
//! `MLFLOW_TRACKING_TOKEN` set.
//!
//! Handlers translate MLflow's wire shapes (GET requests carry their fields in the query string,
//! everything else a JSON body; errors are `{error_code, message}` with MLflow's code names) and
//! call the same core use cases as the native API, so authorization, scanning and audit are the
//! same on both surfaces.

use std::collections::HashMap;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use mlsec_core::store::MetricRow;
use mlsec_core::{
    ArtifactEntry, CoreError, ExperimentView, InputView, KeyValue, LoggedModelView, MetricView,
    ModelVersionView, NewInput, NewLoggedModel, RegisteredModelView, RequestCtx, RunSearch,
    RunView, VersionSource,
};
use mlsec_types::ErrorCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;

/// An error in MLflow's shape. Refusals are always 4xx: MLflow clients retry 5xx answers for
/// minutes and then drop the message.
pub struct MlflowError(ApiError);

impl From<CoreError> for MlflowError {
    fn from(e: CoreError) -> Self {
        MlflowError(ApiError::from(e))
    }
}

impl From<ApiError> for MlflowError {
    fn from(e: ApiError) -> Self {
        MlflowError(e)
    }
}

fn invalid(message: impl Into<String>) -> MlflowError {
    MlflowError(ApiError::new(ErrorCode::InvalidRequest, message))
}

/// MLflow's error code name and the status for one of ours.
fn mlflow_code(code: ErrorCode) -> (StatusCode, &'static str) {
    match code {
        ErrorCode::InvalidRequest | ErrorCode::InvalidDigest => {
            (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE")
        }
        ErrorCode::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "INVALID_PARAMETER_VALUE"),
        ErrorCode::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
        ErrorCode::PermissionDenied | ErrorCode::SecondFactorRequired => {
            (StatusCode::FORBIDDEN, "PERMISSION_DENIED")
        }
        ErrorCode::TooManyAttempts => (StatusCode::TOO_MANY_REQUESTS, "REQUEST_LIMIT_EXCEEDED"),
        ErrorCode::NotFound => (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST"),
        ErrorCode::AlreadyExists => (StatusCode::BAD_REQUEST, "RESOURCE_ALREADY_EXISTS"),
        ErrorCode::Conflict => (StatusCode::BAD_REQUEST, "INVALID_STATE"),
        ErrorCode::IntegrityViolation => (StatusCode::UNPROCESSABLE_ENTITY, "DATA_LOSS"),
        ErrorCode::StorageFull | ErrorCode::Unavailable => {
            (StatusCode::SERVICE_UNAVAILABLE, "TEMPORARILY_UNAVAILABLE")
        }
        ErrorCode::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR"),
    }
}

impl IntoResponse for MlflowError {
    fn into_response(self) -> Response {
        let (status, code) = mlflow_code(self.0.code);
        let mut r = (
            status,
            axum::Json(json!({ "error_code": code, "message": self.0.message })),
        )
            .into_response();
        if let Some(secs) = self.0.retry_after_secs
            && let Ok(v) = header::HeaderValue::from_str(&secs.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

type Res = Result<axum::Json<Value>, MlflowError>;

/// The caller, authenticated, with failures in MLflow's error shape.
pub struct Caller(RequestCtx);

impl FromRequestParts<AppState> for Caller {
    type Rejection = MlflowError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, MlflowError> {
        let Authenticated(ctx) = Authenticated::from_request_parts(parts, state).await?;
        Ok(Caller(ctx))
    }
}

/// A JSON body, whatever the content type says (MLflow clients send DELETE bodies too).
pub struct Body_<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body_<T> {
    type Rejection = MlflowError;

    async fn from_request(req: Request, state: &S) -> Result<Self, MlflowError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| invalid(format!("request body: {e}")))?;
        let text: &[u8] = if bytes.is_empty() { b"{}" } else { &bytes };
        serde_json::from_slice(text)
            .map(Body_)
            .map_err(|e| invalid(format!("request body: {e}")))
    }
}

/// Query-string fields of a GET request.
pub struct Fields<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Fields<T> {
    type Rejection = MlflowError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, MlflowError> {
        let Query(v) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| invalid(format!("query: {e}")))?;
        Ok(Fields(v))
    }
}

fn ok(v: Value) -> Res {
    Ok(axum::Json(v))
}

fn empty() -> Res {
    ok(json!({}))
}

/// Metric values: JSON numbers, or the strings protobuf JSON uses for non-finite values.
fn metric_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum V {
        N(f64),
        S(String),
    }
    match V::deserialize(d)? {
        V::N(n) => Ok(n),
        V::S(s) => match s.as_str() {
            "NaN" | "nan" => Ok(f64::NAN),
            "Infinity" | "inf" => Ok(f64::INFINITY),
            "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
            other => other
                .parse::<f64>()
                .map_err(|_| serde::de::Error::custom(format!("metric value `{other}`"))),
        },
    }
}

/// int64 fields: JSON numbers or strings (protobuf JSON allows both).
fn int64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum V {
        N(i64),
        F(f64),
        S(String),
    }
    Ok(match Option::<V>::deserialize(d)? {
        None => None,
        Some(V::N(n)) => Some(n),
        Some(V::F(f)) => Some(f as i64),
        Some(V::S(s)) => Some(
            s.parse::<i64>()
                .map_err(|_| serde::de::Error::custom(format!("`{s}` is not an integer")))?,
        ),
    })
}

fn number_json(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v == f64::INFINITY {
        json!("Infinity")
    } else if v == f64::NEG_INFINITY {
        json!("-Infinity")
    } else {
        json!(v)
    }
}

#[derive(Deserialize, Default)]
struct Tag {
    key: String,
    #[serde(default)]
    value: String,
}

fn pairs(tags: Vec<Tag>) -> Vec<(String, String)> {
    tags.into_iter().map(|t| (t.key, t.value)).collect()
}

fn kv_json(tags: &[KeyValue]) -> Value {
    Value::Array(
        tags.iter()
            .map(|t| json!({"key": t.key, "value": t.value}))
            .collect(),
    )
}

fn experiment_json(e: &ExperimentView) -> Value {
    json!({
        "experiment_id": e.experiment_id,
        "name": e.name,
        "artifact_location": e.artifact_location,
        "lifecycle_stage": e.lifecycle_stage,
        "creation_time": e.creation_time,
        "last_update_time": e.last_update_time,
        "tags": kv_json(&e.tags),
    })
}

fn run_info_json(r: &RunView) -> Value {
    let mut info = json!({
        "run_uuid": r.run_id,
        "run_id": r.run_id,
        "experiment_id": r.experiment_id,
        "run_name": r.run_name,
        "user_id": r.user_id,
        "status": r.status,
        "start_time": r.start_time,
        "artifact_uri": r.artifact_uri,
        "lifecycle_stage": r.lifecycle_stage,
    });
    if let Some(end) = r.end_time {
        info["end_time"] = json!(end);
    }
    info
}

fn metric_json(m: &MetricView) -> Value {
    json!({"key": m.key, "value": number_json(m.value), "timestamp": m.timestamp, "step": m.step})
}

fn input_json(i: &InputView) -> Value {
    let mut dataset = json!({
        "name": i.name,
        "digest": i.digest,
        "source_type": i.source_type,
        "source": i.source,
    });
    if let Some(s) = &i.schema {
        dataset["schema"] = json!(s);
    }
    if let Some(p) = &i.profile {
        dataset["profile"] = json!(p);
    }
    // The pin travels in fields MLflow clients ignore, so their view of the tags is unchanged.
    let mut out = json!({"tags": kv_json(&i.tags), "dataset": dataset});
    if let (Some(v), Some(d)) = (&i.mlsec_version, &i.mlsec_digest) {
        out["mlsec_dataset_version"] = json!(v);
        out["mlsec_dataset_digest"] = json!(d);
    }
    out
}

fn run_json(r: &RunView) -> Value {
    json!({
        "info": run_info_json(r),
        "data": {
            "metrics": r.metrics.iter().map(metric_json).collect::<Vec<_>>(),
            "params": kv_json(&r.params),
            "tags": kv_json(&r.tags),
        },
        "inputs": {"dataset_inputs": r.inputs.iter().map(input_json).collect::<Vec<_>>()},
    })
}

fn version_json(v: &ModelVersionView) -> Value {
    let mut out = json!({
        "name": v.name,
        "version": v.version,
        "creation_timestamp": v.creation_timestamp,
        "last_updated_timestamp": v.last_updated_timestamp,
        "user_id": v.user_id,
        "current_stage": "None",
        "description": v.description,
        "source": v.source,
        "status": v.status,
        "status_message": v.status_message,
        "run_link": "",
        "tags": kv_json(&v.tags),
        "aliases": v.aliases,
        // Fields MLflow clients ignore: the pinned digest and the scanner's verdict.
        "mlsec_digest": v.digest,
        "mlsec_quarantined": v.quarantined,
        "mlsec_files": v.files.iter().map(|f| json!({"path": f.path, "size": f.size, "sha256": f.sha256})).collect::<Vec<_>>(),
    });
    if let Some(r) = &v.run_id {
        out["run_id"] = json!(r);
    }
    if let Some(m) = &v.model_id {
        out["model_id"] = json!(m);
    }
    out
}

fn model_json(m: &RegisteredModelView) -> Value {
    json!({
        "name": m.name,
        "creation_timestamp": m.creation_timestamp,
        "last_updated_timestamp": m.last_updated_timestamp,
        "user_id": m.user_id,
        "description": m.description,
        "tags": kv_json(&m.tags),
        "aliases": m.aliases.iter().map(|a| json!({"alias": a.alias, "version": a.version})).collect::<Vec<_>>(),
        "latest_versions": m.latest_versions.iter().map(version_json).collect::<Vec<_>>(),
    })
}

fn logged_model_status(s: &str) -> &'static str {
    match s {
        "READY" => "LOGGED_MODEL_READY",
        "FAILED" => "LOGGED_MODEL_UPLOAD_FAILED",
        _ => "LOGGED_MODEL_PENDING",
    }
}

fn logged_model_json(m: &LoggedModelView) -> Value {
    let mut info = json!({
        "model_id": m.model_id,
        "experiment_id": m.experiment_id,
        "name": m.name,
        "creation_timestamp_ms": m.creation_timestamp_ms,
        "last_updated_timestamp_ms": m.last_updated_timestamp_ms,
        "artifact_uri": m.artifact_uri,
        "status": logged_model_status(&m.status),
        "tags": kv_json(&m.tags),
    });
    if let Some(r) = &m.source_run_id {
        info["source_run_id"] = json!(r);
    }
    if let Some(t) = &m.model_type {
        info["model_type"] = json!(t);
    }
    json!({"info": info, "data": {"params": kv_json(&m.params), "metrics": []}})
}

fn with_token(mut v: Value, token: Option<String>) -> Value {
    if let Some(t) = token {
        v["next_page_token"] = json!(t);
    }
    v
}

fn run_id_of(run_id: Option<String>, run_uuid: Option<String>) -> Result<String, MlflowError> {
    run_id
        .filter(|r| !r.is_empty())
        .or(run_uuid.filter(|r| !r.is_empty()))
        .ok_or_else(|| invalid("missing value for required parameter 'run_id'"))
}

// ---- experiments ----

#[derive(Deserialize)]
struct CreateExperiment {
    name: String,
    artifact_location: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

async fn create_experiment(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<CreateExperiment>,
) -> Res {
    if b.artifact_location
        .as_deref()
        .is_some_and(|l| !l.is_empty())
    {
        return Err(invalid(
            "artifact_location is chosen by mlsec: every artifact goes through its store (hashed, scanned, audited)",
        ));
    }
    let id = s
        .core
        .create_experiment(&ctx, &b.name, pairs(b.tags))
        .await?;
    ok(json!({ "experiment_id": id }))
}

#[derive(Deserialize)]
struct ExperimentId {
    experiment_id: String,
}

async fn get_experiment(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Fields(q): Fields<ExperimentId>,
) -> Res {
    let e = s.core.experiment(&ctx, &q.experiment_id).await?;
    ok(json!({ "experiment": experiment_json(&e) }))
}

#[derive(Deserialize)]
struct ExperimentName {
    experiment_name: String,
}

async fn get_experiment_by_name(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Fields(q): Fields<ExperimentName>,
) -> Res {
    let e = s.core.experiment_by_name(&ctx, &q.experiment_name).await?;
    ok(json!({ "experiment": experiment_json(&e) }))
}

#[derive(Deserialize, Default)]
struct SearchExperiments {
    #[serde(default, deserialize_with = "int64")]
    max_results: Option<i64>,
    page_token: Option<String>,
    #[serde(default)]
    filter: String,
    #[serde(default)]
    view_type: String,
}

async fn search_experiments(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<SearchExperiments>,
) -> Res {
    let (list, token) = s
        .core
        .search_experiments(
            &ctx,
            &b.view_type,
            &b.filter,
            b.max_results.unwrap_or(1000),
            b.page_token.as_deref(),
        )
        .await?;
    ok(with_token(
        json!({"experiments": list.iter().map(experiment_json).collect::<Vec<_>>()}),
        token,
    ))
}

async fn search_experiments_get(
    state: State<AppState>,
    caller: Caller,
    Fields(q): Fields<SearchExperiments>,
) -> Res {
    search_experiments(state, caller, Body_(q)).await
}

#[derive(Deserialize)]
struct UpdateExperiment {
    experiment_id: String,
    new_name: String,
}

async fn update_experiment(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<UpdateExperiment>,
) -> Res {
    s.core
        .rename_experiment(&ctx, &b.experiment_id, &b.new_name)
        .await?;
    empty()
}

async fn delete_experiment(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<ExperimentId>,
) -> Res {
    s.core
        .set_experiment_deleted(&ctx, &b.experiment_id, true)
        .await?;
    empty()
}

async fn restore_experiment(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<ExperimentId>,
) -> Res {
    s.core
        .set_experiment_deleted(&ctx, &b.experiment_id, false)
        .await?;
    empty()
}

#[derive(Deserialize)]
struct ExperimentTag {
    experiment_id: String,
    key: String,
    #[serde(default)]
    value: String,
}

async fn set_experiment_tag(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<ExperimentTag>,
) -> Res {
    s.core
        .set_experiment_tag(&ctx, &b.experiment_id, &b.key, Some(&b.value))
        .await?;
    empty()
}

async fn delete_experiment_tag(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<ExperimentTag>,
) -> Res {
    s.core
        .set_experiment_tag(&ctx, &b.experiment_id, &b.key, None)
        .await?;
    empty()
}

// ---- runs ----

#[derive(Deserialize)]
struct CreateRun {
    #[serde(default)]
    experiment_id: Option<String>,
    user_id: Option<String>,
    run_name: Option<String>,
    #[serde(default, deserialize_with = "int64")]
    start_time: Option<i64>,
    #[serde(default)]
    tags: Vec<Tag>,
}

async fn create_run(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<CreateRun>,
) -> Res {
    let run = s
        .core
        .create_run(
            &ctx,
            b.experiment_id.as_deref().unwrap_or("0"),
            b.run_name.as_deref(),
            b.start_time,
            b.user_id.as_deref(),
            pairs(b.tags),
        )
        .await?;
    ok(json!({ "run": run_json(&run) }))
}

#[derive(Deserialize)]
struct RunRef {
    run_id: Option<String>,
    run_uuid: Option<String>,
}

async fn get_run(State(s): State<AppState>, Caller(ctx): Caller, Fields(q): Fields<RunRef>) -> Res {
    let run = s.core.run(&ctx, &run_id_of(q.run_id, q.run_uuid)?).await?;
    ok(json!({ "run": run_json(&run) }))
}

#[derive(Deserialize)]
struct UpdateRun {
    run_id: Option<String>,
    run_uuid: Option<String>,
    status: Option<String>,
    #[serde(default, deserialize_with = "int64")]
    end_time: Option<i64>,
    run_name: Option<String>,
}

async fn update_run(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<UpdateRun>,
) -> Res {
    let run = s
        .core
        .update_run(
            &ctx,
            &run_id_of(b.run_id, b.run_uuid)?,
            b.status.as_deref(),
            b.end_time,
            b.run_name.as_deref().filter(|n| !n.is_empty()),
        )
        .await?;
    ok(json!({ "run_info": run_info_json(&run) }))
}

async fn delete_run(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<RunRef>,
) -> Res {
    s.core
        .set_run_deleted(&ctx, &run_id_of(b.run_id, b.run_uuid)?, true)
        .await?;
    empty()
}

async fn restore_run(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<RunRef>,
) -> Res {
    s.core
        .set_run_deleted(&ctx, &run_id_of(b.run_id, b.run_uuid)?, false)
        .await?;
    empty()
}

#[derive(Deserialize)]
struct Metric {
    key: String,
    #[serde(deserialize_with = "metric_value")]
    value: f64,
    #[serde(default, deserialize_with = "int64")]
    timestamp: Option<i64>,
    #[serde(default, deserialize_with = "int64")]
    step: Option<i64>,
}

fn metric_row(m: Metric, now: i64) -> MetricRow {
    MetricRow {
        key: m.key,
        value: m.value,
        timestamp: m.timestamp.unwrap_or(now),
        step: m.step.unwrap_or(0),
    }
}

fn now_millis() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[derive(Deserialize)]
struct LogMetric {
    run_id: Option<String>,
    run_uuid: Option<String>,
    #[serde(flatten)]
    metric: Metric,
}

async fn log_metric(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<LogMetric>,
) -> Res {
    let run_id = run_id_of(b.run_id, b.run_uuid)?;
    s.core
        .log_to_run(
            &ctx,
            &run_id,
            vec![metric_row(b.metric, now_millis())],
            vec![],
            vec![],
        )
        .await?;
    empty()
}

#[derive(Deserialize)]
struct LogParam {
    run_id: Option<String>,
    run_uuid: Option<String>,
    key: String,
    #[serde(default)]
    value: String,
}

async fn log_param(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<LogParam>,
) -> Res {
    let run_id = run_id_of(b.run_id, b.run_uuid)?;
    s.core
        .log_to_run(&ctx, &run_id, vec![], vec![(b.key, b.value)], vec![])
        .await?;
    empty()
}

async fn set_tag(State(s): State<AppState>, Caller(ctx): Caller, Body_(b): Body_<LogParam>) -> Res {
    let run_id = run_id_of(b.run_id, b.run_uuid)?;
    if b.key == "mlflow.runName" {
        s.core
            .update_run(&ctx, &run_id, None, None, Some(&b.value))
            .await?;
        return empty();
    }
    s.core
        .log_to_run(&ctx, &run_id, vec![], vec![], vec![(b.key, b.value)])
        .await?;
    empty()
}

#[derive(Deserialize)]
struct DeleteTag {
    run_id: Option<String>,
    run_uuid: Option<String>,
    key: String,
}

async fn delete_tag(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<DeleteTag>,
) -> Res {
    s.core
        .delete_run_tag(&ctx, &run_id_of(b.run_id, b.run_uuid)?, &b.key)
        .await?;
    empty()
}

#[derive(Deserialize)]
struct LogBatch {
    run_id: Option<String>,
    run_uuid: Option<String>,
    #[serde(default)]
    metrics: Vec<Metric>,
    #[serde(default)]
    params: Vec<Tag>,
    #[serde(default)]
    tags: Vec<Tag>,
}

async fn log_batch(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<LogBatch>,
) -> Res {
    let run_id = run_id_of(b.run_id, b.run_uuid)?;
    let now = now_millis();
    s.core
        .log_to_run(
            &ctx,
            &run_id,
            b.metrics.into_iter().map(|m| metric_row(m, now)).collect(),
            pairs(b.params),
            pairs(b.tags),
        )
        .await?;
    empty()
}

#[derive(Deserialize, Default)]
struct Dataset {
    name: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    source_type: String,
    #[serde(default)]
    source: String,
    schema: Option<String>,
    profile: Option<String>,
}

#[derive(Deserialize)]
struct DatasetInput {
    #[serde(default)]
    tags: Vec<Tag>,
    dataset: Dataset,
}

#[derive(Deserialize)]
struct LogInputs {
    run_id: Option<String>,
    run_uuid: Option<String>,
    #[serde(default)]
    datasets: Vec<DatasetInput>,
}

async fn log_inputs(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<LogInputs>,
) -> Res {
    let run_id = run_id_of(b.run_id, b.run_uuid)?;
    let inputs = b
        .datasets
        .into_iter()
        .map(|d| NewInput {
            name: d.dataset.name,
            digest: d.dataset.digest,
            source_type: d.dataset.source_type,
            source: d.dataset.source,
            schema: d.dataset.schema,
            profile: d.dataset.profile,
            tags: pairs(d.tags),
        })
        .collect();
    s.core.log_inputs(&ctx, &run_id, inputs).await?;
    empty()
}

#[derive(Deserialize)]
struct ModelOutput {
    model_id: String,
}

#[derive(Deserialize)]
struct LogOutputs {
    run_id: String,
    #[serde(default)]
    models: Vec<ModelOutput>,
}

/// Links logged models to the run that produced them: mlsec records that link when the logged
/// model is created (`source_run_id`), so this checks the link and changes nothing.
async fn log_outputs(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<LogOutputs>,
) -> Res {
    s.core.run(&ctx, &b.run_id).await?;
    for m in b.models {
        let model = s.core.logged_model(&ctx, &m.model_id).await?;
        if model.source_run_id.as_deref() != Some(b.run_id.as_str()) {
            return Err(invalid(format!(
                "logged model `{}` was not logged from run `{}`",
                m.model_id, b.run_id
            )));
        }
    }
    empty()
}

#[derive(Deserialize)]
struct SearchRuns {
    #[serde(default)]
    experiment_ids: Vec<String>,
    #[serde(default)]
    filter: String,
    #[serde(default)]
    run_view_type: Option<Value>,
    #[serde(default, deserialize_with = "int64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<String>,
    page_token: Option<String>,
}

async fn search_runs(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<SearchRuns>,
) -> Res {
    let view_type = match b.run_view_type {
        Some(Value::String(v)) => v,
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let (runs, token) = s
        .core
        .search_runs(
            &ctx,
            &RunSearch {
                experiment_ids: b.experiment_ids,
                filter: b.filter,
                view_type,
                max_results: b.max_results.unwrap_or(1000),
                order_by: b.order_by,
                page_token: b.page_token,
            },
        )
        .await?;
    ok(with_token(
        json!({"runs": runs.iter().map(run_json).collect::<Vec<_>>()}),
        token,
    ))
}

#[derive(Deserialize)]
struct MetricHistory {
    run_id: Option<String>,
    run_uuid: Option<String>,
    metric_key: String,
    #[serde(default, deserialize_with = "int64")]
    max_results: Option<i64>,
    page_token: Option<String>,
}

async fn metric_history(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Fields(q): Fields<MetricHistory>,
) -> Res {
    let (metrics, token) = s
        .core
        .metric_history(
            &ctx,
            &run_id_of(q.run_id, q.run_uuid)?,
            &q.metric_key,
            q.max_results.unwrap_or(25_000),
            q.page_token.as_deref(),
        )
        .await?;
    ok(with_token(
        json!({"metrics": metrics.iter().map(metric_json).collect::<Vec<_>>()}),
        token,
    ))
}

#[derive(Deserialize)]
struct ListRunArtifacts {
    run_id: Option<String>,
    run_uuid: Option<String>,
    #[serde(default)]
    path: String,
}

/// The tracking API's artifact listing (`runs:/` access by older clients).
async fn list_run_artifacts(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Fields(q): Fields<ListRunArtifacts>,
) -> Res {
    let run = s.core.run(&ctx, &run_id_of(q.run_id, q.run_uuid)?).await?;
    let root = run
        .artifact_uri
        .trim_start_matches("mlflow-artifacts:")
        .trim_start_matches('/')
        .to_owned();
    let rel = q.path.trim_matches('/');
    let dir = if rel.is_empty() {
        root.clone()
    } else {
        format!("{root}/{rel}")
    };
    let files = s.core.list_artifacts(&ctx, &dir, true).await?;
    ok(json!({
        "root_uri": run.artifact_uri,
        "files": files.iter().map(entry_json).collect::<Vec<_>>(),
    }))
}

fn entry_json(e: &ArtifactEntry) -> Value {
    let mut v = json!({"path": e.path, "is_dir": e.is_dir});
    if let Some(size) = e.file_size {
        v["file_size"] = json!(size);
    }
    v
}

// ---- logged models (MLflow 3) ----

#[derive(Deserialize)]
struct CreateLoggedModel {
    experiment_id: String,
    name: Option<String>,
    source_run_id: Option<String>,
    model_type: Option<String>,
    #[serde(default)]
    params: Vec<Tag>,
    #[serde(default)]
    tags: Vec<Tag>,
}

async fn create_logged_model(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<CreateLoggedModel>,
) -> Res {
    let m = s
        .core
        .create_logged_model(
            &ctx,
            NewLoggedModel {
                experiment_id: b.experiment_id,
                name: b.name,
                source_run_id: b.source_run_id,
                model_type: b.model_type,
                params: pairs(b.params),
                tags: pairs(b.tags),
            },
        )
        .await?;
    ok(json!({ "model": logged_model_json(&m) }))
}

async fn get_logged_model(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Res {
    let m = s.core.logged_model(&ctx, &id).await?;
    ok(json!({ "model": logged_model_json(&m) }))
}

#[derive(Deserialize)]
struct FinalizeLoggedModel {
    status: Option<Value>,
}

async fn finalize_logged_model(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    Body_(b): Body_<FinalizeLoggedModel>,
) -> Res {
    let status = match b.status {
        Some(Value::String(s)) => match s.as_str() {
            "LOGGED_MODEL_READY" | "READY" => "READY",
            "LOGGED_MODEL_UPLOAD_FAILED" | "FAILED" => "FAILED",
            _ => "PENDING",
        },
        Some(Value::Number(n)) if n.as_i64() == Some(2) => "READY",
        Some(Value::Number(n)) if n.as_i64() == Some(3) => "FAILED",
        _ => return Err(invalid("missing value for required parameter 'status'")),
    };
    let m = s
        .core
        .update_logged_model(&ctx, &id, Some(status), vec![], false)
        .await?;
    ok(json!({ "model": logged_model_json(&m) }))
}

#[derive(Deserialize)]
struct LoggedModelTags {
    #[serde(default)]
    tags: Vec<Tag>,
}

async fn set_logged_model_tags(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    Body_(b): Body_<LoggedModelTags>,
) -> Res {
    s.core
        .update_logged_model(&ctx, &id, None, pairs(b.tags), false)
        .await?;
    empty()
}

async fn delete_logged_model(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Res {
    s.core
        .update_logged_model(&ctx, &id, None, vec![], true)
        .await?;
    empty()
}

#[derive(Deserialize)]
struct SearchLoggedModels {
    #[serde(default)]
    experiment_ids: Vec<String>,
    #[serde(default)]
    filter: String,
    #[serde(default, deserialize_with = "int64")]
    max_results: Option<i64>,
    page_token: Option<String>,
}

async fn search_logged_models(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<SearchLoggedModels>,
) -> Res {
    let clauses =
        mlsec_core::tracking_syntax::parse_filter(&b.filter).map_err(|e| invalid(e.to_string()))?;
    let (models, token) = s
        .core
        .search_logged_models(
            &ctx,
            &b.experiment_ids,
            b.max_results.unwrap_or(100),
            b.page_token.as_deref(),
        )
        .await?;
    for c in &clauses {
        if !matches!(
            c.key.as_str(),
            "name" | "source_run_id" | "status" | "model_type"
        ) {
            return Err(invalid(format!(
                "logged model searches support name, source_run_id, status and model_type; not `{}`",
                c.key
            )));
        }
    }
    let matching: Vec<Value> = models
        .iter()
        .filter(|m| {
            clauses.iter().all(|c| {
                let actual = match c.key.as_str() {
                    "name" => Some(m.name.as_str()),
                    "source_run_id" => m.source_run_id.as_deref(),
                    "status" => Some(logged_model_status(&m.status)),
                    _ => m.model_type.as_deref(),
                };
                mlsec_core::text_matches(actual, c.op, &c.value)
            })
        })
        .map(logged_model_json)
        .collect();
    ok(with_token(json!({ "models": matching }), token))
}

// ---- registry ----

#[derive(Deserialize)]
struct CreateModel {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<Tag>,
}

async fn create_registered_model(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<CreateModel>,
) -> Res {
    let m = s
        .core
        .create_registered_model(&ctx, &b.name, &b.description, pairs(b.tags))
        .await?;
    ok(json!({ "registered_model": model_json(&m) }))
}

#[derive(Deserialize)]
struct ModelName {
    name: String,
}

async fn get_registered_model(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Fields(q): Fields<ModelName>,
) -> Res {
    let m = s.core.registered_model(&ctx, &q.name).await?;
    ok(json!({ "registered_model": model_json(&m) }))
}

#[derive(Deserialize)]
struct SearchModels {
    #[serde(default)]
    filter: String,
    #[serde(default, deserialize_with = "int64")]
    max_results: Option<i64>,
    page_token: Option<String>,
}

async fn search_registered_models(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Fields(q): Fields<SearchModels>,
) -> Res {
    let (models, token) = s
        .core
        .search_registered_models(
            &ctx,
            &q.filter,
            q.max_results.unwrap_or(100),
            q.page_token.as_deref(),
        )
        .await?;
    ok(with_token(
        json!({"registered_models": models.iter().map(model_json).collect::<Vec<_>>()}),
        token,
    ))
}

#[derive(Deserialize)]
struct UpdateModel {
    name: String,
    #[serde(default)]
    description: String,
}

async fn update_registered_model(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<UpdateModel>,
) -> Res {
    let m = s
        .core
        .update_registered_model(&ctx, &b.name, &b.description)
        .await?;
    ok(json!({ "registered_model": model_json(&m) }))
}

async fn rename_registered_model(Caller(_ctx): Caller) -> Res {
    Err(invalid(
        "renaming a registered model is not supported: its versions, aliases and audit trail are bound to the name",
    ))
}

async fn delete_registered_model(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<ModelName>,
) -> Res {
    s.core.delete_registered_model(&ctx, &b.name).await?;
    empty()
}

#[derive(Deserialize)]
struct ModelTag {
    name: String,
    key: String,
    #[serde(default)]
    value: String,
}

async fn set_registered_model_tag(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<ModelTag>,
) -> Res {
    s.core
        .set_registered_model_tag(&ctx, &b.name, &b.key, Some(&b.value))
        .await?;
    empty()
}

async fn delete_registered_model_tag(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<ModelTag>,
) -> Res {
    s.core
        .set_registered_model_tag(&ctx, &b.name, &b.key, None)
        .await?;
    empty()
}

#[derive(Deserialize)]
struct SetAlias {
    name: String,
    alias: String,
    #[serde(default)]
    version: Option<Value>,
}

fn version_text(v: &Option<Value>) -> Result<String, MlflowError> {
    match v {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(invalid("missing value for required parameter 'version'")),
    }
}

async fn set_alias(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<SetAlias>,
) -> Res {
    let version = version_text(&b.version)?;
    s.core
        .move_alias(&ctx, &b.name, &b.alias, Some(&version))
        .await?;
    empty()
}

async fn delete_alias(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<SetAlias>,
) -> Res {
    s.core.move_alias(&ctx, &b.name, &b.alias, None).await?;
    empty()
}

#[derive(Deserialize)]
struct AliasQuery {
    name: String,
    alias: String,
}

async fn get_by_alias(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Fields(q): Fields<AliasQuery>,
) -> Res {
    // MLflow answers a missing alias with INVALID_PARAMETER_VALUE, and clients expect it.
    let v = s
        .core
        .model_version_by_alias(&ctx, &q.name, &q.alias)
        .await
        .map_err(|e| match e {
            CoreError::NotFound { what: "alias", .. } => {
                invalid(format!("Registered model alias {} not found.", q.alias))
            }
            other => other.into(),
        })?;
    ok(json!({ "model_version": version_json(&v) }))
}

#[derive(Deserialize)]
struct CreateVersion {
    name: String,
    source: String,
    run_id: Option<String>,
    model_id: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<Tag>,
}

async fn create_model_version(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<CreateVersion>,
) -> Res {
    // A logged model named by id is the source when the client gives both.
    let source = match (&b.model_id, b.source.starts_with("models:/m-")) {
        (Some(id), false) if !id.is_empty() && b.source.is_empty() => format!("models:/{id}"),
        _ => b.source.clone(),
    };
    let v = s
        .core
        .create_model_version(
            &ctx,
            &b.name,
            VersionSource::Artifacts(source),
            b.run_id.as_deref(),
            &b.description,
            pairs(b.tags),
        )
        .await?;
    ok(json!({ "model_version": version_json(&v) }))
}

#[derive(Deserialize)]
struct VersionRefQ {
    name: String,
    #[serde(default)]
    version: Option<Value>,
}

async fn get_model_version(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Fields(q): Fields<HashMap<String, String>>,
) -> Res {
    let name = q.get("name").cloned().unwrap_or_default();
    let version = q.get("version").cloned().unwrap_or_default();
    let v = s.core.model_version(&ctx, &name, &version).await?;
    ok(json!({ "model_version": version_json(&v) }))
}

async fn download_uri(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Fields(q): Fields<HashMap<String, String>>,
) -> Res {
    let name = q.get("name").cloned().unwrap_or_default();
    let version = q.get("version").cloned().unwrap_or_default();
    let uri = s
        .core
        .model_version_download_uri(&ctx, &name, &version)
        .await?;
    ok(json!({ "artifact_uri": uri }))
}

async fn search_model_versions(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Fields(q): Fields<SearchModels>,
) -> Res {
    let (versions, token) = s
        .core
        .search_model_versions(
            &ctx,
            &q.filter,
            q.max_results.unwrap_or(10_000),
            q.page_token.as_deref(),
        )
        .await?;
    ok(with_token(
        json!({"model_versions": versions.iter().map(version_json).collect::<Vec<_>>()}),
        token,
    ))
}

#[derive(Deserialize)]
struct UpdateVersion {
    name: String,
    #[serde(default)]
    version: Option<Value>,
    #[serde(default)]
    description: String,
}

async fn update_model_version(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<UpdateVersion>,
) -> Res {
    let v = s
        .core
        .update_model_version(&ctx, &b.name, &version_text(&b.version)?, &b.description)
        .await?;
    ok(json!({ "model_version": version_json(&v) }))
}

async fn delete_model_version(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<VersionRefQ>,
) -> Res {
    s.core
        .delete_model_version(&ctx, &b.name, &version_text(&b.version)?)
        .await?;
    empty()
}

#[derive(Deserialize)]
struct VersionTag {
    name: String,
    #[serde(default)]
    version: Option<Value>,
    key: String,
    #[serde(default)]
    value: String,
}

async fn set_model_version_tag(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<VersionTag>,
) -> Res {
    s.core
        .set_model_version_tag(
            &ctx,
            &b.name,
            &version_text(&b.version)?,
            &b.key,
            Some(&b.value),
        )
        .await?;
    empty()
}

async fn delete_model_version_tag(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<VersionTag>,
) -> Res {
    s.core
        .set_model_version_tag(&ctx, &b.name, &version_text(&b.version)?, &b.key, None)
        .await?;
    empty()
}

async fn transition_stage(Caller(_ctx): Caller) -> Res {
    Err(invalid(
        "model stages are deprecated in MLflow and not supported by mlsec: use aliases (registered-models/alias)",
    ))
}

#[derive(Deserialize)]
struct LatestVersions {
    name: String,
    #[serde(default)]
    stages: Vec<String>,
}

/// MLflow's deprecated stages: every mlsec version is in stage `None` (promotion is by alias),
/// so asking for `Production` or `Staging` finds nothing, and a quarantined version is never
/// offered as the latest.
async fn latest_versions(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body_(b): Body_<LatestVersions>,
) -> Res {
    let m = s.core.registered_model(&ctx, &b.name).await?;
    let wants_none =
        b.stages.is_empty() || b.stages.iter().any(|st| st.eq_ignore_ascii_case("none"));
    let versions: Vec<Value> = m
        .latest_versions
        .iter()
        .filter(|v| wants_none && !v.quarantined)
        .map(version_json)
        .collect();
    ok(json!({ "model_versions": versions }))
}

// ---- proxied artifacts ----

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    path: String,
}

async fn artifacts_list(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Fields(q): Fields<ListQuery>,
) -> Res {
    let path = q.path.trim_matches('/');
    // Listing a file, or a path with nothing below it, answers `{}` as MLflow does.
    let files = s.core.list_artifacts(&ctx, path, false).await?;
    if files.is_empty() {
        return empty();
    }
    ok(json!({"files": files.iter().map(entry_json).collect::<Vec<_>>()}))
}

async fn artifact_download(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(path): Path<String>,
) -> Result<Response, MlflowError> {
    let (stream, row) = s.core.open_artifact(&ctx, &path).await?;
    let name = row.path.rsplit('/').next().unwrap_or("artifact");
    // Header values are ASCII: a plain fallback name plus the exact one, percent-encoded.
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, row.size.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"),
            ),
            (
                header::HeaderName::from_static("x-mlsec-sha256"),
                row.sha256.clone(),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn artifact_upload(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(path): Path<String>,
    body: Body,
) -> Res {
    s.core
        .put_artifact(&ctx, &path, body.into_data_stream())
        .await?;
    empty()
}

async fn artifact_delete(Caller(_ctx): Caller) -> Res {
    Err(MlflowError(ApiError::new(
        ErrorCode::PermissionDenied,
        "artifacts are immutable in mlsec: a recorded artifact cannot be deleted or replaced",
    )))
}

async fn server_info(Caller(_ctx): Caller) -> Res {
    ok(json!({ "store_type": "mlsec", "multipart_uploads_enabled": false }))
}

/// Every MLflow route, mounted at the root.
pub fn router() -> Router<AppState> {
    let m = "/api/2.0/mlflow";
    let a = "/api/2.0/mlflow-artifacts";
    // Artifact uploads may be model files of many gigabytes; the core enforces its own limit.
    let uploads = Router::new()
        .route(
            &format!("{a}/artifacts/{{*path}}"),
            get(artifact_download)
                .put(artifact_upload)
                .delete(artifact_delete),
        )
        .layer(axum::extract::DefaultBodyLimit::disable());
    Router::new()
        .route(&format!("{m}/experiments/create"), post(create_experiment))
        .route(&format!("{m}/experiments/get"), get(get_experiment))
        .route(
            &format!("{m}/experiments/get-by-name"),
            get(get_experiment_by_name),
        )
        .route(
            &format!("{m}/experiments/search"),
            post(search_experiments).get(search_experiments_get),
        )
        .route(&format!("{m}/experiments/update"), post(update_experiment))
        .route(&format!("{m}/experiments/delete"), post(delete_experiment))
        .route(
            &format!("{m}/experiments/restore"),
            post(restore_experiment),
        )
        .route(
            &format!("{m}/experiments/set-experiment-tag"),
            post(set_experiment_tag),
        )
        .route(
            &format!("{m}/experiments/delete-experiment-tag"),
            post(delete_experiment_tag).delete(delete_experiment_tag),
        )
        .route(&format!("{m}/runs/create"), post(create_run))
        .route(&format!("{m}/runs/get"), get(get_run))
        .route(&format!("{m}/runs/update"), post(update_run))
        .route(&format!("{m}/runs/delete"), post(delete_run))
        .route(&format!("{m}/runs/restore"), post(restore_run))
        .route(&format!("{m}/runs/log-metric"), post(log_metric))
        .route(&format!("{m}/runs/log-parameter"), post(log_param))
        .route(&format!("{m}/runs/set-tag"), post(set_tag))
        .route(&format!("{m}/runs/delete-tag"), post(delete_tag))
        .route(&format!("{m}/runs/log-batch"), post(log_batch))
        .route(&format!("{m}/runs/log-inputs"), post(log_inputs))
        .route(&format!("{m}/runs/outputs"), post(log_outputs))
        .route(&format!("{m}/runs/search"), post(search_runs))
        .route(&format!("{m}/metrics/get-history"), get(metric_history))
        .route(&format!("{m}/artifacts/list"), get(list_run_artifacts))
        .route(&format!("{m}/logged-models"), post(create_logged_model))
        .route(
            &format!("{m}/logged-models/search"),
            post(search_logged_models),
        )
        .route(
            &format!("{m}/logged-models/{{id}}"),
            get(get_logged_model)
                .patch(finalize_logged_model)
                .delete(delete_logged_model),
        )
        .route(
            &format!("{m}/logged-models/{{id}}/tags"),
            patch(set_logged_model_tags),
        )
        .route(
            &format!("{m}/registered-models/create"),
            post(create_registered_model),
        )
        .route(
            &format!("{m}/registered-models/get"),
            get(get_registered_model),
        )
        .route(
            &format!("{m}/registered-models/search"),
            get(search_registered_models),
        )
        .route(
            &format!("{m}/registered-models/update"),
            patch(update_registered_model),
        )
        .route(
            &format!("{m}/registered-models/rename"),
            post(rename_registered_model),
        )
        .route(
            &format!("{m}/registered-models/delete"),
            delete(delete_registered_model),
        )
        .route(
            &format!("{m}/registered-models/set-tag"),
            post(set_registered_model_tag),
        )
        .route(
            &format!("{m}/registered-models/delete-tag"),
            delete(delete_registered_model_tag),
        )
        .route(
            &format!("{m}/registered-models/alias"),
            post(set_alias).delete(delete_alias).get(get_by_alias),
        )
        .route(
            &format!("{m}/registered-models/get-latest-versions"),
            post(latest_versions),
        )
        .route(
            &format!("{m}/model-versions/create"),
            post(create_model_version),
        )
        .route(&format!("{m}/model-versions/get"), get(get_model_version))
        .route(
            &format!("{m}/model-versions/get-download-uri"),
            get(download_uri),
        )
        .route(
            &format!("{m}/model-versions/search"),
            get(search_model_versions),
        )
        .route(
            &format!("{m}/model-versions/update"),
            patch(update_model_version),
        )
        .route(
            &format!("{m}/model-versions/delete"),
            delete(delete_model_version),
        )
        .route(
            &format!("{m}/model-versions/set-tag"),
            post(set_model_version_tag),
        )
        .route(
            &format!("{m}/model-versions/delete-tag"),
            delete(delete_model_version_tag),
        )
        .route(
            &format!("{m}/model-versions/transition-stage"),
            post(transition_stage),
        )
        .route(&format!("{a}/artifacts"), get(artifacts_list))
        .route("/api/3.0/mlflow/server-info", get(server_info))
        .merge(uploads)
}
