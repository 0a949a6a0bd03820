//! The k0sctl releases the generated configuration is written for, and reading the version
//! `k0sctl version` reports.
//!
//! k0sctl decodes its configuration strictly (gopkg.in/yaml.v2 `UnmarshalStrict` in
//! `pkg/manifest/reader.go`): a field a release does not know fails the whole run. The
//! document uses only fields that every release in [`K0SCTL_VERSION_RANGE`] knows, checked
//! against the k0sctl and rig sources of both ends (see [`super::k0sctl_config`]).

use std::fmt;

/// The supported k0sctl releases, as shown to users.
///
/// - From 0.19.0: every field the document uses (`openSSH` with `configPath`, `keyPath` and
///   `options`; `privateAddress`; `noTaints`; `k0s.version`, `dynamicConfig`, `config`) and
///   `k0sctl kubeconfig --address` are in its source (rig v0.18.7); older releases were not
///   read.
/// - Below 0.33.0: 0.32.x (rig v2) is the newest release read. A later minor may change the
///   strict field set or rig's `openSSH` defaults, so it is refused until it has been checked.
pub const K0SCTL_VERSION_RANGE: &str = ">= 0.19.0, < 0.33.0";

const MIN: (u64, u64, u64) = (0, 19, 0);
const FIRST_UNSUPPORTED: (u64, u64, u64) = (0, 33, 0);

/// A k0sctl release number (`v0.25.1`, `v0.26.0-rc.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K0sctlVersion {
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Patch number.
    pub patch: u64,
    /// Pre-release label after `-` (`rc.0`), if any.
    pub pre: Option<String>,
}

impl K0sctlVersion {
    /// Whether the release is in [`K0SCTL_VERSION_RANGE`]. A pre-release counts as below its
    /// release (`0.19.0-rc.1` is not supported, `0.33.0-rc.0` is not either).
    pub fn is_supported(&self) -> bool {
        let triple = (self.major, self.minor, self.patch);
        let at_least_min = triple > MIN || (triple == MIN && self.pre.is_none());
        at_least_min && triple < FIRST_UNSUPPORTED
    }
}

impl fmt::Display for K0sctlVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(pre) = &self.pre {
            write!(f, "-{pre}")?;
        }
        Ok(())
    }
}

/// `k0sctl version` printed no usable release number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum K0sctlVersionError {
    /// No `version:` line.
    #[error("`k0sctl version` printed no `version:` line (got {output:?}); is this k0sctl?")]
    NoVersionLine {
        /// The start of what it printed.
        output: String,
    },
    /// A `version:` line that is not a release number, as a `go build` from a checkout prints
    /// (`(devel)`).
    #[error(
        "`k0sctl version` reports {found:?}, not a release number: install a k0sctl release in {K0SCTL_VERSION_RANGE}"
    )]
    NotARelease {
        /// The reported value.
        found: String,
    },
}

/// Reads the release from `k0sctl version`'s output, which is (cmd/version.go, 0.19 to 0.32):
///
/// ```text
/// version: v0.25.1
/// commit: 8b1c9f1
/// ```
///
/// Build metadata after `+` is ignored.
///
/// # Errors
/// [`K0sctlVersionError`] when there is no `version:` line or its value is not
/// `[v]MAJOR.MINOR.PATCH[-PRE][+BUILD]`.
pub fn parse_k0sctl_version(output: &str) -> Result<K0sctlVersion, K0sctlVersionError> {
    let value = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("version:"))
        .map(str::trim)
        .ok_or_else(|| K0sctlVersionError::NoVersionLine {
            output: output.chars().take(200).collect(),
        })?;
    let not_release = || K0sctlVersionError::NotARelease {
        found: value.to_owned(),
    };
    let bare = value.strip_prefix('v').unwrap_or(value);
    let bare = bare.split_once('+').map_or(bare, |(v, _build)| v);
    let (numbers, pre) = match bare.split_once('-') {
        Some((n, p)) if !p.is_empty() => (n, Some(p.to_owned())),
        Some(_) => return Err(not_release()),
        None => (bare, None),
    };
    let mut parts = numbers.split('.');
    let mut number = || -> Result<u64, K0sctlVersionError> {
        let p = parts.next().ok_or_else(not_release)?;
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_release());
        }
        p.parse().map_err(|_| not_release())
    };
    let (major, minor, patch) = (number()?, number()?, number()?);
    if parts.next().is_some() {
        return Err(not_release());
    }
    Ok(K0sctlVersion {
        major,
        minor,
        patch,
        pre,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_build_is_read_from_the_version_line() {
        let v = parse_k0sctl_version("version: v0.25.1\ncommit: 8b1c9f1\n").unwrap();
        assert_eq!(
            v,
            K0sctlVersion {
                major: 0,
                minor: 25,
                patch: 1,
                pre: None
            }
        );
        assert_eq!(v.to_string(), "v0.25.1");
        assert!(v.is_supported());
    }

    #[test]
    fn pre_releases_and_build_metadata_are_kept_apart() {
        let v = parse_k0sctl_version("version: v0.26.0-rc.0+dirty\ncommit: x\n").unwrap();
        assert_eq!(v.pre.as_deref(), Some("rc.0"));
        assert_eq!(v.to_string(), "v0.26.0-rc.0");
        assert_eq!(parse_k0sctl_version("version: 0.19.0").unwrap().minor, 19);
    }

    #[test]
    fn the_range_ends_are_where_the_constant_says() {
        let supported = |s: &str| parse_k0sctl_version(s).unwrap().is_supported();
        assert!(!supported("version: v0.18.1"));
        assert!(!supported("version: v0.19.0-rc.1"));
        assert!(supported("version: v0.19.0"));
        assert!(supported("version: v0.32.2"));
        assert!(!supported("version: v0.33.0-rc.0"));
        assert!(!supported("version: v0.33.0"));
        assert!(!supported("version: v1.0.0"));
    }

    #[test]
    fn a_development_build_or_other_output_is_an_error_with_what_was_seen() {
        let e = parse_k0sctl_version("version: (devel)\ncommit: \n").unwrap_err();
        assert_eq!(
            e,
            K0sctlVersionError::NotARelease {
                found: "(devel)".into()
            }
        );
        assert!(e.to_string().contains(K0SCTL_VERSION_RANGE));
        for bad in [
            "version: v0.25",
            "version: v0.25.1.2",
            "version: v0.x.1",
            "version: v0.25.1-",
        ] {
            assert!(
                matches!(
                    parse_k0sctl_version(bad),
                    Err(K0sctlVersionError::NotARelease { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_k0sctl_version("Usage: k0sctl [command]"),
            Err(K0sctlVersionError::NoVersionLine { .. })
        ));
    }
}
