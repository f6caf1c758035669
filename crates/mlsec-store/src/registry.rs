//! Repositories of the model registry: registered models, versions with their files, tags and
//! aliases.
//!
//! A version's files, digest, size, source and run are written by `insert_model_version` and by
//! nothing else: no statement in this module updates them. Deleting a version hides it (and
//! drops its aliases) but keeps its record; version numbers are never reused.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::WriteTx;
use crate::db::{Backend, Store, multi_row_insert};
use crate::error::StoreError;
use crate::principals::is_unique_violation;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredModelRow {
    pub name: String,
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub last_version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelVersionRow {
    pub name: String,
    pub version: i64,
    pub digest: String,
    pub size: i64,
    pub file_count: i64,
    pub source: String,
    pub run_id: Option<String>,
    pub model_id: Option<String>,
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub scan_severity: Option<String>,
    pub quarantined: bool,
    pub scan_summary: String,
    /// What the version was made from, frozen at creation (JSON).
    pub lineage_json: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelVersionFileRow {
    pub path: String,
    pub size: i64,
    pub sha256: String,
    pub scan_severity: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelAliasRow {
    pub name: String,
    pub alias: String,
    pub version: i64,
    pub updated_at: i64,
    pub updated_by: String,
}

/// A search of model versions: by model name (exact or LIKE pattern), run or digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionQuery {
    pub name: Option<String>,
    pub name_like: Option<String>,
    pub run_ids: Vec<String>,
    pub digest: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

const MODEL_COLUMNS: &str = "name, description, created_at, updated_at, created_by, last_version";
const VERSION_COLUMNS: &str = "name, version, digest, size, file_count, source, run_id, model_id, description, created_at, updated_at, created_by, scan_severity, quarantined, scan_summary, lineage_json";

fn model_from_row(r: &AnyRow) -> Result<RegisteredModelRow, StoreError> {
    Ok(RegisteredModelRow {
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        created_by: r.try_get("created_by")?,
        last_version: r.try_get("last_version")?,
    })
}

fn version_from_row(r: &AnyRow) -> Result<ModelVersionRow, StoreError> {
    Ok(ModelVersionRow {
        name: r.try_get("name")?,
        version: r.try_get("version")?,
        digest: r.try_get("digest")?,
        size: r.try_get("size")?,
        file_count: r.try_get("file_count")?,
        source: r.try_get("source")?,
        run_id: r.try_get("run_id")?,
        model_id: r.try_get("model_id")?,
        description: r.try_get("description")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        created_by: r.try_get("created_by")?,
        scan_severity: r.try_get("scan_severity")?,
        quarantined: r.try_get::<i64, _>("quarantined")? != 0,
        scan_summary: r.try_get("scan_summary")?,
        lineage_json: r.try_get("lineage_json")?,
    })
}

fn alias_from_row(r: &AnyRow) -> Result<ModelAliasRow, StoreError> {
    Ok(ModelAliasRow {
        name: r.try_get("name")?,
        alias: r.try_get("alias")?,
        version: r.try_get("version")?,
        updated_at: r.try_get("updated_at")?,
        updated_by: r.try_get("updated_by")?,
    })
}

fn not_found(what: &'static str, id: impl Into<String>) -> StoreError {
    StoreError::NotFound {
        what,
        id: id.into(),
    }
}

impl WriteTx {
    /// Creates a registered model; a deleted one of the same name comes back (its version
    /// numbers continue).
    pub async fn insert_registered_model(
        &mut self,
        name: &str,
        description: &str,
        now: i64,
        by: &str,
    ) -> Result<(), StoreError> {
        let revived = sqlx::query(
            "UPDATE registered_models SET deleted_at = NULL, description = $2, updated_at = $3 WHERE name = $1 AND deleted_at IS NOT NULL",
        )
        .bind(name)
        .bind(description)
        .bind(now)
        .execute(self.conn())
        .await?;
        if revived.rows_affected() > 0 {
            // A new life: the old model's tags do not carry over.
            sqlx::query("DELETE FROM registered_model_tags WHERE name = $1")
                .bind(name)
                .execute(self.conn())
                .await?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO registered_models (name, description, created_at, updated_at, created_by, last_version) VALUES ($1, $2, $3, $3, $4, 0)",
        )
        .bind(name)
        .bind(description)
        .bind(now)
        .bind(by)
        .execute(self.conn())
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists {
                    what: "registered model",
                    id: name.to_owned(),
                }
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    pub async fn update_registered_model(
        &mut self,
        name: &str,
        description: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE registered_models SET description = $2, updated_at = $3 WHERE name = $1 AND deleted_at IS NULL",
        )
        .bind(name)
        .bind(description)
        .bind(now)
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(not_found("registered model", name));
        }
        Ok(())
    }

    /// Hides a model and all its versions, and drops its aliases.
    pub async fn delete_registered_model(
        &mut self,
        name: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE registered_models SET deleted_at = $2, updated_at = $2 WHERE name = $1 AND deleted_at IS NULL",
        )
        .bind(name)
        .bind(now)
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(not_found("registered model", name));
        }
        sqlx::query("DELETE FROM model_aliases WHERE name = $1")
            .bind(name)
            .execute(self.conn())
            .await?;
        sqlx::query(
            "UPDATE model_versions SET deleted_at = $2 WHERE name = $1 AND deleted_at IS NULL",
        )
        .bind(name)
        .bind(now)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Issues the next version number of a live model (the row lock orders concurrent creates).
    pub async fn next_model_version(&mut self, name: &str) -> Result<i64, StoreError> {
        let n: Option<i64> = sqlx::query_scalar(
            "UPDATE registered_models SET last_version = last_version + 1 WHERE name = $1 AND deleted_at IS NULL RETURNING last_version",
        )
        .bind(name)
        .fetch_optional(self.conn())
        .await?;
        n.ok_or_else(|| not_found("registered model", name))
    }

    pub async fn insert_model_version(
        &mut self,
        v: &ModelVersionRow,
        files: &[ModelVersionFileRow],
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO model_versions ({VERSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ))
        .bind(&v.name)
        .bind(v.version)
        .bind(&v.digest)
        .bind(v.size)
        .bind(v.file_count)
        .bind(&v.source)
        .bind(&v.run_id)
        .bind(&v.model_id)
        .bind(&v.description)
        .bind(v.created_at)
        .bind(v.updated_at)
        .bind(&v.created_by)
        .bind(&v.scan_severity)
        .bind(v.quarantined as i64)
        .bind(&v.scan_summary)
        .bind(&v.lineage_json)
        .execute(self.conn())
        .await?;
        for chunk in files.chunks(150) {
            let sql = multi_row_insert(
                self.backend(),
                "INSERT INTO model_version_files (name, version, path, size, sha256, scan_severity)",
                6,
                chunk.len(),
            );
            let mut q = sqlx::query(&sql);
            for f in chunk {
                q = q
                    .bind(&v.name)
                    .bind(v.version)
                    .bind(&f.path)
                    .bind(f.size)
                    .bind(&f.sha256)
                    .bind(&f.scan_severity);
            }
            q.execute(self.conn()).await?;
        }
        Ok(())
    }

    /// Changes a version's description: the only column of a version that changes.
    pub async fn update_model_version_description(
        &mut self,
        name: &str,
        version: i64,
        description: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE model_versions SET description = $3, updated_at = $4 WHERE name = $1 AND version = $2 AND deleted_at IS NULL",
        )
        .bind(name)
        .bind(version)
        .bind(description)
        .bind(now)
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(not_found("model version", format!("{name}/{version}")));
        }
        Ok(())
    }

    pub async fn delete_model_version(
        &mut self,
        name: &str,
        version: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE model_versions SET deleted_at = $3 WHERE name = $1 AND version = $2 AND deleted_at IS NULL",
        )
        .bind(name)
        .bind(version)
        .bind(now)
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(not_found("model version", format!("{name}/{version}")));
        }
        sqlx::query("DELETE FROM model_aliases WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    pub async fn set_registered_model_tag(
        &mut self,
        name: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO registered_model_tags (name, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (name, key) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(key)
        .bind(value)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn delete_registered_model_tag(
        &mut self,
        name: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM registered_model_tags WHERE name = $1 AND key = $2")
            .bind(name)
            .bind(key)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn set_model_version_tag(
        &mut self,
        name: &str,
        version: i64,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO model_version_tags (name, version, key, value) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(version)
        .bind(key)
        .bind(value)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn delete_model_version_tag(
        &mut self,
        name: &str,
        version: i64,
        key: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM model_version_tags WHERE name = $1 AND version = $2 AND key = $3",
        )
        .bind(name)
        .bind(version)
        .bind(key)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Points an alias at a version; returns the version it pointed at before.
    pub async fn set_model_alias(&mut self, a: &ModelAliasRow) -> Result<Option<i64>, StoreError> {
        let lock = if self.backend() == Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let previous: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT version FROM model_aliases WHERE name = $1 AND alias = $2{lock}"
        ))
        .bind(&a.name)
        .bind(&a.alias)
        .fetch_optional(self.conn())
        .await?;
        sqlx::query(
            "INSERT INTO model_aliases (name, alias, version, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(&a.name)
        .bind(&a.alias)
        .bind(a.version)
        .bind(a.updated_at)
        .bind(&a.updated_by)
        .execute(self.conn())
        .await?;
        Ok(previous)
    }

    /// Removes an alias; returns the version it pointed at.
    pub async fn delete_model_alias(
        &mut self,
        name: &str,
        alias: &str,
    ) -> Result<Option<i64>, StoreError> {
        let previous: Option<i64> = sqlx::query_scalar(
            "DELETE FROM model_aliases WHERE name = $1 AND alias = $2 RETURNING version",
        )
        .bind(name)
        .bind(alias)
        .fetch_optional(self.conn())
        .await?;
        Ok(previous)
    }

    /// A live version read inside the transaction.
    pub async fn model_version_in_tx(
        &mut self,
        name: &str,
        version: i64,
    ) -> Result<Option<ModelVersionRow>, StoreError> {
        // Locked against a concurrent delete until the alias change commits.
        let lock = if self.backend() == Backend::Postgres {
            " FOR SHARE"
        } else {
            ""
        };
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM model_versions WHERE name = $1 AND version = $2 AND deleted_at IS NULL{lock}"
        ))
        .bind(name)
        .bind(version)
        .fetch_optional(self.conn())
        .await?;
        row.map(|r| version_from_row(&r)).transpose()
    }
}

impl Store {
    pub async fn registered_model(
        &self,
        name: &str,
    ) -> Result<Option<RegisteredModelRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {MODEL_COLUMNS} FROM registered_models WHERE name = $1 AND deleted_at IS NULL"
        ))
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| model_from_row(&r)).transpose()
    }

    /// Live registered models by name, optionally matching a LIKE pattern.
    pub async fn registered_models(
        &self,
        name_like: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<RegisteredModelRow>, StoreError> {
        let sql = format!(
            "SELECT {MODEL_COLUMNS} FROM registered_models WHERE deleted_at IS NULL{} ORDER BY name LIMIT {limit} OFFSET {offset}",
            if name_like.is_some() {
                " AND LOWER(name) LIKE LOWER($1)"
            } else {
                ""
            }
        );
        let mut q = sqlx::query(&sql).persistent(false);
        if let Some(p) = name_like {
            q = q.bind(p);
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter().map(model_from_row).collect()
    }

    pub async fn registered_model_tags(
        &self,
        name: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT key, value FROM registered_model_tags WHERE name = $1 ORDER BY key",
        )
        .bind(name)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
            .collect()
    }

    pub async fn model_version(
        &self,
        name: &str,
        version: i64,
    ) -> Result<Option<ModelVersionRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM model_versions WHERE name = $1 AND version = $2 AND deleted_at IS NULL"
        ))
        .bind(name)
        .bind(version)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| version_from_row(&r)).transpose()
    }

    /// Live versions matching a query, newest first.
    pub async fn model_versions(
        &self,
        query: &VersionQuery,
    ) -> Result<Vec<ModelVersionRow>, StoreError> {
        let mut wheres = vec!["deleted_at IS NULL".to_owned()];
        let mut texts: Vec<String> = Vec::new();
        let push = |t: String, texts: &mut Vec<String>| {
            texts.push(t);
            format!("${}", texts.len())
        };
        if let Some(n) = &query.name {
            wheres.push(format!("name = {}", push(n.clone(), &mut texts)));
        }
        if let Some(p) = &query.name_like {
            wheres.push(format!(
                "LOWER(name) LIKE LOWER({})",
                push(p.clone(), &mut texts)
            ));
        }
        if let Some(d) = &query.digest {
            wheres.push(format!("digest = {}", push(d.clone(), &mut texts)));
        }
        if !query.run_ids.is_empty() {
            let list: Vec<String> = query
                .run_ids
                .iter()
                .map(|r| push(r.clone(), &mut texts))
                .collect();
            wheres.push(format!("run_id IN ({})", list.join(", ")));
        }
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM model_versions WHERE {} ORDER BY name, version DESC LIMIT {} OFFSET {}",
            wheres.join(" AND "),
            query.limit.max(0),
            query.offset.max(0)
        );
        let mut q = sqlx::query(&sql).persistent(false);
        for t in texts {
            q = q.bind(t);
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter().map(version_from_row).collect()
    }

    pub async fn model_version_files(
        &self,
        name: &str,
        version: i64,
    ) -> Result<Vec<ModelVersionFileRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT path, size, sha256, scan_severity FROM model_version_files WHERE name = $1 AND version = $2 ORDER BY path",
        )
        .bind(name)
        .bind(version)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ModelVersionFileRow {
                    path: r.try_get("path")?,
                    size: r.try_get("size")?,
                    sha256: r.try_get("sha256")?,
                    scan_severity: r.try_get("scan_severity")?,
                })
            })
            .collect()
    }

    pub async fn model_version_tags(
        &self,
        name: &str,
        version: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT key, value FROM model_version_tags WHERE name = $1 AND version = $2 ORDER BY key",
        )
        .bind(name)
        .bind(version)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
            .collect()
    }

    pub async fn model_aliases(&self, name: &str) -> Result<Vec<ModelAliasRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, alias, version, updated_at, updated_by FROM model_aliases WHERE name = $1 ORDER BY alias",
        )
        .bind(name)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(alias_from_row).collect()
    }

    pub async fn model_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<Option<ModelAliasRow>, StoreError> {
        let row = sqlx::query(
            "SELECT name, alias, version, updated_at, updated_by FROM model_aliases WHERE name = $1 AND alias = $2",
        )
        .bind(name)
        .bind(alias)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| alias_from_row(&r)).transpose()
    }
}
