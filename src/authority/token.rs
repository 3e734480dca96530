//! Verifying an authority's body-bound request token (a JWT signed with a registered key).
//!
//! A token is accepted only if all of these hold:
//! - its header names a registered, unrevoked key (`kid`) of an active authority, and its `alg`
//!   is exactly the algorithm pinned to that key (`none` and HMAC are never pinned, so never
//!   accepted, and a token cannot choose its own algorithm);
//! - the signature verifies with that key;
//! - `iss` is that authority's id and `aud` this deployment's audience;
//! - `exp`, `iat` (and `nbf`, if present) are integers, the token is within its validity
//!   (30 s leeway) and lives at most `max_lifetime` seconds;
//! - `htm`, `htu` and `bsh` bind it to this request: its method, its path (with query), and
//!   the SHA-256 of its exact body (base64url, no padding), so it cannot carry another body;
//! - its `jti` was never used before by that authority, on any instance (a replay is refused;
//!   a client retries with a fresh token).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::prelude::*;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::RegistryError;
use crate::db::schema::{authorities, authority_keys, used_token_ids};
use crate::db::{DbConn, write_tx};

/// Clock leeway for `exp`, `nbf` and `iat`, in seconds.
const LEEWAY_SECS: i64 = 30;

/// The request a token must be bound to.
#[derive(Debug, Clone, Copy)]
pub struct RequestBinding<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// Path with query string, as sent.
    pub path: &'a str,
    /// The exact body bytes.
    pub body: &'a [u8],
}

/// The claims of a request token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The authority's registry id.
    pub iss: String,
    /// This deployment's audience.
    pub aud: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Not before, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Single-use token id.
    pub jti: String,
    /// HTTP method.
    pub htm: String,
    /// Path with query.
    pub htu: String,
    /// SHA-256 of the body, base64url without padding.
    pub bsh: String,
}

/// A verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The authority that signed it.
    pub authority_id: String,
    /// The key it was signed with.
    pub kid: String,
    /// Its claims.
    pub claims: Claims,
}

/// Why a token was refused. [`TokenError::class`] is the reason class told to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token, or not a JWT at all.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The `kid` names no registered key (or a revoked one, or one of a suspended authority).
    #[error("unknown or revoked key")]
    UnknownKey,
    /// The header's `alg` is not the algorithm pinned to the key.
    #[error("the token's algorithm is not the one registered for its key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Expired, not yet valid, issued in the future, or living too long.
    #[error("token not valid now: {0}")]
    Expired(String),
    /// A claim is missing or of the wrong type, or `iss`/`aud` is wrong.
    #[error("invalid claims: {0}")]
    Claims(String),
    /// `htm`, `htu` or `bsh` do not match this request.
    #[error("the token is bound to another request: {0}")]
    BodyMismatch(String),
    /// The `jti` was used before.
    #[error("token already used")]
    Replay,
    /// The authority is suspended (the token itself is genuine).
    #[error("the authority is suspended")]
    Suspended,
    /// The database failed.
    #[error("registry unavailable: {0}")]
    Unavailable(String),
}

impl TokenError {
    /// The reason class told to the client in the 401 problem document.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::UnknownKey => "unknown-key",
            Self::AlgorithmMismatch | Self::BadSignature => "bad-signature",
            Self::Expired(_) => "expired",
            Self::Claims(_) => "invalid-claims",
            Self::BodyMismatch(_) => "body-mismatch",
            Self::Replay => "replay",
            Self::Suspended => "suspended",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

impl From<diesel::result::Error> for TokenError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<RegistryError> for TokenError {
    fn from(e: RegistryError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// SHA-256 of a body as the `bsh` claim carries it.
pub fn body_hash(body: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(body))
}

fn pinned(name: &str) -> Option<Algorithm> {
    match name {
        "EdDSA" => Some(Algorithm::EdDSA),
        "ES256" => Some(Algorithm::ES256),
        "RS256" => Some(Algorithm::RS256),
        _ => None,
    }
}

/// A registered, unrevoked key with what is known of its authority.
pub(crate) struct RegisteredKey {
    /// The owning authority.
    pub authority_id: String,
    /// Whether that authority is active.
    pub authority_active: bool,
    /// The owning authority's registered kind.
    pub authority_kind: String,
    algorithm: String,
    pem: String,
}

impl RegisteredKey {
    /// The unrevoked key `kid`, if registered.
    pub fn load(conn: &mut DbConn, kid: &str) -> Result<Option<Self>, diesel::result::Error> {
        let found: Option<(String, String, String, String, String)> = authority_keys::table
            .inner_join(authorities::table)
            .filter(authority_keys::kid.eq(kid))
            .filter(authority_keys::revoked_at.is_null())
            .select((
                authority_keys::authority_id,
                authorities::status,
                authorities::kind,
                authority_keys::algorithm,
                authority_keys::public_key_pem,
            ))
            .first(conn)
            .optional()?;
        Ok(found.map(
            |(authority_id, status, authority_kind, algorithm, pem)| Self {
                authority_id,
                authority_active: status == "active",
                authority_kind,
                algorithm,
                pem,
            },
        ))
    }

    /// The key for verifying a token whose header names `header_alg`: refused unless that is
    /// exactly the algorithm pinned to the key.
    pub fn decoding_key(
        &self,
        header_alg: Algorithm,
    ) -> Result<(Algorithm, DecodingKey), TokenError> {
        let alg = pinned(&self.algorithm).ok_or(TokenError::UnknownKey)?;
        if header_alg != alg {
            return Err(TokenError::AlgorithmMismatch);
        }
        let pem = self.pem.as_bytes();
        let key = match alg {
            Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
            Algorithm::ES256 => DecodingKey::from_ec_pem(pem),
            _ => DecodingKey::from_rsa_pem(pem),
        }
        .map_err(|_| TokenError::UnknownKey)?;
        Ok((alg, key))
    }
}

/// A validation over exact parameters: signature only, no time or claim checks (the caller
/// checks the claims it needs, by type).
pub(crate) fn signature_only(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v
}

/// A token whose signature and claims were checked, not yet bound to a request body nor
/// spent: what [`check`] returns before the body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The authority that signed it.
    pub authority_id: String,
    /// The key it was signed with.
    pub kid: String,
    /// Its claims.
    pub claims: Claims,
    active: bool,
}

/// Verifies `token` for `request`; `now` is Unix seconds. On success the `jti` is recorded as
/// used (in its own transaction, so a replay is refused on every instance from then on).
pub fn verify(
    conn: &mut DbConn,
    token: &str,
    request: RequestBinding<'_>,
    audience: &str,
    max_lifetime_secs: i64,
    now: i64,
) -> Result<Verified, TokenError> {
    let checked = check(conn, token, audience, max_lifetime_secs, now)?;
    if !checked.claims.htm.eq_ignore_ascii_case(request.method) {
        return Err(TokenError::BodyMismatch("method (`htm`)".into()));
    }
    if checked.claims.htu != request.path {
        return Err(TokenError::BodyMismatch("path (`htu`)".into()));
    }
    bind(
        conn,
        checked,
        &body_hash(request.body),
        max_lifetime_secs,
        now,
    )
}

/// The first phase, before the request body is read: the key, the signature with the pinned
/// algorithm, and the typed claims (issuer, audience, times). A forged token is refused here,
/// having cost one small query and one signature check.
pub fn check(
    conn: &mut DbConn,
    token: &str,
    audience: &str,
    max_lifetime_secs: i64,
    now: i64,
) -> Result<Checked, TokenError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
    let kid = header
        .kid
        .ok_or_else(|| TokenError::Malformed("the header has no `kid`".into()))?;
    let key = RegisteredKey::load(conn, &kid)?.ok_or(TokenError::UnknownKey)?;
    let (alg, decoding) = key.decoding_key(header.alg)?;
    let authority_id = key.authority_id.clone();

    // Signature first, with no time or claim checks: a forged token learns nothing more.
    let raw = jsonwebtoken::decode::<serde_json::Value>(token, &decoding, &signature_only(alg))
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
            _ => TokenError::Malformed(e.to_string()),
        })?;
    // Typed claims: a string-typed `exp` or a missing `jti` fails here, by name.
    let claims: Claims = serde_path_to_error::deserialize(raw.claims).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            TokenError::Claims(e.inner().to_string())
        } else {
            TokenError::Claims(format!("claim `{path}`: {}", e.inner()))
        }
    })?;
    if claims.iss != authority_id {
        return Err(TokenError::Claims(
            "`iss` is not the authority that owns the key".into(),
        ));
    }
    if claims.aud != audience {
        return Err(TokenError::Claims("`aud` is not this deployment".into()));
    }
    // Saturating arithmetic: extreme values must not wrap into acceptance.
    if claims.exp.saturating_add(LEEWAY_SECS) < now {
        return Err(TokenError::Expired("expired".into()));
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS))
    {
        return Err(TokenError::Expired("not valid yet (`nbf`)".into()));
    }
    if claims.iat > now.saturating_add(LEEWAY_SECS) {
        return Err(TokenError::Expired("issued in the future (`iat`)".into()));
    }
    if claims.iat < now.saturating_sub(max_lifetime_secs.saturating_add(LEEWAY_SECS)) {
        return Err(TokenError::Expired("issued too long ago (`iat`)".into()));
    }
    if claims.exp < claims.iat || claims.exp.saturating_sub(claims.iat) > max_lifetime_secs {
        return Err(TokenError::Expired(format!(
            "lives longer than {max_lifetime_secs} s"
        )));
    }
    if claims.jti.is_empty() || claims.jti.len() > 128 {
        return Err(TokenError::Claims(
            "`jti` must be 1 to 128 characters".into(),
        ));
    }
    Ok(Checked {
        authority_id,
        kid,
        claims,
        active: key.authority_active,
    })
}

/// The second phase's checks that need no database, once the body is read: the body hash, then
/// the authority's status (only a genuine, current token learns that its authority is
/// suspended). The token is not spent yet: [`bind`] spends it on the caller's connection, a
/// [`super::spend::Spender`] together with other requests' tokens.
pub fn bound(checked: Checked, body_sha256_b64: &str) -> Result<Verified, TokenError> {
    let bound: &[u8] = checked.claims.bsh.as_bytes();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        bound,
        body_sha256_b64.as_bytes(),
    )) {
        return Err(TokenError::BodyMismatch("body (`bsh`)".into()));
    }
    if !checked.active {
        return Err(TokenError::Suspended);
    }
    let Checked {
        authority_id,
        kid,
        claims,
        ..
    } = checked;
    Ok(Verified {
        authority_id,
        kid,
        claims,
    })
}

/// The expiry before which a used token id may be forgotten: a token's longest life and an hour
/// more before `now`, so that clock skew between instances cannot reopen one.
pub(crate) fn purge_before(now: i64, max_lifetime_secs: i64) -> i64 {
    now.saturating_sub(max_lifetime_secs).saturating_sub(3600)
}

/// The second phase, once the body is read: [`bound`], then the single use of the `jti`,
/// recorded for every instance to see, in its own transaction (or the caller's).
pub fn bind(
    conn: &mut DbConn,
    checked: Checked,
    body_sha256_b64: &str,
    max_lifetime_secs: i64,
    now: i64,
) -> Result<Verified, TokenError> {
    let verified = bound(checked, body_sha256_b64)?;
    // Single use, across instances: the primary key refuses the second insert.
    let recorded = write_tx(conn, |c| {
        purge_used(c, now, max_lifetime_secs)?;
        let claims = &verified.claims;
        Ok::<_, TokenError>(record_use(
            c,
            &verified.authority_id,
            &claims.jti,
            claims.exp,
        )?)
    })?;
    if !recorded {
        return Err(TokenError::Replay);
    }
    Ok(verified)
}

/// Records the use of `jti` by `authority_id` (kept until `expires_at` plus the purge margin);
/// `false` if it was used before, on any instance.
pub(crate) fn record_use(
    conn: &mut DbConn,
    authority_id: &str,
    jti: &str,
    expires_at: i64,
) -> QueryResult<bool> {
    let inserted = crate::db::on_backend!(conn, |b| diesel::insert_into(used_token_ids::table)
        .values((
            used_token_ids::authority_id.eq(authority_id),
            used_token_ids::jti.eq(jti),
            used_token_ids::expires_at.eq(expires_at),
        ))
        .on_conflict_do_nothing()
        .execute(b))?;
    Ok(inserted > 0)
}

/// Deletes the rows of `used_token_ids` no token can need any more.
pub(crate) fn purge_used(
    conn: &mut DbConn,
    now: i64,
    max_lifetime_secs: i64,
) -> QueryResult<usize> {
    let before = purge_before(now, max_lifetime_secs);
    diesel::delete(used_token_ids::table.filter(used_token_ids::expires_at.lt(before)))
        .execute(conn)
}
