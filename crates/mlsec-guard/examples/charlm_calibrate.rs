//! Chooses the token-soup threshold on training data alone (a cross-fit): the character model is
//! trained on one half of the benign rows (split by a hash of the text) and scores the other
//! half, which it has not seen; the table shows how many of those it would flag at each
//! threshold, and how many of the training attacks of each source reach it.
//!
//! `cargo run --release -p mlsec-guard --example charlm_calibrate -- data/guard/injection/train.jsonl …`

use std::collections::BTreeMap;

use mlsec_guard::charlm::CharLm;
use mlsec_guard::dataset;

fn half(text: &str) -> bool {
    // FNV-1a: a fixed, dependency-free split.
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h & 1 == 0
}

fn main() {
    let mut rows = Vec::new();
    for path in std::env::args().skip(1) {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        rows.extend(dataset::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}")));
    }
    let is_attack = |e: &dataset::Example| e.labels.iter().any(|l| l == "injection");
    let lm = CharLm::train(
        rows.iter()
            .filter(|e| !is_attack(e) && half(&e.text))
            .map(|e| e.text.as_str()),
    );
    let mut unseen_benign: Vec<f32> = Vec::new();
    let mut attacks: BTreeMap<&str, Vec<f32>> = BTreeMap::new();
    for e in &rows {
        if is_attack(e) {
            attacks
                .entry(e.source.as_str())
                .or_default()
                .push(lm.max_window_surprisal(&e.text));
        } else if !half(&e.text) {
            unseen_benign.push(lm.max_window_surprisal(&e.text));
        }
    }
    let rate = |v: &[f32], t: f32| v.iter().filter(|&&s| s >= t).count() as f64 / v.len() as f64;
    print!(
        "| threshold | unseen benign flagged (n={}) |",
        unseen_benign.len()
    );
    for source in attacks.keys() {
        print!(" {source} |");
    }
    println!();
    for t in [5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0] {
        print!("| {t:.1} | {:.2} % |", 100.0 * rate(&unseen_benign, t));
        for v in attacks.values() {
            print!(" {:.1} % |", 100.0 * rate(v, t));
        }
        println!();
    }
}
