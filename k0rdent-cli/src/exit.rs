//! Exit codes, in one place.

use std::process::ExitCode;

use k0rdent_core::state::RunOutcome;

/// How the process exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: success (for `plan`/`status`: in sync, nothing to do).
    Success,
    /// 1: an error, including usage errors.
    Error,
    /// 2: drift or pending changes (`plan`/`status`).
    Changes,
    /// 3: blocked by a gate.
    Blocked,
    /// 4: the state is locked by a live run.
    Locked,
    /// 130: interrupted (Ctrl-C or SIGTERM), the code shells give SIGINT.
    Interrupted,
}

impl ExitStatus {
    #[allow(missing_docs)]
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Error => 1,
            ExitStatus::Changes => 2,
            ExitStatus::Blocked => 3,
            ExitStatus::Locked => 4,
            ExitStatus::Interrupted => 130,
        }
    }

    /// The status for a finished run.
    pub fn of_run(outcome: RunOutcome) -> Self {
        match outcome {
            RunOutcome::Succeeded => ExitStatus::Success,
            RunOutcome::Failed | RunOutcome::Crashed => ExitStatus::Error,
            RunOutcome::Blocked => ExitStatus::Blocked,
            RunOutcome::Interrupted => ExitStatus::Interrupted,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> Self {
        ExitCode::from(s.code())
    }
}
