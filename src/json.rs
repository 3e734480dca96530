//! Strict JSON: a document in which some object names a key twice is refused, whatever the key
//! holds and however deep it sits.
//!
//! RFC 8259 (section 4) leaves duplicate names to the reader: serde keeps the last, other readers
//! the first. A validator signs an order's exact bytes, so two readers of the same signed bytes
//! could see two orders (other targets, categories or instrument). Writ reads every authority's
//! JSON and every fed record through [`duplicate_key`] before parsing it for real, so what it
//! accepts reads the same in every reader.
//!
//! The pass is a serde visitor over `serde_json::Deserializer`: keys are compared after
//! unescaping (`"a"` and `"\u0061"` are the same key), each object keeps the set of its own
//! keys, and nesting is bounded by serde_json's recursion limit.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A duplicate key: where it is, as a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    steps: Vec<Step>,
}

impl DuplicateKey {
    /// The path of the duplicate key under `prefix` (empty: the document itself), dotted like the
    /// API's field errors: `order.targets[1].ip.address`. A key that is not a plain name is
    /// written quoted in brackets (`order["a.b"]`).
    pub fn path(&self, prefix: &str) -> String {
        let mut out = prefix.to_owned();
        for step in &self.steps {
            match step {
                Step::Index(i) => out.push_str(&format!("[{i}]")),
                Step::Key(k) if is_plain(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Step::Key(k) => {
                    let quoted = serde_json::to_string(k)
                        .unwrap_or_else(|_| format!("\"{}\"", k.escape_default()));
                    out.push_str(&format!("[{quoted}]"));
                }
            }
        }
        out
    }
}

/// What a person is told about a duplicate key.
pub const DUPLICATE_KEY_MESSAGE: &str =
    "is a duplicate key: its object names it more than once, and each key may appear only once";

fn is_plain(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Why a document could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum StrictError {
    /// A key appears twice in one object.
    #[error("duplicate key at {}", .0.path("(document)"))]
    Duplicate(DuplicateKey),
    /// Not JSON at all (or trailing characters); the normal parse reports it better.
    #[error("not JSON: {0}")]
    Syntax(serde_json::Error),
}

/// Checks that no object in `text` names a key twice. A document that is not JSON is
/// [`StrictError::Syntax`], so that the caller's own parse can say what is wrong with it.
pub fn duplicate_key(text: &[u8]) -> Result<(), StrictError> {
    let found = std::cell::RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(text);
    let walked = Walk {
        path: &mut Vec::new(),
        found: &found,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match (found.into_inner(), walked) {
        (Some(dup), _) => Err(StrictError::Duplicate(dup)),
        (None, Ok(())) => Ok(()),
        (None, Err(e)) => Err(StrictError::Syntax(e)),
    }
}

/// Walks one value; `path` is where it sits. A duplicate is recorded in `found` and the walk
/// stops with an error (serde's errors carry no structure, so the path travels beside it).
struct Walk<'a> {
    path: &'a mut Vec<Step>,
    found: &'a std::cell::RefCell<Option<DuplicateKey>>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            self.path.push(Step::Index(i));
            let more = seq.next_element_seed(Walk {
                path: &mut *self.path,
                found: self.found,
            })?;
            self.path.pop();
            if more.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                self.path.push(Step::Key(key));
                *self.found.borrow_mut() = Some(DuplicateKey {
                    steps: self.path.clone(),
                });
                return Err(de::Error::custom("duplicate key"));
            }
            self.path.push(Step::Key(key.clone()));
            map.next_value_seed(Walk {
                path: &mut *self.path,
                found: self.found,
            })?;
            self.path.pop();
            seen.insert(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(text: &str) -> Option<String> {
        match duplicate_key(text.as_bytes()) {
            Ok(()) => None,
            Err(StrictError::Duplicate(d)) => Some(d.path("")),
            Err(StrictError::Syntax(e)) => panic!("syntax: {e}"),
        }
    }

    #[test]
    fn documents_without_duplicates_pass() {
        assert_eq!(
            path_of(r#"{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}"#),
            None
        );
        assert_eq!(path_of("[1,2,3]"), None);
        assert_eq!(path_of("\"x\""), None);
    }

    #[test]
    fn duplicates_are_found_at_every_level_by_path() {
        assert_eq!(path_of(r#"{"a":1,"a":2}"#).as_deref(), Some("a"));
        assert_eq!(
            path_of(r#"{"a":{"b":1,"c":2,"b":3}}"#).as_deref(),
            Some("a.b")
        );
        assert_eq!(
            path_of(r#"{"t":[{"x":1},{"y":{"z":1,"z":1}}]}"#).as_deref(),
            Some("t[1].y.z")
        );
        assert_eq!(path_of(r#"[[{"k":1,"k":1}]]"#).as_deref(), Some("[0][0].k"));
    }

    #[test]
    fn escaped_spellings_of_one_key_are_the_same_key() {
        assert_eq!(path_of(r#"{"ab":1,"\u0061b":2}"#).as_deref(), Some("ab"));
    }

    #[test]
    fn odd_keys_are_quoted_in_the_path() {
        let Err(StrictError::Duplicate(d)) = duplicate_key(br#"{"o":{"a.b":1,"a.b":2}}"#) else {
            panic!("not found")
        };
        assert_eq!(d.path("order"), r#"order.o["a.b"]"#);
    }

    #[test]
    fn syntax_errors_are_left_to_the_parser() {
        assert!(matches!(
            duplicate_key(b"{\"a\":"),
            Err(StrictError::Syntax(_))
        ));
        assert!(matches!(
            duplicate_key(b"{} x"),
            Err(StrictError::Syntax(_))
        ));
    }
}
