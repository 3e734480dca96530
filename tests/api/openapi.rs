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

/// Found by the conformance run after identifiers began refusing hidden characters: the schema
/// still let them through, so schema-valid orders were refused. Every identifier's pattern now
/// excludes exactly the characters the server refuses (`writ::text::is_hidden`), checked here
/// over the whole Basic Multilingual Plane against the pattern's excluded class.
#[test]
fn identifier_patterns_refuse_exactly_the_hidden_characters() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SNAPSHOT);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let patterns = [
        &schemas["Order"]["properties"]["reference"]["pattern"],
        &schemas["Order"]["properties"]["addressee"]["pattern"],
        &schemas["Order"]["properties"]["receiving_authority"]["pattern"],
        &schemas["Authority"]["properties"]["person"]["pattern"],
        &schemas["Authority"]["properties"]["authority"]["pattern"],
        &schemas["Authority"]["properties"]["file_number"]["pattern"],
    ];
    for pattern in patterns {
        let pattern = pattern
            .as_str()
            .expect("an identifier field without a pattern");
        let excluded = first_negated_class(pattern);
        for code in 0..=0xFFFFu32 {
            let Some(c) = char::from_u32(code) else {
                continue;
            };
            assert_eq!(
                excluded.iter().any(|(lo, hi)| (*lo..=*hi).contains(&code)),
                writ::text::is_hidden(c),
                "U+{code:04X}: the pattern {pattern} and the server disagree"
            );
        }
    }
}

/// The ranges of the first `[^...]` class of a pattern written with `\xHH`, `\uHHHH`, the
/// escapes `\t \n \r`, literal characters and `-` ranges.
fn first_negated_class(pattern: &str) -> Vec<(u32, u32)> {
    let start = pattern.find("[^").unwrap() + 2;
    let chars: Vec<char> = pattern[start..].chars().collect();
    let mut i = 0;
    let one = |i: &mut usize| -> u32 {
        let c = chars[*i];
        *i += 1;
        if c != '\\' {
            return u32::from(c);
        }
        let e = chars[*i];
        *i += 1;
        let hex = |i: &mut usize, n: usize| {
            let h: String = chars[*i..*i + n].iter().collect();
            *i += n;
            u32::from_str_radix(&h, 16).unwrap()
        };
        match e {
            'x' => hex(i, 2),
            'u' => hex(i, 4),
            't' => 9,
            'n' => 10,
            'r' => 13,
            other => u32::from(other),
        }
    };
    let mut ranges = Vec::new();
    while chars[i] != ']' {
        let lo = one(&mut i);
        if chars[i] == '-' && chars[i + 1] != ']' {
            i += 1;
            let hi = one(&mut i);
            ranges.push((lo, hi));
        } else {
            ranges.push((lo, lo));
        }
    }
    ranges
}
