//! HTTP hardening, black-box: security headers on every kind of response, request-head and
//! body limits, the slow-client timeout, and TLS in `writ serve`.
//!
//! Tests whose outcome depends on the database (sign-in, feeders, order intake) run on both
//! backends; the head limits, timeouts and TLS start-up never reach the database and run on
//! SQLite only.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use writ::web::Application;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, TestDb, spawn_app, spawn_app_with, spawn_with_settings};
use crate::workspace::{Browser, PASSWORD, add_users};

both_backends!(
    every_response_carries_a_content_security_policy,
    hsts_is_sent_only_when_a_tls_proxy_is_declared,
    oversized_bodies_get_413_naming_the_limit,
    workspace_uploads_and_forms_over_their_limits_get_413,
);

const NON_HTML_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// The nonce of an HTML page's policy, after checking the policy's fixed parts.
fn page_nonce(csp: &str) -> String {
    for part in [
        "default-src 'none'",
        "img-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "`{part}` missing from {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    let at = csp.find("script-src 'nonce-").expect("a script nonce") + "script-src 'nonce-".len();
    let nonce = csp[at..].split('\'').next().unwrap().to_owned();
    assert!(nonce.len() >= 22, "a 128-bit nonce: {nonce}");
    assert!(
        csp.contains(&format!("style-src 'self' 'nonce-{nonce}'")),
        "the style nonce is the same: {csp}"
    );
    nonce
}

/// Same-origin files an HTML page loads (style sheets, scripts, images).
fn page_assets(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    for tag in page.split('<').skip(1) {
        let name = tag
            .split(|c: char| c.is_whitespace() || c == '>')
            .next()
            .unwrap();
        let attr = match name {
            "link" => "href=\"",
            "script" | "img" => "src=\"",
            _ => continue,
        };
        if let Some(at) = tag.find(attr) {
            let url = tag[at + attr.len()..].split('"').next().unwrap();
            assert!(
                url.starts_with('/') && !url.starts_with("//"),
                "a page loads only Writ's own files, not {url}"
            );
            out.push(url.to_owned());
        }
    }
    out
}

async fn every_response_carries_a_content_security_policy(backend: Backend) {
    let app = spawn_app(backend).await;
    add_users(&app).await;
    let client = reqwest::Client::new();

    // An HTML page: a fresh nonce for every response.
    let first = app.get("/login").await;
    assert_eq!(first.status(), 200);
    assert!(
        header(&first, "content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let csp = header(&first, "content-security-policy").unwrap();
    let nonce = page_nonce(&csp);
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(header(&first, name).as_deref(), Some(value), "{name}");
    }
    assert_eq!(
        header(&first, "strict-transport-security"),
        None,
        "no HSTS on plain HTTP"
    );
    let page = first.text().await.unwrap();
    let second = page_nonce(&header(&app.get("/login").await, "content-security-policy").unwrap());
    assert_ne!(nonce, second, "the nonce is fresh per response");

    // The files the page loads come from Writ ('self') and load.
    let assets = page_assets(&page);
    assert!(
        assets.contains(&"/static/writ.css".to_owned()),
        "{assets:?}"
    );
    for asset in &assets {
        let res = app.get(asset).await;
        assert_eq!(res.status(), 200, "{asset}");
        assert_eq!(
            header(&res, "content-security-policy").as_deref(),
            Some(NON_HTML_CSP),
            "{asset}"
        );
    }

    // Signed-in pages, and the workspace's HTML error page, have the page policy too.
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in("rita", PASSWORD).await, StatusCode::SEE_OTHER);
    for (path, status) in [("/orders", 200), ("/orders/no-such-order", 404)] {
        let res = client
            .get(format!("{}{path}", app.address))
            .header("cookie", b.cookie_header())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{path}");
        assert!(
            header(&res, "content-type")
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        page_nonce(&header(&res, "content-security-policy").unwrap());
        for asset in page_assets(&res.text().await.unwrap()) {
            assert_eq!(app.get(&asset).await.status(), 200, "{asset} from {path}");
        }
    }

    // JSON, problem documents, redirects and files allow nothing at all.
    for (path, status) in [
        ("/healthz", 200),
        ("/api/v1", 200),
        ("/api/openapi.json", 200),
        ("/no/such/route", 404),
        ("/packages/public-key", 200),
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), status, "{path}");
        assert_eq!(
            header(&res, "content-security-policy").as_deref(),
            Some(NON_HTML_CSP),
            "{path}"
        );
    }
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/orders", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 303);
    assert_eq!(
        header(&redirect, "content-security-policy").as_deref(),
        Some(NON_HTML_CSP)
    );

    // The API docs page keeps its own policy (scripts from Writ only, no framing), and its
    // vendored files load from Writ.
    let docs = app.get("/api/docs/").await;
    let csp = header(&docs, "content-security-policy").unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "`{part}` missing from {csp}");
    }
    let assets = page_assets(&docs.text().await.unwrap());
    assert_eq!(assets.len(), 3, "{assets:?}");
    for asset in assets {
        assert_eq!(app.get(&asset).await.status(), 200, "{asset}");
    }
}

/// Every `<script>` and `<style>` in the templates is a file from Writ or carries the nonce,
/// and there is no inline code a nonce cannot cover (style or event-handler attributes,
/// `javascript:` URLs): what a browser would refuse under the policy.
#[test]
fn templates_have_no_inline_code_outside_the_nonce() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                // Vendored files are served as files (script-src 'self'), not templates.
                if path.file_name().unwrap() != "vendor" {
                    dirs.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "html") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 10, "the templates were found: {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap().to_ascii_lowercase();
        let name = file.display();
        for tag in text.split('<').skip(1) {
            let end = tag.find('>').unwrap_or(tag.len());
            let head = &tag[..end];
            let element = head.split_whitespace().next().unwrap_or("");
            let nonced = head.contains("nonce=\"{{");
            match element {
                "script" => assert!(
                    head.contains(" src=\"/") || nonced,
                    "{name}: inline <{head}> without the nonce"
                ),
                "style" => assert!(nonced, "{name}: <{head}> without the nonce"),
                _ => {}
            }
            let words: Vec<&str> = head.split_whitespace().collect();
            for word in &words[1.min(words.len())..] {
                assert!(
                    !word.starts_with("style="),
                    "{name}: style attribute in <{head}>"
                );
                assert!(
                    !(word.starts_with("on") && word.contains('=')),
                    "{name}: event handler attribute in <{head}>"
                );
            }
            assert!(
                !head.contains("javascript:"),
                "{name}: javascript: URL in <{head}>"
            );
        }
    }
}

async fn hsts_is_sent_only_when_a_tls_proxy_is_declared(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("WRIT_SERVER__BEHIND_TLS_PROXY", "true"),
            ("WRIT_SERVER__HSTS_MAX_AGE_SECS", "63072000"),
        ],
    )
    .await;
    for path in ["/healthz", "/login", "/no/such/route"] {
        let res = app.get(path).await;
        assert_eq!(
            header(&res, "strict-transport-security").as_deref(),
            Some("max-age=63072000; includeSubDomains"),
            "{path}"
        );
    }
}

async fn oversized_bodies_get_413_naming_the_limit(backend: Backend) {
    let db = TestDb::new(backend);
    let (token, hash) = writ::web::auth::new_token().unwrap();
    let mut settings = db.settings(&[
        ("WRIT_METADATA__INGEST_LIMIT_BYTES", "2048"),
        ("WRIT_ETSI__MESSAGE_LIMIT_BYTES", "4096"),
    ]);
    settings.metadata.feeders = vec![writ::settings::Feeder {
        name: "login-service".into(),
        token_sha256: hash,
    }];
    let api_limit = settings.api.document_limit_bytes / 3 * 4 + 1024 * 1024;
    let app = spawn_with_settings(db, settings).await;

    async fn assert_413(res: reqwest::Response, limit: usize, what: &str) {
        assert_eq!(res.status(), 413, "{what}");
        assert_eq!(
            header(&res, "content-type").as_deref(),
            Some("application/problem+json"),
            "{what}"
        );
        let problem: serde_json::Value = res.json().await.unwrap();
        assert_eq!(problem["status"], 413, "{what}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(&limit.to_string()), "{what}: {detail}");
    }

    // Ingest (CSV or JSON Lines), from a real feeder, declared too large.
    let res = app
        .client
        .post(format!("{}/api/v1/ingest/accounts", app.address))
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body("x".repeat(3000))
        .send()
        .await
        .unwrap();
    let problem_detail = {
        assert_eq!(res.status(), 413);
        let p: serde_json::Value = res.json().await.unwrap();
        p["detail"].as_str().unwrap().to_owned()
    };
    assert!(
        problem_detail.contains("2048") && problem_detail.contains("metadata.ingest_limit_bytes"),
        "{problem_detail}"
    );
    // The same without a declared length (chunked): found while reading.
    let head = raw_chunked_post(
        &app,
        "/api/v1/ingest/accounts",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("content-type", "text/csv"),
        ],
        3000,
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("metadata.ingest_limit_bytes"), "{head}");
    // A body within the limit is taken.
    let ok = app
        .client
        .post(format!("{}/api/v1/ingest/ip-events", app.address))
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body("external_id,ip,port,at,kind\ndemo-00000001,198.51.100.4,1234,2026-01-01T00:00:00Z,login\n")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "{}", ok.text().await.unwrap());

    // HI-1 XML and the JSON order API: refused before authentication, by declared length.
    let res = app
        .client
        .post(format!("{}/etsi/hi1", app.address))
        .header("content-type", "application/xml")
        .body(format!("<HI1Message>{}</HI1Message>", "x".repeat(5000)))
        .send()
        .await
        .unwrap();
    assert_413(res, 4096, "HI-1").await;
    let res = app
        .client
        .post(format!("{}/api/v1/orders", app.address))
        .header("content-type", "application/json")
        .body(vec![b' '; api_limit + 1])
        .send()
        .await
        .unwrap();
    assert_413(res, api_limit, "orders").await;
}

/// POSTs a chunked body of `size` bytes on a raw connection; returns the response as text.
async fn raw_chunked_post(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
    size: usize,
) -> String {
    let addr = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("3e8\r\n{}\r\n", "a".repeat(1000));
    for _ in 0..size.div_ceil(1000) {
        // The server may answer and close before the whole body is sent.
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn workspace_uploads_and_forms_over_their_limits_get_413(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("WRIT_API__DOCUMENT_LIMIT_BYTES", "1024"),
            ("WRIT_SERVER__FORM_LIMIT_BYTES", "2048"),
        ],
    )
    .await;
    add_users(&app).await;
    let client = reqwest::Client::new();

    // A URL-encoded form over server.form_limit_bytes (sign-in needs no session).
    let res = client
        .post(format!("{}/login", app.address))
        .form(&[("username", "rita"), ("password", &"p".repeat(3000))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("2048") && page.contains("server.form_limit_bytes"),
        "{page}"
    );

    // An order document over api.document_limit_bytes, uploaded in the workspace.
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in("rita", PASSWORD).await, StatusCode::SEE_OTHER);
    let csrf = b.session_csrf().await;
    let boundary = "writ-test-boundary";
    let mut body = Vec::new();
    for (name, file, value) in [
        ("csrf", None, csrf.into_bytes()),
        ("document", Some("order.pdf"), vec![b'%'; 2000]),
    ] {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!("content-disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\ncontent-type: application/pdf\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("content-disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(&value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let res = client
        .post(format!("{}/orders/new", app.address))
        .header("cookie", b.cookie_header())
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("`document`")
            && page.contains("1024")
            && page.contains("api.document_limit_bytes"),
        "{page}"
    );
}

/// Sends `head` on a raw connection and returns the first response line.
async fn status_line_for(app: &TestApp, head: &str) -> String {
    let addr = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_heads_get_431_naming_the_limit() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("WRIT_SERVER__MAX_HEADER_BYTES", "4096"),
            ("WRIT_SERVER__MAX_HEADERS", "20"),
        ],
    )
    .await;
    let get = |headers: Vec<(String, String)>| {
        let mut req = app.client.get(format!("{}/healthz", app.address));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    // Within both limits.
    let res = get(vec![("x-pad".into(), "a".repeat(3000))]).await.unwrap();
    assert_eq!(res.status(), 200);
    // Too many bytes.
    let res = get(vec![("x-pad".into(), "a".repeat(5000))]).await.unwrap();
    assert_eq!(res.status(), 431);
    assert_eq!(
        header(&res, "content-type").as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(
        header(&res, "content-security-policy").as_deref(),
        Some(NON_HTML_CSP)
    );
    let p: serde_json::Value = res.json().await.unwrap();
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("4096") && detail.contains("server.max_header_bytes"),
        "{detail}"
    );
    // A long URL counts too.
    let res = app.get(&format!("/healthz?pad={}", "a".repeat(5000))).await;
    assert_eq!(res.status(), 431);
    // Too many header lines (reqwest adds a few of its own).
    let many = (0..20)
        .map(|i| (format!("x-h{i}"), "1".to_owned()))
        .collect();
    let res = get(many).await.unwrap();
    assert_eq!(res.status(), 431);
    let p: serde_json::Value = res.json().await.unwrap();
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("20") && detail.contains("server.max_headers"),
        "{detail}"
    );
    // Past what the HTTP parser holds at all (128 KiB, 96 headers): 431, never a hang or 5xx.
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-pad: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let line = status_line_for(&app, &huge).await;
    assert!(
        line.is_empty() || line.starts_with("HTTP/1.1 431"),
        "{line}"
    );
    let mut hundred = "GET /healthz HTTP/1.1\r\nhost: x\r\n".to_owned();
    for i in 0..100 {
        hundred.push_str(&format!("x-h{i}: 1\r\n"));
    }
    hundred.push_str("\r\n");
    let line = status_line_for(&app, &hundred).await;
    assert!(
        line.is_empty() || line.starts_with("HTTP/1.1 431"),
        "{line}"
    );
}

/// A slowloris client: opens a connection and dribbles its headers, one line every 200 ms,
/// never finishing. The server must answer 408 and close within the configured timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[("WRIT_SERVER__CLIENT_REQUEST_TIMEOUT_SECS", "1")],
    )
    .await;
    let addr = app.address.trim_start_matches("http://").to_owned();

    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        let _ = read.read_to_end(&mut out).await;
        (
            started.elapsed(),
            String::from_utf8_lossy(&out).into_owned(),
        )
    });
    write.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    for i in 0..50 {
        if reader.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if write
            .write_all(format!("x-slow-{i}: a\r\n").as_bytes())
            .await
            .is_err()
        {
            break;
        }
    }
    let (closed_after, answer) = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("the server closed the connection")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    eprintln!("slow client disconnected after {closed_after:?} (timeout 1 s)");
    assert!(
        closed_after < Duration::from_secs(3),
        "closed after {closed_after:?}"
    );
    assert!(
        closed_after >= Duration::from_millis(900),
        "closed after {closed_after:?}"
    );

    // A connection that sends nothing at all is closed too.
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut out))
        .await
        .expect("the idle connection was closed")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));

    // A client that finishes its headers in time is served.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

/// Limits and timeouts are checked when the settings load, with the key named.
#[test]
fn bad_limits_and_half_tls_settings_stop_start_up() {
    let db = TestDb::new(Backend::Sqlite);
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let load = |extra: &[(&str, &str)]| {
        let mut env: std::collections::HashMap<String, String> = db.env().into_iter().collect();
        for (k, v) in extra {
            env.insert((*k).into(), (*v).into());
        }
        writ::settings::Settings::load(&writ::settings::Sources {
            base_dir: Some(manifest.clone()),
            file: None,
            env: Some(env),
        })
        .err()
        .map(|e| e.to_string())
    };
    assert_eq!(load(&[]), None);
    let cert = manifest.join("tests/fixtures/tls/cert.pem");
    for (extra, key) in [
        (
            vec![("WRIT_SERVER__MAX_HEADERS", "200")],
            "server.max_headers",
        ),
        (
            vec![("WRIT_SERVER__MAX_HEADER_BYTES", "100")],
            "server.max_header_bytes",
        ),
        (
            vec![("WRIT_SERVER__CLIENT_REQUEST_TIMEOUT_SECS", "0")],
            "server.client_request_timeout_secs",
        ),
        (
            vec![("WRIT_SERVER__CLIENT_DISCONNECT_TIMEOUT_SECS", "0")],
            "server.client_disconnect_timeout_secs",
        ),
        (
            vec![("WRIT_SERVER__BODY_READ_TIMEOUT_SECS", "0")],
            "server.body_read_timeout_secs",
        ),
        (
            vec![("WRIT_SERVER__FORM_LIMIT_BYTES", "10")],
            "server.form_limit_bytes",
        ),
        (
            vec![("WRIT_SERVER__TLS__CERTIFICATE_FILE", cert.to_str().unwrap())],
            "server.tls.private_key_file",
        ),
    ] {
        let err = load(&extra).unwrap_or_else(|| panic!("{extra:?} was accepted"));
        assert!(err.contains(key), "{err}");
    }
}

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
        .display()
        .to_string()
}

fn tls_client() -> reqwest::Client {
    let ca = std::fs::read(fixture("ca.pem")).unwrap();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .https_only(true)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writ_serves_https_with_hsts_and_refuses_plain_http_on_its_port() {
    let (cert, key) = (fixture("cert.pem"), fixture("key.pem"));
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("WRIT_SERVER__TLS__CERTIFICATE_FILE", &cert),
            ("WRIT_SERVER__TLS__PRIVATE_KEY_FILE", &key),
        ],
    )
    .await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let client = tls_client();
    for host in ["localhost", "127.0.0.1"] {
        let res = client
            .get(format!("https://{host}:{port}/healthz"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("https to {host}: {e:?}"));
        assert_eq!(res.status(), 200);
        assert_eq!(
            header(&res, "strict-transport-security").as_deref(),
            Some("max-age=31536000; includeSubDomains")
        );
        assert_eq!(
            header(&res, "content-security-policy").as_deref(),
            Some(NON_HTML_CSP)
        );
    }
    // TLS 1.2 is still served; (rustls speaks nothing older).
    let tls12 = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(fixture("ca.pem")).unwrap()).unwrap(),
        )
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    let res = tls12
        .get(format!("https://localhost:{port}/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    page_nonce(&header(&res, "content-security-policy").unwrap());
    // A client that does not trust the certificate gets no connection.
    let untrusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    assert!(
        untrusting
            .get(format!("https://localhost:{port}/healthz"))
            .send()
            .await
            .is_err()
    );
    // Plain HTTP to the TLS port fails: no HTTP answer at all.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    let line = status_line_for(&app, "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(!line.starts_with("HTTP/1.1 200"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_unreadable_or_mismatched_key_refuses_to_start() {
    let db = TestDb::new(Backend::Sqlite);
    let not_pem = db.dir().join("not-a-key.pem");
    std::fs::write(&not_pem, "not a key\n").unwrap();
    let missing = db.dir().join("missing.pem").display().to_string();
    let not_pem = not_pem.display().to_string();
    let cases = [
        (
            fixture("cert.pem"),
            fixture("other-key.pem"),
            "does not fit the certificate",
        ),
        (
            fixture("cert.pem"),
            missing.clone(),
            "server.tls.private_key_file",
        ),
        (
            missing.clone(),
            fixture("key.pem"),
            "server.tls.certificate_file",
        ),
        (
            fixture("cert.pem"),
            not_pem.clone(),
            "server.tls.private_key_file",
        ),
        (
            not_pem.clone(),
            fixture("key.pem"),
            "server.tls.certificate_file",
        ),
        // A key given as the certificate: no CERTIFICATE block.
        (
            fixture("key.pem"),
            fixture("key.pem"),
            "server.tls.certificate_file",
        ),
    ];
    for (cert, key, expected) in cases {
        let settings = db.settings(&[
            ("WRIT_SERVER__TLS__CERTIFICATE_FILE", &cert),
            ("WRIT_SERVER__TLS__PRIVATE_KEY_FILE", &key),
        ]);
        let err = match Application::build(settings).await {
            Ok(_) => panic!("started with {cert} and {key}"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(expected), "{err}");
        // The key file's content never appears in the message.
        assert!(!err.contains("BEGIN"), "{err}");
    }

    // `writ serve` itself says so and exits non-zero, before it touches the database.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_writ"))
        .arg("serve")
        .envs(db.env())
        .env("WRIT_SERVER__PORT", "0")
        .env("WRIT_SERVER__TLS__CERTIFICATE_FILE", fixture("cert.pem"))
        .env(
            "WRIT_SERVER__TLS__PRIVATE_KEY_FILE",
            fixture("other-key.pem"),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not fit the certificate") && stderr.contains("other-key.pem"),
        "{stderr}"
    );
}

/// actix-web times only a connection's first request head; on a kept-alive connection a
/// later head can be dribbled for as long as the client likes. With `keep_alive_secs = 0`
/// every connection serves one request and closes, so there is no later head to dribble.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keep_alive_a_connection_serves_one_request_and_closes() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("WRIT_SERVER__CLIENT_REQUEST_TIMEOUT_SECS", "1"),
            ("WRIT_SERVER__KEEP_ALIVE_SECS", "0"),
        ],
    )
    .await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // One whole request, then the start of a second one that never ends.
    stream
        .write_all(
            b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\nGET /healthz HTTP/1.1\r\nx-slow: a\r\n",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
        .await
        .expect("the server closed the connection")
        .unwrap();
    let answer = String::from_utf8_lossy(&out);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// A client that sends a body too slowly (R.U.D.Y.): the handler stops waiting after
/// `server.body_read_timeout_secs` and answers 408 naming the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_too_slowly_gets_408_naming_the_limit() {
    let db = TestDb::new(Backend::Sqlite);
    let (token, hash) = writ::web::auth::new_token().unwrap();
    let mut settings = db.settings(&[("WRIT_SERVER__BODY_READ_TIMEOUT_SECS", "1")]);
    settings.metadata.feeders = vec![writ::settings::Feeder {
        name: "login-service".into(),
        token_sha256: hash,
    }];
    let app = spawn_with_settings(db, settings).await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let (answered_after, answer) = dribble(
        &addr,
        &format!(
            "POST /api/v1/ingest/ip-events HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
             content-type: text/csv\r\ncontent-length: 1000\r\n\r\nexternal_id,ip,port,at,kind\n"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("server.body_read_timeout_secs")
            && answer.contains("application/problem+json"),
        "{answer}"
    );
    assert!(
        answered_after >= Duration::from_millis(900) && answered_after < Duration::from_secs(3),
        "answered after {answered_after:?}"
    );

    // The same for a workspace form, which actix-web's form extractor reads (sign-in needs no
    // session): 408 naming the limit, as an HTML page.
    let (answered_after, answer) = dribble(
        &addr,
        "POST /login HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\n\
         content-length: 500\r\n\r\nusername=rita",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("server.body_read_timeout_secs") && answer.contains("text/html"),
        "{answer}"
    );
    assert!(
        answered_after >= Duration::from_millis(900) && answered_after < Duration::from_secs(3),
        "answered after {answered_after:?}"
    );
}

/// Sends `head` (and the start of a body), then one more body byte every 200 ms; returns when
/// the answer started (the close comes up to client_disconnect_timeout_secs later) and the
/// answer.
async fn dribble(addr: &str, head: &str) -> (Duration, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        let mut out = vec![0u8; 1];
        let _ = read.read_exact(&mut out).await;
        let first = started.elapsed();
        let _ = read.read_to_end(&mut out).await;
        (first, String::from_utf8_lossy(&out).into_owned())
    });
    write.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..40 {
        if reader.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if write.write_all(b"x").await.is_err() {
            break;
        }
    }
    tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("the server answered and closed")
        .unwrap()
}
