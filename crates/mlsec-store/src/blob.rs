//! Content-addressed blob store on the local file system.
//!
//! Layout: `ROOT/sha256/ab/cd/<64 hex>`, temporary files under `ROOT/tmp/`. A blob is hashed while
//! it streams in, written to a temporary name, fsynced, and renamed into place (then the directory
//! is fsynced), so a crash leaves either the whole blob or nothing under its digest. Identical
//! content is stored once.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::mpsc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};
use mlsec_types::{Digest, Sha256Writer};

use crate::error::StoreError;

/// A stream of blob bytes, as uploads arrive and downloads leave.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// A content-addressed blob store. Implementations: [`LocalBlobStore`] (default) and, with the
/// `s3` feature, `S3BlobStore`. Both pass the same contract tests (`tests/blob_contract.rs`).
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Stores everything `data` yields under its SHA-256. An error from the stream abandons the
    /// write: nothing becomes visible under any digest.
    fn put_stream(&self, data: ByteStream) -> BoxFuture<'_, Result<BlobInfo, StoreError>>;

    /// Stores a local file.
    fn put_file<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<BlobInfo, StoreError>> {
        Box::pin(async move {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| StoreError::io("open", path, e))?;
            let stream = tokio_util::io::ReaderStream::with_capacity(file, CHUNK);
            self.put_stream(Box::pin(stream)).await
        })
    }

    /// The blob's bytes; `NotFound` if there is none.
    fn get<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<ByteStream, StoreError>>;

    fn contains<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Re-hashes the stored bytes against the digest they are stored under.
    fn verify<'a>(&'a self, digest: &'a Digest)
    -> BoxFuture<'a, Result<VerifyOutcome, StoreError>>;

    /// Where blobs live, for logs (no credentials).
    fn describe(&self) -> String;
}

/// Hashes a stream to its digest and length.
#[cfg(feature = "s3")]
pub(crate) async fn hash_stream(mut stream: ByteStream) -> io::Result<(Digest, u64)> {
    let mut hasher = Sha256Writer::new();
    while let Some(chunk) = stream.next().await {
        hasher.update(&chunk?);
    }
    let size = hasher.len();
    Ok((hasher.finish(), size))
}

/// Chunk size of streaming reads and writes.
const CHUNK: usize = 1 << 20;
/// Start write-back every this many bytes so the final fsync has little left to flush.
const WRITEBACK_EVERY: u64 = 16 << 20;
/// Buffers in flight between the hashing reader and the writer thread.
const BUFFERS: usize = 4;

/// What a put did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
    /// False when identical content was already stored.
    pub created: bool,
}

/// The result of re-hashing a stored blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyOutcome {
    Intact { size: u64 },
    Missing,
    Corrupt { actual: Digest, size: u64 },
}

#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    /// Opens (creating if needed) a blob store rooted at `root`, and proves it is writable.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        for dir in [root.join("sha256"), root.join("tmp")] {
            fs::create_dir_all(&dir).map_err(|e| StoreError::io("create directory", &dir, e))?;
        }
        let store = LocalBlobStore { root };
        let probe = store
            .root
            .join("tmp")
            .join(format!(".probe-{}", random_suffix()));
        File::create(&probe)
            .and_then(|mut f| f.write_all(b"probe"))
            .map_err(|e| StoreError::io("write to blob directory", &probe, e))?;
        let _ = fs::remove_file(&probe);
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob with this digest lives.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root
            .join("sha256")
            .join(&hex[0..2])
            .join(&hex[2..4])
            .join(hex)
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Opens a stored blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        let path = self.path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound {
                what: "blob",
                id: digest.to_string(),
            },
            _ => StoreError::io("open blob", &path, e),
        })
    }

    /// Starts an incremental write (for uploads arriving in pieces).
    pub fn writer(&self) -> Result<BlobWriter, StoreError> {
        let tmp = self
            .root
            .join("tmp")
            .join(format!("put-{}", random_suffix()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| StoreError::io("create temporary blob", &tmp, e))?;
        Ok(BlobWriter {
            store: self.clone(),
            file: Some(file),
            tmp,
            hasher: Sha256Writer::new(),
            since_writeback: 0,
            offset: 0,
        })
    }

    /// Ingests a file. Reading and hashing run on this thread while a second thread writes, so
    /// ingest runs near the speed of hashing alone.
    pub fn put_file(&self, path: &Path) -> Result<BlobInfo, StoreError> {
        let file = File::open(path).map_err(|e| StoreError::io("open", path, e))?;
        self.put_reader(file, path)
    }

    /// Ingests everything `reader` yields; `source` names it in errors.
    pub fn put_reader(&self, mut reader: impl Read, source: &Path) -> Result<BlobInfo, StoreError> {
        let mut writer = self.writer()?;
        let (to_writer, from_reader) = mpsc::sync_channel::<(Vec<u8>, usize)>(BUFFERS);
        let (to_reader, free_buffers) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
        for _ in 0..BUFFERS {
            to_reader.send(vec![0u8; CHUNK]).expect("channel has room");
        }
        let mut file = writer.file.take().expect("fresh writer has a file");
        let tmp = writer.tmp.clone();
        let write_result = std::thread::scope(|scope| {
            let handle = scope.spawn(move || -> Result<File, StoreError> {
                let mut offset = 0u64;
                let mut since_writeback = 0u64;
                for (buf, len) in from_reader {
                    file.write_all(&buf[..len])
                        .map_err(|e| StoreError::io("write blob", &tmp, e))?;
                    start_writeback(&file, &mut offset, &mut since_writeback, len as u64);
                    // The reader may have gone away after an error; nothing to return then.
                    let _ = to_reader.send(buf);
                }
                Ok(file)
            });
            let mut read_error = None;
            for mut buf in free_buffers.iter() {
                match read_full(&mut reader, &mut buf) {
                    Ok(0) => break,
                    Ok(len) => {
                        writer.hasher.update(&buf[..len]);
                        if to_writer.send((buf, len)).is_err() {
                            break; // the writer failed; its error is reported below
                        }
                    }
                    Err(e) => {
                        read_error = Some(StoreError::io("read", source, e));
                        break;
                    }
                }
            }
            drop(to_writer);
            let written = handle.join().expect("blob writer thread does not panic");
            match (read_error, written) {
                (Some(e), _) => Err(e),
                (None, result) => result,
            }
        });
        writer.file = Some(write_result?);
        writer.finish()
    }

    /// Ingests many local files as one batch: workers (`parallelism` of them) each take the
    /// next file and copy it to a temporary file while hashing it, starting write-back as they
    /// go; then one file-system sync makes every copy durable before any is renamed into place,
    /// and a second makes the renames durable. Two syncs for the batch instead of two fsyncs per
    /// file, which is what makes a thousand small files cheap. On an error while copying,
    /// every temporary file is removed and nothing becomes visible; blobs already renamed
    /// before a later rename fails stay (complete, named by their content, unreferenced).
    pub fn put_files(
        &self,
        paths: &[PathBuf],
        parallelism: usize,
    ) -> Result<Vec<BlobInfo>, StoreError> {
        use std::sync::Mutex;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let staged: Mutex<Vec<Option<(PathBuf, Digest, u64)>>> =
            Mutex::new(vec![None; paths.len()]);
        let first_error: Mutex<Option<StoreError>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..parallelism.clamp(1, 64) {
                scope.spawn(|| {
                    let mut buf = vec![0u8; CHUNK];
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= paths.len() || failed.load(Ordering::Relaxed) {
                            break;
                        }
                        match self.copy_unsynced(&paths[i], &mut buf) {
                            Ok(entry) => staged.lock().expect("staging lock")[i] = Some(entry),
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                first_error.lock().expect("error lock").get_or_insert(e);
                            }
                        }
                    }
                });
            }
        });
        let staged = staged.into_inner().expect("staging lock");
        let cleanup = |staged: &[Option<(PathBuf, Digest, u64)>]| {
            for (tmp, _, _) in staged.iter().flatten() {
                let _ = fs::remove_file(tmp);
            }
        };
        if let Some(e) = first_error.into_inner().expect("error lock") {
            cleanup(&staged);
            return Err(e);
        }
        if let Err(e) = self.sync_filesystem() {
            cleanup(&staged);
            return Err(e);
        }
        if staged.iter().any(Option::is_none) {
            cleanup(&staged);
            return Err(StoreError::Inconsistent(
                "a file of the batch was not staged".into(),
            ));
        }
        let mut out = Vec::with_capacity(staged.len());
        for (i, (tmp, digest, size)) in staged.iter().flatten().enumerate() {
            let target = self.path(digest);
            if target.is_file() {
                let _ = fs::remove_file(tmp);
                out.push(BlobInfo {
                    digest: *digest,
                    size: *size,
                    created: false,
                });
                continue;
            }
            let dir = target.parent().expect("blob paths have a parent");
            let moved = fs::create_dir_all(dir)
                .map_err(|e| StoreError::io("create directory", dir, e))
                .and_then(|_| {
                    fs::rename(tmp, &target).map_err(|e| StoreError::io("rename blob", &target, e))
                });
            if let Err(e) = moved {
                // Blobs already moved are complete and named by their content: harmless.
                cleanup(&staged[i..]);
                return Err(e);
            }
            out.push(BlobInfo {
                digest: *digest,
                size: *size,
                created: true,
            });
        }
        self.sync_filesystem()?;
        Ok(out)
    }

    /// Copies a file to a temporary blob, hashing the bytes as they pass through our buffer:
    /// what is hashed is exactly what is written, whatever the source does meanwhile. (A
    /// kernel copy with `copy_file_range` and hashing a memory map of the copy measured slower
    /// here.)
    fn copy_unsynced(
        &self,
        path: &Path,
        buf: &mut [u8],
    ) -> Result<(PathBuf, Digest, u64), StoreError> {
        let mut source = File::open(path).map_err(|e| StoreError::io("open", path, e))?;
        let tmp = self
            .root
            .join("tmp")
            .join(format!("put-{}", random_suffix()));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| StoreError::io("create temporary blob", &tmp, e))?;
        let mut hasher = Sha256Writer::new();
        let (mut offset, mut since) = (0u64, 0u64);
        #[cfg(target_os = "linux")]
        if let Ok(meta) = source.metadata()
            && meta.len() > 0
        {
            use std::os::fd::AsRawFd;
            // Reserve the blocks at once: one allocation instead of one per write.
            // SAFETY: plain syscall on a descriptor we own.
            unsafe {
                libc::posix_fallocate(file.as_raw_fd(), 0, meta.len() as libc::off_t);
            }
        }
        let result = (|| {
            loop {
                let n = read_full(&mut source, buf).map_err(|e| StoreError::io("read", path, e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                file.write_all(&buf[..n])
                    .map_err(|e| StoreError::io("write blob", &tmp, e))?;
                start_writeback(&file, &mut offset, &mut since, n as u64);
            }
            Ok(())
        })();
        if let Err(e) = result {
            drop(file);
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        // Start writing this file back now (without waiting), so the batch's sync finds little
        // left to flush.
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: plain syscall on a file descriptor we own; it reads no memory of ours.
            unsafe {
                libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
            }
        }
        let size = hasher.len();
        Ok((tmp, hasher.finish(), size))
    }

    /// Makes everything written under the root durable: `syncfs` on Linux (one call for the
    /// whole batch), `sync` elsewhere.
    fn sync_filesystem(&self) -> Result<(), StoreError> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let dir = File::open(&self.root)
                .map_err(|e| StoreError::io("open blob directory", &self.root, e))?;
            // SAFETY: a plain syscall on a descriptor we own.
            let rc = unsafe { libc::syncfs(dir.as_raw_fd()) };
            if rc != 0 {
                return Err(StoreError::io(
                    "sync blob file system",
                    &self.root,
                    io::Error::last_os_error(),
                ));
            }
        }
        #[cfg(not(target_os = "linux"))]
        // SAFETY: sync takes no arguments and cannot fail.
        unsafe {
            libc::sync()
        };
        Ok(())
    }

    /// Re-hashes a stored blob and compares it with its name.
    pub fn verify(&self, digest: &Digest) -> Result<VerifyOutcome, StoreError> {
        let path = self.path(digest);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(VerifyOutcome::Missing),
            Err(e) => return Err(StoreError::io("open blob", &path, e)),
        };
        let (actual, size) =
            hash_reader(&mut file).map_err(|e| StoreError::io("read blob", &path, e))?;
        Ok(if actual == *digest {
            VerifyOutcome::Intact { size }
        } else {
            VerifyOutcome::Corrupt { actual, size }
        })
    }

    /// Removes temporary files left by a crash. Safe while no put is running.
    pub fn sweep_temporaries(&self) -> Result<usize, StoreError> {
        let dir = self.root.join("tmp");
        let mut removed = 0;
        for entry in fs::read_dir(&dir).map_err(|e| StoreError::io("list", &dir, e))? {
            let entry = entry.map_err(|e| StoreError::io("list", &dir, e))?;
            if fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

impl BlobStore for LocalBlobStore {
    fn put_stream(&self, data: ByteStream) -> BoxFuture<'_, Result<BlobInfo, StoreError>> {
        Box::pin(async move {
            let mut writer = self.writer()?;
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<Bytes>>(UPLOAD_QUEUE);
            // File writes and hashing block, so they run on a blocking thread fed by a channel.
            // Only an explicit end (`None`) completes the blob; a closed channel means the
            // upload was abandoned, and dropping the writer removes its temporary file.
            let worker =
                tokio::task::spawn_blocking(move || -> Result<Option<BlobInfo>, StoreError> {
                    while let Some(message) = rx.blocking_recv() {
                        match message {
                            Some(chunk) => writer.write(&chunk)?,
                            None => return Ok(Some(writer.finish()?)),
                        }
                    }
                    Ok(None)
                });
            let mut data = data;
            let mut failure = None;
            while let Some(chunk) = data.next().await {
                match chunk {
                    Ok(chunk) => {
                        if tx.send(Some(chunk)).await.is_err() {
                            break; // the writer stopped; its error is reported below
                        }
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            if failure.is_none() {
                // If the writer already failed this send fails too; its error surfaces below.
                let _ = tx.send(None).await;
            }
            drop(tx);
            let outcome = worker
                .await
                .map_err(|e| StoreError::Inconsistent(format!("blob writer task failed: {e}")))??;
            match (failure, outcome) {
                (Some(e), _) => Err(StoreError::UploadAborted(e.to_string())),
                (None, Some(info)) => Ok(info),
                (None, None) => Err(StoreError::UploadAborted("writer stopped early".into())),
            }
        })
    }

    fn put_file<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<BlobInfo, StoreError>> {
        Box::pin(async move {
            let store = self.clone();
            let path = path.to_owned();
            tokio::task::spawn_blocking(move || store.put_file(&path))
                .await
                .map_err(|e| StoreError::Inconsistent(format!("ingest task failed: {e}")))?
        })
    }

    fn get<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<ByteStream, StoreError>> {
        Box::pin(async move {
            let file = self.open_blob(digest)?;
            let stream = tokio_util::io::ReaderStream::with_capacity(
                tokio::fs::File::from_std(file),
                1 << 16,
            );
            Ok(Box::pin(stream) as ByteStream)
        })
    }

    fn contains<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { Ok(LocalBlobStore::contains(self, digest)) })
    }

    fn verify<'a>(
        &'a self,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<VerifyOutcome, StoreError>> {
        Box::pin(async move {
            let store = self.clone();
            let digest = *digest;
            tokio::task::spawn_blocking(move || LocalBlobStore::verify(&store, &digest))
                .await
                .map_err(|e| StoreError::Inconsistent(format!("verify task failed: {e}")))?
        })
    }

    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }
}

/// Pieces in flight between an upload stream and the blocking writer.
const UPLOAD_QUEUE: usize = 8;

/// Hashes everything a reader yields.
pub fn hash_reader(reader: &mut impl Read) -> io::Result<(Digest, u64)> {
    let mut hasher = Sha256Writer::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let size = hasher.len();
    Ok((hasher.finish(), size))
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Asks the kernel to start writing back what was just written, without waiting, so the fsync at
/// the end finds little dirty data (Linux only; elsewhere the final fsync does all the work).
fn start_writeback(file: &File, offset: &mut u64, since: &mut u64, len: u64) {
    *since += len;
    if *since >= WRITEBACK_EVERY {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: plain syscall on a file descriptor we own; it reads no memory of ours.
            unsafe {
                libc::sync_file_range(
                    file.as_raw_fd(),
                    *offset as libc::off64_t,
                    *since as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = file;
        *offset += *since;
        *since = 0;
    }
}

/// An incremental blob write. Dropped without [`BlobWriter::finish`], it leaves nothing behind.
pub struct BlobWriter {
    store: LocalBlobStore,
    file: Option<File>,
    tmp: PathBuf,
    hasher: Sha256Writer,
    offset: u64,
    since_writeback: u64,
}

impl BlobWriter {
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let file = self.file.as_mut().expect("writer is open until finish");
        file.write_all(bytes)
            .map_err(|e| StoreError::io("write blob", &self.tmp, e))?;
        self.hasher.update(bytes);
        start_writeback(
            file,
            &mut self.offset,
            &mut self.since_writeback,
            bytes.len() as u64,
        );
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }

    /// Makes the blob durable under its digest.
    pub fn finish(mut self) -> Result<BlobInfo, StoreError> {
        let file = self.file.take().expect("writer is open until finish");
        file.sync_all()
            .map_err(|e| StoreError::io("fsync blob", &self.tmp, e))?;
        drop(file);
        let hasher = std::mem::take(&mut self.hasher);
        let size = hasher.len();
        let digest = hasher.finish();
        let target = self.store.path(&digest);
        if target.is_file() {
            let _ = fs::remove_file(&self.tmp);
            return Ok(BlobInfo {
                digest,
                size,
                created: false,
            });
        }
        let dir = target.parent().expect("blob paths have a parent");
        fs::create_dir_all(dir).map_err(|e| StoreError::io("create directory", dir, e))?;
        fs::rename(&self.tmp, &target).map_err(|e| StoreError::io("rename blob", &target, e))?;
        sync_dir(dir)?;
        Ok(BlobInfo {
            digest,
            size,
            created: true,
        })
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() || self.tmp.exists() {
            drop(self.file.take());
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("fsync directory", dir, e))
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    hex::encode(bytes)
}
