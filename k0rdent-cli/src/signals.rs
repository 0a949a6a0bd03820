//! Two-stage interruption: the first Ctrl-C (or SIGTERM) stops at the next safe point; the
//! second exits at once. The state is valid either way (every save is atomic); on the second,
//! the event log gets at most [`FLUSH_ON_EXIT`] to write out what is queued.

use std::time::Duration;

use k0rdent_core::cancel::Cancellation;

use crate::exit::ExitStatus;

/// How long the second interrupt waits for the event log before exiting.
pub const FLUSH_ON_EXIT: Duration = Duration::from_millis(300);

/// Installs the handlers for `cancel` (before returning, so no interrupt is missed) and spawns
/// the watcher.
pub fn install(cancel: Cancellation) {
    let mut signals = Signals::new();
    tokio::spawn(async move {
        signals.next().await;
        cancel.cancel("interrupted by the user");
        signals.next().await;
        // Exiting does not drop the futures that own running tools: kill their groups now.
        k0rdent_process::kill_all_now();
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"Second interrupt: exiting now. The state is valid; run the command again to continue.\n",
        );
        cancel.escalate();
        let _ = tokio::time::timeout(FLUSH_ON_EXIT, cancel.flushed()).await;
        std::process::exit(i32::from(ExitStatus::Interrupted.code()));
    });
}

/// SIGINT and SIGTERM, registered when created.
#[cfg(unix)]
struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

#[cfg(unix)]
impl Signals {
    fn new() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let int = signal(SignalKind::interrupt())
            .map_err(|e| tracing::warn!(error = %e, "cannot handle SIGINT"))
            .ok();
        let term = signal(SignalKind::terminate())
            .map_err(|e| tracing::warn!(error = %e, "cannot handle SIGTERM"))
            .ok();
        Signals { int, term }
    }

    async fn next(&mut self) {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = recv(&mut self.int) => {}
            () = recv(&mut self.term) => {}
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> Self {
        Signals
    }

    async fn next(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
