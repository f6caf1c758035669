//! `pii`: personal data with reliable shapes, validated beyond the pattern.
//!
//! Email addresses; payment card numbers (13–19 digits, issuer prefix, Luhn checksum); IBANs
//! (country length table and the ISO 7064 mod-97 checksum); US social security numbers (the
//! SSA's never-issued ranges excluded); IPv4 and IPv6 addresses (parsed); phone numbers in
//! international and national layouts. Findings redact to typed vault placeholders
//! (`[EMAIL_1]`), which the pipeline maps back in the response.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use crate::detector::{Detector, Finding, Redact, ScanInput, Severity, Span, parse_config};
use crate::error::{GuardError, Result};
use crate::registry::{BOTH, DetectorInfo};

pub const INFO: DetectorInfo = DetectorInfo {
    id: "pii",
    name: "Personal data",
    directions: BOTH,
    summary: "Email addresses, payment card numbers (Luhn), IBANs (mod-97), US SSNs, IP addresses and phone numbers: in prompts, redacted before the model sees them and restored in the answer; in responses, leaks of data the model memorised or retrieved.",
    false_positives: "Order or invoice numbers can pass the Luhn check (about one in ten random digit strings of a card's length and prefix); 7-digit number pairs like '467 3395' look like local phone numbers; documentation IP ranges (192.0.2.0/24 etc.) are real addresses to this detector unless `ignore_documentation_ips` is set.",
    references: &[
        "OWASP LLM02:2025 Sensitive Information Disclosure",
        "AML.T0057 LLM Data Leakage",
        "AML.M0020 Generative AI Guardrails",
    ],
    eval_label: Some("pii"),
    build: |v| {
        let config: Config = parse_config(INFO.id, v)?;
        for e in &config.entities {
            if !ALL_ENTITIES.contains(&e.as_str()) {
                return Err(GuardError::Config(format!(
                    "detector pii: unknown entity {e:?}, expected one of {ALL_ENTITIES:?}"
                )));
            }
        }
        Ok(Box::new(Pii { config }))
    },
};

pub const ALL_ENTITIES: &[&str] = &[
    "EMAIL",
    "CREDIT_CARD",
    "IBAN",
    "US_SSN",
    "IP_ADDRESS",
    "PHONE",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Entity types to report.
    pub entities: Vec<String>,
    /// Bare 9-digit SSNs and 10–11-digit phone numbers are reported only with a context word
    /// ("ssn", "phone", "call"…) within this many bytes before them.
    pub context_window: usize,
    /// Skip loopback, private and documentation addresses (they identify no one).
    pub ignore_private_ips: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            entities: ALL_ENTITIES.iter().map(|s| s.to_string()).collect(),
            context_window: 48,
            ignore_private_ips: false,
        }
    }
}

pub struct Pii {
    config: Config,
}

macro_rules! re {
    ($name:ident, $pat:expr) => {
        static $name: LazyLock<Regex> = LazyLock::new(|| Regex::new($pat).expect("static regex"));
    };
}

re!(
    EMAIL,
    r"[A-Za-z0-9._%+\-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}"
);
re!(CARD, r"[0-9](?:[ \-]?[0-9]){11,18}");
re!(
    IBAN,
    r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?"
);
re!(SSN, r"([0-9]{3})([\- ]?)([0-9]{2})([\- ]?)([0-9]{4})");
re!(
    IPV4,
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
);
re!(
    IPV6,
    r"(?i)(?:[0-9a-f]{1,4}|:)?(?::[0-9a-f]{0,4}){2,7}(?:%[0-9a-z]{1,15})?"
);
re!(
    PHONE,
    r"(?:\+[0-9]{1,3}[ .\-]?)?(?:\(0\) ?)?(?:\([0-9]{1,4}\)[ .\-]?)?[0-9]{1,12}(?:[ .\-][0-9]{1,5}){0,5}(?: ?(?:x|ext\.? ?|#)[0-9]{1,5})?"
);
re!(
    CONTEXT_CARD,
    r"(?i)\b(?:card|cc|credit|debit|visa|mastercard|amex|jcb|diners|discover|unionpay|pan)\b"
);
re!(CONTEXT_SSN, r"(?i)\b(?:ssn|social security|ss#|soc\.? sec)");
re!(
    CONTEXT_PHONE,
    r"(?i)\b(?:phone|tel|telephone|mobile|cell|call|fax|whatsapp|signal|sms|text me|reach|contact|number|nr|no\.|dial|ring|answer|messag|registered)"
);

fn boundary_ok(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let mut after = text[end..].chars();
    let next = after.next();
    let word = |c: char| c.is_alphanumeric() || c == '_';
    // A digit right after `.` or `-` means the match is part of a longer number or version.
    let continues_number =
        matches!(next, Some('.' | '-')) && after.next().is_some_and(|c| c.is_ascii_digit());
    let bad_before = before.is_some_and(|c| word(c) || matches!(c, '.' | '-' | '+' | '/'));
    let bad_after = next.is_some_and(|c| word(c) || c == '@');
    !(bad_before || bad_after || continues_number)
}

pub fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn card_prefix_ok(d: &[u8]) -> bool {
    let n = |k: usize| d[..k].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    let len = d.len();
    match d[0] {
        4 => matches!(len, 13 | 16 | 19),
        5 => {
            (51..=55).contains(&n(2)) && len == 16
                || (50..=59).contains(&n(2)) && (12..=19).contains(&len)
        }
        2 => (2221..=2720).contains(&n(4)) && len == 16 || n(4) == 2131 && len == 15,
        3 => {
            matches!(n(2), 34 | 37) && len == 15
                || matches!(n(2), 30 | 36 | 38 | 39) && (14..=19).contains(&len)
                || (3528..=3589).contains(&n(4)) && (16..=19).contains(&len)
        }
        6 => (12..=19).contains(&len),
        1 => n(4) == 1800 && len == 15,
        0 => n(4) == 604 && (12..=19).contains(&len),
        _ => false,
    }
}

/// ISO 13616 lengths per country.
fn iban_length(country: &str) -> Option<usize> {
    Some(match country {
        "NO" => 15,
        "BE" => 16,
        "DK" | "FI" | "FO" | "GL" | "NL" => 18,
        "MK" | "SI" => 19,
        "AT" | "BA" | "EE" | "KZ" | "LT" | "LU" | "XK" => 20,
        "CH" | "CR" | "HR" | "LI" | "LV" => 21,
        "BG" | "BH" | "DE" | "GB" | "GE" | "IE" | "ME" | "RS" => 22,
        "AE" | "GI" | "IL" | "IQ" | "TL" => 23,
        "AD" | "CZ" | "ES" | "MD" | "PK" | "RO" | "SA" | "SE" | "SK" | "TN" | "VG" => 24,
        "PT" | "ST" => 25,
        "IS" | "TR" => 26,
        "FR" | "GR" | "IT" | "MC" | "MR" | "SM" => 27,
        "AL" | "AZ" | "BY" | "CY" | "DO" | "GT" | "HU" | "LB" | "PL" | "SV" => 28,
        "BR" | "EG" | "PS" | "QA" | "UA" => 29,
        "JO" | "KW" | "MU" => 30,
        "MT" | "SC" => 31,
        "LC" => 32,
        "RU" => 33,
        _ => return None,
    })
}

pub fn iban_valid(compact: &str) -> bool {
    if compact.len() < 15 || iban_length(&compact[..2]) != Some(compact.len()) {
        return false;
    }
    let rearranged = compact[4..].bytes().chain(compact[..4].bytes());
    let mut rem: u32 = 0;
    for b in rearranged {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn ssn_valid(area: &str, group: &str, serial: &str) -> bool {
    let a: u32 = area.parse().unwrap_or(0);
    a != 0 && a != 666 && a < 900 && group != "00" && serial != "0000"
}

fn ip_ignored(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_unspecified()
                || v4.is_link_local()
                || v4.is_broadcast()
                || matches!(o, [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _])
        }
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.segments()[0] == 0x2001 && v6.segments()[1] == 0xdb8
        }
    }
}

fn has_context(text: &str, start: usize, window: usize, re: &Regex) -> bool {
    let mut from = start.saturating_sub(window);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    re.is_match(&text[from..start])
}

/// Masks a personal value, keeping its shape: `j***@e***.com`, `****8809`.
fn mask_value(kind: &str, value: &str) -> String {
    match kind {
        "EMAIL" => {
            let (user, domain) = value.split_once('@').unwrap_or((value, ""));
            let tld = domain.rsplit_once('.').map_or("", |(_, t)| t);
            format!("{}***@***.{tld}", user.chars().next().unwrap_or('*'))
        }
        _ => {
            let digits: Vec<char> = value
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect();
            let keep = if digits.len() >= 10 { 4 } else { 2 };
            let tail: String = digits[digits.len().saturating_sub(keep)..].iter().collect();
            format!("{}{tail}", "*".repeat(digits.len().saturating_sub(keep)))
        }
    }
}

impl Pii {
    fn wants(&self, kind: &str) -> bool {
        self.config.entities.iter().any(|e| e == kind)
    }

    fn push(
        &self,
        out: &mut Vec<(Span, &'static str)>,
        taken: &mut Vec<Span>,
        span: Span,
        kind: &'static str,
    ) {
        if taken.iter().any(|t| t.overlaps(&span)) {
            return;
        }
        taken.push(span);
        out.push((span, kind));
    }

    /// All PII spans in `text`, in the order: the most specific validations first, so a card
    /// number is not also reported as a phone number.
    pub fn find(&self, text: &str) -> Vec<(Span, &'static str)> {
        let mut out = Vec::new();
        let mut taken: Vec<Span> = Vec::new();
        let bytes = text.as_bytes();
        let has_digit = bytes.iter().any(u8::is_ascii_digit);
        if self.wants("EMAIL") && bytes.contains(&b'@') {
            for m in EMAIL.find_iter(text) {
                if boundary_ok(text, m.start(), m.end())
                    || text[..m.start()].ends_with(['.', '-', '+'])
                {
                    self.push(&mut out, &mut taken, Span::new(m.start(), m.end()), "EMAIL");
                }
            }
        }
        if !has_digit {
            return out;
        }
        if self.wants("IBAN") {
            for m in IBAN.find_iter(text) {
                let compact: String = m.as_str().chars().filter(|c| !c.is_whitespace()).collect();
                if boundary_ok(text, m.start(), m.end()) && iban_valid(&compact) {
                    self.push(&mut out, &mut taken, Span::new(m.start(), m.end()), "IBAN");
                }
            }
        }
        if self.wants("CREDIT_CARD") {
            for m in CARD.find_iter(text) {
                let digits: Vec<u8> = m
                    .as_str()
                    .bytes()
                    .filter(u8::is_ascii_digit)
                    .map(|b| b - b'0')
                    .collect();
                let seps: Vec<u8> = m.as_str().bytes().filter(|b| !b.is_ascii_digit()).collect();
                let consistent = seps.windows(2).all(|w| w[0] == w[1]);
                // An unlisted issuer range still counts when the text says it is a card:
                // issuers and test generators use ranges beyond the published IIN table.
                let issuer_ok = card_prefix_ok(&digits)
                    || (13..=19).contains(&digits.len())
                        && has_context(text, m.start(), self.config.context_window, &CONTEXT_CARD);
                if (12..=19).contains(&digits.len())
                    && consistent
                    && boundary_ok(text, m.start(), m.end())
                    && issuer_ok
                    && luhn_valid(&digits)
                {
                    self.push(
                        &mut out,
                        &mut taken,
                        Span::new(m.start(), m.end()),
                        "CREDIT_CARD",
                    );
                }
            }
        }
        if self.wants("US_SSN") {
            for c in SSN.captures_iter(text) {
                let m = c.get(0).expect("group 0");
                let separated = !c[2].is_empty() && c[2] == c[4];
                let bare = c[2].is_empty() && c[4].is_empty();
                if !(separated || bare) || !boundary_ok(text, m.start(), m.end()) {
                    continue;
                }
                if bare && !has_context(text, m.start(), self.config.context_window, &CONTEXT_SSN) {
                    continue;
                }
                if ssn_valid(&c[1], &c[3], &c[5]) {
                    self.push(
                        &mut out,
                        &mut taken,
                        Span::new(m.start(), m.end()),
                        "US_SSN",
                    );
                }
            }
        }
        if self.wants("IP_ADDRESS") {
            for m in IPV4.find_iter(text) {
                if !boundary_ok(text, m.start(), m.end()) {
                    continue;
                }
                if let Ok(ip) = m.as_str().parse::<Ipv4Addr>()
                    && !(self.config.ignore_private_ips && ip_ignored(ip.into()))
                {
                    self.push(
                        &mut out,
                        &mut taken,
                        Span::new(m.start(), m.end()),
                        "IP_ADDRESS",
                    );
                }
            }
            if bytes.contains(&b':') {
                for m in IPV6.find_iter(text) {
                    let s = m.as_str();
                    let addr = s.split('%').next().unwrap_or(s);
                    if addr.matches(':').count() >= 2
                        && addr.len() >= 6
                        && let Ok(ip) = addr.parse::<Ipv6Addr>()
                        && !(self.config.ignore_private_ips && ip_ignored(ip.into()))
                        && !text[m.end()..].starts_with(|c: char| c.is_alphanumeric())
                    {
                        self.push(
                            &mut out,
                            &mut taken,
                            Span::new(m.start(), m.end()),
                            "IP_ADDRESS",
                        );
                    }
                }
            }
        }
        if self.wants("PHONE") {
            for m in PHONE.find_iter(text) {
                let (start, end) = (m.start(), m.end());
                if !boundary_ok(text, start, end) {
                    continue;
                }
                // `2000-04-16 11:34`: a date and an hour, not a number to call.
                if text[end..].starts_with(':') {
                    continue;
                }
                if let Some(kind) = phone_shape(m.as_str()) {
                    let needs_context = matches!(kind, PhoneShape::Bare | PhoneShape::Pair);
                    if needs_context
                        && !has_context(text, start, self.config.context_window, &CONTEXT_PHONE)
                    {
                        continue;
                    }
                    self.push(&mut out, &mut taken, Span::new(start, end), "PHONE");
                }
            }
        }
        out.sort_by_key(|(s, _)| s.start);
        out
    }
}

#[derive(Debug, PartialEq, Eq)]
enum PhoneShape {
    /// Has a `+`, parentheses or an extension: unambiguous.
    Marked,
    /// Digit groups with separators.
    Grouped,
    /// One run of digits: only with a context word.
    Bare,
    /// Two digit groups (`467 3395`): as often a postcode and a house number, so only with a
    /// context word.
    Pair,
}

fn phone_shape(s: &str) -> Option<PhoneShape> {
    let (main, ext) = match s.find(['x', '#']).or_else(|| s.find("ext")) {
        Some(i) => (&s[..i], true),
        None => (s, false),
    };
    let digits = main.bytes().filter(u8::is_ascii_digit).count();
    if !(7..=15).contains(&digits) {
        return None;
    }
    let marked = main.starts_with('+') || main.contains('(') || ext;
    let groups: Vec<&str> = main
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    if groups.len() == 1 {
        return if marked {
            Some(PhoneShape::Marked)
        } else {
            (10..=11).contains(&digits).then_some(PhoneShape::Bare)
        };
    }
    // The SSN layout (123-45-6789) is left to the SSN check, which validates it.
    if groups.iter().map(|g| g.len()).eq([3, 2, 4]) && main.matches('-').count() == 2 {
        return None;
    }
    if marked {
        return Some(PhoneShape::Marked);
    }
    // ISO dates, with or without a time after them.
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lens.len() >= 3 && lens[..3] == [4, 2, 2] && main.as_bytes().get(4) == Some(&b'-') {
        return None;
    }
    let seps: Vec<char> = main
        .trim()
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .collect();
    // Dates (2024-01-15, 15.01.2024) and decimal numbers are not phone numbers.
    if groups.len() == 3 && seps.iter().all(|&c| c == '-' || c == '.' || c == '/') {
        let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        if lens == [4, 2, 2] || lens[..2] == [2, 2] && (lens[2] == 4 || lens[2] == 2) {
            return None;
        }
    }
    if seps.contains(&'.') && groups.len() == 2 {
        return None;
    }
    // Thousands grouping: "1 000 000", "12 500".
    if groups[1..].iter().all(|g| g.len() == 3)
        && groups[0].len() <= 3
        && groups.len() >= 3
        && groups[1..].iter().any(|g| g.starts_with("00"))
    {
        return None;
    }
    // The last group of a phone number is rarely a single digit.
    if groups.last().is_some_and(|g| g.len() < 2) || groups[0].len() > 5 {
        return None;
    }
    if groups.len() == 2 {
        return Some(PhoneShape::Pair);
    }
    Some(PhoneShape::Grouped)
}

impl Detector for Pii {
    fn id(&self) -> &'static str {
        INFO.id
    }

    fn scan(&self, input: &ScanInput<'_>, out: &mut Vec<Finding>) -> Result<()> {
        for (span, kind) in self.find(input.text) {
            let value = &input.text[span.start..span.end];
            let severity = match kind {
                "CREDIT_CARD" | "US_SSN" | "IBAN" => Severity::High,
                _ => Severity::Medium,
            };
            let mut f = Finding::new(INFO.id, kind, Some(span), severity, mask_value(kind, value));
            f.redact = Redact::Vault;
            out.push(f);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(&'static str, String)> {
        let p = Pii {
            config: Config::default(),
        };
        p.find(text)
            .into_iter()
            .map(|(s, k)| (k, text[s.start..s.end].to_string()))
            .collect()
    }

    #[test]
    fn validated_entities() {
        assert_eq!(
            kinds("mail UtaKortig@jourrapide.com now"),
            vec![("EMAIL", "UtaKortig@jourrapide.com".into())]
        );
        assert_eq!(
            kinds("card 4007070753690781."),
            vec![("CREDIT_CARD", "4007070753690781".into())]
        );
        assert_eq!(
            kinds("card 4007 0707 5369 0781"),
            vec![("CREDIT_CARD", "4007 0707 5369 0781".into())]
        );
        assert!(kinds("card 4007070753690782").is_empty(), "Luhn fails");
        assert_eq!(
            kinds("IBAN GB56HXDO88167774656119"),
            vec![("IBAN", "GB56HXDO88167774656119".into())]
        );
        assert_eq!(
            kinds("IBAN DE89 3704 0044 0532 0130 00"),
            vec![("IBAN", "DE89 3704 0044 0532 0130 00".into())]
        );
        assert!(
            kinds("IBAN GB57HXDO88167774656119").is_empty(),
            "mod 97 fails"
        );
        assert_eq!(
            kinds("SSN 054-28-6917"),
            vec![("US_SSN", "054-28-6917".into())]
        );
        assert!(kinds("SSN 666-28-6917").is_empty());
        assert_eq!(
            kinds("from 86.121.97.248:80"),
            vec![("IP_ADDRESS", "86.121.97.248".into())]
        );
        assert_eq!(
            kinds("v6 2001:db8::8a2e:370:7334 ok"),
            vec![("IP_ADDRESS", "2001:db8::8a2e:370:7334".into())]
        );
        assert!(kinds("version 1.2.3.4.5").is_empty());
    }

    #[test]
    fn phone_layouts() {
        for p in [
            "+1-903-140-4508x769",
            "(602)272-9781",
            "0490 75 40 81",
            "+41 (0)85 806 98 67",
            "467 3395",
            "259.735.7502x459",
            "+447700677662",
        ] {
            assert_eq!(
                kinds(&format!("call {p} today")),
                vec![("PHONE", p.to_string())],
                "{p}"
            );
        }
        for not in [
            "on 2024-01-15",
            "pi is 3.14159",
            "it costs 1 000 000 dollars",
            "in 1998 and 2004",
            "ISBN 978",
            "logged at 2000-04-16 11:34:35 by the job",
            "17151 2450 Crown St, Springfield",
            "Apt. 675 62314 Lyon",
            "postcode 3610-114",
        ] {
            assert!(
                kinds(not).iter().all(|(k, _)| *k != "PHONE"),
                "{not}: {:?}",
                kinds(not)
            );
        }
        assert_eq!(
            kinds("my phone: 5403926876"),
            vec![("PHONE", "5403926876".into())]
        );
        assert!(kinds("order 5403926876 shipped").is_empty());
    }

    #[test]
    fn cards_outside_the_published_ranges_need_context() {
        // Luhn-valid, issuer range not in the IIN table.
        assert_eq!(
            kinds("i have lost my card 3521213764418045. help"),
            vec![("CREDIT_CARD", "3521213764418045".into())]
        );
        assert!(
            kinds("reference 3521213764418045 attached")
                .iter()
                .all(|(k, _)| *k != "CREDIT_CARD")
        );
    }
}
