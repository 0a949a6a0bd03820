//! The inbound security rules in effect for a VM's NIC, as the emulator hands them to its
//! backend (the `effective_rules` module resolves them from the stored resources).

/// Whether a rule lets a packet in or drops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `"Allow"`.
    Allow,
    /// `"Deny"`.
    Deny,
}

/// The protocol a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// `"Tcp"`.
    Tcp,
    /// `"Udp"`.
    Udp,
    /// `"Icmp"`.
    Icmp,
    /// `"*"` (Azure's "Any": TCP, UDP and ICMP).
    Any,
    /// Any other value ARM accepts (`"Esp"`, `"Ah"`), as written.
    Other(String),
}

impl Protocol {
    pub(crate) fn parse(s: &str) -> Protocol {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "icmp" => Protocol::Icmp,
            "*" | "any" => Protocol::Any,
            _ => Protocol::Other(s.to_owned()),
        }
    }
}

/// One inbound security rule. Destination addresses are not kept: every packet reaching the
/// NIC is for the VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityRule {
    /// The rule's name (`AllowVnetInBound` for a default rule).
    pub name: String,
    /// Lower is evaluated first (100–4096 for a user's rule, 65000+ for the defaults).
    pub priority: u32,
    /// Allow or deny.
    pub access: Access,
    /// The protocol it matches.
    pub protocol: Protocol,
    /// Source address prefixes as written: `"*"`, a service tag (`"VirtualNetwork"`,
    /// `"AzureLoadBalancer"`, `"Internet"`), a CIDR or an address; from
    /// `sourceAddressPrefix` and `sourceAddressPrefixes` together.
    pub source_prefixes: Vec<String>,
    /// Destination port ranges as written: `"*"`, `"22"`, `"1000-2000"`; from
    /// `destinationPortRange` and `destinationPortRanges` together.
    pub destination_ports: Vec<String>,
}

/// One NSG's inbound rules, in priority order, its own followed by Azure's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsgRules {
    /// The NSG's name.
    pub name: String,
    /// Its inbound rules, lowest priority number first.
    pub rules: Vec<SecurityRule>,
}

/// The inbound rules in effect for a VM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundRules {
    /// The NSGs a packet must pass, in evaluation order (the subnet's, then the NIC's);
    /// empty when neither has one, and then everything is allowed.
    pub nsgs: Vec<NsgRules>,
    /// The address prefixes of the NIC's VNet (what the `VirtualNetwork` tag stands for).
    pub vnet_prefixes: Vec<String>,
}

impl InboundRules {
    /// Whether no NSG filters the VM's traffic (Azure lets everything in).
    pub fn allows_everything(&self) -> bool {
        self.nsgs.is_empty()
    }
}
