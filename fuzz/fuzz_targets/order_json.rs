//! The order JSON of `POST /api/v1/orders`: `orders::validate::check_order`, then the policy
//! engine on what it accepts.
//!
//! Beyond "no panic": an accepted order re-serialises and re-checks to the same order; a
//! refusal names at least one field, each under `order`; the engine's decision survives the
//! JSON round trip it takes through the database (an order view re-reads it), and explains.
#![no_main]

use std::sync::OnceLock;

use chrono::{DateTime, TimeDelta, Utc};
use libfuzzer_sys::fuzz_target;
use writ::orders::validate::check_order;
use writ::policy::{Decision, Deployment, Pause, PolicySet, RegistryFacts, decide};

fn policies() -> &'static PolicySet {
    static SET: OnceLock<PolicySet> = OnceLock::new();
    SET.get_or_init(|| PolicySet::builtin().unwrap())
}

fn deployments() -> [Deployment; 2] {
    [
        Deployment {
            establishment: "IE".into(),
            legal_representative_in: vec!["FR".into(), "DE".into()],
            dsa_intermediary: true,
            service_class: None,
            offers_service_in: vec![],
        },
        Deployment {
            establishment: "US".into(),
            legal_representative_in: vec!["GB".into(), "BR".into(), "IN".into()],
            dsa_intermediary: false,
            service_class: None,
            offers_service_in: vec![],
        },
    ]
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let order = match check_order(raw, "order") {
        Ok(order) => order,
        Err(errors) => {
            assert!(!errors.is_empty(), "a refusal names no field");
            for e in &errors {
                assert!(
                    e.field == "order"
                        || e.field.starts_with("order.")
                        || e.field.starts_with("order["),
                    "field path outside the order: {e:?}"
                );
                assert!(!e.message.is_empty(), "empty message for {}", e.field);
            }
            return;
        }
    };
    let again = serde_json::to_string(&order).unwrap();
    match check_order(&again, "order") {
        Ok(reparsed) => assert_eq!(reparsed, order, "re-serialised order differs: {again}"),
        Err(e) => panic!("accepted order refused once re-serialised: {e:?}\n{again}"),
    }

    // The registry agrees with what the order claims, so the engine goes past the sender check.
    let facts = RegistryFacts {
        issuer_kind: Some(order.issuer.kind),
        validator_kind: order.validator.as_ref().map(|v| v.kind),
        issuer_country: Some(order.issuer.country.clone()),
        validation_signed_by_validator: order.validator.is_some(),
        earlier_preservations: 0,
    };
    let received: DateTime<Utc> = DateTime::from_timestamp(1_772_366_400, 0).unwrap(); // 2026-03-01
    let now = received + TimeDelta::days(2);
    let pauses = [Pause {
        from: received + TimeDelta::hours(3),
        to: Some(received + TimeDelta::hours(20)),
    }];
    for deployment in deployments() {
        for pauses in [&pauses[..], &[]] {
            let decision = decide(
                &order,
                &facts,
                received,
                pauses,
                policies(),
                &deployment,
                now,
            );
            let json = serde_json::to_string(&decision).unwrap();
            let back: Decision = serde_json::from_str(&json)
                .unwrap_or_else(|e| panic!("a stored decision does not re-read: {e}\n{json}"));
            assert_eq!(back, decision, "decision changed through JSON");
            let _ = decision.explain();
        }
    }
});
