//! The workspace in a real browser: headless Chromium driven over WebDriver, with real typing
//! and clicks. Run only when `WRIT_TEST_CHROMEDRIVER` names the chromedriver binary (Debian:
//! `apt-get install chromium chromium-driver`, then `/usr/bin/chromedriver`); SQLite only.
//! Screenshots of the key pages land in `target/screenshots/`.

mod webdriver;

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::Backend;
use crate::orders::{Api, ORDER, PARIS, POLICE_SIGNER, json_of, submission};
use crate::workspace::{PASSWORD, add_users, seed_alice};
use webdriver::{Browser, ENTER, Result, SHIFT, TAB};

/// The chromedriver binary, if the browser tests are to run.
fn chromedriver() -> Option<PathBuf> {
    std::env::var_os("WRIT_TEST_CHROMEDRIVER")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

/// `target/screenshots/<name>.png`, creating the folder.
fn screenshot_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("target/screenshots");
    dir.join(format!("{name}.png"))
}

/// Generates a test per scenario `async fn name(&Browser, &Api) -> Result<()>`: it starts Writ
/// (SQLite) and a browser, runs the scenario, and on a WebDriver error saves a screenshot of
/// where it stopped (`target/screenshots/failed-<name>.png`).
macro_rules! browser_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(driver) = chromedriver() else {
                eprintln!("WRIT_TEST_CHROMEDRIVER is not set: browser test not run");
                return;
            };
            let api = Api::start(Backend::Sqlite, &[]).await;
            let browser = Browser::start(&driver).await.unwrap_or_else(|e| panic!("{e}"));
            let outcome = scenarios::$name(&browser, &api).await;
            if let Err(e) = outcome {
                let shot = screenshot_path(concat!("failed-", stringify!($name)));
                let _ = browser.screenshot(&shot).await;
                panic!("{e} (screenshot: {})", shot.display());
            }
            browser.quit().await.unwrap_or_else(|e| panic!("{e}"));
        }
    )*};
}

browser_tests!(
    two_approvers_release_by_clicking_and_the_package_verifies,
    the_auditor_sees_the_release_and_downloads_the_export,
    a_reviewer_has_no_approval_and_no_admin_and_sign_in_works_by_keyboard,
    a_day_at_the_desk_from_search_to_dashboard,
);

/// Submits the usual order over the signed API; answers its id.
async fn submit_order(api: &Api) -> String {
    let (status, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

/// Types the user name and password and clicks "Sign in"; waits to leave the sign-in page.
async fn sign_in(b: &Browser, api: &Api, user: &str, shot: Option<&str>) -> Result<()> {
    b.goto(&format!("{}/login", api.app.address)).await?;
    assert_eq!(b.title().await?, "Sign in · Writ");
    if let Some(name) = shot {
        b.screenshot_full_page(&screenshot_path(name)).await?;
    }
    b.send_keys(&b.find("#username").await?, user).await?;
    b.send_keys(&b.find("#password").await?, PASSWORD).await?;
    b.click(&b.find_by_text("button", "Sign in").await?).await?;
    b.wait_for_url("to leave /login", |u| !u.ends_with("/login"))
        .await?;
    Ok(())
}

/// Clicks "Sign out" in the header; waits for the sign-in page.
async fn sign_out(b: &Browser) -> Result<()> {
    b.click(&b.find_by_text("header button", "Sign out").await?)
        .await?;
    b.wait_for_url("the sign-in page", |u| u.ends_with("/login"))
        .await?;
    Ok(())
}

/// Clicks "Queue" in the header, then the order's reference; answers the order page's text.
async fn open_order(b: &Browser, id: &str, shots: Option<(&str, &str)>) -> Result<String> {
    b.click(&b.find_by_text("header nav a", "Queue").await?)
        .await?;
    b.wait_for_url("the queue", |u| u.ends_with("/orders"))
        .await?;
    let queue = b.text(&b.find("table.queue").await?).await?;
    assert!(
        queue.contains("PR-2026-0042") && queue.contains("fr-parquet-paris"),
        "{queue}"
    );
    if let Some((queue_shot, _)) = shots {
        b.screenshot_full_page(&screenshot_path(queue_shot)).await?;
    }
    b.click(&b.find_by_text("table.queue a", "PR-2026-0042").await?)
        .await?;
    b.wait_for_url("the order page", |u| u.ends_with(&format!("/orders/{id}")))
        .await?;
    assert_eq!(b.text(&b.find("h1").await?).await?, "Order PR-2026-0042");
    if let Some((_, order_shot)) = shots {
        b.screenshot_full_page(&screenshot_path(order_shot)).await?;
    }
    b.text(&b.find("main").await?).await
}

/// The column headers of each records table of the package preview.
async fn preview_columns(b: &Browser) -> Result<Vec<Vec<String>>> {
    let mut tables = Vec::new();
    for table in b.find_all("table.records").await? {
        let mut columns = Vec::new();
        for th in b.find_all_in(&table, "thead th").await? {
            // As rendered: the stylesheet upper-cases headers.
            columns.push(b.text(&th).await?.to_lowercase());
        }
        tables.push(columns);
    }
    Ok(tables)
}

/// From the order page: "Prepare and preview the package", check the preview, "Approve this
/// package"; back on the order page. Answers the preview's columns per table.
async fn preview_and_approve(
    b: &Browser,
    id: &str,
    approved_before: &str,
    shot: Option<&str>,
) -> Result<Vec<Vec<String>>> {
    b.click(
        &b.find_by_text("button", "Prepare and preview the package")
            .await?,
    )
    .await?;
    b.wait_for_url("the package preview", |u| {
        u.ends_with(&format!("/orders/{id}/package"))
    })
    .await?;
    assert_eq!(
        b.text(&b.find("h1").await?).await?,
        "Disclosure package for PR-2026-0042"
    );
    let mut records = String::new();
    for table in b.find_all("table.records").await? {
        records.push_str(&b.text(&table).await?);
    }
    assert!(
        records.contains("u-alice") && records.contains("51234"),
        "{records}"
    );
    assert!(
        !records.contains("u-bob"),
        "bob used another port: {records}"
    );
    let facts = b.text(&b.find("dl.facts").await?).await?;
    assert!(facts.contains(approved_before), "{facts}");
    let columns = preview_columns(b).await?;
    if let Some(name) = shot {
        b.screenshot_full_page(&screenshot_path(name)).await?;
    }
    b.click(&b.find_by_text("button", "Approve this package").await?)
        .await?;
    b.wait_for_url("the order page", |u| u.ends_with(&format!("/orders/{id}")))
        .await?;
    Ok(columns)
}

/// The order page's status, as shown.
async fn shown_status(b: &Browser) -> Result<String> {
    b.text(&b.find("dl.facts .status").await?).await
}

/// alex and bea each sign in, preview and approve, in the same browser; answers the preview's
/// columns.
async fn release_by_clicking(
    b: &Browser,
    api: &Api,
    id: &str,
    shots: bool,
) -> Result<Vec<Vec<String>>> {
    let shot = |name| shots.then_some(name);
    sign_in(b, api, "alex", shot("sign-in")).await?;
    let page = open_order(b, id, shots.then_some(("queue", "order"))).await?;
    assert!(page.contains("Policy decision"), "{page}");
    assert_eq!(shown_status(b).await?, "under review");
    let columns = preview_and_approve(b, id, "nobody yet", shot("package-preview")).await?;
    assert_eq!(shown_status(b).await?, "approved");
    let package = b
        .text(&b.find("section[aria-labelledby=package]").await?)
        .await?;
    assert!(package.contains("approved by alex"), "{package}");
    sign_out(b).await?;

    sign_in(b, api, "bea", None).await?;
    open_order(b, id, None).await?;
    let columns_b = preview_and_approve(b, id, "alex", None).await?;
    assert_eq!(columns_b, columns, "both approvers saw the same package");
    assert_eq!(shown_status(b).await?, "released");
    Ok(columns)
}

/// The two widths the workspace is checked at: a laptop and a tablet held upright.
const WIDTHS: [u32; 2] = [1366, 768];

/// Screenshots of the current page, whole, at each of [`WIDTHS`] (`<name>-<width>.png`); the
/// window is left at the first width.
async fn shots_at_both_widths(b: &Browser, name: &str) -> Result<()> {
    for w in WIDTHS {
        b.set_window_size(w, 900).await?;
        b.screenshot_full_page(&screenshot_path(&format!("{name}-{w}")))
            .await?;
    }
    b.set_window_size(WIDTHS[0], 900).await
}

/// Polls the text of `css` until `pred` holds (at most 20 s, like `wait_for_url`): a form that
/// posts and redirects to the same page changes no URL to wait for.
async fn wait_for_text(
    b: &Browser,
    css: &str,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> Result<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Ok(el) = b.find(css).await
            && let Ok(text) = b.text(&el).await
            && pred(&text)
        {
            return Ok(text);
        }
        if std::time::Instant::now() > deadline {
            let text = match b.find(css).await {
                Ok(el) => b.text(&el).await.unwrap_or_default(),
                Err(e) => e.to_string(),
            };
            panic!("waited 20 s for {what}; {css} reads {text:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// How far right the queue's tasks column reaches, against the viewport's width (CSS px).
async fn tasks_column_edge(b: &Browser) -> Result<(f64, f64)> {
    let v = b
        .execute(
            "const th = document.querySelector('table.queue thead th:last-child'); \
             return [th.getBoundingClientRect().right, document.documentElement.clientWidth, th.textContent];",
        )
        .await?;
    assert_eq!(v[2], "Tasks", "the last column is the tasks column: {v}");
    Ok((
        v[0].as_f64().unwrap_or(f64::MAX),
        v[1].as_f64().unwrap_or(0.0),
    ))
}

/// Clicks a button by its label and waits until `css` reads as `pred` wants.
async fn click_and_wait(
    b: &Browser,
    button: &str,
    css: &str,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> Result<String> {
    b.click(&b.find_by_text("button", button).await?).await?;
    wait_for_text(b, css, what, pred).await
}

mod scenarios {
    use super::*;

    /// Scenario a: two approvers release by clicking; the authority's download verifies and
    /// holds exactly the fields the approvers saw.
    pub(super) async fn two_approvers_release_by_clicking_and_the_package_verifies(
        b: &Browser,
        api: &Api,
    ) -> Result<()> {
        add_users(&api.app).await;
        seed_alice(&api.app).await;
        let id = submit_order(api).await;
        let seen = release_by_clicking(b, api, &id, true).await?;
        let package = b
            .text(&b.find("section[aria-labelledby=package]").await?)
            .await?;
        assert!(
            package.contains("approved by alex, bea") && package.contains("released archive"),
            "{package}"
        );
        b.screenshot_full_page(&screenshot_path("released-order"))
            .await?;

        let resp = api
            .send(
                PARIS,
                "GET",
                &format!("/api/v1/orders/{id}/disclosure"),
                b"",
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let tar = resp.bytes().await.unwrap().to_vec();
        let pem = reqwest::get(format!("{}/packages/public-key", api.app.address))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let key = writ::disclosure::keys::parse_public_pem(&pem).unwrap();
        let verified = writ::disclosure::package::verify(&tar, &key).unwrap();
        assert_eq!(verified.manifest.order_id, id);
        assert_eq!(verified.manifest.approvers, ["alex", "bea"]);

        // The released tables have exactly the columns both approvers saw, and only the
        // fields the scope releases; alice is in, bob is not.
        let files = writ::disclosure::tar::read(
            &tar,
            &writ::disclosure::tar::ReadRules {
                max_files: 64,
                max_file_size: 1 << 24,
                allowed: &|_| true,
            },
        )
        .unwrap();
        let records = files
            .iter()
            .find(|f| f.name == writ::disclosure::package::RECORDS_FILE)
            .unwrap();
        let records: Value = serde_json::from_slice(&records.data).unwrap();
        let tables = records["tables"].as_array().unwrap();
        assert_eq!(tables.len(), seen.len(), "{records}");
        for (table, shown) in tables.iter().zip(&seen) {
            let columns: Vec<&str> = table["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            let as_shown: Vec<String> = columns.iter().map(|c| c.replace('_', " ")).collect();
            assert_eq!(&as_shown, shown);
            let category = table["category"].as_str().unwrap();
            let scope: Vec<&str> = records["scope"][category]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            assert_eq!(columns[0], writ::disclosure::package::TARGET_COLUMN);
            assert_eq!(&columns[1..], scope.as_slice(), "{category}");
        }
        let text = records.to_string();
        assert!(
            text.contains("u-alice") && !text.contains("u-bob"),
            "{text}"
        );
        assert!(text.contains("registration_ip") && !text.contains("ip_event_kind"));
        Ok(())
    }

    /// Scenario b: the auditor finds the release in the disclosure log and downloads the
    /// verifiable export with their browser session.
    pub(super) async fn the_auditor_sees_the_release_and_downloads_the_export(
        b: &Browser,
        api: &Api,
    ) -> Result<()> {
        add_users(&api.app).await;
        seed_alice(&api.app).await;
        let id = submit_order(api).await;
        release_by_clicking(b, api, &id, false).await?;
        sign_out(b).await?;
        // The authority collects the package; that signs an audit checkpoint covering the
        // release (tests sign on demand; in production the background signer does it every few
        // seconds). The export ends at the latest checkpoint and is a 404 until there is one.
        let resp = api
            .send(
                PARIS,
                "GET",
                &format!("/api/v1/orders/{id}/disclosure"),
                b"",
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);

        sign_in(b, api, "olga", None).await?;
        b.click(&b.find_by_text("header nav a", "Audit").await?)
            .await?;
        b.wait_for_url("the audit page", |u| u.ends_with("/audit-log"))
            .await?;
        let row = b
            .text(
                &b.find("section[aria-labelledby=disclosures] tbody tr")
                    .await?,
            )
            .await?;
        assert!(
            row.contains("PR-2026-0042") && row.contains("fr-parquet-paris"),
            "{row}"
        );
        assert!(row.contains("alex, bea"), "{row}");
        let log = b.text(&b.find("table.timeline").await?).await?;
        assert!(log.contains("order.released"), "{log}");
        b.screenshot_full_page(&screenshot_path("audit")).await?;

        // The export link is a download: fetch it as the browser would, with its session.
        let link = b
            .find_by_text("a", "The whole log, as a verifiable export (JSON Lines)")
            .await?;
        let href = b.attribute(&link, "href").await?.unwrap();
        assert_eq!(href, "/audit/export?format=jsonl");
        let session = b.cookie("writ_session").await?.expect("a session cookie");
        let resp = reqwest::Client::new()
            .get(format!("{}{href}", api.app.address))
            .header("cookie", format!("writ_session={session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let export = resp.text().await.unwrap();
        assert!(export.contains("order.released") && export.contains(&id));
        // Without the session, nothing.
        let anonymous = reqwest::get(format!("{}{href}", api.app.address))
            .await
            .unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        Ok(())
    }

    /// Scenario c: a reviewer sees no Approval section and is refused the admin page; the
    /// sign-in form is reached and used with the keyboard.
    pub(super) async fn a_reviewer_has_no_approval_and_no_admin_and_sign_in_works_by_keyboard(
        b: &Browser,
        api: &Api,
    ) -> Result<()> {
        add_users(&api.app).await;
        let id = submit_order(api).await;

        // Keyboard: the first focus stop is the user name field (or a skip link). Autofocus puts
        // the focus there on load; Shift+Tab from there must leave the page (nothing focusable
        // comes before it), and the first Tab from the top must come back to it. Then Tab goes
        // through the password to "Sign in", and Enter on it signs in.
        b.goto(&format!("{}/login", api.app.address)).await?;
        let username = b.find("#username").await?;
        let on_load = b.active_element().await?;
        let tag = b.tag_name(&on_load).await?;
        assert!(on_load == username || tag == "body", "focus on load: {tag}");
        if on_load == username {
            b.press_keys(&[SHIFT, TAB]).await?;
            let before = b.active_element().await?;
            assert_eq!(
                b.tag_name(&before).await?,
                "body",
                "a focus stop before the user name"
            );
        }
        b.press_key(TAB).await?;
        let first = b.active_element().await?;
        let class = b.attribute(&first, "class").await?.unwrap_or_default();
        assert!(
            first == username || class.split(' ').any(|c| c == "skip"),
            "the first Tab went to {} {class:?}",
            b.tag_name(&first).await?
        );
        b.send_keys(&username, "rita").await?;
        b.press_key(TAB).await?;
        assert_eq!(b.active_element().await?, b.find("#password").await?);
        b.send_keys(&b.active_element().await?, PASSWORD).await?;
        b.press_key(TAB).await?;
        let button = b.active_element().await?;
        assert_eq!(b.text(&button).await?, "Sign in");
        b.press_key(ENTER).await?;
        b.wait_for_url("to leave /login", |u| !u.ends_with("/login"))
            .await?;
        assert!(b.current_url().await?.ends_with("/orders"));

        // The reviewer reads the order but has no Approval section.
        let page = open_order(b, &id, None).await?;
        assert!(page.contains("Policy decision") && page.contains("Actions"));
        let mut headings = Vec::new();
        for h in b.find_all("main h2").await? {
            headings.push(b.text(&h).await?);
        }
        assert!(!headings.iter().any(|h| h == "Approval"), "{headings:?}");
        assert!(
            !b.source()
                .await?
                .contains("Prepare and preview the package")
        );
        let nav = b.text(&b.find("header nav").await?).await?;
        assert!(!nav.contains("Users") && !nav.contains("Audit"), "{nav}");

        // The admin page, typed into the address bar, is refused.
        b.goto(&format!("{}/admin/users", api.app.address)).await?;
        assert_eq!(b.text(&b.find("h1").await?).await?, "Not allowed");
        assert!(!b.source().await?.contains("Add a user"));
        b.screenshot_full_page(&screenshot_path("not-allowed"))
            .await?;
        Ok(())
    }

    /// Scenario d: a day at the desk. Rita finds the order by its reference, assigns it to
    /// Alex, leaves a note, sends a standard question and sees the authority's reply flagged,
    /// records how she checked the claimed validation; Alex and Bea each preview and approve it
    /// with a recorded justification; the dashboard shows the release. The queue, the order
    /// page and the dashboard are photographed at 1366 and 768 px, and at 768 px the queue's
    /// tasks column stays inside the window.
    pub(super) async fn a_day_at_the_desk_from_search_to_dashboard(
        b: &Browser,
        api: &Api,
    ) -> Result<()> {
        add_users(&api.app).await;
        seed_alice(&api.app).await;
        submit_order(api).await;
        let (status, created) = json_of(
            api.submit(
                POLICE_SIGNER,
                &submission(&crate::workspace_daily::requisition().to_string()),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        let order_url = format!("/orders/{id}");
        b.set_window_size(WIDTHS[0], 900).await?;

        // Search by reference (after a look at the intake form the day may need).
        sign_in(b, api, "rita", None).await?;
        b.goto(&format!(
            "{}/orders/new?instrument=eu.epoc",
            api.app.address
        ))
        .await?;
        let form = b.text(&b.find("form.intake").await?).await?;
        assert!(form.contains("The addressee"), "{form}");
        b.screenshot_full_page(&screenshot_path("intake-form-1366"))
            .await?;
        b.click(&b.find_by_text("header nav a", "Queue").await?)
            .await?;
        b.wait_for_url("the queue", |u| u.ends_with("/orders"))
            .await?;
        b.send_keys(&b.find("#reference").await?, "PV-2026-77")
            .await?;
        b.press_key(ENTER).await?;
        b.wait_for_url("the search", |u| u.contains("reference=PV-2026-77"))
            .await?;
        let rows = b.text(&b.find("table.queue tbody").await?).await?;
        assert!(
            rows.contains("PV-2026-77") && !rows.contains("PR-2026-0042"),
            "{rows}"
        );
        shots_at_both_widths(b, "day-queue").await?;
        b.set_window_size(WIDTHS[1], 900).await?;
        let (right, viewport) = tasks_column_edge(b).await?;
        assert!(
            right <= viewport,
            "at 768 px the tasks column ends at {right} px, past the window's {viewport} px"
        );
        b.set_window_size(WIDTHS[0], 900).await?;
        b.click(&b.find_by_text("table.queue a", "PV-2026-77").await?)
            .await?;
        b.wait_for_url("the order page", |u| u.ends_with(&order_url))
            .await?;

        // Assign to a colleague, and a note for colleagues.
        b.click(&b.find("#assignee option[value=alex]").await?)
            .await?;
        click_and_wait(b, "Assign", ".assignee", "the assignee", |t| t == "alex").await?;
        let note = "Called the OPJ: the account named is the suspect's own.";
        b.send_keys(&b.find("#note").await?, note).await?;
        click_and_wait(b, "Add note", "ol.notes", "the note", |t| t.contains(note)).await?;

        // A standard question, sent as the template words it; the authority answers.
        b.click(
            &b.find_by_text("summary", "Ask: Time zone of the window")
                .await?,
        )
        .await?;
        b.click(&b.find_by_text("button", "Send this question").await?)
            .await?;
        wait_for_text(b, "ol.messages", "the question", |t| {
            t.contains("Please confirm the time zone of the time window")
        })
        .await?;
        let reply = serde_json::json!({"text": "The window is in UTC."}).to_string();
        let resp = api
            .send(
                POLICE_SIGNER,
                "POST",
                &format!("/api/v1/orders/{id}/messages"),
                reply.as_bytes(),
            )
            .await;
        assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
        b.goto(&format!("{}{order_url}", api.app.address)).await?;
        let desk = b.text(&b.find("section.desk").await?).await?;
        assert!(desk.contains("New reply"), "{desk}");
        let messages = b.text(&b.find("ol.messages").await?).await?;
        assert!(messages.contains("The window is in UTC."), "{messages}");

        // The claimed validation: checked, and how.
        b.click(&b.find("input[name=method][value=validator_called]").await?)
            .await?;
        b.send_keys(
            &b.find("#check-note").await?,
            "Called the Parquet de Paris on its listed number; file P-123 confirmed.",
        )
        .await?;
        click_and_wait(b, "Record the check", "section.summary", "the check", |t| {
            t.contains("checked against the document by")
        })
        .await?;
        shots_at_both_widths(b, "day-order").await?;
        sign_out(b).await?;

        // Two approvers, each with a recorded justification.
        for (who, status) in [("alex", "approved"), ("bea", "released")] {
            sign_in(b, api, who, None).await?;
            b.goto(&format!("{}{order_url}", api.app.address)).await?;
            b.click(
                &b.find_by_text("button", "Prepare and preview the package")
                    .await?,
            )
            .await?;
            b.wait_for_url("the package preview", |u| u.ends_with("/package"))
                .await?;
            b.send_keys(
                &b.find("#justification").await?,
                "Fraud against minors; the authorisation was confirmed by phone and Irish law permits voluntary disclosure.",
            )
            .await?;
            b.click(&b.find_by_text("button", "Approve this package").await?)
                .await?;
            b.wait_for_url("the order page", |u| u.ends_with(&order_url))
                .await?;
            assert_eq!(shown_status(b).await?, status);
            let recorded = b
                .text(&b.find("section[aria-labelledby=justifications]").await?)
                .await?;
            assert!(recorded.contains("Fraud against minors"), "{recorded}");
            if who == "alex" {
                sign_out(b).await?;
            }
        }

        // The dashboard shows the day's release.
        b.click(&b.find_by_text("header nav a", "Dashboard").await?)
            .await?;
        b.wait_for_url("the dashboard", |u| u.ends_with("/dashboard"))
            .await?;
        let main = b.text(&b.find("main").await?).await?;
        assert!(main.to_lowercase().contains("released"), "{main}");
        shots_at_both_widths(b, "day-dashboard").await?;
        Ok(())
    }
}
