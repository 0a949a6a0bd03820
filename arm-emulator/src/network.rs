//! Network resources: public IPs (addresses from the pool), NICs (private addresses from the
//! subnet), VNets and NSGs.

use serde_json::{Value, json};

use super::Emu;
use super::operation::provision;
use super::reply::types;
use super::reply::{Reply, err};
use super::world::{Res, now_str};

pub(crate) fn put(
    emu: &Emu,
    id: &str,
    group: &str,
    rtype: &str,
    name: &str,
    body: &Value,
) -> Reply {
    let loc = emu.location();
    if !body
        .get("location")
        .and_then(Value::as_str)
        .is_some_and(|l| l.eq_ignore_ascii_case(&loc))
    {
        return err(
            400,
            "LocationNotAvailableForResourceType",
            format!(
                "The provided location is not available for resource type '{rtype}'. List of available regions is '{loc}'."
            ),
        );
    }
    let mut w = emu.world();
    let existing = w.get(id).cloned();
    let mut stored = body.clone();
    match rtype {
        types::PUBLIC_IP => {
            let addr = match existing
                .as_ref()
                .and_then(|e| e.body.pointer("/properties/ipAddress"))
                .cloned()
            {
                Some(a) => a,
                None => {
                    let Some(ip) = emu.cfg.ips.get(w.ips_used).copied() else {
                        return err(
                            400,
                            "PublicIPCountLimitReached",
                            "Cannot create more public IP addresses (emulator pool exhausted).",
                        );
                    };
                    w.ips_used += 1;
                    json!(ip.to_string())
                }
            };
            stored["properties"]["ipAddress"] = addr;
            if let Some(cfg) = existing
                .as_ref()
                .and_then(|e| e.body.pointer("/properties/ipConfiguration"))
            {
                stored["properties"]["ipConfiguration"] = cfg.clone();
            }
        }
        types::NIC => {
            let Some(cfg) = stored.pointer_mut("/properties/ipConfigurations/0") else {
                return err(
                    400,
                    "InvalidRequestFormat",
                    "A network interface needs an IP configuration.",
                );
            };
            let subnet = cfg
                .pointer("/properties/subnet/id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let pip = cfg
                .pointer("/properties/publicIPAddress/id")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let subnet_ok = subnet
                .rsplit_once("/subnets/")
                .and_then(|(vnet, sn)| w.get(vnet).map(|v| (v.body.clone(), sn.to_owned())))
                .is_some_and(|(v, sn)| {
                    v.pointer("/properties/subnets")
                        .and_then(Value::as_array)
                        .is_some_and(|a| {
                            a.iter().any(|s| {
                                s.get("name")
                                    .and_then(Value::as_str)
                                    .is_some_and(|n| n.eq_ignore_ascii_case(&sn))
                            })
                        })
                });
            if !subnet_ok {
                return err(
                    400,
                    "InvalidResourceReference",
                    format!("Resource {subnet} referenced by resource {id} was not found."),
                );
            }
            if let Some(p) = &pip
                && w.get(p).is_none()
            {
                return err(
                    400,
                    "InvalidResourceReference",
                    format!("Resource {p} referenced by resource {id} was not found."),
                );
            }
            let private = existing
                .as_ref()
                .and_then(|e| {
                    e.body
                        .pointer("/properties/ipConfigurations/0/properties/privateIPAddress")
                })
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| w.private_ip(&subnet));
            if let Some(cfg) = stored.pointer_mut("/properties/ipConfigurations/0") {
                cfg["properties"]["privateIPAddress"] = json!(private);
                cfg["id"] = json!(format!(
                    "{id}/ipConfigurations/{}",
                    cfg.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("ipconfig1")
                ));
            }
            if let Some(vm) = existing
                .as_ref()
                .and_then(|e| e.body.pointer("/properties/virtualMachine"))
            {
                stored["properties"]["virtualMachine"] = vm.clone();
            }
            // The NIC's configuration replaces its old one: a public IP it no longer names
            // is disassociated (and may then be deleted).
            w.release_public_ips(id);
            if let Some(p) = pip
                && let Some(r) = w.get_mut(&p)
            {
                r.body["properties"]["ipConfiguration"] =
                    json!({ "id": format!("{id}/ipConfigurations/ipconfig1") });
            }
        }
        types::VNET => {
            if let Some(subnets) = stored
                .pointer_mut("/properties/subnets")
                .and_then(Value::as_array_mut)
            {
                for sn in subnets {
                    let n = sn
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    sn["id"] = json!(format!("{id}/subnets/{n}"));
                }
            }
        }
        _ => {
            if let Some(rules) = stored
                .pointer_mut("/properties/securityRules")
                .and_then(Value::as_array_mut)
            {
                for r in rules {
                    let n = r
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    r["id"] = json!(format!("{id}/securityRules/{n}"));
                }
            }
        }
    }
    let created = existing.is_none();
    let now = now_str();
    let res = Res {
        id: id.to_owned(),
        rtype: rtype.to_owned(),
        name: name.to_owned(),
        group: group.to_ascii_lowercase(),
        body: stored,
        state: String::new(),
        created: existing.as_ref().map_or(now.clone(), |e| e.created.clone()),
        changed: now,
        vm: None,
    };
    if !created {
        let view = existing
            .as_ref()
            .map(|e| w.view(e, false, false))
            .unwrap_or_default();
        if let Some(r) =
            emu.async_conflict(&mut w, name, 200, Some(view), "Microsoft.Network", false)
        {
            return r;
        }
    }
    let ending = emu.ending_for(name);
    let (status, v, op) = provision(emu, &mut w, res, created, ending, false);
    drop(w);
    emu.accepted(status, Some(v), "Microsoft.Network", &op, false)
}
