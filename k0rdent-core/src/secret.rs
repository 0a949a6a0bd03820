//! [`Secret`]: a value that never prints.

use std::fmt;

use serde::{Serialize, Serializer};

/// Wraps a secret (private key, client secret, token). `Debug`, `Display` and `Serialize` all
/// render `[redacted]`; the value is only reachable through [`Secret::expose`].
///
/// ```
/// use k0rdent_core::secret::Secret;
/// let s = Secret::new(String::from("hunter2"));
/// assert_eq!(format!("{s} {s:?}"), "[redacted] [redacted]");
/// assert_eq!(serde_json::to_string(&s).unwrap(), "\"[redacted]\"");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    #[allow(missing_docs)]
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The secret value. Callers must not log or print it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the secret value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(v: T) -> Self {
        Secret(v)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}
