//! The authority request-token verifier: `authority::token::check` (header, `kid` lookup,
//! pinned algorithm, signature, typed claims, times) against a scratch in-memory SQLite
//! registry holding one authority with one Ed25519 key, set up once.
//!
//! Input: the first byte picks the mode.
//! - even: the rest is a token, verified as sent;
//! - odd: the rest is `header JSON \n claims JSON`, which the target signs with the registered
//!   key (so the fuzzer reaches the claim checks past the signature).
//!
//! Beyond "no panic": an accepted token's signature verifies independently (ed25519-dalek over
//! the signing input) with the registered key, its claims name the registered authority and
//! this audience, and its times are within the rules; a token the target signed with the right
//! key and `alg` is never refused for its signature.
#![no_main]

use std::sync::{Mutex, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::Connection;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};
use libfuzzer_sys::fuzz_target;
use writ::audit::{Actor, ActorKind};
use writ::authority::token::{TokenError, check};
use writ::authority::{KeyAlgorithm, NewAuthority, add, add_key};
use writ::db::DbConn;
use writ::policy::IssuerKind;

/// The test key of `fuzz/corpus/token_verify` (a fixture, never used anywhere else).
const KEY_PEM: &str = include_str!("../fixtures/token-key.pem");
const AUTHORITY: &str = "fuzz-authority";
const KID: &str = "fuzz-ed25519";
const AUDIENCE: &str = "https://writ.example/api/v1";
const MAX_LIFETIME: i64 = 300;
/// 2026-11-28T12:00:00Z: the fixed "now" the seeds were signed for.
const NOW: i64 = 1_795_867_200;

struct Fixture {
    conn: Mutex<DbConn>,
    key: SigningKey,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let key = SigningKey::from_pkcs8_pem(KEY_PEM).unwrap();
        let public = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let mut conn = DbConn::Sqlite(diesel::SqliteConnection::establish(":memory:").unwrap());
        writ::db::migrations::run_pending(&mut conn).unwrap();
        // Registering the authority is audited, and every audit entry is authenticated.
        writ::db::install_thread_audit_entry_key(SigningKey::from_bytes(&[0x5a; 32]));
        let admin = Actor::new(ActorKind::Staff, "fuzz");
        let authority = NewAuthority {
            id: AUTHORITY.into(),
            name: "Fuzz authority".into(),
            country: "FR".into(),
            kind: IssuerKind::Prosecutor,
            contacts: vec!["fuzz@example.org".into()],
        };
        add(&mut conn, &admin, &authority).unwrap();
        add_key(
            &mut conn,
            &admin,
            AUTHORITY,
            KID,
            KeyAlgorithm::EdDSA,
            &public,
        )
        .unwrap();
        Fixture {
            conn: Mutex::new(conn),
            key,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let (token, self_signed) = if mode % 2 == 0 {
        let Ok(token) = std::str::from_utf8(rest) else {
            return;
        };
        (token.to_owned(), false)
    } else {
        let (header, claims) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &b""[..]),
        };
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let signature = f.key.sign(input.as_bytes());
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        (token, true)
    };
    let mut conn = f.conn.lock().unwrap();
    match check(&mut conn, &token, AUDIENCE, MAX_LIFETIME, NOW) {
        Ok(checked) => {
            // The signature, checked independently of jsonwebtoken.
            let mut parts = token.split('.');
            let (Some(h), Some(c), Some(s), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                panic!("accepted a token that is not three segments: {token}");
            };
            let sig = URL_SAFE_NO_PAD
                .decode(s)
                .expect("accepted a bad base64 signature");
            let sig = Signature::from_slice(&sig).expect("accepted a signature of the wrong size");
            f.key
                .verifying_key()
                .verify(format!("{h}.{c}").as_bytes(), &sig)
                .expect("accepted a signature that does not verify");
            let header: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
            assert_eq!(header["alg"], "EdDSA", "accepted another algorithm");
            let claims = &checked.claims;
            assert_eq!(checked.authority_id, AUTHORITY);
            assert_eq!(checked.kid, KID);
            assert_eq!(claims.iss, AUTHORITY);
            assert_eq!(claims.aud, AUDIENCE);
            assert!(claims.exp >= NOW - 30, "expired token accepted: {claims:?}");
            assert!(claims.iat <= NOW + 30, "future token accepted: {claims:?}");
            assert!(claims.nbf.is_none_or(|nbf| nbf <= NOW + 30));
            assert!(claims.iat <= claims.exp && claims.exp - claims.iat <= MAX_LIFETIME);
            assert!(!claims.jti.is_empty() && claims.jti.len() <= 128);
        }
        Err(TokenError::BadSignature) if self_signed => {
            let alg_is_ours = std::str::from_utf8(rest)
                .ok()
                .and_then(|t| t.split('\n').next())
                .and_then(|h| serde_json::from_str::<serde_json::Value>(h).ok())
                .is_some_and(|h| h["alg"] == "EdDSA" && h["kid"] == KID);
            assert!(
                !alg_is_ours,
                "a token signed with the registered key was refused: {token}"
            );
        }
        Err(TokenError::Unavailable(e)) => panic!("the registry failed: {e}"),
        Err(_) => {}
    }
});
