use crate::both_backends;
use crate::helpers::{Backend, spawn_app, spawn_app_with};

both_backends!(
    healthz_answers_with_a_request_id,
    readyz_is_ready_on_a_migrated_database,
    readyz_is_unavailable_while_migrations_are_pending,
    unknown_routes_get_a_problem_document,
);

async fn healthz_answers_with_a_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    let id = res
        .headers()
        .get("x-request-id")
        .expect("request id")
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");

    // A caller's plain id is echoed so logs on both sides can be joined...
    let res = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("X-Request-Id", "abc-123_X")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123_X");
    // ...but one that could smuggle anything into a log line is replaced.
    let res = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("X-Request-Id", "evil\" level=error msg=forged")
        .send()
        .await
        .unwrap();
    let echoed = res.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(echoed).is_ok(), "{echoed}");
}

async fn readyz_is_ready_on_a_migrated_database(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    let expected = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(body["backend"], expected);
    assert!(body["migrations_applied"].as_u64().unwrap() >= 1);
}

async fn readyz_is_unavailable_while_migrations_are_pending(backend: Backend) {
    let app = spawn_app_with(backend, &[("WRIT_DATABASE__MIGRATE_ON_START", "false")]).await;
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["type"], "urn:writ:problem:not-ready");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("pending") && detail.contains("writ migrate"),
        "{detail}"
    );

    // Once an operator migrates, the same instance becomes ready without a restart.
    let pool = app.pool.clone();
    tokio::task::spawn_blocking(move || {
        writ::db::migrations::run_pending(&mut pool.conn().unwrap()).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(app.get("/readyz").await.status(), 200);
}

async fn unknown_routes_get_a_problem_document(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.get("/no/such/thing?x=1").await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], 404);
    assert_eq!(body["type"], "urn:writ:problem:not-found");
}

#[tokio::test]
async fn readyz_reports_an_unreachable_postgres_database() {
    let Some(admin) = crate::helpers::postgres_admin_url() else {
        eprintln!("WRIT_TEST_POSTGRES_URL is not set: PostgreSQL variant not run");
        return;
    };
    // A database that does not exist: the pool connects lazily, so the server starts, and
    // readiness must say the database is unreachable rather than pretend.
    let url = format!(
        "{}_missing_{}",
        admin.split('?').next().unwrap(),
        uuid::Uuid::new_v4().simple()
    );
    let db = crate::helpers::TestDb::new(Backend::Sqlite);
    let settings = db.settings(&[
        ("WRIT_DATABASE__URL", url.as_str()),
        ("WRIT_DATABASE__MIGRATE_ON_START", "false"),
        ("WRIT_DATABASE__CONNECT_TIMEOUT_SECS", "1"),
    ]);
    let app = writ::web::Application::build(settings).await.unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let res = reqwest::get(format!("{address}/readyz")).await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("unreachable"), "{detail}");
    assert!(
        !detail.contains("127.0.0.1"),
        "no connection details leak: {detail}"
    );
}
