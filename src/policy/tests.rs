//! Tests of the policy engine against the shipped policy files.

use super::*;
use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;

const SHIPPED: &[(&str, &str)] = super::load::BUILTIN;

fn set() -> PolicySet {
    PolicySet::from_sources(SHIPPED).unwrap()
}

fn t0() -> DateTime<Utc> {
    "2026-09-01T08:00:00Z".parse().unwrap()
}

fn hours(h: i64) -> TimeDelta {
    TimeDelta::hours(h)
}

fn authority(kind: IssuerKind, country: &str) -> Authority {
    Authority {
        kind,
        person: "A. Officer".into(),
        authority: "Competent Authority".into(),
        country: country.into(),
        file_number: Some("F-1".into()),
    }
}

fn country_of(instrument: &str) -> &'static str {
    match instrument.split('.').next().unwrap() {
        "eu" => "FR",
        "fr" => "FR",
        "de" => "DE",
        "us" => "US",
        "uk" => "GB",
        "br" => "BR",
        "in" => "IN",
        _ => "XX",
    }
}

/// An order with every element any policy may require.
fn order(instrument: &str, kind: IssuerKind, categories: &[Category]) -> Order {
    Order {
        reference: "REF-1".into(),
        instrument: instrument.into(),
        issuer: authority(kind, country_of(instrument)),
        validator: None,
        dates: OrderDates {
            issued_at: t0() - hours(2),
            validated_at: None,
            expires_at: None,
            respond_by: None,
        },
        legal_provisions: vec!["the provision".into()],
        reasons: Some("facts".into()),
        redress: Some("appeal to the court".into()),
        addressee: Some("Writ legal representative".into()),
        receiving_authority: Some("Competent Authority".into()),
        offence: Some(Offence {
            description: "fraud".into(),
            max_custodial_months: Some(60),
            codes: vec![],
            over_network: Some(false),
            sentence_imposed_months: None,
        }),
        emergency: None,
        enforcing_state_notified: false,
        non_disclosure: None,
        targets: vec![Target::UserId("u-1".into())],
        categories: categories.to_vec(),
        time_window: Some(TimeWindow {
            from: t0() - hours(24 * 30),
            to: t0(),
        }),
        purpose: Some(Purpose {
            kind: PurposeKind::Crime,
            statement: Some("to identify the author of the fraud".into()),
        }),
        procedural_framework: Some(ProceduralFramework::FlagrantOffence),
        statutory_basis: Some(StatutoryBasis {
            kind: BasisKind::AdministrativeSubpoena,
            statute: "21 U.S.C. 876".into(),
        }),
        sole_aim_identification: None,
        journalistic_source: false,
        follow_up_notified_at: None,
        extension_requested_at: vec![],
    }
}

fn facts(kind: IssuerKind) -> RegistryFacts {
    RegistryFacts {
        issuer_kind: Some(kind),
        validator_kind: None,
        issuer_country: None,
        validation_signed_by_validator: false,
        earlier_preservations: 0,
    }
}

/// Where each jurisdiction's instruments bind (an EU provider is in IE, so EU orders from FR bind).
fn deployment_for(instrument: &str) -> Deployment {
    let establishment = match instrument.split('.').next().unwrap() {
        "eu" => "IE",
        other => country_of(&format!("{other}.x")),
    };
    // A German deployment is classified; the §100k cases are for a digital service.
    let service_class = match instrument {
        "de.stpo_100k" => Some(ServiceClass::DigitalService),
        i if i.starts_with("de.") => Some(ServiceClass::InterpersonalCommunications),
        _ => None,
    };
    Deployment {
        establishment: establishment.into(),
        legal_representative_in: vec![],
        dsa_intermediary: false,
        service_class,
        offers_service_in: vec![],
    }
}

/// The engine with the registry's country, where a test does not set one, taken from the
/// order's claim (the tests are about other facts; `an_authority_issues_only_under_its_own_law`
/// covers the country itself, through `super::decide`).
#[allow(clippy::too_many_arguments)]
fn decide(
    o: &Order,
    f: &RegistryFacts,
    received_at: DateTime<Utc>,
    pauses: &[Pause],
    set: &PolicySet,
    deployment: &Deployment,
    now: DateTime<Utc>,
) -> Decision {
    let mut f = f.clone();
    if f.issuer_country.is_none() {
        f.issuer_country = Some(o.issuer.country.clone());
    }
    super::decide(o, &f, received_at, pauses, set, deployment, now)
}

fn run(o: &Order, f: &RegistryFacts) -> Decision {
    // The registry's country, where a test does not set one, is the one the order claims.
    let mut f = f.clone();
    if f.issuer_country.is_none() {
        f.issuer_country = Some(o.issuer.country.clone());
    }
    decide(
        o,
        &f,
        t0(),
        &[],
        &set(),
        &deployment_for(&o.instrument),
        t0() + hours(1),
    )
}

fn status(d: &Decision, c: Category) -> FieldStatus {
    d.category(c)
        .unwrap_or_else(|| panic!("{c} not in decision"))
        .status
}

use Category::{Content, Identification as Ident, IpHistory, Subscriber};
use FieldStatus::{Deny, NotHeld, Permit, PermitPendingValidationCheck as Pending, Preserve};
use IssuerKind::*;

struct Case {
    name: &'static str,
    instrument: &'static str,
    issuer: IssuerKind,
    categories: &'static [Category],
    months: Option<u32>,
    network: bool,
    emergency: bool,
    expect: &'static [(Category, FieldStatus)],
    outcome: Outcome,
}

const CASES: &[Case] = &[
    // eu.epoc
    Case {
        name: "epoc judge all",
        instrument: "eu.epoc",
        issuer: Judge,
        categories: &[Subscriber, Ident, IpHistory, Content],
        months: Some(60),
        network: false,
        emergency: false,
        expect: &[
            (Subscriber, Permit),
            (Ident, Permit),
            (IpHistory, Permit),
            (Content, NotHeld),
        ],
        outcome: Outcome::AcceptableForReview,
    },
    Case {
        name: "epoc prosecutor traffic",
        instrument: "eu.epoc",
        issuer: Prosecutor,
        categories: &[Subscriber, IpHistory],
        months: Some(60),
        network: false,
        emergency: false,
        expect: &[(Subscriber, Permit), (IpHistory, Deny)],
        outcome: Outcome::AcceptableForReview,
    },
    Case {
        name: "epoc judge traffic below 3y",
        instrument: "eu.epoc",
        issuer: Judge,
        categories: &[IpHistory],
        months: Some(35),
        network: true,
        emergency: false,
        expect: &[(IpHistory, Deny)],
        outcome: Outcome::Refused,
    },
    Case {
        name: "epoc police unvalidated",
        instrument: "eu.epoc",
        issuer: Police,
        categories: &[Subscriber],
        months: Some(60),
        network: false,
        emergency: false,
        expect: &[(Subscriber, Deny)],
        outcome: Outcome::Refused,
    },
    Case {
        name: "epoc subscriber any offence",
        instrument: "eu.epoc",
        issuer: Prosecutor,
        categories: &[Subscriber, Ident],
        months: Some(1),
        network: false,
        emergency: false,
        expect: &[(Subscriber, Permit), (Ident, Permit)],
        outcome: Outcome::AcceptableForReview,
    },
    // eu.epoc_pr
    Case {
        name: "epoc-pr prosecutor all",
        instrument: "eu.epoc_pr",
        issuer: Prosecutor,
        categories: &[Subscriber, IpHistory, Content],
        months: Some(1),
        network: false,
        emergency: false,
        expect: &[
            (Subscriber, Preserve),
            (IpHistory, Preserve),
            (Content, NotHeld),
        ],
        outcome: Outcome::AcceptableForReview,
    },
    Case {
        name: "epoc-pr police unvalidated",
        instrument: "eu.epoc_pr",
        issuer: Police,
        categories: &[Subscriber],
        months: Some(60),
        network: false,
        emergency: false,
        expect: &[(Subscriber, Deny)],
        outcome: Outcome::Refused,
    },
    Case {
        name: "epoc-pr police emergency",
        instrument: "eu.epoc_pr",
        issuer: Police,
        categories: &[IpHistory],
        months: Some(60),
        network: false,
        emergency: true,
        expect: &[(IpHistory, Preserve)],
        outcome: Outcome::AcceptableForReview,
    },
    // fr.requisition
    Case {
        name: "fr identity any offence",
        instrument: "fr.requisition",
        issuer: Police,
        categories: &[Subscriber],
        months: Some(6),
        network: false,
        emergency: false,
        expect: &[(Subscriber, Permit)],
        outcome: Outcome::AcceptableForReview,
    },
    Case {
        name: "fr ip 2y off network",
        instrument: "fr.requisition",
        issuer: Police,
        categories: &[Ident],
        months: Some(24),
        network: false,
        emergency: false,
        expect: &[(Ident, Deny)],
        outcome: Outcome::Refused,
    },
    Case {
        name: "fr ip 1y on network",
        instrument: "fr.requisition",
        issuer: Police,
        categories: &[Ident],
        months: Some(12),
        network: true,
        emergency: false,
        expect: &[(Ident, Permit)],
        outcome: Outcome::AcceptableForReview,
    },
    Case {
        name: "fr ip 11m on network",
        instrument: "fr.requisition",
        issuer: Police,
        categories: &[Ident],
        months: Some(11),
        network: true,
        emergency: false,
        expect: &[(Ident, Deny)],
        outcome: Outcome::Refused,
    },
    Case {
        name: "fr ip 3y off network",
        instrument: "fr.requisition",
        issuer: Prosecutor,
        categories: &[Ident, IpHistory],
        months: Some(36),
        network: false,
        emergency: false,
        expect: &[(Ident, Permit), (IpHistory, Permit)],
        outcome: Outcome::AcceptableForReview,
    },
    Case {
        name: "fr history 2y on network not sole aim",
        instrument: "fr.requisition",
        issuer: Police,
        categories: &[IpHistory],
        months: Some(24),
        network: true,
        emergency: false,
        expect: &[(IpHistory, Deny)],
        outcome: Outcome::Refused,
    },
    // de
    Case {
        name: "de 100j police subscriber",
        instrument: "de.stpo_100j",
        issuer: Police,
        categories: &[Subscriber, Ident],
        months: Some(1),
        network: false,
        emergency: false,
        // Police get who was behind an address (subscriber data), not the access record
        // itself, which is traffic data needing a court order (§100g).
        expect: &[(Subscriber, Permit), (Ident, Deny)],
        outcome: Outcome::AcceptableForReview,
    },
    // The access record is traffic data: §100j reaches it for no one (§100g or §100k do).
    Case {
        name: "de 100j court identification",
        instrument: "de.stpo_100j",
        issuer: Court,
        categories: &[Ident],
        months: Some(1),
        network: false,
        emergency: false,
        expect: &[(Ident, Deny)],
        outcome: Outcome::Refused,
    },
    Case {
        name: "de 100k court usage data",
        instrument: "de.stpo_100k",
        issuer: Court,
        categories: &[IpHistory],
        months: Some(12),
        network: false,
        emergency: false,
        expect: &[(IpHistory, Permit)],
        outcome: Outcome::AcceptableForReview,
    },
    Case {
        name: "fr preservation without the judge's authorisation",
        instrument: "fr.preservation",
        issuer: Police,
        categories: &[IpHistory],
        months: Some(60),
        network: false,
        emergency: false,
        expect: &[(IpHistory, Deny)],
        outcome: Outcome::Refused,
    },
    Case {
        name: "us nsl for a crime purpose",
        instrument: "us.nsl",
        issuer: Police,
        categories: &[Subscriber],
        months: None,
        network: false,
        emergency: false,
        expect: &[(Subscriber, Deny)],
        outcome: Outcome::Refused,
    },
    Case {
        name: "us cloud act order from a non-partner",
        instrument: "us.cloud_act_agreement",
        issuer: Judge,
        categories: &[Subscriber],
        months: Some(60),
        network: false,
        emergency: false,
        expect: &[(Subscriber, Deny)],
        outcome: Outcome::Refused,
    },
    Case {
        name: "br preservation by police",
        instrument: "br.preservation",
        issuer: Police,
        categories: &[IpHistory],
        months: None,
        network: false,
        emergency: false,
        expect: &[(IpHistory, Preserve)],
        outcome: Outcome::AcceptableForReview,
    },
    Case {
        name: "uk designated senior officer, not urgent",
        instrument: "uk.ipa_part3",
        issuer: DesignatedSeniorOfficer,
        categories: &[Subscriber],
        months: Some(24),
        network: false,
        emergency: false,
        expect: &[(Subscriber, Deny)],
        outcome: Outcome::Refused,
    },
    Case {
        name: "uk designated senior officer, urgent",
        instrument: "uk.ipa_part3",
        issuer: DesignatedSeniorOfficer,
        categories: &[Subscriber],
        months: Some(24),
        network: false,
        emergency: true,
        expect: &[(Subscriber, Permit)],
        outcome: Outcome::AcceptableForReview,
    },
    Case {
        name: "de 100j no traffic",
        instrument: "de.stpo_100j",
        issuer: Police,
        categories: &[IpHistory],
        months: Some(60),
        network: false,
        emergency: false,
        expect: &[(IpHistory, Deny)],
        outcome: Outcome::Refused,
    },
    Case {
        name: "de 100g court traffic",
        instrument: "de.stpo_100g",
        issuer: Court,
        categories: &[IpHistory],
        months: Some(60),
        network: false,
        emergency: false,
        expect: &[(IpHistory, Permit)],
        outcome: Outcome::AcceptableForReview,
    },
    Case {
        name: "de 100g prosecutor traffic",
        instrument: "de.stpo_100g",
        issuer: Prosecutor,
        categories: &[IpHistory],
        months: Some(60),
        network: false,
        emergency: false,
        expect: &[(IpHistory, Deny)],
        outcome: Outcome::Refused,
    },
    // us
    Case {
        name: "us subpoena BSI",
        instrument: "us.subpoena",
        issuer: Prosecutor,
        categories: &[Subscriber, Ident, IpHistory],
        months: None,
        network: false,
        emergency: false,
        expect: &[(Subscriber, Permit), (Ident, Permit), (IpHistory, Permit)],
        outcome: Outcome::AcceptableForReview,
    },
    Case {
        name: "us subpoena content",
        instrument: "us.subpoena",
        issuer: Prosecutor,
        categories: &[Content],
        months: None,
        network: false,
        emergency: false,
        expect: &[(Content, NotHeld)],
        outcome: Outcome::AcceptableForReview,
    },
    Case {
        name: "us 2703d police",
        instrument: "us.2703d",
        issuer: Police,
        categories: &[IpHistory],
        months: None,
        network: false,
        emergency: false,
        expect: &[(IpHistory, Deny)],
        outcome: Outcome::Refused,
    },
    Case {
        name: "us 2703d judge",
        instrument: "us.2703d",
        issuer: Judge,
        categories: &[IpHistory],
        months: None,
        network: false,
        emergency: false,
        expect: &[(IpHistory, Permit)],
        outcome: Outcome::AcceptableForReview,
    },
    Case {
        name: "us warrant",
        instrument: "us.warrant",
        issuer: Judge,
        categories: &[Content, Subscriber],
        months: None,
        network: false,
        emergency: false,
        expect: &[(Content, NotHeld), (Subscriber, Permit)],
        outcome: Outcome::AcceptableForReview,
    },
    Case {
        name: "us warrant by police",
        instrument: "us.warrant",
        issuer: Police,
        categories: &[Subscriber],
        months: None,
        network: false,
        emergency: false,
        expect: &[(Subscriber, Deny)],
        outcome: Outcome::Refused,
    },
    Case {
        name: "us preservation",
        instrument: "us.preservation",
        issuer: Police,
        categories: &[Subscriber, IpHistory, Content],
        months: None,
        network: false,
        emergency: false,
        expect: &[
            (Subscriber, Preserve),
            (IpHistory, Preserve),
            (Content, NotHeld),
        ],
        outcome: Outcome::AcceptableForReview,
    },
    Case {
        name: "us emergency",
        instrument: "us.emergency",
        issuer: Police,
        categories: &[Subscriber, IpHistory],
        months: None,
        network: false,
        emergency: true,
        expect: &[(Subscriber, Permit), (IpHistory, Permit)],
        outcome: Outcome::NeedsHumanJudgement,
    },
    Case {
        name: "us emergency not emergency",
        instrument: "us.emergency",
        issuer: Police,
        categories: &[Subscriber],
        months: None,
        network: false,
        emergency: false,
        expect: &[(Subscriber, Deny)],
        outcome: Outcome::Refused,
    },
    // uk
    Case {
        name: "uk entity any crime",
        instrument: "uk.ipa_part3",
        issuer: Ocda,
        categories: &[Subscriber],
        months: Some(6),
        network: false,
        emergency: false,
        expect: &[(Subscriber, Permit)],
        outcome: Outcome::AcceptableForReview,
    },
    Case {
        name: "uk events non-serious",
        instrument: "uk.ipa_part3",
        issuer: Ocda,
        categories: &[IpHistory],
        months: Some(11),
        network: false,
        emergency: false,
        expect: &[(IpHistory, Deny)],
        outcome: Outcome::Refused,
    },
    Case {
        name: "uk events serious",
        instrument: "uk.ipa_part3",
        issuer: Ocda,
        categories: &[IpHistory],
        months: Some(12),
        network: false,
        emergency: false,
        expect: &[(IpHistory, Permit)],
        outcome: Outcome::AcceptableForReview,
    },
    Case {
        name: "uk police direct",
        instrument: "uk.ipa_part3",
        issuer: Police,
        categories: &[Subscriber],
        months: Some(60),
        network: false,
        emergency: false,
        expect: &[(Subscriber, Deny)],
        outcome: Outcome::Refused,
    },
    // br
    Case {
        name: "br court logs",
        instrument: "br.marco_civil",
        issuer: Judge,
        categories: &[Subscriber, IpHistory],
        months: None,
        network: false,
        emergency: false,
        expect: &[(Subscriber, Permit), (IpHistory, Permit)],
        outcome: Outcome::AcceptableForReview,
    },
    Case {
        name: "br police logs",
        instrument: "br.marco_civil",
        issuer: Police,
        categories: &[IpHistory],
        months: None,
        network: false,
        emergency: false,
        expect: &[(IpHistory, Deny)],
        outcome: Outcome::Refused,
    },
    Case {
        name: "br admin route",
        instrument: "br.marco_civil_admin",
        issuer: Police,
        categories: &[Subscriber],
        months: None,
        network: false,
        emergency: false,
        expect: &[(Subscriber, Deny)],
        outcome: Outcome::Refused,
    },
    // in
    Case {
        name: "in s94 police",
        instrument: "in.bnss_94",
        issuer: Police,
        categories: &[Subscriber, IpHistory],
        months: None,
        network: false,
        emergency: false,
        expect: &[(Subscriber, Permit), (IpHistory, Permit)],
        outcome: Outcome::AcceptableForReview,
    },
    Case {
        name: "in s94 admin",
        instrument: "in.bnss_94",
        issuer: AdministrativeAuthority,
        categories: &[Subscriber],
        months: None,
        network: false,
        emergency: false,
        expect: &[(Subscriber, Deny)],
        outcome: Outcome::Refused,
    },
];

#[test]
fn table_of_accept_and_refuse_edges() {
    let mut covered = std::collections::BTreeSet::new();
    for case in CASES {
        let mut o = order(case.instrument, case.issuer, case.categories);
        if let Some(off) = o.offence.as_mut() {
            off.max_custodial_months = case.months;
            off.over_network = Some(case.network);
        }
        if case.months.is_none() && case.instrument.starts_with("us.") {
            o.offence = None;
        }
        if case.emergency {
            o.emergency = Some(Emergency {
                justification: "threat to life".into(),
            });
        }
        // The French network cases are the art 60-1-2 2° cases: the requisition states its
        // sole aim of identifying the author.
        if case.instrument.starts_with("fr.") {
            o.sole_aim_identification = Some(case.network);
        }
        // UK cases name the authorising body (OCDA, DSO); the request itself comes from a
        // police force it authorised, proven by the body's own signature.
        let f = match (case.instrument, case.issuer) {
            ("uk.ipa_part3", body @ (Ocda | DesignatedSeniorOfficer)) => {
                o.issuer.kind = Police;
                o.validator = Some(authority(body, "GB"));
                RegistryFacts {
                    issuer_kind: Some(Police),
                    validator_kind: Some(body),
                    issuer_country: None,
                    validation_signed_by_validator: true,
                    earlier_preservations: 0,
                }
            }
            _ => facts(case.issuer),
        };
        let d = run(&o, &f);
        for (c, s) in case.expect {
            assert_eq!(status(&d, *c), *s, "{}: {c}\n{}", case.name, d.explain());
        }
        assert_eq!(d.outcome, case.outcome, "{}\n{}", case.name, d.explain());
        covered.insert(case.instrument);
    }
    for (id, _) in set().instruments() {
        assert!(covered.contains(id), "no table case for {id}");
    }
}

#[test]
fn epoc_traffic_from_prosecutor_denied_subscriber_permitted() {
    let d = run(
        &order("eu.epoc", Prosecutor, &[Subscriber, IpHistory]),
        &facts(Prosecutor),
    );
    assert_eq!(status(&d, Subscriber), Permit);
    assert_eq!(status(&d, IpHistory), Deny);
    assert_eq!(
        d.category(IpHistory).unwrap().reason,
        ReasonCode::ValidationRequired
    );
    assert!(d.released_fields().contains(&FieldId::RegistrationIp));
    assert!(!d.released_fields().contains(&FieldId::IpEventIp));
}

#[test]
fn emergency_epoc_from_unvalidated_police() {
    let mut o = order("eu.epoc", Police, &[Subscriber, IpHistory]);
    o.emergency = Some(Emergency {
        justification: "imminent threat to life".into(),
    });
    let d = run(&o, &facts(Police));
    assert_eq!(status(&d, Subscriber), Permit);
    assert_eq!(
        d.category(Subscriber).unwrap().reason,
        ReasonCode::PermittedEmergencyWithoutValidation
    );
    assert_eq!(status(&d, IpHistory), Deny);
    assert_eq!(d.deadline.as_ref().unwrap().due, Some(t0() + hours(8)));
    assert_eq!(
        d.validation_due.as_ref().unwrap().due,
        o.dates.issued_at + hours(48)
    );
    // Once the 48 hours have passed without validation, the order is refused.
    let late = decide(
        &o,
        &facts(Police),
        t0(),
        &[],
        &set(),
        &deployment_for("eu"),
        o.dates.issued_at + hours(49),
    );
    assert_eq!(late.outcome, Outcome::Refused);
    assert_eq!(
        late.refusals[0].code,
        ReasonCode::EmergencyValidationOverdue
    );
    assert!(late.released_fields().is_empty());
}

#[test]
fn validated_police_epoc_needs_signature_or_a_check() {
    let mut o = order("eu.epoc", Police, &[Subscriber]);
    o.validator = Some(authority(Prosecutor, "FR"));
    let unproven = run(&o, &facts(Police));
    assert_eq!(status(&unproven, Subscriber), Pending);
    assert_eq!(unproven.outcome, Outcome::NeedsHumanJudgement);
    let proven = run(
        &o,
        &RegistryFacts {
            issuer_kind: Some(Police),
            validator_kind: Some(Prosecutor),
            issuer_country: None,
            validation_signed_by_validator: true,
            earlier_preservations: 0,
        },
    );
    assert_eq!(status(&proven, Subscriber), Permit);
    assert_eq!(proven.outcome, Outcome::AcceptableForReview);
    // A signed validation by someone the registry knows as police validates nothing.
    let wrong = run(
        &o,
        &RegistryFacts {
            issuer_kind: Some(Police),
            validator_kind: Some(Police),
            issuer_country: None,
            validation_signed_by_validator: true,
            earlier_preservations: 0,
        },
    );
    assert_eq!(status(&wrong, Subscriber), Deny);
    assert_eq!(
        wrong.category(Subscriber).unwrap().reason,
        ReasonCode::ValidatorNotEntitled
    );
}

#[test]
fn us_subpoena_reaches_subscriber_and_ip_session_logs() {
    let d = run(
        &order("us.subpoena", Prosecutor, &[Subscriber, IpHistory]),
        &facts(Prosecutor),
    );
    let released = d.released_fields();
    for f in [
        FieldId::PhoneNumber,
        FieldId::RegistrationIp,
        FieldId::IpEventIp,
        FieldId::IpEventTime,
    ] {
        assert!(released.contains(&f), "{f}");
    }
    assert_eq!(d.outcome, Outcome::AcceptableForReview);
}

#[test]
fn us_warrant_content_is_not_held() {
    let d = run(&order("us.warrant", Judge, &[Content]), &facts(Judge));
    let c = d.category(Content).unwrap();
    assert_eq!(c.status, NotHeld);
    assert_eq!(c.reason, ReasonCode::NotHeld);
    assert!(c.fields.is_empty());
    assert!(c.text.contains("lawfully"));
    assert_eq!(d.outcome, Outcome::AcceptableForReview);
}

#[test]
fn preservation_orders_preserve_and_never_release() {
    for (id, kind, days, ext) in [
        ("eu.epoc_pr", Prosecutor, 60, "30d"),
        ("us.preservation", Police, 90, "90d"),
    ] {
        let d = run(
            &order(id, kind, &[Subscriber, Ident, IpHistory, Content]),
            &facts(kind),
        );
        assert!(d.released_fields().is_empty(), "{id}");
        assert!(!d.granted_fields().is_empty(), "{id}");
        assert!(d.earliest_release.is_none(), "{id}");
        let p = d.preservation.as_ref().unwrap();
        assert_eq!(p.expires_at, t0() + TimeDelta::days(days), "{id}");
        assert_eq!(p.extension.as_deref(), Some(ext));
        // After the period the order is spent.
        let late = decide(
            &order(id, kind, &[Subscriber]),
            &facts(kind),
            t0(),
            &[],
            &set(),
            &deployment_for(id),
            t0() + TimeDelta::days(days + 1),
        );
        assert_eq!(late.refusals[0].code, ReasonCode::PreservationPeriodEnded);
    }
}

#[test]
fn uk_registration_ip_is_events_data() {
    // A police request on an OCDA authorisation (the authorising body signs).
    let mut o = order("uk.ipa_part3", Police, &[Subscriber]);
    o.validator = Some(authority(Ocda, "GB"));
    let ocda = RegistryFacts {
        issuer_kind: Some(Police),
        validator_kind: Some(Ocda),
        issuer_country: None,
        validation_signed_by_validator: true,
        earlier_preservations: 0,
    };
    o.offence.as_mut().unwrap().max_custodial_months = Some(6);
    let d = run(&o, &ocda);
    assert_eq!(
        d.field_status(Subscriber, FieldId::PhoneNumber),
        Some(Permit)
    );
    assert_eq!(
        d.field_status(Subscriber, FieldId::RegistrationIp),
        Some(Deny)
    );
    o.categories = vec![Subscriber, IpHistory];
    let d = run(&o, &ocda);
    assert_eq!(
        d.field_status(IpHistory, FieldId::RegistrationIp),
        Some(Deny)
    );
    assert_eq!(
        d.category(IpHistory).unwrap().reason,
        ReasonCode::OffenceBelowThreshold
    );
    o.offence.as_mut().unwrap().max_custodial_months = Some(24);
    let d = run(&o, &ocda);
    assert_eq!(
        d.field_status(IpHistory, FieldId::RegistrationIp),
        Some(Permit)
    );
    assert_eq!(d.user_notice[0].timing, NoticeTiming::NotApplicable);
}

#[test]
fn brazil_registration_ip_is_court_only_and_admin_reaches_nothing() {
    let d = run(
        &order(
            "br.marco_civil_admin",
            AdministrativeAuthority,
            &[Subscriber],
        ),
        &facts(AdministrativeAuthority),
    );
    assert!(d.granted_fields().is_empty());
    assert_eq!(d.category(Subscriber).unwrap().fields.len(), 6);
    let d = run(
        &order("br.marco_civil", Court, &[Subscriber]),
        &facts(Court),
    );
    assert_eq!(
        d.field_status(Subscriber, FieldId::RegistrationIp),
        Some(Permit)
    );
}

#[test]
fn french_thresholds_for_ip_data() {
    let run_fr = |months, network, cats: &[Category]| {
        let mut o = order("fr.requisition", Police, cats);
        let off = o.offence.as_mut().unwrap();
        off.max_custodial_months = Some(months);
        off.over_network = Some(network);
        // Art 60-1-2 2°: the requisition states its sole aim (never inferred).
        o.sole_aim_identification = Some(network);
        run(&o, &facts(Police))
    };
    let d = run_fr(24, false, &[Subscriber, Ident]);
    assert_eq!(status(&d, Ident), Deny);
    assert_eq!(
        d.field_status(Subscriber, FieldId::RegistrationIp),
        Some(Deny)
    );
    assert_eq!(
        d.field_status(Subscriber, FieldId::PhoneNumber),
        Some(Permit)
    );
    let d = run_fr(12, true, &[Subscriber, Ident]);
    assert_eq!(status(&d, Ident), Permit);
    assert_eq!(
        d.field_status(Subscriber, FieldId::RegistrationIp),
        Some(Permit)
    );
    // Asking for the IP history as well means the aim is no longer identification alone.
    let d = run_fr(24, true, &[Ident, IpHistory]);
    assert_eq!(status(&d, Ident), Deny);
    assert_eq!(
        d.category(Ident).unwrap().fields[0].reason,
        ReasonCode::OffenceBelowThreshold
    );
    let d = run_fr(36, false, &[Ident]);
    assert_eq!(status(&d, Ident), Permit);
}

#[test]
fn police_key_claiming_a_judge_gets_nothing_a_judge_alone_could() {
    let claimed_judge = order("eu.epoc", Judge, &[Subscriber, Ident, IpHistory, Content]);
    let forged = run(&claimed_judge, &facts(Police));
    let honest_police = run(
        &order("eu.epoc", Police, &[Subscriber, Ident, IpHistory, Content]),
        &facts(Police),
    );
    let real_judge = run(&claimed_judge, &facts(Judge));
    assert!(
        forged
            .released_fields()
            .is_subset(&honest_police.released_fields())
    );
    for f in real_judge
        .released_fields()
        .difference(&honest_police.released_fields())
    {
        assert!(!forged.released_fields().contains(f), "{f}");
    }
    assert_eq!(status(&forged, IpHistory), Deny);
    assert!(
        forged
            .review_flags
            .iter()
            .any(|f| f.code == ReasonCode::ClaimedIssuerKindMismatch)
    );
    assert_ne!(forged.outcome, Outcome::AcceptableForReview);
    // Same through an emergency: police get only what Art 4(5) gives police.
    let mut emergency = claimed_judge.clone();
    emergency.emergency = Some(Emergency {
        justification: "threat".into(),
    });
    let d = run(&emergency, &facts(Police));
    assert_eq!(status(&d, IpHistory), Deny);
    assert_eq!(d.outcome, Outcome::NeedsHumanJudgement);
}

#[test]
fn deadlines_pause_during_clarification() {
    let o = order("eu.epoc", Judge, &[Subscriber]);
    let s = set();
    let dep = deployment_for("eu");
    let pause = Pause {
        from: t0() + hours(24),
        to: Some(t0() + hours(72)),
    };
    let d = decide(
        &o,
        &facts(Judge),
        t0(),
        &[pause],
        &s,
        &dep,
        t0() + hours(100),
    );
    assert_eq!(
        d.deadline.as_ref().unwrap().due,
        Some(t0() + TimeDelta::days(10) + hours(48))
    );
    let pending = Pause {
        from: t0() + hours(24),
        to: None,
    };
    let d = decide(
        &o,
        &facts(Judge),
        t0(),
        &[pending],
        &s,
        &dep,
        t0() + hours(30),
    );
    let dl = d.deadline.as_ref().unwrap();
    assert!(dl.suspended);
    assert_eq!(dl.due, None);
    assert_eq!(
        dl.remaining_seconds,
        Some((TimeDelta::days(10) - hours(24)).num_seconds())
    );
    // India's 72 hours do not pause.
    let o = order("in.bnss_94", Police, &[Subscriber]);
    let d = decide(
        &o,
        &facts(Police),
        t0(),
        &[pause],
        &s,
        &deployment_for("in"),
        t0(),
    );
    assert_eq!(d.deadline.as_ref().unwrap().due, Some(t0() + hours(72)));
    // Receipt by post: the clock runs from the true receipt date, not from issue.
    let late_receipt = t0() + TimeDelta::days(5);
    let o = order("eu.epoc", Judge, &[Subscriber]);
    let d = decide(&o, &facts(Judge), late_receipt, &[], &s, &dep, late_receipt);
    assert_eq!(
        d.deadline.as_ref().unwrap().due,
        Some(late_receipt + TimeDelta::days(10))
    );
}

#[test]
fn notified_traffic_waits_out_objection_window() {
    let mut o = order("eu.epoc", Judge, &[Subscriber, IpHistory]);
    o.enforcing_state_notified = true;
    let d = run(&o, &facts(Judge));
    assert_eq!(
        d.earliest_release.as_ref().unwrap().earliest,
        t0() + TimeDelta::days(10)
    );
    o.categories = vec![Subscriber];
    let d = run(&o, &facts(Judge));
    assert_eq!(d.earliest_release.as_ref().unwrap().earliest, t0());
}

#[test]
fn unknown_jurisdiction_and_instrument_have_distinct_reasons() {
    let d = run(&order("xx.order", Judge, &[Subscriber]), &facts(Judge));
    assert_eq!(d.outcome, Outcome::Refused);
    assert_eq!(d.refusals[0].code, ReasonCode::UnknownJurisdiction);
    let d = run(&order("eu.nonsense", Judge, &[Subscriber]), &facts(Judge));
    assert_eq!(d.refusals[0].code, ReasonCode::UnknownInstrument);
    assert!(d.granted_fields().is_empty());
}

#[test]
fn other_order_level_refusals() {
    let o = order("eu.epoc", Judge, &[Subscriber]);
    let unregistered = RegistryFacts {
        issuer_kind: None,
        validator_kind: None,
        issuer_country: None,
        validation_signed_by_validator: false,
        earlier_preservations: 0,
    };
    assert_eq!(
        run(&o, &unregistered).refusals[0].code,
        ReasonCode::IssuerNotRegistered
    );
    let mut expired = o.clone();
    expired.dates.expires_at = Some(t0());
    let d = run(&expired, &facts(Judge));
    assert_eq!(d.refusals[0].code, ReasonCode::OrderExpired);
    assert!(d.granted_fields().is_empty());
    let mut no_offence = o.clone();
    no_offence.offence = None;
    no_offence.categories = vec![IpHistory];
    // An incomplete EPOC is not refused: the provider asks for clarification (Art 10(6)).
    let d = run(&no_offence, &facts(Judge));
    assert_eq!(d.outcome, Outcome::ClarificationNeeded);
    assert!(
        d.clarification
            .as_ref()
            .unwrap()
            .missing
            .contains(&"offence.description".to_owned())
    );
    assert!(d.granted_fields().is_empty());
    // Under an instrument that refuses incomplete orders, it is a refusal.
    let mut de = order("de.stpo_100g", Judge, &[IpHistory]);
    de.offence = None;
    let d = run(&de, &facts(Judge));
    assert!(
        d.refusals
            .iter()
            .any(|r| r.code == ReasonCode::MissingRequiredElements)
    );
}

#[test]
fn missing_required_elements_are_named() {
    let mut o = order("eu.epoc", Judge, &[Subscriber]);
    o.addressee = None;
    o.issuer.file_number = None;
    o.targets = vec![Target::Ip(IpTarget {
        address: "203.0.113.7".parse().unwrap(),
        port: Some(51234),
        timestamp: "2026-08-30T10:14:03+02:00".parse().unwrap(),
        time_zone: None,
    })];
    let d = run(&o, &facts(Judge));
    assert_eq!(d.outcome, Outcome::ClarificationNeeded);
    let c = d.clarification.as_ref().unwrap();
    for name in ["addressee", "issuer.file_number", "targets.ip.time_zone"] {
        assert!(c.text.contains(name), "{name} not named in {}", c.text);
        assert!(c.missing.contains(&name.to_owned()));
    }
    assert!(!c.text.contains("reasons"));
}

#[test]
fn dsa_overlay_adds_elements_and_a_delayable_user_notice() {
    let mut o = order("de.stpo_100j", Police, &[Subscriber]);
    let dep = Deployment {
        establishment: "DE".into(),
        legal_representative_in: vec![],
        dsa_intermediary: true,
        service_class: None,
        offers_service_in: vec![],
    };
    let d = decide(&o, &facts(Police), t0(), &[], &set(), &dep, t0());
    assert_eq!(d.user_notice.len(), 2);
    assert!(d.user_notice[1].provider_must_inform);
    // §100j keeps the request secret (TKG §174 / TDDDG §24): that secrecy is the later time
    // Art 10(5) allows, until the authority lifts it.
    assert_eq!(d.user_notice[1].timing, NoticeTiming::WhenGagLifted);
    assert_eq!(d.outcome, Outcome::AcceptableForReview);
    let end = t0() + TimeDelta::days(90);
    o.non_disclosure = Some(NonDisclosure {
        ends: NonDisclosureEnd::Until(end),
        legal_basis: None,
    });
    let d = decide(&o, &facts(Police), t0(), &[], &set(), &dep, t0());
    assert_eq!(d.user_notice[1].timing, NoticeTiming::NotBefore(end));
    o.non_disclosure = Some(NonDisclosure {
        ends: NonDisclosureEnd::OpenEnded,
        legal_basis: None,
    });
    let d = decide(&o, &facts(Police), t0(), &[], &set(), &dep, t0());
    assert_eq!(d.user_notice[1].timing, NoticeTiming::WhenGagLifted);
    assert!(d.gag.as_ref().unwrap().active_at_decision);
    o.redress = None;
    let d = decide(&o, &facts(Police), t0(), &[], &set(), &dep, t0());
    assert!(d.refusals[0].text.contains("redress"));
    // Without DSA intermediary status the overlay does not apply.
    let d = run(&o, &facts(Police));
    assert_eq!(d.user_notice.len(), 1);
    assert_eq!(d.outcome, Outcome::AcceptableForReview);
}

#[test]
fn binding_depends_on_establishment() {
    let o = order("us.subpoena", Prosecutor, &[Subscriber]);
    let ie = Deployment {
        establishment: "IE".into(),
        legal_representative_in: vec![],
        dsa_intermediary: false,
        service_class: None,
        offers_service_in: vec![],
    };
    let d = decide(&o, &facts(Prosecutor), t0(), &[], &set(), &ie, t0());
    assert!(!d.binding.as_ref().unwrap().binding);
    assert_eq!(d.outcome, Outcome::NeedsHumanJudgement);
    assert!(
        d.review_flags
            .iter()
            .any(|f| f.code == ReasonCode::VoluntaryDisclosure)
    );
    // us.emergency is voluntary even for a US provider.
    let mut e = order("us.emergency", Police, &[Subscriber]);
    e.emergency = Some(Emergency {
        justification: "kidnapping".into(),
    });
    let d = run(&e, &facts(Police));
    assert!(!d.binding.as_ref().unwrap().binding);
    // EPOCs: a provider only in the issuing state, or only in Denmark, is not bound.
    let o = order("eu.epoc", Judge, &[Subscriber]);
    for (est, reps, binds) in [
        ("IE", vec![], true),
        ("FR", vec![], false),
        ("DK", vec![], false),
        ("US", vec!["NL".to_string()], true),
    ] {
        let dep = Deployment {
            establishment: est.into(),
            legal_representative_in: reps,
            dsa_intermediary: false,
            service_class: None,
            offers_service_in: vec![],
        };
        let d = decide(&o, &facts(Judge), t0(), &[], &set(), &dep, t0());
        assert_eq!(d.binding.as_ref().unwrap().binding, binds, "{est}");
    }
}

#[test]
fn cgnat_ip_without_port_goes_to_a_person() {
    let mut o = order("us.subpoena", Prosecutor, &[Subscriber]);
    o.targets = vec![Target::Ip(IpTarget {
        address: "198.51.100.1".parse().unwrap(),
        port: None,
        timestamp: "2026-08-30T10:14:03Z".parse().unwrap(),
        time_zone: Some("UTC".into()),
    })];
    let d = run(&o, &facts(Prosecutor));
    assert_eq!(d.outcome, Outcome::NeedsHumanJudgement);
    assert!(
        d.review_flags
            .iter()
            .any(|f| f.code == ReasonCode::AmbiguousIpTarget)
    );
    assert_eq!(d.targets, o.targets);
}

#[test]
fn us_gag_delays_the_providers_notice() {
    let mut o = order("us.subpoena", Prosecutor, &[Subscriber]);
    let end = t0() + TimeDelta::days(180);
    o.non_disclosure = Some(NonDisclosure {
        ends: NonDisclosureEnd::Until(end),
        legal_basis: Some("18 U.S.C. 2705(b)".into()),
    });
    let d = run(&o, &facts(Prosecutor));
    assert_eq!(d.user_notice[0].timing, NoticeTiming::NotBefore(end));
    assert!(d.explain().contains("2705(b)"));
}

#[test]
fn explain_is_readable_and_cites() {
    let mut o = order("eu.epoc", Prosecutor, &[Subscriber, IpHistory, Content]);
    o.emergency = Some(Emergency {
        justification: "threat".into(),
    });
    let text = run(&o, &facts(Prosecutor)).explain();
    for needle in [
        "Regulation (EU) 2023/1543",
        "DENIED",
        "PERMITTED",
        "NOT HELD",
        "UTC",
        "registration_ip",
        "Informing the user",
        "Open questions",
    ] {
        assert!(text.contains(needle), "{needle} missing in:\n{text}");
    }
}

#[test]
fn decision_round_trips_through_json() {
    let d = run(
        &order("eu.epoc", Judge, &[Subscriber, Content]),
        &facts(Judge),
    );
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(serde_json::from_str::<Decision>(&json).unwrap(), d);
}

#[test]
fn narrowing_removes_and_refuses_widening() {
    let d = run(
        &order("eu.epoc", Prosecutor, &[Subscriber, IpHistory]),
        &facts(Prosecutor),
    );
    let keep = |fields: Vec<FieldId>, cat| NarrowingRequest {
        time_window: None,
        keep: vec![KeepCategory {
            category: cat,
            fields,
        }],
        keep_targets: None,
        reason: "proportionality".into(),
    };
    let n = narrow(&d, &keep(vec![FieldId::PhoneNumber], Subscriber)).unwrap();
    assert_eq!(
        n.released_fields().into_iter().collect::<Vec<_>>(),
        vec![FieldId::PhoneNumber]
    );
    assert_eq!(n.field_status(Subscriber, FieldId::Username), Some(Deny));
    assert_eq!(n.narrowing, vec!["proportionality".to_string()]);
    let err = narrow(&d, &keep(vec![FieldId::IpEventIp], IpHistory)).unwrap_err();
    assert!(err.to_string().contains("ip_event_ip"), "{err}");
    let err = narrow(&d, &keep(vec![], Ident)).unwrap_err();
    assert_eq!(err, NarrowError::CategoryNotInDecision(Ident));
    let widen_target = NarrowingRequest {
        time_window: None,
        keep: vec![],
        keep_targets: Some(vec![Target::Username("someone-else".into())]),
        reason: "x".into(),
    };
    assert!(matches!(
        narrow(&d, &widen_target),
        Err(NarrowError::TargetNotInDecision(_))
    ));
    let nothing = narrow(
        &d,
        &NarrowingRequest {
            time_window: None,
            keep: vec![],
            keep_targets: None,
            reason: "none needed".into(),
        },
    )
    .unwrap();
    assert_eq!(nothing.outcome, Outcome::Refused);
}

// ---- Order JSON ----

const ORDER_JSON: &str = r#"{
  "reference": "PR-2026-0042",
  "instrument": "eu.epoc",
  "issuer": {"kind": "prosecutor", "person": "M. Dupont", "authority": "Parquet de Paris", "country": "FR", "file_number": "P-123"},
  "dates": {"issued_at": "2026-09-01T06:00:00Z"},
  "legal_provisions": ["Regulation (EU) 2023/1543 Art 4(1)"],
  "addressee": "Writ Ltd, legal representative in Ireland",
  "receiving_authority": "Parquet de Paris",
  "offence": {"description": "online fraud", "max_custodial_months": 60, "codes": ["eu.dir_2019_713"], "over_network": true},
  "non_disclosure": {"ends": "open_ended"},
  "targets": [
    {"username": "alice"},
    {"ip": {"address": "203.0.113.7", "port": 51234, "timestamp": "2026-08-30T10:14:03+02:00", "time_zone": "Europe/Paris"}}
  ],
  "categories": ["subscriber", "identification"],
  "time_window": {"from": "2026-08-01T00:00:00Z", "to": "2026-09-01T00:00:00Z"}
}"#;

#[test]
fn order_json_parses_and_decides() {
    let o = Order::from_json(ORDER_JSON).unwrap();
    assert_eq!(o.targets.len(), 2);
    let d = run(&o, &facts(Prosecutor));
    assert_eq!(d.outcome, Outcome::AcceptableForReview, "{}", d.explain());
    assert_eq!(
        serde_json::from_str::<Order>(&serde_json::to_string(&o).unwrap()).unwrap(),
        o
    );
}

#[test]
fn order_json_errors_name_the_field() {
    let cases = [
        (
            ORDER_JSON.replace("\"addressee\"", "\"adressee\""),
            "adressee",
        ),
        (
            ORDER_JSON.replace("\"identification\"", "\"location\""),
            "categories",
        ),
        (
            ORDER_JSON.replace(
                "\"max_custodial_months\": 60",
                "\"max_custodial_months\": \"60\"",
            ),
            "offence",
        ),
        (ORDER_JSON.replace("\"country\": \"FR\", ", ""), "issuer"),
        (
            ORDER_JSON.replace("\"reference\": \"PR-2026-0042\",", ""),
            "reference",
        ),
        (
            ORDER_JSON.replace("\"port\": 51234", "\"port\": 99999"),
            "targets",
        ),
    ];
    for (json, field) in cases {
        let err = Order::from_json(&json).unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
    let err = Order::from_json(&ORDER_JSON.replace("\"country\": \"FR\", ", "")).unwrap_err();
    assert!(err.message.contains("country"), "{err}");
}

#[test]
fn every_required_element_resolves_to_an_order_field() {
    let o = order("eu.epoc", Judge, &[Subscriber]);
    for e in ORDER_ELEMENTS {
        assert!(
            o.has_element(e.path).is_some(),
            "{} does not resolve",
            e.path
        );
    }
    let s = set();
    for (id, instrument) in s.instruments() {
        for e in &instrument.required_elements {
            assert!(
                o.has_element(e.get_ref()).is_some(),
                "{id}: {}",
                e.get_ref()
            );
        }
    }
    for overlay in s.overlays() {
        for e in &overlay.required_elements {
            assert!(
                o.has_element(e.get_ref()).is_some(),
                "{}: {}",
                overlay.id.get_ref(),
                e.get_ref()
            );
        }
    }
}

#[test]
fn required_elements_map_to_fields_per_instrument() {
    // Each instrument's required elements (as the law lists them) and the Order field that holds them.
    let table: &[(&str, &[&str])] = &[
        (
            "eu.epoc",
            &[
                "issuer.authority",
                "issuer.file_number",
                "validator.authority",
                "addressee",
                "emergency.justification",
                "targets",
                "targets.ip.time_zone",
                "categories",
                "offence.description",
                "legal_provisions",
            ],
        ),
        (
            "eu.epoc_pr",
            &[
                "issuer.authority",
                "addressee",
                "targets",
                "categories",
                "offence.description",
            ],
        ),
        (
            "fr.requisition",
            &[
                "issuer.authority",
                "legal_provisions",
                "procedural_framework",
                "targets",
            ],
        ),
        (
            "fr.preservation",
            &["issuer.authority", "procedural_framework", "targets"],
        ),
        (
            "de.stpo_100k",
            &["reasons", "time_window", "offence.description"],
        ),
        (
            "de.stpo_100j",
            &["issuer.authority", "legal_provisions", "targets"],
        ),
        (
            "de.stpo_100g",
            &["reasons", "time_window", "offence.description"],
        ),
        (
            "us.subpoena",
            &["issuer.authority", "statutory_basis", "targets"],
        ),
        ("us.nsl", &["purpose", "targets"]),
        (
            "us.cloud_act_agreement",
            &["legal_provisions", "offence.description", "targets"],
        ),
        ("us.2703d", &["reasons", "targets"]),
        ("us.warrant", &["issuer.authority", "targets"]),
        ("us.preservation", &["issuer.authority", "targets"]),
        ("us.emergency", &["emergency.justification", "targets"]),
        (
            "uk.ipa_part3",
            &["legal_provisions", "purpose", "validator", "targets"],
        ),
        ("br.marco_civil", &["reasons", "time_window", "targets"]),
        ("br.marco_civil_admin", &["legal_provisions", "targets"]),
        ("br.preservation", &["legal_provisions", "targets"]),
        (
            "in.bnss_94",
            &[
                "legal_provisions",
                "purpose",
                "purpose.statement",
                "targets",
            ],
        ),
    ];
    let s = set();
    assert_eq!(table.len(), s.instruments().count());
    // Annex I "if applicable" boxes are not required of every EPOC (Art 10(6) asks otherwise).
    for absent in [
        "time_window",
        "receiving_authority",
        "offence.max_custodial_months",
    ] {
        assert!(
            !s.instrument("eu.epoc")
                .unwrap()
                .required_elements
                .iter()
                .any(|r| r.get_ref() == absent),
            "{absent}"
        );
    }
    // Crime is one UK purpose among several: the offence is not required of every request.
    assert!(
        !s.instrument("uk.ipa_part3")
            .unwrap()
            .required_elements
            .iter()
            .any(|r| r.get_ref() == "offence.description")
    );
    for (id, elements) in table {
        let instrument = s.instrument(id).unwrap();
        for e in *elements {
            assert!(
                instrument
                    .required_elements
                    .iter()
                    .any(|r| r.get_ref() == e),
                "{id} should require {e}"
            );
        }
    }
}

// ---- Loader ----

#[test]
fn shipped_files_load_from_disk_with_a_stable_id() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config/policies");
    let from_disk = PolicySet::load_dir(dir).unwrap();
    assert_eq!(from_disk.id(), set().id());
    assert_eq!(from_disk.id().len(), 64);
    for id in [
        "eu.epoc",
        "eu.epoc_pr",
        "fr.requisition",
        "de.stpo_100j",
        "de.stpo_100g",
        "us.subpoena",
        "us.2703d",
        "us.warrant",
        "us.preservation",
        "us.emergency",
        "uk.ipa_part3",
        "br.marco_civil",
        "in.bnss_94",
    ] {
        assert!(from_disk.instrument(id).is_some(), "{id}");
    }
    let mut changed = SHIPPED.to_vec();
    let edited = format!("{}\n# a comment\n", SHIPPED[0].1);
    changed[0].1 = &edited;
    assert_ne!(PolicySet::from_sources(&changed).unwrap().id(), set().id());
}

const MINIMAL: &str = r#"jurisdiction = "zz"
name = "Test"

[[instrument]]
id = "zz.order"
name = "Test order"
citation = "Test Act s.1"
action = "produce"

[instrument.binding]
binds_provider_in = ["ZZ"]
citation = "Test Act s.2"

[instrument.deadline]
normal = "10d"
citation = "Test Act s.3"

[instrument.user_notice]
informs = "nobody"
provider_may_inform = false
non_disclosure = "delays"
citation = "Test Act s.4"

[[instrument.rule]]
category = "subscriber"
fields = ["user_id"]
issuers = ["judge"]
citation = "Test Act s.5"
"#;

fn load_error(text: &str) -> (String, usize, String) {
    match PolicySet::from_sources(&[("zz.toml", text)]) {
        Err(PolicyError::Invalid {
            file,
            line,
            message,
        }) => (file, line, message),
        other => panic!("expected an invalid-file error, got {other:?}"),
    }
}

/// Found by fuzzing (fuzz/run, target policy_load): two sources under one name made the
/// error's file:line point into the wrong text, and the set id depend on their order.
#[test]
fn a_file_name_given_twice_is_refused() {
    let other = MINIMAL.replace("Test Act s.5", "Test Act s.6");
    let err = PolicySet::from_sources(&[("zz.toml", MINIMAL), ("zz.toml", &other)]);
    match err {
        Err(PolicyError::Invalid {
            file,
            line,
            message,
        }) => {
            assert_eq!((file.as_str(), line), ("zz.toml", 1));
            assert!(message.contains("given twice"), "{message}");
        }
        other => panic!("expected an invalid-file error, got {other:?}"),
    }
}

#[test]
fn loader_errors_name_file_and_line() {
    assert!(PolicySet::from_sources(&[("zz.toml", MINIMAL)]).is_ok());
    let line_of =
        |needle: &str, text: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;

    let unknown_key = MINIMAL.replace(
        "citation = \"Test Act s.5\"",
        "citation = \"Test Act s.5\"\nmax_months = 3",
    );
    let (file, line, message) = load_error(&unknown_key);
    assert_eq!(
        (file.as_str(), line),
        ("zz.toml", line_of("max_months", &unknown_key)),
        "{message}"
    );
    assert!(message.contains("max_months"), "{message}");

    let unknown_category = MINIMAL.replace("category = \"subscriber\"", "category = \"location\"");
    let (_, line, message) = load_error(&unknown_category);
    assert_eq!(line, line_of("location", &unknown_category), "{message}");

    let unknown_field = MINIMAL.replace("fields = [\"user_id\"]", "fields = [\"email\"]");
    let (_, line, message) = load_error(&unknown_field);
    assert_eq!(line, line_of("email", &unknown_field), "{message}");

    let bad_duration = MINIMAL.replace("normal = \"10d\"", "normal = \"10 days\"");
    let (_, line, message) = load_error(&bad_duration);
    assert_eq!(line, line_of("10 days", &bad_duration), "{message}");
    assert!(message.contains("malformed duration"), "{message}");

    let bad_element = MINIMAL.replace(
        "action = \"produce\"",
        "action = \"produce\"\nrequired_elements = [\"offense\"]",
    );
    let (_, line, message) = load_error(&bad_element);
    assert_eq!(line, line_of("offense", &bad_element), "{message}");

    let bad_id = MINIMAL.replace("id = \"zz.order\"", "id = \"yy.order\"");
    let (_, line, _) = load_error(&bad_id);
    assert_eq!(line, line_of("yy.order", &bad_id));

    let content_fields = MINIMAL.replace("category = \"subscriber\"", "category = \"content\"");
    let (_, line, _) = load_error(&content_fields);
    assert_eq!(line, line_of("user_id", &content_fields));

    let unknown_kind = MINIMAL.replace("issuers = [\"judge\"]", "issuers = [\"sheriff\"]");
    let (_, line, _) = load_error(&unknown_kind);
    assert_eq!(line, line_of("sheriff", &unknown_kind));

    match PolicySet::from_sources(&[("other.toml", MINIMAL)]) {
        Err(PolicyError::Invalid { file, line, .. }) => {
            assert_eq!((file.as_str(), line), ("other.toml", 1))
        }
        other => panic!("{other:?}"),
    }
}

// ---- Properties ----

fn arb_kind() -> impl Strategy<Value = IssuerKind> {
    prop::sample::select(vec![
        Judge,
        Court,
        InvestigatingJudge,
        Prosecutor,
        Police,
        AdministrativeAuthority,
        Ocda,
        DesignatedSeniorOfficer,
    ])
}

fn arb_instrument() -> impl Strategy<Value = String> {
    let mut ids: Vec<String> = set().instruments().map(|(id, _)| id.to_owned()).collect();
    ids.push("eu.unknown".into());
    ids.push("zz.unknown".into());
    prop::sample::select(ids)
}

prop_compose! {
    fn arb_case()(
        instrument in arb_instrument(),
        claimed in arb_kind(),
        registered in prop::option::weighted(0.9, arb_kind()),
        validator in prop::option::of((arb_kind(), prop::option::of(arb_kind()), any::<bool>())),
        categories in prop::collection::vec(prop::sample::select(Category::ALL.to_vec()), 0..5),
        months in prop::option::of(0u32..100),
        codes in prop::sample::subsequence(vec!["eu.dir_2017_541", "eu.dir_2019_713", "uk.ipa_s86_2a_corporate"], 0..=3),
        network in prop::option::of(any::<bool>()),
        emergency in any::<bool>(),
        notified in any::<bool>(),
        establishment in prop::sample::select(vec!["IE", "FR", "DE", "US", "GB", "BR", "IN", "DK"]),
        dsa in any::<bool>(),
        now_hours in 0i64..24 * 120,
        inputs in (
            prop::option::of(prop::sample::select(vec![PurposeKind::Crime, PurposeKind::NationalSecurity, PurposeKind::PreventingDeathOrInjury, PurposeKind::MissingOrVulnerablePerson, PurposeKind::ExecutingSentence, PurposeKind::Other])),
            prop::option::of(prop::sample::select(vec![ProceduralFramework::FlagrantOffence, ProceduralFramework::PreliminaryInquiry, ProceduralFramework::JudicialInvestigation])),
            prop::option::of(prop::sample::select(vec![BasisKind::AdministrativeSubpoena, BasisKind::GrandJurySubpoena, BasisKind::Other])),
            prop::option::of(any::<bool>()),
            any::<bool>(),
            any::<bool>(),
            prop::option::of(prop::sample::select(vec![ServiceClass::InterpersonalCommunications, ServiceClass::DigitalService])),
            prop::option::of(0i64..24 * 120),
            0u32..3,
        ),
    ) -> (Order, RegistryFacts, Deployment, DateTime<Utc>) {
        let (purpose, framework, basis, sole_aim, journalistic, ip_target, class, follow_up, earlier) = inputs;
        let mut o = order(&instrument, claimed, &categories);
        o.validator = validator.map(|(k, _, _)| authority(k, "FR"));
        o.offence.as_mut().unwrap().max_custodial_months = months;
        o.offence.as_mut().unwrap().codes = codes.into_iter().map(String::from).collect();
        o.offence.as_mut().unwrap().over_network = network;
        o.enforcing_state_notified = notified;
        if emergency {
            o.emergency = Some(Emergency { justification: "threat".into() });
        }
        o.purpose = purpose.map(|kind| Purpose { kind, statement: Some("why".into()) });
        o.procedural_framework = framework;
        o.statutory_basis = basis.map(|kind| StatutoryBasis { kind, statute: "a statute".into() });
        o.sole_aim_identification = sole_aim;
        o.journalistic_source = journalistic;
        o.follow_up_notified_at = follow_up.map(|h| t0() + hours(h));
        if ip_target {
            o.targets.push(Target::Ip(IpTarget {
                address: "203.0.113.7".parse().unwrap(),
                port: Some(443),
                timestamp: "2026-08-30T10:14:03+02:00".parse().unwrap(),
                time_zone: Some("Europe/Paris".into()),
            }));
        }
        let f = RegistryFacts {
            issuer_kind: registered,
            validator_kind: validator.and_then(|(_, r, _)| r),
            issuer_country: Some(o.issuer.country.clone()),
            validation_signed_by_validator: validator.is_some_and(|(_, _, s)| s),
            earlier_preservations: earlier,
        };
        let dep = Deployment { establishment: establishment.into(), legal_representative_in: vec![], dsa_intermediary: dsa, service_class: class, offers_service_in: vec![] };
        (o, f, dep, t0() + hours(now_hours))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decisions_stay_within_the_order((o, f, dep, now) in arb_case()) {
        let s = set();
        let d = decide(&o, &f, t0(), &[], &s, &dep, now);
        let instrument = s.instrument(&o.instrument);
        for c in &d.categories {
            prop_assert!(o.categories.contains(&c.category));
            // Content is never permitted: Writ holds none.
            if c.category == Category::Content {
                prop_assert!(matches!(c.status, NotHeld | Deny));
                prop_assert!(c.fields.is_empty());
            }
            for field in &c.fields {
                if field.status.grants() {
                    // A granted field is the category's own, or one the instrument puts there.
                    let mapped = instrument.is_some_and(|i| i.rules.iter().any(|r| r.category == c.category && r.fields.get_ref().contains(&field.field)));
                    prop_assert!(field.field.default_category() == c.category || mapped);
                    prop_assert!(mapped);
                }
            }
        }
        prop_assert_eq!(&d.targets, &o.targets);
        // A preservation never releases.
        if instrument.is_some_and(|i| i.action == model::Action::Preserve) {
            prop_assert!(d.released_fields().is_empty());
            prop_assert!(d.earliest_release.is_none());
        }
        if d.outcome == Outcome::Refused {
            prop_assert!(d.granted_fields().is_empty());
        }
        // The registry decides: claiming a judge never gets more than claiming one's real kind.
        if let Some(real) = f.issuer_kind {
            let mut honest = o.clone();
            honest.issuer.kind = real;
            let h = decide(&honest, &f, t0(), &[], &s, &dep, now);
            prop_assert!(d.granted_fields().is_subset(&h.granted_fields()));
        }
    }

    #[test]
    fn narrowing_never_widens(
        (o, f, dep, now) in arb_case(),
        keep in prop::collection::vec((prop::sample::select(Category::ALL.to_vec()), prop::sample::subsequence(CATALOGUE.iter().map(|s| s.id).collect::<Vec<_>>(), 0..=4)), 0..4),
    ) {
        let d = decide(&o, &f, t0(), &[], &set(), &dep, now);
        let request = NarrowingRequest {
            time_window: None,
            keep: keep.into_iter().map(|(category, fields)| KeepCategory { category, fields }).collect(),
            keep_targets: None,
            reason: "test".into(),
        };
        match narrow(&d, &request) {
            Ok(n) => {
                prop_assert!(n.granted_fields().is_subset(&d.granted_fields()));
                prop_assert!(n.released_fields().is_subset(&d.released_fields()));
                for (a, b) in d.categories.iter().zip(&n.categories) {
                    for (fa, fb) in a.fields.iter().zip(&b.fields) {
                        prop_assert!(fb.status == fa.status || fb.status == Deny);
                    }
                }
            }
            Err(e) => {
                // Refused only when something asked for is not granted.
                let widening = request.keep.iter().any(|k| {
                    d.category(k.category).is_none()
                        || k.fields.iter().any(|fl| !d.field_status(k.category, *fl).is_some_and(FieldStatus::grants))
                });
                prop_assert!(widening, "{}", e);
            }
        }
    }
}

#[test]
fn an_authority_issues_only_under_its_own_law() {
    let o = Order::from_json(ORDER_JSON).unwrap(); // an EPOC from a French prosecutor
    let mut f = facts(Prosecutor);
    f.issuer_country = Some("IN".into());
    let d = run(&o, &f);
    assert_eq!(d.outcome, Outcome::Refused);
    assert!(
        d.refusals
            .iter()
            .any(|r| r.code == ReasonCode::IssuerCountryMismatch),
        "{}",
        d.explain()
    );
    f.issuer_country = Some("DK".into());
    assert_eq!(
        run(&o, &f).outcome,
        Outcome::Refused,
        "Denmark is not bound by the e-Evidence Regulation"
    );
    let unknown = super::decide(
        &o,
        &facts(Prosecutor),
        t0(),
        &[],
        &set(),
        &deployment_for(&o.instrument),
        t0() + hours(1),
    );
    assert!(
        unknown
            .refusals
            .iter()
            .any(|r| r.code == ReasonCode::IssuerCountryUnknown)
    );
    // An Irish authority claiming to be French does not turn a domestic order into a binding one.
    f.issuer_country = Some("IE".into());
    let d = run(&o, &f);
    assert_eq!(
        d.binding.as_ref().map(|b| b.binding),
        Some(false),
        "{}",
        d.explain()
    );
}

#[test]
fn the_time_window_is_decided_and_can_only_shrink() {
    let o = Order::from_json(ORDER_JSON).unwrap();
    let d = run(&o, &facts(Prosecutor));
    let w = d.time_window.unwrap();
    let keep_all = vec![KeepCategory {
        category: Subscriber,
        fields: vec![FieldId::Username],
    }];
    let shorter = TimeWindow {
        from: w.from + TimeDelta::days(1),
        to: w.to - TimeDelta::days(1),
    };
    let request = |tw| NarrowingRequest {
        keep: keep_all.clone(),
        keep_targets: None,
        time_window: Some(tw),
        reason: "proportionality".into(),
    };
    assert_eq!(
        narrow(&d, &request(shorter)).unwrap().time_window,
        Some(shorter)
    );
    let longer = TimeWindow {
        from: w.from - TimeDelta::days(1),
        to: w.to,
    };
    assert_eq!(
        narrow(&d, &request(longer)),
        Err(NarrowError::TimeWindowNotInside)
    );
    // A window that ends before it starts is refused.
    let mut bad = o.clone();
    bad.time_window = Some(TimeWindow {
        from: w.to,
        to: w.from,
    });
    let d = run(&bad, &facts(Prosecutor));
    assert_eq!(d.outcome, Outcome::Refused);
    assert!(
        d.refusals
            .iter()
            .any(|r| r.code == ReasonCode::InvalidTimeWindow)
    );
}

// --- OpenAPI schemas: the utoipa derives must describe exactly what serde writes and reads. ---

/// The OpenAPI document of the policy types, as JSON, and its `components.schemas`.
fn api_schemas() -> serde_json::Map<String, serde_json::Value> {
    #[derive(utoipa::OpenApi)]
    #[openapi(components(schemas(Order, Decision, NarrowingRequest)))]
    struct PolicyDoc;
    let doc = serde_json::to_value(<PolicyDoc as utoipa::OpenApi>::openapi()).unwrap();
    doc["components"]["schemas"].as_object().unwrap().clone()
}

/// A small JSON-schema check covering the keywords the generated schemas use: `$ref`, `oneOf`,
/// `allOf`, `type`, `enum`, `minimum`/`maximum`, `format: date-time`, `required`, `properties`,
/// `additionalProperties: false` and `items`. Other keywords (descriptions, examples) are ignored.
fn conforms(
    schemas: &serde_json::Map<String, serde_json::Value>,
    schema: &serde_json::Value,
    value: &serde_json::Value,
    at: &str,
) -> Result<(), String> {
    use serde_json::Value;
    if let Some(Value::String(reference)) = schema.get("$ref") {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .ok_or_else(|| format!("{at}: foreign $ref {reference}"))?;
        let target = schemas
            .get(name)
            .ok_or_else(|| format!("{at}: dangling $ref {reference}"))?;
        return conforms(schemas, target, value, at);
    }
    if let Some(Value::Array(alternatives)) = schema.get("oneOf") {
        let matching = alternatives
            .iter()
            .filter(|s| conforms(schemas, s, value, at).is_ok())
            .count();
        if matching != 1 {
            return Err(format!(
                "{at}: {value} matches {matching} of the oneOf alternatives"
            ));
        }
    }
    if let Some(Value::Array(all)) = schema.get("allOf") {
        for s in all {
            conforms(schemas, s, value, at)?;
        }
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            other => return Err(format!("{at}: odd type {other}")),
        };
        let fits = |t: &str| match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        };
        if !types.iter().any(|t| fits(t)) {
            return Err(format!("{at}: {value} is not of type {types:?}"));
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            return Err(format!("{at}: {n} < minimum {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            return Err(format!("{at}: {n} > maximum {max}"));
        }
    }
    if let (Some("date-time"), Some(text)) =
        (schema.get("format").and_then(Value::as_str), value.as_str())
        && DateTime::parse_from_rfc3339(text).is_err()
    {
        return Err(format!("{at}: {text:?} is not an RFC 3339 date-time"));
    }
    if let Value::Object(object) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(name) {
                return Err(format!("{at}: required `{name}` is missing"));
            }
        }
        for (key, v) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(s) => conforms(schemas, s, v, &format!("{at}.{key}"))?,
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("{at}: `{key}` is not an allowed property"));
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            conforms(schemas, item_schema, v, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

fn schema_ref(name: &str) -> serde_json::Value {
    serde_json::json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn names(list: &serde_json::Value) -> std::collections::BTreeSet<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn keys(object: &serde_json::Value) -> std::collections::BTreeSet<String> {
    object
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

const EPOC_FIXTURE: &str = include_str!("../../tests/fixtures/orders/epoc-prosecutor.json");

#[test]
fn openapi_order_schema_matches_serde() {
    let schemas = api_schemas();
    let order_schema = &schemas["Order"];

    // Required is exactly what serde cannot default; the rest may be left out.
    assert_eq!(
        names(&order_schema["required"]),
        [
            "reference",
            "instrument",
            "issuer",
            "dates",
            "targets",
            "categories"
        ]
        .map(String::from)
        .into(),
    );
    // The properties are exactly the keys serde writes (it writes every field).
    let written =
        serde_json::to_value(order("eu.epoc", Prosecutor, &[Category::Subscriber])).unwrap();
    assert_eq!(keys(&order_schema["properties"]), keys(&written));
    // deny_unknown_fields is `additionalProperties: false` on every request struct.
    for name in [
        "Order",
        "Authority",
        "OrderDates",
        "Offence",
        "Emergency",
        "NonDisclosure",
        "IpTarget",
        "TimeWindow",
        "NarrowingRequest",
        "KeepCategory",
    ] {
        assert_eq!(
            schemas[name]["additionalProperties"],
            serde_json::Value::Bool(false),
            "{name}"
        );
    }

    // Target: one closed single-key object per variant, named as serde names them.
    let variants = schemas["Target"]["oneOf"].as_array().unwrap();
    let mut variant_keys = std::collections::BTreeSet::new();
    for v in variants {
        assert_eq!(
            v["additionalProperties"],
            serde_json::Value::Bool(false),
            "{v}"
        );
        let required = names(&v["required"]);
        assert_eq!(required.len(), 1, "{v}");
        assert_eq!(required, keys(&v["properties"]), "{v}");
        variant_keys.extend(required);
    }
    assert_eq!(
        variant_keys,
        ["user_id", "username", "phone_number", "ip"]
            .map(String::from)
            .into()
    );
    let ip = Target::Ip(IpTarget {
        address: "2001:db8::7".parse().unwrap(),
        port: None,
        timestamp: "2026-08-30T10:14:03+02:00".parse().unwrap(),
        time_zone: None,
    });
    for target in [
        Target::UserId("u-1".into()),
        Target::Username("alice".into()),
        Target::PhoneNumber("+33612345678".into()),
        ip,
    ] {
        let value = serde_json::to_value(&target).unwrap();
        conforms(&schemas, &schema_ref("Target"), &value, "target").unwrap();
    }

    // Unit enums list exactly what serde writes for each variant.
    let enum_values = |name: &str| -> Vec<serde_json::Value> {
        schemas[name]["enum"].as_array().unwrap().clone()
    };
    assert_eq!(
        enum_values("Category"),
        Category::ALL
            .iter()
            .map(|c| serde_json::to_value(c).unwrap())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        enum_values("FieldId"),
        CATALOGUE
            .iter()
            .map(|f| serde_json::to_value(f.id).unwrap())
            .collect::<Vec<_>>()
    );
    for kind in [
        IssuerKind::Judge,
        IssuerKind::Court,
        IssuerKind::InvestigatingJudge,
        IssuerKind::Prosecutor,
        IssuerKind::Police,
        IssuerKind::AdministrativeAuthority,
        IssuerKind::Ocda,
        IssuerKind::DesignatedSeniorOfficer,
    ] {
        assert!(
            enum_values("IssuerKind").contains(&serde_json::to_value(kind).unwrap()),
            "{kind}"
        );
    }
    assert_eq!(enum_values("IssuerKind").len(), 8);

    // NonDisclosureEnd: the string "open_ended" or a closed {"until": date-time}.
    for end in [NonDisclosureEnd::OpenEnded, NonDisclosureEnd::Until(t0())] {
        let value = serde_json::to_value(end).unwrap();
        conforms(&schemas, &schema_ref("NonDisclosureEnd"), &value, "ends").unwrap();
    }
    let bad_end = serde_json::json!({ "until": "2026-09-01T08:00:00Z", "extra": 1 });
    assert!(conforms(&schemas, &schema_ref("NonDisclosureEnd"), &bad_end, "ends").is_err());
    assert!(serde_json::from_value::<NonDisclosureEnd>(bad_end).is_err());

    // What the schema refuses, serde refuses too.
    let fixture: serde_json::Value = serde_json::from_str(EPOC_FIXTURE).unwrap();
    let mut refused = Vec::new();
    let mut unknown_key = fixture.clone();
    unknown_key["issuer"]["rank"] = "commissaire".into();
    refused.push(unknown_key);
    let mut two_key_target = fixture.clone();
    two_key_target["targets"][0]["user_id"] = "u-1".into();
    refused.push(two_key_target);
    let mut bad_category = fixture.clone();
    bad_category["categories"][0] = "location".into();
    refused.push(bad_category);
    let mut bad_port = fixture.clone();
    bad_port["targets"][1]["ip"]["port"] = 99999.into();
    refused.push(bad_port);
    for required in names(&order_schema["required"]) {
        let mut missing = fixture.clone();
        missing.as_object_mut().unwrap().remove(&required);
        refused.push(missing);
    }
    for value in refused {
        assert!(
            conforms(&schemas, &schema_ref("Order"), &value, "order").is_err(),
            "the schema accepts {value}"
        );
        assert!(
            serde_json::from_value::<Order>(value.clone()).is_err(),
            "serde accepts {value}"
        );
    }
    // What the schema accepts with only the required keys, serde accepts too.
    let mut minimal = fixture.clone();
    let required = names(&order_schema["required"]);
    minimal
        .as_object_mut()
        .unwrap()
        .retain(|k, _| required.contains(k));
    conforms(&schemas, &schema_ref("Order"), &minimal, "order").unwrap();
    serde_json::from_value::<Order>(minimal).unwrap();
}

#[test]
fn openapi_decision_schema_matches_what_serde_writes() {
    let schemas = api_schemas();
    // Decisions of many shapes: every instrument, normal and emergency, gagged until a date or
    // open-ended, refused for an unknown jurisdiction, and narrowed.
    let mut decisions = Vec::new();
    let mut instruments: Vec<String> = set().instruments().map(|(id, _)| id.to_owned()).collect();
    instruments.push("zz.unknown".into());
    for instrument in &instruments {
        for emergency in [false, true] {
            let mut o = order(
                instrument,
                IssuerKind::Prosecutor,
                &[
                    Category::Subscriber,
                    Category::Identification,
                    Category::IpHistory,
                    Category::Content,
                ],
            );
            if emergency {
                o.emergency = Some(Emergency {
                    justification: "threat to life".into(),
                });
                o.non_disclosure = Some(NonDisclosure {
                    ends: NonDisclosureEnd::Until(t0() + hours(24 * 90)),
                    legal_basis: Some("the provision".into()),
                });
            } else {
                o.non_disclosure = Some(NonDisclosure {
                    ends: NonDisclosureEnd::OpenEnded,
                    legal_basis: None,
                });
            }
            for kind in [
                IssuerKind::Prosecutor,
                IssuerKind::Police,
                IssuerKind::Judge,
            ] {
                decisions.push(run(&o, &facts(kind)));
            }
        }
    }
    let fixture = Order::from_json(EPOC_FIXTURE).unwrap();
    let d = run(&fixture, &facts(Prosecutor));
    let keep = NarrowingRequest {
        keep: vec![],
        keep_targets: None,
        time_window: None,
        reason: "not needed".into(),
    };
    decisions.push(narrow(&d, &keep).unwrap());
    decisions.push(d);

    let decision_schema = &schemas["Decision"];
    // Serde writes every field of a decision (null when empty), so every property is required.
    assert_eq!(
        names(&decision_schema["required"]),
        keys(&decision_schema["properties"])
    );
    let mut timings = std::collections::BTreeSet::new();
    for d in &decisions {
        let value = serde_json::to_value(d).unwrap();
        assert_eq!(keys(&value), keys(&decision_schema["properties"]));
        if let Err(e) = conforms(&schemas, &schema_ref("Decision"), &value, "decision") {
            panic!("{e}\n{value:#}");
        }
        for notice in value["user_notice"].as_array().unwrap() {
            timings.insert(match &notice["timing"] {
                serde_json::Value::String(s) => s.clone(),
                other => keys(other).into_iter().collect::<Vec<_>>().join(","),
            });
        }
    }
    // The check bites: a decision serde would not write does not fit.
    let good = serde_json::to_value(&decisions[0]).unwrap();
    let mut bad = Vec::new();
    for (pointer, replacement) in [
        ("/outcome", serde_json::json!("approved")),
        ("/received_at", serde_json::json!("yesterday")),
        (
            "/targets/0",
            serde_json::json!({ "user_id": "u-1", "username": "alice" }),
        ),
        ("/categories/0/fields/0/status", serde_json::json!("maybe")),
    ] {
        let mut v = good.clone();
        *v.pointer_mut(pointer).unwrap() = replacement;
        bad.push(v);
    }
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("gag");
    bad.push(missing);
    for v in bad {
        assert!(
            conforms(&schemas, &schema_ref("Decision"), &v, "decision").is_err(),
            "{v}"
        );
    }
    // The hand-written NoticeTiming schema was exercised on both of its shapes.
    assert!(timings.contains("not_before"), "{timings:?}");
    assert!(timings.len() > 1, "{timings:?}");
    // Every data-carrying schema a decision refers to is in the document.
    for name in [
        "Outcome",
        "Finding",
        "ReasonCode",
        "FieldDecision",
        "FieldStatus",
        "CategoryDecision",
        "Deadline",
        "ReleaseTime",
        "ValidationDue",
        "NoticeTiming",
        "NoticeDuty",
        "Notifier",
        "Gag",
        "Preservation",
        "Duty",
        "Binding",
        "Action",
        "FieldId",
        "Target",
        "IpTarget",
        "TimeWindow",
        "NonDisclosureEnd",
    ] {
        assert!(schemas.contains_key(name), "{name} missing");
    }
}

#[test]
fn epoc_fixture_round_trips_and_fits_the_order_schema() {
    let schemas = api_schemas();
    let fixture: serde_json::Value = serde_json::from_str(EPOC_FIXTURE).unwrap();
    let o: Order = serde_json::from_value(fixture.clone()).unwrap();
    let written = serde_json::to_value(&o).unwrap();
    assert_eq!(serde_json::from_value::<Order>(written.clone()).unwrap(), o);
    let properties = keys(&schemas["Order"]["properties"]);
    for key in keys(&fixture) {
        assert!(
            properties.contains(&key),
            "`{key}` is not in the Order schema"
        );
    }
    // Both the fixture and what serde writes back (with nulls for absent options) fit.
    conforms(&schemas, &schema_ref("Order"), &fixture, "fixture").unwrap();
    conforms(&schemas, &schema_ref("Order"), &written, "written").unwrap();
}

#[path = "provisions_tests.rs"]
mod provisions;

#[path = "scenario_tests.rs"]
mod scenarios;
