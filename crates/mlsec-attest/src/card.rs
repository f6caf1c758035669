//! Model cards, in Markdown and as one self-contained HTML page (inline style, no scripts, no
//! external resources), from registry facts plus the fields a maintainer writes.

use std::fmt::Write as _;

use crate::facts::ModelFacts;

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Text safe inside a Markdown line or table cell: every character that can start inline markup
/// (links, images, emphasis, code, HTML) is escaped (the text never starts a line, so list and
/// heading markers cannot take effect), and line breaks become
/// spaces, so registry text can never turn into a link, a code fence or a new section.
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '!' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// A section: title and its rows (already plain text).
struct Section {
    title: &'static str,
    items: Vec<String>,
    /// Shown when `items` is empty: what the maintainer should fill in.
    missing: &'static str,
}

fn sections(f: &ModelFacts) -> Vec<Section> {
    let c = &f.card;
    let mut details = Vec::new();
    for (k, v) in [
        ("Task", &c.task),
        ("Approach", &c.approach),
        ("Architecture family", &c.architecture_family),
        ("Architecture", &c.model_architecture),
        ("License", &c.license),
        ("Contact", &c.contact),
    ] {
        if let Some(v) = v {
            details.push(format!("{k}: {v}"));
        }
    }
    if !c.inputs.is_empty() {
        details.push(format!("Inputs: {}", c.inputs.join(", ")));
    }
    if !c.outputs.is_empty() {
        details.push(format!("Outputs: {}", c.outputs.join(", ")));
    }
    let ethics = c
        .ethical_considerations
        .iter()
        .map(|e| match &e.mitigation {
            Some(m) => format!("{} — mitigation: {m}", e.name),
            None => e.name.clone(),
        })
        .collect();
    vec![
        Section {
            title: "Model details",
            items: details,
            missing: "Task, approach and architecture are not recorded (card fields `task`, `approach`, `model_architecture`).",
        },
        Section {
            title: "Intended use",
            items: c.intended_uses.clone(),
            missing: "No intended use recorded (card field `intended_uses`).",
        },
        Section {
            title: "Out of scope",
            items: c.out_of_scope_uses.clone(),
            missing: "No out-of-scope uses recorded (card field `out_of_scope_uses`).",
        },
        Section {
            title: "Intended users",
            items: c.users.clone(),
            missing: "No users recorded (card field `users`).",
        },
        Section {
            title: "Limitations",
            items: c.limitations.clone(),
            missing: "No limitations recorded (card field `limitations`).",
        },
        Section {
            title: "Trade-offs",
            items: c.tradeoffs.clone(),
            missing: "None recorded (card field `tradeoffs`).",
        },
        Section {
            title: "Ethical considerations",
            items: ethics,
            missing: "None recorded (card field `ethical_considerations`).",
        },
    ]
}

fn scan_text(f: &ModelFacts) -> String {
    match (&f.scan_severity, f.quarantined) {
        (_, true) => format!(
            "QUARANTINED: the scanner found {} issues; do not deploy.",
            f.scan_severity.as_deref().unwrap_or("critical")
        ),
        (Some(s), false) => format!("worst finding: {s}"),
        (None, false) => "no findings".into(),
    }
}

pub fn markdown(f: &ModelFacts) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Model card: {} version {}\n",
        md(&f.name),
        md(&f.version)
    );
    let summary = f.card.summary.as_deref().unwrap_or(&f.description);
    if !summary.is_empty() {
        let _ = writeln!(out, "{}\n", md(summary));
    }
    let _ = writeln!(
        out,
        "- Registered: {} by {}",
        md(&f.created_at),
        md(&f.created_by)
    );
    let _ = writeln!(
        out,
        "- Root digest (OMS v1.0): sha256:{}",
        md(&f.root_digest)
    );
    if let Some(r) = &f.run_id {
        let _ = writeln!(out, "- Training run: {}", md(r));
    }
    if let Some(c) = &f.code_commit {
        let _ = writeln!(out, "- Code commit: {}", md(c));
    }
    let _ = writeln!(out, "- Scan: {}\n", md(&scan_text(f)));
    for s in sections(f) {
        let _ = writeln!(out, "## {}\n", s.title);
        if s.items.is_empty() {
            let _ = writeln!(out, "_{}_\n", s.missing);
        } else {
            for i in &s.items {
                let _ = writeln!(out, "- {}", md(i));
            }
            out.push('\n');
        }
    }
    let _ = writeln!(out, "## Training data\n");
    if f.datasets.is_empty() {
        let _ = writeln!(out, "_No dataset is pinned to the training run._\n");
    } else {
        let _ = writeln!(out, "| dataset | version | digest |\n|---|---|---|");
        for d in &f.datasets {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                md(&d.name),
                md(d.version.as_deref().unwrap_or("not pinned")),
                d.digest.as_deref().map(md).unwrap_or_else(|| "—".into())
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Metrics\n");
    if f.metrics.is_empty() {
        let _ = writeln!(out, "_No metrics were logged by the training run._\n");
    } else {
        let _ = writeln!(out, "| metric | value | slice |\n|---|---:|---|");
        for m in &f.metrics {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                md(&m.name),
                m.value,
                md(m.slice.as_deref().unwrap_or("all"))
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Signatures\n");
    if f.signatures.is_empty() {
        let _ = writeln!(out, "_Not signed._\n");
    } else {
        let _ = writeln!(out, "| kind | key | signer | status |\n|---|---|---|---|");
        for s in &f.signatures {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                md(&s.kind),
                md(s.key_id.get(..16).unwrap_or(&s.key_id)),
                md(s.principal.as_deref().unwrap_or("—")),
                if s.valid {
                    "valid".to_string()
                } else {
                    format!("INVALID: {}", md(s.reason.as_deref().unwrap_or("")))
                }
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "## Files\n\n| file | bytes | sha256 | scan |\n|---|---:|---|---|"
    );
    for file in &f.files {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            md(&file.path),
            file.size,
            md(&file.sha256),
            md(file.scan_severity.as_deref().unwrap_or("clean"))
        );
    }
    out
}

const STYLE: &str = "body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}\
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:1.6rem;border-bottom:1px solid #d8dee4;padding-bottom:.2rem}\
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border:1px solid #d8dee4;padding:.3rem .5rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa}code{font:12px ui-monospace,monospace;word-break:break-all}.missing{color:#6e7781;font-style:italic}\
.bad{color:#b42318;font-weight:600}.ok{color:#1a7f37;font-weight:600}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}";

pub fn html(f: &ModelFacts) -> String {
    let e = html_escape;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
<title>Model card: {} {}</title><style>{STYLE}</style></head><body>\n<h1>Model card: {} <small>version {}</small></h1>\n",
        e(&f.name),
        e(&f.version),
        e(&f.name),
        e(&f.version)
    );
    let summary = f.card.summary.as_deref().unwrap_or(&f.description);
    if !summary.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", e(summary));
    }
    let _ = write!(
        out,
        "<dl><dt>Registered</dt><dd>{} by {}</dd><dt>Root digest</dt><dd><code>sha256:{}</code></dd>",
        e(&f.created_at),
        e(&f.created_by),
        e(&f.root_digest)
    );
    if let Some(r) = &f.run_id {
        let _ = write!(out, "<dt>Training run</dt><dd><code>{}</code></dd>", e(r));
    }
    if let Some(c) = &f.code_commit {
        let _ = write!(out, "<dt>Code commit</dt><dd><code>{}</code></dd>", e(c));
    }
    let class = if f.quarantined { "bad" } else { "ok" };
    let _ = writeln!(
        out,
        "<dt>Scan</dt><dd class=\"{class}\">{}</dd></dl>",
        e(&scan_text(f))
    );
    for s in sections(f) {
        let _ = write!(out, "<section><h2>{}</h2>", s.title);
        if s.items.is_empty() {
            let _ = write!(out, "<p class=\"missing\">{}</p>", e(s.missing));
        } else {
            out.push_str("<ul>");
            for i in &s.items {
                let _ = write!(out, "<li>{}</li>", e(i));
            }
            out.push_str("</ul>");
        }
        out.push_str("</section>\n");
    }
    out.push_str("<section><h2>Training data</h2>");
    if f.datasets.is_empty() {
        out.push_str("<p class=\"missing\">No dataset is pinned to the training run.</p>");
    } else {
        out.push_str("<table><tr><th>dataset</th><th>version</th><th>digest</th></tr>");
        for d in &f.datasets {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                e(&d.name),
                e(d.version.as_deref().unwrap_or("not pinned")),
                e(d.digest.as_deref().unwrap_or("—"))
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</section>\n<section><h2>Metrics</h2>");
    if f.metrics.is_empty() {
        out.push_str("<p class=\"missing\">No metrics were logged by the training run.</p>");
    } else {
        out.push_str("<table><tr><th>metric</th><th>value</th><th>slice</th></tr>");
        for m in &f.metrics {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                e(&m.name),
                m.value,
                e(m.slice.as_deref().unwrap_or("all"))
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</section>\n<section><h2>Signatures</h2>");
    if f.signatures.is_empty() {
        out.push_str("<p class=\"missing\">Not signed.</p>");
    } else {
        out.push_str("<table><tr><th>kind</th><th>key</th><th>signer</th><th>status</th></tr>");
        for s in &f.signatures {
            let (class, status) = if s.valid {
                ("ok", "valid".to_string())
            } else {
                (
                    "bad",
                    format!("invalid: {}", s.reason.as_deref().unwrap_or("")),
                )
            };
            let _ = write!(
                out,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td class=\"{class}\">{}</td></tr>",
                e(&s.kind),
                e(&s.key_id),
                e(s.principal.as_deref().unwrap_or("—")),
                e(&status)
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</section>\n<section><h2>Files</h2><table><tr><th>file</th><th>bytes</th><th>sha256</th><th>scan</th></tr>");
    for file in &f.files {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            e(&file.path),
            file.size,
            e(&file.sha256),
            e(file.scan_severity.as_deref().unwrap_or("clean"))
        );
    }
    out.push_str("</table></section>\n");
    if !f.libraries.is_empty() {
        let _ = write!(
            out,
            "<section><h2>Environment</h2><p>{} packages{}</p><ul>",
            f.libraries.len(),
            f.environment_source
                .as_deref()
                .map(|s| format!(" from {}", e(s)))
                .unwrap_or_default()
        );
        for p in &f.libraries {
            let _ = write!(out, "<li><code>{}</code></li>", e(&p.purl()));
        }
        out.push_str("</ul></section>\n");
    }
    out.push_str("</body></html>\n");
    out
}
