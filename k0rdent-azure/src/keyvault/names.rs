//! Secret names: a cluster's prefix and the key name mapped onto `[0-9a-z-]`, with a digest
//! of the exact key name, so two key names that map alike never share a secret.

use sha2::{Digest, Sha256};

/// Key Vault's longest secret name.
const MAX_NAME: usize = 127;

/// `s` with every character that is not an ASCII letter or digit turned into `-`, and
/// letters lowercased.
pub(crate) fn map(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// The prefix every secret of `cluster` starts with: the mapped cluster id and `--`.
pub(crate) fn prefix(cluster: &str) -> String {
    format!("{}--", map(cluster))
}

/// The secret holding key `key` of `cluster`: `{cluster}--{key}-{digest}`, where the digest
/// (8 hex digits of SHA-256 over the exact key name) tells apart names that map alike
/// (`a.key`, `a-key`, `A.key`); the readable part is shortened to fit 127 characters.
pub fn secret_name(cluster: &str, key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let mut head = format!("{}{}", prefix(cluster), map(key));
    head.truncate(MAX_NAME - hex.len() - 1);
    format!("{head}-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_letters_digits_and_hyphens_within_127() {
        let n = secret_name("k0rdent-AB12cd34", "wireguard-hub.key");
        assert!(n.starts_with("k0rdent-ab12cd34--wireguard-hub-key-"), "{n}");
        assert_eq!(n.len(), "k0rdent-ab12cd34--wireguard-hub-key-".len() + 8);
        let long = secret_name("k0rdent-x", &"n".repeat(300));
        assert_eq!(long.len(), 127);
        for n in [n, long] {
            assert!(
                n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            );
        }
    }

    #[test]
    fn key_names_that_map_alike_get_different_secrets() {
        let names = ["a.key", "a-key", "A.key", "a_key"];
        let mut secrets: Vec<String> = names.iter().map(|k| secret_name("c", k)).collect();
        secrets.sort();
        secrets.dedup();
        assert_eq!(secrets.len(), names.len());
        // Shortened names still differ by their digest.
        let a = secret_name("c", &format!("{}a", "x".repeat(200)));
        let b = secret_name("c", &format!("{}b", "x".repeat(200)));
        assert_ne!(a, b);
        assert_eq!(secret_name("c", "a.key"), secret_name("c", "a.key"));
    }
}
