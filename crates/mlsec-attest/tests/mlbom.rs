//! ML-BOMs validate against the official CycloneDX 1.6 JSON schema (offline, with the schema
//! files from `cyclonedx-python-lib`, see `cyclonedx/SOURCE.md`), every reference points at a
//! component, and the model card renders every fact with untrusted text escaped.

use std::collections::{BTreeMap, HashSet};

use jsonschema::{Draft, Registry};
use mlsec_attest::facts::*;
use mlsec_attest::lockfile::{LockFormat, parse};
use mlsec_attest::{card, mlbom};
use serde_json::Value;

const BOM_SCHEMA: &str = include_str!("cyclonedx/bom-1.6.schema.json");
const SPDX_SCHEMA: &str = include_str!("cyclonedx/spdx.schema.json");
const JSF_SCHEMA: &str = include_str!("cyclonedx/jsf-0.82.schema.json");

fn schema_errors(bom: &Value) -> Vec<String> {
    let parse = |s: &str| -> Value { serde_json::from_str(s).unwrap() };
    let registry = Registry::new()
        .add(
            "http://cyclonedx.org/schema/spdx.schema.json",
            parse(SPDX_SCHEMA),
        )
        .unwrap()
        .add(
            "http://cyclonedx.org/schema/jsf-0.82.schema.json",
            parse(JSF_SCHEMA),
        )
        .unwrap()
        .prepare()
        .unwrap();
    let validator = jsonschema::options()
        .with_draft(Draft::Draft7)
        .with_registry(&registry)
        .build(&parse(BOM_SCHEMA))
        .unwrap();
    validator
        .iter_errors(bom)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn facts() -> ModelFacts {
    let requirements = "torch==2.3.1+cu121 \\\n    --hash=sha256:b6b997773bfe24bc0476173bd349eee129a48ccefc34ec3776903ef5003a32ec\nnumpy==1.26.4\ntokenizers>=0.19\n";
    ModelFacts {
        name: "fraud<script>".into(),
        version: "3".into(),
        description: "Card-not-present fraud scoring".into(),
        created_at: "2026-12-01T10:00:00Z".into(),
        created_by: "alice".into(),
        root_digest: "ab".repeat(32),
        files: vec![
            FileFact {
                path: "model.safetensors".into(),
                sha256: "cd".repeat(32),
                size: 1024,
                scan_severity: None,
            },
            FileFact {
                path: "MLmodel".into(),
                sha256: format!("sha256:{}", "ef".repeat(32)),
                size: 90,
                scan_severity: Some("warning".into()),
            },
        ],
        quarantined: false,
        scan_severity: Some("warning".into()),
        run_id: Some("run-42".into()),
        code_commit: Some("0123abcd".into()),
        datasets: vec![
            DatasetFact {
                name: "transactions".into(),
                version: Some("7".into()),
                digest: Some(format!("sha256:{}", "12".repeat(32))),
                classification: Some("confidential".into()),
                owner: Some("risk-data".into()),
            },
            DatasetFact {
                name: "logged-by-client".into(),
                version: None,
                digest: None,
                classification: None,
                owner: None,
            },
        ],
        metrics: vec![
            MetricFact {
                name: "auc".into(),
                value: 0.937,
                slice: None,
            },
            MetricFact {
                name: "recall".into(),
                value: 0.81,
                slice: Some("amount > 1000".into()),
            },
        ],
        params: BTreeMap::from([("lr".into(), "0.001".into())]),
        signatures: vec![SignatureFact {
            kind: "oms".into(),
            key_id: "34".repeat(32),
            principal: Some("alice".into()),
            valid: true,
            reason: None,
        }],
        environment_source: Some("requirements.txt".into()),
        libraries: parse(LockFormat::Requirements, requirements).unwrap(),
        card: CardFields {
            approach: Some("supervised".into()),
            task: Some("binary classification".into()),
            model_architecture: Some("gradient-boosted trees".into()),
            intended_uses: vec!["score card-not-present transactions".into()],
            limitations: vec!["not validated outside the EU | <b>bold</b>".into()],
            ethical_considerations: vec![EthicalConsideration {
                name: "disparate impact".into(),
                mitigation: Some("monthly fairness review".into()),
            }],
            ..CardFields::default()
        },
    }
}

#[test]
fn ml_bom_is_valid_cyclonedx_1_6_with_resolvable_references() {
    let bom = mlbom::cyclonedx(
        &facts(),
        "3f1e7a52-8c3b-4a8e-9d0c-1f2e3d4c5b6a",
        "2026-12-01T10:00:00Z",
        "0.1.0",
    );
    let errors = schema_errors(&bom);
    assert!(errors.is_empty(), "{errors:#?}\n{bom:#}");
    // Every bom-ref unique; every reference (dependencies, model card datasets) resolves.
    let mut refs = HashSet::new();
    fn collect(v: &Value, refs: &mut HashSet<String>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("bom-ref") {
                    assert!(refs.insert(r.clone()), "duplicate bom-ref {r}");
                }
                o.values().for_each(|v| collect(v, refs));
            }
            Value::Array(a) => a.iter().for_each(|v| collect(v, refs)),
            _ => {}
        }
    }
    collect(&bom, &mut refs);
    for d in bom["dependencies"].as_array().unwrap() {
        assert!(refs.contains(d["ref"].as_str().unwrap()));
        for on in d["dependsOn"].as_array().into_iter().flatten() {
            assert!(refs.contains(on.as_str().unwrap()), "{on}");
        }
    }
    let model = &bom["components"][0];
    assert_eq!(model["type"], "machine-learning-model");
    for r in model["modelCard"]["modelParameters"]["datasets"]
        .as_array()
        .unwrap()
    {
        assert!(refs.contains(r["ref"].as_str().unwrap()));
    }
    assert_eq!(
        model["modelCard"]["quantitativeAnalysis"]["performanceMetrics"][0]["value"],
        "0.937"
    );
    let torch = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "torch")
        .unwrap();
    assert_eq!(torch["purl"], "pkg:pypi/torch@2.3.1%2Bcu121");
    assert_eq!(torch["hashes"][0]["alg"], "SHA-256");

    // The schema really runs: a wrong hash algorithm name and an upper-case serial are errors.
    let mut bad = bom.clone();
    bad["components"][0]["hashes"][0]["alg"] = "sha256".into();
    assert!(!schema_errors(&bad).is_empty());
    let mut bad = bom.clone();
    bad["serialNumber"] = "urn:uuid:3F1E7A52-8C3B-4A8E-9D0C-1F2E3D4C5B6A".into();
    assert!(!schema_errors(&bad).is_empty());
}

#[test]
fn an_empty_version_still_gives_a_valid_bom() {
    let f = ModelFacts {
        datasets: vec![],
        libraries: vec![],
        metrics: vec![],
        signatures: vec![],
        params: BTreeMap::new(),
        card: CardFields::default(),
        ..facts()
    };
    let bom = mlbom::cyclonedx(
        &f,
        "3f1e7a52-8c3b-4a8e-9d0c-1f2e3d4c5b6a",
        "2026-12-01T10:00:00+01:00",
        "0.1.0",
    );
    assert!(schema_errors(&bom).is_empty(), "{bom:#}");
}

#[test]
fn cards_show_the_facts_and_escape_untrusted_text() {
    let f = facts();
    let md = card::markdown(&f);
    for needle in [
        "# Model card: fraud&lt;script&gt; version 3",
        "transactions",
        "auc",
        "alice",
        "valid",
        "model.safetensors",
        "\\| &lt;b&gt;bold&lt;/b&gt;",
        "_No out-of-scope uses recorded",
    ] {
        assert!(md.contains(needle), "{needle:?} missing from:\n{md}");
    }
    // Registry text cannot become Markdown: no link, no code span break-out, no heading.
    let hostile = ModelFacts {
        code_commit: Some("x` [Verified](https://evil.example) `".into()),
        description: "# Approved\n```\nfence".into(),
        ..facts()
    };
    let md = card::markdown(&hostile);
    assert!(
        !md.contains("](https") && !md.contains("\n# Approved") && !md.contains("\n```"),
        "{md}"
    );
    let html = card::html(&f);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("fraud&lt;script&gt;") && !html.contains("<script"));
    assert!(html.contains("&lt;b&gt;bold&lt;/b&gt;"));
    assert!(html.contains("pkg:pypi/torch@2.3.1%2Bcu121"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
}
