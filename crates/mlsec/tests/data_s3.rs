//! `mlsec data` with the blob store in an S3-compatible bucket (moto, when the test command
//! provides it): add, check (tables fetched from the bucket), verify and checkout round-trip.
#![cfg(feature = "s3")]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mlsec");

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mlsec(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("MLSEC_DATABASE_URL")
        .output()
        .expect("run mlsec")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn datasets_on_an_s3_blob_store() {
    let Ok(exe) = std::env::var("MLSEC_TEST_MOTO_SERVER") else {
        eprintln!("skipping: MLSEC_TEST_MOTO_SERVER is not set");
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _moto = Moto(
        Command::new(exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server"),
    );
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client.get(&url).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "moto did not start");
    assert!(
        client
            .put(format!("{url}/data-blobs"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mlsec.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[blobs]\nbackend = \"s3\"\n[blobs.s3]\nbucket = \"data-blobs\"\nendpoint = \"{url}\"\nregion = \"us-east-1\"\naccess_key_id = \"test\"\nsecret_access_key = \"test\"\nallow_http = true\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    ok(&mlsec(&config, &["init"]));
    let pair = dir.path().join("pair");
    ok(&mlsec(
        &config,
        &[
            "data",
            "synth",
            pair.to_str().unwrap(),
            "--rows",
            "3000",
            "--poison",
        ],
    ));
    for (i, file) in ["reference.parquet", "current.parquet"].iter().enumerate() {
        let v = dir.path().join(format!("v{i}"));
        std::fs::create_dir_all(&v).unwrap();
        std::fs::copy(pair.join(file), v.join("train.parquet")).unwrap();
        std::fs::write(v.join("notes.txt"), "not a table").unwrap();
        ok(&mlsec(
            &config,
            &["data", "add", v.to_str().unwrap(), "--dataset", "s3set"],
        ));
    }
    // Nothing but the database lives in the data directory: the blobs are in the bucket.
    assert!(
        !dir.path()
            .join("data/blobs/sha256")
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    );
    ok(&mlsec(&config, &["data", "check", "s3set@1"]));
    let failed = mlsec(&config, &["data", "check", "s3set@2", "--json"]);
    assert_eq!(
        failed.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    let restored = dir.path().join("restored");
    ok(&mlsec(
        &config,
        &["data", "checkout", "s3set@1", restored.to_str().unwrap()],
    ));
    assert_eq!(
        std::fs::read(restored.join("train.parquet")).unwrap(),
        std::fs::read(pair.join("reference.parquet")).unwrap()
    );
    let v = mlsec(
        &config,
        &["data", "verify", "s3set@1", restored.to_str().unwrap()],
    );
    assert_eq!(v.status.code(), Some(0));
}
