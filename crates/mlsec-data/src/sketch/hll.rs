//! HyperLogLog distinct-count estimate (precision 12: 4,096 one-byte registers, standard error
//! 1.04/√4096 ≈ 1.6%). Merging takes the register-wise maximum, which equals the sketch of the
//! union exactly, so a merged profile's estimate is the estimate of the whole.

use serde::{Deserialize, Serialize};

const P: u32 = 12;
const M: usize = 1 << P;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HyperLogLog {
    registers: Vec<u8>,
}

impl Default for HyperLogLog {
    fn default() -> Self {
        HyperLogLog {
            registers: vec![0; M],
        }
    }
}

impl HyperLogLog {
    /// Relative standard error of the estimate.
    pub const STANDARD_ERROR: f64 = 1.04 / 64.0;

    pub fn insert_hash(&mut self, hash: u64) {
        let index = (hash >> (64 - P)) as usize;
        let rest = hash << P;
        let rank = (rest.leading_zeros().min(64 - P) + 1) as u8;
        if self.registers[index] < rank {
            self.registers[index] = rank;
        }
    }

    pub fn merge(&mut self, other: &HyperLogLog) {
        for (a, b) in self.registers.iter_mut().zip(&other.registers) {
            *a = (*a).max(*b);
        }
    }

    pub fn estimate(&self) -> f64 {
        let m = M as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let mut sum = 0.0;
        let mut zeros = 0usize;
        for &r in &self.registers {
            sum += 2f64.powi(-(r as i32));
            if r == 0 {
                zeros += 1;
            }
        }
        let raw = alpha * m * m / sum;
        if raw <= 2.5 * m && zeros > 0 {
            // Linear counting is far more accurate at small cardinalities.
            m * (m / zeros as f64).ln()
        } else {
            raw
        }
    }
}

impl Serialize for HyperLogLog {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Registers hold at most 53, so two hex digits each; most are small in practice.
        s.serialize_str(&hex::encode(&self.registers))
    }
}

impl<'de> Deserialize<'de> for HyperLogLog {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let registers = hex::decode(&text).map_err(|_| serde::de::Error::custom("bad HLL"))?;
        if registers.len() != M || registers.iter().any(|&r| r > 64) {
            return Err(serde::de::Error::custom("HLL has the wrong size"));
        }
        Ok(HyperLogLog { registers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sketch::hash_f64;

    #[test]
    fn estimates_within_four_standard_errors() {
        for n in [10u64, 1_000, 100_000] {
            let mut h = HyperLogLog::default();
            for i in 0..n {
                h.insert_hash(hash_f64(i as f64));
            }
            let err = (h.estimate() - n as f64).abs() / n as f64;
            assert!(err < 4.0 * HyperLogLog::STANDARD_ERROR, "n={n} err={err}");
        }
    }

    #[test]
    fn merge_equals_union() {
        let (mut a, mut b, mut all) = Default::default();
        for i in 0..5000 {
            let h = hash_f64(i as f64);
            if i % 3 == 0 {
                HyperLogLog::insert_hash(&mut a, h)
            } else {
                HyperLogLog::insert_hash(&mut b, h)
            }
            HyperLogLog::insert_hash(&mut all, h);
        }
        a.merge(&b);
        assert_eq!(a, all);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<HyperLogLog>(&json).unwrap(), a);
    }
}
