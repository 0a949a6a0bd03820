//! The spawner: one thread, started once, that lives as long as the process and forks every
//! child.
//!
//! Why a thread of its own: on Linux the parent-death signal fires when the *thread* that
//! forked the child exits, not the process. A child forked from a tokio worker or a
//! short-lived thread would be SIGKILLed as soon as that thread ends (tokio retires idle
//! blocking threads after 10 s). This thread never ends, so the signal fires only when the
//! process dies.
//!
//! The caller's runtime handle travels with each request and is entered for the fork, so the
//! child's reaper and pipes belong to the caller's runtime (tests with many runtimes work).

use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::group::{Guard, Target};

/// A child and the guard that kills it if it is dropped unfinished. The guard is made on the
/// spawner thread, right after the fork, so a caller that stops waiting at any point (even
/// while the answer is in the channel) never leaves the child running.
pub(crate) struct Spawned {
    pub(crate) child: tokio::process::Child,
    pub(crate) guard: Guard,
    pub(crate) pid: u32,
}

struct Request {
    cmd: tokio::process::Command,
    handle: Handle,
    /// What the child's guard kills (its group, or only itself).
    target: fn(u32) -> Target,
    reply: oneshot::Sender<io::Result<Spawned>>,
}

/// The spawner thread could not be started (kept, so every later spawn reports it).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot start the spawner thread: {0}")]
struct SpawnerFailed(#[source] Arc<io::Error>);

static SPAWNER: OnceLock<Result<mpsc::Sender<Request>, SpawnerFailed>> = OnceLock::new();

fn spawner() -> Result<&'static mpsc::Sender<Request>, SpawnerFailed> {
    SPAWNER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Request>();
            std::thread::Builder::new()
                .name("k0rdent-spawner".into())
                .spawn(move || serve(&rx))
                .map(|_| tx)
                .map_err(|e| SpawnerFailed(Arc::new(e)))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The thread's loop. It never returns: the sender lives in a static, so `recv` never fails.
fn serve(rx: &mpsc::Receiver<Request>) {
    while let Ok(req) = rx.recv() {
        let Request {
            mut cmd,
            handle,
            target,
            reply,
        } = req;
        let result = {
            let _runtime = handle.enter();
            // tokio panics when the runtime has no IO driver; this thread must survive that.
            std::panic::catch_unwind(AssertUnwindSafe(|| cmd.spawn())).unwrap_or_else(|_| {
                Err(io::Error::other(
                    "tokio could not register the child (is IO enabled on the runtime?)",
                ))
            })
        }
        .and_then(|child| {
            let pid = child
                .id()
                .ok_or_else(|| io::Error::other("the child has no pid"))?;
            Ok(Spawned {
                guard: Guard::new(target(pid)),
                child,
                pid,
            })
        });
        // If the caller is gone, dropping the answer drops the guard, which kills the child.
        let _ = reply.send(result);
    }
}

/// Forks `cmd` on the spawner thread within the current tokio runtime.
pub(crate) async fn spawn(
    cmd: tokio::process::Command,
    target: fn(u32) -> Target,
) -> io::Result<Spawned> {
    let handle = Handle::try_current().map_err(|_| {
        io::Error::other("no tokio runtime: external programs run inside one (with IO enabled)")
    })?;
    let (reply, answer) = oneshot::channel();
    spawner()
        .map_err(io::Error::other)?
        .send(Request {
            cmd,
            handle,
            target,
            reply,
        })
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    answer
        .await
        .map_err(|_| io::Error::other("the spawner thread dropped the request"))?
}
