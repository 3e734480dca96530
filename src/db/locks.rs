//! Row and advisory locks, so that callers outside this module stay backend-agnostic.
//!
//! On SQLite a write transaction ([`super::write_tx`]) already excludes every other writer, so
//! these are no-ops there beyond the reads they imply; on PostgreSQL they take the lock, held
//! until the caller's transaction ends.

use diesel::prelude::*;

use super::DbConn;
use super::schema::orders;

/// Locks the order row `id` until the transaction ends (`SELECT ... FOR UPDATE` on
/// PostgreSQL), so that two writers acting on one order see each other's result instead of
/// both acting on the same old state. Returns whether the order exists.
pub fn order(conn: &mut DbConn, id: &str) -> QueryResult<bool> {
    let q = orders::table.find(id).select(orders::id);
    let found: Option<String> = match conn {
        DbConn::Sqlite(s) => q.first(s).optional()?,
        DbConn::Postgres(p) => q.for_update().first(p).optional()?,
    };
    Ok(found.is_some())
}

/// Takes the transaction-scoped advisory lock `key` (PostgreSQL `pg_advisory_xact_lock`),
/// held until the caller's transaction ends; on SQLite the write transaction already holds the
/// database's one write lock. For read-then-write sequences that must not interleave with
/// another instance's.
pub fn advisory(conn: &mut DbConn, key: i64) -> QueryResult<()> {
    if let DbConn::Postgres(c) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(key)
            .execute(c)?;
    }
    Ok(())
}

/// [`advisory`] for a lock that a transaction of [`super::write_tx`] then holds only until its
/// commit record is written, not through the disk flush that write_tx waits for after the
/// commit (see [`super::flush`]): the audit append lock, which every append waits for.
pub fn advisory_released_before_flush(conn: &mut DbConn, key: i64) -> QueryResult<()> {
    if !super::flush::defer(conn) {
        return advisory(conn, key);
    }
    if let DbConn::Postgres(c) = conn {
        diesel::sql_query(format!(
            "SELECT pg_advisory_xact_lock($1), {}",
            super::flush::DEFER_FLUSH_COLUMN
        ))
        .bind::<diesel::sql_types::BigInt, _>(key)
        .execute(c)?;
    }
    Ok(())
}

/// Like [`advisory`], with the lock named by `text` within the key space `space` (the lock is
/// `hashtextextended(text, space)`), for locks per identifier or per idempotency key.
pub fn advisory_text(conn: &mut DbConn, text: &str, space: i64) -> QueryResult<()> {
    if let DbConn::Postgres(c) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))")
            .bind::<diesel::sql_types::Text, _>(text)
            .bind::<diesel::sql_types::BigInt, _>(space)
            .execute(c)?;
    }
    Ok(())
}

/// Loads the rows of a diesel select query locked until the transaction ends, skipping rows
/// another transaction holds (PostgreSQL `FOR UPDATE SKIP LOCKED`), so that instances claiming
/// work each take different rows; on SQLite, whose write transaction excludes every other
/// writer, a plain load. Select the columns with a tuple or `all_columns` (not `as_select`,
/// which ties the query to one backend). Evaluates to `QueryResult<Vec<_>>`.
macro_rules! load_skip_locked {
    ($conn:expr, $query:expr) => {{
        use diesel::RunQueryDsl as _;
        match $conn {
            $crate::db::DbConn::Sqlite(c) => $query.load(c),
            $crate::db::DbConn::Postgres(c) => {
                use diesel::QueryDsl as _;
                $query.for_update().skip_locked().load(c)
            }
        }
    }};
}
pub(crate) use load_skip_locked;

/// Loads the rows of a diesel select query locked until the transaction ends, waiting for rows
/// another transaction holds (PostgreSQL `FOR UPDATE`), so that a second reader sees what the
/// first left; on SQLite, whose write transaction excludes every other writer, a plain load.
/// The same column rule as `load_skip_locked!`. Evaluates to `QueryResult<Vec<_>>`.
macro_rules! load_for_update {
    ($conn:expr, $query:expr) => {{
        use diesel::RunQueryDsl as _;
        match $conn {
            $crate::db::DbConn::Sqlite(c) => $query.load(c),
            $crate::db::DbConn::Postgres(c) => {
                use diesel::QueryDsl as _;
                $query.for_update().load(c)
            }
        }
    }};
}
pub(crate) use load_for_update;
