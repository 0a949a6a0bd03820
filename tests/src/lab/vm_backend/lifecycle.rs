//! The backend's bookkeeping: one entry per VM, its power changes serialized by its own
//! lock, boots in threads of their own after the delay.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use ipnet::Ipv4Net;
use k0rdent_arm_emulator::BackendVm;
use k0rdent_core::secret::Secret;

use super::guard::{catch, lock};
use super::{LabVmOptions, VmStatus};
use crate::lab::cmd;
use crate::lab::edge::{self, VmAddresses};
use crate::lab::slot::{Slot, VMS};
use crate::lab::sshd::SshdOptions;
use crate::lab::vm_files::write_vm_files;
use crate::lab::wireguard::LabNode;

/// A VM's node index (fixed for its life) and the rest of it behind its own lock, so a
/// long boot never blocks the index lookups of other VMs.
pub(super) struct Entry {
    pub(super) index: u8,
    /// Its NIC's private address and the public one mapped to it (a move changes the
    /// latter).
    pub(super) addrs: Mutex<VmAddresses>,
    /// Azure's id of this instance (a VM deleted and created again gets a new one).
    vm_id: String,
    pub(super) vm: Mutex<Vm>,
}

pub(super) struct Vm {
    index: u8,
    name: String,
    /// Bumped by every power change, so a boot scheduled before it gives up.
    generation: u64,
    pub(super) status: VmStatus,
    /// The first boot's sshd options and custom data (cloud-init runs once per instance).
    first_boot: Option<(SshdOptions, Secret<Vec<u8>>)>,
    pub(super) node: Option<LabNode>,
    /// Deleted (a second delete of the same VM does nothing).
    deleted: bool,
}

pub(super) struct Inner {
    pub(super) slot: Slot,
    pub(super) opts: LabVmOptions,
    pub(super) vms: Mutex<BTreeMap<String, Arc<Entry>>>,
    pub(super) torn_down: std::sync::atomic::AtomicBool,
    /// The fake API on the controllers, when the options ask for it.
    pub(super) api: Option<super::api::ApiServing>,
}

impl Vm {
    fn boot(&mut self, slot: &Slot) -> Result<(), String> {
        if let Some(node) = &mut self.node {
            return node.power_on(slot);
        }
        let (opts, custom_data) = self
            .first_boot
            .take()
            .ok_or("the VM has neither a node nor a first boot")?;
        let root = opts.dir.parent().ok_or("node without a root")?.to_owned();
        let public = slot.vm_public_ip(self.index);
        let node = LabNode::launch(slot, self.index, &self.name, public, root, opts);
        let applied = node.apply_cloud_config(custom_data.expose());
        self.node = Some(node);
        applied
    }

    fn power_off(&mut self) {
        self.generation += 1;
        if let Some(node) = &mut self.node {
            node.power_off();
        }
    }
}

impl Inner {
    /// Stops the API on `name` before its processes or namespace go.
    fn stop_api(&self, name: &str) {
        if let Some(api) = &self.api {
            api.stop(name);
        }
    }

    pub(super) fn vm(&self, name: &str) -> Result<Arc<Entry>, String> {
        lock(&self.vms)
            .get(name)
            .cloned()
            .ok_or_else(|| format!("no lab VM {name}"))
    }

    /// Boots `vm` after the delay in a thread of its own, unless a power change came first.
    fn schedule_boot(self: &Arc<Self>, entry: Arc<Entry>, generation: u64) {
        let inner = self.clone();
        std::thread::spawn(move || {
            std::thread::sleep(inner.opts.boot_delay);
            let mut v = lock(&entry.vm);
            if v.generation != generation {
                return;
            }
            let slot = &inner.slot;
            let result = catch(|| v.boot(slot));
            v.status = match result {
                Ok(()) => VmStatus::Running,
                Err(e) => VmStatus::Failed(e),
            };
        });
    }

    pub(super) fn create(self: &Arc<Self>, vm: &BackendVm) -> Result<Ipv4Addr, String> {
        // A VM of that name already: the same instance (nothing to do), or an old one whose
        // delete is under way (the emulator reports a delete done before it reaches the
        // backend: wait for it) or never comes (deleted behind the client's back: replace it).
        if let Ok(existing) = self.vm(&vm.name) {
            if existing.vm_id == vm.vm_id {
                return Ok(lock(&existing.addrs).public);
            }
            self.delete(&vm.name)?;
        }
        let mut vms = lock(&self.vms);
        let used: Vec<u8> = vms.values().map(|v| v.index).collect();
        let index = (0..VMS)
            .find(|i| !used.contains(i))
            .ok_or_else(|| format!("the lab slot has room for {VMS} VMs"))?;
        let addrs = VmAddresses {
            private: private_address(vm, index)?,
            public: self.slot.vm_public_ip(index),
        };
        let (root, mut opts) = catch(|| {
            edge::attach(&self.slot, index, addrs)?;
            super::nsg::apply(&self.slot.netns(index), &vm.inbound);
            Ok(LabNode::layout(&self.slot, index, &vm.name))
        })?;
        opts.authorized_keys_file = Some(".ssh/authorized_keys".to_owned());
        opts.binds.extend(write_vm_files(&root, vm)?);
        // cloud-init's run directory: the real `cloud-init status` reads it (written at boot).
        let run_ci = root.join("run-cloud-init");
        std::fs::create_dir_all(&run_ci).map_err(|e| e.to_string())?;
        opts.binds.push((run_ci, "/run/cloud-init".to_owned()));
        for dir in super::K0S_DIRS {
            let own = root.join(dir.trim_start_matches('/').replace('/', "-"));
            std::fs::create_dir_all(&own).map_err(|e| e.to_string())?;
            opts.binds.push((own, dir.to_owned()));
        }
        let entry = Arc::new(Entry {
            index,
            addrs: Mutex::new(addrs),
            vm_id: vm.vm_id.clone(),
            vm: Mutex::new(Vm {
                index,
                name: vm.name.clone(),
                generation: 0,
                status: VmStatus::Booting,
                first_boot: Some((opts, vm.custom_data.clone())),
                node: None,
                deleted: false,
            }),
        });
        vms.insert(vm.name.clone(), entry.clone());
        drop(vms);
        self.schedule_boot(entry, 0);
        Ok(addrs.public)
    }

    /// Deletes a VM; it leaves [`LabVmBackend::names`] only once its node is gone.
    pub(super) fn delete(&self, name: &str) -> Result<(), String> {
        let Ok(entry) = self.vm(name) else {
            return Ok(());
        };
        let mut v = lock(&entry.vm);
        if v.deleted {
            return Ok(());
        }
        self.stop_api(name);
        let (index, slot) = (entry.index, &self.slot);
        let result = catch(|| {
            v.power_off();
            v.node = None;
            // The link first: a namespace whose sockets linger (TIME_WAIT) is freed by the
            // kernel only minutes later, and would keep its link until then.
            edge::detach(slot, index, *lock(&entry.addrs))?;
            let _ = cmd::try_run("ip", &["netns", "del", &slot.netns(index)]);
            let _ = std::fs::remove_dir_all(slot.dir().join(format!("node-{index}")));
            Ok(())
        });
        v.deleted = true;
        drop(v);
        let mut vms = lock(&self.vms);
        // Unless a new instance of the same name took its place meanwhile.
        if vms.get(name).is_some_and(|e| Arc::ptr_eq(e, &entry)) {
            vms.remove(name);
        }
        result
    }

    /// Replaces VM `name`'s NSG table with `rules` (its drop counter starts again at 0).
    pub(super) fn apply_inbound(
        &self,
        name: &str,
        rules: &k0rdent_arm_emulator::InboundRules,
    ) -> Result<(), String> {
        let entry = self.vm(name)?;
        let v = lock(&entry.vm);
        if v.deleted {
            return Ok(());
        }
        catch(|| {
            super::nsg::apply(&self.slot.netns(entry.index), rules);
            Ok(())
        })?;
        eprintln!("lab: NSG of {name} changed ({} NSGs)", rules.nsgs.len());
        Ok(())
    }

    pub(super) fn deallocate(&self, name: &str) -> Result<(), String> {
        let entry = self.vm(name)?;
        let mut v = lock(&entry.vm);
        self.stop_api(name);
        catch(|| {
            v.power_off();
            Ok(())
        })?;
        v.status = VmStatus::Off;
        Ok(())
    }

    pub(super) fn start(self: &Arc<Self>, name: &str) -> Result<(), String> {
        let entry = self.vm(name)?;
        let generation = {
            let mut v = lock(&entry.vm);
            if v.status == VmStatus::Running {
                return Ok(());
            }
            v.generation += 1;
            v.status = VmStatus::Booting;
            v.generation
        };
        self.schedule_boot(entry, generation);
        Ok(())
    }

    pub(super) fn stop_all(&self) {
        let vms: Vec<_> = std::mem::take(&mut *lock(&self.vms))
            .into_values()
            .collect();
        if let Some(api) = &self.api {
            api.stop_all();
        }
        for entry in vms {
            let mut v = lock(&entry.vm);
            v.generation += 1;
            if let Some(node) = &mut v.node {
                node.sshd.stop();
            }
            v.node = None;
        }
    }
}

/// The VM's NIC address with its subnet's prefix length, as the emulator allocated it; a
/// VM without one (a backend driven without ARM) gets `10.0.1.(4 + index)/24`.
fn private_address(vm: &BackendVm, index: u8) -> Result<Ipv4Net, String> {
    let prefix_len = match &vm.subnet_prefix {
        Some(p) => p
            .parse::<Ipv4Net>()
            .map_err(|e| format!("{}: subnet prefix {p:?}: {e}", vm.name))?
            .prefix_len(),
        None => 24,
    };
    let addr = match vm.private_ip {
        Some(std::net::IpAddr::V4(a)) => a,
        Some(other) => return Err(format!("{}: private address {other} is not IPv4", vm.name)),
        None => Ipv4Addr::new(10, 0, 1, 4 + index),
    };
    Ipv4Net::new(addr, prefix_len).map_err(|e| format!("{}: {e}", vm.name))
}

/// How often the API watcher looks at the VMs.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Reconciles every VM's API listener (`api`) until the backend is gone or torn
/// down.
pub(super) fn watch_api(inner: std::sync::Weak<Inner>) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(WATCH_EVERY);
            let Some(inner) = inner.upgrade() else { return };
            if inner.torn_down.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            let Some(api) = &inner.api else { return };
            let vms: Vec<_> = lock(&inner.vms)
                .iter()
                .map(|(n, e)| (n.clone(), e.clone()))
                .collect();
            for (name, entry) in &vms {
                // A VM busy booting or changing power is looked at next round.
                let Ok(v) = entry.vm.try_lock() else { continue };
                api.reconcile(name, v.node.as_ref(), v.status == VmStatus::Running);
            }
            let names: Vec<String> = vms.into_iter().map(|(n, _)| n).collect();
            api.retain(&names);
        }
    });
}
