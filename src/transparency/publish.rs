//! Building a report across a verified range of the log, writing its folder, and verifying a
//! folder against an export.
//!
//! A report is only ever computed inside the audit verifier's single pass
//! ([`crate::audit::verify::verify_export_visiting`]): the builder sees an entry only after its
//! bytes, position and recorded hash checked, and its result stands only when the whole range
//! then matches the signed checkpoint. From the live database the range is first written as an
//! export (to a private temporary file), so that the live report and `writ transparency verify`
//! run exactly the same code over exactly the same bytes.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;

use super::build::Builder;
use super::{FORMAT, LogRange, Period, Report, Table, render};
use crate::audit::checkpoint::{self, CheckpointSigner, Signed};
use crate::audit::export::{self, ExportFormat, ExportRequest};
use crate::audit::verify::{self, Failure, VerifierKey, Visit};
use crate::db::DbConn;
use crate::settings::TransparencySettings;

/// Why a report could not be built or does not verify. Each names what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum TransparencyError {
    /// The log (or the export) does not verify: no report is built across it.
    #[error("the audit log does not verify, so no report is built across it: {0}")]
    Unverified(Failure),
    /// The export does not cover the report's range.
    #[error("the export does not reach the report's range: {0}")]
    Range(String),
    /// A published number differs from the one the export gives.
    #[error(
        "{file}: table `{table}`, row {row} ({key}), column `{column}`: the log gives `{expected}`, the report says `{found}`"
    )]
    Differs {
        /// The file the number was read from.
        file: String,
        /// The table.
        table: String,
        /// The row, from 1.
        row: usize,
        /// The row's first cell.
        key: String,
        /// The column.
        column: String,
        /// The value recomputed from the export.
        expected: String,
        /// The value in the report.
        found: String,
    },
    /// The report differs from the recomputed one elsewhere than in a number.
    #[error("{0}")]
    Mismatch(String),
    /// The report folder is not a report.
    #[error("{0}")]
    Malformed(String),
    /// The audit log could not be read or signed.
    #[error("audit log: {0}")]
    Audit(#[from] crate::audit::AuditError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TransparencyError + '_ {
    move |source| TransparencyError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A report and how much of the log was read to make it.
#[derive(Debug, Clone)]
pub struct Built {
    /// The report.
    pub report: Report,
    /// Entries read (and verified) in the range.
    pub entries: u64,
}

/// Builds the report for `period` from an export, verifying it in the same pass. With `range`
/// (a report's own range, when verifying one), the export must cover it, and only the entries
/// inside it are counted; without, the export's whole range is the report's.
#[allow(clippy::too_many_arguments)]
pub fn build_from_export<R: BufRead>(
    input: R,
    key: &VerifierKey,
    entry_key: Option<&VerifyingKey>,
    period: Period,
    rules: TransparencySettings,
    generated_at: DateTime<Utc>,
    range: Option<(u64, u64, &str)>,
) -> Result<Built, TransparencyError> {
    let mut builder = Builder::new(period, rules.clone(), generated_at);
    let mut log: Option<LogRange> = None;
    let mut checkpoint_seen = false;
    let mut counted = 0u64;
    let start_text = crate::audit::entry::format_time(period.start());
    let end_text = crate::audit::entry::format_time(period.end());
    let mut problem: Option<TransparencyError> = None;
    let result = verify::verify_export_visiting(input, key, entry_key, None, |v| {
        let stop = |why: String| Failure::Mismatch(why);
        match v {
            Visit::Header(h) => {
                let (start, end, note) = match range {
                    Some((s, e, note)) => {
                        if h.start > s || h.end < e {
                            problem = Some(TransparencyError::Range(format!(
                                "the report covers entries {s}..{e}, the export {}..{}",
                                h.start, h.end
                            )));
                            return Err(stop("range".into()));
                        }
                        checkpoint_seen = h.checkpoint == note;
                        (s, e, note.to_owned())
                    }
                    None => {
                        checkpoint_seen = true;
                        (h.start, h.end, h.checkpoint.clone())
                    }
                };
                log = Some(LogRange {
                    origin: h.origin.clone(),
                    start,
                    end,
                    checkpoint: note,
                });
            }
            Visit::Checkpoint(note) => {
                if log.as_ref().is_some_and(|l| l.checkpoint == note) {
                    checkpoint_seen = true;
                }
            }
            Visit::Entry(leaf) => {
                let Some(l) = &log else {
                    return Err(stop("an entry before the header".into()));
                };
                if leaf.seq >= l.start && leaf.seq < l.end {
                    builder.push(leaf);
                    counted += 1;
                } else if leaf.seq < l.start
                    && leaf.at >= start_text
                    && leaf.at < end_text
                    && leaf.order.is_some()
                {
                    problem = Some(TransparencyError::Mismatch(format!(
                        "entry {} is dated within the period but lies before the report's range (from entry {}): the report leaves it out",
                        leaf.seq, l.start
                    )));
                    return Err(stop("range".into()));
                }
            }
        }
        Ok(())
    });
    if let Some(p) = problem {
        return Err(p);
    }
    result.map_err(TransparencyError::Unverified)?;
    let log = log.ok_or_else(|| TransparencyError::Malformed("the export has no header".into()))?;
    if !checkpoint_seen {
        return Err(TransparencyError::Range(
            "the export does not carry the report's signed checkpoint (export the range up to at least that checkpoint's size)".into(),
        ));
    }
    let (tables, limitations) = builder.finish();
    Ok(Built {
        report: Report {
            format: FORMAT.to_owned(),
            period,
            generated_at: crate::audit::entry::format_time(generated_at),
            log,
            banding: rules,
            limitations,
            tables,
        },
        entries: counted,
    })
}

/// A temporary file removed when dropped.
struct Spool(PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Builds the report for `period` from the live log: signs a checkpoint if the log grew, writes
/// the range from the period's first entry to that checkpoint as an export (a private temporary
/// file), and builds from it in the verifier's pass; a log that does not verify gives no report.
pub fn build_from_db(
    conn: &mut DbConn,
    signer: &CheckpointSigner,
    period: Period,
    rules: TransparencySettings,
    now: DateTime<Utc>,
) -> Result<Built, TransparencyError> {
    let cp = match checkpoint::sign_if_new(conn, signer, now)? {
        Signed::New(c) | Signed::Unchanged(c) => c,
        Signed::EmptyLog => {
            return Err(TransparencyError::Malformed(
                "the audit log is empty: there is nothing to report".into(),
            ));
        }
    };
    let end = cp.size;
    let start = crate::audit::log::first_at_or_after(conn, period.start())?
        .unwrap_or(end)
        .min(end);
    let path = std::env::temp_dir().join(format!(
        "writ-transparency-{}.jsonl",
        uuid::Uuid::new_v4().simple()
    ));
    let spool = Spool(path.clone());
    {
        let file = open_private(&spool.0)?;
        let mut out = BufWriter::new(file);
        export::write_export(
            conn,
            signer.origin(),
            &ExportRequest {
                start,
                end: Some(end),
                format: ExportFormat::Jsonl,
                consistency_from: None,
            },
            &mut out,
        )?;
        out.flush().map_err(io(&path))?;
    }
    let file = std::fs::File::open(&spool.0).map_err(io(&path))?;
    build_from_export(
        BufReader::with_capacity(1 << 20, file),
        &VerifierKey::Public(signer.public_key()),
        None,
        period,
        rules,
        now,
        None,
    )
}

fn open_private(path: &Path) -> Result<std::fs::File, TransparencyError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))
}

/// Writes the report's folder (created if missing): every file of [`render::files`].
pub fn write_folder(report: &Report, dir: &Path) -> Result<Vec<String>, TransparencyError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut names = Vec::new();
    for (name, bytes) in render::files(report) {
        let path = dir.join(&name);
        std::fs::write(&path, bytes).map_err(io(&path))?;
        names.push(name);
    }
    Ok(names)
}

/// The report's folder as one tar archive (`transparency-FROM-TO/` is implied by its name).
pub fn tar(report: &Report) -> Result<Vec<u8>, TransparencyError> {
    let mtime = DateTime::parse_from_rfc3339(&report.generated_at)
        .map(|t| t.timestamp())
        .unwrap_or(0);
    let mut t = crate::disclosure::tar::Builder::new(mtime)
        .map_err(|e| TransparencyError::Malformed(e.to_string()))?;
    for (name, bytes) in render::files(report) {
        t.add(&name, &bytes)
            .map_err(|e| TransparencyError::Malformed(e.to_string()))?;
    }
    Ok(t.finish())
}

/// What a successful verification established.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The report.
    pub report: Report,
    /// Entries recomputed.
    pub entries: u64,
    /// Numbers compared.
    pub numbers: u64,
}

/// Reads `report.json` of a folder (or the file itself).
pub fn read_report(path: &Path) -> Result<(Report, PathBuf), TransparencyError> {
    let (dir, file) = if path.is_dir() {
        (path.to_owned(), path.join("report.json"))
    } else {
        (
            path.parent().map(Path::to_owned).unwrap_or_default(),
            path.to_owned(),
        )
    };
    let text = std::fs::read_to_string(&file).map_err(io(&file))?;
    let report: Report = serde_json::from_str(&text).map_err(|e| {
        TransparencyError::Malformed(format!(
            "{}: not a transparency report: {e}",
            file.display()
        ))
    })?;
    if report.format != FORMAT {
        return Err(TransparencyError::Malformed(format!(
            "{}: format `{}` is not {FORMAT}",
            file.display(),
            report.format
        )));
    }
    Ok((report, dir))
}

/// Verifies a report folder against an export: the export against its checkpoint (the audit
/// verifier), the report's checkpoint against the export, then every number of every file
/// recomputed; the first that differs is named (file, table, row, column, expected, found).
pub fn verify_folder<R: BufRead>(
    path: &Path,
    export: R,
    key: &VerifierKey,
    entry_key: Option<&VerifyingKey>,
) -> Result<Verified, TransparencyError> {
    let (found, dir) = read_report(path)?;
    found
        .banding
        .check()
        .map_err(|(k, why)| TransparencyError::Malformed(format!("report banding {k}: {why}")))?;
    let generated_at = DateTime::parse_from_rfc3339(&found.generated_at)
        .map_err(|e| TransparencyError::Malformed(format!("generated_at: {e}")))?
        .with_timezone(&Utc);
    let built = build_from_export(
        export,
        key,
        entry_key,
        found.period,
        found.banding.clone(),
        generated_at,
        Some((found.log.start, found.log.end, &found.log.checkpoint)),
    )?;
    let expected = built.report;
    if expected.log.origin != found.log.origin {
        return Err(TransparencyError::Mismatch(format!(
            "the report is for log `{}`, the export for `{}`",
            found.log.origin, expected.log.origin
        )));
    }
    let mut numbers = compare_tables("report.json", &expected.tables, &found.tables)?;
    if expected.limitations != found.limitations {
        return Err(TransparencyError::Mismatch(
            "report.json: the limitations differ from those the log gives".into(),
        ));
    }
    // Every other file of the folder: per-table CSV and JSON by number, the rest byte for byte.
    for t in &expected.tables {
        let csv_path = dir.join(format!("{}.csv", t.name));
        let text = std::fs::read_to_string(&csv_path).map_err(io(&csv_path))?;
        let table = render::parse_csv(&t.name, &text)
            .map_err(|e| TransparencyError::Malformed(format!("{}: {e}", csv_path.display())))?;
        numbers += compare_tables(
            &format!("{}.csv", t.name),
            std::slice::from_ref(t),
            &[table],
        )?;
        let json_path = dir.join(format!("{}.json", t.name));
        let text = std::fs::read_to_string(&json_path).map_err(io(&json_path))?;
        let table: Table = serde_json::from_str(&text)
            .map_err(|e| TransparencyError::Malformed(format!("{}: {e}", json_path.display())))?;
        numbers += compare_tables(
            &format!("{}.json", t.name),
            std::slice::from_ref(t),
            &[table],
        )?;
    }
    for (name, bytes) in render::files(&expected) {
        if name == "report.json" || name.ends_with(".csv") || name.ends_with(".json") {
            continue;
        }
        let path = dir.join(&name);
        let on_disk = std::fs::read(&path).map_err(io(&path))?;
        if on_disk != bytes {
            return Err(TransparencyError::Mismatch(format!(
                "{name} differs from the one the log's numbers give"
            )));
        }
    }
    Ok(Verified {
        report: expected,
        entries: built.entries,
        numbers,
    })
}

/// Compares tables cell by cell; the first difference is an error naming it.
fn compare_tables(
    file: &str,
    expected: &[Table],
    found: &[Table],
) -> Result<u64, TransparencyError> {
    let mut numbers = 0u64;
    for (i, e) in expected.iter().enumerate() {
        let Some(f) = found.get(i).filter(|f| f.name == e.name) else {
            return Err(TransparencyError::Mismatch(format!(
                "{file}: table `{}` is missing or out of place",
                e.name
            )));
        };
        if f.columns != e.columns {
            return Err(TransparencyError::Mismatch(format!(
                "{file}: table `{}` has other columns than the log gives",
                e.name
            )));
        }
        for (r, row) in e.rows.iter().enumerate() {
            let other = f.rows.get(r);
            for (c, cell) in row.iter().enumerate() {
                let got = other.and_then(|o| o.get(c));
                if got != Some(cell) {
                    return Err(TransparencyError::Differs {
                        file: file.to_owned(),
                        table: e.name.clone(),
                        row: r + 1,
                        key: row.first().cloned().unwrap_or_default(),
                        column: e.columns.get(c).cloned().unwrap_or_default(),
                        expected: cell.clone(),
                        found: got.cloned().unwrap_or_else(|| "(missing)".into()),
                    });
                }
                numbers += 1;
            }
        }
        if f.rows.len() != e.rows.len() {
            return Err(TransparencyError::Mismatch(format!(
                "{file}: table `{}` has {} rows, the log gives {}",
                e.name,
                f.rows.len(),
                e.rows.len()
            )));
        }
    }
    if found.len() != expected.len() {
        return Err(TransparencyError::Mismatch(format!(
            "{file}: {} tables, the log gives {}",
            found.len(),
            expected.len()
        )));
    }
    Ok(numbers)
}
