//! Labelled datasets for evaluation and training, as JSON lines.
//!
//! One object per line:
//! `{"text": …, "label": "injection" | "benign"}` (binary input sets), or
//! `{"text": …, "labels": ["pii", "secret", …]}` (output sets; `[]` is clean), or
//! `{"text": …, "spans": [{"type": "EMAIL", "start": 3, "end": 20}]}` (span sets; offsets in
//! Unicode code points, end exclusive, as Python slices them).
//! Optional: `direction` (`input`/`output`; default from the labels), `source`, `group`,
//! `system_prompt`, `context` (grounding documents), `canary`, `schema`.

use serde::Deserialize;

use crate::detector::{Direction, RequestContext, Span};
use crate::error::{GuardError, Result};

/// Lines longer than this are refused: a dataset line is one prompt, not a corpus.
pub const MAX_LINE_BYTES: usize = 8 << 20;

#[derive(Debug, Clone)]
pub struct LabelSpan {
    pub kind: String,
    /// Byte offsets into `text`.
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Example {
    pub text: String,
    pub direction: Direction,
    pub labels: Vec<String>,
    /// Present for span-labelled rows; `None` means the row has no span labels at all.
    pub spans: Option<Vec<LabelSpan>>,
    pub source: String,
    pub group: String,
    pub context: RequestContext,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpan {
    #[serde(rename = "type")]
    kind: String,
    start: usize,
    end: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    text: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    labels: Option<Vec<String>>,
    #[serde(default)]
    spans: Option<Vec<RawSpan>>,
    #[serde(default)]
    direction: Option<Direction>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    system_prompt: Option<String>,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    canary: Option<String>,
    #[serde(default)]
    schema: Option<serde_json::Value>,
    #[serde(default)]
    note: Option<String>,
}

/// Byte offset of the `chars`-th code point of `text`.
fn char_to_byte(text: &str, chars: usize) -> Option<usize> {
    if chars == 0 {
        return Some(0);
    }
    text.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .nth(chars)
}

/// Parses one dataset line (`line` is 1-based, for messages).
pub fn parse_line(line_no: usize, line: &str) -> Result<Example> {
    let err = |reason: String| GuardError::Dataset {
        line: line_no,
        reason,
    };
    if line.len() > MAX_LINE_BYTES {
        return Err(err(format!(
            "line of {} bytes exceeds {MAX_LINE_BYTES}",
            line.len()
        )));
    }
    let raw: Raw = serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
    let _ = raw.note;
    let mut labels = raw.labels.unwrap_or_default();
    match raw.label.as_deref() {
        Some("benign") | None => {}
        Some(l) => labels.push(l.to_string()),
    }
    let spans = match raw.spans {
        None => None,
        Some(spans) => {
            let mut out = Vec::with_capacity(spans.len());
            for s in spans {
                let (Some(start), Some(end)) = (
                    char_to_byte(&raw.text, s.start),
                    char_to_byte(&raw.text, s.end),
                ) else {
                    return Err(err(format!(
                        "span {}..{} is outside the text",
                        s.start, s.end
                    )));
                };
                if start > end {
                    return Err(err(format!("span {}..{} is reversed", s.start, s.end)));
                }
                out.push(LabelSpan {
                    kind: s.kind,
                    span: Span::new(start, end),
                });
            }
            Some(out)
        }
    };
    let output_labels = [
        "system_prompt_leak",
        "canary",
        "markdown_exfiltration",
        "ip_url",
        "code",
        "sql",
        "shell",
        "xss",
        "toxicity",
        "refusal",
        "ungrounded",
    ];
    let direction = raw.direction.unwrap_or(
        if labels.iter().any(|l| output_labels.contains(&l.as_str()))
            || raw.system_prompt.is_some()
            || raw.context.is_some()
            || raw.canary.is_some()
        {
            Direction::Output
        } else {
            Direction::Input
        },
    );
    Ok(Example {
        text: raw.text,
        direction,
        labels,
        spans,
        source: raw.source.unwrap_or_default(),
        group: raw.group.unwrap_or_default(),
        context: RequestContext {
            system_prompt: raw.system_prompt,
            grounding: raw.context,
            canaries: raw.canary.into_iter().collect(),
            json_schema: raw.schema,
        },
    })
}

/// Parses a whole JSON-lines document; blank lines are skipped.
pub fn parse(text: &str) -> Result<Vec<Example>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_line(i + 1, l))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let e = parse_line(
            1,
            r#"{"text": "héllo a@b.co", "spans": [{"type": "EMAIL", "start": 6, "end": 12}]}"#,
        )
        .unwrap();
        let s = &e.spans.as_ref().unwrap()[0];
        assert_eq!(&e.text[s.span.start..s.span.end], "a@b.co");
        let e = parse_line(2, r#"{"text": "x", "label": "injection", "source": "s"}"#).unwrap();
        assert_eq!(e.labels, vec!["injection"]);
        assert_eq!(e.direction, Direction::Input);
        let e = parse_line(3, r#"{"text": "x", "labels": ["refusal"]}"#).unwrap();
        assert_eq!(e.direction, Direction::Output);
        assert!(
            parse_line(
                4,
                r#"{"text": "x", "spans": [{"type": "E", "start": 0, "end": 9}]}"#
            )
            .is_err()
        );
        assert!(parse_line(5, r#"{"text": "x", "bogus": 1}"#).is_err());
        assert!(parse_line(6, "{not json").is_err());
    }
}
