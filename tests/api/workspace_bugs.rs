//! The bugs a walkthrough of the workspace found (issue 19), each shown over HTTP as a browser
//! without JavaScript sees it.

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{Backend, spawn_app};
use crate::orders::{Api, ORDER, PARIS, json_of, submission};
use crate::workspace::{Browser, PASSWORD, add_users, seed_alice};

both_backends!(
    the_audit_pages_verify_instructions_work_as_written,
    narrowed_captions_and_citations_follow_the_narrowed_rows,
    undated_orders_climb_the_queue_by_their_internal_target,
    the_matches_page_never_calls_a_missing_match_ambiguous,
    the_order_page_shows_gag_duties_release_date_and_open_questions,
    a_member_states_order_never_cites_gdpr_article_48,
    the_user_notice_is_offered_and_accepted_only_where_allowed,
    an_empty_legal_team_is_warned_about,
    the_audit_filter_takes_a_reference,
);

/// Every `<a href="..." download="NAME">` of a page, as (href, NAME).
fn downloads(page: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(at) = rest.find("<a href=\"") {
        rest = &rest[at + 9..];
        let href = rest[..rest.find('"').unwrap()].to_owned();
        let tag = &rest[..rest.find('>').unwrap()];
        if let Some(d) = tag.find("download=\"") {
            let name = &tag[d + 10..];
            out.push((href, name[..name.find('"').unwrap()].to_owned()));
        }
    }
    out
}

/// Bug 1: the files the audit page offers, saved under the names it gives them, are what the
/// command it prints accepts: run exactly as written, `writ audit verify` says OK.
async fn the_audit_pages_verify_instructions_work_as_written(backend: Backend) {
    let app = spawn_app(backend).await;
    add_users(&app).await;
    assert_eq!(
        app.post_as_auditor("/audit/checkpoint").await.status(),
        StatusCode::OK
    );
    let mut olga = Browser::new(&app);
    olga.sign_in("olga", PASSWORD).await;
    let (status, page, _) = olga.get("/audit-log").await;
    assert_eq!(status, StatusCode::OK);
    let start = page
        .find("<code class=\"verify-command\">")
        .expect("the page prints the command to run");
    let command = &page[start + 29..];
    let command = command[..command.find("</code>").unwrap()].to_owned();
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(&words[..3], ["writ", "audit", "verify"], "{command}");

    let folder = tempfile::tempdir().unwrap();
    for (href, name) in downloads(&page) {
        let (status, body, _) = olga.get(&href).await;
        assert_eq!(status, StatusCode::OK, "{href}");
        std::fs::write(folder.path().join(&name), body).unwrap();
    }
    for w in &words[3..] {
        if !w.starts_with("--") {
            assert!(
                folder.path().join(w).exists(),
                "the command names {w}, which the page does not offer"
            );
        }
    }
    let out = crate::cli::writ_command()
        .current_dir(folder.path())
        .args(&words[1..])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.starts_with("OK: entries 0.."), "{said}");
    assert!(
        said.contains("OK: consistent with your saved checkpoint"),
        "{said}"
    );
    assert!(said.contains("authenticators checked"), "{said}");
}

/// One row of a decision table: field, status, reason cell.
type DecisionRow = (String, String, String);

/// The decision tables of an order page: (caption, rows), each row (field, status, reason cell).
fn decision_tables(page: &str) -> Vec<(String, Vec<DecisionRow>)> {
    let cell = |s: &str| s.trim().to_owned();
    page.split("<table class=\"decision\">")
        .skip(1)
        .map(|t| {
            let t = &t[..t.find("</table>").unwrap()];
            let caption =
                t[t.find("<caption>").unwrap() + 9..t.find("</caption>").unwrap()].to_owned();
            let rows = t
                .split("<tr><td>")
                .skip(1)
                .map(|r| {
                    let parts: Vec<&str> = r.split("</td><td>").collect();
                    let status = parts[1];
                    let status =
                        &status[status.find('>').unwrap() + 1..status.find("</span>").unwrap()];
                    let reason = &parts[2][..parts[2].find("</td>").unwrap()];
                    (cell(parts[0]), cell(status), cell(reason))
                })
                .collect();
            (caption, rows)
        })
        .collect()
}

/// Bug 2: after narrowing, the caption counts what is still granted and the removed rows no
/// longer carry the provision that had permitted them.
async fn narrowed_captions_and_citations_follow_the_narrowed_rows(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    seed_alice(&api.app).await;
    let (_, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let mut alex = Browser::new(&api.app);
    alex.sign_in("alex", PASSWORD).await;
    let csrf = alex.session_csrf().await;
    let (status, _, _) = alex
        .post(
            &format!("/orders/{id}/narrow"),
            &[
                ("csrf", &csrf),
                ("keep", "subscriber.user_id"),
                ("reason", "proportionality"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page, _) = alex.get(&format!("/orders/{id}")).await;
    let tables = decision_tables(&page);
    let (caption, rows) = tables
        .iter()
        .find(|(c, _)| c.starts_with("subscriber:"))
        .expect("the subscriber category");
    let denied = rows.iter().filter(|r| r.1 == "deny").count();
    assert!(denied > 0, "{rows:?}");
    assert!(
        caption.contains(&format!("Granted for 1 of {}", rows.len())),
        "the caption counts the narrowed rows: {caption}"
    );
    for (field, status, reason) in rows {
        if reason.starts_with("Removed by a reviewer") {
            assert_eq!(status, "deny");
            assert!(
                !reason.contains("<cite>"),
                "{field} keeps a citation: {reason}"
            );
        }
    }
    for (caption, rows) in &tables {
        if rows
            .iter()
            .all(|r| r.1 == "deny" && r.2.starts_with("Removed by a reviewer"))
        {
            assert!(!caption.contains("Granted"), "{caption}");
            assert!(!caption.contains("<cite>"), "{caption}");
        }
    }
}

/// Bug 5: orders without a fixed deadline sort by their internal target (receipt plus the
/// configured hours), oldest receipt first, instead of sinking below every dated order.
async fn undated_orders_climb_the_queue_by_their_internal_target(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    let now = chrono::Utc::now();
    // (reference, days since receipt if undated)
    let plan = [
        ("Q-DATED", None),
        ("Q-UNDATED-RECENT", Some(1)),
        ("Q-UNDATED-OLD", Some(20)),
        ("Q-UNDATED-OLDER", Some(2)),
    ];
    for (reference, undated) in plan {
        let mut order: serde_json::Value = serde_json::from_str(ORDER).unwrap();
        order["reference"] = serde_json::json!(reference);
        let (status, created) =
            json_of(api.submit(PARIS, &submission(&order.to_string())).await).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        if let Some(days) = undated {
            let received = (now - chrono::Duration::days(days)).timestamp_micros();
            api.app
                .pool
                .run(move |conn| {
                    use diesel::prelude::*;
                    use writ::db::schema::orders;
                    diesel::update(orders::table.find(&id))
                        .set((
                            orders::deadline_at.eq(None::<i64>),
                            orders::received_at.eq(received),
                        ))
                        .execute(conn)
                        .map_err(writ::db::DbError::Query)
                })
                .await
                .unwrap();
        }
    }
    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let (status, queue, _) = rita.get("/orders").await;
    assert_eq!(status, StatusCode::OK);
    let at = |r: &str| {
        queue
            .find(&format!(">{r}<"))
            .unwrap_or_else(|| panic!("{r}: {queue}"))
    };
    // Default target 240 h: 20 days old is 10 days overdue; 2 and 1 days old are due in 8
    // and 9 days, before the dated order's ten days.
    let order: Vec<usize> = [
        "Q-UNDATED-OLD",
        "Q-UNDATED-OLDER",
        "Q-UNDATED-RECENT",
        "Q-DATED",
    ]
    .iter()
    .map(|r| at(r))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    assert!(queue.contains("internal target"), "{queue}");
}

/// Bug 6: a target with no match is not also "ambiguous" (an IPv4 address without a port that
/// matches nobody has nothing to choose between); one that matches several accounts is.
async fn the_matches_page_never_calls_a_missing_match_ambiguous(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    seed_alice(&api.app).await;
    let mut order: serde_json::Value = serde_json::from_str(ORDER).unwrap();
    order["targets"] = serde_json::json!([
        {"ip": {"address": "198.51.100.9", "timestamp": "2026-08-30T10:14:03+02:00", "time_zone": "Europe/Paris"}},
        {"ip": {"address": "203.0.113.7", "timestamp": "2026-08-30T10:14:03+02:00", "time_zone": "Europe/Paris"}}
    ]);
    let (status, created) = json_of(api.submit(PARIS, &submission(&order.to_string())).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let csrf = rita.session_csrf().await;
    let (status, mut page, location) = rita
        .post_follow(&format!("/orders/{id}/matches"), &[("csrf", &csrf)])
        .await;
    if status == StatusCode::SEE_OTHER {
        page = rita.get(&location.unwrap()).await.1;
    } else {
        assert_eq!(status, StatusCode::OK, "{page}");
    }
    let rows: Vec<&str> = page.split("<tr class=").skip(1).collect();
    assert_eq!(rows.len(), 2, "{page}");
    for row in &rows {
        assert!(
            !(row.contains("no match") && row.contains("Ambiguous")),
            "a row says both no match and ambiguous: {row}"
        );
    }
    assert!(rows.iter().any(|r| r.contains("no match")), "{page}");
    assert!(
        rows.iter()
            .any(|r| r.contains("Ambiguous") && r.contains("u-alice")),
        "two accounts on one address without a port stay ambiguous: {page}"
    );
}

/// The text of a page with askama's escapes undone, to compare with JSON strings.
fn unescaped(page: &str) -> String {
    page.replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Bug 7: what was only in the JSON is on the page: the gag and its end, the duties, the
/// earliest release date and the policy's open questions.
async fn the_order_page_shows_gag_duties_release_date_and_open_questions(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    let (status, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let decision = &created["decision"];
    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let (_, page, _) = rita.get(&format!("/orders/{id}")).await;
    let page = unescaped(&page);
    // The page without its "as data" disclosure, so the JSON there does not count.
    let visible = page
        .split("<details>")
        .map(|part| {
            part.split_once("</details>")
                .map_or(part, |(_, after)| after)
        })
        .collect::<String>();
    assert!(
        decision["gag"].is_object(),
        "the fixture carries a gag: {decision}"
    );
    assert!(
        visible.contains("the user must not be told") && visible.contains("open-ended"),
        "{visible}"
    );
    for duty in decision["duties"].as_array().unwrap() {
        assert!(
            visible.contains(duty["text"].as_str().unwrap()),
            "duty {duty} not shown"
        );
    }
    for caveat in decision["caveats"].as_array().unwrap() {
        assert!(
            visible.contains(caveat.as_str().unwrap()),
            "caveat {caveat} not shown"
        );
    }
    match decision["earliest_release"]["earliest"].as_str() {
        Some(t) => {
            let t = chrono::DateTime::parse_from_rfc3339(t)
                .unwrap()
                .with_timezone(&chrono::Utc);
            assert!(
                visible.contains(&t.format("%-d %b %Y, %H:%M UTC").to_string()),
                "earliest release {t} not shown"
            );
        }
        None => assert!(visible.contains("Earliest release</dt><dd>no waiting period")),
    }
    assert!(
        !decision["duties"].as_array().unwrap().is_empty()
            || !decision["caveats"].as_array().unwrap().is_empty(),
        "the fixture exercises duties or open questions: {decision}"
    );
}

/// Bug 8: GDPR Art 48 governs third-country orders; a French requisition to a provider
/// established in Ireland is voluntary, but the page must not cite Art 48 for it.
async fn a_member_states_order_never_cites_gdpr_article_48(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    let mut order: serde_json::Value = serde_json::from_str(ORDER).unwrap();
    order["reference"] = serde_json::json!("FR-REQ-1");
    order["instrument"] = serde_json::json!("fr.requisition");
    order["legal_provisions"] = serde_json::json!(["Code de procédure pénale art 77-1-1"]);
    order["procedural_framework"] = serde_json::json!("preliminary_inquiry");
    let (status, created) = json_of(api.submit(PARIS, &submission(&order.to_string())).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["decision"]["binding"]["binding"], false,
        "the requisition does not bind an Irish provider: {created}"
    );
    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let (_, page, _) = rita.get(&format!("/orders/{id}")).await;
    assert!(
        page.contains("Not binding on a provider established in IE"),
        "{page}"
    );
    assert!(!page.contains("Art 48"), "{page}");
}

/// Bug 9: under a running non-disclosure order the page says plainly not to tell the user,
/// offers no notice form, and a notice posted anyway is refused.
async fn the_user_notice_is_offered_and_accepted_only_where_allowed(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    let (status, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["decision"]["gag"].is_object(), "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let (_, page, _) = rita.get(&format!("/orders/{id}")).await;
    assert!(!page.contains("Record the notice"), "{page}");
    assert!(page.contains("Do not tell the user now"), "{page}");
    let csrf = rita.session_csrf().await;
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let (status, body, _) = rita
        .post(
            &format!("/orders/{id}/user-notified"),
            &[("csrf", &csrf), ("date", &today), ("channel", "email")],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("nothing was recorded"), "{body}");
}

/// Bug 10: with `mail.legal_team` empty, reminders go nowhere: the mail page and `/readyz`
/// say so; with an address set, neither does.
async fn an_empty_legal_team_is_warned_about(backend: Backend) {
    for (env, warned) in [
        (vec![], true),
        (
            vec![("WRIT_MAIL__LEGAL_TEAM", "legal@provider.example")],
            false,
        ),
    ] {
        let api = Api::start(backend, &env).await;
        add_users(&api.app).await;
        let mut rita = Browser::new(&api.app);
        rita.sign_in("rita", PASSWORD).await;
        let (status, page, _) = rita.get("/mail").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page.contains("mail.legal_team is empty"), warned, "{page}");
        let ready: serde_json::Value = api.app.get("/readyz").await.json().await.unwrap();
        let warnings = ready["warnings"].as_array().unwrap();
        assert_eq!(
            warnings
                .iter()
                .any(|w| w.as_str().unwrap().contains("mail.legal_team is empty")),
            warned,
            "{ready}"
        );
    }
}

/// Bug 11 (audit filter): the order filter of the audit page takes the reference people know,
/// not only the internal id, and shows the same entries.
async fn the_audit_filter_takes_a_reference(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    let (status, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let reference = created["reference"]
        .as_str()
        .unwrap_or("PR-2026-0042")
        .to_owned();
    let mut olga = Browser::new(&api.app);
    olga.sign_in("olga", PASSWORD).await;
    let count = |page: &str| {
        let at = page.find("<caption>").unwrap();
        page[at + 9..at + 9 + page[at + 9..].find(' ').unwrap()].to_owned()
    };
    let (_, by_id, _) = olga.get(&format!("/audit-log?order={id}")).await;
    let (status, by_reference, _) = olga.get(&format!("/audit-log?order={reference}")).await;
    assert_eq!(status, StatusCode::OK, "{by_reference}");
    assert_ne!(count(&by_id), "0", "{by_id}");
    assert_eq!(count(&by_reference), count(&by_id), "{by_reference}");
}
