//! Orders: an order's life from intake to release: its status, review, clarification,
//! withdrawal, approval and holds.
//!
//! Every change to an order commits in one transaction with its audit entry (and, at intake,
//! its holds and its idempotency record); each transition first takes the order's row lock
//! ([`lock`]). The policy decision is stored with each version of the order; people may later
//! narrow it, never widen it.
//!
//! Module map: `validate` (an order's JSON -> field errors), `intake` (a submission ->
//! stored, decided order), `review` (the queue, an order's detail, refusal), `clarify`
//! (messages, amendments, withdrawal), `approval` (snapshot, four-eyes approval, release
//! exactly once, narrowing), `judgement` (recorded justifications), `replies` (reply templates), `dashboard` (the team's figures), `holds` (holds by target identifier and their resolution to
//! accounts), `tasks` (the duties a decision sets: ex-post validation, user notice, hold
//! ends), `demo` (the demo workspace). Background jobs over orders are in `crate::jobs`.

pub mod approval;
pub mod clarify;
pub mod dashboard;
pub mod demo;
pub mod desk;
pub mod eevidence;
pub mod enclosures;
pub mod holds;
pub mod intake;
pub mod judgement;
pub mod manual;
pub mod messages;
pub mod replies;
pub mod review;
pub mod tasks;
pub mod validate;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::AuditError;
use crate::db::schema::{order_documents, order_messages, order_versions, orders};
use crate::db::{DbConn, DbError};
use crate::metadata::normalize;
use crate::policy::{Decision, Pause};
pub use validate::FieldError;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Received and decided; the legal team reviews it.
    UnderReview,
    /// The legal team asked the authority a question; the clock may be paused.
    AwaitingClarification,
    /// Approved for release; the package is being prepared.
    Approved,
    /// The package was released (see `/disclosure`).
    Released,
    /// The provider refused the order, with reasons.
    Refused,
    /// The authority withdrew the order.
    Withdrawn,
}

impl OrderStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnderReview => "under_review",
            Self::AwaitingClarification => "awaiting_clarification",
            Self::Approved => "approved",
            Self::Released => "released",
            Self::Refused => "refused",
            Self::Withdrawn => "withdrawn",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::UnderReview,
            Self::AwaitingClarification,
            Self::Approved,
            Self::Released,
            Self::Refused,
            Self::Withdrawn,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// Whether the order is closed (nothing more happens to it through the API).
    pub fn is_closed(self) -> bool {
        matches!(self, Self::Released | Self::Refused | Self::Withdrawn)
    }
}

/// Errors of the order workflow. Each names what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// No such order (or not the caller's).
    #[error("no such order")]
    NotFound,
    /// The request conflicts with the order's state or an earlier request.
    #[error("{0}")]
    Conflict(String),
    /// The input is wrong, in the way `kind` names (an edge answers each kind with its own
    /// status: `web::api` maps them to HTTP).
    #[error("{title}")]
    Invalid {
        /// What kind of fault.
        kind: InvalidKind,
        /// Problem class slug.
        slug: &'static str,
        /// Summary.
        title: String,
        /// The field errors.
        errors: Vec<FieldError>,
        /// The rejected-submission record, when one was kept.
        submission_id: Option<String>,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The audit log refused the entry.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// What kind of fault an invalid input has. Orders name the kind; the edge that answers picks
/// the status (`web::api::status_of`, the one place the numbers are chosen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidKind {
    /// Not readable at all: not JSON.
    Syntax,
    /// Larger than its limit.
    TooLarge,
    /// Readable, but not valid: a field is missing, wrong or refused.
    Unprocessable,
}

impl From<diesel::result::Error> for OrderError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

/// Locks order `id` for the rest of the caller's transaction (see [`crate::db::locks::order`]);
/// a missing order is [`OrderError::NotFound`]. Every transition of an order takes it first.
pub fn lock(conn: &mut DbConn, id: &str) -> Result<(), OrderError> {
    if crate::db::locks::order(conn, id)? {
        Ok(())
    } else {
        Err(OrderError::NotFound)
    }
}

/// The signed document as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DocumentInfo {
    /// Media type (application/pdf).
    pub media_type: String,
    /// SHA-256 of the document, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
    /// The order version it came with.
    pub version: i32,
}

/// An order as the API shows it to its authority.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    /// Writ's order id.
    pub id: String,
    /// Where the order stands.
    pub status: OrderStatus,
    /// The authority's own reference.
    pub reference: String,
    /// The instrument id.
    pub instrument: String,
    /// Whether the order claims an emergency.
    pub emergency: bool,
    /// The current version (1, plus one per amendment).
    pub version: i32,
    /// When Writ received the order.
    pub received_at: DateTime<Utc>,
    /// When the order last changed.
    pub updated_at: DateTime<Utc>,
    /// SHA-256 (hex) of the current version's order JSON exactly as submitted: what a validator
    /// signs.
    pub order_sha256: String,
    /// Whether the claimed validation is proven by the validator's own registered signature.
    pub validation_proven: bool,
    /// The signed order document in force.
    pub document: Option<DocumentInfo>,
    /// The reply deadline, if the instrument sets one.
    pub deadline_at: Option<DateTime<Utc>>,
    /// The policy decision on the current version: per category and field, with reasons.
    pub decision: Decision,
}

type OrderRow = (String, String, String, bool, String, i32, i64, i64);

/// Loads an order's view; with `authority`, only if that authority sent it (another's order is
/// [`OrderError::NotFound`], indistinguishable from a missing one).
pub fn view(conn: &mut DbConn, id: &str, authority: Option<&str>) -> Result<OrderView, OrderError> {
    // By the primary key alone, the owner compared here: with `authority_id` in the query,
    // PostgreSQL's cached generic plan can pick the (authority, received) index planned while
    // the table was small, and then reads every order of the authority to find one.
    let row: Option<(String, OrderRow)> = orders::table
        .find(id)
        .select((
            orders::authority_id,
            (
                orders::id,
                orders::reference,
                orders::instrument,
                orders::emergency,
                orders::status,
                orders::version,
                orders::received_at,
                orders::updated_at,
            ),
        ))
        .first(conn)
        .optional()?;
    let Some((_, (id, reference, instrument, emergency, status, version, received, updated))) =
        row.filter(|(owner, _)| authority.is_none_or(|a| a == owner))
    else {
        return Err(OrderError::NotFound);
    };
    let (sha, kid, decision_json): (String, Option<String>, String) = order_versions::table
        .find((&id, version))
        .select((
            order_versions::order_sha256,
            order_versions::validation_kid,
            order_versions::decision_json,
        ))
        .first(conn)?;
    let decision: Decision = serde_json::from_str(&decision_json).map_err(|e| {
        OrderError::Db(DbError::Corrupt(format!(
            "stored decision of order {id}: {e}"
        )))
    })?;
    let document = order_documents::table
        .filter(order_documents::order_id.eq(&id))
        .order(order_documents::version.desc())
        .select((
            order_documents::media_type,
            order_documents::sha256,
            order_documents::size,
            order_documents::version,
        ))
        .first::<(String, String, i64, i32)>(conn)
        .optional()?
        .map(|(media_type, sha256, size, version)| DocumentInfo {
            media_type,
            sha256,
            size,
            version,
        });
    Ok(OrderView {
        status: OrderStatus::parse(&status).ok_or_else(|| {
            OrderError::Db(DbError::Corrupt(format!(
                "order {id} has status `{status}`"
            )))
        })?,
        id,
        reference,
        instrument,
        emergency,
        version,
        received_at: normalize::from_micros(received),
        updated_at: normalize::from_micros(updated),
        order_sha256: sha,
        validation_proven: kid.is_some(),
        document,
        deadline_at: decision.deadline.as_ref().and_then(|d| d.due),
        decision,
    })
}

/// A signed order document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// SHA-256, hex.
    pub sha256: String,
    /// The bytes.
    pub content: Vec<u8>,
}

/// The order document in force, for a staff member; the view is audited.
pub fn document(
    conn: &mut DbConn,
    id: &str,
    actor: &crate::audit::Actor,
) -> Result<Document, OrderError> {
    crate::db::write_tx(conn, |c| {
        let (sha256, content): (String, Vec<u8>) = order_documents::table
            .filter(order_documents::order_id.eq(id))
            .order(order_documents::version.desc())
            .select((order_documents::sha256, order_documents::content))
            .first(c)
            .optional()?
            .ok_or(OrderError::NotFound)?;
        let entry =
            crate::audit::NewEntry::new(actor.clone(), crate::audit::Event::OrderDocumentViewed)
                .order(id)
                .reference("document_sha256", sha256.as_str());
        crate::audit::append(c, &entry, Utc::now())?;
        Ok(Document { sha256, content })
    })
}

/// The clarification pauses of an order: each provider question opens one (unless one is
/// open), the authority's next message closes it.
pub fn pauses(conn: &mut DbConn, order_id: &str) -> QueryResult<Vec<Pause>> {
    let messages: Vec<(String, i64)> = order_messages::table
        .filter(order_messages::order_id.eq(order_id))
        .order(order_messages::id)
        .select((order_messages::sender, order_messages::created_at))
        .load(conn)?;
    let mut out: Vec<Pause> = Vec::new();
    for (sender, at) in messages {
        let at = normalize::from_micros(at);
        let open = out.last().is_some_and(|p| p.to.is_none());
        match (sender.as_str(), open) {
            ("provider", false) => out.push(Pause { from: at, to: None }),
            ("authority", true) => {
                if let Some(p) = out.last_mut() {
                    p.to = Some(at);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}
