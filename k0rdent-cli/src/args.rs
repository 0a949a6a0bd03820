//! Command-line arguments (clap derive). These are raw input; `request.rs` validates them
//! once into what the commands use.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Deploy a k0rdent management cluster on Azure — and resume correctly after any
/// interruption.
///
/// Every command observes reality first; `deploy` then converges only what is missing or
/// changed, saving its state after every step. Run it again after Ctrl-C, a lost network or a
/// reboot and it continues where it stopped.
#[derive(Debug, Parser)]
#[command(
    name = "k0rdent",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Exit codes: 0 success (plan/status: in sync), 1 error, 2 drift or pending \
changes, 3 blocked by a gate, 4 state locked by a live run, 130 interrupted."
)]
pub struct Cli {
    /// Options every command accepts.
    #[command(flatten)]
    pub global: GlobalArgs,

    #[allow(missing_docs)]
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Deployment configuration (the Bash tool's YAML schema).
    #[arg(
        long,
        short = 'c',
        global = true,
        value_name = "FILE",
        env = "K0RDENT_CONFIG"
    )]
    pub config: Option<PathBuf>,

    /// Directory holding the deployment state, keys and event log.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "./state",
        env = "K0RDENT_STATE_DIR"
    )]
    pub state_dir: PathBuf,

    /// Answer yes to every prompt (accept replacements, confirm reset).
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,

    /// Output format: human-readable text, or JSON Lines on stdout.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands; a variant's doc comment is its `--help` text.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Observe, plan, then converge the deployment.
    ///
    /// Steps recorded done and observed done with unchanged inputs are skipped; interrupted
    /// steps resume from their journal; anything unknown blocks instead of being redone.
    Deploy {
        /// Stop after this phase (e.g. create_vms).
        #[arg(long, value_name = "PHASE")]
        until: Option<String>,
    },
    /// Show what `deploy` would do now and why; changes nothing.
    ///
    /// Exit code 0 when nothing is to be done, 2 when there are pending changes or drift,
    /// 3 when a gate would block.
    Plan {
        /// Judge only this phase and what it needs, as `deploy --until` would run them
        /// (after `deploy --until create_vms`, `plan --until create_vms` exits 0).
        #[arg(long, value_name = "PHASE")]
        until: Option<String>,
    },
    /// Show recorded against observed state, per phase and resource, with drift.
    ///
    /// Exit code 0 when in sync, 2 on drift or pending work, 3 when blocked.
    Status {
        /// Judge only this phase and what it needs (see `plan --until`).
        #[arg(long, value_name = "PHASE")]
        until: Option<String>,
    },
    /// Update the recorded state from reality; changes no infrastructure.
    Refresh,
    /// Tear the deployment down in reverse order and archive the state (alias: destroy).
    #[command(alias = "destroy")]
    Reset,
    /// Manage the WireGuard tunnel from this machine to the nodes.
    Vpn {
        /// What to do with the tunnel.
        #[command(subcommand)]
        action: VpnAction,
    },
    /// Print the path of the cluster's kubeconfig (written by install_k0s).
    Kubeconfig {
        /// Print `export KUBECONFIG=...` for `eval`.
        #[arg(long)]
        export: bool,
    },
    /// Open SSH to a node through the tunnel, with the pinned host key, or run CMD there.
    Ssh {
        /// The node (e.g. k0s-controller-1).
        node: String,
        /// The command to run instead of a shell (after `--`).
        #[arg(last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Print what the deployment would write, from the recorded state.
    Render {
        /// What to print.
        #[command(subcommand)]
        target: RenderTarget,
    },
    /// Adopt a deployment made by the Bash tool (k0rdent-azure-setup) from its directory.
    ///
    /// Reads DIR's .clusterid, state/deployment-state.yaml, wireguard/, azure-resources/ and
    /// k0sctl-config/; writes the keys into keys/ and a state whose next `plan` skips what
    /// exists. Refuses a state directory that already holds a deployment.
    ImportBashState {
        /// The Bash tool's directory (where it ran: .clusterid, state/, wireguard/, ...).
        dir: PathBuf,
    },
    /// Inspect or repair the state directory.
    State {
        /// What to do with the state.
        #[command(subcommand)]
        action: StateAction,
    },
    /// Write a starting configuration.
    Config {
        /// What to do with the configuration.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Check what a deploy needs on this machine and in Azure; changes nothing.
    ///
    /// Checks the configuration, the Azure credentials and subscription, the clock against
    /// ARM's, the tools (k0sctl, helm, kubectl, wg-quick, wg, wireguard-go), sudo, the
    /// WireGuard network against local routes, and that the state directory is writable (a
    /// probe file is created and removed). Each failing check says what to do; a check that
    /// cannot run says why.
    ///
    /// Exit code 0 when every check passes (warnings allowed), 1 when one fails.
    Doctor,
}

/// `k0rdent config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Write a commented configuration (every key with its default) that plans as is.
    ///
    /// Writes to --config (or K0RDENT_CONFIG), else ./k0rdent.yaml; `--config -` or
    /// --stdout prints it instead. An existing file is kept unless --force.
    Init {
        /// The starting point: minimal (1 node), default (3 controllers, 2 workers) or
        /// production (3 controllers, 3 workers, larger VMs, 3 zones).
        #[arg(long, value_enum, default_value_t = crate::config::presets::Preset::Default)]
        preset: crate::config::presets::Preset,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
        /// Print the configuration on stdout instead of writing a file.
        #[arg(long)]
        stdout: bool,
    },
}

/// `k0rdent vpn ...`
#[derive(Debug, Subcommand)]
pub enum VpnAction {
    /// Bring the tunnel up (uses sudo when not root).
    Up,
    /// Bring the tunnel down.
    Down,
    /// Show the tunnel and, per node, whether it answers, with a diagnosis.
    Status,
}

/// `k0rdent render ...`
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum RenderTarget {
    /// The hub's wg-quick file (its private key is not printed).
    Hub,
    /// The k0sctl configuration install_k0s would apply now.
    K0sctl,
}

/// `k0rdent state ...`
#[derive(Debug, Subcommand)]
pub enum StateAction {
    /// Print the recorded state (secret-free). Works while a run holds the lock.
    Show,
    /// Print the event log.
    History {
        /// Only the last N events.
        #[arg(long, short = 'n', value_name = "N")]
        last: Option<usize>,
    },
    /// Release the state lock of a run that is gone (a remote or stuck holder).
    Unlock {
        /// Break the lock even if its holder is a live process on this machine.
        #[arg(long)]
        force: bool,
    },
}
