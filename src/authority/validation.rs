//! A validator's own signature over an order: the proof that a judge or prosecutor validated
//! it, as opposed to the order's claim that they did.
//!
//! The signature is a compact JWS made with a key registered for the validating authority,
//! whose claims are `iss` (the validator's registry id), `order_sha256` (hex SHA-256 of the exact
//! order JSON as submitted), `aud` (the registry id of the authority that is to submit it, a
//! string or a list of strings), `iat` and `exp`. Anything else in the order says nothing about
//! validation that Writ believes without a person's check against the signed document.
//!
//! `aud` and `exp` bind the signature to one submitter for a time: without them, any other
//! authority of the same state that obtained the order's bytes could resubmit them with the
//! judge's signature and have the validation taken as proven. An `aud` naming only the addressee
//! (the provider) would not stop that, so the submitting authority must be among the audiences.
//! The old form without `aud` and `exp` is accepted only where `api.accept_unbound_validations`
//! is on (off by default).

use serde::{Deserialize, Serialize};

use super::token::{RegisteredKey, TokenError, signature_only};
use crate::db::DbConn;
use crate::policy::IssuerKind;

/// The claims a validator signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationClaims {
    /// The validating authority's registry id.
    pub iss: String,
    /// SHA-256 (lower-case hex) of the exact order JSON as submitted.
    pub order_sha256: String,
    /// Who may submit it: the submitting authority's registry id (RFC 7519 section 4.1.3: a
    /// string or a list of strings). Absent only in the old, unbound form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// When signed, Unix seconds.
    pub iat: i64,
    /// Until when it may be submitted, Unix seconds. Absent only in the old, unbound form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
}

/// A JWT audience: one string or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `who` is among the audiences.
    pub fn names(&self, who: &str) -> bool {
        match self {
            Self::One(a) => a == who,
            Self::Many(all) => all.iter().any(|a| a == who),
        }
    }
}

/// What a validation is checked against besides the order: who submits it, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Now, Unix seconds.
    pub now: i64,
    /// Whether the old form without `aud` and `exp` is still accepted
    /// (`api.accept_unbound_validations`).
    pub accept_unbound: bool,
}

impl Binding {
    /// Bound validations only, checked at `now` (Unix seconds).
    pub fn strict(now: i64) -> Self {
        Self {
            now,
            accept_unbound: false,
        }
    }
}

/// Clock skew tolerated on `iat` and `exp`, in seconds.
const LEEWAY_SECS: i64 = 60;

/// A verified validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenValidation {
    /// The validating authority.
    pub authority_id: String,
    /// Its registered kind.
    pub kind: IssuerKind,
    /// The key it signed with.
    pub kid: String,
}

/// Why a validation signature was refused; each message names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Not a well-formed JWS, or its claims are not the expected ones.
    #[error("the validation is not a well-formed signature: {0}")]
    Malformed(String),
    /// The key is not registered (or revoked), or its authority is suspended.
    #[error("the validation is signed with an unknown, revoked or suspended key")]
    UnknownKey,
    /// The signature does not verify with the key's pinned algorithm.
    #[error("the validation signature does not verify")]
    BadSignature,
    /// `iss` is not the key's authority.
    #[error("the validation's `iss` is not the authority that owns the key")]
    WrongIssuer,
    /// Signed over another order.
    #[error("the validation signs another order (its `order_sha256` is not this order's)")]
    OtherOrder,
    /// The issuing authority validated its own order.
    #[error("an authority cannot validate its own order")]
    SelfValidation,
    /// The validator is registered in another state than the issuer.
    #[error("the validator is registered in {validator}, not in the issuing state {issuer}")]
    OtherState {
        /// The validator's registered country.
        validator: String,
        /// The issuer's registered country.
        issuer: String,
    },
    /// The order names a validator of another country than the one that signed.
    #[error(
        "the order names a validator in {claimed}, but the signature is by an authority registered in {registered}"
    )]
    NotTheNamedValidator {
        /// The country the order names.
        claimed: String,
        /// The signer's registered country.
        registered: String,
    },
    /// The old form: no `aud` and `exp`, while only bound validations are accepted.
    #[error(
        "the validation is not bound to its submitter: it needs `aud` (the submitting authority's registry id) and `exp`; sign it again with `writ token validate --aud`"
    )]
    Unbound,
    /// Bound to another submitter.
    #[error(
        "the validation is addressed to another authority (its `aud` does not name the submitting authority)"
    )]
    OtherAudience,
    /// Past its `exp` (or issued in the future).
    #[error("the validation has expired (its `exp` has passed) or its `iat` is in the future")]
    Expired,
    /// The database failed.
    #[error("registry unavailable: {0}")]
    Unavailable(String),
}

impl From<diesel::result::Error> for ValidationError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// Verifies `signature` as the validation of the order whose digest is `order_sha256`, sent
/// by `issuer_id`, naming a validator in `claimed_country`. The validator must be registered in
/// the issuer's own state (validation happens in the issuing state) and in the state the order
/// names.
pub fn verify(
    conn: &mut DbConn,
    signature: &str,
    order_sha256: &str,
    issuer_id: &str,
    claimed_country: &str,
    binding: &Binding,
) -> Result<ProvenValidation, ValidationError> {
    let header = jsonwebtoken::decode_header(signature)
        .map_err(|e| ValidationError::Malformed(e.to_string()))?;
    let kid = header
        .kid
        .ok_or_else(|| ValidationError::Malformed("the header has no `kid`".into()))?;
    let key = RegisteredKey::load(conn, &kid)?
        .filter(|k| k.authority_active)
        .ok_or(ValidationError::UnknownKey)?;
    let (alg, decoding) = key.decoding_key(header.alg).map_err(|e| match e {
        TokenError::AlgorithmMismatch => ValidationError::BadSignature,
        _ => ValidationError::UnknownKey,
    })?;
    let raw = jsonwebtoken::decode::<serde_json::Value>(signature, &decoding, &signature_only(alg))
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => ValidationError::BadSignature,
            _ => ValidationError::Malformed(e.to_string()),
        })?;
    // The claims as signed must read the same to every reader: no claim named twice.
    let payload = signature
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, p).ok()
        })
        .ok_or_else(|| ValidationError::Malformed("the payload is not base64url".into()))?;
    if let Err(crate::json::StrictError::Duplicate(d)) = crate::json::duplicate_key(&payload) {
        return Err(ValidationError::Malformed(format!(
            "the claim `{}` is named twice",
            d.path("")
        )));
    }
    let claims: ValidationClaims = serde_json::from_value(raw.claims)
        .map_err(|e| ValidationError::Malformed(e.to_string()))?;
    if claims.iss != key.authority_id {
        return Err(ValidationError::WrongIssuer);
    }
    if !claims.order_sha256.eq_ignore_ascii_case(order_sha256) {
        return Err(ValidationError::OtherOrder);
    }
    match (&claims.aud, claims.exp) {
        (None, None) if binding.accept_unbound => {}
        (None, None) => return Err(ValidationError::Unbound),
        (Some(aud), Some(exp)) => {
            if !aud.names(issuer_id) {
                return Err(ValidationError::OtherAudience);
            }
            if exp <= binding.now - LEEWAY_SECS || claims.iat > binding.now + LEEWAY_SECS {
                return Err(ValidationError::Expired);
            }
        }
        (None, Some(_)) => {
            return Err(ValidationError::Malformed(
                "`exp` without `aud`: a bound validation carries both".into(),
            ));
        }
        (Some(_), None) => {
            return Err(ValidationError::Malformed(
                "`aud` without `exp`: a bound validation carries both".into(),
            ));
        }
    }
    if key.authority_id == issuer_id {
        return Err(ValidationError::SelfValidation);
    }
    let country = |c: &mut DbConn, id: &str| -> Result<String, ValidationError> {
        use diesel::prelude::*;
        Ok(crate::db::schema::authorities::table
            .find(id)
            .select(crate::db::schema::authorities::country)
            .first::<String>(c)?)
    };
    let validator_country = country(conn, &key.authority_id)?;
    let issuer_country = country(conn, issuer_id)?;
    if validator_country != issuer_country {
        return Err(ValidationError::OtherState {
            validator: validator_country,
            issuer: issuer_country,
        });
    }
    if !claimed_country.eq_ignore_ascii_case(&validator_country) {
        return Err(ValidationError::NotTheNamedValidator {
            claimed: claimed_country.to_owned(),
            registered: validator_country,
        });
    }
    let kind: IssuerKind =
        serde_json::from_value(serde_json::Value::String(key.authority_kind.clone()))
            .map_err(|_| ValidationError::UnknownKey)?;
    Ok(ProvenValidation {
        authority_id: key.authority_id,
        kind,
        kid,
    })
}
