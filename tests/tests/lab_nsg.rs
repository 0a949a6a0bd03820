//! The lab's Azure NSG (`lab::vm_backend::nsg`): the nftables ruleset built from the inbound
//! rules the emulator hands the backend, checked as text, by `nft -c`, and for real in a
//! namespace (what the NSG allows connects, what it denies times out and is counted, the
//! first matching rule by priority decides, every NSG must allow, loopback is not filtered).
//! The nft tests need root, as the lab does.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use k0rdent_arm_emulator::{Access, InboundRules, NsgRules, Protocol, SecurityRule};
use k0rdent_tests::lab::{self, cmd, netns, slot::Slot, vm_backend::nsg};

fn rule(
    name: &str,
    priority: u32,
    access: Access,
    protocol: Protocol,
    sources: &[&str],
    ports: &[&str],
) -> SecurityRule {
    SecurityRule {
        name: name.to_owned(),
        priority,
        access,
        protocol,
        source_prefixes: sources.iter().map(|s| (*s).to_owned()).collect(),
        destination_ports: ports.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// An NSG with `own` rules followed by Azure's default inbound rules.
fn nsg_with_defaults(name: &str, own: Vec<SecurityRule>) -> NsgRules {
    let mut rules = own;
    rules.extend([
        rule(
            "AllowVnetInBound",
            65000,
            Access::Allow,
            Protocol::Any,
            &["VirtualNetwork"],
            &["*"],
        ),
        rule(
            "AllowAzureLoadBalancerInBound",
            65001,
            Access::Allow,
            Protocol::Any,
            &["AzureLoadBalancer"],
            &["*"],
        ),
        rule(
            "DenyAllInBound",
            65500,
            Access::Deny,
            Protocol::Any,
            &["*"],
            &["*"],
        ),
    ]);
    NsgRules {
        name: name.to_owned(),
        rules,
    }
}

/// What `k0rdent-azure` creates: the subnet's NSG lets UDP to the WireGuard port in.
fn deployment_nsg() -> InboundRules {
    InboundRules {
        nsgs: vec![nsg_with_defaults(
            "k0rdent-x-nsg",
            vec![rule(
                "AllowWireGuard",
                1000,
                Access::Allow,
                Protocol::Udp,
                &["*"],
                &["51820"],
            )],
        )],
        vnet_prefixes: vec!["10.240.0.0/16".to_owned()],
    }
}

/// Two NSGs, singular and plural properties, IPv4 and IPv6 sources, rules out of order.
fn two_nsgs() -> InboundRules {
    InboundRules {
        nsgs: vec![
            nsg_with_defaults(
                "subnet-nsg",
                vec![
                    rule(
                        "Late",
                        3000,
                        Access::Allow,
                        Protocol::Any,
                        &["Internet"],
                        &["8000-8100", "9000"],
                    ),
                    rule(
                        "Mixed",
                        200,
                        Access::Deny,
                        Protocol::Tcp,
                        &["192.0.2.7", "2001:db8::/32", "198.51.100.0/24"],
                        &["22"],
                    ),
                ],
            ),
            nsg_with_defaults(
                "nic-nsg",
                vec![rule(
                    "Ping",
                    100,
                    Access::Allow,
                    Protocol::Icmp,
                    &["*"],
                    &["*"],
                )],
            ),
        ],
        vnet_prefixes: vec!["10.0.0.0/16".to_owned(), "fd00::/48".to_owned()],
    }
}

#[test]
fn the_deployments_nsg_becomes_this_ruleset() {
    let expected = "\
# The Azure NSGs in effect for this VM's NIC, generated from the emulator's resources.
add table inet azure_nsg
delete table inet azure_nsg
table inet azure_nsg {
\tcounter dropped {
\t}
\t# NSG k0rdent-x-nsg (evaluated 1 of 1)
\tchain nsg0 {
\t\tudp dport { 51820 } return comment \"AllowWireGuard priority 1000\"
\t\tip saddr { 10.240.0.0/16 } meta l4proto { tcp, udp, icmp, ipv6-icmp } return comment \"AllowVnetInBound priority 65000\"
\t\tip saddr { 168.63.129.16/32 } meta l4proto { tcp, udp, icmp, ipv6-icmp } return comment \"AllowAzureLoadBalancerInBound priority 65001\"
\t\tmeta l4proto { tcp, udp, icmp, ipv6-icmp } counter name dropped drop comment \"DenyAllInBound priority 65500\"
\t}
\tchain input {
\t\ttype filter hook input priority 0; policy accept;
\t\tiifname != \"eth0\" accept
\t\tct state established,related accept
\t\tjump nsg0
\t}
}
";
    assert_eq!(nsg::ruleset(&deployment_nsg()), expected);
}

#[test]
fn nsgs_are_chained_subnet_first_and_rules_sorted_by_priority() {
    let text = nsg::ruleset(&two_nsgs());
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in\n{text}"))
    };
    assert!(at("NSG subnet-nsg (evaluated 1 of 2)") < at("NSG nic-nsg (evaluated 2 of 2)"));
    assert!(at("jump nsg0") < at("jump nsg1"));
    assert!(at("ct state established,related accept") < at("jump nsg0"));
    assert!(at("iifname != \"eth0\" accept") < at("ct state"));
    // Priority 200 before 3000 although listed after it; one line per address family.
    assert!(at("\"Mixed priority 200\"") < at("\"Late priority 3000\""));
    assert!(lines.contains(
        &"ip saddr { 192.0.2.7/32, 198.51.100.0/24 } tcp dport { 22 } counter name dropped drop comment \"Mixed priority 200\""
    ));
    assert!(lines.contains(
        &"ip6 saddr { 2001:db8::/32 } tcp dport { 22 } counter name dropped drop comment \"Mixed priority 200\""
    ));
    // Internet is any source; protocol * with ports is TCP and UDP to them.
    assert!(lines.contains(
        &"meta l4proto { tcp, udp } th dport { 8000-8100, 9000 } return comment \"Late priority 3000\""
    ));
    assert!(
        lines.contains(&"meta l4proto { icmp, ipv6-icmp } return comment \"Ping priority 100\"")
    );
    // VirtualNetwork: the VNet's prefixes, per family.
    assert!(lines.contains(
        &"ip6 saddr { fd00::/48 } meta l4proto { tcp, udp, icmp, ipv6-icmp } return comment \"AllowVnetInBound priority 65000\""
    ));
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("DenyAllInBound"))
            .count(),
        2,
        "each NSG ends with its own DenyAllInBound"
    );
}

#[test]
fn no_nsg_filters_nothing_but_still_has_the_counter() {
    let text = nsg::ruleset(&InboundRules::default());
    assert!(text.contains("counter dropped"));
    assert!(!text.contains("jump"), "{text}");
    assert!(!text.contains("counter name dropped drop"), "{text}");
}

#[test]
#[should_panic(expected = "\"Storage.WestEurope\"")]
fn an_unknown_service_tag_panics_naming_it() {
    let mut rules = deployment_nsg();
    rules.nsgs[0].rules.push(rule(
        "Odd",
        500,
        Access::Allow,
        Protocol::Tcp,
        &["Storage.WestEurope"],
        &["443"],
    ));
    nsg::ruleset(&rules);
}

#[test]
fn nft_accepts_every_generated_ruleset() {
    lab::require_lab();
    for (what, rules) in [
        ("deployment", deployment_nsg()),
        ("two NSGs", two_nsgs()),
        ("no NSG", InboundRules::default()),
    ] {
        let text = nsg::ruleset(&rules);
        nsg::check(&text).unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
    }
}

fn connects(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// A namespace with the link of a lab node, listeners on ports 22 and 2222–2224, and two NSGs:
/// the subnet's allows 2222 from anywhere, denies 2223 from the host's address at priority
/// 100 before allowing it at 200, and allows 2224; the NIC's allows 2222 and 2223 only.
#[test]
fn in_a_namespace_allowed_ports_connect_denied_ones_are_dropped_and_counted() {
    lab::require_lab();
    let slot = Slot::acquire();
    netns::create_node_namespace(&slot, 0);
    let ns = slot.netns(0);
    let host = format!("{}/32", slot.host_ip(0));
    let allow = |name: &str, priority, port: &str| {
        rule(
            name,
            priority,
            Access::Allow,
            Protocol::Tcp,
            &["*"],
            &[port],
        )
    };
    let rules = InboundRules {
        nsgs: vec![
            nsg_with_defaults(
                "subnet-nsg",
                vec![
                    allow("Open", 300, "2222"),
                    rule(
                        "DenyHost",
                        100,
                        Access::Deny,
                        Protocol::Tcp,
                        &[&host],
                        &["2223"],
                    ),
                    allow("AllowLater", 200, "2223"),
                    allow("SubnetOnly", 400, "2224"),
                ],
            ),
            nsg_with_defaults("nic-nsg", vec![allow("Open", 300, "2222-2223")]),
        ],
        vnet_prefixes: vec!["10.0.0.0/16".to_owned()],
    };
    nsg::apply(&ns, &rules);
    let listeners = [22, 2222, 2223, 2224]
        .map(|p| netns::bind_in(&ns, SocketAddr::new([0, 0, 0, 0].into(), p)));
    let node = IpAddr::V4(slot.node_ip(0));
    let before = nsg::dropped(&ns);
    assert!(
        connects(SocketAddr::new(node, 2222)),
        "allowed by both NSGs"
    );
    for (port, why) in [
        (22, "DenyAllInBound"),
        (2223, "a deny at a lower priority number wins"),
        (2224, "allowed by the subnet's NSG only"),
    ] {
        let started = Instant::now();
        assert!(!connects(SocketAddr::new(node, port)), "{port}: {why}");
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{port}: dropped (a timeout), not refused"
        );
    }
    let after = nsg::dropped(&ns);
    assert!(
        after >= before + 3,
        "three connections dropped: {before} → {after}"
    );
    // Inside the VM, to its own address (over lo): the NSG never sees it.
    cmd::run(
        "ip",
        &[
            "netns",
            "exec",
            &ns,
            "timeout",
            "2",
            "bash",
            "-c",
            &format!("exec 3<>/dev/tcp/{node}/22"),
        ],
    );
    assert_eq!(nsg::dropped(&ns), after);
    eprintln!("NSG drops in the namespace: {before} → {after}");
    drop(listeners);
    cmd::run("ip", &["netns", "del", &ns]);
    slot.sweep();
}
