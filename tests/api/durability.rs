//! An order acknowledged with 201 is never lost: `writ serve` is killed with SIGKILL while
//! authorities' systems are still submitting, and every order it had acknowledged is there after
//! a restart, with its audit entry, in a log that still verifies.
//!
//! SIGKILL gives the process no chance to flush or roll back anything: what survives is exactly
//! what was committed before the answer went out. (A power cut additionally needs the commit to
//! have reached the disk: on SQLite that is `database.sqlite_synchronous = "full"`, the default,
//! which this test checks is in force on the connections Writ opens; on PostgreSQL it is the
//! server's `synchronous_commit`, which Writ leaves at the server's setting.)

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use serde_json::Value;
use writ::authority::KeyAlgorithm;
use writ::authority::client::{self, TokenRequest};

use crate::both_backends;
use crate::cli::writ_for;
use crate::helpers::{Backend, TestDb};
use crate::orders::{ORDER, PARIS, PDF, private_pem};

both_backends!(an_order_acknowledged_with_201_survives_kill_9_of_the_server);

/// Orders acknowledged before the kill.
const ACKNOWLEDGED_BEFORE_KILL: usize = 40;
/// Submitting clients.
const CLIENTS: usize = 8;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `writ serve` on the test database, the rate limit out of the way of the submitting clients.
fn serve(db: &TestDb, port: u16) -> Child {
    writ_for(
        db,
        &[
            ("WRIT_SERVER__PORT", &port.to_string()),
            ("WRIT_API__RATE_LIMIT_PER_MINUTE", "100000"),
        ],
    )
    .arg("serve")
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap()
}

/// The API's audience, once the server answers.
async fn wait_for_api(client: &reqwest::Client, base: &str, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "writ serve exited early"
        );
        if let Ok(r) = client.get(format!("{base}/api/v1")).send().await
            && r.status().is_success()
        {
            let info: Value = r.json().await.unwrap();
            return info["audience"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "writ serve did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn token(audience: &str, method: &str, path: &str, body: &[u8]) -> String {
    client::sign_request(
        KeyAlgorithm::EdDSA,
        &private_pem(PARIS.seed),
        PARIS.kid,
        &TokenRequest {
            issuer: PARIS.iss,
            audience,
            method,
            path,
            body,
            now: chrono::Utc::now().timestamp(),
            lifetime_secs: 120,
        },
    )
    .unwrap()
}

fn order_body(client: usize, n: usize) -> String {
    let mut order: Value = serde_json::from_str(ORDER).unwrap();
    order["reference"] = Value::String(format!("KILL-{client}-{n}"));
    client::submission_body(&order.to_string(), PDF, None).unwrap()
}

async fn an_order_acknowledged_with_201_survives_kill_9_of_the_server(backend: Backend) {
    let db = TestDb::new(backend);
    let settings = db.settings(&[]);
    // Migrated, with Paris and its key registered, as an operator would leave it.
    crate::crash::setup(&db, &[]);

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = serve(&db, port);
    let http = reqwest::Client::new();
    let audience = wait_for_api(&http, &base, &mut child).await;

    // Clients submit as fast as they are answered, keeping what was acknowledged.
    let acknowledged: Arc<Mutex<Vec<Value>>> = Arc::default();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (http, base, audience) = (http.clone(), base.clone(), audience.clone());
            let acknowledged = acknowledged.clone();
            tokio::spawn(async move {
                for n in 0.. {
                    let body = order_body(c, n);
                    let t = token(&audience, "POST", "/api/v1/orders", body.as_bytes());
                    let sent = http
                        .post(format!("{base}/api/v1/orders"))
                        .bearer_auth(t)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    // Once the server is gone, a request fails or its answer is cut short.
                    let Ok(response) = sent else { break };
                    let status = response.status();
                    let Ok(text) = response.text().await else {
                        break;
                    };
                    assert_eq!(status, reqwest::StatusCode::CREATED, "{text}");
                    acknowledged
                        .lock()
                        .unwrap()
                        .push(serde_json::from_str(&text).unwrap());
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acknowledged.lock().unwrap().len() < ACKNOWLEDGED_BEFORE_KILL {
        assert!(Instant::now() < deadline, "too few orders acknowledged");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // SIGKILL while the clients still have requests in flight.
    child.kill().unwrap();
    child.wait().unwrap();
    for c in clients {
        c.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= ACKNOWLEDGED_BEFORE_KILL);

    // A fresh pool on the store the killed server left, as a restarted server would open it.
    let pool = writ::db::Db::open(&settings.database).unwrap();
    let mut conn = pool.conn().unwrap();
    if let writ::db::DbConn::Sqlite(c) = &mut *conn {
        let level: i32 = diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>(
            "(SELECT synchronous FROM pragma_synchronous)",
        ))
        .get_result(c)
        .unwrap();
        assert_eq!(level, 2, "Writ's connections run at synchronous = FULL");
    }
    for answered in &acknowledged {
        let id = answered["id"].as_str().unwrap();
        let stored = writ::orders::view(&mut conn, id, Some(PARIS.iss))
            .unwrap_or_else(|e| panic!("acknowledged order {id} was lost: {e}"));
        let stored = serde_json::to_value(&stored).unwrap();
        for field in [
            "id",
            "reference",
            "status",
            "version",
            "order_sha256",
            "document",
        ] {
            assert_eq!(stored[field], answered[field], "{field} of {id}");
        }
    }
    // Nothing half-stored either: every stored order has its audit entry, and only once.
    let stored: BTreeSet<String> = writ::db::schema::orders::table
        .select(writ::db::schema::orders::id)
        .load(&mut *conn)
        .unwrap()
        .into_iter()
        .collect();
    let audited: Vec<String> = writ::db::schema::audit_entries::table
        .filter(writ::db::schema::audit_entries::event.eq("order.received"))
        .select(writ::db::schema::audit_entries::order_id.assume_not_null())
        .load(&mut *conn)
        .unwrap();
    assert_eq!(audited.len(), stored.len(), "one audit entry per order");
    assert_eq!(audited.into_iter().collect::<BTreeSet<_>>(), stored);
    drop(conn);

    // The log still verifies: sign a checkpoint over everything, then verify the live log.
    for args in [["audit", "checkpoint"], ["audit", "verify"]] {
        let out = writ_for(&db, &[]).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "writ {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // And a restarted server answers every acknowledged order as it was acknowledged.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = serve(&db, port);
    let audience = wait_for_api(&http, &base, &mut child).await;
    for answered in &acknowledged {
        let path = format!("/api/v1/orders/{}", answered["id"].as_str().unwrap());
        let response = http
            .get(format!("{base}{path}"))
            .bearer_auth(token(&audience, "GET", &path, b""))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK, "{path}");
        let read: Value = response.json().await.unwrap();
        assert_eq!(read["id"], answered["id"]);
        assert_eq!(read["status"], answered["status"]);
        assert_eq!(read["version"], answered["version"]);
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
