//! One file per detector; each exports its `INFO` for the registry.

pub mod banned;
pub mod canary;
pub mod code;
pub mod grounding;
pub mod hidden_text;
pub mod json_schema;
pub mod language;
pub mod links;
pub mod markup;
pub mod pii;
pub mod prompt_injection;
pub mod refusal;
pub mod secrets;
pub mod system_prompt_leak;
pub mod token_limit;
pub mod topics;
pub mod toxicity;
