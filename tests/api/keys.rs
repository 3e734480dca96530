//! Issue 22, checkpoint key rotation: `writ keys rotate` as an operator runs it, and the
//! verifiers an auditor runs afterwards.

use std::path::Path;

use crate::cli::writ_for;
use crate::helpers::{Backend, TestDb};

/// The stdout of a successful `writ` run.
fn run_ok(db: &TestDb, extra: &[(&str, &str)], args: &[&str]) -> String {
    let out = writ_for(db, extra).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "writ {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The stderr of a failed `writ` run.
fn run_failing(db: &TestDb, extra: &[(&str, &str)], args: &[&str]) -> String {
    let out = writ_for(db, extra).args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "writ {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// `writ audit verify EXPORT --key KEY`, its stdout or stderr.
fn verify(db: &TestDb, export: &Path, key: &Path) -> Result<String, String> {
    let out = writ_for(db, &[])
        .args(["audit", "verify"])
        .arg(export)
        .arg("--key")
        .arg(key)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8(out.stderr).unwrap())
    }
}

/// The `note verifier key:` line of `writ keys show`.
fn verifier_key(shown: &str) -> String {
    shown
        .lines()
        .find_map(|l| l.strip_prefix("note verifier key: "))
        .unwrap()
        .to_owned()
}

crate::both_backends!(
    rotating_the_checkpoint_key_keeps_old_checkpoints_verifiable_and_refuses_the_retired_key
);

/// A new key signs from the rotation on; checkpoints before and after it verify, offline with
/// the published key set and live; the rotation is an audit entry that the old key signs last;
/// a checkpoint signed by the retired key after the rotation is refused by the signer and by
/// the offline verifier.
async fn rotating_the_checkpoint_key_keeps_old_checkpoints_verifiable_and_refuses_the_retired_key(
    backend: Backend,
) {
    let db = TestDb::new(backend);
    run_ok(&db, &[], &["migrate"]);
    run_ok(&db, &[], &["keys", "init"]);
    run_ok(&db, &[], &["keys", "init", "--package"]);
    // Entries to sign: each package key rotation appends one.
    run_ok(&db, &[], &["keys", "rotate", "--package"]);
    run_ok(&db, &[], &["audit", "checkpoint"]);
    let old_vkey = verifier_key(&run_ok(&db, &[], &["keys", "show"]));
    let old_key_copy = db.dir().join("old-audit.key");
    std::fs::copy(db.dir().join("audit.key"), &old_key_copy).unwrap();
    let old_only = db.dir().join("old-key.txt");
    std::fs::write(&old_only, format!("{old_vkey}\n")).unwrap();

    let rotated = run_ok(&db, &[], &["keys", "rotate"]);
    let seq: u64 = rotated
        .split("recorded as audit entry ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{rotated}"));
    assert!(
        rotated.contains(&format!("its last checkpoint (size {})", seq + 1)),
        "{rotated}"
    );
    assert!(!db.dir().join("audit.key.next").exists());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(db.dir().join("audit.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // The log grows and the new key signs.
    run_ok(&db, &[], &["keys", "rotate", "--package"]);
    run_ok(&db, &[], &["audit", "checkpoint"]);
    let shown = run_ok(&db, &[], &["keys", "show"]);
    let new_vkey = verifier_key(&shown);
    assert_ne!(new_vkey, old_vkey);
    let key_set: String = shown
        .lines()
        .skip_while(|l| !l.starts_with("checkpoint keys with the sizes"))
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        key_set,
        format!("{old_vkey} 1-{}\n{new_vkey} {}-\n", seq + 1, seq + 2),
        "{shown}"
    );
    let key_file = db.dir().join("checkpoint-keys.txt");
    std::fs::write(&key_file, &key_set).unwrap();

    // The rotation is in the log, naming both keys and where each stops and starts.
    let export = db.dir().join("export.jsonl");
    run_ok(
        &db,
        &[],
        &["audit", "export", "-o", export.to_str().unwrap()],
    );
    let text = std::fs::read_to_string(&export).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("\"event\":\"audit.checkpoint_key_rotated\""))
        .unwrap_or_else(|| panic!("no rotation entry in {text}"));
    assert!(
        line.starts_with(&format!("{{\"seq\":{seq},"))
            && line.contains(&format!("\"old_key_last_size\":{}", seq + 1))
            && line.contains(&format!("\"new_key_first_size\":{}", seq + 2)),
        "{line}"
    );
    // The old key signed the checkpoint that covers the rotation entry: it is in the export.
    let sizes: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with("{\"checkpoint\":"))
        .map(|l| {
            let line: serde_json::Value = serde_json::from_str(l).unwrap();
            let note = line["checkpoint"].as_str().unwrap().to_owned();
            note.lines().nth(1).unwrap().parse().unwrap()
        })
        .collect();
    assert!(sizes.contains(&(seq + 1)), "{sizes:?}");

    // Checkpoints before and after the rotation verify, offline with the key set and live.
    let report = verify(&db, &export, &key_file).unwrap();
    assert!(report.starts_with("OK: entries 0.."), "{report}");
    assert!(
        report.contains(&format!(
            "{} intermediate checkpoint(s) checked",
            sizes.len()
        )),
        "{report}"
    );
    // A key set that moves the boundary away from the rotation entry is refused, even where
    // every signature would verify under it.
    let shifted = db.dir().join("shifted-keys.txt");
    std::fs::write(
        &shifted,
        format!("{old_vkey} 1-{seq}\n{new_vkey} {}-\n", seq + 1),
    )
    .unwrap();
    let err = verify(&db, &export, &shifted).unwrap_err();
    assert!(
        err.contains(&format!(
            "entry {seq} rotates the checkpoint key, but the given key set does not say so"
        )),
        "{err}"
    );
    let err = verify(&db, &export, &old_only).unwrap_err();
    assert!(err.contains("does not verify under the given key"), "{err}");
    assert!(run_ok(&db, &[], &["audit", "verify"]).starts_with("OK: all"));

    // An instance still holding the old key cannot sign after the rotation.
    let old_path = old_key_copy.to_str().unwrap().to_owned();
    let old_instance = [("WRIT_AUDIT__SIGNING_KEY_PATH", old_path.as_str())];
    run_ok(&db, &old_instance, &["keys", "rotate", "--package"]);
    let refused = run_failing(&db, &old_instance, &["audit", "checkpoint"]);
    assert!(
        refused.contains(&format!(
            "retired by the key rotation at entry {seq} (its last checkpoint is of size {})",
            seq + 1
        )),
        "{refused}"
    );

    // A checkpoint the retired key signed for a size after its last is refused offline too:
    // the export's own checkpoint, re-signed with the old key.
    let old_key = writ::audit::keys::load(&old_key_copy).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut header: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let note = header["checkpoint"].as_str().unwrap().to_owned();
    let body = &note[..note.find("\n\n").unwrap() + 1];
    let origin = header["origin"].as_str().unwrap().to_owned();
    let forged = writ::audit::note::NoteSigner::new(origin, old_key)
        .unwrap()
        .sign(body)
        .unwrap();
    header["checkpoint"] = serde_json::Value::String(forged);
    lines[0] = header.to_string();
    let forged_export = db.dir().join("forged.jsonl");
    std::fs::write(&forged_export, lines.join("\n") + "\n").unwrap();
    let err = verify(&db, &forged_export, &key_file).unwrap_err();
    assert!(
        err.contains("signed by a retired checkpoint key (retired by the key rotation at entry"),
        "{err}"
    );

    // A server publishes the key set where auditors fetch the key from.
    let settings = db.settings(&[]);
    let app = crate::helpers::spawn_with_settings(db, settings).await;
    let res = app.get("/audit/keys/checkpoint.txt").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), key_set);
    let keys: serde_json::Value = app.get("/audit/keys").await.json().await.unwrap();
    let listed = keys["checkpoint_keys"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{keys}");
    assert_eq!(listed[0]["note_verifier_key"], old_vkey.as_str());
    assert_eq!(listed[0]["last_size"], seq + 1);
    assert_eq!(listed[0]["retired_at_entry"], seq);
    assert_eq!(listed[1]["note_verifier_key"], new_vkey.as_str());
    assert_eq!(listed[1]["first_size"], seq + 2);
    assert!(listed[1]["last_size"].is_null());
}
