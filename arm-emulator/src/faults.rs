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
    length_required: bool,
    nic_reservation: Option<Duration>,
    operation_expiry: Option<(Duration, u16)>,
    async_conflicts: BTreeMap<String, u32>,
    cancellations: BTreeMap<String, u32>,
    resize_rules: bool,
    sku_limits: bool,
    throttle_rules: Vec<(Rule, Duration)>,
    subscription_tenant: Option<String>,
}

/// Counts one use of a per-resource injection, if any are left.
fn take_named(m: &mut BTreeMap<String, u32>, name: &str) -> bool {
    match m.get_mut(&name.to_ascii_lowercase()) {
        Some(n) if *n > 0 => {
            *n -= 1;
            true
        }
        _ => false,
    }
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

    /// Azure's front end answers 411 Length Required to a POST, PUT or PATCH that has
    /// neither a `Content-Length` nor a chunked body (a bodiless `start` without
    /// `Content-Length: 0`, for instance).
    pub fn require_content_length(&self, on: bool) {
        self.with(|s| s.length_required = on);
    }

    /// After a VM is deleted or its creation fails, Azure keeps its NIC reserved for that VM
    /// (180 s in Azure): creating another VM on the NIC, or deleting the NIC, answers 400
    /// `NicReservedForAnotherVm` until then. `None` turns it off.
    pub fn reserve_nics_for(&self, d: Option<Duration>) {
        self.with(|s| s.nic_reservation = d);
    }

    /// Operation URLs (`Azure-AsyncOperation` and `Location`) stop working `after` their
    /// operation ended: polls answer `status` (404 `NotFound` or 410 `Gone`).
    pub fn expire_operations(&self, after: Duration, status: u16) {
        self.with(|s| s.operation_expiry = Some((after, status)));
    }

    /// The next `times` writes to the existing resource `name` (PUT, PATCH, POST actions) are
    /// accepted, then their asynchronous operation fails with `AnotherOperationInProgress`
    /// and the resource is left as it was (Azure reports a conflict with an operation it
    /// runs itself this way, not only as a synchronous 409).
    pub fn conflict_async(&self, name: &str, times: u32) {
        self.with(|s| {
            s.async_conflicts.insert(name.to_ascii_lowercase(), times);
        });
    }

    /// The next `times` operations on resource `name` end `Canceled` (and a PUT's resource
    /// with `provisioningState` `Canceled`).
    pub fn cancel_operations(&self, name: &str, times: u32) {
        self.with(|s| {
            s.cancellations.insert(name.to_ascii_lowercase(), times);
        });
    }

    /// A size change of a running VM to a size outside its current hardware cluster (here:
    /// another family) answers 409 `OperationNotAllowed`; the VM must be deallocated first.
    /// (A size change of a running VM always restarts it, switch or not.)
    pub fn require_deallocation_for_resize(&self, on: bool) {
        self.with(|s| s.resize_rules = on);
    }

    /// A VM PUT is checked against the size's capabilities and Azure's limits: Spot needs
    /// `LowPriorityCapable`, a `Premium_LRS` disk `PremiumIO`, the image's generation one of
    /// `HyperVGenerations`; custom data is at most 65,535 bytes decoded and the admin user
    /// name is not one Azure reserves.
    pub fn enforce_sku_capabilities(&self, on: bool) {
        self.with(|s| s.sku_limits = on);
    }

    /// The next `times` requests (method, if given, and path containing `path_contains`) get
    /// 429 with `Retry-After: retry_after`.
    pub fn throttle(
        &self,
        method: Option<&str>,
        path_contains: &str,
        times: u32,
        retry_after: Duration,
    ) {
        self.with(|s| {
            s.throttle_rules.push((
                Rule {
                    method: method.map(str::to_owned),
                    path_contains: path_contains.to_owned(),
                    remaining: Some(times),
                },
                retry_after,
            ));
        });
    }

    /// The subscription belongs to `tenant` (not the one the token endpoint issues tokens
    /// for): ARM answers 401 `InvalidAuthenticationTokenTenant`. `None` undoes it.
    pub fn move_subscription_to_tenant(&self, tenant: Option<&str>) {
        self.with(|s| s.subscription_tenant = tenant.map(str::to_owned));
    }

    /// Every behaviour of issue #7 that real Azure always has, at once: 411 without a
    /// length, NIC reservation (for `nic_reservation` instead of 180 s), operation URLs
    /// that expire right after their operation ends (404), resize rules and SKU limits.
    pub fn azure_rules(&self, nic_reservation: Duration) {
        self.with(|s| {
            s.length_required = true;
            s.nic_reservation = Some(nic_reservation);
            s.operation_expiry = Some((Duration::ZERO, 404));
            s.resize_rules = true;
            s.sku_limits = true;
        });
    }

    /// Removes every fault, [`Faults::azure_rules`] included.
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
        self.with(|s| take_named(&mut s.fail_provisioning, vm))
    }

    pub(crate) fn subscription_tenant(&self) -> Option<String> {
        self.with(|s| s.subscription_tenant.clone())
    }

    pub(crate) fn length_required(&self) -> bool {
        self.with(|s| s.length_required)
    }

    pub(crate) fn nic_reservation(&self) -> Option<Duration> {
        self.with(|s| s.nic_reservation)
    }

    pub(crate) fn operation_expiry(&self) -> Option<(Duration, u16)> {
        self.with(|s| s.operation_expiry)
    }

    pub(crate) fn async_conflict_now(&self, name: &str) -> bool {
        self.with(|s| take_named(&mut s.async_conflicts, name))
    }

    pub(crate) fn cancel_now(&self, name: &str) -> bool {
        self.with(|s| take_named(&mut s.cancellations, name))
    }

    pub(crate) fn resize_rules(&self) -> bool {
        self.with(|s| s.resize_rules)
    }

    pub(crate) fn sku_limits(&self) -> bool {
        self.with(|s| s.sku_limits)
    }

    pub(crate) fn throttled(&self, method: &str, path: &str) -> Option<Duration> {
        self.with(|s| {
            for (r, d) in s.throttle_rules.iter_mut() {
                if r.matches(method, path) {
                    if let Some(n) = r.remaining.as_mut() {
                        *n -= 1;
                    }
                    return Some(*d);
                }
            }
            None
        })
    }

    pub(crate) fn power_omitted(&self, vm: &str) -> bool {
        self.with(|s| s.omit_power.contains(&vm.to_ascii_lowercase()))
    }
}

/// One request the emulator received.
#[allow(missing_docs)]
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// Order of arrival (0-based).
    pub seq: usize,
    pub method: String,
    pub path: String,
    /// Without the leading `?`.
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
