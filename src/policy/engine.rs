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
use super::load::PolicySet;
use super::model::{
    Action, GagEffect, InstrumentSpec, NoticeSpec, Notifier, OverlaySpec, RuleSpec,
};
use super::order::{IssuerKind, NonDisclosureEnd, ORDER_ELEMENTS, Order, RegistryFacts, Target};
use super::{Deployment, Pause};
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
        time_window: order.time_window,
        categories: Vec::new(),
        deadline: None,
        earliest_release: None,
        validation_due: None,
        user_notice: Vec::new(),
        gag: None,
        preservation: None,
        duties: Vec::new(),
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
    if let Some(missing) = missing_elements(order, instrument, &overlays) {
        refusals.push(missing);
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
    if let Some(p) = &instrument.preservation {
        let ends = received_at + p.period.to_chrono();
        if instrument.action == Action::Preserve && ends <= now {
            refusals.push(finding(
                ReasonCode::PreservationPeriodEnded,
                format!(
                    "The preservation period ({}) ended at {}; an extension needs a new request, decided afresh.",
                    p.period,
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
            .map(|c| decide_category(*c, order, facts, instrument, &mut eval))
            .collect();
        if let Some(v) = &instrument.emergency_validation
            && order.is_emergency()
            && eval.relies_on_emergency
        {
            // From the earlier of the claimed issue and the receipt: a future-dated order cannot
            // stretch its own validation deadline.
            let due = order.dates.issued_at.min(received_at) + v.window.to_chrono();
            decision.validation_due = Some(ValidationDue {
                due,
                text: format!(
                    "Issued in an emergency without prior validation: validation is due within {} of issue, by {}.{}",
                    v.window,
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
    decision.user_notice = std::iter::once(&instrument.user_notice)
        .chain(overlays.iter().filter_map(|o| o.user_notice.as_ref()))
        .map(|spec| notice(spec, order))
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
        .map(|d| Duty {
            text: d.text.clone(),
            citation: d.citation.clone(),
        })
        .collect();

    if !refusals.is_empty() {
        let first = refusals[0].clone();
        decision = refuse_all(decision, &requested, first);
        decision.refusals = refusals;
        decision.validation_due = None;
        return decision;
    }

    if instrument.action == Action::Preserve {
        if let Some(p) = &instrument.preservation {
            let expires_at = received_at + p.period.to_chrono();
            decision.preservation = Some(Preservation {
                expires_at,
                extension: p.extension.map(|e| e.to_string()),
                max_extensions: p.max_extensions,
                text: format!(
                    "Preserve for {} from receipt, until {}{}.{}",
                    p.period,
                    utc(expires_at),
                    p.extension
                        .map(|e| format!(
                            "; extendable by {e} (at most {} time(s)) on request",
                            p.max_extensions
                        ))
                        .unwrap_or_default(),
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

/// What the per-field evaluation learnt about the order as a whole.
#[derive(Default)]
struct Evaluation {
    /// Some field is granted only through the emergency-without-validation path.
    relies_on_emergency: bool,
    /// Some field is granted only if a person confirms the claimed validation.
    pending_check: bool,
}

/// How an issuer came to be entitled under a rule, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Grant {
    Direct,
    Validated,
    EmergencyWithoutValidation,
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

fn missing_elements(
    order: &Order,
    instrument: &InstrumentSpec,
    overlays: &[&OverlaySpec],
) -> Option<Finding> {
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
    Some(finding(
        ReasonCode::MissingRequiredElements,
        format!("The order lacks required elements: {}.", named.join("; ")),
        Some(citations.join("; ")),
    ))
}

fn decide_category(
    category: Category,
    order: &Order,
    facts: &RegistryFacts,
    instrument: &InstrumentSpec,
    eval: &mut Evaluation,
) -> CategoryDecision {
    let rules: Vec<&RuleSpec> = instrument
        .rules
        .iter()
        .filter(|r| r.category == category)
        .collect();
    if category == Category::Content {
        // Entitlement is not availability: whatever the law allows, Writ holds no content.
        let reachable = rules.iter().any(|r| check_rule(r, order, facts).is_ok());
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
        .map(|field| decide_field(category, field, &rules, order, facts, instrument, eval))
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

fn decide_field(
    category: Category,
    field: FieldId,
    rules: &[&RuleSpec],
    order: &Order,
    facts: &RegistryFacts,
    instrument: &InstrumentSpec,
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
        };
    }

    let mut best: Option<(Grant, &RuleSpec)> = None;
    let mut first_denial: Option<(ReasonCode, String, &RuleSpec)> = None;
    for rule in reaching {
        match check_rule(rule, order, facts) {
            Ok(grant) => {
                if best.is_none_or(|(g, _)| grant < g) {
                    best = Some((grant, rule));
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
        (Some((grant, rule)), _) => {
            let (mut status, reason, text) = match grant {
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
            FieldDecision {
                field,
                status,
                reason,
                text,
                citation: Some(rule.citation.clone()),
            }
        }
        (None, Some((code, text, rule))) => FieldDecision {
            field,
            status: FieldStatus::Deny,
            reason: code,
            text,
            citation: Some(rule.citation.clone()),
        },
        // `reaching` is non-empty, so one of the two is set; deny if that ever changes.
        (None, None) => FieldDecision {
            field,
            status: FieldStatus::Deny,
            reason: ReasonCode::FieldNotReached,
            text: "Not reached.".into(),
            citation: None,
        },
    }
}

/// Checks one rule's entitlement and conditions; the first failure is the reason.
fn check_rule(
    rule: &RuleSpec,
    order: &Order,
    facts: &RegistryFacts,
) -> Result<Grant, (ReasonCode, String)> {
    let grant = entitlement(rule, order, facts)?;
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
    if rule.requires_emergency && !order.is_emergency() {
        return Err((
            ReasonCode::EmergencyRequired,
            "Available only for emergency orders.".into(),
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
    if rule.requires_sole_aim_identification && !sole_aim_identification(order) {
        return Err((
            ReasonCode::SoleAimIdentificationRequired,
            "Available only when the order's sole aim is to identify the author (it requests nothing beyond subscriber and identification data).".into(),
        ));
    }
    Ok(grant)
}

/// An order whose sole aim is identification asks for nothing beyond who someone is.
fn sole_aim_identification(order: &Order) -> bool {
    order
        .categories
        .iter()
        .all(|c| matches!(c, Category::Subscriber | Category::Identification))
}

fn entitlement(
    rule: &RuleSpec,
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
    if order.is_emergency() && rule.emergency_unvalidated_issuers.contains(&issuer) {
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
                    kinds(&rule.validators)
                ),
            ),
            Some(_) => (
                ReasonCode::ValidatorNotEntitled,
                format!(
                    "The validator is not of a kind that may validate this (allowed: {}).",
                    kinds(&rule.validators)
                ),
            ),
        });
    }
    Err((
        ReasonCode::IssuerKindNotEntitled,
        format!(
            "The registry records the issuer as {issuer}; this is open to: {}{}.",
            kinds(&rule.issuers),
            if rule.validated_issuers.is_empty() {
                String::new()
            } else {
                format!("; with validation: {}", kinds(&rule.validated_issuers))
            }
        ),
    ))
}

/// Whether an authority registered in `country` may issue under `jurisdiction`'s law: its own
/// country's, or for EU instruments as a member state the Regulation binds.
fn may_issue_under(jurisdiction: &str, instrument: &InstrumentSpec, country: &str) -> bool {
    let country = country.to_ascii_uppercase();
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
    let binds = places.iter().any(|p| {
        spec.binds_provider_in.iter().any(|b| b == p)
            && !(spec.except_issuing_state && *p == issuing)
    });
    let text = if binds {
        format!(
            "Binding on the provider (established in {}{}).",
            deployment.establishment,
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
        format!(
            "Not binding on a provider established in {}: any disclosure is voluntary and needs human judgement (for a provider in the EU, GDPR Art 48 also applies to third-country orders).",
            deployment.establishment
        )
    };
    Binding {
        binding: binds,
        text,
        citation: spec.citation.clone(),
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

fn notice(spec: &NoticeSpec, order: &Order) -> NoticeDuty {
    let must = spec.informs == Notifier::Provider;
    let may = must || spec.provider_may_inform;
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
    if forbids && decision.user_notice.iter().any(|n| n.provider_must_inform) {
        flags.push(finding(
            ReasonCode::NoticeConflict,
            "One rule keeps the order confidential while another (the DSA Art 10(5) overlay) requires informing the user: Writ will not inform anyone by itself; ask the authority when notice may be given.".into(),
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
