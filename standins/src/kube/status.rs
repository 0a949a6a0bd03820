//! API errors as `Status` objects, the way the API server reports every failure: kubectl
//! prints `Error from server (<reason>): <message>` from them, and clients test the `reason`.

use serde_json::{Value, json};

use super::resources::ResourceDef;

/// A failed API request: HTTP code, machine `reason` and human `message`, optionally naming
/// the object concerned (`details`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code (404, 409, …).
    pub code: u16,
    /// `Status.reason` (`NotFound`, `AlreadyExists`, `Conflict`, …).
    pub reason: &'static str,
    /// `Status.message`, printed by kubectl.
    pub message: String,
    /// `details.name`, `details.group` and `details.kind` (the plural resource, as the real
    /// server puts it there).
    pub details: Option<(String, String, String)>,
}

impl ApiError {
    fn with_details(
        code: u16,
        reason: &'static str,
        message: String,
        def: &ResourceDef,
        name: &str,
    ) -> Self {
        ApiError {
            code,
            reason,
            message,
            details: Some((
                name.to_string(),
                def.group.to_string(),
                def.plural.to_string(),
            )),
        }
    }

    /// 404: `nodes "x" not found`.
    pub fn not_found(def: &ResourceDef, name: &str) -> Self {
        let message = format!("{} \"{name}\" not found", def.qualified());
        Self::with_details(404, "NotFound", message, def, name)
    }

    /// 409 on create: `secrets "x" already exists`.
    pub fn already_exists(def: &ResourceDef, name: &str) -> Self {
        let message = format!("{} \"{name}\" already exists", def.qualified());
        Self::with_details(409, "AlreadyExists", message, def, name)
    }

    /// 409 on update with a stale `resourceVersion`.
    pub fn conflict(def: &ResourceDef, name: &str) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            def.qualified()
        );
        Self::with_details(409, "Conflict", message, def, name)
    }

    /// 400 for a request the server cannot make sense of.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            details: None,
        }
    }

    /// 422 for an object that fails validation.
    pub fn invalid(def: &ResourceDef, name: &str, message: impl Into<String>) -> Self {
        let message = format!("{} \"{name}\" is invalid: {}", def.kind, message.into());
        Self::with_details(422, "Invalid", message, def, name)
    }

    /// 404 for a path that names no served resource.
    pub fn path_not_found() -> Self {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
            details: None,
        }
    }

    /// 405 for a verb the resource does not support here.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        ApiError {
            code: 405,
            reason: "MethodNotAllowed",
            message: message.into(),
            details: None,
        }
    }

    /// 403 for an identity outside `system:masters` touching resources.
    pub fn forbidden(user: &str, verb: &str, def: &ResourceDef, namespace: Option<&str>) -> Self {
        let scope = match namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        let message = format!(
            "{} is forbidden: User \"{user}\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
            def.qualified(),
            def.plural,
            def.group
        );
        ApiError {
            code: 403,
            reason: "Forbidden",
            message,
            details: Some((String::new(), def.group.to_string(), def.plural.to_string())),
        }
    }

    /// The `Status` object sent as the response body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some((name, group, kind)) = &self.details {
            let mut details = serde_json::Map::new();
            if !name.is_empty() {
                details.insert("name".into(), json!(name));
            }
            if !group.is_empty() {
                details.insert("group".into(), json!(group));
            }
            details.insert("kind".into(), json!(kind));
            status["details"] = Value::Object(details);
        }
        status
    }
}
