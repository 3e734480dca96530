//! Issue 19, the hand-over of a released package by the legal team: the package itself, a
//! readable cover letter and a records certificate signed with the package key, checked
//! offline with `writ package verify --certificate`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Backend, TestApp};
use crate::orders::{Api, ORDER, PARIS, json_of, submission};
use crate::workspace::{Browser, PASSWORD, add_users, seed_alice};

both_backends!(the_legal_team_hands_over_a_released_package_with_a_letter_and_a_certificate,);

/// A GET as `browser`, with the body's exact bytes.
async fn bytes(browser: &Browser, path: &str) -> (StatusCode, Vec<u8>, String) {
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}{path}", browser.base))
        .header("cookie", browser.cookie_header())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let disposition = resp
        .headers()
        .get("content-disposition")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, resp.bytes().await.unwrap().to_vec(), disposition)
}

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

/// `writ package verify PACKAGE --key KEY [--certificate CERT]`: success and the output.
fn cli_verify(dir: &std::path::Path, certificate: Option<&[u8]>) -> (bool, String) {
    let mut cmd = crate::cli::writ_command();
    cmd.arg("package")
        .arg("verify")
        .arg(dir.join("package.tar"))
        .arg("--key")
        .arg(dir.join("key.pem"));
    if let Some(cert) = certificate {
        std::fs::write(dir.join("certificate.txt"), cert).unwrap();
        cmd.arg("--certificate").arg(dir.join("certificate.txt"));
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The package goes to reviewers and approvers only (it holds the records); the cover letter
/// and the certificate, which hold none, to every role that reads orders (auditors too), never
/// to an admin. The letter names the reference, the authority, the instrument, what is
/// enclosed and what was withheld and why, and no record; the certificate says who produced
/// the records, from which systems and when, verifies offline with the published package key
/// beside the package, and fails on any flipped byte or beside another package. Downloads and
/// certificates are audited; nothing is served before the release.
async fn the_legal_team_hands_over_a_released_package_with_a_letter_and_a_certificate(
    backend: Backend,
) {
    let api = Api::start(
        backend,
        &[("WRIT_PACKAGE__PROVIDER_NAME", "Example Messaging Ltd")],
    )
    .await;
    add_users(&api.app).await;
    seed_alice(&api.app).await;
    let (_, created) = json_of(api.submit(PARIS, &submission(ORDER)).await).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let mut browsers = Vec::new();
    for user in ["rita", "alex", "olga", "adam"] {
        let mut b = Browser::new(&api.app);
        assert_eq!(b.sign_in(user, PASSWORD).await, StatusCode::SEE_OTHER);
        browsers.push((user, b));
    }
    let package = format!("/orders/{id}/release/package.tar");
    let letter = format!("/orders/{id}/release/cover-letter.txt");
    let certificate = format!("/orders/{id}/release/certificate.txt");

    // Nothing to hand over before the release, and nothing offered on the order page.
    for path in [&package, &letter, &certificate] {
        assert_eq!(bytes(&browsers[0].1, path).await.0, StatusCode::NOT_FOUND);
    }
    let (_, page, _) = browsers[0].1.get(&format!("/orders/{id}")).await;
    assert!(!page.contains("/release/certificate.txt"));
    assert!(
        leaves_of(&api.app, "order.certificate_issued")
            .await
            .is_empty()
    );

    crate::access::release(&api.app, &id).await;
    let (_, page, _) = browsers[0].1.get(&format!("/orders/{id}")).await;
    assert!(
        page.contains(&package) && page.contains(&letter) && page.contains(&certificate),
        "{page}"
    );
    let (_, page, _) = browsers[2].1.get(&format!("/orders/{id}")).await;
    assert!(
        page.contains(&certificate) && !page.contains(&package),
        "an auditor is offered no records: {page}"
    );

    // Who gets what.
    for (user, b) in &browsers {
        let records = ["rita", "alex"].contains(user);
        let reads = *user != "adam";
        let (status, _, _) = bytes(b, &package).await;
        assert_eq!(
            status == StatusCode::OK,
            records,
            "{user}: package {status}"
        );
        if !records {
            assert_eq!(status, StatusCode::FORBIDDEN, "{user}");
        }
        for path in [&letter, &certificate] {
            let (status, _, _) = bytes(b, path).await;
            assert_eq!(status == StatusCode::OK, reads, "{user}: {path} {status}");
        }
    }
    let anonymous = Browser::new(&api.app);
    assert_ne!(bytes(&anonymous, &certificate).await.0, StatusCode::OK);
    assert_ne!(bytes(&anonymous, &package).await.0, StatusCode::OK);

    // The package, as the authority gets it, verifies with the published key.
    let (_, tar, disposition) = bytes(&browsers[0].1, &package).await;
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let pem = reqwest::get(format!("{}/packages/public-key", api.app.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let key = writ::disclosure::keys::parse_public_pem(&pem).unwrap();
    let verified = writ::disclosure::package::verify(&tar, &key).unwrap();
    assert_eq!(verified.manifest.order_id, id);
    assert!(verified.audit_proof.is_some());

    // The cover letter: reference, authority, instrument, what is enclosed, what was withheld
    // and why; no record.
    let (_, text, disposition) = bytes(&browsers[2].1, &letter).await;
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let text = String::from_utf8(text).unwrap();
    for expected in [
        "Example Messaging Ltd",
        "Your reference: PR-2026-0042",
        "To: fr-parquet-paris (fr-parquet-paris, FR)",
        "European Production Order",
        "manifest.json",
        "records.json",
        "subscriber: 2 record(s)",
        "identification: 1 record(s)",
        "Nothing the order asked for was withheld.",
        "records certificate",
        verified.manifest_sha256.as_str(),
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} not in the letter:\n{text}"
        );
    }
    for record in ["u-alice", "203.0.113.7", "+33612345678", "alice"] {
        assert!(!text.contains(record), "{record} in the letter:\n{text}");
    }

    // The certificate: who, which systems, when; verifies beside the package.
    let (_, cert, _) = bytes(&browsers[2].1, &certificate).await;
    let cert_text = String::from_utf8(cert.clone()).unwrap();
    for expected in [
        "RECORDS CERTIFICATE",
        "provider: Example Messaging Ltd",
        "reference: PR-2026-0042",
        "approved for release by alex and bea",
        "system: accounts import from test (2 records",
        "system: ip-events import from test (2 records",
        "gathered-at: ",
        "released-at: ",
        "records: subscriber 2",
    ] {
        assert!(
            cert_text.contains(expected),
            "{expected:?} not in:\n{cert_text}"
        );
    }
    for record in ["u-alice", "203.0.113.7", "+33612345678", "alice"] {
        assert!(!cert_text.contains(record), "{record} in the certificate");
    }
    let checked = writ::disclosure::certificate::verify(&cert, &key).unwrap();
    writ::disclosure::certificate::matches_package(&checked, &verified).unwrap();
    // The same release gives the same certificate.
    assert_eq!(bytes(&browsers[0].1, &certificate).await.1, cert);

    // Offline, as documented.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("package.tar"), &tar).unwrap();
    std::fs::write(dir.path().join("key.pem"), &pem).unwrap();
    let (ok, out) = cli_verify(dir.path(), Some(&cert));
    assert!(ok && out.contains("OK: certificate verified"), "{out}");
    // A flipped byte anywhere in the certificate fails.
    for at in [
        cert_text.find("gathered-at: ").unwrap() + 14,
        cert_text.find("system: ").unwrap() + 9,
        cert.len() - 5,
    ] {
        let mut bad = cert.clone();
        bad[at] ^= 0x01;
        assert!(writ::disclosure::certificate::verify(&bad, &key).is_err());
        let (ok, out) = cli_verify(dir.path(), Some(&bad));
        assert!(
            !ok && out.contains("certificate verification FAILED"),
            "byte {at}: {out}"
        );
    }

    // Beside another package, the certificate fails.
    let mut other: Value = serde_json::from_str(ORDER).unwrap();
    other["reference"] = "PR-2026-0043".into();
    let (_, created) = json_of(api.submit(PARIS, &submission(&other.to_string())).await).await;
    let other_id = created["id"].as_str().unwrap().to_owned();
    // Narrowed before its release: its letter says what was withheld and why.
    let alex = &mut browsers[1].1;
    let csrf = alex.session_csrf().await;
    let (status, body, _) = alex
        .post(
            &format!("/orders/{other_id}/narrow"),
            &[
                ("csrf", &csrf),
                ("keep", "subscriber.user_id"),
                ("reason", "proportionality"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    crate::access::release(&api.app, &other_id).await;
    let (_, narrowed, _) = bytes(
        &browsers[2].1,
        &format!("/orders/{other_id}/release/cover-letter.txt"),
    )
    .await;
    let narrowed = String::from_utf8(narrowed).unwrap();
    assert!(
        narrowed.contains("released user_id")
            && narrowed.contains("username: withheld, because")
            && narrowed.contains("The order was narrowed before release")
            && narrowed.contains("proportionality"),
        "{narrowed}"
    );
    let (_, other_tar, _) = bytes(
        &browsers[1].1,
        &format!("/orders/{other_id}/release/package.tar"),
    )
    .await;
    std::fs::write(dir.path().join("package.tar"), &other_tar).unwrap();
    let (ok, out) = cli_verify(dir.path(), Some(&cert));
    assert!(
        !ok && out.contains("does not describe this package"),
        "{out}"
    );

    // Audited: each package download by its staff member, each certificate with its hash.
    let downloads = leaves_of(&api.app, "order.package_downloaded").await;
    assert!(
        downloads
            .iter()
            .any(|l| l["order"] == id.as_str() && l["actor"]["id"] == "rita"),
        "{downloads:?}"
    );
    let issued = leaves_of(&api.app, "order.certificate_issued").await;
    // rita, alex and olga in the role loop, then olga and rita again: the same bytes each time.
    let issuers: Vec<&str> = issued
        .iter()
        .map(|l| l["actor"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(issuers, ["rita", "alex", "olga", "olga", "rita"]);
    for l in &issued {
        assert_eq!(l["order"], id.as_str());
        assert_eq!(
            l["refs"]["certificate_sha256"],
            writ::digest::sha256_hex(&cert).as_str()
        );
        assert_eq!(
            l["refs"]["manifest_sha256"],
            verified.manifest_sha256.as_str()
        );
    }
}
