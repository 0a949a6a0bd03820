//! The peer changes [`VpnInterface`](super::VpnInterface) makes, applied either through the
//! device API (root) or through the real `wg` tool under `sudo -n` (an operator who is not
//! root: the userspace control socket and the kernel's netlink both need root). Reading goes
//! the same way, with `wg show IFACE dump` parsed as `wg(8)` documents it.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use k0rdent_process::{Command, ProcessError, ProcessStatus};
use wireguard_control::{DeviceUpdate, PeerConfigBuilder};

use super::device::{DesiredPeer, DeviceSnapshot, PeerSnapshot};
use super::key::PublicKey;
use crate::os;

/// One change to the live interface's peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PeerOp {
    /// Add the peer, or set all of it (allowed IPs replaced).
    Put(DesiredPeer),
    /// Only move its endpoint.
    Endpoint {
        key: PublicKey,
        endpoint: SocketAddr,
    },
    /// Remove it.
    Remove(PublicKey),
    /// Put back a peer as it was read.
    Restore(PeerSnapshot),
}

impl PeerOp {
    /// Adds this change to a device API update.
    pub(crate) fn add_to(&self, update: DeviceUpdate) -> DeviceUpdate {
        match self {
            PeerOp::Put(d) => update.add_peer(
                PeerConfigBuilder::new(&d.public_key.to_wg())
                    .replace_allowed_ips()
                    .add_allowed_ip(d.address.into(), 32)
                    .set_endpoint(d.endpoint)
                    .set_persistent_keepalive_interval(d.keepalive_secs),
            ),
            PeerOp::Endpoint { key, endpoint } => {
                update.add_peer(PeerConfigBuilder::new(&key.to_wg()).set_endpoint(*endpoint))
            }
            PeerOp::Remove(key) => update.remove_peer_by_key(&key.to_wg()),
            PeerOp::Restore(p) => {
                let mut b = PeerConfigBuilder::new(&p.public_key.to_wg());
                for ip in &p.allowed_ips {
                    if let Ok(a) = ip.parse::<wireguard_control::AllowedIp>() {
                        b = b.add_allowed_ip(a.address, a.cidr);
                    }
                }
                if let Some(ep) = p.endpoint {
                    b = b.set_endpoint(ep);
                }
                if let Some(k) = p.keepalive_secs {
                    b = b.set_persistent_keepalive_interval(k);
                }
                update.add_peer(b)
            }
        }
    }

    /// This change as `wg set` arguments (`peer KEY …`); `wg set` replaces a peer's allowed
    /// IPs when it is given some.
    pub(crate) fn wg_args(&self) -> Vec<String> {
        let peer = |k: &PublicKey| vec!["peer".to_owned(), k.to_base64()];
        match self {
            PeerOp::Put(d) => {
                let mut a = peer(&d.public_key);
                a.extend([
                    "endpoint".into(),
                    d.endpoint.to_string(),
                    "persistent-keepalive".into(),
                    d.keepalive_secs.to_string(),
                    "allowed-ips".into(),
                    format!("{}/32", d.address),
                ]);
                a
            }
            PeerOp::Endpoint { key, endpoint } => {
                let mut a = peer(key);
                a.extend(["endpoint".into(), endpoint.to_string()]);
                a
            }
            PeerOp::Remove(key) => {
                let mut a = peer(key);
                a.push("remove".into());
                a
            }
            PeerOp::Restore(p) => {
                let mut a = peer(&p.public_key);
                if let Some(ep) = p.endpoint {
                    a.extend(["endpoint".into(), ep.to_string()]);
                }
                a.extend([
                    "persistent-keepalive".into(),
                    p.keepalive_secs
                        .map_or_else(|| "off".to_owned(), |k| k.to_string()),
                ]);
                if !p.allowed_ips.is_empty() {
                    a.extend(["allowed-ips".into(), p.allowed_ips.join(",")]);
                }
                a
            }
        }
    }
}

/// `sudo -n wg ARGS…`; its stdout.
async fn sudo_wg(args: &[String], timeout: Duration) -> Result<String, ProcessError> {
    let missing = |p: &str| ProcessError {
        program: p.into(),
        args: vec![],
        status: ProcessStatus::NotStarted("not found on PATH".into()),
        stderr: String::new(),
    };
    let sudo = os::find_program("sudo").ok_or_else(|| missing("sudo"))?;
    let wg = os::find_program("wg").ok_or_else(|| missing("wg"))?;
    let out = Command::new(sudo)
        .arg("-n")
        .arg(wg)
        .args(args)
        .timeout(timeout)
        .run()
        .await?;
    Ok(out.stdout)
}

/// Applies `ops` with `sudo -n wg set IFACE peer …` (one command).
pub(crate) async fn sudo_wg_set(
    interface: &str,
    ops: &[PeerOp],
    timeout: Duration,
) -> Result<(), ProcessError> {
    let mut args = vec!["set".to_owned(), interface.to_owned()];
    for op in ops {
        args.extend(op.wg_args());
    }
    sudo_wg(&args, timeout).await?;
    Ok(())
}

/// Why `sudo wg show dump` gave no device.
#[derive(Debug)]
pub(crate) enum DumpError {
    /// The interface does not exist.
    Missing,
    /// Anything else, said.
    Other(String),
}

/// Reads the device with `sudo -n wg show IFACE dump`. The dump's first line holds the
/// private key: it is parsed past and never kept.
pub(crate) async fn sudo_read(
    interface: &str,
    timeout: Duration,
) -> Result<DeviceSnapshot, DumpError> {
    let args = ["show".to_owned(), interface.to_owned(), "dump".to_owned()];
    match sudo_wg(&args, timeout).await {
        Ok(out) => parse_dump(interface, &out).map_err(DumpError::Other),
        Err(e) if e.stderr.contains("No such device") || e.stderr.contains("not exist") => {
            Err(DumpError::Missing)
        }
        Err(e) => Err(DumpError::Other(e.to_string())),
    }
}

/// Parses `wg show IFACE dump` (`wg(8)`): a first line `private-key public-key listen-port
/// fwmark`, then per peer `public-key preshared-key endpoint allowed-ips latest-handshake
/// transfer-rx transfer-tx persistent-keepalive`, tab-separated; `(none)` and `off` for unset.
pub(crate) fn parse_dump(interface: &str, text: &str) -> Result<DeviceSnapshot, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let head: Vec<&str> = lines
        .next()
        .ok_or("`wg show dump` printed nothing")?
        .split('\t')
        .collect();
    if head.len() != 4 {
        return Err(format!(
            "`wg show dump`: the interface line has {} fields, not 4",
            head.len()
        ));
    }
    let key = |s: &str| -> Result<Option<PublicKey>, String> {
        match s {
            "(none)" => Ok(None),
            k => k
                .parse()
                .map(Some)
                .map_err(|_| "`wg show dump`: a public key is unreadable".to_owned()),
        }
    };
    let mut peers = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let [
            public,
            _psk,
            endpoint,
            allowed,
            handshake,
            rx,
            tx,
            keepalive,
        ] = f[..]
        else {
            return Err(format!(
                "`wg show dump`: a peer line has {} fields, not 8",
                f.len()
            ));
        };
        let number = |s: &str, what: &str| {
            s.parse::<u64>()
                .map_err(|_| format!("`wg show dump`: {what} {s:?} is not a number"))
        };
        let handshake = number(handshake, "latest-handshake")?;
        peers.push(PeerSnapshot {
            public_key: key(public)?.ok_or("`wg show dump`: a peer without a key")?,
            endpoint: match endpoint {
                "(none)" => None,
                e => Some(
                    e.parse()
                        .map_err(|_| format!("`wg show dump`: endpoint {e:?} is unreadable"))?,
                ),
            },
            allowed_ips: match allowed {
                "(none)" | "" => Vec::new(),
                a => a.split(',').map(str::to_owned).collect(),
            },
            keepalive_secs: match keepalive {
                "off" | "0" => None,
                k => Some(
                    k.parse()
                        .map_err(|_| format!("`wg show dump`: keepalive {k:?} is unreadable"))?,
                ),
            },
            last_handshake: (handshake > 0)
                .then(|| SystemTime::UNIX_EPOCH + Duration::from_secs(handshake)),
            rx_bytes: number(rx, "transfer-rx")?,
            tx_bytes: number(tx, "transfer-tx")?,
        });
    }
    Ok(DeviceSnapshot {
        interface: interface.to_owned(),
        public_key: key(head[1])?,
        listen_port: head[2].parse().ok().filter(|p| *p != 0),
        peers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wireguard::PrivateKey;

    #[test]
    fn a_dump_is_read_as_wg_documents_it_and_the_private_key_is_not_kept() {
        let hub = PrivateKey::generate();
        let (a, b) = (
            PrivateKey::generate().public_key(),
            PrivateKey::generate().public_key(),
        );
        let text = format!(
            "{}\t{}\t51820\toff\n\
             {}\t(none)\t198.51.100.7:51820\t172.24.24.11/32\t1764720000\t1024\t2048\t25\n\
             {}\t(none)\t(none)\t(none)\t0\t0\t0\toff\n",
            hub.to_base64().expose(),
            hub.public_key().to_base64(),
            a.to_base64(),
            b.to_base64()
        );
        let d = parse_dump("wgk0r", &text).unwrap();
        assert_eq!(d.public_key, Some(hub.public_key()));
        assert_eq!(d.listen_port, Some(51820));
        let pa = d.peer(&a).unwrap();
        assert_eq!(pa.endpoint, Some("198.51.100.7:51820".parse().unwrap()));
        assert_eq!(pa.allowed_ips, ["172.24.24.11/32"]);
        assert_eq!(pa.keepalive_secs, Some(25));
        assert_eq!((pa.rx_bytes, pa.tx_bytes), (1024, 2048));
        assert!(pa.last_handshake.is_some());
        let pb = d.peer(&b).unwrap();
        assert_eq!(
            (pb.endpoint, pb.keepalive_secs, pb.last_handshake),
            (None, None, None)
        );
        assert!(pb.allowed_ips.is_empty());
        assert!(!format!("{d:?}").contains(hub.to_base64().expose().as_str()));
        assert!(parse_dump("wgk0r", "x\ty\n").is_err());
        assert!(parse_dump("wgk0r", &format!("{text}short\tline\n")).is_err());
    }

    #[test]
    fn each_change_is_the_wg_set_clause_for_it() {
        let k = PrivateKey::generate().public_key();
        let put = PeerOp::Put(DesiredPeer {
            public_key: k.clone(),
            address: "172.24.24.12".parse().unwrap(),
            endpoint: "198.51.100.8:51820".parse().unwrap(),
            keepalive_secs: 25,
        });
        assert_eq!(
            put.wg_args(),
            [
                "peer",
                &k.to_base64(),
                "endpoint",
                "198.51.100.8:51820",
                "persistent-keepalive",
                "25",
                "allowed-ips",
                "172.24.24.12/32"
            ]
        );
        assert_eq!(
            PeerOp::Remove(k.clone()).wg_args(),
            ["peer", &k.to_base64(), "remove"]
        );
    }
}
