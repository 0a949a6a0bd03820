//! [`step_try!`]: the `?` of a converging step — the value of a ready [`Progress`], or an
//! early `Ok(StepOutcome::pending(..))` that has the engine call `apply` again later.
//!
//! [`Progress`]: super::converge::Progress

/// Unwraps `Progress::Ready(v)` to `v`; on `Progress::Wait(after, detail)` returns
/// `Ok(StepOutcome::pending(after, detail))` from the enclosing `apply`. `Progress` and
/// `StepOutcome` must be in scope where it is used.
macro_rules! step_try {
    ($e:expr) => {
        match $e {
            Progress::Ready(v) => v,
            Progress::Wait(after, detail) => return Ok(StepOutcome::pending(after, detail)),
        }
    };
}
pub(crate) use step_try;
