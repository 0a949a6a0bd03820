//! [`Remedy`]: what the user can do about an error, a blocked step or a failed gate.

use std::borrow::Cow;

/// What the user can do about this failure, where there is something to say.
///
/// A remedy is one sentence addressed to the user that names the exact thing to do: the
/// command to run (`` run `k0rdent state unlock` ``), the configuration key or environment
/// variable to set (`set AZURE_TENANT_ID=<tenant>`), the file to restore. It does not repeat
/// what went wrong: the error's `Display` says that, and the remedy follows it.
///
/// The `k0rdent` CLI renders every remedy the same way: in text as a `hint:` line under the
/// error (or the step or gate line it belongs to), in JSON as the `remedy` field of the same
/// object. Types whose remedy is always known return `Some`; an error that wraps another
/// asks the inner error before falling back to its own.
///
/// ```
/// use std::borrow::Cow;
/// use k0rdent_core::Remedy;
///
/// struct NoConfig;
///
/// impl Remedy for NoConfig {
///     fn remedy(&self) -> Option<Cow<'_, str>> {
///         Some("run `k0rdent init` to write one".into())
///     }
/// }
///
/// assert_eq!(NoConfig.remedy().as_deref(), Some("run `k0rdent init` to write one"));
/// ```
pub trait Remedy {
    /// The remedy, or `None` when there is nothing useful to suggest.
    fn remedy(&self) -> Option<Cow<'_, str>>;
}

/// How a remedy reads in text wherever it is shown — the CLI's errors and progress lines, a
/// plan's blocked steps, a preflight report, an observer's one-line error: `hint: <remedy>`.
/// Every text rendering goes through this one `Display`, so they cannot drift apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint<'a>(Cow<'a, str>);

impl<'a> Hint<'a> {
    /// The hint for `about`, if it has a remedy.
    pub fn of(about: &'a (impl Remedy + ?Sized)) -> Option<Self> {
        about.remedy().map(Hint)
    }

    /// A hint from a remedy already held as text (e.g. a gate failure's recorded remedy).
    pub fn text(remedy: impl Into<Cow<'a, str>>) -> Self {
        Hint(remedy.into())
    }
}

/// In JSON a hint is the remedy alone (the `remedy` field); the `hint:` label is for text.
impl serde::Serialize for Hint<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl std::fmt::Display for Hint<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "hint: {}", self.0)
    }
}
