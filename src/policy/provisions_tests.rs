//! One test per provision the legal review of issue 17 found misread: each is named after the
//! provision and failed before the fix. docs/legal/<jurisdiction>.md lists them per instrument.

use super::*;

fn proven(issuer: IssuerKind, validator: IssuerKind) -> RegistryFacts {
    RegistryFacts {
        issuer_kind: Some(issuer),
        validator_kind: Some(validator),
        issuer_country: None,
        validation_signed_by_validator: true,
        earlier_preservations: 0,
    }
}

fn ip_target() -> Target {
    Target::Ip(IpTarget {
        address: "203.0.113.7".parse().unwrap(),
        port: Some(51234),
        timestamp: "2026-08-30T10:14:03+02:00".parse().unwrap(),
        time_zone: Some("Europe/Paris".into()),
    })
}

fn with_dep(o: &Order, f: &RegistryFacts, dep: &Deployment) -> Decision {
    decide(o, f, t0(), &[], &set(), dep, t0() + hours(1))
}

fn de(class: Option<ServiceClass>) -> Deployment {
    Deployment {
        service_class: class,
        ..deployment_for("de.x")
    }
}

fn field(d: &Decision, c: Category, f: FieldId) -> Option<FieldStatus> {
    d.field_status(c, f)
}

fn d_cite(d: &Decision) -> String {
    d.category(IpHistory)
        .and_then(|c| c.citation.clone())
        .unwrap_or_default()
}

fn purpose(kind: PurposeKind) -> Option<Purpose> {
    Some(Purpose {
        kind,
        statement: None,
    })
}

// ---- Wrong releases ----

#[test]
fn stpo_100j_does_not_reach_registration_ip() {
    let o = order("de.stpo_100j", Police, &[Subscriber]);
    let d = run(&o, &facts(Police));
    assert_eq!(field(&d, Subscriber, FieldId::PhoneNumber), Some(Permit));
    assert_eq!(field(&d, Subscriber, FieldId::RegistrationIp), Some(Deny));
    assert!(!d.released_fields().contains(&FieldId::RegistrationIp));
    // The access record is traffic data: §100j does not reach it for anyone.
    let mut o = order("de.stpo_100j", Judge, &[Ident]);
    o.targets = vec![ip_target()];
    assert_eq!(status(&run(&o, &facts(Judge)), Ident), Deny);
}

#[test]
fn stpo_100g_reaches_registration_ip_by_court_order_for_a_tkg_provider() {
    let o = order("de.stpo_100g", Court, &[Subscriber, IpHistory]);
    let d = with_dep(
        &o,
        &facts(Court),
        &de(Some(ServiceClass::InterpersonalCommunications)),
    );
    assert_eq!(d.outcome, Outcome::AcceptableForReview, "{}", d.explain());
    assert_eq!(field(&d, Subscriber, FieldId::RegistrationIp), Some(Permit));
    assert_eq!(field(&d, IpHistory, FieldId::RegistrationIp), Some(Permit));
    // Police never reach it under §100g.
    let police = with_dep(
        &order("de.stpo_100g", Police, &[Subscriber]),
        &facts(Police),
        &de(Some(ServiceClass::InterpersonalCommunications)),
    );
    assert!(police.released_fields().is_empty());
}

#[test]
fn tkg_or_tdddg_classification_picks_the_german_basis() {
    let o = order("de.stpo_100g", Court, &[IpHistory]);
    let digital = with_dep(&o, &facts(Court), &de(Some(ServiceClass::DigitalService)));
    assert_eq!(digital.outcome, Outcome::Refused);
    assert_eq!(digital.refusals[0].code, ReasonCode::WrongServiceClass);
    assert!(digital.refusals[0].text.contains("de.stpo_100k"));
    let k = with_dep(
        &order("de.stpo_100k", Court, &[IpHistory]),
        &facts(Court),
        &de(Some(ServiceClass::DigitalService)),
    );
    assert_eq!(k.outcome, Outcome::AcceptableForReview, "{}", k.explain());
    // Unset: a person checks the basis.
    let unset = with_dep(&o, &facts(Court), &de(None));
    assert_eq!(unset.outcome, Outcome::NeedsHumanJudgement);
    assert!(
        unset
            .review_flags
            .iter()
            .any(|f| f.code == ReasonCode::ServiceClassUnset)
    );
    // The provider's silence is cited by its classification, never as §100j(5).
    let j = with_dep(
        &order("de.stpo_100j", Police, &[Subscriber]),
        &facts(Police),
        &de(Some(ServiceClass::DigitalService)),
    );
    assert!(j.duties.iter().any(|d| d.citation.contains("TDDDG §24")));
    assert!(!j.duties.iter().any(|d| d.citation.contains("TKG §174")));
    assert!(!j.user_notice[0].citation.contains("§100j(5)"));
}

#[test]
fn usc_2703c2_subpoena_needs_a_statutory_basis() {
    let mut o = order("us.subpoena", Police, &[Subscriber]);
    o.statutory_basis = None;
    let none = run(&o, &facts(Police));
    assert_eq!(none.outcome, Outcome::Refused);
    assert!(none.refusals[0].text.contains("statutory_basis"));
    assert!(none.released_fields().is_empty());
    o.statutory_basis = Some(StatutoryBasis {
        kind: BasisKind::Other,
        statute: "a departmental letter".into(),
    });
    let other = run(&o, &facts(Police));
    assert_eq!(other.outcome, Outcome::NeedsHumanJudgement);
    assert!(
        other
            .review_flags
            .iter()
            .any(|f| f.code == ReasonCode::StatutoryBasisToJudge)
    );
    o.statutory_basis = Some(StatutoryBasis {
        kind: BasisKind::AdministrativeSubpoena,
        statute: "21 U.S.C. 876".into(),
    });
    assert_eq!(
        run(&o, &facts(Police)).outcome,
        Outcome::AcceptableForReview
    );
    // A grand jury subpoena is the prosecutor's (or the court's), not a police officer's.
    o.statutory_basis = Some(StatutoryBasis {
        kind: BasisKind::GrandJurySubpoena,
        statute: "Fed. R. Crim. P. 17".into(),
    });
    assert_eq!(
        run(&o, &facts(Police)).outcome,
        Outcome::NeedsHumanJudgement
    );
    o.issuer.kind = Prosecutor;
    assert_eq!(
        run(&o, &facts(Prosecutor)).outcome,
        Outcome::AcceptableForReview
    );
}

#[test]
fn cpp_77_1_1_preliminary_inquiry_police_need_the_prosecutors_authorisation() {
    let mut o = order("fr.requisition", Police, &[Subscriber]);
    o.procedural_framework = Some(ProceduralFramework::PreliminaryInquiry);
    let alone = run(&o, &facts(Police));
    assert!(alone.released_fields().is_empty(), "{}", alone.explain());
    o.validator = Some(authority(Prosecutor, "FR"));
    let authorised = run(&o, &proven(Police, Prosecutor));
    assert_eq!(status(&authorised, Subscriber), Permit);
    // An unproven authorisation goes to a person's check.
    assert_eq!(status(&run(&o, &facts(Police)), Subscriber), Pending);
    // The prosecutor requisitions directly.
    o.validator = None;
    assert_eq!(status(&run(&o, &facts(Prosecutor)), Subscriber), Permit);
}

#[test]
fn cpp_60_1_flagrance_and_99_3_commission_rogatoire() {
    let mut o = order("fr.requisition", Police, &[Subscriber]);
    assert_eq!(status(&run(&o, &facts(Police)), Subscriber), Permit);
    o.procedural_framework = Some(ProceduralFramework::JudicialInvestigation);
    assert_eq!(status(&run(&o, &facts(Police)), Subscriber), Deny);
    o.validator = Some(authority(InvestigatingJudge, "FR"));
    assert_eq!(
        status(&run(&o, &proven(Police, InvestigatingJudge)), Subscriber),
        Permit
    );
    // A prosecutor's authorisation is not a commission rogatoire.
    assert_eq!(
        status(&run(&o, &proven(Police, Prosecutor)), Subscriber),
        Deny
    );
    // Without a framework the requisition is incomplete.
    o.procedural_framework = None;
    let d = run(&o, &facts(InvestigatingJudge));
    assert_eq!(d.outcome, Outcome::Refused);
    assert!(d.refusals[0].text.contains("procedural_framework"));
}

#[test]
fn cpp_60_1_2_ip_target_subscriber_meets_the_connection_data_thresholds() {
    let mut o = order("fr.requisition", Police, &[Subscriber]);
    o.targets = vec![ip_target()];
    o.offence.as_mut().unwrap().max_custodial_months = Some(12);
    let d = run(&o, &facts(Police));
    assert!(d.released_fields().is_empty(), "{}", d.explain());
    o.offence.as_mut().unwrap().max_custodial_months = Some(36);
    assert_eq!(status(&run(&o, &facts(Police)), Subscriber), Permit);
    // Found from a user name, civil identity is open for any offence.
    o.targets = vec![Target::Username("alice".into())];
    o.offence.as_mut().unwrap().max_custodial_months = Some(6);
    let by_name = run(&o, &facts(Police));
    assert_eq!(
        field(&by_name, Subscriber, FieldId::PhoneNumber),
        Some(Permit)
    );
    assert_eq!(
        field(&by_name, Subscriber, FieldId::RegistrationIp),
        Some(Deny)
    );
}

#[test]
fn ipa_s60a_ip_resolution_is_events_data_for_crime() {
    let mut o = order("uk.ipa_part3", Police, &[Subscriber]);
    o.validator = Some(authority(Ocda, "GB"));
    o.targets = vec![ip_target()];
    o.offence.as_mut().unwrap().max_custodial_months = Some(6);
    let d = run(&o, &proven(Police, Ocda));
    assert!(d.released_fields().is_empty(), "{}", d.explain());
    o.offence.as_mut().unwrap().max_custodial_months = Some(12);
    assert_eq!(status(&run(&o, &proven(Police, Ocda)), Subscriber), Permit);
    // Found from a phone number, entity data for any crime.
    o.targets = vec![Target::PhoneNumber("+447700900123".into())];
    o.offence.as_mut().unwrap().max_custodial_months = Some(6);
    assert_eq!(status(&run(&o, &proven(Police, Ocda)), Subscriber), Permit);
}

#[test]
fn bnss_94_order_must_state_its_purpose_in_writing() {
    let mut o = order("in.bnss_94", Police, &[Subscriber]);
    o.purpose = purpose(PurposeKind::Crime);
    let d = run(&o, &facts(Police));
    assert_eq!(d.outcome, Outcome::Refused);
    assert!(d.refusals[0].text.contains("purpose.statement"));
    o.purpose = None;
    assert_eq!(run(&o, &facts(Police)).outcome, Outcome::Refused);
    o.purpose = Some(Purpose {
        kind: PurposeKind::Crime,
        statement: Some("the account sent the extortion messages".into()),
    });
    assert_eq!(
        run(&o, &facts(Police)).outcome,
        Outcome::AcceptableForReview
    );
}

// ---- Wrong refusals ----

#[test]
fn ipa_s60a_entity_data_from_an_account_target_beside_an_ip_target_for_minor_crime() {
    // Account and IP in one order, minor crime: the account's entity data is open (s.60A(7),
    // no seriousness test); resolving the IP is events data (s.86(2A)) and stays closed.
    let mut o = order("uk.ipa_part3", Police, &[Subscriber, Ident]);
    o.validator = Some(authority(Ocda, "GB"));
    o.targets = vec![Target::UserId("u-1001".into()), ip_target()];
    o.offence.as_mut().unwrap().max_custodial_months = Some(6);
    let d = run(&o, &proven(Police, Ocda));
    assert_eq!(
        field(&d, Subscriber, FieldId::UserId),
        Some(Permit),
        "{}",
        d.explain()
    );
    assert!(d.releases_for(Subscriber, FieldId::UserId, TargetKind::UserId));
    assert!(!d.releases_for(Subscriber, FieldId::UserId, TargetKind::Ip));
    assert!(!d.releases_for(Subscriber, FieldId::PhoneNumber, TargetKind::Ip));
    assert_eq!(status(&d, Ident), Deny);
    let sub = d.category(Subscriber).unwrap();
    let user_id = sub
        .fields
        .iter()
        .find(|f| f.field == FieldId::UserId)
        .unwrap();
    assert!(
        user_id.text.contains("targets of kind ip are not covered"),
        "{}",
        user_id.text
    );
    // Serious crime opens the IP resolution too: the grant then covers every target.
    o.offence.as_mut().unwrap().max_custodial_months = Some(12);
    let d = run(&o, &proven(Police, Ocda));
    assert!(
        d.releases_for(Subscriber, FieldId::UserId, TargetKind::Ip),
        "{}",
        d.explain()
    );
    assert!(d.releases_for(Subscriber, FieldId::UserId, TargetKind::UserId));
    // A narrowing keeps the restriction: it never widens a grant to other kinds of target.
    let mut o = o.clone();
    o.offence.as_mut().unwrap().max_custodial_months = Some(6);
    let d = run(&o, &proven(Police, Ocda));
    let n = crate::policy::narrow(
        &d,
        &crate::policy::NarrowingRequest {
            keep: vec![crate::policy::KeepCategory {
                category: Subscriber,
                fields: vec![FieldId::UserId],
            }],
            keep_targets: None,
            time_window: None,
            reason: "only the id".into(),
        },
    )
    .unwrap();
    assert!(n.releases_for(Subscriber, FieldId::UserId, TargetKind::UserId));
    assert!(!n.releases_for(Subscriber, FieldId::UserId, TargetKind::Ip));
}

#[test]
fn ipa_s60a7_purposes_beyond_crime_need_no_offence() {
    let mut o = order("uk.ipa_part3", Police, &[Subscriber, IpHistory, Ident]);
    o.validator = Some(authority(Ocda, "GB"));
    o.offence = None;
    o.targets = vec![ip_target()];
    for kind in [
        PurposeKind::PreventingDeathOrInjury,
        PurposeKind::MissingOrVulnerablePerson,
        PurposeKind::NationalSecurity,
    ] {
        o.purpose = purpose(kind);
        let d = run(&o, &proven(Police, Ocda));
        assert_eq!(d.outcome, Outcome::AcceptableForReview, "{}", d.explain());
        assert!(d.released_fields().contains(&FieldId::IpEventIp));
    }
    // Crime purposes keep the serious-crime test for events data.
    o.purpose = purpose(PurposeKind::Crime);
    assert!(run(&o, &proven(Police, Ocda)).released_fields().is_empty());
}

#[test]
fn ipa_s86_2a_takes_s263_serious_crime_conduct() {
    let mut o = order("uk.ipa_part3", Police, &[IpHistory]);
    o.validator = Some(authority(Ocda, "GB"));
    o.offence.as_mut().unwrap().max_custodial_months = Some(6);
    assert_eq!(status(&run(&o, &proven(Police, Ocda)), IpHistory), Deny);
    o.offence.as_mut().unwrap().codes = vec!["uk.ipa_s263_serious_crime".into()];
    assert_eq!(status(&run(&o, &proven(Police, Ocda)), IpHistory), Permit);
}

#[test]
fn ipa_s61_non_urgent_dso_and_s61a_urgent_lapse_after_3_days() {
    let mut o = order("uk.ipa_part3", Police, &[Subscriber]);
    o.validator = Some(authority(DesignatedSeniorOfficer, "GB"));
    o.purpose = purpose(PurposeKind::NationalSecurity);
    let f = proven(Police, DesignatedSeniorOfficer);
    assert_eq!(status(&run(&o, &f), Subscriber), Permit);
    // A DSO authorises crime purposes only when urgent ...
    o.purpose = purpose(PurposeKind::Crime);
    assert_eq!(status(&run(&o, &f), Subscriber), Deny);
    o.emergency = Some(Emergency {
        justification: "kidnap in progress".into(),
    });
    assert_eq!(status(&run(&o, &f), Subscriber), Permit);
    // ... and the urgent authorisation lapses three days after it was given.
    o.dates.validated_at = Some(t0() - hours(73));
    let late = run(&o, &f);
    assert_eq!(status(&late, Subscriber), Deny);
    assert_eq!(
        late.category(Subscriber).unwrap().reason,
        ReasonCode::AuthorisationLapsed
    );
    // A validation time after receipt is a claim that cannot stretch the three days.
    o.dates.validated_at = Some(t0() + hours(70));
    let stretched = decide(
        &o,
        &f,
        t0(),
        &[],
        &set(),
        &deployment_for("uk.x"),
        t0() + hours(73),
    );
    assert_eq!(status(&stretched, Subscriber), Deny);
    // The authorising body is a separate party: a force is not an OCDA.
    let mut direct = order("uk.ipa_part3", Ocda, &[Subscriber]);
    direct.validator = None;
    assert!(run(&direct, &facts(Police)).released_fields().is_empty());
}

#[test]
fn ipa_s77_journalistic_source_needs_judicial_commissioner_approval() {
    let mut o = order("uk.ipa_part3", Police, &[Subscriber]);
    o.validator = Some(authority(Ocda, "GB"));
    o.journalistic_source = true;
    assert!(run(&o, &proven(Police, Ocda)).released_fields().is_empty());
    o.validator = Some(authority(Judge, "GB"));
    assert_eq!(status(&run(&o, &proven(Police, Judge)), Subscriber), Permit);
}

#[test]
fn cpp_60_1_2_4_missing_persons_and_2_sole_aim_stated() {
    let mut o = order("fr.requisition", Police, &[IpHistory]);
    o.offence.as_mut().unwrap().max_custodial_months = Some(0);
    assert_eq!(status(&run(&o, &facts(Police)), IpHistory), Deny);
    o.purpose = purpose(PurposeKind::MissingOrVulnerablePerson);
    let d = run(&o, &facts(Police));
    assert_eq!(status(&d, IpHistory), Permit);
    assert!(
        d.category(IpHistory)
            .unwrap()
            .citation
            .as_deref()
            .unwrap()
            .contains("4°")
    );
    // 2°: one year, over a network, and the requisition states its sole aim.
    let mut o = order("fr.requisition", Police, &[Ident]);
    o.targets = vec![ip_target()];
    o.offence.as_mut().unwrap().max_custodial_months = Some(12);
    o.offence.as_mut().unwrap().over_network = Some(true);
    assert_eq!(status(&run(&o, &facts(Police)), Ident), Deny);
    o.sole_aim_identification = Some(true);
    let d = run(&o, &facts(Police));
    assert_eq!(status(&d, Ident), Permit);
    assert!(
        d.category(Ident)
            .unwrap()
            .citation
            .as_deref()
            .unwrap()
            .contains("2°")
    );
}

#[test]
fn epoc_art_10_6_incomplete_order_gets_a_clarification_request() {
    let mut o = order("eu.epoc", Judge, &[Subscriber]);
    o.addressee = None;
    o.issuer.file_number = None;
    let d = run(&o, &facts(Judge));
    assert_eq!(d.outcome, Outcome::ClarificationNeeded, "{}", d.explain());
    let c = d.clarification.as_ref().unwrap();
    assert_eq!(c.missing, vec!["issuer.file_number", "addressee"]);
    assert!(d.refusals.is_empty());
    assert!(d.released_fields().is_empty());
    assert!(d.explain().contains("CLARIFICATION NEEDED"));
}

#[test]
fn epoc_annex_i_if_applicable_boxes_are_not_required() {
    let mut o = order("eu.epoc", Judge, &[Subscriber]);
    o.time_window = None;
    o.receiving_authority = None;
    o.offence.as_mut().unwrap().max_custodial_months = None;
    let d = run(&o, &facts(Judge));
    assert_eq!(d.outcome, Outcome::AcceptableForReview, "{}", d.explain());
}

#[test]
fn epoc_art_5_4_d_execution_of_a_sentence() {
    let mut o = order("eu.epoc", Judge, &[IpHistory]);
    o.purpose = purpose(PurposeKind::ExecutingSentence);
    o.offence.as_mut().unwrap().max_custodial_months = Some(36);
    o.offence.as_mut().unwrap().sentence_imposed_months = Some(6);
    assert_eq!(status(&run(&o, &facts(Judge)), IpHistory), Permit);
    assert!(
        d_cite(&run(&o, &facts(Judge))).contains("5(4)(d)"),
        "the execution of a sentence is decided under (d)"
    );
    // The sentence imposed must be at least four months, whatever the offence ...
    o.offence.as_mut().unwrap().sentence_imposed_months = Some(3);
    assert_eq!(status(&run(&o, &facts(Judge)), IpHistory), Deny);
    o.offence.as_mut().unwrap().max_custodial_months = Some(24);
    // ... and for an offence of (a)-(c): a 6-month sentence for a minor offence reaches nothing.
    o.offence.as_mut().unwrap().sentence_imposed_months = Some(6);
    assert_eq!(status(&run(&o, &facts(Judge)), IpHistory), Deny);
}

#[test]
fn stpo_101a_exigent_prosecutor_order_needs_court_confirmation_in_3_working_days() {
    let mut o = order("de.stpo_100g", Prosecutor, &[IpHistory]);
    o.emergency = Some(Emergency {
        justification: "Gefahr im Verzug".into(),
    });
    // Issued on a Friday: three working days later is the Wednesday.
    o.dates.issued_at = "2026-09-04T10:00:00Z".parse().unwrap();
    let dep = de(Some(ServiceClass::InterpersonalCommunications));
    let received: DateTime<Utc> = "2026-09-04T11:00:00Z".parse().unwrap();
    let d = decide(
        &o,
        &facts(Prosecutor),
        received,
        &[],
        &set(),
        &dep,
        received,
    );
    assert_eq!(status(&d, IpHistory), Permit, "{}", d.explain());
    assert_eq!(d.outcome, Outcome::NeedsHumanJudgement);
    let due = d.validation_due.as_ref().unwrap();
    assert_eq!(
        due.due,
        "2026-09-09T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert!(due.citation.contains("§100e(1)"));
    // Not an emergency: the prosecutor needs the court.
    o.emergency = None;
    assert_eq!(
        status(
            &decide(
                &o,
                &facts(Prosecutor),
                received,
                &[],
                &set(),
                &dep,
                received
            ),
            IpHistory
        ),
        Deny
    );
}

// ---- Wrong periods ----

#[test]
fn epoc_pr_annex_v_and_vi_keep_the_hold() {
    let mut o = order("eu.epoc_pr", Judge, &[Subscriber]);
    let day = |d: i64| t0() + hours(24 * d);
    let at = |o: &Order, now| {
        decide(
            o,
            &facts(Judge),
            t0(),
            &[],
            &set(),
            &deployment_for("eu"),
            now,
        )
    };
    // Without events, the hold ends after 60 days.
    assert_eq!(at(&o, day(61)).outcome, Outcome::Refused);
    // An Annex VI request received in time extends it by 30 days, once.
    o.extension_requested_at = vec![day(50), day(55)];
    let extended = at(&o, day(61));
    let p = extended.preservation.as_ref().unwrap();
    assert_eq!(p.expires_at, day(90));
    assert_eq!(p.max_extensions, 0);
    // An Annex V notice received in time keeps the hold until the production order arrives.
    o.extension_requested_at = vec![];
    o.follow_up_notified_at = Some(day(59));
    let kept = at(&o, day(200));
    assert_ne!(kept.outcome, Outcome::Refused, "{}", kept.explain());
    assert!(kept.preservation.as_ref().unwrap().until_follow_up);
    // One received after the hold ended revives nothing.
    o.follow_up_notified_at = Some(day(61));
    assert_eq!(at(&o, day(62)).outcome, Outcome::Refused);
}

#[test]
fn usc_2703f_one_renewal_across_requests_for_the_same_target() {
    let o = order("us.preservation", Police, &[Subscriber]);
    let mut f = facts(Police);
    f.earlier_preservations = 1;
    let renewed = run(&o, &f);
    assert_eq!(renewed.outcome, Outcome::AcceptableForReview);
    let p = renewed.preservation.as_ref().unwrap();
    assert_eq!(p.expires_at, t0() + hours(24 * 90));
    assert_eq!(p.max_extensions, 0);
    f.earlier_preservations = 2;
    let third = run(&o, &f);
    assert_eq!(third.outcome, Outcome::Refused);
    assert_eq!(
        third.refusals[0].code,
        ReasonCode::PreservationRenewalsExhausted
    );
}

#[test]
fn marco_civil_a_preservation_period_is_read_only_on_a_preservation_instrument() {
    let text = r#"
jurisdiction = "br"
name = "Brazil"
[[instrument]]
id = "br.x"
name = "x"
citation = "c"
action = "produce"
[instrument.binding]
binds_provider_in = ["BR"]
citation = "c"
[instrument.user_notice]
informs = "nobody"
provider_may_inform = false
non_disclosure = "delays"
citation = "c"
[instrument.preservation]
period = "180d"
citation = "c"
"#;
    let err = PolicySet::from_sources(&[("br.toml", text)]).unwrap_err();
    assert!(err.to_string().contains("preservation instrument"), "{err}");
}

// ---- Citations ----

#[test]
fn citations_name_the_right_provisions() {
    let s = set();
    let cite = |id: &str| s.instrument(id).unwrap();
    let epoc = cite("eu.epoc");
    assert!(epoc.deadline.as_ref().unwrap().citation.contains("10(3)"));
    assert!(epoc.user_notice.citation.contains("13(4)"));
    let pr = cite("eu.epoc_pr");
    assert!(!pr.user_notice.citation.contains("13(1) (the issuing"));
    assert_eq!(pr.user_notice.informs, Notifier::Nobody);
    let uk = cite("uk.ipa_part3");
    assert!(!uk.citation.contains("87") && !uk.binding.citation.contains("s.97"));
    assert!(uk.binding.citation.contains("s.85"));
    assert!(uk.deadline.as_ref().unwrap().citation.contains("2025"));
    for (id, i) in s.instruments() {
        for r in &i.rules {
            assert!(!r.citation.contains("60-1-2, 3°"), "{id}");
        }
    }
    // GDPR Art 48 is for third-country orders, never a member state's own.
    let fr = order("fr.requisition", Police, &[Subscriber]);
    let dep = Deployment {
        establishment: "IE".into(),
        ..deployment_for("fr.x")
    };
    let d = with_dep(&fr, &facts(Police), &dep);
    assert!(!d.binding.as_ref().unwrap().binding);
    assert!(!d.explain().contains("Art 48"));
    let us = order("us.subpoena", Police, &[Subscriber]);
    assert!(
        with_dep(&us, &facts(Police), &dep)
            .explain()
            .contains("Art 48")
    );
}

// ---- Missing instruments and outcomes ----

#[test]
fn fr_preservation_needs_the_judges_authorisation_and_never_releases() {
    let mut o = order("fr.preservation", Police, &[Subscriber, IpHistory]);
    assert!(run(&o, &facts(Police)).granted_fields().is_empty());
    o.validator = Some(authority(Judge, "FR"));
    let d = run(&o, &proven(Police, Judge));
    assert_eq!(status(&d, IpHistory), Preserve);
    assert!(d.released_fields().is_empty());
    assert_eq!(
        d.preservation.as_ref().unwrap().expires_at,
        t0() + hours(24 * 365)
    );
}

#[test]
fn marco_civil_art_15_2_preservation_without_a_court() {
    let o = order("br.preservation", Police, &[IpHistory]);
    let d = run(&o, &facts(Police));
    assert_eq!(status(&d, IpHistory), Preserve);
    assert_eq!(d.follow_ups.len(), 1);
    assert_eq!(d.follow_ups[0].due, Some(t0() + hours(24 * 60)));
    assert!(!d.user_notice[0].provider_may_inform);
    // Art 11 §2: binding on a provider abroad that offers its service in Brazil.
    let abroad = Deployment {
        establishment: "IE".into(),
        offers_service_in: vec!["BR".into()],
        ..deployment_for("br.x")
    };
    assert!(
        with_dep(&o, &facts(Police), &abroad)
            .binding
            .unwrap()
            .binding
    );
}

#[test]
fn epoc_art_10_5_and_17_objections_are_offered() {
    let d = run(&order("eu.epoc", Judge, &[Subscriber]), &facts(Judge));
    let codes: Vec<&str> = d.objections.iter().map(|o| o.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "immunity_privilege_or_press_freedom",
            "conflict_with_third_country_law"
        ]
    );
    assert!(d.objections[1].citation.contains("Art 17"));
    assert!(d.explain().contains("Objections"));
}

#[test]
fn usc_2709_nsl_reaches_only_name_and_length_of_service() {
    let mut o = order("us.nsl", Police, &[Subscriber, IpHistory]);
    o.purpose = purpose(PurposeKind::NationalSecurity);
    let d = run(&o, &facts(Police));
    assert_eq!(
        d.released_fields(),
        [
            FieldId::Username,
            FieldId::AccountCreatedAt,
            FieldId::AccountStatus
        ]
        .into()
    );
    o.purpose = purpose(PurposeKind::Crime);
    assert!(run(&o, &facts(Police)).released_fields().is_empty());
}

#[test]
fn usc_2523_cloud_act_agreement_orders_are_voluntary_and_from_partners_only() {
    let mut o = order("us.cloud_act_agreement", Judge, &[Subscriber]);
    o.issuer.country = "GB".into();
    let d = run(&o, &facts(Judge));
    assert_eq!(d.outcome, Outcome::NeedsHumanJudgement, "{}", d.explain());
    assert!(d.released_fields().contains(&FieldId::PhoneNumber));
    o.issuer.country = "FR".into();
    assert_eq!(
        run(&o, &facts(Judge)).refusals[0].code,
        ReasonCode::IssuerCountryMismatch
    );
}

#[test]
fn usc_2702c4_emergency_disclosure_has_a_follow_up_task() {
    let mut o = order("us.emergency", Police, &[Subscriber]);
    o.emergency = Some(Emergency {
        justification: "threat to life".into(),
    });
    let d = run(&o, &facts(Police));
    assert_eq!(d.follow_ups.len(), 1);
    assert!(d.follow_ups[0].text.contains("legal process"));
}

#[test]
fn dsa_art_10_5_national_secrecy_delays_the_notice_instead_of_conflicting() {
    let o = order("fr.requisition", Police, &[Subscriber]);
    let dep = Deployment {
        dsa_intermediary: true,
        ..deployment_for("fr.x")
    };
    let d = with_dep(&o, &facts(Police), &dep);
    assert!(
        !d.review_flags
            .iter()
            .any(|f| f.code == ReasonCode::NoticeConflict),
        "{}",
        d.explain()
    );
    assert_eq!(d.outcome, Outcome::AcceptableForReview);
    let overlay = d
        .user_notice
        .iter()
        .find(|n| n.provider_must_inform)
        .unwrap();
    assert_eq!(overlay.timing, NoticeTiming::WhenGagLifted);
}

#[test]
fn explain_shows_the_new_inputs() {
    let mut o = order("fr.requisition", Police, &[Subscriber]);
    o.sole_aim_identification = Some(true);
    let text = run(&o, &facts(Police)).explain();
    for needle in [
        "purpose: crime",
        "procedural framework: flagrant_offence",
        "sole aim of identifying the author: stated",
        "target kinds: user_id",
        "urgency: not urgent",
    ] {
        assert!(text.contains(needle), "{needle}\n{text}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// No field is reached without a citation, and every order-level refusal or flag that
    /// names a rule names its basis.
    #[test]
    fn no_field_is_reached_without_a_citation((o, f, dep, now) in arb_case()) {
        let d = decide(&o, &f, t0(), &[], &set(), &dep, now);
        for c in &d.categories {
            for field in &c.fields {
                if field.status.grants() {
                    prop_assert!(field.citation.as_deref().is_some_and(|c| !c.trim().is_empty()), "{:?}", field);
                }
            }
            if c.status.grants() {
                prop_assert!(c.citation.is_some());
            }
        }
    }
}

/// Every instrument and overlay is explained in docs/legal/<jurisdiction>.md, and every file
/// there states its open questions and the cases its tests check.
#[test]
fn every_instrument_is_explained_in_docs_legal() {
    let s = set();
    let doc = |j: &str| {
        let path = format!("{}/docs/legal/{j}.md", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    for j in s.jurisdictions() {
        let text = doc(j);
        assert!(text.contains("## Open questions"), "{j}.md");
        assert!(text.contains("## Cases the tests check"), "{j}.md");
    }
    for (id, _) in s.instruments() {
        let j = id.split('.').next().unwrap();
        assert!(
            doc(j).contains(&format!("`{id}`")),
            "{id} is not in docs/legal/{j}.md"
        );
    }
    for o in s.overlays() {
        let id = o.id.get_ref();
        let j = id.split('.').next().unwrap();
        assert!(doc(j).contains(&format!("`{id}`")), "{id}");
    }
}
