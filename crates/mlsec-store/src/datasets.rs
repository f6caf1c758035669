//! Repositories of datasets: versions (immutable once inserted: no statement here updates a
//! version's digest, files, size or profile), their files, schemas and checks.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::WriteTx;
use crate::db::{Backend, Store};
use crate::error::StoreError;
use crate::principals::is_unique_violation;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetRow {
    pub name: String,
    pub created_at: i64,
    pub created_by: String,
    pub schema_json: Option<String>,
    pub schema_revision: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatasetVersionRow {
    pub dataset: String,
    pub number: i64,
    pub digest: String,
    pub size: i64,
    pub file_count: i64,
    pub row_count: Option<i64>,
    pub message: String,
    pub source: String,
    pub created_at: i64,
    pub created_by: String,
    pub profile_json: Option<String>,
    pub status: String,
    pub quarantined: bool,
    pub checked_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetFileRow {
    pub path: String,
    pub size: i64,
    pub sha256: String,
    pub format: Option<String>,
    pub row_count: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetCheckRow {
    pub id: String,
    pub dataset: String,
    pub number: i64,
    pub reference_number: Option<i64>,
    pub verdict: String,
    pub result_json: String,
    pub report_digest: Option<String>,
    pub created_at: i64,
    pub created_by: String,
}

const VERSION_COLUMNS: &str = "dataset, number, digest, size, file_count, row_count, message, source, created_at, created_by, profile_json, status, quarantined, checked_at";
const VERSION_SUMMARY_COLUMNS: &str = "dataset, number, digest, size, file_count, row_count, message, source, created_at, created_by, NULL AS profile_json, status, quarantined, checked_at";

fn version_from_row(r: &AnyRow) -> Result<DatasetVersionRow, StoreError> {
    Ok(DatasetVersionRow {
        dataset: r.try_get("dataset")?,
        number: r.try_get("number")?,
        digest: r.try_get("digest")?,
        size: r.try_get("size")?,
        file_count: r.try_get("file_count")?,
        row_count: r.try_get("row_count")?,
        message: r.try_get("message")?,
        source: r.try_get("source")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        profile_json: r.try_get("profile_json")?,
        status: r.try_get("status")?,
        quarantined: r.try_get::<i64, _>("quarantined")? != 0,
        checked_at: r.try_get("checked_at")?,
    })
}

fn dataset_from_row(r: &AnyRow) -> Result<DatasetRow, StoreError> {
    Ok(DatasetRow {
        name: r.try_get("name")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        schema_json: r.try_get("schema_json")?,
        schema_revision: r.try_get("schema_revision")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn check_from_row(r: &AnyRow) -> Result<DatasetCheckRow, StoreError> {
    Ok(DatasetCheckRow {
        id: r.try_get("id")?,
        dataset: r.try_get("dataset")?,
        number: r.try_get("number")?,
        reference_number: r.try_get("reference_number")?,
        verdict: r.try_get("verdict")?,
        result_json: r.try_get("result_json")?,
        report_digest: r.try_get("report_digest")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}

impl WriteTx {
    /// Creates the dataset if it is new, then locks it so concurrent adds number versions in
    /// turn (SQLite's write transaction is already exclusive).
    pub async fn lock_dataset(
        &mut self,
        name: &str,
        now: i64,
        by: &str,
    ) -> Result<DatasetRow, StoreError> {
        sqlx::query(
            "INSERT INTO datasets (name, created_at, created_by, updated_at) VALUES ($1, $2, $3, $2)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now)
        .bind(by)
        .execute(self.conn())
        .await?;
        let lock = if self.backend() == Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let row = sqlx::query(&format!(
            "SELECT name, created_at, created_by, schema_json, schema_revision, updated_at FROM datasets WHERE name = $1{lock}"
        ))
        .bind(name)
        .fetch_one(self.conn())
        .await?;
        dataset_from_row(&row)
    }

    pub async fn next_dataset_version(&mut self, name: &str) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM dataset_versions WHERE dataset = $1",
        )
        .bind(name)
        .fetch_one(self.conn())
        .await?;
        Ok(n)
    }

    /// The version with this digest in this dataset, read inside the transaction.
    pub async fn dataset_version_with_digest(
        &mut self,
        name: &str,
        digest: &str,
    ) -> Result<Option<i64>, StoreError> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT number FROM dataset_versions WHERE dataset = $1 AND digest = $2",
        )
        .bind(name)
        .bind(digest)
        .fetch_optional(self.conn())
        .await?;
        Ok(n)
    }

    pub async fn insert_dataset_version(
        &mut self,
        v: &DatasetVersionRow,
        files: &[DatasetFileRow],
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO dataset_versions ({VERSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&v.dataset)
        .bind(v.number)
        .bind(&v.digest)
        .bind(v.size)
        .bind(v.file_count)
        .bind(v.row_count)
        .bind(&v.message)
        .bind(&v.source)
        .bind(v.created_at)
        .bind(&v.created_by)
        .bind(&v.profile_json)
        .bind(&v.status)
        .bind(v.quarantined as i64)
        .bind(v.checked_at)
        .execute(self.conn())
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists {
                    what: "dataset version",
                    id: format!("{}@{}", v.dataset, v.number),
                }
            } else {
                e.into()
            }
        })?;
        // Multi-row inserts keep a 1,000-file version to a handful of statements.
        for chunk in files.chunks(200) {
            let sql = crate::db::multi_row_insert(
                self.backend(),
                "INSERT INTO dataset_files (dataset, number, path, size, sha256, format, row_count)",
                7,
                chunk.len(),
            );
            let mut q = sqlx::query(&sql);
            for f in chunk {
                q = q
                    .bind(&v.dataset)
                    .bind(v.number)
                    .bind(&f.path)
                    .bind(f.size)
                    .bind(&f.sha256)
                    .bind(&f.format)
                    .bind(f.row_count);
            }
            q.execute(self.conn()).await?;
        }
        Ok(())
    }

    pub async fn set_dataset_schema(
        &mut self,
        name: &str,
        schema_json: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let revision: Option<i64> = sqlx::query_scalar(
            "UPDATE datasets SET schema_json = $2, schema_revision = schema_revision + 1, updated_at = $3
             WHERE name = $1 RETURNING schema_revision",
        )
        .bind(name)
        .bind(schema_json)
        .bind(now)
        .fetch_optional(self.conn())
        .await?;
        revision.ok_or_else(|| StoreError::NotFound {
            what: "dataset",
            id: name.to_owned(),
        })
    }

    /// Records a check and sets the version's status (the only columns of a version that change).
    pub async fn record_dataset_check(
        &mut self,
        c: &DatasetCheckRow,
        quarantine: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO dataset_checks (id, dataset, number, reference_number, verdict, result_json, report_digest, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&c.id)
        .bind(&c.dataset)
        .bind(c.number)
        .bind(c.reference_number)
        .bind(&c.verdict)
        .bind(&c.result_json)
        .bind(&c.report_digest)
        .bind(c.created_at)
        .bind(&c.created_by)
        .execute(self.conn())
        .await?;
        sqlx::query("UPDATE dataset_versions SET status = $3, quarantined = $4, checked_at = $5 WHERE dataset = $1 AND number = $2")
            .bind(&c.dataset)
            .bind(c.number)
            .bind(&c.verdict)
            .bind(quarantine as i64)
            .bind(c.created_at)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}

impl Store {
    pub async fn dataset(&self, name: &str) -> Result<Option<DatasetRow>, StoreError> {
        let row = sqlx::query("SELECT name, created_at, created_by, schema_json, schema_revision, updated_at FROM datasets WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| dataset_from_row(&r)).transpose()
    }

    pub async fn datasets(&self) -> Result<Vec<DatasetRow>, StoreError> {
        let rows = sqlx::query("SELECT name, created_at, created_by, NULL AS schema_json, schema_revision, updated_at FROM datasets ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(dataset_from_row).collect()
    }

    /// Versions of a dataset, newest first, without their profiles.
    pub async fn dataset_versions(&self, name: &str) -> Result<Vec<DatasetVersionRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_SUMMARY_COLUMNS} FROM dataset_versions WHERE dataset = $1 ORDER BY number DESC"
        ))
        .bind(name)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    pub async fn dataset_version(
        &self,
        name: &str,
        number: i64,
    ) -> Result<Option<DatasetVersionRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM dataset_versions WHERE dataset = $1 AND number = $2"
        ))
        .bind(name)
        .bind(number)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| version_from_row(&r)).transpose()
    }

    /// Versions (of any dataset) with this digest.
    pub async fn dataset_versions_with_digest(
        &self,
        digest: &str,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT dataset, number FROM dataset_versions WHERE digest = $1 ORDER BY dataset, number")
            .bind(digest)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("dataset")?, r.try_get("number")?)))
            .collect()
    }

    /// The newest version before `before` whose check passed: the reference of a new check.
    pub async fn last_passed_dataset_version(
        &self,
        name: &str,
        before: i64,
    ) -> Result<Option<i64>, StoreError> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(number) FROM dataset_versions WHERE dataset = $1 AND number < $2 AND status = 'passed'",
        )
        .bind(name)
        .bind(before)
        .fetch_one(self.pool())
        .await?;
        Ok(n)
    }

    pub async fn dataset_files(
        &self,
        name: &str,
        number: i64,
    ) -> Result<Vec<DatasetFileRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT path, size, sha256, format, row_count FROM dataset_files WHERE dataset = $1 AND number = $2 ORDER BY path",
        )
        .bind(name)
        .bind(number)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DatasetFileRow {
                    path: r.try_get("path")?,
                    size: r.try_get("size")?,
                    sha256: r.try_get("sha256")?,
                    format: r.try_get("format")?,
                    row_count: r.try_get("row_count")?,
                })
            })
            .collect()
    }

    /// The newest check of a version.
    pub async fn latest_dataset_check(
        &self,
        name: &str,
        number: i64,
    ) -> Result<Option<DatasetCheckRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, dataset, number, reference_number, verdict, result_json, report_digest, created_at, created_by
             FROM dataset_checks WHERE dataset = $1 AND number = $2 ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(name)
        .bind(number)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| check_from_row(&r)).transpose()
    }
}
