//! Which machine is the VPN hub. Every node has the hub as its one peer and answers wherever
//! the hub's packets last came from, so two machines with the hub interface up take the
//! tunnel from each other. The state names the machine that holds it; another machine takes
//! it over only under the state's lock (`deploy`, `vpn up`), and says that the previous
//! machine's tunnel stops working.

use chrono::Utc;
use k0rdent_core::state::VpnHub;
use k0rdent_core::store::hostname;

/// This machine as the hub, from now on.
pub fn hub_here() -> VpnHub {
    VpnHub {
        host: hostname(),
        user: std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
            .filter(|u| !u.is_empty()),
        since: Utc::now(),
    }
}

/// Whether the state names this machine as the hub (not another one, not nobody).
pub fn hub_is_here(recorded: Option<&VpnHub>) -> bool {
    recorded.is_some_and(|h| h.host == hostname())
}

/// The recorded hub, when it is another machine than this one.
pub fn hub_elsewhere(recorded: Option<&VpnHub>) -> Option<&VpnHub> {
    recorded.filter(|h| h.host != hostname())
}

/// What is said when this machine takes the hub over from `previous`.
pub fn takeover_message(previous: &VpnHub, interface: &str) -> String {
    format!(
        "taking the VPN hub over from {}{} (the hub since {}): {interface} on {} stops \
         reaching the nodes; run `k0rdent vpn up` there to take it back",
        previous.host,
        previous
            .user
            .as_deref()
            .map(|u| format!(" ({u})"))
            .unwrap_or_default(),
        previous.since.format("%Y-%m-%d %H:%M:%S UTC"),
        previous.host,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn another_host_is_elsewhere_and_this_one_is_not() {
        let here = hub_here();
        assert!(hub_elsewhere(Some(&here)).is_none());
        assert!(hub_elsewhere(None).is_none());
        assert!(hub_is_here(Some(&here)));
        assert!(!hub_is_here(None));
        let other = VpnHub {
            host: format!("{}-other", here.host),
            user: Some("ana".into()),
            since: Utc::now(),
        };
        assert_eq!(hub_elsewhere(Some(&other)), Some(&other));
        let m = takeover_message(&other, "wgk0abc");
        assert!(m.contains(&other.host), "{m}");
        assert!(m.contains("(ana)"), "{m}");
        assert!(m.contains("wgk0abc on"), "{m}");
        assert!(m.contains("stops reaching the nodes"), "{m}");
    }
}
