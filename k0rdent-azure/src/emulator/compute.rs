//! Virtual machines: PUT with validation and immutable properties, the implicit OS disk,
//! instance views and power actions.

use base64::Engine as _;
use k0rdent_core::{Digest, Secret};
use serde_json::{Value, json};

use super::Emu;
use super::arm::{Job, provision};
use super::backend::BackendVm;
use super::reply::{Reply, err};
use super::world::{OpKind, Res, VmExtra, World, now_str};
use crate::names::types;

fn s<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// Properties that cannot change on an existing VM, and their pointers.
const IMMUTABLE: &[(&str, &str)] = &[
    ("zones", "/zones"),
    (
        "imageReference",
        "/properties/storageProfile/imageReference",
    ),
    ("osDisk.name", "/properties/storageProfile/osDisk/name"),
    ("adminUsername", "/properties/osProfile/adminUsername"),
    (
        "linuxConfiguration.ssh.publicKeys",
        "/properties/osProfile/linuxConfiguration/ssh/publicKeys",
    ),
    ("priority", "/properties/priority"),
];

fn norm(v: Option<&Value>) -> String {
    v.map(|x| x.to_string().to_ascii_lowercase())
        .unwrap_or_default()
}

pub(crate) fn put_vm(
    emu: &Emu,
    id: &str,
    group: &str,
    name: &str,
    body: &Value,
) -> (Reply, Vec<Job>) {
    let loc = emu.location();
    let location = s(body, "/location").unwrap_or("");
    if !location.eq_ignore_ascii_case(&loc) {
        return (
            err(
                409,
                "SkuNotAvailable",
                format!("The requested VM size is not available in location '{location}'."),
            ),
            Vec::new(),
        );
    }
    let size = s(body, "/properties/hardwareProfile/vmSize")
        .unwrap_or("")
        .to_owned();
    let zone = s(body, "/zones/0").map(str::to_owned);
    {
        let c = emu.catalog();
        let Some(sku) = c.sku(&size) else {
            return (
                err(
                    409,
                    "SkuNotAvailable",
                    format!("The requested VM size {size} is not available in the current region."),
                ),
                Vec::new(),
            );
        };
        if sku.restricted
            || zone
                .as_ref()
                .is_some_and(|z| sku.restricted_zones.iter().any(|r| r.to_string() == *z))
        {
            return (
                err(
                    409,
                    "SkuNotAvailable",
                    format!(
                        "The requested VM size {size} is currently not available in location '{loc}' zones '{}' for subscription.",
                        zone.clone().unwrap_or_default()
                    ),
                ),
                Vec::new(),
            );
        }
        let img = body
            .pointer("/properties/storageProfile/imageReference")
            .cloned()
            .unwrap_or_default();
        let found = c.image(
            s(&img, "/publisher").unwrap_or(""),
            s(&img, "/offer").unwrap_or(""),
            s(&img, "/sku").unwrap_or(""),
        );
        let version_ok = found.is_some_and(|i| {
            let v = s(&img, "/version").unwrap_or("latest");
            v.eq_ignore_ascii_case("latest") || i.versions.iter().any(|x| x == v)
        });
        if !version_ok {
            return (
                err(
                    404,
                    "PlatformImageNotFound",
                    format!("The platform image '{}' is not available.", img),
                ),
                Vec::new(),
            );
        }
    }
    let custom = s(body, "/properties/osProfile/customData").unwrap_or("");
    let Ok(custom_data) = base64::engine::general_purpose::STANDARD.decode(custom) else {
        return (
            err(
                400,
                "InvalidParameter",
                "Custom data in OSProfile must be in Base64 encoding.",
            ),
            Vec::new(),
        );
    };
    let nic_id = s(body, "/properties/networkProfile/networkInterfaces/0/id")
        .unwrap_or("")
        .to_owned();
    let disk_name = s(body, "/properties/storageProfile/osDisk/name")
        .unwrap_or("")
        .to_owned();
    let sub = emu.cfg.subscription.clone();
    let mut w = emu.world();
    let gname = w
        .groups
        .get(&group.to_ascii_lowercase())
        .map_or(group.to_owned(), |g| g.name.clone());
    let disk_id = format!(
        "/subscriptions/{sub}/resourceGroups/{gname}/providers/{}/{disk_name}",
        types::DISK
    );
    let nic_vm = match w.get(&nic_id) {
        None => {
            return (
                err(
                    400,
                    "InvalidResourceReference",
                    format!("Resource {nic_id} referenced by resource {id} was not found."),
                ),
                Vec::new(),
            );
        }
        Some(n) => s(&n.body, "/properties/virtualMachine/id").map(str::to_owned),
    };
    if nic_vm.as_ref().is_some_and(|v| !v.eq_ignore_ascii_case(id)) {
        return (
            err(
                400,
                "NicInUse",
                format!(
                    "Network Interface {nic_id} is used by existing resource {}.",
                    nic_vm.unwrap_or_default()
                ),
            ),
            Vec::new(),
        );
    }
    let mut stored = body.clone();
    if let Some(os) = stored
        .pointer_mut("/properties/osProfile")
        .and_then(Value::as_object_mut)
    {
        // ARM never returns custom data.
        os.remove("customData");
    }
    stored["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"] = json!(disk_id);
    stored["properties"]["storageProfile"]["osDisk"]["osType"] = json!("Linux");
    stored["properties"]["timeCreated"] = json!(now_str());

    if let Some(existing) = w.get(id).cloned() {
        for (prop, ptr) in IMMUTABLE {
            if norm(existing.body.pointer(ptr)) != norm(stored.pointer(ptr)) {
                return (
                    err(
                        409,
                        "PropertyChangeNotAllowed",
                        format!("Changing property '{prop}' is not allowed."),
                    ),
                    Vec::new(),
                );
            }
        }
        let old = existing
            .vm
            .as_ref()
            .map(|v| Digest::of_bytes(&v.custom_data));
        if old.as_ref() != Some(&Digest::of_bytes(&custom_data)) {
            return (
                err(
                    409,
                    "PropertyChangeNotAllowed",
                    "Changing property 'customData' is not allowed.",
                ),
                Vec::new(),
            );
        }
        let mut res = existing;
        res.body = stored;
        let (status, v, op) = provision(emu, &mut w, res, false, false, false);
        drop(w);
        return (
            emu.accepted(status, Some(v), "Microsoft.Compute", &op, false),
            Vec::new(),
        );
    }
    if w.get(&disk_id).is_some() {
        return (
            err(
                409,
                "ConflictingUserInput",
                format!(
                    "Disk {disk_name} already exists in resource group {}. Only CreateOption.Attach is supported.",
                    gname.to_ascii_uppercase()
                ),
            ),
            Vec::new(),
        );
    }
    let now = now_str();
    w.res.insert(World::key(&disk_id), Res {
        id: disk_id.clone(),
        rtype: types::DISK.into(),
        name: disk_name.clone(),
        group: group.to_ascii_lowercase(),
        body: json!({
            "location": loc,
            "zones": body.get("zones").cloned().unwrap_or(Value::Null),
            "managedBy": id,
            "sku": { "name": s(body, "/properties/storageProfile/osDisk/managedDisk/storageAccountType").unwrap_or("StandardSSD_LRS") },
            "properties": { "osType": "Linux", "diskSizeGB": body.pointer("/properties/storageProfile/osDisk/diskSizeGB").cloned().unwrap_or(json!(30)), "diskState": "Attached" },
        }),
        state: "Succeeded".into(),
        created: now.clone(),
        changed: now.clone(),
        vm: None,
    });
    if let Some(n) = w.get_mut(&nic_id) {
        n.body["properties"]["virtualMachine"] = json!({ "id": id });
    }
    let vm_id = crate::client::new_guid();
    let (pip_id, public_ip) = w.nic_public_ip(&nic_id);
    let private_ip = w
        .get(&nic_id)
        .and_then(|n| {
            s(
                &n.body,
                "/properties/ipConfigurations/0/properties/privateIPAddress",
            )
        })
        .and_then(|a| a.parse().ok());
    let backend_vm = BackendVm {
        name: name.to_owned(),
        vm_id: vm_id.clone(),
        admin_user: s(body, "/properties/osProfile/adminUsername")
            .unwrap_or("")
            .to_owned(),
        ssh_public_keys: body
            .pointer("/properties/osProfile/linuxConfiguration/ssh/publicKeys")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|k| s(k, "/keyData").map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        custom_data: Secret::new(custom_data.clone()),
        public_ip,
        private_ip,
        size,
        zone,
    };
    let res = Res {
        id: id.to_owned(),
        rtype: types::VM.into(),
        name: name.to_owned(),
        group: group.to_ascii_lowercase(),
        body: stored,
        state: String::new(),
        created: now.clone(),
        changed: now,
        vm: Some(VmExtra {
            vm_id,
            power: "starting".into(),
            custom_data,
        }),
    };
    let fail = emu.faults.provisioning_fails(name);
    let (status, v, op) = provision(emu, &mut w, res, true, fail, true);
    drop(w);
    let jobs = vec![Job::Create {
        op: op.clone(),
        vm: Box::new(backend_vm),
        pip_id,
    }];
    (
        emu.accepted(status, Some(v), "Microsoft.Compute", &op, false),
        jobs,
    )
}

pub(crate) fn vm_action(
    emu: &Emu,
    method: &str,
    group: &str,
    name: &str,
    action: &str,
) -> (Reply, Vec<Job>) {
    let mut w = emu.world();
    let Some(r) = w
        .find(types::VM, name)
        .filter(|r| r.group == group.to_ascii_lowercase())
        .cloned()
    else {
        return (
            err(
                404,
                "ResourceNotFound",
                format!(
                    "The Resource 'Microsoft.Compute/virtualMachines/{name}' under resource group '{group}' was not found."
                ),
            ),
            Vec::new(),
        );
    };
    let Some(vm) = r.vm.clone() else {
        return (err(500, "InternalError", "VM without state"), Vec::new());
    };
    match (method, action) {
        ("GET", "instanceview") => {
            let v = super::world::instance_view_json(&r, &vm, emu.faults.power_omitted(name));
            (Reply::json(200, v), Vec::new())
        }
        ("POST", "start" | "deallocate" | "poweroff" | "restart") => {
            if !crate::model::is_terminal(Some(&r.state)) {
                return (
                    err(
                        409,
                        "OperationNotAllowed",
                        format!(
                            "Operation '{action}' is not allowed on VM '{name}' since the VM is {}.",
                            r.state
                        ),
                    ),
                    Vec::new(),
                );
            }
            let (now, to, start) = match action {
                "start" | "restart" => ("starting", "running", true),
                "deallocate" => ("deallocating", "deallocated", false),
                _ => ("stopping", "stopped", false),
            };
            if let Some(x) = w.get_mut(&r.id).and_then(|x| x.vm.as_mut()) {
                x.power = now.into();
            }
            let op = emu.start_op(
                &mut w,
                OpKind::Power {
                    id: r.id.clone(),
                    to,
                },
                true,
            );
            drop(w);
            let job = Job::Power {
                op: op.clone(),
                name: name.to_owned(),
                start,
            };
            (
                emu.accepted(202, None, "Microsoft.Compute", &op, true),
                vec![job],
            )
        }
        _ => (
            err(
                404,
                "InvalidResourceType",
                format!("'{action}' is not a VM action"),
            ),
            Vec::new(),
        ),
    }
}
