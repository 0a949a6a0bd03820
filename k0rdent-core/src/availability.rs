//! [`Availability`]: whether a step takes part in this deployment, which the planner reads
//! without knowing anything else about the step.

/// Whether a step takes part in this pipeline, as the planner sees it.
///
/// The two ways of not running differ in what they promise: a disabled step is *meant* to be
/// off (an optional phase the configuration leaves out) and plans as `disabled`, while an
/// unavailable step is wanted but cannot run here (a phase this build does not implement
/// yet) and plans as blocked once it would run, so a deployment never looks complete without
/// it. A disabled step is never reported unavailable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Availability {
    /// Runs as part of the pipeline.
    #[default]
    Enabled,
    /// Off on purpose: planned as `disabled` and recorded as `skipped` with this reason.
    Disabled(String),
    /// Wanted but not runnable in this build or environment: planned as blocked with this
    /// reason whenever it would run, never as done.
    Unavailable(String),
}
