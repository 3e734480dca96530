//! After a restore: the two ways an operator resolves a log that is behind the outside
//! checkpoint copy (see [`super::checkpoint`]), so that it signs again without a silent fork.
//!
//! - [`replay`]: the missing entries are put back, byte for byte with their authenticators,
//!   from a later export. The export must verify under this deployment's checkpoint key and
//!   entry key and be consistent with the outside copy; each entry must carry a valid
//!   authenticator and sit at the log's next position; after the last one the log must hash
//!   to the export's signed checkpoint. Anything less and nothing is replayed.
//! - [`acknowledge_loss`]: the entries are gone for good. An `audit.loss_acknowledged` entry
//!   names the lost range, the root of the outside copy that covered it, and the operator's
//!   reason; from then on the log no longer compares itself with that copy, signs again, and
//!   replaces the copy. Verifiers holding the lost checkpoint are shown the acknowledgement
//!   (see [`super::verify`]) rather than an unexplained fork.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::AuditError;
use super::authenticator;
use super::checkpoint::{self, CheckpointSigner};
use super::entry::{Actor, Leaf, NewEntry, RefValue};
use super::event::Event;
use super::log::{self, DbNodes};
use super::merkle::{self, Hash};
use super::verify::{self, VerifierKey};
use crate::db::schema::audit_entries;
use crate::db::{DbConn, write_tx};

/// Longest reason an operator may give for a loss (a leaf `refs` text value).
pub const MAX_REASON_LEN: usize = 512;

/// The acknowledgement entry at or after which the log no longer answers to the checkpoint of
/// `size` and `root` (an outside copy that covered entries since lost): its position, if the log
/// holds one.
pub fn acknowledgement_of(
    conn: &mut DbConn,
    size: u64,
    root: &Hash,
) -> Result<Option<u64>, AuditError> {
    let rows: Vec<(i64, String)> = audit_entries::table
        .filter(audit_entries::event.eq(Event::AuditLossAcknowledged.as_str()))
        .select((audit_entries::seq, audit_entries::leaf))
        .load(conn)?;
    for (seq, leaf) in rows {
        let Ok(leaf) = Leaf::parse(leaf.as_bytes()) else {
            continue;
        };
        if acknowledges(&leaf, size, root) {
            return Ok(u64::try_from(seq).ok());
        }
    }
    Ok(None)
}

/// Whether `leaf` is an acknowledgement of the loss of the checkpoint of `size` and `root`.
pub fn acknowledges(leaf: &Leaf, size: u64, root: &Hash) -> bool {
    leaf.event == Event::AuditLossAcknowledged.as_str()
        && leaf.refs.get("lost_to") == Some(&RefValue::Count(size))
        && leaf.refs.get("lost_root") == Some(&RefValue::Text(hex::encode(root)))
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// First entry replayed (the database's size before).
    pub from: u64,
    /// One past the last entry replayed.
    pub to: u64,
    /// Position of the `audit.entries_replayed` entry that records the replay.
    pub recorded_at: u64,
}

#[derive(Deserialize)]
struct EntryLine<'a> {
    seq: u64,
    authenticator: Option<String>,
    #[serde(borrow)]
    leaf: &'a RawValue,
}

fn refuse(reason: impl Into<String>) -> AuditError {
    AuditError::Recovery(reason.into())
}

/// Replays the entries that the log lacks from the JSON Lines export at `path`, in one
/// transaction with an `audit.entries_replayed` entry by `actor`; nothing is written if any
/// check fails, and the error names the first entry that failed.
pub fn replay(
    conn: &mut DbConn,
    signer: &CheckpointSigner,
    path: &Path,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<Replayed, AuditError> {
    let open = || {
        File::open(path)
            .map(|f| BufReader::with_capacity(1 << 20, f))
            .map_err(|e| refuse(format!("cannot open {}: {e}", path.display())))
    };
    let mut first = String::new();
    open()?
        .read_line(&mut first)
        .map_err(|e| refuse(format!("cannot read {}: {e}", path.display())))?;
    if first.starts_with('#') {
        return Err(refuse(
            "replay reads JSON Lines exports: export with `writ audit export --format jsonl`",
        ));
    }
    let header: super::export::ExportHeader = serde_json::from_str(first.trim_end())
        .map_err(|e| refuse(format!("{} is not an export: {e}", path.display())))?;
    let held = log::size(conn)?;
    if header.end <= held {
        return Err(refuse(format!(
            "nothing to replay: the database holds {held} entries and the export ends at {}",
            header.end
        )));
    }
    let outside = checkpoint::read_outside(signer)?;
    let key = VerifierKey::Set(signer.keys());
    let entry_key = signer.entry_public_key();
    // The whole export first: signatures, every entry's hash, place and authenticator, and
    // consistency with the outside copy.
    let report = verify::verify_export_with(
        open()?,
        &key,
        Some(&entry_key),
        outside.as_ref().map(|(_, note)| note.as_str()),
    )
    .map_err(|failure| {
        refuse(format!(
            "{} does not verify, nothing was replayed: {failure}",
            path.display()
        ))
    })?;
    if report.origin != signer.origin() {
        return Err(refuse(format!(
            "the export is of log `{}`, this deployment's is `{}`",
            report.origin,
            signer.origin()
        )));
    }
    if report.end != report.tree_size {
        return Err(refuse(format!(
            "the export stops at entry {} before its checkpoint's size {}: export without --end",
            report.end, report.tree_size
        )));
    }
    write_tx(conn, |conn| -> Result<Replayed, AuditError> {
        log::lock(conn)?;
        let from = log::size(conn)?;
        if report.start > from {
            return Err(refuse(format!(
                "the export starts at entry {} but the database ends before entry {from}: entries {from} to {} are in neither; export from an earlier start",
                report.start,
                report.start - 1
            )));
        }
        if report.end <= from {
            return Err(refuse(format!(
                "nothing to replay: the database holds {from} entries and the export ends at {}",
                report.end
            )));
        }
        // Read again (the file is not trusted to be the one just verified): every entry is
        // checked once more as it is appended, and the final root against the signed one.
        let mut input = open()?;
        let mut digest = Sha256::new();
        let mut line = String::new();
        let mut n = 0u64;
        loop {
            line.clear();
            let read = input
                .read_line(&mut line)
                .map_err(|e| refuse(format!("cannot read {}: {e}", path.display())))?;
            if read == 0 {
                break;
            }
            digest.update(line.as_bytes());
            n += 1;
            if n == 1 || line.starts_with("{\"checkpoint\"") {
                continue;
            }
            let entry: EntryLine<'_> = serde_json::from_str(line.trim_end_matches('\n'))
                .map_err(|e| refuse(format!("line {n} of the export: {e}")))?;
            let bytes = entry.leaf.get();
            let hash = merkle::leaf_hash(bytes.as_bytes());
            if entry.seq < from {
                let held = log::leaf_hashes(conn, entry.seq, entry.seq + 1)?;
                if held.first().map(|(_, h)| h) != Some(&hash) {
                    return Err(AuditError::BadEntry {
                        seq: entry.seq,
                        reason: "the export's entry differs from the database's: the export is of another history, nothing was replayed".into(),
                    });
                }
                continue;
            }
            let auth = entry
                .authenticator
                .as_deref()
                .and_then(|a| hex::decode(a).ok())
                .filter(|a| authenticator::check(&entry_key, &hash, a))
                .ok_or_else(|| AuditError::BadEntry {
                    seq: entry.seq,
                    reason: "its authenticator in the export does not verify under the entry key, nothing was replayed".into(),
                })?;
            log::append_replayed(conn, bytes, &auth)?;
        }
        let to = log::size(conn)?;
        let root = if to == report.tree_size {
            Some(merkle::root(to, &DbNodes::new(conn))?)
        } else {
            None
        };
        if root != Some(report.root) {
            return Err(refuse(format!(
                "after the replay the log ({to} entries) does not hash to the export's signed checkpoint of size {}: nothing was replayed",
                report.tree_size
            )));
        }
        let recorded = log::append(
            conn,
            &NewEntry::new(actor, Event::AuditEntriesReplayed)
                .reference("replayed_from", from)
                .reference("replayed_to", to)
                .reference("export_sha256", hex::encode(digest.finalize())),
            now,
        )?;
        Ok(Replayed {
            from,
            to,
            recorded_at: recorded.seq,
        })
    })
}

/// Checks an operator's reason for a loss: printable text of 1 to [`MAX_REASON_LEN`] bytes.
fn check_reason(reason: &str) -> Result<&str, AuditError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > MAX_REASON_LEN || reason.chars().any(char::is_control) {
        return Err(refuse(format!(
            "--reason must be 1 to {MAX_REASON_LEN} bytes of printable text on one line"
        )));
    }
    Ok(reason)
}

/// Records, signed by the entry key and in the log, that entries `from..to` are lost: `from`
/// must be the log's size and `to` the size of the outside copy it is behind. After this the
/// log signs again (the caller signs at once), and the new checkpoint replaces the copy.
pub fn acknowledge_loss(
    conn: &mut DbConn,
    signer: &CheckpointSigner,
    from: u64,
    to: u64,
    reason: &str,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<log::Appended, AuditError> {
    let reason = check_reason(reason)?;
    let Some((lost, note)) = checkpoint::read_outside(signer)? else {
        return Err(refuse(format!(
            "there is no outside checkpoint copy of log `{}` at {}: nothing signed is missing, so there is no loss to acknowledge",
            signer.origin(),
            signer.outside_copy().display()
        )));
    };
    write_tx(conn, |conn| -> Result<log::Appended, AuditError> {
        log::lock(conn)?;
        let size = log::size(conn)?;
        if lost.size <= size {
            return Err(refuse(format!(
                "the log holds {size} entries and the outside copy covers {}: no entries are missing (a log that no longer matches the copy was rewritten, which is not a loss)",
                lost.size
            )));
        }
        if acknowledgement_of(conn, lost.size, &lost.root)?.is_some() {
            return Err(refuse("this loss is acknowledged already"));
        }
        if from != size || to != lost.size {
            return Err(refuse(format!(
                "the lost range is --from {size} --to {}: the database holds {size} entries and the outside copy covers {}",
                lost.size, lost.size
            )));
        }
        log::append(
            conn,
            &NewEntry::new(actor, Event::AuditLossAcknowledged)
                .reference("lost_from", from)
                .reference("lost_to", to)
                .reference("lost_root", hex::encode(lost.root))
                .reference(
                    "lost_checkpoint_sha256",
                    hex::encode(Sha256::digest(note.as_bytes())),
                )
                .reference("reason", reason),
            now,
        )
    })
}
