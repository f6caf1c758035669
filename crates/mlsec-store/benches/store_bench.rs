//! Durable audit append, store-backed verification, and blob ingest against `openssl dgst`.
//!
//! `cargo bench -p mlsec-store --bench store_bench -- [append|verify|blob]...`
//! Set `MLSEC_BENCH_DIR` to choose the disk (default: a temp dir under the target directory),
//! `MLSEC_TEST_DATABASE_URL` to also measure PostgreSQL, `MLSEC_BENCH_BLOB_MIB` for the file size.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use mlsec_audit::{AuditEvent, CheckpointSigner, Decision, TrustedKeys};
use mlsec_store::{LocalBlobStore, Store, StoreOptions};
use mlsec_types::Actor;

fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var_os("MLSEC_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

fn event(i: usize) -> AuditEvent {
    AuditEvent::new(
        time::OffsetDateTime::now_utc(),
        Actor::service_account(format!("ci-{}", i % 8)),
        "run.log_metric",
        format!("run:{}", i / 100),
        Decision::Allow,
        "granted by role ci",
    )
    .with_request_id(Some(format!("req-{i}")))
    .with_details(serde_json::json!({ "key": "loss", "step": i }))
}

fn signer() -> Arc<CheckpointSigner> {
    Arc::new(CheckpointSigner::from_secret_bytes(&[9; 32]))
}

async fn append(label: &str, options: StoreOptions) {
    let store = Store::open(options).await.unwrap();
    for batch in [1usize, 10, 100, 1000] {
        let total = if batch == 1 { 2_000 } else { 100_000 };
        let events: Vec<AuditEvent> = (0..total).map(event).collect();
        let started = Instant::now();
        for chunk in events.chunks(batch) {
            store.append_audit(chunk).await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "append {label} batch {batch:>4}: {:>8.0} durable events/s ({total} events, {:.2} s)",
            total as f64 / secs,
            secs
        );
    }
    store.close().await;
}

async fn verify(label: &str, options: StoreOptions, events: usize) {
    let store = Store::open(options).await.unwrap();
    let (have, _) = store.audit_head().await.unwrap();
    let missing = events.saturating_sub(have as usize);
    let all: Vec<AuditEvent> = (0..missing).map(event).collect();
    for chunk in all.chunks(5000) {
        store.append_audit(chunk).await.unwrap();
    }
    let trusted = TrustedKeys::new().with(signer().verifying_key());
    let started = Instant::now();
    let report = store.verify_audit(&trusted).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert!(report.ok(), "{:?}", report.failures);
    println!(
        "verify {label} (read from the store + verify): {:.0} events/s ({} events, {} checkpoints, {:.2} s)",
        report.events as f64 / secs,
        report.events,
        report.checkpoints,
        secs
    );
    store.close().await;
}

fn time_command(cmd: &mut Command) -> f64 {
    let started = Instant::now();
    let out = cmd.output().expect("run command");
    assert!(out.status.success(), "{:?}", out);
    started.elapsed().as_secs_f64()
}

fn drop_page_cache(file: &Path) {
    // Make both contenders read from a warm cache: read the file once before timing.
    let _ = std::fs::read(file).map(|b| b.len());
}

fn blob(dir: &Path) {
    let mib: usize = std::env::var("MLSEC_BENCH_BLOB_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let input = dir.join("input.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        let mut state = 0x9e3779b97f4a7c15u64;
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..mib {
            for chunk in block.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                chunk.copy_from_slice(&state.to_le_bytes());
            }
            f.write_all(&block).unwrap();
        }
    }
    drop_page_cache(&input);
    let bytes = (mib as f64) * 1024.0 * 1024.0;
    let mut results = Vec::new();
    for round in 0..3 {
        let openssl = time_command(
            Command::new("openssl")
                .args(["dgst", "-sha256"])
                .arg(&input),
        );
        let store = LocalBlobStore::open(dir.join(format!("blobs-{round}"))).unwrap();
        let started = Instant::now();
        let info = store.put_file(&input).unwrap();
        let ingest = started.elapsed().as_secs_f64();
        assert!(info.created);
        let started = Instant::now();
        store.verify(&info.digest).unwrap();
        let verify = started.elapsed().as_secs_f64();
        std::fs::remove_dir_all(store.root()).unwrap();
        results.push((openssl, ingest, verify));
    }
    let best = |f: fn(&(f64, f64, f64)) -> f64| results.iter().map(f).fold(f64::MAX, f64::min);
    let (openssl, ingest, verify) = (best(|r| r.0), best(|r| r.1), best(|r| r.2));
    let mibs = |s: f64| bytes / s / (1 << 20) as f64;
    println!(
        "blob {mib} MiB: openssl dgst -sha256 {:.0} MiB/s ({openssl:.2} s)",
        mibs(openssl)
    );
    println!(
        "blob {mib} MiB: mlsec ingest (hash + write + fsync + rename) {:.0} MiB/s ({ingest:.2} s) = {:.0}% of openssl",
        mibs(ingest),
        100.0 * openssl / ingest
    );
    println!(
        "blob {mib} MiB: mlsec verify (re-hash) {:.0} MiB/s ({verify:.2} s)",
        mibs(verify)
    );
}

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    let dir = bench_dir();
    println!("bench directory: {}", dir.path().display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pg = std::env::var("MLSEC_TEST_DATABASE_URL").ok();
    if run("append") {
        rt.block_on(append(
            "sqlite",
            StoreOptions::sqlite_file(&dir.path().join("append.db")).with_signer(signer(), 1000),
        ));
        if let Some(url) = &pg {
            rt.block_on(append(
                "postgres",
                StoreOptions::new(url.clone()).with_signer(signer(), 1000),
            ));
        }
    }
    if run("verify") {
        rt.block_on(verify(
            "sqlite",
            StoreOptions::sqlite_file(&dir.path().join("verify.db")).with_signer(signer(), 1000),
            1_000_000,
        ));
    }
    if run("blob") {
        blob(dir.path());
    }
}
