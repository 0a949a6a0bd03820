//! SSH to the nodes with ssh2 (libssh2): one session per host reused for many commands,
//! exec with timeouts and bounded output, small uploads, host keys pinned on first contact
//! and exported as `known_hosts`, every connection through one [`SshConnector`] that first
//! passes the "VPN up" check. Never `StrictHostKeyChecking=no`.

pub mod connector;
pub mod error;
pub mod hostkey;
pub mod keygen;
pub mod pins;
pub mod session;
mod transport;

pub use connector::{ConnectOptions, NodeTarget, Route, SshConnector, SshCredentials};
pub use error::{SshError, SshFailure};
pub use hostkey::{
    BadHostKey, HOST_KEY_GLOB, HostKey, PinDecision, PinnedHost, RecordedRecreate, VM_RECREATED,
    decide, known_hosts_from_state, parse_host_key_files, recorded_recreates, render_known_hosts,
    write_known_hosts,
};
pub use pins::{PinError, PinStore, StatePins};
pub use session::{ExecOptions, ExecOutput, MAX_UPLOAD, SshSession, shell_quote};
