//! Group commit of run logging: concurrent log-metric, log-param, set-tag and log-batch calls
//! are written in one transaction, each with its own audit event, and every caller is answered
//! only after that transaction committed.
//!
//! One durable commit costs a disk flush (~0.7 ms here), which caps one-at-a-time logging near
//! 1,400 calls/s. A single writer task drains whatever calls arrived while the previous commit
//! was flushing, so the flush is shared and throughput follows the number of callers while each
//! call keeps its own acknowledgement and its own validation.

use std::collections::HashMap;

use mlsec_audit::AuditEvent;
use mlsec_store::{MetricRow, RunRow, Store};
use tokio::sync::{mpsc, oneshot};

use crate::error::CoreError;

/// Most calls in one transaction.
const MAX_JOBS_PER_COMMIT: usize = 512;
/// Most logged entries in one transaction.
const MAX_ENTRIES_PER_COMMIT: usize = 50_000;

/// One call's writes to one run.
pub(crate) struct RunLog {
    pub run_id: String,
    pub metrics: Vec<MetricRow>,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub event: AuditEvent,
}

impl RunLog {
    fn entries(&self) -> usize {
        self.metrics.len() + self.params.len() + self.tags.len()
    }
}

struct Job {
    log: RunLog,
    reply: oneshot::Sender<Result<(), CoreError>>,
}

/// The queue in front of the writer task.
pub(crate) struct RunWriter {
    tx: mpsc::Sender<Job>,
}

impl RunWriter {
    pub(crate) fn start(store: Store) -> RunWriter {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(writer_loop(store, rx));
        RunWriter { tx }
    }

    /// Queues the writes and waits until they are committed (or refused).
    pub(crate) async fn write(&self, log: RunLog) -> Result<(), CoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { log, reply })
            .await
            .map_err(|_| CoreError::Key("the run writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| CoreError::Key("the run writer dropped a write".into()))?
    }
}

async fn writer_loop(store: Store, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut entries = first.log.entries();
        let mut jobs = vec![first];
        while jobs.len() < MAX_JOBS_PER_COMMIT && entries < MAX_ENTRIES_PER_COMMIT {
            match rx.try_recv() {
                Ok(job) => {
                    entries += job.log.entries();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        commit_jobs(&store, jobs).await;
    }
}

/// Writes a batch: every call validated on its own (a refused call is answered with its
/// reason), then the accepted calls' rows written together, a few statements per run rather
/// than per call, and committed with one audit event per call. If the combined write fails, the
/// batch is written again call by call.
async fn commit_jobs(store: &Store, jobs: Vec<Job>) {
    match combined(store, &jobs).await {
        Ok(refusals) => {
            for (job, refusal) in jobs.into_iter().zip(refusals) {
                let _ = job.reply.send(match refusal {
                    None => Ok(()),
                    Some(e) => Err(e),
                });
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, "combined run logging failed; writing call by call");
            commit_one_by_one(store, jobs).await;
        }
    }
}

/// A run's metrics, params and tags from every accepted call of a batch.
type RunRows = (Vec<MetricRow>, Vec<(String, String)>, Vec<(String, String)>);

async fn combined(
    store: &Store,
    jobs: &[Job],
) -> Result<Vec<Option<CoreError>>, mlsec_store::StoreError> {
    let mut w = store.begin_write().await?;
    let mut runs: HashMap<String, Option<RunRow>> = HashMap::new();
    let mut refusals: Vec<Option<CoreError>> = Vec::with_capacity(jobs.len());
    // Param values accepted earlier in this batch, per (run, key).
    let mut batch_params: HashMap<(String, String), String> = HashMap::new();
    for job in jobs {
        let log = &job.log;
        if !runs.contains_key(&log.run_id) {
            let run = w.run_in_tx(&log.run_id).await?;
            runs.insert(log.run_id.clone(), run);
        }
        let refusal = match runs.get(&log.run_id).and_then(|r| r.as_ref()) {
            None => Some(CoreError::NotFound {
                what: "run",
                id: log.run_id.clone(),
            }),
            Some(run) => run_refuses_writes(run),
        };
        if refusal.is_some() {
            refusals.push(refusal);
            continue;
        }
        let mut conflict = None;
        if !log.params.is_empty() {
            let keys: Vec<&str> = log.params.iter().map(|(k, _)| k.as_str()).collect();
            let stored = w.run_params_in_tx(&log.run_id, &keys).await?;
            for (k, v) in &log.params {
                let earlier = stored
                    .get(k)
                    .or_else(|| batch_params.get(&(log.run_id.clone(), k.clone())));
                if let Some(old) = earlier
                    && old != v
                {
                    conflict = Some(CoreError::InvalidRequest(format!(
                        "Changing param values is not allowed. Param with key='{k}' was already logged with value='{old}' for run ID='{}'. Attempted logging new value '{v}'.",
                        log.run_id
                    )));
                    break;
                }
            }
            if conflict.is_none() {
                for (k, v) in &log.params {
                    batch_params.insert((log.run_id.clone(), k.clone()), v.clone());
                }
            }
        }
        refusals.push(conflict);
    }
    // The accepted calls' rows, per run, in arrival order.
    let mut order: Vec<&str> = Vec::new();
    let mut per_run: HashMap<&str, RunRows> = HashMap::new();
    let mut events = Vec::new();
    for (job, refusal) in jobs.iter().zip(&refusals) {
        if refusal.is_some() {
            continue;
        }
        let log = &job.log;
        let entry = per_run.entry(log.run_id.as_str()).or_insert_with(|| {
            order.push(log.run_id.as_str());
            Default::default()
        });
        entry.0.extend(log.metrics.iter().cloned());
        entry.1.extend(log.params.iter().cloned());
        entry.2.extend(log.tags.iter().cloned());
        events.push(log.event.clone());
    }
    for run_id in order {
        let (metrics, params, tags) = &per_run[run_id];
        if !metrics.is_empty() {
            w.insert_run_metrics(run_id, metrics).await?;
        }
        if !params.is_empty() {
            w.insert_run_params(run_id, params).await?;
            // Another replica may have logged a key meanwhile: fall back to the per-call path,
            // which refuses exactly the calls that lost.
            let keys: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
            let stored = w.run_params_in_tx(run_id, &keys).await?;
            if params.iter().any(|(k, v)| stored.get(k) != Some(v)) {
                w.rollback().await?;
                return Err(mlsec_store::StoreError::Inconsistent(
                    "a param was logged concurrently".into(),
                ));
            }
        }
        if !tags.is_empty() {
            w.set_run_tags(run_id, tags).await?;
            if let Some((_, name)) = tags.iter().rev().find(|(k, _)| k == "mlflow.runName") {
                w.update_run(run_id, None, None, Some(name)).await?;
            }
        }
    }
    if events.is_empty() {
        w.rollback().await?;
    } else {
        w.commit(&events).await?;
    }
    Ok(refusals)
}

/// Why a run refuses writes, if it does.
pub(crate) fn run_refuses_writes(run: &RunRow) -> Option<CoreError> {
    (run.lifecycle_stage != "active").then(|| {
        CoreError::InvalidRequest(format!(
            "the run `{}` must be in the 'active' state; it is '{}'",
            run.run_id, run.lifecycle_stage
        ))
    })
}

/// Writes a batch call by call, each in its own savepoint: the path when the combined write
/// failed, so that a call the database refuses fails alone.
async fn commit_one_by_one(store: &Store, jobs: Vec<Job>) {
    let mut w = match store.begin_write().await {
        Ok(w) => w,
        Err(e) => {
            let message = e.to_string();
            for job in jobs {
                let _ = job.reply.send(Err(CoreError::Key(message.clone())));
            }
            return;
        }
    };
    let mut runs: HashMap<String, Option<RunRow>> = HashMap::new();
    let mut accepted = Vec::with_capacity(jobs.len());
    let mut events = Vec::with_capacity(jobs.len());
    let mut failure: Option<String> = None;
    for job in jobs {
        if failure.is_some() {
            accepted.push(job);
            continue;
        }
        // Each call in its own savepoint: a call the database refuses (a value PostgreSQL will
        // not store, say) fails alone instead of taking the other callers' writes with it.
        if let Err(e) = savepoint(&mut w, "SAVEPOINT run_log").await {
            failure = Some(e.to_string());
            accepted.push(job);
            continue;
        }
        match apply(&mut w, &mut runs, &job.log).await {
            Ok(Ok(())) => match savepoint(&mut w, "RELEASE SAVEPOINT run_log").await {
                Ok(()) => {
                    events.push(job.log.event.clone());
                    accepted.push(job);
                }
                Err(e) => {
                    failure = Some(e.to_string());
                    accepted.push(job);
                }
            },
            outcome => {
                let refusal = match outcome {
                    Ok(Err(refused)) => refused,
                    Err(e) => {
                        tracing::warn!(error = %e, run = %job.log.run_id, "run logging refused by the database");
                        CoreError::InvalidRequest(format!(
                            "the store refused these values: {}",
                            first_line(&e.to_string())
                        ))
                    }
                    Ok(Ok(())) => unreachable!("handled above"),
                };
                // The run cache may hold what the rolled-back writes saw; read it again.
                runs.remove(&job.log.run_id);
                if let Err(e) = savepoint(&mut w, "ROLLBACK TO SAVEPOINT run_log").await {
                    failure = Some(e.to_string());
                    accepted.push(job);
                    continue;
                }
                let _ = savepoint(&mut w, "RELEASE SAVEPOINT run_log").await;
                let _ = job.reply.send(Err(refusal));
            }
        }
    }
    let outcome = match failure {
        Some(message) => {
            let _ = w.rollback().await;
            Err(message)
        }
        None if events.is_empty() => {
            let _ = w.rollback().await;
            Ok(())
        }
        None => w
            .commit(&events)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    };
    for job in accepted {
        let _ = job.reply.send(match &outcome {
            Ok(()) => Ok(()),
            Err(message) => Err(CoreError::Key(format!("run logging failed: {message}"))),
        });
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

async fn savepoint(
    w: &mut mlsec_store::WriteTx,
    statement: &'static str,
) -> Result<(), mlsec_store::StoreError> {
    w.execute_raw(statement).await
}

/// Validates and writes one call. The outer error aborts the whole transaction (a database
/// failure); the inner one refuses this call only.
async fn apply(
    w: &mut mlsec_store::WriteTx,
    runs: &mut HashMap<String, Option<RunRow>>,
    log: &RunLog,
) -> Result<Result<(), CoreError>, mlsec_store::StoreError> {
    if !runs.contains_key(&log.run_id) {
        let run = w.run_in_tx(&log.run_id).await?;
        runs.insert(log.run_id.clone(), run);
    }
    let Some(run) = runs.get(&log.run_id).and_then(|r| r.as_ref()) else {
        return Ok(Err(CoreError::NotFound {
            what: "run",
            id: log.run_id.clone(),
        }));
    };
    if let Some(refused) = run_refuses_writes(run) {
        return Ok(Err(refused));
    }
    if !log.params.is_empty() {
        let keys: Vec<&str> = log.params.iter().map(|(k, _)| k.as_str()).collect();
        let logged = w.run_params_in_tx(&log.run_id, &keys).await?;
        for (k, v) in &log.params {
            if let Some(old) = logged.get(k)
                && old != v
            {
                return Ok(Err(CoreError::InvalidRequest(format!(
                    "Changing param values is not allowed. Param with key='{k}' was already logged with value='{old}' for run ID='{}'. Attempted logging new value '{v}'.",
                    log.run_id
                ))));
            }
        }
        w.insert_run_params(&log.run_id, &log.params).await?;
        // Another replica may have logged the same key meanwhile: what is stored now must be
        // what this call asked for, or the call is refused.
        let stored = w.run_params_in_tx(&log.run_id, &keys).await?;
        for (k, v) in &log.params {
            if stored.get(k) != Some(v) {
                return Ok(Err(CoreError::InvalidRequest(format!(
                    "Changing param values is not allowed. Param with key='{k}' was logged concurrently with another value for run ID='{}'.",
                    log.run_id
                ))));
            }
        }
    }
    if !log.metrics.is_empty() {
        w.insert_run_metrics(&log.run_id, &log.metrics).await?;
    }
    if !log.tags.is_empty() {
        w.set_run_tags(&log.run_id, &log.tags).await?;
        // The run's name is also a tag (`mlflow.runName`); keep the two equal.
        if let Some((_, name)) = log.tags.iter().rev().find(|(k, _)| k == "mlflow.runName") {
            w.update_run(&log.run_id, None, None, Some(name)).await?;
        }
    }
    Ok(Ok(()))
}
