//! Gates: `azure_preflight` (before the first write) and `vms_running` (for later phases).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k0rdent_core::Remedy;
use k0rdent_core::gate::{Gate, GateContext, GateVerdict};
use tokio::sync::Mutex;

use crate::api;
use crate::client::ArmClient;
use crate::model::{InstanceView, VirtualMachine};
use crate::names::{Names, types};
use crate::preflight;
use crate::spec::AzureSpec;

/// Runs the preflight checks; a verdict is reused for a while, so the many VM steps that
/// carry this gate cost one set of requests.
pub struct PreflightGate {
    client: ArmClient,
    spec: Arc<AzureSpec>,
    ttl: Duration,
    cache: Mutex<Option<(Instant, GateVerdict)>>,
}

impl PreflightGate {
    pub(crate) fn new(client: ArmClient, spec: Arc<AzureSpec>, ttl: Duration) -> Self {
        PreflightGate {
            client,
            spec,
            ttl,
            cache: Mutex::new(None),
        }
    }
}

#[async_trait]
impl Gate for PreflightGate {
    fn name(&self) -> &str {
        "azure_preflight"
    }

    /// The sizes, images and quota against the subscription: nothing upstream changes them.
    fn preflight(&self) -> bool {
        true
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(180)
    }

    async fn check(&self, _ctx: &GateContext) -> GateVerdict {
        let mut cache = self.cache.lock().await;
        if let Some((at, v)) = cache.as_ref()
            && at.elapsed() < self.ttl
        {
            return v.clone();
        }
        let verdict = match preflight::run(&self.client, &self.spec).await {
            Ok(r) if r.passed() => GateVerdict::pass(format!("{} checks passed", r.checks.len())),
            Ok(r) => {
                let f = r.failures();
                let reason = f
                    .iter()
                    .map(|c| c.detail.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                let remedy = f
                    .iter()
                    .filter_map(|c| c.remedy.as_deref())
                    .collect::<Vec<_>>()
                    .join("; ");
                GateVerdict::fail_with(reason, remedy)
            }
            Err(e) => {
                // Not cached: the checks could not be made.
                return GateVerdict::fail_with(
                    format!("preflight checks could not run: {e}"),
                    e.remedy().unwrap_or_else(|| "run again".into()),
                );
            }
        };
        *cache = Some((Instant::now(), verdict.clone()));
        verdict
    }
}

/// Passes when every VM of the deployment reports `PowerState/running` (one status-only list).
pub struct VmsRunningGate {
    client: ArmClient,
    spec: Arc<AzureSpec>,
    names: Names,
}

impl VmsRunningGate {
    pub(crate) fn new(client: ArmClient, spec: Arc<AzureSpec>) -> Self {
        let names = Names::new(client.subscription_id(), &spec);
        VmsRunningGate {
            client,
            spec,
            names,
        }
    }
}

#[async_trait]
impl Gate for VmsRunningGate {
    fn name(&self) -> &str {
        "vms_running"
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(60)
    }

    async fn check(&self, _ctx: &GateContext) -> GateVerdict {
        let path = format!(
            "/subscriptions/{}/providers/{}",
            self.client.subscription_id(),
            types::VM
        );
        let list = match self
            .client
            .list::<VirtualMachine>(&path, api::COMPUTE, &[("statusOnly", "true")])
            .await
        {
            Ok(l) => l,
            Err(e) => {
                return GateVerdict::fail_with(
                    format!("could not read VM power states: {e}"),
                    e.remedy().unwrap_or_else(|| "run again".into()),
                );
            }
        };
        let prefix = format!("{}/", self.names.group_id().to_ascii_lowercase());
        let mut bad = Vec::new();
        for vm in &self.spec.vms {
            let found = list.iter().find(|v| {
                v.name.eq_ignore_ascii_case(&vm.name)
                    && v.id.to_ascii_lowercase().starts_with(&prefix)
            });
            match found.map(|v| {
                v.properties
                    .instance_view
                    .as_ref()
                    .and_then(InstanceView::power_state)
            }) {
                None => bad.push(format!("{} does not exist", vm.name)),
                Some(None) => bad.push(format!("{} reports no power state", vm.name)),
                Some(Some(p)) if p != "running" => bad.push(format!("{} is {p}", vm.name)),
                Some(Some(_)) => {}
            }
        }
        if bad.is_empty() {
            GateVerdict::pass(format!("{} VMs running", self.spec.vms.len()))
        } else {
            GateVerdict::fail_with(
                format!("VMs not running: {}", bad.join(", ")),
                "run `k0rdent deploy` (it starts stopped VMs and re-creates missing ones)",
            )
        }
    }
}
