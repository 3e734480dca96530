//! Transport trust: TLS to PostgreSQL (through Writ's rustls tunnel), mutual TLS on the
//! protected path prefixes of `writ serve` (pinned client certificates mapped to authorities),
//! and the outbound client that presents a client certificate. Every certificate is made here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use diesel::{Connection, PgConnection, RunQueryDsl};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use serde_json::Value;
use writ::db::{Db, DbError};
use writ::web::tls::PeerAuthority;

use crate::both_backends;
use crate::cli::writ_for;
use crate::helpers::{Backend, TestDb, postgres_admin_url, spawn_with_settings};

both_backends!(
    mutual_tls_guards_the_protected_prefixes_with_pinned_certificates,
    the_peer_authority_extractor_yields_the_pinned_authority,
);

/// A test CA that issues server and client certificates.
pub(crate) struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub(crate) pem: String,
}

/// A certificate and its key, as PEM, and the files they were written to.
pub(crate) struct Leaf {
    cert_pem: String,
    key_pem: String,
    pub(crate) cert_file: String,
    pub(crate) key_file: String,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    pub(crate) fn write(&self, dir: &Path, name: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, &self.pem).unwrap();
        path.display().to_string()
    }

    /// A certificate for `names` (DNS names or IP addresses), for a server or a client.
    pub(crate) fn issue(&self, dir: &Path, name: &str, names: &[&str], client: bool) -> Leaf {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let cert_file = dir.join(format!("{name}.crt"));
        let key_file = dir.join(format!("{name}.key"));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_file: cert_file.display().to_string(),
            key_file: key_file.display().to_string(),
        }
    }
}

impl Leaf {
    fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}\n{}", self.cert_pem, self.key_pem).as_bytes())
            .unwrap()
    }
}

fn out_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL over TLS
// ---------------------------------------------------------------------------------------------

/// Gives the local PostgreSQL a server certificate from `ca` for `localhost` only, and turns
/// TLS on. Plain connections keep working (`host` lines in pg_hba.conf match both). Needs the
/// test to run as root beside the server, as on developers' machines and in CI.
fn configure_postgres_tls(admin_url: &str, ca: &Ca, work: &Path) {
    let mut admin = PgConnection::establish(admin_url).expect("PostgreSQL admin connection");
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        setting: String,
    }
    let data_dir =
        diesel::sql_query("SELECT setting FROM pg_settings WHERE name = 'data_directory'")
            .get_result::<Setting>(&mut admin)
            .expect("the data directory (the admin URL must be a superuser's)")
            .setting;
    let server = ca.issue(work, "pg-server", &["localhost"], false);
    let data = PathBuf::from(&data_dir);
    let owner = std::fs::metadata(&data)
        .expect("the data directory is reachable (run as root beside PostgreSQL)");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for (from, to) in [
        (&server.cert_file, "writ-test-server.crt"),
        (&server.key_file, "writ-test-server.key"),
    ] {
        let target = data.join(to);
        std::fs::copy(from, &target).expect("write into the data directory (run as root)");
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&target, Some(owner.uid()), Some(owner.gid())).unwrap();
    }
    for statement in [
        "ALTER SYSTEM SET ssl_cert_file = 'writ-test-server.crt'",
        "ALTER SYSTEM SET ssl_key_file = 'writ-test-server.key'",
        "ALTER SYSTEM SET ssl_ca_file = ''",
        "ALTER SYSTEM SET ssl = on",
        "SELECT pg_reload_conf()",
    ] {
        diesel::sql_query(statement).execute(&mut admin).unwrap();
    }
}

fn tls_settings(db: &TestDb, url: &str, mode: &str, ca_file: &str) -> writ::settings::Settings {
    db.settings(&[
        ("WRIT_DATABASE__URL", url),
        ("WRIT_DATABASE__TLS__MODE", mode),
        ("WRIT_DATABASE__TLS__CA_FILE", ca_file),
        ("WRIT_DATABASE__CONNECT_TIMEOUT_SECS", "3"),
    ])
}

/// Whether the connection this pool hands out is encrypted, as the server sees it.
fn server_sees_tls(db: &Db) -> Result<bool, DbError> {
    #[derive(diesel::QueryableByName)]
    struct Ssl {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        ssl: bool,
    }
    let mut conn = db.conn()?;
    let row: Ssl = diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(&mut *conn)?;
    Ok(row.ssl)
}

/// Why no connection could be had with these settings.
fn conn_error(settings: &writ::settings::Settings) -> String {
    match Db::open(&settings.database).unwrap().conn() {
        Ok(_) => panic!("the connection should have been refused"),
        Err(e) => e.to_string(),
    }
}

fn with_host(url: &str, host: &str) -> String {
    url.replacen("127.0.0.1", host, 1)
}

/// verify-full succeeds through `writ migrate`, `writ doctor` and `writ serve`, and the server
/// sees TLS; a wrong CA or a wrong host name fails naming the cause; verify-ca checks the chain
/// only; require checks nothing; a URL asking libpq for TLS is refused with what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_verifies_the_ca_and_the_host_name() {
    let Some(admin) = postgres_admin_url() else {
        eprintln!("WRIT_TEST_POSTGRES_URL is not set: PostgreSQL TLS test not run");
        return;
    };
    assert!(
        admin.contains("127.0.0.1"),
        "the TLS test needs the admin URL's host to be 127.0.0.1 (it reaches the same server as localhost)"
    );
    let db = TestDb::new(Backend::Postgres);
    let work = db.dir().to_owned();
    let ca = Ca::new("Writ test PostgreSQL CA");
    let other_ca = Ca::new("Some other CA");
    let ca_file = ca.write(&work, "pg-ca.pem");
    let other_ca_file = other_ca.write(&work, "other-ca.pem");
    configure_postgres_tls(&admin, &ca, &work);

    let plain_url = db.env()[0].1.clone();
    let localhost_url = with_host(&plain_url, "localhost");

    // The reload takes effect for new connections; wait until the server shows our certificate.
    let full = tls_settings(&db, &localhost_url, "verify-full", &ca_file);
    let tunnel =
        writ::db::tls::PgTls::from_settings(full.database.url.expose(), &full.database.tls)
            .unwrap()
            .unwrap();
    let mut probe = Err(String::new());
    for _ in 0..50 {
        probe = tunnel.probe(Duration::from_secs(3));
        if probe.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let negotiated = probe.expect("the server presents the test's certificate after the reload");
    assert!(negotiated.protocol.starts_with("TLSv1_"), "{negotiated:?}");

    // verify-full: `writ migrate` over TLS, and the server sees an encrypted connection.
    let env = [
        ("WRIT_DATABASE__URL", localhost_url.as_str()),
        ("WRIT_DATABASE__TLS__MODE", "verify-full"),
        ("WRIT_DATABASE__TLS__CA_FILE", ca_file.as_str()),
        ("WRIT_DATABASE__CONNECT_TIMEOUT_SECS", "3"),
    ];
    let out = writ_for(&db, &env).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", out_text(&out));
    let pool = Db::open(&full.database).unwrap();
    assert!(server_sees_tls(&pool).unwrap(), "verify-full must encrypt");
    let plain = Db::open(&db.settings(&[]).database).unwrap();
    assert!(
        !server_sees_tls(&plain).unwrap(),
        "plain connections still work, unencrypted"
    );

    // `writ doctor` reports the TLS state.
    let out = writ_for(&db, &env).arg("doctor").output().unwrap();
    let text = out_text(&out);
    assert!(
        text.contains("ok    database TLS: verify-full to localhost:5432: TLSv1_")
            && text.contains("names the host"),
        "{text}"
    );
    let out = writ_for(&db, &[]).arg("doctor").output().unwrap();
    assert!(
        out_text(&out).contains("database TLS: off"),
        "{}",
        out_text(&out)
    );

    // `writ serve` runs on the TLS pool.
    let app = spawn_with_settings(TestDb::new(Backend::Sqlite), {
        let mut s = full.clone();
        s.database.migrate_on_start = true;
        s
    })
    .await;
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    assert!(server_sees_tls(&app.pool).unwrap());

    // A wrong CA: refused, and the message says so.
    let wrong_ca = tls_settings(&db, &localhost_url, "verify-full", &other_ca_file);
    let err = conn_error(&wrong_ca);
    assert!(
        err.contains("not signed by a CA in database.tls.ca_file") && err.contains("wrong CA"),
        "{err}"
    );
    let out = writ_for(
        &db,
        &[
            ("WRIT_DATABASE__URL", localhost_url.as_str()),
            ("WRIT_DATABASE__TLS__MODE", "verify-full"),
            ("WRIT_DATABASE__TLS__CA_FILE", other_ca_file.as_str()),
            ("WRIT_DATABASE__CONNECT_TIMEOUT_SECS", "2"),
        ],
    )
    .args(["migrate", "status"])
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(out_text(&out).contains("wrong CA"), "{}", out_text(&out));

    // A wrong host name (the certificate names localhost only): refused, naming the host.
    let wrong_host = tls_settings(&db, &plain_url, "verify-full", &ca_file);
    let err = conn_error(&wrong_host);
    assert!(
        err.contains("not valid for the host name `127.0.0.1`") && err.contains("wrong host name"),
        "{err}"
    );

    // verify-ca checks the chain but not the name; require checks nothing but still encrypts.
    let chain_only = tls_settings(&db, &plain_url, "verify-ca", &ca_file);
    assert!(server_sees_tls(&Db::open(&chain_only.database).unwrap()).unwrap());
    let chain_wrong = tls_settings(&db, &plain_url, "verify-ca", &other_ca_file);
    let err = conn_error(&chain_wrong);
    assert!(err.contains("wrong CA"), "{err}");
    let require = tls_settings(&db, &plain_url, "require", "");
    assert!(server_sees_tls(&Db::open(&require.database).unwrap()).unwrap());

    // Settings that cannot work are refused at start, naming the key.
    let out = writ_for(
        &db,
        &[
            ("WRIT_DATABASE__URL", localhost_url.as_str()),
            ("WRIT_DATABASE__TLS__MODE", "verify-full"),
        ],
    )
    .arg("migrate")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", out_text(&out));
    assert!(
        out_text(&out).contains("database.tls.ca_file"),
        "{}",
        out_text(&out)
    );
    let out = writ_for(
        &db,
        &[(
            "WRIT_DATABASE__URL",
            &format!("{plain_url}?sslmode=verify-full"),
        )],
    )
    .arg("migrate")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", out_text(&out));
    assert!(
        out_text(&out).contains("`sslmode`") && out_text(&out).contains("database.tls.mode"),
        "{}",
        out_text(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// Mutual TLS on `writ serve`
// ---------------------------------------------------------------------------------------------

/// A server certificate for localhost and two client CAs: the trusted one and another.
pub(crate) struct MtlsSetup {
    server_ca: Ca,
    pub(crate) client_ca: Ca,
    other_ca: Ca,
    pub(crate) server: Leaf,
    pub(crate) client_ca_file: String,
}

impl MtlsSetup {
    pub(crate) fn new(dir: &Path) -> Self {
        let server_ca = Ca::new("Writ test server CA");
        let client_ca = Ca::new("Member state client CA");
        let other_ca = Ca::new("Untrusted client CA");
        let server = server_ca.issue(dir, "writ-server", &["localhost"], false);
        let client_ca_file = client_ca.write(dir, "client-ca.pem");
        Self {
            server_ca,
            client_ca,
            other_ca,
            server,
            client_ca_file,
        }
    }

    fn settings(&self, db: &TestDb) -> writ::settings::Settings {
        db.settings(&[
            ("WRIT_SERVER__TLS__CERTIFICATE_FILE", &self.server.cert_file),
            ("WRIT_SERVER__TLS__PRIVATE_KEY_FILE", &self.server.key_file),
            ("WRIT_SERVER__TLS__CLIENT_CA_FILE", &self.client_ca_file),
            ("WRIT_SERVER__TLS__CLIENT_AUTH_PREFIXES", "/etsi/"),
        ])
    }

    pub(crate) fn client(&self, identity: Option<&Leaf>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.server_ca.pem.as_bytes()).unwrap(),
            );
        if let Some(leaf) = identity {
            builder = builder.identity(leaf.identity());
        }
        builder.build().unwrap()
    }
}

pub(crate) fn https(address: &str) -> String {
    format!("https://localhost:{}", address.rsplit(':').next().unwrap())
}

pub(crate) async fn problem_type(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (status, body["type"].as_str().unwrap_or("").to_owned())
}

async fn audit_events(db: &Db) -> Vec<String> {
    db.run(|conn| {
        let all = writ::audit::log::entries(conn, 0, 100_000).unwrap();
        Ok::<_, DbError>(
            all.into_iter()
                .map(|e| {
                    let leaf: Value = serde_json::from_str(&e.leaf).unwrap();
                    leaf["event"].as_str().unwrap_or("").to_owned()
                })
                .collect(),
        )
    })
    .await
    .unwrap()
}

/// On `/etsi/` (the protected prefix in this configuration): no certificate is 401, a
/// certificate from another CA fails the handshake, a trusted but unpinned one is 403, a pinned
/// one (by certificate or by key) passes to the handler, and a revoked pin or a suspended
/// authority is 403 again. Every other path answers without a certificate, as before.
async fn mutual_tls_guards_the_protected_prefixes_with_pinned_certificates(backend: Backend) {
    let db = TestDb::new(backend);
    let dir = db.dir().to_owned();
    let pki = MtlsSetup::new(&dir);
    let settings = pki.settings(&db);
    let pinned = pki.client_ca.issue(&dir, "authority-a", &[], true);
    let by_key = pki.client_ca.issue(&dir, "authority-a-2", &[], true);
    let unpinned = pki.client_ca.issue(&dir, "authority-b", &[], true);
    let foreign = pki.other_ca.issue(&dir, "intruder", &[], true);
    let app = spawn_with_settings(db, settings).await;
    let base = https(&app.address);
    let hi1 = format!("{base}/etsi/hi1");

    // Register the authority and pin its certificates through the CLI.
    let cli = |args: &[&str]| {
        let out = writ_for(&app.db, &[]).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", out_text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    cli(&[
        "authority",
        "add",
        "--id",
        "fr-pnf",
        "--name",
        "Parquet national financier",
        "--country",
        "FR",
        "--kind",
        "prosecutor",
        "--contact",
        "pnf@example.org",
    ]);
    cli(&[
        "authority",
        "pin",
        "add",
        "fr-pnf",
        "--certificate",
        &pinned.cert_file,
    ]);
    cli(&[
        "authority",
        "pin",
        "add",
        "fr-pnf",
        "--certificate",
        &by_key.cert_file,
        "--spki",
    ]);
    let listed = cli(&["authority", "pin", "list"]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(
        listed.contains("\tspki\t") && listed.contains("\tcertificate\t"),
        "{listed}"
    );

    // Everything else needs no certificate (browsers have none).
    let anonymous = pki.client(None);
    let res = anonymous
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = anonymous
        .get(format!("{base}/api/v1/info"))
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), 401);

    // No certificate on the protected prefix: 401 naming why.
    let res = anonymous.post(&hi1).body("<x/>").send().await.unwrap();
    assert_eq!(
        problem_type(res).await,
        (
            401,
            "urn:writ:problem:client-certificate-required".to_owned()
        )
    );

    // A certificate from a CA Writ does not trust: the handshake itself fails.
    let err = pki
        .client(Some(&foreign))
        .post(&hi1)
        .body("<x/>")
        .send()
        .await
        .expect_err("a certificate from another CA is refused");
    assert!(err.is_connect() || err.is_request(), "{err:?}");

    // Trusted CA, but pinned to nobody: 403.
    let res = pki
        .client(Some(&unpinned))
        .post(&hi1)
        .body("<x/>")
        .send()
        .await
        .unwrap();
    let (status, kind) = problem_type(res).await;
    assert_eq!(status, 403);
    assert!(kind.ends_with("client-certificate-not-pinned"), "{kind}");

    // Pinned by certificate and by key: the request reaches the HI-1 handler, which answers
    // for itself (the body is no HI-1 message).
    for leaf in [&pinned, &by_key] {
        let res = pki
            .client(Some(leaf))
            .post(&hi1)
            .body("<x/>")
            .send()
            .await
            .unwrap();
        let (status, kind) = problem_type(res).await;
        assert!(
            !kind.contains("client-certificate"),
            "a pinned certificate passes: {status} {kind}"
        );
    }

    // Revoking the pin refuses the very next request, on a connection already open too.
    let client = pki.client(Some(&pinned));
    let res = client.post(&hi1).body("<x/>").send().await.unwrap();
    assert!(!problem_type(res).await.1.contains("client-certificate"));
    let pin = writ::pki::fingerprints_of_pem_file("test", &pinned.cert_file)
        .unwrap()
        .certificate;
    cli(&["authority", "pin", "revoke", &pin]);
    let res = client.post(&hi1).body("<x/>").send().await.unwrap();
    let (status, kind) = problem_type(res).await;
    assert_eq!(status, 403, "{kind}");
    let out = writ_for(&app.db, &[])
        .args(["authority", "pin", "add", "fr-pnf", "--sha256", &pin])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a revoked pin is never reused");
    assert!(
        out_text(&out).contains("never reused"),
        "{}",
        out_text(&out)
    );

    // A suspended authority's pins do not pass either.
    cli(&["authority", "suspend", "fr-pnf"]);
    let res = pki
        .client(Some(&by_key))
        .post(&hi1)
        .body("<x/>")
        .send()
        .await
        .unwrap();
    assert_eq!(problem_type(res).await.0, 403);

    // Pins added and revoked are in the audit log.
    let events = audit_events(&app.pool).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "authority.tls_pin_added")
            .count(),
        2,
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "authority.tls_pin_revoked")
            .count(),
        1,
        "{events:?}"
    );
}

/// A handler behind the protected prefix extracts [`PeerAuthority`]: the authority and the pin
/// its certificate matched. Served by Writ's own TLS configuration, connection hook and
/// middleware, with a handler of the test's (the e-Evidence handlers are not there yet).
async fn the_peer_authority_extractor_yields_the_pinned_authority(backend: Backend) {
    let db = TestDb::new(backend);
    let dir = db.dir().to_owned();
    let pki = MtlsSetup::new(&dir);
    let settings = pki.settings(&db);
    let client_cert = pki.client_ca.issue(&dir, "authority-c", &[], true);
    let out = writ_for(&db, &[]).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", out_text(&out));
    for args in [
        &[
            "authority",
            "add",
            "--id",
            "de-bka",
            "--name",
            "Bundeskriminalamt",
            "--country",
            "DE",
            "--kind",
            "police",
            "--contact",
            "bka@example.org",
        ][..],
        &[
            "authority",
            "pin",
            "add",
            "de-bka",
            "--certificate",
            &client_cert.cert_file,
            "--spki",
        ],
    ] {
        let out = writ_for(&db, &[]).args(args).output().unwrap();
        assert!(out.status.success(), "{}", out_text(&out));
    }
    let pool = Db::open(&settings.database).unwrap();
    let config = writ::web::tls::server_config(&settings.server.tls).unwrap();
    let client_auth = web::Data::new(writ::web::tls::ClientAuth::from_settings(
        &settings.server.tls,
    ));
    let data = web::Data::new(pool);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(client_auth.clone())
            .wrap(actix_web::middleware::from_fn(
                writ::web::tls::require_pinned_peer,
            ))
            .route(
                "/etsi/whoami",
                web::get().to(|peer: PeerAuthority| async move {
                    format!("{} {} {:?}", peer.authority_id, peer.pin, peer.kind)
                }),
            )
            .route(
                "/open/whoami",
                web::get().to(|peer: PeerAuthority| async move { peer.authority_id }),
            )
    })
    .workers(1)
    .on_connect(writ::web::tls::on_connect)
    .listen_rustls_0_23(listener, config)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);

    let base = format!("https://localhost:{port}");
    let res = pki
        .client(Some(&client_cert))
        .get(format!("{base}/etsi/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let spki = writ::pki::fingerprints_of_pem_file("test", &client_cert.cert_file)
        .unwrap()
        .spki;
    assert_eq!(res.text().await.unwrap(), format!("de-bka {spki} Spki"));
    // Outside the protected prefixes nothing puts a peer in the request: the extractor refuses.
    let res = pki
        .client(Some(&client_cert))
        .get(format!("{base}/open/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(problem_type(res).await.0, 401);
    handle.stop(true).await;
}

// ---------------------------------------------------------------------------------------------
// The outbound client
// ---------------------------------------------------------------------------------------------

/// A rustls server configuration for `server` that requires a client certificate from
/// `client_ca_pem`.
pub(crate) fn mtls_server_config(server: &Leaf, client_ca_pem: &str) -> rustls::ServerConfig {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(client_ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(server.cert_pem.as_bytes())
        .map(Result::unwrap)
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).unwrap();
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .unwrap()
}

/// A small HTTPS server that requires a client certificate from `client_ca` and answers with
/// the SHA-256 of the one it got.
pub(crate) async fn mtls_echo_server(server: &Leaf, client_ca_pem: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = mtls_server_config(server, client_ca_pem);
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let peer = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| writ::pki::fingerprints(c.as_ref()).unwrap().certificate)
                    .unwrap_or_default();
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{peer}",
                    peer.len()
                );
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

/// `pki::outbound_client` presents the configured client certificate and trusts only the
/// configured CA; without the certificate, or trusting another CA, the call fails; bad
/// settings fail when the client is built, naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbound_client_presents_its_certificate_and_trusts_only_the_configured_ca() {
    use writ::pki::OutboundTls;
    let outbound_client =
        |s: &OutboundTls| writ::pki::outbound_client(s, std::time::Duration::from_secs(30));
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let peer_ca = Ca::new("Decentralised system CA");
    let writ_ca = Ca::new("Provider client CA");
    let stranger_ca = Ca::new("Unrelated CA");
    let server = peer_ca.issue(dir, "national-system", &["localhost"], false);
    let writ_client = writ_ca.issue(dir, "writ-provider", &[], true);
    let port = mtls_echo_server(&server, &writ_ca.pem).await;
    let url = format!("https://localhost:{port}/outcome");
    let settings = OutboundTls {
        ca_file: peer_ca.write(dir, "peer-ca.pem"),
        certificate_file: writ_client.cert_file.clone(),
        private_key_file: writ_client.key_file.clone(),
    };

    let client = outbound_client(&settings).unwrap();
    let res = client.post(&url).body("x").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let expected = writ::pki::fingerprints_of_pem_file("test", &writ_client.cert_file)
        .unwrap()
        .certificate;
    assert_eq!(
        res.text().await.unwrap(),
        expected,
        "the server saw Writ's certificate"
    );

    // Without a client certificate the server refuses the handshake.
    let anonymous = outbound_client(&OutboundTls {
        ca_file: settings.ca_file.clone(),
        ..OutboundTls::default()
    })
    .unwrap();
    assert!(anonymous.post(&url).body("x").send().await.is_err());

    // Trusting another CA, Writ refuses the server.
    let distrustful = outbound_client(&OutboundTls {
        ca_file: stranger_ca.write(dir, "stranger-ca.pem"),
        ..settings.clone()
    })
    .unwrap();
    let err = distrustful.post(&url).send().await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");

    // With mutual TLS configured, plain http:// is refused rather than sent without TLS.
    let err = client
        .post(format!("http://localhost:{port}/outcome"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_builder() || err.is_request(), "{err:?}");

    // Bad settings name the setting at build time.
    let err = outbound_client(&OutboundTls {
        private_key_file: String::new(),
        ..settings.clone()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("etsi.outbound_tls.private_key_file"), "{err}");
    let err = outbound_client(&OutboundTls {
        ca_file: dir.join("missing.pem").display().to_string(),
        ..settings.clone()
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("etsi.outbound_tls.ca_file") && err.contains("missing.pem"),
        "{err}"
    );
    let err = outbound_client(&OutboundTls {
        private_key_file: writ_client.cert_file.clone(),
        ..settings.clone()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("etsi.outbound_tls.private_key_file"), "{err}");
}
