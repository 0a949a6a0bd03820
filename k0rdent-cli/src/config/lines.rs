//! Which line of the file a key is on. Parsed YAML values carry no positions, but the parser
//! puts the position of the event it is reading into any error a visitor returns: so the
//! document is walked again along the key's path, and the walk stops with a marker error at the
//! key itself.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The marker error (never shown: only its position is used).
const FOUND: &str = "k0rdent-config-key-found";

/// The line (1-based) of the key at `path` in `text`, if the key is there.
pub(crate) fn line_of(text: &str, path: &[&str]) -> Option<usize> {
    if path.is_empty() {
        return None;
    }
    let de = serde_yaml::Deserializer::from_str(text);
    match (Seek { path }).deserialize(de) {
        Err(e) if e.to_string().contains(FOUND) => e.location().map(|l| l.line()),
        _ => None,
    }
}

/// Walks one value looking for `path` (relative to it).
struct Seek<'p> {
    path: &'p [&'p str],
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.path.split_first() else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        };
        let seek_key = Key {
            target: first,
            stop: rest.is_empty(),
        };
        while let Some(matched) = map.next_key_seed(seek_key.clone())? {
            if matched {
                map.next_value_seed(Seek { path: rest })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Reads a mapping key: whether it is the one sought, or the marker error (at the key's
/// position) when it is the last part of the path.
#[derive(Clone)]
struct Key<'p> {
    target: &'p str,
    stop: bool,
}

impl Key<'_> {
    fn check<E: de::Error>(&self, key: &str) -> Result<bool, E> {
        let hit = key == self.target;
        if hit && self.stop {
            Err(E::custom(FOUND))
        } else {
            Ok(hit)
        }
    }
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        self.check(v)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        self.check(&v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        self.check(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.check(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        self.check(&v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        self.check("null")
    }
    fn visit_none<E: de::Error>(self) -> Result<bool, E> {
        self.check("null")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# comment\nazure:\n  location: westeurope\ncluster:\n  workers:\n    count: 2\n  controllers:\n    zones: [1, 2]\n    count: 3\nflow: {a: 1, b: {count: 9}}\n";

    #[test]
    fn keys_are_found_on_their_lines() {
        assert_eq!(line_of(DOC, &["azure"]), Some(2));
        assert_eq!(line_of(DOC, &["azure", "location"]), Some(3));
        assert_eq!(line_of(DOC, &["cluster", "workers", "count"]), Some(6));
        assert_eq!(line_of(DOC, &["cluster", "controllers", "count"]), Some(9));
        assert_eq!(line_of(DOC, &["cluster", "controllers", "zones"]), Some(8));
        assert_eq!(line_of(DOC, &["flow", "b", "count"]), Some(10));
    }

    #[test]
    fn absent_keys_and_bad_documents_have_no_line() {
        assert_eq!(line_of(DOC, &["azure", "vm_image"]), None);
        assert_eq!(line_of(DOC, &["location"]), None);
        assert_eq!(line_of(DOC, &[]), None);
        assert_eq!(line_of("x: [\nb: 1\n", &["b"]), None);
        assert_eq!(line_of("", &["a"]), None);
    }
}
