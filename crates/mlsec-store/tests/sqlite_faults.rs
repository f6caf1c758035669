//! Faults of the embedded default: a corrupt file, a missing or unwritable directory, a full disk.

use mlsec_audit::{AuditEvent, Decision};
use mlsec_store::{Store, StoreError, StoreOptions};
use mlsec_types::Actor;

fn event() -> AuditEvent {
    AuditEvent::new(
        time::OffsetDateTime::now_utc(),
        Actor::system(),
        "test.write",
        "x",
        Decision::Allow,
        "test",
    )
    .with_details(serde_json::json!({ "pad": "p".repeat(2000) }))
}

#[tokio::test]
async fn corrupt_file_is_named_and_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mlsec.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let err = Store::open(StoreOptions::sqlite_file(&path))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("mlsec.db"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        garbage,
        "a corrupt file is left as it was"
    );
}

#[tokio::test]
async fn missing_directory_is_named() {
    let err = Store::open(StoreOptions::sqlite_file(std::path::Path::new(
        "/nonexistent/dir/m.db",
    )))
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("/nonexistent/dir"), "{err}");
}

/// Mounts a tiny tmpfs; only root can, so elsewhere the test says so and returns.
fn tiny_tmpfs(size: &str) -> Option<tempfile::TempDir> {
    let dir = tempfile::tempdir().unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("skipping: cannot mount tmpfs (needs root)");
        return None;
    }
    Some(dir)
}

fn unmount(dir: &tempfile::TempDir) {
    let _ = std::process::Command::new("umount")
        .arg(dir.path())
        .status();
}

#[tokio::test]
async fn full_disk_is_reported_and_committed_events_survive() {
    let Some(mnt) = tiny_tmpfs("2m") else { return };
    let path = mnt.path().join("mlsec.db");
    let store = Store::open(StoreOptions::sqlite_file(&path)).await.unwrap();
    let mut committed = 0u64;
    let mut full_error = None;
    for _ in 0..10_000 {
        match store.append_audit(&[event()]).await {
            Ok(_) => committed += 1,
            Err(e) => {
                full_error = Some(e);
                break;
            }
        }
    }
    let err = full_error.expect("a 2 MiB disk fills up");
    assert!(err.is_storage_full(), "{err}");
    assert!(committed > 10);
    store.close().await;
    // Reopen read-only work on the full disk: everything acknowledged is there and verifies.
    let store = Store::open(StoreOptions::sqlite_file(&path)).await.unwrap();
    assert_eq!(store.audit_head().await.unwrap().0, committed);
    let report = store
        .verify_audit(&mlsec_audit::TrustedKeys::new())
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.failures);
    store.close().await;
    unmount(&mnt);
}

#[tokio::test]
async fn read_only_directory_is_reported() {
    let Some(mnt) = tiny_tmpfs("1m") else { return };
    let ok = std::process::Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(mnt.path())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let err = Store::open(StoreOptions::sqlite_file(&mnt.path().join("mlsec.db")))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("mlsec.db"), "{err}");
    let blob_err = mlsec_store::LocalBlobStore::open(mnt.path().join("blobs")).unwrap_err();
    assert!(blob_err.to_string().contains("blobs"), "{blob_err}");
    unmount(&mnt);
}
