//! Filtered reads of the audit log, for the auditors' API view and the workspace's audit page.
//! A filtered view is for reading; completeness is proven by exports of contiguous ranges.

use diesel::prelude::*;

use super::AuditError;
use super::log::StoredEntry;
use crate::db::DbConn;
use crate::db::schema::audit_entries;

/// What to select; every filter given must match (empty: the whole log).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Entries at or after this time, in the leaves' fixed time format.
    pub since: Option<String>,
    /// Entries before this time, in the leaves' fixed time format.
    pub until: Option<String>,
    /// Entries about this order.
    pub order_id: Option<String>,
    /// Entries by this kind of actor.
    pub actor_kind: Option<String>,
    /// Entries by this actor.
    pub actor_id: Option<String>,
    /// Entries of this event.
    pub event: Option<String>,
    /// Entries of this jurisdiction.
    pub jurisdiction: Option<String>,
    /// Entries after this position (for paging forwards).
    pub after: Option<i64>,
    /// Entries before this position (for paging backwards, newest first).
    pub before: Option<i64>,
}

/// Which end of the log to read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first (paging forwards with [`Filter::after`]).
    OldestFirst,
    /// Newest first (the latest entries).
    NewestFirst,
}

/// Up to `limit` entries matching `filter`.
pub fn search(
    conn: &mut DbConn,
    filter: &Filter,
    direction: Direction,
    limit: i64,
) -> Result<Vec<StoredEntry>, AuditError> {
    let mut query = audit_entries::table
        .select(StoredEntry::as_select())
        .into_boxed();
    // Each filter given narrows the query: `narrow!(field, column, comparison)`.
    macro_rules! narrow {
        ($field:ident, $column:expr, $cmp:ident) => {
            if let Some(v) = &filter.$field {
                query = query.filter($column.$cmp(v.clone()));
            }
        };
    }
    narrow!(since, audit_entries::at, ge);
    narrow!(until, audit_entries::at, lt);
    narrow!(order_id, audit_entries::order_id, eq);
    narrow!(actor_kind, audit_entries::actor_kind, eq);
    narrow!(actor_id, audit_entries::actor_id, eq);
    narrow!(event, audit_entries::event, eq);
    narrow!(jurisdiction, audit_entries::jurisdiction, eq);
    if let Some(after) = filter.after {
        query = query.filter(audit_entries::seq.gt(after));
    }
    if let Some(before) = filter.before {
        query = query.filter(audit_entries::seq.lt(before));
    }
    query = match direction {
        Direction::OldestFirst => query.order(audit_entries::seq.asc()),
        Direction::NewestFirst => query.order(audit_entries::seq.desc()),
    };
    Ok(query.limit(limit).load(conn)?)
}
