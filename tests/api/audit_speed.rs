//! What the audit log's speed-ups must keep: an append on PostgreSQL in one round trip writes
//! the very rows, hashes and checkpoints SQLite's statement-by-statement append writes, and
//! stays gap-free when another instance appends in between.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::connection::{Connection, InstrumentationEvent};
use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
use ed25519_dalek::SigningKey;
use writ::audit::checkpoint::{CheckpointSigner, Signed, sign_if_new};
use writ::audit::log::{DbNodes, StoredEntry};
use writ::audit::merkle::{self, Hash};
use writ::audit::{Actor, ActorKind, AuditError, NewEntry, append};
use writ::db::schema::audit_nodes;
use writ::db::{Db, write_tx};

use crate::helpers::{Backend, TestDb, pg, postgres_admin_url, spawn_app};

fn entry(i: u64) -> NewEntry {
    let kinds = [ActorKind::Staff, ActorKind::Authority, ActorKind::System];
    let mut e = NewEntry::new(
        Actor::new(kinds[(i % 3) as usize], format!("actor_{}", i % 5)),
        "test.event",
    )
    .reference("n", i);
    if !i.is_multiple_of(4) {
        e = e.order(format!("ord_{}", i % 7));
    }
    if !i.is_multiple_of(3) {
        e = e.jurisdiction(if i.is_multiple_of(2) { "fr" } else { "de" });
    }
    e
}

fn at(i: u64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 8, 5, 0, 0).unwrap() + Duration::milliseconds(i as i64 * 1017)
}

/// A migrated database on `backend` that appends with the entry key `entry_key`.
fn open(test_db: &TestDb, entry_key: &SigningKey) -> Db {
    let db = Db::open(&test_db.settings(&[]).database).unwrap();
    writ::db::migrations::run_pending(&mut db.conn().unwrap()).unwrap();
    db.install_audit_entry_key(entry_key.clone());
    db
}

/// Every row of the log: the entries with every column, and every stored tree node.
type Rows = (Vec<StoredEntry>, Vec<(i32, i64, Vec<u8>)>);

fn rows(db: &Db) -> Rows {
    let mut conn = db.conn().unwrap();
    let entries = writ::audit::log::entries(&mut conn, 0, u64::MAX / 2).unwrap();
    let nodes = audit_nodes::table
        .order((audit_nodes::level.asc(), audit_nodes::idx.asc()))
        .select((audit_nodes::level, audit_nodes::idx, audit_nodes::hash))
        .load(&mut *conn)
        .unwrap();
    (entries, nodes)
}

/// Appends the same entries, with the same times, keys and transaction boundaries, on SQLite
/// and on PostgreSQL: every row, every tree node, the root and the signed checkpoint are the
/// same bytes. Sizes cover a tree of several levels and an append completing up to six nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_write_the_same_bytes_on_both_backends() {
    if postgres_admin_url().is_none() {
        eprintln!(
            "WRIT_TEST_POSTGRES_URL is not set: appends_write_the_same_bytes_on_both_backends not run"
        );
        return;
    }
    const COUNT: u64 = 70;
    let entry_key = SigningKey::from_bytes(&[7; 32]);
    let checkpoint_key = SigningKey::from_bytes(&[9; 32]);
    tokio::task::spawn_blocking(move || {
        let mut seen: Vec<(Rows, Hash, String)> = Vec::new();
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let test_db = TestDb::new(backend);
            let db = open(&test_db, &entry_key);
            let mut conn = db.conn().unwrap();
            let mut i = 0;
            // One entry per transaction, then batches of growing size in one transaction.
            let mut batch = 1;
            while i < COUNT {
                let end = (i + batch).min(COUNT);
                write_tx(&mut conn, |c| {
                    for n in i..end {
                        let appended = append(c, &entry(n), at(n))?;
                        assert_eq!(appended.seq, n, "{backend:?}");
                    }
                    Ok::<_, AuditError>(())
                })
                .unwrap();
                i = end;
                if i >= 20 {
                    batch += 3;
                }
            }
            // A rolled-back append leaves nothing behind, and the next takes its place.
            let failed: Result<(), AuditError> = write_tx(&mut conn, |c| {
                append(c, &entry(999), at(999))?;
                Err(AuditError::Corrupt("rolled back on purpose".into()))
            });
            assert!(failed.is_err());
            write_tx(&mut conn, |c| append(c, &entry(COUNT), at(COUNT))).unwrap();
            let root = merkle::root(COUNT + 1, &DbNodes::new(&mut conn)).unwrap();
            let signer = CheckpointSigner::new(
                checkpoint_key.clone(),
                entry_key.clone(),
                "writ.example.org/audit",
                test_db.dir().join("checkpoint.txt"),
            )
            .unwrap();
            let note = match sign_if_new(&mut conn, &signer, at(COUNT + 1)).unwrap() {
                Signed::New(cp) => cp.note,
                other => panic!("{backend:?}: no new checkpoint: {other:?}"),
            };
            drop(conn);
            seen.push((rows(&db), root, note));
        }
        let (sqlite, postgres) = (&seen[0], &seen[1]);
        assert_eq!(sqlite.0.0.len() as u64, COUNT + 1);
        // 71 leaves: level 0 holds 71 nodes, level 6 one (leaves 0..64).
        assert_eq!(sqlite.0.1.len(), 71 + 35 + 17 + 8 + 4 + 2 + 1);
        for (a, b) in sqlite.0.0.iter().zip(&postgres.0.0) {
            assert_eq!(a, b, "entry {}", a.seq);
        }
        assert_eq!(sqlite.0.0, postgres.0.0, "entries");
        assert_eq!(sqlite.0.1, postgres.0.1, "tree nodes");
        let tree = merkle::MemoryTree::from_leaf_hashes(
            sqlite
                .0
                .0
                .iter()
                .map(|e| merkle::leaf_hash(e.leaf.as_bytes())),
        );
        assert_eq!(sqlite.1, merkle::root(COUNT + 1, &tree).unwrap());
        assert_eq!(sqlite.1, postgres.1, "root");
        assert_eq!(sqlite.2, postgres.2, "signed checkpoint");
    })
    .await
    .unwrap();
}

/// On PostgreSQL an append is one statement, hence one round trip: the database takes the
/// append lock, checks the position and writes the entry and its tree nodes itself. When
/// another instance appended in between, the next append takes one more statement and still
/// lands at the next position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_is_one_round_trip_on_postgresql() {
    if postgres_admin_url().is_none() {
        eprintln!(
            "WRIT_TEST_POSTGRES_URL is not set: an_append_is_one_round_trip_on_postgresql not run"
        );
        return;
    }
    let app = spawn_app(Backend::Postgres).await;
    let pool = app.pool.clone();
    let other = Db::open(&app.db.settings(&[]).database).unwrap();
    writ::audit::service::install_entry_key(&other, &app.db.settings(&[]).audit, false).unwrap();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.conn().unwrap();
        let statements = Arc::new(AtomicUsize::new(0));
        let counter = statements.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if matches!(event, InstrumentationEvent::StartQuery { .. }) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        // Appends `n` entries through `conn`, each in its own transaction; the statements each
        // append sent.
        let append_counted = |conn: &mut writ::db::PooledConn, from: u64, n: u64| {
            let mut sent = Vec::new();
            for i in from..from + n {
                write_tx(&mut *conn, |c| {
                    let before = statements.load(Ordering::SeqCst);
                    append(c, &entry(i), Utc::now())?;
                    sent.push(statements.load(Ordering::SeqCst) - before);
                    Ok::<_, AuditError>(())
                })
                .unwrap();
            }
            sent
        };
        let first = append_counted(&mut conn, 0, 30);
        assert!(first[0] <= 2, "the first append: {first:?}");
        assert_eq!(first[1..], [1; 29], "statements per append");

        // Another instance appends; this one's next append is out of step once, then back.
        std::thread::spawn(move || {
            let mut c = other.conn().unwrap();
            for i in 30..33 {
                write_tx(&mut c, |c| append(c, &entry(i), Utc::now())).unwrap();
            }
        })
        .join()
        .unwrap();
        let next = append_counted(&mut conn, 33, 10);
        assert_eq!(
            next[0], 2,
            "one more statement after another instance's appends"
        );
        assert_eq!(next[1..], [1; 9], "statements per append");

        let entries = writ::audit::log::entries(&mut conn, 0, 1000).unwrap();
        let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (0..43).collect::<Vec<i64>>(), "gap-free");
        let tree = merkle::MemoryTree::from_leaf_hashes(
            entries.iter().map(|e| merkle::leaf_hash(e.leaf.as_bytes())),
        );
        assert_eq!(
            merkle::root(43, &DbNodes::new(&mut conn)).unwrap(),
            merkle::root(43, &tree).unwrap(),
            "the tree the database built is the tree of its leaves"
        );
    })
    .await
    .unwrap();
}

/// The verifier checks entries on several threads: a bad entry deep in a large export (many
/// batches of lines in) is still the one named, before any later problem, with the message a
/// line-by-line check gives; and a read error is reported after the lines before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_entry_deep_in_a_large_export_is_still_named_first() {
    use std::io::{BufRead, Cursor, Read};
    use writ::audit::verify::{self, Failure, VerifierKey};

    const COUNT: u64 = 6000;
    let app = spawn_app(Backend::Sqlite).await;
    let pool = app.pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.conn().unwrap();
        for chunk in 0..COUNT / 1000 {
            write_tx(&mut conn, |c| {
                for i in chunk * 1000..(chunk + 1) * 1000 {
                    append(c, &entry(i), at(i))?;
                }
                Ok::<_, AuditError>(())
            })
            .unwrap();
        }
    })
    .await
    .unwrap();
    let res = app.post_as_auditor("/audit/checkpoint").await;
    assert_eq!(res.status(), 200);
    let keys: serde_json::Value = app.get("/audit/keys").await.json().await.unwrap();
    let key = VerifierKey::parse(keys["note_verifier_key"].as_str().unwrap()).unwrap();
    let entry_key =
        writ::audit::keys::parse_public_pem(keys["entry_public_key_pem"].as_str().unwrap())
            .unwrap();
    let export = |query: &str| {
        let app = &app;
        let query = query.to_owned();
        async move {
            let res = app.get_as_auditor(&format!("/audit/export{query}")).await;
            assert_eq!(res.status(), 200);
            res.text().await.unwrap()
        }
    };
    let jsonl = export("").await;
    let csv = export("?format=csv").await;
    let check = |text: &str| {
        verify::verify_export_with(Cursor::new(text.as_bytes()), &key, Some(&entry_key), None)
    };
    for text in [&jsonl, &csv] {
        let report = check(text).unwrap();
        assert_eq!(report.entries, COUNT);
        assert_eq!(report.authenticated, Some(COUNT));
    }

    // The JSON line of entry `seq`, edited by `edit`.
    let edit_line = |text: &str, seq: u64, edit: &dyn Fn(&str) -> String| -> String {
        let prefix = format!("{{\"seq\":{seq},");
        text.lines()
            .map(|l| {
                if l.starts_with(&prefix) {
                    edit(l)
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    let modify = |l: &str| l.replacen("\"event\":\"test.event\"", "\"event\":\"test.evenu\"", 1);
    // Modified deep in, and later ones broken in other ways: the first is named.
    let bad = edit_line(&jsonl, 4321, &modify);
    let bad = edit_line(&bad, 4700, &|l: &str| l.replacen("{", "[", 1));
    let bad = edit_line(&bad, 5900, &modify);
    assert_eq!(
        check(&bad).unwrap_err(),
        Failure::Entry {
            seq: 4321,
            reason: "modified after it was appended: its bytes no longer match the hash recorded when it was appended".into()
        }
    );
    // A line that is not JSON before it wins, named by its line number.
    let broken = edit_line(&bad, 3000, &|l: &str| l.replacen("{", "[", 1));
    let line = 1 + broken
        .lines()
        .position(|l| l.starts_with("[\"seq\":3000,"))
        .unwrap() as u64;
    assert!(
        matches!(check(&broken).unwrap_err(), Failure::Format { line: l, .. } if l == line),
        "{:?}",
        check(&broken)
    );
    // An entry removed deep in is named; so is a forged authenticator, in CSV too.
    let removed = edit_line(&jsonl, 5000, &|_| String::new()).replace("\n\n", "\n");
    assert_eq!(
        check(&removed).unwrap_err().to_string(),
        "entry 5000: missing: the export goes on with entry 5001 (entries were removed)"
    );
    let forged_at = csv
        .lines()
        .find(|l| l.starts_with("5555,"))
        .unwrap()
        .rsplit(',')
        .next()
        .unwrap()
        .to_owned();
    let forged = csv.replacen(&forged_at, &"ab".repeat(64), 1);
    assert_eq!(
        check(&forged).unwrap_err().to_string(),
        "entry 5555: its authenticator does not verify under the entry key: Writ did not append it"
    );

    // A read error deep in: every entry before it was checked first (the modified entry 4321
    // is named, not the read error), and without it the read error is what is reported.
    struct FailsAt<R>(R, usize);
    impl<R: Read> Read for FailsAt<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.1 == 0 {
                return Err(std::io::Error::other("disk on fire"));
            }
            let want = buf.len().min(self.1);
            let got = self.0.read(&mut buf[..want])?;
            self.1 -= got;
            Ok(got)
        }
    }
    let cut = jsonl.find("{\"seq\":5800,").unwrap();
    let reading = |text: &str| {
        let input: Box<dyn BufRead> = Box::new(std::io::BufReader::with_capacity(
            4096,
            FailsAt(Cursor::new(text.as_bytes().to_vec()), cut),
        ));
        verify::verify_export_with(input, &key, Some(&entry_key), None)
    };
    assert_eq!(
        reading(&bad).unwrap_err().to_string().split(':').next(),
        Some("entry 4321")
    );
    assert_eq!(
        reading(&jsonl).unwrap_err(),
        Failure::Io("disk on fire".into())
    );
}

/// How long every disk flush of a caught session waits (`commit_delay`, at most 100 ms).
const FLUSH_DELAY: std::time::Duration = std::time::Duration::from_millis(100);
/// The statement that waits for the flush after a deferred commit (`db::flush`).
const FLUSH_STATEMENT: &str = "SELECT pg_logical_emit_message(true, 'writ', 'flush')";

/// A session as `pg_stat_activity` and `pg_locks` show it.
#[derive(diesel::QueryableByName, Debug)]
struct Activity {
    #[diesel(sql_type = diesel::sql_types::Text)]
    state: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    query: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    advisory_locks: i64,
}

impl Activity {
    fn of(watcher: &mut writ::db::DbConn, pid: i32) -> Self {
        diesel::sql_query(
            "SELECT COALESCE(a.state, '') AS state, COALESCE(a.query, '') AS query, \
             (SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory' \
              AND l.granted) AS advisory_locks \
             FROM pg_stat_activity a WHERE a.pid = $1",
        )
        .bind::<diesel::sql_types::Integer, _>(pid)
        .get_result(pg(watcher))
        .unwrap()
    }

    fn committing(&self) -> bool {
        self.state == "active" && self.query.eq_ignore_ascii_case("COMMIT")
    }

    fn flushing(&self) -> bool {
        self.state == "active" && self.query == FLUSH_STATEMENT
    }
}

/// Runs `work` on a connection of `db` whose every disk flush waits [`FLUSH_DELAY`], on a
/// thread, and catches it while it waits for the disk: in a `COMMIT` still running 20 ms after
/// it was first seen (a commit that waits for its flush), or in the flush statement that a
/// deferred commit is followed by. Answers the session as caught, with `work`'s thread (which
/// answers how long `work` took); `None` when `work` ended before it was caught (the watcher
/// was not scheduled in time), so the caller tries again.
fn catch_waiting_for_the_disk(
    db: &Db,
    watcher: &mut writ::db::DbConn,
    work: impl FnOnce(&mut writ::db::DbConn) + Send + 'static,
) -> Option<(Activity, std::thread::JoinHandle<std::time::Duration>)> {
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let fsync: Activity = diesel::sql_query(
        "SELECT current_setting('fsync') AS state, '' AS query, CAST(0 AS BIGINT) AS advisory_locks",
    )
    .get_result(pg(watcher))
    .unwrap();
    assert_eq!(
        fsync.state, "on",
        "commit_delay delays flushes only with fsync on"
    );
    let (pid_tx, pid_rx) = std::sync::mpsc::channel();
    let db = db.clone();
    let worker = std::thread::spawn(move || {
        let mut conn = db.conn().unwrap();
        // commit_delay is a superuser's setting (the tests connect as one).
        diesel::connection::SimpleConnection::batch_execute(
            pg(&mut conn),
            &format!(
                "SET commit_delay = {}; SET commit_siblings = 0",
                FLUSH_DELAY.as_micros()
            ),
        )
        .unwrap();
        let pid: Pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result(pg(&mut conn))
            .unwrap();
        pid_tx.send(pid.pid).unwrap();
        let started = std::time::Instant::now();
        work(&mut conn);
        started.elapsed()
    });
    let pid = pid_rx.recv().unwrap();
    loop {
        let now = Activity::of(watcher, pid);
        if now.flushing() {
            return Some((now, worker));
        }
        if now.committing() {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let later = Activity::of(watcher, pid);
            if later.committing() {
                return Some((later, worker));
            }
        }
        if worker.is_finished() {
            worker.join().unwrap();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// [`catch_waiting_for_the_disk`], tried until the watcher catches `work` (at most 5 times);
/// `work` gets the attempt's number.
fn caught_waiting_for_the_disk(
    db: &Db,
    watcher: &mut writ::db::DbConn,
    work: impl Fn(&mut writ::db::DbConn, u64) + Send + Sync + Clone + 'static,
) -> (Activity, std::thread::JoinHandle<std::time::Duration>, u64) {
    for attempt in 0..5 {
        let work = work.clone();
        if let Some((caught, worker)) =
            catch_waiting_for_the_disk(db, watcher, move |c| work(c, attempt))
        {
            return (caught, worker, attempt);
        }
    }
    panic!("the session was never caught waiting for the disk in 5 attempts");
}

/// On PostgreSQL an append's transaction releases the append lock before its commit waits for
/// the disk. Every append waits for that lock, so while the lock was held through the commit's
/// flush the log appended one flush at a time (about 500 orders/s on the service bench's
/// machine). The appender is caught while it waits for the disk, and the lock is free; its
/// transaction still returns only after a flush (so after the delay), with the entry there.
#[test]
fn the_append_lock_is_released_before_the_commit_waits_for_the_disk_on_postgresql() {
    if !crate::crash::postgres_or_skip(
        "audit_speed::the_append_lock_is_released_before_the_commit_waits_for_the_disk_on_postgresql",
    ) {
        return;
    }
    let test_db = TestDb::new(Backend::Postgres);
    let db = open(&test_db, &SigningKey::from_bytes(&[7; 32]));
    let mut watcher = db.conn().unwrap();
    let (caught, worker, attempt) = caught_waiting_for_the_disk(&db, &mut watcher, |c, i| {
        write_tx(c, |c| append(c, &entry(i), at(i))).unwrap();
    });
    assert!(
        caught.flushing() && caught.advisory_locks == 0,
        "the appender waits for the disk holding the append lock: {caught:?}"
    );
    let took = worker.join().unwrap();
    assert!(
        took >= FLUSH_DELAY,
        "the transaction returned after {took:?}, before its commit was flushed"
    );
    let entries = writ::audit::log::entries(&mut watcher, 0, 10).unwrap();
    assert_eq!(
        entries.len() as u64,
        attempt + 1,
        "every attempt's entry is committed"
    );
}

/// On PostgreSQL a key rotation, which appends its entry and stores the checkpoint signed with
/// the old key in one transaction, commits only once both are on disk: the checkpoint is served
/// as soon as it can be read, and a signed checkpoint of entries a crash then lost would look
/// like a rewritten log. Caught while its commit waits for the disk, the rotation is not yet
/// visible.
#[test]
fn a_key_rotation_is_not_visible_before_it_is_on_disk_on_postgresql() {
    if !crate::crash::postgres_or_skip(
        "audit_speed::a_key_rotation_is_not_visible_before_it_is_on_disk_on_postgresql",
    ) {
        return;
    }
    let test_db = TestDb::new(Backend::Postgres);
    let entry_key = SigningKey::from_bytes(&[7; 32]);
    let db = open(&test_db, &entry_key);
    let dir = test_db.dir().to_owned();
    // Attempt `i` rotates from checkpoint key 9 + i to 10 + i.
    let signer = move |i: u64| {
        CheckpointSigner::new(
            SigningKey::from_bytes(&[9 + i as u8; 32]),
            entry_key.clone(),
            "writ.example.org/audit",
            dir.join("checkpoint.txt"),
        )
        .unwrap()
    };
    let mut watcher = db.conn().unwrap();
    write_tx(&mut watcher, |c| append(c, &entry(0), at(0))).unwrap();
    assert!(matches!(
        sign_if_new(&mut watcher, &signer(0), at(1)).unwrap(),
        Signed::New(_)
    ));
    let (caught, worker, attempt) = caught_waiting_for_the_disk(&db, &mut watcher, move |c, i| {
        let new = SigningKey::from_bytes(&[10 + i as u8; 32]).verifying_key();
        let actor = Actor::new(ActorKind::Staff, "admin");
        writ::audit::checkpoint::rotate(c, &signer(i), new, actor, at(2 + i), || Ok(())).unwrap();
    });
    let visible = writ::audit::log::size(&mut watcher).unwrap();
    assert!(
        caught.committing() && visible == 1 + attempt,
        "the rotation is visible ({visible} entries) while it waits for the disk: {caught:?}"
    );
    worker.join().unwrap();
    assert_eq!(writ::audit::log::size(&mut watcher).unwrap(), 2 + attempt);
}

/// On PostgreSQL an idempotent replay answers only once the first answer is on disk. The first
/// request's commit no longer waits for the disk while it holds its locks, so a second request
/// with the same key can read the stored answer while the first still waits for the flush; a
/// crash then would lose the order that both answers name. Caught while the first waits for the
/// disk, the replay returns only after the log is flushed past the first's commit.
#[test]
fn an_idempotent_replay_answers_only_what_is_on_disk_on_postgresql() {
    if !crate::crash::postgres_or_skip(
        "audit_speed::an_idempotent_replay_answers_only_what_is_on_disk_on_postgresql",
    ) {
        return;
    }
    #[derive(diesel::QueryableByName)]
    struct Lsn {
        #[diesel(sql_type = diesel::sql_types::Text)]
        lsn: String,
    }
    #[derive(diesel::QueryableByName)]
    struct Flushed {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        flushed: bool,
    }
    let test_db = TestDb::new(Backend::Postgres);
    let db = open(&test_db, &SigningKey::from_bytes(&[7; 32]));
    let mut watcher = db.conn().unwrap();
    let first = |c: &mut writ::db::DbConn, i: u64| {
        writ::orders::intake::idempotent(
            c,
            "fr-parquet-paris",
            Some(&format!("key-{i}")),
            "sha",
            at(i),
            |c| {
                append(c, &entry(i), at(i))
                    .map_err(|e| writ::orders::OrderError::Conflict(e.to_string()))?;
                Ok((201, format!("answer {i}")))
            },
        )
        .unwrap();
    };
    let (caught, worker, attempt) = caught_waiting_for_the_disk(&db, &mut watcher, first);
    assert!(caught.flushing(), "{caught:?}");
    // Everything written so far, the first request's commit included.
    let mark: Lsn = diesel::sql_query("SELECT CAST(pg_current_wal_insert_lsn() AS TEXT) AS lsn")
        .get_result(pg(&mut watcher))
        .unwrap();
    let mut second = db.conn().unwrap();
    let replayed = writ::orders::intake::idempotent(
        &mut second,
        "fr-parquet-paris",
        Some(&format!("key-{attempt}")),
        "sha",
        at(attempt),
        |_| panic!("the second request must replay the first's answer"),
    )
    .unwrap();
    let flushed: Flushed =
        diesel::sql_query("SELECT pg_current_wal_flush_lsn() >= CAST($1 AS pg_lsn) AS flushed")
            .bind::<diesel::sql_types::Text, _>(&mark.lsn)
            .get_result(pg(&mut watcher))
            .unwrap();
    assert!(replayed.replayed && replayed.body == format!("answer {attempt}"));
    assert!(
        flushed.flushed,
        "the replay answered before the first answer's commit was on disk"
    );
    worker.join().unwrap();
}
