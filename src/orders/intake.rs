//! Intake: an authenticated authority's submission becomes a stored, decided order.
//!
//! The submission is a JSON envelope: the order (the policy engine's `Order` JSON, whose exact
//! bytes are hashed: that digest is what a validator signs), the signed order document (PDF,
//! base64) and, optionally, the validator's signature. The issuer's kind and country come
//! from the registry, never from the body. The order, its first version and decision, its
//! document, its holds, its idempotency record and its audit entry commit in one transaction.
//! A malformed submission is kept as a rejected-submission record (its hash, size and the
//! reasons) in a transaction of its own.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::validate::{FieldError, check_order};
use super::{InvalidKind, OrderError, OrderStatus, OrderView, holds, view};
use crate::audit::{self, Actor, ActorKind, NewEntry};
use crate::authority::{self, validation};
use crate::db::schema::{
    idempotency_keys, order_documents, order_versions, orders, rejected_submissions,
};
use crate::db::{DbConn, write_tx};
use crate::digest::sha256_hex;
use crate::policy::{Deployment, Order, PolicySet, RegistryFacts, decide};

/// The signed order document, as submitted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentUpload {
    /// Must be `application/pdf`.
    #[schema(example = "application/pdf", pattern = "^application/pdf$")]
    pub media_type: String,
    /// The PDF document (its bytes start with `%PDF-`), base64: standard alphabet, with
    /// padding, no line breaks. At most `document_limit_bytes` (see `GET /api/v1`) once decoded.
    #[schema(
        pattern = r"^JVBE(?:Ri0=|Ri[0-3][A-Za-z0-9+/](?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?)$"
    )]
    pub content: String,
}

/// The signed order document of a submission, as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    /// As the API sends it: a media type and base64 content, decoded here.
    Encoded(DocumentUpload),
    /// The bytes of a PDF uploaded in the workspace (an order entered by hand): nothing to
    /// decode.
    Raw(Vec<u8>),
}

impl From<DocumentUpload> for Document {
    fn from(upload: DocumentUpload) -> Self {
        Self::Encoded(upload)
    }
}

/// The body of `POST /api/v1/orders` (also used for amendments). Documentation type: the
/// server reads `order` as raw bytes so that its digest is that of the exact JSON sent.
#[derive(Debug, Clone, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// The order. Its SHA-256 over the exact bytes sent is the order digest.
    pub order: crate::policy::Order,
    /// The signed order document.
    pub document: DocumentUpload,
    /// The validator's signature over the order digest: a compact JWS signed with a key
    /// registered for the validating authority, with claims `iss` (its registry id),
    /// `order_sha256` (hex), `aud` (the registry id of the authority submitting it: a string or
    /// a list of strings), `iat` and `exp` (until when it may be submitted). Another authority
    /// submitting it, or a submission after `exp`, is refused. Without it, a claimed validation
    /// is only checked by a person against the document.
    #[schema(pattern = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")]
    pub validation: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    order: &'a RawValue,
    document: Option<DocumentUpload>,
    #[serde(default)]
    validation: Option<String>,
}

/// A checked submission, ready to store.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The parsed order.
    pub order: Order,
    /// The order JSON exactly as submitted.
    pub order_json: String,
    /// Its SHA-256, hex.
    pub order_sha256: String,
    /// The decoded document, if one was sent.
    pub document: Option<Vec<u8>>,
    /// The proven validation, if a valid signature was sent.
    pub validation: Option<(validation::ProvenValidation, String)>,
    /// The registry's id of the validating authority the carrier named by an identifier the
    /// registry knows (e-Evidence's `ValidatingAuthority` approval). The engine then judges the
    /// validator on its registered kind, but the validation stays a claim a person checks: no
    /// validator's signature proves it.
    pub registered_validator: Option<String>,
}

fn invalid(
    kind: InvalidKind,
    slug: &'static str,
    title: &str,
    errors: Vec<FieldError>,
) -> OrderError {
    OrderError::Invalid {
        kind,
        slug,
        title: title.to_owned(),
        errors,
        submission_id: None,
    }
}

/// The 422 for a key named twice in one object, at its path under `prefix`.
pub fn duplicate_key(d: &crate::json::DuplicateKey, prefix: &str) -> OrderError {
    invalid(
        InvalidKind::Unprocessable,
        "duplicate-key",
        "The submission names a key twice",
        vec![FieldError::new(
            d.path(prefix),
            crate::json::DUPLICATE_KEY_MESSAGE,
        )],
    )
}

/// Parses and checks a submission body; `document_required` for a new order.
pub fn check(
    conn: &mut DbConn,
    body: &[u8],
    issuer_id: &str,
    document_limit: usize,
    document_required: bool,
    binding: &validation::Binding,
) -> Result<Checked, OrderError> {
    let text = std::str::from_utf8(body).map_err(|_| {
        invalid(
            InvalidKind::Syntax,
            "invalid-json",
            "Invalid JSON body",
            vec![FieldError::new("(body)", "is not UTF-8")],
        )
    })?;
    // serde reads a struct from an array of its fields too; a submission is an object.
    if text.trim_start().starts_with('[') {
        return Err(invalid(
            InvalidKind::Unprocessable,
            "invalid-submission",
            "The submission is not valid",
            vec![FieldError::new(
                "(body)",
                "must be a JSON object, not an array",
            )],
        ));
    }
    // Before any reading that keeps one of two equal keys: the validator signed these bytes,
    // and another reader of them must not see another order.
    if let Err(crate::json::StrictError::Duplicate(d)) = crate::json::duplicate_key(body) {
        return Err(duplicate_key(&d, ""));
    }
    let envelope: Envelope<'_> = match serde_json::from_str::<Envelope<'_>>(text) {
        Ok(e) => e,
        Err(e) if e.is_syntax() || e.is_eof() => {
            return Err(invalid(
                InvalidKind::Syntax,
                "invalid-json",
                "Invalid JSON body",
                vec![FieldError::new("(body)", e.to_string())],
            ));
        }
        Err(e) => {
            return Err(invalid(
                InvalidKind::Unprocessable,
                "invalid-submission",
                "The submission is not valid",
                vec![FieldError::new("(body)", e.to_string())],
            ));
        }
    };
    check_parts(
        conn,
        envelope.order,
        envelope.document.map(Document::from),
        envelope.validation,
        issuer_id,
        document_limit,
        document_required,
        binding,
    )
}

/// Checks the parts of a submission: the order (raw, exactly as sent), the document and the
/// validator's signature (bound to `issuer_id` as its submitter, checked under `binding`).
/// Every fault is reported, each naming its field.
#[allow(clippy::too_many_arguments)]
pub fn check_parts(
    conn: &mut DbConn,
    order: &RawValue,
    document: Option<Document>,
    validation: Option<String>,
    issuer_id: &str,
    document_limit: usize,
    document_required: bool,
    binding: &validation::Binding,
) -> Result<Checked, OrderError> {
    let order_json = order.get().to_owned();
    let order_sha256 = sha256_hex(order_json.as_bytes());
    let mut errors = Vec::new();
    let order = match check_order(&order_json, "order") {
        Ok(o) => Some(o),
        Err(mut e) => {
            errors.append(&mut e);
            None
        }
    };
    let document = check_document(document, document_required, document_limit, &mut errors)?;
    let mut proven = None;
    if let (Some(signature), Some(order)) = (&validation, &order) {
        if let Some(named) = &order.validator {
            match validation::verify(
                conn,
                signature,
                &order_sha256,
                issuer_id,
                &named.country,
                binding,
            ) {
                Ok(v) => proven = Some((v, signature.clone())),
                Err(validation::ValidationError::Unavailable(e)) => {
                    return Err(OrderError::Db(crate::db::DbError::Unavailable(e)));
                }
                Err(e) => errors.push(FieldError::new("validation", e.to_string())),
            }
        } else {
            errors.push(FieldError::new(
                "validation",
                "is given but the order names no validator",
            ));
        }
    }
    match order {
        Some(order) if errors.is_empty() => Ok(Checked {
            order,
            order_json,
            order_sha256,
            document,
            validation: proven,
            registered_validator: None,
        }),
        _ => Err(invalid(
            InvalidKind::Unprocessable,
            "invalid-order",
            "The order is not valid",
            errors,
        )),
    }
}

/// Checks the form of a submitted document (the API's base64, or the workspace's bytes): a PDF
/// within `limit` bytes. Each fault is added to `errors`, naming its field; one too large
/// refuses the whole submission. Answers the document's bytes when they pass.
pub fn check_document(
    document: Option<Document>,
    required: bool,
    limit: usize,
    errors: &mut Vec<FieldError>,
) -> Result<Option<Vec<u8>>, OrderError> {
    Ok(match document {
        None if required => {
            errors.push(FieldError::new("document", "is required"));
            None
        }
        None => None,
        Some(Document::Encoded(d)) => {
            if d.media_type != "application/pdf" {
                errors.push(FieldError::new(
                    "document.media_type",
                    "must be application/pdf",
                ));
            }
            // A base64 text longer than the limit allows needs no decoding to be refused.
            if d.content.len() / 4 * 3 > limit + 3 {
                return Err(document_too_large(limit));
            }
            match STANDARD.decode(d.content.as_bytes()) {
                Ok(bytes) => check_pdf(bytes, limit, errors)?,
                Err(e) => {
                    errors.push(FieldError::new(
                        "document.content",
                        format!("is not base64: {e}"),
                    ));
                    None
                }
            }
        }
        Some(Document::Raw(bytes)) => check_pdf(bytes, limit, errors)?,
    })
}

/// The decoded or uploaded document, if it is a PDF within `limit` bytes; a document that is
/// no PDF is a field error, one too large refuses the whole submission.
fn check_pdf(
    bytes: Vec<u8>,
    limit: usize,
    errors: &mut Vec<FieldError>,
) -> Result<Option<Vec<u8>>, OrderError> {
    if bytes.len() > limit {
        return Err(document_too_large(limit));
    }
    if !bytes.starts_with(b"%PDF-") {
        errors.push(FieldError::new(
            "document.content",
            "is not a PDF document (it does not start with %PDF-)",
        ));
        return Ok(None);
    }
    Ok(Some(bytes))
}

fn document_too_large(limit: usize) -> OrderError {
    invalid(
        InvalidKind::TooLarge,
        "document-too-large",
        "The document is too large",
        vec![FieldError::new(
            "document.content",
            format!("the document may be at most {limit} bytes"),
        )],
    )
}

/// Keeps a rejected submission (in its own transaction, with its audit entry) and returns the
/// error carrying the record's id. `answered` is the edge's status for each kind of fault (the
/// HTTP status the API answers with): the record and its entry keep the status answered.
pub fn reject(
    conn: &mut DbConn,
    authority_id: &str,
    body: &[u8],
    error: OrderError,
    answered: fn(InvalidKind) -> u16,
    now: DateTime<Utc>,
) -> OrderError {
    let OrderError::Invalid {
        kind,
        slug,
        title,
        errors,
        ..
    } = error
    else {
        return error;
    };
    let status = answered(kind);
    let id = uuid::Uuid::new_v4().to_string();
    let hash = sha256_hex(body);
    let reasons = serde_json::to_string(&errors).unwrap_or_else(|_| "[]".into());
    let stored = write_tx(conn, |c| {
        diesel::insert_into(rejected_submissions::table)
            .values((
                rejected_submissions::id.eq(&id),
                rejected_submissions::authority_id.eq(authority_id),
                rejected_submissions::received_at.eq(now.timestamp_micros()),
                rejected_submissions::body_sha256.eq(&hash),
                rejected_submissions::size.eq(i64::try_from(body.len()).unwrap_or(i64::MAX)),
                rejected_submissions::status.eq(i32::from(status)),
                rejected_submissions::reasons.eq(&reasons),
            ))
            .execute(c)?;
        let entry = NewEntry::new(
            Actor::new(ActorKind::Authority, authority_id),
            audit::Event::OrderSubmissionRejected,
        )
        .reference("submission", id.as_str())
        .reference("body_sha256", hash.as_str())
        .reference("size", body.len())
        .reference("status", u64::from(status))
        .reference("errors", errors.len());
        audit::append(c, &entry, now)?;
        Ok::<_, OrderError>(())
    });
    match stored {
        Ok(()) => OrderError::Invalid {
            kind,
            slug,
            title,
            errors,
            submission_id: Some(id),
        },
        Err(e) => e,
    }
}

/// An answer kept under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
    /// Whether this is the replay of an earlier answer.
    pub replayed: bool,
}

/// The earlier answer under `key`, if any; a key reused for another request is a conflict.
pub fn replay(
    conn: &mut DbConn,
    authority_id: &str,
    key: &str,
    request_sha256: &str,
) -> Result<Option<StoredAnswer>, OrderError> {
    let found: Option<(String, i32, String)> = idempotency_keys::table
        .find((authority_id, key))
        .select((
            idempotency_keys::request_sha256,
            idempotency_keys::status,
            idempotency_keys::response,
        ))
        .first(conn)
        .optional()?;
    match found {
        None => Ok(None),
        Some((hash, status, body)) if hash == request_sha256 => {
            // The first request may still be waiting for its commit to reach the disk: the
            // answer is sent again only once it is there.
            crate::db::flush::read_is_durable(conn)?;
            Ok(Some(StoredAnswer {
                status: u16::try_from(status).unwrap_or(500),
                body,
                replayed: true,
            }))
        }
        Some(_) => Err(OrderError::Conflict(
            "this Idempotency-Key was used for another request; use a new key".into(),
        )),
    }
}

/// Forgets idempotency keys older than `before` (a retry comes within minutes, not days).
pub fn purge_idempotency_keys(
    conn: &mut DbConn,
    before: DateTime<Utc>,
) -> Result<usize, diesel::result::Error> {
    diesel::delete(
        idempotency_keys::table.filter(idempotency_keys::created_at.lt(before.timestamp_micros())),
    )
    .execute(conn)
}

/// Keeps `body` (with `status`) as the answer under `key`, unless the key already has one.
pub fn remember(
    conn: &mut DbConn,
    authority_id: &str,
    key: &str,
    request_sha256: &str,
    status: u16,
    body: &str,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    write_tx(conn, |c| {
        if replay(c, authority_id, key, request_sha256)?.is_some() {
            return Ok(());
        }
        diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::authority_id.eq(authority_id),
                idempotency_keys::idempotency_key.eq(key),
                idempotency_keys::request_sha256.eq(request_sha256),
                idempotency_keys::status.eq(i32::from(status)),
                idempotency_keys::response.eq(body),
                idempotency_keys::created_at.eq(now.timestamp_micros()),
            ))
            .execute(c)?;
        Ok(())
    })
}

/// Runs `f` once per idempotency key: inside one transaction with `f`'s own writes, the key's
/// earlier answer is returned if there is one, else `f` runs and its answer is kept.
pub fn idempotent(
    conn: &mut DbConn,
    authority_id: &str,
    key: Option<&str>,
    request_sha256: &str,
    now: DateTime<Utc>,
    f: impl FnOnce(&mut DbConn) -> Result<(u16, String), OrderError>,
) -> Result<StoredAnswer, OrderError> {
    write_tx(conn, |c| {
        let Some(key) = key else {
            let (status, body) = f(c)?;
            return Ok(StoredAnswer {
                status,
                body,
                replayed: false,
            });
        };
        // Two instances handling the same key at once: the second waits, then replays.
        crate::db::locks::advisory_text(c, &format!("{authority_id}\n{key}"), 7)?;
        if let Some(earlier) = replay(c, authority_id, key, request_sha256)? {
            return Ok(earlier);
        }
        let (status, body) = f(c)?;
        diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::authority_id.eq(authority_id),
                idempotency_keys::idempotency_key.eq(key),
                idempotency_keys::request_sha256.eq(request_sha256),
                idempotency_keys::status.eq(i32::from(status)),
                idempotency_keys::response.eq(&body),
                idempotency_keys::created_at.eq(now.timestamp_micros()),
            ))
            .execute(c)?;
        Ok(StoredAnswer {
            status,
            body,
            replayed: false,
        })
    })
}

/// The registry facts for a checked submission from `authority_id` (its renewals, which only a
/// preservation instrument reads, are counted by the caller: [`holds::renewals`]).
pub fn facts(
    conn: &mut DbConn,
    authority_id: &str,
    checked: &Checked,
) -> Result<RegistryFacts, OrderError> {
    let mut facts = authority::registry_facts(conn, authority_id).map_err(|e| match e {
        authority::RegistryError::Db(d) => OrderError::Db(d),
        other => OrderError::Conflict(other.to_string()),
    })?;
    if let Some((v, _)) = &checked.validation {
        facts.validator_kind = Some(v.kind);
        facts.validation_signed_by_validator = true;
    } else if let Some(id) = &checked.registered_validator {
        facts.validator_kind = authority::active_kind(conn, id)?;
    }
    Ok(facts)
}

/// Stores a new order from `authority_id` (inside the caller's transaction) and returns its
/// view. The decision is taken here, from the registry's facts, at `now`.
pub fn store_new(
    conn: &mut DbConn,
    authority_id: &str,
    checked: &Checked,
    policies: &PolicySet,
    deployment: &Deployment,
    now: DateTime<Utc>,
) -> Result<OrderView, OrderError> {
    store(
        conn,
        authority_id,
        checked,
        policies,
        deployment,
        &Receipt {
            received_at: now,
            entered_by: None,
            mail: None,
            channel: "api",
        },
        now,
    )
}

/// How an order arrived: when, and who entered it if it came on paper or by e-mail.
#[derive(Debug, Clone)]
pub struct Receipt<'a> {
    /// The true time of receipt (deadlines run from it).
    pub received_at: DateTime<Utc>,
    /// The staff member who entered it by hand.
    pub entered_by: Option<&'a crate::staff::Staff>,
    /// Where to queue the legal team's notice of a new order (none: no notice).
    pub mail: Option<&'a crate::settings::MailSettings>,
    /// How it came: `api`, `etsi` (an HI-1 message) or `manual` (entered by staff).
    pub channel: &'static str,
}

/// Stores a new order (inside the caller's transaction), decided at `now` from the registry's
/// facts and the true time of receipt.
pub fn store(
    conn: &mut DbConn,
    authority_id: &str,
    checked: &Checked,
    policies: &PolicySet,
    deployment: &Deployment,
    receipt: &Receipt<'_>,
    now: DateTime<Utc>,
) -> Result<OrderView, OrderError> {
    let mut facts = facts(conn, authority_id, checked)?;
    let received_at = receipt.received_at;
    facts.earlier_preservations = holds::renewals(
        conn,
        &checked.order,
        authority_id,
        received_at,
        None,
        policies,
    )?;
    let decision = decide(
        &checked.order,
        &facts,
        received_at,
        &[],
        policies,
        deployment,
        now,
    );
    let id = uuid::Uuid::new_v4().to_string();
    let micros = received_at.timestamp_micros();
    let outcome = serde_json::to_value(decision.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let decision_json = serde_json::to_string(&decision)
        .map_err(|e| OrderError::Conflict(format!("cannot store the decision: {e}")))?;
    diesel::insert_into(orders::table)
        .values((
            orders::id.eq(&id),
            orders::authority_id.eq(authority_id),
            orders::reference.eq(&checked.order.reference),
            orders::instrument.eq(&checked.order.instrument),
            orders::emergency.eq(checked.order.is_emergency()),
            orders::status.eq(OrderStatus::UnderReview.as_str()),
            orders::version.eq(1),
            orders::outcome.eq(&outcome),
            orders::deadline_at.eq(decision
                .deadline
                .as_ref()
                .and_then(|d| d.due)
                .map(|d| d.timestamp_micros())),
            orders::received_at.eq(micros),
            orders::updated_at.eq(now.timestamp_micros()),
            orders::entered_by.eq(receipt.entered_by.map(|s| s.username.clone())),
            orders::hold_until.eq(hold_end(&decision)),
            orders::validation_due_at.eq(validation_due(&decision)),
            orders::follow_up_due_at.eq(follow_up_due(&decision)),
        ))
        .execute(conn)?;
    insert_version(
        conn,
        &id,
        1,
        checked,
        &decision_json,
        now.timestamp_micros(),
    )?;
    let held = holds::record(conn, &id, &checked.order, received_at)?;
    let jurisdiction = checked
        .order
        .instrument
        .split('.')
        .next()
        .unwrap_or_default()
        .to_owned();
    let actor = match receipt.entered_by {
        Some(staff) => staff.actor(),
        None => Actor::new(ActorKind::Authority, authority_id),
    };
    let channel = receipt.channel;
    let mut entry = NewEntry::new(actor, audit::Event::OrderReceived)
        .order(id.as_str())
        .reference("authority", authority_id)
        .reference("channel", channel)
        .reference("instrument", checked.order.instrument.as_str())
        .reference("order_sha256", checked.order_sha256.as_str())
        .reference("outcome", outcome.as_str())
        .reference("policy_set", decision.policy_set_id.as_str())
        .reference("target_holds", held)
        .reference("validation_proven", checked.validation.is_some())
        .reference("emergency", checked.order.is_emergency());
    if !jurisdiction.is_empty() && jurisdiction.bytes().all(|b| b.is_ascii_lowercase()) {
        entry = entry.jurisdiction(jurisdiction);
    }
    if let Some(doc) = &checked.document {
        entry = entry.reference("document_sha256", sha256_hex(doc));
    }
    entry = with_report_facts(entry, checked, &facts, &decision, received_at);
    if let Some(mail) = receipt.mail {
        crate::mail::notify(
            conn,
            mail,
            crate::mail::Recipients::LegalTeam,
            &crate::mail::Notice::NewOrder {
                order_id: id.clone(),
                reference: checked.order.reference.clone(),
                instrument: checked.order.instrument.clone(),
                emergency: checked.order.is_emergency(),
                deadline: decision.deadline.as_ref().and_then(|d| d.due),
            },
            now,
        );
        // An emergency also pages the on-call (signed webhook, when configured).
        if checked.order.is_emergency() {
            let page = crate::mail::webhook::PageFacts {
                reference: checked.order.reference.clone(),
                authority: authority_id.to_owned(),
                instrument: checked.order.instrument.clone(),
                deadline: decision.deadline.as_ref().and_then(|d| d.due),
            };
            if let Err(e) = crate::mail::webhook::queue_page(conn, mail, &id, &page, now) {
                tracing::warn!(error = %e, "the on-call page could not be queued");
            }
        }
    }
    let view = view(conn, &id, Some(authority_id))?;
    // The entry last: on PostgreSQL the append lock is held from here to the commit, and
    // every order received anywhere waits for it, so nothing else runs under it.
    audit::append(conn, &entry, now)?;
    Ok(view)
}

/// Adds what a transparency report counts to an `order.received` entry (see
/// `transparency`): the issuing country and authority kind as registered (the order's claim
/// when the registry has none), the legal basis, produce or preserve, how many identifiers and
/// accounts the order names (never which), the deadline, the true time of receipt and whether a
/// non-disclosure order came with it. Nothing here names a target or a person.
fn with_report_facts(
    entry: NewEntry,
    checked: &Checked,
    facts: &RegistryFacts,
    decision: &crate::policy::Decision,
    received_at: DateTime<Utc>,
) -> NewEntry {
    use crate::policy::Target;
    let order = &checked.order;
    let country = facts
        .issuer_country
        .clone()
        .unwrap_or_else(|| order.issuer.country.clone())
        .to_ascii_uppercase();
    let kind = facts.issuer_kind.unwrap_or(order.issuer.kind);
    let accounts = order
        .targets
        .iter()
        .filter(|t| matches!(t, Target::UserId(_) | Target::Username(_)))
        .count();
    let mut entry = entry
        .reference("issuer_country", country)
        .reference("issuer_kind", kind.as_str())
        .reference("identifiers", order.targets.len())
        .reference("accounts", accounts)
        .reference("received_at", audit::entry::format_time(received_at))
        .reference("gag", order.non_disclosure.is_some());
    if let Some(citation) = &decision.instrument_citation {
        let cut: String = citation
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        entry = entry.reference("legal_basis", cut);
    }
    if let Some(action) = decision.action {
        let name = match action {
            crate::policy::Action::Produce => "produce",
            crate::policy::Action::Preserve => "preserve",
        };
        entry = entry.reference("action", name);
    }
    if let Some(due) = decision.deadline.as_ref().and_then(|d| d.due) {
        entry = entry.reference("deadline_at", audit::entry::format_time(due));
    }
    if let Some(nd) = &order.non_disclosure {
        let until = match nd.ends {
            crate::policy::NonDisclosureEnd::Until(t) => audit::entry::format_time(t),
            crate::policy::NonDisclosureEnd::OpenEnded => "open_ended".to_owned(),
        };
        entry = entry.reference("gag_until", until);
    }
    entry
}

/// When a preservation order's holds end under `decision` (UTC micros); `None` otherwise, and
/// `None` while the hold waits for an announced follow-up request (e-Evidence Annex V, Marco
/// Civil's court application): a person then ends it.
pub(crate) fn hold_end(decision: &crate::policy::Decision) -> Option<i64> {
    (decision.action == Some(crate::policy::Action::Preserve))
        .then(|| {
            decision
                .preservation
                .as_ref()
                .filter(|p| !p.until_follow_up)
                .map(|p| p.expires_at.timestamp_micros())
        })
        .flatten()
}

/// When the earliest follow-up task of `decision` is due (UTC micros).
pub(crate) fn follow_up_due(decision: &crate::policy::Decision) -> Option<i64> {
    decision
        .follow_ups
        .iter()
        .filter_map(|f| f.due)
        .min()
        .map(|d| d.timestamp_micros())
}

/// When the ex-post validation is due under `decision` (UTC micros).
pub(crate) fn validation_due(decision: &crate::policy::Decision) -> Option<i64> {
    decision
        .validation_due
        .as_ref()
        .map(|v| v.due.timestamp_micros())
}

/// Inserts version `version` of order `id` with its decision and document.
pub(crate) fn insert_version(
    conn: &mut DbConn,
    id: &str,
    version: i32,
    checked: &Checked,
    decision_json: &str,
    micros: i64,
) -> QueryResult<()> {
    let (kid, token) = match &checked.validation {
        Some((v, token)) => (Some(v.kid.clone()), Some(token.clone())),
        None => (None, None),
    };
    diesel::insert_into(order_versions::table)
        .values((
            order_versions::order_id.eq(id),
            order_versions::version.eq(version),
            order_versions::order_json.eq(&checked.order_json),
            order_versions::order_sha256.eq(&checked.order_sha256),
            order_versions::validation_kid.eq(kid),
            order_versions::validation_token.eq(token),
            order_versions::validator_authority_id.eq(&checked.registered_validator),
            order_versions::decision_json.eq(decision_json),
            order_versions::created_at.eq(micros),
        ))
        .execute(conn)?;
    if let Some(doc) = &checked.document {
        diesel::insert_into(order_documents::table)
            .values((
                order_documents::order_id.eq(id),
                order_documents::version.eq(version),
                order_documents::media_type.eq("application/pdf"),
                order_documents::sha256.eq(sha256_hex(doc)),
                order_documents::size.eq(i64::try_from(doc.len()).unwrap_or(i64::MAX)),
                order_documents::content.eq(doc),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// A rejected submission as its authority may see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Rejection {
    /// The record's id.
    pub id: String,
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// SHA-256 (hex) of the body as received.
    pub body_sha256: String,
    /// Its size in bytes.
    pub size: i64,
    /// The HTTP status answered.
    pub status: i32,
    /// Why it was refused.
    pub errors: Vec<FieldError>,
}

/// A rejected submission of `authority_id`.
pub fn rejection(conn: &mut DbConn, authority_id: &str, id: &str) -> Result<Rejection, OrderError> {
    // By the primary key alone, the owner compared here (see `orders::view`: with the
    // authority in the query, PostgreSQL's generic plan can read all of its submissions).
    type Row = (String, i64, String, i64, i32, String);
    let row: Option<(String, Row)> = rejected_submissions::table
        .filter(rejected_submissions::id.eq(id))
        .select((
            rejected_submissions::authority_id,
            (
                rejected_submissions::id,
                rejected_submissions::received_at,
                rejected_submissions::body_sha256,
                rejected_submissions::size,
                rejected_submissions::status,
                rejected_submissions::reasons,
            ),
        ))
        .first(conn)
        .optional()?;
    let (_, (id, at, body_sha256, size, status, reasons)) = row
        .filter(|(owner, _)| owner == authority_id)
        .ok_or(OrderError::NotFound)?;
    let errors: Vec<(String, String)> = serde_json::from_str::<Vec<serde_json::Value>>(&reasons)
        .unwrap_or_default()
        .into_iter()
        .map(|v| {
            (
                v["field"].as_str().unwrap_or_default().to_owned(),
                v["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    Ok(Rejection {
        id,
        received_at: crate::metadata::normalize::from_micros(at),
        body_sha256,
        size,
        status,
        errors: errors
            .into_iter()
            .map(|(f, m)| FieldError::new(f, m))
            .collect(),
    })
}
