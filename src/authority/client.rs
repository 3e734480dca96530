//! The authority's side of the API, as a reference: signing a body-bound request token, a
//! validator's signature over an order, and the submission body. `writ token` uses these, and
//! so do the tests; an integrator can read them next to the API description.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;

use crate::keystore::Key;

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

/// The claims of a fresh request token (random `jti`).
fn request_claims(request: &TokenRequest<'_>) -> Claims {
    Claims {
        iss: request.issuer.to_owned(),
        aud: request.audience.to_owned(),
        exp: request.now + request.lifetime_secs,
        iat: request.now,
        nbf: None,
        jti: uuid::Uuid::new_v4().to_string(),
        htm: request.method.to_ascii_uppercase(),
        htu: request.path.to_owned(),
        bsh: body_hash(request.body),
    }
}

/// A fresh body-bound request token (random `jti`).
pub fn sign_request(
    algorithm: KeyAlgorithm,
    private_pem: &str,
    kid: &str,
    request: &TokenRequest<'_>,
) -> Result<String, SignError> {
    jsonwebtoken::encode(
        &header(algorithm, kid, "JWT"),
        &request_claims(request),
        &encoding_key(algorithm, private_pem)?,
    )
    .map_err(|e| SignError::Sign(e.to_string()))
}

/// A fresh body-bound request token (random `jti`) signed by `key`, a key file's or a PKCS#11
/// token's: how Writ signs its own outbound HI-1 DELIVER and e-Evidence calls with the package
/// key. The token is what [`sign_request`] makes with the same key in a file, byte for byte
/// (Ed25519 is deterministic), so the receiver verifies it the same way.
pub fn sign_request_with(
    key: &Key,
    kid: &str,
    request: &TokenRequest<'_>,
) -> Result<String, SignError> {
    sign_eddsa(key, kid, "JWT", &request_claims(request))
}

/// The protected header of an EdDSA JWS, its members in the order `jsonwebtoken` writes them
/// (`typ`, `alg`, `kid`), so that both signers produce the same bytes.
#[derive(Serialize)]
struct EddsaHeader<'a> {
    typ: &'a str,
    alg: &'static str,
    kid: &'a str,
}

/// An EdDSA JWS in compact serialization (RFC 7515 section 7.1) over `claims`, signed by `key`
/// with Ed25519 (RFC 8037 section 3.1: `alg` "EdDSA", the signature the 64 bytes of RFC 8032
/// over the ASCII signing input `BASE64URL(header) || '.' || BASE64URL(payload)`). Signing
/// goes through [`Key::sign`], so a key that never leaves a PKCS#11 token signs too.
pub fn sign_eddsa<T: Serialize>(
    key: &Key,
    kid: &str,
    typ: &str,
    claims: &T,
) -> Result<String, SignError> {
    let json = |e: serde_json::Error| SignError::Sign(e.to_string());
    let header = serde_json::to_vec(&EddsaHeader {
        typ,
        alg: "EdDSA",
        kid,
    })
    .map_err(json)?;
    let payload = serde_json::to_vec(claims).map_err(json)?;
    let mut token = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = key
        .sign(token.as_bytes())
        .map_err(|e| SignError::Sign(e.to_string()))?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
    Ok(token)
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

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;

    fn request(body: &[u8]) -> TokenRequest<'_> {
        TokenRequest {
            issuer: "XX-ACTOR02",
            audience: "https://receiver.example",
            method: "post",
            path: "/hi1/deliveries?x=1",
            body,
            now: 1_800_000_000,
            lifetime_secs: 300,
        }
    }

    /// The signer through `keystore::Key` makes, with a file key, exactly the token
    /// `jsonwebtoken` makes from the same key's PKCS#8 PEM (header, payload and signature, byte
    /// for byte), and the receiver's `jsonwebtoken::DecodingKey` verifies it.
    #[test]
    fn a_token_signed_through_the_keystore_is_the_jsonwebtoken_token_byte_for_byte() {
        let file_key = SigningKey::from_bytes(&[7; 32]);
        let pem = file_key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let kid = "0123456789abcdef";
        let claims = request_claims(&request(b"<HI1Message/>"));
        let old = jsonwebtoken::encode(
            &header(KeyAlgorithm::EdDSA, kid, "JWT"),
            &claims,
            &encoding_key(KeyAlgorithm::EdDSA, &pem).unwrap(),
        )
        .unwrap();
        let new = sign_eddsa(&Key::from(&file_key), kid, "JWT", &claims).unwrap();
        assert_eq!(new, old);
        let header_json = URL_SAFE_NO_PAD
            .decode(new.split('.').next().unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(header_json).unwrap(),
            format!(r#"{{"typ":"JWT","alg":"EdDSA","kid":"{kid}"}}"#)
        );

        // A fresh token (its own jti) verifies with the public key and carries the claims the
        // old path gives.
        let token =
            sign_request_with(&Key::from(&file_key), kid, &request(b"<HI1Message/>")).unwrap();
        let public = crate::audit::keys::public_pem(&file_key.verifying_key());
        let decoding = jsonwebtoken::DecodingKey::from_ed_pem(public.as_bytes()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.set_audience(&["https://receiver.example"]);
        validation.validate_exp = false;
        let decoded = jsonwebtoken::decode::<Claims>(&token, &decoding, &validation).unwrap();
        assert_eq!(decoded.header.kid.as_deref(), Some(kid));
        let got = decoded.claims;
        assert_ne!(got.jti, claims.jti, "every token has its own jti");
        assert_eq!(
            Claims {
                jti: claims.jti.clone(),
                ..got
            },
            claims
        );
        assert_eq!(claims.htm, "POST");

        let other = SigningKey::from_bytes(&[8; 32]);
        let forged = sign_request_with(&Key::from(&other), kid, &request(b"")).unwrap();
        assert!(jsonwebtoken::decode::<Claims>(&forged, &decoding, &validation).is_err());
    }
}
