//! `hidden_text`: characters a reader does not see but a model does.
//!
//! Zero-width characters split trigger words past filters; Unicode tag characters (U+E0020–
//! U+E007E) carry a whole invisible ASCII message ("ASCII smuggling"); bidirectional overrides
//! make text display differently from how it is read (Trojan Source); private-use characters
//! have no agreed meaning and hide payloads for custom fonts. Redaction removes them.

use serde::Deserialize;

use crate::detector::{Detector, Finding, Redact, ScanInput, Severity, Span, parse_config};
use crate::error::Result;
use crate::registry::{BOTH, DetectorInfo};

pub const INFO: DetectorInfo = DetectorInfo {
    id: "hidden_text",
    name: "Hidden text",
    directions: BOTH,
    summary: "Invisible and formatting characters (zero-width, Unicode tag block U+E0000, bidi overrides and isolates, private use) that hide instructions from the people reviewing a prompt or a document.",
    false_positives: "Zero-width joiners inside emoji sequences and variation selectors are legitimate and ignored; a zero-width non-joiner is part of Persian and Indic spelling, so it only counts inside Latin-script words; RTL marks in Arabic or Hebrew text are ordinary (set allow_bidi_marks).",
    references: &[
        "OWASP LLM01:2025 Prompt Injection",
        "AML.T0051 LLM Prompt Injection",
        "AML.T0068 LLM Prompt Obfuscation",
    ],
    eval_label: Some("hidden_text"),
    build: |v| {
        Ok(Box::new(HiddenText {
            config: parse_config(INFO.id, v)?,
        }))
    },
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Left-to-right/right-to-left marks (U+200E, U+200F, U+061C) are not reported.
    pub allow_bidi_marks: bool,
    /// Private-use characters are reported.
    pub private_use: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            allow_bidi_marks: true,
            private_use: true,
        }
    }
}

pub struct HiddenText {
    config: Config,
}

fn class(c: char, prev: Option<char>, next: Option<char>, config: &Config) -> Option<&'static str> {
    let latin = |o: Option<char>| o.is_some_and(|c| c.is_ascii_alphanumeric());
    let pictographic =
        |o: Option<char>| o.is_some_and(|c| c as u32 >= 0x2190 && !c.is_alphanumeric());
    Some(match c {
        '\u{E0000}'..='\u{E0FFF}' => "tag",
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => "bidi_override",
        '\u{200E}' | '\u{200F}' | '\u{061C}' => {
            if config.allow_bidi_marks {
                return None;
            }
            "bidi_mark"
        }
        '\u{200D}' => {
            if pictographic(prev) || pictographic(next) {
                return None;
            }
            "zero_width"
        }
        '\u{200C}' => {
            if !(latin(prev) && latin(next)) {
                return None;
            }
            "zero_width"
        }
        '\u{200B}'
        | '\u{2060}'..='\u{2064}'
        | '\u{180E}'
        | '\u{034F}'
        | '\u{115F}'
        | '\u{1160}'
        | '\u{3164}'
        | '\u{FFA0}' => "zero_width",
        '\u{FEFF}' => {
            prev?;
            "zero_width"
        }
        '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..='\u{FFFFD}' | '\u{100000}'..='\u{10FFFD}' => {
            if !config.private_use {
                return None;
            }
            "private_use"
        }
        _ => return None,
    })
}

impl Detector for HiddenText {
    fn id(&self) -> &'static str {
        INFO.id
    }

    fn scan(&self, input: &ScanInput<'_>, out: &mut Vec<Finding>) -> Result<()> {
        let text = input.text;
        if text.is_ascii() {
            return Ok(());
        }
        let mut prev: Option<char> = None;
        let mut run: Option<(usize, usize, &'static str, usize)> = None;
        let mut iter = text.char_indices().peekable();
        let flush = |run: &mut Option<(usize, usize, &'static str, usize)>,
                     out: &mut Vec<Finding>| {
            if let Some((start, end, kind, count)) = run.take() {
                // Emoji flag tag sequences (🏴 + tag letters + cancel tag) are legitimate.
                if kind == "tag" && text[..start].ends_with('\u{1F3F4}') {
                    return;
                }
                let severity = if kind == "tag" || kind == "bidi_override" {
                    Severity::High
                } else {
                    Severity::Medium
                };
                let mut f = Finding::new(
                    INFO.id,
                    kind,
                    Some(Span::new(start, end)),
                    severity,
                    format!("{count} {kind} character(s)"),
                );
                if kind == "tag"
                    && let Some(p) = crate::prepare::tag_payload(&text[start..end])
                {
                    f.evidence = format!(
                        "{count} tag characters spelling {:?}",
                        crate::detector::excerpt(&p, 60)
                    );
                }
                f.redact = Redact::Remove;
                out.push(f);
            }
        };
        while let Some((i, c)) = iter.next() {
            let next = iter.peek().map(|&(_, n)| n);
            if let Some(kind) = class(c, prev, next, &self.config) {
                match &mut run {
                    Some((_, end, k, count)) if *end == i && *k == kind => {
                        *end = i + c.len_utf8();
                        *count += 1;
                    }
                    _ => {
                        flush(&mut run, out);
                        run = Some((i, i + c.len_utf8(), kind, 1));
                    }
                }
            }
            prev = Some(c);
        }
        flush(&mut run, out);
        Ok(())
    }
}
