//! Keeps the backend's NSGs current: after every request, the inbound rules in effect for
//! each VM's NIC are resolved again ([`super::effective_rules::resolve`]); a VM whose rules
//! differ from those its backend was last handed gets a [`Job::Inbound`].

use serde_json::Value;

use super::Emu;
use super::effective_rules::resolve;
use super::inbound_rules::InboundRules;
use super::operation::Job;
use super::reply::types;

/// The jobs for every VM whose inbound rules changed since the backend was last told; their
/// new rules are recorded as told.
pub(crate) fn changed(emu: &Emu) -> Vec<Job> {
    if emu.cfg.backend.is_none() {
        return Vec::new();
    }
    let mut w = emu.world();
    let now: Vec<(String, String, InboundRules)> = w
        .res
        .iter()
        .filter(|(_, r)| r.rtype.eq_ignore_ascii_case(types::VM))
        .filter_map(|(key, r)| {
            let told = &r.vm.as_ref()?.inbound;
            let nic = r
                .body
                .pointer("/properties/networkProfile/networkInterfaces/0/id")
                .and_then(Value::as_str)?;
            let rules = resolve(&w, nic);
            (rules != *told).then(|| (key.clone(), r.name.clone(), rules))
        })
        .collect();
    let mut jobs = Vec::new();
    for (key, name, rules) in now {
        if let Some(extra) = w.res.get_mut(&key).and_then(|r| r.vm.as_mut()) {
            extra.inbound = rules;
            jobs.push(Job::Inbound { name });
        }
    }
    jobs
}

/// The inbound rules last recorded for VM `name`, if it still exists.
pub(crate) fn current(emu: &Emu, name: &str) -> Option<InboundRules> {
    let w = emu.world();
    let r = w.find(types::VM, name)?;
    Some(r.vm.as_ref()?.inbound.clone())
}
