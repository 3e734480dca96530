//! The authorities the national e-Evidence system lists (its database of competent
//! authorities), read into the registry by [`refresh`].
//!
//! A listed authority is matched to the registry by its identifier in the system (its HI-1
//! identity, `authority_etsi`: country code and unique identifier). One the registry does not
//! know is added, active, under the id `dis-<country code>-<identifier>`, with that identity
//! and the e-Evidence instruments. It has no key: it cannot send orders itself, but an order
//! that names it (as issuing or validating authority) no longer names an unknown authority.
//! Only authorities a refresh added follow the list: their name, country and kind change with
//! it, one it no longer names is suspended, and one named again is activated. An authority
//! registered by hand is never changed by the list. Everything happens in one transaction,
//! with one `eevidence.authorities_refreshed` entry naming how many were listed, added,
//! changed and removed (no names: the counts say what the refresh did).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::{EtsiIdentity, RegistryError, check_slug, record};
use crate::audit::{self, Actor, NewEntry};
use crate::db::schema::{authorities, authority_etsi};
use crate::db::{DbConn, write_tx};
use crate::policy::IssuerKind;

/// The id prefix of the authorities a refresh added.
pub const PREFIX: &str = "dis-";

/// The instruments an authority added from the list is registered with.
const DISCLOSURE_INSTRUMENT: &str = "eu.epoc";
const PRESERVATION_INSTRUMENT: &str = "eu.epoc_pr";

/// One authority as the national system lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its HI-1 country code in the system.
    pub country_code: String,
    /// Its unique identifier in the system (what messages and approvals name).
    pub unique_identifier: String,
    /// Its name.
    pub name: String,
    /// Its member state (ISO 3166-1 alpha-2).
    pub country: String,
    /// Its kind.
    pub kind: IssuerKind,
}

/// What a refresh did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Refreshed {
    /// Authorities the list named.
    pub listed: usize,
    /// Added to the registry.
    pub added: usize,
    /// Changed (name, country, kind, or activated again).
    pub changed: usize,
    /// Suspended: added by an earlier refresh, no longer listed.
    pub removed: usize,
}

fn two_letters(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// Checks a list before anything is written: a list with one bad entry changes nothing.
fn check(listed: &[Listed]) -> Result<(), RegistryError> {
    let mut seen = HashSet::new();
    for l in listed {
        let who = format!("{}/{}", l.country_code, l.unique_identifier);
        if !two_letters(&l.country_code)
            || l.unique_identifier.is_empty()
            || l.unique_identifier.len() > 200
            || !l.unique_identifier.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(RegistryError::Invalid(format!(
                "a listed authority's identifier {who:?} is not a country code and 1 to 200 visible ASCII characters"
            )));
        }
        if l.name.trim().is_empty()
            || l.name.chars().count() > 200
            || crate::text::hidden_character(&l.name).is_some()
        {
            return Err(RegistryError::Invalid(format!(
                "listed authority {who}: the name must be 1 to 200 visible characters"
            )));
        }
        if !two_letters(&l.country) {
            return Err(RegistryError::Invalid(format!(
                "listed authority {who}: country {:?} is not an ISO 3166-1 alpha-2 code",
                l.country
            )));
        }
        if !seen.insert((l.country_code.as_str(), l.unique_identifier.as_str())) {
            return Err(RegistryError::Invalid(format!(
                "authority {who} is listed twice"
            )));
        }
    }
    Ok(())
}

/// The registry id of a listed authority added by a refresh.
fn registry_id(l: &Listed) -> String {
    let tail: String = l
        .unique_identifier
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let id = format!("{PREFIX}{}-{tail}", l.country_code.to_ascii_lowercase());
    id.chars().take(64).collect()
}

/// Brings the registry in step with the system's list (see the module's text), audited, in
/// one transaction.
pub fn refresh(
    conn: &mut DbConn,
    actor: &Actor,
    listed: &[Listed],
    now: DateTime<Utc>,
) -> Result<Refreshed, RegistryError> {
    check(listed)?;
    write_tx(conn, |c| {
        let mut out = Refreshed {
            listed: listed.len(),
            ..Refreshed::default()
        };
        let mut kept: HashSet<String> = HashSet::new();
        for l in listed {
            let found: Option<String> = authority_etsi::table
                .filter(authority_etsi::country_code.eq(&l.country_code))
                .filter(authority_etsi::unique_identifier.eq(&l.unique_identifier))
                .select(authority_etsi::authority_id)
                .first(c)
                .optional()?;
            match found {
                None => {
                    let id = registry_id(l);
                    check_slug("the authority id", &id, 64)?;
                    let taken: i64 = authorities::table
                        .filter(authorities::id.eq(&id))
                        .count()
                        .get_result(c)?;
                    if taken > 0 {
                        return Err(RegistryError::Conflict(format!(
                            "authority `{id}` is registered under another identity"
                        )));
                    }
                    diesel::insert_into(authorities::table)
                        .values((
                            authorities::id.eq(&id),
                            authorities::name.eq(l.name.trim()),
                            authorities::country.eq(&l.country),
                            authorities::kind.eq(l.kind.as_str()),
                            authorities::contacts.eq(""),
                            authorities::status.eq("active"),
                            authorities::created_at.eq(now.timestamp_micros()),
                        ))
                        .execute(c)?;
                    diesel::insert_into(authority_etsi::table)
                        .values(&EtsiIdentity {
                            authority_id: id.clone(),
                            country_code: l.country_code.clone(),
                            unique_identifier: l.unique_identifier.clone(),
                            disclosure_instrument: DISCLOSURE_INSTRUMENT.into(),
                            preservation_instrument: Some(PRESERVATION_INSTRUMENT.into()),
                            delivery_url: None,
                            updated_at: now.timestamp_micros(),
                        })
                        .execute(c)?;
                    record(
                        c,
                        actor,
                        audit::Event::AuthorityAdded,
                        &id,
                        &[("kind", l.kind.as_str()), ("country", &l.country)],
                    )?;
                    out.added += 1;
                    kept.insert(id);
                }
                Some(id) if id.starts_with(PREFIX) => {
                    let (name, country, kind, status): (String, String, String, String) =
                        authorities::table
                            .find(&id)
                            .select((
                                authorities::name,
                                authorities::country,
                                authorities::kind,
                                authorities::status,
                            ))
                            .first(c)?;
                    if name != l.name.trim()
                        || country != l.country
                        || kind != l.kind.as_str()
                        || status != "active"
                    {
                        diesel::update(authorities::table.find(&id))
                            .set((
                                authorities::name.eq(l.name.trim()),
                                authorities::country.eq(&l.country),
                                authorities::kind.eq(l.kind.as_str()),
                                authorities::status.eq("active"),
                            ))
                            .execute(c)?;
                        out.changed += 1;
                    }
                    kept.insert(id);
                }
                // Registered by hand: the registry's own facts stand.
                Some(_) => {}
            }
        }
        let added_before: Vec<String> = authorities::table
            .filter(authorities::id.like(format!("{PREFIX}%")))
            .filter(authorities::status.eq("active"))
            .select(authorities::id)
            .load(c)?;
        for id in added_before.iter().filter(|id| !kept.contains(*id)) {
            diesel::update(authorities::table.find(id))
                .set(authorities::status.eq("suspended"))
                .execute(c)?;
            out.removed += 1;
        }
        let entry = NewEntry::new(actor.clone(), audit::Event::EevidenceAuthoritiesRefreshed)
            .reference("listed", out.listed)
            .reference("added", out.added)
            .reference("changed", out.changed)
            .reference("removed", out.removed);
        audit::append(c, &entry, now)?;
        Ok(out)
    })
}
