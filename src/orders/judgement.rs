//! Recorded justifications. Where a decision needs human judgement (a voluntary disclosure, a
//! claimed validation, a forged-emergency warning, or any other check flag the engine raised),
//! the person who approves writes down why, and the person who checks a claimed validation
//! says how. The text is kept in `justifications`; the action's audit entry carries the row's
//! id and the text's SHA-256, in the same transaction, so the text cannot change unnoticed.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::db::DbConn;
use crate::db::schema::justifications;
use crate::digest::sha256_hex;
use crate::metadata::normalize;
use crate::orders::review::OrderDetail;
use crate::orders::{FieldError, InvalidKind, OrderError};

/// The shortest justification accepted (a word or two says nothing).
pub const MIN_CHARS: usize = 10;
/// The longest justification accepted.
pub const MAX_CHARS: usize = 5000;

/// One point a person must judge before release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Point {
    /// The reason code (`voluntary_disclosure`, `emergency_without_validation`,
    /// `claimed_validation`, ...).
    pub code: String,
    /// The engine's words for it.
    pub text: String,
}

/// The code of the point a claimed, unproven validation raises.
pub const CLAIMED_VALIDATION: &str = "claimed_validation";

/// The points of an order that need a recorded justification at approval: every check flag
/// of the scope in force, and a validation that is only claimed. Empty: none is needed.
pub fn points(d: &OrderDetail) -> Vec<Point> {
    let mut out: Vec<Point> = d
        .scope
        .review_flags
        .iter()
        .map(|f| Point {
            code: serde_json::to_value(f.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            text: f.text.clone(),
        })
        .collect();
    if d.validation_check_needed {
        out.push(Point {
            code: CLAIMED_VALIDATION.into(),
            text: match &d.validation_checked_by {
                Some(who) => format!(
                    "The validation is claimed, not proven by a registered signature; {who} checked it against the signed document."
                ),
                None => "The validation is claimed, not proven by a registered signature.".into(),
            },
        });
    }
    out
}

/// The ways a claimed validation may be checked: (code, words). The form offers these, with
/// no default; the server accepts no other.
pub const CHECK_METHODS: [(&str, &str); 4] = [
    (
        "validator_called",
        "Called the validating authority on a number from the registry or an official directory",
    ),
    (
        "specimen_compared",
        "Compared the validator's signature and stamp with a specimen on file",
    ),
    (
        "official_record",
        "Confirmed it in the court's or prosecutor's own record system",
    ),
    ("other", "Another way (say how in the note)"),
];

fn invalid(field: &str, title: &str, message: String) -> OrderError {
    OrderError::Invalid {
        kind: InvalidKind::Unprocessable,
        slug: "invalid-justification",
        title: title.into(),
        errors: vec![FieldError::new(field, message)],
        submission_id: None,
    }
}

/// The justification, trimmed, or the error naming what is wrong with it.
pub fn check_text<'a>(field: &str, text: &'a str) -> Result<&'a str, OrderError> {
    let t = text.trim();
    let n = t.chars().count();
    if !(MIN_CHARS..=MAX_CHARS).contains(&n) || t.contains('\0') {
        return Err(invalid(
            field,
            "A recorded justification is needed",
            format!("must be {MIN_CHARS} to {MAX_CHARS} characters saying why"),
        ));
    }
    Ok(t)
}

/// The method code, if it is one of [`CHECK_METHODS`].
pub fn check_method(method: &str) -> Result<&'static str, OrderError> {
    CHECK_METHODS
        .iter()
        .find(|(code, _)| *code == method)
        .map(|(code, _)| *code)
        .ok_or_else(|| {
            invalid(
                "method",
                "Say how the validation was checked",
                format!(
                    "must be one of {}",
                    CHECK_METHODS
                        .iter()
                        .map(|(c, _)| *c)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
}

/// A justification as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Justification {
    /// Row id (also in the audit entry).
    pub id: String,
    /// approval or validation_check.
    pub action: String,
    /// How a validation was checked.
    pub method: Option<String>,
    /// The reason codes it answers.
    pub points: Vec<String>,
    /// What the person wrote.
    pub text: String,
    /// SHA-256 of the text.
    pub text_sha256: String,
    /// Who wrote it.
    pub author: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// What a stored justification's audit entry refers to: (id, SHA-256 of the text).
pub type Recorded = (String, String);

/// Stores a justification inside the caller's transaction (the caller appends the audit entry
/// with the returned id and hash).
#[allow(clippy::too_many_arguments)]
pub fn record(
    conn: &mut DbConn,
    order_id: &str,
    action: &str,
    method: Option<&str>,
    points: &[Point],
    text: &str,
    author: &str,
    now: DateTime<Utc>,
) -> Result<Recorded, OrderError> {
    let id = uuid::Uuid::new_v4().to_string();
    let sha = sha256_hex(text.as_bytes());
    let codes: Vec<&str> = points.iter().map(|p| p.code.as_str()).collect();
    diesel::insert_into(justifications::table)
        .values((
            justifications::id.eq(&id),
            justifications::order_id.eq(order_id),
            justifications::action.eq(action),
            justifications::method.eq(method),
            justifications::points.eq(codes.join(",")),
            justifications::text.eq(text),
            justifications::text_sha256.eq(&sha),
            justifications::author.eq(author),
            justifications::created_at.eq(now.timestamp_micros()),
        ))
        .execute(conn)?;
    Ok((id, sha))
}

/// The justifications of an order, oldest first.
pub fn of_order(conn: &mut DbConn, order_id: &str) -> Result<Vec<Justification>, OrderError> {
    type Row = (
        String,
        String,
        Option<String>,
        String,
        String,
        String,
        String,
        i64,
    );
    let rows: Vec<Row> = justifications::table
        .filter(justifications::order_id.eq(order_id))
        .order((justifications::created_at, justifications::id))
        .select((
            justifications::id,
            justifications::action,
            justifications::method,
            justifications::points,
            justifications::text,
            justifications::text_sha256,
            justifications::author,
            justifications::created_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, action, method, points, text, text_sha256, author, at)| Justification {
                id,
                action,
                method,
                points: points
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                text,
                text_sha256,
                author,
                created_at: normalize::from_micros(at),
            },
        )
        .collect())
}
