//! Signs and verifies a model directory with the same library calls `mlsec sign` and
//! `mlsec verify` make, and prints the wall time of each (used by `benches/signing/run.sh`).
//!
//! ```text
//! cargo run --release -p mlsec-attest --example oms_bench -- MODEL_DIR [--shards BYTES] [--blake3]
//! ```

use std::time::Instant;

use mlsec_attest::{
    Curve, HashAlgorithm, PrivateKey, Serialization, SignOptions, SigningMaterial, Trust,
    VerifyOptions, sign_model, verify_model,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .ok_or("usage: oms_bench MODEL_DIR [--shards BYTES] [--blake3]")?;
    let mut options = SignOptions::default();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--shards" => {
                let size = args.next().ok_or("--shards needs a size")?.parse()?;
                options.serialization = Serialization::Shards { shard_size: size };
            }
            "--blake3" => options.hash = HashAlgorithm::Blake3,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let key = PrivateKey::generate(Curve::P256)?;
    let started = Instant::now();
    let signed = sign_model(model.as_ref(), &options, SigningMaterial::Key(&key))?;
    let sign_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let verified = verify_model(
        model.as_ref(),
        &signed.bundle,
        Trust::Key(&key.public_key()),
        &VerifyOptions {
            walk: options.walk.clone(),
            ignore_unsigned_files: false,
        },
    )?;
    let verify_s = started.elapsed().as_secs_f64();
    assert_eq!(verified.root_digest, signed.root_digest);
    println!(
        "{}",
        serde_json::json!({
            "files": signed.files,
            "resources": signed.resources,
            "bytes": signed.bytes,
            "threads": rayon::current_num_threads(),
            "sign_s": sign_s,
            "verify_s": verify_s,
        })
    );
    Ok(())
}
