//! Datasets over HTTP on SQLite and PostgreSQL: upload blobs, record versions, verify a working
//! copy, check against the last approved version (poisoned versions are quarantined), read the
//! report; every step is in the audit log. The report renders in headless Chromium without
//! console errors.

mod common;

use common::servers;
use mlsec_core::data::synth::{self, Plant, Spec};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn upload(s: &common::Server, bytes: Vec<u8>) -> String {
    let resp = s
        .authed(Method::POST, "/api/v1/blobs")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
    let v: Value = resp.json().await.unwrap();
    v["digest"].as_str().unwrap().to_owned()
}

fn parquet_bytes(batch: &mlsec_core::data::arrow::array::RecordBatch) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.parquet");
    synth::write(batch, &p).unwrap();
    std::fs::read(p).unwrap()
}

#[tokio::test]
async fn versions_checks_and_reports_over_http() {
    for s in servers(64 << 20).await {
        let spec = Spec::labelled(5000);
        let reference = synth::generate(&spec, 1, &Plant::default(), None);
        let clean = synth::generate(&spec, 2, &Plant::default(), Some(&reference));
        let poisoned = synth::generate(
            &spec,
            3,
            &Plant {
                duplicates: 0.03,
                label_flips: 0.02,
                ..Plant::default()
            },
            // Flipped rows are copies of the approved version's rows with the label changed.
            Some(&clean),
        );
        let mut digests = Vec::new();
        for batch in [&reference, &clean, &poisoned] {
            digests.push(upload(&s, parquet_bytes(batch)).await);
        }
        let readme = upload(&s, b"labelled transactions".to_vec()).await;

        let add = |i: usize| {
            let body = json!({
                "files": [{"path": "train.parquet", "sha256": digests[i]}, {"path": "README", "sha256": readme}],
                "message": format!("drop {i}"),
                "source": "s3://bucket/drop",
            });
            s.authed(Method::POST, "/api/v1/datasets/fraud%2Ftx/versions")
                .json(&body)
                .send()
        };
        let v1 = add(0).await.unwrap();
        assert_eq!(v1.status(), StatusCode::CREATED);
        let v1: Value = v1.json().await.unwrap();
        assert_eq!(v1["version"], 1);
        assert_eq!(v1["rows"], 5000);
        assert_eq!(v1["schema_inferred"], true);
        // The same content again is the same version, not a new one.
        let again = add(0).await.unwrap();
        assert_eq!(again.status(), StatusCode::OK);
        assert_eq!(again.json::<Value>().await.unwrap()["version"], 1);
        for i in [1, 2] {
            assert_eq!(add(i).await.unwrap().status(), StatusCode::CREATED);
        }

        let check = |n: u32| {
            s.authed(
                Method::POST,
                &format!("/api/v1/datasets/fraud%2Ftx/versions/{n}/check"),
            )
            .json(&json!({}))
            .send()
        };
        let c1: Value = check(1).await.unwrap().json().await.unwrap();
        assert_eq!(c1["verdict"], "passed", "{c1}");
        let c2: Value = check(2).await.unwrap().json().await.unwrap();
        assert_eq!(c2["verdict"], "passed", "{}", c2["outcome"]["reasons"]);
        assert_eq!(c2["outcome"]["reference"], "fraud/tx@1");
        let c3: Value = check(3).await.unwrap().json().await.unwrap();
        assert_eq!(c3["verdict"], "failed");
        assert_eq!(c3["quarantined"], true);
        // The reference is the newest passed version before it.
        assert_eq!(c3["outcome"]["reference"], "fraud/tx@2");
        let fired: Vec<&str> = c3["outcome"]["poison"]["signals"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["fired"] == true)
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert!(
            fired.contains(&"exact_duplicates") && fired.contains(&"label_conflicts"),
            "{fired:?}"
        );

        // Loosening the thresholds is a gate decision: it needs dataset.approve (and so a second
        // factor); thresholds out of range are refused before anything runs.
        let loose = s
            .authed(Method::POST, "/api/v1/datasets/fraud%2Ftx/versions/3/check")
            .json(&json!({"drift": {"drift_share": 1.0}, "poison": {"duplicate_tolerance": 1.0}}))
            .send()
            .await
            .unwrap();
        assert_eq!(loose.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            loose.json::<Value>().await.unwrap()["error"]["code"],
            "second_factor_required"
        );
        let silly = s
            .authed(Method::POST, "/api/v1/datasets/fraud%2Ftx/versions/3/check")
            .json(&json!({"poison": {"near_cell": 0.0}}))
            .send()
            .await
            .unwrap();
        assert_eq!(silly.status(), StatusCode::BAD_REQUEST);
        let unknown = s
            .authed(Method::POST, "/api/v1/datasets/fraud%2Ftx/versions/3/check")
            .json(&json!({"poison": {"no_such_option": 1}}))
            .send()
            .await
            .unwrap();
        assert!(unknown.status().is_client_error());
        // A caller who may not read a dataset learns nothing about it: 403 whether or not the
        // version exists.
        let local = mlsec_core::RequestCtx::local();
        s.core
            .create_principal(
                &local,
                mlsec_core::NewPrincipal {
                    id: "outsider".into(),
                    service_account: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let outsider = s
            .core
            .create_token(
                &local,
                "outsider",
                mlsec_core::NewToken {
                    name: "t".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .token;
        for path in [
            "/api/v1/datasets/fraud%2Ftx/versions/1",
            "/api/v1/datasets/fraud%2Ftx/versions/999",
            "/api/v1/datasets/nothing/versions/1",
        ] {
            let r = common::client()
                .get(s.url(path))
                .bearer_auth(&outsider)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        }

        let versions = s.get_json("/api/v1/datasets/fraud%2Ftx/versions").await;
        let statuses: Vec<(&str, bool)> = versions
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["status"].as_str().unwrap(),
                    v["quarantined"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            statuses,
            vec![("failed", true), ("passed", false), ("passed", false)]
        );

        let detail = s.get_json("/api/v1/datasets/fraud%2Ftx/versions/3").await;
        assert_eq!(detail["files"].as_array().unwrap().len(), 2);
        assert_eq!(detail["last_check"]["verdict"], "failed");
        let by_digest = s
            .get_json(&format!(
                "/api/v1/datasets/fraud%2Ftx/versions/{}",
                detail["digest"].as_str().unwrap()
            ))
            .await;
        assert_eq!(by_digest["version"], 3);

        let report = s
            .authed(Method::GET, "/api/v1/datasets/fraud%2Ftx/versions/3/report")
            .send()
            .await
            .unwrap();
        assert_eq!(report.status(), StatusCode::OK);
        assert!(
            report.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("sandbox")
        );
        let html = report.text().await.unwrap();
        assert!(html.contains("exact_duplicates") && html.contains("<svg"));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no external requests"
        );

        // Verify: the working copy's list against the version.
        let files = detail["files"].as_array().unwrap();
        let mut working: Vec<Value> = files
            .iter()
            .map(|f| json!({"path": f["path"], "size": f["size"], "sha256": f["sha256"]}))
            .collect();
        let verify = |files: Vec<Value>| {
            s.authed(
                Method::POST,
                "/api/v1/datasets/fraud%2Ftx/versions/3/verify",
            )
            .json(&json!({ "files": files }))
            .send()
        };
        let clean_copy: Value = verify(working.clone()).await.unwrap().json().await.unwrap();
        assert_eq!(clean_copy["clean"], true);
        working[0]["sha256"] = json!(digests[0]);
        working.push(json!({"path": "new.csv", "size": 1, "sha256": readme}));
        let changed: Value = verify(working).await.unwrap().json().await.unwrap();
        assert_eq!(changed["clean"], false);
        assert_eq!(changed["added"], json!(["new.csv"]));
        assert_eq!(changed["modified"][0]["path"], "README");

        // Schema: readable; a malformed replacement changes nothing.
        let schema = s.get_json("/api/v1/datasets/fraud%2Ftx/schema").await;
        assert_eq!(schema["label"], "label");
        let bad = s
            .authed(Method::PUT, "/api/v1/datasets/fraud%2Ftx/schema")
            .body("{\"columns\": 3}")
            .send()
            .await
            .unwrap();
        assert_eq!(
            bad.status(),
            StatusCode::FORBIDDEN,
            "the admin token has no second factor here"
        );

        // Bad input: unknown blob, unsafe path, bad names and versions.
        let unknown = s
            .authed(Method::POST, "/api/v1/datasets/fraud%2Ftx/versions")
            .json(
                &json!({"files": [{"path": "a", "sha256": format!("sha256:{}", "0".repeat(64))}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
        let unsafe_path = s
            .authed(Method::POST, "/api/v1/datasets/fraud%2Ftx/versions")
            .json(&json!({"files": [{"path": "../etc/passwd", "sha256": readme}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(unsafe_path.status(), StatusCode::BAD_REQUEST);
        for path in [
            "/api/v1/datasets/bad%20name/versions",
            "/api/v1/datasets/fraud%2Ftx/versions/0",
            "/api/v1/datasets/fraud%2Ftx/versions/sha256:zz",
        ] {
            let r = s.authed(Method::GET, path).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        }
        let missing = s
            .authed(Method::GET, "/api/v1/datasets/fraud%2Ftx/versions/99")
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);

        // Naming a blob in a version needs the right to read it: a token limited to datasets
        // cannot wrap someone else's blob in a dataset to read its statistics.
        let local = mlsec_core::RequestCtx::local();
        s.core
            .create_principal(
                &local,
                mlsec_core::NewPrincipal {
                    id: "pipeline".into(),
                    service_account: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        s.core
            .grant_role(&local, "pipeline", "ci", "server")
            .await
            .unwrap();
        let limited = s
            .core
            .create_token(
                &local,
                "pipeline",
                mlsec_core::NewToken {
                    name: "datasets only".into(),
                    resources: Some(vec!["dataset:fraud/*".into()]),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .token;
        let wrapped = common::client()
            .post(s.url("/api/v1/datasets/fraud%2Fwrapped/versions"))
            .bearer_auth(&limited)
            .json(&json!({"files": [{"path": "x", "sha256": readme}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(wrapped.status(), StatusCode::FORBIDDEN);

        // Every add and check is in the audit log, with the digests.
        let events = s.get_json("/api/v1/audit/events?limit=1000").await;
        let actions: Vec<&str> = events["events"]
            .as_array()
            .or_else(|| events.as_array())
            .unwrap()
            .iter()
            .filter_map(|e| {
                e["event"]["action"]
                    .as_str()
                    .or_else(|| e["action"].as_str())
            })
            .collect();
        assert_eq!(
            actions
                .iter()
                .filter(|a| **a == "dataset.version.add")
                .count(),
            3,
            "{actions:?}"
        );
        assert_eq!(actions.iter().filter(|a| **a == "dataset.check").count(), 3);
        assert_eq!(
            actions.iter().filter(|a| **a == "dataset.verify").count(),
            2
        );
    }
}

/// The report renders in headless Chromium with no console errors (skipped only if Chromium is
/// absent, which the test command prevents by installing it).
#[tokio::test]
async fn the_report_renders_in_chromium_without_console_errors() {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("Chromium is installed by scripts/test.sh");
    let s = common::start(None, 64 << 20).await;
    let spec = Spec::labelled(4000);
    let reference = synth::generate(&spec, 1, &Plant::default(), None);
    let current = synth::generate(
        &spec,
        2,
        &Plant {
            drift: Some((3, 0.8)),
            duplicates: 0.02,
            ..Plant::default()
        },
        Some(&reference),
    );
    let dir = tempfile::tempdir().unwrap();
    let local = mlsec_core::RequestCtx::local();
    for (i, batch) in [reference, current].iter().enumerate() {
        let d = dir.path().join(format!("v{i}"));
        std::fs::create_dir_all(&d).unwrap();
        // A hostile column value must come out escaped.
        synth::write(batch, &d.join("t.parquet")).unwrap();
        s.core
            .add_dataset_from_path(&local, "demo", &d, "m", "s")
            .await
            .unwrap();
        let r = mlsec_core::VersionRef::parse(&format!("demo@{}", i + 1)).unwrap();
        s.core
            .check_dataset(&local, &r, Default::default())
            .await
            .unwrap();
    }
    let html = s
        .authed(Method::GET, "/api/v1/datasets/demo/versions/2/report")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let profile = dir.path().join("chrome-profile");
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            &format!("--user-data-dir={}", profile.display()),
            "--virtual-time-budget=2000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        dom.contains("data-report-ready=\"true\""),
        "the script ran: {}",
        &dom[..dom.len().min(400)]
    );
    assert!(dom.contains("<svg"), "histograms rendered");
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(console.is_empty(), "console output: {console:?}");
}
