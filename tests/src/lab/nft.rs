//! nftables from the lab: running `nft` in a namespace and reading named counters (the VMs'
//! NSG drops, the edge's released-address drops, the hub's SYN counter).

use std::io::Write as _;
use std::process::{Command, Stdio};

/// Runs `nft args…` in namespace `ns` (the root namespace for `None`) with `input` on its
/// standard input.
///
/// # Errors
/// nft's status and output when it fails.
pub fn nft(ns: Option<&str>, args: &[&str], input: &str) -> Result<String, String> {
    let mut command = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "nft"]);
            c
        }
        None => Command::new("nft"),
    };
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| format!("writing to nft: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "`nft {}` in {} failed ({}): {stdout}{}",
            args.join(" "),
            ns.unwrap_or("the root namespace"),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The packets named counter `counter` of table `<family> <table>` counted so far, in namespace
/// `ns` (the root namespace for `None`).
pub fn counter_packets(ns: Option<&str>, family: &str, table: &str, counter: &str) -> u64 {
    let out =
        nft(ns, &["list", "counter", family, table, counter], "").unwrap_or_else(|e| panic!("{e}"));
    let words: Vec<&str> = out.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0] == "packets")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or_else(|| panic!("no packet count in {out}"))
}
