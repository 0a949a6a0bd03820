//! The ARM emulator's VM backend for the lab: every VM the emulator creates becomes a lab
//! node in the backend's slot, reached at the slot's node address as its "public" IP.
//!
//! - create: the next free node index, its namespace and link, the admin user and host name
//!   from `osProfile` ([`super::vm_files`]), then, after the boot delay and in the
//!   background (Azure reports a VM created before it has booted), sshd with rsa, ecdsa and
//!   ed25519 host keys and the custom data applied as cloud-init would.
//! - deallocate: every process of the node stops (sshd, wireguard-go); its files stay.
//! - start: after the boot delay, sshd and the units cloud-init enabled come back.
//! - delete: the namespace, its link and its files go.
//!
//! ```ignore
//! let backend = Arc::new(LabVmBackend::new(LabVmOptions::default()));
//! let emu = Emulator::builder().backend(backend.clone()).start().await?;
//! // ... the CLI creates VMs; then:
//! backend.wait_all_booted(Duration::from_secs(30))?;
//! backend.slot().record_hub(&hub_interface);
//! // ... at the end, after the CLI's reset:
//! backend.teardown();
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use k0rdent_arm_emulator::{BackendError, BackendVm, VmBackend};
use k0rdent_core::secret::Secret;

use super::cmd;
use super::netns;
use super::slot::{NODES, Slot};
use super::sshd::SshdOptions;
use super::vm_files::write_vm_files;
use super::wireguard::LabNode;

/// How the backend's VMs behave.
#[derive(Debug, Clone)]
pub struct LabVmOptions {
    /// From create or start until sshd answers (and cloud-init runs), so gates really wait.
    pub boot_delay: Duration,
}

impl Default for LabVmOptions {
    fn default() -> Self {
        LabVmOptions {
            boot_delay: Duration::from_secs(1),
        }
    }
}

/// Where a VM is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmStatus {
    /// Created or started; not answering yet.
    Booting,
    /// sshd answers and what cloud-init enabled runs.
    Running,
    /// Deallocated: nothing runs, the files stay.
    Off,
    /// The boot failed (the message says why).
    Failed(String),
}

/// A VM's node index (fixed for its life) and the rest of it behind its own lock, so a
/// long boot never blocks the index lookups of other VMs.
struct Entry {
    index: u8,
    /// Azure's id of this instance (a VM deleted and created again gets a new one).
    vm_id: String,
    vm: Mutex<Vm>,
}

struct Vm {
    index: u8,
    name: String,
    /// Bumped by every power change, so a boot scheduled before it gives up.
    generation: u64,
    status: VmStatus,
    /// The first boot's sshd options and custom data (cloud-init runs once per instance).
    first_boot: Option<(SshdOptions, Secret<Vec<u8>>)>,
    node: Option<LabNode>,
    /// Deleted (a second delete of the same VM does nothing).
    deleted: bool,
}

struct Inner {
    slot: Slot,
    opts: LabVmOptions,
    vms: Mutex<BTreeMap<String, Arc<Entry>>>,
    torn_down: std::sync::atomic::AtomicBool,
}

/// The lab's [`VmBackend`]: see the module documentation.
pub struct LabVmBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LabVmBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabVmBackend")
            .field("slot", &self.inner.slot.n)
            .field("vms", &self.names())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panicked".to_owned())
}

/// Runs lab code (which panics on failure) and turns a panic into an error message.
fn catch<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(panic_text(&*p)))
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
        let node = LabNode::launch(slot, self.index, &self.name, root, opts);
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
    fn vm(&self, name: &str) -> Result<Arc<Entry>, String> {
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

    fn create(self: &Arc<Self>, vm: &BackendVm) -> Result<Ipv4Addr, String> {
        // A VM of that name already: the same instance (nothing to do), or an old one whose
        // delete is under way (the emulator reports a delete done before it reaches the
        // backend: wait for it) or never comes (deleted behind the client's back: replace it).
        if let Ok(existing) = self.vm(&vm.name) {
            if existing.vm_id == vm.vm_id {
                return Ok(self.slot.node_ip(existing.index));
            }
            self.delete(&vm.name)?;
        }
        let mut vms = lock(&self.vms);
        let used: Vec<u8> = vms.values().map(|v| v.index).collect();
        let index = (0..NODES)
            .find(|i| !used.contains(i))
            .ok_or_else(|| format!("the lab slot has room for {NODES} VMs"))?;
        let (root, mut opts) = catch(|| {
            netns::create_node_namespace(&self.slot, index);
            Ok(LabNode::layout(&self.slot, index, &vm.name))
        })?;
        opts.authorized_keys_file = Some(".ssh/authorized_keys".to_owned());
        opts.binds.extend(write_vm_files(&root, vm)?);
        let entry = Arc::new(Entry {
            index,
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
        Ok(self.slot.node_ip(index))
    }

    /// Deletes a VM; it leaves [`LabVmBackend::names`] only once its node is gone.
    fn delete(&self, name: &str) -> Result<(), String> {
        let Ok(entry) = self.vm(name) else {
            return Ok(());
        };
        let mut v = lock(&entry.vm);
        if v.deleted {
            return Ok(());
        }
        let (index, slot) = (entry.index, &self.slot);
        let result = catch(|| {
            v.power_off();
            v.node = None;
            let ns = slot.netns(index);
            let _ = cmd::try_run("ip", &["netns", "del", &ns]);
            let veth = slot.veth(index);
            let gone = cmd::wait_for(10.0, || {
                cmd::try_run("ip", &["link", "show", &veth]).is_err()
            });
            if !gone {
                return Err(format!("{veth} did not go away"));
            }
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

    fn deallocate(&self, name: &str) -> Result<(), String> {
        let entry = self.vm(name)?;
        let mut v = lock(&entry.vm);
        catch(|| {
            v.power_off();
            Ok(())
        })?;
        v.status = VmStatus::Off;
        Ok(())
    }

    fn start(self: &Arc<Self>, name: &str) -> Result<(), String> {
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

    fn stop_all(&self) {
        let vms: Vec<_> = std::mem::take(&mut *lock(&self.vms))
            .into_values()
            .collect();
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

// On the backend, not on `Inner`: boot threads hold `Inner` while they sleep, and a test that
// panics exits without waiting for them.
impl Drop for LabVmBackend {
    fn drop(&mut self) {
        if !self
            .inner
            .torn_down
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            // A failed test: clean up anyway (the next holder of the slot would too).
            self.inner.stop_all();
            self.inner.slot.sweep();
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, BackendError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BackendError::from(e.to_string()))?
        .map_err(BackendError::from)
}

#[async_trait]
impl VmBackend for LabVmBackend {
    async fn create(&self, vm: &BackendVm) -> Result<Option<IpAddr>, BackendError> {
        let (inner, vm) = (self.inner.clone(), vm.clone());
        let ip = blocking(move || inner.create(&vm)).await?;
        Ok(Some(IpAddr::V4(ip)))
    }

    async fn delete(&self, name: &str) -> Result<(), BackendError> {
        let (inner, name) = (self.inner.clone(), name.to_owned());
        blocking(move || inner.delete(&name)).await
    }

    async fn start(&self, name: &str) -> Result<(), BackendError> {
        let (inner, name) = (self.inner.clone(), name.to_owned());
        blocking(move || inner.start(&name)).await
    }

    async fn deallocate(&self, name: &str) -> Result<(), BackendError> {
        let (inner, name) = (self.inner.clone(), name.to_owned());
        blocking(move || inner.deallocate(&name)).await
    }
}

impl LabVmBackend {
    /// Takes a slot (sweeping what a crashed holder left) for the VMs to live in.
    pub fn new(opts: LabVmOptions) -> LabVmBackend {
        super::require_lab();
        std::fs::create_dir_all("/run/wireguard").unwrap();
        std::fs::create_dir_all("/var/lib/cloud").unwrap();
        LabVmBackend {
            inner: Arc::new(Inner {
                slot: Slot::acquire(),
                opts,
                vms: Mutex::new(BTreeMap::new()),
                torn_down: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// The slot: its tunnel network for the configuration, its directory for the state,
    /// [`Slot::record_hub`] for the hub interface the CLI brings up.
    pub fn slot(&self) -> &Slot {
        &self.inner.slot
    }

    /// The VMs that exist (created and not deleted).
    pub fn names(&self) -> Vec<String> {
        lock(&self.inner.vms).keys().cloned().collect()
    }

    /// A VM's status, if it exists.
    pub fn status(&self, name: &str) -> Option<VmStatus> {
        let entry = self.inner.vm(name).ok()?;
        let status = lock(&entry.vm).status.clone();
        Some(status)
    }

    /// A VM's node index in the slot ([`Slot::netns`], [`Slot::veth`]).
    pub fn index(&self, name: &str) -> Option<u8> {
        self.inner.vm(name).ok().map(|e| e.index)
    }

    /// A VM's "public" address (its link's node side).
    pub fn public_ip(&self, name: &str) -> Option<Ipv4Addr> {
        let entry = self.inner.vm(name).ok()?;
        Some(self.inner.slot.node_ip(entry.index))
    }

    /// Runs `f` on a VM's node once it has booted at least once (to run commands in it).
    pub fn with_node<R>(&self, name: &str, f: impl FnOnce(&LabNode) -> R) -> Option<R> {
        let entry = self.inner.vm(name).ok()?;
        let v = lock(&entry.vm);
        v.node.as_ref().map(f)
    }

    /// Waits until every VM has booted; a failed boot or the time running out is an error
    /// naming the VMs.
    ///
    /// # Errors
    /// Which VM failed or is still booting.
    pub fn wait_all_booted(&self, limit: Duration) -> Result<(), String> {
        let mut last = Vec::new();
        let done = cmd::wait_for(limit.as_secs_f64(), || {
            last = self
                .names()
                .into_iter()
                .filter_map(|n| match self.status(&n) {
                    Some(VmStatus::Running) | None => None,
                    Some(VmStatus::Failed(e)) => Some(format!("{n}: boot failed: {e}")),
                    Some(s) => Some(format!("{n}: {s:?}")),
                })
                .collect();
            last.is_empty() || last.iter().any(|l| l.contains("boot failed"))
        });
        if done && last.is_empty() {
            Ok(())
        } else {
            Err(last.join("; "))
        }
    }

    /// Waits until no VM exists (the emulator deletes them asynchronously).
    pub fn wait_all_deleted(&self, limit: Duration) -> bool {
        cmd::wait_for(limit.as_secs_f64(), || self.names().is_empty())
    }

    /// Deletes what is left, sweeps the slot and asserts that nothing of it remains
    /// (namespaces, links, hub interfaces, processes, files).
    pub fn teardown(&self) {
        self.inner
            .torn_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for name in self.names() {
            if let Err(e) = self.inner.delete(&name) {
                panic!("deleting {name}: {e}");
            }
        }
        let left = self.inner.slot.leftovers();
        self.inner.slot.sweep();
        assert!(
            left.is_empty(),
            "lab slot {} left behind: {left:?}",
            self.inner.slot.n
        );
        assert!(
            !self.inner.slot.dir().exists(),
            "slot directory left behind"
        );
    }
}
