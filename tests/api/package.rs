//! Disclosure packages from the outside: a package built by the library, signed with the key
//! `writ keys init --package` provisions, checked with `writ package verify` as an authority
//! would.

use writ::disclosure::{keys, package};
use writ::policy::{Category, Deployment, IssuerKind, Order, PolicySet, RegistryFacts};

use crate::cli::writ_for;
use crate::helpers::{Backend, TestDb};

const ORDER: &str = include_str!("../fixtures/orders/epoc-prosecutor.json");

/// The stdout of a successful `writ` run.
fn run_ok(db: &TestDb, args: &[&str]) -> String {
    let out = writ_for(db, &[]).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "writ {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The PEM block of a command's output.
pub(crate) fn pem_of(text: &str) -> String {
    text[text.find("-----BEGIN PUBLIC KEY-----").unwrap()..].to_owned()
}

/// The policy engine's real decision on the EPOC fixture from a registered French prosecutor,
/// and the tables of exactly the fields it releases.
pub(crate) fn input() -> package::PackageInput {
    let order = Order::from_json(ORDER).unwrap();
    let facts = RegistryFacts {
        issuer_kind: Some(IssuerKind::Prosecutor),
        validator_kind: None,
        issuer_country: Some("FR".into()),
        validation_signed_by_validator: false,
        earlier_preservations: 0,
    };
    let deployment = Deployment {
        establishment: "IE".into(),
        legal_representative_in: vec![],
        dsa_intermediary: false,
        service_class: None,
        offers_service_in: vec![],
    };
    let received = "2026-09-01T08:00:00Z".parse().unwrap();
    let scope = writ::policy::decide(
        &order,
        &facts,
        received,
        &[],
        &PolicySet::builtin().unwrap(),
        &deployment,
        "2026-09-01T09:00:00Z".parse().unwrap(),
    );
    let table = |category: Category, target: &str| {
        let fields: Vec<String> = writ::policy::CATALOGUE
            .iter()
            .filter(|spec| {
                scope
                    .field_status(category, spec.id)
                    .is_some_and(|s| s.releases())
            })
            .map(|spec| spec.id.as_str().to_owned())
            .collect();
        assert!(!fields.is_empty(), "{category} releases something");
        let row = std::iter::once(target.to_owned())
            .chain(fields.iter().map(|f| format!("{f} of the record")))
            .collect();
        package::Table {
            category,
            columns: std::iter::once("target".to_owned()).chain(fields).collect(),
            rows: vec![row],
        }
    };
    package::PackageInput {
        order_id: "order-7".into(),
        reference: "PR-2026-0042".into(),
        authority_id: "fr-parquet-paris".into(),
        instrument: "eu.epoc".into(),
        order_version: 1,
        scope_sha256: writ::digest::sha256_hex(&serde_json::to_vec(&scope).unwrap()),
        tables: vec![
            table(Category::Subscriber, "username:alice"),
            table(Category::Identification, "ip:203.0.113.7:51234"),
        ],
        scope,
        created_at: "2026-09-02T10:00:00Z".parse().unwrap(),
        approvers: vec!["legal.one".into(), "legal.two".into()],
    }
}

#[test]
fn writ_package_verify_accepts_a_signed_package_and_names_the_tampered_file() {
    let db = TestDb::new(Backend::Sqlite);
    let created = run_ok(&db, &["keys", "init", "--package"]);
    let shown = run_ok(&db, &["keys", "show", "--package"]);
    assert_eq!(pem_of(&created), pem_of(&shown));
    let public_path = db.dir().join("package.pub.pem");
    // What `keys show --package` prints is a key file `package verify` reads.
    std::fs::write(&public_path, &shown).unwrap();
    // `keys init --package` refuses to replace the key.
    let again = writ_for(&db, &[])
        .args(["keys", "init", "--package"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let key = keys::load(&db.dir().join("package.key")).unwrap();
    let key_id = keys::key_id(&key.verifying_key());
    assert!(shown.contains(&format!("key id: {key_id}")), "{shown}");
    let built = package::build(&input(), &key).unwrap();
    let tar_path = db.dir().join("package.tar");
    std::fs::write(&tar_path, &built.tar).unwrap();
    let verify = |path: &std::path::Path, key: &std::path::Path| {
        writ_for(&db, &[])
            .args(["package", "verify"])
            .arg(path)
            .arg("--key")
            .arg(key)
            .output()
            .unwrap()
    };

    let out = verify(&tar_path, &public_path);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "order: order-7 version 1",
        "reference PR-2026-0042",
        &format!("key {key_id}"),
        &built.sha256,
        "subscriber: 1",
        "identification: 1",
        "OK: package verified",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }
    for file in &built.manifest.files {
        assert!(text.contains(&file.sha256), "{} listed: {text}", file.name);
    }

    // One changed byte inside records.json.
    let at = built
        .tar
        .windows(b"username:alice".len())
        .position(|w| w == b"username:alice")
        .unwrap();
    let mut tampered = built.tar.clone();
    tampered[at] = b'U';
    std::fs::write(&tar_path, &tampered).unwrap();
    let out = verify(&tar_path, &public_path);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("verification FAILED") && err.contains("records.json"),
        "{err}"
    );

    // The audit key is not the package key.
    let audit_pem = db.dir().join("audit.pub.pem");
    std::fs::write(&audit_pem, pem_of(&run_ok(&db, &["keys", "init"]))).unwrap();
    std::fs::write(&tar_path, &built.tar).unwrap();
    let out = verify(&tar_path, &audit_pem);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("manifest.sig"), "{err}");
}

crate::both_backends!(rotating_the_package_key_keeps_old_packages_verifiable_and_is_audited);

/// Issue 22, key rotation (package key): a new key signs from the rotation on, the old public
/// key stays published beside it, packages signed before still verify with it, and the
/// rotation is an audit entry naming both key ids.
async fn rotating_the_package_key_keeps_old_packages_verifiable_and_is_audited(backend: Backend) {
    let db = TestDb::new(backend);
    run_ok(&db, &["migrate"]);
    run_ok(&db, &["keys", "init"]);
    run_ok(&db, &["keys", "init", "--package"]);
    let key_path = db.dir().join("package.key");
    let old_key = keys::load(&key_path).unwrap();
    let old_id = keys::key_id(&old_key.verifying_key());
    let old_tar = db.dir().join("old.tar");
    std::fs::write(&old_tar, package::build(&input(), &old_key).unwrap().tar).unwrap();
    let old_pem = db.dir().join("old.pem");
    std::fs::write(
        &old_pem,
        pem_of(&run_ok(&db, &["keys", "show", "--package"])),
    )
    .unwrap();

    let rotated = run_ok(&db, &["keys", "rotate", "--package"]);
    let new_key = keys::load(&key_path).unwrap();
    let new_id = keys::key_id(&new_key.verifying_key());
    assert_ne!(old_id, new_id);
    assert!(
        rotated.contains(&format!("key id {new_id} signs from now on"))
            && rotated.contains(&format!("{old_id} is retired")),
        "{rotated}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Both keys are shown: the current one first (what `package verify --key` reads), then
    // the retired one.
    let shown = run_ok(&db, &["keys", "show", "--package"]);
    assert!(shown.starts_with(&format!("key id: {new_id}\n")), "{shown}");
    assert!(
        shown.contains(&format!("retired key id: {old_id}")),
        "{shown}"
    );
    let retired_block = &shown[shown.find("retired key id").unwrap()..];
    assert_eq!(
        pem_of(retired_block),
        std::fs::read_to_string(&old_pem).unwrap()
    );
    let new_pem = db.dir().join("new.pem");
    std::fs::write(&new_pem, &shown).unwrap();

    let new_tar = db.dir().join("new.tar");
    std::fs::write(&new_tar, package::build(&input(), &new_key).unwrap().tar).unwrap();
    let verify = |tar: &std::path::Path, key: &std::path::Path| {
        writ_for(&db, &[])
            .args(["package", "verify"])
            .arg(tar)
            .arg("--key")
            .arg(key)
            .output()
            .unwrap()
    };
    assert!(verify(&old_tar, &old_pem).status.success());
    assert!(verify(&new_tar, &new_pem).status.success());
    assert_eq!(verify(&old_tar, &new_pem).status.code(), Some(1));

    // The rotation is in the log, with both key ids, and the log still signs and verifies.
    run_ok(&db, &["audit", "checkpoint"]);
    let export = run_ok(&db, &["audit", "export"]);
    let line = export
        .lines()
        .find(|l| l.contains("\"event\":\"package.key_rotated\""))
        .unwrap_or_else(|| panic!("no rotation entry in {export}"));
    assert!(
        line.contains(&format!("\"old_key_id\":\"{old_id}\""))
            && line.contains(&format!("\"new_key_id\":\"{new_id}\"")),
        "{line}"
    );
    assert!(run_ok(&db, &["audit", "verify"]).starts_with("OK: all"));

    // A second rotation keeps both earlier keys.
    run_ok(&db, &["keys", "rotate", "--package"]);
    let shown = run_ok(&db, &["keys", "show", "--package"]);
    assert_eq!(shown.matches("retired key id:").count(), 2, "{shown}");
    assert!(shown.contains(&new_id) && shown.contains(&old_id));

    // A server started after the rotations publishes the current key and the retired ones.
    let current = keys::key_id(&keys::load(&key_path).unwrap().verifying_key());
    let settings = db.settings(&[]);
    let app = crate::helpers::spawn_with_settings(db, settings).await;
    let res = app.get("/packages/public-keys").await;
    assert_eq!(res.status(), 200);
    let published = res.text().await.unwrap();
    assert_eq!(published, shown);
    assert!(published.starts_with(&format!("key id: {current}")));
    let res = app.get("/packages/public-key").await;
    assert_eq!(
        res.headers().get("x-key-id").unwrap().to_str().unwrap(),
        current
    );
}
