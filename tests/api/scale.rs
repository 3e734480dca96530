//! Scale-out: two Writ instances on one PostgreSQL database behind a load balancer. The test
//! plays the balancer: it alternates requests between the two ports, adds the client's address
//! to `X-Forwarded-For` as a balancer does (`api.trusted_proxy_hops = 1`), and keeps no
//! stickiness. Intake, replay protection, throttles, sessions, approvals, background jobs and
//! audit appends from both must stay correct, and the audit log must verify after.
//!
//! PostgreSQL only (SQLite is one embedded file: it does not scale out), so these tests are not
//! `::sqlite`/`::postgres` pairs. Without `WRIT_TEST_POSTGRES_URL` they say so and pass, unless
//! `WRIT_TEST_REQUIRE_POSTGRES=1` (CI), when they fail.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use writ::audit::note::{NoteVerifier, open_checkpoint};
use writ::audit::{Actor, ActorKind};
use writ::db::{Db, DbConn, DbError};
use writ::staff::Role;

use crate::helpers::{Backend, TestApp, TestDb, postgres_admin_url, spawn_second_instance};
use crate::orders::{Api, ORDER, PARIS, Signer, json_of, submission};
use crate::workspace::{Browser, PASSWORD, add_users, hash_in, seed_alice};

/// Both instances run with this configuration: the same for both, as in production.
const ENV: [(&str, &str); 6] = [
    // One proxy (the balancer) in front: its X-Forwarded-For entry names the client.
    ("WRIT_API__TRUSTED_PROXY_HOPS", "1"),
    ("WRIT_API__AUTH_FAILURE_LIMIT_PER_MINUTE", "4"),
    // Background jobs, mail sender and HI-1 deliverer tick every second on both instances.
    ("WRIT_API__JOBS_INTERVAL_SECS", "1"),
    ("WRIT_API__RATE_LIMIT_PER_MINUTE", "1000"),
    ("WRIT_MAIL__LEGAL_TEAM", "legal@provider.example"),
    ("WRIT_MAIL__AUDITORS", "auditor@firm.example"),
];

/// The authorities' system as the balancer reports it (TEST-NET-1).
const CLIENT: &str = "192.0.2.10";

/// Whether PostgreSQL is there; without it, a message (or a failure when CI requires it).
fn postgres_or_skip(test: &str) -> bool {
    if postgres_admin_url().is_some() {
        return true;
    }
    assert!(
        std::env::var("WRIT_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
        "WRIT_TEST_REQUIRE_POSTGRES=1 but WRIT_TEST_POSTGRES_URL is not set: scale::{test} needs PostgreSQL"
    );
    eprintln!(
        "WRIT_TEST_POSTGRES_URL is not set: scale::{test} (two instances on one PostgreSQL) not run"
    );
    false
}

/// Instance A (with the test's seeded registry) and instance B, reached through the balancer.
struct Pair {
    api: Api,
    b: String,
    b_pool: Db,
    http: reqwest::Client,
}

impl Pair {
    /// Instance `i % 2`: A for even, B for odd.
    fn at(&self, i: usize) -> &str {
        if i.is_multiple_of(2) {
            &self.api.app.address
        } else {
            &self.b
        }
    }

    /// A request to instance `i` from the client at `from`, as the balancer forwards it.
    fn request(
        &self,
        i: usize,
        from: &str,
        method: &str,
        path: &str,
        body: &[u8],
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.at(i)))
            .header("x-forwarded-for", from)
            .body(body.to_vec());
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req
    }

    async fn raw(
        &self,
        i: usize,
        from: &str,
        method: &str,
        path: &str,
        body: &[u8],
        token: Option<&str>,
    ) -> reqwest::Response {
        self.request(i, from, method, path, body, token)
            .send()
            .await
            .unwrap()
    }

    /// A request signed by `who`, to instance `i`.
    async fn send(
        &self,
        i: usize,
        who: Signer,
        method: &str,
        path: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let token = self.api.token(who, method, path, body);
        let mut req = self.request(i, CLIENT, method, path, body, Some(&token));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    async fn submit(&self, i: usize, body: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        self.send(i, PARIS, "POST", "/api/v1/orders", body.as_bytes(), headers)
            .await
    }

    /// A browser going through the balancer to instance `i` for its next requests.
    fn via<'b>(&self, browser: &'b mut Browser, i: usize) -> &'b mut Browser {
        browser.base = self.at(i).to_owned();
        browser
    }

    /// A user signed in through the balancer (sign-in page from A, form posted to B).
    async fn signed_in(&self, user: &str) -> Browser {
        let mut b = Browser::new(&self.api.app);
        let (_, page, _) = self.via(&mut b, 0).get("/login").await;
        let csrf = Browser::csrf_in(&page);
        let (status, _, _) = self
            .via(&mut b, 1)
            .post(
                "/login",
                &[("username", user), ("password", PASSWORD), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{user} signs in");
        b
    }
}

/// Polls the database every 100 ms until `probe` answers, for at most 15 s.
async fn wait_for<T, F>(pool: &Db, what: &str, probe: F) -> T
where
    T: Send + 'static,
    F: Fn(&mut DbConn) -> Option<T> + Clone + Send + 'static,
{
    for _ in 0..150 {
        let p = probe.clone();
        if let Some(v) = pool.run(move |c| Ok::<_, DbError>(p(c))).await.unwrap() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn mails(c: &mut DbConn) -> Vec<writ::mail::OutboxMessage> {
    writ::mail::list(c, None, 1000).unwrap()
}

fn entries(c: &mut DbConn) -> Vec<writ::audit::log::StoredEntry> {
    writ::audit::log::entries(c, 0, u64::MAX / 2).unwrap()
}

async fn audit_entries(pool: &Db) -> Vec<writ::audit::log::StoredEntry> {
    pool.run(|c| Ok::<_, DbError>(entries(c))).await.unwrap()
}

async fn verifier_at(pair: &Pair, i: usize) -> (String, NoteVerifier) {
    let keys: Value = pair
        .http
        .get(format!("{}/audit/keys", pair.at(i)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let vkey = keys["note_verifier_key"].as_str().unwrap().to_owned();
    let verifier = NoteVerifier::new(&vkey).unwrap();
    (vkey, verifier)
}

async fn sign_at(pair: &Pair, i: usize) -> String {
    let res = pair
        .http
        .post(format!("{}/audit/checkpoint", pair.at(i)))
        .bearer_auth(&pair.api.app.db.auditor_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

/// Runs a test body on a runtime of its own, then stops that runtime (and with it the
/// instances, their background jobs and their pools) before dropping what the body returns
/// (the test database). Dropping the database first would leave jobs of both instances waiting
/// out `database.connect_timeout_secs` for a database that is gone.
fn run<T>(test: &str, body: impl Future<Output = T>) {
    if !postgres_or_skip(test) {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let kept = runtime.block_on(body);
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(kept);
}

#[test]
fn two_instances_share_one_postgresql() {
    run("two_instances_share_one_postgresql", share_one_postgresql());
}

#[test]
fn two_instances_start_together_on_a_fresh_postgresql() {
    run(
        "two_instances_start_together_on_a_fresh_postgresql",
        start_together_on_a_fresh_postgresql(),
    );
}

/// Returns the instances' database, to be dropped once they are stopped.
async fn share_one_postgresql() -> TestApp {
    let api = Api::start(Backend::Postgres, &ENV).await;
    let second = spawn_second_instance(&api.app, &ENV).await;
    let pair = Pair {
        api,
        b: second.address,
        b_pool: second.pool,
        http: reqwest::Client::new(),
    };
    let app = &pair.api.app;
    add_users(app).await;
    seed_alice(app).await;
    app.pool
        .run(|conn| {
            writ::staff::add_user(
                conn,
                &Actor::new(ActorKind::System, "t"),
                "cara",
                "cara",
                Role::LegalApprover,
                PASSWORD,
            )
            .map_err(|e| DbError::Setup(e.to_string()))
        })
        .await
        .unwrap();

    // Nothing an instance answers depends on which one it is: the audience tokens name, the
    // audit key, the package key.
    for path in ["/api/v1", "/audit/keys", "/packages/public-key"] {
        let mut answers = Vec::new();
        for i in 0..2 {
            let resp = pair.raw(i, CLIENT, "GET", path, b"", None).await;
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            answers.push(resp.text().await.unwrap());
        }
        assert_eq!(answers[0], answers[1], "{path} differs between A and B");
    }

    // --- Intake: orders submitted alternately to A and B are read back on the other one.
    let mut order_ids = Vec::new();
    for i in 0..4 {
        let body = submission(&ORDER.replace("PR-2026-0042", &format!("SCALE-{i}")));
        let (status, created) = json_of(pair.submit(i, &body, &[]).await).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        let path = format!("/api/v1/orders/{id}");
        let (status, read) = json_of(pair.send(i + 1, PARIS, "GET", &path, b"", &[]).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            read, created,
            "the other instance reads the order as it was answered"
        );
        order_ids.push(id);
    }
    // An emergency order: its 8-hour deadline is due for a reminder at once (see the jobs).
    let mut urgent: Value = serde_json::from_str(ORDER).unwrap();
    urgent["reference"] = json!("SCALE-URGENT");
    urgent["emergency"] = json!({"justification": "Imminent threat to life."});
    let (status, created) =
        json_of(pair.submit(1, &submission(&urgent.to_string()), &[]).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let urgent_id = created["id"].as_str().unwrap().to_owned();

    // One idempotency key on A, then on B: B replays A's answer, byte for byte.
    let body = submission(&ORDER.replace("PR-2026-0042", "SCALE-IDEM"));
    let first = pair.submit(0, &body, &[("Idempotency-Key", "k-ab")]).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first_text = first.text().await.unwrap();
    let again = pair.submit(1, &body, &[("Idempotency-Key", "k-ab")]).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first_text);
    // The same key sent to both at once, three times each: one order, six identical answers.
    let body = submission(&ORDER.replace("PR-2026-0042", "SCALE-RACE"));
    let answers = futures_util::future::join_all(
        (0..6).map(|i| pair.submit(i, &body, &[("Idempotency-Key", "k-race")])),
    )
    .await;
    let mut texts = Vec::new();
    for a in answers {
        assert_eq!(a.status(), StatusCode::CREATED);
        texts.push(a.text().await.unwrap());
    }
    assert!(texts.windows(2).all(|w| w[0] == w[1]), "{texts:?}");
    let references = app
        .pool
        .run(|conn| {
            use diesel::prelude::*;
            use writ::db::schema::orders;
            orders::table
                .filter(orders::reference.eq_any(["SCALE-IDEM", "SCALE-RACE"]))
                .select(orders::reference)
                .load::<String>(conn)
                .map_err(DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(references.len(), 2, "one order per key: {references:?}");

    // --- Replay protection: a token used on A is a replay on B; sent to both at once, one
    // instance accepts it and the other refuses it.
    let path = format!("/api/v1/orders/{}", order_ids[0]);
    let token = pair.api.token(PARIS, "GET", &path, b"");
    let resp = pair.raw(0, CLIENT, "GET", &path, b"", Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, problem) =
        json_of(pair.raw(1, CLIENT, "GET", &path, b"", Some(&token)).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    assert_eq!(problem["reason"], "replay");
    let token = pair.api.token(PARIS, "GET", &path, b"");
    let (a, b) = tokio::join!(
        pair.raw(0, CLIENT, "GET", &path, b"", Some(&token)),
        pair.raw(1, CLIENT, "GET", &path, b"", Some(&token)),
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401], "one use, on one instance");

    // --- Throttles count in the database: garbage tokens from one network, alternating
    // between A and B, are examined four times in all (the limit), not four times each. The
    // network is the client's, from X-Forwarded-For, not the balancer's.
    let mut throttled = None;
    for network in ["198.51.100.7", "203.0.113.9"] {
        let window = writ::authority::throttle::window_start(chrono::Utc::now().timestamp());
        let mut statuses: Vec<u16> = Vec::new();
        for i in 0..6 {
            let resp = pair
                .raw(i, network, "GET", "/api/v1/orders/x", b"", Some("garbage"))
                .await;
            statuses.push(resp.status().as_u16());
        }
        // A minute boundary in the middle resets the count: try once more on another network.
        let now = writ::authority::throttle::window_start(chrono::Utc::now().timestamp());
        if now == window {
            throttled = Some(statuses);
            break;
        }
    }
    assert_eq!(
        throttled.expect("two windows in a row were cut by a minute boundary"),
        [401, 401, 401, 401, 429, 429],
        "the failed-authentication count is shared by the instances"
    );
    // Other clients behind the same balancer are not affected.
    for i in 0..2 {
        let resp = pair.send(i, PARIS, "GET", &path, b"", &[]).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }

    // --- Sessions: signed in through A and B (above), used on both, ended on B: dead on A.
    let mut olga = pair.signed_in("olga").await;
    for i in 0..2 {
        let (status, _, _) = pair.via(&mut olga, i).get("/orders").await;
        assert_eq!(status, StatusCode::OK, "the session works on instance {i}");
    }
    // The session's CSRF token, read from a page of A, is accepted by a form posted to B.
    let (_, page, _) = pair.via(&mut olga, 0).get("/account").await;
    let csrf = Browser::csrf_in(&page);
    let (status, _, to) = pair
        .via(&mut olga, 1)
        .post("/logout", &[("csrf", &csrf)])
        .await;
    assert_eq!(
        (status, to.as_deref()),
        (StatusCode::SEE_OTHER, Some("/login"))
    );
    let (status, _, to) = pair.via(&mut olga, 0).get("/orders").await;
    assert_eq!(
        (status, to.as_deref()),
        (StatusCode::SEE_OTHER, Some("/login")),
        "signed out on B is signed out on A"
    );

    // --- Background jobs run on both instances without double work: the emergency order's
    // deadline reminder is queued once, and a new checkpoint is pushed to the auditors once.
    let first_note = sign_at(&pair, 0).await;
    let reminder = |kind: &'static str| {
        move |c: &mut DbConn| {
            let n = mails(c).iter().filter(|m| m.kind == kind).count();
            (n > 0).then_some(n)
        }
    };
    wait_for(
        &app.pool,
        "the deadline reminder",
        reminder("deadline_reminder"),
    )
    .await;
    wait_for(&app.pool, "the checkpoint notice", reminder("checkpoint")).await;
    // Several more ticks of both instances' jobs.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let queued = app.pool.run(|c| Ok::<_, DbError>(mails(c))).await.unwrap();
    let count = |kind: &str| queued.iter().filter(|m| m.kind == kind).count();
    assert_eq!(count("deadline_reminder"), 1, "reminded once");
    assert_eq!(count("checkpoint"), 1, "one notice per checkpoint");
    let reminded = queued
        .iter()
        .find(|m| m.kind == "deadline_reminder")
        .unwrap();
    assert_eq!(reminded.order_id.as_deref(), Some(urgent_id.as_str()));

    // --- Approvals: the first on A, the second on B, releases once.
    let mut alex = pair.signed_in("alex").await;
    let mut bea = pair.signed_in("bea").await;
    let mut cara = pair.signed_in("cara").await;
    let approve = async |pair: &Pair, b: &mut Browser, i: usize, id: &str, hash: Option<&str>| {
        let (_, page, _) = pair.via(b, i).get("/account").await;
        let csrf = Browser::csrf_in(&page);
        let hash = match hash {
            Some(h) => h.to_owned(),
            None => {
                let (status, preview, _) = pair
                    .via(b, i)
                    .post_follow(&format!("/orders/{id}/package"), &[("csrf", &csrf)])
                    .await;
                assert_eq!(status, StatusCode::OK, "{preview}");
                hash_in(&preview)
            }
        };
        let (status, body, _) = pair
            .via(b, i)
            .post(
                &format!("/orders/{id}/approve"),
                &[("csrf", &csrf), ("snapshot_sha256", &hash)],
            )
            .await;
        (status, body, hash)
    };
    let released = |id: String| {
        move |c: &mut DbConn| -> Result<(usize, i64), DbError> {
            use diesel::prelude::*;
            use writ::db::schema::packages;
            let events = entries(c)
                .into_iter()
                .filter(|e| e.event == "order.released" && e.order_id.as_deref() == Some(&id))
                .count();
            let packages = packages::table
                .filter(packages::order_id.eq(&id))
                .filter(packages::status.eq("released"))
                .count()
                .get_result::<i64>(c)?;
            Ok((events, packages))
        }
    };
    let id = order_ids[1].clone();
    let (status, body, hash) = approve(&pair, &mut alex, 0, &id, None).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    // The second approver previews on B: the same snapshot.
    let (status, body, hash_b) = approve(&pair, &mut bea, 1, &id, None).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(hash_b, hash);
    let (status, body, _) = approve(&pair, &mut cara, 0, &id, Some(&hash)).await;
    assert_eq!(status, StatusCode::CONFLICT, "released already: {body}");
    assert_eq!(app.pool.run(released(id.clone())).await.unwrap(), (1, 1));
    // The package downloads from either instance and verifies with the key the other
    // publishes: the same signed manifest (the audit proof beside it is made per download).
    let mut manifests = Vec::new();
    for i in 0..2 {
        let pem = pair
            .raw(i + 1, CLIENT, "GET", "/packages/public-key", b"", None)
            .await
            .text()
            .await
            .unwrap();
        let key = writ::disclosure::keys::parse_public_pem(&pem).unwrap();
        let path = format!("/api/v1/orders/{id}/disclosure");
        let resp = pair.send(i, PARIS, "GET", &path, b"", &[]).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let tar = resp.bytes().await.unwrap();
        let verified = writ::disclosure::package::verify(&tar, &key).unwrap();
        assert!(verified.audit_proof.is_some());
        manifests.push(verified.manifest);
    }
    assert!(
        manifests[0] == manifests[1],
        "the same package from A and B"
    );
    assert_eq!(manifests[0].approvers, ["alex", "bea"]);

    // The race: the second approval clicked at the same moment on A and on B.
    let id = order_ids[2].clone();
    let (status, body, hash) = approve(&pair, &mut alex, 1, &id, None).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (b, c) = tokio::join!(
        approve(&pair, &mut bea, 0, &id, Some(&hash)),
        approve(&pair, &mut cara, 1, &id, Some(&hash)),
    );
    let mut statuses = [b.0.as_u16(), c.0.as_u16()];
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [303, 409],
        "one releases, the other is told it is done: {} / {}",
        b.1,
        c.1
    );
    assert_eq!(app.pool.run(released(id.clone())).await.unwrap(), (1, 1));

    // --- Audit appends from both: a burst of 50 submissions split across A and B at once.
    let bodies: Vec<String> = (0..50)
        .map(|i| submission(&ORDER.replace("PR-2026-0042", &format!("SCALE-BURST-{i}"))))
        .collect();
    let answers = futures_util::future::join_all(
        bodies
            .iter()
            .enumerate()
            .map(|(i, body)| pair.submit(i, body, &[])),
    )
    .await;
    let mut burst_ids = HashSet::new();
    for a in answers {
        let (status, created) = json_of(a).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        burst_ids.insert(created["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(burst_ids.len(), 50);

    // Both instances sign at the same moment: the signing lock lets each sign or find the
    // other's checkpoint; every note verifies under the key either instance publishes.
    let (note_a, note_b) = tokio::join!(sign_at(&pair, 0), sign_at(&pair, 1));
    let (vkey_a, verifier) = verifier_at(&pair, 0).await;
    let (vkey_b, _) = verifier_at(&pair, 1).await;
    assert_eq!(vkey_a, vkey_b);
    let first = open_checkpoint(&first_note, &verifier).unwrap();
    let cp_a = open_checkpoint(&note_a, &verifier).unwrap();
    let cp_b = open_checkpoint(&note_b, &verifier).unwrap();
    if cp_a.size == cp_b.size {
        assert_eq!(note_a, note_b, "one signature per size");
    }
    assert!(first.size < cp_a.size.min(cp_b.size));
    let last = sign_at(&pair, 1).await;
    let last = open_checkpoint(&last, &verifier).unwrap();

    // The log: sequence numbers 0..n without gaps or repeats, one `order.received` per order.
    let log = audit_entries(&pair.b_pool).await;
    let seqs: Vec<i64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (0..i64::try_from(log.len()).unwrap()).collect::<Vec<_>>()
    );
    assert!(u64::try_from(log.len()).unwrap() >= last.size);
    let received: Vec<&str> = log
        .iter()
        .filter(|e| e.event == "order.received")
        .filter_map(|e| e.order_id.as_deref())
        .collect();
    let distinct: HashSet<&str> = received.iter().copied().collect();
    assert_eq!(received.len(), distinct.len(), "an order received twice");
    let orders = app
        .pool
        .run(|conn| {
            use diesel::prelude::*;
            use writ::db::schema::orders;
            orders::table
                .select(orders::id)
                .load::<String>(conn)
                .map_err(DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(distinct, orders.iter().map(String::as_str).collect());
    assert!(burst_ids.iter().all(|id| distinct.contains(id.as_str())));

    // The live check operators run: the whole log against the latest checkpoint (and the
    // checkpoints inside it), the outside copy, and the stored tree.
    let pool = app.pool.clone();
    let audit = app.db.settings(&ENV).audit;
    let live = tokio::task::spawn_blocking(move || {
        let signer =
            writ::audit::service::load_signer(&audit, &mut pool.conn().unwrap(), false).unwrap();
        writ::audit::service::verify_live(&pool, &signer)
    })
    .await
    .unwrap()
    .unwrap();
    let report = live.verified.expect("a checkpoint was verified");
    assert_eq!(report.tree_size, last.size);
    assert!(report.checkpoints >= 2, "{report:?}");

    // Mail: the senders of both instances deliver everything, each message once; no
    // checkpoint is announced twice.
    let last_size = last.size.to_string();
    let sent = wait_for(&app.pool, "the outbox to drain", move |c| {
        let announced = writ::db::meta::get(c, "mail.checkpoint_size").unwrap();
        let all = mails(c);
        let done = announced.as_deref() == Some(last_size.as_str())
            && all.iter().all(|m| m.status == "sent");
        done.then_some(all)
    })
    .await;
    assert!(
        sent.iter().all(|m| m.attempts == 1),
        "a message was claimed twice"
    );
    let files = std::fs::read_dir(app.db.dir().join("outbox"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "eml"))
        })
        .count();
    assert_eq!(files, sent.len());
    let checkpoint_bodies: Vec<&str> = sent
        .iter()
        .filter(|m| m.kind == "checkpoint")
        .map(|m| m.body.as_str())
        .collect();
    let distinct: HashSet<&str> = checkpoint_bodies.iter().copied().collect();
    assert_eq!(distinct.len(), checkpoint_bodies.len());
    assert_eq!(
        sent.iter()
            .filter(|m| m.kind == "deadline_reminder")
            .count(),
        1
    );
    pair.api.app
}

/// Returns the instances' database, to be dropped once they are stopped.
async fn start_together_on_a_fresh_postgresql() -> TestApp {
    let db = TestDb::new(Backend::Postgres);
    // Production provisions both keys before the first start and lets no instance create one.
    writ::audit::keys::init(&db.dir().join("audit.key")).unwrap();
    writ::audit::keys::init(&db.dir().join("audit-entry.key")).unwrap();
    writ::disclosure::keys::init(&db.dir().join("package.key")).unwrap();
    let env = [
        ("WRIT_AUDIT__CREATE_KEY_IF_MISSING", "false"),
        ("WRIT_PACKAGE__CREATE_KEY_IF_MISSING", "false"),
        ("WRIT_WORKSPACE__CREATE_FIRST_ADMIN", "true"),
    ];
    // Both migrate on start, at the same moment: one migrates under the lock, the other waits,
    // then finds nothing pending.
    let (a, b) = tokio::join!(
        writ::web::Application::build(db.settings(&env)),
        writ::web::Application::build(db.settings(&env)),
    );
    let (a, b) = (a.expect("A starts"), b.expect("B starts"));
    // `writ serve` records the policy set at every start: once in the log, not once each.
    let (ra, rb) = tokio::join!(a.record_policy_set(), b.record_policy_set());
    let mut recorded = [ra.unwrap(), rb.unwrap()];
    recorded.sort_unstable();
    assert_eq!(recorded, [false, true]);
    let b_address = format!("http://127.0.0.1:{}", b.port());
    tokio::spawn(b.run_until_stopped());
    let app = spawn_running(a, db);
    let status = app.pool.run(writ::db::migrations::status).await.unwrap();
    assert!(
        status.pending.is_empty() && status.unknown.is_empty(),
        "{status:?}"
    );
    let (admins, policy_entries) = app
        .pool
        .run(|conn| {
            use diesel::prelude::*;
            use writ::db::schema::staff_users;
            let users = staff_users::table.count().get_result::<i64>(conn)?;
            let policy = entries(conn)
                .iter()
                .filter(|e| e.event == "policy.loaded")
                .count();
            Ok::<_, DbError>((users, policy))
        })
        .await
        .unwrap();
    assert_eq!((admins, policy_entries), (1, 1));
    // One admin, created by one of them; the password in the file works on both.
    let text = std::fs::read_to_string(app.db.dir().join("initial-admin-password")).unwrap();
    let password = text.lines().nth(1).unwrap().to_owned();
    for address in [&app.address, &b_address] {
        let ready = reqwest::get(format!("{address}/readyz")).await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
        let mut admin = Browser::new(&app);
        admin.base = address.clone();
        let (_, page, _) = admin.get("/login").await;
        let csrf = Browser::csrf_in(&page);
        let (status, _, _) = admin
            .post(
                "/login",
                &[
                    ("username", "admin"),
                    ("password", &password),
                    ("csrf", &csrf),
                ],
            )
            .await;
        assert_eq!(
            status,
            StatusCode::SEE_OTHER,
            "the admin signs in on {address}"
        );
    }
    app
}

/// Runs an application the test built itself as the [`TestApp`] of `db`.
fn spawn_running(app: writ::web::Application, db: TestDb) -> TestApp {
    let port = app.port();
    let pool = app.db().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        pool,
        client: reqwest::Client::new(),
        db,
    }
}

// Known scale-out defects in `src/`, reproduced deterministically. Ignored until fixed; each
// asserts the correct behaviour, so it passes once the defect is gone.

#[test]
fn a_hold_expiry_is_audited_once_by_two_instances() {
    run("a_hold_expiry_is_audited_once_by_two_instances", async {
        let api = Api::start(Backend::Postgres, &[]).await;
        let mut pr: Value = serde_json::from_str(ORDER).unwrap();
        pr["reference"] = json!("SCALE-PRESERVE");
        pr["instrument"] = json!("eu.epoc_pr");
        pr["validator"] = json!({"kind": "judge", "person": "Mme J", "authority": "JLD Paris", "country": "FR", "file_number": "JLD-1"});
        pr["emergency"] = json!({"justification": "Data at risk of deletion."});
        pr["targets"] = json!([{"username": "alice"}]);
        let (status, created) =
            json_of(api.submit(PARIS, &submission(&pr.to_string())).await).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        let later = chrono::Utc::now() + chrono::Duration::days(400);
        let count = race_two_jobs(&api.app, move |c| {
            writ::orders::tasks::expire_holds(c, later)
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .await;
        let expired = count(&id, "order.hold_expired");
        assert_eq!(expired, 1, "the hold's expiry was audited {expired} times");
        api.app
    });
}

#[test]
fn a_package_deletion_is_audited_once_by_two_instances() {
    run(
        "a_package_deletion_is_audited_once_by_two_instances",
        async {
            let api = Api::start(Backend::Postgres, &[]).await;
            add_users(&api.app).await;
            seed_alice(&api.app).await;
            let (_, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
            let id = created["id"].as_str().unwrap().to_owned();
            for user in ["alex", "bea"] {
                let mut b = Browser::new(&api.app);
                b.sign_in(user, PASSWORD).await;
                let csrf = b.session_csrf().await;
                let (_, preview, _) = b
                    .post_follow(&format!("/orders/{id}/package"), &[("csrf", &csrf)])
                    .await;
                let hash = hash_in(&preview);
                let (status, _, _) = b
                    .post(
                        &format!("/orders/{id}/approve"),
                        &[("csrf", &csrf), ("snapshot_sha256", &hash)],
                    )
                    .await;
                assert_eq!(status, StatusCode::SEE_OTHER);
            }
            let later = chrono::Utc::now() + chrono::Duration::days(91);
            let count = race_two_jobs(&api.app, move |c| {
                writ::orders::approval::purge_released(c, 90, later)
                    .map(drop)
                    .map_err(|e| e.to_string())
            })
            .await;
            let deleted = count(&id, "order.package_deleted");
            assert_eq!(deleted, 1, "the deletion was audited {deleted} times");
            api.app
        },
    );
}

/// Runs `job` on two pools (two instances' background jobs) while a third connection holds the
/// audit append lock, so that both find the same due rows before either commits; returns a
/// counter of audit events per order once both are done.
async fn race_two_jobs<F>(app: &TestApp, job: F) -> impl Fn(&str, &str) -> usize + use<F>
where
    F: Fn(&mut DbConn) -> Result<(), String> + Clone + Send + 'static,
{
    let second = Db::open(&app.db.settings(&[]).database).unwrap();
    writ::audit::service::install_entry_key(&second, &app.db.settings(&[]).audit, false).unwrap();
    let pools = [app.pool.clone(), second, app.pool.clone()];
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = {
        let pool = pools[2].clone();
        std::thread::spawn(move || {
            let mut conn = pool.conn().unwrap();
            writ::db::write_tx(&mut conn, |c| {
                writ::audit::log::lock(c).unwrap();
                locked_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(1500));
                Ok::<_, diesel::result::Error>(())
            })
            .unwrap();
        })
    };
    locked_rx.recv().unwrap();
    let jobs: Vec<_> = pools[..2]
        .iter()
        .map(|pool| {
            let (pool, job) = (pool.clone(), job.clone());
            let handle = std::thread::spawn(move || job(&mut pool.conn().unwrap()));
            std::thread::sleep(Duration::from_millis(300));
            handle
        })
        .collect();
    holder.join().unwrap();
    for j in jobs {
        j.join().unwrap().unwrap();
    }
    let log = audit_entries(&app.pool).await;
    move |order: &str, event: &str| {
        log.iter()
            .filter(|e| e.event == event && e.order_id.as_deref() == Some(order))
            .count()
    }
}

#[test]
fn sign_in_failures_behind_a_balancer_are_counted_per_client() {
    run(
        "sign_in_failures_behind_a_balancer_are_counted_per_client",
        async {
            let app = crate::helpers::spawn_app_with(
                Backend::Postgres,
                &[("WRIT_API__TRUSTED_PROXY_HOPS", "1")],
            )
            .await;
            add_users(&app).await;
            let http = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let sign_in = async |client: &str, user: &str, password: &str| {
                let form = http
                    .get(format!("{}/login", app.address))
                    .send()
                    .await
                    .unwrap();
                let cookie = form
                    .headers()
                    .get_all("set-cookie")
                    .iter()
                    .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
                    .find(|c| c.starts_with("writ_login="))
                    .unwrap();
                let csrf = Browser::csrf_in(&form.text().await.unwrap());
                http.post(format!("{}/login", app.address))
                    .header("cookie", cookie)
                    .header("x-forwarded-for", client)
                    .form(&[("username", user), ("password", password), ("csrf", &csrf)])
                    .send()
                    .await
                    .unwrap()
                    .status()
            };
            // Twenty people on twenty networks mistype a user name once each...
            for i in 0..20 {
                let status = sign_in(&format!("10.{i}.0.1"), &format!("nobody{i}"), "wrong").await;
                assert_eq!(status, StatusCode::UNAUTHORIZED);
            }
            // ...which must not lock out a colleague on yet another network.
            let status = sign_in("192.0.2.44", "rita", PASSWORD).await;
            assert_eq!(
                status,
                StatusCode::SEE_OTHER,
                "throttled by other people's failures"
            );
            app
        },
    );
}
