//! Access control, black-box: an authority reaches nothing of another authority's (and cannot
//! even tell whether an id exists), the package endpoint serves only while a package is
//! released and kept, and workspace sessions end when idle and at their maximum. The role x
//! route matrix of the workspace is `workspace::every_route_checks_the_role`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use writ::etsi::model::Outcome;

use crate::both_backends;
use crate::etsi::{DOJ, error_of, get_request, hi1, list_request, subpoena};
use crate::helpers::{Backend, TestApp};
use crate::orders::{Api, ORDER, PARIS, POLICE_SIGNER, Signer, json_of, submission};
use crate::workspace::{Browser, PASSWORD, add_users, hash_in, seed_alice};

both_backends!(
    another_authoritys_ids_answer_like_ids_that_do_not_exist,
    another_authoritys_hi1_objects_answer_like_objects_that_do_not_exist,
    the_package_is_served_only_while_released_and_kept,
    sessions_end_when_idle_and_at_their_maximum,
);

/// Status, content type and body of an answer.
async fn answer(resp: reqwest::Response) -> (StatusCode, String, String) {
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, resp.text().await.unwrap())
}

/// The authorities' routes with an id, as the served OpenAPI document lists them.
async fn api_routes_with_an_id(app: &TestApp) -> BTreeSet<(String, String)> {
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        // `/eevidence/{endpoint}` names one of ten fixed endpoints, not an object: the objects
        // its messages name are looked up per sender (`eevidence::inbound`).
        if !path.contains('{') || path.starts_with("/eevidence/") {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

async fn another_authoritys_ids_answer_like_ids_that_do_not_exist(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    let (status, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let order = created["id"].as_str().unwrap().to_owned();
    // A refused submission leaves a record its sender can read.
    let mut bad: Value = serde_json::from_str(ORDER).unwrap();
    bad.as_object_mut().unwrap().remove("reference");
    let (status, problem) = json_of(api.submit(PARIS, &submission(&bad.to_string())).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let rejection = problem["submission_id"].as_str().unwrap().to_owned();

    // Every route with an id, each with a valid body, so only the id can make a difference.
    let hello = json!({"text": "Is this order still needed?"}).to_string();
    let table: Vec<(&str, &str, &str, &str)> = vec![
        ("GET", "/api/v1/orders/{id}", &order, ""),
        ("GET", "/api/v1/orders/{id}/messages", &order, ""),
        ("POST", "/api/v1/orders/{id}/messages", &order, &hello),
        ("GET", "/api/v1/orders/{id}/disclosure", &order, ""),
        ("POST", "/api/v1/orders/{id}/withdraw", &order, ""),
        ("GET", "/api/v1/rejections/{id}", &rejection, ""),
    ];
    let listed = api_routes_with_an_id(&api.app).await;
    let tested: BTreeSet<(String, String)> = table
        .iter()
        .map(|(m, p, _, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        listed, tested,
        "every authority route with an id must be in this table"
    );

    for (method, template, id, body) in &table {
        let real = template.replace("{id}", id);
        let random = template.replace("{id}", &uuid::Uuid::new_v4().to_string());
        // Another authority, on a real id and on one that never existed; and the owner.
        let theirs = answer(
            api.send(POLICE_SIGNER, method, &real, body.as_bytes())
                .await,
        )
        .await;
        let nobodys = answer(
            api.send(POLICE_SIGNER, method, &random, body.as_bytes())
                .await,
        )
        .await;
        assert_eq!(
            theirs.0,
            StatusCode::NOT_FOUND,
            "{method} {real}: {theirs:?}"
        );
        assert_eq!(
            theirs, nobodys,
            "{method} {template}: a real id of another authority must answer like a random one"
        );
        assert!(!theirs.2.contains(*id), "{}", theirs.2);
    }
    // Nothing the other authority sent reached the order.
    let (_, read) = json_of(
        api.send(PARIS, "GET", &format!("/api/v1/orders/{order}"), b"")
            .await,
    )
    .await;
    assert_eq!(read["status"], "under_review", "{read}");
    let (_, messages) = json_of(
        api.send(
            PARIS,
            "GET",
            &format!("/api/v1/orders/{order}/messages"),
            b"",
        )
        .await,
    )
    .await;
    assert!(!messages.to_string().contains("still needed"), "{messages}");
    let (status, record) = json_of(
        api.send(
            PARIS,
            "GET",
            &format!("/api/v1/rejections/{rejection}"),
            b"",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{record}");
}

/// The id of the one order of `authority`.
pub(crate) async fn order_of(app: &TestApp, authority: &'static str) -> String {
    app.pool
        .run(move |conn| {
            use diesel::prelude::*;
            use writ::db::schema::orders;
            orders::table
                .filter(orders::authority_id.eq(authority))
                .select(orders::id)
                .first::<String>(conn)
                .map_err(writ::db::DbError::Query)
        })
        .await
        .unwrap()
}

/// Two approvers release `order` in the workspace.
pub(crate) async fn release(app: &TestApp, order: &str) {
    for user in ["alex", "bea"] {
        let mut b = Browser::new(app);
        assert_eq!(b.sign_in(user, PASSWORD).await, StatusCode::SEE_OTHER);
        let csrf = b.session_csrf().await;
        let (s, preview, _) = b
            .post_follow(&format!("/orders/{order}/package"), &[("csrf", &csrf)])
            .await;
        assert_eq!(s, StatusCode::OK, "{preview}");
        let hash = hash_in(&preview);
        let (s, body, _) = b
            .post(
                &format!("/orders/{order}/approve"),
                &[
                    ("csrf", &csrf),
                    ("snapshot_sha256", &hash),
                    ("justification", crate::workspace_daily::JUSTIFICATION),
                ],
            )
            .await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{user}: {body}");
    }
}

async fn another_authoritys_hi1_objects_answer_like_objects_that_do_not_exist(backend: Backend) {
    let api = crate::etsi::start(backend, None).await;
    add_users(&api.app).await;
    seed_alice(&api.app).await;
    let ids: Vec<String> = (0..3).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let (auth, doc, task) = (&ids[0], &ids[1], &ids[2]);
    let r = hi1(
        &api,
        DOJ,
        &subpoena("ACTOR05", auth, doc, task, "33612345678", ""),
    )
    .await;
    assert!(
        r.outcomes()
            .iter()
            .all(|(_, o)| matches!(o, Outcome::Create { .. })),
        "{}",
        r.text
    );
    // Released, so a DeliveryObject exists too.
    let order = order_of(&api.app, DOJ.iss).await;
    release(&api.app, &order).await;
    let r = hi1(&api, DOJ, &list_request("ACTOR05")).await;
    let Outcome::List(records) = &r.outcomes()[0].1 else {
        panic!("{}", r.text)
    };
    let delivery = records
        .iter()
        .find(|r| r.object_type.value == "Delivery")
        .unwrap_or_else(|| panic!("no delivery listed: {}", r.text))
        .identifier
        .clone();

    for (kind, id) in [
        ("authorisation", auth),
        ("document", doc),
        ("task", task),
        ("delivery", &delivery),
    ] {
        // Its owner gets it...
        let own = hi1(&api, DOJ, &get_request("ACTOR05", id)).await;
        assert!(
            matches!(own.outcomes()[0].1, Outcome::Get(_)),
            "{kind}: {}",
            own.text
        );
        // ...another authority gets what it would for an object nobody holds.
        let random = uuid::Uuid::new_v4().to_string();
        let theirs = hi1(&api, PARIS, &get_request("ACTOR01", id)).await;
        let nobodys = hi1(&api, PARIS, &get_request("ACTOR01", &random)).await;
        assert_eq!(theirs.status, nobodys.status, "{kind}");
        let (code, text) = error_of(&theirs.outcomes()[0].1);
        let (code2, text2) = error_of(&nobodys.outcomes()[0].1);
        assert_eq!(code, 404, "{kind}: {}", theirs.text);
        assert_eq!(
            (code, text.replace(id.as_str(), "ID")),
            (code2, text2.replace(&random, "ID")),
            "{kind}"
        );
    }
    // Nor does its LIST show any of them.
    let r = hi1(&api, PARIS, &list_request("ACTOR01")).await;
    for id in ids.iter().chain([&delivery]) {
        assert!(!r.text.contains(id.as_str()), "{}", r.text);
    }
    // The JSON API agrees: the task's order is not Paris's.
    let theirs = answer(
        api.send(
            PARIS,
            "GET",
            &format!("/api/v1/orders/{order}/disclosure"),
            b"",
        )
        .await,
    )
    .await;
    let random = format!("/api/v1/orders/{}/disclosure", uuid::Uuid::new_v4());
    let nobodys = answer(api.send(PARIS, "GET", &random, b"").await).await;
    assert_eq!(theirs.0, StatusCode::NOT_FOUND);
    assert_eq!(theirs, nobodys);
}

/// Downloads the package of `order` as `who`: status and, for a refusal, the problem.
async fn download(api: &Api, who: Signer, order: &str) -> (StatusCode, Value) {
    let resp = api
        .send(
            who,
            "GET",
            &format!("/api/v1/orders/{order}/disclosure"),
            b"",
        )
        .await;
    let status = resp.status();
    if status == StatusCode::OK {
        let tar = resp.bytes().await.unwrap();
        assert!(!tar.is_empty());
        return (status, Value::Null);
    }
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap())
}

async fn the_package_is_served_only_while_released_and_kept(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    seed_alice(&api.app).await;

    // Before any approval, and after the authority withdrew the order: nothing to download.
    let (_, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    let withdrawn = created["id"].as_str().unwrap().to_owned();
    let (status, problem) = download(&api, PARIS, &withdrawn).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("under_review"),
        "{problem}"
    );
    let (status, body) = json_of(
        api.send(
            PARIS,
            "POST",
            &format!("/api/v1/orders/{withdrawn}/withdraw"),
            b"",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, problem) = download(&api, PARIS, &withdrawn).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("withdrawn"),
        "{problem}"
    );

    // An emergency order from the police, to be validated afterwards: after one approval there
    // is still nothing; after the second the package is served.
    let mut emergency: Value = serde_json::from_str(ORDER).unwrap();
    emergency["reference"] = json!("PR-2026-EMERGENCY");
    emergency["issuer"] = json!({"kind": "police", "person": "Cne Martin", "authority": "Police Lyon", "country": "FR", "file_number": "L-9"});
    emergency["emergency"] = json!({"justification": "Imminent threat to a person's life."});
    // Issued an hour ago, so its ex-post validation (due within 48 hours) is still open.
    let issued = chrono::Utc::now() - chrono::Duration::hours(1);
    emergency["dates"]["issued_at"] = json!(issued.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    let (status, created) = json_of(
        api.submit(POLICE_SIGNER, &submission(&emergency.to_string()))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let lapsing = created["id"].as_str().unwrap().to_owned();
    let mut alex = Browser::new(&api.app);
    alex.sign_in("alex", PASSWORD).await;
    let csrf = alex.session_csrf().await;
    let (s, preview, _) = alex
        .post_follow(&format!("/orders/{lapsing}/package"), &[("csrf", &csrf)])
        .await;
    assert_eq!(s, StatusCode::OK, "{preview}");
    let hash = hash_in(&preview);
    let (s, body, _) = alex
        .post(
            &format!("/orders/{lapsing}/approve"),
            &[
                ("csrf", &csrf),
                ("snapshot_sha256", &hash),
                ("justification", crate::workspace_daily::JUSTIFICATION),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let (status, problem) = download(&api, POLICE_SIGNER, &lapsing).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let mut bea = Browser::new(&api.app);
    bea.sign_in("bea", PASSWORD).await;
    let csrf_b = bea.session_csrf().await;
    let (s, body, _) = bea
        .post(
            &format!("/orders/{lapsing}/approve"),
            &[
                ("csrf", &csrf_b),
                ("snapshot_sha256", &hash),
                ("justification", crate::workspace_daily::JUSTIFICATION),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(
        download(&api, POLICE_SIGNER, &lapsing).await.0,
        StatusCode::OK
    );

    // The ex-post validation lapses: the order is withdrawn and the package no longer served.
    let (s, body, _) = alex
        .post(
            &format!("/orders/{lapsing}/ex-post-validation"),
            &[("csrf", &csrf), ("outcome", "lapsed"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let (_, read) = json_of(
        api.send(
            POLICE_SIGNER,
            "GET",
            &format!("/api/v1/orders/{lapsing}"),
            b"",
        )
        .await,
    )
    .await;
    assert_eq!(read["status"], "withdrawn", "{read}");
    let (status, problem) = download(&api, POLICE_SIGNER, &lapsing).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("withdrawn"),
        "{problem}"
    );
    // Writ keeps no copy of what the authority must delete: the archive is gone, audited.
    let order_id = lapsing.clone();
    let (statuses, emptied) = api
        .app
        .pool
        .run(move |conn| {
            use diesel::prelude::*;
            use writ::db::schema::packages;
            let rows: Vec<(String, Option<Vec<u8>>)> = packages::table
                .filter(packages::order_id.eq(&order_id))
                .select((packages::status, packages::content))
                .load(conn)?;
            Ok::<_, writ::db::DbError>((
                rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
                rows.iter().all(|r| r.1.is_none()),
            ))
        })
        .await
        .unwrap();
    assert_eq!(statuses, ["deleted"], "the lapsed order's package");
    assert!(emptied, "the lapsed order's archive bytes are gone");

    // A released package past its retention period is gone (410), for good.
    let mut kept: Value = serde_json::from_str(ORDER).unwrap();
    kept["reference"] = json!("PR-2026-KEPT");
    let (_, created) = json_of(api.submit(PARIS, &submission(&kept.to_string())).await).await;
    let expiring = created["id"].as_str().unwrap().to_owned();
    release(&api.app, &expiring).await;
    assert_eq!(download(&api, PARIS, &expiring).await.0, StatusCode::OK);
    let later = chrono::Utc::now() + chrono::Duration::days(91);
    let deleted = api
        .app
        .pool
        .run(move |conn| writ::orders::approval::purge_released(conn, 90, later))
        .await
        .unwrap();
    // The lapsed order's archive was deleted at the lapse: only the kept one was left to purge.
    assert_eq!(deleted, 1, "only the kept package");
    let (status, problem) = download(&api, PARIS, &expiring).await;
    assert_eq!(status, StatusCode::GONE, "{problem}");
}

async fn sessions_end_when_idle_and_at_their_maximum(backend: Backend) {
    const IDLE: Duration = Duration::from_secs(2);
    const MAX: Duration = Duration::from_secs(4);
    let app = crate::helpers::spawn_app_with(
        backend,
        &[
            ("WRIT_WORKSPACE__SESSION_IDLE_SECS", "2"),
            ("WRIT_WORKSPACE__SESSION_MAX_SECS", "4"),
        ],
    )
    .await;
    add_users(&app).await;
    let out = |r: &(StatusCode, String, Option<String>)| {
        r.0 == StatusCode::SEE_OTHER && r.2.as_deref() == Some("/login")
    };

    // In use, the session outlives the idle timeout; it ends at its maximum all the same.
    let mut b = Browser::new(&app);
    let before = Instant::now();
    assert_eq!(b.sign_in("rita", PASSWORD).await, StatusCode::SEE_OTHER);
    let after = Instant::now();
    let mut ended = false;
    let mut served_past_idle = false;
    while !ended {
        let sent = Instant::now();
        let r = b.get("/orders").await;
        if sent.duration_since(before) + Duration::from_millis(300) < MAX {
            assert_eq!(r.0, StatusCode::OK, "a session in use lapsed early: {r:?}");
            served_past_idle |= sent.duration_since(before) > IDLE;
        } else if sent.duration_since(after) > MAX + Duration::from_millis(200) {
            assert!(out(&r), "the session outlived its maximum: {r:?}");
            ended = true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        served_past_idle,
        "the loop never tested past the idle timeout"
    );

    // Left alone, it ends after the idle timeout.
    let mut b = Browser::new(&app);
    let before = Instant::now();
    assert_eq!(b.sign_in("olga", PASSWORD).await, StatusCode::SEE_OTHER);
    assert_eq!(b.get("/orders").await.0, StatusCode::OK);
    tokio::time::sleep(IDLE + Duration::from_millis(300)).await;
    let sent = Instant::now();
    let r = b.get("/orders").await;
    assert!(out(&r), "an idle session lived on: {r:?}");
    assert!(
        sent.duration_since(before) < MAX,
        "too slow to tell the idle timeout from the maximum"
    );
    // Ended means ended: a further request is still out.
    assert!(out(&b.get("/account").await));
}
