//! The policy file loader: `policy::PolicySet::from_sources` (what `load_dir` and
//! `writ policy check` run on the files' text).
//!
//! Input: one or more files separated by NUL bytes; each is its file name on the first line,
//! then its TOML text.
//!
//! Beyond "no panic": an error names a line inside its file; a loaded set has the same id
//! whatever order its files come in, and the engine decides the project's fixture order under
//! it without panicking, with a decision that survives the JSON round trip.
#![no_main]

use chrono::{DateTime, TimeDelta, Utc};
use libfuzzer_sys::fuzz_target;
use writ::policy::{Decision, Deployment, Order, PolicyError, PolicySet, RegistryFacts, decide};

const ORDER: &str = include_str!("../../tests/fixtures/orders/epoc-prosecutor.json");

fuzz_target!(|data: &[u8]| {
    let mut files: Vec<(&str, &str)> = Vec::new();
    for chunk in data.split(|b| *b == 0).take(16) {
        let Ok(text) = std::str::from_utf8(chunk) else {
            return;
        };
        let (name, body) = text.split_once('\n').unwrap_or((text, ""));
        files.push((name, body));
    }
    let set = match PolicySet::from_sources(&files) {
        Ok(set) => set,
        Err(PolicyError::Invalid {
            file,
            line,
            message,
        }) => {
            let Some((_, text)) = files.iter().find(|(n, _)| *n == file) else {
                panic!("error names a file that was not given: {file}");
            };
            let lines = text.split('\n').count();
            assert!(
                line >= 1 && line <= lines,
                "{file}:{line} is outside its {lines} lines: {message}"
            );
            assert!(!message.is_empty());
            return;
        }
        Err(e) => panic!("unexpected error kind: {e}"),
    };
    let mut reversed = files.clone();
    reversed.reverse();
    let again = PolicySet::from_sources(&reversed).unwrap();
    assert_eq!(again.id(), set.id(), "the set id depends on file order");

    let Ok(mut order) = Order::from_json(ORDER) else {
        panic!("fixture order does not parse");
    };
    let received: DateTime<Utc> = DateTime::from_timestamp(1_772_366_400, 0).unwrap();
    let now = received + TimeDelta::days(1);
    // The fixture under every instrument of the fuzzed set, for every jurisdiction's deployment.
    let instruments: Vec<String> = set
        .instruments()
        .map(|(id, _)| id.to_owned())
        .take(8)
        .collect();
    for instrument in instruments {
        order.instrument = instrument;
        let facts = RegistryFacts {
            issuer_kind: Some(order.issuer.kind),
            validator_kind: order.validator.as_ref().map(|v| v.kind),
            issuer_country: Some(order.issuer.country.clone()),
            validation_signed_by_validator: true,
            earlier_preservations: 0,
        };
        for establishment in ["IE", "US", "GB"] {
            let deployment = Deployment {
                establishment: establishment.into(),
                legal_representative_in: vec!["FR".into(), "DE".into(), "BR".into()],
                dsa_intermediary: true,
                service_class: None,
                offers_service_in: vec![],
            };
            let decision = decide(&order, &facts, received, &[], &set, &deployment, now);
            let json = serde_json::to_string(&decision).unwrap();
            let back: Decision = serde_json::from_str(&json)
                .unwrap_or_else(|e| panic!("decision does not re-read: {e}\n{json}"));
            assert_eq!(back, decision);
            let _ = decision.explain();
        }
    }
});
