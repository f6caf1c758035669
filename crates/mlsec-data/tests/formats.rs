//! The same table as CSV, JSON Lines, Arrow IPC (file and stream) and Parquet profiles to the
//! same statistics.

use mlsec_data::synth::{self, Plant, Spec};
use mlsec_data::{ColumnKind, DatasetProfile, TableFormat, TableSource};

#[test]
fn every_format_gives_the_same_profile() {
    let dir = tempfile::tempdir().unwrap();
    let batch = synth::generate(&Spec::benchmark(3000), 5, &Plant::default(), None);
    let parquet = dir.path().join("t.parquet");
    let csv = dir.path().join("t.csv");
    let jsonl = dir.path().join("t.jsonl");
    let arrow = dir.path().join("t.arrow");
    let stream = dir.path().join("t.arrows");
    synth::write(&batch, &parquet).unwrap();
    synth::write(&batch, &csv).unwrap();
    {
        let mut w = arrow::json::LineDelimitedWriter::new(std::fs::File::create(&jsonl).unwrap());
        w.write(&batch).unwrap();
        w.finish().unwrap();
    }
    {
        let mut w = arrow::ipc::writer::FileWriter::try_new(
            std::fs::File::create(&arrow).unwrap(),
            &batch.schema(),
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
    }
    {
        let mut w = arrow::ipc::writer::StreamWriter::try_new(
            std::fs::File::create(&stream).unwrap(),
            &batch.schema(),
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
    }
    let mut profiles = Vec::new();
    for path in [&parquet, &csv, &jsonl, &arrow, &stream] {
        let format = TableFormat::detect(path).unwrap().unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        let (p, rows) =
            DatasetProfile::from_sources(&[TableSource::new(path, name, format)]).unwrap();
        assert_eq!(rows, vec![3000], "{name}");
        profiles.push((name.to_owned(), p));
    }
    let (_, reference) = &profiles[0];
    for (name, p) in &profiles[1..] {
        assert_eq!(p.columns.len(), reference.columns.len(), "{name}");
        for a in &reference.columns {
            // JSON Lines schema inference orders columns its own way: match by name.
            let b = p
                .column(&a.name)
                .unwrap_or_else(|| panic!("{name}: no column {}", a.name));
            // CSV and JSON carry no types: an all-string column may be read as a number.
            if a.kind == ColumnKind::Float
                || a.kind == ColumnKind::String && b.kind == ColumnKind::String
            {
                assert_eq!(a.nulls, b.nulls, "{name} {}", a.name);
                assert_eq!(a.present(), b.present(), "{name} {}", a.name);
            }
            if let (Some(x), Some(y)) = (&a.values, &b.values) {
                assert!(
                    (x.mean - y.mean).abs() < 1e-9 * (1.0 + x.mean.abs()),
                    "{name} {}",
                    a.name
                );
                assert_eq!(x.min, y.min, "{name} {}", a.name);
                assert_eq!(x.max, y.max, "{name} {}", a.name);
            }
            if let (Some(x), Some(y)) = (&a.categories, &b.categories) {
                assert_eq!(x, y, "{name} {}", a.name);
            }
        }
    }
}
