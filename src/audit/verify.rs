//! The offline verifier: checks an export (see [`super::export`]) with nothing but the export,
//! the log's public key and, optionally, a checkpoint the auditor saved earlier. It needs no
//! database and trusts nothing in the export except what the key signed.
//!
//! It reads in flat memory, checks each line's own bytes on several threads (see [`pipeline`])
//! and stops at the first problem in the export's order, naming it:
//! - an entry removed, inserted or reordered: by its position (`seq` is inside each signed leaf);
//! - an entry modified: by its position, when its bytes no longer match the hash recorded at
//!   append time; when that hash was rewritten too, by the narrowest range between two signed
//!   checkpoints that no longer holds;
//! - a log rewritten or rolled back behind a saved checkpoint;
//! - with the entry key's public half: an entry Writ did not append (its authenticator missing
//!   or not verifying; see [`super::authenticator`]).

use std::io::BufRead;

use ed25519_dalek::VerifyingKey;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::authenticator;
use super::entry::{Leaf, Scanner};
use super::export::{CSV_COLUMNS, CheckpointLine, ExportHeader, FORMAT, FORMAT_V1, NodeRef};
use super::keys;
use super::merkle::{self, Frontier, Hash};
use super::note::{Checkpoint, NoteVerifier};
use super::rotation::KeySet;

/// The key an auditor verifies with.
#[derive(Debug, Clone)]
pub enum VerifierKey {
    /// A note verifier key, `name+keyid+base64`.
    Vkey(NoteVerifier),
    /// An Ed25519 public key (PEM); the key name is the export's origin.
    Public(VerifyingKey),
    /// The log's checkpoint keys with the sizes each signs, across key rotations
    /// ([`KeySet::to_text`]: lines `<verifier key> <first>-<last>`).
    Set(KeySet),
}

impl VerifierKey {
    /// Parses either form.
    pub fn parse(text: &str) -> Result<Self, Failure> {
        let text = text.trim();
        if text.starts_with("-----BEGIN PUBLIC KEY-----") {
            return keys::parse_public_pem(text)
                .map(Self::Public)
                .map_err(|e| Failure::Key(e.to_string()));
        }
        if text.contains(char::is_whitespace) {
            return KeySet::parse(text)
                .map(Self::Set)
                .map_err(|e| Failure::Key(format!("not a checkpoint key set: {e}")));
        }
        NoteVerifier::new(text)
            .map(Self::Vkey)
            .map_err(|e| Failure::Key(format!("not a PEM public key or note verifier key: {e}")))
    }

    fn key_set(&self, origin: &str) -> Result<KeySet, Failure> {
        match self {
            Self::Vkey(v) => Ok(KeySet::single(v.clone())),
            Self::Public(k) => NoteVerifier::from_public_key(origin, *k)
                .map(KeySet::single)
                .map_err(|e| Failure::Key(e.to_string())),
            Self::Set(s) => Ok(s.clone()),
        }
    }
}

/// Why verification failed. The message names the first problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The key could not be used.
    #[error("key: {0}")]
    Key(String),
    /// The export is not well-formed.
    #[error("line {line}: {reason}")]
    Format {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// A signature does not verify.
    #[error("{0}")]
    Signature(String),
    /// One entry is missing, extra, out of place or modified.
    #[error("entry {seq}: {reason}")]
    Entry {
        /// The entry's position.
        seq: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The log does not match a signed checkpoint.
    #[error("{0}")]
    Mismatch(String),
    /// The export could not be read.
    #[error("reading the export: {0}")]
    Io(String),
}

/// What was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Log origin.
    pub origin: String,
    /// First entry.
    pub start: u64,
    /// One past the last entry.
    pub end: u64,
    /// Size of the checkpoint verified against.
    pub tree_size: u64,
    /// Its root.
    pub root: Hash,
    /// Entries checked.
    pub entries: u64,
    /// Signed checkpoints checked inside the range (besides the final one).
    pub checkpoints: u64,
    /// Size of the auditor's saved checkpoint, when one was checked.
    pub saved_checkpoint: Option<u64>,
    /// Entries whose authenticator verified under the entry key; `None` when authenticators
    /// were not checked (no entry key given, or a version 1 export without them).
    pub authenticated: Option<u64>,
    /// When the saved checkpoint is not part of this log because the log acknowledges its
    /// loss (see [`super::recovery`]): that acknowledgement. `saved_checkpoint` is then `None`.
    pub acknowledged_loss: Option<AcknowledgedLoss>,
}

/// An `audit.loss_acknowledged` entry that explains why a saved checkpoint is not in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcknowledgedLoss {
    /// The acknowledgement's position.
    pub seq: u64,
    /// First entry lost.
    pub from: u64,
    /// One past the last entry lost (the saved checkpoint's size).
    pub to: u64,
    /// The operator's reason.
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryLine<'a> {
    seq: u64,
    leaf_hash: Option<String>,
    #[serde(default)]
    authenticator: Option<String>,
    #[serde(borrow)]
    leaf: &'a RawValue,
}

/// An entry line exactly as the exporter writes it, read in place.
struct ScannedEntryLine<'a> {
    seq: u64,
    recorded: Option<&'a str>,
    authenticator: Option<&'a str>,
    /// The text after `"leaf":` up to the line's closing brace; JSON only once the leaf parses.
    leaf: &'a str,
}

/// Reads `{"seq":N,"leaf_hash":S,"authenticator":S,"leaf":...}` (`S` a string needing no
/// escape, or `null`; version 1 lines lack the authenticator) without serde and without copying.
/// `None` for anything else, which [`parse_jsonl`] then reads. Once the leaf parses, serde
/// would read the same fields from the line: each key once, in that order, nothing around them.
fn scan_entry_line(line: &str) -> Option<ScannedEntryLine<'_>> {
    fn string_or_null<'a>(s: &mut Scanner<'a>) -> Option<Option<&'a str>> {
        if s.literal(b"null").is_some() {
            return Some(None);
        }
        s.plain_string().map(Some)
    }
    let mut s = Scanner::new(line.as_bytes());
    s.literal(b"{\"seq\":")?;
    let seq = s.uint()?;
    s.literal(b",\"leaf_hash\":")?;
    let recorded = string_or_null(&mut s)?;
    let authenticator = if s.literal(b",\"authenticator\":").is_some() {
        string_or_null(&mut s)?
    } else {
        None
    };
    s.literal(b",\"leaf\":")?;
    let start = line.len() - s.rest().len();
    let leaf = line.get(start..)?.strip_suffix('}')?;
    Some(ScannedEntryLine {
        seq,
        recorded,
        authenticator,
        leaf,
    })
}

/// One parsed data line.
enum Line {
    Entry {
        seq: u64,
        recorded: Option<String>,
        authenticator: Option<String>,
        leaf: String,
        columns: Option<Vec<String>>,
    },
    Checkpoint(String),
}

fn format_err(line: u64, reason: impl Into<String>) -> Failure {
    Failure::Format {
        line,
        reason: reason.into(),
    }
}

fn parse_jsonl(line: &str, n: u64) -> Result<Line, Failure> {
    if line.starts_with("{\"checkpoint\":") {
        let cp: CheckpointLine = serde_json::from_str(line)
            .map_err(|e| format_err(n, format!("bad checkpoint line: {e}")))?;
        return Ok(Line::Checkpoint(cp.checkpoint));
    }
    let entry: EntryLine<'_> =
        serde_json::from_str(line).map_err(|e| format_err(n, format!("bad entry line: {e}")))?;
    if entry.leaf.get().starts_with('"') {
        return Err(Failure::Entry {
            seq: entry.seq,
            reason: "its stored leaf is not JSON at all (damaged)".into(),
        });
    }
    Ok(Line::Entry {
        seq: entry.seq,
        recorded: entry.leaf_hash,
        authenticator: entry.authenticator,
        leaf: entry.leaf.get().to_owned(),
        columns: None,
    })
}

fn parse_csv(line: &str, n: u64, column_count: usize) -> Result<Line, Failure> {
    if let Some(note) = line.strip_prefix("# checkpoint ") {
        let note: String = serde_json::from_str(note)
            .map_err(|e| format_err(n, format!("bad checkpoint line: {e}")))?;
        return Ok(Line::Checkpoint(note));
    }
    if line.starts_with('#') {
        return Err(format_err(n, "unexpected comment line"));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_bytes());
    let record = reader
        .records()
        .next()
        .ok_or_else(|| format_err(n, "empty row"))?
        .map_err(|e| format_err(n, format!("bad CSV row: {e}")))?;
    if record.len() != column_count {
        return Err(format_err(
            n,
            format!("expected {column_count} columns, found {}", record.len()),
        ));
    }
    let fields: Vec<String> = record.iter().map(str::to_owned).collect();
    let seq = fields[0]
        .parse::<u64>()
        .map_err(|_| format_err(n, "seq is not a number"))?;
    let recorded = Some(fields[7].clone()).filter(|h| !h.is_empty());
    let leaf = fields[8].clone();
    let authenticator = fields.get(9).filter(|a| !a.is_empty()).cloned();
    Ok(Line::Entry {
        seq,
        recorded,
        authenticator,
        leaf,
        columns: Some(fields[1..7].to_vec()),
    })
}

fn decode_hash(hex_text: &str, what: &str) -> Result<Hash, Failure> {
    let bytes = hex::decode(hex_text).map_err(|_| format_err(1, format!("{what} is not hex")))?;
    <Hash>::try_from(bytes.as_slice()).map_err(|_| format_err(1, format!("{what} is not 32 bytes")))
}

fn push_nodes(
    frontier: &mut Frontier,
    nodes: &[NodeRef],
    expected: &[(u8, u64)],
    what: &str,
) -> Result<(), Failure> {
    if nodes.len() != expected.len()
        || nodes
            .iter()
            .zip(expected)
            .any(|(n, (level, _))| n.level != *level)
    {
        return Err(format_err(
            1,
            format!("the {what} nodes do not cover the range they must"),
        ));
    }
    for node in nodes {
        let hash = decode_hash(&node.hash, "a node hash")?;
        frontier
            .push_subtree(node.level, hash)
            .map_err(|e| format_err(1, e.to_string()))?;
    }
    Ok(())
}

fn open(note: &str, keys: &KeySet, what: &str) -> Result<Checkpoint, Failure> {
    keys.open(note)
        .map_err(|e| Failure::Signature(format!("{what} {e}")))
}

/// Verifies an export read from `input` with `key`; `saved` is a checkpoint note the auditor
/// kept from earlier, to prove the log was not rewritten or rolled back since. Authenticators
/// are not checked: see [`verify_export_with`].
pub fn verify_export<R: BufRead>(
    input: R,
    key: &VerifierKey,
    saved: Option<&str>,
) -> Result<Report, Failure> {
    verify_export_with(input, key, None, saved)
}

/// [`verify_export`], also checking each entry's authenticator with the entry key's public half
/// when `entry_key` is given. An entry may lack an authenticator only before the first one that
/// has one and before the first checkpoint in the export cosigned with the entry key (entries
/// appended before authenticators existed); a full export (from entry 0) so checks every entry.
pub fn verify_export_with<R: BufRead>(
    input: R,
    key: &VerifierKey,
    entry_key: Option<&VerifyingKey>,
    saved: Option<&str>,
) -> Result<Report, Failure> {
    verify_export_visiting(input, key, entry_key, saved, |_| Ok(()))
}

/// What [`verify_export_visiting`] shows its visitor, in the export's order.
#[derive(Debug, Clone, Copy)]
pub enum Visit<'a> {
    /// The header, once its checkpoint verified and before any entry.
    Header(&'a ExportHeader),
    /// An entry, once its bytes, position and hash checked (the tree root is checked only at
    /// the end: a visitor's result stands only when the whole verification succeeds).
    Entry(&'a Leaf),
    /// A signed checkpoint inside the range, once it verified against the entries before it.
    Checkpoint(&'a str),
}

/// [`verify_export_with`], showing every verified part of the export to `visit` as it streams
/// by, so that a reader (such as a transparency report) is computed in the same single pass; a
/// visitor's error stops the verification.
pub fn verify_export_visiting<R: BufRead, F>(
    mut input: R,
    key: &VerifierKey,
    entry_key: Option<&VerifyingKey>,
    saved: Option<&str>,
    mut visit: F,
) -> Result<Report, Failure>
where
    F: FnMut(Visit<'_>) -> Result<(), Failure>,
{
    let mut text = String::new();
    let mut n: u64 = 0;
    let mut next_line = |text: &mut String, n: &mut u64| -> Result<bool, Failure> {
        text.clear();
        let read = input
            .read_line(text)
            .map_err(|e| Failure::Io(e.to_string()))?;
        if read == 0 {
            return Ok(false);
        }
        *n += 1;
        if text.ends_with('\n') {
            text.pop();
        }
        Ok(true)
    };

    if !next_line(&mut text, &mut n)? {
        return Err(format_err(1, "the export is empty"));
    }
    let csv_header = [FORMAT, FORMAT_V1]
        .iter()
        .find_map(|f| text.strip_prefix(&format!("# {f} ")).map(str::to_owned));
    let (is_csv, header_json) = match csv_header {
        Some(rest) => (true, rest),
        None => (false, text.clone()),
    };
    let header: ExportHeader = serde_json::from_str(&header_json)
        .map_err(|e| format_err(1, format!("not a {FORMAT} header: {e}")))?;
    let v1 = header.format == FORMAT_V1;
    if header.format != FORMAT && !v1 {
        return Err(format_err(
            1,
            format!("unsupported format `{}`", header.format),
        ));
    }
    let columns: &[&str] = if v1 {
        &CSV_COLUMNS[..CSV_COLUMNS.len() - 1]
    } else {
        &CSV_COLUMNS
    };
    let entry_key = if v1 { None } else { entry_key };
    let cosign_verifier = entry_key
        .map(|k| authenticator::cosign_verifier(&header.origin, *k))
        .transpose()
        .map_err(|e| Failure::Key(e.to_string()))?;
    let verifier = key.key_set(&header.origin)?;
    let cp = open(&header.checkpoint, &verifier, "the export's checkpoint")?;
    if let Some(v) = &cosign_verifier
        && authenticator::claims_cosignature(&header.checkpoint, &header.origin)
    {
        super::note::open(&header.checkpoint, v).map_err(|e| {
            Failure::Signature(format!(
                "the entry-key cosignature of the export's checkpoint does not verify: {e}"
            ))
        })?;
    }
    if cp.origin != header.origin || cp.size != header.tree_size {
        return Err(format_err(
            1,
            "the header does not match its own signed checkpoint",
        ));
    }
    if header.start > header.end || header.end > header.tree_size {
        return Err(format_err(1, "the range is not within the checkpoint"));
    }
    visit(Visit::Header(&header))?;
    let old = saved
        .map(|note| open(note, &verifier, "the saved checkpoint"))
        .transpose()?;
    // A saved checkpoint the log does not hold is reported at the end, unless the log
    // acknowledges its loss.
    let mut saved_problem: Option<Failure> = None;
    if let Some(old) = &old {
        if old.origin != cp.origin {
            return Err(Failure::Mismatch(format!(
                "the saved checkpoint is for log `{}`, the export for `{}`",
                old.origin, cp.origin
            )));
        }
        if old.size > cp.size {
            saved_problem = Some(Failure::Mismatch(format!(
                "the log now has {} entries but your saved checkpoint covers {}: entries were removed (or the database was restored from an old backup)",
                cp.size, old.size
            )));
        }
    }
    let mut acknowledgements: Vec<(u64, Leaf)> = Vec::new();
    if is_csv {
        if !next_line(&mut text, &mut n)? {
            return Err(format_err(2, "missing the CSV column row"));
        }
        if text != columns.join(",") {
            return Err(format_err(2, "unexpected CSV column row"));
        }
    }

    let mut frontier = Frontier::new();
    push_nodes(
        &mut frontier,
        &header.left,
        &merkle::left_decomposition(header.start),
        "left",
    )?;
    let mut expected = header.start;
    let mut anchor = header.start;
    let mut checkpoints = 0u64;
    let mut old_checked = false;
    // Set once an entry had an authenticator or a cosigned checkpoint was passed: from there
    // on, every entry must carry a valid one.
    let mut strict = false;
    let mut authenticated = 0u64;
    let check_old = |frontier: &Frontier, old_checked: &mut bool, problem: &mut Option<Failure>| {
        if let Some(old) = &old
            && !*old_checked
            && header.start == 0
            && frontier.size() == old.size
        {
            *old_checked = true;
            if frontier.root() != old.root {
                *problem = Some(Failure::Mismatch(format!(
                    "the first {} entries no longer match the checkpoint you saved: the log was rewritten",
                    old.size
                )));
            }
        }
    };
    check_old(&frontier, &mut old_checked, &mut saved_problem);

    // The entries' own checks (parsing, canonical bytes, hashes, authenticators) need nothing
    // but the line, so hashing threads make them; what depends on the entries before (position,
    // checkpoints, the tree, which entries must be authenticated) is folded here in the export's
    // order, the checks in the same order as one line at a time, so the first problem found and
    // its message are the same.
    let mut fold = |prepared: Prepared| -> Result<(), Failure> {
        let n = prepared.n;
        match prepared.line? {
            PreparedLine::Checkpoint(note) => {
                let c = open(&note, &verifier, &format!("the checkpoint on line {n}"))?;
                if c.origin != cp.origin || c.size != frontier.size() {
                    return Err(format_err(
                        n,
                        format!(
                            "checkpoint for size {} placed after {} entries",
                            c.size,
                            frontier.size()
                        ),
                    ));
                }
                if frontier.root() != c.root {
                    return Err(Failure::Mismatch(bracket(
                        anchor,
                        c.size,
                        &format!("the checkpoint signed for size {}", c.size),
                    )));
                }
                anchor = c.size;
                checkpoints += 1;
                visit(Visit::Checkpoint(&note))?;
                if let Some(v) = &cosign_verifier
                    && authenticator::claims_cosignature(&note, &cp.origin)
                {
                    super::note::open(&note, v).map_err(|e| {
                        Failure::Signature(format!(
                            "the entry-key cosignature of the checkpoint on line {n} does not verify: {e}"
                        ))
                    })?;
                    strict = true;
                }
            }
            PreparedLine::Entry { seq, checked } => {
                if seq > expected {
                    return Err(Failure::Entry {
                        seq: expected,
                        reason: format!(
                            "missing: the export goes on with entry {seq} (entries were removed)"
                        ),
                    });
                }
                if seq < expected {
                    return Err(Failure::Entry {
                        seq,
                        reason: format!(
                            "appears again or out of order after entry {} (inserted or reordered)",
                            expected - 1
                        ),
                    });
                }
                if seq >= header.end {
                    return Err(format_err(
                        n,
                        format!("entry {seq} is beyond the export's end {}", header.end),
                    ));
                }
                let CheckedEntry {
                    leaf: parsed,
                    hash,
                    authenticator: auth,
                    columns,
                } = checked?;
                match auth {
                    Authenticator::Unchecked => {}
                    Authenticator::Valid => {
                        strict = true;
                        authenticated += 1;
                    }
                    Authenticator::Invalid => {
                        return Err(Failure::Entry {
                            seq,
                            reason: "its authenticator does not verify under the entry key: Writ did not append it".into(),
                        });
                    }
                    Authenticator::Missing if strict => {
                        return Err(Failure::Entry {
                            seq,
                            reason: "it has no authenticator: Writ did not append it (a row inserted into the database by other means)".into(),
                        });
                    }
                    Authenticator::Missing => {}
                }
                if let Some(problem) = columns {
                    return Err(problem);
                }
                visit(Visit::Entry(&parsed))?;
                if let (VerifierKey::Set(_), Some(rotation)) =
                    (key, super::rotation::rotation_of(&parsed))
                    && !verifier.records(&rotation)
                {
                    return Err(Failure::Mismatch(format!(
                        "entry {seq} rotates the checkpoint key, but the given key set does not say so (the old key's last checkpoint must be of size {}, the new key's first larger)",
                        seq + 1
                    )));
                }
                if parsed.event == super::event::Event::AuditLossAcknowledged.as_str() {
                    acknowledgements.push((seq, parsed));
                }
                frontier.push_leaf(hash);
                expected += 1;
                check_old(&frontier, &mut old_checked, &mut saved_problem);
            }
        }
        Ok(())
    };
    let lines = LineRules {
        csv_columns: is_csv.then_some(columns.len()),
        entry_key,
    };
    pipeline(&mut input, &mut n, &lines, &mut fold)?;

    if expected != header.end {
        return Err(Failure::Entry {
            seq: expected,
            reason: format!(
                "missing: the export stops before its end {} (entries were removed or the file was cut)",
                header.end
            ),
        });
    }
    push_nodes(
        &mut frontier,
        &header.right,
        &merkle::right_decomposition(header.end, header.tree_size),
        "right",
    )?;
    if frontier.root() != cp.root {
        return Err(Failure::Mismatch(bracket(
            anchor,
            header.end.max(anchor + 1),
            "the export's signed checkpoint",
        )));
    }
    if let Some(old) = &old
        && !old_checked
        && saved_problem.is_none()
    {
        match &header.consistency {
            Some(c) if c.from == old.size => {
                let proof: Vec<Hash> = c
                    .proof
                    .iter()
                    .map(|h| decode_hash(h, "a consistency proof hash"))
                    .collect::<Result<_, _>>()?;
                if let Err(e) =
                    merkle::verify_consistency(old.size, cp.size, &proof, &old.root, &cp.root)
                {
                    saved_problem = Some(Failure::Mismatch(format!(
                        "the log is not consistent with the checkpoint you saved (size {}): {e}; entries before it were changed",
                        old.size
                    )));
                }
            }
            _ => {
                return Err(Failure::Mismatch(format!(
                    "this export cannot be checked against your saved checkpoint of size {}: export from entry 0 through at least {}, or request it with consistency_from={}",
                    old.size, old.size, old.size
                )));
            }
        }
    }
    let mut acknowledged_loss = None;
    if let (Some(problem), Some(old)) = (saved_problem, &old) {
        // The log itself, under the key's signature, says this checkpoint's entries are lost.
        let Some((seq, leaf)) = acknowledgements
            .into_iter()
            .find(|(_, leaf)| super::recovery::acknowledges(leaf, old.size, &old.root))
        else {
            return Err(problem);
        };
        let count = |key: &str| match leaf.refs.get(key) {
            Some(super::entry::RefValue::Count(n)) => *n,
            _ => 0,
        };
        acknowledged_loss = Some(AcknowledgedLoss {
            seq,
            from: count("lost_from"),
            to: count("lost_to"),
            reason: match leaf.refs.get("reason") {
                Some(super::entry::RefValue::Text(t)) => t.clone(),
                _ => String::new(),
            },
        });
    }
    Ok(Report {
        origin: cp.origin,
        start: header.start,
        end: header.end,
        tree_size: cp.size,
        root: cp.root,
        entries: header.end - header.start,
        checkpoints,
        saved_checkpoint: old.filter(|_| acknowledged_loss.is_none()).map(|o| o.size),
        authenticated: entry_key.map(|_| authenticated),
        acknowledged_loss,
    })
}

/// Lines read at a time and handed to one hashing thread.
const BATCH_LINES: usize = 256;

/// Batches read ahead of the fold, per hashing thread: bounds memory whatever the export's size.
const BATCHES_AHEAD: usize = 4;

/// At most this many hashing threads.
const MAX_THREADS: usize = 8;

/// What a data line's own checks need to know of the export.
struct LineRules<'k> {
    /// CSV with this many columns; `None` for JSON lines.
    csv_columns: Option<usize>,
    /// Authenticators are checked with this key.
    entry_key: Option<&'k VerifyingKey>,
}

/// A data line with its own checks made.
struct Prepared {
    /// 1-based line number.
    n: u64,
    /// The line, or why it is not well-formed.
    line: Result<PreparedLine, Failure>,
}

// Nearly every line is an entry: boxing it would allocate once per line for nothing.
#[allow(clippy::large_enum_variant)]
enum PreparedLine {
    Checkpoint(String),
    Entry {
        seq: u64,
        /// The entry, or the first problem of its own (its leaf, position claim, hash).
        checked: Result<CheckedEntry, Failure>,
    },
}

/// An entry whose leaf parsed, is canonical, names its line's position and matches its
/// recorded hash.
struct CheckedEntry {
    leaf: Leaf,
    hash: Hash,
    authenticator: Authenticator,
    /// The first CSV column that disagrees with the leaf.
    columns: Option<Failure>,
}

/// An entry's authenticator under the entry key.
#[derive(Debug)]
enum Authenticator {
    /// No entry key was given.
    Unchecked,
    Missing,
    Valid,
    Invalid,
}

impl LineRules<'_> {
    /// The checks of one data line that depend on nothing but the line.
    fn prepare(&self, text: &str, n: u64) -> Prepared {
        if self.csv_columns.is_none()
            && let Some(line) = scan_entry_line(text)
            && let Ok(parsed) = Leaf::parse(line.leaf.as_bytes())
        {
            let checked = self.check_parsed(
                line.seq,
                line.recorded,
                line.authenticator,
                line.leaf,
                parsed,
                None,
            );
            return Prepared {
                n,
                line: Ok(PreparedLine::Entry {
                    seq: line.seq,
                    checked,
                }),
            };
        }
        // Every other line, and every line whose leaf does not parse (so that the problem is
        // named as before: serde's reading of the line comes first).
        self.prepare_general(text, n)
    }

    /// [`Self::prepare`] for any line, reading it with serde (or the CSV reader).
    fn prepare_general(&self, text: &str, n: u64) -> Prepared {
        let line = match self.csv_columns {
            Some(count) => parse_csv(text, n, count),
            None => parse_jsonl(text, n),
        };
        let line = line.map(|line| match line {
            Line::Checkpoint(note) => PreparedLine::Checkpoint(note),
            Line::Entry {
                seq,
                recorded,
                authenticator,
                leaf,
                columns,
            } => PreparedLine::Entry {
                seq,
                checked: self.check_entry(
                    seq,
                    recorded.as_deref(),
                    authenticator.as_deref(),
                    &leaf,
                    columns,
                ),
            },
        });
        Prepared { n, line }
    }

    fn check_entry(
        &self,
        seq: u64,
        recorded: Option<&str>,
        auth: Option<&str>,
        leaf: &str,
        columns: Option<Vec<String>>,
    ) -> Result<CheckedEntry, Failure> {
        let parsed = Leaf::parse(leaf.as_bytes()).map_err(|e| Failure::Entry {
            seq,
            reason: e.to_string(),
        })?;
        self.check_parsed(seq, recorded, auth, leaf, parsed, columns)
    }

    /// [`Self::check_entry`] once the leaf parsed.
    fn check_parsed(
        &self,
        seq: u64,
        recorded: Option<&str>,
        auth: Option<&str>,
        leaf: &str,
        parsed: Leaf,
        columns: Option<Vec<String>>,
    ) -> Result<CheckedEntry, Failure> {
        if parsed.seq != seq {
            return Err(Failure::Entry {
                seq,
                reason: format!(
                    "its signed leaf says it is entry {} (moved or inserted)",
                    parsed.seq
                ),
            });
        }
        let hash = merkle::leaf_hash(leaf.as_bytes());
        let mut hex_hash = [0u8; 64];
        let matches = hex::encode_to_slice(hash, &mut hex_hash).is_ok()
            && recorded.map(str::as_bytes) == Some(&hex_hash[..]);
        if !matches {
            return Err(Failure::Entry {
                seq,
                reason: "modified after it was appended: its bytes no longer match the hash recorded when it was appended".into(),
            });
        }
        let authenticator = match (self.entry_key, auth) {
            (None, _) => Authenticator::Unchecked,
            (Some(_), None) => Authenticator::Missing,
            (Some(key), Some(a)) => {
                // Exactly the length of a signature in hex, or it cannot verify.
                let mut bytes = [0u8; authenticator::LEN];
                if hex::decode_to_slice(a, &mut bytes).is_ok()
                    && authenticator::check(key, &hash, &bytes)
                {
                    Authenticator::Valid
                } else {
                    Authenticator::Invalid
                }
            }
        };
        let columns = columns.and_then(|columns| {
            let from_leaf = [
                parsed.at.as_str(),
                parsed.actor.kind.as_str(),
                parsed.actor.id.as_str(),
                parsed.event.as_str(),
                parsed.order.as_deref().unwrap_or_default(),
                parsed.jurisdiction.as_deref().unwrap_or_default(),
            ];
            let i = columns.iter().zip(from_leaf).position(|(a, b)| a != b)?;
            Some(Failure::Entry {
                seq,
                reason: format!(
                    "column `{}` disagrees with the signed leaf",
                    CSV_COLUMNS[i + 1]
                ),
            })
        });
        Ok(CheckedEntry {
            leaf: parsed,
            hash,
            authenticator,
            columns,
        })
    }
}

/// Data lines read together: their text one after the other, and where each ends.
struct Batch {
    /// Its place in the export's order.
    index: usize,
    /// Line number of its first line.
    first_line: u64,
    text: String,
    ends: Vec<usize>,
}

impl Batch {
    fn prepare(&self, rules: &LineRules<'_>) -> Vec<Prepared> {
        let mut start = 0;
        let mut n = self.first_line;
        self.ends
            .iter()
            .map(|&end| {
                let line = &self.text[start..end];
                let line = line.strip_suffix('\n').unwrap_or(line);
                let prepared = rules.prepare(line, n);
                start = end;
                n += 1;
                prepared
            })
            .collect()
    }
}

/// Reads up to [`BATCH_LINES`] lines after line `n`; the read error, if reading failed (the
/// lines before it are in the batch).
fn read_batch<R: BufRead>(input: &mut R, n: &mut u64, index: usize) -> (Batch, Option<Failure>) {
    let mut batch = Batch {
        index,
        first_line: *n + 1,
        text: String::new(),
        ends: Vec::with_capacity(BATCH_LINES),
    };
    while batch.ends.len() < BATCH_LINES {
        match input.read_line(&mut batch.text) {
            Ok(0) => break,
            Ok(_) => {
                *n += 1;
                batch.ends.push(batch.text.len());
            }
            Err(e) => return (batch, Some(Failure::Io(e.to_string()))),
        }
    }
    (batch, None)
}

/// Reads the data lines of `input` after line `n`, has hashing threads make each line's own
/// checks, and hands the results to `fold` in the export's order, stopping at `fold`'s first
/// error. A read error is reported once every line before it was folded, as reading one line at
/// a time would.
fn pipeline<R: BufRead, F>(
    input: &mut R,
    n: &mut u64,
    rules: &LineRules<'_>,
    fold: &mut F,
) -> Result<(), Failure>
where
    F: FnMut(Prepared) -> Result<(), Failure>,
{
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, MAX_THREADS);
    let ahead = threads * BATCHES_AHEAD;
    let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<Batch>(ahead);
    let work_rx = std::sync::Mutex::new(work_rx);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<(usize, Vec<Prepared>)>();
    std::thread::scope(|scope| {
        // Owned by this closure, so that an early return hangs up on the threads: they stop,
        // and the scope's join does not wait for them forever.
        let (work_tx, done_rx) = (work_tx, done_rx);
        for _ in 0..threads {
            let (work_rx, done_tx) = (&work_rx, done_tx.clone());
            scope.spawn(move || {
                loop {
                    let next = match work_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(batch) = next else { return };
                    let prepared = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        batch.prepare(rules)
                    }))
                    .unwrap_or_else(|_| {
                        vec![Prepared {
                            n: batch.first_line,
                            line: Err(Failure::Io("a hashing thread failed".into())),
                        }]
                    });
                    if done_tx.send((batch.index, prepared)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let mut pending = std::collections::BTreeMap::new();
        let (mut sent, mut folded) = (0usize, 0usize);
        let mut finished: Option<Option<Failure>> = None;
        loop {
            while let Ok((index, prepared)) = done_rx.try_recv() {
                pending.insert(index, prepared);
            }
            while let Some(prepared) = pending.remove(&folded) {
                prepared.into_iter().try_for_each(&mut *fold)?;
                folded += 1;
            }
            if finished.is_none() && sent - folded < ahead {
                let (batch, error) = read_batch(input, n, sent);
                if error.is_some() || batch.ends.len() < BATCH_LINES {
                    finished = Some(error);
                }
                if !batch.ends.is_empty() {
                    work_tx
                        .send(batch)
                        .map_err(|_| Failure::Io("the hashing threads stopped".into()))?;
                    sent += 1;
                }
                continue;
            }
            if sent == folded {
                break;
            }
            let (index, prepared) = done_rx
                .recv()
                .map_err(|_| Failure::Io("the hashing threads stopped".into()))?;
            pending.insert(index, prepared);
        }
        match finished {
            Some(Some(error)) => Err(error),
            _ => Ok(()),
        }
    })
}

fn bracket(from: u64, to: u64, what: &str) -> String {
    format!(
        "entries {from} to {} no longer match {what}: at least one of them was changed, inserted or removed, and its recorded hash rewritten to hide it",
        to.saturating_sub(1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Actor, ActorKind, NewEntry};
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn entry_key() -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[7; 32])
    }

    /// An entry line as the exporter writes it (`export::write_body`).
    fn line(
        seq: u64,
        recorded: Option<String>,
        authenticator: Option<String>,
        leaf: &str,
    ) -> String {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            seq: u64,
            leaf_hash: Option<String>,
            authenticator: Option<String>,
            leaf: &'a RawValue,
        }
        let leaf = RawValue::from_string(leaf.to_owned()).unwrap();
        serde_json::to_string(&Line {
            seq,
            leaf_hash: recorded,
            authenticator,
            leaf: &leaf,
        })
        .unwrap()
    }

    fn leaf(seq: u64, refs: u64) -> String {
        let at = chrono::Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
        let mut entry = NewEntry::new(Actor::new(ActorKind::Staff, "u_17"), "order.approved")
            .order("ord_9")
            .jurisdiction("fr");
        for i in 0..refs {
            entry = entry.reference(format!("r{i}"), i);
        }
        entry.to_leaf(seq, at).unwrap().to_text()
    }

    /// Everything a prepared line says, to compare two ways of preparing it.
    fn summary(p: Prepared) -> String {
        match p.line {
            Err(e) => format!("line {}: {e:?}", p.n),
            Ok(PreparedLine::Checkpoint(note)) => format!("checkpoint {note:?}"),
            Ok(PreparedLine::Entry { seq, checked }) => match checked {
                Err(e) => format!("entry {seq}: {e:?}"),
                Ok(c) => format!(
                    "entry {seq}: {:?} {} {:?} {:?}",
                    c.leaf,
                    hex::encode(c.hash),
                    c.authenticator,
                    c.columns
                ),
            },
        }
    }

    #[test]
    fn the_exporters_lines_take_the_fast_path() {
        let key = entry_key();
        for (seq, refs) in [(0, 0), (1, 1), (123_456, 3)] {
            let leaf = leaf(seq, refs);
            let hash = merkle::leaf_hash(leaf.as_bytes());
            let auth =
                hex::encode(authenticator::make(&crate::keystore::Key::from(&key), &hash).unwrap());
            for (recorded, auth) in [
                (Some(hex::encode(hash)), Some(auth.clone())),
                (Some(hex::encode(hash)), None),
                (None, Some(auth)),
            ] {
                let text = line(seq, recorded.clone(), auth.clone(), &leaf);
                let scanned = scan_entry_line(&text).unwrap();
                assert_eq!(
                    (
                        scanned.seq,
                        scanned.recorded,
                        scanned.authenticator,
                        scanned.leaf
                    ),
                    (seq, recorded.as_deref(), auth.as_deref(), leaf.as_str())
                );
            }
        }
        // Version 1 lines have no authenticator key.
        let v1 = format!("{{\"seq\":0,\"leaf_hash\":null,\"leaf\":{}}}", leaf(0, 0));
        assert!(scan_entry_line(&v1).is_some_and(|l| l.authenticator.is_none()));
        // Anything else is left to serde.
        for other in [
            format!("{{\"seq\": 0,\"leaf_hash\":null,\"leaf\":{}}}", leaf(0, 0)),
            format!("{{\"leaf_hash\":null,\"seq\":0,\"leaf\":{}}}", leaf(0, 0)),
            format!(
                "{{\"seq\":0,\"leaf_hash\":\"a\\u0062\",\"leaf\":{}}}",
                leaf(0, 0)
            ),
            format!("{{\"seq\":00,\"leaf_hash\":null,\"leaf\":{}}}", leaf(0, 0)),
        ] {
            assert!(scan_entry_line(&other).is_none(), "{other}");
        }
    }

    /// Byte edits: (position, 0 replace / 1 insert / 2 delete, byte).
    fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
        let byte = prop_oneof![
            prop::sample::select(b"\"\\{}[],:0129 afzT.-n\x00\x7f".to_vec()),
            any::<u8>(),
        ];
        proptest::collection::vec((any::<usize>(), 0u8..3, byte), 0..3)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        /// Whatever the line, the fast reading of an export line reaches the verdict and the
        /// message of the general one (serde), with or without the entry key.
        #[test]
        fn the_fast_line_path_agrees_with_serde(
            seq in prop_oneof![0u64..300, any::<u64>()],
            refs in 0u64..4,
            claimed in proptest::option::of(0u64..300),
            recorded in 0u8..4,
            auth in 0u8..4,
            edits in edits(),
        ) {
            let key = entry_key();
            let leaf_seq = claimed.unwrap_or(seq % (i64::MAX as u64));
            let leaf = leaf(leaf_seq, refs);
            let hash = merkle::leaf_hash(leaf.as_bytes());
            let recorded = match recorded {
                0 => None,
                1 => Some(hex::encode([0u8; 32])),
                2 => Some(hex::encode(hash).to_uppercase()),
                _ => Some(hex::encode(hash)),
            };
            let other_key = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
            let auth = match auth {
                0 => None,
                1 => Some(hex::encode(authenticator::make(&crate::keystore::Key::from(&other_key), &hash).unwrap())),
                2 => Some("abc".to_owned()),
                _ => Some(hex::encode(authenticator::make(&crate::keystore::Key::from(&key), &hash).unwrap())),
            };
            let mut text = line(seq, recorded, auth, &leaf).into_bytes();
            for &(at, op, b) in &edits {
                let at = at % (text.len() + 1);
                match op {
                    0 if at < text.len() => text[at] = b,
                    1 => text.insert(at, b),
                    _ if at < text.len() => {
                        text.remove(at);
                    }
                    _ => {}
                }
            }
            let text = String::from_utf8_lossy(&text);
            let public = key.verifying_key();
            for entry_key in [None, Some(&public)] {
                let rules = LineRules { csv_columns: None, entry_key };
                prop_assert_eq!(
                    summary(rules.prepare(&text, 9)),
                    summary(rules.prepare_general(&text, 9))
                );
            }
        }
    }
}
