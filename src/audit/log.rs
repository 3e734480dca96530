//! The audit log in the database: appending inside the caller's transaction, reading entries,
//! and the Merkle tree's nodes as a [`NodeSource`].
//!
//! Appends are serialised so that positions are gap-free: on SQLite by the write lock that
//! every write transaction takes up front ([`crate::db::write_tx`]), on PostgreSQL by a
//! transaction-scoped advisory lock. That lock is held until the caller commits, so callers
//! append their entry as the last step of their transaction. In a transaction of
//! [`crate::db::write_tx`] the commit releases it without waiting for the disk flush, which
//! write_tx waits for after (see `db::flush`).
//!
//! On PostgreSQL an append is one round trip: the server-side function behind
//! [`crate::db::log_append::append_row`] takes the lock, checks the position the entry was built
//! for and writes the entry and the tree nodes it completes (the same rows [`insert`] writes
//! statement by statement on SQLite, where statements cost no round trip).

use std::cell::RefCell;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::AuditError;
use super::authenticator;
use super::entry::NewEntry;
use super::merkle::{self, Hash, NodeSource};
use crate::db::DbConn;
use crate::db::log_append::{self, LogRow};
use crate::db::schema::{audit_entries, audit_nodes};

/// Advisory lock key for appends on PostgreSQL ("WRITAUDT" in ASCII).
const PG_APPEND_LOCK: i64 = 0x5752_4954_4155_4454;

/// What an append produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Position of the new entry (its leaf index).
    pub seq: u64,
    /// Its Merkle leaf hash.
    pub leaf_hash: Hash,
}

/// A stored entry, as read back.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = audit_entries)]
pub struct StoredEntry {
    /// Position.
    pub seq: i64,
    /// Time (copy of the leaf's).
    pub at: String,
    /// Actor kind (copy).
    pub actor_kind: String,
    /// Actor id (copy).
    pub actor_id: String,
    /// Event (copy).
    pub event: String,
    /// Order (copy).
    pub order_id: Option<String>,
    /// Jurisdiction (copy).
    pub jurisdiction: Option<String>,
    /// Canonical leaf bytes.
    pub leaf: String,
    /// The entry key's signature over the leaf hash (see [`super::authenticator`]).
    pub authenticator: Option<Vec<u8>>,
}

#[derive(Insertable)]
#[diesel(table_name = audit_nodes)]
struct NewNode {
    level: i32,
    idx: i64,
    hash: Vec<u8>,
}

fn to_i64(v: u64) -> Result<i64, AuditError> {
    i64::try_from(v).map_err(|_| AuditError::Corrupt(format!("value {v} out of range")))
}

fn to_u64(v: i64) -> Result<u64, AuditError> {
    u64::try_from(v).map_err(|_| AuditError::Corrupt(format!("negative value {v}")))
}

/// Takes the append lock for the rest of the caller's transaction (PostgreSQL; on SQLite the
/// write transaction already holds the database's write lock). For read-then-append sequences
/// that must not interleave with another instance's.
pub fn lock(conn: &mut DbConn) -> Result<(), AuditError> {
    if !crate::db::in_transaction(conn)? {
        return Err(AuditError::NotInTransaction);
    }
    crate::db::locks::advisory_released_before_flush(conn, PG_APPEND_LOCK)?;
    Ok(())
}

/// Appends `entry` inside the caller's open write transaction ([`crate::db::write_tx`]): if
/// the caller's change commits, its entry commits; if not, neither does. The entry is
/// authenticated with the entry key installed on the [`crate::db::Db`] the connection came
/// from; without one the append is refused, since Writ would refuse to sign past it.
pub fn append(
    conn: &mut DbConn,
    entry: &NewEntry,
    at: DateTime<Utc>,
) -> Result<Appended, AuditError> {
    crate::failpoint!(crate::failpoint::AUDIT_APPEND_START);
    let key = crate::db::audit_entry_key().ok_or_else(|| {
        AuditError::EntryKey(
            "no audit entry key is loaded in this process (audit.entry_key_path, or audit.entry_key = \"pkcs11\"): entries cannot be appended".into(),
        )
    })?;
    if log_append::available(conn) {
        return append_in_one_statement(conn, entry, at, &key);
    }
    lock(conn)?;
    let seq = size(conn)?;
    let leaf = entry.to_leaf(seq, at)?;
    let bytes = leaf.to_text();
    let leaf_hash = merkle::leaf_hash(bytes.as_bytes());
    let authenticator = make_authenticator(&key, &leaf_hash)?;
    insert(conn, &leaf, &bytes, &authenticator)?;
    Ok(Appended { seq, leaf_hash })
}

/// The entry key's authenticator of `leaf_hash`; a key in a token that cannot sign fails the
/// append (and so the caller's transaction), never leaving an entry unauthenticated.
fn make_authenticator(
    key: &crate::keystore::Key,
    leaf_hash: &merkle::Hash,
) -> Result<[u8; authenticator::LEN], AuditError> {
    authenticator::make(key, leaf_hash).map_err(|e| AuditError::EntryKey(e.to_string()))
}

/// [`append`] where the database appends a built entry in one statement
/// ([`log_append::append_row`], PostgreSQL): the leaf is built and authenticated for the
/// position this process expects, and built again for the position the database answers when
/// that guess was wrong. The second call cannot miss: the first took the append lock. The rows
/// are those [`insert`] writes, byte for byte.
fn append_in_one_statement(
    conn: &mut DbConn,
    entry: &NewEntry,
    at: DateTime<Utc>,
    key: &crate::keystore::Key,
) -> Result<Appended, AuditError> {
    if !crate::db::in_transaction(conn)? {
        return Err(AuditError::NotInTransaction);
    }
    let mut seq = to_u64(log_append::next_seq_hint().max(0))?;
    for _ in 0..2 {
        let leaf = entry.to_leaf(seq, at)?;
        let bytes = leaf.to_text();
        let leaf_hash = merkle::leaf_hash(bytes.as_bytes());
        let authenticator = make_authenticator(key, &leaf_hash)?;
        let row = LogRow {
            seq: to_i64(seq)?,
            at: &leaf.at,
            actor_kind: leaf.actor.kind.as_str(),
            actor_id: &leaf.actor.id,
            event: &leaf.event,
            order_id: leaf.order.as_deref(),
            jurisdiction: leaf.jurisdiction.as_deref(),
            leaf: &bytes,
            leaf_hash: &leaf_hash,
            authenticator: &authenticator,
        };
        let next = log_append::append_row(conn, &row)?.ok_or_else(|| {
            AuditError::Corrupt("this database has no one-statement append".into())
        })?;
        if next == row.seq {
            crate::failpoint!(crate::failpoint::AUDIT_APPEND_INSERTED);
            return Ok(Appended { seq, leaf_hash });
        }
        seq = to_u64(next)?;
    }
    Err(AuditError::Corrupt(
        "the log's next position moved while this transaction held the append lock".into(),
    ))
}

/// Appends an entry that Writ appended once before, byte for byte with its authenticator, at
/// the position its leaf names (which must be the next one): the replay of entries lost with
/// a restore (see [`super::recovery`]). The caller has checked the entry against a signed
/// checkpoint and the authenticator against the entry key; this checks only that the leaf is
/// canonical and in place.
pub fn append_replayed(
    conn: &mut DbConn,
    bytes: &str,
    authenticator: &[u8],
) -> Result<Appended, AuditError> {
    lock(conn)?;
    let seq = size(conn)?;
    let leaf = super::entry::Leaf::parse(bytes.as_bytes())?;
    if leaf.seq != seq {
        return Err(AuditError::BadEntry {
            seq: leaf.seq,
            reason: format!("it cannot be replayed: the log's next position is {seq}"),
        });
    }
    insert(conn, &leaf, bytes, authenticator)?;
    Ok(Appended {
        seq,
        leaf_hash: merkle::leaf_hash(bytes.as_bytes()),
    })
}

/// Inserts the row of `leaf` (canonical text `bytes`) and the Merkle nodes it completes.
fn insert(
    conn: &mut DbConn,
    leaf: &super::entry::Leaf,
    bytes: &str,
    authenticator: &[u8],
) -> Result<(), AuditError> {
    let seq = leaf.seq;
    let leaf_hash = merkle::leaf_hash(bytes.as_bytes());
    let nodes = {
        let source = DbNodes::new(conn);
        merkle::nodes_completed_by_append(seq, leaf_hash, &source)?
    };
    diesel::insert_into(audit_entries::table)
        .values((
            audit_entries::seq.eq(to_i64(seq)?),
            audit_entries::at.eq(&leaf.at),
            audit_entries::actor_kind.eq(leaf.actor.kind.as_str()),
            audit_entries::actor_id.eq(&leaf.actor.id),
            audit_entries::event.eq(&leaf.event),
            audit_entries::order_id.eq(&leaf.order),
            audit_entries::jurisdiction.eq(&leaf.jurisdiction),
            audit_entries::leaf.eq(bytes),
            audit_entries::authenticator.eq(Some(authenticator.to_vec())),
        ))
        .execute(conn)?;
    crate::failpoint!(crate::failpoint::AUDIT_APPEND_INSERTED);
    for (level, idx, hash) in nodes {
        diesel::insert_into(audit_nodes::table)
            .values(NewNode {
                level: i32::from(level),
                idx: to_i64(idx)?,
                hash: hash.to_vec(),
            })
            .execute(conn)?;
    }
    Ok(())
}

/// The first position whose entry is dated at or after `at` (the lowest such `seq`, since an
/// entry's time comes from its writer and need not grow strictly with its position); `None`
/// when no entry is that late.
pub fn first_at_or_after(conn: &mut DbConn, at: DateTime<Utc>) -> Result<Option<u64>, AuditError> {
    let text = super::entry::format_time(at);
    let min: Option<i64> = audit_entries::table
        .filter(audit_entries::at.ge(text))
        .select(diesel::dsl::min(audit_entries::seq))
        .first(conn)?;
    min.map(to_u64).transpose()
}

/// The number of entries (the tree size).
pub fn size(conn: &mut DbConn) -> Result<u64, AuditError> {
    let max: Option<i64> = audit_entries::table
        .select(diesel::dsl::max(audit_entries::seq))
        .first(conn)?;
    match max {
        None => Ok(0),
        Some(m) => Ok(to_u64(m)? + 1),
    }
}

/// Whether any entry carries an authenticator.
pub fn any_authenticated(conn: &mut DbConn) -> Result<bool, AuditError> {
    let found: Option<i64> = audit_entries::table
        .filter(audit_entries::authenticator.is_not_null())
        .select(audit_entries::seq)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Entries with `start <= seq < end`, oldest first.
pub fn entries(conn: &mut DbConn, start: u64, end: u64) -> Result<Vec<StoredEntry>, AuditError> {
    Ok(audit_entries::table
        .filter(audit_entries::seq.ge(to_i64(start)?))
        .filter(audit_entries::seq.lt(to_i64(end)?))
        .order(audit_entries::seq.asc())
        .select(StoredEntry::as_select())
        .load(conn)?)
}

/// Recorded leaf hashes (level-0 nodes) for `start <= idx < end`, oldest first.
pub fn leaf_hashes(
    conn: &mut DbConn,
    start: u64,
    end: u64,
) -> Result<Vec<(u64, Hash)>, AuditError> {
    let rows: Vec<(i64, Vec<u8>)> = audit_nodes::table
        .filter(audit_nodes::level.eq(0))
        .filter(audit_nodes::idx.ge(to_i64(start)?))
        .filter(audit_nodes::idx.lt(to_i64(end)?))
        .order(audit_nodes::idx.asc())
        .select((audit_nodes::idx, audit_nodes::hash))
        .load(conn)?;
    rows.into_iter()
        .map(|(i, h)| Ok((to_u64(i)?, to_hash(&h)?)))
        .collect()
}

/// A stored hash column as a [`Hash`].
pub fn to_hash(bytes: &[u8]) -> Result<Hash, AuditError> {
    <Hash>::try_from(bytes)
        .map_err(|_| AuditError::Corrupt(format!("stored hash has {} bytes, not 32", bytes.len())))
}

/// The stored tree nodes, read through a connection.
pub struct DbNodes<'c> {
    conn: RefCell<&'c mut DbConn>,
}

impl<'c> DbNodes<'c> {
    /// Reads nodes through `conn`.
    pub fn new(conn: &'c mut DbConn) -> Self {
        Self {
            conn: RefCell::new(conn),
        }
    }
}

impl NodeSource for DbNodes<'_> {
    type Error = AuditError;

    fn node(&self, level: u8, index: u64) -> Result<Hash, AuditError> {
        let mut conn = self.conn.borrow_mut();
        let found: Option<Vec<u8>> = audit_nodes::table
            .filter(audit_nodes::level.eq(i32::from(level)))
            .filter(audit_nodes::idx.eq(to_i64(index)?))
            .select(audit_nodes::hash)
            .first(&mut **conn)
            .optional()?;
        match found {
            Some(h) => to_hash(&h),
            None => Err(AuditError::Corrupt(format!(
                "Merkle node (level {level}, index {index}) is missing"
            ))),
        }
    }
}
