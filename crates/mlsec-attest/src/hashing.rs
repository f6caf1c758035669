//! Parallel, streaming hashing of a model tree into OMS resources: whole files, or shards of
//! a fixed size, with SHA-256 (required by the specification) or BLAKE3.

use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::error::{AttestError, Result};
use crate::manifest::{Resource, Serialization};
use crate::tree::{Tree, TreeFile};

/// The reference implementation's default shard size (decimal, not GiB).
pub const DEFAULT_SHARD_SIZE: u64 = 1_000_000_000;
const READ_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    Sha256,
    Blake3,
}

impl HashAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Blake3 => "blake3",
        }
    }

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "sha256" => Ok(HashAlgorithm::Sha256),
            "blake3" => Ok(HashAlgorithm::Blake3),
            other => Err(AttestError::Bundle(format!(
                "hash type {other:?} is not supported (sha256, blake3)"
            ))),
        }
    }
}

enum Hasher {
    Sha256(sha2::Sha256),
    Blake3(Box<blake3::Hasher>),
}

impl Hasher {
    fn new(algorithm: HashAlgorithm) -> Self {
        match algorithm {
            HashAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlgorithm::Blake3 => Hasher::Blake3(Box::new(blake3::Hasher::new())),
        }
    }
    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Blake3(h) => {
                h.update(data);
            }
        }
    }
    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Blake3(h) => h.finalize().as_bytes().to_vec(),
        }
    }
}

/// One unit of hashing work: a byte range of one file.
struct Piece<'t> {
    file: &'t TreeFile,
    start: u64,
    end: u64,
    name: String,
}

fn hash_range(piece: &Piece<'_>, algorithm: HashAlgorithm, whole: bool) -> Result<Vec<u8>> {
    let path = &piece.file.path;
    // No link is followed and no fifo blocks: the walk saw a regular file here, and whatever
    // is here now must still be one, of the size the walk saw.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| AttestError::io("open", path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| AttestError::io("stat", path, e))?;
    if !meta.is_file() || meta.len() != piece.file.size {
        return Err(AttestError::Tree(format!(
            "`{}` changed while the model was read (now {} bytes, {})",
            piece.file.name,
            meta.len(),
            if meta.is_file() {
                "a file"
            } else {
                "not a regular file"
            }
        )));
    }
    let mut hasher = Hasher::new(algorithm);
    let mut buf = vec![0u8; READ_BYTES];
    let mut offset = piece.start;
    while offset < piece.end {
        let want = ((piece.end - offset) as usize).min(READ_BYTES);
        let n = match file.read_at(&mut buf[..want], offset) {
            Ok(0) => {
                return Err(AttestError::Tree(format!(
                    "`{}` shrank while it was hashed ({} bytes listed, {offset} read)",
                    piece.file.name, piece.file.size
                )));
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(AttestError::io("read", path, e)),
        };
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    if whole {
        // A file that grew after it was listed would be signed short: refuse it instead.
        let mut probe = [0u8; 1];
        if file
            .read_at(&mut probe, piece.end)
            .map_err(|e| AttestError::io("read", path, e))?
            != 0
        {
            return Err(AttestError::Tree(format!(
                "`{}` grew while it was hashed",
                piece.file.name
            )));
        }
    }
    Ok(hasher.finish())
}

/// The resource name and algorithm label OMS gives to a shard.
pub fn shard_name(file: &str, start: u64, end: u64) -> String {
    format!("{file}:{start}:{end}")
}

pub fn resource_algorithm(serialization: Serialization, algorithm: HashAlgorithm) -> String {
    match serialization {
        Serialization::Files => algorithm.name().to_owned(),
        Serialization::Shards { shard_size } => {
            format!("{}-sharded-{shard_size}", algorithm.name())
        }
    }
}

/// Hashes every file of `tree` on the rayon pool. Resources come back in tree order (shards of
/// one file in offset order); the largest pieces are started first so that one big shard does
/// not finish last on an otherwise idle pool.
pub fn hash_tree(
    tree: &Tree,
    serialization: Serialization,
    algorithm: HashAlgorithm,
) -> Result<Vec<Resource>> {
    let mut pieces = Vec::new();
    for file in &tree.files {
        match serialization {
            Serialization::Files => pieces.push(Piece {
                file,
                start: 0,
                end: file.size,
                name: file.name.clone(),
            }),
            Serialization::Shards { shard_size } => {
                if shard_size == 0 {
                    return Err(AttestError::Tree("shard size must be positive".into()));
                }
                let mut start = 0;
                // Empty files have no shards, as in the reference implementation.
                while start < file.size {
                    let end = (start + shard_size).min(file.size);
                    pieces.push(Piece {
                        file,
                        start,
                        end,
                        name: shard_name(&file.name, start, end),
                    });
                    start = end;
                }
            }
        }
    }
    let whole = matches!(serialization, Serialization::Files);
    let mut order: Vec<usize> = (0..pieces.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(pieces[i].end - pieces[i].start));
    let mut digests: Vec<(usize, Vec<u8>)> = order
        .par_iter()
        .with_max_len(1)
        .map(|&i| hash_range(&pieces[i], algorithm, whole).map(|d| (i, d)))
        .collect::<Result<_>>()?;
    digests.sort_unstable_by_key(|(i, _)| *i);
    let label = resource_algorithm(serialization, algorithm);
    Ok(digests
        .into_iter()
        .map(|(i, digest)| Resource {
            name: std::mem::take(&mut pieces[i].name),
            algorithm: label.clone(),
            digest,
        })
        .collect())
}
