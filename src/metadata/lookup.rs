//! Lookups for the order workflow: a library API, not an endpoint or a command. Writ offers no
//! way to read a user's data outside an open order, so every lookup names the order and the
//! person asking, runs inside a transaction, and leaves an audit entry (what kind of lookup,
//! the window, how many matches: never the target or the data).
//!
//! Every lookup is bounded by a time window and uses an index on both backends:
//! `accounts.external_id` (unique), `account_identifiers_by_value (kind, value, valid_from)`,
//! the `ip_events` primary key `(account_id, at, ...)`, and `ip_events_by_ip (ip, at)`.

use std::collections::BTreeMap;

use chrono::Utc;
use diesel::prelude::*;
use serde::Serialize;

use super::MetadataError;
use super::normalize;
use crate::audit::{self, Actor, NewEntry};
use crate::db::schema::{account_identifiers, accounts, ip_events};
use crate::db::{DbConn, write_tx};

/// Longest window a lookup may span: ten years.
const MAX_WINDOW_MICROS: i64 = 10 * 366 * 24 * 3600 * 1_000_000;
/// Most IP events one lookup returns per account.
pub const MAX_EVENTS: i64 = 100_000;

/// A half-open time window `[from, to)`, UTC microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    /// Start.
    pub from: i64,
    /// End (exclusive).
    pub to: i64,
}

impl Window {
    /// A window; `from < to` and at most ten years long.
    pub fn new(from: i64, to: i64) -> Result<Self, MetadataError> {
        if to <= from {
            return Err(MetadataError::Invalid(
                "a lookup window must end after it starts".into(),
            ));
        }
        if to - from > MAX_WINDOW_MICROS {
            return Err(MetadataError::Invalid(
                "a lookup window may span at most ten years".into(),
            ));
        }
        Ok(Self { from, to })
    }

    /// A moment with a tolerance either side.
    pub fn around(at: i64, tolerance_secs: u32) -> Result<Self, MetadataError> {
        let t = i64::from(tolerance_secs) * 1_000_000;
        Self::new(at - t, at + t + 1)
    }
}

/// Who asks, for which order: the audit entry's actor and order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupContext {
    /// The person (legal reviewer or approver) or system asking.
    pub actor: Actor,
    /// The open order the lookup serves.
    pub order_id: String,
}

/// An identifier interval as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentifierInterval {
    /// phone or username.
    pub kind: String,
    /// The value.
    pub value: String,
    /// From, UTC microseconds.
    pub valid_from: i64,
    /// To (exclusive), if ended.
    pub valid_to: Option<i64>,
}

/// An account as the store knows it, with the identifiers it had during the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountMatch {
    /// Internal id.
    pub account_id: i64,
    /// The provider's user id.
    pub external_id: String,
    /// Status.
    pub status: String,
    /// Creation, UTC microseconds.
    pub created_at: i64,
    /// Registration IP.
    pub registration_ip: Option<String>,
    /// Identifier intervals overlapping the window.
    pub identifiers: Vec<IdentifierInterval>,
}

/// An IP event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable)]
pub struct IpEvent {
    /// The account.
    pub account_id: i64,
    /// When, UTC microseconds.
    pub at: i64,
    /// Address.
    pub ip: String,
    /// Port; 0 when not recorded.
    pub port: i32,
    /// Kind.
    pub kind: String,
}

/// The accounts seen at an address around a moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReverseMatch {
    /// Each account with the events that matched.
    pub accounts: Vec<(AccountMatch, Vec<IpEvent>)>,
    /// More than one account matched.
    pub multiple_accounts: bool,
    /// The address is IPv4 and no port was given: behind carrier-grade NAT it may stand for
    /// many users, so even a single match is not proof.
    pub ipv4_without_port: bool,
    /// More events matched than one lookup returns ([`MAX_EVENTS`]): accounts may be missing.
    pub truncated: bool,
}

impl ReverseMatch {
    /// Whether a person must decide before anything is released.
    pub fn needs_review(&self) -> bool {
        self.multiple_accounts || self.ipv4_without_port || self.truncated
    }
}

fn audited<T>(
    conn: &mut DbConn,
    ctx: &LookupContext,
    by: &str,
    window: Window,
    run: impl FnOnce(&mut DbConn) -> Result<(T, usize), MetadataError>,
) -> Result<T, MetadataError> {
    write_tx(conn, |c| {
        let (result, matches) = run(c)?;
        let entry = NewEntry::new(ctx.actor.clone(), audit::Event::MetadataLookup)
            .order(ctx.order_id.as_str())
            .reference("by", by)
            .reference(
                "window_from",
                normalize::from_micros(window.from).to_rfc3339(),
            )
            .reference("window_to", normalize::from_micros(window.to).to_rfc3339())
            .reference("matches", matches);
        audit::append(c, &entry, Utc::now())?;
        Ok(result)
    })
}

fn identifiers_in(
    conn: &mut DbConn,
    account_ids: &[i64],
    window: Window,
) -> Result<BTreeMap<i64, Vec<IdentifierInterval>>, MetadataError> {
    let rows: Vec<(i64, String, String, i64, Option<i64>)> = account_identifiers::table
        .filter(account_identifiers::account_id.eq_any(account_ids))
        .filter(account_identifiers::valid_from.lt(window.to))
        .filter(
            account_identifiers::valid_to
                .is_null()
                .or(account_identifiers::valid_to.gt(window.from)),
        )
        .order((
            account_identifiers::account_id,
            account_identifiers::valid_from,
        ))
        .select((
            account_identifiers::account_id,
            account_identifiers::kind,
            account_identifiers::value,
            account_identifiers::valid_from,
            account_identifiers::valid_to,
        ))
        .load(conn)?;
    let mut out: BTreeMap<i64, Vec<IdentifierInterval>> = BTreeMap::new();
    for (id, kind, value, valid_from, valid_to) in rows {
        out.entry(id).or_default().push(IdentifierInterval {
            kind,
            value,
            valid_from,
            valid_to,
        });
    }
    Ok(out)
}

fn accounts_by_ids(
    conn: &mut DbConn,
    ids: &[i64],
    window: Window,
) -> Result<Vec<AccountMatch>, MetadataError> {
    let rows: Vec<(i64, String, String, i64, Option<String>)> = accounts::table
        .filter(accounts::id.eq_any(ids))
        .order(accounts::id)
        .select((
            accounts::id,
            accounts::external_id,
            accounts::status,
            accounts::created_at,
            accounts::registration_ip,
        ))
        .load(conn)?;
    let mut idents = identifiers_in(conn, ids, window)?;
    Ok(rows
        .into_iter()
        .map(
            |(account_id, external_id, status, created_at, registration_ip)| AccountMatch {
                identifiers: idents.remove(&account_id).unwrap_or_default(),
                account_id,
                external_id,
                status,
                created_at,
                registration_ip,
            },
        )
        .collect())
}

/// The account with this provider user id (with its identifiers during the window).
pub fn by_user_id(
    conn: &mut DbConn,
    ctx: &LookupContext,
    external_id: &str,
    window: Window,
) -> Result<Option<AccountMatch>, MetadataError> {
    audited(conn, ctx, "user_id", window, |c| {
        let id: Option<i64> = accounts::table
            .filter(accounts::external_id.eq(external_id))
            .select(accounts::id)
            .first(c)
            .optional()?;
        let found = match id {
            Some(id) => accounts_by_ids(c, &[id], window)?.pop(),
            None => None,
        };
        let n = usize::from(found.is_some());
        Ok((found, n))
    })
}

/// The accounts that had this phone number at some time in the window (recycled numbers give
/// several, each with its interval).
pub fn by_phone(
    conn: &mut DbConn,
    ctx: &LookupContext,
    number: &str,
    window: Window,
) -> Result<Vec<AccountMatch>, MetadataError> {
    let e164 = normalize::phone(number)
        .map_err(|r| MetadataError::Invalid(format!("phone number {r}")))?;
    by_identifier(conn, ctx, "phone", &e164, window)
}

/// The accounts that had this username at some time in the window.
pub fn by_username(
    conn: &mut DbConn,
    ctx: &LookupContext,
    name: &str,
    window: Window,
) -> Result<Vec<AccountMatch>, MetadataError> {
    let name =
        normalize::username(name).map_err(|r| MetadataError::Invalid(format!("username {r}")))?;
    by_identifier(conn, ctx, "username", &name, window)
}

fn by_identifier(
    conn: &mut DbConn,
    ctx: &LookupContext,
    kind: &str,
    value: &str,
    window: Window,
) -> Result<Vec<AccountMatch>, MetadataError> {
    audited(conn, ctx, kind, window, |c| {
        let ids: Vec<i64> = account_identifiers::table
            .filter(account_identifiers::kind.eq(kind))
            .filter(account_identifiers::value.eq(value))
            .filter(account_identifiers::valid_from.lt(window.to))
            .filter(
                account_identifiers::valid_to
                    .is_null()
                    .or(account_identifiers::valid_to.gt(window.from)),
            )
            .select(account_identifiers::account_id)
            .distinct()
            .load(c)?;
        let found = accounts_by_ids(c, &ids, window)?;
        let n = found.len();
        Ok((found, n))
    })
}

/// An account's IP events in a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpHistory {
    /// The events, oldest first (at most [`MAX_EVENTS`]).
    pub events: Vec<IpEvent>,
    /// More events fall in the window than one lookup returns: narrow the window.
    pub truncated: bool,
}

/// An account's IP events in the window, oldest first.
pub fn ip_history(
    conn: &mut DbConn,
    ctx: &LookupContext,
    account_id: i64,
    window: Window,
) -> Result<IpHistory, MetadataError> {
    audited(conn, ctx, "ip_history", window, |c| {
        let mut events: Vec<IpEvent> = ip_events::table
            .filter(ip_events::account_id.eq(account_id))
            .filter(ip_events::at.ge(window.from))
            .filter(ip_events::at.lt(window.to))
            .order(ip_events::at)
            .limit(MAX_EVENTS + 1)
            .select((
                ip_events::account_id,
                ip_events::at,
                ip_events::ip,
                ip_events::port,
                ip_events::kind,
            ))
            .load(c)?;
        let truncated = events.len() as i64 > MAX_EVENTS;
        events.truncate(usize::try_from(MAX_EVENTS).unwrap_or(usize::MAX));
        let n = events.len();
        Ok((IpHistory { events, truncated }, n))
    })
}

/// The accounts seen at `ip` (and `port`, if given) within `tolerance_secs` of `at`, with the
/// matching events, saying when the match is ambiguous.
pub fn by_ip(
    conn: &mut DbConn,
    ctx: &LookupContext,
    ip: &str,
    port: Option<u16>,
    at: i64,
    tolerance_secs: u32,
) -> Result<ReverseMatch, MetadataError> {
    let addr = normalize::ip(ip).map_err(|r| MetadataError::Invalid(format!("IP address {r}")))?;
    let window = Window::around(at, tolerance_secs)?;
    audited(
        conn,
        ctx,
        if port.is_some() { "ip_port" } else { "ip" },
        window,
        |c| {
            let mut query = ip_events::table
                .filter(ip_events::ip.eq(addr.to_string()))
                .filter(ip_events::at.ge(window.from))
                .filter(ip_events::at.lt(window.to))
                .select((
                    ip_events::account_id,
                    ip_events::at,
                    ip_events::ip,
                    ip_events::port,
                    ip_events::kind,
                ))
                .into_boxed();
            if let Some(p) = port {
                query = query.filter(ip_events::port.eq(i32::from(p)));
            }
            let mut events: Vec<IpEvent> =
                query.order(ip_events::at).limit(MAX_EVENTS + 1).load(c)?;
            let truncated = events.len() as i64 > MAX_EVENTS;
            events.truncate(usize::try_from(MAX_EVENTS).unwrap_or(usize::MAX));
            let mut by_account: BTreeMap<i64, Vec<IpEvent>> = BTreeMap::new();
            for e in events {
                by_account.entry(e.account_id).or_default().push(e);
            }
            let ids: Vec<i64> = by_account.keys().copied().collect();
            let accounts = accounts_by_ids(c, &ids, window)?;
            let matched: Vec<(AccountMatch, Vec<IpEvent>)> = accounts
                .into_iter()
                .map(|a| {
                    let events = by_account.remove(&a.account_id).unwrap_or_default();
                    (a, events)
                })
                .collect();
            let n = matched.len();
            Ok((
                ReverseMatch {
                    multiple_accounts: n > 1,
                    ipv4_without_port: addr.is_ipv4() && port.is_none(),
                    truncated,
                    accounts: matched,
                },
                n,
            ))
        },
    )
}
