//! Rego values on the way to a worker process (`worker.rs`): a compact tagged encoding,
//! several times cheaper to write and read than JSON (no escaping, no numbers as text), with
//! the short strings of a worker's inputs (keys, kinds, namespaces, paths) made once per
//! worker and shared, as the parent's values share them.
//!
//! A value is a tag byte, then: nothing (null, booleans, undefined); 8 bytes little-endian (an
//! unsigned or signed integer, a float); a length (4 bytes) and UTF-8 (a string, or a number
//! too large for 64 bits as its JSON); a count (4 bytes) and as many values (an array, a set)
//! or key-value pairs (an object).
//!
//! The topology holds every placement's `input.object`, which its input holds again: encoding
//! the topology keeps those objects (numbered in order), and a worker that has it receives
//! each of them in an input as its number ([`Kept`]).

use std::collections::{BTreeMap, BTreeSet};

use regorus::Value;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const UINT: u8 = 3;
const INT: u8 = 4;
const FLOAT: u8 = 5;
const STRING: u8 = 6;
const ARRAY: u8 = 7;
const OBJECT: u8 = 8;
const SET: u8 = 9;
const UNDEFINED: u8 = 10;
/// A number as its JSON text.
const BIG: u8 = 11;
/// The value that follows is kept, with the next number.
const KEEP: u8 = 12;
/// A kept value, by its number (4 bytes).
const KEPT: u8 = 13;

/// Strings up to this many bytes are made once per worker.
const SHARED_STRING_BYTES: usize = 64;
/// Distinct shared strings kept; past this the table starts over.
const SHARED_STRINGS: usize = 100_000;

/// Appends the encoding of `value` to `out`.
pub(super) fn encode(value: &Value, out: &mut Vec<u8>) {
    Encoder::Plain.value(value, out);
}

/// The values an encoding kept, by their identity (the address of the object they share).
#[derive(Debug, Default)]
pub(super) struct Kept(foldhash::HashMap<usize, u32>);

/// An object's identity: its values are shared, and cloning one keeps the address.
pub(super) fn identity(value: &Value) -> Option<usize> {
    match value {
        Value::Object(fields) => Some(regorus::Rc::as_ptr(fields) as usize),
        _ => None,
    }
}

/// Encodes `value` keeping the objects whose identity is in `keep`.
pub(super) fn encode_keeping(
    value: &Value,
    keep: &foldhash::HashSet<usize>,
    out: &mut Vec<u8>,
) -> Kept {
    let mut kept = Kept::default();
    Encoder::Keep(keep, &mut kept).value(value, out);
    kept
}

/// Encodes `value` for a worker that holds the values of `kept`.
pub(super) fn encode_referring(value: &Value, kept: &Kept, out: &mut Vec<u8>) {
    Encoder::Refer(kept).value(value, out);
}

enum Encoder<'a> {
    Plain,
    Keep(&'a foldhash::HashSet<usize>, &'a mut Kept),
    Refer(&'a Kept),
}

impl Encoder<'_> {
    fn value(&mut self, value: &Value, out: &mut Vec<u8>) {
        match (&mut *self, identity(value)) {
            (Encoder::Keep(keep, kept), Some(id))
                if keep.contains(&id) && !kept.0.contains_key(&id) =>
            {
                let number = u32::try_from(kept.0.len()).unwrap_or(u32::MAX);
                kept.0.insert(id, number);
                out.push(KEEP);
            }
            (Encoder::Refer(kept), Some(id)) => {
                if let Some(number) = kept.0.get(&id) {
                    out.push(KEPT);
                    out.extend_from_slice(&number.to_le_bytes());
                    return;
                }
            }
            _ => {}
        }
        self.fields(value, out);
    }

    fn fields(&mut self, value: &Value, out: &mut Vec<u8>) {
        match value {
            Value::Null => out.push(NULL),
            Value::Bool(false) => out.push(FALSE),
            Value::Bool(true) => out.push(TRUE),
            Value::Undefined => out.push(UNDEFINED),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    out.push(UINT);
                    out.extend_from_slice(&u.to_le_bytes());
                } else if let Some(i) = n.as_i64() {
                    out.push(INT);
                    out.extend_from_slice(&i.to_le_bytes());
                } else if let Some(f) = n.as_f64() {
                    out.push(FLOAT);
                    out.extend_from_slice(&f.to_le_bytes());
                } else {
                    out.push(BIG);
                    text(&value.to_string(), out);
                }
            }
            Value::String(s) => {
                out.push(STRING);
                text(s, out);
            }
            Value::Array(items) => {
                out.push(ARRAY);
                count(items.len(), out);
                items.iter().for_each(|item| self.value(item, out));
            }
            Value::Set(items) => {
                out.push(SET);
                count(items.len(), out);
                items.iter().for_each(|item| self.value(item, out));
            }
            Value::Object(fields) => {
                out.push(OBJECT);
                count(fields.len(), out);
                for (key, field) in fields.iter() {
                    self.value(key, out);
                    self.value(field, out);
                }
            }
        }
    }
}

fn count(n: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

fn text(s: &str, out: &mut Vec<u8>) {
    count(s.len(), out);
    out.extend_from_slice(s.as_bytes());
}

/// Reads values, sharing short strings across them, and keeping the values marked so.
#[derive(Default)]
pub(super) struct Decoder {
    strings: foldhash::HashMap<Box<str>, Value>,
    kept: Vec<Value>,
}

impl Decoder {
    /// The value encoded in `bytes`; `None` when they are not one whole value.
    pub(super) fn decode(&mut self, bytes: &[u8]) -> Option<Value> {
        let mut at = bytes;
        let value = self.value(&mut at)?;
        at.is_empty().then_some(value)
    }

    fn value(&mut self, at: &mut &[u8]) -> Option<Value> {
        let (&tag, rest) = at.split_first()?;
        *at = rest;
        Some(match tag {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            UNDEFINED => Value::Undefined,
            UINT => Value::from(u64::from_le_bytes(take(at)?)),
            INT => Value::from(i64::from_le_bytes(take(at)?)),
            FLOAT => Value::from(f64::from_le_bytes(take(at)?)),
            BIG => Value::from_json_str(self.str(at)?).ok()?,
            STRING => {
                let s = self.str(at)?;
                if s.len() > SHARED_STRING_BYTES {
                    return Some(Value::from(s));
                }
                if let Some(shared) = self.strings.get(s) {
                    return Some(shared.clone());
                }
                if self.strings.len() >= SHARED_STRINGS {
                    self.strings.clear();
                }
                let value = Value::from(s);
                self.strings.insert(s.into(), value.clone());
                value
            }
            ARRAY => {
                let n = length(at)?;
                let mut items = Vec::with_capacity(n.min(at.len()));
                for _ in 0..n {
                    items.push(self.value(at)?);
                }
                Value::from(items)
            }
            SET => {
                let n = length(at)?;
                let mut items = BTreeSet::new();
                for _ in 0..n {
                    items.insert(self.value(at)?);
                }
                Value::from(items)
            }
            OBJECT => {
                let n = length(at)?;
                // Inserted one by one: the keys come in order, and collecting would sort them.
                let mut fields = BTreeMap::new();
                for _ in 0..n {
                    let key = self.value(at)?;
                    fields.insert(key, self.value(at)?);
                }
                Value::from(fields)
            }
            KEEP => {
                // Numbered before what it holds, as the encoder numbers them.
                let number = self.kept.len();
                self.kept.push(Value::Null);
                let value = self.value(at)?;
                self.kept[number] = value.clone();
                value
            }
            KEPT => {
                let number = u32::from_le_bytes(take(at)?);
                self.kept.get(usize::try_from(number).ok()?)?.clone()
            }
            _ => return None,
        })
    }

    fn str<'b>(&self, at: &mut &'b [u8]) -> Option<&'b str> {
        let n = length(at)?;
        let bytes = at.get(..n)?;
        *at = &at[n..];
        std::str::from_utf8(bytes).ok()
    }
}

fn take<const N: usize>(at: &mut &[u8]) -> Option<[u8; N]> {
    let bytes: [u8; N] = at.get(..N)?.try_into().ok()?;
    *at = &at[N..];
    Some(bytes)
}

fn length(at: &mut &[u8]) -> Option<usize> {
    usize::try_from(u32::from_le_bytes(take(at)?)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_objects_are_sent_once() {
        let object =
            Value::from_json_str(r#"{"kind": "Job", "manifest": {"a": [1, 2]}}"#).expect("json");
        let other = Value::from_json_str(r#"{"kind": "Job"}"#).expect("json");
        let topology = Value::from(vec![object.clone(), other.clone()]);
        let keep: foldhash::HashSet<usize> = identity(&object).into_iter().collect();
        let mut bytes = Vec::new();
        let kept = encode_keeping(&topology, &keep, &mut bytes);
        let mut decoder = Decoder::default();
        assert_eq!(decoder.decode(&bytes), Some(topology));
        let input = Value::from(vec![object.clone(), other]);
        let (mut plain, mut referring) = (Vec::new(), Vec::new());
        encode(&input, &mut plain);
        encode_referring(&input, &kept, &mut referring);
        assert!(referring.len() < plain.len());
        assert_eq!(decoder.decode(&referring), Some(input));
        // A number it never kept is refused.
        assert_eq!(decoder.decode(&[KEPT, 9, 0, 0, 0]), None);
    }

    #[test]
    fn values_round_trip() {
        let json = r#"{"a": [1, -2, 1.5, 18446744073709551615, "x", null, true, false],
            "b": {"nested": {"é": "²"}}, "c": 123456789012345678901234567890, "": ""}"#;
        let value = Value::from_json_str(json).expect("json");
        let mut set = BTreeSet::new();
        set.insert(Value::from("s"));
        let values = [value, Value::from(set), Value::Undefined];
        let mut decoder = Decoder::default();
        for v in values {
            let mut bytes = Vec::new();
            encode(&v, &mut bytes);
            assert_eq!(decoder.decode(&bytes), Some(v.clone()));
            // Truncated or trailing bytes are refused, never a panic.
            for cut in 0..bytes.len() {
                assert_eq!(decoder.decode(&bytes[..cut]), None);
            }
            bytes.push(0);
            assert_eq!(decoder.decode(&bytes), None);
        }
        assert_eq!(decoder.decode(&[STRING, 255, 255, 255, 255]), None);
        assert_eq!(decoder.decode(&[ARRAY, 255, 255, 255, 255]), None);
        assert_eq!(decoder.decode(&[99]), None);
    }
}
