//! Starting configurations for `k0rdent config init`: one commented template (every key with
//! its default, in the Bash tool's schema) filled in per preset. The sizes follow the Bash
//! tool's examples (`minimal`, `development`, `production`); each preset passes this CLI's
//! own validation, which a test proves.

use std::fmt;

/// Which starting configuration `config init` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Preset {
    /// 1 controller that also runs workloads, small VMs: to try k0rdent out.
    Minimal,
    /// 3 controllers (etcd quorum survives one loss) and 2 workers.
    #[default]
    Default,
    /// 3 controllers and 3 workers across 3 zones, larger VMs and disks, longer timeouts.
    Production,
}

impl Preset {
    /// Every preset, in order of size.
    pub const ALL: [Preset; 3] = [Preset::Minimal, Preset::Default, Preset::Production];

    /// The preset's name, as `--preset` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Minimal => "minimal",
            Preset::Default => "default",
            Preset::Production => "production",
        }
    }

    fn values(self) -> Values {
        match self {
            Preset::Minimal => Values {
                summary: "1 controller that also runs workloads, on small VMs: for trying k0rdent out.",
                description: "Minimal k0rdent management cluster (1 controller+worker)",
                controllers: 1,
                controller_zones: "[1]",
                workers: 0,
                worker_zones: "[]",
                controller_size: "Standard_B2s",
                worker_size: "Standard_B2s",
                os_disk: 64,
                ssh_connect: 30,
                vm_creation_minutes: 15,
            },
            Preset::Default => Values {
                summary: "3 controllers (etcd survives the loss of one) and 2 workers.",
                description: "k0rdent management cluster (3 controllers, 2 workers)",
                controllers: 3,
                controller_zones: "[1, 2, 3]",
                workers: 2,
                worker_zones: "[1, 2]",
                controller_size: "Standard_D2s_v5",
                worker_size: "Standard_D4s_v5",
                os_disk: 64,
                ssh_connect: 30,
                vm_creation_minutes: 15,
            },
            Preset::Production => Values {
                summary: "3 controllers and 3 workers across 3 zones, larger VMs and disks, \
                          longer timeouts.",
                description: "Production k0rdent management cluster (3 controllers, 3 workers)",
                controllers: 3,
                controller_zones: "[1, 2, 3]",
                workers: 3,
                worker_zones: "[1, 2, 3]",
                controller_size: "Standard_D4s_v5",
                worker_size: "Standard_D8s_v5",
                os_disk: 128,
                ssh_connect: 60,
                vm_creation_minutes: 20,
            },
        }
    }

    /// The commented configuration; `path` is where it is written (named in its comments).
    pub fn render(self, path: &str) -> String {
        let v = self.values();
        let pairs: &[(&str, String)] = &[
            ("preset", self.name().to_owned()),
            ("summary", v.summary.to_owned()),
            ("description", v.description.to_owned()),
            ("path", path.to_owned()),
            ("controllers", v.controllers.to_string()),
            ("controller_zones", v.controller_zones.to_owned()),
            ("workers", v.workers.to_string()),
            ("worker_zones", v.worker_zones.to_owned()),
            ("controller_size", v.controller_size.to_owned()),
            ("worker_size", v.worker_size.to_owned()),
            ("os_disk", v.os_disk.to_string()),
            ("ssh_connect", v.ssh_connect.to_string()),
            ("vm_creation_minutes", v.vm_creation_minutes.to_string()),
        ];
        let mut text = TEMPLATE.to_owned();
        for (key, value) in pairs {
            text = text.replace(&format!("{{{{{key}}}}}"), value);
        }
        text
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What differs between the presets.
struct Values {
    summary: &'static str,
    description: &'static str,
    controllers: u32,
    controller_zones: &'static str,
    workers: u32,
    worker_zones: &'static str,
    controller_size: &'static str,
    worker_size: &'static str,
    os_disk: u32,
    ssh_connect: u32,
    vm_creation_minutes: u32,
}

const TEMPLATE: &str = include_str!("template.yaml");

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn every_preset_passes_validation_with_the_counts_it_promises() {
        for (preset, controllers, workers) in [
            (Preset::Minimal, 1, 0),
            (Preset::Default, 3, 2),
            (Preset::Production, 3, 3),
        ] {
            let text = preset.render("k0rdent.yaml");
            assert!(!text.contains("{{"), "{preset}: a placeholder is left");
            let (config, _warnings) =
                crate::config::parse(Path::new("k0rdent.yaml"), text.as_bytes())
                    .unwrap_or_else(|e| panic!("{preset}: {e}"));
            assert_eq!(config.controllers.count, controllers, "{preset}");
            assert_eq!(config.workers.count, workers, "{preset}");
        }
    }

    #[test]
    fn every_commented_out_key_is_a_known_key_with_a_valid_value() {
        // Uncommenting an example (`# key: value` indented under its section) keeps the file
        // valid, so the comments never advertise a key the schema rejects.
        let text = Preset::Default.render("k0rdent.yaml");
        let uncommented: String = text
            .lines()
            .map(|l| {
                let trimmed = l.trim_start();
                let indent = &l[..l.len() - trimmed.len()];
                let key_line = |rest: &str| {
                    let (key, value) = rest.trim_start().split_once(':').unwrap_or(("", ""));
                    !key.is_empty()
                        && key
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                        && (value.is_empty() || value.starts_with(' '))
                };
                match trimmed.strip_prefix("# ") {
                    Some(rest) if key_line(rest) => format!("{indent}{rest}\n"),
                    _ => format!("{l}\n"),
                }
            })
            .collect();
        assert!(uncommented.contains("\n  owner: you@example.com\n"));
        assert!(uncommented.contains("\ntools:\n  k0sctl: /usr/local/bin/k0sctl\n"));
        let r = crate::config::parse(Path::new("k0rdent.yaml"), uncommented.as_bytes());
        assert!(r.is_ok(), "{:?}\n{uncommented}", r.err());
    }
}
