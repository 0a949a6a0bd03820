//! One home per domain rule (issue #8): the same names — locations, resource group names, VM
//! sizes, admin user names and zones — go through the library's types, the library's spec
//! check and the CLI's configuration check (the upstream minimal example with one field
//! swapped), and all three give the table's verdict.
//!
//! Before, the CLI and `k0rdent-azure` each wrote these rules and disagreed. Every row where
//! they did carries a note naming the verdict that won and the Azure documentation behind it;
//! rows marked "changed" are names both copies judged alike but Azure's documentation does
//! not.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::Path;

use k0rdent_azure::naming::{AdminUserName, AvailabilityZone, Location, ResourceGroupName, VmSize};
use k0rdent_azure::spec::{AzureSpec, EvictionPolicy, ImageRef, NodeRole, Priority, VmSpec};
use k0rdent_core::secret::Secret;
use serde_yaml::Value;

const RG_RULES: &str = "https://learn.microsoft.com/en-us/azure/azure-resource-manager/management/resource-name-rules#microsoftresources";
const LOCATION_CASE: &str = "https://github.com/Azure/azure-resource-manager-rpc/blob/master/v1.0/resource-api-reference.md (\"Resource Providers should ignore whitespace and capitalization when accepting geo regions\")";
const SIZE_NAMING: &str = "https://learn.microsoft.com/en-us/azure/virtual-machines/vm-naming-conventions (constrained vCPU sizes: Standard_M8-2ms)";
const SIZE_VALUES: &str = "https://learn.microsoft.com/en-us/rest/api/compute/virtual-machines/create-or-update#virtualmachinesizetypes (every vmSize is Basic_… or Standard_…)";
const USER_AZ_CLI: &str = "https://github.com/Azure/azure-cli/blob/dev/src/azure-cli/azure/cli/command_modules/vm/_validators.py (_validate_admin_username: Linux names may not contain A-Z or start with $ or -)";
const USER_FAQ: &str = "https://learn.microsoft.com/en-us/azure/virtual-machines/linux/faq#what-are-the-username-requirements-when-creating-a-vm- (1-32 characters; video is not allowed)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Location,
    ResourceGroup,
    VmSize,
    AdminUser,
    Zone,
}

impl Kind {
    /// The key the CLI names when it refuses the value.
    fn config_key(self) -> &'static str {
        match self {
            Kind::Location => "azure.location",
            Kind::ResourceGroup => "azure.resource_group",
            Kind::VmSize => "vm_sizing.controller.size",
            Kind::AdminUser => "ssh.username",
            Kind::Zone => "cluster.controllers.zones",
        }
    }

    /// The key the library's spec check names when it refuses the value.
    fn spec_key(self) -> &'static str {
        match self {
            Kind::Location => "azure.location",
            Kind::ResourceGroup => "azure.resource_group",
            Kind::VmSize => "vm_sizing",
            Kind::AdminUser => "admin_user",
            Kind::Zone => "zones",
        }
    }
}

struct Row {
    kind: Kind,
    input: String,
    valid: bool,
    /// For a rule the old copies disagreed on (or both got wrong): which verdict won, and the
    /// Azure documentation behind it.
    note: Option<String>,
}

fn row(kind: Kind, input: impl Into<String>, valid: bool) -> Row {
    Row {
        kind,
        input: input.into(),
        valid,
        note: None,
    }
}

fn disputed(kind: Kind, input: impl Into<String>, valid: bool, note: &str, url: &str) -> Row {
    Row {
        note: Some(format!("{note}; source: {url}")),
        ..row(kind, input, valid)
    }
}

fn table() -> Vec<Row> {
    use Kind::*;
    vec![
        // Locations.
        row(Location, "westeurope", true),
        row(Location, "eastus2", true),
        disputed(
            Location,
            "WestEurope",
            true,
            "old CLI refused, old library accepted: the library's verdict (valid, kept as \
             westeurope) won",
            LOCATION_CASE,
        ),
        row(Location, "West Europe", false),
        row(Location, "west-europe", false),
        row(Location, "", false),
        // Resource group names.
        row(ResourceGroup, "k0rdent-abc-resgrp", true),
        row(ResourceGroup, "(rg)_1.2-x", true),
        row(ResourceGroup, ".leading-period", true),
        row(ResourceGroup, "a".repeat(90), true),
        row(ResourceGroup, "a".repeat(91), false),
        row(ResourceGroup, "my group", false),
        row(ResourceGroup, "rg#1", false),
        row(ResourceGroup, "", false),
        disputed(
            ResourceGroup,
            "my-group.",
            false,
            "old CLI accepted, old library refused: the library's verdict (invalid: can't end \
             with period) won",
            RG_RULES,
        ),
        disputed(
            ResourceGroup,
            "grupo-ñandú",
            true,
            "changed: both old copies refused non-ASCII letters; Azure allows letters and \
             digits as Char.IsLetterOrDigit defines them",
            RG_RULES,
        ),
        // VM sizes.
        row(VmSize, "Standard_D2s_v5", true),
        row(VmSize, "Basic_A1", true),
        row(VmSize, "", false),
        disputed(
            VmSize,
            "Standard_E4-2ds_v5",
            true,
            "old CLI refused '-', old library accepted: the library's verdict (valid) won",
            SIZE_NAMING,
        ),
        disputed(
            VmSize,
            "D4s_v5",
            false,
            "old CLI accepted, old library refused: the library's verdict (invalid: no tier) \
             won",
            SIZE_VALUES,
        ),
        disputed(
            VmSize,
            "standard_d4s_v5",
            false,
            "old CLI accepted, old library refused: the library's verdict (invalid: the tier \
             is spelled Standard_) won",
            SIZE_VALUES,
        ),
        disputed(
            VmSize,
            "Standard_D4s v5",
            false,
            "old CLI refused, old library accepted: the CLI's verdict (invalid: no size name \
             has a space) won",
            SIZE_NAMING,
        ),
        disputed(
            VmSize,
            "Standard_",
            false,
            "changed: both old copies accepted a tier without a size; a size name starts with \
             its family letter",
            SIZE_NAMING,
        ),
        // Admin user names.
        row(AdminUser, "k0rdent", true),
        row(AdminUser, "_svc", true),
        row(AdminUser, "u".repeat(32), true),
        row(AdminUser, "u".repeat(33), false),
        row(AdminUser, "admin", false),
        row(AdminUser, "Admin", false),
        row(AdminUser, "first.last", false),
        row(AdminUser, "", false),
        disputed(
            AdminUser,
            "1abc",
            true,
            "old CLI refused a leading digit, old library accepted: the library's verdict \
             (valid) won; no Azure rule forbids it",
            USER_AZ_CLI,
        ),
        disputed(
            AdminUser,
            "-abc",
            false,
            "old CLI refused, old library accepted: the CLI's verdict (invalid: may not start \
             with -) won",
            USER_AZ_CLI,
        ),
        disputed(
            AdminUser,
            "video",
            false,
            "changed: both old copies accepted it; Azure's Linux FAQ lists it as not allowed",
            USER_FAQ,
        ),
        // Availability zones.
        row(Zone, "1", true),
        row(Zone, "3", true),
        row(Zone, "0", false),
        row(Zone, "4", false),
    ]
}

/// The library's type says whether `input` is a `kind`.
fn type_verdict(kind: Kind, input: &str) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    match kind {
        Kind::Location => Location::parse(input).map(drop).map_err(|x| e(&x)),
        Kind::ResourceGroup => ResourceGroupName::parse(input).map(drop).map_err(|x| e(&x)),
        Kind::VmSize => VmSize::parse(input).map(drop).map_err(|x| e(&x)),
        Kind::AdminUser => AdminUserName::parse(input).map(drop).map_err(|x| e(&x)),
        Kind::Zone => AvailabilityZone::new(input.parse().unwrap())
            .map(drop)
            .map_err(|x| e(&x)),
    }
}

/// A valid one-VM spec with one value swapped for `input`.
fn spec_with(kind: Kind, input: &str) -> AzureSpec {
    let mut vm = VmSpec {
        name: "k0s-controller-1".into(),
        role: NodeRole::Controller,
        size: "Standard_B2s".into(),
        zone: Some(1),
        priority: Priority::Regular,
        eviction_policy: EvictionPolicy::Deallocate,
        image: "Debian:debian-12:12-gen2:latest"
            .parse::<ImageRef>()
            .unwrap(),
        admin_user: "k0rdent".into(),
        ssh_public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq1 test".into(),
        custom_data: Secret::new(b"#cloud-config\n".to_vec()),
        os_disk_size_gb: 64,
        os_disk_type: "StandardSSD_LRS".into(),
        adopted: None,
    };
    let mut spec = AzureSpec {
        cluster_id: "k0rdent-naming1".into(),
        location: "westus2".into(),
        resource_group: None,
        vnet_cidr: "10.0.0.0/16".parse().unwrap(),
        subnet_cidr: "10.0.1.0/24".parse().unwrap(),
        wireguard_port: 51820,
        owner: "tester@example.com".into(),
        extra_tags: BTreeMap::new(),
        vms: Vec::new(),
        write_concurrency: 10,
        imported: false,
    };
    match kind {
        Kind::Location => spec.location = input.into(),
        Kind::ResourceGroup => spec.resource_group = Some(input.into()),
        Kind::VmSize => vm.size = input.into(),
        Kind::AdminUser => vm.admin_user = input.into(),
        Kind::Zone => vm.zone = Some(input.parse().unwrap()),
    }
    spec.vms.push(vm);
    spec
}

/// The library's spec check: `Ok`, or the key and message it refused with.
fn spec_verdict(kind: Kind, input: &str) -> Result<(), (String, String)> {
    spec_with(kind, input)
        .validate()
        .map_err(|e| (e.key, e.message))
}

fn minimal_config() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/upstream-config/minimal.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The CLI's configuration check of the minimal example with one field swapped: `Ok`, or the
/// keys and messages of its problems.
fn config_verdict(kind: Kind, input: &str) -> Result<(), Vec<(Option<String>, String)>> {
    let mut doc = minimal_config();
    let text = Value::String(input.to_owned());
    match kind {
        Kind::Location => doc["azure"]["location"] = text,
        Kind::ResourceGroup => doc["azure"]["resource_group"] = text,
        Kind::VmSize => doc["vm_sizing"]["controller"]["size"] = text,
        Kind::AdminUser => doc["ssh"]["username"] = text,
        Kind::Zone => {
            let zone: i64 = input.parse().unwrap();
            doc["cluster"]["controllers"]["zones"] = Value::Sequence(vec![zone.into()]);
        }
    }
    let bytes = serde_yaml::to_string(&doc).unwrap();
    k0rdent_cli::config::parse(Path::new("minimal.yaml"), bytes.as_bytes())
        .map(drop)
        .map_err(|e| e.problems.into_iter().map(|p| (p.key, p.message)).collect())
}

#[test]
fn the_library_and_the_cli_give_every_name_the_documented_verdict() {
    // The unchanged example itself is valid, so every refusal below is the swapped field's.
    assert_eq!(config_verdict(Kind::Location, "westus2"), Ok(()));
    let rows = table();
    let mut failures = Vec::new();
    println!("{:<14} {:<22} verdict  note", "kind", "input");
    for r in &rows {
        let verdict = if r.valid { "valid" } else { "invalid" };
        println!(
            "{:<14} {:<22} {verdict:<8} {}",
            format!("{:?}", r.kind),
            format!("{:?}", r.input),
            r.note.as_deref().unwrap_or("")
        );
        let why = r
            .note
            .as_deref()
            .map_or_else(String::new, |n| format!(" [{n}]"));
        let by_type = type_verdict(r.kind, &r.input);
        if by_type.is_ok() != r.valid {
            failures.push(format!(
                "{:?} {:?}: the library's type says {by_type:?}, expected {verdict}{why}",
                r.kind, r.input
            ));
        }
        match (spec_verdict(r.kind, &r.input), r.valid) {
            (Ok(()), true) => {}
            (Err((key, _)), false) if key == r.kind.spec_key() => {}
            (got, _) => failures.push(format!(
                "{:?} {:?}: the library's spec check says {got:?}, expected {verdict} (key {}){why}",
                r.kind,
                r.input,
                r.kind.spec_key()
            )),
        }
        match (config_verdict(r.kind, &r.input), r.valid) {
            (Ok(()), true) => {}
            (Err(problems), false)
                if problems
                    .iter()
                    .all(|(key, _)| key.as_deref() == Some(r.kind.config_key())) => {}
            (got, _) => failures.push(format!(
                "{:?} {:?}: the CLI's configuration check says {got:?}, expected {verdict} \
                 (key {}){why}",
                r.kind,
                r.input,
                r.kind.config_key()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every kind has valid and invalid rows, and every disputed rule names its source.
    for kind in [
        Kind::Location,
        Kind::ResourceGroup,
        Kind::VmSize,
        Kind::AdminUser,
    ] {
        assert!(rows.iter().any(|r| r.kind == kind && r.valid), "{kind:?}");
        assert!(rows.iter().any(|r| r.kind == kind && !r.valid), "{kind:?}");
    }
    let disputed: Vec<_> = rows.iter().filter_map(|r| r.note.as_deref()).collect();
    assert!(disputed.len() >= 8, "{disputed:?}");
    assert!(
        disputed
            .iter()
            .all(|n| n.contains("won") || n.starts_with("changed"))
    );
    assert!(disputed.iter().all(|n| n.contains("source: https://")));
}

#[test]
fn a_location_in_any_case_is_recorded_in_its_name_form() {
    let mut doc = minimal_config();
    doc["azure"]["location"] = Value::String("WestUS2".into());
    let bytes = serde_yaml::to_string(&doc).unwrap();
    let (config, _) = k0rdent_cli::config::parse(Path::new("minimal.yaml"), bytes.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.azure.location, "westus2");
    let json = serde_json::to_value(&config).unwrap();
    assert_eq!(json["azure"]["location"], "westus2");
}
