//! RFC 9457 problem details: the one error shape of Writ's JSON API.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// The media type of problem responses.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem+json body (RFC 9457). `type` is a stable URI naming the problem class, so clients
/// can branch on it; `detail` is for people and names the field or reason at fault; `errors`
/// lists every field at fault in a submission.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Stable identifier of the problem class, e.g. `urn:writ:problem:not-found`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the class.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// Explanation of this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Every field at fault, by dotted path into the request body.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<crate::orders::FieldError>,
    /// For 401 and 403: the reason class (`malformed`, `unknown-key`, `bad-signature`,
    /// `expired`, `invalid-claims`, `body-mismatch`, `replay`, `suspended`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a refused submission: the id of the record Writ kept of it
    /// (`GET /api/v1/rejections/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submission_id: Option<String>,
    /// For 429: seconds until a retry may succeed (also in `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<i64>,
}

impl Problem {
    /// A problem of class `urn:writ:problem:{slug}`.
    pub fn new(status: StatusCode, slug: &str, title: &str) -> Self {
        Self {
            kind: format!("urn:writ:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: None,
            errors: Vec::new(),
            reason: None,
            submission_id: None,
            retry_after: None,
        }
    }

    /// Adds the field errors.
    pub fn errors(mut self, errors: Vec<crate::orders::FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// Adds the reason class of an authentication failure.
    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_owned());
        self
    }

    /// Adds the retry delay of a 429.
    pub fn retry_after(mut self, seconds: i64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// Adds the human explanation.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The response carrying this problem.
    pub fn response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.content_type(PROBLEM_JSON);
        if let Some(seconds) = self.retry_after {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        if self.status == 401 {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        response.json(self)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.detail {
            Some(d) => write!(f, "{}: {d}", self.title),
            None => f.write_str(&self.title),
        }
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        Problem::status_code(self)
    }

    fn error_response(&self) -> HttpResponse {
        self.response()
    }
}

/// The answer for any path or method Writ does not serve.
pub async fn not_found() -> HttpResponse {
    not_found_response()
}

/// The 404 problem response.
pub fn not_found_response() -> HttpResponse {
    Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found")
        .detail("no such resource")
        .response()
}
