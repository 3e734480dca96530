//! Issue 22, keys in hardware: the checkpoint and package keys in a PKCS#11 token, tested with
//! Debian's SoftHSM2. Each test makes its own token folder (its own `softhsm2.conf`, named by
//! `SOFTHSM2_CONF` in the `writ` processes it runs), so tests never share a token.
//!
//! Without SoftHSM2 installed these tests print a skip line and pass, unless
//! `WRIT_TEST_REQUIRE_SOFTHSM=1` (CI sets it), which makes them fail instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cli::{free_port, sigterm, wait_ready, writ_for};
use crate::helpers::{Backend, TestDb};

/// Debian's SoftHSM2 module.
const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN: &str = "writ-test";
const PIN: &str = "483920";

/// A SoftHSM2 token in the test's folder.
struct Token {
    conf: PathBuf,
}

/// Makes a token in `dir`, or says why it cannot (and fails when SoftHSM2 is required).
fn softhsm(dir: &Path) -> Option<Token> {
    let util = Command::new("softhsm2-util")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !Path::new(MODULE).exists() || !util {
        assert!(
            std::env::var("WRIT_TEST_REQUIRE_SOFTHSM").as_deref() != Ok("1"),
            "SoftHSM2 is required (WRIT_TEST_REQUIRE_SOFTHSM=1) but {MODULE} or softhsm2-util is missing: apt-get install -y softhsm2"
        );
        eprintln!("SKIP: SoftHSM2 is not installed ({MODULE}); apt-get install -y softhsm2");
        return None;
    }
    crate::helpers::record_secret(PIN);
    let tokens = dir.join("softhsm-tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let made = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--so-pin",
            "1029384756",
        ])
        .args(["--pin", PIN])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "softhsm2-util --init-token: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    Some(Token { conf })
}

impl Token {
    /// Settings that put the checkpoint key (`section` "AUDIT") or the package key
    /// ("PACKAGE") in this token, with `pin` as the PIN.
    fn env(&self, section: &str, pin: &str) -> Vec<(String, String)> {
        vec![
            ("SOFTHSM2_CONF".into(), self.conf.display().to_string()),
            (format!("WRIT_{section}__SIGNING_KEY"), "pkcs11".into()),
            (format!("WRIT_{section}__PKCS11__MODULE"), MODULE.into()),
            (format!("WRIT_{section}__PKCS11__TOKEN_LABEL"), TOKEN.into()),
            ("WRIT_PKCS11_PIN".into(), pin.into()),
        ]
    }
}

impl Token {
    /// Settings that put the audit entry key in this token (`[audit.entry_pkcs11]`), with `pin`
    /// as the PIN; the checkpoint key stays a file.
    fn entry_env(&self, pin: &str) -> Vec<(String, String)> {
        vec![
            ("SOFTHSM2_CONF".into(), self.conf.display().to_string()),
            ("WRIT_AUDIT__ENTRY_KEY".into(), "pkcs11".into()),
            ("WRIT_AUDIT__ENTRY_PKCS11__MODULE".into(), MODULE.into()),
            ("WRIT_AUDIT__ENTRY_PKCS11__TOKEN_LABEL".into(), TOKEN.into()),
            ("WRIT_PKCS11_PIN".into(), pin.into()),
        ]
    }
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Runs `writ` with `env`; its stdout, or a panic with its stderr.
fn run_ok(db: &TestDb, env: &[(String, String)], args: &[&str]) -> String {
    let out = writ_for(db, &pairs(env)).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "writ {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The PEM block of a command's output.
fn pem_of(text: &str) -> String {
    let start = text.find("-----BEGIN PUBLIC KEY-----").unwrap();
    let end = text.find("-----END PUBLIC KEY-----").unwrap() + "-----END PUBLIC KEY-----\n".len();
    text[start..end].to_owned()
}

/// Every PEM block of a command's output, in order.
fn pems(text: &str) -> Vec<String> {
    const END: &str = "-----END PUBLIC KEY-----\n";
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN PUBLIC KEY-----") {
        let end = rest[start..].find(END).unwrap() + start + END.len();
        found.push(rest[start..end].to_owned());
        rest = &rest[end..];
    }
    found
}

/// `writ serve` with `env` on `db`: the answer of its `/readyz`.
fn serve_readyz(db: &TestDb, env: &[(String, String)]) -> crate::cli::Answer {
    let port = free_port();
    let port_text = port.to_string();
    let mut pairs = pairs(env);
    pairs.push(("WRIT_SERVER__PORT", &port_text));
    let mut child = writ_for(db, &pairs)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let answer = wait_ready(&mut child, port);
    sigterm(&child);
    child.wait().unwrap();
    answer
}

crate::both_backends!(
    a_checkpoint_key_made_in_the_token_signs_checkpoints_that_verify,
    an_entry_key_made_in_the_token_authenticates_entries_that_verify_offline,
);

/// Issue 22: `writ keys init --entry --pkcs11` generates the audit entry key in the token (no
/// key file is written, nor later created by the commands that append); every entry appended
/// afterwards carries an authenticator made in the token, and the checkpoints are cosigned
/// there, so an export verifies offline with the public key `writ keys show` prints (and not
/// with another), and the live log verifies. `writ doctor` names where the key is.
async fn an_entry_key_made_in_the_token_authenticates_entries_that_verify_offline(
    backend: Backend,
) {
    let db = TestDb::new(backend);
    let Some(token) = softhsm(db.dir()) else {
        return;
    };
    let env = token.entry_env(PIN);
    run_ok(&db, &env, &["migrate"]);
    let made = run_ok(&db, &env, &["keys", "init", "--entry", "--pkcs11"]);
    assert!(
        made.contains("generated the entry key `writ-audit-entry` in PKCS#11 token `writ-test`"),
        "{made}"
    );
    let entry_public = pem_of(&made);
    // The checkpoint key as a file; the entry key in the token is kept.
    let init = run_ok(&db, &env, &["keys", "init"]);
    assert!(
        init.contains(
            "kept the existing entry key: key `writ-audit-entry` in PKCS#11 token `writ-test`"
        ),
        "{init}"
    );
    let again = writ_for(&db, &pairs(&env))
        .args(["keys", "init", "--entry", "--pkcs11"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists; refusing to replace it")
    );

    // Entries appended by commands, and checkpoints cosigned, all with the key in the token.
    run_ok(&db, &env, &["keys", "init", "--package"]);
    run_ok(&db, &env, &["keys", "rotate", "--package"]);
    run_ok(&db, &env, &["audit", "checkpoint"]);
    run_ok(&db, &env, &["keys", "rotate", "--package"]);
    let note = run_ok(&db, &env, &["audit", "checkpoint"]);
    assert!(
        note.contains("/entries "),
        "cosigned by the entry key: {note}"
    );
    assert!(
        !db.dir().join("audit-entry.key").exists(),
        "no entry key file is written"
    );
    let shown = pems(&run_ok(&db, &env, &["keys", "show"]));
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert_eq!(shown[1], entry_public, "the token's entry key is published");

    let export = db.dir().join("export.jsonl");
    run_ok(
        &db,
        &env,
        &["audit", "export", "-o", export.to_str().unwrap()],
    );
    let checkpoint_key = db.dir().join("checkpoint.pem");
    std::fs::write(&checkpoint_key, &shown[0]).unwrap();
    let verify_with = |entry_pem: &str| {
        let entry_key = db.dir().join("entry.pem");
        std::fs::write(&entry_key, entry_pem).unwrap();
        writ_for(&db, &[])
            .args(["audit", "verify"])
            .arg(&export)
            .arg("--key")
            .arg(&checkpoint_key)
            .arg("--entry-key")
            .arg(&entry_key)
            .output()
            .unwrap()
    };
    let verified = verify_with(&entry_public);
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success()
            && report.starts_with("OK: entries 0..")
            && report.contains("OK: authenticators checked under the entry key"),
        "{report}{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let other = writ::audit::keys::public_pem(
        &ed25519_dalek::SigningKey::from_bytes(&[0x11; 32]).verifying_key(),
    );
    assert!(
        !verify_with(&other).status.success(),
        "another entry key does not verify the authenticators"
    );
    assert!(run_ok(&db, &env, &["audit", "verify"]).starts_with("OK: all"));
    let doctor = writ_for(&db, &pairs(&env)).arg("doctor").output().unwrap();
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        said.contains("ok    audit entry key: key `writ-audit-entry` in PKCS#11 token `writ-test`"),
        "{said}"
    );
}

/// With the entry key in the token, `writ keys init` generates it there when it is missing;
/// `/readyz` answers 200, and 503 naming why when the key is missing or the PIN wrong (never
/// the PIN); `writ doctor` says the same; and a command that appends fails, appending nothing,
/// rather than leave an entry without an authenticator.
#[test]
fn readyz_and_doctor_name_a_missing_entry_key_in_the_token() {
    let db = TestDb::new(Backend::Sqlite);
    let Some(token) = softhsm(db.dir()) else {
        return;
    };
    let good = token.entry_env(PIN);
    run_ok(&db, &good, &["migrate"]);
    let init = run_ok(&db, &good, &["keys", "init"]);
    assert!(
        init.contains("generated the entry key `writ-audit-entry` in PKCS#11 token `writ-test`"),
        "{init}"
    );
    assert!(!db.dir().join("audit-entry.key").exists());
    let ready = serve_readyz(&db, &good);
    assert_eq!(ready.code, 200, "{}", ready.body);

    let with = |key: &str, value: &str| {
        let mut env = good.clone();
        env.retain(|(k, _)| k != key);
        env.push((key.to_owned(), value.to_owned()));
        env
    };
    let missing = with("WRIT_AUDIT__ENTRY_PKCS11__KEY_LABEL", "no-such-key");
    let cases = [
        (
            missing.clone(),
            "no Ed25519 key labelled `no-such-key` in PKCS#11 token `writ-test`",
        ),
        (
            with("WRIT_PKCS11_PIN", "000000"),
            "PKCS#11 token `writ-test` refused the PIN (wrong PIN)",
        ),
    ];
    for (env, reason) in &cases {
        let answer = serve_readyz(&db, env);
        assert_eq!(answer.code, 503, "{reason}: {}", answer.body);
        assert!(
            answer
                .body
                .contains("the audit log's entry key is not available")
                && answer.body.contains(reason),
            "{reason}: {}",
            answer.body
        );
        assert!(!answer.body.contains("000000"));
    }

    let doctor = writ_for(&db, &pairs(&missing))
        .arg("doctor")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(!doctor.status.success());
    assert!(
        said.contains("FIX   audit entry key")
            && said.contains("no Ed25519 key labelled `no-such-key`")
            && said.contains("writ keys init --entry --pkcs11"),
        "{said}"
    );

    // An append without the key fails and leaves the log as it was (`writ serve` made the
    // package key file above).
    let size = |env: &[(String, String)]| {
        let out = run_ok(&db, env, &["audit", "status"]);
        out.lines()
            .find(|l| l.starts_with("entries: "))
            .unwrap()
            .to_owned()
    };
    let before = size(&good);
    let refused = writ_for(&db, &pairs(&missing))
        .args(["keys", "rotate", "--package"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no Ed25519 key labelled `no-such-key`"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(size(&good), before, "nothing was appended");
}

/// `writ keys init --pkcs11` generates the checkpoint key in the token (no key file is
/// written); checkpoints signed through the token verify offline with the public key `writ
/// keys show` prints, and live. `writ keys rotate` then rotates it in the token (it used to
/// refuse): the new key is published, signs the next checkpoint, and the log still verifies.
async fn a_checkpoint_key_made_in_the_token_signs_checkpoints_that_verify(backend: Backend) {
    let db = TestDb::new(backend);
    let Some(token) = softhsm(db.dir()) else {
        return;
    };
    let env = token.env("AUDIT", PIN);
    run_ok(&db, &env, &["migrate"]);
    let made = run_ok(&db, &env, &["keys", "init", "--pkcs11"]);
    assert!(
        made.contains(
            "generated the checkpoint key `writ-audit-checkpoint` in PKCS#11 token `writ-test`"
        ),
        "{made}"
    );
    assert!(
        !db.dir().join("audit.key").exists(),
        "no key file is written"
    );
    let public = pem_of(&made);
    let shown = run_ok(&db, &env, &["keys", "show"]);
    assert_eq!(
        pem_of(&shown),
        public,
        "the token's public key is published"
    );
    let again = writ_for(&db, &pairs(&env))
        .args(["keys", "init", "--pkcs11"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists; refusing to replace it")
    );

    // Entries, then a checkpoint signed in the token.
    run_ok(&db, &env, &["keys", "init", "--package"]);
    run_ok(&db, &env, &["keys", "rotate", "--package"]);
    let note = run_ok(&db, &env, &["audit", "checkpoint"]);
    assert!(
        note.lines().nth(1).is_some_and(|size| size != "0"),
        "{note}"
    );
    run_ok(&db, &env, &["keys", "rotate", "--package"]);
    run_ok(&db, &env, &["audit", "checkpoint"]);

    let export = db.dir().join("export.jsonl");
    run_ok(
        &db,
        &env,
        &["audit", "export", "-o", export.to_str().unwrap()],
    );
    let key = db.dir().join("checkpoint.pem");
    std::fs::write(&key, &public).unwrap();
    let verified = writ_for(&db, &[])
        .args(["audit", "verify"])
        .arg(&export)
        .arg("--key")
        .arg(&key)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success() && report.starts_with("OK: entries 0.."),
        "{report}{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(run_ok(&db, &env, &["audit", "verify"]).starts_with("OK: all"));
    // Doctor finds other things to fix in a test deployment (no legal team), not the key.
    let doctor = writ_for(&db, &pairs(&env)).arg("doctor").output().unwrap();
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        said.contains(
            "ok    checkpoint key: key `writ-audit-checkpoint` in PKCS#11 token `writ-test`"
        ),
        "{said}"
    );

    let rotated = run_ok(&db, &env, &["keys", "rotate"]);
    assert!(
        rotated.contains("rotated the checkpoint key in PKCS#11 token `writ-test`"),
        "{rotated}"
    );
    let new_public = pem_of(&rotated);
    assert_ne!(new_public, public);
    assert_eq!(
        pem_of(&run_ok(&db, &env, &["keys", "show"])),
        new_public,
        "the new key is published under the same label"
    );
    run_ok(&db, &env, &["keys", "rotate", "--package"]);
    let note = run_ok(&db, &env, &["audit", "checkpoint"]);
    assert!(note.lines().count() > 2, "{note}");
    assert!(run_ok(&db, &env, &["audit", "verify"]).starts_with("OK: all"));
}

/// `writ keys init --package --pkcs11` generates the package key in the token; a package
/// signed through the token (in a child process that sees only this test's token) verifies
/// offline with `writ package verify` and the published public key.
#[test]
fn a_package_signed_in_the_token_verifies_offline() {
    let db = TestDb::new(Backend::Sqlite);
    let Some(token) = softhsm(db.dir()) else {
        return;
    };
    let env = token.env("PACKAGE", PIN);
    let made = run_ok(&db, &env, &["keys", "init", "--package", "--pkcs11"]);
    assert!(made.contains("in PKCS#11 token `writ-test`"), "{made}");
    assert!(
        !db.dir().join("package.key").exists(),
        "no key file is written"
    );
    let public = pem_of(&made);
    assert_eq!(
        pem_of(&run_ok(&db, &env, &["keys", "show", "--package"])),
        public
    );

    let tar = sign_in_child(&db, &env, "package.tar");
    let (verified, report) = verify_package(&db, &tar, &public);
    assert!(verified && report.contains("verifies with key"), "{report}");
}

/// A package signed by the package key `env` names, built in a child process
/// ([`child_signs_a_package_in_the_token`]) and written to `name` in the test's folder.
fn sign_in_child(db: &TestDb, env: &[(String, String)], name: &str) -> PathBuf {
    let tar = db.dir().join(name);
    let mut child_env: Vec<_> = db.env().into_iter().chain(env.iter().cloned()).collect();
    child_env.push((
        "WRIT_TEST_HSM_PACKAGE_OUT".into(),
        tar.display().to_string(),
    ));
    let out = run_child("hsm::child_signs_a_package_in_the_token", &child_env);
    assert!(
        out.status.success() && tar.exists(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    tar
}

/// `writ package verify TAR --key` with the public key `pem`: whether it verifies, and what it
/// printed.
fn verify_package(db: &TestDb, tar: &Path, pem: &str) -> (bool, String) {
    let key = db.dir().join("check.pem");
    std::fs::write(&key, pem).unwrap();
    let out = writ_for(db, &[])
        .args(["package", "verify"])
        .arg(tar)
        .arg("--key")
        .arg(&key)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Issue 22, key rotation in the token: `writ keys rotate --package` with the package key in
/// the token generates the new key pair there, retires the old one (renamed
/// `<label>.retired-<key id>` in the token, its public half appended to the retired keys), puts
/// the new one under the settings' label and records `package.key_rotated`. A package signed
/// before verifies with the old key, one signed after with the new key and not the old;
/// `writ keys show --package` lists the new key, then the retired one. Before, the command
/// refused ("rotating it there is not supported yet").
#[test]
fn rotating_the_package_key_in_the_token_keeps_old_packages_verifiable() {
    let db = TestDb::new(Backend::Sqlite);
    let Some(token) = softhsm(db.dir()) else {
        return;
    };
    let env = token.env("PACKAGE", PIN);
    run_ok(&db, &env, &["migrate"]);
    run_ok(&db, &env, &["keys", "init"]);
    let old = pem_of(&run_ok(
        &db,
        &env,
        &["keys", "init", "--package", "--pkcs11"],
    ));
    let sign = |name: &str| sign_in_child(&db, &env, name);
    let verifies = |tar: &Path, pem: &str| verify_package(&db, tar, pem).0;
    let before = sign("before.tar");

    let rotated = run_ok(&db, &env, &["keys", "rotate", "--package"]);
    assert!(rotated.contains("rotated the package key"), "{rotated}");
    let new = pem_of(&rotated);
    assert_ne!(new, old);
    let shown = pems(&run_ok(&db, &env, &["keys", "show", "--package"]));
    assert_eq!(
        shown,
        vec![new.clone(), old.clone()],
        "current, then retired"
    );
    run_ok(&db, &[], &["audit", "checkpoint"]);
    let audit = run_ok(&db, &[], &["audit", "export"]);
    assert!(
        audit.contains("package.key_rotated"),
        "the rotation is audited"
    );

    let after = sign("after.tar");
    assert!(
        verifies(&before, &old),
        "a package signed before verifies with the old key"
    );
    assert!(
        verifies(&after, &new),
        "a package signed after verifies with the new key"
    );
    assert!(!verifies(&after, &old), "and not with the old one");

    // The token holds the retired pair under its new name; a second rotation works the same.
    let again = run_ok(&db, &env, &["keys", "rotate", "--package"]);
    let newest = pem_of(&again);
    let shown = pems(&run_ok(&db, &env, &["keys", "show", "--package"]));
    assert_eq!(
        shown,
        vec![newest, new, old],
        "current, then retired, latest first"
    );
}

/// The child of [`a_package_signed_in_the_token_verifies_offline`]: builds a package with the
/// package key its settings (environment) name, and writes it where the parent said.
#[test]
#[ignore = "run by a_package_signed_in_the_token_verifies_offline in a child process"]
fn child_signs_a_package_in_the_token() {
    let out = std::env::var_os("WRIT_TEST_HSM_PACKAGE_OUT")
        .expect("run by a_package_signed_in_the_token_verifies_offline");
    let settings = writ::settings::Settings::load(&writ::settings::Sources {
        base_dir: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
        file: None,
        env: None,
    })
    .unwrap();
    let key = writ::disclosure::keys::signing_key(&settings.package).unwrap();
    assert!(matches!(key, writ::keystore::Key::Token(_)));
    let built = writ::disclosure::package::build(&crate::package::input(), &key).unwrap();
    std::fs::write(out, built.tar).unwrap();
}

/// Runs the ignored test `name` of this binary in a child process with `env` on top of this
/// one's: a child loads the token's module with this test's `SOFTHSM2_CONF` (a module is
/// loaded once per process, so tests in one process could not each have their own token).
fn run_child(name: &str, env: &[(String, String)]) -> std::process::Output {
    let mut child = Command::new(std::env::current_exe().unwrap());
    child.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (k, v) in env {
        child.env(k, v);
    }
    child.output().unwrap()
}

/// Issue 22: a package key held in the token signs the request token of an HI-1 DELIVER
/// (`etsi::deliver`, the same signer as the e-Evidence calls), and the receiver, the test's
/// stand-in HI-1 endpoint, verifies it with `jsonwebtoken` against `/packages/public-key` and
/// acknowledges it. Before, such a DELIVER was refused ("a package key in a PKCS#11 token
/// cannot sign them yet") and never acknowledged.
#[test]
fn a_token_held_package_key_signs_an_hi1_deliver_the_receiver_accepts() {
    let db = TestDb::new(Backend::Sqlite);
    let Some(token) = softhsm(db.dir()) else {
        return;
    };
    let env = token.env("PACKAGE", PIN);
    let made = run_ok(&db, &env, &["keys", "init", "--package", "--pkcs11"]);
    let public = pem_of(&made);
    let mut child_env = env.clone();
    child_env.push(("WRIT_TEST_HSM_PACKAGE_PUBLIC".into(), public));
    let out = run_child("hsm::child_delivers_with_the_token_package_key", &child_env);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The child of [`a_token_held_package_key_signs_an_hi1_deliver_the_receiver_accepts`]: the
/// HI-1 round trip of `etsi`, with the package key the parent made in the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by a_token_held_package_key_signs_an_hi1_deliver_the_receiver_accepts in a child process"]
async fn child_delivers_with_the_token_package_key() {
    let public = std::env::var("WRIT_TEST_HSM_PACKAGE_PUBLIC")
        .expect("run by a_token_held_package_key_signs_an_hi1_deliver_the_receiver_accepts");
    let vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("WRIT_PACKAGE__") || k == "WRIT_PKCS11_PIN")
        .collect();
    let extra = pairs(&vars);
    // The settings the round trip's server gets name the token's key, not a file.
    let settings = TestDb::new(Backend::Sqlite).settings(&extra);
    let key = writ::disclosure::keys::signing_key(&settings.package).unwrap();
    assert!(matches!(key, writ::keystore::Key::Token(_)), "{key:?}");
    assert_eq!(
        writ::disclosure::keys::public_pem(&key.public().unwrap()),
        public
    );
    crate::etsi::hi1_task_round_trip(Backend::Sqlite, &extra).await;
}

/// `writ serve` with the checkpoint key in the token answers `/readyz` with 200; with the PIN
/// wrong, the token, the key or the module missing, with 503 naming the reason (never the
/// PIN); `writ doctor` says the same.
#[test]
fn readyz_names_why_the_token_key_cannot_sign() {
    let db = TestDb::new(Backend::Sqlite);
    let Some(token) = softhsm(db.dir()) else {
        return;
    };
    let good = token.env("AUDIT", PIN);
    run_ok(&db, &good, &["migrate"]);
    run_ok(&db, &good, &["keys", "init", "--pkcs11"]);

    let readyz = |env: &[(String, String)]| serve_readyz(&db, env);
    let with = |key: &str, value: &str| {
        let mut env = good.clone();
        env.retain(|(k, _)| k != key);
        env.push((key.to_owned(), value.to_owned()));
        env
    };

    let ready = readyz(&good);
    assert_eq!(ready.code, 200, "{}", ready.body);

    let wrong_pin = with("WRIT_PKCS11_PIN", "000000");
    let cases = [
        (
            wrong_pin.clone(),
            "PKCS#11 token `writ-test` refused the PIN (wrong PIN)",
        ),
        (
            with("WRIT_AUDIT__PKCS11__TOKEN_LABEL", "not-there"),
            "no PKCS#11 token labelled `not-there`",
        ),
        (
            with("WRIT_AUDIT__PKCS11__KEY_LABEL", "no-such-key"),
            "no Ed25519 key labelled `no-such-key` in PKCS#11 token `writ-test`",
        ),
        (
            with("WRIT_AUDIT__PKCS11__MODULE", "/nonexistent/libpkcs11.so"),
            "the PKCS#11 module /nonexistent/libpkcs11.so does not exist",
        ),
    ];
    for (env, reason) in &cases {
        let answer = readyz(env);
        assert_eq!(answer.code, 503, "{reason}: {}", answer.body);
        assert!(
            answer.body.contains("checkpoint key is not available") && answer.body.contains(reason),
            "{reason}: {}",
            answer.body
        );
        assert!(!answer.body.contains("000000"));
    }

    let doctor = writ_for(&db, &pairs(&wrong_pin))
        .arg("doctor")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(!doctor.status.success());
    assert!(
        said.contains("FIX   checkpoint key") && said.contains("refused the PIN"),
        "{said}"
    );
}
