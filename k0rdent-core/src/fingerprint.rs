//! Input fingerprints: what a step consumed when it last converged.
//!
//! A [`Fingerprint`] has up to three digests. `inputs` covers everything the step consumes;
//! `immutable` covers the subset that cannot change in place (a VM's custom data, zone, image,
//! admin user); `disruptive` the subset that changes in place but restarts the resource (a VM's
//! size). The planner compares them with the recorded ones: a changed `immutable` digest plans
//! `replace`, a changed `disruptive` one a rerun that needs confirmation, a changed `inputs`
//! digest a plain `rerun`.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A 128-bit digest printed as 32 hex characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Digest(String);

impl Digest {
    fn from_hasher(h: Sha256) -> Self {
        let out = h.finalize();
        let mut s = String::with_capacity(32);
        for b in &out[..16] {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        Digest(s)
    }

    /// The digest as hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Digest of arbitrary bytes (e.g. a config file).
    pub fn of_bytes(bytes: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(bytes);
        Digest::from_hasher(h)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.0)
    }
}

/// What a step consumed: a digest of all inputs and a digest of the immutable ones.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Digest over every input (including the immutable ones).
    pub inputs: Digest,
    /// Digest over the inputs that cannot change in place.
    pub immutable: Digest,
    /// Digest over the inputs that change in place with a restart; `None` when the step has
    /// none (and in records written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruptive: Option<Digest>,
}

impl Fingerprint {
    #[allow(missing_docs)]
    pub fn builder() -> FingerprintBuilder {
        FingerprintBuilder::new()
    }

    /// The fingerprint of a step without inputs.
    pub fn empty() -> Self {
        FingerprintBuilder::new().finish()
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({}/{})", self.inputs, self.immutable)
    }
}

/// Builds a [`Fingerprint`] from named inputs. Field names are hashed with their values, so
/// renaming or reordering inputs changes the fingerprint on purpose.
#[derive(Clone)]
#[must_use]
pub struct FingerprintBuilder {
    all: Sha256,
    immutable: Sha256,
    disruptive: Option<Sha256>,
}

impl Default for FingerprintBuilder {
    fn default() -> Self {
        Self::new()
    }
}

fn feed(h: &mut Sha256, name: &str, bytes: &[u8]) {
    h.update((name.len() as u64).to_le_bytes());
    h.update(name.as_bytes());
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

fn json_bytes<T: Serialize + ?Sized>(name: &str, value: &T) -> Vec<u8> {
    match serde_json::to_vec(value) {
        Ok(v) => v,
        Err(e) => {
            // Deterministic for the same value: the error text is hashed in its place.
            tracing::warn!(input = name, error = %e, "fingerprint input is not serializable");
            format!("\u{0}unserializable:{e}").into_bytes()
        }
    }
}

impl FingerprintBuilder {
    #[allow(missing_docs)]
    pub fn new() -> Self {
        FingerprintBuilder {
            all: Sha256::new(),
            immutable: Sha256::new(),
            disruptive: None,
        }
    }

    /// Adds an input that can change in place.
    pub fn input<T: Serialize + ?Sized>(mut self, name: &str, value: &T) -> Self {
        let b = json_bytes(name, value);
        feed(&mut self.all, name, &b);
        self
    }

    /// Adds raw bytes as an input that can change in place.
    pub fn input_bytes(mut self, name: &str, bytes: &[u8]) -> Self {
        feed(&mut self.all, name, bytes);
        self
    }

    /// Adds an input whose change needs delete + create (plans `replace`).
    pub fn immutable<T: Serialize + ?Sized>(mut self, name: &str, value: &T) -> Self {
        let b = json_bytes(name, value);
        feed(&mut self.all, name, &b);
        feed(&mut self.immutable, name, &b);
        self
    }

    /// Adds raw bytes as an immutable input.
    pub fn immutable_bytes(mut self, name: &str, bytes: &[u8]) -> Self {
        feed(&mut self.all, name, bytes);
        feed(&mut self.immutable, name, bytes);
        self
    }

    /// Adds an input that changes in place but restarts what the step manages (plans a rerun
    /// that needs confirmation).
    pub fn disruptive<T: Serialize + ?Sized>(mut self, name: &str, value: &T) -> Self {
        let b = json_bytes(name, value);
        feed(&mut self.all, name, &b);
        feed(self.disruptive.get_or_insert_with(Sha256::new), name, &b);
        self
    }

    /// The digests; `disruptive` is `None` when no disruptive input was added.
    pub fn finish(self) -> Fingerprint {
        Fingerprint {
            inputs: Digest::from_hasher(self.all),
            immutable: Digest::from_hasher(self.immutable),
            disruptive: self.disruptive.map(Digest::from_hasher),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_give_the_same_fingerprint() {
        let a = Fingerprint::builder()
            .input("size", "D2")
            .immutable("zone", &1)
            .finish();
        let b = Fingerprint::builder()
            .input("size", "D2")
            .immutable("zone", &1)
            .finish();
        assert_eq!(a, b);
        assert_eq!(a.inputs.as_str().len(), 32);
    }

    #[test]
    fn a_mutable_change_keeps_the_immutable_digest() {
        let a = Fingerprint::builder()
            .input("size", "D2")
            .immutable("zone", &1)
            .finish();
        let b = Fingerprint::builder()
            .input("size", "D4")
            .immutable("zone", &1)
            .finish();
        assert_ne!(a.inputs, b.inputs);
        assert_eq!(a.immutable, b.immutable);
        let c = Fingerprint::builder()
            .input("size", "D2")
            .immutable("zone", &2)
            .finish();
        assert_ne!(a.immutable, c.immutable);
    }

    #[test]
    fn a_disruptive_change_is_told_apart_and_keeps_the_inputs_digest_of_a_plain_input() {
        let plain = Fingerprint::builder().input("size", "D2").finish();
        let a = Fingerprint::builder().disruptive("size", "D2").finish();
        let b = Fingerprint::builder().disruptive("size", "D4").finish();
        // Declaring an input disruptive does not change what it digests to overall, so a
        // record written before the declaration does not rerun for nothing.
        assert_eq!(plain.inputs, a.inputs);
        assert_eq!(plain.disruptive, None);
        assert_ne!(a.disruptive, b.disruptive);
        assert_eq!(a.immutable, b.immutable);
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let a = Fingerprint::builder().input("ab", "c").finish();
        let b = Fingerprint::builder().input("a", "bc").finish();
        assert_ne!(a, b);
    }
}
