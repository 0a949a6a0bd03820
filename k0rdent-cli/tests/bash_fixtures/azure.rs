//! Plays what the Bash tool created in Azure, on the ARM emulator.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use k0rdent_arm_emulator::Emulator;
use serde_json::{Value, json};

use super::Scenario;

fn read(bash: &Path, rel: &str) -> String {
    std::fs::read_to_string(bash.join(rel)).unwrap()
}

/// Plays the Bash tool's `setup-azure-network.sh` and `create-azure-vms.sh`: the group
/// with its four tags, the NSG with AllowWireGuard and AllowSSH, the VNet whose subnet
/// carries the NSG, and per VM what `az vm create` makes — `<vm>PublicIP` (Standard,
/// static), `<vm>VMNic` (with the NSG), an auto-named OS disk — none of them tagged.
pub async fn seed(emu: &Emulator, s: &Scenario, bash: &Path) {
    let id = s.cluster_id;
    let rg = format!("{id}-resgrp");
    emu.create_group(
        &rg,
        "westeurope",
        json!({"owner": "alice@example.com", "created-by": "k0rdent-azure-setup",
               "cluster-id": id, "created": "2025-11-20T09:59:00Z"}),
    );
    let c = emu.client();
    let sub = emu.subscription_id();
    let gid = format!("/subscriptions/{sub}/resourceGroups/{rg}");
    let net = |t: &str, n: &str| format!("{gid}/providers/Microsoft.Network/{t}/{n}");
    let nsg_id = net("networkSecurityGroups", &format!("{id}-nsg"));
    let subnet_id = format!(
        "{}/subnets/{id}-subnet",
        net("virtualNetworks", &format!("{id}-vnet"))
    );
    let rule = |name: &str, prio: u32, proto: &str, port: &str| {
        json!({"name": name, "properties": {"priority": prio, "direction": "Inbound",
            "access": "Allow", "protocol": proto, "sourceAddressPrefix": "*",
            "sourcePortRange": "*", "destinationAddressPrefix": "*",
            "destinationPortRange": port}})
    };
    let put = |path: String, api: &'static str, body: Value| {
        let c = c.clone();
        async move {
            c.put(&path, api, &body).await.unwrap();
            wait_succeeded(emu, &path, api).await;
        }
    };
    put(
        nsg_id.clone(),
        "2024-05-01",
        json!({"location": "westeurope", "properties": {"securityRules": [
            rule("AllowWireGuard", 1000, "Udp", &s.port.to_string()),
            rule("AllowSSH", 1010, "Tcp", "22")]}}),
    )
    .await;
    put(
        net("virtualNetworks", &format!("{id}-vnet")),
        "2024-05-01",
        json!({"location": "westeurope", "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [{"name": format!("{id}-subnet"), "properties": {
                "addressPrefix": "10.0.1.0/24", "networkSecurityGroup": {"id": nsg_id}}}]}}),
    )
    .await;
    let ssh_pub = read(bash, &format!("azure-resources/{id}-ssh-key.pub"));
    for (i, (vm, _)) in s.hosts().iter().enumerate() {
        let pip = net("publicIPAddresses", &format!("{vm}PublicIP"));
        put(
            pip.clone(),
            "2024-05-01",
            json!({"location": "westeurope", "sku": {"name": "Standard"},
                   "properties": {"publicIPAllocationMethod": "Static"}}),
        )
        .await;
        let nic = net("networkInterfaces", &format!("{vm}VMNic"));
        put(
            nic.clone(),
            "2024-05-01",
            json!({"location": "westeurope", "properties": {
                "networkSecurityGroup": {"id": nsg_id},
                "ipConfigurations": [{"name": format!("ipconfig{vm}"), "properties": {
                    "subnet": {"id": subnet_id}, "privateIPAllocationMethod": "Dynamic",
                    "publicIPAddress": {"id": pip}}}]}}),
        )
        .await;
        let custom = base64::engine::general_purpose::STANDARD
            .encode(read(bash, &format!("cloud-init-yaml/{vm}-cloud-init.yaml")));
        let zone = if vm.contains("controller") {
            (i % 3) + 1
        } else {
            ((i - s.controllers) % 2) + 1
        };
        put(
            format!("{gid}/providers/Microsoft.Compute/virtualMachines/{vm}"),
            "2024-07-01",
            json!({"location": "westeurope", "zones": [zone.to_string()], "properties": {
                "hardwareProfile": {"vmSize": "Standard_B2s"},
                "storageProfile": {
                    "imageReference": {"publisher": "Debian", "offer": "debian-12",
                                       "sku": "12-gen2", "version": "latest"},
                    "osDisk": {"name": format!("{vm}_OsDisk_1_0f3c9a7e5d2b4c1a8e6f9d0b3a5c7e1f"),
                               "createOption": "FromImage", "diskSizeGB": 64,
                               "managedDisk": {"storageAccountType": "Premium_LRS"}}},
                "osProfile": {"computerName": vm, "adminUsername": "k0rdent",
                    "customData": custom,
                    "linuxConfiguration": {"disablePasswordAuthentication": true,
                        "ssh": {"publicKeys": [{"path": "/home/k0rdent/.ssh/authorized_keys",
                                                "keyData": ssh_pub.trim()}]}}},
                "networkProfile": {"networkInterfaces": [{"id": nic}]},
                "priority": "Regular"}}),
        )
        .await;
        assert_eq!(
            emu.vm(vm).unwrap().public_ip.unwrap().to_string(),
            Scenario::public_ip(i)
        );
    }
    for (vm, _) in s.hosts() {
        for _ in 0..200 {
            if emu.vm(&vm).unwrap().power_state == "running" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(emu.vm(&vm).unwrap().power_state, "running");
    }
}

async fn wait_succeeded(emu: &Emulator, path: &str, api: &str) {
    let c = emu.client();
    for _ in 0..200 {
        let v: Value = c.get(path, api, &[]).await.unwrap();
        if v.pointer("/properties/provisioningState")
            .and_then(Value::as_str)
            == Some("Succeeded")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{path} never succeeded");
}
