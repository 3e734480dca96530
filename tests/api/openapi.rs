//! The OpenAPI document: served, valid JSON, OpenAPI 3.1, and unchanged unless on purpose.
//!
//! The snapshot is `tests/snapshots/openapi.json`. After a deliberate API change, regenerate it
//! with `WRIT_UPDATE_SNAPSHOTS=1 cargo test openapi` and review the diff like code.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, spawn_app};

const SNAPSHOT: &str = "tests/snapshots/openapi.json";

#[tokio::test]
async fn the_openapi_document_matches_its_snapshot() {
    let generated = writ::web::openapi::document();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SNAPSHOT);
    if std::env::var("WRIT_UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("{generated}\n")).unwrap();
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("{SNAPSHOT} is missing: run WRIT_UPDATE_SNAPSHOTS=1 cargo test openapi")
    });
    assert!(
        stored.trim_end() == generated.trim_end(),
        "the API description changed; if on purpose, run WRIT_UPDATE_SNAPSHOTS=1 cargo test openapi and review the diff of {SNAPSHOT}"
    );
}

#[tokio::test]
async fn the_document_describes_every_route_and_the_docs_page_is_self_contained() {
    let app = spawn_app(Backend::Sqlite).await;
    let resp = app.get("/api/openapi.json").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = resp.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1", "get"),
        ("/api/v1/orders", "post"),
        ("/api/v1/orders/{id}", "get"),
        ("/api/v1/orders/{id}/withdraw", "post"),
        ("/api/v1/orders/{id}/messages", "get"),
        ("/api/v1/orders/{id}/messages", "post"),
        ("/api/v1/orders/{id}/disclosure", "get"),
        ("/api/v1/rejections/{id}", "get"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is not described"
        );
    }
    let submit = &doc["paths"]["/api/v1/orders"]["post"];
    for status in [
        "201", "400", "401", "403", "409", "413", "415", "422", "429",
    ] {
        assert!(
            submit["responses"][status].is_object(),
            "POST /api/v1/orders lacks {status}"
        );
    }
    assert!(doc["components"]["securitySchemes"]["request_token"].is_object());
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in ["Order", "Decision", "OrderView", "Problem", "Submission"] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }

    // The page and its assets come from Writ itself, under a CSP allowing nothing else.
    let page = app.get("/api/docs/").await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css", "init.js"] {
        assert!(
            html.contains(&format!("/api/docs/{asset}")),
            "{asset} not linked"
        );
        let resp = app.get(&format!("/api/docs/{asset}")).await;
        assert_eq!(resp.status(), StatusCode::OK, "{asset}");
    }
    assert_eq!(
        app.get("/api/docs/other.js").await.status(),
        StatusCode::NOT_FOUND
    );
}
