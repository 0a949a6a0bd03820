//! One configuration per k0sctl rule that must be refused, and ones that must pass.

use super::*;

const VALID: &str = r#"
apiVersion: k0sctl.k0sproject.io/v1beta1
kind: Cluster
metadata:
  name: k0rdent-test
spec:
  hosts:
    - openSSH:
        address: 172.24.24.11
        user: k0rdent
        keyPath: /keys/admin
        configPath: /dev/null
        options:
          StrictHostKeyChecking: true
          UserKnownHostsFile: /keys/known_hosts
      role: controller
      privateAddress: 10.0.1.4
    - ssh:
        address: 172.24.24.12
        user: k0rdent
        keyPath: /keys/admin
      role: worker
  k0s:
    version: v1.33.2+k0s.0
    dynamicConfig: false
    config:
      spec:
        network:
          provider: calico
"#;

/// `VALID` with `from` replaced by `to` (which must occur).
fn with(from: &str, to: &str) -> String {
    assert!(VALID.contains(from), "{from:?} is not in the base config");
    VALID.replacen(from, to, 1)
}

fn refused(text: &str) -> ConfigError {
    match read_cluster(text) {
        Ok(c) => panic!("accepted: {c:?}\n{text}"),
        Err(e) => e,
    }
}

fn invalid(text: &str, needle: &str) {
    match refused(text) {
        ConfigError::Invalid(m) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        other => panic!("expected a validation error with {needle:?}, got {other:?}"),
    }
}

fn undecodable(text: &str, needle: &str) {
    match refused(text) {
        ConfigError::Decode(m) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        other => panic!("expected a decoding error with {needle:?}, got {other:?}"),
    }
}

#[test]
fn a_plain_two_host_config_is_accepted() {
    let c = read_cluster(VALID).unwrap();
    assert_eq!(c.metadata.name, "k0rdent-test");
    assert_eq!(c.spec.hosts.len(), 2);
    assert_eq!(
        c.spec
            .k0s
            .version
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("v1.33.2+k0s.0")
    );
    // k0sctl 0.19+ kind spelling, roles and the single-host form.
    read_cluster(&with("kind: Cluster", "kind: cluster")).unwrap();
    read_cluster(&with("role: worker", "role: controller+worker")).unwrap();
}

#[test]
fn unknown_fields_are_refused_at_every_level() {
    undecodable(
        &with("kind: Cluster", "kind: Cluster\nstatus: {}"),
        "status",
    );
    undecodable(
        &with("  name: k0rdent-test", "  name: x\n  user: admin"),
        "user",
    );
    undecodable(
        &with("spec:\n  hosts:", "spec:\n  options: {}\n  hosts:"),
        "options",
    );
    undecodable(
        &with(
            "      role: worker",
            "      role: worker\n      kubeletRootDir: /k",
        ),
        "kubeletRootDir",
    );
    undecodable(
        &with(
            "        keyPath: /keys/admin\n      role: worker",
            "        keyPath: /keys/admin\n        options: {}\n      role: worker",
        ),
        "options",
    );
    undecodable(
        &with(
            "        configPath: /dev/null",
            "        configFile: /dev/null",
        ),
        "configFile",
    );
    undecodable(
        &with(
            "    dynamicConfig: false",
            "    dynamicConfig: false\n    versions: x",
        ),
        "versions",
    );
}

#[test]
fn repeated_keys_and_wrong_types_are_refused() {
    undecodable(
        &with(
            "      role: worker",
            "      role: worker\n      role: controller",
        ),
        "duplicate",
    );
    undecodable(
        &with("      privateAddress: 10.0.1.4", "      noTaints: \"yes\""),
        "",
    );
    undecodable(
        &with("    dynamicConfig: false", "    dynamicConfig: [false]"),
        "",
    );
    undecodable(&with("    config:\n", "    config: 3\n    x:\n"), "");
}

#[test]
fn the_api_version_and_kind_are_checked() {
    invalid(
        &with(
            "apiVersion: k0sctl.k0sproject.io/v1beta1",
            "apiVersion: k0sctl.k0sproject.io/v1beta2",
        ),
        "must equal k0sctl.k0sproject.io/v1beta1",
    );
    invalid(
        &with("apiVersion: k0sctl.k0sproject.io/v1beta1\n", ""),
        "apiVersion: cannot be blank",
    );
    invalid(
        &with("kind: Cluster", "kind: ClusterConfig"),
        "must equal Cluster",
    );
}

#[test]
fn roles_outside_k0sctls_set_are_refused() {
    invalid(
        &with("role: worker", "role: controller+Worker"),
        "unknown role controller+Worker",
    );
    invalid(&with("role: worker", "role: etcd"), "unknown role etcd");
    invalid(
        &with("role: worker", "role: single"),
        "includes a host with role 'single'",
    );
}

#[test]
fn at_least_one_host_and_one_controller_are_needed() {
    let no_hosts = "apiVersion: k0sctl.k0sproject.io/v1beta1\nkind: Cluster\nspec:\n  hosts: []\n";
    invalid(no_hosts, "hosts: cannot be blank");
    invalid(
        &with("role: controller\n", "role: worker\n"),
        "no hosts with a controller role defined",
    );
}

#[test]
fn two_hosts_with_one_connection_are_refused() {
    let same = with("address: 172.24.24.12", "address: 172.24.24.11");
    // One is openSSH and one ssh: rig names them differently, so k0sctl lets them pass.
    read_cluster(&same).unwrap();
    let both_openssh = same.replacen(
        "    - ssh:\n        address: 172.24.24.11\n        user: k0rdent\n        keyPath: /keys/admin\n",
        "    - openSSH:\n        address: 172.24.24.11\n        user: k0rdent\n",
        1,
    );
    invalid(
        &both_openssh,
        "[OpenSSH] k0rdent@172.24.24.11: is not unique",
    );
    // rig's default port makes 22 and an absent port the same connection.
    let both_ssh = "apiVersion: k0sctl.k0sproject.io/v1beta1\nkind: Cluster\nspec:\n  hosts:\n    - ssh:\n        address: 10.0.0.1\n      role: controller\n    - ssh:\n        address: 10.0.0.1\n        port: 22\n      role: worker\n";
    invalid(both_ssh, "[ssh] 10.0.0.1:22: is not unique");
}

#[test]
fn no_taints_is_only_for_controller_and_worker() {
    invalid(
        &with("      privateAddress: 10.0.1.4", "      noTaints: true"),
        "noTaints can only be true for controller+worker role",
    );
    read_cluster(&with(
        "role: controller\n",
        "role: controller+worker\n      noTaints: true\n",
    ))
    .unwrap();
}

#[test]
fn a_single_host_is_not_checked_field_by_field_as_in_k0sctl() {
    let single = "apiVersion: k0sctl.k0sproject.io/v1beta1\nkind: Cluster\nspec:\n  hosts:\n    - openSSH:\n        address: 10.0.0.1\n      role: controller\n      noTaints: true\n      privateAddress: nope\n";
    read_cluster(single).unwrap();
    invalid(
        &single.replace("role: controller", "role: worker"),
        "no hosts with a controller role",
    );
}

#[test]
fn host_fields_are_checked_when_there_are_several_hosts() {
    invalid(
        &with("privateAddress: 10.0.1.4", "privateAddress: 10.0.1"),
        "privateAddress: must be a valid IP address",
    );
    invalid(
        &with("address: 172.24.24.12", "address: bad_host!"),
        "hostname_rfc1123|ip",
    );
    invalid(
        &with(
            "    - ssh:\n        address: 172.24.24.12\n",
            "    - ssh:\n        port: 22\n",
        ),
        "'required' tag",
    );
    invalid(
        &with(
            "        keyPath: /keys/admin\n      role: worker",
            "        port: 70000\n      role: worker",
        ),
        "Port",
    );
    invalid(
        &with(
            "      role: worker",
            "      role: worker\n      installFlags: [\"--labels='a=b\"]",
        ),
        "unbalanced quotes",
    );
}

#[test]
fn k0s_versions_follow_k0sproject_version() {
    for ok in ["1.33.2+k0s.0", "v1.30.0-rc.1+k0s.0", "v1.33", "\"\""] {
        read_cluster(&with("version: v1.33.2+k0s.0", &format!("version: {ok}"))).unwrap();
    }
    for bad in ["V1.33.2+k0s.0", "v1.33.2_k0s.0", "1.2.3.4", "latest"] {
        undecodable(
            &with("version: v1.33.2+k0s.0", &format!("version: {bad}")),
            "",
        );
    }
    invalid(
        &with("version: v1.33.2+k0s.0", "version: 0.10.5"),
        "minimum supported k0s version",
    );
    invalid(
        &with(
            "version: v1.33.2+k0s.0\n    dynamicConfig: false",
            "version: v1.21.0+k0s.0\n    dynamicConfig: true",
        ),
        "dynamic config only available since",
    );
    invalid(
        &with("    dynamicConfig: false", "    versionChannel: beta"),
        "versionChannel",
    );
}

#[test]
fn exactly_one_document_is_read() {
    assert!(matches!(
        refused(&format!(
            "{VALID}---\napiVersion: k0s.k0sproject.io/v1beta1\nkind: ClusterConfig\n"
        )),
        ConfigError::NoCluster(_)
    ));
    assert!(matches!(refused(""), ConfigError::NoCluster(_)));
    read_cluster(&format!("---\n{VALID}---\n")).unwrap();
}
