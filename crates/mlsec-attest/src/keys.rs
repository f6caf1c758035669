//! ECDSA keys on the curves OMS requires (P-256 with SHA-256, P-384 with SHA-384), in the PEM
//! forms people have: PKCS#8 and SEC1 private keys, SubjectPublicKeyInfo public keys.
//!
//! A key's *hint* is what the reference implementation writes into a bundle: the lower-case hex
//! SHA-256 of the public key's SPKI PEM text (64-column base64, LF line ends, trailing newline).
//! The same value serves as the DSSE `keyid` of multi-party envelopes.

use der::{Decode, Encode};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use sha2::Digest as _;
use spki::ObjectIdentifier;
use zeroize::Zeroizing;

use crate::error::{AttestError, Result};

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// PEM input larger than this is not a key.
pub const MAX_PEM_BYTES: usize = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Curve {
    #[serde(rename = "p256")]
    P256,
    #[serde(rename = "p384")]
    P384,
}

impl Curve {
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "p256",
            Curve::P384 => "p384",
        }
    }
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "p256" | "p-256" | "secp256r1" | "prime256v1" => Ok(Curve::P256),
            "p384" | "p-384" | "secp384r1" => Ok(Curve::P384),
            other => Err(AttestError::Key(format!(
                "curve {other:?} is not supported (p256, p384)"
            ))),
        }
    }
    fn oid(self) -> ObjectIdentifier {
        match self {
            Curve::P256 => SECP256R1,
            Curve::P384 => SECP384R1,
        }
    }
    fn signing(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        }
    }
    fn verification(self) -> &'static signature::EcdsaVerificationAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1,
            Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1,
        }
    }
    fn point_len(self) -> usize {
        match self {
            Curve::P256 => 65,
            Curve::P384 => 97,
        }
    }
}

/// A public key: curve and uncompressed point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub curve: Curve,
    point: Vec<u8>,
}

impl PublicKey {
    pub fn from_spki_der(der_bytes: &[u8]) -> Result<Self> {
        let info = spki::SubjectPublicKeyInfoRef::from_der(der_bytes)
            .map_err(|e| AttestError::Key(format!("not a SubjectPublicKeyInfo: {e}")))?;
        if info.algorithm.oid != ID_EC_PUBLIC_KEY {
            return Err(AttestError::Key(format!(
                "public key algorithm {} is not ECDSA (OMS keys are P-256 or P-384)",
                info.algorithm.oid
            )));
        }
        let curve_oid = info
            .algorithm
            .parameters_oid()
            .map_err(|e| AttestError::Key(format!("EC key without a named curve: {e}")))?;
        let curve = match curve_oid {
            SECP256R1 => Curve::P256,
            SECP384R1 => Curve::P384,
            other => {
                return Err(AttestError::Key(format!(
                    "curve {other} is not supported (P-256, P-384)"
                )));
            }
        };
        let point = info
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| AttestError::Key("public key bit string is not whole bytes".into()))?;
        if point.len() != curve.point_len() || point[0] != 4 {
            return Err(AttestError::Key(
                "only uncompressed EC points are supported (re-export the key with openssl)".into(),
            ));
        }
        Ok(PublicKey {
            curve,
            point: point.to_vec(),
        })
    }

    /// Reads a `PUBLIC KEY` PEM block.
    pub fn from_pem(text: &[u8]) -> Result<Self> {
        if text.len() > MAX_PEM_BYTES {
            return Err(AttestError::Limit {
                what: "public key PEM".into(),
                limit: MAX_PEM_BYTES as u64,
            });
        }
        let text = std::str::from_utf8(text)
            .map_err(|_| AttestError::Key("public key PEM is not text".into()))?;
        let (label, der_bytes) = der::pem::decode_vec(text.trim().as_bytes())
            .map_err(|e| AttestError::Key(format!("not a PEM public key: {e}")))?;
        if label != "PUBLIC KEY" {
            return Err(AttestError::Key(format!(
                "expected a `PUBLIC KEY` PEM block, found `{label}`"
            )));
        }
        Self::from_spki_der(&der_bytes)
    }

    pub fn to_spki_der(&self) -> Vec<u8> {
        let oid = self.curve.oid();
        let params = der::asn1::AnyRef::from(&oid);
        let info = spki::SubjectPublicKeyInfoRef {
            algorithm: spki::AlgorithmIdentifierRef {
                oid: ID_EC_PUBLIC_KEY,
                parameters: Some(params),
            },
            subject_public_key: der::asn1::BitStringRef::from_bytes(&self.point)
                .expect("an EC point fits a bit string"),
        };
        info.to_der().expect("SPKI encodes")
    }

    /// SPKI PEM exactly as OpenSSL and Python's `cryptography` write it.
    pub fn to_pem(&self) -> String {
        der::pem::encode_string("PUBLIC KEY", der::pem::LineEnding::LF, &self.to_spki_der())
            .expect("PEM encodes")
    }

    /// Lower-case hex SHA-256 of [`Self::to_pem`]: the OMS key hint and DSSE key id.
    pub fn hint(&self) -> String {
        hex::encode(sha2::Sha256::digest(self.to_pem().as_bytes()))
    }

    /// Verifies a DER ECDSA signature over `message` with the curve's hash.
    pub fn verify(&self, message: &[u8], signature_der: &[u8]) -> Result<()> {
        signature::UnparsedPublicKey::new(self.curve.verification(), &self.point)
            .verify(message, signature_der)
            .map_err(|_| {
                AttestError::Signature(format!(
                    "the signature does not verify with key {}",
                    self.hint()
                ))
            })
    }
}

/// A signing key. The PKCS#8 bytes are kept (zeroed on drop) so the key can be sealed for
/// storage.
pub struct PrivateKey {
    pub curve: Curve,
    pair: EcdsaKeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
    rng: SystemRandom,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("curve", &self.curve)
            .field("hint", &self.public_key().hint())
            .finish_non_exhaustive()
    }
}

/// Wraps a SEC1 `ECPrivateKey` in a PKCS#8 `PrivateKeyInfo` for the given curve.
fn sec1_to_pkcs8(sec1: &[u8], curve: Curve) -> Result<Vec<u8>> {
    let oid = curve.oid();
    let info = pkcs8::PrivateKeyInfo {
        algorithm: spki::AlgorithmIdentifierRef {
            oid: ID_EC_PUBLIC_KEY,
            parameters: Some(der::asn1::AnyRef::from(&oid)),
        },
        private_key: sec1,
        public_key: None,
    };
    info.to_der()
        .map_err(|e| AttestError::Key(format!("cannot re-encode the SEC1 key: {e}")))
}

impl PrivateKey {
    pub fn generate(curve: Curve) -> Result<Self> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(curve.signing(), &rng)
            .map_err(|_| AttestError::Key("key generation failed".into()))?;
        Self::from_pkcs8_der(doc.as_ref())
    }

    /// Reads a PKCS#8 DER private key (P-256 or P-384).
    pub fn from_pkcs8_der(der_bytes: &[u8]) -> Result<Self> {
        let rng = SystemRandom::new();
        for curve in [Curve::P256, Curve::P384] {
            if let Ok(pair) = EcdsaKeyPair::from_pkcs8(curve.signing(), der_bytes, &rng) {
                return Ok(PrivateKey {
                    curve,
                    pair,
                    pkcs8: Zeroizing::new(der_bytes.to_vec()),
                    rng,
                });
            }
        }
        Err(AttestError::Key(
            "not a P-256 or P-384 ECDSA private key in PKCS#8 form (with its public key)".into(),
        ))
    }

    /// Reads a `PRIVATE KEY` (PKCS#8) or `EC PRIVATE KEY` (SEC1) PEM block. Encrypted PEM is
    /// refused with a hint: keys are protected at rest by mlsec's own sealing instead.
    pub fn from_pem(text: &[u8]) -> Result<Self> {
        use rustls_pki_types::PrivateKeyDer;
        use rustls_pki_types::pem::PemObject;
        if text.len() > MAX_PEM_BYTES {
            return Err(AttestError::Limit {
                what: "private key PEM".into(),
                limit: MAX_PEM_BYTES as u64,
            });
        }
        if text
            .windows(b"ENCRYPTED PRIVATE KEY".len())
            .any(|w| w == b"ENCRYPTED PRIVATE KEY")
        {
            return Err(AttestError::Key(
                "encrypted PEM keys are not read; decrypt with `openssl pkcs8 -in KEY -out PLAIN` \
                 and import it (`mlsec key import`), which seals it at rest"
                    .into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(text)
            .map_err(|e| AttestError::Key(format!("not a PEM private key: {e}")))?;
        match key {
            PrivateKeyDer::Pkcs8(k) => Self::from_pkcs8_der(k.secret_pkcs8_der()),
            PrivateKeyDer::Sec1(k) => {
                let sec1 = k.secret_sec1_der();
                for curve in [Curve::P256, Curve::P384] {
                    let wrapped = Zeroizing::new(sec1_to_pkcs8(sec1, curve)?);
                    if let Ok(key) = Self::from_pkcs8_der(&wrapped)
                        && key.curve == curve
                    {
                        return Ok(key);
                    }
                }
                Err(AttestError::Key(
                    "SEC1 key is not on P-256 or P-384, or lacks its public key".into(),
                ))
            }
            _ => Err(AttestError::Key(
                "RSA keys are not supported by OMS; use a P-256 or P-384 key".into(),
            )),
        }
    }

    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(
            der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, &self.pkcs8)
                .expect("PEM encodes"),
        )
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            curve: self.curve,
            point: self.pair.public_key().as_ref().to_vec(),
        }
    }

    /// DER ECDSA signature over `message` (SHA-256 for P-256, SHA-384 for P-384).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.pair
            .sign(&self.rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| AttestError::Key("signing failed".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_pem_and_sign() {
        for curve in [Curve::P256, Curve::P384] {
            let key = PrivateKey::generate(curve).unwrap();
            let again = PrivateKey::from_pem(key.to_pkcs8_pem().as_bytes()).unwrap();
            assert_eq!(again.public_key(), key.public_key());
            let public = PublicKey::from_pem(key.public_key().to_pem().as_bytes()).unwrap();
            let sig = key.sign(b"message").unwrap();
            public.verify(b"message", &sig).unwrap();
            assert!(public.verify(b"other", &sig).is_err());
            assert_eq!(public.hint().len(), 64);
        }
    }

    #[test]
    fn bad_pem_is_an_error() {
        assert!(PublicKey::from_pem(b"").is_err());
        assert!(
            PublicKey::from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .is_err()
        );
        assert!(PrivateKey::from_pem(b"garbage").is_err());
        assert!(PrivateKey::from_pem(&vec![b'A'; MAX_PEM_BYTES + 1]).is_err());
    }
}
