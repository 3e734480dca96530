//! The database: one connection type over SQLite (embedded default) and PostgreSQL
//! (production, scale-out), a pool, write transactions, row locks ([`locks`]), and embedded
//! migrations.
//!
//! Backend-specific SQL belongs in this module and in `migrations/`, so that the rest of Writ
//! writes backend-agnostic diesel queries against [`DbConn`], with the primitives of [`locks`],
//! [`partitions`], [`statement`] and `on_backend!` where the backends differ. No file outside
//! it names a backend (`tests/api/architecture.rs` holds that).
//!
//! Blocking rule: diesel is synchronous, so async code reaches the database only through
//! [`Db::run`], which runs the closure on tokio's blocking thread pool.

pub mod backup;
pub mod flush;
pub mod lease;
pub mod locks;
pub mod log_append;
pub mod meta;
pub mod migrations;
pub mod partitions;
pub mod schema;
pub mod tls;

use std::cell::RefCell;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};

use crate::settings::{Backend, DatabaseSettings, DatabaseUrl, SqliteSynchronous};

/// Runs the same diesel expression on whichever backend `conn` is, for the statements diesel's
/// multi-backend connection cannot build itself (`ON CONFLICT`, `RETURNING`): both backends
/// accept the same statement, only the connection type differs. `on_backend!(conn, |c| expr)`.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Sqlite($c) => $body,
            $crate::db::DbConn::Postgres($c) => $body,
        }
    };
}
pub(crate) use on_backend;

/// A connection to either backend. Diesel's query DSL works on it unchanged.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    /// The embedded SQLite file.
    Sqlite(SqliteConnection),
    /// A PostgreSQL server.
    Postgres(PgConnection),
}

impl DbConn {
    /// Which backend this connection talks to.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }
}

/// Errors from the database layer. Messages never contain the connection URL.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had from the pool (database down, pool exhausted).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// Migrations could not be applied or reverted.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Setting up the database (its folder, its journal mode) failed.
    #[error("database setup failed: {0}")]
    Setup(String),
    /// A stored value does not parse as what Writ wrote there.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Opens connections for the pool and applies the per-connection settings.
#[derive(Debug)]
pub struct Manager {
    url: DatabaseUrl,
    sqlite_busy_timeout_ms: u64,
    sqlite_synchronous: SqliteSynchronous,
    sqlite_cache_mib: u32,
    sqlite_wal_autocheckpoint_pages: u32,
    /// The server checkpoints the WAL from a background task instead of inside commits.
    background_checkpoint: bool,
    /// PostgreSQL only: the rustls tunnel each connection goes through (`[database.tls]`).
    tls: Option<Arc<tls::PgTls>>,
    /// How long one connection attempt may take.
    connect_timeout: Duration,
}

/// Serialises one database's SQLite write transactions in this process before they ask SQLite
/// for its lock.
///
/// SQLite has one writer at a time; a connection that finds the lock taken waits in SQLite's
/// busy handler, which sleeps in growing steps (up to 100 ms) and polls. Under load most
/// writers slept long past the moment the lock came free: that sleep, not the work, was most of
/// intake's p99 (918 ms at 500 orders per second). Waiting here instead wakes the next writer as
/// soon as the previous one commits. Other processes (the CLI) and code that does not go
/// through [`Db::run`] still meet SQLite's own lock and busy handler, so correctness never
/// depends on this gate.
#[derive(Debug)]
struct WriterGate {
    busy: Mutex<bool>,
    freed: Condvar,
    timeout: Duration,
}

thread_local! {
    /// The gate of the database whose [`Db::run`] closure this thread is running, if any.
    static GATE: RefCell<Option<Arc<WriterGate>>> = const { RefCell::new(None) };
    /// The audit entry key of the database whose connection this thread last took (see
    /// [`audit_entry_key`]).
    static ENTRY_KEY: RefCell<Option<Arc<crate::keystore::Key>>> = const { RefCell::new(None) };
}

/// The Ed25519 key with which this process authenticates the audit entries it appends, as
/// installed on the [`Db`] whose connection the current thread took last ([`Db::run`] for its
/// closure, [`Db::conn`] until the thread takes another). The key lives in this process (a
/// file's) or in a PKCS#11 token, never in the database: a row inserted by other means has no
/// valid authenticator.
pub fn audit_entry_key() -> Option<Arc<crate::keystore::Key>> {
    ENTRY_KEY.with(|k| k.borrow().clone())
}

/// Installs `key` as the audit entry key of the calling thread's appends, for a connection
/// opened without a [`Db`] (a fuzz target's in-memory database); a [`Db`] installs its own
/// with [`Db::install_audit_entry_key`].
pub fn install_thread_audit_entry_key(key: impl Into<crate::keystore::Key>) {
    let key: Arc<crate::keystore::Key> = Arc::new(key.into());
    ENTRY_KEY.with(|k| *k.borrow_mut() = Some(key));
}

/// The entry key slot shared by every clone of a [`Db`].
type EntryKeySlot = Arc<std::sync::RwLock<Option<Arc<crate::keystore::Key>>>>;

/// Holding a gate; dropping it lets the next writer in.
struct GatePass(Arc<WriterGate>);

impl WriterGate {
    fn new(timeout: Duration) -> Self {
        Self {
            busy: Mutex::new(false),
            freed: Condvar::new(),
            timeout,
        }
    }

    /// Waits for the gate, up to the busy timeout; `None` if it stayed taken.
    fn enter(gate: Arc<Self>) -> Option<GatePass> {
        {
            let busy = gate.busy.lock().unwrap_or_else(PoisonError::into_inner);
            let (mut busy, _) = gate
                .freed
                .wait_timeout_while(busy, gate.timeout, |busy| *busy)
                .unwrap_or_else(PoisonError::into_inner);
            if *busy {
                return None;
            }
            *busy = true;
        }
        Some(GatePass(gate))
    }
}

impl Drop for GatePass {
    fn drop(&mut self) {
        *self.0.busy.lock().unwrap_or_else(PoisonError::into_inner) = false;
        self.0.freed.notify_one();
    }
}

/// Makes `gate` the current thread's gate until dropped, then restores the one before.
struct GateScope(Option<Arc<WriterGate>>);

impl GateScope {
    fn set(gate: Option<Arc<WriterGate>>) -> Self {
        Self(GATE.with(|g| g.replace(gate)))
    }
}

impl Drop for GateScope {
    fn drop(&mut self) {
        let previous = self.0.take();
        GATE.with(|g| *g.borrow_mut() = previous);
    }
}

impl Manager {
    fn establish(&self) -> Result<DbConn, r2d2::Error> {
        match self.url.backend() {
            Backend::Sqlite => {
                let path = self
                    .url
                    .sqlite_path()
                    .and_then(|p| p.to_str())
                    .ok_or_else(|| {
                        r2d2::Error::ConnectionError(diesel::ConnectionError::InvalidConnectionUrl(
                            "SQLite path is not valid UTF-8".into(),
                        ))
                    })?;
                let mut conn =
                    SqliteConnection::establish(path).map_err(r2d2::Error::ConnectionError)?;
                // busy_timeout first: the pragmas after it may already need a lock.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = {}; \
                     PRAGMA cache_size = -{}; PRAGMA wal_autocheckpoint = {};",
                    self.sqlite_busy_timeout_ms,
                    self.sqlite_synchronous.pragma(),
                    u64::from(self.sqlite_cache_mib) * 1024,
                    if self.background_checkpoint {
                        0
                    } else {
                        self.sqlite_wal_autocheckpoint_pages
                    }
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConn::Sqlite(conn))
            }
            Backend::Postgres => {
                let conn = match &self.tls {
                    Some(tls) => tls.establish(self.url.expose(), self.connect_timeout),
                    None => PgConnection::establish(self.url.expose()),
                }
                .map_err(r2d2::Error::ConnectionError)?;
                Ok(DbConn::Postgres(conn))
            }
        }
    }
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        self.establish()
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken()
    }
}

/// A pooled connection.
pub type PooledConn = PooledConnection<Manager>;

/// The shared handle to the database: cheap to clone, one per process.
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    backend: Backend,
    /// SQLite only: this process's queue for the one writer.
    gate: Option<Arc<WriterGate>>,
    /// SQLite only: the WAL is checkpointed by [`Db::spawn_wal_checkpointer`].
    background_checkpoint: bool,
    /// The audit entry key, once installed ([`Db::install_audit_entry_key`]).
    entry_key: EntryKeySlot,
    /// The next audit position this process expects (see [`log_append`]).
    append_hint: log_append::HintSlot,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens the database described by the settings. For SQLite, creates the file's folder
    /// and switches the file to WAL (a persistent setting of the file). Connections are made
    /// lazily, so a PostgreSQL server that is down now does not stop this call.
    pub fn open(settings: &DatabaseSettings) -> Result<Self, DbError> {
        Self::open_with(settings, false)
    }

    /// [`Db::open`] for the server: on SQLite no commit copies the WAL back into the database
    /// file (the commit that crossed the threshold paid for the whole copy, a latency spike on
    /// one unlucky request); [`Db::spawn_wal_checkpointer`] does it in the background instead.
    pub fn open_for_server(settings: &DatabaseSettings) -> Result<Self, DbError> {
        Self::open_with(settings, true)
    }

    fn open_with(
        settings: &DatabaseSettings,
        background_checkpoint: bool,
    ) -> Result<Self, DbError> {
        let background_checkpoint =
            background_checkpoint && settings.url.backend() == Backend::Sqlite;
        let manager = Manager {
            background_checkpoint,
            url: settings.url.clone(),
            sqlite_busy_timeout_ms: settings.sqlite_busy_timeout_ms,
            sqlite_synchronous: settings.sqlite_synchronous,
            sqlite_cache_mib: settings.sqlite_cache_mib,
            sqlite_wal_autocheckpoint_pages: settings.sqlite_wal_autocheckpoint_pages,
            tls: tls::PgTls::from_settings(settings.url.expose(), &settings.tls)
                .map_err(DbError::Setup)?
                .map(Arc::new),
            connect_timeout: Duration::from_secs(settings.connect_timeout_secs),
        };
        if let Some(path) = settings.url.sqlite_path() {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    DbError::Setup(format!("cannot create folder {}: {e}", dir.display()))
                })?;
            }
            let mut conn = manager
                .establish()
                .map_err(|e| DbError::Setup(format!("cannot open {}: {e}", path.display())))?;
            // WAL lets readers run beside the one writer; it is stored in the file, so setting
            // it once here covers every connection.
            conn.batch_execute("PRAGMA journal_mode = WAL;")
                .map_err(|e| DbError::Setup(format!("cannot enable WAL: {e}")))?;
        }
        let pool = Pool::builder()
            .max_size(settings.pool_size)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(settings.connect_timeout_secs))
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(manager);
        let gate = (settings.url.backend() == Backend::Sqlite).then(|| {
            Arc::new(WriterGate::new(Duration::from_millis(
                settings.sqlite_busy_timeout_ms,
            )))
        });
        Ok(Self {
            pool,
            backend: settings.url.backend(),
            gate,
            background_checkpoint,
            entry_key: EntryKeySlot::default(),
            append_hint: log_append::new_hint(),
        })
    }

    /// Installs the key that authenticates the audit entries appended through this database
    /// handle and all its clones (see [`audit_entry_key`]).
    pub fn install_audit_entry_key(&self, key: impl Into<crate::keystore::Key>) {
        let key: Arc<crate::keystore::Key> = Arc::new(key.into());
        if let Ok(mut slot) = self.entry_key.write() {
            *slot = Some(key.clone());
        }
        // A connection this thread already holds appends with it too.
        ENTRY_KEY.with(|k| *k.borrow_mut() = Some(key));
    }

    /// Whether an audit entry key is installed.
    pub fn has_audit_entry_key(&self) -> bool {
        self.entry_key.read().is_ok_and(|k| k.is_some())
    }

    fn current_entry_key(&self) -> Option<Arc<crate::keystore::Key>> {
        self.entry_key.read().ok().and_then(|k| k.clone())
    }

    /// On a database opened with [`Db::open_for_server`], starts the task that checkpoints the
    /// SQLite WAL every `every`. A passive checkpoint never waits for the writer or blocks it.
    pub fn spawn_wal_checkpointer(&self, every: Duration) -> Option<tokio::task::JoinHandle<()>> {
        if !self.background_checkpoint {
            return None;
        }
        let db = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let done = db
                    .run(|c| {
                        c.batch_execute("PRAGMA wal_checkpoint(PASSIVE);")
                            .map_err(DbError::from)
                    })
                    .await;
                if let Err(e) = done {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
        }))
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Takes a connection from the pool, blocking. Async code uses [`Db::run`] instead.
    pub fn conn(&self) -> Result<PooledConn, DbError> {
        let conn = self
            .pool
            .get()
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        // Until this thread takes another database's connection, its appends use this key.
        let key = self.current_entry_key();
        ENTRY_KEY.with(|k| *k.borrow_mut() = key);
        log_append::install_thread_hint(Some(self.append_hint.clone()));
        Ok(conn)
    }

    /// Runs `f` with a pooled connection on the calling thread, blocking it, as [`Db::run`]
    /// runs its closure (the writer gate, the audit entry key): for a thread of its own that
    /// writes on behalf of many requests (`authority::spend`). Async code uses [`Db::run`].
    pub fn run_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E>,
        E: From<DbError>,
    {
        let _scope = GateScope::set(self.gate.clone());
        ENTRY_KEY.with(|k| *k.borrow_mut() = self.current_entry_key());
        log_append::install_thread_hint(Some(self.append_hint.clone()));
        let mut conn = self
            .pool
            .get()
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        f(&mut conn)
    }

    /// Runs `f` with a pooled connection on the blocking thread pool, off the async executor.
    /// A panic in `f` is propagated to the caller.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let gate = self.gate.clone();
        let key = self.current_entry_key();
        let hint = self.append_hint.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let _scope = GateScope::set(gate);
            ENTRY_KEY.with(|k| *k.borrow_mut() = key);
            log_append::install_thread_hint(Some(hint));
            let mut conn = pool
                .get()
                .map_err(|e| DbError::Unavailable(e.to_string()))?;
            f(&mut conn)
        })
        .await;
        match joined {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(DbError::Unavailable(format!("database task cancelled: {e}")).into()),
        }
    }
}

/// Runs `f` in a write transaction and commits if it returns `Ok`, rolls back otherwise.
///
/// On SQLite the transaction starts with `BEGIN IMMEDIATE`: it takes the write lock up front,
/// waiting up to the busy timeout for other writers. A plain (deferred) `BEGIN` would upgrade
/// its read lock on the first write, and SQLite fails such an upgrade at once with
/// "database is locked" when another writer got in between, without waiting. Called inside
/// another transaction, it becomes a savepoint of that one.
pub fn write_tx<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    if in_transaction(conn)? {
        return conn.transaction(f);
    }
    // Held until this function returns, after the commit or the rollback.
    let _pass = match conn {
        DbConn::Sqlite(c) => {
            let pass = match GATE.with(|g| g.borrow().clone()) {
                Some(gate) => Some(WriterGate::enter(gate).ok_or_else(|| {
                    diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::Unknown,
                        Box::new(String::from(
                            "database is locked: another write transaction of this process \
                             held the writer gate past the busy timeout",
                        )),
                    )
                })?),
                None => None,
            };
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
            pass
        }
        DbConn::Postgres(c) => {
            AnsiTransactionManager::begin_transaction(c)?;
            None
        }
    };
    // Held until the commit's flush is waited for (PostgreSQL; see [`flush`]).
    let open = matches!(conn, DbConn::Postgres(_)).then(|| flush::Open::begin(conn));
    match f(conn) {
        Ok(value) => {
            let committed = match conn {
                DbConn::Sqlite(c) => AnsiTransactionManager::commit_transaction(c),
                DbConn::Postgres(c) => AnsiTransactionManager::commit_transaction(c),
            };
            if let Err(e) = committed {
                rollback(conn);
                return Err(e.into());
            }
            match (conn, &open) {
                (DbConn::Postgres(c), Some(open)) if open.deferred() => {
                    flush::wait(c).map_err(E::from)?;
                }
                _ => {}
            }
            Ok(value)
        }
        Err(e) => {
            rollback(conn);
            Err(e)
        }
    }
}

/// Whether a transaction is open on this connection.
pub fn in_transaction(conn: &mut DbConn) -> diesel::QueryResult<bool> {
    let depth = match conn {
        DbConn::Sqlite(c) => {
            AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth()
        }
        DbConn::Postgres(c) => {
            AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth()
        }
    }?;
    Ok(depth.is_some())
}

/// The raw statement `sql`, written once for both backends with PostgreSQL's numbered
/// parameters (`$1`, `$2`), as `conn`'s backend reads it. SQLite reads `$1` as a *named*
/// parameter numbered by first appearance; there the statement gets SQLite's explicitly
/// numbered `?1`, `?2` instead, which bind by number whatever the order they appear in. Run it
/// with `on_backend!`: `on_backend!(conn, |c| diesel::sql_query(sql.as_ref())...)`.
pub fn statement<'a>(conn: &DbConn, sql: &'a str) -> std::borrow::Cow<'a, str> {
    match conn {
        DbConn::Postgres(_) => std::borrow::Cow::Borrowed(sql),
        DbConn::Sqlite(_) => std::borrow::Cow::Owned(sqlite_numbered(sql)),
    }
}

/// `sql` with every `$` that starts a parameter number (`$1`) written `?` (`?1`).
fn sqlite_numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// Rolls back the open transaction. A failure leaves the connection marked broken, so the
/// pool discards it rather than handing out a connection stuck in a transaction.
fn rollback(conn: &mut DbConn) {
    let result = match conn {
        DbConn::Sqlite(c) => AnsiTransactionManager::rollback_transaction(c),
        DbConn::Postgres(c) => AnsiTransactionManager::rollback_transaction(c),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "rollback failed; the connection will be discarded");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use diesel::RunQueryDsl;

    #[test]
    fn statements_number_their_parameters_the_way_sqlite_binds_them() {
        assert_eq!(
            sqlite_numbered("UPDATE t SET a = $2 WHERE b = $1 AND c = $10 AND d = '$x'"),
            "UPDATE t SET a = ?2 WHERE b = ?1 AND c = ?10 AND d = '$x'"
        );
    }

    #[test]
    fn the_writer_gate_admits_one_writer_and_times_out_the_next() {
        let gate = Arc::new(WriterGate::new(Duration::from_millis(100)));
        let first = WriterGate::enter(gate.clone()).expect("a free gate admits");
        let waiting = {
            let gate = gate.clone();
            std::thread::spawn(move || WriterGate::enter(gate).is_some())
        };
        assert!(!waiting.join().unwrap(), "a held gate must time out");
        drop(first);
        assert!(
            WriterGate::enter(gate).is_some(),
            "a freed gate admits again"
        );
    }

    #[test]
    fn a_waiting_writer_enters_as_soon_as_the_gate_is_freed() {
        let gate = Arc::new(WriterGate::new(Duration::from_secs(30)));
        let first = WriterGate::enter(gate.clone()).unwrap();
        let waiting = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                let pass = WriterGate::enter(gate);
                (pass.is_some(), started.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        drop(first);
        let (entered, waited) = waiting.join().unwrap();
        assert!(entered);
        // Woken by the release, not by the 30 s timeout.
        assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    }

    #[tokio::test]
    async fn writes_through_run_queue_at_the_gate_and_all_commit() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("gate.db").display());
        let mut settings = crate::settings::Settings::load(&crate::settings::Sources {
            base_dir: None,
            file: None,
            env: Some(std::collections::HashMap::new()),
        })
        .unwrap()
        .database;
        settings.url = crate::settings::DatabaseUrl::parse(&url).unwrap();
        settings.pool_size = 8;
        let db = Db::open_for_server(&settings).unwrap();
        db.run(|c| {
            c.batch_execute("CREATE TABLE t (n INTEGER NOT NULL)")
                .map_err(DbError::from)
        })
        .await
        .unwrap();
        let writers = (0..32).map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                db.run(move |c| {
                    write_tx(c, |c| {
                        c.batch_execute(&format!("INSERT INTO t VALUES ({n})"))?;
                        // The gate is held here: no other writer of this process is inside.
                        let gate = GATE.with(|g| g.borrow().clone()).unwrap();
                        assert!(*gate.busy.lock().unwrap());
                        Ok::<_, DbError>(())
                    })
                })
                .await
            })
        });
        for w in writers.collect::<Vec<_>>() {
            w.await.unwrap().unwrap();
        }
        let count: i64 = db
            .run(|c| {
                diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "(SELECT COUNT(*) FROM t)",
                ))
                .get_result(c)
                .map_err(DbError::from)
            })
            .await
            .unwrap();
        assert_eq!(count, 32);
    }

    /// The bundled SQLite keeps a cached statement's plan (`.cargo/config.toml`): without the
    /// query planner stability guarantee, every `LIMIT ?` statement is prepared again at each
    /// execution.
    #[test]
    fn the_bundled_sqlite_keeps_plans_stable() {
        #[derive(diesel::QueryableByName)]
        struct Opt {
            #[diesel(sql_type = diesel::sql_types::Text)]
            compile_options: String,
        }
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        let options: Vec<String> = diesel::sql_query("PRAGMA compile_options")
            .load::<Opt>(&mut c)
            .unwrap()
            .into_iter()
            .map(|o| o.compile_options)
            .collect();
        assert!(
            options.iter().any(|o| o == "ENABLE_QPSG"),
            "SQLite was built without SQLITE_ENABLE_QPSG: {options:?}"
        );
    }
}
