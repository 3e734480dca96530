//! The audit log's append in one round trip on PostgreSQL: a call of the server-side function
//! `writ_audit_append` (migration `2026-12-08-050001_audit_append_function`), which takes the
//! append lock, checks the next position, and writes the entry and the Merkle nodes it
//! completes. SQLite has no such function and needs none (it runs in the process, where a
//! statement costs no round trip): there [`append_row`] answers `None` and the caller appends
//! statement by statement.
//!
//! The leaf holds its own position and its authenticator is signed in this process, so the
//! caller must build both before the call, for the position it expects. [`next_seq_hint`] is
//! that guess: the position after the last append through this [`super::Db`]. A wrong guess
//! (another instance appended, a transaction rolled back) costs one more call, never a wrong
//! row: the function writes nothing unless the guess is the log's next position.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Nullable, Text};

use super::DbConn;

/// One audit entry's row, as [`append_row`] writes it.
#[derive(Debug, Clone, Copy)]
pub struct LogRow<'a> {
    /// The position the leaf was built for.
    pub seq: i64,
    /// Time (copy of the leaf's).
    pub at: &'a str,
    /// Actor kind (copy).
    pub actor_kind: &'a str,
    /// Actor id (copy).
    pub actor_id: &'a str,
    /// Event (copy).
    pub event: &'a str,
    /// Order (copy).
    pub order_id: Option<&'a str>,
    /// Jurisdiction (copy).
    pub jurisdiction: Option<&'a str>,
    /// The canonical leaf bytes.
    pub leaf: &'a str,
    /// Its Merkle leaf hash, `SHA-256(0x00 || leaf)`.
    pub leaf_hash: &'a [u8],
    /// The entry key's signature over the leaf hash.
    pub authenticator: &'a [u8],
}

/// Whether this connection appends with [`append_row`] (PostgreSQL), so that the caller need
/// not build an entry for nothing.
pub fn available(conn: &DbConn) -> bool {
    matches!(conn, DbConn::Postgres(_))
}

const PLAIN: &str = "SELECT writ_audit_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) AS next_seq";
/// [`PLAIN`], also committing without waiting for the flush (see [`super::flush`]).
static DEFERRING: LazyLock<String> =
    LazyLock::new(|| format!("{PLAIN}, {} AS deferred", super::flush::DEFER_FLUSH_COLUMN));

#[derive(QueryableByName)]
struct Next {
    #[diesel(sql_type = BigInt)]
    next_seq: i64,
}

/// On PostgreSQL, appends `row` with its Merkle nodes in one statement, inside the caller's
/// transaction, and answers the log's next position as it was before the call: equal to
/// `row.seq` when the row was written, another position when nothing was written because the
/// leaf was built for the wrong one. Either way the caller's transaction now holds the append
/// lock, so a second call built for the answered position is written. `None` on SQLite.
pub fn append_row(conn: &mut DbConn, row: &LogRow<'_>) -> QueryResult<Option<i64>> {
    // The commit need not hold the lock through the flush when write_tx waits for it after.
    let sql = if super::flush::defer(conn) {
        DEFERRING.as_str()
    } else {
        PLAIN
    };
    let DbConn::Postgres(c) = conn else {
        return Ok(None);
    };
    let next: Next = diesel::sql_query(sql)
        .bind::<BigInt, _>(row.seq)
        .bind::<Text, _>(row.at)
        .bind::<Text, _>(row.actor_kind)
        .bind::<Text, _>(row.actor_id)
        .bind::<Text, _>(row.event)
        .bind::<Nullable<Text>, _>(row.order_id)
        .bind::<Nullable<Text>, _>(row.jurisdiction)
        .bind::<Text, _>(row.leaf)
        .bind::<Binary, _>(row.leaf_hash)
        .bind::<Binary, _>(row.authenticator)
        .get_result(c)?;
    let hint = HINT.with(|h| h.borrow().clone());
    if let Some(hint) = hint {
        if next.next_seq == row.seq {
            // Written: the next append through this database goes one further (unless a
            // concurrent append of this process already guessed beyond).
            hint.fetch_max(row.seq.saturating_add(1), Ordering::Relaxed);
        } else {
            // Out of step: resynchronise (the retry takes `next_seq` itself).
            hint.store(next.next_seq.saturating_add(1), Ordering::Relaxed);
        }
    }
    Ok(Some(next.next_seq))
}

/// The position the next append through the current thread's database is likely to get (see
/// the module documentation), claimed so that a concurrent append of this process guesses the
/// one after; `-1` (never a position) when the thread has no database or it has not appended.
pub fn next_seq_hint() -> i64 {
    HINT.with(|h| {
        h.borrow()
            .as_ref()
            .map_or(-1, |hint| hint.fetch_add(1, Ordering::Relaxed))
    })
}

/// The guess shared by one [`super::Db`] and its clones; starts unknown.
pub(super) type HintSlot = Arc<AtomicI64>;

/// A new, unknown guess.
pub(super) fn new_hint() -> HintSlot {
    Arc::new(AtomicI64::new(-1))
}

thread_local! {
    /// The guess of the database whose connection this thread took last (like the entry key,
    /// see [`super::audit_entry_key`]).
    static HINT: std::cell::RefCell<Option<HintSlot>> = const { std::cell::RefCell::new(None) };
}

/// Makes `hint` the current thread's guess.
pub(super) fn install_thread_hint(hint: Option<HintSlot>) {
    HINT.with(|h| *h.borrow_mut() = hint);
}
