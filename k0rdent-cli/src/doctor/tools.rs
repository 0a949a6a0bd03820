//! The tool checks: k0sctl, helm and kubectl as the install phases find and version-check
//! them ([`crate::tools::check`], honouring `tools.<name>`), and the WireGuard tools as
//! `vpn up` finds them (`wg-quick`, `wg`, and `wireguard-go` where the kernel has no
//! WireGuard).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use k0rdent_core::Remedy;
use k0rdent_process::Command;
use k0rdent_ssh::os;

use super::Check;
use crate::config::Loaded;
use crate::tools::{self, HELM, K0SCTL, KUBECTL, ToolSpec, Version};

const WIREGUARD_TOOLS: &str = "install wireguard-tools (Debian/Ubuntu: `sudo apt install wireguard-tools`; macOS: `brew \
     install wireguard-tools`)";

/// Every tool check, in a fixed order.
pub(super) async fn checks(loaded: Option<&Loaded>) -> Vec<Check> {
    let none = BTreeMap::new();
    let configured = loaded.map_or(&none, |l| &l.config.tools);
    let (k0sctl, helm, kubectl, wg_quick, wg, wireguard_go) = tokio::join!(
        versioned(&K0SCTL, configured),
        versioned(&HELM, configured),
        versioned(&KUBECTL, configured),
        wg_quick(),
        wg(),
        wireguard_go(),
    );
    vec![k0sctl, helm, kubectl, wg_quick, wg, wireguard_go]
}

async fn versioned(spec: &ToolSpec, configured: &BTreeMap<String, std::path::PathBuf>) -> Check {
    match tools::check(spec, configured).await {
        Ok(t) => Check::ok(
            spec.name,
            format!(
                "{} at {} (needs {})",
                t.version,
                t.path.display(),
                spec.range
            ),
        ),
        Err(e) => Check::fail(spec.name, e.to_string(), e.remedy().map(Cow::into_owned)),
    }
}

/// The version `program args` prints, if any.
async fn version_of(program: &Path, args: &[&str]) -> Option<Version> {
    let out = Command::new(program)
        .args(args.iter().copied())
        .timeout(Duration::from_secs(10))
        .run()
        .await
        .ok()?;
    Version::find(&format!("{}\n{}", out.stdout, out.stderr))
}

fn found(name: &'static str, path: &Path, version: Option<Version>) -> Check {
    match version {
        Some(v) => Check::ok(name, format!("{v} at {}", path.display())),
        None => Check::ok(name, format!("at {} (no version printed)", path.display())),
    }
}

async fn wg_quick() -> Check {
    // wg-quick is a script without a version flag: being there is what counts.
    match os::find_program("wg-quick") {
        Some(p) => Check::ok("wg-quick", format!("at {}", p.display())),
        None => Check::fail(
            "wg-quick",
            "wg-quick was not found on PATH; `vpn up` and deploy's connect_vpn need it",
            Some(WIREGUARD_TOOLS.to_owned()),
        ),
    }
}

async fn wg() -> Check {
    match os::find_program("wg") {
        Some(p) => {
            let v = version_of(&p, &["--version"]).await;
            found("wg", &p, v)
        }
        None => Check::fail(
            "wg",
            "wg was not found on PATH; wg-quick needs it",
            Some(WIREGUARD_TOOLS.to_owned()),
        ),
    }
}

/// Whether this kernel has WireGuard, so wg-quick needs no userspace implementation.
fn kernel_wireguard() -> bool {
    cfg!(target_os = "linux") && Path::new("/sys/module/wireguard").exists()
}

async fn wireguard_go() -> Check {
    const INSTALL: &str = "install wireguard-go (Debian/Ubuntu: `sudo apt install \
                           wireguard-go`; macOS: `brew install wireguard-go`)";
    match os::find_program("wireguard-go") {
        Some(p) => {
            let v = version_of(&p, &["--version"]).await;
            found("wireguard-go", &p, v)
        }
        None if kernel_wireguard() => Check::ok(
            "wireguard-go",
            "not installed, not needed: this kernel has WireGuard",
        ),
        None => Check::fail(
            "wireguard-go",
            "wireguard-go was not found on PATH, and this kernel has no WireGuard module",
            Some(INSTALL.to_owned()),
        ),
    }
}
