//! SSH host keys: parsing, fingerprints, the pinning decision (pure) and `known_hosts` export.
//!
//! On first contact every host key the node has (rsa, ecdsa, ed25519, read from
//! `/etc/ssh/ssh_host_*.pub` over the session whose key was just seen) is pinned in its node
//! record, because k0sctl's SSH library negotiates a different algorithm than libssh2. Later
//! a key that differs from the pin is a hard error, except when the node's Azure `vmId`
//! changed and our own journal recorded that recreate.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, STANDARD_NO_PAD as B64_NOPAD};
use k0rdent_core::state::DeploymentState;
use k0rdent_core::state::{HostKeyRecord, StepRecord};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Where OpenSSH keeps a host's public keys.
pub const HOST_KEY_GLOB: &str = "/etc/ssh/ssh_host_*.pub";

/// The journal key (and node attribute) under which a deliberate VM recreate is recorded.
pub const VM_RECREATED: &str = "vm_recreated";

/// A public host key: algorithm and wire blob.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HostKey {
    algorithm: String,
    blob: Vec<u8>,
}

/// A host key that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an SSH public key: {0}")]
pub struct BadHostKey(pub String);

impl HostKey {
    /// From the wire blob (the algorithm is the blob's first string).
    ///
    /// # Errors
    /// [`BadHostKey`] if the blob is malformed.
    pub fn from_blob(blob: &[u8]) -> Result<Self, BadHostKey> {
        let len = blob
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| BadHostKey("blob too short".into()))?;
        let name = blob
            .get(4..4 + len)
            .ok_or_else(|| BadHostKey("truncated algorithm name".into()))?;
        let algorithm = std::str::from_utf8(name)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|c| c.is_ascii_graphic()))
            .ok_or_else(|| BadHostKey("unreadable algorithm name".into()))?;
        Ok(HostKey {
            algorithm: algorithm.to_owned(),
            blob: blob.to_vec(),
        })
    }

    /// From an OpenSSH public key line (`ssh-ed25519 AAAA… comment`).
    ///
    /// # Errors
    /// [`BadHostKey`] if the line is not a key or its declared and embedded algorithms differ.
    pub fn from_openssh(line: &str) -> Result<Self, BadHostKey> {
        let mut parts = line.split_whitespace();
        let (Some(alg), Some(b64)) = (parts.next(), parts.next()) else {
            return Err(BadHostKey(format!("{line:?} has fewer than two fields")));
        };
        let blob = B64
            .decode(b64)
            .map_err(|_| BadHostKey(format!("{alg} key is not base64")))?;
        let key = Self::from_blob(&blob)?;
        if key.algorithm != alg {
            return Err(BadHostKey(format!(
                "declared {alg} but the key is {}",
                key.algorithm
            )));
        }
        Ok(key)
    }

    /// From a pinned record.
    ///
    /// # Errors
    /// [`BadHostKey`].
    pub fn from_record(r: &HostKeyRecord) -> Result<Self, BadHostKey> {
        Self::from_openssh(&format!("{} {}", r.algorithm, r.key))
    }

    /// As a pinned record.
    pub fn to_record(&self) -> HostKeyRecord {
        HostKeyRecord {
            algorithm: self.algorithm.clone(),
            key: B64.encode(&self.blob),
        }
    }

    /// Algorithm as OpenSSH names it (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`).
    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }

    /// The key in SSH wire format (what `known_hosts` holds in base64).
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    /// `SHA256:…` as `ssh-keygen -lf` prints it.
    pub fn fingerprint(&self) -> String {
        format!("SHA256:{}", B64_NOPAD.encode(Sha256::digest(&self.blob)))
    }
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostKey({} {})", self.algorithm, self.fingerprint())
    }
}

impl fmt::Display for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.algorithm, self.fingerprint())
    }
}

/// Parses the concatenated `ssh_host_*.pub` files; lines that are not keys are skipped.
pub fn parse_host_key_files(text: &str) -> Vec<HostKey> {
    let mut keys: Vec<HostKey> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Ok(k) = HostKey::from_openssh(line)
            && !keys.contains(&k)
        {
            keys.push(k);
        }
    }
    keys
}

/// The libssh2 host-key method list that makes the server present one of `algorithms`, most
/// preferred first (ed25519, ecdsa, rsa with SHA-2 signatures).
pub fn hostkey_method_pref<'a>(algorithms: impl IntoIterator<Item = &'a str>) -> String {
    const ORDER: [&str; 5] = [
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "ssh-rsa",
    ];
    let have: Vec<&str> = algorithms.into_iter().collect();
    let mut methods = Vec::new();
    for alg in ORDER.iter().filter(|a| have.contains(a)) {
        if *alg == "ssh-rsa" {
            methods.extend(["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]);
        } else {
            methods.push(alg);
        }
    }
    methods.join(",")
}

/// A VM recreate our own deployment performed and journaled (written by the Azure steps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub struct RecordedRecreate {
    pub node: String,
    /// The `vmId` of the VM that was deleted.
    pub old_vm_id: String,
    /// The `vmId` of its replacement, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_vm_id: Option<String>,
}

/// Every recreate of `node` recorded in the state: journal entries keyed [`VM_RECREATED`] in
/// any step record, and the node attribute [`VM_RECREATED`] (one record or a list), which
/// outlives the journal (journals are cleared when a step completes).
pub fn recorded_recreates(state: &DeploymentState, node: &str) -> Vec<RecordedRecreate> {
    fn walk(rec: &StepRecord, node: &str, out: &mut Vec<RecordedRecreate>) {
        for e in rec
            .journal
            .entries()
            .iter()
            .filter(|e| e.key == VM_RECREATED)
        {
            if let Ok(r) = serde_json::from_value::<RecordedRecreate>(e.value.clone())
                && r.node == node
            {
                out.push(r);
            }
        }
        for item in rec.items.values() {
            walk(item, node, out);
        }
    }
    let mut out = Vec::new();
    for rec in state.phases.values() {
        walk(rec, node, &mut out);
    }
    if let Some(v) = state
        .nodes
        .get(node)
        .and_then(|n| n.attributes.get(VM_RECREATED))
    {
        let list = match v {
            serde_json::Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        for item in list {
            if let Ok(mut r) =
                serde_json::from_value::<RecordedRecreate>(item.clone()).or_else(|_| {
                    serde_json::from_value::<AttrRecreate>(item).map(|a| RecordedRecreate {
                        node: node.to_owned(),
                        old_vm_id: a.old_vm_id,
                        new_vm_id: a.new_vm_id,
                    })
                })
            {
                r.node = node.to_owned();
                out.push(r);
            }
        }
    }
    out
}

#[derive(Deserialize)]
struct AttrRecreate {
    old_vm_id: String,
    #[serde(default)]
    new_vm_id: Option<String>,
}

/// What is pinned for a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinnedHost {
    /// Pinned keys (empty: never contacted).
    pub keys: Vec<HostKeyRecord>,
    /// The `vmId` the keys were pinned for.
    pub vm_id: Option<String>,
    /// Recreates recorded for this node.
    pub recreates: Vec<RecordedRecreate>,
}

/// The pinning decision for the key a server presented.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub enum PinDecision {
    /// Matches a pinned key.
    Match,
    /// Nothing pinned yet: pin all of the host's keys.
    FirstContact,
    /// Differs, but the VM was recreated by us (journaled): pin the new keys.
    Repin {
        old_vm_id: String,
        new_vm_id: String,
    },
    /// Differs, and no recorded recreate explains it: refuse (a possible man in the middle).
    Changed {
        /// The pinned key of the same algorithm, if any.
        pinned: Option<String>,
    },
}

/// Decides what to do with the key `offered` by a host whose current Azure `vmId` is
/// `current_vm_id`. Pure.
pub fn decide(pin: &PinnedHost, offered: &HostKey, current_vm_id: Option<&str>) -> PinDecision {
    if pin.keys.is_empty() {
        return PinDecision::FirstContact;
    }
    let offered_rec = offered.to_record();
    if pin.keys.contains(&offered_rec) {
        return PinDecision::Match;
    }
    if let (Some(old), Some(new)) = (pin.vm_id.as_deref(), current_vm_id)
        && old != new
        && pin
            .recreates
            .iter()
            .any(|r| r.old_vm_id == old && r.new_vm_id.as_deref().is_none_or(|n| n == new))
    {
        return PinDecision::Repin {
            old_vm_id: old.to_owned(),
            new_vm_id: new.to_owned(),
        };
    }
    let pinned = pin
        .keys
        .iter()
        .find(|k| k.algorithm == offered.algorithm)
        .and_then(|k| HostKey::from_record(k).ok())
        .map(|k| k.fingerprint());
    PinDecision::Changed { pinned }
}

/// The `known_hosts` host field: `host` for port 22, `[host]:port` otherwise.
pub fn known_hosts_host(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Renders `known_hosts` lines for hosts and their pinned keys.
pub fn render_known_hosts<'a>(
    entries: impl IntoIterator<Item = (String, u16, &'a [HostKeyRecord])>,
) -> String {
    let mut out = String::new();
    for (host, port, keys) in entries {
        let h = known_hosts_host(&host, port);
        for k in keys {
            out.push_str(&format!("{h} {} {}\n", k.algorithm, k.key));
        }
    }
    out
}

/// `known_hosts` for every node with pinned keys, addressed by tunnel IP and `port` (what
/// k0sctl connects to), for `SSH_KNOWN_HOSTS`.
pub fn known_hosts_from_state(state: &DeploymentState, port: u16) -> String {
    let mut out = String::from("# written by k0rdent from the pinned host keys; do not edit\n");
    out.push_str(&render_known_hosts(state.nodes.values().filter_map(|n| {
        let ip = n.tunnel_ip?;
        (!n.ssh_host_keys.is_empty()).then(|| (ip.to_string(), port, n.ssh_host_keys.as_slice()))
    })));
    out
}

/// Writes [`known_hosts_from_state`] to the store's `known_hosts` and returns its path.
///
/// # Errors
/// The store's I/O error naming the file.
pub fn write_known_hosts(
    store: &k0rdent_core::FileStore,
    state: &DeploymentState,
) -> Result<std::path::PathBuf, k0rdent_core::store::StoreError> {
    store.write_file(
        "known_hosts",
        known_hosts_from_state(state, 22).as_bytes(),
        0o600,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k0rdent_core::state::NodeRecord;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPuw2IcahBgiaywNzYHuzHaE0yf4P1gxgDNmmYa5s/V+ host";
    const ED2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMmE5xqZ4kWM30GJXwYFxTiuOtXGkYBDMqSAleQmveiX other";

    fn key(line: &str) -> HostKey {
        HostKey::from_openssh(line).unwrap()
    }

    #[test]
    fn keys_parse_and_fingerprint_like_ssh_keygen() {
        let k = key(ED);
        assert_eq!(k.algorithm(), "ssh-ed25519");
        // ssh-keygen -lf of that line.
        assert_eq!(
            k.fingerprint(),
            "SHA256:6KZkuTpeI+JhA4qOisDZdZ0GfNXbIqsZoBX0zm+TjuE"
        );
        assert_eq!(HostKey::from_record(&k.to_record()).unwrap(), k);
        assert!(
            HostKey::from_openssh(
                "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIPuw2IcahBgiaywNzYHuzHaE0yf4P1gxgDNmmYa5s/V+"
            )
            .is_err()
        );
        assert!(HostKey::from_openssh("garbage").is_err());
        assert!(HostKey::from_blob(&[0, 0, 0, 9, b'x']).is_err());
    }

    #[test]
    fn host_key_files_parse_skipping_noise() {
        let text = format!("{ED}\n\ncat: /etc/ssh/x.pub: No such file\n{ED2}\n{ED}\n");
        assert_eq!(parse_host_key_files(&text).len(), 2);
    }

    #[test]
    fn pinning_decisions() {
        let pin = PinnedHost {
            keys: vec![key(ED).to_record()],
            vm_id: Some("vm-a".into()),
            recreates: vec![],
        };
        assert_eq!(
            decide(&PinnedHost::default(), &key(ED), None),
            PinDecision::FirstContact
        );
        assert_eq!(decide(&pin, &key(ED), Some("vm-a")), PinDecision::Match);
        let changed = decide(&pin, &key(ED2), Some("vm-a"));
        assert_eq!(
            changed,
            PinDecision::Changed {
                pinned: Some(key(ED).fingerprint())
            }
        );
        // A changed vmId alone is not enough: the recreate must be journaled.
        assert!(matches!(
            decide(&pin, &key(ED2), Some("vm-b")),
            PinDecision::Changed { .. }
        ));
        let journaled = PinnedHost {
            recreates: vec![RecordedRecreate {
                node: "n".into(),
                old_vm_id: "vm-a".into(),
                new_vm_id: None,
            }],
            ..pin.clone()
        };
        assert_eq!(
            decide(&journaled, &key(ED2), Some("vm-b")),
            PinDecision::Repin {
                old_vm_id: "vm-a".into(),
                new_vm_id: "vm-b".into()
            }
        );
        // Same vmId (nobody recreated it): still a hard error.
        assert!(matches!(
            decide(&journaled, &key(ED2), Some("vm-a")),
            PinDecision::Changed { .. }
        ));
        // A recreate journaled towards another VM does not count.
        let other = PinnedHost {
            recreates: vec![RecordedRecreate {
                node: "n".into(),
                old_vm_id: "vm-a".into(),
                new_vm_id: Some("vm-c".into()),
            }],
            ..pin
        };
        assert!(matches!(
            decide(&other, &key(ED2), Some("vm-b")),
            PinDecision::Changed { .. }
        ));
    }

    #[test]
    fn recreates_are_found_in_journals_and_node_attributes() {
        let mut st = DeploymentState::default();
        let id = k0rdent_core::StepId::parse("create_vms/n1").unwrap();
        st.record_mut(&id)
            .journal
            .0
            .push(k0rdent_core::state::JournalEntry {
                at: chrono::Utc::now(),
                key: VM_RECREATED.into(),
                value: serde_json::json!({"node": "n1", "old_vm_id": "a"}),
            });
        let mut rec = NodeRecord::default();
        rec.attributes.insert(
            VM_RECREATED.into(),
            serde_json::json!([{"old_vm_id": "b", "new_vm_id": "c"}]),
        );
        st.nodes.insert("n1".into(), rec);
        let r = recorded_recreates(&st, "n1");
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].new_vm_id.as_deref(), Some("c"));
        assert!(recorded_recreates(&st, "n2").is_empty());
    }

    #[test]
    fn method_preferences_follow_the_pinned_algorithms() {
        assert_eq!(
            hostkey_method_pref(["ssh-rsa", "ssh-ed25519"]),
            "ssh-ed25519,rsa-sha2-512,rsa-sha2-256,ssh-rsa"
        );
        assert_eq!(
            hostkey_method_pref(["ecdsa-sha2-nistp256"]),
            "ecdsa-sha2-nistp256"
        );
    }

    #[test]
    fn known_hosts_use_bracketed_hosts_for_other_ports() {
        let recs = [key(ED).to_record()];
        let text = render_known_hosts([("127.0.0.1".to_owned(), 2222, &recs[..])]);
        assert!(
            text.starts_with("[127.0.0.1]:2222 ssh-ed25519 AAAAC3"),
            "{text}"
        );
        let text = render_known_hosts([("172.24.24.11".to_owned(), 22, &recs[..])]);
        assert!(text.starts_with("172.24.24.11 ssh-ed25519 "), "{text}");
    }
}
