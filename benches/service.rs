//! Service benchmarks: Writ as a whole, each figure beside a baseline measured in the same run on
//! the same machine, with the goal of the "Performance and scale-out" issue.
//!
//! 1. HTTP: authenticated `GET /api/v1/orders/{id}` (a fresh body-bound token per request, from a
//!    pool signed just before each run) against a trivial actix handler in the same binary, on
//!    SQLite at its default durability. Closed loop for the maximum rate, then open loop at half
//!    that rate for the latency percentiles.
//! 2. Order intake, `POST /api/v1/orders`, on SQLite and (with WRIT_BENCH_POSTGRES_URL)
//!    PostgreSQL, against the same HTTP exchange answered by a handler that makes one durable
//!    insert of the same bytes (same pool, same transaction helper, same durability).
//! 3. The legal team's queue page with 10,000 open orders, against the trivial handler.
//! 4. Disclosure: gathering and building the package of one target with 10,000 IP events, in
//!    stores of WRIT_BENCH_EVENTS (default 1,000,000) and, with WRIT_BENCH_EVENTS_LARGE=1, ten
//!    times that many events, seeded with `writ demo seed`; against a query that only reads the
//!    same 10,000 rows.
//! 5. Import, lookups and audit appends and export, re-run small so that one table holds them all.
//! 6. Peak memory (VmHWM) of the server after the load, and of import and export.
//!
//! Servers run in child processes of this binary, pinned with `taskset` to core 0 while the
//! driver runs on core 1. Knobs: WRIT_BENCH_SECONDS (per run, default 10), WRIT_BENCH_ROUNDS
//! (interleaved rounds, best kept, default 3), WRIT_BENCH_CONNECTIONS (closed-loop concurrency
//! levels, best kept; open loop uses the largest; default "4,32"),
//! WRIT_BENCH_WORKERS (actix workers of both servers, default 1), WRIT_BENCH_PDF_BYTES (order
//! document, default 16384), WRIT_BENCH_IMPORT_EVENTS (default 1,000,000),
//! WRIT_BENCH_AUDIT_ENTRIES (default 200,000), WRIT_BENCH_SKIP (comma-separated: http, intake,
//! queue, disclosure, lookup, import, audit), WRIT_BENCH_DIR (where the stores go; default the
//! system temporary folder).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/load.rs"]
mod load;

use common::vm_hwm_kib;
use load::{Pace, Run};

use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::{Value, json};
use writ::audit::{Actor, ActorKind, NewEntry};
use writ::authority::client::{self, TokenRequest};
use writ::authority::{KeyAlgorithm, NewAuthority};
use writ::db::schema::{accounts, ip_events, orders};
use writ::db::{Db, DbConn, DbError, migrations, write_tx};
use writ::policy::{Category, Deployment, IssuerKind, PolicySet, RegistryFacts};
use writ::settings::{Settings, Sources};

const ORDER: &str = include_str!("../tests/fixtures/orders/epoc-prosecutor.json");
const AUTHORITY: &str = "fr-parquet-paris";
const KID: &str = "paris-1";
const KEY_SEED: u8 = 1;
const REVIEWER: &str = "rita";
const PASSWORD: &str = "a long enough password";
const OPEN_ORDERS: u64 = 10_000;
const TARGET_EVENTS: u64 = 10_000;
const TARGET: &str = "bench-target";

// ---------------------------------------------------------------------------------------------
// Knobs, report.

struct Knobs {
    seconds: f64,
    rounds: usize,
    connections: Vec<usize>,
    workers: usize,
    pdf_bytes: usize,
    events: u64,
    large: bool,
    import_events: u64,
    audit_entries: u64,
    postgres: Option<String>,
    skip: Vec<String>,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

impl Knobs {
    fn from_env() -> Self {
        Self {
            seconds: env_or("WRIT_BENCH_SECONDS", 10.0),
            rounds: env_or("WRIT_BENCH_ROUNDS", 3usize).max(1),
            connections: std::env::var("WRIT_BENCH_CONNECTIONS")
                .unwrap_or_else(|_| "4,32".into())
                .split(',')
                .filter_map(|c| c.trim().parse().ok())
                .filter(|c| *c > 0)
                .collect(),
            workers: env_or("WRIT_BENCH_WORKERS", 1usize).max(1),
            pdf_bytes: env_or("WRIT_BENCH_PDF_BYTES", 16_384usize).max(16),
            events: env_or("WRIT_BENCH_EVENTS", 1_000_000u64).max(TARGET_EVENTS),
            large: std::env::var("WRIT_BENCH_EVENTS_LARGE").is_ok_and(|v| v == "1"),
            import_events: env_or("WRIT_BENCH_IMPORT_EVENTS", 1_000_000u64),
            audit_entries: env_or("WRIT_BENCH_AUDIT_ENTRIES", 200_000u64),
            postgres: std::env::var("WRIT_BENCH_POSTGRES_URL")
                .ok()
                .filter(|s| !s.trim().is_empty()),
            skip: std::env::var("WRIT_BENCH_SKIP")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        }
    }

    fn runs(&self, part: &str) -> bool {
        !self.skip.iter().any(|s| s == part)
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }

    /// Connections for open-loop runs: the most of the closed-loop ones.
    fn open_connections(&self) -> usize {
        self.connections.iter().copied().max().unwrap_or(32)
    }
}

#[derive(Default)]
struct Report {
    rows: Vec<[String; 6]>,
    notes: Vec<String>,
}

impl Report {
    fn row(&mut self, measure: &str, writ: String, baseline: String, ratio: String, goal: &str) {
        self.row_met(measure, writ, baseline, ratio, goal, None);
    }

    fn row_met(
        &mut self,
        measure: &str,
        writ: String,
        baseline: String,
        ratio: String,
        goal: &str,
        met: Option<bool>,
    ) {
        let met = match met {
            Some(true) => "yes".to_owned(),
            Some(false) => "**no**".to_owned(),
            None => String::new(),
        };
        let row = [
            measure.to_owned(),
            writ,
            baseline,
            ratio,
            goal.to_owned(),
            met,
        ];
        eprintln!("bench: | {} |", row.join(" | "));
        self.rows.push(row);
    }

    fn note(&mut self, text: String) {
        eprintln!("bench: note: {text}");
        self.notes.push(text);
    }
}

fn ratio(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}")
    } else {
        "-".into()
    }
}

fn ms(x: f64) -> String {
    if x < 1.0 {
        format!("{x:.2} ms")
    } else if x < 100.0 {
        format!("{x:.1} ms")
    } else {
        format!("{x:.0} ms")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn progress(what: &str) {
    eprintln!("bench: {what}");
}

// ---------------------------------------------------------------------------------------------
// Settings, databases, processes.

/// Settings as `common::settings` makes them (any `WRIT_*` variable of the environment applies),
/// plus what a server in a throwaway folder needs, plus `extra`.
fn bench_settings(url: &str, dir: &Path, extra: &[(&str, String)]) -> Settings {
    let mut env: HashMap<String, String> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("WRIT_") && !k.starts_with("WRIT_BENCH_") && !k.starts_with("WRIT_TEST_")
        })
        .collect();
    let path = |name: &str| dir.join(name).display().to_string();
    let defaults = [
        ("WRIT_DATABASE__URL", url.to_owned()),
        ("WRIT_AUDIT__SIGNING_KEY_PATH", path("audit.key")),
        ("WRIT_AUDIT__ENTRY_KEY_PATH", path("audit-entry.key")),
        ("WRIT_AUDIT__CHECKPOINT_PATH", path("checkpoint.txt")),
        ("WRIT_PACKAGE__SIGNING_KEY_PATH", path("package.key")),
        ("WRIT_MAIL__OUTBOX_DIR", path("outbox")),
        ("WRIT_WORKSPACE__CREATE_FIRST_ADMIN", "false".into()),
        (
            "WRIT_WORKSPACE__INITIAL_ADMIN_PASSWORD_FILE",
            path("initial-admin-password"),
        ),
    ];
    for (k, v) in defaults {
        env.insert(k.to_owned(), v);
    }
    for (k, v) in extra {
        env.insert((*k).to_owned(), v.clone());
    }
    Settings::load(&Sources {
        base_dir: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
        file: None,
        env: Some(env),
    })
    .unwrap()
}

/// The server's settings: port 0, the bench's worker count, and a rate limit out of the way
/// (the default 120 requests per authority and minute would answer 429; the counter is still
/// written on every request).
fn server_settings(url: &str, dir: &Path, workers: usize) -> Settings {
    bench_settings(
        url,
        dir,
        &[
            ("WRIT_SERVER__PORT", "0".into()),
            ("WRIT_SERVER__WORKERS", workers.to_string()),
            ("WRIT_API__RATE_LIMIT_PER_MINUTE", "1000000000".into()),
        ],
    )
}

/// A PostgreSQL database of its own, dropped with the value.
struct PgDb {
    admin: String,
    name: String,
    url: String,
}

impl PgDb {
    fn create(admin: &str, label: &str) -> Self {
        let name = format!("writ_bench_svc_{}_{label}", std::process::id());
        let mut conn = PgConnection::establish(admin).expect("WRIT_BENCH_POSTGRES_URL reachable");
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .unwrap();
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .unwrap();
        let (head, query) = match admin.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (admin, None),
        };
        let base = head.rsplit_once('/').unwrap().0;
        let url = match query {
            Some(q) => format!("{base}/{name}?{q}"),
            None => format!("{base}/{name}"),
        };
        Self {
            admin: admin.to_owned(),
            name,
            url,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&self.admin) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}

/// Peak and current resident memory of a process, KiB.
fn memory_of(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Pins this process (its only thread, before any other starts) to core 1; servers go to
/// core 0. Returns whether pinning is in force.
fn pin_driver() -> bool {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 || !have("taskset") {
        return false;
    }
    Command::new("taskset")
        .args(["-cp", "1", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A server in a child process of this binary.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn spawn(kind: &str, url: &str, dir: &Path, workers: usize, pinned: bool) -> Self {
        let exe = std::env::current_exe().unwrap();
        let mut cmd = if pinned {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let log = std::fs::File::create(dir.join(format!("server-{kind}.log"))).unwrap();
        let mut child = cmd
            .args([
                "--child-server",
                kind,
                url,
                &dir.display().to_string(),
                &workers.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "the {kind} server did not start (see {}): {line}",
                    dir.display()
                )
            });
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Child mode: serve until stdin closes. `writ`: Writ itself, as `writ serve` runs it (logging
/// included, to this process's stderr). `baseline`: one `HttpResponse::Ok()` handler for every
/// GET, and for `POST /api/v1/orders` one durable insert of the body into a table of its own.
fn child_server(kind: &str, url: &str, dir: &Path, workers: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let settings = server_settings(url, dir, workers);
        let port = match kind {
            "writ" => {
                writ::telemetry::init(&settings.log);
                let app = writ::web::Application::build(settings).await.unwrap();
                let port = app.port();
                tokio::spawn(app.run_until_stopped());
                port
            }
            _ => {
                use actix_web::{App, HttpResponse, HttpServer, web};
                let db = Db::open(&settings.database).unwrap();
                let ddl = match db.backend() {
                    writ::settings::Backend::Sqlite => {
                        "CREATE TABLE IF NOT EXISTS bench_orders (id INTEGER PRIMARY KEY, body BLOB NOT NULL)"
                    }
                    writ::settings::Backend::Postgres => {
                        "CREATE TABLE IF NOT EXISTS bench_orders (id BIGSERIAL PRIMARY KEY, body BYTEA NOT NULL)"
                    }
                };
                db.conn().unwrap().batch_execute(ddl).unwrap();
                let db = web::Data::new(db);
                async fn durable(db: web::Data<Db>, body: web::Bytes) -> HttpResponse {
                    let stored = db
                        .run(move |c| {
                            write_tx(c, |c| {
                                let q = diesel::sql_query("INSERT INTO bench_orders (body) VALUES ($1)")
                                    .bind::<diesel::sql_types::Binary, _>(body.to_vec());
                                match c {
                                    DbConn::Sqlite(s) => q.execute(s),
                                    DbConn::Postgres(p) => q.execute(p),
                                }
                            })
                            .map_err(DbError::from)
                        })
                        .await;
                    match stored {
                        Ok(_) => HttpResponse::Created().finish(),
                        Err(_) => HttpResponse::InternalServerError().finish(),
                    }
                }
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let port = listener.local_addr().unwrap().port();
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(db.clone())
                        .app_data(web::PayloadConfig::new(64 << 20))
                        .route("/api/v1/orders", web::post().to(durable))
                        .default_service(web::to(|| async { HttpResponse::Ok().finish() }))
                })
                .workers(workers)
                .listen(listener)
                .unwrap()
                .run();
                tokio::spawn(server);
                port
            }
        };
        println!("PORT {port}");
        std::io::stdout().flush().unwrap();
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await
        .unwrap();
    });
    std::process::exit(0);
}

// ---------------------------------------------------------------------------------------------
// Authorities, tokens, orders.

fn private_pem() -> String {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    ed25519_dalek::SigningKey::from_bytes(&[KEY_SEED; 32])
        .to_pkcs8_pem(LineEnding::LF)
        .unwrap()
        .to_string()
}

fn public_pem() -> String {
    writ::audit::keys::public_pem(
        &ed25519_dalek::SigningKey::from_bytes(&[KEY_SEED; 32]).verifying_key(),
    )
}

/// Migrates, registers the authority and its key, and adds a legal reviewer.
fn prepare_store(settings: &Settings) -> Db {
    let db = Db::open(&settings.database).unwrap();
    let mut conn = db.conn().unwrap();
    migrations::run_pending(&mut conn).unwrap();
    writ::audit::service::install_entry_key(&db, &settings.audit, true).unwrap();
    let actor = Actor::new(ActorKind::System, "bench");
    writ::authority::add(
        &mut conn,
        &actor,
        &NewAuthority {
            id: AUTHORITY.into(),
            name: "Parquet de Paris".into(),
            country: "FR".into(),
            kind: IssuerKind::Prosecutor,
            contacts: vec!["liaison@paris.example".into()],
        },
    )
    .unwrap();
    writ::authority::add_key(
        &mut conn,
        &actor,
        AUTHORITY,
        KID,
        KeyAlgorithm::EdDSA,
        &public_pem(),
    )
    .unwrap();
    writ::staff::add_user(
        &mut conn,
        &actor,
        REVIEWER,
        "Rita Reviewer",
        writ::staff::Role::LegalReviewer,
        PASSWORD,
    )
    .unwrap();
    drop(conn);
    db
}

/// Signs request tokens as the authority's system would.
struct Signer {
    pem: String,
    audience: String,
    lifetime: i64,
}

impl Signer {
    fn request(&self, method: &str, path: &str, body: &[u8], now: i64) -> Vec<u8> {
        let token = client::sign_request(
            KeyAlgorithm::EdDSA,
            &self.pem,
            KID,
            &TokenRequest {
                issuer: AUTHORITY,
                audience: &self.audience,
                method,
                path,
                body,
                now,
                lifetime_secs: self.lifetime,
            },
        )
        .unwrap();
        let auth = format!("Bearer {token}");
        let mut headers = vec![("Authorization", auth.as_str())];
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        load::request(method, path, &headers, body)
    }

    /// `n` GETs of `path`, each with its own token, all valid for the next `lifetime` seconds.
    fn gets(&self, path: &str, n: usize) -> Arc<Vec<Vec<u8>>> {
        let now = Utc::now().timestamp();
        Arc::new(
            (0..n)
                .map(|_| self.request("GET", path, b"", now))
                .collect(),
        )
    }

    /// `n` order submissions, each a distinct order with its own token.
    fn submissions(&self, first: u64, n: usize, pdf: &[u8]) -> Arc<Vec<Vec<u8>>> {
        let now = Utc::now().timestamp();
        Arc::new(
            (first..first + n as u64)
                .map(|i| {
                    let body = submission(i, pdf);
                    self.request("POST", "/api/v1/orders", body.as_bytes(), now)
                })
                .collect(),
        )
    }
}

fn order_json(i: u64) -> String {
    let mut v: Value = serde_json::from_str(ORDER).unwrap();
    v["reference"] = json!(format!("BENCH-{i:08}"));
    v["targets"] = json!([{"username": format!("user{}", i % 100_000)}]);
    v.to_string()
}

fn submission(i: u64, pdf: &[u8]) -> String {
    client::submission_body(&order_json(i), pdf, None).unwrap()
}

fn pdf(bytes: usize) -> Vec<u8> {
    let mut v = b"%PDF-1.7\n".to_vec();
    let mut x = 0x2545_4446u32;
    while v.len() < bytes {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.push(x as u8);
    }
    v
}

fn audience(addr: SocketAddr) -> String {
    let a = load::once(addr, &load::request("GET", "/api/v1", &[], b""));
    let v: Value = serde_json::from_slice(&a.body).unwrap();
    v["audience"].as_str().unwrap().to_owned()
}

fn open_orders(conn: &mut DbConn) -> u64 {
    orders::table
        .filter(orders::status.eq_any(["under_review", "awaiting_clarification", "approved"]))
        .count()
        .get_result::<i64>(conn)
        .unwrap() as u64
}

/// Adds open orders through intake's own check and store, 500 per transaction, received over
/// the last 20 days so that deadlines spread.
fn top_up_open_orders(db: &Db, to: u64, pdf: &[u8]) -> u64 {
    let policies = PolicySet::builtin().unwrap();
    let deployment = Deployment {
        establishment: "IE".into(),
        legal_representative_in: vec![],
        dsa_intermediary: true,
        service_class: None,
        offers_service_in: vec![],
    };
    let mut conn = db.conn().unwrap();
    let have = open_orders(&mut conn);
    let mut added = 0;
    let now = Utc::now();
    while have + added < to {
        let n = (to - have - added).min(500);
        let checked: Vec<_> = (0..n)
            .map(|k| {
                let i = 1_000_000 + added + k;
                let raw = serde_json::value::RawValue::from_string(order_json(i)).unwrap();
                use base64::Engine;
                let upload = writ::orders::intake::DocumentUpload {
                    media_type: "application/pdf".into(),
                    content: base64::engine::general_purpose::STANDARD.encode(pdf),
                };
                (
                    i,
                    writ::orders::intake::check_parts(
                        &mut conn,
                        &raw,
                        Some(upload.into()),
                        None,
                        AUTHORITY,
                        1 << 24,
                        true,
                        &writ::authority::validation::Binding::strict(0),
                    )
                    .unwrap(),
                )
            })
            .collect();
        write_tx(&mut conn, |c| {
            for (i, checked) in &checked {
                writ::orders::intake::store(
                    c,
                    AUTHORITY,
                    checked,
                    &policies,
                    &deployment,
                    &writ::orders::intake::Receipt {
                        received_at: now - chrono::Duration::minutes((*i % (20 * 1440)) as i64),
                        entered_by: None,
                        mail: None,
                        channel: "api",
                    },
                    now,
                )?;
            }
            Ok::<_, writ::orders::OrderError>(())
        })
        .unwrap();
        added += n;
    }
    added
}

/// Marks open orders beyond `to` withdrawn (the intake runs leave more than the queue measure
/// wants), straight in the table: only the queue's count matters here.
fn close_excess_orders(db: &Db, to: u64) -> u64 {
    let mut conn = db.conn().unwrap();
    let excess = open_orders(&mut conn).saturating_sub(to);
    if excess == 0 {
        return 0;
    }
    let ids: Vec<String> = orders::table
        .filter(orders::status.eq_any(["under_review", "awaiting_clarification", "approved"]))
        .select(orders::id)
        .limit(excess as i64)
        .load(&mut *conn)
        .unwrap();
    for chunk in ids.chunks(500) {
        diesel::update(orders::table.filter(orders::id.eq_any(chunk)))
            .set(orders::status.eq("withdrawn"))
            .execute(&mut *conn)
            .unwrap();
    }
    excess
}

// ---------------------------------------------------------------------------------------------
// 1-3. HTTP.

/// CPU time (user + system) of a process so far, seconds.
fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_owned(),
        |p| format!("/proc/{p}/stat"),
    );
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let fields: Vec<&str> = text
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Fields after the command: state is 0, utime 11, stime 12; Linux counts in 1/100 s.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// The machine's busy and stolen time so far, seconds, from /proc/stat (all cores).
fn machine_seconds() -> (f64, f64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0) as f64 / 100.0;
    // user nice system idle iowait irq softirq steal
    (at(0) + at(1) + at(2) + at(5) + at(6), at(7))
}

/// A run with how busy the server's and the driver's processes were during it (1.0 = one core),
/// what everything else on the machine used, and what the hypervisor took.
struct Measured {
    run: Run,
    server_cpu: f64,
    driver_cpu: f64,
    other_cpu: f64,
    steal: f64,
}

fn measure(
    server: &Server,
    requests: Arc<Vec<Vec<u8>>>,
    cycle: bool,
    connections: usize,
    pace: Pace,
    duration: Duration,
    expect: u16,
) -> Measured {
    let (s0, d0) = (cpu_seconds(Some(server.pid())), cpu_seconds(None));
    let (m0, st0) = machine_seconds();
    let t = Instant::now();
    let run = load::drive(
        server.addr,
        requests,
        cycle,
        connections,
        pace,
        duration,
        expect,
    );
    let secs = t.elapsed().as_secs_f64();
    let (m1, st1) = machine_seconds();
    let server_cpu = (cpu_seconds(Some(server.pid())) - s0) / secs;
    let driver_cpu = (cpu_seconds(None) - d0) / secs;
    Measured {
        run,
        server_cpu,
        driver_cpu,
        other_cpu: ((m1 - m0) / secs - server_cpu - driver_cpu).max(0.0),
        steal: (st1 - st0) / secs,
    }
}

/// Best-of-rounds figures of one server for one request kind.
#[derive(Default, Clone)]
struct Best {
    rate: f64,
    connections: usize,
    server_cpu: f64,
    driver_cpu: f64,
    other_cpu: f64,
    steal: f64,
    p50: f64,
    p99: f64,
    at_rate: f64,
    failures: u64,
    first_failure: Option<String>,
}

impl Best {
    /// A closed-loop run: keep the highest rate.
    fn closed(&mut self, m: &Measured, connections: usize) {
        if m.run.rate() > self.rate {
            self.rate = m.run.rate();
            self.connections = connections;
            self.server_cpu = m.server_cpu;
            self.driver_cpu = m.driver_cpu;
            self.other_cpu = m.other_cpu;
            self.steal = m.steal;
        }
        self.count_failures(&m.run);
    }

    /// An open-loop run: keep the round with the lowest p99.
    fn open(&mut self, run: &Run, rate: f64) {
        let p99 = run.quantile_ms(0.99);
        if self.p99 == 0.0 || p99 < self.p99 {
            self.p99 = p99;
            self.p50 = run.quantile_ms(0.5);
            self.at_rate = rate;
        }
        self.count_failures(run);
    }

    fn count_failures(&mut self, run: &Run) {
        self.failures += run.failed;
        if self.first_failure.is_none() {
            self.first_failure = run.first_failure.clone();
        }
    }

    /// How the best closed-loop run used the cores.
    fn cpu(&self) -> String {
        format!(
            "{} connections, server {:.0}% of a core, driver {:.0}%, other processes {:.0}%, stolen by the hypervisor {:.0}%",
            self.connections,
            self.server_cpu * 100.0,
            self.driver_cpu * 100.0,
            self.other_cpu * 100.0,
            self.steal * 100.0
        )
    }

    fn failures_note(&self, report: &mut Report, what: &str) {
        if self.failures > 0 {
            report.note(format!(
                "{what}: {} unexpected answers; the first: {}",
                self.failures,
                self.first_failure.as_deref().unwrap_or("?")
            ));
        }
    }
}

struct HttpStores {
    label: &'static str,
    writ_url: String,
    base_url: String,
    _pg: Vec<PgDb>,
}

fn http_suite(stores: &HttpStores, dir: &Path, k: &Knobs, pinned: bool, report: &mut Report) {
    let sqlite = stores.label == "SQLite";
    let label = stores.label;
    let writ_dir = dir.join(format!("writ-{label}"));
    let base_dir = dir.join(format!("base-{label}"));
    std::fs::create_dir_all(&writ_dir).unwrap();
    std::fs::create_dir_all(&base_dir).unwrap();
    let settings = server_settings(&stores.writ_url, &writ_dir, k.workers);
    let db = prepare_store(&settings);
    let app = Server::spawn("writ", &stores.writ_url, &writ_dir, k.workers, pinned);
    let base = Server::spawn("baseline", &stores.base_url, &base_dir, k.workers, pinned);
    let signer = Signer {
        pem: private_pem(),
        audience: audience(app.addr),
        lifetime: settings.api.token_max_lifetime_secs,
    };
    let pdf = pdf(k.pdf_bytes);
    let t = k.duration();

    // One order to read back.
    let first = signer.submissions(0, 1, &pdf);
    let created = load::once(app.addr, &first[0]);
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let id = created.header("location").unwrap().to_owned();

    if sqlite && k.runs("http") {
        progress("HTTP GET /api/v1/orders/{id} (SQLite)");
        let (mut w, mut b) = (Best::default(), Best::default());
        let mut pool = 60_000usize;
        let trivial_requests = signer.gets(&id, 2000);
        let open_c = k.open_connections();
        for _ in 0..k.rounds {
            let (mut round_b, mut round_w) = (0f64, 0f64);
            for &c in &k.connections {
                let m = measure(
                    &base,
                    trivial_requests.clone(),
                    true,
                    c,
                    Pace::Closed,
                    t,
                    200,
                );
                round_b = round_b.max(m.run.rate());
                b.closed(&m, c);
                let requests = signer.gets(&id, pool);
                let m = measure(&app, requests, false, c, Pace::Closed, t, 200);
                round_w = round_w.max(m.run.rate());
                pool = ((m.run.rate() * k.seconds * 1.5) as usize).clamp(2000, 200_000);
                w.closed(&m, c);
            }
            let (half_b, half_w) = (round_b / 2.0, round_w / 2.0);
            let m = measure(
                &base,
                trivial_requests.clone(),
                true,
                open_c,
                Pace::Open(half_b),
                t,
                200,
            );
            b.open(&m.run, half_b);
            let requests = signer.gets(&id, (half_w * k.seconds * 1.1) as usize + 100);
            let m = measure(&app, requests, false, open_c, Pace::Open(half_w), t, 200);
            w.open(&m.run, half_w);
        }
        report.note(format!(
            "GET, best closed-loop runs: Writ {}; trivial handler {}",
            w.cpu(),
            b.cpu()
        ));
        report.row_met(
            "HTTP: authenticated `GET /api/v1/orders/{id}`, max rate (closed loop, SQLite)",
            format!("{:.0} /s", w.rate),
            format!("trivial handler: {:.0} /s", b.rate),
            ratio(w.rate / b.rate),
            "≥ 0.10 of the trivial handler",
            Some(w.rate / b.rate >= 0.10),
        );
        report.row_met(
            "HTTP: same, p99 latency at half the max rate (open loop)",
            format!(
                "p50 {}, p99 {} at {:.0} /s",
                ms(w.p50),
                ms(w.p99),
                w.at_rate
            ),
            format!(
                "trivial: p50 {}, p99 {} at {:.0} /s",
                ms(b.p50),
                ms(b.p99),
                b.at_rate
            ),
            String::new(),
            "p99 < 5 ms",
            Some(w.p99 < 5.0),
        );
        w.failures_note(report, "GET (Writ)");
        b.failures_note(report, "GET (trivial)");
    }

    if k.runs("intake") {
        progress(&format!("order intake ({label})"));
        let (mut w, mut b) = (Best::default(), Best::default());
        let mut next = 1u64;
        let mut pool = 10_000usize;
        let goal_rate = 500.0;
        let open_c = k.open_connections();
        for _ in 0..k.rounds {
            for &c in &k.connections {
                let requests = signer.submissions(next, pool, &pdf);
                next += pool as u64;
                let m = measure(&base, requests.clone(), true, c, Pace::Closed, t, 201);
                b.closed(&m, c);
                let m = measure(&app, requests, false, c, Pace::Closed, t, 201);
                pool = ((m.run.rate() * k.seconds * 1.5) as usize).clamp(1000, 50_000);
                w.closed(&m, c);
            }
            let n = (goal_rate * k.seconds * 1.1) as usize + 100;
            let requests = signer.submissions(next, n, &pdf);
            next += n as u64;
            let m = measure(
                &base,
                requests.clone(),
                true,
                open_c,
                Pace::Open(goal_rate),
                t,
                201,
            );
            b.open(&m.run, goal_rate);
            let m = measure(&app, requests, false, open_c, Pace::Open(goal_rate), t, 201);
            w.open(&m.run, m.run.rate());
        }
        report.note(format!(
            "intake ({label}), best closed-loop runs: Writ {}; baseline {}",
            w.cpu(),
            b.cpu()
        ));
        let goal = if sqlite {
            "≥ 500 /s (SQLite)"
        } else {
            "(none for PostgreSQL)"
        };
        report.row_met(
            &format!(
                "intake: `POST /api/v1/orders` ({} KiB document), max rate (closed loop, {label})",
                k.pdf_bytes / 1024
            ),
            format!("{:.0} orders/s", w.rate),
            format!("HTTP + one durable insert of the body: {:.0} /s", b.rate),
            ratio(w.rate / b.rate),
            goal,
            sqlite.then_some(w.rate >= 500.0),
        );
        report.row_met(
            &format!("intake: latency at 500 orders/s offered (open loop, {label})"),
            format!(
                "{:.0} /s done, p50 {}, p99 {}",
                w.at_rate,
                ms(w.p50),
                ms(w.p99)
            ),
            format!("durable insert: p50 {}, p99 {}", ms(b.p50), ms(b.p99)),
            String::new(),
            if sqlite { "p99 < 50 ms (SQLite)" } else { "" },
            sqlite.then_some(w.p99 < 50.0 && w.at_rate >= 0.98 * goal_rate),
        );
        w.failures_note(report, &format!("intake (Writ, {label})"));
        b.failures_note(report, &format!("intake (baseline, {label})"));
    }

    if sqlite && k.runs("queue") {
        progress("queue page with 10,000 open orders");
        let t0 = Instant::now();
        let added = top_up_open_orders(&db, OPEN_ORDERS, &pdf);
        let closed = close_excess_orders(&db, OPEN_ORDERS);
        // The steady state of a queue: the background job has resolved every order's holds.
        let resolved =
            writ::orders::holds::resolve_all(&mut db.conn().unwrap(), Utc::now()).unwrap();
        let open = open_orders(&mut db.conn().unwrap());
        report.note(format!(
            "queue: {added} open orders added through intake::check_parts + intake::store, {closed} \
             (from the intake runs) marked withdrawn, {resolved} holds resolved, in {:.1} s: {open} open",
            t0.elapsed().as_secs_f64()
        ));
        let session = writ::staff::login(
            &mut db.conn().unwrap(),
            REVIEWER,
            PASSWORD,
            "127.0.0.0/24",
            &settings.workspace,
            Utc::now(),
        )
        .unwrap();
        let cookie = format!("{}={}", writ::web::ui::SESSION_COOKIE, session.token);
        let req = Arc::new(vec![load::request(
            "GET",
            "/orders",
            &[("Cookie", cookie.as_str())],
            b"",
        )]);
        let page = load::once(app.addr, &req[0]);
        assert_eq!(page.status, 200);
        let shown = String::from_utf8_lossy(&page.body)
            .matches("<tr class=")
            .count();
        let (mut w, mut b) = (Best::default(), Best::default());
        for _ in 0..k.rounds {
            let run = load::drive(base.addr, req.clone(), true, 1, Pace::Closed, t, 200);
            b.open(&run, run.rate());
            let run = load::drive(app.addr, req.clone(), true, 1, Pace::Closed, t, 200);
            w.open(&run, run.rate());
        }
        report.row_met(
            &format!(
                "queue page `GET /orders`, {open} open orders, one reviewer (sequential requests; {shown} rows, {} KiB)",
                page.body.len() / 1024
            ),
            format!(
                "p50 {}, p99 {} ({:.0} pages/s)",
                ms(w.p50),
                ms(w.p99),
                w.at_rate
            ),
            format!("trivial: p50 {}, p99 {}", ms(b.p50), ms(b.p99)),
            ratio(w.at_rate / b.at_rate),
            "p99 < 20 ms",
            Some(w.p99 < 20.0),
        );
        w.failures_note(report, "queue (Writ)");

        // Search and filters (issue 19): the same 10,000 open orders, by reference, by
        // authority, verdict and receipt date, by assignee, and by target identifier (audited:
        // every search appends an entry, so this one measures a write too).
        let today = Utc::now().format("%Y-%m-%d").to_string();
        let searches = [
            ("reference contains", "/orders?reference=0042".to_owned()),
            (
                "authority, verdict, received today",
                format!(
                    "/orders?authority=paris&outcome=acceptable_for_review&received_from={today}"
                ),
            ),
            (
                "assigned to nobody, authority replied",
                "/orders?assignee=none&replied=1".to_owned(),
            ),
            (
                "target identifier (audited)",
                "/orders?target=alice".to_owned(),
            ),
            ("CSV export of the queue", "/orders/export.csv".to_owned()),
        ];
        for (label, path) in searches {
            let req = Arc::new(vec![load::request(
                "GET",
                &path,
                &[("Cookie", cookie.as_str())],
                b"",
            )]);
            let page = load::once(app.addr, &req[0]);
            assert_eq!(page.status, 200, "{path}");
            let mut w = Best::default();
            for _ in 0..k.rounds {
                let run = load::drive(app.addr, req.clone(), true, 1, Pace::Closed, t, 200);
                w.open(&run, run.rate());
            }
            report.row_met(
                &format!("queue search `GET {path}` ({label}), {open} open orders, one reviewer"),
                format!("p50 {}, p99 {} ({:.0} /s)", ms(w.p50), ms(w.p99), w.at_rate),
                String::new(),
                String::new(),
                "p99 < 100 ms",
                Some(w.p99 < 100.0),
            );
            w.failures_note(report, label);
        }
    }

    let (hwm, rss) = memory_of(app.pid());
    let (base_hwm, _) = memory_of(base.pid());
    report.row(
        &format!("server peak memory after the load above (VmHWM, {label})"),
        format!("{} (now {})", mib(hwm), mib(rss)),
        format!("baseline server: {}", mib(base_hwm)),
        String::new(),
        "",
    );
    app.stop();
    base.stop();
}

// ---------------------------------------------------------------------------------------------
// 4. Disclosure.

fn micros(s: &str) -> i64 {
    s.parse::<DateTime<Utc>>().unwrap().timestamp_micros()
}

/// Adds the target account and its 10,000 IP events, spread over 2025.
fn add_target(db: &Db) {
    use writ::metadata::records::{AccountRow, IpEventRow};
    use writ::metadata::store;
    let mut conn = db.conn().unwrap();
    let from = micros("2025-01-01T00:00:00Z");
    let step = (micros("2026-01-01T00:00:00Z") - from) / TARGET_EVENTS as i64;
    let account = AccountRow {
        external_id: TARGET.into(),
        status: "active".into(),
        created_at: micros("2024-06-01T00:00:00Z"),
        registration_ip: Some("198.51.100.7".into()),
        identifiers: vec![],
    };
    let events: Vec<(u64, IpEventRow)> = (0..TARGET_EVENTS)
        .map(|k| {
            (
                k,
                IpEventRow {
                    external_id: TARGET.into(),
                    at: from + k as i64 * step + (k as i64 * 7919) % step,
                    ip: format!("203.0.113.{}", 1 + k % 254),
                    port: 1024 + (k % 60_000) as i32,
                    kind: "login".into(),
                },
            )
        })
        .collect();
    write_tx(&mut conn, |c| {
        let a = store::store_accounts(c, &[(0, account)])?;
        assert!(a.rejected.is_empty());
        let e = store::store_ip_events(c, &events, &mut store::AccountIds::default())?;
        assert_eq!(e.new, TARGET_EVENTS, "{:?}", e.rejected.first());
        Ok::<_, writ::metadata::MetadataError>(())
    })
    .unwrap();
}

/// The engine's decision on an EPOC from a French judge for the target's IP history in 2025.
fn disclosure_scope() -> writ::policy::Decision {
    let mut v: Value = serde_json::from_str(ORDER).unwrap();
    v["reference"] = json!("BENCH-DISCLOSURE");
    v["issuer"] = json!({"kind": "judge", "person": "Mme J. Martin", "authority": "Juge des libertés, Paris", "country": "FR", "file_number": "JLD-1"});
    v["targets"] = json!([{"user_id": TARGET}]);
    v["categories"] = json!(["ip_history"]);
    v["time_window"] = json!({"from": "2025-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"});
    let order = writ::policy::Order::from_json(&v.to_string()).unwrap();
    let facts = RegistryFacts {
        issuer_kind: Some(IssuerKind::Judge),
        validator_kind: None,
        issuer_country: Some("FR".into()),
        validation_signed_by_validator: false,
        earlier_preservations: 0,
    };
    let deployment = Deployment {
        establishment: "IE".into(),
        legal_representative_in: vec![],
        dsa_intermediary: true,
        service_class: None,
        offers_service_in: vec![],
    };
    let received = "2026-09-01T08:00:00Z".parse().unwrap();
    let scope = writ::policy::decide(
        &order,
        &facts,
        received,
        &[],
        &PolicySet::builtin().unwrap(),
        &deployment,
        received,
    );
    assert!(
        !writ::disclosure::gather::released(&scope, Category::IpHistory).is_empty(),
        "the scope releases IP history: {}",
        serde_json::to_string(&scope).unwrap()
    );
    scope
}

struct Disclosed {
    seed_secs: f64,
    writ_ms: f64,
    writ_max_ms: f64,
    base_ms: f64,
    rows: usize,
    tar_bytes: usize,
}

/// Seeds a store of `events` events with `writ demo seed`, adds the target, then times
/// gather + build against the plain read of the same rows.
fn disclosure(url: &str, dir: &Path, events: u64, iterations: usize) -> Disclosed {
    std::fs::create_dir_all(dir).unwrap();
    let accounts = events / 10;
    let t = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_writ"));
    // Every WRIT_* variable is configuration to `writ`, which refuses keys it does not know.
    for (key, _) in std::env::vars() {
        if key.starts_with("WRIT_BENCH_") || key.starts_with("WRIT_TEST_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd
        .args([
            "demo",
            "seed",
            "--accounts",
            &accounts.to_string(),
            "--events-per-account",
            "10",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("WRIT_DATABASE__URL", url)
        .env(
            "WRIT_AUDIT__SIGNING_KEY_PATH",
            dir.join("audit.key").display().to_string(),
        )
        .env(
            "WRIT_AUDIT__ENTRY_KEY_PATH",
            dir.join("audit-entry.key").display().to_string(),
        )
        .env(
            "WRIT_AUDIT__CHECKPOINT_PATH",
            dir.join("checkpoint.txt").display().to_string(),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "writ demo seed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seed_secs = t.elapsed().as_secs_f64();
    progress(&format!(
        "  {}",
        String::from_utf8_lossy(&out.stdout).trim()
    ));
    let settings = bench_settings(url, dir, &[]);
    let db = Db::open(&settings.database).unwrap();
    writ::audit::service::install_entry_key(&db, &settings.audit, true).unwrap();
    add_target(&db);
    let scope = disclosure_scope();
    let scope_sha256 = writ::digest::sha256_hex(&serde_json::to_vec(&scope).unwrap());
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let actor = Actor::new(ActorKind::Staff, "alex");
    let window = scope.time_window.unwrap();
    let (from, to) = (window.from.timestamp_micros(), window.to.timestamp_micros());
    let mut conn = db.conn().unwrap();
    let account_id: i64 = accounts::table
        .filter(accounts::external_id.eq(TARGET))
        .select(accounts::id)
        .first(&mut *conn)
        .unwrap();
    let (mut writ_times, mut base_times) = (Vec::new(), Vec::new());
    let (mut rows, mut tar_bytes) = (0, 0);
    for i in 0..=iterations {
        let t = Instant::now();
        let plain: Vec<(i64, i64, String, i32, String)> = ip_events::table
            .filter(ip_events::account_id.eq(account_id))
            .filter(ip_events::at.ge(from))
            .filter(ip_events::at.lt(to))
            .order(ip_events::at)
            .select((
                ip_events::account_id,
                ip_events::at,
                ip_events::ip,
                ip_events::port,
                ip_events::kind,
            ))
            .load(&mut *conn)
            .unwrap();
        let base = t.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(plain.len() as u64, TARGET_EVENTS);

        let t = Instant::now();
        let now = Utc::now();
        let tables =
            writ::disclosure::gather::gather(&mut conn, &actor, "ord_bench", &scope, now).unwrap();
        let package = writ::disclosure::package::build(
            &writ::disclosure::package::PackageInput {
                order_id: "ord_bench".into(),
                reference: scope.order_reference.clone(),
                authority_id: "fr-jld-paris".into(),
                instrument: scope.instrument.clone(),
                order_version: 1,
                scope_sha256: scope_sha256.clone(),
                scope: scope.clone(),
                tables,
                created_at: now,
                approvers: vec!["alex".into(), "bea".into()],
            },
            &key,
        )
        .unwrap();
        let took = t.elapsed().as_secs_f64() * 1000.0;
        rows = package.record_counts.values().sum::<u64>() as usize;
        tar_bytes = package.tar.len();
        if i > 0 {
            // The first round warms the caches and is not counted.
            writ_times.push(took);
            base_times.push(base);
        }
    }
    assert_eq!(rows as u64, TARGET_EVENTS);
    let writ_max_ms = writ_times.iter().copied().fold(0.0, f64::max);
    Disclosed {
        seed_secs,
        writ_ms: median(&mut writ_times),
        writ_max_ms,
        base_ms: median(&mut base_times),
        rows,
        tar_bytes,
    }
}

/// Audited lookups on a demo store, as in the metadata bench: IP history of an account over 30
/// days, and who used an address and port at a moment (±60 s).
fn lookups(url: &str, dir: &Path, events: u64, report: &mut Report) {
    use writ::metadata::lookup::{self, LookupContext, Window};
    let settings = bench_settings(url, dir, &[]);
    let db = Db::open(&settings.database).unwrap();
    writ::audit::service::install_entry_key(&db, &settings.audit, true).unwrap();
    let mut conn = db.conn().unwrap();
    let ctx = LookupContext {
        actor: Actor::new(ActorKind::Staff, "bench"),
        order_id: "ord_bench".into(),
    };
    let accounts = (events / 10) as i64;
    let year = 366 * 86_400_000_000i64;
    let (mut by_user, mut by_ip) = (Vec::new(), Vec::new());
    let mut x = 88_172_645_463_325_252u64;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let id = 1 + (x % accounts as u64) as i64;
        let created: i64 = accounts::table
            .find(id)
            .select(accounts::created_at)
            .first(&mut *conn)
            .unwrap();
        // One of its events (untimed), then the timed lookups around it.
        let all = lookup::ip_history(
            &mut conn,
            &ctx,
            id,
            Window::new(created, created + year).unwrap(),
        )
        .unwrap();
        let e = &all.events[(x >> 32) as usize % all.events.len()];
        let t = Instant::now();
        let w = Window::new(e.at - 15 * 86_400_000_000, e.at + 15 * 86_400_000_000).unwrap();
        let h = lookup::ip_history(&mut conn, &ctx, id, w).unwrap();
        by_user.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(!h.events.is_empty());
        let port = u16::try_from(e.port).ok().filter(|p| *p > 0);
        let t = Instant::now();
        let m = lookup::by_ip(&mut conn, &ctx, &e.ip, port, e.at, 60).unwrap();
        by_ip.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(!m.accounts.is_empty());
    }
    for v in [&mut by_user, &mut by_ip] {
        v.sort_by(f64::total_cmp);
    }
    let q = |v: &[f64], p: f64| v[(((v.len() as f64) * p).ceil() as usize).clamp(1, v.len()) - 1];
    report.row(
        &format!("lookup: IP history of one account, 30-day window, {events}-event store (SQLite, audited)"),
        format!("p50 {}, p99 {}", ms(q(&by_user, 0.5)), ms(q(&by_user, 0.99))),
        String::new(),
        String::new(),
        "",
    );
    report.row(
        "lookup: who used address:port at a moment, ±60 s (same store)",
        format!("p50 {}, p99 {}", ms(q(&by_ip, 0.5)), ms(q(&by_ip, 0.99))),
        String::new(),
        String::new(),
        "",
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Import and audit, small.

const IMPORT_ACCOUNTS: u64 = 100_000;

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Child mode: import the CSV with Writ's import; print records, seconds, peak memory (KiB).
fn child_import(url: &str, dir: &Path, csv: &Path) {
    use writ::metadata::import::{self, Format, ImportOptions};
    let settings = bench_settings(url, dir, &[]);
    let db = Db::open(&settings.database).unwrap();
    writ::audit::service::install_entry_key(&db, &settings.audit, true).unwrap();
    let options = ImportOptions {
        kind: writ::metadata::records::RecordKind::IpEvents,
        format: Format::Csv,
        batch_rows: settings.metadata.import_batch_rows,
        source: "bench".into(),
        actor: Actor::system(),
    };
    let t = Instant::now();
    let file = std::fs::File::open(csv).unwrap();
    let summary = import::import(&db, file, &options, &mut std::io::sink(), &|_, _| {}).unwrap();
    assert_eq!(summary.rejected, 0);
    println!(
        "{} {} {}",
        summary.new,
        t.elapsed().as_secs_f64(),
        vm_hwm_kib()
    );
}

fn import_suite(dir: &Path, n: u64, report: &mut Report) {
    let d = dir.join("import");
    std::fs::create_dir_all(&d).unwrap();
    let writ_csv = d.join("events.csv");
    let base_csv = d.join("baseline.csv");
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&writ_csv).unwrap());
    let mut b = BufWriter::with_capacity(1 << 20, std::fs::File::create(&base_csv).unwrap());
    writeln!(w, "external_id,ip,port,at,kind").unwrap();
    writeln!(b, "account_id,at,ip,port,kind").unwrap();
    let base_time = micros("2024-01-01T00:00:00Z");
    for i in 0..n {
        let r = mix(i);
        let account = r % IMPORT_ACCOUNTS;
        let at =
            base_time + ((r >> 17) % (700 * 86_400)) as i64 * 1_000_000 + (i % 1_000_000) as i64;
        let ip = format!("198.51.100.{}", 1 + (r >> 40) % 254);
        let port = 1024 + ((r >> 48) % 60_000) as u16;
        let time = writ::metadata::normalize::from_micros(at)
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        writeln!(w, "demo-{account:08},{ip},{port},{time},login").unwrap();
        writeln!(b, "{},{at},{ip},{port},login", account + 1).unwrap();
    }
    w.flush().unwrap();
    b.flush().unwrap();
    drop((w, b));
    let fresh = |name: &str| {
        let url = format!("sqlite://{}", d.join(name).display());
        let seed_settings = bench_settings(&url, &d, &[]);
        let db = Db::open(&seed_settings.database).unwrap();
        migrations::run_pending(&mut db.conn().unwrap()).unwrap();
        writ::audit::service::install_entry_key(&db, &seed_settings.audit, true).unwrap();
        writ::metadata::demo::seed(
            &db,
            writ::metadata::demo::DemoSpec {
                accounts: IMPORT_ACCOUNTS,
                events_per_account: 0,
                seed: 1,
            },
            &|_| {},
        )
        .unwrap();
        url
    };
    let base_secs = if have("sqlite3") {
        fresh("baseline.db");
        let t = Instant::now();
        let status = Command::new("sqlite3")
            .arg(d.join("baseline.db"))
            .arg(format!(
                ".import --csv --skip 1 {} ip_events",
                base_csv.display()
            ))
            .status()
            .unwrap();
        assert!(status.success());
        Some(t.elapsed().as_secs_f64())
    } else {
        report.note("import: the sqlite3 command is missing, so the import has no baseline".into());
        None
    };
    let url = fresh("writ.db");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--child-import",
            &url,
            &d.display().to_string(),
            &writ_csv.display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f: Vec<f64> = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let mb = std::fs::metadata(&writ_csv).unwrap().len() as f64 / 1e6;
    report.row(
        &format!("import {n} IP events from CSV ({mb:.0} MB), SQLite, default batches"),
        format!(
            "{:.0} events/s ({:.1} s), peak {}",
            n as f64 / f[1],
            f[1],
            mib(f[2] as u64)
        ),
        base_secs.map_or_else(String::new, |s| {
            format!("`sqlite3 .import`: {:.0} events/s ({s:.1} s)", n as f64 / s)
        }),
        base_secs.map_or_else(String::new, |s| ratio(s / f[1])),
        "",
    );
    let _ = std::fs::remove_file(&writ_csv);
    let _ = std::fs::remove_file(&base_csv);
}

fn audit_entry(i: u64) -> NewEntry {
    NewEntry::new(Actor::new(ActorKind::Staff, "u_17"), "order.approved")
        .order(format!("ord_{}", i % 5000))
        .jurisdiction("fr")
        .reference(
            "document_sha256",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        )
        .reference("fields", i % 7)
}

fn plain_insert(conn: &mut DbConn, seq: u64) -> Result<(), diesel::result::Error> {
    use diesel::sql_types::{BigInt, Nullable, Text};
    let leaf = audit_entry(seq).to_leaf(seq, Utc::now()).unwrap();
    let sql = "INSERT INTO bench_plain (seq, at, actor_kind, actor_id, event, order_id, jurisdiction, leaf) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    macro_rules! q {
        ($c:expr) => {
            diesel::sql_query(sql)
                .bind::<BigInt, _>(seq as i64)
                .bind::<Text, _>(&leaf.at)
                .bind::<Text, _>(leaf.actor.kind.as_str())
                .bind::<Text, _>(&leaf.actor.id)
                .bind::<Text, _>(&leaf.event)
                .bind::<Nullable<Text>, _>(&leaf.order)
                .bind::<Nullable<Text>, _>(&leaf.jurisdiction)
                .bind::<Text, _>(leaf.to_text())
                .execute($c)
        };
    }
    match conn {
        DbConn::Sqlite(c) => q!(c)?,
        DbConn::Postgres(c) => q!(c)?,
    };
    Ok(())
}

fn append_op(c: &mut DbConn, i: u64) -> Result<(), diesel::result::Error> {
    writ::audit::append(c, &audit_entry(i), Utc::now())
        .map(|_| ())
        .map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))
}

fn rate_of(
    db: &Db,
    start: u64,
    count: u64,
    per_tx: u64,
    op: &dyn Fn(&mut DbConn, u64) -> Result<(), diesel::result::Error>,
) -> f64 {
    let mut conn = db.conn().unwrap();
    let t = Instant::now();
    let mut seq = start;
    while seq < start + count {
        let end = (seq + per_tx).min(start + count);
        write_tx(&mut conn, |c| {
            for s in seq..end {
                op(c, s)?;
            }
            Ok::<_, diesel::result::Error>(())
        })
        .unwrap();
        seq = end;
    }
    count as f64 / t.elapsed().as_secs_f64()
}

/// Child mode: export the whole log; print entries, seconds, peak memory before and after.
fn child_export(url: &str, dir: &Path, out: &Path) {
    use writ::audit::export::{ExportFormat, ExportRequest};
    let settings = bench_settings(url, dir, &[]);
    let db = Db::open(&settings.database).unwrap();
    let mut conn = db.conn().unwrap();
    let signer = writ::audit::service::load_signer(&settings.audit, &mut conn, false).unwrap();
    let before = vm_hwm_kib();
    let t = Instant::now();
    let mut file = BufWriter::new(std::fs::File::create(out).unwrap());
    let request = ExportRequest {
        start: 0,
        end: None,
        format: ExportFormat::Jsonl,
        consistency_from: None,
    };
    let summary =
        writ::audit::export::write_export(&mut conn, signer.origin(), &request, &mut file).unwrap();
    file.flush().unwrap();
    println!(
        "{} {} {} {}",
        summary.entries,
        t.elapsed().as_secs_f64(),
        before,
        vm_hwm_kib()
    );
}

fn audit_suite(dir: &Path, entries: u64, report: &mut Report) {
    let d = dir.join("audit");
    std::fs::create_dir_all(&d).unwrap();
    let url = format!("sqlite://{}", d.join("audit.db").display());
    let settings = bench_settings(&url, &d, &[]);
    let db = Db::open(&settings.database).unwrap();
    let mut conn = db.conn().unwrap();
    migrations::run_pending(&mut conn).unwrap();
    writ::audit::service::install_entry_key(&db, &settings.audit, true).unwrap();
    conn.batch_execute(
        "CREATE TABLE bench_plain (seq BIGINT PRIMARY KEY NOT NULL, at TEXT NOT NULL, \
         actor_kind TEXT NOT NULL, actor_id TEXT NOT NULL, event TEXT NOT NULL, order_id TEXT, \
         jurisdiction TEXT, leaf TEXT NOT NULL)",
    )
    .unwrap();
    drop(conn);
    let (mut a1, mut p1) = (0f64, 0f64);
    let (mut next_a, mut next_p) = (0u64, 0u64);
    for _ in 0..3 {
        p1 = p1.max(rate_of(&db, next_p, 300, 1, &plain_insert));
        next_p += 300;
        a1 = a1.max(rate_of(&db, next_a, 300, 1, &append_op));
        next_a += 300;
    }
    report.row(
        "audit append, 1 entry per commit (SQLite, synchronous=FULL)",
        format!("{a1:.0} /s"),
        format!("plain insert of the same row: {p1:.0} /s"),
        ratio(a1 / p1),
        "",
    );
    let more = entries.saturating_sub(next_a);
    rate_of(&db, next_a, more, 1000, &append_op);
    let mut conn = db.conn().unwrap();
    let signer = writ::audit::service::load_signer(&settings.audit, &mut conn, true).unwrap();
    writ::audit::checkpoint::sign_if_new(&mut conn, &signer, Utc::now()).unwrap();
    drop(conn);
    let export_path = d.join("export.jsonl");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--child-export",
            &url,
            &d.display().to_string(),
            &export_path.display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f: Vec<f64> = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let mb = std::fs::metadata(&export_path).unwrap().len() as f64 / 1e6;
    report.row(
        &format!("audit export of {:.0} entries ({mb:.0} MB JSONL)", f[0]),
        format!(
            "{:.1} s ({:.0} entries/s), peak {} (of which {} before the export began)",
            f[1],
            f[0] / f[1],
            mib(f[3] as u64),
            mib(f[2] as u64)
        ),
        String::new(),
        String::new(),
        "",
    );
    let _ = std::fs::remove_file(&export_path);
}

// ---------------------------------------------------------------------------------------------
// Main.

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let cores = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    format!(
        "{cores} cores ({cpu}), {:.0} GiB",
        mem_kib as f64 / 1024.0 / 1024.0
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let at = |flag: &str| args.iter().position(|a| a == flag);
    if let Some(p) = at("--child-server") {
        child_server(
            &args[p + 1],
            &args[p + 2],
            Path::new(&args[p + 3]),
            args[p + 4].parse().unwrap(),
        );
        return;
    }
    if let Some(p) = at("--child-import") {
        child_import(
            &args[p + 1],
            Path::new(&args[p + 2]),
            Path::new(&args[p + 3]),
        );
        return;
    }
    if let Some(p) = at("--child-export") {
        child_export(
            &args[p + 1],
            Path::new(&args[p + 2]),
            Path::new(&args[p + 3]),
        );
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks harness-less benches to list; nothing to list.
    }
    let started = Instant::now();
    let k = Knobs::from_env();
    let pinned = pin_driver();
    let dir = match std::env::var("WRIT_BENCH_DIR") {
        Ok(d) => tempfile::tempdir_in(d).unwrap(),
        Err(_) => tempfile::tempdir().unwrap(),
    };
    let d = dir.path();
    let mut report = Report::default();
    if !pinned {
        report.note(
            "not pinned: taskset is missing or the machine has one core; server and load share the cores".into(),
        );
    }

    // 1-3. HTTP on SQLite, intake on PostgreSQL.
    if k.runs("http") || k.runs("intake") || k.runs("queue") {
        let stores = HttpStores {
            label: "SQLite",
            writ_url: format!("sqlite://{}", d.join("writ-http.db").display()),
            base_url: format!("sqlite://{}", d.join("base-http.db").display()),
            _pg: vec![],
        };
        http_suite(&stores, d, &k, pinned, &mut report);
        if let Some(admin) = &k.postgres
            && k.runs("intake")
        {
            let writ_db = PgDb::create(admin, "http");
            let base_db = PgDb::create(admin, "base");
            let stores = HttpStores {
                label: "PostgreSQL",
                writ_url: writ_db.url.clone(),
                base_url: base_db.url.clone(),
                _pg: vec![writ_db, base_db],
            };
            let k = Knobs {
                skip: vec!["http".into(), "queue".into()],
                ..Knobs::from_env()
            };
            http_suite(&stores, d, &k, pinned, &mut report);
        }
    }

    // 4. Disclosure at each size on each backend, and lookups on the largest SQLite store.
    if k.runs("disclosure") {
        let mut sizes = vec![k.events];
        if k.large {
            sizes.push(k.events * 10);
        }
        let mut backends: Vec<&str> = vec!["SQLite"];
        if k.postgres.is_some() {
            backends.push("PostgreSQL");
        }
        for backend in backends {
            let mut results: Vec<(u64, Disclosed)> = Vec::new();
            for &size in &sizes {
                progress(&format!("disclosure: {backend}, {size} events (seeding)"));
                let sub = d.join(format!("disclosure-{backend}-{size}"));
                let pg = (backend == "PostgreSQL")
                    .then(|| PgDb::create(k.postgres.as_deref().unwrap(), &format!("d{size}")));
                let url = match &pg {
                    Some(p) => p.url.clone(),
                    None => format!("sqlite://{}", sub.join("store.db").display()),
                };
                let r = disclosure(&url, &sub, size, 20);
                report.note(format!(
                    "disclosure: `writ demo seed` made {size} events ({} accounts x 10) on {backend} in {:.0} s ({:.0} events/s)",
                    size / 10,
                    r.seed_secs,
                    size as f64 / r.seed_secs
                ));
                report.row_met(
                    &format!(
                        "disclosure: gather + build the package of a target with {} IP events, {size}-event store ({backend})",
                        r.rows
                    ),
                    format!(
                        "{} median of 20, slowest {} ({} KiB archive)",
                        ms(r.writ_ms),
                        ms(r.writ_max_ms),
                        r.tar_bytes / 1024
                    ),
                    format!("query reading the same rows: {}", ms(r.base_ms)),
                    ratio(r.base_ms / r.writ_ms),
                    "< 100 ms (median)",
                    Some(r.writ_ms < 100.0),
                );
                if backend == "SQLite" && Some(&size) == sizes.last() && k.runs("lookup") {
                    progress("lookups");
                    lookups(&url, &sub, size, &mut report);
                }
                results.push((size, r));
                drop(pg);
                let _ = std::fs::remove_dir_all(&sub);
            }
            if let [(s1, r1), .., (s2, r2)] = results.as_slice() {
                let growth = r2.writ_ms / r1.writ_ms;
                let base_growth = r2.base_ms / r1.base_ms;
                report.row_met(
                    &format!("disclosure: growth from {s1} to {s2} events ({backend})"),
                    format!("x{growth:.2}"),
                    format!("plain query: x{base_growth:.2}"),
                    String::new(),
                    "no growth (x1.25 or less, allowing for noise)",
                    Some(growth <= 1.25),
                );
            }
        }
    }

    // 5. Import and audit, small.
    if k.runs("import") && k.import_events > 0 {
        progress(&format!("import of {} events", k.import_events));
        import_suite(d, k.import_events, &mut report);
    }
    if k.runs("audit") && k.audit_entries > 0 {
        progress(&format!(
            "audit appends and export of {} entries",
            k.audit_entries
        ));
        audit_suite(d, k.audit_entries, &mut report);
    }

    // The table.
    println!();
    println!(
        "Run on {} on {}; server and load {}; {} s per run, best of {} interleaved rounds, \
         closed loop at {} connections (best kept), {} actix worker(s) per server; took {:.0} s.",
        Utc::now().format("%Y-%m-%d"),
        machine(),
        if pinned {
            "pinned to cores 0 and 1 (taskset)"
        } else {
            "not pinned"
        },
        k.seconds,
        k.rounds,
        k.connections
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(" and "),
        k.workers,
        started.elapsed().as_secs_f64()
    );
    println!();
    println!("| measure | Writ | baseline | ratio | goal | met? |");
    println!("|---|---|---|---|---|---|");
    for r in &report.rows {
        println!("| {} |", r.join(" | "));
    }
    if !report.notes.is_empty() {
        println!();
        for n in &report.notes {
            println!("- {n}");
        }
    }
}
