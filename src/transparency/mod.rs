//! The public transparency report: requests per country, authority, instrument and outcome,
//! computed from the signed audit log alone, so that anyone holding an export of the log's
//! range recomputes every number (`writ transparency verify`).
//!
//! - [`build`]: the pure, streaming builder (leaves in, published tables out) and what counts;
//! - [`band`]: how small numbers are published (`<10`, `0-249`), from `[transparency]`;
//! - [`render`]: the folder's files: `index.html` with SVG charts, a CSV and a JSON file per
//!   table, `methodology.txt`, `checkpoint.txt`, `report.json`;
//! - [`publish`]: building across a verified range of the live log or an export, writing the
//!   folder, and verifying a folder against an export.
//!
//! This module reads the audit log and nothing else of Writ's data (the architecture test
//! holds it to `audit`, `db`, `disclosure` for the tar writer, and `settings`).

pub mod band;
pub mod build;
pub mod publish;
pub mod render;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::settings::TransparencySettings;

pub use build::Builder;
pub use publish::{Built, TransparencyError, build_from_db, build_from_export, verify_folder};

/// The report format's version, in every report.
pub const FORMAT: &str = "writ-transparency/v1";

/// A reporting period: whole days in UTC, `from` and `to` included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    /// First day.
    pub from: NaiveDate,
    /// Last day (included).
    pub to: NaiveDate,
}

impl Period {
    /// A period, or why it is not one.
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Self, String> {
        if to < from {
            return Err(format!("--to {to} is before --from {from}"));
        }
        if (to - from).num_days() > 3660 {
            return Err("a period may be at most ten years long".into());
        }
        Ok(Self { from, to })
    }

    /// Parses `YYYY-MM-DD` for the named option.
    pub fn parse_date(name: &str, value: &str) -> Result<NaiveDate, String> {
        NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
            .map_err(|_| format!("{name} `{value}` is not a date as YYYY-MM-DD"))
    }

    /// The period's first instant.
    pub fn start(&self) -> DateTime<Utc> {
        self.from.and_time(chrono::NaiveTime::MIN).and_utc()
    }

    /// The first instant after the period.
    pub fn end(&self) -> DateTime<Utc> {
        (self.to + chrono::Duration::days(1))
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
    }

    /// The months the period touches, as `YYYY-MM`.
    pub fn months(&self) -> Vec<String> {
        let mut out = Vec::new();
        let (mut y, mut m) = (self.from.year(), self.from.month());
        while (y, m) <= (self.to.year(), self.to.month()) {
            out.push(format!("{y:04}-{m:02}"));
            (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        }
        out
    }
}

/// One published table: every cell is text as published (banded), never a raw small number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// File-name stem and identifier (`by_country`).
    pub name: String,
    /// Heading.
    pub title: String,
    /// Column names.
    pub columns: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table.
    pub fn new(name: &str, title: &str, columns: &[&str], rows: Vec<Vec<String>>) -> Self {
        Self {
            name: name.to_owned(),
            title: title.to_owned(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows,
        }
    }
}

/// The range of the log a report was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogRange {
    /// The log's origin.
    pub origin: String,
    /// First entry read.
    pub start: u64,
    /// One past the last entry read.
    pub end: u64,
    /// The signed checkpoint (a C2SP signed note) the range was verified against.
    pub checkpoint: String,
}

/// A transparency report: what `report.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Always [`FORMAT`].
    pub format: String,
    /// The period reported.
    pub period: Period,
    /// When it was made (RFC 3339 UTC); decides which delayed categories are published.
    pub generated_at: String,
    /// The log range and checkpoint.
    pub log: LogRange,
    /// The banding rules it was made with.
    pub banding: TransparencySettings,
    /// What the log could not say (entries older than the fields the report counts).
    pub limitations: Vec<String>,
    /// The tables.
    pub tables: Vec<Table>,
}

impl Report {
    /// A table by name.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }
}
