//! The lab: real OpenSSH servers on loopback and in network namespaces ("VMs" with their own
//! `/etc/ssh`, `/etc/wireguard` and private `/run/wireguard`), real wireguard-go, a hub in the
//! root namespace. Every test takes a [`slot::Slot`] (an flock'ed number) that gives it
//! unique names and subnets, sweeps what a crashed earlier holder left behind, and is
//! released only after [`wireguard::Lab::teardown`] asserted that nothing is left.
//! [`vm_backend::LabVmBackend`] plugs the same nodes into the ARM emulator, so the VMs the
//! real CLI creates are lab nodes with the admin user, host keys and cloud-init of a VM.
//!
//! Needs root and: openssh-server openssh-client wireguard-go wireguard-tools iputils-ping
//! cloud-init sudo iproute2 util-linux. A missing tool or privilege fails the test loudly.

pub mod cli;
pub mod cloud_init;
pub mod cmd;
pub mod netns;
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

/// Panics unless every tool is installed, naming the Debian packages to install.
pub fn require_tools() {
    const TOOLS: [(&str, &str); 10] = [
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
    ];
    let missing: Vec<&str> = TOOLS
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
    assert!(
        missing.is_empty(),
        "lab tools missing; install them: apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
}

/// Both of the above.
pub fn require_lab() {
    require_root();
    require_tools();
}
