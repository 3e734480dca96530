//! Issue 22, the restore drill to its end: a database restored from a backup is behind the
//! outside checkpoint copy; the operator either replays the missing entries from a later
//! export, or acknowledges their loss, and the log signs again without a silent fork.
//!
//! The backup is Writ's own on SQLite (`writ backup` / `writ restore`) and PostgreSQL's on
//! PostgreSQL (`pg_dump --format=custom` / `pg_restore`, as docs/operations.md says).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::both_backends;
use crate::cli::{add_user, writ_for};
use crate::helpers::{Backend, TestDb};

/// A deployment that signed, was backed up, signed more, exported, and was restored from the
/// backup into a second database.
struct Drill {
    db: TestDb,
    /// The restored database's URL.
    restored_url: String,
    /// Keeps a restored PostgreSQL database alive (dropped with the test).
    _restored_pg: Option<TestDb>,
    /// Entries in the backup.
    first: u64,
    /// Entries the outside copy covers.
    second: u64,
    /// A full JSON Lines export taken after the second checkpoint.
    later_export: PathBuf,
    /// The outside copy as it was before the restore (an auditor's saved checkpoint).
    saved_checkpoint: PathBuf,
}

impl Drill {
    fn dir(&self) -> &Path {
        self.db.dir()
    }

    /// `writ` on the restored database.
    fn run(&self, args: &[&str]) -> std::process::Output {
        writ_for(&self.db, &[("WRIT_DATABASE__URL", &self.restored_url)])
            .args(args)
            .output()
            .unwrap()
    }

    /// `writ` on the restored database, which must succeed; its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "writ {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `writ` on the restored database, which must fail; its standard error.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "writ {args:?} should fail: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// The entries the restored log holds, by `writ audit status`.
    fn entries(&self) -> u64 {
        let out = self.run(&["audit", "status"]);
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("entries: "))
            .unwrap_or_else(|| panic!("no entry count in {text}"))
            .parse()
            .unwrap()
    }

    /// Writes the two public keys (checkpoint, entry) as PEM files; their paths.
    fn public_keys(&self) -> (String, String) {
        let shown = self.ok(&["keys", "show"]);
        let pems: Vec<String> = shown
            .split("-----BEGIN PUBLIC KEY-----")
            .skip(1)
            .map(|rest| {
                let body = rest.split("-----END PUBLIC KEY-----").next().unwrap();
                format!("-----BEGIN PUBLIC KEY-----{body}-----END PUBLIC KEY-----\n")
            })
            .collect();
        assert_eq!(pems.len(), 2, "{shown}");
        let key = self.dir().join("log.pem");
        let entry = self.dir().join("entry.pem");
        std::fs::write(&key, &pems[0]).unwrap();
        std::fs::write(&entry, &pems[1]).unwrap();
        (key.display().to_string(), entry.display().to_string())
    }
}

fn size_of(note: &str) -> u64 {
    note.lines().nth(1).unwrap().parse().unwrap()
}

fn url_of(db: &TestDb) -> String {
    db.env()
        .into_iter()
        .find(|(k, _)| k == "WRIT_DATABASE__URL")
        .unwrap()
        .1
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the drill up to the refusal: signed, backed up, more entries signed and exported,
/// restored; the restored log refuses to sign.
fn drill(backend: Backend) -> Drill {
    let db = TestDb::new(backend);
    let dir = db.dir().to_owned();
    let ok = |args: &[&str]| {
        let out = writ_for(&db, &[]).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "writ {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    ok(&["migrate"]);
    ok(&["keys", "init"]);
    add_user(&db, &[], "alice");
    let first = size_of(&ok(&["audit", "checkpoint"]));

    let backup = dir.join("backup");
    match backend {
        Backend::Sqlite => {
            ok(&["backup", "--out", &backup.display().to_string()]);
        }
        Backend::Postgres => run_ok(
            Command::new("pg_dump")
                .arg("--format=custom")
                .arg(format!("--file={}", backup.display()))
                .arg(url_of(&db)),
        ),
    }

    add_user(&db, &[], "bob");
    add_user(&db, &[], "carol");
    let second_note = ok(&["audit", "checkpoint"]);
    let second = size_of(&second_note);
    assert!(second > first + 1, "{first} {second}");
    let saved_checkpoint = dir.join("saved-checkpoint.txt");
    std::fs::write(&saved_checkpoint, &second_note).unwrap();
    let later_export = dir.join("later.jsonl");
    ok(&[
        "audit",
        "export",
        "--output",
        &later_export.display().to_string(),
    ]);

    let (restored_url, restored_pg) = match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", dir.join("restored/writ.db").display());
            let out = writ_for(&db, &[("WRIT_DATABASE__URL", &url)])
                .args(["restore", &backup.display().to_string()])
                .output()
                .unwrap();
            assert!(out.status.success());
            (url, None)
        }
        Backend::Postgres => {
            let target = TestDb::new(Backend::Postgres);
            let url = url_of(&target);
            run_ok(
                Command::new("pg_restore")
                    .arg("--no-owner")
                    .arg(format!("--dbname={url}"))
                    .arg(&backup),
            );
            (url, Some(target))
        }
    };
    let drill = Drill {
        db,
        restored_url,
        _restored_pg: restored_pg,
        first,
        second,
        later_export,
        saved_checkpoint,
    };
    let status = drill.run(&["audit", "status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(1), "{text}");
    assert!(
        text.contains("restored from an old backup")
            && text.contains("writ audit replay")
            && text.contains(&format!("acknowledge-loss --from {first} --to {second}")),
        "{text}"
    );
    assert_eq!(drill.entries(), first);
    drill
}

/// The entry lines (`{"seq":N,...}`) of a JSON Lines export, below `end`.
fn entry_lines(path: &Path, end: u64) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("{\"seq\":"))
        .filter(|l| {
            let seq: u64 = l["{\"seq\":".len()..]
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            seq < end
        })
        .map(str::to_owned)
        .collect()
}

both_backends!(
    restore_drill_replays_the_missing_entries_from_a_later_export,
    restore_drill_acknowledges_the_loss_and_verifiers_see_it
);

async fn restore_drill_replays_the_missing_entries_from_a_later_export(backend: Backend) {
    let drill = drill(backend);
    let (first, second) = (drill.first, drill.second);
    let export = drill.later_export.display().to_string();

    // A tampered export is refused, naming the entry, and nothing is replayed.
    let victim = first + 1;
    let text = std::fs::read_to_string(&drill.later_export).unwrap();
    let prefix = format!("{{\"seq\":{victim},");
    let tampered: String = text
        .lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                l.replacen("\"at\":\"2", "\"at\":\"1", 1)
            } else {
                l.to_owned()
            }
        })
        .map(|l| l + "\n")
        .collect();
    assert_ne!(tampered, text);
    let tampered_path = drill.dir().join("tampered.jsonl");
    std::fs::write(&tampered_path, tampered).unwrap();
    let err = drill.fails(&["audit", "replay", &tampered_path.display().to_string()]);
    assert!(
        err.contains(&format!("entry {victim}:")) && err.contains("nothing was replayed"),
        "{err}"
    );
    assert_eq!(drill.entries(), first);
    // A CSV export is not replayed (its rows are not the leaf bytes alone).
    let csv = drill.dir().join("later.csv");
    let out = writ_for(&drill.db, &[])
        .args(["audit", "export", "--format", "csv", "--output"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        drill
            .fails(&["audit", "replay", &csv.display().to_string()])
            .contains("JSON Lines")
    );

    // The genuine export: the missing entries go back and signing resumes.
    let out = drill.ok(&["audit", "replay", &export]);
    assert!(
        out.contains(&format!("replayed entries {first}..{second}"))
            && out.contains(&format!("recorded as entry {second}"))
            && out.contains("signing: ok"),
        "{out}"
    );
    assert!(drill.ok(&["audit", "status"]).contains("signing: ok"));
    assert_eq!(drill.entries(), second + 1);
    assert!(drill.ok(&["audit", "verify"]).starts_with("OK: all"));
    // Replaying again finds nothing to do.
    assert!(
        drill
            .fails(&["audit", "replay", &export])
            .contains("nothing to replay")
    );

    // Byte for byte: the restored log's entries below `second` are the export's.
    let again = drill.dir().join("again.jsonl");
    drill.ok(&["audit", "export", "--output", &again.display().to_string()]);
    assert_eq!(
        entry_lines(&again, second),
        entry_lines(&drill.later_export, second)
    );
    // And an auditor's saved checkpoint from before the restore is consistent with it.
    let (key, entry_key) = drill.public_keys();
    let verified = drill.ok(&[
        "audit",
        "verify",
        &again.display().to_string(),
        "--key",
        &key,
        "--entry-key",
        &entry_key,
        "--checkpoint",
        &drill.saved_checkpoint.display().to_string(),
    ]);
    assert!(
        verified.contains(&format!(
            "consistent with your saved checkpoint of size {second}"
        )),
        "{verified}"
    );
    let entry = entry_lines(&again, second + 1).pop().unwrap();
    assert!(
        entry.contains("\"event\":\"audit.entries_replayed\""),
        "{entry}"
    );
}

async fn restore_drill_acknowledges_the_loss_and_verifiers_see_it(backend: Backend) {
    let drill = drill(backend);
    let (first, second) = (drill.first, drill.second);
    let (key, entry_key) = drill.public_keys();
    let saved = drill.saved_checkpoint.display().to_string();
    let verify = |export: &Path| {
        drill.run(&[
            "audit",
            "verify",
            &export.display().to_string(),
            "--key",
            &key,
            "--entry-key",
            &entry_key,
            "--checkpoint",
            &saved,
        ])
    };
    // Before the acknowledgement, an auditor holding the lost checkpoint sees entries removed.
    let before = drill.dir().join("before.jsonl");
    drill.ok(&["audit", "export", "--output", &before.display().to_string()]);
    let out = verify(&before);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("entries were removed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The range must be the one lost, and a reason is required.
    let (f, t) = (first.to_string(), second.to_string());
    let wrong = drill.fails(&[
        "audit",
        "acknowledge-loss",
        "--from",
        "0",
        "--to",
        &t,
        "--reason",
        "drill",
    ]);
    assert!(
        wrong.contains(&format!("--from {first} --to {second}")),
        "{wrong}"
    );
    let blank = drill.fails(&[
        "audit",
        "acknowledge-loss",
        "--from",
        &f,
        "--to",
        &t,
        "--reason",
        " ",
    ]);
    assert!(blank.contains("--reason"), "{blank}");
    assert_eq!(drill.entries(), first);

    let reason = "disk failure on 2026-12-06; backup of 02:00 restored";
    let out = drill.ok(&[
        "audit",
        "acknowledge-loss",
        "--from",
        &f,
        "--to",
        &t,
        "--reason",
        reason,
    ]);
    assert!(
        out.contains(&format!(
            "acknowledged the loss of entries {first}..{second} as entry {first}"
        )) && out.contains(&format!("checkpoint of size {} signed", first + 1)),
        "{out}"
    );
    assert!(drill.ok(&["audit", "status"]).contains("signing: ok"));
    assert!(drill.ok(&["audit", "verify"]).starts_with("OK: all"));
    // The outside copy moved on to the new checkpoint.
    let copy = std::fs::read_to_string(drill.dir().join("checkpoint.txt")).unwrap();
    assert_eq!(size_of(&copy), first + 1);
    // Once is enough.
    assert!(
        drill
            .fails(&[
                "audit",
                "acknowledge-loss",
                "--from",
                &f,
                "--to",
                &t,
                "--reason",
                reason
            ])
            .contains("no entries are missing")
    );

    // The log keeps going and signing keeps working.
    add_user(
        &drill.db,
        &[("WRIT_DATABASE__URL", &drill.restored_url)],
        "dave",
    );
    assert!(
        drill
            .ok(&["audit", "checkpoint"])
            .contains(&drill.db_origin())
    );

    // An auditor holding the lost checkpoint is shown the acknowledgement, not a silent fork.
    let after = drill.dir().join("after.jsonl");
    drill.ok(&["audit", "export", "--output", &after.display().to_string()]);
    let out = verify(&after);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "entry {first} acknowledges the loss of entries {first}..{second} (reason: {reason})"
        )),
        "{text}"
    );
    // Nor can the acknowledgement be edited: a changed reason no longer verifies.
    let edited = std::fs::read_to_string(&after)
        .unwrap()
        .replace("disk failure", "disk failurE");
    let edited_path = drill.dir().join("edited.jsonl");
    std::fs::write(&edited_path, edited).unwrap();
    let out = verify(&edited_path);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("entry {first}:")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drill {
    /// The log's origin, as `writ keys show` prints it.
    fn db_origin(&self) -> String {
        self.ok(&["keys", "show"])
            .lines()
            .find_map(|l| l.strip_prefix("origin: "))
            .unwrap()
            .to_owned()
    }
}

/// Issue 22: `writ backup` beside a live `writ serve` (signing every second) while other
/// processes append: every backup restores to a log that is intact, verifies on its own, is a
/// prefix of the live log entry for entry, and catches up with it by a replay.
#[test]
fn backups_beside_a_live_serve_under_load_restore_to_consistent_verifiable_logs() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let db = Arc::new(TestDb::new(Backend::Sqlite));
    let dir = db.dir().to_owned();
    let ok = |extra: &[(&str, &str)], args: &[&str]| {
        let out = writ_for(&db, extra).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "writ {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    ok(&[], &["migrate"]);
    ok(&[], &["keys", "init"]);
    let port = crate::cli::free_port();
    let port_text = port.to_string();
    let mut serve = writ_for(
        &db,
        &[
            ("WRIT_SERVER__PORT", &port_text),
            ("WRIT_AUDIT__CHECKPOINT_INTERVAL_SECS", "1"),
        ],
    )
    .arg("serve")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    assert_eq!(crate::cli::wait_ready(&mut serve, port).code, 200);

    // Writers: separate processes appending (users added, each with its audit entry).
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    add_user(&db, &[], &format!("user{w}x{n}"));
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut backups = Vec::new();
    for i in 0..3 {
        std::thread::sleep(std::time::Duration::from_millis(700));
        let path = dir.join(format!("live-{i}.db"));
        ok(&[], &["backup", "--out", &path.display().to_string()]);
        backups.push(path);
    }
    stop.store(true, Ordering::Relaxed);
    let added: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(added >= 3, "the writers added {added} users");
    crate::cli::sigterm(&serve);
    assert!(serve.wait().unwrap().success());
    ok(&[], &["audit", "checkpoint"]);
    let live_export = dir.join("live.jsonl");
    ok(
        &[],
        &[
            "audit",
            "export",
            "--output",
            &live_export.display().to_string(),
        ],
    );
    let live_copy_note = std::fs::read_to_string(dir.join("checkpoint.txt")).unwrap();

    let mut sizes = Vec::new();
    for (i, backup) in backups.iter().enumerate() {
        let url = format!(
            "sqlite://{}",
            dir.join(format!("restored-{i}/writ.db")).display()
        );
        // Checked on its own first: an outside copy of its own, not the live one.
        let own_copy = dir.join(format!("restored-{i}-checkpoint.txt"));
        let own_copy = own_copy.display().to_string();
        let own = [
            ("WRIT_DATABASE__URL", url.as_str()),
            ("WRIT_AUDIT__CHECKPOINT_PATH", own_copy.as_str()),
        ];
        ok(&own, &["restore", &backup.display().to_string()]);
        let status = ok(&own, &["audit", "status"]);
        assert!(status.contains("signing: ok"), "{status}");
        ok(&own, &["audit", "checkpoint"]);
        let verified = ok(&own, &["audit", "verify"]);
        assert!(verified.starts_with("OK: all"), "{verified}");
        let export = dir.join(format!("restored-{i}.jsonl"));
        ok(
            &own,
            &["audit", "export", "--output", &export.display().to_string()],
        );
        let size = entry_lines(&export, u64::MAX).len() as u64;
        assert!(size > 0);
        assert_eq!(
            entry_lines(&export, u64::MAX),
            entry_lines(&live_export, size),
            "backup {i} is not a prefix of the live log"
        );
        sizes.push(size);
        // Against (a copy of) the live outside copy it is behind, and a replay brings it
        // level. A copy: each restored log goes on as its own deployment after the replay.
        let copy = dir.join(format!("live-copy-{i}.txt"));
        std::fs::write(&copy, &live_copy_note).unwrap();
        let copy = copy.display().to_string();
        let live_copy = [
            ("WRIT_DATABASE__URL", url.as_str()),
            ("WRIT_AUDIT__CHECKPOINT_PATH", copy.as_str()),
        ];
        let total = entry_lines(&live_export, u64::MAX).len() as u64;
        if size < total {
            let replayed = ok(
                &live_copy,
                &["audit", "replay", &live_export.display().to_string()],
            );
            assert!(replayed.contains("signing: ok"), "{replayed}");
        }
        assert!(ok(&live_copy, &["audit", "status"]).contains("signing: ok"));
    }
    assert!(
        sizes.windows(2).all(|w| w[0] <= w[1]) && sizes[0] < *sizes.last().unwrap(),
        "the backups were taken while the log grew: {sizes:?}"
    );
}
