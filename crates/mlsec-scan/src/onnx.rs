//! ONNX models (ModelProto) and TensorFlow SavedModels (`saved_model.pb`), read with the wire
//! walker: custom operator domains, external-data paths that leave the model directory, and
//! TensorFlow ops that reach the file system or Python.

use crate::protobuf::{bytes_of, fields, string_of, varint_of};

pub struct GraphFinding {
    pub rule: &'static str,
    pub high: bool,
    pub message: String,
}

const STANDARD_DOMAINS: &[&str] = &[
    "",
    "ai.onnx",
    "ai.onnx.ml",
    "ai.onnx.preview.training",
    "ai.onnx.training",
    "com.microsoft",
    "com.microsoft.nchwc",
    "com.ms.internal.nhwc",
    "org.pytorch.aten",
];
const MAX_GRAPH_DEPTH: usize = 16;

/// An ONNX ModelProto has its graph in field 7 and (usually) ir_version in field 1.
pub fn looks_like_onnx(data: &[u8]) -> bool {
    data.first() == Some(&0x08)
        && fields(data).is_some_and(|f| {
            bytes_of(&f, 7).next().is_some_and(|g| fields(g).is_some())
                && varint_of(&f, 1).is_some()
        })
}

/// A SavedModel has meta graphs in field 2, each with a GraphDef in field 2.
pub fn looks_like_saved_model(data: &[u8]) -> bool {
    fields(data).is_some_and(|f| {
        bytes_of(&f, 2).next().is_some_and(|mg| {
            fields(mg).is_some_and(|m| bytes_of(&m, 2).next().is_some_and(|g| fields(g).is_some()))
        })
    })
}

fn escapes_directory(location: &str) -> bool {
    location.starts_with('/')
        || location.starts_with('\\')
        || location.contains("..")
        || location.contains(':')
        || location.contains('\0')
}

pub fn check_onnx(data: &[u8]) -> Vec<GraphFinding> {
    let mut out = Vec::new();
    let Some(model) = fields(data) else {
        return out;
    };
    for opset in bytes_of(&model, 8) {
        if let Some(domain) = fields(opset).and_then(|f| string_of(&f, 1))
            && !STANDARD_DOMAINS.contains(&domain.as_str())
        {
            out.push(GraphFinding {
                rule: "ONX001",
                high: false,
                message: format!("model imports operator set `{domain}`: its operators come from a native library the runtime must load"),
            });
        }
    }
    for graph in bytes_of(&model, 7) {
        onnx_graph(graph, &mut out, 0);
    }
    for function in bytes_of(&model, 25) {
        if let Some(f) = fields(function) {
            for node in bytes_of(&f, 7) {
                onnx_node(node, &mut out, 0);
            }
        }
    }
    out
}

fn onnx_graph(graph: &[u8], out: &mut Vec<GraphFinding>, depth: usize) {
    if depth > MAX_GRAPH_DEPTH || out.len() > 200 {
        return;
    }
    let Some(g) = fields(graph) else { return };
    for node in bytes_of(&g, 1) {
        onnx_node(node, out, depth);
    }
    for tensor in bytes_of(&g, 5) {
        let Some(t) = fields(tensor) else { continue };
        let name = string_of(&t, 8).unwrap_or_default();
        for entry in bytes_of(&t, 13) {
            let Some(e) = fields(entry) else { continue };
            if string_of(&e, 1).as_deref() == Some("location")
                && let Some(location) = string_of(&e, 2)
                && escapes_directory(&location)
            {
                out.push(GraphFinding {
                    rule: "ONX002",
                    high: true,
                    message: format!("initializer `{name}` reads external data from `{location}`, outside the model directory"),
                });
            }
        }
    }
}

fn onnx_node(node: &[u8], out: &mut Vec<GraphFinding>, depth: usize) {
    let Some(n) = fields(node) else { return };
    let domain = string_of(&n, 7).unwrap_or_default();
    if !STANDARD_DOMAINS.contains(&domain.as_str()) {
        let op = string_of(&n, 4).unwrap_or_default();
        out.push(GraphFinding {
            rule: "ONX001",
            high: false,
            message: format!(
                "node uses custom operator `{domain}.{op}`, implemented by a native library"
            ),
        });
    }
    for attribute in bytes_of(&n, 5) {
        if let Some(a) = fields(attribute) {
            for sub in bytes_of(&a, 6).chain(bytes_of(&a, 11)) {
                onnx_graph(sub, out, depth + 1);
            }
        }
    }
}

/// TensorFlow ops that touch the file system or call back into Python.
const TF_DANGEROUS_OPS: &[(&str, bool)] = &[
    ("ReadFile", true),
    ("WriteFile", true),
    ("MatchingFiles", true),
    ("PyFunc", true),
    ("PyFuncStateless", true),
    ("EagerPyFunc", true),
    ("ImmutableConst", false),
    ("PrintV2", false),
];

pub fn check_saved_model(data: &[u8]) -> Vec<GraphFinding> {
    let mut out = Vec::new();
    let Some(saved) = fields(data) else {
        return out;
    };
    for meta_graph in bytes_of(&saved, 2) {
        let Some(mg) = fields(meta_graph) else {
            continue;
        };
        for graph_def in bytes_of(&mg, 2) {
            let Some(g) = fields(graph_def) else { continue };
            for node in bytes_of(&g, 1) {
                tf_node(node, &mut out, "graph");
            }
            for library in bytes_of(&g, 2) {
                let Some(lib) = fields(library) else { continue };
                for function in bytes_of(&lib, 1) {
                    let Some(f) = fields(function) else { continue };
                    let fname = bytes_of(&f, 1)
                        .next()
                        .and_then(fields)
                        .and_then(|sig| string_of(&sig, 1))
                        .unwrap_or_default();
                    for node in bytes_of(&f, 3) {
                        tf_node(node, &mut out, &format!("function `{fname}`"));
                    }
                }
            }
        }
    }
    out
}

fn tf_node(node: &[u8], out: &mut Vec<GraphFinding>, place: &str) {
    let Some(n) = fields(node) else { return };
    let op = string_of(&n, 2).unwrap_or_default();
    if let Some((_, high)) = TF_DANGEROUS_OPS.iter().find(|(o, _)| *o == op) {
        let name = string_of(&n, 1).unwrap_or_default();
        out.push(GraphFinding {
            rule: "TF001",
            high: *high,
            message: format!("{place} has op `{op}` (node `{name}`), which reads or writes files or calls Python when the graph runs"),
        });
    }
}
