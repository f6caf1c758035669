//! Model-file scanning without loading: finds code-execution payloads in pickles and the formats
//! that carry them. Pure library: no I/O beyond what the caller hands in.

pub mod finding;
pub mod pickle;
pub mod policy;

pub use finding::{Finding, Severity};

pub use pickle::{Limits, PickleReport, scan_pickle};
pub use policy::{GlobalVerdict, Policy, PolicyError};
