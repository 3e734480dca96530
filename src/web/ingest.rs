//! `POST /api/v1/ingest/{accounts|ip-events}`: the provider's own systems feed metadata, one
//! bearer token per feeding system (configured as hashes), with the same validation as
//! `writ import`. Each call is one import in the audit log, with the feeder as its actor.

use std::future::{Ready, ready};

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, post, web};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::audit::{Actor, ActorKind};
use crate::db::Db;
use crate::metadata::MetadataError;
use crate::metadata::import::{self, Format, ImportOptions};
use crate::metadata::records::RecordKind;
use crate::settings::{Feeder as FeederSetting, MetadataSettings};
use crate::web::auth::Unauthorized;
use crate::web::problem::Problem;

/// The configured feeders: name and token hash.
#[derive(Debug, Clone, Default)]
pub struct FeederTokens(Vec<(String, [u8; 32])>);

impl FeederTokens {
    /// From the settings (validated there).
    pub fn from_settings(feeders: &[FeederSetting]) -> Self {
        Self(
            feeders
                .iter()
                .filter_map(|f| {
                    let hash = hex::decode(&f.token_sha256).ok()?;
                    Some((f.name.clone(), <[u8; 32]>::try_from(hash.as_slice()).ok()?))
                })
                .collect(),
        )
    }

    /// The feeder whose token this is; every hash is compared, in constant time.
    fn identify(&self, token: &str) -> Option<String> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (name, hash) in &self.0 {
            if bool::from(presented.ct_eq(hash)) {
                found = Some(name.clone());
            }
        }
        found
    }
}

/// A request authenticated as one of the provider's feeding systems.
#[derive(Debug, Clone)]
pub struct Feeder(pub String);

impl FromRequest for Feeder {
    type Error = Unauthorized;
    type Future = Ready<Result<Self, Unauthorized>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let feeders = req.app_data::<web::Data<FeederTokens>>();
        ready(match (token, feeders) {
            (None, _) => Err(Unauthorized::new("a feeder bearer token is required")),
            (Some(t), Some(f)) => f
                .identify(t)
                .map(Feeder)
                .ok_or(Unauthorized::new("the bearer token is not a feeder token")),
            (Some(_), None) => Err(Unauthorized::new("the bearer token is not a feeder token")),
        })
    }
}

#[derive(Serialize)]
struct Rejected {
    line: u64,
    reason: String,
}

#[derive(Serialize)]
struct IngestAnswer {
    import_id: String,
    records: u64,
    new: u64,
    changed: u64,
    unchanged: u64,
    rejected: u64,
    rejects: Vec<Rejected>,
    sha256: String,
}

fn problem(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Problem {
    Problem::new(status, slug, title).detail(detail)
}

/// `POST /api/v1/ingest/{kind}` with a JSON Lines (`application/x-ndjson`) or CSV (`text/csv`)
/// body. Answers the import summary and every rejected record's line and reason.
#[post("/api/v1/ingest/{kind}")]
#[tracing::instrument(name = "metadata.ingest", skip_all)]
pub async fn ingest(
    feeder: Feeder,
    req: HttpRequest,
    kind: web::Path<String>,
    payload: web::Payload,
    db: web::Data<Db>,
    settings: web::Data<MetadataSettings>,
) -> Result<HttpResponse, Problem> {
    let kind = match kind.as_str() {
        "accounts" => RecordKind::Accounts,
        "ip-events" => RecordKind::IpEvents,
        _ => {
            return Err(problem(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                "ingest accepts `accounts` or `ip-events`",
            ));
        }
    };
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let format = match media.as_str() {
        "application/x-ndjson" | "application/jsonl" | "application/json-lines" => Format::Jsonl,
        "text/csv" => Format::Csv,
        _ => {
            return Err(problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send application/x-ndjson (JSON Lines) or text/csv",
            ));
        }
    };
    // Read only now, after the feeder's token and the request were checked; a body over the
    // limit is a 413 naming it, whether declared up front or found while streaming.
    let limit = settings.ingest_limit_bytes;
    let body = crate::web::body::read_body(&req, payload, limit)
        .await
        .map_err(|p| {
            if p.status == StatusCode::PAYLOAD_TOO_LARGE.as_u16() {
                crate::web::too_large(limit, "metadata.ingest_limit_bytes")
            } else {
                p
            }
        })?;
    let options = ImportOptions {
        kind,
        format,
        batch_rows: settings.import_batch_rows,
        source: format!("ingest:{}", feeder.0),
        actor: Actor::new(ActorKind::Feeder, feeder.0.clone()),
    };
    let pool = db.get_ref().clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut rejects = Vec::new();
        let summary = import::import(
            &pool,
            std::io::Cursor::new(body),
            &options,
            &mut rejects,
            &|_, _| {},
        )?;
        Ok::<_, MetadataError>((summary, rejects))
    })
    .await
    .map_err(|_| {
        problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the ingest task failed",
        )
    })?;
    let (summary, rejects) = match outcome {
        Ok(v) => v,
        Err(MetadataError::Invalid(m)) => {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "invalid-records",
                "Invalid records",
                m,
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "ingest failed");
            return Err(problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "the ingest could not be stored; retry later",
            ));
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(rejects.as_slice());
    let rejects = reader
        .records()
        .filter_map(Result::ok)
        .map(|r| Rejected {
            line: r.get(0).and_then(|l| l.parse().ok()).unwrap_or(0),
            reason: r.get(1).unwrap_or_default().to_owned(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(IngestAnswer {
        import_id: summary.import_id,
        records: summary.records,
        new: summary.new,
        changed: summary.changed,
        unchanged: summary.unchanged,
        rejected: summary.rejected,
        rejects,
        sha256: summary.sha256,
    }))
}
