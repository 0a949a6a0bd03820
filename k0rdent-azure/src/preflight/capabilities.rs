//! What a size must offer for a VM beyond existing: Spot (`LowPriorityCapable`), Premium SSD
//! (`PremiumIO`) and the image's Hyper-V generation (`HyperVGenerations`) — from the Resource
//! SKUs list, so a deployment stops before its first write instead of at the VM PUT. Each
//! failure names the configuration key and a size that would work.

use crate::model::ResourceSku;
use crate::spec::{Priority, VmSpec};

/// What the image of a VM is, as far as sizes care.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ImageFacts {
    /// `x64` or `Arm64`.
    pub(crate) arch: String,
    /// `V1` or `V2`, when the image says.
    pub(crate) generation: Option<String>,
}

fn yes(sku: &ResourceSku, capability: &str) -> bool {
    sku.capability(capability)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The Hyper-V generations a size boots (`V1` when Azure does not say).
fn generations(sku: &ResourceSku) -> Vec<String> {
    sku.capability("HyperVGenerations")
        .unwrap_or("V1")
        .split(',')
        .map(|g| g.trim().to_ascii_uppercase())
        .filter(|g| !g.is_empty())
        .collect()
}

fn premium(vm: &VmSpec) -> bool {
    vm.os_disk_type.to_ascii_lowercase().starts_with("premium")
}

/// One capability `sku` lacks for `vm` (with `image`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lacks {
    /// Spot, but not `LowPriorityCapable`.
    Spot,
    /// A Premium SSD OS disk, but not `PremiumIO`.
    Premium,
    /// The image's generation is not among `HyperVGenerations`.
    Generation { image: String, size: Vec<String> },
}

/// What `sku` lacks to run `vm` with `image`.
pub(crate) fn lacks(sku: &ResourceSku, vm: &VmSpec, image: Option<&ImageFacts>) -> Vec<Lacks> {
    let mut out = Vec::new();
    if vm.priority == Priority::Spot && !yes(sku, "LowPriorityCapable") {
        out.push(Lacks::Spot);
    }
    if premium(vm) && !yes(sku, "PremiumIO") {
        out.push(Lacks::Premium);
    }
    if let Some(generation) = image.and_then(|i| i.generation.as_deref()) {
        let size = generations(sku);
        if !size.iter().any(|g| g.eq_ignore_ascii_case(generation)) {
            out.push(Lacks::Generation {
                image: generation.to_ascii_uppercase(),
                size,
            });
        }
    }
    out
}

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Whether `sku` can be used for `vm` in `loc` at all: offered there (and in its zone),
/// not restricted for this subscription, of the image's architecture.
fn usable(sku: &ResourceSku, vm: &VmSpec, loc: &str, image: Option<&ImageFacts>) -> bool {
    if !eq(&sku.resource_type, "virtualMachines") || !sku.locations.iter().any(|l| eq(l, loc)) {
        return false;
    }
    for r in &sku.restrictions {
        if eq(&r.rtype, "Location") && r.values.iter().any(|v| eq(v, loc)) {
            return false;
        }
        if eq(&r.rtype, "Zone")
            && let (Some(z), Some(info)) = (vm.zone, &r.restriction_info)
            && info.zones.iter().any(|x| x == &z.to_string())
        {
            return false;
        }
    }
    if let Some(z) = vm.zone
        && !sku
            .location_info
            .iter()
            .filter(|i| eq(&i.location, loc))
            .any(|i| i.zones.iter().any(|x| x == &z.to_string()))
    {
        return false;
    }
    let arch = sku.capability("CpuArchitectureType").unwrap_or("x64");
    image.is_none_or(|i| eq(arch, &i.arch))
}

fn vcpus(sku: &ResourceSku) -> i64 {
    sku.capability("vCPUs")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A size that would run `vm` where `current` cannot: usable here and lacking nothing,
/// closest in vCPUs (the same count first, then larger, then smaller).
pub(crate) fn suggest<'a>(
    skus: &'a [ResourceSku],
    vm: &VmSpec,
    loc: &str,
    image: Option<&ImageFacts>,
    current: &ResourceSku,
) -> Option<&'a str> {
    let want = vcpus(current);
    skus.iter()
        .filter(|s| !eq(&s.name, &current.name))
        .filter(|s| usable(s, vm, loc, image) && lacks(s, vm, image).is_empty())
        .min_by_key(|s| {
            let n = vcpus(s);
            (n < want, (n - want).abs(), s.name.to_ascii_lowercase())
        })
        .map(|s| s.name.as_str())
}

/// One line for a lack: what the key asks for and what the size cannot do.
pub(crate) fn describe(l: &Lacks, vm: &VmSpec, size: &str) -> (String, String) {
    let role = vm.role.as_str();
    match l {
        Lacks::Spot => (
            "azure.vm_priority".into(),
            format!(
                "VM {}: azure.vm_priority is Spot, but size {size} cannot run as Spot (LowPriorityCapable is not True)",
                vm.name
            ),
        ),
        Lacks::Premium => (
            "os disk type".into(),
            format!(
                "VM {}: its OS disk is {}, but size {size} takes no Premium SSD (PremiumIO is not True)",
                vm.name, vm.os_disk_type
            ),
        ),
        Lacks::Generation { image, size: gens } => (
            "azure.vm_image".into(),
            format!(
                "VM {}: image {} is Hyper-V generation {image}, but size {size} boots only {} (HyperVGenerations); change vm_sizing.{role}.size or azure.vm_image",
                vm.name,
                vm.image,
                gens.join(", ")
            ),
        ),
    }
}
