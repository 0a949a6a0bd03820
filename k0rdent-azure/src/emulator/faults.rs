//! Injectable failures and the request log.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

#[derive(Debug, Clone)]
struct Rule {
    method: Option<String>,
    path_contains: String,
    remaining: Option<u32>,
}

impl Rule {
    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path
                .to_ascii_lowercase()
                .contains(&self.path_contains.to_ascii_lowercase())
            && self.remaining != Some(0)
    }
}

#[derive(Debug, Default)]
struct FaultState {
    throttle_every: u32,
    counter: u64,
    forbid: Vec<Rule>,
    drop_after_accept: Vec<Rule>,
    fail_provisioning: BTreeMap<String, u32>,
    omit_power: BTreeSet<String>,
}

/// Failures to inject; change them at any time while the emulator runs.
#[derive(Debug, Default)]
pub struct Faults {
    s: Mutex<FaultState>,
}

fn take(rules: &mut [Rule], method: &str, path: &str) -> bool {
    for r in rules.iter_mut() {
        if r.matches(method, path) {
            if let Some(n) = r.remaining.as_mut() {
                *n -= 1;
            }
            return true;
        }
    }
    false
}

impl Faults {
    fn with<R>(&self, f: impl FnOnce(&mut FaultState) -> R) -> R {
        let mut g = self
            .s
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut g)
    }

    /// Every `n`th ARM request gets 429 with Retry-After (0 turns it off).
    pub fn throttle_every(&self, n: u32) {
        self.with(|s| {
            s.throttle_every = n;
            s.counter = 0;
        });
    }

    /// Requests whose path contains `path_contains` (and method, if given) get 403
    /// `AuthorizationFailed`.
    pub fn forbid(&self, method: Option<&str>, path_contains: &str) {
        self.with(|s| {
            s.forbid.push(Rule {
                method: method.map(str::to_owned),
                path_contains: path_contains.to_owned(),
                remaining: None,
            });
        });
    }

    /// The next `times` matching requests are processed, then the connection is dropped
    /// without a response.
    pub fn drop_after_accept(&self, method: &str, path_contains: &str, times: u32) {
        self.with(|s| {
            s.drop_after_accept.push(Rule {
                method: Some(method.to_owned()),
                path_contains: path_contains.to_owned(),
                remaining: Some(times),
            });
        });
    }

    /// The next `times` creations of VM `name` end with provisioning `Failed`.
    pub fn fail_provisioning(&self, name: &str, times: u32) {
        self.with(|s| {
            s.fail_provisioning.insert(name.to_ascii_lowercase(), times);
        });
    }

    /// The status-only VM list omits (or again reports) VM `name`'s power state.
    pub fn omit_power_state(&self, name: &str, omit: bool) {
        self.with(|s| {
            if omit {
                s.omit_power.insert(name.to_ascii_lowercase());
            } else {
                s.omit_power.remove(&name.to_ascii_lowercase());
            }
        });
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.with(|s| *s = FaultState::default());
    }

    pub(crate) fn throttle_now(&self) -> bool {
        self.with(|s| {
            if s.throttle_every == 0 {
                return false;
            }
            s.counter += 1;
            s.counter % u64::from(s.throttle_every) == 0
        })
    }

    pub(crate) fn forbidden(&self, method: &str, path: &str) -> bool {
        self.with(|s| take(&mut s.forbid, method, path))
    }

    pub(crate) fn drop_now(&self, method: &str, path: &str) -> bool {
        self.with(|s| take(&mut s.drop_after_accept, method, path))
    }

    pub(crate) fn provisioning_fails(&self, vm: &str) -> bool {
        self.with(
            |s| match s.fail_provisioning.get_mut(&vm.to_ascii_lowercase()) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                _ => false,
            },
        )
    }

    pub(crate) fn power_omitted(&self, vm: &str) -> bool {
        self.with(|s| s.omit_power.contains(&vm.to_ascii_lowercase()))
    }
}

/// One request the emulator received.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// Order of arrival (0-based).
    pub seq: usize,
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query string.
    pub query: String,
    /// Response status; 0 when the connection was dropped instead.
    pub status: u16,
    /// The ARM resource type addressed (`Microsoft.Compute/virtualMachines`), if any.
    pub resource_type: Option<String>,
    /// Whether a write (PUT, PATCH, POST, DELETE) to ARM, not the token endpoint.
    pub mutating: bool,
    /// The `x-ms-client-request-id` header.
    pub client_request_id: Option<String>,
    /// The `x-ms-correlation-request-id` header.
    pub correlation_id: Option<String>,
    /// When it arrived.
    pub at: Instant,
}

/// Every request, in order, for counting calls per method and resource.
#[derive(Debug, Default)]
pub struct RequestLog {
    entries: Mutex<Vec<LoggedRequest>>,
    notify: Notify,
    in_flight_writes: Mutex<(usize, usize)>,
}

impl RequestLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<LoggedRequest>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn push(&self, mut e: LoggedRequest) -> usize {
        let mut g = self.lock();
        e.seq = g.len();
        g.push(e);
        let seq = g.len() - 1;
        drop(g);
        self.notify.notify_waiters();
        seq
    }

    pub(crate) fn set_status(&self, seq: usize, status: u16) {
        if let Some(e) = self.lock().get_mut(seq) {
            e.status = status;
        }
        self.notify.notify_waiters();
    }

    pub(crate) fn write_started(&self) {
        let mut g = self
            .in_flight_writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.0 += 1;
        g.1 = g.1.max(g.0);
    }

    pub(crate) fn write_finished(&self) {
        let mut g = self
            .in_flight_writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.0 = g.0.saturating_sub(1);
    }

    /// The most writes that were in flight at once.
    pub fn max_concurrent_writes(&self) -> usize {
        self.in_flight_writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1
    }

    /// A copy of all entries.
    pub fn entries(&self) -> Vec<LoggedRequest> {
        self.lock().clone()
    }

    /// Entries from position `mark` on (see [`RequestLog::len`]).
    pub fn since(&self, mark: usize) -> Vec<LoggedRequest> {
        self.lock().iter().skip(mark).cloned().collect()
    }

    /// Number of requests so far (use as a mark).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no request arrived yet.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Writes to ARM since `mark`.
    pub fn mutating_since(&self, mark: usize) -> Vec<LoggedRequest> {
        self.since(mark)
            .into_iter()
            .filter(|e| e.mutating)
            .collect()
    }

    /// Requests since `mark` by method and resource type, e.g. `("PUT", "Microsoft.Compute/virtualMachines") → 5`.
    pub fn counts_since(&self, mark: usize) -> BTreeMap<(String, String), usize> {
        let mut m = BTreeMap::new();
        for e in self.since(mark) {
            let t = e.resource_type.clone().unwrap_or_else(|| "-".into());
            *m.entry((e.method.clone(), t)).or_insert(0) += 1;
        }
        m
    }

    /// Requests since `mark` with `method` whose path ends with `suffix` (case-insensitive).
    pub fn count_to(&self, mark: usize, method: &str, suffix: &str) -> usize {
        let suffix = suffix.to_ascii_lowercase();
        self.since(mark)
            .iter()
            .filter(|e| e.method == method && e.path.to_ascii_lowercase().ends_with(&suffix))
            .count()
    }

    /// Waits until `pred` holds for the log (or `timeout` passes); returns whether it held.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&[LoggedRequest]) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            if pred(&self.lock()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return pred(&self.lock());
            }
        }
    }
}
