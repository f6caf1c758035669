//! Admin-supplied policy text, policy test cases, scopes and resource references: parse,
//! validate and (when valid) decide, without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mlsec_policy::{ACTIONS, PolicyEngine, Resource, Scope, Subject, TokenRestriction, run_cases};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Scope::parse(text);
    let _ = Resource::parse(text);
    let default = PolicyEngine::default_policy();
    let _ = run_cases(&default, text);
    if let Ok(engine) = PolicyEngine::new(text) {
        let open = TokenRestriction::default();
        let subject = Subject { id: "fuzz", kind: "user", grants: &[], restriction: &open, session: false };
        for action in ACTIONS.iter().take(4) {
            let _ = engine.decide(&subject, action, &Resource::new(action.resource, "fuzz/x"), false);
        }
    }
});
