//! The object store behind every listener: one map of JSON objects with the metadata the API
//! server maintains (`uid`, `resourceVersion`, `creationTimestamp`, `generation`) and its
//! write rules (409 on an existing name or a stale `resourceVersion`, status written only
//! through the `status` subresource for resources that have one, finalizers delaying delete).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::patch::{PatchType, apply_patch};
use super::resources::{Resource, ResourceDef};
use super::selector::LabelSelector;
use super::status::ApiError;

/// Which part of an object a write may change: the main resource (metadata and spec) or the
/// `status` subresource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `PUT/PATCH /…/name`: status is kept as stored when the resource has a status subresource.
    Main,
    /// `PUT/PATCH /…/name/status`: only `status` is taken from the request.
    Status,
}

type Key = (Resource, String, String);

/// All objects of the fake cluster.
#[derive(Debug, Default)]
pub(crate) struct Store {
    objects: BTreeMap<Key, Value>,
    resource_version: u64,
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn new_uid() -> String {
    let hex: String = (0..32)
        .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'))
        .collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// The object without `metadata` and `status`: what a spec change (and a generation bump) means.
fn spec_of(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        for k in ["metadata", "status", "kind", "apiVersion"] {
            m.remove(k);
        }
    }
    o
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

impl Store {
    fn key(r: Resource, ns: Option<&str>, name: &str) -> Key {
        let ns = if r.def().namespaced {
            ns.unwrap_or("")
        } else {
            ""
        };
        (r, ns.to_string(), name.to_string())
    }

    fn bump(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    /// The collection's current `resourceVersion` (for list metadata).
    pub fn resource_version(&self) -> String {
        self.resource_version.to_string()
    }

    pub fn get(&self, r: Resource, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&Self::key(r, ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&r.def(), name))
    }

    /// Objects of `r` (in `ns`, or in all namespaces when `None`) matching the selectors,
    /// ordered by namespace then name as the API server returns them.
    pub fn list(
        &self,
        r: Resource,
        ns: Option<&str>,
        labels: &LabelSelector,
        name: Option<&str>,
    ) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((res, o_ns, o_name), obj)| {
                *res == r
                    && (!r.def().namespaced || ns.is_none_or(|n| n == o_ns))
                    && name.is_none_or(|n| n == o_name)
                    && labels.matches(obj)
            })
            .map(|(_, obj)| obj.clone())
            .collect()
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        self.objects
            .contains_key(&Self::key(Resource::Namespaces, None, ns))
    }

    pub fn create(
        &mut self,
        r: Resource,
        ns: Option<&str>,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        let def = r.def();
        let map = obj.as_object_mut().ok_or_else(|| {
            ApiError::bad_request("the body of the request was not a JSON object")
        })?;
        check_type(&def, map)?;
        let meta = map.entry("metadata").or_insert_with(|| json!({}));
        let meta = meta
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            if let Some(prefix) = meta.get("generateName").and_then(Value::as_str) {
                name = format!("{prefix}{}", fastrand::u32(10000..99999));
            } else {
                return Err(ApiError::invalid(
                    &def,
                    "",
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
        }
        if def.namespaced {
            let ns = ns.ok_or_else(|| {
                ApiError::bad_request("a namespaced object needs a namespace in the URL")
            })?;
            if let Some(body_ns) = meta.get("namespace").and_then(Value::as_str)
                && !body_ns.is_empty()
                && body_ns != ns
            {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            if !self.namespace_exists(ns) {
                return Err(ApiError::not_found(&Resource::Namespaces.def(), ns));
            }
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        let key = Self::key(r, ns, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(&def, &name));
        }
        meta.insert("name".into(), json!(name));
        meta.insert("uid".into(), json!(new_uid()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        meta.remove("deletionTimestamp");
        if def.has_generation {
            meta.insert("generation".into(), json!(1));
        }
        let rv = self.bump();
        meta.insert("resourceVersion".into(), json!(rv));
        match r {
            Resource::Namespaces => {
                map.insert("status".into(), json!({"phase": "Active"}));
            }
            Resource::Secrets => {
                map.entry("type").or_insert_with(|| json!("Opaque"));
            }
            _ if def.has_generation => {
                map.remove("status");
            }
            _ => {}
        }
        self.objects.insert(key, obj.clone());
        Ok(obj)
    }

    /// PUT semantics: the stored object is replaced by `new` (one part of it), refused with
    /// 409 when `new` carries a `resourceVersion` that is no longer current.
    pub fn update(
        &mut self,
        r: Resource,
        ns: Option<&str>,
        name: &str,
        new: Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        let def = r.def();
        let key = Self::key(r, ns, name);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&def, name))?;
        let mut new_map = new.as_object().cloned().ok_or_else(|| {
            ApiError::bad_request("the body of the request was not a JSON object")
        })?;
        check_type(&def, &mut new_map)?;
        if let Some(body_name) = meta_str(&new, "name")
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if let Some(rv) = meta_str(&new, "resourceVersion")
            && !rv.is_empty()
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(&def, name));
        }
        let mut merged = match part {
            Part::Status => {
                let mut o = old.clone();
                o["status"] = new_map.get("status").cloned().unwrap_or(Value::Null);
                o
            }
            Part::Main => {
                let mut o = Value::Object(new_map);
                if def.status_subresource {
                    o["status"] = old.get("status").cloned().unwrap_or(Value::Null);
                }
                for field in [
                    "uid",
                    "creationTimestamp",
                    "generation",
                    "deletionTimestamp",
                    "namespace",
                ] {
                    match old["metadata"].get(field) {
                        Some(v) => o["metadata"][field] = v.clone(),
                        None => {
                            if let Some(m) = o["metadata"].as_object_mut() {
                                m.remove(field);
                            }
                        }
                    }
                }
                o
            }
        };
        if let Some(m) = merged.as_object_mut()
            && m.get("status").is_some_and(Value::is_null)
        {
            m.remove("status");
        }
        if def.has_generation && spec_of(&merged) != spec_of(&old) {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
            merged["metadata"]["generation"] = json!(generation + 1);
        }
        merged["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if merged == old {
            return Ok(old);
        }
        merged["metadata"]["resourceVersion"] = json!(self.bump());
        let finalizers_done = merged["metadata"]
            .get("finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if merged["metadata"].get("deletionTimestamp").is_some() && finalizers_done {
            self.objects.remove(&key);
            return Ok(merged);
        }
        self.objects.insert(key, merged.clone());
        Ok(merged)
    }

    pub fn patch(
        &mut self,
        r: Resource,
        ns: Option<&str>,
        name: &str,
        kind: PatchType,
        patch: &Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        let old = self.get(r, ns, name)?;
        if let Some(rv) = patch
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(&r.def(), name));
        }
        let mut new = apply_patch(&old, kind, patch)?;
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        self.update(r, ns, name, new, part)
    }

    /// DELETE: an object with finalizers only gets a `deletionTimestamp`; a namespace takes
    /// its objects with it.
    pub fn delete(&mut self, r: Resource, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        let key = Self::key(r, ns, name);
        let mut obj = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&r.def(), name))?;
        let has_finalizers = obj["metadata"]
            .get("finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if obj["metadata"].get("deletionTimestamp").is_none() {
                obj["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
                obj["metadata"]["resourceVersion"] = json!(self.bump());
                self.objects.insert(key, obj.clone());
            }
            return Ok(obj);
        }
        self.objects.remove(&key);
        if r == Resource::Namespaces {
            self.objects
                .retain(|(res, o_ns, _), _| !(res.def().namespaced && o_ns == name));
        }
        self.bump();
        Ok(obj)
    }
}

/// Fills in `kind`/`apiVersion` when absent and refuses a body of another type.
fn check_type(def: &ResourceDef, map: &mut Map<String, Value>) -> Result<(), ApiError> {
    let api_version = def.api_version();
    match map.get("kind").and_then(Value::as_str) {
        Some(kind) if kind != def.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind of the body ({kind}) is not {} as the URL says",
                def.kind
            )));
        }
        _ => {}
    }
    match map.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != api_version => {
            return Err(ApiError::bad_request(format!(
                "the apiVersion of the body ({v}) is not {api_version}"
            )));
        }
        _ => {}
    }
    map.insert("kind".into(), json!(def.kind));
    map.insert("apiVersion".into(), json!(api_version));
    Ok(())
}
