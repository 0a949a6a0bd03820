//! The Bash tool's `state/deployment-state.yaml` and `state/deployment-events.yaml` for a
//! [`Scenario`].

use std::fmt::Write as _;

use k0rdent_ssh::wireguard::PrivateKey;

use super::{PHASES, Scenario};

impl Scenario {
    /// The state file: `init_deployment_state`'s heredoc as mikefarah yq leaves it after the
    /// phases' `update_state`, `phase_mark_*`, `assign_wireguard_ips`,
    /// `update_wireguard_peer` and `update_vm_state` edits.
    pub(super) fn state(&self, t0: &str, hub: &PrivateKey, keys: &[PrivateKey]) -> String {
        let id = self.cluster_id;
        let done = |p: usize| self.phases[p] == "completed";
        let last = "2025-11-20T10:41:57Z";
        let phase = PHASES
            .iter()
            .zip(self.phases)
            .rev()
            .find(|(_, s)| *s == "completed")
            .map_or("preparation", |(p, _)| p);
        let status = if self.phases[6] == "completed" {
            "completed"
        } else {
            "in_progress"
        };
        let mut y = format!(
            "# k0rdent Deployment State\n# Auto-generated on {t0}\n\n# Basic deployment info\n\
             deployment_id: \"{id}\"\ndeployer: \"alice@example.com\"\ncreated_at: \"{t0}\"\n\
             last_updated: \"{last}\"\nphase: \"{phase}\"\nstatus: \"{status}\"\n\
             deployment_flags:\n  azure_children: false\n  kof: false\n\n\
             # Source configuration file (for proper variable expansion)\n\
             source_config_file: \"./config/k0rdent.yaml\"\n\n# Configuration snapshot\nconfig:\n\
             \x20 azure_location: \"westeurope\"\n  resource_group: \"{id}-resgrp\"\n\
             \x20 controller_count: {c}\n  worker_count: {w}\n  wireguard_network: \"{base}.0/24\"\n\
             \x20 wireguard_port: \"{port}\"\n\n# Azure resources\n",
            c = self.controllers,
            w = self.workers,
            base = self.network_base,
            port = self.port,
        );
        let created = if done(1) { "created" } else { "not_created" };
        let _ = write!(
            y,
            "azure_rg_status: \"{created}\"\nazure_network_status: \"{created}\"\n\
             azure_ssh_key_status: \"{created}\"\n\n# VM states (will be populated as VMs are created)\nvm_states:\n"
        );
        for (i, (h, _)) in self.hosts().iter().enumerate() {
            let _ = write!(
                y,
                "  {h}:\n    public_ip: \"{}\"\n    private_ip: \"{}\"\n    state: \"Succeeded\"\n    last_checked: \"2025-11-20T10:12:31Z\"\n",
                Self::public_ip(i),
                Self::private_ip(i)
            );
        }
        let _ = write!(
            y,
            "\n# WireGuard setup\nwg_keys_generated: true\nwg_laptop_config_created: {}\n\
             wg_vpn_connected: {}\n\n# Cluster setup\nk0s_config_generated: {k0s}\n\
             k0s_cluster_deployed: {k0s}\nk0rdent_installed: {k0rdent}\n\n\
             # Deployment phase tracking\nphases:\n",
            done(3),
            done(4),
            k0s = done(5),
            k0rdent = done(6),
        );
        for (p, s) in PHASES.iter().zip(self.phases) {
            let _ = writeln!(
                y,
                "  {p}:\n    status: \"{s}\"\n    updated_at: \"2025-11-20T10:20:00Z\""
            );
            if s == "skipped" {
                let _ = writeln!(y, "    skipped_reason: \"Component not enabled\"");
            }
        }
        y.push_str("\n# Artifact registry (generated files/scripts)\nartifacts:\n");
        let _ = write!(
            y,
            "  cloud_init_directory:\n    path: \"./cloud-init-yaml\"\n    updated_at: \"2025-11-20T09:58:40Z\"\n\
             \x20 wireguard_keys_directory:\n    path: \"./wireguard\"\n    updated_at: \"2025-11-20T09:58:40Z\"\n\
             \x20 azure_ssh_private_key:\n    path: \"./azure-resources/{id}-ssh-key\"\n    updated_at: \"2025-11-20T10:00:05Z\"\n\
             \x20 azure_ssh_public_key:\n    path: \"./azure-resources/{id}-ssh-key.pub\"\n    updated_at: \"2025-11-20T10:00:05Z\"\n\
             \x20 wireguard_laptop_config:\n    path: \"./wireguard/wgk0{}.conf\"\n    updated_at: \"2025-11-20T10:14:40Z\"\n",
            self.suffix()
        );
        if self.k0s {
            let _ = write!(
                y,
                "  k0sctl_config:\n    path: \"./k0sctl-config/{id}-k0sctl.yaml\"\n    updated_at: \"2025-11-20T10:16:02Z\"\n"
            );
        }
        y.push_str("wireguard_peers:\n");
        let peer = |y: &mut String, name: &str, ip: &str, role: &str, k: &PrivateKey| {
            let _ = write!(
                y,
                "  {name}:\n    ip: \"{ip}\"\n    role: \"{role}\"\n    private_key: \"{}\"\n    public_key: \"{}\"\n    keys_generated: true\n    keys_generated_at: \"2025-11-20T09:58:39Z\"\n",
                k.to_base64().expose(),
                k.public_key().to_base64()
            );
        };
        peer(
            &mut y,
            "mylaptop",
            &format!("{}.1", self.network_base),
            "hub",
            hub,
        );
        for ((h, ip), k) in self.hosts().iter().zip(keys) {
            let role = if h.contains("controller") {
                "controller"
            } else {
                "worker"
            };
            peer(&mut y, h, ip, role, k);
        }
        if done(3) {
            y.push_str("wg_setup_method: \"cli\"\n");
        }
        if done(6) {
            y.push_str(
                "deployment_start_time: \"2025-11-20T09:58:02Z\"\nk0rdent_ready: true\n\
                 deployment_end_time: \"Thu Nov 20 11:41:57 CET 2025\"\ndeployment_duration_seconds: \"2635\"\n",
            );
        } else {
            y.push_str("deployment_start_time: \"2025-11-20T09:58:02Z\"\n");
        }
        y
    }

    pub(super) fn events(&self, t0: &str) -> String {
        let mut y = format!(
            "# k0rdent Deployment Events Log\n# Auto-generated on {t0}\n\ndeployment_id: \"{}\"\n\
             created_at: \"{t0}\"\nlast_updated: \"2025-11-20T10:41:57Z\"\n\n# Events log\nevents:\n\
             \x20 - timestamp: \"{t0}\"\n    action: deployment_initialized\n    message: Deployment state tracking initialized\n",
            self.cluster_id
        );
        for (p, s) in PHASES.iter().zip(self.phases) {
            if s == "completed" {
                let _ = write!(
                    y,
                    "  - timestamp: \"2025-11-20T10:20:00Z\"\n    action: phase_completed\n    message: \"Phase completed: {p}\"\n    phase: {p}\n"
                );
            }
        }
        y
    }
}
