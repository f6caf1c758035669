//! `code`: executable content in a response — code blocks, SQL, shell commands.
//!
//! Applications that pass model output to an interpreter, a database or a shell (agents,
//! text-to-SQL, "run this" buttons) must not receive destructive statements; chat products may
//! want to flag or forbid code altogether. Dangerous constructs (`DROP TABLE`, `rm -rf /`,
//! `curl … | sh`, reverse shells, `eval`) are high severity.

use std::sync::LazyLock;

use regex::{Regex, RegexSet};
use serde::Deserialize;

use crate::detector::{Detector, Finding, ScanInput, Severity, Span, excerpt, parse_config};
use crate::error::{GuardError, Result};
use crate::registry::{BOTH, DetectorInfo};

pub const INFO: DetectorInfo = DetectorInfo {
    id: "code",
    name: "Code, SQL and shell",
    directions: BOTH,
    summary: "Fenced code blocks and code-like lines, SQL statements (destructive ones high severity) and shell commands (destructive or remote-execution ones high severity) in responses that downstream systems might execute.",
    false_positives: "Prose that explains SQL or shell quoting a command is reported: use `dangerous_only` where explanations are expected and only destructive statements matter.",
    references: &[
        "OWASP LLM05:2025 Improper Output Handling",
        "OWASP LLM06:2025 Excessive Agency",
        "AML.T0050 Command and Scripting Interpreter",
        "AML.M0020 Generative AI Guardrails",
    ],
    eval_label: Some("code"),
    build: |v| {
        let config: Config = parse_config(INFO.id, v)?;
        for k in &config.kinds {
            if !["code", "sql", "shell"].contains(&k.as_str()) {
                return Err(GuardError::Config(format!(
                    "detector code: unknown kind {k:?} (code, sql, shell)"
                )));
            }
        }
        Ok(Box::new(Code { config }))
    },
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub kinds: Vec<String>,
    /// Report only destructive or remote-execution constructs.
    pub dangerous_only: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            kinds: vec!["code".into(), "sql".into(), "shell".into()],
            dangerous_only: false,
        }
    }
}

pub struct Code {
    config: Config,
}

static FENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^[ \t]*(?:```|~~~)[ \t]*([A-Za-z0-9_+\-]*)").expect("static regex")
});
static SQL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is-u)\b(?:select\s+(?:distinct\s+)?[\w*,.\s()`\x22]{1,200}?\s+from\s+[\w.`\x22]+|insert\s+into\s+[\w.`\x22]+|update\s+[\w.`\x22]+\s+set\s+\w+\s*=|delete\s+from\s+[\w.`\x22]+|drop\s+(?:table|database|schema|view|index|user)\b|truncate\s+(?:table\s+)?[\w.`\x22]+|alter\s+table\s+[\w.`\x22]+|create\s+(?:table|database|user|index)\s+[\w.`\x22]+|grant\s+\w+(?:\s*,\s*\w+)*\s+on\s+|union\s+(?:all\s+)?select\b|exec(?:ute)?\s+(?:xp_|sp_)\w+)").expect("static regex")
});
static SQL_DANGER: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        r"(?i)\bdrop\s+(?:table|database|schema|user)\b",
        r"(?i)\btruncate\s+(?:table\s+)?\w",
        r"(?i)\bdelete\s+from\s+[\w.`\x22]+\s*(?:;|$|--)",
        r"(?i)\bupdate\s+[\w.`\x22]+\s+set\s+[^;]{1,200}?(?:;|$)",
        r"(?i)\bgrant\s+all\b",
        r"(?i)\bunion\s+(?:all\s+)?select\b",
        r"(?i)\bxp_cmdshell\b",
        r"(?i)'\s*or\s+'?1'?\s*=\s*'?1",
        r"(?i);\s*--",
    ])
    .expect("static regex set")
});
static SHELL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)(?:^|[`$>]\s*|\n\s*)(?:sudo\s+)?(?:rm|curl|wget|chmod|chown|dd|mkfs|nc|ncat|netcat|bash|sh|zsh|powershell|pwsh|python3?|perl|ruby|php|ssh|scp|kill|pkill|systemctl|crontab|iptables|apt(?:-get)?|yum|pip3?|npm|git|docker|kubectl|echo|export|cat|ls|cd|mv|cp|tar|find|grep|sed|awk)\s+[^\n]{1,200}").expect("static regex")
});
static SHELL_DANGER: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        r"\brm\s+-[a-zA-Z]*[rf][a-zA-Z]*\s+(?:--no-preserve-root\s+)?(?:/|~|\*|\$HOME)",
        r"\b(?:curl|wget)\b[^\n|]{0,200}\|\s*(?:sudo\s+)?(?:ba|z|k)?sh\b",
        r"\b(?:curl|wget)\b[^\n|]{0,200}\|\s*(?:sudo\s+)?python",
        r"/dev/tcp/",
        r"\b(?:nc|ncat|netcat)\b[^\n]{0,80}\s-[a-z]*e\s",
        r"\bmkfifo\b",
        r"\bdd\s+if=[^\n]{0,80}of=/dev/",
        r"\bmkfs(?:\.\w+)?\s+/dev/",
        r":\(\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:",
        r"(?i)\bpowershell(?:\.exe)?\b[^\n]{0,80}-(?:e|enc|encodedcommand)\b",
        r"(?i)\bInvoke-Expression\b|\biex\s*\(",
        r"\bchmod\s+(?:-R\s+)?(?:777|\+s|u\+s)\b",
        r">\s*/etc/(?:passwd|shadow|sudoers)",
        r"\bbase64\s+(?:-d|--decode)\b[^\n]{0,80}\|\s*(?:ba)?sh",
    ])
    .expect("static regex set")
});
static CODE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^[ \t]*(?:def \w+\(|class \w+[(:]|import \w|from \w[\w.]* import|function \w+\(|const \w+ ?=|let \w+ ?=|var \w+ ?=|fn \w+\(|pub fn |public (?:static )?\w+|#include ?<|package \w|func \w+\(|eval\(|exec\(|os\.system\(|subprocess\.\w+\(|__import__\(|Runtime\.getRuntime\(\))").expect("static regex")
});
static CODE_DANGER: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        r"\bos\.system\(",
        r"\bsubprocess\.(?:call|run|Popen|check_output)\(",
        r"\b(?:eval|exec)\(\s*(?:input|request|base64|compile|__import__|open)",
        r"__import__\(\s*['\x22]os['\x22]\s*\)",
        r"\bpickle\.loads?\(",
        r"Runtime\.getRuntime\(\)\.exec\(",
        r"\bchild_process\b",
        r"\bshutil\.rmtree\(\s*['\x22]/",
    ])
    .expect("static regex set")
});

impl Code {
    fn wants(&self, k: &str) -> bool {
        self.config.kinds.iter().any(|x| x == k)
    }
}

impl Detector for Code {
    fn id(&self) -> &'static str {
        INFO.id
    }

    fn scan(&self, input: &ScanInput<'_>, out: &mut Vec<Finding>) -> Result<()> {
        let text = input.text;
        let mut emit = |kind: &str, m: regex::Match<'_>, dangerous: bool| {
            if self.config.dangerous_only && !dangerous {
                return;
            }
            let severity = if dangerous {
                Severity::High
            } else {
                Severity::Low
            };
            let mut f = Finding::new(
                INFO.id,
                kind,
                Some(Span::new(m.start(), m.end())),
                severity,
                excerpt(m.as_str(), 80),
            );
            f.score = if dangerous { 1.0 } else { 0.6 };
            out.push(f);
        };
        if self.wants("sql")
            && let Some(m) = SQL.find(text)
        {
            emit("sql", m, SQL_DANGER.is_match(text));
        }
        if self.wants("shell") {
            let danger = SHELL_DANGER.is_match(text);
            if let Some(m) = SHELL.find(text) {
                emit("shell", m, danger);
            } else if danger && let Some(m) = Regex::new(r"[^\n]+").expect("static").find(text) {
                emit("shell", m, true);
            }
        }
        if self.wants("code") {
            let danger = CODE_DANGER.is_match(text);
            if let Some(m) = FENCE.find(text).or_else(|| CODE_LINE.find(text)) {
                emit("code", m, danger);
            }
        }
        Ok(())
    }
}
