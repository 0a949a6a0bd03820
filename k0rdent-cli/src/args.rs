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
#[command(name = "k0rdent", version, propagate_version = true, term_width = 100)]
#[command(after_help = "Examples:
  k0rdent config init && k0rdent plan          start a new deployment
  k0rdent deploy --config k0rdent.yaml         deploy (run it again to resume)
  k0rdent status                               recorded against observed, with drift

Exit codes: 0 success (plan/status: in sync), 1 error, 2 drift or pending changes, 3 blocked by a
gate, 4 state locked by a live run, 130 interrupted. Docs: docs/ in the source tree.")]
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
    /// Output format: human-readable text, or JSON Lines on stdout.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Text, display_order = 900)]
    pub output: OutputFormat,

    /// More log output to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count, display_order = 901)]
    pub verbose: u8,

    /// Colour: on a terminal only (auto), always or never; NO_COLOR turns auto off.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        default_value_t = ColorChoice::Auto,
        display_order = 902
    )]
    pub color: ColorChoice,
}

/// `--config FILE`, on the commands that read the configuration.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArg {
    /// Deployment configuration (YAML; `k0rdent config init` writes one, docs/configuration.md
    /// lists every key). Without it, the one the state recorded at the last deploy.
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        env = "K0RDENT_CONFIG",
        global = true
    )]
    pub config: Option<PathBuf>,
}

/// `--state-dir DIR`, on the commands that use the deployment's state (and their
/// subcommands: `k0rdent state show --state-dir DIR`).
#[derive(Debug, Clone, Args)]
pub struct StateArg {
    /// Directory holding the deployment state, keys and event log.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "./state",
        env = "K0RDENT_STATE_DIR",
        global = true
    )]
    pub state_dir: PathBuf,
    /// Remote state: azblob://ACCOUNT/CONTAINER/PATH[?lease=SECONDS] (Azure Blob Storage; keys
    /// stay in ./state). Auth: AZURE_STORAGE_KEY, AZURE_STORAGE_CONNECTION_STRING or az login.
    #[arg(
        long = "state",
        value_name = "URL",
        env = "K0RDENT_STATE",
        global = true,
        conflicts_with = "state_dir"
    )]
    pub state_url: Option<String>,
    /// Private keys in Azure Key Vault: keyvault://VAULT (secrets named after the cluster id,
    /// fetched into ./state/keys-vault at start, purged by reset). Without it, keys stay in
    /// ./state/keys. Endpoint override: K0RDENT_KEYVAULT_ENDPOINT.
    #[arg(long = "keys", value_name = "URL", env = "K0RDENT_KEYS", global = true)]
    pub keys_url: Option<String>,
}

impl Default for StateArg {
    fn default() -> Self {
        StateArg {
            state_dir: PathBuf::from("./state"),
            state_url: None,
            keys_url: None,
        }
    }
}

/// `-y/--yes`, on the commands that can ask.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct YesArg {
    /// Answer yes to every prompt.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// When to colour the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// When the stream is a terminal and NO_COLOR is not set.
    Auto,
    /// Always, even into a pipe.
    Always,
    /// Never.
    Never,
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
    /// Reads Azure and the nodes first, then runs only what is missing or changed, phase by
    /// phase, saving the state after every step. Steps recorded done and observed done with
    /// unchanged inputs are skipped; interrupted steps resume from their journal; anything
    /// unknown blocks instead of being redone. Interrupt it at any moment (Ctrl-C, kill, a lost
    /// network) and run the same command again to continue.
    #[command(after_help = "Examples:
  k0rdent deploy --config k0rdent.yaml         deploy everything
  k0rdent deploy --until create_vms            stop after the VMs exist
  k0rdent deploy -y                            accept replacements without asking")]
    Deploy {
        #[allow(missing_docs)]
        #[command(flatten)]
        config: ConfigArg,
        #[allow(missing_docs)]
        #[command(flatten)]
        state: StateArg,
        #[allow(missing_docs)]
        #[command(flatten)]
        yes: YesArg,
        /// Stop after this phase and what it needs.
        #[arg(long, value_name = "PHASE", value_parser = phase_names())]
        until: Option<String>,
    },
    /// Show what `deploy` would do now and why; changes nothing.
    ///
    /// Observes Azure and the nodes as `deploy` would, runs the read-only preflight checks,
    /// and prints one line per step with what `deploy` would do and why. Takes no lock, so it
    /// works while a deploy runs. Exit code 0 when nothing is to be done, 2 when there are
    /// pending changes or drift, 3 when a gate would block.
    #[command(after_help = "Examples:
  k0rdent plan --config k0rdent.yaml
  k0rdent plan --until create_vms              after `deploy --until create_vms`: exit 0
  k0rdent plan -o json | jq .plan")]
    Plan {
        #[allow(missing_docs)]
        #[command(flatten)]
        config: ConfigArg,
        #[allow(missing_docs)]
        #[command(flatten)]
        state: StateArg,
        /// Judge only this phase and what it needs, as `deploy --until` would run them.
        #[arg(long, value_name = "PHASE", value_parser = phase_names())]
        until: Option<String>,
    },
    /// Show recorded against observed state, per phase and resource, with drift.
    ///
    /// One line per step: what the state recorded, what is there now, and drift where they
    /// differ. Takes no lock. Exit code 0 when in sync, 2 on drift or pending work, 3 when
    /// blocked.
    #[command(after_help = "Examples:
  k0rdent status
  k0rdent status --until connect_vpn
  k0rdent status -o json")]
    Status {
        #[allow(missing_docs)]
        #[command(flatten)]
        config: ConfigArg,
        #[allow(missing_docs)]
        #[command(flatten)]
        state: StateArg,
        /// Judge only this phase and what it needs (see `plan --until`).
        #[arg(long, value_name = "PHASE", value_parser = phase_names())]
        until: Option<String>,
    },
    /// Update the recorded state from reality; changes no infrastructure.
    ///
    /// Observes every step and records what it found (resources that vanished are marked
    /// missing, so the next deploy recreates them).
    #[command(after_help = "Example:
  k0rdent refresh && k0rdent status")]
    Refresh {
        #[allow(missing_docs)]
        #[command(flatten)]
        config: ConfigArg,
        #[allow(missing_docs)]
        #[command(flatten)]
        state: StateArg,
    },
    /// Tear the deployment down in reverse order and archive the state (alias: destroy).
    ///
    /// Asks first, naming the subscription, the resource group, the VMs and the local files
    /// that go (`-y` answers yes). The state is saved after every step, so an interrupted
    /// reset continues where it stopped.
    #[command(
        alias = "destroy",
        after_help = "Examples:
  k0rdent reset
  k0rdent destroy -y                           the same, without asking"
    )]
    Reset {
        #[allow(missing_docs)]
        #[command(flatten)]
        config: ConfigArg,
        #[allow(missing_docs)]
        #[command(flatten)]
        state: StateArg,
        #[allow(missing_docs)]
        #[command(flatten)]
        yes: YesArg,
    },
    /// Manage the WireGuard tunnel from this machine to the nodes.
    ///
    /// The tunnel is what every SSH and Kubernetes API connection goes through. `deploy`
    /// brings it up; after a reboot or `vpn down`, `vpn up` (or `deploy`) brings it back.
    #[command(after_help = "Examples:
  k0rdent vpn status
  k0rdent vpn up")]
    Vpn {
        #[allow(missing_docs)]
        #[command(flatten)]
        state: StateArg,
        /// What to do with the tunnel.
        #[command(subcommand)]
        action: VpnAction,
    },
    /// Print the path of the cluster's kubeconfig (written by install_k0s).
    ///
    /// The kubeconfig reaches the API through the tunnel; `k0rdent vpn status` tells whether
    /// it is up.
    #[command(after_help = "Examples:
  kubectl --kubeconfig \"$(k0rdent kubeconfig)\" get nodes
  eval \"$(k0rdent kubeconfig --export)\"")]
    Kubeconfig {
        #[allow(missing_docs)]
        #[command(flatten)]
        state: StateArg,
        /// Print `export KUBECONFIG=...` for `eval`.
        #[arg(long)]
        export: bool,
    },
    /// Open SSH to a node through the tunnel, with the pinned host key, or run CMD there.
    ///
    /// Checks the tunnel first and says why a node cannot be reached instead of hanging.
    #[command(after_help = "Examples:
  k0rdent ssh k0s-controller-1
  k0rdent ssh k0s-worker-1 -- sudo k0s status")]
    Ssh {
        #[allow(missing_docs)]
        #[command(flatten)]
        config: ConfigArg,
        #[allow(missing_docs)]
        #[command(flatten)]
        state: StateArg,
        /// The node (e.g. k0s-controller-1).
        node: String,
        /// The command to run instead of a shell (after `--`).
        #[arg(last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Print what the deployment would write, from the recorded state.
    ///
    /// Secrets are never printed: the hub's private key is left out.
    #[command(after_help = "Examples:
  k0rdent render k0sctl > k0sctl.yaml
  k0rdent render hub")]
    Render {
        #[allow(missing_docs)]
        #[command(flatten)]
        config: ConfigArg,
        #[allow(missing_docs)]
        #[command(flatten)]
        state: StateArg,
        /// What to print.
        #[command(subcommand)]
        target: RenderTarget,
    },
    /// Adopt a deployment made by the Bash tool (k0rdent-azure-setup) from its directory.
    ///
    /// Reads DIR's .clusterid, state/deployment-state.yaml, wireguard/, azure-resources/ and
    /// k0sctl-config/; writes the keys into keys/ and a state whose next `plan` skips what
    /// exists. Refuses a state directory that already holds a deployment.
    #[command(after_help = "Example:
  k0rdent import-bash-state ~/k0rdent-azure-setup && k0rdent plan")]
    ImportBashState {
        #[allow(missing_docs)]
        #[command(flatten)]
        config: ConfigArg,
        #[allow(missing_docs)]
        #[command(flatten)]
        state: StateArg,
        /// The Bash tool's directory (where it ran: .clusterid, state/, wireguard/, ...).
        dir: PathBuf,
    },
    /// Inspect, repair or move the deployment's state.
    ///
    /// `show` and `history` read without the lock, so they work while a deploy runs;
    /// `migrate` moves the state to Azure Blob Storage or back to a directory.
    #[command(after_help = "Examples:
  k0rdent state show
  k0rdent state history -n 20
  k0rdent state unlock
  k0rdent state migrate --to azblob://myaccount/k0rdent/prod")]
    State {
        #[allow(missing_docs)]
        #[command(flatten)]
        state: StateArg,
        /// What to do with the state.
        #[command(subcommand)]
        action: StateAction,
    },
    /// Print a shell completion script; needs no configuration or state.
    ///
    /// Completes commands, flags and the phases `--until` takes. Install the script where
    /// your shell looks for completions (see the examples).
    #[command(after_help = "Examples:
  k0rdent completions bash > ~/.local/share/bash-completion/completions/k0rdent
  k0rdent completions zsh > \"${fpath[1]}/_k0rdent\"
  k0rdent completions fish > ~/.config/fish/completions/k0rdent.fish")]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) built from this binary's own help.
    #[command(hide = true)]
    Man,
    /// Write a starting configuration.
    ///
    /// `config init` writes a commented configuration (every key with its default) that
    /// plans as is; edit `azure.location` and the sizes, then run `k0rdent plan`.
    #[command(after_help = "Examples:
  k0rdent config init                           ./k0rdent.yaml, 3 controllers + 2 workers
  k0rdent config init --preset minimal --config dev.yaml
  k0rdent config init --preset production --stdout")]
    Config {
        #[allow(missing_docs)]
        #[command(flatten)]
        config: ConfigArg,
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
    #[command(after_help = "Examples:
  k0rdent doctor
  k0rdent doctor --config k0rdent.yaml -o json")]
    Doctor {
        #[allow(missing_docs)]
        #[command(flatten)]
        config: ConfigArg,
        #[allow(missing_docs)]
        #[command(flatten)]
        state: StateArg,
    },
}

/// `--until PHASE`: any name is taken (a misspelt one gets the engine's error, which lists
/// the pipeline's phases and says "did you mean"); the phases are listed in the help and
/// offered by shell completion.
fn phase_names() -> PhaseName {
    PhaseName
}

/// The value parser of `--until`.
#[derive(Debug, Clone, Copy)]
pub struct PhaseName;

impl clap::builder::TypedValueParser for PhaseName {
    type Value = String;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        value
            .to_str()
            .map(str::to_owned)
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidUtf8))
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            crate::phases::PHASES
                .iter()
                .map(|p| clap::builder::PossibleValue::new(*p)),
        ))
    }
}

/// Where a command keeps its state and configuration, and whether it may ask.
#[derive(Debug, Default)]
pub struct Targets {
    /// `--config`, if the command takes one.
    pub config: ConfigArg,
    /// `--state-dir` (the default for commands without one).
    pub state: StateArg,
    /// `-y`.
    pub yes: YesArg,
}

impl Command {
    /// The command's `--config`, `--state-dir` and `-y`, defaults where it has none.
    pub fn targets(&self) -> Targets {
        let t = |config: &ConfigArg, state: &StateArg, yes: YesArg| Targets {
            config: config.clone(),
            state: state.clone(),
            yes,
        };
        let none = ConfigArg::default();
        match self {
            Command::Deploy {
                config, state, yes, ..
            }
            | Command::Reset { config, state, yes } => t(config, state, *yes),
            Command::Plan { config, state, .. }
            | Command::Status { config, state, .. }
            | Command::Refresh { config, state }
            | Command::Ssh { config, state, .. }
            | Command::Render { config, state, .. }
            | Command::ImportBashState { config, state, .. } => t(config, state, YesArg::default()),
            Command::Vpn { state, action } => {
                let yes = match action {
                    VpnAction::Up { yes } | VpnAction::Down { yes } => *yes,
                    VpnAction::Status => YesArg::default(),
                };
                t(&none, state, yes)
            }
            Command::Kubeconfig { state, .. } | Command::State { state, .. } => {
                t(&none, state, YesArg::default())
            }
            Command::Config { config, .. } => t(config, &StateArg::default(), YesArg::default()),
            Command::Doctor { config, state } => t(config, state, YesArg::default()),
            Command::Completions { .. } | Command::Man => Targets::default(),
        }
    }
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
    Up {
        #[allow(missing_docs)]
        #[command(flatten)]
        yes: YesArg,
    },
    /// Bring the tunnel down.
    Down {
        #[allow(missing_docs)]
        #[command(flatten)]
        yes: YesArg,
    },
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
    /// Move the deployment's state and event log to another store, and leave a pointer.
    ///
    /// Takes the lock of the current store (--state-dir, --state, or where a pointer in
    /// ./state leads) and of the destination, copies the state (same generation) and the
    /// event log, reads both back and compares, and only then replaces the old state with a
    /// pointer to the new store. Commands given the old directory follow the pointer; older
    /// k0rdent builds refuse it (it has a newer schema). Private keys and known_hosts never
    /// go to a remote store: they stay in the local directory (a destination directory gets
    /// a copy). Moving back to a directory leaves the pointer in the remote store, naming
    /// this host and directory. An interrupted move leaves the old store in use; run it
    /// again to finish. Refused when the destination holds another deployment.
    #[command(after_help = "Examples:
  k0rdent state migrate --to azblob://myaccount/k0rdent/prod
  k0rdent status                      # follows ./state's pointer to the blob
  k0rdent state migrate --to ./state  # and back: the blob keeps a pointer here")]
    Migrate {
        /// Where to: azblob://ACCOUNT/CONTAINER/PATH, or a local directory.
        #[arg(long, value_name = "URL|DIR")]
        to: String,
    },
}
