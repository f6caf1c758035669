//! The test harness: a real server on a loopback port with a real store in a temp dir (SQLite,
//! and PostgreSQL in a fresh schema when `MLSEC_TEST_DATABASE_URL` is set).
#![allow(dead_code)]

use std::net::SocketAddr;

use mlsec_core::{Clock, CoreConfig, Mlsec};
use serde_json::Value;

pub struct Server {
    pub addr: SocketAddr,
    pub token: String,
    pub core: Mlsec,
    pub clock: Clock,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn _dir_path(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A request to `path` carrying the admin token.
    pub fn authed(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    /// GET `path` with the admin token and decode the JSON answer.
    pub async fn get_json(&self, path: &str) -> Value {
        self.authed(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

pub async fn start(database_url: Option<String>, max_upload_bytes: u64) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = CoreConfig::embedded(dir.path().join("data"));
    config.database_url = database_url;
    config.max_upload_bytes = max_upload_bytes;
    // A hand-moved clock, starting now: tests move it to expire tokens and locks.
    let clock = Clock::manual(
        (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()) as i64,
    );
    config.clock = clock.clone();
    let core = Mlsec::open(config).await.unwrap();
    let token = core.init().await.unwrap().admin_token.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = mlsec_server::router(core.clone());
    tokio::spawn(async move { axum_serve(listener, app).await });
    Server {
        addr,
        token,
        core,
        clock,
        _dir: dir,
    }
}

async fn axum_serve(listener: tokio::net::TcpListener, app: axum::Router) {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .unwrap();
}

/// Every backend: SQLite always, PostgreSQL (fresh schema) when configured.
pub async fn servers(max_upload_bytes: u64) -> Vec<Server> {
    let mut out = vec![start(None, max_upload_bytes).await];
    if let Ok(url) = std::env::var("MLSEC_TEST_DATABASE_URL") {
        let schema = format!("api_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let sep = if url.contains('?') { '&' } else { '?' };
        out.push(
            start(
                Some(format!("{url}{sep}options=-c%20search_path%3D{schema}")),
                max_upload_bytes,
            )
            .await,
        );
    }
    out
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}
