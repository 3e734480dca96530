//! The browser workspace over HTTP: sign-in, sessions, CSRF, the role x route matrix, and the
//! review pages and actions.

use std::collections::HashMap;

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use writ::audit::{Actor, ActorKind};
use writ::staff::Role;

use crate::both_backends;
use crate::helpers::{Backend, TestApp};
use crate::orders::{Api, ORDER, PARIS, json_of, submission};

both_backends!(
    the_first_admin_signs_in_with_the_password_from_the_file,
    sessions_are_safe_cookies_and_forms_need_their_token,
    failed_sign_ins_are_throttled_and_disabled_users_are_out,
    every_route_checks_the_role,
    reviewers_read_orders_download_documents_and_refuse,
    two_approvers_release_exactly_the_permitted_fields,
    narrowing_removes_scope_and_voids_earlier_approvals,
    orders_entered_by_hand_are_decided_from_the_true_receipt_and_not_approved_by_their_clerk,
    the_demo_opens_on_a_live_queue,
    an_amendment_voids_approvals_given_on_the_old_order,
    deadlines_and_checkpoints_are_announced_once,
    tasks_are_closed_and_preservation_holds_extended_within_the_law,
    simultaneous_second_approvals_release_exactly_once,
);

pub(crate) const PASSWORD: &str = "a long enough password";

/// A browser without JavaScript: keeps cookies, does not follow redirects.
pub(crate) struct Browser {
    pub(crate) base: String,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
    set_cookie_lines: Vec<String>,
}

impl Browser {
    pub(crate) fn new(app: &TestApp) -> Self {
        Self::at(&app.address)
    }

    /// A browser for the server at `base` (`http://127.0.0.1:PORT`).
    pub(crate) fn at(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
            set_cookie_lines: Vec::new(),
        }
    }

    fn keep(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all("set-cookie") {
            let line = v.to_str().unwrap().to_owned();
            let pair = line.split(';').next().unwrap();
            let (k, val) = pair.split_once('=').unwrap();
            if val.is_empty() || line.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                // Session cookies and CSRF tokens must never reach a log (.ci/scan-logs).
                crate::helpers::record_secret(val);
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
            self.set_cookie_lines.push(line);
        }
    }

    pub(crate) fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub(crate) async fn get(&mut self, path: &str) -> (StatusCode, String, Option<String>) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&resp);
        let status = resp.status();
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (status, resp.text().await.unwrap(), location)
    }

    pub(crate) async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, String, Option<String>) {
        self.try_post(path, form).await.unwrap()
    }

    /// [`Browser::post`], with the error when no complete answer comes (the server died).
    pub(crate) async fn try_post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Result<(StatusCode, String, Option<String>)> {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await?;
        self.keep(&resp);
        let status = resp.status();
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        Ok((status, resp.text().await?, location))
    }

    /// [`Browser::post`], then, when the answer is a 303, the GET it redirects to (as a
    /// browser does after a form: post/redirect/get). Other answers come back as they are.
    pub(crate) async fn post_follow(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, String, Option<String>) {
        let (status, body, location) = self.post(path, form).await;
        match (status, location) {
            (StatusCode::SEE_OTHER, Some(to)) => self.get(&to).await,
            (status, location) => (status, body, location),
        }
    }

    /// The hidden `csrf` value of the last page.
    pub(crate) fn csrf_in(page: &str) -> String {
        let at = page
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token");
        let rest = &page[at + 19..];
        let token = rest[..rest.find('"').unwrap()].to_owned();
        crate::helpers::record_secret(&token);
        token
    }

    pub(crate) async fn sign_in(&mut self, user: &str, password: &str) -> StatusCode {
        let (_, page, _) = self.get("/login").await;
        let csrf = Self::csrf_in(&page);
        let (status, _, _) = self
            .post(
                "/login",
                &[("username", user), ("password", password), ("csrf", &csrf)],
            )
            .await;
        status
    }

    /// The session's CSRF token, read from a page that has forms (every page has sign-out).
    pub(crate) async fn session_csrf(&mut self) -> String {
        let (_, page, _) = self.get("/account").await;
        Self::csrf_in(&page)
    }
}

pub(crate) async fn add_users(app: &TestApp) {
    app.pool
        .run(|conn| {
            let actor = Actor::new(ActorKind::System, "test");
            for (u, role) in [
                ("rita", Role::LegalReviewer),
                ("alex", Role::LegalApprover),
                ("bea", Role::LegalApprover),
                ("olga", Role::Auditor),
                ("adam", Role::Admin),
            ] {
                writ::staff::add_user(conn, &actor, u, u, role, PASSWORD).unwrap();
            }
            Ok::<_, writ::db::DbError>(())
        })
        .await
        .unwrap();
}

async fn the_first_admin_signs_in_with_the_password_from_the_file(backend: Backend) {
    let app =
        crate::helpers::spawn_app_with(backend, &[("WRIT_WORKSPACE__CREATE_FIRST_ADMIN", "true")])
            .await;
    let file = app.db.dir().join("initial-admin-password");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    let password = text.lines().nth(1).unwrap().to_owned();
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in("admin", &password).await, StatusCode::SEE_OTHER);
    let (_, _, to) = b.get("/").await;
    assert_eq!(to.as_deref(), Some("/admin/users"));
    let (status, page, _) = b.get("/admin/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Administrator"));
    // A second start does not make another admin or touch the file.
    let again = app
        .pool
        .run(move |conn| {
            writ::staff::ensure_first_admin(conn, &file)
                .map_err(|e| writ::db::DbError::Setup(e.to_string()))
        })
        .await
        .unwrap();
    assert!(again.is_none());
}

async fn sessions_are_safe_cookies_and_forms_need_their_token(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    add_users(&app).await;
    let mut b = Browser::new(&app);
    // Sign-in without the double-submit cookie, or with another token, is refused.
    let (status, _, _) = b
        .post(
            "/login",
            &[("username", "rita"), ("password", PASSWORD), ("csrf", "x")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(b.sign_in("rita", PASSWORD).await, StatusCode::SEE_OTHER);
    let session_line = b
        .set_cookie_lines
        .iter()
        .find(|l| l.starts_with("writ_session="))
        .unwrap()
        .clone();
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(session_line.contains(flag), "{session_line}");
    }
    let (status, page, _) = b.get("/orders").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // Pages carry a strict CSP.
    let resp = reqwest::Client::new()
        .get(format!("{}/login", app.address))
        .send()
        .await
        .unwrap();
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));

    // A form without the session's token is refused; with it, it works.
    let (status, _, _) = b.post("/logout", &[("csrf", "wrong")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let csrf = b.session_csrf().await;
    let (status, _, to) = b.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(
        (status, to.as_deref()),
        (StatusCode::SEE_OTHER, Some("/login"))
    );
    let (status, _, to) = b.get("/orders").await;
    assert_eq!(
        (status, to.as_deref()),
        (StatusCode::SEE_OTHER, Some("/login"))
    );

    // A forged or stale cookie is nobody.
    let mut forged = Browser::new(&app);
    forged.cookies.insert("writ_session".into(), "0".repeat(64));
    let (status, _, _) = forged.get("/orders").await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // Changing the password ends the other sessions, keeps this one.
    let mut one = Browser::new(&app);
    let mut two = Browser::new(&app);
    one.sign_in("olga", PASSWORD).await;
    two.sign_in("olga", PASSWORD).await;
    let csrf = one.session_csrf().await;
    let (status, _, _) = one
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", PASSWORD),
                ("new", "another long password"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(one.get("/orders").await.0, StatusCode::OK);
    assert_eq!(two.get("/orders").await.0, StatusCode::SEE_OTHER);
}

async fn failed_sign_ins_are_throttled_and_disabled_users_are_out(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    add_users(&app).await;
    let mut b = Browser::new(&app);
    for _ in 0..5 {
        assert_eq!(
            b.sign_in("rita", "wrong password!!").await,
            StatusCode::UNAUTHORIZED
        );
    }
    // Now even the right password is refused for a while.
    assert_eq!(
        b.sign_in("rita", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // An unknown user gets the same answer as a wrong password.
    let mut c = Browser::new(&app);
    assert_eq!(
        c.sign_in("nobody", PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );

    // Disabling a user ends their session at once.
    let mut olga = Browser::new(&app);
    assert_eq!(olga.sign_in("olga", PASSWORD).await, StatusCode::SEE_OTHER);
    let mut admin = Browser::new(&app);
    admin.sign_in("adam", PASSWORD).await;
    let csrf = admin.session_csrf().await;
    let (status, _, _) = admin
        .post(
            "/admin/users/olga/disable",
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(olga.get("/orders").await.0, StatusCode::SEE_OTHER);
    assert_eq!(
        olga.sign_in("olga", PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    // The audit log has the failures, never a password.
    let leaves: Vec<String> = app
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
    assert!(leaves.iter().any(|l| l.contains("staff.login_failed")));
    assert!(
        !leaves
            .iter()
            .any(|l| l.contains("wrong password") || l.contains(PASSWORD))
    );
}

async fn every_route_checks_the_role(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    let app = &api.app;
    add_users(app).await;
    let (_, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let order = format!("/orders/{id}");
    let document = format!("/orders/{id}/document");
    let attachment = format!("/orders/{id}/attachments/1");
    let ask = format!("/orders/{id}/ask");
    let refuse = format!("/orders/{id}/refuse");
    let object = format!("/orders/{id}/object");
    let checked = format!("/orders/{id}/validation-checked");
    let package = format!("/orders/{id}/package");
    let approve = format!("/orders/{id}/approve");
    let narrow = format!("/orders/{id}/narrow");
    let matches = format!("/orders/{id}/matches");
    let ex_post = format!("/orders/{id}/ex-post-validation");
    let notified = format!("/orders/{id}/user-notified");
    let extend = format!("/orders/{id}/hold/extend");
    let assign = format!("/orders/{id}/assign");
    let notes = format!("/orders/{id}/notes");
    let reply_read = format!("/orders/{id}/reply-read");
    let form3 = format!("/orders/{id}/eevidence/form3");
    let confirm_withdrawal = format!("/orders/{id}/eevidence/confirm-withdrawal");
    let confirm_authorities = format!("/orders/{id}/eevidence/confirm-authorities");
    let handover_package = format!("/orders/{id}/release/package.tar");
    let cover_letter = format!("/orders/{id}/release/cover-letter.txt");
    let certificate = format!("/orders/{id}/release/certificate.txt");
    let page_ack = format!("/orders/{id}/page/acknowledge");
    // (method, path, roles allowed). Admins see no order; auditors change nothing.
    let routes: Vec<(&str, &str, &[&str])> = vec![
        ("GET", "/orders", &["rita", "alex", "olga"]),
        ("GET", "/dashboard", &["rita", "alex", "olga"]),
        ("GET", &order, &["rita", "alex", "olga"]),
        ("GET", &document, &["rita", "alex", "olga"]),
        ("GET", &attachment, &["rita", "alex", "olga"]),
        ("POST", &ask, &["rita", "alex"]),
        ("POST", &checked, &["rita", "alex"]),
        ("GET", "/admin/users", &["adam"]),
        ("POST", "/admin/users", &["adam"]),
        ("POST", "/admin/users/bea/disable", &["adam"]),
        ("POST", "/admin/users/bea/unlock", &["adam"]),
        ("POST", "/admin/users/bea/password", &["adam"]),
        ("POST", "/admin/users/bea/role", &["adam"]),
        ("GET", "/account", &["rita", "alex", "olga", "adam"]),
        ("GET", "/audit-log", &["olga"]),
        ("GET", "/transparency", &["olga", "adam"]),
        ("GET", "/transparency/report.tar", &["olga", "adam"]),
        ("GET", "/audit-log/export.csv", &["olga"]),
        ("GET", "/audit-log/disclosures.csv", &["olga"]),
        ("GET", "/orders/new", &["rita", "alex"]),
        ("POST", &matches, &["rita", "alex"]),
        ("POST", &ex_post, &["rita", "alex"]),
        ("POST", &notified, &["rita", "alex"]),
        ("POST", &extend, &["rita", "alex"]),
        ("POST", &form3, &["rita", "alex"]),
        ("POST", &confirm_withdrawal, &["rita", "alex"]),
        ("POST", &confirm_authorities, &["alex"]),
        ("POST", "/orders/new", &["rita", "alex"]),
        ("POST", &package, &["alex"]),
        ("POST", &approve, &["alex"]),
        ("POST", &narrow, &["rita", "alex"]),
        ("GET", "/mail", &["rita", "alex"]),
        ("POST", "/mail/1/retry", &["rita", "alex"]),
        ("GET", "/admin/registry", &["adam"]),
        ("POST", "/admin/registry", &["adam"]),
        ("POST", "/admin/registry/keys", &["adam"]),
        ("POST", "/admin/registry/keys/none/revoke", &["adam"]),
        ("POST", "/admin/registry/fr-police-lyon/status", &["adam"]),
        ("POST", &refuse, &["rita", "alex"]),
        ("GET", &matches, &["rita", "alex"]),
        ("GET", &package, &["alex"]),
        // The package holds records (as the matches do); the letter and certificate do not.
        ("GET", &handover_package, &["rita", "alex"]),
        ("GET", &cover_letter, &["rita", "alex", "olga"]),
        ("GET", &certificate, &["rita", "alex", "olga"]),
        ("POST", &page_ack, &["rita", "alex"]),
        ("GET", "/orders/export.csv", &["rita", "alex", "olga"]),
        ("POST", "/filters", &["rita", "alex", "olga"]),
        ("POST", "/filters/none/delete", &["rita", "alex", "olga"]),
        ("POST", &assign, &["rita", "alex"]),
        ("POST", &notes, &["rita", "alex"]),
        ("POST", &reply_read, &["rita", "alex"]),
        ("GET", "/notifications", &["rita", "alex", "olga"]),
        ("POST", "/notifications/read", &["rita", "alex", "olga"]),
        (
            "POST",
            "/account/preferences",
            &["rita", "alex", "olga", "adam"],
        ),
        ("POST", &object, &["rita", "alex"]),
        (
            "POST",
            "/account/password",
            &["rita", "alex", "olga", "adam"],
        ),
    ];
    // The routes come from the app's own route attributes: one left out of this table fails
    // here, so a new page or action cannot go unchecked.
    let served = workspace_routes();
    assert!(served.len() >= routes.len(), "{served:?}");
    for (method, pattern) in &served {
        if PUBLIC_ROUTES.contains(&(method.as_str(), pattern.as_str())) {
            continue;
        }
        assert!(
            routes
                .iter()
                .any(|(m, p, _)| m == method && path_matches(pattern, p)),
            "{method} {pattern} is missing from the role x route matrix"
        );
    }
    let mut browsers = HashMap::new();
    for u in ["rita", "alex", "olga", "adam"] {
        let mut b = Browser::new(app);
        assert_eq!(b.sign_in(u, PASSWORD).await, StatusCode::SEE_OTHER);
        let csrf = b.session_csrf().await;
        browsers.insert(u, (b, csrf));
    }
    let mut anonymous = Browser::new(app);
    for (method, path, allowed) in &routes {
        for (user, (b, csrf)) in browsers.iter_mut() {
            let form: Vec<(&str, &str)> = vec![
                ("csrf", csrf.as_str()),
                ("text", "Please confirm the time zone."),
                ("username", "new-user"),
                ("display_name", "New"),
                ("role", "auditor"),
                ("password", PASSWORD),
                ("enable", "1"),
                ("snapshot_sha256", "0"),
                ("id", "xx-new-authority"),
                ("name", "New"),
                ("country", "FR"),
                ("kind", "police"),
                ("contacts", "a@b.example"),
                ("authority", "fr-police-lyon"),
                ("kid", "new-key"),
                ("alg", "EdDSA"),
                ("pem", "not a key"),
                ("reason", "why"),
                ("outcome", "received"),
                ("date", "2026-01-01"),
                ("channel", "email"),
                ("confirm", "yes"),
            ];
            let (status, body, _) = if *method == "GET" {
                b.get(path).await
            } else {
                b.post(path, &form).await
            };
            if allowed.contains(user) {
                assert_ne!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{user} {method} {path}: {body}"
                );
                assert!(
                    status.as_u16() < 500,
                    "{user} {method} {path}: {status} {body}"
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{user} {method} {path}");
            }
        }
        let (status, _, to) = if *method == "GET" {
            anonymous.get(path).await
        } else {
            anonymous.post(path, &[("csrf", "x")]).await
        };
        assert_eq!(
            (status, to.as_deref()),
            (StatusCode::SEE_OTHER, Some("/login")),
            "{method} {path}"
        );
    }
}

/// Workspace routes anyone may reach (sign-out needs only the session's CSRF token).
const PUBLIC_ROUTES: [(&str, &str); 7] = [
    ("GET", "/static/writ.css"),
    ("GET", "/"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/packages/public-key"),
    ("GET", "/packages/public-keys"),
];

/// Every workspace route as (method, pattern), read from the `#[get]` and `#[post]`
/// attributes under src/web/ui; checked against the number of services the workspace
/// registers, so a route added another way is noticed too.
fn workspace_routes() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/web/ui");
    let mut routes = Vec::new();
    let mut registered = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        registered += text.matches(".service(").count();
        for line in text.lines().map(str::trim) {
            for (attr, method) in [("#[get(\"", "GET"), ("#[post(\"", "POST")] {
                if let Some(rest) = line.strip_prefix(attr) {
                    let end = rest.find('"').unwrap();
                    routes.push((method.to_owned(), rest[..end].to_owned()));
                }
            }
        }
    }
    assert_eq!(
        routes.len(),
        registered,
        "every registered workspace service should be one attributed route: {routes:?}"
    );
    routes
}

/// Whether `path` is an instance of the route `pattern` (`{x}` matches one segment).
fn path_matches(pattern: &str, path: &str) -> bool {
    let (p, q): (Vec<_>, Vec<_>) = (pattern.split('/').collect(), path.split('/').collect());
    p.len() == q.len()
        && p.iter()
            .zip(&q)
            .all(|(a, b)| a == b || (a.starts_with('{') && a.ends_with('}')))
}

async fn reviewers_read_orders_download_documents_and_refuse(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    let (_, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let mut b = Browser::new(&api.app);
    b.sign_in("rita", PASSWORD).await;
    let (status, queue, _) = b.get("/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        queue.contains("PR-2026-0042") && queue.contains("fr-parquet-paris"),
        "{queue}"
    );
    let (status, page, _) = b.get(&format!("/orders/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    for needle in [
        "Policy decision",
        "subscriber",
        "Granted for",
        "order.received",
        "Download the signed order",
    ] {
        assert!(page.contains(needle), "{needle} missing");
    }
    // The document is an attachment, sandboxed, and its viewing is audited.
    let resp = reqwest::Client::new()
        .get(format!("{}/orders/{id}/document", api.app.address))
        .header("cookie", b.cookie_header())
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert!(resp.bytes().await.unwrap().starts_with(b"%PDF-"));
    // Refusing needs a reason; the authority then reads it.
    let csrf = Browser::csrf_in(&page);
    let (status, _, _) = b
        .post(
            &format!("/orders/{id}/refuse"),
            &[("csrf", &csrf), ("text", " ")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _, _) = b
        .post(
            &format!("/orders/{id}/refuse"),
            &[
                ("csrf", &csrf),
                (
                    "text",
                    "Cannot comply: the user id does not exist in the stated form.",
                ),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, read) = json_of(
        api.send(PARIS, "GET", &format!("/api/v1/orders/{id}"), b"")
            .await,
    )
    .await;
    assert_eq!(read["status"], "refused");
    let (_, messages) = json_of(
        api.send(PARIS, "GET", &format!("/api/v1/orders/{id}/messages"), b"")
            .await,
    )
    .await;
    assert!(
        messages[0]["text"]
            .as_str()
            .unwrap()
            .contains("Cannot comply")
    );
    let (_, page, _) = b.get(&format!("/orders/{id}")).await;
    assert!(page.contains("order.document_viewed") && page.contains("order.refused"));
    assert!(
        !page.contains("Refuse the order"),
        "a closed order offers no actions"
    );
}

pub(crate) async fn seed_alice(app: &TestApp) {
    let pool = app.pool.clone();
    tokio::task::spawn_blocking(move || {
        let import = |kind, rows: &str| {
            let opts = writ::metadata::import::ImportOptions {
                kind,
                format: writ::metadata::import::Format::Jsonl,
                batch_rows: 10,
                source: "test".into(),
                actor: Actor::system(),
            };
            let s = writ::metadata::import::import(&pool, rows.as_bytes(), &opts, &mut Vec::new(), &|_, _| {}).unwrap();
            assert_eq!(s.rejected, 0);
        };
        import(
            writ::metadata::records::RecordKind::Accounts,
            r#"{"external_id":"u-alice","status":"active","created_at":"2026-01-01T00:00:00Z","username":"alice","phone_number":"+33612345678"}
{"external_id":"u-bob","status":"active","created_at":"2026-01-02T00:00:00Z","username":"bob"}"#,
        );
        import(
            writ::metadata::records::RecordKind::IpEvents,
            r#"{"external_id":"u-alice","ip":"203.0.113.7","port":51234,"at":"2026-08-30T08:14:03Z","kind":"login"}
{"external_id":"u-bob","ip":"203.0.113.7","port":40000,"at":"2026-08-30T08:14:03Z","kind":"login"}"#,
        );
    })
    .await
    .unwrap();
}

pub(crate) fn hash_in(page: &str) -> String {
    let marker = "name=\"snapshot_sha256\" value=\"";
    let at = page.find(marker).expect("an approval form");
    let rest = &page[at + marker.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn two_approvers_release_exactly_the_permitted_fields(backend: Backend) {
    let api = Api::start(
        backend,
        &[
            (
                "WRIT_MAIL__LEGAL_TEAM",
                "legal@provider.example,counsel@provider.example",
            ),
            // The test sends the queued mail itself.
            ("WRIT_API__JOBS_INTERVAL_SECS", "3600"),
        ],
    )
    .await;
    add_users(&api.app).await;
    seed_alice(&api.app).await;
    let (_, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let mut alex = Browser::new(&api.app);
    let mut bea = Browser::new(&api.app);
    let mut rita = Browser::new(&api.app);
    alex.sign_in("alex", PASSWORD).await;
    bea.sign_in("bea", PASSWORD).await;
    rita.sign_in("rita", PASSWORD).await;

    // A reviewer cannot prepare or approve.
    let csrf = rita.session_csrf().await;
    assert_eq!(
        rita.post_follow(&format!("/orders/{id}/package"), &[("csrf", &csrf)])
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // The first approver previews exactly what will leave, then approves that snapshot.
    let csrf = alex.session_csrf().await;
    let (status, preview, _) = alex
        .post_follow(&format!("/orders/{id}/package"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert!(
        preview.contains("u-alice") && preview.contains("51234"),
        "{preview}"
    );
    assert!(
        !preview.contains("u-bob"),
        "bob used another port: not a match"
    );
    let hash = hash_in(&preview);
    let (status, _, _) = alex
        .post(
            &format!("/orders/{id}/approve"),
            &[("csrf", &csrf), ("snapshot_sha256", &hash)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // Approving twice is refused; a stale hash is refused.
    let (status, body, _) = alex
        .post(
            &format!("/orders/{id}/approve"),
            &[("csrf", &csrf), ("snapshot_sha256", &hash)],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, read) = json_of(
        api.send(PARIS, "GET", &format!("/api/v1/orders/{id}"), b"")
            .await,
    )
    .await;
    assert_eq!(read["status"], "approved");
    let (status, _) = json_of(
        api.send(
            PARIS,
            "GET",
            &format!("/api/v1/orders/{id}/disclosure"),
            b"",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // The second approver sees the same snapshot; their approval releases it.
    let csrf_b = bea.session_csrf().await;
    let (_, preview_b, _) = bea
        .post_follow(&format!("/orders/{id}/package"), &[("csrf", &csrf_b)])
        .await;
    assert_eq!(hash_in(&preview_b), hash);
    let (status, body, _) = bea
        .post(
            &format!("/orders/{id}/approve"),
            &[
                ("csrf", &csrf_b),
                ("snapshot_sha256", "0".repeat(64).as_str()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body, _) = bea
        .post(
            &format!("/orders/{id}/approve"),
            &[("csrf", &csrf_b), ("snapshot_sha256", &hash)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");

    // The authority downloads the package; it verifies offline with the published key.
    let resp = api
        .send(
            PARIS,
            "GET",
            &format!("/api/v1/orders/{id}/disclosure"),
            b"",
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/x-tar");
    let tar = resp.bytes().await.unwrap().to_vec();
    let pem = reqwest::get(format!("{}/packages/public-key", api.app.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let key = writ::disclosure::keys::parse_public_pem(&pem).unwrap();
    let verified = writ::disclosure::package::verify(&tar, &key).unwrap();
    assert_eq!(verified.manifest.approvers, ["alex", "bea"]);
    assert_eq!(verified.manifest.order_id, id);
    assert!(verified.audit_proof.is_some());
    let text = String::from_utf8_lossy(&tar);
    assert!(text.contains("u-alice") && !text.contains("u-bob"));
    // Only permitted fields: the subscriber table's columns are the granted subscriber fields.
    assert!(text.contains("registration_ip") && !text.contains("ip_event_kind"));
    // Another authority gets nothing.
    let (status, _) = json_of(
        api.send(
            crate::orders::POLICE_SIGNER,
            "GET",
            &format!("/api/v1/orders/{id}/disclosure"),
            b"",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, read) = json_of(
        api.send(PARIS, "GET", &format!("/api/v1/orders/{id}"), b"")
            .await,
    )
    .await;
    assert_eq!(read["status"], "released");
    // The release is one audit entry, with the package hash.
    let (_, page, _) = alex.get(&format!("/orders/{id}")).await;
    assert_eq!(page.matches("order.released").count(), 1);

    // The auditor sees it in the disclosure log and downloads the export with a session; the
    // session only reads (a POST needs the auditor token), and other roles get nothing.
    let mut olga = Browser::new(&api.app);
    olga.sign_in("olga", PASSWORD).await;
    let (status, audit, _) = olga.get("/audit-log").await;
    assert_eq!(status, StatusCode::OK);
    let sha = verified.manifest.files.len();
    assert!(
        sha > 0 && audit.contains("alex, bea") && audit.contains("PR-2026-0042"),
        "{audit}"
    );
    let (status, export, _) = olga.get("/audit/export?format=jsonl").await;
    assert_eq!(status, StatusCode::OK);
    assert!(export.contains("order.released"));
    assert_eq!(olga.get("/audit/checkpoint").await.0, StatusCode::OK);
    let (status, _, _) = olga.post("/audit/checkpoint", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        alex.get("/audit/export?format=jsonl").await.0,
        StatusCode::UNAUTHORIZED
    );

    // Notices: the legal team heard of the new order, the authority's registered contact of
    // the response; no message names a target or carries data.
    let mail = api
        .app
        .db
        .settings(&[(
            "WRIT_MAIL__LEGAL_TEAM",
            "legal@provider.example,counsel@provider.example",
        )])
        .mail;
    let outbox = mail.outbox_dir.clone();
    let report = api
        .app
        .pool
        .run(move |conn| writ::mail::send_due(conn, &mail, chrono::Utc::now()))
        .await
        .unwrap();
    assert_eq!(report.sent, 2, "{report:?}");
    let mails: Vec<String> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let to_legal = mails
        .iter()
        .find(|m| m.contains("legal@provider.example"))
        .expect("new-order mail");
    assert!(to_legal.contains("counsel@provider.example") && to_legal.contains("PR-2026-0042"));
    let to_authority = mails
        .iter()
        .find(|m| m.contains("paris-1@justice.example"))
        .expect("response-ready mail");
    assert!(to_authority.contains(&id));
    assert!(
        mails.iter().all(|m| !m.contains("alice")),
        "no user data in mail"
    );

    // After the retention period the archive goes; the record and its hash stay.
    let later = chrono::Utc::now() + chrono::Duration::days(91);
    let deleted = api
        .app
        .pool
        .run(move |conn| writ::orders::approval::purge_released(conn, 90, later))
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let (status, problem) = json_of(
        api.send(
            PARIS,
            "GET",
            &format!("/api/v1/orders/{id}/disclosure"),
            b"",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::GONE, "{problem}");
    let (_, audit, _) = olga.get("/audit-log").await;
    assert!(audit.contains("order.package_deleted") && audit.contains("alex, bea"));
}

async fn narrowing_removes_scope_and_voids_earlier_approvals(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    seed_alice(&api.app).await;
    let (_, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let mut alex = Browser::new(&api.app);
    alex.sign_in("alex", PASSWORD).await;
    let csrf = alex.session_csrf().await;
    let (_, preview, _) = alex
        .post_follow(&format!("/orders/{id}/package"), &[("csrf", &csrf)])
        .await;
    let old = hash_in(&preview);
    alex.post(
        &format!("/orders/{id}/approve"),
        &[("csrf", &csrf), ("snapshot_sha256", &old)],
    )
    .await;

    // Widening is refused: a field the decision does not grant.
    let (status, body, _) = alex
        .post(
            &format!("/orders/{id}/narrow"),
            &[
                ("csrf", &csrf),
                ("keep", "ip_history.ip_event_ip"),
                ("reason", "more"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // Narrowing to the user id only.
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
    let (_, read) = json_of(
        api.send(PARIS, "GET", &format!("/api/v1/orders/{id}"), b"")
            .await,
    )
    .await;
    assert_eq!(
        read["status"], "under_review",
        "the earlier approval no longer counts"
    );
    // The old snapshot is superseded: approving it is refused; a new one has one column.
    let mut bea = Browser::new(&api.app);
    bea.sign_in("bea", PASSWORD).await;
    let csrf_b = bea.session_csrf().await;
    let (status, _, _) = bea
        .post(
            &format!("/orders/{id}/approve"),
            &[("csrf", &csrf_b), ("snapshot_sha256", &old)],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, preview, _) = bea
        .post_follow(&format!("/orders/{id}/package"), &[("csrf", &csrf_b)])
        .await;
    assert_ne!(hash_in(&preview), old);
    assert!(
        preview.contains("user id") && !preview.contains("registration ip"),
        "{preview}"
    );

    // Dropping a target: only the username target is kept; the IP target's rows go.
    let (status, body, _) = bea
        .post(
            &format!("/orders/{id}/narrow"),
            &[
                ("csrf", &csrf_b),
                ("keep", "subscriber.user_id"),
                ("targets_listed", "1"),
                ("keep_target", "0"),
                ("reason", "the IP target is not needed"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (_, preview, _) = bea
        .post_follow(&format!("/orders/{id}/package"), &[("csrf", &csrf_b)])
        .await;
    assert!(
        preview.contains("username:alice") && !preview.contains("ip:203.0.113.7"),
        "{preview}"
    );
    // A target that is not in the scope cannot be added back.
    let (status, _, _) = bea
        .post(
            &format!("/orders/{id}/narrow"),
            &[
                ("csrf", &csrf_b),
                ("keep", "subscriber.user_id"),
                ("targets_listed", "1"),
                ("keep_target", "1"),
                ("reason", "widen"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

/// A multipart/form-data body by hand (no JavaScript, like a browser form).
fn multipart(fields: &[(&str, &[u8])], boundary: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        if *name == "document" {
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"order.pdf\"\r\nContent-Type: application/pdf\r\n\r\n").as_bytes(),
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

async fn orders_entered_by_hand_are_decided_from_the_true_receipt_and_not_approved_by_their_clerk(
    backend: Backend,
) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    seed_alice(&api.app).await;
    let mut alex = Browser::new(&api.app);
    alex.sign_in("alex", PASSWORD).await;
    let (status, form, _) = alex.get("/orders/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("fr-parquet-paris"));
    let csrf = Browser::csrf_in(&form);
    let received = (chrono::Utc::now() - chrono::Duration::days(2))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let post = |fields: Vec<(&'static str, Vec<u8>)>, cookie: String| {
        let app = api.app.address.clone();
        async move {
            let refs: Vec<(&str, &[u8])> = fields.iter().map(|(k, v)| (*k, v.as_slice())).collect();
            reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap()
                .post(format!("{app}/orders/new"))
                .header("cookie", cookie)
                .header("content-type", "multipart/form-data; boundary=XyZ")
                .body(multipart(&refs, "XyZ"))
                .send()
                .await
                .unwrap()
        }
    };
    let fields = |csrf: &str, order: &str, pdf: &[u8]| {
        vec![
            ("csrf", csrf.as_bytes().to_vec()),
            ("authority", b"fr-parquet-paris".to_vec()),
            ("received_at", received.as_bytes().to_vec()),
            ("order", order.as_bytes().to_vec()),
            ("document", pdf.to_vec()),
            ("validation", Vec::new()),
        ]
    };
    // Without the CSRF token, or with a broken order, nothing is stored.
    let resp = post(
        fields("wrong", ORDER, b"%PDF-1.4 scan"),
        alex.cookie_header(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = post(
        fields(&csrf, "{\"reference\": 1}", b"%PDF-1.4 scan"),
        alex.cookie_header(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let resp = post(fields(&csrf, ORDER, b"%PDF-1.4 scan"), alex.cookie_header()).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = resp.headers()["location"].to_str().unwrap().to_owned();
    let id = to.trim_start_matches("/orders/").to_owned();
    let (_, page, _) = alex.get(&to).await;
    assert!(page.contains("entered by hand by alex"), "{page}");
    // The deadline runs from the true receipt, two days ago: eight days are left, not ten.
    let deadline: String = api
        .app
        .pool
        .run({
            let id = id.clone();
            move |conn| {
                writ::orders::view(conn, &id, None).map(|v| v.deadline_at.unwrap().to_rfc3339())
            }
        })
        .await
        .unwrap();
    let left = chrono::DateTime::parse_from_rfc3339(&deadline)
        .unwrap()
        .with_timezone(&chrono::Utc)
        - chrono::Utc::now();
    assert!(left.num_days() == 7 || left.num_days() == 8, "{left}");
    // The clerk cannot approve it, and is not offered to (issue 19 bug 4); another approver
    // can.
    assert!(
        !page.contains("Prepare and preview the package"),
        "the clerk is offered an approval he may not give"
    );
    assert!(page.contains("You cannot approve this order now"), "{page}");
    let (status, body, _) = alex
        .post_follow(&format!("/orders/{id}/package"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("entered this order by hand"));
    // The refusal keeps the layout and a way back.
    assert!(body.contains("<nav aria-label=\"Main\">"), "{body}");
    assert!(
        body.contains("<a href=\"/\">Back to your start page</a>"),
        "{body}"
    );
    let mut bea = Browser::new(&api.app);
    bea.sign_in("bea", PASSWORD).await;
    let csrf_b = bea.session_csrf().await;
    let (_, page_b, _) = bea.get(&to).await;
    assert!(
        page_b.contains("Prepare and preview the package"),
        "{page_b}"
    );
    let (status, _, _) = bea
        .post_follow(&format!("/orders/{id}/package"), &[("csrf", &csrf_b)])
        .await;
    assert_eq!(status, StatusCode::OK);
    // An auditor cannot enter orders.
    let mut olga = Browser::new(&api.app);
    olga.sign_in("olga", PASSWORD).await;
    assert_eq!(olga.get("/orders/new").await.0, StatusCode::FORBIDDEN);
}

async fn the_demo_opens_on_a_live_queue(backend: Backend) {
    let db = crate::helpers::TestDb::new(backend);
    let out = crate::cli::writ_for(&db, &[])
        .args([
            "demo",
            "seed",
            "--workspace",
            "--accounts",
            "50",
            "--events-per-account",
            "3",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let users = std::fs::read_to_string(db.dir().join("demo-users.txt")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(db.dir().join("demo-users.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let password = users
        .lines()
        .find(|l| l.starts_with("alex\t"))
        .and_then(|l| l.split('\t').nth(2))
        .unwrap()
        .to_owned();
    let settings = db.settings(&[]);
    let app = crate::helpers::spawn_with_settings(db, settings).await;
    let mut alex = Browser::new(&app);
    assert_eq!(alex.sign_in("alex", &password).await, StatusCode::SEE_OTHER);
    let (status, queue, _) = alex.get("/orders").await;
    assert_eq!(status, StatusCode::OK);
    for reference in [
        "PR-2026-0101",
        "PR-2026-0103-URG",
        "PR-2026-0105-PR",
        "LYON-2026-17",
    ] {
        assert!(
            queue.contains(reference),
            "{reference} missing from the queue"
        );
    }
    assert!(
        queue.contains("Emergency") && queue.contains("Preservation"),
        "{queue}"
    );
    // Page by page, soonest deadline first: the pages split the same rows, in the same order.
    let row_refs = |page: &str| -> Vec<String> {
        page.split("<tr class=")
            .skip(1)
            .filter_map(|row| {
                let start = row.find("<a href=\"/orders/")?;
                let text = &row[start..];
                let text = &text[text.find('>')? + 1..];
                Some(text[..text.find('<')?].to_owned())
            })
            .collect()
    };
    let all = row_refs(&queue);
    assert!(all.len() >= 4, "{all:?}");
    let mut paged = Vec::new();
    for page in 0.. {
        let (status, body, _) = alex.get(&format!("/orders?per_page=2&page={page}")).await;
        assert_eq!(status, StatusCode::OK);
        let rows = row_refs(&body);
        assert!(rows.len() <= 2, "{rows:?}");
        let more = body.contains("rel=\"next\"");
        assert_eq!(body.contains("rel=\"prev\""), page > 0);
        paged.extend(rows);
        if !more {
            break;
        }
        assert!(page < 10, "the pages never end");
    }
    assert_eq!(paged, all);
    for bad in [
        "/orders?per_page=0",
        "/orders?per_page=501",
        "/orders?page=-1",
        "/orders?page=2000000",
    ] {
        let (status, _, _) = alex.get(bad).await;
        assert!(status.is_client_error(), "{bad}: {status}");
    }
    // A second seed refuses to touch a workspace that has users.
    let out = crate::cli::writ_for(&app.db, &[])
        .args(["demo", "seed", "--workspace", "--accounts", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

async fn an_amendment_voids_approvals_given_on_the_old_order(backend: Backend) {
    use base64::Engine;
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    seed_alice(&api.app).await;
    let (_, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let mut alex = Browser::new(&api.app);
    alex.sign_in("alex", PASSWORD).await;
    let csrf = alex.session_csrf().await;
    let (_, preview, _) = alex
        .post_follow(&format!("/orders/{id}/package"), &[("csrf", &csrf)])
        .await;
    let old = hash_in(&preview);
    let (status, _, _) = alex
        .post(
            &format!("/orders/{id}/approve"),
            &[("csrf", &csrf), ("snapshot_sha256", &old)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // The authority amends the order.
    let mut amended: serde_json::Value = serde_json::from_str(ORDER).unwrap();
    amended["categories"] = serde_json::json!(["subscriber"]);
    let body = serde_json::json!({
        "text": "Amended: subscriber data only.",
        "order": amended,
        "document": {"media_type": "application/pdf", "content": base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.7 amended")},
    })
    .to_string();
    let (status, _) = json_of(
        api.send(
            PARIS,
            "POST",
            &format!("/api/v1/orders/{id}/messages"),
            body.as_bytes(),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // The first approval was on the old order: a second approver cannot complete it.
    let mut bea = Browser::new(&api.app);
    bea.sign_in("bea", PASSWORD).await;
    let csrf_b = bea.session_csrf().await;
    let (status, body, _) = bea
        .post(
            &format!("/orders/{id}/approve"),
            &[("csrf", &csrf_b), ("snapshot_sha256", &old)],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, read) = json_of(
        api.send(PARIS, "GET", &format!("/api/v1/orders/{id}"), b"")
            .await,
    )
    .await;
    assert_eq!(read["status"], "under_review");
    let (_, fresh, _) = bea
        .post_follow(&format!("/orders/{id}/package"), &[("csrf", &csrf_b)])
        .await;
    assert_ne!(hash_in(&fresh), old);
    assert!(
        fresh.contains("nobody yet"),
        "the new snapshot starts without approvals"
    );
}

async fn deadlines_and_checkpoints_are_announced_once(backend: Backend) {
    let env = [
        ("WRIT_MAIL__LEGAL_TEAM", "legal@provider.example"),
        ("WRIT_MAIL__AUDITORS", "auditor@firm.example"),
        ("WRIT_API__JOBS_INTERVAL_SECS", "3600"),
    ];
    let api = Api::start(backend, &env).await;
    add_users(&api.app).await;
    let (_, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    assert!(created["deadline_at"].is_string());
    let mail = api.app.db.settings(&env).mail;
    let m = mail.clone();
    let (far, near, again) = api
        .app
        .pool
        .run(move |conn| {
            let now = chrono::Utc::now();
            let far = writ::jobs::remind_deadlines(conn, &m, chrono::Duration::hours(24), now)?;
            let near = writ::jobs::remind_deadlines(conn, &m, chrono::Duration::days(11), now)?;
            let again = writ::jobs::remind_deadlines(conn, &m, chrono::Duration::days(11), now)?;
            Ok::<_, writ::orders::OrderError>((far, near, again))
        })
        .await
        .unwrap();
    assert_eq!((far, near, again), (0, 1, 0), "reminded once, when due");
    // A new checkpoint is pushed to the auditors once.
    assert_eq!(
        api.app.post_as_auditor("/audit/checkpoint").await.status(),
        StatusCode::OK
    );
    let m = mail.clone();
    let pushed = api
        .app
        .pool
        .run(move |conn| {
            let now = chrono::Utc::now();
            Ok::<_, writ::orders::OrderError>((
                writ::jobs::push_checkpoint(conn, &m, now)?,
                writ::jobs::push_checkpoint(conn, &m, now)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(pushed, (true, false));
    let kinds: Vec<String> = api
        .app
        .pool
        .run(|conn| Ok::<_, writ::db::DbError>(writ::mail::list(conn, None, 100).unwrap()))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.kind)
        .collect();
    for kind in ["new_order", "deadline_reminder", "checkpoint"] {
        assert_eq!(
            kinds.iter().filter(|k| *k == kind).count(),
            1,
            "{kind}: {kinds:?}"
        );
    }
    // The legal team sees the outbox.
    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let (status, page, _) = rita.get("/mail").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("deadline reminder") && page.contains("queued"),
        "{page}"
    );
}

async fn tasks_are_closed_and_preservation_holds_extended_within_the_law(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    seed_alice(&api.app).await;
    let mut rita = Browser::new(&api.app);
    rita.sign_in("rita", PASSWORD).await;
    let csrf = rita.session_csrf().await;

    // Matches per target: an IPv4 target without a port is flagged as ambiguous.
    let mut no_port: serde_json::Value = serde_json::from_str(ORDER).unwrap();
    no_port["targets"] = serde_json::json!([{"ip": {"address": "203.0.113.7", "timestamp": "2026-08-30T10:14:03+02:00", "time_zone": "Europe/Paris"}}, {"username": "alice"}]);
    let (_, created) = json_of(api.submit(PARIS, &submission(&no_port.to_string())).await).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, page, _) = rita
        .post_follow(&format!("/orders/{id}/matches"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Ambiguous") && page.contains("u-alice") && page.contains("u-bob"),
        "{page}"
    );
    // The gag forbids telling the user; an order without ex-post validation has no such task.
    let (status, body, _) = rita
        .post(
            &format!("/orders/{id}/user-notified"),
            &[
                ("csrf", &csrf),
                ("date", "2026-11-01"),
                ("channel", "email"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _, _) = rita
        .post(
            &format!("/orders/{id}/ex-post-validation"),
            &[("csrf", &csrf), ("outcome", "received")],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // A preservation order: its holds run to the legal period, extend as often as the law
    // allows, then release.
    let mut pr: serde_json::Value = serde_json::from_str(ORDER).unwrap();
    pr["reference"] = serde_json::json!("PR-2026-PRESERVE");
    pr["instrument"] = serde_json::json!("eu.epoc_pr");
    pr["validator"] = serde_json::json!({"kind": "judge", "person": "Mme J", "authority": "JLD Paris", "country": "FR", "file_number": "JLD-1"});
    pr["emergency"] = serde_json::json!({"justification": "Data at risk of deletion."});
    pr["targets"] = serde_json::json!([{"username": "alice"}]);
    let (status, created) = json_of(api.submit(PARIS, &submission(&pr.to_string())).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["decision"]["action"], "preserve", "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, page, _) = rita.get(&format!("/orders/{id}")).await;
    assert!(page.contains("the data are held until"), "{page}");
    let (_, queue, _) = rita.get("/orders").await;
    assert!(queue.contains("PR-2026-PRESERVE"));
    let mut extended = 0;
    loop {
        let (_, page, _) = rita.get(&format!("/orders/{id}")).await;
        let offered = page.contains("Extend the hold");
        let (status, body, _) = rita
            .post(&format!("/orders/{id}/hold/extend"), &[("csrf", &csrf)])
            .await;
        if status == StatusCode::CONFLICT {
            assert!(
                body.contains("all are used") || body.contains("no extension"),
                "{body}"
            );
            // Issue 19 bug 3: the page stops offering what the law no longer allows.
            assert!(
                !offered,
                "\"Extend the hold\" is offered after the last extension"
            );
            assert!(page.contains("allows no further extension"), "{page}");
            break;
        }
        assert!(offered, "an allowed extension is offered");
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
        extended += 1;
        assert!(extended <= 5, "extensions never run out");
    }
    let (_, page, _) = rita.get(&format!("/orders/{id}")).await;
    assert!(
        page.contains(&format!("({extended} extension(s) granted)")),
        "{page}"
    );
    // The legal team is reminded once before the hold ends.
    let mail = api
        .app
        .db
        .settings(&[("WRIT_MAIL__LEGAL_TEAM", "legal@provider.example")])
        .mail;
    let reminded = api
        .app
        .pool
        .run(move |conn| {
            let now = chrono::Utc::now();
            Ok::<_, writ::orders::OrderError>((
                writ::orders::tasks::remind_tasks(conn, &mail, chrono::Duration::days(1), now)?,
                writ::orders::tasks::remind_tasks(conn, &mail, chrono::Duration::days(400), now)?,
                writ::orders::tasks::remind_tasks(conn, &mail, chrono::Duration::days(400), now)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(reminded, (0, 1, 0), "not yet, then once");
    let (status, _, _) = rita
        .post(
            &format!("/orders/{id}/hold/release"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, read) = json_of(
        api.send(PARIS, "GET", &format!("/api/v1/orders/{id}"), b"")
            .await,
    )
    .await;
    assert_eq!(read["status"], "released");
    let (_, page, _) = rita.get(&format!("/orders/{id}")).await;
    assert!(page.contains("order.hold_released"));
}

async fn simultaneous_second_approvals_release_exactly_once(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    add_users(&api.app).await;
    seed_alice(&api.app).await;
    api.app
        .pool
        .run(|conn| {
            writ::staff::add_user(
                conn,
                &Actor::new(ActorKind::System, "t"),
                "cara",
                "cara",
                Role::LegalApprover,
                PASSWORD,
            )
            .map_err(|e| writ::db::DbError::Setup(e.to_string()))
        })
        .await
        .unwrap();
    let (_, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let mut alex = Browser::new(&api.app);
    alex.sign_in("alex", PASSWORD).await;
    let csrf = alex.session_csrf().await;
    let (_, preview, _) = alex
        .post_follow(&format!("/orders/{id}/package"), &[("csrf", &csrf)])
        .await;
    let hash = hash_in(&preview);
    alex.post(
        &format!("/orders/{id}/approve"),
        &[("csrf", &csrf), ("snapshot_sha256", &hash)],
    )
    .await;
    // Bea and Cara click "Approve" at the same moment.
    let mut bea = Browser::new(&api.app);
    let mut cara = Browser::new(&api.app);
    bea.sign_in("bea", PASSWORD).await;
    cara.sign_in("cara", PASSWORD).await;
    let (csrf_b, csrf_c) = (bea.session_csrf().await, cara.session_csrf().await);
    let path = format!("/orders/{id}/approve");
    let form_b = [
        ("csrf", csrf_b.as_str()),
        ("snapshot_sha256", hash.as_str()),
    ];
    let form_c = [
        ("csrf", csrf_c.as_str()),
        ("snapshot_sha256", hash.as_str()),
    ];
    let (b, c) = tokio::join!(bea.post(&path, &form_b), cara.post(&path, &form_c));
    let mut statuses = [b.0.as_u16(), c.0.as_u16()];
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [303, 409],
        "one releases, the other is told it is done: {b:?} {c:?}"
    );
    let events: Vec<String> = api
        .app
        .pool
        .run(|conn| {
            Ok::<_, writ::db::DbError>(
                writ::audit::log::entries(conn, 0, 100_000)
                    .unwrap()
                    .into_iter()
                    .map(|e| e.event)
                    .collect(),
            )
        })
        .await
        .unwrap();
    assert_eq!(events.iter().filter(|e| *e == "order.released").count(), 1);
    let resp = api
        .send(
            PARIS,
            "GET",
            &format!("/api/v1/orders/{id}/disclosure"),
            b"",
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}
