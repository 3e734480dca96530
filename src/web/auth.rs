//! Who is calling: auditor API tokens (the browser roles arrive with the workspace).
//!
//! Tokens are never stored, only their SHA-256; a presented token is hashed and compared with
//! every configured hash in constant time, so timing reveals nothing about near misses.

use std::future::ready;

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, dev::Payload, web};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::web::problem::Problem;

/// The configured auditor token hashes.
#[derive(Debug, Clone, Default)]
pub struct AuditorTokens(Vec<[u8; 32]>);

impl AuditorTokens {
    /// From hex SHA-256 strings (validated by the settings); malformed ones are skipped.
    pub fn from_hex(hashes: &[String]) -> Self {
        Self(
            hashes
                .iter()
                .filter_map(|h| hex::decode(h).ok())
                .filter_map(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                .collect(),
        )
    }

    /// Whether `token` is one of them. Compares against every hash, in constant time each.
    pub fn accepts(&self, token: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = subtle::Choice::from(0);
        for known in &self.0 {
            found |= presented.ct_eq(known);
        }
        bool::from(found)
    }
}

/// A new random auditor token and the hash to configure for it.
pub fn new_token() -> Result<(String, String), getrandom::Error> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw)?;
    let token = format!("writ_aud_{}", hex::encode(raw));
    let hash = crate::digest::sha256_hex(token.as_bytes());
    Ok((token, hash))
}

/// A 401 with a `WWW-Authenticate` challenge and a problem body.
#[derive(Debug)]
pub struct Unauthorized(&'static str);

impl Unauthorized {
    /// A 401 saying `why`.
    pub fn new(why: &'static str) -> Self {
        Self(why)
    }
}

impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl ResponseError for Unauthorized {
    fn status_code(&self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized")
            .detail(self.0)
            .response();
        res.headers_mut().insert(
            WWW_AUTHENTICATE,
            actix_web::http::header::HeaderValue::from_static("Bearer realm=\"writ\""),
        );
        res
    }
}

/// Proof that the request comes from an auditor: a valid auditor API token, or a workspace
/// session of a staff member with the auditor role. Handlers that take it are auditor-only.
#[derive(Debug, Clone, Copy)]
pub struct Auditor;

impl FromRequest for Auditor {
    type Error = Unauthorized;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Unauthorized>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let tokens = req.app_data::<web::Data<AuditorTokens>>();
        let presented = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let by_token: Option<Result<Self, Unauthorized>> = match (tokens, presented) {
            (Some(tokens), Some(token)) if tokens.accepts(token) => Some(Ok(Auditor)),
            (_, Some(_)) => Some(Err(Unauthorized(
                "the bearer token is not a valid auditor token",
            ))),
            (_, None) => None,
        };
        if let Some(answer) = by_token {
            return Box::pin(ready(answer));
        }
        // A session (a cookie) only reads: a cross-site form cannot make an auditor's browser
        // sign a checkpoint.
        if req.method() != actix_web::http::Method::GET {
            return Box::pin(ready(Err(Unauthorized(
                "an auditor bearer token is required",
            ))));
        }
        let session = crate::web::ui::Signed::from_request(req, payload);
        Box::pin(async move {
            match session.await {
                Ok(s) if s.staff.role.may(crate::staff::Permission::Audit) => Ok(Auditor),
                Ok(_) => Err(Unauthorized("only auditors may use the audit API")),
                Err(_) => Err(Unauthorized(
                    "an auditor bearer token or an auditor's session is required",
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_by_hash() {
        let (token, hash) = new_token().unwrap();
        let (other, _) = new_token().unwrap();
        let tokens = AuditorTokens::from_hex(&[hash]);
        assert!(tokens.accepts(&token));
        assert!(!tokens.accepts(&other));
        assert!(!tokens.accepts(""));
        assert!(
            !AuditorTokens::default().accepts(&token),
            "no configured token admits nobody"
        );
    }
}
