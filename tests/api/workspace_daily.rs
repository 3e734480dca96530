//! The legal team's daily features of issue 19 (part B): recorded justifications, reply
//! templates, the dashboard, confirmations of destructive actions; over HTTP as a browser
//! without JavaScript uses them.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::Backend;
use crate::orders::{Api, ORDER, PARIS, POLICE_SIGNER, json_of, submission};
use crate::workspace::{Browser, PASSWORD, add_users, hash_in, seed_alice};

both_backends!(
    an_approval_that_needs_judgement_is_refused_without_a_recorded_justification,
    an_engine_refused_order_offers_no_package_and_its_refusal_is_prefilled,
    not_held_and_question_templates_are_sent_as_edited,
    a_release_with_no_records_is_answered_as_no_data_held,
    every_dashboard_figure_matches_a_count_of_what_was_seeded,
    a_user_notice_nothing_forbids_is_offered_and_recorded,
    destructive_actions_need_their_box_ticked_on_the_server,
);

/// A justification for tests whose orders carry check flags (HI-1 orders, for instance).
pub(crate) const JUSTIFICATION: &str =
    "Checked the flags against the signed order; the request is lawful and proportionate.";

/// A page's text with askama's HTML escapes undone (to find the engine's words in it).
pub(crate) fn unescape(page: &str) -> String {
    page.replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A French requisition by police with the prosecutor's authorisation claimed but not signed:
/// voluntary for a provider established in Ireland, and its validation only claimed.
pub(crate) fn requisition() -> Value {
    json!({
        "reference": "PV-2026-77",
        "instrument": "fr.requisition",
        "issuer": {"kind": "police", "person": "OPJ Martin", "authority": "Police judiciaire de Lyon", "country": "FR"},
        "validator": {"kind": "prosecutor", "person": "M. Dupont", "authority": "Parquet de Paris", "country": "FR", "file_number": "P-123"},
        "dates": {"issued_at": "2026-09-01T06:00:00Z", "validated_at": "2026-09-01T05:00:00Z"},
        "legal_provisions": ["CPP art 77-1-1"],
        "redress": "Chambre de l'instruction",
        "procedural_framework": "preliminary_inquiry",
        "purpose": {"kind": "crime"},
        "offence": {"description": "online fraud", "max_custodial_months": 60},
        "targets": [{"username": "alice"}],
        "categories": ["subscriber"]
    })
}

/// The audit log's leaves of `event` for `order`, read from the auditor's JSONL export (after
/// a checkpoint covering them is signed).
async fn leaves(api: &Api, olga: &mut Browser, order: &str, event: &str) -> Vec<Value> {
    assert_eq!(
        api.app.post_as_auditor("/audit/checkpoint").await.status(),
        StatusCode::OK
    );
    let (status, export, _) = olga.get("/audit/export?format=jsonl").await;
    assert_eq!(status, StatusCode::OK);
    export
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| v.get("leaf").cloned().unwrap_or(v))
        .filter(|v| v["event"] == event && v["order"] == order)
        .collect()
}

/// Issue 19, recorded justification: the claimed validation's check says how (the server
/// refuses it without a method and a note); the preview repeats every check flag; approval
/// without a justification is refused and records nothing; with one it is stored and its
/// hash audited in the approval's entry.
async fn an_approval_that_needs_judgement_is_refused_without_a_recorded_justification(
    backend: Backend,
) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    seed_alice(&api.app).await;
    let (status, created) = json_of(
        api.submit(POLICE_SIGNER, &submission(&requisition().to_string()))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let (_, page, _) = rita.get(&format!("/orders/{id}")).await;
    assert!(
        page.contains("name=\"method\" value=\"validator_called\""),
        "{page}"
    );
    let csrf = rita.session_csrf().await;
    let checked = format!("/orders/{id}/validation-checked");
    // No method; an unknown method; a note that says nothing: each refused, naming the field.
    for (form, field) in [
        (vec![("note", "Called the Parquet de Paris.")], "method"),
        (
            vec![
                ("method", "guessed"),
                ("note", "Called the Parquet de Paris."),
            ],
            "method",
        ),
        (vec![("method", "validator_called"), ("note", "ok")], "note"),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let (status, body, _) = rita.post(&checked, &form).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains(&format!("{field}:")), "{body}");
    }
    let note = "Called the Parquet de Paris on its listed number; file P-123 confirmed.";
    let (status, body, _) = rita
        .post(
            &checked,
            &[
                ("csrf", &csrf),
                ("method", "validator_called"),
                ("note", note),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");

    // The preview repeats every check flag, and asks why.
    let mut alex = Browser::new(&api.app);
    alex.sign_in("alex", PASSWORD).await;
    let csrf = alex.session_csrf().await;
    let (status, preview, _) = alex
        .post_follow(&format!("/orders/{id}/package"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    let flags = created["decision"]["review_flags"].as_array().unwrap();
    assert!(!flags.is_empty(), "{created}");
    for f in flags {
        let text = f["text"].as_str().unwrap();
        assert!(
            unescape(&preview).contains(text),
            "the preview omits the flag {text}: {preview}"
        );
    }
    assert!(preview.contains("voluntary disclosure"), "{preview}");
    assert!(preview.contains("claimed validation"), "{preview}");
    assert!(preview.contains("name=\"justification\""), "{preview}");
    let hash = hash_in(&preview);

    // Without a justification (or with one that says nothing): refused, nothing approved.
    for j in ["", "   ", "fine"] {
        let (status, body, _) = alex
            .post(
                &format!("/orders/{id}/approve"),
                &[
                    ("csrf", &csrf),
                    ("snapshot_sha256", &hash),
                    ("justification", j),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("justification:"), "{body}");
    }
    let (_, read) = json_of(
        api.send(POLICE_SIGNER, "GET", &format!("/api/v1/orders/{id}"), b"")
            .await,
    )
    .await;
    assert_eq!(read["status"], "under_review", "{read}");

    let why = "Fraud against minors; the prosecutor's authorisation was confirmed by phone, and Irish law permits voluntary disclosure here.";
    let (status, body, _) = alex
        .post(
            &format!("/orders/{id}/approve"),
            &[
                ("csrf", &csrf),
                ("snapshot_sha256", &hash),
                ("justification", why),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (_, page, _) = alex.get(&format!("/orders/{id}")).await;
    assert!(page.contains("Recorded justifications"), "{page}");
    assert!(page.contains("file P-123 confirmed"), "{page}");
    assert!(unescape(&page).contains(why), "{page}");

    // The audit entries carry the stored texts' hashes and how the validation was checked.
    let mut olga = Browser::new(&api.app);
    olga.sign_in("olga", PASSWORD).await;
    let approved = leaves(&api, &mut olga, &id, "order.approved").await;
    assert_eq!(approved.len(), 1, "{approved:?}");
    let refs = &approved[0]["refs"];
    assert_eq!(
        refs["justification_sha256"],
        writ::digest::sha256_hex(why.as_bytes()),
        "{refs}"
    );
    let points = refs["judgement_points"].as_str().unwrap();
    assert!(
        points.contains("voluntary_disclosure") && points.contains("claimed_validation"),
        "{points}"
    );
    let checked = leaves(&api, &mut olga, &id, "order.validation_checked").await;
    assert_eq!(checked.len(), 1);
    assert_eq!(checked[0]["refs"]["method"], "validator_called");
    assert_eq!(
        checked[0]["refs"]["justification_sha256"],
        writ::digest::sha256_hex(note.as_bytes())
    );
}

/// The text of the `<textarea id="ID">` of a page, unescaped.
fn textarea(page: &str, id: &str) -> String {
    let at = page
        .find(&format!("<textarea id=\"{id}\""))
        .unwrap_or_else(|| panic!("no textarea {id}: {page}"));
    let rest = &page[at..];
    let rest = &rest[rest.find('>').unwrap() + 1..];
    unescape(&rest[..rest.find("</textarea>").unwrap()])
}

/// Sends the queued mail to the file outbox and returns every message written.
async fn sent_mail(api: &Api) -> Vec<String> {
    let mail = api.app.db.settings(&[]).mail;
    let outbox = mail.outbox_dir.clone();
    api.app
        .pool
        .run(move |conn| writ::mail::send_due(conn, &mail, chrono::Utc::now()))
        .await
        .unwrap();
    std::fs::read_dir(&outbox)
        .map(|d| {
            // Undo quoted-printable soft line breaks.
            d.map(|e| {
                std::fs::read_to_string(e.unwrap().path())
                    .unwrap()
                    .replace("=\r\n", "")
                    .replace("=\n", "")
                    .replace("=3D", "=")
            })
            .collect()
        })
        .unwrap_or_default()
}

/// Issue 19 bug 4 (the gap left last time): on an order the engine refused, an approver is
/// not offered the package, a POST for it anyway is refused on a page with the layout and a
/// way back; the refusal form comes pre-filled with the engine's reasons, and is sent as
/// edited.
async fn an_engine_refused_order_offers_no_package_and_its_refusal_is_prefilled(backend: Backend) {
    let api = Api::start(backend, &[("WRIT_API__JOBS_INTERVAL_SECS", "3600")]).await;
    add_users(&api.app).await;
    let mut alone = requisition();
    alone.as_object_mut().unwrap().remove("validator");
    let (status, created) = json_of(
        api.submit(POLICE_SIGNER, &submission(&alone.to_string()))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["decision"]["outcome"], "refused", "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let reasons: Vec<String> = created["decision"]["refusals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(!reasons.is_empty());

    let mut alex = Browser::new(&api.app);
    alex.sign_in("alex", PASSWORD).await;
    let (_, page, _) = alex.get(&format!("/orders/{id}")).await;
    assert!(!page.contains("Prepare and preview the package"), "{page}");
    assert!(page.contains("You cannot approve this order now"), "{page}");
    let prefilled = textarea(&page, "reason");
    for r in &reasons {
        assert!(prefilled.contains(r.as_str()), "{r} not in {prefilled}");
    }
    let csrf = alex.session_csrf().await;
    let (status, body, _) = alex
        .post(&format!("/orders/{id}/package"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("the decision refuses the order"), "{body}");
    assert!(
        body.contains("<nav aria-label=\"Main\">") && body.contains("Back to your start page"),
        "{body}"
    );

    let edited = format!("{prefilled}\nWe remain available for a corrected order.");
    let (status, body, _) = alex
        .post(
            &format!("/orders/{id}/refuse"),
            &[("csrf", &csrf), ("text", &edited), ("confirm", "yes")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (_, read) = json_of(
        api.send(POLICE_SIGNER, "GET", &format!("/api/v1/orders/{id}"), b"")
            .await,
    )
    .await;
    assert_eq!(read["status"], "refused", "{read}");
    let mails = sent_mail(&api).await;
    let refusal = mails
        .iter()
        .find(|m| m.contains("cannot be complied with"))
        .expect("the refusal mail");
    assert!(refusal.contains("We remain available for a corrected order."));
    assert!(refusal.contains(reasons[0].split_whitespace().next().unwrap()));
}

/// Issue 19, reply templates: "data not held" (Annex III on an EU order) and the standard
/// questions are offered pre-filled; what is sent is what the person edited; the not-held
/// answer closes the order as its own audit event and mail, not as a refusal.
async fn not_held_and_question_templates_are_sent_as_edited(backend: Backend) {
    let api = Api::start(backend, &[("WRIT_API__JOBS_INTERVAL_SECS", "3600")]).await;
    add_users(&api.app).await;
    let (_, first) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    let first = first["id"].as_str().unwrap().to_owned();
    let mut second: Value = serde_json::from_str(ORDER).unwrap();
    second["reference"] = json!("PR-2026-0043");
    let (_, second) = json_of(api.submit(PARIS, &submission(&second.to_string())).await).await;
    let second = second["id"].as_str().unwrap().to_owned();

    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let (_, page, _) = rita.get(&format!("/orders/{first}")).await;
    let not_held = textarea(&page, "not-held");
    assert!(not_held.starts_with("Annex III"), "{not_held}");
    assert!(not_held.contains("PR-2026-0042"), "{not_held}");
    let question = textarea(&page, "q-time_zone");
    assert!(question.contains("time zone"), "{question}");

    let csrf = rita.session_csrf().await;
    let (status, body, _) = rita
        .post(
            &format!("/orders/{first}/refuse"),
            &[
                ("csrf", &csrf),
                ("text", "x"),
                ("reply", "maybe"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("reply:"), "{body}");

    let edited = format!("{not_held} Checked on 7 December by the legal team.");
    let (status, body, _) = rita
        .post(
            &format!("/orders/{first}/refuse"),
            &[
                ("csrf", &csrf),
                ("text", &edited),
                ("reply", "not_held"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (_, page, _) = rita.get(&format!("/orders/{first}")).await;
    assert!(page.contains("order.answered_not_held"), "{page}");
    assert!(!page.contains("order.refused"), "{page}");

    let asked = format!("{question} (Your order states 08:00.)");
    let (status, body, _) = rita
        .post(
            &format!("/orders/{second}/ask"),
            &[("csrf", &csrf), ("text", &asked)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (_, read) = json_of(
        api.send(
            PARIS,
            "GET",
            &format!("/api/v1/orders/{second}/messages"),
            b"",
        )
        .await,
    )
    .await;
    assert!(
        read.to_string().contains("(Your order states 08:00.)"),
        "{read}"
    );

    let mails = sent_mail(&api).await;
    let answer = mails
        .iter()
        .find(|m| m.contains("No data held for your order PR-2026-0042"))
        .unwrap_or_else(|| panic!("no not-held mail in {mails:?}"));
    assert!(answer.contains("Checked on 7 December by the legal team."));
    assert!(!mails.iter().any(|m| m.contains("cannot be complied with")));
}

/// Issue 19: an approved package with no records is answered as "no data held", not
/// "response ready", and the answer is in the audit log.
async fn a_release_with_no_records_is_answered_as_no_data_held(backend: Backend) {
    let api = Api::start(backend, &[("WRIT_API__JOBS_INTERVAL_SECS", "3600")]).await;
    add_users(&api.app).await;
    // No metadata seeded: nothing matches the order's targets.
    let (_, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    let id = created["id"].as_str().unwrap().to_owned();
    crate::access::release(&api.app, &id).await;
    let mails = sent_mail(&api).await;
    assert!(
        mails
            .iter()
            .any(|m| m.contains("No data held for your order PR-2026-0042")),
        "{mails:?}"
    );
    assert!(
        !mails.iter().any(|m| m.contains("Response ready")),
        "{mails:?}"
    );
    let mut olga = Browser::new(&api.app);
    olga.sign_in("olga", PASSWORD).await;
    let answered = leaves(&api, &mut olga, &id, "order.answered_not_held").await;
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(answered[0]["refs"]["released_empty"], true);
}

/// The `data-label`/`data-value` pairs of the chart whose section carries `aria-label=title`.
fn chart(page: &str, title: &str) -> Vec<(String, u64)> {
    let start = page
        .find(&format!("<section class=\"chart\" aria-label=\"{title}\">"))
        .unwrap_or_else(|| panic!("no chart {title}"));
    let section = &page[start..];
    let section = &section[..section.find("</section>").unwrap()];
    section
        .split("data-label=\"")
        .skip(1)
        .map(|part| {
            let label = unescape(&part[..part.find('"').unwrap()]);
            let v = &part[part.find("data-value=\"").unwrap() + 12..];
            (label, v[..v.find('"').unwrap()].parse().unwrap())
        })
        .collect()
}

/// The number in `<dd id="ID">`.
fn tile(page: &str, id: &str) -> u64 {
    let at = page.find(&format!("<dd id=\"{id}\">")).unwrap() + id.len() + 10;
    let rest = &page[at..];
    rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap()]
        .parse()
        .unwrap()
}

/// Issue 19, dashboard: seeds orders of two instruments from three authorities, ends them in
/// each way (released, narrowed and released, refused, not held), leaves some open (one made
/// overdue, one due later today, one emergency), and checks every figure on the page against
/// counts made here from what was seeded.
async fn every_dashboard_figure_matches_a_count_of_what_was_seeded(backend: Backend) {
    use crate::orders::JUDGE_SIGNER;
    let api = Api::start(backend, &[("WRIT_API__JOBS_INTERVAL_SECS", "3600")]).await;
    add_users(&api.app).await;
    seed_alice(&api.app).await;
    let epoc = |reference: &str, emergency: bool| {
        let mut o: Value = serde_json::from_str(ORDER).unwrap();
        o["reference"] = json!(reference);
        if emergency {
            o["emergency"] = json!({"justification": "A child is missing."});
        }
        o.to_string()
    };
    // (signer, order, authority id, instrument)
    let mut seeded = Vec::new();
    for (signer, order) in [
        (PARIS, epoc("D-1", false)),
        (PARIS, epoc("D-2", false)),
        (PARIS, epoc("D-3", false)),
        (PARIS, epoc("D-4", true)),
        (JUDGE_SIGNER, epoc("D-5", false)),
        (JUDGE_SIGNER, epoc("D-6", false)),
        (POLICE_SIGNER, {
            let mut r = requisition();
            r.as_object_mut().unwrap().remove("validator");
            r.to_string()
        }),
        (POLICE_SIGNER, requisition().to_string()),
    ] {
        let (status, created) = json_of(api.submit(signer, &submission(&order)).await).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        seeded.push((signer, created));
    }
    let id = |i: usize| seeded[i].1["id"].as_str().unwrap().to_owned();
    let mut alex = Browser::new(&api.app);
    alex.sign_in("alex", PASSWORD).await;
    let csrf = alex.session_csrf().await;
    // D-1 released as decided; D-2 narrowed, then released; D-3 not held; the engine-refused
    // requisition refused.
    crate::access::release(&api.app, &id(0)).await;
    let (status, _, _) = alex
        .post(
            &format!("/orders/{}/narrow", id(1)),
            &[
                ("csrf", &csrf),
                ("keep", "subscriber.user_id"),
                ("reason", "proportionality"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    crate::access::release(&api.app, &id(1)).await;
    for (i, reply) in [(2, "not_held"), (6, "refusal")] {
        let (status, body, _) = alex
            .post(
                &format!("/orders/{}/refuse", id(i)),
                &[
                    ("csrf", &csrf),
                    ("text", "As the template says."),
                    ("reply", reply),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    }
    // D-5 overdue, D-6 due later today (set in the table: the engine gives days).
    let now = chrono::Utc::now();
    let end_of_day = (now + chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let later_today = now + (end_of_day - now) / 2;
    let (overdue_id, today_id) = (id(4), id(5));
    let (past, soon) = (
        (now - chrono::Duration::hours(1)).timestamp_micros(),
        later_today.timestamp_micros(),
    );
    api.app
        .pool
        .run(move |conn| {
            use diesel::prelude::*;
            use writ::db::schema::orders;
            diesel::update(orders::table.find(&overdue_id))
                .set(orders::deadline_at.eq(Some(past)))
                .execute(conn)?;
            diesel::update(orders::table.find(&today_id))
                .set(orders::deadline_at.eq(Some(soon)))
                .execute(conn)?;
            Ok::<_, writ::db::DbError>(())
        })
        .await
        .unwrap();

    // The counts, made here from what was seeded and done.
    let total = seeded.len() as u64;
    let ended = [0usize, 1, 2, 6];
    let open: Vec<usize> = (0..seeded.len()).filter(|i| !ended.contains(i)).collect();
    let open_deadlines: Vec<Option<chrono::DateTime<chrono::Utc>>> = open
        .iter()
        .map(|&i| match i {
            4 => Some(now - chrono::Duration::hours(1)),
            5 => Some(later_today),
            _ => seeded[i].1["deadline_at"]
                .as_str()
                .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap().to_utc()),
        })
        .collect();
    let overdue = open_deadlines
        .iter()
        .filter(|d| d.is_some_and(|d| d < now))
        .count() as u64;
    let due_today = open_deadlines
        .iter()
        .filter(|d| d.is_some_and(|d| d >= now && d < end_of_day))
        .count() as u64;
    let emergency = seeded
        .iter()
        .filter(|(_, c)| c["emergency"] == true)
        .count() as u64;
    let mut by_authority = std::collections::HashMap::new();
    let mut by_instrument = std::collections::HashMap::new();
    for (signer, c) in &seeded {
        *by_authority.entry(signer.iss.to_owned()).or_insert(0u64) += 1;
        *by_instrument
            .entry(c["instrument"].as_str().unwrap().to_owned())
            .or_insert(0u64) += 1;
    }

    let (status, page, _) = alex.get("/dashboard").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(!page.contains("<script"), "no JavaScript");
    assert_eq!(tile(&page, "total"), total);
    assert_eq!(tile(&page, "open"), open.len() as u64);
    assert_eq!(tile(&page, "overdue"), overdue);
    assert!(overdue >= 1 && due_today >= 1, "{overdue} {due_today}");
    assert_eq!(tile(&page, "due-today"), due_today);
    assert_eq!(tile(&page, "emergency"), emergency);
    assert_eq!(emergency, 1);
    let outcomes: std::collections::HashMap<String, u64> =
        chart(&page, "Outcomes").into_iter().collect();
    assert_eq!(outcomes["released"], 1, "{outcomes:?}");
    assert_eq!(outcomes["released, narrowed"], 1, "{outcomes:?}");
    assert_eq!(outcomes["refused"], 1, "{outcomes:?}");
    assert_eq!(outcomes["not held"], 1, "{outcomes:?}");
    let shown: std::collections::HashMap<String, u64> =
        chart(&page, "By authority").into_iter().collect();
    assert_eq!(shown, by_authority);
    let shown: std::collections::HashMap<String, u64> =
        chart(&page, "By instrument").into_iter().collect();
    assert_eq!(shown, by_instrument);
    assert_eq!(
        chart(&page, "By country of the authority"),
        [("FR".to_owned(), total)]
    );
    // Every order was received this week: the last week's bar holds them all.
    let weeks: Vec<u64> = page
        .split("<g class=\"bar\" data-label=\"")
        .skip(1)
        .take(12)
        .map(|p| {
            let v = &p[p.find("data-value=\"").unwrap() + 12..];
            v[..v.find('"').unwrap()].parse().unwrap()
        })
        .collect();
    assert_eq!(weeks.len(), 12);
    assert_eq!(weeks[11], total, "{weeks:?}");
    assert_eq!(weeks.iter().sum::<u64>(), total);
    // Time to respond: three EPOCs answered, one requisition; none late.
    let row = |instrument: &str| {
        let at = page
            .find(&format!("<tr data-instrument=\"{instrument}\">"))
            .unwrap_or_else(|| panic!("no row {instrument}"));
        let row = &page[at..];
        let row = &row[..row.find("</tr>").unwrap()];
        row.split("<td>")
            .skip(1)
            .map(|c| c[..c.find("</td>").unwrap()].to_owned())
            .collect::<Vec<_>>()
    };
    let epoc_row = row("eu.epoc");
    assert_eq!(epoc_row[1], "3", "{epoc_row:?}");
    assert_eq!(epoc_row[3], "0", "{epoc_row:?}");
    let req_row = row("fr.requisition");
    assert_eq!(req_row[1], "1", "{req_row:?}");
    // A reviewer sees it too; an admin does not.
    let mut adam = Browser::new(&api.app);
    adam.sign_in("adam", PASSWORD).await;
    assert_eq!(adam.get("/dashboard").await.0, StatusCode::FORBIDDEN);
}

/// Issue 19 bug 9, the positive case (the gap left last time): an order without a
/// non-disclosure order, whose rules let the provider tell the user, offers the notice form;
/// the notice is accepted, recorded with its date and channel, and audited.
async fn a_user_notice_nothing_forbids_is_offered_and_recorded(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    // A US subpoena without a non-disclosure order: the provider may tell the customer.
    crate::legal::register_fbi(&api).await;
    let order = json!({
        "reference": "SUB-2026-1",
        "instrument": "us.subpoena",
        "issuer": {"kind": "police", "person": "SA Smith", "authority": "FBI New York", "country": "US"},
        "dates": {"issued_at": "2026-09-01T06:00:00Z"},
        "statutory_basis": {"kind": "administrative_subpoena", "statute": "21 U.S.C. 876"},
        "targets": [{"username": "alice"}],
        "categories": ["subscriber"]
    });
    let (status, created) = json_of(
        api.submit(crate::legal::FBI, &submission(&order.to_string()))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["decision"]["gag"].is_null(), "{created}");
    assert!(
        !created["decision"]["user_notice"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{created}"
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let (_, page, _) = rita.get(&format!("/orders/{id}")).await;
    assert!(page.contains("Record the notice"), "{page}");
    assert!(!page.contains("Do not tell the user now"), "{page}");
    let csrf = rita.session_csrf().await;
    let (status, body, _) = rita
        .post(
            &format!("/orders/{id}/user-notified"),
            &[
                ("csrf", &csrf),
                ("date", "2026-12-01"),
                ("channel", "in_app"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (_, page, _) = rita.get(&format!("/orders/{id}")).await;
    assert!(page.contains("Told on 1 Dec 2026 by in app."), "{page}");
    assert!(page.contains("order.user_notified"), "{page}");
    assert!(!page.contains("Record the notice"), "{page}");
}

/// Issue 19, confirmations: refusing, releasing a hold, revoking a key, suspending an
/// authority and disabling a user each need the confirmation box ticked, checked on the
/// server (no JavaScript): without it the answer is 422 naming `confirm` and nothing changes;
/// with it the action happens. The forms carry the box, and the role picker has no default.
async fn destructive_actions_need_their_box_ticked_on_the_server(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    let (_, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    let order = created["id"].as_str().unwrap().to_owned();
    let mut pr: Value = serde_json::from_str(ORDER).unwrap();
    pr["reference"] = json!("PR-2026-PRESERVE");
    pr["instrument"] = json!("eu.epoc_pr");
    pr["validator"] = json!({"kind": "judge", "person": "Mme J", "authority": "JLD Paris", "country": "FR", "file_number": "JLD-1"});
    pr["emergency"] = json!({"justification": "Data at risk of deletion."});
    pr["targets"] = json!([{"username": "alice"}]);
    let (status, held) = json_of(api.submit(PARIS, &submission(&pr.to_string())).await).await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    let held = held["id"].as_str().unwrap().to_owned();

    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let (_, page, _) = rita.get(&format!("/orders/{held}")).await;
    assert!(
        page.contains("name=\"confirm\" value=\"yes\" required"),
        "{page}"
    );
    let csrf = rita.session_csrf().await;
    let mut adam = Browser::new(&api.app);
    adam.sign_in("adam", PASSWORD).await;
    let admin_csrf = adam.session_csrf().await;
    let (_, users, _) = adam.get("/admin/users").await;
    assert!(
        users.contains("<option value=\"\" selected disabled>Choose a role</option>"),
        "{users}"
    );
    assert!(users.contains("name=\"confirm\""), "{users}");
    let (_, registry, _) = adam.get("/admin/registry").await;
    assert!(
        registry.matches("name=\"confirm\"").count() >= 2,
        "{registry}"
    );

    let refuse = format!("/orders/{order}/refuse");
    let release = format!("/orders/{held}/hold/release");
    let revoke = format!("/admin/registry/keys/{}/revoke", PARIS.kid);
    let suspend = format!("/admin/registry/{}/status", POLICE_SIGNER.iss);
    // (browser, path, form without the box)
    let reason = ("text", "Cannot comply: no such user.");
    for (admin, path, form) in [
        (false, refuse.as_str(), vec![reason]),
        (false, release.as_str(), vec![]),
        (true, revoke.as_str(), vec![]),
        (true, suspend.as_str(), vec![]),
        (true, "/admin/users/bea/disable", vec![]),
    ] {
        let (b, csrf) = if admin {
            (&mut adam, admin_csrf.as_str())
        } else {
            (&mut rita, csrf.as_str())
        };
        let mut form = form;
        form.push(("csrf", csrf));
        for unticked in [None, Some("no")] {
            let mut f = form.clone();
            if let Some(v) = unticked {
                f.push(("confirm", v));
            }
            let (status, body, _) = b.post(path, &f).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
            assert!(
                body.contains("confirm:") && body.contains("nothing was changed"),
                "{body}"
            );
        }
        // Nothing changed yet: checked below after the ticked run of each.
        form.push(("confirm", "yes"));
        let (status, body, _) = b.post(path, &form).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}: {body}");
    }
    let (_, page, _) = rita.get(&format!("/orders/{order}")).await;
    assert!(page.contains("s-refused"), "{page}");
    let (_, page, _) = rita.get(&format!("/orders/{held}")).await;
    assert!(page.contains("order.hold_released"), "{page}");
    // The revoked key no longer authenticates; the suspended authority is refused; bea is out.
    assert_eq!(
        api.send(PARIS, "GET", &format!("/api/v1/orders/{order}"), b"")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let (_, registry, _) = adam.get("/admin/registry").await;
    assert!(
        registry.contains("(revoked)") && registry.contains("suspended"),
        "{registry}"
    );
    let mut bea = Browser::new(&api.app);
    assert_ne!(bea.sign_in("bea", PASSWORD).await, StatusCode::SEE_OTHER);
}
