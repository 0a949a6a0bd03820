//! `k0rdent-lab run`: the main job on one machine, as a user would do it — the lab up, the
//! default 3-controller/2-worker deployment through `install_k0rdent` with the plain CLI,
//! killed once mid-way (SIGKILL while k0sctl installs k0s: a crash, a closed laptop) and
//! resumed, `k0rdent status`, the real `kubectl get nodes` through the tunnel with the
//! kubeconfig the deployment wrote, `k0rdent reset`, and the lab down with nothing left.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{LabHome, control};

/// The step whose start triggers the kill, and how long after it.
const KILL_AT: &str = "> install_k0s";
const KILL_AFTER: Duration = Duration::from_millis(1500);

/// Runs it all; the lab goes down whatever happened.
///
/// # Errors
/// The first command that did not do what it should.
pub fn run(home: &LabHome) -> Result<(), String> {
    let start = Instant::now();
    eprintln!(
        "== k0rdent-lab: bringing the lab up in {}",
        home.dir.display()
    );
    control::up(home, false)?;
    let result = deploy_and_check(home);
    eprintln!("\n== k0rdent-lab down");
    let down = control::down(home);
    match &down {
        Ok(()) => eprintln!("nothing left: no VM namespace, process, interface or firewall"),
        Err(e) => eprintln!("error: {e}"),
    }
    eprintln!(
        "\n== done in {:.0} s (deploy, kill, resume, status, kubectl, reset, lab down)",
        start.elapsed().as_secs_f64()
    );
    result.and(down)
}

fn deploy_and_check(home: &LabHome) -> Result<(), String> {
    let path = std::env::var("PATH").unwrap_or_default();
    let vars = home.env_vars(&path)?;
    let command = |program: &str, args: &[&str]| {
        eprintln!("\n$ {program} {}", args.join(" "));
        let mut c = Command::new(if program == "kubectl" {
            program.into()
        } else {
            home.bin_dir().join(program)
        });
        c.args(args).envs(vars.iter().cloned()).stdin(Stdio::null());
        c
    };
    let ok = |program: &str, args: &[&str]| -> Result<(), String> {
        let status = command(program, args)
            .status()
            .map_err(|e| format!("{program}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{program} {} ended with {status}", args.join(" ")))
        }
    };

    // The first deploy, killed while k0sctl installs k0s.
    let mut child = command("k0rdent", &["deploy", "-y"])
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("k0rdent: {e}"))?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut killed = false;
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        eprintln!("{line}");
        if !killed && line.starts_with(KILL_AT) {
            std::thread::sleep(KILL_AFTER);
            child.kill().map_err(|e| format!("killing k0rdent: {e}"))?;
            killed = true;
            eprintln!(
                "\n== killed k0rdent with SIGKILL {:.1} s into install_k0s (a crash): the next deploy resumes",
                KILL_AFTER.as_secs_f64()
            );
        }
    }
    let first = child.wait().map_err(|e| e.to_string())?;
    if !killed {
        return Err(format!(
            "the first deploy ended ({first}) before install_k0s started"
        ));
    }
    ok("k0rdent", &["deploy", "-y"])?;
    ok("k0rdent", &["status"])?;
    let kubeconfig = home.kubeconfig().display().to_string();
    ok(
        "kubectl",
        &["--kubeconfig", &kubeconfig, "get", "nodes", "-o", "wide"],
    )?;
    ok("k0rdent", &["reset", "-y"])
}
