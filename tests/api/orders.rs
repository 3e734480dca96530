//! The order-intake API, end to end over HTTP: submission, decision, status, clarification,
//! withdrawal, idempotency, isolation between authorities, and the attacks it must resist.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use writ::audit::{Actor, ActorKind};
use writ::authority::client::{self, TokenRequest};
use writ::authority::{KeyAlgorithm, NewAuthority};
use writ::policy::IssuerKind;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, spawn_app_with};

both_backends!(
    an_order_is_received_decided_clarified_amended_and_withdrawn,
    every_request_needs_a_token_bound_to_it,
    idempotency_keys_replay_the_first_answer_and_refuse_another_body,
    an_authority_sees_only_its_own_orders,
    the_issuer_kind_comes_from_the_registry_and_validation_from_signatures,
    bad_submissions_are_refused_by_field_and_kept,
    rate_limits_and_failed_authentications_are_throttled_and_summarised,
    the_answer_does_not_depend_on_matches_and_holds_follow_the_order,
    the_readme_walkthrough_submits_an_order_with_writ_token,
    concurrent_gets_share_commits_and_a_replay_in_the_same_batch_is_refused,
);

pub(crate) const ORDER: &str = include_str!("../fixtures/orders/epoc-prosecutor.json");
pub(crate) const PDF: &[u8] = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";

/// A signer: an authority id, a key id and the Ed25519 seed of its key.
#[derive(Clone, Copy)]
pub(crate) struct Signer {
    pub(crate) iss: &'static str,
    pub(crate) kid: &'static str,
    pub(crate) seed: u8,
}

pub(crate) const PARIS: Signer = Signer {
    iss: "fr-parquet-paris",
    kid: "paris-1",
    seed: 1,
};
pub(crate) const POLICE_SIGNER: Signer = POLICE;
pub(crate) const JUDGE_SIGNER: Signer = JUDGE;
const POLICE: Signer = Signer {
    iss: "fr-police-lyon",
    kid: "lyon-1",
    seed: 2,
};
const JUDGE: Signer = Signer {
    iss: "fr-jld-paris",
    kid: "jld-1",
    seed: 3,
};
const BERLIN: Signer = Signer {
    iss: "de-ag-berlin",
    kid: "berlin-1",
    seed: 4,
};

pub(crate) fn private_pem(seed: u8) -> String {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
        .to_pkcs8_pem(LineEnding::LF)
        .unwrap()
        .to_string()
}

pub(crate) fn public_pem(seed: u8) -> String {
    writ::audit::keys::public_pem(
        &ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key(),
    )
}

pub(crate) struct Api {
    pub(crate) app: TestApp,
    pub(crate) audience: String,
}

impl Api {
    pub(crate) async fn start(backend: Backend, extra: &[(&str, &str)]) -> Self {
        let app = spawn_app_with(backend, extra).await;
        app.pool
            .run(|conn| {
                let actor = Actor::new(ActorKind::System, "test");
                for (s, kind, country) in [
                    (PARIS, IssuerKind::Prosecutor, "FR"),
                    (POLICE, IssuerKind::Police, "FR"),
                    (JUDGE, IssuerKind::Judge, "FR"),
                    (BERLIN, IssuerKind::Judge, "DE"),
                ] {
                    writ::authority::add(
                        conn,
                        &actor,
                        &NewAuthority {
                            id: s.iss.into(),
                            name: s.iss.into(),
                            country: country.into(),
                            kind,
                            contacts: vec![format!("{}@justice.example", s.kid)],
                        },
                    )
                    .unwrap();
                    writ::authority::add_key(
                        conn,
                        &actor,
                        s.iss,
                        s.kid,
                        KeyAlgorithm::EdDSA,
                        &public_pem(s.seed),
                    )
                    .unwrap();
                }
                Ok::<_, writ::db::DbError>(())
            })
            .await
            .unwrap();
        let info: Value = app.get("/api/v1").await.json().await.unwrap();
        let audience = info["audience"].as_str().unwrap().to_owned();
        assert!(audience.starts_with("writ:"), "{info}");
        Self { app, audience }
    }

    pub(crate) fn token(&self, who: Signer, method: &str, path: &str, body: &[u8]) -> String {
        client::sign_request(
            KeyAlgorithm::EdDSA,
            &private_pem(who.seed),
            who.kid,
            &TokenRequest {
                issuer: who.iss,
                audience: &self.audience,
                method,
                path,
                body,
                now: chrono::Utc::now().timestamp(),
                lifetime_secs: 120,
            },
        )
        .unwrap()
    }

    async fn send_with(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let url = format!("{}{path}", self.app.address);
        let mut req = self
            .app
            .client
            .request(method.parse().unwrap(), url)
            .body(body.to_vec());
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    pub(crate) async fn send(
        &self,
        who: Signer,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> reqwest::Response {
        let token = self.token(who, method, path, body);
        self.send_with(method, path, body, Some(&token), &[]).await
    }

    pub(crate) async fn submit(&self, who: Signer, body: &str) -> reqwest::Response {
        self.send(who, "POST", "/api/v1/orders", body.as_bytes())
            .await
    }

    async fn audit_events(&self) -> Vec<Value> {
        self.app
            .pool
            .run(|conn| {
                let all = writ::audit::log::entries(conn, 0, 100_000).unwrap();
                Ok::<_, writ::db::DbError>(
                    all.into_iter()
                        .map(|e| serde_json::from_str(&e.leaf).unwrap())
                        .collect(),
                )
            })
            .await
            .unwrap()
    }
}

pub(crate) fn submission(order: &str) -> String {
    client::submission_body(order, PDF, None).unwrap()
}

pub(crate) async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, value)
}

async fn an_order_is_received_decided_clarified_amended_and_withdrawn(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    let response = api.submit(PARIS, &submission(ORDER)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let (_, created) = json_of(response).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/orders/{id}"));
    assert_eq!(created["status"], "under_review");
    assert_eq!(created["version"], 1);
    assert_eq!(created["reference"], "PR-2026-0042");
    assert_eq!(
        created["order_sha256"],
        writ::digest::sha256_hex(ORDER.trim().as_bytes())
    );
    assert_eq!(created["document"]["sha256"], writ::digest::sha256_hex(PDF));
    assert_eq!(created["document"]["media_type"], "application/pdf");
    // The decision per category and field, with reasons, and the deadline.
    let categories = created["decision"]["categories"].as_array().unwrap();
    assert_eq!(categories.len(), 2, "{created}");
    for c in categories {
        assert!(c["reason"].is_string() && !c["fields"].as_array().unwrap().is_empty());
        for f in c["fields"].as_array().unwrap() {
            assert!(f["status"].is_string() && f["text"].is_string(), "{f}");
        }
    }
    assert!(created["deadline_at"].is_string(), "{created}");

    // The authority reads it back as it was answered.
    let (status, read) = json_of(api.send(PARIS, "GET", &location, b"").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, created);

    // The legal team asks; the authority sees the question and the status.
    let asked = {
        let id = id.clone();
        let mail = api.app.db.settings(&[]).mail;
        api.app
            .pool
            .run(move |conn| {
                let set = writ::policy::PolicySet::builtin().unwrap();
                let deployment = writ::policy::Deployment {
                    establishment: "IE".into(),
                    legal_representative_in: vec![],
                    dsa_intermediary: true,
                    service_class: None,
                    offers_service_in: vec![],
                };
                writ::orders::clarify::ask(
                    conn,
                    &Actor::new(ActorKind::Staff, "reviewer-1"),
                    &id,
                    "Please state the time zone of the IP timestamp.",
                    writ::orders::clarify::Rules {
                        policies: &set,
                        deployment: &deployment,
                        mail: &mail,
                    },
                    chrono::Utc::now(),
                )
            })
            .await
    };
    asked.unwrap();
    let (_, read) = json_of(api.send(PARIS, "GET", &location, b"").await).await;
    assert_eq!(read["status"], "awaiting_clarification");
    let messages_path = format!("{location}/messages");
    let (_, messages) = json_of(api.send(PARIS, "GET", &messages_path, b"").await).await;
    assert_eq!(messages.as_array().unwrap().len(), 1);
    assert_eq!(messages[0]["sender"], "provider");
    assert!(messages[0].get("author").is_none(), "staff are not named");

    // The answer carries an amended order: a new version, decided afresh, back to review.
    let mut amended: Value = serde_json::from_str(ORDER).unwrap();
    amended["categories"] = json!(["subscriber"]);
    let amended_text = amended.to_string();
    let amended_pdf = b"%PDF-1.7\n% amended order, signed again\n%%EOF\n";
    let document = json!({
        "media_type": "application/pdf",
        "content": base64::engine::general_purpose::STANDARD.encode(amended_pdf),
    });
    // Without its own signed document an amendment is refused by field.
    let bare = json!({"text": "no document", "order": amended}).to_string();
    let (status, problem) = json_of(
        api.send(PARIS, "POST", &messages_path, bare.as_bytes())
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "document");
    // A malformed validation without an amended order is refused by field, not dropped unread
    // (schemathesis sent one with no order and got 201).
    let stray =
        json!({"text": "see attached", "order": null, "validation": "ZT39BQ.b.h34_91dK8sd*"});
    let (status, problem) = json_of(
        api.send(PARIS, "POST", &messages_path, stray.to_string().as_bytes())
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "validation", "{problem}");
    // So is a document without an amended order that is no PDF, or not base64.
    for (stray, field) in [
        (
            json!({"text": "see attached", "document": {"media_type": "text/plain", "content": "aGVsbG8="}}),
            "document.media_type",
        ),
        (
            json!({"text": "see attached", "document": {"media_type": "application/pdf", "content": "not base64!"}}),
            "document.content",
        ),
    ] {
        let (status, problem) = json_of(
            api.send(PARIS, "POST", &messages_path, stray.to_string().as_bytes())
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let (_, messages) = json_of(api.send(PARIS, "GET", &messages_path, b"").await).await;
    assert_eq!(messages.as_array().unwrap().len(), 1, "nothing stored");
    let body = json!({"text": "Europe/Paris; we also drop identification.", "order": amended, "document": document});
    let body = body.to_string();
    let response = api
        .send(PARIS, "POST", &messages_path, body.as_bytes())
        .await;
    let (status, message) = json_of(response).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert_eq!(message["amended_version"], 2);
    let (_, read) = json_of(api.send(PARIS, "GET", &location, b"").await).await;
    assert_eq!(read["status"], "under_review");
    assert_eq!(read["version"], 2);
    assert_eq!(read["decision"]["categories"].as_array().unwrap().len(), 1);
    assert_eq!(
        read["order_sha256"],
        writ::digest::sha256_hex(amended_text.as_bytes())
    );
    // The amended order's own document is in force.
    assert_eq!(read["document"]["version"], 2);
    assert_eq!(
        read["document"]["sha256"],
        writ::digest::sha256_hex(amended_pdf)
    );

    // Nothing is released yet.
    let (status, problem) = json_of(
        api.send(PARIS, "GET", &format!("{location}/disclosure"), b"")
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["type"], "urn:writ:problem:not-released");

    // Withdrawal: twice gives the same answer; afterwards messages are refused.
    let withdraw = format!("{location}/withdraw");
    let body = br#"{"reason": "case closed"}"#;
    let (status, first) = json_of(api.send(PARIS, "POST", &withdraw, body).await).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["status"], "withdrawn");
    let (status, again) = json_of(api.send(PARIS, "POST", &withdraw, b"").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["status"], "withdrawn");
    let late = json!({"text": "one more thing"}).to_string();
    let (status, problem) = json_of(
        api.send(PARIS, "POST", &messages_path, late.as_bytes())
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");

    // Every step is in the audit log, attributed to the authority or the reviewer.
    let events: Vec<String> = api
        .audit_events()
        .await
        .iter()
        .filter(|e| e["order"] == json!(id))
        .map(|e| e["event"].as_str().unwrap().to_owned())
        // The background job resolving holds to accounts runs on its own clock; whether it
        // ran during the test depends on the machine's load, not on the steps under test.
        .filter(|e| e != "order.hold_resolved")
        .collect();
    assert_eq!(
        events,
        [
            "order.received",
            "order.clarification_requested",
            "order.amended",
            "order.withdrawn"
        ]
    );
}

async fn every_request_needs_a_token_bound_to_it(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    let body = submission(ORDER);
    let path = "/api/v1/orders";
    let reason = |v: &Value| v["reason"].as_str().unwrap_or_default().to_owned();
    let expect = |status: StatusCode, v: &Value, class: &str| {
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
        assert_eq!(reason(v), class, "{v}");
        assert_eq!(v["type"], "urn:writ:problem:unauthenticated");
    };

    // No token at all.
    let (s, v) = json_of(
        api.send_with("POST", path, body.as_bytes(), None, &[])
            .await,
    )
    .await;
    expect(s, &v, "malformed");

    // A good token works once; the same token again is a replay.
    let token = api.token(PARIS, "POST", path, body.as_bytes());
    let first = api
        .send_with("POST", path, body.as_bytes(), Some(&token), &[])
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let (s, v) = json_of(
        api.send_with("POST", path, body.as_bytes(), Some(&token), &[])
            .await,
    )
    .await;
    expect(s, &v, "replay");

    // A valid token carrying another body.
    let token = api.token(PARIS, "POST", path, body.as_bytes());
    let other = submission(&ORDER.replace("PR-2026-0042", "PR-2026-9999"));
    let (s, v) = json_of(
        api.send_with("POST", path, other.as_bytes(), Some(&token), &[])
            .await,
    )
    .await;
    expect(s, &v, "body-mismatch");

    // A token for GET used on another order's path.
    let token = api.token(PARIS, "GET", "/api/v1/orders/a", b"");
    let (s, v) = json_of(
        api.send_with("GET", "/api/v1/orders/b", b"", Some(&token), &[])
            .await,
    )
    .await;
    expect(s, &v, "body-mismatch");

    // Hand-made tokens: alg none, HMAC keyed with the public key, another algorithm.
    let claims = |aud: &str| {
        json!({
            "iss": PARIS.iss, "aud": aud, "iat": chrono::Utc::now().timestamp(),
            "exp": chrono::Utc::now().timestamp() + 60, "jti": uuid::Uuid::new_v4().to_string(),
            "htm": "POST", "htu": path, "bsh": writ::authority::token::body_hash(body.as_bytes()),
        })
    };
    let raw = |header: Value, claims: Value, sig: &[u8]| {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode(sig)
        )
    };
    let none = raw(
        json!({"alg": "none", "kid": PARIS.kid}),
        claims(&api.audience),
        b"",
    );
    let (s, v) = json_of(
        api.send_with("POST", path, body.as_bytes(), Some(&none), &[])
            .await,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let hmac = jsonwebtoken::encode(
        &{
            let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            h.kid = Some(PARIS.kid.into());
            h
        },
        &claims(&api.audience),
        &jsonwebtoken::EncodingKey::from_secret(public_pem(PARIS.seed).as_bytes()),
    )
    .unwrap();
    let (s, v) = json_of(
        api.send_with("POST", path, body.as_bytes(), Some(&hmac), &[])
            .await,
    )
    .await;
    expect(s, &v, "bad-signature");

    // Wrong audience; string-typed exp; wrong issuer for the key.
    let sign = |claims: &Value, who: Signer| {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        h.kid = Some(who.kid.into());
        jsonwebtoken::encode(
            &h,
            claims,
            &jsonwebtoken::EncodingKey::from_ed_pem(private_pem(who.seed).as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let t = sign(&claims("writ:someone-else"), PARIS);
    let (s, v) = json_of(
        api.send_with("POST", path, body.as_bytes(), Some(&t), &[])
            .await,
    )
    .await;
    expect(s, &v, "invalid-claims");
    let mut c = claims(&api.audience);
    c["exp"] = json!((chrono::Utc::now().timestamp() + 60).to_string());
    let (s, v) = json_of(
        api.send_with("POST", path, body.as_bytes(), Some(&sign(&c, PARIS)), &[])
            .await,
    )
    .await;
    expect(s, &v, "invalid-claims");
    assert!(v["detail"].as_str().unwrap().contains("exp"), "{v}");
    let mut c = claims(&api.audience);
    c["iss"] = json!(PARIS.iss);
    let (s, v) = json_of(
        api.send_with("POST", path, body.as_bytes(), Some(&sign(&c, POLICE)), &[])
            .await,
    )
    .await;
    expect(s, &v, "invalid-claims");
    let mut c = claims(&api.audience);
    c["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
    c["iat"] = json!(chrono::Utc::now().timestamp() - 3700);
    let (s, v) = json_of(
        api.send_with("POST", path, body.as_bytes(), Some(&sign(&c, PARIS)), &[])
            .await,
    )
    .await;
    expect(s, &v, "expired");

    // A suspended authority's genuine token: 403.
    api.app
        .pool
        .run(|conn| {
            writ::authority::set_active(
                conn,
                &Actor::new(ActorKind::System, "t"),
                POLICE.iss,
                false,
            )
        })
        .await
        .unwrap();
    let (s, v) = json_of(api.submit(POLICE, &body).await).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(reason(&v), "suspended");

    // Unauthenticated requests learn nothing about orders.
    let resp = api
        .send_with("GET", "/api/v1/orders/x", b"", None, &[])
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
}

async fn idempotency_keys_replay_the_first_answer_and_refuse_another_body(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    let path = "/api/v1/orders";
    let body = submission(ORDER);
    let api = &api;
    let send = |body: String, key: &'static str| {
        let token = api.token(PARIS, "POST", path, body.as_bytes());
        async move {
            api.send_with(
                "POST",
                path,
                body.as_bytes(),
                Some(&token),
                &[("Idempotency-Key", key)],
            )
            .await
        }
    };
    let first = send(body.clone(), "k-1").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_text = first.text().await.unwrap();
    let again = send(body.clone(), "k-1").await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first_text);

    let other = submission(&ORDER.replace("PR-2026-0042", "PR-2026-0043"));
    let (s, v) = json_of(send(other.clone(), "k-1").await).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    // Another authority may use the same key for its own request.
    let token = api.token(JUDGE, "POST", path, other.as_bytes());
    let judge = api
        .send_with(
            "POST",
            path,
            other.as_bytes(),
            Some(&token),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_eq!(judge.status(), StatusCode::CREATED);
    // A bad key is refused by name.
    let (s, v) = json_of(send(body.clone(), "").await).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["errors"][0]["field"], "Idempotency-Key");
    // A rejection is replayed too, with the status it was first answered with.
    let broken = "{\"order\": ".to_owned();
    let first = send(broken.clone(), "k-bad").await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let (s1, v1) = json_of(first).await;
    let again = send(broken, "k-bad").await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let (s2, v2) = json_of(again).await;
    assert_eq!((s1, s2), (StatusCode::BAD_REQUEST, StatusCode::BAD_REQUEST));
    assert_eq!(v1["submission_id"], v2["submission_id"], "{v1} {v2}");

    // The same key sent five times at once (a client retrying through several instances):
    // one order, five identical answers.
    let body3 = submission(&ORDER.replace("PR-2026-0042", "PR-2026-0044"));
    let tries = (0..5).map(|_| send(body3.clone(), "k-race"));
    let answers = futures_util::future::join_all(tries).await;
    let mut texts = Vec::new();
    for a in answers {
        assert_eq!(a.status(), StatusCode::CREATED);
        texts.push(a.text().await.unwrap());
    }
    assert!(texts.windows(2).all(|w| w[0] == w[1]), "{texts:?}");

    // Paris has exactly two orders: the replays stored nothing.
    let count = api
        .app
        .pool
        .run(|conn| {
            use diesel::prelude::*;
            use writ::db::schema::orders;
            orders::table
                .filter(orders::authority_id.eq(PARIS.iss))
                .count()
                .get_result::<i64>(conn)
                .map_err(writ::db::DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(count, 2);
}

async fn an_authority_sees_only_its_own_orders(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    let (_, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/api/v1/orders/{id}");
    for (method, p, body) in [
        ("GET", path.clone(), String::new()),
        ("GET", format!("{path}/messages"), String::new()),
        ("GET", format!("{path}/disclosure"), String::new()),
        ("POST", format!("{path}/withdraw"), String::new()),
        (
            "POST",
            format!("{path}/messages"),
            json!({"text": "hello"}).to_string(),
        ),
    ] {
        let (s, v) = json_of(api.send(POLICE, method, &p, body.as_bytes()).await).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {p}: {v}");
        // The same answer as for an order that does not exist at all.
        let missing = p.replace(id, "00000000-0000-0000-0000-000000000000");
        let (s2, v2) = json_of(api.send(POLICE, method, &missing, body.as_bytes()).await).await;
        assert_eq!((s2, &v2["type"]), (s, &v["type"]));
    }
    let (_, read) = json_of(api.send(PARIS, "GET", &path, b"").await).await;
    assert_eq!(read["status"], "under_review");
}

async fn the_issuer_kind_comes_from_the_registry_and_validation_from_signatures(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    let codes = |v: &Value, key: &str| -> Vec<String> {
        v["decision"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_owned())
            .collect()
    };

    // A police key sending an order that claims a judge: the registry's kind counts.
    let mut claims_judge: Value = serde_json::from_str(ORDER).unwrap();
    claims_judge["issuer"]["kind"] = json!("judge");
    let (s, v) = json_of(
        api.submit(POLICE, &submission(&claims_judge.to_string()))
            .await,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let flags = [codes(&v, "review_flags"), codes(&v, "refusals")].concat();
    assert!(
        flags.iter().any(|c| c == "claimed_issuer_kind_mismatch"),
        "{flags:?}"
    );

    // A validated order (prosecutor + judge): without the judge's signature, pending a check.
    let mut validated: Value = serde_json::from_str(ORDER).unwrap();
    validated["validator"] = json!({"kind": "judge", "person": "Mme Juge", "authority": "JLD Paris", "country": "FR", "file_number": "JLD-7"});
    validated["dates"]["validated_at"] = json!("2026-09-01T08:00:00Z");
    let order_text = validated.to_string();
    let (_, unproven) = json_of(api.submit(PARIS, &submission(&order_text)).await).await;
    assert_eq!(unproven["validation_proven"], false);
    assert!(
        codes(&unproven, "review_flags")
            .iter()
            .any(|c| c == "validator_not_registered" || c == "pending_validation_check"),
        "{unproven}"
    );

    // With the judge's own signature over the order digest: proven.
    let signature = client::sign_validation(
        KeyAlgorithm::EdDSA,
        &private_pem(JUDGE.seed),
        JUDGE.kid,
        &client::ValidationRequest {
            validator: JUDGE.iss,
            submitter: Some(PARIS.iss),
            order_json: &order_text,
            now: chrono::Utc::now().timestamp(),
            lifetime_secs: 3600,
        },
    )
    .unwrap();
    let body = client::submission_body(&order_text, PDF, Some(&signature)).unwrap();
    let (s, proven) = json_of(api.submit(PARIS, &body).await).await;
    assert_eq!(s, StatusCode::CREATED, "{proven}");
    assert_eq!(proven["validation_proven"], true);
    assert!(
        !codes(&proven, "review_flags")
            .iter()
            .any(|c| c == "pending_validation_check" || c == "validator_not_registered"),
        "{proven}"
    );

    // Forged validations: signed by the issuer itself, by an unregistered key, over another
    // order, or by the judge's kid with another key. Each is refused by field and kept.
    let forge = |seed: u8, kid: &str, iss: &str, text: &str| {
        client::sign_validation(
            KeyAlgorithm::EdDSA,
            &private_pem(seed),
            kid,
            &client::ValidationRequest {
                validator: iss,
                submitter: Some(PARIS.iss),
                order_json: text,
                now: chrono::Utc::now().timestamp(),
                lifetime_secs: 3600,
            },
        )
        .unwrap()
    };
    for (signature, needle) in [
        (
            forge(PARIS.seed, PARIS.kid, PARIS.iss, &order_text),
            "own order",
        ),
        (forge(9, "nobody-1", "nobody", &order_text), "unknown"),
        (
            forge(JUDGE.seed, JUDGE.kid, JUDGE.iss, ORDER),
            "another order",
        ),
        (
            forge(9, JUDGE.kid, JUDGE.iss, &order_text),
            "does not verify",
        ),
    ] {
        let body = client::submission_body(&order_text, PDF, Some(&signature)).unwrap();
        let (s, v) = json_of(api.submit(PARIS, &body).await).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["errors"][0]["field"], "validation", "{v}");
        assert!(
            v["errors"][0]["message"].as_str().unwrap().contains(needle),
            "{v}"
        );
        let rejection = format!(
            "/api/v1/rejections/{}",
            v["submission_id"].as_str().unwrap()
        );
        let (s, r) = json_of(api.send(PARIS, "GET", &rejection, b"").await).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(r["body_sha256"], writ::digest::sha256_hex(body.as_bytes()));
        // Another authority cannot read it.
        let (s, _) = json_of(api.send(POLICE, "GET", &rejection, b"").await).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
}

async fn bad_submissions_are_refused_by_field_and_kept(backend: Backend) {
    let api = Api::start(backend, &[("WRIT_API__DOCUMENT_LIMIT_BYTES", "4096")]).await;
    let path = "/api/v1/orders";

    // Every required field, omitted one at a time, is named.
    let full: Value = serde_json::from_str(ORDER).unwrap();
    for (parent, member) in [
        (None, "reference"),
        (None, "instrument"),
        (None, "issuer"),
        (None, "dates"),
        (None, "targets"),
        (None, "categories"),
        (Some("issuer"), "kind"),
        (Some("issuer"), "person"),
        (Some("issuer"), "authority"),
        (Some("issuer"), "country"),
        (Some("dates"), "issued_at"),
        (Some("offence"), "description"),
        (Some("time_window"), "from"),
    ] {
        let mut order = full.clone();
        match parent {
            None => order.as_object_mut().unwrap().remove(member),
            Some(p) => order[p].as_object_mut().unwrap().remove(member),
        };
        let (s, v) = json_of(api.submit(PARIS, &submission(&order.to_string())).await).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        let field = match parent {
            None => format!("order.{member}"),
            Some(p) => format!("order.{p}.{member}"),
        };
        assert_eq!(v["errors"][0]["field"], field, "{v}");
        assert_eq!(v["errors"][0]["message"], "is required");
        assert!(v["submission_id"].is_string());
    }
    // Several faults at once are all listed; an unknown field (e.g. an address to notify) is
    // refused: notices go only to the registry's contacts.
    let mut order = full.clone();
    order["targets"] = json!([{"phone_number": "12"}]);
    order["categories"] = json!([]);
    let body = client::submission_body(&order.to_string(), b"not a pdf", None).unwrap();
    let (s, v) = json_of(api.submit(PARIS, &body).await).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "order.categories",
            "order.targets[0].phone_number",
            "document.content"
        ],
        "{v}"
    );
    let mut order = full.clone();
    order["notify_email"] = json!("attacker@example.com");
    let (s, v) = json_of(api.submit(PARIS, &submission(&order.to_string())).await).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("notify_email"),
        "{v}"
    );

    // No document; not JSON; wrong media type; too large (document, then whole body).
    let body = json!({"order": full}).to_string();
    let (s, v) = json_of(api.submit(PARIS, &body).await).await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("document"))
    );
    let (s, v) = json_of(api.submit(PARIS, "{\"order\": ").await).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["submission_id"].is_string());
    let body = submission(ORDER);
    let token = api.token(PARIS, "POST", path, body.as_bytes());
    let resp = api
        .app
        .client
        .post(format!("{}{path}", api.app.address))
        .bearer_auth(token)
        .header("content-type", "text/plain")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = client::submission_body(ORDER, &[b"%PDF-".as_slice(), &[b'x'; 5000]].concat(), None)
        .unwrap();
    let (s, v) = json_of(api.submit(PARIS, &big).await).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    let huge = "x".repeat(2 * 1024 * 1024);
    let (s, v) = json_of(
        api.send_with("POST", path, huge.as_bytes(), None, &[])
            .await,
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");

    // The rejections are kept and audited; nothing was stored as an order.
    let events = api.audit_events().await;
    let rejected = events
        .iter()
        .filter(|e| e["event"] == "order.submission_rejected")
        .count();
    assert_eq!(rejected, 13 + 2 + 1 + 1 + 1);
    assert!(!events.iter().any(|e| e["event"] == "order.received"));
    // Each keeps the HTTP status it was answered with: not JSON 400, too large 413, else 422.
    let statuses: std::collections::BTreeSet<u64> = events
        .iter()
        .filter(|e| e["event"] == "order.submission_rejected")
        .map(|e| e["refs"]["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [400, 413, 422].into(), "{events:?}");
}

async fn rate_limits_and_failed_authentications_are_throttled_and_summarised(backend: Backend) {
    let api = Api::start(
        backend,
        &[
            ("WRIT_API__RATE_LIMIT_PER_MINUTE", "3"),
            ("WRIT_API__AUTH_FAILURE_LIMIT_PER_MINUTE", "4"),
        ],
    )
    .await;
    // Per authority: the fourth request in a minute is refused with Retry-After. (A window
    // boundary in the middle could reset the count: then the fifth is refused.)
    let mut refused = None;
    for i in 0..5 {
        let resp = api.send(PARIS, "GET", "/api/v1/orders/none", b"").await;
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some((i, resp));
            break;
        }
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
    let (i, resp) = refused.expect("the rate limit refuses");
    assert!(i == 3 || i == 4, "refused at request {i}");
    let retry: i64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    // Another authority is not affected.
    let resp = api.send(JUDGE, "GET", "/api/v1/orders/none", b"").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Garbage tokens from one network: after the limit, 429 without examination. (A window
    // boundary may reset the count once, so keep trying until two 429s in a row.)
    let mut statuses: Vec<u16> = Vec::new();
    while !statuses.ends_with(&[429, 429]) {
        assert!(statuses.len() < 16, "never throttled: {statuses:?}");
        let resp = api
            .send_with("GET", "/api/v1/orders/x", b"", Some("garbage"), &[])
            .await;
        statuses.push(resp.status().as_u16());
    }
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().filter(|s| **s == 401).count() >= 4,
        "{statuses:?}"
    );
    // Only the examined (401) requests are counted: a throttled network is refused without
    // a write.
    let examined = u64::try_from(statuses.iter().filter(|s| **s == 401).count()).unwrap();

    // Summarised once the window closes: one entry per network and reason, not one per try.
    let later = chrono::Utc::now() + chrono::Duration::seconds(120);
    let written = api
        .app
        .pool
        .run(move |conn| writ::authority::throttle::summarise_failures(conn, later))
        .await
        .unwrap();
    assert!((1..=3).contains(&written), "{written}");
    let events = api.audit_events().await;
    let summaries: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "api.auth_failures")
        .collect();
    assert_eq!(summaries.len(), written);
    let total: u64 = summaries
        .iter()
        .map(|e| e["refs"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, examined);
    assert!(
        summaries
            .iter()
            .all(|e| e["refs"]["source"] == "127.0.0.0/24"),
        "{summaries:?}"
    );
    // Nothing twice.
    let again = api
        .app
        .pool
        .run(move |conn| writ::authority::throttle::summarise_failures(conn, later))
        .await
        .unwrap();
    assert_eq!(again, 0);
}

async fn the_answer_does_not_depend_on_matches_and_holds_follow_the_order(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    // Alice exists at the provider; bob does not.
    let pool = api.app.pool.clone();
    tokio::task::spawn_blocking(move || {
        let opts = writ::metadata::import::ImportOptions {
            kind: writ::metadata::records::RecordKind::Accounts,
            format: writ::metadata::import::Format::Jsonl,
            batch_rows: 10,
            source: "test".into(),
            actor: Actor::system(),
        };
        let row = r#"{"external_id":"u-1","status":"active","created_at":"2026-01-01T00:00:00Z","username":"alice"}"#;
        let s = writ::metadata::import::import(&pool, row.as_bytes(), &opts, &mut Vec::new(), &|_, _| {}).unwrap();
        assert_eq!(s.new, 1);
    })
    .await
    .unwrap();
    let alice = ORDER.replace("PR-2026-0042", "R-A");
    let bob = ORDER
        .replace("PR-2026-0042", "R-B")
        .replace("\"alice\"", "\"bob\"");
    let (_, a) = json_of(api.submit(PARIS, &submission(&alice)).await).await;
    let (_, b) = json_of(api.submit(PARIS, &submission(&bob)).await).await;
    let strip = |mut v: Value| {
        for k in [
            "id",
            "received_at",
            "updated_at",
            "order_sha256",
            "reference",
            "deadline_at",
        ] {
            v.as_object_mut().unwrap().remove(k);
        }
        let d = v["decision"].as_object_mut().unwrap();
        for k in [
            "order_reference",
            "received_at",
            "decided_at",
            "targets",
            "deadline",
            "earliest_release",
        ] {
            d.remove(k);
        }
        v
    };
    assert_eq!(strip(a.clone()), strip(b));

    // Holds by identifier are recorded at once and resolved to accounts by the job.
    let id = a["id"].as_str().unwrap().to_owned();
    let held = {
        let id = id.clone();
        api.app
            .pool
            .run(move |conn| {
                writ::orders::holds::resolve_all(conn, chrono::Utc::now()).unwrap();
                use diesel::prelude::*;
                use writ::db::schema::holds;
                holds::table
                    .filter(holds::order_id.eq(&id))
                    .filter(holds::expires_at.gt(chrono::Utc::now().timestamp_micros()))
                    .count()
                    .get_result::<i64>(conn)
                    .map_err(writ::db::DbError::from)
            })
            .await
            .unwrap()
    };
    assert_eq!(held, 1, "alice's account is held");
    // Withdrawing ends them.
    let resp = api
        .send(PARIS, "POST", &format!("/api/v1/orders/{id}/withdraw"), b"")
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let still = api
        .app
        .pool
        .run(move |conn| {
            use diesel::prelude::*;
            use writ::db::schema::holds;
            holds::table
                .filter(holds::order_id.eq(&id))
                .filter(holds::expires_at.gt(chrono::Utc::now().timestamp_micros()))
                .count()
                .get_result::<i64>(conn)
                .map_err(writ::db::DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(still, 0);
}

async fn the_readme_walkthrough_submits_an_order_with_writ_token(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    let dir = app.db.dir().to_owned();
    let run = |args: &[&str]| {
        let out = crate::cli::writ_for(&app.db, &[])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "writ {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let key = dir.join("paris.pem");
    let public = run(&["token", "keygen", "--out", key.to_str().unwrap()]);
    let public_path = dir.join("paris.pub.pem");
    std::fs::write(&public_path, &public).unwrap();
    run(&[
        "authority",
        "add",
        "--id",
        "fr-parquet-paris",
        "--name",
        "Parquet de Paris",
        "--country",
        "FR",
        "--kind",
        "prosecutor",
        "--contact",
        "dpo@justice.example",
    ]);
    run(&[
        "authority",
        "key-add",
        "fr-parquet-paris",
        "--kid",
        "paris-2026",
        "--alg",
        "EdDSA",
        "--public-key",
        public_path.to_str().unwrap(),
    ]);
    let order = dir.join("order.json");
    let pdf = dir.join("order.pdf");
    std::fs::write(&order, ORDER).unwrap();
    std::fs::write(&pdf, PDF).unwrap();
    let body = run(&[
        "token",
        "submission",
        "--order",
        order.to_str().unwrap(),
        "--document",
        pdf.to_str().unwrap(),
    ]);
    let body_path = dir.join("body.json");
    std::fs::write(&body_path, body.trim_end()).unwrap();
    let info: Value = app.get("/api/v1").await.json().await.unwrap();
    let token = run(&[
        "token",
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--kid",
        "paris-2026",
        "--iss",
        "fr-parquet-paris",
        "--aud",
        info["audience"].as_str().unwrap(),
        "--method",
        "POST",
        "--path",
        "/api/v1/orders",
        "--body",
        body_path.to_str().unwrap(),
    ]);
    let resp = app
        .client
        .post(format!("{}/api/v1/orders", app.address))
        .bearer_auth(token.trim())
        .header("content-type", "application/json")
        .body(std::fs::read(&body_path).unwrap())
        .send()
        .await
        .unwrap();
    let (status, created) = json_of(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    // The order digest is that of the file as written: what a validator signs.
    assert_eq!(
        created["order_sha256"],
        writ::digest::sha256_hex(ORDER.trim().as_bytes())
    );
}

/// `GET path` with each of `tokens`, all at once; the answers in the same order.
async fn get_all(api: &Api, path: &str, tokens: &[String]) -> Vec<(StatusCode, Value)> {
    let tasks: Vec<_> = tokens
        .iter()
        .map(|token| {
            let client = api.app.client.clone();
            let url = format!("{}{path}", api.app.address);
            let token = token.clone();
            tokio::spawn(async move {
                json_of(client.get(url).bearer_auth(token).send().await.unwrap()).await
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(tasks.len());
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// Tokens are spent in batches (group commit, `authority::spend`): many GETs at once, each with
/// its own token, are all answered and all recorded as used; the same token sent twice at the
/// same moment (so in one batch, or in two) is accepted once; and the rate limit still lets
/// exactly its number of requests through when they arrive together.
async fn concurrent_gets_share_commits_and_a_replay_in_the_same_batch_is_refused(backend: Backend) {
    const LIMIT: usize = 100;
    const AT_ONCE: usize = 64;
    let api = Api::start(backend, &[("WRIT_API__RATE_LIMIT_PER_MINUTE", "100")]).await;
    // The counts below hold within one minute window: start early in one.
    let now = chrono::Utc::now().timestamp();
    if writ::authority::throttle::retry_after(now) < 30 {
        tokio::time::sleep(std::time::Duration::from_secs(
            u64::try_from(writ::authority::throttle::retry_after(now)).unwrap() + 1,
        ))
        .await;
    }
    let window = writ::authority::throttle::window_start(chrono::Utc::now().timestamp());
    let response = api.submit(PARIS, &submission(ORDER)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let path = response.headers()["location"].to_str().unwrap().to_owned();

    // Distinct tokens, and one token twice, all sent at once.
    let mut tokens: Vec<String> = (0..AT_ONCE)
        .map(|_| api.token(PARIS, "GET", &path, b""))
        .collect();
    let twice = api.token(PARIS, "GET", &path, b"");
    tokens.insert(AT_ONCE / 2, twice.clone());
    tokens.push(twice);
    let answers = get_all(&api, &path, &tokens).await;
    let (pair, distinct): (Vec<_>, Vec<_>) = answers
        .iter()
        .enumerate()
        .partition(|(i, _)| *i == AT_ONCE / 2 || *i == AT_ONCE + 1);
    for (_, (status, body)) in &distinct {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["reference"], "PR-2026-0042");
    }
    let mut statuses: Vec<u16> = pair.iter().map(|(_, (s, _))| s.as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401], "one use of the token sent twice");
    let refused = pair
        .iter()
        .find(|(_, (s, _))| *s == StatusCode::UNAUTHORIZED)
        .unwrap();
    assert_eq!(refused.1.1["reason"], "replay", "{}", refused.1.1);

    // Each accepted token is recorded as used (the submission's too), and each is refused now.
    let used: i64 = api
        .app
        .pool
        .run(|c| {
            use diesel::prelude::*;
            writ::db::schema::used_token_ids::table
                .filter(writ::db::schema::used_token_ids::authority_id.eq(PARIS.iss))
                .count()
                .get_result(c)
                .map_err(writ::db::DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(used, i64::try_from(AT_ONCE).unwrap() + 2);
    let again = get_all(&api, &path, &tokens[..3]).await;
    for (status, body) in &again {
        assert_eq!(*status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["reason"], "replay");
    }

    // The rate limit: 1 submission and AT_ONCE + 1 reads counted so far; of AT_ONCE more at
    // once, exactly the rest of the limit pass.
    let tokens: Vec<String> = (0..AT_ONCE)
        .map(|_| api.token(PARIS, "GET", &path, b""))
        .collect();
    let answers = get_all(&api, &path, &tokens).await;
    let passed = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let limited = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(
        window,
        writ::authority::throttle::window_start(chrono::Utc::now().timestamp()),
        "the test ran across a minute boundary"
    );
    assert_eq!(passed, LIMIT - (AT_ONCE + 2), "{answers:?}");
    assert_eq!(passed + limited, AT_ONCE, "{answers:?}");
}
