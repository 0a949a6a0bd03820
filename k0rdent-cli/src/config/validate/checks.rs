//! [`Checks`]: the problems and warnings found so far, and the checks every section shares.

use std::path::Path;
use std::time::Duration;

use ipnet::Ipv4Net;

use crate::config::{ConfigError, Problem};

/// What the sections found: every problem (each naming its key) and every warning.
#[derive(Debug, Default)]
pub(super) struct Checks {
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

impl Checks {
    /// A problem with `key`.
    pub(super) fn error(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            key: Some(key.to_owned()),
            line: None,
            message: message.into(),
        });
    }

    /// An accepted but unusual value of `key`.
    pub(super) fn warn(&mut self, key: &str, message: impl Into<String>) {
        self.warnings.push(format!("{key}: {}", message.into()));
    }

    /// Whether no check failed.
    pub(super) fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems as the error of the file at `path`. A section that gave no value always
    /// said why; should one not have, the error says so instead of listing nothing.
    pub(super) fn into_error(mut self, path: &Path) -> ConfigError {
        if self.problems.is_empty() {
            self.problems.push(Problem {
                key: None,
                line: None,
                message: "a check failed without saying why; report this as a bug".into(),
            });
        }
        ConfigError {
            path: path.to_path_buf(),
            problems: self.problems,
        }
    }

    /// The warnings, each prefixed with the file.
    pub(super) fn warnings(&self, path: &Path) -> Vec<String> {
        self.warnings
            .iter()
            .map(|w| format!("{}: {w}", path.display()))
            .collect()
    }

    /// A trimmed text, or `default` when the key is absent. An empty text is a problem (and
    /// gives `default`, so later checks still run).
    pub(super) fn text(&mut self, key: &str, v: Option<String>, default: &str) -> String {
        match v {
            Some(s) if s.trim().is_empty() => {
                self.error(key, "must not be empty (remove the key to use the default)");
                default.to_owned()
            }
            Some(s) => s.trim().to_owned(),
            None => default.to_owned(),
        }
    }

    /// An IPv4 network without host bits, or `default`.
    pub(super) fn cidr(&mut self, key: &str, v: Option<String>, default: &str) -> Ipv4Net {
        let text = v.unwrap_or_else(|| default.to_owned());
        let fallback = default.parse().unwrap_or_default();
        match text.trim().parse::<Ipv4Net>() {
            Ok(net) if net.trunc() != net => {
                self.error(
                    key,
                    format!("{text} has host bits set; did you mean {}?", net.trunc()),
                );
                fallback
            }
            Ok(net) => net,
            Err(_) => {
                self.error(
                    key,
                    format!("{text:?} is not an IPv4 CIDR like 10.0.0.0/16"),
                );
                fallback
            }
        }
    }

    /// A positive count of `unit` seconds, or `default` of them.
    pub(super) fn seconds(
        &mut self,
        key: &str,
        v: Option<i64>,
        default: u64,
        unit: u64,
    ) -> Duration {
        match v {
            None => Duration::from_secs(default * unit),
            Some(n) if n > 0 => Duration::from_secs(u64::try_from(n).unwrap_or(1) * unit),
            Some(n) => {
                self.error(key, format!("must be a positive number, found {n}"));
                Duration::from_secs(default * unit)
            }
        }
    }
}
