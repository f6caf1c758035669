//! OpenLineage RunEvents for the lineage the registry records, so a lineage service (Marquez, a
//! data catalog) sees training runs next to the pipelines that made their data.
//!
//! Mapping: an experiment is a job (namespace from the configuration), an MLflow run is an
//! OpenLineage run (its id as a UUID), nested runs carry the `parent` facet. Creating a run
//! emits `START`; ending it emits `COMPLETE`, `FAIL` or `ABORT` with its dataset inputs (the
//! pinned mlsec version's manifest digest as `datasetVersion`); registering a version of a run's
//! model emits `OTHER` with the version as output dataset (`models/NAME/VERSION`, version = the
//! files' manifest digest).
//!
//! Events are built after the change committed and queued without waiting: a full queue drops
//! the event and counts it, so a slow or absent lineage endpoint never slows or fails a request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;

use crate::registry::ModelVersionView;
use crate::service::Mlsec;
use crate::tracking::RunView;

/// The spec version the events follow.
pub const OPENLINEAGE_SCHEMA_URL: &str =
    "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
/// `producer` of every event and facet.
pub const OPENLINEAGE_PRODUCER: &str = concat!(
    "https://github.com/mlsec/mlsec/tree/v",
    env!("CARGO_PKG_VERSION")
);

/// Where events go: the queue a delivery task drains, and the namespace of jobs and datasets.
pub(crate) struct OpenLineageSink {
    /// `None` once the server shuts down, which lets the delivery task finish the queue.
    tx: std::sync::Mutex<Option<mpsc::Sender<Value>>>,
    namespace: String,
    dropped: AtomicU64,
}

impl Mlsec {
    /// Starts emitting OpenLineage events into a queue of `capacity` events; the caller delivers
    /// what the receiver yields. Called once, at server start; later calls are refused.
    pub fn emit_openlineage(
        &self,
        namespace: &str,
        capacity: usize,
    ) -> Result<mpsc::Receiver<Value>, crate::CoreError> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let sink = Arc::new(OpenLineageSink {
            tx: std::sync::Mutex::new(Some(tx)),
            namespace: namespace.to_owned(),
            dropped: AtomicU64::new(0),
        });
        self.inner.openlineage.set(sink).map_err(|_| {
            crate::CoreError::Conflict("OpenLineage emission already started".into())
        })?;
        Ok(rx)
    }

    /// Events dropped because the delivery queue was full.
    pub fn openlineage_dropped(&self) -> u64 {
        self.inner
            .openlineage
            .get()
            .map_or(0, |s| s.dropped.load(Ordering::Relaxed))
    }

    /// Stops queueing events (at shutdown): the delivery task sends what is queued, then ends.
    pub fn close_openlineage(&self) {
        if let Some(sink) = self.inner.openlineage.get()
            && let Ok(mut tx) = sink.tx.lock()
        {
            tx.take();
        }
    }

    pub(crate) fn openlineage_enabled(&self) -> bool {
        self.inner.openlineage.get().is_some()
    }

    fn queue_openlineage(&self, build: impl FnOnce(&str) -> Value) {
        let Some(sink) = self.inner.openlineage.get() else {
            return;
        };
        let sent = match sink.tx.lock() {
            Ok(tx) => tx
                .as_ref()
                .is_some_and(|tx| tx.try_send(build(&sink.namespace)).is_ok()),
            Err(_) => false,
        };
        if !sent {
            let n = sink.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n,
                    "OpenLineage queue full or closed: events dropped"
                );
            }
        }
    }

    pub(crate) fn openlineage_run_started(&self, run: &RunView) {
        self.queue_openlineage(|ns| run_event("START", run, ns, None));
    }

    /// For a status change this request committed: terminal states become `COMPLETE`,
    /// `FAIL` or `ABORT`.
    pub(crate) fn openlineage_run_ended(&self, run: &RunView, status: &str) {
        let kind = match status {
            "FINISHED" => "COMPLETE",
            "FAILED" => "FAIL",
            "KILLED" => "ABORT",
            _ => return,
        };
        self.queue_openlineage(|ns| run_event(kind, run, ns, None));
    }

    pub(crate) fn openlineage_version_registered(&self, run: &RunView, v: &ModelVersionView) {
        self.queue_openlineage(|ns| run_event("OTHER", run, ns, Some(v)));
    }
}

/// An MLflow run id (32 hex digits) as the UUID OpenLineage requires.
pub fn run_uuid(run_id: &str) -> String {
    match uuid::Uuid::try_parse(run_id) {
        Ok(u) => u.hyphenated().to_string(),
        // Not a UUID (never for runs mlsec creates): a stable name-based one.
        Err(_) => uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, run_id.as_bytes())
            .hyphenated()
            .to_string(),
    }
}

fn facet(schema: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("_producer".into(), OPENLINEAGE_PRODUCER.into());
    m.insert("_schemaURL".into(), schema.into());
    m
}

fn version_facet(version: &str) -> Value {
    let mut f = facet(
        "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet",
    );
    f.insert("datasetVersion".into(), version.into());
    Value::Object(f)
}

fn run_event(
    kind: &str,
    run: &RunView,
    namespace: &str,
    version: Option<&ModelVersionView>,
) -> Value {
    let event_time = match (kind, run.end_time) {
        ("COMPLETE" | "FAIL" | "ABORT", Some(t)) => millis_rfc3339(t),
        ("START", _) => millis_rfc3339(run.start_time),
        _ => OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default(),
    };
    let mut run_facets = serde_json::Map::new();
    if let Some(parent) = &run.parent_run_id {
        let mut f = facet(
            "https://openlineage.io/spec/facets/1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet",
        );
        f.insert("run".into(), json!({ "runId": run_uuid(parent) }));
        f.insert(
            "job".into(),
            json!({ "namespace": namespace, "name": run.experiment }),
        );
        run_facets.insert("parent".into(), Value::Object(f));
    }
    let mut mlflow = facet("https://github.com/mlsec/mlsec/blob/main/docs/mlflow.md#openlineage");
    mlflow.insert("runId".into(), run.run_id.clone().into());
    mlflow.insert("runName".into(), run.run_name.clone().into());
    mlflow.insert("experimentId".into(), run.experiment_id.clone().into());
    mlflow.insert("status".into(), run.status.clone().into());
    run_facets.insert("mlsec_run".into(), Value::Object(mlflow));

    let mut job_type = facet(
        "https://openlineage.io/spec/facets/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
    );
    job_type.insert("processingType".into(), "BATCH".into());
    job_type.insert("integration".into(), "MLSEC".into());
    job_type.insert("jobType".into(), "TRAINING".into());

    let inputs: Vec<Value> = if kind == "START" || version.is_some() {
        Vec::new()
    } else {
        run.inputs
            .iter()
            .map(|i| {
                let (name, digest) = match (&i.mlsec_version, &i.mlsec_digest) {
                    (Some(v), Some(d)) => (v.clone(), d.clone()),
                    _ => (i.name.clone(), i.digest.clone()),
                };
                json!({
                    "namespace": namespace,
                    "name": name,
                    "facets": { "version": version_facet(&digest) },
                })
            })
            .collect()
    };
    let outputs: Vec<Value> = version
        .map(|v| {
            json!({
                "namespace": namespace,
                "name": format!("models/{}/{}", v.name, v.version),
                "facets": { "version": version_facet(&v.digest) },
            })
        })
        .into_iter()
        .collect();
    json!({
        "eventType": kind,
        "eventTime": event_time,
        "producer": OPENLINEAGE_PRODUCER,
        "schemaURL": OPENLINEAGE_SCHEMA_URL,
        "run": { "runId": run_uuid(&run.run_id), "facets": run_facets },
        "job": {
            "namespace": namespace,
            "name": run.experiment,
            "facets": { "jobType": job_type },
        },
        "inputs": inputs,
        "outputs": outputs,
    })
}

fn millis_rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_become_uuids() {
        assert_eq!(
            run_uuid("0123456789abcdef0123456789abcdef"),
            "01234567-89ab-cdef-0123-456789abcdef"
        );
        let other = run_uuid("not-a-uuid");
        assert!(uuid::Uuid::try_parse(&other).is_ok());
        assert_eq!(other, run_uuid("not-a-uuid"));
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(
            millis_rfc3339(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
    }
}
