//! `azblob://ACCOUNT/CONTAINER/PATH`: where a remote state lives.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The shortest lease Azure grants.
pub const MIN_LEASE: Duration = Duration::from_secs(15);
/// The longest finite lease Azure grants.
pub const MAX_LEASE: Duration = Duration::from_secs(60);
/// The lease length when the URL sets none: a killed holder's lease lapses within it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// A parsed `azblob://ACCOUNT/CONTAINER/PATH[?lease=SECONDS]`.
///
/// The state blob is `PATH/deployment-state.yaml`, the event log `PATH/deployment-events/`,
/// the backups `PATH/backups/`. `lease` (15–60 s, default 30 s) is how long a run's lease
/// lasts between renewals, and so how long a killed run keeps others out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateUrl {
    /// The storage account.
    pub account: String,
    /// The container (created when missing).
    pub container: String,
    /// The blob name prefix, without leading or trailing `/` (may be empty).
    pub path: String,
    /// The lease length.
    pub lease: Duration,
}

/// Why a `--state` URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--state {input}: {reason} (expected azblob://ACCOUNT/CONTAINER/PATH[?lease=SECONDS])")]
pub struct StateUrlError {
    /// The URL as given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl StateUrl {
    /// The full blob name of `name` under the path.
    pub fn blob(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.path)
        }
    }
}

impl fmt::Display for StateUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "azblob://{}/{}", self.account, self.container)?;
        if !self.path.is_empty() {
            write!(f, "/{}", self.path)?;
        }
        Ok(())
    }
}

impl FromStr for StateUrl {
    type Err = StateUrlError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| StateUrlError {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = input
            .strip_prefix("azblob://")
            .ok_or_else(|| err("only azblob:// URLs are supported"))?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let mut parts = rest.splitn(3, '/');
        let account = parts.next().unwrap_or_default();
        let container = parts.next().unwrap_or_default();
        let path = parts.next().unwrap_or_default().trim_matches('/');
        if account.len() < 3
            || account.len() > 24
            || !account
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(err("the account name is 3-24 lowercase letters and digits"));
        }
        if container.len() < 3
            || container.len() > 63
            || container.starts_with('-')
            || container.ends_with('-')
            || container.contains("--")
            || !container
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(err(
                "the container name is 3-63 lowercase letters, digits and single hyphens",
            ));
        }
        if path.split('/').any(|s| s == "." || s == "..")
            || path.contains("//")
            || path.bytes().any(|b| b.is_ascii_control() || b == b'\\')
        {
            return Err(err("the path has an empty, `.` or `..` segment"));
        }
        let mut lease = DEFAULT_LEASE;
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            match pair.split_once('=') {
                Some(("lease", v)) => {
                    let secs: u64 = v
                        .trim_end_matches('s')
                        .parse()
                        .map_err(|_| err("lease is a number of seconds"))?;
                    lease = Duration::from_secs(secs);
                    if lease < MIN_LEASE || lease > MAX_LEASE {
                        return Err(err("lease is 15 to 60 seconds"));
                    }
                }
                _ => return Err(err(&format!("unknown parameter {pair:?}"))),
            }
        }
        Ok(StateUrl {
            account: account.to_owned(),
            container: container.to_owned(),
            path: path.to_owned(),
            lease,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn urls_parse_with_their_parts_and_lease() {
        let u: StateUrl = "azblob://acct1/states/prod/eu?lease=15".parse().unwrap();
        assert_eq!(
            (u.account.as_str(), u.container.as_str(), u.path.as_str()),
            ("acct1", "states", "prod/eu")
        );
        assert_eq!(u.lease, Duration::from_secs(15));
        assert_eq!(
            u.blob("deployment-state.yaml"),
            "prod/eu/deployment-state.yaml"
        );
        assert_eq!(u.to_string(), "azblob://acct1/states/prod/eu");
        let u: StateUrl = "azblob://acct1/states".parse().unwrap();
        assert_eq!(u.blob("x"), "x");
        assert_eq!(u.lease, DEFAULT_LEASE);
        for bad in [
            "s3://a/b/c",
            "azblob://A/states/x",
            "azblob://acct1/St/x",
            "azblob://acct1/states/../x",
            "azblob://acct1/states/x?lease=5",
            "azblob://acct1/states/x?lease=61",
            "azblob://acct1/states/x?color=red",
        ] {
            assert!(bad.parse::<StateUrl>().is_err(), "{bad}");
        }
    }
}
