//! Untrusted dataset bytes: CSV, JSON Lines, Parquet and Arrow IPC through format detection,
//! the streaming readers and the profiler; schema documents and stored profiles through their
//! parsers. Errors are fine; panics, hangs and unbounded memory are not.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mlsec_data::{DataSchema, DatasetProfile, TableFormat, TableSource};

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("mlsec-fuzz-data-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let (name, format) = match selector % 5 {
        0 => ("t.csv", TableFormat::Csv),
        1 => ("t.jsonl", TableFormat::Jsonl),
        2 => ("t.parquet", TableFormat::Parquet),
        3 => ("t.arrow", TableFormat::Arrow),
        _ => {
            if let Ok(text) = std::str::from_utf8(body) {
                let _ = DataSchema::parse(text);
                let _ = serde_json::from_str::<DatasetProfile>(text);
            }
            return;
        }
    };
    let path = scratch().join(name);
    std::fs::write(&path, body).unwrap();
    let _ = TableFormat::detect(&path);
    if let Ok((profile, _)) = DatasetProfile::from_sources(&[TableSource::new(&path, name, format)]) {
        for c in &profile.columns {
            let _ = c.summary();
        }
        let schema = DataSchema::infer(&profile);
        let _ = mlsec_data::poison::enforce_schema(&[TableSource::new(&path, name, format)], &schema);
    }
});
