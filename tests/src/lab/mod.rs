//! The lab: real OpenSSH servers on loopback and in network namespaces ("VMs" with their own
//! `/etc/ssh`, `/etc/wireguard` and private `/run/wireguard`), real wireguard-go, a hub in the
//! root namespace. Every test takes a [`slot::Slot`] (an flock'ed number) that gives it
//! unique names and subnets, sweeps what a crashed earlier holder left behind, and is
//! released only after [`wireguard::Lab::teardown`] asserted that nothing is left.
//! [`vm_backend::LabVmBackend`] plugs the same nodes into the ARM emulator, so the VMs the
//! real CLI creates are lab nodes with the admin user, host keys and cloud-init of a VM.
//!
//! Needs root and: openssh-server openssh-client wireguard-go wireguard-tools iputils-ping
//! cloud-init sudo iproute2 util-linux nftables procps strace. A missing tool or privilege fails the test
//! loudly.

pub mod agreement;
pub mod cli;
pub mod cloud_init;
pub mod cmd;
pub mod edge;
pub mod netns;
pub mod nft;
pub mod pipeline;
pub mod slot;
pub mod sshd;
pub mod transcript;
pub mod tunnel;
pub mod vm_backend;
pub mod vm_files;
pub mod wireguard;

/// Panics unless running as root (the lab creates namespaces and interfaces).
pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the lab tests must run as root (they create network namespaces, veths and WireGuard interfaces); \
         CI runs `cargo test --workspace` as root"
    );
}

/// The lab's tools and the Debian packages that have them.
pub const TOOLS: [(&str, &str); 14] = [
    ("/usr/sbin/sshd", "openssh-server"),
    ("ssh", "openssh-client"),
    ("ssh-keygen", "openssh-client"),
    ("wireguard-go", "wireguard-go"),
    ("wg", "wireguard-tools"),
    ("wg-quick", "wireguard-tools"),
    ("ping", "iputils-ping"),
    ("cloud-init", "cloud-init"),
    ("sudo", "sudo"),
    ("nsenter", "util-linux"),
    ("nft", "nftables"),
    ("ip", "iproute2"),
    ("pgrep", "procps"),
    ("strace", "strace"),
];

/// The Debian packages of the [`TOOLS`] that are missing (each package once).
pub fn missing_packages() -> Vec<&'static str> {
    let mut missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(t, _)| {
            if t.starts_with('/') {
                !std::path::Path::new(t).exists()
            } else {
                k0rdent_ssh::os::find_program(t).is_none()
            }
        })
        .map(|(_, p)| *p)
        .collect();
    missing.dedup();
    missing
}

/// Panics unless every tool is installed, naming the Debian packages to install.
pub fn require_tools() {
    let missing = missing_packages();
    assert!(
        missing.is_empty(),
        "lab tools missing; install them: apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
}

/// What `k0rdent-lab` needs before it starts: root, and the lab's packages plus a `kubectl`
/// (Debian's `kubernetes-client` when none is on PATH) — installed with apt-get when
/// missing.
///
/// # Errors
/// Not root, no apt-get for what is missing, or the install failed.
pub fn prepare_machine() -> Result<(), String> {
    if !rustix::process::geteuid().is_root() {
        return Err(
            "the lab needs root (it creates network namespaces, veths and \
                    WireGuard interfaces): run it with sudo"
                .into(),
        );
    }
    let mut missing = missing_packages();
    if k0rdent_ssh::os::find_program("kubectl").is_none() {
        missing.push("kubernetes-client");
    }
    if missing.is_empty() {
        return Ok(());
    }
    if k0rdent_ssh::os::find_program("apt-get").is_none() {
        return Err(format!(
            "the lab needs these Debian packages and there is no apt-get: {}",
            missing.join(" ")
        ));
    }
    eprintln!("Installing what the lab needs: {}", missing.join(" "));
    let apt = |args: &[&str]| {
        std::process::Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("apt-get: {e}"))
            .and_then(|s| {
                s.success()
                    .then_some(())
                    .ok_or_else(|| format!("apt-get {} failed ({s})", args.join(" ")))
            })
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(missing.iter().copied());
    apt(&install)
}

/// Both of the above.
pub fn require_lab() {
    require_root();
    require_tools();
}
