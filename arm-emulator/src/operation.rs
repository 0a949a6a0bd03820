//! Asynchronous operations: how an accepted write becomes an ARM operation (its id, the 201/202
//! reply with `Azure-AsyncOperation`, `Location` and `Retry-After`), how it ends, and the
//! provisioning of a resource through one. The resource handlers and the router share it.

use std::time::Instant;

use serde_json::Value;

use super::Emu;
use super::backend::BackendVm;
use super::reply::{Reply, err, guid, versions};
use super::world::{Ending, Op, OpKind, Res, World, now_str};

/// Backend work to start after a request.
pub(crate) enum Job {
    /// A VM was created.
    Create {
        op: String,
        vm: Box<BackendVm>,
        pip_id: Option<String>,
    },
    /// A VM was started or deallocated.
    Power {
        op: String,
        name: String,
        start: bool,
    },
    /// The inbound rules in effect for a VM's NIC changed (the backend is told the ones in
    /// effect when the job runs, so jobs that overtake each other end the same).
    Inbound { name: String },
}

impl Emu {
    pub(crate) fn location(&self) -> String {
        self.catalog().location.clone()
    }

    /// Starts an operation; returns its id.
    pub(crate) fn start_op(&self, w: &mut World, kind: OpKind, with_backend: bool) -> String {
        self.start_op_ending(w, kind, with_backend, Ending::Normal)
    }

    /// Starts an operation that ends as `ending` says.
    pub(crate) fn start_op_ending(
        &self,
        w: &mut World,
        kind: OpKind,
        with_backend: bool,
        ending: Ending,
    ) -> String {
        let id = guid();
        w.ops.insert(
            id.clone(),
            Op {
                kind,
                due: Instant::now() + self.cfg.op_duration,
                backend_done: !(with_backend && self.cfg.backend.is_some()),
                backend_error: None,
                ending,
                status: "InProgress",
                error: None,
                started: now_str(),
                ended: None,
            },
        );
        id
    }

    /// How an operation on resource `name` ends: an injected conflict or cancellation, or
    /// as asked.
    pub(crate) fn ending_for(&self, name: &str) -> Ending {
        if self.faults.cancel_now(name) {
            Ending::Cancel
        } else {
            Ending::Normal
        }
    }

    /// An accepted write that Azure then rejects because it runs an operation of its own on
    /// the resource: the resource is left as it was. `None` when no conflict is injected.
    pub(crate) fn async_conflict(
        &self,
        w: &mut World,
        name: &str,
        status: u16,
        body: Option<Value>,
        ns: &str,
        location: bool,
    ) -> Option<Reply> {
        if !self.faults.async_conflict_now(name) {
            return None;
        }
        let op = self.start_op_ending(
            w,
            OpKind::Nothing,
            false,
            Ending::Fail(
                "AnotherOperationInProgress".into(),
                format!(
                    "Operation 'Update' on resource '{name}' is not allowed because another \
                     operation on the resource is in progress. Please retry later."
                ),
            ),
        );
        Some(self.accepted(status, body, ns, &op, location))
    }

    /// A 400 `NicReservedForAnotherVm` if NIC `nic_id` is still reserved for another VM.
    pub(crate) fn nic_reserved(
        &self,
        w: &World,
        nic_id: &str,
        for_vm: Option<&str>,
    ) -> Option<Reply> {
        let hold = self.faults.nic_reservation()?;
        let (vm, since) = w.nic_reserved.get(&World::key(nic_id))?;
        if since.elapsed() >= hold {
            return None;
        }
        // The same VM (a PUT to a VM whose creation failed) may use it.
        if for_vm.is_some_and(|v| w.get(v).is_some() && v.eq_ignore_ascii_case(vm)) {
            return None;
        }
        let secs = hold.as_secs_f64().ceil();
        Some(err(
            400,
            "NicReservedForAnotherVm",
            format!(
                "Nic(s) in request is reserved for another Virtual Machine for {secs} seconds. \
                 Please provide another nic(s) or retry after {secs} seconds. Reserved VM: {vm}"
            ),
        ))
    }

    /// `Azure-AsyncOperation` URL of an operation.
    pub(crate) fn op_url(&self, ns: &str, op: &str) -> String {
        let api = if ns.eq_ignore_ascii_case("Microsoft.Network") {
            versions::NETWORK[0]
        } else {
            versions::COMPUTE[0]
        };
        format!(
            "{}/subscriptions/{}/providers/{ns}/locations/{}/operations/{op}?api-version={api}",
            self.base,
            self.cfg.subscription,
            self.location()
        )
    }

    /// `Location` URL of an operation.
    pub(crate) fn result_url(&self, op: &str) -> String {
        format!(
            "{}/subscriptions/{}/operationresults/{op}?api-version={}",
            self.base,
            self.cfg.subscription,
            versions::RESOURCES[0]
        )
    }

    pub(crate) fn accepted(
        &self,
        status: u16,
        body: Option<Value>,
        ns: &str,
        op: &str,
        location: bool,
    ) -> Reply {
        let mut r = match body {
            Some(b) => Reply::json(status, b),
            None => Reply::empty(status),
        };
        r = r.header("Azure-AsyncOperation", self.op_url(ns, op));
        if location {
            r = r.header("Location", self.result_url(op));
        }
        let d = self.cfg.retry_after;
        r.header("Retry-After", d.as_secs_f64().ceil().to_string())
            .header("retry-after-ms", d.as_millis().to_string())
    }
}

/// Marks a resource as created or updated and starts its provisioning operation.
pub(crate) fn provision(
    emu: &Emu,
    w: &mut World,
    res: Res,
    created: bool,
    ending: Ending,
    with_backend: bool,
) -> (u16, Value, String) {
    let id = res.id.clone();
    let mut res = res;
    res.state = if created { "Creating" } else { "Updating" }.into();
    res.changed = now_str();
    w.res.insert(World::key(&id), res);
    let op = emu.start_op_ending(
        w,
        OpKind::Provision {
            id: id.clone(),
            restart: false,
        },
        with_backend,
        ending,
    );
    let v = w
        .get(&id)
        .map(|r| w.view(r, false, false))
        .unwrap_or_default();
    (if created { 201 } else { 200 }, v, op)
}
