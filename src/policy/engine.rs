//! The decision engine: a pure function from an order and its context to a [`Decision`].
//!
//! Deny by default: a field is granted only if a rule of the order's instrument reaches it in the
//! requested category and every condition of that rule holds. Entitlements use the issuer kind
//! from the registry, never the kind the order claims.

use super::catalogue::{Category, FieldId, default_fields};
use super::decision::{
    Binding, CategoryDecision, Deadline, Decision, Duty, FieldDecision, FieldStatus, Finding, Gag,
    NoticeDuty, NoticeTiming, Outcome, Preservation, ReasonCode, ReleaseTime, ValidationDue,
};
use super::decision::{Clarification, FollowUp, Objection};
use super::load::PolicySet;
use super::model::{
    Action, FollowUpWhen, GagEffect, Incomplete, InstrumentSpec, NoticeSpec, Notifier, OverlaySpec,
    RouteSpec, RuleSpec,
};
use super::order::{
    IssuerKind, NonDisclosureEnd, ORDER_ELEMENTS, Order, RegistryFacts, Target, TargetKind,
};
use super::{Deployment, Pause};
use crate::deployment::ServiceClass;
use chrono::{DateTime, TimeDelta, Utc};

/// Decides an order.
///
/// - `facts`: what the authority registry says about the issuer and validator;
/// - `received_at`: the true receipt time (deadlines run from here, e.g. for orders by post);
/// - `pauses`: clarification periods; they stop the deadline only where the instrument allows;
/// - `deployment`: the provider's own establishment, which decides binding or voluntary;
/// - `now`: the decision time (expiry and overdue validation are judged at `now`).
///
/// An amended order is a new `Order` and is decided afresh with this same function.
pub fn decide(
    order: &Order,
    facts: &RegistryFacts,
    received_at: DateTime<Utc>,
    pauses: &[Pause],
    set: &PolicySet,
    deployment: &Deployment,
    now: DateTime<Utc>,
) -> Decision {
    let mut decision = Decision {
        policy_set_id: set.id().to_owned(),
        order_reference: order.reference.clone(),
        instrument: order.instrument.clone(),
        instrument_name: None,
        instrument_citation: None,
        action: None,
        received_at,
        decided_at: now,
        outcome: Outcome::Refused,
        refusals: Vec::new(),
        review_flags: Vec::new(),
        binding: None,
        targets: order.targets.clone(),
        inputs: stated_inputs(order),
        time_window: order.time_window,
        categories: Vec::new(),
        deadline: None,
        earliest_release: None,
        validation_due: None,
        user_notice: Vec::new(),
        gag: None,
        preservation: None,
        duties: Vec::new(),
        clarification: None,
        follow_ups: Vec::new(),
        objections: Vec::new(),
        caveats: Vec::new(),
        narrowing: Vec::new(),
    };
    let requested = requested_categories(order);

    let jurisdiction = order.instrument.split('.').next().unwrap_or_default();
    if !set.has_jurisdiction(jurisdiction) {
        let refusal = finding(
            ReasonCode::UnknownJurisdiction,
            format!(
                "No policy exists for jurisdiction {jurisdiction:?}; Writ refuses orders under unknown law."
            ),
            None,
        );
        return refuse_all(decision, &requested, refusal);
    }
    let Some(instrument) = set.instrument(&order.instrument) else {
        let refusal = finding(
            ReasonCode::UnknownInstrument,
            format!(
                "The policy for {jurisdiction:?} knows no instrument {:?}; Writ refuses orders under unknown instruments.",
                order.instrument
            ),
            None,
        );
        return refuse_all(decision, &requested, refusal);
    };
    let overlays: Vec<&OverlaySpec> = set
        .overlays()
        .iter()
        .filter(|o| {
            o.applies_to_jurisdictions
                .iter()
                .any(|j| j.get_ref() == jurisdiction)
        })
        .filter(|o| !o.requires_dsa_intermediary || deployment.dsa_intermediary)
        .collect();

    decision.instrument_name = Some(instrument.name.clone());
    decision.instrument_citation = Some(instrument.citation.clone());
    decision.action = Some(instrument.action);
    decision.caveats = caveats(set, jurisdiction, instrument, &overlays, &requested);

    // Order-level checks: all of them, so a reviewer sees every problem at once.
    let mut refusals = Vec::new();
    let mut incomplete = None;
    if let Some((finding, missing)) = missing_elements(order, instrument, &overlays) {
        match instrument.on_incomplete {
            Incomplete::Refuse => refusals.push(finding),
            Incomplete::Clarify => incomplete = Some((finding, missing)),
        }
    }
    match (instrument.service_class, deployment.service_class) {
        (Some(needed), Some(actual)) if needed != actual => {
            let other = set
                .instruments()
                .filter(|(id, _)| id.split('.').next() == Some(jurisdiction))
                .find(|(_, i)| i.service_class == Some(actual))
                .map(|(id, _)| format!(" (for this provider: {id})"))
                .unwrap_or_default();
            refusals.push(finding(
                ReasonCode::WrongServiceClass,
                format!(
                    "{} is the basis for a provider classified as {}; this deployment is classified as {}{other}.",
                    order.instrument,
                    needed.as_str(),
                    actual.as_str()
                ),
                Some(instrument.citation.clone()),
            ));
        }
        _ => {}
    }
    if facts.issuer_kind.is_none() {
        refusals.push(finding(
            ReasonCode::IssuerNotRegistered,
            "The issuing authority is not in Writ's authority registry; its kind cannot be established.".into(),
            None,
        ));
    }
    match facts.issuer_country.as_deref() {
        None => refusals.push(finding(
            ReasonCode::IssuerCountryUnknown,
            "The authority registry does not record the issuing authority's country, so Writ cannot tell whether it may issue under this law.".into(),
            None,
        )),
        Some(country) if !may_issue_under(jurisdiction, instrument, country) => refusals.push(finding(
            ReasonCode::IssuerCountryMismatch,
            format!(
                "The registry places the issuing authority in {country}; it cannot issue under {jurisdiction:?} law ({}).",
                order.instrument
            ),
            Some(instrument.citation.clone()),
        )),
        Some(_) => {}
    }
    if let Some(w) = order.time_window.as_ref().filter(|w| w.to <= w.from) {
        refusals.push(finding(
            ReasonCode::InvalidTimeWindow,
            format!(
                "The order's time window ends ({}) before it starts ({}).",
                utc(w.to),
                utc(w.from)
            ),
            None,
        ));
    }
    if let Some(expires) = order.dates.expires_at.filter(|e| *e <= now) {
        refusals.push(finding(
            ReasonCode::OrderExpired,
            format!("The order's own validity ended at {}.", utc(expires)),
            None,
        ));
    }
    let hold = instrument
        .preservation
        .as_ref()
        .filter(|_| instrument.action == Action::Preserve)
        .map(|p| preservation_hold(p, order, facts, received_at));
    if let (Some(p), Some(h)) = (&instrument.preservation, &hold) {
        if let Some(exhausted) = &h.exhausted {
            refusals.push(finding(
                ReasonCode::PreservationRenewalsExhausted,
                exhausted.clone(),
                Some(p.citation.clone()),
            ));
        }
        let ends = h.expires_at;
        if !h.until_follow_up && ends <= now {
            refusals.push(finding(
                ReasonCode::PreservationPeriodEnded,
                format!(
                    "The preservation period{} ended at {}; an extension needs a request received before the hold ends.",
                    if h.extensions > 0 { format!(" ({}, extended {} time(s))", p.period, h.extensions) } else { format!(" ({})", p.period) },
                    utc(ends)
                ),
                Some(p.citation.clone()),
            ));
        }
    }

    let mut eval = Evaluation::default();
    if refusals.is_empty() {
        decision.categories = requested
            .iter()
            .map(|c| {
                decide_category(
                    *c,
                    order,
                    facts,
                    instrument,
                    Clock { now, received_at },
                    &mut eval,
                )
            })
            .collect();
        if let Some(v) = &instrument.emergency_validation
            && order.is_emergency()
            && eval.relies_on_emergency
        {
            // From the earlier of the claimed issue and the receipt: a future-dated order cannot
            // stretch its own validation deadline.
            let start = order.dates.issued_at.min(received_at);
            let (due, within) = match (v.working_days, v.window) {
                (Some(days), _) => (
                    add_working_days(start, days),
                    format!("{days} working day(s)"),
                ),
                (None, Some(w)) => (start + w.to_chrono(), w.to_string()),
                // The loader requires one of the two; an instrument without either is due at once.
                (None, None) => (start, "no time".to_owned()),
            };
            decision.validation_due = Some(ValidationDue {
                due,
                text: format!(
                    "Issued in an emergency without prior validation: {} is due within {within} of issue, by {}.{}",
                    v.by.as_deref().unwrap_or("validation"),
                    utc(due),
                    v.note
                        .as_deref()
                        .map(|n| format!(" {n}"))
                        .unwrap_or_default()
                ),
                citation: v.citation.clone(),
            });
            if due <= now {
                refusals.push(finding(
                    ReasonCode::EmergencyValidationOverdue,
                    format!(
                        "The emergency order was due to be validated by {} and is not.",
                        utc(due)
                    ),
                    Some(v.citation.clone()),
                ));
            }
        }
    }

    decision.binding = Some(binding(order, facts, instrument, deployment));
    decision.deadline = Some(deadline(order, instrument, received_at, pauses));
    decision.user_notice = std::iter::once(notice(&instrument.user_notice, order, None))
        .chain(
            overlays
                .iter()
                .filter_map(|o| o.user_notice.as_ref())
                .map(|spec| notice(spec, order, Some(&instrument.user_notice))),
        )
        .collect();
    decision.follow_ups = instrument
        .follow_ups
        .iter()
        .filter(|f| f.when == FollowUpWhen::Always || order.is_emergency())
        .map(|f| FollowUp {
            due: f.within.map(|w| received_at + w.to_chrono()),
            text: match f.within {
                Some(w) => format!(
                    "{} Due within {w} of receipt, by {}.",
                    f.text,
                    utc(received_at + w.to_chrono())
                ),
                None => f.text.clone(),
            },
            citation: f.citation.clone(),
        })
        .collect();
    decision.objections = instrument
        .objections
        .iter()
        .map(|o| Objection {
            code: o.code.clone(),
            text: o.text.clone(),
            citation: o.citation.clone(),
        })
        .collect();
    decision.gag = order.non_disclosure.as_ref().map(|g| Gag {
        ends: g.ends,
        active_at_decision: match g.ends {
            NonDisclosureEnd::Until(t) => t > now,
            NonDisclosureEnd::OpenEnded => true,
        },
        legal_basis: g.legal_basis.clone(),
    });
    decision.duties = instrument
        .duties
        .iter()
        .chain(overlays.iter().flat_map(|o| o.duties.iter()))
        .filter_map(|d| {
            match (d.service_class, deployment.service_class) {
                (None, _) => Some(d.text.clone()),
                (Some(c), Some(actual)) => (c == actual).then(|| d.text.clone()),
                (Some(c), None) => {
                    Some(format!("If the provider is {}: {}", class_words(c), d.text))
                }
            }
            .map(|text| Duty {
                text,
                citation: d.citation.clone(),
            })
        })
        .collect();

    if let Some((missing_finding, missing)) = incomplete {
        if refusals.is_empty() {
            let mut d = refuse_all(decision, &requested, missing_finding.clone());
            d.refusals = Vec::new();
            d.outcome = Outcome::ClarificationNeeded;
            d.validation_due = None;
            d.clarification = Some(Clarification {
                missing,
                text: format!(
                    "{} Ask the issuing authority to complete or correct it (Annex III); the deadlines stop until it does, and say whether the data were preserved meanwhile. Nothing is released until the clarified order is decided afresh.",
                    missing_finding.text
                ),
                citation: missing_finding
                    .citation
                    .clone()
                    .unwrap_or_else(|| instrument.citation.clone()),
            });
            return d;
        }
        refusals.insert(0, missing_finding);
    }
    if !refusals.is_empty() {
        let first = refusals[0].clone();
        decision = refuse_all(decision, &requested, first);
        decision.refusals = refusals;
        decision.validation_due = None;
        return decision;
    }

    if instrument.action == Action::Preserve {
        if let (Some(p), Some(h)) = (&instrument.preservation, &hold) {
            let remaining = p.max_extensions.saturating_sub(h.extensions);
            decision.preservation = Some(Preservation {
                expires_at: h.expires_at,
                extension: p.extension.filter(|_| remaining > 0).map(|e| e.to_string()),
                max_extensions: remaining,
                until_follow_up: h.until_follow_up,
                text: format!(
                    "{}{}{}.{}",
                    h.text,
                    if h.until_follow_up {
                        " The authority announced a follow-up request: keep preserving past that date until it arrives (or the authority withdraws), then a person ends the hold"
                    } else {
                        ""
                    },
                    match (p.extension, remaining) {
                        (Some(e), r) if r > 0 => format!(
                            "; extendable by {e} (at most {r} more time(s)) on a request received before the hold ends"
                        ),
                        (Some(_), _) => "; no further extension is allowed".to_owned(),
                        (None, _) => String::new(),
                    },
                    p.note
                        .as_deref()
                        .map(|n| format!(" {n}"))
                        .unwrap_or_default()
                ),
                citation: p.citation.clone(),
            });
        }
    } else {
        decision.earliest_release = Some(earliest_release(
            order,
            instrument,
            received_at,
            &decision.categories,
        ));
    }

    decision.review_flags = review_flags(order, facts, &decision, &eval);
    if instrument.service_class.is_some() && deployment.service_class.is_none() {
        decision.review_flags.push(finding(
            ReasonCode::ServiceClassUnset,
            "The deployment does not say whether the provider is a TKG interpersonal communications service or a TDDDG digital service, which decides the basis (StPO §100g or §100k) and the secrecy provision: a person checks the basis before release.".into(),
            Some(instrument.citation.clone()),
        ));
    }
    let anything = decision
        .categories
        .iter()
        .any(|c| c.status.grants() || c.status == FieldStatus::NotHeld);
    decision.outcome = if !anything {
        decision.refusals.push(finding(
            ReasonCode::NothingPermitted,
            "No requested category can be granted under this instrument; see each category.".into(),
            Some(instrument.citation.clone()),
        ));
        decision.earliest_release = None;
        Outcome::Refused
    } else if decision.review_flags.is_empty() {
        Outcome::AcceptableForReview
    } else {
        Outcome::NeedsHumanJudgement
    };
    decision
}

/// The order's stated inputs, in plain words, as the explanation shows them.
fn stated_inputs(order: &Order) -> Vec<String> {
    let mut out = Vec::new();
    let mut kinds: Vec<&str> = order.targets.iter().map(|t| t.kind().as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    out.push(format!("target kinds: {}", kinds.join(", ")));
    out.push(format!(
        "urgency: {}",
        if order.is_emergency() {
            "emergency (urgent)"
        } else {
            "not urgent"
        }
    ));
    out.push(match &order.purpose {
        Some(p) => format!(
            "purpose: {}{}",
            p.kind.as_str(),
            p.statement
                .as_deref()
                .map(|s| format!(" (stated: {s:?})"))
                .unwrap_or_default()
        ),
        None => "purpose: not stated".into(),
    });
    if let Some(f) = order.procedural_framework {
        out.push(format!("procedural framework: {}", f.as_str()));
    }
    if let Some(b) = &order.statutory_basis {
        out.push(format!(
            "statutory basis: {} ({})",
            b.kind.as_str(),
            b.statute
        ));
    }
    if let Some(aim) = order.sole_aim_identification {
        out.push(format!(
            "sole aim of identifying the author: {}",
            if aim { "stated" } else { "denied" }
        ));
    }
    if order.journalistic_source {
        out.push("seeks a journalist's source: yes".into());
    }
    if let Some(v) = &order.validator {
        out.push(format!(
            "authorising or validating party (claimed): {} ({})",
            v.authority, v.kind
        ));
    }
    if let Some(at) = order.follow_up_notified_at {
        out.push(format!("follow-up request announced: {}", utc(at)));
    }
    for at in &order.extension_requested_at {
        out.push(format!("extension requested: {}", utc(*at)));
    }
    out
}

/// The two times a rule may read: the decision time and the true receipt.
#[derive(Clone, Copy)]
struct Clock {
    now: DateTime<Utc>,
    received_at: DateTime<Utc>,
}

impl Clock {
    /// When the authorisation was given: the stated validation (else issue) time, but never
    /// after Writ received the order, so a future-dated claim cannot stretch its own lapse.
    fn given(self, order: &Order) -> DateTime<Utc> {
        order
            .dates
            .validated_at
            .unwrap_or(order.dates.issued_at)
            .min(self.received_at)
    }
}

/// What the per-field evaluation learnt about the order as a whole.
#[derive(Default)]
struct Evaluation {
    /// Some field is granted only through the emergency-without-validation path.
    relies_on_emergency: bool,
    /// Some field is granted only if a person confirms the claimed validation.
    pending_check: bool,
    /// Some field is granted on a statutory basis of a kind a person must judge.
    basis_to_judge: bool,
}

/// How an issuer came to be entitled under a rule, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Grant {
    Direct,
    Validated,
    EmergencyWithoutValidation,
    BasisToJudge,
    PendingCheck,
}

fn requested_categories(order: &Order) -> Vec<Category> {
    let mut seen = Vec::new();
    for c in &order.categories {
        if !seen.contains(c) {
            seen.push(*c);
        }
    }
    seen
}

fn finding(code: ReasonCode, text: String, citation: Option<String>) -> Finding {
    Finding {
        code,
        text,
        citation,
    }
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn kinds(list: &[IssuerKind]) -> String {
    if list.is_empty() {
        return "none".into();
    }
    list.iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Denies every requested category (and its default fields) for an order-level reason.
fn refuse_all(mut decision: Decision, requested: &[Category], refusal: Finding) -> Decision {
    decision.categories = requested
        .iter()
        .map(|c| CategoryDecision {
            category: *c,
            status: FieldStatus::Deny,
            reason: refusal.code,
            text: "The order as a whole is refused.".into(),
            citation: refusal.citation.clone(),
            fields: default_fields(*c)
                .map(|field| FieldDecision {
                    field,
                    status: FieldStatus::Deny,
                    reason: refusal.code,
                    text: "The order as a whole is refused.".into(),
                    citation: refusal.citation.clone(),
                    target_kinds: None,
                })
                .collect(),
        })
        .collect();
    decision.outcome = Outcome::Refused;
    decision.refusals = vec![refusal];
    decision.earliest_release = None;
    decision.preservation = None;
    decision
}

/// The elements an order under `instrument` must contain, as `Order` field paths (see
/// [`ORDER_ELEMENTS`]): the instrument's own and those of every overlay that applies to its
/// jurisdiction in this deployment, each once, in the policy files' order. `None` for an
/// instrument the set does not know. The manual-intake form asks for exactly these.
pub fn required_elements(
    set: &PolicySet,
    deployment: &Deployment,
    instrument: &str,
) -> Option<Vec<&'static str>> {
    let spec = set.instrument(instrument)?;
    let jurisdiction = instrument.split('.').next().unwrap_or_default();
    let overlays = set
        .overlays()
        .iter()
        .filter(|o| {
            o.applies_to_jurisdictions
                .iter()
                .any(|j| j.get_ref() == jurisdiction)
        })
        .filter(|o| !o.requires_dsa_intermediary || deployment.dsa_intermediary);
    let mut out: Vec<&'static str> = Vec::new();
    for e in spec
        .required_elements
        .iter()
        .chain(overlays.flat_map(|o| o.required_elements.iter()))
    {
        // The loader rejects paths outside the catalogue; the catalogue's own `&'static str`
        // is returned so callers can keep it.
        if let Some(known) = ORDER_ELEMENTS
            .iter()
            .find(|k| k.path == e.get_ref().as_str())
            && !out.contains(&known.path)
        {
            out.push(known.path);
        }
    }
    Some(out)
}

fn missing_elements(
    order: &Order,
    instrument: &InstrumentSpec,
    overlays: &[&OverlaySpec],
) -> Option<(Finding, Vec<String>)> {
    let mut citations = vec![instrument.citation.clone()];
    let mut required: Vec<&str> = instrument
        .required_elements
        .iter()
        .map(|e| e.get_ref().as_str())
        .collect();
    for o in overlays {
        required.extend(o.required_elements.iter().map(|e| e.get_ref().as_str()));
        citations.push(o.citation.clone());
    }
    let mut missing: Vec<&str> = Vec::new();
    for path in required {
        // The loader rejects unknown paths, so `None` cannot occur; treat it as missing anyway.
        if order.has_element(path) != Some(true) && !missing.contains(&path) {
            missing.push(path);
        }
    }
    if missing.is_empty() {
        return None;
    }
    let named: Vec<String> = missing
        .iter()
        .map(|p| {
            let meaning = ORDER_ELEMENTS
                .iter()
                .find(|e| e.path == *p)
                .map_or("", |e| e.meaning);
            format!("{p} ({meaning})")
        })
        .collect();
    Some((
        finding(
            ReasonCode::MissingRequiredElements,
            format!("The order lacks required elements: {}.", named.join("; ")),
            Some(citations.join("; ")),
        ),
        missing.iter().map(|p| (*p).to_owned()).collect(),
    ))
}

fn decide_category(
    category: Category,
    order: &Order,
    facts: &RegistryFacts,
    instrument: &InstrumentSpec,
    clock: Clock,
    eval: &mut Evaluation,
) -> CategoryDecision {
    let rules: Vec<&RuleSpec> = instrument
        .rules
        .iter()
        .filter(|r| r.category == category)
        .collect();
    if category == Category::Content {
        // Entitlement is not availability: whatever the law allows, Writ holds no content.
        let reachable = rules
            .iter()
            .any(|r| check_rule(r, &instrument.routes, order, facts, clock).is_ok());
        let (text, citation) = match rules.first() {
            Some(rule) if reachable => (
                "The instrument may lawfully reach content, but Writ holds no message content: no responsive records.".to_owned(),
                Some(rule.citation.clone()),
            ),
            _ => ("Writ holds no message content: no responsive records.".to_owned(), None),
        };
        return CategoryDecision {
            category,
            status: FieldStatus::NotHeld,
            reason: ReasonCode::NotHeld,
            text,
            citation,
            fields: Vec::new(),
        };
    }
    if rules.is_empty() {
        let text = format!(
            "{} does not reach {category} data.",
            instrument.id.get_ref()
        );
        return CategoryDecision {
            category,
            status: FieldStatus::Deny,
            reason: ReasonCode::CategoryNotReached,
            text: text.clone(),
            citation: Some(instrument.citation.clone()),
            fields: default_fields(category)
                .map(|field| FieldDecision {
                    field,
                    status: FieldStatus::Deny,
                    reason: ReasonCode::CategoryNotReached,
                    text: text.clone(),
                    citation: Some(instrument.citation.clone()),
                    target_kinds: None,
                })
                .collect(),
        };
    }

    // The category covers its default fields plus any the instrument puts in it.
    let mut fields: Vec<FieldId> = default_fields(category).collect();
    for rule in &rules {
        for f in rule.fields.get_ref() {
            if !fields.contains(f) {
                fields.push(*f);
            }
        }
    }
    let field_decisions: Vec<FieldDecision> = fields
        .into_iter()
        .map(|field| {
            decide_field(
                category, field, &rules, order, facts, instrument, clock, eval,
            )
        })
        .collect();

    let best = field_decisions.iter().min_by_key(|f| f.status);
    let (status, reason, text, citation) = match best {
        Some(f) if f.status.grants() => (
            f.status,
            f.reason,
            format!(
                "Granted for {} of {} field(s).",
                field_decisions.iter().filter(|f| f.status.grants()).count(),
                field_decisions.len()
            ),
            f.citation.clone(),
        ),
        _ => {
            let first_rule = rules.first().map(|r| (r.citation.clone(), r.note.clone()));
            let reason = field_decisions
                .first()
                .map_or(ReasonCode::FieldNotReached, |f| f.reason);
            let text = field_decisions.first().map_or_else(
                || {
                    first_rule
                        .as_ref()
                        .and_then(|r| r.1.clone())
                        .unwrap_or_default()
                },
                |f| f.text.clone(),
            );
            (FieldStatus::Deny, reason, text, first_rule.map(|r| r.0))
        }
    };
    CategoryDecision {
        category,
        status,
        reason,
        text,
        citation,
        fields: field_decisions,
    }
}

#[allow(clippy::too_many_arguments)]
fn decide_field(
    category: Category,
    field: FieldId,
    rules: &[&RuleSpec],
    order: &Order,
    facts: &RegistryFacts,
    instrument: &InstrumentSpec,
    clock: Clock,
    eval: &mut Evaluation,
) -> FieldDecision {
    let reaching: Vec<&&RuleSpec> = rules
        .iter()
        .filter(|r| r.fields.get_ref().contains(&field))
        .collect();
    if reaching.is_empty() {
        // Say where the instrument does put the field, if anywhere: that is what a lawyer asks next.
        let elsewhere = instrument
            .rules
            .iter()
            .find(|r| r.category != category && r.fields.get_ref().contains(&field));
        let note = rules.iter().find_map(|r| r.note.clone());
        let text = match elsewhere {
            Some(r) => format!(
                "Under {} this field is {} data, not {category} data; it is reached only if that category is requested and allowed.",
                instrument.id.get_ref(),
                r.category
            ),
            None => note.unwrap_or_else(|| {
                format!(
                    "{} does not reach this field as {category} data.",
                    instrument.id.get_ref()
                )
            }),
        };
        return FieldDecision {
            field,
            status: FieldStatus::Deny,
            reason: ReasonCode::FieldNotReached,
            text,
            citation: elsewhere
                .or(rules.first().copied())
                .map(|r| r.citation.clone()),
            target_kinds: None,
        };
    }

    // A rule that covers every target beats one that covers only some kinds of target, whatever
    // their grants; among equals the stronger grant wins.
    let mut best: Option<(Grant, Option<Vec<TargetKind>>, &RuleSpec)> = None;
    let mut first_denial: Option<(ReasonCode, String, &RuleSpec)> = None;
    for rule in reaching {
        match check_rule(rule, &instrument.routes, order, facts, clock) {
            Ok((grant, covers)) => {
                let better = best
                    .as_ref()
                    .is_none_or(|(g, c, _)| (covers.is_some(), grant) < (c.is_some(), *g));
                if better {
                    best = Some((grant, covers, rule));
                }
            }
            Err((code, text)) => {
                if first_denial.is_none() {
                    first_denial = Some((code, text, rule));
                }
            }
        }
    }
    let preserve = instrument.action == Action::Preserve;
    match (best, first_denial) {
        (Some((grant, covers, rule)), denial) => {
            let (mut status, reason, text) = match grant {
                Grant::BasisToJudge => {
                    eval.basis_to_judge = true;
                    (
                        FieldStatus::Permit,
                        ReasonCode::StatutoryBasisToJudge,
                        "Permitted only if a person finds the stated statutory basis sufficient."
                            .to_owned(),
                    )
                }
                Grant::Direct | Grant::Validated => (
                    FieldStatus::Permit,
                    ReasonCode::Permitted,
                    "Permitted.".to_owned(),
                ),
                Grant::EmergencyWithoutValidation => {
                    eval.relies_on_emergency = true;
                    (
                        FieldStatus::Permit,
                        ReasonCode::PermittedEmergencyWithoutValidation,
                        "Permitted in an emergency without prior validation; validation must follow in time.".to_owned(),
                    )
                }
                Grant::PendingCheck => {
                    eval.pending_check = true;
                    (
                        FieldStatus::PermitPendingValidationCheck,
                        ReasonCode::PendingValidationCheck,
                        "Permitted only if a person confirms the claimed validation against the signed document: the registry does not prove it by the validator's own signature.".to_owned(),
                    )
                }
            };
            let mut reason = reason;
            let mut text = text;
            if preserve {
                // A preservation order holds data; it never releases, whoever issued it.
                status = FieldStatus::Preserve;
                if grant != Grant::PendingCheck {
                    reason = ReasonCode::PreserveOnly;
                }
                text = format!("Preserve, do not release. {text}");
            }
            if let Some(note) = &rule.note {
                text = format!("{text} {note}");
            }
            if let Some(kinds) = &covers {
                let left_out: Vec<TargetKind> = order
                    .targets
                    .iter()
                    .map(Target::kind)
                    .filter(|k| !kinds.contains(k))
                    .fold(Vec::new(), |mut v, k| {
                        if !v.contains(&k) {
                            v.push(k);
                        }
                        v
                    });
                text = format!(
                    "{text} Only for records found from targets of kind {}: the order's targets of kind {} are not covered.",
                    kind_list(kinds),
                    kind_list(&left_out)
                );
                if let Some((_, why, _)) = denial {
                    text = format!("{text} {why}");
                }
            }
            FieldDecision {
                field,
                status,
                reason,
                text,
                citation: Some(rule.citation.clone()),
                target_kinds: covers,
            }
        }
        (None, Some((code, text, rule))) => FieldDecision {
            field,
            status: FieldStatus::Deny,
            reason: code,
            text,
            citation: Some(rule.citation.clone()),
            target_kinds: None,
        },
        // `reaching` is non-empty, so one of the two is set; deny if that ever changes.
        (None, None) => FieldDecision {
            field,
            status: FieldStatus::Deny,
            reason: ReasonCode::FieldNotReached,
            text: "Not reached.".into(),
            citation: None,
            target_kinds: None,
        },
    }
}

/// A rule's grant, and the kinds of target it covers where it reaches only some (`None`: all).
type RuleGrant = (Grant, Option<Vec<TargetKind>>);

/// Checks one rule's entitlement and conditions; the first failure is the reason.
fn check_rule(
    rule: &RuleSpec,
    routes: &[RouteSpec],
    order: &Order,
    facts: &RegistryFacts,
    clock: Clock,
) -> Result<RuleGrant, (ReasonCode, String)> {
    if !rule.frameworks.is_empty()
        && !order
            .procedural_framework
            .is_some_and(|f| rule.frameworks.contains(&f))
    {
        return Err((
            ReasonCode::FrameworkNotCovered,
            format!(
                "Open only in these procedural frameworks: {}; the order states {}.",
                rule.frameworks
                    .iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                order.procedural_framework.map_or("none", |f| f.as_str())
            ),
        ));
    }
    let mut grant = if rule.issuers.is_empty() && rule.validated_issuers.is_empty() {
        route_entitlement(routes, order, facts, clock)?
    } else {
        entitlement(
            &Who {
                issuers: &rule.issuers,
                validated_issuers: &rule.validated_issuers,
                validators: &rule.validators,
                emergency_unvalidated_issuers: &rule.emergency_unvalidated_issuers,
            },
            order,
            facts,
        )?
    };
    // A rule that reaches only some kinds of target grants for those targets alone; with none
    // of them in the order it grants nothing.
    let mut covers = None;
    if !rule.target_kinds.is_empty()
        && let Some(t) = order
            .targets
            .iter()
            .find(|t| !rule.target_kinds.contains(&t.kind()))
    {
        if !order
            .targets
            .iter()
            .any(|t| rule.target_kinds.contains(&t.kind()))
        {
            return Err((
                ReasonCode::TargetKindNotCovered,
                format!(
                    "This rule takes only targets of kind {}; the order names a target of kind {} (an IP address at a time is resolved from connection records).",
                    kind_list(&rule.target_kinds),
                    t.kind().as_str()
                ),
            ));
        }
        covers = Some(rule.target_kinds.clone());
    }
    if !rule.purposes.is_empty()
        && !order
            .purpose
            .as_ref()
            .is_some_and(|p| rule.purposes.contains(&p.kind))
    {
        return Err((
            ReasonCode::PurposeNotCovered,
            format!(
                "Open only for these purposes: {}; the order states {}.",
                rule.purposes
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                order.purpose.as_ref().map_or("none", |p| p.kind.as_str())
            ),
        ));
    }
    if let Some(p) = order
        .purpose
        .as_ref()
        .filter(|p| rule.excluded_purposes.contains(&p.kind))
    {
        return Err((
            ReasonCode::PurposeNotCovered,
            format!("Not open for the stated purpose ({}).", p.kind.as_str()),
        ));
    }
    if !rule.statutory_basis_kinds.is_empty() {
        match order
            .statutory_basis
            .as_ref()
            .filter(|b| !b.statute.trim().is_empty())
        {
            None => {
                return Err((
                    ReasonCode::StatutoryBasisRequired,
                    format!(
                        "Open only on a stated statutory basis ({}, with the statute named); the order states none.",
                        rule.statutory_basis_kinds
                            .iter()
                            .map(|k| k.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            Some(b) if !rule.statutory_basis_kinds.contains(&b.kind) => {
                grant = grant.max(Grant::BasisToJudge);
            }
            Some(_) => {}
        }
    }
    if let Some(lapse) = rule.lapses_after {
        let given = clock.given(order);
        if given + lapse.to_chrono() <= clock.now {
            return Err((
                ReasonCode::AuthorisationLapsed,
                format!(
                    "The authorisation lapses {lapse} after it was given ({}): it ended at {}.",
                    utc(given),
                    utc(given + lapse.to_chrono())
                ),
            ));
        }
    }
    if rule.min_custodial_months.is_some() || !rule.listed_offence_codes.is_empty() {
        let Some(offence) = &order.offence else {
            return Err((
                ReasonCode::OffenceNotStated,
                "An offence threshold applies but the order states no offence.".into(),
            ));
        };
        let by_months = rule
            .min_custodial_months
            .is_some_and(|min| offence.max_custodial_months.is_some_and(|m| m >= min));
        let by_list = offence
            .codes
            .iter()
            .any(|c| rule.listed_offence_codes.contains(c));
        if !by_months && !by_list {
            let needs = match (
                rule.min_custodial_months,
                rule.listed_offence_codes.is_empty(),
            ) {
                (Some(min), true) => {
                    format!("a maximum custodial sentence of at least {min} months")
                }
                (Some(min), false) => format!(
                    "a maximum custodial sentence of at least {min} months or a listed offence ({})",
                    rule.listed_offence_codes.join(", ")
                ),
                (None, _) => format!(
                    "a listed offence ({})",
                    rule.listed_offence_codes.join(", ")
                ),
            };
            let stated = offence
                .max_custodial_months
                .map_or("no maximum sentence stated".to_owned(), |m| {
                    format!("the order states {m} months")
                });
            return Err((
                ReasonCode::OffenceBelowThreshold,
                format!("Requires {needs}; {stated}."),
            ));
        }
    }
    if let Some(min) = rule.min_sentence_imposed_months
        && order
            .offence
            .as_ref()
            .and_then(|o| o.sentence_imposed_months)
            .is_none_or(|m| m < min)
    {
        return Err((
            ReasonCode::OffenceBelowThreshold,
            format!(
                "Requires a custodial sentence or detention order imposed of at least {min} months; the order states none that long."
            ),
        ));
    }
    if rule.requires_emergency && !reasoned_emergency(order) {
        return Err((
            ReasonCode::EmergencyRequired,
            "Available only for emergency orders that state why.".into(),
        ));
    }
    if rule.requires_network_offence
        && order.offence.as_ref().and_then(|o| o.over_network) != Some(true)
    {
        return Err((
            ReasonCode::NetworkOffenceRequired,
            "Available only for an offence committed over an electronic communications network."
                .into(),
        ));
    }
    if rule.requires_sole_aim_identification
        && !(order.sole_aim_identification == Some(true) && sole_aim_identification(order))
    {
        return Err((
            ReasonCode::SoleAimIdentificationRequired,
            "Available only when the order states that its sole aim is to identify the author (and it requests nothing beyond subscriber and identification data).".into(),
        ));
    }
    Ok((grant, covers))
}

fn kind_list(kinds: &[TargetKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An emergency opens a rule or a route only when the order says why: a bare flag is a claim
/// anyone can set (StPO §100e(1) Gefahr im Verzug, IPA s.61A urgency, e-Evidence Art 4(5) and
/// 2702(c)(4) all turn on the stated facts). Deadlines still run as for an emergency.
fn reasoned_emergency(order: &Order) -> bool {
    order
        .emergency
        .as_ref()
        .is_some_and(|e| !e.justification.trim().is_empty())
}

/// An order whose sole aim is identification asks for nothing beyond who someone is (a
/// necessary condition; the authority's statement is the other).
fn sole_aim_identification(order: &Order) -> bool {
    order
        .categories
        .iter()
        .all(|c| matches!(c, Category::Subscriber | Category::Identification))
}

/// Who may issue, alone or authorised, under a rule or a route.
struct Who<'a> {
    issuers: &'a [IssuerKind],
    validated_issuers: &'a [IssuerKind],
    validators: &'a [IssuerKind],
    emergency_unvalidated_issuers: &'a [IssuerKind],
}

/// The best entitlement any applicable route gives; the first route's reason otherwise.
fn route_entitlement(
    routes: &[RouteSpec],
    order: &Order,
    facts: &RegistryFacts,
    clock: Clock,
) -> Result<Grant, (ReasonCode, String)> {
    let mut best: Option<Grant> = None;
    let mut first_error: Option<(ReasonCode, String)> = None;
    let mut lapsed: Option<(ReasonCode, String)> = None;
    let mut condition_error: Option<(ReasonCode, String)> = None;
    for route in routes
        .iter()
        .filter(|r| r.journalistic_source == order.journalistic_source)
    {
        if !route.frameworks.is_empty()
            && !order
                .procedural_framework
                .is_some_and(|f| route.frameworks.contains(&f))
        {
            condition_error.get_or_insert((
                ReasonCode::FrameworkNotCovered,
                format!(
                    "No authorisation route fits: the order states the procedural framework {}.",
                    order.procedural_framework.map_or("(none)", |f| f.as_str())
                ),
            ));
            continue;
        }
        if !route.purposes.is_empty()
            && !order
                .purpose
                .as_ref()
                .is_some_and(|p| route.purposes.contains(&p.kind))
        {
            condition_error.get_or_insert((
                ReasonCode::PurposeNotCovered,
                format!(
                    "No authorisation route fits the stated purpose ({}).",
                    order.purpose.as_ref().map_or("none", |p| p.kind.as_str())
                ),
            ));
            continue;
        }
        if route.requires_emergency && !reasoned_emergency(order) {
            condition_error.get_or_insert((
                ReasonCode::EmergencyRequired,
                format!(
                    "The route \"{}\" is open only in an emergency the order states reasons for.",
                    route.name
                ),
            ));
            continue;
        }
        if let Some(lapse) = route.lapses_after {
            let given = clock.given(order);
            if given + lapse.to_chrono() <= clock.now {
                lapsed.get_or_insert((
                    ReasonCode::AuthorisationLapsed,
                    format!(
                        "The {} lapses {lapse} after it was given ({}): it ended at {} [{}].",
                        route.name,
                        utc(given),
                        utc(given + lapse.to_chrono()),
                        route.citation
                    ),
                ));
                continue;
            }
        }
        let who = Who {
            issuers: &route.issuers,
            validated_issuers: &route.validated_issuers,
            validators: &route.validators,
            emergency_unvalidated_issuers: &[],
        };
        match entitlement(&who, order, facts) {
            Ok(g) => {
                if best.is_none_or(|b| g < b) {
                    best = Some(g);
                }
            }
            Err((code, text)) => {
                first_error
                    .get_or_insert((code, format!("{} ({}): {text}", route.name, route.citation)));
            }
        }
    }
    match best {
        Some(g) => Ok(g),
        None => Err(lapsed.or(first_error).or(condition_error).unwrap_or((
            ReasonCode::IssuerKindNotEntitled,
            if order.journalistic_source {
                "The order seeks a journalist's source: no route of this instrument allows that without the approval it requires.".to_owned()
            } else {
                "No authorisation route of this instrument applies.".to_owned()
            },
        ))),
    }
}

fn entitlement(
    rule: &Who<'_>,
    order: &Order,
    facts: &RegistryFacts,
) -> Result<Grant, (ReasonCode, String)> {
    let Some(issuer) = facts.issuer_kind else {
        return Err((
            ReasonCode::IssuerNotRegistered,
            "The issuer is not registered.".into(),
        ));
    };
    if rule.issuers.contains(&issuer) {
        return Ok(Grant::Direct);
    }
    let may_with_validation = rule.validated_issuers.contains(&issuer);
    let mut pending = false;
    if let (true, Some(claimed)) = (may_with_validation, &order.validator) {
        let proven = facts.validation_signed_by_validator && facts.validator_kind.is_some();
        // An unproven validation is judged on the registry's kind where it knows the validator,
        // else on the claim, and in either case only pending a person's check.
        let kind = facts.validator_kind.unwrap_or(claimed.kind);
        if rule.validators.contains(&kind) {
            if proven {
                return Ok(Grant::Validated);
            }
            pending = true;
        }
    }
    if reasoned_emergency(order) && rule.emergency_unvalidated_issuers.contains(&issuer) {
        return Ok(Grant::EmergencyWithoutValidation);
    }
    if pending {
        return Ok(Grant::PendingCheck);
    }
    if may_with_validation {
        return Err(match &order.validator {
            None => (
                ReasonCode::ValidationRequired,
                format!(
                    "A registered {issuer} may use this only with validation by: {}; the order claims none.",
                    kinds(rule.validators)
                ),
            ),
            Some(_) => (
                ReasonCode::ValidatorNotEntitled,
                format!(
                    "The validator is not of a kind that may validate this (allowed: {}).",
                    kinds(rule.validators)
                ),
            ),
        });
    }
    Err((
        ReasonCode::IssuerKindNotEntitled,
        format!(
            "The registry records the issuer as {issuer}; this is open to: {}{}.",
            kinds(rule.issuers),
            if rule.validated_issuers.is_empty() {
                String::new()
            } else {
                format!("; with validation: {}", kinds(rule.validated_issuers))
            }
        ),
    ))
}

/// Whether an authority registered in `country` may issue under `jurisdiction`'s law: its own
/// country's, or for EU instruments as a member state the Regulation binds.
fn may_issue_under(jurisdiction: &str, instrument: &InstrumentSpec, country: &str) -> bool {
    let country = country.to_ascii_uppercase();
    if !instrument.issuer_countries.is_empty() {
        return instrument
            .issuer_countries
            .iter()
            .any(|c| c.eq_ignore_ascii_case(&country));
    }
    match jurisdiction {
        "eu" => instrument
            .binding
            .binds_provider_in
            .iter()
            .any(|c| c.eq_ignore_ascii_case(&country)),
        "uk" => country == "GB",
        other => other.eq_ignore_ascii_case(&country),
    }
}

fn binding(
    order: &Order,
    facts: &RegistryFacts,
    instrument: &InstrumentSpec,
    deployment: &Deployment,
) -> Binding {
    let spec = &instrument.binding;
    // The registered country, never the order's claim about itself.
    let issuing = facts
        .issuer_country
        .as_deref()
        .unwrap_or(&order.issuer.country)
        .to_ascii_uppercase();
    let places: Vec<String> = std::iter::once(&deployment.establishment)
        .chain(deployment.legal_representative_in.iter())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let serving = spec.binds_providers_serving
        && deployment.offers_service_in.iter().any(|c| {
            spec.binds_provider_in
                .iter()
                .any(|b| b.eq_ignore_ascii_case(c))
        });
    let binds = serving
        || places.iter().any(|p| {
            spec.binds_provider_in.iter().any(|b| b == p)
                && !(spec.except_issuing_state && *p == issuing)
        });
    let text = if binds {
        format!(
            "Binding on the provider (established in {}{}{}).",
            deployment.establishment,
            if serving {
                format!(
                    "; it offers its service in {}",
                    deployment.offers_service_in.join(", ")
                )
            } else {
                String::new()
            },
            if deployment.legal_representative_in.is_empty() {
                String::new()
            } else {
                format!(
                    ", represented in {}",
                    deployment.legal_representative_in.join(", ")
                )
            }
        )
    } else {
        // GDPR Art 48 concerns third-country orders only: never a member state's own.
        let art48 = EU_MEMBER_STATES
            .contains(&deployment.establishment.to_ascii_uppercase().as_str())
            && !EU_MEMBER_STATES.contains(&issuing.as_str());
        format!(
            "Not binding on a provider established in {}: any disclosure is voluntary and needs human judgement{}.",
            deployment.establishment,
            if art48 {
                " (the order comes from a third country: GDPR Art 48 also applies)"
            } else {
                ""
            }
        )
    };
    Binding {
        binding: binds,
        text,
        citation: spec.citation.clone(),
    }
}

fn class_words(c: ServiceClass) -> &'static str {
    match c {
        ServiceClass::InterpersonalCommunications => {
            "a number-independent interpersonal communications service (TKG)"
        }
        ServiceClass::DigitalService => "a digital service (TDDDG)",
    }
}

/// The EU member states (Denmark included: GDPR binds it, though e-Evidence does not).
const EU_MEMBER_STATES: &[&str] = &[
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
    "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
];

/// `n` working days (Monday to Friday) after `start`, at the same time of day. Public holidays
/// vary by Land and year and are not counted: the due time errs early, never late.
fn add_working_days(start: DateTime<Utc>, n: u32) -> DateTime<Utc> {
    use chrono::{Datelike, Weekday};
    let mut t = start;
    let mut left = n;
    while left > 0 {
        t += TimeDelta::days(1);
        if !matches!(t.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    t
}

/// A preservation's hold as the order's events shape it.
struct Hold {
    expires_at: DateTime<Utc>,
    extensions: u32,
    until_follow_up: bool,
    text: String,
    exhausted: Option<String>,
}

/// The hold of a preservation order: its period from receipt, the extensions the authority
/// asked for before it ended (at most as many as the law allows), a follow-up announced before
/// it ended (the hold then lasts until that request arrives), and renewals Writ counted for the
/// same targets (a renewed request is itself an extension).
fn preservation_hold(
    p: &super::model::PreservationSpec,
    order: &Order,
    facts: &RegistryFacts,
    received_at: DateTime<Utc>,
) -> Hold {
    let renewals = facts.earlier_preservations;
    if renewals > 0 {
        let text = format!(
            "A renewed request: this authority's preservation of these targets under this instrument is still running ({renewals} earlier order(s))."
        );
        return match p.extension.filter(|_| renewals <= p.max_extensions) {
            Some(e) => Hold {
                expires_at: received_at + e.to_chrono(),
                extensions: p.max_extensions,
                until_follow_up: false,
                text: format!(
                    "{text} Preserve for the extension of {e} from receipt, until {}",
                    utc(received_at + e.to_chrono())
                ),
                exhausted: None,
            },
            None => Hold {
                expires_at: received_at,
                extensions: p.max_extensions,
                until_follow_up: false,
                text: text.clone(),
                exhausted: Some(format!(
                    "{text} The law allows {} extension(s) of {}: no further renewal; only legal process compelling disclosure can follow.",
                    p.max_extensions, p.period
                )),
            },
        };
    }
    let mut expires_at = received_at + p.period.to_chrono();
    let mut extensions = 0;
    let mut asked: Vec<DateTime<Utc>> = order.extension_requested_at.clone();
    asked.sort();
    if let Some(e) = p.extension {
        for at in asked {
            if extensions < p.max_extensions && at < expires_at {
                expires_at += e.to_chrono();
                extensions += 1;
            }
        }
    }
    let until_follow_up = order
        .follow_up_notified_at
        .is_some_and(|at| at < expires_at)
        && p.continues_until_follow_up;
    Hold {
        expires_at,
        extensions,
        until_follow_up,
        text: format!(
            "Preserve for {} from receipt{}, until {}",
            p.period,
            if extensions > 0 {
                format!(", extended {extensions} time(s) on the authority's request")
            } else {
                String::new()
            },
            utc(expires_at)
        ),
        exhausted: None,
    }
}

/// Runs a deadline clock from `start` for `length`, stopped by the pauses.
/// Returns the due time, or (since, remaining) while a pause is still pending.
fn run_clock(
    start: DateTime<Utc>,
    length: TimeDelta,
    pauses: &[Pause],
) -> Result<DateTime<Utc>, (DateTime<Utc>, TimeDelta)> {
    let mut sorted: Vec<Pause> = pauses
        .iter()
        .filter(|p| p.to.is_none_or(|to| to > start))
        .copied()
        .collect();
    sorted.sort_by_key(|p| p.from);
    let mut t = start;
    let mut remaining = length;
    for p in sorted {
        let from = p.from.max(t);
        // A pause that starts after the clock ran out does not revive it.
        if from >= t + remaining {
            break;
        }
        remaining -= from - t;
        t = from;
        match p.to {
            None => return Err((t, remaining)),
            Some(to) => t = t.max(to),
        }
    }
    Ok(t + remaining)
}

fn deadline(
    order: &Order,
    instrument: &InstrumentSpec,
    received_at: DateTime<Utc>,
    pauses: &[Pause],
) -> Deadline {
    let Some(spec) = &instrument.deadline else {
        return match order.dates.respond_by {
            Some(by) => Deadline {
                due: Some(by),
                suspended: false,
                remaining_seconds: None,
                text: format!(
                    "No statutory deadline; the authority asks for a reply by {}.",
                    utc(by)
                ),
                citation: None,
            },
            None => Deadline {
                due: None,
                suspended: false,
                remaining_seconds: None,
                text: "No statutory deadline and none set by the order.".into(),
                citation: None,
            },
        };
    };
    let (length, which) = match (order.is_emergency(), spec.emergency, spec.normal) {
        (true, Some(e), _) => (Some(e), "emergency deadline"),
        (_, _, Some(n)) => (Some(n), "deadline"),
        _ => (None, ""),
    };
    let note = spec
        .note
        .as_deref()
        .map(|n| format!(" {n}"))
        .unwrap_or_default();
    let Some(length) = length else {
        let (due, extra) = match order.dates.respond_by {
            Some(by) => (
                Some(by),
                format!(" The authority asks for a reply by {}.", utc(by)),
            ),
            None => (None, String::new()),
        };
        return Deadline {
            due,
            suspended: false,
            remaining_seconds: None,
            text: format!("No fixed statutory deadline.{note}{extra}"),
            citation: Some(spec.citation.clone()),
        };
    };
    let effective: &[Pause] = if spec.clarification_pauses {
        pauses
    } else {
        &[]
    };
    let ignored = if !spec.clarification_pauses && !pauses.is_empty() {
        " Clarification requests do not stop this deadline."
    } else {
        ""
    };
    match run_clock(received_at, length.to_chrono(), effective) {
        Ok(due) => Deadline {
            due: Some(due),
            suspended: false,
            remaining_seconds: None,
            text: format!(
                "The {which} of {length} runs from receipt ({}){}: due {}.{ignored}{note}",
                utc(received_at),
                if due > received_at + length.to_chrono() {
                    ", stopped during clarification"
                } else {
                    ""
                },
                utc(due)
            ),
            citation: Some(spec.citation.clone()),
        },
        Err((since, remaining)) => Deadline {
            due: None,
            suspended: true,
            remaining_seconds: Some(remaining.num_seconds()),
            text: format!(
                "The {which} of {length} is suspended since {} while a clarification is pending; {} hour(s) remain once it arrives.{note}",
                utc(since),
                remaining.num_hours()
            ),
            citation: Some(spec.citation.clone()),
        },
    }
}

fn earliest_release(
    order: &Order,
    instrument: &InstrumentSpec,
    received_at: DateTime<Utc>,
    categories: &[CategoryDecision],
) -> ReleaseTime {
    let held = instrument.release_hold.as_ref().filter(|h| {
        order.enforcing_state_notified
            && categories
                .iter()
                .any(|c| h.categories.contains(&c.category) && c.status.releases())
    });
    match held {
        Some(hold) if !order.is_emergency() => {
            let earliest = received_at + hold.window.to_chrono();
            ReleaseTime {
                earliest,
                text: format!(
                    "The enforcing state was notified: release of {} data waits out its {} objection window, until {} (earlier only if it confirms it raises no ground for refusal).",
                    hold.categories
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join("/"),
                    hold.window,
                    utc(earliest)
                ),
                citation: Some(hold.citation.clone()),
            }
        }
        Some(hold) => ReleaseTime {
            earliest: received_at,
            text: format!(
                "Emergency: release on approval, within the emergency deadline; the notified enforcing authority may still object{}.",
                hold.emergency_objection_window
                    .map(|w| format!(
                        " until {} ({w} after receipt)",
                        utc(received_at + w.to_chrono())
                    ))
                    .unwrap_or_default()
            ),
            citation: Some(hold.citation.clone()),
        },
        None => ReleaseTime {
            earliest: received_at,
            text: "No objection window applies: release on approval.".into(),
            citation: None,
        },
    }
}

/// One notice duty. `secrecy_of` is the instrument's own notice rule when `spec` is an overlay's:
/// a national secrecy duty on the provider then delays the overlay's notice (DSA Art 10(5): "at
/// the later time" the order sets) instead of conflicting with it.
fn notice(spec: &NoticeSpec, order: &Order, secrecy_of: Option<&NoticeSpec>) -> NoticeDuty {
    let must = spec.informs == Notifier::Provider;
    let may = must || spec.provider_may_inform;
    let national_secrecy =
        secrecy_of.is_some_and(|i| !i.provider_may_inform && i.informs != Notifier::Provider);
    if must && national_secrecy {
        let (timing, when) = match order.non_disclosure.as_ref().map(|g| g.ends) {
            Some(NonDisclosureEnd::Until(t)) => (
                NoticeTiming::NotBefore(t),
                format!("at the later time the order sets, {}", utc(t)),
            ),
            _ => (
                NoticeTiming::WhenGagLifted,
                "once the authority lifts the national secrecy it imposes (ask it for the time; it delays the duty, it does not remove it)".to_owned(),
            ),
        };
        return NoticeDuty {
            informs: spec.informs,
            provider_must_inform: true,
            provider_may_inform: true,
            timing,
            text: format!(
                "The provider must inform the user; the order falls under a national secrecy duty, which is the later time for informing: {when}."
            ),
            citation: spec.citation.clone(),
        };
    }
    let timing = match (&order.non_disclosure, may) {
        (_, false) => NoticeTiming::NotApplicable,
        (None, true) => NoticeTiming::WhenGivingEffect,
        (Some(_), true) if spec.non_disclosure == GagEffect::Forbids => NoticeTiming::Never,
        (Some(g), true) => match g.ends {
            NonDisclosureEnd::Until(t) => NoticeTiming::NotBefore(t),
            NonDisclosureEnd::OpenEnded => NoticeTiming::WhenGagLifted,
        },
    };
    let who = match spec.informs {
        Notifier::Authority => "The authority informs the user.",
        Notifier::Provider => "The provider must inform the user.",
        Notifier::Nobody => "No one is required to inform the user.",
    };
    let when = match timing {
        NoticeTiming::NotApplicable => " The provider does not inform the user and keeps the order confidential.".to_owned(),
        NoticeTiming::WhenGivingEffect if must => " The provider informs at the latest when it gives effect to the order.".to_owned(),
        NoticeTiming::WhenGivingEffect => " The provider may inform the user (a policy choice), no earlier than it gives effect to the order.".to_owned(),
        NoticeTiming::NotBefore(t) => format!(" A non-disclosure order delays the provider's notice until {}.", utc(t)),
        NoticeTiming::WhenGagLifted => " An open-ended non-disclosure order delays the provider's notice until it is lifted.".to_owned(),
        NoticeTiming::Never => " The non-disclosure order forbids the provider to inform the user.".to_owned(),
    };
    NoticeDuty {
        informs: spec.informs,
        provider_must_inform: must,
        provider_may_inform: may,
        timing,
        text: format!("{who}{when}"),
        citation: spec.citation.clone(),
    }
}

fn review_flags(
    order: &Order,
    facts: &RegistryFacts,
    decision: &Decision,
    eval: &Evaluation,
) -> Vec<Finding> {
    let mut flags = Vec::new();
    if let Some(b) = decision.binding.as_ref().filter(|b| !b.binding) {
        flags.push(finding(
            ReasonCode::VoluntaryDisclosure,
            b.text.clone(),
            Some(b.citation.clone()),
        ));
    }
    if let Some(registered) = facts.issuer_kind.filter(|k| *k != order.issuer.kind) {
        flags.push(finding(
            ReasonCode::ClaimedIssuerKindMismatch,
            format!(
                "The order claims an issuer of kind {}, but the registry records {registered}; only what a {registered} may obtain was considered. Check for forgery or error.",
                order.issuer.kind
            ),
            None,
        ));
    }
    if let (Some(v), Some(registered)) = (&order.validator, facts.validator_kind)
        && v.kind != registered
    {
        flags.push(finding(
            ReasonCode::ClaimedValidatorKindMismatch,
            format!(
                "The order claims a validator of kind {}, but the registry records {registered}.",
                v.kind
            ),
            None,
        ));
    }
    if order.validator.is_some() && facts.validator_kind.is_none() {
        flags.push(finding(
            ReasonCode::ValidatorNotRegistered,
            "The order names a validator the authority registry does not know: the validation is only a claim; confirm the validator's identity through a known channel.".into(),
            None,
        ));
    }
    // A forged preservation request only makes Writ hold data; a forged production request
    // makes it release them, so only the latter is stopped for judgement.
    if eval.relies_on_emergency && decision.action == Some(Action::Produce) {
        flags.push(finding(
            ReasonCode::EmergencyWithoutValidation,
            "Data are granted only because the order claims an emergency, without prior validation: forged emergency requests take this route. Confirm the emergency and the requester through a known channel before release.".into(),
            None,
        ));
    }
    let forbids = decision
        .user_notice
        .iter()
        .any(|n| !n.provider_may_inform && !n.provider_must_inform);
    // A duty delayed to a later time does not conflict with confidentiality until then.
    if forbids
        && decision
            .user_notice
            .iter()
            .any(|n| n.provider_must_inform && n.timing == NoticeTiming::WhenGivingEffect)
    {
        flags.push(finding(
            ReasonCode::NoticeConflict,
            "One rule keeps the order confidential while another (the DSA Art 10(5) overlay) requires informing the user: Writ will not inform anyone by itself; ask the authority when notice may be given.".into(),
            None,
        ));
    }
    if eval.basis_to_judge {
        flags.push(finding(
            ReasonCode::StatutoryBasisToJudge,
            "Data are granted on a statutory basis of a kind a person must judge: check that the statute named authorises this process before release.".into(),
            None,
        ));
    }
    if eval.pending_check {
        flags.push(finding(
            ReasonCode::PendingValidationCheck,
            "Some data are granted only on a claimed validation the registry does not prove by the validator's own signature: check it against the signed document.".into(),
            None,
        ));
    }
    let ambiguous = order
        .targets
        .iter()
        .any(|t| matches!(t, Target::Ip(ip) if ip.address.is_ipv4() && ip.port.is_none()));
    if ambiguous && decision.categories.iter().any(|c| c.status.grants()) {
        flags.push(finding(
            ReasonCode::AmbiguousIpTarget,
            "An IPv4 target has no source port: behind carrier-grade NAT it can match many users, so any match goes to a person, not to automatic release.".into(),
            None,
        ));
    }
    flags
}

/// Verify notes from the policy files that bear on this decision.
fn caveats(
    set: &PolicySet,
    jurisdiction: &str,
    instrument: &InstrumentSpec,
    overlays: &[&OverlaySpec],
    requested: &[Category],
) -> Vec<String> {
    let mut notes: Vec<String> = Vec::new();
    let mut add = |note: Option<&String>| {
        if let Some(n) = note
            && !notes.contains(n)
        {
            notes.push(n.clone());
        }
    };
    add(set
        .jurisdiction_verify_note(jurisdiction)
        .map(str::to_owned)
        .as_ref());
    add(instrument.verify.as_ref());
    add(instrument.binding.verify.as_ref());
    add(instrument.deadline.as_ref().and_then(|d| d.verify.as_ref()));
    add(instrument
        .release_hold
        .as_ref()
        .and_then(|h| h.verify.as_ref()));
    add(instrument.user_notice.verify.as_ref());
    for rule in instrument
        .rules
        .iter()
        .filter(|r| requested.contains(&r.category))
    {
        add(rule.verify.as_ref());
    }
    for o in overlays {
        add(o.verify.as_ref());
        add(o.user_notice.as_ref().and_then(|n| n.verify.as_ref()));
    }
    notes
}

#[cfg(test)]
mod clock_tests {
    use super::*;

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::hours(h)
    }

    #[test]
    fn clock_pauses_and_suspends() {
        let len = TimeDelta::hours(10);
        assert_eq!(run_clock(t(0), len, &[]), Ok(t(10)));
        let p = |from, to: Option<i64>| Pause {
            from: t(from),
            to: to.map(t),
        };
        assert_eq!(run_clock(t(0), len, &[p(2, Some(5))]), Ok(t(13)));
        // Overlapping pauses count once.
        assert_eq!(
            run_clock(t(0), len, &[p(2, Some(5)), p(4, Some(6))]),
            Ok(t(14))
        );
        // A pause before receipt counts only from receipt; one after the deadline not at all.
        assert_eq!(run_clock(t(0), len, &[p(-5, Some(1))]), Ok(t(11)));
        assert_eq!(run_clock(t(0), len, &[p(10, Some(20))]), Ok(t(10)));
        assert_eq!(
            run_clock(t(0), len, &[p(3, None)]),
            Err((t(3), TimeDelta::hours(7)))
        );
    }
}
