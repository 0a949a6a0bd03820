//! `up`, `down` and `status`: the lab's service started in the background, stopped, and
//! looked at, through the files of its directory.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{CLEAN_MARK, LabHome};
use crate::lab::cmd;

/// How long the lab may take to come up (the first `up` on a machine sweeps its slot).
const UP_LIMIT: Duration = Duration::from_secs(120);
/// How long `down` waits for the lab to delete everything.
const DOWN_LIMIT: Duration = Duration::from_secs(200);

/// The last lines of the lab's log, to show why it failed.
fn log_tail(home: &LabHome) -> String {
    let text = std::fs::read_to_string(home.log_file()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Starts the lab in `home` unless it runs already, and returns its `export` lines.
/// `detach`: in a process group of its own, so it outlives the terminal's Ctrl-C (`up`);
/// otherwise Ctrl-C reaches it too and it goes down (`run`).
///
/// # Errors
/// A directory the lab may not use, or a lab that did not come up (with its log's end).
pub fn up(home: &LabHome, detach: bool) -> Result<String, String> {
    if home.daemon_pid().is_some() {
        return std::fs::read_to_string(home.env_file())
            .map_err(|e| format!("{}: {e}", home.env_file().display()));
    }
    crate::lab_dir::prepare(&home.dir).map_err(|e| format!("{e}\nhint: {}", e.remedy()))?;
    let log = std::fs::File::create(home.log_file())
        .map_err(|e| format!("{}: {e}", home.log_file().display()))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| format!("this executable: {e}"))?;
    let mut c = Command::new(exe);
    c.arg("serve")
        .arg(&home.dir)
        .env_remove(super::AS_ENV)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    if detach {
        c.process_group(0);
    }
    let mut child = c.spawn().map_err(|e| format!("starting the lab: {e}"))?;
    let deadline = Instant::now() + UP_LIMIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(home.env_file()) {
            return Ok(text);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the lab exited ({status}) before it was up:\n{}",
                log_tail(home)
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the lab was not up after {UP_LIMIT:?}:\n{}",
                log_tail(home)
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Takes the lab down and checks that it left nothing.
///
/// # Errors
/// No lab runs there, or it did not go down cleanly (with its log's end).
pub fn down(home: &LabHome) -> Result<(), String> {
    let pid = home.daemon_pid().ok_or_else(|| {
        format!(
            "no lab is up in {} (no live k0rdent-lab serve in its lab.pid)",
            home.dir.display()
        )
    })?;
    let _ = cmd::try_run("kill", &["-TERM", &pid.to_string()]);
    if !cmd::wait_for(DOWN_LIMIT.as_secs_f64(), || !cmd::alive(pid)) {
        return Err(format!(
            "the lab (pid {pid}) is still going down after {DOWN_LIMIT:?}:\n{}",
            log_tail(home)
        ));
    }
    let log = std::fs::read_to_string(home.log_file()).unwrap_or_default();
    if log.lines().any(|l| l == CLEAN_MARK) {
        Ok(())
    } else {
        Err(format!(
            "the lab did not go down cleanly:\n{}",
            log_tail(home)
        ))
    }
}

/// What `status` prints, and whether the lab is up.
pub fn status(home: &LabHome) -> (String, bool) {
    if home.daemon_pid().is_none() {
        return (format!("lab: down ({})\n", home.dir.display()), false);
    }
    let (headline, slot) = match home.headline() {
        Some((line, n)) => (line, Some(n)),
        None => ("lab up".to_owned(), None),
    };
    let mut out = format!("{headline} ({})\n", home.dir.display());
    if let Some(n) = slot {
        let prefix = format!("k0lab{n:02}n");
        let list = cmd::try_run("ip", &["netns", "list"]).unwrap_or_default();
        let vms: Vec<&str> = list
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|ns| ns.starts_with(&prefix))
            .collect();
        out.push_str(&format!(
            "VMs (network namespaces): {}\n",
            if vms.is_empty() {
                "none".to_owned()
            } else {
                vms.join(" ")
            }
        ));
        let edge = crate::lab::slot::edge_netns(n);
        if list
            .lines()
            .any(|l| l.split_whitespace().next() == Some(edge.as_str()))
        {
            let pairs: Vec<String> = crate::lab::edge::mappings_in(&edge)
                .iter()
                .map(|(public, private)| format!("{public} → {private}"))
                .collect();
            let pairs = if pairs.is_empty() {
                "none".to_owned()
            } else {
                pairs.join(", ")
            };
            out.push_str(&format!("VNet edge {edge}, public → private: {pairs}\n"));
        }
    }
    out.push_str(&format!(
        "use it: eval \"$(k0rdent-lab up {})\"; take it down: k0rdent-lab down {}\n",
        home.dir.display(),
        home.dir.display()
    ));
    (out, true)
}
