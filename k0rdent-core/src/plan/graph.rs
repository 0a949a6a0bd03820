//! The dependency graph of a pipeline, validated once.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::availability::Availability;
use crate::id::StepId;

/// What the planner needs to know about a step, independent of its implementation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSpec {
    /// Unique within a pipeline ([`GraphError::Duplicate`] otherwise).
    pub id: StepId,
    /// Declared dependencies (a phase id means all of its items).
    pub dependencies: Vec<StepId>,
    /// Whether it runs: enabled, disabled on purpose, or unavailable here.
    pub availability: Availability,
}

impl StepSpec {
    /// An enabled, available step.
    pub fn new(id: StepId, dependencies: Vec<StepId>) -> Self {
        StepSpec {
            id,
            dependencies,
            availability: Availability::Enabled,
        }
    }
}

/// Why a set of steps does not form a valid pipeline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // fields named after what they hold
#[non_exhaustive]
pub enum GraphError {
    /// Two steps share an id.
    #[error("step {0} is defined twice")]
    Duplicate(StepId),
    /// A dependency names no step and no phase with items.
    #[error("step {step} depends on {dependency}, which is not in the pipeline")]
    UnknownDependency { step: StepId, dependency: StepId },
    /// The dependencies form a cycle.
    #[error("dependency cycle through {0:?}")]
    Cycle(Vec<StepId>),
}

/// A validated pipeline graph: resolved dependency indices and a deterministic topological
/// order (ties broken by declaration order).
#[derive(Debug, Clone)]
pub struct PlanGraph {
    specs: Vec<StepSpec>,
    deps: Vec<Vec<usize>>,
    order: Vec<usize>,
    index: HashMap<StepId, usize>,
}

impl PlanGraph {
    /// Validates `specs` and orders them.
    ///
    /// # Errors
    /// [`GraphError`] for duplicates, unknown dependencies and cycles.
    pub fn new(specs: Vec<StepSpec>) -> Result<Self, GraphError> {
        let mut index = HashMap::with_capacity(specs.len());
        let mut items_of: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, s) in specs.iter().enumerate() {
            if index.insert(s.id.clone(), i).is_some() {
                return Err(GraphError::Duplicate(s.id.clone()));
            }
            if s.id.is_item() {
                items_of.entry(s.id.phase()).or_default().push(i);
            }
        }
        let mut deps = Vec::with_capacity(specs.len());
        for s in &specs {
            let mut d = Vec::with_capacity(s.dependencies.len());
            for dep in &s.dependencies {
                let before = d.len();
                if let Some(&j) = index.get(dep) {
                    d.push(j);
                }
                if !dep.is_item()
                    && let Some(items) = items_of.get(dep.phase())
                {
                    d.extend(items.iter().copied().filter(|&j| specs[j].id != s.id));
                }
                if d.len() == before {
                    return Err(GraphError::UnknownDependency {
                        step: s.id.clone(),
                        dependency: dep.clone(),
                    });
                }
            }
            d.sort_unstable();
            d.dedup();
            deps.push(d);
        }
        let order = topo_order(&deps).map_err(|left| {
            GraphError::Cycle(left.into_iter().map(|i| specs[i].id.clone()).collect())
        })?;
        Ok(PlanGraph {
            specs,
            deps,
            order,
            index,
        })
    }

    #[allow(missing_docs)]
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// The spec of step `i`.
    pub fn spec(&self, i: usize) -> &StepSpec {
        &self.specs[i]
    }

    /// Resolved dependencies of step `i`.
    pub fn deps(&self, i: usize) -> &[usize] {
        &self.deps[i]
    }

    /// Topological order (dependencies first).
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Index of a step.
    pub fn index_of(&self, id: &StepId) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Indices of the steps `targets` need: the targets (a phase id means all of its items)
    /// and everything they depend on, transitively. `None` if a target is unknown.
    pub fn closure(&self, target: &StepId) -> Option<Vec<bool>> {
        let mut keep = vec![false; self.specs.len()];
        let mut stack: Vec<usize> = Vec::new();
        if let Some(i) = self.index_of(target) {
            stack.push(i);
        }
        if !target.is_item() {
            stack.extend(
                self.specs
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.id.is_item() && s.id.phase() == target.phase())
                    .map(|(i, _)| i),
            );
        }
        if stack.is_empty() {
            return None;
        }
        while let Some(i) = stack.pop() {
            if !keep[i] {
                keep[i] = true;
                stack.extend(self.deps[i].iter().copied());
            }
        }
        Some(keep)
    }

    /// Steps that depend on step `i`, transitively (excluding `i`).
    pub fn dependents(&self, i: usize) -> Vec<bool> {
        let mut out = vec![false; self.specs.len()];
        for &j in &self.order {
            if self.deps[j].iter().any(|&d| d == i || out[d]) {
                out[j] = true;
            }
        }
        out
    }
}

fn topo_order(deps: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = deps.len();
    let mut indegree = vec![0usize; n];
    let mut rev: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, d) in deps.iter().enumerate() {
        indegree[i] = d.len();
        for &j in d {
            rev[j].push(i);
        }
    }
    let mut heap: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| indegree[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = heap.pop() {
        order.push(i);
        for &k in &rev[i] {
            indegree[k] -= 1;
            if indegree[k] == 0 {
                heap.push(Reverse(k));
            }
        }
    }
    if order.len() == n {
        Ok(order)
    } else {
        Err((0..n).filter(|&i| indegree[i] > 0).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> StepId {
        StepId::parse(s).unwrap()
    }

    fn spec(s: &str, deps: &[&str]) -> StepSpec {
        StepSpec::new(id(s), deps.iter().map(|d| id(d)).collect())
    }

    #[test]
    fn phase_dependencies_resolve_to_items_and_order_is_stable() {
        let g = PlanGraph::new(vec![
            spec("setup_vpn", &["create_vms"]),
            spec("create_vms/b", &["setup_network"]),
            spec("create_vms/a", &["setup_network"]),
            spec("setup_network", &[]),
        ])
        .unwrap();
        let names: Vec<_> = g.order().iter().map(|&i| g.spec(i).id.as_str()).collect();
        assert_eq!(
            names,
            ["setup_network", "create_vms/b", "create_vms/a", "setup_vpn"]
        );
        assert_eq!(g.deps(0), &[1, 2]);
        let keep = g.closure(&id("create_vms")).unwrap();
        assert_eq!(keep, [false, true, true, true]);
    }

    #[test]
    fn invalid_graphs_are_rejected() {
        assert!(matches!(
            PlanGraph::new(vec![spec("a", &[]), spec("a", &[])]),
            Err(GraphError::Duplicate(_))
        ));
        assert!(matches!(
            PlanGraph::new(vec![spec("a", &["b"])]),
            Err(GraphError::UnknownDependency { .. })
        ));
        assert!(matches!(
            PlanGraph::new(vec![spec("a", &["b"]), spec("b", &["a"]), spec("c", &[])]),
            Err(GraphError::Cycle(v)) if v.len() == 2
        ));
    }
}
