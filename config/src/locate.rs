//! Finds the line and column of a node of the profile, given its path.
//!
//! `yaml_serde` keeps no positions in its `Value` tree, but it attaches the position of the node being read
//! to any error raised while deserializing it. So we walk the document again with a seed that follows the
//! path, skips everything else, and raises a marker error on the node we want; the error's location is the
//! answer. Profiles are small and this runs only for nodes that have errors.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

use crate::error::{Location, Segment};

const FOUND: &str = "tandem-locate: found";
const MISSING: &str = "tandem-locate: not found";

/// Position of the node at `path` in `src` (of its key, when `on_key` and the path ends at a mapping key).
pub(crate) fn locate(src: &str, path: &[Segment], on_key: bool) -> Option<Location> {
    let target = Target { path, on_key };
    match target.deserialize(yaml_serde::Deserializer::from_str(src)) {
        Err(error) if error.to_string().contains(FOUND) => error.location().map(|at| Location {
            line: at.line(),
            column: at.column(),
        }),
        _ => None,
    }
}

struct Target<'a> {
    path: &'a [Segment],
    on_key: bool,
}

impl<'de> DeserializeSeed<'de> for Target<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.path.is_empty() {
            deserializer.deserialize_any(Found)
        } else {
            deserializer.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Target<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping or sequence on the way to a node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Segment::Key(want), rest)) = self.path.split_first() else {
            return Err(de::Error::custom(MISSING));
        };
        let fail_on_key = rest.is_empty() && self.on_key;
        while let Some(hit) = map.next_key_seed(KeyMatch { want, fail_on_key })? {
            if hit {
                return map.next_value_seed(Target {
                    path: rest,
                    on_key: self.on_key,
                });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Err(de::Error::custom(MISSING))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Segment::Index(want), rest)) = self.path.split_first() else {
            return Err(de::Error::custom(MISSING));
        };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Err(de::Error::custom(MISSING));
            }
        }
        seq.next_element_seed(Target {
            path: rest,
            on_key: self.on_key,
        })?;
        Err(de::Error::custom(MISSING))
    }
}

/// Reads a mapping key and says whether it is the one wanted; fails on it when its own position is wanted.
struct KeyMatch<'a> {
    want: &'a str,
    fail_on_key: bool,
}

impl<'de> DeserializeSeed<'de> for KeyMatch<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyMatch<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        if key != self.want {
            Ok(false)
        } else if self.fail_on_key {
            Err(E::custom(FOUND))
        } else {
            Ok(true)
        }
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

/// Raises the marker error on whatever node it is given, so the error carries that node's position.
struct Found;

impl<'de> Visitor<'de> for Found {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "node:\n  name: a\n  host-id: 5\nports:\n  - name: in\n    mtu: 1500\n  - name: out\n    bad: {x: 1}\n";

    fn key(k: &str) -> Segment {
        Segment::Key(k.to_string())
    }

    #[test]
    fn finds_a_scalar_value_and_its_key() {
        let path = [key("node"), key("host-id")];
        assert_eq!(
            locate(DOC, &path, false),
            Some(Location {
                line: 3,
                column: 12
            })
        );
        assert_eq!(
            locate(DOC, &path, true),
            Some(Location { line: 3, column: 3 })
        );
    }

    #[test]
    fn finds_nodes_inside_sequences() {
        let element = [key("ports"), Segment::Index(1)];
        assert_eq!(
            locate(DOC, &element, false),
            Some(Location { line: 7, column: 5 })
        );
        let nested = [key("ports"), Segment::Index(1), key("bad")];
        assert_eq!(
            locate(DOC, &nested, true),
            Some(Location { line: 8, column: 5 })
        );
        assert_eq!(
            locate(DOC, &nested, false),
            Some(Location {
                line: 8,
                column: 10
            })
        );
    }

    #[test]
    fn missing_paths_have_no_location() {
        assert_eq!(locate(DOC, &[key("nope")], false), None);
        assert_eq!(locate(DOC, &[key("ports"), Segment::Index(9)], false), None);
        assert_eq!(locate(DOC, &[key("node"), Segment::Index(0)], false), None);
    }
}
