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
    fails(
        &[
            "authority",
            "add",
            "--id",
            "Bad Id",
            "--name",
            "x",
            "--country",
            "FR",
            "--kind",
            "police",
            "--contact",
            "a@b.example",
        ],
        "lowercase",
    );
    fails(
        &[
            "authority",
            "add",
            "--id",
            "x",
            "--name",
            "x",
            "--country",
            "FRA",
            "--kind",
            "police",
            "--contact",
            "a@b.example",
        ],
        "ISO 3166",
    );
    fails(
        &[
            "authority",
            "add",
            "--id",
            "x",
            "--name",
            "x",
            "--country",
            "FR",
            "--kind",
            "sheriff",
            "--contact",
            "a@b.example",
        ],
        "expected one of",
    );
    fails(
        &[
            "authority",
            "add",
            "--id",
            "x",
            "--name",
            "x",
            "--country",
            "FR",
            "--kind",
            "police",
            "--contact",
            "not-an-address",
        ],
        "not an e-mail address",
    );

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
    assert!(ok(&["audit", "checkpoint"]).contains("writ/"));
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
