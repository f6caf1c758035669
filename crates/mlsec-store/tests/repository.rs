//! The repository suite: every test runs against each backend from `common::backends`.

mod common;

use mlsec_audit::{AuditEvent, Decision, FailureKind, TrustedKeys};
use mlsec_store::{AuditQuery, BlobRow, PrincipalRow, StoreError, TokenRow};
use mlsec_types::{Actor, Digest};

fn event(i: usize) -> AuditEvent {
    AuditEvent::new(
        time::OffsetDateTime::now_utc(),
        Actor::user(format!("u{}", i % 4)),
        if i.is_multiple_of(2) {
            "blob.put"
        } else {
            "token.create"
        },
        format!("thing:{i}"),
        Decision::Allow,
        "test",
    )
    .with_details(serde_json::json!({ "i": i }))
}

fn trusted() -> TrustedKeys {
    TrustedKeys::new().with(common::signer().verifying_key())
}

#[tokio::test]
async fn migrations_are_idempotent() {
    for db in common::backends(10).await {
        let store = db.open().await;
        store.append_audit(&[event(0)]).await.unwrap();
        drop(store);
        let store = db.open().await;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(n, 5, "{}", db.name);
        assert_eq!(store.audit_head().await.unwrap().0, 1, "{}", db.name);
    }
}

#[tokio::test]
async fn edited_migration_is_refused() {
    for db in common::backends(10).await {
        let store = db.open().await;
        sqlx::query("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
            .execute(store.pool())
            .await
            .unwrap();
        store.close().await;
        let err = mlsec_store::Store::open(db.options.clone())
            .await
            .err()
            .unwrap();
        assert!(
            matches!(err, StoreError::MigrationChanged { version: 1, .. }),
            "{}: {err}",
            db.name
        );
    }
}

#[tokio::test]
async fn change_commits_only_with_its_events() {
    for db in common::backends(10).await {
        let store = db.open().await;
        let row = BlobRow {
            digest: Digest::of(b"a"),
            size: 1,
            created_at: 1,
            created_by: "u".into(),
        };
        // No events: refused, and the change is rolled back with the transaction.
        let mut w = store.begin_write().await.unwrap();
        w.insert_blob(&row).await.unwrap();
        assert!(matches!(w.commit(&[]).await, Err(StoreError::NoAuditEvent)));
        assert!(
            store.blob(&row.digest).await.unwrap().is_none(),
            "{}",
            db.name
        );

        // Explicit rollback: nothing visible.
        let mut w = store.begin_write().await.unwrap();
        w.insert_blob(&row).await.unwrap();
        w.rollback().await.unwrap();
        assert!(store.blob(&row.digest).await.unwrap().is_none());
        assert_eq!(store.audit_head().await.unwrap().0, 0);

        let mut w = store.begin_write().await.unwrap();
        assert!(w.insert_blob(&row).await.unwrap());
        let records = w.commit(&[event(1)]).await.unwrap();
        assert_eq!(records[0].index, 0);
        assert_eq!(store.blob(&row.digest).await.unwrap(), Some(row.clone()));

        // Same digest again is a no-op.
        let mut w = store.begin_write().await.unwrap();
        assert!(!w.insert_blob(&row).await.unwrap());
        w.commit(&[event(2)]).await.unwrap();
        assert_eq!(store.blob_count().await.unwrap(), 1);
    }
}

#[tokio::test]
async fn chain_checkpoints_and_search() {
    for db in common::backends(10).await {
        let store = db.open().await;
        for batch in 0..5 {
            let events: Vec<_> = (0..7).map(|i| event(batch * 7 + i)).collect();
            store.append_audit(&events).await.unwrap();
        }
        let (len, head) = store.audit_head().await.unwrap();
        assert_eq!(len, 35);
        let cps = store.audit_checkpoints().await.unwrap();
        let at: Vec<u64> = cps.iter().map(|c| c.checkpoint.index).collect();
        assert_eq!(at, vec![9, 19, 29], "{}", db.name);

        let report = store.verify_audit(&trusted()).await.unwrap();
        assert!(report.ok(), "{}: {:?}", db.name, report.failures);
        assert_eq!(report.events, 35);
        assert_eq!(report.head, Some(head));
        assert_eq!(report.unsigned_tail, 5);

        let cp = store
            .checkpoint_now()
            .await
            .unwrap()
            .expect("head not yet checkpointed");
        assert_eq!(cp.checkpoint.index, 34);
        assert!(
            store.checkpoint_now().await.unwrap().is_none(),
            "second is a no-op"
        );
        assert_eq!(
            store.verify_audit(&trusted()).await.unwrap().unsigned_tail,
            0
        );

        let found = store
            .audit_search(&AuditQuery {
                actor: Some("user:u1".into()),
                action: Some("token.create".into()),
                before: None,
                limit: 3,
            })
            .await
            .unwrap();
        assert_eq!(found.len(), 3);
        assert!(found.windows(2).all(|w| w[0].index > w[1].index));
        for r in found {
            let e = r.event().unwrap();
            assert_eq!(e.actor, Actor::user("u1"));
        }
    }
}

#[tokio::test]
async fn tampering_in_the_database_is_reported_at_its_index() {
    for db in common::backends(1000).await {
        let store = db.open().await;
        let events: Vec<_> = (0..20).map(event).collect();
        store.append_audit(&events).await.unwrap();

        let original: Vec<u8> =
            sqlx::query_scalar("SELECT canonical FROM audit_events WHERE idx = 7")
                .fetch_one(store.pool())
                .await
                .unwrap();
        let forged = String::from_utf8(original.clone())
            .unwrap()
            .replace("\"test\"", "\"tEst\"");
        sqlx::query("UPDATE audit_events SET canonical = $1 WHERE idx = 7")
            .bind(forged.into_bytes())
            .execute(store.pool())
            .await
            .unwrap();
        let report = store.verify_audit(&trusted()).await.unwrap();
        assert_eq!(report.first_bad_index(), Some(7), "{}", db.name);
        assert_eq!(report.failures[0].kind, FailureKind::HashMismatch);

        sqlx::query("UPDATE audit_events SET canonical = $1 WHERE idx = 7")
            .bind(original)
            .execute(store.pool())
            .await
            .unwrap();
        assert!(store.verify_audit(&trusted()).await.unwrap().ok());

        sqlx::query("DELETE FROM audit_events WHERE idx = 12")
            .execute(store.pool())
            .await
            .unwrap();
        let report = store.verify_audit(&trusted()).await.unwrap();
        assert_eq!(report.first_bad_index(), Some(12), "{}", db.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_fork_the_chain() {
    for db in common::backends(50).await {
        // Two pools stand for two server replicas sharing one database.
        let a = db.open().await;
        let b = db.open().await;
        let mut tasks = Vec::new();
        for t in 0..16usize {
            let store = if t % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                for i in 0..25 {
                    let mut w = store.begin_write().await.unwrap();
                    let row = BlobRow {
                        digest: Digest::of(format!("{t}-{i}").as_bytes()),
                        size: 1,
                        created_at: 0,
                        created_by: format!("w{t}"),
                    };
                    w.insert_blob(&row).await.unwrap();
                    w.commit(&[event(t * 100 + i)]).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(a.audit_head().await.unwrap().0, 400, "{}", db.name);
        assert_eq!(a.blob_count().await.unwrap(), 400);
        let report = a.verify_audit(&trusted()).await.unwrap();
        assert!(report.ok(), "{}: {:?}", db.name, report.failures);
        assert_eq!(report.checkpoints, 8);
    }
}

#[tokio::test]
async fn principals_and_tokens_round_trip() {
    for db in common::backends(10).await {
        let store = db.open().await;
        let p = PrincipalRow {
            id: "admin".into(),
            kind: "user".into(),
            display_name: "Administrator".into(),
            disabled: false,
            created_at: 5,
            password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            deleted_at: None,
        };
        let t = TokenRow {
            id: "0123456789abcdef".into(),
            principal_id: "admin".into(),
            name: "first".into(),
            secret_hash: Digest::of(b"s").as_bytes().to_vec(),
            created_at: 5,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            read_only: true,
            resources: Some(r#"["model:fraud-*"]"#.into()),
        };
        let mut w = store.begin_write().await.unwrap();
        w.insert_principal(&p).await.unwrap();
        w.insert_token(&t).await.unwrap();
        w.commit(&[event(0)]).await.unwrap();
        assert_eq!(store.principal("admin").await.unwrap(), Some(p.clone()));
        assert_eq!(store.token(&t.id).await.unwrap(), Some(t.clone()));
        store.touch_token(&t.id, 99).await.unwrap();
        assert_eq!(
            store.token(&t.id).await.unwrap().unwrap().last_used_at,
            Some(99)
        );

        let mut w = store.begin_write().await.unwrap();
        let err = w.insert_principal(&p).await.unwrap_err();
        assert!(
            matches!(err, StoreError::AlreadyExists { .. }),
            "{}: {err}",
            db.name
        );
    }
}

#[tokio::test]
async fn identity_rows_round_trip() {
    use mlsec_store::{GrantRow, PolicyRow, SessionRow, ThrottleRow, TotpRow};
    for db in common::backends(10).await {
        let store = db.open().await;
        let name = db.name;
        let alice = PrincipalRow {
            id: "alice'; DROP TABLE principals; --".into(),
            kind: "user".into(),
            display_name: "Alice".into(),
            disabled: false,
            created_at: 1,
            password_hash: None,
            deleted_at: None,
        };
        let id = alice.id.as_str();
        let epoch0 = store.identity_epoch().await.unwrap();
        let mut w = store.begin_write().await.unwrap();
        w.insert_principal(&alice).await.unwrap();
        let grant = GrantRow {
            principal_id: id.into(),
            role: "viewer".into(),
            scope: "project:fraud".into(),
            created_at: 2,
            created_by: "user:admin".into(),
        };
        assert!(w.insert_grant(&grant).await.unwrap());
        assert!(
            !w.insert_grant(&grant).await.unwrap(),
            "{name}: grants are a set"
        );
        w.put_totp(&TotpRow {
            principal_id: id.into(),
            secret_sealed: vec![1, 2, 3],
            created_at: 3,
            confirmed_at: None,
            last_step: -1,
        })
        .await
        .unwrap();
        assert!(w.confirm_totp(id, 4).await.unwrap());
        assert!(w.consume_totp_step(id, 100).await.unwrap());
        assert!(
            !w.consume_totp_step(id, 100).await.unwrap(),
            "{name}: a step is accepted once"
        );
        assert!(
            !w.consume_totp_step(id, 99).await.unwrap(),
            "{name}: older steps are refused"
        );
        w.put_recovery_codes(id, &[vec![7; 32], vec![8; 32]])
            .await
            .unwrap();
        assert!(w.use_recovery_code(id, &[7; 32], 5).await.unwrap());
        assert!(
            !w.use_recovery_code(id, &[7; 32], 6).await.unwrap(),
            "{name}: codes are one-time"
        );
        let session = SessionRow {
            id_hash: vec![9; 32],
            principal_id: id.into(),
            csrf_hash: vec![10; 32],
            created_at: 5,
            expires_at: 1000,
            stepped_up_at: None,
            source: "127.0.0.1".into(),
        };
        w.insert_session(&session).await.unwrap();
        assert!(w.step_up_session(&session.id_hash, 7).await.unwrap());
        let t = ThrottleRow {
            failures: 3,
            last_failure_at: 8,
            locked_until: 0,
        };
        w.put_throttle("account:alice", &t).await.unwrap();
        w.put_throttle("account:alice", &ThrottleRow { failures: 4, ..t })
            .await
            .unwrap();
        assert_eq!(w.policy_version_in_tx().await.unwrap(), 0);
        w.insert_policy(&PolicyRow {
            version: 1,
            text: "// p".into(),
            digest: "sha256:x".into(),
            created_at: 9,
            created_by: "user:admin".into(),
        })
        .await
        .unwrap();
        w.bump_identity_epoch().await.unwrap();
        w.commit(&[event(0)]).await.unwrap();

        assert_eq!(store.identity_epoch().await.unwrap(), epoch0 + 1, "{name}");
        assert_eq!(store.grants_of(id).await.unwrap(), vec![grant], "{name}");
        let totp = store.totp(id).await.unwrap().unwrap();
        assert_eq!(
            (totp.confirmed_at, totp.last_step),
            (Some(4), 100),
            "{name}"
        );
        assert_eq!(store.recovery_codes_left(id).await.unwrap(), 1, "{name}");
        let s = store.session(&session.id_hash).await.unwrap().unwrap();
        assert_eq!(s.stepped_up_at, Some(7), "{name}");
        assert_eq!(
            store
                .throttle("account:alice")
                .await
                .unwrap()
                .unwrap()
                .failures,
            4
        );
        assert_eq!(store.active_policy().await.unwrap().unwrap().version, 1);

        let mut w = store.begin_write().await.unwrap();
        assert!(w.delete_principal(id, 20).await.unwrap());
        assert!(
            !w.delete_principal(id, 21).await.unwrap(),
            "{name}: deleted once"
        );
        w.commit(&[event(1)]).await.unwrap();
        let gone = store.principal(id).await.unwrap().unwrap();
        assert_eq!((gone.deleted_at, gone.disabled), (Some(20), true), "{name}");
        assert!(store.grants_of(id).await.unwrap().is_empty());
        assert!(store.totp(id).await.unwrap().is_none());
        assert!(store.session(&session.id_hash).await.unwrap().is_none());
        assert!(
            store.principals().await.unwrap().is_empty(),
            "{name}: tombstones are hidden"
        );
        let mut w = store.begin_write().await.unwrap();
        assert!(
            matches!(
                w.insert_principal(&alice).await,
                Err(StoreError::AlreadyExists { .. })
            ),
            "{name}: a deleted id is never reused"
        );
    }
}
