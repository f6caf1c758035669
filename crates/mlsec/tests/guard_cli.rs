//! The shipped prompt-injection classifier is reproducible: training it again with the command
//! the docs give, from the data in the repository, yields the same bytes.

use std::path::Path;
use std::process::Command;

#[test]
fn the_shipped_classifier_is_what_the_repository_data_trains() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = tempfile::tempdir().unwrap();
    let model = out.path().join("injection.bin");
    let status = Command::new(env!("CARGO_BIN_EXE_mlsec"))
        .current_dir(&repo)
        .args([
            "guard",
            "train",
            "--data",
            "data/guard/injection/train.jsonl",
            "--data",
            "data/guard/hard-benign/train.jsonl",
            "--data",
            "data/guard/hard-benign-long/train.jsonl",
            "-o",
        ])
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let trained = std::fs::read(&model).unwrap();
    let shipped = std::fs::read(repo.join("crates/mlsec-guard/model/injection.bin")).unwrap();
    assert!(
        trained == shipped,
        "retrained model differs from the shipped one: run the command in docs/guard.md"
    );
}
