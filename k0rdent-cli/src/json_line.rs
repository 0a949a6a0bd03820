//! The envelope of every JSON line `--output json` prints on stdout: the schema version, the
//! time for events, then the object itself (an event, a command's result or an error).
//! `docs/output.md` documents every object.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The version of the JSON Lines output, the `schema` field of every line.
///
/// It changes only when a consumer could misread a line written for the old version: a field
/// removed or renamed, a type or a meaning changed. Added event types, result objects and
/// fields do not change it, so consumers ignore what they do not know.
pub const SCHEMA: u32 = 1;

/// One line: `schema`, `at` (events only), then the object's own fields.
#[derive(Serialize)]
pub(crate) struct Line<'a, T: ?Sized> {
    schema: u32,
    /// When the event happened: RFC 3339 in UTC (`Z`), written as the event log writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<DateTime<Utc>>,
    #[serde(flatten)]
    object: &'a T,
}

impl<'a, T: Serialize + ?Sized> Line<'a, T> {
    /// A command's result, an error, or a record that carries its own `at`.
    pub(crate) fn object(object: &'a T) -> Self {
        Line {
            schema: SCHEMA,
            at: None,
            object,
        }
    }

    /// An event as it happens.
    pub(crate) fn event(object: &'a T, at: DateTime<Utc>) -> Self {
        Line {
            schema: SCHEMA,
            at: Some(at),
            object,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_puts_schema_and_at_before_the_object_fields() {
        let at = DateTime::parse_from_rfc3339("2026-12-03T11:39:11Z")
            .unwrap()
            .with_timezone(&Utc);
        let event = k0rdent_core::event::Event::StopRequested {
            reason: "Ctrl-C".into(),
        };
        assert_eq!(
            serde_json::to_string(&Line::event(&event, at)).unwrap(),
            r#"{"schema":1,"at":"2026-12-03T11:39:11Z","event":"stop_requested","reason":"Ctrl-C"}"#
        );
        #[derive(Serialize)]
        struct Unlock {
            result: &'static str,
            released: Option<u32>,
        }
        let result = Unlock {
            result: "unlock",
            released: None,
        };
        assert_eq!(
            serde_json::to_string(&Line::object(&result)).unwrap(),
            r#"{"schema":1,"result":"unlock","released":null}"#
        );
    }
}
