//! What the emulated subscription offers: VM sizes, quotas, images and providers — the data the
//! preflight calls read.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

/// One VM size, as `Resource Skus - List` reports it and the usage list counts it.
#[allow(missing_docs)]
#[derive(Debug, Clone)]
pub struct SkuDef {
    pub name: String,
    /// The usage name its cores count against, besides `cores` (`standardDSv5Family`).
    pub family: String,
    /// Counted against `cores` and `family`, or only `lowPriorityCores` for a Spot VM.
    pub vcpus: i64,
    /// `x64` or `Arm64`.
    pub arch: String,
    /// Zones offered in [`Catalog::location`].
    pub zones: Vec<u8>,
    /// Zones restricted for this subscription.
    pub restricted_zones: Vec<u8>,
    /// Restricted in the whole location.
    pub restricted: bool,
    /// Whether it can run as Spot (`LowPriorityCapable`).
    pub low_priority_capable: bool,
    /// Whether it takes Premium SSD disks (`PremiumIO`).
    pub premium_io: bool,
    /// Hyper-V generations it boots (`HyperVGenerations`: `V1`, `V2`).
    pub hyper_v_generations: Vec<String>,
}

/// One marketplace image; a VM may ask for `latest` or any of its `versions`.
#[allow(missing_docs)]
#[derive(Debug, Clone)]
pub struct ImageDef {
    pub publisher: String,
    pub offer: String,
    pub sku: String,
    /// Versions, oldest first.
    pub versions: Vec<String>,
    /// `x64` or `Arm64`.
    pub arch: String,
    /// The Hyper-V generation it needs (`V1` or `V2`).
    pub hyper_v_generation: String,
}

/// The emulated subscription's offer.
#[allow(missing_docs)]
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The one location with capacity.
    pub location: String,
    pub skus: Vec<SkuDef>,
    /// Quota limits by usage name (`cores`, `lowPriorityCores`, family names).
    pub limits: BTreeMap<String, i64>,
    pub images: Vec<ImageDef>,
    /// Providers that are not registered.
    pub unregistered: BTreeSet<String>,
}

/// A size; `caps` is what Resource SKUs says of it: `spot` (LowPriorityCapable), `premium`
/// (PremiumIO), and the Hyper-V generations it boots.
fn sku(name: &str, family: &str, vcpus: i64, arch: &str, caps: (bool, bool, &[&str])) -> SkuDef {
    let (spot, premium, gens) = caps;
    SkuDef {
        name: name.into(),
        family: family.into(),
        vcpus,
        arch: arch.into(),
        zones: vec![1, 2, 3],
        restricted_zones: Vec::new(),
        restricted: false,
        low_priority_capable: spot,
        premium_io: premium,
        hyper_v_generations: gens.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn image(p: &str, o: &str, s: &str, arch: &str, generation: &str) -> ImageDef {
    ImageDef {
        publisher: p.into(),
        offer: o.into(),
        sku: s.into(),
        versions: vec!["0.20250101.1".into(), "0.20250601.2".into()],
        arch: arch.into(),
        hyper_v_generation: generation.into(),
    }
}

impl Default for Catalog {
    fn default() -> Self {
        // As Azure describes these sizes: B-series cannot be Spot; sizes without an `s` take
        // no Premium SSD; A-series v2 boots generation 1 only; Arm64 sizes generation 2 only.
        const BOTH: &[&str] = &["V1", "V2"];
        let skus = vec![
            sku(
                "Standard_B2s",
                "standardBSFamily",
                2,
                "x64",
                (false, true, BOTH),
            ),
            sku(
                "Standard_D2s_v5",
                "standardDSv5Family",
                2,
                "x64",
                (true, true, BOTH),
            ),
            sku(
                "Standard_D4s_v5",
                "standardDSv5Family",
                4,
                "x64",
                (true, true, BOTH),
            ),
            sku(
                "Standard_D8s_v5",
                "standardDSv5Family",
                8,
                "x64",
                (true, true, BOTH),
            ),
            sku(
                "Standard_D2_v5",
                "standardDv5Family",
                2,
                "x64",
                (true, false, BOTH),
            ),
            sku(
                "Standard_A2_v2",
                "standardAv2Family",
                2,
                "x64",
                (true, false, &["V1"]),
            ),
            sku(
                "Standard_D2pls_v6",
                "standardDplsv6Family",
                2,
                "Arm64",
                (true, true, &["V2"]),
            ),
            sku(
                "Standard_D4pls_v6",
                "standardDplsv6Family",
                4,
                "Arm64",
                (true, true, &["V2"]),
            ),
        ];
        let mut limits = BTreeMap::new();
        limits.insert("cores".into(), 1000);
        limits.insert("lowPriorityCores".into(), 1000);
        for s in &skus {
            limits.insert(s.family.clone(), 1000);
        }
        Catalog {
            location: "westeurope".into(),
            skus,
            limits,
            images: vec![
                image("Debian", "debian-12", "12-gen2", "x64", "V2"),
                image("Debian", "debian-12", "12", "x64", "V1"),
                image("Debian", "debian-12", "12-arm64", "Arm64", "V2"),
                image("Canonical", "ubuntu-24_04-lts", "server", "x64", "V2"),
            ],
            unregistered: BTreeSet::new(),
        }
    }
}

impl Catalog {
    /// The size named `name` (case-insensitive).
    pub fn sku(&self, name: &str) -> Option<&SkuDef> {
        self.skus.iter().find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// The image, if offered.
    pub fn image(&self, publisher: &str, offer: &str, sku: &str) -> Option<&ImageDef> {
        self.images.iter().find(|i| {
            i.publisher.eq_ignore_ascii_case(publisher)
                && i.offer.eq_ignore_ascii_case(offer)
                && i.sku.eq_ignore_ascii_case(sku)
        })
    }

    pub(crate) fn sku_json(&self, s: &SkuDef) -> Value {
        let mut restrictions = Vec::new();
        if s.restricted {
            restrictions.push(json!({
                "type": "Location",
                "values": [self.location],
                "restrictionInfo": { "locations": [self.location] },
                "reasonCode": "NotAvailableForSubscription",
            }));
        }
        if !s.restricted_zones.is_empty() {
            let zones: Vec<String> = s.restricted_zones.iter().map(u8::to_string).collect();
            restrictions.push(json!({
                "type": "Zone",
                "values": [self.location],
                "restrictionInfo": { "locations": [self.location], "zones": zones },
                "reasonCode": "NotAvailableForSubscription",
            }));
        }
        let zones: Vec<String> = s.zones.iter().map(u8::to_string).collect();
        json!({
            "resourceType": "virtualMachines",
            "name": s.name,
            "tier": "Standard",
            "size": s.name.trim_start_matches("Standard_"),
            "family": s.family,
            "locations": [self.location],
            "locationInfo": [{ "location": self.location, "zones": zones, "zoneDetails": [] }],
            "capabilities": [
                { "name": "vCPUs", "value": s.vcpus.to_string() },
                { "name": "MemoryGB", "value": (s.vcpus * 4).to_string() },
                { "name": "CpuArchitectureType", "value": s.arch },
                { "name": "HyperVGenerations", "value": s.hyper_v_generations.join(",") },
                { "name": "LowPriorityCapable", "value": if s.low_priority_capable { "True" } else { "False" } },
                { "name": "PremiumIO", "value": if s.premium_io { "True" } else { "False" } },
            ],
            "restrictions": restrictions,
        })
    }
}
