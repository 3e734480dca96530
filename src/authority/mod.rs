//! The authority registry: the public authorities that may send orders, their registered kind
//! and country, their contact addresses, and the public keys their requests are signed with.
//!
//! The engine takes an order's issuer kind and country from here ([`registry_facts`]), never
//! from the order body. Every change is recorded in the audit log in the same transaction.

pub mod client;
pub mod listed;
pub mod pins;
pub mod spend;
pub mod throttle;
pub mod token;
pub mod validation;

use chrono::Utc;
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{self, Actor, AuditError, NewEntry};
use crate::db::schema::{authorities, authority_etsi, authority_keys};
use crate::db::{DbConn, DbError, write_tx};
use crate::policy::{IssuerKind, RegistryFacts};

/// Errors of the registry. Messages name the field or record at fault.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// No such authority or key.
    #[error("{0}")]
    NotFound(String),
    /// The id or key id is taken.
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The audit log refused the entry.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<diesel::result::Error> for RegistryError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

/// A signing algorithm an authority key is pinned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum KeyAlgorithm {
    /// Ed25519 (JWT `EdDSA`).
    EdDSA,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
}

impl KeyAlgorithm {
    /// Parses the JWT algorithm name.
    pub fn parse(name: &str) -> Result<Self, RegistryError> {
        match name {
            "EdDSA" => Ok(Self::EdDSA),
            "ES256" => Ok(Self::ES256),
            "RS256" => Ok(Self::RS256),
            _ => Err(RegistryError::Invalid(format!(
                "algorithm `{name}` is not one of EdDSA, ES256, RS256"
            ))),
        }
    }

    /// The JWT algorithm name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }

    /// Checks that `pem` is a public key of this algorithm.
    pub fn check_public_key(self, pem: &str) -> Result<(), RegistryError> {
        if !pem.trim_start().starts_with("-----BEGIN PUBLIC KEY-----") {
            return Err(RegistryError::Invalid(
                "the public key must be a PEM `PUBLIC KEY` (SubjectPublicKeyInfo)".into(),
            ));
        }
        let parsed = match self {
            Self::EdDSA => jsonwebtoken::DecodingKey::from_ed_pem(pem.as_bytes()),
            Self::ES256 => jsonwebtoken::DecodingKey::from_ec_pem(pem.as_bytes()),
            Self::RS256 => jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()),
        };
        parsed.map(|_| ()).map_err(|e| {
            RegistryError::Invalid(format!(
                "the public key is not a valid {} key: {e}",
                self.as_str()
            ))
        })
    }
}

/// A new authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuthority {
    /// Registry id: lowercase letters, digits, `-`, `_`, `.`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Country, ISO 3166-1 alpha-2.
    pub country: String,
    /// Registered kind.
    pub kind: IssuerKind,
    /// Contact e-mail addresses (where notices go; never an address from an order).
    pub contacts: Vec<String>,
}

/// An authority as registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable)]
#[diesel(table_name = authorities)]
pub struct Authority {
    /// Registry id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Country.
    pub country: String,
    /// Registered kind.
    pub kind: String,
    /// Comma-separated contacts.
    pub contacts: String,
    /// active or suspended.
    pub status: String,
    /// When registered.
    pub created_at: i64,
}

/// A registered key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable)]
#[diesel(table_name = authority_keys)]
pub struct AuthorityKey {
    /// Key id.
    pub kid: String,
    /// The authority.
    pub authority_id: String,
    /// Pinned algorithm.
    pub algorithm: String,
    /// Public key PEM.
    pub public_key_pem: String,
    /// When added.
    pub created_at: i64,
    /// When revoked.
    pub revoked_at: Option<i64>,
}

fn check_slug(what: &str, value: &str, max: usize) -> Result<(), RegistryError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
        });
    if ok {
        Ok(())
    } else {
        Err(RegistryError::Invalid(format!(
            "{what} must be 1 to {max} lowercase letters, digits, - _ ."
        )))
    }
}

fn check_email(address: &str) -> Result<(), RegistryError> {
    // The mailer's own check: a contact the registry accepts is one Writ can write to.
    if crate::mail::is_sendable_address(address) {
        Ok(())
    } else {
        Err(RegistryError::Invalid(format!(
            "contact `{address}` is not an e-mail address"
        )))
    }
}

fn record(
    conn: &mut DbConn,
    actor: &Actor,
    event: crate::audit::Event,
    authority: &str,
    extra: &[(&str, &str)],
) -> Result<(), RegistryError> {
    let mut entry = NewEntry::new(actor.clone(), event).reference("authority", authority);
    for (k, v) in extra {
        entry = entry.reference(*k, *v);
    }
    audit::append(conn, &entry, Utc::now())?;
    Ok(())
}

/// Registers an authority.
pub fn add(conn: &mut DbConn, actor: &Actor, new: &NewAuthority) -> Result<(), RegistryError> {
    check_slug("the authority id", &new.id, 64)?;
    if new.name.trim().is_empty() || new.name.len() > 200 {
        return Err(RegistryError::Invalid(
            "the name must be 1 to 200 characters".into(),
        ));
    }
    if new.country.len() != 2 || !new.country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(RegistryError::Invalid(format!(
            "country `{}` is not an ISO 3166-1 alpha-2 code such as FR",
            new.country
        )));
    }
    if new.contacts.is_empty() {
        return Err(RegistryError::Invalid(
            "at least one contact e-mail address is required".into(),
        ));
    }
    for c in &new.contacts {
        check_email(c)?;
    }
    write_tx(conn, |c| {
        let taken: i64 = authorities::table
            .filter(authorities::id.eq(&new.id))
            .count()
            .get_result(c)?;
        if taken > 0 {
            return Err(RegistryError::Conflict(format!(
                "authority `{}` is already registered",
                new.id
            )));
        }
        diesel::insert_into(authorities::table)
            .values((
                authorities::id.eq(&new.id),
                authorities::name.eq(new.name.trim()),
                authorities::country.eq(&new.country),
                authorities::kind.eq(new.kind.to_string()),
                authorities::contacts.eq(new.contacts.join(",")),
                authorities::status.eq("active"),
                authorities::created_at.eq(Utc::now().timestamp_micros()),
            ))
            .execute(c)?;
        record(
            c,
            actor,
            audit::Event::AuthorityAdded,
            &new.id,
            &[("kind", &new.kind.to_string()), ("country", &new.country)],
        )
    })
}

/// Adds a public key to an authority, pinned to `algorithm`.
pub fn add_key(
    conn: &mut DbConn,
    actor: &Actor,
    authority_id: &str,
    kid: &str,
    algorithm: KeyAlgorithm,
    public_key_pem: &str,
) -> Result<(), RegistryError> {
    check_slug("the key id", kid, 128)?;
    algorithm.check_public_key(public_key_pem)?;
    write_tx(conn, |c| {
        let exists: i64 = authorities::table
            .filter(authorities::id.eq(authority_id))
            .count()
            .get_result(c)?;
        if exists == 0 {
            return Err(RegistryError::NotFound(format!(
                "no authority `{authority_id}`"
            )));
        }
        let taken: i64 = authority_keys::table
            .filter(authority_keys::kid.eq(kid))
            .count()
            .get_result(c)?;
        if taken > 0 {
            return Err(RegistryError::Conflict(format!(
                "key id `{kid}` is already registered (key ids are never reused)"
            )));
        }
        diesel::insert_into(authority_keys::table)
            .values((
                authority_keys::kid.eq(kid),
                authority_keys::authority_id.eq(authority_id),
                authority_keys::algorithm.eq(algorithm.as_str()),
                authority_keys::public_key_pem.eq(public_key_pem.trim()),
                authority_keys::created_at.eq(Utc::now().timestamp_micros()),
            ))
            .execute(c)?;
        record(
            c,
            actor,
            audit::Event::AuthorityKeyAdded,
            authority_id,
            &[("kid", kid), ("algorithm", algorithm.as_str())],
        )
    })
}

/// Revokes a key: requests signed with it are refused from now on.
pub fn revoke_key(conn: &mut DbConn, actor: &Actor, kid: &str) -> Result<(), RegistryError> {
    write_tx(conn, |c| {
        let key: Option<(String, Option<i64>)> = authority_keys::table
            .filter(authority_keys::kid.eq(kid))
            .select((authority_keys::authority_id, authority_keys::revoked_at))
            .first(c)
            .optional()?;
        let Some((authority_id, revoked)) = key else {
            return Err(RegistryError::NotFound(format!("no key `{kid}`")));
        };
        if revoked.is_some() {
            return Err(RegistryError::Conflict(format!(
                "key `{kid}` is already revoked"
            )));
        }
        diesel::update(authority_keys::table.find(kid))
            .set(authority_keys::revoked_at.eq(Some(Utc::now().timestamp_micros())))
            .execute(c)?;
        record(
            c,
            actor,
            audit::Event::AuthorityKeyRevoked,
            &authority_id,
            &[("kid", kid)],
        )
    })
}

/// Suspends (`active = false`) or reactivates an authority.
pub fn set_active(
    conn: &mut DbConn,
    actor: &Actor,
    authority_id: &str,
    active: bool,
) -> Result<(), RegistryError> {
    let status = if active { "active" } else { "suspended" };
    write_tx(conn, |c| {
        let n = diesel::update(authorities::table.find(authority_id))
            .set(authorities::status.eq(status))
            .execute(c)?;
        if n == 0 {
            return Err(RegistryError::NotFound(format!(
                "no authority `{authority_id}`"
            )));
        }
        record(
            c,
            actor,
            if active {
                audit::Event::AuthorityActivated
            } else {
                audit::Event::AuthoritySuspended
            },
            authority_id,
            &[],
        )
    })
}

/// Every authority with its keys.
pub fn list(conn: &mut DbConn) -> Result<Vec<(Authority, Vec<AuthorityKey>)>, RegistryError> {
    let all: Vec<Authority> = authorities::table
        .order(authorities::id)
        .select(Authority::as_select())
        .load(conn)?;
    let keys: Vec<AuthorityKey> = authority_keys::table
        .order(authority_keys::kid)
        .select(AuthorityKey::as_select())
        .load(conn)?;
    Ok(all
        .into_iter()
        .map(|a| {
            let mine = keys
                .iter()
                .filter(|k| k.authority_id == a.id)
                .cloned()
                .collect();
            (a, mine)
        })
        .collect())
}

/// An authority's identity in ETSI TS 103 120 (HI-1) exchanges, and where Writ delivers to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = authority_etsi)]
pub struct EtsiIdentity {
    /// The authority.
    pub authority_id: String,
    /// HI-1 `CountryCode` (ISO 3166-1 alpha-2, or `XX`).
    pub country_code: String,
    /// HI-1 `UniqueIdentifier`.
    pub unique_identifier: String,
    /// The Writ instrument its disclosure tasks are decided under (unless the authorisation
    /// names one of Writ's instruments).
    pub disclosure_instrument: String,
    /// The Writ instrument its preservation tasks are decided under; none: preservation tasks
    /// from it are refused.
    pub preservation_instrument: Option<String>,
    /// The HI-1 endpoint Writ DELIVERs released packages to; none: on request only.
    pub delivery_url: Option<String>,
    /// When last changed, UTC microseconds.
    pub updated_at: i64,
}

fn check_instrument(what: &str, value: &str) -> Result<(), RegistryError> {
    let ok = value.contains('.')
        && value.len() <= 100
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(RegistryError::Invalid(format!(
            "{what} `{value}` is not an instrument id such as eu.epoc"
        )))
    }
}

/// Checks a delivery destination and returns its origin (what the audit entry records).
/// Released packages travel there: HTTPS only, except to the local machine (a gateway or a
/// test listener), and never with credentials in the URL, which would end up in logs.
fn check_delivery_url(url: &str) -> Result<String, RegistryError> {
    let bad = |why: &str| RegistryError::Invalid(format!("delivery URL `{url}`: {why}"));
    if url.len() > 2000 {
        return Err(bad("is longer than 2000 characters"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Not echoed: the URL holds a secret.
        return Err(RegistryError::Invalid(
            "a delivery URL must not carry credentials".into(),
        ));
    }
    let host = parsed.host_str().ok_or_else(|| bad("has no host"))?;
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err(bad("must use https (plain http only to the local machine)")),
        other => return Err(bad(&format!("scheme `{other}` is not http(s)"))),
    }
    Ok(parsed.origin().ascii_serialization())
}

/// Sets (or replaces) an authority's HI-1 identity and delivery destination. The identity is
/// unique: two authorities cannot share one sender identifier.
pub fn set_etsi(
    conn: &mut DbConn,
    actor: &Actor,
    identity: &EtsiIdentity,
) -> Result<(), RegistryError> {
    let id = identity;
    if id.country_code.len() != 2 || !id.country_code.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(RegistryError::Invalid(format!(
            "HI-1 country code `{}` must be two upper-case letters",
            id.country_code
        )));
    }
    if id.unique_identifier.is_empty()
        || id.unique_identifier.len() > 256
        || !id.unique_identifier.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(RegistryError::Invalid(
            "the HI-1 unique identifier must be 1 to 256 visible ASCII characters".into(),
        ));
    }
    check_instrument("the disclosure instrument", &id.disclosure_instrument)?;
    if let Some(p) = &id.preservation_instrument {
        check_instrument("the preservation instrument", p)?;
    }
    let destination = match &id.delivery_url {
        Some(url) => Some(check_delivery_url(url)?),
        None => None,
    };
    write_tx(conn, |c| {
        let exists: i64 = authorities::table
            .filter(authorities::id.eq(&id.authority_id))
            .count()
            .get_result(c)?;
        if exists == 0 {
            return Err(RegistryError::NotFound(format!(
                "no authority `{}`",
                id.authority_id
            )));
        }
        let taken: i64 = authority_etsi::table
            .filter(authority_etsi::country_code.eq(&id.country_code))
            .filter(authority_etsi::unique_identifier.eq(&id.unique_identifier))
            .filter(authority_etsi::authority_id.ne(&id.authority_id))
            .count()
            .get_result(c)?;
        if taken > 0 {
            return Err(RegistryError::Conflict(format!(
                "HI-1 identity {}/{} belongs to another authority",
                id.country_code, id.unique_identifier
            )));
        }
        diesel::delete(authority_etsi::table.find(&id.authority_id)).execute(c)?;
        diesel::insert_into(authority_etsi::table)
            .values(id)
            .execute(c)?;
        record(
            c,
            actor,
            audit::Event::AuthorityEtsiSet,
            &id.authority_id,
            &[
                ("etsi_country", &id.country_code),
                ("etsi_id", &id.unique_identifier),
                ("disclosure_instrument", &id.disclosure_instrument),
                ("delivery", destination.as_deref().unwrap_or("on_request")),
            ],
        )
    })
}

/// The HI-1 identity registered for an authority, if any.
pub fn etsi_of(
    conn: &mut DbConn,
    authority_id: &str,
) -> Result<Option<EtsiIdentity>, RegistryError> {
    Ok(authority_etsi::table
        .find(authority_id)
        .select(EtsiIdentity::as_select())
        .first(conn)
        .optional()?)
}

/// The registered kind of the active authority `authority_id`; `None` when it is unknown,
/// suspended, or of a kind Writ does not know.
pub fn active_kind(
    conn: &mut DbConn,
    authority_id: &str,
) -> Result<Option<IssuerKind>, diesel::result::Error> {
    let kind: Option<String> = authorities::table
        .filter(authorities::id.eq(authority_id))
        .filter(authorities::status.eq("active"))
        .select(authorities::kind)
        .first(conn)
        .optional()?;
    Ok(kind.and_then(|k| serde_json::from_value(serde_json::Value::String(k)).ok()))
}

/// The facts the policy engine takes from the registry for an order sent by `authority_id`.
/// A suspended or unknown authority has no registered kind (the engine refuses it).
pub fn registry_facts(
    conn: &mut DbConn,
    authority_id: &str,
) -> Result<RegistryFacts, RegistryError> {
    let found: Option<Authority> = authorities::table
        .filter(authorities::id.eq(authority_id))
        .select(Authority::as_select())
        .first(conn)
        .optional()?;
    let Some(a) = found.filter(|a| a.status == "active") else {
        return Ok(RegistryFacts {
            issuer_kind: None,
            validator_kind: None,
            issuer_country: None,
            validation_signed_by_validator: false,
            earlier_preservations: 0,
        });
    };
    let kind: Option<IssuerKind> =
        serde_json::from_value(serde_json::Value::String(a.kind.clone())).ok();
    Ok(RegistryFacts {
        issuer_kind: kind,
        validator_kind: None,
        issuer_country: Some(a.country),
        validation_signed_by_validator: false,
        earlier_preservations: 0,
    })
}
