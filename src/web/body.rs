//! Reading a request body within its limit: the declared length, the content type, and the
//! bytes themselves, read before a deadline.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;

use crate::web::problem::Problem;

/// Reads the body up to `limit` bytes: more is a 413 problem.
pub(crate) async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, Problem> {
    check_declared_length(req, limit)?;
    let mut body = Vec::with_capacity(declared_length(req).unwrap_or(0).min(limit));
    // A body dribbled in too slowly is a 408, not a connection held open for ever.
    let (deadline, secs) = crate::web::security::body_deadline(req);
    while let Some(chunk) = tokio::time::timeout_at(deadline, payload.next())
        .await
        .map_err(|_| crate::web::security::body_timeout_problem(secs))?
    {
        let chunk = chunk.map_err(|e| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-body",
                "Invalid request body",
            )
            .detail(e.to_string())
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Refuses at once a body whose declared length is over `limit` (before authentication).
pub(crate) fn check_declared_length(req: &HttpRequest, limit: usize) -> Result<(), Problem> {
    if declared_length(req).is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    Ok(())
}

/// The `Content-Length` the client declared, if it is a number.
fn declared_length(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// The 413 problem for a body over `limit` bytes.
fn too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
        "Request body too large",
    )
    .detail(format!("the request body may be at most {limit} bytes"))
}

/// A JSON body is required: anything else is a 415 problem.
pub(crate) fn require_json(req: &HttpRequest) -> Result<(), Problem> {
    require_media_type(
        req,
        &["application/json"],
        "the request body must be application/json",
    )
}

/// The body's media type (parameters such as `charset` aside) must be one of `accepted`:
/// anything else is a 415 problem saying `detail`.
pub(crate) fn require_media_type(
    req: &HttpRequest,
    accepted: &[&str],
    detail: &'static str,
) -> Result<(), Problem> {
    let ok = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| accepted.iter().any(|a| m.trim().eq_ignore_ascii_case(a)));
    if ok {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
        )
        .detail(detail))
    }
}
