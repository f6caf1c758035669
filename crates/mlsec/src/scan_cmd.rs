//! `mlsec scan`: walks files and directories, scans each in parallel through a memory map, and
//! prints text, JSON or SARIF 2.1.0.
//!
//! Exit codes: 0 clean; 1 findings at or above the threshold; 3 some file could only be partly
//! scanned (damaged, limits, I/O) and nothing failed; 4 some file was not scanned at all (a format
//! that cannot be examined) and nothing else failed. Findings always win: a scan error never
//! hides a finding.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mlsec_scan::{Coverage, Finding, Policy, RULES, ScanOptions, ScanReport, Severity, scan_bytes};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::commands::CliError;

/// Arguments of `mlsec scan` (its help text is on the `Scan` command in `main.rs`).
#[derive(clap::Args)]
pub struct ScanArgs {
    /// Files or directories (scanned recursively; symbolic links are not followed).
    pub paths: Vec<PathBuf>,
    /// Output: `text`, `json` or `sarif`.
    #[arg(long, default_value = "text")]
    pub format: String,
    /// Fail on warnings too (globals not on the allow-list).
    #[arg(long)]
    pub strict: bool,
    /// Lowest severity that fails the scan: info, warning, high, critical.
    #[arg(long, default_value = "high")]
    pub fail_on: String,
    /// Drop findings of this rule id (repeatable).
    #[arg(long)]
    pub suppress: Vec<String>,
    /// Extra policy entries (TOML with [[allow]] / [[deny]]).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Write the report here instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Do not fail because some file's format cannot be examined.
    #[arg(long)]
    pub allow_unscanned: bool,
}

#[derive(Serialize)]
struct FileResult {
    path: String,
    format: &'static str,
    #[serde(flatten)]
    coverage: Coverage,
    findings: Vec<Finding>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    globals: Vec<String>,
}

fn parse_severity(text: &str) -> Result<Severity, CliError> {
    Ok(match text {
        "info" => Severity::Info,
        "warning" => Severity::Warning,
        "high" => Severity::High,
        "critical" => Severity::Critical,
        other => {
            return Err(CliError::Usage(format!(
                "`--fail-on` must be info, warning, high or critical, got `{other}`"
            )));
        }
    })
}

/// Files under the given paths; symbolic links are not followed (a link out of a model directory
/// is reported, not read).
fn collect(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<String>), CliError> {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| CliError::Usage(format!("cannot read `{}`: {e}", path.display())))?;
        if meta.file_type().is_symlink() {
            skipped.push(format!("{}: symbolic link not followed", path.display()));
        } else if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&path)
                .map_err(|e| CliError::Runtime(format!("cannot list `{}`: {e}", path.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.file_name().is_none_or(|n| n != ".git"))
                .collect();
            entries.sort();
            stack.extend(entries.into_iter().rev());
        } else if meta.is_file() {
            files.push(path);
        }
    }
    Ok((files, skipped))
}

fn scan_file(path: &Path, options: &ScanOptions) -> ScanReport {
    let fail = |why: String| ScanReport {
        format: "unknown",
        coverage: Coverage::Partial(why),
        findings: Vec::new(),
        globals: Vec::new(),
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot open: {e}")),
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return scan_bytes(&[], options);
    }
    // SAFETY: the map is read-only and private; if another process truncates the file while we
    // scan, reads fault — model files are not modified in place by the tools that write them.
    match unsafe { memmap2::Mmap::map(&file) } {
        Ok(map) => scan_bytes(&map, options),
        Err(e) => fail(format!("cannot map: {e}")),
    }
}

pub fn run(args: ScanArgs) -> Result<ExitCode, CliError> {
    if args.paths.is_empty() {
        return Err(CliError::Usage(
            "name at least one file or directory to scan".into(),
        ));
    }
    let threshold = if args.strict {
        Severity::Warning
    } else {
        parse_severity(&args.fail_on)?
    };
    let mut policy = Policy::default_policy();
    if let Some(path) = &args.policy {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::Usage(format!("cannot read policy `{}`: {e}", path.display()))
        })?;
        policy
            .extend_from_toml(&text)
            .map_err(|e| CliError::Usage(format!("`{}`: {e}", path.display())))?;
    }
    for rule in &args.suppress {
        if mlsec_scan::rules::rule(rule).is_none() {
            return Err(CliError::Usage(format!(
                "`--suppress {rule}`: no such rule"
            )));
        }
    }
    let options = ScanOptions {
        policy,
        ..ScanOptions::default()
    };
    let (files, skipped) = collect(&args.paths)?;
    // A progress bar on an interactive terminal only; CI logs stay clean.
    let progress = if std::io::IsTerminal::is_terminal(&std::io::stderr()) && files.len() > 1 {
        let bar = indicatif::ProgressBar::new(files.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} scanning {pos}/{len} files {wide_bar} {eta}",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut results: Vec<FileResult> = files
        .par_iter()
        .map(|path| {
            let report = scan_file(path, &options);
            progress.inc(1);
            FileResult {
                path: path.display().to_string(),
                format: report.format,
                coverage: report.coverage,
                findings: report
                    .findings
                    .into_iter()
                    .filter(|f| !args.suppress.iter().any(|s| s == f.rule))
                    .collect(),
                globals: report.globals,
            }
        })
        .collect();
    progress.finish_and_clear();
    results.sort_by(|a, b| a.path.cmp(&b.path));

    let rendered = match args.format.as_str() {
        "text" => text(&results, &skipped, threshold),
        "json" => serde_json::to_string_pretty(&json!({ "files": results, "skipped": skipped }))
            .expect("results serialise"),
        "sarif" => serde_json::to_string_pretty(&sarif(&results)).expect("sarif serialises"),
        other => {
            return Err(CliError::Usage(format!(
                "`--format` must be text, json or sarif, got `{other}`"
            )));
        }
    };
    match &args.output {
        Some(path) => std::fs::write(path, rendered + "\n")
            .map_err(|e| CliError::Runtime(format!("cannot write `{}`: {e}", path.display())))?,
        None => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{rendered}");
        }
    }

    let failing = results
        .iter()
        .any(|r| r.findings.iter().any(|f| f.severity >= threshold));
    let partial = results
        .iter()
        .any(|r| matches!(r.coverage, Coverage::Partial(_)));
    let unscanned = results
        .iter()
        .any(|r| matches!(r.coverage, Coverage::NotScanned(_)));
    Ok(if failing {
        ExitCode::from(1)
    } else if partial {
        ExitCode::from(3)
    } else if results.is_empty() || (unscanned && !args.allow_unscanned) {
        ExitCode::from(4)
    } else {
        ExitCode::SUCCESS
    })
}

fn text(results: &[FileResult], skipped: &[String], threshold: Severity) -> String {
    let mut out = String::new();
    let (mut clean, mut failing, mut other) = (0, 0, 0);
    for r in results {
        let status = match &r.coverage {
            Coverage::Scanned => String::new(),
            Coverage::NotScanned(why) => format!("  NOT SCANNED: {why}"),
            Coverage::Partial(why) => format!("  INCOMPLETE: {why}"),
        };
        if r.findings.is_empty() && status.is_empty() {
            clean += 1;
            continue;
        }
        if r.findings.iter().any(|f| f.severity >= threshold) {
            failing += 1;
        } else {
            other += 1;
        }
        out.push_str(&format!("{} [{}]{status}\n", r.path, r.format));
        for f in &r.findings {
            let member = if f.member.is_empty() {
                String::new()
            } else {
                format!(" in {}", f.member)
            };
            out.push_str(&format!(
                "  {:<8} {} {}{member} @{}\n",
                f.severity.as_str(),
                f.rule,
                f.message,
                f.offset
            ));
        }
    }
    for s in skipped {
        out.push_str(&format!("skipped: {s}\n"));
    }
    out.push_str(&format!(
        "{} files: {clean} clean, {failing} failing (threshold {}), {other} with lesser findings or incomplete",
        results.len(),
        threshold.as_str()
    ));
    out
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

fn sarif(results: &[FileResult]) -> serde_json::Value {
    let rules: Vec<_> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.title,
                "shortDescription": { "text": r.title },
                "fullDescription": { "text": r.description },
                "defaultConfiguration": { "level": sarif_level(r.severity) },
                "properties": { "security-severity": match r.severity {
                    Severity::Critical => "9.8", Severity::High => "8.0", Severity::Warning => "5.0", Severity::Info => "1.0" },
                    "tags": ["security", mlsec_scan::rules::ATLAS_UNSAFE_ARTIFACTS] },
            })
        })
        .collect();
    let mut out = Vec::new();
    for r in results {
        for f in &r.findings {
            let rule_index = RULES.iter().position(|d| d.id == f.rule);
            // Offsets inside an archive member are not offsets in the file: give a region only
            // for top-level findings, and name the member as a logical location.
            let mut location = if f.member.is_empty() {
                json!({ "physicalLocation": {
                    "artifactLocation": { "uri": r.path },
                    "region": { "byteOffset": f.offset },
                }})
            } else {
                json!({ "physicalLocation": { "artifactLocation": { "uri": r.path } } })
            };
            if !f.member.is_empty() {
                location["logicalLocations"] =
                    json!([{ "fullyQualifiedName": f.member, "kind": "member" }]);
            }
            out.push(json!({
                "ruleId": f.rule,
                "ruleIndex": rule_index,
                "level": sarif_level(f.severity),
                "message": { "text": f.message },
                "locations": [location],
                "properties": { "severity": f.severity.as_str() },
            }));
        }
    }
    let not_scanned: Vec<_> = results
        .iter()
        .filter_map(|r| match &r.coverage {
            Coverage::Scanned => None,
            Coverage::NotScanned(why) | Coverage::Partial(why) => Some(json!({
                "level": "warning",
                "message": { "text": format!("{}: {why}", r.path) },
                "descriptor": { "id": "coverage" },
            })),
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "mlsec",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/mlsec/mlsec",
                "rules": rules,
            }},
            "invocations": [{ "executionSuccessful": true, "toolExecutionNotifications": not_scanned }],
            "results": out,
        }],
    })
}
