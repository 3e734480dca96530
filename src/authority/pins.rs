//! Pinned TLS client identities: which client certificate (or key) stands for which authority
//! on the paths that require mutual TLS (the e-Evidence interface).
//!
//! A verified client certificate proves only that some CA issued it; the pin is what maps it to
//! one authority of the registry. A pin is the SHA-256 of the whole certificate (changes with
//! every reissue) or of its SubjectPublicKeyInfo (survives a reissue with the same key, the
//! form of RFC 7469's pins). Adding and revoking a pin are audit entries in the same
//! transaction; a revoked pin stays as the record and is never reused.

use chrono::Utc;
use diesel::prelude::*;
use serde::Serialize;

use super::{RegistryError, record};
use crate::audit::{self, Actor};
use crate::db::schema::{authorities, authority_tls_pins};
use crate::db::{DbConn, write_tx};

/// What a pin is the hash of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PinKind {
    /// The whole certificate, DER.
    Certificate,
    /// The certificate's SubjectPublicKeyInfo, DER.
    Spki,
}

impl PinKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Certificate => "certificate",
            Self::Spki => "spki",
        }
    }

    /// Parses `certificate` or `spki`.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        match text {
            "certificate" => Ok(Self::Certificate),
            "spki" => Ok(Self::Spki),
            other => Err(RegistryError::Invalid(format!(
                "pin kind `{other}` is neither `certificate` nor `spki`"
            ))),
        }
    }
}

/// A pin as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable)]
#[diesel(table_name = authority_tls_pins)]
pub struct TlsPin {
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// `certificate` or `spki`.
    pub kind: String,
    /// The authority it stands for.
    pub authority_id: String,
    /// When pinned, UTC microseconds.
    pub created_at: i64,
    /// When revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// The authority a verified client certificate stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinnedPeer {
    /// The authority's registry id.
    pub authority_id: String,
    /// The pin that matched (lowercase hex SHA-256).
    pub pin: String,
    /// What the pin is the hash of.
    pub kind: PinKind,
}

/// Checks and normalises a pin: 64 hex digits, colons allowed (as `openssl x509 -fingerprint`
/// prints them).
pub fn normalise(sha256: &str) -> Result<String, RegistryError> {
    let hex: String = sha256
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RegistryError::Invalid(
            "a pin is a SHA-256 in hex (64 hex digits, colons allowed)".into(),
        ));
    }
    Ok(hex)
}

/// Pins `sha256` (of `kind`) to the authority `authority_id`.
pub fn add(
    conn: &mut DbConn,
    actor: &Actor,
    authority_id: &str,
    kind: PinKind,
    sha256: &str,
) -> Result<String, RegistryError> {
    let pin = normalise(sha256)?;
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
        let taken: Option<String> = authority_tls_pins::table
            .find(&pin)
            .select(authority_tls_pins::authority_id)
            .first(c)
            .optional()?;
        if let Some(owner) = taken {
            return Err(RegistryError::Conflict(format!(
                "pin {pin} is already registered (to `{owner}`; pins are never reused)"
            )));
        }
        diesel::insert_into(authority_tls_pins::table)
            .values((
                authority_tls_pins::sha256.eq(&pin),
                authority_tls_pins::kind.eq(kind.as_str()),
                authority_tls_pins::authority_id.eq(authority_id),
                authority_tls_pins::created_at.eq(Utc::now().timestamp_micros()),
            ))
            .execute(c)?;
        record(
            c,
            actor,
            audit::Event::AuthorityTlsPinAdded,
            authority_id,
            &[("pin", &pin), ("pin_kind", kind.as_str())],
        )
    })?;
    Ok(pin)
}

/// Revokes a pin: connections presenting it are refused from the next request on.
pub fn revoke(conn: &mut DbConn, actor: &Actor, sha256: &str) -> Result<(), RegistryError> {
    let pin = normalise(sha256)?;
    write_tx(conn, |c| {
        let row: Option<(String, Option<i64>)> = authority_tls_pins::table
            .find(&pin)
            .select((
                authority_tls_pins::authority_id,
                authority_tls_pins::revoked_at,
            ))
            .first(c)
            .optional()?;
        let Some((authority_id, revoked)) = row else {
            return Err(RegistryError::NotFound(format!("no pin {pin}")));
        };
        if revoked.is_some() {
            return Err(RegistryError::Conflict(format!(
                "pin {pin} is already revoked"
            )));
        }
        diesel::update(authority_tls_pins::table.find(&pin))
            .set(authority_tls_pins::revoked_at.eq(Some(Utc::now().timestamp_micros())))
            .execute(c)?;
        record(
            c,
            actor,
            audit::Event::AuthorityTlsPinRevoked,
            &authority_id,
            &[("pin", &pin)],
        )
    })
}

/// Every pin, oldest first.
pub fn list(conn: &mut DbConn) -> Result<Vec<TlsPin>, RegistryError> {
    Ok(authority_tls_pins::table
        .order((authority_tls_pins::created_at, authority_tls_pins::sha256))
        .select(TlsPin::as_select())
        .load(conn)?)
}

/// The active authority whose unrevoked pin matches the certificate's or the key's hash;
/// `None` when no pin matches, the pin is revoked or the authority is suspended.
pub fn peer_for(
    conn: &mut DbConn,
    certificate_sha256: &str,
    spki_sha256: &str,
) -> Result<Option<PinnedPeer>, RegistryError> {
    let found: Option<(String, String, String)> = authority_tls_pins::table
        .inner_join(authorities::table)
        .filter(
            authority_tls_pins::sha256
                .eq(certificate_sha256)
                .and(authority_tls_pins::kind.eq(PinKind::Certificate.as_str()))
                .or(authority_tls_pins::sha256
                    .eq(spki_sha256)
                    .and(authority_tls_pins::kind.eq(PinKind::Spki.as_str()))),
        )
        .filter(authority_tls_pins::revoked_at.is_null())
        .filter(authorities::status.eq("active"))
        .select((
            authority_tls_pins::authority_id,
            authority_tls_pins::sha256,
            authority_tls_pins::kind,
        ))
        .order(authority_tls_pins::created_at)
        .first(conn)
        .optional()?;
    found
        .map(|(authority_id, pin, kind)| {
            Ok(PinnedPeer {
                authority_id,
                pin,
                kind: PinKind::parse(&kind)?,
            })
        })
        .transpose()
}
