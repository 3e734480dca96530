//! Issue 19, user notice and paging: signed webhooks to a real local HTTP listener the test
//! starts. The user notice goes out when a rule lets the provider tell the user and nothing
//! forbids it (never under a gag, not before a dated gag ends), retried on a 500; an emergency
//! order pages the on-call (and mails the legal team), and a colleague acknowledges the page.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp};
use crate::orders::{Api, ORDER, PARIS, json_of, submission};
use crate::workspace::{Browser, PASSWORD, add_users, seed_alice};

both_backends!(
    a_user_notice_is_signed_retried_on_500_and_recorded,
    no_user_notice_goes_out_under_a_gag_or_before_it_ends,
    an_emergency_order_pages_the_on_call_and_the_page_is_acknowledged,
);

const NOTICE_SECRET: &str = "notice-secret-0123456789abcdef0123456789";
const PAGING_SECRET: &str = "paging-secret-0123456789abcdef0123456789";

/// What the listener received, and what it answers next (200 once the list is empty).
#[derive(Default)]
struct Listener {
    received: Vec<(String, Vec<u8>)>,
    answers: VecDeque<u16>,
}

async fn start_listener(state: Arc<Mutex<Listener>>) -> String {
    async fn take(
        req: HttpRequest,
        body: web::Bytes,
        state: web::Data<Arc<Mutex<Listener>>>,
    ) -> HttpResponse {
        let signature = req
            .headers()
            .get("writ-signature")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let mut s = state.lock().unwrap();
        s.received.push((signature, body.to_vec()));
        let status = s.answers.pop_front().unwrap_or(200);
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/hook", web::post().to(take))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}/hook")
}

/// The environment of an app whose webhooks go to `url` (the test sends them itself).
fn env(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("WRIT_MAIL__WEBHOOKS__NOTICE_URL", url.to_owned()),
        (
            "WRIT_MAIL__WEBHOOKS__NOTICE_SECRET",
            NOTICE_SECRET.to_owned(),
        ),
        ("WRIT_MAIL__WEBHOOKS__PAGING_URL", url.to_owned()),
        (
            "WRIT_MAIL__WEBHOOKS__PAGING_SECRET",
            PAGING_SECRET.to_owned(),
        ),
        ("WRIT_MAIL__WEBHOOKS__RETRY_BACKOFF_SECS", "0".to_owned()),
        ("WRIT_MAIL__LEGAL_TEAM", "legal@provider.example".to_owned()),
        ("WRIT_API__JOBS_INTERVAL_SECS", "3600".to_owned()),
    ]
}

async fn start(backend: Backend, url: &str) -> Api {
    let env = env(url);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Api::start(backend, &pairs).await
}

/// One run of the webhook sender, as the sender loop makes it.
async fn send(app: &TestApp, url: &str) -> writ::mail::webhook::SendReport {
    let env = env(url);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let settings = app.db.settings(&pairs).mail.webhooks;
    writ::mail::webhook::send_due(&app.pool, &settings, &reqwest::Client::new())
        .await
        .unwrap()
}

/// Every audit leaf of `event`, as JSON.
async fn leaves_of(app: &TestApp, event: &'static str) -> Vec<Value> {
    app.pool
        .run(move |conn| {
            let all = writ::audit::log::entries(conn, 0, 100_000).unwrap();
            Ok::<_, writ::db::DbError>(
                all.into_iter()
                    .map(|e| serde_json::from_str::<Value>(&e.leaf).unwrap())
                    .filter(|l| l["event"] == event)
                    .collect(),
            )
        })
        .await
        .unwrap()
}

/// The outbox rows of an order: (kind, status, next attempt in microseconds).
async fn rows(app: &TestApp, order: &str) -> Vec<(String, String, i64)> {
    let order = order.to_owned();
    app.pool
        .run(move |conn| {
            use diesel::prelude::*;
            use writ::db::schema::webhook_outbox as w;
            w::table
                .filter(w::order_id.eq(order))
                .order(w::id)
                .select((w::kind, w::status, w::next_attempt_at))
                .load::<(String, String, i64)>(conn)
                .map_err(writ::db::DbError::Query)
        })
        .await
        .unwrap()
}

/// A US subpoena for alice's subscriber data (the provider may tell her), with `gag` as its
/// non-disclosure order if given.
fn subpoena(reference: &str, gag: Option<Value>) -> String {
    let mut order = json!({
        "reference": reference,
        "instrument": "us.subpoena",
        "issuer": {"kind": "police", "person": "SA Smith", "authority": "FBI New York", "country": "US"},
        "dates": {"issued_at": "2026-09-01T06:00:00Z"},
        "statutory_basis": {"kind": "administrative_subpoena", "statute": "21 U.S.C. 876"},
        "offence": {"description": "wire fraud", "max_custodial_months": 240},
        "targets": [{"username": "alice"}],
        "categories": ["subscriber"]
    });
    if let Some(g) = gag {
        order["non_disclosure"] = g;
    }
    order.to_string()
}

async fn released_subpoena(api: &Api, reference: &str, gag: Option<Value>) -> String {
    let (status, created) = json_of(
        api.submit(crate::legal::FBI, &submission(&subpoena(reference, gag)))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    crate::access::release(&api.app, &id).await;
    id
}

/// A notice the law lets the provider give goes out once the order is released, signed with
/// the notice secret (HMAC-SHA256 over the timestamp and the exact body), from the template,
/// naming the account and saying no more (no reference, no offence, no record); a 500 is
/// retried; the delivery is audited and the order shows the user as told.
async fn a_user_notice_is_signed_retried_on_500_and_recorded(backend: Backend) {
    let state = Arc::new(Mutex::new(Listener::default()));
    let url = start_listener(state.clone()).await;
    let api = start(backend, &url).await;
    add_users(&api.app).await;
    seed_alice(&api.app).await;
    crate::legal::register_fbi(&api).await;
    let id = released_subpoena(&api, "SUB-2026-7", None).await;
    assert_eq!(rows(&api.app, &id).await.len(), 1, "one notice queued");

    state.lock().unwrap().answers = VecDeque::from([500, 503]);
    let report = send(&api.app, &url).await;
    assert_eq!(
        (report.claimed, report.sent, report.retrying),
        (3, 1, 2),
        "{report:?}"
    );
    let received = state.lock().unwrap().received.clone();
    assert_eq!(received.len(), 3);
    let now = chrono::Utc::now();
    for (signature, body) in &received {
        assert!(
            writ::mail::webhook::verify(NOTICE_SECRET.as_bytes(), signature, body, now),
            "{signature}"
        );
        assert!(!writ::mail::webhook::verify(
            PAGING_SECRET.as_bytes(),
            signature,
            body,
            now
        ));
        let mut changed = body.clone();
        changed[10] ^= 1;
        assert!(!writ::mail::webhook::verify(
            NOTICE_SECRET.as_bytes(),
            signature,
            &changed,
            now
        ));
    }
    assert!(
        received.iter().all(|(_, b)| *b == received[0].1),
        "the same body each time"
    );
    let body: Value = serde_json::from_slice(&received[0].1).unwrap();
    assert_eq!(body["type"], "user_notice");
    assert_eq!(body["order_id"], id.as_str());
    assert_eq!(body["accounts"], json!([{"username": "alice"}]));
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("we disclosed data about your account (subscriber)") && text.contains("(US)"),
        "{text}"
    );
    let all = String::from_utf8_lossy(&received[0].1).to_string();
    for secret in [
        "SUB-2026-7",
        "wire fraud",
        "u-alice",
        "203.0.113.7",
        "+33612345678",
    ] {
        assert!(!all.contains(secret), "{secret} in {all}");
    }

    // Recorded: sent once, audited with the attempts, the order shows the user told.
    assert_eq!(rows(&api.app, &id).await[0].1, "sent");
    assert_eq!(
        send(&api.app, &url).await.claimed,
        0,
        "nothing more to send"
    );
    let sent = leaves_of(&api.app, "order.user_notice_sent").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["order"], id.as_str());
    assert_eq!(sent[0]["refs"]["attempts"], 3);
    assert_eq!(
        sent[0]["refs"]["body_sha256"],
        writ::digest::sha256_hex(&received[0].1).as_str()
    );
    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let (_, page, _) = rita.get(&format!("/orders/{id}")).await;
    assert!(page.contains("by webhook."), "{page}");
    assert!(!page.contains("Record the notice"), "{page}");
}

/// Under an open-ended gag nothing is queued or sent; under a dated one the notice waits for
/// its end; an EU production order (the authority informs the person) sends none.
async fn no_user_notice_goes_out_under_a_gag_or_before_it_ends(backend: Backend) {
    let state = Arc::new(Mutex::new(Listener::default()));
    let url = start_listener(state.clone()).await;
    let api = start(backend, &url).await;
    add_users(&api.app).await;
    seed_alice(&api.app).await;
    crate::legal::register_fbi(&api).await;
    let gagged = released_subpoena(&api, "SUB-2026-8", Some(json!({"ends": "open_ended"}))).await;
    let dated = released_subpoena(
        &api,
        "SUB-2026-9",
        Some(json!({"ends": {"until": "2030-01-01T00:00:00Z"}})),
    )
    .await;
    let (_, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    let epoc = created["id"].as_str().unwrap().to_owned();
    crate::access::release(&api.app, &epoc).await;

    assert!(rows(&api.app, &gagged).await.is_empty());
    assert!(rows(&api.app, &epoc).await.is_empty());
    let waiting = rows(&api.app, &dated).await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let until = chrono::DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap();
    assert_eq!(
        waiting[0].2,
        until.timestamp_micros(),
        "not before the gag ends"
    );
    assert_eq!(send(&api.app, &url).await.claimed, 0);
    assert!(state.lock().unwrap().received.is_empty());
    assert!(
        leaves_of(&api.app, "order.user_notice_sent")
            .await
            .is_empty()
    );
}

/// An emergency order queues a page in the transaction that stores it (beside the legal
/// team's urgent mail); the page is signed with the paging secret and names the order, never
/// a target; a colleague acknowledges it on the order page (CSRF checked, audited, once), an
/// auditor cannot.
async fn an_emergency_order_pages_the_on_call_and_the_page_is_acknowledged(backend: Backend) {
    let state = Arc::new(Mutex::new(Listener::default()));
    let url = start_listener(state.clone()).await;
    let api = start(backend, &url).await;
    add_users(&api.app).await;
    let mut order: Value = serde_json::from_str(ORDER).unwrap();
    order["emergency"] = json!({"justification": "Imminent threat to a person's life."});
    let (status, created) = json_of(api.submit(PARIS, &submission(&order.to_string())).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    // A routine order pages nobody.
    let (_, routine) = json_of(
        api.submit(
            PARIS,
            &submission(&{
                let mut o: Value = serde_json::from_str(ORDER).unwrap();
                o["reference"] = json!("PR-2026-0050");
                o.to_string()
            }),
        )
        .await,
    )
    .await;
    assert!(
        rows(&api.app, routine["id"].as_str().unwrap())
            .await
            .is_empty()
    );
    assert_eq!(rows(&api.app, &id).await.len(), 1);
    let urgent_mail: i64 = {
        let id = id.clone();
        api.app
            .pool
            .run(move |conn| {
                use diesel::prelude::*;
                use writ::db::schema::mail_outbox as m;
                m::table
                    .filter(m::order_id.eq(id))
                    .filter(m::urgent.eq(true))
                    .count()
                    .get_result(conn)
                    .map_err(writ::db::DbError::Query)
            })
            .await
            .unwrap()
    };
    assert_eq!(urgent_mail, 1, "the legal team is mailed as well");

    let report = send(&api.app, &url).await;
    assert_eq!((report.claimed, report.sent), (1, 1), "{report:?}");
    let (signature, body) = state.lock().unwrap().received[0].clone();
    let now = chrono::Utc::now();
    assert!(writ::mail::webhook::verify(
        PAGING_SECRET.as_bytes(),
        &signature,
        &body,
        now
    ));
    assert!(!writ::mail::webhook::verify(
        NOTICE_SECRET.as_bytes(),
        &signature,
        &body,
        now
    ));
    let page: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(page["type"], "page");
    assert_eq!(page["reference"], "PR-2026-0042");
    assert_eq!(page["open"], format!("/orders/{id}"));
    let text = String::from_utf8_lossy(&body);
    assert!(
        !text.contains("alice") && !text.contains("203.0.113.7"),
        "{text}"
    );
    assert_eq!(leaves_of(&api.app, "order.on_call_paged").await.len(), 1);

    // Acknowledged on the order page.
    let mut olga = Browser::new(&api.app);
    olga.sign_in("olga", PASSWORD).await;
    let (_, seen, _) = olga.get(&format!("/orders/{id}")).await;
    assert!(
        seen.contains("On-call page") && !seen.contains("Acknowledge the page"),
        "{seen}"
    );
    let ack = format!("/orders/{id}/page/acknowledge");
    let csrf = olga.session_csrf().await;
    assert_eq!(
        olga.post(&ack, &[("csrf", &csrf)]).await.0,
        StatusCode::FORBIDDEN
    );
    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let (_, seen, _) = rita.get(&format!("/orders/{id}")).await;
    assert!(seen.contains("Acknowledge the page"), "{seen}");
    assert_eq!(
        rita.post(&ack, &[("csrf", "forged")]).await.0,
        StatusCode::FORBIDDEN
    );
    assert!(
        leaves_of(&api.app, "order.page_acknowledged")
            .await
            .is_empty()
    );
    let csrf = rita.session_csrf().await;
    assert_eq!(
        rita.post(&ack, &[("csrf", &csrf)]).await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        rita.post(&ack, &[("csrf", &csrf)]).await.0,
        StatusCode::CONFLICT
    );
    let (_, seen, _) = rita.get(&format!("/orders/{id}")).await;
    assert!(
        seen.contains("acknowledged by rita") && !seen.contains("Acknowledge the page"),
        "{seen}"
    );
    let acks = leaves_of(&api.app, "order.page_acknowledged").await;
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0]["actor"]["id"], "rita");
    assert_eq!(acks[0]["order"], id.as_str());
}
