//! DSSE envelopes: the signed wrapper of every statement mlsec writes, with one signature (OMS
//! bundles) or several (approvals), and threshold verification over distinct principals.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::error::{AttestError, Result};
use crate::keys::{PrivateKey, PublicKey};

pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Signatures beyond this many make an envelope malformed.
pub const MAX_SIGNATURES: usize = 64;

/// The pre-authentication encoding that is actually signed:
/// `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    /// Base64 of the DER ECDSA signature.
    pub sig: String,
    /// Hint of the signing key; empty in OMS bundles (as the reference writes them).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub keyid: String,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Base64 of the payload bytes.
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub signatures: Vec<EnvelopeSignature>,
}

/// What produces a signature over PAE bytes: a local key today, a KMS or HSM later.
pub trait Signer {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
    fn public_key(&self) -> PublicKey;
}

impl Signer for PrivateKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        PrivateKey::sign(self, message)
    }
    fn public_key(&self) -> PublicKey {
        PrivateKey::public_key(self)
    }
}

fn decode_b64(what: &str, text: &str) -> Result<Vec<u8>> {
    STANDARD
        .decode(text)
        .map_err(|e| AttestError::Bundle(format!("{what} is not standard base64: {e}")))
}

impl Envelope {
    /// An envelope over `payload`, not yet signed.
    pub fn new(payload_type: &str, payload: &[u8]) -> Self {
        Envelope {
            payload: STANDARD.encode(payload),
            payload_type: payload_type.to_owned(),
            signatures: Vec::new(),
        }
    }

    pub fn payload_bytes(&self) -> Result<Vec<u8>> {
        decode_b64("the envelope payload", &self.payload)
    }

    /// Adds a signature by `signer`; `keyid` carries the key's hint unless `anonymous`.
    pub fn sign(&mut self, signer: &dyn Signer, anonymous: bool) -> Result<()> {
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(AttestError::Limit {
                what: "signatures on one envelope".into(),
                limit: MAX_SIGNATURES as u64,
            });
        }
        let message = pae(&self.payload_type, &self.payload_bytes()?);
        let sig = signer.sign(&message)?;
        self.signatures.push(EnvelopeSignature {
            sig: STANDARD.encode(sig),
            keyid: if anonymous {
                String::new()
            } else {
                signer.public_key().hint()
            },
        });
        Ok(())
    }

    fn check_shape(&self) -> Result<()> {
        if self.signatures.is_empty() {
            return Err(AttestError::Signature(
                "the envelope has no signature".into(),
            ));
        }
        if self.signatures.len() > MAX_SIGNATURES {
            return Err(AttestError::Limit {
                what: "signatures on one envelope".into(),
                limit: MAX_SIGNATURES as u64,
            });
        }
        Ok(())
    }

    /// Verifies that some signature is by `key`, over PAE with the given payload type.
    pub fn verify_with(&self, key: &PublicKey, payload_type: &str) -> Result<Vec<u8>> {
        self.check_shape()?;
        let payload = self.payload_bytes()?;
        let message = pae(payload_type, &payload);
        for s in &self.signatures {
            if !s.keyid.is_empty() && s.keyid != key.hint() {
                continue;
            }
            let sig = decode_b64("a signature", &s.sig)?;
            if key.verify(&message, &sig).is_ok() {
                return Ok(payload);
            }
        }
        Err(AttestError::Signature(format!(
            "no signature on the envelope verifies with key {}",
            key.hint()
        )))
    }
}

/// A key trusted to sign, bound to the principal who holds it.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub key: PublicKey,
    pub principal: String,
    /// Revoked keys are listed so a signature by one is reported as such, never counted.
    pub revoked: bool,
}

/// Who signed a threshold envelope.
#[derive(Debug, Clone, Serialize)]
pub struct ThresholdReport {
    pub principals: Vec<String>,
    pub keys: Vec<String>,
    /// Signatures that did not count, with the reason.
    pub rejected: Vec<String>,
}

/// Verifies that at least `threshold` **distinct principals** signed the envelope with
/// trusted, unrevoked keys. Two signatures by one person (even with two keys) count once.
pub fn verify_threshold(
    envelope: &Envelope,
    payload_type: &str,
    trusted: &[TrustedKey],
    threshold: usize,
) -> Result<(Vec<u8>, ThresholdReport)> {
    if threshold == 0 {
        return Err(AttestError::Signature(
            "a threshold must be at least 1".into(),
        ));
    }
    envelope.check_shape()?;
    if envelope.payload_type != payload_type {
        return Err(AttestError::Signature(format!(
            "payload type is {:?}, expected {payload_type:?}",
            envelope.payload_type
        )));
    }
    let payload = envelope.payload_bytes()?;
    let message = pae(payload_type, &payload);
    let mut principals = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let mut rejected = Vec::new();
    for (i, s) in envelope.signatures.iter().enumerate() {
        let sig = match decode_b64("a signature", &s.sig) {
            Ok(sig) => sig,
            Err(e) => {
                rejected.push(format!("signature {i}: {e}"));
                continue;
            }
        };
        let matched = trusted.iter().find(|t| {
            (s.keyid.is_empty() || s.keyid == t.key.hint()) && t.key.verify(&message, &sig).is_ok()
        });
        match matched {
            None => rejected.push(format!(
                "signature {i} (keyid {:?}): not by a trusted key",
                s.keyid
            )),
            Some(t) if t.revoked => rejected.push(format!(
                "signature {i}: key {} of {} is revoked",
                t.key.hint(),
                t.principal
            )),
            Some(t) => {
                if !keys.insert(t.key.hint()) {
                    rejected.push(format!("signature {i}: key {} signed twice", t.key.hint()));
                } else if !principals.insert(t.principal.clone()) {
                    rejected.push(format!(
                        "signature {i}: {} already signed with another key",
                        t.principal
                    ));
                }
            }
        }
    }
    let report = ThresholdReport {
        principals: principals.into_iter().collect(),
        keys: keys.into_iter().collect(),
        rejected,
    };
    if report.principals.len() < threshold {
        return Err(AttestError::Signature(format!(
            "{} of the required {threshold} distinct signers ({}){}",
            report.principals.len(),
            report.principals.join(", "),
            if report.rejected.is_empty() {
                String::new()
            } else {
                format!("; rejected: {}", report.rejected.join("; "))
            }
        )));
    }
    Ok((payload, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Curve;

    #[test]
    fn pae_matches_the_dsse_specification() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn threshold_counts_distinct_unrevoked_principals() {
        let alice = PrivateKey::generate(Curve::P256).unwrap();
        let alice2 = PrivateKey::generate(Curve::P384).unwrap();
        let bob = PrivateKey::generate(Curve::P256).unwrap();
        let carol = PrivateKey::generate(Curve::P256).unwrap();
        let mallory = PrivateKey::generate(Curve::P256).unwrap();
        let trusted = |k: &PrivateKey, who: &str, revoked| TrustedKey {
            key: k.public_key(),
            principal: who.into(),
            revoked,
        };
        let keys = vec![
            trusted(&alice, "alice", false),
            trusted(&alice2, "alice", false),
            trusted(&bob, "bob", false),
            trusted(&carol, "carol", true),
        ];
        let mut env = Envelope::new("application/x-test", b"digest");
        env.sign(&alice, false).unwrap();
        env.sign(&alice2, false).unwrap();
        let err = verify_threshold(&env, "application/x-test", &keys, 2).unwrap_err();
        assert!(err.to_string().contains("already signed"), "{err}");
        env.sign(&carol, false).unwrap();
        env.sign(&mallory, false).unwrap();
        let err = verify_threshold(&env, "application/x-test", &keys, 2).unwrap_err();
        assert!(err.to_string().contains("revoked"), "{err}");
        env.sign(&bob, true).unwrap();
        let (payload, report) = verify_threshold(&env, "application/x-test", &keys, 2).unwrap();
        assert_eq!(payload, b"digest");
        assert_eq!(report.principals, ["alice", "bob"]);
        assert_eq!(report.rejected.len(), 3);
        // A changed payload invalidates every signature.
        let mut forged = env.clone();
        forged.payload = STANDARD.encode(b"other");
        assert!(verify_threshold(&forged, "application/x-test", &keys, 1).is_err());
        // So does another payload type (it is part of what was signed).
        assert!(verify_threshold(&env, "application/x-other", &keys, 1).is_err());
    }
}
