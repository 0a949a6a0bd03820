//! The resources the fake API serves, described once so discovery, routing, the store and the
//! table printer agree on names, kinds and scope.

/// A resource type the fake API server knows. Anything else answers 404 like an API server
/// without that resource installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// Core `v1` `Node`, cluster-scoped; kubelets report readiness in `status.conditions`.
    Nodes,
    /// Core `v1` `Namespace`, cluster-scoped; namespaced objects need theirs to exist.
    Namespaces,
    /// Core `v1` `Secret`, namespaced; Helm 3's default storage driver keeps releases here.
    Secrets,
    /// `k0rdent.mirantis.com/v1beta1` `Management`, cluster-scoped; kcm's readiness signal.
    Managements,
    /// `k0rdent.mirantis.com/v1beta1` `Release`, cluster-scoped; one per k0rdent version.
    Releases,
}

/// The API group of k0rdent's custom resources.
pub const K0RDENT_GROUP: &str = "k0rdent.mirantis.com";
/// The served version of k0rdent's custom resources.
pub const K0RDENT_VERSION: &str = "v1beta1";

/// Static facts about one resource, as discovery documents publish them.
#[derive(Debug, Clone, Copy)]
pub struct ResourceDef {
    /// API group; empty for the core (legacy) group.
    pub group: &'static str,
    /// API version inside the group.
    pub version: &'static str,
    /// Plural name used in URLs.
    pub plural: &'static str,
    /// Singular name kubectl accepts (`kubectl get node`).
    pub singular: &'static str,
    /// Kind of a single object.
    pub kind: &'static str,
    /// Whether objects live inside a namespace.
    pub namespaced: bool,
    /// Short names kubectl accepts (`no`, `ns`).
    pub short_names: &'static [&'static str],
    /// Whether the resource has a `status` subresource (spec and status written separately).
    pub status_subresource: bool,
    /// Whether `metadata.generation` is maintained (custom resources: bumped on spec changes).
    pub has_generation: bool,
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl Resource {
    /// Every served resource, in discovery order.
    pub const ALL: [Resource; 5] = [
        Resource::Namespaces,
        Resource::Nodes,
        Resource::Secrets,
        Resource::Managements,
        Resource::Releases,
    ];

    /// The resource's static description.
    pub fn def(self) -> ResourceDef {
        let core =
            |plural, singular, kind, namespaced, short_names, status_subresource| ResourceDef {
                group: "",
                version: "v1",
                plural,
                singular,
                kind,
                namespaced,
                short_names,
                status_subresource,
                has_generation: false,
            };
        let k0rdent = |plural, singular, kind| ResourceDef {
            group: K0RDENT_GROUP,
            version: K0RDENT_VERSION,
            plural,
            singular,
            kind,
            namespaced: false,
            short_names: &[],
            status_subresource: true,
            has_generation: true,
        };
        match self {
            Resource::Nodes => core("nodes", "node", "Node", false, &["no"], true),
            Resource::Namespaces => {
                core("namespaces", "namespace", "Namespace", false, &["ns"], true)
            }
            Resource::Secrets => core("secrets", "secret", "Secret", true, &[], false),
            Resource::Managements => k0rdent("managements", "management", "Management"),
            Resource::Releases => k0rdent("releases", "release", "Release"),
        }
    }

    /// The resource served at `plural` in `group`/`version`, if any.
    pub fn find(group: &str, version: &str, plural: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| {
            let d = r.def();
            d.group == group && d.version == version && d.plural == plural
        })
    }

    /// The verbs discovery advertises (kubectl checks for `list`/`get` before using a resource).
    pub fn verbs(self) -> &'static [&'static str] {
        VERBS
    }
}

impl ResourceDef {
    /// `apiVersion` of objects of this resource (`v1`, `k0rdent.mirantis.com/v1beta1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The qualified resource name errors use (`nodes`, `managements.k0rdent.mirantis.com`).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// The API groups served, with their versions, in discovery order (core group excluded).
pub(crate) fn named_groups() -> Vec<(&'static str, &'static str)> {
    vec![(K0RDENT_GROUP, K0RDENT_VERSION)]
}

/// The resources of one group/version.
pub(crate) fn in_group(group: &str, version: &str) -> Vec<Resource> {
    Resource::ALL
        .into_iter()
        .filter(|r| r.def().group == group && r.def().version == version)
        .collect()
}
