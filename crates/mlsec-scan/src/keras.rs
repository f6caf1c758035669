//! Keras model configurations (`config.json` in `.keras` archives, `model_config` in legacy HDF5
//! files). Keras rebuilds a model by importing the `module` each layer names and, for Lambda
//! layers, by unmarshalling Python bytecode; `safe_mode: false` switches off its own guard.

use serde_json::Value;

use crate::finding::Severity;
use crate::policy::{GlobalVerdict, Policy};

pub struct KerasFinding {
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
}

/// Modules a Keras config may name without comment.
fn is_keras_module(module: &str) -> bool {
    [
        "keras",
        "tf_keras",
        "tensorflow.keras",
        "keras_core",
        "keras_nlp",
        "keras_cv",
        "keras_hub",
    ]
    .iter()
    .any(|k| module == *k || module.starts_with(&format!("{k}.")))
}

pub fn check_config(config: &Value, policy: &Policy) -> Vec<KerasFinding> {
    let mut out = Vec::new();
    walk(config, policy, &mut out, 0, "", false);
    out
}

fn walk(
    v: &Value,
    policy: &Policy,
    out: &mut Vec<KerasFinding>,
    depth: usize,
    path: &str,
    in_lambda: bool,
) {
    if depth > 64 || out.len() > 200 {
        return;
    }
    match v {
        Value::Object(map) => {
            let class = map.get("class_name").and_then(Value::as_str).unwrap_or("");
            let name = map
                .get("config")
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str)
                .unwrap_or(class);
            let is_lambda = class == "Lambda" || class == "__lambda__";
            if is_lambda && !in_lambda {
                out.push(KerasFinding {
                    rule: "KER001",
                    severity: Severity::Critical,
                    message: format!("Lambda layer `{name}` at `{path}` carries Python code that runs when the model loads"),
                });
            }
            if let Some(module) = map.get("module").and_then(Value::as_str)
                && !is_keras_module(module)
            {
                let attr = map
                    .get("registered_name")
                    .and_then(Value::as_str)
                    .or_else(|| map.get("config").and_then(Value::as_str))
                    .unwrap_or(class);
                let attr = attr.rsplit('>').next().unwrap_or(attr);
                let (severity, why) = match policy.judge(module, attr) {
                    GlobalVerdict::Denied { reason, .. } => (Severity::Critical, reason),
                    _ => (
                        Severity::High,
                        "Keras imports it while rebuilding the model".to_owned(),
                    ),
                };
                out.push(KerasFinding {
                    rule: "KER002",
                    severity,
                    message: format!("config at `{path}` names `{module}.{attr}`: {why}"),
                });
            }
            if map.get("safe_mode").and_then(Value::as_bool) == Some(false) {
                out.push(KerasFinding {
                    rule: "KER003",
                    severity: Severity::High,
                    message: format!("`safe_mode: false` at `{path}` lets Keras deserialise Lambda layers and arbitrary objects"),
                });
            }
            for (k, child) in map {
                walk(
                    child,
                    policy,
                    out,
                    depth + 1,
                    &format!("{path}/{k}"),
                    in_lambda || is_lambda,
                );
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(
                    child,
                    policy,
                    out,
                    depth + 1,
                    &format!("{path}/{i}"),
                    in_lambda,
                );
            }
        }
        _ => {}
    }
}

/// Legacy `.h5` files keep the model config as a JSON string attribute; without an HDF5 parser,
/// every JSON object that starts like a Keras config is found in the raw bytes and checked.
pub fn configs_in_hdf5(data: &[u8]) -> Vec<Value> {
    const NEEDLE: &[u8] = b"{\"class_name\":";
    let mut out = Vec::new();
    let mut from = 0;
    while out.len() < 16
        && let Some(i) = data[from..].windows(NEEDLE.len()).position(|w| w == NEEDLE)
    {
        let start = from + i;
        let mut stream = serde_json::Deserializer::from_slice(&data[start..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(v)) => {
                from = start + stream.byte_offset();
                out.push(v);
            }
            _ => from = start + NEEDLE.len(),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_foreign_module_and_safe_mode() {
        let policy = Policy::default_policy();
        let config: Value = serde_json::from_str(
            r#"{"module": "keras", "class_name": "Functional", "config": {"layers": [
                {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d"}},
                {"module": "keras.layers", "class_name": "Lambda", "config": {"name": "l", "function": {"class_name": "__lambda__"}}},
                {"module": "os", "class_name": "function", "config": "system", "registered_name": "system"},
                {"module": "my_layers", "class_name": "Custom", "registered_name": "my_layers>Custom"}
            ]}, "safe_mode": false}"#,
        )
        .unwrap();
        let found = check_config(&config, &policy);
        let rules: Vec<_> = found.iter().map(|f| (f.rule, f.severity)).collect();
        assert!(rules.contains(&("KER001", Severity::Critical)));
        assert!(
            rules.contains(&("KER002", Severity::Critical)),
            "{:?}",
            found.iter().map(|f| &f.message).collect::<Vec<_>>()
        );
        assert!(rules.contains(&("KER002", Severity::High)));
        assert!(rules.contains(&("KER003", Severity::High)));
        let benign: Value = serde_json::from_str(
            r#"{"module": "keras", "class_name": "Sequential", "config": {"layers": [{"module": "keras.layers", "class_name": "Dense", "config": {}}]}}"#,
        )
        .unwrap();
        assert!(check_config(&benign, &policy).is_empty());
    }

    #[test]
    fn finds_configs_in_raw_hdf5_bytes() {
        let mut data = b"\x89HDF\r\n\x1a\n\x00\x00garbage".to_vec();
        data.extend_from_slice(br#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config": {"name": "x"}}]}}"#);
        data.extend_from_slice(b"\x00\x00more");
        let configs = configs_in_hdf5(&data);
        assert_eq!(configs.len(), 1);
        assert_eq!(
            check_config(&configs[0], &Policy::default_policy())[0].rule,
            "KER001"
        );
    }
}
