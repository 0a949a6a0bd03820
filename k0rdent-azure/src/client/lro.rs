//! Long-running operations: what a write returned and how to follow it.
//!
//! ARM accepts a write with 200/201/202 and, for asynchronous work, an `Azure-AsyncOperation`
//! URL (an operation resource with `status`), a `Location` URL (202 while running), or only a
//! non-terminal `provisioningState` on the resource itself. [`PollTarget`] records which one to
//! follow; it is serializable so a step can journal it the moment the write is accepted.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How an operation is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PollKind {
    /// `Azure-AsyncOperation`: GET returns `{"status": ...}`.
    AsyncOperation,
    /// `Location`: GET returns 202 while running, 200/204 when done.
    Location,
    /// The resource itself: GET until `provisioningState` is terminal.
    Resource,
}

/// Where to poll an accepted operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollTarget {
    /// Which kind of URL `url` is; it decides how a GET's answer is read.
    pub kind: PollKind,
    /// The absolute URL (always on the ARM endpoint).
    pub url: String,
}

/// What a write returned.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// HTTP status (200, 201, 202, 204).
    pub status: u16,
    /// The response body, if any (the resource for PUT/PATCH).
    pub body: Option<serde_json::Value>,
    /// Where to follow the operation; `None` when it completed synchronously.
    pub poll: Option<PollTarget>,
    /// How long ARM asks us to wait before polling.
    pub retry_after: Option<Duration>,
}

impl Accepted {
    /// `properties.provisioningState` of the returned body.
    pub fn provisioning_state(&self) -> Option<&str> {
        self.body
            .as_ref()
            .and_then(|b| b.pointer("/properties/provisioningState"))
            .and_then(|v| v.as_str())
    }
}

/// The state of a followed operation.
#[derive(Debug, Clone)]
pub enum PollStatus {
    /// Still running; look again after the delay.
    InProgress {
        /// ARM's Retry-After, if any.
        retry_after: Option<Duration>,
    },
    /// Done; an operation that ended `Failed` or `Canceled` is an error instead.
    Succeeded {
        /// The final body, if the poll returned one.
        body: Option<serde_json::Value>,
    },
}
