//! JSON objects whose members are unique at every depth.
//!
//! serde_json keeps the last of duplicate members; another JWT library, or
//! the service behind tollgate decoding the same token, may keep the first.
//! Refusing duplicates anywhere in a token's header or claims means no two
//! parsers can disagree about which `sub`, `alg` or nested role list a
//! token carries.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

/// A JSON object, refused if any object inside it repeats a member.
pub(super) struct StrictObject(pub(super) Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match deserializer.deserialize_map(StrictVisitor)? {
            Value::Object(map) => Ok(StrictObject(map)),
            _ => Err(D::Error::custom("expected a JSON object")),
        }
    }
}

/// Any JSON value, built under the same rule.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON whose objects have unique members")
    }

    fn visit_unit<E: Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E: Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: Error>(self, value: f64) -> Result<Value, E> {
        Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E: Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: Error>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(access.size_hint().unwrap_or(0));
        while let Some(StrictValue(item)) = access.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let StrictValue(value) = access.next_value()?;
            match map.entry(key) {
                Entry::Vacant(vacant) => vacant.insert(value),
                Entry::Occupied(_) => return Err(A::Error::custom("duplicate member")),
            };
        }
        Ok(Value::Object(map))
    }
}

/// A JSON string, borrowed from the input when it holds no escapes.
pub(super) struct Text<'de>(pub(super) Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON string")
    }

    fn visit_borrowed_str<E: Error>(self, value: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(value)))
    }

    fn visit_str<E: Error>(self, value: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E: Error>(self, value: String) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(value)))
    }
}

/// Any JSON value, checked under the same rule but not kept: for members
/// a reader skips, which must still not be ambiguous to another parser.
pub(super) struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON whose objects have unique members")
    }

    fn visit_unit<E: Error>(self) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_bool<E: Error>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_i64<E: Error>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_u64<E: Error>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_f64<E: Error>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_str<E: Error>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Unique, A::Error> {
        while access.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Unique, A::Error> {
        let mut names = Names::default();
        while let Some(Text(name)) = access.next_key()? {
            access.next_value::<Unique>()?;
            names.push(name);
        }
        names.check().map(|()| Unique)
    }
}

/// Any JSON value, checked like [`Unique`] and kept only when it is a
/// string: for the one member a reader needs before it has decided whether
/// to read the rest, such as `iss`.
pub(super) struct MaybeText<'de>(pub(super) Option<Cow<'de, str>>);

impl<'de> Deserialize<'de> for MaybeText<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MaybeTextVisitor)
    }
}

struct MaybeTextVisitor;

impl<'de> Visitor<'de> for MaybeTextVisitor {
    type Value = MaybeText<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON whose objects have unique members")
    }

    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(MaybeText(None))
    }

    fn visit_bool<E: Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(MaybeText(None))
    }

    fn visit_i64<E: Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(MaybeText(None))
    }

    fn visit_u64<E: Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(MaybeText(None))
    }

    fn visit_f64<E: Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(MaybeText(None))
    }

    fn visit_borrowed_str<E: Error>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(MaybeText(Some(Cow::Borrowed(value))))
    }

    fn visit_str<E: Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(MaybeText(Some(Cow::Owned(value.to_owned()))))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, access: A) -> Result<Self::Value, A::Error> {
        UniqueVisitor
            .visit_seq(access)
            .map(|Unique| MaybeText(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Self::Value, A::Error> {
        UniqueVisitor
            .visit_map(access)
            .map(|Unique| MaybeText(None))
    }
}

/// How many member names [`Names`] holds in place before it spills to the
/// heap: more than the claims of most tokens have.
const FEW_NAMES: usize = 16;

/// The member names of one object, to refuse a repeat among them.
///
/// Every token checked at all has its header and claims read through this,
/// forged ones included. A small object's names are kept in place and
/// compared pairwise, which costs no allocation and, at this size, fewer
/// comparisons than a sort; a larger one spills to a vector that is sorted,
/// so that an object of thousands of members never costs a square.
#[derive(Default)]
pub(super) struct Names<'de> {
    few: [Cow<'de, str>; FEW_NAMES],
    len: usize,
    /// Every name once there are more than [`FEW_NAMES`].
    many: Vec<Cow<'de, str>>,
}

impl<'de> Names<'de> {
    pub(super) fn push(&mut self, name: Cow<'de, str>) {
        if self.len < FEW_NAMES {
            self.few[self.len] = name;
            self.len += 1;
            return;
        }
        if self.many.is_empty() {
            self.many.reserve(FEW_NAMES * 2);
            self.many.extend(self.few.iter_mut().map(std::mem::take));
        }
        self.many.push(name);
    }

    /// Refuses the object if a name repeats.
    pub(super) fn check<E: Error>(self) -> Result<(), E> {
        let repeats = if self.many.is_empty() {
            has_pair(&self.few[..self.len])
        } else {
            let mut many = self.many;
            many.sort_unstable();
            many.windows(2).any(|pair| pair[0] == pair[1])
        };
        match repeats {
            true => Err(E::custom("duplicate member")),
            false => Ok(()),
        }
    }
}

/// Says whether two of a few names are equal.
fn has_pair(names: &[Cow<'_, str>]) -> bool {
    names
        .iter()
        .enumerate()
        .any(|(at, name)| names[at + 1..].iter().any(|other| is_same(name, other)))
}

/// Compares two names, looking at their lengths and first bytes before
/// calling out to compare the rest: most pairs of names differ there
/// already, and the call is the dearest part of a comparison this short.
fn is_same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.as_bytes().first() == b.as_bytes().first() && a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<Map<String, Value>> {
        serde_json::from_str::<StrictObject>(text).ok().map(|o| o.0)
    }

    /// Checks `text` as a skipped member is checked, through [`Names`].
    fn is_unique(text: &str) -> bool {
        serde_json::from_str::<Unique>(text).is_ok()
    }

    #[test]
    fn unique_members_parse_at_every_depth() {
        let map = parse(r#"{"a":{"b":[1,{"c":null}],"d":1.5},"e":"x","f":true}"#).expect("valid");
        assert_eq!(map["a"]["b"][1]["c"], Value::Null);
        assert_eq!(map["a"]["d"], 1.5);
    }

    #[test]
    fn duplicates_are_refused_at_every_depth() {
        assert!(parse(r#"{"a":1,"a":2}"#).is_none());
        assert!(parse(r#"{"a":{"roles":["p"],"roles":["admin"]}}"#).is_none());
        assert!(parse(r#"{"a":[{"x":1,"x":1}]}"#).is_none());
        assert!(
            parse(r#"{"s\u0075b":1,"sub":2}"#).is_none(),
            "escapes are decoded first"
        );
    }

    #[test]
    fn repeats_are_found_among_few_and_many_names() {
        for count in [1, 2, FEW_NAMES - 1, FEW_NAMES, FEW_NAMES + 1, 3 * FEW_NAMES] {
            let members: Vec<String> = (0..count).map(|at| format!(r#""m{at}":{at}"#)).collect();
            let unique = format!("{{{}}}", members.join(","));
            assert!(is_unique(&unique), "{count} unique members");
            for repeat in [0, count / 2, count - 1] {
                let mut members = members.clone();
                members.insert(repeat, format!(r#""m{}":0"#, count - 1 - repeat));
                let repeated = format!("{{{}}}", members.join(","));
                assert!(!is_unique(&repeated), "{count} members, {repeat}");
            }
        }
    }

    #[test]
    fn only_objects_are_accepted_at_the_top() {
        assert!(parse("[1,2]").is_none());
        assert!(parse("3").is_none());
    }
}
