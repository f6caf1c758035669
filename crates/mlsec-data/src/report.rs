//! The check report: one self-contained HTML page (inline CSS and SVG, a few lines of inline
//! script, no external requests) with the verdict, per-column histograms of reference against
//! current, the tests and their scores, schema violations and poisoning signals. Every string
//! that came from data (column names, category values) is escaped.

use std::fmt::Write;

use crate::check::{CheckOutcome, Verdict};
use crate::drift::{ColumnDrift, Distribution};

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root{--ref:#6b7fd7;--cur:#e8833a;--ok:#1f8a4c;--bad:#c62828;--warn:#b7791f;--ink:#1d232b;--mute:#5f6b7a;--line:#e3e7ed}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:#f6f7f9}
header{background:#fff;border-bottom:1px solid var(--line);padding:20px 32px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 10px}
.sub{color:var(--mute)}main{padding:8px 32px 40px;max-width:1280px}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;font-size:13px;color:#fff}
.passed{background:var(--ok)}.failed{background:var(--bad)}.warn{background:var(--warn)}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-top:14px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 16px;min-width:150px}
.card b{display:block;font-size:20px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line);border-radius:8px;overflow:hidden}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#eef1f5;font-weight:600;font-size:13px}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.drifted td:first-child{border-left:3px solid var(--bad)}
ul.reasons{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 10px 10px 30px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:12px}
.col{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.col h3{font-size:14px;margin:0 0 2px;display:flex;justify-content:space-between;gap:8px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;vertical-align:middle}
.mute{color:var(--mute);font-size:12px}code{background:#eef1f5;padding:0 4px;border-radius:4px}
.controls{margin:6px 0 10px}
"#;

const SCRIPT: &str = r#"
(function(){
  var box=document.getElementById('only-drifted');
  if(!box){return;}
  box.addEventListener('change',function(){
    document.querySelectorAll('[data-drifted]').forEach(function(el){
      el.style.display=(box.checked&&el.getAttribute('data-drifted')!=='true')?'none':'';
    });
  });
  document.documentElement.setAttribute('data-report-ready','true');
})();
"#;

fn fmt(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x.abs() >= 1e5 || x.abs() < 1e-3 {
        format!("{x:.3e}")
    } else {
        format!("{x:.4}")
    }
}

/// Overlaid bars of reference and current proportions.
fn histogram_svg(d: &Distribution) -> String {
    let n = d.labels.len();
    if n == 0 {
        return String::new();
    }
    let shown = n.min(40);
    let total_r: f64 = d.reference.iter().sum::<f64>().max(1.0);
    let total_c: f64 = d.current.iter().sum::<f64>().max(1.0);
    let pr: Vec<f64> = d
        .reference
        .iter()
        .take(shown)
        .map(|v| v / total_r)
        .collect();
    let pc: Vec<f64> = d.current.iter().take(shown).map(|v| v / total_c).collect();
    let top = pr
        .iter()
        .chain(&pc)
        .cloned()
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let (w, h, pad) = (360.0, 120.0, 18.0);
    let bw = (w - 2.0) / shown as f64;
    let mut svg = format!(
        r#"<svg viewBox="0 0 {w} {}" width="100%" role="img" aria-label="reference and current distributions">"#,
        h + pad
    );
    for i in 0..shown {
        let x = 1.0 + i as f64 * bw;
        let hr = pr[i] / top * h;
        let hc = pc[i] / top * h;
        let _ = write!(
            svg,
            r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="var(--ref)" opacity="0.75"><title>{} reference {:.2}%</title></rect>"#,
            x,
            h - hr,
            (bw * 0.48).max(0.5),
            hr,
            escape(&d.labels[i]),
            pr[i] * 100.0
        );
        let _ = write!(
            svg,
            r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="var(--cur)" opacity="0.85"><title>{} current {:.2}%</title></rect>"#,
            x + bw * 0.5,
            h - hc,
            (bw * 0.48).max(0.5),
            hc,
            escape(&d.labels[i]),
            pc[i] * 100.0
        );
    }
    let _ = write!(
        svg,
        r##"<line x1="0" y1="{h}" x2="{w}" y2="{h}" stroke="#9aa5b1"/>"##
    );
    let (first, last) = match d.edges.as_slice() {
        [a, .., b] => (fmt(*a), fmt(*b)),
        _ => (
            escape(d.labels.first().map_or("", String::as_str)),
            if n > shown {
                format!("… {} more", n - shown)
            } else {
                escape(d.labels.last().map_or("", String::as_str))
            },
        ),
    };
    let _ = write!(
        svg,
        r##"<text x="0" y="{}" font-size="10" fill="#5f6b7a">{}</text><text x="{w}" y="{}" font-size="10" fill="#5f6b7a" text-anchor="end">{}</text></svg>"##,
        h + 13.0,
        first,
        h + 13.0,
        last
    );
    svg
}

fn column_card(c: &ColumnDrift) -> String {
    let status = if c.skipped.is_some() {
        r#"<span class="badge warn">not tested</span>"#.to_owned()
    } else if c.drifted {
        r#"<span class="badge failed">drift</span>"#.to_owned()
    } else {
        r#"<span class="badge passed">stable</span>"#.to_owned()
    };
    let mut html = format!(
        r#"<div class="col" data-drifted="{}"><h3><span>{} <span class="mute">{:?}</span></span>{}</h3>"#,
        c.drifted,
        escape(&c.column),
        c.kind,
        status
    );
    match (&c.test, &c.skipped) {
        (_, Some(why)) => {
            let _ = write!(html, r#"<div class="mute">{}</div>"#, escape(why));
        }
        (Some(t), None) => {
            let _ = write!(
                html,
                r#"<div class="mute">{}: <b>{}</b> (threshold {}) — {}</div>"#,
                t.label(),
                fmt(c.score),
                fmt(c.threshold),
                escape(&c.scale)
            );
        }
        _ => {}
    }
    html.push_str(&histogram_svg(&c.distribution));
    if !c.measures.is_empty() {
        html.push_str(r#"<div class="mute">"#);
        for m in &c.measures {
            let _ = write!(html, "{} {} · ", m.test.label(), fmt(m.score));
        }
        let _ = write!(html, "rows {} / {}</div>", c.reference_rows, c.current_rows);
    }
    html.push_str("</div>");
    html
}

/// Renders the report. `generated_at` is passed in (RFC 3339), so the library reads no clock.
pub fn render(outcome: &CheckOutcome, generated_at: &str) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let verdict = match outcome.verdict {
        Verdict::Passed => r#"<span class="badge passed">passed</span>"#,
        Verdict::Failed => r#"<span class="badge failed">failed — quarantined</span>"#,
    };
    let _ = write!(
        h,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"><title>mlsec data check — {}</title><style>{STYLE}</style></head><body><header><h1>Data check: {} {}</h1><div class="sub">{} against {} · generated {}</div>"#,
        escape(&outcome.current),
        escape(&outcome.current),
        verdict,
        escape(&outcome.current),
        escape(
            outcome
                .reference
                .as_deref()
                .unwrap_or("no approved version (first version: schema only)")
        ),
        escape(generated_at)
    );
    let drifted = outcome.drift.as_ref().map_or(0, |d| d.drifted_columns);
    let tested = outcome.drift.as_ref().map_or(0, |d| d.tested_columns);
    let fired = outcome.poison.as_ref().map_or(0, |p| p.fired().count());
    let violations: u64 = outcome.violations.iter().map(|v| v.count).sum();
    let _ = write!(
        h,
        r#"<div class="cards"><div class="card"><span class="mute">rows</span><b>{}</b><span class="mute">reference {}</span></div><div class="card"><span class="mute">drifted columns</span><b>{drifted} / {tested}</b></div><div class="card"><span class="mute">schema violations</span><b>{violations}</b></div><div class="card"><span class="mute">poisoning signals</span><b>{fired}</b></div></div></header><main>"#,
        outcome.current_rows, outcome.reference_rows
    );
    if !outcome.reasons.is_empty() || !outcome.warnings.is_empty() {
        h.push_str(r#"<h2>Why</h2><ul class="reasons">"#);
        for r in &outcome.reasons {
            let _ = write!(h, "<li>{}</li>", escape(r));
        }
        for w in &outcome.warnings {
            let _ = write!(h, r#"<li class="mute">warning: {}</li>"#, escape(w));
        }
        h.push_str("</ul>");
    }
    if let Some(p) = &outcome.poison {
        h.push_str("<h2>Poisoning signals</h2><table><tr><th>signal</th><th>result</th><th class=\"num\">score</th><th class=\"num\">threshold</th><th class=\"num\">reference</th><th>detail</th><th>rows</th></tr>");
        for s in &p.signals {
            let rows: Vec<String> = s.rows.iter().take(12).map(u64::to_string).collect();
            let more = if s.row_count as usize > rows.len() {
                format!(" … ({} in all)", s.row_count)
            } else {
                String::new()
            };
            let _ = write!(
                h,
                r#"<tr class="{}"><td><code>{}</code></td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td><td class="mute">{}{}</td></tr>"#,
                if s.fired { "drifted" } else { "" },
                escape(&s.id),
                if s.fired {
                    r#"<span class="badge failed">fired</span>"#
                } else {
                    r#"<span class="badge passed">quiet</span>"#
                },
                fmt(s.score),
                fmt(s.threshold),
                s.reference_score.map_or("—".into(), fmt),
                escape(&s.detail),
                rows.join(", "),
                more
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Schema</h2>");
    if outcome.violations.is_empty() {
        h.push_str(r#"<p class="mute">Every value is within the schema.</p>"#);
    } else {
        h.push_str("<table><tr><th>column</th><th>violation</th><th class=\"num\">count</th><th>examples (row: value)</th></tr>");
        for v in &outcome.violations {
            let examples: Vec<String> = v
                .examples
                .iter()
                .map(|e| format!("{}: <code>{}</code>", e.row, escape(&e.value)))
                .collect();
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                escape(&v.column),
                escape(&v.detail),
                v.count,
                examples.join(", ")
            );
        }
        h.push_str("</table>");
    }
    if let Some(d) = &outcome.drift {
        let _ = write!(
            h,
            r#"<h2>Drift</h2><p class="mute">Tests follow Evidently's defaults: up to {} reference rows, KS / chi-square / z-test with p &lt; {}; above, Wasserstein distance normalised by the reference standard deviation and Jensen–Shannon distance (natural log) with threshold {}. The dataset drifts when at least {:.0}% of tested columns drift. <span class="legend"><span style="background:var(--ref)"></span>reference<span style="background:var(--cur)"></span>current</span></p><div class="controls"><label><input type="checkbox" id="only-drifted"> show drifted columns only</label></div>"#,
            d.options.small_sample_rows,
            d.options.p_value_threshold,
            d.options.distance_threshold,
            d.options.drift_share * 100.0
        );
        h.push_str(r#"<table><tr><th>column</th><th>type</th><th>test</th><th class="num">score</th><th class="num">threshold</th><th>result</th></tr>"#);
        for c in &d.columns {
            let _ = write!(
                h,
                r#"<tr class="{}" data-drifted="{}"><td>{}</td><td>{:?}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td></tr>"#,
                if c.drifted { "drifted" } else { "" },
                c.drifted,
                escape(&c.column),
                c.kind,
                c.test.map_or("—", |t| t.label()),
                if c.test.is_some() {
                    fmt(c.score)
                } else {
                    "—".into()
                },
                if c.test.is_some() {
                    fmt(c.threshold)
                } else {
                    "—".into()
                },
                match (&c.skipped, c.drifted) {
                    (Some(why), _) => escape(why),
                    (None, true) => "drift".into(),
                    (None, false) => "stable".into(),
                }
            );
        }
        h.push_str("</table><h2>Distributions</h2><div class=\"grid\">");
        for c in &d.columns {
            h.push_str(&column_card(c));
        }
        h.push_str("</div>");
    }
    let _ = write!(h, "</main><script>{SCRIPT}</script></body></html>");
    h
}
