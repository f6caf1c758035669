//! Delivery of OpenLineage RunEvents to an HTTP endpoint (for example Marquez's
//! `/api/v1/lineage`): one POST per event, in order, retried with backoff on network errors,
//! 429 and 5xx, dropped (and logged without the body) after the last attempt.

use std::time::Duration;

use mlsec_core::Mlsec;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Where events go.
#[derive(Clone)]
pub struct OpenLineageConfig {
    /// `http://…` or `https://…`, the full URL events are POSTed to.
    pub url: String,
    /// Namespace of jobs and datasets.
    pub namespace: String,
    /// Sent as `Authorization: Bearer …` when set.
    pub api_key: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Events held while the endpoint is slow; more are dropped and counted.
    pub queue: usize,
}

impl std::fmt::Debug for OpenLineageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenLineageConfig")
            .field("url", &self.url)
            .field("namespace", &self.namespace)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("queue", &self.queue)
            .finish()
    }
}

/// Delays before the second, third and fourth attempt.
const BACKOFF: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(5),
];

/// Starts emitting events from `core` and delivering them; the task ends when the core is
/// dropped (its queue closes).
pub fn start_openlineage(
    core: &Mlsec,
    config: OpenLineageConfig,
) -> Result<JoinHandle<()>, mlsec_core::CoreError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest13::Client::builder()
        .timeout(config.timeout)
        .user_agent(concat!("mlsec/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| mlsec_core::CoreError::InvalidRequest(format!("OpenLineage client: {e}")))?;
    let rx = core.emit_openlineage(&config.namespace, config.queue)?;
    Ok(tokio::spawn(deliver(client, config, rx)))
}

async fn deliver(
    client: reqwest13::Client,
    config: OpenLineageConfig,
    mut rx: mpsc::Receiver<serde_json::Value>,
) {
    while let Some(event) = rx.recv().await {
        let body = match serde_json::to_vec(&event) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "OpenLineage event not serializable");
                continue;
            }
        };
        let mut attempt = 0;
        loop {
            let mut req = client
                .post(&config.url)
                .header("content-type", "application/json")
                .body(body.clone());
            if let Some(key) = &config.api_key {
                req = req.bearer_auth(key);
            }
            let outcome = match req.send().await {
                Ok(resp) if resp.status().is_success() => Ok(()),
                Ok(resp) => {
                    let status = resp.status();
                    let retry = status.is_server_error() || status.as_u16() == 429;
                    Err((format!("HTTP {status}"), retry))
                }
                Err(e) => Err((e.without_url().to_string(), true)),
            };
            match outcome {
                Ok(()) => break,
                Err((why, retry)) if retry && attempt < BACKOFF.len() => {
                    tracing::debug!(error = %why, attempt, "OpenLineage delivery failed; retrying");
                    tokio::time::sleep(BACKOFF[attempt]).await;
                    attempt += 1;
                }
                Err((why, _)) => {
                    tracing::warn!(
                        error = %why,
                        event_type = %event["eventType"],
                        run_id = %event["run"]["runId"],
                        "OpenLineage event dropped"
                    );
                    break;
                }
            }
        }
    }
}
