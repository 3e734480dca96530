//! A validator's own signature over an order: the proof that a judge or prosecutor validated
//! it, as opposed to the order's claim that they did.
//!
//! The signature is a compact JWS made with a key registered for the validating authority,
//! whose claims are `iss` (the validator's registry id), `order_sha256` (hex SHA-256 of the exact
//! order JSON as submitted) and `iat`. Anything else in the order says nothing about validation
//! that Writ believes without a person's check against the signed document.

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
    /// When signed, Unix seconds.
    pub iat: i64,
}

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
    let claims: ValidationClaims = serde_json::from_value(raw.claims)
        .map_err(|e| ValidationError::Malformed(e.to_string()))?;
    if claims.iss != key.authority_id {
        return Err(ValidationError::WrongIssuer);
    }
    if !claims.order_sha256.eq_ignore_ascii_case(order_sha256) {
        return Err(ValidationError::OtherOrder);
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
