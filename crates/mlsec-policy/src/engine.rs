//! Decisions: grants and token restrictions are resolved here, then the Cedar policy decides.
//!
//! Deny by default: without a `permit` that matches, the answer is no; a matching `forbid` always
//! wins (Cedar's semantics). Every decision carries its reasons (the ids of the policies that
//! determined it, or the restriction that refused it), so that a denial can be explained and
//! audited.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Entities, EntityId, EntityTypeName, EntityUid, PolicyId, PolicySet,
    Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use serde::Serialize;

use crate::catalog::{ACTIONS, ActionSpec, ResourceType};
use crate::error::PolicyError;
use crate::schema::{NAMESPACE, schema_text};
use crate::scope::{Resource, Scope};

/// The policy mlsec starts with.
pub const DEFAULT_POLICY: &str = include_str!("../policy/default.cedar");

/// Largest policy text accepted.
pub const MAX_POLICY_BYTES: usize = 1 << 20;

/// Annotation marking a `forbid` that a fresh second factor lifts.
const SECOND_FACTOR_ANNOTATION: &str = "second_factor";

/// A role held on a scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Grant {
    pub role: String,
    pub scope: Scope,
}

/// Limits a token carries on top of its owner's roles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TokenRestriction {
    /// Only actions in the `read` group.
    pub read_only: bool,
    /// Only resources covered by one of these scopes (`None`: no limit).
    pub resources: Option<Vec<Scope>>,
}

impl TokenRestriction {
    pub fn is_unrestricted(&self) -> bool {
        !self.read_only && self.resources.is_none()
    }

    /// Why this restriction refuses the action, if it does.
    fn refuses(&self, action: &ActionSpec, resource: &Resource) -> Option<String> {
        if self.read_only && !action.groups.contains(&"read") {
            return Some(format!(
                "token is read-only and `{}` is not a read",
                action.name
            ));
        }
        if let Some(scopes) = &self.resources
            && !scopes.iter().any(|s| s.covers(resource))
        {
            return Some(format!(
                "token is limited to other resources than `{resource}`"
            ));
        }
        None
    }
}

/// Who asks: the account, what it holds, and the credential it came with.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub id: &'a str,
    /// `user` or `service_account`.
    pub kind: &'a str,
    pub grants: &'a [Grant],
    pub restriction: &'a TokenRestriction,
    /// The request came with a console session.
    pub session: bool,
}

/// The answer, with the reasons for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// Ids of the policies that determined the decision, or the restriction that refused it.
    pub reasons: Vec<String>,
    /// Denied only for want of a fresh second factor: the same request with one is allowed.
    pub needs_second_factor: bool,
    /// Roles that applied to the resource.
    pub roles: Vec<String>,
    /// Evaluation errors (a policy that errors is skipped, as Cedar specifies).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// A validated policy, ready to decide.
pub struct PolicyEngine {
    policies: PolicySet,
    entities: Entities,
    authorizer: Authorizer,
    action_uids: HashMap<&'static str, EntityUid>,
    principal_type: EntityTypeName,
    resource_types: HashMap<ResourceType, EntityTypeName>,
    /// Policy ids whose denial a second factor lifts.
    second_factor_policies: BTreeSet<String>,
    text: String,
}

fn type_name(name: &str) -> EntityTypeName {
    EntityTypeName::from_str(&format!("{NAMESPACE}::{name}")).expect("catalog names are valid")
}

/// The schema, parsed (it is generated, so failure is a bug caught by the tests).
pub fn schema() -> Schema {
    Schema::from_cedarschema_str(&schema_text())
        .map(|(s, _warnings)| s)
        .expect("the generated schema parses")
}

impl PolicyEngine {
    /// Parses and validates `text` (strict mode, against the generated schema). Every policy
    /// needs a unique `@id("…")` annotation: ids are what decisions cite as their reasons.
    pub fn new(text: &str) -> Result<PolicyEngine, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::Parse(format!(
                "policy is larger than {MAX_POLICY_BYTES} bytes"
            )));
        }
        let parsed = PolicySet::from_str(text).map_err(|e| PolicyError::Parse(render(&e)))?;
        if parsed.templates().next().is_some() {
            return Err(PolicyError::Parse(
                "templates are not supported; grant roles instead".into(),
            ));
        }
        let mut policies = PolicySet::new();
        let mut second_factor_policies = BTreeSet::new();
        for policy in parsed.policies() {
            let Some(id) = policy.annotation("id") else {
                return Err(PolicyError::Parse(format!(
                    "every policy needs an @id(\"…\") annotation; this one has none:\n{policy}"
                )));
            };
            if policy.annotation(SECOND_FACTOR_ANNOTATION).is_some() {
                second_factor_policies.insert(id.to_owned());
            }
            policies
                .add(policy.new_id(PolicyId::new(id)))
                .map_err(|_| PolicyError::Parse(format!("policy id `{id}` is used twice")))?;
        }
        let schema = schema();
        let validation = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !validation.validation_passed() {
            let messages: Vec<String> = validation
                .validation_errors()
                .map(|e| format!("{}: {}", e.policy_id(), render(e)))
                .collect();
            return Err(PolicyError::Invalid(messages.join("; ")));
        }
        let entities = schema
            .action_entities()
            .expect("the generated schema yields action entities");
        let action_uids = ACTIONS
            .iter()
            .map(|a| {
                let uid =
                    EntityUid::from_type_name_and_id(type_name("Action"), EntityId::new(a.name));
                (a.name, uid)
            })
            .collect();
        let resource_types = ResourceType::ALL
            .iter()
            .map(|t| (*t, type_name(t.cedar_name())))
            .collect();
        Ok(PolicyEngine {
            policies,
            entities,
            authorizer: Authorizer::new(),
            action_uids,
            principal_type: type_name("Principal"),
            resource_types,
            second_factor_policies,
            text: text.to_owned(),
        })
    }

    pub fn default_policy() -> PolicyEngine {
        PolicyEngine::new(DEFAULT_POLICY).expect("the default policy validates")
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Ids of the policies in force.
    pub fn policy_ids(&self) -> Vec<String> {
        self.policies
            .policies()
            .map(|p| p.id().to_string())
            .collect()
    }

    /// Decides whether `subject` may do `action` to `resource`.
    pub fn decide(
        &self,
        subject: &Subject<'_>,
        action: &ActionSpec,
        resource: &Resource,
        mfa: bool,
    ) -> Decision {
        let roles: BTreeSet<&str> = subject
            .grants
            .iter()
            .filter(|g| g.scope.covers(resource))
            .map(|g| g.role.as_str())
            .collect();
        let roles_out = || roles.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>();
        if action.resource != resource.kind {
            return Decision {
                allowed: false,
                reasons: vec![format!(
                    "action `{}` applies to {} resources, not to `{resource}`",
                    action.name, action.resource
                )],
                needs_second_factor: false,
                roles: roles_out(),
                errors: vec![],
            };
        }
        if let Some(reason) = subject.restriction.refuses(action, resource) {
            return Decision {
                allowed: false,
                reasons: vec![reason],
                needs_second_factor: false,
                roles: roles_out(),
                errors: vec![],
            };
        }
        let first = self.evaluate(subject, action, resource, &roles, mfa);
        let needs_second_factor = !first.allowed
            && !mfa
            && !first.reasons.is_empty()
            && first
                .reasons
                .iter()
                .any(|r| self.second_factor_policies.contains(r))
            && self
                .evaluate(subject, action, resource, &roles, true)
                .allowed;
        Decision {
            allowed: first.allowed,
            reasons: if first.reasons.is_empty() && !first.allowed {
                vec!["no policy permits this (deny by default)".into()]
            } else {
                first.reasons
            },
            needs_second_factor,
            roles: roles_out(),
            errors: first.errors,
        }
    }

    fn evaluate(
        &self,
        subject: &Subject<'_>,
        action: &ActionSpec,
        resource: &Resource,
        roles: &BTreeSet<&str>,
        mfa: bool,
    ) -> Evaluated {
        let principal = EntityUid::from_type_name_and_id(
            self.principal_type.clone(),
            EntityId::new(subject.id),
        );
        let resource_uid = EntityUid::from_type_name_and_id(
            self.resource_types[&resource.kind].clone(),
            EntityId::new(&resource.name),
        );
        let action_uid = self.action_uids[action.name].clone();
        let context = Context::from_pairs([
            (
                "roles".to_owned(),
                RestrictedExpression::new_set(
                    roles
                        .iter()
                        .map(|r| RestrictedExpression::new_string((*r).to_owned())),
                ),
            ),
            ("mfa".to_owned(), RestrictedExpression::new_bool(mfa)),
            (
                "session".to_owned(),
                RestrictedExpression::new_bool(subject.session),
            ),
            (
                "principal_kind".to_owned(),
                RestrictedExpression::new_string(subject.kind.to_owned()),
            ),
            (
                "resource_name".to_owned(),
                RestrictedExpression::new_string(resource.name.clone()),
            ),
            (
                "resource_project".to_owned(),
                RestrictedExpression::new_string(resource.project().unwrap_or("").to_owned()),
            ),
        ])
        .expect("context keys are distinct");
        let request = Request::new(principal, action_uid, resource_uid, context, None)
            .expect("requests without a schema always build");
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &self.entities);
        let mut reasons: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| id.to_string())
            .collect();
        reasons.sort();
        Evaluated {
            allowed: response.decision() == cedar_policy::Decision::Allow,
            reasons,
            errors: response
                .diagnostics()
                .errors()
                .map(|e| e.to_string())
                .collect(),
        }
    }
}

struct Evaluated {
    allowed: bool,
    reasons: Vec<String>,
    errors: Vec<String>,
}

/// Cedar's errors render their details through `miette`; plain `Display` is enough here and
/// keeps `miette`'s renderer out of the dependency tree.
fn render(e: &impl std::fmt::Display) -> String {
    e.to_string()
}

/// Looks up an action by name, as an error if unknown.
pub fn action_named(name: &str) -> Result<&'static ActionSpec, PolicyError> {
    crate::catalog::action(name).ok_or_else(|| PolicyError::UnknownAction(name.to_owned()))
}
