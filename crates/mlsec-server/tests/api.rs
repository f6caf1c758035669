//! The HTTP API against a real server on a loopback port with a real SQLite store in a temp dir
//! (and PostgreSQL when `MLSEC_TEST_DATABASE_URL` is set).

mod common;

use common::{client, servers, start};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn public_routes_answer_without_credentials() {
    for s in servers(1 << 20).await {
        let c = client();
        assert_eq!(
            c.get(s.url("/healthz"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
            "ok"
        );
        let ready = c.get(s.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
        assert!(ready.headers().contains_key("x-request-id"));
        let doc: Value = c
            .get(s.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        assert!(doc["paths"]["/api/v1/blobs"]["post"].is_object());
        let missing = c.get(s.url("/nope")).send().await.unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let body: Value = missing.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found");
    }
}

/// Deny by default: every route the OpenAPI document marks as secured refuses a request without
/// valid credentials, so a route that forgets its extractor fails this test.
#[tokio::test]
async fn every_secured_route_refuses_missing_and_bad_tokens() {
    let s = start(None, 1 << 20).await;
    let c = client();
    let doc: Value = c
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let digest = format!("sha256:{}", "0".repeat(64));
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("security").is_none() {
                assert!(
                    path == "/healthz" || path == "/readyz" || path == "/api/v1/session/login",
                    "{method} {path} is not secured"
                );
                continue;
            }
            let url = s.url(&path.replace("{digest}", &digest));
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            for auth in [
                None,
                Some("Bearer nonsense".to_owned()),
                Some(format!(
                    "Bearer mlsec_{}_{}",
                    "0".repeat(16),
                    "1".repeat(64)
                )),
                Some(format!("Bearer {}x", s.token)),
            ] {
                let mut req = c.request(method.clone(), &url);
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                let resp = req.send().await.unwrap();
                assert_eq!(
                    resp.status(),
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} with {auth:?}"
                );
                assert!(resp.headers().contains_key("www-authenticate"));
            }
            checked += 1;
        }
    }
    assert!(checked >= 7, "only {checked} secured operations found");
    // Bad tokens (not the missing ones) were audited as denials.
    let denials = s
        .core
        .store()
        .audit_search(&mlsec_store::AuditQuery {
            action: Some("auth.authenticate".into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(denials.len(), checked * 3);
}

#[tokio::test]
async fn blob_round_trip_is_audited_with_the_request_id() {
    for s in servers(1 << 20).await {
        let who: Value = s.get_json("/api/v1/whoami").await;
        assert_eq!(who["id"], "admin");

        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let put = s
            .authed(reqwest::Method::POST, "/api/v1/blobs")
            .header("x-request-id", "req-42")
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), StatusCode::CREATED);
        assert_eq!(put.headers()["x-request-id"], "req-42");
        let body: Value = put.json().await.unwrap();
        let digest = body["digest"].as_str().unwrap().to_owned();
        assert_eq!(digest, mlsec_types::Digest::of(&data).to_string());
        assert_eq!(body["size"], 300_000);

        let again = s
            .authed(reqwest::Method::POST, "/api/v1/blobs")
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::OK);
        assert_eq!(again.json::<Value>().await.unwrap()["created"], false);

        let got = s
            .authed(reqwest::Method::GET, &format!("/api/v1/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), StatusCode::OK);
        assert_eq!(got.bytes().await.unwrap().as_ref(), data.as_slice());

        let v: Value = s.get_json(&format!("/api/v1/blobs/{digest}/verify")).await;
        assert_eq!(v["intact"], true);

        let bad = s
            .authed(reqwest::Method::GET, "/api/v1/blobs/sha256:xyz")
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            bad.json::<Value>().await.unwrap()["error"]["code"],
            "invalid_digest"
        );

        let events: Value = s.get_json("/api/v1/audit/events?action=blob.put").await;
        let events = events.as_array().unwrap();
        assert_eq!(events.len(), 2);
        let first = &events[1]["event"];
        assert_eq!(first["request_id"], "req-42");
        assert_eq!(first["actor"]["id"], "admin");
        assert_eq!(first["resource"], format!("blob:{digest}"));
        assert_eq!(first["details"]["new"], true);

        let report: Value = s.get_json("/api/v1/audit/verify").await;
        assert_eq!(report["failures"].as_array().unwrap().len(), 0, "{report}");
    }
}

#[tokio::test]
async fn oversized_upload_is_refused_and_leaves_nothing() {
    let s = start(None, 1000).await;
    let c = client();
    let resp = c
        .post(s.url("/api/v1/blobs"))
        .header("authorization", format!("Bearer {}", s.token))
        .body(vec![7u8; 5000])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(s.core.store().blob_count().await.unwrap(), 0);
    let tmp = s.core.local_blobs().unwrap().root().join("tmp");
    assert_eq!(
        std::fs::read_dir(tmp).unwrap().count(),
        0,
        "temporary file left behind"
    );
    assert!(
        !s.core
            .blobs()
            .contains(&mlsec_types::Digest::of(&[7u8; 5000]))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn corrupted_blob_on_disk_fails_verification() {
    let s = start(None, 1 << 20).await;
    let body: Value = s
        .authed(reqwest::Method::POST, "/api/v1/blobs")
        .body("model weights")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let digest = mlsec_types::Digest::parse(body["digest"].as_str().unwrap()).unwrap();
    std::fs::write(
        s.core.local_blobs().unwrap().path(&digest),
        "swapped weights",
    )
    .unwrap();
    let resp = s
        .authed(
            reqwest::Method::GET,
            &format!("/api/v1/blobs/{digest}/verify"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "integrity_violation"
    );
}
