//! The audit append rate with the entry key in a PKCS#11 token (Debian's SoftHSM2) against the
//! same appends with the entry key as a file, interleaved in one run on one machine, and the
//! bare Ed25519 signing rate of each (the difference is the token's cost per entry).
//!
//! `cargo bench --bench entry_key` (SQLite; WRIT_BENCH_POSTGRES_URL, an admin URL, adds
//! PostgreSQL). Needs SoftHSM2 (`apt-get install softhsm2`); without it the bench says so and
//! stops. SoftHSM2 signs in software inside the process, so these figures are the PKCS#11 call
//! path's cost, not a hardware module's: a network HSM adds its round trip to every append.
//!
//! The bench makes its own token in a temporary folder and runs itself again with
//! `SOFTHSM2_CONF` naming it (the module reads it once, when loaded).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use chrono::Utc;
use diesel::{Connection, PgConnection, RunQueryDsl};
use writ::audit::{Actor, ActorKind, NewEntry, append};
use writ::db::{Db, DbConn, migrations, write_tx};
use writ::keystore::{Key, Pin, TokenConfig};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN: &str = "writ-bench";
const PIN: &str = "483920";

fn entry(i: u64) -> NewEntry {
    NewEntry::new(Actor::new(ActorKind::Staff, "u_17"), "order.approved")
        .order(format!("ord_{}", i % 5000))
        .jurisdiction("fr")
        .reference(
            "document_sha256",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        )
        .reference("fields", i % 7)
}

/// Entries per second: `count` appends, `per_tx` per committed transaction.
fn rate(db: &Db, start: u64, count: u64, per_tx: u64) -> f64 {
    let mut conn = db.conn().unwrap();
    let t = Instant::now();
    let mut seq = start;
    while seq < start + count {
        let end = (seq + per_tx).min(start + count);
        write_tx(&mut conn, |c: &mut DbConn| {
            for s in seq..end {
                append(c, &entry(s), Utc::now())?;
            }
            Ok::<_, writ::audit::AuditError>(())
        })
        .unwrap();
        seq = end;
    }
    count as f64 / t.elapsed().as_secs_f64()
}

/// Signatures per second over a 52-byte message (an authenticator's size).
fn sign_rate(key: &Key, count: u32) -> f64 {
    let message = [0x42u8; 52];
    let t = Instant::now();
    for _ in 0..count {
        key.sign(&message).unwrap();
    }
    f64::from(count) / t.elapsed().as_secs_f64()
}

/// Two logs on one backend, one per key, appended to in turn; the better of three rounds.
fn bench_backend(label: &str, file_db: &Db, token_db: &Db, file: &Key, token: &Key) {
    for db in [file_db, token_db] {
        migrations::run_pending(&mut db.conn().unwrap()).unwrap();
    }
    file_db.install_audit_entry_key(file.clone());
    token_db.install_audit_entry_key(token.clone());
    let (single, batched) = (300, 10_000);
    let (mut f1, mut t1, mut f100, mut t100) = (0f64, 0f64, 0f64, 0f64);
    let (mut next_f, mut next_t) = (0u64, 0u64);
    for _ in 0..3 {
        f1 = f1.max(rate(file_db, next_f, single, 1));
        next_f += single;
        t1 = t1.max(rate(token_db, next_t, single, 1));
        next_t += single;
        f100 = f100.max(rate(file_db, next_f, batched, 100));
        next_f += batched;
        t100 = t100.max(rate(token_db, next_t, batched, 100));
        next_t += batched;
    }
    println!(
        "| {label} append, 1 entry per commit | {t1:.0} /s | {f1:.0} /s | {:.2} |",
        t1 / f1
    );
    println!(
        "| {label} append, 100 entries per commit | {t100:.0} /s | {f100:.0} /s | {:.2} |",
        t100 / f100
    );
}

fn child(dir: &Path) {
    let config = TokenConfig {
        module: MODULE.into(),
        token_label: TOKEN.into(),
        key_label: "writ-audit-entry".into(),
        pin: Pin::new(PIN),
    };
    writ::keystore::generate(&config).unwrap();
    let token = Key::token(config);
    token.probe().unwrap();
    let file = Key::from(ed25519_dalek::SigningKey::from_bytes(&[0x5a; 32]));

    println!("| measure | entry key in SoftHSM2 | entry key file | ratio |");
    println!("|---|---|---|---|");
    let (mut sf, mut st) = (0f64, 0f64);
    for _ in 0..3 {
        sf = sf.max(sign_rate(&file, 20_000));
        st = st.max(sign_rate(&token, 20_000));
    }
    println!(
        "| Ed25519 signatures alone | {st:.0} /s | {sf:.0} /s | {:.2} |",
        st / sf
    );

    let open = |name: &str| {
        let url = format!("sqlite://{}", dir.join(name).display());
        Db::open(&common::settings(&url, dir).database).unwrap()
    };
    bench_backend(
        "SQLite (synchronous=FULL)",
        &open("file.db"),
        &open("token.db"),
        &file,
        &token,
    );
    if let Ok(admin) = std::env::var("WRIT_BENCH_POSTGRES_URL") {
        let mut admin_conn = PgConnection::establish(&admin).unwrap();
        let base = admin.rsplit_once('/').unwrap().0.to_owned();
        let names = ["file", "token"].map(|k| format!("writ_bench_{k}_{}", std::process::id()));
        for name in &names {
            diesel::sql_query(format!("CREATE DATABASE {name}"))
                .execute(&mut admin_conn)
                .unwrap();
        }
        let [file_db, token_db] = names.clone().map(|name| {
            Db::open(&common::settings(&format!("{base}/{name}"), dir).database).unwrap()
        });
        bench_backend("PostgreSQL", &file_db, &token_db, &file, &token);
        drop((file_db, token_db));
        for name in &names {
            diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&mut admin_conn)
                .unwrap();
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks harness-less benches to list; nothing to list.
    }
    if let Some(pos) = args.iter().position(|a| a == "--child") {
        child(Path::new(&args[pos + 1]));
        return;
    }
    if !Path::new(MODULE).exists() {
        println!("SoftHSM2 is not installed ({MODULE}): apt-get install softhsm2");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
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
        .args(["--init-token", "--free", "--label", TOKEN])
        .args(["--so-pin", "1029384756", "--pin", PIN])
        .output()
        .unwrap();
    assert!(made.status.success(), "softhsm2-util --init-token failed");
    let status = Command::new(&args[0])
        .arg("--child")
        .arg(dir.path())
        .env("SOFTHSM2_CONF", &conf)
        .status()
        .unwrap();
    assert!(status.success());
}
