//! GGUF (llama.cpp) header and metadata. The format holds no code, but its chat template is a
//! Jinja2 program that many runtimes render with a full Jinja2 engine: template-injection
//! constructs there run code on the serving host (CVE-2024-34359 and its kin).

/// Largest metadata string read (chat templates are tens of KiB).
const MAX_STRING: u64 = 16 << 20;
/// Largest number of metadata entries and array items walked.
const MAX_ITEMS: u64 = 10_000_000;

pub struct GgufMeta {
    /// `(key, template)` for every chat-template key.
    pub templates: Vec<(String, String)>,
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: u64) -> Result<&[u8], String> {
        let n = usize::try_from(n).map_err(|_| "length out of range".to_string())?;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or("declared length runs past the end of the file")?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u64()?;
        if n > MAX_STRING {
            return Err(format!("string of {n} bytes exceeds the limit"));
        }
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
    fn skip_value(&mut self, ty: u32, depth: usize) -> Result<Option<String>, String> {
        let fixed = match ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            8 => return self.string().map(Some),
            9 => {
                if depth > 4 {
                    return Err("arrays nested too deep".into());
                }
                let inner = self.u32()?;
                let count = self.u64()?;
                if count > MAX_ITEMS {
                    return Err(format!("array of {count} items exceeds the limit"));
                }
                for _ in 0..count {
                    self.skip_value(inner, depth + 1)?;
                }
                return Ok(None);
            }
            other => return Err(format!("unknown metadata value type {other}")),
        };
        self.take(fixed)?;
        Ok(None)
    }
}

pub fn parse(data: &[u8]) -> Result<GgufMeta, String> {
    let mut r = Reader { data, pos: 4 };
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(format!("GGUF version {version} is not supported"));
    }
    let _tensor_count = r.u64()?;
    let kv = r.u64()?;
    if kv > MAX_ITEMS {
        return Err(format!("{kv} metadata entries exceed the limit"));
    }
    let mut templates = Vec::new();
    for _ in 0..kv {
        let key = r.string()?;
        let ty = r.u32()?;
        if let Some(value) = r.skip_value(ty, 0)?
            && key.starts_with("tokenizer.chat_template")
        {
            templates.push((key, value));
        }
    }
    Ok(GgufMeta { templates })
}

/// Jinja2 constructs that reach Python internals from a sandbox-less renderer.
const INJECTION_MARKERS: &[&str] = &[
    "__class__",
    "__mro__",
    "__subclasses__",
    "__globals__",
    "__builtins__",
    "__import__",
    "__init__",
    "__base__",
    "__bases__",
    "__dict__",
    "__getattribute__",
    "__reduce__",
    "\\x5f\\x5f",
    "\\u005f\\u005f",
    "|attr(",
    "| attr(",
    "lipsum",
    "cycler",
    "joiner",
    "os.popen",
    "popen(",
    "subprocess",
    "eval(",
    "exec(",
    "import os",
    "self._TemplateReference",
    "request.application",
    "config.items",
    "get_flashed_messages",
    "url_for.",
];

/// Injection constructs found in a template, as (marker, byte offset).
pub fn injection_markers(template: &str) -> Vec<(&'static str, usize)> {
    let lower = template.to_ascii_lowercase();
    let mut found: Vec<(&'static str, usize)> = INJECTION_MARKERS
        .iter()
        .filter_map(|m| lower.find(&m.to_ascii_lowercase()).map(|i| (*m, i)))
        .collect();
    found.sort_by_key(|f| f.1);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gguf(template: &str) -> Vec<u8> {
        let mut d = b"GGUF".to_vec();
        d.extend_from_slice(&3u32.to_le_bytes());
        d.extend_from_slice(&0u64.to_le_bytes());
        d.extend_from_slice(&2u64.to_le_bytes());
        let kv = |d: &mut Vec<u8>, k: &str, ty: u32| {
            d.extend_from_slice(&(k.len() as u64).to_le_bytes());
            d.extend_from_slice(k.as_bytes());
            d.extend_from_slice(&ty.to_le_bytes());
        };
        kv(&mut d, "general.architecture", 8);
        d.extend_from_slice(&5u64.to_le_bytes());
        d.extend_from_slice(b"llama");
        kv(&mut d, "tokenizer.chat_template", 8);
        d.extend_from_slice(&(template.len() as u64).to_le_bytes());
        d.extend_from_slice(template.as_bytes());
        d
    }

    #[test]
    fn reads_templates_and_finds_injection() {
        let benign = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}";
        let meta = parse(&gguf(benign)).unwrap();
        assert_eq!(meta.templates.len(), 1);
        assert!(injection_markers(&meta.templates[0].1).is_empty());
        let evil =
            "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}";
        let found = injection_markers(&parse(&gguf(evil)).unwrap().templates[0].1);
        assert!(found.iter().any(|f| f.0 == "__globals__"));
    }

    #[test]
    fn lying_lengths_are_errors() {
        let mut d = gguf("x");
        d.truncate(d.len() - 1);
        assert!(parse(&d).is_err());
        let mut huge = b"GGUF".to_vec();
        huge.extend_from_slice(&3u32.to_le_bytes());
        huge.extend_from_slice(&0u64.to_le_bytes());
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse(&huge).is_err());
    }
}
