//! Identifiers: [`StepId`] and [`RunId`], validated on construction.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)] // fields named after what they hold
pub enum IdError {
    /// The phase part is not snake_case (`[a-z][a-z0-9_]*`, at most 64 characters).
    #[error("invalid phase id {id:?}: use snake_case ([a-z][a-z0-9_]*, at most 64 characters)")]
    Phase { id: String },
    /// The item part is not a resource name (`[a-z0-9][a-z0-9-]*`, at most 80 characters).
    #[error(
        "invalid item {item:?} in step id {id:?}: use a resource name ([a-z0-9][a-z0-9-]*, at most 80 characters)"
    )]
    Item {
        /// The whole rejected input.
        id: String,
        /// The rejected item part.
        item: String,
    },
}

/// A step identifier: a phase (`create_vms`) or a phase sub-step (`create_vms/k0s-controller-1`).
///
/// Phase ids are stable snake_case names (they are keys in the state file and users type them
/// in `--until`); items are resource names. The invariant is checked on construction, so a
/// `StepId` in hand is always well formed: [`StepId::parse`] checks text known only at run
/// time, [`StepId::from_static`] checks a literal while the program compiles.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StepId {
    // Borrowed for ids fixed in the program, owned for ids parsed at run time; equality,
    // ordering and hashing compare the text either way.
    text: Cow<'static, str>,
    // Byte offset of '/' when this is a sub-step.
    slash: Option<usize>,
}

/// Whether `b[start..end]` is a phase: `[a-z][a-z0-9_]*`, at most 64 bytes. A `const fn` so
/// [`StepId::from_static`] checks literals with the same rule as [`StepId::parse`].
const fn valid_phase(b: &[u8], start: usize, end: usize) -> bool {
    if end <= start || end - start > 64 || !b[start].is_ascii_lowercase() {
        return false;
    }
    let mut i = start;
    while i < end {
        let c = b[i];
        if !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_') {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `b[start..end]` is an item: `[a-z0-9][a-z0-9-]*`, at most 80 bytes.
const fn valid_item(b: &[u8], start: usize, end: usize) -> bool {
    if end <= start || end - start > 80 {
        return false;
    }
    if !(b[start].is_ascii_lowercase() || b[start].is_ascii_digit()) {
        return false;
    }
    let mut i = start;
    while i < end {
        let c = b[i];
        if !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-') {
            return false;
        }
        i += 1;
    }
    true
}

/// The offset of the first `/`, if any.
const fn first_slash(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Why `s` is not a step id (the phase or the item part), or where its slash is.
enum Shape {
    Valid(Option<usize>),
    BadPhase,
    BadItem(usize),
}

const fn shape(s: &str) -> Shape {
    let b = s.as_bytes();
    match first_slash(b) {
        None if valid_phase(b, 0, b.len()) => Shape::Valid(None),
        None => Shape::BadPhase,
        Some(i) if !valid_phase(b, 0, i) => Shape::BadPhase,
        Some(i) if !valid_item(b, i + 1, b.len()) => Shape::BadItem(i),
        Some(i) => Shape::Valid(Some(i)),
    }
}

impl StepId {
    /// Parses `phase` or `phase/item`.
    ///
    /// # Errors
    /// [`IdError`] naming the offending part.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match shape(s) {
            Shape::Valid(slash) => Ok(StepId {
                text: Cow::Owned(s.to_owned()),
                slash,
            }),
            Shape::BadPhase => Err(IdError::Phase { id: s.to_owned() }),
            Shape::BadItem(i) => Err(IdError::Item {
                id: s.to_owned(),
                item: s[i + 1..].to_owned(),
            }),
        }
    }

    /// A step id fixed in the program, checked by the same rule as [`StepId::parse`]:
    ///
    /// ```
    /// use k0rdent_core::StepId;
    /// const SETUP_NETWORK: StepId = StepId::from_static("setup_network");
    /// assert_eq!(SETUP_NETWORK.as_str(), "setup_network");
    /// ```
    ///
    /// Declared as a `const`, a malformed literal does not compile:
    ///
    /// ```compile_fail
    /// use k0rdent_core::StepId;
    /// const BAD: StepId = StepId::from_static("Setup-Network");
    /// ```
    ///
    /// # Panics
    /// If `s` is not a step id: at compile time in a `const` item (which is how it is meant to
    /// be used), at run time otherwise. Text that is not a literal goes to [`StepId::parse`].
    #[must_use]
    pub const fn from_static(s: &'static str) -> StepId {
        match shape(s) {
            Shape::Valid(slash) => StepId {
                text: Cow::Borrowed(s),
                slash,
            },
            Shape::BadPhase => {
                panic!("invalid phase in step id: use [a-z][a-z0-9_]*, at most 64 characters")
            }
            Shape::BadItem(_) => {
                panic!("invalid item in step id: use [a-z0-9][a-z0-9-]*, at most 80 characters")
            }
        }
    }

    /// The sub-step `self/item` of this phase.
    ///
    /// # Errors
    /// [`IdError`] if `self` is already a sub-step or `item` is not a resource name.
    pub fn item_of(&self, item: &str) -> Result<Self, IdError> {
        StepId::parse(&format!("{}/{}", self.phase(), item)).and_then(|id| {
            if self.slash.is_some() {
                Err(IdError::Item {
                    id: format!("{self}/{item}"),
                    item: item.to_owned(),
                })
            } else {
                Ok(id)
            }
        })
    }

    /// The phase part (`create_vms` for `create_vms/k0s-controller-1`).
    pub fn phase(&self) -> &str {
        match self.slash {
            Some(i) => &self.text[..i],
            None => &self.text,
        }
    }

    /// The item part, if this is a sub-step.
    pub fn item(&self) -> Option<&str> {
        self.slash.map(|i| &self.text[i + 1..])
    }

    /// Whether this is a sub-step (`phase/item`).
    pub fn is_item(&self) -> bool {
        self.slash.is_some()
    }

    /// The phase id of a sub-step, or `self` for a phase.
    pub fn phase_id(&self) -> StepId {
        let text = match &self.text {
            Cow::Borrowed(s) => match self.slash {
                Some(i) => Cow::Borrowed(&s[..i]),
                None => Cow::Borrowed(*s),
            },
            Cow::Owned(_) => Cow::Owned(self.phase().to_owned()),
        };
        StepId { text, slash: None }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for StepId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StepId::parse(s)
    }
}

impl TryFrom<String> for StepId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        StepId::parse(&s)
    }
}

impl From<StepId> for String {
    fn from(id: StepId) -> String {
        id.text.into_owned()
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl AsRef<str> for StepId {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

/// In a JSON Schema a step id is a string (`phase` or `phase/item`).
#[cfg(feature = "schema")]
impl schemars::JsonSchema for StepId {
    fn schema_name() -> Cow<'static, str> {
        "StepId".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
}

/// Identifies one run of the engine (`deploy`, `reset`, `refresh`): a UTC timestamp plus random
/// suffix, e.g. `20261128T212204Z-3f9a1c0e`. Sorts by start time.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct RunId(String);

impl RunId {
    /// A new run id for a run starting now.
    pub fn generate() -> Self {
        let now = chrono::Utc::now();
        RunId(format!(
            "{}-{:08x}",
            now.format("%Y%m%dT%H%M%SZ"),
            fastrand::u32(..)
        ))
    }

    /// Wraps an existing id (e.g. read from a state file).
    pub fn from_string(s: impl Into<String>) -> Self {
        RunId(s.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_and_item_ids_parse_and_split() {
        let id = StepId::parse("create_vms/k0s-controller-1").unwrap();
        assert_eq!(id.phase(), "create_vms");
        assert_eq!(id.item(), Some("k0s-controller-1"));
        assert!(id.is_item());
        assert_eq!(id.phase_id().as_str(), "create_vms");
        let p = StepId::parse("install_k0s").unwrap();
        assert_eq!(p.item(), None);
        assert_eq!(p.item_of("a-1").unwrap().as_str(), "install_k0s/a-1");
    }

    #[test]
    fn malformed_ids_are_rejected_with_the_offending_part() {
        for bad in ["", "Create", "1abc", "a-b", "a/B", "a/", "a/b/c", "a/-x"] {
            assert!(StepId::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let err = StepId::parse("create_vms/VM_1").unwrap_err();
        assert!(err.to_string().contains("VM_1"), "{err}");
        let nested = StepId::parse("a/b").unwrap();
        assert!(nested.item_of("c").is_err());
    }

    #[test]
    fn fixed_ids_equal_parsed_ones_and_serialize_the_same() {
        const VM: StepId = StepId::from_static("create_vms/k0s-controller-1");
        const PHASE: StepId = StepId::from_static("create_vms");
        let parsed = StepId::parse("create_vms/k0s-controller-1").unwrap();
        assert_eq!(VM, parsed);
        assert_eq!(VM.phase(), "create_vms");
        assert_eq!(VM.item(), Some("k0s-controller-1"));
        assert_eq!(VM.phase_id(), PHASE);
        assert_eq!(
            serde_json::to_string(&VM).unwrap(),
            serde_json::to_string(&parsed).unwrap()
        );
        let mut set = std::collections::BTreeSet::new();
        set.insert(parsed);
        assert!(set.contains(&VM));
    }

    #[test]
    #[should_panic(expected = "invalid item in step id")]
    fn a_malformed_fixed_id_panics_when_not_const() {
        let _ = StepId::from_static("a/B");
    }

    #[test]
    fn step_ids_round_trip_through_serde() {
        let id = StepId::parse("create_vms/vm-1").unwrap();
        let y = serde_json::to_string(&id).unwrap();
        assert_eq!(y, "\"create_vms/vm-1\"");
        let back: StepId = serde_json::from_str(&y).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<StepId>("\"Bad\"").is_err());
    }

    #[test]
    fn run_ids_sort_by_time_and_are_unique() {
        let a = RunId::generate();
        let b = RunId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), "20261128T212204Z-3f9a1c0e".len());
    }
}
