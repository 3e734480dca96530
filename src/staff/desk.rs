//! A colleague's own corner of the workspace: notifications (the bell), saved queue filters,
//! personal settings (e-mail for notices, time zone), and the results of audited actions kept
//! for the session that ran them, so that a reload shows them without running them again
//! (post/redirect/get).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::{Role, StaffError, token_hash};
use crate::db::DbConn;
use crate::db::schema::{
    saved_filters, staff_notifications, staff_sessions, staff_users, workspace_results,
};
use crate::metadata::normalize;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// An order was assigned to the user.
    Assigned,
    /// The authority answered on an order assigned to the user.
    ReplyReceived,
    /// The deadline of an order assigned to the user is near.
    DeadlineNear,
}

impl NotificationKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assigned => "assigned",
            Self::ReplyReceived => "reply_received",
            Self::DeadlineNear => "deadline_near",
        }
    }
}

/// One notification, as the bell lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// Notification id.
    pub id: String,
    /// The order concerned.
    pub order_id: Option<String>,
    /// assigned, reply_received or deadline_near.
    pub kind: String,
    /// What it says (order references and dates, never user data).
    pub body: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Whether the user has seen it.
    pub read: bool,
}

/// Records a notification for `username` (inside the caller's transaction).
pub fn add_notification(
    conn: &mut DbConn,
    username: &str,
    order_id: Option<&str>,
    kind: NotificationKind,
    body: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let body: String = body.chars().take(500).collect();
    diesel::insert_into(staff_notifications::table)
        .values((
            staff_notifications::id.eq(uuid::Uuid::new_v4().to_string()),
            staff_notifications::username.eq(username),
            staff_notifications::order_id.eq(order_id),
            staff_notifications::kind.eq(kind.as_str()),
            staff_notifications::body.eq(body),
            staff_notifications::created_at.eq(now.timestamp_micros()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Whether `username` already has a notification of `kind` on `order_id`.
pub fn has_notification(
    conn: &mut DbConn,
    username: &str,
    order_id: &str,
    kind: NotificationKind,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        staff_notifications::table
            .filter(staff_notifications::username.eq(username))
            .filter(staff_notifications::order_id.eq(order_id))
            .filter(staff_notifications::kind.eq(kind.as_str())),
    ))
    .get_result(conn)
}

/// A notification row: id, order, kind, body, created, read.
type NotificationRow = (String, Option<String>, String, String, i64, Option<i64>);

/// The newest `limit` notifications of `username`.
pub fn notifications(
    conn: &mut DbConn,
    username: &str,
    limit: i64,
) -> QueryResult<Vec<Notification>> {
    let rows: Vec<NotificationRow> = staff_notifications::table
        .filter(staff_notifications::username.eq(username))
        .order((
            staff_notifications::created_at.desc(),
            staff_notifications::id.desc(),
        ))
        .select((
            staff_notifications::id,
            staff_notifications::order_id,
            staff_notifications::kind,
            staff_notifications::body,
            staff_notifications::created_at,
            staff_notifications::read_at,
        ))
        .limit(limit)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, order_id, kind, body, at, read_at)| Notification {
            id,
            order_id,
            kind,
            body,
            created_at: normalize::from_micros(at),
            read: read_at.is_some(),
        })
        .collect())
}

/// How many notifications `username` has not read.
pub fn unread_count(conn: &mut DbConn, username: &str) -> QueryResult<i64> {
    staff_notifications::table
        .filter(staff_notifications::username.eq(username))
        .filter(staff_notifications::read_at.is_null())
        .count()
        .get_result(conn)
}

/// Marks every notification of `username` read.
pub fn mark_read(conn: &mut DbConn, username: &str, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::update(
        staff_notifications::table
            .filter(staff_notifications::username.eq(username))
            .filter(staff_notifications::read_at.is_null()),
    )
    .set(staff_notifications::read_at.eq(Some(now.timestamp_micros())))
    .execute(conn)
}

/// A colleague orders can be assigned to: an enabled reviewer or approver. Returns their
/// display name and e-mail address, or `None` when there is no such colleague.
pub fn assignee(
    conn: &mut DbConn,
    username: &str,
) -> QueryResult<Option<(String, Option<String>)>> {
    let row: Option<(String, String, bool, Option<String>)> = staff_users::table
        .find(username)
        .select((
            staff_users::display_name,
            staff_users::role,
            staff_users::disabled,
            staff_users::email,
        ))
        .first(conn)
        .optional()?;
    Ok(row.and_then(|(name, role, disabled, email)| {
        let role = Role::parse(&role)?;
        (!disabled && matches!(role, Role::LegalReviewer | Role::LegalApprover))
            .then_some((name, email))
    }))
}

/// Everyone orders can be assigned to, as (username, display name), by name.
pub fn assignees(conn: &mut DbConn) -> QueryResult<Vec<(String, String)>> {
    staff_users::table
        .filter(staff_users::disabled.eq(false))
        .filter(
            staff_users::role.eq_any([Role::LegalReviewer.as_str(), Role::LegalApprover.as_str()]),
        )
        .order(staff_users::display_name)
        .select((staff_users::username, staff_users::display_name))
        .load(conn)
}

/// The display names of every staff member, by username (for pages that name colleagues).
pub fn display_names(conn: &mut DbConn) -> QueryResult<std::collections::HashMap<String, String>> {
    Ok(staff_users::table
        .select((staff_users::username, staff_users::display_name))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect())
}

/// A user's own settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preferences {
    /// Where their notifications are e-mailed (none: in the app only).
    pub email: Option<String>,
    /// The IANA time zone their pages show dates in.
    pub time_zone: String,
}

/// The settings of `username`.
pub fn preferences(conn: &mut DbConn, username: &str) -> Result<Preferences, StaffError> {
    let (email, time_zone) = staff_users::table
        .find(username)
        .select((staff_users::email, staff_users::time_zone))
        .first::<(Option<String>, String)>(conn)
        .optional()?
        .ok_or_else(|| StaffError::NotFound(username.to_owned()))?;
    Ok(Preferences { email, time_zone })
}

/// Stores the settings of `username`; the caller checked the address and the zone.
pub fn set_preferences(
    conn: &mut DbConn,
    username: &str,
    preferences: &Preferences,
) -> Result<(), StaffError> {
    diesel::update(staff_users::table.find(username))
        .set((
            staff_users::email.eq(preferences.email.as_deref()),
            staff_users::time_zone.eq(&preferences.time_zone),
        ))
        .execute(conn)?;
    Ok(())
}

/// A queue filter a user saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SavedFilter {
    /// Id.
    pub id: String,
    /// The name the user gave it.
    pub name: String,
    /// The queue's query string (validated again whenever it is used).
    pub query: String,
}

/// The saved filters of `username`, by name.
pub fn saved_filters(conn: &mut DbConn, username: &str) -> QueryResult<Vec<SavedFilter>> {
    Ok(saved_filters::table
        .filter(saved_filters::username.eq(username))
        .order(saved_filters::name)
        .select((saved_filters::id, saved_filters::name, saved_filters::query))
        .load::<(String, String, String)>(conn)?
        .into_iter()
        .map(|(id, name, query)| SavedFilter { id, name, query })
        .collect())
}

/// Saves (or replaces, under the same name) a queue filter of `username`.
pub fn save_filter(
    conn: &mut DbConn,
    username: &str,
    name: &str,
    query: &str,
    now: DateTime<Utc>,
) -> Result<(), StaffError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(StaffError::Invalid(
            "name: must be 1 to 100 characters of text".into(),
        ));
    }
    if query.len() > 2000 {
        return Err(StaffError::Invalid(
            "query: a saved filter is at most 2000 characters".into(),
        ));
    }
    crate::db::write_tx(conn, |c| {
        diesel::delete(
            saved_filters::table
                .filter(saved_filters::username.eq(username))
                .filter(saved_filters::name.eq(name)),
        )
        .execute(c)?;
        diesel::insert_into(saved_filters::table)
            .values((
                saved_filters::id.eq(uuid::Uuid::new_v4().to_string()),
                saved_filters::username.eq(username),
                saved_filters::name.eq(name),
                saved_filters::query.eq(query),
                saved_filters::created_at.eq(now.timestamp_micros()),
            ))
            .execute(c)?;
        Ok(())
    })
}

/// Deletes a saved filter of `username` (someone else's is never touched).
pub fn delete_filter(conn: &mut DbConn, username: &str, id: &str) -> QueryResult<usize> {
    diesel::delete(
        saved_filters::table
            .filter(saved_filters::username.eq(username))
            .filter(saved_filters::id.eq(id)),
    )
    .execute(conn)
}

/// What a stored result is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultKind {
    /// The matches per target (audited lookups).
    Matches,
    /// The package preview (its package id).
    Preview,
}

impl ResultKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Matches => "matches",
            Self::Preview => "preview",
        }
    }
}

/// Keeps `payload` as the session's latest `kind` result for `order_id` (inside the caller's
/// transaction), replacing an earlier one. Results of sessions that ended go at the same time.
pub fn store_result(
    conn: &mut DbConn,
    session_token: &str,
    order_id: &str,
    kind: ResultKind,
    payload: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let session = token_hash(session_token);
    diesel::delete(
        workspace_results::table.filter(
            workspace_results::session_sha256
                .ne_all(staff_sessions::table.select(staff_sessions::token_sha256)),
        ),
    )
    .execute(conn)?;
    diesel::delete(workspace_results::table.find((&session, order_id, kind.as_str())))
        .execute(conn)?;
    diesel::insert_into(workspace_results::table)
        .values((
            workspace_results::session_sha256.eq(&session),
            workspace_results::order_id.eq(order_id),
            workspace_results::kind.eq(kind.as_str()),
            workspace_results::payload.eq(payload),
            workspace_results::created_at.eq(now.timestamp_micros()),
        ))
        .execute(conn)?;
    Ok(())
}

/// The session's latest `kind` result for `order_id`, with when it was made.
pub fn stored_result(
    conn: &mut DbConn,
    session_token: &str,
    order_id: &str,
    kind: ResultKind,
) -> QueryResult<Option<(String, DateTime<Utc>)>> {
    Ok(workspace_results::table
        .find((token_hash(session_token), order_id, kind.as_str()))
        .select((workspace_results::payload, workspace_results::created_at))
        .first::<(String, i64)>(conn)
        .optional()?
        .map(|(p, at)| (p, normalize::from_micros(at))))
}
