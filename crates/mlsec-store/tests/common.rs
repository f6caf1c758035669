//! Opens every backend the suite runs against: SQLite always, PostgreSQL when
//! `MLSEC_TEST_DATABASE_URL` is set. Each PostgreSQL store gets a fresh schema, so tests run in
//! parallel without seeing each other.

#![allow(dead_code)]

use std::sync::Arc;

use mlsec_audit::CheckpointSigner;
use mlsec_store::{Store, StoreOptions};

pub struct TestDb {
    pub name: &'static str,
    pub options: StoreOptions,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn open(&self) -> Store {
        Store::open(self.options.clone())
            .await
            .unwrap_or_else(|e| panic!("open {}: {e}", self.name))
    }
}

pub fn signer() -> Arc<CheckpointSigner> {
    Arc::new(CheckpointSigner::from_secret_bytes(&[42; 32]))
}

pub async fn backends(checkpoint_every: u64) -> Vec<TestDb> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::sqlite_file(&dir.path().join("mlsec.db"))
        .with_signer(signer(), checkpoint_every);
    out.push(TestDb {
        name: "sqlite",
        options,
        _dir: Some(dir),
    });
    if let Ok(url) = std::env::var("MLSEC_TEST_DATABASE_URL") {
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&url)
            .await
            .expect("connect to test postgres");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let sep = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{sep}options=-c%20search_path%3D{schema}");
        out.push(TestDb {
            name: "postgres",
            options: StoreOptions::new(url).with_signer(signer(), checkpoint_every),
            _dir: None,
        });
    }
    out
}
