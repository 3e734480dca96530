//! Issue 19, administration: an admin resets a user's password (the user chooses a new one at
//! the next sign-in; their sessions end) and changes roles (audited; never the last admin's).

use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Backend, TestApp};
use crate::workspace::{Browser, PASSWORD, add_users};

both_backends!(
    an_admin_resets_a_password_and_the_user_must_choose_a_new_one,
    an_admin_changes_roles_but_never_demotes_the_last_admin,
);

const TEMPORARY: &str = "temporary password 42";
const CHOSEN: &str = "my very own new password";

/// Every audit leaf of `event`, as JSON.
async fn leaves_of(app: &TestApp, event: &'static str) -> Vec<Value> {
    app.pool
        .run(move |conn| {
            let all = writ::audit::log::entries(conn, 0, 100_000).unwrap();
            Ok::<_, writ::db::DbError>(
                all.into_iter()
                    .map(|e| serde_json::from_str::<Value>(&e.leaf).unwrap())
                    .filter(|l| l["event"] == event)
                    .collect(),
            )
        })
        .await
        .unwrap()
}

async fn signed_in(app: &TestApp, user: &str) -> (Browser, String) {
    let mut b = Browser::new(app);
    assert_eq!(b.sign_in(user, PASSWORD).await, StatusCode::SEE_OTHER);
    let csrf = b.session_csrf().await;
    (b, csrf)
}

async fn an_admin_resets_a_password_and_the_user_must_choose_a_new_one(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    add_users(&app).await;
    let (mut rita, rita_csrf) = signed_in(&app, "rita").await;
    let (mut adam, csrf) = signed_in(&app, "adam").await;
    let reset = "/admin/users/rita/password";

    // The users page offers it beside each colleague.
    let (_, page, _) = adam.get("/admin/users").await;
    assert!(
        page.contains("action=\"/admin/users/rita/password\""),
        "{page}"
    );

    // Refused: without the box ticked, without the form's token, by a non-admin, a password
    // too short. Nothing changes: rita's session lives on.
    let (status, body, _) = adam
        .post(reset, &[("csrf", &csrf), ("password", TEMPORARY)])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _, _) = adam
        .post(
            reset,
            &[
                ("csrf", "forged"),
                ("password", TEMPORARY),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = rita
        .post(
            "/admin/users/alex/password",
            &[
                ("csrf", &rita_csrf),
                ("password", TEMPORARY),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = adam
        .post(
            reset,
            &[("csrf", &csrf), ("password", "short"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _, _) = adam
        .post(
            "/admin/users/adam/password",
            &[("csrf", &csrf), ("password", TEMPORARY), ("confirm", "yes")],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "one's own: the account page"
    );
    assert_eq!(rita.get("/orders").await.0, StatusCode::OK);
    assert!(leaves_of(&app, "staff.password_reset").await.is_empty());

    // Reset: rita's session ends, her old password is refused, the temporary one signs her in.
    let (status, body, _) = adam
        .post(
            reset,
            &[("csrf", &csrf), ("password", TEMPORARY), ("confirm", "yes")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(
        rita.get("/orders").await.2.as_deref(),
        Some("/login"),
        "the old session ended"
    );
    let mut again = Browser::new(&app);
    assert_eq!(
        again.sign_in("rita", PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    let mut rita = Browser::new(&app);
    assert_eq!(rita.sign_in("rita", TEMPORARY).await, StatusCode::SEE_OTHER);

    // Until she chooses a new password, every page sends her to her account.
    assert_eq!(rita.get("/").await.2.as_deref(), Some("/account"));
    for path in ["/orders", "/dashboard", "/notifications"] {
        let (status, _, to) = rita.get(path).await;
        assert_eq!(
            (status, to.as_deref()),
            (StatusCode::SEE_OTHER, Some("/account")),
            "{path}"
        );
    }
    let (status, page, _) = rita.get("/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("An administrator reset your password"),
        "{page}"
    );
    let csrf = Browser::csrf_in(&page);
    // The temporary password again is not a new one.
    let (status, _, _) = rita
        .post(
            "/account/password",
            &[("csrf", &csrf), ("current", TEMPORARY), ("new", TEMPORARY)],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(rita.get("/orders").await.2.as_deref(), Some("/account"));
    let (status, _, _) = rita
        .post(
            "/account/password",
            &[("csrf", &csrf), ("current", TEMPORARY), ("new", CHOSEN)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(rita.get("/orders").await.0, StatusCode::OK);
    let (_, page, _) = rita.get("/account").await;
    assert!(!page.contains("An administrator reset your password"));
    let mut later = Browser::new(&app);
    assert_eq!(later.sign_in("rita", CHOSEN).await, StatusCode::SEE_OTHER);
    assert_eq!(later.get("/").await.2.as_deref(), Some("/orders"));

    // Audited, by the admin, naming the user and never the password.
    let resets = leaves_of(&app, "staff.password_reset").await;
    assert_eq!(resets.len(), 1, "{resets:?}");
    assert_eq!(resets[0]["actor"]["id"], "adam");
    assert_eq!(resets[0]["refs"]["user"], "rita");
    assert_eq!(resets[0]["refs"]["sessions_ended"], 1);
    assert!(!resets[0].to_string().contains(TEMPORARY));
}

async fn an_admin_changes_roles_but_never_demotes_the_last_admin(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    add_users(&app).await;
    let (mut rita, rita_csrf) = signed_in(&app, "rita").await;
    let (mut adam, csrf) = signed_in(&app, "adam").await;

    // Refused: a non-admin, a forged form, a role that does not exist.
    let (status, _, _) = rita
        .post(
            "/admin/users/rita/role",
            &[("csrf", &rita_csrf), ("role", "admin")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = adam
        .post(
            "/admin/users/rita/role",
            &[("csrf", "forged"), ("role", "auditor")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body, _) = adam
        .post(
            "/admin/users/rita/role",
            &[("csrf", &csrf), ("role", "superuser")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(rita.get("/audit-log").await.0, StatusCode::FORBIDDEN);

    // A reviewer becomes an auditor: her open session takes the new role at once.
    let (status, _, _) = adam
        .post(
            "/admin/users/rita/role",
            &[("csrf", &csrf), ("role", "auditor")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(rita.get("/audit-log").await.0, StatusCode::OK);
    assert_eq!(rita.get("/mail").await.0, StatusCode::FORBIDDEN);

    // The only admin cannot step down...
    let (status, body, _) = adam
        .post(
            "/admin/users/adam/role",
            &[("csrf", &csrf), ("role", "auditor")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("last enabled administrator"), "{body}");
    assert_eq!(adam.get("/admin/users").await.0, StatusCode::OK);
    // ...a disabled admin does not count as another...
    let (status, _, _) = adam
        .post(
            "/admin/users/olga/role",
            &[("csrf", &csrf), ("role", "admin")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = adam
        .post(
            "/admin/users/olga/disable",
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = adam
        .post(
            "/admin/users/adam/role",
            &[("csrf", &csrf), ("role", "auditor")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // ...an enabled one does.
    let (status, _, _) = adam
        .post(
            "/admin/users/olga/disable",
            &[("csrf", &csrf), ("enable", "1")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = adam
        .post(
            "/admin/users/adam/role",
            &[("csrf", &csrf), ("role", "legal_reviewer")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(adam.get("/admin/users").await.0, StatusCode::FORBIDDEN);
    // Now olga is the last admin, and cannot be demoted either.
    let (mut olga, olga_csrf) = signed_in(&app, "olga").await;
    let (status, _, _) = olga
        .post(
            "/admin/users/olga/role",
            &[("csrf", &olga_csrf), ("role", "auditor")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Each change audited with the old and new role, by the admin who made it.
    let changes = leaves_of(&app, "staff.role_changed").await;
    let seen: Vec<(String, String, String, String)> = changes
        .iter()
        .map(|l| {
            (
                l["actor"]["id"].as_str().unwrap().to_owned(),
                l["refs"]["user"].as_str().unwrap().to_owned(),
                l["refs"]["from"].as_str().unwrap().to_owned(),
                l["refs"]["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String, String)> = [
        ("adam", "rita", "legal_reviewer", "auditor"),
        ("adam", "olga", "auditor", "admin"),
        ("adam", "adam", "admin", "legal_reviewer"),
    ]
    .iter()
    .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
    .collect();
    assert_eq!(seen, expected);
}
