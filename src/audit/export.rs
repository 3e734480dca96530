//! Streaming exports of a contiguous range of the log, with everything needed to verify them
//! offline: the signed checkpoint, the tree nodes left and right of the range, the signed
//! checkpoints that fall inside it, and optionally a consistency proof from an older size.
//!
//! # Format `writ-audit-export/v2`
//!
//! JSON Lines:
//! 1. a header object: `format`, `origin`, `start`, `end`, `tree_size`, `checkpoint` (the
//!    signed note for `tree_size`), `left` and `right` (`{"level","hash"}` perfect subtrees
//!    covering `[0, start)` and `[end, tree_size)`), and `consistency` (`{"from","proof"}` or
//!    null);
//! 2. one line per entry:
//!    `{"seq":N,"leaf_hash":"hex","authenticator":"hex"|null,"leaf":<the canonical leaf bytes>}`,
//!    where `leaf_hash` is the hash recorded when the entry was appended and `authenticator` the
//!    entry key's signature over it (see [`super::authenticator`]; null for entries appended
//!    before authenticators existed);
//! 3. after the entry that completes it, each signed checkpoint inside the range:
//!    `{"checkpoint":"<signed note>"}`.
//!
//! CSV carries the same: the header as a comment line `# writ-audit-export/v2 {header JSON}`,
//! then a column-name row, one row per entry (`seq,at,actor_kind,actor_id,event,order_id,
//! jurisdiction,leaf_hash,leaf,authenticator`), and checkpoints as comment lines
//! `# checkpoint "<note>"`.
//!
//! Version 1 was the same without authenticators (no `authenticator` key or column); the
//! verifier still reads it.
//!
//! Rows are read in pages, so memory stays flat however long the range.

use std::io::Write;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::AuditError;
use super::checkpoint::{self, StoredCheckpoint};
use super::log::{self, DbNodes};
use super::merkle::{self, Hash, NodeSource};
use crate::db::DbConn;

/// Format identifier in every export header.
pub const FORMAT: &str = "writ-audit-export/v2";
/// The previous format, without authenticators (still verified).
pub const FORMAT_V1: &str = "writ-audit-export/v1";
/// Column names of CSV exports.
pub const CSV_COLUMNS: [&str; 10] = [
    "seq",
    "at",
    "actor_kind",
    "actor_id",
    "event",
    "order_id",
    "jurisdiction",
    "leaf_hash",
    "leaf",
    "authenticator",
];
/// Rows per database page.
const PAGE: u64 = 1000;

/// Export file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// JSON Lines.
    Jsonl,
    /// CSV with comment lines.
    Csv,
}

/// What to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    /// First entry.
    pub start: u64,
    /// One past the last entry; the latest checkpoint's size when absent.
    pub end: Option<u64>,
    /// Output format.
    pub format: ExportFormat,
    /// Include a consistency proof from this older tree size to the checkpoint's.
    pub consistency_from: Option<u64>,
}

/// A perfect subtree hash in a header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRef {
    /// Level above the leaves.
    pub level: u8,
    /// Hex SHA-256.
    pub hash: String,
}

/// A consistency proof in a header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyRef {
    /// The older tree size.
    pub from: u64,
    /// RFC 9162 consistency proof from `from` to `tree_size`, hex hashes.
    pub proof: Vec<String>,
}

/// The first line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportHeader {
    /// Always [`FORMAT`].
    pub format: String,
    /// Log origin.
    pub origin: String,
    /// First entry exported.
    pub start: u64,
    /// One past the last entry exported.
    pub end: u64,
    /// Size of the signed checkpoint the export is checked against.
    pub tree_size: u64,
    /// That checkpoint, as a signed note.
    pub checkpoint: String,
    /// Perfect subtrees covering `[0, start)`, largest first.
    pub left: Vec<NodeRef>,
    /// Aligned perfect subtrees covering `[end, tree_size)`, in order.
    pub right: Vec<NodeRef>,
    /// Consistency proof from an older size, if requested.
    pub consistency: Option<ConsistencyRef>,
}

/// An entry line of a JSON Lines export.
#[derive(Serialize)]
struct EntryLine<'a> {
    seq: i64,
    leaf_hash: Option<String>,
    authenticator: Option<String>,
    leaf: LeafValue<'a>,
}

/// The leaf as raw canonical JSON; a stored leaf that is not JSON at all (damage) is carried
/// as a string so the verifier can name it.
#[derive(Serialize)]
#[serde(untagged)]
enum LeafValue<'a> {
    Raw(&'a RawValue),
    Damaged(&'a str),
}

/// A checkpoint line of a JSON Lines export.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointLine {
    /// The signed note.
    pub checkpoint: String,
}

/// What an export contained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// First entry.
    pub start: u64,
    /// One past the last entry.
    pub end: u64,
    /// Checkpoint size it verifies against.
    pub tree_size: u64,
    /// Entry rows written.
    pub entries: u64,
}

fn out_err(e: impl std::fmt::Display) -> AuditError {
    AuditError::Output(e.to_string())
}

fn node_refs(src: &DbNodes<'_>, nodes: Vec<(u8, u64)>) -> Result<Vec<NodeRef>, AuditError> {
    nodes
        .into_iter()
        .map(|(level, index)| {
            Ok(NodeRef {
                level,
                hash: hex::encode(src.node(level, index)?),
            })
        })
        .collect()
}

/// Resolves the range and builds the header: checks `start <= end <= tree_size`.
pub fn header(
    conn: &mut DbConn,
    origin: &str,
    req: &ExportRequest,
) -> Result<ExportHeader, AuditError> {
    let cp = checkpoint::latest(conn, origin)?.ok_or(AuditError::NoCheckpoint)?;
    let end = req.end.unwrap_or(cp.size);
    if req.start > end || end > cp.size {
        return Err(AuditError::OutOfRange(format!(
            "range {}..{end} is not within the latest signed checkpoint (size {})",
            req.start, cp.size
        )));
    }
    let src = DbNodes::new(conn);
    let left = node_refs(&src, merkle::left_decomposition(req.start))?;
    let right = node_refs(&src, merkle::right_decomposition(end, cp.size))?;
    let consistency = match req.consistency_from {
        None => None,
        Some(0) => {
            return Err(AuditError::OutOfRange(
                "`consistency_from` must be at least 1: RFC 9162 defines no consistency proof from an empty tree".into(),
            ));
        }
        Some(from) => {
            let proof = merkle::consistency_proof(from, cp.size, &src)?;
            Some(ConsistencyRef {
                from,
                proof: proof.iter().map(hex::encode).collect(),
            })
        }
    };
    Ok(ExportHeader {
        format: FORMAT.to_owned(),
        origin: origin.to_owned(),
        start: req.start,
        end,
        tree_size: cp.size,
        checkpoint: cp.note,
        left,
        right,
        consistency,
    })
}

/// Writes the export described by `header` (from [`header`]) to `out`, page by page.
pub fn write_body(
    conn: &mut DbConn,
    header: &ExportHeader,
    format: ExportFormat,
    out: &mut dyn Write,
) -> Result<ExportSummary, AuditError> {
    let header_json = serde_json::to_string(header).map_err(out_err)?;
    match format {
        ExportFormat::Jsonl => writeln!(out, "{header_json}").map_err(out_err)?,
        ExportFormat::Csv => {
            writeln!(out, "# {FORMAT} {header_json}").map_err(out_err)?;
            out.write_all(&csv_record(&CSV_COLUMNS)?).map_err(out_err)?;
        }
    }
    let mut written = 0u64;
    let mut cur = header.start;
    while cur < header.end {
        let page_end = header.end.min(cur.saturating_add(PAGE));
        let entries = log::entries(conn, cur, page_end)?;
        let hashes: std::collections::HashMap<u64, Hash> =
            log::leaf_hashes(conn, cur, page_end)?.into_iter().collect();
        let mut checkpoints = checkpoint::between(conn, &header.origin, cur, page_end, i64::MAX)?
            .into_iter()
            .peekable();
        for entry in &entries {
            let seq = u64::try_from(entry.seq).unwrap_or(0);
            while let Some(cp) = checkpoints.next_if(|cp| cp.size <= seq) {
                write_checkpoint(out, format, &cp)?;
            }
            let recorded = hashes.get(&seq).map(hex::encode);
            let authenticator = entry.authenticator.as_ref().map(hex::encode);
            match format {
                ExportFormat::Jsonl => {
                    let leaf = match RawValue::from_string(entry.leaf.clone()) {
                        Ok(raw) => raw,
                        Err(_) => {
                            let line = EntryLine {
                                seq: entry.seq,
                                leaf_hash: recorded,
                                authenticator,
                                leaf: LeafValue::Damaged(&entry.leaf),
                            };
                            serde_json::to_writer(&mut *out, &line).map_err(out_err)?;
                            out.write_all(b"\n").map_err(out_err)?;
                            written += 1;
                            continue;
                        }
                    };
                    let line = EntryLine {
                        seq: entry.seq,
                        leaf_hash: recorded,
                        authenticator,
                        leaf: LeafValue::Raw(&leaf),
                    };
                    serde_json::to_writer(&mut *out, &line).map_err(out_err)?;
                    out.write_all(b"\n").map_err(out_err)?;
                }
                ExportFormat::Csv => {
                    let seq_text = entry.seq.to_string();
                    let recorded = recorded.unwrap_or_default();
                    let row = [
                        seq_text.as_str(),
                        &entry.at,
                        &entry.actor_kind,
                        &entry.actor_id,
                        &entry.event,
                        entry.order_id.as_deref().unwrap_or(""),
                        entry.jurisdiction.as_deref().unwrap_or(""),
                        &recorded,
                        &entry.leaf,
                        authenticator.as_deref().unwrap_or(""),
                    ];
                    out.write_all(&csv_record(&row)?).map_err(out_err)?;
                }
            }
            written += 1;
        }
        for cp in checkpoints {
            write_checkpoint(out, format, &cp)?;
        }
        cur = page_end;
    }
    out.flush().map_err(out_err)?;
    Ok(ExportSummary {
        start: header.start,
        end: header.end,
        tree_size: header.tree_size,
        entries: written,
    })
}

fn write_checkpoint(
    out: &mut dyn Write,
    format: ExportFormat,
    cp: &StoredCheckpoint,
) -> Result<(), AuditError> {
    let line = serde_json::to_string(&CheckpointLine {
        checkpoint: cp.note.clone(),
    })
    .map_err(out_err)?;
    match format {
        ExportFormat::Jsonl => writeln!(out, "{line}").map_err(out_err),
        ExportFormat::Csv => {
            let note = serde_json::to_string(&cp.note).map_err(out_err)?;
            writeln!(out, "# checkpoint {note}").map_err(out_err)
        }
    }
}

fn csv_record(fields: &[&str]) -> Result<Vec<u8>, AuditError> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(fields).map_err(out_err)?;
    w.into_inner().map_err(out_err)
}

/// Builds the header and writes the whole export.
pub fn write_export(
    conn: &mut DbConn,
    origin: &str,
    req: &ExportRequest,
    out: &mut dyn Write,
) -> Result<ExportSummary, AuditError> {
    let header = header(conn, origin, req)?;
    write_body(conn, &header, req.format, out)
}
