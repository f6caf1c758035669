//! Every statistic against values computed independently with numpy and scipy
//! (`fixtures/gen_stats_kat.py`, versions recorded in the fixture).

use mlsec_data::stats;
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/stats_kat.json")).expect("fixture parses")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn unweighted(v: &[f64]) -> Vec<(f64, f64)> {
    let mut s: Vec<(f64, f64)> = v.iter().map(|&x| (x, 1.0)).collect();
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    s
}

fn close(actual: f64, expected: f64, rel: f64, abs: f64, what: &str) {
    let ok = (actual - expected).abs() <= abs.max(rel * expected.abs());
    assert!(ok, "{what}: got {actual}, scipy {expected}");
}

#[test]
fn kolmogorov_smirnov_matches_scipy() {
    let f = fixture();
    for case in f["ks"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (a, b) = (floats(&case["a"]), floats(&case["b"]));
        let r = stats::ks_2samp(
            &unweighted(&a),
            &unweighted(&b),
            a.len() as u64,
            b.len() as u64,
        );
        close(
            r.statistic,
            case["statistic"].as_f64().unwrap(),
            1e-12,
            1e-12,
            name,
        );
        let p = case["pvalue"].as_f64().unwrap();
        if case["method"] == "exact" {
            close(r.p_value, p, 1e-6, 1e-12, name);
        } else {
            // scipy's asymptotic p uses the finite-n Kolmogorov distribution; ours the limit
            // with Stephens' correction: close, not identical.
            close(r.p_value, p, 0.05, 0.002, name);
        }
    }
}

#[test]
fn chi_square_matches_scipy() {
    let f = fixture();
    for case in f["chi2"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (r, dof) =
            stats::chi2_homogeneity(&floats(&case["ref_counts"]), &floats(&case["cur_counts"]));
        close(
            r.statistic,
            case["statistic"].as_f64().unwrap(),
            1e-9,
            1e-12,
            name,
        );
        close(
            r.p_value,
            case["pvalue"].as_f64().unwrap(),
            1e-6,
            1e-15,
            name,
        );
        assert_eq!(dof as u64, case["dof"].as_u64().unwrap(), "{name}");
    }
}

#[test]
fn z_test_matches_scipy() {
    let f = fixture();
    for case in f["ztest"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let g = |k: &str| case[k].as_f64().unwrap();
        let r = stats::two_proportion_z(
            g("ref_successes"),
            g("ref_n"),
            g("cur_successes"),
            g("cur_n"),
        );
        close(r.statistic, g("z"), 1e-9, 1e-12, name);
        close(r.p_value, g("pvalue"), 1e-6, 1e-15, name);
    }
}

#[test]
fn wasserstein_matches_scipy() {
    let f = fixture();
    for case in f["wasserstein"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (a, b) = (floats(&case["a"]), floats(&case["b"]));
        let d = stats::wasserstein(&unweighted(&a), &unweighted(&b));
        close(d, case["distance"].as_f64().unwrap(), 1e-9, 1e-12, name);
        let mut m = mlsec_data::sketch::Moments::default();
        a.iter().for_each(|&x| m.push(x));
        close(
            m.std(),
            case["ref_std"].as_f64().unwrap(),
            1e-9,
            1e-12,
            name,
        );
    }
    for case in f["wasserstein_weighted"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let pair = |v: &str, w: &str| {
            let mut s: Vec<(f64, f64)> =
                floats(&case[v]).into_iter().zip(floats(&case[w])).collect();
            s.sort_by(|a, b| a.0.total_cmp(&b.0));
            s
        };
        let d = stats::wasserstein(&pair("a", "a_weights"), &pair("b", "b_weights"));
        close(d, case["distance"].as_f64().unwrap(), 1e-9, 1e-12, name);
    }
}

#[test]
fn jensen_shannon_and_psi_match_numpy() {
    let f = fixture();
    for case in f["jensenshannon"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (p, q) = (floats(&case["p"]), floats(&case["q"]));
        close(
            stats::jensen_shannon(&p, &q, std::f64::consts::E),
            case["distance"].as_f64().unwrap(),
            1e-9,
            1e-12,
            name,
        );
        close(
            stats::jensen_shannon(&p, &q, 2.0),
            case["distance_base2"].as_f64().unwrap(),
            1e-9,
            1e-12,
            name,
        );
    }
    for case in f["psi"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        close(
            stats::psi(&floats(&case["ref"]), &floats(&case["cur"])),
            case["psi"].as_f64().unwrap(),
            1e-9,
            1e-12,
            name,
        );
    }
}

#[test]
fn sturges_edges_match_numpy() {
    let f = fixture();
    for case in f["histogram_sturges"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let all: Vec<f64> = floats(&case["a"])
            .into_iter()
            .chain(floats(&case["b"]))
            .collect();
        let lo = all.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = all.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let edges = stats::sturges_edges(lo, hi, all.len() as u64);
        let expected = floats(&case["edges"]);
        assert_eq!(edges.len(), expected.len(), "{name}");
        for (a, e) in edges.iter().zip(&expected) {
            close(*a, *e, 1e-12, 1e-12, name);
        }
    }
}
