//! Signed checkpoints (C2SP tlog-checkpoint, as C2SP signed notes with Ed25519).
//!
//! Writ signs a checkpoint when the log has grown, never on every append. Before signing it
//! checks the log against every earlier commitment it knows: the latest checkpoint in the
//! database and the copy kept outside it (a file on storage shared by the instances). If the
//! database is behind that copy (restored from an old backup) or no longer yields the same root
//! at an earlier size (rewritten), it refuses to sign and says why, until an operator resolves
//! it. So it never signs a checkpoint inconsistent with an earlier one.
//!
//! It also checks every entry appended since the last checkpoint before committing to it: its
//! stored text must still hash to the leaf hash recorded at append time, and it must carry a
//! valid authenticator ([`super::authenticator`]). A bad entry stops signing, with the reason.
//! Checkpoints signed after those checks are cosigned with the entry key.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use ed25519_dalek::VerifyingKey;

use super::AuditError;
use super::authenticator;
use super::entry::{Leaf, format_time};
use super::log::{self, DbNodes, to_hash};
use super::merkle::{self, Hash};
use super::note::{Checkpoint, NoteSigner, NoteVerifier};
use super::rotation::KeySet;
use crate::db::schema::audit_checkpoints;
use crate::db::{DbConn, meta, write_tx};

/// Advisory lock key for signing ("WRITSIGN" in ASCII; see [`crate::db::locks::advisory`]).
const SIGN_LOCK: i64 = 0x5752_4954_5349_474e;

/// The signing side: the checkpoint key, the entry key, the log origin, where the outside copy
/// of the latest checkpoint lives, and what the last attempts found.
#[derive(Debug, Clone)]
pub struct CheckpointSigner {
    signer: NoteSigner,
    public: VerifyingKey,
    cosigner: NoteSigner,
    entry_key: crate::keystore::Key,
    entry_public: VerifyingKey,
    origin: String,
    outside_copy: PathBuf,
    state: std::sync::Arc<std::sync::Mutex<SignerState>>,
    /// The log's checkpoint keys (see [`super::rotation`]), as last read from the log.
    keys: std::sync::Arc<std::sync::RwLock<KeySet>>,
}

/// What this process last found when signing and when verifying the whole log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignerState {
    /// The last signing attempt.
    pub last_attempt: Option<Attempt>,
    /// The last full verification (see [`super::service::run_verifier`]).
    pub last_verification: Option<Verification>,
}

/// The outcome of one signing attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// When, RFC 3339 UTC.
    pub at: String,
    /// `signed`, `unchanged`, `empty` or `failed`.
    pub outcome: &'static str,
    /// Why it failed.
    pub problem: Option<String>,
}

/// The outcome of one full verification of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// When it finished, RFC 3339 UTC.
    pub at: String,
    /// What it found wrong, if anything.
    pub problem: Option<String>,
    /// Entries verified.
    pub entries: u64,
    /// How long it took, in microseconds.
    pub duration_micros: u64,
}

impl CheckpointSigner {
    /// A signer for log `origin`; the key name in signatures is the origin too, and the entry
    /// key cosigns under `<origin>/entries`.
    pub fn new(
        key: impl Into<crate::keystore::Key>,
        entry_key: impl Into<crate::keystore::Key>,
        origin: &str,
        outside_copy: PathBuf,
    ) -> Result<Self, AuditError> {
        let key = key.into();
        let entry_key = entry_key.into();
        let public = key.public().map_err(|e| AuditError::Key(e.to_string()))?;
        let entry_public = entry_key
            .public()
            .map_err(|e| AuditError::EntryKey(e.to_string()))?;
        if entry_public == public {
            return Err(AuditError::Key(
                "the entry key and the checkpoint key must be different keys".into(),
            ));
        }
        let unusable = |e: super::note::NoteError| {
            AuditError::Key(format!(
                "audit.origin `{origin}` is not usable as a key name: {e}"
            ))
        };
        let signer = NoteSigner::new(origin, key).map_err(unusable)?;
        let cosigner = authenticator::cosigner(origin, entry_key.clone()).map_err(unusable)?;
        let keys = KeySet::single(signer.verifier());
        Ok(Self {
            keys: std::sync::Arc::new(std::sync::RwLock::new(keys)),
            signer,
            public,
            cosigner,
            entry_key,
            entry_public,
            origin: origin.to_owned(),
            outside_copy,
            state: std::sync::Arc::default(),
        })
    }

    /// The log's checkpoint keys as last read ([`Self::refresh_keys`]).
    pub fn keys(&self) -> KeySet {
        self.keys
            .read()
            .map(|k| k.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Reads the log's checkpoint keys again from its rotation entries (another instance may
    /// have rotated the key), keeps and returns them.
    pub fn refresh_keys(&self, conn: &mut DbConn) -> Result<KeySet, AuditError> {
        let rotations = super::rotation::rotations(conn)?;
        let keys = KeySet::from_rotations(&self.origin, &rotations, self.public)?;
        let mut slot = self.keys.write().unwrap_or_else(|p| p.into_inner());
        *slot = keys.clone();
        Ok(keys)
    }

    /// Opens a checkpoint signed by one of the log's keys, within that key's sizes.
    pub fn open(&self, note: &str) -> Result<Checkpoint, String> {
        self.keys().open(note)
    }

    /// The checkpoint key (a file's, or a PKCS#11 token's).
    pub fn key(&self) -> &crate::keystore::Key {
        self.signer.key()
    }

    /// The entry key (a file's, or a PKCS#11 token's), to install on the [`crate::db::Db`] that
    /// appends entries.
    pub fn entry_signing_key(&self) -> crate::keystore::Key {
        self.entry_key.clone()
    }

    /// The entry key's public half, which checks entry authenticators.
    pub fn entry_public_key(&self) -> VerifyingKey {
        self.entry_public
    }

    /// The note verifier key string of the entry key's cosignatures.
    pub fn entry_verifier_key(&self) -> String {
        self.cosigner.verifier_key()
    }

    /// What this process last found (shared by the clones of this signer).
    pub fn state(&self) -> SignerState {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Records the outcome of a full verification.
    pub fn record_verification(&self, verification: Verification) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.last_verification = Some(verification);
    }

    fn record_attempt(&self, attempt: Attempt) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.last_attempt = Some(attempt);
    }

    /// The log origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The verifier for this signer's notes.
    pub fn verifier(&self) -> NoteVerifier {
        self.signer.verifier()
    }

    /// The note verifier key string (`name+keyid+base64`).
    pub fn verifier_key(&self) -> String {
        self.signer.verifier_key()
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.public
    }

    /// Where the outside copy lives.
    pub fn outside_copy(&self) -> &Path {
        &self.outside_copy
    }
}

/// A checkpoint as stored and published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Log origin.
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
    /// The signed note.
    pub note: String,
    /// When it was signed.
    pub signed_at: String,
}

type Row = (String, i64, Vec<u8>, String, String);

fn from_row((origin, size, root, note, signed_at): Row) -> Result<StoredCheckpoint, AuditError> {
    Ok(StoredCheckpoint {
        origin,
        size: u64::try_from(size)
            .map_err(|_| AuditError::Corrupt("negative checkpoint size".into()))?,
        root: to_hash(&root)?,
        note,
        signed_at,
    })
}

const COLUMNS: (
    audit_checkpoints::origin,
    audit_checkpoints::size,
    audit_checkpoints::root,
    audit_checkpoints::note,
    audit_checkpoints::signed_at,
) = (
    audit_checkpoints::origin,
    audit_checkpoints::size,
    audit_checkpoints::root,
    audit_checkpoints::note,
    audit_checkpoints::signed_at,
);

/// The latest checkpoint of `origin` in the database.
pub fn latest(conn: &mut DbConn, origin: &str) -> Result<Option<StoredCheckpoint>, AuditError> {
    let row: Option<Row> = audit_checkpoints::table
        .filter(audit_checkpoints::origin.eq(origin))
        .order(audit_checkpoints::size.desc())
        .select(COLUMNS)
        .first(conn)
        .optional()?;
    row.map(from_row).transpose()
}

/// The checkpoint of `origin` at exactly `size`, if one was signed.
pub fn at_size(
    conn: &mut DbConn,
    origin: &str,
    size: u64,
) -> Result<Option<StoredCheckpoint>, AuditError> {
    let size = i64::try_from(size).map_err(|_| AuditError::Corrupt("size out of range".into()))?;
    let row: Option<Row> = audit_checkpoints::table
        .filter(audit_checkpoints::origin.eq(origin))
        .filter(audit_checkpoints::size.eq(size))
        .select(COLUMNS)
        .first(conn)
        .optional()?;
    row.map(from_row).transpose()
}

/// Checkpoints of `origin` with `after < size <= upto`, oldest first, at most `limit`.
pub fn between(
    conn: &mut DbConn,
    origin: &str,
    after: u64,
    upto: u64,
    limit: i64,
) -> Result<Vec<StoredCheckpoint>, AuditError> {
    let conv =
        |v: u64| i64::try_from(v).map_err(|_| AuditError::Corrupt("size out of range".into()));
    let rows: Vec<Row> = audit_checkpoints::table
        .filter(audit_checkpoints::origin.eq(origin))
        .filter(audit_checkpoints::size.gt(conv(after)?))
        .filter(audit_checkpoints::size.le(conv(upto)?))
        .order(audit_checkpoints::size.asc())
        .limit(limit)
        .select(COLUMNS)
        .load(conn)?;
    rows.into_iter().map(from_row).collect()
}

/// Reads the outside copy: `None` if there is none yet or it belongs to another origin (an
/// operator started a new log). A copy that does not verify under this key is an error.
pub fn read_outside_copy(signer: &CheckpointSigner) -> Result<Option<Checkpoint>, AuditError> {
    Ok(read_outside(signer)?.map(|(c, _)| c))
}

/// [`read_outside_copy`], with the signed note as read.
pub fn read_outside(signer: &CheckpointSigner) -> Result<Option<(Checkpoint, String)>, AuditError> {
    let path = signer.outside_copy();
    let note = match std::fs::read_to_string(path) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuditError::OutsideCopy(format!("{}: {e}", path.display()))),
    };
    let first_line = note.lines().next().unwrap_or_default();
    if first_line != signer.origin() {
        return Ok(None);
    }
    match signer.open(&note) {
        Ok(c) => Ok(Some((c, note))),
        Err(e) => Err(AuditError::OutsideCopy(format!(
            "{} does not verify under this deployment's audit key ({e}); Writ will not sign until an operator restores it",
            path.display()
        ))),
    }
}

/// Replaces the outside copy atomically (temporary file, fsync, rename), unless it already
/// holds a larger checkpoint (another instance got there first) other than the one the log
/// acknowledged as lost (`acknowledged`: its size and root).
fn write_outside_copy(
    signer: &CheckpointSigner,
    stored: &StoredCheckpoint,
    acknowledged: Option<(u64, Hash)>,
) -> Result<(), AuditError> {
    if let Ok(Some(existing)) = read_outside_copy(signer)
        && existing.size >= stored.size
        && acknowledged != Some((existing.size, existing.root))
    {
        return Ok(());
    }
    let path = signer.outside_copy();
    let fail = |e: std::io::Error| AuditError::OutsideCopy(format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let mut file = std::fs::File::create(&tmp).map_err(fail)?;
    file.write_all(stored.note.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)?;
    Ok(())
}

/// What a signing attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed {
    /// A new checkpoint was signed.
    New(StoredCheckpoint),
    /// Nothing was appended since the latest checkpoint.
    Unchanged(StoredCheckpoint),
    /// The log is empty and nothing was ever signed.
    EmptyLog,
}

impl Signed {
    /// The latest checkpoint after the attempt.
    pub fn checkpoint(&self) -> Option<&StoredCheckpoint> {
        match self {
            Self::New(c) | Self::Unchanged(c) => Some(c),
            Self::EmptyLog => None,
        }
    }
}

/// What [`check_commitments`] found.
struct Commitments {
    /// Entries in the log.
    size: u64,
    /// The latest checkpoint in the database.
    latest: Option<StoredCheckpoint>,
    /// The size and root of the outside copy when the log acknowledges it as lost (so a
    /// smaller checkpoint may replace it).
    outside_acknowledged: Option<(u64, Hash)>,
}

/// Checks the log against every earlier commitment, and the entries since (those below
/// `checked_below` were checked already); returns the size now and the latest database
/// checkpoint. The caller holds the signing lock (or only reads).
fn check_commitments(
    conn: &mut DbConn,
    signer: &CheckpointSigner,
    outside: Option<&(Checkpoint, String)>,
    checked_below: u64,
) -> Result<Commitments, AuditError> {
    let size = log::size(conn)?;
    let latest = latest(conn, signer.origin())?;
    let mut priors: Vec<(String, u64, Hash)> = Vec::new();
    if let Some(stored) = &latest {
        // A row anyone could have inserted counts only if our key signed exactly it.
        let opened = signer.open(&stored.note).map_err(|e| {
            AuditError::Inconsistent(format!(
                "the checkpoint stored for size {} {e}",
                stored.size
            ))
        })?;
        if opened.size != stored.size || opened.root != stored.root {
            return Err(AuditError::Inconsistent(format!(
                "the checkpoint row for size {} does not match its own signed note",
                stored.size
            )));
        }
        priors.push((
            "the latest checkpoint in the database".into(),
            stored.size,
            stored.root,
        ));
    }
    // An outside copy that the log itself acknowledges as lost (an `audit.loss_acknowledged`
    // entry naming its size and root) no longer binds: the acknowledgement is the record. A
    // copy the log holds is checked here once; one it does not hold goes to the checks below,
    // which say why.
    let mut outside_acknowledged = None;
    let outside = match outside {
        Some((c, note)) => {
            let holds = c.size <= size && merkle::root(c.size, &DbNodes::new(conn))? == c.root;
            if holds {
                Some((c, note))
            } else if super::recovery::acknowledgement_of(conn, c.size, &c.root)?.is_some() {
                outside_acknowledged = Some((c.size, c.root));
                None
            } else {
                priors.push((
                    format!("the checkpoint kept at {}", signer.outside_copy().display()),
                    c.size,
                    c.root,
                ));
                Some((c, note))
            }
        }
        None => None,
    };
    for (what, prior_size, prior_root) in priors {
        if prior_size > size {
            return Err(AuditError::Rollback {
                db_size: size,
                checkpoint_size: prior_size,
                signed_by: what,
            });
        }
        let root = merkle::root(prior_size, &DbNodes::new(conn))?;
        if root != prior_root {
            return Err(AuditError::Inconsistent(format!(
                "the log's first {prior_size} entries no longer hash to the root signed in {what}: the log was rewritten"
            )));
        }
    }
    let trusted = match (&latest, outside) {
        (Some(l), Some((c, note))) if c.size > l.size => Some((c.size, note.as_str())),
        (Some(l), _) => Some((l.size, l.note.as_str())),
        (None, Some((c, note))) => Some((c.size, note.as_str())),
        (None, None) => None,
    };
    check_new_entries(conn, signer, trusted, size, checked_below)?;
    Ok(Commitments {
        size,
        latest,
        outside_acknowledged,
    })
}

/// Whether `note` was cosigned with the entry key; a cosignature that does not verify under
/// this deployment's entry key is an error, never "not cosigned".
fn cosigned(signer: &CheckpointSigner, note: &str, size: u64) -> Result<bool, AuditError> {
    if !authenticator::claims_cosignature(note, signer.origin()) {
        return Ok(false);
    }
    let verifier = authenticator::cosign_verifier(signer.origin(), signer.entry_public)
        .map_err(|e| AuditError::Key(e.to_string()))?;
    super::note::open(note, &verifier).map_err(|e| {
        AuditError::Inconsistent(format!(
            "the checkpoint of size {size} carries an entry-key cosignature that does not verify under this deployment's entry key ({e})"
        ))
    })?;
    Ok(true)
}

/// Rows per page when checking entries.
const PAGE: u64 = 1000;

/// Checks every entry after the latest trusted checkpoint (`trusted`: its size and note) up to
/// `size`: present, canonical, at its position, its stored text hashing to the leaf hash
/// recorded when it was appended, and carrying a valid authenticator. An entry may lack an
/// authenticator only if it was appended before authenticators existed: below
/// [`authenticator::UNAUTHENTICATED_BEFORE`], and only while no cosigned checkpoint covers the
/// log.
fn check_new_entries(
    conn: &mut DbConn,
    signer: &CheckpointSigner,
    trusted: Option<(u64, &str)>,
    size: u64,
    checked_below: u64,
) -> Result<(), AuditError> {
    let (from, strict) = match trusted {
        Some((at, note)) => (at, cosigned(signer, note, at)?),
        None => (0, false),
    };
    let legacy_below = if strict {
        0
    } else {
        meta::get(conn, authenticator::UNAUTHENTICATED_BEFORE)?
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let bad = |seq: u64, reason: &str| AuditError::BadEntry {
        seq,
        reason: reason.to_owned(),
    };
    let mut cur = from.max(checked_below);
    while cur < size {
        let end = size.min(cur.saturating_add(PAGE));
        let entries = log::entries(conn, cur, end)?;
        let recorded: std::collections::HashMap<u64, Hash> =
            log::leaf_hashes(conn, cur, end)?.into_iter().collect();
        let mut expected = cur;
        for entry in entries {
            let seq = u64::try_from(entry.seq)
                .map_err(|_| AuditError::Corrupt("negative entry position".into()))?;
            if seq != expected {
                return Err(bad(expected, "it is missing"));
            }
            let hash = merkle::leaf_hash(entry.leaf.as_bytes());
            match recorded.get(&seq) {
                None => {
                    return Err(bad(
                        seq,
                        "the leaf hash recorded when it was appended is missing",
                    ));
                }
                Some(h) if *h != hash => {
                    return Err(bad(
                        seq,
                        "its stored text no longer hashes to the leaf hash recorded when it was appended: it was edited in place",
                    ));
                }
                Some(_) => {}
            }
            match Leaf::parse(entry.leaf.as_bytes()) {
                Err(e) => return Err(bad(seq, &e.to_string())),
                Ok(leaf) if leaf.seq != seq => {
                    return Err(bad(seq, &format!("its leaf says it is entry {}", leaf.seq)));
                }
                Ok(_) => {}
            }
            match &entry.authenticator {
                Some(a) if authenticator::check(&signer.entry_public, &hash, a) => {}
                Some(_) => {
                    return Err(bad(
                        seq,
                        "its authenticator does not verify under the entry key: Writ did not append it",
                    ));
                }
                None if seq < legacy_below => {}
                None => {
                    return Err(bad(
                        seq,
                        "it has no authenticator: Writ did not append it (a row inserted into the database by other means)",
                    ));
                }
            }
            expected += 1;
        }
        if expected != end {
            return Err(bad(expected, "it is missing"));
        }
        cur = end;
    }
    Ok(())
}

/// Dry run: what signing would find, without signing. Used by status endpoints. Besides the
/// commitments and the new entries, it checks that the stored nodes yield a root for the
/// whole log (a missing node makes signing fail).
pub fn check(
    conn: &mut DbConn,
    signer: &CheckpointSigner,
) -> Result<(u64, Option<StoredCheckpoint>), AuditError> {
    let found = check_log(conn, signer)?;
    refuse_if_damaged(signer)?;
    Ok(found)
}

/// [`check`], ignoring what the last full verification found (the full verification itself
/// runs this).
pub fn check_log(
    conn: &mut DbConn,
    signer: &CheckpointSigner,
) -> Result<(u64, Option<StoredCheckpoint>), AuditError> {
    signer.refresh_keys(conn)?;
    let outside = read_outside(signer)?;
    let Commitments { size, latest, .. } = check_commitments(conn, signer, outside.as_ref(), 0)?;
    if size > 0 {
        merkle::root(size, &DbNodes::new(conn))?;
    }
    Ok((size, latest))
}

/// Refuses while the last full verification in this process found the log damaged.
fn refuse_if_damaged(signer: &CheckpointSigner) -> Result<(), AuditError> {
    if let Some(problem) = signer.state().last_verification.and_then(|v| v.problem) {
        return Err(AuditError::Inconsistent(format!(
            "the last full verification of the log failed: {problem}"
        )));
    }
    Ok(())
}

/// Signs a checkpoint for the current log if it grew since the latest one, and records the
/// outcome for status reports.
pub fn sign_if_new(
    conn: &mut DbConn,
    signer: &CheckpointSigner,
    now: DateTime<Utc>,
) -> Result<Signed, AuditError> {
    let result = sign_unrecorded(conn, signer, now);
    let (outcome, problem) = match &result {
        Ok(Signed::New(_)) => ("signed", None),
        Ok(Signed::Unchanged(_)) => ("unchanged", None),
        Ok(Signed::EmptyLog) => ("empty", None),
        Err(e) => ("failed", Some(e.to_string())),
    };
    signer.record_attempt(Attempt {
        at: format_time(now),
        outcome,
        problem,
    });
    result
}

/// Refuses to sign a checkpoint of `size` with a key that a rotation retired before it (an
/// instance still holding the old key after `writ keys rotate`).
fn refuse_if_retired(
    conn: &mut DbConn,
    signer: &CheckpointSigner,
    size: u64,
) -> Result<(), AuditError> {
    let keys = signer.refresh_keys(conn)?;
    if let Some(period) = keys.period_of(&signer.public)
        && let (Some(last), Some(at)) = (period.last_size, period.retired_at)
        && size > last
    {
        return Err(AuditError::Key(format!(
            "this instance's checkpoint key was retired by the key rotation at entry {at} (its last checkpoint is of size {last}); restart it with the new key"
        )));
    }
    Ok(())
}

/// Signs the checkpoint of the log's first `size` entries (cosigned with the entry key) and
/// stores it, in the caller's transaction.
fn sign_and_store(
    conn: &mut DbConn,
    signer: &CheckpointSigner,
    size: u64,
    now: DateTime<Utc>,
) -> Result<StoredCheckpoint, AuditError> {
    // A stored checkpoint is served as soon as it can be read: it must not be visible before it
    // and the entries it signs are on disk (a transaction that also appended, a key rotation,
    // would otherwise commit without waiting; see `db::flush`).
    crate::db::flush::commit_durably(conn)?;
    let root = merkle::root(size, &DbNodes::new(conn))?;
    let checkpoint = Checkpoint {
        origin: signer.origin().to_owned(),
        size,
        root,
        extensions: Vec::new(),
    };
    let note = signer
        .signer
        .sign_checkpoint(&checkpoint)
        .and_then(|note| authenticator::cosign(&note, &signer.cosigner))
        .map_err(|e| AuditError::Key(e.to_string()))?;
    let stored = StoredCheckpoint {
        origin: checkpoint.origin,
        size,
        root,
        note,
        signed_at: format_time(now),
    };
    diesel::insert_into(audit_checkpoints::table)
        .values((
            audit_checkpoints::origin.eq(&stored.origin),
            audit_checkpoints::size
                .eq(i64::try_from(size).map_err(|_| AuditError::Corrupt("size".into()))?),
            audit_checkpoints::root.eq(stored.root.to_vec()),
            audit_checkpoints::note.eq(&stored.note),
            audit_checkpoints::signed_at.eq(&stored.signed_at),
        ))
        .execute(conn)?;
    Ok(stored)
}

/// What [`rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The rotation entry's position.
    pub seq: u64,
    /// The old key's last checkpoint (it covers the rotation entry).
    pub last_old: StoredCheckpoint,
}

/// Rotates the checkpoint key to `new` (see [`super::rotation`]): in one transaction, under the
/// signing lock and after the checks signing makes, appends `audit.checkpoint_key_rotated` and
/// signs with the old key the checkpoint that covers it; `commit` (putting the new key in
/// place) runs inside that transaction, so a failure there rolls the entry back.
pub fn rotate(
    conn: &mut DbConn,
    signer: &CheckpointSigner,
    new: VerifyingKey,
    actor: super::Actor,
    now: DateTime<Utc>,
    commit: impl FnOnce() -> Result<(), AuditError>,
) -> Result<Rotated, AuditError> {
    if new == signer.public {
        return Err(AuditError::Key(
            "the new checkpoint key is the current one".into(),
        ));
    }
    refuse_if_damaged(signer)?;
    signer.refresh_keys(conn)?;
    let outside = read_outside(signer)?;
    let checked = check_commitments(conn, signer, outside.as_ref(), 0)?.size;
    let mut commit = Some(commit);
    let mut replace_outside = None;
    let rotated = write_tx(conn, |conn| -> Result<Rotated, AuditError> {
        crate::db::locks::advisory(conn, SIGN_LOCK)?;
        let found = check_commitments(conn, signer, outside.as_ref(), checked)?;
        replace_outside = found.outside_acknowledged;
        let seq = found.size;
        refuse_if_retired(conn, signer, seq + 1)?;
        let mut entry =
            super::NewEntry::new(actor.clone(), super::Event::AuditCheckpointKeyRotated);
        for (key, value) in super::rotation::entry_refs(seq, &signer.public, &new, &signer.origin)?
        {
            entry = entry.reference(key, value);
        }
        let appended = super::append(conn, &entry, now)?;
        if appended.seq != seq {
            return Err(AuditError::Corrupt(format!(
                "the rotation entry landed at {} instead of {seq}",
                appended.seq
            )));
        }
        let last_old = sign_and_store(conn, signer, seq + 1, now)?;
        if let Some(commit) = commit.take() {
            commit()?;
        }
        Ok(Rotated { seq, last_old })
    })?;
    write_outside_copy(signer, &rotated.last_old, replace_outside)?;
    signer.refresh_keys(conn)?;
    Ok(rotated)
}

fn sign_unrecorded(
    conn: &mut DbConn,
    signer: &CheckpointSigner,
    now: DateTime<Utc>,
) -> Result<Signed, AuditError> {
    refuse_if_damaged(signer)?;
    signer.refresh_keys(conn)?;
    let outside = read_outside(signer)?;
    // The entries are checked first outside the write transaction, so that appends do not wait
    // for the signatures to be verified; inside it, only those appended meanwhile.
    let checked = check_commitments(conn, signer, outside.as_ref(), 0)?.size;
    let mut replace_outside = None;
    let signed = write_tx(conn, |conn| -> Result<Signed, AuditError> {
        crate::db::locks::advisory(conn, SIGN_LOCK)?;
        let Commitments {
            size,
            latest,
            outside_acknowledged,
        } = check_commitments(conn, signer, outside.as_ref(), checked)?;
        replace_outside = outside_acknowledged;
        match latest {
            Some(l) if l.size == size => return Ok(Signed::Unchanged(l)),
            None if size == 0 => return Ok(Signed::EmptyLog),
            _ => {}
        }
        refuse_if_retired(conn, signer, size)?;
        sign_and_store(conn, signer, size, now).map(Signed::New)
    })?;
    // After the commit: a copy ahead of the database would raise a false rollback alarm.
    if let Signed::New(stored) = &signed {
        write_outside_copy(signer, stored, replace_outside)?;
    }
    Ok(signed)
}
