//! Secrets at rest: Argon2id password hashes, sealed TOTP keys, one-time codes.
//!
//! Passwords are low-entropy, so they get a slow, memory-hard hash (Argon2id, OWASP's
//! m=19 MiB, t=2, p=1). Random secrets (recovery codes, session ids, CSRF tokens) have 64–256 bits
//! of entropy and are stored as SHA-256: a slow hash would buy nothing. A TOTP key must stay
//! usable, so it is sealed (ChaCha20-Poly1305) with a key derived from the server key.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use mlsec_types::Digest;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, Totp};

use crate::error::CoreError;

pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_BYTES: usize = 1024;

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS provides randomness");
    b
}

pub(crate) fn check_password_rules(password: &str) -> Result<(), CoreError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(CoreError::InvalidRequest(format!(
            "password is longer than {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(CoreError::InvalidRequest(format!(
            "password needs at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// Argon2id PHC string of `password` (CPU-heavy: call from a blocking thread).
pub(crate) fn hash_password(password: &str) -> Result<String, CoreError> {
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &random_bytes::<16>())
        .map(|h| h.to_string())
        .map_err(|e| CoreError::Key(format!("password hash: {e}")))
}

/// Checks the rules and hashes on a blocking thread (Argon2 takes tens of milliseconds of CPU).
pub(crate) async fn hash_new_password(password: String) -> Result<String, CoreError> {
    check_password_rules(&password)?;
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| CoreError::Key(format!("password hash: {e}")))?
}

/// A hash of a random password, verified against when the account does not exist, so that
/// "no such user" and "wrong password" take the same time.
pub(crate) fn dummy_password_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password(&hex::encode(random_bytes::<16>())).expect("hashing a random password")
    })
}

pub(crate) fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

pub(crate) fn seal(key: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(key.into());
    let nonce = random_bytes::<12>();
    let mut out = nonce.to_vec();
    out.extend(
        cipher
            .encrypt(&Nonce::from(nonce), plaintext)
            .expect("encryption of a short secret cannot fail"),
    );
    out
}

pub(crate) fn unseal(key: &[u8; 32], sealed: &[u8]) -> Result<Vec<u8>, CoreError> {
    if sealed.len() < 12 + 16 {
        return Err(CoreError::Key("sealed secret is truncated".into()));
    }
    let cipher = ChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(
            &Nonce::from(<[u8; 12]>::try_from(&sealed[..12]).expect("length checked")),
            &sealed[12..],
        )
        .map_err(|_| CoreError::Key("a sealed secret does not open with this server key".into()))
}

pub(crate) fn sha256(bytes: &[u8]) -> Vec<u8> {
    Digest::of(bytes).as_bytes().to_vec()
}

pub(crate) fn hashes_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// TOTP parameters: RFC 6238 with the values every authenticator app supports (SHA-1, 6
/// digits, 30 s), accepting the neighbouring step on either side for clock drift.
pub const TOTP_STEP_SECONDS: u64 = 30;
pub const TOTP_DIGITS: usize = 6;
pub const TOTP_ISSUER: &str = "mlsec";

pub(crate) fn totp(secret: &[u8], account: &str) -> Result<Totp, CoreError> {
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(TOTP_DIGITS as u8)
        .with_skew(1)
        .with_step_duration(TOTP_STEP_SECONDS)
        .with_secret(Secret::new(secret.to_vec().into_boxed_slice()))
        .with_account_name(account)
        .with_issuer(Some(TOTP_ISSUER))
        .build()
        .map_err(|e| CoreError::Key(format!("TOTP: {e}")))
}

/// The time step a code matches at `now_secs`, if it matches one.
pub(crate) fn totp_step(totp: &Totp, code: &str, now_secs: u64) -> Option<i64> {
    let code = code.trim();
    if code.len() != TOTP_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp.check(code, now_secs).map(|step| step as i64)
}

/// Recovery codes: 64 random bits each, shown as `xxxx-xxxx-xxxx-xxxx`.
pub(crate) fn new_recovery_code() -> String {
    let hex = hex::encode(random_bytes::<8>());
    format!(
        "{}-{}-{}-{}",
        &hex[0..4],
        &hex[4..8],
        &hex[8..12],
        &hex[12..16]
    )
}

/// Normalises a presented recovery code (case, dashes, spaces) before hashing.
pub(crate) fn recovery_code_hash(code: &str) -> Option<Vec<u8>> {
    let clean: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (clean.len() == 16 && clean.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| sha256(clean.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 column (8 digits, the 20-byte ASCII key "12345678901234567890").
    #[test]
    fn rfc6238_test_vectors() {
        let t = totp_rs::Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(8)
            .with_skew(0)
            .with_step_duration(30)
            .with_secret(Secret::new(
                b"12345678901234567890".to_vec().into_boxed_slice(),
            ))
            .with_account_name("rfc")
            .build()
            .unwrap();
        for (time, code) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(t.generate(time).to_string(), code, "T={time}");
            assert_eq!(t.check(code, time), Some(time / 30));
        }
        // SHA-256 column, 32-byte key.
        let t256 = totp_rs::Builder::new()
            .with_algorithm(Algorithm::SHA256)
            .with_digits(8)
            .with_skew(0)
            .with_step_duration(30)
            .with_secret(Secret::new(
                b"12345678901234567890123456789012"
                    .to_vec()
                    .into_boxed_slice(),
            ))
            .with_account_name("rfc")
            .build()
            .unwrap();
        for (time, code) in [
            (59u64, "46119246"),
            (1111111109, "68084774"),
            (20000000000, "77737706"),
        ] {
            assert_eq!(t256.generate(time).to_string(), code, "T={time}");
        }
    }

    #[test]
    fn codes_must_be_six_digits_and_in_the_window() {
        let t = totp(&[7u8; 20], "alice").unwrap();
        let now = 1_800_000_000;
        let code = t.generate(now).to_string();
        assert_eq!(totp_step(&t, &code, now), Some((now / 30) as i64));
        assert_eq!(
            totp_step(&t, &code, now + 30),
            Some((now / 30) as i64),
            "one step of drift"
        );
        assert_eq!(totp_step(&t, &code, now + 90), None);
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６"] {
            assert_eq!(totp_step(&t, bad, now), None, "{bad}");
        }
    }

    #[test]
    fn seal_round_trips_and_detects_tampering() {
        let key = [3u8; 32];
        let mut sealed = seal(&key, b"totp key");
        assert_eq!(unseal(&key, &sealed).unwrap(), b"totp key");
        assert!(unseal(&[4u8; 32], &sealed).is_err());
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(unseal(&key, &sealed).is_err());
        assert!(unseal(&key, &sealed[..10]).is_err());
    }

    #[test]
    fn passwords_hash_with_argon2id() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("x", "not a phc string"));
        assert!(check_password_rules("short").is_err());
        assert!(check_password_rules(&"x".repeat(2000)).is_err());
    }

    #[test]
    fn recovery_codes_normalise() {
        let c = new_recovery_code();
        assert_eq!(c.len(), 19);
        assert_eq!(
            recovery_code_hash(&c),
            recovery_code_hash(&c.to_uppercase().replace('-', " "))
        );
        assert!(recovery_code_hash("nope").is_none());
    }
}
