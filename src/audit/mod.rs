//! The append-only, tamper-evident audit log.
//!
//! - [`entry`]: what an entry is and its canonical bytes (the Merkle leaf).
//! - [`event`]: the catalogue of event names ([`Event`]).
//! - [`log`]: [`log::append`] inside the caller's transaction; reading entries and tree nodes.
//! - [`authenticator`]: each entry's signature by the entry key, made in the Writ process.
//! - [`merkle`]: RFC 9162 Merkle tree hashing, proofs and their verification.
//! - [`note`], [`proof`]: C2SP signed notes, checkpoints and tlog-proof documents.
//! - [`checkpoint`]: signing checkpoints, never inconsistent with an earlier one.
//! - [`keys`]: the checkpoint signing key file.
//! - [`recovery`]: after a restore, replaying lost entries from an export or acknowledging the loss.
//! - [`search`]: filtered reads for the auditors' view and the workspace.
//! - [`export`]: streaming exports with everything an auditor needs to verify them.
//! - [`verify`]: the offline verifier behind `writ audit verify`.
//! - [`service`]: the checkpointer task and webhook push.
//! - [`tiles`]: the log as C2SP tlog-tiles (hash tiles and entry bundles).

pub mod authenticator;
pub mod checkpoint;
pub mod entry;
pub mod event;
pub mod export;
pub mod keys;
pub mod log;
pub mod merkle;
pub mod note;
pub mod proof;
pub mod recovery;
pub mod rotation;
pub mod search;
pub mod service;
pub mod tiles;
pub mod verify;

pub use entry::{Actor, ActorKind, NewEntry, RefValue};
pub use event::Event;
pub use log::append;

use crate::db::DbError;

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// `append` was called outside a transaction: the entry could commit without the change.
    #[error("audit entries must be appended inside the transaction of the change they record")]
    NotInTransaction,
    /// The entry breaks the leaf format's rules.
    #[error(transparent)]
    Entry(#[from] entry::EntryError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Stored data is damaged (a missing node, a hash of the wrong length).
    #[error("audit log storage is damaged: {0}")]
    Corrupt(String),
    /// The signing key is missing, unreadable or unusable.
    #[error("audit signing key: {0}")]
    Key(String),
    /// The entry key (which authenticates each entry as it is appended) is missing, unreadable
    /// or cannot sign now (a key in a PKCS#11 token that does not answer).
    #[error("audit entry key: {0}")]
    EntryKey(String),
    /// The outside copy of the latest checkpoint cannot be read, written or trusted.
    #[error("outside checkpoint copy: {0}")]
    OutsideCopy(String),
    /// The database holds fewer entries than a checkpoint already signed.
    #[error(
        "the database holds {db_size} audit entries but {signed_by} covers {checkpoint_size}: it looks restored from an old backup. Writ will not sign checkpoints until an operator resolves this: replay the missing entries from a later export (`writ audit replay EXPORT`), or acknowledge their loss (`writ audit acknowledge-loss --from {db_size} --to {checkpoint_size} --reason ...`)"
    )]
    Rollback {
        /// Entries in the database.
        db_size: u64,
        /// Size of the checkpoint it is behind.
        checkpoint_size: u64,
        /// Which checkpoint.
        signed_by: String,
    },
    /// The log no longer matches a checkpoint already signed.
    #[error(
        "audit log inconsistent with a signed checkpoint: {0}. Writ will not sign checkpoints until an operator resolves this"
    )]
    Inconsistent(String),
    /// A requested range, index or size is outside the log.
    #[error("{0}")]
    OutOfRange(String),
    /// An entry since the last checkpoint is not one Writ appended, or its stored text changed.
    #[error(
        "audit entry {seq}: {reason}. Writ will not sign checkpoints past it until an operator resolves this"
    )]
    BadEntry {
        /// The entry's position.
        seq: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// Nothing has been signed yet.
    #[error("no checkpoint has been signed yet")]
    NoCheckpoint,
    /// A replay or a loss acknowledgement was refused; nothing was written.
    #[error("{0}")]
    Recovery(String),
    /// Writing an export failed.
    #[error("export output: {0}")]
    Output(String),
}

impl From<diesel::result::Error> for AuditError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

impl From<merkle::ProofError<AuditError>> for AuditError {
    fn from(e: merkle::ProofError<AuditError>) -> Self {
        match e {
            merkle::ProofError::Source(inner) => inner,
            other => Self::OutOfRange(other.to_string()),
        }
    }
}
