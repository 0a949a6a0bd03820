//! Durations as people write them (`30s`, `5m`, `1h`, `250ms`) wherever the configuration is
//! shown or recorded — not serde's `{secs, nanos}`. Old records that hold the latter still
//! compare equal ([`from_record`]).

use std::time::Duration;

use serde::Serializer;

/// `30s`, `5m`, `2h`, `90s`, `1500ms`: the largest unit that divides the duration exactly.
pub fn text(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    if s != 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s != 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// For `#[serde(serialize_with)]`.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&text(*d))
}

/// A duration as an older state recorded it (`{"secs": 30, "nanos": 0}`), as [`text`].
pub fn from_record(v: &serde_json::Value) -> Option<String> {
    let m = v.as_object()?;
    if m.len() != 2 {
        return None;
    }
    let secs = m.get("secs")?.as_u64()?;
    let nanos = u32::try_from(m.get("nanos")?.as_u64()?).ok()?;
    Some(text(Duration::new(secs, nanos)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_exact_unit() {
        assert_eq!(text(Duration::from_secs(30)), "30s");
        assert_eq!(text(Duration::from_secs(90)), "90s");
        assert_eq!(text(Duration::from_secs(300)), "5m");
        assert_eq!(text(Duration::from_secs(7200)), "2h");
        assert_eq!(text(Duration::from_millis(1500)), "1500ms");
        assert_eq!(text(Duration::ZERO), "0s");
    }

    #[test]
    fn an_old_record_reads_as_the_same_text() {
        let old = serde_json::json!({"secs": 300, "nanos": 0});
        assert_eq!(from_record(&old).as_deref(), Some("5m"));
        assert_eq!(from_record(&serde_json::json!({"secs": 1})), None);
        assert_eq!(from_record(&serde_json::json!("5m")), None);
    }
}
