//! The OMS certificate method: the signing certificate must chain to one of the given trust
//! roots (through the intermediates in the bundle), be valid at the verification time, and be
//! usable for code signing; its key then verifies the envelope.
//!
//! Path building and validity are rustls-webpki's. Two deliberate differences from the
//! reference implementation: the time checked is the verifier's (the reference checks the
//! chain at the leaf's notBefore, so an expired certificate passes there), and an extended key
//! usage, when present, must include codeSigning.

use std::time::{Duration, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use serde::Serialize;
use sha2::Digest as _;
use webpki::{EndEntityCert, KeyUsage};

use crate::error::{AttestError, Result};

/// id-kp-codeSigning (1.3.6.1.5.5.7.3.3), DER contents.
const EKU_CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
pub const MAX_ROOTS: usize = 256;

static CHAIN_ALGORITHMS: &[&dyn rustls_pki_types::SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// Certificates trusted as roots of signing chains.
pub struct TrustRoots {
    anchors: Vec<TrustAnchor<'static>>,
    pub fingerprints: Vec<String>,
}

pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(der))
}

/// Reads every `CERTIFICATE` block of a PEM text.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| AttestError::Certificate(format!("bad PEM: {e}")))?;
        out.push(cert.to_vec());
        if out.len() > MAX_ROOTS {
            return Err(AttestError::Limit {
                what: "certificates in one PEM file".into(),
                limit: MAX_ROOTS as u64,
            });
        }
    }
    if out.is_empty() {
        return Err(AttestError::Certificate(
            "no CERTIFICATE block in the PEM text".into(),
        ));
    }
    Ok(out)
}

impl TrustRoots {
    pub fn from_der(certs: &[Vec<u8>]) -> Result<Self> {
        let mut anchors = Vec::new();
        for der in certs {
            let cert = CertificateDer::from(der.as_slice());
            let anchor = webpki::anchor_from_trusted_cert(&cert)
                .map_err(|e| AttestError::Certificate(format!("unusable trust root: {e}")))?;
            anchors.push(anchor.to_owned());
        }
        Ok(TrustRoots {
            anchors,
            fingerprints: certs.iter().map(|c| fingerprint(c)).collect(),
        })
    }

    pub fn from_pem(pem: &[u8]) -> Result<Self> {
        Self::from_der(&certificates_from_pem(pem)?)
    }
}

/// The verified signing certificate.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateSigner {
    /// SHA-256 of the signing certificate's DER.
    pub fingerprint: String,
    pub chain_length: usize,
}

/// Whether `signature` over `message` verifies with the certificate's key (ECDSA P-256/SHA-256
/// or P-384/SHA-384, DER), as OMS signs.
fn leaf_verifies(leaf: &EndEntityCert<'_>, message: &[u8], signature: &[u8]) -> bool {
    [
        webpki::ring::ECDSA_P256_SHA256,
        webpki::ring::ECDSA_P384_SHA384,
    ]
    .iter()
    .any(|alg| leaf.verify_signature(*alg, message, signature).is_ok())
}

/// [`leaf_verifies`] for a DER certificate, without checking its chain.
pub fn leaf_signature_verifies(leaf_der: &[u8], message: &[u8], signature: &[u8]) -> Result<bool> {
    let cert = CertificateDer::from(leaf_der);
    let leaf = EndEntityCert::try_from(&cert)
        .map_err(|e| AttestError::Certificate(format!("signing certificate: {e}")))?;
    Ok(leaf_verifies(&leaf, message, signature))
}

/// Verifies the chain `[leaf, intermediates…]` at `time` and the signature over `message`.
pub fn verify_certificate_signature(
    chain: &[Vec<u8>],
    roots: &TrustRoots,
    time: SystemTime,
    message: &[u8],
    signature: &[u8],
) -> Result<CertificateSigner> {
    let (leaf_der, intermediates) = chain
        .split_first()
        .ok_or_else(|| AttestError::Certificate("the chain is empty".into()))?;
    let leaf_cert = CertificateDer::from(leaf_der.as_slice());
    let leaf = EndEntityCert::try_from(&leaf_cert)
        .map_err(|e| AttestError::Certificate(format!("signing certificate: {e}")))?;
    let intermediates: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let since_epoch = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    leaf.verify_for_usage(
        CHAIN_ALGORITHMS,
        &roots.anchors,
        &intermediates,
        UnixTime::since_unix_epoch(since_epoch),
        KeyUsage::required_if_present(EKU_CODE_SIGNING),
        None,
        None,
    )
    .map_err(|e| {
        AttestError::Certificate(format!(
            "signing certificate {} does not chain to a trusted root at this time: {e}",
            fingerprint(leaf_der)
        ))
    })?;
    if !leaf_verifies(&leaf, message, signature) {
        return Err(AttestError::Signature(format!(
            "the signature does not verify with certificate {}",
            fingerprint(leaf_der)
        )));
    }
    Ok(CertificateSigner {
        fingerprint: fingerprint(leaf_der),
        chain_length: chain.len(),
    })
}
