//! `writ audit`: sign, export and verify the audit log; make auditor tokens.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::audit::Actor;
use crate::audit::checkpoint::{self, Signed};
use crate::audit::export::{self, ExportFormat, ExportRequest};
use crate::audit::verify::{self, VerifierKey};
use crate::audit::{ActorKind, recovery, service};
use crate::db::Db;
use crate::settings::Settings;
use crate::web::auth;

/// `writ audit` actions.
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Sign a checkpoint now if the log grew; print the latest signed checkpoint.
    Checkpoint,
    /// Say whether signing is refused (rollback, rewrite) and why.
    Status,
    /// Write an export of a contiguous range, with what is needed to verify it offline.
    Export {
        /// First entry.
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// One past the last entry (default: the latest checkpoint's size).
        #[arg(long)]
        end: Option<u64>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = FormatArg::Jsonl)]
        format: FormatArg,
        /// Include a consistency proof from this tree size (a checkpoint you kept).
        #[arg(long)]
        consistency_from: Option<u64>,
        /// Output file (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Verify an export offline (needs no database), or, without EXPORT, the live database.
    Verify {
        /// The export file (JSON Lines or CSV).
        export: Option<PathBuf>,
        /// The log's public key: a PEM file, or a file or string holding the note verifier key.
        #[arg(long)]
        key: Option<String>,
        /// The entry key's public half (a PEM file, `entry_public_key_pem` of GET /audit/keys):
        /// checks that Writ appended every entry.
        #[arg(long)]
        entry_key: Option<PathBuf>,
        /// A checkpoint you saved earlier (a signed note file): proves no rewrite or rollback since.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
    /// Make a new auditor API token and print the hash to add to audit.auditor_token_sha256.
    Token,
    /// After a restore: put back the entries the database lacks from a later JSON Lines export
    /// (verified under this deployment's keys and the outside checkpoint copy), then sign.
    Replay {
        /// The export file (`writ audit export`, JSON Lines, from entry 0 or with a range that
        /// reaches back into the database).
        export: PathBuf,
    },
    /// After a restore: record, as an audit entry, that entries FROM..TO are lost for good,
    /// so that the log signs again; verifiers see the acknowledgement.
    AcknowledgeLoss {
        /// First lost entry: the number of entries the database holds.
        #[arg(long)]
        from: u64,
        /// One past the last lost entry: the size of the outside checkpoint copy.
        #[arg(long)]
        to: u64,
        /// Why the entries are lost (kept in the log: no personal data).
        #[arg(long)]
        reason: String,
    },
}

/// Export formats on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    /// JSON Lines.
    Jsonl,
    /// CSV.
    Csv,
}

impl From<FormatArg> for ExportFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Jsonl => Self::Jsonl,
            FormatArg::Csv => Self::Csv,
        }
    }
}

fn open_signer(
    settings: &Settings,
) -> anyhow::Result<(Db, crate::audit::checkpoint::CheckpointSigner)> {
    let db = super::open_db(settings)?;
    let mut conn = db.conn().context("cannot connect to the database")?;
    let signer = service::load_signer(&settings.audit, &mut conn, false)?;
    db.install_audit_entry_key(signer.entry_signing_key());
    Ok((db, signer))
}

/// The log's public key from `--key`: a PEM file, or a file or string holding the note
/// verifier key.
pub(crate) fn read_verifier_key(key: &str) -> anyhow::Result<VerifierKey> {
    let key_text = match std::fs::read_to_string(key) {
        Ok(text) => text,
        Err(_) if key.contains('+') => key.to_owned(),
        Err(e) => bail!("cannot read the key file {key}: {e}"),
    };
    Ok(VerifierKey::parse(&key_text)?)
}

/// The entry key's public half from `--entry-key` (a PEM file).
pub(crate) fn read_entry_key(
    path: &std::path::Path,
) -> anyhow::Result<ed25519_dalek::VerifyingKey> {
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(crate::audit::keys::parse_public_pem(&pem)?)
}

/// Signs at once after a replay or an acknowledgement, so that the outside copy moves on.
fn sign_and_print(
    conn: &mut crate::db::DbConn,
    signer: &crate::audit::checkpoint::CheckpointSigner,
) -> anyhow::Result<()> {
    match checkpoint::sign_if_new(conn, signer, chrono::Utc::now())? {
        Signed::New(c) | Signed::Unchanged(c) => {
            println!("signing: ok; checkpoint of size {} signed", c.size);
            Ok(())
        }
        Signed::EmptyLog => bail!("the audit log is empty: nothing to sign"),
    }
}

/// Runs the action.
pub fn run(settings: Settings, action: AuditAction) -> anyhow::Result<()> {
    match action {
        AuditAction::Checkpoint => {
            let (db, signer) = open_signer(&settings)?;
            let mut conn = db.conn()?;
            match checkpoint::sign_if_new(&mut conn, &signer, chrono::Utc::now())? {
                Signed::New(c) | Signed::Unchanged(c) => print!("{}", c.note),
                Signed::EmptyLog => bail!("the audit log is empty: nothing to sign"),
            }
        }
        AuditAction::Status => {
            let (db, signer) = open_signer(&settings)?;
            let mut conn = db.conn()?;
            let found = checkpoint::check(&mut conn, &signer);
            println!("origin: {}", signer.origin());
            println!("entries: {}", crate::audit::log::size(&mut conn)?);
            match checkpoint::latest(&mut conn, signer.origin())? {
                Some(c) => println!(
                    "latest checkpoint: size {} signed at {}",
                    c.size, c.signed_at
                ),
                None => println!("latest checkpoint: none yet"),
            }
            match found {
                Ok(_) => println!("signing: ok"),
                Err(e @ crate::audit::AuditError::Db(_)) => return Err(e.into()),
                Err(e) => {
                    println!("signing: refused: {e}");
                    bail!("checkpoint signing is refused");
                }
            }
        }
        AuditAction::Export {
            start,
            end,
            format,
            consistency_from,
            output,
        } => {
            let (db, signer) = open_signer(&settings)?;
            let mut conn = db.conn()?;
            let request = ExportRequest {
                start,
                end,
                format: format.into(),
                consistency_from,
            };
            let summary = match output {
                Some(path) => {
                    let file = File::create(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    let mut out = BufWriter::new(file);
                    let summary =
                        export::write_export(&mut conn, signer.origin(), &request, &mut out)?;
                    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                    summary
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut out = BufWriter::new(stdout.lock());
                    let summary =
                        export::write_export(&mut conn, signer.origin(), &request, &mut out)?;
                    out.flush()?;
                    summary
                }
            };
            eprintln!(
                "exported entries {}..{} ({} rows) against the checkpoint of size {}",
                summary.start, summary.end, summary.entries, summary.tree_size
            );
        }
        AuditAction::Verify {
            export: Some(path),
            key,
            entry_key,
            checkpoint,
        } => {
            let key = key.context("--key is required to verify an export")?;
            let key = read_verifier_key(&key)?;
            let entry_key = entry_key.map(|p| read_entry_key(&p)).transpose()?;
            let saved = checkpoint
                .map(|p| {
                    std::fs::read_to_string(&p)
                        .with_context(|| format!("cannot read {}", p.display()))
                })
                .transpose()?;
            let file =
                File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
            match verify::verify_export_with(
                BufReader::with_capacity(1 << 20, file),
                &key,
                entry_key.as_ref(),
                saved.as_deref(),
            ) {
                Ok(report) => {
                    println!(
                        "OK: entries {}..{} of log {} verified against its signed checkpoint of size {} (root {}); {} intermediate checkpoint(s) checked",
                        report.start,
                        report.end,
                        report.origin,
                        report.tree_size,
                        hex::encode(report.root),
                        report.checkpoints
                    );
                    if let Some(size) = report.saved_checkpoint {
                        println!("OK: consistent with your saved checkpoint of size {size}");
                    }
                    if let Some(loss) = &report.acknowledged_loss {
                        println!(
                            "NOTE: your saved checkpoint (size {}) is not part of this log: entry {} acknowledges the loss of entries {}..{} (reason: {})",
                            loss.to, loss.seq, loss.from, loss.to, loss.reason
                        );
                    }
                    match report.authenticated {
                        Some(n) => println!(
                            "OK: authenticators checked under the entry key; {n} entries carry one, the rest were appended before authenticators existed"
                        ),
                        None => println!(
                            "NOTE: entry authenticators not checked (give --entry-key with the entry key's public PEM)"
                        ),
                    }
                }
                Err(failure) => bail!("verification FAILED: {failure}"),
            }
        }
        AuditAction::Verify {
            export: None,
            key,
            entry_key,
            checkpoint,
        } => {
            if key.is_some() || entry_key.is_some() || checkpoint.is_some() {
                bail!(
                    "--key, --entry-key and --checkpoint go with an EXPORT file; the live check uses this deployment's keys and its outside checkpoint copy"
                );
            }
            let (db, signer) = open_signer(&settings)?;
            match service::verify_live(&db, &signer) {
                Ok(report) => match report.verified {
                    Some(r) => println!(
                        "OK: all {} entries up to the latest checkpoint verified (root {}); {} entries in the database, {} newer than that checkpoint",
                        r.end,
                        hex::encode(r.root),
                        report.size,
                        report.size.saturating_sub(r.end)
                    ),
                    None => println!(
                        "nothing signed yet: {} entries in the database",
                        report.size
                    ),
                },
                Err(failure) => bail!("verification FAILED: {failure}"),
            }
        }
        AuditAction::Replay { export } => {
            let (db, signer) = open_signer(&settings)?;
            let mut conn = db.conn()?;
            let now = chrono::Utc::now();
            let actor = Actor::new(ActorKind::System, "cli-audit");
            let done = recovery::replay(&mut conn, &signer, &export, actor, now)?;
            println!(
                "replayed entries {}..{} from {}; recorded as entry {}",
                done.from,
                done.to,
                export.display(),
                done.recorded_at
            );
            sign_and_print(&mut conn, &signer)?;
        }
        AuditAction::AcknowledgeLoss { from, to, reason } => {
            let (db, signer) = open_signer(&settings)?;
            let mut conn = db.conn()?;
            let actor = Actor::new(ActorKind::System, "cli-audit");
            let done = recovery::acknowledge_loss(
                &mut conn,
                &signer,
                from,
                to,
                &reason,
                actor,
                chrono::Utc::now(),
            )?;
            println!(
                "acknowledged the loss of entries {from}..{to} as entry {}",
                done.seq
            );
            sign_and_print(&mut conn, &signer)?;
        }
        AuditAction::Token => {
            let (token, hash) =
                auth::new_token().map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            println!("token (give it to the auditor; it is not stored anywhere): {token}");
            println!("add its hash to audit.auditor_token_sha256: {hash}");
        }
    }
    Ok(())
}
