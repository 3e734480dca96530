//! The audit entry and its canonical bytes: the Merkle leaf.
//!
//! # Leaf format, version 1
//!
//! A leaf is one line of UTF-8 JSON, no whitespace, with exactly these keys in this order:
//!
//! ```text
//! {"v":1,"seq":42,"at":"2026-11-28T03:12:06.123456Z","actor":{"kind":"staff","id":"u_17"},
//!  "event":"order.approved","order":"ord_9"|null,"jurisdiction":"fr"|null,
//!  "refs":{"document_sha256":"9f86...","fields":3}}
//! ```
//!
//! - `seq` is the entry's position in the log (the leaf index), so removal, insertion and
//!   reordering show up at the exact entry.
//! - `at` is RFC 3339 in UTC with exactly six fractional digits and a `Z`.
//! - `refs` keys are sorted (byte order); values are strings, unsigned integers or booleans:
//!   references such as hashes, counts and ids, never the disclosed personal data itself.
//! - The Merkle leaf hash is `SHA-256(0x00 || leaf bytes)` (RFC 9162 section 2.1.1).
//!
//! Exactly one byte string encodes a given entry: [`Leaf::parse`] re-encodes what it read and
//! rejects input that is not already in canonical form.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Current leaf format version.
pub const LEAF_VERSION: u8 = 1;

/// Longest accepted actor id, event name, order id or jurisdiction.
const MAX_ID_LEN: usize = 128;
/// Longest accepted string value in `refs`.
const MAX_REF_LEN: usize = 512;
/// Most `refs` an entry may carry.
const MAX_REFS: usize = 32;

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A member of the provider's legal team or an administrator (by staff user id).
    Staff,
    /// A public authority (by its registry id).
    Authority,
    /// An auditor (by staff user id or token name).
    Auditor,
    /// One of the provider's systems feeding metadata (by its configured name).
    Feeder,
    /// Writ itself (scheduled work, start-up).
    System,
}

impl ActorKind {
    /// The name used in leaves and columns.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staff => "staff",
            Self::Authority => "authority",
            Self::Auditor => "auditor",
            Self::Feeder => "feeder",
            Self::System => "system",
        }
    }
}

impl fmt::Display for ActorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The actor of an entry: a kind and an id. Never a user's personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// Kind of actor.
    pub kind: ActorKind,
    /// Its identifier within that kind.
    pub id: String,
}

impl Actor {
    /// An actor.
    pub fn new(kind: ActorKind, id: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.into(),
        }
    }

    /// Writ itself.
    pub fn system() -> Self {
        Self::new(ActorKind::System, "writ")
    }
}

/// A value in an entry's `refs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RefValue {
    /// A flag.
    Bool(bool),
    /// A count or size.
    Count(u64),
    /// A hash, id or short code.
    Text(String),
}

impl From<u64> for RefValue {
    fn from(v: u64) -> Self {
        Self::Count(v)
    }
}
impl From<usize> for RefValue {
    fn from(v: usize) -> Self {
        Self::Count(u64::try_from(v).unwrap_or(u64::MAX))
    }
}
impl From<bool> for RefValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}
impl From<&str> for RefValue {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}
impl From<String> for RefValue {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

/// An entry about to be appended (its position and time are fixed by the append).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// Who acted.
    pub actor: Actor,
    /// What happened, a dotted lowercase name such as `order.received`.
    pub event: String,
    /// Which order, if any.
    pub order_id: Option<String>,
    /// Which jurisdiction, if any (for filtered views).
    pub jurisdiction: Option<String>,
    /// References: hashes, counts, ids.
    pub refs: BTreeMap<String, RefValue>,
}

impl NewEntry {
    /// An entry with no order, jurisdiction or references yet.
    pub fn new(actor: Actor, event: impl Into<String>) -> Self {
        Self {
            actor,
            event: event.into(),
            order_id: None,
            jurisdiction: None,
            refs: BTreeMap::new(),
        }
    }

    /// Sets the order concerned.
    pub fn order(mut self, order_id: impl Into<String>) -> Self {
        self.order_id = Some(order_id.into());
        self
    }

    /// Sets the jurisdiction concerned.
    pub fn jurisdiction(mut self, jurisdiction: impl Into<String>) -> Self {
        self.jurisdiction = Some(jurisdiction.into());
        self
    }

    /// Adds a reference.
    pub fn reference(mut self, key: impl Into<String>, value: impl Into<RefValue>) -> Self {
        self.refs.insert(key.into(), value.into());
        self
    }

    /// The leaf this entry becomes at position `seq` and time `at`, validated.
    pub fn to_leaf(&self, seq: u64, at: DateTime<Utc>) -> Result<Leaf, EntryError> {
        let leaf = Leaf {
            v: LEAF_VERSION,
            seq,
            at: format_time(at),
            actor: self.actor.clone(),
            event: self.event.clone(),
            order: self.order_id.clone(),
            jurisdiction: self.jurisdiction.clone(),
            refs: self.refs.clone(),
        };
        leaf.validate()?;
        Ok(leaf)
    }
}

/// Why an entry or a leaf is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// A field breaks the format's rules.
    #[error("audit entry field `{field}`: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// The rule broken.
        reason: String,
    },
    /// The bytes are not a leaf.
    #[error("not a valid audit leaf: {0}")]
    Malformed(String),
    /// The bytes decode to a leaf, but are not its one canonical encoding.
    #[error("audit leaf is not in canonical form")]
    NotCanonical,
}

/// A decoded leaf; its [`Leaf::to_bytes`] are the canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leaf {
    /// Format version.
    pub v: u8,
    /// Position in the log.
    pub seq: u64,
    /// Time, RFC 3339 UTC with microseconds.
    pub at: String,
    /// Who acted.
    pub actor: Actor,
    /// What happened.
    pub event: String,
    /// Which order.
    pub order: Option<String>,
    /// Which jurisdiction.
    pub jurisdiction: Option<String>,
    /// References, sorted by key.
    pub refs: BTreeMap<String, RefValue>,
}

/// Formats a time the one way leaves carry it.
pub fn format_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn field(field: &'static str, reason: impl Into<String>) -> EntryError {
    EntryError::Field {
        field,
        reason: reason.into(),
    }
}

/// A plain identifier: printable ASCII without spaces or quotes, bounded.
fn check_id(name: &'static str, value: &str) -> Result<(), EntryError> {
    if value.is_empty() || value.len() > MAX_ID_LEN {
        return Err(field(name, format!("must be 1 to {MAX_ID_LEN} characters")));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        return Err(field(
            name,
            "may hold only printable ASCII without spaces, quotes or backslashes",
        ));
    }
    Ok(())
}

/// A dotted lowercase name: `order.received`, `audit.checkpoint_signed`.
fn check_event(value: &str) -> Result<(), EntryError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_ID_LEN
        && value.split('.').all(|part| {
            part.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(field(
            "event",
            "must be dotted lowercase words, e.g. order.received",
        ))
    }
}

impl Leaf {
    /// Checks every field against the format's rules.
    pub fn validate(&self) -> Result<(), EntryError> {
        if self.v != LEAF_VERSION {
            return Err(field("v", format!("unsupported version {}", self.v)));
        }
        if i64::try_from(self.seq).is_err() {
            return Err(field("seq", "out of range"));
        }
        let parsed = DateTime::parse_from_rfc3339(&self.at)
            .map_err(|e| field("at", format!("not an RFC 3339 time: {e}")))?;
        if format_time(parsed.with_timezone(&Utc)) != self.at {
            return Err(field(
                "at",
                "must be UTC with six fractional digits and a Z",
            ));
        }
        check_id("actor.id", &self.actor.id)?;
        check_event(&self.event)?;
        if let Some(order) = &self.order {
            check_id("order", order)?;
        }
        if let Some(j) = &self.jurisdiction {
            check_id("jurisdiction", j)?;
        }
        if self.refs.len() > MAX_REFS {
            return Err(field("refs", format!("at most {MAX_REFS} references")));
        }
        for (key, value) in &self.refs {
            if key.is_empty()
                || key.len() > 64
                || !key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(field(
                    "refs",
                    format!("key `{key}` must be lowercase letters, digits and _"),
                ));
            }
            if let RefValue::Text(t) = value
                && (t.len() > MAX_REF_LEN || t.chars().any(char::is_control))
            {
                return Err(field(
                    "refs",
                    format!("value of `{key}` must be at most {MAX_REF_LEN} printable characters"),
                ));
            }
        }
        Ok(())
    }

    /// The canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising a struct of strings, integers, booleans and a BTreeMap cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The canonical bytes as text.
    pub fn to_text(&self) -> String {
        String::from_utf8(self.to_bytes()).unwrap_or_default()
    }

    /// Decodes a leaf, insisting that the bytes are valid and canonical.
    pub fn parse(bytes: &[u8]) -> Result<Self, EntryError> {
        let leaf: Leaf =
            serde_json::from_slice(bytes).map_err(|e| EntryError::Malformed(e.to_string()))?;
        leaf.validate()?;
        if leaf.to_bytes() != bytes {
            return Err(EntryError::NotCanonical);
        }
        Ok(leaf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 3, 12, 6).unwrap()
            + chrono::Duration::microseconds(123_456)
    }

    #[test]
    fn the_leaf_bytes_are_exactly_as_documented() {
        let entry = NewEntry::new(Actor::new(ActorKind::Staff, "u_17"), "order.approved")
            .order("ord_9")
            .jurisdiction("fr")
            .reference("fields", 3u64)
            .reference("document_sha256", "9f86");
        let leaf = entry.to_leaf(42, at()).unwrap();
        assert_eq!(
            leaf.to_text(),
            r#"{"v":1,"seq":42,"at":"2026-11-28T03:12:06.123456Z","actor":{"kind":"staff","id":"u_17"},"event":"order.approved","order":"ord_9","jurisdiction":"fr","refs":{"document_sha256":"9f86","fields":3}}"#
        );
        assert_eq!(Leaf::parse(&leaf.to_bytes()).unwrap(), leaf);
    }

    #[test]
    fn absent_fields_are_explicit_nulls() {
        let leaf = NewEntry::new(Actor::system(), "audit.log_started")
            .to_leaf(0, at())
            .unwrap();
        assert_eq!(
            leaf.to_text(),
            r#"{"v":1,"seq":0,"at":"2026-11-28T03:12:06.123456Z","actor":{"kind":"system","id":"writ"},"event":"audit.log_started","order":null,"jurisdiction":null,"refs":{}}"#
        );
    }

    #[test]
    fn non_canonical_encodings_are_rejected() {
        let leaf = NewEntry::new(Actor::system(), "x.y")
            .to_leaf(1, at())
            .unwrap()
            .to_text();
        let spaced = leaf.replace(",\"seq\"", ", \"seq\"");
        assert_eq!(
            Leaf::parse(spaced.as_bytes()),
            Err(EntryError::NotCanonical)
        );
        let reordered = leaf.replace(r#"{"v":1,"seq":1,"#, r#"{"seq":1,"v":1,"#);
        assert_eq!(
            Leaf::parse(reordered.as_bytes()),
            Err(EntryError::NotCanonical)
        );
        let extra = leaf.replace(r#""refs":{}"#, r#""refs":{},"message":"hi""#);
        assert!(matches!(
            Leaf::parse(extra.as_bytes()),
            Err(EntryError::Malformed(_))
        ));
        let float = leaf.replace(r#""refs":{}"#, r#""refs":{"n":1.5}"#);
        assert!(Leaf::parse(float.as_bytes()).is_err());
        let local_time = leaf.replace("03:12:06.123456Z", "04:12:06.123456+01:00");
        assert!(matches!(
            Leaf::parse(local_time.as_bytes()),
            Err(EntryError::Field { field: "at", .. })
        ));
    }

    #[test]
    fn fields_are_validated() {
        let bad_event = NewEntry::new(Actor::system(), "Order Received").to_leaf(0, at());
        assert!(matches!(
            bad_event,
            Err(EntryError::Field { field: "event", .. })
        ));
        let bad_actor = NewEntry::new(Actor::new(ActorKind::Staff, "a b"), "x").to_leaf(0, at());
        assert!(matches!(
            bad_actor,
            Err(EntryError::Field {
                field: "actor.id",
                ..
            })
        ));
        let bad_ref = NewEntry::new(Actor::system(), "x")
            .reference("Phone", "+33")
            .to_leaf(0, at());
        assert!(matches!(
            bad_ref,
            Err(EntryError::Field { field: "refs", .. })
        ));
        let control = NewEntry::new(Actor::system(), "x")
            .reference("note", "a\nb")
            .to_leaf(0, at());
        assert!(matches!(
            control,
            Err(EntryError::Field { field: "refs", .. })
        ));
    }
}
