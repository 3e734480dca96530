//! Test harness: a real Writ server on port 0 with a fresh database per test.
//!
//! Every test runs on SQLite; with `WRIT_TEST_POSTGRES_URL` set (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`), it runs on PostgreSQL too, each time in a
//! database of its own that is dropped afterwards.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use diesel::{Connection, PgConnection, RunQueryDsl};
use writ::settings::{Settings, Sources};
use writ::web::Application;

/// Which backend a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL admin URL, if the PostgreSQL variants are to run.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("WRIT_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// Generates, for each named `async fn name(backend: Backend)`, a module with a `sqlite` and a
/// `postgres` test. The PostgreSQL one returns at once when `WRIT_TEST_POSTGRES_URL` is unset,
/// so a newcomer without PostgreSQL still gets a green run; CI sets it and counts them.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::helpers::postgres_admin_url().is_none() {
                    eprintln!("WRIT_TEST_POSTGRES_URL is not set: PostgreSQL variant not run");
                    return;
                }
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    )*};
}

/// Where the logs of this test run go (`WRIT_TEST_LOG_DIR`), for `.ci/scan-logs`: unset, the
/// tests log nothing.
pub fn log_dir() -> Option<PathBuf> {
    std::env::var_os("WRIT_TEST_LOG_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}

/// Sends this test process's `tracing` events (Writ's own at debug level, the rest at info) to
/// `WRIT_TEST_LOG_DIR/tests-<pid>.log`. Idempotent; a no-op without the variable.
pub fn init_test_logs() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let Some(dir) = log_dir() else { return };
        std::fs::create_dir_all(&dir).expect("WRIT_TEST_LOG_DIR can be created");
        let path = dir.join(format!("tests-{}.log", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("the test log file opens");
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info,writ=debug"))
            .with_writer(Mutex::new(file))
            .with_ansi(false)
            .try_init();
    });
}

/// Records a secret this test run handled (a session cookie, a CSRF token, a password read
/// from a file Writ wrote) in `WRIT_TEST_SECRETS_DIR/<pid>.txt`, one a line, so that
/// `.ci/scan-logs` can look for it in the logs. A no-op without the variable.
pub fn record_secret(value: &str) {
    static FILE: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();
    let value = value.trim();
    if value.len() < 8 || value.contains('\n') {
        return;
    }
    let file = FILE.get_or_init(|| {
        let dir = std::env::var_os("WRIT_TEST_SECRETS_DIR").filter(|d| !d.is_empty())?;
        std::fs::create_dir_all(&dir).expect("WRIT_TEST_SECRETS_DIR can be created");
        let path = PathBuf::from(dir).join(format!("{}.txt", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("the secrets file opens");
        Some(Mutex::new(file))
    });
    if let Some(file) = file {
        let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
        writeln!(f, "{value}").expect("a secret is recorded");
    }
}

/// A fresh, empty database that disappears with the value.
pub struct TestDb {
    url: String,
    dir: tempfile::TempDir,
    pg: Option<(String, String)>,
    /// An auditor token accepted by servers started with [`TestDb::settings`].
    pub auditor_token: String,
    auditor_hash: String,
}

impl TestDb {
    /// A new empty database on `backend`.
    pub fn new(backend: Backend) -> Self {
        init_test_logs();
        let dir = tempfile::tempdir().expect("temp dir");
        let (auditor_token, auditor_hash) = writ::web::auth::new_token().expect("token");
        record_secret(&auditor_token);
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("writ.db").display());
                Self {
                    url,
                    dir,
                    pg: None,
                    auditor_token,
                    auditor_hash,
                }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url().expect("WRIT_TEST_POSTGRES_URL");
                let name = format!("writ_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::establish(&admin).unwrap_or_else(|e| {
                    panic!("cannot reach PostgreSQL at WRIT_TEST_POSTGRES_URL: {e}")
                });
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .expect("create database");
                let url = replace_db_name(&admin, &name);
                Self {
                    url,
                    dir,
                    pg: Some((admin, name)),
                    auditor_token,
                    auditor_hash,
                }
            }
        }
    }

    /// The test's private folder (keys, checkpoint copy, exports).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Environment for a `writ` process using this database and folder.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("WRIT_DATABASE__URL".into(), self.url.clone()),
            (
                "WRIT_AUDIT__SIGNING_KEY_PATH".into(),
                self.dir().join("audit.key").display().to_string(),
            ),
            (
                "WRIT_AUDIT__ENTRY_KEY_PATH".into(),
                self.dir().join("audit-entry.key").display().to_string(),
            ),
            (
                "WRIT_AUDIT__CHECKPOINT_PATH".into(),
                self.dir().join("checkpoint.txt").display().to_string(),
            ),
            (
                "WRIT_AUDIT__AUDITOR_TOKEN_SHA256".into(),
                self.auditor_hash.clone(),
            ),
            (
                "WRIT_PACKAGE__SIGNING_KEY_PATH".into(),
                self.dir().join("package.key").display().to_string(),
            ),
            // Tests start with an empty audit log; the first-admin test turns this on.
            ("WRIT_WORKSPACE__CREATE_FIRST_ADMIN".into(), "false".into()),
            (
                "WRIT_WORKSPACE__INITIAL_ADMIN_PASSWORD_FILE".into(),
                self.dir()
                    .join("initial-admin-password")
                    .display()
                    .to_string(),
            ),
            (
                "WRIT_MAIL__OUTBOX_DIR".into(),
                self.dir().join("outbox").display().to_string(),
            ),
            // Tests sign on demand unless they test the background signer.
            ("WRIT_AUDIT__CHECKPOINT_INTERVAL_SECS".into(), "0".into()),
            // Nor do they verify the whole log in the background unless they test it.
            ("WRIT_AUDIT__VERIFY_INTERVAL_SECS".into(), "0".into()),
        ]
    }

    /// Settings for this database, from the real config/default.toml plus `extra` variables.
    pub fn settings(&self, extra: &[(&str, &str)]) -> Settings {
        let mut env: HashMap<String, String> = self.env().into_iter().collect();
        env.insert("WRIT_SERVER__PORT".into(), "0".into());
        env.insert("WRIT_SERVER__WORKERS".into(), "2".into());
        env.insert("WRIT_SERVER__SHUTDOWN_TIMEOUT_SECS".into(), "5".into());
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        Settings::load(&Sources {
            base_dir: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
            file: None,
            env: Some(env),
        })
        .expect("test settings")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Passwords Writ wrote for people (the first admin's, the demo users') must not reach
        // a log either.
        if let Ok(text) = std::fs::read_to_string(self.dir().join("initial-admin-password")) {
            text.lines().skip(1).for_each(record_secret);
        }
        if let Ok(text) = std::fs::read_to_string(self.dir().join("demo-users.txt")) {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split('\t').nth(2))
                .for_each(record_secret);
        }
        if let Some((admin, name)) = &self.pg
            && let Ok(mut conn) = PgConnection::establish(admin)
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn);
        }
    }
}

/// `postgres://u@h:p/old?x` -> `postgres://u@h:p/new?x`.
fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let head = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{head}/{name}?{q}"),
        None => format!("{head}/{name}"),
    }
}

/// A running Writ server.
pub struct TestApp {
    pub address: String,
    /// The database and folder; they live as long as the server.
    pub db: TestDb,
    pub pool: writ::db::Db,
    pub client: reqwest::Client,
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.address, path))
            .send()
            .await
            .expect("request")
    }

    /// GET with the auditor token.
    pub async fn get_as_auditor(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.address, path))
            .bearer_auth(&self.db.auditor_token)
            .send()
            .await
            .expect("request")
    }

    /// POST (no body) with the auditor token.
    pub async fn post_as_auditor(&self, path: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{}", self.address, path))
            .bearer_auth(&self.db.auditor_token)
            .send()
            .await
            .expect("request")
    }
}

/// Starts Writ on a fresh database with the given extra settings.
pub async fn spawn_app_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let db = TestDb::new(backend);
    let settings = db.settings(extra);
    spawn_with_settings(db, settings).await
}

/// Starts Writ with these settings on this database.
pub async fn spawn_with_settings(db: TestDb, settings: Settings) -> TestApp {
    let app = Application::build(settings)
        .await
        .expect("application builds");
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

/// Starts Writ on a fresh database.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

/// Another Writ instance beside a [`TestApp`]: its address and its own connection pool.
pub struct SecondInstance {
    pub address: String,
    pub pool: writ::db::Db,
}

/// Starts a second Writ server on the same database, key files, checkpoint copy and outbox as
/// `app`, with the same settings built from `extra` (give the `extra` the first was started
/// with): a second instance behind a load balancer. `app` has already migrated, so with
/// `database.migrate_on_start` this one takes the migration lock, finds nothing pending and
/// goes on. It serves until the test's runtime ends.
pub async fn spawn_second_instance(app: &TestApp, extra: &[(&str, &str)]) -> SecondInstance {
    let settings = app.db.settings(extra);
    let second = Application::build(settings)
        .await
        .expect("the second instance builds");
    let port = second.port();
    let pool = second.db().clone();
    tokio::spawn(second.run_until_stopped());
    SecondInstance {
        address: format!("http://127.0.0.1:{port}"),
        pool,
    }
}

/// The PostgreSQL connection inside a test database's connection (PostgreSQL-only tests).
pub fn pg(conn: &mut writ::db::DbConn) -> &mut diesel::PgConnection {
    match conn {
        writ::db::DbConn::Postgres(c) => c,
        writ::db::DbConn::Sqlite(_) => unreachable!("a PostgreSQL test database"),
    }
}
