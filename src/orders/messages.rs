//! The messages between the legal team and the authority about an order: reading them, and
//! checking and storing one. What a message does to the order (a question pauses the clock, an
//! answer may amend the order, a withdrawal ends it) is in [`super::clarify`].

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::OrderError;
use super::clarify::state;
use crate::db::DbConn;
use crate::db::schema::order_messages;
use crate::metadata::normalize;

/// Longest message text.
pub const MAX_MESSAGE_CHARS: usize = 20_000;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sender {
    /// The authority that sent the order.
    Authority,
    /// The provider's legal team.
    Provider,
}

/// A clarification message as the API shows it. The provider's staff are not named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Message {
    /// Sequence number within Writ.
    pub id: i64,
    /// Who wrote it.
    pub sender: Sender,
    /// The text.
    pub text: String,
    /// The order version an amendment in this message created.
    pub amended_version: Option<i32>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// The messages of an order, oldest first; with `authority`, only if it is that authority's.
pub fn messages(
    conn: &mut DbConn,
    order_id: &str,
    authority: Option<&str>,
) -> Result<Vec<Message>, OrderError> {
    state(conn, order_id, authority)?;
    let rows: Vec<(i64, String, String, Option<i32>, i64)> = order_messages::table
        .filter(order_messages::order_id.eq(order_id))
        .order(order_messages::id)
        .select((
            order_messages::id,
            order_messages::sender,
            order_messages::body,
            order_messages::amended_version,
            order_messages::created_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, sender, text, amended_version, at)| Message {
            id,
            sender: if sender == "provider" {
                Sender::Provider
            } else {
                Sender::Authority
            },
            text,
            amended_version,
            created_at: normalize::from_micros(at),
        })
        .collect())
}

/// A message text refused, naming the field and why.
fn invalid_message(field: &str, why: impl Into<String>) -> OrderError {
    OrderError::Invalid {
        kind: super::InvalidKind::Unprocessable,
        slug: "invalid-message",
        title: "The message is not valid".into(),
        errors: vec![super::FieldError::new(field, why)],
        submission_id: None,
    }
}

fn no_nul(field: &str, text: &str) -> Result<(), OrderError> {
    if text.contains('\0') {
        return Err(invalid_message(field, "must not contain NUL characters"));
    }
    Ok(())
}

pub(super) fn check_text(text: &str) -> Result<(), OrderError> {
    check_text_of("text", text)
}

/// [`check_text`] for a text sent under another name (a withdrawal's `reason`).
pub(super) fn check_text_of(field: &str, text: &str) -> Result<(), OrderError> {
    no_nul(field, text)?;
    if text.trim().is_empty() || text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(invalid_message(
            field,
            format!("must be 1 to {MAX_MESSAGE_CHARS} characters"),
        ));
    }
    Ok(())
}

pub(super) fn add_message(
    conn: &mut DbConn,
    order_id: &str,
    sender: Sender,
    author: &str,
    text: &str,
    amended_version: Option<i32>,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(order_messages::table)
        .values((
            order_messages::order_id.eq(order_id),
            order_messages::sender.eq(if sender == Sender::Provider {
                "provider"
            } else {
                "authority"
            }),
            order_messages::author.eq(author),
            order_messages::body.eq(text),
            order_messages::amended_version.eq(amended_version),
            order_messages::created_at.eq(now.timestamp_micros()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Adds a message from the provider without changing the order's state (inside the caller's
/// transaction): e.g. the reasons of a refusal.
pub(crate) fn provider_message(
    conn: &mut DbConn,
    order_id: &str,
    author: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    check_text(text)?;
    add_message(conn, order_id, Sender::Provider, author, text, None, now)?;
    Ok(())
}
