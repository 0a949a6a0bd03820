//! The preflight endpoints: resource SKUs, usages, providers and marketplace images.

use serde_json::{Value, json};

use super::Emu;
use super::reply::types;
use super::reply::{Query, Reply, check_api, err, page, versions};

pub(crate) fn skus(emu: &Emu, q: &Query) -> Result<Reply, Reply> {
    check_api(q, versions::SKUS)?;
    let c = emu.catalog();
    let wanted = q.get("$filter").and_then(|f| {
        let f = f.trim();
        let rest = f.strip_prefix("location eq ")?;
        Some(rest.trim_matches('\'').to_ascii_lowercase())
    });
    let items: Vec<Value> = if wanted.as_deref().is_some_and(|l| l != c.location) {
        Vec::new()
    } else {
        c.skus.iter().map(|s| c.sku_json(s)).collect()
    };
    Ok(Reply::json(200, json!({ "value": items })))
}

pub(crate) fn usages(emu: &Emu, loc: &str, path: &str, q: &Query) -> Result<Reply, Reply> {
    check_api(q, versions::COMPUTE)?;
    let c = emu.catalog().clone();
    let w = emu.world();
    let mut used: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    for r in w.res.values().filter(|r| r.rtype == types::VM) {
        let size = r
            .body
            .pointer("/properties/hardwareProfile/vmSize")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(s) = c.sku(size) else { continue };
        let spot = r
            .body
            .pointer("/properties/priority")
            .and_then(Value::as_str)
            .is_some_and(|p| p.eq_ignore_ascii_case("Spot"));
        if spot {
            *used.entry("lowPriorityCores".into()).or_default() += s.vcpus;
        } else {
            *used.entry("cores".into()).or_default() += s.vcpus;
            *used.entry(s.family.clone()).or_default() += s.vcpus;
        }
    }
    let items: Vec<Value> = if loc.eq_ignore_ascii_case(&c.location) {
        c.limits
            .iter()
            .map(|(k, limit)| {
                json!({
                    "unit": "Count",
                    "currentValue": used.get(k).copied().unwrap_or(0),
                    "limit": limit,
                    "name": { "value": k, "localizedValue": match k.as_str() {
                        "cores" => "Total Regional vCPUs".to_owned(),
                        "lowPriorityCores" => "Total Regional Low-priority vCPUs".to_owned(),
                        f => format!("{f} vCPUs"),
                    }},
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(page(&emu.base, path, q, items, emu.cfg.page_size))
}

pub(crate) fn provider(emu: &Emu, ns: &str, q: &Query) -> Result<Reply, Reply> {
    check_api(q, versions::RESOURCES)?;
    let c = emu.catalog();
    let registered = !c.unregistered.iter().any(|u| u.eq_ignore_ascii_case(ns));
    Ok(Reply::json(
        200,
        json!({
            "id": format!("/subscriptions/{}/providers/{ns}", emu.cfg.subscription),
            "namespace": ns,
            "registrationState": if registered { "Registered" } else { "NotRegistered" },
            "registrationPolicy": "RegistrationRequired",
            "resourceTypes": [],
        }),
    ))
}

pub(crate) fn images(
    emu: &Emu,
    publisher: &str,
    offer: &str,
    sku: &str,
    version: Option<&str>,
    q: &Query,
) -> Result<Reply, Reply> {
    check_api(q, versions::COMPUTE)?;
    let c = emu.catalog();
    let loc = c.location.clone();
    let Some(img) = c.image(publisher, offer, sku) else {
        return Err(err(
            404,
            "NotFound",
            format!("Artifact: VMImage was not found for {publisher}:{offer}:{sku}."),
        ));
    };
    let id_of = |v: &str| {
        format!(
            "/Subscriptions/{}/Providers/Microsoft.Compute/Locations/{loc}/Publishers/{}/ArtifactTypes/VMImage/Offers/{}/Skus/{}/Versions/{v}",
            emu.cfg.subscription, img.publisher, img.offer, img.sku
        )
    };
    match version {
        None => {
            let mut vs = img.versions.clone();
            if q.get("$orderby")
                .is_some_and(|o| o.to_ascii_lowercase().contains("desc"))
            {
                vs.reverse();
            }
            if let Some(top) = q.get("$top").and_then(|t| t.parse::<usize>().ok()) {
                vs.truncate(top);
            }
            let arr: Vec<Value> = vs
                .iter()
                .map(|v| json!({ "location": loc, "name": v, "id": id_of(v) }))
                .collect();
            Ok(Reply::json(200, Value::Array(arr)))
        }
        Some(v) if img.versions.iter().any(|x| x == v) => Ok(Reply::json(
            200,
            json!({
                "location": loc, "name": v, "id": id_of(v),
                "properties": {
                    "architecture": img.arch,
                    "hyperVGeneration": img.hyper_v_generation,
                    "osDiskImage": { "operatingSystem": "Linux", "sizeInGb": 30 },
                },
            }),
        )),
        Some(v) => Err(err(
            404,
            "NotFound",
            format!("Artifact: VMImage was not found for version {v}."),
        )),
    }
}
