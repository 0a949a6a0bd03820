//! The fake Kubernetes API as the lab's controllers serve it: on port 6443 of the tunnel
//! address of every running VM whose k0s runs as a controller (the stand-in k0s's own state
//! on the node says so: `var/lib/k0s/standin/role` is `controller` and `running` exists), from
//! one [`FakeKube`] kept outside the VMs. The socket lives in the VM's namespace, so the real
//! `kubectl` reaches it only through the tunnel: cutting the tunnel breaks it for real, and a
//! deallocated, deleted or reset controller stops answering.
//!
//! The backend's watcher thread (`lifecycle`) reconciles the listeners a few times a
//! second; the backend stops a VM's listener itself before it powers the VM off or deletes it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;

use k0rdent_standins::kube::{FakeKube, Listener};

use super::guard::{catch, lock};
use crate::lab::cmd;
use crate::lab::netns;
use crate::lab::wireguard::LabNode;

/// The API's port on every controller.
pub const API_PORT: u16 = 6443;

/// The listeners of one fake cluster, by VM name.
pub(super) struct ApiServing {
    kube: FakeKube,
    runtime: tokio::runtime::Handle,
    listeners: Mutex<BTreeMap<String, (Ipv4Addr, Listener)>>,
}

impl std::fmt::Debug for ApiServing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServing")
            .field("serving", &self.serving())
            .finish_non_exhaustive()
    }
}

/// Whether the stand-in k0s on `node` runs as a controller.
fn runs_controller(node: &LabNode) -> bool {
    let state = node.root.join("var-lib-k0s/standin");
    state.join("running").is_file()
        && std::fs::read_to_string(state.join("role")).is_ok_and(|r| r.trim() == "controller")
}

/// The node's tunnel address: the IPv4 address on its `wg0`, if the interface is up.
fn tunnel_address(node: &LabNode) -> Option<Ipv4Addr> {
    let out = cmd::try_run(
        "ip",
        &["-n", &node.netns, "-4", "-o", "addr", "show", "dev", "wg0"],
    )
    .ok()?;
    let words: Vec<&str> = out.split_whitespace().collect();
    let cidr = words.windows(2).find(|w| w[0] == "inet")?[1];
    cidr.split('/').next()?.parse().ok()
}

impl ApiServing {
    /// Serving for `kube`, its listeners spawned on `runtime`.
    pub(super) fn new(kube: FakeKube, runtime: tokio::runtime::Handle) -> ApiServing {
        ApiServing {
            kube,
            runtime,
            listeners: Mutex::new(BTreeMap::new()),
        }
    }

    /// `(VM, tunnel address)` of every controller answering now.
    pub(super) fn serving(&self) -> Vec<(String, Ipv4Addr)> {
        lock(&self.listeners)
            .iter()
            .map(|(n, (a, _))| (n.clone(), *a))
            .collect()
    }

    /// Stops serving on `name` (before it is powered off or deleted).
    pub(super) fn stop(&self, name: &str) {
        remove(&mut lock(&self.listeners), name);
    }

    /// Stops serving everywhere.
    pub(super) fn stop_all(&self) {
        let mut listeners = lock(&self.listeners);
        let names: Vec<String> = listeners.keys().cloned().collect();
        for name in names {
            remove(&mut listeners, &name);
        }
    }

    /// Serves on `name` when it should, stops when it should not.
    pub(super) fn reconcile(&self, name: &str, node: Option<&LabNode>, running: bool) {
        let want = node
            .filter(|n| running && runs_controller(n))
            .and_then(|n| tunnel_address(n).map(|a| (n, a)));
        let mut listeners = lock(&self.listeners);
        match want {
            None => remove(&mut listeners, name),
            Some((_, address)) if listeners.get(name).is_some_and(|(a, _)| *a == address) => {}
            Some((node, address)) => {
                let ns = node.netns.clone();
                let bound = catch(|| {
                    let std = netns::bind_in(&ns, SocketAddr::new(IpAddr::V4(address), API_PORT));
                    let _guard = self.runtime.enter();
                    self.kube.serve_std(std).map_err(|e| e.to_string())
                });
                match bound {
                    Ok(l) => {
                        eprintln!("lab: API served on {name} at {address}:{API_PORT}");
                        listeners.insert(name.to_owned(), (address, l));
                    }
                    // The address went away meanwhile: the next round tries again.
                    Err(e) => eprintln!("lab: serving the API on {name} ({address}): {e}"),
                }
            }
        }
    }

    /// Stops serving on every VM not in `names` (deleted meanwhile).
    pub(super) fn retain(&self, names: &[String]) {
        let mut listeners = lock(&self.listeners);
        let gone: Vec<String> = listeners
            .keys()
            .filter(|n| !names.contains(n))
            .cloned()
            .collect();
        for name in gone {
            remove(&mut listeners, &name);
        }
    }
}

/// Drops `name`'s listener, saying so (the lab's log shows where the API answered when).
fn remove(listeners: &mut BTreeMap<String, (Ipv4Addr, Listener)>, name: &str) {
    if listeners.remove(name).is_some() {
        eprintln!("lab: API stopped on {name}");
    }
}
