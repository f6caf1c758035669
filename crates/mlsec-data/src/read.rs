//! Tabular readers: CSV, Parquet, JSON Lines and Arrow IPC through the Arrow crates, streamed in
//! record batches so memory stays bounded by one batch per file whatever the file's size.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};

use crate::error::DataError;

/// Rows per record batch.
pub const BATCH_ROWS: usize = 64 * 1024;
/// Records read to infer the column types of CSV and JSON Lines.
pub const INFER_RECORDS: usize = 100_000;
/// Widest table accepted.
pub const MAX_COLUMNS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    Csv,
    Parquet,
    Jsonl,
    Arrow,
}

impl TableFormat {
    /// Detects a tabular file by its first bytes, then by its name; `None` for other files
    /// (images, model weights, text), which are versioned but not profiled.
    pub fn detect(path: &Path) -> Result<Option<TableFormat>, DataError> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_owned();
        TableFormat::detect_named(path, &name)
    }

    /// Detects the format of the bytes at `path` that are known by the name `name` (a blob
    /// store keeps bytes under their digest, without the extension).
    pub fn detect_named(path: &Path, name: &str) -> Result<Option<TableFormat>, DataError> {
        let mut head = [0u8; 8];
        let mut file = File::open(path).map_err(|e| DataError::io("open", path, e))?;
        let n = read_up_to(&mut file, &mut head).map_err(|e| DataError::io("read", path, e))?;
        if n >= 4 && &head[..4] == b"PAR1" {
            return Ok(Some(TableFormat::Parquet));
        }
        if n >= 6 && &head[..6] == b"ARROW1" {
            return Ok(Some(TableFormat::Arrow));
        }
        let name = name.to_ascii_lowercase();
        Ok(if name.ends_with(".csv") || name.ends_with(".tsv") {
            Some(TableFormat::Csv)
        } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
            Some(TableFormat::Jsonl)
        } else if name.ends_with(".parquet") || name.ends_with(".pq") {
            Some(TableFormat::Parquet)
        } else if [".arrow", ".arrows", ".feather", ".ipc"]
            .iter()
            .any(|ext| name.ends_with(ext))
        {
            Some(TableFormat::Arrow)
        } else {
            None
        })
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// One tabular file to read: where its bytes are, and the name to report it under (its path in
/// the dataset, not the blob store's file name).
#[derive(Debug, Clone)]
pub struct TableSource {
    pub path: PathBuf,
    pub name: String,
    pub format: TableFormat,
}

impl TableSource {
    pub fn new(path: impl Into<PathBuf>, name: impl Into<String>, format: TableFormat) -> Self {
        TableSource {
            path: path.into(),
            name: name.into(),
            format,
        }
    }

    /// The columns, without reading the rows.
    pub fn schema(&self) -> Result<SchemaRef, DataError> {
        let batches = self.open()?;
        Ok(batches.schema)
    }

    /// Opens a streaming reader of record batches.
    pub fn open(&self) -> Result<Batches, DataError> {
        let file = File::open(&self.path).map_err(|e| DataError::io("open", &self.path, e))?;
        let name = self.name.clone();
        let err = |e: &dyn std::fmt::Display| DataError::read(name.clone(), e);
        let (schema, inner): (SchemaRef, Inner) = match self.format {
            TableFormat::Parquet => {
                check_parquet_footer(&self.path, &self.name)?;
                let builder =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                        .map_err(|e| err(&e))?;
                let schema = builder.schema().clone();
                let reader = builder
                    .with_batch_size(BATCH_ROWS)
                    .build()
                    .map_err(|e| err(&e))?;
                (schema, Inner::Parquet(reader))
            }
            TableFormat::Csv => {
                let delimiter = if self.name.to_ascii_lowercase().ends_with(".tsv") {
                    b'\t'
                } else {
                    b','
                };
                let format = arrow::csv::reader::Format::default()
                    .with_header(true)
                    .with_delimiter(delimiter);
                let mut file = file;
                let (schema, _) = format
                    .infer_schema(BufReader::new(&mut file), Some(INFER_RECORDS))
                    .map_err(|e| err(&e))?;
                file.seek(SeekFrom::Start(0))
                    .map_err(|e| DataError::io("seek", &self.path, e))?;
                let schema = Arc::new(schema);
                let reader = arrow::csv::ReaderBuilder::new(schema.clone())
                    .with_format(format)
                    .with_batch_size(BATCH_ROWS)
                    .build(file)
                    .map_err(|e| err(&e))?;
                (schema, Inner::Csv(reader))
            }
            TableFormat::Jsonl => {
                let mut reader = BufReader::new(file);
                let (schema, _) = arrow::json::reader::infer_json_schema_from_seekable(
                    &mut reader,
                    Some(INFER_RECORDS),
                )
                .map_err(|e| err(&e))?;
                let schema = Arc::new(schema);
                let reader = arrow::json::ReaderBuilder::new(schema.clone())
                    .with_batch_size(BATCH_ROWS)
                    .build(reader)
                    .map_err(|e| err(&e))?;
                (schema, Inner::Json(reader))
            }
            TableFormat::Arrow => {
                // The file format starts with `ARROW1`; anything else is read as a stream.
                let mut file = file;
                let mut magic = [0u8; 6];
                let n = read_up_to(&mut file, &mut magic)
                    .map_err(|e| DataError::io("read", &self.path, e))?;
                file.seek(SeekFrom::Start(0))
                    .map_err(|e| DataError::io("seek", &self.path, e))?;
                if n == 6 && &magic == b"ARROW1" {
                    let reader = arrow::ipc::reader::FileReader::try_new_buffered(file, None)
                        .map_err(|e| err(&e))?;
                    (reader.schema(), Inner::Ipc(reader))
                } else {
                    let reader = arrow::ipc::reader::StreamReader::try_new_buffered(file, None)
                        .map_err(|e| err(&e))?;
                    (reader.schema(), Inner::IpcStream(reader))
                }
            }
        };
        if schema.fields().len() > MAX_COLUMNS {
            return Err(DataError::Limit {
                what: format!("{}: {} columns", self.name, schema.fields().len()),
                limit: MAX_COLUMNS as u64,
            });
        }
        if schema.fields().is_empty() {
            return Err(DataError::read(&self.name, "the file has no columns"));
        }
        let mut names = std::collections::HashSet::new();
        if let Some(dup) = schema
            .fields()
            .iter()
            .find(|f| !names.insert(f.name().as_str()))
        {
            return Err(DataError::read(
                &self.name,
                format!("column `{}` appears twice; rename one", dup.name()),
            ));
        }
        Ok(Batches {
            name: self.name.clone(),
            schema,
            inner,
            rows: 0,
        })
    }
}

/// A truncated Parquet file loses its footer; say so plainly instead of a decoder message.
fn check_parquet_footer(path: &Path, name: &str) -> Result<(), DataError> {
    let mut file = File::open(path).map_err(|e| DataError::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| DataError::io("stat", path, e))?
        .len();
    if len < 12 {
        return Err(DataError::read(
            name,
            format!("Parquet file is truncated ({len} bytes)"),
        ));
    }
    let mut tail = [0u8; 4];
    file.seek(SeekFrom::End(-4))
        .and_then(|_| file.read_exact(&mut tail))
        .map_err(|e| DataError::io("read", path, e))?;
    if &tail != b"PAR1" {
        return Err(DataError::read(
            name,
            "Parquet file is truncated or damaged: it does not end with the PAR1 footer",
        ));
    }
    Ok(())
}

// One reader per open file; the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Parquet(parquet::arrow::arrow_reader::ParquetRecordBatchReader),
    Csv(arrow::csv::Reader<File>),
    Json(arrow::json::Reader<BufReader<File>>),
    Ipc(arrow::ipc::reader::FileReader<BufReader<File>>),
    IpcStream(arrow::ipc::reader::StreamReader<BufReader<File>>),
}

/// Record batches of one file, in order. Errors name the file and the first row of the batch
/// that failed (CSV errors also carry the line and column).
pub struct Batches {
    pub name: String,
    pub schema: SchemaRef,
    inner: Inner,
    rows: u64,
}

impl Batches {
    /// Rows returned so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }
}

impl Iterator for Batches {
    type Item = Result<RecordBatch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = match &mut self.inner {
            Inner::Parquet(r) => r.next(),
            Inner::Csv(r) => r.next(),
            Inner::Json(r) => r.next(),
            Inner::Ipc(r) => r.next(),
            Inner::IpcStream(r) => r.next(),
        }?;
        Some(match next {
            Ok(batch) => {
                if batch.schema().fields() != self.schema.fields() {
                    return Some(Err(DataError::read(
                        &self.name,
                        "a record batch's columns differ from the file's schema",
                    )));
                }
                self.rows += batch.num_rows() as u64;
                Ok(batch)
            }
            Err(e) => Err(DataError::read(
                &self.name,
                format!("reading rows from {}: {e}", self.rows + 1),
            )),
        })
    }
}
