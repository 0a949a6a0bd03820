//! A VM size change: Azure applies it in place but restarts the VM, and a running VM may have
//! to be deallocated first (`OperationNotAllowed` when the new size is not on its hardware
//! cluster). So it is planned as a disruptive change that needs confirmation, like a replace,
//! and done as deallocate → change the size → start, each step journaled:
//!
//! 1. without confirmation (and no resize under way) the step stops with
//!    `needs_confirmation`, naming the restart;
//! 2. `resize` is journaled (the sizes) before anything is written, so an attempt that
//!    follows a confirmed one carries on from where Azure is; so does a new run after an
//!    interruption (the engine runs an interrupted step with a journal unconfirmed, to settle
//!    it, and the journaled resize counts as confirmed);
//! 3. a VM that is not deallocated is deallocated (`POST deallocate`, key `vm-deallocate`);
//! 4. the size is patched (`PATCH`, key `vm-resize`);
//! 5. the VM step's usual last step starts it again (`POST start`).

use k0rdent_core::{StepContext, StepError};
use serde_json::{Value, json};

use super::{VmStep, not_ready};
use crate::api;
use crate::names::types;
use crate::steps::converge::Progress;

/// The journal key marking a confirmed resize under way.
pub(crate) const RESIZE_KEY: &str = "resize";

/// The live size of a VM, when it differs from `want`.
pub(crate) fn size_change<'a>(existing: &'a Value, want: &str) -> Option<&'a str> {
    existing
        .pointer("/properties/hardwareProfile/vmSize")
        .and_then(Value::as_str)
        .filter(|live| !live.eq_ignore_ascii_case(want))
}

/// What a size change does, for messages and the plan.
pub(crate) fn restart_note(vm: &str, from: &str, to: &str) -> String {
    format!(
        "VM {vm} runs as {from}, configured {to}: resizing deallocates it, changes the size and \
         starts it again (the node restarts)"
    )
}

impl VmStep {
    /// One move of a resize from `live` to the configured size.
    pub(crate) async fn resize(
        &self,
        ctx: &StepContext,
        live: &str,
    ) -> Result<Progress<Value>, StepError> {
        let vn = self.names();
        let what = format!("VM {}", vn.vm);
        let want = &self.vm.size;
        let under_way = ctx.journal().latest(RESIZE_KEY).is_some();
        if !ctx.confirmed() && !under_way {
            return Err(StepError::needs_confirmation(restart_note(
                &vn.vm, live, want,
            )));
        }
        if !under_way {
            ctx.write_journal(RESIZE_KEY, json!({ "from": live, "to": want }))
                .await?;
        }
        let path = self.path(types::VM, &vn.vm);
        let view = self.instance_view(&path, &what).await?;
        let c = self.conv(ctx);
        match view.power_state().as_deref() {
            Some("deallocated") => {
                ctx.progress(format!("{what}: changing its size {live} → {want}"));
                let body = json!({ "properties": { "hardwareProfile": { "vmSize": want } } });
                not_ready(
                    c.write(
                        "vm-resize",
                        "PATCH",
                        &path,
                        api::COMPUTE,
                        Some(&body),
                        &what,
                    )
                    .await?,
                )
            }
            Some("deallocating") => Ok(Progress::Wait(
                self.shared.tuning.poll.after(None),
                format!("{what}: deallocating for the resize"),
            )),
            _ => {
                ctx.progress(format!(
                    "{what}: deallocating it to change its size {live} → {want} (the node restarts)"
                ));
                not_ready(
                    c.write(
                        "vm-deallocate",
                        "POST",
                        &format!("{path}/deallocate"),
                        api::COMPUTE,
                        None,
                        &what,
                    )
                    .await?,
                )
            }
        }
    }
}
