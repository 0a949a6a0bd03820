//! Resource groups: GET, PUT (201 created, 200 updated; location is fixed), DELETE as a
//! `Location`-polled operation that removes everything in the group.

use serde_json::{Value, json};

use super::Emu;
use super::reply::{Query, Reply, check_api, err, group_not_found, versions};
use super::world::{Group, OpKind};

pub(crate) fn group(
    emu: &Emu,
    method: &str,
    name: &str,
    q: &Query,
    body: &Value,
) -> Result<Reply, Reply> {
    check_api(q, versions::RESOURCES)?;
    let key = name.to_ascii_lowercase();
    let mut w = emu.world();
    let view = |g: &Group| {
        json!({
            "id": format!("/subscriptions/{}/resourceGroups/{}", emu.cfg.subscription, g.name),
            "name": g.name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": g.location,
            "tags": g.tags,
            "properties": { "provisioningState": if g.deleting { "Deleting" } else { "Succeeded" } },
        })
    };
    match method {
        "GET" => w
            .groups
            .get(&key)
            .map(|g| Reply::json(200, view(g)))
            .ok_or_else(|| group_not_found(name)),
        "PUT" => {
            let location = body
                .get("location")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            if location.is_empty() {
                return Err(err(
                    400,
                    "LocationRequired",
                    "The location property is required for this definition.",
                ));
            }
            let tags = body.get("tags").cloned().unwrap_or_else(|| json!({}));
            if let Some(g) = w.groups.get_mut(&key) {
                if g.deleting {
                    return Err(err(
                        409,
                        "ResourceGroupBeingDeleted",
                        format!(
                            "The resource group '{name}' is in deprovisioning state and cannot perform this operation."
                        ),
                    ));
                }
                if !g.location.eq_ignore_ascii_case(&location) {
                    return Err(err(
                        409,
                        "InvalidResourceGroupLocation",
                        format!(
                            "Invalid resource group location '{location}'. The Resource group already exists in location '{}'.",
                            g.location
                        ),
                    ));
                }
                g.tags = tags;
                let v = view(g);
                return Ok(Reply::json(200, v));
            }
            let g = Group {
                name: name.to_owned(),
                location,
                tags,
                deleting: false,
            };
            let v = view(&g);
            w.groups.insert(key, g);
            Ok(Reply::json(201, v))
        }
        "DELETE" => {
            let Some(g) = w.groups.get_mut(&key) else {
                return Err(group_not_found(name));
            };
            g.deleting = true;
            let op = emu.start_op(&mut w, OpKind::DeleteGroup { group: key }, false);
            let d = emu.cfg.retry_after;
            Ok(Reply::empty(202)
                .header("Location", emu.result_url(&op))
                .header("Retry-After", d.as_secs_f64().ceil().to_string())
                .header("retry-after-ms", d.as_millis().to_string()))
        }
        _ => Err(err(
            405,
            "MethodNotAllowed",
            format!("{method} is not supported here"),
        )),
    }
}
