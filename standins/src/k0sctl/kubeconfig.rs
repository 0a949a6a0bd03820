//! `k0sctl kubeconfig`, as `cmd/kubeconfig.go`, `action/kubeconfig.go` and
//! `phase/get_kubeconfig.go` (v0.32.2) do it: the host list is cut down to
//! `Spec.K0sLeader()` *before* any fact is gathered, so the leader is the first controller
//! of the configuration whether or not its k0s runs; only that host is connected; `k0s
//! kubeconfig admin` is run on it (it fails where k0s never initialised); the server becomes
//! `--address`, else `https://<spec.api.externalAddress or that host's address>:<spec.api.port
//! or 6443>`; the cluster and context are renamed to `--cluster` (else `metadata.name`, else
//! `k0s-cluster`), the user to `--user` (else `admin`), and the result printed with a
//! trailing newline.
//!
//! The admin kubeconfig itself is the local file named by `K0RDENT_STANDIN_KUBECONFIG` (the
//! fake API's), not one read from the node.

use std::io::Write;
use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::config::Cluster;
use super::facts::Facts;
use super::failure::Failure;
use super::node::{self, Node};
use super::register::named;
use super::remote::Remote;

/// `kubeconfig`'s flags.
#[derive(Debug, Clone, Default)]
pub struct KubeconfigOptions {
    /// `--address`.
    pub address: Option<String>,
    /// `--user`.
    pub user: Option<String>,
    /// `--cluster`.
    pub cluster: Option<String>,
    /// Node-side path prefix.
    pub root: String,
    /// How long to keep retrying the host (k0sctl: 10 minutes).
    pub connect_timeout: std::time::Duration,
}

fn k0s_config_str<'a>(cluster: &'a Cluster, keys: &[&str]) -> Option<&'a Value> {
    let mut v = cluster.spec.k0s.config.as_ref()?.get(keys[0])?;
    for k in &keys[1..] {
        v = v.get(*k)?;
    }
    Some(v)
}

/// Runs `k0sctl kubeconfig` and returns the text to print.
///
/// # Errors
/// The first controller is unreachable or has no initialised k0s, or the admin kubeconfig
/// cannot be read or lacks what k0sctl needs.
pub fn kubeconfig(
    cluster: &Cluster,
    admin_kubeconfig: Option<&Path>,
    opts: &KubeconfigOptions,
    out: &mut dyn Write,
) -> Result<String, Failure> {
    let host = cluster
        .spec
        .hosts
        .iter()
        .find(|h| {
            matches!(
                h.role.as_str(),
                "controller" | "controller+worker" | "single"
            )
        })
        .ok_or_else(|| Failure::Config("no controller hosts".into()))?;
    let conn = host.open_ssh.as_ref().ok_or_else(|| {
        Failure::Config("the stand-in k0sctl connects only `openSSH` hosts".into())
    })?;
    let mut remote = Remote::new(conn, &opts.root);
    remote.connect_within(opts.connect_timeout)?;
    let mut node = [Node {
        host,
        remote,
        facts: Facts::default(),
    }];
    node::info(out, &format!("{}: connected", node[0].remote.name));
    let read = node[0].remote.sudo_script(
        "read kubeconfig from host",
        "\"${K0RDENT_STANDIN_ROOT:-}/usr/local/bin/k0s\" kubeconfig admin --data-dir=/var/lib/k0s\n",
        &[],
    );
    node::disconnect_all(&mut node);
    read?;
    let path = admin_kubeconfig.ok_or_else(|| {
        Failure::Config(
            "K0RDENT_STANDIN_KUBECONFIG is not set: the stand-in has no admin kubeconfig to print"
                .into(),
        )
    })?;
    let raw = std::fs::read_to_string(path)
        .map_err(|e| Failure::io(format!("read {}", path.display()), e))?;
    let address = match &opts.address {
        Some(a) => a.clone(),
        None => {
            let ext = k0s_config_str(cluster, &["spec", "api", "externalAddress"])
                .and_then(Value::as_str)
                .filter(|a| !a.is_empty())
                .unwrap_or(&conn.address);
            let port = k0s_config_str(cluster, &["spec", "api", "port"])
                .and_then(Value::as_i64)
                .unwrap_or(6443);
            let ext = if ext.contains(':') {
                format!("[{ext}]")
            } else {
                ext.to_owned()
            };
            format!("https://{ext}:{port}")
        }
    };
    let name = opts.cluster.clone().unwrap_or_else(|| {
        if cluster.metadata.name.is_empty() {
            "k0s-cluster".into()
        } else {
            cluster.metadata.name.clone()
        }
    });
    let user = opts.user.clone().unwrap_or_else(|| "admin".into());
    rewrite(&raw, &name, &address, &user).map(|s| format!("{s}\n"))
}

/// client-go writes kubeconfigs through JSON, whose maps come out with sorted keys.
fn sorted(v: Value) -> Value {
    match v {
        Value::Mapping(m) => {
            let mut pairs: Vec<(Value, Value)> = m.into_iter().collect();
            pairs.sort_by(|a, b| a.0.as_str().cmp(&b.0.as_str()));
            Value::Mapping(pairs.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Sequence(s) => Value::Sequence(s.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn entry(list: &str, name: &str, inner: Value) -> Value {
    let mut m = Mapping::new();
    let key = match list {
        "clusters" => "cluster",
        "users" => "user",
        _ => "context",
    };
    m.insert(key.into(), inner);
    m.insert("name".into(), name.into());
    Value::Sequence(vec![Value::Mapping(m)])
}

/// k0sctl's `kubeConfig`: keeps the current (or sole) context's cluster and user, renamed.
///
/// # Errors
/// [`Failure::Config`] with k0sctl's reasons.
pub fn rewrite(raw: &str, name: &str, address: &str, user: &str) -> Result<String, Failure> {
    let bad = |m: String| Failure::Config(m);
    let doc: Value =
        serde_yaml::from_str(raw).map_err(|e| bad(format!("parse kubeconfig: {e}")))?;
    let mut context_name = doc
        .get("current-context")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let contexts = doc
        .get("contexts")
        .and_then(Value::as_sequence)
        .cloned()
        .unwrap_or_default();
    let mut ctx = named(&doc, "contexts", &context_name).and_then(|c| c.get("context"));
    if ctx.is_none() {
        if contexts.len() != 1 {
            return Err(bad(if context_name.is_empty() {
                "no current-context set and config does not contain exactly one context to fall back to".into()
            } else {
                format!("current context {context_name} not found in config")
            }));
        }
        context_name = contexts[0]
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        ctx = contexts[0].get("context");
    }
    let ctx = ctx.cloned().unwrap_or(Value::Null);
    let cluster_ref = ctx.get("cluster").and_then(Value::as_str).unwrap_or("");
    let mut cluster = named(&doc, "clusters", cluster_ref)
        .and_then(|c| c.get("cluster"))
        .cloned()
        .ok_or_else(|| {
            bad(format!(
                "cluster {cluster_ref} referenced by context {context_name} not found in config"
            ))
        })?;
    if let Value::Mapping(m) = &mut cluster {
        m.insert("server".into(), address.into());
    }
    let user_ref = ctx.get("user").and_then(Value::as_str).unwrap_or("");
    let auth = named(&doc, "users", user_ref)
        .and_then(|u| u.get("user"))
        .cloned()
        .ok_or_else(|| {
            bad(format!(
                "auth info {user_ref} referenced by context {context_name} not found in config"
            ))
        })?;
    let mut new_ctx = match ctx {
        Value::Mapping(m) => m,
        _ => Mapping::new(),
    };
    new_ctx.insert("cluster".into(), name.into());
    new_ctx.insert("user".into(), user.into());
    let mut out = Mapping::new();
    out.insert("apiVersion".into(), "v1".into());
    out.insert("clusters".into(), entry("clusters", name, cluster));
    out.insert(
        "contexts".into(),
        entry("contexts", name, Value::Mapping(new_ctx)),
    );
    out.insert("current-context".into(), name.into());
    out.insert("kind".into(), "Config".into());
    out.insert("preferences".into(), Value::Mapping(Mapping::new()));
    out.insert("users".into(), entry("users", user, auth));
    serde_yaml::to_string(&sorted(Value::Mapping(out)))
        .map_err(|e| bad(format!("serialize kubeconfig: {e}")))
}
