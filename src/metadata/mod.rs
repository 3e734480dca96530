//! The user-metadata store: accounts with the history of their identifiers, IP events, holds.
//! Metadata only, provably: no table has a column that could hold message content.
//!
//! - [`normalize`]: the one canonical form of phone numbers, IP addresses, usernames, times.
//! - [`records`]: what imports accept, validated into rows; unknown fields are refused.
//! - [`store`]: idempotent batch writes, monthly partitions on PostgreSQL, holds.
//! - [`import`]: streaming CSV / JSON Lines import with rejects and audit entries.
//! - [`lookup`]: the audited, window-bounded lookups the order workflow uses.
//! - [`retention`]: deleting expired data, except what is held.
//! - [`demo`]: deterministic synthetic data.

pub mod demo;
pub mod import;
pub mod lookup;
pub mod normalize;
pub mod records;
pub mod retention;
pub mod store;

use crate::audit::AuditError;
use crate::db::DbError;

/// Errors of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Input that cannot be used (the message names what and why).
    #[error("{0}")]
    Invalid(String),
    /// Reading input or writing rejects failed.
    #[error("i/o: {0}")]
    Io(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The audit log refused the entry.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<diesel::result::Error> for MetadataError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}
