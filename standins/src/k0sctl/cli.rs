//! The stand-in `k0sctl` command line: urfave/cli v2 as k0sctl (v0.19 to v0.32) sets it up
//! (`cmd/root.go`, `cmd/flags.go`, `cmd/apply.go`, `cmd/reset.go`, `cmd/kubeconfig.go`,
//! `cmd/version.go`).
//!
//! Go's `flag` package rules: `-name` and `--name` are the same, values as `--name=value` or
//! `--name value`, parsing stops at `--` or the first argument that is not a flag. A flag
//! the command does not define fails with urfave's "Incorrect Usage: flag provided but not
//! defined: -name" and k0sctl's `log.Fatal` (exit 1); an unknown command is urfave's "No help
//! topic for 'x'" (exit 3). Errors of a command are logged by logrus at level fatal, exit 1.
//!
//! Environment: `K0RDENT_STANDIN_K0SCTL_VERSION` (what `version` prints),
//! `K0RDENT_STANDIN_LOG` (invocation log), `K0RDENT_STANDIN_DIR` (lock directory),
//! `K0RDENT_STANDIN_ROOT` (node-side path prefix), `K0RDENT_STANDIN_KUBECONFIG` (the
//! cluster's admin kubeconfig: node registration and `kubeconfig`),
//! `K0RDENT_STANDIN_K0SCTL_PAUSE_AFTER_INSTALL` (seconds between `k0s install` and the
//! service start), `K0RDENT_STANDIN_K0SCTL_CONNECT_TIMEOUT` (seconds a host that cannot be
//! reached is retried, default 600 as in k0sctl), `K0RDENT_STANDIN_K0SCTL_DETACH` (when
//! set, `apply` clears the parent-death signal its parent set, so it outlives a parent killed
//! with SIGKILL — what a program that re-parents itself does; SIGTERM still stops it).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::apply::{ApplyOptions, apply};
use super::failure::Failure;
use super::invocation;
use super::kubeconfig::{KubeconfigOptions, kubeconfig};
use super::reader::read_cluster;
use super::register::NodeApi;
use super::reset::{ResetOptions, reset};

/// What `version` prints unless `K0RDENT_STANDIN_K0SCTL_VERSION` says otherwise.
pub const DEFAULT_VERSION: &str = "v0.32.2";

const COMMON: [(&str, bool); 10] = [
    ("config", true),
    ("c", true),
    ("dry-run", false),
    ("force", false),
    ("debug", false),
    ("d", false),
    ("trace", false),
    ("no-redact", false),
    ("timeout", true),
    ("retry-interval", true),
];

const APPLY: [(&str, bool); 12] = [
    ("concurrency", true),
    ("concurrent-uploads", true),
    ("no-wait", false),
    ("no-drain", false),
    ("restore-from", true),
    ("kubeconfig-out", true),
    ("kubeconfig-api-address", true),
    ("kubeconfig-user", true),
    ("kubeconfig-cluster", true),
    ("disable-downgrade-check", false),
    ("evict-taint", true),
    ("default-timeout", true),
];

/// Flags k0sctl defines whose effect the stand-in does not model: refused rather than
/// silently ignored, so a client that starts using one notices.
const NOT_MODELLED: [&str; 7] = [
    "dry-run",
    "restore-from",
    "kubeconfig-out",
    "kubeconfig-api-address",
    "kubeconfig-user",
    "kubeconfig-cluster",
    "evict-taint",
];

const RESET: [(&str, bool); 2] = [("concurrency", true), ("retry-timeout", true)];

const KUBECONFIG: [(&str, bool); 5] = [
    ("address", true),
    ("user", true),
    ("u", true),
    ("cluster", true),
    ("n", true),
];

/// Parsed flags: name → values (bools as `true`/`false`).
type Flags = BTreeMap<String, Vec<String>>;

/// Go's `flag.Parse` over `args` with the flags `known` (name, takes a value).
fn parse_flags(args: &[String], known: &[&[(&str, bool)]]) -> Result<Flags, Failure> {
    let mut flags = Flags::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" || !a.starts_with('-') || a == "-" {
            break;
        }
        let body = a.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (body, None),
        };
        let takes = known
            .iter()
            .flat_map(|k| k.iter())
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .ok_or_else(|| Failure::Usage(format!("flag provided but not defined: -{name}")))?;
        let value = match (takes, inline) {
            (_, Some(v)) => v,
            (false, None) => "true".into(),
            (true, None) => {
                i += 1;
                args.get(i)
                    .cloned()
                    .ok_or_else(|| Failure::Usage(format!("flag needs an argument: -{name}")))?
            }
        };
        let canonical = match name {
            "c" => "config",
            "d" => "debug",
            "u" => "user",
            "n" => "cluster",
            n => n,
        };
        flags.entry(canonical.to_owned()).or_default().push(value);
        i += 1;
    }
    Ok(flags)
}

fn flag(flags: &Flags, name: &str) -> Option<String> {
    flags.get(name).and_then(|v| v.last().cloned())
}

fn flag_on(flags: &Flags, name: &str) -> bool {
    flag(flags, name).is_some_and(|v| v == "true" || v == "1")
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn fatal(err: &mut dyn Write, msg: &str) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let _ = writeln!(err, "time=\"{secs}\" level=fatal msg={msg:?}");
}

/// Runs the stand-in with `argv` (`argv[0]` the program) and returns the exit code.
pub fn run(argv: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    if let Some(log) = env_path("K0RDENT_STANDIN_LOG")
        && let Err(e) = invocation::record(&log, argv)
    {
        fatal(err, &e.to_string());
        return 1;
    }
    let args = argv.get(1..).unwrap_or_default();
    // Global flags (debug, trace, no-redact) come before the command.
    let global: &[(&str, bool)] = &[
        ("debug", false),
        ("d", false),
        ("trace", false),
        ("no-redact", false),
        ("help", false),
        ("h", false),
    ];
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') && args[i] != "--" {
        if let Err(e) = parse_flags(&args[i..=i], &[global]) {
            let _ = writeln!(err, "Incorrect Usage: {e}\n");
            fatal(err, &e.to_string());
            return 1;
        }
        i += 1;
    }
    let Some(command) = args.get(i) else {
        let _ = writeln!(
            out,
            "NAME:\n   k0sctl - k0s cluster management tool\n\nUSAGE:\n   k0sctl [global options] command [command options]\n\nCOMMANDS:\n   version, apply, kubeconfig, init, reset, backup, config, completion"
        );
        return 0;
    };
    let rest = &args[i + 1..];
    let result = match command.as_str() {
        "version" => version(rest, out),
        "apply" => with_config(
            rest,
            &APPLY,
            |cfg, flags, log| run_apply(cfg, flags, log),
            out,
        ),
        "kubeconfig" => with_config(
            rest,
            &KUBECONFIG,
            |cfg, flags, log| run_kubeconfig(cfg, flags, log),
            out,
        ),
        "reset" => with_config(
            rest,
            &RESET,
            |cfg, flags, log| run_reset(cfg, flags, log),
            out,
        ),
        "init" | "backup" | "config" | "completion" => Err(Failure::Usage(format!(
            "the stand-in k0sctl does not implement `{command}`"
        ))),
        other => {
            let _ = writeln!(err, "No help topic for '{other}'");
            return 3;
        }
    };
    match result {
        Ok(()) => 0,
        Err(Failure::Usage(msg)) if msg.starts_with("flag ") => {
            let _ = writeln!(err, "Incorrect Usage: {msg}\n");
            fatal(err, &msg);
            1
        }
        Err(e) => {
            fatal(err, &e.to_string());
            1
        }
    }
}

fn version(args: &[String], out: &mut dyn Write) -> Result<(), Failure> {
    let flags = parse_flags(
        args,
        &[&[("k0s", false), ("k0sctl", false), ("pre", false)]],
    )?;
    if !flags.is_empty() {
        return Err(Failure::Usage(
            "the stand-in k0sctl cannot look up the latest releases".into(),
        ));
    }
    let v = std::env::var("K0RDENT_STANDIN_K0SCTL_VERSION")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_VERSION.to_owned());
    let _ = writeln!(out, "version: {v}\ncommit: 0000000");
    Ok(())
}

fn with_config(
    args: &[String],
    own: &[(&str, bool)],
    action: impl FnOnce(&Path, &Flags, &mut dyn Write) -> Result<(), Failure>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let flags = parse_flags(args, &[&COMMON, own])?;
    if let Some(f) = NOT_MODELLED.iter().find(|f| flags.contains_key(**f)) {
        return Err(Failure::Usage(format!(
            "the stand-in k0sctl does not model --{f}"
        )));
    }
    let configs = flags.get("config").cloned().unwrap_or_default();
    let config = match configs.as_slice() {
        [] => PathBuf::from("k0sctl.yaml"),
        [one] => PathBuf::from(one),
        _ => {
            return Err(Failure::Usage(
                "the stand-in k0sctl reads exactly one --config".into(),
            ));
        }
    };
    // k0sctl reads the file before anything else; no lock file next to a missing one.
    if let Err(e) = std::fs::metadata(&config) {
        return Err(Failure::Config(format!("failed to read config: {e}")));
    }
    let _lock = invocation::lock(&config, env_path("K0RDENT_STANDIN_DIR").as_deref())?;
    action(&config, &flags, out)
}

fn read(config: &Path) -> Result<super::Cluster, Failure> {
    let text = std::fs::read_to_string(config)
        .map_err(|e| Failure::Config(format!("failed to read config: {e}")))?;
    Ok(read_cluster(&text)?)
}

fn connect_timeout() -> Result<Duration, Failure> {
    match std::env::var("K0RDENT_STANDIN_K0SCTL_CONNECT_TIMEOUT") {
        Ok(s) if !s.is_empty() => s.parse::<f64>().map(Duration::from_secs_f64).map_err(|e| {
            Failure::Usage(format!("K0RDENT_STANDIN_K0SCTL_CONNECT_TIMEOUT={s}: {e}"))
        }),
        _ => Ok(super::remote::CONNECT_TIMEOUT),
    }
}

fn root() -> String {
    std::env::var("K0RDENT_STANDIN_ROOT")
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_owned()
}

fn run_apply(config: &Path, flags: &Flags, out: &mut dyn Write) -> Result<(), Failure> {
    if std::env::var_os("K0RDENT_STANDIN_K0SCTL_DETACH").is_some_and(|v| !v.is_empty()) {
        rustix::process::set_parent_process_death_signal(None)
            .map_err(|e| Failure::Refused(format!("clearing the parent-death signal: {e}")))?;
    }
    let cluster = read(config)?;
    let pause = match std::env::var("K0RDENT_STANDIN_K0SCTL_PAUSE_AFTER_INSTALL") {
        Ok(s) if !s.is_empty() => Some(Duration::from_secs_f64(s.parse::<f64>().map_err(|e| {
            Failure::Usage(format!(
                "K0RDENT_STANDIN_K0SCTL_PAUSE_AFTER_INSTALL={s}: {e}"
            ))
        })?)),
        _ => None,
    };
    let api = match env_path("K0RDENT_STANDIN_KUBECONFIG") {
        Some(p) => Some(NodeApi::from_kubeconfig(&p)?),
        None => None,
    };
    let opts = ApplyOptions {
        force: flag_on(flags, "force"),
        root: root(),
        pause_after_install: pause,
        api,
        connect_timeout: connect_timeout()?,
        skip_downgrade_check: flag_on(flags, "disable-downgrade-check"),
    };
    apply(&cluster, &opts, out).map_err(|e| {
        Failure::Refused(format!(
            "apply failed - log file saved to {}: {e}",
            log_file()
        ))
    })
}

fn run_reset(config: &Path, flags: &Flags, out: &mut dyn Write) -> Result<(), Failure> {
    let cluster = read(config)?;
    let opts = ResetOptions {
        force: flag_on(flags, "force"),
        root: root(),
        connect_timeout: connect_timeout()?,
    };
    reset(&cluster, &opts, out).map_err(|e| {
        Failure::Refused(format!(
            "reset failed - log file saved to {}: {e}",
            log_file()
        ))
    })
}

fn run_kubeconfig(config: &Path, flags: &Flags, out: &mut dyn Write) -> Result<(), Failure> {
    let cluster = read(config)?;
    let opts = KubeconfigOptions {
        address: flag(flags, "address").filter(|a| !a.is_empty()),
        user: flag(flags, "user").filter(|a| !a.is_empty()),
        cluster: flag(flags, "cluster").filter(|a| !a.is_empty()),
        root: root(),
        connect_timeout: connect_timeout()?,
    };
    let admin = env_path("K0RDENT_STANDIN_KUBECONFIG");
    let mut sink = std::io::sink();
    let text = kubeconfig(&cluster, admin.as_deref(), &opts, &mut sink).map_err(|e| {
        Failure::Refused(format!(
            "getting kubeconfig failed - log file saved to {}: {e}",
            log_file()
        ))
    })?;
    out.write_all(text.as_bytes())
        .map_err(|e| Failure::io("write the kubeconfig", e))
}

/// k0sctl's log file path, which its error messages name.
fn log_file() -> String {
    let base = std::env::var("XDG_CACHE_HOME")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| std::env::var("HOME").ok().map(|h| format!("{h}/.cache")))
        .unwrap_or_else(|| "/tmp".into());
    format!("{base}/k0sctl/k0sctl.log")
}
