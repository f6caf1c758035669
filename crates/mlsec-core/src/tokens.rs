//! API tokens: `mlsec_<16 hex id>_<64 hex secret>`.
//!
//! The fixed `mlsec_` prefix and shape let secret scanners find leaked tokens. The id locates the
//! row; only SHA-256 of the secret is stored (the secret has 256 bits of entropy, so a slow
//! password hash buys nothing), and the comparison is constant-time.

use mlsec_types::Digest;
use subtle::ConstantTimeEq;

pub const TOKEN_PREFIX: &str = "mlsec_";

/// A freshly minted token; `secret_text` is shown once and never stored.
pub struct ApiToken {
    pub id: String,
    pub secret_text: String,
    pub secret_hash: Digest,
}

impl ApiToken {
    pub fn generate() -> Self {
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        getrandom::fill(&mut id).expect("the OS provides randomness");
        getrandom::fill(&mut secret).expect("the OS provides randomness");
        let id = hex::encode(id);
        let secret_hex = hex::encode(secret);
        ApiToken {
            secret_text: format!("{TOKEN_PREFIX}{id}_{secret_hex}"),
            secret_hash: Digest::of(secret_hex.as_bytes()),
            id,
        }
    }
}

/// Splits a presented token into (id, hash of secret); `None` if it is not shaped like one.
pub(crate) fn parse(presented: &str) -> Option<(&str, Digest)> {
    let rest = presented.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let is_hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_hex(id, 16) || !is_hex(secret, 64) {
        return None;
    }
    Some((id, Digest::of(secret.as_bytes())))
}

pub(crate) fn hashes_match(stored: &[u8], presented: &Digest) -> bool {
    stored.ct_eq(presented.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_match() {
        let t = ApiToken::generate();
        assert!(t.secret_text.starts_with("mlsec_"));
        assert_eq!(t.secret_text.len(), 6 + 16 + 1 + 64);
        let (id, hash) = parse(&t.secret_text).unwrap();
        assert_eq!(id, t.id);
        assert!(hashes_match(t.secret_hash.as_bytes(), &hash));
        let other = ApiToken::generate();
        assert!(!hashes_match(other.secret_hash.as_bytes(), &hash));
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        for bad in [
            "",
            "mlsec_",
            "mlsec_abc_def",
            "bearer",
            &format!("mlsec_{}_{}", "g".repeat(16), "0".repeat(64)),
            &format!("mlsec_{}_{}", "0".repeat(16), "0".repeat(63)),
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
