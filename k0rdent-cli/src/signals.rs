//! Two-stage interruption: the first Ctrl-C (or SIGTERM) stops at the next safe point; the
//! second exits at once. The state is valid either way (every save is atomic).

use k0rdent_core::Cancellation;

use crate::exit::ExitStatus;

/// Spawns the signal watcher for `cancel`.
pub fn install(cancel: Cancellation) {
    tokio::spawn(async move {
        first_signal().await;
        cancel.cancel("interrupted by the user");
        first_signal().await;
        // Exiting does not drop the futures that own running tools: kill their groups now.
        k0rdent_process::kill_all_now();
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"Second interrupt: exiting now. The state is valid; run the command again to continue.\n",
        );
        std::process::exit(i32::from(ExitStatus::Interrupted.code()));
    });
}

#[cfg(unix)]
async fn first_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    match term {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn first_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
