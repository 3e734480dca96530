//! A provider lawyer's boundary scenarios, one table per jurisdiction: every row names the
//! provision it probes and says what the law allows for that issuer, category, target kind,
//! purpose, threshold, procedure and establishment. A row that fails prints its label.

use super::*;

/// What a row expects of the decision.
enum Want {
    /// The category's overall status (a refused order counts as denied).
    Cat(Category, FieldStatus),
    /// One field's status.
    Field(Category, FieldId, FieldStatus),
    /// Nothing at all is released.
    NothingReleased,
    /// The decision's outcome.
    Outcome(Outcome),
}

struct Row {
    label: &'static str,
    order: Order,
    facts: RegistryFacts,
    deployment: Deployment,
    want: Vec<Want>,
}

fn row(label: &'static str, order: Order, facts: RegistryFacts, want: Vec<Want>) -> Row {
    let deployment = deployment_for(&order.instrument);
    Row {
        label,
        order,
        facts,
        deployment,
        want,
    }
}

fn signed(issuer: IssuerKind, validator: IssuerKind) -> RegistryFacts {
    RegistryFacts {
        issuer_kind: Some(issuer),
        validator_kind: Some(validator),
        issuer_country: None,
        validation_signed_by_validator: true,
        earlier_preservations: 0,
    }
}

fn ip_at_a_time() -> Target {
    Target::Ip(IpTarget {
        address: "203.0.113.7".parse().unwrap(),
        port: Some(51234),
        timestamp: "2026-08-30T10:14:03+02:00".parse().unwrap(),
        time_zone: Some("Europe/Paris".into()),
    })
}

fn emergency(mut o: Order) -> Order {
    o.emergency = Some(Emergency {
        justification: "imminent threat to a person's life".into(),
    });
    o
}

fn unreasoned_emergency(mut o: Order) -> Order {
    o.emergency = Some(Emergency {
        justification: " ".into(),
    });
    o
}

fn validated(mut o: Order, kind: IssuerKind) -> Order {
    o.validator = Some(authority(kind, &o.issuer.country.clone()));
    o
}

fn months(mut o: Order, m: Option<u32>) -> Order {
    if let Some(off) = o.offence.as_mut() {
        off.max_custodial_months = m;
    }
    o
}

fn targets(mut o: Order, t: Vec<Target>) -> Order {
    o.targets = t;
    o
}

fn purposed(mut o: Order, kind: PurposeKind) -> Order {
    o.purpose = Some(Purpose {
        kind,
        statement: Some("stated in writing".into()),
    });
    o
}

fn framework(mut o: Order, f: Option<ProceduralFramework>) -> Order {
    o.procedural_framework = f;
    o
}

fn established(mut r: Row, country: &str) -> Row {
    r.deployment.establishment = country.into();
    r
}

fn check(rows: Vec<Row>) -> usize {
    let mut failures = Vec::new();
    for r in &rows {
        let d = decide(
            &r.order,
            &r.facts,
            t0(),
            &[],
            &set(),
            &r.deployment,
            t0() + hours(1),
        );
        for w in &r.want {
            let problem = match w {
                Want::Cat(c, s) => {
                    let got = d.category(*c).map_or(FieldStatus::Deny, |x| x.status);
                    (got != *s).then(|| format!("{c}: want {s:?}, got {got:?}"))
                }
                Want::Field(c, f, s) => {
                    let got = d.field_status(*c, *f).unwrap_or(FieldStatus::Deny);
                    (got != *s).then(|| format!("{c}.{f:?}: want {s:?}, got {got:?}"))
                }
                Want::NothingReleased => (!d.released_fields().is_empty())
                    .then(|| format!("released {:?}", d.released_fields())),
                Want::Outcome(o) => {
                    (d.outcome != *o).then(|| format!("want {o:?}, got {:?}", d.outcome))
                }
            };
            if let Some(p) = problem {
                failures.push(format!("{}: {p}\n{}", r.label, d.explain()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    rows.len()
}

use Want::{Cat, Field, NothingReleased};

fn outcome(o: Outcome) -> Want {
    Want::Outcome(o)
}

#[test]
fn eu_e_evidence_boundaries() {
    let epoc = |k, c: &[Category]| order("eu.epoc", k, c);
    let mut dk = epoc(Judge, &[Subscriber]);
    dk.issuer.country = "DK".into();
    let mut exec_short = purposed(
        epoc(Judge, &[Subscriber, Ident]),
        PurposeKind::ExecutingSentence,
    );
    exec_short.offence.as_mut().unwrap().sentence_imposed_months = Some(3);
    let mut exec_long = exec_short.clone();
    exec_long.offence.as_mut().unwrap().sentence_imposed_months = Some(4);
    let mut listed_offline = months(epoc(Judge, &[IpHistory]), Some(12));
    listed_offline.offence.as_mut().unwrap().codes = vec!["eu.dir_2011_93".into()];
    let mut listed_online = listed_offline.clone();
    listed_online.offence.as_mut().unwrap().over_network = Some(true);
    let mut terrorism = months(epoc(Judge, &[IpHistory]), Some(12));
    terrorism.offence.as_mut().unwrap().codes = vec!["eu.dir_2017_541".into()];
    let mut no_offence = epoc(Judge, &[Subscriber]);
    no_offence.offence.as_mut().unwrap().description = String::new();
    let mut pr_short = purposed(
        order("eu.epoc_pr", Prosecutor, &[Subscriber, IpHistory]),
        PurposeKind::ExecutingSentence,
    );
    pr_short.offence.as_mut().unwrap().sentence_imposed_months = Some(3);
    let mut pr_long = pr_short.clone();
    pr_long.offence.as_mut().unwrap().sentence_imposed_months = Some(4);
    let n = check(vec![
        row(
            "Art 4(1)(a) judge: subscriber",
            epoc(Judge, &[Subscriber]),
            facts(Judge),
            vec![
                Cat(Subscriber, Permit),
                outcome(Outcome::AcceptableForReview),
            ],
        ),
        row(
            "Art 4(1)(a) prosecutor: subscriber and identification",
            targets(epoc(Prosecutor, &[Subscriber, Ident]), vec![ip_at_a_time()]),
            facts(Prosecutor),
            vec![Cat(Subscriber, Permit), Cat(Ident, Permit)],
        ),
        row(
            "Art 4(2) prosecutor may not issue for traffic data",
            epoc(Prosecutor, &[IpHistory]),
            facts(Prosecutor),
            vec![Cat(IpHistory, Deny), NothingReleased],
        ),
        row(
            "Art 4(2) a prosecutor may not validate traffic data",
            validated(epoc(Police, &[Subscriber, IpHistory]), Prosecutor),
            signed(Police, Prosecutor),
            vec![Cat(Subscriber, Permit), Cat(IpHistory, Deny)],
        ),
        row(
            "Art 4(2) police validated by a judge: traffic data",
            validated(epoc(Police, &[IpHistory]), Judge),
            signed(Police, Judge),
            vec![Cat(IpHistory, Permit)],
        ),
        row(
            "Art 4(2) a claimed judge validator the registry knows as a prosecutor",
            validated(epoc(Police, &[IpHistory]), Judge),
            signed(Police, Prosecutor),
            vec![Cat(IpHistory, Deny), NothingReleased],
        ),
        row(
            "Art 4(1)(b) police without validation",
            epoc(Police, &[Subscriber]),
            facts(Police),
            vec![NothingReleased],
        ),
        row(
            "Art 4(1)(b) claimed validation without the validator's signature",
            validated(epoc(Police, &[Subscriber]), Judge),
            facts(Police),
            vec![Cat(Subscriber, Pending)],
        ),
        row(
            "Art 5(4)(a) 35 months is under the threshold",
            months(epoc(Judge, &[IpHistory]), Some(35)),
            facts(Judge),
            vec![Cat(IpHistory, Deny)],
        ),
        row(
            "Art 5(4)(a) 36 months meets the threshold",
            months(epoc(Judge, &[IpHistory]), Some(36)),
            facts(Judge),
            vec![Cat(IpHistory, Permit)],
        ),
        row(
            "Art 5(4)(a) no maximum stated",
            months(epoc(Judge, &[IpHistory]), None),
            facts(Judge),
            vec![Cat(IpHistory, Deny)],
        ),
        row(
            "Art 5(3) subscriber data for any offence",
            months(epoc(Judge, &[Subscriber]), Some(1)),
            facts(Judge),
            vec![Cat(Subscriber, Permit)],
        ),
        row(
            "Art 5(4)(b) listed offence not committed by an information system",
            listed_offline,
            facts(Judge),
            vec![Cat(IpHistory, Deny)],
        ),
        row(
            "Art 5(4)(b) listed offence committed by an information system",
            listed_online,
            facts(Judge),
            vec![Cat(IpHistory, Permit)],
        ),
        row(
            "Art 5(4)(c) terrorism offence",
            terrorism,
            facts(Judge),
            vec![Cat(IpHistory, Permit)],
        ),
        row(
            "Art 5(3) executing a sentence under 4 months",
            exec_short,
            facts(Judge),
            vec![Cat(Subscriber, Deny), Cat(Ident, Deny), NothingReleased],
        ),
        row(
            "Art 5(3) executing a sentence of 4 months",
            exec_long,
            facts(Judge),
            vec![Cat(Subscriber, Permit), Cat(Ident, Permit)],
        ),
        row(
            "Art 4(5) emergency police: subscriber without validation",
            emergency(epoc(Police, &[Subscriber])),
            facts(Police),
            vec![Cat(Subscriber, Permit)],
        ),
        row(
            "Art 4(5) emergency police: identification by IP",
            emergency(targets(epoc(Police, &[Ident]), vec![ip_at_a_time()])),
            facts(Police),
            vec![Cat(Ident, Permit)],
        ),
        row(
            "Art 4(5) emergency never opens traffic data without validation",
            emergency(epoc(Police, &[IpHistory])),
            facts(Police),
            vec![Cat(IpHistory, Deny), NothingReleased],
        ),
        row(
            "Registry facts beat the order's claim of a judge",
            epoc(Judge, &[IpHistory]),
            facts(Police),
            vec![Cat(IpHistory, Deny), NothingReleased],
        ),
        row(
            "Art 1(1) Denmark is not bound and cannot issue",
            dk,
            facts(Judge),
            vec![outcome(Outcome::Refused), NothingReleased],
        ),
        established(
            row(
                "Art 1(1) provider established only in the issuing state",
                epoc(Judge, &[Subscriber]),
                facts(Judge),
                vec![outcome(Outcome::NeedsHumanJudgement)],
            ),
            "FR",
        ),
        row(
            "Art 10(6) an EPOC without offence gets a clarification request",
            no_offence,
            facts(Judge),
            vec![outcome(Outcome::ClarificationNeeded), NothingReleased],
        ),
        row(
            "Art 4(2) content is not held",
            epoc(Judge, &[Content]),
            facts(Judge),
            vec![Cat(Content, NotHeld), NothingReleased],
        ),
        row(
            "Art 6 EPOC-PR preserves every category and releases nothing",
            order("eu.epoc_pr", Prosecutor, &[Subscriber, Ident, IpHistory]),
            facts(Prosecutor),
            vec![
                Cat(Subscriber, Preserve),
                Cat(IpHistory, Preserve),
                NothingReleased,
            ],
        ),
        row(
            "Art 6(2) EPOC-PR executing a sentence under 4 months",
            pr_short,
            facts(Prosecutor),
            vec![Cat(Subscriber, Deny), Cat(IpHistory, Deny), NothingReleased],
        ),
        row(
            "Art 6(2) EPOC-PR executing a sentence of 4 months",
            pr_long,
            facts(Prosecutor),
            vec![
                Cat(Subscriber, Preserve),
                Cat(IpHistory, Preserve),
                NothingReleased,
            ],
        ),
        row(
            "Art 4(3) EPOC-PR police without validation",
            order("eu.epoc_pr", Police, &[Subscriber]),
            facts(Police),
            vec![Cat(Subscriber, Deny), NothingReleased],
        ),
        row(
            "Art 4(5) emergency EPOC-PR police",
            emergency(order("eu.epoc_pr", Police, &[IpHistory])),
            facts(Police),
            vec![Cat(IpHistory, Preserve), NothingReleased],
        ),
    ]);
    assert_eq!(n, 30);
}

#[test]
fn fr_code_de_procedure_penale_boundaries() {
    use ProceduralFramework::{FlagrantOffence, JudicialInvestigation, PreliminaryInquiry};
    let req = |k, c: &[Category]| order("fr.requisition", k, c);
    let mut sole_aim = months(
        targets(req(Police, &[Subscriber, Ident]), vec![ip_at_a_time()]),
        Some(12),
    );
    sole_aim.offence.as_mut().unwrap().over_network = Some(true);
    sole_aim.sole_aim_identification = Some(true);
    let mut sole_aim_short = sole_aim.clone();
    sole_aim_short
        .offence
        .as_mut()
        .unwrap()
        .max_custodial_months = Some(11);
    let mut sole_aim_unstated = sole_aim.clone();
    sole_aim_unstated.sole_aim_identification = None;
    let mut sole_aim_offline = sole_aim.clone();
    sole_aim_offline.offence.as_mut().unwrap().over_network = Some(false);
    let mut missing_person = purposed(
        req(Police, &[IpHistory, Ident]),
        PurposeKind::MissingOrVulnerablePerson,
    );
    missing_person.offence = None;
    let pres = |k| order("fr.preservation", k, &[Subscriber, IpHistory]);
    let n = check(vec![
        row(
            "art 60-1 flagrance: officer, civil identity by account",
            months(req(Police, &[Subscriber]), Some(1)),
            facts(Police),
            vec![
                Field(Subscriber, FieldId::PhoneNumber, Permit),
                Field(Subscriber, FieldId::RegistrationIp, Deny),
            ],
        ),
        row(
            "art 60-1 flagrance: civil identity by phone number",
            months(
                targets(
                    req(Police, &[Subscriber]),
                    vec![Target::PhoneNumber("+33612345678".into())],
                ),
                Some(1),
            ),
            facts(Police),
            vec![Field(Subscriber, FieldId::Username, Permit)],
        ),
        row(
            "art 77-1-1 preliminary inquiry: officer alone",
            framework(req(Police, &[Subscriber]), Some(PreliminaryInquiry)),
            facts(Police),
            vec![NothingReleased],
        ),
        row(
            "art 77-1-1 preliminary inquiry: officer on the prosecutor's signed authorisation",
            validated(
                framework(req(Police, &[Subscriber]), Some(PreliminaryInquiry)),
                Prosecutor,
            ),
            signed(Police, Prosecutor),
            vec![Cat(Subscriber, Permit)],
        ),
        row(
            "art 77-1-1 preliminary inquiry: the prosecutor",
            framework(req(Prosecutor, &[Subscriber]), Some(PreliminaryInquiry)),
            facts(Prosecutor),
            vec![Cat(Subscriber, Permit)],
        ),
        row(
            "art 99-3 judicial investigation: the prosecutor does not requisition",
            framework(req(Prosecutor, &[Subscriber]), Some(JudicialInvestigation)),
            facts(Prosecutor),
            vec![NothingReleased],
        ),
        row(
            "art 99-3 judicial investigation: officer on commission",
            validated(
                framework(req(Police, &[Subscriber]), Some(JudicialInvestigation)),
                InvestigatingJudge,
            ),
            signed(Police, InvestigatingJudge),
            vec![Cat(Subscriber, Permit)],
        ),
        row(
            "art 99-3 a claimed investigating judge registered as police",
            framework(
                req(InvestigatingJudge, &[Subscriber]),
                Some(JudicialInvestigation),
            ),
            facts(Police),
            vec![NothingReleased],
        ),
        row(
            "no procedural framework stated",
            framework(req(Police, &[Subscriber]), None),
            facts(Police),
            vec![outcome(Outcome::Refused), NothingReleased],
        ),
        row(
            "art 60-1-2 1° traffic data at 35 months",
            months(req(Police, &[IpHistory]), Some(35)),
            facts(Police),
            vec![Cat(IpHistory, Deny)],
        ),
        row(
            "art 60-1-2 1° traffic data at 36 months",
            months(req(Police, &[IpHistory]), Some(36)),
            facts(Police),
            vec![Cat(IpHistory, Permit)],
        ),
        row(
            "art 60-1-2 1° registration IP at 35 months",
            months(req(Police, &[Subscriber]), Some(35)),
            facts(Police),
            vec![Field(Subscriber, FieldId::RegistrationIp, Deny)],
        ),
        row(
            "art 60-1-2 1° identity behind an IP at 35 months",
            months(
                targets(req(Police, &[Subscriber]), vec![ip_at_a_time()]),
                Some(35),
            ),
            facts(Police),
            vec![NothingReleased],
        ),
        row(
            "art 60-1-2 2° one year, network, sole aim stated",
            sole_aim.clone(),
            facts(Police),
            vec![Cat(Subscriber, Permit), Cat(Ident, Permit)],
        ),
        row(
            "art 60-1-2 2° an order that also asks for the IP log has no sole aim",
            {
                let mut x = sole_aim.clone();
                x.categories.push(IpHistory);
                x
            },
            facts(Police),
            vec![NothingReleased],
        ),
        row(
            "art 60-1-2 2° eleven months",
            sole_aim_short,
            facts(Police),
            vec![NothingReleased],
        ),
        row(
            "art 60-1-2 2° sole aim not stated",
            sole_aim_unstated,
            facts(Police),
            vec![NothingReleased],
        ),
        row(
            "art 60-1-2 2° offence not over a network",
            sole_aim_offline,
            facts(Police),
            vec![NothingReleased],
        ),
        row(
            "art 60-1-2 4° missing person, no offence",
            missing_person,
            facts(Police),
            vec![Cat(IpHistory, Permit), Cat(Ident, Permit)],
        ),
        established(
            row(
                "art 60-1 requisition to a provider established elsewhere",
                req(Police, &[Subscriber]),
                facts(Police),
                vec![outcome(Outcome::NeedsHumanJudgement)],
            ),
            "IE",
        ),
        row(
            "art 60-2 al. 2 preservation without the JLD's authorisation",
            framework(pres(Police), Some(FlagrantOffence)),
            facts(Police),
            vec![NothingReleased, Cat(Subscriber, Deny)],
        ),
        row(
            "art 60-2 al. 2 preservation on the JLD's authorisation never releases",
            validated(framework(pres(Police), Some(FlagrantOffence)), Judge),
            signed(Police, Judge),
            vec![
                Cat(Subscriber, Preserve),
                Cat(IpHistory, Preserve),
                NothingReleased,
            ],
        ),
    ]);
    assert_eq!(n, 22);
}

#[test]
fn de_stpo_boundaries() {
    let o = |i, k, c: &[Category]| order(i, k, c);
    let mut no_tz = targets(
        o("de.stpo_100j", Police, &[Subscriber]),
        vec![ip_at_a_time()],
    );
    if let Target::Ip(ip) = &mut no_tz.targets[0] {
        ip.time_zone = None;
    }
    let mut tkg_100k = row(
        "§100k on a provider classified under the TKG",
        o("de.stpo_100k", Court, &[IpHistory]),
        facts(Court),
        vec![outcome(Outcome::Refused), NothingReleased],
    );
    tkg_100k.deployment.service_class = Some(ServiceClass::InterpersonalCommunications);
    let n = check(vec![
        row(
            "§100j(1) police: Bestandsdaten",
            o("de.stpo_100j", Police, &[Subscriber]),
            facts(Police),
            vec![
                Field(Subscriber, FieldId::PhoneNumber, Permit),
                Field(Subscriber, FieldId::AccountStatus, Permit),
                Field(Subscriber, FieldId::RegistrationIp, Deny),
            ],
        ),
        row(
            "§100j(2) Bestandsdaten from a time-stamped dynamic IP",
            targets(
                o("de.stpo_100j", Police, &[Subscriber]),
                vec![ip_at_a_time()],
            ),
            facts(Police),
            vec![Field(Subscriber, FieldId::Username, Permit)],
        ),
        row(
            "§100j(2) an IP target needs its time zone",
            no_tz,
            facts(Police),
            vec![outcome(Outcome::Refused), NothingReleased],
        ),
        row(
            "§100j an administrative authority is not a prosecuting authority",
            o("de.stpo_100j", AdministrativeAuthority, &[Subscriber]),
            facts(AdministrativeAuthority),
            vec![NothingReleased],
        ),
        row(
            "§100j never reaches traffic data",
            o("de.stpo_100j", Court, &[IpHistory, Ident]),
            facts(Court),
            vec![NothingReleased],
        ),
        row(
            "§100g court order: traffic data and identification",
            targets(
                o("de.stpo_100g", Court, &[IpHistory, Ident]),
                vec![ip_at_a_time()],
            ),
            facts(Court),
            vec![Cat(IpHistory, Permit), Cat(Ident, Permit)],
        ),
        row(
            "§100g the prosecutor outside exigent circumstances",
            o("de.stpo_100g", Prosecutor, &[IpHistory]),
            facts(Prosecutor),
            vec![NothingReleased],
        ),
        row(
            "§101a(1) with §100e(1) the prosecutor in exigent circumstances",
            emergency(o("de.stpo_100g", Prosecutor, &[IpHistory])),
            facts(Prosecutor),
            vec![Cat(IpHistory, Permit)],
        ),
        row(
            "§100e(1) Gefahr im Verzug must be reasoned",
            unreasoned_emergency(o("de.stpo_100g", Prosecutor, &[IpHistory])),
            facts(Prosecutor),
            vec![NothingReleased],
        ),
        row(
            "§101a(1) with §100e(1) police never order in exigent circumstances",
            emergency(o("de.stpo_100g", Police, &[IpHistory, Ident])),
            facts(Police),
            vec![NothingReleased],
        ),
        tkg_100k,
        established(
            row(
                "§100j to a provider established outside Germany",
                o("de.stpo_100j", Police, &[Subscriber]),
                facts(Police),
                vec![outcome(Outcome::NeedsHumanJudgement)],
            ),
            "IE",
        ),
    ]);
    assert_eq!(n, 12);
}

#[test]
fn uk_ipa_part3_boundaries() {
    let ipa = |c: &[Category]| validated(order("uk.ipa_part3", Police, c), Ocda);
    let ocda = signed(Police, Ocda);
    let mut communication = months(ipa(&[IpHistory]), Some(1));
    communication.offence.as_mut().unwrap().codes = vec!["uk.ipa_s86_2a_communication".into()];
    let mut life = purposed(
        targets(ipa(&[Subscriber, IpHistory]), vec![ip_at_a_time()]),
        PurposeKind::PreventingDeathOrInjury,
    );
    life.offence = None;
    let mut no_purpose = ipa(&[Subscriber]);
    no_purpose.purpose = None;
    let n = check(vec![
        row(
            "s.60A entity data by account for any crime",
            months(ipa(&[Subscriber]), Some(1)),
            ocda.clone(),
            vec![
                Field(Subscriber, FieldId::PhoneNumber, Permit),
                Field(Subscriber, FieldId::RegistrationIp, Deny),
                Field(Subscriber, FieldId::AccountCreatedAt, Deny),
            ],
        ),
        row(
            "s.86(2A) events data at 11 months",
            months(ipa(&[IpHistory]), Some(11)),
            ocda.clone(),
            vec![Cat(IpHistory, Deny)],
        ),
        row(
            "s.86(2A) events data at 12 months",
            months(ipa(&[IpHistory]), Some(12)),
            ocda.clone(),
            vec![Cat(IpHistory, Permit)],
        ),
        row(
            "s.86(2A)(b) communication integral to the offence",
            communication,
            ocda.clone(),
            vec![Cat(IpHistory, Permit)],
        ),
        row(
            "s.261(4) identity behind an IP at 11 months",
            months(
                targets(ipa(&[Subscriber, Ident]), vec![ip_at_a_time()]),
                Some(11),
            ),
            ocda.clone(),
            vec![NothingReleased],
        ),
        row(
            "s.60A(7)(e) preventing death: IP resolution without an offence",
            life,
            ocda.clone(),
            vec![Cat(Subscriber, Permit), Cat(IpHistory, Permit)],
        ),
        row(
            "s.60A(7) an unlisted purpose",
            purposed(ipa(&[Subscriber]), PurposeKind::Other),
            ocda.clone(),
            vec![NothingReleased],
        ),
        row(
            "s.60A(7) no purpose stated",
            no_purpose,
            ocda.clone(),
            vec![outcome(Outcome::Refused), NothingReleased],
        ),
        row(
            "s.60A a force's own request without authorisation",
            order("uk.ipa_part3", Police, &[Subscriber]),
            facts(Police),
            vec![NothingReleased],
        ),
        row(
            "s.60A claimed OCDA authorisation not signed by OCDA",
            ipa(&[Subscriber]),
            facts(Police),
            vec![Cat(Subscriber, Pending)],
        ),
        row(
            "s.61 a DSO does not authorise crime purposes unless urgent",
            validated(
                order("uk.ipa_part3", Police, &[Subscriber]),
                DesignatedSeniorOfficer,
            ),
            signed(Police, DesignatedSeniorOfficer),
            vec![NothingReleased],
        ),
        row(
            "s.61A urgent DSO authorisation for crime",
            emergency(validated(
                order("uk.ipa_part3", Police, &[Subscriber]),
                DesignatedSeniorOfficer,
            )),
            signed(Police, DesignatedSeniorOfficer),
            vec![Cat(Subscriber, Permit)],
        ),
        row(
            "s.61A urgency must be reasoned",
            unreasoned_emergency(validated(
                order("uk.ipa_part3", Police, &[Subscriber]),
                DesignatedSeniorOfficer,
            )),
            signed(Police, DesignatedSeniorOfficer),
            vec![NothingReleased],
        ),
        row(
            "s.82 the provider may not tell the user",
            ipa(&[Subscriber]),
            ocda.clone(),
            vec![outcome(Outcome::AcceptableForReview)],
        ),
        established(
            row(
                "s.85 a provider outside the UK",
                ipa(&[Subscriber]),
                ocda.clone(),
                vec![outcome(Outcome::NeedsHumanJudgement)],
            ),
            "IE",
        ),
    ]);
    assert_eq!(n, 15);
}

#[test]
fn us_stored_communications_act_boundaries() {
    let o = |i, k, c: &[Category]| order(i, k, c);
    let mut no_basis = o("us.subpoena", Police, &[Subscriber]);
    no_basis.statutory_basis = None;
    let mut grand_jury = o("us.subpoena", Prosecutor, &[Subscriber, IpHistory]);
    grand_jury.statutory_basis = Some(StatutoryBasis {
        kind: BasisKind::GrandJurySubpoena,
        statute: "Fed. R. Crim. P. 17".into(),
    });
    let nsl = |c: &[Category]| purposed(o("us.nsl", Police, c), PurposeKind::NationalSecurity);
    let mut renewed = o("us.preservation", Police, &[Subscriber]);
    renewed.targets = vec![Target::UserId("u-1".into())];
    let twice = RegistryFacts {
        earlier_preservations: 2,
        ..facts(Police)
    };
    let mut cloud_fr = o("us.cloud_act_agreement", Judge, &[Subscriber]);
    cloud_fr.issuer.country = "FR".into();
    let n = check(vec![
        row(
            "2703(c)(2) administrative subpoena: BSI and session records",
            targets(
                o("us.subpoena", Police, &[Subscriber, Ident, IpHistory]),
                vec![ip_at_a_time()],
            ),
            facts(Police),
            vec![
                Cat(Subscriber, Permit),
                Cat(Ident, Permit),
                Cat(IpHistory, Permit),
            ],
        ),
        row(
            "2703(c)(2) grand jury subpoena from the prosecutor",
            grand_jury,
            facts(Prosecutor),
            vec![Cat(Subscriber, Permit), Cat(IpHistory, Permit)],
        ),
        row(
            "2703(c)(2) no statutory basis stated",
            no_basis,
            facts(Police),
            vec![outcome(Outcome::Refused), NothingReleased],
        ),
        row(
            "2703(c)(2) a subpoena never reaches contents",
            o("us.subpoena", Police, &[Content]),
            facts(Police),
            vec![NothingReleased],
        ),
        row(
            "2703(d) the police cannot issue a court order",
            o("us.2703d", Police, &[Subscriber, IpHistory]),
            facts(Police),
            vec![NothingReleased],
        ),
        row(
            "2703(d) court order: non-content records",
            o("us.2703d", Court, &[Subscriber, IpHistory]),
            facts(Court),
            vec![Cat(Subscriber, Permit), Cat(IpHistory, Permit)],
        ),
        row(
            "2703(a) warrant: contents are not held",
            o("us.warrant", Judge, &[Content, Subscriber]),
            facts(Judge),
            vec![Cat(Content, NotHeld), Cat(Subscriber, Permit)],
        ),
        row(
            "2703(a) a warrant signed by police is no warrant",
            o("us.warrant", Judge, &[Subscriber]),
            facts(Police),
            vec![NothingReleased],
        ),
        row(
            "2709 NSL: name and length of service only",
            nsl(&[Subscriber]),
            facts(Police),
            vec![
                Field(Subscriber, FieldId::Username, Permit),
                Field(Subscriber, FieldId::PhoneNumber, Deny),
                Field(Subscriber, FieldId::RegistrationIp, Deny),
            ],
        ),
        row(
            "2709 NSL: no IP data",
            nsl(&[IpHistory, Ident]),
            facts(Police),
            vec![NothingReleased],
        ),
        row(
            "2709 NSL: no identification by IP",
            targets(nsl(&[Subscriber]), vec![ip_at_a_time()]),
            facts(Police),
            vec![NothingReleased],
        ),
        row(
            "2709 NSL: crime purposes are not 2709 purposes",
            purposed(o("us.nsl", Police, &[Subscriber]), PurposeKind::Crime),
            facts(Police),
            vec![NothingReleased],
        ),
        row(
            "2702(c)(4) without an emergency",
            o("us.emergency", Police, &[Subscriber]),
            facts(Police),
            vec![NothingReleased],
        ),
        row(
            "2702(c)(4) emergency: voluntary, a person decides",
            emergency(o("us.emergency", Police, &[Subscriber])),
            facts(Police),
            vec![outcome(Outcome::NeedsHumanJudgement)],
        ),
        row(
            "2703(f) preservation never releases",
            o("us.preservation", Police, &[Subscriber, IpHistory, Content]),
            facts(Police),
            vec![Cat(Subscriber, Preserve), NothingReleased],
        ),
        row(
            "2703(f)(2) a third request for the same target",
            renewed,
            twice,
            vec![outcome(Outcome::Refused)],
        ),
        row(
            "2523 only agreement partners",
            cloud_fr,
            facts(Judge),
            vec![outcome(Outcome::Refused), NothingReleased],
        ),
        established(
            row(
                "2703 process to a provider outside the US",
                o("us.2703d", Court, &[Subscriber]),
                facts(Court),
                vec![outcome(Outcome::NeedsHumanJudgement)],
            ),
            "IE",
        ),
    ]);
    assert_eq!(n, 18);
}

#[test]
fn br_marco_civil_boundaries() {
    let o = |i, k, c: &[Category]| order(i, k, c);
    let mut abroad_serving = row(
        "art 11 §2 services offered to the Brazilian public from abroad",
        o("br.marco_civil", Judge, &[Subscriber]),
        facts(Judge),
        vec![outcome(Outcome::AcceptableForReview)],
    );
    abroad_serving.deployment.establishment = "US".into();
    abroad_serving.deployment.offers_service_in = vec!["BR".into()];
    let n = check(vec![
        row(
            "arts 15, 22 court order: access logs",
            o("br.marco_civil", Judge, &[Subscriber, Ident, IpHistory]),
            facts(Judge),
            vec![
                Cat(Subscriber, Permit),
                Cat(Ident, Permit),
                Cat(IpHistory, Permit),
            ],
        ),
        row(
            "art 22 the prosecutor has no access to logs without a court",
            o("br.marco_civil", Prosecutor, &[Subscriber, IpHistory]),
            facts(Prosecutor),
            vec![NothingReleased],
        ),
        row(
            "art 22 police claiming to be a court",
            o("br.marco_civil", Judge, &[IpHistory]),
            facts(Police),
            vec![NothingReleased],
        ),
        row(
            "art 10 §3 the administrative route reaches no Writ field",
            o("br.marco_civil_admin", Police, &[Subscriber]),
            facts(Police),
            vec![NothingReleased],
        ),
        row(
            "art 15 §2 preservation by police releases nothing",
            o("br.preservation", Police, &[Subscriber, IpHistory]),
            facts(Police),
            vec![Cat(IpHistory, Preserve), NothingReleased],
        ),
        abroad_serving,
        established(
            row(
                "art 11 a provider abroad not serving Brazil",
                o("br.marco_civil", Judge, &[Subscriber]),
                facts(Judge),
                vec![outcome(Outcome::NeedsHumanJudgement)],
            ),
            "US",
        ),
    ]);
    assert_eq!(n, 7);
}

#[test]
fn in_bnss_94_boundaries() {
    let o = |k, c: &[Category]| order("in.bnss_94", k, c);
    let mut no_statement = o(Police, &[Subscriber]);
    no_statement.purpose = Some(Purpose {
        kind: PurposeKind::Crime,
        statement: Some("  ".into()),
    });
    let n = check(vec![
        row(
            "s.94 police officer in charge, purpose in writing",
            o(Police, &[Subscriber, Ident, IpHistory]),
            facts(Police),
            vec![
                Cat(Subscriber, Permit),
                Cat(Ident, Permit),
                Cat(IpHistory, Permit),
            ],
        ),
        row(
            "s.94 court summons",
            o(Court, &[Subscriber]),
            facts(Court),
            vec![Cat(Subscriber, Permit)],
        ),
        row(
            "s.94 an administrative authority is not empowered",
            o(AdministrativeAuthority, &[Subscriber]),
            facts(AdministrativeAuthority),
            vec![NothingReleased],
        ),
        row(
            "r.3(1)(j) a blank purpose statement",
            no_statement,
            facts(Police),
            vec![outcome(Outcome::Refused), NothingReleased],
        ),
        row(
            "s.94 contents are not held",
            o(Court, &[Content]),
            facts(Court),
            vec![NothingReleased],
        ),
        established(
            row(
                "r.3(1)(j) a provider not established in India",
                o(Police, &[Subscriber]),
                facts(Police),
                vec![outcome(Outcome::NeedsHumanJudgement)],
            ),
            "IE",
        ),
    ]);
    assert_eq!(n, 6);
}
