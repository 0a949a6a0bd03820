//! Responses and small request helpers.

use serde_json::{Value, json};

/// A response to send.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Option<Value>,
    pub(crate) headers: Vec<(String, String)>,
    /// A non-JSON body (an HTML page from Azure's front end).
    pub(crate) html: Option<String>,
}

impl Reply {
    pub(crate) fn json(status: u16, body: Value) -> Self {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
            html: None,
        }
    }

    pub(crate) fn html(status: u16, page: impl Into<String>) -> Self {
        Reply {
            status,
            body: None,
            headers: Vec::new(),
            html: Some(page.into()),
        }
    }

    pub(crate) fn empty(status: u16) -> Self {
        Reply {
            status,
            body: None,
            headers: Vec::new(),
            html: None,
        }
    }

    pub(crate) fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_owned(), v.into()));
        self
    }
}

/// An ARM error response.
pub(crate) fn err(status: u16, code: &str, message: impl Into<String>) -> Reply {
    Reply::json(
        status,
        json!({ "error": { "code": code, "message": message.into() } }),
    )
}

/// The 404 ARM answers for anything under a resource group that does not exist.
pub(crate) fn group_not_found(group: &str) -> Reply {
    err(
        404,
        "ResourceGroupNotFound",
        format!("Resource group '{group}' could not be found."),
    )
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Query(pub(crate) Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(q: &str) -> Self {
        Query(
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    }

    /// The query without paging and api-version (to carry into nextLink).
    pub(crate) fn carry(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(k, _)| {
                !k.eq_ignore_ascii_case("$skiptoken") && !k.eq_ignore_ascii_case("api-version")
            })
            .cloned()
            .collect()
    }
}

/// Checks `api-version` against the versions a resource type accepts.
pub(crate) fn check_api(q: &Query, allowed: &[&str]) -> Result<(), Reply> {
    match q.get("api-version") {
        None => Err(err(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )),
        Some(v) if allowed.contains(&v) => Ok(()),
        Some(v) => Err(err(
            400,
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{v}' is invalid. The supported versions are '{}'.",
                allowed.join(",")
            ),
        )),
    }
}

/// ARM resource type names, as ARM spells them in ids and `type` (the emulator's own; it must
/// be able to disagree with the client).
pub(crate) mod types {
    pub(crate) const VM: &str = "Microsoft.Compute/virtualMachines";
    pub(crate) const DISK: &str = "Microsoft.Compute/disks";
    pub(crate) const NIC: &str = "Microsoft.Network/networkInterfaces";
    pub(crate) const PUBLIC_IP: &str = "Microsoft.Network/publicIPAddresses";
    pub(crate) const VNET: &str = "Microsoft.Network/virtualNetworks";
    pub(crate) const NSG: &str = "Microsoft.Network/networkSecurityGroups";
}

/// Whether a provisioning state is terminal (ARM: `Succeeded`, `Failed`, `Canceled`; an
/// absent one counts as `Succeeded`).
pub(crate) fn terminal(state: &str) -> bool {
    state.is_empty()
        || ["Succeeded", "Failed", "Canceled"]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(state))
}

/// A random GUID (request ids, operation ids, vmIds).
pub(crate) fn guid() -> String {
    let a = fastrand::u64(..);
    let b = fastrand::u64(..);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// The api-versions accepted per area.
pub(crate) mod versions {
    pub(crate) const RESOURCES: &[&str] = &["2021-04-01", "2022-09-01", "2024-03-01"];
    pub(crate) const SUBSCRIPTIONS: &[&str] = &["2022-12-01", "2020-01-01"];
    pub(crate) const COMPUTE: &[&str] = &["2024-07-01", "2024-03-01", "2023-09-01"];
    pub(crate) const DISKS: &[&str] = &["2024-03-02", "2023-10-02"];
    pub(crate) const SKUS: &[&str] = &["2021-07-01", "2019-04-01"];
    pub(crate) const NETWORK: &[&str] = &["2024-05-01", "2024-03-01", "2023-11-01"];

    pub(crate) fn for_type(rtype: &str) -> &'static [&'static str] {
        let t = rtype.to_ascii_lowercase();
        if t == "microsoft.compute/disks" {
            DISKS
        } else if t.starts_with("microsoft.compute/") {
            COMPUTE
        } else if t.starts_with("microsoft.network/") {
            NETWORK
        } else {
            RESOURCES
        }
    }
}

/// One page of `items` starting at `$skiptoken`, with a nextLink carrying the other parameters.
pub(crate) fn page(base: &str, path: &str, q: &Query, items: Vec<Value>, size: usize) -> Reply {
    let start: usize = q
        .get("$skiptoken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let size = size.max(1);
    let end = (start + size).min(items.len());
    let value: Vec<Value> = items
        .get(start..end)
        .map(<[Value]>::to_vec)
        .unwrap_or_default();
    let mut body = json!({ "value": value });
    if end < items.len() {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        if let Some(v) = q.get("api-version") {
            ser.append_pair("api-version", v);
        }
        for (k, v) in q.carry() {
            ser.append_pair(&k, &v);
        }
        ser.append_pair("$skiptoken", &end.to_string());
        body["nextLink"] = json!(format!("{base}{path}?{}", ser.finish()));
    }
    Reply::json(200, body)
}
