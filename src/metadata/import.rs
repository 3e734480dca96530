//! Streaming import of accounts and IP events from CSV or JSON Lines.
//!
//! Memory stays flat whatever the file size: records are read one at a time and stored in
//! batches, each batch in one transaction with its own audit entry. Bad records never stop the
//! import and are never dropped silently: each goes to the reject output with its line number
//! and the reason (field and rule, never the value). Re-running a file stores nothing twice.

use std::io::{BufRead, BufReader, Read, Write};

use chrono::Utc;
use sha2::{Digest, Sha256};

use super::MetadataError;
use super::records::{
    AccountRecord, AccountRow, IpEventRecord, IpEventRow, RecordKind, Rejection, parse_rejection,
};
use super::store::{self, BatchOutcome};
use crate::audit::{self, Actor, NewEntry};
use crate::db::{Db, DbConn, write_tx};

/// Longest JSON Lines record accepted, in bytes.
const MAX_LINE_BYTES: u64 = 64 * 1024;

/// Input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV with a header row naming the fields.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl Format {
    /// Guesses the format from a file name: `.csv`, or `.jsonl` / `.ndjson`.
    pub fn from_name(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            Some(Self::Csv)
        } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
            Some(Self::Jsonl)
        } else {
            None
        }
    }
}

/// How to run an import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// What the records are.
    pub kind: RecordKind,
    /// How they are encoded.
    pub format: Format,
    /// Records per transaction.
    pub batch_rows: usize,
    /// Where they came from, for the audit log (a file name or a feeding system).
    pub source: String,
    /// Who imports.
    pub actor: Actor,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    /// Identifier of this import in the audit log.
    pub import_id: String,
    /// Records read.
    pub records: u64,
    /// Records that added something.
    pub new: u64,
    /// Records that changed something already stored.
    pub changed: u64,
    /// Records already stored exactly so.
    pub unchanged: u64,
    /// Records rejected (see the reject output).
    pub rejected: u64,
    /// Bytes read.
    pub bytes: u64,
    /// SHA-256 of the input, hex.
    pub sha256: String,
}

/// Counts and hashes what passes through.
struct Tap<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

enum Row {
    Account(AccountRow),
    Event(IpEventRow),
}

struct Run<'a> {
    db: &'a Db,
    opts: &'a ImportOptions,
    import_id: String,
    rejects: &'a mut dyn Write,
    accounts: Vec<(u64, AccountRow)>,
    events: Vec<(u64, IpEventRow)>,
    account_ids: store::AccountIds,
    records: u64,
    totals: BatchOutcome,
    rejected: u64,
}

impl Run<'_> {
    fn reject(&mut self, line: u64, reason: &Rejection) -> Result<(), MetadataError> {
        self.rejected += 1;
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        w.write_record([line.to_string(), reason.0.clone()])
            .map_err(|e| MetadataError::Io(e.to_string()))?;
        let bytes = w
            .into_inner()
            .map_err(|e| MetadataError::Io(e.to_string()))?;
        self.rejects
            .write_all(&bytes)
            .map_err(|e| MetadataError::Io(e.to_string()))
    }

    fn push(&mut self, line: u64, row: Row) -> Result<(), MetadataError> {
        match row {
            Row::Account(a) => self.accounts.push((line, a)),
            Row::Event(e) => self.events.push((line, e)),
        }
        if self.accounts.len() + self.events.len() >= self.opts.batch_rows {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), MetadataError> {
        if self.accounts.is_empty() && self.events.is_empty() {
            return Ok(());
        }
        let accounts = std::mem::take(&mut self.accounts);
        let events = std::mem::take(&mut self.events);
        let lines = accounts
            .iter()
            .map(|(l, _)| *l)
            .chain(events.iter().map(|(l, _)| *l));
        let (first, last) = lines.fold((u64::MAX, 0), |(lo, hi), l| (lo.min(l), hi.max(l)));
        let mut conn = self.db.conn()?;
        let outcome = write_tx(
            &mut conn,
            |c: &mut DbConn| -> Result<BatchOutcome, MetadataError> {
                let mut outcome = store::store_accounts(c, &accounts)?;
                outcome.add(store::store_ip_events(c, &events, &mut self.account_ids)?);
                let entry =
                    NewEntry::new(self.opts.actor.clone(), audit::Event::MetadataImportBatch)
                        .reference("import_id", self.import_id.as_str())
                        .reference("kind", self.opts.kind.as_str())
                        .reference("first_line", first)
                        .reference("last_line", last)
                        .reference("new", outcome.new)
                        .reference("changed", outcome.changed)
                        .reference("unchanged", outcome.unchanged)
                        .reference("rejected", outcome.rejected.len());
                audit::append(c, &entry, Utc::now())?;
                crate::failpoint!(crate::failpoint::IMPORT_BATCH_BEFORE_COMMIT);
                Ok(outcome)
            },
        )?;
        crate::failpoint!(crate::failpoint::IMPORT_BATCH_COMMITTED);
        for (line, reason) in &outcome.rejected {
            self.reject(*line, reason)?;
        }
        self.totals.add(BatchOutcome {
            rejected: Vec::new(),
            ..outcome
        });
        Ok(())
    }

    fn record_json(&mut self, line: u64, text: &str) -> Result<(), MetadataError> {
        self.records += 1;
        // A record that names a field twice reads differently in different readers: refused.
        if let Err(crate::json::StrictError::Duplicate(d)) =
            crate::json::duplicate_key(text.as_bytes())
        {
            // Named only when it is one of the record's fields: a reason never carries a value.
            let path = d.path("");
            let reason = Rejection(if self.opts.kind.fields().contains(&path.as_str()) {
                format!(
                    "field `{path}` is a duplicate key (named twice in the record); the record was not imported"
                )
            } else {
                "a key is named twice in the record (duplicate key); the record was not imported"
                    .into()
            });
            return self.reject(line, &reason);
        }
        let row = match self.opts.kind {
            RecordKind::Accounts => serde_json::from_str::<AccountRecord>(text)
                .map_err(|e| parse_rejection(self.opts.kind, &e.to_string()))
                .and_then(|r| r.validate())
                .map(Row::Account),
            RecordKind::IpEvents => serde_json::from_str::<IpEventRecord>(text)
                .map_err(|e| parse_rejection(self.opts.kind, &e.to_string()))
                .and_then(|r| r.validate())
                .map(Row::Event),
        };
        match row {
            Ok(row) => self.push(line, row),
            Err(reason) => self.reject(line, &reason),
        }
    }

    fn record_csv(
        &mut self,
        line: u64,
        record: &csv::StringRecord,
        headers: &csv::StringRecord,
    ) -> Result<(), MetadataError> {
        self.records += 1;
        let row = match self.opts.kind {
            RecordKind::Accounts => AccountRecord::from_csv(headers, record)
                .validate()
                .map(Row::Account),
            RecordKind::IpEvents => IpEventRecord::from_csv(headers, record)
                .validate()
                .map(Row::Event),
        };
        match row {
            Ok(row) => self.push(line, row),
            Err(reason) => self.reject(line, &reason),
        }
    }
}

/// Skips to just past the next newline without holding the skipped bytes.
fn skip_line(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            reader.consume(i + 1);
            return Ok(());
        }
        let len = buf.len();
        reader.consume(len);
    }
}

/// Imports everything `input` holds. `rejects` receives a CSV with a `line,reason` header and
/// one row per rejected record (records refused by the store come after those refused while
/// reading, batch by batch); `progress` is called with the bytes and records read so far.
pub fn import(
    db: &Db,
    input: impl Read,
    opts: &ImportOptions,
    rejects: &mut dyn Write,
    progress: &dyn Fn(u64, u64),
) -> Result<ImportSummary, MetadataError> {
    if opts.batch_rows == 0 {
        return Err(MetadataError::Invalid(
            "the batch size must be at least 1".into(),
        ));
    }
    rejects
        .write_all(b"line,reason\n")
        .map_err(|e| MetadataError::Io(e.to_string()))?;
    let mut tap = Tap {
        inner: input,
        hasher: Sha256::new(),
        bytes: 0,
    };
    let import_id = uuid::Uuid::new_v4().simple().to_string();
    let mut run = Run {
        db,
        opts,
        import_id: import_id.clone(),
        rejects,
        accounts: Vec::new(),
        events: Vec::with_capacity(opts.batch_rows),
        account_ids: store::AccountIds::default(),
        records: 0,
        totals: BatchOutcome::default(),
        rejected: 0,
    };
    match opts.format {
        Format::Jsonl => {
            let mut reader = BufReader::with_capacity(1 << 16, &mut tap);
            let mut bytes = Vec::new();
            let mut line = 0u64;
            loop {
                bytes.clear();
                // Bounded: a line longer than any record could be is read no further than that.
                let n = (&mut reader)
                    .take(MAX_LINE_BYTES + 1)
                    .read_until(b'\n', &mut bytes)
                    .map_err(|e| MetadataError::Io(e.to_string()))?;
                if n == 0 {
                    break;
                }
                line += 1;
                if bytes.len() as u64 > MAX_LINE_BYTES && !bytes.ends_with(b"\n") {
                    skip_line(&mut reader).map_err(|e| MetadataError::Io(e.to_string()))?;
                    run.records += 1;
                    run.reject(
                        line,
                        &Rejection(format!("is longer than {MAX_LINE_BYTES} bytes")),
                    )?;
                    continue;
                }
                let Ok(text) = std::str::from_utf8(&bytes) else {
                    run.records += 1;
                    run.reject(line, &Rejection("is not valid UTF-8".into()))?;
                    continue;
                };
                let trimmed = text.trim();
                if trimmed.is_empty() {
                    continue;
                }
                run.record_json(line, trimmed)?;
                if line.is_multiple_of(4096) {
                    progress(reader.get_ref().bytes, run.records);
                }
            }
        }
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .from_reader(&mut tap);
            let headers = reader
                .headers()
                .map_err(|e| {
                    MetadataError::Invalid(format!("cannot read the CSV header row: {e}"))
                })?
                .clone();
            if let Some((i, unknown)) = headers
                .iter()
                .enumerate()
                .find(|(_, h)| !opts.kind.fields().contains(h))
            {
                // Name the column only if it looks like a field name: a file sent without its
                // header row would otherwise echo a record's values (personal data).
                let plain = !unknown.is_empty()
                    && unknown.len() <= 32
                    && unknown.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
                let which = if plain {
                    format!("column `{unknown}`")
                } else {
                    format!("column {}", i + 1)
                };
                return Err(MetadataError::Invalid(format!(
                    "{which} of the header row is not a field of {} records (allowed: {}); is the header row missing? Nothing was imported",
                    opts.kind.as_str(),
                    opts.kind.fields().join(", ")
                )));
            }
            let mut record = csv::StringRecord::new();
            loop {
                match reader.read_record(&mut record) {
                    Ok(false) => break,
                    Ok(true) => {
                        let line = record.position().map_or(0, csv::Position::line);
                        run.record_csv(line, &record, &headers)?;
                    }
                    Err(e) => {
                        let line = e.position().map_or(0, csv::Position::line);
                        run.records += 1;
                        let reason = match e.kind() {
                            csv::ErrorKind::UnequalLengths {
                                expected_len, len, ..
                            } => Rejection(format!(
                                "has {len} fields where the header has {expected_len}"
                            )),
                            csv::ErrorKind::Utf8 { .. } => Rejection("is not valid UTF-8".into()),
                            _ => Rejection("is not a well-formed CSV record".into()),
                        };
                        run.reject(line, &reason)?;
                    }
                }
                if run.records.is_multiple_of(4096) {
                    progress(reader.get_ref().bytes, run.records);
                }
            }
        }
    }
    run.flush()?;
    let records = run.records;
    let rejected = run.rejected;
    let totals = run.totals.clone();
    run.rejects
        .flush()
        .map_err(|e| MetadataError::Io(e.to_string()))?;
    let sha256 = hex::encode(tap.hasher.finalize());
    let summary = ImportSummary {
        import_id,
        records,
        new: totals.new,
        changed: totals.changed,
        unchanged: totals.unchanged,
        rejected,
        bytes: tap.bytes,
        sha256,
    };
    progress(summary.bytes, summary.records);
    let mut conn = db.conn()?;
    let entry = NewEntry::new(opts.actor.clone(), audit::Event::MetadataImportCompleted)
        .reference("import_id", summary.import_id.as_str())
        .reference("kind", opts.kind.as_str())
        .reference("source", opts.source.as_str())
        .reference("input_sha256", summary.sha256.as_str())
        .reference("bytes", summary.bytes)
        .reference("records", summary.records)
        .reference("new", summary.new)
        .reference("changed", summary.changed)
        .reference("unchanged", summary.unchanged)
        .reference("rejected", summary.rejected);
    write_tx(&mut conn, |c| audit::append(c, &entry, Utc::now()))?;
    Ok(summary)
}
