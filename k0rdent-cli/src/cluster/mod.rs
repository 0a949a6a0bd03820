//! The cluster layer: the kubeconfig the install writes and the observer that reads the
//! cluster through it (nodes, the `Management` object, helm releases).

pub mod facts;
pub mod kubeconfig;
pub mod observer;
