//! Per-peer tunnel diagnosis: a pure function from what the probe saw and what the device
//! said before and after it. A reply through the tunnel (a TCP answer or refusal) or growing
//! rx bytes proves liveness; handshake age does not (it stays fresh for up to 180 s after a
//! peer dies), so it only colours the diagnosis of a peer that did not answer.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use k0rdent_core::Remedy;
use serde::Serialize;

use super::interface::PeerSnapshot;

/// What the TCP probe to `tunnel_ip:22` saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The connection was accepted.
    Answered(Duration),
    /// The connection was refused (an RST came back through the tunnel).
    Refused(Duration),
    /// Nothing came back within the timeout.
    NoAnswer,
    /// The kernel has no route (or the route is unusable).
    NoRoute(String),
    /// Any other local error.
    Failed(String),
}

/// What the device read showed, for one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceView<'a> {
    /// The interface does not exist.
    Missing,
    /// It exists but could not be read (e.g. not root): decide from the probe alone.
    Unreadable(&'a str),
    /// Read before and after the probe (`None`: the peer is not configured).
    Read {
        /// The peer before the probe.
        before: Option<&'a PeerSnapshot>,
        /// The peer after the probe.
        after: Option<&'a PeerSnapshot>,
    },
}

/// The verdict on one peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PeerState {
    /// Answered through the tunnel.
    Alive {
        /// Round trip of the TCP connect, in milliseconds.
        rtt_ms: u64,
    },
    /// The hub interface does not exist.
    InterfaceMissing,
    /// The hub has no such peer.
    PeerMissing,
    /// No answer, and the hub's endpoint for it is not the expected one.
    EndpointMismatch {
        /// The hub device's endpoint for the peer (`None`: it has none).
        configured: Option<SocketAddr>,
        /// The endpoint the hub should use ([`Expected::endpoint`]).
        expected: SocketAddr,
    },
    /// No answer and never a handshake: keys, endpoint or UDP port.
    NeverHandshake,
    /// No answer; the last handshake was this long ago: the peer is down.
    PeerDown {
        /// Seconds since the last handshake.
        last_handshake_secs: u64,
    },
    /// No answer and the device could not be read.
    NoReply,
    /// The tunnel works (an RST came back) but sshd refused the connection.
    SshRefused,
    /// The tunnel works (rx bytes grew) but port 22 did not answer.
    SshSilent,
    /// No usable route to the tunnel address.
    NoRoute {
        /// The connect error.
        detail: String,
    },
    /// The probe failed locally.
    ProbeFailed {
        /// The connect error.
        detail: String,
    },
}

/// One peer's health, with the facts behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerHealth {
    /// The node's name in the deployment.
    pub name: String,
    /// The node's address inside the tunnel, which the probe dials.
    pub tunnel_ip: Ipv4Addr,
    #[allow(missing_docs)]
    #[serde(flatten)]
    pub state: PeerState,
    /// Seconds since the last handshake, if the device was read and there was one.
    pub last_handshake_secs: Option<u64>,
    /// Whether rx bytes grew during the probe (`None`: device not read).
    pub rx_grew: Option<bool>,
    /// Bytes received from the peer (after the probe).
    pub rx_bytes: Option<u64>,
    /// The hub's endpoint for the peer.
    pub endpoint: Option<SocketAddr>,
    /// The probe timeout used.
    #[serde(skip)]
    pub probe_timeout: Duration,
    /// The WireGuard UDP port (for remedies).
    #[serde(skip)]
    pub wg_port: u16,
}

impl PeerHealth {
    /// Whether the peer answered through the tunnel (the gate's pass condition).
    pub fn is_alive(&self) -> bool {
        matches!(self.state, PeerState::Alive { .. })
    }

    /// Whether the tunnel itself carries traffic (alive, or only sshd misbehaves).
    pub fn tunnel_up(&self) -> bool {
        matches!(
            self.state,
            PeerState::Alive { .. } | PeerState::SshRefused | PeerState::SshSilent
        )
    }

    /// A short status word for tables.
    pub fn status_word(&self) -> &'static str {
        match self.state {
            PeerState::Alive { .. } => "ok",
            PeerState::SshRefused | PeerState::SshSilent => "no-ssh",
            PeerState::InterfaceMissing => "no-iface",
            PeerState::PeerMissing => "no-peer",
            PeerState::EndpointMismatch { .. } => "endpoint",
            PeerState::NeverHandshake => "no-handshake",
            PeerState::PeerDown { .. } | PeerState::NoReply => "down",
            PeerState::NoRoute { .. } | PeerState::ProbeFailed { .. } => "error",
        }
    }

    /// One line: what was seen.
    pub fn reason(&self) -> String {
        let t = self.probe_timeout.as_secs_f64();
        match &self.state {
            PeerState::Alive { rtt_ms } => format!("answered through the tunnel in {rtt_ms} ms"),
            PeerState::InterfaceMissing => "the hub interface does not exist".into(),
            PeerState::PeerMissing => "the hub interface has no peer with its public key".into(),
            PeerState::EndpointMismatch {
                configured,
                expected,
            } => format!(
                "no reply to the probe within {t} s; the hub sends to {} but the node's endpoint is {expected}",
                configured.map_or_else(|| "no endpoint".to_owned(), |c| c.to_string())
            ),
            PeerState::NeverHandshake => format!(
                "no reply to the probe within {t} s and never a handshake (wrong public key, wrong endpoint or UDP {} blocked)",
                self.wg_port
            ),
            PeerState::PeerDown {
                last_handshake_secs,
            } => format!(
                "no reply to the probe within {t} s, last handshake {} ago (peer down)",
                human_secs(*last_handshake_secs)
            ),
            PeerState::NoReply => format!(
                "no reply to the probe within {t} s (the device is unreadable without root, so no handshake data)"
            ),
            PeerState::SshRefused => {
                "the tunnel is up but TCP port 22 refused the connection (sshd not running)".into()
            }
            PeerState::SshSilent => format!(
                "the tunnel is up (rx bytes grew) but TCP port 22 did not answer within {t} s (sshd hung or a firewall drops it)"
            ),
            PeerState::NoRoute { detail } => format!("no route to {} ({detail})", self.tunnel_ip),
            PeerState::ProbeFailed { detail } => format!("the probe failed: {detail}"),
        }
    }
}

/// What to do about a peer that did not answer; `None` for one that did.
impl Remedy for PeerHealth {
    fn remedy(&self) -> Option<Cow<'_, str>> {
        let port = self.wg_port;
        Some(match &self.state {
            PeerState::Alive { .. } => return None,
            PeerState::InterfaceMissing | PeerState::PeerMissing => {
                "run `k0rdent vpn up`".into()
            }
            PeerState::EndpointMismatch { .. } => {
                "run `k0rdent refresh` then `k0rdent vpn up` to update the endpoint in place".into()
            }
            PeerState::NeverHandshake => format!(
                "check that UDP {port} is open in the NSG, that the VM's public IP is current (`k0rdent refresh`), and that its WireGuard key matches (`k0rdent vpn status`)"
            )
            .into(),
            PeerState::PeerDown { .. } | PeerState::NoReply => format!(
                "is the VM running and wg-quick@wg0 active on it? is UDP {port} still open in the NSG? run `k0rdent vpn status`"
            )
            .into(),
            PeerState::SshRefused | PeerState::SshSilent => {
                "check sshd on the node (Azure serial console: `systemctl status ssh`)".into()
            }
            PeerState::NoRoute { .. } => {
                "check `ip route get` for the tunnel address: another interface may claim the tunnel network".into()
            }
            PeerState::ProbeFailed { .. } => "run `k0rdent vpn status -v`".into(),
        })
    }
}

/// `4 min 2 s`, `38 s`.
pub fn human_secs(s: u64) -> String {
    if s >= 120 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

impl fmt::Display for PeerHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer {}: {}", self.name, self.reason())
    }
}

/// Inputs of [`diagnose`] that describe the expected peer.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The node's name in the deployment.
    pub name: &'a str,
    /// The node's address inside the tunnel.
    pub tunnel_ip: Ipv4Addr,
    /// The endpoint the hub should use, if known.
    pub endpoint: Option<SocketAddr>,
    /// The WireGuard UDP port the remedies name.
    pub wg_port: u16,
    /// How long the TCP probe waits for an answer.
    pub probe_timeout: Duration,
}

/// Decides one peer's health. Pure.
pub fn diagnose(
    exp: Expected<'_>,
    device: &DeviceView<'_>,
    probe: &ProbeOutcome,
    now: SystemTime,
) -> PeerHealth {
    let (before, after) = match device {
        DeviceView::Read { before, after } => (*before, *after),
        _ => (None, None),
    };
    let latest = after.or(before);
    let last_handshake_secs = latest
        .and_then(|p| p.last_handshake)
        .map(|t| now.duration_since(t).unwrap_or_default().as_secs());
    let rx_grew = match (before, after) {
        (Some(b), Some(a)) => Some(a.rx_bytes > b.rx_bytes),
        _ => None,
    };
    let state = match (device, probe) {
        (DeviceView::Missing, _) => PeerState::InterfaceMissing,
        (
            DeviceView::Read {
                before: None,
                after: None,
            },
            _,
        ) => PeerState::PeerMissing,
        (_, ProbeOutcome::Answered(rtt)) => PeerState::Alive {
            rtt_ms: u64::try_from(rtt.as_millis()).unwrap_or(u64::MAX),
        },
        (_, ProbeOutcome::Refused(_)) => PeerState::SshRefused,
        (_, ProbeOutcome::NoRoute(d)) => PeerState::NoRoute { detail: d.clone() },
        (_, ProbeOutcome::Failed(d)) => PeerState::ProbeFailed { detail: d.clone() },
        (DeviceView::Unreadable(_), ProbeOutcome::NoAnswer) => PeerState::NoReply,
        (DeviceView::Read { .. }, ProbeOutcome::NoAnswer) => {
            let configured = latest.and_then(|p| p.endpoint);
            if rx_grew == Some(true) {
                PeerState::SshSilent
            } else if let Some(expected) = exp.endpoint.filter(|e| configured != Some(*e)) {
                PeerState::EndpointMismatch {
                    configured,
                    expected,
                }
            } else {
                match last_handshake_secs {
                    None => PeerState::NeverHandshake,
                    Some(s) => PeerState::PeerDown {
                        last_handshake_secs: s,
                    },
                }
            }
        }
    };
    PeerHealth {
        name: exp.name.to_owned(),
        tunnel_ip: exp.tunnel_ip,
        state,
        last_handshake_secs,
        rx_grew,
        rx_bytes: latest.map(|p| p.rx_bytes),
        endpoint: latest.and_then(|p| p.endpoint),
        probe_timeout: exp.probe_timeout,
        wg_port: exp.wg_port,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wireguard::key::PrivateKey;

    fn exp() -> Expected<'static> {
        Expected {
            name: "wrk-1",
            tunnel_ip: "172.24.24.12".parse().unwrap(),
            endpoint: Some("198.51.100.2:23456".parse().unwrap()),
            wg_port: 23456,
            probe_timeout: Duration::from_secs(2),
        }
    }

    fn peer(rx: u64, handshake_ago: Option<u64>, now: SystemTime) -> PeerSnapshot {
        PeerSnapshot {
            public_key: PrivateKey::generate().public_key(),
            endpoint: Some("198.51.100.2:23456".parse().unwrap()),
            allowed_ips: vec!["172.24.24.12/32".into()],
            keepalive_secs: Some(25),
            last_handshake: handshake_ago.map(|s| now - Duration::from_secs(s)),
            rx_bytes: rx,
            tx_bytes: 0,
        }
    }

    #[test]
    fn a_reply_proves_liveness_whatever_the_handshake_age() {
        let now = SystemTime::now();
        let p = peer(10, Some(170), now);
        let h = diagnose(
            exp(),
            &DeviceView::Read {
                before: Some(&p),
                after: Some(&p),
            },
            &ProbeOutcome::Answered(Duration::from_millis(3)),
            now,
        );
        assert!(h.is_alive());
        assert_eq!(h.reason(), "answered through the tunnel in 3 ms");
        assert_eq!(h.remedy(), None);
    }

    #[test]
    fn a_fresh_handshake_without_a_reply_is_a_dead_peer() {
        let now = SystemTime::now();
        let p = peer(10, Some(4), now);
        let h = diagnose(
            exp(),
            &DeviceView::Read {
                before: Some(&p),
                after: Some(&p),
            },
            &ProbeOutcome::NoAnswer,
            now,
        );
        assert_eq!(
            h.state,
            PeerState::PeerDown {
                last_handshake_secs: 4
            }
        );
        assert_eq!(
            h.to_string(),
            "peer wrk-1: no reply to the probe within 2 s, last handshake 4 s ago (peer down)"
        );
        assert!(h.remedy().unwrap().contains("UDP 23456"));
    }

    #[test]
    fn never_a_handshake_points_at_keys_endpoint_and_port() {
        let now = SystemTime::now();
        let p = peer(0, None, now);
        let h = diagnose(
            exp(),
            &DeviceView::Read {
                before: Some(&p),
                after: Some(&p),
            },
            &ProbeOutcome::NoAnswer,
            now,
        );
        assert_eq!(h.state, PeerState::NeverHandshake);
        assert!(h.reason().contains("wrong public key"), "{}", h.reason());
    }

    #[test]
    fn growing_rx_without_a_tcp_answer_blames_ssh_not_the_tunnel() {
        let now = SystemTime::now();
        let (b, a) = (peer(10, Some(4), now), peer(74, Some(4), now));
        let h = diagnose(
            exp(),
            &DeviceView::Read {
                before: Some(&b),
                after: Some(&a),
            },
            &ProbeOutcome::NoAnswer,
            now,
        );
        assert_eq!(h.state, PeerState::SshSilent);
        assert!(h.tunnel_up() && !h.is_alive());
    }

    #[test]
    fn refused_means_tunnel_fine_sshd_down() {
        let now = SystemTime::now();
        let p = peer(10, Some(4), now);
        let h = diagnose(
            exp(),
            &DeviceView::Read {
                before: Some(&p),
                after: Some(&p),
            },
            &ProbeOutcome::Refused(Duration::from_millis(1)),
            now,
        );
        assert_eq!(h.state, PeerState::SshRefused);
        assert!(h.reason().contains("sshd"));
    }

    #[test]
    fn missing_interface_peer_and_wrong_endpoint_are_named() {
        let now = SystemTime::now();
        let h = diagnose(exp(), &DeviceView::Missing, &ProbeOutcome::NoAnswer, now);
        assert_eq!(h.state, PeerState::InterfaceMissing);
        let h = diagnose(
            exp(),
            &DeviceView::Read {
                before: None,
                after: None,
            },
            &ProbeOutcome::NoAnswer,
            now,
        );
        assert_eq!(h.state, PeerState::PeerMissing);
        let mut p = peer(0, Some(300), now);
        p.endpoint = Some("198.51.100.9:23456".parse().unwrap());
        let h = diagnose(
            exp(),
            &DeviceView::Read {
                before: Some(&p),
                after: Some(&p),
            },
            &ProbeOutcome::NoAnswer,
            now,
        );
        assert!(matches!(h.state, PeerState::EndpointMismatch { .. }), "{h}");
    }

    #[test]
    fn without_the_device_the_probe_alone_decides() {
        let now = SystemTime::now();
        let h = diagnose(
            exp(),
            &DeviceView::Unreadable("no permission"),
            &ProbeOutcome::Answered(Duration::from_millis(1)),
            now,
        );
        assert!(h.is_alive());
        let h = diagnose(
            exp(),
            &DeviceView::Unreadable("x"),
            &ProbeOutcome::NoAnswer,
            now,
        );
        assert_eq!(h.state, PeerState::NoReply);
        assert_eq!(h.last_handshake_secs, None);
    }

    #[test]
    fn ages_read_like_a_person_would_say_them() {
        assert_eq!(human_secs(38), "38 s");
        assert_eq!(human_secs(242), "4 min 2 s");
    }
}
