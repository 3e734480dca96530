//! Answering an HI-1 message from an authenticated authority.
//!
//! The message is parsed strictly; its sender identifier must be the one registered to the
//! authority whose key signed the request, and its receiver Writ's own. Each action gets its own
//! answer, in the standard's response message; an action Writ cannot perform gets an
//! `ErrorInformation` naming why, never a silent drop. All the message's writes (the kept
//! message, its objects, the orders its tasks became with their holds and audit entries) commit
//! in one transaction; each CREATE runs in a savepoint so that a refused one leaves nothing
//! behind. A retransmission (same transaction identifier, same bytes) gets the first answer.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::map::{self, Context, Sender};
use super::model::{
    ActionRequest, ActionResponse, Authorisation, CspConfig, Dictionary, DictionaryEntry,
    DictionaryValue, Document, EndpointId, ErrorInfo, FormatDefinition, Header, ListRecord,
    ListRequest, Message, Object, Outcome, Payload, TargetingConfiguration, Version,
};
use super::{Limits, parse, write};
use crate::audit::{self, Actor, ActorKind, NewEntry};
use crate::authority::{self, Authority, EtsiIdentity};
use crate::db::schema::{
    authorities, etsi_deliveries, etsi_messages, etsi_objects, orders, target_holds,
};
use crate::db::{DbConn, DbError, write_tx};
use crate::orders::intake::{self, Checked, Receipt};
use crate::orders::{OrderError, OrderStatus};
use crate::policy::{Deployment, PolicySet};
use crate::settings::{EtsiSettings, MailSettings};

/// Error codes Writ puts in `ErrorInformation` (HTTP-like, so an integrator reads them at once).
pub mod codes {
    /// The message or object is malformed or incomplete.
    pub const INVALID: u64 = 400;
    /// The sender may not do this (identity, ownership).
    pub const FORBIDDEN: u64 = 403;
    /// No such object held for the sender.
    pub const NOT_FOUND: u64 = 404;
    /// The object exists already, or the transaction identifier was used for other bytes.
    pub const CONFLICT: u64 = 409;
    /// A document in a format Writ does not take.
    pub const UNSUPPORTED_MEDIA: u64 = 415;
    /// The task cannot become a valid order (the message names the element).
    pub const UNPROCESSABLE: u64 = 422;
    /// An action or object type Writ does not support.
    pub const NOT_SUPPORTED: u64 = 501;
}

/// Most associated objects a task may name (each is looked up in its kept message).
const MAX_ASSOCIATED: usize = 16;

/// A profile of HI-1 layered on Writ's own handling (the EU e-Evidence endpoints): it may
/// answer an action itself, and it hears of every task that became an order, inside the
/// message's transaction.
pub trait Profile: std::fmt::Debug + Sync {
    /// Answers `action` itself, or `Ok(None)` to let Writ's own handling answer it. Runs in a
    /// savepoint: an error leaves nothing of the action behind.
    fn act(
        &self,
        c: &mut DbConn,
        cx: &ProfileContext<'_>,
        action: &super::model::Action,
    ) -> Result<Option<Outcome>, Fail>;
    /// `task` (resting on `authorisation`) became order `order_id`; inside the CREATE's
    /// savepoint, so an error refuses the task and leaves no order behind.
    fn task_created(
        &self,
        c: &mut DbConn,
        cx: &ProfileContext<'_>,
        task: &Object,
        authorisation: Option<&Authorisation>,
        order_id: &str,
    ) -> Result<(), Fail>;
    /// Completes the order `task` (resting on `authorisation`) became from what the profile
    /// carries beyond plain HI-1 (the e-Evidence validating authority, addressee, ...), before
    /// it is checked and decided. Inside the CREATE's savepoint.
    /// Returns the registry's id of the validating authority when the profile names one the
    /// registry knows (the engine then judges the validator on its registered kind; the
    /// validation stays a claim, no signature of the validator's).
    fn complete_order(
        &self,
        _c: &mut DbConn,
        _cx: &ProfileContext<'_>,
        _authorisation: Option<&Authorisation>,
        _order: &mut crate::policy::Order,
    ) -> Result<Option<String>, Fail> {
        Ok(None)
    }
}

/// What a [`Profile`] sees of the message being answered.
#[derive(Debug)]
pub struct ProfileContext<'a> {
    /// The registered authority that signed the request.
    pub authority: &'a Authority,
    /// The message's header.
    pub header: &'a Header,
    /// The kept message's id.
    pub message_id: &'a str,
    /// The rules of the exchange.
    pub rules: &'a Rules<'a>,
    /// Now.
    pub now: DateTime<Utc>,
    /// Authorisations and documents created by this message so far.
    pub created: &'a HashMap<String, Object>,
}

/// What answering a message needs.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// `[etsi]` settings.
    pub settings: &'a EtsiSettings,
    /// The policies orders are decided under.
    pub policies: &'a PolicySet,
    /// The provider's position.
    pub deployment: &'a Deployment,
    /// Where new-order notices go.
    pub mail: &'a MailSettings,
    /// Largest order document, in bytes (the JSON API's limit).
    pub document_limit: usize,
    /// The profile layered on Writ's own handling (`None` at `/etsi/hi1`).
    pub profile: Option<&'a dyn Profile>,
}

/// The answer to a message: an HTTP status and an `HI1Message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status: 200 when the message was answered action by action (each action may still
    /// carry an error), 4xx when the whole message was refused.
    pub status: u16,
    /// The response `HI1Message`.
    pub xml: String,
    /// Whether this repeats the answer to an earlier identical message.
    pub replayed: bool,
}

/// Writ's own endpoint identifier.
pub fn writ_endpoint(settings: &EtsiSettings) -> EndpointId {
    EndpointId {
        country: settings.country_code.clone(),
        id: settings.unique_identifier.clone(),
    }
}

fn endpoint_of(identity: &EtsiIdentity) -> EndpointId {
    EndpointId {
        country: identity.country_code.clone(),
        id: identity.unique_identifier.clone(),
    }
}

/// The version block of Writ's messages (a response echoes the request's).
pub fn writ_version() -> Version {
    Version {
        etsi_version: "V1.23.1".into(),
        national_profile_owner: "XX".into(),
        national_profile_version: "v1.0".into(),
    }
}

/// A response header from Writ to `to`.
pub fn header(
    settings: &EtsiSettings,
    to: EndpointId,
    transaction_id: String,
    version: Version,
    now: DateTime<Utc>,
) -> Header {
    Header {
        sender: writ_endpoint(settings),
        receiver: to,
        transaction_id,
        timestamp: now.fixed_offset(),
        version,
        workflow_identifier: None,
    }
}

/// An `ErrorInformation`.
pub fn error(code: u64, description: impl Into<String>) -> ErrorInfo {
    ErrorInfo {
        code,
        description: description.into(),
    }
}

/// Answers `body` from `authority_id` (already authenticated by its body-bound token).
pub fn receive(
    conn: &mut DbConn,
    authority_id: &str,
    body: &[u8],
    rules: &Rules<'_>,
    now: DateTime<Utc>,
) -> Result<Answer, OrderError> {
    let parsed = parse(body, &limits(rules.settings));
    receive_parsed(conn, authority_id, body, parsed, rules, now)
}

/// Deletes the kept bodies of HI-1 messages received before `before`, except those that created
/// an object of an order still open (a GET of its task reads the object back from them), with
/// one `etsi.message_bodies_purged` audit entry in the same transaction. Their hash and size
/// stay. Returns how many bodies were deleted.
pub fn purge_message_bodies(
    conn: &mut DbConn,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<usize, OrderError> {
    let cutoff = before.timestamp_micros();
    write_tx(conn, |c| {
        // A body that created an object of an order still open stays: a GET of that task reads
        // the object back from it.
        let still_needed = etsi_objects::table
            .inner_join(orders::table.on(orders::id.nullable().eq(etsi_objects::order_id)))
            .filter(etsi_objects::message_id.is_not_null())
            .filter(orders::status.ne_all([
                OrderStatus::Released.as_str(),
                OrderStatus::Refused.as_str(),
                OrderStatus::Withdrawn.as_str(),
            ]))
            .select(etsi_objects::message_id.assume_not_null());
        let needed: std::collections::HashSet<String> =
            still_needed.load::<String>(c)?.into_iter().collect();
        let due: Vec<String> = etsi_messages::table
            .filter(etsi_messages::body.is_not_null())
            .filter(etsi_messages::received_at.lt(cutoff))
            .select(etsi_messages::id)
            .load(c)?;
        let due: Vec<String> = due.into_iter().filter(|id| !needed.contains(id)).collect();
        let mut purged = 0;
        for ids in due.chunks(500) {
            purged += diesel::update(etsi_messages::table.filter(etsi_messages::id.eq_any(ids)))
                .set(etsi_messages::body.eq(None::<Vec<u8>>))
                .execute(c)?;
        }
        if purged > 0 {
            let entry = NewEntry::new(
                Actor::new(ActorKind::System, "retention"),
                audit::Event::EtsiMessageBodiesPurged,
            )
            .reference("messages", purged)
            .reference("received_before", before.to_rfc3339());
            audit::append(c, &entry, now)?;
        }
        Ok(purged)
    })
}

/// Runs [`purge_message_bodies`] every `interval`, for bodies older than `days` (0: never).
pub async fn run_body_retention(db: crate::db::Db, days: u32, interval: std::time::Duration) {
    if days == 0 {
        return;
    }
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let result = db
            .run(move |conn| {
                let now = Utc::now();
                purge_message_bodies(conn, now - chrono::Duration::days(i64::from(days)), now)
            })
            .await;
        match result {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                messages = n,
                "kept HI-1 message bodies past retention deleted"
            ),
            Err(e) => tracing::warn!(error = %e, "HI-1 body retention failed; retrying later"),
        }
    }
}

/// The parsing limits of these settings.
pub fn limits(settings: &EtsiSettings) -> Limits {
    Limits {
        max_bytes: settings.message_limit_bytes,
        max_depth: settings.max_depth,
        ..Limits::default()
    }
}

/// [`receive`] with the message already parsed (by [`parse`] under [`limits`]), so that the
/// caller can parse before it takes a database connection: one authority's large message then
/// holds no connection while it is read.
pub fn receive_parsed(
    conn: &mut DbConn,
    authority_id: &str,
    body: &[u8],
    parsed: Result<crate::etsi::model::Message, crate::etsi::ParseError>,
    rules: &Rules<'_>,
    now: DateTime<Utc>,
) -> Result<Answer, OrderError> {
    // Releases not picked up by the deliverer yet get their deliveries first, so that the
    // answer lists and serves them.
    super::deliver::take_released(conn, now)?;
    let settings = rules.settings;
    let registered: Authority = authorities::table
        .find(authority_id)
        .select(Authority::as_select())
        .first(conn)?;
    let identity = authority::etsi_of(conn, authority_id).map_err(registry_error)?;
    let peer = identity.as_ref().map(endpoint_of).unwrap_or(EndpointId {
        country: registered.country.clone(),
        id: registered.id.clone(),
    });
    let Some(identity) = identity else {
        return refuse(
            conn,
            authority_id,
            body,
            rules,
            &peer,
            None,
            403,
            error(
                codes::FORBIDDEN,
                "no HI-1 sender identifier is registered for the authority that signed this request; \
             the provider registers it with `writ authority etsi`",
            ),
            now,
        );
    };
    let message = match parsed {
        Ok(m) => m,
        Err(e) => {
            return refuse(
                conn,
                authority_id,
                body,
                rules,
                &peer,
                None,
                400,
                error(
                    codes::INVALID,
                    format!("the message is not a valid HI1Message: {e}"),
                ),
                now,
            );
        }
    };
    let txid = Some(message.header.transaction_id.clone());
    if message.header.sender != peer {
        return refuse(
            conn,
            authority_id,
            body,
            rules,
            &peer,
            txid,
            403,
            error(
                codes::FORBIDDEN,
                format!(
                    "the sender identifier {}/{} is not the one registered to the authority that signed \
             the request",
                    message.header.sender.country, message.header.sender.id
                ),
            ),
            now,
        );
    }
    let writ = writ_endpoint(settings);
    if message.header.receiver != writ {
        return refuse(
            conn,
            authority_id,
            body,
            rules,
            &peer,
            txid,
            400,
            error(
                codes::INVALID,
                format!(
                    "the message is addressed to {}/{}; this service is {}/{}",
                    message.header.receiver.country,
                    message.header.receiver.id,
                    writ.country,
                    writ.id
                ),
            ),
            now,
        );
    }
    let Payload::Requests(actions) = &message.payload else {
        return refuse(
            conn,
            authority_id,
            body,
            rules,
            &peer,
            txid,
            400,
            error(
                codes::INVALID,
                "Writ takes requests (RequestPayload) at this endpoint; responses to Writ's DELIVER \
             messages go back on the same HTTP exchange",
            ),
            now,
        );
    };
    let mut objects = std::collections::BTreeSet::new();
    let twice = actions.iter().find_map(|a| match &a.action {
        super::model::Action::Create(o) => o
            .identifier()
            .filter(|id| !objects.insert(id.to_owned()))
            .map(str::to_owned),
        _ => None,
    });
    if let Some(id) = twice {
        return refuse(
            conn,
            authority_id,
            body,
            rules,
            &peer,
            txid,
            400,
            error(
                codes::INVALID,
                format!("object {id} is created twice in one message"),
            ),
            now,
        );
    }
    let mut ids = std::collections::BTreeSet::new();
    if let Some(dup) = actions.iter().find(|a| !ids.insert(a.id)) {
        return refuse(
            conn,
            authority_id,
            body,
            rules,
            &peer,
            txid,
            400,
            error(
                codes::INVALID,
                format!("ActionIdentifier {} is used twice", dup.id),
            ),
            now,
        );
    }
    let hash = crate::digest::sha256_hex(body);
    if let Some(answer) = earlier_answer(conn, authority_id, &message.header.transaction_id, &hash)?
    {
        return match answer {
            Some(a) => Ok(a),
            None => refuse(
                conn,
                authority_id,
                body,
                rules,
                &peer,
                txid,
                409,
                error(
                    codes::CONFLICT,
                    format!(
                        "transaction identifier {} was already used for a different message",
                        message.header.transaction_id
                    ),
                ),
                now,
            ),
        };
    }
    let sender = Sender {
        authority: &registered,
        etsi: &identity,
    };
    let answered = write_tx(conn, |c| {
        answer_actions(c, sender, &message, actions, body, &hash, rules, now)
    });
    match answered {
        Err(OrderError::Db(DbError::Query(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )))) => {
            // The same message raced in on another connection and was answered first.
            match earlier_answer(conn, authority_id, &message.header.transaction_id, &hash)? {
                Some(Some(a)) => Ok(a),
                _ => Err(OrderError::Conflict(
                    "the same transaction identifier is being answered; retry".into(),
                )),
            }
        }
        other => other,
    }
}

fn registry_error(e: authority::RegistryError) -> OrderError {
    match e {
        authority::RegistryError::Db(d) => OrderError::Db(d),
        other => OrderError::Conflict(other.to_string()),
    }
}

/// The answer already given under this transaction identifier: `Some(Some)` for the same
/// bytes, `Some(None)` for other bytes, `None` when the identifier is new.
fn earlier_answer(
    conn: &mut DbConn,
    authority_id: &str,
    transaction_id: &str,
    hash: &str,
) -> Result<Option<Option<Answer>>, OrderError> {
    let found: Option<(String, i32, String)> = etsi_messages::table
        .filter(etsi_messages::authority_id.eq(authority_id))
        .filter(etsi_messages::transaction_id.eq(transaction_id))
        .filter(etsi_messages::status.eq("answered"))
        .select((
            etsi_messages::body_sha256,
            etsi_messages::http_status,
            etsi_messages::response,
        ))
        .first(conn)
        .optional()?;
    let Some((sha, status, xml)) = found else {
        return Ok(None);
    };
    if sha != hash {
        return Ok(Some(None));
    }
    // The first delivery may still be waiting for its commit to reach the disk: the answer is
    // sent again only once it is there.
    crate::db::flush::read_is_durable(conn)?;
    Ok(Some(Some(Answer {
        status: u16::try_from(status).unwrap_or(200),
        xml,
        replayed: true,
    })))
}

/// Refuses a whole message: keeps its hash and size with the reason's code, and answers with a
/// response whose payload is the error.
#[allow(clippy::too_many_arguments)]
fn refuse(
    conn: &mut DbConn,
    authority_id: &str,
    body: &[u8],
    rules: &Rules<'_>,
    peer: &EndpointId,
    transaction_id: Option<String>,
    status: u16,
    info: ErrorInfo,
    now: DateTime<Utc>,
) -> Result<Answer, OrderError> {
    let txid = transaction_id
        .filter(|t| t.len() <= 100)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let message = Message {
        header: header(
            rules.settings,
            peer.clone(),
            txid.clone(),
            writ_version(),
            now,
        ),
        payload: Payload::Error(info.clone()),
        signed: false,
    };
    let xml = write(&message);
    let id = uuid::Uuid::new_v4().to_string();
    let hash = crate::digest::sha256_hex(body);
    write_tx(conn, |c| {
        diesel::insert_into(etsi_messages::table)
            .values((
                etsi_messages::id.eq(&id),
                etsi_messages::authority_id.eq(authority_id),
                etsi_messages::transaction_id.eq(&txid),
                etsi_messages::received_at.eq(now.timestamp_micros()),
                etsi_messages::body_sha256.eq(&hash),
                etsi_messages::size.eq(i64::try_from(body.len()).unwrap_or(i64::MAX)),
                etsi_messages::body.eq(None::<Vec<u8>>),
                etsi_messages::status.eq("refused"),
                etsi_messages::http_status.eq(i32::from(status)),
                etsi_messages::response.eq(&xml),
            ))
            .execute(c)?;
        let entry = NewEntry::new(
            Actor::new(ActorKind::Authority, authority_id),
            audit::Event::EtsiMessageRefused,
        )
        .reference("message", id.as_str())
        .reference("body_sha256", hash.as_str())
        .reference("size", body.len())
        .reference("error_code", info.code);
        audit::append(c, &entry, now)?;
        Ok::<_, OrderError>(())
    })?;
    Ok(Answer {
        status,
        xml,
        replayed: false,
    })
}

/// Why one action failed: an answer for the sender, or a failure of Writ's own.
#[derive(Debug)]
pub enum Fail {
    /// Answered to the sender in the action's response.
    Answer(ErrorInfo),
    /// Writ's own failure: the message is not answered.
    Internal(OrderError),
}

impl From<diesel::result::Error> for Fail {
    fn from(e: diesel::result::Error) -> Self {
        Fail::Internal(e.into())
    }
}

impl From<OrderError> for Fail {
    fn from(e: OrderError) -> Self {
        Fail::Internal(e)
    }
}

/// What one message is working with.
struct Work<'a> {
    sender: Sender<'a>,
    header: &'a Header,
    message_id: String,
    rules: &'a Rules<'a>,
    now: DateTime<Utc>,
    /// Authorisations and documents created by this message so far.
    created: HashMap<String, Object>,
}

#[allow(clippy::too_many_arguments)]
fn answer_actions(
    c: &mut DbConn,
    sender: Sender<'_>,
    message: &Message,
    actions: &[ActionRequest],
    body: &[u8],
    hash: &str,
    rules: &Rules<'_>,
    now: DateTime<Utc>,
) -> Result<Answer, OrderError> {
    let authority_id = sender.authority.id.clone();
    let message_id = uuid::Uuid::new_v4().to_string();
    // A message that creates nothing is answered afresh when repeated, and neither it nor its
    // answer (which may carry a released package) is kept: only its hash and size, as for a
    // refused one. Packages live only under their retention.
    let read_only = actions.iter().all(|a| {
        matches!(
            a.action,
            super::model::Action::Get { .. }
                | super::model::Action::List(_)
                | super::model::Action::GetCspConfig
        )
    });
    diesel::insert_into(etsi_messages::table)
        .values((
            etsi_messages::id.eq(&message_id),
            etsi_messages::authority_id.eq(&authority_id),
            etsi_messages::transaction_id.eq(&message.header.transaction_id),
            etsi_messages::received_at.eq(now.timestamp_micros()),
            etsi_messages::body_sha256.eq(hash),
            etsi_messages::size.eq(i64::try_from(body.len()).unwrap_or(i64::MAX)),
            etsi_messages::body.eq((!read_only).then_some(body)),
            etsi_messages::status.eq(if read_only { "read" } else { "answered" }),
            etsi_messages::http_status.eq(200),
            etsi_messages::response.eq(""),
        ))
        .execute(c)?;
    let mut work = Work {
        sender,
        header: &message.header,
        message_id: message_id.clone(),
        rules,
        now,
        created: HashMap::new(),
    };
    // Authorisations and documents first, so that tasks may name them in any order.
    let first = |a: &ActionRequest| {
        matches!(
            a.action,
            super::model::Action::Create(Object::Authorisation(_) | Object::Document(_))
        )
    };
    let mut outcomes: HashMap<u64, Outcome> = HashMap::new();
    for pass in [true, false] {
        for a in actions.iter().filter(|a| first(a) == pass) {
            let outcome = match act(c, &mut work, &a.action) {
                Ok(o) => o,
                Err(Fail::Answer(info)) => Outcome::Error(info),
                Err(Fail::Internal(e)) => return Err(e),
            };
            outcomes.insert(a.id, outcome);
        }
    }
    let responses: Vec<ActionResponse> = actions
        .iter()
        .filter_map(|a| {
            outcomes
                .remove(&a.id)
                .map(|outcome| ActionResponse { id: a.id, outcome })
        })
        .collect();
    let errors = responses
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Error(_)))
        .count();
    let reply = Message {
        header: header(
            rules.settings,
            message.header.sender.clone(),
            message.header.transaction_id.clone(),
            message.header.version.clone(),
            now,
        ),
        payload: Payload::Responses(responses),
        signed: false,
    };
    let xml = write(&reply);
    if !read_only {
        diesel::update(etsi_messages::table.find(&message_id))
            .set(etsi_messages::response.eq(&xml))
            .execute(c)?;
    }
    let entry = NewEntry::new(
        Actor::new(ActorKind::Authority, authority_id.as_str()),
        audit::Event::EtsiMessageAnswered,
    )
    .reference("message", message_id.as_str())
    .reference("body_sha256", hash)
    .reference("size", body.len())
    .reference("actions", actions.len())
    .reference("errors", errors);
    audit::append(c, &entry, now)?;
    Ok(Answer {
        status: 200,
        xml,
        replayed: false,
    })
}

fn act(
    c: &mut DbConn,
    work: &mut Work<'_>,
    action: &super::model::Action,
) -> Result<Outcome, Fail> {
    use super::model::Action;
    if let Some(profile) = work.rules.profile {
        let created = std::mem::take(&mut work.created);
        let answered = c.transaction(|sp| {
            let cx = ProfileContext {
                authority: work.sender.authority,
                header: work.header,
                message_id: &work.message_id,
                rules: work.rules,
                now: work.now,
                created: &created,
            };
            profile.act(sp, &cx, action)
        });
        work.created = created;
        if let Some(outcome) = answered? {
            return Ok(outcome);
        }
    }
    match action {
        Action::GetCspConfig => Ok(Outcome::CspConfig(Box::new(csp_config(work)?))),
        Action::Get { identifier } => {
            let found = held_object(
                c,
                &work.sender.authority.id,
                identifier,
                work.rules,
                work.now,
            )?;
            if let Some(Object::Delivery(d)) = &found
                && let Some(binary) = &d.binary
            {
                let order_id: Option<String> = etsi_deliveries::table
                    .find(identifier)
                    .select(etsi_deliveries::order_id)
                    .first(c)
                    .optional()?;
                let entry = NewEntry::new(
                    Actor::new(ActorKind::Authority, work.sender.authority.id.as_str()),
                    audit::Event::OrderPackageDownloaded,
                )
                .order(order_id.unwrap_or_default())
                .reference("channel", "etsi")
                .reference(
                    "delivered_sha256",
                    binary.checksum.clone().unwrap_or_default(),
                );
                audit::append(c, &entry, work.now).map_err(|e| Fail::Internal(e.into()))?;
            }
            found.map(Outcome::Get).ok_or_else(|| {
                Fail::Answer(error(
                    codes::NOT_FOUND,
                    format!("no object {identifier} is held for this sender"),
                ))
            })
        }
        Action::List(filter) => Ok(Outcome::List(list(c, work, filter)?)),
        Action::Create(object) => {
            let created = c.transaction(|sp| create(sp, work, object));
            created.map(|identifier| Outcome::Create { identifier })
        }
        Action::Update(object) => Err(Fail::Answer(error(
            codes::NOT_SUPPORTED,
            format!(
                "UPDATE of {} objects is not supported: a task is amended or withdrawn through \
                 Writ's order API, or replaced by a new task",
                object.type_name()
            ),
        ))),
        Action::Deliver { .. } => Err(Fail::Answer(error(
            codes::NOT_SUPPORTED,
            "Writ sends DELIVER messages; it does not take deliveries",
        ))),
    }
}

fn check_owner(work: &Work<'_>, base: &super::model::ObjectBase) -> Result<(), Fail> {
    let me = &work.header.sender;
    if base.owner.as_ref().is_some_and(|o| *o != me.id)
        || base.country.as_ref().is_some_and(|c| *c != me.country)
    {
        return Err(Fail::Answer(error(
            codes::FORBIDDEN,
            format!(
                "object {}: its CountryCode/OwnerIdentifier must be the sender's ({}/{})",
                base.identifier, me.country, me.id
            ),
        )));
    }
    if base.identifier.is_empty() || base.identifier.len() > 100 {
        return Err(Fail::Answer(error(
            codes::INVALID,
            "an ObjectIdentifier must be 1 to 100 characters",
        )));
    }
    Ok(())
}

/// Whether an object of this identifier is held for the sender.
pub fn is_held(c: &mut DbConn, authority_id: &str, object_id: &str) -> Result<bool, Fail> {
    let n: i64 = etsi_objects::table
        .filter(etsi_objects::authority_id.eq(authority_id))
        .filter(etsi_objects::object_id.eq(object_id))
        .count()
        .get_result(c)?;
    let d: i64 = etsi_deliveries::table
        .filter(etsi_deliveries::authority_id.eq(authority_id))
        .filter(etsi_deliveries::id.eq(object_id))
        .count()
        .get_result(c)?;
    Ok(n + d > 0)
}

fn record_object(
    c: &mut DbConn,
    work: &Work<'_>,
    object_id: &str,
    object_type: &str,
    order_id: Option<&str>,
    parent_id: Option<&str>,
) -> Result<(), Fail> {
    diesel::insert_into(etsi_objects::table)
        .values((
            etsi_objects::authority_id.eq(&work.sender.authority.id),
            etsi_objects::object_id.eq(object_id),
            etsi_objects::object_type.eq(object_type),
            etsi_objects::message_id.eq(Some(&work.message_id)),
            etsi_objects::order_id.eq(order_id),
            etsi_objects::parent_id.eq(parent_id),
            etsi_objects::created_at.eq(work.now.timestamp_micros()),
        ))
        .execute(c)
        .map_err(|e| match e {
            // Another message created the same object at the same moment.
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => Fail::Answer(error(
                codes::CONFLICT,
                format!("object {object_id} already exists"),
            )),
            other => other.into(),
        })?;
    Ok(())
}

fn create(c: &mut DbConn, work: &mut Work<'_>, object: &Object) -> Result<String, Fail> {
    let (base, kind) = match object {
        Object::Authorisation(o) => (&o.base, "Authorisation"),
        Object::Document(o) => (&o.base, "Document"),
        Object::LdTask(o) => (&o.base, "LDTask"),
        Object::LpTask(o) => (&o.base, "LPTask"),
        Object::Delivery(_) => {
            return Err(Fail::Answer(error(
                codes::NOT_SUPPORTED,
                "Writ creates DeliveryObjects itself; an authority cannot CREATE one",
            )));
        }
        Object::Notification(_) => {
            return Err(Fail::Answer(error(
                codes::NOT_SUPPORTED,
                "Writ sends NotificationObjects; an authority cannot CREATE one",
            )));
        }
        Object::Unsupported { xsi_type, .. } => {
            return Err(Fail::Answer(error(
                codes::NOT_SUPPORTED,
                format!(
                    "object type {xsi_type} is not supported; Writ takes AuthorisationObject, \
                     LDTaskObject, LPTaskObject and DocumentObject"
                ),
            )));
        }
    };
    check_owner(work, base)?;
    let authority_id = work.sender.authority.id.clone();
    if is_held(c, &authority_id, &base.identifier)? || work.created.contains_key(&base.identifier) {
        return Err(Fail::Answer(error(
            codes::CONFLICT,
            format!("object {} already exists", base.identifier),
        )));
    }
    match object {
        Object::Document(d) => {
            if let Some(body) = &d.body {
                let pdf = body.contents.starts_with(b"%PDF-");
                let declared_ok = body
                    .content_type
                    .as_deref()
                    .is_none_or(|t| t.eq_ignore_ascii_case("application/pdf"));
                if !pdf || !declared_ok {
                    return Err(Fail::Answer(error(
                        codes::UNSUPPORTED_MEDIA,
                        format!(
                            "document {}: Writ takes order documents as application/pdf",
                            d.base.identifier
                        ),
                    )));
                }
                let limit = work.rules.document_limit;
                if body.contents.len() > limit {
                    return Err(Fail::Answer(error(
                        codes::INVALID,
                        format!("the document may be at most {limit} bytes"),
                    )));
                }
            }
            record_object(c, work, &d.base.identifier, kind, None, None)?;
        }
        Object::Authorisation(a) => {
            record_object(c, work, &a.base.identifier, kind, None, None)?;
        }
        Object::LdTask(_) | Object::LpTask(_) => {
            let identifier = base.identifier.clone();
            let (order_id, parent) = create_task(c, work, object)?;
            record_object(
                c,
                work,
                &identifier,
                kind,
                Some(&order_id),
                parent.as_deref(),
            )?;
        }
        Object::Delivery(_) | Object::Notification(_) | Object::Unsupported { .. } => {}
    }
    if matches!(object, Object::Authorisation(_) | Object::Document(_)) {
        work.created.insert(base.identifier.clone(), object.clone());
    }
    Ok(base.identifier.clone())
}

/// An object this sender created earlier, read back from the message that carried it, with
/// the order it became (a task).
pub fn stored_object(
    c: &mut DbConn,
    authority_id: &str,
    object_id: &str,
) -> Result<Option<(Object, Option<String>)>, OrderError> {
    let row: Option<(Option<String>, Option<String>)> = etsi_objects::table
        .filter(etsi_objects::authority_id.eq(authority_id))
        .filter(etsi_objects::object_id.eq(object_id))
        .select((etsi_objects::message_id, etsi_objects::order_id))
        .first(c)
        .optional()?;
    let Some((Some(message_id), order_id)) = row else {
        return Ok(None);
    };
    let body: Option<Option<Vec<u8>>> = etsi_messages::table
        .find(&message_id)
        .select(etsi_messages::body)
        .first(c)
        .optional()?;
    let Some(Some(body)) = body else {
        return Ok(None);
    };
    // It passed the limits in force when it came; read it back under the widest ones.
    let limits = Limits {
        max_bytes: usize::MAX,
        max_depth: 256,
        max_nodes: usize::MAX,
        max_attributes_per_element: usize::MAX,
        max_attributes: usize::MAX,
    };
    let message = parse(&body, &limits)
        .map_err(|e| OrderError::Conflict(format!("a kept HI-1 message no longer parses: {e}")))?;
    let Payload::Requests(actions) = message.payload else {
        return Ok(None);
    };
    Ok(actions.into_iter().find_map(|a| match a.action {
        super::model::Action::Create(o) if o.identifier() == Some(object_id) => {
            Some((o, order_id.clone()))
        }
        _ => None,
    }))
}

/// The authorisation a task rests on and the PDF documents that go with it.
fn task_context(
    c: &mut DbConn,
    work: &Work<'_>,
    associated: &[String],
) -> Result<(Option<Authorisation>, Option<Vec<u8>>), Fail> {
    let authority_id = work.sender.authority.id.clone();
    let mut auth = None;
    let mut documents: Vec<Document> = Vec::new();
    let lookup = |c: &mut DbConn, id: &str| -> Result<Option<Object>, Fail> {
        if let Some(o) = work.created.get(id) {
            return Ok(Some(o.clone()));
        }
        Ok(stored_object(c, &authority_id, id)?.map(|(o, _)| o))
    };
    for id in associated {
        match lookup(c, id)? {
            Some(Object::Authorisation(a)) if auth.is_none() => auth = Some(a),
            Some(Object::Document(d)) => documents.push(d),
            Some(_) => {}
            None if is_held(c, &authority_id, id)? => {}
            None => {
                return Err(Fail::Answer(error(
                    codes::NOT_FOUND,
                    format!("associated object {id} is not held for this sender"),
                )));
            }
        }
    }
    if let Some(a) = &auth {
        for id in &a.base.associated {
            if let Some(Object::Document(d)) = lookup(c, id)? {
                documents.push(d);
            }
        }
        // Documents of this message that name the authorisation.
        for o in work.created.values() {
            if let Object::Document(d) = o
                && d.base.associated.contains(&a.base.identifier)
                && !documents
                    .iter()
                    .any(|x| x.base.identifier == d.base.identifier)
            {
                documents.push(d.clone());
            }
        }
    }
    let pdf = documents
        .into_iter()
        .find_map(|d| d.body.map(|b| b.contents));
    Ok((auth, pdf))
}

fn create_task(
    c: &mut DbConn,
    work: &Work<'_>,
    object: &Object,
) -> Result<(String, Option<String>), Fail> {
    let settings = work.rules.settings;
    let (associated, csp) = match object {
        Object::LdTask(t) => (&t.base.associated, t.csp_id.as_ref()),
        Object::LpTask(t) => (&t.base.associated, t.csp_id.as_ref()),
        _ => return Err(Fail::Answer(error(codes::NOT_SUPPORTED, "not a task"))),
    };
    if let Some(csp) = csp
        && *csp != writ_endpoint(settings)
    {
        return Err(Fail::Answer(error(
            codes::INVALID,
            format!(
                "the task's CSPID is {}/{}; this service is {}/{}",
                csp.country, csp.id, settings.country_code, settings.unique_identifier
            ),
        )));
    }
    if associated.len() > MAX_ASSOCIATED {
        return Err(Fail::Answer(error(
            codes::INVALID,
            format!("a task may name at most {MAX_ASSOCIATED} associated objects"),
        )));
    }
    let (auth, document) = task_context(c, work, associated)?;
    let ctx = Context {
        authorisation: auth.as_ref(),
        sent_at: work.header.timestamp,
        transaction_id: &work.header.transaction_id,
        writ_id: &settings.unique_identifier,
        eevidence: work.rules.profile.is_some(),
    };
    let mapped = match object {
        Object::LdTask(t) => map::disclosure_order(t, work.sender, &ctx),
        Object::LpTask(t) => map::preservation_order(t, work.sender, &ctx),
        _ => return Err(Fail::Answer(error(codes::NOT_SUPPORTED, "not a task"))),
    };
    let mut order = mapped.map_err(|e| Fail::Answer(error(codes::UNPROCESSABLE, e.to_string())))?;
    let mut registered_validator = None;
    if let Some(profile) = work.rules.profile {
        let cx = ProfileContext {
            authority: work.sender.authority,
            header: work.header,
            message_id: &work.message_id,
            rules: work.rules,
            now: work.now,
            created: &work.created,
        };
        registered_validator = profile.complete_order(c, &cx, auth.as_ref(), &mut order)?;
    }
    let Some(spec) = work.rules.policies.instrument(&order.instrument) else {
        return Err(Fail::Answer(error(
            codes::UNPROCESSABLE,
            format!(
                "instrument `{}` is not one of Writ's (GETCSPCONFIG lists them in dictionary {}/{})",
                order.instrument,
                settings.unique_identifier,
                map::INSTRUMENT_DICTIONARY
            ),
        )));
    };
    // A preservation task under a production instrument (or the reverse) is refused: the
    // instrument decides what Writ does with the data.
    let preserve = matches!(object, Object::LpTask(_));
    if (spec.action == crate::policy::Action::Preserve) != preserve {
        return Err(Fail::Answer(error(
            codes::UNPROCESSABLE,
            format!(
                "instrument `{}` is for {}, not for {} tasks",
                order.instrument,
                if preserve {
                    "production"
                } else {
                    "preservation"
                },
                if preserve {
                    "preservation (LPTask)"
                } else {
                    "disclosure (LDTask)"
                },
            ),
        )));
    }
    let order_json = serde_json::to_string(&order)
        .map_err(|e| Fail::Internal(OrderError::Conflict(e.to_string())))?;
    // The same checks as an order sent as JSON (ports, lengths, NUL characters, ...).
    let order = crate::orders::validate::check_order(&order_json, "order").map_err(|errors| {
        Fail::Answer(error(
            codes::UNPROCESSABLE,
            format!(
                "the task does not make a valid order: {}",
                errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ))
    })?;
    let checked = Checked {
        order_sha256: crate::digest::sha256_hex(order_json.as_bytes()),
        order,
        order_json,
        document,
        validation: None,
        registered_validator,
    };
    let view = intake::store(
        c,
        &work.sender.authority.id,
        &checked,
        work.rules.policies,
        work.rules.deployment,
        &Receipt {
            received_at: work.now,
            entered_by: None,
            mail: Some(work.rules.mail),
            channel: "etsi",
        },
        work.now,
    )?;
    if let Some(profile) = work.rules.profile {
        let cx = ProfileContext {
            authority: work.sender.authority,
            header: work.header,
            message_id: &work.message_id,
            rules: work.rules,
            now: work.now,
            created: &work.created,
        };
        profile.task_created(c, &cx, object, auth.as_ref(), &view.id)?;
    }
    Ok((view.id, auth.map(|a| a.base.identifier)))
}

struct OrderState {
    status: OrderStatus,
    updated_at: i64,
    hold_until: Option<i64>,
}

fn order_state(c: &mut DbConn, order_id: &str) -> Result<Option<OrderState>, OrderError> {
    let row: Option<(String, i64, Option<i64>)> = orders::table
        .find(order_id)
        .select((orders::status, orders::updated_at, orders::hold_until))
        .first(c)
        .optional()?;
    Ok(row.and_then(|(s, updated_at, hold_until)| {
        OrderStatus::parse(&s).map(|status| OrderState {
            status,
            updated_at,
            hold_until,
        })
    }))
}

fn micros(t: i64) -> DateTime<chrono::FixedOffset> {
    crate::metadata::normalize::from_micros(t).fixed_offset()
}

/// Writ's current status of a held object, from its order (or, for a delivery, its sending),
/// without reading the object itself: ETSI's dictionary entry, when the object has a status,
/// and for a preservation task the end of its preservation.
fn object_status(
    c: &mut DbConn,
    authority_id: &str,
    kind: &str,
    object_id: &str,
    order_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(Option<DictionaryEntry>, Option<i64>), OrderError> {
    let state = match order_id {
        Some(id) => order_state(c, id)?,
        None => None,
    };
    Ok(match (kind, &state) {
        ("LDTask", Some(s)) => (
            Some(DictionaryEntry::etsi(
                "LDTaskStatus",
                map::disclosure_status(s.status),
            )),
            None,
        ),
        ("LPTask", Some(s)) => {
            let holding: i64 = target_holds::table
                .filter(target_holds::order_id.eq(order_id.unwrap_or_default()))
                .filter(target_holds::released_at.is_null())
                .count()
                .get_result(c)?;
            let ended = s.hold_until.is_some_and(|h| h <= now.timestamp_micros());
            (
                Some(DictionaryEntry::etsi(
                    "LPTaskStatus",
                    map::preservation_status(s.status, holding > 0, ended),
                )),
                s.hold_until.filter(|h| *h != crate::orders::holds::OPEN),
            )
        }
        ("Authorisation", _) => {
            let order_ids: Vec<Option<String>> = etsi_objects::table
                .filter(etsi_objects::authority_id.eq(authority_id))
                .filter(etsi_objects::parent_id.eq(object_id))
                .select(etsi_objects::order_id)
                .load(c)?;
            let mut statuses = Vec::new();
            for id in order_ids.into_iter().flatten() {
                if let Some(s) = order_state(c, &id)? {
                    statuses.push(s.status);
                }
            }
            (
                Some(DictionaryEntry::etsi(
                    "AuthorisationStatus",
                    map::authorisation_status(&statuses),
                )),
                None,
            )
        }
        ("Delivery", _) => {
            let status: Option<String> = etsi_deliveries::table
                .filter(etsi_deliveries::authority_id.eq(authority_id))
                .filter(etsi_deliveries::id.eq(object_id))
                .select(etsi_deliveries::status)
                .first(c)
                .optional()?;
            (
                status.map(|s| {
                    DictionaryEntry::etsi("DeliveryStatus", super::deliver::delivery_status(&s))
                }),
                None,
            )
        }
        _ => (None, None),
    })
}

/// An object held for the sender, with Writ's current status filled in.
pub fn held_object(
    c: &mut DbConn,
    authority_id: &str,
    object_id: &str,
    rules: &Rules<'_>,
    now: DateTime<Utc>,
) -> Result<Option<Object>, OrderError> {
    if let Some(delivery) =
        super::deliver::delivery_object(c, authority_id, object_id, rules.settings, None, now)?
    {
        return Ok(Some(Object::Delivery(delivery)));
    }
    let Some((mut object, order_id)) = stored_object(c, authority_id, object_id)? else {
        return Ok(None);
    };
    let kind = object.type_name().to_owned();
    let (status, until) =
        object_status(c, authority_id, &kind, object_id, order_id.as_deref(), now)?;
    let changed = match &order_id {
        Some(id) => order_state(c, id)?.map(|s| micros(s.updated_at)),
        None => None,
    };
    match &mut object {
        Object::LdTask(t) => {
            t.status_reason = status.as_ref().filter(|s| s.value == "Rejected").map(|_| {
                error(
                    codes::FORBIDDEN,
                    "the provider refused the order; its reasons went to the authority's \
                         registered contacts",
                )
            });
            t.status = status;
            t.base.last_changed = changed;
            t.base.generation = Some(1);
        }
        Object::LpTask(t) => {
            t.status = status;
            t.expiration = until.map(micros);
            t.base.last_changed = changed;
            t.base.generation = Some(1);
        }
        Object::Authorisation(a) => {
            a.status = status;
            a.base.generation = Some(1);
        }
        _ => {}
    }
    Ok(Some(object))
}

fn list(c: &mut DbConn, work: &Work<'_>, filter: &ListRequest) -> Result<Vec<ListRecord>, Fail> {
    let authority_id = work.sender.authority.id.clone();
    if let Some(t) = &filter.object_type
        && (t.owner != "ETSI" || t.name != "ObjectType")
    {
        return Err(Fail::Answer(error(
            codes::INVALID,
            "ObjectType must be an entry of ETSI's ObjectType dictionary",
        )));
    }
    let rows: Vec<(String, String, Option<String>, i64)> = etsi_objects::table
        .filter(etsi_objects::authority_id.eq(&authority_id))
        .order((etsi_objects::created_at, etsi_objects::object_id))
        .select((
            etsi_objects::object_id,
            etsi_objects::object_type,
            etsi_objects::order_id,
            etsi_objects::created_at,
        ))
        .load(c)?;
    let deliveries: Vec<(String, i64)> = etsi_deliveries::table
        .filter(etsi_deliveries::authority_id.eq(&authority_id))
        .order((etsi_deliveries::created_at, etsi_deliveries::id))
        .select((etsi_deliveries::id, etsi_deliveries::created_at))
        .load(c)?;
    let mut all: Vec<(String, String, Option<String>, i64)> = rows;
    all.extend(
        deliveries
            .into_iter()
            .map(|(id, at)| (id, "Delivery".to_owned(), None, at)),
    );
    let since = filter
        .last_changed
        .map(|t| t.with_timezone(&Utc).timestamp_micros());
    let max = filter
        .maximum
        .and_then(|m| usize::try_from(m).ok())
        .unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for (id, kind, order_id, created_at) in all {
        if filter.object_type.as_ref().is_some_and(|t| t.value != kind) {
            continue;
        }
        let changed = match &order_id {
            Some(o) => order_state(c, o)?.map_or(created_at, |s| s.updated_at.max(created_at)),
            None => created_at,
        };
        if since.is_some_and(|s| changed < s) {
            continue;
        }
        if let Some(wanted) = &filter.status {
            let (status, _) =
                object_status(c, &authority_id, &kind, &id, order_id.as_deref(), work.now)?;
            if status.as_ref() != Some(wanted) {
                continue;
            }
        }
        out.push(ListRecord {
            object_type: DictionaryEntry::etsi("ObjectType", &kind),
            identifier: id,
            country: Some(work.header.sender.country.clone()),
            owner: Some(if kind == "Delivery" {
                work.rules.settings.unique_identifier.clone()
            } else {
                work.header.sender.id.clone()
            }),
            generation: 1,
            last_changed: Some(micros(changed)),
        });
        if out.len() >= max {
            break;
        }
    }
    Ok(out)
}

/// When Writ's HI-1 configuration (its formats and dictionaries) last changed.
const CONFIG_CHANGED: &str = "2026-11-28T00:00:00Z";

fn csp_config(work: &Work<'_>) -> Result<CspConfig, Fail> {
    let settings = work.rules.settings;
    let writ_id = settings.unique_identifier.clone();
    let base = DateTime::parse_from_rfc3339(CONFIG_CHANGED)
        .map_err(|e| Fail::Internal(OrderError::Conflict(e.to_string())))?;
    let registered = micros(work.sender.etsi.updated_at);
    let last_changed = base.max(registered);
    let instruments = work
        .rules
        .policies
        .instruments()
        .map(|(id, spec)| DictionaryValue {
            value: id.to_owned(),
            meaning: format!("{} ({})", spec.name, spec.citation),
        })
        .collect();
    let dictionaries = vec![
        Dictionary {
            owner: writ_id.clone(),
            name: map::INSTRUMENT_DICTIONARY.into(),
            entries: instruments,
        },
        Dictionary {
            owner: writ_id.clone(),
            name: "ManifestSpecification".into(),
            entries: vec![DictionaryValue {
                value: super::deliver::MANIFEST_SPECIFICATION.into(),
                meaning: "A Writ disclosure package: a POSIX tar holding records.json, one CSV \
                          per category, scope.json, manifest.json (SHA-256 of each file) and \
                          manifest.sig (Ed25519 over manifest.json; the key is at \
                          /packages/public-key), with audit-proof.json beside the signed part"
                    .into(),
            }],
        },
    ];
    let all_formats = map::formats(&writ_id);
    let formats = all_formats
        .iter()
        .filter(|f| f.owner == writ_id)
        .map(|f| FormatDefinition {
            name: f.name.into(),
            description: f.description.into(),
            regex: f.regex.into(),
        })
        .collect();
    let request_types: Vec<DictionaryEntry> = map::REQUEST_TYPES
        .iter()
        .map(|(name, _)| DictionaryEntry::etsi("RequestType", name))
        .collect();
    let targeting = all_formats
        .iter()
        .map(|f| TargetingConfiguration {
            format_name: f.name.into(),
            format_owner: f.owner.clone(),
            guidance: f.description.into(),
            ld_request_types: request_types.clone(),
            lp_request_types: request_types.clone(),
        })
        .collect();
    Ok(CspConfig {
        last_changed,
        dictionaries,
        format_owner: writ_id,
        formats,
        targeting,
    })
}
