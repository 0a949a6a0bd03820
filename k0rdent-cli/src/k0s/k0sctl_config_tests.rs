//! The generated k0sctl document: the Bash tool's k0s network tree, the two topologies as
//! snapshots, the recorded roles rendered as given, and the refusals.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use k0rdent_core::role::NodeRole;

use super::k0sctl_config::SshOption;
use super::*;

/// `bin/install-k0s.sh` (randybias/k0rdent-azure-setup b7cc815), the `k0s:` block it appends,
/// with its quoting.
const BASH_K0S_BLOCK: &str = r#"
version: v1.33.2+k0s.0
dynamicConfig: false
config:
  spec:
    network:
      nodeLocalLoadBalancing:
        enabled: true
        type: EnvoyProxy
      provider: calico
      calico:
        ipAutodetectionMethod: "can-reach=8.8.8.8"
        envVars:
          FELIX_IGNORELOOSERPF: "true"
"#;

fn ip(last: u8, third: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, third, last))
}

fn input(controllers: u32, workers: u32) -> K0sctlInput {
    let roles = roles_for(controllers, workers);
    let (mut c, mut w) = (0, 0);
    let hosts = roles
        .iter()
        .enumerate()
        .map(|(i, &role)| {
            let name = if role.is_controller() {
                c += 1;
                format!("k0s-controller-{c}")
            } else {
                w += 1;
                format!("k0s-worker-{w}")
            };
            let n = u8::try_from(i).unwrap();
            K0sctlHost {
                name,
                role,
                ssh_address: IpAddr::V4(Ipv4Addr::new(172, 24, 24, 11 + n)),
                private_address: Some(ip(4 + n, 1)),
                user: "k0rdent".into(),
                key_path: "/home/op/.k0rdent/k0rdent-ab12cd34/keys/admin_ed25519".into(),
                no_taints: new_deployment_no_taints(role),
                reset: false,
            }
        })
        .collect();
    K0sctlInput {
        cluster_id: "k0rdent-ab12cd34".into(),
        k0s_version: "v1.33.2+k0s.0".into(),
        known_hosts_path: "/home/op/.k0rdent/k0rdent-ab12cd34/keys/known_hosts".into(),
        hosts,
    }
}

fn tree(input: &K0sctlInput) -> serde_yaml::Value {
    serde_yaml::from_str(&render_k0sctl_yaml(input).unwrap()).unwrap()
}

#[test]
fn the_k0s_block_is_the_bash_tools_tree() {
    let bash: serde_yaml::Value = serde_yaml::from_str(BASH_K0S_BLOCK).unwrap();
    for topology in [(3, 2), (1, 0), (1, 2)] {
        let ours = tree(&input(topology.0, topology.1));
        assert_eq!(ours["spec"]["k0s"], bash, "{topology:?}");
        assert_eq!(
            ours["spec"]["k0s"]["config"]["spec"]["network"],
            bash["config"]["spec"]["network"]
        );
    }
    // The comparison can fail: a boolean where the Bash tool wrote the string "true".
    let mut wrong = bash.clone();
    wrong["config"]["spec"]["network"]["calico"]["envVars"]["FELIX_IGNORELOOSERPF"] =
        serde_yaml::Value::Bool(true);
    assert_ne!(tree(&input(1, 0))["spec"]["k0s"], wrong);
}

#[test]
fn three_controllers_and_two_workers() {
    insta::assert_snapshot!(render_k0sctl_yaml(&input(3, 2)).unwrap());
}

#[test]
fn one_controller_and_no_workers() {
    let yaml = render_k0sctl_yaml(&input(1, 0)).unwrap();
    insta::assert_snapshot!(yaml);
    let t: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(t["spec"]["hosts"][0]["role"], "controller+worker");
    assert_eq!(t["spec"]["hosts"][0]["noTaints"], true);
}

#[test]
fn new_deployments_get_controller_and_worker_roles_unless_there_are_no_workers() {
    use NodeRole::*;
    assert_eq!(
        roles_for(3, 2),
        [Controller, Controller, Controller, Worker, Worker]
    );
    assert_eq!(roles_for(1, 0), [ControllerWorker]);
    assert_eq!(roles_for(3, 0), [ControllerWorker; 3]);
    assert_eq!(roles_for(1, 1), [Controller, Worker]);
    assert!(new_deployment_no_taints(ControllerWorker));
    assert!(!new_deployment_no_taints(Controller));
    assert!(!new_deployment_no_taints(Worker));
}

#[test]
fn recorded_roles_are_rendered_as_given_as_for_an_imported_bash_deployment() {
    // The Bash tool made the first of several controllers `controller` and the others
    // `controller+worker`, without noTaints and without privateAddress.
    let mut i = input(3, 1);
    i.hosts[1].role = NodeRole::ControllerWorker;
    i.hosts[2].role = NodeRole::ControllerWorker;
    for h in &mut i.hosts {
        h.private_address = None;
        h.no_taints = false;
    }
    let t = tree(&i);
    let hosts = t["spec"]["hosts"].as_sequence().unwrap();
    let roles: Vec<&str> = hosts.iter().map(|h| h["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        [
            "controller",
            "controller+worker",
            "controller+worker",
            "worker"
        ]
    );
    for h in hosts {
        let keys: Vec<&str> = h
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert_eq!(keys, ["openSSH", "role"]);
    }
}

#[test]
fn every_host_connects_with_strict_host_key_checking_against_the_pinned_file() {
    let i = input(3, 2);
    let cluster = i.cluster().unwrap();
    for (h, given) in cluster.spec.hosts.iter().zip(&i.hosts) {
        let o = &h.open_ssh;
        assert_eq!(o.address, given.ssh_address);
        assert_eq!(o.config_path, "/dev/null");
        assert_eq!(
            o.key_path,
            "/home/op/.k0rdent/k0rdent-ab12cd34/keys/admin_ed25519"
        );
        // rig only drops its default `StrictHostKeyChecking: false` for this exact spelling.
        assert_eq!(
            o.options.get("StrictHostKeyChecking"),
            Some(&SshOption::Flag(true))
        );
        assert_eq!(
            o.options.get("UserKnownHostsFile"),
            Some(&SshOption::Text(
                "/home/op/.k0rdent/k0rdent-ab12cd34/keys/known_hosts".into()
            ))
        );
    }
}

#[test]
fn a_known_hosts_path_with_spaces_or_percent_signs_reaches_ssh_intact() {
    let mut i = input(1, 0);
    i.known_hosts_path = "/Users/op/Library/Application Support/k0rdent/100%/known_hosts".into();
    let c = i.cluster().unwrap();
    assert_eq!(
        c.spec.hosts[0].open_ssh.options["UserKnownHostsFile"],
        SshOption::Text(
            "\"/Users/op/Library/Application Support/k0rdent/100%%/known_hosts\"".into()
        )
    );
    i.known_hosts_path = "/tmp/a\"b".into();
    assert!(matches!(
        i.cluster(),
        Err(K0sctlConfigError::UnusablePath { .. })
    ));
}

#[test]
fn what_k0sctl_would_refuse_is_refused_here_first() {
    let mut none = input(1, 0);
    none.hosts.clear();
    assert_eq!(none.cluster(), Err(K0sctlConfigError::NoHosts));

    let mut workers_only = input(1, 2);
    workers_only.hosts.remove(0);
    assert_eq!(workers_only.cluster(), Err(K0sctlConfigError::NoController));

    let mut taints = input(1, 1);
    taints.hosts[0].no_taints = true;
    assert!(matches!(
        taints.cluster(),
        Err(K0sctlConfigError::NoTaintsOnRole {
            role: NodeRole::Controller,
            ..
        })
    ));

    let mut dup = input(3, 0);
    dup.hosts[2].ssh_address = dup.hosts[0].ssh_address;
    let e = dup.cluster().unwrap_err();
    assert!(
        e.to_string()
            .contains("k0s-controller-1 and k0s-controller-3"),
        "{e}"
    );

    let mut dollar = input(1, 0);
    dollar.hosts[0].key_path = PathBuf::from("/home/$USER/keys/admin");
    assert!(matches!(
        dollar.cluster(),
        Err(K0sctlConfigError::UnusablePath { .. })
    ));

    let mut relative = input(1, 0);
    relative.hosts[0].key_path = PathBuf::from("keys/admin");
    assert!(matches!(
        relative.cluster(),
        Err(K0sctlConfigError::UnusablePath { .. })
    ));
}

#[test]
fn a_leaving_host_renders_reset_true_and_is_not_staying() {
    let mut i = input(3, 2);
    i.hosts[4].reset = true;
    i.hosts[2].reset = true;
    let t = tree(&i);
    let hosts = t["spec"]["hosts"].as_sequence().unwrap();
    let resets: Vec<bool> = hosts
        .iter()
        .map(|h| h["reset"].as_bool().unwrap_or(false))
        .collect();
    assert_eq!(resets, [false, false, true, false, true]);
    // Only rendered when true, as `noTaints`.
    assert!(!render_k0sctl_yaml(&input(1, 1)).unwrap().contains("reset"));
    let staying: Vec<String> = i.staying().hosts.into_iter().map(|h| h.name).collect();
    assert_eq!(
        staying,
        ["k0s-controller-1", "k0s-controller-2", "k0s-worker-1"]
    );
    let leaving: Vec<&str> = i.leaving().map(|h| h.name.as_str()).collect();
    assert_eq!(leaving, ["k0s-controller-3", "k0s-worker-2"]);
}

#[test]
fn every_controller_leaving_is_refused_as_k0sctl_refuses_it() {
    let mut i = input(1, 1);
    i.hosts[0].reset = true;
    assert_eq!(
        render_k0sctl_yaml(&i).unwrap_err(),
        K0sctlConfigError::AllControllersReset
    );
}
