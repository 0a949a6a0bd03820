//! [`Mode`]: how a child relates to us (its process group, session and terminal), which both
//! the command and the OS layer that sets it up read.

/// How a child relates to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// The usual case (k0sctl, helm, kubectl, az): its own process group, which is stopped as
    /// a whole on cancel, timeout, failure or drop; on Linux it dies with us
    /// (`PR_SET_PDEATHSIG=SIGKILL`). Output is piped.
    #[default]
    Attached,
    /// A program that leaves a daemon behind on success (wg-quick starting wireguard-go): its
    /// own session and no parent-death signal, so what it started outlives us. It is stopped
    /// only on cancel, timeout, failure or drop — never after it succeeded.
    Daemon,
    /// A program that talks to the user on our terminal (`sudo -v` asking for a password):
    /// stays in our process group with our standard input, output and error.
    Foreground,
}
