//! Reading the Bash tool's state file as its yq edits leave it.

use super::*;

fn parse(doc: &str) -> Result<BashState, BashStateError> {
    parse_state(Path::new("state/deployment-state.yaml"), doc.as_bytes())
}

#[test]
fn the_port_is_read_whether_yq_wrote_it_quoted_plain_or_null() {
    for (v, want) in [
        ("\"43817\"", Some(43817)),
        ("43817", Some(43817)),
        ("null", None),
    ] {
        let s = parse(&format!(
            "deployment_id: \"k0rdent-abcd1234\"\nconfig:\n  wireguard_port: {v}\n"
        ))
        .unwrap();
        assert_eq!(s.wireguard_port, want, "{v}");
    }
    let e =
        parse("deployment_id: k0rdent-abcd1234\nconfig:\n  wireguard_port: \"x\"\n").unwrap_err();
    assert!(e.to_string().contains("config.wireguard_port"), "{e}");
}

#[test]
fn our_own_state_and_documents_without_a_deployment_id_are_not_the_bash_tools() {
    assert!(is_bash_state(
        b"deployment_id: k0rdent-abcd1234\nphase: preparation\n"
    ));
    assert!(!is_bash_state(b"schema_version: 1\ngeneration: 3\n"));
    assert!(!is_bash_state(b"deployment_id: x\nschema_version: 1\n"));
    assert!(!is_bash_state(b"{{{"));
    let e = parse("schema_version: 1\ndeployment_id: x\n").unwrap_err();
    assert!(e.to_string().contains("k0rdent's own state"), "{e}");
    let e = parse("phase: preparation\n").unwrap_err();
    assert!(e.to_string().contains("deployment_id is missing"), "{e}");
}

#[test]
fn peers_vms_and_phases_are_read_and_a_private_key_never_reaches_debug_output() {
    let s = parse(
        "deployment_id: \"k0rdent-abcd1234\"\nvm_states:\n  k0s-worker-1:\n    public_ip: \"127.1.0.2\"\n\
         \x20   private_ip: \"10.0.1.5\"\n    state: \"Succeeded\"\nphases:\n  create_vms:\n\
         \x20   status: \"completed\"\nwireguard_peers:\n  mylaptop:\n    ip: \"192.168.100.1\"\n\
         \x20   role: \"hub\"\n    private_key: \"SECRETKEYMATERIAL\"\n    public_key: \"PUB\"\n",
    )
    .unwrap();
    assert_eq!(s.phase("create_vms"), "completed");
    assert_eq!(s.phase("install_k0s"), "pending");
    assert_eq!(
        s.vms["k0s-worker-1"].private_ip.as_deref(),
        Some("10.0.1.5")
    );
    assert_eq!(s.peers["mylaptop"].ip.to_string(), "192.168.100.1");
    assert!(!format!("{s:?}").contains("SECRETKEYMATERIAL"));
}

#[test]
fn k0sctl_roles_are_keyed_by_the_hosts_tunnel_address() {
    let y = "apiVersion: k0sctl.k0sproject.io/v1beta1\nkind: Cluster\nspec:\n  hosts:\n\
             \x20   - ssh:\n        address: 172.24.24.11\n      role: controller\n\
             \x20   - ssh:\n        address: 172.24.24.12\n      role: controller+worker\n";
    let r = parse_k0sctl_roles(Path::new("k.yaml"), y.as_bytes()).unwrap();
    assert_eq!(r[&"172.24.24.11".parse::<IpAddr>().unwrap()], "controller");
    assert_eq!(
        r[&"172.24.24.12".parse::<IpAddr>().unwrap()],
        "controller+worker"
    );
    assert!(parse_k0sctl_roles(Path::new("k.yaml"), b"spec: {}\n").is_err());
}
