//! Outgoing e-mail: notices to the legal team, to authorities and to auditors, through an
//! outbox.
//!
//! A workflow step calls [`enqueue`] inside its own transaction: the notice becomes one
//! `mail_outbox` row that commits (or rolls back) with the step. A background job
//! ([`run_sender`]) later calls [`send_due`], which delivers due rows through the configured
//! transport (`.eml` files or SMTP). A relay that is down therefore never blocks or undoes a
//! workflow step; the message is retried with a doubling delay and, after
//! `mail.max_attempts`, marked `failed`, visible through [`list`] and requeued by [`retry`].
//!
//! What a message may say and to whom:
//! - bodies carry order ids, references, instruments, deadlines and the path to open, never a
//!   target identifier or any data about a user ([`Notice`] has no field that could hold one);
//! - notices to an authority go only to the contacts in its registry entry, never to an
//!   address taken from an order, only about that authority's own orders, and nothing goes to
//!   a suspended authority;
//! - workspace notices (new orders, reminders, checkpoints) never go to an authority.
//!
//! Sending, step by step. A sender *claims* one due row in a short transaction: the row becomes
//! `sending`, its attempt is counted, and its `next_attempt_at` becomes the end of a lease
//! ([`LEASE`]). The claim commits, the message is delivered with no transaction open, and the
//! outcome is recorded in a second short transaction, only if the lease is still the sender's.
//! On PostgreSQL the claim reads with `FOR UPDATE SKIP LOCKED`, so instances sharing the
//! database claim different rows; on SQLite the claim's `BEGIN IMMEDIATE` serialises senders.
//! A sender that dies mid-delivery leaves a `sending` row whose lease expires; the row is then
//! claimed again (at-least-once delivery: the Message-ID is stable, so receivers can tell a
//! repeat), or marked `failed` if its attempts are used up.
//!
//! Logs name the message id, its kind and the outcome only: never an address, a subject or a
//! body.
//!
//! [`webhook`] is the same outbox for signed webhooks: the user notice to the provider's own
//! messaging system and the on-call page of an emergency order.

mod templates;
mod transport;
pub mod webhook;

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use lettre::message::Mailbox;
use serde::Serialize;

use crate::db::schema::{authorities, mail_outbox, orders};
use crate::db::{Db, DbConn, DbError, in_transaction, write_tx};
use crate::settings::MailSettings;

pub use templates::Rendered;

/// How long a claimed message is the claiming sender's before another sender may take it over.
/// Far above what one delivery can take ([`transport::SMTP_TIMEOUT`] per network operation).
pub const LEASE: Duration = Duration::from_secs(15 * 60);
/// Messages one [`send_due`] call delivers at most.
pub const BATCH: usize = 50;
/// The longest delay between two attempts, whatever the backoff doubling reaches.
const MAX_BACKOFF_SECS: u64 = 24 * 3600;
/// Most recipients of one message.
const MAX_RECIPIENTS: usize = 50;
/// Longest recipient list, comma-separated (the column's CHECK).
const MAX_RECIPIENTS_LEN: usize = 4000;
/// Every status a message can have.
pub const STATUSES: [&str; 4] = ["queued", "sending", "sent", "failed"];

/// Errors of the mail module. Messages never contain an address or a message body.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A configured or registered address is not a usable e-mail address.
    #[error("{0}")]
    InvalidAddress(String),
    /// The notice may not go to these recipients.
    #[error("{0}")]
    WrongRecipients(String),
    /// No such authority, order or message.
    #[error("{0}")]
    NotFound(String),
    /// The request does not fit the message's state.
    #[error("{0}")]
    Conflict(String),
    /// Bad input (an unknown status filter, a notice too large).
    #[error("{0}")]
    Invalid(String),
    /// A template failed to render.
    #[error("e-mail template: {0}")]
    Template(String),
    /// [`send_due`] was called inside a transaction: it must commit its claims before it sends.
    #[error("mail is sent outside any transaction; send_due was called inside one")]
    InTransaction,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The audit log refused the entry.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

impl From<diesel::result::Error> for MailError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

/// Who a notice goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipients<'a> {
    /// The provider's legal team (`mail.legal_team`).
    LegalTeam,
    /// The auditors (`mail.auditors`).
    Auditors,
    /// An authority, by registry id: its registered contacts, and no other address.
    Authority(&'a str),
    /// One colleague, at the address they gave for their own notifications.
    Colleague(&'a str),
}

/// What a message says. No variant has room for a target identifier or user data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// To the legal team: an order arrived.
    NewOrder {
        /// Writ's order id.
        order_id: String,
        /// The authority's reference.
        reference: String,
        /// The instrument id.
        instrument: String,
        /// The authority claims an emergency: marked `[EMERGENCY]` and sent first.
        emergency: bool,
        /// The reply deadline, if the order has one.
        deadline: Option<DateTime<Utc>>,
    },
    /// To the legal team: an order's deadline is near.
    DeadlineReminder {
        /// Writ's order id.
        order_id: String,
        /// The authority's reference.
        reference: String,
        /// When the reply is due.
        due: DateTime<Utc>,
    },
    /// To the legal team: a task with its own clock (an ex-post validation, the end of a
    /// preservation hold) is near.
    TaskReminder {
        /// Writ's order id.
        order_id: String,
        /// The authority's reference.
        reference: String,
        /// The task, for people ("ex-post validation", "preservation hold ends").
        task: String,
        /// When it is due.
        due: DateTime<Utc>,
    },
    /// To the authority: a question about its order awaits it in the API (the e-mail does not
    /// carry the question).
    ClarificationRequested {
        /// Writ's order id.
        order_id: String,
        /// The authority's reference.
        reference: String,
    },
    /// To the authority: the response to its order can be fetched from the API.
    ResponseReady {
        /// Writ's order id.
        order_id: String,
        /// The authority's reference.
        reference: String,
    },
    /// To the authority: the provider holds no data the order reaches (an explicit "data not
    /// held" reply, e.g. Annex III on EU orders, or a released package with no records).
    NoDataHeld {
        /// Writ's order id.
        order_id: String,
        /// The authority's reference.
        reference: String,
        /// The reply, written by the legal team (or Writ's standard words; never user data).
        text: String,
    },
    /// To the authority: a reasoned refusal (the provider cannot comply).
    Refusal {
        /// Writ's order id.
        order_id: String,
        /// The authority's reference.
        reference: String,
        /// The reasons, written by the legal team for the authority (never user data).
        reason: String,
    },
    /// To one colleague: something about an order assigned to them (assigned, the authority
    /// replied, the deadline is near).
    Colleague {
        /// Writ's order id.
        order_id: String,
        /// The authority's reference.
        reference: String,
        /// What happened, for people ("Assigned to you by Rita").
        what: String,
    },
    /// To the auditors: a new signed checkpoint of the audit log.
    Checkpoint {
        /// The log's origin.
        origin: String,
        /// The tree size.
        size: u64,
        /// The root hash (hex or base64, as the caller shows it).
        root_hash: String,
        /// The signed note, verbatim.
        note: String,
    },
    /// To the auditors: the scheduled full verification of the audit log failed.
    AuditVerificationFailed {
        /// The log's origin.
        origin: String,
        /// What the verification found (positions and reasons, never entry contents).
        problem: String,
    },
}

impl Notice {
    /// The kind stored in `mail_outbox.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NewOrder { .. } => "new_order",
            Self::DeadlineReminder { .. } => "deadline_reminder",
            // Stored under the reminders' kind, so the outbox schema needs no change.
            Self::TaskReminder { .. } | Self::Colleague { .. } => "task_reminder",
            Self::ClarificationRequested { .. } => "clarification_requested",
            // Stored under the response kind, so the outbox schema needs no change.
            Self::ResponseReady { .. } | Self::NoDataHeld { .. } => "response_ready",
            Self::Refusal { .. } => "refusal",
            // Stored under the auditors' audit-log kind, so the outbox schema needs no change.
            Self::Checkpoint { .. } | Self::AuditVerificationFailed { .. } => "checkpoint",
        }
    }

    /// The order concerned, if any.
    pub fn order_id(&self) -> Option<&str> {
        match self {
            Self::NewOrder { order_id, .. }
            | Self::DeadlineReminder { order_id, .. }
            | Self::TaskReminder { order_id, .. }
            | Self::Colleague { order_id, .. }
            | Self::ClarificationRequested { order_id, .. }
            | Self::ResponseReady { order_id, .. }
            | Self::NoDataHeld { order_id, .. }
            | Self::Refusal { order_id, .. } => Some(order_id),
            Self::Checkpoint { .. } | Self::AuditVerificationFailed { .. } => None,
        }
    }

    /// Whether the notice is meant for an authority (as opposed to the provider's own people).
    pub fn is_for_authority(&self) -> bool {
        matches!(
            self,
            Self::ClarificationRequested { .. }
                | Self::ResponseReady { .. }
                | Self::NoDataHeld { .. }
                | Self::Refusal { .. }
        )
    }

    /// An emergency: listed and sent before anything else.
    pub fn is_urgent(&self) -> bool {
        matches!(
            self,
            Self::NewOrder {
                emergency: true,
                ..
            }
        )
    }

    /// The subject and body this notice renders to.
    pub fn render(&self) -> Result<Rendered, MailError> {
        templates::render(self)
    }
}

/// A message in the outbox, as the workspace lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable)]
#[diesel(table_name = mail_outbox)]
pub struct OutboxMessage {
    /// Sequence.
    pub id: i64,
    /// The notice kind, e.g. `new_order`.
    pub kind: String,
    /// Comma-separated recipient addresses.
    pub recipients: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// The order concerned, if any.
    pub order_id: Option<String>,
    /// An emergency.
    pub urgent: bool,
    /// `queued`, `sending`, `sent` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// When the next attempt is due (for `sending`, when the sender's lease ends), UTC
    /// microseconds.
    pub next_attempt_at: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When queued, UTC microseconds.
    pub created_at: i64,
    /// When sent.
    pub sent_at: Option<i64>,
}

/// What one [`send_due`] run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SendReport {
    /// Messages claimed for delivery.
    pub claimed: usize,
    /// Delivered.
    pub sent: usize,
    /// Failed and queued again for a later attempt.
    pub retrying: usize,
    /// Given up on (attempts used up, or a message that cannot be built): now `failed`.
    pub failed: usize,
}

/// Whether `address` is a plain e-mail address Writ can send to (`local@domain.tld`, no display
/// name, and lettre accepts it). The one check: the authority registry uses it for contacts,
/// and the outbox for every recipient.
pub fn is_sendable_address(address: &str) -> bool {
    address.len() <= 254
        && address.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == '<' || c == '>')
        && address.parse::<lettre::Address>().is_ok()
}

/// The checked, de-duplicated addresses of a list. `what` names the list in errors; the
/// address itself is never echoed (it is personal data, and errors reach logs).
fn checked<'a>(
    addresses: impl IntoIterator<Item = &'a str>,
    what: &str,
) -> Result<Vec<String>, MailError> {
    let mut out: Vec<String> = Vec::new();
    for (i, address) in addresses.into_iter().enumerate() {
        let address = address.trim();
        if address.is_empty() {
            continue;
        }
        if !is_sendable_address(address) {
            return Err(MailError::InvalidAddress(format!(
                "address {} of {what} is not a valid e-mail address",
                i + 1
            )));
        }
        if !out.iter().any(|a| a.eq_ignore_ascii_case(address)) {
            out.push(address.to_owned());
        }
    }
    if out.len() > MAX_RECIPIENTS {
        return Err(MailError::Invalid(format!(
            "{what} has {} addresses; at most {MAX_RECIPIENTS} are allowed",
            out.len()
        )));
    }
    Ok(out)
}

/// Queues a notice inside the caller's transaction (one outbox row); `Ok(None)` when there is
/// nobody to send to (an empty `legal_team` or `auditors`, a suspended authority).
///
/// It runs as a savepoint of the caller's transaction (or its own transaction when there is
/// none), so a caller may log an error from here and still commit its workflow step.
#[tracing::instrument(name = "mail.enqueue", skip_all, fields(mail.kind = notice.kind()))]
pub fn enqueue(
    conn: &mut DbConn,
    settings: &MailSettings,
    to: Recipients<'_>,
    notice: &Notice,
    now: DateTime<Utc>,
) -> Result<Option<i64>, MailError> {
    match (to, notice.is_for_authority()) {
        (Recipients::Authority(_), false) => {
            return Err(MailError::WrongRecipients(format!(
                "a `{}` notice is for the provider's own people, never for an authority",
                notice.kind()
            )));
        }
        (Recipients::LegalTeam | Recipients::Auditors | Recipients::Colleague(_), true) => {
            return Err(MailError::WrongRecipients(format!(
                "a `{}` notice goes to the authority that sent the order",
                notice.kind()
            )));
        }
        _ => {}
    }
    let rendered = notice.render()?;
    let micros = now.timestamp_micros();
    write_tx(conn, |c| {
        let recipients = match to {
            Recipients::LegalTeam => checked(
                settings.legal_team.iter().map(String::as_str),
                "mail.legal_team",
            )?,
            Recipients::Auditors => checked(
                settings.auditors.iter().map(String::as_str),
                "mail.auditors",
            )?,
            Recipients::Colleague(address) => checked([address], "the colleague's address")?,
            Recipients::Authority(authority_id) => {
                let Some(contacts) = authority_contacts(c, authority_id)? else {
                    return Ok(None);
                };
                if let Some(order_id) = notice.order_id() {
                    check_order_of(c, order_id, authority_id)?;
                }
                checked(
                    contacts.split(','),
                    &format!("authority `{authority_id}`'s contacts"),
                )?
            }
        };
        if recipients.is_empty() {
            return Ok(None);
        }
        let recipients = recipients.join(",");
        if recipients.len() > MAX_RECIPIENTS_LEN {
            return Err(MailError::Invalid(format!(
                "the recipients of a `{}` notice exceed {MAX_RECIPIENTS_LEN} characters",
                notice.kind()
            )));
        }
        let row = (
            mail_outbox::kind.eq(notice.kind()),
            mail_outbox::recipients.eq(&recipients),
            mail_outbox::subject.eq(&rendered.subject),
            mail_outbox::body.eq(&rendered.body),
            mail_outbox::order_id.eq(notice.order_id()),
            mail_outbox::urgent.eq(notice.is_urgent()),
            mail_outbox::status.eq("queued"),
            mail_outbox::attempts.eq(0),
            mail_outbox::next_attempt_at.eq(micros),
            mail_outbox::created_at.eq(micros),
        );
        let id = crate::db::on_backend!(c, |b| diesel::insert_into(mail_outbox::table)
            .values(row)
            .returning(mail_outbox::id)
            .get_result::<i64>(b))?;
        tracing::info!(mail.id = id, mail.kind = notice.kind(), "mail queued");
        Ok(Some(id))
    })
}

/// An active authority's registered contacts; `None` when it is suspended.
fn authority_contacts(conn: &mut DbConn, authority_id: &str) -> Result<Option<String>, MailError> {
    let found: Option<(String, String)> = authorities::table
        .filter(authorities::id.eq(authority_id))
        .select((authorities::status, authorities::contacts))
        .first(conn)
        .optional()?;
    match found {
        None => Err(MailError::NotFound(format!(
            "no authority `{authority_id}`"
        ))),
        Some((status, _)) if status != "active" => Ok(None),
        Some((_, contacts)) => Ok(Some(contacts)),
    }
}

/// A notice about an order goes only to the authority that sent it.
fn check_order_of(conn: &mut DbConn, order_id: &str, authority_id: &str) -> Result<(), MailError> {
    let sender: Option<String> = orders::table
        .filter(orders::id.eq(order_id))
        .select(orders::authority_id)
        .first(conn)
        .optional()?;
    match sender {
        None => Err(MailError::NotFound(format!("no order `{order_id}`"))),
        Some(s) if s != authority_id => Err(MailError::WrongRecipients(format!(
            "order `{order_id}` was not sent by authority `{authority_id}`"
        ))),
        Some(_) => Ok(()),
    }
}

/// Sends due messages (one batch of at most [`BATCH`]); used by the job and by tests.
///
/// Must be called outside any transaction: each claim commits before its delivery starts.
/// A delivery failure is recorded on the message, not returned; an `Err` means the database
/// (or the `mail.from` setting) failed and the remaining messages wait for the next run.
#[tracing::instrument(name = "mail.send_due", skip_all)]
pub fn send_due(
    conn: &mut DbConn,
    settings: &MailSettings,
    now: DateTime<Utc>,
) -> Result<SendReport, MailError> {
    if in_transaction(conn)? {
        return Err(MailError::InTransaction);
    }
    let from: Mailbox =
        settings.from.trim().parse().map_err(|_| {
            MailError::InvalidAddress("mail.from is not a valid e-mail address".into())
        })?;
    let mut report = SendReport::default();
    let mut sender: Option<transport::Sender> = None;
    while report.claimed < BATCH {
        let Some(msg) = claim_next(conn, settings, now, &mut report)? else {
            break;
        };
        report.claimed += 1;
        let outcome =
            transport::Sender::reuse(&mut sender, settings).and_then(|s| s.deliver(&from, &msg));
        record(conn, settings, &msg, outcome, now, &mut report)?;
    }
    Ok(report)
}

/// Claims the most urgent due message, or `None` when nothing is due. Expired leases whose
/// attempts are used up are marked `failed` on the way.
fn claim_next(
    conn: &mut DbConn,
    settings: &MailSettings,
    now: DateTime<Utc>,
    report: &mut SendReport,
) -> Result<Option<OutboxMessage>, MailError> {
    let micros = now.timestamp_micros();
    let lease_end = micros.saturating_add(micros_of(LEASE.as_secs()));
    let max_attempts = max_attempts(settings);
    write_tx(conn, |c| {
        loop {
            let query = mail_outbox::table
                .filter(
                    mail_outbox::status
                        .eq("queued")
                        .or(mail_outbox::status.eq("sending")),
                )
                .filter(mail_outbox::next_attempt_at.le(micros))
                .order((
                    mail_outbox::urgent.desc(),
                    mail_outbox::next_attempt_at,
                    mail_outbox::id,
                ))
                .limit(1)
                // All columns in table order (the struct's order) rather than `as_select`,
                // which would tie the query to one backend before the match below.
                .select(mail_outbox::all_columns);
            // SQLite's write transaction already excludes other senders; on PostgreSQL each
            // instance takes a row no other instance is claiming.
            let due: Vec<OutboxMessage> = crate::db::locks::load_skip_locked!(c, query)?;
            let Some(mut msg) = due.into_iter().next() else {
                return Ok(None);
            };
            if msg.status == "sending" && msg.attempts >= max_attempts {
                diesel::update(mail_outbox::table.find(msg.id))
                    .set((
                        mail_outbox::status.eq("failed"),
                        mail_outbox::next_attempt_at.eq(micros),
                        mail_outbox::last_error.eq(Some(
                            "the sender stopped during the last attempt (lease expired)",
                        )),
                    ))
                    .execute(c)?;
                tracing::warn!(mail.id = msg.id, mail.kind = %msg.kind, outcome = "failed", error.class = "lease-expired", "mail not sent");
                report.failed += 1;
                continue;
            }
            if msg.status == "sending" {
                tracing::warn!(mail.id = msg.id, mail.kind = %msg.kind, "mail lease expired; sending again");
            }
            msg.attempts = msg.attempts.saturating_add(1);
            msg.status = "sending".into();
            msg.next_attempt_at = lease_end;
            diesel::update(mail_outbox::table.find(msg.id))
                .set((
                    mail_outbox::status.eq("sending"),
                    mail_outbox::attempts.eq(msg.attempts),
                    mail_outbox::next_attempt_at.eq(lease_end),
                ))
                .execute(c)?;
            return Ok(Some(msg));
        }
    })
}

/// Records a delivery's outcome, if the message is still this sender's (its lease unchanged).
fn record(
    conn: &mut DbConn,
    settings: &MailSettings,
    msg: &OutboxMessage,
    outcome: Result<(), transport::Failure>,
    now: DateTime<Utc>,
    report: &mut SendReport,
) -> Result<(), MailError> {
    let micros = now.timestamp_micros();
    let mine = mail_outbox::table
        .filter(mail_outbox::id.eq(msg.id))
        .filter(mail_outbox::status.eq("sending"))
        .filter(mail_outbox::next_attempt_at.eq(msg.next_attempt_at));
    let (updated, outcome_name) = match outcome {
        Ok(()) => {
            let n = write_tx(conn, |c| {
                diesel::update(mine)
                    .set((
                        mail_outbox::status.eq("sent"),
                        mail_outbox::sent_at.eq(Some(micros)),
                        mail_outbox::last_error.eq(None::<String>),
                    ))
                    .execute(c)
            })?;
            report.sent += 1;
            tracing::info!(mail.id = msg.id, mail.kind = %msg.kind, outcome = "sent", "mail sent");
            (n, "sent")
        }
        Err(failure) => {
            let give_up = failure.permanent || msg.attempts >= max_attempts(settings);
            let (status, next) = if give_up {
                ("failed", micros)
            } else {
                (
                    "queued",
                    micros.saturating_add(micros_of(backoff_secs(settings, msg.attempts))),
                )
            };
            let n = write_tx(conn, |c| {
                diesel::update(mine)
                    .set((
                        mail_outbox::status.eq(status),
                        mail_outbox::next_attempt_at.eq(next),
                        mail_outbox::last_error.eq(Some(&failure.detail)),
                    ))
                    .execute(c)
            })?;
            if give_up {
                report.failed += 1;
                tracing::warn!(mail.id = msg.id, mail.kind = %msg.kind, outcome = "failed", error.class = failure.class, attempts = msg.attempts, "mail not sent; giving up");
            } else {
                report.retrying += 1;
                tracing::warn!(mail.id = msg.id, mail.kind = %msg.kind, outcome = "retry", error.class = failure.class, attempts = msg.attempts, "mail not sent; will retry");
            }
            (n, status)
        }
    };
    if updated == 0 {
        tracing::warn!(mail.id = msg.id, mail.kind = %msg.kind, outcome = outcome_name, "mail outcome not recorded: the lease expired and another sender took the message over");
    }
    Ok(())
}

fn max_attempts(settings: &MailSettings) -> i32 {
    i32::try_from(settings.max_attempts.max(1)).unwrap_or(i32::MAX)
}

/// The delay after the `attempts`-th failure: `retry_backoff_secs * 2^(attempts-1)`, capped.
fn backoff_secs(settings: &MailSettings, attempts: i32) -> u64 {
    let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0);
    settings
        .retry_backoff_secs
        .saturating_mul(2_u64.saturating_pow(exponent))
        .min(MAX_BACKOFF_SECS)
}

fn micros_of(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX)
}

/// Lists messages for the workspace: emergencies first, then newest first; `status` filters
/// on one of [`STATUSES`]. `limit` is clamped to 1..=1000.
pub fn list(
    conn: &mut DbConn,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<OutboxMessage>, MailError> {
    let mut query = mail_outbox::table
        .select(OutboxMessage::as_select())
        .order((mail_outbox::urgent.desc(), mail_outbox::id.desc()))
        .limit(limit.clamp(1, 1000))
        .into_boxed();
    if let Some(status) = status {
        if !STATUSES.contains(&status) {
            return Err(MailError::Invalid(format!(
                "status `{status}` is not one of {}",
                STATUSES.join(", ")
            )));
        }
        query = query.filter(mail_outbox::status.eq(status));
    }
    Ok(query.load(conn)?)
}

/// Puts a failed message back in the queue, due at `now`, with its attempts reset; `actor`'s
/// retry is audited in the same transaction.
#[tracing::instrument(name = "mail.retry", skip(conn, actor, now))]
pub fn retry(
    conn: &mut DbConn,
    actor: &crate::audit::Actor,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(), MailError> {
    write_tx(conn, |c| {
        let status: Option<String> = mail_outbox::table
            .find(id)
            .select(mail_outbox::status)
            .first(c)
            .optional()?;
        match status.as_deref() {
            None => return Err(MailError::NotFound(format!("no message {id}"))),
            Some("failed") => {}
            Some(other) => {
                return Err(MailError::Conflict(format!(
                    "message {id} is {other}; only a failed message can be retried"
                )));
            }
        }
        diesel::update(
            mail_outbox::table
                .find(id)
                .filter(mail_outbox::status.eq("failed")),
        )
        .set((
            mail_outbox::status.eq("queued"),
            mail_outbox::attempts.eq(0),
            mail_outbox::next_attempt_at.eq(now.timestamp_micros()),
        ))
        .execute(c)?;
        let entry = crate::audit::NewEntry::new(actor.clone(), crate::audit::Event::MailRetried)
            .reference("message", u64::try_from(id).unwrap_or(0));
        crate::audit::append(c, &entry, now)?;
        tracing::info!(mail.id = id, outcome = "requeued", "mail requeued by hand");
        Ok(())
    })
}

/// Sends due mail every `interval` until the task is aborted. A run that fills its batch is
/// followed at once by another. Failures are logged, never fatal.
pub async fn run_sender(db: Db, settings: MailSettings, interval: Duration) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(100)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        loop {
            let s = settings.clone();
            match db.run(move |conn| send_due(conn, &s, Utc::now())).await {
                Ok(report) => {
                    if report.claimed > 0 {
                        tracing::info!(
                            mail.sent = report.sent,
                            mail.retrying = report.retrying,
                            mail.failed = report.failed,
                            "mail run"
                        );
                    }
                    if report.claimed < BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "mail run failed; will try again");
                    break;
                }
            }
        }
    }
}

/// Queues a notice (see [`enqueue`]) for a workflow step that must not fail because of mail: an
/// error is logged (the kind and the reason, never an address) and the step goes on.
pub fn notify(
    conn: &mut DbConn,
    settings: &MailSettings,
    to: Recipients<'_>,
    notice: &Notice,
    now: DateTime<Utc>,
) {
    if let Err(e) = enqueue(conn, settings, to, notice, now) {
        tracing::warn!(
            mail.kind = notice.kind(),
            error = %e,
            "a notice could not be queued; the workflow step goes on"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_deduplicated() {
        assert!(is_sendable_address("legal@example.org"));
        assert!(!is_sendable_address("legal@localhost"));
        assert!(!is_sendable_address("Legal <legal@example.org>"));
        assert!(!is_sendable_address("a b@example.org"));
        let list = checked(
            ["a@example.org", " A@example.org ", "", "b@example.org"],
            "x",
        )
        .unwrap();
        assert_eq!(list, ["a@example.org", "b@example.org"]);
        let err = checked(["a@example.org", "nope"], "mail.legal_team").unwrap_err();
        assert_eq!(
            err.to_string(),
            "address 2 of mail.legal_team is not a valid e-mail address"
        );
    }
}
