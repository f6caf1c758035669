//! Model-file scanning without loading: finds code-execution payloads in pickles and the formats
//! that carry them (PyTorch archives, joblib, NumPy, compressed streams), detected by content,
//! never by extension. Pure library: the caller hands in bytes (a memory map works best).

pub mod finding;
mod gguf;
mod keras;
mod onnx;
pub mod pickle;
pub mod policy;
mod protobuf;
pub mod rules;
mod safetensors;
mod scan;
pub mod zip;

pub use finding::{Finding, Severity};
pub use pickle::{Limits, PickleReport, scan_pickle};
pub use policy::{GlobalVerdict, Policy, PolicyError};
pub use rules::{RULES, RuleDoc};
pub use scan::{Coverage, ScanOptions, ScanReport, detect, scan_bytes};
