//! The Cedar schema, generated from the catalog so that it cannot drift from the code.

use std::fmt::Write;

use crate::catalog::{ACTIONS, GROUPS, ResourceType};

/// The Cedar namespace of every mlsec entity and action.
pub const NAMESPACE: &str = "Mlsec";

/// The schema in Cedar's schema syntax. Policies are validated against it in strict mode.
pub fn schema_text() -> String {
    let mut s = String::new();
    s.push_str("// Generated from the mlsec action catalog. Context fields:\n");
    s.push_str(
        "//   roles            roles the principal holds on a scope that covers the resource\n",
    );
    s.push_str("//   mfa              a fresh second factor was presented for this request\n");
    s.push_str("//   session          the request came with a console session (not a token)\n");
    s.push_str("//   principal_kind   \"user\" or \"service_account\"\n");
    s.push_str(
        "//   resource_name    the resource's name (\"\" for singletons such as the audit log)\n",
    );
    s.push_str(
        "//   resource_project the part of a dataset/experiment/model name before the first `/`\n",
    );
    let _ = writeln!(s, "namespace {NAMESPACE} {{");
    for t in ResourceType::ALL {
        let _ = writeln!(s, "  entity {};", t.cedar_name());
    }
    s.push_str(
        "  type RequestContext = {\n    roles: Set<String>,\n    mfa: Bool,\n    session: Bool,\n    principal_kind: String,\n    resource_name: String,\n    resource_project: String,\n  };\n",
    );
    for (group, description) in GROUPS {
        let _ = writeln!(s, "  // {description}\n  action \"{group}\";");
    }
    for a in ACTIONS {
        let groups = if a.groups.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = a.groups.iter().map(|g| format!("\"{g}\"")).collect();
            format!(" in [{}]", list.join(", "))
        };
        let _ = writeln!(
            s,
            "  // {}\n  action \"{}\"{groups} appliesTo {{ principal: [Principal], resource: [{}], context: RequestContext }};",
            a.description,
            a.name,
            a.resource.cedar_name()
        );
    }
    s.push_str("}\n");
    s
}
