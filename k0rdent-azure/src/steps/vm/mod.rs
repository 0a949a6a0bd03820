//! `create_vms/<vm>`: one VM with its public IP, NIC and OS disk, running.
//!
//! # Expected flow (each `apply` call makes progress and returns `Pending` while Azure works)
//! 1. settle any journaled operation (poll it; a failed one fails the attempt, and the engine
//!    retries the step);
//! 2. public IP, then NIC: created or updated when missing or different; an existing one
//!    without our cluster-id tag is a conflict, never adopted;
//! 3. VM: created when missing (a leftover OS disk with our tags is deleted first, because a
//!    VM is created from the image onto a new disk; one without our tags is a conflict); a VM
//!    whose provisioning `Failed`, or whose immutable properties (custom data, zone, image,
//!    admin user, ...) differ, is deleted and created again only when the engine confirmed it
//!    (`ctx.confirmed()`, else `needs_confirmation`) or a replace was already under way; a
//!    size change restarts the VM, so it too is done only when confirmed (see
//!    [`resize`]); tags are patched in place;
//! 4. a stopped or deallocated VM is started (`POST start`);
//! 5. done: outputs `vm_id`, `public_ip`, `private_ip`, `role`; the node record gets the
//!    public IP and vmId (a new vmId clears host keys pinned for the old VM).
//!
//! # Teardown
//! Nothing per VM: the resource group deletion (the `setup_network` teardown) removes it. The
//! teardown first checks that the group is ours, so a refused reset changes no record.

mod resize;

use std::sync::Arc;

use async_trait::async_trait;
use k0rdent_core::state::{Journal, Status, StepRecord};
use k0rdent_core::{
    Evidence, Observation, Outputs, Snapshot, Step, StepContext, StepError, StepId, StepOutcome,
    Teardown,
    fingerprint::Fingerprint,
    gate::Gate,
    step::{JournalError, StepInputs, StepPolicy},
};
use serde_json::Value;

use super::Shared;
use super::converge::{Converger, Progress};
use super::step_try::step_try;
use crate::api;
use crate::model::{self, InstanceView};
use crate::names::{self, VmNames, types};
use crate::observe::{AzureFacts, OBSERVER};
use crate::resources::{self, provisioning, tags_of};
use crate::spec::VmSpec;

/// One `create_vms/<vm>` step: the VM with its public IP, NIC and OS disk, created, kept as
/// the spec says, and running.
pub struct VmStep {
    pub(crate) id: StepId,
    pub(crate) network: StepId,
    pub(crate) vm: VmSpec,
    pub(crate) shared: Arc<Shared>,
    /// The digest of the VM's immutable properties (computed once: observation runs at every
    /// re-plan).
    pub(crate) immutable_digest: String,
}

const REPLACE_KEY: &str = "replace";

impl VmStep {
    pub(crate) fn names(&self) -> VmNames {
        VmNames::of(&self.vm)
    }

    pub(crate) fn path(&self, rtype: &str, name: &str) -> String {
        self.shared.names.resource_id(rtype, name)
    }

    pub(crate) fn conv<'a>(&'a self, ctx: &'a StepContext) -> Converger<'a> {
        Converger {
            ctx,
            client: &self.shared.client,
            poll: self.shared.tuning.poll,
        }
    }

    fn fingerprint_now(&self) -> Fingerprint {
        let vm = &self.vm;
        Fingerprint::builder()
            // A size change restarts the VM: planned as a rerun that needs confirmation.
            .disruptive("size", &vm.size)
            .input("tags", &names::tags(&self.shared.spec, vm.role.as_str()))
            .input("subnet", &self.shared.names.subnet_id())
            .immutable("immutable", &self.immutable_digest)
            .finish()
    }

    async fn get(&self, rtype: &str, name: &str, what: &str) -> Result<Option<Value>, StepError> {
        self.shared.get(rtype, name, what).await
    }

    /// Public IP or NIC: create/update until it matches.
    async fn ensure_net(
        &self,
        ctx: &StepContext,
        key: &str,
        rtype: &str,
        name: &str,
        desired: &Value,
        matches: impl Fn(&Value) -> bool,
    ) -> Result<Progress<Value>, StepError> {
        let what = format!("{} {name}", if key == "pip" { "public IP" } else { "NIC" });
        let path = self.path(rtype, name);
        if let Some(v) = self.get(rtype, name, &what).await? {
            self.shared.require_ours(&what, &tags_of(&v))?;
            let state = provisioning(&v);
            if !model::is_terminal(state) {
                return wait(
                    self.conv(ctx)
                        .watch(key, &path, api::NETWORK, &what)
                        .await?,
                );
            }
            if model::is_succeeded(state) && matches(&v) {
                return Ok(Progress::Ready(v));
            }
        }
        match self
            .conv(ctx)
            .write(key, "PUT", &path, api::NETWORK, Some(desired), &what)
            .await?
        {
            Progress::Ready(Some(v)) if model::is_succeeded(provisioning(&v)) => {
                Ok(Progress::Ready(v))
            }
            Progress::Ready(_) => Ok(Progress::Wait(self.shared.tuning.poll.min, what)),
            Progress::Wait(d, m) => Ok(Progress::Wait(d, m)),
        }
    }

    /// Whether this execution may delete the VM to create it again: only when the engine
    /// confirmed it, or when a confirmed replace is already under way (journaled).
    fn replace_allowed(&self, ctx: &StepContext) -> bool {
        ctx.confirmed() || ctx.journal().latest(REPLACE_KEY).is_some()
    }

    async fn ensure_vm(&self, ctx: &StepContext) -> Result<Progress<Value>, StepError> {
        let s = &self.shared;
        let vn = self.names();
        let what = format!("VM {}", vn.vm);
        let path = self.path(types::VM, &vn.vm);
        let c = self.conv(ctx);
        let Some(v) = self.get(types::VM, &vn.vm, &what).await? else {
            // A leftover OS disk blocks creating from the image: ours is deleted, anyone
            // else's is a conflict.
            let disk_what = format!("OS disk {}", vn.os_disk);
            if let Some(d) = self.get(types::DISK, &vn.os_disk, &disk_what).await? {
                s.require_ours(&disk_what, &tags_of(&d))?;
                let disk_path = self.path(types::DISK, &vn.os_disk);
                ctx.progress(format!("deleting leftover {disk_what}"));
                return not_ready(
                    c.write(
                        "disk-delete",
                        "DELETE",
                        &disk_path,
                        api::DISKS,
                        None,
                        &disk_what,
                    )
                    .await?,
                );
            }
            let body = resources::vm_body(&s.spec, &s.names, &self.vm);
            return not_ready(
                c.write("vm", "PUT", &path, api::COMPUTE, Some(&body), &what)
                    .await?,
            );
        };
        s.require_ours(&what, &tags_of(&v))?;
        let state = provisioning(&v);
        if !model::is_terminal(state) {
            return wait(c.watch("vm", &path, api::COMPUTE, &what).await?);
        }
        // An adopted VM's custom data cannot be compared (ARM never returns it): never
        // replaced for it.
        let digest_ok = self.vm.adopted.is_some()
            || resources::vm_recorded_digest(&v).as_deref() == Some(self.immutable_digest.as_str());
        if model::is_failed(state) || !digest_ok {
            let why = if model::is_failed(state) {
                "provisioning failed"
            } else {
                "immutable properties changed"
            };
            if !self.replace_allowed(ctx) {
                return Err(StepError::needs_confirmation(format!(
                    "{what}: {why}; it is deleted and created again"
                )));
            }
            ctx.write_journal(REPLACE_KEY, why).await?;
            ctx.progress(format!("deleting {what} to create it again ({why})"));
            return not_ready(
                c.write("vm-delete", "DELETE", &path, api::COMPUTE, None, &what)
                    .await?,
            );
        }
        if model::is_canceled(state) {
            // Canceled is terminal but not success: the same PUT converges it.
            ctx.progress(format!(
                "{what}: its last operation was canceled; writing it again"
            ));
            let body = resources::vm_body(&s.spec, &s.names, &self.vm);
            return not_ready(
                c.write("vm", "PUT", &path, api::COMPUTE, Some(&body), &what)
                    .await?,
            );
        }
        if let Some(live) = resize::size_change(&v, &self.vm.size) {
            let live = live.to_owned();
            return self.resize(ctx, &live).await;
        }
        if let Some(patch) = resources::vm_patch(&s.spec, &self.vm, &v) {
            return not_ready(
                c.write(
                    "vm-patch",
                    "PATCH",
                    &path,
                    api::COMPUTE,
                    Some(&patch),
                    &what,
                )
                .await?,
            );
        }
        // ARM does not tag the OS disk it creates; tag it so a leftover disk can be told
        // apart from someone else's. An adopted VM's auto-named disk is left as it is.
        let disk_what = format!("OS disk {}", vn.os_disk);
        let disk = match self.vm.adopted {
            Some(_) => None,
            None => self.get(types::DISK, &vn.os_disk, &disk_what).await?,
        };
        if let Some(d) = disk {
            let want = names::tags(&s.spec, self.vm.role.as_str());
            if !names::has_tags(&tags_of(&d), &want) {
                let mut tags = tags_of(&d);
                tags.extend(want);
                let body = serde_json::json!({ "tags": tags });
                let disk_path = self.path(types::DISK, &vn.os_disk);
                return not_ready(
                    c.write(
                        "disk-tag",
                        "PATCH",
                        &disk_path,
                        api::DISKS,
                        Some(&body),
                        &disk_what,
                    )
                    .await?,
                );
            }
        }
        Ok(Progress::Ready(v))
    }

    /// The VM's instance view (its power state and the statuses a start or resize waits on).
    async fn instance_view(&self, path: &str, what: &str) -> Result<InstanceView, StepError> {
        self.shared
            .client
            .get(&format!("{path}/instanceView"), api::COMPUTE, &[])
            .await
            .map_err(|e| e.into_step_error(what))
    }

    async fn ensure_running(&self, ctx: &StepContext) -> Result<Progress<()>, StepError> {
        let vn = self.names();
        let what = format!("VM {}", vn.vm);
        let path = self.path(types::VM, &vn.vm);
        let view = self.instance_view(&path, &what).await?;
        let poll = self.shared.tuning.poll;
        match view.power_state().as_deref() {
            Some("running") => Ok(Progress::Ready(())),
            Some("stopped" | "deallocated") => {
                ctx.progress(format!("starting {what}"));
                let start = format!("{path}/start");
                match self
                    .conv(ctx)
                    .write("vm-start", "POST", &start, api::COMPUTE, None, &what)
                    .await?
                {
                    Progress::Ready(_) => Ok(Progress::Wait(poll.min, format!("{what}: starting"))),
                    Progress::Wait(d, m) => Ok(Progress::Wait(d, m)),
                }
            }
            other => Ok(Progress::Wait(
                poll.after(None),
                format!(
                    "{what}: power state {}",
                    other.unwrap_or("not reported yet")
                ),
            )),
        }
    }
}

fn wait<T>(p: Progress<Option<Value>>) -> Result<Progress<T>, StepError> {
    not_ready(p)
}

/// A write was sent: whatever it returned, look again (the next call reads the result).
pub(crate) fn not_ready<T>(p: Progress<Option<Value>>) -> Result<Progress<T>, StepError> {
    Ok(match p {
        Progress::Wait(d, m) => Progress::Wait(d, m),
        Progress::Ready(_) => Progress::Wait(std::time::Duration::ZERO, "written".into()),
    })
}

impl VmStep {
    async fn converge(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
        let c = self.conv(ctx);
        let vn = self.names();
        for (key, what) in [
            ("pip", format!("public IP {}", vn.public_ip)),
            ("nic", format!("NIC {}", vn.nic)),
            ("disk-delete", format!("deleting OS disk {}", vn.os_disk)),
            ("vm-delete", format!("deleting VM {}", vn.vm)),
            ("vm", format!("creating VM {}", vn.vm)),
            ("vm-patch", format!("updating VM {}", vn.vm)),
            (
                "vm-deallocate",
                format!("deallocating VM {} to resize it", vn.vm),
            ),
            ("vm-resize", format!("resizing VM {}", vn.vm)),
            ("disk-tag", format!("tagging OS disk {}", vn.os_disk)),
            ("vm-start", format!("starting VM {}", vn.vm)),
        ] {
            if let Some(Progress::Wait(d, m)) = c.settle(key, &what).await? {
                return Ok(StepOutcome::pending(d, m));
            }
        }
        ctx.checkpoint()?;
        let s = &self.shared;
        let pip_body = resources::public_ip_body(&s.spec, &self.vm);
        let pip = step_try!(
            self.ensure_net(
                ctx,
                "pip",
                types::PUBLIC_IP,
                &vn.public_ip,
                &pip_body,
                |v| { resources::public_ip_matches(&s.spec, &self.vm, v) }
            )
            .await?
        );
        let nic_body = resources::nic_body(&s.spec, &s.names, &self.vm);
        let nic = step_try!(
            self.ensure_net(ctx, "nic", types::NIC, &vn.nic, &nic_body, |v| {
                resources::nic_matches(&s.spec, &s.names, &self.vm, v)
            })
            .await?
        );
        ctx.checkpoint()?;
        let vm = step_try!(self.ensure_vm(ctx).await?);
        step_try!(self.ensure_running(ctx).await?);

        let public_ip = pip
            .pointer("/properties/ipAddress")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let private_ip = nic
            .pointer("/properties/ipConfigurations/0/properties/privateIPAddress")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let vm_id = vm
            .pointer("/properties/vmId")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let (name, role, ip, id) = (
            self.vm.name.clone(),
            self.vm.role.as_str().to_owned(),
            public_ip.clone(),
            vm_id.clone(),
        );
        ctx.update_state(move |st| {
            let node = st.nodes.entry(name).or_default();
            if node.role.is_empty() {
                node.role = role;
            }
            if node.vm_id.as_deref() != Some(id.as_str()) {
                // Host keys were pinned for the previous VM; the new one has new keys.
                node.ssh_host_keys.clear();
                node.vm_id = Some(id);
            }
            node.public_ip = (!ip.is_empty()).then_some(ip);
        })
        .await?;
        let outputs = Outputs::new()
            .with("vm_id", vm_id.clone())
            .with("public_ip", public_ip.clone())
            .with("private_ip", private_ip)
            .with("role", self.vm.role.as_str());
        let evidence = Evidence::new()
            .with(
                "provisioning_state",
                provisioning(&vm).unwrap_or("Succeeded"),
            )
            .with("power_state", "running")
            .with("public_ip", public_ip)
            .with("vm_id", vm_id);
        Ok(StepOutcome::done(outputs, evidence))
    }
}

#[async_trait]
impl Step for VmStep {
    fn id(&self) -> &StepId {
        &self.id
    }

    fn dependencies(&self) -> Vec<StepId> {
        vec![self.network.clone()]
    }

    fn fingerprint(&self, _inputs: &StepInputs<'_>) -> Fingerprint {
        self.fingerprint_now()
    }

    fn gates(&self) -> Vec<Arc<dyn Gate>> {
        vec![self.shared.preflight.clone()]
    }

    fn policy(&self) -> StepPolicy {
        StepPolicy::from(self.shared.tuning.step_retry)
    }

    fn check_journal(&self, journal: &Journal) -> Result<(), JournalError> {
        super::converge::check_journal(journal)
    }

    fn observe(&self, snapshot: &Snapshot, record: Option<&StepRecord>) -> Observation {
        let facts = match snapshot.require::<AzureFacts>(OBSERVER) {
            Ok(f) => f,
            Err(o) => return o,
        };
        vm_observation(
            &self.shared,
            &self.vm,
            &self.immutable_digest,
            facts,
            record,
        )
    }

    async fn apply(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
        let r = self.converge(ctx).await;
        super::converge::come_back_later(ctx, &self.shared.tuning.poll, r)
    }

    async fn teardown(&self, ctx: &StepContext) -> Result<Teardown, StepError> {
        super::teardown::check_group_for_reset(&self.shared).await?;
        let name = self.vm.name.clone();
        ctx.update_state(move |st| {
            if let Some(n) = st.nodes.get_mut(&name) {
                n.public_ip = None;
            }
        })
        .await?;
        Ok(Teardown::nothing(
            "the VM, its NIC, public IP and disk go with the resource group (setup_network's teardown)",
        ))
    }
}

/// How one VM looks in the facts.
pub(crate) fn vm_observation(
    s: &Shared,
    vm: &VmSpec,
    immutable_digest: &str,
    facts: &AzureFacts,
    record: Option<&StepRecord>,
) -> Observation {
    let vn = VmNames::of(vm);
    if !facts.group_exists() {
        return Observation::absent(format!("resource group {} does not exist", s.names.group));
    }
    let Some(f) = facts.vm(&vm.name) else {
        return Observation::absent(format!("VM {} does not exist", vm.name));
    };
    if !s.owns(&f.tags) {
        return Observation::unknown(format!(
            "VM {} exists but is not tagged {}={}: it is not this deployment's",
            vm.name,
            names::TAG_CLUSTER_ID,
            s.spec.cluster_id
        ));
    }
    let state = f.provisioning_state.as_deref();
    let mut ev = Evidence::new().with("provisioning_state", state.unwrap_or("Succeeded"));
    if let Some(id) = &f.vm_id {
        ev = ev.with("vm_id", id);
    }
    if let Some(Some(ip)) = facts.public_ips.get(&vn.public_ip.to_ascii_lowercase()) {
        ev = ev.with("public_ip", ip);
    }
    if model::is_failed(state) {
        return Observation::needs_replace(
            format!("VM {} provisioning is {}", vm.name, state.unwrap_or("?")),
            ev,
        );
    }
    if model::is_terminal(state)
        && names::tag(&f.tags, names::TAG_SPEC).is_some_and(|d| d != immutable_digest)
    {
        return Observation::needs_replace(
            format!(
                "VM {} was created with other immutable properties (custom data, zone, image, \
                 admin user, key, priority or disk) than configured",
                vm.name
            ),
            ev,
        );
    }
    if !model::is_succeeded(state) {
        return Observation::partial(
            format!("VM {} provisioning is {}", vm.name, state.unwrap_or("?")),
            ev,
        );
    }
    let Some(power) = &f.power_state else {
        return Observation::unknown(format!(
            "ARM reported no power state for VM {} (the status-only list can omit one; run again)",
            vm.name
        ));
    };
    ev = ev.with("power_state", power);
    for (rtype, name) in [(types::NIC, &vn.nic), (types::PUBLIC_IP, &vn.public_ip)] {
        if facts.resource(rtype, name).is_none() {
            return Observation::partial(format!("{name} is missing"), ev);
        }
    }
    if let Some(live) = f
        .size
        .as_deref()
        .filter(|l| !l.eq_ignore_ascii_case(&vm.size))
    {
        return Observation::disruptive(resize::restart_note(&vm.name, live, &vm.size), ev);
    }
    if power != "running" && power != "starting" {
        return Observation::partial(format!("VM {} is {power}; deploy starts it", vm.name), ev);
    }
    if let (Some(rec), Some(id)) = (record, &f.vm_id)
        && rec.status == Status::Completed
        && let Some(old) = rec.outputs.get_str("vm_id")
        && !old.is_empty()
        && old != id
    {
        return Observation::partial(
            format!(
                "VM {} was re-created outside k0rdent (vmId {old} → {id})",
                vm.name
            ),
            ev,
        );
    }
    Observation::done(ev)
}
