//! `markup`: HTML and JavaScript in a response that a web front end might render.
//!
//! Script elements, event-handler attributes, `javascript:` and `data:text/html` URLs,
//! embedding elements (iframe, object, embed), meta refresh and forms: a chat UI that renders
//! model output as HTML turns these into stored XSS. Matching covers the raw text and every
//! decoded view (entity- and percent-encoded markup).

use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use crate::detector::{Detector, Finding, ScanInput, Severity, Span, excerpt, parse_config};
use crate::error::Result;
use crate::registry::{BOTH, DetectorInfo};

pub const INFO: DetectorInfo = DetectorInfo {
    id: "markup",
    name: "XSS and active markup",
    directions: BOTH,
    summary: "Active HTML/JavaScript in model output (script tags, on* handlers, javascript: and data:text/html URLs, iframes, objects, meta refresh, forms) that becomes cross-site scripting when a front end renders the response.",
    false_positives: "Answers that teach web development contain markup on purpose; set `allow_in_code_blocks` when the front end renders fenced code as text.",
    references: &[
        "OWASP LLM05:2025 Improper Output Handling",
        "AML.T0050 Command and Scripting Interpreter",
        "AML.M0020 Generative AI Guardrails",
    ],
    eval_label: Some("xss"),
    build: |v| {
        Ok(Box::new(Markup {
            config: parse_config(INFO.id, v)?,
        }))
    },
};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Markup inside fenced code blocks is not reported.
    pub allow_in_code_blocks: bool,
}

pub struct Markup {
    config: Config,
}

static ACTIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)<\s*script\b|<\s*/\s*script\s*>|\bon(?:error|load|click|mouseover|mouseenter|focus|blur|submit|change|input|keydown|keyup|animationstart|toggle|pointerover|begin)\s*=|\bjavascript\s*:|\bvbscript\s*:|\bdata\s*:\s*text/html|<\s*(?:iframe|object|embed|applet|frameset|base)\b|<\s*meta\b[^>]{0,100}http-equiv\s*=\s*["']?refresh|<\s*form\b[^>]{0,200}\baction\s*=|<\s*svg\b[^>]{0,200}\bon\w+\s*=|\bsrcdoc\s*=|expression\s*\(|<\s*link\b[^>]{0,100}\brel\s*=\s*["']?import"#).expect("static regex")
});
static FENCED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)```.*?(?:```|\z)").expect("static regex"));

impl Detector for Markup {
    fn id(&self) -> &'static str {
        INFO.id
    }

    fn scan(&self, input: &ScanInput<'_>, out: &mut Vec<Finding>) -> Result<()> {
        let fences: Vec<Span> = if self.config.allow_in_code_blocks {
            FENCED
                .find_iter(input.text)
                .map(|m| Span::new(m.start(), m.end()))
                .collect()
        } else {
            Vec::new()
        };
        for m in ACTIVE.find_iter(input.text) {
            let span = Span::new(m.start(), m.end());
            if fences.iter().any(|f| f.overlaps(&span)) {
                continue;
            }
            let mut f = Finding::new(
                INFO.id,
                "active_markup",
                Some(span),
                Severity::High,
                excerpt(m.as_str(), 60),
            );
            f.redact = crate::detector::Redact::Label("[REMOVED:markup]".into());
            out.push(f);
            return Ok(());
        }
        for view in input
            .prepared
            .views
            .iter()
            .filter(|v| v.kind == crate::prepare::ViewKind::Decoded)
        {
            if let Some(m) = ACTIVE.find(&view.text) {
                let mut f = Finding::new(
                    INFO.id,
                    "active_markup",
                    Some(view.origin),
                    Severity::High,
                    excerpt(m.as_str(), 60),
                );
                f.layer = view.layer.clone();
                out.push(f);
                return Ok(());
            }
        }
        Ok(())
    }
}
