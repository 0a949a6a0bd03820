//! ARM routing: resource groups, resources, lists, operations and the preflight endpoints.

use serde_json::{Value, json};

use super::Emu;
use super::operation::Job;
use super::reply::types;
use super::reply::{Query, Reply, check_api, err, group_not_found, versions};
use super::world::{Op, OpKind, World, now_str};

/// The resource type a path addresses, for the request log.
pub(crate) fn resource_type(segs: &[&str]) -> Option<String> {
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    if let Some(i) = lower.iter().position(|s| s == "providers")
        && segs.len() > i + 2
    {
        return Some(format!("{}/{}", segs[i + 1], segs[i + 2]));
    }
    if lower.len() >= 4 && lower[2] == "resourcegroups" {
        return Some(if lower.len() == 5 && lower[4] == "resources" {
            "Microsoft.Resources/resources".into()
        } else {
            "Microsoft.Resources/resourceGroups".into()
        });
    }
    None
}

/// The RBAC action a request needs (`Microsoft.Compute/virtualMachines/write`), as Azure
/// names it in `AuthorizationFailed`.
pub(crate) fn action(method: &str, segs: &[&str]) -> String {
    let verb = match method {
        "GET" | "HEAD" => "read",
        "DELETE" => "delete",
        _ => "write",
    };
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    if let Some(i) = lower.iter().position(|s| s == "providers") {
        let rest = &segs[i + 1..];
        match rest {
            [ns, "locations" | "Locations", _, kind, ..] => {
                return format!("{ns}/locations/{kind}/read");
            }
            [ns, t, _, act] if method == "POST" => return format!("{ns}/{t}/{act}/action"),
            [ns, t, ..] => return format!("{ns}/{t}/{verb}"),
            [ns] => return format!("{ns}/register/action"),
            [] => {}
        }
    }
    if lower.get(2).is_some_and(|s| s == "resourcegroups") {
        if lower.get(4).is_some_and(|s| s == "resources") {
            return "Microsoft.Resources/subscriptions/resourceGroups/resources/read".into();
        }
        return format!("Microsoft.Resources/subscriptions/resourceGroups/{verb}");
    }
    format!("Microsoft.Resources/subscriptions/{verb}")
}

/// Canonical type names (ARM answers with these whatever case the request used).
fn canonical_type(ns: &str, t: &str) -> String {
    let want = format!("{ns}/{t}");
    for c in [
        types::VM,
        types::DISK,
        types::NIC,
        types::PUBLIC_IP,
        types::VNET,
        types::NSG,
    ] {
        if c.eq_ignore_ascii_case(&want) {
            return c.to_owned();
        }
    }
    want
}

fn not_found(rtype: &str, name: &str, group: &str) -> Reply {
    err(
        404,
        "ResourceNotFound",
        format!("The Resource '{rtype}/{name}' under resource group '{group}' was not found."),
    )
}

/// Handles one authenticated ARM request.
pub(crate) fn handle(
    emu: &Emu,
    method: &str,
    path: &str,
    q: &Query,
    body: &[u8],
) -> (Reply, Vec<Job>) {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let l: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = l.iter().map(String::as_str).collect();
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return (
                    err(
                        400,
                        "InvalidRequestContent",
                        format!("The request content was invalid: {e}"),
                    ),
                    Vec::new(),
                );
            }
        }
    };
    if l.len() >= 2
        && l[0] == "subscriptions"
        && !segs[1].eq_ignore_ascii_case(&emu.cfg.subscription)
    {
        return (
            err(
                404,
                "SubscriptionNotFound",
                format!("The subscription '{}' could not be found.", segs[1]),
            ),
            Vec::new(),
        );
    }
    let r = |x: Result<Reply, Reply>| x.unwrap_or_else(|e| e);
    match l.as_slice() {
        ["subscriptions", _] => (
            r(check_api(q, versions::SUBSCRIPTIONS).map(|()| {
                Reply::json(
                    200,
                    json!({
                        "id": format!("/subscriptions/{}", emu.cfg.subscription),
                        "subscriptionId": emu.cfg.subscription,
                        "tenantId": emu.cfg.tenant,
                        "displayName": "k0rdent emulator",
                        "state": "Enabled",
                    }),
                )
            })),
            Vec::new(),
        ),
        ["subscriptions", _, "resourcegroups", _] => (
            r(super::groups::group(emu, method, segs[3], q, &body)),
            Vec::new(),
        ),
        ["subscriptions", _, "resourcegroups", _, "resources"] => (
            r(super::lists::list_group(emu, segs[3], path, q)),
            Vec::new(),
        ),
        ["subscriptions", _, "resourcegroups", _, "providers", _, _] => (
            r(super::lists::list_type(
                emu,
                segs[3],
                &canonical_type(segs[5], segs[6]),
                path,
                q,
            )),
            Vec::new(),
        ),
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            _,
            _,
            _,
        ] => {
            let rtype = canonical_type(segs[5], segs[6]);
            match check_api(q, versions::for_type(&rtype)) {
                Err(e) => (e, Vec::new()),
                Ok(()) => resource(emu, method, segs[3], &rtype, segs[7], q, &body),
            }
        }
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            "microsoft.compute",
            "virtualmachines",
            _,
            action,
        ] => match check_api(q, versions::COMPUTE) {
            Err(e) => (e, Vec::new()),
            Ok(()) => super::compute::vm_action(emu, method, segs[3], segs[7], action),
        },
        [
            "subscriptions",
            _,
            "providers",
            "microsoft.compute",
            "virtualmachines",
        ] => (r(super::lists::list_all_vms(emu, path, q)), Vec::new()),
        ["subscriptions", _, "providers", "microsoft.compute", "skus"] => {
            (r(super::preflight_api::skus(emu, q)), Vec::new())
        }
        [
            "subscriptions",
            _,
            "providers",
            "microsoft.compute",
            "locations",
            _,
            "usages",
        ] => (
            r(super::preflight_api::usages(emu, segs[5], path, q)),
            Vec::new(),
        ),
        [
            "subscriptions",
            _,
            "providers",
            _,
            "locations",
            _,
            "operations",
            _,
        ] => (r(op_status(emu, segs[7], q)), Vec::new()),
        [
            "subscriptions",
            _,
            "providers",
            "microsoft.compute",
            "locations",
            _,
            "publishers",
            _,
            "artifacttypes",
            "vmimage",
            "offers",
            _,
            "skus",
            _,
            "versions",
            rest @ ..,
        ] => (
            r(super::preflight_api::images(
                emu,
                segs[7],
                segs[11],
                segs[13],
                rest.first().map(|_| segs[15]),
                q,
            )),
            Vec::new(),
        ),
        ["subscriptions", _, "providers", _] => (
            r(super::preflight_api::provider(emu, segs[3], q)),
            Vec::new(),
        ),
        ["subscriptions", _, "operationresults", _] => (r(op_result(emu, segs[3], q)), Vec::new()),
        _ => (
            err(
                404,
                "InvalidResourceType",
                format!("The resource type could not be found for path '{path}'."),
            ),
            Vec::new(),
        ),
    }
}

/// GET/PUT/PATCH/DELETE of one resource in a group.
fn resource(
    emu: &Emu,
    method: &str,
    group: &str,
    rtype: &str,
    name: &str,
    q: &Query,
    body: &Value,
) -> (Reply, Vec<Job>) {
    let gkey = group.to_ascii_lowercase();
    let id = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/{rtype}/{name}",
        emu.cfg.subscription,
        emu.world()
            .groups
            .get(&gkey)
            .map_or(group.to_owned(), |g| g.name.clone())
    );
    if !emu.world().groups.contains_key(&gkey) {
        return (group_not_found(group), Vec::new());
    }
    match method {
        "GET" => {
            let iv = match q.get("$expand") {
                None => false,
                Some(e) if rtype == types::VM && e.eq_ignore_ascii_case("instanceView") => true,
                Some(e) if rtype == types::VM && e.eq_ignore_ascii_case("userData") => false,
                Some(e) => {
                    return (
                        err(
                            400,
                            "InvalidParameter",
                            format!("The value '{e}' of parameter '$expand' is invalid."),
                        ),
                        Vec::new(),
                    );
                }
            };
            let w = emu.world();
            match w.get(&id) {
                Some(r) => (
                    Reply::json(200, w.view(r, iv, emu.faults.power_omitted(name))),
                    Vec::new(),
                ),
                None => (not_found(rtype, name, group), Vec::new()),
            }
        }
        "PUT" | "PATCH" => {
            let busy = emu
                .world()
                .get(&id)
                .is_some_and(|r| !super::reply::terminal(&r.state));
            if busy {
                return (
                    err(
                        409,
                        "AnotherOperationInProgress",
                        format!(
                            "Another operation on this or dependent resource is in progress. Resource '{name}' is in state '{}'.",
                            emu.world()
                                .get(&id)
                                .map(|r| r.state.clone())
                                .unwrap_or_default()
                        ),
                    ),
                    Vec::new(),
                );
            }
            if method == "PATCH" {
                return (patch(emu, &id, rtype, name, group, body), Vec::new());
            }
            match rtype {
                types::VM => super::compute::put_vm(emu, &id, group, name, body),
                types::PUBLIC_IP | types::NIC | types::VNET | types::NSG => (
                    super::network::put(emu, &id, group, rtype, name, body),
                    Vec::new(),
                ),
                _ => (
                    err(
                        400,
                        "InvalidResourceType",
                        format!("The emulator does not create {rtype}"),
                    ),
                    Vec::new(),
                ),
            }
        }
        "DELETE" => (delete(emu, &id, rtype), Vec::new()),
        _ => (
            err(
                405,
                "MethodNotAllowed",
                format!("{method} is not supported here"),
            ),
            Vec::new(),
        ),
    }
}

fn merge(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b.clone(),
    }
}

fn patch(emu: &Emu, id: &str, rtype: &str, name: &str, group: &str, body: &Value) -> Reply {
    let mut w = emu.world();
    let Some(current) = w.get(id).cloned() else {
        return not_found(rtype, name, group);
    };
    let ns = rtype
        .split('/')
        .next()
        .unwrap_or("Microsoft.Compute")
        .to_owned();
    if rtype != types::DISK {
        let v = w.view(&current, false, false);
        if let Some(r) = emu.async_conflict(&mut w, name, 200, Some(v), &ns, false) {
            return r;
        }
    }
    let mut restart = false;
    if rtype == types::VM {
        match super::compute::resize(emu, &current, body) {
            Ok(r) => restart = r,
            Err(e) => return e,
        }
    }
    let Some(r) = w.get_mut(id) else {
        return not_found(rtype, name, group);
    };
    if let Some(t) = body.get("tags") {
        r.body["tags"] = t.clone();
    }
    if let Some(p) = body.get("properties") {
        merge(&mut r.body["properties"], p);
    }
    r.changed = now_str();
    if rtype == types::DISK {
        let v = w
            .get(id)
            .map(|r| w.view(r, false, false))
            .unwrap_or_default();
        return Reply::json(200, v);
    }
    r.state = "Updating".into();
    if restart && let Some(vm) = r.vm.as_mut() {
        vm.power = "starting".into();
        vm.restarts += 1;
    }
    let ending = emu.ending_for(name);
    let op = emu.start_op_ending(
        &mut w,
        OpKind::Provision {
            id: id.to_owned(),
            restart,
        },
        false,
        ending,
    );
    let v = w.get(id).map(|r| w.view(r, false, false));
    drop(w);
    emu.accepted(200, v, &ns, &op, false)
}

fn delete(emu: &Emu, id: &str, rtype: &str) -> Reply {
    let mut w = emu.world();
    let Some(r) = w.get_mut(id) else {
        return Reply::empty(204);
    };
    // A managed disk attached to a VM: 409 `OperationNotAllowed` ("Disk … is attached to VM …").
    if rtype == types::DISK
        && let Some(vm) = r.body.get("managedBy").and_then(Value::as_str)
    {
        return err(
            409,
            "OperationNotAllowed",
            format!("Disk {} is attached to VM {vm}.", r.name),
        );
    }
    // A public IP still associated with an IP configuration (a NIC's): 400
    // `PublicIPAddressCannotBeDeleted`; it must be disassociated (or the NIC deleted) first.
    if rtype == types::PUBLIC_IP
        && let Some(cfg) = r
            .body
            .pointer("/properties/ipConfiguration/id")
            .and_then(Value::as_str)
    {
        return err(
            400,
            "PublicIPAddressCannotBeDeleted",
            format!(
                "Public IP address {} can not be deleted since it is still allocated to resource {cfg}. \
                 In order to delete the public IP, disassociate/detach the Public IP address from the \
                 resource.  To learn how to do this, see aka.ms/deletepublicip.",
                r.id
            ),
        );
    }
    if rtype == types::NIC
        && let Some(e) = emu.nic_reserved(&w, id, None)
    {
        return e;
    }
    let Some(r) = w.get_mut(id) else {
        return Reply::empty(204);
    };
    // A NIC attached to a VM (deleting the VM detaches it): 400 `NicInUse`.
    if rtype == types::NIC
        && let Some(vm) = r
            .body
            .pointer("/properties/virtualMachine/id")
            .and_then(Value::as_str)
    {
        return err(
            400,
            "NicInUse",
            format!(
                "Network Interface {} is used by existing resource {vm}. In order to delete the \
                 network interface, it must be dissociated from the resource. To learn more, see \
                 aka.ms/deletenic.",
                r.id
            ),
        );
    }
    r.state = "Deleting".into();
    let op = emu.start_op(&mut w, OpKind::Delete { id: id.to_owned() }, false);
    drop(w);
    let ns = rtype
        .split('/')
        .next()
        .unwrap_or("Microsoft.Compute")
        .to_owned();
    emu.accepted(202, None, &ns, &op, true)
}

fn op_status(emu: &Emu, op: &str, q: &Query) -> Result<Reply, Reply> {
    let api = q.get("api-version").unwrap_or("");
    if !versions::COMPUTE.contains(&api) && !versions::NETWORK.contains(&api) {
        check_api(q, versions::COMPUTE)?;
    }
    let w = emu.world();
    let o = known_op(emu, &w, op)?;
    let mut body = json!({ "name": op, "status": o.status, "startTime": o.started });
    if o.status != "InProgress" {
        body["endTime"] = json!(now_str());
    }
    if let Some((code, message)) = &o.error {
        body["error"] = json!({ "code": code, "message": message });
    }
    let mut r = Reply::json(200, body);
    if o.status == "InProgress" {
        let d = emu.cfg.retry_after;
        r = r
            .header("Retry-After", d.as_secs_f64().ceil().to_string())
            .header("retry-after-ms", d.as_millis().to_string());
    }
    Ok(r)
}

fn op_result(emu: &Emu, op: &str, q: &Query) -> Result<Reply, Reply> {
    check_api(q, versions::RESOURCES)?;
    let w = emu.world();
    let o = known_op(emu, &w, op)?;
    match (o.status, &o.error) {
        ("InProgress", _) => Ok(Reply::empty(202).header("Location", emu.result_url(op))),
        (_, Some((code, message))) => Ok(err(500, code, message.clone())),
        _ => Ok(Reply::empty(200)),
    }
}

/// The operation `op` if its URL still answers: 404 for an id never issued, and the
/// configured expiry reply once it has ended long enough ago.
fn known_op<'w>(emu: &Emu, w: &'w World, op: &str) -> Result<&'w Op, Reply> {
    let Some(o) = w.ops.get(op) else {
        return Err(err(
            404,
            "OperationNotFound",
            format!("Operation '{op}' was not found."),
        ));
    };
    match expired(emu, o) {
        Some(e) => Err(e),
        None => Ok(o),
    }
}

/// The reply for an operation whose URL Azure no longer knows, if it expired.
fn expired(emu: &Emu, o: &Op) -> Option<Reply> {
    let (after, status) = emu.faults.operation_expiry()?;
    if o.ended?.elapsed() < after {
        return None;
    }
    Some(if status == 410 {
        err(
            410,
            "Gone",
            "The operation has expired and is no longer available.",
        )
    } else {
        err(
            status,
            "NotFound",
            "The entity was not found in this Azure location.",
        )
    })
}
