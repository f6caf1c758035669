//! The per-request vault: personal values in a prompt are replaced by typed placeholders
//! (`[EMAIL_1]`) before the model sees them, and the placeholders in the model's answer are
//! mapped back, so the user still gets a useful answer and the provider never sees the values.

/// Placeholders and the values they stand for. Lives for one request; never persisted or logged.
#[derive(Default)]
pub struct Vault {
    entries: Vec<(String, String)>,
    counters: Vec<(String, usize)>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values are personal data: show only the placeholders.
        f.debug_list()
            .entries(self.entries.iter().map(|(p, _)| p))
            .finish()
    }
}

/// The longest placeholder we mint, for the streaming restorer's hold-back.
const MAX_PLACEHOLDER: usize = 40;

impl Vault {
    pub fn new() -> Self {
        Self::default()
    }

    /// The placeholder for `value` of type `kind`; the same value gets the same placeholder.
    pub fn placeholder(&mut self, kind: &str, value: &str) -> String {
        if let Some((p, _)) = self
            .entries
            .iter()
            .find(|(p, v)| v == value && p[1..].starts_with(kind))
        {
            return p.clone();
        }
        let n = match self.counters.iter_mut().find(|(k, _)| k == kind) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.counters.push((kind.to_string(), 1));
                1
            }
        };
        let kind: String = kind
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(24)
            .collect();
        let p = format!("[{kind}_{n}]");
        self.entries.push((p.clone(), value.to_string()));
        p
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The response with every known placeholder replaced by its value.
    pub fn restore(&self, text: &str) -> String {
        if self.entries.is_empty() || !text.contains('[') {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find('[') {
            out.push_str(&rest[..i]);
            rest = &rest[i..];
            match self
                .entries
                .iter()
                .find(|(p, _)| rest.starts_with(p.as_str()))
            {
                Some((p, v)) => {
                    out.push_str(v);
                    rest = &rest[p.len()..];
                }
                None => {
                    out.push('[');
                    rest = &rest[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// A restorer for a streamed response, which may split a placeholder across chunks.
    pub fn stream(&self) -> StreamRestorer<'_> {
        StreamRestorer {
            vault: self,
            pending: String::new(),
        }
    }
}

/// Restores placeholders in a chunked response, holding back a possible placeholder prefix
/// (at most 40 bytes) until the next chunk decides it.
pub struct StreamRestorer<'v> {
    vault: &'v Vault,
    pending: String,
}

impl StreamRestorer<'_> {
    pub fn push(&mut self, chunk: &str) -> String {
        self.pending.push_str(chunk);
        // Hold back from the last '[' that could still become a placeholder.
        let hold = match self.pending.rfind('[') {
            Some(i)
                if self.pending.len() - i < MAX_PLACEHOLDER
                    && !self.pending[i..].contains(']')
                    && self
                        .vault
                        .entries
                        .iter()
                        .any(|(p, _)| p.starts_with(&self.pending[i..])) =>
            {
                i
            }
            _ => self.pending.len(),
        };
        let ready: String = self.pending.drain(..hold).collect();
        self.vault.restore(&ready)
    }

    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        self.vault.restore(&rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_streaming() {
        let mut v = Vault::new();
        let a = v.placeholder("EMAIL", "a@example.com");
        let b = v.placeholder("EMAIL", "b@example.com");
        assert_eq!(v.placeholder("EMAIL", "a@example.com"), a);
        assert_eq!((a.as_str(), b.as_str()), ("[EMAIL_1]", "[EMAIL_2]"));
        let answer = "Write to [EMAIL_1] and cc [EMAIL_2]; [not a placeholder].";
        let restored = "Write to a@example.com and cc b@example.com; [not a placeholder].";
        assert_eq!(v.restore(answer), restored);
        for split in 1..answer.len() {
            if !answer.is_char_boundary(split) {
                continue;
            }
            let mut s = v.stream();
            let mut got = s.push(&answer[..split]);
            got += &s.push(&answer[split..]);
            got += &s.finish();
            assert_eq!(got, restored, "split at {split}");
        }
        assert_eq!(format!("{v:?}"), r#"["[EMAIL_1]", "[EMAIL_2]"]"#);
    }
}
