//! What the emulated subscription offers: VM sizes, quotas, images and providers — the data the
//! preflight calls read.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

/// One VM size.
#[derive(Debug, Clone)]
pub struct SkuDef {
    /// Size name.
    pub name: String,
    /// Quota family.
    pub family: String,
    /// vCPUs.
    pub vcpus: i64,
    /// `x64` or `Arm64`.
    pub arch: String,
    /// Zones offered.
    pub zones: Vec<u8>,
    /// Zones restricted for this subscription.
    pub restricted_zones: Vec<u8>,
    /// Restricted in the whole location.
    pub restricted: bool,
}

/// One marketplace image.
#[derive(Debug, Clone)]
pub struct ImageDef {
    /// Publisher.
    pub publisher: String,
    /// Offer.
    pub offer: String,
    /// SKU.
    pub sku: String,
    /// Versions, oldest first.
    pub versions: Vec<String>,
    /// `x64` or `Arm64`.
    pub arch: String,
}

/// The emulated subscription's offer.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The one location with capacity.
    pub location: String,
    /// Sizes.
    pub skus: Vec<SkuDef>,
    /// Quota limits by usage name (`cores`, `lowPriorityCores`, family names).
    pub limits: BTreeMap<String, i64>,
    /// Images.
    pub images: Vec<ImageDef>,
    /// Providers that are not registered.
    pub unregistered: BTreeSet<String>,
}

fn sku(name: &str, family: &str, vcpus: i64, arch: &str) -> SkuDef {
    SkuDef {
        name: name.into(),
        family: family.into(),
        vcpus,
        arch: arch.into(),
        zones: vec![1, 2, 3],
        restricted_zones: Vec::new(),
        restricted: false,
    }
}

fn image(p: &str, o: &str, s: &str, arch: &str) -> ImageDef {
    ImageDef {
        publisher: p.into(),
        offer: o.into(),
        sku: s.into(),
        versions: vec!["0.20250101.1".into(), "0.20250601.2".into()],
        arch: arch.into(),
    }
}

impl Default for Catalog {
    fn default() -> Self {
        let skus = vec![
            sku("Standard_B2s", "standardBSFamily", 2, "x64"),
            sku("Standard_D2s_v5", "standardDSv5Family", 2, "x64"),
            sku("Standard_D4s_v5", "standardDSv5Family", 4, "x64"),
            sku("Standard_D8s_v5", "standardDSv5Family", 8, "x64"),
            sku("Standard_D2pls_v6", "standardDplsv6Family", 2, "Arm64"),
            sku("Standard_D4pls_v6", "standardDplsv6Family", 4, "Arm64"),
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
                image("Debian", "debian-12", "12-gen2", "x64"),
                image("Debian", "debian-12", "12-arm64", "Arm64"),
                image("Canonical", "ubuntu-24_04-lts", "server", "x64"),
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
                { "name": "HyperVGenerations", "value": "V2" },
            ],
            "restrictions": restrictions,
        })
    }
}
