//! The inbound security rules in effect for a VM's NIC, as Azure evaluates them: the NSG of
//! the NIC's subnet first, then the NSG of the NIC itself; a packet gets in only if every NSG
//! there is allows it, and with no NSG at all everything gets in. Every NSG carries Azure's
//! default inbound rules after its own (the "Default security rules" of Azure's network
//! security group documentation). Resolved from the emulator's stored resources when the VM
//! is created, and again after every request ([`super::inbound_sync`]): a change reaches the
//! backend of a VM that exists, as Azure applies NSG changes to running VMs.

use serde_json::Value;

use super::world::World;

use super::inbound_rules::{Access, InboundRules, NsgRules, Protocol, SecurityRule};

/// Azure's default inbound rules, present in every NSG.
fn default_rules() -> Vec<SecurityRule> {
    let rule = |name: &str, priority, access, source: &str| SecurityRule {
        name: name.to_owned(),
        priority,
        access,
        protocol: Protocol::Any,
        source_prefixes: vec![source.to_owned()],
        destination_ports: vec!["*".to_owned()],
    };
    vec![
        rule("AllowVnetInBound", 65000, Access::Allow, "VirtualNetwork"),
        rule(
            "AllowAzureLoadBalancerInBound",
            65001,
            Access::Allow,
            "AzureLoadBalancer",
        ),
        rule("DenyAllInBound", 65500, Access::Deny, "*"),
    ]
}

/// The singular property and the plural one together (ARM accepts either or both).
fn one_or_many(props: &Value, singular: &str, plural: &str) -> Vec<String> {
    let mut out: Vec<String> = props
        .get(singular)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .into_iter()
        .collect();
    if let Some(many) = props.get(plural).and_then(Value::as_array) {
        out.extend(many.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    out
}

/// An inbound rule from its ARM representation (`{ "name", "properties": { … } }`); `None`
/// for an outbound rule.
pub(crate) fn parse_rule(rule: &Value) -> Option<SecurityRule> {
    let props = rule.get("properties")?;
    let text = |k: &str| props.get(k).and_then(Value::as_str).unwrap_or("");
    if !text("direction").eq_ignore_ascii_case("Inbound") {
        return None;
    }
    let priority = props
        .get("priority")
        .and_then(|p| {
            p.as_u64()
                .or_else(|| p.as_str().and_then(|s| s.parse().ok()))
        })
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or(u32::MAX);
    Some(SecurityRule {
        name: rule
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        priority,
        access: if text("access").eq_ignore_ascii_case("Allow") {
            Access::Allow
        } else {
            Access::Deny
        },
        protocol: Protocol::parse(text("protocol")),
        source_prefixes: one_or_many(props, "sourceAddressPrefix", "sourceAddressPrefixes"),
        destination_ports: one_or_many(props, "destinationPortRange", "destinationPortRanges"),
    })
}

/// An NSG's inbound rules, its own then the defaults, by priority. A missing NSG (ARM would
/// have refused the reference) has the defaults only.
fn nsg_rules(w: &World, nsg_id: &str) -> NsgRules {
    let name = nsg_id.rsplit('/').next().unwrap_or(nsg_id).to_owned();
    let mut rules: Vec<SecurityRule> = w
        .get(nsg_id)
        .and_then(|n| n.body.pointer("/properties/securityRules"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(parse_rule).collect())
        .unwrap_or_default();
    rules.extend(default_rules());
    rules.sort_by_key(|r| r.priority);
    NsgRules { name, rules }
}

fn nsg_id(v: &Value) -> Option<&str> {
    v.pointer("/properties/networkSecurityGroup/id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The inbound rules in effect for NIC `nic_id` (its first IP configuration's subnet).
pub(crate) fn resolve(w: &World, nic_id: &str) -> InboundRules {
    let nic = w.get(nic_id);
    let subnet_id = nic
        .and_then(|n| {
            n.body
                .pointer("/properties/ipConfigurations/0/properties/subnet/id")
        })
        .and_then(Value::as_str)
        .unwrap_or("");
    let (vnet, subnet) = subnet_id
        .rsplit_once("/subnets/")
        .and_then(|(vnet_id, name)| {
            let vnet = w.get(vnet_id)?;
            let subnet = vnet
                .body
                .pointer("/properties/subnets")
                .and_then(Value::as_array)?
                .iter()
                .find(|s| {
                    s.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                });
            Some((Some(vnet), subnet))
        })
        .unwrap_or((None, None));
    let vnet_prefixes = vnet
        .and_then(|v| v.body.pointer("/properties/addressSpace/addressPrefixes"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let nsgs = [subnet.and_then(nsg_id), nic.and_then(|n| nsg_id(&n.body))]
        .into_iter()
        .flatten()
        .map(|id| nsg_rules(w, id))
        .collect();
    InboundRules {
        nsgs,
        vnet_prefixes,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::world::Res;

    const SUB: &str = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network";

    fn put(w: &mut World, id: &str, rtype: &str, body: Value) {
        w.res.insert(
            World::key(id),
            Res {
                id: id.to_owned(),
                rtype: rtype.to_owned(),
                name: id.rsplit('/').next().unwrap().to_owned(),
                group: "g".to_owned(),
                body,
                state: "Succeeded".to_owned(),
                created: String::new(),
                changed: String::new(),
                vm: None,
            },
        );
    }

    fn nsg(w: &mut World, name: &str, rules: Value) -> String {
        let id = format!("{SUB}/networkSecurityGroups/{name}");
        put(
            w,
            &id,
            "Microsoft.Network/networkSecurityGroups",
            json!({ "properties": { "securityRules": rules } }),
        );
        id
    }

    /// A VNet 10.0.0.0/16 (subnet NSG `subnet_nsg`) and a NIC in it (NSG `nic_nsg`).
    fn world(subnet_nsg: Option<&str>, nic_nsg: Option<&str>) -> World {
        let mut w = World::default();
        let vnet = format!("{SUB}/virtualNetworks/vnet");
        let mut subnet =
            json!({ "name": "default", "properties": { "addressPrefix": "10.0.1.0/24" } });
        if let Some(id) = subnet_nsg {
            subnet["properties"]["networkSecurityGroup"] = json!({ "id": id });
        }
        put(
            &mut w,
            &vnet,
            "Microsoft.Network/virtualNetworks",
            json!({ "properties": {
                "addressSpace": { "addressPrefixes": ["10.0.0.0/16", "10.1.0.0/16"] },
                "subnets": [subnet],
            }}),
        );
        let mut nic = json!({ "properties": { "ipConfigurations": [{ "name": "ipconfig1",
            "properties": { "subnet": { "id": format!("{vnet}/subnets/DEFAULT") } } }] } });
        if let Some(id) = nic_nsg {
            nic["properties"]["networkSecurityGroup"] = json!({ "id": id });
        }
        put(
            &mut w,
            &format!("{SUB}/networkInterfaces/nic"),
            "Microsoft.Network/networkInterfaces",
            nic,
        );
        w
    }

    fn nic() -> String {
        format!("{SUB}/networkInterfaces/nic")
    }

    fn names(n: &NsgRules) -> Vec<&str> {
        n.rules.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn singular_and_plural_properties_are_both_read_and_outbound_rules_skipped() {
        let single = parse_rule(&json!({ "name": "wg", "properties": {
            "priority": 1000, "direction": "Inbound", "access": "Allow", "protocol": "Udp",
            "sourceAddressPrefix": "*", "destinationPortRange": "51820" } }))
        .unwrap();
        assert_eq!(single.priority, 1000);
        assert_eq!(single.access, Access::Allow);
        assert_eq!(single.protocol, Protocol::Udp);
        assert_eq!(single.source_prefixes, ["*"]);
        assert_eq!(single.destination_ports, ["51820"]);
        let plural = parse_rule(&json!({ "name": "many", "properties": {
            "priority": 200, "direction": "inbound", "access": "Deny", "protocol": "*",
            "sourceAddressPrefix": "", "sourceAddressPrefixes": ["10.0.0.0/8", "192.0.2.7"],
            "destinationPortRanges": ["22", "1000-2000"] } }))
        .unwrap();
        assert_eq!(plural.access, Access::Deny);
        assert_eq!(plural.protocol, Protocol::Any);
        assert_eq!(plural.source_prefixes, ["10.0.0.0/8", "192.0.2.7"]);
        assert_eq!(plural.destination_ports, ["22", "1000-2000"]);
        assert!(
            parse_rule(&json!({ "name": "out", "properties": {
                "priority": 100, "direction": "Outbound", "access": "Allow", "protocol": "Tcp" } }))
            .is_none()
        );
    }

    #[test]
    fn a_subnet_nsg_alone_has_its_rules_then_the_defaults_by_priority() {
        let mut w = World::default();
        let id = nsg(
            &mut w,
            "sub-nsg",
            json!([
                { "name": "late", "properties": { "priority": 2000, "direction": "Inbound",
                  "access": "Deny", "protocol": "Tcp", "sourceAddressPrefix": "*",
                  "destinationPortRange": "22" } },
                { "name": "wg", "properties": { "priority": 1000, "direction": "Inbound",
                  "access": "Allow", "protocol": "Udp", "sourceAddressPrefix": "*",
                  "destinationPortRange": "51820" } },
                { "name": "out", "properties": { "priority": 100, "direction": "Outbound",
                  "access": "Allow", "protocol": "*", "sourceAddressPrefix": "*",
                  "destinationPortRange": "*" } },
            ]),
        );
        let w = {
            let mut base = world(Some(&id), None);
            base.res.extend(w.res);
            base
        };
        let r = resolve(&w, &nic());
        assert!(!r.allows_everything());
        assert_eq!(r.vnet_prefixes, ["10.0.0.0/16", "10.1.0.0/16"]);
        assert_eq!(r.nsgs.len(), 1);
        assert_eq!(r.nsgs[0].name, "sub-nsg");
        assert_eq!(
            names(&r.nsgs[0]),
            [
                "wg",
                "late",
                "AllowVnetInBound",
                "AllowAzureLoadBalancerInBound",
                "DenyAllInBound"
            ]
        );
        let deny_all = &r.nsgs[0].rules[4];
        assert_eq!(
            (deny_all.priority, deny_all.access, &deny_all.protocol),
            (65500, Access::Deny, &Protocol::Any)
        );
        assert_eq!(r.nsgs[0].rules[3].source_prefixes, ["AzureLoadBalancer"]);
    }

    #[test]
    fn a_nic_nsg_alone_and_both_in_azures_order() {
        let mut w = world(None, Some(&format!("{SUB}/networkSecurityGroups/nic-nsg")));
        nsg(
            &mut w,
            "nic-nsg",
            json!([{ "name": "ssh", "properties": { "priority": 300,
                "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
                "sourceAddressPrefixes": ["203.0.113.0/24"], "destinationPortRange": "22" } }]),
        );
        let r = resolve(&w, &nic());
        assert_eq!(r.nsgs.len(), 1);
        assert_eq!(r.nsgs[0].name, "nic-nsg");
        assert_eq!(names(&r.nsgs[0])[0], "ssh");

        let sub = nsg(&mut w, "sub-nsg", json!([]));
        let mut both = world(
            Some(&sub),
            Some(&format!("{SUB}/networkSecurityGroups/nic-nsg")),
        );
        both.res.extend(
            w.res
                .into_iter()
                .filter(|(_, r)| r.rtype.ends_with("networkSecurityGroups")),
        );
        let r = resolve(&both, &nic());
        let order: Vec<&str> = r.nsgs.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(order, ["sub-nsg", "nic-nsg"], "the subnet's NSG first");
        assert_eq!(r.nsgs[0].rules.len(), 3, "an empty NSG has the defaults");
    }

    #[test]
    fn no_nsg_anywhere_allows_everything() {
        let r = resolve(&world(None, None), &nic());
        assert!(r.allows_everything());
        assert!(r.nsgs.is_empty());
        assert_eq!(r.vnet_prefixes.len(), 2);
        assert!(resolve(&World::default(), "/no/such/nic").allows_everything());
    }
}
