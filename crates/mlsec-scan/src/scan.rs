//! Format detection by content and the recursive scan of containers.

use serde::Serialize;

use crate::finding::{Finding, Severity};
use crate::pickle::{Limits, scan_pickle};
use crate::policy::Policy;
use crate::{safetensors, zip};

/// Everything a scan needs besides the bytes.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub policy: Policy,
    pub limits: Limits,
    /// Largest decompressed size of one archive member or compressed stream.
    pub max_member_bytes: u64,
    /// Archives and compressed streams nested deeper than this are not opened.
    pub max_depth: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            policy: Policy::default_policy(),
            limits: Limits::default(),
            max_member_bytes: 4 << 30,
            max_depth: 6,
        }
    }
}

/// Whether a file's content was examined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum Coverage {
    /// Every part of the content that can run code was examined.
    Scanned,
    /// A format that was recognised (or not) but cannot be examined: never reported as clean.
    NotScanned(String),
    /// Examined in part: the content is damaged or a limit stopped the scan.
    Partial(String),
}

/// The result for one file.
#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    /// The outermost format, by content.
    pub format: &'static str,
    pub coverage: Coverage,
    pub findings: Vec<Finding>,
    /// Globals named by the pickles inside, as `module.name`.
    pub globals: Vec<String>,
}

impl ScanReport {
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

struct Ctx<'a> {
    options: &'a ScanOptions,
    findings: Vec<Finding>,
    globals: Vec<String>,
    not_scanned: Vec<String>,
    partial: Vec<String>,
}

impl Ctx<'_> {
    fn add(
        &mut self,
        rule: &'static str,
        severity: Severity,
        message: String,
        member: &str,
        offset: u64,
    ) {
        self.findings.push(Finding {
            rule,
            severity,
            message,
            offset,
            member: member.to_owned(),
        });
    }
}

/// Detects the format of `data` from its bytes.
pub fn detect(data: &[u8]) -> &'static str {
    if zip::is_zip(data) {
        "zip"
    } else if data.starts_with(b"\x93NUMPY") {
        "npy"
    } else if data.starts_with(&[0x1f, 0x8b]) {
        "gzip"
    } else if data.starts_with(b"BZh") {
        "bzip2"
    } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        "xz"
    } else if data.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
        "lz4"
    } else if data.starts_with(b"SQLite format 3\0") {
        "sqlite"
    } else if data.starts_with(b"GGUF") {
        "gguf"
    } else if data.starts_with(b"\x89HDF\r\n\x1a\n") {
        "hdf5"
    } else if data.len() > 262 && &data[257..262] == b"ustar" {
        "tar"
    } else if matches!(data, [0x80, 2..=5, ..]) {
        "pickle"
    } else if safetensors::looks_like(data) {
        "safetensors"
    } else if matches!(data, [0x78, 0x01 | 0x5e | 0x9c | 0xda, ..]) {
        "zlib"
    } else if crate::onnx::looks_like_onnx(data) {
        "onnx"
    } else if crate::onnx::looks_like_saved_model(data) {
        "tf-savedmodel"
    } else if looks_like_old_pickle(data) {
        "pickle"
    } else if is_plain_text(data) {
        "text"
    } else {
        "unknown"
    }
}

/// Printable UTF-8 (small metadata files inside archives: `version`, `byteorder`).
fn is_plain_text(data: &[u8]) -> bool {
    data.len() <= 1 << 20
        && std::str::from_utf8(data).is_ok_and(|t| {
            t.chars()
                .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
        })
}

/// Protocol 0/1 pickles have no header; they start with one of a few opcodes. Whether the rest
/// is a pickle is decided by trying (see the `pickle` case of `scan_inner`).
fn looks_like_old_pickle(data: &[u8]) -> bool {
    matches!(
        data.first(),
        Some(
            b'(' | b'c'
                | b'}'
                | b']'
                | b')'
                | b'N'
                | b'I'
                | b'S'
                | b'V'
                | b'K'
                | b'J'
                | b'U'
                | b'X'
                | b'q'
        )
    )
}

/// Scans one file's bytes.
pub fn scan_bytes(data: &[u8], options: &ScanOptions) -> ScanReport {
    let mut ctx = Ctx {
        options,
        findings: Vec::new(),
        globals: Vec::new(),
        not_scanned: Vec::new(),
        partial: Vec::new(),
    };
    let format = detect(data);
    scan_inner(&mut ctx, data, "", 0);
    let coverage = if let Some(reason) = ctx
        .not_scanned
        .first()
        .filter(|_| ctx.findings.is_empty() && format != "zip")
    {
        Coverage::NotScanned(reason.clone())
    } else if !ctx.partial.is_empty() || !ctx.not_scanned.is_empty() {
        Coverage::Partial(
            ctx.partial
                .iter()
                .chain(&ctx.not_scanned)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
        )
    } else {
        Coverage::Scanned
    };
    ctx.globals.sort();
    ctx.globals.dedup();
    ScanReport {
        format,
        coverage,
        findings: ctx.findings,
        globals: ctx.globals,
    }
}

fn scan_inner(ctx: &mut Ctx<'_>, data: &[u8], member: &str, depth: usize) {
    if depth > ctx.options.max_depth {
        ctx.add(
            "ARC002",
            Severity::High,
            format!(
                "nested deeper than {} levels; not opened",
                ctx.options.max_depth
            ),
            member,
            0,
        );
        ctx.partial.push(format!("`{member}` nested too deep"));
        return;
    }
    let label = |m: &str| {
        if m.is_empty() {
            "file".to_owned()
        } else {
            format!("`{m}`")
        }
    };
    let format = detect(data);
    if format != "zip" && zip::has_central_directory(data) {
        // A polyglot: read from the start it is one format, opened from the end it is an archive.
        ctx.add(
            "ARC003",
            Severity::High,
            format!("{format} content that is also a ZIP archive (central directory at the end): loaders that open ZIPs from the end see other content"),
            member,
            0,
        );
        scan_zip(ctx, data, member, depth);
    }
    match format {
        "pickle" => {
            let report = scan_pickle(data, &ctx.options.policy, &ctx.options.limits);
            // Protocol 0/1 pickles have no header, so text-like files can look like one. A
            // headerless stream that reaches no STOP and yields nothing but its own malformation
            // is not a pickle (pickle.load would fail on it before doing anything).
            let headerless = !matches!(data, [0x80, ..]);
            if headerless
                && report.pickles == 0
                && report.findings.iter().all(|f| f.rule == "PKL008")
            {
                ctx.not_scanned
                    .push(format!("{}: unknown format", label(member)));
            } else {
                record_pickle(ctx, report, member);
            }
        }
        "zip" => scan_zip(ctx, data, member, depth),
        "npy" => scan_npy(ctx, data, member, depth),
        "gzip" => match gunzip(data, ctx.options.max_member_bytes) {
            Ok(inner) => scan_inner(ctx, &inner, &format!("{member}|gunzip"), depth + 1),
            Err(e) => {
                ctx.add(
                    "ARC001",
                    Severity::Warning,
                    format!("gzip stream could not be read: {e}"),
                    member,
                    0,
                );
                ctx.partial.push(format!("{} gzip damaged", label(member)));
            }
        },
        "zlib" => match miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(
            data,
            usize::try_from(ctx.options.max_member_bytes).unwrap_or(usize::MAX),
        ) {
            Ok(inner) => scan_inner(ctx, &inner, &format!("{member}|zlib"), depth + 1),
            Err(_) => {
                // Not every file starting with 0x78 is zlib; an undecodable one is unknown.
                ctx.not_scanned
                    .push(format!("{}: unknown format", label(member)));
            }
        },
        "safetensors" => {
            for (message, offset) in safetensors::validate(data) {
                ctx.add("SFT001", Severity::High, message, member, offset);
            }
        }
        "bzip2" | "xz" | "lz4" => {
            let what = format;
            match decompress(what, data, ctx.options.max_member_bytes) {
                Ok(inner) => scan_inner(ctx, &inner, &format!("{member}|{what}"), depth + 1),
                Err(e) => {
                    ctx.add(
                        "ARC001",
                        Severity::Warning,
                        format!("{what} stream could not be read: {e}"),
                        member,
                        0,
                    );
                    ctx.partial
                        .push(format!("{} {what} damaged", label(member)));
                }
            }
        }
        "onnx" | "tf-savedmodel" => {
            let found = if format == "onnx" {
                crate::onnx::check_onnx(data)
            } else {
                crate::onnx::check_saved_model(data)
            };
            for f in found {
                ctx.add(
                    f.rule,
                    if f.high {
                        Severity::High
                    } else {
                        Severity::Warning
                    },
                    f.message,
                    member,
                    0,
                );
            }
        }
        "text" => {
            // Plain text is data: nothing in it is loaded as code by the formats scanned here.
        }
        "gguf" => match crate::gguf::parse(data) {
            Ok(meta) => {
                for (key, template) in &meta.templates {
                    let markers = crate::gguf::injection_markers(template);
                    if let Some((first, offset)) = markers.first() {
                        let all: Vec<&str> = markers.iter().map(|m| m.0).collect();
                        ctx.add(
                            "GGUF001",
                            Severity::Critical,
                            format!("chat template `{key}` contains template-injection constructs ({}); first `{first}` at template byte {offset}", all.join(", ")),
                            member,
                            0,
                        );
                    }
                }
            }
            Err(e) => {
                ctx.add(
                    "GGUF002",
                    Severity::Warning,
                    format!("GGUF header could not be read: {e}"),
                    member,
                    0,
                );
                ctx.partial
                    .push(format!("{}: GGUF header unreadable", label(member)));
            }
        },
        "hdf5" => {
            let configs = crate::keras::configs_in_hdf5(data);
            for config in &configs {
                keras_findings(ctx, config, member);
            }
            // Without a model config an HDF5 file holds weights only, which Keras loads as
            // numbers. The config is found by content (Keras stores it as a JSON attribute), not by
            // parsing HDF5.
        }
        "sqlite" => ctx.not_scanned.push(format!(
            "{}: a SQLite database, not a model format",
            label(member)
        )),
        "tar" => scan_tar(ctx, data, member, depth),
        _ => ctx
            .not_scanned
            .push(format!("{}: unknown format", label(member))),
    }
}

fn keras_findings(ctx: &mut Ctx<'_>, config: &serde_json::Value, member: &str) {
    for f in crate::keras::check_config(config, &ctx.options.policy) {
        ctx.add(f.rule, f.severity, f.message, member, 0);
    }
}

fn scan_pickle_into(ctx: &mut Ctx<'_>, data: &[u8], member: &str) {
    let report = scan_pickle(data, &ctx.options.policy, &ctx.options.limits);
    record_pickle(ctx, report, member);
}

fn record_pickle(ctx: &mut Ctx<'_>, report: crate::pickle::PickleReport, member: &str) {
    for mut f in report.findings {
        f.member = member.to_owned();
        ctx.findings.push(f);
    }
    ctx.globals
        .extend(report.globals.into_iter().map(|(m, n)| format!("{m}.{n}")));
    if let Some(why) = report.incomplete {
        ctx.partial.push(if member.is_empty() {
            why
        } else {
            format!("`{member}`: {why}")
        });
    }
}

fn scan_zip(ctx: &mut Ctx<'_>, data: &[u8], member: &str, depth: usize) {
    let listing = zip::list(data);
    for (rule, message) in listing.problems {
        let severity = crate::rules::rule(rule)
            .map(|r| r.severity)
            .unwrap_or(Severity::Warning);
        ctx.add(rule, severity, message, member, 0);
    }
    // Keras 3 archives: config.json and metadata.json at the root describe what Keras imports.
    let is_keras = ["config.json", "metadata.json"]
        .iter()
        .all(|n| listing.members.iter().any(|m| m.name == *n));
    for m in &listing.members {
        if is_keras && (m.name == "config.json" || m.name == "metadata.json") {
            let path = if member.is_empty() {
                m.name.clone()
            } else {
                format!("{member}/{}", m.name)
            };
            match zip::read(data, m, ctx.options.max_member_bytes.min(256 << 20))
                .map(|b| serde_json::from_slice::<serde_json::Value>(&b))
            {
                Ok(Ok(config)) => keras_findings(ctx, &config, &path),
                Ok(Err(e)) => {
                    ctx.add(
                        "ARC001",
                        Severity::Warning,
                        format!("Keras `{}` is not valid JSON: {e}", m.name),
                        &path,
                        0,
                    );
                    ctx.partial.push(format!("`{path}` unreadable"));
                }
                Err(e) => unreadable(ctx, &path, &e, m.data_offset),
            }
            continue;
        }
        if m.name.ends_with('/') && m.uncompressed_size == 0 {
            continue; // directory entry
        }
        let path = if member.is_empty() {
            m.name.clone()
        } else {
            format!("{member}/{}", m.name)
        };
        // Tensor payloads in PyTorch archives (`archive/data/0`) are raw numbers: only their first
        // bytes are looked at, so a 1 GiB checkpoint costs a directory walk, not a read.
        let is_torch_storage =
            m.name.contains("/data/") && m.method == 0 && !m.name.ends_with(".pkl");
        if is_torch_storage {
            let start = m.data_offset as usize;
            let head = data
                .get(start..start.saturating_add(16).min(data.len()))
                .unwrap_or(&[]);
            if matches!(detect(head), "pickle" | "zip")
                && matches!(head, [0x80, 2..=5, ..] | [b'P', b'K', ..])
            {
                // A storage that is really a pickle or an archive: scan it whole.
            } else {
                continue;
            }
        }
        match zip::read(data, m, ctx.options.max_member_bytes) {
            Ok(bytes) => scan_inner(ctx, &bytes, &path, depth + 1),
            Err(e) => unreadable(ctx, &path, &e, m.data_offset),
        }
    }
}

/// ustar/GNU tar (legacy `torch.save` before 1.6 wrote `sys_info`, `pickle`, `storages`,
/// `tensors`): every regular member is scanned by content.
fn scan_tar(ctx: &mut Ctx<'_>, data: &[u8], member: &str, depth: usize) {
    let mut at = 0usize;
    let mut long_name: Option<String> = None;
    let mut count = 0usize;
    while at + 512 <= data.len() && count < zip::MAX_MEMBERS {
        let header = &data[at..at + 512];
        if header.iter().all(|&b| b == 0) {
            return;
        }
        let field = |from: usize, len: usize| {
            let raw = &header[from..from + len];
            let end = raw.iter().position(|&b| b == 0).unwrap_or(len);
            String::from_utf8_lossy(&raw[..end]).into_owned()
        };
        let Some(size) = u64::from_str_radix(field(124, 12).trim(), 8).ok() else {
            ctx.add(
                "ARC001",
                Severity::Warning,
                format!("tar header at byte {at} has no valid size"),
                member,
                at as u64,
            );
            ctx.partial.push(format!(
                "{} tar damaged",
                if member.is_empty() { "file" } else { member }
            ));
            return;
        };
        let typeflag = header[156];
        let prefix = field(345, 155);
        let name = long_name.take().unwrap_or_else(|| {
            if prefix.is_empty() {
                field(0, 100)
            } else {
                format!("{prefix}/{}", field(0, 100))
            }
        });
        let start = at + 512;
        let Some(end) = usize::try_from(size)
            .ok()
            .and_then(|s| start.checked_add(s))
            .filter(|&e| e <= data.len())
        else {
            ctx.add(
                "ARC001",
                Severity::Warning,
                format!("tar member `{name}` runs past the end of the file"),
                member,
                at as u64,
            );
            ctx.partial.push(format!("`{name}` truncated"));
            return;
        };
        let body = &data[start..end];
        match typeflag {
            b'L' => {
                long_name = Some(
                    String::from_utf8_lossy(body)
                        .trim_end_matches('\0')
                        .to_owned(),
                )
            }
            b'0' | 0 | b'7' => {
                let path = if member.is_empty() {
                    name
                } else {
                    format!("{member}/{name}")
                };
                scan_inner(ctx, body, &path, depth + 1);
            }
            _ => {} // directories, links, PAX headers carry no content to load
        }
        count += 1;
        at = start + (size as usize).div_ceil(512) * 512;
    }
}

/// An archive member whose bytes cannot be had: a finding, and the scan is partial.
fn unreadable(ctx: &mut Ctx<'_>, path: &str, why: &str, offset: u64) {
    ctx.add(
        "ARC001",
        Severity::Warning,
        format!("member could not be read: {why}"),
        path,
        offset,
    );
    ctx.partial.push(format!("`{path}` unreadable"));
}

fn scan_npy(ctx: &mut Ctx<'_>, data: &[u8], member: &str, depth: usize) {
    let _ = depth;
    let (header_len, start) = match data.get(6) {
        Some(1) => (
            data.get(8..10)
                .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]]))),
            10usize,
        ),
        Some(2 | 3) => (
            data.get(8..12)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize),
            12,
        ),
        _ => (None, 0),
    };
    let Some(header) = header_len.and_then(|n| data.get(start..start.checked_add(n)?)) else {
        ctx.add(
            "NPY002",
            Severity::Warning,
            "header length or version is invalid".into(),
            member,
            6,
        );
        ctx.partial.push("npy header unreadable".into());
        return;
    };
    let header = String::from_utf8_lossy(header);
    let object = header.contains("'descr': '|O'") || header.contains("\"descr\": \"|O\"");
    if object {
        ctx.add(
            "NPY001",
            Severity::Warning,
            "array of dtype object: its data is a pickle".into(),
            member,
            0,
        );
        let body = &data[start + header_len.unwrap_or(0)..];
        scan_pickle_into(ctx, body, member);
    }
}

/// Decompresses the other wrappers joblib writes (bz2, xz, lz4 frames), stopping past `limit`.
fn decompress(what: &str, data: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::new();
    let too_big = || format!("decompresses to more than {limit} bytes");
    match what {
        "bzip2" => {
            bzip2::read::BzDecoder::new(data)
                .take(limit + 1)
                .read_to_end(&mut out)
                .map_err(|e| e.to_string())?;
        }
        "lz4" => {
            lz4_flex::frame::FrameDecoder::new(data)
                .take(limit + 1)
                .read_to_end(&mut out)
                .map_err(|e| e.to_string())?;
        }
        "xz" => {
            let mut sink = LimitedSink {
                out: &mut out,
                limit,
            };
            lzma_rs::xz_decompress(&mut std::io::BufReader::new(data), &mut sink)
                .map_err(|e| e.to_string())?;
        }
        other => return Err(format!("{other} is not a compression format")),
    }
    if out.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(out)
}

/// A writer that refuses to grow past its limit (the xz decoder writes wherever it is told).
struct LimitedSink<'a> {
    out: &'a mut Vec<u8>,
    limit: u64,
}

impl std::io::Write for LimitedSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() as u64 + buf.len() as u64 > self.limit {
            return Err(std::io::Error::other(format!(
                "decompresses to more than {} bytes",
                self.limit
            )));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn gunzip(data: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    // RFC 1952 header: magic, method, flags, mtime, xfl, os, then optional fields.
    if data.len() < 18 || data[2] != 8 {
        return Err("not a deflate gzip stream".into());
    }
    let flags = data[3];
    let mut at = 10usize;
    if flags & 0x04 != 0 {
        let xlen = usize::from(u16::from_le_bytes([
            *data.get(at).ok_or("truncated")?,
            *data.get(at + 1).ok_or("truncated")?,
        ]));
        at += 2 + xlen;
    }
    for bit in [0x08u8, 0x10] {
        if flags & bit != 0 {
            let end = data
                .get(at..)
                .and_then(|r| r.iter().position(|&b| b == 0))
                .ok_or("truncated header")?;
            at += end + 1;
        }
    }
    if flags & 0x02 != 0 {
        at += 2;
    }
    let body = data.get(at..).ok_or("truncated header")?;
    miniz_oxide::inflate::decompress_to_vec_with_limit(
        body,
        usize::try_from(limit).unwrap_or(usize::MAX),
    )
    .map_err(|e| match e.status {
        miniz_oxide::inflate::TINFLStatus::HasMoreOutput => {
            format!("decompresses to more than {limit} bytes")
        }
        other => format!("damaged ({other:?})"),
    })
}
