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
        if !is_plain_canonical_time(&self.at) {
            let parsed = DateTime::parse_from_rfc3339(&self.at)
                .map_err(|e| field("at", format!("not an RFC 3339 time: {e}")))?;
            if format_time(parsed.with_timezone(&Utc)) != self.at {
                return Err(field(
                    "at",
                    "must be UTC with six fractional digits and a Z",
                ));
            }
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
        // Nearly every leaf is read by the fast path; anything else (and every error, so that
        // its message is the general path's) goes through serde and a re-encoding.
        if let Some(leaf) = Self::scan(bytes)
            && leaf.validate().is_ok()
        {
            return Ok(leaf);
        }
        Self::parse_general(bytes)
    }

    /// [`Self::parse`] for any bytes: serde, then a re-encoding compared with them.
    fn parse_general(bytes: &[u8]) -> Result<Self, EntryError> {
        let leaf: Leaf =
            serde_json::from_slice(bytes).map_err(|e| EntryError::Malformed(e.to_string()))?;
        leaf.validate()?;
        if leaf.to_bytes() != bytes {
            return Err(EntryError::NotCanonical);
        }
        Ok(leaf)
    }
}

/// Whether `at` is a time in the one form [`format_time`] writes, `YYYY-MM-DDTHH:MM:SS.ffffffZ`,
/// naming a real day and a time without a leap second: then parsing and formatting it again
/// gives the same text, so [`Leaf::validate`] need not do either. `false` leaves the decision
/// (leap seconds, errors) to that round trip.
fn is_plain_canonical_time(at: &str) -> bool {
    let b = at.as_bytes();
    if b.len() != 27 {
        return false;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let separators = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (26, b'Z'),
    ];
    if separators.iter().any(|&(i, c)| b[i] != c) {
        return false;
    }
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second), Some(_)) = (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19),
        digits(20..26),
    ) else {
        return false;
    };
    // Years 1 to 9999 print as four digits; chrono's own range and sign rules stay with the
    // general path.
    (1..=9999).contains(&year)
        && i32::try_from(year)
            .ok()
            .and_then(|y| chrono::NaiveDate::from_ymd_opt(y, month, day))
            .is_some()
        && hour < 24
        && minute < 60
        && second < 60
}

/// Reads canonical JSON one field after the other, in the fixed order Writ writes it (see
/// [`Leaf::scan`]; the offline verifier reads export lines with it too). Each method consumes
/// what it read, or returns `None`.
pub(super) struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `bytes`.
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    /// What is left to read.
    pub(super) fn rest(&self) -> &'a [u8] {
        &self.bytes[self.at..]
    }

    /// Consumes `literal`, if it comes next.
    pub(super) fn literal(&mut self, literal: &[u8]) -> Option<()> {
        self.bytes[self.at..].starts_with(literal).then(|| {
            self.at += literal.len();
        })
    }

    /// An unsigned integer as serde_json writes it: no sign, no leading zero, no overflow.
    pub(super) fn uint(&mut self) -> Option<u64> {
        let rest = &self.bytes[self.at..];
        let len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if len == 0 || (len > 1 && rest[0] == b'0') {
            return None;
        }
        let value = rest[..len].iter().try_fold(0u64, |acc, &d| {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })?;
        self.at += len;
        Some(value)
    }

    /// A string whose JSON form needs no escape: none of `"`, `\\` or a control character
    /// below U+0020 (the only characters serde_json escapes), so its bytes are its encoding.
    pub(super) fn plain_string(&mut self) -> Option<&'a str> {
        self.literal(b"\"")?;
        let rest = &self.bytes[self.at..];
        let len = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[len] != b'"' {
            return None;
        }
        let text = std::str::from_utf8(&rest[..len]).ok()?;
        self.at += len + 1;
        Some(text)
    }

    /// `null` or a plain string.
    fn optional_string(&mut self) -> Option<Option<String>> {
        if self.literal(b"null").is_some() {
            return Some(None);
        }
        self.plain_string().map(|s| Some(s.to_owned()))
    }

    /// A value of `refs`, as the untagged [`RefValue`] reads it.
    fn ref_value(&mut self) -> Option<RefValue> {
        match self.bytes.get(self.at)? {
            b't' => self.literal(b"true").map(|()| RefValue::Bool(true)),
            b'f' => self.literal(b"false").map(|()| RefValue::Bool(false)),
            b'"' => self.plain_string().map(|s| RefValue::Text(s.to_owned())),
            _ => self.uint().map(RefValue::Count),
        }
    }
}

impl Leaf {
    /// The leaf whose canonical bytes are `bytes`, read without serde, when `bytes` are exactly
    /// what [`Leaf::to_bytes`] writes for a leaf whose strings need no escape; `None` otherwise,
    /// whether or not the bytes are a leaf. The fields are not validated.
    ///
    /// Sound by construction: every key in the struct's order, each once; numbers without sign,
    /// fraction or leading zero; `refs` keys strictly increasing (a `BTreeMap`'s order, so no
    /// duplicate either); and nothing after the closing brace. serde_json reads such bytes into
    /// the same leaf and writes that leaf back as the same bytes.
    fn scan(bytes: &[u8]) -> Option<Leaf> {
        let mut s = Scanner::new(bytes);
        s.literal(b"{\"v\":")?;
        let v = u8::try_from(s.uint()?).ok()?;
        s.literal(b",\"seq\":")?;
        let seq = s.uint()?;
        s.literal(b",\"at\":")?;
        let at = s.plain_string()?.to_owned();
        s.literal(b",\"actor\":{\"kind\":")?;
        let kind = match s.plain_string()? {
            "staff" => ActorKind::Staff,
            "authority" => ActorKind::Authority,
            "auditor" => ActorKind::Auditor,
            "feeder" => ActorKind::Feeder,
            "system" => ActorKind::System,
            _ => return None,
        };
        s.literal(b",\"id\":")?;
        let id = s.plain_string()?.to_owned();
        s.literal(b"},\"event\":")?;
        let event = s.plain_string()?.to_owned();
        s.literal(b",\"order\":")?;
        let order = s.optional_string()?;
        s.literal(b",\"jurisdiction\":")?;
        let jurisdiction = s.optional_string()?;
        s.literal(b",\"refs\":{")?;
        let mut refs = BTreeMap::new();
        if s.literal(b"}").is_none() {
            let mut last: Option<&str> = None;
            loop {
                let key = s.plain_string()?;
                if last.is_some_and(|l| l >= key) {
                    return None;
                }
                s.literal(b":")?;
                let value = s.ref_value()?;
                refs.insert(key.to_owned(), value);
                last = Some(key);
                if s.literal(b"}").is_some() {
                    break;
                }
                s.literal(b",")?;
            }
        }
        s.literal(b"}")?;
        (s.at == bytes.len()).then_some(Leaf {
            v,
            seq,
            at,
            actor: Actor { kind, id },
            event,
            order,
            jurisdiction,
            refs,
        })
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

    mod fast_path {
        use super::super::*;
        use proptest::prelude::*;

        /// Any leaf, valid or not, with strings that often need escapes or break the rules.
        fn any_leaf() -> impl Strategy<Value = Leaf> {
            let text = prop_oneof![
                "[a-z0-9_.]{0,10}",
                "[ -~]{0,10}",
                "[\\x00-\\x7f\u{80}-\u{a0}\u{e9}\u{2028}]{0,6}",
            ];
            let at = prop_oneof![
                (
                    -1_000_000_000_000i64..300_000_000_000i64,
                    0u32..1_000_000_000
                )
                    .prop_map(|(s, ns)| DateTime::from_timestamp(s, ns)
                        .map(format_time)
                        .unwrap_or_default()),
                "[0-9:TZ.+-]{0,30}",
            ];
            let value = prop_oneof![
                any::<bool>().prop_map(RefValue::Bool),
                any::<u64>().prop_map(RefValue::Count),
                text.clone().prop_map(RefValue::Text),
            ];
            let kind = prop_oneof![
                Just(ActorKind::Staff),
                Just(ActorKind::Authority),
                Just(ActorKind::Auditor),
                Just(ActorKind::Feeder),
                Just(ActorKind::System),
            ];
            (
                prop_oneof![Just(1u8), any::<u8>()],
                prop_oneof![0u64..1000, any::<u64>()],
                at,
                kind,
                text.clone(),
                text.clone(),
                proptest::option::of(text.clone()),
                proptest::option::of(text.clone()),
                proptest::collection::btree_map("[a-z0-9_A-Z]{0,6}", value, 0..4),
            )
                .prop_map(
                    |(v, seq, at, kind, id, event, order, jurisdiction, refs)| Leaf {
                        v,
                        seq,
                        at,
                        actor: Actor { kind, id },
                        event,
                        order,
                        jurisdiction,
                        refs,
                    },
                )
        }

        /// Byte edits: (position, 0 replace / 1 insert / 2 delete, byte).
        fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
            let byte = prop_oneof![
                prop::sample::select(b"\"\\{}[],:0129 azZT.-n\x00\x7f\xc3\xff".to_vec()),
                any::<u8>(),
            ];
            proptest::collection::vec((any::<usize>(), 0u8..3, byte), 0..3)
        }

        fn edit(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
            for &(at, op, b) in edits {
                let at = at % (bytes.len() + 1);
                match op {
                    0 if at < bytes.len() => bytes[at] = b,
                    1 => bytes.insert(at, b),
                    _ if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => {}
                }
            }
            bytes
        }

        fn plain(text: &str) -> bool {
            !text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20)
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

            /// The fast path accepts only what the general path accepts, as the same leaf; and
            /// it is the path taken for every valid leaf whose strings need no escape.
            #[test]
            fn the_fast_path_agrees_with_serde(leaf in any_leaf(), edits in edits()) {
                let canonical = leaf.to_bytes();
                let bytes = edit(canonical.clone(), &edits);
                let general = Leaf::parse_general(&bytes);
                let fast = Leaf::scan(&bytes).filter(|l| l.validate().is_ok());
                if let Some(fast) = &fast {
                    prop_assert_eq!(general.as_ref(), Ok(fast));
                }
                prop_assert_eq!(Leaf::parse(&bytes), general.clone());
                let strings_plain = [&leaf.at, &leaf.actor.id, &leaf.event]
                    .into_iter()
                    .chain(leaf.order.as_ref())
                    .chain(leaf.jurisdiction.as_ref())
                    .chain(leaf.refs.keys())
                    .chain(leaf.refs.values().filter_map(|v| match v {
                        RefValue::Text(t) => Some(t),
                        _ => None,
                    }))
                    .all(|t| plain(t));
                if bytes == canonical && strings_plain && general.is_ok() {
                    prop_assert!(fast.is_some(), "the fast path refused {:?}", String::from_utf8_lossy(&bytes));
                }
            }

            /// A time the quick check accepts survives chrono's parse and format unchanged, and
            /// every time of years 1 to 9999 as leaves carry it passes the quick check.
            #[test]
            fn the_quick_time_check_agrees_with_chrono(
                y in 0u32..10_001, mo in 0u32..14, d in 0u32..33, h in 0u32..25,
                mi in 0u32..61, s in 0u32..62, us in 0u32..1_000_000,
                edits in edits(),
                secs in -62_135_596_800i64..253_402_300_800i64, ns in 0u32..1_000_000_000,
            ) {
                let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z");
                for text in [text.clone(), String::from_utf8_lossy(&edit(text.into_bytes(), &edits)).into_owned()] {
                    if is_plain_canonical_time(&text) {
                        let parsed = DateTime::parse_from_rfc3339(&text).map(|t| format_time(t.with_timezone(&Utc)));
                        prop_assert_eq!(parsed, Ok(text));
                    }
                }
                let canonical = format_time(DateTime::from_timestamp(secs, ns).unwrap());
                prop_assert!(is_plain_canonical_time(&canonical), "{}", canonical);
            }
        }
    }
}
