//! Why a connection could not be made, told apart so that an endpoint that cannot be reached
//! fails within seconds with one line naming it, instead of being retried like a passing
//! network blip until some outer time limit.
//!
//! - connection refused and a name that does not resolve: at most [`QUICK_RETRIES`] quick
//!   retries (a restarting proxy or resolver gets a moment), then [`Unreachable`];
//! - a TLS failure (certificate, protocol): at once — retrying cannot fix it;
//! - a connection attempt that timed out: retried once.
//!
//! Both the ARM client and the token endpoint use this.

use std::fmt;
use std::time::Duration;

/// Quick retries after a refused connection or a failed name lookup.
pub const QUICK_RETRIES: u32 = 2;

/// The delay before quick retry `n` (1-based): 250 ms, then 500 ms.
pub fn quick_delay(n: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(u64::from(n.clamp(1, 4))))
}

/// Why an endpoint could not be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnreachableCause {
    /// Nothing listens there (TCP RST).
    Refused,
    /// The host name does not resolve.
    Dns(String),
    /// The TLS handshake failed (no TLS server there, an untrusted certificate, ...).
    Tls(String),
    /// The connection attempt got no answer in time (dropped by a firewall?).
    ConnectTimeout,
}

impl UnreachableCause {
    /// How many times a request failing this way is retried.
    pub fn retries(&self) -> u32 {
        match self {
            UnreachableCause::Refused | UnreachableCause::Dns(_) => QUICK_RETRIES,
            UnreachableCause::Tls(_) => 0,
            UnreachableCause::ConnectTimeout => 1,
        }
    }
}

impl fmt::Display for UnreachableCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnreachableCause::Refused => f.write_str("connection refused (nothing listens there)"),
            UnreachableCause::Dns(d) => write!(f, "the host name does not resolve ({d})"),
            UnreachableCause::Tls(d) => write!(f, "TLS handshake failed ({d})"),
            UnreachableCause::ConnectTimeout => {
                f.write_str("the connection attempt got no answer in time")
            }
        }
    }
}

/// An endpoint that could not be reached, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot reach {what} {endpoint}: {cause}")]
pub struct Unreachable {
    /// `the ARM endpoint`, `the token endpoint`.
    pub what: String,
    /// Scheme, host and port (no path, no query).
    pub endpoint: String,
    /// Also decides how often the request was retried first ([`UnreachableCause::retries`]).
    pub cause: UnreachableCause,
}

/// The messages of `e` and everything under it, including errors wrapped inside
/// `std::io::Error`s (whose `source()` skips the wrapped error itself).
fn chain(e: &(dyn std::error::Error + 'static)) -> Vec<(String, Option<std::io::ErrorKind>)> {
    let mut out = Vec::new();
    let mut stack: Vec<&(dyn std::error::Error + 'static)> = vec![e];
    while let Some(cur) = stack.pop() {
        if out.len() > 32 {
            break;
        }
        let io = cur.downcast_ref::<std::io::Error>();
        out.push((cur.to_string(), io.map(std::io::Error::kind)));
        if let Some(inner) = io.and_then(std::io::Error::get_ref) {
            stack.push(inner);
        } else if let Some(next) = cur.source() {
            stack.push(next);
        }
    }
    out
}

/// How a request that got no response failed.
#[derive(Debug, Clone)]
pub enum SendFailure {
    /// The endpoint could not be reached (see [`classify`]).
    Unreachable(Unreachable),
    /// The request broke on the way (a timeout, a reset connection): its description.
    Broken(String),
}

/// Tells apart an endpoint that could not be reached from a request that broke on the way;
/// `what` names the endpoint in messages (`the blob endpoint`).
pub fn send_failure(e: &reqwest::Error, what: &str, url: &url::Url) -> SendFailure {
    match classify(e) {
        Some(cause) => SendFailure::Unreachable(Unreachable {
            what: what.to_owned(),
            endpoint: origin(url),
            cause,
        }),
        None => SendFailure::Broken(describe(e)),
    }
}

/// Classifies a request error that happened while connecting. `None` for anything else
/// (an error after the connection was made, a request timeout, a body error).
pub fn classify(e: &reqwest::Error) -> Option<UnreachableCause> {
    if !e.is_connect() {
        return None;
    }
    let links = chain(e);
    let text = |pred: &dyn Fn(&str) -> bool| {
        links
            .iter()
            .map(|(m, _)| m.as_str())
            .find(|m| pred(&m.to_ascii_lowercase()))
            .map(str::to_owned)
    };
    if links
        .iter()
        .any(|(_, k)| *k == Some(std::io::ErrorKind::ConnectionRefused))
    {
        return Some(UnreachableCause::Refused);
    }
    if links
        .iter()
        .any(|(m, _)| m.to_ascii_lowercase().contains("dns"))
    {
        // The innermost message is the resolver's own ("Name or service not known").
        let detail = links
            .last()
            .map(|(m, _)| m.clone())
            .unwrap_or_else(|| "DNS lookup failed".into());
        return Some(UnreachableCause::Dns(detail));
    }
    // rustls reports through tokio-rustls as io::Error(InvalidData, rustls::Error).
    if links
        .iter()
        .any(|(_, k)| *k == Some(std::io::ErrorKind::InvalidData))
        || text(&|m| m.contains("certificate") || m.contains("tls")).is_some()
    {
        let detail = links
            .last()
            .map(|(m, _)| m.clone())
            .unwrap_or_else(|| "handshake failed".into());
        return Some(UnreachableCause::Tls(detail));
    }
    if e.is_timeout() {
        return Some(UnreachableCause::ConnectTimeout);
    }
    None
}

/// `scheme://host:port` of a URL, for messages.
pub fn origin(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

/// One line for any request error: its message and the causes under it (`error sending
/// request: client error (Connect): tcp connect error: Connection refused`), without URLs.
pub fn describe(e: &reqwest::Error) -> String {
    // The top message names the URL; the causes under it say what happened.
    let top = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "reading the response"
    } else {
        "request failed"
    };
    let mut parts: Vec<String> = vec![top.to_owned()];
    if let Some(src) = std::error::Error::source(e) {
        for (m, _) in chain(src) {
            if !parts.iter().any(|p| p.contains(&m)) {
                parts.push(m);
            }
        }
    }
    parts.join(": ")
}
