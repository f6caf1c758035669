//! Authenticating and authorizing one request with an API token, as every API and gateway call
//! does: token parse and hash, cached credential lookup, constant-time compare, expiry, grants,
//! scope matching and the Cedar decision.
//!
//! `cargo bench -p mlsec-core --bench auth_bench` (SQLite in a temp dir; set
//! `MLSEC_TEST_DATABASE_URL` to also measure PostgreSQL).

use std::time::Instant;

use mlsec_core::policy::{Resource, ResourceType};
use mlsec_core::{CoreConfig, Mlsec, NewPrincipal, NewToken, RequestCtx};

const ITERATIONS: usize = 50_000;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn measure(label: &str, core: &Mlsec) {
    let local = RequestCtx::local();
    core.create_principal(
        &local,
        NewPrincipal {
            id: "ci-bot".into(),
            service_account: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    core.grant_role(&local, "ci-bot", "ci", "project:fraud")
        .await
        .unwrap();
    core.grant_role(&local, "ci-bot", "viewer", "model:shared-*")
        .await
        .unwrap();
    let token = core
        .create_token(
            &local,
            "ci-bot",
            NewToken {
                name: "bench".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .token;
    let resource = Resource::new(ResourceType::Model, "fraud/detector");
    let denied = Resource::new(ResourceType::Model, "payroll/scorer");
    // Warm-up: the first call loads the token, grants and policy from the store.
    let cold = Instant::now();
    let ctx = core.authenticate(Some(&token), None).await.unwrap();
    core.authorize(&ctx, "model.write", &resource)
        .await
        .unwrap();
    let cold = cold.elapsed();

    let mut both = Vec::with_capacity(ITERATIONS);
    let mut authn = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let t0 = Instant::now();
        let ctx = core.authenticate(Some(&token), None).await.unwrap();
        let t1 = Instant::now();
        core.authorize(&ctx, "model.write", &resource)
            .await
            .unwrap();
        let t2 = Instant::now();
        authn.push((t1 - t0).as_secs_f64() * 1e6);
        both.push((t2 - t0).as_secs_f64() * 1e6);
    }
    both.sort_by(f64::total_cmp);
    authn.sort_by(f64::total_cmp);
    // A denial also writes its audit event: measured separately, it is not the hot path.
    let mut deny = Vec::with_capacity(200);
    for _ in 0..200 {
        let t0 = Instant::now();
        let _ = core
            .authorize(&ctx, "model.write", &denied)
            .await
            .unwrap_err();
        deny.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    deny.sort_by(f64::total_cmp);
    println!(
        "{label}: authenticate+authorize median {:.1} µs, p99 {:.1} µs (authenticate alone median {:.1} µs); first call {:.2} ms; audited denial median {:.0} µs ({ITERATIONS} requests)",
        percentile(&both, 0.5),
        percentile(&both, 0.99),
        percentile(&authn, 0.5),
        cold.as_secs_f64() * 1e3,
        percentile(&deny, 0.5),
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let core = Mlsec::open(CoreConfig::embedded(dir.path().join("data")))
            .await
            .unwrap();
        core.init().await.unwrap();
        measure("sqlite", &core).await;
        if let Ok(url) = std::env::var("MLSEC_TEST_DATABASE_URL") {
            let schema = format!("bench_{}", std::process::id());
            let admin = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&admin)
                .await
                .unwrap();
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&admin)
                .await
                .unwrap();
            let dir = tempfile::tempdir().unwrap();
            let mut config = CoreConfig::embedded(dir.path().join("data"));
            let sep = if url.contains('?') { '&' } else { '?' };
            config.database_url = Some(format!("{url}{sep}options=-c%20search_path%3D{schema}"));
            let core = Mlsec::open(config).await.unwrap();
            core.init().await.unwrap();
            measure("postgres", &core).await;
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&admin)
                .await
                .unwrap();
        }
    });
}
