//! What the stand-in puts on and runs on a node: the stand-in `k0s` executable (a shell
//! script) and the root shell scripts of each step, all run through [`super::remote`].
//!
//! Node-side paths, each under `$K0RDENT_STANDIN_ROOT` (empty on lab VMs):
//! - `/usr/local/bin/k0s`: the stand-in k0s (k0sctl's default `k0sBinaryPath`);
//! - `/etc/systemd/system/k0scontroller.service` or `k0sworker.service`: written by
//!   `k0s install`, found by k0sctl's service probe;
//! - `/etc/k0s/k0s.yaml`: the k0s configuration on controllers (k0sctl's `K0sConfigPath`);
//! - `/var/lib/k0s/standin/`: k0s's state (`role`, `args`, `running` with the pid,
//!   `running-version`, `starts`, `restarts`);
//! - `/var/lib/k0s/etcd-members`: `name peerURL` lines, the etcd member list of a controller.

/// The stand-in `k0s` for version `version`. Its root is written in by [`install_binary`]
/// on the node (the node's `$K0RDENT_STANDIN_ROOT`), so it works from any shell there.
///
/// It answers `version`, `status [-o json]` (k0s's `K0sStatus` fields as k0sctl's
/// `gather_k0s_facts.go` reads them), `install controller|worker [flags]`, `start`, `stop`,
/// `reset`, `etcd member-list`, `etcd leave --peer-address IP` and `kubeconfig admin` (which
/// only checks that the controller was initialised: started once).
pub fn k0s_executable(version: &str) -> String {
    format!(
        r##"#!/bin/sh
# Stand-in k0s written by the stand-in k0sctl (k0rdent-standins). Not k0s.
R=__K0RDENT_STANDIN_ROOT__
VERSION={version}
S="$R/var/lib/k0s/standin"
M="$R/var/lib/k0s/etcd-members"
die() {{ echo "Error: $*" >&2; exit 1; }}
unit() {{
  for s in k0scontroller k0sworker; do
    [ -f "$R/etc/systemd/system/$s.service" ] && {{ echo "/etc/systemd/system/$s.service"; return 0; }}
  done
  return 1
}}
case "$1" in
version) echo "$VERSION" ;;
status)
  [ -f "$S/running" ] || die 'status: can'"'"'t get "status" via "/run/k0s/status.sock": dial unix /run/k0s/status.sock: connect: no such file or directory'
  role=$(cat "$S/role"); workloads=false; single=false
  [ "$role" = worker ] && workloads=true
  args="\"/usr/local/bin/k0s\",\"$role\",\"--data-dir=/var/lib/k0s\""
  for a in $(cat "$S/args" 2>/dev/null); do
    args="$args,\"$a\""
    case "$a" in
    --enable-worker|--enable-worker=true) workloads=true ;;
    --single|--single=true) workloads=true; single=true ;;
    esac
  done
  if [ "$2" = "-o" ] && [ "$3" = "json" ]; then
    printf '{{"Version":"%s","Pid":%s,"PPid":1,"Role":"%s","SysInit":"linux-systemd","StubFile":"%s","Output":"","Workloads":%s,"SingleNode":%s,"Args":[%s],"ClusterConfig":null,"K0sVars":null}}\n' \
      "$(cat "$S/running-version")" "$(cat "$S/running")" "$role" "$(unit)" "$workloads" "$single" "$args"
  else
    printf 'Version: %s\nProcess ID: %s\nRole: %s\nWorkloads: %s\nSingleNode: %s\n' \
      "$(cat "$S/running-version")" "$(cat "$S/running")" "$role" "$workloads" "$single"
  fi ;;
install)
  shift; role="$1"; shift
  case "$role" in controller|worker) ;; *) die "unknown role $role" ;; esac
  u=$(unit) && die "failed to install k0s service: init already exists: $u"
  mkdir -p "$S" "$R/etc/systemd/system"
  echo "$role" > "$S/role"
  args=""
  for a in "$@"; do
    case "$a" in --enable-worker) a=--enable-worker=true ;; --single) a=--single=true ;; --no-taints) a=--no-taints=true ;; esac
    args="$args $a"
  done
  echo "$args" > "$S/args"
  printf '[Unit]\nDescription=k0s - Zero Friction Kubernetes\n[Service]\nExecStart=/usr/local/bin/k0s %s --data-dir=/var/lib/k0s%s\n[Install]\nWantedBy=multi-user.target\n' \
    "$role" "$args" > "$R/etc/systemd/system/k0s$role.service" ;;
start)
  unit >/dev/null || die "failed to start k0s service: k0s has not been installed as a service"
  if [ ! -f "$S/running" ]; then
    echo "$$" > "$S/running"; echo "$VERSION" > "$S/running-version"
    n=$(cat "$S/starts" 2>/dev/null || echo 0); echo $((n + 1)) > "$S/starts"
  fi ;;
stop)
  unit >/dev/null || die "failed to stop k0s service: k0s has not been installed as a service"
  rm -f "$S/running" ;;
reset)
  [ -f "$S/running" ] && die "k0s seems to be running! please stop k0s before reset"
  for s in k0scontroller k0sworker; do rm -f "$R/etc/systemd/system/$s.service"; done
  # k0s reset empties its data directory; k0sctl then removes the configuration file.
  rm -rf "$S" "$M" "$R/etc/k0s/k0s.yaml" ;;
etcd)
  [ "$(cat "$S/role" 2>/dev/null)" = controller ] || die "etcd is only available on controllers"
  case "$2" in
  member-list)
    out=""
    if [ -f "$M" ]; then
      while read -r name url; do out="$out${{out:+,}}\"$name\":\"$url\""; done < "$M"
    fi
    printf '{{"members":{{%s}}}}\n' "$out" ;;
  leave)
    [ "$3" = "--peer-address" ] && [ -n "$4" ] || die "usage: k0s etcd leave --peer-address IP"
    grep -q " https://$4:2380\$" "$M" 2>/dev/null || die "peer address $4 is not a member"
    grep -v " https://$4:2380\$" "$M" > "$M.tmp"; mv "$M.tmp" "$M" ;;
  *) die "unknown etcd command $2" ;;
  esac ;;
kubeconfig)
  [ "$2" = admin ] || die "unknown kubeconfig command $2"
  [ "$(cat "$S/role" 2>/dev/null)" = controller ] && [ -f "$S/starts" ] || die "failed to read admin config, check if the control plane is initialized on this node: open /var/lib/k0s/pki/admin.conf: no such file or directory"
  echo "# the stand-in k0sctl prints the admin kubeconfig named by K0RDENT_STANDIN_KUBECONFIG" ;;
*) die "unknown command \"$1\" for \"k0s\"" ;;
esac
"##,
        version = super::remote::shell_quote(version),
    )
}

/// Common head of every step script: `$R` the root, `$K` the k0s binary.
const HEAD: &str = "set -e\nR=\"${K0RDENT_STANDIN_ROOT:-}\"\nK=\"$R/usr/local/bin/k0s\"\nS=\"$R/var/lib/k0s/standin\"\n";

/// Gathers what k0sctl's `GatherFacts`/`GatherK0sFacts` read: `hostname=`, `binary=` (the
/// output of `k0s version`), `service=` (the first of k0scontroller, k0sworker, k0sserver
/// installed), `status=` (`k0s status -o json` when it succeeds).
pub fn probe() -> String {
    format!(
        "{HEAD}set +e\necho \"hostname=$(hostname)\"\n\
         if [ -x \"$K\" ] && v=$(\"$K\" version 2>/dev/null); then echo \"binary=$v\"; fi\n\
         for s in k0scontroller k0sworker k0sserver; do\n  \
           if [ -f \"$R/etc/systemd/system/$s.service\" ]; then echo \"service=/etc/systemd/system/$s.service\"; break; fi\n\
         done\n\
         if [ -x \"$K\" ] && st=$(\"$K\" status -o json 2>/dev/null); then echo \"status=$st\"; fi\n\
         exit 0\n"
    )
}

/// `k0s etcd member-list` on a controller.
pub fn member_list() -> String {
    format!("{HEAD}\"$K\" etcd member-list\n")
}

/// Writes the stand-in k0s binary (k0sctl's `InstallBinaries`), replacing an older one,
/// with the node's root written into it (a root containing `'` or `|` is not supported).
pub fn install_binary(k0s: &str) -> String {
    format!(
        "{HEAD}mkdir -p \"$R/usr/local/bin\"\nsed \"s|^R=__K0RDENT_STANDIN_ROOT__\\$|R='$R'|\" > \"$K.tmp\" <<'K0S_STANDIN_EOF'\n{k0s}K0S_STANDIN_EOF\n\
         chmod 0755 \"$K.tmp\"\nmv \"$K.tmp\" \"$K\"\n"
    )
}

/// Writes `/etc/k0s/k0s.yaml` (k0sctl's `ConfigureK0s`); prints `changed` when it differs
/// from what was there, `unchanged` otherwise.
pub fn configure(config: &str) -> String {
    format!(
        "{HEAD}mkdir -p \"$R/etc/k0s\"\nF=\"$R/etc/k0s/k0s.yaml\"\ncat > \"$F.new\" <<'K0S_STANDIN_EOF'\n{config}K0S_STANDIN_EOF\n\
         if [ -f \"$F\" ] && cmp -s \"$F\" \"$F.new\"; then rm -f \"$F.new\"; echo unchanged; else mv \"$F.new\" \"$F\"; echo changed; fi\n"
    )
}

/// `k0s install "$@"`.
pub fn install() -> String {
    format!("{HEAD}\"$K\" install \"$@\"\n")
}

/// Starts the service (`systemctl start` in k0sctl, `k0s start` here).
pub fn start() -> String {
    format!("{HEAD}\"$K\" start\n")
}

/// Restarts the service and counts it in `restarts`.
pub fn restart() -> String {
    format!(
        "{HEAD}\"$K\" stop\n\"$K\" start\nn=$(cat \"$S/restarts\" 2>/dev/null || echo 0)\necho $((n + 1)) > \"$S/restarts\"\n"
    )
}

/// k0sctl's reset of a host: stop, `k0s reset`, remove the binary.
pub fn reset() -> String {
    format!(
        "{HEAD}if [ -x \"$K\" ]; then \"$K\" stop 2>/dev/null || true; \"$K\" reset; rm -f \"$K\"; fi\n"
    )
}

/// Records `$1` (`name peerURL`) in the etcd member list, replacing a line for the same
/// name; `$2` is the whole member list to start from when the file is absent (a joining
/// controller receives the cluster's list).
pub fn add_member() -> String {
    format!(
        "{HEAD}M=\"$R/var/lib/k0s/etcd-members\"\nmkdir -p \"$R/var/lib/k0s\"\n\
         [ -f \"$M\" ] || printf '%s' \"$2\" > \"$M\"\n\
         name=${{1%% *}}\ngrep -v \"^$name \" \"$M\" > \"$M.tmp\" || true\necho \"$1\" >> \"$M.tmp\"\nmv \"$M.tmp\" \"$M\"\n"
    )
}

/// `k0s etcd leave --peer-address $1`.
pub fn etcd_leave() -> String {
    format!("{HEAD}\"$K\" etcd leave --peer-address \"$1\"\n")
}
