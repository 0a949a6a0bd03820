//! The "VPN up" gate as the install phases use it: waited for (the nodes' WireGuard comes up
//! with first boot) and re-checked every second while the phase's tool runs, so a tunnel that
//! drops stops k0sctl or helm within a few seconds and blocks the run with the diagnosis.

use std::time::Duration;

use async_trait::async_trait;
use k0rdent_core::gate::{Deadline, Gate, GateContext, GateVerdict, WaitBudget};
use k0rdent_core::state::DeploymentState;
use k0rdent_ssh::wireguard::{ProbeOptions, VpnGate};

/// The watched "VPN up" gate.
pub struct WatchedVpnGate(VpnGate);

impl WatchedVpnGate {
    /// Probing TCP 22 through the tunnel with a 1 s limit: a healthy peer answers within
    /// milliseconds, so a second of silence is a verdict, and a drop is caught within about
    /// two seconds of happening.
    pub fn new() -> Self {
        WatchedVpnGate(VpnGate::new(ProbeOptions {
            timeout: Duration::from_secs(1),
            ..ProbeOptions::default()
        }))
    }
}

impl Default for WatchedVpnGate {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Gate for WatchedVpnGate {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn timeout(&self) -> Duration {
        self.0.timeout()
    }
    fn wait(&self, _state: &DeploymentState) -> Option<WaitBudget> {
        Some(WaitBudget {
            deadline: Deadline::After(Duration::from_secs(5 * 60)),
            interval: Duration::from_secs(3),
        })
    }
    fn watch_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }
    async fn check(&self, ctx: &GateContext) -> GateVerdict {
        self.0.check(ctx).await
    }
}
