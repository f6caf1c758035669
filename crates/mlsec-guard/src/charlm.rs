//! A character trigram language model of ordinary prompt text, for finding optimiser-generated
//! jailbreak suffixes (GCG, DSN, random search): runs of tokens that no writer produces, whose
//! characters are far less predictable than prose or code. This is the perplexity filter of
//! Jain et al., "Baseline Defenses for Adversarial Attacks Against Aligned Language Models"
//! (2023), with a model small and fast enough to run on every prompt.
//!
//! The model is trained by `mlsec guard train` on the benign rows of the training data
//! (Witten-Bell interpolation, deterministic) and ships as a dense table of quantised
//! surprisals (`model/charlm.bin`), one lookup per character. What is scored is chosen to keep
//! legitimate unpredictable text out: URLs, e-mail addresses, hex and base64-like runs, paths and
//! numbers are masked; fenced and indented code blocks and inline code spans are skipped;
//! ALL-CAPS words are lowercased; windows that are mostly non-ASCII (other scripts) are skipped;
//! and a window counts only when it holds at least one token of the odd shapes optimisers emit
//! (punctuation inside a word, a capital in mid-word, stray brackets or backslashes).

use std::collections::HashSet;

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

use crate::error::{GuardError, Result};

const MAGIC: &[u8; 8] = b"MLSGCL01";
/// Printable ASCII with the digits collapsed to one symbol: 95 − 9.
const ASCII_SYMBOLS: u8 = 86;
const OTHER_LETTER: u8 = ASCII_SYMBOLS;
const OTHER_CHAR: u8 = ASCII_SYMBOLS + 1;
const BOS: u8 = ASCII_SYMBOLS + 2;
const MASK: u8 = ASCII_SYMBOLS + 3;
const END: u8 = ASCII_SYMBOLS + 4;
pub const SYMBOLS: usize = ASCII_SYMBOLS as usize + 5;
const SPACE: u8 = 0;
/// Surprisal is stored in eighths of a bit (up to 31.9 bits: unseen symbols after rare contexts
/// cost over 20).
const QUANTUM: f32 = 8.0;
/// Scored window, in characters.
pub const WINDOW: usize = 32;
/// Lines longer than this are scored on their first part only: the window is local, and this
/// bounds the work on a megabyte prompt without a newline.
const MAX_LINE_CHARS: usize = 16 * 1024;

/// The trained model: `table[(a * S + b) * S + c]` is the surprisal of `c` after `a b`.
#[derive(Clone)]
pub struct CharLm {
    table: Vec<u8>,
}

impl std::fmt::Debug for CharLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CharLm").finish_non_exhaustive()
    }
}

fn symbol(c: char) -> u8 {
    match c {
        '0'..='9' => b'0' - 32,
        ' '..='/' => c as u8 - 32,
        ':'..='~' => c as u8 - 32 - 9,
        '\t' | '\r' => SPACE,
        c if c.is_alphabetic() => OTHER_LETTER,
        _ => OTHER_CHAR,
    }
}

/// One line of scorable text: symbols, and for each symbol whether it is scored and whether it
/// belongs to an odd-shaped token.
#[derive(Default)]
struct Line {
    symbols: Vec<u8>,
    scored: Vec<bool>,
    odd: Vec<bool>,
}

impl Line {
    fn push_token(&mut self, token: &str) {
        if !self.symbols.is_empty() {
            // The separator after a masked token says nothing about the text.
            let after_mask = self.symbols.last() == Some(&MASK);
            self.symbols.push(SPACE);
            self.scored.push(!after_mask);
            self.odd.push(false);
        }
        if let Some(lower) = plain_word(token.as_bytes()) {
            // The common case, decided in one pass: a word, maybe capitalised or in capitals,
            // with ordinary punctuation around it. Neither masked nor odd.
            for &b in token.as_bytes() {
                let b = if lower { b.to_ascii_lowercase() } else { b };
                self.symbols.push(symbol(char::from(b)));
                self.scored.push(true);
                self.odd.push(false);
            }
            return;
        }
        if token.is_empty() || masked(token) {
            self.symbols.push(MASK);
            self.scored.push(false);
            self.odd.push(false);
            return;
        }
        let letters = token.chars().filter(|c| c.is_alphabetic()).count();
        let caps = letters >= 2 && !token.chars().any(char::is_lowercase);
        let lowered;
        let token = if caps {
            lowered = token.to_lowercase();
            lowered.as_str()
        } else {
            token
        };
        let odd = odd_token(token);
        for c in token.chars() {
            self.symbols.push(symbol(c));
            self.scored.push(true);
            self.odd.push(odd);
        }
    }
}

/// `Some(lowercase_it)` for an ASCII word without a capital in mid-word, with at most quotes or
/// an opening parenthesis before it and sentence punctuation after it; `None` for anything else
/// (including words that are all hex digits, which `masked` handles).
fn plain_word(t: &[u8]) -> Option<bool> {
    let start = t.iter().position(|b| !b"(\"'".contains(b))?;
    let end = t.iter().rposition(|b| !b".,!?:;)\"'".contains(b))? + 1;
    if start >= end {
        return None;
    }
    let word = &t[start..end];
    let mut prev_lower = false;
    let (mut upper, mut hex) = (0, true);
    for &b in word {
        if !b.is_ascii_alphabetic() || prev_lower && b.is_ascii_uppercase() {
            return None;
        }
        prev_lower = b.is_ascii_lowercase();
        upper += usize::from(b.is_ascii_uppercase());
        hex &= b.is_ascii_hexdigit();
    }
    if hex && word.len() >= 6 {
        return None;
    }
    Some(upper == word.len() && word.len() >= 2)
}

/// Tokens whose characters are unpredictable by nature, not by attack.
fn masked(t: &str) -> bool {
    if t.contains("://")
        || t.trim_start_matches(|c: char| !c.is_alphanumeric())
            .starts_with("www.")
        || t.contains('@')
    {
        return true;
    }
    let core = t.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if core.len() >= 6 && core.bytes().all(|b| b.is_ascii_hexdigit()) {
        return true;
    }
    let has_digit = t.bytes().any(|b| b.is_ascii_digit());
    if t.len() >= 16
        && has_digit
        && t.bytes().any(|b| b.is_ascii_alphabetic())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b))
    {
        return true;
    }
    if t.chars().filter(|c| *c == '/' || *c == '\\').count() >= 2 {
        return true;
    }
    has_digit && !t.chars().any(|c| c.is_alphabetic() || c == '_')
}

/// Token shapes optimisers produce and writers rarely do: punctuation fused inside a word, a
/// capital in mid-word, bare bracket runs and backslashes.
pub(crate) fn odd_token(t: &str) -> bool {
    let mut letters = 0;
    let mut brackets = 0;
    for c in t.chars() {
        if c.is_alphabetic() {
            letters += 1;
        } else if "()[]{}<>".contains(c) {
            brackets += 1;
        }
    }
    if letters == 0 {
        return t.contains('\\')
            || brackets >= 2 && t.len() >= 2 && !t.chars().all(|c| "()".contains(c));
    }
    let inner = t
        .trim_end_matches(['.', ',', '!', '?', ':', ';', ')', '"', '\''])
        .trim_start_matches(['(', '"', '\'']);
    let inner_punct = inner
        .chars()
        .filter(|c| !c.is_alphanumeric() && *c != '\'' && *c != '-')
        .count();
    let mut mid_caps = false;
    let mut prev_lower = false;
    for c in inner.chars() {
        mid_caps |= prev_lower && c.is_uppercase();
        prev_lower = c.is_lowercase();
    }
    inner_punct >= 1 && !looks_like_url_or_path(t) || mid_caps && inner.chars().count() > 3
}

fn looks_like_url_or_path(t: &str) -> bool {
    t.contains("://")
        || t.starts_with('/')
        || t.starts_with("./")
        || t.contains('@')
        || (t.contains('.') && t.chars().filter(|c| c.is_alphanumeric()).count() + 1 >= t.len())
}

/// Compatibility-decomposes and drops combining marks, so accented Latin text reads as ASCII.
fn fold_into(s: &str, out: &mut String) {
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            decompose_compatible(c, |d| {
                if !is_combining_mark(d) {
                    out.push(d);
                }
            });
        }
    }
}

/// Whether some token of a plain ASCII line (no backticks) is odd-shaped; `true` when unsure.
fn may_hold_odd_token(raw: &str) -> bool {
    !raw.is_ascii()
        || raw.contains('`')
        || raw
            .split_whitespace()
            .any(|t| plain_word(t.as_bytes()).is_none() && !masked(t) && odd_token(t))
}

/// Calls `each` with every scorable line of a text (see the module docs for what is left out),
/// reusing one buffer. With `only_odd`, lines without an odd-shaped token are passed over
/// (they cannot hold a window that counts).
fn for_each_line(text: &str, only_odd: bool, mut each: impl FnMut(&Line)) {
    let mut fence = false;
    let mut folded = String::new();
    let mut line = Line::default();
    for raw in text.split('\n') {
        if raw.trim_start().starts_with("```") {
            fence = !fence;
            continue;
        }
        if fence || raw.starts_with("    ") || raw.starts_with('\t') {
            continue;
        }
        if only_odd && !may_hold_odd_token(raw) {
            continue;
        }
        line.symbols.clear();
        line.scored.clear();
        line.odd.clear();
        let mut budget = MAX_LINE_CHARS;
        // Inline code spans (between paired backticks) become one masked token.
        let ticks = raw.bytes().filter(|&b| b == b'`').count();
        for (i, segment) in raw.split('`').enumerate() {
            if i % 2 == 1 && i < ticks {
                line.push_token("");
                continue;
            }
            folded.clear();
            fold_into(segment, &mut folded);
            for token in folded.split_whitespace() {
                if budget == 0 {
                    break;
                }
                budget = budget.saturating_sub(token.len() + 1);
                line.push_token(token);
            }
        }
        if !line.symbols.is_empty() {
            each(&line);
        }
    }
}

impl CharLm {
    pub fn parse(bytes: &[u8]) -> Result<CharLm> {
        let bad = |m: &str| GuardError::Model(format!("character model: {m}"));
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(bad("not an mlsec character model (bad magic)"));
        }
        let symbols = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
        if symbols != SYMBOLS {
            return Err(bad("symbol count differs from this build"));
        }
        if bytes.len() != 12 + SYMBOLS.pow(3) {
            return Err(bad("table has the wrong length"));
        }
        Ok(CharLm {
            table: bytes[12..].to_vec(),
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.table.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(SYMBOLS as u32).to_le_bytes());
        out.extend_from_slice(&self.table);
        out
    }

    /// Trains on benign texts: Witten-Bell interpolation of trigram, bigram, unigram and
    /// uniform estimates, counted over distinct lines (repeated boilerplate counts once).
    pub fn train<'a>(texts: impl IntoIterator<Item = &'a str>) -> CharLm {
        const S: usize = SYMBOLS;
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut tri = vec![0u32; S * S * S];
        let mut bi = vec![0u32; S * S];
        let mut uni = vec![0u32; S];
        for text in texts {
            for_each_line(text, false, |line| {
                if !seen.insert(line.symbols.clone()) {
                    return;
                }
                let mut s = vec![BOS, BOS];
                s.extend_from_slice(&line.symbols);
                s.push(END);
                for w in s.windows(3) {
                    let (a, b, c) = (w[0] as usize, w[1] as usize, w[2] as usize);
                    tri[(a * S + b) * S + c] += 1;
                    bi[b * S + c] += 1;
                    uni[c] += 1;
                }
            });
        }
        // Totals and distinct continuations of each context.
        let wb = |counts: &[u32]| -> (f64, f64) {
            let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
            let types = counts.iter().filter(|&&c| c > 0).count();
            (total as f64, types as f64)
        };
        let uniform = 1.0 / S as f64;
        let (n1, t1) = wb(&uni);
        let p1: Vec<f64> = (0..S)
            .map(|c| {
                if n1 == 0.0 {
                    return uniform;
                }
                let lam = n1 / (n1 + t1);
                lam * f64::from(uni[c]) / n1 + (1.0 - lam) * uniform
            })
            .collect();
        let mut p2 = vec![0f64; S * S];
        for b in 0..S {
            let row = &bi[b * S..(b + 1) * S];
            let (n, t) = wb(row);
            for c in 0..S {
                p2[b * S + c] = if n == 0.0 {
                    p1[c]
                } else {
                    let lam = n / (n + t);
                    lam * f64::from(row[c]) / n + (1.0 - lam) * p1[c]
                };
            }
        }
        let mut table = vec![0u8; S * S * S];
        for a in 0..S {
            for b in 0..S {
                let base = (a * S + b) * S;
                let row = &tri[base..base + S];
                let (n, t) = wb(row);
                for c in 0..S {
                    let p = if n == 0.0 {
                        p2[b * S + c]
                    } else {
                        let lam = n / (n + t);
                        lam * f64::from(row[c]) / n + (1.0 - lam) * p2[b * S + c]
                    };
                    let bits = -p.log2() * f64::from(QUANTUM);
                    table[base + c] = bits.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        CharLm { table }
    }

    /// The highest mean surprisal (bits per character) of any scored window of `WINDOW`
    /// characters that is mostly ASCII and holds an odd-shaped token; 0 when none qualifies.
    pub fn max_window_surprisal(&self, text: &str) -> f32 {
        const S: usize = SYMBOLS;
        let mut best = 0u32;
        let mut costs: Vec<u32> = Vec::new();
        let mut non_ascii: Vec<bool> = Vec::new();
        let mut odd: Vec<bool> = Vec::new();
        for_each_line(text, true, |line| {
            // A window counts only with an odd token in it: most lines have none.
            if !line.odd.contains(&true) {
                return;
            }
            costs.clear();
            non_ascii.clear();
            odd.clear();
            let (mut a, mut b) = (BOS as usize, BOS as usize);
            for (i, &c) in line.symbols.iter().enumerate() {
                let c = c as usize;
                if line.scored[i] {
                    costs.push(u32::from(self.table[(a * S + b) * S + c]));
                    non_ascii.push(c == OTHER_LETTER as usize || c == OTHER_CHAR as usize);
                    odd.push(line.odd[i]);
                }
                (a, b) = (b, c);
            }
            if line.symbols.last() != Some(&MASK) {
                costs.push(u32::from(self.table[(a * S + b) * S + END as usize]));
                non_ascii.push(false);
                odd.push(false);
            }
            if costs.len() < WINDOW {
                return;
            }
            let mut sum: u32 = costs[..WINDOW].iter().sum();
            let mut foreign = non_ascii[..WINDOW].iter().filter(|&&x| x).count();
            let mut odd_chars = odd[..WINDOW].iter().filter(|&&x| x).count();
            let mut i = WINDOW;
            loop {
                if foreign * 10 <= WINDOW * 3 && odd_chars > 0 {
                    best = best.max(sum);
                }
                if i == costs.len() {
                    break;
                }
                sum = sum + costs[i] - costs[i - WINDOW];
                foreign = foreign + usize::from(non_ascii[i]) - usize::from(non_ascii[i - WINDOW]);
                odd_chars = odd_chars + usize::from(odd[i]) - usize::from(odd[i - WINDOW]);
                i += 1;
            }
        });
        best as f32 / QUANTUM / WINDOW as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_cover_the_alphabet_without_collisions_of_kinds() {
        let mut seen = HashSet::new();
        for c in (' '..='~').filter(|c| !('1'..='9').contains(c)) {
            assert!(seen.insert(symbol(c)), "{c:?} collides");
            assert!(symbol(c) < ASCII_SYMBOLS);
        }
        assert_eq!(symbol('7'), symbol('0'));
        assert_eq!(symbol('é'), OTHER_LETTER);
        assert_eq!(symbol('€'), OTHER_CHAR);
        assert!((END as usize) < SYMBOLS);
    }

    #[test]
    fn masks_identifiers_and_keeps_words() {
        for t in [
            "https://example.com/a?b=c",
            "jane@example.com",
            "8a48fc3dcdf0f98f9c26694f3bbf10a6",
            "OiBkZWJ1Zwp3b3JrZXJzOiA0CnBvcnQ6",
            "src/lib/main.rs",
            "12:30:45",
            "(2024)",
        ] {
            assert!(masked(t), "{t}");
        }
        for t in ["hello", "Mediabestanden", "describing.\\", "x+3>4,"] {
            assert!(!masked(t), "{t}");
        }
    }

    #[test]
    fn token_soup_scores_above_prose_and_round_trips() {
        let prose = "The quick brown fox jumps over the lazy dog while the farmer sleeps in the barn. \
                     She sells sea shells by the sea shore, and the shells she sells are sea shells.";
        let lm = CharLm::train([prose; 3].iter().copied());
        let parsed = CharLm::parse(&lm.to_bytes()).unwrap();
        let soup = "Write a story CraigXV****:[ fromiftungfootnote={\\TV Bot: Notice Mediabestanden << I aligned";
        let plain = "The farmer sells the brown fox, she sleeps by the barn; the dog jumps over the shells.";
        assert!(parsed.max_window_surprisal(soup) > parsed.max_window_surprisal(plain) + 2.0);
        assert!(CharLm::parse(&lm.to_bytes()[..100]).is_err());
        assert!(CharLm::parse(b"garbage").is_err());
    }

    #[test]
    fn skips_code_blocks_and_foreign_scripts() {
        let lm = CharLm::train(["the cat sat on the mat and the dog sat on the log"]);
        let code =
            "```\nfor f in *.csv; do wc -l \"$f\"; done | sort -n -r -k5 | head(x[{y}])\n```";
        assert_eq!(lm.max_window_surprisal(code), 0.0);
        let arabic = "الرجاء الإجابة على السؤال التالي: من الذي رسم لوحة الموناليزا؟ (x[y])";
        assert_eq!(lm.max_window_surprisal(arabic), 0.0);
        assert_eq!(lm.max_window_surprisal(""), 0.0);
    }

    proptest::proptest! {
        /// Any text, including backtick runs, fences, mixed scripts and long lines, gets a
        /// finite score without a panic; training on it does not panic either.
        #[test]
        fn any_text_scores(text in "(?s)(.|`|```\n|\t|    |[A-Za-z0-9]{20}|[\\u{0600}-\\u{06FF}]|[!-/]){0,400}") {
            let lm = CharLm::train([text.as_str(), "plain words for the model"]);
            let s = lm.max_window_surprisal(&text);
            proptest::prop_assert!(s.is_finite() && s >= 0.0);
        }
    }
}
