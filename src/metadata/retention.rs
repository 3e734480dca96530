//! Retention: delete data older than its category's retention period, except what a hold
//! keeps, and record what was deleted (counts, never data) in the audit log.
//!
//! - IP events (categories `identification` and `ip_history`) are kept for the longer of the
//!   two periods. On PostgreSQL, whole monthly partitions past the cutoff are dropped when no
//!   active hold reaches into them; otherwise rows are deleted one by one, sparing held ones.
//! - Identifier intervals (category `subscriber`) that ended before the cutoff are deleted.
//! - Registration IP addresses older than the IP period are cleared from their accounts.
//! - Account rows themselves stay (id, status, creation time): they hold no identifier once
//!   their history is gone.

use chrono::Utc;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::MetadataError;
use super::store::partition_for;
use crate::audit::{self, Actor, NewEntry};
use crate::db::{self, DbConn, write_tx};
use crate::settings::RetentionSettings;

const DAY: i64 = 24 * 3600 * 1_000_000;

/// What a retention run deleted or kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Whether it only counted.
    pub dry_run: bool,
    /// IP events deleted (or that would be).
    pub ip_events_deleted: u64,
    /// Of those, the ones in dropped partitions (PostgreSQL).
    pub partitions_dropped: u64,
    /// Expired IP events kept because a hold covers them.
    pub ip_events_held: u64,
    /// Identifier intervals deleted (or that would be).
    pub identifiers_deleted: u64,
    /// Expired identifier intervals kept because a hold covers them.
    pub identifiers_held: u64,
    /// Registration IP addresses older than the IP retention period, cleared from accounts.
    pub registration_ips_cleared: u64,
}

// An IP event answers ip_history and identification requests, and also subscriber requests
// with an IP target ("who used this address then?"), so holds of any of the three keep it.
const EVENT_HELD: &str = "EXISTS (SELECT 1 FROM holds h WHERE h.account_id = ip_events.account_id \
     AND h.expires_at > $2 AND h.data_from <= ip_events.at AND ip_events.at < h.data_to \
     AND (h.categories LIKE '%ip_history%' OR h.categories LIKE '%identification%' OR h.categories LIKE '%subscriber%'))";
const REGISTRATION_HELD: &str = "EXISTS (SELECT 1 FROM holds h WHERE h.account_id = accounts.id \
     AND h.expires_at > $2 AND h.data_from <= accounts.created_at AND accounts.created_at < h.data_to \
     AND h.categories LIKE '%subscriber%')";
const IDENT_HELD: &str = "EXISTS (SELECT 1 FROM holds h WHERE h.account_id = account_identifiers.account_id \
     AND h.expires_at > $2 AND h.categories LIKE '%subscriber%' \
     AND h.data_from < account_identifiers.valid_to AND account_identifiers.valid_from < h.data_to)";

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(conn: &mut DbConn, sql: &str, a: i64, b: i64) -> Result<u64, MetadataError> {
    let sql = db::statement(conn, sql);
    let rows: Vec<Count> = db::on_backend!(conn, |c| diesel::sql_query(sql.as_ref())
        .bind::<BigInt, _>(a)
        .bind::<BigInt, _>(b)
        .load(c))?;
    Ok(rows.first().map_or(0, |r| u64::try_from(r.n).unwrap_or(0)))
}

fn execute(conn: &mut DbConn, sql: &str, a: i64, b: i64) -> Result<u64, MetadataError> {
    let sql = db::statement(conn, sql);
    let n = db::on_backend!(conn, |c| diesel::sql_query(sql.as_ref())
        .bind::<BigInt, _>(a)
        .bind::<BigInt, _>(b)
        .execute(c))?;
    Ok(n as u64)
}

/// Drops whole expired monthly partitions that no active hold reaches into (PostgreSQL).
fn drop_partitions(
    conn: &mut DbConn,
    cutoff: i64,
    now: i64,
    dry_run: bool,
    report: &mut RetentionReport,
) -> Result<(), MetadataError> {
    // None on SQLite, which has no partitions: there rows are deleted one by one.
    let names = db::partitions::list(conn, "ip_events")?;
    for name in names {
        let Some(month) = name
            .strip_prefix("ip_events_p")
            .and_then(|m| m.parse::<u32>().ok())
        else {
            continue;
        };
        let (year, mon) = (i32::try_from(month / 100).unwrap_or(0), month % 100);
        let Some(start) =
            chrono::NaiveDate::from_ymd_opt(year, mon, 1).and_then(|d| d.and_hms_opt(0, 0, 0))
        else {
            continue;
        };
        let (canonical, from, to) = partition_for(start.and_utc().timestamp_micros());
        if canonical != name || to > cutoff {
            continue;
        }
        let sql = db::statement(
            conn,
            "SELECT count(*) AS n FROM holds h WHERE h.expires_at > $1 AND h.data_from < $2 AND $3 < h.data_to \
             AND (h.categories LIKE '%ip_history%' OR h.categories LIKE '%identification%')",
        );
        let held: Vec<Count> = db::on_backend!(conn, |c| diesel::sql_query(sql.as_ref())
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(to)
            .bind::<BigInt, _>(from)
            .load(c))?;
        if held.first().is_some_and(|h| h.n > 0) {
            continue; // rows of this month are deleted one by one, sparing held ones
        }
        let rows = db::partitions::rows(conn, &name)?;
        if !dry_run {
            db::partitions::drop(conn, &name)?;
        }
        report.partitions_dropped += 1;
        // A dry run leaves the partition in place, where the row count below finds its rows.
        if !dry_run {
            report.ip_events_deleted += rows;
        }
    }
    Ok(())
}

/// Runs retention as of `now` (UTC microseconds). With `dry_run`, only counts.
pub fn run(
    conn: &mut DbConn,
    settings: &RetentionSettings,
    now: i64,
    dry_run: bool,
    actor: &Actor,
) -> Result<RetentionReport, MetadataError> {
    let days = |d: u32| i64::from(d) * DAY;
    let event_cutoff = now - days(settings.ip_history_days.max(settings.identification_days));
    let ident_cutoff = now - days(settings.subscriber_days);
    write_tx(conn, |c| {
        // Orders hold their targets by identifier from receipt; until a hold has reached the
        // accounts, nothing may be purged (`writ retention run` resolves them first).
        let pending: i64 = {
            use crate::db::schema::target_holds;
            target_holds::table
                .filter(target_holds::resolved_at.is_null())
                .filter(target_holds::released_at.is_null())
                .count()
                .get_result(c)?
        };
        if pending > 0 && !dry_run {
            return Err(MetadataError::Invalid(format!(
                "{pending} order hold(s) are not yet resolved to accounts; nothing was deleted (run again)"
            )));
        }
        let mut report = RetentionReport {
            dry_run,
            ..RetentionReport::default()
        };
        drop_partitions(c, event_cutoff, now, dry_run, &mut report)?;
        report.ip_events_held = count(
            c,
            &format!("SELECT count(*) AS n FROM ip_events WHERE at < $1 AND {EVENT_HELD}"),
            event_cutoff,
            now,
        )?;
        report.identifiers_held = count(
            c,
            &format!(
                "SELECT count(*) AS n FROM account_identifiers WHERE valid_to IS NOT NULL AND valid_to < $1 AND {IDENT_HELD}"
            ),
            ident_cutoff,
            now,
        )?;
        let registration = format!(
            "accounts WHERE registration_ip IS NOT NULL AND created_at < $1 AND NOT {REGISTRATION_HELD}"
        );
        report.registration_ips_cleared = if dry_run {
            count(
                c,
                &format!("SELECT count(*) AS n FROM {registration}"),
                event_cutoff,
                now,
            )?
        } else {
            execute(
                c,
                &format!(
                    "UPDATE accounts SET registration_ip = NULL WHERE id IN (SELECT id FROM {registration})"
                ),
                event_cutoff,
                now,
            )?
        };
        if dry_run {
            report.ip_events_deleted += count(
                c,
                &format!("SELECT count(*) AS n FROM ip_events WHERE at < $1 AND NOT {EVENT_HELD}"),
                event_cutoff,
                now,
            )?;
            report.identifiers_deleted += count(
                c,
                &format!(
                    "SELECT count(*) AS n FROM account_identifiers WHERE valid_to IS NOT NULL AND valid_to < $1 AND NOT {IDENT_HELD}"
                ),
                ident_cutoff,
                now,
            )?;
        } else {
            report.ip_events_deleted += execute(
                c,
                &format!("DELETE FROM ip_events WHERE at < $1 AND NOT {EVENT_HELD}"),
                event_cutoff,
                now,
            )?;
            report.identifiers_deleted += execute(
                c,
                &format!(
                    "DELETE FROM account_identifiers WHERE valid_to IS NOT NULL AND valid_to < $1 AND NOT {IDENT_HELD}"
                ),
                ident_cutoff,
                now,
            )?;
        }
        if !dry_run {
            let entry = NewEntry::new(actor.clone(), audit::Event::MetadataRetentionRun)
                .reference("ip_events_deleted", report.ip_events_deleted)
                .reference("partitions_dropped", report.partitions_dropped)
                .reference("ip_events_held", report.ip_events_held)
                .reference("identifiers_deleted", report.identifiers_deleted)
                .reference("identifiers_held", report.identifiers_held)
                .reference("registration_ips_cleared", report.registration_ips_cleared)
                .reference(
                    "ip_events_cutoff",
                    super::normalize::from_micros(event_cutoff).to_rfc3339(),
                )
                .reference(
                    "identifiers_cutoff",
                    super::normalize::from_micros(ident_cutoff).to_rfc3339(),
                );
            audit::append(c, &entry, Utc::now())?;
        }
        Ok(report)
    })
}
