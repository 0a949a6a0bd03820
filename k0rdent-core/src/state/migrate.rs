//! Parsing a state document: schema detection, refusal of newer schemas and migration of
//! older ones (schema 0 is the Bash tool's `deployment-state.yaml`).

use chrono::{DateTime, Utc};
use serde_yaml::Value;

use super::{ConfigRecord, DeploymentState, NodeRecord, SCHEMA_VERSION, Status, StepRecord, keys};
use crate::secret::Secret;

/// A private key found in a legacy state file; the store moves it into its key directory.
#[derive(Debug, Clone)]
pub struct LegacySecret {
    /// Key name in the key store (see [`keys`]).
    pub name: String,
    #[allow(missing_docs)]
    pub value: Secret<Vec<u8>>,
}

/// A parsed state document.
#[derive(Debug, Clone)]
pub struct Migrated {
    /// The state in the current schema.
    pub state: DeploymentState,
    /// The schema it was migrated from, if it was older.
    pub from_schema: Option<u32>,
    /// Secrets the old document carried (they never go into the new one).
    pub secrets: Vec<LegacySecret>,
}

/// Why a state document could not be read. Messages name the key and position where known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Not YAML at all, or truncated.
    #[error("not valid YAML: {detail}")]
    Syntax {
        /// Parser message with line and column.
        detail: String,
    },
    /// Zero bytes, or only whitespace.
    #[error("the file is empty")]
    Empty,
    /// YAML, but not a mapping.
    #[error("the document is not a YAML mapping")]
    NotMapping,
    /// No `schema_version` and not a Bash-tool state either.
    #[error("`schema_version` is missing and the document is not a Bash-tool state file")]
    MissingSchema,
    /// A key has the wrong type or value.
    #[error("key `{key}`: {detail}")]
    WrongType {
        /// Dotted key path (`phases.create_vms.status`).
        key: String,
        #[allow(missing_docs)]
        detail: String,
    },
    /// A current-schema document without its end marker: cut short.
    #[error("the file is incomplete (its end marker is missing): it was truncated or cut short")]
    Truncated,
    /// Not a state but a pointer left by `k0rdent state migrate`: the deployment is elsewhere.
    #[error("the deployment moved to {}", .0.moved_to)]
    Moved(Box<super::StatePointer>),
    /// Written by a newer version.
    #[error(
        "schema_version {found} is newer than this build understands (up to {supported}); upgrade k0rdent"
    )]
    Newer {
        /// The document's `schema_version`, as written.
        found: u64,
        /// The newest schema this build reads.
        supported: u32,
    },
}

/// The last line of every state document this build writes. A document of the current schema
/// without it was cut short (a truncated copy, a full disk) and is refused rather than read as
/// a smaller, valid-looking state.
const END_MARKER: &str = "# end of k0rdent state, generation ";

/// Renders a state document: YAML followed by the end marker.
///
/// # Errors
/// [`EmitError`](super::yaml::EmitError) if the state holds a value YAML cannot hold here.
pub fn render_state(state: &DeploymentState) -> Result<String, super::yaml::EmitError> {
    let mut text = super::yaml::to_string(state)?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(END_MARKER);
    text.push_str(&state.generation.to_string());
    text.push('\n');
    Ok(text)
}

/// Stamps `state` as its next version — the generation after the loaded one, this build's
/// schema, `updated_at` now (and `created_at` once) — and renders it, as every store does
/// before it writes. On an error the generation is put back, so a failed save leaves the
/// state as it was loaded.
///
/// # Errors
/// As [`render_state`].
pub fn render_next(state: &mut DeploymentState) -> Result<String, super::yaml::EmitError> {
    let previous = state.generation;
    let now = chrono::Utc::now();
    state.generation = previous + 1;
    state.schema_version = super::SCHEMA_VERSION;
    state.updated_at = Some(now);
    state.created_at.get_or_insert(now);
    render_state(state).inspect_err(|_| state.generation = previous)
}

/// The generation named by the end marker, if the document ends with one.
fn end_marker(bytes: &[u8]) -> Option<Option<u64>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let last = text.trim_end().rsplit('\n').next()?;
    let n = last.strip_prefix(END_MARKER)?;
    Some(n.trim().parse().ok())
}

/// Parses a state document in any supported schema.
///
/// # Errors
/// [`ParseError`] when the document is not a readable state of a supported schema.
pub fn parse_state(bytes: &[u8]) -> Result<Migrated, ParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let value: Value = serde_yaml::from_slice(bytes).map_err(|e| ParseError::Syntax {
        detail: e.to_string(),
    })?;
    let Value::Mapping(map) = &value else {
        return Err(ParseError::NotMapping);
    };
    if map.contains_key("moved_to") {
        return Err(ParseError::Moved(Box::new(pointer_from(bytes)?)));
    }
    match map.get("schema_version") {
        Some(Value::Number(n)) => {
            let Some(v) = n.as_u64() else {
                return Err(ParseError::WrongType {
                    key: "schema_version".into(),
                    detail: format!("expected a non-negative integer, found {n}"),
                });
            };
            if v > u64::from(SCHEMA_VERSION) {
                return Err(ParseError::Newer {
                    found: v,
                    supported: SCHEMA_VERSION,
                });
            }
            if v == 0 {
                return migrate_bash(map);
            }
            let de = serde_yaml::Deserializer::from_slice(bytes);
            let state: DeploymentState =
                serde_path_to_error::deserialize(de).map_err(|e| ParseError::WrongType {
                    key: e.path().to_string(),
                    detail: e.inner().to_string(),
                })?;
            match end_marker(bytes) {
                None => return Err(ParseError::Truncated),
                Some(Some(g)) if g == state.generation => {}
                Some(_) => {
                    return Err(ParseError::WrongType {
                        key: "generation".into(),
                        detail: format!(
                            "{} does not match the end marker: the file was spliced or edited",
                            state.generation
                        ),
                    });
                }
            }
            Ok(Migrated {
                state,
                from_schema: None,
                secrets: Vec::new(),
            })
        }
        Some(other) => Err(ParseError::WrongType {
            key: "schema_version".into(),
            detail: format!("expected an integer, found {}", describe(other)),
        }),
        None if map.contains_key("deployment_id") || map.contains_key("phases") => {
            migrate_bash(map)
        }
        None => Err(ParseError::MissingSchema),
    }
}

/// Reads a pointer from a mapping that has a `moved_to` key.
fn pointer_from(bytes: &[u8]) -> Result<super::StatePointer, ParseError> {
    let de = serde_yaml::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| ParseError::WrongType {
        key: e.path().to_string(),
        detail: e.inner().to_string(),
    })
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn get_str<'a>(m: &'a serde_yaml::Mapping, key: &str) -> Option<&'a str> {
    m.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && *s != "null")
}

fn time(m: &serde_yaml::Mapping, key: &str) -> Option<DateTime<Utc>> {
    get_str(m, key)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Schema 0: the Bash tool's `deployment-state.yaml` (see reference/upstream-bash.md §3.2).
/// Phase statuses, the cluster id, the config path, WireGuard addresses and public keys carry
/// over; private keys move to the key store; legacy flags are dropped (they are re-derived
/// from observation).
fn migrate_bash(map: &serde_yaml::Mapping) -> Result<Migrated, ParseError> {
    let mut state = DeploymentState {
        cluster_id: get_str(map, "deployment_id").map(str::to_owned),
        created_at: time(map, "created_at"),
        ..DeploymentState::default()
    };
    if let Some(path) = get_str(map, "source_config_file") {
        state.config = Some(ConfigRecord {
            path: path.to_owned(),
            fingerprint: None,
            snapshot: serde_json::Value::Null,
            recorded_at: None,
        });
    }
    if let Some(Value::Mapping(phases)) = map.get("phases") {
        for (name, rec) in phases {
            let (Some(name), Value::Mapping(rec)) = (name.as_str(), rec) else {
                continue;
            };
            let status = match get_str(rec, "status") {
                Some("completed") => Status::Completed,
                Some("in_progress") => Status::InProgress,
                Some("skipped") => Status::Skipped,
                Some("failed") => Status::Failed,
                Some("pending") | None => Status::Pending,
                Some(other) => {
                    return Err(ParseError::WrongType {
                        key: format!("phases.{name}.status"),
                        detail: format!("unknown status {other:?}"),
                    });
                }
            };
            state.phases.insert(
                name.to_owned(),
                StepRecord {
                    status,
                    finished_at: time(rec, "updated_at"),
                    skipped_reason: get_str(rec, "skipped_reason").map(str::to_owned),
                    ..StepRecord::default()
                },
            );
        }
    }
    if let Some(Value::Mapping(cfg)) = map.get("config") {
        for (key, setting) in [
            ("wireguard_port", "wireguard.port"),
            ("wireguard_network", "wireguard.network"),
        ] {
            if let Some(v) = cfg.get(key).filter(|v| !v.is_null()) {
                let json = match v {
                    Value::String(s) => s
                        .parse::<u64>()
                        .map(serde_json::Value::from)
                        .unwrap_or_else(|_| serde_json::Value::from(s.clone())),
                    Value::Number(n) => n
                        .as_u64()
                        .map(serde_json::Value::from)
                        .unwrap_or(serde_json::Value::Null),
                    _ => continue,
                };
                state.settings.insert(setting.to_owned(), json);
            }
        }
    }
    let mut secrets = Vec::new();
    if let Some(Value::Mapping(peers)) = map.get("wireguard_peers") {
        for (name, peer) in peers {
            let (Some(name), Value::Mapping(peer)) = (name.as_str(), peer) else {
                continue;
            };
            let role = get_str(peer, "role").unwrap_or("node");
            let private = get_str(peer, "private_key");
            if role == "hub" {
                if let Some(k) = private {
                    secrets.push(LegacySecret {
                        name: keys::WIREGUARD_HUB.to_owned(),
                        value: Secret::new(k.as_bytes().to_vec()),
                    });
                }
                continue;
            }
            if let Some(k) = private {
                secrets.push(LegacySecret {
                    name: keys::wireguard_node(name),
                    value: Secret::new(k.as_bytes().to_vec()),
                });
            }
            let node = state
                .nodes
                .entry(name.to_owned())
                .or_insert_with(|| NodeRecord {
                    role: role.to_owned(),
                    ..NodeRecord::default()
                });
            node.tunnel_ip = get_str(peer, "ip").and_then(|ip| ip.parse().ok());
            node.wireguard_public_key = get_str(peer, "public_key").map(str::to_owned);
        }
    }
    if let Some(Value::Mapping(vms)) = map.get("vm_states") {
        for (name, vm) in vms {
            let (Some(name), Value::Mapping(vm)) = (name.as_str(), vm) else {
                continue;
            };
            let node = state.nodes.entry(name.to_owned()).or_default();
            node.public_ip = get_str(vm, "public_ip").map(str::to_owned);
        }
    }
    Ok(Migrated {
        state,
        from_schema: Some(0),
        secrets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_schema_round_trips() {
        let s = DeploymentState {
            cluster_id: Some("k0rdent-abc".into()),
            ..DeploymentState::default()
        };
        let y = render_state(&s).unwrap();
        let m = parse_state(y.as_bytes()).unwrap();
        assert_eq!(m.state, s);
        assert_eq!(m.from_schema, None);
        // Any cut that loses the end marker is detected, even where the rest is valid YAML.
        for cut in 1..y.len() - 1 {
            assert!(
                parse_state(&y.as_bytes()[..cut]).is_err(),
                "cut at {cut} was accepted"
            );
        }
    }

    #[test]
    fn a_fully_populated_state_round_trips_through_the_emitter() {
        use crate::state::{
            CloudIdentity, EvidenceRecord, HostKeyRecord, JournalEntry, ResetMarker, RunOutcome,
            RunRecord,
        };
        let now = chrono::Utc::now();
        let mut s = DeploymentState {
            cluster_id: Some("k0rdent-x1".into()),
            created_at: Some(now),
            updated_at: Some(now),
            config: Some(ConfigRecord {
                path: "./config/k0rdent.yaml".into(),
                fingerprint: Some(crate::fingerprint::Digest::of_bytes(b"cfg")),
                snapshot: serde_json::json!({"azure": {"location": "westeurope", "zones": [1, 2]}, "ratio": 0.5}),
                recorded_at: Some(now),
            }),
            azure: Some(CloudIdentity {
                subscription_id: "00000000-0000-0000-0000-000000000000".into(),
                tenant_id: None,
                arm_endpoint: "http://127.0.0.1:1234".into(),
                location: "westeurope".into(),
            }),
            run: Some(RunRecord {
                id: crate::id::RunId::generate(),
                command: "deploy".into(),
                pid: 42,
                host: "laptop".into(),
                started_at: now,
                finished_at: None,
                outcome: Some(RunOutcome::Interrupted),
            }),
            reset: Some(ResetMarker {
                started_at: now,
                run_id: crate::id::RunId::generate(),
            }),
            ..DeploymentState::default()
        };
        let id = crate::StepId::parse("create_vms/k0s-worker-1").unwrap();
        let r = s.record_mut(&id);
        r.status = Status::InProgress;
        r.attempts = 3;
        r.fingerprint = Some(
            crate::fingerprint::Fingerprint::builder()
                .input("a", "b")
                .finish(),
        );
        r.outputs = crate::Outputs::new()
            .with("ip", "198.51.100.7")
            .with("n", 3)
            .with("nested", serde_json::json!({"k": [true, null]}));
        r.evidence = Some(EvidenceRecord {
            observed_at: now,
            facts: crate::Evidence::new().with("power", "PowerState/running"),
        });
        r.journal.0.push(JournalEntry {
            at: now,
            key: "put_accepted".into(),
            value: serde_json::json!("https://m.example/op?api-version=2024-07-01"),
        });
        r.last_error = Some("line one\nline two: \"quoted\"".into());
        s.nodes.insert(
            "k0s-worker-1".into(),
            NodeRecord {
                role: "worker".into(),
                tunnel_ip: Some("172.24.24.21".parse().unwrap()),
                wireguard_public_key: Some("abc+/=".into()),
                ssh_host_keys: vec![HostKeyRecord {
                    algorithm: "ssh-ed25519".into(),
                    key: "AAAAC3Nz".into(),
                }],
                vm_id: Some("7d3c9b1e".into()),
                public_ip: Some("198.51.100.7".into()),
                attributes: Default::default(),
            },
        );
        s.settings.insert("wireguard.port".into(), 51820.into());
        let text = render_state(&s).unwrap();
        let back = parse_state(text.as_bytes()).unwrap().state;
        assert_eq!(back, s, "{text}");
    }

    #[test]
    fn newer_schema_is_refused() {
        let e = parse_state(b"schema_version: 99\ngeneration: 1\n").unwrap_err();
        assert!(matches!(e, ParseError::Newer { found: 99, .. }), "{e}");
    }

    #[test]
    fn wrong_types_name_the_key() {
        let e = parse_state(
            b"schema_version: 1\ngeneration: 1\nphases:\n  setup_network:\n    status: done\n",
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("phases.setup_network.status"), "{msg}");
        let e = parse_state(b"schema_version: one\n").unwrap_err();
        assert!(e.to_string().contains("schema_version"), "{e}");
    }

    #[test]
    fn bash_state_is_migrated_and_private_keys_are_moved_out() {
        let doc = br#"
deployment_id: k0rdent-x1y2z3
created_at: "2025-11-01T10:00:00Z"
phase: k0s_deployed
source_config_file: ./config/k0rdent.yaml
config:
  wireguard_port: "51820"
  wireguard_network: 172.24.24.0/24
phases:
  prepare_deployment: {status: completed, updated_at: "2025-11-01T10:01:00Z"}
  setup_network: {status: completed}
  create_vms: {status: in_progress}
  install_kof_mothership: {status: skipped, skipped_reason: "kof disabled"}
wireguard_peers:
  mylaptop: {ip: 172.24.24.1, role: hub, private_key: HUBPRIV, public_key: HUBPUB}
  k0s-controller: {ip: 172.24.24.11, role: controller, private_key: CPRIV, public_key: CPUB}
"#;
        let m = parse_state(doc).unwrap();
        assert_eq!(m.from_schema, Some(0));
        let s = &m.state;
        assert_eq!(s.cluster_id.as_deref(), Some("k0rdent-x1y2z3"));
        assert_eq!(s.phases["setup_network"].status, Status::Completed);
        assert_eq!(s.phases["create_vms"].status, Status::InProgress);
        assert_eq!(s.phases["install_kof_mothership"].status, Status::Skipped);
        assert_eq!(s.setting::<u16>("wireguard.port"), Some(51820));
        let node = &s.nodes["k0s-controller"];
        assert_eq!(node.tunnel_ip.unwrap().to_string(), "172.24.24.11");
        assert_eq!(node.wireguard_public_key.as_deref(), Some("CPUB"));
        assert_eq!(m.secrets.len(), 2);
        let text = serde_yaml::to_string(s).unwrap();
        assert!(
            !text.contains("CPRIV") && !text.contains("HUBPRIV"),
            "{text}"
        );
    }

    #[test]
    fn garbage_is_a_syntax_error_not_a_panic() {
        for doc in [
            &b"{{{"[..],
            b"schema_version: 1\nphases: [",
            b"- a\n- b\n",
            b"",
            b"\x00\xff",
        ] {
            assert!(parse_state(doc).is_err());
        }
    }
}
