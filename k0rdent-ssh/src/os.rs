//! Everything that differs between Linux and macOS, in one place: where tools live, how a
//! WireGuard interface is found (macOS names userspace interfaces `utunN` and maps the friendly
//! name through `/var/run/wireguard/<name>.name`), which backend reads it, and how the local
//! routing table is listed. The rest of the crate is platform-free.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;
use wireguard_control::Backend;

use k0rdent_process::{Command, ProcessError};

/// Directories where WireGuard userspace implementations keep their control sockets.
const SOCKET_DIRS: [&str; 2] = ["/var/run/wireguard", "/run/wireguard"];

/// Whether this process runs as root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// One IPv4 route of the local routing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRoute {
    /// Destination network (`0.0.0.0/0` for the default route).
    pub destination: Ipv4Net,
    /// Outgoing interface, if the table names one.
    pub device: Option<String>,
}

impl std::fmt::Display for LocalRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.device {
            Some(d) => write!(f, "{} dev {d}", self.destination),
            None => write!(f, "{}", self.destination),
        }
    }
}

/// Finds `name` on `PATH` or in the platform's usual tool directories.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for extra in extra_tool_dirs() {
        dirs.push(PathBuf::from(extra));
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// Whether `p` is a regular file with an execute bit (what a `PATH` lookup accepts).
pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(target_os = "macos")]
fn extra_tool_dirs() -> &'static [&'static str] {
    // Homebrew on Apple Silicon and on Intel.
    &["/opt/homebrew/bin", "/usr/local/bin", "/usr/sbin", "/sbin"]
}

#[cfg(not(target_os = "macos"))]
fn extra_tool_dirs() -> &'static [&'static str] {
    &["/usr/bin", "/usr/sbin", "/sbin", "/bin"]
}

/// The control socket of a userspace WireGuard interface, if one exists.
pub fn userspace_socket(interface: &str) -> Option<PathBuf> {
    let sock_name = socket_name(interface)?;
    SOCKET_DIRS
        .iter()
        .map(|d| Path::new(d).join(format!("{sock_name}.sock")))
        .find(|p| p.exists())
}

#[cfg(target_os = "macos")]
fn socket_name(interface: &str) -> Option<String> {
    utun_name(interface)
}

#[cfg(not(target_os = "macos"))]
fn socket_name(interface: &str) -> Option<String> {
    Some(interface.to_owned())
}

/// On macOS, the `utunN` device behind a friendly WireGuard name.
#[cfg(target_os = "macos")]
pub fn utun_name(interface: &str) -> Option<String> {
    SOCKET_DIRS.iter().find_map(|d| {
        std::fs::read_to_string(Path::new(d).join(format!("{interface}.name")))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    })
}

/// The backend that reads `interface`: userspace when a control socket exists, else the
/// kernel (Linux only). Chosen explicitly, never wireguard-control's default.
pub fn backend_for(interface: &str) -> Backend {
    if userspace_socket(interface).is_some() {
        return Backend::Userspace;
    }
    #[cfg(target_os = "linux")]
    {
        Backend::Kernel
    }
    #[cfg(not(target_os = "linux"))]
    {
        Backend::Userspace
    }
}

/// Whether a network interface named `interface` exists (no privileges needed).
#[cfg(target_os = "linux")]
pub fn interface_exists(interface: &str) -> bool {
    Path::new("/sys/class/net").join(interface).exists()
}

/// Whether a network interface named `interface` exists (no privileges needed).
#[cfg(target_os = "macos")]
pub fn interface_exists(interface: &str) -> bool {
    let Some(utun) = utun_name(interface) else {
        return false;
    };
    std::process::Command::new("/sbin/ifconfig")
        .arg(&utun)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Lists the IPv4 routes of the main routing table.
///
/// # Errors
/// [`ProcessError`] if the routing tool fails.
pub async fn local_routes() -> Result<Vec<LocalRoute>, ProcessError> {
    let (program, args) = route_command();
    let program = find_program(program).unwrap_or_else(|| PathBuf::from(program));
    let out = Command::new(program)
        .args(args)
        .timeout(Duration::from_secs(5))
        .run()
        .await?;
    Ok(parse_routes(&out.stdout))
}

#[cfg(target_os = "linux")]
fn route_command() -> (&'static str, &'static [&'static str]) {
    ("ip", &["-4", "route", "show", "table", "main"])
}

#[cfg(target_os = "macos")]
fn route_command() -> (&'static str, &'static [&'static str]) {
    ("netstat", &["-rn", "-f", "inet"])
}

/// Parses `ip -4 route show` output.
#[cfg(target_os = "linux")]
pub fn parse_routes(text: &str) -> Vec<LocalRoute> {
    const TYPES: [&str; 7] = [
        "unicast",
        "unreachable",
        "blackhole",
        "prohibit",
        "throw",
        "local",
        "broadcast",
    ];
    let mut routes = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace().peekable();
        if words.peek().is_some_and(|w| TYPES.contains(w)) {
            words.next();
        }
        let Some(dst) = words.next() else { continue };
        let destination = if dst == "default" {
            Some(Ipv4Net::default())
        } else {
            parse_dst(dst)
        };
        let Some(destination) = destination else {
            continue;
        };
        let tokens: Vec<&str> = words.collect();
        let device = tokens
            .windows(2)
            .find(|w| w[0] == "dev")
            .map(|w| w[1].to_owned());
        routes.push(LocalRoute {
            destination,
            device,
        });
    }
    routes
}

/// Parses `netstat -rn -f inet` output (abbreviated destinations such as `10/8`, `172.16`).
#[cfg(target_os = "macos")]
pub fn parse_routes(text: &str) -> Vec<LocalRoute> {
    let mut routes = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 4 {
            continue;
        }
        let destination = if cols[0] == "default" {
            Some(Ipv4Net::default())
        } else {
            parse_abbreviated(cols[0])
        };
        if let Some(destination) = destination {
            routes.push(LocalRoute {
                destination,
                device: Some(cols[3].to_owned()),
            });
        }
    }
    routes
}

#[cfg(target_os = "macos")]
fn parse_abbreviated(s: &str) -> Option<Ipv4Net> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (s, None),
    };
    let parts: Vec<u8> = addr
        .split('.')
        .map(|p| p.parse::<u8>())
        .collect::<Result<_, _>>()
        .ok()?;
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    octets[..parts.len()].copy_from_slice(&parts);
    let prefix = len.unwrap_or(u8::try_from(parts.len() * 8).ok()?);
    Ipv4Net::new(Ipv4Addr::from(octets), prefix)
        .ok()
        .map(|n| n.trunc())
}

#[cfg(target_os = "linux")]
fn parse_dst(s: &str) -> Option<Ipv4Net> {
    if let Ok(n) = s.parse::<Ipv4Net>() {
        return Some(n.trunc());
    }
    s.parse::<Ipv4Addr>()
        .ok()
        .and_then(|a| Ipv4Net::new(a, 32).ok())
}

/// The platform's description of where a WireGuard interface lives, for messages.
pub fn describe_interface(interface: &str) -> String {
    #[cfg(target_os = "macos")]
    {
        match utun_name(interface) {
            Some(u) => format!("{interface} ({u})"),
            None => interface.to_owned(),
        }
    }
    #[cfg(not(target_os = "macos"))]
    {
        interface.to_owned()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn ip_route_output_is_parsed_with_devices() {
        let text = "default via 192.0.2.1 dev eth0 onlink \n\
                    172.24.24.0/24 dev wgk0abc proto kernel scope link src 172.24.24.1 \n\
                    unreachable 10.9.0.0/16 \n\
                    198.51.100.5 dev veth0 scope link\n";
        let r = parse_routes(text);
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].destination.prefix_len(), 0);
        assert_eq!(r[0].device.as_deref(), Some("eth0"));
        assert_eq!(r[1].destination.to_string(), "172.24.24.0/24");
        assert_eq!(r[1].device.as_deref(), Some("wgk0abc"));
        assert_eq!(r[2].destination.to_string(), "10.9.0.0/16");
        assert_eq!(r[2].device, None);
        assert_eq!(r[3].destination.to_string(), "198.51.100.5/32");
    }

    #[test]
    fn garbage_routes_are_skipped() {
        assert!(parse_routes("nonsense here\n\n::1 dev lo").is_empty());
    }
}
