//! Mergeable summaries: each can be built on separate partitions (or machines) and merged, and
//! the merge obeys the same error bound as a summary of the whole.

pub mod hll;
pub mod kll;
pub mod moments;

pub use hll::HyperLogLog;
pub use kll::Kll;
pub use moments::Moments;

/// 64-bit hash of a value's bytes, stable across runs and machines (profiles are stored and
/// merged later, so a per-process random seed would break merging).
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// Hash of a float, with all NaNs and both zeros folded together.
pub fn hash_f64(v: f64) -> u64 {
    let bits = if v == 0.0 {
        0u64
    } else if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    };
    // splitmix64 finaliser: cheap and well mixed.
    let mut z = bits.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
