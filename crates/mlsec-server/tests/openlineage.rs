//! OpenLineage emission end to end: runs created and ended over the MLflow API, a pinned dataset
//! input and a registered version arrive at an HTTP lineage endpoint as RunEvents, in order,
//! after a failed delivery is retried, on SQLite and PostgreSQL.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
use common::{Server, servers};
use mlsec_core::{NewInput, RequestCtx};
use mlsec_server::{OpenLineageConfig, start_openlineage};
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Receiver {
    events: Arc<Mutex<Vec<Value>>>,
    calls: Arc<Mutex<usize>>,
    auth: Arc<Mutex<Vec<String>>>,
}

async fn receive(
    State(r): State<Receiver>,
    headers: axum::http::HeaderMap,
    Json(event): Json<Value>,
) -> StatusCode {
    let first = {
        let mut calls = r.calls.lock().unwrap();
        *calls += 1;
        *calls == 1
    };
    // The first delivery fails: the event must be retried, not lost.
    if first {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if let Some(a) = headers.get("authorization") {
        r.auth.lock().unwrap().push(a.to_str().unwrap().to_owned());
    }
    r.events.lock().unwrap().push(event);
    StatusCode::CREATED
}

async fn start_receiver() -> (String, Receiver) {
    let r = Receiver::default();
    let app = Router::new()
        .route("/api/v1/lineage", post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/api/v1/lineage"), r)
}

async fn ok(s: &Server, method: Method, path: &str, body: Value) -> Value {
    let resp = s.authed(method, path).json(&body).send().await.unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert!(status.is_success(), "{path}: {v}");
    v
}

async fn wait_for(r: &Receiver, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let got = r.events.lock().unwrap().clone();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {n} events, got {:?}", r.events.lock().unwrap());
}

fn uuid_of(run_id: &str) -> String {
    uuid::Uuid::try_parse(run_id)
        .unwrap()
        .hyphenated()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_and_versions_reach_the_lineage_endpoint() {
    for s in servers(64 << 20).await {
        let (url, received) = start_receiver().await;
        let delivery = start_openlineage(
            &s.core,
            OpenLineageConfig {
                url,
                namespace: "ml-prod".into(),
                api_key: Some("ol-key".into()),
                timeout: Duration::from_secs(5),
                queue: 100,
            },
        )
        .unwrap();
        let local = RequestCtx::local();
        let data = tempfile::tempdir().unwrap();
        std::fs::write(data.path().join("train.csv"), "x,y\n1,0\n").unwrap();
        let dataset = s
            .core
            .add_dataset_from_path(&local, "ol/train", data.path(), "", "")
            .await
            .unwrap();

        let exp = ok(
            &s,
            Method::POST,
            "/api/2.0/mlflow/experiments/create",
            json!({"name": "churn"}),
        )
        .await["experiment_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let parent = ok(
            &s,
            Method::POST,
            "/api/2.0/mlflow/runs/create",
            json!({"experiment_id": exp, "run_name": "sweep", "start_time": 1_700_000_000_000i64}),
        )
        .await["run"]["info"]["run_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let child = ok(
            &s,
            Method::POST,
            "/api/2.0/mlflow/runs/create",
            json!({"experiment_id": exp, "run_name": "trial",
                   "tags": [{"key": "mlflow.parentRunId", "value": parent}]}),
        )
        .await["run"]["info"]["run_id"]
            .as_str()
            .unwrap()
            .to_owned();
        s.core
            .log_inputs(
                &local,
                &child,
                vec![NewInput {
                    name: "train".into(),
                    digest: "0badc0de".into(),
                    source_type: "mlsec".into(),
                    source: "mlsec://ol/train@1".into(),
                    ..Default::default()
                }],
            )
            .await
            .unwrap();
        let resp = s
            .authed(
                Method::PUT,
                &format!(
                    "/api/2.0/mlflow-artifacts/artifacts/{exp}/{child}/artifacts/model/MLmodel"
                ),
            )
            .body("flavors: {}\n")
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        ok(
            &s,
            Method::POST,
            "/api/2.0/mlflow/runs/update",
            json!({"run_id": child, "status": "FINISHED", "end_time": 1_700_000_060_000i64}),
        )
        .await;
        ok(
            &s,
            Method::POST,
            "/api/2.0/mlflow/runs/update",
            json!({"run_id": parent, "status": "KILLED"}),
        )
        .await;
        ok(
            &s,
            Method::POST,
            "/api/2.0/mlflow/registered-models/create",
            json!({"name": "churn-model"}),
        )
        .await;
        let version = ok(
            &s,
            Method::POST,
            "/api/2.0/mlflow/model-versions/create",
            json!({"name": "churn-model", "source": format!("runs:/{child}/model"), "run_id": child}),
        )
        .await;

        let events = wait_for(&received, 5).await;
        let kinds: Vec<(&str, String)> = events
            .iter()
            .map(|e| {
                (
                    e["eventType"].as_str().unwrap(),
                    e["run"]["runId"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("START", uuid_of(&parent)),
                ("START", uuid_of(&child)),
                ("COMPLETE", uuid_of(&child)),
                ("ABORT", uuid_of(&parent)),
                ("OTHER", uuid_of(&child)),
            ],
            "{}",
            s.addr
        );
        for e in &events {
            assert_eq!(e["job"]["namespace"], "ml-prod");
            assert_eq!(e["job"]["name"], "churn");
            assert_eq!(e["schemaURL"], mlsec_core::OPENLINEAGE_SCHEMA_URL);
            assert_eq!(e["producer"], mlsec_core::OPENLINEAGE_PRODUCER);
            assert!(
                time::OffsetDateTime::parse(
                    e["eventTime"].as_str().unwrap(),
                    &time::format_description::well_known::Rfc3339
                )
                .is_ok()
            );
        }
        assert_eq!(events[0]["eventTime"], "2023-11-14T22:13:20Z");
        // The child names its parent.
        let parent_facet = &events[1]["run"]["facets"]["parent"];
        assert_eq!(parent_facet["run"]["runId"], uuid_of(&parent));
        assert_eq!(parent_facet["job"]["name"], "churn");
        assert_eq!(events[0]["run"]["facets"]["parent"], Value::Null);
        // The finished run's input is the pinned dataset version, by its manifest digest.
        let input = &events[2]["inputs"][0];
        assert_eq!(input["name"], "ol/train@1");
        assert_eq!(input["namespace"], "ml-prod");
        assert_eq!(
            input["facets"]["version"]["datasetVersion"],
            dataset.version.digest.as_str()
        );
        assert_eq!(events[2]["eventTime"], "2023-11-14T22:14:20Z");
        // The registered version is the output, by the digest of its files.
        let output = &events[4]["outputs"][0];
        assert_eq!(output["name"], "models/churn-model/1");
        assert_eq!(
            output["facets"]["version"]["datasetVersion"],
            version["model_version"]["mlsec_digest"]
        );
        assert_eq!(*received.calls.lock().unwrap(), 6, "one retried delivery");
        assert!(
            received
                .auth
                .lock()
                .unwrap()
                .iter()
                .all(|a| a == "Bearer ol-key")
        );
        assert_eq!(s.core.openlineage_dropped(), 0);
        // A second start is refused: one delivery task per server.
        assert!(
            start_openlineage(
                &s.core,
                OpenLineageConfig {
                    url: "http://127.0.0.1:9/".into(),
                    namespace: "x".into(),
                    api_key: None,
                    timeout: Duration::from_secs(1),
                    queue: 1,
                },
            )
            .is_err()
        );
        // At shutdown the queue closes: what is queued is still delivered, then the task ends;
        // later events are counted as dropped.
        ok(
            &s,
            Method::POST,
            "/api/2.0/mlflow/runs/create",
            json!({"experiment_id": exp, "run_name": "last"}),
        )
        .await;
        s.core.close_openlineage();
        tokio::time::timeout(Duration::from_secs(10), delivery)
            .await
            .expect("delivery ends once the queue is closed and drained")
            .unwrap();
        assert_eq!(wait_for(&received, 6).await.len(), 6);
        ok(
            &s,
            Method::POST,
            "/api/2.0/mlflow/runs/create",
            json!({"experiment_id": exp, "run_name": "after-close"}),
        )
        .await;
        assert_eq!(s.core.openlineage_dropped(), 1);
    }
}
