//! A small streaming YAML emitter for the state document.
//!
//! Saving the state must take a few milliseconds even with thousands of resources; the
//! general-purpose YAML serializer spends most of that time. This emitter writes block-style
//! YAML straight from `serde` without an intermediate tree. It covers the serde data model
//! the state uses (maps with string keys, sequences, strings, numbers, booleans, options,
//! unit and newtype variants); documents are read back with the regular YAML parser, and the
//! tests check the round trip, including hostile strings.

use std::fmt::{self, Write as _};

use serde::ser::{self, Serialize};

/// Why a value could not be emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitError(String);

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EmitError {}

impl ser::Error for EmitError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        EmitError(msg.to_string())
    }
}

/// Renders `value` as a block-style YAML document.
///
/// # Errors
/// [`EmitError`] for values YAML maps cannot hold here (non-string map keys).
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, EmitError> {
    let mut e = Emitter {
        out: String::with_capacity(4096),
    };
    value.serialize(Value {
        e: &mut e,
        indent: 0,
        pos: Pos::Top,
    })?;
    if !e.out.ends_with('\n') {
        e.out.push('\n');
    }
    Ok(e.out)
}

struct Emitter {
    out: String,
}

/// Where a value is being written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pos {
    /// The document root: no leading space, entries at column 0.
    Top,
    /// After `key:` (scalars follow on the same line).
    MapValue,
    /// After `-` (scalars follow on the same line; a map's first key too).
    SeqItem,
}

fn needs_quotes(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return true;
    };
    if !(first.is_ascii_alphabetic() || first == '_' || first == '/') {
        return true;
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '@' | '+'))
    {
        return true;
    }
    // Words YAML 1.1 readers turn into booleans, nulls or special floats.
    s.len() <= 5
        && [
            "y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf",
        ]
        .iter()
        .any(|w| w.eq_ignore_ascii_case(s))
}

fn push_str_scalar(out: &mut String, s: &str) {
    if !needs_quotes(s) {
        out.push_str(s);
        return;
    }
    // A double-quoted scalar with everything outside printable ASCII escaped, so no reader
    // can take a character for a line break or reject it as non-printable.
    out.push('"');
    if s.bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
    {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            ' '..='~' => out.push(c),
            c if u32::from(c) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out.push('"');
}

fn indent(out: &mut String, n: usize) {
    const SPACES: &str = "                                                                ";
    let mut left = n;
    while left > 0 {
        let k = left.min(SPACES.len());
        out.push_str(&SPACES[..k]);
        left -= k;
    }
}

struct Value<'a> {
    e: &'a mut Emitter,
    indent: usize,
    pos: Pos,
}

impl<'a> Value<'a> {
    fn scalar(self, text: &str) -> Result<(), EmitError> {
        if self.pos != Pos::Top {
            self.e.out.push(' ');
        }
        self.e.out.push_str(text);
        self.e.out.push('\n');
        Ok(())
    }

    fn string(self, s: &str) -> Result<(), EmitError> {
        if self.pos != Pos::Top {
            self.e.out.push(' ');
        }
        push_str_scalar(&mut self.e.out, s);
        self.e.out.push('\n');
        Ok(())
    }

    fn compound(self, is_map: bool) -> Compound<'a> {
        // Entries of a compound in a map value or a sequence item are indented one level
        // deeper than the key or dash that introduces it.
        let child = match self.pos {
            Pos::Top => 0,
            Pos::MapValue | Pos::SeqItem => self.indent + 2,
        };
        Compound {
            e: self.e,
            indent: child,
            parent: self.pos,
            count: 0,
            is_map,
        }
    }
}

struct Compound<'a> {
    e: &'a mut Emitter,
    indent: usize,
    parent: Pos,
    count: usize,
    is_map: bool,
}

impl Compound<'_> {
    /// Starts an entry line: a newline after the introducing key or dash, indentation, and
    /// for the first key of a map inside a sequence item, nothing (it shares the dash line).
    fn start_entry(&mut self) {
        let first = self.count == 0;
        self.count += 1;
        match (self.parent, first, self.is_map) {
            (Pos::SeqItem, true, true) => self.e.out.push(' '),
            (Pos::Top, true, _) => {}
            (_, true, _) => {
                self.e.out.push('\n');
                indent(&mut self.e.out, self.indent);
            }
            (_, false, _) => indent(&mut self.e.out, self.indent),
        }
    }

    fn key(&mut self, key: &str) {
        self.start_entry();
        push_str_scalar(&mut self.e.out, key);
        self.e.out.push(':');
    }

    fn value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EmitError> {
        v.serialize(Value {
            e: self.e,
            indent: self.indent,
            pos: Pos::MapValue,
        })
    }

    fn item<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EmitError> {
        self.start_entry();
        self.e.out.push('-');
        v.serialize(Value {
            e: self.e,
            indent: self.indent,
            pos: Pos::SeqItem,
        })
    }

    fn finish(self) -> Result<(), EmitError> {
        if self.count == 0 {
            let empty = if self.is_map { "{}" } else { "[]" };
            if self.parent != Pos::Top {
                self.e.out.push(' ');
            }
            self.e.out.push_str(empty);
            self.e.out.push('\n');
        }
        Ok(())
    }
}

macro_rules! int {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<(), EmitError> {
            if self.pos != Pos::Top {
                self.e.out.push(' ');
            }
            let _ = write!(self.e.out, "{v}");
            self.e.out.push('\n');
            Ok(())
        }
    )*};
}

impl<'a> ser::Serializer for Value<'a> {
    type Ok = ();
    type Error = EmitError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = MapState<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    int!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
         serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64,
         serialize_i128: i128, serialize_u128: u128);

    fn serialize_bool(self, v: bool) -> Result<(), EmitError> {
        self.scalar(if v { "true" } else { "false" })
    }

    fn serialize_f32(self, v: f32) -> Result<(), EmitError> {
        self.serialize_f64(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), EmitError> {
        let text = if v.is_nan() {
            ".nan".to_owned()
        } else if v.is_infinite() {
            if v > 0.0 { ".inf" } else { "-.inf" }.to_owned()
        } else {
            let mut t = format!("{v:?}");
            if !t.contains(['.', 'e', 'E']) {
                t.push_str(".0");
            }
            t
        };
        self.scalar(&text)
    }

    fn serialize_char(self, v: char) -> Result<(), EmitError> {
        self.string(&v.to_string())
    }

    fn serialize_str(self, v: &str) -> Result<(), EmitError> {
        self.string(v)
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), EmitError> {
        let mut seq = self.compound(false);
        for b in v {
            seq.item(b)?;
        }
        seq.finish()
    }

    fn serialize_none(self) -> Result<(), EmitError> {
        self.scalar("null")
    }

    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), EmitError> {
        v.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), EmitError> {
        self.scalar("null")
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), EmitError> {
        self.scalar("null")
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), EmitError> {
        self.string(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        v: &T,
    ) -> Result<(), EmitError> {
        v.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), EmitError> {
        let mut m = self.compound(true);
        m.key(variant);
        m.value(v)?;
        m.finish()
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a>, EmitError> {
        Ok(self.compound(false))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Compound<'a>, EmitError> {
        Ok(self.compound(false))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, EmitError> {
        Ok(self.compound(false))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, EmitError> {
        Err(EmitError("tuple variants are not used in the state".into()))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<MapState<'a>, EmitError> {
        Ok(MapState {
            c: self.compound(true),
        })
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'a>, EmitError> {
        Ok(self.compound(true))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, EmitError> {
        Err(EmitError(
            "struct variants are not used in the state".into(),
        ))
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = EmitError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EmitError> {
        self.item(v)
    }
    fn end(self) -> Result<(), EmitError> {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = EmitError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EmitError> {
        self.item(v)
    }
    fn end(self) -> Result<(), EmitError> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = EmitError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EmitError> {
        self.item(v)
    }
    fn end(self) -> Result<(), EmitError> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = EmitError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EmitError> {
        self.item(v)
    }
    fn end(self) -> Result<(), EmitError> {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = EmitError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), EmitError> {
        self.key(key);
        self.value(v)
    }
    fn end(self) -> Result<(), EmitError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = EmitError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), EmitError> {
        self.key(key);
        self.value(v)
    }
    fn end(self) -> Result<(), EmitError> {
        self.finish()
    }
}

/// A map whose keys arrive through `serialize_key`.
struct MapState<'a> {
    c: Compound<'a>,
}

impl ser::SerializeMap for MapState<'_> {
    type Ok = ();
    type Error = EmitError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), EmitError> {
        let k = key.serialize(KeyText)?;
        self.c.key(&k);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EmitError> {
        self.c.value(v)
    }
    fn end(self) -> Result<(), EmitError> {
        self.c.finish()
    }
}

/// Turns a map key into text; only string-like and integer keys are allowed.
struct KeyText;

macro_rules! key_int {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<String, EmitError> {
            Ok(v.to_string())
        }
    )*};
}

macro_rules! key_reject {
    ($($f:ident($($a:ty),*)),*) => {$(
        fn $f(self, $(_: $a),*) -> Result<String, EmitError> {
            Err(EmitError("map keys must be strings".into()))
        }
    )*};
}

impl ser::Serializer for KeyText {
    type Ok = String;
    type Error = EmitError;
    type SerializeSeq = ser::Impossible<String, EmitError>;
    type SerializeTuple = ser::Impossible<String, EmitError>;
    type SerializeTupleStruct = ser::Impossible<String, EmitError>;
    type SerializeTupleVariant = ser::Impossible<String, EmitError>;
    type SerializeMap = ser::Impossible<String, EmitError>;
    type SerializeStruct = ser::Impossible<String, EmitError>;
    type SerializeStructVariant = ser::Impossible<String, EmitError>;

    key_int!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
             serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64);
    key_reject!(
        serialize_bool(bool),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str)
    );

    fn serialize_char(self, v: char) -> Result<String, EmitError> {
        Ok(v.to_string())
    }
    fn serialize_str(self, v: &str) -> Result<String, EmitError> {
        Ok(v.to_owned())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<String, EmitError> {
        v.serialize(self)
    }
    fn serialize_unit_variant(
        self,
        _n: &'static str,
        _i: u32,
        variant: &'static str,
    ) -> Result<String, EmitError> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _n: &'static str,
        v: &T,
    ) -> Result<String, EmitError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _value: &T,
    ) -> Result<String, EmitError> {
        Err(EmitError("map keys must be strings".into()))
    }
    fn serialize_seq(self, _l: Option<usize>) -> Result<Self::SerializeSeq, EmitError> {
        Err(EmitError("map keys must be strings".into()))
    }
    fn serialize_tuple(self, _l: usize) -> Result<Self::SerializeTuple, EmitError> {
        Err(EmitError("map keys must be strings".into()))
    }
    fn serialize_tuple_struct(
        self,
        _n: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeTupleStruct, EmitError> {
        Err(EmitError("map keys must be strings".into()))
    }
    fn serialize_tuple_variant(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeTupleVariant, EmitError> {
        Err(EmitError("map keys must be strings".into()))
    }
    fn serialize_map(self, _l: Option<usize>) -> Result<Self::SerializeMap, EmitError> {
        Err(EmitError("map keys must be strings".into()))
    }
    fn serialize_struct(
        self,
        _n: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeStruct, EmitError> {
        Err(EmitError("map keys must be strings".into()))
    }
    fn serialize_struct_variant(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeStructVariant, EmitError> {
        Err(EmitError("map keys must be strings".into()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::{Value as J, json};

    use super::*;

    fn round_trip(v: &J) -> J {
        let text = to_string(v).unwrap();
        let back: J = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
        back
    }

    #[test]
    fn nested_documents_read_back_identically() {
        let v = json!({
            "schema_version": 1,
            "empty_map": {},
            "empty_list": [],
            "phases": {"create_vms": {"status": "completed", "items": {"vm-1": {"attempts": 2}}}},
            "journal": [{"at": "2026-11-28T10:00:00Z", "key": "put_accepted", "value": {"url": "https://x/y?a=b#c"}}, {"key": "k"}],
            "nested_lists": [[1, 2], [], [{"a": null}]],
            "scalars": [true, false, null, 0, -7, 1.5, 1e300, "", " lead", "trail ", "yes", "No", "~", "null", "123", "0x1F", "1e3", "a: b", "#c", "- x", "multi\nline", "tab\there", "quote\"d", "back\\slash", "ünïcode", "emoji 🚀", "\u{1}"],
            "weird keys": {"": 1, "a: b": 2, "123": 3, "true": 4, "-": 5}
        });
        assert_eq!(round_trip(&v), v);
    }

    #[test]
    fn output_is_readable_block_yaml() {
        let v = json!({"a": {"b": [1, {"c": "d", "e": "f"}]}, "g": "10.0.0.1"});
        assert_eq!(
            to_string(&v).unwrap(),
            "a:\n  b:\n    - 1\n    - c: d\n      e: f\ng: \"10.0.0.1\"\n"
        );
    }

    fn arb_json() -> impl Strategy<Value = J> {
        let leaf = prop_oneof![
            Just(J::Null),
            any::<bool>().prop_map(J::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            ".*".prop_map(J::String),
            "[a-z0-9 :#\\-\\[\\]{}'\",&*!|>%@`?]{0,12}".prop_map(J::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(J::Array),
                proptest::collection::btree_map(".{0,8}", inner, 0..5)
                    .prop_map(|m: BTreeMap<String, J>| J::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_json_value_round_trips(v in arb_json()) {
            prop_assert_eq!(round_trip(&v), v);
        }
    }
}
