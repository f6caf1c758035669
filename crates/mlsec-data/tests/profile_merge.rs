//! Profiles are mergeable: the profile of two partitions merged equals the profile of the
//! whole — exactly for counts, extremes, categories and distinct sketches, to rounding for
//! moments, within the stated rank-error bound for quantiles.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use mlsec_data::DatasetProfile;
use mlsec_data::sketch::kll::RANK_ERROR_BOUND;
use proptest::prelude::*;

fn batch(values: &[Option<f64>], cats: &[Option<u8>]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Float64, true),
        Field::new("c", DataType::Utf8, true),
    ]));
    let x: ArrayRef = Arc::new(Float64Array::from(values.to_vec()));
    let c: ArrayRef = Arc::new(StringArray::from_iter(
        cats.iter().map(|c| c.map(|v| format!("k{v}"))),
    ));
    RecordBatch::try_new(schema, vec![x, c]).unwrap()
}

fn profile(values: &[Option<f64>], cats: &[Option<u8>], chunk: usize) -> DatasetProfile {
    let whole = batch(values, cats);
    let mut p = DatasetProfile::empty(&whole.schema());
    for start in (0..values.len()).step_by(chunk.max(1)) {
        let len = chunk.min(values.len() - start);
        p.update(&whole.slice(start, len)).unwrap();
    }
    p
}

fn rank_error(sorted: &[f64], estimate: f64, q: f64) -> f64 {
    let below = sorted.partition_point(|&x| x < estimate) as f64;
    let at_or_below = sorted.partition_point(|&x| x <= estimate) as f64;
    let target = q * sorted.len() as f64;
    let n = sorted.len() as f64;
    if target >= below && target <= at_or_below {
        0.0
    } else {
        ((below - target).abs().min((at_or_below - target).abs())) / n
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn merged_partitions_equal_the_whole(
        values in prop::collection::vec(prop::option::weighted(0.9, -1e6f64..1e6), 1..30_000),
        split in 0.0f64..1.0,
        chunk in 1usize..5000,
        seed in any::<u8>(),
    ) {
        let cats: Vec<Option<u8>> = values.iter().enumerate()
            .map(|(i, v)| v.map(|_| ((i as u64 * 2654435761 + seed as u64) % 37) as u8))
            .collect();
        let cut = ((values.len() as f64) * split) as usize;
        let whole = profile(&values, &cats, chunk);
        let mut merged = profile(&values[..cut], &cats[..cut], chunk);
        merged.merge(&profile(&values[cut..], &cats[cut..], chunk)).unwrap();

        prop_assert_eq!(merged.rows, whole.rows);
        let (mx, wx) = (&merged.columns[0], &whole.columns[0]);
        prop_assert_eq!(mx.nulls, wx.nulls);
        prop_assert_eq!(&mx.distinct, &wx.distinct);
        let (mm, wm) = (mx.values.as_ref().unwrap(), wx.values.as_ref().unwrap());
        prop_assert_eq!(mm.count, wm.count);
        prop_assert_eq!(mm.min, wm.min);
        prop_assert_eq!(mm.max, wm.max);
        if wm.count > 0 {
            prop_assert!((mm.mean - wm.mean).abs() <= 1e-9 * (1.0 + wm.mean.abs()));
            prop_assert!((mm.std() - wm.std()).abs() <= 1e-7 * (1.0 + wm.std()));
            let mut sorted: Vec<f64> = values.iter().flatten().copied().collect();
            sorted.sort_by(f64::total_cmp);
            let sketch = mx.quantiles.as_ref().unwrap();
            for q in [0.01, 0.25, 0.5, 0.75, 0.99] {
                let est = sketch.quantile(q).unwrap();
                prop_assert!(rank_error(&sorted, est, q) <= RANK_ERROR_BOUND, "q={} err={}", q, rank_error(&sorted, est, q));
            }
        }
        let (mc, wc) = (&merged.columns[1], &whole.columns[1]);
        prop_assert_eq!(&mc.categories, &wc.categories);
        prop_assert_eq!(mc.nulls, wc.nulls);
        prop_assert_eq!(&mc.lengths.as_ref().unwrap().count, &wc.lengths.as_ref().unwrap().count);
        // A stored profile round-trips through JSON and still merges.
        let json = serde_json::to_string(&merged).unwrap();
        let back: DatasetProfile = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, merged);
    }
}
