//! The audit log, end to end: appends, triggers, checkpoints, proofs, exports, and an attacker
//! with database access.

use std::io::Cursor;

use chrono::Utc;
use diesel::connection::SimpleConnection;
use writ::audit::merkle::{self, Hash};
use writ::audit::note::{NoteVerifier, open_checkpoint};
use writ::audit::proof::InclusionProofDoc;
use writ::audit::verify::{self, Failure, VerifierKey};
use writ::audit::{Actor, ActorKind, AuditError, NewEntry, append};
use writ::db::schema::writ_meta;
use writ::db::{Db, DbConn, write_tx};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};

both_backends!(
    appends_commit_and_roll_back_with_the_callers_transaction,
    the_database_refuses_to_update_or_delete_audit_rows,
    concurrent_appends_from_two_pools_stay_gap_free,
    checkpoints_are_public_signed_notes_and_signing_needs_an_auditor,
    inclusion_and_consistency_proofs_verify,
    exports_verify_offline_in_both_formats,
    a_modified_entry_is_named,
    a_removed_or_reordered_entry_is_named,
    a_rewrite_with_recomputed_hashes_is_bracketed_by_checkpoints,
    a_rebuilt_log_is_refused_and_caught_by_the_saved_checkpoint,
    a_rollback_to_an_old_backup_stops_signing,
    the_background_signer_and_the_webhook_publish_checkpoints,
    filtered_views_say_they_are_not_complete,
    a_row_inserted_into_the_database_is_never_signed,
    entries_from_before_authenticators_are_accepted_until_a_cosigned_checkpoint,
    exports_carry_authenticators_and_the_offline_verifier_checks_them,
    the_live_check_reads_the_outside_copy_before_the_database,
    an_unsigned_entry_edited_in_place_stops_signing,
    the_background_verification_catches_a_signed_entry_edited_in_place,
    the_status_reports_a_failing_signer,
    a_consistency_proof_from_size_0_is_refused,
    the_default_origin_is_domain_style_and_an_older_log_keeps_its_name,
);

fn entry(i: u64) -> NewEntry {
    NewEntry::new(Actor::new(ActorKind::Staff, "u_1"), "test.event")
        .order(format!("ord_{}", i % 3))
        .jurisdiction(if i.is_multiple_of(2) { "fr" } else { "de" })
        .reference("n", i)
}

/// Appends `count` entries, each in its own transaction, numbering them from `from`.
async fn append_entries(pool: &Db, from: u64, count: u64) {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.conn().unwrap();
        for i in from..from + count {
            write_tx(&mut conn, |c| append(c, &entry(i), Utc::now())).unwrap();
        }
    })
    .await
    .unwrap();
}

async fn sign(app: &TestApp) -> String {
    let res = app.post_as_auditor("/audit/checkpoint").await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    res.text().await.unwrap()
}

async fn verifier(app: &TestApp) -> NoteVerifier {
    let keys: serde_json::Value = app.get("/audit/keys").await.json().await.unwrap();
    NoteVerifier::new(keys["note_verifier_key"].as_str().unwrap()).unwrap()
}

async fn export(app: &TestApp, query: &str) -> String {
    let res = app.get_as_auditor(&format!("/audit/export{query}")).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    res.text().await.unwrap()
}

async fn verify(
    app: &TestApp,
    export: &str,
    saved: Option<&str>,
) -> Result<verify::Report, Failure> {
    let key = VerifierKey::Vkey(verifier(app).await);
    verify::verify_export(Cursor::new(export.as_bytes()), &key, saved)
}

/// Runs SQL as a database administrator who first switches the append-only triggers off.
async fn as_attacker(app: &TestApp, sql: &str) {
    let pool = app.pool.clone();
    let sql = sql.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.conn().unwrap();
        let disable = match &*conn {
            DbConn::Sqlite(_) => {
                "DROP TRIGGER IF EXISTS audit_entries_no_update; DROP TRIGGER IF EXISTS audit_entries_no_delete; \
                 DROP TRIGGER IF EXISTS audit_nodes_no_update; DROP TRIGGER IF EXISTS audit_nodes_no_delete; \
                 DROP TRIGGER IF EXISTS audit_checkpoints_no_update; DROP TRIGGER IF EXISTS audit_checkpoints_no_delete;"
            }
            DbConn::Postgres(_) => {
                "ALTER TABLE audit_entries DISABLE TRIGGER USER; ALTER TABLE audit_nodes DISABLE TRIGGER USER; \
                 ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;"
            }
        };
        conn.batch_execute(disable).unwrap();
        conn.batch_execute(&sql).unwrap();
    })
    .await
    .unwrap();
}

async fn appends_commit_and_roll_back_with_the_callers_transaction(backend: Backend) {
    let app = spawn_app(backend).await;
    let pool = app.pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.conn().unwrap();
        // Committed together.
        write_tx(&mut conn, |c| {
            diesel::insert_into(writ_meta::table)
                .values((writ_meta::key.eq("test.change"), writ_meta::value.eq("1")))
                .execute(c)?;
            append(c, &entry(0), Utc::now())
        })
        .unwrap();
        // Rolled back together: the change fails after its entry was appended.
        let failed: Result<(), AuditError> = write_tx(&mut conn, |c| {
            append(c, &entry(1), Utc::now())?;
            diesel::insert_into(writ_meta::table)
                .values((
                    writ_meta::key.eq("test.change"),
                    writ_meta::value.eq("duplicate"),
                ))
                .execute(c)?;
            Ok(())
        });
        assert!(failed.is_err());
        assert_eq!(
            writ::audit::log::size(&mut conn).unwrap(),
            1,
            "the rolled-back entry is gone"
        );
        // Outside a transaction an entry could outlive its change: refused.
        assert!(matches!(
            append(&mut conn, &entry(2), Utc::now()),
            Err(AuditError::NotInTransaction)
        ));
        // A bad entry is refused with the field named, and nothing is written.
        let bad = NewEntry::new(Actor::new(ActorKind::Staff, "u 1"), "test.event");
        let err = write_tx(&mut conn, |c| append(c, &bad, Utc::now()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("actor.id"), "{err}");
        assert_eq!(writ::audit::log::size(&mut conn).unwrap(), 1);
    })
    .await
    .unwrap();
}

use diesel::{ExpressionMethods, RunQueryDsl};

async fn the_database_refuses_to_update_or_delete_audit_rows(backend: Backend) {
    let app = spawn_app(backend).await;
    append_entries(&app.pool, 0, 3).await;
    sign(&app).await;
    let pool = app.pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.conn().unwrap();
        let mut attempts = vec![
            "UPDATE audit_entries SET event = 'x.y' WHERE seq = 1",
            "DELETE FROM audit_entries WHERE seq = 2",
            "UPDATE audit_nodes SET hash = hash WHERE level = 0",
            "DELETE FROM audit_nodes",
            "UPDATE audit_checkpoints SET note = 'forged'",
            "DELETE FROM audit_checkpoints",
        ];
        if backend == Backend::Postgres {
            attempts.extend([
                "TRUNCATE audit_entries",
                "TRUNCATE audit_nodes",
                "TRUNCATE audit_checkpoints",
            ]);
        }
        for sql in attempts {
            let err = conn.batch_execute(sql).expect_err(sql).to_string();
            assert!(err.contains("append-only"), "{sql}: {err}");
        }
        assert_eq!(writ::audit::log::size(&mut conn).unwrap(), 3);
    })
    .await
    .unwrap();
    let status: serde_json::Value = app
        .get_as_auditor("/audit/status")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["signing"], "ok");
}

async fn concurrent_appends_from_two_pools_stay_gap_free(backend: Backend) {
    const THREADS: u64 = 6;
    const EACH: u64 = 25;
    let app = spawn_app(backend).await;
    let second_pool = Db::open(&app.db.settings(&[]).database).unwrap();
    writ::audit::service::install_entry_key(&second_pool, &app.db.settings(&[]).audit, false)
        .unwrap();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let pool = if t % 2 == 0 {
                app.pool.clone()
            } else {
                second_pool.clone()
            };
            std::thread::spawn(move || {
                let mut conn = pool.conn().unwrap();
                for i in 0..EACH {
                    write_tx(&mut conn, |c| append(c, &entry(t * 100 + i), Utc::now())).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let pool = app.pool.clone();
    let leaves = tokio::task::spawn_blocking(move || {
        let mut conn = pool.conn().unwrap();
        writ::audit::log::entries(&mut conn, 0, u64::MAX / 2).unwrap()
    })
    .await
    .unwrap();
    let seqs: Vec<i64> = leaves.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (0..(THREADS * EACH) as i64).collect::<Vec<_>>(),
        "gap-free and unique"
    );
    // The tree the database kept is the tree of the leaves it kept.
    let note = sign(&app).await;
    let cp = open_checkpoint(&note, &verifier(&app).await).unwrap();
    let tree = merkle::MemoryTree::from_leaf_hashes(
        leaves.iter().map(|e| merkle::leaf_hash(e.leaf.as_bytes())),
    );
    assert_eq!(cp.size, THREADS * EACH);
    assert_eq!(cp.root, merkle::root(cp.size, &tree).unwrap());
    let report = verify(&app, &export(&app, "").await, None).await.unwrap();
    assert_eq!(report.entries, THREADS * EACH);
}

async fn checkpoints_are_public_signed_notes_and_signing_needs_an_auditor(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/audit/checkpoint").await.status(), 404);
    append_entries(&app.pool, 0, 5).await;

    // Signing on demand is for auditors only.
    let res = app
        .client
        .post(format!("{}/audit/checkpoint", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let res = app
        .client
        .post(format!("{}/audit/checkpoint", app.address))
        .bearer_auth("writ_aud_0000")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    for path in [
        "/audit/status",
        "/audit/entries?start=0&end=1",
        "/audit/export",
        "/audit/view",
        "/audit/proofs/inclusion?seq=0",
    ] {
        assert_eq!(app.get(path).await.status(), 401, "{path} needs an auditor");
    }

    let note = sign(&app).await;
    let public = app.get("/audit/checkpoint").await;
    assert_eq!(public.status(), 200);
    assert_eq!(public.text().await.unwrap(), note);
    let cp = open_checkpoint(&note, &verifier(&app).await).unwrap();
    assert_eq!(cp.size, 5);
    assert!(
        cp.origin.starts_with("writ-") && cp.origin.ends_with(".invalid/audit"),
        "domain-style, derived from the deployment id without a public host: {}",
        cp.origin
    );
    // The PEM key verifies the same note, with the origin as key name.
    let keys: serde_json::Value = app.get("/audit/keys").await.json().await.unwrap();
    let pem =
        writ::audit::keys::parse_public_pem(keys["public_key_pem"].as_str().unwrap()).unwrap();
    open_checkpoint(
        &note,
        &NoteVerifier::from_public_key(&cp.origin, pem).unwrap(),
    )
    .unwrap();
    // Nothing new: the same checkpoint, not a new signature.
    assert_eq!(sign(&app).await, note);
    // The outside copy holds it too.
    let copy = std::fs::read_to_string(app.db.dir().join("checkpoint.txt")).unwrap();
    assert_eq!(copy, note);
}

async fn inclusion_and_consistency_proofs_verify(backend: Backend) {
    let app = spawn_app(backend).await;
    append_entries(&app.pool, 0, 7).await;
    let old = open_checkpoint(&sign(&app).await, &verifier(&app).await).unwrap();
    append_entries(&app.pool, 7, 14).await;
    let new = open_checkpoint(&sign(&app).await, &verifier(&app).await).unwrap();
    let vk = verifier(&app).await;

    for seq in 0..new.size {
        let p: serde_json::Value = app
            .get_as_auditor(&format!("/audit/proofs/inclusion?seq={seq}"))
            .await
            .json()
            .await
            .unwrap();
        let proof = proof_hashes(&p);
        let leaf = hash(p["leaf_hash"].as_str().unwrap());
        merkle::verify_inclusion(&leaf, seq, new.size, &proof, &new.root).unwrap();
    }
    // At an older signed size, and as a C2SP tlog-proof document.
    let text = app
        .get_as_auditor(&format!(
            "/audit/proofs/inclusion?seq=3&size={}&format=tlog-proof",
            old.size
        ))
        .await
        .text()
        .await
        .unwrap();
    let doc = InclusionProofDoc::parse(&text).unwrap();
    #[derive(serde::Deserialize)]
    struct Page {
        entries: Vec<Raw>,
    }
    #[derive(serde::Deserialize)]
    struct Raw {
        leaf: Box<serde_json::value::RawValue>,
    }
    let page: Page = serde_json::from_str(
        &app.get_as_auditor("/audit/entries?start=3&end=4")
            .await
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let leaf_bytes = page.entries[0].leaf.get().to_owned();
    assert_eq!(
        doc.verify(leaf_bytes.as_bytes(), &vk).unwrap().size,
        old.size
    );

    let c: serde_json::Value = app
        .get_as_auditor(&format!("/audit/proofs/consistency?from={}", old.size))
        .await
        .json()
        .await
        .unwrap();
    let proof = proof_hashes(&c);
    merkle::verify_consistency(old.size, new.size, &proof, &old.root, &new.root).unwrap();
    assert!(merkle::verify_consistency(old.size, new.size, &proof, &new.root, &new.root).is_err());

    // Out of range, unsigned sizes and typos are 400s that say what is wrong.
    for (path, needle) in [
        (
            format!("/audit/proofs/inclusion?seq={}", new.size),
            "not in the tree",
        ),
        (
            "/audit/proofs/inclusion?seq=0&size=3".to_owned(),
            "no checkpoint was signed at size 3",
        ),
        (
            format!("/audit/proofs/consistency?from={}", new.size + 1),
            "larger",
        ),
        ("/audit/proofs/inclusion?seq=0&sise=3".to_owned(), "sise"),
        ("/audit/proofs/inclusion?seq=-1".to_owned(), "seq"),
        ("/audit/entries?start=0&end=5000".to_owned(), "1000"),
    ] {
        let res = app.get_as_auditor(&path).await;
        assert_eq!(res.status(), 400, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains(needle),
            "{path}: {body}"
        );
    }
}

fn proof_hashes(answer: &serde_json::Value) -> Vec<Hash> {
    answer["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| hash(h.as_str().unwrap()))
        .collect()
}

fn hash(hex_text: &str) -> Hash {
    hex::decode(hex_text).unwrap().try_into().unwrap()
}

async fn exports_verify_offline_in_both_formats(backend: Backend) {
    let app = spawn_app(backend).await;
    append_entries(&app.pool, 0, 4).await;
    let saved = sign(&app).await;
    append_entries(&app.pool, 4, 9).await;
    sign(&app).await;
    append_entries(&app.pool, 13, 3).await; // appended after the last checkpoint: not exported

    let jsonl = export(&app, "").await;
    let report = verify(&app, &jsonl, Some(&saved)).await.unwrap();
    // Checked against the signed checkpoints at 4 and at 13 as it went.
    assert_eq!(
        (
            report.start,
            report.end,
            report.tree_size,
            report.checkpoints
        ),
        (0, 13, 13, 2)
    );
    assert_eq!(report.saved_checkpoint, Some(4));

    let csv = export(&app, "?format=csv").await;
    assert!(csv.lines().nth(1).unwrap().starts_with("seq,at,actor_kind"));
    verify(&app, &csv, Some(&saved)).await.unwrap();

    // A middle range verifies with the nodes around it; against the saved checkpoint it needs
    // the consistency proof, and says so without it.
    let middle = export(&app, "?start=5&end=9").await;
    assert_eq!(verify(&app, &middle, None).await.unwrap().entries, 4);
    let err = verify(&app, &middle, Some(&saved))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("consistency_from=4"), "{err}");
    let middle = export(&app, "?start=5&end=9&consistency_from=4&format=csv").await;
    verify(&app, &middle, Some(&saved)).await.unwrap();

    // A CSV column edited by hand (the leaf kept) is caught.
    let edited = csv.replacen(",test.event,ord_1,", ",test.other,ord_1,", 1);
    let err = verify(&app, &edited, None).await.unwrap_err().to_string();
    assert!(err.contains("entry 1") && err.contains("`event`"), "{err}");
    // A truncated file is caught.
    let cut: String = jsonl.lines().take(6).map(|l| format!("{l}\n")).collect();
    let err = verify(&app, &cut, None).await.unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
    // Another key does not verify.
    let (other, _) = ed25519_key_pair();
    let err = verify::verify_export(Cursor::new(jsonl.as_bytes()), &other, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not verify"), "{err}");
    // Bad ranges are refused up front.
    assert_eq!(
        app.get_as_auditor("/audit/export?start=5&end=99")
            .await
            .status(),
        400
    );
    assert_eq!(
        app.get_as_auditor("/audit/export?format=xml")
            .await
            .status(),
        400
    );

    // The offline command: a file, the PEM public key, the saved checkpoint; no database.
    let dir = app.db.dir();
    std::fs::write(dir.join("export.jsonl"), &jsonl).unwrap();
    std::fs::write(dir.join("saved.note"), &saved).unwrap();
    let keys: serde_json::Value = app.get("/audit/keys").await.json().await.unwrap();
    std::fs::write(
        dir.join("audit.pub"),
        keys["public_key_pem"].as_str().unwrap(),
    )
    .unwrap();
    let out = crate::cli::writ_command()
        .current_dir(dir)
        .env_clear()
        .env("WRIT_DATABASE__URL", "postgres://nowhere.invalid/none")
        .args([
            "audit",
            "verify",
            "export.jsonl",
            "--key",
            "audit.pub",
            "--checkpoint",
            "saved.note",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("OK: entries 0..13") && stdout.contains("saved checkpoint of size 4"),
        "{stdout}"
    );
}

fn ed25519_key_pair() -> (VerifierKey, ()) {
    let signer = writ::audit::note::NoteSigner::from_seed("someone.else/log", &[7; 32]).unwrap();
    (VerifierKey::Vkey(signer.verifier()), ())
}

/// 12 entries with checkpoints at 4, 8 and 12; returns the last note.
async fn signed_log(app: &TestApp) -> String {
    let mut note = String::new();
    for round in 0..3 {
        append_entries(&app.pool, round * 4, 4).await;
        note = sign(app).await;
    }
    verify(app, &export(app, "").await, Some(&note))
        .await
        .unwrap();
    note
}

async fn a_modified_entry_is_named(backend: Backend) {
    let app = spawn_app(backend).await;
    signed_log(&app).await;
    as_attacker(
        &app,
        "UPDATE audit_entries SET leaf = replace(leaf, '\"n\":6', '\"n\":666') WHERE seq = 6",
    )
    .await;
    for query in ["", "?format=csv"] {
        let err = verify(&app, &export(&app, query).await, None)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("entry 6:") && err.contains("modified"),
            "{err}"
        );
    }
}

async fn a_removed_or_reordered_entry_is_named(backend: Backend) {
    let app = spawn_app(backend).await;
    signed_log(&app).await;
    as_attacker(&app, "UPDATE audit_entries SET seq = 1000 WHERE seq = 2; UPDATE audit_entries SET seq = 2 WHERE seq = 3; UPDATE audit_entries SET seq = 3 WHERE seq = 1000;").await;
    let err = verify(&app, &export(&app, "").await, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("entry 2:") && err.contains("says it is entry 3"),
        "{err}"
    );
    as_attacker(&app, "DELETE FROM audit_entries WHERE seq = 9").await;
    let err = verify(&app, &export(&app, "?start=4").await, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("entry 9:") && err.contains("missing"),
        "{err}"
    );
    // Shift everything from 5 up by one and slip a forged entry in at 5.
    as_attacker(
        &app,
        "UPDATE audit_entries SET seq = seq + 1000000 WHERE seq >= 5 AND seq < 9; \
         UPDATE audit_entries SET seq = seq - 999999 WHERE seq >= 1000000; \
         INSERT INTO audit_entries (seq, at, actor_kind, actor_id, event, order_id, jurisdiction, leaf) \
         SELECT 5, at, actor_kind, actor_id, 'test.forged', order_id, jurisdiction, replace(replace(leaf, '\"seq\":4', '\"seq\":5'), 'test.event', 'test.forged') FROM audit_entries WHERE seq = 4;",
    )
    .await;
    let err = verify(&app, &export(&app, "?start=4&end=8").await, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("entry 5:"), "{err}");
}

async fn a_rewrite_with_recomputed_hashes_is_bracketed_by_checkpoints(backend: Backend) {
    let app = spawn_app(backend).await;
    signed_log(&app).await;
    // A careful attacker rewrites entry 6 and its recorded leaf hash, so the per-entry check
    // passes; the checkpoint signed at size 8 no longer holds, which confines the damage.
    let pool = app.pool.clone();
    let (leaf, new_hash) = tokio::task::spawn_blocking(move || {
        let mut conn = pool.conn().unwrap();
        let old = writ::audit::log::entries(&mut conn, 6, 7)
            .unwrap()
            .pop()
            .unwrap();
        let leaf = old.leaf.replace("\"n\":6", "\"n\":7");
        (
            leaf.clone(),
            hex::encode(merkle::leaf_hash(leaf.as_bytes())),
        )
    })
    .await
    .unwrap();
    let hash_literal = match backend {
        Backend::Sqlite => format!("X'{new_hash}'"),
        Backend::Postgres => format!("'\\x{new_hash}'::bytea"),
    };
    as_attacker(
        &app,
        &format!(
            "UPDATE audit_entries SET leaf = '{}' WHERE seq = 6; UPDATE audit_nodes SET hash = {hash_literal} WHERE level = 0 AND idx = 6;",
            leaf.replace('\'', "''")
        ),
    )
    .await;
    let err = verify(&app, &export(&app, "").await, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("entries 4 to 7") && err.contains("size 8"),
        "{err}"
    );
    // The live check run by operators notices too.
    let pool = app.pool.clone();
    let settings = app.db.settings(&[]).audit;
    let live = tokio::task::spawn_blocking(move || {
        let signer =
            writ::audit::service::load_signer(&settings, &mut pool.conn().unwrap(), false).unwrap();
        writ::audit::service::verify_live(&pool, &signer)
    })
    .await
    .unwrap();
    // With the entry key it names the entry: its authenticator covers the original leaf.
    let err = live.unwrap_err();
    assert!(
        err.contains("entry 6") && err.contains("authenticator does not verify"),
        "{err}"
    );
}

async fn a_rebuilt_log_is_refused_and_caught_by_the_saved_checkpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    let saved = signed_log(&app).await;
    // Wipe everything and rebuild a well-formed but different log of the same length.
    as_attacker(
        &app,
        "DELETE FROM audit_checkpoints; DELETE FROM audit_nodes; DELETE FROM audit_entries;",
    )
    .await;
    append_entries(&app.pool, 100, 12).await;
    // Writ will not sign it: the copy kept outside the database still holds the old root.
    let res = app.post_as_auditor("/audit/checkpoint").await;
    assert_eq!(res.status(), 409);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("rewritten"),
        "{body}"
    );
    let status: serde_json::Value = app
        .get_as_auditor("/audit/status")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["signing"], "refused");
    // Even if the attacker also destroys that copy and gets a fresh checkpoint signed, the
    // auditor's saved checkpoint catches the rewrite.
    std::fs::remove_file(app.db.dir().join("checkpoint.txt")).unwrap();
    sign(&app).await;
    let err = verify(&app, &export(&app, "").await, Some(&saved))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no longer match the checkpoint you saved"),
        "{err}"
    );
}

async fn a_rollback_to_an_old_backup_stops_signing(backend: Backend) {
    let app = spawn_app(backend).await;
    append_entries(&app.pool, 0, 5).await;
    sign(&app).await;
    append_entries(&app.pool, 5, 5).await;
    let saved = sign(&app).await;
    // The database as it was at size 5: what restoring last night's backup does.
    as_attacker(
        &app,
        "DELETE FROM audit_entries WHERE seq >= 5; DELETE FROM audit_nodes WHERE (idx + 1) * (1 << level) > 5; DELETE FROM audit_checkpoints WHERE size > 5;",
    )
    .await;
    let res = app.post_as_auditor("/audit/checkpoint").await;
    assert_eq!(res.status(), 409);
    let body: serde_json::Value = res.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("holds 5") && detail.contains("covers 10") && detail.contains("backup"),
        "{detail}"
    );
    // Appending more does not let it sign past the gap.
    append_entries(&app.pool, 5, 7).await;
    assert_eq!(app.post_as_auditor("/audit/checkpoint").await.status(), 409);
    // And the auditor's saved checkpoint says entries were lost, whatever the database says now.
    let err = verify(&app, &export(&app, "").await, Some(&saved))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("covers 10"), "{err}");
}

async fn the_background_signer_and_the_webhook_publish_checkpoints(backend: Backend) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!(
        "http://{}/checkpoints?token=s3cret",
        listener.local_addr().unwrap()
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(8);
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read headers and the body announced by Content-Length.
            loop {
                let n = sock.read(&mut chunk).await.unwrap();
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(split) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= split + 4 + len {
                        let _ = tx.send(text[split + 4..split + 4 + len].to_owned()).await;
                        break;
                    }
                }
            }
            sock.write_all(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        }
    });
    let app = spawn_app_with(
        backend,
        &[
            ("WRIT_AUDIT__CHECKPOINT_INTERVAL_SECS", "1"),
            ("WRIT_AUDIT__WEBHOOK_URL", hook.as_str()),
        ],
    )
    .await;
    let vk = verifier(&app).await;
    // The signer may catch the log mid-way; what matters is that it gets to every size.
    append_entries(&app.pool, 0, 3).await;
    let delivered = delivered_up_to(&mut rx, &vk, 3).await;
    assert_eq!(
        app.get("/audit/checkpoint").await.text().await.unwrap(),
        delivered
    );
    append_entries(&app.pool, 3, 2).await;
    delivered_up_to(&mut rx, &vk, 5).await;
}

async fn delivered_up_to(
    rx: &mut tokio::sync::mpsc::Receiver<String>,
    vk: &NoteVerifier,
    size: u64,
) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let note = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("delivered in time")
            .unwrap();
        if open_checkpoint(&note, vk).unwrap().size == size {
            return note;
        }
    }
}

async fn filtered_views_say_they_are_not_complete(backend: Backend) {
    let app = spawn_app(backend).await;
    append_entries(&app.pool, 0, 9).await;
    let page: serde_json::Value = app
        .get_as_auditor("/audit/view?order=ord_1&jurisdiction=de")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["complete"], false);
    assert!(
        page["notice"]
            .as_str()
            .unwrap()
            .contains("not a completeness proof")
    );
    let seqs: Vec<i64> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 7]);
    let page: serde_json::Value = app
        .get_as_auditor("/audit/view?event=test.event&limit=4&after=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["entries"].as_array().unwrap().len(), 4);
    assert_eq!(page["next_after"], 6);
    let since = app
        .get_as_auditor("/audit/view?since=2000-01-01T00:00:00%2B02:00")
        .await;
    assert_eq!(since.status(), 200);
    let future: serde_json::Value = app
        .get_as_auditor("/audit/view?since=2999-01-01T00:00:00Z")
        .await
        .json()
        .await
        .unwrap();
    assert!(future["entries"].as_array().unwrap().is_empty());
    let bad = app.get_as_auditor("/audit/view?since=yesterday").await;
    assert_eq!(bad.status(), 400);
}

/// A hex literal for a bytea/blob column on `backend`.
fn blob_literal(backend: Backend, bytes: &[u8]) -> String {
    match backend {
        Backend::Sqlite => format!("X'{}'", hex::encode(bytes)),
        Backend::Postgres => format!("'\\x{}'::bytea", hex::encode(bytes)),
    }
}

/// The SQL an intruder with write access to the database (no trigger to drop: these are
/// INSERTs) runs to append a well-formed entry at the end of the log: the canonical leaf at the
/// next position, its leaf hash and every tree node it completes, with `authenticator`.
async fn forged_append_sql(
    app: &TestApp,
    backend: Backend,
    authenticator: Option<&[u8]>,
) -> String {
    let pool = app.pool.clone();
    let authenticator = authenticator.map(<[u8]>::to_vec);
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.conn().unwrap();
        let seq = writ::audit::log::size(&mut conn).unwrap();
        let leaf = NewEntry::new(Actor::new(ActorKind::Staff, "u_1"), "order.approved")
            .order("ord_forged")
            .to_leaf(seq, Utc::now())
            .unwrap();
        let text = leaf.to_text();
        let hash = merkle::leaf_hash(text.as_bytes());
        let nodes = merkle::nodes_completed_by_append(
            seq,
            hash,
            &writ::audit::log::DbNodes::new(&mut conn),
        )
        .unwrap();
        let auth = authenticator.map_or("NULL".to_owned(), |a| blob_literal(backend, &a));
        let mut sql = format!(
            "INSERT INTO audit_entries (seq, at, actor_kind, actor_id, event, order_id, jurisdiction, leaf, authenticator) \
             VALUES ({seq}, '{}', 'staff', 'u_1', 'order.approved', 'ord_forged', NULL, '{}', {auth});",
            leaf.at,
            text.replace('\'', "''")
        );
        for (level, idx, h) in nodes {
            sql.push_str(&format!(
                "INSERT INTO audit_nodes (level, idx, hash) VALUES ({level}, {idx}, {});",
                blob_literal(backend, &h)
            ));
        }
        sql
    })
    .await
    .unwrap()
}

/// Runs SQL with the triggers left in place.
async fn run_sql(app: &TestApp, sql: &str) {
    let pool = app.pool.clone();
    let sql = sql.to_owned();
    tokio::task::spawn_blocking(move || pool.conn().unwrap().batch_execute(&sql).unwrap())
        .await
        .unwrap();
}

async fn status(app: &TestApp) -> serde_json::Value {
    let res = app.get_as_auditor("/audit/status").await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn refused_with(app: &TestApp, needles: &[&str]) {
    let res = app.post_as_auditor("/audit/checkpoint").await;
    let code = res.status();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(code, 409, "{body}");
    let detail = body["detail"].as_str().unwrap();
    for needle in needles {
        assert!(detail.contains(needle), "{needle}: {detail}");
    }
    let status = status(app).await;
    assert_eq!(status["signing"], "refused", "{status}");
    for needle in needles {
        assert!(
            status["problem"].as_str().unwrap().contains(needle),
            "{needle}: {status}"
        );
    }
}

async fn a_row_inserted_into_the_database_is_never_signed(backend: Backend) {
    let app = spawn_app(backend).await;
    append_entries(&app.pool, 0, 3).await;
    let before = sign(&app).await;
    // A well-formed entry with its leaf hash and nodes, but no authenticator.
    let sql = forged_append_sql(&app, backend, None).await;
    run_sql(&app, &sql).await;
    refused_with(&app, &["entry 3", "no authenticator"]).await;
    // Appending more does not get it signed either, and nothing new was signed.
    append_entries(&app.pool, 4, 2).await;
    refused_with(&app, &["entry 3"]).await;
    assert_eq!(
        app.get("/audit/checkpoint").await.text().await.unwrap(),
        before
    );
    // The operator's command says the same.
    let out = crate::cli::writ_command()
        .current_dir(app.db.dir())
        .env_clear()
        .envs(app.db.env())
        .args(["audit", "status"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("signing: refused") && stdout.contains("entry 3"),
        "{stdout}"
    );
}

async fn a_forged_authenticator_is_refused_too(backend: Backend) {
    let app = spawn_app(backend).await;
    append_entries(&app.pool, 0, 2).await;
    sign(&app).await;
    let sql = forged_append_sql(&app, backend, Some(&[7u8; 64])).await;
    run_sql(&app, &sql).await;
    refused_with(&app, &["entry 2", "does not verify"]).await;
}

both_backends!(a_forged_authenticator_is_refused_too);

async fn entries_from_before_authenticators_are_accepted_until_a_cosigned_checkpoint(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    append_entries(&app.pool, 0, 3).await;
    // The log as an older Writ left it: three entries without authenticators, counted by the
    // migration that introduced them.
    as_attacker(
        &app,
        "UPDATE audit_entries SET authenticator = NULL; \
         UPDATE writ_meta SET value = '3' WHERE key = 'audit.unauthenticated_before';",
    )
    .await;
    append_entries(&app.pool, 3, 2).await;
    let note = sign(&app).await;
    // Signed, and cosigned with the entry key.
    let keys: serde_json::Value = app.get("/audit/keys").await.json().await.unwrap();
    let entry_verifier = NoteVerifier::new(keys["entry_verifier_key"].as_str().unwrap()).unwrap();
    assert_eq!(open_checkpoint(&note, &entry_verifier).unwrap().size, 5);
    assert_eq!(
        open_checkpoint(&note, &verifier(&app).await).unwrap().size,
        5
    );
    // From here on, a missing authenticator is refused, even below the recorded point moved up.
    append_entries(&app.pool, 5, 1).await;
    as_attacker(
        &app,
        "UPDATE audit_entries SET authenticator = NULL WHERE seq = 5; \
         UPDATE writ_meta SET value = '100' WHERE key = 'audit.unauthenticated_before';",
    )
    .await;
    refused_with(&app, &["entry 5", "no authenticator"]).await;
}

async fn exports_carry_authenticators_and_the_offline_verifier_checks_them(backend: Backend) {
    let app = spawn_app(backend).await;
    append_entries(&app.pool, 0, 6).await;
    sign(&app).await;
    let keys: serde_json::Value = app.get("/audit/keys").await.json().await.unwrap();
    let entry_pem = keys["entry_public_key_pem"].as_str().unwrap().to_owned();
    let entry_key = writ::audit::keys::parse_public_pem(&entry_pem).unwrap();
    let key = VerifierKey::Vkey(verifier(&app).await);
    let check = |text: &str| {
        verify::verify_export_with(Cursor::new(text.as_bytes()), &key, Some(&entry_key), None)
    };
    let jsonl = export(&app, "").await;
    let csv = export(&app, "?format=csv").await;
    for text in [&jsonl, &csv] {
        assert_eq!(check(text).unwrap().authenticated, Some(6));
    }
    assert!(csv.lines().nth(1).unwrap().ends_with(",leaf,authenticator"));
    // An authenticator removed from the export, or replaced, is named.
    let line = jsonl.lines().nth(3).unwrap(); // entry 2
    let auth = serde_json::from_str::<serde_json::Value>(line).unwrap()["authenticator"]
        .as_str()
        .unwrap()
        .to_owned();
    let stripped = jsonl.replacen(&format!("\"{auth}\""), "null", 1);
    let err = check(&stripped).unwrap_err().to_string();
    assert!(
        err.starts_with("entry 2:") && err.contains("no authenticator"),
        "{err}"
    );
    let replaced = csv.replacen(&auth, &"ab".repeat(64), 1);
    let err = check(&replaced).unwrap_err().to_string();
    assert!(
        err.starts_with("entry 2:") && err.contains("does not verify"),
        "{err}"
    );
    // Without the entry key the verifier says it did not check them.
    assert_eq!(
        verify(&app, &jsonl, None).await.unwrap().authenticated,
        None
    );

    // The offline command with --entry-key.
    let dir = app.db.dir();
    std::fs::write(dir.join("export.jsonl"), &stripped).unwrap();
    std::fs::write(dir.join("entry.pub"), &entry_pem).unwrap();
    std::fs::write(
        dir.join("audit.pub"),
        keys["public_key_pem"].as_str().unwrap(),
    )
    .unwrap();
    let run = |file: &str| {
        crate::cli::writ_command()
            .current_dir(dir)
            .env_clear()
            .args([
                "audit",
                "verify",
                file,
                "--key",
                "audit.pub",
                "--entry-key",
                "entry.pub",
            ])
            .output()
            .unwrap()
    };
    let out = run("export.jsonl");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("entry 2"));
    std::fs::write(dir.join("export.jsonl"), &jsonl).unwrap();
    let out = run("export.jsonl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("authenticators checked"), "{stdout}");
}

async fn the_live_check_reads_the_outside_copy_before_the_database(backend: Backend) {
    let app = spawn_app(backend).await;
    append_entries(&app.pool, 0, 4).await;
    sign(&app).await;
    as_attacker(&app, "DELETE FROM audit_checkpoints;").await;
    let pool = app.pool.clone();
    let settings = app.db.settings(&[]).audit;
    let live = tokio::task::spawn_blocking(move || {
        let signer =
            writ::audit::service::load_signer(&settings, &mut pool.conn().unwrap(), false).unwrap();
        writ::audit::service::verify_live(&pool, &signer)
    })
    .await
    .unwrap();
    let err = live.unwrap_err();
    assert!(
        err.contains("no signed checkpoint") && err.contains("covers 4"),
        "{err}"
    );
}

async fn an_unsigned_entry_edited_in_place_stops_signing(backend: Backend) {
    let app = spawn_app(backend).await;
    append_entries(&app.pool, 0, 3).await;
    sign(&app).await;
    append_entries(&app.pool, 3, 3).await;
    as_attacker(
        &app,
        "UPDATE audit_entries SET leaf = replace(leaf, '\"n\":4', '\"n\":44') WHERE seq = 4",
    )
    .await;
    refused_with(&app, &["entry 4", "edited in place"]).await;
}

async fn the_background_verification_catches_a_signed_entry_edited_in_place(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("WRIT_AUDIT__VERIFY_INTERVAL_SECS", "1"),
            ("WRIT_MAIL__AUDITORS", "auditors@example.org"),
            ("WRIT_METRICS__ALLOWED_NETWORKS", "127.0.0.1/32,::1/128"),
        ],
    )
    .await;
    append_entries(&app.pool, 0, 4).await;
    sign(&app).await;
    let passed = wait_for_verification(&app, |v| v["ok"] == true).await;
    assert_eq!(passed["entries"], 4);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("writ_audit_verification_seconds "),
        "{metrics}"
    );
    assert!(
        metrics.contains("writ_audit_verification_ok 1"),
        "{metrics}"
    );
    // A signed entry's text edited in place: the checkpoint still holds (the nodes are intact),
    // so only reading every entry finds it.
    as_attacker(
        &app,
        "UPDATE audit_entries SET leaf = replace(leaf, '\"n\":1', '\"n\":11') WHERE seq = 1",
    )
    .await;
    let failed = wait_for_verification(&app, |v| v["ok"] == false).await;
    assert!(
        failed["problem"].as_str().unwrap().contains("entry 1"),
        "{failed}"
    );
    append_entries(&app.pool, 4, 1).await;
    refused_with(&app, &["verification", "entry 1"]).await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("writ_audit_verification_ok 0"),
        "{metrics}"
    );
    // The auditors are alerted through the mail outbox.
    let pool = app.pool.clone();
    let mails = tokio::task::spawn_blocking(move || {
        writ::mail::list(&mut pool.conn().unwrap(), None, 100).unwrap()
    })
    .await
    .unwrap();
    assert!(
        mails
            .iter()
            .any(|m| m.subject.contains("verification FAILED")
                && m.recipients.contains("auditors@example.org")),
        "{mails:?}"
    );
}

async fn wait_for_verification(
    app: &TestApp,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = status(app).await;
        let v = &status["last_verification"];
        if !v.is_null() && done(v) {
            return v.clone();
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

async fn the_status_reports_a_failing_signer(backend: Backend) {
    let app = spawn_app(backend).await;
    append_entries(&app.pool, 0, 4).await;
    assert_eq!(status(&app).await["signing"], "ok");
    // The node over entries 0..4 is gone: the root of the log cannot be computed.
    as_attacker(&app, "DELETE FROM audit_nodes WHERE level = 2").await;
    let res = app.post_as_auditor("/audit/checkpoint").await;
    assert!(!res.status().is_success());
    let status = status(&app).await;
    assert_ne!(status["signing"], "ok", "{status}");
    assert!(
        status["problem"].as_str().unwrap().contains("missing"),
        "{status}"
    );
    assert_eq!(status["last_attempt"]["outcome"], "failed", "{status}");
}

async fn a_consistency_proof_from_size_0_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    append_entries(&app.pool, 0, 3).await;
    sign(&app).await;
    for path in [
        "/audit/proofs/consistency?from=0",
        "/audit/export?consistency_from=0",
    ] {
        let res = app.get_as_auditor(path).await;
        assert_eq!(res.status(), 400, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("from` must be at least 1"),
            "{body}"
        );
    }
}

async fn the_default_origin_is_domain_style_and_an_older_log_keeps_its_name(backend: Backend) {
    let app = spawn_app_with(backend, &[("WRIT_SERVER__PUBLIC_HOST", "Writ.Example.org")]).await;
    append_entries(&app.pool, 0, 2).await;
    let note = sign(&app).await;
    assert!(note.starts_with("writ.example.org/audit\n"), "{note}");

    // A deployment whose log was started under the older default keeps signing under it.
    let app = spawn_app(backend).await;
    let pool = app.pool.clone();
    let id = tokio::task::spawn_blocking(move || {
        writ::db::meta::get(&mut pool.conn().unwrap(), "deployment_id")
            .unwrap()
            .unwrap()
    })
    .await
    .unwrap();
    let legacy = format!("writ/{id}");
    let older =
        crate::helpers::spawn_second_instance(&app, &[("WRIT_AUDIT__ORIGIN", &legacy)]).await;
    append_entries(&app.pool, 0, 2).await;
    let res = app
        .client
        .post(format!("{}/audit/checkpoint", older.address))
        .bearer_auth(&app.db.auditor_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let upgraded = crate::helpers::spawn_second_instance(&app, &[]).await;
    append_entries(&app.pool, 2, 1).await;
    let res = app
        .client
        .post(format!("{}/audit/checkpoint", upgraded.address))
        .bearer_auth(&app.db.auditor_token)
        .send()
        .await
        .unwrap();
    let note = res.text().await.unwrap();
    assert!(note.starts_with(&format!("{legacy}\n3\n")), "{note}");
}
