//! `POST /eevidence/{endpoint}`: the EU e-Evidence endpoints the national system's interface
//! calls (EEVIDENCE.md section 2). Each takes an `HI1Message` and is answered synchronously in
//! one, by [`crate::etsi::service`] with the e-Evidence profile layered on it.
//!
//! Authentication is [`authenticate`], the one place it happens for these endpoints: a pinned
//! mutual-TLS peer, or the body-bound authority token as at `/etsi/hi1`.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, get, post, web};
use chrono::Utc;

use crate::db::Db;
use crate::eevidence::Endpoint;
use crate::eevidence::inbound::EevidenceProfile;
use crate::etsi::service::{self, Rules};
use crate::web::api::{self, ApiState};
use crate::web::etsi::EtsiConfig;
use crate::web::problem::Problem;
use crate::web::tls::PeerAuthority;

/// Authenticates a call to an e-Evidence endpoint and reads its body: the registered
/// authority's id and the body. The ONE place these endpoints authenticate.
///
/// Two ways, either sufficing, neither absent (deny by default):
/// - a verified client certificate pinned to an active authority ([`PeerAuthority`], put in
///   the request by `web::tls::require_pinned_peer` on the mutual-TLS prefixes);
/// - the body-bound request token, as at `/etsi/hi1`.
///
/// With both, they must name the same authority. Without either: 401. How the national
/// system's interface authenticates is not public yet (EEVIDENCE.md section 1 [?]), hence both.
pub async fn authenticate(
    req: &HttpRequest,
    payload: web::Payload,
    state: &web::Data<ApiState>,
    db: &web::Data<Db>,
    limit: usize,
) -> Result<(String, Vec<u8>), Problem> {
    let peer = req.extensions().get::<PeerAuthority>().cloned();
    let token = req.headers().contains_key(header::AUTHORIZATION);
    if let (Some(peer), false) = (&peer, token) {
        let body = crate::web::body::read_body(req, payload, limit).await?;
        return Ok((peer.authority_id.clone(), body));
    }
    let pre = api::pre_authenticate(req, state, db).await?;
    let body = crate::web::body::read_body(req, payload, limit).await?;
    let authority = api::finish_authentication(pre, &body, state, db).await?;
    if let Some(peer) = peer
        && peer.authority_id != authority
    {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "client-certificate-mismatch",
            "The client certificate and the token name different authorities",
        )
        .detail(
            "The client certificate is pinned to another authority than the one whose key \
             signed the request token.",
        ));
    }
    Ok((authority, body))
}

/// Takes an `HI1Message` at one of the e-Evidence endpoints and answers with the response
/// `HI1Message`.
#[utoipa::path(
    post,
    path = "/eevidence/{endpoint}",
    tag = "eevidence",
    description = "EU e-Evidence (Regulation (EU) 2023/1543) over ETSI TS 104 144, the \
        e-Evidence profile of TS 103 120: the national system's interface calls these endpoints \
        with an `HI1Message`. `production`: CREATE of an AuthorisationObject (EPOCLegalType \
        EPOC, EPOCPriority), LDTaskObjects and Form 1; `preservation`: the same with EPOCPR and \
        LPTaskObjects; `groundsforrefusal`: a DocumentObject No/Partial/FullGroundsForRefusal \
        naming the authorisation (and, when partial, the refused tasks); `subsequentproduction`, \
        `preservationextension`, `endpreservation`: UPDATE of the LPTaskObject; `newdeadline`: \
        UPDATE of the LDTaskObject with its new LDDeadline; `withdraw`: UPDATE of the \
        AuthorisationObject with DesiredStatus Cancelled; `deliverystatus`: UPDATE of the \
        DeliveryObject Writ sent, with DeliveryStatus Received or Error; `correspondence`: a \
        DocumentObject of an EPOCDocumentType naming the authorisation. Authenticated by a client \
        certificate pinned to the sending authority (mutual TLS) or like `/etsi/hi1` by a \
        body-bound request token (with both, they must name the same authority); every message is kept, audited and \
        idempotent on its transaction identifier. Answered with 200 and an action-by-action \
        response (each action may carry an ErrorInformation naming what is wrong), or 4xx and \
        an ErrorInformation when the message is refused as a whole.",
    params(("endpoint" = String, Path, description = "The endpoint",
        pattern = "^(production|preservation|groundsforrefusal|subsequentproduction|preservationextension|endpreservation|newdeadline|withdraw|deliverystatus|correspondence)$")),
    request_body(content = String, content_type = "application/xml",
        description = "An HI1Message with a RequestPayload"),
    responses(
        (status = 200, description = "Answered action by action", body = String, content_type = "application/xml"),
        (status = 400, description = "Not a valid HI1Message, or not addressed to Writ", body = String, content_type = "application/xml"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The sender identifier is not the signer's (or the pinned peer's); or the client certificate names another authority than the token", body = String, content_type = "application/xml"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The transaction identifier was used for another message", body = String, content_type = "application/xml"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/xml", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("request_token" = []), ("mutual_tls" = [])))]
#[post("/eevidence/{endpoint}")]
pub async fn receive(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<ApiState>,
    config: web::Data<EtsiConfig>,
    db: web::Data<Db>,
) -> Result<HttpResponse, Problem> {
    let Some(endpoint) = Endpoint::parse(&path.into_inner()) else {
        return Err(
            Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found").detail(
                "no such e-Evidence endpoint: production, preservation, groundsforrefusal, \
             subsequentproduction, preservationextension, endpreservation, newdeadline, \
             withdraw, deliverystatus or correspondence",
            ),
        );
    };
    let limit = config.0.message_limit_bytes;
    crate::web::body::check_declared_length(&req, limit)?;
    crate::web::body::require_media_type(
        &req,
        &["application/xml", "text/xml"],
        "an HI-1 message must be sent as application/xml",
    )?;
    let (authority, body) = authenticate(&req, payload, &state, &db, limit).await?;
    let state = state.into_inner();
    let config = config.into_inner();
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
            let profile = EevidenceProfile { endpoint };
            let rules = Rules {
                settings: &config.0,
                policies: state.policies(),
                deployment: state.deployment(),
                mail: state.mail(),
                document_limit: state.document_limit(),
                profile: Some(&profile),
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

/// A released package Writ sent by reference in an `outcome` (above the inline limit), fetched
/// by the national system.
#[utoipa::path(
    get,
    path = "/eevidence/packages/{id}",
    tag = "eevidence",
    description = "EU e-Evidence: a released package above the inline limit (`[etsi] \
        eevidence_inline_limit_bytes`, 25 MiB by default) goes out in the `outcome` as a \
        DeliveryObject whose Delivery is a URL to this path, with the package's length and \
        SHA-256; the national system fetches the package here. Authenticated as the other \
        e-Evidence endpoints (a client certificate pinned to the authority, or a request token \
        bound to GET, this path and the empty body). Only the authority the order was delivered \
        to gets it, while the order is delivered or closed, and not after the archive's \
        retention period or a withdrawal; anyone else gets 404. The URL expires `[etsi] \
        eevidence_package_url_days` (30 by default) after the order's latest `outcome` was \
        queued (the URLObject's Expiry): that authority then gets 410. The body is exactly the signed \
        package (`X-Package-SHA256`, the DeliveryObject's Checksum). Every fetch, served or \
        refused, is audited (`eevidence.package_fetched`, `eevidence.package_refused`).",
    params(("id" = String, Path, description = "The package id (from the outcome's URL)")),
    responses(
        (status = 200, description = "The signed package (application/x-tar)", content_type = "application/x-tar",
            headers(("X-Package-SHA256" = String, description = "SHA-256 (hex) of the body"))),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The client certificate names another authority than the token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such package for this authority", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The package's URL has expired (its Expiry passed)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "A body was sent", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("request_token" = []), ("mutual_tls" = [])))]
#[get("/eevidence/packages/{id}")]
pub async fn package(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<ApiState>,
    config: web::Data<EtsiConfig>,
    db: web::Data<Db>,
) -> Result<HttpResponse, Problem> {
    crate::web::body::check_declared_length(&req, 0)?;
    let (authority, _) = authenticate(&req, payload, &state, &db, 0).await?;
    let id = path.into_inner();
    let days = config.0.eevidence_package_url_days;
    let fetched = db
        .run(move |conn| {
            crate::eevidence::outbox::fetch_package(conn, &authority, &id, days, Utc::now())
        })
        .await?;
    match fetched {
        Ok((tar, sha)) => Ok(api::package_response(tar, sha)),
        Err(crate::eevidence::outbox::Refused::Expired) => Err(Problem::new(
            StatusCode::GONE,
            "package-url-expired",
            "The package's URL has expired",
        )
        .detail(
            "the URL's Expiry has passed ([etsi] eevidence_package_url_days after the order's \
             latest outcome); the package is not served by it any more",
        )),
        Err(_) => Err(
            Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found").detail(
                "no released package with this id was delivered to this authority (or it is no \
                 longer served: withdrawn, or past its retention period)",
            ),
        ),
    }
}
