//! The ARM emulator's VM backend for the lab: every VM the emulator creates becomes a lab
//! node in the backend's slot: a namespace whose NIC has the private address ARM gave it, on
//! the VNet bridge of the slot's edge ([`super::edge`]), which maps the slot's VM address
//! ([`Slot::vm_public_ip`]) to it 1:1 as its "public" IP.
//!
//! - create: the next free node index, its namespace and NIC, the admin user and host name
//!   from `osProfile` ([`super::vm_files`]), then, after the boot delay and in the
//!   background (Azure reports a VM created before it has booted), sshd with rsa, ecdsa and
//!   ed25519 host keys and the custom data applied as cloud-init would.
//! - deallocate: every process of the node stops (sshd, wireguard-go); its files stay.
//! - start: after the boot delay, sshd and the units cloud-init enabled come back.
//! - delete: the namespace, its NIC, its public address mapping and its files go.
//! - an NSG change the emulator reports: the VM's nftables table is replaced at once, as
//!   Azure applies NSG changes to running VMs.
//!
//! ```text
//! let backend = Arc::new(LabVmBackend::new(LabVmOptions::default()));
//! let emu = Emulator::builder().backend(backend.clone()).start().await?;
//! // ... the CLI creates VMs; then:
//! backend.wait_all_booted(Duration::from_secs(30))?;
//! backend.slot().record_hub(&hub_interface);
//! // ... at the end, after the CLI's reset:
//! backend.teardown();
//! ```

mod api;
mod guard;
mod lifecycle;
pub mod nsg;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use k0rdent_arm_emulator::{BackendError, BackendVm, InboundRules, VmBackend};

use k0rdent_standins::kube::FakeKube;

pub use api::API_PORT;

use super::cmd;
use super::slot::Slot;
use super::wireguard::LabNode;
use guard::lock;
use lifecycle::Inner;

/// How the backend's VMs behave.
#[derive(Debug, Clone)]
pub struct LabVmOptions {
    /// From create or start until sshd answers (and cloud-init runs), so gates really wait.
    pub boot_delay: Duration,
    /// The fake cluster every controller whose k0s runs serves on its tunnel address, port
    /// [`API_PORT`] (needs a tokio runtime when the backend is made); `None`: no API.
    pub api: Option<FakeKube>,
}

impl Default for LabVmOptions {
    fn default() -> Self {
        LabVmOptions {
            boot_delay: Duration::from_secs(1),
            api: None,
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

    async fn inbound_changed(&self, name: &str, rules: &InboundRules) -> Result<(), BackendError> {
        let (inner, name, rules) = (self.inner.clone(), name.to_owned(), rules.clone());
        blocking(move || inner.apply_inbound(&name, &rules)).await
    }
}

/// Where k0sctl installs k0s and k0s keeps its state on a VM: each node gets its own.
pub const K0S_DIRS: [&str; 4] = [
    "/usr/local/bin",
    "/var/lib/k0s",
    "/etc/systemd/system",
    "/etc/k0s",
];

impl LabVmBackend {
    /// Takes a slot (sweeping what a crashed holder left) for the VMs to live in.
    pub fn new(opts: LabVmOptions) -> LabVmBackend {
        super::require_lab();
        std::fs::create_dir_all("/run/wireguard").unwrap();
        std::fs::create_dir_all("/var/lib/cloud").unwrap();
        // Mount points of the per-node directories k0s (and its stand-in) writes to.
        for d in K0S_DIRS.iter().chain(&["/run/cloud-init"]) {
            std::fs::create_dir_all(d).unwrap();
        }
        let api = opts.api.clone().map(|kube| {
            let runtime = tokio::runtime::Handle::try_current()
                .expect("a lab backend serving the API is made inside a tokio runtime");
            api::ApiServing::new(kube, runtime)
        });
        let slot = Slot::acquire();
        super::edge::ensure(&slot).unwrap_or_else(|e| panic!("lab edge: {e}"));
        let inner = Arc::new(Inner {
            slot,
            opts,
            vms: Mutex::new(BTreeMap::new()),
            torn_down: std::sync::atomic::AtomicBool::new(false),
            api,
        });
        if inner.api.is_some() {
            lifecycle::watch_api(Arc::downgrade(&inner));
        }
        LabVmBackend { inner }
    }

    /// `(VM, tunnel address)` of every controller serving the API now (see
    /// [`LabVmOptions::api`]).
    pub fn api_serving(&self) -> Vec<(String, Ipv4Addr)> {
        self.inner
            .api
            .as_ref()
            .map(api::ApiServing::serving)
            .unwrap_or_default()
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

    /// A VM's "public" address, mapped 1:1 to its private one by the slot's edge
    /// ([`super::edge`]); the second one once it has moved.
    pub fn public_ip(&self, name: &str) -> Option<Ipv4Addr> {
        let entry = self.inner.vm(name).ok()?;
        let public = lock(&entry.addrs).public;
        Some(public)
    }

    /// A VM's NIC address in its subnet, with the prefix length (`10.0.1.4/24`).
    pub fn private_ip(&self, name: &str) -> Option<ipnet::Ipv4Net> {
        let entry = self.inner.vm(name).ok()?;
        let private = lock(&entry.addrs).private;
        Some(private)
    }

    /// Gives a running VM its second "public" address ([`Slot::vm_moved_ip`]) and takes
    /// the first away, as when Azure releases a VM's public IP and allocates another: the
    /// edge maps the new one to the VM's private address instead. The caller tells the
    /// emulator ([`k0rdent_arm_emulator::Emulator::reassign_public_ip`]). A VM moves once.
    /// Returns the new address.
    pub fn move_public_ip(&self, name: &str) -> Ipv4Addr {
        let entry = self.inner.vm(name).unwrap();
        let slot = &self.inner.slot;
        let new = slot.vm_moved_ip(entry.index);
        let mut addrs = lock(&entry.addrs);
        assert_ne!(addrs.public, new, "{name} has moved already");
        super::edge::unmap(slot, addrs.private.addr(), addrs.public).unwrap();
        super::edge::map(slot, addrs.private.addr(), new).unwrap();
        addrs.public = new;
        super::netns::assert_route(new, &slot.edge_veth());
        new
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

    /// The lab going down whatever the deployment's state: every VM deleted, the slot swept
    /// at once (the hub interface a CLI left up, its wireguard-go), then [`Self::teardown`]'s
    /// checks.
    pub fn shutdown(&self) {
        for name in self.names() {
            if let Err(e) = self.inner.delete(&name) {
                panic!("deleting {name}: {e}");
            }
        }
        self.inner.slot.sweep();
        self.teardown();
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
        super::edge::remove(&self.inner.slot);
        // A wireguard-go whose interface was just deleted exits on its own a moment later,
        // and a deleted namespace's link goes only when the kernel lets the namespace go
        // (connections closed in it linger in TIME_WAIT/FIN_WAIT for up to ~2 minutes).
        let mut left = Vec::new();
        cmd::wait_for(150.0, || {
            left = self.inner.slot.leftovers();
            left.is_empty()
        });
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

    /// The packets VM `name`'s NSG dropped so far (its [`nsg::DROPPED_COUNTER`]); panics for
    /// a VM that does not exist.
    pub fn nsg_drops(&self, name: &str) -> u64 {
        let index = self
            .index(name)
            .unwrap_or_else(|| panic!("no lab VM {name}"));
        nsg::dropped(&self.inner.slot.netns(index))
    }
}
