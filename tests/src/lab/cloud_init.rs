//! cloud-init on a lab node: the modules the node bootstrap uses, applied the way cloud-init
//! would on a VM, and the units it enabled (started again when a powered-off node boots).

use std::os::unix::fs::PermissionsExt;

use super::cmd;
use super::wireguard::LabNode;

impl LabNode {
    /// Applies a cloud-init fragment the way cloud-init would on a VM, for the modules the
    /// node bootstrap uses: `write_files` (under `/etc/wireguard`), `packages` (must be
    /// installed on this machine) and `runcmd` (`systemctl enable --now wg-quick@X`).
    /// Anything else is an error, so the lab never silently ignores a fragment's content.
    pub fn apply_cloud_config(&self, doc: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(doc).map_err(|e| e.to_string())?;
        if !text.starts_with("#cloud-config\n") {
            return Err("not a #cloud-config document".into());
        }
        let v: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let map = v.as_mapping().ok_or("not a mapping")?;
        for key in map.keys() {
            let k = key.as_str().unwrap_or("?");
            if !matches!(k, "packages" | "write_files" | "runcmd") {
                return Err(format!("the lab does not emulate cloud-init key {k:?}"));
            }
        }
        for f in map
            .get("write_files")
            .and_then(|w| w.as_sequence())
            .into_iter()
            .flatten()
        {
            let path = f
                .get("path")
                .and_then(|p| p.as_str())
                .ok_or("write_files without path")?;
            let content = f.get("content").and_then(|p| p.as_str()).unwrap_or("");
            let mode = f
                .get("permissions")
                .and_then(|p| p.as_str())
                .map(|p| u32::from_str_radix(p.trim_start_matches("0o"), 8))
                .transpose()
                .map_err(|e| e.to_string())?
                .unwrap_or(0o644);
            let rel = path.strip_prefix("/etc/wireguard/").ok_or_else(|| {
                format!("write_files path {path} is outside the emulated /etc/wireguard")
            })?;
            let dest = self.root.join("etc-wireguard").join(rel);
            std::fs::write(&dest, content).map_err(|e| e.to_string())?;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))
                .map_err(|e| e.to_string())?;
        }
        for p in map
            .get("packages")
            .and_then(|w| w.as_sequence())
            .into_iter()
            .flatten()
        {
            let name = p.as_str().ok_or("package is not a string")?;
            let status = cmd::try_run("dpkg-query", &["-W", "-f=${Status}", name])
                .map_err(|e| format!("package {name} is not installed on the lab machine: {e}"))?;
            if !status.contains("install ok installed") {
                return Err(format!(
                    "package {name} is not installed on the lab machine"
                ));
            }
        }
        for c in map
            .get("runcmd")
            .and_then(|w| w.as_sequence())
            .into_iter()
            .flatten()
        {
            let argv: Vec<&str> = c
                .as_sequence()
                .ok_or("runcmd entry is not a list")?
                .iter()
                .filter_map(|a| a.as_str())
                .collect();
            match argv.as_slice() {
                ["systemctl", "enable", "--now", unit] => {
                    let mut units = self.enabled_units();
                    if !units.iter().any(|u| u == unit) {
                        units.push((*unit).to_owned());
                        std::fs::write(self.root.join("enabled-units"), units.join("\n") + "\n")
                            .map_err(|e| e.to_string())?;
                    }
                    self.start_unit(unit)?;
                }
                other => return Err(format!("the lab does not emulate runcmd {other:?}")),
            }
        }
        std::fs::create_dir_all(self.root.join("var-lib-cloud/instance")).unwrap();
        std::fs::write(
            self.root.join("var-lib-cloud/instance/boot-finished"),
            "lab\n",
        )
        .unwrap();
        // What cloud-init leaves in /run/cloud-init when its last stage finished, so the real
        // `cloud-init status` in a VM that binds this directory there answers `done`.
        let run = self.root.join("run-cloud-init");
        std::fs::create_dir_all(&run).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let stage = |start: f64| serde_json::json!({"errors": [], "recoverable_errors": {}, "start": start, "finished": start + 0.5});
        let status = serde_json::json!({"v1": {
            "datasource": "DataSourceAzure [seed=/dev/sr0]",
            "init-local": stage(now - 4.0), "init": stage(now - 3.0),
            "modules-config": stage(now - 2.0), "modules-final": stage(now - 1.0),
            "stage": null}});
        let result = serde_json::json!({"v1": {"datasource": "DataSourceAzure [seed=/dev/sr0]", "errors": [], "recoverable_errors": {}}});
        std::fs::write(run.join("status.json"), status.to_string()).unwrap();
        std::fs::write(run.join("result.json"), result.to_string()).unwrap();
        Ok(())
    }

    /// The units `systemctl enable` recorded on the node's "disk", in order.
    pub fn enabled_units(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.join("enabled-units"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    pub(super) fn start_unit(&self, unit: &str) -> Result<(), String> {
        let iface = unit
            .strip_prefix("wg-quick@")
            .ok_or_else(|| format!("the lab cannot start unit {unit}"))?;
        self.wg_quick("up", iface).map(drop)
    }
}
