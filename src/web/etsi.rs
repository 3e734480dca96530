//! `POST /etsi/hi1`: ETSI TS 103 120 (HI-1) messages from authorities' systems.
//!
//! The request is authenticated exactly like the JSON API (a body-bound token, checked before
//! the body is read; the signed body is the XML), then [`crate::etsi::service::receive`] answers
//! it. Authentication failures are problem+json like the rest of the API; anything after that is
//! answered in an `HI1Message`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::Utc;

use crate::db::Db;
use crate::etsi::service::{self, Rules};
use crate::settings::EtsiSettings;
use crate::web::api::{self, ApiState};
use crate::web::problem::Problem;

/// The `[etsi]` settings, shared with the handler.
pub struct EtsiConfig(pub EtsiSettings);

fn require_xml(req: &HttpRequest) -> Result<(), Problem> {
    crate::web::body::require_media_type(
        req,
        &["application/xml", "text/xml"],
        "an HI-1 message must be sent as application/xml",
    )
}

/// Takes an `HI1Message` and answers with the response `HI1Message`.
#[utoipa::path(
    post,
    path = "/etsi/hi1",
    tag = "etsi",
    description = "ETSI TS 103 120 (HI-1): an `HI1Message` (XML) with numbered actions. \
        CREATE of AuthorisationObject, LDTaskObject (becomes a Writ order), LPTaskObject (a \
        preservation order with its hold) and DocumentObject (the order document, PDF); GET and \
        LIST of the objects Writ holds for the sender, with their status from ETSI's \
        dictionaries; GETCSPCONFIG. The header's sender identifier must be the one registered \
        to the authority whose key signed the request token (the token's `bsh` is the SHA-256 \
        of the XML). Answered with status 200 and a response message in which each action has \
        its own answer (which may be an ErrorInformation); a message refused as a whole gets \
        4xx and a response message whose payload is an ErrorInformation.",
    request_body(content = String, content_type = "application/xml",
        description = "An HI1Message with a RequestPayload"),
    responses(
        (status = 200, description = "Answered action by action", body = String, content_type = "application/xml"),
        (status = 400, description = "Not a valid HI1Message, or not addressed to Writ", body = String, content_type = "application/xml"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The sender identifier is not the signer's", body = String, content_type = "application/xml"),
        (status = 409, description = "The transaction identifier was used for another message", body = String, content_type = "application/xml"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/xml", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("request_token" = [])))]
#[post("/etsi/hi1")]
pub async fn hi1(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
    config: web::Data<EtsiConfig>,
    db: web::Data<Db>,
) -> Result<HttpResponse, Problem> {
    let limit = config.0.message_limit_bytes;
    crate::web::body::check_declared_length(&req, limit)?;
    require_xml(&req)?;
    let pre = api::pre_authenticate(&req, &state, &db).await?;
    let body = crate::web::body::read_body(&req, payload, limit).await?;
    let authority = api::finish_authentication(pre, &body, &state, &db).await?;
    let state = state.into_inner();
    let config = config.into_inner();
    // Parsed before a database connection is taken, on a blocking thread: a large message
    // holds neither a connection the other authorities need nor an HTTP worker.
    let limits = service::limits(&config.0);
    let (body, parsed) = web::block(move || {
        let parsed = crate::etsi::parse(&body, &limits);
        (body, parsed)
    })
    .await
    .map_err(|_| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
        )
        .detail("the message could not be read")
    })?;
    let answer = db
        .run(move |conn| {
            let rules = Rules {
                settings: &config.0,
                policies: state.policies(),
                deployment: state.deployment(),
                mail: state.mail(),
                document_limit: state.document_limit(),
                profile: None,
            };
            service::receive_parsed(conn, &authority, &body, parsed, &rules, Utc::now())
        })
        .await?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    response.content_type("application/xml; charset=utf-8");
    if answer.replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(response.body(answer.xml))
}
