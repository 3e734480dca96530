//! The audit append lock released before the WAL flush, on PostgreSQL.
//!
//! Appends are serialised by a transaction-scoped lock ([`crate::audit::log`]), so the lock is
//! held until the commit returns, and a synchronous commit returns only after PostgreSQL has
//! flushed its write-ahead log to disk. Every append therefore waited for the previous one's
//! flush, and the log took one disk flush at a time: about 500 orders/s at most on the service
//! bench's machine, with PostgreSQL's group commit never getting two appends to flush together.
//!
//! So an outermost write transaction ([`super::write_tx`]) that takes the append lock commits
//! without waiting for the flush (`synchronous_commit = off` for that transaction only, set in
//! the same statement that takes the lock: no extra round trip), which releases the lock as soon
//! as the commit record is written, and then waits for the flush with one small synchronous
//! write of its own ([`wait`]). The write-ahead log is one sequence, so that write's flush
//! covers the transaction's commit record too. [`super::write_tx`] returns only after it: what
//! Writ acknowledges is on disk, as before, and the flushes of concurrent appends now coincide.
//!
//! What changes is only when others can see it: another session may read the change during the
//! flush, before it is durable. So what Writ answers or commits to from such a read waits for
//! the flush first:
//! - a write that depends on it flushes the log past it at its own commit;
//! - an idempotent replay of a stored answer calls [`read_is_durable`] before answering;
//! - a checkpoint is signed and stored in a transaction that commits synchronously (whose flush
//!   covers every entry it signs) and is served or copied outside only after that commit; the
//!   one transaction that both appends and signs (a key rotation) asks for that with
//!   [`commit_durably`].
//!
//! An auditor's read of the newest entries (`/audit/entries`) can show an entry during its
//! flush. Such an entry is covered by no checkpoint yet, and Writ commits to none until a
//! synchronous commit has flushed it.
//!
//! Transactions that do not take the append lock, transactions not opened by
//! [`super::write_tx`], and SQLite are unchanged.

use std::cell::Cell;

use diesel::RunQueryDsl;

use super::DbConn;

/// The SQL that turns the flush wait off for the rest of the current transaction, as a column
/// to select beside the lock.
pub(crate) const DEFER_FLUSH_COLUMN: &str = "set_config('synchronous_commit', 'off', true)";

/// The synchronous write whose flush covers everything committed before it: a transactional
/// logical-decoding message (no table, no row; any role may write one). It gives the statement's
/// own transaction an id and a WAL record, so its commit flushes the log up to it.
const FLUSH: &str = "SELECT pg_logical_emit_message(true, 'writ', 'flush')";

/// What the outermost write transaction open on a connection does at its commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// Waits for the flush, as PostgreSQL does by default.
    Synchronous,
    /// Does not wait; [`super::write_tx`] waits after it.
    Deferred,
    /// Waits for the flush whatever it takes ([`commit_durably`]).
    Durably,
}

thread_local! {
    /// The connection (by address) whose outermost write transaction is open on this thread,
    /// and whether that transaction's commit no longer waits for the flush.
    static OPEN: Cell<Option<(usize, Commit)>> = const { Cell::new(None) };
}

fn address(conn: &DbConn) -> usize {
    std::ptr::from_ref(conn) as usize
}

/// The outermost write transaction on a PostgreSQL connection, from its `BEGIN` to its end:
/// restores what it replaced when dropped (a write transaction on another connection of the
/// same thread).
pub(super) struct Open {
    conn: usize,
    previous: Option<(usize, Commit)>,
}

impl Open {
    pub(super) fn begin(conn: &DbConn) -> Self {
        let conn = address(conn);
        let previous = OPEN.with(|o| o.replace(Some((conn, Commit::Synchronous))));
        Self { conn, previous }
    }

    /// Whether the transaction's commit no longer waits for the flush, so that [`wait`] must.
    pub(super) fn deferred(&self) -> bool {
        OPEN.with(|o| o.get()) == Some((self.conn, Commit::Deferred))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        OPEN.with(|o| o.set(self.previous));
    }
}

/// Whether the transaction open on `conn` may commit without waiting for the flush: it is a
/// PostgreSQL transaction opened by [`super::write_tx`], which will [`wait`] after the commit,
/// and nothing in it asked for [`commit_durably`]. Records that it does, so the caller must
/// then run [`DEFER_FLUSH_COLUMN`] in it.
pub(crate) fn defer(conn: &DbConn) -> bool {
    if !matches!(conn, DbConn::Postgres(_)) {
        return false;
    }
    let conn = address(conn);
    OPEN.with(|o| match o.get() {
        Some((open, Commit::Synchronous | Commit::Deferred)) if open == conn => {
            o.set(Some((open, Commit::Deferred)));
            true
        }
        _ => false,
    })
}

/// Makes the commit of the transaction open on `conn` wait for the flush before anything it
/// wrote is visible to other sessions, even if it takes the append lock (before or after this
/// call): for a transaction that stores what is served as soon as it can be read, a signed
/// checkpoint. Nothing outside a PostgreSQL transaction of [`super::write_tx`].
pub fn commit_durably(conn: &mut DbConn) -> diesel::QueryResult<()> {
    if !matches!(conn, DbConn::Postgres(_)) {
        return Ok(());
    }
    let address = address(conn);
    let was = OPEN.with(|o| match o.get() {
        Some((open, commit)) if open == address => {
            o.set(Some((open, Commit::Durably)));
            Some(commit)
        }
        _ => None,
    });
    if let (Some(Commit::Deferred), DbConn::Postgres(c)) = (was, conn) {
        diesel::sql_query("SELECT set_config('synchronous_commit', 'on', true)").execute(c)?;
    }
    Ok(())
}

/// Makes sure that what `conn` read of other sessions' commits is on disk before the caller
/// acts on it: a commit there can be visible during its flush (see the module's notes). On
/// PostgreSQL, one small synchronous write flushes the log past everything committed before it:
/// at once outside a transaction, at the commit inside one. For an answer read back and sent
/// again (an idempotent replay). Nothing on SQLite, where a commit is visible only once its
/// write-ahead log is synced.
pub fn read_is_durable(conn: &mut DbConn) -> diesel::QueryResult<()> {
    match conn {
        DbConn::Postgres(c) => diesel::sql_query(FLUSH).execute(c).map(drop),
        DbConn::Sqlite(_) => Ok(()),
    }
}

/// Waits until PostgreSQL has flushed its write-ahead log past everything this session
/// committed: one synchronous write, whose commit flushes the log up to its own record.
pub(super) fn wait(conn: &mut diesel::PgConnection) -> diesel::QueryResult<()> {
    diesel::sql_query(FLUSH).execute(conn).map(drop).map_err(|e| {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new(format!(
                "the transaction committed, but waiting for PostgreSQL to flush it to disk failed ({e}): it may not be durable"
            )),
        )
    })
}

/// What in the database's configuration lets a commit that Writ acknowledged be lost in a crash
/// or a power cut, each as a sentence naming the setting; empty when nothing does. PostgreSQL:
/// `fsync` off, or `synchronous_commit` off for Writ's sessions (then the flush waited for above
/// waits for nothing). SQLite: Writ's connections at a `synchronous` level below FULL
/// (`database.sqlite_synchronous`).
pub fn durability_risks(conn: &mut DbConn) -> diesel::QueryResult<Vec<String>> {
    #[derive(diesel::QueryableByName)]
    struct Settings {
        #[diesel(sql_type = diesel::sql_types::Text)]
        fsync: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        synchronous_commit: String,
    }
    #[derive(diesel::QueryableByName)]
    struct Synchronous {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        synchronous: i32,
    }
    let mut risks = Vec::new();
    match conn {
        DbConn::Postgres(c) => {
            let s: Settings = diesel::sql_query(
                "SELECT current_setting('fsync') AS fsync, \
                 current_setting('synchronous_commit') AS synchronous_commit",
            )
            .get_result(c)?;
            if s.fsync != "on" {
                risks.push(format!(
                    "PostgreSQL runs with fsync = {}: a crash of its machine can lose or corrupt committed data",
                    s.fsync
                ));
            }
            if s.synchronous_commit == "off" {
                risks.push(
                    "PostgreSQL's synchronous_commit is off for Writ's sessions: a crash can lose the last orders and audit entries Writ acknowledged"
                        .to_owned(),
                );
            }
        }
        DbConn::Sqlite(c) => {
            let s: Synchronous = diesel::sql_query("PRAGMA synchronous").get_result(c)?;
            // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
            if s.synchronous < 2 {
                risks.push(format!(
                    "SQLite runs at synchronous = {}: a power cut can lose the last orders and audit entries Writ acknowledged",
                    if s.synchronous == 1 { "NORMAL" } else { "OFF" }
                ));
            }
        }
    }
    Ok(risks)
}
