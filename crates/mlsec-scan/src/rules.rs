//! The registry of scanner rules: stable ids, what each detects and why it matters. Every id the
//! scanner emits is listed here (a test reads the sources to check).

use crate::finding::Severity;

#[derive(Debug, Clone, Copy)]
pub struct RuleDoc {
    pub id: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    pub description: &'static str,
}

/// ATLAS technique every code-execution rule addresses.
pub const ATLAS_UNSAFE_ARTIFACTS: &str = "AML.T0011.000 User Execution: Unsafe AI Artifacts";

pub const RULES: &[RuleDoc] = &[
    RuleDoc {
        id: "PKL001",
        title: "dangerous global",
        severity: Severity::Critical,
        description: "The pickle imports a callable on the deny-list (process execution, code evaluation, imports, file or network access, nested deserialisation). Loading it with pickle, torch.load or joblib.load imports it, and usually calls it.",
    },
    RuleDoc {
        id: "PKL002",
        title: "global not on the allow-list",
        severity: Severity::Warning,
        description: "The pickle imports a callable that is neither known-safe nor known-dangerous. Custom model classes land here; so do gadgets nobody has catalogued yet. `--strict` fails on it.",
    },
    RuleDoc {
        id: "PKL003",
        title: "call of a dangerous callable",
        severity: Severity::Critical,
        description: "REDUCE, NEWOBJ, NEWOBJ_EX, OBJ or INST calls a deny-listed callable: this is the payload running at load time.",
    },
    RuleDoc {
        id: "PKL004",
        title: "call of a computed callable",
        severity: Severity::High,
        description: "A call's target is the result of another call (for example `getattr(obj, 'system')`), which reaches callables the policy never sees by name.",
    },
    RuleDoc {
        id: "PKL005",
        title: "STACK_GLOBAL on non-strings",
        severity: Severity::High,
        description: "STACK_GLOBAL's module or name is not a plain string on the stack; the imported callable cannot be named statically.",
    },
    RuleDoc {
        id: "PKL006",
        title: "extension-registry import",
        severity: Severity::Warning,
        description: "EXT1/EXT2/EXT4 import whatever the loading interpreter registered under a code in copyreg; the callable depends on the environment.",
    },
    RuleDoc {
        id: "PKL007",
        title: "data after the last pickle",
        severity: Severity::Info,
        description: "Bytes follow the last STOP and do not start a pickle (legacy PyTorch files keep raw storages there).",
    },
    RuleDoc {
        id: "PKL008",
        title: "malformed pickle",
        severity: Severity::Warning,
        description: "The stream is not a valid pickle past this point; findings before it are reported, the rest is not scanned.",
    },
    RuleDoc {
        id: "PKL009",
        title: "scan limit reached",
        severity: Severity::High,
        description: "The stream exceeded a bound (opcodes, stack depth, memo size, stacked pickles): a pickle bomb or an unusually large file. The rest is not scanned.",
    },
    RuleDoc {
        id: "PKL010",
        title: "BUILD on a global or dangerous object",
        severity: Severity::Critical,
        description: "BUILD sets attributes on a class or function itself, or passes state to an object made by a dangerous callable: attribute-overwrite gadgets.",
    },
    RuleDoc {
        id: "ZIP001",
        title: "damaged archive structure",
        severity: Severity::Warning,
        description: "The central directory is missing or damaged, or points where there is no local header. Loaders and scanners may see different members.",
    },
    RuleDoc {
        id: "ZIP002",
        title: "local and central names disagree",
        severity: Severity::High,
        description: "A member has one name in the central directory and another in its local header: tools that read different records open different files.",
    },
    RuleDoc {
        id: "ZIP003",
        title: "too many members",
        severity: Severity::Warning,
        description: "The archive lists more members than are examined.",
    },
    RuleDoc {
        id: "ZIP004",
        title: "member hidden from the central directory",
        severity: Severity::High,
        description: "A local header describes a member the central directory does not list: hidden from directory readers, seen by stream readers.",
    },
    RuleDoc {
        id: "ZIP005",
        title: "overlapping members",
        severity: Severity::High,
        description: "Two members share bytes: one range read as two files.",
    },
    RuleDoc {
        id: "ZIP006",
        title: "duplicate member names",
        severity: Severity::High,
        description: "The same name appears twice; loaders differ in which copy they take.",
    },
    RuleDoc {
        id: "ARC001",
        title: "member could not be read",
        severity: Severity::Warning,
        description: "A member's data is damaged, uses an unsupported compression method, or decompresses beyond the limit (zip bomb). It was not scanned.",
    },
    RuleDoc {
        id: "ARC002",
        title: "nesting too deep",
        severity: Severity::High,
        description: "Archives or compressed streams nest deeper than the limit; the innermost content was not scanned.",
    },
    RuleDoc {
        id: "ARC003",
        title: "polyglot: also a ZIP archive",
        severity: Severity::High,
        description: "The file reads as one format from its start and as a ZIP archive from its end (central directory). `pickle.load` and `torch.load` would see different content; both views are scanned.",
    },
    RuleDoc {
        id: "NPY001",
        title: "NumPy object array",
        severity: Severity::Warning,
        description: "The .npy array has dtype object: its data is a pickle (scanned as such) and numpy.load runs it with allow_pickle=True.",
    },
    RuleDoc {
        id: "NPY002",
        title: "malformed NumPy header",
        severity: Severity::Warning,
        description: "The .npy header cannot be read.",
    },
    RuleDoc {
        id: "GGUF001",
        title: "chat template injection",
        severity: Severity::Critical,
        description: "A GGUF chat template (a Jinja2 program rendered by the serving runtime) reaches Python internals (`__globals__`, `__subclasses__`, `|attr`, escaped dunders): code runs on the host that renders it. ATLAS AML.T0011.000; CVE-2024-34359.",
    },
    RuleDoc {
        id: "GGUF002",
        title: "malformed GGUF header",
        severity: Severity::Warning,
        description: "The GGUF header or metadata cannot be read within the limits; the chat template was not checked.",
    },
    RuleDoc {
        id: "KER001",
        title: "Keras Lambda layer",
        severity: Severity::Critical,
        description: "The model config has a Lambda layer: Keras unmarshals and runs its Python bytecode when the model loads (with safe_mode off, or in older versions always).",
    },
    RuleDoc {
        id: "KER002",
        title: "Keras config names a foreign module",
        severity: Severity::High,
        description: "A layer or object in the config names a Python module outside Keras; Keras imports it and calls what it names while rebuilding the model. Critical when the module and name are on the pickle deny-list.",
    },
    RuleDoc {
        id: "KER003",
        title: "Keras safe mode switched off",
        severity: Severity::High,
        description: "`safe_mode: false` in the saved config lets Keras deserialise Lambda layers and arbitrary registered objects.",
    },
    RuleDoc {
        id: "ONX001",
        title: "ONNX custom operator domain",
        severity: Severity::Warning,
        description: "The model imports or uses operators outside the standard ONNX and ONNX Runtime domains; they are implemented by a native library the runtime has to load, which is code from outside the model's review.",
    },
    RuleDoc {
        id: "ONX002",
        title: "ONNX external data outside the model directory",
        severity: Severity::High,
        description: "An initializer's external-data location is absolute, contains `..` or a drive: loading the model reads that file into a tensor (a path-traversal read that can leak host files through outputs).",
    },
    RuleDoc {
        id: "TF001",
        title: "TensorFlow op with file-system or Python access",
        severity: Severity::High,
        description: "A SavedModel graph or function contains ops such as ReadFile, WriteFile, MatchingFiles or PyFunc, which read or write files or call Python when the model runs.",
    },
    RuleDoc {
        id: "SFT001",
        title: "invalid safetensors header",
        severity: Severity::High,
        description: "The safetensors header is not valid: bad length, bad JSON, unknown dtype, offsets outside the data or overlapping, or sizes that do not match the shape. Parsers differ on such files.",
    },
];

pub fn rule(id: &str) -> Option<&'static RuleDoc> {
    RULES.iter().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_every_emitted_id_is_documented() {
        let mut seen = std::collections::HashSet::new();
        for r in RULES {
            assert!(seen.insert(r.id), "duplicate rule {}", r.id);
            assert!(!r.description.is_empty());
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for (i, _) in text.match_indices('"') {
                let rest = &text[i + 1..];
                let id: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                let letters = id.chars().take_while(|c| c.is_ascii_uppercase()).count();
                let looks_like_id = (3..=4).contains(&letters)
                    && id.len() == letters + 3
                    && id[letters..].chars().all(|c| c.is_ascii_digit())
                    && rest[id.len()..].starts_with('"');
                if looks_like_id {
                    assert!(
                        rule(&id).is_some(),
                        "rule {id} is emitted but not documented"
                    );
                }
            }
        }
    }
}

/// The rule reference as Markdown (`docs/scan-rules.md` is this text; a test keeps it in sync).
pub fn markdown() -> String {
    let mut out = String::from(
        "# `mlsec scan` rules\n\nGenerated from `crates/mlsec-scan/src/rules.rs`; do not edit by hand \
         (`MLSEC_UPDATE_DOCS=1 cargo test -p mlsec-scan` rewrites it).\n\n\
         Code-execution rules address MITRE ATLAS AML.T0011.000 (User Execution: Unsafe AI Artifacts) \
         and OWASP LLM03:2025 (Supply Chain).\n\n| id | severity | title |\n|---|---|---|\n",
    );
    for r in RULES {
        out.push_str(&format!(
            "| [{}](#{}) | {} | {} |\n",
            r.id,
            r.id.to_lowercase(),
            r.severity.as_str(),
            r.title
        ));
    }
    for r in RULES {
        out.push_str(&format!(
            "\n## {}\n\n**{}** — severity {}.\n\n{}\n",
            r.id,
            r.title,
            r.severity.as_str(),
            r.description
        ));
    }
    out
}

#[cfg(test)]
mod doc_tests {
    #[test]
    fn rule_reference_is_in_sync() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/scan-rules.md");
        let want = super::markdown();
        if std::env::var_os("MLSEC_UPDATE_DOCS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/scan-rules.md is stale: run MLSEC_UPDATE_DOCS=1 cargo test -p mlsec-scan"
        );
    }
}
