//! Reads typed values out of a `yaml_serde::Value` tree while collecting every error instead of stopping at
//! the first: a profile with a wrong MTU and a misspelt key reports both. Leaf values (numbers, strings,
//! enumerations) go through `yaml_serde::from_value`; mappings are read key by key through [`Fields`],
//! which reports keys nobody asked for as unknown.

use serde::de::DeserializeOwned;
use yaml_serde::Value;

use crate::error::YamlPath;

/// An error found while decoding, before positions are looked up.
#[derive(Debug)]
pub(crate) struct Problem {
    pub path: YamlPath,
    pub on_key: bool,
    pub message: String,
}

/// Collects problems while the profile is decoded.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    pub problems: Vec<Problem>,
}

impl Decoder {
    /// Records an error about the value at `path`.
    pub fn error(&mut self, path: &YamlPath, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.clone(),
            on_key: false,
            message: message.into(),
        });
    }

    /// Records an error about the key that ends `path` (unknown keys point at the key, not its value).
    pub fn key_error(&mut self, path: &YamlPath, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.clone(),
            on_key: true,
            message: message.into(),
        });
    }

    /// Opens the mapping at `node` for key-by-key reading; an error if it is not a mapping.
    pub fn fields<'v>(&mut self, node: &Node<'v>) -> Option<Fields<'v>> {
        match node.value {
            Value::Mapping(mapping) => {
                let mut entries = Vec::with_capacity(mapping.len());
                for (key, value) in mapping {
                    match key.as_str() {
                        Some(key) => entries.push((key, value, false)),
                        None => self.error(
                            &node.path,
                            format!("mapping keys must be strings, found {}", kind(key)),
                        ),
                    }
                }
                Some(Fields {
                    path: node.path.clone(),
                    entries,
                    asked: Vec::new(),
                })
            }
            // An empty section (`sync:` with nothing under it) reads as an empty mapping.
            Value::Null => Some(Fields {
                path: node.path.clone(),
                entries: Vec::new(),
                asked: Vec::new(),
            }),
            other => {
                self.error(
                    &node.path,
                    format!("expected a mapping, found {}", kind(other)),
                );
                None
            }
        }
    }

    /// Decodes the sequence at `node`, element by element, keeping the elements that decode.
    pub fn list<T: Decode>(&mut self, node: &Node<'_>) -> Option<Vec<T>> {
        match node.value {
            Value::Sequence(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, value)| T::decode(&node.index(i, value), self))
                    .collect(),
            ),
            Value::Null => Some(Vec::new()),
            other => {
                self.error(
                    &node.path,
                    format!("expected a sequence, found {}", kind(other)),
                );
                None
            }
        }
    }

    /// Like [`Decoder::list`], but a single value stands for a one-element list (`from: 10.0.0.0/8`).
    pub fn one_or_many<T: Decode>(&mut self, node: &Node<'_>) -> Option<Vec<T>> {
        match node.value {
            Value::Sequence(_) | Value::Null => self.list(node),
            _ => T::decode(node, self).map(|one| vec![one]),
        }
    }
}

/// A value of the tree together with its path.
#[derive(Clone, Debug)]
pub(crate) struct Node<'v> {
    pub value: &'v Value,
    pub path: YamlPath,
}

impl<'v> Node<'v> {
    pub fn root(value: &'v Value) -> Self {
        Node {
            value,
            path: YamlPath::root(),
        }
    }

    pub fn index(&self, index: usize, value: &'v Value) -> Self {
        Node {
            value,
            path: self.path.index(index),
        }
    }

    /// The value as a string, when it is one.
    pub fn as_str(&self) -> Option<&'v str> {
        self.value.as_str()
    }
}

/// The keys of one mapping, each marked when read, so that the rest can be reported as unknown.
#[derive(Debug)]
pub(crate) struct Fields<'v> {
    path: YamlPath,
    entries: Vec<(&'v str, &'v Value, bool)>,
    /// Every key the schema asked for, present or not: the known keys for suggestions.
    asked: Vec<String>,
}

impl<'v> Fields<'v> {
    /// The path of the mapping itself.
    pub fn path(&self) -> &YamlPath {
        &self.path
    }

    /// The node under `key`, marking the key as known; `None` when absent.
    pub fn node(&mut self, key: &str) -> Option<Node<'v>> {
        if !self.asked.iter().any(|k| k == key) {
            self.asked.push(key.to_string());
        }
        let path = self.path.key(key);
        self.entries
            .iter_mut()
            .find(|(k, _, _)| *k == key)
            .map(|entry| {
                entry.2 = true;
                Node {
                    value: entry.1,
                    path,
                }
            })
    }

    /// Marks `key` as known without reading it (for keys handled elsewhere).
    pub fn has(&mut self, key: &str) -> bool {
        self.node(key).is_some()
    }

    /// Decodes the value under `key`; `None` when absent or wrong (the error is recorded).
    pub fn optional<T: Decode>(&mut self, d: &mut Decoder, key: &str) -> Option<T> {
        self.node(key).and_then(|node| T::decode(&node, d))
    }

    /// Decodes the value under `key`, recording an error when it is absent.
    pub fn required<T: Decode>(&mut self, d: &mut Decoder, key: &str) -> Option<T> {
        match self.node(key) {
            Some(node) => T::decode(&node, d),
            None => {
                d.error(&self.path, format!("missing key `{key}`"));
                None
            }
        }
    }

    /// Decodes the value under `key`, or gives `default` when it is absent or wrong.
    pub fn or<T: Decode>(&mut self, d: &mut Decoder, key: &str, default: T) -> T {
        self.optional(d, key).unwrap_or(default)
    }

    /// Decodes a list under `key` where a single value is also accepted; absent is empty.
    pub fn one_or_many<T: Decode>(&mut self, d: &mut Decoder, key: &str) -> Vec<T> {
        self.node(key)
            .and_then(|node| d.one_or_many(&node))
            .unwrap_or_default()
    }

    /// Reports every key that was never read as unknown, suggesting the closest known one.
    pub fn finish(self, d: &mut Decoder) {
        let known: Vec<&str> = self.asked.iter().map(String::as_str).collect();
        for (key, _, _) in self.entries.iter().filter(|e| !e.2) {
            d.key_error(
                &self.path.key(key),
                format!("unknown key `{key}`{}", suggestion(key, &known)),
            );
        }
    }
}

/// A type that can be read from a node of the profile.
pub(crate) trait Decode: Sized {
    fn decode(node: &Node<'_>, d: &mut Decoder) -> Option<Self>;
}

/// Decodes any serde type from a node, turning serde's message into a profile error.
pub(crate) fn serde_value<T: DeserializeOwned>(node: &Node<'_>, d: &mut Decoder) -> Option<T> {
    match yaml_serde::from_value::<T>(node.value.clone()) {
        Ok(value) => Some(value),
        Err(error) => {
            d.error(&node.path, error.to_string());
            None
        }
    }
}

macro_rules! decode_with_serde {
    ($($ty:ty),*) => {
        $(impl Decode for $ty {
            fn decode(node: &Node<'_>, d: &mut Decoder) -> Option<Self> {
                serde_value(node, d)
            }
        })*
    };
}

decode_with_serde!(bool, u8, u16, u32, u64, usize);

impl Decode for String {
    fn decode(node: &Node<'_>, d: &mut Decoder) -> Option<Self> {
        match node.value {
            Value::String(s) => Some(s.clone()),
            // Plain scalars such as `1500` or `yes` are strings where a string is asked for.
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                d.error(
                    &node.path,
                    format!("expected a string, found {}", kind(other)),
                );
                None
            }
        }
    }
}

/// Decodes a value given as a string through `FromStr`, with the parser's message as the error.
pub(crate) fn parsed<T>(node: &Node<'_>, d: &mut Decoder, what: &str) -> Option<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text = String::decode(node, d)?;
    match text.parse::<T>() {
        Ok(value) => Some(value),
        Err(error) => {
            d.error(&node.path, format!("bad {what} `{text}`: {error}"));
            None
        }
    }
}

/// A short name for the kind of a YAML value, for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a sequence",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// `" (did you mean `x`?)"` when a known key is within two edits of `key`, else nothing.
fn suggestion(key: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

/// Levenshtein distance over characters; keys are short.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(src: &str) -> Value {
        yaml_serde::from_str(src).expect("test YAML parses")
    }

    #[test]
    fn unknown_keys_are_all_reported_with_a_suggestion() {
        let doc = value("mtu: 1500\nmtuu: 9000\nqueus: 2\nzzz: 1\n");
        let mut d = Decoder::default();
        let mut fields = d.fields(&Node::root(&doc)).expect("a mapping");
        assert_eq!(fields.optional::<u16>(&mut d, "mtu"), Some(1500));
        let _ = fields.optional::<u16>(&mut d, "queues");
        fields.finish(&mut d);
        let messages: Vec<&str> = d.problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "unknown key `mtuu` (did you mean `mtu`?)",
                "unknown key `queus` (did you mean `queues`?)",
                "unknown key `zzz`"
            ]
        );
        assert!(d.problems.iter().all(|p| p.on_key));
    }

    #[test]
    fn wrong_types_are_reported_and_reading_goes_on() {
        let doc = value("a: [1, x, 3, 70000]\n");
        let mut d = Decoder::default();
        let mut fields = d.fields(&Node::root(&doc)).expect("a mapping");
        let node = fields.node("a").expect("present");
        let list: Vec<u16> = d.list(&node).expect("a sequence");
        assert_eq!(list, [1, 3]);
        assert_eq!(d.problems.len(), 2);
        assert_eq!(d.problems[0].path.to_string(), "a[1]");
        assert_eq!(d.problems[1].path.to_string(), "a[3]");
    }

    #[test]
    fn a_single_value_is_a_one_element_list_where_allowed() {
        let doc = value("one: 7\nmany: [1, 2]\n");
        let mut d = Decoder::default();
        let mut fields = d.fields(&Node::root(&doc)).expect("a mapping");
        assert_eq!(fields.one_or_many::<u8>(&mut d, "one"), [7]);
        assert_eq!(fields.one_or_many::<u8>(&mut d, "many"), [1, 2]);
        assert!(d.problems.is_empty());
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("mtu", "mtu"), 0);
        assert_eq!(edit_distance("mtuu", "mtu"), 1);
        assert_eq!(edit_distance("qeues", "queues"), 1);
        assert_eq!(edit_distance("abc", "xyz"), 3);
    }
}
