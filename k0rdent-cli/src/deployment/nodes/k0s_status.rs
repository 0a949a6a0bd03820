//! What k0s looks like on a node, from one command over SSH: `sudo k0s status -o json` when
//! the binary is there, else which k0s services are installed. k0sctl reads the same status
//! and refuses to go on when a service is installed but k0s is not running (an apply killed
//! between `k0s install` and the service start), so that case is told apart here.

use serde::{Deserialize, Serialize};

const ABSENT: &str = "__K0RDENT_K0S_ABSENT";
const STOPPED: &str = "__K0RDENT_K0S_STOPPED";
const SERVICE: &str = "__K0RDENT_K0S_SERVICE=";

/// k0s on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "k0s", rename_all = "snake_case")]
pub enum K0sStatus {
    /// No k0s binary.
    NotInstalled,
    /// The binary is there but k0s does not run; `services` are the k0s units installed
    /// (non-empty: k0sctl refuses the host until the service is started).
    Stopped {
        /// Installed k0s service units (`k0scontroller`, `k0sworker`).
        services: Vec<String>,
    },
    /// Running, as k0s reports itself.
    Running {
        /// `controller`, `worker`, `controller+worker` (k0sctl's reading of role and
        /// workloads).
        role: String,
        /// The k0s version (`v1.33.2+k0s.0`).
        version: String,
    },
    /// The output could not be read.
    Unrecognized {
        /// What the node said (shortened).
        output: String,
    },
}

/// The command behind [`parse_k0s_status`].
pub fn k0s_status_command() -> String {
    format!(
        "if ! command -v k0s >/dev/null 2>&1 && [ ! -x /usr/local/bin/k0s ]; then echo {ABSENT}; \
         else PATH=$PATH:/usr/local/bin; sudo -n env PATH=$PATH k0s status -o json 2>/dev/null || {{ \
         for s in k0scontroller k0sworker; do \
         if [ -e /etc/systemd/system/$s.service ] || [ -e /etc/init.d/$s ]; then echo {SERVICE}$s; fi; \
         done; echo {STOPPED}; }}; fi"
    )
}

/// The fields of `k0s status -o json` this reads (k0s prints more).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Raw {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    pid: i64,
    #[serde(default)]
    role: String,
    #[serde(default)]
    workloads: bool,
}

/// Reads the output of [`k0s_status_command`].
pub fn parse_k0s_status(output: &str) -> K0sStatus {
    let text = output.trim();
    if text.contains(ABSENT) {
        return K0sStatus::NotInstalled;
    }
    if text.contains(STOPPED) {
        let services = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix(SERVICE))
            .map(str::to_owned)
            .collect();
        return K0sStatus::Stopped { services };
    }
    match serde_json::from_str::<Raw>(text) {
        Ok(r) if r.pid > 0 && !r.role.is_empty() => {
            // As k0sctl reads it: old names, and workloads on a controller.
            let role = match (r.role.as_str(), r.workloads) {
                ("server", false) => "controller".to_owned(),
                ("server" | "server+worker", _) | ("controller", true) => {
                    "controller+worker".to_owned()
                }
                (other, _) => other.to_owned(),
            };
            K0sStatus::Running {
                role,
                version: r.version.unwrap_or_default(),
            }
        }
        Ok(_) => K0sStatus::Stopped {
            services: Vec::new(),
        },
        Err(_) => K0sStatus::Unrecognized {
            output: text.chars().take(200).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_stopped_absent_and_garbage_are_told_apart() {
        let json = r#"{"Version":"v1.33.2+k0s.0","Pid":1234,"PPid":1,"Role":"controller","SysInit":"linux-systemd","StubFile":"","Output":"","Workloads":true,"SingleNode":false}"#;
        assert_eq!(
            parse_k0s_status(json),
            K0sStatus::Running {
                role: "controller+worker".into(),
                version: "v1.33.2+k0s.0".into()
            }
        );
        let worker = r#"{"Version":"v1.33.2+k0s.0","Pid":99,"Role":"worker","Workloads":true}"#;
        assert!(
            matches!(parse_k0s_status(worker), K0sStatus::Running { role, .. } if role == "worker")
        );
        assert_eq!(
            parse_k0s_status(&format!("{SERVICE}k0scontroller\n{STOPPED}\n")),
            K0sStatus::Stopped {
                services: vec!["k0scontroller".into()]
            }
        );
        assert_eq!(
            parse_k0s_status(&format!("{ABSENT}\n")),
            K0sStatus::NotInstalled
        );
        assert!(matches!(
            parse_k0s_status("Segmentation fault"),
            K0sStatus::Unrecognized { .. }
        ));
    }

    #[test]
    fn the_command_checks_the_binary_before_asking_sudo() {
        let c = k0s_status_command();
        assert!(c.find("command -v k0s") < c.find("sudo -n"), "{c}");
        assert!(c.contains("k0s status -o json"));
    }
}
