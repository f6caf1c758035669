//! The files of a model, as OMS v1.0 names them: relative, `/`-separated paths in
//! component-wise order, with the default and requested exclusions applied.
//!
//! Component-wise order (`sub/a/x` before `sub/a-b`) is what the `model_signing` reference
//! implementation produces; the verifier recomputes the root digest in the order the payload
//! lists resources, so both orders verify, but matching the reference makes the two tools agree
//! on the root digest of the same directory.

use std::cmp::Ordering;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{AttestError, Result};

/// Excluded at the top level of a model unless `ignore_git_paths` is off (the OMS default).
pub const GIT_PATHS: [&str; 4] = [".git", ".gitattributes", ".github", ".gitignore"];
/// More files than this in one model is refused rather than walked.
pub const MAX_FILES: usize = 1_000_000;
/// Longest resource name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 4096;

#[derive(Debug, Clone, Default)]
pub struct WalkOptions {
    /// Model-relative paths excluded with everything beneath them.
    pub ignore_paths: Vec<String>,
    pub ignore_git_paths: bool,
    /// Follow symbolic links that resolve to a file inside the model (hashed under the link's
    /// name). Links that leave the model are refused whatever this says.
    pub allow_symlinks: bool,
}

#[derive(Debug, Clone)]
pub struct TreeFile {
    /// The resource name: model-relative path, or `.` when the model is a single file.
    pub name: String,
    /// What to open: the file itself, or for an allowed symbolic link its resolved target, so
    /// that opening never follows a link (a file swapped for one after the walk is refused).
    pub path: PathBuf,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct Tree {
    pub root: PathBuf,
    pub files: Vec<TreeFile>,
    /// Every path excluded from hashing (defaults, requested), model-relative and sorted.
    pub ignored: Vec<String>,
}

/// Orders names the way the reference implementation sorts `PurePosixPath`s: segment by
/// segment, each segment by code point.
pub fn component_order(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

/// Checks a name from a bundle or a walk: relative, `/`-separated, no empty, `.` or `..`
/// segments, no control characters.
pub fn check_name(name: &str) -> Result<()> {
    if name == "." {
        return Ok(());
    }
    let bad = name.is_empty()
        || name.len() > MAX_NAME_BYTES
        || name.starts_with('/')
        || name.contains('\\')
        || name.chars().any(char::is_control)
        || name
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(AttestError::Bundle(format!(
            "resource name {name:?} is not a relative path inside the model"
        )));
    }
    Ok(())
}

/// Whether `name` is one of `ignore` or lies beneath one.
pub fn is_ignored(name: &str, ignore: &[String]) -> bool {
    ignore.iter().any(|p| {
        name == p
            || (name.len() > p.len()
                && name.starts_with(p.as_str())
                && name.as_bytes()[p.len()] == b'/')
    })
}

/// Normalises an ignore path to model-relative form: `./a/b/` → `a/b`. Paths that would leave
/// the model are refused.
pub fn normalize_ignore_path(path: &str) -> Result<String> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let joined = parts.join("/");
    if joined.is_empty() || parts.contains(&"..") || path.starts_with('/') {
        return Err(AttestError::Tree(format!(
            "ignore path {path:?} is not a relative path inside the model"
        )));
    }
    check_name(&joined)
        .map_err(|_| AttestError::Tree(format!("ignore path {path:?} is not a usable name")))?;
    Ok(joined)
}

/// Lists the files to hash under `root` (a directory or a single file).
pub fn walk(root: &Path, options: &WalkOptions) -> Result<Tree> {
    let mut ignore: Vec<String> = Vec::new();
    if options.ignore_git_paths {
        ignore.extend(GIT_PATHS.iter().map(|s| s.to_string()));
    }
    for p in &options.ignore_paths {
        ignore.push(normalize_ignore_path(p)?);
    }
    ignore.sort();
    ignore.dedup();

    let meta = fs::symlink_metadata(root).map_err(|e| AttestError::io("stat", root, e))?;
    if meta.file_type().is_symlink() {
        return Err(AttestError::Tree(format!(
            "`{}` is a symbolic link; sign its target instead",
            root.display()
        )));
    }
    if meta.is_file() {
        return Ok(Tree {
            root: root.to_path_buf(),
            files: vec![TreeFile {
                name: ".".into(),
                path: root.to_path_buf(),
                size: meta.len(),
            }],
            ignored: ignore,
        });
    }
    if !meta.is_dir() {
        return Err(AttestError::Tree(format!(
            "`{}` is neither a regular file nor a directory",
            root.display()
        )));
    }
    let canonical_root = fs::canonicalize(root).map_err(|e| AttestError::io("resolve", root, e))?;
    let mut files = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| AttestError::io("list", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| AttestError::io("list", &dir, e))?;
            let os_name = entry.file_name();
            let name = os_name.to_str().ok_or_else(|| {
                AttestError::Tree(format!(
                    "`{}`: file name is not UTF-8",
                    entry.path().display()
                ))
            })?;
            let rel = if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}/{name}")
            };
            if is_ignored(&rel, &ignore) {
                continue;
            }
            check_name(&rel)
                .map_err(|_| AttestError::Tree(format!("`{rel}`: file name cannot be signed")))?;
            let path = entry.path();
            let file_type = entry
                .file_type()
                .map_err(|e| AttestError::io("stat", &path, e))?;
            if file_type.is_dir() {
                stack.push((path, rel));
                continue;
            }
            let size = if file_type.is_symlink() {
                if !options.allow_symlinks {
                    return Err(AttestError::Tree(format!(
                        "`{rel}` is a symbolic link; links are refused unless symlinks are allowed"
                    )));
                }
                let target = fs::canonicalize(&path)
                    .map_err(|_| AttestError::Tree(format!("`{rel}` is a broken symbolic link")))?;
                if !target.starts_with(&canonical_root) {
                    return Err(AttestError::Tree(format!(
                        "`{rel}` is a symbolic link to `{}`, outside the model",
                        target.display()
                    )));
                }
                let meta =
                    fs::metadata(&target).map_err(|e| AttestError::io("stat", &target, e))?;
                if meta.is_dir() {
                    // As the reference does: a linked directory is neither hashed nor followed.
                    continue;
                }
                if !meta.is_file() {
                    return Err(AttestError::Tree(format!(
                        "`{rel}` links to something that is not a regular file"
                    )));
                }
                files.push(TreeFile {
                    name: rel,
                    path: target,
                    size: meta.len(),
                });
                continue;
            } else if file_type.is_file() {
                entry
                    .metadata()
                    .map_err(|e| AttestError::io("stat", &path, e))?
                    .len()
            } else {
                return Err(AttestError::Tree(format!(
                    "`{rel}` is a special file (fifo, socket or device) and cannot be signed"
                )));
            };
            files.push(TreeFile {
                name: rel,
                path,
                size,
            });
            if files.len() > MAX_FILES {
                return Err(AttestError::Limit {
                    what: format!("files under `{}`", root.display()),
                    limit: MAX_FILES as u64,
                });
            }
        }
    }
    files.sort_by(|a, b| component_order(&a.name, &b.name));
    Ok(Tree {
        root: root.to_path_buf(),
        files,
        ignored: ignore,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_order_matches_the_reference() {
        let mut names = vec![
            "sub/a-b.txt",
            "sub/a/x.txt",
            "a.txt",
            "Z.txt",
            "a b.txt",
            "é.txt",
        ];
        names.sort_by(|a, b| component_order(a, b));
        assert_eq!(
            names,
            [
                "Z.txt",
                "a b.txt",
                "a.txt",
                "sub/a/x.txt",
                "sub/a-b.txt",
                "é.txt"
            ]
        );
    }

    #[test]
    fn names_must_stay_inside() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "a/./b",
            "a\\b",
            "a\nb",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in [".", "a", "a/b.bin", ".hidden/x"] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
        assert!(is_ignored(".git/HEAD", &[".git".into()]));
        assert!(!is_ignored(".gitfoo", &[".git".into()]));
        assert_eq!(normalize_ignore_path("./logs/").unwrap(), "logs");
        assert!(normalize_ignore_path("../x").is_err());
        assert!(normalize_ignore_path("/abs").is_err());
    }
}
