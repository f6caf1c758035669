//! Artifacts of runs and logged models: stored as content-addressed blobs, recorded with their
//! SHA-256 and the model scanner's verdict, written once per path, never changed.
//!
//! Paths live in MLflow's proxied artifact namespace: `EXP/RUN_ID/artifacts/REL` for runs and
//! `EXP/models/MODEL_ID/artifacts/REL` for logged models. Access is the owning experiment's:
//! `experiment.write` to upload, `experiment.read` to list and download.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use mlsec_audit::Decision;
use mlsec_scan::{Coverage, ScanOptions, ScanReport};
use mlsec_store::{ArtifactRow, BlobRow, ByteStream};
use mlsec_types::Digest;
use serde::Serialize;

use crate::error::CoreError;
use crate::group_commit::run_refuses_writes;
use crate::service::{Mlsec, RequestCtx};
use crate::tracking::experiment_resource;

/// Longest artifact path.
const MAX_PATH: usize = 2048;
/// Largest artifact held in memory to scan when blobs are not on the local file system.
const MAX_REMOTE_SCAN_BYTES: u64 = 2 << 30;

/// Who owns an artifact path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactOwner {
    Run(String),
    LoggedModel(String),
}

/// A parsed artifact path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactPath {
    pub experiment_id: i64,
    pub owner: ArtifactOwner,
    /// Path below the owner's artifact root (may be empty for the root itself).
    pub relative: String,
}

impl ArtifactPath {
    /// Parses `EXP/RUN/artifacts[/REL]` or `EXP/models/MODEL/artifacts[/REL]`, refusing
    /// anything that could climb out of its root.
    pub fn parse(path: &str) -> Result<ArtifactPath, CoreError> {
        let path = path.trim_matches('/');
        let bad = |why: &str| CoreError::InvalidRequest(format!("artifact path {path:?}: {why}"));
        if path.len() > MAX_PATH {
            return Err(bad("too long"));
        }
        let parts: Vec<&str> = path.split('/').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains('\\'))
            || path.chars().any(char::is_control)
        {
            return Err(bad("empty, `.` or `..` segments are not allowed"));
        }
        let experiment_id = parts[0]
            .parse::<i64>()
            .map_err(|_| bad("expected the experiment id first"))?;
        let (owner, rest) = match parts.get(1..) {
            Some(["models", model, "artifacts", rest @ ..]) => {
                (ArtifactOwner::LoggedModel((*model).to_owned()), rest)
            }
            Some([run, "artifacts", rest @ ..]) => (ArtifactOwner::Run((*run).to_owned()), rest),
            _ => {
                return Err(bad(
                    "expected EXP/RUN/artifacts/… or EXP/models/ID/artifacts/…",
                ));
            }
        };
        Ok(ArtifactPath {
            experiment_id,
            owner,
            relative: rest.join("/"),
        })
    }

    pub fn root(&self) -> String {
        match &self.owner {
            ArtifactOwner::Run(r) => format!("{}/{r}/artifacts", self.experiment_id),
            ArtifactOwner::LoggedModel(m) => {
                format!("{}/models/{m}/artifacts", self.experiment_id)
            }
        }
    }

    pub fn full(&self) -> String {
        if self.relative.is_empty() {
            self.root()
        } else {
            format!("{}/{}", self.root(), self.relative)
        }
    }
}

/// `_registry/<hex>[/<rel>]` → (hex, rel): the read-only view of a registered version.
fn pinned_path(path: &str) -> Option<(&str, &str)> {
    let rest = path
        .trim_matches('/')
        .strip_prefix(crate::registry::PINNED_ROOT)?
        .strip_prefix('/')?;
    Some(rest.split_once('/').unwrap_or((rest, "")))
}

/// One entry of a directory listing.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ArtifactEntry {
    /// Relative to the listed directory's owner root (MLflow's convention for run listings).
    pub path: String,
    pub is_dir: bool,
    pub file_size: Option<i64>,
    pub sha256: Option<String>,
}

/// The scanner's verdict on one stored file.
#[derive(Debug, Clone)]
pub(crate) struct FileScan {
    pub severity: Option<String>,
    pub coverage: String,
    pub json: String,
}

pub(crate) fn summarize_scan(report: &ScanReport) -> FileScan {
    let coverage = match &report.coverage {
        Coverage::Scanned => "scanned".to_owned(),
        Coverage::Partial(why) => format!("partial: {why}"),
        Coverage::NotScanned(why) => format!("not scanned: {why}"),
    };
    let findings: Vec<_> = report.findings.iter().take(100).collect();
    FileScan {
        severity: report
            .max_severity()
            .map(|s| format!("{s:?}").to_ascii_lowercase()),
        coverage,
        json: serde_json::json!({ "format": report.format, "findings": findings }).to_string(),
    }
}

impl Mlsec {
    /// Scans a stored blob with the model scanner, without loading anything it names.
    pub(crate) async fn scan_blob(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<FileScan, CoreError> {
        let options = ScanOptions::default();
        if let Some(local) = self.local_blobs() {
            let path = local.path(digest);
            let report = tokio::task::spawn_blocking(move || -> Result<ScanReport, CoreError> {
                let file = std::fs::File::open(&path)
                    .map_err(|e| CoreError::DataDir(format!("open blob for scanning: {e}")))?;
                if size == 0 {
                    return Ok(mlsec_scan::scan_bytes(&[], &options));
                }
                // SAFETY: blobs are written once under a temporary name and renamed into place;
                // nothing writes to a stored blob, so the mapping cannot change under us.
                let map = unsafe { memmap2::Mmap::map(&file) }
                    .map_err(|e| CoreError::DataDir(format!("map blob for scanning: {e}")))?;
                Ok(mlsec_scan::scan_bytes(&map, &options))
            })
            .await
            .map_err(|e| CoreError::Key(format!("scanner task failed: {e}")))??;
            return Ok(summarize_scan(&report));
        }
        if size > MAX_REMOTE_SCAN_BYTES {
            return Ok(FileScan {
                severity: None,
                coverage: format!(
                    "not scanned: larger than {MAX_REMOTE_SCAN_BYTES} bytes on a remote blob store"
                ),
                json: "{}".into(),
            });
        }
        let mut stream = self.blobs().get(digest).await?;
        let mut bytes = Vec::with_capacity(size as usize);
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| CoreError::DataDir(e.to_string()))?);
        }
        let report = tokio::task::spawn_blocking(move || mlsec_scan::scan_bytes(&bytes, &options))
            .await
            .map_err(|e| CoreError::Key(format!("scanner task failed: {e}")))?;
        Ok(summarize_scan(&report))
    }

    /// The experiment name an artifact path belongs to, checking its owner exists there.
    async fn artifact_experiment(
        &self,
        path: &ArtifactPath,
        for_write: bool,
    ) -> Result<String, CoreError> {
        match &path.owner {
            ArtifactOwner::Run(run_id) => {
                let run = self
                    .store()
                    .run(run_id)
                    .await?
                    .filter(|r| r.experiment_id == path.experiment_id)
                    .ok_or_else(|| CoreError::NotFound {
                        what: "run",
                        id: run_id.clone(),
                    })?;
                if for_write && let Some(refused) = run_refuses_writes(&run) {
                    return Err(refused);
                }
                Ok(run.experiment_name)
            }
            ArtifactOwner::LoggedModel(id) => {
                let model = self
                    .store()
                    .logged_model(id)
                    .await?
                    .filter(|m| m.experiment_id == path.experiment_id)
                    .ok_or_else(|| CoreError::NotFound {
                        what: "logged model",
                        id: id.clone(),
                    })?;
                if for_write && model.status == "READY" {
                    return Err(CoreError::Conflict(format!(
                        "logged model `{id}` is finalized: its files cannot change"
                    )));
                }
                let exp = self
                    .store()
                    .experiment(path.experiment_id)
                    .await?
                    .ok_or_else(|| CoreError::NotFound {
                        what: "experiment",
                        id: path.experiment_id.to_string(),
                    })?;
                Ok(exp.name)
            }
        }
    }

    /// Stores an artifact from a stream: hashed as it arrives, scanned, recorded and audited.
    pub async fn put_artifact<S, E>(
        &self,
        ctx: &RequestCtx,
        path: &str,
        body: S,
    ) -> Result<ArtifactEntry, CoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        let parsed = ArtifactPath::parse(path)?;
        if parsed.relative.is_empty() {
            return Err(CoreError::InvalidRequest(
                "an artifact needs a file name below the artifact root".into(),
            ));
        }
        let experiment = self.artifact_experiment(&parsed, true).await?;
        // Authorized before a byte is read.
        self.authorize_experiment(
            ctx,
            "experiment.write",
            &experiment,
            &format!("artifact {path:?}"),
        )
        .await?;
        let info = self.store_limited(body).await?;
        let scan = self.scan_blob(&info.digest, info.size).await?;
        let now = self.now();
        let by = ctx.principal.actor().to_string();
        let (owner_kind, owner_id) = match &parsed.owner {
            ArtifactOwner::Run(r) => ("run", r.clone()),
            ArtifactOwner::LoggedModel(m) => ("logged_model", m.clone()),
        };
        let row = ArtifactRow {
            path: parsed.full(),
            experiment_id: parsed.experiment_id,
            owner_kind: owner_kind.into(),
            owner_id,
            size: info.size as i64,
            sha256: info.digest.to_string(),
            scan_severity: scan.severity.clone(),
            scan_coverage: scan.coverage.clone(),
            scan_json: scan.json.clone(),
            created_at: now,
            created_by: by.clone(),
        };
        let mut w = self.store().begin_write().await?;
        w.insert_blob(&BlobRow {
            digest: info.digest,
            size: info.size,
            created_at: now,
            created_by: by,
        })
        .await?;
        let new = w.insert_artifact(&row).await?;
        w.commit(&[ctx
            .event(
                "artifact.put",
                experiment_resource(&experiment).to_string(),
                Decision::Allow,
                if new {
                    "stored"
                } else {
                    "identical bytes already stored"
                },
            )
            .with_details(serde_json::json!({
                "path": row.path,
                "sha256": row.sha256,
                "size": row.size,
                "scan_severity": scan.severity,
                "scan_coverage": scan.coverage,
            }))])
        .await?;
        Ok(ArtifactEntry {
            path: parsed.relative,
            is_dir: false,
            file_size: Some(row.size),
            sha256: Some(row.sha256),
        })
    }

    /// An artifact's bytes, size and digest.
    pub async fn open_artifact(
        &self,
        ctx: &RequestCtx,
        path: &str,
    ) -> Result<(ByteStream, ArtifactRow), CoreError> {
        if let Some((hex, rel)) = pinned_path(path) {
            let v = self.pinned_version(ctx, hex).await?;
            let file = self
                .store()
                .model_version_files(&v.name, v.version)
                .await?
                .into_iter()
                .find(|f| f.path == rel)
                .ok_or_else(|| CoreError::NotFound {
                    what: "file of model version",
                    id: format!("{}/{}: {rel}", v.name, v.version),
                })?;
            let digest = Digest::parse(&file.sha256).map_err(|e| CoreError::Key(e.to_string()))?;
            let stream = self.blobs().get(&digest).await?;
            let row = ArtifactRow {
                path: format!("{}/{hex}/{rel}", crate::registry::PINNED_ROOT),
                experiment_id: -1,
                owner_kind: "model_version".into(),
                owner_id: format!("{}/{}", v.name, v.version),
                size: file.size,
                sha256: file.sha256,
                scan_severity: file.scan_severity,
                scan_coverage: String::new(),
                scan_json: String::new(),
                created_at: v.created_at,
                created_by: v.created_by,
            };
            return Ok((stream, row));
        }
        let parsed = ArtifactPath::parse(path)?;
        let experiment = self.artifact_experiment(&parsed, false).await?;
        self.authorize_experiment(
            ctx,
            "experiment.read",
            &experiment,
            &format!("artifact {path:?}"),
        )
        .await?;
        let row = self
            .store()
            .artifact(&parsed.full())
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: "artifact",
                id: parsed.full(),
            })?;
        let digest = Digest::parse(&row.sha256).map_err(|e| CoreError::Key(e.to_string()))?;
        let stream = self.blobs().get(&digest).await?;
        Ok((stream, row))
    }

    /// The immediate children of an artifact directory. Paths are relative to the owner's root
    /// when `relative_to_root`, else to the listed directory.
    pub async fn list_artifacts(
        &self,
        ctx: &RequestCtx,
        path: &str,
        relative_to_root: bool,
    ) -> Result<Vec<ArtifactEntry>, CoreError> {
        if let Some((hex, rel)) = pinned_path(path) {
            let v = self.pinned_version(ctx, hex).await?;
            let files = self.store().model_version_files(&v.name, v.version).await?;
            let dir = if rel.is_empty() {
                String::new()
            } else {
                format!("{rel}/")
            };
            let mut out: Vec<ArtifactEntry> = Vec::new();
            for f in files.iter().filter(|f| f.path.starts_with(&dir)) {
                let rest = &f.path[dir.len()..];
                let entry = match rest.split_once('/') {
                    Some((d, _)) => ArtifactEntry {
                        path: d.to_owned(),
                        is_dir: true,
                        file_size: None,
                        sha256: None,
                    },
                    None => ArtifactEntry {
                        path: rest.to_owned(),
                        is_dir: false,
                        file_size: Some(f.size),
                        sha256: Some(f.sha256.clone()),
                    },
                };
                if !out.iter().any(|e| e.path == entry.path) {
                    out.push(entry);
                }
            }
            return Ok(out);
        }
        let parsed = ArtifactPath::parse(path)?;
        let experiment = self.artifact_experiment(&parsed, false).await?;
        self.authorize_experiment(
            ctx,
            "experiment.read",
            &experiment,
            &format!("artifact {path:?}"),
        )
        .await?;
        let dir = format!("{}/", parsed.full());
        let rows = self.store().artifacts_under(&dir).await?;
        let mut out: Vec<ArtifactEntry> = Vec::new();
        for row in rows {
            let rest = &row.path[dir.len()..];
            let (name, is_dir) = match rest.split_once('/') {
                Some((d, _)) => (d, true),
                None => (rest, false),
            };
            let shown = if relative_to_root && !parsed.relative.is_empty() {
                format!("{}/{name}", parsed.relative)
            } else {
                name.to_owned()
            };
            if is_dir {
                if out.last().is_some_and(|e| e.is_dir && e.path == shown) {
                    continue;
                }
                out.push(ArtifactEntry {
                    path: shown,
                    is_dir: true,
                    file_size: None,
                    sha256: None,
                });
            } else {
                out.push(ArtifactEntry {
                    path: shown,
                    is_dir: false,
                    file_size: Some(row.size),
                    sha256: Some(row.sha256),
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_paths_parse_and_refuse_escapes() {
        let p = ArtifactPath::parse("3/abc/artifacts/model/MLmodel").unwrap();
        assert_eq!(p.experiment_id, 3);
        assert_eq!(p.owner, ArtifactOwner::Run("abc".into()));
        assert_eq!(p.relative, "model/MLmodel");
        assert_eq!(p.full(), "3/abc/artifacts/model/MLmodel");
        let m = ArtifactPath::parse("0/models/m-1/artifacts/MLmodel").unwrap();
        assert_eq!(m.owner, ArtifactOwner::LoggedModel("m-1".into()));
        assert_eq!(ArtifactPath::parse("3/abc/artifacts").unwrap().relative, "");
        for bad in [
            "3/abc/artifacts/../x",
            "3/abc/artifacts/./x",
            "x/abc/artifacts/f",
            "3/abc/other/f",
            "3/abc/artifacts//f",
            "3/abc/artifacts/a\\b",
            "3/abc/artifacts/a\nb",
        ] {
            assert!(ArtifactPath::parse(bad).is_err(), "{bad}");
        }
    }
}
