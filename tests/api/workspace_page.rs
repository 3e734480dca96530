//! The order page a lawyer reads in one screen (issue 19): the order in brief beside the
//! decision and the actions, citations once per category, the order JSON only on demand and
//! every date in the viewer's time zone; over HTTP as a browser without JavaScript sees it.

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::Backend;
use crate::orders::{Api, ORDER, PARIS, PDF, json_of, submission};
use crate::workspace::{Browser, PASSWORD, add_users};
use crate::workspace_daily::unescape;

both_backends!(
    an_order_page_reads_in_one_screen,
    the_intake_form_asks_for_what_the_instrument_requires,
    a_valid_form_creates_the_same_order_as_the_json_path,
    each_missing_or_invalid_field_gets_its_own_message_beside_it,
    attachments_are_stored_and_downloaded_by_staff_only,
);

/// The registered name the test gives the sending authority (the order itself names another).
const REGISTERED_NAME: &str = "Procureur de la République près le tribunal judiciaire de Paris";

/// The element that starts with `open` (up to its `close`), or a panic naming it.
fn part<'a>(page: &'a str, open: &str, close: &str) -> &'a str {
    let start = page
        .find(open)
        .unwrap_or_else(|| panic!("no {open} in {page}"));
    let rest = &page[start..];
    &rest[..rest.find(close).unwrap_or(rest.len())]
}

/// The page's text as a reader sees it: without tags (so without attributes) and without the
/// contents of closed `<details>`.
fn visible_text(page: &str) -> String {
    let shown: String = page
        .split("<details>")
        .enumerate()
        .map(|(i, p)| {
            if i == 0 {
                p
            } else {
                // Keep the summary, drop what is behind it.
                p.split_once("</details>").map_or("", |(_, after)| after)
            }
        })
        .collect();
    let mut out = String::new();
    let mut in_tag = false;
    for c in shown.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Whether `text` holds a machine date (`2026-09-01`), as RFC 3339 or `%Y-%m-%d` writes it.
fn has_machine_date(text: &str) -> Option<String> {
    let b = text.as_bytes();
    (0..b.len().saturating_sub(9)).find_map(|i| {
        let w = &b[i..i + 10];
        let digits = |r: std::ops::Range<usize>| w[r].iter().all(u8::is_ascii_digit);
        (digits(0..4) && w[4] == b'-' && digits(5..7) && w[7] == b'-' && digits(8..10))
            .then(|| text[i.saturating_sub(40)..(i + 30).min(text.len())].to_owned())
    })
}

/// Every `<time datetime="..." title="...">text</time>` of a page: (title, text).
fn times(page: &str) -> Vec<(String, String)> {
    page.split("<time ")
        .skip(1)
        .map(|t| {
            let title = t.split("title=\"").nth(1).unwrap();
            let title = title[..title.find('"').unwrap()].to_owned();
            let text = &t[t.find('>').unwrap() + 1..t.find("</time>").unwrap()];
            (title, text.to_owned())
        })
        .collect()
}

/// The order page puts the order in brief (the issuer person and the authority by their names,
/// the sending authority by its registered name, the instrument by name, the offence, targets,
/// window, legal provisions, gag, receipt and deadline) beside the decision and the actions;
/// cites each legal basis once per category; shows the order JSON only on demand; and writes
/// every date in the viewer's time zone, with UTC on hover.
async fn an_order_page_reads_in_one_screen(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    api.app
        .pool
        .run(|conn| {
            use diesel::prelude::*;
            use writ::db::schema::authorities as a;
            diesel::update(a::table.find(PARIS.iss))
                .set(a::name.eq(REGISTERED_NAME))
                .execute(conn)
                .map_err(writ::db::DbError::Query)
        })
        .await
        .unwrap();
    let (status, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let decision = &created["decision"];

    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let csrf = rita.session_csrf().await;
    let (status, _, _) = rita
        .post(
            "/account/preferences",
            &[
                ("csrf", &csrf),
                ("email", "rita@provider.example"),
                ("time_zone", "Europe/Paris"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, page, _) = rita.get(&format!("/orders/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let page = unescape(&page);

    // One screen: the summary and, beside it, the decision and the actions.
    let overview = part(&page, "<div class=\"overview\">", "</div>\n\n");
    let summary = part(
        overview,
        "<section aria-labelledby=\"summary\"",
        "</section>",
    );
    let verdict = part(
        overview,
        "<section aria-labelledby=\"verdict\"",
        "</section>",
    );
    let instrument_name = decision["instrument_name"].as_str().unwrap();
    for needle in [
        REGISTERED_NAME,
        "M. Dupont, Parquet de Paris (FR)",
        "file P-123",
        instrument_name,
        "online fraud",
        "up to 60 months",
        "user name alice",
        "IP address 203.0.113.7, port 51234 at 30 Aug 2026, 10:14:03 (UTC+02:00), Europe/Paris",
        "1 Aug 2026, 02:00 CEST</time> to",
        "1 Sep 2026, 02:00 CEST</time>",
        "Regulation (EU) 2023/1543 Art 4(1)",
        "the user must not be told",
        "open-ended",
        "Received</dt>",
        "Deadline</dt>",
    ] {
        assert!(
            summary.contains(needle),
            "the summary lacks {needle}: {summary}"
        );
    }
    assert!(
        !summary.contains("<dd>fr-parquet-paris")
            && !summary.contains("Sent by</dt><dd class=\"sent-by\">fr-parquet-paris"),
        "the sender is named, not its id: {summary}"
    );
    let outcome = decision["outcome"].as_str().unwrap().replace('_', " ");
    assert!(
        verdict.contains(&format!(
            "The engine found the order <strong>{outcome}</strong>"
        )),
        "{verdict}"
    );
    for c in decision["categories"].as_array().unwrap() {
        assert!(
            verdict.contains(c["text"].as_str().unwrap()),
            "the verdict sums up {c}"
        );
    }
    for action in ["href=\"#actions\"", "href=\"#tasks\"", "href=\"#desk\""] {
        assert!(verdict.contains(action), "{action} missing: {verdict}");
    }
    // An approver finds the approval beside the decision too.
    let mut alex = Browser::new(&api.app);
    alex.sign_in("alex", PASSWORD).await;
    let (_, alex_page, _) = alex.get(&format!("/orders/{id}")).await;
    let alex_verdict = part(
        &alex_page,
        "<section aria-labelledby=\"verdict\"",
        "</section>",
    );
    assert!(
        alex_verdict.contains("Prepare and preview the package")
            || alex_verdict.contains("You cannot approve this order now"),
        "{alex_verdict}"
    );

    // Citations once per category, none per field.
    let mut tables = 0;
    for table in page.split("<table class=\"decision\">").skip(1) {
        tables += 1;
        let table = &table[..table.find("</table>").unwrap()];
        let (caption, body) = table.split_once("</caption>").unwrap();
        assert!(!body.contains("<cite>"), "a row carries a citation: {body}");
        let cites: Vec<&str> = caption
            .split("<cite>")
            .skip(1)
            .map(|c| &c[..c.find("</cite>").unwrap()])
            .collect();
        for (i, c) in cites.iter().enumerate() {
            assert!(!cites[..i].contains(c), "{c} cited twice: {caption}");
        }
    }
    assert_eq!(tables, decision["categories"].as_array().unwrap().len());
    // Every provision a field relied on is still named, in its category's caption.
    for c in decision["categories"].as_array().unwrap() {
        let caption = part(
            &page,
            &format!(
                "<caption>{}:",
                c["category"].as_str().unwrap().replace('_', " ")
            ),
            "</caption>",
        );
        for f in c["fields"].as_array().unwrap() {
            if let Some(cit) = f["citation"].as_str() {
                assert!(
                    caption.contains(&format!("<cite>{cit}</cite>")),
                    "{cit} missing from {caption}"
                );
            }
        }
    }

    // The order JSON only on demand.
    let json_line = "\"reference\": \"PR-2026-0042\"";
    assert!(page.contains(json_line), "the order JSON is offered");
    let shown = visible_text(&page);
    assert!(
        !shown.contains(json_line),
        "the order JSON is shown unasked"
    );
    assert!(!shown.contains("\"categories\""), "JSON shown unasked");

    // Every date readable, in the viewer's zone, with UTC on hover.
    assert_eq!(has_machine_date(&shown), None, "a machine date is shown");
    let times = times(&page);
    assert!(times.len() >= 5, "{times:?}");
    for (title, text) in &times {
        assert!(title.ends_with(" UTC"), "{title}");
        assert!(
            text.ends_with(" CET") || text.ends_with(" CEST"),
            "not in the viewer's zone: {text}"
        );
    }
    for (_, attr) in page
        .split("title=\"")
        .skip(1)
        .map(|t| ((), &t[..t.find('"').unwrap()]))
    {
        assert_eq!(has_machine_date(attr), None, "a raw date on hover: {attr}");
    }
}

/// A multipart/form-data body as a browser sends it: files (the document, attachments) with
/// their names, an empty file input as an empty part with an empty name.
fn multipart(fields: &[(String, Vec<u8>)], boundary: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let file = name == "document" || name.starts_with("attachment.");
        if file {
            let file_name = if name == "document" {
                "order.pdf".to_owned()
            } else if value.is_empty() {
                String::new()
            } else {
                format!("{}.txt", name.replace('.', "-"))
            };
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            );
        } else {
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

/// Posts the intake form as `who` (signed in): (status, body, location).
async fn enter(
    api: &Api,
    who: &Browser,
    fields: &[(&str, &[u8])],
) -> (StatusCode, String, Option<String>) {
    let fields: Vec<(String, Vec<u8>)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
        .collect();
    let resp = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/orders/new", api.app.address))
        .header("cookie", who.cookie_header())
        .header("content-type", "multipart/form-data; boundary=XyZzy")
        .body(multipart(&fields, "XyZzy"))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let to = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (status, resp.text().await.unwrap(), to)
}

/// The fixture order (`epoc-prosecutor.json`) as a person types it into the eu.epoc form.
fn fixture_fields(csrf: &str, received: &str) -> Vec<(&'static str, Vec<u8>)> {
    let text = |s: &str| s.as_bytes().to_vec();
    vec![
        ("csrf", text(csrf)),
        ("instrument", text("eu.epoc")),
        ("authority", text("fr-parquet-paris")),
        ("received_at", text(received)),
        ("reference", text("PR-2026-0042")),
        ("issuer.kind", text("prosecutor")),
        ("issuer.person", text("M. Dupont")),
        ("issuer.authority", text("Parquet de Paris")),
        ("issuer.country", text("FR")),
        ("issuer.file_number", text("P-123")),
        ("dates.issued_at", text("2026-09-01T06:00")),
        (
            "legal_provisions",
            text("Regulation (EU) 2023/1543 Art 4(1)\r\n"),
        ),
        (
            "addressee",
            text("Writ Ltd, legal representative in Ireland"),
        ),
        ("receiving_authority", text("Parquet de Paris")),
        ("offence.description", text("online fraud")),
        ("offence.max_custodial_months", text("60")),
        ("offence.codes", text("eu.dir_2019_713")),
        ("offence.over_network", text("yes")),
        ("non_disclosure.ends", text("open_ended")),
        (
            "targets",
            text(
                "username alice\r\nip 203.0.113.7 port 51234 at 2026-08-30T10:14:03+02:00 zone Europe/Paris",
            ),
        ),
        ("category.subscriber", text("yes")),
        ("category.identification", text("yes")),
        ("time_window.from", text("2026-08-01T00:00")),
        ("time_window.to", text("2026-09-01T00:00")),
        ("document", PDF.to_vec()),
        ("validation", Vec::new()),
    ]
}

fn as_refs<'a>(fields: &'a [(&'a str, Vec<u8>)]) -> Vec<(&'a str, &'a [u8])> {
    fields.iter().map(|(k, v)| (*k, v.as_slice())).collect()
}

/// The form of an instrument asks first for the elements that instrument requires (from the
/// policy's `required_elements`), and keeps the rest under "Other elements".
async fn the_intake_form_asks_for_what_the_instrument_requires(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let (status, page, _) = rita.get("/orders/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("value=\"eu.epoc\""),
        "the instruments are offered"
    );
    let required_of = |page: &str| {
        let start = page.find("<form method=\"post\"").unwrap();
        let end = page.find("Other elements the order states").unwrap();
        page[start..end].to_owned()
    };
    let (status, epoc, _) = rita.get("/orders/new?instrument=eu.epoc").await;
    assert_eq!(status, StatusCode::OK);
    let required = required_of(&epoc);
    for name in [
        "reference",
        "issuer.file_number",
        "addressee",
        "offence.description",
        "legal_provisions",
    ] {
        assert!(
            required.contains(&format!("name=\"{name}\"")),
            "eu.epoc requires {name}"
        );
    }
    assert!(!required.contains("name=\"procedural_framework\""));
    assert!(
        epoc.contains("name=\"procedural_framework\""),
        "optional fields stay offered"
    );
    let (status, fr_any, _) = rita.get("/orders/new?instrument=fr.requisition").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        required_of(&fr_any).contains("name=\"procedural_framework\""),
        "the French instrument requires the procedural framework"
    );
    assert!(!required_of(&fr_any).contains("name=\"addressee\""));
    assert_eq!(
        rita.get("/orders/new?instrument=xx.nothing").await.0,
        StatusCode::NOT_FOUND
    );
}

/// The id of the order a redirect points at.
fn order_id(to: Option<String>) -> String {
    to.expect("a redirect to the order")
        .trim_start_matches("/orders/")
        .to_owned()
}

/// The order JSON as stored (from the order page's on-demand block), parsed.
async fn stored_order(who: &mut Browser, id: &str) -> Value {
    let (_, page, _) = who.get(&format!("/orders/{id}")).await;
    let page = unescape(&page);
    let json = part(&page, "<pre class=\"order-json\">", "</pre>");
    serde_json::from_str(&json["<pre class=\"order-json\">".len()..]).unwrap()
}

/// The structured form and the raw JSON path, given the same order, store the same order and
/// reach the same decision.
async fn a_valid_form_creates_the_same_order_as_the_json_path(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let csrf = rita.session_csrf().await;
    let received = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let structured = fixture_fields(&csrf, &received);
    let (status, body, to) = enter(&api, &rita, &as_refs(&structured)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let from_form = order_id(to);
    let raw: Vec<(&str, Vec<u8>)> = vec![
        ("csrf", csrf.as_bytes().to_vec()),
        ("authority", b"fr-parquet-paris".to_vec()),
        ("received_at", received.as_bytes().to_vec()),
        ("order", ORDER.as_bytes().to_vec()),
        ("document", PDF.to_vec()),
        ("validation", Vec::new()),
    ];
    let (status, body, to) = enter(&api, &rita, &as_refs(&raw)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let from_json = order_id(to);
    assert_ne!(from_form, from_json);
    let fixture: Value = serde_json::from_str(ORDER).unwrap();
    assert_eq!(stored_order(&mut rita, &from_form).await, fixture);
    assert_eq!(stored_order(&mut rita, &from_json).await, fixture);
    let decision = |v: Value| {
        let mut d = v["decision"].clone();
        d.as_object_mut().unwrap().remove("decided_at");
        d
    };
    let (_, a) = json_of(
        api.send(PARIS, "GET", &format!("/api/v1/orders/{from_form}"), b"")
            .await,
    )
    .await;
    let (_, b) = json_of(
        api.send(PARIS, "GET", &format!("/api/v1/orders/{from_json}"), b"")
            .await,
    )
    .await;
    assert!(a["decision"].is_object(), "{a}");
    assert_eq!(decision(a.clone()), decision(b.clone()));
    assert_eq!(a["order_sha256"].is_string(), b["order_sha256"].is_string());
}

/// Every fault of a structured form is named beside its own field, all at once, with what the
/// person typed kept; nothing is stored.
async fn each_missing_or_invalid_field_gets_its_own_message_beside_it(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let csrf = rita.session_csrf().await;
    let mut fields = fixture_fields(&csrf, "2026-09-02T08:00");
    let set = |fields: &mut Vec<(&'static str, Vec<u8>)>, name: &str, value: &str| {
        fields.iter_mut().find(|(k, _)| *k == name).unwrap().1 = value.as_bytes().to_vec();
    };
    set(&mut fields, "reference", "");
    set(&mut fields, "issuer.person", "  ");
    set(&mut fields, "dates.issued_at", "yesterday");
    set(&mut fields, "offence.max_custodial_months", "sixty");
    set(
        &mut fields,
        "targets",
        "username alice\r\nemail alice@example.org",
    );
    set(&mut fields, "addressee", "");
    set(&mut fields, "time_window.to", "");
    set(&mut fields, "received_at", "2999-01-01T00:00");
    set(&mut fields, "document", "");
    fields.retain(|(k, _)| !k.starts_with("category."));
    let (status, page, _) = enter(&api, &rita, &as_refs(&fields)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    let page = unescape(&page);
    for (field, words) in [
        ("reference", "is required"),
        ("issuer.person", "is required"),
        ("dates.issued_at", "is not a date and time"),
        ("offence.max_custodial_months", "is not a whole number"),
        ("targets", "line 2"),
        ("addressee", "requires the addressee"),
        ("time_window.to", ""),
        ("categories", "tick at least one category"),
        ("received_at", "in the future"),
        ("document", "attach the signed order"),
    ] {
        // The message sits in the field's own block, right after its input.
        let id = format!("id=\"err-{field}\"");
        let at = page
            .find(&id)
            .unwrap_or_else(|| panic!("no message for {field}: {page}"));
        let block_start = page[..at].rfind("<div class=\"field").unwrap();
        let block = &page[block_start..at];
        assert!(
            block.contains(&format!("name=\"{field}\""))
                || (field == "categories" && block.contains("name=\"category.")),
            "the message for {field} is not beside it: {block}"
        );
        let message = &page[at..];
        let message = &message[message.find('>').unwrap() + 1..message.find("</p>").unwrap()];
        assert!(message.contains(words), "{field}: {message}");
        assert_eq!(page.matches(&id).count(), 1, "{field} has one message");
    }
    // What was typed is kept.
    for kept in [
        "value=\"Parquet de Paris\"",
        "value=\"P-123\"",
        "value=\"yesterday\"",
        "value=\"sixty\"",
        "email alice@example.org</textarea>",
        "<option value=\"prosecutor\" selected>",
    ] {
        assert!(page.contains(kept), "{kept} not kept");
    }
    // Nothing was stored.
    let (_, queue, _) = rita.get("/orders").await;
    assert!(!queue.contains("PR-2026-0042"), "an order was stored");
    // The form's CSRF token is checked like every other form's.
    let mut fields = fixture_fields("not-the-token", "2026-09-02T08:00");
    fields.push(("attachment.1", b"translation".to_vec()));
    let (status, _, _) = enter(&api, &rita, &as_refs(&fields)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, queue, _) = rita.get("/orders").await;
    assert!(
        !queue.contains("PR-2026-0042"),
        "an order was stored without CSRF"
    );
}

/// The order's PDF and several further papers are stored with it: listed on the order page,
/// downloadable by staff who may read orders (as attachments, sandboxed, audited), by no one
/// else.
async fn attachments_are_stored_and_downloaded_by_staff_only(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let csrf = rita.session_csrf().await;
    let mut fields = fixture_fields(&csrf, "2026-09-02T08:00");
    fields.push(("attachment.1", b"English translation of the order".to_vec()));
    fields.push(("attachment_label.1", b"English translation".to_vec()));
    fields.push(("attachment.2", Vec::new()));
    fields.push(("attachment_label.2", Vec::new()));
    fields.push(("attachment.3", b"%PDF-1.4 annex".to_vec()));
    fields.push(("attachment_label.3", b"Annex: the IP log extract".to_vec()));
    let (status, body, to) = enter(&api, &rita, &as_refs(&fields)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let id = order_id(to);
    let (_, page, _) = rita.get(&format!("/orders/{id}")).await;
    let links: Vec<&str> = page
        .split("href=\"")
        .skip(1)
        .map(|h| &h[..h.find('"').unwrap()])
        .filter(|h| h.contains("/attachments/"))
        .collect();
    assert_eq!(
        links,
        [
            format!("/orders/{id}/attachments/1"),
            format!("/orders/{id}/attachments/2")
        ],
        "two papers stored, the empty input ignored"
    );
    assert!(page.contains("English translation") && page.contains("Annex: the IP log extract"));
    let mut olga = Browser::new(&api.app);
    olga.sign_in("olga", PASSWORD).await;
    for (who, expected) in [
        (&mut rita, b"English translation of the order".as_slice()),
        (&mut olga, b"English translation of the order".as_slice()),
    ] {
        let resp = reqwest::Client::new()
            .get(format!("{}/orders/{id}/attachments/1", api.app.address))
            .header("cookie", who.cookie_header())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            resp.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment; filename=\"1-")
        );
        assert_eq!(resp.headers()["content-type"], "application/octet-stream");
        assert!(
            resp.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("sandbox")
        );
        assert_eq!(&resp.bytes().await.unwrap()[..], expected);
    }
    let (status, annex, _) = rita.get(&format!("/orders/{id}/attachments/2")).await;
    assert_eq!((status, annex.as_str()), (StatusCode::OK, "%PDF-1.4 annex"));
    assert_eq!(
        rita.get(&format!("/orders/{id}/attachments/3")).await.0,
        StatusCode::NOT_FOUND
    );
    // No one else: an administrator, someone signed out, an authority's API.
    let mut adam = Browser::new(&api.app);
    adam.sign_in("adam", PASSWORD).await;
    assert_eq!(
        adam.get(&format!("/orders/{id}/attachments/1")).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, _, to) = Browser::new(&api.app)
        .get(&format!("/orders/{id}/attachments/1"))
        .await;
    assert_eq!(
        (status, to.as_deref()),
        (StatusCode::SEE_OTHER, Some("/login"))
    );
    // Stored and viewed in the audit log, by hash.
    let leaves: Vec<String> = api
        .app
        .pool
        .run(|conn| {
            Ok::<_, writ::db::DbError>(
                writ::audit::log::entries(conn, 0, 10_000)
                    .unwrap()
                    .into_iter()
                    .map(|e| e.leaf)
                    .collect(),
            )
        })
        .await
        .unwrap();
    let stored: Vec<&String> = leaves
        .iter()
        .filter(|l| l.contains("order.attachments_stored"))
        .collect();
    assert_eq!(stored.len(), 1, "{leaves:?}");
    let sha = writ::digest::sha256_hex(b"English translation of the order");
    assert!(stored[0].contains(&sha), "{}", stored[0]);
    assert_eq!(
        leaves
            .iter()
            .filter(|l| l.contains("order.document_viewed") && l.contains(&sha))
            .count(),
        2,
        "each download audited"
    );
}
