//! The external tools the install phases drive — `k0sctl`, `helm`, `kubectl` — found on
//! `PATH` or at `tools.<name>` in the configuration, and their versions checked before the
//! phase that needs them, with one clear message each.

mod version;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use k0rdent_process::Command;

pub use version::{Range, Version};

/// A tool and the versions it is known to work in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolSpec {
    /// The program's name (and the `tools.<name>` key).
    pub name: &'static str,
    /// The arguments that make it print its version.
    pub version_args: &'static [&'static str],
    /// The versions it is known to work in.
    pub range: Range,
    /// Where to get it.
    pub install: &'static str,
}

/// k0sctl: the range whose strict `v1beta1` field set the generated configuration was
/// checked against ([`crate::k0s::K0SCTL_VERSION_RANGE`]).
pub const K0SCTL: ToolSpec = ToolSpec {
    name: "k0sctl",
    version_args: &["version"],
    range: Range {
        min: Version(0, 19, 0),
        below: Version(0, 33, 0),
    },
    install: "https://github.com/k0sproject/k0sctl/releases",
};

/// helm 3: OCI charts (`oci://`) without the experimental flag since 3.8.0.
pub const HELM: ToolSpec = ToolSpec {
    name: "helm",
    version_args: &["version", "--short"],
    range: Range {
        min: Version(3, 8, 0),
        below: Version(4, 0, 0),
    },
    install: "https://helm.sh/docs/intro/install/",
};

/// kubectl: aggregated discovery and `-o json` of custom resources.
pub const KUBECTL: ToolSpec = ToolSpec {
    name: "kubectl",
    version_args: &["version", "--client", "-o", "json"],
    range: Range {
        min: Version(1, 27, 0),
        below: Version(2, 0, 0),
    },
    install: "https://kubernetes.io/docs/tasks/tools/",
};

/// A tool that was found and answered with a version in its range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    /// Which tool.
    pub spec: ToolSpec,
    /// Where it is.
    pub path: PathBuf,
    /// What it said its version is.
    pub version: Version,
}

/// Why a tool cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// Not on `PATH` and not configured.
    #[error("{name} was not found on PATH")]
    Missing {
        #[allow(missing_docs)]
        name: &'static str,
        /// Where to get it.
        install: &'static str,
    },
    /// `tools.<name>` names a file that does not exist or is not executable.
    #[error("tools.{name} is {path}, which is not an executable file")]
    BadConfigured {
        #[allow(missing_docs)]
        name: &'static str,
        #[allow(missing_docs)]
        path: PathBuf,
    },
    /// It ran but its version could not be read.
    #[error("{path} did not print a version (`{name} {args}`): {output}")]
    NoVersion {
        #[allow(missing_docs)]
        name: &'static str,
        #[allow(missing_docs)]
        path: PathBuf,
        /// The version arguments.
        args: String,
        /// What it printed (shortened), or why it did not run.
        output: String,
    },
    /// Its version is outside the known range.
    #[error("{path} is {name} {version}; this release needs {range}")]
    Unsupported {
        #[allow(missing_docs)]
        name: &'static str,
        #[allow(missing_docs)]
        path: PathBuf,
        #[allow(missing_docs)]
        version: Version,
        #[allow(missing_docs)]
        range: Range,
    },
}

impl k0rdent_core::Remedy for ToolError {
    fn remedy(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(match self {
            ToolError::Missing { name, install } => format!(
                "install {name} ({install}), or set tools.{name} in the configuration to its path"
            )
            .into(),
            ToolError::BadConfigured { name, .. } => format!(
                "fix tools.{name} in the configuration, or remove it to use {name} from PATH"
            )
            .into(),
            ToolError::NoVersion { name, .. } => {
                format!("check that this is {name}: run it with the arguments shown").into()
            }
            ToolError::Unsupported { name, range, .. } => {
                format!("install {name} {range}, or point tools.{name} at one").into()
            }
        })
    }
}

/// Where the tool is: `tools.<name>` when configured, else the first `PATH` entry.
///
/// # Errors
/// [`ToolError::Missing`] or [`ToolError::BadConfigured`].
pub fn locate(
    spec: &ToolSpec,
    configured: &BTreeMap<String, PathBuf>,
) -> Result<PathBuf, ToolError> {
    if let Some(p) = configured.get(spec.name) {
        return if k0rdent_ssh::os::is_executable(p) {
            Ok(p.clone())
        } else {
            Err(ToolError::BadConfigured {
                name: spec.name,
                path: p.clone(),
            })
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(spec.name))
        .find(|p| k0rdent_ssh::os::is_executable(p))
        .ok_or(ToolError::Missing {
            name: spec.name,
            install: spec.install,
        })
}

/// Finds the tool and checks its version.
///
/// # Errors
/// [`ToolError`], one message per problem.
pub async fn check(
    spec: &ToolSpec,
    configured: &BTreeMap<String, PathBuf>,
) -> Result<Tool, ToolError> {
    let path = locate(spec, configured)?;
    let no_version = |output: String| ToolError::NoVersion {
        name: spec.name,
        path: path.clone(),
        args: spec.version_args.join(" "),
        output,
    };
    let out = Command::new(&path)
        .args(spec.version_args.iter().copied())
        .timeout(Duration::from_secs(20))
        .run()
        .await
        .map_err(|e| no_version(e.to_string()))?;
    let text = format!("{}\n{}", out.stdout, out.stderr);
    let version =
        Version::find(&text).ok_or_else(|| no_version(text.trim().chars().take(200).collect()))?;
    if !spec.range.contains(version) {
        return Err(ToolError::Unsupported {
            name: spec.name,
            path,
            version,
            range: spec.range,
        });
    }
    Ok(Tool {
        spec: *spec,
        path,
        version,
    })
}
