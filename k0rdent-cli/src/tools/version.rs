//! Versions as the tools print them (`v0.19.4`, `v3.16.2+g13654a5`, `v1.32.4-dispatcher`),
//! compared on major.minor.patch only: pre-release and build suffixes name builds of the same
//! release.

use std::fmt;

/// `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// The first `[v]X.Y[.Z]` in `text` (a missing patch is 0).
    pub fn find(text: &str) -> Option<Version> {
        text.split(|c: char| c.is_whitespace() || matches!(c, '"' | ',' | ':' | '='))
            .find_map(Version::parse)
    }

    /// `[v]X.Y[.Z][-pre][+build]`.
    pub fn parse(word: &str) -> Option<Version> {
        let core = word.strip_prefix('v').unwrap_or(word);
        let core = core.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Version(major, minor, patch))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Versions a tool is known to work in: `min` inclusive, `below` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    #[allow(missing_docs)]
    pub min: Version,
    #[allow(missing_docs)]
    pub below: Version,
}

impl Range {
    /// Whether `v` is in the range.
    pub fn contains(&self, v: Version) -> bool {
        self.min <= v && v < self.below
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, ">= {}, < {}", self.min, self.below)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_the_way_the_tools_print_them() {
        assert_eq!(
            Version::find("version: v0.19.4\ncommit: 1a2b3c"),
            Some(Version(0, 19, 4))
        );
        assert_eq!(Version::find("v3.16.2+g13654a5"), Some(Version(3, 16, 2)));
        assert_eq!(
            Version::find(r#"{"clientVersion": {"gitVersion": "v1.32.4-dispatcher"}}"#),
            Some(Version(1, 32, 4))
        );
        assert_eq!(Version::find("no digits here"), None);
        assert_eq!(Version::parse("1.2.3.4"), None);
        let r = Range {
            min: Version(3, 8, 0),
            below: Version(4, 0, 0),
        };
        assert!(r.contains(Version(3, 16, 2)));
        assert!(!r.contains(Version(4, 0, 0)));
        assert!(!r.contains(Version(3, 7, 9)));
        assert_eq!(r.to_string(), ">= 3.8.0, < 4.0.0");
    }
}
