//! The command line the stand-in accepts: the subset of Helm 3's that k0rdent-deploy uses,
//! with Helm's names, aliases and global flags; anything else is refused (exit 1, as cobra
//! does), so a client passing a flag Helm would not accept fails here too.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// `helm [global flags] <command>`.
#[derive(Debug, Parser)]
#[command(
    name = "helm",
    about = "The Kubernetes package manager (k0rdent stand-in)",
    disable_version_flag = true
)]
pub struct Cli {
    /// Path to the kubeconfig file.
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Name of the kubeconfig context to use.
    #[arg(long = "kube-context", global = true)]
    pub kube_context: Option<String>,
    /// The address and the port for the Kubernetes API server (overrides the kubeconfig's
    /// `server`, as Helm's global flag does).
    #[arg(long = "kube-apiserver", global = true)]
    pub kube_apiserver: Option<String>,
    /// Namespace scope for this request.
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Enable verbose output.
    #[arg(long, global = true)]
    pub debug: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Helm's commands, as far as the stand-in implements them.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the client version information.
    Version {
        /// Print the version number only.
        #[arg(long)]
        short: bool,
        /// Go template for the output (only `{{.Version}}` is understood).
        #[arg(long)]
        template: Option<String>,
    },
    /// Upgrade a release (or install it with `--install`).
    Upgrade(UpgradeArgs),
    /// Install a chart.
    Install(UpgradeArgs),
    /// List releases.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Roll back a release to a previous revision.
    Rollback {
        /// Release name.
        name: String,
        /// Revision to roll back to (default: the previous one).
        revision: Option<u32>,
        /// Time to wait for any individual Kubernetes operation.
        #[arg(long)]
        timeout: Option<String>,
        /// Wait until resources are ready.
        #[arg(long)]
        wait: bool,
    },
    /// Uninstall a release.
    #[command(aliases = ["un", "delete", "del"])]
    Uninstall {
        /// Release name.
        name: String,
        /// Keep the release records (status `uninstalled`).
        #[arg(long = "keep-history")]
        keep_history: bool,
        /// Time to wait for any individual Kubernetes operation.
        #[arg(long)]
        timeout: Option<String>,
        /// Wait until resources are deleted.
        #[arg(long)]
        wait: bool,
    },
    /// Fetch release history.
    #[command(alias = "hist")]
    History {
        /// Release name.
        name: String,
        /// Output format: table, json or yaml.
        #[arg(short = 'o', long, default_value = "table")]
        output: String,
        /// Maximum number of revisions in the history.
        #[arg(long, default_value_t = 256)]
        max: usize,
    },
    /// Display the status of a release.
    Status {
        /// Release name.
        name: String,
        /// Output format: table, json or yaml.
        #[arg(short = 'o', long, default_value = "table")]
        output: String,
        /// Show this revision instead of the latest.
        #[arg(long)]
        revision: Option<u32>,
    },
}

/// Flags of `upgrade` and `install`.
#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// Release name.
    pub name: String,
    /// Chart reference (`oci://…/kcm`, `repo/chart`, a path).
    pub chart: String,
    /// Install the release when it does not exist (upgrade only).
    #[arg(short = 'i', long)]
    pub install: bool,
    /// Chart version.
    #[arg(long)]
    pub version: Option<String>,
    /// Create the release namespace if absent.
    #[arg(long = "create-namespace")]
    pub create_namespace: bool,
    /// Time to wait for any individual Kubernetes operation.
    #[arg(long)]
    pub timeout: Option<String>,
    /// Wait until resources are ready.
    #[arg(long)]
    pub wait: bool,
    /// Roll back on failure.
    #[arg(long)]
    pub atomic: bool,
    /// Values on the command line.
    #[arg(long)]
    pub set: Vec<String>,
    /// Values files.
    #[arg(short = 'f', long)]
    pub values: Vec<PathBuf>,
}

/// Flags of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show all releases whatever their status.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// List releases across all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// Output format: table, json or yaml.
    #[arg(short = 'o', long, default_value = "table")]
    pub output: String,
    /// Names only.
    #[arg(short = 'q', long)]
    pub short: bool,
    /// Show deployed releases.
    #[arg(long)]
    pub deployed: bool,
    /// Show failed releases.
    #[arg(long)]
    pub failed: bool,
    /// Show pending releases.
    #[arg(long)]
    pub pending: bool,
    /// Show superseded releases.
    #[arg(long)]
    pub superseded: bool,
    /// Show uninstalled releases (with `--keep-history`).
    #[arg(long)]
    pub uninstalled: bool,
    /// Show releases being uninstalled.
    #[arg(long)]
    pub uninstalling: bool,
}

impl ListArgs {
    /// Whether a latest revision in `status` is shown, with Helm's default of deployed and
    /// failed when no state flag is given.
    pub fn shows(&self, status: &str) -> bool {
        if self.all {
            return true;
        }
        let flags = [
            self.deployed,
            self.failed,
            self.pending,
            self.superseded,
            self.uninstalled,
            self.uninstalling,
        ];
        if !flags.iter().any(|f| *f) {
            return matches!(status, "deployed" | "failed");
        }
        match status {
            "deployed" => self.deployed,
            "failed" => self.failed,
            "superseded" => self.superseded,
            "uninstalled" => self.uninstalled,
            "uninstalling" => self.uninstalling,
            s if super::record::is_pending(s) => self.pending,
            _ => false,
        }
    }
}
