//! Dataset use cases: add a version (hash, store, profile, record), verify a working copy,
//! check out a version, check a version against the last approved one, and read them back.
//! Every add, verify, checkout, check and schema change is an audit event.

use std::path::{Path, PathBuf};

use mlsec_audit::Decision;
use mlsec_data::check::{self, CheckInput, CheckOptions, CheckOutcome, Verdict};
use mlsec_data::manifest::{self, WalkedFile};
use mlsec_data::{
    DataError, DataSchema, DatasetProfile, FileEntry, Manifest, ManifestDiff, TableFormat,
    TableSource,
};
use mlsec_policy::{Resource, ResourceType};
use mlsec_store::{BlobRow, DatasetCheckRow, DatasetFileRow, DatasetVersionRow};
use mlsec_types::Digest;
use serde::Serialize;

use crate::error::CoreError;
use crate::service::{Mlsec, RequestCtx};

/// Longest dataset name.
const MAX_NAME: usize = 200;

impl From<DataError> for CoreError {
    fn from(e: DataError) -> Self {
        match e {
            DataError::Io { .. } => CoreError::DataDir(e.to_string()),
            other => CoreError::InvalidRequest(other.to_string()),
        }
    }
}

/// Dataset names: like model names, `project/name` or `name`, letters, digits and `._-`.
pub fn check_dataset_name(name: &str) -> Result<(), CoreError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.split('/').count() <= 2
        && name.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        });
    if ok {
        Ok(())
    } else {
        Err(CoreError::InvalidRequest(format!(
            "dataset name {name:?}: use letters, digits, `.`, `_`, `-`, optionally `project/name`"
        )))
    }
}

fn resource(name: &str) -> Resource {
    Resource::new(ResourceType::Dataset, name)
}

/// How a version is named on the command line and in the API: `NAME@N`, `NAME@sha256:…`,
/// `NAME` (the newest), or a bare `sha256:…` when only one dataset has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionRef {
    Latest(String),
    Number(String, i64),
    Digest(Option<String>, Digest),
}

impl VersionRef {
    pub fn parse(text: &str) -> Result<VersionRef, CoreError> {
        if let Some(hex) = text.strip_prefix("sha256:") {
            return Ok(VersionRef::Digest(None, parse_digest(hex)?));
        }
        let (name, version) = match text.rsplit_once('@') {
            Some((n, v)) => (n, Some(v)),
            None => (text, None),
        };
        check_dataset_name(name)?;
        match version {
            None => Ok(VersionRef::Latest(name.to_owned())),
            Some(v) => match v.strip_prefix("sha256:") {
                Some(hex) => Ok(VersionRef::Digest(
                    Some(name.to_owned()),
                    parse_digest(hex)?,
                )),
                None => v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .map(|n| VersionRef::Number(name.to_owned(), n))
                    .ok_or_else(|| {
                        CoreError::InvalidRequest(format!(
                            "version `{v}`: expected a number ≥ 1 or sha256:<hex>"
                        ))
                    }),
            },
        }
    }
}

fn parse_digest(hex: &str) -> Result<Digest, CoreError> {
    Digest::parse(&format!("sha256:{hex}"))
        .or_else(|_| Digest::parse(hex))
        .map_err(|e| CoreError::InvalidRequest(format!("digest: {e}")))
}

/// A version as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetVersionView {
    pub dataset: String,
    pub version: i64,
    /// `dataset@version`.
    pub reference: String,
    pub digest: String,
    pub size: u64,
    pub files: u64,
    pub rows: Option<u64>,
    pub message: String,
    pub source: String,
    pub created_at: i64,
    pub created_by: String,
    pub status: String,
    pub quarantined: bool,
    pub checked_at: Option<i64>,
}

impl From<&DatasetVersionRow> for DatasetVersionView {
    fn from(v: &DatasetVersionRow) -> Self {
        DatasetVersionView {
            dataset: v.dataset.clone(),
            version: v.number,
            reference: format!("{}@{}", v.dataset, v.number),
            digest: v.digest.clone(),
            size: v.size as u64,
            files: v.file_count as u64,
            rows: v.row_count.map(|r| r as u64),
            message: v.message.clone(),
            source: v.source.clone(),
            created_at: v.created_at,
            created_by: v.created_by.clone(),
            status: v.status.clone(),
            quarantined: v.quarantined,
            checked_at: v.checked_at,
        }
    }
}

/// What `add` did.
#[derive(Debug, Clone, Serialize)]
pub struct AddedVersion {
    #[serde(flatten)]
    pub version: DatasetVersionView,
    /// False when an identical version (same digest) already existed; nothing was recorded.
    pub created: bool,
    /// True when this version's profile gave the dataset its schema.
    pub schema_inferred: bool,
    /// Bytes newly written to the blob store (the rest was already there).
    pub new_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatasetSummaryView {
    pub name: String,
    pub created_at: i64,
    pub created_by: String,
    pub schema_revision: i64,
}

/// A version's files as uploaded (the API path): each file's bytes already stored as a blob.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct StagedFile {
    pub path: String,
    pub sha256: Digest,
    /// Known when this process just stored the bytes; otherwise read from the blob record.
    #[serde(skip)]
    pub stored_size: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyView {
    pub reference: String,
    pub digest: String,
    pub clean: bool,
    #[serde(flatten)]
    pub diff: ManifestDiff,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckView {
    pub reference: String,
    pub verdict: Verdict,
    pub quarantined: bool,
    pub report_digest: String,
    pub outcome: CheckOutcome,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckoutView {
    pub reference: String,
    pub digest: String,
    pub files: u64,
    pub bytes: u64,
    pub destination: String,
}

/// A stored file with where its bytes can be read and what format it is.
struct Materialized {
    sources: Vec<TableSource>,
    _temp: Option<tempdir::TempDir>,
}

mod tempdir {
    use std::path::{Path, PathBuf};

    /// A directory removed when dropped (blob copies for non-local blob stores).
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(parent: &Path) -> std::io::Result<TempDir> {
            let dir = parent.join(format!("data-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir)?;
            Ok(TempDir(dir))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A version's stored profile; one that does not parse means the database was altered.
fn stored_profile(row: &DatasetVersionRow) -> Result<Option<DatasetProfile>, CoreError> {
    row.profile_json
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| {
            CoreError::Store(mlsec_store::StoreError::Inconsistent(format!(
                "profile of {}@{}: {e}",
                row.dataset, row.number
            )))
        })
}

fn profile_json(p: &DatasetProfile) -> Result<String, CoreError> {
    serde_json::to_string(p).map_err(|e| CoreError::InvalidRequest(format!("profile: {e}")))
}

impl Mlsec {
    fn dataset_time(&self) -> String {
        let ns = self.now() as i128 * 1_000_000;
        time::OffsetDateTime::from_unix_timestamp_nanos(ns)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default()
    }

    /// Resolves a reference to a stored version.
    async fn resolve_dataset_version(
        &self,
        reference: &VersionRef,
    ) -> Result<DatasetVersionRow, CoreError> {
        let store = &self.inner.store;
        let not_found = |id: String| CoreError::NotFound {
            what: "dataset version",
            id,
        };
        let (name, number) = match reference {
            VersionRef::Number(name, n) => (name.clone(), *n),
            VersionRef::Latest(name) => {
                let versions = store.dataset_versions(name).await?;
                let newest = versions.first().ok_or_else(|| not_found(name.clone()))?;
                (name.clone(), newest.number)
            }
            VersionRef::Digest(name, digest) => {
                let hits = store
                    .dataset_versions_with_digest(&digest.to_string())
                    .await?;
                let hits: Vec<_> = hits
                    .into_iter()
                    .filter(|(n, _)| name.as_ref().is_none_or(|x| x == n))
                    .collect();
                match hits.as_slice() {
                    [] => return Err(not_found(digest.to_string())),
                    [(n, v)] => (n.clone(), *v),
                    _ => {
                        return Err(CoreError::InvalidRequest(format!(
                            "{digest} names versions of several datasets; write NAME@{digest}"
                        )));
                    }
                }
            }
        };
        store
            .dataset_version(&name, number)
            .await?
            .ok_or_else(|| not_found(format!("{name}@{number}")))
    }

    /// Resolves a reference for a caller allowed `action` on the dataset. The name is authorized
    /// before anything is looked up, so a caller learns nothing about datasets it may not see;
    /// a bare digest is resolved only among datasets the caller may `action`.
    pub(crate) async fn authorized_version(
        &self,
        ctx: &RequestCtx,
        reference: &VersionRef,
        action: &str,
    ) -> Result<DatasetVersionRow, CoreError> {
        match reference {
            VersionRef::Number(name, _)
            | VersionRef::Latest(name)
            | VersionRef::Digest(Some(name), _) => {
                self.authorize(ctx, action, &resource(name)).await?;
                self.resolve_dataset_version(reference).await
            }
            VersionRef::Digest(None, digest) => {
                let mut visible = Vec::new();
                for (name, number) in self
                    .inner
                    .store
                    .dataset_versions_with_digest(&digest.to_string())
                    .await?
                {
                    if self.authorize_quiet(ctx, action, &resource(&name)).await {
                        visible.push((name, number));
                    }
                }
                match visible.as_slice() {
                    [] => Err(CoreError::NotFound {
                        what: "dataset version",
                        id: digest.to_string(),
                    }),
                    [(name, number)] => {
                        self.authorize(ctx, action, &resource(name)).await?;
                        self.resolve_dataset_version(&VersionRef::Number(name.clone(), *number))
                            .await
                    }
                    _ => Err(CoreError::InvalidRequest(format!(
                        "{digest} names versions of several datasets; write NAME@{digest}"
                    ))),
                }
            }
        }
    }

    /// Adds a version from a local file or directory (the CLI path): files are hashed and
    /// stored in parallel, streaming, in one pass; the version is recorded with one audit event.
    pub async fn add_dataset_from_path(
        &self,
        ctx: &RequestCtx,
        name: &str,
        root: &Path,
        message: &str,
        source: &str,
    ) -> Result<AddedVersion, CoreError> {
        check_dataset_name(name)?;
        self.authorize(ctx, "dataset.write", &resource(name))
            .await?;
        let root = root.to_path_buf();
        let walked = tokio::task::spawn_blocking(move || manifest::walk(&root))
            .await
            .map_err(|e| CoreError::InvalidRequest(format!("walk: {e}")))??;
        if walked.is_empty() {
            return Err(CoreError::InvalidRequest(
                "nothing to add: no regular files".into(),
            ));
        }
        let (files, new_bytes) = self.ingest_files(walked).await?;
        let staged = files
            .into_iter()
            .map(|(path, sha256, size)| StagedFile {
                path,
                sha256,
                stored_size: Some(size),
            })
            .collect();
        let mut added = self
            .record_dataset_version(ctx, name, staged, message, source)
            .await?;
        added.new_bytes = new_bytes;
        Ok(added)
    }

    /// Hashes and stores files in parallel; each file is checked not to have changed meanwhile.
    async fn ingest_files(
        &self,
        walked: Vec<WalkedFile>,
    ) -> Result<(Vec<(String, Digest, u64)>, u64), CoreError> {
        if let Some(local) = self.inner.local_blobs.clone() {
            let parallelism = std::thread::available_parallelism().map_or(2, |n| n.get());
            let result = tokio::task::spawn_blocking(
                move || -> Result<Vec<(String, Digest, u64, bool)>, CoreError> {
                    let paths: Vec<PathBuf> = walked.iter().map(|f| f.absolute.clone()).collect();
                    let infos = local
                        .put_files(&paths, parallelism)
                        .map_err(CoreError::from)?;
                    walked
                        .iter()
                        .zip(infos)
                        .map(|(f, info)| {
                            if info.size != f.size {
                                return Err(CoreError::from(DataError::Changed {
                                    file: f.path.clone(),
                                    detail: format!("{} bytes listed, {} read", f.size, info.size),
                                }));
                            }
                            f.check_unchanged()?;
                            Ok((f.path.clone(), info.digest, info.size, info.created))
                        })
                        .collect()
                },
            )
            .await
            .map_err(|e| CoreError::InvalidRequest(format!("ingest: {e}")))??;
            let new_bytes = result.iter().filter(|r| r.3).map(|r| r.2).sum();
            return Ok((
                result.into_iter().map(|(p, d, s, _)| (p, d, s)).collect(),
                new_bytes,
            ));
        }
        let mut out = Vec::with_capacity(walked.len());
        let mut new_bytes = 0;
        for f in walked {
            let info = self.inner.blobs.put_file(&f.absolute).await?;
            if info.size != f.size {
                return Err(DataError::Changed {
                    file: f.path.clone(),
                    detail: format!("{} bytes listed, {} read", f.size, info.size),
                }
                .into());
            }
            f.check_unchanged()?;
            if info.created {
                new_bytes += info.size;
            }
            out.push((f.path, info.digest, info.size));
        }
        Ok((out, new_bytes))
    }

    /// Adds a version whose files were uploaded as blobs (the API path).
    pub async fn add_dataset_version(
        &self,
        ctx: &RequestCtx,
        name: &str,
        files: Vec<StagedFile>,
        message: &str,
        source: &str,
    ) -> Result<AddedVersion, CoreError> {
        check_dataset_name(name)?;
        self.authorize(ctx, "dataset.write", &resource(name))
            .await?;
        if files.is_empty() {
            return Err(CoreError::InvalidRequest(
                "a version needs at least one file".into(),
            ));
        }
        // A version exposes statistics of its files' contents, so naming a blob in one needs
        // the right to read that blob: knowing a digest is not enough.
        let mut seen = std::collections::BTreeSet::new();
        for f in &files {
            if seen.insert(f.sha256) {
                let blob = Resource::new(ResourceType::Blob, f.sha256.to_string());
                self.authorize(ctx, "blob.read", &blob).await?;
            }
        }
        self.record_dataset_version(ctx, name, files, message, source)
            .await
    }

    /// Copies blobs to local files when the blob store is remote.
    async fn materialize(
        &self,
        files: &[(String, Digest)],
    ) -> Result<(Vec<(String, PathBuf)>, Option<tempdir::TempDir>), CoreError> {
        if let Some(local) = &self.inner.local_blobs {
            return Ok((
                files
                    .iter()
                    .map(|(p, d)| (p.clone(), local.path(d)))
                    .collect(),
                None,
            ));
        }
        let tmp = tempdir::TempDir::new(&self.inner.config.data_dir.join("tmp"))
            .map_err(|e| CoreError::DataDir(format!("temporary directory: {e}")))?;
        let mut out = Vec::new();
        for (i, (path, digest)) in files.iter().enumerate() {
            use futures_util::StreamExt;
            use tokio::io::AsyncWriteExt;
            let target = tmp.path().join(format!("{i}"));
            let mut file = tokio::fs::File::create(&target)
                .await
                .map_err(|e| CoreError::DataDir(format!("{}: {e}", target.display())))?;
            let mut stream = self.inner.blobs.get(digest).await?;
            while let Some(chunk) = stream.next().await {
                let chunk =
                    chunk.map_err(|e| CoreError::DataDir(format!("read blob {digest}: {e}")))?;
                file.write_all(&chunk)
                    .await
                    .map_err(|e| CoreError::DataDir(format!("{}: {e}", target.display())))?;
            }
            out.push((path.clone(), target));
        }
        Ok((out, Some(tmp)))
    }

    /// The tabular files of a stored version (as recorded when it was added), readable.
    async fn version_tables(&self, row: &DatasetVersionRow) -> Result<Materialized, CoreError> {
        let manifest = self.stored_manifest(row).await?;
        let tables: Vec<(String, Digest)> = manifest
            .files
            .iter()
            .filter(|f| f.format.is_some())
            .map(|f| (f.path.clone(), f.sha256))
            .collect();
        self.table_sources(&tables).await
    }

    async fn table_sources(&self, files: &[(String, Digest)]) -> Result<Materialized, CoreError> {
        let (paths, temp) = self.materialize(files).await?;
        let sources =
            tokio::task::spawn_blocking(move || -> Result<Vec<TableSource>, DataError> {
                let mut out = Vec::new();
                for (name, path) in paths {
                    if let Some(format) = TableFormat::detect_named(&path, &name)? {
                        out.push(TableSource::new(path, name, format));
                    }
                }
                Ok(out)
            })
            .await
            .map_err(|e| CoreError::InvalidRequest(format!("detect: {e}")))??;
        Ok(Materialized {
            sources,
            _temp: temp,
        })
    }

    async fn record_dataset_version(
        &self,
        ctx: &RequestCtx,
        name: &str,
        files: Vec<StagedFile>,
        message: &str,
        source: &str,
    ) -> Result<AddedVersion, CoreError> {
        if message.len() > 4096 || source.len() > 1024 {
            return Err(CoreError::InvalidRequest(
                "message or source is too long".into(),
            ));
        }
        // Every file must be stored; sizes come from the blob records, not from the caller.
        let mut entries = Vec::with_capacity(files.len());
        for f in &files {
            let size = match (f.stored_size, &self.inner.local_blobs) {
                (Some(size), _) => Some(size),
                (None, Some(local)) => std::fs::metadata(local.path(&f.sha256))
                    .map(|m| m.len())
                    .ok(),
                (None, None) => self.inner.store.blob(&f.sha256).await?.map(|b| b.size),
            };
            let size = size.ok_or_else(|| CoreError::NotFound {
                what: "blob",
                id: f.sha256.to_string(),
            })?;
            entries.push(FileEntry {
                path: f.path.clone(),
                size,
                sha256: f.sha256,
                format: None,
                rows: None,
            });
        }
        let manifest = Manifest::new(entries)?;
        let digest = manifest.digest();
        if let Some(existing) = self
            .inner
            .store
            .dataset_versions_with_digest(&digest.to_string())
            .await?
            .into_iter()
            .find(|(n, _)| n == name)
        {
            let row = self
                .inner
                .store
                .dataset_version(name, existing.1)
                .await?
                .expect("listed version exists");
            return Ok(AddedVersion {
                version: (&row).into(),
                created: false,
                schema_inferred: false,
                new_bytes: 0,
            });
        }

        // Profile the tabular files (CPU-bound: off the async threads).
        let pairs: Vec<(String, Digest)> = manifest
            .files
            .iter()
            .map(|f| (f.path.clone(), f.sha256))
            .collect();
        let materialized = self.table_sources(&pairs).await?;
        let sources = materialized.sources.clone();
        let profiled = tokio::task::spawn_blocking(
            move || -> Result<Option<(DatasetProfile, Vec<u64>)>, DataError> {
                if sources.is_empty() {
                    return Ok(None);
                }
                DatasetProfile::from_sources(&sources).map(Some)
            },
        )
        .await
        .map_err(|e| CoreError::InvalidRequest(format!("profile: {e}")))??;
        let mut manifest = manifest;
        if let Some((_, rows)) = &profiled {
            for (source, rows) in materialized.sources.iter().zip(rows) {
                if let Some(f) = manifest.files.iter_mut().find(|f| f.path == source.name) {
                    f.rows = Some(*rows);
                    f.format = Some(source.format);
                }
            }
        }
        drop(materialized);

        let now = self.now();
        let by = ctx.principal.actor().to_string();
        let mut w = self.inner.store.begin_write().await?;
        let dataset = w.lock_dataset(name, now, &by).await?;
        if let Some(n) = w
            .dataset_version_with_digest(name, &digest.to_string())
            .await?
        {
            w.rollback().await?;
            let row = self
                .inner
                .store
                .dataset_version(name, n)
                .await?
                .expect("version exists");
            return Ok(AddedVersion {
                version: (&row).into(),
                created: false,
                schema_inferred: false,
                new_bytes: 0,
            });
        }
        let number = w.next_dataset_version(name).await?;
        for f in &manifest.files {
            w.insert_blob(&BlobRow {
                digest: f.sha256,
                size: f.size,
                created_at: now,
                created_by: by.clone(),
            })
            .await?;
        }
        let row = DatasetVersionRow {
            dataset: name.to_owned(),
            number,
            digest: digest.to_string(),
            size: manifest.size() as i64,
            file_count: manifest.files.len() as i64,
            row_count: manifest.rows().map(|r| r as i64),
            message: message.to_owned(),
            source: source.to_owned(),
            created_at: now,
            created_by: by.clone(),
            profile_json: profiled.as_ref().map(|p| profile_json(&p.0)).transpose()?,
            status: "unchecked".into(),
            quarantined: false,
            checked_at: None,
        };
        let file_rows: Vec<DatasetFileRow> = manifest
            .files
            .iter()
            .map(|f| DatasetFileRow {
                path: f.path.clone(),
                size: f.size as i64,
                sha256: f.sha256.to_string(),
                format: f.format.and_then(|x| {
                    serde_json::to_value(x)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                }),
                row_count: f.rows.map(|r| r as i64),
            })
            .collect();
        w.insert_dataset_version(&row, &file_rows).await?;
        let mut schema_inferred = false;
        if dataset.schema_json.is_none()
            && let Some((profile, _)) = &profiled
        {
            let schema = DataSchema::infer(profile);
            let text = serde_json::to_string_pretty(&schema)
                .map_err(|e| CoreError::InvalidRequest(e.to_string()))?;
            w.set_dataset_schema(name, &text, now).await?;
            schema_inferred = true;
        }
        let event = ctx
            .event(
                "dataset.version.add",
                format!("dataset:{name}@{number}"),
                Decision::Allow,
                "recorded",
            )
            .with_details(serde_json::json!({
                "digest": digest.to_string(),
                "files": manifest.files.len(),
                "size": manifest.size(),
                "rows": manifest.rows(),
                "message": message,
                "source": source,
                "schema_inferred": schema_inferred,
            }));
        w.commit(&[event]).await?;
        Ok(AddedVersion {
            version: (&row).into(),
            created: true,
            schema_inferred,
            new_bytes: 0,
        })
    }

    pub async fn list_datasets(
        &self,
        ctx: &RequestCtx,
    ) -> Result<Vec<DatasetSummaryView>, CoreError> {
        let rows = self.inner.store.datasets().await?;
        let mut out = Vec::new();
        for r in rows {
            // Listing shows only what the caller may read.
            if self
                .authorize_quiet(ctx, "dataset.read", &resource(&r.name))
                .await
            {
                out.push(DatasetSummaryView {
                    name: r.name,
                    created_at: r.created_at,
                    created_by: r.created_by,
                    schema_revision: r.schema_revision,
                });
            }
        }
        Ok(out)
    }

    pub async fn dataset_versions(
        &self,
        ctx: &RequestCtx,
        name: &str,
    ) -> Result<Vec<DatasetVersionView>, CoreError> {
        check_dataset_name(name)?;
        self.authorize(ctx, "dataset.read", &resource(name)).await?;
        if self.inner.store.dataset(name).await?.is_none() {
            return Err(CoreError::NotFound {
                what: "dataset",
                id: name.to_owned(),
            });
        }
        Ok(self
            .inner
            .store
            .dataset_versions(name)
            .await?
            .iter()
            .map(Into::into)
            .collect())
    }

    /// A version with its files and profile summary.
    pub async fn dataset_version(
        &self,
        ctx: &RequestCtx,
        reference: &VersionRef,
    ) -> Result<DatasetVersionDetail, CoreError> {
        let row = self
            .authorized_version(ctx, reference, "dataset.read")
            .await?;

        let files = self
            .inner
            .store
            .dataset_files(&row.dataset, row.number)
            .await?;
        let profile = stored_profile(&row)?;
        let check = self
            .inner
            .store
            .latest_dataset_check(&row.dataset, row.number)
            .await?;
        Ok(DatasetVersionDetail {
            version: (&row).into(),
            files: files
                .into_iter()
                .map(|f| FileView {
                    path: f.path,
                    size: f.size as u64,
                    sha256: f.sha256,
                    format: f.format,
                    rows: f.row_count.map(|r| r as u64),
                })
                .collect(),
            columns: profile
                .map(|p| p.columns.iter().map(|c| c.summary()).collect())
                .unwrap_or_default(),
            last_check: check.map(|c| CheckSummary {
                id: c.id,
                verdict: c.verdict,
                reference: c.reference_number.map(|n| format!("{}@{n}", row.dataset)),
                report_digest: c.report_digest,
                created_at: c.created_at,
                created_by: c.created_by,
            }),
        })
    }

    /// The stored profile of a version (for merging or external analysis).
    pub async fn dataset_profile(
        &self,
        ctx: &RequestCtx,
        reference: &VersionRef,
    ) -> Result<Option<DatasetProfile>, CoreError> {
        let row = self
            .authorized_version(ctx, reference, "dataset.read")
            .await?;

        stored_profile(&row)
    }

    pub async fn dataset_schema(
        &self,
        ctx: &RequestCtx,
        name: &str,
    ) -> Result<Option<DataSchema>, CoreError> {
        check_dataset_name(name)?;
        self.authorize(ctx, "dataset.read", &resource(name)).await?;
        let row = self
            .inner
            .store
            .dataset(name)
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: "dataset",
                id: name.to_owned(),
            })?;
        row.schema_json
            .as_deref()
            .map(DataSchema::parse)
            .transpose()
            .map_err(CoreError::from)
    }

    /// Replaces the schema enforced on new versions. Loosening a schema weakens a gate, so
    /// this takes the approver's permission, not the writer's.
    pub async fn set_dataset_schema(
        &self,
        ctx: &RequestCtx,
        name: &str,
        text: &str,
    ) -> Result<i64, CoreError> {
        check_dataset_name(name)?;
        self.authorize(ctx, "dataset.approve", &resource(name))
            .await?;
        let schema = DataSchema::parse(text)?;
        let canonical = serde_json::to_string_pretty(&schema)
            .map_err(|e| CoreError::InvalidRequest(e.to_string()))?;
        let mut w = self.inner.store.begin_write().await?;
        let revision = w.set_dataset_schema(name, &canonical, self.now()).await?;
        let event = ctx
            .event("dataset.schema.set", format!("dataset:{name}"), Decision::Allow, "schema replaced")
            .with_details(serde_json::json!({ "revision": revision, "digest": Digest::of(canonical.as_bytes()).to_string(), "columns": schema.columns.len() }));
        w.commit(&[event]).await?;
        Ok(revision)
    }

    /// Compares a working copy with a version: the unauthorized-data-change check.
    pub async fn verify_dataset(
        &self,
        ctx: &RequestCtx,
        reference: &VersionRef,
        working: Vec<FileEntry>,
    ) -> Result<VerifyView, CoreError> {
        let row = self
            .authorized_version(ctx, reference, "dataset.read")
            .await?;

        let manifest = self.stored_manifest(&row).await?;
        let diff = manifest.diff(&working);
        let clean = diff.is_clean();
        let event = ctx
            .event(
                "dataset.verify",
                format!("dataset:{}@{}", row.dataset, row.number),
                Decision::Allow,
                if clean {
                    "working copy matches"
                } else {
                    "working copy differs"
                },
            )
            .with_details(serde_json::json!({
                "digest": row.digest,
                "clean": clean,
                "added": diff.added.len(),
                "removed": diff.removed.len(),
                "modified": diff.modified.len(),
            }));
        self.inner.store.append_audit(&[event]).await?;
        Ok(VerifyView {
            reference: format!("{}@{}", row.dataset, row.number),
            digest: row.digest,
            clean,
            diff,
        })
    }

    /// Hashes a local working copy in parallel and verifies it (the CLI path).
    pub async fn verify_dataset_path(
        &self,
        ctx: &RequestCtx,
        reference: &VersionRef,
        root: &Path,
    ) -> Result<VerifyView, CoreError> {
        let root = root.to_path_buf();
        let working = tokio::task::spawn_blocking(move || manifest::hash_tree(&root))
            .await
            .map_err(|e| CoreError::InvalidRequest(format!("hash: {e}")))??;
        self.verify_dataset(ctx, reference, working).await
    }

    async fn stored_manifest(&self, row: &DatasetVersionRow) -> Result<Manifest, CoreError> {
        let files = self
            .inner
            .store
            .dataset_files(&row.dataset, row.number)
            .await?;
        let entries = files
            .into_iter()
            .map(|f| {
                Ok(FileEntry {
                    path: f.path,
                    size: f.size as u64,
                    sha256: Digest::parse(&f.sha256)
                        .map_err(|e| mlsec_store::StoreError::Inconsistent(e.to_string()))?,
                    // Recorded when the version was added; lets a check read only its tables.
                    format: f.format.as_deref().and_then(|t| {
                        serde_json::from_value(serde_json::Value::String(t.into())).ok()
                    }),
                    rows: f.row_count.map(|r| r as u64),
                })
            })
            .collect::<Result<Vec<_>, mlsec_store::StoreError>>()?;
        let manifest = Manifest::new(entries)?;
        // The files table and the recorded digest must agree, or the store was tampered with.
        if manifest.digest().to_string() != row.digest {
            return Err(CoreError::Integrity {
                digest: row.digest.clone(),
                actual: manifest.digest().to_string(),
            });
        }
        Ok(manifest)
    }

    /// Restores a version's files under `destination` (which must be empty or absent), each
    /// re-hashed as it is written.
    pub async fn checkout_dataset(
        &self,
        ctx: &RequestCtx,
        reference: &VersionRef,
        destination: &Path,
        allow_quarantined: bool,
    ) -> Result<CheckoutView, CoreError> {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        let row = self
            .authorized_version(ctx, reference, "dataset.read")
            .await?;
        if row.quarantined && !allow_quarantined {
            return Err(CoreError::Conflict(format!(
                "{}@{} is quarantined (its check failed); restoring it needs --allow-quarantined",
                row.dataset, row.number
            )));
        }
        let manifest = self.stored_manifest(&row).await?;
        if let Ok(mut entries) = std::fs::read_dir(destination)
            && entries.next().is_some()
        {
            return Err(CoreError::InvalidRequest(format!(
                "{} is not empty",
                destination.display()
            )));
        }
        let io = |what: &str, p: &Path, e: std::io::Error| {
            CoreError::DataDir(format!("{what} {}: {e}", p.display()))
        };
        // Files are written into a staging directory under names of their own and moved into
        // place only once every one is verified, so no name in the tree can collide with a
        // temporary file and a failed checkout leaves no partial tree.
        let staging =
            destination.join(format!(".mlsec-checkout-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::create_dir_all(&staging)
            .await
            .map_err(|e| io("create", &staging, e))?;
        let result: Result<u64, CoreError> = async {
            let mut bytes = 0u64;
            for (i, f) in manifest.files.iter().enumerate() {
                let part = staging.join(i.to_string());
                let mut out = tokio::fs::File::create(&part)
                    .await
                    .map_err(|e| io("create", &part, e))?;
                let mut hasher = mlsec_types::Sha256Writer::new();
                let mut stream = self.inner.blobs.get(&f.sha256).await?;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| io("read blob for", Path::new(&f.path), e))?;
                    hasher.update(&chunk);
                    out.write_all(&chunk)
                        .await
                        .map_err(|e| io("write", &part, e))?;
                }
                out.sync_all().await.map_err(|e| io("fsync", &part, e))?;
                let actual = hasher.finish();
                if actual != f.sha256 {
                    return Err(CoreError::Integrity {
                        digest: f.sha256.to_string(),
                        actual: actual.to_string(),
                    });
                }
                bytes += f.size;
            }
            for (i, f) in manifest.files.iter().enumerate() {
                let target = destination.join(&f.path);
                if let Some(parent) = target.parent() {
                    tokio::fs::create_dir_all(parent)
                        .await
                        .map_err(|e| io("create", parent, e))?;
                }
                tokio::fs::rename(staging.join(i.to_string()), &target)
                    .await
                    .map_err(|e| io("rename", &target, e))?;
            }
            Ok(bytes)
        }
        .await;
        let _ = tokio::fs::remove_dir_all(&staging).await;
        let bytes = result?;
        let event = ctx
            .event("dataset.checkout", format!("dataset:{}@{}", row.dataset, row.number), Decision::Allow, "restored")
            .with_details(serde_json::json!({ "digest": row.digest, "files": manifest.files.len(), "size": bytes, "destination": destination.display().to_string(), "quarantined": row.quarantined }));
        self.inner.store.append_audit(&[event]).await?;
        Ok(CheckoutView {
            reference: format!("{}@{}", row.dataset, row.number),
            digest: row.digest,
            files: manifest.files.len() as u64,
            bytes,
            destination: destination.display().to_string(),
        })
    }

    /// Runs schema, drift and poisoning checks of a version against the last version whose
    /// check passed, records the verdict on the version (a failed version is quarantined) and
    /// stores the HTML report as a blob.
    pub async fn check_dataset(
        &self,
        ctx: &RequestCtx,
        reference: &VersionRef,
        options: CheckOptions,
    ) -> Result<CheckView, CoreError> {
        let row = self
            .authorized_version(ctx, reference, "dataset.write")
            .await?;
        let name = row.dataset.clone();
        options.validate()?;
        // Thresholds decide whether a version passes and becomes the reference of later checks:
        // changing them is a gate decision, like editing the schema, not a writer's.
        if serde_json::to_value(&options).ok() != serde_json::to_value(CheckOptions::default()).ok()
        {
            self.authorize(ctx, "dataset.approve", &resource(&name))
                .await?;
        }
        let dataset =
            self.inner
                .store
                .dataset(&name)
                .await?
                .ok_or_else(|| CoreError::NotFound {
                    what: "dataset",
                    id: name.clone(),
                })?;
        let schema = match &dataset.schema_json {
            Some(text) => DataSchema::parse(text)?,
            None => {
                return Err(CoreError::InvalidRequest(format!(
                    "dataset `{name}` has no tabular files to check"
                )));
            }
        };
        let current_profile = match stored_profile(&row)? {
            Some(p) => p,
            None => {
                return Err(CoreError::InvalidRequest(format!(
                    "{name}@{} has no tabular files to check",
                    row.number
                )));
            }
        };
        let reference_row = match self
            .inner
            .store
            .last_passed_dataset_version(&name, row.number)
            .await?
        {
            Some(n) => self.inner.store.dataset_version(&name, n).await?,
            None => None,
        };
        let reference_profile = match &reference_row {
            Some(r) => stored_profile(r)?,
            None => None,
        };
        let current_sources = self.version_tables(&row).await?;
        let reference_sources = match &reference_row {
            Some(r) => Some(self.version_tables(r).await?),
            None => None,
        };
        let current_label = format!("{name}@{}", row.number);
        let reference_label = reference_row
            .as_ref()
            .map(|r| format!("{name}@{}", r.number));
        let generated_at = self.dataset_time();
        let dataset_name = name.clone();
        let (outcome, html) =
            tokio::task::spawn_blocking(move || -> Result<(CheckOutcome, String), DataError> {
                let reference = match (&reference_profile, &reference_sources, reference_label) {
                    (Some(p), Some(s), Some(label)) => Some(CheckInput {
                        label,
                        profile: p,
                        sources: &s.sources,
                    }),
                    _ => None,
                };
                let outcome = check::run(
                    &dataset_name,
                    CheckInput {
                        label: current_label,
                        profile: &current_profile,
                        sources: &current_sources.sources,
                    },
                    reference,
                    &schema,
                    &options,
                )?;
                let html = mlsec_data::report::render(&outcome, &generated_at);
                Ok((outcome, html))
            })
            .await
            .map_err(|e| CoreError::InvalidRequest(format!("check: {e}")))??;

        let report = self
            .inner
            .blobs
            .put_stream(Box::pin(futures_util::stream::once(async move {
                Ok::<_, std::io::Error>(bytes::Bytes::from(html))
            })))
            .await?;
        let failed = outcome.verdict == Verdict::Failed;
        let verdict = if failed { "failed" } else { "passed" };
        let now = self.now();
        let by = ctx.principal.actor().to_string();
        let result_json = serde_json::to_string(&outcome)
            .map_err(|e| CoreError::InvalidRequest(e.to_string()))?;
        let check_row = DatasetCheckRow {
            id: uuid::Uuid::now_v7().to_string(),
            dataset: name.clone(),
            number: row.number,
            reference_number: reference_row.as_ref().map(|r| r.number),
            verdict: verdict.into(),
            result_json,
            report_digest: Some(report.digest.to_string()),
            created_at: now,
            created_by: by.clone(),
        };
        let mut w = self.inner.store.begin_write().await?;
        w.insert_blob(&BlobRow {
            digest: report.digest,
            size: report.size,
            created_at: now,
            created_by: by,
        })
        .await?;
        w.record_dataset_check(&check_row, failed).await?;
        let fired: Vec<&str> = outcome
            .poison
            .as_ref()
            .map(|p| p.fired().map(|s| s.id.as_str()).collect())
            .unwrap_or_default();
        let event = ctx
            .event(
                "dataset.check",
                format!("dataset:{name}@{}", row.number),
                Decision::Allow,
                if failed {
                    "failed: quarantined"
                } else {
                    "passed"
                },
            )
            .with_details(serde_json::json!({
                "digest": row.digest,
                "verdict": verdict,
                "reference": check_row.reference_number.map(|n| format!("{name}@{n}")),
                "reference_digest": reference_row.as_ref().map(|r| r.digest.clone()),
                "reasons": outcome.reasons.len(),
                "schema_violations": outcome.violations.len(),
                "drifted_columns": outcome.drift.as_ref().map(|d| d.drifted_columns),
                "poisoning_signals": fired,
                "report": report.digest.to_string(),
            }));
        w.commit(&[event]).await?;
        Ok(CheckView {
            reference: format!("{name}@{}", row.number),
            verdict: outcome.verdict,
            quarantined: failed,
            report_digest: report.digest.to_string(),
            outcome,
        })
    }

    /// The HTML report of a version's newest check.
    pub async fn dataset_report(
        &self,
        ctx: &RequestCtx,
        reference: &VersionRef,
    ) -> Result<(mlsec_store::ByteStream, Digest), CoreError> {
        let row = self
            .authorized_version(ctx, reference, "dataset.read")
            .await?;

        let check = self
            .inner
            .store
            .latest_dataset_check(&row.dataset, row.number)
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: "check of",
                id: format!("{}@{}", row.dataset, row.number),
            })?;
        let digest = check
            .report_digest
            .as_deref()
            .map(Digest::parse)
            .transpose()
            .map_err(|e| mlsec_store::StoreError::Inconsistent(e.to_string()))?
            .ok_or_else(|| CoreError::NotFound {
                what: "report",
                id: check.id.clone(),
            })?;
        Ok((self.inner.blobs.get(&digest).await?, digest))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FileView {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub format: Option<String>,
    pub rows: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckSummary {
    pub id: String,
    pub verdict: String,
    pub reference: Option<String>,
    pub report_digest: Option<String>,
    pub created_at: i64,
    pub created_by: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatasetVersionDetail {
    #[serde(flatten)]
    pub version: DatasetVersionView,
    pub files: Vec<FileView>,
    pub columns: Vec<mlsec_data::profile::ColumnSummary>,
    pub last_check: Option<CheckSummary>,
}
