//! Encoders that hand the audit log to a SIEM, and the reader of the JSON-lines export.
//!
//! - `jsonl`: one JSON object per line: `{"index","hash","event"}` for events and
//!   `{"checkpoint","signature"}` for signed checkpoints. Lossless: `mlsec audit verify --file`
//!   re-verifies it offline.
//! - `ocsf`: OCSF 1.3 *API Activity* (class 6003) events, one per line.
//! - `cef`: ArcSight Common Event Format lines, for syslog collectors.

use std::io::BufRead;

use mlsec_types::Digest;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::checkpoint::SignedCheckpoint;
use crate::event::{AuditEvent, AuditRecord, Decision};

/// Longest line the JSON-lines reader accepts; real events are a few hundred bytes.
pub const MAX_LINE_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Ocsf,
    Cef,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jsonl" => Ok(ExportFormat::Jsonl),
            "ocsf" => Ok(ExportFormat::Ocsf),
            "cef" => Ok(ExportFormat::Cef),
            other => Err(format!(
                "unknown export format `{other}` (expected jsonl, ocsf or cef)"
            )),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonlRecord {
    index: u64,
    hash: Digest,
    event: AuditEvent,
}

/// One line of the export for an event.
pub fn encode_record(format: ExportFormat, record: &AuditRecord) -> Result<String, String> {
    let event = record.event().map_err(|e| e.to_string())?;
    Ok(match format {
        ExportFormat::Jsonl => serde_json::to_string(&JsonlRecord {
            index: record.index,
            hash: record.hash,
            event,
        })
        .map_err(|e| e.to_string())?,
        ExportFormat::Ocsf => ocsf(record, &event).to_string(),
        ExportFormat::Cef => cef(record, &event),
    })
}

/// One line of the export for a checkpoint (JSON lines only; the SIEM formats carry events).
pub fn encode_checkpoint(checkpoint: &SignedCheckpoint) -> String {
    serde_json::to_string(checkpoint).expect("checkpoints always serialise")
}

/// A log read back from a JSON-lines export.
#[derive(Debug, Default)]
pub struct ParsedExport {
    pub records: Vec<AuditRecord>,
    pub checkpoints: Vec<SignedCheckpoint>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportReadError {
    #[error("line {line}: longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong { line: usize },
    #[error("line {line}: {message}")]
    Invalid { line: usize, message: String },
    #[error("reading the export: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads a JSON-lines export. Each event is re-encoded canonically, so what is verified is exactly
/// what would have been hashed.
pub fn read_jsonl(reader: impl BufRead) -> Result<ParsedExport, ExportReadError> {
    let mut out = ParsedExport::default();
    let mut reader = reader;
    let mut line = Vec::new();
    let mut line_no = 0usize;
    loop {
        line.clear();
        line_no += 1;
        let n = read_bounded_line(&mut reader, &mut line).map_err(|e| map_line_err(e, line_no))?;
        if n == 0 {
            break;
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let value: Value = serde_json::from_slice(text).map_err(|e| ExportReadError::Invalid {
            line: line_no,
            message: e.to_string(),
        })?;
        let invalid = |message: String| ExportReadError::Invalid {
            line: line_no,
            message,
        };
        if value.get("checkpoint").is_some() {
            let cp: SignedCheckpoint =
                serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
            out.checkpoints.push(cp);
        } else {
            let rec: JsonlRecord =
                serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
            let canonical = rec.event.canonical().map_err(|e| invalid(e.to_string()))?;
            out.records.push(AuditRecord {
                index: rec.index,
                canonical,
                hash: rec.hash,
            });
        }
    }
    Ok(out)
}

fn map_line_err(e: std::io::Error, line: usize) -> ExportReadError {
    if e.kind() == std::io::ErrorKind::InvalidData {
        ExportReadError::LineTooLong { line }
    } else {
        ExportReadError::Io(e)
    }
}

fn read_bounded_line(reader: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(total);
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if out.len() + take > MAX_LINE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "line too long",
            ));
        }
        out.extend_from_slice(&available[..take]);
        reader.consume(take);
        total += take;
        if done {
            return Ok(total);
        }
    }
}

fn epoch_millis(time: &str) -> i64 {
    time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .unwrap_or(0)
}

/// OCSF activity from the verb at the end of the action (`blob.put` → create).
fn ocsf_activity(action: &str) -> (u8, &'static str) {
    let verb = action.rsplit('.').next().unwrap_or(action);
    match verb {
        "create" | "put" | "add" | "register" | "init" | "upload" => (1, "Create"),
        "get" | "read" | "list" | "download" | "verify" | "export" => (2, "Read"),
        "update" | "set" | "grant" | "promote" | "enable" | "disable" | "rotate" => (3, "Update"),
        "delete" | "revoke" | "remove" => (4, "Delete"),
        _ => (99, "Other"),
    }
}

fn ocsf(record: &AuditRecord, event: &AuditEvent) -> Value {
    const CLASS_UID: u32 = 6003;
    let (activity_id, activity_name) = ocsf_activity(&event.action);
    let denied = event.decision == Decision::Deny;
    json!({
        "class_uid": CLASS_UID,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": CLASS_UID * 100 + u32::from(activity_id),
        "time": epoch_millis(&event.time),
        "severity_id": if denied { 3 } else { 1 },
        "severity": if denied { "Medium" } else { "Informational" },
        "status_id": if denied { 2 } else { 1 },
        "status": if denied { "Failure" } else { "Success" },
        "status_detail": event.reason,
        "message": format!("{} {} {}", event.actor, event.action, event.resource),
        "actor": { "user": { "name": event.actor.id, "type": format!("{:?}", event.actor.kind) } },
        "api": {
            "operation": event.action,
            "request": { "uid": event.request_id },
        },
        "resources": [ { "uid": event.resource, "type": event.resource.split(':').next().unwrap_or("") } ],
        "metadata": {
            "version": "1.3.0",
            "uid": record.hash.to_string(),
            "sequence": record.index,
            "product": { "name": "mlsec", "vendor_name": "mlsec", "version": env!("CARGO_PKG_VERSION") },
        },
        "unmapped": event.details,
    })
}

fn cef_header(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn cef_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn cef(record: &AuditRecord, event: &AuditEvent) -> String {
    let severity = if event.decision == Decision::Deny {
        6
    } else {
        2
    };
    let outcome = match event.decision {
        Decision::Allow => "allow",
        Decision::Deny => "deny",
    };
    let mut ext = vec![
        format!("rt={}", epoch_millis(&event.time)),
        format!("suser={}", cef_value(&event.actor.to_string())),
        format!("act={}", cef_value(&event.action)),
        format!("outcome={outcome}"),
        format!("reason={}", cef_value(&event.reason)),
        format!("cs1Label=resource cs1={}", cef_value(&event.resource)),
        format!("cs2Label=chainHash cs2={}", record.hash),
        format!("externalId={}", record.index),
    ];
    if let Some(request_id) = &event.request_id {
        ext.push(format!("cs3Label=requestId cs3={}", cef_value(request_id)));
    }
    if !event.details.is_null() {
        ext.push(format!("msg={}", cef_value(&event.details.to_string())));
    }
    format!(
        "CEF:0|mlsec|mlsec|{}|{}|{}|{}|{}",
        cef_header(env!("CARGO_PKG_VERSION")),
        cef_header(&event.action),
        cef_header(&format!("{} {}", event.action, outcome)),
        severity,
        ext.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::AuditRecord;
    use mlsec_types::Actor;
    use time::macros::datetime;

    fn record(action: &str, decision: Decision) -> AuditRecord {
        let e = AuditEvent::new(
            datetime!(2026-12-01 20:00:00 UTC),
            Actor::user("a|b=c"),
            action,
            "blob:sha256:ab",
            decision,
            "line1\nline2",
        )
        .with_request_id(Some("req-1".into()));
        AuditRecord::seal(0, &Digest::ZERO, &e).unwrap()
    }

    #[test]
    fn cef_escapes_header_and_extension() {
        let line = encode_record(ExportFormat::Cef, &record("blob|put", Decision::Deny)).unwrap();
        assert!(line.starts_with("CEF:0|mlsec|mlsec|"), "{line}");
        assert!(line.contains("|blob\\|put|"), "{line}");
        assert!(line.contains("suser=user:a|b\\=c"), "{line}");
        assert!(line.contains("reason=line1\\nline2"), "{line}");
        assert!(!line.contains('\n'));
        assert!(line.contains("outcome=deny"));
    }

    #[test]
    fn ocsf_has_the_api_activity_shape() {
        let line = encode_record(ExportFormat::Ocsf, &record("blob.put", Decision::Allow)).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["class_uid"], 6003);
        assert_eq!(v["activity_id"], 1);
        assert_eq!(v["type_uid"], 600301);
        assert_eq!(v["time"], 1_796_155_200_000i64);
        assert_eq!(v["api"]["request"]["uid"], "req-1");
        assert_eq!(v["status"], "Success");
    }

    #[test]
    fn jsonl_round_trips() {
        let r = record("blob.put", Decision::Allow);
        let line = encode_record(ExportFormat::Jsonl, &r).unwrap();
        let parsed = read_jsonl(std::io::Cursor::new(format!("{line}\n\n"))).unwrap();
        assert_eq!(parsed.records, vec![r]);
    }

    #[test]
    fn jsonl_reader_rejects_long_and_bad_lines() {
        let long = "x".repeat(MAX_LINE_BYTES + 1);
        assert!(matches!(
            read_jsonl(std::io::Cursor::new(long)),
            Err(ExportReadError::LineTooLong { line: 1 })
        ));
        let err = read_jsonl(std::io::Cursor::new("{}\n")).unwrap_err();
        assert!(err.to_string().starts_with("line 1:"), "{err}");
        let deep = "[".repeat(10_000);
        assert!(read_jsonl(std::io::Cursor::new(deep)).is_err());
    }
}
