//! Bad input gives a clear error naming the file (and the row or column where the reader knows
//! it), never a panic.

use std::io::Write;

use mlsec_data::manifest::{self, hash_file};
use mlsec_data::synth::{self, Plant, Spec};
use mlsec_data::{DataError, DatasetProfile, TableFormat, TableSource};

fn profile_of(path: &std::path::Path, name: &str) -> Result<DatasetProfile, DataError> {
    let format = TableFormat::detect(path)?.expect("tabular");
    DatasetProfile::from_sources(&[TableSource::new(path, name, format)]).map(|p| p.0)
}

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
    p
}

#[test]
fn ragged_csv_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ragged.csv", b"a,b,c\n1,2,3\n4,5\n6,7,8\n");
    let e = profile_of(&p, "data/ragged.csv").unwrap_err().to_string();
    assert!(e.contains("data/ragged.csv"), "{e}");
    assert!(e.contains("line 3") || e.contains("line 2"), "{e}");
}

#[test]
fn mixed_types_name_file_column_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("x,y\n");
    for i in 0..200_000 {
        text.push_str(&format!("{i},{}\n", i * 2));
    }
    text.push_str("oops,1\n");
    let p = write(dir.path(), "mixed.csv", text.as_bytes());
    let e = profile_of(&p, "mixed.csv").unwrap_err().to_string();
    assert!(e.contains("mixed.csv") && e.contains("oops"), "{e}");
    assert!(e.contains("column") && e.contains("line"), "{e}");
}

#[test]
fn invalid_utf8_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "bad.csv", b"name,n\nok,1\n\xff\xfe,2\n");
    let e = profile_of(&p, "bad.csv").unwrap_err().to_string();
    assert!(
        e.contains("bad.csv") && e.to_lowercase().contains("utf"),
        "{e}"
    );
}

#[test]
fn truncated_parquet_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let batch = synth::generate(&Spec::labelled(5000), 1, &Plant::default(), None);
    let p = dir.path().join("t.parquet");
    synth::write(&batch, &p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    for cut in [bytes.len() - 1, bytes.len() / 2, 9, 3] {
        let q = write(dir.path(), "cut.parquet", &bytes[..cut]);
        let e = profile_of(&q, "cut.parquet").unwrap_err().to_string();
        assert!(
            e.contains("cut.parquet") && e.contains("truncated"),
            "{cut}: {e}"
        );
    }
    // A footer that claims more metadata than the file holds.
    let mut damaged = bytes.clone();
    let n = damaged.len();
    damaged[n - 8..n - 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let q = write(dir.path(), "damaged.parquet", &damaged);
    assert!(
        profile_of(&q, "damaged.parquet")
            .unwrap_err()
            .to_string()
            .contains("damaged.parquet")
    );
}

#[test]
fn zero_row_files_profile_to_empty_columns() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "empty.csv", b"a,b\n");
    let profile = profile_of(&p, "empty.csv").unwrap();
    assert_eq!(profile.rows, 0);
    assert_eq!(profile.columns.len(), 2);
    let p = write(dir.path(), "nothing.csv", b"");
    let e = profile_of(&p, "nothing.csv").unwrap_err().to_string();
    assert!(e.contains("nothing.csv"), "{e}");
    let batch = synth::generate(&Spec::labelled(0), 1, &Plant::default(), None);
    let q = dir.path().join("zero.parquet");
    synth::write(&batch, &q).unwrap();
    assert_eq!(profile_of(&q, "zero.parquet").unwrap().rows, 0);
}

#[test]
fn jsonl_with_a_broken_line_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "rows.jsonl",
        b"{\"a\": 1}\n{\"a\": 2\n{\"a\": 3}\n",
    );
    let e = profile_of(&p, "rows.jsonl").unwrap_err().to_string();
    assert!(e.contains("rows.jsonl"), "{e}");
}

#[test]
fn a_file_that_changes_while_hashed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "grows.bin", &vec![7u8; 1 << 20]);
    let files = manifest::walk(dir.path()).unwrap();
    // Appended after it was listed: the hash covers bytes that were not there when listed.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&p)
        .unwrap()
        .write_all(b"more")
        .unwrap();
    let e = hash_file(&files[0]).unwrap_err();
    assert!(matches!(e, DataError::Changed { .. }), "{e}");
    assert!(e.to_string().contains("grows.bin"));
}

#[test]
fn symlinks_and_unsafe_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.csv", b"x\n1\n");
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
    let e = manifest::walk(dir.path()).unwrap_err().to_string();
    assert!(e.contains("link") && e.contains("symbolic"), "{e}");
    for bad in ["../x", "/abs", "a//b", "a/./b", "a\nb"] {
        let entry = mlsec_data::FileEntry {
            path: bad.into(),
            size: 0,
            sha256: mlsec_types::Digest::of(b""),
            format: None,
            rows: None,
        };
        assert!(mlsec_data::Manifest::new(vec![entry]).is_err(), "{bad:?}");
    }
}

#[test]
fn files_of_one_version_must_agree_on_columns() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.csv", b"x,y\n1,2\n");
    let b = write(dir.path(), "b.csv", b"x,z\n1,2\n");
    let e = DatasetProfile::from_sources(&[
        TableSource::new(&a, "part-a.csv", TableFormat::Csv),
        TableSource::new(&b, "part-b.csv", TableFormat::Csv),
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("part-b.csv") && e.contains('z'), "{e}");
}

#[test]
fn duplicate_column_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "dup.csv", b"a,label,label\n1,x,y\n");
    let e = profile_of(&p, "dup.csv").unwrap_err().to_string();
    assert!(
        e.contains("dup.csv") && e.contains("`label` appears twice"),
        "{e}"
    );
}

#[test]
fn values_too_large_to_summarise_name_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "huge.csv",
        b"x,amount\n1,1e200\n2,-1e200\n3,1e200\n",
    );
    let e = profile_of(&p, "huge.csv").unwrap_err().to_string();
    assert!(e.contains("`amount`") && e.contains("too large"), "{e}");
}
