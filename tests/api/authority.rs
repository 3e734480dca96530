//! The authority registry, from `writ authority` to the facts the policy engine receives.

use writ::policy::IssuerKind;

use crate::both_backends;
use crate::cli::writ_for;
use crate::helpers::{Backend, TestDb};

both_backends!(the_registry_is_managed_from_the_command_line_and_audited);

fn ed25519_public_pem() -> String {
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    writ::audit::keys::public_pem(&key.verifying_key())
}

async fn the_registry_is_managed_from_the_command_line_and_audited(backend: Backend) {
    let db = TestDb::new(backend);
    let dir = db.dir().to_owned();
    let run = |args: &[&str]| writ_for(&db, &[]).args(args).output().unwrap();
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(
            out.status.success(),
            "writ {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let fails = |args: &[&str], needle: &str| {
        let out = run(args);
        assert!(!out.status.success(), "writ {args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(err.contains(needle), "writ {args:?}: {err}");
    };
    ok(&["migrate"]);
    let add = [
        "authority",
        "add",
        "--id",
        "fr-parquet-paris",
        "--name",
        "Parquet de Paris",
        "--country",
        "fr",
        "--kind",
        "prosecutor",
        "--contact",
        "dpo@justice.example",
    ];
    ok(&add);
    fails(&add, "already registered");
    // Each bad value is refused, naming what is wrong. The registry also refuses a contact
    // the mailer could not send to (it accepted `<legal@example.org>` while the two had
    // checks of their own).
    for (id, country, kind, contact, needle) in [
        ("Bad Id", "FR", "police", "a@b.example", "lowercase"),
        ("x", "FRA", "police", "a@b.example", "ISO 3166"),
        ("x", "FR", "sheriff", "a@b.example", "expected one of"),
        (
            "x",
            "FR",
            "police",
            "not-an-address",
            "not an e-mail address",
        ),
        (
            "x",
            "FR",
            "police",
            "<legal@example.org>",
            "not an e-mail address",
        ),
    ] {
        fails(
            &[
                "authority",
                "add",
                "--id",
                id,
                "--name",
                "x",
                "--country",
                country,
                "--kind",
                kind,
                "--contact",
                contact,
            ],
            needle,
        );
    }

    let pem = dir.join("paris.pem");
    std::fs::write(&pem, ed25519_public_pem()).unwrap();
    let pem = pem.display().to_string();
    ok(&[
        "authority",
        "key-add",
        "fr-parquet-paris",
        "--kid",
        "paris-2026",
        "--alg",
        "EdDSA",
        "--public-key",
        &pem,
    ]);
    fails(
        &[
            "authority",
            "key-add",
            "fr-parquet-paris",
            "--kid",
            "paris-2026",
            "--alg",
            "EdDSA",
            "--public-key",
            &pem,
        ],
        "never reused",
    );
    // The algorithm is pinned and checked against the key itself.
    fails(
        &[
            "authority",
            "key-add",
            "fr-parquet-paris",
            "--kid",
            "paris-rsa",
            "--alg",
            "RS256",
            "--public-key",
            &pem,
        ],
        "not a valid RS256 key",
    );
    fails(
        &[
            "authority",
            "key-add",
            "fr-parquet-paris",
            "--kid",
            "paris-hmac",
            "--alg",
            "HS256",
            "--public-key",
            &pem,
        ],
        "not one of EdDSA",
    );
    fails(
        &[
            "authority",
            "key-add",
            "nobody",
            "--kid",
            "k2",
            "--alg",
            "EdDSA",
            "--public-key",
            &pem,
        ],
        "no authority",
    );
    ok(&["authority", "key-revoke", "paris-2026"]);
    fails(
        &["authority", "key-revoke", "paris-2026"],
        "already revoked",
    );
    let listed = ok(&["authority", "list"]);
    assert!(
        listed.contains("fr-parquet-paris\tactive\tFR\tprosecutor")
            && listed.contains("key paris-2026\tEdDSA\trevoked"),
        "{listed}"
    );

    // The policy engine's facts come from here: kind and country as registered, nothing for a
    // suspended authority.
    let pool = writ::db::Db::open(&db.settings(&[]).database).unwrap();
    let facts = tokio::task::spawn_blocking({
        let pool = pool.clone();
        move || {
            writ::authority::registry_facts(&mut pool.conn().unwrap(), "fr-parquet-paris").unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(
        (facts.issuer_kind, facts.issuer_country.as_deref()),
        (Some(IssuerKind::Prosecutor), Some("FR"))
    );
    ok(&["authority", "suspend", "fr-parquet-paris"]);
    let facts = tokio::task::spawn_blocking(move || {
        writ::authority::registry_facts(&mut pool.conn().unwrap(), "fr-parquet-paris").unwrap()
    })
    .await
    .unwrap();
    assert_eq!(facts.issuer_kind, None);

    // Every change is in the audit log.
    ok(&["keys", "init"]);
    assert!(ok(&["audit", "checkpoint"]).contains(".invalid/audit"));
    ok(&[
        "audit",
        "export",
        "--output",
        &dir.join("log.jsonl").display().to_string(),
    ]);
    let log = std::fs::read_to_string(dir.join("log.jsonl")).unwrap();
    for event in [
        "authority.added",
        "authority.key_added",
        "authority.key_revoked",
        "authority.suspended",
    ] {
        assert!(log.contains(event), "{event} in the audit log");
    }
}

both_backends!(body_bound_tokens_resist_the_known_attacks);

mod tokens {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use writ::authority::token::{Claims, body_hash};

    pub const NOW: i64 = 1_790_000_000;

    pub fn private_pem(seed: u8) -> String {
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap()
            .to_string()
    }

    pub fn claims(body: &[u8]) -> Claims {
        Claims {
            iss: "fr-parquet-paris".into(),
            aud: "writ-test".into(),
            exp: NOW + 120,
            iat: NOW,
            nbf: None,
            jti: uuid::Uuid::new_v4().to_string(),
            htm: "POST".into(),
            htu: "/api/v1/orders".into(),
            bsh: body_hash(body),
        }
    }

    pub fn sign(claims: &impl serde::Serialize, kid: &str, seed: u8) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_ed_pem(private_pem(seed).as_bytes()).unwrap(),
        )
        .unwrap()
    }

    /// A token with a hand-made header and no signature check possible.
    pub fn raw(
        header: &serde_json::Value,
        claims: &impl serde::Serialize,
        signature: &[u8],
    ) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(serde_json::to_string(claims).unwrap()),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }
}

async fn body_bound_tokens_resist_the_known_attacks(backend: Backend) {
    use writ::audit::{Actor, ActorKind};
    use writ::authority::token::{RequestBinding, TokenError, verify};
    use writ::authority::{KeyAlgorithm, NewAuthority};

    let db = TestDb::new(backend);
    let pool = writ::db::Db::open(&db.settings(&[]).database).unwrap();
    let audit_settings = db.settings(&[]).audit;
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.conn().unwrap();
        writ::db::migrations::run_pending(&mut conn).unwrap();
        writ::audit::service::install_entry_key(&pool, &audit_settings, true).unwrap();
        let actor = Actor::new(ActorKind::System, "test");
        let add = |conn: &mut writ::db::DbConn, id: &str| {
            writ::authority::add(
                conn,
                &actor,
                &NewAuthority {
                    id: id.into(),
                    name: id.into(),
                    country: "FR".into(),
                    kind: IssuerKind::Prosecutor,
                    contacts: vec!["a@b.example".into()],
                },
            )
            .unwrap()
        };
        add(&mut conn, "fr-parquet-paris");
        add(&mut conn, "fr-parquet-lyon");
        let public = |seed: u8| {
            writ::audit::keys::public_pem(
                &ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key(),
            )
        };
        writ::authority::add_key(
            &mut conn,
            &actor,
            "fr-parquet-paris",
            "paris-1",
            KeyAlgorithm::EdDSA,
            &public(1),
        )
        .unwrap();
        writ::authority::add_key(
            &mut conn,
            &actor,
            "fr-parquet-lyon",
            "lyon-1",
            KeyAlgorithm::EdDSA,
            &public(2),
        )
        .unwrap();

        let body = br#"{"reference":"X"}"#;
        let request = RequestBinding {
            method: "POST",
            path: "/api/v1/orders",
            body,
        };
        let check = |conn: &mut writ::db::DbConn, token: &str, request: RequestBinding<'_>| {
            verify(conn, token, request, "writ-test", 300, tokens::NOW)
        };

        // The good token passes once; the same token again is a replay.
        let good = tokens::sign(&tokens::claims(body), "paris-1", 1);
        let verified = check(&mut conn, &good, request).unwrap();
        assert_eq!(verified.authority_id, "fr-parquet-paris");
        assert_eq!(check(&mut conn, &good, request), Err(TokenError::Replay));

        // Swapping the body (or method, or path) under a valid token.
        let other = tokens::sign(&tokens::claims(body), "paris-1", 1);
        let swapped = RequestBinding {
            body: br#"{"reference":"Y"}"#,
            ..request
        };
        assert!(matches!(
            check(&mut conn, &other, swapped),
            Err(TokenError::BodyMismatch(_))
        ));
        let other = tokens::sign(&tokens::claims(body), "paris-1", 1);
        assert!(matches!(
            check(
                &mut conn,
                &other,
                RequestBinding {
                    path: "/api/v1/orders/1/withdraw",
                    ..request
                }
            ),
            Err(TokenError::BodyMismatch(_))
        ));

        // alg none, HMAC with the public key as the secret, another algorithm than pinned.
        let none = tokens::raw(
            &serde_json::json!({"alg": "none", "kid": "paris-1"}),
            &tokens::claims(body),
            b"",
        );
        assert!(check(&mut conn, &none, request).is_err());
        let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        hs.kid = Some("paris-1".into());
        let hmac = jsonwebtoken::encode(
            &hs,
            &tokens::claims(body),
            &jsonwebtoken::EncodingKey::from_secret(public(1).as_bytes()),
        )
        .unwrap();
        assert_eq!(
            check(&mut conn, &hmac, request),
            Err(TokenError::AlgorithmMismatch)
        );
        let es = tokens::raw(
            &serde_json::json!({"alg": "ES256", "kid": "paris-1"}),
            &tokens::claims(body),
            &[0; 64],
        );
        assert_eq!(
            check(&mut conn, &es, request),
            Err(TokenError::AlgorithmMismatch)
        );

        // Signed with another authority's key, or an unknown one; a forged signature.
        let mut c = tokens::claims(body);
        assert_eq!(
            check(&mut conn, &tokens::sign(&c, "lyon-1", 1), request),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            check(&mut conn, &tokens::sign(&c, "nope", 1), request),
            Err(TokenError::UnknownKey)
        );
        // Lyon's own key, claiming to be Paris.
        assert!(matches!(
            check(&mut conn, &tokens::sign(&c, "lyon-1", 2), request),
            Err(TokenError::Claims(_))
        ));

        // Wrong audience, wrong issuer, expired, too long-lived, string-typed exp, no jti.
        c.aud = "someone-else".into();
        assert!(matches!(
            check(&mut conn, &tokens::sign(&c, "paris-1", 1), request),
            Err(TokenError::Claims(_))
        ));
        let mut c = tokens::claims(body);
        c.exp = tokens::NOW - 100;
        c.iat = tokens::NOW - 200;
        assert!(matches!(
            check(&mut conn, &tokens::sign(&c, "paris-1", 1), request),
            Err(TokenError::Expired(_))
        ));
        let mut c = tokens::claims(body);
        c.exp = tokens::NOW + 86_400;
        assert!(matches!(
            check(&mut conn, &tokens::sign(&c, "paris-1", 1), request),
            Err(TokenError::Expired(_))
        ));
        let mut v = serde_json::to_value(tokens::claims(body)).unwrap();
        v["exp"] = serde_json::json!((tokens::NOW + 120).to_string());
        let err = check(&mut conn, &tokens::sign(&v, "paris-1", 1), request).unwrap_err();
        assert!(
            matches!(&err, TokenError::Claims(m) if m.contains("exp")),
            "{err}"
        );
        let mut v = serde_json::to_value(tokens::claims(body)).unwrap();
        v.as_object_mut().unwrap().remove("jti");
        assert!(matches!(
            check(&mut conn, &tokens::sign(&v, "paris-1", 1), request),
            Err(TokenError::Claims(_))
        ));

        // A revoked key signs nothing any more; a suspended authority's genuine token is told
        // so (403), a forged one learns nothing.
        writ::authority::revoke_key(&mut conn, &actor, "paris-1").unwrap();
        assert_eq!(
            check(
                &mut conn,
                &tokens::sign(&tokens::claims(body), "paris-1", 1),
                request
            ),
            Err(TokenError::UnknownKey)
        );
        writ::authority::set_active(&mut conn, &actor, "fr-parquet-lyon", false).unwrap();
        let mut c = tokens::claims(body);
        c.iss = "fr-parquet-lyon".into();
        assert_eq!(
            check(&mut conn, &tokens::sign(&c, "lyon-1", 2), request),
            Err(TokenError::Suspended)
        );
        assert_eq!(
            check(&mut conn, &tokens::sign(&c, "lyon-1", 1), request),
            Err(TokenError::BadSignature)
        );
        assert_eq!(TokenError::Replay.class(), "replay");
    })
    .await
    .unwrap();
}

both_backends!(one_batch_of_tokens_accepts_each_first_use_and_counts_each_request);

/// The group commit's batch (`authority::spend::write_batch`), deterministically: in one batch,
/// the second use of a token is a replay while the first is accepted, a token spent in an
/// earlier batch is a replay, and every accepted request gets its own rate count.
async fn one_batch_of_tokens_accepts_each_first_use_and_counts_each_request(backend: Backend) {
    use diesel::prelude::*;
    use writ::authority::spend::{Spend, Spent, write_batch};
    use writ::db::schema::{auth_failures, rate_counters, used_token_ids};

    let db = TestDb::new(backend);
    let pool = writ::db::Db::open(&db.settings(&[]).database).unwrap();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.conn().unwrap();
        writ::db::migrations::run_pending(&mut conn).unwrap();
        let spend = |authority: &str, jti: &str| Spend {
            authority_id: authority.into(),
            jti: jti.into(),
            expires_at: 2_000_000_000,
            source: "192.0.2.0/24".into(),
        };
        let now = 1_790_000_000;
        let first = [spend("paris", "a"), spend("paris", "b")];
        let outcomes = writ::db::write_tx(&mut conn, |c| {
            write_batch(c, &first.iter().collect::<Vec<_>>(), now)
        })
        .unwrap();
        assert_eq!(
            outcomes,
            [Spent::Accepted { count: 1 }, Spent::Accepted { count: 2 }]
        );

        // Queue order: z, a (spent before), c, z again, lyon's a (another authority's id).
        let second = [
            spend("paris", "z"),
            spend("paris", "a"),
            spend("paris", "c"),
            spend("paris", "z"),
            spend("lyon", "a"),
        ];
        let outcomes = writ::db::write_tx(&mut conn, |c| {
            write_batch(c, &second.iter().collect::<Vec<_>>(), now)
        })
        .unwrap();
        assert_eq!(
            outcomes,
            [
                Spent::Accepted { count: 3 },
                Spent::Replay,
                Spent::Accepted { count: 4 },
                Spent::Replay,
                Spent::Accepted { count: 1 },
            ]
        );
        let used: i64 = used_token_ids::table.count().get_result(&mut conn).unwrap();
        assert_eq!(used, 5, "a, b, c, z of paris and a of lyon");
        let counted: Vec<(String, i64)> = rate_counters::table
            .select((rate_counters::scope, rate_counters::count))
            .order(rate_counters::scope)
            .load(&mut conn)
            .unwrap();
        assert_eq!(
            counted,
            [
                ("authority:lyon".to_owned(), 1),
                ("authority:paris".to_owned(), 4)
            ]
        );
        // The two replays count as failed authentications of their network.
        let failures: i64 = auth_failures::table
            .filter(auth_failures::reason.eq("replay"))
            .select(auth_failures::count)
            .first(&mut conn)
            .unwrap();
        assert_eq!(failures, 2);
    })
    .await
    .unwrap();
}
