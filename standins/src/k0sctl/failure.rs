//! Why a stand-in k0sctl run stops. The texts are k0sctl's where k0sctl has one (the
//! [`Failure::Refused`] messages are copied from its phases' `fmt.Errorf` format strings),
//! so a client that matches on them is tested against the real words.

use super::reader::ConfigError;

/// A failed run; printed as k0sctl prints a fatal error and exits 1.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Wrong command line, as urfave/cli reports it.
    #[error("{0}")]
    Usage(String),
    /// The configuration file could not be read or is refused by k0sctl's rules.
    #[error("{0}")]
    Config(String),
    /// Another stand-in k0sctl run holds the lock for this configuration.
    #[error("{0}")]
    Locked(String),
    /// `ssh` could not reach or log in to a host (including an unknown host key).
    #[error("{host}: {detail}")]
    Connect {
        /// rig's name of the host.
        host: String,
        /// ssh's words.
        detail: String,
    },
    /// A command on a host failed.
    #[error("{host}: {what}: {detail}")]
    Remote {
        /// rig's name of the host.
        host: String,
        /// What the command was for.
        what: String,
        /// Exit status and stderr.
        detail: String,
    },
    /// One of k0sctl's own refusals (role change, a service installed but not running, an
    /// etcd member left behind, ...), in its words.
    #[error("{0}")]
    Refused(String),
    /// The Kubernetes API refused or could not be reached while registering nodes.
    #[error("kubernetes API: {0}")]
    Api(String),
    /// A local file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

impl Failure {
    /// A local I/O failure while doing `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Failure {
        Failure::Io {
            what: what.into(),
            source,
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Failure {
        Failure::Config(e.to_string())
    }
}
