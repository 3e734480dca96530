//! Metadata store benchmarks, each beside a baseline measured in the same run:
//!
//! 1. importing N IP events (default 10,000,000) from CSV with `writ import`'s code path, beside
//!    the `sqlite3` command-line `.import` of the same events into the same table and indexes
//!    (the baseline gets pre-resolved account ids and integer times: less work than Writ does);
//! 2. the importing process's peak memory;
//! 3. p50/p99 latency of audited lookups on the resulting store: IP history of one account over
//!    30 days, and who used an address and port at a moment (60 s tolerance).
//!
//! `cargo bench --bench metadata` (needs the `sqlite3` command for the baseline).
//! WRIT_BENCH_EVENTS changes N.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{settings, vm_hwm_kib};

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use writ::audit::{Actor, ActorKind};
use writ::db::{Db, migrations};
use writ::metadata::demo::{self, DemoSpec};
use writ::metadata::import::{self, Format, ImportOptions};
use writ::metadata::lookup::{self, LookupContext, Window};
use writ::metadata::records::RecordKind;

const ACCOUNTS: u64 = 100_000;
const BASE: i64 = 1_704_067_200_000_000; // 2024-01-01

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Event `i`: account, time (micros), IPv4 address, port.
fn event(i: u64) -> (u64, i64, String, u16) {
    let r = mix(i);
    let account = r % ACCOUNTS;
    let at = BASE + ((r >> 17) % (700 * 86_400)) as i64 * 1_000_000 + (i % 1_000_000) as i64;
    let ip = format!("198.51.100.{}", 1 + (r >> 40) % 254);
    let port = 1024 + ((r >> 48) % 60_000) as u16;
    (account, at, ip, port)
}

fn fresh_store(path: &Path, dir: &Path) -> (String, Db) {
    let url = format!("sqlite://{}", path.display());
    let settings = settings(&url, dir);
    let db = Db::open(&settings.database).unwrap();
    migrations::run_pending(&mut db.conn().unwrap()).unwrap();
    // Every audit append is authenticated by the entry key: made here, loaded by each process.
    writ::audit::service::install_entry_key(&db, &settings.audit, true).unwrap();
    demo::seed(
        &db,
        DemoSpec {
            accounts: ACCOUNTS,
            events_per_account: 0,
            seed: 1,
        },
        &|_| {},
    )
    .unwrap();
    (url, db)
}

/// Child mode: import the CSV with Writ's import, print records, seconds, peak memory (KiB).
fn child_import(url: &str, dir: &Path, csv: &Path) {
    let settings = settings(url, dir);
    let db = Db::open(&settings.database).unwrap();
    writ::audit::service::install_entry_key(&db, &settings.audit, true).unwrap();
    let options = ImportOptions {
        kind: RecordKind::IpEvents,
        format: Format::Csv,
        batch_rows: settings.metadata.import_batch_rows,
        source: "bench".into(),
        actor: Actor::system(),
    };
    let t = Instant::now();
    let file = std::fs::File::open(csv).unwrap();
    let summary = import::import(&db, file, &options, &mut std::io::sink(), &|_, _| {}).unwrap();
    assert_eq!(summary.rejected, 0);
    println!(
        "{} {} {}",
        summary.new,
        t.elapsed().as_secs_f64(),
        vm_hwm_kib()
    );
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--child-import") {
        child_import(
            &args[pos + 1],
            Path::new(&args[pos + 2]),
            Path::new(&args[pos + 3]),
        );
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let n: u64 = std::env::var("WRIT_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // The same events twice: as Writ's import takes them, and pre-resolved for the baseline.
    let writ_csv = d.join("events.csv");
    let base_csv = d.join("baseline.csv");
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&writ_csv).unwrap());
    let mut b = BufWriter::with_capacity(1 << 20, std::fs::File::create(&base_csv).unwrap());
    writeln!(w, "external_id,ip,port,at,kind").unwrap();
    writeln!(b, "account_id,at,ip,port,kind").unwrap();
    for i in 0..n {
        let (account, at, ip, port) = event(i);
        let time = writ::metadata::normalize::from_micros(at)
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        writeln!(w, "demo-{account:08},{ip},{port},{time},login").unwrap();
        // Demo accounts get ids 1..=ACCOUNTS in order.
        writeln!(b, "{},{at},{ip},{port},login", account + 1).unwrap();
    }
    w.flush().unwrap();
    b.flush().unwrap();
    drop((w, b));

    println!("| measure | Writ | baseline | ratio |");
    println!("|---|---|---|---|");

    // Baseline: sqlite3 .import into the same schema (same table, primary key and index).
    let (_, base_db) = fresh_store(&d.join("baseline.db"), d);
    drop(base_db);
    let t = Instant::now();
    let status = Command::new("sqlite3")
        .arg(d.join("baseline.db"))
        .arg(format!(
            ".import --csv --skip 1 {} ip_events",
            base_csv.display()
        ))
        .status()
        .expect("the sqlite3 command (apt-get install sqlite3)");
    assert!(status.success());
    let base_secs = t.elapsed().as_secs_f64();

    // Writ: a child process, so its peak memory is the import's alone.
    let (url, db) = fresh_store(&d.join("writ.db"), d);
    drop(db);
    let out = Command::new(&args[0])
        .args([
            "--child-import",
            &url,
            &d.display().to_string(),
            &writ_csv.display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f: Vec<f64> = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(f[0] as u64, n, "every event imported");
    let csv_mb = std::fs::metadata(&writ_csv).unwrap().len() as f64 / 1e6;
    println!(
        "| import {n} IP events from CSV ({csv_mb:.0} MB), SQLite | {:.0} events/s ({:.0} s) | sqlite3 .import: {:.0} events/s ({:.0} s) | {:.2} |",
        n as f64 / f[1],
        f[1],
        n as f64 / base_secs,
        base_secs,
        base_secs / f[1]
    );
    println!(
        "| import peak memory (VmHWM of the importing process) | {:.1} MiB | | |",
        f[2] / 1024.0
    );

    // Lookups on the imported store, each audited (a write transaction with its audit entry).
    let settings = settings(&url, d);
    let db = Db::open(&settings.database).unwrap();
    writ::audit::service::install_entry_key(&db, &settings.audit, true).unwrap();
    let mut conn = db.conn().unwrap();
    let ctx = LookupContext {
        actor: Actor::new(ActorKind::Staff, "bench"),
        order_id: "ord_bench".into(),
    };
    let (mut by_user, mut by_ip) = (Vec::new(), Vec::new());
    for k in 0..5000u64 {
        let (account, at, ip, port) = event(mix(k) % n);
        let t = Instant::now();
        let w = Window::new(at - 15 * 86_400_000_000, at + 15 * 86_400_000_000).unwrap();
        let events =
            lookup::ip_history(&mut conn, &ctx, i64::try_from(account + 1).unwrap(), w).unwrap();
        by_user.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(!events.events.is_empty());
        let t = Instant::now();
        let m = lookup::by_ip(&mut conn, &ctx, &ip, Some(port), at, 60).unwrap();
        by_ip.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(!m.accounts.is_empty());
    }
    by_user.sort_by(f64::total_cmp);
    by_ip.sort_by(f64::total_cmp);
    println!(
        "| lookup: IP history of one account, 30-day window ({n} events) | p50 {:.2} ms, p99 {:.2} ms | | |",
        percentile(&by_user, 0.5),
        percentile(&by_user, 0.99)
    );
    println!(
        "| lookup: who used address:port at a moment, ±60 s | p50 {:.2} ms, p99 {:.2} ms | | |",
        percentile(&by_ip, 0.5),
        percentile(&by_ip, 0.99)
    );
}
