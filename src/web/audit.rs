//! Auditors' HTTP API for the audit log.
//!
//! Public: the latest checkpoint and the public keys (anyone may keep copies). Auditor token:
//! proofs, entries, exports and filtered views, since entries reveal that orders exist, even
//! secret ones.

use std::io::Write;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_DISPOSITION, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::audit::checkpoint::{self, Signed};
use crate::audit::export::{self, ExportFormat, ExportRequest};
use crate::audit::log::{self, DbNodes, StoredEntry};
use crate::audit::proof::InclusionProofDoc;
use crate::audit::service::SignerCell;
use crate::audit::{AuditError, keys, merkle, search, service, tiles};
use crate::db::{Db, DbError};
use crate::web::auth::Auditor;
use crate::web::extract::Query;
use crate::web::problem::Problem;

/// Most entries one page of `/audit/entries` or `/audit/view` returns.
const MAX_PAGE: u64 = 1000;

impl From<AuditError> for Problem {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::NoCheckpoint => {
                Problem::new(StatusCode::NOT_FOUND, "no-checkpoint", "No checkpoint yet")
                    .detail("no checkpoint has been signed yet")
            }
            AuditError::OutOfRange(m) => {
                Problem::new(StatusCode::BAD_REQUEST, "out-of-range", "Out of range").detail(m)
            }
            e @ (AuditError::Rollback { .. }
            | AuditError::Inconsistent(_)
            | AuditError::BadEntry { .. }
            | AuditError::OutsideCopy(_)) => Problem::new(
                StatusCode::CONFLICT,
                "audit-signing-refused",
                "Checkpoint signing refused",
            )
            .detail(e.to_string()),
            AuditError::Db(DbError::Unavailable(_)) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            )
            .detail("the database is unavailable; retry later"),
            other => {
                tracing::error!(error = %other, "audit request failed");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                )
                .detail("the request failed; the error was logged")
            }
        }
    }
}

impl From<DbError> for Problem {
    fn from(e: DbError) -> Self {
        AuditError::Db(e).into()
    }
}

/// `GET /audit/checkpoint`: the latest signed checkpoint, as a C2SP signed note (public).
#[get("/audit/checkpoint")]
#[tracing::instrument(name = "audit.checkpoint", skip_all)]
pub async fn latest_checkpoint(
    db: web::Data<Db>,
    cell: web::Data<SignerCell>,
) -> Result<HttpResponse, Problem> {
    let signer = cell.get(&db).await?;
    let origin = signer.origin().to_owned();
    let latest = db
        .run(move |conn| checkpoint::latest(conn, &origin))
        .await?
        .ok_or(AuditError::NoCheckpoint)?;
    Ok(note_response(latest.note))
}

fn note_response(note: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(note)
}

#[derive(Serialize)]
struct PublicKeys {
    origin: String,
    algorithm: &'static str,
    note_verifier_key: String,
    public_key_pem: String,
    /// The entry key, which authenticates each entry (and cosigns checkpoints).
    entry_verifier_key: String,
    entry_public_key_pem: String,
    /// Every checkpoint key the log has had, oldest first, with the checkpoint sizes each
    /// signs (the current key's range is open).
    checkpoint_keys: Vec<CheckpointKey>,
}

#[derive(Serialize)]
struct CheckpointKey {
    note_verifier_key: String,
    public_key_pem: String,
    first_size: u64,
    last_size: Option<u64>,
    /// The rotation entry that retired it.
    retired_at_entry: Option<u64>,
}

/// `GET /audit/keys`: the log origin and the public halves of the checkpoint key and the entry
/// key (public).
#[get("/audit/keys")]
pub async fn public_keys(
    db: web::Data<Db>,
    cell: web::Data<SignerCell>,
) -> Result<HttpResponse, Problem> {
    let signer = cell.get(&db).await?;
    let refreshed = signer.clone();
    let key_set = db.run(move |conn| refreshed.refresh_keys(conn)).await?;
    Ok(HttpResponse::Ok().json(PublicKeys {
        origin: signer.origin().to_owned(),
        algorithm: "Ed25519",
        note_verifier_key: signer.verifier_key(),
        public_key_pem: keys::public_pem(&signer.public_key()),
        entry_verifier_key: signer.entry_verifier_key(),
        entry_public_key_pem: keys::public_pem(&signer.entry_public_key()),
        checkpoint_keys: key_set
            .periods()
            .iter()
            .map(|p| CheckpointKey {
                note_verifier_key: p.verifier.verifier_key(),
                public_key_pem: keys::public_pem(&p.verifier.public_key()),
                first_size: p.first_size,
                last_size: p.last_size,
                retired_at_entry: p.retired_at,
            })
            .collect(),
    }))
}

/// `GET /audit/keys/checkpoint.txt`: the checkpoint key as a note verifier key, the file
/// `writ audit verify EXPORT --key FILE` reads (public). After a key rotation, every key the
/// log has had, one line each with the checkpoint sizes it signs (`<key> <first>-<last>`).
#[get("/audit/keys/checkpoint.txt")]
pub async fn checkpoint_key_file(
    db: web::Data<Db>,
    cell: web::Data<SignerCell>,
) -> Result<HttpResponse, Problem> {
    let signer = cell.get(&db).await?;
    let refreshed = signer.clone();
    let keys = db.run(move |conn| refreshed.refresh_keys(conn)).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(keys.to_text()))
}

/// `GET /audit/keys/entry.pem`: the entry key's public PEM, the file
/// `writ audit verify EXPORT --entry-key FILE` reads (public).
#[get("/audit/keys/entry.pem")]
pub async fn entry_key_file(
    db: web::Data<Db>,
    cell: web::Data<SignerCell>,
) -> Result<HttpResponse, Problem> {
    let signer = cell.get(&db).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .body(keys::public_pem(&signer.entry_public_key())))
}

/// `POST /audit/checkpoint`: sign now if the log grew (auditors). Answers the latest note.
#[post("/audit/checkpoint")]
#[tracing::instrument(name = "audit.sign", skip_all)]
pub async fn sign_checkpoint(
    _auditor: Auditor,
    db: web::Data<Db>,
    cell: web::Data<SignerCell>,
) -> Result<HttpResponse, Problem> {
    let signer = cell.get(&db).await?;
    match service::checkpoint_now(&db, &signer).await? {
        Signed::New(c) | Signed::Unchanged(c) => Ok(note_response(c.note)),
        Signed::EmptyLog => Err(AuditError::NoCheckpoint.into()),
    }
}

#[derive(Serialize)]
struct Status {
    tree_size: u64,
    latest_checkpoint_size: Option<u64>,
    /// `ok`, or `refused` with the reason in `problem`.
    signing: &'static str,
    problem: Option<String>,
    /// The last signing attempt of the instance answering.
    last_attempt: Option<AttemptOut>,
    /// The last full verification of the instance answering.
    last_verification: Option<VerificationOut>,
}

#[derive(Serialize)]
struct AttemptOut {
    at: String,
    outcome: &'static str,
    problem: Option<String>,
}

#[derive(Serialize)]
struct VerificationOut {
    at: String,
    ok: bool,
    entries: u64,
    problem: Option<String>,
}

/// `GET /audit/status`: the log's size, the latest checkpoint, whether signing is refused and
/// why, the last signing attempt's outcome and the last full verification's (auditors). Signing
/// is `ok` only when a dry run of the signer's checks passes and the last attempt did not fail.
#[get("/audit/status")]
pub async fn status(
    _auditor: Auditor,
    db: web::Data<Db>,
    cell: web::Data<SignerCell>,
) -> Result<HttpResponse, Problem> {
    let signer = cell.get(&db).await?;
    let state = signer.state();
    let origin = signer.origin().to_owned();
    let (tree_size, latest, dry_run) = db
        .run(move |conn| -> Result<_, AuditError> {
            let dry_run = match checkpoint::check(conn, &signer) {
                Ok(_) => None,
                Err(AuditError::Db(e)) => return Err(AuditError::Db(e)),
                Err(e) => Some(e.to_string()),
            };
            let size = log::size(conn)?;
            let latest = checkpoint::latest(conn, &origin)?.map(|c| c.size);
            Ok((size, latest, dry_run))
        })
        .await?;
    let last_failure = state
        .last_attempt
        .as_ref()
        .and_then(|a| a.problem.clone())
        .map(|p| format!("the last signing attempt failed: {p}"));
    let problem = dry_run.or(last_failure);
    Ok(HttpResponse::Ok().json(Status {
        tree_size,
        latest_checkpoint_size: latest,
        signing: if problem.is_some() { "refused" } else { "ok" },
        problem,
        last_attempt: state.last_attempt.map(|a| AttemptOut {
            at: a.at,
            outcome: a.outcome,
            problem: a.problem,
        }),
        last_verification: state.last_verification.map(|v| VerificationOut {
            at: v.at,
            ok: v.problem.is_none(),
            entries: v.entries,
            problem: v.problem,
        }),
    }))
}

/// Where the tiles of the latest signed checkpoint are read.
async fn serve_tile(
    db: &Db,
    cell: &SignerCell,
    path: &str,
    want_entries: bool,
) -> Result<HttpResponse, Problem> {
    let tile = tiles::TilePath::parse(path).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-tile-path",
            "Invalid tile path",
        )
        .detail(e.to_string())
    })?;
    if tile.level.is_none() != want_entries {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-tile-path",
            "Invalid tile path",
        )
        .detail(
            "entry bundles are at /audit/tile/entries/<N>, hash tiles at /audit/tile/<L>/<N>",
        ));
    }
    let signer = cell.get(db).await?;
    let origin = signer.origin().to_owned();
    let bytes = db
        .run(move |conn| -> Result<_, AuditError> {
            let size = checkpoint::latest(conn, &origin)?.map_or(0, |c| c.size);
            tiles::read(conn, &tile, size)
        })
        .await?
        .ok_or_else(|| {
            Problem::new(StatusCode::NOT_FOUND, "no-tile", "No such tile")
                .detail("this tile is not within the latest signed checkpoint")
        })?;
    let cache = if want_entries {
        "private, max-age=31536000, immutable"
    } else {
        "public, max-age=31536000, immutable"
    };
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("Cache-Control", cache))
        .body(bytes))
}

/// `GET /audit/tile/entries/<N>[.p/<W>]`: a C2SP tlog-tiles entry bundle, the canonical leaves
/// each prefixed by its big-endian uint16 length (auditors: entries reveal that orders exist).
#[get("/audit/tile/entries/{path:.*}")]
pub async fn entry_bundle(
    _auditor: Auditor,
    db: web::Data<Db>,
    cell: web::Data<SignerCell>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    serve_tile(&db, &cell, &format!("entries/{}", path.into_inner()), true).await
}

/// `GET /audit/tile/<L>/<N>[.p/<W>]`: a C2SP tlog-tiles hash tile of the latest signed
/// checkpoint (public, like the checkpoint: hashes only).
#[get("/audit/tile/{path:.*}")]
pub async fn hash_tile(
    db: web::Data<Db>,
    cell: web::Data<SignerCell>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    serve_tile(&db, &cell, &path.into_inner(), false).await
}

/// Proof output format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ProofFormat {
    /// JSON.
    Json,
    /// C2SP tlog-proof text.
    TlogProof,
}

/// Query of `/audit/proofs/inclusion`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// The entry.
    seq: u64,
    /// A signed checkpoint size; the latest when absent.
    size: Option<u64>,
    /// `json` (default) or `tlog-proof`.
    format: Option<ProofFormat>,
}

#[derive(Serialize)]
struct InclusionAnswer {
    seq: u64,
    tree_size: u64,
    leaf_hash: String,
    proof: Vec<String>,
    checkpoint: String,
}

fn signed_at(
    conn: &mut crate::db::DbConn,
    origin: &str,
    size: Option<u64>,
) -> Result<checkpoint::StoredCheckpoint, AuditError> {
    match size {
        None => checkpoint::latest(conn, origin)?.ok_or(AuditError::NoCheckpoint),
        Some(size) => checkpoint::at_size(conn, origin, size)?.ok_or_else(|| {
            AuditError::OutOfRange(format!("no checkpoint was signed at size {size}"))
        }),
    }
}

/// `GET /audit/proofs/inclusion?seq=N[&size=M][&format=tlog-proof]`: RFC 9162 inclusion proof of
/// entry N in the signed checkpoint of size M (auditors).
#[get("/audit/proofs/inclusion")]
pub async fn inclusion_proof(
    _auditor: Auditor,
    db: web::Data<Db>,
    cell: web::Data<SignerCell>,
    query: Query<InclusionQuery>,
) -> Result<HttpResponse, Problem> {
    let signer = cell.get(&db).await?;
    let origin = signer.origin().to_owned();
    let q = query.into_inner();
    let (cp, leaf, proof) = db
        .run(move |conn| -> Result<_, AuditError> {
            let cp = signed_at(conn, &origin, q.size)?;
            if q.seq >= cp.size {
                return Err(AuditError::OutOfRange(format!(
                    "entry {} is not in the tree of size {}",
                    q.seq, cp.size
                )));
            }
            let leaf = log::entries(conn, q.seq, q.seq + 1)?
                .pop()
                .ok_or_else(|| AuditError::Corrupt(format!("entry {} is missing", q.seq)))?;
            let proof = merkle::inclusion_proof(q.seq, cp.size, &DbNodes::new(conn))?;
            Ok((cp, leaf, proof))
        })
        .await?;
    let leaf_hash = merkle::leaf_hash(leaf.leaf.as_bytes());
    if q.format == Some(ProofFormat::TlogProof) {
        let doc = InclusionProofDoc {
            index: q.seq,
            hashes: proof,
            extra: None,
            checkpoint: cp.note,
        };
        return Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(doc.to_text()));
    }
    Ok(HttpResponse::Ok().json(InclusionAnswer {
        seq: q.seq,
        tree_size: cp.size,
        leaf_hash: hex::encode(leaf_hash),
        proof: proof.iter().map(hex::encode).collect(),
        checkpoint: cp.note,
    }))
}

/// Query of `/audit/proofs/consistency`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The older size (typically of a checkpoint the auditor kept).
    from: u64,
    /// A signed checkpoint size; the latest when absent.
    to: Option<u64>,
}

#[derive(Serialize)]
struct ConsistencyAnswer {
    from: u64,
    to: u64,
    proof: Vec<String>,
    checkpoint: String,
}

/// `GET /audit/proofs/consistency?from=M[&to=N]`: RFC 9162 consistency proof between tree sizes
/// M and N, N being a signed checkpoint (auditors).
#[get("/audit/proofs/consistency")]
pub async fn consistency_proof(
    _auditor: Auditor,
    db: web::Data<Db>,
    cell: web::Data<SignerCell>,
    query: Query<ConsistencyQuery>,
) -> Result<HttpResponse, Problem> {
    let signer = cell.get(&db).await?;
    let origin = signer.origin().to_owned();
    let q = query.into_inner();
    let (cp, proof) = db
        .run(move |conn| -> Result<_, AuditError> {
            let cp = signed_at(conn, &origin, q.to)?;
            if q.from == 0 {
                // RFC 9162 section 2.1.4 defines consistency proofs only from a non-empty tree.
                return Err(AuditError::OutOfRange(
                    "`from` must be at least 1: RFC 9162 defines no consistency proof from an empty tree".into(),
                ));
            }
            if q.from > cp.size {
                return Err(AuditError::OutOfRange(format!(
                    "size {} is larger than the checkpoint's size {}",
                    q.from, cp.size
                )));
            }
            let proof = merkle::consistency_proof(q.from, cp.size, &DbNodes::new(conn))?;
            Ok((cp, proof))
        })
        .await?;
    Ok(HttpResponse::Ok().json(ConsistencyAnswer {
        from: q.from,
        to: cp.size,
        proof: proof.iter().map(hex::encode).collect(),
        checkpoint: cp.note,
    }))
}

/// Query of `/audit/entries`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    /// First entry.
    start: u64,
    /// One past the last; at most `start + 1000`.
    end: u64,
}

#[derive(Serialize)]
struct EntryOut {
    seq: i64,
    leaf_hash: String,
    leaf: Box<RawValue>,
}

#[derive(Serialize)]
struct EntriesPage {
    entries: Vec<EntryOut>,
}

fn entries_out(rows: Vec<StoredEntry>) -> Result<Vec<EntryOut>, AuditError> {
    rows.into_iter()
        .map(|e| {
            let leaf_hash = hex::encode(merkle::leaf_hash(e.leaf.as_bytes()));
            let leaf = RawValue::from_string(e.leaf)
                .map_err(|_| AuditError::Corrupt(format!("entry {} is not JSON", e.seq)))?;
            Ok(EntryOut {
                seq: e.seq,
                leaf_hash,
                leaf,
            })
        })
        .collect()
}

/// `GET /audit/entries?start=A&end=B`: entries A..B with their leaf bytes (auditors).
#[get("/audit/entries")]
pub async fn entries(
    _auditor: Auditor,
    db: web::Data<Db>,
    query: Query<RangeQuery>,
) -> Result<HttpResponse, Problem> {
    let q = query.into_inner();
    if q.end < q.start || q.end - q.start > MAX_PAGE {
        return Err(AuditError::OutOfRange(format!(
            "ask for 0 to {MAX_PAGE} entries: start <= end <= start + {MAX_PAGE}"
        ))
        .into());
    }
    let rows = db
        .run(move |conn| log::entries(conn, q.start, q.end))
        .await?;
    Ok(HttpResponse::Ok().json(EntriesPage {
        entries: entries_out(rows)?,
    }))
}

/// Query of `/audit/export`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// First entry (default 0).
    start: Option<u64>,
    /// One past the last (default: the latest checkpoint's size).
    end: Option<u64>,
    /// `jsonl` (default) or `csv`.
    format: Option<ExportFormat>,
    /// Add a consistency proof from this size (a checkpoint you kept).
    consistency_from: Option<u64>,
}

/// Sends what is written to it as body chunks of a streamed response.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

/// `GET /audit/export?start=&end=&format=jsonl|csv&consistency_from=`: a contiguous range,
/// streamed, with the checkpoint and proofs needed to verify it offline (auditors).
#[get("/audit/export")]
#[tracing::instrument(name = "audit.export", skip_all)]
pub async fn export_range(
    _auditor: Auditor,
    db: web::Data<Db>,
    cell: web::Data<SignerCell>,
    query: Query<ExportQuery>,
) -> Result<HttpResponse, Problem> {
    let signer = cell.get(&db).await?;
    let q = query.into_inner();
    let format = q.format.unwrap_or(ExportFormat::Jsonl);
    let request = ExportRequest {
        start: q.start.unwrap_or(0),
        end: q.end,
        format,
        consistency_from: q.consistency_from,
    };
    let origin = signer.origin().to_owned();
    // The header is built first, so a bad range is a clean 4xx before any byte is streamed.
    let header = db
        .run(move |conn| export::header(conn, &origin, &request))
        .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let pool = db.get_ref().clone();
    tokio::task::spawn_blocking(move || {
        let failed = tx.clone();
        let result = pool.conn().map_err(AuditError::from).and_then(|mut conn| {
            let mut out = ChannelWriter {
                tx,
                buf: Vec::with_capacity(64 * 1024),
            };
            export::write_body(&mut conn, &header, format, &mut out)
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "audit export stopped");
            // Ends the body with an error, so the client sees a broken transfer, not a short file.
            let _ = failed.blocking_send(Err(std::io::Error::other("export failed")));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let (content_type, ext) = match format {
        ExportFormat::Jsonl => ("application/jsonl", "jsonl"),
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    let mut res = HttpResponse::Ok()
        .content_type(content_type)
        .streaming(stream);
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"writ-audit.{ext}\"")) {
        res.headers_mut().insert(CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// Query of `/audit/view`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewQuery {
    /// Entries at or after this time (RFC 3339 UTC, as in leaves).
    since: Option<String>,
    /// Entries before this time.
    until: Option<String>,
    /// Only this order.
    order: Option<String>,
    /// Only this actor kind.
    actor_kind: Option<String>,
    /// Only this actor id.
    actor_id: Option<String>,
    /// Only this event type.
    event: Option<String>,
    /// Only this jurisdiction.
    jurisdiction: Option<String>,
    /// Only entries after this position (for paging).
    after: Option<u64>,
    /// Page size, at most 1000 (default 100).
    limit: Option<u64>,
}

#[derive(Serialize)]
struct ViewPage {
    complete: bool,
    notice: &'static str,
    entries: Vec<EntryOut>,
    next_after: Option<i64>,
}

/// `GET /audit/view?...`: a filtered reading view (auditors). Not a completeness proof: only a
/// verified export of a contiguous range proves nothing is missing.
#[get("/audit/view")]
pub async fn view(
    _auditor: Auditor,
    db: web::Data<Db>,
    query: Query<ViewQuery>,
) -> Result<HttpResponse, Problem> {
    let q = query.into_inner();
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(AuditError::OutOfRange(format!("limit must be 1 to {MAX_PAGE}")).into());
    }
    for (name, value) in [("since", &q.since), ("until", &q.until)] {
        if let Some(v) = value
            && chrono::DateTime::parse_from_rfc3339(v).is_err()
        {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-query",
                "Invalid query parameter",
            )
            .detail(format!(
                "`{name}` must be an RFC 3339 time such as 2026-11-28T00:00:00Z"
            )));
        }
    }
    let after = q
        .after
        .map(|a| i64::try_from(a).map_err(|_| AuditError::OutOfRange("after is too large".into())))
        .transpose()?;
    let filter = search::Filter {
        since: q.since.as_deref().map(normalise_time),
        until: q.until.as_deref().map(normalise_time),
        order_id: q.order,
        actor_kind: q.actor_kind,
        actor_id: q.actor_id,
        event: q.event,
        jurisdiction: q.jurisdiction,
        after,
        before: None,
    };
    let rows = db
        .run(move |conn| {
            search::search(
                conn,
                &filter,
                search::Direction::OldestFirst,
                i64::try_from(limit).unwrap_or(100),
            )
        })
        .await?;
    let next_after = if rows.len() as u64 == limit {
        rows.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(ViewPage {
        complete: false,
        notice: "A filtered view is for reading. It is not a completeness proof: verify an export of a contiguous range for that.",
        entries: entries_out(rows)?,
        next_after,
    }))
}

/// Times compare as text in the leaves' fixed format; bring a query time to that format.
fn normalise_time(v: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| crate::audit::entry::format_time(t.with_timezone(&chrono::Utc)))
        .unwrap_or_else(|_| v.to_owned())
}
