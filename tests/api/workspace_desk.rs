//! The legal team's desk (issue 19, part A) over HTTP: post/redirect/get for the audited
//! lookups and the package preview, assignment, internal notes, the "new reply" flag, the
//! notifications (in the app and by e-mail), search, saved filters and the CSV exports.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp};
use crate::orders::{Api, ORDER, PARIS, json_of, submission};
use crate::workspace::{Browser, PASSWORD, add_users, hash_in, seed_alice};

both_backends!(
    reloading_the_matches_and_the_preview_runs_nothing_again,
    orders_are_assigned_noted_flagged_and_colleagues_notified,
    the_queue_is_searched_filtered_saved_and_exported,
    the_audit_page_filters_by_date_names_references_pages_and_exports,
);

/// Every audit event name in the log, in order.
async fn events(app: &TestApp) -> Vec<String> {
    app.pool
        .run(|conn| {
            let all = writ::audit::log::entries(conn, 0, 100_000).unwrap();
            Ok::<_, writ::db::DbError>(
                all.into_iter()
                    .map(|e| {
                        let leaf: Value = serde_json::from_str(&e.leaf).unwrap();
                        leaf["event"].as_str().unwrap().to_owned()
                    })
                    .collect(),
            )
        })
        .await
        .unwrap()
}

/// Every leaf of the audit log, as text.
async fn leaves(app: &TestApp) -> String {
    app.pool
        .run(|conn| {
            let all = writ::audit::log::entries(conn, 0, 100_000).unwrap();
            Ok::<_, writ::db::DbError>(
                all.into_iter()
                    .map(|e| e.leaf)
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })
        .await
        .unwrap()
}

async fn submit_with(api: &Api, reference: &str) -> String {
    let mut order: Value = serde_json::from_str(ORDER).unwrap();
    order["reference"] = json!(reference);
    let (status, created) = json_of(api.submit(PARIS, &submission(&order.to_string())).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

/// Bug 11: the matches page and the package preview answer their POST with a redirect; the
/// GET shows the result kept for the session. Reloading it runs no lookup and writes nothing
/// to the audit log; another session has no result to see.
async fn reloading_the_matches_and_the_preview_runs_nothing_again(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    seed_alice(&api.app).await;
    let id = submit_with(&api, "PR-2026-0042").await;
    let mut alex = Browser::new(&api.app);
    alex.sign_in("alex", PASSWORD).await;
    let csrf = alex.session_csrf().await;

    let before = events(&api.app).await.len();
    let (status, _, to) = alex
        .post(&format!("/orders/{id}/matches"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        to.as_deref(),
        Some(format!("/orders/{id}/matches").as_str())
    );
    let looked_up = events(&api.app).await;
    assert!(looked_up.len() > before, "the lookups are audited");
    assert!(looked_up[before..].iter().all(|e| e == "metadata.lookup"));
    let (status, page, _) = alex.get(&format!("/orders/{id}/matches")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("u-alice"), "{page}");
    let (status, again, _) = alex.get(&format!("/orders/{id}/matches")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(again.contains("u-alice"));
    assert_eq!(
        events(&api.app).await.len(),
        looked_up.len(),
        "reloading looks nothing up again"
    );

    // The preview likewise: prepared once (audited), shown again on reload without a new entry.
    let (status, _, to) = alex
        .post(&format!("/orders/{id}/package"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        to.as_deref(),
        Some(format!("/orders/{id}/package").as_str())
    );
    let prepared = events(&api.app).await.len();
    assert!(prepared > looked_up.len(), "preparing is audited");
    let (status, preview, _) = alex.get(&format!("/orders/{id}/package")).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    let hash = hash_in(&preview);
    let (_, reloaded, _) = alex.get(&format!("/orders/{id}/package")).await;
    assert_eq!(hash_in(&reloaded), hash);
    assert_eq!(
        events(&api.app).await.len(),
        prepared,
        "a reload prepares nothing"
    );

    // The results belong to the session that made them.
    let mut bea = Browser::new(&api.app);
    bea.sign_in("bea", PASSWORD).await;
    for path in [
        format!("/orders/{id}/matches"),
        format!("/orders/{id}/package"),
    ] {
        let (status, page, _) = bea.get(&path).await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}: {page}");
        assert!(page.contains("<nav aria-label=\"Main\">"), "{page}");
    }
    // A reviewer may look up matches but never sees a preview.
    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let (status, _, _) = rita.get(&format!("/orders/{id}/package")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// The bell's count on a page.
fn bell(page: &str) -> u32 {
    let at = page.find("aria-label=\"Notifications: ").expect("the bell");
    let rest = &page[at + 27..];
    rest[..rest.find(' ').unwrap()].parse().unwrap()
}

/// Assignment, notes, the new-reply flag, and the three notifications, in the app and by mail.
async fn orders_are_assigned_noted_flagged_and_colleagues_notified(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    let id = submit_with(&api, "PR-2026-0042").await;
    let order = format!("/orders/{id}");
    let mut alex = Browser::new(&api.app);
    alex.sign_in("alex", PASSWORD).await;
    let csrf = alex.session_csrf().await;
    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let rita_csrf = rita.session_csrf().await;
    let (_, page, _) = rita.get("/orders").await;
    assert_eq!(bell(&page), 0);

    // Rita gives an address for her notifications; a bad one is refused by field.
    let (status, body, _) = rita
        .post(
            "/account/preferences",
            &[
                ("csrf", &rita_csrf),
                ("email", "not an address"),
                ("time_zone", "UTC"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("email"));
    let (status, body, _) = rita
        .post(
            "/account/preferences",
            &[
                ("csrf", &rita_csrf),
                ("email", "rita@provider.example"),
                ("time_zone", "Mars/Base"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("time_zone"));
    let (status, _, _) = rita
        .post(
            "/account/preferences",
            &[
                ("csrf", &rita_csrf),
                ("email", "rita@provider.example"),
                ("time_zone", "Europe/Paris"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // Assigning to someone who may not work on orders is refused, naming the field.
    let (status, body, _) = alex
        .post(
            &format!("{order}/assign"),
            &[("csrf", &csrf), ("assignee", "olga")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("assignee"), "{body}");
    // Without the form's token nothing happens.
    let (status, _, _) = alex
        .post(
            &format!("{order}/assign"),
            &[("csrf", "wrong"), ("assignee", "rita")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = alex
        .post(
            &format!("{order}/assign"),
            &[("csrf", &csrf), ("assignee", "rita")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        events(&api.app)
            .await
            .iter()
            .filter(|e| *e == "order.assigned")
            .count(),
        1
    );
    let (_, page, _) = rita.get("/orders?assignee=me").await;
    assert_eq!(bell(&page), 1, "assigned to her");
    assert!(
        page.contains(&format!("/orders/{id}\"")),
        "her queue lists it"
    );
    let (_, page, _) = rita.get("/notifications").await;
    assert!(
        page.contains("PR-2026-0042 was assigned to you by alex"),
        "{page}"
    );

    // An internal note: on the page with its author, audited by hash, never sent out.
    let note = "Checked with the DPO: proceed.";
    let (status, _, _) = rita
        .post(
            &format!("{order}/notes"),
            &[("csrf", &rita_csrf), ("text", note)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, body, _) = rita
        .post(
            &format!("{order}/notes"),
            &[("csrf", &rita_csrf), ("text", "   ")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, page, _) = alex.get(&order).await;
    assert!(page.contains(note), "{page}");
    assert!(
        page.contains("Assigned to: <strong class=\"assignee\">rita</strong>"),
        "{page}"
    );
    let log = leaves(&api.app).await;
    assert!(
        log.contains("order.note_added") && !log.contains("DPO"),
        "{log}"
    );
    let api_path = format!("/api/v1/orders/{id}/messages");
    let (_, messages) = json_of(api.send(PARIS, "GET", &api_path, b"").await).await;
    assert!(!messages.to_string().contains("DPO"), "{messages}");

    // The authority writes: the order carries the flag in the queue, Rita is notified.
    let (status, body) = json_of(
        api.send(
            PARIS,
            "POST",
            &api_path,
            json!({"text": "The account is the suspect's."})
                .to_string()
                .as_bytes(),
        )
        .await,
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    let (_, queue, _) = alex.get("/orders?replied=1").await;
    assert!(
        queue.contains("New reply") && queue.contains("PR-2026-0042"),
        "{queue}"
    );
    let (_, page, _) = rita.get("/notifications").await;
    assert!(
        page.contains("The authority replied on order PR-2026-0042"),
        "{page}"
    );
    assert_eq!(bell(&page), 2);
    let (status, _, _) = rita
        .post(&format!("{order}/reply-read"), &[("csrf", &rita_csrf)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, queue, _) = alex.get("/orders").await;
    assert!(!queue.contains("New reply"), "{queue}");

    // The deadline nears: notified once, however often the job runs.
    let near = api
        .app
        .pool
        .run(|conn| {
            let now = chrono::Utc::now();
            let within = chrono::Duration::days(30);
            let a = writ::orders::desk::notify_deadlines_near(conn, within, now)?;
            let b = writ::orders::desk::notify_deadlines_near(conn, within, now)?;
            Ok::<_, writ::orders::OrderError>((a, b))
        })
        .await
        .unwrap();
    assert_eq!(near, (1, 0));
    let (_, page, _) = rita.get("/notifications").await;
    assert_eq!(bell(&page), 3);
    assert!(
        page.contains("The deadline of order PR-2026-0042 is near"),
        "{page}"
    );
    let (status, _, _) = rita
        .post("/notifications/read", &[("csrf", &rita_csrf)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page, _) = rita.get("/notifications").await;
    assert_eq!(bell(&page), 0);

    // By e-mail through the outbox: Rita's three, to her address only, once.
    let mail = api.app.db.settings(&[]).mail;
    let queued = api
        .app
        .pool
        .run(move |conn| {
            let now = chrono::Utc::now();
            let a = writ::orders::desk::mail_notifications(conn, &mail, now)?;
            let b = writ::orders::desk::mail_notifications(conn, &mail, now)?;
            Ok::<_, writ::orders::OrderError>((a, b))
        })
        .await
        .unwrap();
    assert_eq!(queued, (3, 0));
    let outbox = api
        .app
        .pool
        .run(|conn| Ok::<_, writ::db::DbError>(writ::mail::list(conn, None, 100).unwrap()))
        .await
        .unwrap();
    let to_rita: Vec<_> = outbox
        .iter()
        .filter(|m| m.recipients == "rita@provider.example")
        .collect();
    assert_eq!(to_rita.len(), 3, "{outbox:?}");
    assert!(
        to_rita
            .iter()
            .all(|m| !m.body.contains("DPO") && !m.body.contains("suspect"))
    );

    // Dates read as people write them, in Rita's zone; events and authors in words.
    let (_, page, _) = rita.get(&order).await;
    assert!(
        page.contains(" CET</time>") || page.contains(" CEST</time>"),
        "{page}"
    );
    assert!(
        page.contains("Package prepared") || page.contains(">Received<"),
        "{page}"
    );
    assert!(!page.contains("<td>order.received</td>"), "{page}");
}

/// Search by reference, target identifier (audited) and authority; filters; saved filters; CSV.
async fn the_queue_is_searched_filtered_saved_and_exported(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    let first = submit_with(&api, "PR-2026-0042").await;
    let second = submit_with(&api, "=HYPERLINK(\"http://x.example\")").await;
    let mut olga = Browser::new(&api.app);
    olga.sign_in("olga", PASSWORD).await;
    let csrf = olga.session_csrf().await;

    let (status, page, _) = olga.get("/orders?reference=pr-2026").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(&first) && !page.contains(&second), "{page}");

    // By target identifier: audited, with the identifier's hash and never the identifier.
    let searched = |e: &String| e == "orders.searched_by_target";
    let before = events(&api.app)
        .await
        .iter()
        .filter(|e| searched(e))
        .count();
    let (status, page, _) = olga.get("/orders?target=alice").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&first) && page.contains(&second), "{page}");
    let (_, page, _) = olga.get("/orders?target=alic").await;
    assert!(
        !page.contains(&first),
        "the identifier matches exactly: {page}"
    );
    assert_eq!(
        events(&api.app)
            .await
            .iter()
            .filter(|e| searched(e))
            .count(),
        before + 2
    );
    let log = leaves(&api.app).await;
    let entry = log
        .lines()
        .find(|l| l.contains("orders.searched_by_target"))
        .unwrap();
    assert!(
        entry.contains("identifier_sha256") && !entry.contains("alice"),
        "{entry}"
    );

    // By authority (name or id, any case) and country; by engine verdict and receipt date.
    let (_, page, _) = olga.get("/orders?authority=PARQUET").await;
    assert!(page.contains(&first), "{page}");
    let (_, page, _) = olga.get("/orders?authority=nobody-of-that-name").await;
    assert!(page.contains("No orders match"), "{page}");
    let (_, page, _) = olga.get("/orders?country=FR").await;
    assert!(page.contains(&first), "{page}");
    let (_, page, _) = olga.get("/orders?country=DE").await;
    assert!(!page.contains(&first), "{page}");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let (_, page, _) = olga
        .get(&format!(
            "/orders?received_from={today}&received_to={today}"
        ))
        .await;
    assert!(page.contains(&first), "{page}");
    let (_, page, _) = olga.get("/orders?received_to=2000-01-01").await;
    assert!(!page.contains(&first), "{page}");
    let (_, page, _) = olga.get("/orders?assignee=none&outcome=refused").await;
    assert!(!page.contains(&first), "{page}");

    // Bad values are refused by name.
    for (query, field) in [
        ("received_from=yesterday", "received_from"),
        (
            "received_from=2026-02-01&received_to=2026-01-01",
            "received_from",
        ),
        ("country=France", "country"),
        ("outcome=maybe", "outcome"),
        ("instrument=eu%20epoc", "instrument"),
    ] {
        let (status, page, _) = olga.get(&format!("/orders?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert!(page.contains(field), "{query}: {page}");
    }

    // Saved filters are the user's own.
    let (status, _, to) = olga
        .post(
            "/filters",
            &[
                ("csrf", &csrf),
                ("name", "Paris"),
                ("query", "authority=parquet&country=FR"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(to.as_deref(), Some("/orders?authority=parquet&country=FR"));
    let (_, page, _) = olga.get("/orders").await;
    assert!(page.contains(">Paris</a>"), "{page}");
    let (status, _, _) = olga
        .post(
            "/filters",
            &[
                ("csrf", &csrf),
                ("name", "bad"),
                ("query", "country=France"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let (_, page, _) = rita.get("/orders").await;
    assert!(!page.contains(">Paris</a>"), "{page}");

    // The CSV of the queue as filtered: a header, one row per order, formulas defused.
    let (status, csv, _) = olga.get("/orders/export.csv?target=alice").await;
    assert_eq!(status, StatusCode::OK);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    assert_eq!(&header[0], "reference");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows.iter().any(|r| &r[0] == "PR-2026-0042"));
    assert!(
        rows.iter().any(|r| r[0].starts_with("'=HYPERLINK")),
        "a formula is defused: {csv}"
    );
    assert!(!csv.lines().any(|l| l.starts_with('=')), "{csv}");
}

/// The audit page: a date filter, references instead of internal ids, more than 500 entries
/// by keyset paging, and the CSV of the filtered view.
async fn the_audit_page_filters_by_date_names_references_pages_and_exports(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    let id = submit_with(&api, "=SUM(A1)").await;
    // Enough entries for two pages.
    api.app
        .pool
        .run(|conn| {
            for _ in 0..520 {
                writ::db::write_tx(conn, |c| {
                    let entry = writ::audit::NewEntry::new(
                        writ::audit::Actor::system(),
                        writ::audit::Event::PolicyLoaded,
                    );
                    writ::audit::append(c, &entry, chrono::Utc::now()).map(|_| ())
                })
                .unwrap();
            }
            Ok::<_, writ::db::DbError>(())
        })
        .await
        .unwrap();
    let mut olga = Browser::new(&api.app);
    olga.sign_in("olga", PASSWORD).await;
    let total = events(&api.app).await.len();
    assert!(total > 520);

    let (status, page, _) = olga.get("/audit-log").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("500 entries, newest first"), "{page}");
    let marker = "before=";
    let at = page.find(marker).expect("a link to older entries");
    let before: String = page[at + marker.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let (status, older, _) = olga.get(&format!("/audit-log?before={before}")).await;
    assert_eq!(status, StatusCode::OK);
    let shown = |p: &str| p.matches("<tr><td>").count();
    assert_eq!(
        shown(&page) + shown(&older),
        total,
        "every entry on one of two pages"
    );
    assert!(!older.contains("Older entries"), "{older}");

    // The order column names the reference, linked to the order.
    let (_, filtered, _) = olga.get("/audit-log?order=%3DSUM(A1)").await;
    assert!(
        filtered.contains(&format!(
            "<a href=\"/orders/{id}\" title=\"{id}\">=SUM(A1)</a>"
        )),
        "{filtered}"
    );
    assert_eq!(
        filtered.matches("<tr><td>").count(),
        filtered
            .matches(&format!("title=\"{id}\">=SUM(A1)</a>"))
            .count(),
        "only the order's entries: {filtered}"
    );

    // By date: today has them all, a day long past none; a bad date is refused by name.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let (_, page, _) = olga
        .get(&format!("/audit-log?from={today}&to={today}"))
        .await;
    assert!(page.contains("500 entries"), "{page}");
    let (_, page, _) = olga.get("/audit-log?to=2000-01-01").await;
    assert!(page.contains("0 entries"), "{page}");
    let (status, page, _) = olga.get("/audit-log?from=today").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("from"), "{page}");

    // The CSV of the filtered view: every matching entry, the reference defused.
    let (status, csv, _) = olga.get("/audit-log/export.csv").await;
    assert_eq!(status, StatusCode::OK);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), total);
    assert!(
        rows.iter().any(|r| &r[5] == "'=SUM(A1)" && r[6] == id),
        "{csv}"
    );
    let (_, csv, _) = olga.get(&format!("/audit-log/export.csv?order={id}")).await;
    let lines = csv.lines().count();
    assert!(
        lines > 1 && csv.lines().skip(1).all(|l| l.contains(&id)),
        "{csv}"
    );
    let (status, csv, _) = olga.get("/audit-log/disclosures.csv").await;
    assert_eq!(status, StatusCode::OK);
    assert!(csv.starts_with("released_at,order_reference"), "{csv}");
}
