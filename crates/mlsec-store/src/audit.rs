use mlsec_audit::{
    AuditEvent, AuditRecord, ChainVerifier, Checkpoint, KeyId, SignedCheckpoint, TrustedKeys,
    VerifyReport, format_time,
};
use mlsec_types::Digest;
use sqlx::{Any, AnyConnection, Row, Transaction};
use tokio::sync::OwnedMutexGuard;

use crate::db::{Backend, Store};
use crate::error::StoreError;

/// Rows per multi-row INSERT when appending events (8 parameters a row).
const INSERT_CHUNK: usize = 64;
/// Records per page when verifying or exporting the whole log.
const PAGE: i64 = 20_000;

pub(crate) fn now_millis() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A write transaction. Its changes become visible only through [`WriteTx::commit`], which
/// appends the audit events describing them in the same transaction: a change cannot commit
/// without its events, and an event cannot exist without its change.
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    store: Store,
    _writer: Option<OwnedMutexGuard<()>>,
}

impl Store {
    /// Starts a write transaction.
    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let (writer, tx) = match self.backend() {
            Backend::Sqlite => {
                let guard = self.inner.write_lock.clone().lock_owned().await;
                // IMMEDIATE takes the write lock now, so a second process cannot make this
                // transaction fail half-way with SQLITE_BUSY when it upgrades.
                let tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
                (Some(guard), tx)
            }
            Backend::Postgres => (None, self.pool().begin().await?),
        };
        Ok(WriteTx {
            tx,
            store: self.clone(),
            _writer: writer,
        })
    }

    /// Appends events that record no other change (logins, denials, server lifecycle).
    pub async fn append_audit(
        &self,
        events: &[AuditEvent],
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.begin_write().await?.commit(events).await
    }

    /// Number of events and the hash of the last one.
    pub async fn audit_head(&self) -> Result<(u64, Digest), StoreError> {
        let row = sqlx::query("SELECT next_idx, head_hash FROM audit_head WHERE id = 1")
            .fetch_one(self.pool())
            .await?;
        decode_head(&row)
    }

    /// Events with index `>= from`, in order, at most `limit`.
    pub async fn audit_records(
        &self,
        from: u64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT idx, canonical, hash FROM audit_events WHERE idx >= $1 ORDER BY idx LIMIT $2",
        )
        .bind(from as i64)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(decode_record).collect()
    }

    /// Events matching a filter, newest first.
    pub async fn audit_search(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let before = query.before.map(|b| b as i64).unwrap_or(i64::MAX);
        let limit = query.limit.clamp(1, 1000);
        let rows = sqlx::query(
            "SELECT idx, canonical, hash FROM audit_events
             WHERE idx < $1 AND ($2 = '' OR actor = $2) AND ($3 = '' OR action = $3)
             ORDER BY idx DESC LIMIT $4",
        )
        .bind(before)
        .bind(query.actor.clone().unwrap_or_default())
        .bind(query.action.clone().unwrap_or_default())
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(decode_record).collect()
    }

    pub async fn audit_checkpoints(&self) -> Result<Vec<SignedCheckpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT idx, key_id, head, time, signature FROM audit_checkpoints ORDER BY idx, key_id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let head: Vec<u8> = row.try_get("head")?;
                Ok(SignedCheckpoint {
                    checkpoint: Checkpoint {
                        index: row.try_get::<i64, _>("idx")? as u64,
                        head: Digest::from_slice(&head)
                            .map_err(|e| StoreError::Inconsistent(e.to_string()))?,
                        time: row.try_get("time")?,
                        key_id: KeyId(row.try_get("key_id")?),
                    },
                    signature: row.try_get("signature")?,
                })
            })
            .collect()
    }

    /// Signs a checkpoint of the current head unless the newest checkpoint already covers it.
    pub async fn checkpoint_now(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        let Some(signer) = self.inner.signer.clone() else {
            return Ok(None);
        };
        let mut w = self.begin_write().await?;
        let (next, head) = lock_head(&mut w.tx, self.backend()).await?;
        if next == 0 {
            return Ok(None);
        }
        let last: Option<i64> =
            sqlx::query_scalar("SELECT MAX(idx) FROM audit_checkpoints WHERE key_id = $1")
                .bind(&signer.key_id().0)
                .fetch_one(&mut *w.tx)
                .await?;
        if last == Some(next as i64 - 1) {
            return Ok(None);
        }
        let cp = signer.sign(next - 1, head, format_time(time::OffsetDateTime::now_utc()))?;
        insert_checkpoint(&mut w.tx, &cp).await?;
        w.tx.commit().await?;
        Ok(Some(cp))
    }

    /// Walks the whole log through the chain verifier, page by page.
    pub async fn verify_audit(&self, trusted: &TrustedKeys) -> Result<VerifyReport, StoreError> {
        self.verify_audit_with(trusted, false).await
    }

    /// As [`Store::verify_audit`]; `deep` also decodes every event and checks its canonical form.
    pub async fn verify_audit_with(
        &self,
        trusted: &TrustedKeys,
        deep: bool,
    ) -> Result<VerifyReport, StoreError> {
        let checkpoints = self.audit_checkpoints().await?;
        if let Some(path) = self.inner.sqlite_path.clone() {
            // SQLite: one read-only statement on a plain connection streams the whole log in a
            // single read transaction, several times faster than rows through the async pool.
            let trusted = trusted.clone();
            return tokio::task::spawn_blocking(move || {
                verify_sqlite_file(&path, &checkpoints, &trusted, deep)
            })
            .await
            .map_err(|e| StoreError::Inconsistent(format!("verify task failed: {e}")))?;
        }
        let mut verifier = ChainVerifier::new(trusted, &checkpoints);
        if deep {
            verifier = verifier.deep();
        }
        let mut from = 0u64;
        loop {
            let page = self.audit_records(from, PAGE).await?;
            let Some(last) = page.last() else { break };
            from = last.index + 1;
            verifier.push_batch(&page);
            if (page.len() as i64) < PAGE {
                break;
            }
        }
        Ok(verifier.finish())
    }
}

/// Filter for [`Store::audit_search`].
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Only events with an index below this (for paging backwards).
    pub before: Option<u64>,
    pub limit: i64,
}

impl WriteTx {
    /// The connection inside the transaction, for repository calls.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    /// Runs a statement that takes no parameters inside the transaction (savepoints).
    pub async fn execute_raw(&mut self, statement: &'static str) -> Result<(), StoreError> {
        sqlx::query(statement)
            .persistent(false)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Appends `events` to the audit chain and commits everything done in this transaction.
    pub async fn commit(mut self, events: &[AuditEvent]) -> Result<Vec<AuditRecord>, StoreError> {
        if events.is_empty() {
            return Err(StoreError::NoAuditEvent);
        }
        let records = append(&mut self.tx, &self.store, events).await?;
        self.tx.commit().await?;
        Ok(records)
    }

    /// Abandons the transaction; nothing it did becomes visible.
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}

/// Streams `audit_events` from the SQLite file through the verifier. Reading runs on this thread
/// while a second thread verifies the previous batch.
fn verify_sqlite_file(
    path: &std::path::Path,
    checkpoints: &[SignedCheckpoint],
    trusted: &TrustedKeys,
    deep: bool,
) -> Result<VerifyReport, StoreError> {
    use rusqlite::{Connection, OpenFlags};
    let fail =
        |e: rusqlite::Error| StoreError::Database(format!("reading `{}`: {e}", path.display()));
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(fail)?;
    let mut stmt = conn
        .prepare("SELECT idx, canonical, hash FROM audit_events ORDER BY idx")
        .map_err(fail)?;
    let mut rows = stmt.query([]).map_err(fail)?;
    let (to_verifier, batches) = std::sync::mpsc::sync_channel::<Vec<AuditRecord>>(2);
    std::thread::scope(|scope| {
        let verifier = scope.spawn(move || {
            let mut verifier = ChainVerifier::new(trusted, checkpoints);
            if deep {
                verifier = verifier.deep();
            }
            for batch in batches {
                verifier.push_batch(&batch);
            }
            verifier.finish()
        });
        let mut batch = Vec::with_capacity(PAGE as usize);
        let mut read = || -> Result<(), StoreError> {
            while let Some(row) = rows.next().map_err(fail)? {
                let index: i64 = row.get(0).map_err(fail)?;
                let canonical: Vec<u8> = row.get(1).map_err(fail)?;
                let hash = row.get_ref(2).map_err(fail)?;
                batch.push(AuditRecord {
                    index: index as u64,
                    canonical,
                    // A stored hash of the wrong length or type is tampering: the verifier
                    // reports it at its index.
                    hash: hash
                        .as_blob()
                        .ok()
                        .and_then(|b| Digest::from_slice(b).ok())
                        .unwrap_or(Digest::ZERO),
                });
                if batch.len() == PAGE as usize {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(PAGE as usize));
                    if to_verifier.send(full).is_err() {
                        break;
                    }
                }
            }
            if !batch.is_empty() {
                let _ = to_verifier.send(std::mem::take(&mut batch));
            }
            Ok(())
        };
        let result = read();
        drop(to_verifier);
        let report = verifier.join().expect("verifier thread does not panic");
        result.map(|()| report)
    })
}

async fn lock_head(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
) -> Result<(u64, Digest), StoreError> {
    let sql = match backend {
        // Row lock: writers on every replica queue here, so the chain never forks.
        Backend::Postgres => "SELECT next_idx, head_hash FROM audit_head WHERE id = 1 FOR UPDATE",
        // BEGIN IMMEDIATE already holds SQLite's single write lock.
        Backend::Sqlite => "SELECT next_idx, head_hash FROM audit_head WHERE id = 1",
    };
    let row = sqlx::query(sql).fetch_one(&mut **tx).await?;
    decode_head(&row)
}

async fn append(
    tx: &mut Transaction<'static, Any>,
    store: &Store,
    events: &[AuditEvent],
) -> Result<Vec<AuditRecord>, StoreError> {
    let (mut next, mut prev) = lock_head(tx, store.backend()).await?;
    let first = next;
    let mut records = Vec::with_capacity(events.len());
    for event in events {
        let record = AuditRecord::seal(next, &prev, event)?;
        prev = record.hash;
        next += 1;
        records.push(record);
    }
    for chunk in records
        .chunks(INSERT_CHUNK)
        .zip(events.chunks(INSERT_CHUNK))
    {
        let (recs, evs) = chunk;
        let sql = crate::db::multi_row_insert(
            store.backend(),
            "INSERT INTO audit_events (idx, hash, canonical, time, actor, action, resource, decision)",
            8,
            recs.len(),
        );
        let mut query = sqlx::query(&sql);
        for (record, event) in recs.iter().zip(evs) {
            query = query
                .bind(record.index as i64)
                .bind(record.hash.as_bytes().to_vec())
                .bind(record.canonical.clone())
                .bind(event.time.clone())
                .bind(event.actor.to_string())
                .bind(event.action.clone())
                .bind(event.resource.clone())
                .bind(match event.decision {
                    mlsec_audit::Decision::Allow => "allow",
                    mlsec_audit::Decision::Deny => "deny",
                });
        }
        query.execute(&mut **tx).await?;
    }
    sqlx::query("UPDATE audit_head SET next_idx = $1, head_hash = $2 WHERE id = 1")
        .bind(next as i64)
        .bind(prev.as_bytes().to_vec())
        .execute(&mut **tx)
        .await?;

    if let Some(signer) = &store.inner.signer {
        let every = store.inner.checkpoint_every;
        if every > 0 {
            let time = format_time(time::OffsetDateTime::now_utc());
            for record in &records {
                if (record.index + 1) % every == 0 {
                    let cp = signer.sign(record.index, record.hash, time.clone())?;
                    insert_checkpoint(tx, &cp).await?;
                }
            }
        }
    }
    debug_assert_eq!(records.first().map(|r| r.index), Some(first));
    Ok(records)
}

async fn insert_checkpoint(
    tx: &mut Transaction<'static, Any>,
    cp: &SignedCheckpoint,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_checkpoints (idx, key_id, head, time, signature) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(cp.checkpoint.index as i64)
    .bind(&cp.checkpoint.key_id.0)
    .bind(cp.checkpoint.head.as_bytes().to_vec())
    .bind(&cp.checkpoint.time)
    .bind(&cp.signature)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn decode_head(row: &sqlx::any::AnyRow) -> Result<(u64, Digest), StoreError> {
    let next: i64 = row.try_get("next_idx")?;
    let hash: Vec<u8> = row.try_get("head_hash")?;
    let hash = Digest::from_slice(&hash).map_err(|e| StoreError::Inconsistent(e.to_string()))?;
    Ok((next as u64, hash))
}

fn decode_record(row: &sqlx::any::AnyRow) -> Result<AuditRecord, StoreError> {
    // Positional access: every query that decodes records selects `idx, canonical, hash`.
    let index: i64 = row.try_get(0)?;
    let hash: Vec<u8> = row.try_get(2)?;
    Ok(AuditRecord {
        index: index as u64,
        canonical: row.try_get(1)?,
        // A stored hash of the wrong length is tampering too: keep the record and let the
        // verifier report it at its index rather than failing the whole read.
        hash: Digest::from_slice(&hash).unwrap_or(Digest::ZERO),
    })
}
