//! The emulated subscription's resources and operations. Time moves lazily: every request
//! first completes the operations that are due.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Instant;

use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) name: String,
    pub(crate) location: String,
    pub(crate) tags: Value,
    pub(crate) deleting: bool,
}

/// Extra state of a VM.
#[derive(Debug, Clone)]
pub(crate) struct VmExtra {
    pub(crate) vm_id: String,
    pub(crate) power: String,
    pub(crate) custom_data: Vec<u8>,
    /// Restarts Azure did (a size change of a running VM), for tests.
    pub(crate) restarts: u32,
    /// The inbound rules last handed to the backend for its NIC.
    pub(crate) inbound: super::inbound_rules::InboundRules,
}

/// A resource in a group (the groups themselves are [`Group`]s).
#[derive(Debug, Clone)]
pub(crate) struct Res {
    pub(crate) id: String,
    pub(crate) rtype: String,
    pub(crate) name: String,
    pub(crate) group: String,
    /// The stored representation (what GET returns, minus runtime fields).
    pub(crate) body: Value,
    pub(crate) state: String,
    pub(crate) created: String,
    pub(crate) changed: String,
    pub(crate) vm: Option<VmExtra>,
}

/// What an operation does when it completes.
#[derive(Debug, Clone)]
pub(crate) enum OpKind {
    /// A PUT/PATCH: the resource reaches Succeeded (or Failed); a VM that was restarted by
    /// it (a size change while running) is running again.
    Provision { id: String, restart: bool },
    /// Delete a resource; a VM's NICs stay reserved and its OS disk follows `deleteOption`.
    Delete { id: String },
    /// Delete a group and everything in it.
    DeleteGroup { group: String },
    /// Power action on a VM, from power state `from`.
    Power {
        id: String,
        to: &'static str,
        from: String,
    },
    /// Nothing changes (an operation that will be rejected).
    Nothing,
}

/// How an operation ends, when not as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    /// It does what it was asked.
    Normal,
    /// It fails; a provisioned resource ends `Failed`.
    Fail(String, String),
    /// It is canceled; a provisioned resource ends `Canceled`, a power action is undone.
    Cancel,
}

/// An accepted long-running operation; it completes at the first request after `due`.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub(crate) kind: OpKind,
    pub(crate) due: Instant,
    pub(crate) backend_done: bool,
    pub(crate) backend_error: Option<String>,
    pub(crate) ending: Ending,
    pub(crate) status: &'static str,
    pub(crate) error: Option<(String, String)>,
    pub(crate) started: String,
    /// When it reached a terminal status (operation URLs may expire after that).
    pub(crate) ended: Option<Instant>,
}

/// Everything in the emulated subscription.
#[derive(Debug, Default)]
pub(crate) struct World {
    pub(crate) groups: BTreeMap<String, Group>,
    pub(crate) res: BTreeMap<String, Res>,
    pub(crate) ops: HashMap<String, Op>,
    pub(crate) ips_used: usize,
    pub(crate) tokens: HashMap<String, Instant>,
    pub(crate) next_private: HashMap<String, u32>,
    /// NIC id (lowercase) → the VM it was last reserved for and since when (a VM deleted
    /// or whose creation failed).
    pub(crate) nic_reserved: HashMap<String, (String, Instant)>,
}

pub(crate) fn now_str() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Backend calls to make after a tick (outside the world lock).
#[derive(Debug, Clone)]
pub(crate) enum Effect {
    /// A VM is gone.
    Deleted(String),
}

impl World {
    pub(crate) fn key(id: &str) -> String {
        id.to_ascii_lowercase()
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Res> {
        self.res.get(&Self::key(id))
    }

    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut Res> {
        self.res.get_mut(&Self::key(id))
    }

    pub(crate) fn find(&self, rtype: &str, name: &str) -> Option<&Res> {
        self.res
            .values()
            .find(|r| r.rtype.eq_ignore_ascii_case(rtype) && r.name.eq_ignore_ascii_case(name))
    }

    /// Completes due operations; returns effects to hand to the backend.
    pub(crate) fn tick(&mut self, now: Instant) -> Vec<Effect> {
        let mut effects = Vec::new();
        let due: Vec<String> = self
            .ops
            .iter()
            .filter(|(_, o)| o.status == "InProgress" && o.due <= now && o.backend_done)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            let Some(op) = self.ops.get(&k).cloned() else {
                continue;
            };
            let mut failed = op
                .backend_error
                .clone()
                .map(|e| ("VMBackendFailed".to_owned(), e));
            if let Ending::Fail(code, message) = &op.ending
                && failed.is_none()
            {
                failed = Some((code.clone(), message.clone()));
            }
            let canceled = failed.is_none() && op.ending == Ending::Cancel;
            match &op.kind {
                OpKind::Provision { id, restart } => {
                    let mut reserve = None;
                    if let Some(r) = self.get_mut(id) {
                        r.state = if failed.is_some() {
                            "Failed"
                        } else if canceled {
                            "Canceled"
                        } else {
                            "Succeeded"
                        }
                        .into();
                        r.changed = now_str();
                        let creating = r.vm.as_ref().is_some_and(|v| v.power == "starting");
                        if let Some(vm) = r.vm.as_mut()
                            && (creating || *restart)
                        {
                            vm.power = if failed.is_some() || canceled {
                                "stopped"
                            } else {
                                "running"
                            }
                            .into();
                        }
                        if failed.is_some() && r.vm.is_some() {
                            reserve = Some(r.clone());
                        }
                    }
                    if let Some(r) = reserve {
                        self.reserve_nics(&r, now);
                    }
                }
                OpKind::Delete { id } => {
                    effects.extend(self.remove(id));
                }
                OpKind::DeleteGroup { group } => {
                    let ids: Vec<String> = self
                        .res
                        .values()
                        .filter(|r| r.group == *group)
                        .map(|r| r.id.clone())
                        .collect();
                    for id in ids {
                        effects.extend(self.remove(&id));
                    }
                    self.groups.remove(group);
                }
                OpKind::Power { id, to, from } => {
                    if let Some(vm) = self.get_mut(id).and_then(|r| r.vm.as_mut()) {
                        vm.power = if canceled || failed.is_some() {
                            from.clone()
                        } else {
                            (*to).to_owned()
                        };
                    }
                }
                OpKind::Nothing => {}
            }
            if let Some(o) = self.ops.get_mut(&k) {
                o.status = if failed.is_some() {
                    "Failed"
                } else if canceled {
                    "Canceled"
                } else {
                    "Succeeded"
                };
                o.error = if canceled {
                    Some((
                        "OperationCanceled".into(),
                        "The operation was canceled.".into(),
                    ))
                } else {
                    failed
                };
                o.ended = Some(now);
            }
        }
        effects
    }

    /// Reserves a VM's NICs for it (Azure keeps them for the VM a while after it is deleted
    /// or its creation failed).
    fn reserve_nics(&mut self, vm: &Res, now: Instant) {
        for nic in vm
            .body
            .pointer("/properties/networkProfile/networkInterfaces")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            if let Some(nid) = nic.get("id").and_then(Value::as_str) {
                self.nic_reserved
                    .insert(Self::key(nid), (vm.id.clone(), now));
            }
        }
    }

    /// Removes a resource (a VM takes its delete-with-VM OS disk along and detaches its NIC;
    /// a NIC releases its public IPs).
    pub(crate) fn remove(&mut self, id: &str) -> Vec<Effect> {
        let Some(r) = self.res.remove(&Self::key(id)) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if r.rtype.eq_ignore_ascii_case(super::reply::types::NIC) {
            self.release_public_ips(&r.id);
        }
        if r.rtype.eq_ignore_ascii_case(super::reply::types::VM) {
            out.push(Effect::Deleted(r.name.clone()));
            self.reserve_nics(&r, Instant::now());
            let disk = r.body.pointer("/properties/storageProfile/osDisk");
            let delete_disk = disk
                .and_then(|d| d.get("deleteOption"))
                .and_then(Value::as_str)
                .is_some_and(|o| o.eq_ignore_ascii_case("Delete"));
            if let Some(did) = disk
                .and_then(|d| d.pointer("/managedDisk/id"))
                .and_then(Value::as_str)
                .map(str::to_owned)
            {
                if delete_disk {
                    self.res.remove(&Self::key(&did));
                } else if let Some(d) = self.get_mut(&did) {
                    d.body["managedBy"] = Value::Null;
                }
            }
            for nic in r
                .body
                .pointer("/properties/networkProfile/networkInterfaces")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                if let Some(nid) = nic.get("id").and_then(Value::as_str)
                    && let Some(n) = self.get_mut(nid)
                {
                    n.body["properties"]["virtualMachine"] = Value::Null;
                }
            }
        }
        out
    }

    /// Disassociates every public IP whose IP configuration is one of NIC `nic_id`'s.
    pub(crate) fn release_public_ips(&mut self, nic_id: &str) {
        let prefix = format!("{}/ipconfigurations/", Self::key(nic_id));
        for p in self.res.values_mut() {
            let of_nic = p
                .body
                .pointer("/properties/ipConfiguration/id")
                .and_then(Value::as_str)
                .is_some_and(|c| c.to_ascii_lowercase().starts_with(&prefix));
            if of_nic
                && let Some(props) = p.body.get_mut("properties").and_then(Value::as_object_mut)
            {
                props.remove("ipConfiguration");
            }
        }
    }

    /// The next private address in a subnet (Azure keeps the first four).
    pub(crate) fn private_ip(&mut self, subnet_id: &str) -> String {
        let prefix = self
            .subnet_prefix(subnet_id)
            .unwrap_or_else(|| "10.0.1.0/24".into());
        let base: std::net::Ipv4Addr = prefix
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or(std::net::Ipv4Addr::new(10, 0, 1, 0));
        let n = self.next_private.entry(Self::key(subnet_id)).or_insert(4);
        let ip = std::net::Ipv4Addr::from(u32::from(base) + *n);
        *n += 1;
        ip.to_string()
    }

    /// The address prefix of the subnet `subnet_id` (`None`: no such VNet or subnet).
    pub(crate) fn subnet_prefix(&self, subnet_id: &str) -> Option<String> {
        let (vnet_id, name) = subnet_id.rsplit_once("/subnets/")?;
        let vnet = self.get(vnet_id)?;
        vnet.body
            .pointer("/properties/subnets")?
            .as_array()?
            .iter()
            .find(|s| {
                s.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })?
            .pointer("/properties/addressPrefix")?
            .as_str()
            .map(str::to_owned)
    }

    /// The public IP a NIC points at, and its address.
    pub(crate) fn nic_public_ip(&self, nic_id: &str) -> (Option<String>, Option<IpAddr>) {
        let Some(nic) = self.get(nic_id) else {
            return (None, None);
        };
        let pip_id = nic
            .body
            .pointer("/properties/ipConfigurations/0/properties/publicIPAddress/id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let addr = pip_id
            .as_deref()
            .and_then(|id| self.get(id))
            .and_then(|p| p.body.pointer("/properties/ipAddress"))
            .and_then(Value::as_str)
            .and_then(|a| a.parse().ok());
        (pip_id, addr)
    }

    /// The representation GET returns.
    pub(crate) fn view(&self, r: &Res, instance_view: bool, power_omitted: bool) -> Value {
        let mut b = r.body.clone();
        b["id"] = json!(r.id);
        b["name"] = json!(r.name);
        b["type"] = json!(r.rtype);
        if !b.get("properties").is_some_and(Value::is_object) {
            b["properties"] = json!({});
        }
        b["properties"]["provisioningState"] = json!(r.state);
        if let Some(vm) = &r.vm {
            b["properties"]["vmId"] = json!(vm.vm_id);
            if instance_view {
                b["properties"]["instanceView"] = instance_view_json(r, vm, power_omitted);
            }
        }
        b
    }
}

/// A VM's instance view.
pub(crate) fn instance_view_json(r: &Res, vm: &VmExtra, power_omitted: bool) -> Value {
    let mut statuses = vec![json!({
        "code": format!("ProvisioningState/{}", r.state.to_ascii_lowercase()),
        "level": if r.state == "Failed" { "Error" } else { "Info" },
        "displayStatus": format!("Provisioning {}", r.state.to_ascii_lowercase()),
        "time": r.changed,
    })];
    if !power_omitted {
        statuses.push(json!({
            "code": format!("PowerState/{}", vm.power),
            "level": "Info",
            "displayStatus": format!("VM {}", vm.power),
        }));
    }
    json!({ "computerName": r.name, "osName": "debian", "statuses": statuses })
}
