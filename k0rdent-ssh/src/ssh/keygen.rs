//! The admin SSH key pair the VMs accept: ed25519, generated once per deployment. The
//! private key (OpenSSH format, which libssh2 and OpenSSH read) goes to the key store; only
//! the public line is ever shown or recorded.

use k0rdent_core::secret::Secret;
use ssh_key::{Algorithm, LineEnding, PrivateKey};

/// A generated key pair.
pub struct AdminKeyPair {
    /// OpenSSH private key file contents (`-----BEGIN OPENSSH PRIVATE KEY-----`).
    pub private: Secret<Vec<u8>>,
    /// The `authorized_keys` line (`ssh-ed25519 AAAA… comment`).
    pub public: String,
}

impl std::fmt::Debug for AdminKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminKeyPair")
            .field("private", &self.private)
            .field("public", &self.public)
            .finish()
    }
}

/// Why a key could not be generated or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeygenError(String);

/// Generates an ed25519 key pair with `comment` on the public line.
///
/// # Errors
/// [`KeygenError`] if the system's random source or the encoder fails.
pub fn generate(comment: &str) -> Result<AdminKeyPair, KeygenError> {
    let mut key = PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519)
        .map_err(|e| KeygenError(e.to_string()))?;
    key.set_comment(comment);
    let private = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| KeygenError(e.to_string()))?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| KeygenError(e.to_string()))?;
    Ok(AdminKeyPair {
        private: Secret::new(private.as_bytes().to_vec()),
        public,
    })
}

/// The `authorized_keys` line of an OpenSSH private key file.
///
/// # Errors
/// [`KeygenError`] if the file is not an unencrypted OpenSSH private key.
pub fn public_of(private: &[u8]) -> Result<String, KeygenError> {
    let key = PrivateKey::from_openssh(private).map_err(|e| KeygenError(e.to_string()))?;
    key.public_key()
        .to_openssh()
        .map_err(|e| KeygenError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_pair_round_trips_and_never_prints_the_private_half() {
        let pair = generate("k0rdent-abc12345").unwrap();
        assert!(pair.public.starts_with("ssh-ed25519 AAAA"));
        assert!(pair.public.ends_with(" k0rdent-abc12345"));
        let text = std::str::from_utf8(pair.private.expose()).unwrap();
        assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        assert_eq!(public_of(pair.private.expose()).unwrap(), pair.public);
        assert!(!format!("{pair:?}").contains("OPENSSH PRIVATE KEY"));
        assert_ne!(generate("x").unwrap().public, generate("x").unwrap().public);
        assert!(public_of(b"not a key").is_err());
    }
}
