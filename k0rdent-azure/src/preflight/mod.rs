//! Preflight: checks that stop a deployment before its first write, each failure one line with
//! its remedy.
//!
//! - the resource providers (Microsoft.Compute, Microsoft.Network) are registered;
//! - every VM size exists in the location and zone without a restriction for this subscription;
//! - the image exists and its architecture matches the size (arm64 images need arm64 sizes);
//! - the size offers what the VM needs: Spot (`LowPriorityCapable`), Premium SSD
//!   (`PremiumIO`), the image's Hyper-V generation (`HyperVGenerations`); each failure names
//!   the key and a size that would work;
//! - the vCPU quota (per family and regional, or low-priority for Spot) covers the VMs that do
//!   not exist yet.
//!
//! A bounded number of requests: two providers, one paged SKU list, one usage list, one VM
//! list, and one or two per distinct image.

mod capabilities;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use capabilities::ImageFacts;

use k0rdent_core::remedy::Hint;

use crate::api;
use crate::client::{ArmClient, ArmError};
use crate::model::{ImageVersionRef, Provider, ResourceSku, Usage, VirtualMachine, VmImage};
use crate::names::{Names, types};
use crate::spec::{AzureSpec, ImageRef, Priority};

/// One check's result; [`PreflightReport`]'s `Display` prints it as an `ok` or `FAIL` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflightCheck {
    /// What was checked (`size Standard_D2s_v5`).
    pub name: String,
    /// `false` always comes with a `remedy`.
    pub ok: bool,
    /// One line: what was found.
    pub detail: String,
    /// What to do when it failed.
    pub remedy: Option<String>,
}

/// Every check made: a failed check does not stop the ones after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreflightReport {
    /// Results, in check order.
    pub checks: Vec<PreflightCheck>,
}

impl PreflightReport {
    #[allow(missing_docs)]
    pub fn failures(&self) -> Vec<&PreflightCheck> {
        self.checks.iter().filter(|c| !c.ok).collect()
    }

    /// Whether every check passed; the `azure_preflight` gate passes only then.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    fn pass(&mut self, name: String, detail: String) {
        self.checks.push(PreflightCheck {
            name,
            ok: true,
            detail,
            remedy: None,
        });
    }

    fn fail(&mut self, name: String, detail: String, remedy: String) {
        self.checks.push(PreflightCheck {
            name,
            ok: false,
            detail,
            remedy: Some(remedy),
        });
    }
}

impl fmt::Display for PreflightReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            writeln!(
                f,
                "{} {}: {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            )?;
            if let Some(r) = c.remedy.as_ref().filter(|_| !c.ok) {
                writeln!(f, "     {}", Hint::text(r.as_str()))?;
            }
        }
        Ok(())
    }
}

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

async fn image_facts(
    client: &ArmClient,
    location: &str,
    image: &ImageRef,
) -> Result<Option<ImageFacts>, ArmError> {
    let base = format!(
        "/subscriptions/{}/providers/Microsoft.Compute/locations/{location}/publishers/{}/artifacttypes/vmimage/offers/{}/skus/{}/versions",
        client.subscription_id(),
        image.publisher,
        image.offer,
        image.sku
    );
    let version = if image.version.eq_ignore_ascii_case("latest") {
        let list: Result<Vec<ImageVersionRef>, ArmError> = client
            .get(
                &base,
                api::COMPUTE,
                &[("$orderby", "name desc"), ("$top", "1")],
            )
            .await;
        match list {
            Ok(l) => match l.into_iter().next() {
                Some(v) => v.name,
                None => return Ok(None),
            },
            Err(e) if e.status() == Some(404) => return Ok(None),
            Err(e) => return Err(e),
        }
    } else {
        image.version.clone()
    };
    match client
        .get::<VmImage>(&format!("{base}/{version}"), api::COMPUTE, &[])
        .await
    {
        Ok(img) => Ok(Some(ImageFacts {
            arch: img
                .properties
                .architecture
                .unwrap_or_else(|| "x64".to_owned()),
            generation: img.properties.hyper_v_generation,
        })),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Runs every check.
///
/// # Errors
/// A request failed, so the checks could not be made (not a failed check).
pub async fn run(client: &ArmClient, spec: &AzureSpec) -> Result<PreflightReport, ArmError> {
    let sub = client.subscription_id();
    let loc = crate::identity::normalize_location(&spec.location);
    let names = Names::new(sub, spec);
    let filter = format!("location eq '{loc}'");
    let compute_path = format!("/subscriptions/{sub}/providers/Microsoft.Compute");
    let network_path = format!("/subscriptions/{sub}/providers/Microsoft.Network");
    let skus_path = format!("/subscriptions/{sub}/providers/Microsoft.Compute/skus");
    let usages_path =
        format!("/subscriptions/{sub}/providers/Microsoft.Compute/locations/{loc}/usages");
    let vms_path = format!("{}/providers/{}", names.group_id(), types::VM);
    let sku_query = [("$filter", filter.as_str())];
    let (compute, network, skus, usages, existing) = tokio::join!(
        client.get::<Provider>(&compute_path, api::RESOURCES, &[]),
        client.get::<Provider>(&network_path, api::RESOURCES, &[]),
        client.list::<ResourceSku>(&skus_path, api::SKUS, &sku_query),
        client.list::<Usage>(&usages_path, api::COMPUTE, &[]),
        client.list::<VirtualMachine>(&vms_path, api::COMPUTE, &[]),
    );
    let mut report = PreflightReport::default();
    for p in [compute?, network?] {
        let state = p.registration_state.unwrap_or_default();
        if eq(&state, "Registered") {
            report.pass(format!("provider {}", p.namespace), "registered".into());
        } else {
            report.fail(
                format!("provider {}", p.namespace),
                format!(
                    "resource provider {} is {state} in subscription {sub}",
                    p.namespace
                ),
                format!("az provider register --namespace {}", p.namespace),
            );
        }
    }
    let skus = skus?;
    let usages = usages?;
    let existing: BTreeSet<String> = match existing {
        Ok(v) => v.into_iter().map(|v| v.name.to_ascii_lowercase()).collect(),
        Err(e) if e.is_not_found() => BTreeSet::new(),
        Err(e) => return Err(e),
    };

    // Images first: their architecture is compared with each size.
    let mut image_of: BTreeMap<String, Option<ImageFacts>> = BTreeMap::new();
    for vm in &spec.vms {
        let key = vm.image.to_string();
        if let std::collections::btree_map::Entry::Vacant(slot) = image_of.entry(key.clone()) {
            let facts = image_facts(client, &loc, &vm.image).await?;
            match &facts {
                Some(f) => report.pass(
                    format!("image {key}"),
                    format!(
                        "found ({}{})",
                        f.arch,
                        f.generation
                            .as_deref()
                            .map(|g| format!(", generation {g}"))
                            .unwrap_or_default()
                    ),
                ),
                None => report.fail(
                    format!("image {key}"),
                    format!("image {key} does not exist in {loc}"),
                    format!(
                        "check azure.vm_image (`az vm image list -l {loc} -p {} --all -o table`)",
                        vm.image.publisher
                    ),
                ),
            }
            slot.insert(facts);
        }
    }

    // Sizes: existence, restrictions, zones, architecture.
    let mut sku_of: BTreeMap<String, &ResourceSku> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for vm in &spec.vms {
        let size = &vm.size;
        let name = format!("size {size}");
        let Some(sku) = skus.iter().find(|s| {
            eq(&s.resource_type, "virtualMachines")
                && eq(&s.name, size)
                && s.locations.iter().any(|l| eq(l, &loc))
        }) else {
            if seen.insert(name.clone()) {
                report.fail(
                    name,
                    format!("VM size {size} does not exist in {loc}"),
                    format!(
                        "choose a size from `az vm list-skus -l {loc} --resource-type virtualMachines -o table`"
                    ),
                );
            }
            continue;
        };
        sku_of.insert(size.to_ascii_lowercase(), sku);
        let mut ok = true;
        for r in &sku.restrictions {
            let reason = r.reason_code.clone().unwrap_or_else(|| "restricted".into());
            if eq(&r.rtype, "Location") && r.values.iter().any(|v| eq(v, &loc)) {
                if seen.insert(format!("{name}/location")) {
                    report.fail(
                        name.clone(),
                        format!("VM size {size} is not available to this subscription in {loc} ({reason})"),
                        "choose another size or location, or ask Azure support to enable it".into(),
                    );
                }
                ok = false;
            }
            if eq(&r.rtype, "Zone")
                && let (Some(z), Some(info)) = (vm.zone, &r.restriction_info)
                && info.zones.iter().any(|x| x == &z.to_string())
            {
                if seen.insert(format!("{name}/zone{z}")) {
                    report.fail(
                        format!("{name} zone {z}"),
                        format!("VM size {size} is not available to this subscription in zone {z} of {loc} ({reason})"),
                        "choose other zones for this role (cluster.*.zones) or another size".into(),
                    );
                }
                ok = false;
            }
        }
        if let Some(z) = vm.zone {
            let zones: Vec<&String> = sku
                .location_info
                .iter()
                .filter(|i| eq(&i.location, &loc))
                .flat_map(|i| i.zones.iter())
                .collect();
            if !zones.iter().any(|x| **x == z.to_string()) {
                if seen.insert(format!("{name}/offered{z}")) {
                    report.fail(
                        format!("{name} zone {z}"),
                        format!(
                            "VM size {size} is not offered in zone {z} of {loc} (offered: {})",
                            if zones.is_empty() {
                                "no zones".to_owned()
                            } else {
                                zones
                                    .iter()
                                    .map(|s| s.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            }
                        ),
                        "choose zones the size is offered in, or another size".into(),
                    );
                }
                ok = false;
            }
        }
        let image = image_of.get(&vm.image.to_string()).and_then(Option::as_ref);
        let size_arch = sku.capability("CpuArchitectureType").unwrap_or("x64");
        if let Some(img_arch) = image.map(|i| i.arch.as_str())
            && !eq(size_arch, img_arch)
        {
            if seen.insert(format!("{name}/arch/{}", vm.image)) {
                report.fail(
                    format!("{name} with image {}", vm.image),
                    format!(
                        "image {} is {img_arch} but VM size {size} is {size_arch}",
                        vm.image
                    ),
                    if eq(img_arch, "Arm64") {
                        "use an Arm64 size (e.g. Standard_D2pls_v6) or an x64 image".into()
                    } else {
                        "use an x64 size or an Arm64 image".into()
                    },
                );
            }
            ok = false;
        }
        for lack in capabilities::lacks(sku, vm, image) {
            let (key, detail) = capabilities::describe(&lack, vm, size);
            if !seen.insert(format!("{name}/{key}/{}", vm.name)) {
                continue;
            }
            let role = vm.role.as_str();
            let (detail, remedy) = match capabilities::suggest(&skus, vm, &loc, image, sku) {
                Some(other) => (
                    format!("{detail}; {other} would work"),
                    format!("set vm_sizing.{role}.size to {other} (or change {key})"),
                ),
                None => (
                    format!("{detail}; no size offered here would"),
                    format!("change {key}, or the location"),
                ),
            };
            report.fail(format!("{name} for {}", vm.name), detail, remedy);
            ok = false;
        }
        if ok && seen.insert(name.clone()) {
            report.pass(name, format!("available in {loc}"));
        }
    }

    // Quota for the VMs still to be created.
    let usage: BTreeMap<String, &Usage> = usages
        .iter()
        .map(|u| (u.name.value.to_ascii_lowercase(), u))
        .collect();
    let mut need: BTreeMap<String, i64> = BTreeMap::new();
    for vm in spec
        .vms
        .iter()
        .filter(|v| !existing.contains(&v.name.to_ascii_lowercase()))
    {
        let Some(sku) = sku_of.get(&vm.size.to_ascii_lowercase()) else {
            continue;
        };
        let cpus: i64 = sku
            .capability("vCPUs")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        match vm.priority {
            Priority::Spot => *need.entry("lowPriorityCores".into()).or_default() += cpus,
            Priority::Regular => {
                *need.entry("cores".into()).or_default() += cpus;
                if let Some(f) = &sku.family {
                    *need.entry(f.clone()).or_default() += cpus;
                }
            }
        }
    }
    for (quota, n) in need {
        let name = format!("quota {quota}");
        match usage.get(&quota.to_ascii_lowercase()) {
            Some(u) => {
                let free = u.limit - u.current_value;
                if free >= n {
                    report.pass(
                        name,
                        format!("{n} vCPUs needed, {free} of {} free", u.limit),
                    );
                } else {
                    let label = u.name.localized_value.clone().unwrap_or(quota.clone());
                    report.fail(
                        name,
                        format!(
                            "{label} in {loc}: {n} vCPUs needed, only {free} of {} free",
                            u.limit
                        ),
                        format!(
                            "request a quota increase for {quota} in {loc} (`az vm list-usage -l {loc} -o table`), or use fewer or smaller VMs"
                        ),
                    );
                }
            }
            None => report.pass(name, "no quota reported (not checked)".into()),
        }
    }
    Ok(report)
}
