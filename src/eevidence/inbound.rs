//! The inbound e-Evidence endpoints: [`EevidenceProfile`] layered on Writ's HI-1 handling.
//!
//! `production` and `preservation` CREATE tasks exactly as `/etsi/hi1` does (the same mapping
//! to orders, policy decision and holds); the profile checks that the message is the order the
//! endpoint is for, and gives each new order its lifecycle (`orders::eevidence`). The other
//! endpoints move existing orders' lifecycles; each action's answer names what is wrong when it
//! cannot be done.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::Endpoint;
use crate::audit::{Actor, ActorKind};
use crate::db::DbConn;
use crate::db::schema::{eevidence_orders, eevidence_outbox, target_holds};
use crate::etsi::model::{Action, Authorisation, DictionaryEntry, Document, Object, Outcome};
use crate::etsi::service::{Fail, Profile, ProfileContext, codes, error};
use crate::orders::OrderError;
use crate::orders::eevidence::{
    self as lifecycle, Form3Reason, Kind, Letter, Lifecycle, NewLifecycle, Trigger,
};

/// The `EPOCPriority` values (EEVIDENCE.md section 3).
// EEVIDENCE.md [T?]: check against TS 104 144
pub const PRIORITIES: &[&str] = &["TenDaysASAP", "TenDaysSubjectToEA", "EightHours"];

/// The `EPOCDocumentType` values the enforcing authority sends at `groundsforrefusal`.
// EEVIDENCE.md [T?]: check against TS 104 144 (draft CR011 moves these out of the dictionary)
pub const GROUNDS: &[&str] = &[
    "NoGroundsForRefusal",
    "PartialGroundsForRefusal",
    "FullGroundsForRefusal",
];

/// The `EPOCDocumentType` values Writ takes at `correspondence`.
// EEVIDENCE.md [T?]: check against TS 104 144 (spellings vary between sources)
pub const CORRESPONDENCE: &[&str] = &[
    "Maintain",
    "ProceedingToCourt",
    "RequestAdditionalInformation",
    "ProvideAdditionalInformation",
    "EnforcingAuthorityAgreesWithObjection",
    "EnforcingAuthorityDisagreesWithObjection",
    "EnforcementProceduresInitiated",
    "EnforcingAuthorityRecognisesOrder",
    "EnforcingAuthorityDoesNotRecogniseOrder",
    "OtherAttachment",
];

/// Approver roles that name an authority (in `ApprovalReference`, its identifier in the
/// national system) rather than a person.
// EEVIDENCE.md [T?]: check against TS 104 144 (the profile's ApproverRole values)
pub const AUTHORITY_ROLES: &[&str] = &["IssuingAuthority", "ValidatingAuthority"];

/// Largest correspondence text, in bytes.
const LETTER_LIMIT: usize = 64 * 1024;

/// The e-Evidence profile for one inbound endpoint.
#[derive(Debug, Clone, Copy)]
pub struct EevidenceProfile {
    /// The endpoint the message came to.
    pub endpoint: Endpoint,
}

fn bad(m: impl Into<String>) -> Fail {
    Fail::Answer(error(codes::INVALID, m))
}

fn unprocessable(m: impl Into<String>) -> Fail {
    Fail::Answer(error(codes::UNPROCESSABLE, m))
}

fn conflict(m: impl Into<String>) -> Fail {
    Fail::Answer(error(codes::CONFLICT, m))
}

/// A lifecycle conflict is the sender's to hear; a database failure is Writ's own.
fn answer(e: OrderError) -> Fail {
    match e {
        OrderError::Conflict(m) => conflict(m),
        OrderError::NotFound => Fail::Answer(error(codes::NOT_FOUND, "no such order")),
        other => Fail::Internal(other),
    }
}

fn entry_named<'a>(entry: Option<&'a DictionaryEntry>, name: &str) -> Option<&'a str> {
    entry.filter(|e| e.name == name).map(|e| e.value.as_str())
}

fn actor(cx: &ProfileContext<'_>) -> Actor {
    Actor::new(ActorKind::Authority, cx.authority.id.clone())
}

impl EevidenceProfile {
    fn wrong_action(&self, action: &Action) -> Fail {
        let what = match action {
            Action::Get { .. } => "GET".to_owned(),
            Action::List(_) => "LIST".to_owned(),
            Action::GetCspConfig => "GETCSPCONFIG".to_owned(),
            Action::Create(o) => format!("CREATE of a {} object", o.type_name()),
            Action::Update(o) => format!("UPDATE of a {} object", o.type_name()),
            Action::Deliver { .. } => "DELIVER".to_owned(),
        };
        bad(format!(
            "/eevidence/{} does not take {what}; it takes {}",
            self.endpoint.path(),
            self.endpoint.takes()
        ))
    }
}

impl Profile for EevidenceProfile {
    fn act(
        &self,
        c: &mut DbConn,
        cx: &ProfileContext<'_>,
        action: &Action,
    ) -> Result<Option<Outcome>, Fail> {
        use Endpoint as E;
        match (self.endpoint, action) {
            (E::Production, Action::Create(Object::Authorisation(a))) => {
                check_legal_type(a, "EPOC")?;
                Ok(None)
            }
            (E::Preservation, Action::Create(Object::Authorisation(a))) => {
                check_legal_type(a, "EPOCPR")?;
                Ok(None)
            }
            (E::Production, Action::Create(Object::LdTask(_) | Object::Document(_)))
            | (E::Preservation, Action::Create(Object::LpTask(_) | Object::Document(_)))
            | (
                E::SubsequentProduction | E::PreservationExtension,
                Action::Create(Object::Document(_)),
            ) => Ok(None),
            (E::GroundsForRefusal, Action::Create(Object::Document(d))) => {
                grounds_for_refusal(c, cx, d).map(Some)
            }
            (E::Correspondence, Action::Create(Object::Document(d))) => {
                correspondence(c, cx, d).map(Some)
            }
            (E::SubsequentProduction, Action::Update(Object::LpTask(t))) => on_task(
                c,
                cx,
                &t.base.identifier,
                Kind::EpocPr,
                Trigger::SubsequentProduction,
            )
            .map(Some),
            (E::PreservationExtension, Action::Update(Object::LpTask(t))) => {
                if t.desired_expiration.is_none() {
                    return Err(unprocessable(
                        "task:DesiredPreservationExpiration is required: Form 6 extends \
                         preservation by 30 days",
                    ));
                }
                on_task(c, cx, &t.base.identifier, Kind::EpocPr, Trigger::Extend).map(Some)
            }
            (E::EndPreservation, Action::Update(Object::LpTask(t))) => on_task(
                c,
                cx,
                &t.base.identifier,
                Kind::EpocPr,
                Trigger::EndPreservation,
            )
            .map(Some),
            (E::NewDeadline, Action::Update(Object::LdTask(t))) => {
                let Some(deadline) = t.deadlines.first() else {
                    return Err(unprocessable(
                        "task:Deadlines/task:LDDeadline/task:DateTime is required: the new due date",
                    ));
                };
                let due = deadline.at.with_timezone(&Utc).timestamp_micros();
                if due <= cx.now.timestamp_micros() {
                    return Err(unprocessable(
                        "task:LDDeadline/task:DateTime: the new due date is in the past",
                    ));
                }
                on_task(
                    c,
                    cx,
                    &t.base.identifier,
                    Kind::Epoc,
                    Trigger::NewDeadline(due),
                )
                .map(Some)
            }
            (E::Withdraw, Action::Update(Object::Authorisation(a))) => {
                let desired = entry_named(a.desired_status.as_ref(), "AuthorisationDesiredStatus");
                if desired != Some("Cancelled") {
                    return Err(unprocessable(
                        "auth:AuthorisationDesiredStatus must be Cancelled (ETSI \
                         AuthorisationDesiredStatus) to withdraw",
                    ));
                }
                let orders = orders_of(c, cx, &a.base.identifier)?;
                for order_id in &orders {
                    crate::orders::lock(c, order_id).map_err(answer)?;
                    lifecycle::apply(c, &actor(cx), order_id, Trigger::Withdraw, None, cx.now)
                        .map_err(answer)?;
                }
                Ok(Some(Outcome::Update {
                    identifier: a.base.identifier.clone(),
                }))
            }
            (E::DeliveryStatus, Action::Update(Object::Delivery(d))) => {
                let trigger = match entry_named(d.status.as_ref(), "DeliveryStatus") {
                    Some("Received") => Trigger::DeliveryReceived,
                    Some("Error") => Trigger::DeliveryError,
                    _ => {
                        return Err(unprocessable(
                            "delivery:DeliveryStatus must be Received or Error",
                        ));
                    }
                };
                let order: Option<Option<String>> = eevidence_outbox::table
                    .find(&d.base.identifier)
                    .filter(eevidence_outbox::authority_id.eq(&cx.authority.id))
                    .filter(eevidence_outbox::endpoint.eq(lifecycle::Call::Outcome.endpoint()))
                    .select(eevidence_outbox::order_id)
                    .first(c)
                    .optional()?;
                let Some(Some(order_id)) = order else {
                    return Err(Fail::Answer(error(
                        codes::NOT_FOUND,
                        format!("no delivery {} was sent to this sender", d.base.identifier),
                    )));
                };
                crate::orders::lock(c, &order_id).map_err(answer)?;
                lifecycle::apply(c, &actor(cx), &order_id, trigger, None, cx.now)
                    .map_err(answer)?;
                Ok(Some(Outcome::Update {
                    identifier: d.base.identifier.clone(),
                }))
            }
            _ => Err(self.wrong_action(action)),
        }
    }

    fn complete_order(
        &self,
        c: &mut DbConn,
        cx: &ProfileContext<'_>,
        authorisation: Option<&Authorisation>,
        order: &mut crate::policy::Order,
    ) -> Result<Option<String>, Fail> {
        super::epoc::complete(c, cx, authorisation, order)
    }

    fn task_created(
        &self,
        c: &mut DbConn,
        cx: &ProfileContext<'_>,
        task: &Object,
        authorisation: Option<&Authorisation>,
        order_id: &str,
    ) -> Result<(), Fail> {
        let Some(auth) = authorisation else {
            return Err(unprocessable(
                "an e-Evidence task must name its AuthorisationObject in AssociatedObjects",
            ));
        };
        let (task_id, kind) = match task {
            Object::LdTask(t) => (&t.base.identifier, Kind::Epoc),
            Object::LpTask(t) => (&t.base.identifier, Kind::EpocPr),
            _ => return Err(unprocessable("not a task")),
        };
        // From receipt (the Regulation); implementer material counts from the message's
        // timestamp: count from the earlier. EEVIDENCE.md [T?]: check against TS 104 144
        let received_at = cx
            .now
            .timestamp_micros()
            .min(cx.header.timestamp.with_timezone(&Utc).timestamp_micros());
        let priority = entry_named(auth.priority.as_ref(), "EPOCPriority");
        let lc = match kind {
            Kind::Epoc => {
                let Some(priority) = priority else {
                    return Err(unprocessable(
                        "auth:AuthorisationPriority (EPOCPriority) is required: TenDaysASAP, \
                         TenDaysSubjectToEA or EightHours",
                    ));
                };
                if !PRIORITIES.contains(&priority) {
                    return Err(unprocessable(format!(
                        "auth:AuthorisationPriority: {priority:?} is not an EPOCPriority \
                         (TenDaysASAP, TenDaysSubjectToEA, EightHours)"
                    )));
                }
                let flagged = |v: &str| auth.flags.iter().any(|f| f.value == v);
                let notified =
                    flagged("EnforcingAuthorityNotified") || priority == "TenDaysSubjectToEA";
                let emergency = flagged("IsEmergency") || priority == "EightHours";
                Lifecycle::new_epoc(Some(priority), notified, emergency, received_at)
            }
            Kind::EpocPr => Lifecycle::new_epoc_pr(received_at),
        };
        let judgement = judge_authorities(c, cx, auth)?;
        let linked = linked_preservation(c, cx, task, auth)?;
        lifecycle::create(
            c,
            &actor(cx),
            &NewLifecycle {
                order_id,
                authority_id: &cx.authority.id,
                authorisation_id: Some(&auth.base.identifier),
                task_id,
                priority,
                judgement,
                linked_order: linked.clone(),
            },
            &lc,
            cx.now,
        )
        .map_err(answer)?;
        lifecycle::set_language(c, order_id, order_language(auth).as_deref()).map_err(answer)?;
        if let Some(pr) = linked {
            diesel::update(eevidence_orders::table.find(&pr))
                .set(eevidence_orders::linked_order.eq(Some(order_id)))
                .execute(c)?;
        }
        if kind == Kind::EpocPr {
            // The target holds were recorded with the order, in this transaction, by
            // identifier; `datapreserved` goes out only once the hold resolver has placed every
            // one of them on the accounts (`orders::holds::resolve_pending` ->
            // `orders::eevidence::holds_resolved`). An order that recorded no hold at all asks
            // only for what the store does not hold (content): nothing can be kept, and the
            // answer is a Form 3 (EEVIDENCE.md section 5, "nothing can be kept").
            let holds: i64 = target_holds::table
                .filter(target_holds::order_id.eq(order_id))
                .count()
                .get_result(c)?;
            if holds == 0 {
                let detail = serde_json::json!({
                    "reason": Form3Reason::DataNotHeld.as_str(),
                    "text": "Nothing the order asks for can be preserved: the provider's store \
                             holds no content, and no other category or target of the order \
                             can be held.",
                })
                .to_string();
                lifecycle::apply(
                    c,
                    &actor(cx),
                    order_id,
                    Trigger::Form3(Form3Reason::DataNotHeld),
                    Some(&detail),
                    cx.now,
                )
                .map_err(answer)?;
            }
        }
        Ok(())
    }
}

/// The order's language: the first language the issuing authority's approver gives in its
/// contact details, else the first any approver gives.
// EEVIDENCE.md [T?]: check against TS 104 144 (where the profile carries the language of the
// order, if anywhere; `ApproverContactDetails/Languages` is TS 103 120's one language field)
fn order_language(auth: &Authorisation) -> Option<String> {
    let issuing = auth
        .approvals
        .iter()
        .filter(|a| a.approver_role.as_deref() == Some("IssuingAuthority"));
    issuing
        .chain(auth.approvals.iter())
        .find_map(|a| a.languages.first().cloned())
}

fn check_legal_type(a: &Authorisation, wanted: &str) -> Result<(), Fail> {
    match entry_named(a.legal_type.as_ref(), "EPOCLegalType") {
        Some(v) if v == wanted => Ok(()),
        Some(v) => Err(unprocessable(format!(
            "auth:AuthorisationLegalType is {v:?}; this endpoint takes {wanted}"
        ))),
        None => Err(unprocessable(format!(
            "auth:AuthorisationLegalType must be the EPOCLegalType entry {wanted}"
        ))),
    }
}

/// Why a person must judge the order first: an authority the message names (issuing or
/// validating) that the registry does not know, or an issuing authority other than the sender.
fn judge_authorities(
    c: &mut DbConn,
    cx: &ProfileContext<'_>,
    auth: &Authorisation,
) -> Result<Option<String>, Fail> {
    let mut problems = Vec::new();
    for a in &auth.approvals {
        let Some(role) = a
            .approver_role
            .as_deref()
            .filter(|r| AUTHORITY_ROLES.contains(r))
        else {
            continue;
        };
        let Some(id) = a.reference.as_deref().filter(|r| !r.trim().is_empty()) else {
            problems.push(format!("the {role} is not identified (ApprovalReference)"));
            continue;
        };
        // Known means registered and active: a suspended authority is no longer vouched for.
        let known: Option<String> = super::epoc::registered(c, id)?.map(|a| a.id);
        match known {
            None => problems.push(format!("the {role} {id} is not in the authority registry")),
            Some(registered) if role == "IssuingAuthority" && registered != cx.authority.id => {
                problems.push(format!(
                    "the IssuingAuthority {id} is registered as another authority than the sender"
                ));
            }
            Some(_) => {}
        }
    }
    Ok((!problems.is_empty()).then(|| problems.join("; ")))
}

/// The EPOC-PR an EPOC follows, when its task or authorisation names the preservation task.
fn linked_preservation(
    c: &mut DbConn,
    cx: &ProfileContext<'_>,
    task: &Object,
    auth: &Authorisation,
) -> Result<Option<String>, Fail> {
    let Object::LdTask(t) = task else {
        return Ok(None);
    };
    for id in t.base.associated.iter().chain(&auth.base.associated) {
        let found: Option<(String, String)> = eevidence_orders::table
            .filter(eevidence_orders::authority_id.eq(&cx.authority.id))
            .filter(eevidence_orders::task_id.eq(id))
            .filter(eevidence_orders::kind.eq(Kind::EpocPr.as_str()))
            .select((eevidence_orders::order_id, eevidence_orders::state))
            .first(c)
            .optional()?;
        if let Some((order_id, _)) = found {
            return Ok(Some(order_id));
        }
    }
    Ok(None)
}

/// The orders (one per task) of the sender's authorisation `authorisation_id`.
fn orders_of(
    c: &mut DbConn,
    cx: &ProfileContext<'_>,
    authorisation_id: &str,
) -> Result<Vec<String>, Fail> {
    let orders: Vec<String> = eevidence_orders::table
        .filter(eevidence_orders::authority_id.eq(&cx.authority.id))
        .filter(eevidence_orders::authorisation_id.eq(authorisation_id))
        .order(eevidence_orders::order_id)
        .select(eevidence_orders::order_id)
        .load(c)?;
    if orders.is_empty() {
        return Err(Fail::Answer(error(
            codes::NOT_FOUND,
            format!("no e-Evidence order rests on authorisation {authorisation_id} of this sender"),
        )));
    }
    Ok(orders)
}

/// Applies `trigger` to the order of the sender's task `task_id`.
fn on_task(
    c: &mut DbConn,
    cx: &ProfileContext<'_>,
    task_id: &str,
    kind: Kind,
    trigger: Trigger,
) -> Result<Outcome, Fail> {
    let order: Option<String> = eevidence_orders::table
        .filter(eevidence_orders::authority_id.eq(&cx.authority.id))
        .filter(eevidence_orders::task_id.eq(task_id))
        .filter(eevidence_orders::kind.eq(kind.as_str()))
        .select(eevidence_orders::order_id)
        .first(c)
        .optional()?;
    let Some(order_id) = order else {
        return Err(Fail::Answer(error(
            codes::NOT_FOUND,
            format!(
                "no {} task {task_id} is held for this sender",
                match kind {
                    Kind::Epoc => "EPOC (LDTask)",
                    Kind::EpocPr => "EPOC-PR (LPTask)",
                }
            ),
        )));
    };
    crate::orders::lock(c, &order_id).map_err(answer)?;
    lifecycle::apply(c, &actor(cx), &order_id, trigger, None, cx.now).map_err(answer)?;
    Ok(Outcome::Update {
        identifier: task_id.to_owned(),
    })
}

/// The `EPOCDocumentType` of a document, and the authorisation it names (its first associated
/// object).
fn document_parts(d: &Document) -> Result<(&str, &str), Fail> {
    let Some(kind) = entry_named(d.document_type.as_ref(), "EPOCDocumentType") else {
        return Err(unprocessable(
            "doc:DocumentType must be an EPOCDocumentType entry",
        ));
    };
    let Some(auth) = d.base.associated.first() else {
        return Err(unprocessable(
            "the document must name the order's AuthorisationObject first in AssociatedObjects",
        ));
    };
    Ok((kind, auth))
}

/// The text of a correspondence document (text/plain, UTF-8), if it has one.
fn letter_text(d: &Document) -> Result<String, Fail> {
    let Some(body) = &d.body else {
        return Ok(String::new());
    };
    if body.contents.len() > LETTER_LIMIT {
        return Err(bad(format!(
            "doc:DocumentBody: a correspondence text may be at most {LETTER_LIMIT} bytes"
        )));
    }
    let textual = body
        .content_type
        .as_deref()
        .is_none_or(|t| t.to_ascii_lowercase().starts_with("text/plain"));
    if !textual {
        return Err(Fail::Answer(error(
            codes::UNSUPPORTED_MEDIA,
            "doc:DocumentBody/doc:ContentType: correspondence is taken as text/plain",
        )));
    }
    String::from_utf8(body.contents.clone())
        .map_err(|_| bad("doc:DocumentBody/doc:Contents is not UTF-8 text"))
}

fn grounds_for_refusal(
    c: &mut DbConn,
    cx: &ProfileContext<'_>,
    d: &Document,
) -> Result<Outcome, Fail> {
    let (kind, auth) = document_parts(d)?;
    if !GROUNDS.contains(&kind) {
        return Err(unprocessable(format!(
            "doc:DocumentType {kind:?} is not a decision on grounds for refusal \
             (NoGroundsForRefusal, PartialGroundsForRefusal, FullGroundsForRefusal)"
        )));
    }
    let refused_tasks: Vec<&String> = d.base.associated.iter().skip(1).collect();
    if kind == "PartialGroundsForRefusal" && refused_tasks.is_empty() {
        return Err(unprocessable(
            "PartialGroundsForRefusal must name the refused LDTasks after the authorisation in \
             AssociatedObjects",
        ));
    }
    let orders = orders_of(c, cx, auth)?;
    let mut tasks = Vec::new();
    for order_id in &orders {
        let task: String = eevidence_orders::table
            .find(order_id)
            .select(eevidence_orders::task_id)
            .first(c)?;
        tasks.push(task);
    }
    if let Some(unknown) = refused_tasks.iter().find(|t| !tasks.contains(t)) {
        return Err(unprocessable(format!(
            "task {unknown} is not a task of authorisation {auth}"
        )));
    }
    let text = letter_text(d)?;
    for (order_id, task) in orders.iter().zip(&tasks) {
        let refused = match kind {
            "FullGroundsForRefusal" => true,
            "PartialGroundsForRefusal" => refused_tasks.contains(&task),
            _ => false,
        };
        crate::orders::lock(c, order_id).map_err(answer)?;
        lifecycle::apply(
            c,
            &actor(cx),
            order_id,
            Trigger::GroundsForRefusal { refused },
            None,
            cx.now,
        )
        .map_err(answer)?;
        record(c, cx, order_id, kind, &text)?;
    }
    Ok(Outcome::Create {
        identifier: d.base.identifier.clone(),
    })
}

fn correspondence(c: &mut DbConn, cx: &ProfileContext<'_>, d: &Document) -> Result<Outcome, Fail> {
    let (kind, auth) = document_parts(d)?;
    if !CORRESPONDENCE.contains(&kind) {
        return Err(unprocessable(format!(
            "doc:DocumentType {kind:?} is not a correspondence EPOCDocumentType ({})",
            CORRESPONDENCE.join(", ")
        )));
    }
    let text = letter_text(d)?;
    let orders = orders_of(c, cx, auth)?;
    for order_id in &orders {
        crate::orders::lock(c, order_id).map_err(answer)?;
        record(c, cx, order_id, kind, &text)?;
        let Some(lc) = lifecycle::load(c, order_id).map_err(answer)? else {
            continue;
        };
        use lifecycle::State as S;
        let trigger = match (kind, lc.state) {
            ("Maintain", S::Objected) => Some(Trigger::Maintained),
            ("ProvideAdditionalInformation", S::Clarifying) => Some(Trigger::Clarified),
            ("ProceedingToCourt" | "EnforcementProceduresInitiated", S::Objected) => {
                Some(Trigger::ProceedingToCourt)
            }
            _ => None,
        };
        if let Some(t) = trigger {
            lifecycle::apply(c, &actor(cx), order_id, t, None, cx.now).map_err(answer)?;
        }
    }
    Ok(Outcome::Create {
        identifier: d.base.identifier.clone(),
    })
}

fn record(
    c: &mut DbConn,
    cx: &ProfileContext<'_>,
    order_id: &str,
    kind: &str,
    text: &str,
) -> Result<(), Fail> {
    lifecycle::record_letter(
        c,
        &actor(cx),
        order_id,
        &Letter {
            direction: "in".into(),
            document_type: kind.into(),
            body: text.into(),
            at: cx.now.timestamp_micros(),
        },
        cx.now,
    )
    .map_err(answer)
}

/// Runs the lifecycle's clocks: enforcing authorities' windows that ended and preservation
/// periods that ran out, each transition audited. Returns how many moved.
pub fn tick(c: &mut DbConn, now: DateTime<Utc>) -> Result<usize, OrderError> {
    let at = now.timestamp_micros();
    let due: Vec<(String, String)> = eevidence_orders::table
        .filter(
            eevidence_orders::state
                .eq(lifecycle::State::EaHold.as_str())
                .and(eevidence_orders::ea_until.le(at))
                .or(eevidence_orders::state
                    .eq(lifecycle::State::Preserved.as_str())
                    .and(eevidence_orders::preserve_until.le(at))),
        )
        .select((eevidence_orders::order_id, eevidence_orders::state))
        .limit(500)
        .load(c)?;
    let system = Actor::new(ActorKind::System, "eevidence");
    let mut moved = 0;
    for (order_id, state) in due {
        let trigger = if state == lifecycle::State::EaHold.as_str() {
            Trigger::EaWindowEnded
        } else {
            Trigger::PeriodEnded
        };
        crate::db::write_tx(c, |c| {
            crate::orders::lock(c, &order_id)?;
            // Another instance may have moved it meanwhile: apply only if it still applies.
            match lifecycle::apply(c, &system, &order_id, trigger, None, now) {
                Ok(_) => {
                    moved += 1;
                    Ok(())
                }
                Err(OrderError::Conflict(_)) => Ok(()),
                Err(e) => Err(e),
            }
        })?;
    }
    Ok(moved)
}
