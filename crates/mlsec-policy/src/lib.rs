//! Authorization decisions for mlsec: "may this principal do this to this resource?"
//!
//! A pure library. The action catalog and resource types are Rust ([`catalog`]); the Cedar schema
//! is generated from them ([`schema_text`]); which role may do what is a Cedar policy — data an
//! admin can read, replace and test — validated against that schema before it takes effect.
//! Deny by default, an explicit `forbid` wins, and every [`Decision`] says why.

mod cases;
pub mod catalog;
mod engine;
mod error;
mod schema;
mod scope;

pub use cases::{CaseOutcome, Expect, PolicyCase, parse_grant, run_cases};
pub use catalog::{ACTIONS, ActionSpec, GROUPS, ROLES, ResourceType, RoleSpec};
pub use engine::{
    DEFAULT_POLICY, Decision, Grant, MAX_POLICY_BYTES, PolicyEngine, Subject, TokenRestriction,
    action_named, schema,
};
pub use error::PolicyError;
pub use schema::{NAMESPACE, schema_text};
pub use scope::{MAX_NAME_LEN, Resource, Scope, wildcard_match};
