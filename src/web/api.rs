//! The order-intake API for authorities' systems (`/api/v1`).
//!
//! Every route authenticates the request by its body-bound token ([`authenticate`]) before
//! anything else is read, then calls one service function of [`crate::orders`]. Order of
//! checks: body size (413), content type (415), token (401/403; a token whose signature does not
//! verify is first held to the failed-authentication throttle of the client's network, 429), the
//! authority's rate limit (429), then the request itself.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, LOCATION};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::authority::spend::{Spend, Spender, Spent};
use crate::authority::throttle;
use crate::authority::token::{self, TokenError};
use crate::db::{Db, DbError, meta};
use crate::orders::clarify::{self, AuthorityMessage};
use crate::orders::intake::{self, DocumentUpload, Rejection, StoredAnswer};
use crate::orders::messages::Message;
use crate::orders::{self, FieldError, InvalidKind, OrderError, OrderView};
use crate::policy::{Deployment, PolicySet};
use crate::settings::ApiSettings;
use crate::web::body::{check_declared_length, read_body, require_json};
use crate::web::client::client_address;
use crate::web::problem::Problem;

/// What the API handlers share.
pub struct ApiState {
    settings: ApiSettings,
    mail: crate::settings::MailSettings,
    audience: tokio::sync::OnceCell<String>,
    policies: Arc<PolicySet>,
    deployment: Deployment,
    /// Spends the requests' tokens in batches, one commit for many requests.
    spender: Spender,
}

impl ApiState {
    /// The state for these settings; starts the token writer on `db`.
    pub fn new(
        settings: ApiSettings,
        policies: Arc<PolicySet>,
        deployment: Deployment,
        mail: crate::settings::MailSettings,
        db: &Db,
    ) -> std::io::Result<Self> {
        let spender = Spender::start(db.clone(), settings.token_max_lifetime_secs)?;
        Ok(Self {
            settings,
            mail,
            audience: tokio::sync::OnceCell::new(),
            policies,
            deployment,
            spender,
        })
    }

    /// The policies orders are decided under.
    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }

    /// The provider's position.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// Reverse proxies whose `X-Forwarded-For` entry is trusted.
    pub fn trusted_proxy_hops(&self) -> usize {
        self.settings.trusted_proxy_hops
    }

    /// Outgoing e-mail settings.
    pub fn mail(&self) -> &crate::settings::MailSettings {
        &self.mail
    }

    /// Whether validations without `aud` and `exp` are still accepted.
    pub fn accept_unbound_validations(&self) -> bool {
        self.settings.accept_unbound_validations
    }

    /// What a validation signature is checked against now.
    fn binding(&self) -> crate::authority::validation::Binding {
        crate::authority::validation::Binding {
            now: Utc::now().timestamp(),
            accept_unbound: self.settings.accept_unbound_validations,
        }
    }

    /// Largest order document, in bytes.
    pub fn document_limit(&self) -> usize {
        self.settings.document_limit_bytes
    }

    /// Largest request body: the document limit in base64, plus room for the order.
    pub fn body_limit(&self) -> usize {
        self.settings.document_limit_bytes / 3 * 4 + 1024 * 1024
    }

    async fn audience(&self, db: &Db) -> Result<String, Problem> {
        if !self.settings.audience.is_empty() {
            return Ok(self.settings.audience.clone());
        }
        let found = self
            .audience
            .get_or_try_init(|| async {
                let id = db.run(|conn| meta::get(conn, "deployment_id")).await?;
                id.map(|id| format!("writ:{id}"))
                    .ok_or_else(|| DbError::Unavailable("the database is not migrated".into()))
            })
            .await?;
        Ok(found.clone())
    }
}

impl From<OrderError> for Problem {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::Invalid { .. } => problem_of_invalid(&e),
            OrderError::NotFound => Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found")
                .detail("no such order"),
            OrderError::Conflict(m) => {
                Problem::new(StatusCode::CONFLICT, "conflict", "Conflict").detail(m)
            }
            OrderError::Db(e) => e.into(),
            OrderError::Audit(e) => e.into(),
        }
    }
}

/// The HTTP status the API answers each kind of invalid input with: the one place orders'
/// faults get their numbers (a kept rejection and an idempotent replay record this status too).
pub fn status_of(kind: InvalidKind) -> StatusCode {
    match kind {
        InvalidKind::Syntax => StatusCode::BAD_REQUEST,
        InvalidKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        InvalidKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// [`status_of`] as a number, for the records that keep it.
fn answered(kind: InvalidKind) -> u16 {
    status_of(kind).as_u16()
}

/// The problem document of an invalid submission (other errors map in `From`).
fn problem_of_invalid(e: &OrderError) -> Problem {
    let OrderError::Invalid {
        kind,
        slug,
        title,
        errors,
        submission_id,
    } = e
    else {
        return Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
        );
    };
    let status = status_of(*kind);
    let detail = errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ");
    let mut p = Problem::new(status, slug, title)
        .detail(detail)
        .errors(errors.clone());
    p.submission_id = submission_id.clone();
    p
}

/// Keeps a rejected submission and, under its Idempotency-Key, the answer given, so that a
/// retry with the same key and body gets the same answer (and the same `submission_id`).
fn reject_and_remember(
    conn: &mut crate::db::DbConn,
    authority: &str,
    body: &[u8],
    key: Option<&str>,
    hash: &str,
    error: OrderError,
    now: chrono::DateTime<Utc>,
) -> OrderError {
    let rejected = intake::reject(conn, authority, body, error, answered, now);
    if let (Some(key), OrderError::Invalid { kind, .. }) = (key, &rejected) {
        let problem = problem_of_invalid(&rejected);
        if let Ok(json) = serde_json::to_string(&problem)
            && let Err(e) =
                intake::remember(conn, authority, key, hash, answered(*kind), &json, now)
        {
            tracing::warn!(error = %e, "could not keep the rejection under its idempotency key");
        }
    }
    rejected
}

/// Now, to the microsecond: the precision the database keeps, so that stored and answered
/// times agree.
/// A signed package as served to an authority: the archive, named by its hash, with the hash
/// in `X-Package-SHA256` (the API's download and the e-Evidence fetch by reference).
pub(crate) fn package_response(tar: Vec<u8>, sha: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-tar")
        .insert_header((
            "Content-Disposition",
            format!(
                "attachment; filename=\"writ-package-{}.tar\"",
                &sha[..12.min(sha.len())]
            ),
        ))
        .insert_header(("X-Package-SHA256", sha))
        .body(tar)
}

fn now_micros() -> chrono::DateTime<Utc> {
    crate::metadata::normalize::from_micros(Utc::now().timestamp_micros())
}

fn too_many(detail: &str, now: i64) -> Problem {
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-requests",
        "Too many requests",
    )
    .detail(detail)
    .retry_after(throttle::retry_after(now))
}

/// A request whose token passed the first phase: signature and claims, before the body.
pub struct PreAuthenticated {
    checked: token::Checked,
    source: String,
}

fn unauthenticated(e: &TokenError) -> Problem {
    let status = if *e == TokenError::Suspended {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::UNAUTHORIZED
    };
    Problem::new(status, "unauthenticated", "Request not authenticated")
        .reason(e.class())
        .detail(e.to_string())
}

/// The first phase of authentication, before the body is read: the token's key, signature, and
/// claims, and that it is bound to this method and path. A token whose key and signature verify
/// never meets the failed-authentication throttle of the client's network: a neighbour's bad
/// tokens cannot lock a registered authority out. Any other token from a throttled network is
/// refused (429) without being counted.
pub async fn pre_authenticate(
    req: &HttpRequest,
    state: &ApiState,
    db: &Db,
) -> Result<PreAuthenticated, Problem> {
    let (pre, ()) = pre_authenticate_and(req, state, db, |_, _| ()).await?;
    Ok(pre)
}

/// [`pre_authenticate`], then `read` for the authority whose key and signature verified, in
/// the same database task: a GET costs one hand-off to the blocking pool instead of two. What
/// `read` returns is held back until [`finish_authentication`] has passed (body binding,
/// suspension, single use, rate limit); a request refused there never sees it.
async fn pre_authenticate_and<T, F>(
    req: &HttpRequest,
    state: &ApiState,
    db: &Db,
    read: F,
) -> Result<(PreAuthenticated, T), Problem>
where
    T: Send + 'static,
    F: FnOnce(&mut crate::db::DbConn, &str) -> T + Send + 'static,
{
    let audience = state.audience(db).await?;
    let source = client_address(req, state.settings.trusted_proxy_hops)
        .map_or_else(|| "unknown".to_owned(), throttle::network_of);
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    let method = req.method().as_str().to_owned();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned());
    let settings = state.settings.clone();
    db.run(move |conn| {
        let now = Utc::now().timestamp();
        let checked = match &token {
            None => Err(TokenError::Malformed(
                "no `Authorization: Bearer` request token".into(),
            )),
            Some(t) => token::check(conn, t, &audience, settings.token_max_lifetime_secs, now),
        }
        .and_then(|c| {
            if !c.claims.htm.eq_ignore_ascii_case(&method) {
                Err(TokenError::BodyMismatch("method (`htm`)".into()))
            } else if c.claims.htu != path {
                Err(TokenError::BodyMismatch("path (`htu`)".into()))
            } else {
                Ok(c)
            }
        });
        match checked {
            Ok(checked) => {
                let read = read(conn, &checked.authority_id);
                Ok::<_, DbError>(Ok((PreAuthenticated { checked, source }, read)))
            }
            Err(TokenError::Unavailable(e)) => Err(DbError::Unavailable(e)),
            Err(e) => {
                // Only tokens no registered key vouches for meet the network's budget.
                let unsigned = matches!(
                    e,
                    TokenError::Malformed(_)
                        | TokenError::UnknownKey
                        | TokenError::AlgorithmMismatch
                        | TokenError::BadSignature
                );
                // Counted and checked in one step: concurrent bad tokens cannot all pass.
                if unsigned
                    && !throttle::charge_failure(
                        conn,
                        &source,
                        e.class(),
                        i64::from(settings.auth_failure_limit_per_minute),
                        now,
                    )?
                {
                    return Ok(Err(too_many(
                        "too many failed authentications from your network; wait and retry",
                        now,
                    )));
                }
                if !unsigned {
                    throttle::record_failure(conn, &source, e.class(), now)?;
                }
                Ok(Err(unauthenticated(&e)))
            }
        }
    })
    .await?
}

/// The second phase, once the body is read: the body hash, the authority's status, the single
/// use of the token, and the authority's rate limit. Returns the authority's id.
///
/// The token's single use and the rate counter are written by the [`Spender`], in one
/// transaction with the other requests queued at the same moment (group commit): the request
/// is answered only after that transaction committed.
pub async fn finish_authentication(
    pre: PreAuthenticated,
    body: &[u8],
    state: &ApiState,
    db: &Db,
) -> Result<String, Problem> {
    let hash = token::body_hash(body);
    let PreAuthenticated { checked, source } = pre;
    let verified = match token::bound(checked, &hash) {
        Ok(v) => v,
        Err(e) => {
            let class = e.class();
            db.run(move |conn| {
                throttle::record_failure(conn, &source, class, Utc::now().timestamp())
                    .map_err(DbError::from)
            })
            .await?;
            return Err(unauthenticated(&e));
        }
    };
    match state.spender.spend(Spend::of(&verified, &source)).await? {
        Spent::Accepted { count } if count > i64::from(state.settings.rate_limit_per_minute) => {
            Err(too_many(
                "the authority's request rate limit is reached; wait and retry",
                Utc::now().timestamp(),
            ))
        }
        Spent::Accepted { .. } => Ok(verified.authority_id),
        Spent::Replay => Err(unauthenticated(&TokenError::Replay)),
    }
}

/// Authenticates a request whose body is already known (GETs: the empty body).
pub async fn authenticate(
    req: &HttpRequest,
    body: &[u8],
    state: &ApiState,
    db: &Db,
) -> Result<String, Problem> {
    let pre = pre_authenticate(req, state, db).await?;
    finish_authentication(pre, body, state, db).await
}

/// Authenticates a GET (the empty body) and runs `read` for the authority in the database task
/// that checks the token (see [`pre_authenticate_and`]); its result is returned only once the
/// token is spent.
async fn authenticated_read<T, F>(
    req: &HttpRequest,
    state: &ApiState,
    db: &Db,
    read: F,
) -> Result<T, Problem>
where
    T: Send + 'static,
    F: FnOnce(&mut crate::db::DbConn, &str) -> T + Send + 'static,
{
    let (pre, read) = pre_authenticate_and(req, state, db, read).await?;
    finish_authentication(pre, &[], state, db).await?;
    Ok(read)
}

/// An authenticated JSON POST: who sent it, its exact body, its idempotency key and the hash
/// an idempotency key is bound to.
struct SignedPost {
    authority: String,
    body: Vec<u8>,
    key: Option<String>,
    hash: String,
}

/// The common start of every JSON POST: size and type first, the token before the body is
/// read, then the body, its binding to the token, and the idempotency key.
async fn signed_post(
    req: &HttpRequest,
    payload: web::Payload,
    state: &ApiState,
    db: &Db,
) -> Result<SignedPost, Problem> {
    check_declared_length(req, state.body_limit())?;
    require_json(req)?;
    let pre = pre_authenticate(req, state, db).await?;
    let body = read_body(req, payload, state.body_limit()).await?;
    let authority = finish_authentication(pre, &body, state, db).await?;
    let key = idempotency_key(req)?;
    let hash = request_hash(req, &body);
    Ok(SignedPost {
        authority,
        body,
        key,
        hash,
    })
}

/// The signed, idempotent POST path the API's writes share (new orders, messages): an earlier
/// answer under the same Idempotency-Key and body is replayed; otherwise `check` reads the body
/// (an `Ok(Err(_))` is a submission to keep as rejected and, under the key, as the answer; an
/// `Err(_)` is answered as it is), and `store` runs in the transaction that records the key with
/// its answer.
fn answer_signed_post<C>(
    conn: &mut crate::db::DbConn,
    post: &SignedPost,
    now: chrono::DateTime<Utc>,
    check: impl FnOnce(&mut crate::db::DbConn) -> Result<Result<C, OrderError>, OrderError>,
    store: impl FnOnce(&mut crate::db::DbConn, C) -> Result<(u16, String), OrderError>,
) -> Result<StoredAnswer, OrderError> {
    let authority = post.authority.as_str();
    if let Some(k) = &post.key
        && let Some(earlier) = intake::replay(conn, authority, k, &post.hash)?
    {
        return Ok(earlier);
    }
    let checked = match check(conn)? {
        Ok(c) => c,
        Err(e) => {
            return Err(reject_and_remember(
                conn,
                authority,
                &post.body,
                post.key.as_deref(),
                &post.hash,
                e,
                now,
            ));
        }
    };
    intake::idempotent(conn, authority, post.key.as_deref(), &post.hash, now, |c| {
        store(c, checked)
    })
}

/// The `Idempotency-Key` header, if sent: 1 to 128 visible ASCII characters.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, Problem> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 128 && k.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(k.to_owned()))
        }
        _ => Err(
            Problem::new(StatusCode::BAD_REQUEST, "invalid-header", "Invalid header")
                .detail("Idempotency-Key must be 1 to 128 visible ASCII characters")
                .errors(vec![FieldError::new(
                    "Idempotency-Key",
                    "must be 1 to 128 visible ASCII characters",
                )]),
        ),
    }
}

fn request_hash(req: &HttpRequest, body: &[u8]) -> String {
    let mut all = Vec::with_capacity(body.len() + 64);
    all.extend_from_slice(req.method().as_str().as_bytes());
    all.push(b'\n');
    all.extend_from_slice(req.path().as_bytes());
    all.push(b'\n');
    all.extend_from_slice(body);
    crate::digest::sha256_hex(&all)
}

fn stored_response(answer: StoredAnswer, location: Option<String>) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut r = HttpResponse::build(status);
    r.content_type(if status.is_client_error() || status.is_server_error() {
        crate::web::problem::PROBLEM_JSON
    } else {
        "application/json"
    });
    if let Some(l) = location {
        r.insert_header((LOCATION, l));
    }
    if answer.replayed {
        r.insert_header(("Idempotent-Replayed", "true"));
    }
    r.body(answer.body)
}

/// What the API tells an integrator before it has a key: the audience its tokens must name
/// and the limits.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiInfo {
    /// The `aud` claim every request token must carry.
    pub audience: String,
    /// Longest accepted token lifetime (`exp` - `iat`), seconds.
    pub token_max_lifetime_secs: i64,
    /// Largest order document (decoded), bytes.
    pub document_limit_bytes: usize,
    /// Largest request body, bytes.
    pub body_limit_bytes: usize,
    /// Requests per authority per minute.
    pub rate_limit_per_minute: u32,
    /// Where the OpenAPI document is.
    pub openapi: String,
}

/// The API's audience and limits (no authentication).
#[utoipa::path(get, path = "/api/v1", tag = "api",
    responses((status = 200, description = "Audience and limits", body = ApiInfo)))]
#[get("/api/v1")]
pub async fn info(state: web::Data<ApiState>, db: web::Data<Db>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(ApiInfo {
        audience: state.audience(&db).await?,
        token_max_lifetime_secs: state.settings.token_max_lifetime_secs,
        document_limit_bytes: state.settings.document_limit_bytes,
        body_limit_bytes: state.body_limit(),
        rate_limit_per_minute: state.settings.rate_limit_per_minute,
        openapi: "/api/openapi.json".into(),
    }))
}

/// Submit an order.
///
/// The body carries the order (the policy engine's `Order` JSON), the signed order document
/// and, optionally, the validator's signature over the order digest. The issuer's kind and
/// country are taken from the authority registry, never from the order. The answer holds the
/// policy decision; it says nothing about whether any target exists at the provider.
/// A malformed submission is kept as a rejected-submission record whose id the problem names.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders",
    request_body(content = intake::Submission, content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Makes a retry safe: the same key and body return the first answer; the same key with another body is a 409. Scoped to the authority. 1 to 128 visible ASCII characters.",
        pattern = "^[!-~]{1,128}$")),
    responses(
        (status = 201, description = "Received and decided", body = OrderView,
            headers(("Location" = String, description = "The order's URL"))),
        (status = 400, description = "Not JSON, or a bad header", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated (see `reason`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The authority is suspended", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Idempotency-Key reused for another body", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body or document too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The order is not valid (see `errors`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit or failure throttle", body = Problem, content_type = "application/problem+json"),
    ),
    security(("request_token" = [])))]
#[post("/api/v1/orders")]
pub async fn submit(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
    db: web::Data<Db>,
) -> Result<HttpResponse, Problem> {
    let post = signed_post(&req, payload, &state, &db).await?;
    let state = state.into_inner();
    let answer = db
        .run(move |conn| {
            let now = now_micros();
            let authority = post.authority.as_str();
            let mut location = None;
            let check = |c: &mut crate::db::DbConn| {
                Ok(intake::check(
                    c,
                    &post.body,
                    authority,
                    state.settings.document_limit_bytes,
                    true,
                    &state.binding(),
                ))
            };
            let answer = answer_signed_post(conn, &post, now, check, |c, checked| {
                let view = intake::store(
                    c,
                    authority,
                    &checked,
                    &state.policies,
                    &state.deployment,
                    &intake::Receipt {
                        received_at: now,
                        entered_by: None,
                        mail: Some(&state.mail),
                        channel: "api",
                    },
                    now,
                )?;
                location = Some(format!("/api/v1/orders/{}", view.id));
                let body = serde_json::to_string(&view)
                    .map_err(|e| OrderError::Conflict(e.to_string()))?;
                Ok((201, body))
            })?;
            if location.is_some() {
                tracing::info!(order.id = %location.as_deref().unwrap_or_default(), "order received");
            }
            Ok::<_, OrderError>((answer, location))
        })
        .await?;
    let (answer, location) = answer;
    let location = location.or_else(|| {
        serde_json::from_str::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| v["id"].as_str().map(|id| format!("/api/v1/orders/{id}")))
    });
    Ok(stored_response(answer, location))
}

/// Read one of your orders: its status and current decision. Another authority's order is a
/// 404, as is a missing one.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "The order id")),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order of yours", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The authority is suspended", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit or failure throttle", body = Problem, content_type = "application/problem+json"),
    ),
    security(("request_token" = [])))]
#[get("/api/v1/orders/{id}")]
pub async fn order(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<ApiState>,
    db: web::Data<Db>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let view = authenticated_read(&req, &state, &db, move |conn, authority| {
        orders::view(conn, &id, Some(authority))
    })
    .await??;
    Ok(HttpResponse::Ok().json(view))
}

/// The body of a withdrawal.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Withdrawal {
    /// Why the order is withdrawn (kept as a message): 1 to 20000 characters, not all blank.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 20000,
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub reason: Option<String>,
}

/// Parses a request body that must be a JSON object (or, where `T` allows it, `null`).
fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Problem> {
    // serde reads a struct from an array of its fields too; the API takes objects only.
    if body.trim_ascii_start().starts_with(b"[") {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "Invalid request body",
        )
        .detail("(body): must be a JSON object, not an array")
        .errors(vec![FieldError::new(
            "(body)",
            "must be a JSON object, not an array",
        )]));
    }
    // Two readers of one body must read the same thing: a key named twice is refused.
    if let Err(crate::json::StrictError::Duplicate(d)) = crate::json::duplicate_key(body) {
        let field = d.path("");
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "duplicate-key",
            "The body names a key twice",
        )
        .detail(format!("{field}: {}", crate::json::DUPLICATE_KEY_MESSAGE))
        .errors(vec![FieldError::new(
            field,
            crate::json::DUPLICATE_KEY_MESSAGE,
        )]));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let status = if inner.is_syntax() || inner.is_eof() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        let field = if field == "." {
            "(body)".to_owned()
        } else {
            field
        };
        Problem::new(status, "invalid-body", "Invalid request body")
            .detail(format!("{field}: {inner}"))
            .errors(vec![FieldError::new(field, inner.to_string())])
    })
}

/// Withdraw one of your orders: its holds end. A released or refused order cannot be
/// withdrawn (409); withdrawing twice answers as the first time.
#[utoipa::path(post, path = "/api/v1/orders/{id}/withdraw", tag = "orders",
    params(("id" = String, Path, description = "The order id")),
    request_body(content = Option<Withdrawal>, content_type = "application/json",
        description = "Optional: an empty body or `null` withdraws without a reason."),
    responses(
        (status = 200, description = "Withdrawn", body = OrderView),
        (status = 400, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The authority is suspended", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already released or refused", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a withdrawal (see `errors`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit or failure throttle", body = Problem, content_type = "application/problem+json"),
    ),
    security(("request_token" = [])))]
#[post("/api/v1/orders/{id}/withdraw")]
pub async fn withdraw(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<ApiState>,
    db: web::Data<Db>,
) -> Result<HttpResponse, Problem> {
    let pre = pre_authenticate(&req, &state, &db).await?;
    let body = read_body(&req, payload, 64 * 1024).await?;
    if !body.is_empty() {
        require_json(&req)?;
    }
    let authority = finish_authentication(pre, &body, &state, &db).await?;
    // No body and `null` both mean "no reason given".
    let withdrawal: Withdrawal = if body.is_empty() {
        Withdrawal::default()
    } else {
        parse_json::<Option<Withdrawal>>(&body)?.unwrap_or_default()
    };
    let id = id.into_inner();
    let view = db
        .run(move |conn| {
            crate::db::write_tx(conn, |c| {
                clarify::withdraw(
                    c,
                    &authority,
                    &id,
                    withdrawal.reason.as_deref(),
                    now_micros(),
                )
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Read the clarification messages of one of your orders, oldest first.
#[utoipa::path(get, path = "/api/v1/orders/{id}/messages", tag = "orders",
    params(("id" = String, Path, description = "The order id")),
    responses(
        (status = 200, description = "The messages", body = Vec<Message>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order of yours", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The authority is suspended", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit or failure throttle", body = Problem, content_type = "application/problem+json"),
    ),
    security(("request_token" = [])))]
#[get("/api/v1/orders/{id}/messages")]
pub async fn messages(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<ApiState>,
    db: web::Data<Db>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let list = authenticated_read(&req, &state, &db, move |conn, authority| {
        crate::orders::messages::messages(conn, &id, Some(authority))
    })
    .await??;
    Ok(HttpResponse::Ok().json(list))
}

/// The body of an authority's message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody<'a> {
    text: String,
    #[serde(borrow, default)]
    order: Option<&'a RawValue>,
    #[serde(default)]
    document: Option<DocumentUpload>,
    #[serde(default)]
    validation: Option<String>,
}

/// The body of an authority's message (documentation type).
#[derive(Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// The answer or information, 1 to 20000 characters, not all blank.
    #[schema(
        min_length = 1,
        max_length = 20000,
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub text: String,
    /// An amended order: it replaces the current one, is decided afresh, and sends the order
    /// back to review (earlier approvals no longer count).
    pub order: Option<crate::policy::Order>,
    /// The signed document of the amended order: required with an amendment (an amended order
    /// must rest on a document signed for it). Not used without an amended `order`, but refused
    /// (422, or 413 when too large) when it is no PDF or not base64.
    pub document: Option<DocumentUpload>,
    /// The validator's signature over the amended order's digest (a compact JWS), bound to the
    /// submitting authority (`aud`) and a time (`exp`) as for a submission. Not used without
    /// an amended `order`, but refused (422) when malformed.
    #[schema(pattern = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")]
    pub validation: Option<String>,
}

/// Answer the legal team, or send information, optionally with an amended order.
#[utoipa::path(post, path = "/api/v1/orders/{id}/messages", tag = "orders",
    params(("id" = String, Path, description = "The order id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe, as for order submission: 1 to 128 visible ASCII characters.",
            pattern = "^[!-~]{1,128}$")),
    request_body(content = NewMessage, content_type = "application/json"),
    responses(
        (status = 201, description = "Stored", body = Message),
        (status = 400, description = "Not JSON, or a bad header", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The authority is suspended", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is closed, or Idempotency-Key reused for another body", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body or document too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid message or amendment", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit or failure throttle", body = Problem, content_type = "application/problem+json"),
    ),
    security(("request_token" = [])))]
#[post("/api/v1/orders/{id}/messages")]
pub async fn post_message(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<ApiState>,
    db: web::Data<Db>,
) -> Result<HttpResponse, Problem> {
    let post = signed_post(&req, payload, &state, &db).await?;
    let state = state.into_inner();
    let id = id.into_inner();
    let answer = db
        .run(move |conn| {
            let now = now_micros();
            let authority = post.authority.as_str();
            let check = |c: &mut crate::db::DbConn| {
                let message: MessageBody<'_> =
                    parse_json(&post.body).map_err(problem_to_invalid)?;
                // A validation and a document belong to an amended order; without one they are
                // not used, but a malformed one is still refused by name rather than taken
                // silently.
                if message.order.is_none() {
                    let mut errors = Vec::new();
                    if let Some(v) = &message.validation
                        && !is_compact_jws(v)
                    {
                        errors.push(FieldError::new(
                            "validation",
                            "must be a compact JWS: three base64url parts joined by `.`",
                        ));
                    }
                    if let Err(e) = intake::check_document(
                        message.document.clone().map(Into::into),
                        false,
                        state.settings.document_limit_bytes,
                        &mut errors,
                    ) {
                        return Ok(Err(e));
                    }
                    if !errors.is_empty() {
                        return Ok(Err(OrderError::Invalid {
                            kind: InvalidKind::Unprocessable,
                            slug: "invalid-message",
                            title: "The message is not valid".into(),
                            errors,
                            submission_id: None,
                        }));
                    }
                }
                let amendment = message.order.map(|raw| {
                    intake::check_parts(
                        c,
                        raw,
                        message.document.clone().map(Into::into),
                        message.validation.clone(),
                        authority,
                        state.settings.document_limit_bytes,
                        true,
                        &state.binding(),
                    )
                });
                Ok(match amendment.transpose() {
                    Ok(amendment) => Ok((message.text, amendment)),
                    Err(e) => Err(e),
                })
            };
            answer_signed_post(conn, &post, now, check, |c, (text, amendment)| {
                let stored = clarify::answer(
                    c,
                    authority,
                    &id,
                    &AuthorityMessage {
                        text: &text,
                        amendment,
                    },
                    &state.policies,
                    &state.deployment,
                    now,
                )?;
                let body = serde_json::to_string(&stored)
                    .map_err(|e| OrderError::Conflict(e.to_string()))?;
                Ok((201, body))
            })
        })
        .await?;
    Ok(stored_response(answer, None))
}

/// Whether `v` has the form of a compact JWS: three non-empty base64url parts joined by `.`.
fn is_compact_jws(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A body [`parse_json`] refused (400 or 422), as the order workflow's fault of that kind.
fn problem_to_invalid(p: Problem) -> OrderError {
    let kind = if p.status == StatusCode::BAD_REQUEST.as_u16() {
        InvalidKind::Syntax
    } else if p.status == StatusCode::PAYLOAD_TOO_LARGE.as_u16() {
        InvalidKind::TooLarge
    } else {
        InvalidKind::Unprocessable
    };
    OrderError::Invalid {
        kind,
        slug: "invalid-body",
        title: p.title,
        errors: p.errors,
        submission_id: None,
    }
}

/// Download the released disclosure package of one of your orders.
///
/// A POSIX tar archive: `records.json`, one CSV per category, `scope.json`, `manifest.json`
/// and `manifest.sig` (Ed25519 over the manifest; the key is at `/packages/public-key` and
/// verifiable offline with `writ package verify`), plus, outside the signed part,
/// `audit-proof.json`: the release's audit entry with its inclusion proof in a signed audit
/// checkpoint. Until the order is released this is a 409 naming the order's status.
#[utoipa::path(get, path = "/api/v1/orders/{id}/disclosure", tag = "orders",
    params(("id" = String, Path, description = "The order id")),
    responses(
        (status = 200, description = "The package (application/x-tar)", content_type = "application/x-tar",
            headers(("X-Package-SHA256" = String, description = "SHA-256 of the signed archive, before the proof was appended"))),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Nothing released (yet)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Released, but deleted after the retention period", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The authority is suspended", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit or failure throttle", body = Problem, content_type = "application/problem+json"),
    ),
    security(("request_token" = [])))]
#[get("/api/v1/orders/{id}/disclosure")]
pub async fn disclosure(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<ApiState>,
    db: web::Data<Db>,
    cell: web::Data<crate::audit::service::SignerCell>,
) -> Result<HttpResponse, Problem> {
    let authority = authenticate(&req, &[], &state, &db).await?;
    let signer = cell.get(&db).await?;
    let id = id.into_inner();
    let found = db
        .run(move |conn| {
            let view = orders::view(conn, &id, Some(&authority))?;
            match crate::orders::approval::download(conn, &signer, &authority, &id, Utc::now())? {
                Some(found) => Ok::<_, OrderError>(Ok(found)),
                None => Ok(Err(view.status)),
            }
        })
        .await?;
    match found {
        Ok((tar, sha)) => Ok(package_response(tar, sha)),
        Err(crate::orders::OrderStatus::Released) => Err(Problem::new(
            StatusCode::GONE,
            "package-deleted",
            "Package deleted",
        )
        .detail("the package was deleted after its retention period; its hash stays on record")),
        Err(crate::orders::OrderStatus::Withdrawn) => Err(Problem::new(
            StatusCode::CONFLICT,
            "not-released",
            "Nothing released",
        )
        .detail("the order was withdrawn; nothing is served for it, and anything released before is to be deleted")),
        Err(status) => Err(
            Problem::new(StatusCode::CONFLICT, "not-released", "Nothing released").detail(format!(
                "nothing has been released for this order; its status is {}",
                status.as_str()
            )),
        ),
    }
}

/// Read one of your rejected submissions: what Writ received (its hash and size) and why it
/// was refused.
#[utoipa::path(get, path = "/api/v1/rejections/{id}", tag = "orders",
    params(("id" = String, Path, description = "The rejected submission's id (`submission_id` of the problem)")),
    responses(
        (status = 200, description = "The record", body = Rejection),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such record of yours", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The authority is suspended", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit or failure throttle", body = Problem, content_type = "application/problem+json"),
    ),
    security(("request_token" = [])))]
#[get("/api/v1/rejections/{id}")]
pub async fn rejection(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<ApiState>,
    db: web::Data<Db>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let found = authenticated_read(&req, &state, &db, move |conn, authority| {
        intake::rejection(conn, authority, &id)
    })
    .await?
    .map_err(|e| match e {
        OrderError::NotFound => Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found")
            .detail("no such rejected submission"),
        other => other.into(),
    })?;
    Ok(HttpResponse::Ok().json(found))
}
