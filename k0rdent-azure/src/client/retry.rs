//! Which ARM responses are retried, and how long to wait.
//!
//! Throttling (429) and server-side failures (5xx) are retried with the delay ARM asks for
//! (`retry-after-ms`, `x-ms-retry-after-ms`, then `Retry-After` in seconds or as an HTTP date)
//! or else exponential backoff with jitter, bounded by attempts and total time; the final error
//! states both. Writes are retried only when ARM definitely did not act on them (429, 503):
//! after any other failure the outcome is unknown, and the caller reads the resource first.

use std::time::Duration;

use reqwest::header::HeaderMap;

/// Bounds for retrying one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryConfig {
    /// Attempts in total, including the first.
    pub max_attempts: u32,
    /// Backoff before the first retry when ARM gives no Retry-After.
    pub base_delay: Duration,
    /// Upper bound of any single delay. A longer `Retry-After` is not slept through: the
    /// request ends with the error, which carries it, and the step waits (up to its time
    /// limit) instead.
    pub max_delay: Duration,
    /// Give up once this much time has passed.
    pub max_elapsed: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 8,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_elapsed: Duration::from_secs(300),
        }
    }
}

/// Whether a response status is worth retrying for a read or a write.
pub fn retryable(status: u16, write: bool) -> bool {
    if write {
        matches!(status, 429 | 503)
    } else {
        matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
    }
}

/// The delay ARM asked for, if any.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(ms) = headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return Some(Duration::from_millis(ms));
        }
    }
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

impl RetryConfig {
    /// The delay after `attempt` failed attempts (1-based): ARM's hint if given, else
    /// `base · 2^(attempt-1)` with equal jitter; capped at `max_delay`.
    pub fn delay(&self, attempt: u32, hint: Option<Duration>) -> Duration {
        if let Some(h) = hint {
            return h.min(self.max_delay);
        }
        let exp = attempt.saturating_sub(1).min(20);
        let d = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let half = d / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn the_retry_table() {
        let table: Vec<String> = [
            200, 201, 202, 204, 400, 401, 403, 404, 408, 409, 412, 429, 500, 501, 502, 503, 504,
        ]
        .iter()
        .map(|s| {
            format!(
                "{s}: read={} write={}",
                retryable(*s, false),
                retryable(*s, true)
            )
        })
        .collect();
        insta::assert_snapshot!(table.join("\n"), @r"
        200: read=false write=false
        201: read=false write=false
        202: read=false write=false
        204: read=false write=false
        400: read=false write=false
        401: read=false write=false
        403: read=false write=false
        404: read=false write=false
        408: read=true write=false
        409: read=false write=false
        412: read=false write=false
        429: read=true write=true
        500: read=true write=false
        501: read=false write=false
        502: read=true write=false
        503: read=true write=true
        504: read=true write=false
        ");
    }

    #[test]
    fn retry_after_prefers_milliseconds_then_seconds_then_dates() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("x-ms-retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let c = RetryConfig {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(4),
            max_elapsed: Duration::from_secs(60),
        };
        for _ in 0..50 {
            let d1 = c.delay(1, None);
            assert!(d1 >= Duration::from_millis(500) && d1 <= Duration::from_secs(1));
            assert!(c.delay(6, None) <= Duration::from_secs(4));
        }
        assert_eq!(
            c.delay(1, Some(Duration::from_secs(100))),
            Duration::from_secs(4)
        );
    }
}
