//! The two-way diff between a converged deployment's state file and the world it describes:
//! every VM the state records exists in the emulator and in the lab with the recorded
//! instance, address, tunnel address, WireGuard key and host keys, and every VM of the
//! emulator and the lab is in the state; `known_hosts` pins exactly the nodes' host keys;
//! the hub's peers are the recorded nodes at their public addresses.

use std::collections::BTreeSet;
use std::net::IpAddr;

use k0rdent_ssh::wireguard::ResolvedNetwork;

use super::cmd;
use super::pipeline::PipelineLab;

/// The ARM type of a VM.
const VM: &str = "Microsoft.Compute/virtualMachines";

/// Every disagreement between the state and the emulator, the lab's VMs and the hub (empty
/// when they agree).
pub async fn disagreements(lab: &PipelineLab) -> Vec<String> {
    let cli = &lab.cli;
    let state = cli.state().await;
    let mut out = Vec::new();
    let recorded: BTreeSet<String> = state.nodes.keys().cloned().collect();
    let in_azure: BTreeSet<String> = cli.emu.resource_names(VM).into_iter().collect();
    let in_lab: BTreeSet<String> = lab.backend.names().into_iter().collect();
    if recorded != in_azure {
        out.push(format!("state nodes {recorded:?}, Azure VMs {in_azure:?}"));
    }
    if in_lab != in_azure {
        out.push(format!("lab VMs {in_lab:?}, Azure VMs {in_azure:?}"));
    }
    let known_hosts =
        std::fs::read_to_string(cli.state_dir().join("known_hosts")).unwrap_or_default();
    for (name, rec) in &state.nodes {
        let Some(vm) = cli.emu.vm(name) else {
            continue;
        };
        if rec.vm_id.as_deref() != Some(vm.vm_id.as_str()) {
            out.push(format!(
                "{name}: vmId {:?} in the state, {} in Azure",
                rec.vm_id, vm.vm_id
            ));
        }
        let public = lab.backend.public_ip(name).map(IpAddr::V4);
        if rec.public_ip.as_deref().and_then(|p| p.parse().ok()) != vm.public_ip
            || vm.public_ip != public
        {
            out.push(format!(
                "{name}: public IP {:?} in the state, {:?} in Azure, {public:?} in the lab",
                rec.public_ip, vm.public_ip
            ));
        }
        let node = lab.backend.with_node(name, |n| {
            let wg0 = n
                .run(&["ip", "-o", "-4", "addr", "show", "dev", "wg0"])
                .unwrap_or_default();
            let key = n
                .run(&["wg", "show", "wg0", "public-key"])
                .unwrap_or_default();
            (wg0, key.trim().to_owned(), n.sshd.host_public_keys())
        });
        let Some((wg0, key, host_keys)) = node else {
            out.push(format!("{name}: never booted"));
            continue;
        };
        match rec.tunnel_ip {
            Some(ip) if wg0.contains(&format!("inet {ip}/")) => {}
            other => out.push(format!(
                "{name}: tunnel address {other:?} in the state, wg0: {wg0}"
            )),
        }
        if rec.wireguard_public_key.as_deref() != Some(key.as_str()) {
            out.push(format!(
                "{name}: WireGuard key {:?} in the state, {key} on the node",
                rec.wireguard_public_key
            ));
        }
        let on_node: BTreeSet<String> = host_keys
            .iter()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                Some(format!("{} {}", f.next()?, f.next()?))
            })
            .collect();
        let pinned: BTreeSet<String> = rec
            .ssh_host_keys
            .iter()
            .map(|k| format!("{} {}", k.algorithm, k.key))
            .collect();
        if pinned != on_node {
            out.push(format!(
                "{name}: host keys pinned in the state differ from the node's"
            ));
        }
        let tunnel = rec.tunnel_ip.map(|i| i.to_string()).unwrap_or_default();
        let in_file: BTreeSet<String> = known_hosts
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(tunnel.as_str()))
            .filter_map(|l| {
                let mut f = l.split_whitespace().skip(1);
                Some(format!("{} {}", f.next()?, f.next()?))
            })
            .collect();
        if in_file != on_node {
            out.push(format!(
                "{name}: known_hosts for {tunnel} differs from the node's host keys"
            ));
        }
    }
    // The hub: one peer per recorded node, at its public address.
    if let Ok(net) = ResolvedNetwork::from_state(&state) {
        let dump =
            cmd::try_run("wg", &["show", net.interface.as_str(), "endpoints"]).unwrap_or_default();
        let peers: BTreeSet<String> = dump
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        let want: BTreeSet<String> = state
            .nodes
            .values()
            .filter_map(|r| {
                Some(format!(
                    "{} {}:{}",
                    r.wireguard_public_key.as_deref()?,
                    r.public_ip.as_deref()?,
                    net.port
                ))
            })
            .collect();
        if peers != want {
            out.push(format!("hub peers {peers:?}, state {want:?}"));
        }
    }
    out
}

/// Panics listing the disagreements, if any.
pub async fn assert_agrees(lab: &PipelineLab, label: &str) {
    let d = disagreements(lab).await;
    assert!(
        d.is_empty(),
        "{label}: state and world disagree:\n{}",
        d.join("\n")
    );
    eprintln!("{label}: state, Azure, the VMs, known_hosts and the hub agree");
}
