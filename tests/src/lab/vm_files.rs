//! What Azure's provisioning puts on a new VM's disk, for a lab node: the admin user from
//! `osProfile` (a per-node `/etc/passwd`, `/etc/group` and `/etc/shadow` with the user
//! appended, its home with `~/.ssh/authorized_keys`, passwordless sudo through
//! `/etc/sudoers.d/90-cloud-init-users` as cloud-init writes it), the host name and a
//! machine-id. The files live under the node's root and are bound over the real ones in the
//! node's mount namespace only; the machine's own users never change.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k0rdent_arm_emulator::BackendVm;

/// Where host files come from (the lab machine's own, copied before the user is appended).
const ETC: &str = "/etc";

/// A valid Linux user name that cannot break a passwd line (Azure's own rules are stricter).
fn valid_user(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && name.len() <= 32
}

/// The first id ≥ 1000 that no line of `table` (passwd or group) uses.
fn free_id(table: &str) -> u32 {
    let used: Vec<u32> = table
        .lines()
        .filter_map(|l| l.split(':').nth(2)?.parse().ok())
        .collect();
    (1000..60000).find(|i| !used.contains(i)).unwrap_or(60000)
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

/// `vmId` as a machine-id: 32 lowercase hex digits.
fn machine_id(vm_id: &str) -> String {
    let hex: String = vm_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    format!("{hex:0<32}").chars().take(32).collect()
}

/// Writes the node's system files under `root` (`etc/`, `home/`) and returns the binds
/// (source → target) that make its sessions see them.
///
/// # Errors
/// The admin user's name is invalid or already a user of this machine, or a file could not
/// be written.
pub fn write_vm_files(root: &Path, vm: &BackendVm) -> Result<Vec<(PathBuf, String)>, String> {
    let user = vm.admin_user.as_str();
    if !valid_user(user) {
        return Err(format!("invalid admin user name {user:?}"));
    }
    let passwd = read(&format!("{ETC}/passwd"))?;
    let group = read(&format!("{ETC}/group"))?;
    let shadow = read(&format!("{ETC}/shadow"))?;
    if passwd.lines().any(|l| l.split(':').next() == Some(user)) {
        return Err(format!(
            "admin user {user} is already a user of the lab machine"
        ));
    }
    let (uid, gid) = (free_id(&passwd), free_id(&group));
    let etc = root.join("etc");
    let sudoers = etc.join("sudoers.d");
    let home = root.join("home");
    let ssh_dir = home.join(user).join(".ssh");
    for d in [&etc, &sudoers, &ssh_dir] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let end = |t: &str| {
        if t.ends_with('\n') || t.is_empty() {
            ""
        } else {
            "\n"
        }
    };
    write(
        &etc.join("passwd"),
        &format!(
            "{passwd}{}{user}:x:{uid}:{gid}:{user}:/home/{user}:/bin/bash\n",
            end(&passwd)
        ),
        0o644,
    )?;
    write(
        &etc.join("group"),
        &format!("{group}{}{user}:x:{gid}:\n", end(&group)),
        0o644,
    )?;
    // `*`, not `!`: a locked account cannot log in even with a key when sshd has UsePAM no.
    write(
        &etc.join("shadow"),
        &format!("{shadow}{}{user}:*:20000:0:99999:7:::\n", end(&shadow)),
        0o640,
    )?;
    write(
        &sudoers.join("90-cloud-init-users"),
        &format!(
            "# Created by the k0rdent lab as cloud-init does\n{user} ALL=(ALL) NOPASSWD:ALL\n"
        ),
        0o440,
    )?;
    write(&etc.join("hostname"), &format!("{}\n", vm.name), 0o644)?;
    write(
        &etc.join("hosts"),
        &format!(
            "127.0.0.1 localhost\n127.0.1.1 {}\n::1 localhost ip6-localhost ip6-loopback\n",
            vm.name
        ),
        0o644,
    )?;
    write(
        &etc.join("machine-id"),
        &format!("{}\n", machine_id(&vm.vm_id)),
        0o444,
    )?;
    write(
        &ssh_dir.join("authorized_keys"),
        &vm.ssh_public_keys
            .iter()
            .map(|k| format!("{}\n", k.trim()))
            .collect::<String>(),
        0o600,
    )?;
    std::fs::set_permissions(&ssh_dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| e.to_string())?;
    for p in [
        home.join(user),
        ssh_dir.clone(),
        ssh_dir.join("authorized_keys"),
    ] {
        std::os::unix::fs::chown(&p, Some(uid), Some(gid))
            .map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let mut binds: Vec<(PathBuf, String)> = [
        "passwd",
        "group",
        "shadow",
        "hostname",
        "hosts",
        "machine-id",
    ]
    .iter()
    .filter(|f| Path::new(ETC).join(f).exists())
    .map(|f| (etc.join(f), format!("{ETC}/{f}")))
    .collect();
    binds.push((sudoers, format!("{ETC}/sudoers.d")));
    binds.push((home, "/home".to_owned()));
    Ok(binds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_that_could_break_a_passwd_line_are_refused() {
        assert!(valid_user("k0rdent"));
        assert!(valid_user("_svc-1"));
        for bad in ["", "Root", "a:b", "a\nb", "1abc", "a b"] {
            assert!(!valid_user(bad), "{bad:?}");
        }
    }

    #[test]
    fn ids_skip_the_used_ones_and_machine_ids_are_32_hex_digits() {
        assert_eq!(free_id("a:x:1000:1000::/:/bin/sh\nb:x:1001:1:::\n"), 1002);
        assert_eq!(free_id("root:x:0:0:::\n"), 1000);
        let id = machine_id("0F8FAD5B-D9CB-469F-A165-70867728950E");
        assert_eq!(id, "0f8fad5bd9cb469fa16570867728950e");
        assert_eq!(machine_id("ab"), format!("ab{}", "0".repeat(30)));
    }
}
