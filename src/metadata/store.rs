//! Writing the store: batches of validated rows, idempotently (re-running a file inserts
//! nothing twice), and PostgreSQL's monthly partitions of `ip_events`, created on demand.
//! Callers run these inside a [`crate::db::write_tx`] together with the batch's audit entry.

use std::collections::{BTreeSet, HashMap};

use chrono::{Datelike, TimeZone, Utc};
use diesel::prelude::*;

use super::MetadataError;
use super::normalize::from_micros;
use super::records::{AccountRow, IpEventRow, Rejection};
use crate::db::DbConn;
use crate::db::schema::{account_identifiers, accounts, holds};

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Rows that added something new.
    pub new: u64,
    /// Rows that changed something already stored (an account's status, an interval's end).
    pub changed: u64,
    /// Rows already stored exactly so: nothing written.
    pub unchanged: u64,
    /// Rows refused by the store (unknown account, an identifier held by someone else), with
    /// their line numbers.
    pub rejected: Vec<(u64, Rejection)>,
}

impl BatchOutcome {
    /// Adds another batch's counts.
    pub fn add(&mut self, other: BatchOutcome) {
        self.new += other.new;
        self.changed += other.changed;
        self.unchanged += other.unchanged;
        self.rejected.extend(other.rejected);
    }
}

/// Why one record was refused while storing it; its savepoint is rolled back.
enum RecordError {
    Refused(Rejection),
    Db(MetadataError),
}

impl From<diesel::result::Error> for RecordError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

/// Stores account rows (new accounts, status changes, identifier intervals). Each record is a
/// savepoint: a refused record leaves nothing behind. An identifier interval once stored only
/// changes by being closed (an open end gets its end); moving or reopening it would rewrite
/// history that lookups rely on, so such a record is refused.
pub fn store_accounts(
    conn: &mut DbConn,
    rows: &[(u64, AccountRow)],
) -> Result<BatchOutcome, MetadataError> {
    let mut out = BatchOutcome::default();
    for (line, row) in rows {
        match conn.transaction(|c| store_account(c, row)) {
            Ok(Outcome::New) => out.new += 1,
            Ok(Outcome::Changed) => out.changed += 1,
            Ok(Outcome::Unchanged) => out.unchanged += 1,
            Err(RecordError::Refused(reason)) => out.rejected.push((*line, reason)),
            Err(RecordError::Db(e)) => return Err(e),
        }
    }
    Ok(out)
}

fn store_account(conn: &mut DbConn, row: &AccountRow) -> Result<Outcome, RecordError> {
    let existing: Option<(i64, String)> = accounts::table
        .filter(accounts::external_id.eq(&row.external_id))
        .select((accounts::id, accounts::status))
        .first(conn)
        .optional()?;
    let (account_id, mut outcome) = match existing {
        None => {
            diesel::insert_into(accounts::table)
                .values((
                    accounts::external_id.eq(&row.external_id),
                    accounts::status.eq(&row.status),
                    accounts::created_at.eq(row.created_at),
                    accounts::registration_ip.eq(&row.registration_ip),
                ))
                .execute(conn)?;
            let id: i64 = accounts::table
                .filter(accounts::external_id.eq(&row.external_id))
                .select(accounts::id)
                .first(conn)?;
            (id, Outcome::New)
        }
        // The status is the account's current state, not history: the latest import sets it.
        Some((id, status)) if status != row.status => {
            diesel::update(accounts::table.find(id))
                .set(accounts::status.eq(&row.status))
                .execute(conn)?;
            (id, Outcome::Changed)
        }
        Some((id, _)) => (id, Outcome::Unchanged),
    };
    for ident in &row.identifiers {
        let field = if ident.kind == "phone" {
            "phone_number"
        } else {
            "username"
        };
        // Serialise concurrent imports of the same identifier, so that two cannot both pass
        // the overlap check below (SQLite's write lock already does this).
        crate::db::locks::advisory_text(conn, &format!("{}:{}", ident.kind, ident.value), 0)?;
        // Someone else holding the same number or name during an overlapping interval would
        // make "who had it then" ambiguous: refuse the record.
        let mut clash = account_identifiers::table
            .filter(account_identifiers::kind.eq(ident.kind))
            .filter(account_identifiers::value.eq(&ident.value))
            .filter(account_identifiers::account_id.ne(account_id))
            .filter(
                account_identifiers::valid_to
                    .is_null()
                    .or(account_identifiers::valid_to.gt(ident.valid_from)),
            )
            .into_boxed();
        if let Some(to) = ident.valid_to {
            clash = clash.filter(account_identifiers::valid_from.lt(to));
        }
        let clashes: i64 = clash.count().get_result(conn)?;
        if clashes > 0 {
            return Err(RecordError::Refused(Rejection(format!(
                "field `{field}` is held by another account during an overlapping interval"
            ))));
        }
        let stored: Option<(i64, Option<i64>)> = account_identifiers::table
            .filter(account_identifiers::account_id.eq(account_id))
            .filter(account_identifiers::kind.eq(ident.kind))
            .filter(account_identifiers::value.eq(&ident.value))
            .filter(account_identifiers::valid_from.eq(ident.valid_from))
            .select((account_identifiers::id, account_identifiers::valid_to))
            .first(conn)
            .optional()?;
        match stored {
            None => {
                diesel::insert_into(account_identifiers::table)
                    .values((
                        account_identifiers::account_id.eq(account_id),
                        account_identifiers::kind.eq(ident.kind),
                        account_identifiers::value.eq(&ident.value),
                        account_identifiers::valid_from.eq(ident.valid_from),
                        account_identifiers::valid_to.eq(ident.valid_to),
                    ))
                    .execute(conn)?;
                outcome = outcome.max(Outcome::Changed);
            }
            Some((_, to)) if to == ident.valid_to => {}
            Some((id, None)) => {
                // Closing an interval that was open: the one change history allows.
                diesel::update(account_identifiers::table.find(id))
                    .set(account_identifiers::valid_to.eq(ident.valid_to))
                    .execute(conn)?;
                outcome = outcome.max(Outcome::Changed);
            }
            Some((_, Some(_))) => {
                return Err(RecordError::Refused(Rejection(format!(
                    "field `valid_to` would move or reopen the end of a `{field}` interval already stored; history is not rewritten"
                ))));
            }
        }
    }
    Ok(outcome)
}

/// Ordered so that `max` keeps the strongest effect a record had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Unchanged,
    Changed,
    New,
}

/// Events per INSERT statement (5 parameters each, well under both backends' limits).
const INSERT_CHUNK: usize = 100;

/// An event ready to insert.
struct NewIpEvent<'a> {
    account_id: i64,
    at: i64,
    ip: &'a str,
    port: i32,
    kind: &'a str,
}

/// Inserts events, skipping those already stored; returns how many were new. One multi-row
/// statement (diesel's batch insert on SQLite runs a statement per row, and not with
/// ON CONFLICT); the SQL text is the same for every full chunk, so it stays prepared.
fn insert_events(conn: &mut DbConn, events: &[NewIpEvent<'_>]) -> Result<u64, MetadataError> {
    use diesel::sql_types::{BigInt, Integer, Text};
    let values = |placeholder: &dyn Fn(usize) -> String| {
        (0..events.len())
            .map(|i| {
                let n = i * 5;
                format!(
                    "({}, {}, {}, {}, {})",
                    placeholder(n + 1),
                    placeholder(n + 2),
                    placeholder(n + 3),
                    placeholder(n + 4),
                    placeholder(n + 5)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let head = "INSERT INTO ip_events (account_id, at, ip, port, kind) VALUES ";
    // The same statement on both backends; only the placeholder syntax and the connection type
    // differ, so the binding is written once.
    let sql = format!(
        "{head}{} ON CONFLICT DO NOTHING",
        values(&|i| format!("${i}"))
    );
    let sql = crate::db::statement(conn, &sql);
    let n = crate::db::on_backend!(conn, |c| {
        let mut query = diesel::sql_query(sql.as_ref()).into_boxed();
        for e in events {
            query = query
                .bind::<BigInt, _>(e.account_id)
                .bind::<BigInt, _>(e.at)
                .bind::<Text, _>(e.ip)
                .bind::<Integer, _>(e.port)
                .bind::<Text, _>(e.kind);
        }
        query.execute(c)?
    });
    Ok(n as u64)
}

/// External ids already resolved to account ids during one import, so each batch looks up only
/// accounts it has not met yet. Account ids never change once assigned, so the cache cannot go
/// stale; it is bounded, and starts over past [`AccountIds::MAX`] entries.
#[derive(Debug, Default)]
pub struct AccountIds(HashMap<String, i64>);

impl AccountIds {
    /// Most entries kept (about 100 MB at the worst).
    pub const MAX: usize = 1_000_000;
}

/// Stores IP event rows; events of unknown accounts are refused.
pub fn store_ip_events(
    conn: &mut DbConn,
    rows: &[(u64, IpEventRow)],
    ids: &mut AccountIds,
) -> Result<BatchOutcome, MetadataError> {
    let mut out = BatchOutcome::default();
    if ids.0.len() > AccountIds::MAX {
        ids.0.clear();
    }
    let wanted: BTreeSet<&str> = rows
        .iter()
        .map(|(_, r)| r.external_id.as_str())
        .filter(|id| !ids.0.contains_key(*id))
        .collect();
    let ids = &mut ids.0;
    let wanted: Vec<&str> = wanted.into_iter().collect();
    for chunk in wanted.chunks(500) {
        let found: Vec<(String, i64)> = accounts::table
            .filter(accounts::external_id.eq_any(chunk))
            .select((accounts::external_id, accounts::id))
            .load(conn)?;
        ids.extend(found);
    }
    // PostgreSQL's monthly partitions of `ip_events` (SQLite has none, and reads no row here).
    crate::db::partitions::ensure(
        conn,
        "ip_events",
        rows.iter().map(|(_, r)| partition_for(r.at)),
    )?;
    let mut resolved: Vec<NewIpEvent<'_>> = Vec::with_capacity(rows.len());
    for (line, row) in rows {
        let Some(&account_id) = ids.get(&row.external_id) else {
            out.rejected.push((
                *line,
                Rejection(
                    "field `external_id` names no known account; import the account first".into(),
                ),
            ));
            continue;
        };
        resolved.push(NewIpEvent {
            account_id,
            at: row.at,
            ip: &row.ip,
            port: row.port,
            kind: &row.kind,
        });
    }
    // In primary-key order, so the batch walks the B-tree once instead of jumping about it.
    resolved.sort_unstable_by(|a, b| {
        (a.account_id, a.at, a.ip, a.port, a.kind).cmp(&(b.account_id, b.at, b.ip, b.port, b.kind))
    });
    // Multi-row inserts: one statement per chunk instead of one per event.
    let mut chunk: Vec<NewIpEvent<'_>> = Vec::with_capacity(INSERT_CHUNK);
    for event in resolved {
        chunk.push(event);
        if chunk.len() == INSERT_CHUNK {
            let inserted = insert_events(conn, &chunk)?;
            out.new += inserted;
            out.unchanged += chunk.len() as u64 - inserted;
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        let inserted = insert_events(conn, &chunk)?;
        out.new += inserted;
        out.unchanged += chunk.len() as u64 - inserted;
    }
    Ok(out)
}

/// The month partition holding `micros`: its name and `[from, to)` bounds.
pub fn partition_for(micros: i64) -> (String, i64, i64) {
    let t = from_micros(micros);
    let start = Utc
        .with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let (ny, nm) = if t.month() == 12 {
        (t.year() + 1, 1)
    } else {
        (t.year(), t.month() + 1)
    };
    let end = Utc
        .with_ymd_and_hms(ny, nm, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    (
        format!("ip_events_p{:04}{:02}", t.year(), t.month()),
        start.timestamp_micros(),
        end.timestamp_micros(),
    )
}

/// A hold to place: data of `account_id` in `[data_from, data_to)` for `categories`, until
/// `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHold {
    /// The account.
    pub account_id: i64,
    /// Categories held (e.g. `ip_history`, `identification`, `subscriber`).
    pub categories: Vec<String>,
    /// Start of the data interval, UTC microseconds.
    pub data_from: i64,
    /// End of the data interval (exclusive).
    pub data_to: i64,
    /// Why.
    pub reason: String,
    /// The order that placed it.
    pub order_id: Option<String>,
    /// When it lapses.
    pub expires_at: i64,
}

/// Places a hold (inside the caller's transaction, with its audit entry).
pub fn place_hold(conn: &mut DbConn, hold: &NewHold, now: i64) -> Result<(), MetadataError> {
    if hold.data_to <= hold.data_from || hold.categories.is_empty() {
        return Err(MetadataError::Invalid(
            "a hold needs a non-empty interval and at least one category".into(),
        ));
    }
    diesel::insert_into(holds::table)
        .values((
            holds::account_id.eq(hold.account_id),
            holds::categories.eq(hold.categories.join(",")),
            holds::data_from.eq(hold.data_from),
            holds::data_to.eq(hold.data_to),
            holds::reason.eq(&hold.reason),
            holds::order_id.eq(&hold.order_id),
            holds::created_at.eq(now),
            holds::expires_at.eq(hold.expires_at),
        ))
        .execute(conn)?;
    Ok(())
}
