//! k0s version numbers as k0sproject/version (v0.8.0, `version.go`) reads and orders them.
//!
//! `NewVersion`: an optional leading `v`; only `a-z`, `0-9`, `+`, `-` and `.`; one to three
//! numeric segments before the first `-` or `+`; a pre-release after `-` up to `+`; build
//! metadata after `+`, where `k0s.N` is k0s's own build number.

use std::cmp::Ordering;
use std::fmt;

/// A parsed k0s version (`v1.33.2+k0s.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K0sVersion {
    segments: [u32; 3],
    pre: String,
    k0s: Option<u32>,
    text: String,
}

impl K0sVersion {
    /// Parses as k0sproject/version's `NewVersion`.
    ///
    /// # Errors
    /// The library's reason, e.g. `can't contain character V`.
    pub fn parse(input: &str) -> Result<K0sVersion, String> {
        let v = input.strip_prefix('v').unwrap_or(input);
        if v.is_empty() {
            return Err("empty version".into());
        }
        if let Some(c) = v
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(*c)))
        {
            return Err(format!("can't contain character {c}"));
        }
        let (numbers, extra) = match v.find(['-', '+']) {
            Some(i) => v.split_at(i),
            None => (v, ""),
        };
        let parts: Vec<&str> = numbers.split('.').collect();
        if parts.len() > 3 {
            return Err(format!("too many segments ({} > 3)", parts.len()));
        }
        let mut segments = [0; 3];
        for (i, p) in parts.iter().enumerate() {
            segments[i] = p
                .parse()
                .map_err(|e| format!("parsing segment '{p}': {e}"))?;
        }
        let (pre, meta) = match extra.find('+') {
            Some(i) => (&extra[..i], &extra[i + 1..]),
            None => (extra, ""),
        };
        let pre = pre.strip_prefix('-').unwrap_or(pre).to_owned();
        let metas: Vec<&str> = meta.split('.').collect();
        let k0s = metas
            .windows(2)
            .find(|w| w[0] == "k0s")
            .and_then(|w| w[1].parse().ok());
        Ok(K0sVersion {
            segments,
            pre,
            k0s,
            text: input.to_owned(),
        })
    }

    /// Whether the version sorts before `other`, as `Version.LessThan` (segments, then a
    /// pre-release before its release, then the k0s build number).
    pub fn less_than(&self, other: &K0sVersion) -> bool {
        self.compare(other) == Ordering::Less
    }

    fn compare(&self, other: &K0sVersion) -> Ordering {
        self.segments
            .cmp(&other.segments)
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_pre(&self.pre, &other.pre),
            })
            .then_with(|| self.k0s.cmp(&other.k0s))
    }
}

/// Dot-separated identifiers, numeric ones by value and before alphanumeric ones.
fn compare_pre(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.split('.'), b.split('.'));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => {
                let o = match (p.parse::<u64>(), q.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => p.cmp(q),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

impl fmt::Display for K0sVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> K0sVersion {
        K0sVersion::parse(s).unwrap()
    }

    #[test]
    fn k0s_style_versions_parse_with_their_build_number() {
        let x = v("v1.33.2+k0s.0");
        assert_eq!(x.segments, [1, 33, 2]);
        assert_eq!(x.k0s, Some(0));
        assert_eq!(
            v("1.33.2+k0s.0"),
            K0sVersion {
                text: "1.33.2+k0s.0".into(),
                ..x
            }
        );
        assert_eq!(v("v1.30.0-rc.1+k0s.0").pre, "rc.1");
        assert_eq!(v("1.33").segments, [1, 33, 0]);
    }

    #[test]
    fn what_the_library_refuses_is_refused() {
        for bad in [
            "",
            "v",
            "V1.33.2",
            "v1.33.2+K0S.0",
            "1.2.3.4",
            "1.x.2",
            "1.33 .2",
            "v1.33.2_k0s",
        ] {
            assert!(K0sVersion::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ordering_puts_pre_releases_and_older_k0s_builds_first() {
        assert!(v("0.11.0-rc1").less_than(&v("0.11.0")));
        assert!(v("0.10.9").less_than(&v("0.11.0-rc1")));
        assert!(v("1.22.2+k0s.1").less_than(&v("1.22.2+k0s.2")));
        assert!(!v("1.33.2+k0s.0").less_than(&v("1.22.2+k0s.2")));
        assert!(v("1.30.0-rc.2").less_than(&v("1.30.0-rc.10")));
    }
}
