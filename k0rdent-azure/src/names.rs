//! Deterministic names, resource ids and ownership tags.
//!
//! Every name derives from the cluster id (network) or the VM name (per-VM resources), so a
//! rerun after any interruption addresses the same resources, and every resource carries the
//! tags that prove it is ours before we adopt, change or delete it.

use std::collections::BTreeMap;

use crate::spec::{AzureSpec, NodeRole, VmSpec};

/// Tag holding the deployment's cluster id.
pub const TAG_CLUSTER_ID: &str = "cluster-id";
/// Tag naming the tool that created the resource.
pub const TAG_CREATED_BY: &str = "created-by";
/// Tag holding the deployer identity.
pub const TAG_OWNER: &str = "owner";
/// Tag holding the resource's role (`network`, `controller`, `worker`).
pub const TAG_ROLE: &str = "role";
/// Tag on VMs: digest of the properties Azure cannot change in place.
pub const TAG_SPEC: &str = "k0rdent-immutable";
/// Written on everything we create; [`CREATED_BY_ACCEPTED`] lists what we also recognise.
pub const CREATED_BY: &str = "k0rdent-deploy";
/// `created-by` values that also mark a group as ours (the Bash tool's).
pub const CREATED_BY_ACCEPTED: &[&str] = &[CREATED_BY, "k0rdent-azure-setup"];

/// Resource type names as ARM spells them.
#[allow(missing_docs)]
pub mod types {
    pub const VM: &str = "Microsoft.Compute/virtualMachines";
    pub const DISK: &str = "Microsoft.Compute/disks";
    pub const NIC: &str = "Microsoft.Network/networkInterfaces";
    pub const PUBLIC_IP: &str = "Microsoft.Network/publicIPAddresses";
    pub const VNET: &str = "Microsoft.Network/virtualNetworks";
    pub const NSG: &str = "Microsoft.Network/networkSecurityGroups";
}

/// The names and ids of one deployment's resources. The network's derive from the cluster id
/// (`<id>-vnet`, `<id>-subnet`, `<id>-nsg`); the group is [`AzureSpec::resource_group`].
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    subscription: String,
    pub group: String,
    pub vnet: String,
    pub subnet: String,
    pub nsg: String,
}

impl Names {
    /// Names for `spec` in `subscription`.
    pub fn new(subscription: &str, spec: &AzureSpec) -> Self {
        let id = &spec.cluster_id;
        Names {
            subscription: subscription.to_owned(),
            group: spec.resource_group(),
            vnet: format!("{id}-vnet"),
            subnet: format!("{id}-subnet"),
            nsg: format!("{id}-nsg"),
        }
    }

    /// The subscription id every resource id here starts with.
    pub fn subscription(&self) -> &str {
        &self.subscription
    }

    /// The group's id: `/subscriptions/{s}/resourceGroups/{g}`.
    pub fn group_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}",
            self.subscription, self.group
        )
    }

    /// The id of a resource of `rtype` named `name` in the group.
    pub fn resource_id(&self, rtype: &str, name: &str) -> String {
        format!("{}/providers/{rtype}/{name}", self.group_id())
    }

    #[allow(missing_docs)]
    pub fn vnet_id(&self) -> String {
        self.resource_id(types::VNET, &self.vnet)
    }

    /// A child of the VNet: `<vnet id>/subnets/<subnet>`.
    pub fn subnet_id(&self) -> String {
        format!("{}/subnets/{}", self.vnet_id(), self.subnet)
    }

    #[allow(missing_docs)]
    pub fn nsg_id(&self) -> String {
        self.resource_id(types::NSG, &self.nsg)
    }
}

/// The per-VM resource names: `<vm>-pip`, `<vm>-nic`, `<vm>-osdisk` — or, for an adopted VM,
/// the names it was created with ([`VmNames::of`]).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmNames {
    pub vm: String,
    pub public_ip: String,
    pub nic: String,
    pub os_disk: String,
}

impl VmNames {
    /// Names for the VM `vm`.
    pub fn new(vm: &str) -> Self {
        VmNames {
            vm: vm.to_owned(),
            public_ip: format!("{vm}-pip"),
            nic: format!("{vm}-nic"),
            os_disk: format!("{vm}-osdisk"),
        }
    }

    /// The names of `vm`'s resources: those it was created with when it was adopted
    /// ([`VmSpec::adopted`]), else ours.
    pub fn of(vm: &VmSpec) -> Self {
        let mut n = VmNames::new(&vm.name);
        if let Some(a) = &vm.adopted {
            n.public_ip.clone_from(&a.public_ip);
            n.nic.clone_from(&a.nic);
        }
        n
    }
}

/// The tags for a resource of `role` (`network`, `controller`, `worker`).
pub fn tags(spec: &AzureSpec, role: &str) -> BTreeMap<String, String> {
    let mut t = spec.extra_tags.clone();
    t.insert(TAG_CLUSTER_ID.into(), spec.cluster_id.clone());
    t.insert(TAG_CREATED_BY.into(), CREATED_BY.into());
    t.insert(TAG_OWNER.into(), spec.owner.clone());
    t.insert(TAG_ROLE.into(), role.into());
    t
}

/// The role tag of a VM role.
pub fn role_tag(role: NodeRole) -> &'static str {
    role.as_str()
}

/// Whether `tags` mark a resource as this deployment's (cluster id matches, case-insensitive keys).
pub fn is_ours(tags: &BTreeMap<String, String>, cluster_id: &str) -> bool {
    tag(tags, TAG_CLUSTER_ID) == Some(cluster_id)
}

/// A tag value by case-insensitive key (ARM tag names are case-insensitive).
pub fn tag<'a>(tags: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// Whether `tags` carry every pair of `want` (the resource may have more).
pub fn has_tags(tags: &BTreeMap<String, String>, want: &BTreeMap<String, String>) -> bool {
    want.iter().all(|(k, v)| tag(tags, k) == Some(v.as_str()))
}

/// The last segment of a resource id (its name).
pub fn name_of(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}
