//! The authority's side of the API, as a reference: signing a body-bound request token, a
//! validator's signature over an order, and the submission body. `writ token` uses these, and
//! so do the tests; an integrator can read them next to the API description.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{EncodingKey, Header};

use super::KeyAlgorithm;
use super::token::{Claims, body_hash};
use super::validation::ValidationClaims;

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The private key does not parse for the algorithm.
    #[error("the private key is not a PEM {0} private key: {1}")]
    Key(&'static str, String),
    /// The order is not valid JSON.
    #[error("the order is not JSON: {0}")]
    Order(String),
    /// Signing failed.
    #[error("cannot sign: {0}")]
    Sign(String),
}

fn encoding_key(algorithm: KeyAlgorithm, private_pem: &str) -> Result<EncodingKey, SignError> {
    let pem = private_pem.as_bytes();
    match algorithm {
        KeyAlgorithm::EdDSA => EncodingKey::from_ed_pem(pem),
        KeyAlgorithm::ES256 => EncodingKey::from_ec_pem(pem),
        KeyAlgorithm::RS256 => EncodingKey::from_rsa_pem(pem),
    }
    .map_err(|e| SignError::Key(algorithm.as_str(), e.to_string()))
}

fn header(algorithm: KeyAlgorithm, kid: &str, typ: &str) -> Header {
    let alg = match algorithm {
        KeyAlgorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        KeyAlgorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        KeyAlgorithm::RS256 => jsonwebtoken::Algorithm::RS256,
    };
    let mut h = Header::new(alg);
    h.kid = Some(kid.to_owned());
    h.typ = Some(typ.to_owned());
    h
}

/// What a request token binds.
#[derive(Debug, Clone)]
pub struct TokenRequest<'a> {
    /// The authority's registry id (`iss`).
    pub issuer: &'a str,
    /// The deployment's audience (`aud`).
    pub audience: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// Path with query.
    pub path: &'a str,
    /// The exact body.
    pub body: &'a [u8],
    /// Issued at, Unix seconds.
    pub now: i64,
    /// Lifetime in seconds.
    pub lifetime_secs: i64,
}

/// A fresh body-bound request token (random `jti`).
pub fn sign_request(
    algorithm: KeyAlgorithm,
    private_pem: &str,
    kid: &str,
    request: &TokenRequest<'_>,
) -> Result<String, SignError> {
    let claims = Claims {
        iss: request.issuer.to_owned(),
        aud: request.audience.to_owned(),
        exp: request.now + request.lifetime_secs,
        iat: request.now,
        nbf: None,
        jti: uuid::Uuid::new_v4().to_string(),
        htm: request.method.to_ascii_uppercase(),
        htu: request.path.to_owned(),
        bsh: body_hash(request.body),
    };
    jsonwebtoken::encode(
        &header(algorithm, kid, "JWT"),
        &claims,
        &encoding_key(algorithm, private_pem)?,
    )
    .map_err(|e| SignError::Sign(e.to_string()))
}

/// What a validator signs.
#[derive(Debug, Clone)]
pub struct ValidationRequest<'a> {
    /// The validating authority's registry id (`iss`).
    pub validator: &'a str,
    /// The registry id of the authority that is to submit the order (`aud`). `None` makes the
    /// old, unbound form, accepted only where `api.accept_unbound_validations` is on.
    pub submitter: Option<&'a str>,
    /// The order's exact JSON text.
    pub order_json: &'a str,
    /// Signed at, Unix seconds (`iat`).
    pub now: i64,
    /// How long the submitter has to submit it, in seconds (`exp` - `iat`).
    pub lifetime_secs: i64,
}

/// A validator's signature over the order whose exact JSON text is `request.order_json`, bound
/// to its submitter and lifetime.
pub fn sign_validation(
    algorithm: KeyAlgorithm,
    private_pem: &str,
    kid: &str,
    request: &ValidationRequest<'_>,
) -> Result<String, SignError> {
    let claims = ValidationClaims {
        iss: request.validator.to_owned(),
        order_sha256: crate::digest::sha256_hex(request.order_json.as_bytes()),
        aud: request
            .submitter
            .map(|s| super::validation::Audience::One(s.to_owned())),
        iat: request.now,
        exp: request
            .submitter
            .map(|_| request.now.saturating_add(request.lifetime_secs)),
    };
    jsonwebtoken::encode(
        &header(algorithm, kid, "writ-validation+jwt"),
        &claims,
        &encoding_key(algorithm, private_pem)?,
    )
    .map_err(|e| SignError::Sign(e.to_string()))
}

/// The body of `POST /api/v1/orders`: the order's text embedded verbatim (so its digest is
/// that of the file), the PDF in base64, and the validator's signature if any.
pub fn submission_body(
    order_json: &str,
    pdf: &[u8],
    validation: Option<&str>,
) -> Result<String, SignError> {
    let order_json = order_json.trim();
    serde_json::from_str::<serde_json::Value>(order_json)
        .map_err(|e| SignError::Order(e.to_string()))?;
    let document = serde_json::json!({
        "media_type": "application/pdf",
        "content": STANDARD.encode(pdf),
    });
    let mut body = format!("{{\"order\":{order_json},\"document\":{document}");
    if let Some(v) = validation {
        body.push_str(",\"validation\":");
        body.push_str(&serde_json::Value::String(v.to_owned()).to_string());
    }
    body.push('}');
    Ok(body)
}
