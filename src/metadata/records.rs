//! The records that imports and ingest accept, and their validation into rows for the store.
//!
//! A record has exactly the fields listed here. Any other field (`message`, `text`, `body`,
//! `content`, ...) rejects the record with an error naming the field; its value is never read
//! into anything. Error reasons name the field and the rule, never the value.

use serde::Deserialize;

use super::normalize;

/// Which kind of record a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// Accounts and their identifier history.
    Accounts,
    /// IP events.
    IpEvents,
}

impl RecordKind {
    /// The name used in commands, endpoints and audit entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accounts => "accounts",
            Self::IpEvents => "ip-events",
        }
    }

    /// The fields a record of this kind may have.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Self::Accounts => ACCOUNT_FIELDS,
            Self::IpEvents => IP_EVENT_FIELDS,
        }
    }
}

/// Fields of an accounts record.
pub const ACCOUNT_FIELDS: &[&str] = &[
    "external_id",
    "status",
    "created_at",
    "registration_ip",
    "phone_number",
    "username",
    "valid_from",
    "valid_to",
];
/// Fields of an IP-events record.
pub const IP_EVENT_FIELDS: &[&str] = &["external_id", "ip", "port", "at", "kind"];

/// Account statuses.
pub const STATUSES: &[&str] = &["active", "suspended", "deleted"];
/// IP event kinds.
pub const EVENT_KINDS: &[&str] = &[
    "registration",
    "login",
    "session_start",
    "session_end",
    "activity",
];

/// A JSON or CSV scalar, taken as text. Untagged so that a type mismatch never echoes a value.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// Text.
    Text(String),
    /// A number.
    Int(i64),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Self::Text(t) => t.clone(),
            Self::Int(i) => i.to_string(),
        }
    }
}

/// An accounts record as read (one identifier interval per record; repeat the account for more).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRecord {
    /// The provider's user id.
    pub external_id: Option<Scalar>,
    /// active, suspended or deleted.
    pub status: Option<Scalar>,
    /// Account creation time.
    pub created_at: Option<Scalar>,
    /// IP address at registration.
    pub registration_ip: Option<Scalar>,
    /// A phone number the account had during [valid_from, valid_to).
    pub phone_number: Option<Scalar>,
    /// A username the account had during [valid_from, valid_to).
    pub username: Option<Scalar>,
    /// Start of the identifiers' validity (default: created_at).
    pub valid_from: Option<Scalar>,
    /// End of their validity, exclusive (empty: still valid).
    pub valid_to: Option<Scalar>,
}

/// An IP-events record as read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpEventRecord {
    /// The provider's user id.
    pub external_id: Option<Scalar>,
    /// IPv4 or IPv6 address.
    pub ip: Option<Scalar>,
    /// Source port (empty when not recorded).
    pub port: Option<Scalar>,
    /// When, RFC 3339 with a zone.
    pub at: Option<Scalar>,
    /// Event kind.
    pub kind: Option<Scalar>,
}

/// Why a record was rejected: the field and the rule, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);

fn reject(field: &str, rule: &str) -> Rejection {
    Rejection(format!("field `{field}` {rule}"))
}

fn required(value: &Option<Scalar>, field: &str) -> Result<String, Rejection> {
    value
        .as_ref()
        .map(Scalar::text)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| reject(field, "is required"))
        .map(|t| t.trim().to_owned())
}

fn optional(value: &Option<Scalar>) -> Option<String> {
    value
        .as_ref()
        .map(Scalar::text)
        .filter(|t| !t.trim().is_empty())
}

fn external_id(value: &Option<Scalar>) -> Result<String, Rejection> {
    let id = required(value, "external_id")?;
    if id.len() > 128 || id.chars().any(char::is_control) {
        return Err(reject(
            "external_id",
            "must be 1 to 128 printable characters",
        ));
    }
    Ok(id)
}

fn one_of(value: &Option<Scalar>, field: &str, allowed: &[&str]) -> Result<String, Rejection> {
    let v = required(value, field)?.to_lowercase();
    if allowed.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(reject(
            field,
            &format!("must be one of {}", allowed.join(", ")),
        ))
    }
}

/// An identifier interval, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifierRow {
    /// phone or username.
    pub kind: &'static str,
    /// E.164 number or normalised username.
    pub value: String,
    /// Start, UTC microseconds.
    pub valid_from: i64,
    /// End (exclusive), UTC microseconds.
    pub valid_to: Option<i64>,
}

/// An account row, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    /// The provider's user id.
    pub external_id: String,
    /// Status.
    pub status: String,
    /// Creation, UTC microseconds.
    pub created_at: i64,
    /// Registration IP, canonical.
    pub registration_ip: Option<String>,
    /// Identifier intervals carried by this record.
    pub identifiers: Vec<IdentifierRow>,
}

impl AccountRecord {
    /// Validates and normalises the record.
    pub fn validate(&self) -> Result<AccountRow, Rejection> {
        let external_id = external_id(&self.external_id)?;
        let status = one_of(&self.status, "status", STATUSES)?;
        let created_at = normalize::time(&required(&self.created_at, "created_at")?)
            .map_err(|r| reject("created_at", r))?;
        let registration_ip = optional(&self.registration_ip)
            .map(|ip| {
                normalize::ip(&ip)
                    .map(|a| a.to_string())
                    .map_err(|r| reject("registration_ip", r))
            })
            .transpose()?;
        let valid_from = optional(&self.valid_from)
            .map(|t| normalize::time(&t).map_err(|r| reject("valid_from", r)))
            .transpose()?
            .unwrap_or(created_at);
        let valid_to = optional(&self.valid_to)
            .map(|t| normalize::time(&t).map_err(|r| reject("valid_to", r)))
            .transpose()?;
        if valid_to.is_some_and(|to| to <= valid_from) {
            return Err(reject("valid_to", "must be after valid_from"));
        }
        let mut identifiers = Vec::new();
        if let Some(p) = optional(&self.phone_number) {
            let value = normalize::phone(&p).map_err(|r| reject("phone_number", r))?;
            identifiers.push(IdentifierRow {
                kind: "phone",
                value,
                valid_from,
                valid_to,
            });
        }
        if let Some(u) = optional(&self.username) {
            let value = normalize::username(&u).map_err(|r| reject("username", r))?;
            identifiers.push(IdentifierRow {
                kind: "username",
                value,
                valid_from,
                valid_to,
            });
        }
        if identifiers.is_empty() && (self.valid_from.is_some() || self.valid_to.is_some()) {
            return Err(reject("valid_from", "goes with a phone_number or username"));
        }
        Ok(AccountRow {
            external_id,
            status,
            created_at,
            registration_ip,
            identifiers,
        })
    }
}

/// An IP event row, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpEventRow {
    /// The provider's user id.
    pub external_id: String,
    /// When, UTC microseconds.
    pub at: i64,
    /// Canonical address.
    pub ip: String,
    /// Port, 0 when not recorded.
    pub port: i32,
    /// Kind.
    pub kind: String,
}

impl IpEventRecord {
    /// Validates and normalises the record.
    pub fn validate(&self) -> Result<IpEventRow, Rejection> {
        let external_id = external_id(&self.external_id)?;
        let ip = normalize::ip(&required(&self.ip, "ip")?)
            .map_err(|r| reject("ip", r))?
            .to_string();
        let port = optional(&self.port)
            .map(|p| normalize::port(&p).map_err(|r| reject("port", r)))
            .transpose()?
            .map_or(0, i32::from);
        let at = normalize::time(&required(&self.at, "at")?).map_err(|r| reject("at", r))?;
        let kind = one_of(&self.kind, "kind", EVENT_KINDS)?;
        Ok(IpEventRow {
            external_id,
            at,
            ip,
            port,
            kind,
        })
    }
}

/// A CSV field by column name, as text (CSV has no types: `+33612345678` stays text, where a
/// type-guessing reader would turn it into a number and lose the `+`).
fn csv_field(
    headers: &csv::StringRecord,
    record: &csv::StringRecord,
    name: &str,
) -> Option<Scalar> {
    headers
        .iter()
        .position(|h| h == name)
        .and_then(|i| record.get(i))
        .filter(|v| !v.is_empty())
        .map(|v| Scalar::Text(v.to_owned()))
}

impl AccountRecord {
    /// The record in a CSV row whose header names only known fields.
    pub fn from_csv(headers: &csv::StringRecord, record: &csv::StringRecord) -> Self {
        let f = |name| csv_field(headers, record, name);
        Self {
            external_id: f("external_id"),
            status: f("status"),
            created_at: f("created_at"),
            registration_ip: f("registration_ip"),
            phone_number: f("phone_number"),
            username: f("username"),
            valid_from: f("valid_from"),
            valid_to: f("valid_to"),
        }
    }
}

impl IpEventRecord {
    /// The record in a CSV row whose header names only known fields.
    pub fn from_csv(headers: &csv::StringRecord, record: &csv::StringRecord) -> Self {
        let f = |name| csv_field(headers, record, name);
        Self {
            external_id: f("external_id"),
            ip: f("ip"),
            port: f("port"),
            at: f("at"),
            kind: f("kind"),
        }
    }
}

/// Turns a serde error on a record into a rejection that never carries a value: an unknown
/// field is named; anything else is reported as malformed with its position only.
pub fn parse_rejection(kind: RecordKind, message: &str) -> Rejection {
    if let Some(rest) = message.split("unknown field `").nth(1)
        && let Some(field) = rest.split('`').next()
    {
        return Rejection(format!(
            "field `{field}` is not a field of {} records (allowed: {}); the record was not imported",
            kind.as_str(),
            kind.fields().join(", ")
        ));
    }
    if message.contains("did not match any variant") {
        return Rejection("a field holds a value that is neither text nor a whole number".into());
    }
    // serde_json's syntax errors carry only a position ("expected value at line 1 column 9").
    let position = message
        .rsplit(" at line ")
        .next()
        .filter(|_| message.contains(" at line "));
    Rejection(match position {
        Some(pos) => format!("not a well-formed record (syntax error at line {pos})"),
        None => "not a well-formed record".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(json: &str) -> Result<AccountRow, Rejection> {
        serde_json::from_str::<AccountRecord>(json)
            .map_err(|e| parse_rejection(RecordKind::Accounts, &e.to_string()))?
            .validate()
    }

    fn event(json: &str) -> Result<IpEventRow, Rejection> {
        serde_json::from_str::<IpEventRecord>(json)
            .map_err(|e| parse_rejection(RecordKind::IpEvents, &e.to_string()))?
            .validate()
    }

    #[test]
    fn a_full_account_record_is_normalised() {
        let row = account(r#"{"external_id":"u1","status":"Active","created_at":"2025-01-01T00:00:00Z","registration_ip":"::ffff:192.0.2.1","phone_number":"+33 6 12 34 56 78","username":"Alice","valid_from":"2025-02-01T00:00:00+01:00","valid_to":"2025-06-01T00:00:00Z"}"#).unwrap();
        assert_eq!(row.status, "active");
        assert_eq!(row.registration_ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(row.identifiers.len(), 2);
        assert_eq!(row.identifiers[0].value, "+33612345678");
        assert_eq!(row.identifiers[1].value, "alice");
        assert!(row.identifiers[0].valid_to.unwrap() > row.identifiers[0].valid_from);
    }

    #[test]
    fn content_fields_are_refused_by_name_without_their_value() {
        for field in ["message", "text", "body", "content"] {
            let json = format!(
                r#"{{"external_id":"u1","ip":"192.0.2.1","at":"2026-01-01T00:00:00Z","kind":"login","{field}":"meet me at 5"}}"#
            );
            let err = event(&json).unwrap_err().to_string();
            assert!(err.contains(&format!("`{field}`")), "{err}");
            assert!(!err.contains("meet me"), "the value never appears: {err}");
        }
    }

    #[test]
    fn each_bad_field_is_named_and_its_value_not_shown() {
        let cases = [
            (
                r#"{"ip":"192.0.2.1","at":"2026-01-01T00:00:00Z","kind":"login"}"#,
                "external_id",
            ),
            (
                r#"{"external_id":"u1","ip":"999.0.2.1","at":"2026-01-01T00:00:00Z","kind":"login"}"#,
                "ip",
            ),
            (
                r#"{"external_id":"u1","ip":"192.0.2.1","port":"70000","at":"2026-01-01T00:00:00Z","kind":"login"}"#,
                "port",
            ),
            (
                r#"{"external_id":"u1","ip":"192.0.2.1","at":"2026-01-01 00:00:00","kind":"login"}"#,
                "at",
            ),
            (
                r#"{"external_id":"u1","ip":"192.0.2.1","at":"2026-01-01T00:00:00Z","kind":"logout"}"#,
                "kind",
            ),
            (
                r#"{"external_id":"u1","ip":"192.0.2.1","at":"2026-01-01T00:00:00Z","kind":["login"]}"#,
                "neither text",
            ),
        ];
        for (json, needle) in cases {
            let err = event(json).unwrap_err().to_string();
            assert!(err.contains(needle), "{json}: {err}");
            assert!(
                !err.contains("999.0.2.1") && !err.contains("70000"),
                "{err}"
            );
        }
        let err = account(r#"{"external_id":"u1","status":"active","created_at":"2025-01-01T00:00:00Z","phone_number":"+33 6 12"}"#).unwrap_err();
        assert!(
            err.0.contains("phone_number") && !err.0.contains("+33"),
            "{err}"
        );
        let err = account(r#"{"external_id":"u1","status":"active","created_at":"2025-01-01T00:00:00Z","username":"a","valid_from":"2025-03-01T00:00:00Z","valid_to":"2025-02-01T00:00:00Z"}"#).unwrap_err();
        assert!(err.0.contains("valid_to"), "{err}");
        let err = event("{\"external_id\":").unwrap_err();
        assert!(err.0.contains("well-formed"), "{err}");
    }

    #[test]
    fn ports_are_optional_and_ipv6_is_canonical() {
        let row = event(r#"{"external_id":"u1","ip":"2001:DB8::0:1","at":"2026-01-01T00:00:00Z","kind":"login"}"#).unwrap();
        assert_eq!((row.ip.as_str(), row.port), ("2001:db8::1", 0));
        let row = event(r#"{"external_id":"u1","ip":"203.0.113.7","port":51234,"at":"2026-01-01T00:00:00Z","kind":"session_start"}"#).unwrap();
        assert_eq!(row.port, 51234);
    }
}
