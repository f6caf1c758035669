//! One contract for every blob backend: the local file system always, and S3 against a real
//! S3-compatible server (moto) when `MLSEC_TEST_MOTO_SERVER` names its executable and the crate
//! is built with the `s3` feature.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use mlsec_store::{BlobStore, ByteStream, LocalBlobStore, VerifyOutcome};
use mlsec_types::Digest;

fn stream_of(chunks: Vec<Vec<u8>>) -> ByteStream {
    Box::pin(futures_util::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, io::Error>(Bytes::from(c))),
    ))
}

fn failing_stream(prefix: Vec<u8>) -> ByteStream {
    Box::pin(futures_util::stream::iter(vec![
        Ok(Bytes::from(prefix)),
        Err(io::Error::other("client went away")),
    ]))
}

async fn read_all(store: &dyn BlobStore, digest: &Digest) -> Vec<u8> {
    let mut stream = store.get(digest).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

/// The contract. `overwrite` replaces the stored bytes of a digest behind the store's back.
async fn contract(store: Arc<dyn BlobStore>, overwrite: impl Fn(&Digest, &[u8])) {
    let name = store.describe();
    // Round trip, in several chunks, larger than one S3 part.
    let big: Vec<u8> = (0..(12 << 20) as u32)
        .map(|i| (i.wrapping_mul(31) >> 3) as u8)
        .collect();
    let chunks: Vec<Vec<u8>> = big.chunks(1 << 20).map(<[u8]>::to_vec).collect();
    let info = store.put_stream(stream_of(chunks)).await.unwrap();
    assert_eq!(info.digest, Digest::of(&big), "{name}");
    assert_eq!(info.size, big.len() as u64);
    assert!(info.created);
    assert!(store.contains(&info.digest).await.unwrap());
    assert_eq!(read_all(store.as_ref(), &info.digest).await, big, "{name}");
    assert_eq!(
        store.verify(&info.digest).await.unwrap(),
        VerifyOutcome::Intact {
            size: big.len() as u64
        }
    );

    // Identical content is stored once.
    let again = store
        .put_stream(stream_of(vec![big.clone()]))
        .await
        .unwrap();
    assert_eq!(again.digest, info.digest);
    assert!(!again.created, "{name}: duplicate reported as new");

    // The empty blob is a blob.
    let empty = store.put_stream(stream_of(vec![])).await.unwrap();
    assert_eq!(empty.digest, Digest::of(b""), "{name}");
    assert_eq!(
        read_all(store.as_ref(), &empty.digest).await,
        Vec::<u8>::new()
    );

    // An upload that fails part-way leaves nothing under any digest.
    let partial = b"half of a model".to_vec();
    let err = store.put_stream(failing_stream(partial.clone())).await;
    assert!(err.is_err(), "{name}: failed upload reported success");
    assert!(!store.contains(&Digest::of(&partial)).await.unwrap());

    // Unknown digests.
    let unknown = Digest::of(b"never stored");
    assert!(!store.contains(&unknown).await.unwrap());
    assert_eq!(
        store.verify(&unknown).await.unwrap(),
        VerifyOutcome::Missing
    );
    assert!(store.get(&unknown).await.is_err());

    // Bytes swapped behind the store's back are caught by verify.
    let small = store
        .put_stream(stream_of(vec![b"weights v1".to_vec()]))
        .await
        .unwrap();
    overwrite(&small.digest, b"weights v2 (swapped)");
    match store.verify(&small.digest).await.unwrap() {
        VerifyOutcome::Corrupt { actual, .. } => {
            assert_eq!(actual, Digest::of(b"weights v2 (swapped)"))
        }
        other => panic!("{name}: swapped blob verified as {other:?}"),
    }

    // put_file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bin");
    std::fs::write(&path, b"from a file").unwrap();
    let from_file = store.put_file(&path).await.unwrap();
    assert_eq!(from_file.digest, Digest::of(b"from a file"));
    assert_eq!(
        read_all(store.as_ref(), &from_file.digest).await,
        b"from a file"
    );
}

#[tokio::test]
async fn local_backend_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalBlobStore::open(dir.path().join("blobs")).unwrap();
    let for_overwrite = local.clone();
    contract(Arc::new(local.clone()), move |digest, bytes| {
        std::fs::write(for_overwrite.path(digest), bytes).unwrap();
    })
    .await;
    // Nothing left in the temporary directory by the failed upload.
    assert_eq!(
        std::fs::read_dir(dir.path().join("blobs/tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[cfg(feature = "s3")]
mod s3 {
    use super::*;
    use std::process::{Child, Command, Stdio};

    struct Moto(Child);

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    async fn start_moto(exe: &str) -> (Moto, String) {
        let port = free_port();
        let child = Command::new(exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Moto(child);
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if client.get(&url).send().await.is_ok() {
                return (moto, url);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("moto_server did not start on {url}");
    }

    #[tokio::test]
    async fn s3_backend_meets_the_contract() {
        let Ok(exe) = std::env::var("MLSEC_TEST_MOTO_SERVER") else {
            eprintln!("skipping: MLSEC_TEST_MOTO_SERVER is not set");
            return;
        };
        let (_moto, url) = start_moto(&exe).await;
        let bucket = "mlsec-blobs";
        let created = reqwest::Client::new()
            .put(format!("{url}/{bucket}"))
            .send()
            .await
            .unwrap();
        assert!(
            created.status().is_success(),
            "create bucket: {}",
            created.status()
        );
        let config = mlsec_store::S3Config {
            bucket: bucket.into(),
            endpoint: Some(url.clone()),
            region: Some("us-east-1".into()),
            access_key_id: Some("test".into()),
            secret_access_key: Some("test".into()),
            prefix: Some("mlsec".into()),
            allow_http: true,
        };
        let store = mlsec_store::S3BlobStore::new(&config).unwrap();
        // Replace an object directly in the bucket, as someone with bucket access could.
        use object_store::ObjectStoreExt;
        let raw = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(&url)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .with_allow_http(true)
            .build()
            .unwrap();
        let raw = Arc::new(raw);
        contract(Arc::new(store), move |digest, bytes| {
            let hex = digest.hex();
            let key = object_store::path::Path::from(format!(
                "mlsec/sha256/{}/{}/{}",
                &hex[0..2],
                &hex[2..4],
                hex
            ));
            let (raw, body) = (raw.clone(), bytes.to_vec());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(raw.put(&key, body.into())).unwrap();
            })
            .join()
            .unwrap();
        })
        .await;
    }
}

#[test]
fn batch_ingest_stores_every_file_once_and_leaves_nothing_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path().join("blobs")).unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut paths = Vec::new();
    for (i, body) in [
        b"alpha".to_vec(),
        b"beta".to_vec(),
        b"alpha".to_vec(),
        vec![7u8; 3 << 20],
        Vec::new(),
    ]
    .into_iter()
    .enumerate()
    {
        let p = src.join(format!("f{i}"));
        std::fs::write(&p, &body).unwrap();
        paths.push((p, body));
    }
    let only_paths: Vec<_> = paths.iter().map(|(p, _)| p.clone()).collect();
    let infos = store.put_files(&only_paths, 3).unwrap();
    assert_eq!(infos.len(), 5);
    for ((_, body), info) in paths.iter().zip(&infos) {
        assert_eq!(info.digest, Digest::of(body));
        assert_eq!(info.size, body.len() as u64);
        assert_eq!(std::fs::read(store.path(&info.digest)).unwrap(), *body);
    }
    // The same content twice in one batch: stored once.
    assert_eq!(infos.iter().filter(|i| i.created).count(), 4);
    let tmp_entries = || {
        std::fs::read_dir(dir.path().join("blobs/tmp"))
            .unwrap()
            .count()
    };
    assert_eq!(tmp_entries(), 0);

    // A file that cannot be read fails the batch and leaves no temporary file.
    let mut broken = only_paths.clone();
    broken.insert(2, src.join("missing"));
    let e = store.put_files(&broken, 2).unwrap_err().to_string();
    assert!(e.contains("missing"), "{e}");
    assert_eq!(tmp_entries(), 0);
}
