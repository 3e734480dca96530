//! The field catalogue: every releasable field of Writ's metadata store.
//!
//! The catalogue lives in code (a const table) rather than in a file: the set of fields is a
//! property of the metadata store's schema, which changes only with a code change, while what
//! each legal instrument reaches is policy and lives in `config/policies/*.toml`.
//!
//! Each field has a *default* category (Writ's own taxonomy). An instrument's policy may put a
//! field in another category (e.g. the UK IPA treats the registration IP as events data); the
//! default only says where the field appears when a policy does not say otherwise.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A data category an order can request (Writ's own taxonomy, see DOMAIN.md).
///
/// `subscriber`: account facts (ids, phone number, creation time, status, registration IP);
/// `identification`: the one access (IP, port, time) that identifies who was behind an IP:port
/// at a moment; `ip_history`: the log of a user's IP accesses over a period; `content`: message
/// content, which Writ does not hold (an order asking for it is answered "not held").
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Account facts: ids, phone number, creation time, status, registration IP.
    Subscriber,
    /// The one access (IP, port, time) that identifies who was behind an IP:port at a moment.
    Identification,
    /// The log of a user's IP accesses over a period.
    IpHistory,
    /// Message content. Writ holds none: the category exists so that orders asking for it can be
    /// answered truthfully ("not held").
    Content,
}

impl Category {
    /// All categories, in the order used for display.
    pub const ALL: [Category; 4] = [
        Category::Subscriber,
        Category::Identification,
        Category::IpHistory,
        Category::Content,
    ];

    /// The identifier used in JSON and TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Subscriber => "subscriber",
            Category::Identification => "identification",
            Category::IpHistory => "ip_history",
            Category::Content => "content",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A releasable field of the metadata store.
///
/// `user_id`, `username`, `phone_number`, `account_created_at`, `account_status` and
/// `registration_ip` describe the account; `access_ip`, `access_port` and `access_time` the one
/// access an identification request asks about; `ip_event_ip`, `ip_event_port`,
/// `ip_event_time` and `ip_event_kind` each entry of the account's IP log.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FieldId {
    /// Writ's internal account id.
    UserId,
    /// The account's user name.
    Username,
    /// The phone number the account is registered with.
    PhoneNumber,
    /// When the account was created.
    AccountCreatedAt,
    /// Whether the account is active, suspended or deleted.
    AccountStatus,
    /// The IP address the account was registered from.
    RegistrationIp,
    /// IP address of the single access asked about.
    AccessIp,
    /// Source port of the single access asked about.
    AccessPort,
    /// Time of the single access asked about.
    AccessTime,
    /// IP address of one entry in the account's IP log.
    IpEventIp,
    /// Source port of one entry in the account's IP log.
    IpEventPort,
    /// Time of one entry in the account's IP log.
    IpEventTime,
    /// Kind of one entry in the account's IP log (login, session start, ...).
    IpEventKind,
}

impl FieldId {
    /// The identifier used in JSON and TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldId::UserId => "user_id",
            FieldId::Username => "username",
            FieldId::PhoneNumber => "phone_number",
            FieldId::AccountCreatedAt => "account_created_at",
            FieldId::AccountStatus => "account_status",
            FieldId::RegistrationIp => "registration_ip",
            FieldId::AccessIp => "access_ip",
            FieldId::AccessPort => "access_port",
            FieldId::AccessTime => "access_time",
            FieldId::IpEventIp => "ip_event_ip",
            FieldId::IpEventPort => "ip_event_port",
            FieldId::IpEventTime => "ip_event_time",
            FieldId::IpEventKind => "ip_event_kind",
        }
    }

    /// The field's default category in Writ's taxonomy.
    pub fn default_category(self) -> Category {
        // The table is the single source; a field missing from it would be a compile-time
        // omission caught by the catalogue tests, so Subscriber is never actually reached here.
        CATALOGUE
            .iter()
            .find(|spec| spec.id == self)
            .map_or(Category::Subscriber, |spec| spec.category)
    }
}

impl fmt::Display for FieldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// The field.
    pub id: FieldId,
    /// Its default category.
    pub category: Category,
    /// What the field holds, in plain words (used in explanations).
    pub description: &'static str,
}

/// Every releasable field of the metadata store, with its default category.
/// `content` has no fields: Writ holds no message content.
#[rustfmt::skip]
pub const CATALOGUE: &[FieldSpec] = &[
    FieldSpec { id: FieldId::UserId, category: Category::Subscriber, description: "internal account id" },
    FieldSpec { id: FieldId::Username, category: Category::Subscriber, description: "user name" },
    FieldSpec { id: FieldId::PhoneNumber, category: Category::Subscriber, description: "registered phone number" },
    FieldSpec { id: FieldId::AccountCreatedAt, category: Category::Subscriber, description: "account creation time" },
    FieldSpec { id: FieldId::AccountStatus, category: Category::Subscriber, description: "account status" },
    FieldSpec { id: FieldId::RegistrationIp, category: Category::Subscriber, description: "IP address used at registration" },
    FieldSpec { id: FieldId::AccessIp, category: Category::Identification, description: "IP address of the access asked about" },
    FieldSpec { id: FieldId::AccessPort, category: Category::Identification, description: "source port of the access asked about" },
    FieldSpec { id: FieldId::AccessTime, category: Category::Identification, description: "time of the access asked about" },
    FieldSpec { id: FieldId::IpEventIp, category: Category::IpHistory, description: "IP address of each logged access" },
    FieldSpec { id: FieldId::IpEventPort, category: Category::IpHistory, description: "source port of each logged access" },
    FieldSpec { id: FieldId::IpEventTime, category: Category::IpHistory, description: "time of each logged access" },
    FieldSpec { id: FieldId::IpEventKind, category: Category::IpHistory, description: "kind of each logged access" },
];

/// The fields whose default category is `category`, in catalogue order.
pub fn default_fields(category: Category) -> impl Iterator<Item = FieldId> {
    CATALOGUE
        .iter()
        .filter(move |spec| spec.category == category)
        .map(|spec| spec.id)
}

/// The plain-words description of a field.
pub fn describe(field: FieldId) -> &'static str {
    CATALOGUE
        .iter()
        .find(|spec| spec.id == field)
        .map_or("", |spec| spec.description)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_catalogued_once_and_content_has_none() {
        let all = [
            FieldId::UserId,
            FieldId::Username,
            FieldId::PhoneNumber,
            FieldId::AccountCreatedAt,
            FieldId::AccountStatus,
            FieldId::RegistrationIp,
            FieldId::AccessIp,
            FieldId::AccessPort,
            FieldId::AccessTime,
            FieldId::IpEventIp,
            FieldId::IpEventPort,
            FieldId::IpEventTime,
            FieldId::IpEventKind,
        ];
        assert_eq!(CATALOGUE.len(), all.len());
        for field in all {
            assert_eq!(
                CATALOGUE.iter().filter(|s| s.id == field).count(),
                1,
                "{field}"
            );
            // The serde name and as_str agree, so TOML, JSON and explanations use one spelling.
            assert_eq!(serde_json::to_value(field).unwrap(), field.as_str());
        }
        assert_eq!(default_fields(Category::Content).count(), 0);
        assert_eq!(default_fields(Category::Subscriber).count(), 6);
        assert_eq!(default_fields(Category::Identification).count(), 3);
        assert_eq!(default_fields(Category::IpHistory).count(), 4);
    }
}
