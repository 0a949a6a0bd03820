//! Azure Key Vault's secrets data plane (api-version 7.4), as Microsoft's REST reference
//! describes it: Set, Get, List (`maxresults`, `nextLink`), Delete (soft delete), Get/List
//! Deleted, Purge and Recover.
//!
//! Vaults share the emulator's port: a vault's base URL (the real
//! `https://{vault}.vault.azure.net`) is `{emulator}/vaults/{vault}`. Rules kept from the real
//! service: names match `^[0-9a-zA-Z-]{1,127}$` and are case-insensitive (400 `BadParameter`);
//! a Set on a soft-deleted name answers 409 `Conflict` with the inner code
//! `ObjectIsDeletedButRecoverable` until it is purged or recovered; right after a delete the
//! deletion is "in progress" for [`EmulatorBuilder::keyvault_delete_latency`](crate::EmulatorBuilder::keyvault_delete_latency)
//! (purge and recover answer 409 `ObjectIsBeingDeleted`, Get Deleted Secret 404); a request
//! without a bearer token gets 401 with the `WWW-Authenticate` challenge naming the resource
//! `https://vault.azure.net`; [`Emulator::deny_keyvault_data`](crate::Emulator::deny_keyvault_data)
//! makes every caller lack the data-plane role (403 `Forbidden`, inner `ForbiddenByRbac`).

pub(crate) mod store;

use std::time::Instant;

use serde_json::{Value, json};

use super::Emu;
use super::reply::{Query, Reply, page};
use store::{Deleted, Secret, Version, new_version, valid_name};

/// The api-versions the secrets API accepts here.
const VERSIONS: &[&str] = &["7.0", "7.1", "7.2", "7.3", "7.4", "7.5"];
/// Days a soft-deleted secret stays recoverable (the service default).
const RECOVERABLE_DAYS: i64 = 90;

fn kv_err(status: u16, code: &str, message: impl Into<String>) -> Reply {
    Reply::json(
        status,
        json!({ "error": { "code": code, "message": message.into() } }),
    )
}

fn kv_err_inner(status: u16, code: &str, message: impl Into<String>, inner: &str) -> Reply {
    Reply::json(
        status,
        json!({ "error": { "code": code, "message": message.into(), "innererror": { "code": inner } } }),
    )
}

fn not_found(name: &str) -> Reply {
    kv_err(
        404,
        "SecretNotFound",
        format!(
            "A secret with (name/id) {name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
        ),
    )
}

fn deleted_not_found(name: &str) -> Reply {
    kv_err(
        404,
        "SecretNotFound",
        format!("Deleted Secret not found: {name}"),
    )
}

fn being_deleted(name: &str) -> Reply {
    kv_err_inner(
        409,
        "Conflict",
        format!("Secret {name} is currently being deleted."),
        "ObjectIsBeingDeleted",
    )
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn unauthorized(emu: &Emu, message: &str) -> Reply {
    kv_err(401, "Unauthorized", message).header(
        "WWW-Authenticate",
        format!(
            "Bearer authorization=\"{}/{}\", resource=\"https://vault.azure.net\"",
            emu.base, emu.cfg.tenant
        ),
    )
}

fn check_token(emu: &Emu, auth: Option<&str>) -> Option<Reply> {
    if !emu.cfg.require_auth {
        return None;
    }
    let Some(token) = auth.and_then(|h| h.strip_prefix("Bearer ")) else {
        return Some(unauthorized(
            emu,
            "AKV10000: Request is missing a Bearer or PoP token.",
        ));
    };
    match emu.world().tokens.get(token) {
        Some(exp) if *exp > Instant::now() => None,
        Some(_) => Some(unauthorized(
            emu,
            "AKV10022: Invalid audience or token expired.",
        )),
        None => Some(unauthorized(emu, "AKV10032: Invalid issuer or token.")),
    }
}

fn check_version(q: &Query) -> Option<Reply> {
    match q.get("api-version") {
        None | Some("") => Some(kv_err(
            400,
            "BadParameter",
            "The 'api-version' query parameter is missing.",
        )),
        Some(v) if VERSIONS.contains(&v) => None,
        Some(v) => Some(kv_err(
            400,
            "BadParameter",
            format!(
                "The specified version ({v}) is not recognized. Consider using the latest supported version (7.4)."
            ),
        )),
    }
}

fn attributes(v: &Version) -> Value {
    json!({
        "enabled": true,
        "created": v.created,
        "updated": v.created,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": RECOVERABLE_DAYS,
    })
}

/// Adds `contentType` and `tags` when the version has them.
fn with_meta(mut body: Value, v: &Version) -> Value {
    if let Some(ct) = &v.content_type {
        body["contentType"] = json!(ct);
    }
    if let Some(t) = &v.tags {
        body["tags"] = t.clone();
    }
    body
}

fn bundle(vbase: &str, s: &Secret, v: &Version, value: bool) -> Value {
    let mut b = json!({
        "id": format!("{vbase}/secrets/{}/{}", s.name, v.id),
        "attributes": attributes(v),
    });
    if value {
        b["value"] = json!(v.value);
    }
    with_meta(b, v)
}

fn item(vbase: &str, s: &Secret, v: &Version) -> Value {
    with_meta(
        json!({ "id": format!("{vbase}/secrets/{}", s.name), "attributes": attributes(v) }),
        v,
    )
}

fn deleted_fields(mut body: Value, vbase: &str, d: &Deleted) -> Value {
    body["recoveryId"] = json!(format!("{vbase}/deletedsecrets/{}", d.secret.name));
    body["deletedDate"] = json!(d.deleted_date);
    body["scheduledPurgeDate"] = json!(d.deleted_date + RECOVERABLE_DAYS * 86_400);
    body
}

/// Handles a request under `/vaults/{vault}/…` (`segs` starts with `vaults`).
pub(crate) fn handle(
    emu: &Emu,
    method: &str,
    segs: &[&str],
    q: &Query,
    auth: Option<&str>,
    body: &[u8],
) -> Reply {
    if let Some(r) = check_token(emu, auth) {
        return r;
    }
    let (Some(vault), rest) = (segs.get(1), segs.get(2..).unwrap_or(&[])) else {
        return kv_err(404, "NotFound", "No vault in the request path.");
    };
    if let Some(r) = check_version(q) {
        return r;
    }
    if emu.vault_denied() {
        let action = match (method, rest.first().copied()) {
            ("GET", Some("deletedsecrets")) => "Microsoft.KeyVault/vaults/deletedSecrets/read",
            ("DELETE", Some("deletedsecrets")) => "Microsoft.KeyVault/vaults/deletedSecrets/delete",
            ("POST", _) => "Microsoft.KeyVault/vaults/deletedSecrets/recover/action",
            ("PUT", _) => "Microsoft.KeyVault/vaults/secrets/setSecret/action",
            ("DELETE", _) => "Microsoft.KeyVault/vaults/secrets/delete",
            _ => "Microsoft.KeyVault/vaults/secrets/getSecret/action",
        };
        return kv_err_inner(
            403,
            "Forbidden",
            format!(
                "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid={client};\r\nAction: '{action}'\r\nResource: '{vault}'\r\nAssignment: (not found)\r\nVault: {vault};location=emulated\r\n",
                client = emu.cfg.client_id,
            ),
            "ForbiddenByRbac",
        );
    }
    let vbase = format!("{}/vaults/{vault}", emu.base);
    let path = format!("/vaults/{vault}/{}", rest.first().copied().unwrap_or(""));
    if let Some(name) = rest.get(1)
        && !valid_name(name)
    {
        return kv_err(
            400,
            "BadParameter",
            format!("The request URI contains an invalid name: {name}"),
        );
    }
    let mut vaults = emu.vaults();
    let v = vaults.vault(vault);
    let ready_after = emu.cfg.vault_delete_latency;
    match (method, rest) {
        ("GET", ["secrets"]) => match max_results(q) {
            Ok(n) => {
                let items = v
                    .live
                    .values()
                    .filter_map(|s| s.latest().map(|l| item(&vbase, s, l)))
                    .collect();
                page(&emu.base, &path, q, items, n)
            }
            Err(r) => r,
        },
        ("GET", ["deletedsecrets"]) => match max_results(q) {
            Ok(n) => {
                let items = v
                    .deleted
                    .values()
                    .filter_map(|d| {
                        let l = d.secret.latest()?;
                        Some(deleted_fields(item(&vbase, &d.secret, l), &vbase, d))
                    })
                    .collect();
                page(&emu.base, &path, q, items, n)
            }
            Err(r) => r,
        },
        ("PUT", ["secrets", name]) => {
            let key = name.to_ascii_lowercase();
            if let Some(d) = v.deleted.get(&key) {
                return if d.ready > Instant::now() {
                    being_deleted(name)
                } else {
                    kv_err_inner(
                        409,
                        "Conflict",
                        format!(
                            "Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged."
                        ),
                        "ObjectIsDeletedButRecoverable",
                    )
                };
            }
            let parsed: Value = match serde_json::from_slice(body) {
                Ok(p) => p,
                Err(_) => {
                    return kv_err(400, "BadParameter", "The request body is not valid JSON.");
                }
            };
            let Some(value) = parsed.get("value").and_then(Value::as_str) else {
                return kv_err(400, "BadParameter", "Property 'value' is required.");
            };
            if value.len() > 25 * 1024 {
                return kv_err(400, "BadParameter", "The secret value exceeds 25 KB.");
            }
            let version = Version {
                id: new_version(),
                value: value.to_owned(),
                content_type: parsed
                    .get("contentType")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                tags: parsed.get("tags").filter(|t| t.is_object()).cloned(),
                created: now(),
            };
            let s = v.live.entry(key).or_insert_with(|| Secret {
                name: (*name).to_owned(),
                versions: Vec::new(),
            });
            s.versions.push(version.clone());
            Reply::json(200, bundle(&vbase, s, &version, true))
        }
        ("GET", ["secrets", name, version @ ..]) if version.len() <= 1 => {
            let Some(s) = v.live.get(&name.to_ascii_lowercase()) else {
                return not_found(name);
            };
            let found = match version.first().filter(|x| !x.is_empty()) {
                Some(id) => s.versions.iter().find(|x| x.id == *id),
                None => s.latest(),
            };
            match found {
                Some(x) => Reply::json(200, bundle(&vbase, s, x, true)),
                None => not_found(name),
            }
        }
        ("DELETE", ["secrets", name]) => {
            let key = name.to_ascii_lowercase();
            let Some(s) = v.live.remove(&key) else {
                return not_found(name);
            };
            let d = Deleted {
                secret: s,
                deleted_date: now(),
                ready: Instant::now() + ready_after,
            };
            let body = match d.secret.latest() {
                Some(l) => deleted_fields(bundle(&vbase, &d.secret, l, false), &vbase, &d),
                None => json!({}),
            };
            v.deleted.insert(key, d);
            Reply::json(200, body)
        }
        ("GET", ["deletedsecrets", name]) => match v.deleted.get(&name.to_ascii_lowercase()) {
            Some(d) if d.ready <= Instant::now() => match d.secret.latest() {
                Some(l) => Reply::json(
                    200,
                    deleted_fields(bundle(&vbase, &d.secret, l, false), &vbase, d),
                ),
                None => deleted_not_found(name),
            },
            _ => deleted_not_found(name),
        },
        ("DELETE", ["deletedsecrets", name]) => {
            let key = name.to_ascii_lowercase();
            match v.deleted.get(&key) {
                None => deleted_not_found(name),
                Some(d) if d.ready > Instant::now() => being_deleted(name),
                Some(_) => {
                    v.deleted.remove(&key);
                    Reply::empty(204)
                }
            }
        }
        ("POST", ["deletedsecrets", name, "recover"]) => {
            let key = name.to_ascii_lowercase();
            match v.deleted.get(&key) {
                None => deleted_not_found(name),
                Some(d) if d.ready > Instant::now() => being_deleted(name),
                Some(_) => {
                    let Some(d) = v.deleted.remove(&key) else {
                        return deleted_not_found(name);
                    };
                    let body = match d.secret.latest() {
                        Some(l) => bundle(&vbase, &d.secret, l, false),
                        None => json!({}),
                    };
                    v.live.insert(key, d.secret);
                    Reply::json(200, body)
                }
            }
        }
        _ => kv_err(
            405,
            "MethodNotAllowed",
            format!("{method} is not supported on {path}"),
        ),
    }
}

/// `maxresults`: 1 to 25, default 25.
fn max_results(q: &Query) -> Result<usize, Reply> {
    match q.get("maxresults") {
        None => Ok(25),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=25).contains(&n) => Ok(n),
            _ => Err(kv_err(
                400,
                "BadParameter",
                format!("Invalid value for maxresults: {s}. It must be between 1 and 25."),
            )),
        },
    }
}
