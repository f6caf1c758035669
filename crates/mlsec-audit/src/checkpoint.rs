use std::collections::HashMap;
use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use mlsec_types::Digest;
use serde::{Deserialize, Serialize};

use crate::event::AuditError;

/// Domain separation: a checkpoint signature can never be mistaken for a signature over anything
/// else the same key might sign.
const CHECKPOINT_CONTEXT: &[u8] = b"mlsec-audit-checkpoint-v1\n";

/// The signed statement "the chain had `index + 1` events and its head was `head` at `time`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Index of the last event the checkpoint covers.
    pub index: u64,
    /// Chain hash of that event.
    pub head: Digest,
    pub time: String,
    pub key_id: KeyId,
}

impl Checkpoint {
    fn signed_bytes(&self) -> Result<Vec<u8>, AuditError> {
        let mut message = CHECKPOINT_CONTEXT.to_vec();
        message.extend(
            serde_json_canonicalizer::to_vec(self)
                .map_err(|e| AuditError::Encode(e.to_string()))?,
        );
        Ok(message)
    }
}

/// A checkpoint with its Ed25519 signature (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub signature: String,
}

/// Short, stable identifier of a public key: the first 16 hex digits of SHA-256 over its bytes.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(pub String);

impl KeyId {
    pub fn of(key: &VerifyingKey) -> Self {
        KeyId(format!(
            "ed25519:{}",
            &Digest::of(key.as_bytes()).hex()[..16]
        ))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Signs checkpoints with the server key.
pub struct CheckpointSigner {
    key: SigningKey,
    key_id: KeyId,
}

impl CheckpointSigner {
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(secret);
        let key_id = KeyId::of(&key.verifying_key());
        CheckpointSigner { key, key_id }
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    pub fn sign(
        &self,
        index: u64,
        head: Digest,
        time: String,
    ) -> Result<SignedCheckpoint, AuditError> {
        let checkpoint = Checkpoint {
            index,
            head,
            time,
            key_id: self.key_id.clone(),
        };
        let signature = self.key.sign(&checkpoint.signed_bytes()?);
        Ok(SignedCheckpoint {
            checkpoint,
            signature: hex::encode(signature.to_bytes()),
        })
    }
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("CheckpointSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// The public keys whose checkpoints are accepted.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: HashMap<KeyId, VerifyingKey>,
}

impl TrustedKeys {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, key: VerifyingKey) -> Self {
        self.add(key);
        self
    }

    pub fn add(&mut self, key: VerifyingKey) {
        self.keys.insert(KeyId::of(&key), key);
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Parses a public key given as 64 hex characters.
    pub fn parse_public_key(hex_text: &str) -> Result<VerifyingKey, AuditError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_text.trim(), &mut bytes)
            .map_err(|_| AuditError::Signature("public key is not 64 hex characters".into()))?;
        VerifyingKey::from_bytes(&bytes).map_err(|e| AuditError::Signature(e.to_string()))
    }

    /// Checks the signature of `signed` against the trusted key it names.
    pub fn verify(&self, signed: &SignedCheckpoint) -> Result<(), CheckpointProblem> {
        let key = self
            .keys
            .get(&signed.checkpoint.key_id)
            .ok_or(CheckpointProblem::UntrustedKey)?;
        // The key id is a claim; the key that verifies is what matters, so re-derive it.
        if KeyId::of(key) != signed.checkpoint.key_id {
            return Err(CheckpointProblem::UntrustedKey);
        }
        let mut raw = [0u8; 64];
        hex::decode_to_slice(&signed.signature, &mut raw)
            .map_err(|_| CheckpointProblem::BadSignature)?;
        let signature = Signature::from_bytes(&raw);
        let message = signed
            .checkpoint
            .signed_bytes()
            .map_err(|_| CheckpointProblem::BadSignature)?;
        key.verify_strict(&message, &signature)
            .map_err(|_| CheckpointProblem::BadSignature)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointProblem {
    UntrustedKey,
    BadSignature,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_reject_other_key_or_edit() {
        let signer = CheckpointSigner::from_secret_bytes(&[7; 32]);
        let other = CheckpointSigner::from_secret_bytes(&[8; 32]);
        let trusted = TrustedKeys::new().with(signer.verifying_key());
        let cp = signer.sign(9, Digest::of(b"x"), "t".into()).unwrap();
        assert_eq!(trusted.verify(&cp), Ok(()));

        let foreign = other.sign(9, Digest::of(b"x"), "t".into()).unwrap();
        assert_eq!(
            trusted.verify(&foreign),
            Err(CheckpointProblem::UntrustedKey)
        );

        // A foreign signature relabelled with the trusted key id still fails.
        let mut relabelled = foreign.clone();
        relabelled.checkpoint.key_id = signer.key_id().clone();
        assert_eq!(
            trusted.verify(&relabelled),
            Err(CheckpointProblem::BadSignature)
        );

        let mut edited = cp.clone();
        edited.checkpoint.index = 10;
        assert_eq!(
            trusted.verify(&edited),
            Err(CheckpointProblem::BadSignature)
        );
    }
}
