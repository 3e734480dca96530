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
