use std::net::IpAddr;

use k0rdent_core::Remedy;
use k0rdent_core::state::NodeRecord;

use super::*;
use crate::wireguard::key::PrivateKey;
use crate::wireguard::spec::NodeSpec;

fn spec(nodes: &[(&str, NodeRole)]) -> NodeNetworkSpec {
    NodeNetworkSpec::new(
        "172.24.24.0/24".parse().unwrap(),
        nodes.iter().map(|(n, r)| NodeSpec::new(*n, *r)).collect(),
    )
}

fn state() -> DeploymentState {
    DeploymentState {
        cluster_id: Some("k0rdent-x1y2z3ab".into()),
        ..DeploymentState::default()
    }
}

const FRESH: FreshChoices = FreshChoices { port: 23456 };

fn plan(
    spec: &NodeNetworkSpec,
    state: &DeploymentState,
    keys: &KeyInventory,
    routes: &[LocalRoute],
    vms: &VmPresence,
) -> Result<NetworkPlan, PlanError> {
    plan_network(PlanInputs {
        spec,
        state,
        keys,
        routes,
        vms,
        fresh: FRESH,
    })
}

/// Records the plan as `resolve` + `record` would, with fresh keys for `Generate`.
fn apply(p: &NetworkPlan, state: &mut DeploymentState, keys: &mut KeyInventory) {
    let mut key = |owner: KeyOwner, k: &KeyPlan| match k {
        KeyPlan::Keep(k) => k.clone(),
        KeyPlan::Generate => {
            let pk = PrivateKey::generate().public_key();
            keys.0.insert(owner, pk.clone());
            pk
        }
    };
    let hub = key(KeyOwner::Hub, &p.hub_key);
    let nodes = p
        .nodes
        .iter()
        .map(|n| crate::wireguard::network::ResolvedNode {
            name: n.name.clone(),
            role: n.role,
            address: n.address,
            public_key: key(KeyOwner::Node(n.name.clone()), &n.key),
        })
        .collect();
    crate::wireguard::network::ResolvedNetwork {
        interface: p.interface.clone(),
        network: p.network,
        port: p.port,
        keepalive_secs: p.keepalive_secs,
        hub_address: p.hub_address,
        hub_public_key: hub,
        nodes,
    }
    .record(state);
}

#[test]
fn a_fresh_plan_chooses_everything_once_and_says_so() {
    let s = spec(&[("ctl-1", NodeRole::Controller), ("wrk-1", NodeRole::Worker)]);
    let p = plan(
        &s,
        &state(),
        &KeyInventory::default(),
        &[],
        &VmPresence::Unknown,
    )
    .unwrap();
    assert_eq!(p.interface.as_str(), "wgk0x1y2z3ab");
    assert_eq!(p.port, 23456);
    assert_eq!(p.hub_address.to_string(), "172.24.24.1");
    let addrs: Vec<String> = p.nodes.iter().map(|n| n.address.to_string()).collect();
    assert_eq!(addrs, ["172.24.24.11", "172.24.24.12"]);
    insta::assert_snapshot!(p.describe_changes(), @r"
    record tunnel network 172.24.24.0/24
    choose UDP port 23456
    choose interface name wgk0x1y2z3ab
    allocate 172.24.24.11 to node ctl-1
    allocate 172.24.24.12 to node wrk-1
    generate a key pair for the hub
    generate a key pair for node ctl-1
    record node ctl-1 as controller
    generate a key pair for node wrk-1
    record node wrk-1 as worker
    ");
}

#[test]
fn replanning_a_recorded_network_changes_nothing() {
    let s = spec(&[("ctl-1", NodeRole::Controller), ("wrk-1", NodeRole::Worker)]);
    let mut st = state();
    let mut keys = KeyInventory::default();
    let p = plan(&s, &st, &keys, &[], &VmPresence::Unknown).unwrap();
    apply(&p, &mut st, &mut keys);
    let again = plan_network(PlanInputs {
        spec: &s,
        state: &st,
        keys: &keys,
        routes: &[],
        vms: &VmPresence::Unknown,
        fresh: FreshChoices { port: 31000 },
    })
    .unwrap();
    assert_eq!(again.describe_changes(), "WireGuard plan: nothing to do");
    assert_eq!(
        again.port, 23456,
        "the recorded port wins over a new random draw"
    );
}

#[test]
fn adding_a_controller_never_renumbers_anyone() {
    let mut st = state();
    let mut keys = KeyInventory::default();
    let s1 = spec(&[("ctl-1", NodeRole::Controller), ("wrk-1", NodeRole::Worker)]);
    let p1 = plan(&s1, &st, &keys, &[], &VmPresence::Unknown).unwrap();
    apply(&p1, &mut st, &mut keys);
    // A second controller is listed first (controllers first), yet gets the next free address.
    let s2 = spec(&[
        ("ctl-1", NodeRole::Controller),
        ("ctl-2", NodeRole::Controller),
        ("wrk-1", NodeRole::Worker),
    ]);
    let p2 = plan(&s2, &st, &keys, &[], &VmPresence::Unknown).unwrap();
    let addr = |p: &NetworkPlan, n: &str| p.nodes.iter().find(|x| x.name == n).unwrap().address;
    assert_eq!(addr(&p2, "ctl-1"), addr(&p1, "ctl-1"));
    assert_eq!(addr(&p2, "wrk-1"), addr(&p1, "wrk-1"));
    assert_eq!(addr(&p2, "ctl-2").to_string(), "172.24.24.13");
    insta::assert_snapshot!(p2.describe_changes(), @r"
    allocate 172.24.24.13 to node ctl-2
    generate a key pair for node ctl-2
    record node ctl-2 as controller
    ");
}

#[test]
fn a_removed_nodes_address_is_not_reused() {
    let mut st = state();
    let mut keys = KeyInventory::default();
    let s1 = spec(&[("a", NodeRole::Worker), ("b", NodeRole::Worker)]);
    let p1 = plan(&s1, &st, &keys, &[], &VmPresence::Unknown).unwrap();
    apply(&p1, &mut st, &mut keys);
    let s2 = spec(&[("b", NodeRole::Worker), ("c", NodeRole::Worker)]);
    let p2 = plan(&s2, &st, &keys, &[], &VmPresence::Unknown).unwrap();
    assert_eq!(p2.nodes[1].address.to_string(), "172.24.24.13");
}

#[test]
fn changing_network_port_or_interface_after_the_fact_is_refused_with_a_remedy() {
    let mut st = state();
    let mut keys = KeyInventory::default();
    let s = spec(&[("a", NodeRole::Worker)]);
    let p = plan(&s, &st, &keys, &[], &VmPresence::Unknown).unwrap();
    apply(&p, &mut st, &mut keys);

    let mut other = s.clone();
    other.network = "172.24.25.0/24".parse().unwrap();
    let e = plan(&other, &st, &keys, &[], &VmPresence::Unknown).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the tunnel network is 172.24.24.0/24 in the recorded state but 172.24.25.0/24 in the configuration"
    );
    assert!(e.remedy().unwrap().contains("172.24.24.0/24"));

    let mut other = s.clone();
    other.port = Some(51820);
    let e = plan(&other, &st, &keys, &[], &VmPresence::Unknown).unwrap_err();
    assert!(matches!(
        e,
        PlanError::PortChanged {
            recorded: 23456,
            requested: 51820
        }
    ));

    let mut other = s.clone();
    other.interface = Some("wg-other".parse().unwrap());
    let e = plan(&other, &st, &keys, &[], &VmPresence::Unknown).unwrap_err();
    assert!(matches!(e, PlanError::InterfaceChanged { .. }), "{e}");
}

#[test]
fn overlaps_with_vnet_k0s_ranges_and_local_routes_are_refused() {
    let s = spec(&[("a", NodeRole::Worker)]);
    let mut vnet = s.clone();
    vnet.vnet = vec!["172.24.0.0/16".parse().unwrap()];
    let e = plan(
        &vnet,
        &state(),
        &KeyInventory::default(),
        &[],
        &VmPresence::Unknown,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the tunnel network 172.24.24.0/24 overlaps the VNet 172.24.0.0/16"
    );

    let mut pods = s.clone();
    pods.network = "10.244.5.0/24".parse().unwrap();
    let e = plan(
        &pods,
        &state(),
        &KeyInventory::default(),
        &[],
        &VmPresence::Unknown,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("10.244.0.0/16 (k0s pod/service network)"),
        "{e}"
    );
    let mut svc = s.clone();
    svc.network = "10.100.0.0/24".parse().unwrap();
    assert!(
        plan(
            &svc,
            &state(),
            &KeyInventory::default(),
            &[],
            &VmPresence::Unknown
        )
        .is_err()
    );

    let routes = crate::os::parse_routes(
        "default via 192.0.2.1 dev eth0\n172.24.24.0/25 dev docker0 proto kernel\n",
    );
    let e = plan(
        &s,
        &state(),
        &KeyInventory::default(),
        &routes,
        &VmPresence::Unknown,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the tunnel network 172.24.24.0/24 overlaps the local route 172.24.24.0/25 dev docker0"
    );
    // The default route and the deployment's own interface do not count.
    let own = crate::os::parse_routes(
        "default via 192.0.2.1 dev eth0\n172.24.24.0/24 dev wgk0x1y2z3ab proto kernel\n",
    );
    assert!(
        plan(
            &s,
            &state(),
            &KeyInventory::default(),
            &own,
            &VmPresence::Unknown
        )
        .is_ok()
    );
}

#[test]
fn a_network_too_small_is_reported() {
    let mut s = spec(&[("a", NodeRole::Worker), ("b", NodeRole::Worker)]);
    s.network = "172.24.24.0/30".parse().unwrap();
    let e = plan(
        &s,
        &state(),
        &KeyInventory::default(),
        &[],
        &VmPresence::Unknown,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            PlanError::NetworkTooSmall {
                room: 1,
                needed: 2,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn missing_private_keys_block_while_in_use_and_regenerate_only_when_unused() {
    let mut st = state();
    let mut keys = KeyInventory::default();
    let s = spec(&[("a", NodeRole::Worker), ("b", NodeRole::Worker)]);
    let p = plan(&s, &st, &keys, &[], &VmPresence::Unknown).unwrap();
    apply(&p, &mut st, &mut keys);
    keys.0.remove(&KeyOwner::Node("b".into()));

    let e = plan(&s, &st, &keys, &[], &VmPresence::Unknown).unwrap_err();
    assert!(matches!(e, PlanError::KeyMissing { .. }), "{e}");
    let in_use = VmPresence::Known(["a".to_owned(), "b".to_owned()].into());
    let e = plan(&s, &st, &keys, &[], &in_use).unwrap_err();
    assert!(e.to_string().contains("the VM of node b"), "{e}");

    // No VM for b yet: its unused key may be replaced, and the plan says so.
    let only_a = VmPresence::Known(["a".to_owned()].into());
    let p = plan(&s, &st, &keys, &[], &only_a).unwrap();
    assert!(matches!(p.nodes[1].key, KeyPlan::Generate));
    assert!(
        p.describe_changes()
            .starts_with("generate a key pair for node b (replacing unused key")
    );

    // The hub key is used by every VM.
    keys.0.remove(&KeyOwner::Hub);
    let e = plan(&s, &st, &keys, &[], &only_a).unwrap_err();
    assert!(
        matches!(
            e,
            PlanError::KeyMissing {
                owner: KeyOwner::Hub,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn a_key_on_disk_that_differs_from_the_record_is_refused() {
    let mut st = state();
    let mut keys = KeyInventory::default();
    let s = spec(&[("a", NodeRole::Worker)]);
    let p = plan(&s, &st, &keys, &[], &VmPresence::Unknown).unwrap();
    apply(&p, &mut st, &mut keys);
    keys.0.insert(
        KeyOwner::Node("a".into()),
        PrivateKey::generate().public_key(),
    );
    let e = plan(&s, &st, &keys, &[], &VmPresence::Unknown).unwrap_err();
    assert!(matches!(e, PlanError::KeyMismatch { .. }), "{e}");
}

#[test]
fn a_key_written_before_a_crash_is_recorded_not_regenerated() {
    let s = spec(&[("a", NodeRole::Worker)]);
    let k = PrivateKey::generate().public_key();
    let keys = KeyInventory([(KeyOwner::Node("a".into()), k.clone())].into());
    let p = plan(&s, &state(), &keys, &[], &VmPresence::Unknown).unwrap();
    assert_eq!(p.nodes[0].key, KeyPlan::Keep(k.clone()));
    assert!(p.changes.contains(&NetworkChange::RecordPublicKey {
        owner: KeyOwner::Node("a".into()),
        key: k
    }));
}

#[test]
fn inconsistent_records_are_reported_not_repaired() {
    let s = spec(&[("a", NodeRole::Worker), ("b", NodeRole::Worker)]);
    let mut st = state();
    for n in ["a", "b"] {
        st.nodes.insert(
            n.into(),
            NodeRecord {
                tunnel_ip: Some(IpAddr::from([172, 24, 24, 11])),
                ..NodeRecord::default()
            },
        );
    }
    let e = plan(&s, &st, &KeyInventory::default(), &[], &VmPresence::Unknown).unwrap_err();
    assert!(
        e.to_string().contains("share tunnel address 172.24.24.11"),
        "{e}"
    );
    st.nodes.clear();
    st.settings.insert(settings::PORT.into(), "x".into());
    let e = plan(&s, &st, &KeyInventory::default(), &[], &VmPresence::Unknown).unwrap_err();
    assert!(matches!(e, PlanError::Inconsistent(_)), "{e}");
    let mut no_id = state();
    no_id.cluster_id = None;
    let e = plan(
        &s,
        &no_id,
        &KeyInventory::default(),
        &[],
        &VmPresence::Unknown,
    )
    .unwrap_err();
    assert_eq!(e, PlanError::NoClusterId);
}

#[test]
fn the_recorded_network_reads_back_from_state() {
    let mut st = state();
    let mut keys = KeyInventory::default();
    let s = spec(&[("ctl-1", NodeRole::Controller), ("wrk-1", NodeRole::Worker)]);
    let p = plan(&s, &st, &keys, &[], &VmPresence::Unknown).unwrap();
    apply(&p, &mut st, &mut keys);
    let back = crate::wireguard::network::ResolvedNetwork::from_state(&st).unwrap();
    assert_eq!(back.port, 23456);
    assert_eq!(back.nodes.len(), 2);
    assert_eq!(back.node("ctl-1").unwrap().role, NodeRole::Controller);
    assert_eq!(back.hub_address.to_string(), "172.24.24.1");
    let e = crate::wireguard::network::ResolvedNetwork::from_state(&state()).unwrap_err();
    assert!(e.to_string().contains("not set up yet"), "{e}");
}
