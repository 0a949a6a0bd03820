//! An Azure Resource Manager emulator: an HTTP server on 127.0.0.1 with the REST semantics
//! the ARM documentation describes, for the tests, benches and lab of k0rdent-deploy (never
//! published). It keeps its own api-versions, resource types and provisioning states and takes
//! nothing from `k0rdent-azure`'s client, so the two can disagree and a test can catch it;
//! only [`fixtures`] (ready-made clients and specs for tests) uses `k0rdent-azure`.
//!
//! - idempotent PUT (201 created, 200 updated), PATCH, DELETE and VM actions as asynchronous
//!   operations (`Azure-AsyncOperation`, `Location`, `Retry-After`) with `provisioningState`
//!   transitions; a PUT while provisioning is not terminal gets 409, and so does a change of an
//!   immutable VM property (`PropertyChangeNotAllowed`);
//! - the deletes Azure refuses: a NIC attached to a VM (400 `NicInUse`), a public IP
//!   associated with a NIC (400 `PublicIPAddressCannotBeDeleted`; deleting the NIC, or a NIC
//!   update without it, releases it) and a managed disk attached to a VM (409
//!   `OperationNotAllowed`);
//! - 400 for a missing or unknown api-version and an unsupported `$expand`; `nextLink` paging;
//!   404 with `ResourceNotFound`/`ResourceGroupNotFound`;
//! - VM instance views with power states, `start`/`deallocate`/`powerOff`/`restart`, and the
//!   status-only list;
//! - the preflight calls (resource SKUs, usages, providers, images) from a [`Catalog`];
//! - a token endpoint (`/{tenant}/oauth2/v2.0/token`) and bearer-token checks (401 for an
//!   expired or unknown token);
//! - injectable latency, throttling, 403s, provisioning failures, missing power states and
//!   connections dropped after a write was processed ([`Faults`]);
//! - Azure behaviours behind fault switches ([`Faults`], all at once with
//!   [`Faults::azure_rules`]): 411 for a write without a length, NIC reservation after a VM
//!   is deleted or fails (`NicReservedForAnotherVm`), operation URLs that expire (404/410),
//!   `AnotherOperationInProgress` as a failed asynchronous operation, `Canceled` operations,
//!   resize rules (`OperationNotAllowed` off the hardware cluster; a resize restarts a running
//!   VM), SKU capabilities and limits (Spot, Premium SSD, Hyper-V generation, custom data,
//!   reserved admin names), throttling with a chosen `Retry-After`, and a subscription in
//!   another tenant (`InvalidAuthenticationTokenTenant`);
//! - Key Vault's secrets data plane (api-version 7.4) under `/vaults/{vault}/…` (see
//!   [`Emulator::keyvault_url`]): set, get, list with paging, soft delete, purge, recover,
//!   409 `ObjectIsDeletedButRecoverable`, the 401 challenge and 403 `ForbiddenByRbac`;
//! - a [`RequestLog`] that counts calls per method and resource;
//! - a [`VmBackend`] hook (the lab) called on VM create/delete/start/deallocate, which may
//!   supply the public IP. Public IPs come from addresses that exist on this machine:
//!   127.1.0.0/16 (loopback) unless [`EmulatorBuilder::public_ips`] says otherwise (the lab
//!   passes its bridge network, 198.51.100.0/24). A created VM comes with the inbound
//!   security rules in effect for its NIC ([`InboundRules`]: its subnet's NSG, then its own,
//!   each with Azure's default rules), so the backend can enforce them.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use k0rdent_arm_emulator::Emulator;
//! let emu = Emulator::builder().start().await?;
//! assert!(emu.url().starts_with("http://127.0.0.1:"));
//! # Ok::<(), std::io::Error>(()) }).unwrap();
//! ```

mod arm;
mod backend;
mod catalog;
mod compute;
#[cfg(test)]
mod delete_tests;
mod effective_rules;
mod faults;
pub mod fixtures;
mod groups;
mod inbound_rules;
mod inbound_sync;
mod keyvault;
mod lists;
mod network;
mod operation;
mod preflight_api;
mod reply;
mod server;
mod world;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k0rdent_core::secret::Secret;
use serde_json::Value;

pub use backend::{BackendError, BackendVm, VmBackend};
pub use catalog::{Catalog, ImageDef, SkuDef};
pub use faults::{Faults, LoggedRequest, RequestLog};
pub use inbound_rules::{Access, InboundRules, NsgRules, Protocol, SecurityRule};

use world::World;

/// Settings of an emulator.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) subscription: String,
    pub(crate) tenant: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) assertion: Option<String>,
    pub(crate) latency: Duration,
    pub(crate) page_size: usize,
    pub(crate) op_duration: Duration,
    pub(crate) retry_after: Duration,
    pub(crate) token_lifetime: Duration,
    pub(crate) require_auth: bool,
    pub(crate) ips: Vec<IpAddr>,
    pub(crate) backend: Option<Arc<dyn VmBackend>>,
    /// Added to the real time in every response's `Date` header.
    pub(crate) clock_offset: chrono::TimeDelta,
    /// How long a Key Vault secret's deletion stays in progress.
    pub(crate) vault_delete_latency: Duration,
}

/// Builds an [`Emulator`]; [`Emulator::builder`] starts one with the defaults.
#[must_use]
pub struct EmulatorBuilder {
    cfg: Config,
    catalog: Catalog,
}

impl EmulatorBuilder {
    /// Delay before every response (default none; the benchmark uses 50 ms).
    pub fn latency(mut self, d: Duration) -> Self {
        self.cfg.latency = d;
        self
    }

    /// Items per page of a list (default 1000).
    pub fn page_size(mut self, n: usize) -> Self {
        self.cfg.page_size = n.max(1);
        self
    }

    /// How long an asynchronous operation runs (default 50 ms).
    pub fn operation_duration(mut self, d: Duration) -> Self {
        self.cfg.op_duration = d;
        self
    }

    /// The Retry-After sent with 202s, operation polls and 429s (default 1 s; sent as
    /// `Retry-After` in whole seconds and `retry-after-ms`).
    pub fn retry_after(mut self, d: Duration) -> Self {
        self.cfg.retry_after = d;
        self
    }

    /// How long a Key Vault secret's deletion stays "in progress" after Delete Secret
    /// (default none; the real service takes seconds): meanwhile purge and recover answer
    /// 409 `ObjectIsBeingDeleted` and Get Deleted Secret 404.
    pub fn keyvault_delete_latency(mut self, d: Duration) -> Self {
        self.cfg.vault_delete_latency = d;
        self
    }

    /// Shifts the clock the `Date` header of every response reports (default none): a
    /// server whose clock differs from the client's by `offset` (negative: behind).
    pub fn clock_offset(mut self, offset: chrono::TimeDelta) -> Self {
        self.cfg.clock_offset = offset;
        self
    }

    /// How long issued tokens live (default 1 h).
    pub fn token_lifetime(mut self, d: Duration) -> Self {
        self.cfg.token_lifetime = d;
        self
    }

    /// The subscription id (default a fixed GUID).
    pub fn subscription(mut self, s: &str) -> Self {
        self.cfg.subscription = s.to_owned();
        self
    }

    /// The service principal the token endpoint accepts.
    pub fn service_principal(mut self, tenant: &str, client_id: &str, secret: &str) -> Self {
        self.cfg.tenant = tenant.to_owned();
        self.cfg.client_id = client_id.to_owned();
        self.cfg.client_secret = secret.to_owned();
        self
    }

    /// A federated assertion the token endpoint accepts for the client id.
    pub fn federated_assertion(mut self, assertion: &str) -> Self {
        self.cfg.assertion = Some(assertion.to_owned());
        self
    }

    /// Whether ARM requests need a valid bearer token (default true).
    pub fn require_auth(mut self, yes: bool) -> Self {
        self.cfg.require_auth = yes;
        self
    }

    /// Public IP addresses to hand out, in order (they must exist on this machine).
    pub fn public_ips(mut self, ips: impl IntoIterator<Item = IpAddr>) -> Self {
        self.cfg.ips = ips.into_iter().collect();
        self
    }

    /// The VM backend hook.
    pub fn backend(mut self, b: Arc<dyn VmBackend>) -> Self {
        self.cfg.backend = Some(b);
        self
    }

    /// What the subscription offers (sizes, quotas, images, providers).
    pub fn catalog(mut self, c: Catalog) -> Self {
        self.catalog = c;
        self
    }

    /// Binds 127.0.0.1 on a free port and serves until the [`Emulator`] is dropped.
    ///
    /// # Errors
    /// The port could not be bound.
    pub async fn start(self) -> std::io::Result<Emulator> {
        server::start(self.cfg, self.catalog).await
    }
}

/// Shared state of a running emulator.
pub(crate) struct Emu {
    pub(crate) cfg: Config,
    pub(crate) base: String,
    pub(crate) world: Mutex<World>,
    pub(crate) catalog: Mutex<Catalog>,
    pub(crate) faults: Faults,
    pub(crate) log: RequestLog,
    /// Response delay in microseconds (changeable while running).
    pub(crate) latency_us: std::sync::atomic::AtomicU64,
    pub(crate) vaults: Mutex<keyvault::store::Vaults>,
    pub(crate) vault_denied: std::sync::atomic::AtomicBool,
}

impl Emu {
    pub(crate) fn world(&self) -> std::sync::MutexGuard<'_, World> {
        let mut w = self
            .world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let effects = w.tick(Instant::now());
        if !effects.is_empty()
            && let Some(b) = self.cfg.backend.clone()
        {
            for e in effects {
                let world::Effect::Deleted(name) = e;
                let b = b.clone();
                tokio::spawn(async move {
                    if let Err(e) = b.delete(&name).await {
                        tracing::warn!(vm = %name, error = %e, "VM backend delete failed");
                    }
                });
            }
        }
        w
    }

    pub(crate) fn vaults(&self) -> std::sync::MutexGuard<'_, keyvault::store::Vaults> {
        self.vaults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn vault_denied(&self) -> bool {
        self.vault_denied.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn catalog(&self) -> std::sync::MutexGuard<'_, Catalog> {
        self.catalog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running emulator. Dropping it stops the server.
pub struct Emulator {
    pub(crate) emu: Arc<Emu>,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("url", &self.emu.base)
            .finish()
    }
}

/// What the emulator knows about one VM.
#[allow(missing_docs)]
#[derive(Debug, Clone)]
pub struct VmState {
    /// ARM's `vmId`; a VM deleted and created again gets a new one.
    pub vm_id: String,
    pub provisioning_state: String,
    /// `starting`, `running`, `stopped`, `deallocated`, ...: the `PowerState/` value.
    pub power_state: String,
    /// Custom data as the VM received it, base64-decoded.
    pub custom_data: Secret<Vec<u8>>,
    /// Public IP, via its NIC.
    pub public_ip: Option<IpAddr>,
    /// Its NIC's private IP (its first IP configuration's `privateIPAddress`).
    pub private_ip: Option<IpAddr>,
    pub size: String,
    /// How often Azure restarted it to apply a size change while it ran.
    pub restarts: u32,
}

impl Emulator {
    /// A builder with the defaults.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder {
            cfg: Config {
                subscription: "00000000-0000-4000-8000-000000000001".into(),
                tenant: "00000000-0000-4000-8000-0000000000aa".into(),
                client_id: "00000000-0000-4000-8000-0000000000c1".into(),
                client_secret: "emulator-client-secret".into(),
                assertion: None,
                latency: Duration::ZERO,
                page_size: 1000,
                op_duration: Duration::from_millis(50),
                retry_after: Duration::from_secs(1),
                token_lifetime: Duration::from_secs(3600),
                require_auth: true,
                ips: (0..=255u8)
                    .flat_map(|a| (1..=254u8).map(move |b| IpAddr::V4(Ipv4Addr::new(127, 1, a, b))))
                    .collect(),
                backend: None,
                clock_offset: chrono::TimeDelta::zero(),
                vault_delete_latency: Duration::ZERO,
            },
            catalog: Catalog::default(),
        }
    }

    /// The base URL (`http://127.0.0.1:<port>`): ARM endpoint and authority host.
    pub fn url(&self) -> String {
        self.emu.base.clone()
    }

    /// The one subscription it serves; any other gets `SubscriptionNotFound`.
    pub fn subscription_id(&self) -> String {
        self.emu.cfg.subscription.clone()
    }

    /// The one tenant its token endpoint knows; any other gets `AADSTS90002`.
    pub fn tenant_id(&self) -> String {
        self.emu.cfg.tenant.clone()
    }

    /// The service principal's client id.
    pub fn client_id(&self) -> String {
        self.emu.cfg.client_id.clone()
    }

    /// The service principal's secret.
    pub fn client_secret(&self) -> Secret<String> {
        Secret::new(self.emu.cfg.client_secret.clone())
    }

    /// Changes the delay before every response while running.
    pub fn set_latency(&self, d: Duration) {
        self.emu.latency_us.store(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Every request received, in order, for tests to count and inspect.
    pub fn log(&self) -> &RequestLog {
        &self.emu.log
    }

    /// Failures to inject into the requests that follow.
    pub fn faults(&self) -> &Faults {
        &self.emu.faults
    }

    /// Changes the catalog (e.g. a quota or a zone restriction) while running.
    pub fn update_catalog(&self, f: impl FnOnce(&mut Catalog)) {
        f(&mut self.emu.catalog());
    }

    /// The base URL of Key Vault `vault` here (what `https://{vault}.vault.azure.net` is on
    /// Azure): `{url}/vaults/{vault}`.
    pub fn keyvault_url(&self, vault: &str) -> String {
        format!("{}/vaults/{vault}", self.emu.base)
    }

    /// Makes every caller lack (or have again) the Key Vault data-plane role: requests with
    /// a valid token get 403 `Forbidden` with the inner code `ForbiddenByRbac`.
    pub fn deny_keyvault_data(&self, deny: bool) {
        self.emu
            .vault_denied
            .store(deny, std::sync::atomic::Ordering::SeqCst);
    }

    /// The names of the live secrets of `vault`, sorted (lowercase).
    pub fn keyvault_secrets(&self, vault: &str) -> Vec<String> {
        self.emu
            .vaults()
            .vault(vault)
            .live
            .keys()
            .cloned()
            .collect()
    }

    /// The names of the soft-deleted (not yet purged) secrets of `vault`, sorted (lowercase).
    pub fn keyvault_deleted_secrets(&self, vault: &str) -> Vec<String> {
        self.emu
            .vaults()
            .vault(vault)
            .deleted
            .keys()
            .cloned()
            .collect()
    }

    /// Issues a token directly (as the token endpoint would).
    pub fn issue_token(&self) -> Secret<String> {
        Secret::new(server::issue_token(&self.emu))
    }

    /// Every token issued so far (for leak checks).
    pub fn issued_tokens(&self) -> Vec<Secret<String>> {
        self.emu
            .world()
            .tokens
            .keys()
            .map(|t| Secret::new(t.clone()))
            .collect()
    }

    /// Makes every issued token expired (ARM then answers 401 `ExpiredAuthenticationToken`).
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for t in self.emu.world().tokens.values_mut() {
            *t = now;
        }
    }

    /// A VM's state, if it exists.
    pub fn vm(&self, name: &str) -> Option<VmState> {
        let w = self.emu.world();
        let r = w.find(reply::types::VM, name)?;
        let vm = r.vm.as_ref()?;
        let nic = r
            .body
            .pointer("/properties/networkProfile/networkInterfaces/0/id")
            .and_then(Value::as_str)
            .unwrap_or("");
        Some(VmState {
            vm_id: vm.vm_id.clone(),
            provisioning_state: r.state.clone(),
            power_state: vm.power.clone(),
            custom_data: Secret::new(vm.custom_data.clone()),
            public_ip: w.nic_public_ip(nic).1,
            private_ip: w
                .get(nic)
                .and_then(|n| {
                    n.body
                        .pointer("/properties/ipConfigurations/0/properties/privateIPAddress")
                })
                .and_then(Value::as_str)
                .and_then(|a| a.parse().ok()),
            size: r
                .body
                .pointer("/properties/hardwareProfile/vmSize")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            restarts: vm.restarts,
        })
    }

    /// Gives public IP resource `name` another address, as Azure does when an address is
    /// released and another allocated (a dynamic IP after deallocation, an IP resource
    /// recreated); `false` when no such resource exists. Reads see the new address at once.
    pub fn reassign_public_ip(&self, name: &str, ip: IpAddr) -> bool {
        let mut w = self.emu.world();
        let Some(r) = w.res.values_mut().find(|r| {
            r.rtype.eq_ignore_ascii_case(reply::types::PUBLIC_IP)
                && r.name.eq_ignore_ascii_case(name)
        }) else {
            return false;
        };
        r.body["properties"]["ipAddress"] = Value::String(ip.to_string());
        true
    }

    /// Names of the resources of `rtype` (`Microsoft.Compute/virtualMachines`).
    pub fn resource_names(&self, rtype: &str) -> Vec<String> {
        self.emu
            .world()
            .res
            .values()
            .filter(|r| r.rtype.eq_ignore_ascii_case(rtype))
            .map(|r| r.name.clone())
            .collect()
    }

    /// A resource's stored representation.
    pub fn resource(&self, rtype: &str, name: &str) -> Option<Value> {
        let w = self.emu.world();
        let r = w.find(rtype, name)?;
        Some(w.view(r, false, false))
    }

    /// Whether resource group `name` exists.
    pub fn group_exists(&self, name: &str) -> bool {
        self.emu
            .world()
            .groups
            .contains_key(&name.to_ascii_lowercase())
    }

    /// Deletes a resource at once, behind the client's back (a VM takes its OS disk along).
    pub fn delete_resource(&self, rtype: &str, name: &str) -> bool {
        let mut w = self.emu.world();
        let Some(id) = w.find(rtype, name).map(|r| r.id.clone()) else {
            return false;
        };
        w.remove(&id);
        true
    }

    /// Sets a VM's power state at once (`deallocated`, `stopped`, `running`).
    pub fn set_power_state(&self, vm: &str, state: &str) -> bool {
        let mut w = self.emu.world();
        let Some(id) = w.find(reply::types::VM, vm).map(|r| r.id.clone()) else {
            return false;
        };
        if let Some(v) = w.get_mut(&id).and_then(|r| r.vm.as_mut()) {
            v.power = state.to_owned();
        }
        true
    }

    /// Creates a resource group directly (e.g. someone else's, for conflict tests).
    pub fn create_group(&self, name: &str, location: &str, tags: Value) {
        self.emu.world().groups.insert(
            name.to_ascii_lowercase(),
            world::Group {
                name: name.to_owned(),
                location: location.to_owned(),
                tags,
                deleting: false,
            },
        );
    }

    /// Puts a resource directly into a group (e.g. a leftover disk), Succeeded.
    pub fn insert_resource(&self, group: &str, rtype: &str, name: &str, body: Value) {
        let id = format!(
            "/subscriptions/{}/resourceGroups/{group}/providers/{rtype}/{name}",
            self.emu.cfg.subscription
        );
        let now = world::now_str();
        self.emu.world().res.insert(
            World::key(&id),
            world::Res {
                id,
                rtype: rtype.to_owned(),
                name: name.to_owned(),
                group: group.to_ascii_lowercase(),
                body,
                state: "Succeeded".into(),
                created: now.clone(),
                changed: now,
                vm: None,
            },
        );
    }
}
