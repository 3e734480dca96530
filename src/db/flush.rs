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
//! flush, before it is durable. Nothing Writ commits to outside the database is made from that:
//! a checkpoint is signed and stored in a synchronous transaction, whose own flush covers every
//! entry it signs, before its outside copy is written ([`crate::audit::checkpoint`]).
//!
//! Transactions that do not take the append lock, transactions not opened by
//! [`super::write_tx`], and SQLite are unchanged.

use std::cell::Cell;

use diesel::RunQueryDsl;

use super::DbConn;

/// The SQL that turns the flush wait off for the rest of the current transaction, as a column
/// to select beside the lock.
pub(crate) const DEFER_FLUSH_COLUMN: &str = "set_config('synchronous_commit', 'off', true)";

/// The synchronous write whose flush covers everything committed before it on this session
/// (table from migration `2026-12-11-010000_commit_flush`, one row per server process).
const FLUSH: &str = "INSERT INTO writ_commit_flush (backend, flushes) VALUES (pg_backend_pid(), 1) \
                     ON CONFLICT (backend) DO UPDATE SET flushes = writ_commit_flush.flushes + 1";

thread_local! {
    /// The connection (by address) whose outermost write transaction is open on this thread,
    /// and whether that transaction's commit no longer waits for the flush.
    static OPEN: Cell<Option<(usize, bool)>> = const { Cell::new(None) };
}

fn address(conn: &DbConn) -> usize {
    std::ptr::from_ref(conn) as usize
}

/// The outermost write transaction on a PostgreSQL connection, from its `BEGIN` to its end:
/// restores what it replaced when dropped (a write transaction on another connection of the
/// same thread).
pub(super) struct Open {
    conn: usize,
    previous: Option<(usize, bool)>,
}

impl Open {
    pub(super) fn begin(conn: &DbConn) -> Self {
        let conn = address(conn);
        let previous = OPEN.with(|o| o.replace(Some((conn, false))));
        Self { conn, previous }
    }

    /// Whether the transaction's commit no longer waits for the flush, so that [`wait`] must.
    pub(super) fn deferred(&self) -> bool {
        OPEN.with(|o| o.get()) == Some((self.conn, true))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        OPEN.with(|o| o.set(self.previous));
    }
}

/// Whether the transaction open on `conn` may commit without waiting for the flush: it is a
/// PostgreSQL transaction opened by [`super::write_tx`], which will [`wait`] after the commit.
/// Records that it does, so the caller must then run [`DEFER_FLUSH_COLUMN`] in it.
pub(crate) fn defer(conn: &DbConn) -> bool {
    if !matches!(conn, DbConn::Postgres(_)) {
        return false;
    }
    let conn = address(conn);
    OPEN.with(|o| match o.get() {
        Some((open, _)) if open == conn => {
            o.set(Some((open, true)));
            true
        }
        _ => false,
    })
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
