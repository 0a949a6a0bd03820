//! [`Enablement`]: whether an optional step is part of this deployment, which the planner reads
//! without knowing anything else about the step.

/// Whether an optional step is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enablement {
    /// Runs as part of the pipeline.
    Enabled,
    /// Off: recorded as `skipped` with this reason.
    Disabled(String),
}
