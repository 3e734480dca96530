//! The legal team's desk on an order: assigning it to a colleague, internal notes (never sent
//! to the authority, audited), the "new reply" flag, the notifications these raise for the
//! colleague concerned (in the app at once, by e-mail through the outbox), and the audited
//! search by target identifier.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::review::{self, QueueFilter, QueuePage};
use super::{OrderError, OrderStatus, view};
use crate::audit::{self, NewEntry};
use crate::db::schema::{order_notes, orders, staff_notifications, staff_users};
use crate::db::{DbConn, write_tx};
use crate::metadata::normalize;
use crate::staff::Staff;
use crate::staff::desk::{self as staff_desk, NotificationKind};

/// Longest internal note.
pub const MAX_NOTE_CHARS: usize = 20_000;

fn invalid(field: &str, why: impl Into<String>) -> OrderError {
    OrderError::Invalid {
        kind: super::InvalidKind::Unprocessable,
        slug: "invalid-desk-action",
        title: "The request is not valid".into(),
        errors: vec![super::FieldError::new(field, why)],
        submission_id: None,
    }
}

/// Assigns the order to a colleague (an enabled reviewer or approver), or to nobody with
/// `None`; audited in the same transaction. The colleague is notified unless they assigned it
/// to themselves.
pub fn assign(
    conn: &mut DbConn,
    staff: &Staff,
    order_id: &str,
    assignee: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    write_tx(conn, |c| {
        let current = view(c, order_id, None)?;
        if let Some(who) = assignee
            && staff_desk::assignee(c, who)?.is_none()
        {
            return Err(invalid(
                "assignee",
                format!("`{who}` is not an enabled reviewer or approver"),
            ));
        }
        let before: Option<String> = orders::table
            .find(order_id)
            .select(orders::assigned_to)
            .first(c)?;
        if before.as_deref() == assignee {
            return Ok(());
        }
        diesel::update(orders::table.find(order_id))
            .set(orders::assigned_to.eq(assignee))
            .execute(c)?;
        let entry = NewEntry::new(staff.actor(), audit::Event::OrderAssigned)
            .order(order_id)
            .reference("assignee", assignee.unwrap_or(""));
        audit::append(c, &entry, now)?;
        if let Some(who) = assignee
            && who != staff.username
        {
            staff_desk::add_notification(
                c,
                who,
                Some(order_id),
                NotificationKind::Assigned,
                &format!(
                    "Order {} was assigned to you by {}",
                    current.reference, staff.display_name
                ),
                now,
            )?;
        }
        Ok(())
    })
}

/// An internal note on an order, as the order page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// Who wrote it (username).
    pub author: String,
    /// Their name.
    pub author_name: String,
    /// The text.
    pub text: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Adds an internal note (never sent to the authority), audited in the same transaction (the
/// entry holds the note's hash, not its text).
pub fn add_note(
    conn: &mut DbConn,
    staff: &Staff,
    order_id: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_NOTE_CHARS {
        return Err(invalid(
            "text",
            format!("a note is 1 to {MAX_NOTE_CHARS} characters"),
        ));
    }
    if text.contains('\0') {
        return Err(invalid("text", "must not contain NUL characters"));
    }
    write_tx(conn, |c| {
        view(c, order_id, None)?;
        let id = uuid::Uuid::new_v4().to_string();
        diesel::insert_into(order_notes::table)
            .values((
                order_notes::id.eq(&id),
                order_notes::order_id.eq(order_id),
                order_notes::author.eq(&staff.username),
                order_notes::body.eq(text),
                order_notes::created_at.eq(now.timestamp_micros()),
            ))
            .execute(c)?;
        let entry = NewEntry::new(staff.actor(), audit::Event::OrderNoteAdded)
            .order(order_id)
            .reference("note", id.as_str())
            .reference(
                "note_sha256",
                crate::digest::sha256_hex(text.as_bytes()).as_str(),
            );
        audit::append(c, &entry, now)?;
        Ok(())
    })
}

/// The internal notes of an order, oldest first, with their authors' names.
pub fn notes(conn: &mut DbConn, order_id: &str) -> Result<Vec<Note>, OrderError> {
    let rows: Vec<(String, String, String, i64)> = order_notes::table
        .inner_join(staff_users::table.on(staff_users::username.eq(order_notes::author)))
        .filter(order_notes::order_id.eq(order_id))
        .order((order_notes::created_at, order_notes::id))
        .select((
            order_notes::author,
            staff_users::display_name,
            order_notes::body,
            order_notes::created_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(author, author_name, text, at)| Note {
            author,
            author_name,
            text,
            created_at: normalize::from_micros(at),
        })
        .collect())
}

/// Who an order is assigned to (username) and whether the authority's latest reply is unread.
pub fn desk_state(conn: &mut DbConn, order_id: &str) -> Result<(Option<String>, bool), OrderError> {
    orders::table
        .find(order_id)
        .select((orders::assigned_to, orders::reply_unread))
        .first(conn)
        .optional()?
        .ok_or(OrderError::NotFound)
}

/// The authority wrote on an order (inside the caller's transaction): the order carries the
/// "new reply" flag until someone marks it read, and its assignee is notified.
pub(crate) fn authority_replied(
    conn: &mut DbConn,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    diesel::update(orders::table.find(order_id))
        .set((
            orders::reply_unread.eq(true),
            orders::replied_at.eq(Some(now.timestamp_micros())),
        ))
        .execute(conn)?;
    let (assignee, reference): (Option<String>, String) = orders::table
        .find(order_id)
        .select((orders::assigned_to, orders::reference))
        .first(conn)?;
    if let Some(who) = assignee {
        staff_desk::add_notification(
            conn,
            &who,
            Some(order_id),
            NotificationKind::ReplyReceived,
            &format!("The authority replied on order {reference}"),
            now,
        )?;
    }
    Ok(())
}

/// Clears the "new reply" flag: someone of the legal team read the reply.
pub fn mark_reply_read(conn: &mut DbConn, order_id: &str) -> Result<(), OrderError> {
    let changed = diesel::update(orders::table.find(order_id))
        .set(orders::reply_unread.eq(false))
        .execute(conn)?;
    if changed == 0 {
        return Err(OrderError::NotFound);
    }
    Ok(())
}

/// Notifies the assignee, once, of every open order assigned to them whose deadline falls
/// within `within`; returns how many were notified.
pub fn notify_deadlines_near(
    conn: &mut DbConn,
    within: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<usize, OrderError> {
    let horizon = (now + within).timestamp_micros();
    let due: Vec<(String, String, String, i64)> = orders::table
        .filter(orders::status.eq_any([
            OrderStatus::UnderReview.as_str(),
            OrderStatus::AwaitingClarification.as_str(),
            OrderStatus::Approved.as_str(),
        ]))
        .filter(orders::assigned_to.is_not_null())
        .filter(orders::deadline_at.le(horizon))
        .select((
            orders::id,
            orders::reference,
            orders::assigned_to.assume_not_null(),
            orders::deadline_at.assume_not_null(),
        ))
        .order((orders::deadline_at.asc(), orders::id.asc()))
        .limit(500)
        .load(conn)?;
    let mut notified = 0;
    for (id, reference, who, deadline) in due {
        // The check and the insert in one write transaction: of several instances, one
        // notifies (a unique index backs this up).
        let added = write_tx(conn, |c| {
            if staff_desk::has_notification(c, &who, &id, NotificationKind::DeadlineNear)? {
                return Ok::<_, OrderError>(false);
            }
            staff_desk::add_notification(
                c,
                &who,
                Some(&id),
                NotificationKind::DeadlineNear,
                &format!(
                    "The deadline of order {reference} is near: {}",
                    normalize::from_micros(deadline).format("%Y-%m-%d %H:%M UTC")
                ),
                now,
            )?;
            Ok(true)
        })?;
        notified += usize::from(added);
    }
    Ok(notified)
}

/// Queues an e-mail for every notification not mailed yet whose colleague gave an address;
/// returns how many were queued. Notifications of colleagues without an address are marked
/// handled too (they stay in the app).
pub fn mail_notifications(
    conn: &mut DbConn,
    mail: &crate::settings::MailSettings,
    now: DateTime<Utc>,
) -> Result<usize, OrderError> {
    write_tx(conn, |c| {
        type Pending = (String, Option<String>, String, Option<String>);
        let pending: Vec<Pending> = staff_notifications::table
            .inner_join(
                staff_users::table.on(staff_users::username.eq(staff_notifications::username)),
            )
            .filter(staff_notifications::mailed_at.is_null())
            .select((
                staff_notifications::id,
                staff_notifications::order_id,
                staff_notifications::body,
                staff_users::email,
            ))
            .order(staff_notifications::created_at)
            .limit(200)
            .load(c)?;
        let mut queued = 0;
        for (id, order_id, body, email) in pending {
            diesel::update(staff_notifications::table.find(&id))
                .set(staff_notifications::mailed_at.eq(Some(now.timestamp_micros())))
                .execute(c)?;
            let (Some(address), Some(order_id)) = (email, order_id) else {
                continue;
            };
            let reference: String = orders::table
                .find(&order_id)
                .select(orders::reference)
                .first(c)?;
            crate::mail::notify(
                c,
                mail,
                crate::mail::Recipients::Colleague(&address),
                &crate::mail::Notice::Colleague {
                    order_id,
                    reference,
                    what: body,
                },
                now,
            );
            queued += 1;
        }
        Ok(queued)
    })
}

/// The queue filtered by a target identifier (a user id, username, phone number or IP
/// address as the order gives it): audited, since it touches user data. The entry records the
/// identifier's hash and the number of orders found, never the identifier.
pub fn search_by_target(
    conn: &mut DbConn,
    staff: &Staff,
    filter: &QueueFilter,
    now: DateTime<Utc>,
) -> Result<QueuePage, OrderError> {
    write_tx(conn, |c| {
        let page = review::queue(c, filter, now)?;
        let identifier = filter.target.as_deref().unwrap_or_default();
        let entry = NewEntry::new(staff.actor(), audit::Event::OrdersSearchedByTarget)
            .reference(
                "identifier_sha256",
                crate::digest::sha256_hex(identifier.as_bytes()).as_str(),
            )
            .reference("found", u64::try_from(page.rows.len()).unwrap_or(0));
        audit::append(c, &entry, now)?;
        Ok(page)
    })
}

/// The registry ids of the authorities whose id or name contains `text` (any case) and, with
/// `country`, that are in that country (ISO 3166-1 alpha-2).
pub fn resolve_authorities(
    conn: &mut DbConn,
    text: Option<&str>,
    country: Option<&str>,
) -> Result<Vec<String>, OrderError> {
    use crate::db::schema::authorities;
    let mut q = authorities::table.select(authorities::id).into_boxed();
    if let Some(t) = text {
        let pattern = review::contains_pattern(&t.to_lowercase());
        q = q.filter(
            review::lower(authorities::name)
                .like(pattern.clone())
                .escape('\\')
                .or(review::lower(authorities::id).like(pattern).escape('\\')),
        );
    }
    if let Some(c) = country {
        q = q.filter(authorities::country.eq(c.to_uppercase()));
    }
    Ok(q.load(conn)?)
}

/// Who of the legal team wrote each of the provider's messages on an order (message id to
/// username), for the workspace; the authority's API never names them.
pub fn message_authors(
    conn: &mut DbConn,
    order_id: &str,
) -> Result<std::collections::HashMap<i64, String>, OrderError> {
    use crate::db::schema::order_messages;
    Ok(order_messages::table
        .filter(order_messages::order_id.eq(order_id))
        .filter(order_messages::sender.eq("provider"))
        .select((order_messages::id, order_messages::author))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect())
}
