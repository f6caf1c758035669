//! Repositories of experiment tracking: experiments, runs, their params, metrics, tags and
//! dataset inputs, artifacts, and MLflow 3 logged models; and the run search.
//!
//! Params are written once (a second value for a key is refused, as MLflow does); metrics keep
//! their whole history plus the latest value per key, which is what searches compare; artifacts
//! are written once per path and never changed.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::WriteTx;
use crate::db::{Backend, Store, multi_row_insert};
use crate::error::StoreError;
use crate::principals::is_unique_violation;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentRow {
    pub id: i64,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub run_id: String,
    pub experiment_id: i64,
    /// The experiment's name: what authorization scopes name.
    pub experiment_name: String,
    pub name: String,
    pub user_id: String,
    pub status: String,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub lifecycle_stage: String,
    pub artifact_uri: String,
    pub parent_run_id: Option<String>,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    pub key: String,
    /// `NaN` is stored as 0 with `is_nan`, as not every backend stores it.
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInputRow {
    pub run_id: String,
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    pub schema_json: Option<String>,
    pub profile: Option<String>,
    pub tags_json: String,
    /// The mlsec dataset version the input is pinned to.
    pub mlsec_dataset: Option<String>,
    pub mlsec_number: Option<i64>,
    pub mlsec_digest: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRow {
    pub path: String,
    pub experiment_id: i64,
    pub owner_kind: String,
    pub owner_id: String,
    pub size: i64,
    pub sha256: String,
    pub scan_severity: Option<String>,
    pub scan_coverage: String,
    pub scan_json: String,
    pub created_at: i64,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedModelRow {
    pub model_id: String,
    pub experiment_id: i64,
    pub name: String,
    pub source_run_id: Option<String>,
    pub status: String,
    pub model_type: Option<String>,
    pub artifact_location: String,
    pub params_json: String,
    pub tags_json: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub lifecycle_stage: String,
}

/// What one run carries besides its row, for views.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunData {
    pub params: Vec<(String, String)>,
    /// Latest value per key.
    pub metrics: Vec<(MetricRow, bool)>,
    pub tags: Vec<(String, String)>,
    pub inputs: Vec<RunInputRow>,
}

/// Which part of a run a search clause or ordering refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunField {
    Metric(String),
    Param(String),
    Tag(String),
    /// `status`, `run_name`, `user_id`, `artifact_uri`, `run_id`, `start_time`, `end_time`.
    Attribute(&'static str),
    /// `name`, `digest` or `context` of a dataset input.
    Dataset(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    ILike,
    In,
    NotIn,
}

impl CompareOp {
    fn sql(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Like | CompareOp::ILike => "LIKE",
            CompareOp::In => "IN",
            CompareOp::NotIn => "NOT IN",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    Number(f64),
    Text(String),
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunClause {
    pub field: RunField,
    pub op: CompareOp,
    pub value: FilterValue,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunOrder {
    pub field: RunField,
    pub ascending: bool,
}

/// A run search: the experiments, the conjunction of clauses, the order and the page.
#[derive(Debug, Clone, PartialEq)]
pub struct RunQuery {
    pub experiment_ids: Vec<i64>,
    /// `active`, `deleted`, or both.
    pub lifecycle_stages: Vec<&'static str>,
    pub clauses: Vec<RunClause>,
    pub order: Vec<RunOrder>,
    pub limit: i64,
    pub offset: i64,
}

const RUN_COLUMNS: &str = "r.run_id, r.experiment_id, e.name AS experiment_name, r.name, r.user_id, r.status, r.start_time, r.end_time, r.lifecycle_stage, r.artifact_uri, r.parent_run_id, r.created_by";
/// The run columns of a search: the experiment's name is looked up for the page's rows only,
/// so the join order stays the one the search chose.
const SEARCH_RUN_COLUMNS: &str = "r.run_id, r.experiment_id, (SELECT e.name FROM experiments e WHERE e.id = r.experiment_id) AS experiment_name, r.name, r.user_id, r.status, r.start_time, r.end_time, r.lifecycle_stage, r.artifact_uri, r.parent_run_id, r.created_by";
const EXPERIMENT_COLUMNS: &str =
    "id, name, artifact_location, lifecycle_stage, created_at, updated_at, created_by";
const ARTIFACT_COLUMNS: &str = "path, experiment_id, owner_kind, owner_id, size, sha256, scan_severity, scan_coverage, scan_json, created_at, created_by";
const LOGGED_MODEL_COLUMNS: &str = "model_id, experiment_id, name, source_run_id, status, model_type, artifact_location, params_json, tags_json, created_at, updated_at, created_by, lifecycle_stage";
const INPUT_COLUMNS: &str = "run_id, name, digest, source_type, source, schema_json, profile, tags_json, mlsec_dataset, mlsec_number, mlsec_digest, created_at";

fn experiment_from_row(r: &AnyRow) -> Result<ExperimentRow, StoreError> {
    Ok(ExperimentRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        artifact_location: r.try_get("artifact_location")?,
        lifecycle_stage: r.try_get("lifecycle_stage")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        created_by: r.try_get("created_by")?,
    })
}

fn run_from_row(r: &AnyRow) -> Result<RunRow, StoreError> {
    Ok(RunRow {
        run_id: r.try_get("run_id")?,
        experiment_id: r.try_get("experiment_id")?,
        experiment_name: r.try_get("experiment_name")?,
        name: r.try_get("name")?,
        user_id: r.try_get("user_id")?,
        status: r.try_get("status")?,
        start_time: r.try_get("start_time")?,
        end_time: r.try_get("end_time")?,
        lifecycle_stage: r.try_get("lifecycle_stage")?,
        artifact_uri: r.try_get("artifact_uri")?,
        parent_run_id: r.try_get("parent_run_id")?,
        created_by: r.try_get("created_by")?,
    })
}

fn artifact_from_row(r: &AnyRow) -> Result<ArtifactRow, StoreError> {
    Ok(ArtifactRow {
        path: r.try_get("path")?,
        experiment_id: r.try_get("experiment_id")?,
        owner_kind: r.try_get("owner_kind")?,
        owner_id: r.try_get("owner_id")?,
        size: r.try_get("size")?,
        sha256: r.try_get("sha256")?,
        scan_severity: r.try_get("scan_severity")?,
        scan_coverage: r.try_get("scan_coverage")?,
        scan_json: r.try_get("scan_json")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}

fn logged_model_from_row(r: &AnyRow) -> Result<LoggedModelRow, StoreError> {
    Ok(LoggedModelRow {
        model_id: r.try_get("model_id")?,
        experiment_id: r.try_get("experiment_id")?,
        name: r.try_get("name")?,
        source_run_id: r.try_get("source_run_id")?,
        status: r.try_get("status")?,
        model_type: r.try_get("model_type")?,
        artifact_location: r.try_get("artifact_location")?,
        params_json: r.try_get("params_json")?,
        tags_json: r.try_get("tags_json")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        created_by: r.try_get("created_by")?,
        lifecycle_stage: r.try_get("lifecycle_stage")?,
    })
}

fn input_from_row(r: &AnyRow) -> Result<RunInputRow, StoreError> {
    Ok(RunInputRow {
        run_id: r.try_get("run_id")?,
        name: r.try_get("name")?,
        digest: r.try_get("digest")?,
        source_type: r.try_get("source_type")?,
        source: r.try_get("source")?,
        schema_json: r.try_get("schema_json")?,
        profile: r.try_get("profile")?,
        tags_json: r.try_get("tags_json")?,
        mlsec_dataset: r.try_get("mlsec_dataset")?,
        mlsec_number: r.try_get("mlsec_number")?,
        mlsec_digest: r.try_get("mlsec_digest")?,
        created_at: r.try_get("created_at")?,
    })
}

fn metric_from_row(r: &AnyRow) -> Result<(MetricRow, bool), StoreError> {
    let is_nan = r.try_get::<i64, _>("is_nan")? != 0;
    Ok((
        MetricRow {
            key: r.try_get("key")?,
            value: if is_nan {
                f64::NAN
            } else {
                r.try_get("value")?
            },
            timestamp: r.try_get("timestamp")?,
            step: r.try_get("step")?,
        },
        is_nan,
    ))
}

/// `$1, $2, …` from `start` for `n` values.
fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A LIKE pattern as a SQLite GLOB pattern: SQLite's LIKE ignores ASCII case, MLflow's does not.
fn like_to_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '*' | '?' | '[' | ']' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            other => out.push(other),
        }
    }
    out
}

fn bind_ids<'q>(
    sql: &'q str,
    ids: &'q [String],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut q = sqlx::query(sql).persistent(false);
    for id in ids {
        q = q.bind(id.as_str());
    }
    q
}

fn push_bind(binds: &mut Vec<Bind>, b: Bind) -> String {
    binds.push(b);
    format!("${}", binds.len())
}

/// Rows per multi-row INSERT: few statements per 1,000-metric batch (each is a round trip to
/// the connection's thread), well below SQLite's parameter limit.
const ROWS_PER_INSERT: usize = 500;

enum Bind {
    Text(String),
    Int(i64),
    Float(f64),
}

impl WriteTx {
    /// Creates an experiment; its artifact location names its id.
    pub async fn insert_experiment(
        &mut self,
        name: &str,
        now: i64,
        by: &str,
    ) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO experiments (name, artifact_location, lifecycle_stage, created_at, updated_at, created_by)
             VALUES ($1, '', 'active', $2, $2, $3) RETURNING id",
        )
        .bind(name)
        .bind(now)
        .bind(by)
        .fetch_one(self.conn())
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists {
                    what: "experiment",
                    id: name.to_owned(),
                }
            } else {
                e.into()
            }
        })?;
        sqlx::query("UPDATE experiments SET artifact_location = $2 WHERE id = $1")
            .bind(id)
            .bind(format!("mlflow-artifacts:/{id}"))
            .execute(self.conn())
            .await?;
        Ok(id)
    }

    /// Renames an experiment or moves it between `active` and `deleted`.
    pub async fn update_experiment(
        &mut self,
        id: i64,
        name: Option<&str>,
        lifecycle_stage: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE experiments SET name = COALESCE($2, name), lifecycle_stage = COALESCE($3, lifecycle_stage), updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(name)
        .bind(lifecycle_stage)
        .bind(now)
        .execute(self.conn())
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists {
                    what: "experiment",
                    id: name.unwrap_or_default().to_owned(),
                }
            } else {
                e.into()
            }
        })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "experiment",
                id: id.to_string(),
            });
        }
        Ok(())
    }

    pub async fn set_experiment_tag(
        &mut self,
        id: i64,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
        )
        .bind(id)
        .bind(key)
        .bind(value)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn delete_experiment_tag(&mut self, id: i64, key: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM experiment_tags WHERE experiment_id = $1 AND key = $2")
            .bind(id)
            .bind(key)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn insert_run(&mut self, r: &RunRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO runs (run_id, experiment_id, name, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri, parent_run_id, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&r.run_id)
        .bind(r.experiment_id)
        .bind(&r.name)
        .bind(&r.user_id)
        .bind(&r.status)
        .bind(r.start_time)
        .bind(r.end_time)
        .bind(&r.lifecycle_stage)
        .bind(&r.artifact_uri)
        .bind(&r.parent_run_id)
        .bind(&r.created_by)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// A run read inside the transaction (writes check it is still active).
    pub async fn run_in_tx(&mut self, run_id: &str) -> Result<Option<RunRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.run_id = $1"
        ))
        .bind(run_id)
        .fetch_optional(self.conn())
        .await?;
        row.map(|r| run_from_row(&r)).transpose()
    }

    pub async fn update_run(
        &mut self,
        run_id: &str,
        status: Option<&str>,
        end_time: Option<i64>,
        name: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE runs SET status = COALESCE($2, status), end_time = COALESCE($3, end_time), name = COALESCE($4, name) WHERE run_id = $1",
        )
        .bind(run_id)
        .bind(status)
        .bind(end_time)
        .bind(name)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn set_run_lifecycle(
        &mut self,
        run_id: &str,
        stage: &str,
        deleted_at: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE runs SET lifecycle_stage = $2, deleted_at = $3 WHERE run_id = $1")
            .bind(run_id)
            .bind(stage)
            .bind(deleted_at)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Values already logged for these param keys of a run.
    pub async fn run_params_in_tx(
        &mut self,
        run_id: &str,
        keys: &[&str],
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut found = HashMap::new();
        for chunk in keys.chunks(500) {
            let sql = format!(
                "SELECT key, value FROM run_params WHERE run_id = $1 AND key IN ({})",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(run_id);
            for k in chunk {
                q = q.bind(*k);
            }
            for row in q.fetch_all(self.conn()).await? {
                found.insert(row.try_get("key")?, row.try_get("value")?);
            }
        }
        Ok(found)
    }

    /// Inserts params that are not yet logged (callers refuse changed values beforehand).
    pub async fn insert_run_params(
        &mut self,
        run_id: &str,
        params: &[(String, String)],
    ) -> Result<(), StoreError> {
        for chunk in params.chunks(ROWS_PER_INSERT) {
            let sql = multi_row_insert(
                self.backend(),
                "INSERT INTO run_params (run_id, key, value)",
                3,
                chunk.len(),
            ) + " ON CONFLICT (run_id, key) DO NOTHING";
            let mut q = sqlx::query(&sql);
            for (k, v) in chunk {
                q = q.bind(run_id).bind(k).bind(v);
            }
            q.execute(self.conn()).await?;
        }
        Ok(())
    }

    pub async fn set_run_tags(
        &mut self,
        run_id: &str,
        tags: &[(String, String)],
    ) -> Result<(), StoreError> {
        // One row per key in a statement: ON CONFLICT cannot touch the same row twice.
        let mut last: HashMap<&str, &str> = HashMap::new();
        for (k, v) in tags {
            last.insert(k, v);
        }
        let unique: Vec<(&str, &str)> = last.into_iter().collect();
        for chunk in unique.chunks(ROWS_PER_INSERT) {
            let sql = multi_row_insert(
                self.backend(),
                "INSERT INTO run_tags (run_id, key, value)",
                3,
                chunk.len(),
            ) + " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value";
            let mut q = sqlx::query(&sql);
            for (k, v) in chunk {
                q = q.bind(run_id).bind(*k).bind(*v);
            }
            q.execute(self.conn()).await?;
        }
        Ok(())
    }

    pub async fn delete_run_tag(&mut self, run_id: &str, key: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM run_tags WHERE run_id = $1 AND key = $2")
            .bind(run_id)
            .bind(key)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Appends metric values to the history and moves each key's latest value forward.
    pub async fn insert_run_metrics(
        &mut self,
        run_id: &str,
        metrics: &[MetricRow],
    ) -> Result<(), StoreError> {
        for chunk in metrics.chunks(ROWS_PER_INSERT) {
            let sql = multi_row_insert(
                self.backend(),
                "INSERT INTO run_metrics (run_id, key, value, is_nan, timestamp, step)",
                6,
                chunk.len(),
            );
            let mut q = sqlx::query(&sql);
            for m in chunk {
                let nan = m.value.is_nan();
                q = q
                    .bind(run_id)
                    .bind(&m.key)
                    .bind(if nan { 0.0 } else { m.value })
                    .bind(nan as i64)
                    .bind(m.timestamp)
                    .bind(m.step);
            }
            q.execute(self.conn()).await?;
        }
        // The latest value per key in this call, then one upsert per key.
        let mut latest: HashMap<&str, &MetricRow> = HashMap::new();
        for m in metrics {
            let newer = match latest.get(m.key.as_str()) {
                None => true,
                Some(cur) => metric_order(m) > metric_order(cur),
            };
            if newer {
                latest.insert(&m.key, m);
            }
        }
        let rows: Vec<&MetricRow> = latest.into_values().collect();
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let sql = multi_row_insert(
                self.backend(),
                "INSERT INTO run_latest_metrics (run_id, key, value, is_nan, timestamp, step)",
                6,
                chunk.len(),
            ) + " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan, timestamp = excluded.timestamp, step = excluded.step
                  WHERE excluded.step > run_latest_metrics.step
                     OR (excluded.step = run_latest_metrics.step AND excluded.timestamp > run_latest_metrics.timestamp)
                     OR (excluded.step = run_latest_metrics.step AND excluded.timestamp = run_latest_metrics.timestamp AND excluded.value > run_latest_metrics.value)";
            let mut q = sqlx::query(&sql);
            for m in chunk {
                let nan = m.value.is_nan();
                q = q
                    .bind(run_id)
                    .bind(&m.key)
                    .bind(if nan { 0.0 } else { m.value })
                    .bind(nan as i64)
                    .bind(m.timestamp)
                    .bind(m.step);
            }
            q.execute(self.conn()).await?;
        }
        Ok(())
    }

    /// Records a dataset input; the same dataset (name and digest) is recorded once per run.
    pub async fn insert_run_input(&mut self, i: &RunInputRow) -> Result<bool, StoreError> {
        let done = sqlx::query(&format!(
            "INSERT INTO run_inputs ({INPUT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (run_id, name, digest) DO NOTHING"
        ))
        .bind(&i.run_id)
        .bind(&i.name)
        .bind(&i.digest)
        .bind(&i.source_type)
        .bind(&i.source)
        .bind(&i.schema_json)
        .bind(&i.profile)
        .bind(&i.tags_json)
        .bind(&i.mlsec_dataset)
        .bind(i.mlsec_number)
        .bind(&i.mlsec_digest)
        .bind(i.created_at)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records an artifact. Writing the same bytes to the same path again is a no-op (`false`);
    /// other bytes at a recorded path are refused: artifacts never change.
    pub async fn insert_artifact(&mut self, a: &ArtifactRow) -> Result<bool, StoreError> {
        // A path is a file or a directory, never both: otherwise a file added later could
        // change what a directory source (`runs:/RUN/model`) resolves to.
        let parents: Vec<String> = a
            .path
            .match_indices('/')
            .map(|(i, _)| a.path[..i].to_owned())
            .collect();
        for chunk in parents.chunks(200) {
            let sql = format!(
                "SELECT path FROM artifacts WHERE path IN ({}) LIMIT 1",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query_scalar::<_, String>(&sql).persistent(false);
            for p in chunk {
                q = q.bind(p);
            }
            if let Some(file) = q.fetch_optional(self.conn()).await? {
                return Err(StoreError::AlreadyExists {
                    what: "artifact file where a directory is needed",
                    id: file,
                });
            }
        }
        let below: Option<String> =
            sqlx::query_scalar("SELECT path FROM artifacts WHERE path >= $1 AND path < $2 LIMIT 1")
                .bind(format!("{}/", a.path))
                .bind(format!("{}0", a.path))
                .fetch_optional(self.conn())
                .await?;
        if below.is_some() {
            return Err(StoreError::AlreadyExists {
                what: "artifact directory (a file cannot replace it)",
                id: a.path.clone(),
            });
        }
        let done = sqlx::query(&format!(
            "INSERT INTO artifacts ({ARTIFACT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (path) DO NOTHING"
        ))
        .bind(&a.path)
        .bind(a.experiment_id)
        .bind(&a.owner_kind)
        .bind(&a.owner_id)
        .bind(a.size)
        .bind(&a.sha256)
        .bind(&a.scan_severity)
        .bind(&a.scan_coverage)
        .bind(&a.scan_json)
        .bind(a.created_at)
        .bind(&a.created_by)
        .execute(self.conn())
        .await?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        // Already recorded (perhaps by a concurrent upload): the same bytes are a no-op.
        let existing: Option<String> =
            sqlx::query_scalar("SELECT sha256 FROM artifacts WHERE path = $1")
                .bind(&a.path)
                .fetch_optional(self.conn())
                .await?;
        match existing {
            Some(sha) if sha == a.sha256 => Ok(false),
            _ => Err(StoreError::AlreadyExists {
                what: "artifact (artifacts are immutable)",
                id: a.path.clone(),
            }),
        }
    }

    pub async fn insert_logged_model(&mut self, m: &LoggedModelRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO logged_models ({LOGGED_MODEL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&m.model_id)
        .bind(m.experiment_id)
        .bind(&m.name)
        .bind(&m.source_run_id)
        .bind(&m.status)
        .bind(&m.model_type)
        .bind(&m.artifact_location)
        .bind(&m.params_json)
        .bind(&m.tags_json)
        .bind(m.created_at)
        .bind(m.updated_at)
        .bind(&m.created_by)
        .bind(&m.lifecycle_stage)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// A logged model read inside the write, locked on PostgreSQL (SQLite writes are serial), so
    /// a read-modify-write of its tags and status cannot lose a concurrent update.
    pub async fn logged_model_for_update(
        &mut self,
        model_id: &str,
    ) -> Result<Option<LoggedModelRow>, StoreError> {
        let lock = if self.backend() == Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let row = sqlx::query(&format!(
            "SELECT {LOGGED_MODEL_COLUMNS} FROM logged_models WHERE model_id = $1{lock}"
        ))
        .bind(model_id)
        .fetch_optional(self.conn())
        .await?;
        row.map(|r| logged_model_from_row(&r)).transpose()
    }

    pub async fn update_logged_model(
        &mut self,
        model_id: &str,
        status: Option<&str>,
        tags_json: Option<&str>,
        lifecycle_stage: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE logged_models SET status = COALESCE($2, status), tags_json = COALESCE($3, tags_json), lifecycle_stage = COALESCE($4, lifecycle_stage), updated_at = $5 WHERE model_id = $1",
        )
        .bind(model_id)
        .bind(status)
        .bind(tags_json)
        .bind(lifecycle_stage)
        .bind(now)
        .execute(self.conn())
        .await?;
        Ok(())
    }
}

fn metric_order(m: &MetricRow) -> (i64, i64, f64) {
    (
        m.step,
        m.timestamp,
        if m.value.is_nan() { 0.0 } else { m.value },
    )
}

impl Store {
    pub async fn experiment(&self, id: i64) -> Result<Option<ExperimentRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| experiment_from_row(&r)).transpose()
    }

    pub async fn experiment_by_name(
        &self,
        name: &str,
    ) -> Result<Option<ExperimentRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| experiment_from_row(&r)).transpose()
    }

    /// Experiments in the given lifecycle stages, by id, after `after_id`.
    pub async fn experiments(
        &self,
        stages: &[&str],
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<ExperimentRow>, StoreError> {
        let sql = format!(
            "SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE id > $1 AND lifecycle_stage IN ({}) ORDER BY id LIMIT {limit}",
            placeholders(2, stages.len())
        );
        let mut q = sqlx::query(&sql).bind(after_id);
        for s in stages {
            q = q.bind(*s);
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter().map(experiment_from_row).collect()
    }

    pub async fn experiment_tags(&self, id: i64) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT key, value FROM experiment_tags WHERE experiment_id = $1 ORDER BY key",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
            .collect()
    }

    pub async fn run(&self, run_id: &str) -> Result<Option<RunRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.run_id = $1"
        ))
        .bind(run_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| run_from_row(&r)).transpose()
    }

    pub async fn runs_by_ids(&self, ids: &[String]) -> Result<Vec<RunRow>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.run_id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            for row in q.fetch_all(self.pool()).await? {
                out.push(run_from_row(&row)?);
            }
        }
        Ok(out)
    }

    /// Children of a run (nested runs).
    pub async fn child_runs(&self, run_id: &str) -> Result<Vec<String>, StoreError> {
        let ids = sqlx::query_scalar("SELECT run_id FROM runs WHERE parent_run_id = $1")
            .bind(run_id)
            .fetch_all(self.pool())
            .await?;
        Ok(ids)
    }

    /// Params, latest metrics, tags and inputs of many runs, in four queries.
    pub async fn run_data(&self, ids: &[String]) -> Result<HashMap<String, RunData>, StoreError> {
        let mut out: HashMap<String, RunData> = ids
            .iter()
            .map(|id| (id.clone(), RunData::default()))
            .collect();
        if ids.is_empty() {
            return Ok(out);
        }
        for chunk in ids.chunks(500) {
            let list = placeholders(1, chunk.len());
            let sql = format!(
                "SELECT run_id, key, value FROM run_params WHERE run_id IN ({list}) ORDER BY key"
            );
            for r in bind_ids(&sql, chunk).fetch_all(self.pool()).await? {
                let id: String = r.try_get("run_id")?;
                if let Some(d) = out.get_mut(&id) {
                    d.params.push((r.try_get("key")?, r.try_get("value")?));
                }
            }
            let sql = format!(
                "SELECT run_id, key, value FROM run_tags WHERE run_id IN ({list}) ORDER BY key"
            );
            for r in bind_ids(&sql, chunk).fetch_all(self.pool()).await? {
                let id: String = r.try_get("run_id")?;
                if let Some(d) = out.get_mut(&id) {
                    d.tags.push((r.try_get("key")?, r.try_get("value")?));
                }
            }
            let sql = format!(
                "SELECT run_id, key, value, is_nan, timestamp, step FROM run_latest_metrics WHERE run_id IN ({list}) ORDER BY key"
            );
            for r in bind_ids(&sql, chunk).fetch_all(self.pool()).await? {
                let id: String = r.try_get("run_id")?;
                if let Some(d) = out.get_mut(&id) {
                    d.metrics.push(metric_from_row(&r)?);
                }
            }
            let sql = format!(
                "SELECT {INPUT_COLUMNS} FROM run_inputs WHERE run_id IN ({list}) ORDER BY created_at, name"
            );
            for r in bind_ids(&sql, chunk).fetch_all(self.pool()).await? {
                let input = input_from_row(&r)?;
                if let Some(d) = out.get_mut(&input.run_id) {
                    d.inputs.push(input);
                }
            }
        }
        Ok(out)
    }

    /// A metric's values in the order logged (step, then time), a page at a time.
    pub async fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<MetricRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT key, value, is_nan, timestamp, step FROM run_metrics WHERE run_id = $1 AND key = $2
             ORDER BY step, timestamp, seq LIMIT {limit} OFFSET {offset}"
        ))
        .bind(run_id)
        .bind(key)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| metric_from_row(r).map(|(m, _)| m))
            .collect()
    }

    /// Runs matching a search, in its order, one page.
    ///
    /// When the order starts with a metric, param or tag, the scan is driven from that key's
    /// `(key, value)` index, so a page is read in order and the scan stops at the page's end
    /// instead of sorting every match (`CROSS JOIN` fixes SQLite's join order; PostgreSQL plans
    /// it as an inner join). MLflow sorts a key's runs in segments, whichever the direction:
    /// values, then NaN (metrics), then runs without the key; each segment is its own query,
    /// and a page continues into the next segment where one ends.
    pub async fn search_runs(&self, query: &RunQuery) -> Result<Vec<RunRow>, StoreError> {
        if query.experiment_ids.is_empty() || query.limit <= 0 {
            return Ok(Vec::new());
        }
        let sqlite = self.backend() == Backend::Sqlite;
        let lead = query
            .order
            .first()
            .filter(|o| keyed_table(&o.field).is_some());
        let Some(lead) = lead else {
            let sql = run_search_sql(query, sqlite, Drive::Runs, query.limit, query.offset);
            return self.fetch_runs(sql).await;
        };
        // A filter on the key keeps only runs with a value (and, for metrics, never NaN).
        let filtered = query.clauses.iter().any(|c| c.field == lead.field);
        let metric = matches!(lead.field, RunField::Metric(_));
        let mut segments = vec![Segment::Values];
        if metric && !filtered {
            segments.push(Segment::NaN);
        }
        if !filtered {
            segments.push(Segment::Missing);
        }
        let mut rows = Vec::new();
        let mut offset = query.offset.max(0);
        for segment in segments {
            let need = query.limit - rows.len() as i64;
            if need <= 0 {
                break;
            }
            let drive = Drive::Key(segment);
            let page = self
                .fetch_runs(run_search_sql(query, sqlite, drive, need, offset))
                .await?;
            if page.is_empty() {
                if offset > 0 {
                    // The page starts past this segment: skip all of it.
                    let (sql, binds) = run_search_sql(query, sqlite, drive, -1, 0);
                    let row = bind_search(&sql, binds).fetch_one(self.pool()).await?;
                    offset = (offset - row.try_get::<i64, _>("n")?).max(0);
                }
                continue;
            }
            offset = 0;
            rows.extend(page);
        }
        Ok(rows)
    }

    async fn fetch_runs(
        &self,
        (sql, binds): (String, Vec<Bind>),
    ) -> Result<Vec<RunRow>, StoreError> {
        let rows = bind_search(&sql, binds).fetch_all(self.pool()).await?;
        rows.iter().map(run_from_row).collect()
    }

    pub async fn artifact(&self, path: &str) -> Result<Option<ArtifactRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE path = $1"
        ))
        .bind(path)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| artifact_from_row(&r)).transpose()
    }

    /// Artifacts below a directory (`prefix` ends in `/`), in byte order of their paths.
    pub async fn artifacts_under(&self, prefix: &str) -> Result<Vec<ArtifactRow>, StoreError> {
        let Some(stem) = prefix.strip_suffix('/') else {
            return Err(StoreError::Inconsistent(format!(
                "artifact prefix {prefix:?} does not end in `/`"
            )));
        };
        // A range scan on the primary key: exactly the paths that start with `stem/` sort from
        // `stem/` up to, not including, `stem0` (`0` is the byte after `/`). PostgreSQL
        // compares the column in byte order (COLLATE "C"), as SQLite does.
        let rows = sqlx::query(&format!(
            "SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE path >= $1 AND path < $2 ORDER BY path"
        ))
        .bind(prefix)
        .bind(format!("{stem}0"))
        .fetch_all(self.pool())
        .await?;
        let mut out: Vec<ArtifactRow> = rows
            .iter()
            .map(artifact_from_row)
            .collect::<Result<_, _>>()?;
        out.retain(|a| a.path.starts_with(prefix));
        out.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        Ok(out)
    }

    pub async fn logged_model(&self, model_id: &str) -> Result<Option<LoggedModelRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {LOGGED_MODEL_COLUMNS} FROM logged_models WHERE model_id = $1"
        ))
        .bind(model_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| logged_model_from_row(&r)).transpose()
    }

    pub async fn logged_models_of_experiments(
        &self,
        experiment_ids: &[i64],
        limit: i64,
        offset: i64,
    ) -> Result<Vec<LoggedModelRow>, StoreError> {
        if experiment_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {LOGGED_MODEL_COLUMNS} FROM logged_models WHERE lifecycle_stage = 'active' AND experiment_id IN ({}) ORDER BY created_at DESC, model_id LIMIT {limit} OFFSET {offset}",
            placeholders(1, experiment_ids.len())
        );
        let mut q = sqlx::query(&sql).persistent(false);
        for id in experiment_ids {
            q = q.bind(*id);
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter().map(logged_model_from_row).collect()
    }

    pub async fn logged_models_of_run(
        &self,
        run_id: &str,
    ) -> Result<Vec<LoggedModelRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {LOGGED_MODEL_COLUMNS} FROM logged_models WHERE source_run_id = $1 ORDER BY created_at"
        ))
        .bind(run_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(logged_model_from_row).collect()
    }

    /// Runs that consumed a dataset version, by the version's digest.
    pub async fn runs_with_input_digest(&self, digest: &str) -> Result<Vec<String>, StoreError> {
        let ids = sqlx::query_scalar(
            "SELECT DISTINCT run_id FROM run_inputs WHERE mlsec_digest = $1 ORDER BY run_id",
        )
        .bind(digest)
        .fetch_all(self.pool())
        .await?;
        Ok(ids)
    }
}

/// A LIKE pattern matching the JSON pair `"mlflow.data.context","VALUE"` inside an input's
/// tags, with `%`, `_` and `\` in the value taken literally.
fn context_pattern(value: &str) -> String {
    let json = serde_json::to_string(value).unwrap_or_default();
    let escaped: String = json
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            other => vec![other],
        })
        .collect();
    format!("%\"mlflow.data.context\",{escaped}]%")
}

fn attribute_column(name: &str) -> &'static str {
    match name {
        "status" => "status",
        "run_name" => "name",
        "user_id" => "user_id",
        "artifact_uri" => "artifact_uri",
        "run_id" => "run_id",
        "end_time" => "end_time",
        "created" | "start_time" => "start_time",
        _ => "start_time",
    }
}

fn bind_search(
    sql: &str,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    let mut q = sqlx::query(sql).persistent(false);
    for b in binds {
        q = match b {
            Bind::Text(t) => q.bind(t),
            Bind::Int(i) => q.bind(i),
            Bind::Float(f) => q.bind(f),
        };
    }
    q
}

/// Where a run search's scan starts.
#[derive(Clone, Copy, PartialEq)]
enum Drive {
    /// From `runs`; the database picks the plan.
    Runs,
    /// One segment of the leading order key's runs.
    Key(Segment),
}

/// The runs of a sort key, in MLflow's order of segments.
#[derive(Clone, Copy, PartialEq)]
enum Segment {
    /// Runs with a value (a number, for metrics), driven from the key's index.
    Values,
    /// Runs whose metric is NaN.
    NaN,
    /// Runs without the key.
    Missing,
}

/// The table and key of a metric, param or tag field.
fn keyed_table(field: &RunField) -> Option<(&'static str, &str)> {
    match field {
        RunField::Metric(k) => Some(("run_latest_metrics", k)),
        RunField::Param(k) => Some(("run_params", k)),
        RunField::Tag(k) => Some(("run_tags", k)),
        RunField::Attribute(_) | RunField::Dataset(_) => None,
    }
}

/// The SQL of one run search query and its parameters: a page of `limit` runs from `offset`,
/// or, for `limit` -1, the number of matches (column `n`).
fn run_search_sql(
    query: &RunQuery,
    sqlite: bool,
    drive: Drive,
    limit: i64,
    offset: i64,
) -> (String, Vec<Bind>) {
    let mut binds: Vec<Bind> = Vec::new();
    let mut from = "runs r".to_owned();
    let mut joins = String::new();
    let mut wheres: Vec<String> = Vec::new();
    let exps: Vec<String> = query
        .experiment_ids
        .iter()
        .map(|id| push_bind(&mut binds, Bind::Int(*id)))
        .collect();
    wheres.push(format!("r.experiment_id IN ({})", exps.join(", ")));
    let stages: Vec<String> = query
        .lifecycle_stages
        .iter()
        .map(|s| push_bind(&mut binds, Bind::Text((*s).to_owned())))
        .collect();
    wheres.push(format!("r.lifecycle_stage IN ({})", stages.join(", ")));

    // One inner join per filtered key; the order reuses it (its value is never NULL there).
    let mut inner: Vec<(RunField, String)> = Vec::new();
    let mut alias_n = 0;
    let mut next_alias = || {
        alias_n += 1;
        format!("j{alias_n}")
    };
    let lead = query
        .order
        .first()
        .filter(|o| keyed_table(&o.field).is_some());
    if let (Some(lead), Drive::Key(segment)) = (lead, drive) {
        let (table, key) = keyed_table(&lead.field).expect("lead is keyed");
        let p = push_bind(&mut binds, Bind::Text(key.to_owned()));
        match segment {
            Segment::Values | Segment::NaN => {
                let a = next_alias();
                from = format!("{table} {a} CROSS JOIN runs r");
                wheres.push(format!("{a}.key = {p} AND r.run_id = {a}.run_id"));
                if let RunField::Metric(_) = lead.field {
                    let nan = i64::from(segment == Segment::NaN);
                    wheres.push(format!("{a}.is_nan = {nan}"));
                }
                inner.push((lead.field.clone(), a));
            }
            Segment::Missing => wheres.push(format!(
                "NOT EXISTS (SELECT 1 FROM {table} x WHERE x.run_id = r.run_id AND x.key = {p})"
            )),
        }
    }
    for clause in &query.clauses {
        let column = if let Some((table, key)) = keyed_table(&clause.field) {
            match inner.iter().find(|(f, _)| *f == clause.field) {
                Some((_, a)) => format!("{a}.value"),
                None => {
                    let a = next_alias();
                    let p = push_bind(&mut binds, Bind::Text(key.to_owned()));
                    joins.push_str(&format!(
                        " JOIN {table} {a} ON {a}.run_id = r.run_id AND {a}.key = {p}"
                    ));
                    inner.push((clause.field.clone(), a.clone()));
                    format!("{a}.value")
                }
            }
        } else if let RunField::Attribute(name) = &clause.field {
            format!("r.{}", attribute_column(name))
        } else if let RunField::Dataset(part) = &clause.field {
            let column = match *part {
                "name" => "name",
                "digest" => "digest",
                _ => "tags_json",
            };
            let cond = value_condition(
                &format!("ri.{column}"),
                clause,
                sqlite,
                &mut binds,
                *part == "context",
            );
            wheres.push(format!(
                "EXISTS (SELECT 1 FROM run_inputs ri WHERE ri.run_id = r.run_id AND {cond})"
            ));
            continue;
        } else {
            unreachable!("every field kind is handled above")
        };
        if let RunField::Metric(_) = clause.field {
            // NaN never compares true.
            let nan_col = column.replace(".value", ".is_nan");
            wheres.push(format!("{nan_col} = 0"));
        }
        wheres.push(value_condition(&column, clause, sqlite, &mut binds, false));
    }

    let mut order_terms: Vec<String> = Vec::new();
    for (i, o) in query.order.iter().enumerate() {
        let dir = if o.ascending { "ASC" } else { "DESC" };
        if let RunField::Attribute(name) = &o.field {
            let column = attribute_column(name);
            if column == "end_time" {
                // Runs still going have no end time: last either way, as in MLflow (SQLite
                // and PostgreSQL disagree on where NULL sorts).
                order_terms.push("CASE WHEN r.end_time IS NULL THEN 1 ELSE 0 END".into());
            }
            order_terms.push(format!("r.{column} {dir}"));
            continue;
        }
        let Some((table, key)) = keyed_table(&o.field) else {
            continue; // datasets do not order
        };
        if i == 0 && matches!(drive, Drive::Key(Segment::Missing | Segment::NaN)) {
            continue; // every run here lacks the key, or holds NaN
        }
        if let Some((_, a)) = inner.iter().find(|(f, _)| *f == o.field) {
            order_terms.push(format!("{a}.value {dir}"));
            continue;
        }
        let a = next_alias();
        let p = push_bind(&mut binds, Bind::Text(key.to_owned()));
        joins.push_str(&format!(
            " LEFT JOIN {table} {a} ON {a}.run_id = r.run_id AND {a}.key = {p}"
        ));
        // Runs without the value come last either way, NaN just before them, as in MLflow.
        let nan = if matches!(o.field, RunField::Metric(_)) {
            format!(" WHEN {a}.is_nan = 1 THEN 1")
        } else {
            String::new()
        };
        order_terms.push(format!(
            "CASE WHEN {a}.value IS NULL THEN 2{nan} ELSE 0 END, {a}.value {dir}"
        ));
    }
    if !query
        .order
        .iter()
        .any(|o| o.field == RunField::Attribute("start_time"))
    {
        order_terms.push("r.start_time DESC".into());
    }
    order_terms.push("r.run_id".into());
    if limit < 0 {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM {from}{joins} WHERE {}",
            wheres.join(" AND ")
        );
        return (sql, binds);
    }
    let sql = format!(
        "SELECT {SEARCH_RUN_COLUMNS} FROM {from}{joins} WHERE {} ORDER BY {} LIMIT {limit} OFFSET {}",
        wheres.join(" AND "),
        order_terms.join(", "),
        offset.max(0),
    );
    (sql, binds)
}

fn value_condition(
    column: &str,
    clause: &RunClause,
    sqlite: bool,
    binds: &mut Vec<Bind>,
    contains: bool,
) -> String {
    let mut push = |b: Bind| push_bind(binds, b);
    match (&clause.value, clause.op) {
        (FilterValue::List(items), op) => {
            let list: Vec<String> = items
                .iter()
                .map(|v| {
                    push(Bind::Text(if contains {
                        context_pattern(v)
                    } else {
                        v.clone()
                    }))
                })
                .collect();
            if contains {
                // Context is one of the input's tags, stored as JSON text: match the JSON
                // string of the value exactly, with LIKE's wildcards escaped.
                let any: Vec<String> = list
                    .iter()
                    .map(|p| format!("{column} LIKE {p} ESCAPE '\\'"))
                    .collect();
                let joined = any.join(" OR ");
                return if op == CompareOp::NotIn {
                    format!("NOT ({joined})")
                } else {
                    format!("({joined})")
                };
            }
            format!("{column} {} ({})", op.sql(), list.join(", "))
        }
        (FilterValue::Number(n), op) => {
            let p = push(Bind::Float(*n));
            format!("{column} {} {p}", op.sql())
        }
        (FilterValue::Text(t), CompareOp::Like) if sqlite => {
            let p = push(Bind::Text(like_to_glob(t)));
            format!("{column} GLOB {p}")
        }
        (FilterValue::Text(t), CompareOp::ILike) => {
            let p = push(Bind::Text(t.to_lowercase()));
            format!("LOWER({column}) LIKE {p}")
        }
        (FilterValue::Text(t), op) if contains => {
            let p = push(Bind::Text(context_pattern(t)));
            let cond = format!("{column} LIKE {p} ESCAPE '\\'");
            if op == CompareOp::Ne {
                format!("NOT ({cond})")
            } else {
                cond
            }
        }
        (FilterValue::Text(t), op) => {
            let p = push(Bind::Text(t.clone()));
            format!("{column} {} {p}", op.sql())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::like_to_glob;

    #[test]
    fn like_patterns_become_case_sensitive_globs() {
        assert_eq!(like_to_glob("a%b_c"), "a*b?c");
        assert_eq!(like_to_glob("x*[y]?"), "x[*][[]y[]][?]");
    }
}
