//! WireGuard keys (x25519): a validated public key, a private key that never prints, and whose
//! key it is.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use k0rdent_core::secret::Secret;
use k0rdent_core::state::keys;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A WireGuard public key: 32 bytes, written as 44 characters of base64 (as `wg pubkey`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

/// Text that is not a WireGuard key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a WireGuard key (expected 44 characters of base64 encoding 32 bytes, as `wg genkey` prints)"
)]
pub struct InvalidKey;

fn decode32(s: &str) -> Result<[u8; 32], InvalidKey> {
    let bytes = B64.decode(s.trim()).map_err(|_| InvalidKey)?;
    bytes.try_into().map_err(|_| InvalidKey)
}

impl PublicKey {
    #[allow(missing_docs)]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Base64, as in wg-quick files.
    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    /// A short prefix for logs and tables.
    pub fn short(&self) -> String {
        let s = self.to_base64();
        s[..8].to_owned()
    }

    /// As a wireguard-control key.
    pub(crate) fn to_wg(&self) -> wireguard_control::Key {
        wireguard_control::Key(self.0)
    }

    /// From a wireguard-control key.
    pub(crate) fn from_wg(k: &wireguard_control::Key) -> Self {
        PublicKey(k.0)
    }
}

impl FromStr for PublicKey {
    type Err = InvalidKey;
    fn from_str(s: &str) -> Result<Self, InvalidKey> {
        decode32(s).map(PublicKey)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A WireGuard private key. `Debug` and `Display` print `[redacted]`; the key file format
/// (base64 and a newline, as `wg genkey` writes it) is the only way out.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey(Secret<[u8; 32]>);

impl PrivateKey {
    /// A fresh key from the operating system's random source, clamped as `wg genkey` does.
    pub fn generate() -> Self {
        let secret = x25519_dalek::StaticSecret::random();
        let mut bytes = secret.to_bytes();
        bytes[0] &= 248;
        bytes[31] &= 127;
        bytes[31] |= 64;
        PrivateKey(Secret::new(bytes))
    }

    /// Reads a key file's content (base64, surrounding whitespace ignored).
    ///
    /// # Errors
    /// [`InvalidKey`] (the message never contains the input).
    pub fn from_key_file(bytes: &[u8]) -> Result<Self, InvalidKey> {
        let text = std::str::from_utf8(bytes).map_err(|_| InvalidKey)?;
        decode32(text).map(|b| PrivateKey(Secret::new(b)))
    }

    /// The key file's content: base64 and a newline.
    pub fn to_key_file(&self) -> Secret<Vec<u8>> {
        let mut s = B64.encode(self.0.expose()).into_bytes();
        s.push(b'\n');
        Secret::new(s)
    }

    /// The base64 text for a wg-quick `PrivateKey =` line.
    pub fn to_base64(&self) -> Secret<String> {
        Secret::new(B64.encode(self.0.expose()))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        let secret = x25519_dalek::StaticSecret::from(*self.0.expose());
        PublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes())
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey([redacted])")
    }
}

/// Whose key it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // `Node` holds the node's name
pub enum KeyOwner {
    /// The operator's machine, the one peer every node has.
    Hub,
    Node(String),
}

impl KeyOwner {
    /// The key file name in the store's `keys/`.
    pub fn key_name(&self) -> String {
        match self {
            KeyOwner::Hub => keys::WIREGUARD_HUB.to_owned(),
            KeyOwner::Node(n) => keys::wireguard_node(n),
        }
    }
}

impl fmt::Display for KeyOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOwner::Hub => f.write_str("the hub"),
            KeyOwner::Node(n) => write!(f, "node {n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_matches_wg_pubkey() {
        // `echo <priv> | wg pubkey` with the example key from wg(8)'s test vectors.
        let private =
            PrivateKey::from_key_file(b"yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n").unwrap();
        assert_eq!(
            private.public_key().to_base64(),
            "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
        );
    }

    #[test]
    fn key_files_round_trip_and_never_print() {
        let k = PrivateKey::generate();
        let file = k.to_key_file();
        let back = PrivateKey::from_key_file(file.expose()).unwrap();
        assert_eq!(back.public_key(), k.public_key());
        let b64 = k.to_base64().expose().clone();
        assert!(!format!("{k:?}").contains(&b64));
        assert_eq!(format!("{}", k.to_base64()), "[redacted]");
    }

    #[test]
    fn bad_keys_are_rejected_without_echoing_them() {
        for bad in ["", "abc", "not base64 at all!!", "AAAA"] {
            let e = bad.parse::<PublicKey>().unwrap_err();
            assert!(!e.to_string().contains("not base64 at all"));
        }
        assert!(PrivateKey::from_key_file(&[0xff, 0xfe]).is_err());
    }
}
