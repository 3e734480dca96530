//! Running the audit log: loading the signer, the checkpointer task that signs while the log
//! grows, pushing checkpoints to a webhook, and verifying the live database.

use std::io::BufReader;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::AuditError;
use super::checkpoint::{self, CheckpointSigner, Signed};
use super::export::{self, ExportFormat, ExportRequest};
use super::keys;
use super::log::{self, DbNodes};
use super::merkle;
use super::note::{NoteError, NoteSigner};
use super::verify::{self, Report, VerifierKey};
use crate::db::{Db, DbConn, meta};
use crate::settings::AuditSettings;

/// `writ_meta` key: the largest checkpoint size delivered to the webhook.
const WEBHOOK_MARK: &str = "audit.webhook_delivered_size";

/// The log origin: configured; else the origin of a log started under the older default
/// (`writ/<deployment id>`), which keeps its name; else a domain-style name as C2SP
/// tlog-checkpoint recommends: `<server.public_host>/audit`, or, with no public host
/// configured, `writ-<deployment id>.invalid/audit` (`.invalid` is reserved: RFC 2606).
pub fn origin(settings: &AuditSettings, conn: &mut DbConn) -> Result<String, AuditError> {
    if !settings.origin.is_empty() {
        return Ok(settings.origin.clone());
    }
    let id = meta::get(conn, "deployment_id")?
        .ok_or_else(|| AuditError::Corrupt("writ_meta has no deployment_id".into()))?;
    let legacy = format!("writ/{id}");
    if checkpoint::latest(conn, &legacy)?.is_some() {
        return Ok(legacy);
    }
    if settings.public_host.is_empty() {
        Ok(format!("writ-{id}.invalid/audit"))
    } else {
        Ok(format!(
            "{}/audit",
            settings.public_host.to_ascii_lowercase()
        ))
    }
}

/// Checks a log origin, which is also the key name in every checkpoint signature (C2SP
/// signed-note: not empty, no whitespace, no `+`). Checked when the signer loads, and by the
/// command line at start-up for a configured one.
pub fn check_origin(origin: &str) -> Result<(), NoteError> {
    NoteSigner::new(origin, ed25519_dalek::SigningKey::from_bytes(&[0; 32])).map(drop)
}

/// Loads the signing keys (checkpoint and entry). With `may_create`, a missing checkpoint key
/// is created when nothing has ever been signed in this database (a fresh deployment), and a
/// missing entry key when no entry carries an authenticator yet (a fresh deployment, or the
/// first start after the upgrade that introduced them), so the quick start needs no extra step.
pub fn load_signer(
    settings: &AuditSettings,
    conn: &mut DbConn,
    may_create: bool,
) -> Result<CheckpointSigner, AuditError> {
    let origin = origin(settings, conn)?;
    check_origin(&origin).map_err(|e| {
        AuditError::Key(format!(
            "audit.origin `{origin}` is not usable as a log origin and key name: {e}"
        ))
    })?;
    let entry_key = load_entry_key(settings, conn, may_create)?;
    if settings.signing_key == crate::settings::KeyLocation::Pkcs11 {
        let key = checkpoint_token_key(settings)?;
        let signer =
            CheckpointSigner::new(key, entry_key, &origin, settings.checkpoint_path.clone())?;
        signer.refresh_keys(conn)?;
        return Ok(signer);
    }
    let path = &settings.signing_key_path;
    if !keys::exists(path) {
        let never_signed = checkpoint::latest(conn, &origin)?.is_none();
        if !(may_create && settings.create_key_if_missing && never_signed) {
            return Err(AuditError::Key(format!(
                "no signing key at {}: run `writ keys init` (or restore the provisioned key)",
                path.display()
            )));
        }
        match keys::init(path) {
            Ok(_) => tracing::info!(path = %path.display(), "created the audit signing key"),
            // Another instance starting at the same moment created it first.
            Err(e) if path.exists() => {
                tracing::debug!(error = %e, "audit signing key appeared meanwhile")
            }
            Err(e) => return Err(e),
        }
    }
    let key = keys::load(path)?;
    let signer = CheckpointSigner::new(key, entry_key, &origin, settings.checkpoint_path.clone())?;
    signer.refresh_keys(conn)?;
    Ok(signer)
}

/// The checkpoint key in the PKCS#11 token `[audit.pkcs11]` names (`signing_key = "pkcs11"`),
/// checked to sign now: the error names the module, token, PIN or key at fault.
pub fn checkpoint_token_key(settings: &AuditSettings) -> Result<crate::keystore::Key, AuditError> {
    let config = settings
        .pkcs11
        .token_config()
        .map_err(|e| AuditError::Key(e.to_string()))?;
    let key = crate::keystore::Key::token(config);
    key.probe().map_err(|e| AuditError::Key(e.to_string()))?;
    Ok(key)
}

/// Loads the entry key (see [`super::authenticator`]): in the PKCS#11 token
/// `[audit.entry_pkcs11]` names when `audit.entry_key = "pkcs11"` (checked to sign now), else
/// from `audit.entry_key_path`; with `may_create` and `audit.create_key_if_missing`, a missing
/// file is created when no entry carries an authenticator yet. A key in a token is never
/// created here: `writ keys init --entry --pkcs11` generates it.
pub fn load_entry_key(
    settings: &AuditSettings,
    conn: &mut DbConn,
    may_create: bool,
) -> Result<crate::keystore::Key, AuditError> {
    if settings.entry_key == crate::settings::KeyLocation::Pkcs11 {
        return entry_token_key(settings);
    }
    let path = &settings.entry_key_path;
    if !keys::exists(path) {
        let unused = may_create && settings.create_key_if_missing && !log::any_authenticated(conn)?;
        if !unused {
            return Err(AuditError::EntryKey(format!(
                "no entry key at {}: run `writ keys init --entry` (or restore the provisioned key)",
                path.display()
            )));
        }
        match keys::init(path) {
            Ok(_) => tracing::info!(path = %path.display(), "created the audit entry key"),
            Err(e) if path.exists() => {
                tracing::debug!(error = %e, "audit entry key appeared meanwhile")
            }
            Err(e) => return Err(e),
        }
    }
    keys::load(path)
        .map(crate::keystore::Key::from)
        .map_err(|e| match e {
            AuditError::Key(reason) => AuditError::EntryKey(reason),
            other => other,
        })
}

/// The entry key in the PKCS#11 token `[audit.entry_pkcs11]` names (`entry_key = "pkcs11"`),
/// checked to sign now: the error names the module, token, PIN or key at fault.
pub fn entry_token_key(settings: &AuditSettings) -> Result<crate::keystore::Key, AuditError> {
    let config = settings
        .entry_pkcs11
        .token_config()
        .map_err(|e| AuditError::EntryKey(e.to_string()))?;
    let key = crate::keystore::Key::token(config);
    key.probe()
        .map_err(|e| AuditError::EntryKey(e.to_string()))?;
    Ok(key)
}

/// Loads the entry key (creating it when allowed, see [`load_entry_key`]) and installs it on
/// `db`, so that entries appended through it are authenticated. For commands that append
/// without signing.
pub fn install_entry_key(
    db: &Db,
    settings: &AuditSettings,
    may_create: bool,
) -> Result<(), AuditError> {
    let mut conn = db.conn()?;
    let key = load_entry_key(settings, &mut conn, may_create)?;
    db.install_audit_entry_key(key);
    Ok(())
}

/// Signs if the log grew; logs the outcome.
pub async fn checkpoint_now(db: &Db, signer: &CheckpointSigner) -> Result<Signed, AuditError> {
    let signer = signer.clone();
    db.run(move |conn| checkpoint::sign_if_new(conn, &signer, Utc::now()))
        .await
}

/// Delivers the latest checkpoint to the webhook if it was not delivered yet. At least once:
/// a delivery whose answer is lost is sent again.
pub async fn push_webhook(
    db: &Db,
    client: &reqwest::Client,
    url: &str,
    origin: &str,
) -> Result<Option<u64>, AuditError> {
    let origin_owned = origin.to_owned();
    let (latest, delivered) = db
        .run(move |conn| -> Result<_, AuditError> {
            let latest = checkpoint::latest(conn, &origin_owned)?;
            let delivered = meta::get(conn, WEBHOOK_MARK)?
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            Ok((latest, delivered))
        })
        .await?;
    let Some(latest) = latest.filter(|l| l.size > delivered) else {
        return Ok(None);
    };
    let response = client
        .post(url)
        .header("content-type", "text/plain; charset=utf-8")
        .header("x-writ-log-origin", origin)
        .body(latest.note.clone())
        .send()
        .await
        .map_err(|e| AuditError::Output(format!("webhook delivery failed: {}", e.without_url())))?;
    if !response.status().is_success() {
        return Err(AuditError::Output(format!(
            "webhook answered {}",
            response.status()
        )));
    }
    let size = latest.size;
    db.run(move |conn| meta::set(conn, WEBHOOK_MARK, &size.to_string()).map_err(AuditError::from))
        .await?;
    Ok(Some(size))
}

/// Runs until aborted: every `interval`, sign a checkpoint if the log grew, then deliver it.
/// A refusal (rollback, inconsistency) is logged when it first appears and every minute after.
pub async fn run_checkpointer(db: Db, cell: std::sync::Arc<SignerCell>) {
    let settings = cell.settings().clone();
    let interval = Duration::from_secs(settings.checkpoint_interval_secs.max(1));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(settings.webhook_timeout_secs))
        .build()
        .unwrap_or_default();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_problem: Option<(String, Instant)> = None;
    loop {
        ticker.tick().await;
        let mut report = |problem: String| {
            let repeat = last_problem
                .as_ref()
                .is_some_and(|(p, at)| *p == problem && at.elapsed() < Duration::from_secs(60));
            if !repeat {
                tracing::error!(error = %problem, "audit checkpoint not signed");
                last_problem = Some((problem, Instant::now()));
            }
        };
        let signer = match cell.get(&db).await {
            Ok(s) => s,
            Err(e) => {
                report(e.to_string());
                continue;
            }
        };
        match checkpoint_now(&db, &signer).await {
            Ok(Signed::New(c)) => {
                tracing::info!(audit.size = c.size, "signed audit checkpoint");
                last_problem = None;
            }
            Ok(_) => {}
            Err(e) => report(e.to_string()),
        }
        if !settings.webhook_url.is_empty()
            && let Err(e) =
                push_webhook(&db, &client, settings.webhook_url.expose(), signer.origin()).await
        {
            tracing::warn!(error = %e, "audit checkpoint webhook");
        }
    }
}

/// What the verifier calls when a full verification fails (the problem, a connection to queue
/// an alert in): the server queues an e-mail to the auditors.
pub type Alert = std::sync::Arc<dyn Fn(&mut DbConn, &str) + Send + Sync>;

/// Runs until aborted: every `interval` (the first time one interval after start), verifies
/// the whole log as [`verify_live`] does and records the outcome on the signer: while the last
/// run failed, signing is refused and `GET /audit/status` says why. A failure is logged, and
/// `alert` is called when a run fails after one that did not (or with another problem).
pub async fn run_verifier(
    db: Db,
    cell: std::sync::Arc<SignerCell>,
    interval: Duration,
    alert: Alert,
) {
    let start = tokio::time::Instant::now() + interval;
    let mut ticker = tokio::time::interval_at(start, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let signer = match cell.get(&db).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "audit verification skipped: no signer");
                continue;
            }
        };
        let started = Instant::now();
        let pool = db.clone();
        let checked = signer.clone();
        let outcome = tokio::task::spawn_blocking(move || verify_live(&pool, &checked))
            .await
            .unwrap_or_else(|e| Err(format!("the verification task failed: {e}")));
        let duration_micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let (problem, entries) = match outcome {
            Ok(report) => (None, report.verified.map_or(0, |r| r.entries)),
            Err(problem) => (Some(problem), 0),
        };
        let previous = signer.state().last_verification.and_then(|v| v.problem);
        signer.record_verification(super::checkpoint::Verification {
            at: super::entry::format_time(Utc::now()),
            problem: problem.clone(),
            entries,
            duration_micros,
        });
        match problem {
            None => tracing::info!(
                audit.entries = entries,
                duration_ms = duration_micros / 1000,
                "audit log verified"
            ),
            Some(problem) => {
                tracing::error!(error = %problem, "audit log verification failed");
                if previous.as_deref() != Some(problem.as_str()) {
                    let alert = alert.clone();
                    let sent = db
                        .run(move |conn| -> Result<(), crate::db::DbError> {
                            alert(conn, &problem);
                            Ok(())
                        })
                        .await;
                    if let Err(e) = sent {
                        tracing::warn!(error = %e, "audit verification alert not queued");
                    }
                }
            }
        }
    }
}

/// The outcome of verifying the live database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveReport {
    /// Entries in the database (some may be newer than the latest checkpoint).
    pub size: u64,
    /// The export-level verification of everything up to the latest checkpoint.
    pub verified: Option<Report>,
}

/// Verifies the whole live log against its latest checkpoint, with the same verifier auditors
/// run offline (authenticators included), fed by an export streamed through a pipe; then checks
/// that the stored tree nodes give the same root as the entries, and the entries appended since
/// that checkpoint as signing would. The outside copy is read first: a database without the
/// checkpoints it covers fails, whatever the database says.
pub fn verify_live(db: &Db, signer: &CheckpointSigner) -> Result<LiveReport, String> {
    let mut conn = db.conn().map_err(|e| e.to_string())?;
    signer.refresh_keys(&mut conn).map_err(|e| e.to_string())?;
    let outside = checkpoint::read_outside_copy(signer).map_err(|e| e.to_string())?;
    let size = log::size(&mut conn).map_err(|e| e.to_string())?;
    let latest = checkpoint::latest(&mut conn, signer.origin()).map_err(|e| e.to_string())?;
    let saved_note = match (&outside, &latest) {
        (Some(c), None) if c.size > 0 => {
            return Err(format!(
                "the database holds no signed checkpoint but the copy at {} covers {} entries: checkpoints were deleted or the database was replaced",
                signer.outside_copy().display(),
                c.size
            ));
        }
        (Some(c), Some(l)) if c.size > l.size => {
            return Err(format!(
                "the database's latest checkpoint covers {} entries but the copy at {} covers {}: the database was rolled back",
                l.size,
                signer.outside_copy().display(),
                c.size
            ));
        }
        (Some(_), _) => std::fs::read_to_string(signer.outside_copy()).ok(),
        (None, _) => None,
    };
    if latest.is_none() {
        checkpoint::check_log(&mut conn, signer).map_err(|e| e.to_string())?;
        return Ok(LiveReport {
            size,
            verified: None,
        });
    }
    let request = ExportRequest {
        start: 0,
        end: None,
        format: ExportFormat::Jsonl,
        consistency_from: None,
    };
    let header = export::header(&mut conn, signer.origin(), &request).map_err(|e| e.to_string())?;
    let stored_root =
        merkle::root(header.tree_size, &DbNodes::new(&mut conn)).map_err(|e| e.to_string())?;
    drop(conn);

    let (reader, mut writer) = std::io::pipe().map_err(|e| e.to_string())?;
    let pool = db.clone();
    let producer = std::thread::spawn(move || -> Result<(), String> {
        let mut conn = pool.conn().map_err(|e| e.to_string())?;
        export::write_body(&mut conn, &header, ExportFormat::Jsonl, &mut writer)
            .map_err(|e| e.to_string())?;
        Ok(())
    });
    let key = VerifierKey::Set(signer.keys());
    let entry_key = signer.entry_public_key();
    let verified = verify::verify_export_with(
        BufReader::new(reader),
        &key,
        Some(&entry_key),
        saved_note.as_deref(),
    );
    let produced = producer
        .join()
        .map_err(|_| "the export thread panicked".to_owned())?;
    let report = verified.map_err(|e| e.to_string())?;
    produced?;
    if report.root != stored_root {
        return Err("the stored Merkle nodes do not give the root of the stored entries: audit_nodes was altered".into());
    }
    // The entries appended since that checkpoint, as the signer will check them.
    let mut conn = db.conn().map_err(|e| e.to_string())?;
    checkpoint::check_log(&mut conn, signer).map_err(|e| e.to_string())?;
    Ok(LiveReport {
        size,
        verified: Some(report),
    })
}

/// The signer, loaded once per process when the database allows it (it needs the deployment id,
/// so a database not migrated yet delays it). Cheap to share; every instance loads the same
/// provisioned key.
#[derive(Debug)]
pub struct SignerCell {
    settings: AuditSettings,
    loaded: std::sync::RwLock<Option<CheckpointSigner>>,
}

impl SignerCell {
    /// A cell that loads with `settings`.
    pub fn new(settings: AuditSettings) -> Self {
        Self {
            settings,
            loaded: std::sync::RwLock::new(None),
        }
    }

    /// The signer, loading it on first use.
    pub async fn get(&self, db: &Db) -> Result<CheckpointSigner, AuditError> {
        if let Some(signer) = self.loaded.read().ok().and_then(|g| g.clone()) {
            return Ok(signer);
        }
        let settings = self.settings.clone();
        let signer = db
            .run(move |conn| load_signer(&settings, conn, true))
            .await?;
        db.install_audit_entry_key(signer.entry_signing_key());
        if let Ok(mut slot) = self.loaded.write() {
            *slot = Some(signer.clone());
        }
        Ok(signer)
    }

    /// The signer if it is loaded already (never loads it).
    pub fn loaded(&self) -> Option<CheckpointSigner> {
        self.loaded.read().ok().and_then(|g| g.clone())
    }

    /// The audit settings.
    pub fn settings(&self) -> &AuditSettings {
        &self.settings
    }
}
