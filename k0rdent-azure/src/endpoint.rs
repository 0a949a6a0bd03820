//! Where bearer tokens may go: https anywhere, plain http only to loopback.

use std::net::IpAddr;

use url::Url;

/// Whether `url`'s host is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
        }
        None => false,
    }
}

#[allow(missing_docs)]
/// Why an endpoint may not receive credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The text does not parse as a URL.
    #[error("{input:?} is not a URL: {source}")]
    NotAUrl {
        /// The endpoint as given.
        input: String,
        #[source]
        source: url::ParseError,
    },
    /// Plain http to a host that is not loopback: a token would cross the network unencrypted.
    #[error("{input}: plain http is only allowed to loopback addresses; use https")]
    PlainHttp {
        /// The endpoint as given.
        input: String,
    },
    /// Neither https nor http.
    #[error("{input}: unsupported scheme {scheme:?}; use https")]
    Scheme {
        /// The endpoint as given.
        input: String,
        scheme: String,
    },
}

/// Parses an endpoint that will receive credentials.
///
/// # Errors
/// [`EndpointError`]: not a URL, not http(s), or plain http to a non-loopback host.
pub fn check_endpoint(s: &str) -> Result<Url, EndpointError> {
    let url = Url::parse(s.trim()).map_err(|source| EndpointError::NotAUrl {
        input: s.to_owned(),
        source,
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(EndpointError::PlainHttp {
            input: s.to_owned(),
        }),
        other => Err(EndpointError::Scheme {
            input: s.to_owned(),
            scheme: other.to_owned(),
        }),
    }
}

/// Whether two URLs share scheme, host and port.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_to_loopback() {
        assert!(check_endpoint("https://management.azure.com").is_ok());
        assert!(check_endpoint("http://127.0.0.1:8080").is_ok());
        assert!(check_endpoint("http://127.3.4.5:8080").is_ok());
        assert!(check_endpoint("http://[::1]:8080").is_ok());
        assert!(check_endpoint("http://localhost:1").is_ok());
        assert!(check_endpoint("http://management.azure.com").is_err());
        assert!(check_endpoint("http://10.0.0.1").is_err());
        assert!(check_endpoint("ftp://127.0.0.1").is_err());
        assert!(check_endpoint("not a url").is_err());
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let a = Url::parse("https://management.azure.com/x").unwrap();
        assert!(same_origin(
            &a,
            &Url::parse("https://MANAGEMENT.azure.com:443/y").unwrap()
        ));
        assert!(!same_origin(
            &a,
            &Url::parse("https://evil.example.com/y").unwrap()
        ));
        assert!(!same_origin(
            &a,
            &Url::parse("http://management.azure.com/y").unwrap()
        ));
    }
}
