//! Clarification and withdrawal, the order's state as messages move it: the legal team's
//! questions, the authority's answers (which may carry an amended order, decided afresh), and
//! the authority withdrawing its order. The messages themselves are in [`super::messages`].

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::intake::{Checked, facts, insert_version};
use super::messages::{Message, Sender, add_message, check_text, check_text_of, messages};
use super::{OrderError, OrderStatus, OrderView, holds, pauses, view};
use crate::audit::{self, Actor, NewEntry};
use crate::db::DbConn;
use crate::db::schema::{order_versions, orders};
use crate::metadata::normalize;
use crate::policy::{Decision, Deployment, PolicySet, decide};

/// The status, version and owner of an order (of `authority`'s, if given), with the order's
/// row locked until the caller's transaction ends on PostgreSQL (on SQLite the write
/// transaction already excludes other writers): a withdrawal and an amendment racing each
/// other see each other's result instead of both acting on the same old state.
pub(super) fn state(
    conn: &mut DbConn,
    order_id: &str,
    authority: Option<&str>,
) -> Result<(OrderStatus, i32, String), OrderError> {
    super::lock(conn, order_id)?;
    let found: Option<(String, i32, String)> = orders::table
        .filter(orders::id.eq(order_id))
        .select((orders::status, orders::version, orders::authority_id))
        .first(conn)
        .optional()?;
    let Some((status, version, owner)) =
        found.filter(|(_, _, owner)| authority.is_none_or(|a| a == owner))
    else {
        return Err(OrderError::NotFound);
    };
    let status = OrderStatus::parse(&status).ok_or_else(|| {
        OrderError::Db(crate::db::DbError::Corrupt(format!(
            "order {order_id} has status `{status}`"
        )))
    })?;
    Ok((status, version, owner))
}

/// Decides version `version` of an order afresh (its clarification pauses included) and
/// stores the decision with the order's summary.
fn redecide(
    conn: &mut DbConn,
    order_id: &str,
    order_json: &str,
    checked_facts: crate::policy::RegistryFacts,
    policies: &PolicySet,
    deployment: &Deployment,
    now: DateTime<Utc>,
) -> Result<Decision, OrderError> {
    let order = crate::policy::Order::from_json(order_json)
        .map_err(|e| OrderError::Conflict(format!("stored order does not parse: {e}")))?;
    let (received, authority_id): (i64, String) = orders::table
        .find(order_id)
        .select((orders::received_at, orders::authority_id))
        .first(conn)?;
    let pauses = pauses(conn, order_id)?;
    let mut checked_facts = checked_facts;
    checked_facts.earlier_preservations = super::holds::renewals(
        conn,
        &order,
        &authority_id,
        normalize::from_micros(received),
        Some(order_id),
        policies,
    )?;
    Ok(decide(
        &order,
        &checked_facts,
        normalize::from_micros(received),
        &pauses,
        policies,
        deployment,
        now,
    ))
}

fn outcome_name(decision: &Decision) -> String {
    serde_json::to_value(decision.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn store_decision(
    conn: &mut DbConn,
    order_id: &str,
    version: i32,
    decision: &Decision,
    status: OrderStatus,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    let json = serde_json::to_string(decision)
        .map_err(|e| OrderError::Conflict(format!("cannot store the decision: {e}")))?;
    diesel::update(order_versions::table.find((order_id, version)))
        .set(order_versions::decision_json.eq(json))
        .execute(conn)?;
    diesel::update(orders::table.find(order_id))
        .set((
            orders::status.eq(status.as_str()),
            orders::version.eq(version),
            orders::outcome.eq(outcome_name(decision)),
            orders::deadline_at.eq(decision
                .deadline
                .as_ref()
                .and_then(|d| d.due)
                .map(|d| d.timestamp_micros())),
            orders::updated_at.eq(now.timestamp_micros()),
            orders::validation_due_at.eq(super::intake::validation_due(decision)),
            orders::follow_up_due_at.eq(super::intake::follow_up_due(decision)),
        ))
        .execute(conn)?;
    // A decision that now preserves (an amendment) starts the hold's clock; one that no longer
    // does stops it; an extension already granted stands.
    match super::intake::hold_end(decision) {
        None => {
            diesel::update(orders::table.find(order_id))
                .set(orders::hold_until.eq(None::<i64>))
                .execute(conn)?;
        }
        Some(end) => {
            diesel::update(
                orders::table
                    .find(order_id)
                    .filter(orders::hold_until.is_null()),
            )
            .set(orders::hold_until.eq(Some(end)))
            .execute(conn)?;
            // An extension the authority asked for (e-Evidence Annex VI) moves a running hold
            // later, never earlier.
            diesel::update(
                orders::table
                    .find(order_id)
                    .filter(orders::hold_until.lt(end)),
            )
            .set(orders::hold_until.eq(Some(end)))
            .execute(conn)?;
        }
    }
    Ok(())
}

/// The registry facts for the stored current version (its proven validation included).
fn stored_facts(
    conn: &mut DbConn,
    order_id: &str,
    version: i32,
    owner: &str,
) -> Result<(String, crate::policy::RegistryFacts), OrderError> {
    let (json, kid, registered_validator): (String, Option<String>, Option<String>) =
        order_versions::table
            .find((order_id, version))
            .select((
                order_versions::order_json,
                order_versions::validation_kid,
                order_versions::validator_authority_id,
            ))
            .first(conn)?;
    let mut facts = crate::authority::registry_facts(conn, owner)
        .map_err(|e| OrderError::Conflict(e.to_string()))?;
    if let Some(kid) = kid {
        let kind: Option<String> = crate::db::schema::authority_keys::table
            .inner_join(crate::db::schema::authorities::table)
            .filter(crate::db::schema::authority_keys::kid.eq(&kid))
            .select(crate::db::schema::authorities::kind)
            .first(conn)
            .optional()?;
        facts.validator_kind =
            kind.and_then(|k| serde_json::from_value(serde_json::Value::String(k)).ok());
        facts.validation_signed_by_validator = facts.validator_kind.is_some();
    } else if let Some(id) = registered_validator {
        // Known to the registry, still only claimed: as when the order came in.
        facts.validator_kind = crate::authority::active_kind(conn, &id)?;
    }
    Ok((json, facts))
}

/// What a workflow step that decides afresh and notifies needs.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// The jurisdiction policies.
    pub policies: &'a PolicySet,
    /// The provider's legal position.
    pub deployment: &'a Deployment,
    /// Where notices are queued.
    pub mail: &'a crate::settings::MailSettings,
}

/// The legal team asks the authority a question, in one transaction with its audit entry: the
/// order awaits clarification, the deadline pauses where the instrument says so, and the
/// authority's registered contact is told a question waits.
pub fn ask(
    conn: &mut DbConn,
    actor: &Actor,
    order_id: &str,
    text: &str,
    rules: Rules<'_>,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    ask_with(conn, actor, order_id, text, None, rules, now)
}

/// The legal team objects instead of complying, choosing one of the objections the decision
/// offers (e-Evidence Art 10(5), Art 17: each sent with its Annex III grounds): like a question,
/// the order then awaits the authority's answer, its holds stay (the data remain preserved), and
/// the objection is in the audit log in the same transaction.
pub fn object(
    conn: &mut DbConn,
    actor: &Actor,
    order_id: &str,
    code: &str,
    reasons: &str,
    rules: Rules<'_>,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    check_text(reasons)?;
    let decision_json: Option<String> = order_versions::table
        .inner_join(orders::table)
        .filter(order_versions::order_id.eq(order_id))
        .filter(order_versions::version.eq(orders::version))
        .select(order_versions::decision_json)
        .first::<String>(conn)
        .optional()?;
    let decision: Option<Decision> = decision_json.and_then(|j| serde_json::from_str(&j).ok());
    let Some(objection) = decision
        .as_ref()
        .and_then(|d| d.objections.iter().find(|o| o.code == code))
        .cloned()
    else {
        return Err(OrderError::Invalid {
            kind: super::InvalidKind::Unprocessable,
            slug: "invalid-objection",
            title: "Not an objection this order's instrument offers".into(),
            errors: vec![super::FieldError::new(
                "code",
                format!("`{code}` is not among the objections the decision lists"),
            )],
            submission_id: None,
        });
    };
    let text = format!(
        "Objection ({}) under {}: {}",
        objection.code,
        objection.citation,
        reasons.trim()
    );
    ask_with(
        conn,
        actor,
        order_id,
        &text,
        Some(
            NewEntry::new(actor.clone(), audit::Event::OrderObjected)
                .order(order_id)
                .reference("objection", objection.code.as_str()),
        ),
        rules,
        now,
    )
}

fn ask_with(
    conn: &mut DbConn,
    actor: &Actor,
    order_id: &str,
    text: &str,
    objection: Option<NewEntry>,
    rules: Rules<'_>,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    let Rules {
        policies,
        deployment,
        mail,
    } = rules;
    check_text(text)?;
    crate::db::write_tx(conn, |c| {
        let (status, version, owner) = state(c, order_id, None)?;
        if status.is_closed() {
            return Err(OrderError::Conflict(format!(
                "the order is {}; no more questions can be asked",
                status.as_str()
            )));
        }
        add_message(c, order_id, Sender::Provider, &actor.id, text, None, now)?;
        let (json, facts) = stored_facts(c, order_id, version, &owner)?;
        let decision = redecide(c, order_id, &json, facts, policies, deployment, now)?;
        store_decision(
            c,
            order_id,
            version,
            &decision,
            OrderStatus::AwaitingClarification,
            now,
        )?;
        let entry = objection.clone().unwrap_or_else(|| {
            NewEntry::new(actor.clone(), audit::Event::OrderClarificationRequested).order(order_id)
        });
        audit::append(c, &entry, now)?;
        let reference: String = orders::table
            .find(order_id)
            .select(orders::reference)
            .first(c)?;
        crate::mail::notify(
            c,
            mail,
            crate::mail::Recipients::Authority(&owner),
            &crate::mail::Notice::ClarificationRequested {
                order_id: order_id.to_owned(),
                reference,
            },
            now,
        );
        Ok(())
    })
}

/// An authority's message, optionally carrying an amended order.
#[derive(Debug, Clone)]
pub struct AuthorityMessage<'a> {
    /// The text.
    pub text: &'a str,
    /// The checked amendment (it replaces the order and is decided afresh).
    pub amendment: Option<Checked>,
}

/// Stores an authority's message (inside the caller's transaction). An amendment becomes a new
/// version, decided afresh; either way the order goes back to review (any approval given on
/// the earlier version no longer counts), and an open clarification pause ends.
pub fn answer(
    conn: &mut DbConn,
    authority_id: &str,
    order_id: &str,
    message: &AuthorityMessage<'_>,
    policies: &PolicySet,
    deployment: &Deployment,
    now: DateTime<Utc>,
) -> Result<Message, OrderError> {
    check_text(message.text)?;
    let (status, version, owner) = state(conn, order_id, Some(authority_id))?;
    if status.is_closed() {
        return Err(OrderError::Conflict(format!(
            "the order is {}; it takes no more messages",
            status.as_str()
        )));
    }
    let mut new_version = version;
    let actor = Actor::new(crate::audit::ActorKind::Authority, authority_id);
    if let Some(checked) = &message.amendment {
        new_version = version + 1;
        let micros = now.timestamp_micros();
        insert_version(conn, order_id, new_version, checked, "{}", micros)?;
        diesel::update(orders::table.find(order_id))
            .set((
                orders::reference.eq(&checked.order.reference),
                orders::instrument.eq(&checked.order.instrument),
                orders::emergency.eq(checked.order.is_emergency()),
            ))
            .execute(conn)?;
        // The amended order replaces the old one: what only the old one named is no longer
        // held (a corrected phone number must not keep an uninvolved person's data).
        let received: i64 = orders::table
            .find(order_id)
            .select(orders::received_at)
            .first(conn)?;
        holds::release(conn, order_id, now.timestamp_micros())?;
        holds::record(
            conn,
            order_id,
            &checked.order,
            normalize::from_micros(received),
        )?;
        // Approvals were given on the old order's package: they no longer count.
        crate::orders::approval::supersede(conn, order_id)?;
    }
    add_message(
        conn,
        order_id,
        Sender::Authority,
        authority_id,
        message.text,
        message.amendment.as_ref().map(|_| new_version),
        now,
    )?;
    super::desk::authority_replied(conn, order_id, now)?;
    let facts = match &message.amendment {
        Some(checked) => facts(conn, &owner, checked)?,
        None => stored_facts(conn, order_id, new_version, &owner)?.1,
    };
    let json: String = order_versions::table
        .find((order_id, new_version))
        .select(order_versions::order_json)
        .first(conn)?;
    let decision = redecide(conn, order_id, &json, facts, policies, deployment, now)?;
    store_decision(
        conn,
        order_id,
        new_version,
        &decision,
        OrderStatus::UnderReview,
        now,
    )?;
    let mut entry =
        NewEntry::new(actor.clone(), audit::Event::OrderMessageReceived).order(order_id);
    if let Some(checked) = &message.amendment {
        entry = NewEntry::new(actor, audit::Event::OrderAmended)
            .order(order_id)
            .reference("version", u64::try_from(new_version).unwrap_or(0))
            .reference("order_sha256", checked.order_sha256.as_str())
            .reference("outcome", outcome_name(&decision))
            .reference("validation_proven", checked.validation.is_some());
    }
    audit::append(conn, &entry, now)?;
    let all = messages(conn, order_id, Some(authority_id))?;
    all.into_iter()
        .last()
        .ok_or_else(|| OrderError::Conflict("the message was not stored".into()))
}

/// The authority withdraws its order (inside the caller's transaction): its holds end. A
/// released order cannot be withdrawn; withdrawing twice answers as the first time did.
pub fn withdraw(
    conn: &mut DbConn,
    authority_id: &str,
    order_id: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<OrderView, OrderError> {
    // The request is checked before the order's state, so that a bad reason is refused the
    // same way whatever state the order is in.
    if let Some(r) = reason {
        check_text_of("reason", r)?;
    }
    let (status, _, _) = state(conn, order_id, Some(authority_id))?;
    match status {
        OrderStatus::Withdrawn => return view(conn, order_id, Some(authority_id)),
        OrderStatus::Released | OrderStatus::Refused => {
            return Err(OrderError::Conflict(format!(
                "the order is already {}; it cannot be withdrawn",
                status.as_str()
            )));
        }
        _ => {}
    }
    if let Some(r) = reason {
        add_message(
            conn,
            order_id,
            Sender::Authority,
            authority_id,
            r,
            None,
            now,
        )?;
    }
    diesel::update(orders::table.find(order_id))
        .set((
            orders::status.eq(OrderStatus::Withdrawn.as_str()),
            orders::updated_at.eq(now.timestamp_micros()),
        ))
        .execute(conn)?;
    holds::release(conn, order_id, now.timestamp_micros())?;
    let entry = NewEntry::new(
        Actor::new(crate::audit::ActorKind::Authority, authority_id),
        audit::Event::OrderWithdrawn,
    )
    .order(order_id)
    .reference("previous_status", status.as_str());
    audit::append(conn, &entry, now)?;
    view(conn, order_id, Some(authority_id))
}
