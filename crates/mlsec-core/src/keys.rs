//! The server's Ed25519 key, which signs audit checkpoints. The secret lives in a file of mode
//! 0600 next to the database; the public half is written beside it for verifiers.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use mlsec_audit::{CheckpointSigner, TrustedKeys};

use crate::error::CoreError;

pub const SECRET_FILE: &str = "server.key";
pub const PUBLIC_FILE: &str = "server.pub";

pub struct ServerKey {
    pub signer: CheckpointSigner,
    pub secret_path: PathBuf,
    pub public_path: PathBuf,
    /// Whether this call generated the key.
    pub created: bool,
    /// Symmetric key for secrets that must stay usable (TOTP keys), derived from the server key.
    pub sealing_key: [u8; 32],
}

/// Loads the key from `dir`, generating it on first use.
pub fn load_or_create_server_key(dir: &Path) -> Result<ServerKey, CoreError> {
    let secret_path = dir.join(SECRET_FILE);
    let public_path = dir.join(PUBLIC_FILE);
    let key_err = |action: &str, e: std::io::Error| {
        CoreError::Key(format!("{action} `{}`: {e}", secret_path.display()))
    };
    let (secret, created) = match fs::read_to_string(&secret_path) {
        Ok(text) => {
            let mode = fs::metadata(&secret_path)
                .map_err(|e| key_err("stat", e))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(CoreError::Key(format!(
                    "`{}` is readable by other users (mode {:o}); run `chmod 600` on it",
                    secret_path.display(),
                    mode & 0o777
                )));
            }
            let mut secret = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut secret).map_err(|_| {
                CoreError::Key(format!(
                    "`{}` is not a 64-hex-digit key",
                    secret_path.display()
                ))
            })?;
            (secret, false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| CoreError::Key(e.to_string()))?;
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&secret_path)
                .map_err(|e| key_err("create", e))?;
            file.write_all(hex::encode(secret).as_bytes())
                .and_then(|_| file.sync_all())
                .map_err(|e| key_err("write", e))?;
            (secret, true)
        }
        Err(e) => return Err(key_err("read", e)),
    };
    let signer = CheckpointSigner::from_secret_bytes(&secret);
    let sealing_key = {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(b"mlsec/seal/v1\0");
        h.update(secret);
        h.finalize().into()
    };
    let public_hex = hex::encode(signer.verifying_key().as_bytes());
    if fs::read_to_string(&public_path)
        .map(|t| t.trim().to_owned())
        .ok()
        != Some(public_hex.clone())
    {
        fs::write(&public_path, format!("{public_hex}\n"))
            .map_err(|e| CoreError::Key(format!("write `{}`: {e}", public_path.display())))?;
    }
    Ok(ServerKey {
        signer,
        secret_path,
        public_path,
        created,
        sealing_key,
    })
}

/// Reads a public key file (64 hex digits) or takes the text itself as the key.
pub fn read_public_key(file_or_hex: &str) -> Result<VerifyingKey, CoreError> {
    let text = match fs::read_to_string(file_or_hex) {
        Ok(t) => t,
        Err(_) => file_or_hex.to_owned(),
    };
    TrustedKeys::parse_public_key(&text)
        .map_err(|e| CoreError::InvalidRequest(format!("public key `{file_or_hex}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_server_key(dir.path()).unwrap();
        assert!(first.created);
        let mode = fs::metadata(&first.secret_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_create_server_key(dir.path()).unwrap();
        assert!(!again.created);
        assert_eq!(again.signer.verifying_key(), first.signer.verifying_key());
        let public = read_public_key(first.public_path.to_str().unwrap()).unwrap();
        assert_eq!(public, first.signer.verifying_key());

        fs::set_permissions(&first.secret_path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create_server_key(dir.path()).err().unwrap();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
