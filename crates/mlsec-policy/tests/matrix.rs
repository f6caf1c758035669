//! The role × action matrix of the default policy, as a table: every role against every action
//! of the catalog. A change to the policy or the catalog that moves any cell fails here.

use mlsec_policy::{
    ACTIONS, Grant, PolicyEngine, ROLES, Resource, ResourceType, Scope, Subject, TokenRestriction,
    run_cases,
};

/// Actions each role may take (with a fresh second factor where one is needed).
const MATRIX: &[(&str, &[&str])] = &[
    ("admin", &["*"]),
    (
        "maintainer",
        &[
            "blob.read",
            "blob.write",
            "dataset.read",
            "dataset.write",
            "dataset.delete",
            "experiment.read",
            "experiment.write",
            "experiment.delete",
            "model.read",
            "model.write",
            "model.delete",
            "model.alias",
            "model.promote",
            "approval.read",
            "approval.request",
            "gateway_key.read",
            "gateway_key.write",
        ],
    ),
    (
        "reviewer",
        &[
            "blob.read",
            "dataset.read",
            "experiment.read",
            "model.read",
            "approval.read",
            "approval.decide",
            "dataset.approve",
        ],
    ),
    (
        "viewer",
        &[
            "blob.read",
            "dataset.read",
            "experiment.read",
            "model.read",
            "approval.read",
        ],
    ),
    (
        "auditor",
        &[
            "blob.read",
            "dataset.read",
            "experiment.read",
            "model.read",
            "approval.read",
            "policy.read",
            "audit.read",
            "principal.read",
            "gateway_key.read",
        ],
    ),
    (
        "ci",
        &[
            "blob.read",
            "blob.write",
            "dataset.read",
            "dataset.write",
            "experiment.read",
            "experiment.write",
            "model.read",
            "model.write",
            "approval.read",
        ],
    ),
];

/// The default set of actions that need a fresh second factor.
const PRIVILEGED: &[&str] = &[
    "model.promote",
    "approval.decide",
    "dataset.approve",
    "role.grant",
    "policy.write",
    "token.create",
    "token.revoke",
    "signing_key.write",
    "gateway_key.write",
];

fn resource_for(kind: ResourceType) -> Resource {
    match kind {
        ResourceType::Server | ResourceType::Policy | ResourceType::Audit => {
            Resource::singleton(kind)
        }
        // Someone else's account: what a principal may do to itself is tested separately.
        ResourceType::Principal => Resource::new(kind, "someone-else"),
        _ => Resource::new(kind, "fraud/detector"),
    }
}

fn subject<'a>(grants: &'a [Grant], restriction: &'a TokenRestriction) -> Subject<'a> {
    Subject {
        id: "alice",
        kind: "user",
        grants,
        restriction,
        session: false,
    }
}

#[test]
fn every_role_against_every_action() {
    let engine = PolicyEngine::default_policy();
    assert_eq!(MATRIX.len(), ROLES.len(), "every built-in role has a row");
    let open = TokenRestriction::default();
    for (role, allowed) in MATRIX {
        let grants = [Grant {
            role: (*role).into(),
            scope: Scope::Server,
        }];
        for action in ACTIONS {
            let resource = resource_for(action.resource);
            let expected = allowed.contains(&"*") || allowed.contains(&action.name);
            let with_mfa = engine.decide(&subject(&grants, &open), action, &resource, true);
            assert_eq!(
                with_mfa.allowed, expected,
                "{role} {} (with a second factor): {:?}",
                action.name, with_mfa.reasons
            );
            let without = engine.decide(&subject(&grants, &open), action, &resource, false);
            let privileged = PRIVILEGED.contains(&action.name);
            assert_eq!(
                without.allowed,
                expected && !privileged,
                "{role} {} (no second factor): {:?}",
                action.name,
                without.reasons
            );
            assert_eq!(
                without.needs_second_factor,
                expected && privileged,
                "{role} {}: a code is required exactly for the privileged actions",
                action.name
            );
            if !without.allowed {
                assert!(!without.reasons.is_empty(), "denials carry reasons");
            }
        }
    }
}

#[test]
fn no_role_means_no_access() {
    let engine = PolicyEngine::default_policy();
    let open = TokenRestriction::default();
    for action in ACTIONS {
        let resource = resource_for(action.resource);
        let d = engine.decide(&subject(&[], &open), action, &resource, true);
        assert!(!d.allowed, "{} allowed without any role", action.name);
        assert_eq!(
            d.reasons,
            vec!["no policy permits this (deny by default)".to_owned()]
        );
    }
}

#[test]
fn principals_manage_only_themselves() {
    let engine = PolicyEngine::default_policy();
    let open = TokenRestriction::default();
    let me = Resource::new(ResourceType::Principal, "alice");
    let other = Resource::new(ResourceType::Principal, "bob");
    for name in ["principal.read", "principal.password", "mfa.manage"] {
        let a = mlsec_policy::action_named(name).unwrap();
        assert!(
            engine.decide(&subject(&[], &open), a, &me, false).allowed,
            "{name} on self"
        );
        assert!(
            !engine.decide(&subject(&[], &open), a, &other, true).allowed,
            "{name} on other"
        );
    }
    // Creating one's own token is self-service but privileged.
    let create = mlsec_policy::action_named("token.create").unwrap();
    let d = engine.decide(&subject(&[], &open), create, &me, false);
    assert!(!d.allowed && d.needs_second_factor);
    assert!(
        engine
            .decide(&subject(&[], &open), create, &me, true)
            .allowed
    );
}

#[test]
fn scopes_limit_where_a_role_applies() {
    let engine = PolicyEngine::default_policy();
    let open = TokenRestriction::default();
    let grants = [
        Grant {
            role: "maintainer".into(),
            scope: Scope::parse("project:fraud").unwrap(),
        },
        Grant {
            role: "viewer".into(),
            scope: Scope::parse("model:shared-*").unwrap(),
        },
    ];
    let write = mlsec_policy::action_named("model.write").unwrap();
    let read = mlsec_policy::action_named("model.read").unwrap();
    let s = subject(&grants, &open);
    assert!(
        engine
            .decide(&s, write, &Resource::parse("model:fraud/x").unwrap(), false)
            .allowed
    );
    assert!(
        !engine
            .decide(&s, write, &Resource::parse("model:churn/x").unwrap(), false)
            .allowed
    );
    assert!(
        engine
            .decide(
                &s,
                read,
                &Resource::parse("model:shared-emb").unwrap(),
                false
            )
            .allowed
    );
    assert!(
        !engine
            .decide(
                &s,
                write,
                &Resource::parse("model:shared-emb").unwrap(),
                false
            )
            .allowed
    );
    assert!(
        !engine
            .decide(
                &s,
                read,
                &Resource::parse("dataset:shared-emb").unwrap(),
                false
            )
            .allowed
    );
}

#[test]
fn token_restrictions_cap_the_owner_roles() {
    let engine = PolicyEngine::default_policy();
    let grants = [Grant {
        role: "admin".into(),
        scope: Scope::Server,
    }];
    let read_only = TokenRestriction {
        read_only: true,
        resources: None,
    };
    let limited = TokenRestriction {
        read_only: false,
        resources: Some(vec![Scope::parse("dataset:claims*").unwrap()]),
    };
    let write = mlsec_policy::action_named("dataset.write").unwrap();
    let read = mlsec_policy::action_named("dataset.read").unwrap();
    let claims = Resource::parse("dataset:claims-2026").unwrap();
    let other = Resource::parse("dataset:payroll").unwrap();
    let d = engine.decide(&subject(&grants, &read_only), write, &claims, true);
    assert!(!d.allowed);
    assert!(d.reasons[0].contains("read-only"), "{:?}", d.reasons);
    assert!(
        engine
            .decide(&subject(&grants, &read_only), read, &claims, false)
            .allowed
    );
    assert!(
        engine
            .decide(&subject(&grants, &limited), write, &claims, false)
            .allowed
    );
    assert!(
        !engine
            .decide(&subject(&grants, &limited), read, &other, false)
            .allowed
    );
}

#[test]
fn an_explicit_forbid_wins_over_admin() {
    let text = format!(
        "{}\n@id(\"no-one-deletes-production\")\nforbid (principal, action == Mlsec::Action::\"model.delete\", resource)\nwhen {{ context.resource_name like \"prod/*\" }};\n",
        mlsec_policy::DEFAULT_POLICY
    );
    let engine = PolicyEngine::new(&text).unwrap();
    let grants = [Grant {
        role: "admin".into(),
        scope: Scope::Server,
    }];
    let open = TokenRestriction::default();
    let delete = mlsec_policy::action_named("model.delete").unwrap();
    let d = engine.decide(
        &subject(&grants, &open),
        delete,
        &Resource::parse("model:prod/x").unwrap(),
        true,
    );
    assert!(!d.allowed);
    assert_eq!(d.reasons, vec!["no-one-deletes-production".to_owned()]);
    assert!(
        !d.needs_second_factor,
        "a second factor does not lift this forbid"
    );
    assert!(
        engine
            .decide(
                &subject(&grants, &open),
                delete,
                &Resource::parse("model:dev/x").unwrap(),
                true
            )
            .allowed
    );
}

#[test]
fn the_privileged_set_is_policy_data() {
    // Adding model.delete to the second-factor forbid makes it privileged; nothing in Rust changes.
    let text = mlsec_policy::DEFAULT_POLICY.replace(
        "Mlsec::Action::\"model.promote\",\n    Mlsec::Action::\"approval.decide\"",
        "Mlsec::Action::\"model.promote\",\n    Mlsec::Action::\"model.delete\",\n    Mlsec::Action::\"approval.decide\"",
    );
    assert_ne!(text, mlsec_policy::DEFAULT_POLICY);
    let engine = PolicyEngine::new(&text).unwrap();
    let grants = [Grant {
        role: "maintainer".into(),
        scope: Scope::Server,
    }];
    let open = TokenRestriction::default();
    let delete = mlsec_policy::action_named("model.delete").unwrap();
    let d = engine.decide(
        &subject(&grants, &open),
        delete,
        &Resource::parse("model:a").unwrap(),
        false,
    );
    assert!(!d.allowed && d.needs_second_factor);
}

#[test]
fn bad_policies_are_refused_with_the_reason() {
    for (text, needle) in [
        ("permit (principal, action, resource)", "parse"),
        ("permit (principal, action, resource);", "@id"),
        (
            "@id(\"a\") permit (principal, action, resource);\n@id(\"a\") forbid (principal, action, resource);",
            "twice",
        ),
        (
            "@id(\"x\") permit (principal, action == Mlsec::Action::\"model.fly\", resource);",
            "validate",
        ),
        (
            "@id(\"x\") permit (principal, action, resource) when { context.role == \"admin\" };",
            "validate",
        ),
        (
            "@id(\"t\") permit (principal == ?principal, action, resource);",
            "template",
        ),
    ] {
        let err = PolicyEngine::new(text)
            .err()
            .unwrap_or_else(|| panic!("accepted: {text}"));
        assert!(err.to_string().contains(needle), "{text}: {err}");
    }
    assert!(PolicyEngine::new(&"x".repeat(mlsec_policy::MAX_POLICY_BYTES + 1)).is_err());
}

#[test]
fn cases_files_check_a_policy() {
    let engine = PolicyEngine::default_policy();
    let outcomes = run_cases(
        &engine,
        r#"
[[case]]
name = "CI adds a run"
principal = "ci-bot"
kind = "service_account"
grants = ["ci@project:fraud"]
action = "experiment.write"
resource = "experiment:fraud/training"
expect = "allow"

[[case]]
principal = "ci-bot"
kind = "service_account"
grants = ["ci@project:fraud"]
action = "model.promote"
resource = "model:fraud/detector"
expect = "deny"

[[case]]
principal = "rita"
grants = ["reviewer"]
action = "approval.decide"
resource = "approval:42"
expect = "second_factor"

[[case]]
principal = "rita"
grants = ["reviewer"]
action = "approval.decide"
resource = "approval:42"
expect = "allow"
"#,
    )
    .unwrap();
    let passed: Vec<bool> = outcomes.iter().map(|o| o.passed).collect();
    assert_eq!(passed, vec![true, true, true, false]);
    for bad in [
        "[[case]]\nprincipal = 1",
        "[[case]]\nprincipal='a'\naction='model.fly'\nresource='model:a'\nexpect='allow'",
        "[[case]]\nprincipal='a'\naction='model.read'\nresource='model:a'\nexpect='allow'\ngrants=['wizard']",
    ] {
        assert!(run_cases(&engine, bad).is_err(), "{bad}");
    }
}

#[test]
fn the_schema_lists_every_action() {
    let text = mlsec_policy::schema_text();
    for a in ACTIONS {
        assert!(text.contains(&format!("action \"{}\"", a.name)));
    }
    let mut names: Vec<&str> = ACTIONS.iter().map(|a| a.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), ACTIONS.len(), "action names are unique");
    for a in ACTIONS {
        let (res, _) = a.name.split_once('.').unwrap();
        assert!(
            res == a.resource.as_str() || matches!(res, "role" | "token" | "mfa" | "signing_key"),
            "{} is named after its resource type",
            a.name
        );
    }
}
