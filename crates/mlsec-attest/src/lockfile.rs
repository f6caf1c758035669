//! The training environment's packages, read from the files people commit: pip requirements,
//! poetry.lock, uv.lock and conda environment files. Each parser is bounded in input size and
//! entries, never executes anything, and returns a clear error for what it cannot read.
//!
//! Only what is pinned gets a version: `torch==2.3.1` does, `tokenizers>=0.19` is listed without
//! one (an ML-BOM should show that the environment was not locked, not guess).

use std::collections::BTreeSet;

use serde::Serialize;

use crate::error::{AttestError, Result};

/// Lock files larger than this are refused.
pub const MAX_LOCK_BYTES: usize = 16 << 20;
/// Environment files nested deeper than this are refused (conda files are three levels deep).
pub const MAX_YAML_DEPTH: usize = 32;
/// Packages beyond this many in one file are refused.
pub const MAX_PACKAGES: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hash {
    /// CycloneDX algorithm name: `SHA-256`, `SHA-384`, `SHA-512`.
    pub alg: &'static str,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    /// PEP 503 normalised name (`Scikit_Learn` → `scikit-learn`).
    pub name: String,
    pub version: Option<String>,
    /// `pypi` or `conda`.
    pub ecosystem: &'static str,
    pub hashes: Vec<Hash>,
}

impl Package {
    /// The package URL: `pkg:pypi/torch@2.3.1%2Bcu121`, `pkg:conda/numpy@1.26.4`.
    pub fn purl(&self) -> String {
        let mut p = format!("pkg:{}/{}", self.ecosystem, self.name);
        if let Some(v) = &self.version {
            p.push('@');
            for c in v.chars() {
                match c {
                    'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '-' | '_' | '~' => p.push(c),
                    other => {
                        let mut buf = [0u8; 4];
                        for b in other.encode_utf8(&mut buf).bytes() {
                            p.push_str(&format!("%{b:02X}"));
                        }
                    }
                }
            }
        }
        p
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockFormat {
    Requirements,
    Poetry,
    Uv,
    Conda,
}

impl LockFormat {
    /// Guesses the format from the file name.
    pub fn from_file_name(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        if lower == "poetry.lock" {
            Some(LockFormat::Poetry)
        } else if lower == "uv.lock" {
            Some(LockFormat::Uv)
        } else if lower.ends_with(".yml") || lower.ends_with(".yaml") {
            Some(LockFormat::Conda)
        } else if lower.ends_with(".txt") || lower.ends_with(".in") {
            Some(LockFormat::Requirements)
        } else {
            None
        }
    }
}

/// PEP 503 normalisation: lower case, runs of `-`, `_`, `.` become one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn hash_from(text: &str) -> Option<Hash> {
    let (alg, hex_digest) = text.split_once(':').or_else(|| text.split_once('='))?;
    let (alg, len) = match alg.to_ascii_lowercase().as_str() {
        "sha256" => ("SHA-256", 64),
        "sha384" => ("SHA-384", 96),
        "sha512" => ("SHA-512", 128),
        _ => return None,
    };
    let hex_digest = hex_digest.trim();
    (hex_digest.len() == len && hex_digest.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Hash {
        alg,
        content: hex_digest.to_ascii_lowercase(),
    })
}

fn check_size(text: &str) -> Result<()> {
    if text.len() > MAX_LOCK_BYTES {
        return Err(AttestError::Limit {
            what: "lock file size in bytes".into(),
            limit: MAX_LOCK_BYTES as u64,
        });
    }
    Ok(())
}

fn push(out: &mut Vec<Package>, p: Package) -> Result<()> {
    if out.len() >= MAX_PACKAGES {
        return Err(AttestError::Limit {
            what: "packages in one lock file".into(),
            limit: MAX_PACKAGES as u64,
        });
    }
    out.push(p);
    Ok(())
}

pub fn parse(format: LockFormat, text: &str) -> Result<Vec<Package>> {
    check_size(text)?;
    let mut packages = match format {
        LockFormat::Requirements => parse_requirements(text)?,
        LockFormat::Poetry => parse_toml_lock(text, "poetry.lock")?,
        LockFormat::Uv => parse_toml_lock(text, "uv.lock")?,
        LockFormat::Conda => parse_conda(text)?,
    };
    // One component per (ecosystem, name, version): uv.lock may list a name twice.
    let mut seen = BTreeSet::new();
    packages.retain(|p| seen.insert((p.ecosystem, p.name.clone(), p.version.clone())));
    Ok(packages)
}

/// One requirement specifier (`name[extras] op version ; marker`), after options are cut off.
fn requirement(spec: &str, ecosystem: &'static str) -> Option<Package> {
    let spec = spec.split(';').next()?.trim();
    if spec.is_empty() || spec.contains("://") || spec.starts_with('.') || spec.starts_with('/') {
        // URLs, VCS references and local paths: no registry name and version to record.
        return None;
    }
    let name_end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .unwrap_or(spec.len());
    let name = &spec[..name_end];
    if !valid_name(name) {
        return None;
    }
    let mut rest = spec[name_end..].trim_start();
    if rest.starts_with('[') {
        rest = rest
            .split_once(']')
            .map(|(_, r)| r.trim_start())
            .unwrap_or("");
    }
    let version = rest
        .strip_prefix("===")
        .or_else(|| rest.strip_prefix("=="))
        .map(|v| v.trim())
        .filter(|v| !v.is_empty() && !v.contains(['*', ',', ' ', '<', '>', '!', '~']))
        .map(str::to_owned);
    Some(Package {
        name: normalize_name(name),
        version,
        ecosystem,
        hashes: Vec::new(),
    })
}

/// pip requirements: one requirement per logical line (`\` continues), `#` comments, options
/// (`-r`, `-c`, `--index-url`, `-e`) skipped, `--hash=alg:hex` collected.
pub fn parse_requirements(text: &str) -> Result<Vec<Package>> {
    check_size(text)?;
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let line = match line
            .find(" #")
            .or_else(|| line.starts_with('#').then_some(0))
        {
            Some(i) => &line[..i],
            None => line,
        };
        if let Some(stripped) = line.trim_end().strip_suffix('\\') {
            logical.push_str(stripped);
            logical.push(' ');
            if lines.peek().is_some() {
                continue;
            }
        } else {
            logical.push_str(line);
        }
        let entry = std::mem::take(&mut logical);
        let entry = entry.trim();
        if entry.is_empty() || entry.starts_with('-') {
            continue;
        }
        let mut hashes = Vec::new();
        let mut spec = entry;
        if let Some(i) = entry.find(" --") {
            spec = &entry[..i];
            for opt in entry[i..].split_whitespace() {
                if let Some(h) = opt.strip_prefix("--hash=").and_then(hash_from) {
                    hashes.push(h);
                }
            }
        }
        if let Some(mut p) = requirement(spec, "pypi") {
            p.hashes = hashes;
            push(&mut out, p)?;
        }
    }
    Ok(out)
}

/// poetry.lock and uv.lock: `[[package]]` tables with `name` and `version`; the sdist's hash
/// is recorded when the lock has one.
fn parse_toml_lock(text: &str, what: &str) -> Result<Vec<Package>> {
    let doc: toml::Table = toml::from_str(text)
        .map_err(|e| AttestError::Bundle(format!("{what} is not TOML: {e}")))?;
    let packages = match doc.get("package") {
        None => return Ok(Vec::new()),
        Some(toml::Value::Array(a)) => a,
        Some(_) => {
            return Err(AttestError::Bundle(format!(
                "{what}: `package` is not an array"
            )));
        }
    };
    let mut out = Vec::new();
    for p in packages {
        let (Some(name), Some(version)) = (
            p.get("name").and_then(|v| v.as_str()),
            p.get("version").and_then(|v| v.as_str()),
        ) else {
            return Err(AttestError::Bundle(format!(
                "{what}: a package lacks a name or version"
            )));
        };
        if !valid_name(name) {
            return Err(AttestError::Bundle(format!(
                "{what}: package name {name:?} is not valid"
            )));
        }
        if p.get("source")
            .and_then(|s| s.get("editable").or_else(|| s.get("virtual")))
            .is_some()
        {
            // The project itself, not a dependency.
            continue;
        }
        let sdist_hash = p
            .get("sdist")
            .and_then(|s| s.get("hash"))
            .and_then(|h| h.as_str())
            .or_else(|| {
                p.get("files")?.as_array()?.iter().find_map(|f| {
                    let file = f.get("file")?.as_str()?;
                    (file.ends_with(".tar.gz") || file.ends_with(".zip"))
                        .then(|| f.get("hash")?.as_str())
                        .flatten()
                })
            });
        push(
            &mut out,
            Package {
                name: normalize_name(name),
                version: Some(version.to_owned()),
                ecosystem: "pypi",
                hashes: sdist_hash.and_then(hash_from).into_iter().collect(),
            },
        )?;
    }
    Ok(out)
}

/// conda environment files: `dependencies` entries `[channel::]name[=version[=build]]`,
/// `name==version`, `name version build`, and a nested `pip:` list of requirements. Anchors and
/// aliases are refused (they can expand a small file into a huge document).
pub fn parse_conda(text: &str) -> Result<Vec<Package>> {
    use yaml_rust2::{Yaml, YamlLoader};
    check_size(text)?;
    reject_aliases(text)?;
    let docs = YamlLoader::load_from_str(text)
        .map_err(|e| AttestError::Bundle(format!("environment file is not YAML: {e}")))?;
    let Some(doc) = docs.first() else {
        return Ok(Vec::new());
    };
    let deps = match &doc["dependencies"] {
        Yaml::Array(a) => a,
        Yaml::BadValue | Yaml::Null => return Ok(Vec::new()),
        _ => return Err(AttestError::Bundle("`dependencies` is not a list".into())),
    };
    let mut out = Vec::new();
    for d in deps {
        match d {
            Yaml::String(s) => {
                if let Some(p) = conda_spec(s) {
                    push(&mut out, p)?;
                }
            }
            Yaml::Hash(h) => {
                for (k, v) in h {
                    if k.as_str() == Some("pip")
                        && let Yaml::Array(pips) = v
                    {
                        for pip in pips {
                            if let Some(p) = pip.as_str().and_then(|s| requirement(s, "pypi")) {
                                push(&mut out, p)?;
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn reject_aliases(text: &str) -> Result<()> {
    use yaml_rust2::parser::{Event, Parser};
    let mut parser = Parser::new_from_str(text);
    let mut events = 0usize;
    let mut depth = 0usize;
    loop {
        let (event, _) = parser
            .next_token()
            .map_err(|e| AttestError::Bundle(format!("environment file is not YAML: {e}")))?;
        events += 1;
        match event {
            Event::StreamEnd => return Ok(()),
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_YAML_DEPTH {
                    return Err(AttestError::Limit {
                        what: "nesting depth of an environment file".into(),
                        limit: MAX_YAML_DEPTH as u64,
                    });
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            Event::Alias(_) => {
                return Err(AttestError::Bundle(
                    "environment file uses YAML aliases; write the entries out".into(),
                ));
            }
            _ if events > 4 * MAX_PACKAGES + 1000 => {
                return Err(AttestError::Limit {
                    what: "YAML events in an environment file".into(),
                    limit: (4 * MAX_PACKAGES + 1000) as u64,
                });
            }
            _ => {}
        }
    }
}

fn conda_spec(spec: &str) -> Option<Package> {
    let spec = spec.trim();
    let spec = spec.rsplit_once("::").map(|(_, s)| s).unwrap_or(spec);
    if let Some(p) = spec
        .contains("==")
        .then(|| requirement(spec, "conda"))
        .flatten()
    {
        return Some(p);
    }
    let name_end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .unwrap_or(spec.len());
    let name = &spec[..name_end];
    if !valid_name(name) {
        return None;
    }
    let rest = &spec[name_end..];
    // `name=1.2` means 1.2.* to conda: only a full `name=version=build` (or `name version
    // build`) pins exactly; a version as written is recorded when it has no wildcard or
    // range, and none for `>=`, `<` and the like.
    let first = if let Some(r) = rest.strip_prefix('=') {
        r.split('=').next()
    } else if rest.starts_with(' ') {
        rest.split_whitespace().next()
    } else {
        None
    };
    let version = first
        .filter(|v| !v.is_empty() && !v.contains(['*', '<', '>', ',', '|', '!', '=']))
        .map(str::to_owned);
    Some(Package {
        name: normalize_name(name),
        version,
        ecosystem: "conda",
        hashes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_pins_hashes_and_skips() {
        let text = "# comment\n--index-url https://x\n-r base.txt\ntorch==2.3.1+cu121 \\\n    --hash=sha256:b6b997773bfe24bc0476173bd349eee129a48ccefc34ec3776903ef5003a32ec\ntransformers[torch]==4.41.2\nScikit_Learn==1.5.0 ; python_version >= \"3.9\"\ntokenizers>=0.19,<0.20\nrequests===2.32.3  # pinned\naccelerate @ https://x/a.tar.gz\n-e ./libs/x\n";
        let p = parse(LockFormat::Requirements, text).unwrap();
        let names: Vec<_> = p
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("torch", Some("2.3.1+cu121")),
                ("transformers", Some("4.41.2")),
                ("scikit-learn", Some("1.5.0")),
                ("tokenizers", None),
                ("requests", Some("2.32.3")),
            ]
        );
        assert_eq!(p[0].hashes.len(), 1);
        assert_eq!(p[0].purl(), "pkg:pypi/torch@2.3.1%2Bcu121");
    }

    #[test]
    fn toml_locks_and_conda() {
        let uv = "version = 1\n[[package]]\nname = \"numpy\"\nversion = \"1.26.4\"\nsource = { registry = \"https://pypi.org/simple\" }\nsdist = { url = \"u\", hash = \"sha256:91dc4790a696e6addd75d28f9b6f1025d0df72eafb44194994bdbc78ea3bf54b\" }\n[[package]]\nname = \"app\"\nversion = \"1.0\"\nsource = { editable = \".\" }\n";
        let p = parse(LockFormat::Uv, uv).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].hashes[0].alg, "SHA-256");
        let conda = "name: t\ndependencies:\n  - python=3.11.9\n  - numpy=1.26.4=py311h64a7726_0\n  - pytorch::pytorch=2.3.1\n  - cudatoolkit>=11.8,<12\n  - pandas 2.2.2 py311h14de704_1\n  - pip:\n      - transformers==4.41.2\n";
        let p = parse(LockFormat::Conda, conda).unwrap();
        let names: Vec<_> = p
            .iter()
            .map(|p| (p.ecosystem, p.name.as_str(), p.version.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("conda", "python", Some("3.11.9")),
                ("conda", "numpy", Some("1.26.4")),
                ("conda", "pytorch", Some("2.3.1")),
                ("conda", "cudatoolkit", None),
                ("conda", "pandas", Some("2.2.2")),
                ("pypi", "transformers", Some("4.41.2")),
            ]
        );
        assert!(parse(LockFormat::Conda, "a: &x [1]\nb: *x\n").is_err());
        let deep = format!(
            "dependencies: {}{}\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(parse(LockFormat::Conda, &deep).is_err());
        assert!(parse(LockFormat::Poetry, "[[package]\n").is_err());
        assert!(parse(LockFormat::Conda, "dependencies: {a: 1").is_err());
    }
}
