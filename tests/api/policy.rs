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
        let first = writ::policy::runtime::record(&mut conn, &same).unwrap();
        let us = std::fs::read_to_string(dir.join("us.toml")).unwrap();
        std::fs::write(
            dir.join("us.toml"),
            format!("{us}\n# reviewed by counsel\n"),
        )
        .unwrap();
        let edited = PolicySet::load_dir(&dir).unwrap();
        (
            first,
            writ::policy::runtime::record(&mut conn, &edited).unwrap(),
            edited.id().to_owned(),
        )
    })
    .await
    .unwrap();
    assert_eq!((recorded.0, recorded.1), (false, true));
    assert_eq!(entries(&app).await.last().unwrap(), &recorded.2);
}
