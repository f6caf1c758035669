//! The `mlsec` binary as users run it: first start, crash safety, bad configuration and faults.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mlsec_core::{CoreConfig, Mlsec};
use mlsec_types::Digest;

const BIN: &str = env!("CARGO_BIN_EXE_mlsec");

fn mlsec(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("MLSEC_DATABASE_URL")
        .output()
        .expect("run mlsec")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn token_from(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|l| l.split_whitespace().find(|w| w.starts_with("mlsec_")))
        .map(str::to_owned)
}

struct Served {
    child: Child,
    url: String,
}

fn spawn_server(data: &Path) -> Served {
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("MLSEC_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mlsec serve");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Some(rest) = line.strip_prefix("listening on ") {
            break rest.to_owned();
        }
    };
    Served { child, url }
}

#[test]
fn init_prints_the_admin_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let first = mlsec(&data, &["init"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let token = token_from(&text(&first.stdout)).expect("token printed");
    let second = mlsec(&data, &["init"]);
    assert!(second.status.success());
    assert!(token_from(&text(&second.stdout)).is_none());
    // The token is stored only as a hash: its secret appears in no file of the data directory.
    let secret = token.rsplit('_').next().unwrap().as_bytes().to_vec();
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_slice()),
                "secret found in {}",
                path.display()
            );
        }
    }
}

/// `kill -9` during a burst of uploads: every acknowledged write survives, nothing half-written
/// is visible, and the audit chain verifies.
#[test]
fn kill_9_during_writes_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let init = mlsec(&data, &["init"]);
    let token = token_from(&text(&init.stdout)).unwrap();
    let mut served = spawn_server(&data);

    let acknowledged = Arc::new(Mutex::new(Vec::<Digest>::new()));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Kill once a burst is well under way: after 50 acknowledged uploads (or 30 s, whichever
    // comes first), so the test does not depend on how fast this machine is.
    let deadline = Instant::now() + Duration::from_secs(30);
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut tasks = Vec::new();
        for worker in 0..8u32 {
            let (client, url, token, acked) = (
                client.clone(),
                served.url.clone(),
                token.clone(),
                acknowledged.clone(),
            );
            tasks.push(tokio::spawn(async move {
                for i in 0u32.. {
                    let body: Vec<u8> = format!("worker {worker} upload {i} ")
                        .repeat(200 + (i as usize % 50))
                        .into_bytes();
                    let sent = client
                        .post(format!("{url}/api/v1/blobs"))
                        .bearer_auth(&token)
                        .body(body.clone())
                        .timeout(Duration::from_secs(5))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == 201 => acked.lock().unwrap().push(Digest::of(&body)),
                        _ => break, // the server is gone
                    }
                }
            }));
        }
        while acknowledged.lock().unwrap().len() < 50 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        served.child.kill().unwrap(); // SIGKILL
        served.child.wait().unwrap();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 20,
        "only {} uploads acknowledged",
        acknowledged.len()
    );

    let verify = mlsec(&data, &["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}{}",
        text(&verify.stdout),
        text(&verify.stderr)
    );

    runtime.block_on(async {
        let core = Mlsec::open(CoreConfig::embedded(&data)).await.unwrap();
        let store = core.store();
        for digest in &acknowledged {
            assert!(store.blob(digest).await.unwrap().is_some(), "{digest} lost");
            assert!(
                core.verify_blob(&mlsec_core::RequestCtx::local(), digest)
                    .await
                    .is_ok(),
                "{digest} damaged"
            );
        }
        // Nothing half-written: every recorded blob is whole, and records match events one to one.
        let (events, _) = store.audit_head().await.unwrap();
        let records = store.audit_records(0, events as i64).await.unwrap();
        let put_events = records
            .iter()
            .filter(|r| r.event().unwrap().action == "blob.put")
            .count() as u64;
        assert_eq!(store.blob_count().await.unwrap(), put_events);
        assert!(put_events >= acknowledged.len() as u64);
        store.close().await;
    });

    // The server starts again on the same data and keeps the chain going.
    let mut again = spawn_server(&data);
    let health = runtime.block_on(async {
        reqwest::get(format!("{}/readyz", again.url))
            .await
            .unwrap()
            .status()
    });
    assert_eq!(health, 200);
    unsafe_sigterm(&again.child);
    assert!(
        again.child.wait().unwrap().success(),
        "graceful stop exits 0"
    );
    let verify = mlsec(&data, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    assert!(
        text(&verify.stdout).contains("0 later events"),
        "{}",
        text(&verify.stdout)
    );
}

fn unsafe_sigterm(child: &Child) {
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
}

#[test]
fn bad_configuration_is_named_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mlsec.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\n[blobs]\nmax_upload = 5\n").unwrap();
    let out = Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap(), "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("max_upload"),
        "{}",
        text(&out.stderr)
    );

    let out = Command::new(BIN)
        .args(["audit", "verify"])
        .env("MLSEC_CHECKPOINT_EVERY", "5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("MLSEC_CHECKPOINT_EVERY"),
        "{}",
        text(&out.stderr)
    );

    let out = Command::new(BIN)
        .args([
            "--data-dir",
            dir.path().join("none").to_str().unwrap(),
            "audit",
            "verify",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("mlsec init"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn corrupt_database_is_named_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    assert!(mlsec(&data, &["init"]).status.success());
    let db = data.join("mlsec.db");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(data.join(format!("mlsec.db{suffix}")));
    }
    let garbage: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(&db, &garbage).unwrap();
    let out = mlsec(&data, &["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("mlsec.db") && err.contains("corrupt"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), garbage);
}

fn mount_tmpfs(dir: &Path, size: &str) -> bool {
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn full_disk_fails_the_write_and_keeps_what_was_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    if !mount_tmpfs(&mnt, "4m") {
        eprintln!("skipping: cannot mount tmpfs (needs root)");
        return;
    }
    let data = mnt.join("d");
    assert!(mlsec(&data, &["init"]).status.success());
    let small = dir.path().join("small.bin");
    std::fs::write(&small, vec![1u8; 100_000]).unwrap();
    let put = mlsec(&data, &["blob", "put", small.to_str().unwrap()]);
    assert!(put.status.success(), "{}", text(&put.stderr));
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![2u8; 8 << 20]).unwrap();
    let out = mlsec(&data, &["blob", "put", big.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("storage is full"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_dir(data.join("blobs/tmp")).unwrap().count(),
        0
    );
    let verify = mlsec(&data, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    let digest = Digest::of(&vec![1u8; 100_000]).to_string();
    assert!(mlsec(&data, &["blob", "verify", &digest]).status.success());
    let _ = Command::new("umount").arg(&mnt).status();
}

#[test]
fn unwritable_data_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    if !mount_tmpfs(&mnt, "1m") {
        eprintln!("skipping: cannot mount tmpfs (needs root)");
        return;
    }
    assert!(
        Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&mnt)
            .status()
            .unwrap()
            .success()
    );
    let data = mnt.join("d");
    let out = mlsec(&data, &["init"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&data.display().to_string()),
        "{}",
        text(&out.stderr)
    );
    let _ = Command::new("umount").arg(&mnt).status();
}

#[test]
fn exported_log_verifies_offline_and_tampering_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    assert!(mlsec(&data, &["init"]).status.success());
    let file = dir.path().join("f.bin");
    for i in 0..5 {
        std::fs::write(&file, format!("content {i}")).unwrap();
        assert!(
            mlsec(&data, &["blob", "put", file.to_str().unwrap()])
                .status
                .success()
        );
    }
    let export: PathBuf = dir.path().join("audit.jsonl");
    let out = mlsec(
        &data,
        &[
            "audit",
            "export",
            "--format",
            "jsonl",
            "-o",
            export.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ok = mlsec(
        &data,
        &["audit", "verify", "--file", export.to_str().unwrap()],
    );
    assert!(ok.status.success(), "{}", text(&ok.stdout));

    let original = std::fs::read_to_string(&export).unwrap();
    let mut lines: Vec<String> = original.lines().map(str::to_owned).collect();
    lines[3] = lines[3].replace("blob.put", "blob.get");
    let tampered = dir.path().join("tampered.jsonl");
    std::fs::write(&tampered, lines.join("\n")).unwrap();
    let bad = mlsec(
        &data,
        &["audit", "verify", "--file", tampered.to_str().unwrap()],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stdout).contains("first bad index 3"),
        "{}",
        text(&bad.stdout)
    );

    // Verified against another key, the checkpoints are refused.
    let other = "11".repeat(32);
    let foreign = mlsec(
        &data,
        &[
            "audit",
            "verify",
            "--file",
            export.to_str().unwrap(),
            "--public-key",
            &other,
        ],
    );
    assert_eq!(foreign.status.code(), Some(1), "{}", text(&foreign.stdout));

    for format in ["ocsf", "cef"] {
        let out = mlsec(&data, &["audit", "export", "--format", format]);
        assert!(out.status.success());
        let stdout = text(&out.stdout);
        assert_eq!(stdout.lines().count(), 8, "{stdout}");
        for line in stdout.lines() {
            match format {
                "ocsf" => {
                    let v: serde_json::Value = serde_json::from_str(line).unwrap();
                    assert_eq!(v["class_uid"], 6003);
                }
                _ => assert!(line.starts_with("CEF:0|mlsec|mlsec|"), "{line}"),
            }
        }
    }
}
