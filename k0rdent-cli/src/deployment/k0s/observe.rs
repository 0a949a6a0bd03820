//! `install_k0s` as observed: k0s on every node (over SSH) and the cluster (through the
//! kubeconfig). Unknown — and so blocked — whenever a node or the API cannot be asked; never
//! "absent" because the tunnel is down.

use k0rdent_core::state::StepRecord;
use k0rdent_core::{Evidence, Observation, Snapshot};

use std::collections::BTreeMap;

use super::hosts::{HostsError, VmChange, kubelet_nodes};
use crate::cluster::observer::{CLUSTER_OBSERVER, ClusterFacts};
use crate::deployment::nodes::{K0sStatus, NODES_OBSERVER, NodeFact, NodesFacts};
use crate::k0s::K0sctlInput;

/// Evidence key of the k0s block digest the cluster was installed with.
pub const K0S_CONFIG: &str = "k0s_config";

/// Interprets the snapshot for `install_k0s`.
pub fn observe(
    snapshot: &Snapshot,
    record: Option<&StepRecord>,
    input: &Result<K0sctlInput, HostsError>,
    digest: &str,
    changed: &BTreeMap<String, VmChange>,
) -> Observation {
    let input = match input {
        Ok(i) => i,
        Err(e) => return Observation::absent(e.to_string()),
    };
    let unseen = |o: Observation| crate::deployment::unseen::not_yet_seen(record, o);
    let nodes = match snapshot.require::<NodesFacts>(NODES_OBSERVER) {
        Ok(n) => n,
        Err(o) => return unseen(o),
    };
    let cluster = match snapshot.require::<ClusterFacts>(CLUSTER_OBSERVER) {
        Ok(c) => c,
        Err(o) => return unseen(o),
    };
    if nodes.nodes.is_empty() && !cluster.kubeconfig {
        return Observation::absent(
            "k0s is not installed (the tunnel to the nodes is not set up yet)",
        );
    }
    let mut partial = Vec::new();
    let mut running = 0;
    for h in &input.hosts {
        let change = changed.get(&h.name).copied();
        if change == Some(VmChange::Replaced) {
            partial.push(format!(
                "{} is a new VM, not the one k0s was installed on: k0s is not on it",
                h.name
            ));
            continue;
        }
        match nodes.nodes.get(&h.name) {
            None => return Observation::unknown(format!("node {} was not observed", h.name)),
            Some(NodeFact::Unreachable(why)) if change == Some(VmChange::JustStarted) => {
                partial.push(format!(
                    "{} was just started and does not answer yet ({why}); the gates wait for \
                     it, then k0sctl checks it",
                    h.name
                ));
            }
            Some(NodeFact::Unreachable(why)) => {
                return unseen(Observation::unknown(format!("node {}: {why}", h.name)));
            }
            Some(NodeFact::Seen { k0s, .. }) => match k0s {
                K0sStatus::Running { role, .. } if role != h.role.as_str() => {
                    return Observation::unknown(format!(
                        "node {} runs k0s as {role}, but its recorded role is {}: k0sctl \
                         refuses a role change",
                        h.name, h.role
                    ));
                }
                K0sStatus::Running { .. } => running += 1,
                K0sStatus::Stopped { services } if !services.is_empty() => partial.push(format!(
                    "k0s is installed on {} ({}) but not running (an apply stopped between \
                     install and start); it is started before k0sctl runs",
                    h.name,
                    services.join(", ")
                )),
                K0sStatus::Stopped { .. } | K0sStatus::NotInstalled => {
                    partial.push(format!("k0s is not installed on {}", h.name));
                }
                K0sStatus::Unrecognized { output } => {
                    return Observation::unknown(format!(
                        "node {}: unreadable `k0s status`: {output}",
                        h.name
                    ));
                }
            },
        }
    }
    if !cluster.kubeconfig {
        return if running == 0 {
            Observation::absent("k0s is not installed (no kubeconfig in the state directory)")
        } else {
            Observation::partial(
                "k0s runs but the kubeconfig was never written (an install stopped after k0sctl)",
                Evidence::new().with("k0s_running", format!("{running}/{}", input.hosts.len())),
            )
        };
    }
    let Some(server) = &cluster.answered_by else {
        return unseen(Observation::unknown(format!(
            "the cluster API does not answer: {}",
            cluster
                .api_error
                .as_deref()
                .unwrap_or("no controller answered")
        )));
    };
    for name in kubelet_nodes(input) {
        match cluster.nodes.iter().find(|n| n.name == name) {
            None => partial.push(format!("{name} is not a Kubernetes node")),
            Some(n) if !n.ready => partial.push(format!("Kubernetes node {name} is not Ready")),
            Some(_) => {}
        }
    }
    let expected = kubelet_nodes(input).len();
    let evidence = Evidence::new()
        .with("api", format!("https://{server}:6443"))
        .with(
            "nodes_ready",
            format!(
                "{}/{expected}",
                cluster.nodes.iter().filter(|n| n.ready).count()
            ),
        )
        .with("k0s_version", &input.k0s_version)
        .with(K0S_CONFIG, digest);
    // A changed k0s block is the fingerprint's business (a disruptive input): it plans a
    // rerun that needs confirmation. Here only what is observed counts.
    if partial.is_empty() {
        Observation::done(evidence)
    } else {
        Observation::partial(partial.join("; "), evidence)
    }
}

/// What `observe` saw, with the nodes that leave the cluster but still run k0s turned into a
/// disruptive change: k0sctl drains and resets them, which needs the same confirmation as a
/// replace. An unknown or absent observation stays as it is.
pub fn with_leaving(seen: Observation, input: Option<&K0sctlInput>) -> Observation {
    let leaving: Vec<&str> = input
        .map(|i| i.leaving().map(|h| h.name.as_str()).collect())
        .unwrap_or_default();
    if leaving.is_empty() {
        return seen;
    }
    let detail = format!(
        "{} no longer in the configuration: k0sctl drains and resets {} with `reset: true`{}",
        leaving.join(", "),
        if leaving.len() == 1 { "it" } else { "them" },
        if input.is_some_and(|i| i.leaving().any(|h| h.role.is_controller())) {
            "; a controller also leaves etcd"
        } else {
            ""
        }
    );
    match seen {
        Observation::Done { evidence } => Observation::disruptive(detail, evidence),
        Observation::Partial {
            detail: also,
            evidence,
            ..
        } => Observation::disruptive(format!("{detail}; {also}"), evidence),
        other => other,
    }
}
