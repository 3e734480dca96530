//! What TLS to PostgreSQL through Writ's rustls tunnel (`src/db/tls.rs`) costs, side by side
//! with plain TCP to the same server: opening a connection, a small query's round trip, and
//! reading a large result.
//!
//! Needs WRIT_BENCH_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres) and a server
//! with `ssl = on` (the test `tls::postgres_over_tls_verifies_the_ca_and_the_host_name` sets the
//! local one up). The tunnel runs in mode `require`: the handshake and the encryption are those
//! of `verify-full`, less the certificate check. Each figure is the best of three interleaved
//! rounds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};
use writ::db::tls::PgTls;
use writ::settings::{DatabaseTlsMode, DatabaseTlsSettings};

const CONNECTS: usize = 40;
const ROUND_TRIPS: usize = 3000;
const LARGE_READS: usize = 40;
const LARGE_BYTES: usize = 4 * 1024 * 1024;

#[derive(diesel::QueryableByName)]
struct Blob {
    #[diesel(sql_type = diesel::sql_types::Text)]
    blob: String,
}

struct Figures {
    connect: Duration,
    round_trip: Duration,
    mib_per_s: f64,
}

fn measure(connect: &dyn Fn() -> PgConnection) -> Figures {
    let started = Instant::now();
    for _ in 0..CONNECTS {
        let mut c = connect();
        diesel::sql_query("SELECT 1").execute(&mut c).unwrap();
    }
    let connect_each = started.elapsed() / CONNECTS as u32;
    let mut c = connect();
    let started = Instant::now();
    for _ in 0..ROUND_TRIPS {
        diesel::sql_query("SELECT 1").execute(&mut c).unwrap();
    }
    let round_trip = started.elapsed() / ROUND_TRIPS as u32;
    let sql = format!("SELECT repeat('x', {LARGE_BYTES}) AS blob");
    let started = Instant::now();
    for _ in 0..LARGE_READS {
        let b: Blob = diesel::sql_query(&sql).get_result(&mut c).unwrap();
        assert_eq!(b.blob.len(), LARGE_BYTES);
    }
    let mib = (LARGE_READS * LARGE_BYTES) as f64 / (1024.0 * 1024.0);
    Figures {
        connect: connect_each,
        round_trip,
        mib_per_s: mib / started.elapsed().as_secs_f64(),
    }
}

fn best(runs: &[Figures]) -> Figures {
    Figures {
        connect: runs.iter().map(|f| f.connect).min().unwrap(),
        round_trip: runs.iter().map(|f| f.round_trip).min().unwrap(),
        mib_per_s: runs.iter().map(|f| f.mib_per_s).fold(0.0, f64::max),
    }
}

fn main() {
    let Ok(url) = std::env::var("WRIT_BENCH_POSTGRES_URL") else {
        println!("WRIT_BENCH_POSTGRES_URL is not set: PostgreSQL TLS bench not run");
        return;
    };
    let tls = PgTls::from_settings(
        &url,
        &DatabaseTlsSettings {
            mode: DatabaseTlsMode::Require,
            ca_file: String::new(),
        },
    )
    .unwrap()
    .unwrap();
    if let Err(e) = tls.probe(Duration::from_secs(5)) {
        println!("the server does not do TLS ({e}): PostgreSQL TLS bench not run");
        return;
    }
    let plain = || PgConnection::establish(&url).unwrap();
    let tunnelled = || tls.establish(&url, Duration::from_secs(10)).unwrap();
    let (mut p, mut t) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        p.push(measure(&plain));
        t.push(measure(&tunnelled));
    }
    let (p, t) = (best(&p), best(&t));
    println!("| measure | TLS tunnel (require) | plain TCP | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| open a connection and run one query | {:.2} ms | {:.2} ms | {:.2} |",
        t.connect.as_secs_f64() * 1e3,
        p.connect.as_secs_f64() * 1e3,
        t.connect.as_secs_f64() / p.connect.as_secs_f64()
    );
    println!(
        "| `SELECT 1` round trip | {:.0} us | {:.0} us | {:.2} |",
        t.round_trip.as_secs_f64() * 1e6,
        p.round_trip.as_secs_f64() * 1e6,
        t.round_trip.as_secs_f64() / p.round_trip.as_secs_f64()
    );
    println!(
        "| reading a 4 MiB result | {:.0} MiB/s | {:.0} MiB/s | {:.2} |",
        t.mib_per_s,
        p.mib_per_s,
        t.mib_per_s / p.mib_per_s
    );
}
