//! Unit tests of the delete rules Azure enforces between a VM and its NIC, public IP and OS
//! disk (the router is called directly; operations complete at the next request).
//!
//! - a NIC attached to a VM: 400 `NicInUse` (deleting the VM detaches it);
//! - a public IP associated with a NIC's IP configuration: 400
//!   `PublicIPAddressCannotBeDeleted` (deleting the NIC, or a NIC update without it, releases
//!   it);
//! - a managed disk attached to a VM: 409 `OperationNotAllowed` ("Disk … is attached to VM …").

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde_json::{Value, json};

use super::arm::handle;
use super::reply::{Query, Reply, types, versions};
use super::world::{Group, World};
use super::{Emu, Emulator};

const GROUP: &str = "rg";

fn emu() -> Emu {
    let b = Emulator::builder().operation_duration(Duration::ZERO);
    let emu = Emu {
        cfg: b.cfg,
        base: "http://127.0.0.1:1".into(),
        world: Mutex::new(World::default()),
        catalog: Mutex::new(b.catalog),
        faults: Default::default(),
        log: Default::default(),
        latency_us: AtomicU64::new(0),
        vaults: Mutex::default(),
        vault_denied: Default::default(),
    };
    emu.world().groups.insert(
        GROUP.into(),
        Group {
            name: GROUP.into(),
            location: "westeurope".into(),
            tags: json!({}),
            deleting: false,
        },
    );
    emu
}

fn id(emu: &Emu, rtype: &str, name: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{GROUP}/providers/{rtype}/{name}",
        emu.cfg.subscription
    )
}

fn call(emu: &Emu, method: &str, rtype: &str, name: &str, body: Option<Value>) -> Reply {
    let api = versions::for_type(rtype)[0];
    let q = Query::parse(&format!("api-version={api}"));
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    handle(emu, method, &id(emu, rtype, name), &q, &bytes).0
}

fn code(r: &Reply) -> &str {
    r.body
        .as_ref()
        .and_then(|b| b.pointer("/error/code"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn message(r: &Reply) -> &str {
    r.body
        .as_ref()
        .and_then(|b| b.pointer("/error/message"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn exists(emu: &Emu, rtype: &str, name: &str) -> bool {
    call(emu, "GET", rtype, name, None).status == 200
}

fn nic_body(emu: &Emu, pip: Option<&str>) -> Value {
    let vnet = id(emu, types::VNET, "vnet");
    let mut props = json!({ "subnet": { "id": format!("{vnet}/subnets/default") } });
    if let Some(p) = pip {
        props["publicIPAddress"] = json!({ "id": id(emu, types::PUBLIC_IP, p) });
    }
    json!({
        "location": "westeurope",
        "properties": { "ipConfigurations": [{ "name": "ipconfig1", "properties": props }] },
    })
}

/// A VNet, public IP `vm-pip`, NIC `vm-nic` with it, and VM `vm` on the NIC with OS disk
/// `vm-osdisk` kept when the VM goes (`deleteOption: Detach`), all provisioned.
fn vm_with_parts(emu: &Emu) {
    let vnet = json!({
        "location": "westeurope",
        "properties": {
            "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] },
            "subnets": [{ "name": "default", "properties": { "addressPrefix": "10.0.1.0/24" } }],
        },
    });
    assert_eq!(
        call(emu, "PUT", types::VNET, "vnet", Some(vnet)).status,
        201
    );
    let pip = json!({ "location": "westeurope", "sku": { "name": "Standard" } });
    assert_eq!(
        call(emu, "PUT", types::PUBLIC_IP, "vm-pip", Some(pip)).status,
        201
    );
    let nic = nic_body(emu, Some("vm-pip"));
    assert_eq!(
        call(emu, "PUT", types::NIC, "vm-nic", Some(nic)).status,
        201
    );
    let vm = json!({
        "location": "westeurope",
        "properties": {
            "hardwareProfile": { "vmSize": "Standard_D2s_v5" },
            "storageProfile": {
                "imageReference": {
                    "publisher": "Debian", "offer": "debian-12", "sku": "12-gen2", "version": "latest",
                },
                "osDisk": { "name": "vm-osdisk", "createOption": "FromImage", "deleteOption": "Detach" },
            },
            "osProfile": { "computerName": "vm", "adminUsername": "k0rdent", "customData": "" },
            "networkProfile": { "networkInterfaces": [{ "id": id(emu, types::NIC, "vm-nic") }] },
        },
    });
    let r = call(emu, "PUT", types::VM, "vm", Some(vm));
    assert_eq!(r.status, 201, "{:?}", r.body);
    // The next request completes the provisioning.
    assert!(exists(emu, types::VM, "vm"));
}

#[test]
fn a_nic_attached_to_a_vm_is_nic_in_use_until_the_vm_is_deleted() {
    let emu = emu();
    vm_with_parts(&emu);
    let r = call(&emu, "DELETE", types::NIC, "vm-nic", None);
    assert_eq!((r.status, code(&r)), (400, "NicInUse"));
    assert!(
        message(&r).contains(&id(&emu, types::VM, "vm")),
        "{}",
        message(&r)
    );
    assert!(exists(&emu, types::NIC, "vm-nic"));

    // VM DELETE is asynchronous: 202 with an operation to follow.
    let r = call(&emu, "DELETE", types::VM, "vm", None);
    assert_eq!(r.status, 202);
    assert!(r.headers.iter().any(|(k, _)| k == "Azure-AsyncOperation"));
    assert!(!exists(&emu, types::VM, "vm"));
    let r = call(&emu, "DELETE", types::NIC, "vm-nic", None);
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert!(!exists(&emu, types::NIC, "vm-nic"));
}

#[test]
fn a_public_ip_on_a_nic_cannot_be_deleted_until_the_nic_is_gone() {
    let emu = emu();
    vm_with_parts(&emu);
    let r = call(&emu, "DELETE", types::PUBLIC_IP, "vm-pip", None);
    assert_eq!(
        (r.status, code(&r)),
        (400, "PublicIPAddressCannotBeDeleted")
    );
    assert!(
        message(&r).contains(&format!(
            "{}/ipConfigurations/",
            id(&emu, types::NIC, "vm-nic")
        )),
        "{}",
        message(&r)
    );
    // Still refused while only the VM is gone: the NIC still holds it.
    assert_eq!(call(&emu, "DELETE", types::VM, "vm", None).status, 202);
    assert!(!exists(&emu, types::VM, "vm"));
    let r = call(&emu, "DELETE", types::PUBLIC_IP, "vm-pip", None);
    assert_eq!(code(&r), "PublicIPAddressCannotBeDeleted");
    // The NIC's deletion releases it.
    assert_eq!(call(&emu, "DELETE", types::NIC, "vm-nic", None).status, 202);
    assert!(!exists(&emu, types::NIC, "vm-nic"));
    let r = call(&emu, "DELETE", types::PUBLIC_IP, "vm-pip", None);
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert!(!exists(&emu, types::PUBLIC_IP, "vm-pip"));
}

#[test]
fn a_nic_updated_without_its_public_ip_releases_it() {
    let emu = emu();
    vm_with_parts(&emu);
    let r = call(
        &emu,
        "PUT",
        types::NIC,
        "vm-nic",
        Some(nic_body(&emu, None)),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(exists(&emu, types::NIC, "vm-nic"));
    let r = call(&emu, "DELETE", types::PUBLIC_IP, "vm-pip", None);
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert!(!exists(&emu, types::PUBLIC_IP, "vm-pip"));
}

#[test]
fn an_os_disk_attached_to_a_vm_is_operation_not_allowed_until_the_vm_is_deleted() {
    let emu = emu();
    vm_with_parts(&emu);
    let r = call(&emu, "DELETE", types::DISK, "vm-osdisk", None);
    assert_eq!((r.status, code(&r)), (409, "OperationNotAllowed"));
    assert_eq!(
        message(&r),
        format!(
            "Disk vm-osdisk is attached to VM {}.",
            id(&emu, types::VM, "vm")
        )
    );
    assert_eq!(call(&emu, "DELETE", types::VM, "vm", None).status, 202);
    assert!(!exists(&emu, types::VM, "vm"));
    // `deleteOption: Detach` kept the disk, now unattached.
    assert!(exists(&emu, types::DISK, "vm-osdisk"));
    let r = call(&emu, "DELETE", types::DISK, "vm-osdisk", None);
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert!(!exists(&emu, types::DISK, "vm-osdisk"));
}
