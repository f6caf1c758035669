//! Lineage: the graph dataset version → run → model version → alias, pinned by digest, walked
//! either way. Upstream answers "what was this model trained on, exactly?"; downstream answers
//! "which runs and model versions used this (possibly poisoned) dataset version?".
//!
//! Nodes the caller may not read are left out and counted, never described.

use std::collections::{BTreeMap, HashMap};

use mlsec_store::{RunRow, VersionQuery};
use serde::Serialize;

use crate::datasets::VersionRef;
use crate::error::CoreError;
use crate::registry::model_resource;
use crate::service::{Mlsec, RequestCtx};
use crate::tracking::experiment_resource;

/// Where a walk starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineageStart {
    Dataset(VersionRef),
    Run(String),
    /// A model version by number or by alias.
    Model {
        name: String,
        version: ModelRef,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    Number(i64),
    Alias(String),
}

impl LineageStart {
    /// `dataset:NAME@N`, `dataset:NAME@sha256:…`, `sha256:…` (a dataset version), `run:ID`,
    /// `model:NAME/N`, `model:NAME@ALIAS`.
    pub fn parse(text: &str) -> Result<LineageStart, CoreError> {
        let bad = || {
            CoreError::InvalidRequest(format!(
                "lineage start {text:?}: use dataset:NAME@N, run:ID, model:NAME/N or model:NAME@ALIAS"
            ))
        };
        if let Some(rest) = text.strip_prefix("dataset:") {
            return Ok(LineageStart::Dataset(VersionRef::parse(rest)?));
        }
        if text.starts_with("sha256:") {
            return Ok(LineageStart::Dataset(VersionRef::parse(text)?));
        }
        if let Some(id) = text.strip_prefix("run:") {
            if id.is_empty()
                || id.len() > 64
                || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err(bad());
            }
            return Ok(LineageStart::Run(id.to_owned()));
        }
        if let Some(rest) = text.strip_prefix("model:") {
            if let Some((name, alias)) = rest.rsplit_once('@') {
                return Ok(LineageStart::Model {
                    name: name.to_owned(),
                    version: ModelRef::Alias(alias.to_owned()),
                });
            }
            if let Some((name, n)) = rest.rsplit_once('/')
                && let Ok(n) = n.parse::<i64>()
            {
                return Ok(LineageStart::Model {
                    name: name.to_owned(),
                    version: ModelRef::Number(n),
                });
            }
        }
        Err(bad())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Upstream,
    Downstream,
}

#[derive(Debug, Clone, Serialize)]
pub struct LineageNode {
    /// `dataset_version`, `run`, `model_version`, `alias`, `environment`, `code`.
    pub kind: &'static str,
    /// `fraud/train@3`, the run id, `model/2`, `model@champion`.
    pub id: String,
    pub label: String,
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<LineageNode>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LineageView {
    pub direction: Direction,
    pub root: LineageNode,
    /// Nodes left out because the caller may not read them.
    pub hidden: usize,
    /// Counts by kind of the nodes shown.
    pub counts: BTreeMap<&'static str, usize>,
}

fn count(node: &LineageNode, counts: &mut BTreeMap<&'static str, usize>) {
    *counts.entry(node.kind).or_default() += 1;
    for c in &node.children {
        count(c, counts);
    }
}

fn node(kind: &'static str, id: String, label: String, digest: Option<String>) -> LineageNode {
    LineageNode {
        kind,
        id,
        label,
        digest,
        children: Vec::new(),
    }
}

/// Files whose digest pins a run's software environment.
pub(crate) const ENVIRONMENT_FILES: &[&str] = &[
    "requirements.txt",
    "conda.yaml",
    "python_env.yaml",
    "uv.lock",
    "poetry.lock",
    "Pipfile.lock",
    "environment.yml",
];

struct Walker<'a> {
    mlsec: &'a Mlsec,
    ctx: &'a RequestCtx,
    readable: HashMap<String, bool>,
    hidden: usize,
}

impl Walker<'_> {
    async fn can_read(&mut self, action: &str, resource: mlsec_policy::Resource) -> bool {
        let key = format!("{action} {resource}");
        if let Some(ok) = self.readable.get(&key) {
            return *ok;
        }
        let ok = self
            .mlsec
            .authorize_quiet(self.ctx, action, &resource)
            .await;
        self.readable.insert(key, ok);
        ok
    }

    fn run_node(run: &RunRow) -> LineageNode {
        node(
            "run",
            run.run_id.clone(),
            format!(
                "run {} `{}` in `{}` ({})",
                &run.run_id[..run.run_id.len().min(12)],
                run.name,
                run.experiment_name,
                run.status
            ),
            None,
        )
    }

    /// Model versions made from these runs, each with its aliases.
    async fn versions_of_runs(
        &mut self,
        run_ids: &[String],
    ) -> Result<HashMap<String, Vec<LineageNode>>, CoreError> {
        let mut by_run: HashMap<String, Vec<LineageNode>> = HashMap::new();
        let mut aliases: HashMap<String, Vec<(String, i64)>> = HashMap::new();
        for chunk in run_ids.chunks(500) {
            let versions = self
                .mlsec
                .store()
                .model_versions(&VersionQuery {
                    run_ids: chunk.to_vec(),
                    limit: i64::MAX / 2,
                    ..Default::default()
                })
                .await?;
            for v in versions {
                if !self.can_read("model.read", model_resource(&v.name)).await {
                    self.hidden += 1;
                    continue;
                }
                if !aliases.contains_key(&v.name) {
                    let list = self
                        .mlsec
                        .store()
                        .model_aliases(&v.name)
                        .await?
                        .into_iter()
                        .map(|a| (a.alias, a.version))
                        .collect();
                    aliases.insert(v.name.clone(), list);
                }
                let mut n = node(
                    "model_version",
                    format!("{}/{}", v.name, v.version),
                    format!(
                        "model `{}` version {}{}",
                        v.name,
                        v.version,
                        if v.quarantined { " (quarantined)" } else { "" }
                    ),
                    Some(v.digest.clone()),
                );
                for (alias, version) in &aliases[&v.name] {
                    if *version == v.version {
                        n.children.push(node(
                            "alias",
                            format!("{}@{alias}", v.name),
                            format!("alias @{alias}"),
                            None,
                        ));
                    }
                }
                if let Some(run) = &v.run_id {
                    by_run.entry(run.clone()).or_default().push(n);
                }
            }
        }
        Ok(by_run)
    }

    /// A run's inputs, parent, code version and environment files.
    async fn upstream_of_run(
        &mut self,
        run: &RunRow,
        depth: usize,
    ) -> Result<Vec<LineageNode>, CoreError> {
        let mut out = Vec::new();
        let data = self
            .mlsec
            .store()
            .run_data(std::slice::from_ref(&run.run_id))
            .await?
            .remove(&run.run_id)
            .unwrap_or_default();
        for input in data.inputs {
            match (&input.mlsec_dataset, input.mlsec_number) {
                (Some(d), Some(n)) => {
                    if !self
                        .can_read(
                            "dataset.read",
                            mlsec_policy::Resource::new(mlsec_policy::ResourceType::Dataset, d),
                        )
                        .await
                    {
                        self.hidden += 1;
                        continue;
                    }
                    out.push(node(
                        "dataset_version",
                        format!("{d}@{n}"),
                        format!("dataset {d}@{n} (input `{}`)", input.name),
                        input.mlsec_digest.clone(),
                    ));
                }
                _ => out.push(node(
                    "dataset",
                    input.name.clone(),
                    format!(
                        "dataset `{}` not known to mlsec (client digest {}, not pinned)",
                        input.name, input.digest
                    ),
                    None,
                )),
            }
        }
        if let Some((_, commit)) = data
            .tags
            .iter()
            .find(|(k, _)| k == "mlflow.source.git.commit")
        {
            out.push(node(
                "code",
                commit.clone(),
                format!("code commit {commit}"),
                None,
            ));
        }
        let root = format!("{}/{}/artifacts/", run.experiment_id, run.run_id);
        let mut roots = vec![root];
        for m in self.mlsec.store().logged_models_of_run(&run.run_id).await? {
            roots.push(format!(
                "{}/models/{}/artifacts/",
                m.experiment_id, m.model_id
            ));
        }
        for prefix in roots {
            for a in self.mlsec.store().artifacts_under(&prefix).await? {
                let file = a.path.rsplit('/').next().unwrap_or("");
                if ENVIRONMENT_FILES.contains(&file) {
                    out.push(node(
                        "environment",
                        a.path[prefix.len()..].to_owned(),
                        format!("environment {}", &a.path[prefix.len()..]),
                        Some(a.sha256.clone()),
                    ));
                }
            }
        }
        if let Some(parent) = &run.parent_run_id
            && depth < 8
            && let Some(p) = self.mlsec.store().run(parent).await?
        {
            if self
                .can_read("experiment.read", experiment_resource(&p.experiment_name))
                .await
            {
                let mut pn = Self::run_node(&p);
                pn.label = format!("parent {}", pn.label);
                pn.children = Box::pin(self.upstream_of_run(&p, depth + 1)).await?;
                out.push(pn);
            } else {
                self.hidden += 1;
            }
        }
        Ok(out)
    }
}

impl Mlsec {
    /// Walks the lineage graph from `start` in `direction`.
    pub async fn lineage(
        &self,
        ctx: &RequestCtx,
        start: &LineageStart,
        direction: Direction,
    ) -> Result<LineageView, CoreError> {
        let mut walker = Walker {
            mlsec: self,
            ctx,
            readable: HashMap::new(),
            hidden: 0,
        };
        let root = match (start, direction) {
            (LineageStart::Dataset(reference), Direction::Downstream) => {
                let v = self
                    .authorized_version(ctx, reference, "dataset.read")
                    .await?;
                let mut root = node(
                    "dataset_version",
                    format!("{}@{}", v.dataset, v.number),
                    format!(
                        "dataset {}@{}{}",
                        v.dataset,
                        v.number,
                        if v.quarantined { " (quarantined)" } else { "" }
                    ),
                    Some(v.digest.clone()),
                );
                let ids = self.store().runs_with_input_digest(&v.digest).await?;
                let runs = self.store().runs_by_ids(&ids).await?;
                let mut visible = Vec::new();
                for r in runs {
                    if walker
                        .can_read("experiment.read", experiment_resource(&r.experiment_name))
                        .await
                    {
                        visible.push(r);
                    } else {
                        walker.hidden += 1;
                    }
                }
                visible.sort_by(|a, b| {
                    a.start_time
                        .cmp(&b.start_time)
                        .then(a.run_id.cmp(&b.run_id))
                });
                let run_ids: Vec<String> = visible.iter().map(|r| r.run_id.clone()).collect();
                let mut versions = walker.versions_of_runs(&run_ids).await?;
                for r in &visible {
                    let mut n = Walker::run_node(r);
                    n.children = versions.remove(&r.run_id).unwrap_or_default();
                    root.children.push(n);
                }
                root
            }
            (LineageStart::Dataset(reference), Direction::Upstream) => {
                let v = self
                    .authorized_version(ctx, reference, "dataset.read")
                    .await?;
                node(
                    "dataset_version",
                    format!("{}@{}", v.dataset, v.number),
                    format!(
                        "dataset {}@{} (source: {})",
                        v.dataset,
                        v.number,
                        if v.source.is_empty() {
                            "not recorded"
                        } else {
                            &v.source
                        }
                    ),
                    Some(v.digest),
                )
            }
            (LineageStart::Run(id), direction) => {
                let run = self.authorized_run(ctx, id, "experiment.read").await?;
                let mut root = Walker::run_node(&run);
                root.children = match direction {
                    Direction::Upstream => walker.upstream_of_run(&run, 0).await?,
                    Direction::Downstream => walker
                        .versions_of_runs(std::slice::from_ref(&run.run_id))
                        .await?
                        .remove(&run.run_id)
                        .unwrap_or_default(),
                };
                root
            }
            (LineageStart::Model { name, version }, direction) => {
                let v = match version {
                    ModelRef::Number(n) => self.model_version(ctx, name, &n.to_string()).await?,
                    ModelRef::Alias(a) => self.model_version_by_alias(ctx, name, a).await?,
                };
                let mut root = node(
                    "model_version",
                    format!("{}/{}", v.name, v.version),
                    format!(
                        "model `{}` version {}{}",
                        v.name,
                        v.version,
                        if v.quarantined { " (quarantined)" } else { "" }
                    ),
                    Some(v.digest.clone()),
                );
                match direction {
                    Direction::Downstream => {
                        for a in &v.aliases {
                            root.children.push(node(
                                "alias",
                                format!("{}@{a}", v.name),
                                format!("alias @{a}"),
                                None,
                            ));
                        }
                    }
                    Direction::Upstream => {
                        // From what was frozen with the version, not from the run as it is now.
                        let snap = &v.lineage;
                        let mut children = Vec::new();
                        for input in snap["inputs"].as_array().into_iter().flatten() {
                            let name = input["name"].as_str().unwrap_or("");
                            match (input["mlsec_dataset"].as_str(), input["mlsec_version"].as_str()) {
                                (Some(d), Some(version)) => {
                                    if walker
                                        .can_read(
                                            "dataset.read",
                                            mlsec_policy::Resource::new(
                                                mlsec_policy::ResourceType::Dataset,
                                                d,
                                            ),
                                        )
                                        .await
                                    {
                                        children.push(node(
                                            "dataset_version",
                                            version.to_owned(),
                                            format!("dataset {version} (input `{name}`)"),
                                            input["mlsec_digest"].as_str().map(str::to_owned),
                                        ));
                                    } else {
                                        walker.hidden += 1;
                                    }
                                }
                                _ => children.push(node(
                                    "dataset",
                                    name.to_owned(),
                                    format!(
                                        "dataset `{name}` not known to mlsec (client digest {}, not pinned)",
                                        input["client_digest"].as_str().unwrap_or("")
                                    ),
                                    None,
                                )),
                            }
                        }
                        if let Some(commit) = snap["code_commit"].as_str() {
                            children.push(node(
                                "code",
                                commit.to_owned(),
                                format!("code commit {commit}"),
                                None,
                            ));
                        }
                        for f in &v.files {
                            let file = f.path.rsplit('/').next().unwrap_or("");
                            if ENVIRONMENT_FILES.contains(&file) {
                                children.push(node(
                                    "environment",
                                    f.path.clone(),
                                    format!("environment {}", f.path),
                                    Some(f.sha256.clone()),
                                ));
                            }
                        }
                        match v.run_id.as_deref() {
                            Some(run_id) => match self.store().run(run_id).await? {
                                Some(run)
                                    if walker
                                        .can_read(
                                            "experiment.read",
                                            experiment_resource(&run.experiment_name),
                                        )
                                        .await =>
                                {
                                    let mut rn = Walker::run_node(&run);
                                    rn.children = children;
                                    if let Some(parent) = &run.parent_run_id
                                        && let Some(p) = self.store().run(parent).await?
                                    {
                                        let mut pn = Walker::run_node(&p);
                                        pn.label = format!("parent {}", pn.label);
                                        pn.children = walker.upstream_of_run(&p, 1).await?;
                                        rn.children.push(pn);
                                    }
                                    root.children.push(rn);
                                }
                                Some(_) => walker.hidden += 1,
                                None => root.children.extend(children),
                            },
                            None => root.children.extend(children),
                        }
                    }
                }
                root
            }
        };
        let mut counts = BTreeMap::new();
        count(&root, &mut counts);
        Ok(LineageView {
            direction,
            root,
            hidden: walker.hidden,
            counts,
        })
    }
}

/// The tree as indented text, one node per line.
pub fn render_tree(view: &LineageView) -> String {
    fn walk(n: &LineageNode, prefix: &str, last: bool, root: bool, out: &mut String) {
        let branch = if root {
            ""
        } else if last {
            "└── "
        } else {
            "├── "
        };
        out.push_str(prefix);
        out.push_str(branch);
        out.push_str(&n.label);
        if let Some(d) = &n.digest {
            out.push_str(&format!("  [{}]", &d[..d.len().min(19)]));
        }
        out.push('\n');
        let child_prefix = if root {
            String::new()
        } else {
            format!("{prefix}{}", if last { "    " } else { "│   " })
        };
        for (i, c) in n.children.iter().enumerate() {
            walk(c, &child_prefix, i + 1 == n.children.len(), false, out);
        }
    }
    let mut out = String::new();
    walk(&view.root, "", true, true, &mut out);
    if view.hidden > 0 {
        out.push_str(&format!(
            "({} node(s) hidden: no read access)\n",
            view.hidden
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_parse() {
        assert_eq!(
            LineageStart::parse("model:fraud@champion").unwrap(),
            LineageStart::Model {
                name: "fraud".into(),
                version: ModelRef::Alias("champion".into())
            }
        );
        assert_eq!(
            LineageStart::parse("model:team/fraud/3").unwrap(),
            LineageStart::Model {
                name: "team/fraud".into(),
                version: ModelRef::Number(3)
            }
        );
        assert_eq!(
            LineageStart::parse("run:abc123").unwrap(),
            LineageStart::Run("abc123".into())
        );
        assert!(matches!(
            LineageStart::parse("dataset:fraud/train@2").unwrap(),
            LineageStart::Dataset(VersionRef::Number(_, 2))
        ));
        for bad in ["x", "run:", "run:a/b", "model:x", "dataset:"] {
            assert!(LineageStart::parse(bad).is_err(), "{bad}");
        }
    }
}
