//! The `writ` binary, run as an operator would.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::both_backends;
use crate::helpers::{Backend, TestDb};

const WRIT: &str = env!("CARGO_BIN_EXE_writ");

/// The `writ` binary. With `WRIT_TEST_LOG_DIR` set, its standard error and output are also
/// copied (by `tee`, so the test still reads them) to `writ-<pid>-<args>.log` and `.stdout`
/// there, for `.ci/scan-logs`, and Writ's own modules log at debug level. The process the
/// test holds is `writ` itself (`exec`), so its signals and exit status are unchanged.
pub fn writ_command() -> Command {
    let Some(dir) = crate::helpers::log_dir() else {
        return Command::new(WRIT);
    };
    std::fs::create_dir_all(&dir).unwrap();
    let tee = ["/usr/bin/tee", "/bin/tee"]
        .into_iter()
        .find(|t| std::path::Path::new(t).exists())
        .unwrap_or("tee");
    let script = format!(
        r#"d=$0; w=$1; shift
n="$d/writ-$$-$(printf '%s-' "$@" | head -c 48 | tr -c 'A-Za-z0-9-' '_')"
export RUST_LOG="${{RUST_LOG:-info,writ=debug}}"
exec "$w" "$@" 2> >({tee} -a "$n.log" >&2) > >({tee} -a "$n.stdout")"#
    );
    let mut cmd = Command::new("/bin/bash");
    cmd.arg("-c").arg(script).arg(dir).arg(WRIT);
    cmd
}

/// `writ` with a clean environment: only what the test passes, run from the source tree so
/// that config/default.toml is found as an operator's checkout would find it.
fn writ(env: &[(&str, &str)]) -> Command {
    let mut cmd = writ_command();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// `writ` on a test database: its URL, key and checkpoint paths, auditor token hash, plus `extra`.
pub fn writ_for(db: &TestDb, extra: &[(&str, &str)]) -> Command {
    let mut cmd = writ(extra);
    for (k, v) in db.env() {
        if !extra.iter().any(|(e, _)| *e == k) {
            cmd.env(k, v);
        }
    }
    cmd
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn wait_ready(child: &mut Child, port: u16) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("writ serve exited early: {status}");
        }
        if let Ok(res) = std_get(port, "/readyz") {
            return res;
        }
        assert!(
            Instant::now() < deadline,
            "writ serve did not become reachable"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Status and body of a plain HTTP answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) code: u16,
    pub(crate) body: String,
}

/// A blocking HTTP GET over a plain socket, so these tests need no HTTP client runtime.
pub(crate) fn std_get(port: u16, path: &str) -> std::io::Result<Answer> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    Ok(Answer { code, body })
}

pub(crate) fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

both_backends!(
    serve_answers_readyz_and_shuts_down_gracefully_on_sigterm,
    migrate_subcommands_round_trip,
    the_demo_serves_with_a_legal_team_and_no_warning,
);

async fn serve_answers_readyz_and_shuts_down_gracefully_on_sigterm(backend: Backend) {
    let db = TestDb::new(backend);
    let port = free_port().to_string();
    let mut child = writ_for(
        &db,
        &[("WRIT_SERVER__PORT", &port), ("WRIT_LOG__FORMAT", "json")],
    )
    .arg("serve")
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let port: u16 = port.parse().unwrap();
    let ready = tokio::task::spawn_blocking(move || {
        let ready = wait_ready(&mut child, port);
        (child, ready)
    });
    let (mut child, ready) = ready.await.unwrap();
    assert_eq!(ready.code, 200, "{}", ready.body);
    assert!(ready.body.contains("\"ready\""), "{}", ready.body);

    sigterm(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    // JSON logs: every line is one object; the last says the shutdown completed.
    for line in logs.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    assert!(logs.contains("shutdown complete"), "{logs}");
    assert!(logs.contains("\"http.route\":\"/readyz\""), "{logs}");
    // Issue 19 bug 10: with `mail.legal_team` empty (the default), start-up warns in the log,
    // and /readyz says so in its details.
    assert!(
        logs.lines()
            .any(|l| l.contains("\"WARN\"") && l.contains(writ::settings::NO_LEGAL_TEAM)),
        "{logs}"
    );
    assert!(
        ready.body.contains(writ::settings::NO_LEGAL_TEAM),
        "{}",
        ready.body
    );
}

/// Issue 19 bug 10: `writ serve --demo` sets a legal team (the reserved demo address), so
/// neither the start-up log nor /readyz warns about an empty one.
async fn the_demo_serves_with_a_legal_team_and_no_warning(backend: Backend) {
    let db = TestDb::new(backend);
    let data = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let mut child = writ_for(
        &db,
        &[
            ("WRIT_SERVER__PORT", &port),
            ("WRIT_LOG__FORMAT", "json"),
            (
                "WRIT_WORKSPACE__INITIAL_ADMIN_PASSWORD_FILE",
                data.path().join("initial-admin-password").to_str().unwrap(),
            ),
        ],
    )
    .args(["serve", "--demo"])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let port: u16 = port.parse().unwrap();
    let ready = tokio::task::spawn_blocking(move || {
        let ready = wait_ready(&mut child, port);
        (child, ready)
    });
    let (mut child, ready) = ready.await.unwrap();
    assert_eq!(ready.code, 200, "{}", ready.body);
    assert!(!ready.body.contains("mail.legal_team"), "{}", ready.body);
    sigterm(&child);
    child.wait().unwrap();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("shutdown complete"), "{logs}");
    assert!(!logs.contains(writ::settings::NO_LEGAL_TEAM), "{logs}");
}

async fn migrate_subcommands_round_trip(backend: Backend) {
    let db = TestDb::new(backend);
    let run = |args: &[&str]| {
        let out = writ_for(&db, &[]).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "writ {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(run(&["migrate", "status"]).contains("pending"));
    assert!(run(&["migrate"]).contains("applied 2026"));
    assert!(run(&["migrate", "up"]).contains("up to date"));
    let status = run(&["migrate", "status"]);
    assert!(
        status.contains("applied") && !status.contains("pending"),
        "{status}"
    );
    assert!(run(&["migrate", "revert", "--all"]).contains("reverted 2026"));
    assert!(run(&["migrate", "revert"]).contains("nothing to revert"));
    assert!(run(&["migrate"]).contains("applied 2026"));
}

#[test]
fn first_start_creates_the_sqlite_file_under_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = writ_command()
        .current_dir(dir.path())
        .env_clear()
        .args(["migrate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dir.path().join("data").join("writ.db").is_file(),
        "built-in defaults put the database in ./data/"
    );
}

#[test]
fn invalid_configuration_stops_with_one_message_naming_the_key() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("WRIT_SERVER__PORT", "eighty")], "`server.port`"),
        (&[("WRIT_SERVER__PROT", "80")], "`server.prot`"),
        (&[("WRIT_LOG__FORMAT", "xml")], "`log.format`"),
        (&[("WRIT_DATABASE__POOL_SIZE", "0")], "`database.pool_size`"),
        (&[("WRIT_AUDIT__ORIGIN", "has space")], "`audit.origin`"),
        (
            &[("WRIT_CONFIG_FILE", "/nonexistent/writ.toml")],
            "/nonexistent/writ.toml",
        ),
        // A webhook URL without a secret long enough to sign with.
        (
            &[
                ("WRIT_MAIL__WEBHOOKS__PAGING_URL", "http://127.0.0.1:9/page"),
                ("WRIT_MAIL__WEBHOOKS__PAGING_SECRET", "short"),
            ],
            "`mail.webhooks.paging_secret`",
        ),
        // A notice template may say only what the law lets the provider tell.
        (
            &[(
                "WRIT_MAIL__WEBHOOKS__NOTICE_TEMPLATES__DEFAULT",
                "Order {reference} about {offence}",
            )],
            "`mail.webhooks.notice_templates`",
        ),
    ];
    for (env, needle) in cases {
        let out = writ(env).arg("serve").output().unwrap();
        assert_eq!(out.status.code(), Some(78), "{env:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "one message: {err}");
        assert!(
            err.contains("configuration") && err.contains(needle),
            "{env:?}: {err}"
        );
    }
}

#[test]
fn configuration_errors_and_show_never_print_secrets() {
    let out = writ(&[("WRIT_DATABASE__URL", "mysql://root:hunter2@db/writ")])
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("`database.url`") && !err.contains("hunter2"),
        "{err}"
    );

    let out = writ(&[
        ("WRIT_DATABASE__URL", "postgres://writ:hunter2@db/writ"),
        (
            "WRIT_MAIL__WEBHOOKS__NOTICE_SECRET",
            "hunter2-hunter2-hunter2-hunter2-hunter2",
        ),
    ])
    .args(["config", "--show"])
    .output()
    .unwrap();
    assert!(out.status.success());
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(
        shown.contains("postgres://writ:***@db/writ") && !shown.contains("hunter2"),
        "{shown}"
    );
}

#[test]
fn an_environment_file_is_layered_over_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("production.toml");
    std::fs::write(&file, "[server]\nport = 9443\n[log]\nformat = \"json\"\n").unwrap();
    let out = writ(&[("WRIT_LOG__LEVEL", "warn")])
        .args(["--config", file.to_str().unwrap(), "config", "--show"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: toml::Table = String::from_utf8(out.stdout).unwrap().parse().unwrap();
    assert_eq!(shown["server"]["port"].as_integer(), Some(9443));
    assert_eq!(shown["log"]["format"].as_str(), Some("json"));
    assert_eq!(shown["log"]["level"].as_str(), Some("warn"));
    assert_eq!(shown["server"]["host"].as_str(), Some("127.0.0.1"));
}

both_backends!(keys_and_audit_commands_work_end_to_end);

async fn keys_and_audit_commands_work_end_to_end(backend: Backend) {
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
    ok(&["migrate"]);
    assert!(ok(&["keys", "init"]).contains("-----BEGIN PUBLIC KEY-----"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(dir.join("audit.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let again = run(&["keys", "init"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    // Entries from the library, as the rest of Writ appends them.
    let pool = writ::db::Db::open(&db.settings(&[]).database).unwrap();
    writ::audit::service::install_entry_key(&pool, &db.settings(&[]).audit, false).unwrap();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.conn().unwrap();
        for i in 0..20u64 {
            writ::db::write_tx(&mut conn, |c| {
                writ::audit::append(
                    c,
                    &writ::audit::NewEntry::new(writ::audit::Actor::system(), "test.cli")
                        .reference("i", i),
                    chrono::Utc::now(),
                )
            })
            .unwrap();
        }
    })
    .await
    .unwrap();

    let note = ok(&["audit", "checkpoint"]);
    assert!(note.lines().nth(1) == Some("20"), "{note}");
    assert!(ok(&["audit", "status"]).contains("signing: ok"));
    let shown = ok(&["keys", "show"]);
    let vkey = shown
        .lines()
        .find_map(|l| l.strip_prefix("note verifier key: "))
        .unwrap()
        .to_owned();
    std::fs::write(dir.join("log.vkey"), &vkey).unwrap();
    std::fs::write(dir.join("saved.note"), &note).unwrap();

    let jsonl = dir.join("all.jsonl").display().to_string();
    let csv = dir.join("all.csv").display().to_string();
    ok(&["audit", "export", "--output", &jsonl]);
    ok(&[
        "audit", "export", "--format", "csv", "-o", &csv, "--start", "3",
    ]);
    let vkey_path = dir.join("log.vkey").display().to_string();
    let saved = dir.join("saved.note").display().to_string();
    assert!(
        ok(&[
            "audit",
            "verify",
            &jsonl,
            "--key",
            &vkey_path,
            "--checkpoint",
            &saved
        ])
        .starts_with("OK: entries 0..20")
    );
    assert!(ok(&["audit", "verify", &csv, "--key", &vkey]).starts_with("OK: entries 3..20"));
    assert!(ok(&["audit", "verify"]).starts_with("OK: all 20 entries"));

    // An administrator edits history behind the triggers' back: both checks fail, naming it.
    let pool = writ::db::Db::open(&db.settings(&[]).database).unwrap();
    tokio::task::spawn_blocking(move || {
        use diesel::connection::SimpleConnection;
        let mut conn = pool.conn().unwrap();
        let disable = match &*conn {
            writ::db::DbConn::Sqlite(_) => "DROP TRIGGER audit_entries_no_update;",
            writ::db::DbConn::Postgres(_) => "ALTER TABLE audit_entries DISABLE TRIGGER USER;",
        };
        conn.batch_execute(disable).unwrap();
        conn.batch_execute(
            "UPDATE audit_entries SET leaf = replace(leaf, '\"i\":11', '\"i\":12') WHERE seq = 11",
        )
        .unwrap();
    })
    .await
    .unwrap();
    let live = run(&["audit", "verify"]);
    assert_eq!(live.status.code(), Some(1));
    let err = String::from_utf8_lossy(&live.stderr).to_string();
    assert!(err.contains("FAILED") && err.contains("entry 11"), "{err}");
    ok(&["audit", "export", "--output", &jsonl]);
    let offline = run(&["audit", "verify", &jsonl, "--key", &vkey_path]);
    assert_eq!(offline.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&offline.stderr).contains("entry 11"));
}

#[test]
fn audit_token_prints_a_token_and_the_hash_to_configure() {
    let out = writ(&[]).args(["audit", "token"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text.lines().next().unwrap().rsplit(' ').next().unwrap();
    let hash = text.lines().nth(1).unwrap().rsplit(' ').next().unwrap();
    use sha2::Digest;
    assert_eq!(hex::encode(sha2::Sha256::digest(token.as_bytes())), hash);
    assert!(token.starts_with("writ_aud_") && token.len() > 40);
}

both_backends!(commands_on_a_database_that_is_not_migrated_say_run_writ_migrate);

/// Issue 22: an operator who forgot `writ migrate` (or upgraded the binary) is told so, with
/// the pending migrations named, not shown the database's "no such table".
async fn commands_on_a_database_that_is_not_migrated_say_run_writ_migrate(backend: Backend) {
    let db = TestDb::new(backend);
    let run = |args: &[&str]| writ_for(&db, &[]).args(args).output().unwrap();
    let commands: [&[&str]; 6] = [
        &["audit", "status"],
        &["audit", "checkpoint"],
        &["keys", "show"],
        &["user", "list"],
        &["authority", "list"],
        &["retention", "run", "--dry-run"],
    ];
    let check = |pending: &str| {
        for args in commands {
            let out = run(args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "writ {args:?}: {err}");
            assert!(
                err.contains("not migrated") && err.contains("run `writ migrate`"),
                "writ {args:?}: {err}"
            );
            assert!(
                err.contains(pending),
                "writ {args:?} names {pending}: {err}"
            );
            assert!(
                !err.contains("no such table") && !err.contains("does not exist"),
                "writ {args:?}: {err}"
            );
        }
    };
    let mut names: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    names.sort();
    // Never migrated: every migration is pending, the first among them.
    check(&names[0]);
    // An upgrade whose newest migration is not applied yet: that one is named.
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(
            out.status.success(),
            "writ {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    ok(&["migrate"]);
    ok(&["migrate", "revert"]);
    check(names.last().unwrap());
    ok(&["migrate"]);
    ok(&["keys", "init"]);
    assert!(ok(&["audit", "status"]).contains("entries: 0"));
}

both_backends!(doctor_names_what_to_fix_and_passes_once_it_is_fixed);

/// Issue 22: `writ doctor` checks configuration, database, keys, mail, the outside checkpoint
/// and the policy set, says what to do for each problem, and exits 1 until none is left.
async fn doctor_names_what_to_fix_and_passes_once_it_is_fixed(backend: Backend) {
    let db = TestDb::new(backend);
    let dir = db.dir().to_owned();
    // A relay that answers: a listener the test holds for the whole run.
    let relay = TcpListener::bind("127.0.0.1:0").unwrap();
    let relay_port = relay.local_addr().unwrap().port().to_string();
    let mail: [(&str, &str); 4] = [
        ("WRIT_MAIL__TRANSPORT", "smtp"),
        ("WRIT_MAIL__SMTP_HOST", "127.0.0.1"),
        ("WRIT_MAIL__SMTP_PORT", &relay_port),
        ("WRIT_MAIL__LEGAL_TEAM", "legal@example.org"),
    ];
    let doctor = |extra: &[(&str, &str)]| {
        let out = writ_for(&db, extra).arg("doctor").output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        (out.status.code(), text)
    };
    let ok = |args: &[&str]| {
        let out = writ_for(&db, &mail).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "writ {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let fix_line = |text: &str, area: &str| -> String {
        let at = text
            .find(&format!("FIX   {area}:"))
            .unwrap_or_else(|| panic!("no FIX for {area}: {text}"));
        text[at..].lines().take(2).collect::<Vec<_>>().join("\n")
    };

    // A fresh deployment on the defaults: everything that is missing is named with its remedy.
    let (code, text) = doctor(&[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("ok    configuration:"), "{text}");
    assert!(text.contains("ok    database: reachable"), "{text}");
    assert!(
        fix_line(&text, "migrations").contains("run `writ migrate`"),
        "{text}"
    );
    assert!(
        fix_line(&text, "checkpoint key").contains("`writ keys init`"),
        "{text}"
    );
    assert!(
        fix_line(&text, "audit entry key").contains("`writ keys init --entry`"),
        "{text}"
    );
    assert!(
        fix_line(&text, "package key").contains("`writ keys init --package`"),
        "{text}"
    );
    assert!(
        fix_line(&text, "mail").contains("mail.legal_team"),
        "{text}"
    );
    assert!(
        fix_line(&text, "mail relay").contains("mail.transport"),
        "{text}"
    );
    assert!(text.contains("ok    policy set:"), "{text}");

    // Provisioned as the runbook says: every check passes.
    ok(&["migrate"]);
    ok(&["keys", "init"]);
    ok(&["keys", "init", "--package"]);
    let (code, text) = doctor(&mail);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("all checks passed"), "{text}");
    assert!(
        text.contains("ok    outside checkpoint: none yet"),
        "{text}"
    );

    // A relay that does not answer, and a policy file that does not parse.
    let closed = free_port().to_string();
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("xx.toml"), "this is = = not toml").unwrap();
    let policy_dir = policies.display().to_string();
    let mut broken = mail;
    broken[2] = ("WRIT_MAIL__SMTP_PORT", &closed);
    let mut broken = broken.to_vec();
    broken.push(("WRIT_POLICY__DIR", &policy_dir));
    let (code, text) = doctor(&broken);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        fix_line(&text, "mail relay").contains("does not answer"),
        "{text}"
    );
    assert!(
        fix_line(&text, "policy set").contains("writ policy check"),
        "{text}"
    );

    // Something signed, then the outside copy lost: doctor says to restore it.
    let mut add = writ_for(&db, &mail)
        .args(["user", "add", "alice", "--role", "admin", "--name", "Alice"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = add.stdin.take().unwrap();
        writeln!(stdin, "a long enough passphrase for alice").unwrap();
    }
    let added = add.wait_with_output().unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    ok(&["audit", "checkpoint"]);
    let (code, text) = doctor(&mail);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ok    outside checkpoint:"), "{text}");
    std::fs::remove_file(dir.join("checkpoint.txt")).unwrap();
    let (code, text) = doctor(&mail);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        fix_line(&text, "outside checkpoint").contains("restore the copy"),
        "{text}"
    );
    drop(relay);
}

both_backends!(doctor_names_database_settings_that_can_lose_what_writ_acknowledged);

/// `writ doctor` names a database setting under which a crash or a power cut can lose orders
/// and audit entries that Writ already acknowledged: SQLite below `synchronous = FULL`,
/// PostgreSQL with `synchronous_commit` off for Writ's sessions.
async fn doctor_names_database_settings_that_can_lose_what_writ_acknowledged(backend: Backend) {
    let db = TestDb::new(backend);
    let doctor = |extra: &[(&str, &str)]| {
        let out = writ_for(&db, extra).arg("doctor").output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let migrated = writ_for(&db, &[]).arg("migrate").output().unwrap();
    assert!(migrated.status.success());
    let text = doctor(&[]);
    assert!(
        text.contains("ok    durability: every commit is on disk"),
        "{text}"
    );
    let risky = match backend {
        Backend::Sqlite => vec![("WRIT_DATABASE__SQLITE_SYNCHRONOUS", "normal")],
        Backend::Postgres => {
            let pool = writ::db::Db::open(&db.settings(&[]).database).unwrap();
            let mut conn = pool.conn().unwrap();
            let writ::db::DbConn::Postgres(c) = &mut *conn else {
                unreachable!("a PostgreSQL test database")
            };
            diesel::connection::SimpleConnection::batch_execute(
                c,
                "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', \
                 current_database()); END $$",
            )
            .unwrap();
            Vec::new()
        }
    };
    let text = doctor(&risky);
    let at = text
        .find("FIX   durability:")
        .unwrap_or_else(|| panic!("no FIX for durability: {text}"));
    let said = &text[at..];
    let expected = match backend {
        Backend::Sqlite => "synchronous = NORMAL",
        Backend::Postgres => "synchronous_commit is off",
    };
    assert!(
        said.contains(expected) && said.contains("acknowledged"),
        "{text}"
    );
}

/// `writ user add NAME` with a password on standard input: an audited change from the CLI.
pub(crate) fn add_user(db: &TestDb, extra: &[(&str, &str)], name: &str) {
    use std::io::Write;
    let mut add = writ_for(db, extra)
        .args(["user", "add", name, "--role", "auditor", "--name", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(
        add.stdin.take().unwrap(),
        "a long enough passphrase for {name}"
    )
    .unwrap();
    let out = add.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "user add {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 22, restore drill (SQLite): a backup restored into an empty data folder is behind the
/// outside checkpoint copy, and the log refuses to sign rather than fork silently.
#[test]
fn backup_and_restore_into_an_empty_folder_and_the_log_refuses_to_sign_behind_the_copy() {
    let db = TestDb::new(Backend::Sqlite);
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
    add_user(&db, &[], "alice");
    let first = ok(&[], &["audit", "checkpoint"]);
    let backup = dir.join("backup.db").display().to_string();
    assert!(ok(&[], &["backup", "--out", &backup]).contains("backed up"));
    // A backup never overwrites.
    let again = writ_for(&db, &[])
        .args(["backup", "--out", &backup])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    // More changes after the backup, signed: the outside copy is now ahead of the backup.
    add_user(&db, &[], "bob");
    let second = ok(&[], &["audit", "checkpoint"]);
    let size = |note: &str| note.lines().nth(1).unwrap().parse::<u64>().unwrap();
    assert!(size(&second) > size(&first), "{first}\n{second}");

    // Restore into a new, empty data folder; the keys and the outside copy stay where they are.
    let restored_url = format!("sqlite://{}", dir.join("restored/writ.db").display());
    let restored: [(&str, &str); 1] = [("WRIT_DATABASE__URL", &restored_url)];
    let out = ok(&restored, &["restore", &backup]);
    assert!(out.contains("restored"), "{out}");
    let status = writ_for(&db, &restored)
        .args(["audit", "status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(1), "{text}");
    assert!(
        text.contains("signing: refused") && text.contains("restored from an old backup"),
        "{text}"
    );
    assert!(
        text.contains(&format!("entries: {}", size(&first))),
        "{text}"
    );
    let sign = writ_for(&db, &restored)
        .args(["audit", "checkpoint"])
        .output()
        .unwrap();
    assert_eq!(sign.status.code(), Some(1));

    // Never over a folder that holds something, nor a file that is no Writ database.
    let twice = writ_for(&db, &restored)
        .args(["restore", &backup])
        .output()
        .unwrap();
    assert_eq!(twice.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("not empty"));
    let junk = dir.join("junk.db");
    std::fs::write(&junk, "not a database").unwrap();
    let empty_url = format!("sqlite://{}", dir.join("other/writ.db").display());
    let bad = writ_for(&db, &[("WRIT_DATABASE__URL", &empty_url)])
        .args(["restore", &junk.display().to_string()])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("undone"));
    assert_eq!(std::fs::read_dir(dir.join("other")).unwrap().count(), 0);
}

/// PostgreSQL has its own backup tools; `writ backup` and `writ restore` point to them.
#[test]
fn backup_and_restore_on_postgres_point_to_pg_dump() {
    if crate::helpers::postgres_admin_url().is_none() {
        return;
    }
    let db = TestDb::new(Backend::Postgres);
    let ok = writ_for(&db, &[]).arg("migrate").output().unwrap();
    assert!(ok.status.success());
    let out = db.dir().join("b.db").display().to_string();
    let backup = writ_for(&db, &[])
        .args(["backup", "--out", &out])
        .output()
        .unwrap();
    assert_eq!(backup.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&backup.stderr).contains("pg_dump"));
    let restore = writ_for(&db, &[]).args(["restore", &out]).output().unwrap();
    assert_eq!(restore.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&restore.stderr).contains("pg_restore"));
}
