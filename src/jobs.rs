//! Background work of every instance, run on a timer by `serve`: resolving pending holds,
//! summarising failed authentications, purging expired idempotency keys and released packages,
//! mailing checkpoints to the auditors, and deadline and task reminders.
//!
//! Instances may run these at once: each claims its work with a conditional write or takes the
//! database's write lock for its batch. (HI-1 deliveries and the mail outbox have their own
//! senders: `etsi::deliver::run` and `mail::run_sender`.)

use chrono::Utc;
use diesel::prelude::*;

use crate::audit::AuditError;
use crate::db::schema::orders;
use crate::db::{DbConn, DbError};
use crate::metadata::normalize;
use crate::orders::{OrderError, OrderStatus, approval, holds, intake, tasks};

/// Why a run of the background jobs failed; the run is retried on the next tick.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A step of the order workflow failed.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// The audit log refused an entry.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Reminds the legal team once of every open order due within `within`; returns how many.
pub fn remind_deadlines(
    conn: &mut DbConn,
    mail: &crate::settings::MailSettings,
    within: chrono::Duration,
    now: chrono::DateTime<Utc>,
) -> Result<usize, OrderError> {
    if mail.legal_team.is_empty() {
        return Ok(0);
    }
    let horizon = (now + within).timestamp_micros();
    crate::db::write_tx(conn, |c| {
        let due: Vec<(String, String, i64)> = orders::table
            .filter(orders::status.eq_any([
                OrderStatus::UnderReview.as_str(),
                OrderStatus::AwaitingClarification.as_str(),
                OrderStatus::Approved.as_str(),
            ]))
            .filter(orders::deadline_at.le(horizon))
            .filter(orders::reminded_at.is_null())
            .select((
                orders::id,
                orders::reference,
                orders::deadline_at.assume_not_null(),
            ))
            // Soonest first: with more than a run's worth due, the nearest deadlines go out first.
            .order((orders::deadline_at.asc(), orders::id.asc()))
            .limit(100)
            .load(c)?;
        for (id, reference, deadline) in &due {
            // Claimed by a conditional update: of several instances, one reminds.
            let claimed = diesel::update(
                orders::table
                    .filter(orders::id.eq(id))
                    .filter(orders::reminded_at.is_null()),
            )
            .set(orders::reminded_at.eq(Some(now.timestamp_micros())))
            .execute(c)?;
            if claimed == 1 {
                crate::mail::notify(
                    c,
                    mail,
                    crate::mail::Recipients::LegalTeam,
                    &crate::mail::Notice::DeadlineReminder {
                        order_id: id.clone(),
                        reference: reference.clone(),
                        due: normalize::from_micros(*deadline),
                    },
                    now,
                );
            }
        }
        Ok(due.len())
    })
}

/// Queues one notice to the auditors per new signed checkpoint. Claiming the checkpoint is a
/// conditional update of `writ_meta`, so of several instances exactly one queues it.
pub fn push_checkpoint(
    conn: &mut DbConn,
    mail: &crate::settings::MailSettings,
    now: chrono::DateTime<Utc>,
) -> Result<bool, OrderError> {
    use crate::db::schema::{audit_checkpoints, writ_meta};
    if mail.auditors.is_empty() {
        return Ok(false);
    }
    crate::db::write_tx(conn, |c| {
        let latest: Option<(String, i64, Vec<u8>, String)> = audit_checkpoints::table
            .order(audit_checkpoints::size.desc())
            .select((
                audit_checkpoints::origin,
                audit_checkpoints::size,
                audit_checkpoints::root,
                audit_checkpoints::note,
            ))
            .first(c)
            .optional()?;
        let Some((origin, size, root, note)) = latest else {
            return Ok(false);
        };
        const KEY: &str = "mail.checkpoint_size";
        let known: Option<String> = writ_meta::table
            .find(KEY)
            .select(writ_meta::value)
            .first(c)
            .optional()?;
        // Claimed by a conditional write: of several instances, one sends each checkpoint.
        let claimed = match known {
            None => usize::from(crate::db::meta::insert_new(c, KEY, &size.to_string())?),
            Some(v) if v.parse::<i64>().unwrap_or(0) < size => diesel::update(
                writ_meta::table
                    .filter(writ_meta::key.eq(KEY))
                    .filter(writ_meta::value.eq(&v)),
            )
            .set(writ_meta::value.eq(size.to_string()))
            .execute(c)?,
            Some(_) => 0,
        };
        if claimed == 0 {
            return Ok(false);
        }
        crate::mail::notify(
            c,
            mail,
            crate::mail::Recipients::Auditors,
            &crate::mail::Notice::Checkpoint {
                origin,
                size: u64::try_from(size).unwrap_or(0),
                root_hash: hex::encode(root),
                note,
            },
            now,
        );
        Ok(true)
    })
}

/// The background jobs of every instance: resolving pending holds to accounts and writing the
/// closed windows of failed authentications to the audit log. Runs until the task is aborted;
/// a failure is logged and retried on the next tick (instances may run it at once: both jobs
/// take the database's write lock for each batch).
pub async fn run_jobs(
    db: crate::db::Db,
    interval: std::time::Duration,
    package_days: u32,
    mail: crate::settings::MailSettings,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mail = mail.clone();
        let result = db
            .run(move |conn| {
                let now = Utc::now();
                let holds = holds::resolve_all(conn, now)?;
                crate::orders::eevidence::confirm_preserved(conn, now)?;
                let summaries = crate::authority::throttle::summarise_failures(conn, now)?;
                intake::purge_idempotency_keys(conn, now - chrono::Duration::days(7))
                    .map_err(DbError::Query)?;
                let deleted = approval::purge_released(conn, package_days, now)?;
                push_checkpoint(conn, &mail, now)?;
                remind_deadlines(conn, &mail, chrono::Duration::hours(24), now)?;
                tasks::expire_holds(conn, now)?;
                tasks::remind_tasks(conn, &mail, chrono::Duration::hours(24), now)?;
                crate::orders::desk::notify_deadlines_near(conn, chrono::Duration::hours(24), now)?;
                crate::orders::desk::mail_notifications(conn, &mail, now)?;
                Ok::<_, JobError>((holds, summaries + deleted))
            })
            .await;
        match result {
            Ok((0, 0)) => {}
            Ok((holds, summaries)) => {
                tracing::info!(holds, summaries, "background jobs ran");
            }
            Err(e) => tracing::warn!(error = %e, "background jobs failed; retrying later"),
        }
    }
}
