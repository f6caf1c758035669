//! Enforces the layer table in ARCHITECTURE.md against the crates' manifests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const FORBIDDEN_IN_PURE_LAYERS: &[&str] =
    &["tokio", "sqlx", "axum", "hyper", "reqwest", "object_store"];

struct Row {
    layer: u32,
    allowed: BTreeSet<String>,
}

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
}

fn backticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_owned())
        .collect()
}

fn layer_table() -> BTreeMap<String, Row> {
    let doc = std::fs::read_to_string(workspace_root().join("ARCHITECTURE.md")).unwrap();
    let mut rows = BTreeMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 6 {
            continue;
        }
        let Ok(layer) = cells[1].parse::<u32>() else {
            continue;
        };
        let name = backticked(cells[2]).pop().expect("crate name in backticks");
        let allowed = backticked(cells[4]).into_iter().collect();
        rows.insert(name, Row { layer, allowed });
    }
    rows
}

fn dependency_names(manifest: &toml::Table) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(deps) = manifest.get(section).and_then(|d| d.as_table()) {
            for name in deps.keys() {
                out.push((section.to_owned(), name.clone()));
            }
        }
    }
    out
}

#[test]
fn dependencies_point_down_the_layer_table() {
    let table = layer_table();
    assert!(table.len() >= 6, "layer table not found in ARCHITECTURE.md");
    // The table itself must only allow downward (or same-layer) edges.
    for (name, row) in &table {
        for dep in &row.allowed {
            let dep_row = table
                .get(dep)
                .unwrap_or_else(|| panic!("`{name}` allows unknown `{dep}`"));
            assert!(
                dep_row.layer <= row.layer,
                "table lets `{name}` depend upward on `{dep}`"
            );
        }
    }
    let mut seen = 0;
    for entry in std::fs::read_dir(workspace_root().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let manifest_path = dir.join("Cargo.toml");
        if !manifest_path.is_file() {
            continue;
        }
        let manifest: toml::Table = std::fs::read_to_string(&manifest_path)
            .unwrap()
            .parse()
            .unwrap();
        let name = manifest["package"]["name"].as_str().unwrap().to_owned();
        let row = table.get(&name).unwrap_or_else(|| {
            panic!("crate `{name}` is missing from the ARCHITECTURE.md layer table")
        });
        for (section, dep) in dependency_names(&manifest) {
            if dep.starts_with("mlsec") {
                assert!(
                    row.allowed.contains(&dep),
                    "`{name}` ({section}) depends on `{dep}`, which its layer row does not allow"
                );
            }
            if row.layer <= 1 && section != "dev-dependencies" {
                assert!(
                    !FORBIDDEN_IN_PURE_LAYERS.contains(&dep.as_str()),
                    "pure layer-{} crate `{name}` depends on `{dep}`",
                    row.layer
                );
            }
        }
        seen += 1;
    }
    assert_eq!(
        seen,
        table.len(),
        "the table lists crates that do not exist"
    );
}
