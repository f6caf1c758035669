//! `json_schema`: the response must be JSON, and valid against a schema when one is given.
//!
//! Structured-output applications hand the response to code; malformed or off-schema JSON
//! breaks it or smuggles fields. The validator implements the JSON Schema (2020-12) keywords
//! that describe data shapes — `type`, `enum`, `const`, `properties`, `required`,
//! `additionalProperties`, `patternProperties`… see [`validate`] — with local `$ref` into
//! `$defs`/`definitions`. It is bounded in depth and in the number of errors it collects.
//! Network `$ref`s and format assertions are not followed: a guard must not fetch.

use serde::Deserialize;
use serde_json::Value;

use crate::detector::{Detector, Finding, ScanInput, Severity, excerpt, parse_config};
use crate::error::Result;
use crate::registry::{DetectorInfo, OUTPUT};

pub const INFO: DetectorInfo = DetectorInfo {
    id: "json_schema",
    name: "JSON validity and schema",
    directions: OUTPUT,
    summary: "Responses that must be JSON (optionally inside a ```json fence) and, when a schema is configured or passed with the request, must satisfy it: type, required and additional properties, enums, bounds, patterns, array shapes, local references.",
    false_positives: "None for validity; schema keywords outside the supported set are ignored (the report lists them), so a schema that relies on them is checked less strictly than it says.",
    references: &[
        "OWASP LLM05:2025 Improper Output Handling",
        "AML.T0053 AI Agent Tool Invocation",
        "AML.M0020 Generative AI Guardrails",
    ],
    eval_label: Some("json"),
    build: |v| {
        Ok(Box::new(JsonSchema {
            config: parse_config(INFO.id, v)?,
        }))
    },
};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// A schema for every response; a schema in the request context takes precedence.
    pub schema: Option<Value>,
    /// Report responses that are not JSON even when no schema is set.
    pub require_json: bool,
}

pub struct JsonSchema {
    config: Config,
}

const MAX_DEPTH: usize = 64;
const MAX_ERRORS: usize = 16;

/// The JSON document in a response: the whole text, or the first ```json fenced block.
pub fn extract_json(text: &str) -> &str {
    let t = text.trim();
    if let Some(start) = t.find("```") {
        let after = &t[start + 3..];
        let body_start = after.find('\n').map_or(0, |i| i + 1);
        let body = &after[body_start..];
        if let Some(end) = body.find("```") {
            return body[..end].trim();
        }
    }
    t
}

fn type_ok(value: &Value, ty: &str) -> bool {
    match ty {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => {
            value.as_f64().is_some_and(|f| f.fract() == 0.0) || value.is_i64() || value.is_u64()
        }
        _ => false,
    }
}

struct Validator<'s> {
    root: &'s Value,
    errors: Vec<String>,
}

impl<'s> Validator<'s> {
    fn resolve(&self, r: &str) -> Option<&'s Value> {
        let path = r.strip_prefix("#")?;
        let mut node = self.root;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let part = part.replace("~1", "/").replace("~0", "~");
            node = node.get(&part)?;
        }
        Some(node)
    }

    fn error(&mut self, at: &str, msg: String) {
        if self.errors.len() < MAX_ERRORS {
            self.errors
                .push(format!("{}: {msg}", if at.is_empty() { "/" } else { at }));
        }
    }

    fn check(&mut self, value: &Value, schema: &'s Value, at: &str, depth: usize) {
        if depth > MAX_DEPTH {
            self.error(at, "schema nesting too deep".into());
            return;
        }
        if self.errors.len() >= MAX_ERRORS {
            return;
        }
        let s = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => return self.error(at, "no value is allowed here".into()),
            Value::Object(s) => s,
            _ => return,
        };
        if let Some(Value::String(r)) = s.get("$ref") {
            match self.resolve(r) {
                Some(target) => self.check(value, target, at, depth + 1),
                None => self.error(
                    at,
                    format!("unresolvable $ref {r:?} (only local references are followed)"),
                ),
            }
        }
        match s.get("type") {
            Some(Value::String(t)) if !type_ok(value, t) => self.error(at, format!("expected {t}")),
            Some(Value::Array(ts))
                if !ts
                    .iter()
                    .any(|t| t.as_str().is_some_and(|t| type_ok(value, t))) =>
            {
                self.error(at, format!("expected one of {}", Value::Array(ts.clone())))
            }
            _ => {}
        }
        if let Some(Value::Array(options)) = s.get("enum")
            && !options.contains(value)
        {
            self.error(at, "not one of the enumerated values".into());
        }
        if let Some(c) = s.get("const")
            && c != value
        {
            self.error(at, "not the constant value".into());
        }
        if let Some(n) = value.as_f64() {
            let bound = |k: &str| s.get(k).and_then(Value::as_f64);
            if bound("minimum").is_some_and(|m| n < m)
                || bound("exclusiveMinimum").is_some_and(|m| n <= m)
            {
                self.error(at, "below the minimum".into());
            }
            if bound("maximum").is_some_and(|m| n > m)
                || bound("exclusiveMaximum").is_some_and(|m| n >= m)
            {
                self.error(at, "above the maximum".into());
            }
            if let Some(m) = bound("multipleOf")
                && m > 0.0
                && ((n / m) - (n / m).round()).abs() > 1e-9
            {
                self.error(at, format!("not a multiple of {m}"));
            }
        }
        if let Some(text) = value.as_str() {
            let len = text.chars().count() as u64;
            if s.get("minLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| len < m)
            {
                self.error(at, "string too short".into());
            }
            if s.get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| len > m)
            {
                self.error(at, "string too long".into());
            }
            if let Some(Value::String(p)) = s.get("pattern") {
                match regex::RegexBuilder::new(p).size_limit(1 << 20).build() {
                    Ok(re) if !re.is_match(text) => {
                        self.error(at, format!("does not match pattern {p:?}"))
                    }
                    Err(_) => self.error(at, format!("pattern {p:?} is not supported")),
                    _ => {}
                }
            }
        }
        if let Some(items) = value.as_array() {
            let n = items.len() as u64;
            if s.get("minItems")
                .and_then(Value::as_u64)
                .is_some_and(|m| n < m)
            {
                self.error(at, "too few items".into());
            }
            if s.get("maxItems")
                .and_then(Value::as_u64)
                .is_some_and(|m| n > m)
            {
                self.error(at, "too many items".into());
            }
            if s.get("uniqueItems").and_then(Value::as_bool) == Some(true) {
                for i in 0..items.len() {
                    if items[i + 1..].contains(&items[i]) {
                        self.error(at, "items are not unique".into());
                        break;
                    }
                }
            }
            let prefix = s.get("prefixItems").and_then(Value::as_array);
            for (i, item) in items.iter().enumerate() {
                let sub = prefix.and_then(|p| p.get(i)).or_else(|| s.get("items"));
                if let Some(sub) = sub {
                    self.check(item, sub, &format!("{at}/{i}"), depth + 1);
                }
            }
        }
        if let Some(obj) = value.as_object() {
            if let Some(Value::Array(req)) = s.get("required") {
                for r in req.iter().filter_map(Value::as_str) {
                    if !obj.contains_key(r) {
                        self.error(at, format!("missing required property {r:?}"));
                    }
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            let patterns: Vec<(regex::Regex, &'s Value)> = s
                .get("patternProperties")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(p, v)| {
                            regex::RegexBuilder::new(p)
                                .size_limit(1 << 20)
                                .build()
                                .ok()
                                .map(|r| (r, v))
                        })
                        .collect()
                })
                .unwrap_or_default();
            for (k, v) in obj {
                let path = format!("{at}/{k}");
                let mut matched = false;
                if let Some(sub) = props.and_then(|p| p.get(k)) {
                    matched = true;
                    self.check(v, sub, &path, depth + 1);
                }
                for (re, sub) in &patterns {
                    if re.is_match(k) {
                        matched = true;
                        self.check(v, sub, &path, depth + 1);
                    }
                }
                if !matched && let Some(extra) = s.get("additionalProperties") {
                    if extra == &Value::Bool(false) {
                        self.error(at, format!("property {k:?} is not allowed"));
                    } else {
                        self.check(v, extra, &path, depth + 1);
                    }
                }
            }
            let n = obj.len() as u64;
            if s.get("minProperties")
                .and_then(Value::as_u64)
                .is_some_and(|m| n < m)
            {
                self.error(at, "too few properties".into());
            }
            if s.get("maxProperties")
                .and_then(Value::as_u64)
                .is_some_and(|m| n > m)
            {
                self.error(at, "too many properties".into());
            }
        }
        if let Some(Value::Array(all)) = s.get("allOf") {
            for sub in all {
                self.check(value, sub, at, depth + 1);
            }
        }
        for (key, want_one) in [("anyOf", false), ("oneOf", true)] {
            if let Some(Value::Array(options)) = s.get(key) {
                let passing = options
                    .iter()
                    .filter(|sub| {
                        let mut v = Validator {
                            root: self.root,
                            errors: Vec::new(),
                        };
                        v.check(value, sub, at, depth + 1);
                        v.errors.is_empty()
                    })
                    .count();
                if passing == 0 || want_one && passing > 1 {
                    self.error(at, format!("{passing} of the {key} alternatives match"));
                }
            }
        }
        if let Some(not) = s.get("not") {
            let mut v = Validator {
                root: self.root,
                errors: Vec::new(),
            };
            v.check(value, not, at, depth + 1);
            if v.errors.is_empty() {
                self.error(at, "matches a schema it must not".into());
            }
        }
    }
}

/// Validates `value` against `schema`; returns at most 16 error messages, each with its JSON
/// pointer.
pub fn validate(value: &Value, schema: &Value) -> Vec<String> {
    let mut v = Validator {
        root: schema,
        errors: Vec::new(),
    };
    v.check(value, schema, "", 0);
    v.errors
}

impl Detector for JsonSchema {
    fn id(&self) -> &'static str {
        INFO.id
    }

    fn stream_mode(&self) -> crate::detector::StreamMode {
        crate::detector::StreamMode::AtEnd
    }

    fn scan(&self, input: &ScanInput<'_>, out: &mut Vec<Finding>) -> Result<()> {
        let schema = input
            .context
            .json_schema
            .as_ref()
            .or(self.config.schema.as_ref());
        if schema.is_none() && !self.config.require_json {
            return Ok(());
        }
        let doc = extract_json(input.text);
        let value: Value = match serde_json::from_str(doc) {
            Ok(v) => v,
            Err(e) => {
                out.push(Finding::new(
                    INFO.id,
                    "invalid_json",
                    None,
                    Severity::Medium,
                    excerpt(&e.to_string(), 120),
                ));
                return Ok(());
            }
        };
        if let Some(schema) = schema {
            let errors = validate(&value, schema);
            if !errors.is_empty() {
                out.push(Finding::new(
                    INFO.id,
                    "schema_violation",
                    None,
                    Severity::Medium,
                    excerpt(&errors.join("; "), 300),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_subset() {
        let schema = json!({
            "type": "object",
            "required": ["name", "age"],
            "additionalProperties": false,
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "age": {"type": "integer", "minimum": 0},
                "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "uniqueItems": true}
            },
            "$defs": {"tag": {"enum": ["a", "b"]}}
        });
        assert!(validate(&json!({"name": "x", "age": 3, "tags": ["a"]}), &schema).is_empty());
        let errs = validate(
            &json!({"name": "", "age": -1, "tags": ["c", "c"], "extra": 1}),
            &schema,
        );
        assert_eq!(errs.len(), 6, "{errs:?}");
        assert_eq!(
            extract_json("Here:\n```json\n{\"a\": 1}\n```\nDone"),
            "{\"a\": 1}"
        );
        // A self-referencing schema stops at the depth bound instead of recursing forever.
        let looping = json!({"$ref": "#"});
        assert!(!validate(&json!(1), &looping).is_empty());
    }
}
