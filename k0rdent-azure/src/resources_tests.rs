//! The adopted-VM and imported-deployment rules of [`super`].
use super::*;
use crate::model::SecurityGroup;
use crate::spec::AdoptedVm;

fn spec(imported: bool) -> AzureSpec {
    let mut s = base_spec();
    s.imported = imported;
    s
}

/// A spec without VMs (the emulator's fixtures depend on this crate, so none from there).
fn base_spec() -> AzureSpec {
    AzureSpec {
        cluster_id: "k0rdent-abcd1234".into(),
        location: "westeurope".into(),
        resource_group: None,
        vnet_cidr: "10.0.0.0/16".parse().unwrap(),
        subnet_cidr: "10.0.1.0/24".parse().unwrap(),
        wireguard_port: 43817,
        owner: "me".into(),
        extra_tags: BTreeMap::new(),
        vms: Vec::new(),
        write_concurrency: 1,
        imported: false,
    }
}

fn vm(adopted: bool) -> VmSpec {
    VmSpec {
        name: "k0s-controller-1".into(),
        role: crate::spec::NodeRole::Controller,
        size: "Standard_B2s".into(),
        zone: Some(1),
        priority: Priority::Regular,
        eviction_policy: crate::spec::EvictionPolicy::Deallocate,
        image: "Debian:debian-12:12-gen2:latest".parse().unwrap(),
        admin_user: "k0rdent".into(),
        ssh_public_key: "ssh-rsa AAAAB3NzaC1yc2E k0rdent-k0rdent-abcd1234".into(),
        custom_data: k0rdent_core::secret::Secret::new(b"#cloud-config\n".to_vec()),
        os_disk_size_gb: 64,
        os_disk_type: "StandardSSD_LRS".into(),
        adopted: adopted.then(|| AdoptedVm::az_cli_defaults("k0s-controller-1")),
    }
}

fn bash_nsg() -> SecurityGroup {
    let rule = |name: &str, prio: u32, proto: &str, port: &str| {
        json!({"name": name, "properties": {"priority": prio, "direction": "Inbound",
            "access": "Allow", "protocol": proto, "sourceAddressPrefix": "*",
            "sourcePortRange": "*", "destinationAddressPrefix": "*",
            "destinationPortRange": port}})
    };
    serde_json::from_value(json!({"name": "k0rdent-abcd1234-nsg", "properties": {
        "provisioningState": "Succeeded",
        "securityRules": [rule("AllowWireGuard", 1000, "Udp", "43817"),
                          rule("AllowSSH", 1010, "Tcp", "22")]}}))
    .unwrap()
}

#[test]
fn the_bash_nsg_is_drift_for_us_and_accepted_when_imported() {
    let nsg = bash_nsg();
    assert_eq!(nsg_ssh_rule(&nsg), Some("AllowSSH"));
    assert!(nsg_drift(&spec(false), &nsg).is_some_and(|d| d.contains("AllowSSH")));
    assert_eq!(nsg_drift(&spec(true), &nsg), None);
}

#[test]
fn an_adopted_vm_keeps_the_az_cli_names_and_is_never_compared_or_patched() {
    let s = spec(true);
    let n = Names::new("sub", &s);
    let ours = VmNames::of(&vm(false));
    assert_eq!(
        (ours.nic.as_str(), ours.public_ip.as_str()),
        ("k0s-controller-1-nic", "k0s-controller-1-pip")
    );
    let theirs = VmNames::of(&vm(true));
    assert_eq!(theirs.nic, "k0s-controller-1VMNic");
    assert_eq!(theirs.public_ip, "k0s-controller-1PublicIP");
    assert_eq!(theirs.os_disk, "k0s-controller-1-osdisk");
    assert_eq!(vm_immutable_digest(&vm(true)), NOT_COMPARABLE);
    assert_ne!(vm_immutable_digest(&vm(false)), NOT_COMPARABLE);
    // The Bash NIC: untagged, wired to its own public IP name.
    let nic = json!({"properties": {"ipConfigurations": [{"properties": {
        "subnet": {"id": n.subnet_id()},
        "publicIPAddress": {"id": n.resource_id(names::types::PUBLIC_IP, "k0s-controller-1PublicIP")}}}]}});
    assert!(nic_matches(&s, &n, &vm(true), &nic));
    assert!(!nic_matches(&s, &n, &vm(false), &nic));
    let ip =
        json!({"sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}});
    assert!(public_ip_matches(&s, &vm(true), &ip));
    assert!(!public_ip_matches(&s, &vm(false), &ip));
    let existing = json!({"properties": {}});
    assert_eq!(vm_patch(&s, &vm(true), &existing), None);
    assert!(vm_patch(&s, &vm(false), &existing).is_some());
}
