use mlsec_types::{Actor, Digest};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

/// The outcome an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
}

/// One audited change or decision.
///
/// `details` holds action-specific facts (digests, sizes, names); it never holds secrets, prompt
/// text or tokens: callers pass identifiers and digests only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    /// UTC time with millisecond precision, RFC 3339 (`2026-12-01T20:00:00.123Z`).
    pub time: String,
    pub actor: Actor,
    /// Dotted verb, e.g. `blob.put`, `token.create`, `server.start`.
    pub action: String,
    /// What was acted on, e.g. `blob:sha256:…`, `token:tok_…`.
    pub resource: String,
    pub decision: Decision,
    /// Why the decision was taken, in words (`granted by role admin`, `token expired`).
    pub reason: String,
    /// The request that caused the event, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit event cannot be encoded: {0}")]
    Encode(String),
    #[error("audit event at index {index} is not a valid event: {message}")]
    Decode { index: u64, message: String },
    #[error("checkpoint signature is not valid: {0}")]
    Signature(String),
}

impl AuditEvent {
    /// A new event stamped with `now`.
    pub fn new(
        now: OffsetDateTime,
        actor: Actor,
        action: impl Into<String>,
        resource: impl Into<String>,
        decision: Decision,
        reason: impl Into<String>,
    ) -> Self {
        AuditEvent {
            time: format_time(now),
            actor,
            action: action.into(),
            resource: resource.into(),
            decision,
            reason: reason.into(),
            request_id: None,
            details: serde_json::Value::Null,
        }
    }

    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// The RFC 8785 canonical JSON encoding: the bytes that are hashed into the chain.
    pub fn canonical(&self) -> Result<Vec<u8>, AuditError> {
        serde_json_canonicalizer::to_vec(self).map_err(|e| AuditError::Encode(e.to_string()))
    }

    /// Decodes canonical bytes back into an event.
    pub fn decode(index: u64, canonical: &[u8]) -> Result<Self, AuditError> {
        serde_json::from_slice(canonical).map_err(|e| AuditError::Decode {
            index,
            message: e.to_string(),
        })
    }
}

/// Formats a time the way every audit event stores it.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// `SHA-256(prev || canonical)`: one link of the chain.
pub fn chain_hash(prev: &Digest, canonical: &[u8]) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(canonical);
    Digest::from_bytes(hasher.finalize().into())
}

/// An event as stored: its position, its canonical bytes and its chain hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub index: u64,
    pub canonical: Vec<u8>,
    pub hash: Digest,
}

impl AuditRecord {
    /// Seals an event onto a chain whose last hash is `prev`.
    pub fn seal(index: u64, prev: &Digest, event: &AuditEvent) -> Result<Self, AuditError> {
        let canonical = event.canonical()?;
        let hash = chain_hash(prev, &canonical);
        Ok(AuditRecord {
            index,
            canonical,
            hash,
        })
    }

    pub fn event(&self) -> Result<AuditEvent, AuditError> {
        AuditEvent::decode(self.index, &self.canonical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn sample() -> AuditEvent {
        AuditEvent::new(
            datetime!(2026-12-01 20:00:00.123456 UTC),
            Actor::user("alice"),
            "blob.put",
            "blob:sha256:00",
            Decision::Allow,
            "granted",
        )
        .with_details(serde_json::json!({"size": 10, "b": [1.5, "x"], "a": null}))
    }

    #[test]
    fn canonical_form_sorts_keys_and_is_stable() {
        let e = sample();
        let c = String::from_utf8(e.canonical().unwrap()).unwrap();
        assert_eq!(
            c,
            r#"{"action":"blob.put","actor":{"id":"alice","kind":"user"},"decision":"allow","details":{"a":null,"b":[1.5,"x"],"size":10},"reason":"granted","resource":"blob:sha256:00","time":"2026-12-01T20:00:00.123Z"}"#
        );
        let back = AuditEvent::decode(0, c.as_bytes()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.canonical().unwrap(), c.as_bytes());
    }

    #[test]
    fn chain_hash_matches_definition() {
        let e = sample();
        let r0 = AuditRecord::seal(0, &Digest::ZERO, &e).unwrap();
        let mut bytes = vec![0u8; 32];
        bytes.extend_from_slice(&r0.canonical);
        assert_eq!(r0.hash, Digest::of(&bytes));
        let r1 = AuditRecord::seal(1, &r0.hash, &e).unwrap();
        assert_ne!(r0.hash, r1.hash);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = AuditEvent::decode(
            3,
            br#"{"action":"a","actor":{"id":"x","kind":"user"},"decision":"allow","reason":"","resource":"r","time":"t","extra":1}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("index 3"), "{err}");
    }
}
