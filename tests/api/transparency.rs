//! The transparency report (issue 20): built from the audit log alone, every number checked
//! against a count the test makes from its own list of what it did; verified offline from an
//! export, and refused across a log that does not verify.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use writ::audit::{Actor, ActorKind, NewEntry};
use writ::settings::{ReportCategory, TransparencySettings};
use writ::transparency::{Period, Report, Table};

use crate::both_backends;
use crate::cli::writ_for;
use crate::helpers::{Backend, TestDb};
use crate::orders::{Api, JUDGE_SIGNER, ORDER, PARIS, POLICE_SIGNER, json_of, submission};
use crate::workspace::{Browser, PASSWORD, add_users, seed_alice};

both_backends!(
    a_report_over_real_orders_counts_what_the_test_did_and_verifies_offline,
    a_report_over_the_demo_counts_its_orders,
    a_seeded_year_matches_counts_made_by_the_test,
    the_workspace_shows_the_report_and_offers_its_folder,
);

/// The cell of `table` in the row whose leading cells are `keys`, column `column`.
fn cell(report: &Report, table: &str, keys: &[&str], column: &str) -> String {
    let t = report
        .table(table)
        .unwrap_or_else(|| panic!("no table {table}"));
    let col = t
        .columns
        .iter()
        .position(|c| c == column)
        .unwrap_or_else(|| panic!("{table}: no column {column}: {:?}", t.columns));
    let row = t
        .rows
        .iter()
        .find(|r| r.iter().zip(keys).all(|(a, b)| a == b))
        .unwrap_or_else(|| panic!("{table}: no row {keys:?}: {:?}", t.rows));
    row[col].clone()
}

fn read_report(dir: &std::path::Path) -> Report {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

/// `writ` on the test database with exact small numbers, run to success; its standard output.
fn writ_ok(db: &TestDb, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = writ_for(db, env).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "writ {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `writ` expected to fail; its standard error.
fn writ_fails(db: &TestDb, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = writ_for(db, env).args(args).output().unwrap();
    assert!(
        !out.status.success(),
        "writ {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

const EXACT: [(&str, &str); 2] = [
    ("WRIT_TRANSPARENCY__THRESHOLD", "1"),
    ("WRIT_TRANSPARENCY__COUNTRY_MINIMUM", "0"),
];

async fn a_report_over_real_orders_counts_what_the_test_did_and_verifies_offline(backend: Backend) {
    let api = Api::start(backend, &EXACT).await;
    add_users(&api.app).await;
    seed_alice(&api.app).await;
    let base: Value = serde_json::from_str(ORDER).unwrap();
    let make = |reference: &str, edit: &dyn Fn(&mut Value)| {
        let mut v = base.clone();
        v["reference"] = json!(reference);
        edit(&mut v);
        v.to_string()
    };
    // What the test does, and so what the report must say.
    let produced = make("T-1", &|_| {});
    let none_held = make("T-2", &|v| {
        v["targets"] = json!([{"username": "nobody-here"}])
    });
    let refused = make("T-3", &|_| {});
    let withdrawn = make("T-4", &|_| {});
    let open_de = make("T-5", &|v| {
        v.as_object_mut().unwrap().remove("non_disclosure");
    });
    let emergency = make("T-6", &|v| {
        v["emergency"] = json!({"justification": "Imminent threat to life."})
    });
    let preservation = make("T-7", &|v| v["instrument"] = json!("eu.epoc_pr"));
    let berlin = crate::orders::Signer {
        iss: "de-ag-berlin",
        kid: "berlin-1",
        seed: 4,
    };
    let mut ids = BTreeMap::new();
    for (name, who, body) in [
        ("produced", PARIS, &produced),
        ("none_held", PARIS, &none_held),
        ("refused", POLICE_SIGNER, &refused),
        ("withdrawn", JUDGE_SIGNER, &withdrawn),
        ("open_de", berlin, &open_de),
        ("emergency", PARIS, &emergency),
        ("preservation", PARIS, &preservation),
    ] {
        let (status, created) = json_of(api.submit(who, &submission(body)).await).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {created}");
        ids.insert(name, created["id"].as_str().unwrap().to_owned());
    }
    crate::access::release(&api.app, &ids["produced"]).await;
    crate::access::release(&api.app, &ids["none_held"]).await;
    let mut b = Browser::new(&api.app);
    assert_eq!(b.sign_in("rita", PASSWORD).await, StatusCode::SEE_OTHER);
    let csrf = b.session_csrf().await;
    let (s, body, _) = b
        .post(
            &format!("/orders/{}/refuse", ids["refused"]),
            &[
                ("csrf", &csrf),
                ("text", "Cannot comply: no such service."),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let path = format!("/api/v1/orders/{}/withdraw", ids["withdrawn"]);
    let r = api.send(JUDGE_SIGNER, "POST", &path, b"").await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());

    // Every order.received entry Writ wrote carries what the report reads.
    let leaves = api
        .app
        .pool
        .run(|conn| writ::audit::log::entries(conn, 0, 100_000))
        .await
        .unwrap();
    let received: Vec<Value> = leaves
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e.leaf).unwrap())
        .filter(|l| l["event"] == "order.received")
        .collect();
    assert_eq!(received.len(), 7);
    for leaf in &received {
        for field in writ::transparency::build::RECEIVED_FIELDS {
            // A preservation has no reply deadline.
            if field == "deadline_at" && leaf["refs"]["action"] == "preserve" {
                continue;
            }
            assert!(!leaf["refs"][field].is_null(), "{field} missing: {leaf}");
        }
        // Counts and codes only: no target, no person.
        let text = leaf.to_string();
        for secret in ["alice", "nobody-here", "203.0.113.7", "M. Dupont"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    let db = &api.app.db;
    let dir = db.dir().to_owned();
    let out = dir.join("report");
    let today = Utc::now().format("%Y-%m-%d").to_string();
    let printed = writ_ok(
        db,
        &EXACT,
        &[
            "transparency",
            "report",
            "--from",
            &today,
            "--to",
            &today,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        printed.contains("verified against its signed checkpoint"),
        "{printed}"
    );
    let report = read_report(&out);
    let summary = |m: &str| cell(&report, "summary", &[m], "value");
    assert_eq!(summary("requests received (preservation apart)"), "6");
    assert_eq!(summary("of which emergency"), "1");
    assert_eq!(summary("accounts specified"), "6");
    // The fixture names a user name and an IP address; T-2 only a user name.
    assert_eq!(summary("identifiers specified"), "11");
    assert_eq!(summary("some data produced"), "1");
    assert_eq!(summary("no data held"), "1");
    assert_eq!(summary("refused"), "1");
    assert_eq!(summary("withdrawn"), "1");
    assert_eq!(summary("open at period end"), "2");
    assert_eq!(summary("preservation requests (not in the totals)"), "1");
    // Country and kind as registered: Berlin is a German judge whatever the order says; the
    // Lyon police sent an order claiming a prosecutor.
    let by = |c: &str, k: &str, col: &str| cell(&report, "by_country", &[c, k], col);
    assert_eq!(by("DE", "judge", "requests"), "1");
    assert_eq!(by("DE", "judge", "open at period end"), "1");
    assert_eq!(by("FR", "police", "refused"), "1");
    assert_eq!(by("FR", "judge", "withdrawn"), "1");
    assert_eq!(by("FR", "prosecutor", "requests"), "2");
    assert_eq!(by("FR", "prosecutor", "some data produced"), "1");
    assert_eq!(by("FR", "prosecutor", "no data held"), "1");
    assert_eq!(report.table("by_country").unwrap().rows.len(), 4);
    assert_eq!(
        cell(&report, "emergency", &["FR"], "open at period end"),
        "1"
    );
    assert_eq!(cell(&report, "preservation", &["FR"], "requests"), "1");
    assert_eq!(
        cell(&report, "by_instrument", &["eu.epoc_pr"], "requests"),
        "1"
    );
    assert_eq!(
        cell(
            &report,
            "notices",
            &["requests with a non-disclosure order"],
            "value"
        ),
        "6"
    );
    assert_eq!(
        cell(
            &report,
            "response_time",
            &["all requests to produce"],
            "answered"
        ),
        "3"
    );
    assert!(report.limitations.is_empty(), "{:?}", report.limitations);
    for name in [
        "index.html",
        "methodology.txt",
        "checkpoint.txt",
        "by_country.csv",
    ] {
        assert!(out.join(name).exists(), "{name}");
    }
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("<script"));
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));

    // Offline: the export alone recomputes every number (no database is reachable).
    let shown = writ_ok(db, &[], &["keys", "show"]);
    let vkey = shown
        .lines()
        .find_map(|l| l.strip_prefix("note verifier key: "))
        .unwrap()
        .to_owned();
    let export = dir.join("export.jsonl");
    writ_ok(
        db,
        &[],
        &["audit", "export", "-o", export.to_str().unwrap()],
    );
    let nowhere = [("WRIT_DATABASE__URL", "sqlite:///nonexistent/nowhere.db")];
    let verify = |report_dir: &std::path::Path, export: &std::path::Path| {
        writ_for(db, &nowhere)
            .args([
                "transparency",
                "verify",
                report_dir.to_str().unwrap(),
                export.to_str().unwrap(),
                "--key",
                &vkey,
            ])
            .output()
            .unwrap()
    };
    let ok = verify(&out, &export);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("OK: report"));

    // An edited number is named: file, table, row, column, what the log gives, what it says.
    let csv_path = out.join("by_country.csv");
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert!(csv.contains("FR,prosecutor,2,"), "{csv}");
    std::fs::write(
        &csv_path,
        csv.replace("FR,prosecutor,2,", "FR,prosecutor,3,"),
    )
    .unwrap();
    let failed = verify(&out, &export);
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr).to_string();
    assert!(
        err.contains(
            "by_country.csv: table `by_country`, row 4 (FR), column `requests`: the log gives `2`, the report says `3`"
        ),
        "{err}"
    );
    std::fs::write(&csv_path, &csv).unwrap();
    let json_path = out.join("report.json");
    let original = std::fs::read_to_string(&json_path).unwrap();
    let mut edited = report.clone();
    edited.tables[0].rows[6][1] = "0".into();
    std::fs::write(&json_path, serde_json::to_string_pretty(&edited).unwrap()).unwrap();
    let err = String::from_utf8_lossy(&verify(&out, &export).stderr).to_string();
    assert!(
        err.contains("report.json: table `summary`, row 7 (refused), column `value`: the log gives `1`, the report says `0`"),
        "{err}"
    );
    std::fs::write(&json_path, &original).unwrap();
    let page = out.join("index.html");
    std::fs::write(
        &page,
        html.replace("Transparency report", "Transparency Report"),
    )
    .unwrap();
    let err = String::from_utf8_lossy(&verify(&out, &export).stderr).to_string();
    assert!(err.contains("index.html differs"), "{err}");
    std::fs::write(&page, &html).unwrap();
    assert!(verify(&out, &export).status.success());

    // A truncated export fails; so does one that stops before the report's range ends.
    let text = std::fs::read_to_string(&export).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cut = dir.join("cut.jsonl");
    std::fs::write(&cut, lines[..lines.len() - 3].join("\n") + "\n").unwrap();
    let err = String::from_utf8_lossy(&verify(&out, &cut).stderr).to_string();
    assert!(err.contains("FAILED") && err.contains("missing"), "{err}");
    let short = dir.join("short.jsonl");
    let end = (report.log.end - 2).to_string();
    writ_ok(
        db,
        &[],
        &[
            "audit",
            "export",
            "--end",
            &end,
            "-o",
            short.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&verify(&out, &short).stderr).to_string();
    assert!(err.contains("does not reach the report's range"), "{err}");

    // A log edited behind Writ's back gives no report.
    let pool = api.app.pool.clone();
    let victim = report.log.end - 1;
    pool.run(move |conn| {
        use diesel::connection::SimpleConnection;
        let disable = match &*conn {
            writ::db::DbConn::Sqlite(_) => "DROP TRIGGER audit_entries_no_update;",
            writ::db::DbConn::Postgres(_) => "ALTER TABLE audit_entries DISABLE TRIGGER USER;",
        };
        conn.batch_execute(disable).unwrap();
        conn.batch_execute(&format!(
            "UPDATE audit_entries SET leaf = replace(leaf, '\"v\":1', '\"v\":1 ') WHERE seq = {victim}"
        ))
        .unwrap();
        Ok::<_, writ::db::DbError>(())
    })
    .await
    .unwrap();
    let err = writ_fails(
        db,
        &EXACT,
        &[
            "transparency",
            "report",
            "--from",
            &today,
            "--to",
            &today,
            "--out",
            dir.join("again").to_str().unwrap(),
        ],
    );
    assert!(
        err.contains("does not verify") && err.contains(&format!("entry {victim}")),
        "{err}"
    );
    assert!(!dir.join("again").exists());
}

async fn a_report_over_the_demo_counts_its_orders(backend: Backend) {
    let db = TestDb::new(backend);
    writ_ok(&db, &[], &["migrate"]);
    writ_ok(&db, &[], &["keys", "init"]);
    let printed = writ_ok(
        &db,
        &[],
        &[
            "demo",
            "seed",
            "--workspace",
            "--accounts",
            "20",
            "--events-per-account",
            "1",
        ],
    );
    assert!(printed.contains("6 orders"), "{printed}");
    let out = db.dir().join("demo-report");
    let today = Utc::now().format("%Y-%m-%d").to_string();
    writ_ok(
        &db,
        &EXACT,
        &[
            "transparency",
            "report",
            "--from",
            &today,
            "--to",
            &today,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let report = read_report(&out);
    // The demo's orders (src/orders/demo.rs), counted by hand: six received, all still open;
    // one preservation (PR-2026-0105-PR), two emergencies (0103-URG; the preservation one is
    // an emergency too but counted apart); five from Paris's prosecutor, one from the Lyon
    // police (which claims a judge).
    let summary = |m: &str| cell(&report, "summary", &[m], "value");
    assert_eq!(summary("requests received (preservation apart)"), "5");
    assert_eq!(summary("of which emergency"), "1");
    assert_eq!(summary("open at period end"), "5");
    assert_eq!(summary("preservation requests (not in the totals)"), "1");
    assert_eq!(summary("accounts specified"), "4");
    assert_eq!(summary("identifiers specified"), "5");
    assert_eq!(
        cell(&report, "by_country", &["FR", "prosecutor"], "requests"),
        "3"
    );
    assert_eq!(
        cell(&report, "by_country", &["FR", "police"], "requests"),
        "1"
    );
    assert_eq!(cell(&report, "emergency", &["FR"], "requests"), "1");
    assert_eq!(cell(&report, "preservation", &["FR"], "requests"), "1");
}

/// One request the year test seeds, and what became of it.
#[derive(Debug, Clone)]
struct Seeded {
    id: String,
    country: &'static str,
    kind: &'static str,
    instrument: &'static str,
    basis: &'static str,
    preserve: bool,
    emergency: bool,
    identifiers: u64,
    accounts: u64,
    received: DateTime<Utc>,
    deadline: DateTime<Utc>,
    /// produced, none_held, refused, withdrawn, open
    fate: &'static str,
    fate_at: DateTime<Utc>,
    narrowed: bool,
    notified: bool,
    gag_until: Option<&'static str>,
    /// Written the way entries were before they carried the report's fields.
    old: bool,
}

fn entries_of(r: &Seeded) -> Vec<(DateTime<Utc>, NewEntry)> {
    let authority = Actor::new(ActorKind::Authority, format!("auth-{}", r.country));
    let staff = Actor::new(ActorKind::Staff, "u_1");
    let mut received = NewEntry::new(authority.clone(), writ::audit::Event::OrderReceived)
        .order(r.id.as_str())
        .reference("authority", format!("auth-{}", r.country))
        .reference("channel", "api")
        .reference("instrument", r.instrument)
        .reference("outcome", "acceptable_for_review")
        .reference("emergency", r.emergency);
    if !r.old {
        received = received
            .reference("issuer_country", r.country)
            .reference("issuer_kind", r.kind)
            .reference("identifiers", r.identifiers)
            .reference("accounts", r.accounts)
            .reference("received_at", writ::audit::entry::format_time(r.received))
            .reference("legal_basis", r.basis)
            .reference("action", if r.preserve { "preserve" } else { "produce" })
            .reference("deadline_at", writ::audit::entry::format_time(r.deadline))
            .reference("gag", r.gag_until.is_some());
        if let Some(until) = r.gag_until {
            received = received.reference("gag_until", until);
        }
    }
    let mut out = vec![(r.received, received)];
    let at = r.fate_at;
    if r.narrowed {
        out.push((
            at - Duration::minutes(30),
            NewEntry::new(staff.clone(), writ::audit::Event::OrderNarrowed).order(r.id.as_str()),
        ));
    }
    match r.fate {
        "produced" => out.push((
            at,
            NewEntry::new(staff.clone(), writ::audit::Event::OrderReleased)
                .order(r.id.as_str())
                .reference("records_subscriber", 2u64)
                .reference("records_ip_history", 0u64),
        )),
        "none_held" => out.push((
            at,
            NewEntry::new(staff.clone(), writ::audit::Event::OrderReleased)
                .order(r.id.as_str())
                .reference("records_subscriber", 0u64),
        )),
        "refused" => out.push((
            at,
            NewEntry::new(staff.clone(), writ::audit::Event::OrderRefused).order(r.id.as_str()),
        )),
        "withdrawn" => out.push((
            at,
            NewEntry::new(authority, writ::audit::Event::OrderWithdrawn).order(r.id.as_str()),
        )),
        _ => {}
    }
    if r.notified {
        out.push((
            at + Duration::hours(1),
            NewEntry::new(staff, writ::audit::Event::OrderUserNotified)
                .order(r.id.as_str())
                .reference("channel", "email"),
        ));
    }
    out
}

/// A count as the settings publish it, written here again so the test does not trust the
/// builder's own banding.
fn published(v: u64, threshold: u64) -> String {
    match v {
        0 => "0".into(),
        v if v < threshold => format!("<{threshold}"),
        v => v.to_string(),
    }
}

fn nearest_rank_hours(sorted: &[i64], p: usize) -> String {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    let secs = sorted[rank - 1];
    let tenths = (secs * 10 + 1800) / 3600;
    format!("{}.{}", tenths / 10, tenths % 10)
}

async fn a_seeded_year_matches_counts_made_by_the_test(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    let year = Period::new(
        chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2025, 12, 31).unwrap(),
    )
    .unwrap();
    let end = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    // Requests per country (the main table, before emergencies and preservations are added):
    // IT has exactly the country minimum (10) and stays; ES has one fewer and goes to "other".
    let countries: [(&str, usize); 8] = [
        ("FR", 130),
        ("DE", 80),
        ("BE", 25),
        ("IT", 10),
        ("ES", 9),
        ("NL", 3),
        ("PL", 1),
        ("US", 40),
    ];
    let kinds = ["prosecutor", "judge", "police"];
    let fates = [
        "produced",
        "none_held",
        "refused",
        "withdrawn",
        "open",
        "produced",
    ];
    let gags: [Option<&str>; 4] = [
        None,
        Some("open_ended"),
        Some("2025-06-01T00:00:00.000000Z"),
        Some("2026-06-01T00:00:00.000000Z"),
    ];
    let mut seeded: Vec<Seeded> = Vec::new();
    let mut n = 0usize;
    let total: usize = countries.iter().map(|c| c.1).sum::<usize>() + 60;
    let mut next = |country: &'static str,
                    kind: &'static str,
                    instrument: &'static str,
                    preserve: bool,
                    emergency: bool,
                    old: bool| {
        let i = n;
        n += 1;
        // Spread over the year, a few before it and after it.
        let hours = i64::try_from(i * 8784 / total).unwrap() - 48;
        let received = start + Duration::hours(hours) + Duration::minutes(7);
        let fate = fates[i % fates.len()];
        let delay = Duration::hours(i64::try_from((i * 7) % 100).unwrap() + 1);
        Seeded {
            id: format!("ord-{i:04}"),
            country,
            kind,
            instrument,
            basis: if instrument == "eu.epoc" {
                "Regulation (EU) 2023/1543 Art 5"
            } else if instrument == "us.fisa" {
                "50 U.S.C. 1881a"
            } else {
                "Code de procedure penale art 60-1"
            },
            preserve,
            emergency,
            identifiers: 1 + (i as u64 % 3),
            accounts: i as u64 % 2,
            received,
            deadline: received + Duration::hours(48),
            fate,
            fate_at: received + delay,
            narrowed: i % 6 == 5,
            notified: i.is_multiple_of(9),
            gag_until: gags[i % gags.len()],
            old,
        }
    };
    for (country, count) in countries {
        for j in 0..count {
            let instrument = if country == "US" {
                "us.fisa"
            } else if j.is_multiple_of(2) {
                "eu.epoc"
            } else {
                "fr.requisition"
            };
            let r = next(
                country,
                kinds[j % kinds.len()],
                instrument,
                false,
                false,
                false,
            );
            seeded.push(r);
        }
    }
    for j in 0..25 {
        let country = ["FR", "DE", "NL"][j % 3];
        seeded.push(next(country, "police", "eu.epoc", false, true, false));
    }
    for j in 0..32 {
        let country = ["FR", "DE", "BE", "PL"][j % 4];
        seeded.push(next(
            country,
            "prosecutor",
            "eu.epoc_pr",
            true,
            j.is_multiple_of(5),
            false,
        ));
    }
    for _ in 0..3 {
        seeded.push(next("FR", "judge", "eu.epoc", false, false, true));
    }
    // An order received before the year and answered within it: not the year's request.
    let mut early = next("FR", "judge", "eu.epoc", false, false, false);
    early.received = start - Duration::days(20);
    early.fate_at = start + Duration::days(3);
    seeded.push(early);

    let mut entries: Vec<(DateTime<Utc>, NewEntry)> = seeded.iter().flat_map(entries_of).collect();
    entries.sort_by_key(|(at, _)| *at);
    // Something else in the log, too, that the report must ignore.
    entries.insert(
        entries.len() / 2,
        (
            start + Duration::days(100),
            NewEntry::new(Actor::system(), writ::audit::Event::StaffLogin),
        ),
    );
    app.pool
        .run(move |conn| {
            writ::db::write_tx(conn, |c| {
                for (at, e) in &entries {
                    writ::audit::append(c, e, *at)?;
                }
                Ok::<_, writ::audit::AuditError>(())
            })
        })
        .await
        .unwrap();

    let category = ReportCategory {
        name: "us_national_security".into(),
        instruments: vec!["us.fisa".into()],
        band: 250,
        delay_days: 180,
    };
    let rules = TransparencySettings {
        threshold: 10,
        country_minimum: 10,
        categories: vec![category.clone()],
    };
    let settings = app.db.settings(&[]);
    let build = |rules: TransparencySettings, now: DateTime<Utc>| {
        let settings = settings.clone();
        app.pool.run(move |conn| {
            let signer = writ::audit::service::load_signer(&settings.audit, conn, false).unwrap();
            Ok::<_, writ::db::DbError>(
                writ::transparency::build_from_db(conn, &signer, year, rules, now).unwrap(),
            )
        })
    };
    let built = build(rules.clone(), Utc::now()).await.unwrap();
    let report = built.report;
    // The README's picture is this report (`WRIT_TEST_TRANSPARENCY_SAMPLE=DIR`).
    if let Ok(dir) = std::env::var("WRIT_TEST_TRANSPARENCY_SAMPLE")
        && backend == Backend::Sqlite
    {
        writ::transparency::publish::write_folder(&report, std::path::Path::new(&dir)).unwrap();
    }

    // The test's own counts, from its own list.
    let in_year: Vec<&Seeded> = seeded
        .iter()
        .filter(|r| r.received >= start && r.received < end)
        .collect();
    let fate_at_end = |r: &Seeded| if r.fate_at < end { r.fate } else { "open" };
    let t = rules.threshold;
    let counted: Vec<&&Seeded> = in_year
        .iter()
        .filter(|r| r.instrument != "us.fisa")
        .collect();
    let produce: Vec<&&&Seeded> = counted.iter().filter(|r| !r.preserve).collect();
    let n_of = |f: &dyn Fn(&Seeded) -> bool| produce.iter().filter(|r| f(r)).count() as u64;
    let summary = |m: &str| cell(&report, "summary", &[m], "value");
    assert_eq!(
        summary("requests received (preservation apart)"),
        published(produce.len() as u64, t)
    );
    assert_eq!(
        summary("of which emergency"),
        published(n_of(&|r| r.emergency), t)
    );
    assert_eq!(
        summary("accounts specified"),
        published(
            produce.iter().filter(|r| !r.old).map(|r| r.accounts).sum(),
            t
        )
    );
    assert_eq!(
        summary("identifiers specified"),
        published(
            produce
                .iter()
                .filter(|r| !r.old)
                .map(|r| r.identifiers)
                .sum(),
            t
        )
    );
    for (measure, fate) in [
        ("some data produced", "produced"),
        ("no data held", "none_held"),
        ("refused", "refused"),
        ("withdrawn", "withdrawn"),
        ("open at period end", "open"),
    ] {
        assert_eq!(
            summary(measure),
            published(n_of(&|r| fate_at_end(r) == fate), t),
            "{measure}"
        );
    }
    assert_eq!(
        summary("narrowed"),
        published(
            n_of(&|r| r.narrowed && r.fate_at - Duration::minutes(30) < end),
            t
        )
    );
    assert_eq!(
        summary("preservation requests (not in the totals)"),
        published(counted.iter().filter(|r| r.preserve).count() as u64, t)
    );

    // By country and kind (neither emergency nor preservation), small countries merged.
    let main: Vec<&&&Seeded> = produce.iter().filter(|r| !r.emergency).copied().collect();
    let mut per_country: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &main {
        let c = if r.old { "not recorded" } else { r.country };
        *per_country.entry(c).or_default() += 1;
    }
    let mut expected: BTreeMap<(String, String), [u64; 3]> = BTreeMap::new();
    for r in &main {
        let (c, k) = if r.old {
            ("not recorded".to_owned(), "not recorded".to_owned())
        } else if per_country[r.country] < rules.country_minimum {
            ("other".to_owned(), r.kind.to_owned())
        } else {
            (r.country.to_owned(), r.kind.to_owned())
        };
        let e = expected.entry((c, k)).or_default();
        e[0] += 1;
        if fate_at_end(r) == "refused" {
            e[1] += 1;
        }
        if fate_at_end(r) == "open" {
            e[2] += 1;
        }
    }
    assert!(
        expected.keys().any(|(c, _)| c == "IT"),
        "IT has exactly the minimum"
    );
    assert!(!expected.keys().any(|(c, _)| c == "ES"), "ES has one fewer");
    let table = report.table("by_country").unwrap();
    assert_eq!(table.rows.len(), expected.len(), "{:?}", table.rows);
    for ((c, k), [requests, refused, open]) in &expected {
        let by = |col: &str| cell(&report, "by_country", &[c, k], col);
        assert_eq!(by("requests"), published(*requests, t), "{c} {k}");
        assert_eq!(by("refused"), published(*refused, t), "{c} {k}");
        assert_eq!(by("open at period end"), published(*open, t), "{c} {k}");
    }
    // Emergencies and preservations by country.
    for (name, pick) in [
        (
            "emergency",
            &(|r: &Seeded| !r.preserve && r.emergency) as &dyn Fn(&Seeded) -> bool,
        ),
        ("preservation", &|r: &Seeded| r.preserve),
    ] {
        let mut per: BTreeMap<&str, u64> = BTreeMap::new();
        for r in counted.iter().filter(|r| pick(r)) {
            *per.entry(r.country).or_default() += 1;
        }
        let mut merged: BTreeMap<&str, u64> = BTreeMap::new();
        for (c, v) in per {
            let key = if v < rules.country_minimum {
                "other"
            } else {
                c
            };
            *merged.entry(key).or_default() += v;
        }
        let table: &Table = report.table(name).unwrap();
        assert_eq!(table.rows.len(), merged.len(), "{name}: {:?}", table.rows);
        for (c, v) in merged {
            assert_eq!(
                cell(&report, name, &[c], "requests"),
                published(v, t),
                "{name} {c}"
            );
        }
    }
    // By month.
    for m in 1..=12u32 {
        let key = format!("2025-{m:02}");
        let v = produce
            .iter()
            .filter(|r| r.received.format("%Y-%m").to_string() == key)
            .count() as u64;
        assert_eq!(
            cell(&report, "over_time", &[&key], "requests"),
            published(v, t),
            "{key}"
        );
    }
    // Time to respond: answered (released or refused) by the end, from receipt.
    let mut secs: Vec<i64> = produce
        .iter()
        .filter(|r| !r.old)
        .filter(|r| matches!(r.fate, "produced" | "none_held" | "refused") && r.fate_at < end)
        .map(|r| (r.fate_at - r.received).num_seconds())
        .collect();
    secs.sort_unstable();
    let on_time = produce
        .iter()
        .filter(|r| !r.old)
        .filter(|r| matches!(r.fate, "produced" | "none_held" | "refused") && r.fate_at < end)
        .filter(|r| r.fate_at <= r.deadline)
        .count() as u64;
    let row = "all requests to produce";
    assert_eq!(
        cell(&report, "response_time", &[row], "answered"),
        published(secs.len() as u64, t)
    );
    assert_eq!(
        cell(&report, "response_time", &[row], "median hours to respond"),
        nearest_rank_hours(&secs, 50)
    );
    assert_eq!(
        cell(&report, "response_time", &[row], "90th percentile hours"),
        nearest_rank_hours(&secs, 90)
    );
    let tenths = (on_time * 1000 + secs.len() as u64 / 2) / secs.len() as u64;
    assert_eq!(
        cell(&report, "response_time", &[row], "answered by the deadline"),
        format!("{}.{}%", tenths / 10, tenths % 10)
    );
    // Notices and gags (over every request but the category's).
    let gagged: Vec<_> = counted
        .iter()
        .filter(|r| r.gag_until.is_some() && !r.old)
        .collect();
    let in_force = gagged
        .iter()
        .filter(|r| {
            matches!(
                r.gag_until,
                Some("open_ended") | Some("2026-06-01T00:00:00.000000Z")
            )
        })
        .count() as u64;
    let notified = counted
        .iter()
        .filter(|r| r.notified && r.fate_at + Duration::hours(1) < end)
        .count() as u64;
    let notices = |m: &str| cell(&report, "notices", &[m], "value");
    assert_eq!(
        notices("requests with a non-disclosure order"),
        published(gagged.len() as u64, t)
    );
    assert_eq!(
        notices("non-disclosure orders still in force at period end"),
        published(in_force, t)
    );
    assert_eq!(notices("users notified"), published(notified, t));
    // The category: apart, in bands of 250, published after its delay.
    let us = in_year.iter().filter(|r| r.instrument == "us.fisa").count() as u64;
    assert!((1..250).contains(&us), "{us}");
    assert_eq!(
        cell(
            &report,
            "category_us_national_security",
            &["requests"],
            "value"
        ),
        "0-249"
    );
    assert!(
        !report
            .table("by_country")
            .unwrap()
            .rows
            .iter()
            .any(|r| r[0] == "US")
    );
    // Old entries: said, not guessed.
    assert_eq!(report.limitations.len(), 1, "{:?}", report.limitations);
    assert!(
        report.limitations[0].contains("<10 request(s)"),
        "{:?}",
        report.limitations
    );
    assert_eq!(
        cell(
            &report,
            "by_country",
            &["not recorded", "not recorded"],
            "requests"
        ),
        "<10"
    );

    // Before the delay has run, the category is withheld, with the date it will be published.
    let early = build(rules.clone(), end + Duration::days(30))
        .await
        .unwrap()
        .report;
    assert_eq!(
        cell(
            &early,
            "category_us_national_security",
            &["requests"],
            "value"
        ),
        "withheld until 2026-06-30"
    );
    // With no threshold and no minimum, the same log gives the exact counts.
    let exact = TransparencySettings {
        threshold: 1,
        country_minimum: 0,
        categories: vec![],
    };
    let raw = build(exact, Utc::now()).await.unwrap().report;
    assert_eq!(
        cell(&raw, "by_country", &["ES", "prosecutor"], "requests"),
        main.iter()
            .filter(|r| r.country == "ES" && r.kind == "prosecutor" && !r.old)
            .count()
            .to_string()
    );
}

async fn the_workspace_shows_the_report_and_offers_its_folder(backend: Backend) {
    let api = Api::start(backend, &EXACT).await;
    add_users(&api.app).await;
    let (status, _) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    assert_eq!(status, StatusCode::CREATED);
    let today = Utc::now().format("%Y-%m-%d").to_string();
    let query = format!("from={today}&to={today}");
    let mut olga = Browser::new(&api.app);
    assert_eq!(olga.sign_in("olga", PASSWORD).await, StatusCode::SEE_OTHER);
    let (s, page, _) = olga.get(&format!("/transparency?{query}")).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page.contains("<svg") && page.contains("Requests by country"),
        "{page}"
    );
    assert!(page.contains("<th scope=\"row\">FR</th>"), "{page}");
    assert!(page.contains("report.tar?from="), "{page}");
    let (s, page, _) = olga
        .get("/transparency?from=2026-13-01&to=2026-01-01")
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("from `2026-13-01` is not a date"), "{page}");
    let r = api
        .app
        .client
        .get(format!(
            "{}/transparency/report.tar?{query}",
            api.app.address
        ))
        .header("cookie", olga.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/x-tar");
    let tar = r.bytes().await.unwrap();
    let files = writ::disclosure::tar::read(
        &tar,
        &writ::disclosure::tar::ReadRules {
            max_files: 100,
            max_file_size: 1 << 20,
            allowed: &|_| true,
        },
    )
    .unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    for name in [
        "index.html",
        "report.json",
        "by_country.csv",
        "methodology.txt",
    ] {
        assert!(names.contains(&name), "{name}: {names:?}");
    }
    // A reviewer may not.
    let mut rita = Browser::new(&api.app);
    assert_eq!(rita.sign_in("rita", PASSWORD).await, StatusCode::SEE_OTHER);
    let (s, _, _) = rita.get(&format!("/transparency?{query}")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
