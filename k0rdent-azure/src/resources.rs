//! The desired ARM bodies of every resource a deployment owns, and how to tell whether an
//! existing resource already matches them.

use std::collections::BTreeMap;

use base64::Engine as _;
use k0rdent_core::fingerprint::Digest;
use serde_json::{Value, json};

use crate::names::{self, Names, TAG_SPEC, VmNames, has_tags};
use crate::spec::{AzureSpec, Priority, VmSpec};

/// Name of the NSG rule that opens the WireGuard port.
pub const WIREGUARD_RULE: &str = "AllowWireGuard";

/// The immutable digest of an adopted VM: its custom data cannot be compared with ours (ARM
/// never returns custom data), so it never changes and never asks for a replace.
pub const NOT_COMPARABLE: &str = "not-comparable";

fn tags_value(t: &BTreeMap<String, String>) -> Value {
    json!(t)
}

/// A resource's `tags` (none when absent or not a string map).
pub(crate) fn tags_of(v: &Value) -> BTreeMap<String, String> {
    v.get("tags")
        .and_then(|t| serde_json::from_value(t.clone()).ok())
        .unwrap_or_default()
}

/// The string at JSON pointer `ptr`, if there is one.
pub(crate) fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// A resource's `properties.provisioningState`.
pub(crate) fn provisioning(v: &Value) -> Option<&str> {
    str_at(v, "/properties/provisioningState")
}

/// The resource group: location and tags.
pub fn group_body(spec: &AzureSpec, existing_tags: Option<&BTreeMap<String, String>>) -> Value {
    let mut t = names::tags(spec, "network");
    // Keep tags others added (and our `created` stamp) when updating ours.
    if let Some(old) = existing_tags {
        for (k, v) in old {
            t.entry(k.clone()).or_insert_with(|| v.clone());
        }
    } else {
        t.insert("created".into(), chrono::Utc::now().to_rfc3339());
    }
    json!({ "location": spec.location, "tags": t })
}

/// Whether the group carries our tags.
pub fn group_matches(spec: &AzureSpec, tags: &BTreeMap<String, String>) -> bool {
    has_tags(tags, &names::tags(spec, "network"))
}

/// The NSG: only the WireGuard UDP port is opened; SSH is not open to the internet (it runs
/// over the tunnel, which the NSG never sees).
pub fn nsg_body(spec: &AzureSpec) -> Value {
    json!({
        "location": spec.location,
        "tags": tags_value(&names::tags(spec, "network")),
        "properties": {
            "securityRules": [{
                "name": WIREGUARD_RULE,
                "properties": {
                    "priority": 1000,
                    "direction": "Inbound",
                    "access": "Allow",
                    "protocol": "Udp",
                    "sourceAddressPrefix": "*",
                    "sourcePortRange": "*",
                    "destinationAddressPrefix": "*",
                    "destinationPortRange": spec.wireguard_port.to_string(),
                }
            }]
        }
    })
}

/// What is wrong with an existing NSG, if anything.
pub fn nsg_drift(spec: &AzureSpec, nsg: &crate::model::SecurityGroup) -> Option<String> {
    let rules = &nsg.properties.security_rules;
    let wg = rules.iter().find(|r| {
        let p = &r.properties;
        p.allows_internet_inbound()
            && p.protocol.eq_ignore_ascii_case("Udp")
            && p.covers_port(spec.wireguard_port)
    });
    if wg.is_none() {
        return Some(format!(
            "NSG does not allow UDP {} (WireGuard) inbound",
            spec.wireguard_port
        ));
    }
    // An imported deployment's NSG is left as the Bash tool made it (see `nsg_ssh_rule`).
    if let Some(r) = nsg_ssh_rule(nsg).filter(|_| !spec.imported) {
        return Some(format!("NSG rule {r} opens SSH to the internet"));
    }
    if !spec.imported && !has_tags(&nsg.tags, &names::tags(spec, "network")) {
        return Some("NSG tags differ".into());
    }
    None
}

/// The NSG rule that opens TCP 22 to the internet, if any (the Bash tool's `AllowSSH`).
/// Ours never has one; an imported deployment's is reported and left.
pub fn nsg_ssh_rule(nsg: &crate::model::SecurityGroup) -> Option<&str> {
    nsg.properties
        .security_rules
        .iter()
        .find(|r| {
            let p = &r.properties;
            p.allows_internet_inbound()
                && (p.protocol.eq_ignore_ascii_case("Tcp") || p.protocol == "*")
                && p.covers_port(22)
        })
        .map(|r| r.name.as_str())
}

/// The VNet with its one subnet, which carries the NSG.
pub fn vnet_body(spec: &AzureSpec, n: &Names) -> Value {
    json!({
        "location": spec.location,
        "tags": tags_value(&names::tags(spec, "network")),
        "properties": {
            "addressSpace": { "addressPrefixes": [spec.vnet_cidr.to_string()] },
            "subnets": [{
                "name": n.subnet,
                "properties": {
                    "addressPrefix": spec.subnet_cidr.to_string(),
                    "networkSecurityGroup": { "id": n.nsg_id() },
                }
            }]
        }
    })
}

/// What is wrong with an existing VNet, if anything.
pub fn vnet_drift(
    spec: &AzureSpec,
    n: &Names,
    vnet: &crate::model::VirtualNetwork,
) -> Option<String> {
    let space = vnet
        .properties
        .address_space
        .as_ref()
        .map(|a| a.address_prefixes.clone())
        .unwrap_or_default();
    if !space.contains(&spec.vnet_cidr.to_string()) {
        return Some(format!(
            "VNet address space is {space:?}, expected {}",
            spec.vnet_cidr
        ));
    }
    let Some(sub) = vnet
        .properties
        .subnets
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(&n.subnet))
    else {
        return Some(format!("subnet {} is missing", n.subnet));
    };
    if sub.properties.address_prefix.as_deref() != Some(&spec.subnet_cidr.to_string()) {
        return Some(format!(
            "subnet prefix is {}, expected {}",
            sub.properties.address_prefix.as_deref().unwrap_or("none"),
            spec.subnet_cidr
        ));
    }
    let nsg_ok = sub
        .properties
        .network_security_group
        .as_ref()
        .is_some_and(|r| r.id.eq_ignore_ascii_case(&n.nsg_id()));
    if !nsg_ok {
        return Some("the subnet is not associated with the deployment's NSG".into());
    }
    if !spec.imported && !has_tags(&vnet.tags, &names::tags(spec, "network")) {
        return Some("VNet tags differ".into());
    }
    None
}

/// A VM's Standard static public IP.
pub fn public_ip_body(spec: &AzureSpec, vm: &VmSpec) -> Value {
    json!({
        "location": spec.location,
        "tags": tags_value(&names::tags(spec, vm.role.as_str())),
        "sku": { "name": "Standard", "tier": "Regional" },
        "properties": {
            "publicIPAllocationMethod": "Static",
            "publicIPAddressVersion": "IPv4",
        }
    })
}

/// A VM's NIC in the subnet, with its public IP.
pub fn nic_body(spec: &AzureSpec, n: &Names, vm: &VmSpec) -> Value {
    let vn = VmNames::of(vm);
    json!({
        "location": spec.location,
        "tags": tags_value(&names::tags(spec, vm.role.as_str())),
        "properties": {
            "ipConfigurations": [{
                "name": "ipconfig1",
                "properties": {
                    "subnet": { "id": n.subnet_id() },
                    "privateIPAllocationMethod": "Dynamic",
                    "publicIPAddress": { "id": n.resource_id(names::types::PUBLIC_IP, &vn.public_ip) },
                }
            }]
        }
    })
}

/// Whether an existing NIC is wired as desired (subnet and public IP) and tagged (an adopted
/// VM's is accepted untagged).
pub fn nic_matches(spec: &AzureSpec, n: &Names, vm: &VmSpec, nic: &Value) -> bool {
    let vn = VmNames::of(vm);
    let cfg = nic.pointer("/properties/ipConfigurations/0/properties");
    let eq = |ptr: &str, want: &str| {
        cfg.and_then(|c| str_at(c, ptr))
            .is_some_and(|v| v.eq_ignore_ascii_case(want))
    };
    eq("/subnet/id", &n.subnet_id())
        && eq(
            "/publicIPAddress/id",
            &n.resource_id(names::types::PUBLIC_IP, &vn.public_ip),
        )
        && (vm.adopted.is_some() || has_tags(&tags_of(nic), &names::tags(spec, vm.role.as_str())))
}

/// Whether an existing public IP is Standard, static and tagged (an adopted VM's is accepted
/// untagged).
pub fn public_ip_matches(spec: &AzureSpec, vm: &VmSpec, ip: &Value) -> bool {
    str_at(ip, "/sku/name").is_some_and(|s| s.eq_ignore_ascii_case("Standard"))
        && str_at(ip, "/properties/publicIPAllocationMethod")
            .is_some_and(|s| s.eq_ignore_ascii_case("Static"))
        && (vm.adopted.is_some() || has_tags(&tags_of(ip), &names::tags(spec, vm.role.as_str())))
}

/// Digest of the VM properties Azure cannot change in place: custom data, zone, image, admin
/// user and key, priority/eviction, OS disk. Stored as a tag, because ARM never returns the
/// custom data. An adopted VM's is [`NOT_COMPARABLE`].
pub fn vm_immutable_digest(vm: &VmSpec) -> String {
    if vm.adopted.is_some() {
        return NOT_COMPARABLE.to_owned();
    }
    let mut b = Vec::new();
    b.extend_from_slice(
        Digest::of_bytes(vm.custom_data.expose())
            .as_str()
            .as_bytes(),
    );
    let rest = json!({
        "zone": vm.zone,
        "image": vm.image.to_string(),
        "admin_user": vm.admin_user,
        "ssh_public_key": vm.ssh_public_key.trim(),
        "priority": vm.priority.as_str(),
        "eviction": vm.eviction_policy.as_str(),
        "os_disk_type": vm.os_disk_type,
        "os_disk_size_gb": vm.os_disk_size_gb,
    });
    b.extend_from_slice(rest.to_string().as_bytes());
    Digest::of_bytes(&b).to_string()
}

/// The VM's tags (role tags plus the immutable digest).
pub fn vm_tags(spec: &AzureSpec, vm: &VmSpec) -> BTreeMap<String, String> {
    let mut t = names::tags(spec, vm.role.as_str());
    t.insert(TAG_SPEC.into(), vm_immutable_digest(vm));
    t
}

/// The VM. The OS disk is named explicitly and deleted with the VM; the NIC is detached (kept)
/// on delete, so replacing a VM keeps its public IP.
pub fn vm_body(spec: &AzureSpec, n: &Names, vm: &VmSpec) -> Value {
    let vn = VmNames::of(vm);
    let custom = base64::engine::general_purpose::STANDARD.encode(vm.custom_data.expose());
    let mut props = json!({
        "hardwareProfile": { "vmSize": vm.size },
        "storageProfile": {
            "imageReference": {
                "publisher": vm.image.publisher,
                "offer": vm.image.offer,
                "sku": vm.image.sku,
                "version": vm.image.version,
            },
            "osDisk": {
                "name": vn.os_disk,
                "createOption": "FromImage",
                "deleteOption": "Delete",
                "caching": "ReadWrite",
                "diskSizeGB": vm.os_disk_size_gb,
                "managedDisk": { "storageAccountType": vm.os_disk_type },
            }
        },
        "osProfile": {
            "computerName": vm.name,
            "adminUsername": vm.admin_user,
            "customData": custom,
            "linuxConfiguration": {
                "disablePasswordAuthentication": true,
                "ssh": { "publicKeys": [{
                    "path": format!("/home/{}/.ssh/authorized_keys", vm.admin_user),
                    "keyData": vm.ssh_public_key.trim(),
                }]}
            }
        },
        "networkProfile": { "networkInterfaces": [{
            "id": n.resource_id(names::types::NIC, &vn.nic),
            "properties": { "primary": true, "deleteOption": "Detach" },
        }]},
        "diagnosticsProfile": { "bootDiagnostics": { "enabled": true } },
        "priority": vm.priority.as_str(),
    });
    if vm.priority == Priority::Spot {
        props["evictionPolicy"] = json!(vm.eviction_policy.as_str());
        props["billingProfile"] = json!({ "maxPrice": -1 });
    }
    let mut body = json!({
        "location": spec.location,
        "tags": tags_value(&vm_tags(spec, vm)),
        "properties": props,
    });
    if let Some(z) = vm.zone {
        body["zones"] = json!([z.to_string()]);
    }
    body
}

/// What changes in place on an existing VM without a restart (tags, boot diagnostics), as a
/// PATCH body, or `None` when nothing differs. An adopted VM is left as it was created.
pub fn vm_patch(spec: &AzureSpec, vm: &VmSpec, existing: &Value) -> Option<Value> {
    if vm.adopted.is_some() {
        return None;
    }
    let want_tags = vm_tags(spec, vm);
    let tags_ok = has_tags(&tags_of(existing), &want_tags);
    let diag_ok = existing
        .pointer("/properties/diagnosticsProfile/bootDiagnostics/enabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if tags_ok && diag_ok {
        return None;
    }
    let mut tags = tags_of(existing);
    tags.extend(want_tags);
    // The size is not here: a size change restarts the VM and is done on its own, only when
    // confirmed (steps/resize.rs).
    Some(json!({
        "tags": tags,
        "properties": {
            "diagnosticsProfile": { "bootDiagnostics": { "enabled": true } },
        }
    }))
}

/// The immutable digest an existing VM was created with (its tag).
pub fn vm_recorded_digest(existing: &Value) -> Option<String> {
    names::tag(&tags_of(existing), TAG_SPEC).map(str::to_owned)
}

#[cfg(test)]
#[path = "resources_tests.rs"]
mod tests;
