//! The MLflow-compatible API on SQLite and PostgreSQL: the real `mlflow` client runs a training
//! job against mlsec (when the test command provides a Python with mlflow installed), registry
//! versions cannot be altered through any route, every route refuses anonymous callers in
//! MLflow's error shape, and lineage answers both ways over a graph of 10,000 runs.

mod common;

use std::collections::BTreeSet;

use common::{Server, servers};
use futures_util::StreamExt;
use mlsec_core::{
    Direction, LineageStart, NewInput, NewPrincipal, NewToken, RequestCtx, VersionSource,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

async fn call(s: &Server, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = s.authed(method, path);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn ok(s: &Server, method: Method, path: &str, body: Option<Value>) -> Value {
    let (status, v) = call(s, method, path, body).await;
    assert_eq!(status, StatusCode::OK, "{path}: {v}");
    v
}

async fn put_artifact(s: &Server, path: &str, bytes: &[u8]) -> (StatusCode, Value) {
    let resp = s
        .authed(
            Method::PUT,
            &format!("/api/2.0/mlflow-artifacts/artifacts/{path}"),
        )
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_mlflow_client_runs_a_training_job() {
    let Ok(python) = std::env::var("MLSEC_TEST_PYTHON") else {
        eprintln!("skipping: MLSEC_TEST_PYTHON (a Python with mlflow-skinny) is not set");
        return;
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../mlsec/tests/interop/mlflow_training_job.py"
    );
    for s in servers(1 << 30).await {
        let local = RequestCtx::local();
        let data = tempfile::tempdir().unwrap();
        std::fs::write(data.path().join("train.csv"), "x,y\n1,0\n2,1\n3,0\n").unwrap();
        let added = s
            .core
            .add_dataset_from_path(&local, "interop/train", data.path(), "", "")
            .await
            .unwrap();
        let url = format!("http://{}", s.addr);
        let token = s.token.clone();
        let python = python.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(python)
                .arg(script)
                .env("MLFLOW_TRACKING_URI", url)
                .env("MLFLOW_TRACKING_TOKEN", token)
                .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
                .env(
                    "MLSEC_DATASET_SOURCE",
                    r#"{"uri": "mlsec://interop/train@1"}"#,
                )
                .env("MLSEC_EXPECT_QUARANTINE", "1")
                .env("MLSEC_TEST_SUFFIX", "ci")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("OK "),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );

        // The dataset the job logged is pinned: downstream of the dataset version are the runs
        // that used it and the model versions made from them.
        let reference = mlsec_core::VersionRef::parse("interop/train@1").unwrap();
        let down = s
            .core
            .lineage(
                &local,
                &LineageStart::Dataset(reference),
                Direction::Downstream,
            )
            .await
            .unwrap();
        assert!(
            down.counts.get("run").copied().unwrap_or(0) >= 1,
            "{down:?}"
        );
        assert_eq!(
            down.root.digest.as_deref(),
            Some(added.version.digest.as_str())
        );
        // Every upload was hashed, scanned and audited.
        let (count, _) = s.core.store().audit_head().await.unwrap();
        let events: Vec<mlsec_core::audit::AuditEvent> = s
            .core
            .store()
            .audit_records(0, count as i64)
            .await
            .unwrap()
            .iter()
            .map(|r| r.event().unwrap())
            .collect();
        let puts: Vec<_> = events
            .iter()
            .filter(|e| e.action == "artifact.put")
            .collect();
        assert!(puts.len() >= 5, "{} artifact.put events", puts.len());
        assert!(puts.iter().all(|e| {
            e.details["sha256"]
                .as_str()
                .is_some_and(|d| d.starts_with("sha256:"))
        }));
        assert!(
            events
                .iter()
                .any(|e| e.action == "model.alias" && e.reason == "version is quarantined")
        );
        assert!(
            events
                .iter()
                .any(|e| e.action == "model.version.create" && e.reason == "quarantined")
        );
        assert!(
            s.core
                .store()
                .verify_audit(s.core.trusted_keys())
                .await
                .unwrap()
                .ok()
        );
    }
}

/// A run with one model directory uploaded as artifacts; returns (experiment id, run id).
async fn run_with_model(s: &Server, experiment: &str, files: &[(&str, &[u8])]) -> (String, String) {
    let exp = ok(
        s,
        Method::POST,
        "/api/2.0/mlflow/experiments/create",
        Some(json!({"name": experiment})),
    )
    .await["experiment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = ok(
        s,
        Method::POST,
        "/api/2.0/mlflow/runs/create",
        Some(json!({"experiment_id": exp, "run_name": "train"})),
    )
    .await;
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_owned();
    for (name, bytes) in files {
        let (status, v) =
            put_artifact(s, &format!("{exp}/{run_id}/artifacts/model/{name}"), bytes).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    (exp, run_id)
}

#[tokio::test]
async fn registry_versions_cannot_be_altered_through_any_route() {
    for s in servers(64 << 20).await {
        let files: [(&str, &[u8]); 2] =
            [("MLmodel", b"flavors: {}\n"), ("weights.bin", &[7u8; 4096])];
        let (exp, run_id) = run_with_model(&s, "immutable", &files).await;
        ok(
            &s,
            Method::POST,
            "/api/2.0/mlflow/registered-models/create",
            Some(json!({"name": "fraud"})),
        )
        .await;
        let created = ok(
            &s,
            Method::POST,
            "/api/2.0/mlflow/model-versions/create",
            Some(json!({"name": "fraud", "source": format!("runs:/{run_id}/model"), "run_id": run_id})),
        )
        .await;
        let v1 = created["model_version"].clone();
        assert_eq!(v1["version"], "1");
        assert_eq!(v1["run_id"], run_id.as_str());
        // The version's files are the uploaded bytes, digest by digest.
        let listed: BTreeSet<(String, String)> = v1["mlsec_files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["path"].as_str().unwrap().to_owned(),
                    f["sha256"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected: BTreeSet<(String, String)> = files
            .iter()
            .map(|(n, b)| ((*n).to_owned(), sha256_hex(b)))
            .collect();
        assert_eq!(listed, expected);
        let snapshot = |v: &Value| {
            (
                v["mlsec_digest"].clone(),
                v["mlsec_files"].clone(),
                v["source"].clone(),
                v["run_id"].clone(),
            )
        };
        let before = snapshot(&v1);
        let get_v1 = || async {
            ok(
                &s,
                Method::GET,
                "/api/2.0/mlflow/model-versions/get?name=fraud&version=1",
                None,
            )
            .await["model_version"]
                .clone()
        };

        // Every route that touches versions or their files, one at a time.
        let art = format!("{exp}/{run_id}/artifacts/model/weights.bin");
        let (status, v) = put_artifact(&s, &art, &[8u8; 4096]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["error_code"], "RESOURCE_ALREADY_EXISTS");
        let (status, _) = put_artifact(&s, &art, &[7u8; 4096]).await;
        assert_eq!(status, StatusCode::OK, "the same bytes again are a no-op");
        let (status, v) = call(
            &s,
            Method::DELETE,
            &format!("/api/2.0/mlflow-artifacts/artifacts/{art}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
        let (status, _) = put_artifact(
            &s,
            &format!("{exp}/{run_id}/artifacts/model/extra.txt"),
            b"new file",
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "new files may still be logged to the run"
        );
        ok(
            &s,
            Method::PATCH,
            "/api/2.0/mlflow/model-versions/update",
            Some(json!({"name": "fraud", "version": "1", "description": "changed"})),
        )
        .await;
        ok(
            &s,
            Method::POST,
            "/api/2.0/mlflow/model-versions/set-tag",
            Some(json!({"name": "fraud", "version": "1", "key": "k", "value": "v"})),
        )
        .await;
        ok(
            &s,
            Method::DELETE,
            "/api/2.0/mlflow/model-versions/delete-tag",
            Some(json!({"name": "fraud", "version": "1", "key": "k"})),
        )
        .await;
        ok(
            &s,
            Method::POST,
            "/api/2.0/mlflow/registered-models/alias",
            Some(json!({"name": "fraud", "alias": "champion", "version": "1"})),
        )
        .await;
        ok(
            &s,
            Method::PATCH,
            "/api/2.0/mlflow/registered-models/update",
            Some(json!({"name": "fraud", "description": "d"})),
        )
        .await;
        let (status, _) = call(
            &s,
            Method::POST,
            "/api/2.0/mlflow/model-versions/transition-stage",
            Some(json!({"name": "fraud", "version": "1", "stage": "Production"})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = call(
            &s,
            Method::POST,
            "/api/2.0/mlflow/registered-models/rename",
            Some(json!({"name": "fraud", "new_name": "other"})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        // Unknown fields that look like digests are ignored, not applied.
        ok(&s, Method::PATCH, "/api/2.0/mlflow/model-versions/update", Some(json!({"name": "fraud", "version": "1", "description": "x", "source": "runs:/other/x", "mlsec_digest": "sha256:00"}))).await;
        // A second version from the same source now includes the new file; version 1 does not.
        let v2 = ok(
            &s,
            Method::POST,
            "/api/2.0/mlflow/model-versions/create",
            Some(json!({"name": "fraud", "source": format!("runs:/{run_id}/model")})),
        )
        .await["model_version"]
            .clone();
        assert_eq!(v2["mlsec_files"].as_array().unwrap().len(), 3);
        assert_ne!(v2["mlsec_digest"], v1["mlsec_digest"]);
        // Downloads of version 1 are served from its pinned file list: the file added to the
        // run afterwards is not part of it.
        let uri = ok(
            &s,
            Method::GET,
            "/api/2.0/mlflow/model-versions/get-download-uri?name=fraud&version=1",
            None,
        )
        .await["artifact_uri"]
            .as_str()
            .unwrap()
            .to_owned();
        let pinned = uri.strip_prefix("mlflow-artifacts:/").unwrap().to_owned();
        assert!(pinned.starts_with("_registry/"), "{uri}");
        let listed = ok(
            &s,
            Method::GET,
            &format!("/api/2.0/mlflow-artifacts/artifacts?path={pinned}"),
            None,
        )
        .await;
        let names: BTreeSet<&str> = listed["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert_eq!(names, BTreeSet::from(["MLmodel", "weights.bin"]));
        let got = s
            .authed(
                Method::GET,
                &format!("/api/2.0/mlflow-artifacts/artifacts/{pinned}/weights.bin"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), StatusCode::OK);
        assert_eq!(&got.bytes().await.unwrap()[..], &[7u8; 4096]);
        let (status, _) = put_artifact(&s, &format!("{pinned}/weights.bin"), b"x").await;
        assert!(
            status.is_client_error(),
            "the pinned view is read-only: {status}"
        );
        // A path is a file or a directory, never both.
        let (status, v) =
            put_artifact(&s, &format!("{exp}/{run_id}/artifacts/model"), b"shadow").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        let (status, v) = put_artifact(
            &s,
            &format!("{exp}/{run_id}/artifacts/model/MLmodel/inner"),
            b"x",
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        // A finalized logged model's files are fixed.
        let lm = ok(
            &s,
            Method::POST,
            "/api/2.0/mlflow/logged-models",
            Some(json!({"experiment_id": exp, "name": "m", "source_run_id": run_id})),
        )
        .await;
        let model_id = lm["model"]["info"]["model_id"].as_str().unwrap().to_owned();
        let (status, _) = put_artifact(
            &s,
            &format!("{exp}/models/{model_id}/artifacts/MLmodel"),
            b"a",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, v) = call(
            &s,
            Method::POST,
            "/api/2.0/mlflow/model-versions/create",
            Some(json!({"name": "fraud", "source": format!("models:/{model_id}")})),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "a pending logged model is not registered: {v}"
        );
        ok(
            &s,
            Method::PATCH,
            &format!("/api/2.0/mlflow/logged-models/{model_id}"),
            Some(json!({"model_id": model_id, "status": "LOGGED_MODEL_READY"})),
        )
        .await;
        let (status, v) = put_artifact(
            &s,
            &format!("{exp}/models/{model_id}/artifacts/extra"),
            b"b",
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["error_code"], "INVALID_STATE");
        let (status, _) = call(
            &s,
            Method::PATCH,
            &format!("/api/2.0/mlflow/logged-models/{model_id}"),
            Some(json!({"model_id": model_id, "status": "LOGGED_MODEL_PENDING"})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        ok(
            &s,
            Method::POST,
            "/api/2.0/mlflow/runs/delete",
            Some(json!({"run_id": run_id})),
        )
        .await;
        assert_eq!(snapshot(&get_v1().await), before);
        // Sources mlsec does not hold are refused: a version is always pinned.
        for source in [
            "s3://bucket/model",
            "/tmp/model",
            "runs:/nope/model",
            "mlflow-artifacts:/../../etc",
        ] {
            let (status, v) = call(
                &s,
                Method::POST,
                "/api/2.0/mlflow/model-versions/create",
                Some(json!({"name": "fraud", "source": source})),
            )
            .await;
            assert!(status.is_client_error(), "{source}: {status} {v}");
        }
        // Deleting hides the version; numbers are not reused, the record and digests stay.
        ok(
            &s,
            Method::DELETE,
            "/api/2.0/mlflow/model-versions/delete",
            Some(json!({"name": "fraud", "version": "1"})),
        )
        .await;
        let (status, _) = call(
            &s,
            Method::GET,
            "/api/2.0/mlflow/model-versions/get?name=fraud&version=1",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let kept = s
            .core
            .store()
            .model_version_files("fraud", 1)
            .await
            .unwrap();
        assert_eq!(kept.len(), 2);
        let (status, v) = call(
            &s,
            Method::GET,
            "/api/2.0/mlflow/registered-models/alias?name=fraud&alias=champion",
            None,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "the alias went with the version: {v}"
        );
        let v3 = ok(&s, Method::POST, "/api/2.0/mlflow/model-versions/create", Some(json!({"name": "fraud", "source": format!("mlflow-artifacts:/{exp}/{run_id}/artifacts/model")}))).await;
        assert_eq!(v3["model_version"]["version"], "3");
        // Values the database could not hold are refused alone, in MLflow's error shape.
        let (status, v) = call(
            &s,
            Method::POST,
            "/api/2.0/mlflow/runs/log-parameter",
            Some(json!({"run_id": run_id, "key": "k", "value": "a\u{0}b"})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");

        // Downloads return the recorded bytes, with their digest in a header.
        let resp = s
            .authed(
                Method::GET,
                &format!("/api/2.0/mlflow-artifacts/artifacts/{art}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.headers()["x-mlsec-sha256"],
            sha256_hex(&[7u8; 4096]).as_str()
        );
        let body = resp.bytes().await.unwrap();
        assert_eq!(&body[..], &[7u8; 4096]);
        // Paths that climb out of the artifact root are refused.
        for bad in [
            format!("{exp}/{run_id}/artifacts/../../x"),
            format!("{exp}/{run_id}/other/x"),
        ] {
            let (status, _) = put_artifact(&s, &bad, b"x").await;
            assert!(status.is_client_error(), "{bad}: {status}");
        }
    }
}

#[tokio::test]
async fn every_mlflow_route_refuses_anonymous_and_unauthorized_callers() {
    let routes: &[(&str, &str)] = &[
        ("POST", "/api/2.0/mlflow/experiments/create"),
        ("GET", "/api/2.0/mlflow/experiments/get?experiment_id=0"),
        (
            "GET",
            "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default",
        ),
        ("POST", "/api/2.0/mlflow/experiments/search"),
        ("POST", "/api/2.0/mlflow/experiments/update"),
        ("POST", "/api/2.0/mlflow/experiments/delete"),
        ("POST", "/api/2.0/mlflow/experiments/restore"),
        ("POST", "/api/2.0/mlflow/experiments/set-experiment-tag"),
        ("POST", "/api/2.0/mlflow/experiments/delete-experiment-tag"),
        ("POST", "/api/2.0/mlflow/runs/create"),
        ("GET", "/api/2.0/mlflow/runs/get?run_id=x"),
        ("POST", "/api/2.0/mlflow/runs/update"),
        ("POST", "/api/2.0/mlflow/runs/delete"),
        ("POST", "/api/2.0/mlflow/runs/restore"),
        ("POST", "/api/2.0/mlflow/runs/log-metric"),
        ("POST", "/api/2.0/mlflow/runs/log-parameter"),
        ("POST", "/api/2.0/mlflow/runs/set-tag"),
        ("POST", "/api/2.0/mlflow/runs/delete-tag"),
        ("POST", "/api/2.0/mlflow/runs/log-batch"),
        ("POST", "/api/2.0/mlflow/runs/log-inputs"),
        ("POST", "/api/2.0/mlflow/runs/outputs"),
        ("POST", "/api/2.0/mlflow/runs/search"),
        (
            "GET",
            "/api/2.0/mlflow/metrics/get-history?run_id=x&metric_key=m",
        ),
        ("GET", "/api/2.0/mlflow/artifacts/list?run_id=x"),
        ("POST", "/api/2.0/mlflow/logged-models"),
        ("POST", "/api/2.0/mlflow/logged-models/search"),
        ("GET", "/api/2.0/mlflow/logged-models/m-x"),
        ("PATCH", "/api/2.0/mlflow/logged-models/m-x"),
        ("DELETE", "/api/2.0/mlflow/logged-models/m-x"),
        ("PATCH", "/api/2.0/mlflow/logged-models/m-x/tags"),
        ("POST", "/api/2.0/mlflow/registered-models/create"),
        ("GET", "/api/2.0/mlflow/registered-models/get?name=x"),
        ("GET", "/api/2.0/mlflow/registered-models/search"),
        ("PATCH", "/api/2.0/mlflow/registered-models/update"),
        ("POST", "/api/2.0/mlflow/registered-models/rename"),
        ("DELETE", "/api/2.0/mlflow/registered-models/delete"),
        ("POST", "/api/2.0/mlflow/registered-models/set-tag"),
        ("DELETE", "/api/2.0/mlflow/registered-models/delete-tag"),
        ("POST", "/api/2.0/mlflow/registered-models/alias"),
        ("DELETE", "/api/2.0/mlflow/registered-models/alias"),
        (
            "GET",
            "/api/2.0/mlflow/registered-models/alias?name=x&alias=y",
        ),
        (
            "POST",
            "/api/2.0/mlflow/registered-models/get-latest-versions",
        ),
        ("POST", "/api/2.0/mlflow/model-versions/create"),
        ("GET", "/api/2.0/mlflow/model-versions/get?name=x&version=1"),
        (
            "GET",
            "/api/2.0/mlflow/model-versions/get-download-uri?name=x&version=1",
        ),
        ("GET", "/api/2.0/mlflow/model-versions/search"),
        ("PATCH", "/api/2.0/mlflow/model-versions/update"),
        ("DELETE", "/api/2.0/mlflow/model-versions/delete"),
        ("POST", "/api/2.0/mlflow/model-versions/set-tag"),
        ("DELETE", "/api/2.0/mlflow/model-versions/delete-tag"),
        ("POST", "/api/2.0/mlflow/model-versions/transition-stage"),
        (
            "GET",
            "/api/2.0/mlflow-artifacts/artifacts?path=0/x/artifacts",
        ),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts/0/x/artifacts/f"),
        ("PUT", "/api/2.0/mlflow-artifacts/artifacts/0/x/artifacts/f"),
        (
            "DELETE",
            "/api/2.0/mlflow-artifacts/artifacts/0/x/artifacts/f",
        ),
        ("GET", "/api/3.0/mlflow/server-info"),
    ];
    let s = common::start(None, 1 << 20).await;
    let client = reqwest::Client::new();
    for (method, path) in routes {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let resp = client
            .request(m, s.url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error_code"], "UNAUTHENTICATED", "{method} {path}");
    }
    // A viewer reads but cannot write, and a caller with no grant on the experiment sees nothing.
    let local = RequestCtx::local();
    let (exp, run_id) = run_with_model(&s, "secret", &[("MLmodel", b"x")]).await;
    for (id, role, scope) in [
        ("viewer1", "viewer", "server"),
        ("outsider", "ci", "experiment:other"),
    ] {
        s.core
            .create_principal(
                &local,
                NewPrincipal {
                    id: id.into(),
                    service_account: true,
                    display_name: None,
                    password: None,
                },
            )
            .await
            .unwrap();
        s.core.grant_role(&local, id, role, scope).await.unwrap();
    }
    let token = |id: &'static str| {
        let core = s.core.clone();
        let local = local.clone();
        async move {
            core.create_token(
                &local,
                id,
                NewToken {
                    name: "t".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .token
        }
    };
    let viewer = token("viewer1").await;
    let outsider = token("outsider").await;
    let send = |tok: &str, method: Method, path: String, body: Value| {
        client
            .request(method, s.url(&path))
            .bearer_auth(tok)
            .json(&body)
            .send()
    };
    let r = send(
        &viewer,
        Method::GET,
        format!("/api/2.0/mlflow/runs/get?run_id={run_id}"),
        json!({}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = send(
        &viewer,
        Method::POST,
        "/api/2.0/mlflow/runs/log-metric".into(),
        json!({"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1, "step": 0}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error_code"],
        "PERMISSION_DENIED"
    );
    let r = client
        .put(s.url(&format!(
            "/api/2.0/mlflow-artifacts/artifacts/{exp}/{run_id}/artifacts/x"
        )))
        .bearer_auth(&viewer)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    for path in [
        format!("/api/2.0/mlflow/runs/get?run_id={run_id}"),
        format!("/api/2.0/mlflow-artifacts/artifacts/{exp}/{run_id}/artifacts/model/MLmodel"),
        format!("/api/2.0/mlflow-artifacts/artifacts?path={exp}/{run_id}/artifacts"),
        "/api/2.0/mlflow/experiments/get-by-name?experiment_name=secret".to_owned(),
    ] {
        let r = send(&outsider, Method::GET, path.clone(), json!({}))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let r = send(
        &outsider,
        Method::POST,
        "/api/2.0/mlflow/experiments/search".into(),
        json!({}),
    )
    .await
    .unwrap();
    let listed: Value = r.json().await.unwrap();
    assert!(
        listed["experiments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["name"] != "secret")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lineage_both_ways_over_ten_thousand_runs() {
    const RUNS: usize = 10_000;
    for s in servers(1 << 20).await {
        let local = RequestCtx::local();
        let data = tempfile::tempdir().unwrap();
        let mut digests = Vec::new();
        for (i, body) in ["a,b\n1,2\n", "a,b\n3,4\n"].iter().enumerate() {
            std::fs::write(data.path().join("t.csv"), body).unwrap();
            let added = s
                .core
                .add_dataset_from_path(&local, "shared/train", data.path(), &format!("v{i}"), "")
                .await
                .unwrap();
            digests.push(added.version.digest);
        }
        let mut experiments = Vec::new();
        for e in 0..5 {
            experiments.push(
                s.core
                    .create_experiment(&local, &format!("team-{e}"), vec![])
                    .await
                    .unwrap(),
            );
        }
        // Runs alternate between the two dataset versions; every 10th run yields a model version.
        let core = s.core.clone();
        let made: Vec<(usize, String)> = futures_util::stream::iter(0..RUNS)
            .map(|i| {
                let core = core.clone();
                let exp = experiments[i % 5].clone();
                async move {
                    let local = RequestCtx::local();
                    let run = core
                        .create_run(
                            &local,
                            &exp,
                            Some(&format!("r{i}")),
                            Some(i as i64),
                            None,
                            vec![],
                        )
                        .await
                        .unwrap();
                    let version = 1 + i % 2;
                    core.log_inputs(
                        &local,
                        &run.run_id,
                        vec![NewInput {
                            name: "train".into(),
                            digest: "0badc0de".into(),
                            source_type: "mlsec".into(),
                            source: format!("mlsec://shared/train@{version}"),
                            ..Default::default()
                        }],
                    )
                    .await
                    .unwrap();
                    (i, run.run_id)
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        s.core
            .create_registered_model(&local, "m", "", vec![])
            .await
            .unwrap();
        let mut first_version_run = None;
        for (i, run_id) in made.iter().filter(|(i, _)| i % 10 == 0) {
            let exp = &experiments[i % 5];
            let bytes = format!("weights {i}");
            let path = format!("{exp}/{run_id}/artifacts/model/w.bin");
            s.core
                .put_artifact(
                    &local,
                    &path,
                    futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(
                        bytes,
                    ))]),
                )
                .await
                .unwrap();
            let v = s
                .core
                .create_model_version(
                    &local,
                    "m",
                    VersionSource::Artifacts(format!("runs:/{run_id}/model")),
                    None,
                    "",
                    vec![],
                )
                .await
                .unwrap();
            if first_version_run.is_none() {
                first_version_run = Some((v.version.clone(), run_id.clone(), *i));
            }
        }
        let (first_version, first_run, first_i) = first_version_run.unwrap();
        s.core
            .move_alias(&local, "m", "champion", Some(&first_version))
            .await
            .unwrap();

        // Downstream: every run of dataset version 1 (the even runs), their versions, the alias.
        let reference = mlsec_core::VersionRef::parse("shared/train@1").unwrap();
        let down = s
            .core
            .lineage(
                &local,
                &LineageStart::Dataset(reference.clone()),
                Direction::Downstream,
            )
            .await
            .unwrap();
        assert_eq!(down.counts["run"], RUNS / 2);
        assert_eq!(
            down.counts["model_version"],
            RUNS / 10,
            "every 10th run is even"
        );
        assert_eq!(down.counts["alias"], 1);
        assert_eq!(down.root.digest.as_deref(), Some(digests[0].as_str()));
        let run_ids: BTreeSet<&str> = down.root.children.iter().map(|n| n.id.as_str()).collect();
        let expected: BTreeSet<&str> = made
            .iter()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, r)| r.as_str())
            .collect();
        assert_eq!(run_ids, expected);
        let text = mlsec_core::render_tree(&down);
        assert!(text.contains("alias @champion"));

        // Upstream: the champion was trained on exactly dataset version 1, by digest.
        let up = s
            .core
            .lineage(
                &local,
                &LineageStart::parse("model:m@champion").unwrap(),
                Direction::Upstream,
            )
            .await
            .unwrap();
        let run = &up.root.children[0];
        assert_eq!(run.id, first_run);
        assert_eq!(first_i % 2, 0);
        let ds = run
            .children
            .iter()
            .find(|c| c.kind == "dataset_version")
            .unwrap();
        assert_eq!(ds.id, "shared/train@1");
        assert_eq!(ds.digest.as_deref(), Some(digests[0].as_str()));

        // A caller who may read only one experiment sees its runs, and the rest only as a count.
        s.core
            .create_principal(
                &local,
                NewPrincipal {
                    id: "analyst".into(),
                    service_account: true,
                    display_name: None,
                    password: None,
                },
            )
            .await
            .unwrap();
        s.core
            .grant_role(&local, "analyst", "viewer", "experiment:team-0")
            .await
            .unwrap();
        s.core
            .grant_role(&local, "analyst", "viewer", "dataset:shared/*")
            .await
            .unwrap();
        let tok = s
            .core
            .create_token(
                &local,
                "analyst",
                NewToken {
                    name: "t".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .token;
        let ctx = s.core.authenticate(Some(&tok), None).await.unwrap();
        let limited = s
            .core
            .lineage(
                &ctx,
                &LineageStart::Dataset(reference),
                Direction::Downstream,
            )
            .await
            .unwrap();
        assert_eq!(
            limited.counts["run"],
            RUNS / 10,
            "team-0 holds every 5th run, half of them even"
        );
        assert_eq!(
            limited.hidden,
            RUNS / 2 - RUNS / 10 + RUNS / 10,
            "other teams' runs and every model version"
        );
    }
}

#[tokio::test]
async fn basic_credentials_carry_a_token_as_the_password() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for s in servers(1 << 20).await {
        let path = "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default";
        let with = |value: String| {
            reqwest::Client::new()
                .get(s.url(path))
                .header("authorization", value)
                .send()
        };
        for user in ["admin", "token", "", "anyone"] {
            let resp = with(format!("Basic {}", b64(&format!("{user}:{}", s.token))))
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "user {user:?}");
        }
        for bad in [
            format!("Basic {}", b64("admin:mlsec_not_a_token")),
            format!("Basic {}", b64("no-colon")),
            "Basic !!!not-base64".to_owned(),
            format!("Basic {}", "A".repeat(4096)),
        ] {
            let resp = with(bad.clone()).await.unwrap();
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{bad:.40}");
            let v: Value = resp.json().await.unwrap();
            assert_eq!(v["error_code"], "UNAUTHENTICATED", "{bad:.40}");
        }
    }
}

#[tokio::test]
async fn an_input_logged_again_keeps_its_first_pin() {
    for s in servers(1 << 20).await {
        let local = RequestCtx::local();
        let data = tempfile::tempdir().unwrap();
        for content in ["a\n1\n", "a\n2\n"] {
            std::fs::write(data.path().join("t.csv"), content).unwrap();
            s.core
                .add_dataset_from_path(&local, "pin/train", data.path(), "", "")
                .await
                .unwrap();
        }
        let exp = s
            .core
            .create_experiment(&local, "pins", vec![])
            .await
            .unwrap();
        let run = s
            .core
            .create_run(&local, &exp, Some("r"), None, None, vec![])
            .await
            .unwrap();
        let input = |v: u32| NewInput {
            name: "train".into(),
            digest: "0badc0de".into(),
            source_type: "mlsec".into(),
            source: format!("mlsec://pin/train@{v}"),
            ..Default::default()
        };
        let first = s
            .core
            .log_inputs(&local, &run.run_id, vec![input(1)])
            .await
            .unwrap();
        assert_eq!(first[0].mlsec_version.as_deref(), Some("pin/train@1"));
        let again = s
            .core
            .log_inputs(&local, &run.run_id, vec![input(2)])
            .await
            .unwrap();
        assert_eq!(again[0].mlsec_version.as_deref(), Some("pin/train@1"));
        assert_eq!(again[0].mlsec_digest, first[0].mlsec_digest);
    }
}
