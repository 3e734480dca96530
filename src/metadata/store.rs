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
use crate::db::schema::{account_identifiers, accounts, holds, ip_events};

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

/// Stores account rows (new accounts, status changes, identifier intervals).
pub fn store_accounts(
    conn: &mut DbConn,
    rows: &[(u64, AccountRow)],
) -> Result<BatchOutcome, MetadataError> {
    let mut out = BatchOutcome::default();
    for (line, row) in rows {
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
            Some((id, status)) if status != row.status => {
                diesel::update(accounts::table.find(id))
                    .set(accounts::status.eq(&row.status))
                    .execute(conn)?;
                (id, Outcome::Changed)
            }
            Some((id, _)) => (id, Outcome::Unchanged),
        };
        let mut refused = None;
        for ident in &row.identifiers {
            // Someone else holding the same number or name during an overlapping interval
            // would make "who had it then" ambiguous: refuse the record.
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
                let field = if ident.kind == "phone" {
                    "phone_number"
                } else {
                    "username"
                };
                refused = Some(Rejection(format!(
                    "field `{field}` is held by another account during an overlapping interval"
                )));
                break;
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
                Some((id, to)) if to != ident.valid_to => {
                    diesel::update(account_identifiers::table.find(id))
                        .set(account_identifiers::valid_to.eq(ident.valid_to))
                        .execute(conn)?;
                    outcome = outcome.max(Outcome::Changed);
                }
                Some(_) => {}
            }
        }
        match (refused, outcome) {
            (Some(reason), _) => out.rejected.push((*line, reason)),
            (None, Outcome::New) => out.new += 1,
            (None, Outcome::Changed) => out.changed += 1,
            (None, Outcome::Unchanged) => out.unchanged += 1,
        }
    }
    Ok(out)
}

/// Ordered so that `max` keeps the strongest effect a record had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Unchanged,
    Changed,
    New,
}

/// Stores IP event rows; events of unknown accounts are refused.
pub fn store_ip_events(
    conn: &mut DbConn,
    rows: &[(u64, IpEventRow)],
) -> Result<BatchOutcome, MetadataError> {
    let mut out = BatchOutcome::default();
    let wanted: BTreeSet<&str> = rows.iter().map(|(_, r)| r.external_id.as_str()).collect();
    let mut ids: HashMap<String, i64> = HashMap::with_capacity(wanted.len());
    let wanted: Vec<&str> = wanted.into_iter().collect();
    for chunk in wanted.chunks(500) {
        let found: Vec<(String, i64)> = accounts::table
            .filter(accounts::external_id.eq_any(chunk))
            .select((accounts::external_id, accounts::id))
            .load(conn)?;
        ids.extend(found);
    }
    if let DbConn::Postgres(_) = conn {
        ensure_partitions(conn, rows.iter().map(|(_, r)| r.at))?;
    }
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
        let values = (
            ip_events::account_id.eq(account_id),
            ip_events::at.eq(row.at),
            ip_events::ip.eq(&row.ip),
            ip_events::port.eq(row.port),
            ip_events::kind.eq(&row.kind),
        );
        let inserted = match conn {
            DbConn::Sqlite(c) => diesel::insert_into(ip_events::table)
                .values(values)
                .on_conflict_do_nothing()
                .execute(c)?,
            DbConn::Postgres(c) => diesel::insert_into(ip_events::table)
                .values(values)
                .on_conflict_do_nothing()
                .execute(c)?,
        };
        if inserted == 1 {
            out.new += 1;
        } else {
            out.unchanged += 1;
        }
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

/// Creates the monthly partitions these times fall in, if missing (PostgreSQL only). Safe when
/// several importers race: creation is idempotent and a lost race is not an error.
pub fn ensure_partitions(
    conn: &mut DbConn,
    times: impl Iterator<Item = i64>,
) -> Result<(), MetadataError> {
    let DbConn::Postgres(c) = conn else {
        return Ok(());
    };
    let months: BTreeSet<(String, i64, i64)> = times.map(partition_for).collect();
    for (name, from, to) in months {
        // Runs in a savepoint so a concurrent creator's win does not abort the caller's transaction.
        let created = c.transaction(|c| {
            diesel::sql_query(format!(
                "CREATE TABLE IF NOT EXISTS {name} PARTITION OF ip_events FOR VALUES FROM ({from}) TO ({to})"
            ))
            .execute(c)
        });
        if let Err(e) = created {
            let exists: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
                &format!("EXISTS (SELECT 1 FROM pg_class WHERE relname = '{name}')"),
            ))
            .get_result(c)?;
            if !exists {
                return Err(e.into());
            }
        }
    }
    Ok(())
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
