//! Audit log benchmarks, each beside a baseline measured in the same run on the same machine:
//!
//! 1. append throughput vs a plain INSERT of the same row at the same durability
//!    (one entry per committed transaction, and 100 per transaction);
//! 2. export of N entries (default 1,000,000): time and the exporting process's peak memory;
//! 3. offline verification throughput vs `sha256sum` over the same export file.
//!
//! `cargo bench --bench audit` (SQLite). Set WRIT_BENCH_ENTRIES to change N, and
//! WRIT_BENCH_POSTGRES_URL (an admin URL) to add the append figures on PostgreSQL.
//! WRIT_BENCH_AUDIT_EXPORT_DIR=DIR keeps the export and its verifier key in DIR
//! (`export.jsonl`, `key.txt`, for `writ audit verify DIR/export.jsonl --key DIR/key.txt` or a
//! profiler); when DIR already holds them, only the verification is measured, on that export.
//! WRIT_BENCH_VERIFY_ROUNDS sets the verification rounds (default 5).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{settings, vm_hwm_kib};

use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use chrono::Utc;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};
use writ::audit::export::{ExportFormat, ExportRequest};
use writ::audit::verify::VerifierKey;
use writ::audit::{Actor, ActorKind, NewEntry, append, checkpoint, export, service, verify};
use writ::db::{Db, DbConn, migrations, write_tx};

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

const PLAIN_TABLE: &str = "CREATE TABLE bench_plain (seq BIGINT PRIMARY KEY NOT NULL, at TEXT NOT NULL, \
     actor_kind TEXT NOT NULL, actor_id TEXT NOT NULL, event TEXT NOT NULL, order_id TEXT, \
     jurisdiction TEXT, leaf TEXT NOT NULL)";

/// The same row an append writes, without the tree: the baseline.
fn plain_insert(conn: &mut DbConn, seq: u64) -> Result<(), diesel::result::Error> {
    let leaf = entry(seq).to_leaf(seq, Utc::now()).unwrap();
    let sql = "INSERT INTO bench_plain (seq, at, actor_kind, actor_id, event, order_id, jurisdiction, leaf) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    use diesel::sql_types::{BigInt, Nullable, Text};
    macro_rules! q {
        ($c:expr) => {
            diesel::sql_query(sql)
                .bind::<BigInt, _>(seq as i64)
                .bind::<Text, _>(&leaf.at)
                .bind::<Text, _>(leaf.actor.kind.as_str())
                .bind::<Text, _>(&leaf.actor.id)
                .bind::<Text, _>(&leaf.event)
                .bind::<Nullable<Text>, _>(&leaf.order)
                .bind::<Nullable<Text>, _>(&leaf.jurisdiction)
                .bind::<Text, _>(leaf.to_text())
                .execute($c)
        };
    }
    match conn {
        DbConn::Sqlite(c) => q!(c)?,
        DbConn::Postgres(c) => q!(c)?,
    };
    Ok(())
}

/// Rows per second for `count` rows, `per_tx` per transaction, of `op`.
fn rate(
    db: &Db,
    start: u64,
    count: u64,
    per_tx: u64,
    op: &dyn Fn(&mut DbConn, u64) -> Result<(), diesel::result::Error>,
) -> f64 {
    let mut conn = db.conn().unwrap();
    let t = Instant::now();
    let mut seq = start;
    while seq < start + count {
        let end = (seq + per_tx).min(start + count);
        write_tx(&mut conn, |c| {
            for s in seq..end {
                op(c, s)?;
            }
            Ok::<_, diesel::result::Error>(())
        })
        .unwrap();
        seq = end;
    }
    count as f64 / t.elapsed().as_secs_f64()
}

fn append_op(c: &mut DbConn, i: u64) -> Result<(), diesel::result::Error> {
    append(c, &entry(i), Utc::now())
        .map(|_| ())
        .map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))
}

fn bench_appends(label: &str, db: &Db) {
    let mut conn = db.conn().unwrap();
    migrations::run_pending(&mut conn).unwrap();
    conn.batch_execute(PLAIN_TABLE).unwrap();
    drop(conn);
    // These logs are only timed, never signed: any entry key will do.
    db.install_audit_entry_key(ed25519_dalek::SigningKey::from_bytes(&[0x5a; 32]));
    let single = 300;
    let batched = 20_000;
    // Interleave the two so that machine noise hits both alike; report the better of 3 rounds.
    let (mut a1, mut p1, mut a100, mut p100) = (0f64, 0f64, 0f64, 0f64);
    let (mut next_a, mut next_p) = (0u64, 0u64);
    for _ in 0..3 {
        p1 = p1.max(rate(db, next_p, single, 1, &plain_insert));
        next_p += single;
        a1 = a1.max(rate(db, next_a, single, 1, &append_op));
        next_a += single;
        p100 = p100.max(rate(db, next_p, batched, 100, &plain_insert));
        next_p += batched;
        a100 = a100.max(rate(db, next_a, batched, 100, &append_op));
        next_a += batched;
    }
    println!(
        "| {label} append, 1 entry per commit | {a1:.0} /s | plain insert {p1:.0} /s | {:.2} |",
        a1 / p1
    );
    println!(
        "| {label} append, 100 entries per commit | {a100:.0} /s | plain insert {p100:.0} /s | {:.2} |",
        a100 / p100
    );
}

/// Child mode: export the whole log to a file, then report this process's peak memory.
fn child_export(url: &str, dir: &Path, out: &Path) {
    let settings = settings(url, dir);
    let db = Db::open(&settings.database).unwrap();
    let mut conn = db.conn().unwrap();
    let signer = service::load_signer(&settings.audit, &mut conn, false).unwrap();
    let before = vm_hwm_kib();
    let t = Instant::now();
    let mut file = BufWriter::new(std::fs::File::create(out).unwrap());
    let request = ExportRequest {
        start: 0,
        end: None,
        format: ExportFormat::Jsonl,
        consistency_from: None,
    };
    let summary = export::write_export(&mut conn, signer.origin(), &request, &mut file).unwrap();
    file.flush().unwrap();
    println!(
        "{} {} {} {}",
        summary.entries,
        t.elapsed().as_secs_f64(),
        before,
        vm_hwm_kib()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--child-export") {
        child_export(
            &args[pos + 1],
            Path::new(&args[pos + 2]),
            Path::new(&args[pos + 3]),
        );
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks harness-less benches to list; nothing to list.
    }
    let entries: u64 = std::env::var("WRIT_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let kept = std::env::var_os("WRIT_BENCH_AUDIT_EXPORT_DIR").map(std::path::PathBuf::from);
    println!("| measure | Writ | baseline | ratio |");
    println!("|---|---|---|---|");
    if let Some(kept) = &kept
        && kept.join("export.jsonl").exists()
        && kept.join("key.txt").exists()
    {
        let key = std::fs::read_to_string(kept.join("key.txt")).unwrap();
        bench_verify(
            &kept.join("export.jsonl"),
            &VerifierKey::parse(&key).unwrap(),
            None,
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();

    // 1. Appends vs plain inserts.
    let url = format!("sqlite://{}", dir.path().join("append.db").display());
    bench_appends(
        "SQLite (synchronous=FULL)",
        &Db::open(&settings(&url, dir.path()).database).unwrap(),
    );
    if let Ok(admin) = std::env::var("WRIT_BENCH_POSTGRES_URL") {
        let name = format!("writ_bench_{}", std::process::id());
        let mut admin_conn = PgConnection::establish(&admin).unwrap();
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin_conn)
            .unwrap();
        let base = admin.rsplit_once('/').unwrap().0;
        let pg_url = format!("{base}/{name}");
        bench_appends(
            "PostgreSQL",
            &Db::open(&settings(&pg_url, dir.path()).database).unwrap(),
        );
        diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut admin_conn)
            .unwrap();
    }

    // 2. A log of `entries` entries, signed.
    let url = format!("sqlite://{}", dir.path().join("big.db").display());
    let settings = settings(&url, dir.path());
    let db = Db::open(&settings.database).unwrap();
    let mut conn = db.conn().unwrap();
    migrations::run_pending(&mut conn).unwrap();
    service::install_entry_key(&db, &settings.audit, true).unwrap();
    let seeded = rate(&db, 0, entries, 1000, &append_op);
    let signer = service::load_signer(&settings.audit, &mut conn, true).unwrap();
    checkpoint::sign_if_new(&mut conn, &signer, Utc::now()).unwrap();
    drop(conn);
    println!("| seeding {entries} entries, 1000 per commit | {seeded:.0} /s | | |");

    let export_path = dir.path().join("export.jsonl");
    let child = Command::new(&args[0])
        .args([
            "--child-export",
            &url,
            &dir.path().display().to_string(),
            &export_path.display().to_string(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(child.stdout).unwrap();
    let f: Vec<f64> = text
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let bytes = std::fs::metadata(&export_path).unwrap().len();
    println!(
        "| export of {} entries ({:.0} MB JSONL) | {:.1} s, {:.0} entries/s | | |",
        f[0],
        bytes as f64 / 1e6,
        f[1],
        f[0] / f[1]
    );
    println!(
        "| export peak memory (VmHWM of the exporting process) | {:.1} MiB (of which {:.1} MiB before the export began) | | |",
        f[3] / 1024.0,
        f[2] / 1024.0
    );

    // 3. Verification vs sha256sum over the same file.
    let key = VerifierKey::Vkey(signer.verifier());
    if let Some(kept) = &kept {
        std::fs::create_dir_all(kept).unwrap();
        std::fs::copy(&export_path, kept.join("export.jsonl")).unwrap();
        std::fs::write(kept.join("key.txt"), signer.verifier().verifier_key()).unwrap();
    }
    bench_verify(&export_path, &key, Some(entries));
}

/// Offline verification of `export` vs `sha256sum` over the same file, alternating, each round
/// printed with the load average (the machine is shared); the best round of each in the table.
fn bench_verify(export: &Path, key: &VerifierKey, entries: Option<u64>) {
    let rounds: usize = std::env::var("WRIT_BENCH_VERIFY_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let bytes = std::fs::metadata(export).unwrap().len();
    let mb = bytes as f64 / 1e6;
    let mut verify_times = Vec::new();
    let mut sha_times = Vec::new();
    let mut verified = 0;
    for round in 0..rounds {
        let t = Instant::now();
        let file = std::fs::File::open(export).unwrap();
        let report =
            verify::verify_export(BufReader::with_capacity(1 << 20, file), key, None).unwrap();
        if let Some(entries) = entries {
            assert_eq!(report.entries, entries);
        }
        verified = report.entries;
        let v = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let status = Command::new("sha256sum")
            .arg(export)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let h = t.elapsed().as_secs_f64();
        eprintln!(
            "round {}: verify {v:.3} s ({:.0} MB/s), sha256sum {h:.3} s ({:.0} MB/s), ratio {:.2}, load {}",
            round + 1,
            mb / v,
            mb / h,
            h / v,
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
        verify_times.push(v);
        sha_times.push(h);
    }
    let best = |t: &[f64]| t.iter().copied().fold(f64::MAX, f64::min);
    let worst = |t: &[f64]| t.iter().copied().fold(0f64, f64::max);
    let (best_verify, best_sha) = (best(&verify_times), best(&sha_times));
    println!(
        "| offline verification of the export ({mb:.0} MB), best of {rounds} | {:.0} MB/s ({:.0} entries/s; rounds {:.0} to {:.0} MB/s) | sha256sum {:.0} MB/s (rounds {:.0} to {:.0}) | {:.2} |",
        mb / best_verify,
        verified as f64 / best_verify,
        mb / worst(&verify_times),
        mb / best_verify,
        mb / best_sha,
        mb / worst(&sha_times),
        mb / best_sha,
        best_sha / best_verify
    );
}
