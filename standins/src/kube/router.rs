//! Request routing: one request in (method, path, query, headers, body), one reply out,
//! with no I/O so the listener stays a thin shell around it.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::Shared;
use super::discovery;
use super::patch::PatchType;
use super::pki::Identity;
use super::resources::Resource;
use super::selector::LabelSelector;
use super::status::ApiError;
use super::store::Part;
use super::table::{IncludeObject, table};

/// A request reduced to what routing needs.
pub(crate) struct Req {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub accept: String,
    pub content_type: String,
    pub body: Vec<u8>,
    /// The listener's own address, for `/api`'s `serverAddressByClientCIDRs`.
    pub server_address: String,
}

/// A reply: status code, `Content-Type` and body.
pub(crate) struct Reply {
    pub code: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Reply {
    fn json(code: u16, value: &Value) -> Reply {
        Reply::typed(code, "application/json".into(), value)
    }

    fn typed(code: u16, content_type: String, value: &Value) -> Reply {
        Reply {
            code,
            content_type,
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    fn error(e: &ApiError) -> Reply {
        Reply::json(e.code, &e.to_status())
    }
}

/// Decodes `%XX` and `+` in a query component.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first version of `group`'s `as=<kind>` media type `accept` asks for, among `supported`.
fn negotiated(
    accept: &str,
    kind: &str,
    group: &str,
    supported: &[&'static str],
) -> Option<&'static str> {
    accept.split(',').find_map(|range| {
        let params: HashMap<&str, &str> = range
            .split(';')
            .skip(1)
            .filter_map(|p| p.trim().split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        if params.get("as") == Some(&kind) && params.get("g") == Some(&group) {
            params
                .get("v")
                .and_then(|v| supported.iter().find(|s| *s == v).copied())
        } else {
            None
        }
    })
}

fn verb_of(method: &str, has_name: bool) -> &'static str {
    match (method, has_name) {
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        _ => "deletecollection",
    }
}

/// Answers one request for `identity`.
pub(crate) fn route(shared: &Shared, identity: &Identity, req: &Req) -> Reply {
    let segments: Vec<&str> = req
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segments.as_slice() {
        ["version"] => Reply::json(200, &shared.version_info()),
        [probe, ..] if matches!(*probe, "healthz" | "readyz" | "livez") => Reply {
            code: 200,
            content_type: "text/plain; charset=utf-8".into(),
            body: b"ok".to_vec(),
        },
        ["api"] | ["apis"] => {
            let legacy = segments[0] == "api";
            let aggregated = negotiated(
                &req.accept,
                "APIGroupDiscoveryList",
                "apidiscovery.k8s.io",
                &["v2", "v2beta1"],
            )
            .filter(|_| shared.aggregated_discovery());
            match aggregated {
                Some(v) => Reply::typed(
                    200,
                    discovery::aggregated_content_type(v),
                    &discovery::aggregated(legacy, v),
                ),
                None if legacy => Reply::json(200, &discovery::api_versions(&req.server_address)),
                None => Reply::json(200, &discovery::api_group_list()),
            }
        }
        ["api", "v1"] => found(discovery::api_resource_list("", "v1")),
        ["apis", group] => found(discovery::api_group(group)),
        ["apis", group, version] => found(discovery::api_resource_list(group, version)),
        ["api", "v1", rest @ ..] => resource_request(shared, identity, req, "", "v1", rest),
        ["apis", group, version, rest @ ..] => {
            resource_request(shared, identity, req, group, version, rest)
        }
        _ => Reply::error(&ApiError::path_not_found()),
    }
}

fn found(doc: Option<Value>) -> Reply {
    match doc {
        Some(doc) => Reply::json(200, &doc),
        None => Reply::error(&ApiError::path_not_found()),
    }
}

/// What a resource URL names.
struct Target<'a> {
    resource: Resource,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
    sub: Option<&'a str>,
}

/// Splits `[namespaces/<ns>/]<plural>[/<name>[/<sub>]]`.
fn parse_resource_path<'a>(group: &str, version: &str, rest: &[&'a str]) -> Option<Target<'a>> {
    let namespaced_path = rest.len() >= 3
        && rest[0] == "namespaces"
        && Resource::find(group, version, rest[2]).is_some_and(|r| r.def().namespaced);
    let (ns, rest) = if namespaced_path {
        (Some(rest[1]), &rest[2..])
    } else {
        (None, rest)
    };
    let r = Resource::find(group, version, rest.first()?)?;
    if rest.len() > 3 || (ns.is_some() && !r.def().namespaced) {
        return None;
    }
    Some(Target {
        resource: r,
        namespace: ns,
        name: rest.get(1).copied(),
        sub: rest.get(2).copied(),
    })
}

fn resource_request(
    shared: &Shared,
    identity: &Identity,
    req: &Req,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Reply {
    let Some(Target {
        resource: r,
        namespace: ns,
        name,
        sub,
    }) = parse_resource_path(group, version, rest)
    else {
        return Reply::error(&ApiError::path_not_found());
    };
    if !identity.is_admin() {
        return Reply::error(&ApiError::forbidden(
            &identity.user,
            verb_of(&req.method, name.is_some()),
            &r.def(),
            ns,
        ));
    }
    match handle_resource(shared, req, r, ns, name, sub) {
        Ok(reply) => reply,
        Err(e) => Reply::error(&e),
    }
}

fn strip_type(mut obj: Value) -> Value {
    if let Some(m) = obj.as_object_mut() {
        m.remove("kind");
        m.remove("apiVersion");
    }
    obj
}

fn handle_resource(
    shared: &Shared,
    req: &Req,
    r: Resource,
    ns: Option<&str>,
    name: Option<&str>,
    sub: Option<&str>,
) -> Result<Reply, ApiError> {
    let def = r.def();
    let part = match sub {
        None => Part::Main,
        Some("status") if def.status_subresource => Part::Status,
        Some(_) => return Err(ApiError::path_not_found()),
    };
    if def.namespaced && name.is_some() && ns.is_none() {
        return Err(ApiError::path_not_found());
    }
    let body = || {
        serde_json::from_slice::<Value>(&req.body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
    };
    let dry_run = req.query.get("dryRun").is_some_and(|v| v == "All");
    let table_version = negotiated(&req.accept, "Table", "meta.k8s.io", &["v1", "v1beta1"]);
    let include = IncludeObject::parse(req.query.get("includeObject").map(String::as_str));
    let (reply, changed) = shared.with_store(|store| -> Result<(Reply, bool), ApiError> {
        match (req.method.as_str(), name) {
            ("GET", Some(name)) => {
                let obj = store.get(r, ns, name)?;
                Ok(match table_version {
                    Some(v) => (Reply::json(200, &table(r, &[obj], &store.resource_version(), include, v)), false),
                    None => (Reply::json(200, &obj), false),
                })
            }
            ("GET", None) => {
                if req.query.get("watch").is_some_and(|w| w == "true" || w == "1") {
                    return Err(ApiError::method_not_allowed("watch is not supported by this fake API server"));
                }
                let labels = LabelSelector::parse(req.query.get("labelSelector").map_or("", String::as_str))?;
                let mut field_name = None;
                let mut field_ns = ns.map(str::to_string);
                for f in req.query.get("fieldSelector").map_or("", String::as_str).split(',').filter(|f| !f.is_empty()) {
                    match f.split_once('=') {
                        Some(("metadata.name", v)) => field_name = Some(v.trim_start_matches('=').to_string()),
                        Some(("metadata.namespace", v)) => field_ns = Some(v.trim_start_matches('=').to_string()),
                        _ => return Err(ApiError::bad_request(format!("field label not supported: {f}"))),
                    }
                }
                let items = store.list(r, field_ns.as_deref(), &labels, field_name.as_deref());
                let rv = store.resource_version();
                if let Some(v) = table_version {
                    return Ok((Reply::json(200, &table(r, &items, &rv, include, v)), false));
                }
                let items: Vec<Value> = if def.group.is_empty() { items.into_iter().map(strip_type).collect() } else { items };
                let list = json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": {"resourceVersion": rv}, "items": items});
                Ok((Reply::json(200, &list), false))
            }
            ("POST", None) if part == Part::Main => {
                if dry_run {
                    return Ok((Reply::json(201, &body()?), false));
                }
                Ok((Reply::json(201, &store.create(r, ns, body()?)?), true))
            }
            ("PUT", Some(name)) => Ok((Reply::json(200, &store.update(r, ns, name, body()?, part)?), true)),
            ("PATCH", Some(name)) => {
                let kind = PatchType::from_content_type(&req.content_type)?;
                Ok((Reply::json(200, &store.patch(r, ns, name, kind, &body()?, part)?), true))
            }
            ("DELETE", Some(name)) if part == Part::Main => Ok((Reply::json(200, &store.delete(r, ns, name)?), true)),
            (method, _) => Err(ApiError::method_not_allowed(format!("the server does not allow this method on the requested resource ({method})"))),
        }
    })?;
    if changed {
        shared.notify_change();
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_handles_selectors() {
        assert_eq!(
            percent_decode("owner%3Dhelm%2Cname%3Dkcm"),
            "owner=helm,name=kcm"
        );
        assert_eq!(percent_decode("a+b%"), "a b%");
    }

    #[test]
    fn accept_negotiation_picks_the_first_supported_version() {
        let accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(
            negotiated(
                accept,
                "APIGroupDiscoveryList",
                "apidiscovery.k8s.io",
                &["v2", "v2beta1"]
            ),
            Some("v2")
        );
        assert_eq!(
            negotiated("application/json", "Table", "meta.k8s.io", &["v1"]),
            None
        );
        let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            negotiated(table, "Table", "meta.k8s.io", &["v1", "v1beta1"]),
            Some("v1")
        );
    }
}
