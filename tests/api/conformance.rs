//! What the API conformance run (.ci/schemathesis/run) found, kept as regressions: a path of
//! the API asked with a method it does not serve is a 405 with `Allow`, and the server accepts
//! exactly what its OpenAPI document describes (no 500, no refusal of a described value).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::Backend;
use crate::orders::{Api, ORDER, PARIS, json_of, submission};

both_backends!(
    undeclared_methods_on_api_paths_answer_405_with_allow,
    withdrawal_takes_null_and_checks_its_reason_before_the_state,
    order_fields_are_accepted_and_refused_as_the_schema_says,
);

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "TRACE", "HEAD"];

/// Every path of the served document, asked with every method it does not declare.
async fn undeclared_methods_on_api_paths_answer_405_with_allow(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    let doc: Value = api.app.get("/api/openapi.json").await.json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 8, "{paths:?}");
    let mut probed = 0;
    for (template, item) in paths {
        let path = template.replace("{id}", "some-id");
        let declared: Vec<String> = item
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_ascii_uppercase())
            .filter(|m| METHODS.contains(&m.as_str()))
            .collect();
        assert!(!declared.is_empty(), "{template} declares no method");
        for method in METHODS.iter().filter(|m| !declared.iter().any(|d| d == *m)) {
            let response = api
                .app
                .client
                .request(
                    method.parse().unwrap(),
                    format!("{}{path}", api.app.address),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let allow = response
                .headers()
                .get("allow")
                .unwrap_or_else(|| panic!("{method} {path}: no Allow header"))
                .to_str()
                .unwrap()
                .to_owned();
            let mut allowed: Vec<&str> = allow.split(", ").collect();
            allowed.sort_unstable();
            let mut expected: Vec<&str> = declared.iter().map(String::as_str).collect();
            expected.sort_unstable();
            assert_eq!(allowed, expected, "{method} {path}");
            if *method != "HEAD" {
                let (_, problem) = json_of(response).await;
                assert_eq!(problem["type"], "urn:writ:problem:method-not-allowed");
                assert!(
                    problem["detail"].as_str().unwrap().contains(*method),
                    "{problem}"
                );
            }
            probed += 1;
        }
    }
    assert!(probed >= 40, "only {probed} probes");
    // A path the document does not describe is still a 404, whatever the method.
    for method in ["GET", "DELETE"] {
        let response = api
            .app
            .client
            .request(
                method.parse().unwrap(),
                format!("{}/api/v1/no-such-thing", api.app.address),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method}");
        assert!(response.headers().get("allow").is_none());
    }
    // The declared methods still reach their handlers (here: refused for want of a token).
    let response = api
        .app
        .client
        .get(format!("{}/api/v1/orders/some-id", api.app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn withdrawal_takes_null_and_checks_its_reason_before_the_state(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    let (status, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let path = format!(
        "/api/v1/orders/{}/withdraw",
        created["id"].as_str().unwrap()
    );
    // The document allows a `null` body: it withdraws without a reason.
    let (status, withdrawn) = json_of(api.send(PARIS, "POST", &path, b"null").await).await;
    assert_eq!(status, StatusCode::OK, "{withdrawn}");
    assert_eq!(withdrawn["status"], "withdrawn");
    // Withdrawing again answers as the first time, but a reason the document forbids is
    // refused whatever the order's state.
    let (status, again) = json_of(api.send(PARIS, "POST", &path, b"{}").await).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    let (status, problem) = json_of(
        api.send(PARIS, "POST", &path, br#"{"reason": " \t "}"#)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "reason", "{problem}");
    // Not an object at all.
    let (status, problem) = json_of(api.send(PARIS, "POST", &path, b"[]").await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
}

fn order_with(edit: impl FnOnce(&mut Value)) -> String {
    let mut order: Value = serde_json::from_str(ORDER).unwrap();
    edit(&mut order);
    submission(&order.to_string())
}

async fn order_fields_are_accepted_and_refused_as_the_schema_says(backend: Backend) {
    let api = Api::start(backend, &[]).await;
    let accepted = [
        // JSON Schema counts 51234.0 as an integer.
        (
            "a port written as a whole float",
            order_with(|o| o["targets"][1]["ip"]["port"] = json!(51234.0)),
        ),
        (
            "a whole float of months",
            order_with(|o| o["offence"]["max_custodial_months"] = json!(60.0)),
        ),
        // 200 characters of two bytes each: the limit counts characters.
        (
            "a user id of 200 characters",
            order_with(|o| o["targets"][0] = json!({"user_id": "é".repeat(200)})),
        ),
    ];
    for (what, body) in accepted {
        let (status, answer) = json_of(api.submit(PARIS, &body).await).await;
        assert_eq!(status, StatusCode::CREATED, "{what}: {answer}");
    }
    let refused = [
        // Went into the audit log as is, which refused it: a 500.
        (
            order_with(|o| o["instrument"] = json!("eu.\u{1}epoc")),
            "order.instrument",
        ),
        (
            order_with(|o| o["targets"][1]["ip"]["port"] = json!(51234.5)),
            "order.targets[1].ip.port",
        ),
        (
            order_with(|o| o["targets"][1]["ip"]["port"] = json!(70000.0)),
            "order.targets[1].ip.port",
        ),
        (
            order_with(|o| o["targets"][0] = json!({"user_id": "é".repeat(201)})),
            "order.targets[0].user_id",
        ),
        // serde reads a struct from an array of its fields; the schema says object.
        (
            order_with(|o| {
                o["issuer"] = json!(["prosecutor", "M. Dupont", "Parquet de Paris", "FR"]);
            }),
            "order.issuer",
        ),
        // The validator is named under the same rules as the issuer.
        (
            order_with(|o| {
                o["validator"] = json!({"kind": "judge", "person": " ", "authority": "TJ Paris", "country": "FR"});
            }),
            "order.validator.person",
        ),
        (
            order_with(|o| {
                o["validator"] = json!({"kind": "judge", "person": "Mme Juge", "authority": "", "country": "FR"});
            }),
            "order.validator.authority",
        ),
    ];
    for (body, field) in refused {
        let (status, problem) = json_of(api.submit(PARIS, &body).await).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {problem}"
        );
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, [field], "{problem}");
    }
}
