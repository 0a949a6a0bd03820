//! Must-show 3: ARM JSON responses in the shapes the public ARM REST reference documents,
//! parsed by this crate's models. Written from the documentation (Resources - List By Resource
//! Group with `$expand`, Virtual Machines - Get with the instance view, Virtual Machines - List
//! All with `statusOnly=true` and `nextLink`, the async-operation status body, error bodies,
//! Resource Skus - List, Usage - List, Providers - Get), not captured from the emulator.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use k0rdent_azure::client::{ArmErrorCode, api_error};
use k0rdent_azure::model::*;
use k0rdent_core::Remedy;

#[test]
fn resources_list_with_expand_keeps_provisioning_state_and_times() {
    let body = r#"{
      "value": [
        {
          "id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/k0rdent-abc-resgrp/providers/Microsoft.Compute/virtualMachines/k0s-controller-1",
          "name": "k0s-controller-1",
          "type": "Microsoft.Compute/virtualMachines",
          "location": "westeurope",
          "zones": ["1"],
          "tags": { "cluster-id": "k0rdent-abc", "role": "controller" },
          "createdTime": "2025-01-02T10:00:00.1234567Z",
          "changedTime": "2025-01-02T10:05:00.7654321Z",
          "provisioningState": "Succeeded"
        },
        {
          "id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/k0rdent-abc-resgrp/providers/Microsoft.Compute/disks/k0s-controller-1-osdisk",
          "name": "k0s-controller-1-osdisk",
          "type": "Microsoft.Compute/disks",
          "sku": { "name": "StandardSSD_LRS", "tier": "Standard" },
          "location": "westeurope",
          "managedBy": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/K0RDENT-ABC-RESGRP/providers/Microsoft.Compute/virtualMachines/k0s-controller-1",
          "provisioningState": "Updating"
        }
      ],
      "nextLink": "https://management.azure.com/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/k0rdent-abc-resgrp/resources?%24expand=provisioningState&api-version=2021-04-01&%24skiptoken=eyJuZXh0"
    }"#;
    let page: Page<GenericResource> = serde_json::from_str(body).unwrap();
    assert_eq!(page.value.len(), 2);
    let vm = &page.value[0];
    assert_eq!(vm.rtype, "Microsoft.Compute/virtualMachines");
    assert_eq!(vm.provisioning_state.as_deref(), Some("Succeeded"));
    assert_eq!(
        vm.created_time.as_deref(),
        Some("2025-01-02T10:00:00.1234567Z")
    );
    assert_eq!(vm.tags["cluster-id"], "k0rdent-abc");
    let disk = &page.value[1];
    assert!(disk.tags.is_empty(), "a resource without tags has none");
    assert!(
        disk.managed_by
            .as_deref()
            .unwrap()
            .ends_with("k0s-controller-1")
    );
    assert!(!is_terminal(disk.provisioning_state.as_deref()));
    assert!(page.next_link.unwrap().contains("skiptoken"));
}

#[test]
fn a_vm_get_with_instance_view_yields_vm_id_provisioning_and_power_state() {
    let body = r#"{
      "name": "myVM",
      "id": "/subscriptions/{subscription-id}/resourceGroups/myResourceGroup/providers/Microsoft.Compute/virtualMachines/myVM",
      "type": "Microsoft.Compute/virtualMachines",
      "location": "westus",
      "zones": ["2"],
      "tags": { "myTag1": "tagValue1" },
      "etag": "\"1\"",
      "properties": {
        "vmId": "0f47b100-583c-48e3-a4c0-aefc2c9bbcc1",
        "hardwareProfile": { "vmSize": "Standard_DS3_v2" },
        "storageProfile": {
          "imageReference": { "publisher": "Debian", "offer": "debian-12", "sku": "12-gen2", "version": "latest" },
          "osDisk": { "osType": "Linux", "name": "myOsDisk", "createOption": "FromImage", "caching": "ReadWrite",
                      "managedDisk": { "storageAccountType": "Premium_LRS", "id": "/subscriptions/{subscription-id}/resourceGroups/myResourceGroup/providers/Microsoft.Compute/disks/myOsDisk" },
                      "deleteOption": "Delete", "diskSizeGB": 30 },
          "dataDisks": []
        },
        "osProfile": { "computerName": "myVM", "adminUsername": "k0rdent",
                       "linuxConfiguration": { "disablePasswordAuthentication": true }, "secrets": [] },
        "networkProfile": { "networkInterfaces": [ { "id": "/subscriptions/{subscription-id}/resourceGroups/myResourceGroup/providers/Microsoft.Network/networkInterfaces/myNIC" } ] },
        "diagnosticsProfile": { "bootDiagnostics": { "enabled": true } },
        "priority": "Spot",
        "evictionPolicy": "Deallocate",
        "provisioningState": "Succeeded",
        "timeCreated": "2021-06-27T01:02:38.3138469+00:00",
        "instanceView": {
          "computerName": "myVM",
          "osName": "debian",
          "osVersion": "12",
          "vmAgent": { "vmAgentVersion": "2.7.41491.949",
                       "statuses": [ { "code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Ready", "time": "2019-10-14T23:11:22+00:00" } ] },
          "statuses": [
            { "code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded", "time": "2019-10-14T21:30:12.8051917+00:00" },
            { "code": "PowerState/deallocated", "level": "Info", "displayStatus": "VM deallocated" }
          ]
        }
      }
    }"#;
    let vm: VirtualMachine = serde_json::from_str(body).unwrap();
    assert_eq!(
        vm.properties.vm_id.as_deref(),
        Some("0f47b100-583c-48e3-a4c0-aefc2c9bbcc1")
    );
    assert_eq!(
        vm.properties.provisioning_state.as_deref(),
        Some("Succeeded")
    );
    assert_eq!(vm.properties.priority.as_deref(), Some("Spot"));
    assert_eq!(vm.zones, ["2"]);
    let iv = vm.properties.instance_view.unwrap();
    assert_eq!(iv.power_state().as_deref(), Some("deallocated"));
    assert_eq!(iv.provisioning_state().as_deref(), Some("succeeded"));
    assert!(
        vm.properties.network_profile.unwrap().network_interfaces[0]
            .id
            .ends_with("myNIC")
    );
}

#[test]
fn a_status_only_list_with_next_link_and_a_vm_without_power_state() {
    let body = r#"{
      "value": [
        {
          "name": "k0s-worker-1",
          "id": "/subscriptions/s/resourceGroups/K0RDENT-ABC-RESGRP/providers/Microsoft.Compute/virtualMachines/k0s-worker-1",
          "type": "Microsoft.Compute/virtualMachines",
          "location": "westeurope",
          "properties": {
            "instanceView": {
              "statuses": [
                { "code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded" },
                { "code": "PowerState/running", "level": "Info", "displayStatus": "VM running" }
              ]
            }
          }
        },
        {
          "name": "k0s-worker-2",
          "id": "/subscriptions/s/resourceGroups/k0rdent-abc-resgrp/providers/Microsoft.Compute/virtualMachines/k0s-worker-2",
          "type": "Microsoft.Compute/virtualMachines",
          "location": "westeurope",
          "properties": {
            "instanceView": {
              "statuses": [
                { "code": "ProvisioningState/updating", "level": "Info", "displayStatus": "Updating" }
              ]
            }
          }
        }
      ],
      "nextLink": "https://management.azure.com/subscriptions/s/providers/Microsoft.Compute/virtualMachines?api-version=2024-07-01&statusOnly=true&%24skiptoken=abc"
    }"#;
    let page: Page<VirtualMachine> = serde_json::from_str(body).unwrap();
    let power: Vec<Option<String>> = page
        .value
        .iter()
        .map(|v| {
            v.properties
                .instance_view
                .as_ref()
                .and_then(InstanceView::power_state)
        })
        .collect();
    assert_eq!(power, [Some("running".to_owned()), None]);
    assert!(page.next_link.is_some());
    // The last page has no nextLink at all.
    let last: Page<VirtualMachine> = serde_json::from_str(r#"{ "value": [] }"#).unwrap();
    assert!(last.next_link.is_none());
}

#[test]
fn async_operation_bodies_in_progress_succeeded_and_failed() {
    let running: OperationStatus = serde_json::from_str(
        r#"{ "startTime": "2025-01-02T10:00:00.123+00:00", "status": "InProgress", "name": "8c6a3b3c-0000-0000-0000-000000000000" }"#,
    )
    .unwrap();
    assert_eq!(running.status, "InProgress");
    assert!(running.error.is_none());
    let done: OperationStatus = serde_json::from_str(
        r#"{ "id": "/subscriptions/s/providers/Microsoft.Network/locations/westeurope/operations/abc",
             "name": "abc", "status": "Succeeded", "startTime": "2025-01-02T10:00:00Z",
             "endTime": "2025-01-02T10:00:05Z", "percentComplete": 100, "properties": {} }"#,
    )
    .unwrap();
    assert_eq!(done.percent_complete, Some(100.0));
    let failed: OperationStatus = serde_json::from_str(
        r#"{ "startTime": "2025-01-02T10:00:00Z", "endTime": "2025-01-02T10:20:00Z", "status": "Failed",
             "error": { "code": "OSProvisioningTimedOut",
                        "message": "OS Provisioning for VM 'k0s-worker-1' did not finish in the allotted time.",
                        "details": [] },
             "name": "def" }"#,
    )
    .unwrap();
    let e = failed.error.unwrap();
    assert_eq!(
        ArmErrorCode::parse(&e.code),
        ArmErrorCode::OsProvisioningTimedOut
    );
    assert!(e.message.contains("allotted time"));
}

#[test]
fn error_bodies_keep_code_message_and_details() {
    let sku = br#"{
      "error": {
        "code": "SkuNotAvailable",
        "message": "The requested VM size for resource 'Following SKUs have failed for Capacity Restrictions: Standard_D2s_v5' is currently not available in location 'westeurope'. Please try another size or deploy to a different location or different zone.",
        "target": "vmSize"
      }
    }"#;
    let e = api_error("PUT", "/x", 409, sku, None);
    assert_eq!(e.code(), Some(&ArmErrorCode::SkuNotAvailable));
    assert!(
        e.to_string()
            .contains("HTTP 409 SkuNotAvailable: The requested VM size")
    );
    assert!(e.remedy().unwrap().contains("list-skus"));

    let quota = br#"{
      "error": {
        "code": "OperationNotAllowed",
        "message": "Operation could not be completed as it results in exceeding approved standardDSv5Family Cores quota.",
        "details": [ { "code": "QuotaExceeded", "message": "Current Limit: 4, Current Usage: 4, Additional Required: 2" } ]
      }
    }"#;
    let e = api_error("PUT", "/x", 409, quota, None);
    assert!(
        e.to_string().contains("QuotaExceeded: Current Limit: 4"),
        "{e}"
    );

    let reg = br#"{"error":{"code":"MissingSubscriptionRegistration","message":"The subscription is not registered to use namespace 'Microsoft.Compute'.","details":[{"code":"MissingSubscriptionRegistration","target":"Microsoft.Compute","message":"The subscription is not registered to use namespace 'Microsoft.Compute'."}]}}"#;
    let e = api_error("PUT", "/x", 409, reg, None);
    assert_eq!(
        e.code(),
        Some(&ArmErrorCode::MissingSubscriptionRegistration)
    );
    assert!(e.remedy().unwrap().contains("az provider register"));

    let gone = br#"{"error":{"code":"ResourceGroupNotFound","message":"Resource group 'k0rdent-abc-resgrp' could not be found."}}"#;
    assert!(api_error("GET", "/x", 404, gone, None).is_not_found());
    let change = br#"{"error":{"code":"PropertyChangeNotAllowed","message":"Changing property 'customData' is not allowed.","target":"customData"}}"#;
    let e = api_error("PUT", "/x", 409, change, None);
    assert_eq!(e.code(), Some(&ArmErrorCode::PropertyChangeNotAllowed));
    let forbidden = br#"{"error":{"code":"AuthorizationFailed","message":"The client 'x' with object id 'y' does not have authorization to perform action 'Microsoft.Resources/subscriptions/resourceGroups/resources/read' over scope '/subscriptions/s/resourceGroups/g' or the scope is invalid."}}"#;
    let e = api_error("GET", "/x", 403, forbidden, None);
    assert!(!e.is_not_found());
    assert_eq!(
        e.into_step_error("listing").kind(),
        k0rdent_core::step::ErrorKind::Blocked
    );
}

#[test]
fn resource_skus_with_zone_and_location_restrictions() {
    let body = r#"{
      "value": [{
        "resourceType": "virtualMachines",
        "name": "Standard_D2pls_v6",
        "tier": "Standard",
        "size": "D2pls_v6",
        "family": "standardDplsv6Family",
        "locations": ["westeurope"],
        "locationInfo": [{ "location": "westeurope", "zones": ["2", "1", "3"], "zoneDetails": [] }],
        "capabilities": [
          { "name": "vCPUs", "value": "2" },
          { "name": "CpuArchitectureType", "value": "Arm64" }
        ],
        "restrictions": [{
          "type": "Zone",
          "values": ["westeurope"],
          "restrictionInfo": { "locations": ["westeurope"], "zones": ["3"] },
          "reasonCode": "NotAvailableForSubscription"
        }]
      }]
    }"#;
    let page: Page<ResourceSku> = serde_json::from_str(body).unwrap();
    let s = &page.value[0];
    assert_eq!(s.capability("cpuarchitecturetype"), Some("Arm64"));
    assert_eq!(s.capability("vCPUs"), Some("2"));
    assert_eq!(
        s.restrictions[0].restriction_info.as_ref().unwrap().zones,
        ["3"]
    );
    assert_eq!(s.location_info[0].zones.len(), 3);
}

#[test]
fn usages_and_provider_registration() {
    let usages: Page<Usage> = serde_json::from_str(
        r#"{ "value": [
          { "unit": "Count", "currentValue": 4, "limit": 10, "name": { "value": "cores", "localizedValue": "Total Regional vCPUs" } },
          { "unit": "Count", "currentValue": 0, "limit": 20, "name": { "value": "standardDSv5Family", "localizedValue": "Standard DSv5 Family vCPUs" } }
        ] }"#,
    )
    .unwrap();
    assert_eq!(usages.value[0].limit - usages.value[0].current_value, 6);
    let p: Provider = serde_json::from_str(
        r#"{ "id": "/subscriptions/s/providers/Microsoft.Compute", "namespace": "Microsoft.Compute",
             "registrationState": "Registering", "registrationPolicy": "RegistrationRequired", "resourceTypes": [] }"#,
    )
    .unwrap();
    assert_eq!(p.registration_state.as_deref(), Some("Registering"));
}

#[test]
fn nsg_rules_are_read_for_open_ports() {
    let nsg: SecurityGroup = serde_json::from_str(
        r#"{ "id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/networkSecurityGroups/n",
             "properties": { "provisioningState": "Succeeded", "securityRules": [
               { "name": "AllowWireGuard", "properties": { "protocol": "Udp", "sourcePortRange": "*", "destinationPortRange": "51820",
                 "sourceAddressPrefix": "*", "destinationAddressPrefix": "*", "access": "Allow", "priority": 1000, "direction": "Inbound" } },
               { "name": "AllowSSH", "properties": { "protocol": "Tcp", "destinationPortRanges": ["22", "443"],
                 "sourceAddressPrefix": "Internet", "access": "Allow", "priority": 1010, "direction": "Inbound" } }
             ] } }"#,
    )
    .unwrap();
    let rules = &nsg.properties.security_rules;
    assert!(
        rules[0].properties.covers_port(51820) && rules[0].properties.allows_internet_inbound()
    );
    assert!(rules[1].properties.covers_port(22) && !rules[1].properties.covers_port(23));
}
