//! Identity and access over HTTP, on SQLite and PostgreSQL: every route of the OpenAPI document
//! answers 401 without credentials, 403 to a principal without the permission and success to
//! the right role; tokens in every broken shape are refused; second factors are required exactly
//! for privileged actions and never accepted twice; sessions need their CSRF token; brute force
//! locks only the attacked account.

mod common;

use std::collections::BTreeSet;

use common::{Server, client, servers, start};
use mlsec_core::{NewPrincipal, NewToken, RequestCtx};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Needs {
    /// Any authenticated principal (about itself or the catalog).
    Anyone,
    /// Only a console session (step-up, logout).
    Session,
    /// This role; `true` when the action also needs a fresh second factor.
    Role(&'static str, bool),
}

/// Every operation of the API: method, OpenAPI path, who may call it, the concrete path, body.
fn operations(
    blob: &str,
    token_id: &str,
    run_id: &str,
) -> Vec<(&'static str, &'static str, Needs, String, Option<Body>)> {
    use Needs::*;
    let b = |v: Value| Some(Body::Json(v));
    vec![
        (
            "get",
            "/api/v1/whoami",
            Anyone,
            "/api/v1/whoami".into(),
            None,
        ),
        (
            "post",
            "/api/v1/blobs",
            Role("ci", false),
            "/api/v1/blobs".into(),
            Some(Body::Bytes(b"model bytes".to_vec())),
        ),
        (
            "get",
            "/api/v1/blobs/{digest}",
            Role("viewer", false),
            format!("/api/v1/blobs/{blob}"),
            None,
        ),
        (
            "get",
            "/api/v1/blobs/{digest}/verify",
            Role("viewer", false),
            format!("/api/v1/blobs/{blob}/verify"),
            None,
        ),
        (
            "get",
            "/api/v1/audit/events",
            Role("auditor", false),
            "/api/v1/audit/events".into(),
            None,
        ),
        (
            "get",
            "/api/v1/audit/checkpoints",
            Role("auditor", false),
            "/api/v1/audit/checkpoints".into(),
            None,
        ),
        (
            "get",
            "/api/v1/audit/verify",
            Role("auditor", false),
            "/api/v1/audit/verify".into(),
            None,
        ),
        (
            "get",
            "/api/v1/principals",
            Role("auditor", false),
            "/api/v1/principals".into(),
            None,
        ),
        (
            "post",
            "/api/v1/principals",
            Role("admin", false),
            "/api/v1/principals".into(),
            b(json!({"id": "newcomer", "password": "a long enough password"})),
        ),
        (
            "get",
            "/api/v1/principals/{id}",
            Role("auditor", false),
            "/api/v1/principals/target".into(),
            None,
        ),
        (
            "patch",
            "/api/v1/principals/{id}",
            Role("admin", false),
            "/api/v1/principals/target".into(),
            b(json!({"display_name": "Target O'Brien; --"})),
        ),
        (
            "delete",
            "/api/v1/principals/{id}",
            Role("admin", false),
            "/api/v1/principals/victim".into(),
            None,
        ),
        (
            "put",
            "/api/v1/principals/{id}/password",
            Role("admin", false),
            "/api/v1/principals/target/password".into(),
            b(json!({"password": "another long password"})),
        ),
        (
            "get",
            "/api/v1/principals/{id}/tokens",
            Role("auditor", false),
            "/api/v1/principals/target/tokens".into(),
            None,
        ),
        (
            "post",
            "/api/v1/principals/{id}/tokens",
            Role("admin", true),
            "/api/v1/principals/target/tokens".into(),
            b(json!({"name": "ci", "read_only": true})),
        ),
        (
            "delete",
            "/api/v1/tokens/{token_id}",
            Role("admin", true),
            format!("/api/v1/tokens/{token_id}"),
            None,
        ),
        ("get", "/api/v1/roles", Anyone, "/api/v1/roles".into(), None),
        (
            "post",
            "/api/v1/principals/{id}/roles",
            Role("admin", true),
            "/api/v1/principals/target/roles".into(),
            b(json!({"role": "viewer", "scope": "project:fraud"})),
        ),
        (
            "delete",
            "/api/v1/principals/{id}/roles/{role}",
            Role("admin", true),
            "/api/v1/principals/target/roles/auditor?scope=project:x".into(),
            None,
        ),
        (
            "get",
            "/api/v1/principals/{id}/mfa",
            Role("auditor", false),
            "/api/v1/principals/target/mfa".into(),
            None,
        ),
        (
            "post",
            "/api/v1/principals/{id}/mfa",
            Role("admin", false),
            "/api/v1/principals/target/mfa".into(),
            None,
        ),
        (
            "post",
            "/api/v1/principals/{id}/mfa/confirm",
            Role("admin", false),
            "/api/v1/principals/enrollee/mfa/confirm".into(),
            Some(Body::EnrolleeCode),
        ),
        (
            "delete",
            "/api/v1/principals/{id}/mfa",
            Role("admin", false),
            "/api/v1/principals/holder/mfa".into(),
            None,
        ),
        (
            "get",
            "/api/v1/policy",
            Role("auditor", false),
            "/api/v1/policy".into(),
            None,
        ),
        (
            "put",
            "/api/v1/policy",
            Role("admin", true),
            "/api/v1/policy".into(),
            Some(Body::Text(mlsec_core::policy::DEFAULT_POLICY.into())),
        ),
        (
            "post",
            "/api/v1/policy/check",
            Role("auditor", false),
            "/api/v1/policy/check".into(),
            b(json!({"principal": "target", "action": "model.read", "resource": "model:fraud/x"})),
        ),
        (
            "get",
            "/api/v1/policy/schema",
            Anyone,
            "/api/v1/policy/schema".into(),
            None,
        ),
        (
            "get",
            "/api/v1/datasets",
            Anyone,
            "/api/v1/datasets".into(),
            None,
        ),
        (
            "get",
            "/api/v1/datasets/{name}/versions",
            Role("viewer", false),
            "/api/v1/datasets/fraud%2Ftrain/versions".into(),
            None,
        ),
        (
            "post",
            "/api/v1/datasets/{name}/versions",
            Role("ci", false),
            "/api/v1/datasets/fraud%2Ftrain/versions".into(),
            b(json!({"files": [{"path": "extra.bin", "sha256": blob}], "message": "more"})),
        ),
        (
            "get",
            "/api/v1/datasets/{name}/versions/{version}",
            Role("viewer", false),
            "/api/v1/datasets/fraud%2Ftrain/versions/1".into(),
            None,
        ),
        (
            "get",
            "/api/v1/datasets/{name}/versions/{version}/profile",
            Role("viewer", false),
            "/api/v1/datasets/fraud%2Ftrain/versions/1/profile".into(),
            None,
        ),
        (
            "post",
            "/api/v1/datasets/{name}/versions/{version}/verify",
            Role("viewer", false),
            "/api/v1/datasets/fraud%2Ftrain/versions/1/verify".into(),
            b(json!({"files": []})),
        ),
        (
            "post",
            "/api/v1/datasets/{name}/versions/{version}/check",
            Role("ci", false),
            "/api/v1/datasets/fraud%2Ftrain/versions/1/check".into(),
            b(json!({})),
        ),
        (
            "get",
            "/api/v1/datasets/{name}/versions/{version}/report",
            Role("viewer", false),
            "/api/v1/datasets/fraud%2Ftrain/versions/1/report".into(),
            None,
        ),
        (
            "get",
            "/api/v1/datasets/{name}/schema",
            Role("viewer", false),
            "/api/v1/datasets/fraud%2Ftrain/schema".into(),
            None,
        ),
        (
            "put",
            "/api/v1/datasets/{name}/schema",
            Role("reviewer", true),
            "/api/v1/datasets/fraud%2Ftrain/schema".into(),
            Some(Body::Text(
                r#"{"columns": [{"name": "x", "kind": "integer", "nullable": false}]}"#.into(),
            )),
        ),
        (
            "get",
            "/api/v1/session",
            Anyone,
            "/api/v1/session".into(),
            None,
        ),
        (
            "post",
            "/api/v1/session/step-up",
            Session,
            "/api/v1/session/step-up".into(),
            Some(Body::SessionCode),
        ),
        (
            "post",
            "/api/v1/session/logout",
            Session,
            "/api/v1/session/logout".into(),
            None,
        ),
        (
            "get",
            "/api/v1/runs/{run_id}",
            Role("viewer", false),
            format!("/api/v1/runs/{run_id}"),
            None,
        ),
        (
            "get",
            "/api/v1/models",
            Anyone,
            "/api/v1/models".into(),
            None,
        ),
        (
            "post",
            "/api/v1/models/{name}/versions",
            Role("ci", false),
            "/api/v1/models/team%2Ffraud/versions".into(),
            b(json!({"files": [{"path": "weights.bin", "sha256": blob}]})),
        ),
        (
            "get",
            "/api/v1/models/{name}/versions/{version}",
            Role("viewer", false),
            "/api/v1/models/team%2Ffraud/versions/1".into(),
            None,
        ),
        (
            "get",
            "/api/v1/models/{name}/versions/{version}/verification",
            Role("viewer", false),
            "/api/v1/models/team%2Ffraud/versions/1/verification".into(),
            None,
        ),
        (
            "put",
            "/api/v1/models/{name}/aliases/{alias}",
            Role("maintainer", false),
            "/api/v1/models/team%2Ffraud/aliases/champion".into(),
            b(json!({"version": "1"})),
        ),
        (
            "put",
            "/api/v1/models/{name}/aliases/{alias}",
            Role("maintainer", true),
            "/api/v1/models/team%2Ffraud/aliases/production".into(),
            b(json!({"version": "1"})),
        ),
        (
            "delete",
            "/api/v1/models/{name}/aliases/{alias}",
            Role("maintainer", false),
            "/api/v1/models/team%2Ffraud/aliases/staging".into(),
            None,
        ),
        (
            "get",
            "/api/v1/lineage",
            Role("viewer", false),
            "/api/v1/lineage?start=model:team/fraud/1&direction=upstream".into(),
            None,
        ),
    ]
}

#[derive(Clone)]
enum Body {
    Json(Value),
    Bytes(Vec<u8>),
    Text(String),
    /// A current code of the `enrollee` account's pending factor.
    EnrolleeCode,
    /// A current code of the session user's factor.
    SessionCode,
}

const PUBLIC: &[&str] = &["get /healthz", "get /readyz", "post /api/v1/session/login"];

/// Creates `id` with `role` on the server scope; with `mfa`, also enrols a second factor and
/// returns a recovery code to present as the one-time code.
async fn principal_with(
    s: &Server,
    id: &str,
    role: Option<&str>,
    mfa: bool,
) -> (String, Option<String>) {
    let local = RequestCtx::local();
    s.core
        .create_principal(
            &local,
            NewPrincipal {
                id: id.into(),
                password: Some("a long enough password".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    if let Some(role) = role {
        s.core.grant_role(&local, id, role, "server").await.unwrap();
    }
    let recovery = if mfa {
        s.core.enroll_totp(&local, id).await.unwrap();
        let code = s
            .core
            .current_totp_code(id, s.clock.now_millis())
            .await
            .unwrap();
        Some(
            s.core
                .confirm_totp(&local, id, &code)
                .await
                .unwrap()
                .remove(0),
        )
    } else {
        None
    };
    let token = s
        .core
        .create_token(
            &local,
            id,
            NewToken {
                name: "test".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .token;
    (token, recovery)
}

fn request(
    s: &Server,
    method: &str,
    path: &str,
    body: Option<&Body>,
    code_for: impl Fn(&Body) -> Option<String>,
) -> reqwest::RequestBuilder {
    let method: Method = method.to_uppercase().parse().unwrap();
    let mut r = client().request(method, s.url(path));
    match body {
        Some(Body::Json(v)) => r = r.json(v),
        Some(Body::Bytes(b)) => r = r.body(b.clone()),
        Some(Body::Text(t)) => r = r.header("content-type", "text/plain").body(t.clone()),
        Some(other) => r = r.json(&json!({ "code": code_for(other).unwrap() })),
        None => {}
    }
    r
}

async fn login(s: &Server, id: &str, code: Option<String>) -> (String, String) {
    let resp = client()
        .post(s.url("/api/v1/session/login"))
        .json(&json!({"principal": id, "password": "a long enough password", "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{:?}", resp.text().await);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP: no Secure flag");
    let value = cookie.split(';').next().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    (value, body["csrf_token"].as_str().unwrap().to_owned())
}

async fn setup_fixtures(s: &Server) -> (String, String, String) {
    let local = RequestCtx::local();
    for id in ["target", "victim", "enrollee", "holder"] {
        principal_with(s, id, None, id == "holder").await;
    }
    s.core
        .grant_role(&local, "target", "auditor", "project:x")
        .await
        .unwrap();
    s.core.enroll_totp(&local, "enrollee").await.unwrap();
    let token_id = s.core.list_tokens(&local, "target").await.unwrap()[0]
        .id
        .clone();
    let blob = s
        .core
        .put_blob_file(&local, &{
            let p = s._dir_path().join("fixture.bin");
            std::fs::write(&p, b"fixture").unwrap();
            p
        })
        .await
        .unwrap()
        .digest
        .to_string();
    let data = s._dir_path().join("fixture-data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("rows.csv"), "x,y\n1,a\n2,b\n3,a\n").unwrap();
    s.core
        .add_dataset_from_path(&local, "fraud/train", &data, "fixture", "test")
        .await
        .unwrap();
    let v1 = mlsec_core::VersionRef::parse("fraud/train@1").unwrap();
    s.core
        .check_dataset(&local, &v1, Default::default())
        .await
        .unwrap();
    let exp = s
        .core
        .create_experiment(&local, "fixture", vec![])
        .await
        .unwrap();
    let run = s
        .core
        .create_run(&local, &exp, Some("fixture"), None, None, vec![])
        .await
        .unwrap();
    s.core
        .create_registered_model(&local, "team/fraud", "", vec![])
        .await
        .unwrap();
    let staged: mlsec_core::StagedFile =
        serde_json::from_value(json!({"path": "weights.bin", "sha256": blob})).unwrap();
    s.core
        .create_model_version(
            &local,
            "team/fraud",
            mlsec_core::VersionSource::Blobs(vec![staged]),
            None,
            "",
            vec![],
        )
        .await
        .unwrap();
    // The alias the table's delete row removes.
    s.core
        .move_alias(&local, "team/fraud", "staging", Some("1"))
        .await
        .unwrap();
    (blob, token_id, run.run_id)
}

#[tokio::test]
async fn every_route_answers_401_403_and_success_by_role() {
    for s in servers(1 << 20).await {
        let doc: Value = client()
            .get(s.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert(format!("{method} {path}"));
            }
        }
        let (blob, token_id, run_id) = setup_fixtures(&s).await;
        let ops = operations(&blob, &token_id, &run_id);
        let covered: BTreeSet<String> = ops
            .iter()
            .map(|(m, p, ..)| format!("{m} {p}"))
            .chain(PUBLIC.iter().map(|p| p.to_string()))
            .collect();
        assert_eq!(
            documented, covered,
            "every documented operation has a row here, and only those"
        );

        let (nobody, _) = principal_with(&s, "nobody", None, false).await;
        for (i, (method, template, needs, path, body)) in ops.iter().enumerate() {
            let what = format!("{method} {template}");
            let code_for = |_: &Body| Some("000000".to_owned());
            let anon = request(&s, method, path, body.as_ref(), code_for)
                .send()
                .await
                .unwrap();
            assert_eq!(
                anon.status(),
                StatusCode::UNAUTHORIZED,
                "{what} without credentials"
            );

            let denied = request(&s, method, path, body.as_ref(), code_for)
                .bearer_auth(&nobody)
                .send()
                .await
                .unwrap();
            match needs {
                Needs::Role(..) => {
                    assert_eq!(
                        denied.status(),
                        StatusCode::FORBIDDEN,
                        "{what} without the permission"
                    );
                    let v: Value = denied.json().await.unwrap();
                    assert_eq!(v["error"]["code"], "permission_denied", "{what}");
                }
                Needs::Anyone => {
                    assert!(denied.status().is_success(), "{what}: {}", denied.status())
                }
                Needs::Session => assert_eq!(
                    denied.status(),
                    StatusCode::BAD_REQUEST,
                    "{what} with a token"
                ),
            }

            let ok = match needs {
                Needs::Role(role, privileged) => {
                    let (token, recovery) =
                        principal_with(&s, &format!("caller-{i}"), Some(role), *privileged).await;
                    if *privileged {
                        let without = request(&s, method, path, body.as_ref(), code_for)
                            .bearer_auth(&token)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(
                            without.status(),
                            StatusCode::FORBIDDEN,
                            "{what} without a second factor"
                        );
                        let v: Value = without.json().await.unwrap();
                        assert_eq!(v["error"]["code"], "second_factor_required", "{what}");
                    }
                    let core = s.core.clone();
                    let now = s.clock.now_millis();
                    let enrollee_code = core.current_totp_code("enrollee", now).await.ok();
                    let mut r = request(&s, method, path, body.as_ref(), |_| enrollee_code.clone())
                        .bearer_auth(&token);
                    if let Some(code) = recovery {
                        r = r.header("x-mlsec-otp", code);
                    }
                    r.send().await.unwrap()
                }
                Needs::Anyone => request(&s, method, path, body.as_ref(), code_for)
                    .bearer_auth(&nobody)
                    .send()
                    .await
                    .unwrap(),
                Needs::Session => {
                    let id = format!("caller-{i}");
                    principal_with(&s, &id, None, true).await;
                    s.clock.advance_millis(30_000);
                    let code = s
                        .core
                        .current_totp_code(&id, s.clock.now_millis())
                        .await
                        .unwrap();
                    let (cookie, csrf) = login(&s, &id, Some(code)).await;
                    s.clock.advance_millis(30_000);
                    let code = s
                        .core
                        .current_totp_code(&id, s.clock.now_millis())
                        .await
                        .unwrap();
                    request(&s, method, path, body.as_ref(), |_| Some(code.clone()))
                        .header("cookie", cookie)
                        .header("x-csrf-token", csrf)
                        .send()
                        .await
                        .unwrap()
                }
            };
            let status = ok.status();
            assert!(
                status.is_success(),
                "{what} with the right role: {status} {}",
                ok.text().await.unwrap()
            );
        }
        // Every denial above is in the audit log with its reasons.
        let denials = s
            .core
            .store()
            .audit_search(&mlsec_store::AuditQuery {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        let denied: Vec<Value> = denials
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.canonical).unwrap())
            .filter(|e| e["decision"] == "deny" && e["actor"]["id"] == "nobody")
            .collect();
        assert!(
            denied.len()
                >= ops
                    .iter()
                    .filter(|o| matches!(o.2, Needs::Role(..)))
                    .count()
        );
        assert!(denied.iter().all(|e| e["details"]["reasons"].is_array()));
    }
}

#[tokio::test]
async fn broken_tokens_are_refused_and_revocation_is_immediate() {
    for s in servers(1 << 20).await {
        let local = RequestCtx::local();
        let (token, _) = principal_with(&s, "alice", Some("viewer"), false).await;
        let get = |t: String| {
            let url = s.url("/api/v1/whoami");
            async move {
                client()
                    .get(url)
                    .header("authorization", t)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(get(format!("Bearer {token}")).await, StatusCode::OK);
        let (_, secret) = token.rsplit_once('_').unwrap();
        for bad in [
            format!("Bearer {}", &token[..token.len() - 1]),
            format!("Bearer {}", token.replacen("mlsec_", "mlsek_", 1)),
            format!("Bearer {}", secret),
            "Bearer ".to_owned(),
            format!("Basic {token}"),
            format!("Bearer {token}{token}"),
            format!("Bearer {}' OR '1'='1", &token[..30]),
        ] {
            assert_eq!(get(bad.clone()).await, StatusCode::UNAUTHORIZED, "{bad}");
        }
        // Non-UTF-8 bytes in the header.
        let raw = client()
            .get(s.url("/api/v1/whoami"))
            .header(
                "authorization",
                reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(raw.status(), StatusCode::UNAUTHORIZED);

        // Disabling the owner stops the (cached) token at once; enabling brings it back.
        s.core
            .update_principal(&local, "alice", None, Some(true))
            .await
            .unwrap();
        assert_eq!(
            get(format!("Bearer {token}")).await,
            StatusCode::UNAUTHORIZED
        );
        s.core
            .update_principal(&local, "alice", None, Some(false))
            .await
            .unwrap();
        assert_eq!(get(format!("Bearer {token}")).await, StatusCode::OK);

        // Revocation is immediate.
        let id = s.core.list_tokens(&local, "alice").await.unwrap()[0]
            .id
            .clone();
        s.core.revoke_token(&local, &id).await.unwrap();
        assert_eq!(
            get(format!("Bearer {token}")).await,
            StatusCode::UNAUTHORIZED
        );

        // Expiry, measured on the server's clock.
        let short = s
            .core
            .create_token(
                &local,
                "alice",
                NewToken {
                    name: "short".into(),
                    expires_in_days: Some(1),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .token;
        assert_eq!(get(format!("Bearer {short}")).await, StatusCode::OK);
        s.clock.advance_millis(86_400_000 + 1);
        assert_eq!(
            get(format!("Bearer {short}")).await,
            StatusCode::UNAUTHORIZED
        );

        // Deleting the owner ends its tokens too.
        let (bob, _) = principal_with(&s, "bob", Some("viewer"), false).await;
        assert_eq!(get(format!("Bearer {bob}")).await, StatusCode::OK);
        s.core.delete_principal(&local, "bob").await.unwrap();
        assert_eq!(get(format!("Bearer {bob}")).await, StatusCode::UNAUTHORIZED);

        // A read-only token cannot write even though its owner can.
        let (_, _) = principal_with(&s, "carol", Some("ci"), false).await;
        let ro = s
            .core
            .create_token(
                &local,
                "carol",
                NewToken {
                    name: "ro".into(),
                    read_only: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .token;
        let put = client()
            .post(s.url("/api/v1/blobs"))
            .bearer_auth(&ro)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), StatusCode::FORBIDDEN);

        // The secret is stored only as a hash: 32 bytes, never the presented text.
        let rows: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT secret_hash FROM api_tokens")
            .fetch_all(s.core.store().pool())
            .await
            .unwrap();
        assert!(rows.len() >= 5, "{} tokens stored", rows.len());
        for (h,) in rows {
            assert_eq!(h.len(), 32);
        }
    }
}

#[tokio::test]
async fn second_factor_codes_are_required_for_privileged_actions_and_never_replayed() {
    for s in servers(1 << 20).await {
        let (token, _) = principal_with(&s, "root", Some("admin"), true).await;
        principal_with(&s, "dave", None, false).await;
        s.clock.advance_millis(30_000);
        let grant = |code: Option<String>| {
            let mut r = client()
                .post(s.url("/api/v1/principals/dave/roles"))
                .bearer_auth(&token)
                .json(&json!({"role": "viewer"}));
            if let Some(c) = code {
                r = r.header("x-mlsec-otp", c);
            }
            async move { r.send().await.unwrap() }
        };
        // A non-privileged action needs no code.
        let list = client()
            .get(s.url("/api/v1/principals"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(list.status(), StatusCode::OK);
        assert_eq!(grant(None).await.status(), StatusCode::FORBIDDEN);
        let code = s
            .core
            .current_totp_code("root", s.clock.now_millis())
            .await
            .unwrap();
        assert_eq!(grant(Some(code.clone())).await.status(), StatusCode::OK);
        let replay = grant(Some(code.clone())).await;
        assert_eq!(
            replay.status(),
            StatusCode::FORBIDDEN,
            "a code is accepted once"
        );
        let v: Value = replay.json().await.unwrap();
        assert_eq!(v["error"]["code"], "second_factor_required");
        assert_eq!(
            grant(Some("123456".into())).await.status(),
            StatusCode::FORBIDDEN
        );
        s.clock.advance_millis(30_000);
        let next = s
            .core
            .current_totp_code("root", s.clock.now_millis())
            .await
            .unwrap();
        assert_eq!(grant(Some(next)).await.status(), StatusCode::OK);

        // A console session: privileged actions need a step-up, which lasts five minutes.
        s.clock.advance_millis(30_000);
        let code = s
            .core
            .current_totp_code("root", s.clock.now_millis())
            .await
            .unwrap();
        let (cookie, csrf) = login(&s, "root", Some(code)).await;
        let with_session = |path: &str, csrf: Option<&str>| {
            let mut r = client()
                .post(s.url(path))
                .header("cookie", cookie.clone())
                .json(&json!({"role": "viewer", "scope": "project:p"}));
            if let Some(c) = csrf {
                r = r.header("x-csrf-token", c);
            }
            async move { r.send().await.unwrap().status() }
        };
        assert_eq!(
            with_session("/api/v1/principals/dave/roles", None).await,
            StatusCode::FORBIDDEN,
            "no CSRF token"
        );
        assert_eq!(
            with_session(
                "/api/v1/principals/dave/roles",
                Some("0".repeat(64).as_str())
            )
            .await,
            StatusCode::FORBIDDEN,
            "wrong CSRF token"
        );
        assert_eq!(
            with_session("/api/v1/principals/dave/roles", Some(&csrf)).await,
            StatusCode::OK,
            "login with a code counts as a step-up"
        );
        s.clock.advance_millis(6 * 60_000);
        assert_eq!(
            with_session("/api/v1/principals/dave/roles", Some(&csrf)).await,
            StatusCode::FORBIDDEN,
            "step-up expired"
        );
        let code = s
            .core
            .current_totp_code("root", s.clock.now_millis())
            .await
            .unwrap();
        let step = client()
            .post(s.url("/api/v1/session/step-up"))
            .header("cookie", cookie.clone())
            .header("x-csrf-token", &csrf)
            .json(&json!({"code": code}))
            .send()
            .await
            .unwrap();
        assert_eq!(step.status(), StatusCode::OK);
        assert_eq!(
            with_session("/api/v1/principals/dave/roles", Some(&csrf)).await,
            StatusCode::OK
        );
        // Logging out ends the session.
        let out = client()
            .post(s.url("/api/v1/session/logout"))
            .header("cookie", cookie.clone())
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(out.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            with_session("/api/v1/principals/dave/roles", Some(&csrf)).await,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn brute_force_locks_the_attacked_account_only() {
    for s in servers(1 << 20).await {
        principal_with(&s, "alice", None, false).await;
        principal_with(&s, "bob", None, false).await;
        let attacker = RequestCtx::anonymous().with_source(Some("203.0.113.9".into()));
        let attempt = |who: &'static str, pw: &'static str, ctx: RequestCtx| {
            let core = s.core.clone();
            async move {
                core.login(
                    &ctx,
                    mlsec_core::LoginRequest {
                        principal: who,
                        password: pw,
                        code: None,
                    },
                )
                .await
            }
        };
        let mut locked = 0;
        for _ in 0..2000 {
            match attempt("alice", "wrong password!!", attacker.clone()).await {
                Err(mlsec_core::CoreError::TooManyAttempts { retry_after_secs }) => {
                    locked += 1;
                    assert!(retry_after_secs <= 15 * 60);
                }
                Err(mlsec_core::CoreError::Unauthenticated) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(
            locked >= 1990,
            "locked after a handful of failures ({locked})"
        );
        // The right password does not help alice while the lock holds…
        let elsewhere = RequestCtx::anonymous().with_source(Some("198.51.100.7".into()));
        assert!(matches!(
            attempt("alice", "a long enough password", elsewhere.clone()).await,
            Err(mlsec_core::CoreError::TooManyAttempts { .. })
        ));
        // …but bob, from his own address, is not affected.
        assert!(
            attempt("bob", "a long enough password", elsewhere.clone())
                .await
                .is_ok()
        );
        // Locks expire.
        s.clock.advance_millis(16 * 60_000);
        assert!(
            attempt("alice", "a long enough password", elsewhere)
                .await
                .is_ok()
        );
        // Over HTTP: wrong answers are 401, locked ones 429 with Retry-After, never a 5xx.
        let mut saw_429 = false;
        for _ in 0..12 {
            let r = client()
                .post(s.url("/api/v1/session/login"))
                .json(&json!({"principal": "bob", "password": "nope nope nope"}))
                .send()
                .await
                .unwrap();
            assert!(
                matches!(
                    r.status(),
                    StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
                ),
                "{}",
                r.status()
            );
            if r.status() == StatusCode::TOO_MANY_REQUESTS {
                assert!(r.headers().contains_key("retry-after"));
                saw_429 = true;
            }
        }
        assert!(saw_429);
        let failures = s
            .core
            .store()
            .audit_search(&mlsec_store::AuditQuery {
                action: Some("session.login".into()),
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(failures.len() >= 1000, "failed logins are audited");
    }
}

#[tokio::test]
async fn hostile_input_gets_clear_4xx_answers() {
    let s = start(None, 1 << 20).await;
    // SQL metacharacters in ids are refused by name; in display names they are just text.
    let r = s
        .authed(Method::POST, "/api/v1/principals")
        .json(&json!({"id": "x'; DROP TABLE principals; --"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = s
        .authed(Method::POST, "/api/v1/principals")
        .json(&json!({"id": "eve", "display_name": "Robert'); DROP TABLE principals;--"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        s.get_json("/api/v1/principals/eve").await["display_name"],
        "Robert'); DROP TABLE principals;--"
    );
    // Unknown fields, wrong types, broken JSON.
    for body in [
        r#"{"id": "frank", "admin": true}"#,
        r#"{"id": 5}"#,
        "{",
        "\u{0}",
    ] {
        let r = s
            .authed(Method::POST, "/api/v1/principals")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{body}: {}", r.status());
    }
    // Oversized header and body.
    let r = client()
        .get(s.url("/api/v1/whoami"))
        .header("authorization", format!("Bearer {}", "a".repeat(200_000)))
        .send()
        .await;
    if let Ok(r) = r {
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    let huge = json!({"principal": "a".repeat(3 << 20), "password": "x"});
    let r = client()
        .post(s.url("/api/v1/session/login"))
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let r = client()
        .post(s.url("/api/v1/session/login"))
        .json(&json!({"principal": "admin", "password": "p".repeat(5000)}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    // An invalid policy changes nothing.
    let before = s.get_json("/api/v1/policy").await;
    let r = s
        .authed(Method::PUT, "/api/v1/policy")
        .header("x-mlsec-otp", "000000")
        .body("permit(")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    assert_eq!(
        s.get_json("/api/v1/policy").await["digest"],
        before["digest"]
    );
    // The server still answers.
    assert_eq!(s.get_json("/api/v1/whoami").await["id"], "admin");
}
