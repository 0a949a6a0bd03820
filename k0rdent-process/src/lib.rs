//! The one runner for every external program of k0rdent-deploy (`az`, wg-quick, and next
//! k0sctl, helm, kubectl).
//!
//! A deployment that must resume after any interruption cannot leave tools running behind
//! its back, and cannot kill the ones that must outlive it. So every child:
//!
//! - is forked by one spawner thread that lives as long as the process (the Linux
//!   parent-death signal follows the *thread* that forked, not the process);
//! - leads its own process group and, on Linux, gets `PR_SET_PDEATHSIG=SIGKILL`: when we
//!   die, it dies ([`Mode::Attached`]). A daemon starter such as wg-quick gets its own session
//!   and no such signal instead, so the wireguard-go it starts outlives us ([`Mode::Daemon`]);
//! - is stopped gracefully on cancel or timeout — SIGTERM to the group, a per-tool grace
//!   period the caller can show the user ([`StopNotice`]), SIGKILL — and never after it
//!   succeeded; dropping the future that owns it SIGKILLs its group;
//! - has bounded output, stderr redacted ([`redact()`]), and an environment without the
//!   user's `KUBECONFIG` and `HELM_*`;
//! - can be journaled ([`ChildRecord`]: pid, process group, start time, host, boot id), so
//!   the next run can tell whether it (or a grandchild it left in its group: sudo clears the
//!   parent-death signal and grandchildren never inherit it) still runs, and stop it.
//!
//! `sudo` never prompts from a background process group: outside [`Mode::Foreground`] it
//! always runs with `-n` (ask once up front with `sudo -v` in the foreground).
//!
//! ```
//! use std::time::Duration;
//! use k0rdent_process::{Command, ProcessStatus};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let out = Command::new("sh").args(["-c", "echo hello"]).run().await?;
//! assert_eq!(out.stdout, "hello\n");
//!
//! // A step journals the child before waiting, and passes its cancellation and a way to show
//! // the grace period to the user.
//! let running = Command::new("sleep")
//!     .arg("30")
//!     .grace(Duration::from_secs(2))
//!     .spawn()
//!     .await?;
//! let journal = serde_json::to_string(running.record())?;
//! let mut shown = Vec::new();
//! let err = running
//!     .wait_until(std::future::ready(()), |n| shown.push(n.to_string()))
//!     .await
//!     .unwrap_err();
//! assert_eq!(err.status, ProcessStatus::Cancelled);
//! assert_eq!(shown, ["stopping sleep (cancelled): SIGTERM sent, waiting up to 2 s"]);
//! # let _ = journal;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![deny(missing_docs)]

mod command;
mod error;
mod group;
mod mode;
pub mod os;
mod record;
mod redact;
mod running;
mod spawner;

pub use command::Command;
pub use error::{ProcessError, ProcessStatus};
pub use group::kill_all_now;
pub use mode::Mode;
pub use record::{ChildRecord, ChildStatus, SettleError, Stopped};
pub use redact::{redact, redact_with};
pub use running::{Output, Running, StopNotice, StopReason, StopStage};
