//! `writ transparency`: build the public transparency report from the audit log, or verify one
//! offline against an export.

use std::io::BufReader;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::audit::service;
use crate::settings::Settings;
use crate::transparency::{self, Period, publish};

/// `writ transparency` actions.
#[derive(Debug, Subcommand)]
pub enum TransparencyAction {
    /// Build the report for a period (days in UTC, both included) across a verified range of
    /// the log, and write its folder (HTML, CSV and JSON per table, methodology, checkpoint).
    Report {
        /// First day, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last day (included), YYYY-MM-DD.
        #[arg(long)]
        to: String,
        /// The folder to write (created if missing).
        #[arg(long, default_value = "transparency-report")]
        out: PathBuf,
    },
    /// Verify a report folder offline: the export against the report's checkpoint, then every
    /// number recomputed; names the first number that differs.
    Verify {
        /// The report's folder (or its report.json).
        report: PathBuf,
        /// An audit export (`writ audit export`) covering the report's entry range.
        export: PathBuf,
        /// The log's public key: a PEM file, or a file or string holding the note verifier key.
        #[arg(long)]
        key: String,
        /// The entry key's public half (PEM): also checks that Writ appended every entry.
        #[arg(long)]
        entry_key: Option<PathBuf>,
    },
}

/// Runs the action.
pub fn run(settings: Settings, action: TransparencyAction) -> anyhow::Result<()> {
    match action {
        TransparencyAction::Report { from, to, out } => {
            let period = Period::parse_date("--from", &from)
                .and_then(|f| Period::parse_date("--to", &to).map(|t| (f, t)))
                .and_then(|(f, t)| Period::new(f, t))
                .map_err(anyhow::Error::msg)?;
            let db = super::open_db(&settings)?;
            let mut conn = db.conn().context("cannot connect to the database")?;
            let signer = service::load_signer(&settings.audit, &mut conn, false)?;
            db.install_audit_entry_key(signer.entry_signing_key());
            let built = transparency::build_from_db(
                &mut conn,
                &signer,
                period,
                settings.transparency.clone(),
                chrono::Utc::now(),
            )?;
            let files = publish::write_folder(&built.report, &out)?;
            println!(
                "report {} to {} written to {} ({} files) from entries {}..{} of log {}, verified against its signed checkpoint",
                period.from,
                period.to,
                out.display(),
                files.len(),
                built.report.log.start,
                built.report.log.end,
                built.report.log.origin
            );
            for l in &built.report.limitations {
                println!("NOTE: {l}");
            }
        }
        TransparencyAction::Verify {
            report,
            export,
            key,
            entry_key,
        } => {
            let key = super::audit::read_verifier_key(&key)?;
            let entry_key = entry_key
                .map(|p| super::audit::read_entry_key(&p))
                .transpose()?;
            let file = std::fs::File::open(&export)
                .with_context(|| format!("cannot open {}", export.display()))?;
            match publish::verify_folder(
                &report,
                BufReader::with_capacity(1 << 20, file),
                &key,
                entry_key.as_ref(),
            ) {
                Ok(v) => println!(
                    "OK: report {} to {}: {} numbers recomputed from entries {}..{} of log {} and the files agree; the export verified against the report's signed checkpoint",
                    v.report.period.from,
                    v.report.period.to,
                    v.numbers,
                    v.report.log.start,
                    v.report.log.end,
                    v.report.log.origin
                ),
                Err(e) => bail!("verification FAILED: {e}"),
            }
        }
    }
    Ok(())
}
