//! CycloneDX 1.6 ML-BOM for a model version: the `machine-learning-model` component with its
//! files' hashes and a `modelCard`, one `data` component per dataset version, one `library`
//! component per package of the training environment, and the dependency graph.
//! Validated against the official 1.6 JSON schema in the tests.

use serde_json::{Value, json};

use crate::facts::ModelFacts;

pub const SPEC_VERSION: &str = "1.6";
const APPROACHES: &[&str] = &[
    "supervised",
    "unsupervised",
    "reinforcement-learning",
    "semi-supervised",
    "self-supervised",
];

fn model_ref(f: &ModelFacts) -> String {
    format!("model:{}@{}", f.name, f.version)
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn strip(d: &str) -> &str {
    d.strip_prefix("sha256:").unwrap_or(d)
}

fn prop(name: &str, value: impl Into<String>) -> Value {
    json!({"name": name, "value": value.into()})
}

/// The BOM. `serial` is a lower-case UUID, `timestamp` RFC 3339 with a zone: both passed in so
/// the library stays pure and tests are reproducible.
pub fn cyclonedx(facts: &ModelFacts, serial: &str, timestamp: &str, tool_version: &str) -> Value {
    let mref = model_ref(facts);
    let mut dataset_refs = Vec::new();
    let mut components = Vec::new();
    for d in &facts.datasets {
        let bref = format!(
            "data:{}@{}",
            d.name,
            d.version.as_deref().unwrap_or("unversioned")
        );
        let mut data = json!({
            "type": "dataset",
            "name": d.name,
        });
        if let Some(c) = &d.classification {
            data["classification"] = json!(c);
        }
        if let Some(owner) = &d.owner {
            data["governance"] = json!({"owners": [{"organization": {"name": owner}}]});
        }
        let mut c = json!({
            "type": "data",
            "bom-ref": bref,
            "name": d.name,
            "data": [data],
        });
        if let Some(v) = &d.version {
            c["version"] = json!(v);
        }
        if let Some(digest) = d.digest.as_deref().map(strip).filter(|d| is_hex64(d)) {
            c["hashes"] = json!([{"alg": "SHA-256", "content": digest}]);
        }
        dataset_refs.push(bref);
        components.push(c);
    }
    let mut library_refs = Vec::new();
    for p in &facts.libraries {
        let purl = p.purl();
        let mut c = json!({
            "type": "library",
            "bom-ref": purl,
            "name": p.name,
            "purl": purl,
        });
        if let Some(v) = &p.version {
            c["version"] = json!(v);
        }
        if !p.hashes.is_empty() {
            c["hashes"] = json!(p.hashes);
        }
        if p.version.is_none() {
            c["properties"] = json!([prop("mlsec:pinned", "false")]);
        }
        library_refs.push(purl);
        components.push(c);
    }

    let card = &facts.card;
    let mut parameters = json!({});
    if let Some(a) = card.approach.as_deref().filter(|a| APPROACHES.contains(a)) {
        parameters["approach"] = json!({"type": a});
    }
    if let Some(t) = &card.task {
        parameters["task"] = json!(t);
    }
    if let Some(a) = &card.architecture_family {
        parameters["architectureFamily"] = json!(a);
    }
    if let Some(a) = &card.model_architecture {
        parameters["modelArchitecture"] = json!(a);
    }
    if !dataset_refs.is_empty() {
        parameters["datasets"] = json!(
            dataset_refs
                .iter()
                .map(|r| json!({"ref": r}))
                .collect::<Vec<_>>()
        );
    }
    if !card.inputs.is_empty() {
        parameters["inputs"] = json!(
            card.inputs
                .iter()
                .map(|i| json!({"format": i}))
                .collect::<Vec<_>>()
        );
    }
    if !card.outputs.is_empty() {
        parameters["outputs"] = json!(
            card.outputs
                .iter()
                .map(|o| json!({"format": o}))
                .collect::<Vec<_>>()
        );
    }
    let mut model_card = json!({ "modelParameters": parameters });
    if !facts.metrics.is_empty() {
        let metrics: Vec<Value> = facts
            .metrics
            .iter()
            .map(|m| {
                let mut v = json!({"type": m.name, "value": m.value.to_string()});
                if let Some(s) = &m.slice {
                    v["slice"] = json!(s);
                }
                v
            })
            .collect();
        model_card["quantitativeAnalysis"] = json!({"performanceMetrics": metrics});
    }
    let mut considerations = json!({});
    if !card.users.is_empty() {
        considerations["users"] = json!(card.users);
    }
    if !card.intended_uses.is_empty() {
        considerations["useCases"] = json!(card.intended_uses);
    }
    let mut limitations = card.limitations.clone();
    limitations.extend(
        card.out_of_scope_uses
            .iter()
            .map(|u| format!("Out of scope: {u}")),
    );
    if !limitations.is_empty() {
        considerations["technicalLimitations"] = json!(limitations);
    }
    if !card.tradeoffs.is_empty() {
        considerations["performanceTradeoffs"] = json!(card.tradeoffs);
    }
    if !card.ethical_considerations.is_empty() {
        considerations["ethicalConsiderations"] = json!(
            card.ethical_considerations
                .iter()
                .map(|e| {
                    let mut v = json!({"name": e.name});
                    if let Some(m) = &e.mitigation {
                        v["mitigationStrategy"] = json!(m);
                    }
                    v
                })
                .collect::<Vec<_>>()
        );
    }
    if considerations.as_object().is_some_and(|o| !o.is_empty()) {
        model_card["considerations"] = considerations;
    }

    let mut properties = vec![
        prop(
            "mlsec:oms:root-digest",
            format!("sha256:{}", facts.root_digest),
        ),
        prop("mlsec:quarantined", facts.quarantined.to_string()),
        prop("mlsec:created-by", facts.created_by.clone()),
    ];
    if let Some(s) = &facts.scan_severity {
        properties.push(prop("mlsec:scan:worst-severity", s.clone()));
    }
    if let Some(r) = &facts.run_id {
        properties.push(prop("mlsec:run", r.clone()));
    }
    if let Some(c) = &facts.code_commit {
        properties.push(prop("mlsec:code-commit", c.clone()));
    }
    for (k, v) in &facts.params {
        properties.push(prop(&format!("mlsec:param:{k}"), v.clone()));
    }
    for s in &facts.signatures {
        properties.push(prop(
            &format!("mlsec:signature:{}", s.kind),
            format!(
                "{} key {}{}",
                if s.valid { "valid" } else { "invalid" },
                s.key_id,
                s.principal
                    .as_deref()
                    .map(|p| format!(" by {p}"))
                    .unwrap_or_default()
            ),
        ));
    }
    let files: Vec<Value> = facts
        .files
        .iter()
        .filter(|f| is_hex64(strip(&f.sha256)))
        .map(|f| {
            json!({
                "type": "file",
                "bom-ref": format!("{mref}/{}", f.path),
                "name": f.path,
                "hashes": [{"alg": "SHA-256", "content": strip(&f.sha256)}],
                "properties": [prop("mlsec:size", f.size.to_string())],
            })
        })
        .collect();
    let mut model = json!({
        "type": "machine-learning-model",
        "bom-ref": mref,
        "name": facts.name,
        "version": facts.version,
        "hashes": [{"alg": "SHA-256", "content": facts.root_digest}],
        "modelCard": model_card,
        "properties": properties,
    });
    let description = card
        .summary
        .clone()
        .unwrap_or_else(|| facts.description.clone());
    if !description.is_empty() {
        model["description"] = json!(description);
    }
    if !files.is_empty() {
        model["components"] = json!(files);
    }
    if let Some(l) = &card.license {
        model["licenses"] = json!([{"license": {"name": l}}]);
    }

    let mut depends = dataset_refs.clone();
    depends.extend(library_refs.iter().cloned());
    let mut dependencies = vec![json!({"ref": mref, "dependsOn": depends})];
    dependencies.extend(dataset_refs.iter().map(|r| json!({"ref": r})));
    dependencies.extend(library_refs.iter().map(|r| json!({"ref": r})));

    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": format!("urn:uuid:{serial}"),
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "tools": {"components": [{"type": "application", "name": "mlsec", "version": tool_version}]},
            "component": {"type": "machine-learning-model", "bom-ref": format!("{mref}#metadata"), "name": facts.name, "version": facts.version},
        },
        "components": std::iter::once(model).chain(components).collect::<Vec<_>>(),
        "dependencies": dependencies,
    })
}
