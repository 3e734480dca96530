//! `writ import accounts|ip-events FILE`: stream a CSV or JSON Lines file into the store.

use std::fs::File;
use std::io::{BufWriter, IsTerminal};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::audit::Actor;
use crate::metadata::import::{self, Format, ImportOptions};
use crate::metadata::records::RecordKind;
use crate::settings::Settings;

/// Exit code when the import finished but some records were rejected.
pub const EXIT_REJECTED: u8 = 3;

/// The import finished, but some records were rejected (see the reject file).
#[derive(Debug, thiserror::Error)]
#[error("{rejected} record(s) rejected: see {path}")]
pub struct RejectedRecords {
    /// How many.
    pub rejected: u64,
    /// The reject file.
    pub path: String,
}

/// What a file holds.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// Accounts and their identifier history.
    Accounts,
    /// IP events.
    IpEvents,
}

/// Input formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// CSV with a header row.
    Csv,
    /// JSON Lines.
    Jsonl,
}

/// Arguments of `writ import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// What the file holds.
    #[arg(value_enum)]
    pub kind: KindArg,
    /// The file (CSV or JSON Lines).
    pub file: PathBuf,
    /// Format, when the file name does not say (.csv, .jsonl, .ndjson).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Where rejected records go, as `line,reason` (default: FILE.rejects.csv).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Records per transaction for this run (default: metadata.import_batch_rows). Bulk loads
    /// into a store nobody else is writing to go fastest with about 1000000; each batch holds
    /// SQLite's write lock while it commits.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_rows: Option<u32>,
}

/// Runs the import and prints a summary.
pub fn run(settings: Settings, args: ImportArgs) -> anyhow::Result<()> {
    let kind = match args.kind {
        KindArg::Accounts => RecordKind::Accounts,
        KindArg::IpEvents => RecordKind::IpEvents,
    };
    let name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let format = match args.format {
        Some(FormatArg::Csv) => Format::Csv,
        Some(FormatArg::Jsonl) => Format::Jsonl,
        None => Format::from_name(&name).context(
            "cannot tell the format from the file name: pass --format csv or --format jsonl",
        )?,
    };
    let file =
        File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let rejects_path = args.rejects.unwrap_or_else(|| {
        let mut p = args.file.clone().into_os_string();
        p.push(".rejects.csv");
        PathBuf::from(p)
    });
    let rejects_file = File::create(&rejects_path)
        .with_context(|| format!("cannot create {}", rejects_path.display()))?;
    let mut rejects = BufWriter::new(rejects_file);

    let db = super::open_db(&settings)?;
    crate::audit::service::install_entry_key(&db, &settings.audit, true)?;
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let options = ImportOptions {
        kind,
        format,
        batch_rows: args
            .batch_rows
            .map_or(settings.metadata.import_batch_rows, |n| n as usize),
        source: format!("file:{name}"),
        actor: Actor::new(crate::audit::ActorKind::System, "cli-import"),
    };
    let progress = |bytes: u64, records: u64| {
        bar.set_position(bytes);
        bar.set_message(format!("{records} records"));
    };
    let summary = import::import(&db, file, &options, &mut rejects, &progress)?;
    bar.finish_and_clear();
    println!(
        "{}: {} records read: {} new, {} changed, {} already stored, {} rejected ({} bytes, sha256 {}, import {})",
        kind.as_str(),
        summary.records,
        summary.new,
        summary.changed,
        summary.unchanged,
        summary.rejected,
        summary.bytes,
        summary.sha256,
        summary.import_id
    );
    if summary.rejected > 0 {
        return Err(RejectedRecords {
            rejected: summary.rejected,
            path: rejects_path.display().to_string(),
        }
        .into());
    }
    Ok(())
}
