//! The policy engine from the outside: `writ policy check|explain`, and the policy set recorded
//! in the audit log whenever it changes.

use writ::policy::PolicySet;

use crate::both_backends;
use crate::cli::writ_for;
use crate::helpers::{Backend, TestDb, spawn_with_settings};

const ORDER: &str = include_str!("../fixtures/orders/epoc-prosecutor.json");

#[test]
fn policy_check_accepts_the_shipped_set_and_names_file_and_line_of_a_broken_one() {
    let db = TestDb::new(Backend::Sqlite);
    let out = writ_for(&db, &[])
        .args(["policy", "check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("19 instrument(s)") && text.contains(PolicySet::builtin().unwrap().id()),
        "{text}"
    );

    let dir = db.dir().join("policies");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, body) in writ::policy::BUILTIN {
        std::fs::write(dir.join(name), body).unwrap();
    }
    let us = std::fs::read_to_string(dir.join("us.toml")).unwrap();
    let broken = us.replacen("period = \"90d\"", "period = \"ninety days\"", 1);
    let line = broken
        .lines()
        .position(|l| l.contains("ninety days"))
        .unwrap()
        + 1;
    std::fs::write(dir.join("us.toml"), broken).unwrap();
    let out = writ_for(&db, &[])
        .args(["policy", "check", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains(&format!("us.toml:{line}")),
        "names file and line {line}: {err}"
    );
}

#[test]
fn policy_explain_answers_with_citations_for_every_shipped_instrument() {
    let db = TestDb::new(Backend::Sqlite);
    let set = PolicySet::builtin().unwrap();
    for (id, spec) in set.instruments() {
        let order = ORDER.replace("\"eu.epoc\"", &format!("\"{id}\""));
        let country = match id.split('.').next().unwrap() {
            "eu" => "FR".to_owned(),
            "uk" => "GB".to_owned(),
            other => other.to_uppercase(),
        };
        let path = db.dir().join(format!("{id}.json"));
        std::fs::write(&path, order).unwrap();
        let out = writ_for(&db, &[])
            .args([
                "policy",
                "explain",
                path.to_str().unwrap(),
                "--issuer-kind",
                "judge",
                "--issuer-country",
                &country,
                "--now",
                "2026-09-01T09:00:00Z",
                "--received-at",
                "2026-09-01T08:00:00Z",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(text.contains("Outcome:"), "{id}: {text}");
        assert!(
            !text.contains("does not record the issuing authority's country"),
            "{id}: {text}"
        );
        assert!(
            text.contains(&spec.citation),
            "{id} cites its legal basis: {text}"
        );
    }
    // Without registry facts the issuer is unregistered: refused, whatever the order claims.
    let path = db.dir().join("epoc.json");
    std::fs::write(&path, ORDER).unwrap();
    let out = writ_for(&db, &[])
        .args(["policy", "explain", path.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let decision: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decision["outcome"], "refused");
    // A malformed order names the field.
    std::fs::write(&path, ORDER.replace("\"categories\"", "\"categorys\"")).unwrap();
    let out = writ_for(&db, &[])
        .args(["policy", "explain", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("categorys"));
}

/// `writ policy explain` shows the order's stated inputs, the authorising party, the outcome
/// with what a clarification must supply, and the open questions.
#[test]
fn policy_explain_shows_the_legal_inputs_and_the_clarification() {
    let db = TestDb::new(Backend::Sqlite);
    let requisition = serde_json::json!({
        "reference": "PV-2026-77",
        "instrument": "fr.requisition",
        "issuer": {"kind": "police", "person": "OPJ Martin", "authority": "PJ Lyon", "country": "FR"},
        "validator": {"kind": "prosecutor", "person": "M. Dupont", "authority": "Parquet de Paris", "country": "FR"},
        "dates": {"issued_at": "2026-09-01T06:00:00Z"},
        "legal_provisions": ["CPP art 77-1-1"],
        "redress": "Chambre de l'instruction",
        "procedural_framework": "preliminary_inquiry",
        "sole_aim_identification": true,
        "offence": {"description": "harassment", "max_custodial_months": 24, "over_network": true},
        "targets": [{"ip": {"address": "203.0.113.7", "port": 51234, "timestamp": "2026-08-30T10:14:03+02:00"}}],
        "categories": ["subscriber"]
    });
    let path = db.dir().join("requisition.json");
    std::fs::write(&path, requisition.to_string()).unwrap();
    let explain = |path: &std::path::Path, kind: &str, country: &str, extra: &[&str]| {
        let out = writ_for(&db, &[])
            .args(["policy", "explain", path.to_str().unwrap()])
            .args(["--issuer-kind", kind, "--issuer-country", country])
            .args(["--now", "2026-09-01T09:00:00Z"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let text = explain(
        &path,
        "police",
        "FR",
        &["--validator-kind", "prosecutor", "--validation-signed"],
    );
    for needle in [
        "Stated inputs:",
        "procedural framework: preliminary_inquiry",
        "sole aim of identifying the author: stated",
        "target kinds: ip",
        "authorising or validating party (claimed): Parquet de Paris (prosecutor)",
        "60-1-2, 2°",
        "Open questions",
    ] {
        assert!(text.contains(needle), "{needle}:\n{text}");
    }
    let mut epoc: serde_json::Value = serde_json::from_str(ORDER).unwrap();
    epoc.as_object_mut().unwrap().remove("addressee");
    let path = db.dir().join("epoc-incomplete.json");
    std::fs::write(&path, epoc.to_string()).unwrap();
    let text = explain(&path, "prosecutor", "FR", &[]);
    assert!(text.contains("CLARIFICATION NEEDED"), "{text}");
    assert!(text.contains("Missing: addressee"), "{text}");
    assert!(
        text.contains("Objections the legal team may choose"),
        "{text}"
    );
}

both_backends!(the_policy_set_is_recorded_in_the_audit_log_when_it_changes);

async fn the_policy_set_is_recorded_in_the_audit_log_when_it_changes(backend: Backend) {
    let db = TestDb::new(backend);
    let dir = db.dir().join("policies");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, body) in writ::policy::BUILTIN {
        std::fs::write(dir.join(name), body).unwrap();
    }
    let dir_setting = dir.display().to_string();
    let settings = db.settings(&[("WRIT_POLICY__DIR", dir_setting.as_str())]);
    let app = spawn_with_settings(db, settings).await;
    // What `writ serve` does at start.
    let start = writ::web::Application::build(
        app.db
            .settings(&[("WRIT_POLICY__DIR", dir_setting.as_str())]),
    )
    .await
    .unwrap();
    assert!(start.record_policy_set().await.unwrap());
    assert!(
        !start.record_policy_set().await.unwrap(),
        "the same set is recorded once"
    );
    let entries = |app: &crate::helpers::TestApp| {
        let app_address = app.address.clone();
        let token = app.db.auditor_token.clone();
        async move {
            let page: serde_json::Value = reqwest::Client::new()
                .get(format!("{app_address}/audit/view?event=policy.loaded"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    e["leaf"]["refs"]["policy_set_id"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        entries(&app).await,
        vec![PolicySet::builtin().unwrap().id().to_owned()]
    );
    // Restarting with the same files records nothing new; an edit records the new set.
    let pool = app.pool.clone();
    let recorded = tokio::task::spawn_blocking(move || {
        let mut conn = pool.conn().unwrap();
        let same = PolicySet::load_dir(&dir).unwrap();
        let first = writ::startup::record_policy_set(&mut conn, &same).unwrap();
        let us = std::fs::read_to_string(dir.join("us.toml")).unwrap();
        std::fs::write(
            dir.join("us.toml"),
            format!("{us}\n# reviewed by counsel\n"),
        )
        .unwrap();
        let edited = PolicySet::load_dir(&dir).unwrap();
        (
            first,
            writ::startup::record_policy_set(&mut conn, &edited).unwrap(),
            edited.id().to_owned(),
        )
    })
    .await
    .unwrap();
    assert_eq!((recorded.0, recorded.1), (false, true));
    assert_eq!(entries(&app).await.last().unwrap(), &recorded.2);
}
