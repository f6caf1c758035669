use serde::Serialize;

/// How bad a finding is. Ordered: `Info < Warning < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// One thing the scanner found, with where it found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable rule id, e.g. `PKL001`.
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
    /// Byte offset inside the scanned stream (the pickle, or the archive member).
    pub offset: u64,
    /// Path inside a container (`archive/data.pkl`), empty for the top level.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub member: String,
}
