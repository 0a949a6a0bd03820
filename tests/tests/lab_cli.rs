//! `k0rdent-lab` as a user meets it: arguments parsed like the CLI's (help creates nothing), a
//! non-empty directory it did not make refused and left intact; `up` printing `export` lines
//! after which the plain `k0rdent` reaches the lab, `status`, `down` leaving nothing, a
//! directory the lab made reused with only its own entries replaced; and `run`, the README's
//! first command, doing the whole job.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use k0rdent_tests::lab::cmd;
use k0rdent_tests::lab_up::LabHome;

fn lab(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_k0rdent-lab"))
        .current_dir(cwd)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Every entry under `dir` (directories too) with a file's bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if p.is_dir() {
                out.insert(rel, None);
                walk(root, &p, out);
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The lab's slot number from its log.
fn slot_of(dir: &Path) -> u8 {
    LabHome::new(dir).unwrap().headline().unwrap().1
}

/// What of slot `n` and of the lab in `dir` still exists: namespaces (VMs and the edge),
/// links, the lab's nftables tables in the root namespace (they belong in the VMs and the
/// edge), and processes whose command line names `dir`.
fn leftovers(n: u8, dir: &Path) -> Vec<String> {
    let mut left = Vec::new();
    let prefix = format!("k0lab{n:02}");
    for ns in cmd::run("ip", &["netns", "list"]).lines() {
        if ns.starts_with(&prefix) {
            left.push(format!("netns {ns}"));
        }
    }
    let links = cmd::run("ip", &["-o", "link", "show"]);
    for l in links.lines() {
        if l.contains(&format!(": k0l{n:02}v")) || l.contains(&format!(": k0l{n:02}e")) {
            left.push(format!("link {l}"));
        }
    }
    for table in cmd::run("nft", &["list", "tables"]).lines() {
        if table.contains("azure_") {
            left.push(table.to_owned());
        }
    }
    let d = dir.display().to_string();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if pid != std::process::id() && String::from_utf8_lossy(&cmdline).contains(&d) {
            left.push(format!(
                "process {pid}: {}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            ));
        }
    }
    left
}

#[test]
fn help_prints_usage_and_creates_nothing() {
    let cwd = tempfile::tempdir().unwrap();
    for args in [&["--help"][..], &["-h"], &["--version"], &["up", "--help"]] {
        let (code, out, err) = lab(cwd.path(), args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.contains("k0rdent-lab"), "{args:?}: {out}");
        assert!(tree(cwd.path()).is_empty(), "{args:?} created something");
    }
    let (_, out, _) = lab(cwd.path(), &["--help"]);
    assert!(out.contains("Usage: k0rdent-lab [COMMAND]"), "{out}");
    for command in ["run", "up", "down", "status"] {
        assert!(out.contains(&format!("\n  {command} ")), "{command}: {out}");
    }
    assert!(
        !out.contains("serve"),
        "the internal command is hidden: {out}"
    );
    // A usage error exits 1 (not clap's 2) and creates nothing either.
    let (code, _, err) = lab(cwd.path(), &["--bogus"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--bogus"), "{err}");
    let (code, _, _) = lab(cwd.path(), &["up", "a", "b"]);
    assert_eq!(code, 1);
    // Looking at a lab that is not up, or taking it down, changes nothing.
    let (code, out, _) = lab(cwd.path(), &["status"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("lab: down"), "{out}");
    let (code, _, err) = lab(cwd.path(), &["down"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no lab is up in"), "{err}");
    assert!(tree(cwd.path()).is_empty());
}

#[test]
fn a_non_empty_directory_the_lab_did_not_make_is_refused_and_left_intact() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join("mine");
    std::fs::create_dir_all(dir.join("state/keys")).unwrap();
    std::fs::write(dir.join("precious.txt"), "do not delete").unwrap();
    std::fs::write(dir.join("state/keys/ssh-admin.key"), "a real key").unwrap();
    std::fs::write(dir.join("k0rdent-lab.yaml"), "my own file").unwrap();
    let before = tree(&dir);
    for command in ["up", "run"] {
        let (code, _, err) = lab(cwd.path(), &[command, "mine"]);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains(&format!(
                "error: {} is not empty and was not made by k0rdent-lab",
                dir.display()
            )),
            "{err}"
        );
        assert!(err.contains("\nhint: "), "{err}");
        assert_eq!(tree(&dir), before, "{command} changed the directory");
    }
}

/// `up` prints `export` lines; with them the plain `k0rdent` (the lab's `bin/` first on
/// PATH) plans and deploys into the lab, and a second deploy while one runs exits 4 naming
/// it; `up` again keeps the running lab; `down` leaves nothing; a second `up` in the same
/// directory replaces only the lab's own entries.
#[test]
fn up_exports_what_the_plain_cli_needs_and_down_leaves_nothing() {
    k0rdent_tests::lab::require_lab();
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join("lab");
    let (code, exports, err) = lab(cwd.path(), &["up", "lab"]);
    assert_eq!(code, 0, "{err}");
    for name in [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_SUBSCRIPTION_ID",
        "AZURE_AUTHORITY_HOST",
        "K0RDENT_ARM_ENDPOINT",
        "K0RDENT_CONFIG",
        "K0RDENT_STATE_DIR",
    ] {
        assert!(
            exports.contains(&format!("export {name}='")),
            "{name}: {exports}"
        );
    }
    assert!(
        exports.contains(&format!(
            "export PATH='{}':\"$PATH\"",
            dir.join("bin").display()
        )),
        "{exports}"
    );
    let n = slot_of(&dir);
    let (code, status, _) = lab(cwd.path(), &["status", "lab"]);
    assert_eq!(code, 0, "{status}");
    assert!(status.starts_with(&format!("lab up: slot {n}")), "{status}");
    assert!(
        status.contains(&format!("VNet edge k0lab{n:02}e, public → private: none")),
        "the edge is up before any VM: {status}"
    );

    // What a user does after `eval "$(k0rdent-lab up)"`, in a shell from a clean environment.
    let shell = |script: &str| {
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("{exports}\n{script}"))
            .current_dir(cwd.path())
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", cwd.path())
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, err) = shell("command -v k0rdent k0sctl helm; k0sctl version; helm version");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with(&format!("{}/k0rdent\n", dir.join("bin").display())),
        "{out}"
    );
    let (code, out, err) = shell("k0rdent plan");
    assert_eq!(code, 2, "a fresh deployment has work to do: {out}{err}");
    let (code, out, err) = shell("k0rdent deploy -y --until setup_network");
    assert_eq!(code, 0, "{out}{err}");
    // Two deploys at once on one state: the second exits 4 naming the live holder, and
    // the first goes on undisturbed.
    let mut first = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{exports}\nexec k0rdent deploy -y --until create_vms"
        ))
        .current_dir(cwd.path())
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", cwd.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(first.stderr.take().unwrap()));
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("> create_vms/") {
            break;
        }
    }
    let (code, out, err) = shell("k0rdent deploy -y");
    assert_eq!(code, 4, "the second run: {out}{err}\nthe first: {seen}");
    assert!(
        err.contains("locked by") && err.contains(&format!("pid {}", first.id())),
        "names the holder: {err}"
    );
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = first.wait().unwrap();
    assert!(status.success(), "{seen}{}", rest.join("\n"));
    let state = std::fs::read_to_string(dir.join("state/deployment-state.yaml")).unwrap();
    assert!(
        state.contains(&format!("path: {}", dir.join("k0rdent-lab.yaml").display())),
        "the configuration is recorded by absolute path"
    );

    // `up` again: the same lab (same slot, same emulator), not a second one.
    let (code, again, err) = lab(cwd.path(), &["up", "lab"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(again, exports);
    assert_eq!(
        std::fs::read_to_string(dir.join("lab.log"))
            .unwrap()
            .matches("lab up: ")
            .count(),
        1
    );

    let (code, _, err) = lab(cwd.path(), &["down", "lab"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(leftovers(n, &dir), Vec::<String>::new());
    let (code, _, _) = lab(cwd.path(), &["status", "lab"]);
    assert_eq!(code, 1);
    assert!(!dir.join("env").exists() && !dir.join("lab.pid").exists());

    // A second lab in the same directory: the user's file stays, the old state goes.
    std::fs::write(dir.join("notes.txt"), "the user's").unwrap();
    let (code, _, err) = lab(cwd.path(), &["up", "lab"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !dir.join("state").exists(),
        "the previous lab's state is gone"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "the user's"
    );
    let n = slot_of(&dir);
    let (code, _, err) = lab(cwd.path(), &["down", "lab"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(leftovers(n, &dir), Vec::<String>::new());
}

/// The README's first command: the whole job, timed.
#[test]
fn run_deploys_three_plus_two_kills_resumes_and_leaves_nothing() {
    k0rdent_tests::lab::require_lab();
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join("lab");
    let started = Instant::now();
    let (code, out, err) = lab(cwd.path(), &["run", "lab"]);
    eprintln!("k0rdent-lab run took {:.1?}", started.elapsed());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("== killed k0rdent with SIGKILL"),
        "interrupted once: {err}"
    );
    // The resumed deploy converged and `status` observed every layer.
    assert!(out.contains("Deployment converged."), "{out}");
    for (step, observed) in [
        ("install_k0s ", "present"),
        ("install_k0rdent ", "present (management=Ready"),
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(step) && l.contains(" completed ") && l.contains(observed)),
            "{step}: {out}"
        );
    }
    assert!(
        out.contains("15 steps: 0 drifted, 0 pending, 0 blocked"),
        "{out}"
    );
    // The real kubectl, the written kubeconfig: the two workers, Ready.
    let nodes: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("k0s-"))
        .filter(|l| l.split_whitespace().nth(1) == Some("Ready"))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(nodes, ["k0s-worker-1", "k0s-worker-2"], "{out}");
    assert!(out.contains("Reset complete"), "{out}");
    assert!(err.contains("nothing left"), "{err}");
    // The API answered on every controller once its k0s ran, and stopped when reset.
    let log = std::fs::read_to_string(dir.join("lab.log")).unwrap();
    for c in ["k0s-controller-1", "k0s-controller-2", "k0s-controller-3"] {
        let served = format!("lab: API served on {c} at ");
        let stopped = format!("lab: API stopped on {c}");
        let (s, t) = (log.find(&served), log.rfind(&stopped));
        assert!(s.is_some() && t > s, "{c}: {log}");
    }
    assert!(!log.contains("API served on k0s-worker"), "{log}");
    let home = LabHome::new(&dir).unwrap();
    assert!(home.daemon_pid().is_none());
    assert_eq!(leftovers(slot_of(&dir), &dir), Vec::<String>::new());
}
