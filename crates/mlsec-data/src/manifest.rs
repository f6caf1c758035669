//! Content-addressed versions of a file or a directory tree.
//!
//! A manifest lists every regular file by its relative `/`-separated path (sorted by byte
//! value), size and SHA-256. The version digest is the SHA-256 of the manifest's canonical text
//!
//! ```text
//! mlsec-dataset-manifest/v1\n
//! <sha256 hex> <size> <path>\n      (one line per file, in path order)
//! ```
//!
//! so two versions with the same bytes under the same names have the same digest wherever they
//! were added, and any change to any byte, name or file set changes it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use mlsec_types::{Digest, Sha256Writer};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::read::TableFormat;

/// Most files one version may hold.
pub const MAX_FILES: usize = 1_000_000;
/// Longest relative path accepted.
pub const MAX_PATH_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<TableFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// Sorts the files and rejects duplicate or unsafe paths.
    pub fn new(mut files: Vec<FileEntry>) -> Result<Manifest, DataError> {
        if files.len() > MAX_FILES {
            return Err(DataError::Limit {
                what: format!("{} files", files.len()),
                limit: MAX_FILES as u64,
            });
        }
        for f in &files {
            check_relative_path(&f.path)?;
        }
        files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        if let Some(w) = files.windows(2).find(|w| w[0].path == w[1].path) {
            return Err(DataError::Invalid(format!(
                "`{}` is listed twice",
                w[0].path
            )));
        }
        Ok(Manifest { files })
    }

    pub fn canonical_text(&self) -> String {
        let mut text = String::from("mlsec-dataset-manifest/v1\n");
        for f in &self.files {
            text.push_str(&format!("{} {} {}\n", f.sha256.hex(), f.size, f.path));
        }
        text
    }

    /// The version digest.
    pub fn digest(&self) -> Digest {
        Digest::of(self.canonical_text().as_bytes())
    }

    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    pub fn rows(&self) -> Option<u64> {
        let tabular: Vec<u64> = self.files.iter().filter_map(|f| f.rows).collect();
        (!tabular.is_empty()).then(|| tabular.iter().sum())
    }

    /// Compares a working copy's files with this manifest.
    pub fn diff(&self, working: &[FileEntry]) -> ManifestDiff {
        let mine: BTreeMap<&str, &FileEntry> =
            self.files.iter().map(|f| (f.path.as_str(), f)).collect();
        let theirs: BTreeMap<&str, &FileEntry> =
            working.iter().map(|f| (f.path.as_str(), f)).collect();
        let mut diff = ManifestDiff::default();
        for (path, f) in &mine {
            match theirs.get(path) {
                None => diff.removed.push((*path).to_owned()),
                Some(w) if w.sha256 != f.sha256 || w.size != f.size => {
                    diff.modified.push(Modified {
                        path: (*path).to_owned(),
                        expected: f.sha256,
                        actual: w.sha256,
                        expected_size: f.size,
                        actual_size: w.size,
                    })
                }
                Some(_) => diff.unchanged += 1,
            }
        }
        for path in theirs.keys() {
            if !mine.contains_key(path) {
                diff.added.push((*path).to_owned());
            }
        }
        diff
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ManifestDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub modified: Vec<Modified>,
    pub unchanged: u64,
}

impl ManifestDiff {
    pub fn is_clean(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.modified.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Modified {
    pub path: String,
    pub expected: Digest,
    pub actual: Digest,
    pub expected_size: u64,
    pub actual_size: u64,
}

fn check_relative_path(path: &str) -> Result<(), DataError> {
    let bad = path.is_empty()
        || path.len() > MAX_PATH_BYTES
        || path.starts_with('/')
        || path.contains('\\')
        || path.chars().any(char::is_control)
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(DataError::Invalid(format!(
            "unsafe path in a dataset: {path:?}"
        )));
    }
    Ok(())
}

/// A regular file found under a version's root, with what it looked like when found.
#[derive(Debug, Clone)]
pub struct WalkedFile {
    /// Relative `/`-separated path (the file's name when the root is a file).
    pub path: String,
    pub absolute: PathBuf,
    pub size: u64,
    modified: Option<SystemTime>,
}

impl WalkedFile {
    /// Fails if the file's size or modification time moved since it was found: the bytes
    /// hashed may not be the bytes that were there.
    pub fn check_unchanged(&self) -> Result<(), DataError> {
        let meta =
            fs::metadata(&self.absolute).map_err(|e| DataError::io("stat", &self.absolute, e))?;
        if meta.len() != self.size || meta.modified().ok() != self.modified {
            return Err(DataError::Changed {
                file: self.path.clone(),
                detail: format!("size {} then {}", self.size, meta.len()),
            });
        }
        Ok(())
    }
}

/// Lists the regular files of a file or directory tree, sorted by path. Symbolic links are
/// refused (a link can point anywhere, and its target is not part of the tree); `.git`
/// directories are skipped.
pub fn walk(root: &Path) -> Result<Vec<WalkedFile>, DataError> {
    let meta = fs::symlink_metadata(root).map_err(|e| DataError::io("stat", root, e))?;
    let mut out = Vec::new();
    if meta.is_file() {
        let name = root.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            DataError::Invalid(format!("{}: file name is not UTF-8", root.display()))
        })?;
        out.push(walked(name.to_owned(), root.to_path_buf(), &meta));
        return Ok(out);
    }
    if !meta.is_dir() {
        return Err(DataError::Invalid(format!(
            "{}: not a regular file or directory",
            root.display()
        )));
    }
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| DataError::io("list", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| DataError::io("list", &dir, e))?;
            let name = entry.file_name();
            let name = name.to_str().ok_or_else(|| {
                DataError::Invalid(format!(
                    "{}: file name is not UTF-8",
                    entry.path().display()
                ))
            })?;
            let rel = if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}/{name}")
            };
            let meta = entry
                .metadata()
                .map_err(|e| DataError::io("stat", &entry.path(), e))?;
            if meta.file_type().is_symlink() {
                return Err(DataError::Invalid(format!(
                    "{rel}: symbolic links are not versioned (copy the target into the tree)"
                )));
            } else if meta.is_dir() {
                if name != ".git" {
                    stack.push((entry.path(), rel));
                }
            } else if meta.is_file() {
                out.push(walked(rel, entry.path(), &meta));
                if out.len() > MAX_FILES {
                    return Err(DataError::Limit {
                        what: format!("files under {}", root.display()),
                        limit: MAX_FILES as u64,
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(out)
}

fn walked(path: String, absolute: PathBuf, meta: &fs::Metadata) -> WalkedFile {
    WalkedFile {
        path,
        absolute,
        size: meta.len(),
        modified: meta.modified().ok(),
    }
}

/// Streams a file through SHA-256, then checks it did not change meanwhile.
pub fn hash_file(file: &WalkedFile) -> Result<(Digest, u64), DataError> {
    let mut f = File::open(&file.absolute).map_err(|e| DataError::io("open", &file.absolute, e))?;
    let mut hasher = Sha256Writer::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| DataError::io("read", &file.absolute, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let size = hasher.len();
    if size != file.size {
        return Err(DataError::Changed {
            file: file.path.clone(),
            detail: format!("{} bytes listed, {size} read", file.size),
        });
    }
    file.check_unchanged()?;
    Ok((hasher.finish(), size))
}

/// Hashes a working copy in parallel, for `verify`.
pub fn hash_tree(root: &Path) -> Result<Vec<FileEntry>, DataError> {
    let files = walk(root)?;
    files
        .par_iter()
        .map(|f| {
            let (sha256, size) = hash_file(f)?;
            Ok(FileEntry {
                path: f.path.clone(),
                size,
                sha256,
                format: None,
                rows: None,
            })
        })
        .collect()
}
