//! Security headers and request-head limits, applied to every response.
//!
//! - **Content-Security-Policy.** Each response gets a fresh random nonce. An HTML page
//!   allows only Writ's own style sheet and images, plus inline `<script>` and `<style>`
//!   elements that carry the nonce (a handler reads it with the [`CspNonce`] extractor and
//!   passes it to its template); it may not be framed, change its base URL or post forms
//!   elsewhere. Any other response (JSON, files) allows nothing at all. A handler that sets a
//!   policy of its own (the API docs page, a downloaded document) keeps it.
//! - **Strict-Transport-Security**, exactly when clients reach Writ over TLS: Writ's own
//!   listener (`[server.tls]`) or a TLS-terminating proxy (`server.behind_tls_proxy`).
//! - **Slow forms.** A URL-encoded form's body must arrive within
//!   `server.body_read_timeout_secs`, like the bodies Writ's handlers read themselves.
//! - **Request-head limits.** A request whose request line and headers exceed
//!   `server.max_header_bytes`, or which carries more than `server.max_headers` header lines,
//!   gets a 431 problem naming the limit before any handler runs.

use std::future::{Ready, ready};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use base64::Engine;

use crate::settings::ServerSettings;
use crate::web::problem::Problem;

/// The policy of every response that is not an HTML page.
pub const NON_HTML_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// What the middleware needs from the settings, built once at start.
#[derive(Debug, Clone)]
pub struct SecurityConfig {
    hsts: Option<HeaderValue>,
    max_header_bytes: usize,
    max_headers: usize,
    body_read_timeout_secs: u64,
}

impl SecurityConfig {
    /// From the `[server]` settings.
    pub fn from_settings(server: &ServerSettings) -> Self {
        let hsts = server.hsts().then(|| {
            HeaderValue::from_str(&format!(
                "max-age={}; includeSubDomains",
                server.hsts_max_age_secs
            ))
            .unwrap_or(HeaderValue::from_static(
                "max-age=31536000; includeSubDomains",
            ))
        });
        Self {
            hsts,
            max_header_bytes: server.max_header_bytes,
            max_headers: server.max_headers,
            body_read_timeout_secs: server.body_read_timeout_secs,
        }
    }
}

/// When a body read now must have arrived by (`server.body_read_timeout_secs` from now), and
/// that number of seconds.
pub fn body_deadline(req: &HttpRequest) -> (tokio::time::Instant, u64) {
    let secs = req
        .app_data::<web::Data<SecurityConfig>>()
        .map_or(120, |c| c.body_read_timeout_secs);
    (
        tokio::time::Instant::now() + std::time::Duration::from_secs(secs),
        secs,
    )
}

/// The 408 problem for a body that did not arrive within `secs` seconds.
pub fn body_timeout_problem(secs: u64) -> Problem {
    Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        "body-timeout",
        "Request body too slow",
    )
    .detail(format!(
        "the request body did not arrive within {secs} seconds (server.body_read_timeout_secs)"
    ))
}

/// The Content-Security-Policy nonce of the response being built: put it in the `nonce`
/// attribute of any inline `<script>` or `<style>` the page needs. Fresh for every response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CspNonce(String);

impl CspNonce {
    /// 128 random bits, base64. `None` when the system's random source fails: the page then
    /// gets a policy without a nonce, which allows no inline code at all.
    fn fresh() -> Option<Self> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).ok()?;
        Some(Self(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        ))
    }

    /// The nonce, for a template's `nonce="..."` attribute.
    pub fn value(&self) -> &str {
        &self.0
    }
}

impl FromRequest for CspNonce {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<CspNonce>()
                .cloned()
                .ok_or_else(|| actix_web::error::ErrorInternalServerError("no CSP nonce")),
        )
    }
}

/// The policy of an HTML page with `nonce` (or none).
pub fn html_csp(nonce: Option<&CspNonce>) -> String {
    let inline = nonce.map_or_else(String::new, |n| format!(" 'nonce-{}'", n.value()));
    let script = if inline.is_empty() {
        "'none'".to_owned()
    } else {
        inline.trim_start().to_owned()
    };
    format!(
        "default-src 'none'; script-src {script}; style-src 'self'{inline}; img-src 'self'; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// The size of the request head as it arrived, near enough: the request line and every
/// header line with its separators.
fn head_size(req: &ServiceRequest) -> usize {
    let target = req.uri().path_and_query().map_or(1, |p| p.as_str().len());
    let line = req.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    req.headers().iter().fold(line, |n, (name, value)| {
        n + name.as_str().len() + value.len() + 4
    })
}

/// The middleware: refuses oversized heads, then sets the CSP (and HSTS) on the response.
pub async fn headers(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let config = req.app_data::<web::Data<SecurityConfig>>().cloned();
    if let Some(config) = &config {
        let refused = if req.headers().len() > config.max_headers {
            Some(format!(
                "a request may carry at most {} header lines (server.max_headers)",
                config.max_headers
            ))
        } else if head_size(&req) > config.max_header_bytes {
            Some(format!(
                "the request line and headers may take at most {} bytes (server.max_header_bytes)",
                config.max_header_bytes
            ))
        } else {
            None
        };
        if let Some(detail) = refused {
            let problem = Problem::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers-too-large",
                "Request headers too large",
            )
            .detail(detail);
            let mut res = req.into_response(problem.response());
            finish(res.headers_mut(), None, config.hsts.as_ref());
            return Ok(res.map_into_right_body());
        }
    }
    // actix-web's own form extractor has no time limit: give a form's body the deadline that
    // Writ's handlers apply to the bodies they read themselves.
    let is_form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if let (true, Some(config)) = (is_form, &config) {
        let payload = req.take_payload();
        req.set_payload(timed_payload(payload, config.body_read_timeout_secs));
    }
    let nonce = CspNonce::fresh();
    if let Some(nonce) = &nonce {
        req.extensions_mut().insert(nonce.clone());
    }
    let mut res = next.call(req).await?;
    let hsts = config.as_ref().and_then(|c| c.hsts.as_ref());
    finish(res.headers_mut(), nonce.as_ref(), hsts);
    Ok(res.map_into_left_body())
}

/// `payload`, ending in a [`std::io::ErrorKind::TimedOut`] error if it has not all arrived
/// within `secs` seconds.
fn timed_payload(payload: Payload, secs: u64) -> Payload {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    let stream = futures_util::stream::unfold(Some(payload), move |state| async move {
        let mut payload = state?;
        match tokio::time::timeout_at(deadline, payload.next()).await {
            Ok(Some(item)) => Some((item, Some(payload))),
            Ok(None) => None,
            Err(_) => Some((
                Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the body did not arrive within {secs} seconds"),
                ))),
                None,
            )),
        }
    });
    let boxed: std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, PayloadError>>>> =
        Box::pin(stream);
    Payload::from(boxed)
}

fn finish(
    headers: &mut actix_web::http::header::HeaderMap,
    nonce: Option<&CspNonce>,
    hsts: Option<&HeaderValue>,
) {
    let csp = HeaderName::from_static("content-security-policy");
    if !headers.contains_key(&csp) {
        let is_html = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
        let value = if is_html {
            HeaderValue::from_str(&html_csp(nonce))
                .unwrap_or(HeaderValue::from_static(NON_HTML_CSP))
        } else {
            HeaderValue::from_static(NON_HTML_CSP)
        };
        headers.insert(csp, value);
    }
    if let Some(hsts) = hsts {
        headers.insert(
            HeaderName::from_static("strict-transport-security"),
            hsts.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_fresh_and_end_up_in_the_page_policy() {
        let a = CspNonce::fresh().unwrap();
        let b = CspNonce::fresh().unwrap();
        assert_ne!(a, b);
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(a.value())
                .unwrap()
                .len(),
            16
        );
        let csp = html_csp(Some(&a));
        assert!(
            csp.contains(&format!("script-src 'nonce-{}';", a.value())),
            "{csp}"
        );
        assert!(
            csp.contains(&format!("style-src 'self' 'nonce-{}';", a.value())),
            "{csp}"
        );
        let none = html_csp(None);
        assert!(
            none.contains("script-src 'none';") && none.contains("style-src 'self';"),
            "{none}"
        );
    }
}
