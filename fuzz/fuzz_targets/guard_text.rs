//! Prompts and responses are untrusted text of any shape: preparation (folding, recursive
//! decoding), both default pipelines, streaming in odd-sized chunks and the dataset line parser
//! must give a verdict or an error, never panic, within the decode bounds.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mlsec_guard::prepare::{PrepareLimits, prepare};
use mlsec_guard::{Pipeline, PipelineConfig, RequestContext, Vault};

fn pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| Pipeline::new(PipelineConfig::default()).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let limits = PrepareLimits::default();
    let prepared = prepare(&text, &limits);
    assert!(prepared.views.len() <= limits.max_views + 1);
    let context = RequestContext::default();
    let mut vault = Vault::default();
    if let Ok(v) = pipeline().scan_input(&text, &context, &mut vault) {
        if let Some(redacted) = &v.redacted {
            let _ = vault.restore(redacted);
        }
    }
    let _ = pipeline().scan_output(&text, &context);
    let chunk = 1 + data.first().copied().unwrap_or(7) as usize % 61;
    let mut stream = pipeline().stream(&context);
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + chunk).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        if stream.push(&text[start..end]).is_err() {
            break;
        }
        start = end;
    }
    let _ = stream.finish();
    let _ = mlsec_guard::dataset::parse_line(1, &text);
});
