//! Scale-down: [`AzureDeployment::remove_vm`] deletes one VM with its NIC, public IP and OS
//! disk, one call at a time, from inside the caller's step.
//!
//! # Expected flow (each call makes progress and returns `Wait` while Azure works)
//! 1. settle every journaled removal operation (`arm/remove/<vm>/{vm,nic,pip,disk}`): one
//!    still running means `Wait`; one that failed fails the call (transient: the next attempt
//!    reads the resource and deletes it again);
//! 2. the names: those journaled under `remove/<vm>/names`, else discovered and journaled —
//!    the NIC and OS disk from the VM, the public IP from that NIC; when the VM is already
//!    gone, ours (`<vm>-nic`, `<vm>-pip`, `<vm>-osdisk`);
//! 3. VM, NIC, public IP, OS disk, in that order (Azure refuses to delete a NIC attached to a
//!    VM, `NicInUse`, a public IP associated with a NIC, `PublicIPAddressCannotBeDeleted`, and
//!    a disk attached to a VM, `OperationNotAllowed`): each one present is checked to be ours
//!    and deleted (a journaled write); one already being deleted is watched; an absent one is
//!    done;
//! 4. `Ready(())` when all four are gone.
//!
//! # Guarantees
//! - Nothing another deployment owns is deleted (`Shared::owns`): such a VM, NIC, public IP
//!   or disk fails the call with a permanent error naming it, before any write to it. So does
//!   a NIC, public IP or disk still attached to something other than the VM being removed,
//!   and a NIC or OS disk the VM has in another resource group is left alone.
//! - A DELETE that ARM accepted is never sent again: its operation is journaled before the
//!   call returns, and a resumed call (a new attempt, or a new process) polls it.
//!
//! # Caveats
//! The caller's step must validate its journal with
//! [`check_journal`](super::converge::check_journal) and must not reuse the `remove/<vm>/…`
//! and `arm/remove/<vm>/…` keys. The names are journaled once: a VM created again under the
//! same name while its removal is under way is not looked at again.

use std::collections::BTreeMap;

use k0rdent_core::{StepContext, StepError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::converge::{self, Converger, Progress};
use super::{AzureDeployment, Shared};
use crate::api;
use crate::model;
use crate::names::{self, VmNames, types};
use crate::resources::{provisioning, str_at, tags_of};

/// The names of what a removal deletes, journaled under [`names_key`] once found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RemovalNames {
    vm: String,
    /// `None`: the VM's NIC is not in our resource group (never touched).
    nic: Option<String>,
    /// `None`: the NIC has no public IP, or it is in another resource group.
    public_ip: Option<String>,
    /// `None`: the VM's OS disk is not in our resource group (never touched).
    os_disk: Option<String>,
}

impl RemovalNames {
    /// Ours, for a VM that is gone: `<vm>-nic`, `<vm>-pip`, `<vm>-osdisk`.
    fn ours(vm: &str) -> Self {
        let n = VmNames::new(vm);
        RemovalNames {
            vm: n.vm,
            nic: Some(n.nic),
            public_ip: Some(n.public_ip),
            os_disk: Some(n.os_disk),
        }
    }
}

/// The four parts of a removal, in the order they are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Vm,
    Nic,
    PublicIp,
    OsDisk,
}

impl Part {
    const ORDER: [Part; 4] = [Part::Vm, Part::Nic, Part::PublicIp, Part::OsDisk];

    /// The last segment of its journal key.
    fn key(self) -> &'static str {
        match self {
            Part::Vm => "vm",
            Part::Nic => "nic",
            Part::PublicIp => "pip",
            Part::OsDisk => "disk",
        }
    }

    fn rtype(self) -> &'static str {
        match self {
            Part::Vm => types::VM,
            Part::Nic => types::NIC,
            Part::PublicIp => types::PUBLIC_IP,
            Part::OsDisk => types::DISK,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Part::Vm => "VM",
            Part::Nic => "NIC",
            Part::PublicIp => "public IP",
            Part::OsDisk => "OS disk",
        }
    }

    fn name(self, n: &RemovalNames) -> Option<&str> {
        match self {
            Part::Vm => Some(n.vm.as_str()),
            Part::Nic => n.nic.as_deref(),
            Part::PublicIp => n.public_ip.as_deref(),
            Part::OsDisk => n.os_disk.as_deref(),
        }
    }
}

/// The Converger key (journaled as `arm/remove/<vm>/<part>`).
fn op_key(vm: &str, part: Part) -> String {
    format!("remove/{vm}/{}", part.key())
}

/// The plain journal key of the names.
fn names_key(vm: &str) -> String {
    format!("remove/{vm}/names")
}

/// The name in resource id `id` if it is a `rtype` in our group, else `None`.
fn name_in_group(s: &Shared, rtype: &str, id: &str) -> Option<String> {
    let prefix = s.names.resource_id(rtype, "").to_ascii_lowercase();
    let lower = id.to_ascii_lowercase();
    let rest = lower.strip_prefix(&prefix)?;
    (!rest.is_empty() && !rest.contains('/')).then(|| names::name_of(id).to_owned())
}

/// Whether `id` is the `rtype` named `name` in our group (case-insensitive).
fn is_ours_named(s: &Shared, rtype: &str, name: &str, id: &str) -> bool {
    name_in_group(s, rtype, id).is_some_and(|n| n.eq_ignore_ascii_case(name))
}

/// Refuses to delete what is not this deployment's.
fn require_owned(s: &Shared, what: &str, tags: &BTreeMap<String, String>) -> Result<(), StepError> {
    if s.owns(tags) {
        return Ok(());
    }
    Err(StepError::permanent(format!(
        "{what} is in {}; refusing to delete a resource this deployment does not own",
        s.foreign(tags)
    ))
    .with_remedy(format!(
        "check the cluster id and resource group; delete {what} by hand if it really is to go"
    )))
}

/// Refuses to delete a part still attached to `holder`, something other than this removal's.
fn attached_elsewhere(what: &str, holder: &str) -> StepError {
    StepError::permanent(format!(
        "{what} is attached to {holder}, which this removal does not delete; refusing to delete it"
    ))
    .with_remedy(format!(
        "detach {what} from {holder}, or delete it by hand if it really is to go"
    ))
}

impl AzureDeployment {
    /// One call's progress at deleting VM `vm` with its NIC, public IP and OS disk — only
    /// resources this deployment owns (`Shared::owns`: tagged with our cluster id, or untagged
    /// in an imported deployment) — journaled in `ctx`'s journal under `arm/remove/<vm>/…` so
    /// an interrupted removal resumes by polling instead of deleting twice.
    ///
    /// `Ready(())` when all four are gone; `Wait(d, why)` while Azure works (the caller returns
    /// `StepOutcome::pending(d, why)` and is called again). The caller's step should check its
    /// journal with [`converge::check_journal`].
    ///
    /// Each call settles the journaled deletes first, then finds the names (journaled under
    /// `remove/<vm>/names`: the NIC and OS disk the VM names, the public IP its NIC names, or
    /// `<vm>-nic`, `<vm>-pip`, `<vm>-osdisk` when the VM is already gone), then deletes what
    /// is left in the order Azure allows: VM, NIC, public IP, OS disk. A NIC, public IP or OS
    /// disk of the VM in another resource group is left alone.
    ///
    /// ```no_run
    /// # async fn apply(azure: &k0rdent_azure::AzureDeployment, ctx: &k0rdent_core::StepContext)
    /// # -> Result<k0rdent_core::StepOutcome, k0rdent_core::StepError> {
    /// use k0rdent_azure::steps::converge::Progress;
    /// use k0rdent_core::{Evidence, Outputs, StepOutcome};
    /// match azure.remove_vm(ctx, "k0s-worker-3").await? {
    ///     Progress::Ready(()) => Ok(StepOutcome::done(Outputs::new(), Evidence::new())),
    ///     Progress::Wait(after, why) => Ok(StepOutcome::pending(after, why)),
    /// }
    /// # }
    /// ```
    ///
    /// # Errors
    /// Permanent: the VM (or its NIC, public IP or disk) is another deployment's, or one of
    /// them is attached to something this removal does not delete. Transient: a delete
    /// operation failed, or a request did (as [`ArmError::into_step_error`] classifies it).
    ///
    /// [`ArmError::into_step_error`]: crate::client::ArmError::into_step_error
    pub async fn remove_vm(
        &self,
        ctx: &StepContext,
        vm: &str,
    ) -> Result<converge::Progress<()>, StepError> {
        let s = &*self.shared;
        let c = Converger {
            ctx,
            client: &s.client,
            poll: s.tuning.poll,
        };
        let journaled: Option<RemovalNames> = ctx.journal().latest_as(&names_key(vm));
        let labels = journaled.clone().unwrap_or_else(|| RemovalNames::ours(vm));
        for part in Part::ORDER {
            let what = format!(
                "deleting {} {}",
                part.label(),
                part.name(&labels).unwrap_or("(none)")
            );
            if let Some(Progress::Wait(d, m)) = c.settle(&op_key(vm, part), &what).await? {
                return Ok(Progress::Wait(d, m));
            }
        }
        ctx.checkpoint()?;
        let names = match journaled {
            Some(n) => n,
            None => {
                let n = discover(s, vm).await?;
                ctx.write_journal(&names_key(vm), &n).await?;
                n
            }
        };
        for part in Part::ORDER {
            ctx.checkpoint()?;
            let Some(name) = part.name(&names) else {
                continue;
            };
            if let Progress::Wait(d, m) = remove_part(s, &c, &names, part, name).await? {
                return Ok(Progress::Wait(d, m));
            }
        }
        Ok(Progress::Ready(()))
    }
}

/// The names of what removing `vm` deletes, read from the VM and its NIC.
async fn discover(s: &Shared, vm: &str) -> Result<RemovalNames, StepError> {
    let what = format!("VM {vm}");
    let Some(v) = s.get(types::VM, vm, &what).await? else {
        return Ok(RemovalNames::ours(vm));
    };
    require_owned(s, &what, &tags_of(&v))?;
    let ours = VmNames::new(vm);
    let nic = match str_at(&v, "/properties/networkProfile/networkInterfaces/0/id") {
        Some(id) => name_in_group(s, types::NIC, id),
        None => Some(ours.nic),
    };
    // A managed disk in another resource group is left alone.
    let os_disk = match str_at(&v, "/properties/storageProfile/osDisk/managedDisk/id") {
        Some(id) if name_in_group(s, types::DISK, id).is_none() => None,
        _ => Some(
            str_at(&v, "/properties/storageProfile/osDisk/name")
                .map_or(ours.os_disk, str::to_owned),
        ),
    };
    let public_ip = match &nic {
        Some(n) => {
            let nic_what = format!("NIC {n}");
            match s.get(types::NIC, n, &nic_what).await? {
                Some(nv) => str_at(
                    &nv,
                    "/properties/ipConfigurations/0/properties/publicIPAddress/id",
                )
                .and_then(|id| name_in_group(s, types::PUBLIC_IP, id)),
                None => Some(ours.public_ip),
            }
        }
        None => None,
    };
    Ok(RemovalNames {
        vm: vm.to_owned(),
        nic,
        public_ip,
        os_disk,
    })
}

/// What still holds `part` (a resource id), if anything: the NIC's VM, the public IP's
/// IP configuration, the disk's VM.
fn holder(part: Part, v: &Value) -> Option<&str> {
    match part {
        Part::Vm => None,
        Part::Nic => str_at(v, "/properties/virtualMachine/id"),
        Part::PublicIp => str_at(v, "/properties/ipConfiguration/id"),
        Part::OsDisk => str_at(v, "/managedBy"),
    }
}

/// Whether `holder` is what this removal deletes before `part` (Azure detaches it once that
/// is gone).
fn held_by_this_removal(s: &Shared, names: &RemovalNames, part: Part, holder: &str) -> bool {
    match part {
        Part::Nic | Part::OsDisk => is_ours_named(s, types::VM, &names.vm, holder),
        // `…/networkInterfaces/<nic>/ipConfigurations/<cfg>`
        Part::PublicIp => names.nic.as_deref().is_some_and(|nic| {
            holder
                .to_ascii_lowercase()
                .split_once("/ipconfigurations/")
                .is_some_and(|(nic_id, _)| is_ours_named(s, types::NIC, nic, nic_id))
        }),
        Part::Vm => false,
    }
}

/// Deletes one part if it is there. `Ready` when it is gone.
async fn remove_part(
    s: &Shared,
    c: &Converger<'_>,
    names: &RemovalNames,
    part: Part,
    name: &str,
) -> Result<Progress<()>, StepError> {
    let what = format!("{} {name}", part.label());
    let Some(v) = s.get(part.rtype(), name, &what).await? else {
        return Ok(Progress::Ready(()));
    };
    require_owned(s, &what, &tags_of(&v))?;
    let key = op_key(&names.vm, part);
    let path = s.names.resource_id(part.rtype(), name);
    let api_version = api::for_type(part.rtype());
    let state = provisioning(&v);
    if state.is_some_and(|st| st.eq_ignore_ascii_case("Deleting")) {
        // Already being deleted (our lost response, or Azure's own): watch it go.
        return Ok(c.watch(&key, &path, api_version, &what).await?.map(drop));
    }
    if let Some(h) = holder(part, &v) {
        if !held_by_this_removal(s, names, part, h) {
            return Err(attached_elsewhere(&what, h));
        }
        // Detached by Azure once the VM (or NIC) deletion completes.
        return converge::wait_for(
            c.ctx,
            c.poll.after(None),
            format!("{what}: still attached to {}", names::name_of(h)),
        );
    }
    if !model::is_terminal(state) {
        return Ok(c.watch(&key, &path, api_version, &what).await?.map(drop));
    }
    c.ctx.progress(format!("deleting {what}"));
    Ok(c.write(
        &key,
        "DELETE",
        &path,
        api_version,
        None,
        &format!("deleting {what}"),
    )
    .await?
    .map(drop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_keys_sit_under_arm_remove_and_the_names_apart() {
        assert_eq!(
            converge::journal_key(&op_key("w-3", Part::Nic)),
            "arm/remove/w-3/nic"
        );
        assert_eq!(names_key("w-3"), "remove/w-3/names");
        let keys: Vec<&str> = Part::ORDER.iter().map(|p| p.key()).collect();
        assert_eq!(keys, ["vm", "nic", "pip", "disk"]);
    }

    #[test]
    fn a_gone_vm_s_names_are_ours() {
        let n = RemovalNames::ours("k0s-worker-2");
        assert_eq!(n.nic.as_deref(), Some("k0s-worker-2-nic"));
        assert_eq!(n.public_ip.as_deref(), Some("k0s-worker-2-pip"));
        assert_eq!(n.os_disk.as_deref(), Some("k0s-worker-2-osdisk"));
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(serde_json::from_value::<RemovalNames>(v).unwrap(), n);
    }
}
