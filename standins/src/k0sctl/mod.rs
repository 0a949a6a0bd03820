//! The stand-in k0sctl's view of its input: a strict reader of k0sctl's `Cluster` document
//! ([`config`], [`reader`]), with the rules k0sctl applies before it touches a host
//! ([`rules`]); and the stand-in `k0sctl` itself ([`cli`]: `version`, `apply`,
//! `kubeconfig`), which reaches hosts through the system `ssh` as rig's `openSSH` client
//! does ([`remote`]) and installs a stand-in `k0s` there ([`node_scripts`]).
//!
//! Hosting it (the lab): each node needs an sshd the `openSSH` host block reaches, and its
//! own `/usr/local/bin`, `/var/lib/k0s`, `/etc/systemd/system` and `/etc/k0s` (bind mounts
//! in the node's mount namespace): then the product's own node observer (`sudo k0s status
//! -o json`, the unit files under `/etc/systemd/system`) sees what the stand-in did.
//! Alternatively a node-side root prefix (`SetEnv K0RDENT_STANDIN_ROOT=<dir>` in that sshd's
//! config, or `K0RDENT_STANDIN_ROOT` in the stand-in's environment for all hosts) moves every
//! path under `<dir>`, as the tests here do; it is handed through `sudo` for a non-root user,
//! which needs a sudoers rule that allows it (`NOPASSWD: ALL` does). The operator side needs
//! `~/.ssh` (rig's control sockets); after killing the stand-in, close its control masters
//! (`ssh -O exit -o ControlPath=~/.ssh/ctrl-%C -p PORT USER@ADDRESS`), as after killing the
//! real one.
//!
//! Written from k0sproject/k0sctl (v0.19.0 to v0.32.2: `cmd/flags.go`,
//! `pkg/manifest/reader.go`, `pkg/apis/k0sctl.k0sproject.io/v1beta1/`), k0sproject/rig
//! (v0.18.7 to v2.1.1: the connection types) and k0sproject/version (v0.8.0: k0s version
//! numbers).

pub mod apply;
pub mod cli;
pub mod config;
pub mod facts;
pub mod failure;
pub mod invocation;
mod k0s_version;
pub mod kubeconfig;
pub mod node;
pub mod node_scripts;
pub mod reader;
pub mod register;
pub mod remote;
pub mod reset;
pub mod rules;
pub mod validate;

pub use config::{Cluster, Host, K0s, OpenSsh, Ssh};
pub use k0s_version::K0sVersion;
pub use reader::{ConfigError, read_cluster};

#[cfg(test)]
mod config_tests;
