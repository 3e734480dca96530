//! The bugs a walkthrough of the workspace found (issue 19), each shown over HTTP as a browser
//! without JavaScript sees it.

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{Backend, spawn_app};
use crate::workspace::{Browser, PASSWORD, add_users};

both_backends!(the_audit_pages_verify_instructions_work_as_written,);

/// Every `<a href="..." download="NAME">` of a page, as (href, NAME).
fn downloads(page: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(at) = rest.find("<a href=\"") {
        rest = &rest[at + 9..];
        let href = rest[..rest.find('"').unwrap()].to_owned();
        let tag = &rest[..rest.find('>').unwrap()];
        if let Some(d) = tag.find("download=\"") {
            let name = &tag[d + 10..];
            out.push((href, name[..name.find('"').unwrap()].to_owned()));
        }
    }
    out
}

/// Bug 1: the files the audit page offers, saved under the names it gives them, are what the
/// command it prints accepts: run exactly as written, `writ audit verify` says OK.
async fn the_audit_pages_verify_instructions_work_as_written(backend: Backend) {
    let app = spawn_app(backend).await;
    add_users(&app).await;
    assert_eq!(
        app.post_as_auditor("/audit/checkpoint").await.status(),
        StatusCode::OK
    );
    let mut olga = Browser::new(&app);
    olga.sign_in("olga", PASSWORD).await;
    let (status, page, _) = olga.get("/audit-log").await;
    assert_eq!(status, StatusCode::OK);
    let start = page
        .find("<code class=\"verify-command\">")
        .expect("the page prints the command to run");
    let command = &page[start + 29..];
    let command = command[..command.find("</code>").unwrap()].to_owned();
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(&words[..3], ["writ", "audit", "verify"], "{command}");

    let folder = tempfile::tempdir().unwrap();
    for (href, name) in downloads(&page) {
        let (status, body, _) = olga.get(&href).await;
        assert_eq!(status, StatusCode::OK, "{href}");
        std::fs::write(folder.path().join(&name), body).unwrap();
    }
    for w in &words[3..] {
        if !w.starts_with("--") {
            assert!(
                folder.path().join(w).exists(),
                "the command names {w}, which the page does not offer"
            );
        }
    }
    let out = crate::cli::writ_command()
        .current_dir(folder.path())
        .args(&words[1..])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.starts_with("OK: entries 0.."), "{said}");
    assert!(said.contains("OK: consistent with your saved checkpoint"), "{said}");
    assert!(said.contains("authenticators checked"), "{said}");
}
