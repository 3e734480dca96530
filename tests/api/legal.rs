//! The legal model of issue 17 through the intake API: the authorising party's signature, the
//! clarification outcome, and renewals counted across one authority's running preservations of
//! the same target.

use reqwest::StatusCode;
use serde_json::{Value, json};
use writ::audit::{Actor, ActorKind};
use writ::authority::{KeyAlgorithm, NewAuthority, client};
use writ::policy::IssuerKind;

use crate::both_backends;
use crate::helpers::Backend;
use crate::orders::{
    Api, ORDER, PARIS, PDF, POLICE_SIGNER, Signer, json_of, private_pem, public_pem, submission,
};

both_backends!(
    a_preliminary_inquiry_requisition_needs_the_prosecutors_signature,
    an_incomplete_epoc_asks_for_clarification,
    a_renewed_2703f_request_is_the_one_extension_across_orders,
    only_the_same_agencys_running_preservation_makes_a_request_a_renewal,
    an_emergency_disclosure_reminds_the_legal_team_to_get_legal_process,
    annex_v_and_vi_move_the_hold_of_a_preservation_order,
    the_legal_team_objects_under_art_17_and_the_data_stay_preserved,
);

pub(crate) const FBI: Signer = Signer {
    iss: "us-fbi-nyc",
    kid: "fbi-1",
    seed: 21,
};

fn requisition() -> Value {
    json!({
        "reference": "PV-2026-77",
        "instrument": "fr.requisition",
        "issuer": {"kind": "police", "person": "OPJ Martin", "authority": "Police judiciaire de Lyon", "country": "FR"},
        "validator": {"kind": "prosecutor", "person": "M. Dupont", "authority": "Parquet de Paris", "country": "FR", "file_number": "P-123"},
        "dates": {"issued_at": "2026-09-01T06:00:00Z", "validated_at": "2026-09-01T05:00:00Z"},
        "legal_provisions": ["CPP art 77-1-1"],
        "redress": "Chambre de l'instruction",
        "procedural_framework": "preliminary_inquiry",
        "purpose": {"kind": "crime"},
        "offence": {"description": "online fraud", "max_custodial_months": 60},
        "targets": [{"username": "alice"}],
        "categories": ["subscriber"]
    })
}

fn status_of(v: &Value, category: &str) -> String {
    v["decision"]["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == category)
        .map(|c| c["status"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn a_preliminary_inquiry_requisition_needs_the_prosecutors_signature(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    let text = requisition().to_string();
    // The prosecutor's authorisation claimed but not signed: a person checks it.
    let (s, unsigned) = json_of(api.submit(POLICE_SIGNER, &submission(&text)).await).await;
    assert_eq!(s, StatusCode::CREATED, "{unsigned}");
    assert_eq!(
        status_of(&unsigned, "subscriber"),
        "permit_pending_validation_check",
        "{unsigned}"
    );
    assert_eq!(unsigned["decision"]["outcome"], "needs_human_judgement");
    // Signed by the prosecutor over this very order: the authorisation is proven.
    let signature = client::sign_validation(
        KeyAlgorithm::EdDSA,
        &private_pem(PARIS.seed),
        PARIS.kid,
        &client::ValidationRequest {
            validator: PARIS.iss,
            submitter: Some(POLICE_SIGNER.iss),
            order_json: &text,
            now: chrono::Utc::now().timestamp(),
            lifetime_secs: 3600,
        },
    )
    .unwrap();
    let body = client::submission_body(&text, PDF, Some(&signature)).unwrap();
    let (s, signed) = json_of(api.submit(POLICE_SIGNER, &body).await).await;
    assert_eq!(s, StatusCode::CREATED, "{signed}");
    assert_eq!(status_of(&signed, "subscriber"), "permit", "{signed}");
    assert_eq!(signed["validation_proven"], true);
    // (Still for judgement only because the test deployment is established in Ireland, where a
    // French requisition is voluntary.)
    let flags: Vec<&str> = signed["decision"]["review_flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(flags, ["voluntary_disclosure"], "{signed}");
    // Without an authorisation, a preliminary-inquiry requisition by police reaches nothing.
    let mut alone = requisition();
    alone.as_object_mut().unwrap().remove("validator");
    let (_, v) = json_of(
        api.submit(POLICE_SIGNER, &submission(&alone.to_string()))
            .await,
    )
    .await;
    assert_eq!(v["decision"]["outcome"], "refused", "{v}");
}

async fn an_incomplete_epoc_asks_for_clarification(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    let mut order: Value = serde_json::from_str(ORDER).unwrap();
    order.as_object_mut().unwrap().remove("addressee");
    // Annex I "if applicable" boxes may be left out without asking.
    order.as_object_mut().unwrap().remove("time_window");
    order.as_object_mut().unwrap().remove("receiving_authority");
    let (s, v) = json_of(api.submit(PARIS, &submission(&order.to_string())).await).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "under_review");
    assert_eq!(v["decision"]["outcome"], "clarification_needed", "{v}");
    assert_eq!(
        v["decision"]["clarification"]["missing"],
        json!(["addressee"])
    );
    assert_eq!(v["decision"]["refusals"], json!([]));
}

/// Another US agency, for renewals that are not the FBI's.
const DEA: Signer = Signer {
    iss: "us-dea-nyc",
    kid: "dea-1",
    seed: 22,
};

pub(crate) async fn register_fbi(api: &Api) {
    register_us_police(api, FBI, "FBI New York").await;
}

async fn register_us_police(api: &Api, agency: Signer, name: &'static str) {
    api.app
        .pool
        .run(move |conn| {
            let actor = Actor::new(ActorKind::System, "test");
            writ::authority::add(
                conn,
                &actor,
                &NewAuthority {
                    id: agency.iss.into(),
                    name: name.into(),
                    country: "US".into(),
                    kind: IssuerKind::Police,
                    contacts: vec!["fbi@justice.example".into()],
                },
            )
            .unwrap();
            writ::authority::add_key(
                conn,
                &actor,
                agency.iss,
                agency.kid,
                KeyAlgorithm::EdDSA,
                &public_pem(agency.seed),
            )
            .unwrap();
            Ok::<_, writ::db::DbError>(())
        })
        .await
        .unwrap();
}

async fn a_renewed_2703f_request_is_the_one_extension_across_orders(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    register_fbi(&api).await;
    let request = |n: u32, target: &str| {
        json!({
            "reference": format!("2703F-{n}"),
            "instrument": "us.preservation",
            "issuer": {"kind": "police", "person": "SA Smith", "authority": "FBI New York", "country": "US"},
            "dates": {"issued_at": "2026-09-01T06:00:00Z"},
            "targets": [{"username": target}],
            "categories": ["subscriber"]
        })
        .to_string()
    };
    let preservation = |v: &Value| v["decision"]["preservation"].clone();
    let (s, first) = json_of(api.submit(FBI, &submission(&request(1, "alice"))).await).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(preservation(&first)["max_extensions"], 1, "{first}");
    // The renewed request for the same target is the one 90-day extension ...
    let (_, second) = json_of(api.submit(FBI, &submission(&request(2, " Alice "))).await).await;
    assert_ne!(second["decision"]["outcome"], "refused", "{second}");
    assert_eq!(preservation(&second)["max_extensions"], 0, "{second}");
    // ... and a third is refused.
    let (_, third) = json_of(api.submit(FBI, &submission(&request(3, "alice"))).await).await;
    assert_eq!(third["decision"]["outcome"], "refused", "{third}");
    assert_eq!(
        third["decision"]["refusals"][0]["code"],
        "preservation_renewals_exhausted"
    );
    // Another target starts afresh.
    let (_, other) = json_of(api.submit(FBI, &submission(&request(4, "bob"))).await).await;
    assert_eq!(preservation(&other)["max_extensions"], 1, "{other}");
}

/// A renewal extends a running preservation of the same agency. Another agency's request for
/// the same account is its own preservation (for its own case), and a request after the
/// agency's earlier preservation ended extends nothing: both start afresh with their full
/// period and extension. Writ used to count every earlier order for the target, whoever sent
/// it and however long ago its hold ended, and refused them as exhausted renewals.
async fn only_the_same_agencys_running_preservation_makes_a_request_a_renewal(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    register_fbi(&api).await;
    register_us_police(&api, DEA, "DEA New York").await;
    let request = |n: u32, authority: &str, targets: &[&str]| {
        let targets: Vec<Value> = targets.iter().map(|t| json!({"username": t})).collect();
        json!({
            "reference": format!("2703F-{n}"),
            "instrument": "us.preservation",
            "issuer": {"kind": "police", "person": "SA Smith", "authority": authority, "country": "US"},
            "dates": {"issued_at": "2026-09-01T06:00:00Z"},
            "targets": targets,
            "categories": ["subscriber"]
        })
        .to_string()
    };
    let submit_for =
        |agency: Signer, n: u32, authority: &'static str, targets: &'static [&'static str]| {
            let api = &api;
            async move {
                let (s, v) = json_of(
                    api.submit(agency, &submission(&request(n, authority, targets)))
                        .await,
                )
                .await;
                assert_eq!(s, StatusCode::CREATED, "{v}");
                v
            }
        };
    let submit = |agency: Signer, n: u32, authority: &'static str| {
        submit_for(agency, n, authority, &["alice"])
    };
    let first_and_renewal = |v: &Value, extensions: u32| {
        assert_ne!(v["decision"]["outcome"], "refused", "{v}");
        assert_eq!(
            v["decision"]["preservation"]["max_extensions"], extensions,
            "{v}"
        );
    };
    // Sets a column of orders `ids` (the test plays the passing of time and the legal team).
    let set = |ids: Vec<String>, hold_until: Option<i64>, extensions: Option<i32>| {
        api.app.pool.run(move |conn| {
            use diesel::prelude::*;
            use writ::db::schema::orders;
            for id in ids {
                if let Some(until) = hold_until {
                    diesel::update(orders::table.find(&id))
                        .set(orders::hold_until.eq(Some(until)))
                        .execute(conn)?;
                }
                if let Some(n) = extensions {
                    diesel::update(orders::table.find(&id))
                        .set(orders::hold_extensions.eq(n))
                        .execute(conn)?;
                }
            }
            Ok::<_, writ::db::DbError>(())
        })
    };
    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();
    let refused = |v: &Value| {
        assert_eq!(v["decision"]["outcome"], "refused", "{v}");
        assert_eq!(
            v["decision"]["refusals"][0]["code"], "preservation_renewals_exhausted",
            "{v}"
        );
    };
    // The FBI preserves alice's account, then renews once; a third request is refused.
    let first = submit(FBI, 1, "FBI New York").await;
    first_and_renewal(&first, 1);
    let renewal = submit(FBI, 2, "FBI New York").await;
    first_and_renewal(&renewal, 0);
    refused(&submit(FBI, 3, "FBI New York").await);
    // The first hold lapsing does not free the renewal's place: the running renewal still
    // extends it, so the chain cannot be prolonged by one request at a time.
    set(vec![id(&first)], Some(1), None).await.unwrap();
    refused(&submit(FBI, 4, "FBI New York").await);
    // The DEA's preservation of the same account is a first request ...
    let dea = submit(DEA, 5, "DEA New York").await;
    first_and_renewal(&dea, 1);
    // ... and once the legal team granted its one extension, a renewal is one too many.
    set(vec![id(&dea)], None, Some(1)).await.unwrap();
    refused(&submit(DEA, 6, "DEA New York").await);
    // Once the FBI's preservations have all ended, its next request is a first request.
    set(vec![id(&first), id(&renewal)], Some(1), None)
        .await
        .unwrap();
    first_and_renewal(&submit(FBI, 7, "FBI New York").await, 1);
    // Each target has its own chain: with alice's and bob's first preservations both running,
    // one request for both is the one renewal of each, not two renewals.
    first_and_renewal(&submit_for(FBI, 8, "FBI New York", &["bob"]).await, 1);
    first_and_renewal(
        &submit_for(FBI, 9, "FBI New York", &["alice", "bob"]).await,
        0,
    );
}

async fn an_emergency_disclosure_reminds_the_legal_team_to_get_legal_process(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    register_fbi(&api).await;
    let order = json!({
        "reference": "EDR-1",
        "instrument": "us.emergency",
        "issuer": {"kind": "police", "person": "SA Smith", "authority": "FBI New York", "country": "US"},
        "dates": {"issued_at": "2026-09-01T06:00:00Z"},
        "emergency": {"justification": "A child is missing and the account holder is the suspect."},
        "targets": [{"username": "alice"}],
        "categories": ["subscriber"]
    });
    let (s, v) = json_of(api.submit(FBI, &submission(&order.to_string())).await).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let follow_ups = v["decision"]["follow_ups"].as_array().unwrap().clone();
    assert_eq!(follow_ups.len(), 1, "{v}");
    assert!(
        follow_ups[0]["text"]
            .as_str()
            .unwrap()
            .contains("legal process")
    );
    let mail = api
        .app
        .db
        .settings(&[("WRIT_MAIL__LEGAL_TEAM", "legal@provider.example")])
        .mail;
    let reminded = api
        .app
        .pool
        .run(move |conn| {
            let now = chrono::Utc::now();
            let remind = |conn: &mut _, days| {
                writ::orders::tasks::remind_tasks(conn, &mail, chrono::Duration::days(days), now)
            };
            Ok::<_, writ::orders::OrderError>((
                remind(conn, 29)?,
                remind(conn, 31)?,
                remind(conn, 31)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(reminded, (0, 1, 0), "not yet, then once");
}

async fn annex_v_and_vi_move_the_hold_of_a_preservation_order(backend: Backend) {
    use base64::Engine;
    let api = Api::start(backend, &[]).await;
    let mut pr: Value = serde_json::from_str(ORDER).unwrap();
    pr["reference"] = json!("PR-ANNEX");
    pr["instrument"] = json!("eu.epoc_pr");
    pr["targets"] = json!([{"username": "alice"}]);
    let (s, created) = json_of(api.submit(PARIS, &submission(&pr.to_string())).await).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let received: chrono::DateTime<chrono::Utc> =
        created["received_at"].as_str().unwrap().parse().unwrap();
    let hold_until = |api: &Api, id: String| {
        let pool = api.app.pool.clone();
        async move {
            pool.run(move |conn| {
                use diesel::prelude::*;
                use writ::db::schema::orders;
                orders::table
                    .find(id)
                    .select(orders::hold_until)
                    .first::<Option<i64>>(conn)
                    .map_err(writ::db::DbError::Query)
            })
            .await
            .unwrap()
        }
    };
    let day = |d: i64| received + chrono::Duration::days(d);
    assert_eq!(
        hold_until(&api, id.clone()).await,
        Some(day(60).timestamp_micros())
    );
    let amend = |order: &Value, text: &str| {
        json!({
            "text": text,
            "order": order,
            "document": {
                "media_type": "application/pdf",
                "content": base64::engine::general_purpose::STANDARD.encode(PDF),
            },
        })
        .to_string()
    };
    let path = format!("/api/v1/orders/{id}/messages");
    // Annex VI: the authority asks for the 30 more days.
    pr["extension_requested_at"] = json!([day(1).to_rfc3339()]);
    let (s, m) = json_of(
        api.send(PARIS, "POST", &path, amend(&pr, "Annex VI").as_bytes())
            .await,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    assert_eq!(
        hold_until(&api, id.clone()).await,
        Some(day(90).timestamp_micros())
    );
    // Annex V: a production order follows; the hold waits for it (a person ends it).
    pr["follow_up_notified_at"] = json!(day(2).to_rfc3339());
    let (s, m) = json_of(
        api.send(PARIS, "POST", &path, amend(&pr, "Annex V").as_bytes())
            .await,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    let (_, read) = json_of(
        api.send(PARIS, "GET", &format!("/api/v1/orders/{id}"), b"")
            .await,
    )
    .await;
    assert_eq!(
        read["decision"]["preservation"]["until_follow_up"], true,
        "{read}"
    );
    assert_eq!(hold_until(&api, id.clone()).await, None);
}

async fn the_legal_team_objects_under_art_17_and_the_data_stay_preserved(backend: Backend) {
    use crate::workspace::{Browser, PASSWORD, add_users};
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    let (s, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let mut rita = Browser::new(&api.app);
    assert_eq!(rita.sign_in("rita", PASSWORD).await, StatusCode::SEE_OTHER);
    let (_, page, _) = rita.get(&format!("/orders/{id}")).await;
    assert!(page.contains("conflict_with_third_country_law"), "{page}");
    let csrf = rita.session_csrf().await;
    // Only an objection the decision offers.
    let (status, body, _) = rita
        .post(
            &format!("/orders/{id}/object"),
            &[("csrf", &csrf), ("code", "because"), ("text", "no")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body, _) = rita
        .post(
            &format!("/orders/{id}/object"),
            &[
                ("csrf", &csrf),
                ("code", "conflict_with_third_country_law"),
                (
                    "text",
                    "US law (18 U.S.C. 2702(a)) forbids disclosing this account's records.",
                ),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (_, read) = json_of(
        api.send(PARIS, "GET", &format!("/api/v1/orders/{id}"), b"")
            .await,
    )
    .await;
    assert_eq!(read["status"], "awaiting_clarification", "{read}");
    let (_, messages) = json_of(
        api.send(PARIS, "GET", &format!("/api/v1/orders/{id}/messages"), b"")
            .await,
    )
    .await;
    let text = messages[0]["text"].as_str().unwrap();
    assert!(
        text.contains("Art 17") && text.contains("2702(a)"),
        "{text}"
    );
    // The holds stay, and the objection is in the audit log.
    let id2 = id.clone();
    let (active_holds, objected) = api
        .app
        .pool
        .run(move |conn| {
            use diesel::prelude::*;
            use writ::db::schema::target_holds;
            let active: i64 = target_holds::table
                .filter(target_holds::order_id.eq(&id2))
                .filter(target_holds::released_at.is_null())
                .count()
                .get_result(conn)
                .map_err(writ::db::DbError::Query)?;
            let entries = writ::audit::log::entries(conn, 0, 100_000).unwrap();
            let objected = entries.iter().any(|e| {
                e.leaf.contains("order.objected")
                    && e.leaf.contains("conflict_with_third_country_law")
            });
            Ok::<_, writ::db::DbError>((active, objected))
        })
        .await
        .unwrap();
    assert!(active_holds > 0);
    assert!(objected);
}
