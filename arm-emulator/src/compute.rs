//! Virtual machines: PUT with validation and immutable properties, the implicit OS disk,
//! instance views and power actions.

use base64::Engine as _;
use k0rdent_core::{fingerprint::Digest, secret::Secret};
use serde_json::{Value, json};

use super::Emu;
use super::backend::BackendVm;
use super::operation::{Job, provision};
use super::reply::{Reply, err};
use super::world::{OpKind, Res, VmExtra, World, now_str};

/// User names Azure does not allow for a VM's admin account (the `adminUsername`
/// "disallowed values" of the Compute REST reference).
const RESERVED_USERS: &[&str] = &[
    "administrator",
    "admin",
    "user",
    "user1",
    "test",
    "user2",
    "test1",
    "user3",
    "admin1",
    "1",
    "123",
    "a",
    "actuser",
    "adm",
    "admin2",
    "aspnet",
    "backup",
    "console",
    "david",
    "guest",
    "john",
    "owner",
    "root",
    "server",
    "sql",
    "support",
    "support_388945a0",
    "sys",
    "test2",
    "test3",
    "user4",
    "user5",
];

/// The most custom data Azure accepts, decoded ("The maximum length of the binary array is
/// 65535 bytes").
const CUSTOM_DATA_MAX: usize = 65_535;
use super::reply::types;

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
        if emu.faults.sku_limits()
            && let Some(e) = sku_limits(
                emu,
                &loc,
                id,
                body,
                sku,
                found.map(|i| i.hyper_v_generation.as_str()),
            )
        {
            return (e, Vec::new());
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
    if emu.faults.sku_limits() && custom_data.len() > CUSTOM_DATA_MAX {
        return (
            err(
                400,
                "InvalidParameter",
                format!(
                    "The value of parameter customData is invalid: its decoded length {} exceeds the maximum of {CUSTOM_DATA_MAX} bytes.",
                    custom_data.len()
                ),
            ),
            Vec::new(),
        );
    }
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
        let view = w.view(&existing, false, false);
        if let Some(r) =
            emu.async_conflict(&mut w, name, 200, Some(view), "Microsoft.Compute", false)
        {
            return (r, Vec::new());
        }
        let restart = match resize(emu, &existing, &stored) {
            Ok(r) => r,
            Err(e) => return (e, Vec::new()),
        };
        let mut res = existing;
        res.body = stored;
        let ending = emu.ending_for(name);
        let (status, v, op) = provision(emu, &mut w, res, false, ending, false);
        if restart {
            if let Some(vm) = w.get_mut(id).and_then(|r| r.vm.as_mut()) {
                vm.power = "starting".into();
                vm.restarts += 1;
            }
            if let Some(o) = w.ops.get_mut(&op) {
                o.kind = OpKind::Provision {
                    id: id.to_owned(),
                    restart: true,
                };
            }
        }
        drop(w);
        return (
            emu.accepted(status, Some(v), "Microsoft.Compute", &op, false),
            Vec::new(),
        );
    }
    if let Some(e) = emu.nic_reserved(&w, &nic_id, Some(id)) {
        return (e, Vec::new());
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
    let vm_id = super::reply::guid();
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
    let subnet_prefix = w
        .get(&nic_id)
        .and_then(|n| {
            s(
                &n.body,
                "/properties/ipConfigurations/0/properties/subnet/id",
            )
        })
        .and_then(|id| w.subnet_prefix(id));
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
        subnet_prefix,
        size,
        zone,
        inbound: super::effective_rules::resolve(&w, &nic_id),
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
            restarts: 0,
            inbound: backend_vm.inbound.clone(),
        }),
    };
    let ending = if emu.faults.provisioning_fails(name) {
        super::world::Ending::Fail(
            "OSProvisioningTimedOut".into(),
            "OS Provisioning for VM did not finish in the allotted time (emulated).".into(),
        )
    } else {
        emu.ending_for(name)
    };
    let (status, v, op) = provision(emu, &mut w, res, true, ending, true);
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
            if let Some(r) = emu.async_conflict(&mut w, name, 202, None, "Microsoft.Compute", true)
            {
                return (r, Vec::new());
            }
            if !super::reply::terminal(&r.state) {
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
            let ending = emu.ending_for(name);
            let op = emu.start_op_ending(
                &mut w,
                OpKind::Power {
                    id: r.id.clone(),
                    to,
                    from: vm.power.clone(),
                },
                true,
                ending,
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

/// Checks a VM PUT against its size's capabilities and Azure's limits (Resource SKUs
/// `LowPriorityCapable`, `PremiumIO`, `HyperVGenerations`; reserved admin user names).
/// (Called with the catalog locked: `loc` comes from the caller.)
fn sku_limits(
    emu: &Emu,
    loc: &str,
    id: &str,
    body: &Value,
    sku: &super::catalog::SkuDef,
    image_generation: Option<&str>,
) -> Option<Reply> {
    let size = &sku.name;
    let spot = s(body, "/properties/priority").is_some_and(|p| p.eq_ignore_ascii_case("Spot"));
    if spot && !sku.low_priority_capable {
        return Some(err(
            409,
            "SkuNotAvailable",
            format!(
                "The requested tier for resource '{id}' is currently not available in location '{loc}' for subscription '{}'. Please try another tier or deploy to a different location.",
                emu.cfg.subscription
            ),
        ));
    }
    let disk_type = s(
        body,
        "/properties/storageProfile/osDisk/managedDisk/storageAccountType",
    )
    .unwrap_or("");
    let disk = s(body, "/properties/storageProfile/osDisk/name").unwrap_or("");
    if disk_type.to_ascii_lowercase().starts_with("premium") && !sku.premium_io {
        return Some(err(
            400,
            "InvalidParameter",
            format!(
                "Requested operation cannot be performed because the VM size {size} does not support the storage account type {disk_type} of disk '{disk}'. Consider updating the VM to a size that supports Premium storage."
            ),
        ));
    }
    if let Some(generation) = image_generation
        && !sku
            .hyper_v_generations
            .iter()
            .any(|g| g.eq_ignore_ascii_case(generation))
    {
        let n = generation.trim_start_matches(['V', 'v']);
        return Some(err(
            400,
            "BadRequest",
            format!(
                "The selected VM size '{size}' cannot boot Hypervisor Generation '{n}'. If this was a Create operation please check that the Hypervisor Generation of the Image matches the Hypervisor Generation of the selected VM Size. If this was an Update operation please select a Hypervisor Generation '{n}' VM Size. For more information, see https://aka.ms/azuregen2vm"
            ),
        ));
    }
    let user = s(body, "/properties/osProfile/adminUsername").unwrap_or("");
    if RESERVED_USERS.iter().any(|u| u.eq_ignore_ascii_case(user)) {
        return Some(err(
            400,
            "InvalidParameter",
            "The Admin Username specified is not allowed.",
        ));
    }
    None
}

/// Whether a size change of `existing` to the size in `body` restarts it (it runs), or the
/// 409 Azure answers when the new size is outside the running VM's hardware cluster (here:
/// another family) and the resize rules are on.
pub(crate) fn resize(emu: &Emu, existing: &Res, body: &Value) -> Result<bool, Reply> {
    let ptr = "/properties/hardwareProfile/vmSize";
    let (Some(old), Some(new)) = (s(&existing.body, ptr), s(body, ptr)) else {
        return Ok(false);
    };
    if old.eq_ignore_ascii_case(new) {
        return Ok(false);
    }
    let running = existing
        .vm
        .as_ref()
        .is_some_and(|v| v.power == "running" || v.power == "starting");
    if !running {
        return Ok(false);
    }
    if emu.faults.resize_rules() {
        let c = emu.catalog();
        let family = |n: &str| c.sku(n).map(|k| k.family.clone());
        if family(old) != family(new) {
            let same: Vec<String> = c
                .skus
                .iter()
                .filter(|k| Some(&k.family) == family(old).as_ref())
                .map(|k| k.name.clone())
                .collect();
            return Err(Reply::json(
                409,
                serde_json::json!({ "error": {
                    "code": "OperationNotAllowed",
                    "target": "vmSize",
                    "message": format!(
                        "Unable to resize the VM '{}' because the requested size {new} is not available in the current hardware cluster. The available sizes in this cluster are: {}. Read more on VM resizing strategy at https://aka.ms/azure-resizevm.",
                        existing.name,
                        same.join(",")
                    ),
                }}),
            ));
        }
    }
    Ok(true)
}
