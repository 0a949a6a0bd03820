//! List calls: a group's resources (with `$expand`), a group's resources of one type, and the
//! subscription's VMs (`statusOnly=true`), all paged with `nextLink`.

use serde_json::{Value, json};

use super::Emu;
use super::reply::types;
use super::reply::{Query, Reply, check_api, err, group_not_found, page, versions};

pub(crate) fn list_group(emu: &Emu, group: &str, path: &str, q: &Query) -> Result<Reply, Reply> {
    check_api(q, versions::RESOURCES)?;
    let mut expand = Vec::new();
    if let Some(e) = q.get("$expand") {
        for part in e.split(',').map(str::trim) {
            let ok = ["provisioningState", "createdTime", "changedTime"]
                .iter()
                .find(|x| x.eq_ignore_ascii_case(part));
            match ok {
                Some(x) => expand.push(*x),
                None => {
                    return Err(err(
                        400,
                        "InvalidParameter",
                        format!(
                            "The value '{part}' of the $expand query parameter is not supported. Supported values: createdTime, changedTime, provisioningState."
                        ),
                    ));
                }
            }
        }
    }
    let w = emu.world();
    if !w.groups.contains_key(&group.to_ascii_lowercase()) {
        return Err(group_not_found(group));
    }
    let items: Vec<Value> = w
        .res
        .values()
        .filter(|r| r.group == group.to_ascii_lowercase())
        .map(|r| {
            let mut v = json!({
                "id": r.id, "name": r.name, "type": r.rtype,
                "location": r.body.get("location").cloned().unwrap_or(Value::Null),
                "tags": r.body.get("tags").cloned().unwrap_or_else(|| json!({})),
            });
            for k in ["sku", "zones", "managedBy"] {
                if let Some(x) = r.body.get(k).filter(|x| !x.is_null()) {
                    v[k] = x.clone();
                }
            }
            for e in &expand {
                v[*e] = json!(match *e {
                    "provisioningState" => r.state.clone(),
                    "createdTime" => r.created.clone(),
                    _ => r.changed.clone(),
                });
            }
            v
        })
        .collect();
    Ok(page(&emu.base, path, q, items, emu.cfg.page_size))
}

pub(crate) fn expand_instance_view(q: &Query) -> Result<bool, Reply> {
    match q.get("$expand") {
        None => Ok(false),
        Some(e) if e.eq_ignore_ascii_case("instanceView") => {
            if q.get("$filter").is_none() {
                Err(err(
                    400,
                    "InvalidParameter",
                    "The $expand=instanceView option can only be specified together with a valid $filter.",
                ))
            } else {
                Ok(true)
            }
        }
        Some(e) => Err(err(
            400,
            "InvalidParameter",
            format!("The value '{e}' of parameter '$expand' is invalid."),
        )),
    }
}

pub(crate) fn list_type(
    emu: &Emu,
    group: &str,
    rtype: &str,
    path: &str,
    q: &Query,
) -> Result<Reply, Reply> {
    check_api(q, versions::for_type(rtype))?;
    let iv = if rtype == types::VM {
        expand_instance_view(q)?
    } else {
        false
    };
    let w = emu.world();
    if !w.groups.contains_key(&group.to_ascii_lowercase()) {
        return Err(group_not_found(group));
    }
    let items: Vec<Value> = w
        .res
        .values()
        .filter(|r| r.group == group.to_ascii_lowercase() && r.rtype.eq_ignore_ascii_case(rtype))
        .map(|r| w.view(r, iv, emu.faults.power_omitted(&r.name)))
        .collect();
    Ok(page(&emu.base, path, q, items, emu.cfg.page_size))
}

pub(crate) fn list_all_vms(emu: &Emu, path: &str, q: &Query) -> Result<Reply, Reply> {
    check_api(q, versions::COMPUTE)?;
    expand_instance_view(q)?;
    let status_only = q
        .get("statusOnly")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let w = emu.world();
    let items: Vec<Value> = w
        .res
        .values()
        .filter(|r| r.rtype == types::VM)
        .map(|r| {
            if status_only {
                let iv = r.vm.as_ref().map(|vm| {
                    super::world::instance_view_json(r, vm, emu.faults.power_omitted(&r.name))
                });
                json!({
                    "id": r.id, "name": r.name, "type": r.rtype,
                    "location": r.body.get("location").cloned().unwrap_or(Value::Null),
                    "properties": { "instanceView": { "statuses": iv.as_ref().and_then(|v| v.get("statuses").cloned()).unwrap_or_else(|| json!([])) } },
                })
            } else {
                w.view(r, false, false)
            }
        })
        .collect();
    Ok(page(&emu.base, path, q, items, emu.cfg.page_size))
}
