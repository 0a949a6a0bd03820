//! [`Pipeline`]: the steps and observers of a deployment, validated as a graph.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::id::StepId;
use crate::observation::Observer;
use crate::plan::{GraphError, PlanGraph, StepSpec};
use crate::state::{DeploymentState, Outputs};
use crate::step::Step;

/// Steps and observers, with their dependency graph validated (no duplicates, no unknown
/// dependencies, no cycles).
#[derive(Clone)]
pub struct Pipeline {
    steps: Vec<Arc<dyn Step>>,
    observers: Vec<Arc<dyn Observer>>,
    graph: PlanGraph,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field(
                "steps",
                &self
                    .steps
                    .iter()
                    .map(|s| s.id().clone())
                    .collect::<Vec<_>>(),
            )
            .field(
                "observers",
                &self
                    .observers
                    .iter()
                    .map(|o| o.name().to_owned())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[allow(missing_docs)] // accessors named after what they return
impl Pipeline {
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    /// The steps, in declaration order (graph indices).
    pub fn steps(&self) -> &[Arc<dyn Step>] {
        &self.steps
    }

    pub fn observers(&self) -> &[Arc<dyn Observer>] {
        &self.observers
    }

    pub fn graph(&self) -> &PlanGraph {
        &self.graph
    }

    /// The recorded outputs of step `i`'s resolved dependencies.
    pub fn upstream_outputs(&self, i: usize, state: &DeploymentState) -> BTreeMap<StepId, Outputs> {
        self.graph
            .deps(i)
            .iter()
            .map(|&d| {
                let id = &self.graph.spec(d).id;
                (
                    id.clone(),
                    state
                        .record(id)
                        .map(|r| r.outputs.clone())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// Collects steps and observers in declaration order; [`build`](PipelineBuilder::build)
/// validates the graph.
#[derive(Default)]
#[must_use]
pub struct PipelineBuilder {
    steps: Vec<Arc<dyn Step>>,
    observers: Vec<Arc<dyn Observer>>,
}

#[allow(missing_docs)] // setters named after what they add
impl PipelineBuilder {
    pub fn step(mut self, step: impl Step + 'static) -> Self {
        self.steps.push(Arc::new(step));
        self
    }

    pub fn step_arc(mut self, step: Arc<dyn Step>) -> Self {
        self.steps.push(step);
        self
    }

    pub fn observer(mut self, observer: impl Observer + 'static) -> Self {
        self.observers.push(Arc::new(observer));
        self
    }

    pub fn observer_arc(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Validates the graph.
    ///
    /// # Errors
    /// [`GraphError`] for duplicate ids, unknown dependencies or cycles.
    pub fn build(self) -> Result<Pipeline, GraphError> {
        let specs = self
            .steps
            .iter()
            .map(|s| StepSpec {
                id: s.id().clone(),
                dependencies: s.dependencies(),
                availability: s.availability(),
            })
            .collect();
        let graph = PlanGraph::new(specs)?;
        Ok(Pipeline {
            steps: self.steps,
            observers: self.observers,
            graph,
        })
    }
}
