//! Crash safety: the real `writ` binary, built with failpoints (src/failpoint.rs), is stopped at
//! a named point in the middle of an import, an approval, a package build and a burst of audit
//! appends, killed with SIGKILL there, and started again on the same data. After each kill:
//!
//! - nothing is half-written: no released package without its archive, hash and release entry,
//!   no approval or order change without its audit entry, no audit entry without its tree node;
//! - everything acknowledged before the kill is there;
//! - the import, run again, completes with no duplicate and the right totals;
//! - `writ audit checkpoint` and `writ audit verify` (the CLI) pass;
//! - the interrupted approval can be completed, and releases exactly one package.
//!
//! SQLite throughout; the import and the approval also on PostgreSQL, where the kill leaves the
//! server to roll back the dead connection's transaction (and free its row locks). Without
//! `WRIT_TEST_POSTGRES_URL` the PostgreSQL variants say so and pass, unless
//! `WRIT_TEST_REQUIRE_POSTGRES=1` (CI), when they fail.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use writ::audit::{Actor, ActorKind};
use writ::authority::client::{self, TokenRequest};
use writ::authority::{KeyAlgorithm, NewAuthority};
use writ::db::schema::{
    account_identifiers, accounts, approvals, audit_entries, audit_nodes, orders, packages,
};
use writ::failpoint as fp;
use writ::policy::IssuerKind;
use writ::staff::Role;

use crate::cli::writ_for;
use crate::helpers::{Backend, TestDb, postgres_admin_url};
use crate::orders::{ORDER, PARIS, PDF, private_pem, public_pem};
use crate::workspace::{Browser, PASSWORD, hash_in};

/// Each test as a `sqlite` and a `postgres` variant; the latter fails, rather than returning
/// early, when `WRIT_TEST_REQUIRE_POSTGRES=1` and there is no PostgreSQL.
macro_rules! sqlite_and_postgres {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if super::postgres_or_skip(stringify!($name)) {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        }
    )*};
}

sqlite_and_postgres!(
    an_import_killed_between_and_inside_batches_resumes_without_duplicates,
    an_approval_killed_while_releasing_releases_exactly_one_package_after_restart,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_audit_appends_killed_mid_append_loses_no_acknowledged_order() {
    burst_of_appends(Backend::Sqlite).await
}

/// Whether PostgreSQL is there; without it, a message (or a failure when CI requires it).
pub(crate) fn postgres_or_skip(test: &str) -> bool {
    if postgres_admin_url().is_some() {
        return true;
    }
    assert!(
        std::env::var("WRIT_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
        "WRIT_TEST_REQUIRE_POSTGRES=1 but WRIT_TEST_POSTGRES_URL is not set: {test}::postgres must run"
    );
    eprintln!("WRIT_TEST_POSTGRES_URL is not set: {test}::postgres not run");
    false
}

/// How long a process may take to reach a failpoint or to start serving.
const PATIENCE: Duration = Duration::from_secs(20);

/// A `writ` process whose output (stdout and stderr, where the logs go) the test reads.
pub(crate) struct Proc {
    child: Child,
    lines: Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub(crate) fn spawn(mut cmd: Command) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let (tx, lines) = mpsc::channel();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let outputs: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for output in outputs {
            let (tx, log) = (tx.clone(), log.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(output).lines() {
                    let Ok(line) = line else { break };
                    log.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        Self { child, lines, log }
    }

    /// Everything the process wrote so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits until the process says it stopped at `point`.
    async fn wait_for_failpoint(&mut self, point: &str) {
        let marker = format!("writ: failpoint {point} reached");
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.lines.try_recv() {
                Ok(line) if line.contains(&marker) => return,
                Ok(_) => continue,
                Err(TryRecvError::Disconnected) => {
                    let status = self.child.wait().unwrap();
                    panic!("writ ended ({status}) before {point}:\n{}", self.log());
                }
                Err(TryRecvError::Empty) => {}
            }
            assert!(
                Instant::now() < deadline,
                "writ did not reach {point} within {PATIENCE:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits, up to `limit`, for the process to end by itself and for all its output.
    pub(crate) async fn finish(&mut self, limit: Duration) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + limit;
        loop {
            match self.lines.try_recv() {
                Ok(_) => continue,
                // Both outputs closed: the process is gone, and every line is in the log.
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {}
            }
            assert!(
                Instant::now() < deadline,
                "writ did not finish within {limit:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (self.child.wait().unwrap(), self.log())
    }

    /// SIGKILL, and the process is reaped. Returns its output.
    pub(crate) fn kill9(&mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.log()
    }
}

impl Drop for Proc {
    /// A failed test leaves no process behind (one stopped at a failpoint would wait for ever).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `writ serve` on the test's data, with `failpoints` armed (may be empty).
pub(crate) struct Server {
    pub(crate) proc: Proc,
    pub(crate) api: Paris,
}

/// Paris's system, calling a server's API.
#[derive(Clone)]
pub(crate) struct Paris {
    pub(crate) base: String,
    audience: String,
    http: reqwest::Client,
}

impl Server {
    pub(crate) async fn start(db: &TestDb, failpoints: &str, extra: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let port_text = port.to_string();
        let mut env = vec![
            ("WRIT_SERVER__PORT", port_text.as_str()),
            ("FAILPOINTS", failpoints),
            ("WRIT_API__RATE_LIMIT_PER_MINUTE", "100000"),
            // Background jobs would append audit entries at moments the test does not choose.
            ("WRIT_API__JOBS_INTERVAL_SECS", "3600"),
        ];
        env.extend_from_slice(extra);
        let mut cmd = writ_for(db, &env);
        cmd.arg("serve");
        let mut proc = Proc::spawn(cmd);
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = proc.child.try_wait().unwrap() {
                panic!("writ serve ended early ({status}):\n{}", proc.log());
            }
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "writ serve did not become ready:\n{}",
                proc.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let info: Value = http
            .get(format!("{base}/api/v1"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let audience = info["audience"].as_str().unwrap().to_owned();
        Self {
            proc,
            api: Paris {
                base,
                audience,
                http,
            },
        }
    }
}

impl Paris {
    pub(crate) fn token(&self, method: &str, path: &str, body: &[u8]) -> String {
        client::sign_request(
            KeyAlgorithm::EdDSA,
            &private_pem(PARIS.seed),
            PARIS.kid,
            &TokenRequest {
                issuer: PARIS.iss,
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

    /// Submits an order with this reference as Paris; the status and the answer's text, or the
    /// error when no complete answer came.
    pub(crate) async fn submit(&self, reference: &str) -> reqwest::Result<(StatusCode, String)> {
        let mut order: Value = serde_json::from_str(ORDER).unwrap();
        order["reference"] = Value::String(reference.to_owned());
        let body = client::submission_body(&order.to_string(), PDF, None).unwrap();
        let response = self
            .http
            .post(format!("{}/api/v1/orders", self.base))
            .bearer_auth(self.token("POST", "/api/v1/orders", body.as_bytes()))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = response.status();
        Ok((status, response.text().await?))
    }

    /// GET as Paris.
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(self.token("GET", path, b""))
            .send()
            .await
            .unwrap()
    }
}

/// Migrates the fresh database and registers Paris, the staff and Alice's metadata, as an
/// operator would have before the server that crashes ever ran.
pub(crate) fn setup(db: &TestDb, approvers: &[&str]) {
    let pool = writ::db::Db::open(&db.settings(&[]).database).unwrap();
    let mut conn = pool.conn().unwrap();
    writ::db::migrations::run_pending(&mut conn).unwrap();
    writ::audit::service::install_entry_key(&pool, &db.settings(&[]).audit, true).unwrap();
    let actor = Actor::new(ActorKind::System, "test");
    writ::authority::add(
        &mut conn,
        &actor,
        &NewAuthority {
            id: PARIS.iss.into(),
            name: PARIS.iss.into(),
            country: "FR".into(),
            kind: IssuerKind::Prosecutor,
            contacts: vec!["paris@justice.example".into()],
        },
    )
    .unwrap();
    writ::authority::add_key(
        &mut conn,
        &actor,
        PARIS.iss,
        PARIS.kid,
        KeyAlgorithm::EdDSA,
        &public_pem(PARIS.seed),
    )
    .unwrap();
    for name in approvers {
        writ::staff::add_user(&mut conn, &actor, name, name, Role::LegalApprover, PASSWORD)
            .unwrap();
    }
    drop(conn);
    let import = |kind, rows: &str| {
        let opts = writ::metadata::import::ImportOptions {
            kind,
            format: writ::metadata::import::Format::Jsonl,
            batch_rows: 10,
            source: "test".into(),
            actor: Actor::system(),
        };
        let summary = writ::metadata::import::import(
            &pool,
            rows.as_bytes(),
            &opts,
            &mut Vec::new(),
            &|_, _| {},
        )
        .unwrap();
        assert_eq!(summary.rejected, 0);
    };
    import(
        writ::metadata::records::RecordKind::Accounts,
        r#"{"external_id":"u-alice","status":"active","created_at":"2026-01-01T00:00:00Z","username":"alice","phone_number":"+33612345678"}"#,
    );
    import(
        writ::metadata::records::RecordKind::IpEvents,
        r#"{"external_id":"u-alice","ip":"203.0.113.7","port":51234,"at":"2026-08-30T08:14:03Z","kind":"login"}"#,
    );
}

/// The store as a freshly started process opens it.
fn open(db: &TestDb) -> writ::db::Db {
    let pool = writ::db::Db::open(&db.settings(&[]).database).unwrap();
    writ::audit::service::install_entry_key(&pool, &db.settings(&[]).audit, true).unwrap();
    pool
}

fn count_events(conn: &mut writ::db::DbConn, event: &str) -> i64 {
    audit_entries::table
        .filter(audit_entries::event.eq(event))
        .count()
        .get_result(conn)
        .unwrap()
}

/// What must hold after any crash: every order has its one `order.received` entry; every audit
/// entry has its leaf node and nothing more; every released package has its archive, whose
/// hash it records, and its release entry; no approval without its `order.approved` entry; and
/// the CLI signs a checkpoint over the whole log and verifies it.
pub(crate) fn assert_consistent(db: &TestDb) {
    let pool = open(db);
    let mut conn = pool.conn().unwrap();
    let conn = &mut *conn;

    let stored: BTreeSet<String> = orders::table
        .select(orders::id)
        .load(conn)
        .unwrap()
        .into_iter()
        .collect();
    let received: Vec<String> = audit_entries::table
        .filter(audit_entries::event.eq("order.received"))
        .select(audit_entries::order_id.assume_not_null())
        .load(conn)
        .unwrap();
    assert_eq!(received.len(), stored.len(), "one order.received per order");
    assert_eq!(received.into_iter().collect::<BTreeSet<_>>(), stored);

    let entries: i64 = audit_entries::table.count().get_result(conn).unwrap();
    let leaves: i64 = audit_nodes::table
        .filter(audit_nodes::level.eq(0))
        .count()
        .get_result(conn)
        .unwrap();
    let max_seq: Option<i64> = audit_entries::table
        .select(diesel::dsl::max(audit_entries::seq))
        .first(conn)
        .unwrap();
    assert_eq!(entries, leaves, "every audit entry has its leaf node");
    assert_eq!(max_seq.map_or(0, |m| m + 1), entries, "no gap in the log");

    type Released = (String, String, Option<Vec<u8>>, Option<String>, Option<i64>);
    let released: Vec<Released> = packages::table
        .filter(packages::status.eq("released"))
        .select((
            packages::id,
            packages::order_id,
            packages::content,
            packages::package_sha256,
            packages::release_seq,
        ))
        .load(conn)
        .unwrap();
    for (id, order_id, content, sha, seq) in released {
        let content = content.unwrap_or_else(|| panic!("released package {id} has no archive"));
        let sha = sha.unwrap_or_else(|| panic!("released package {id} has no hash"));
        assert_eq!(hex::encode(Sha256::digest(&content)), sha, "package {id}");
        let seq = seq.unwrap_or_else(|| panic!("released package {id} has no release entry"));
        let (event, entry_order): (String, Option<String>) = audit_entries::table
            .find(seq)
            .select((audit_entries::event, audit_entries::order_id))
            .first(conn)
            .unwrap();
        assert_eq!(
            (event.as_str(), entry_order.as_deref()),
            ("order.released", Some(order_id.as_str()))
        );
        let status: String = orders::table
            .find(&order_id)
            .select(orders::status)
            .first(conn)
            .unwrap();
        assert_eq!(status, "released", "order of released package {id}");
    }
    let approvals_stored: i64 = approvals::table.count().get_result(conn).unwrap();
    assert_eq!(
        approvals_stored,
        count_events(conn, "order.approved"),
        "one order.approved entry per approval"
    );

    for args in [["audit", "checkpoint"], ["audit", "verify"]] {
        let out = writ_for(db, &[]).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "writ {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Records per import file, and per batch.
const IMPORT_RECORDS: usize = 50;
const IMPORT_BATCH: usize = 10;

fn import_accounts(db: &TestDb, file: &std::path::Path, failpoints: &str) -> Command {
    let mut cmd = writ_for(db, &[("FAILPOINTS", failpoints)]);
    cmd.args(["import", "accounts"])
        .arg(file)
        .args(["--batch-rows", &IMPORT_BATCH.to_string()]);
    cmd
}

/// Imported accounts, their distinct external ids, their identifier history rows (a username
/// and a phone number each), and the import's batch and completion entries.
fn import_counts(db: &TestDb) -> (i64, i64, i64, i64, i64) {
    let pool = open(db);
    let mut conn = pool.conn().unwrap();
    let conn = &mut *conn;
    let accounts_stored: i64 = accounts::table
        .filter(accounts::external_id.like("imp-%"))
        .count()
        .get_result(conn)
        .unwrap();
    let ids: Vec<String> = accounts::table
        .filter(accounts::external_id.like("imp-%"))
        .select(accounts::external_id)
        .load(conn)
        .unwrap();
    let distinct = ids.into_iter().collect::<BTreeSet<_>>().len() as i64;
    let identifiers: i64 = account_identifiers::table
        .inner_join(accounts::table)
        .filter(accounts::external_id.like("imp-%"))
        .count()
        .get_result(conn)
        .unwrap();
    (
        accounts_stored,
        distinct,
        identifiers,
        count_events(conn, "metadata.import_batch"),
        count_events(conn, "metadata.import_completed"),
    )
}

async fn an_import_killed_between_and_inside_batches_resumes_without_duplicates(backend: Backend) {
    let db = TestDb::new(backend);
    setup(&db, &[]);
    // No server has run to create the audit signing key: the operator provisions it.
    let out = writ_for(&db, &[]).args(["keys", "init"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let (_, _, _, batches_before, completed_before) = import_counts(&db);
    let file = db.dir().join("accounts.jsonl");
    let rows: String = (0..IMPORT_RECORDS)
        .map(|i| {
            format!(
                "{{\"external_id\":\"imp-{i:04}\",\"status\":\"active\",\"created_at\":\"2026-01-01T00:00:00Z\",\"username\":\"user{i:04}\",\"phone_number\":\"+3361234{i:04}\"}}\n"
            )
        })
        .collect();
    std::fs::write(&file, rows).unwrap();

    // Killed after its second batch committed, before the third began.
    let mut run = Proc::spawn(import_accounts(
        &db,
        &file,
        &format!("{}@2", fp::IMPORT_BATCH_COMMITTED),
    ));
    run.wait_for_failpoint(fp::IMPORT_BATCH_COMMITTED).await;
    run.kill9();
    let (stored, distinct, identifiers, batches, completed) = import_counts(&db);
    assert_eq!((stored, distinct, identifiers), (20, 20, 40));
    assert_eq!(
        (batches - batches_before, completed - completed_before),
        (2, 0)
    );
    assert_consistent(&db);

    // Run again, killed with its fourth batch written but not committed: the first two batches
    // are already stored, the third is new, the fourth vanishes with the process.
    let mut run = Proc::spawn(import_accounts(
        &db,
        &file,
        &format!("{}@4", fp::IMPORT_BATCH_BEFORE_COMMIT),
    ));
    run.wait_for_failpoint(fp::IMPORT_BATCH_BEFORE_COMMIT).await;
    run.kill9();
    let (stored, distinct, identifiers, batches, completed) = import_counts(&db);
    assert_eq!((stored, distinct, identifiers), (30, 30, 60));
    assert_eq!(
        (batches - batches_before, completed - completed_before),
        (5, 0)
    );
    assert_consistent(&db);

    // And a third time, to the end: nothing stored twice, the totals right.
    let out = import_accounts(&db, &file, "").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("50 records read: 20 new, 0 changed, 30 already stored, 0 rejected"),
        "{stdout}"
    );
    let (stored, distinct, identifiers, batches, completed) = import_counts(&db);
    assert_eq!((stored, distinct, identifiers), (50, 50, 100));
    assert_eq!(
        (batches - batches_before, completed - completed_before),
        (10, 1)
    );
    assert_consistent(&db);
}

/// The order's packages (status, has an archive), its approvers, and its approval and release
/// entries.
fn release_state(db: &TestDb, order_id: &str) -> (Vec<(String, bool)>, Vec<String>, i64, i64) {
    let pool = open(db);
    let mut conn = pool.conn().unwrap();
    let conn = &mut *conn;
    let rows: Vec<(String, String, Option<Vec<u8>>)> = packages::table
        .filter(packages::order_id.eq(order_id))
        .select((packages::id, packages::status, packages::content))
        .load(conn)
        .unwrap();
    let mut approvers: Vec<String> = approvals::table
        .filter(approvals::package_id.eq_any(rows.iter().map(|r| r.0.clone())))
        .select(approvals::approver)
        .load(conn)
        .unwrap();
    approvers.sort();
    let mut entries = |event: &str| -> i64 {
        audit_entries::table
            .filter(audit_entries::event.eq(event))
            .filter(audit_entries::order_id.eq(order_id))
            .count()
            .get_result(&mut *conn)
            .unwrap()
    };
    let (approved, released) = (entries("order.approved"), entries("order.released"));
    (
        rows.into_iter()
            .map(|(_, status, content)| (status, content.is_some()))
            .collect(),
        approvers,
        approved,
        released,
    )
}

async fn an_approval_killed_while_releasing_releases_exactly_one_package_after_restart(
    backend: Backend,
) {
    let db = TestDb::new(backend);
    setup(&db, &["alex", "bea"]);
    let server = Server::start(&db, fp::RELEASE_BEFORE_BUILD, &[]).await;
    let (status, created) = server.api.submit("CRASH-APPROVAL").await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let created: Value = serde_json::from_str(&created).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/orders/{id}/approve");

    // Alex previews and approves: recorded, nothing built yet.
    let mut alex = Browser::at(&server.api.base);
    alex.sign_in("alex", PASSWORD).await;
    let csrf = alex.session_csrf().await;
    let (status, preview, _) = alex
        .post_follow(&format!("/orders/{id}/package"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    let hash = hash_in(&preview);
    let (status, body, _) = alex
        .post(&path, &[("csrf", &csrf), ("snapshot_sha256", &hash)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let mut bea = Browser::at(&server.api.base);
    bea.sign_in("bea", PASSWORD).await;
    let csrf_bea = bea.session_csrf().await;

    // Bea's approval releases; the process is killed at each stage of the release in turn:
    // before the build, with the archive half-written, and with everything written but not
    // committed. Each time, nothing of the release (nor Bea's approval) may remain.
    let mut server = server;
    for point in [
        fp::RELEASE_BEFORE_BUILD,
        fp::PACKAGE_PARTLY_WRITTEN,
        fp::RELEASE_BEFORE_COMMIT,
    ] {
        if point != fp::RELEASE_BEFORE_BUILD {
            server = Server::start(&db, point, &[]).await;
        }
        // The session lives in the database: the same cookies work on the restarted server.
        let mut b = bea;
        b.base.clone_from(&server.api.base);
        let approving = tokio::spawn({
            let (path, csrf, hash) = (path.clone(), csrf_bea.clone(), hash.clone());
            async move {
                let form = [("csrf", csrf.as_str()), ("snapshot_sha256", hash.as_str())];
                let answer = b.try_post(&path, &form).await;
                (b, answer)
            }
        });
        server.proc.wait_for_failpoint(point).await;
        server.proc.kill9();
        let (b, answer) = approving.await.unwrap();
        bea = b;
        assert!(
            answer.is_err(),
            "{point}: the approval was not answered before the kill: {answer:?}"
        );
        let (packages_of_order, approvers, approved, released) = release_state(&db, &id);
        assert_eq!(
            packages_of_order,
            [("snapshot".to_owned(), false)],
            "{point}: one snapshot, no archive"
        );
        assert_eq!(approvers, ["alex"], "{point}: Bea's approval was not kept");
        assert_eq!((approved, released), (1, 0), "{point}");
        assert_consistent(&db);
    }

    // After the last restart, Bea's approval goes through: exactly one package is released.
    let mut server = Server::start(&db, "", &[]).await;
    bea.base.clone_from(&server.api.base);
    let (status, body, _) = bea
        .post(&path, &[("csrf", &csrf_bea), ("snapshot_sha256", &hash)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (status, body, _) = bea
        .post(&path, &[("csrf", &csrf_bea), ("snapshot_sha256", &hash)])
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "released once: {body}");
    let (packages_of_order, approvers, approved, released) = release_state(&db, &id);
    assert_eq!(packages_of_order, [("released".to_owned(), true)]);
    assert_eq!(approvers, ["alex", "bea"]);
    assert_eq!((approved, released), (2, 1));
    let response = server
        .api
        .get(&format!("/api/v1/orders/{id}/disclosure"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let tar = response.bytes().await.unwrap();
    let key = writ::disclosure::keys::load(&db.dir().join("package.key")).unwrap();
    let verified = writ::disclosure::package::verify(&tar, &key.verifying_key()).unwrap();
    assert_eq!(verified.manifest.approvers, ["alex", "bea"]);
    server.proc.kill9();
    assert_consistent(&db);
}

/// Orders acknowledged (201) by the clients: their answers.
type Acknowledged = Arc<Mutex<Vec<Value>>>;

/// Submitting clients in a burst.
const BURST_CLIENTS: usize = 4;

/// Clients submitting orders as fast as they are answered, until the server is gone.
fn burst(
    api: &Paris,
    round: usize,
    acknowledged: &Acknowledged,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..BURST_CLIENTS)
        .map(|c| {
            let (api, acknowledged) = (api.clone(), acknowledged.clone());
            tokio::spawn(async move {
                for n in 0.. {
                    let Ok((status, text)) = api.submit(&format!("BURST-{round}-{c}-{n}")).await
                    else {
                        break;
                    };
                    assert_eq!(status, StatusCode::CREATED, "{text}");
                    acknowledged
                        .lock()
                        .unwrap()
                        .push(serde_json::from_str(&text).unwrap());
                }
            })
        })
        .collect()
}

async fn burst_of_appends(backend: Backend) {
    let db = TestDb::new(backend);
    setup(&db, &[]);
    let acknowledged: Acknowledged = Arc::default();
    // Killed with an entry inserted but neither its tree nodes nor its commit written, then
    // between two appends (the 30th append of the process has not started).
    for (round, point) in [
        (0, format!("{}@25", fp::AUDIT_APPEND_INSERTED)),
        (1, format!("{}@30", fp::AUDIT_APPEND_START)),
    ] {
        // The holds of the orders so far are resolved here, so that the restarted server's
        // background jobs append nothing at start-up: every append it counts is the burst's.
        {
            let pool = open(&db);
            let mut conn = pool.conn().unwrap();
            writ::orders::holds::resolve_all(&mut conn, chrono::Utc::now()).unwrap();
        }
        let before = acknowledged.lock().unwrap().len();
        let mut server = Server::start(&db, &point, &[]).await;
        let clients = burst(&server.api, round, &acknowledged);
        let name = point.split('@').next().unwrap();
        server.proc.wait_for_failpoint(name).await;
        server.proc.kill9();
        for c in clients {
            c.await.unwrap();
        }
        let in_round = acknowledged.lock().unwrap().len() - before;
        assert!(
            in_round >= 10,
            "the kill came in the middle of the burst: {in_round} acknowledged before it"
        );
        assert_consistent(&db);
        let pool = open(&db);
        let mut conn = pool.conn().unwrap();
        for answered in acknowledged.lock().unwrap().iter() {
            let id = answered["id"].as_str().unwrap();
            let stored = writ::orders::view(&mut conn, id, Some(PARIS.iss))
                .unwrap_or_else(|e| panic!("acknowledged order {id} was lost: {e}"));
            let stored = serde_json::to_value(&stored).unwrap();
            for field in ["id", "reference", "status", "version", "order_sha256"] {
                assert_eq!(stored[field], answered[field], "{field} of {id}");
            }
        }
    }

    // The restarted server takes orders again, and answers every acknowledged one.
    let mut server = Server::start(&db, "", &[]).await;
    let (status, text) = server.api.submit("BURST-AFTER").await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let acknowledged = acknowledged.lock().unwrap().clone();
    for answered in &acknowledged {
        let path = format!("/api/v1/orders/{}", answered["id"].as_str().unwrap());
        let response = server.api.get(&path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    server.proc.kill9();
    assert_consistent(&db);
}
