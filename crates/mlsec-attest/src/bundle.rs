//! Sigstore bundle v0.3 as OMS v1.0 uses it: verification material (a key hint or an X.509
//! chain) and a DSSE envelope. Reading is strict (unknown fields are errors, as in the
//! reference implementation) and bounded.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::dsse::Envelope;
use crate::error::{AttestError, Result};

pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Bundles larger than this are refused before parsing (a million-file manifest fits).
pub const MAX_BUNDLE_BYTES: usize = 256 << 20;
/// Certificates beyond this many in one chain make a bundle malformed.
pub const MAX_CHAIN: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PublicKeyMaterial {
    /// Lower-case hex SHA-256 of the key's SPKI PEM. Absent in bundles of old signers.
    #[serde(default)]
    pub hint: Option<String>,
    /// Written by pre-1.0 signers; accepted and ignored (the key comes from the verifier).
    #[serde(default, skip_serializing)]
    pub raw_bytes: Option<String>,
    #[serde(default, skip_serializing)]
    pub key_details: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCertificate {
    /// Base64 of the DER certificate.
    pub raw_bytes: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateChain {
    /// The signing certificate first, then intermediates.
    pub certificates: Vec<RawCertificate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VerificationMaterial {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PublicKeyMaterial>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509_certificate_chain: Option<CertificateChain>,
    /// Transparency-log entries; carried through, not used by the key and certificate methods.
    #[serde(default)]
    pub tlog_entries: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Bundle {
    pub media_type: String,
    pub verification_material: VerificationMaterial,
    pub dsse_envelope: Envelope,
}

impl Bundle {
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(AttestError::Limit {
                what: "bundle size in bytes".into(),
                limit: MAX_BUNDLE_BYTES as u64,
            });
        }
        let bundle: Bundle = serde_json::from_slice(bytes)
            .map_err(|e| AttestError::Bundle(format!("not a Sigstore bundle: {e}")))?;
        if bundle.media_type != BUNDLE_MEDIA_TYPE {
            return Err(AttestError::Bundle(format!(
                "media type is {:?}; OMS v1.0 bundles are {BUNDLE_MEDIA_TYPE}",
                bundle.media_type
            )));
        }
        let m = &bundle.verification_material;
        match (&m.public_key, &m.x509_certificate_chain) {
            (Some(_), None) => {}
            (None, Some(chain)) => {
                if chain.certificates.is_empty() || chain.certificates.len() > MAX_CHAIN {
                    return Err(AttestError::Bundle(format!(
                        "a certificate chain holds 1 to {MAX_CHAIN} certificates, this one {}",
                        chain.certificates.len()
                    )));
                }
            }
            _ => {
                return Err(AttestError::Bundle(
                    "verification material must hold exactly one of publicKey and x509CertificateChain"
                        .into(),
                ));
            }
        }
        Ok(bundle)
    }

    /// Compact JSON, as the reference writes it.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("bundles serialise")
    }

    /// The chain's DER certificates, signing certificate first.
    pub fn certificates(&self) -> Result<Vec<Vec<u8>>> {
        let chain = self
            .verification_material
            .x509_certificate_chain
            .as_ref()
            .ok_or_else(|| AttestError::Bundle("the bundle carries no certificate chain".into()))?;
        chain
            .certificates
            .iter()
            .map(|c| {
                STANDARD.decode(&c.raw_bytes).map_err(|e| {
                    AttestError::Bundle(format!("a certificate is not standard base64: {e}"))
                })
            })
            .collect()
    }
}
