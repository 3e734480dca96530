//! HTTP wiring: the [`Application`] that binds, routes and runs the actix-web server.
//!
//! Handlers stay thin: parse input into domain types, call one service function, render.

pub mod api;
pub mod audit;
pub mod auth;
pub mod body;
pub mod client;
pub mod eevidence;
pub mod etsi;
pub mod extract;
pub mod health;
pub mod ingest;
pub mod keepalive;
pub mod methods;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod problem;
pub mod security;
pub mod tls;
pub mod ui;

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::KeepAlive;
use actix_web::http::StatusCode;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web};

use crate::audit::{AuditError, service as audit_service};
use crate::db::{Db, DbError, migrations};
use crate::settings::Settings;
use problem::Problem;

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Database(#[from] DbError),
    /// The audit log's signer could not be set up.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The jurisdiction policies do not load.
    #[error("policy files: {0}")]
    Policy(#[from] crate::policy::PolicyError),
    /// The package signing key could not be loaded or created.
    #[error("package signing key: {0}")]
    PackageKey(#[from] crate::disclosure::package::PackageError),
    /// The TLS certificate or key is unusable.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The client for Writ's outbound messages (HI-1 deliveries, e-Evidence calls) cannot be
    /// built: a file of `[etsi.outbound_tls]` is unusable.
    #[error("{0}")]
    OutboundClient(String),
    /// The listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// Address asked for.
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A built, bound, not yet running Writ server.
pub struct Application {
    port: u16,
    server: Server,
    db: Db,
    checkpointer: Option<tokio::task::JoinHandle<()>>,
    verifier: Option<tokio::task::JoinHandle<()>>,
    wal_checkpointer: Option<tokio::task::JoinHandle<()>>,
    jobs: tokio::task::JoinHandle<()>,
    mailer: tokio::task::JoinHandle<()>,
    webhooks: tokio::task::JoinHandle<()>,
    deliverer: tokio::task::JoinHandle<()>,
    eevidence_sender: tokio::task::JoinHandle<()>,
    body_retention: tokio::task::JoinHandle<()>,
    policies: std::sync::Arc<crate::policy::PolicySet>,
}

impl Application {
    /// Opens the database, applies pending migrations when configured, binds the listener
    /// (port 0 picks a free port) and builds the server.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        // First: a server that cannot prove its identity must not get as far as the database.
        let tls = if settings.server.tls.enabled() {
            Some(tls::server_config(&settings.server.tls)?)
        } else {
            None
        };
        // Likewise the client that authenticates Writ to the national e-Evidence system and
        // to HI-1 destinations: a bad certificate stops start-up, naming its setting.
        let outbound = crate::etsi::deliver::client(&settings.etsi)
            .map_err(|e| StartupError::OutboundClient(format!("{e:#}")))?;
        let db = Db::open_for_server(&settings.database)?;
        if settings.database.migrate_on_start {
            let applied = db.run(migrations::run_pending).await?;
            if !applied.is_empty() {
                tracing::info!(count = applied.len(), versions = ?applied, "applied database migrations");
            }
        }
        let signer = std::sync::Arc::new(audit_service::SignerCell::new(settings.audit.clone()));
        match signer.get(&db).await {
            Ok(_) => {}
            // A key in a PKCS#11 token may be unreachable for a while (token missing, locked):
            // serve, with /readyz naming the reason, and load the signer once it answers.
            Err(e @ AuditError::Key(_))
                if settings.audit.signing_key == crate::settings::KeyLocation::Pkcs11 =>
            {
                tracing::error!(error = %e, "the checkpoint key in the PKCS#11 token is not available; not ready until it is");
            }
            Err(e @ AuditError::EntryKey(_))
                if settings.audit.entry_key == crate::settings::KeyLocation::Pkcs11 =>
            {
                tracing::error!(error = %e, "the audit entry key in the PKCS#11 token is not available; not ready until it is");
            }
            // A key problem is configuration: say so now rather than serve without signing.
            Err(e @ (AuditError::Key(_) | AuditError::EntryKey(_))) => return Err(e.into()),
            // A database not migrated or not reachable yet: /readyz reports it; load later.
            Err(e) => tracing::warn!(error = %e, "audit signer not loaded yet"),
        }
        let migrated = db
            .run(migrations::status)
            .await
            .is_ok_and(|s| s.pending.is_empty());
        if migrated && settings.workspace.create_first_admin {
            let path = settings.workspace.initial_admin_password_file.clone();
            match db
                .run(move |conn| {
                    crate::staff::ensure_first_admin(conn, &path)
                        .map_err(|e| DbError::Setup(e.to_string()))
                })
                .await
            {
                Ok(Some(file)) => tracing::warn!(
                    file = %file.display(),
                    "no users existed: created the user `admin`; its password is in this file (mode 0600) and nowhere else"
                ),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not create the first admin"),
            }
        }
        if settings.mail.legal_team.is_empty() {
            tracing::warn!("{}", crate::settings::NO_LEGAL_TEAM);
        }
        let package_key = crate::disclosure::keys::signing_key(&settings.package)?;
        let retired_package_keys =
            crate::disclosure::keys::retired(&settings.package.signing_key_path)?;
        let policies = std::sync::Arc::new(crate::startup::load_policies(&settings.policy)?);
        tracing::info!(
            policy.set_id = policies.id(),
            "jurisdiction policies loaded"
        );
        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&address).map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                address: address.clone(),
                source,
            })?
            .port();
        let checkpointer = (settings.audit.checkpoint_interval_secs > 0)
            .then(|| tokio::spawn(audit_service::run_checkpointer(db.clone(), signer.clone())));
        let verifier = (settings.audit.verify_interval_secs > 0).then(|| {
            let mail = settings.mail.clone();
            let audit_settings_for_alert = settings.audit.clone();
            let alert: audit_service::Alert = std::sync::Arc::new(move |conn, problem| {
                let origin = audit_service::origin(&audit_settings_for_alert, conn)
                    .unwrap_or_else(|_| "writ".to_owned());
                crate::mail::notify(
                    conn,
                    &mail,
                    crate::mail::Recipients::Auditors,
                    &crate::mail::Notice::AuditVerificationFailed {
                        origin,
                        problem: problem.to_owned(),
                    },
                    chrono::Utc::now(),
                );
            });
            tokio::spawn(audit_service::run_verifier(
                db.clone(),
                signer.clone(),
                Duration::from_secs(settings.audit.verify_interval_secs),
                alert,
            ))
        });
        let wal_checkpointer = db.spawn_wal_checkpointer(Duration::from_secs(1));
        let webhooks = tokio::spawn(crate::mail::webhook::run_sender(
            db.clone(),
            settings.mail.webhooks.clone(),
            Duration::from_secs(settings.api.jobs_interval_secs),
        ));
        let mailer = tokio::spawn(crate::mail::run_sender(
            db.clone(),
            settings.mail.clone(),
            Duration::from_secs(settings.api.jobs_interval_secs),
        ));
        let deliverer = tokio::spawn(crate::etsi::deliver::run(
            db.clone(),
            crate::etsi::deliver::Sender {
                settings: settings.etsi.clone(),
                key: package_key.clone(),
                signer: signer.clone(),
                client: outbound.clone(),
                interval: Duration::from_secs(settings.api.jobs_interval_secs),
            },
        ));
        let eevidence_sender = tokio::spawn(crate::eevidence::outbox::run(
            db.clone(),
            crate::eevidence::outbox::Sender {
                settings: settings.etsi.clone(),
                key: package_key.clone(),
                client: outbound,
                interval: Duration::from_secs(settings.api.jobs_interval_secs),
            },
        ));
        let body_retention = tokio::spawn(crate::etsi::service::run_body_retention(
            db.clone(),
            settings.etsi.message_body_retention_days,
            Duration::from_secs(settings.api.jobs_interval_secs.max(60)),
        ));
        let jobs = tokio::spawn(crate::jobs::run_jobs(
            db.clone(),
            Duration::from_secs(settings.api.jobs_interval_secs),
            settings.package.retention_days,
            settings.mail.clone(),
        ));
        let tls_on = tls.is_some();
        let server = build_server(
            listener,
            tls,
            db.clone(),
            signer,
            policies.clone(),
            (
                ui::PackageKey(package_key),
                ui::RetiredPackageKeys(retired_package_keys),
            ),
            &settings,
        )
        .map_err(|source| StartupError::Bind { address, source })?;
        tracing::info!(
            host = %settings.server.host,
            port,
            tls = tls_on,
            backend = %db.backend(),
            "writ is listening"
        );
        Ok(Self {
            port,
            server,
            db,
            checkpointer,
            verifier,
            wal_checkpointer,
            jobs,
            mailer,
            webhooks,
            deliverer,
            eevidence_sender,
            body_retention,
            policies,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Records the loaded policy set in the audit log if it changed since it was last recorded
    /// (`writ serve` does this at every start); returns whether it was new.
    pub async fn record_policy_set(&self) -> Result<bool, AuditError> {
        let set = self.policies.clone();
        self.db
            .run(move |conn| crate::startup::record_policy_set(conn, &set))
            .await
    }

    /// The database handle the server uses.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Serves until SIGTERM or Ctrl-C, then lets in-flight requests finish (up to the
    /// configured grace period) before returning.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        for task in [self.checkpointer, self.verifier, self.wal_checkpointer]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        self.jobs.abort();
        self.mailer.abort();
        self.webhooks.abort();
        self.deliverer.abort();
        self.eevidence_sender.abort();
        self.body_retention.abort();
        result
    }
}

fn build_server(
    listener: TcpListener,
    tls: Option<rustls::ServerConfig>,
    db: Db,
    signer: std::sync::Arc<audit_service::SignerCell>,
    policies: std::sync::Arc<crate::policy::PolicySet>,
    (package_key, retired_package_keys): (ui::PackageKey, ui::RetiredPackageKeys),
    settings: &Settings,
) -> std::io::Result<Server> {
    let package_key = web::Data::new(package_key);
    let retired_package_keys = web::Data::new(retired_package_keys);
    let api_state = web::Data::new(api::ApiState::new(
        settings.api.clone(),
        policies.clone(),
        settings.deployment.clone(),
        settings.mail.clone(),
        &db,
    )?);
    let mail_settings = web::Data::new(settings.mail.clone());
    let etsi_config = web::Data::new(etsi::EtsiConfig(settings.etsi.clone()));
    let openapi_document = web::Data::new(openapi::OpenApiDocument(openapi::document()));
    let known_paths = web::Data::new(methods::KnownPaths::from_openapi(
        &<openapi::ApiDoc as utoipa::OpenApi>::openapi(),
    ));
    let policies = web::Data::from(policies);
    let deployment = web::Data::new(settings.deployment.clone());
    let workspace = web::Data::new(settings.workspace.clone());
    let transparency = web::Data::new(settings.transparency.clone());
    let package_settings = web::Data::new(settings.package.clone());
    let db = web::Data::new(db);
    let signer = web::Data::from(signer);
    let auditor_tokens = web::Data::new(auth::AuditorTokens::from_hex(
        &settings.audit.auditor_token_sha256,
    ));
    let feeder_tokens = web::Data::new(ingest::FeederTokens::from_settings(
        &settings.metadata.feeders,
    ));
    let metadata_settings = web::Data::new(settings.metadata.clone());
    // Per instance: every worker records into the same registry.
    let http_metrics = web::Data::new(metrics::HttpMetrics::default());
    let metrics_access = web::Data::new(metrics::MetricsAccess::from_settings(
        &settings.metrics,
        settings.api.trusted_proxy_hops,
    ));
    let security = web::Data::new(security::SecurityConfig::from_settings(&settings.server));
    let client_auth = web::Data::new(tls::ClientAuth::from_settings(&settings.server.tls));
    let form_limit = settings.server.form_limit_bytes;
    let body_secs = settings.server.body_read_timeout_secs;
    // Built per worker (FormConfig is not Send).
    let form_config = move || {
        web::FormConfig::default()
            .limit(form_limit)
            .error_handler(move |err, _req| form_error(err, form_limit, body_secs))
    };
    let request_timeout = Duration::from_secs(settings.server.client_request_timeout_secs);
    let disconnect_timeout = Duration::from_secs(settings.server.client_disconnect_timeout_secs);
    let json_limit = settings.server.json_limit_bytes;
    let mut server =
        HttpServer::new(move || {
            App::new()
                .wrap(
                    DefaultHeaders::new()
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("X-Frame-Options", "DENY"))
                        .add(("Referrer-Policy", "no-referrer"))
                        .add(("Cache-Control", "no-store")),
                )
                // Inside the security headers, so that a refusal carries them too.
                .wrap(from_fn(tls::require_pinned_peer))
                .wrap(from_fn(security::headers))
                .wrap(from_fn(middleware::request_context))
                // Outermost: times everything the other layers do too.
                .wrap(from_fn(metrics::record))
                // Around everything: a response ends when its body is dropped, after all layers.
                .wrap(from_fn(keepalive::track))
                .app_data(db.clone())
                .app_data(signer.clone())
                .app_data(auditor_tokens.clone())
                .app_data(feeder_tokens.clone())
                .app_data(policies.clone())
                .app_data(metadata_settings.clone())
                .app_data(api_state.clone())
                .app_data(deployment.clone())
                .app_data(workspace.clone())
                .app_data(transparency.clone())
                .app_data(package_settings.clone())
                .app_data(package_key.clone())
                .app_data(retired_package_keys.clone())
                .app_data(mail_settings.clone())
                .app_data(etsi_config.clone())
                .app_data(openapi_document.clone())
                .app_data(known_paths.clone())
                .app_data(http_metrics.clone())
                .app_data(metrics_access.clone())
                .app_data(security.clone())
                .app_data(client_auth.clone())
                .app_data(form_config())
                .app_data(web::JsonConfig::default().limit(json_limit).error_handler(
                    |err, _req| {
                        Problem::new(StatusCode::BAD_REQUEST, "invalid-json", "Invalid JSON body")
                            .detail(err.to_string())
                            .into()
                    },
                ))
                .app_data(web::PathConfig::default().error_handler(|err, _req| {
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        "invalid-path",
                        "Invalid path parameter",
                    )
                    .detail(err.to_string())
                    .into()
                }))
                .app_data(web::QueryConfig::default().error_handler(|err, _req| {
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        "invalid-query",
                        "Invalid query parameter",
                    )
                    .detail(err.to_string())
                    .into()
                }))
                .service(health::healthz)
                .service(health::readyz)
                .service(metrics::metrics)
                .service(audit::latest_checkpoint)
                .service(audit::checkpoint_key_file)
                .service(audit::entry_key_file)
                .service(audit::public_keys)
                .service(audit::sign_checkpoint)
                .service(audit::status)
                .service(audit::entry_bundle)
                .service(audit::hash_tile)
                .service(audit::inclusion_proof)
                .service(audit::consistency_proof)
                .service(audit::entries)
                .service(audit::export_range)
                .service(audit::view)
                .service(openapi::openapi_json)
                .service(openapi::docs_redirect)
                .service(openapi::docs_page)
                .service(openapi::docs_asset)
                .service(etsi::hi1)
                .service(eevidence::receive)
                .service(eevidence::package)
                .service(api::info)
                .service(api::submit)
                .service(api::order)
                .service(api::withdraw)
                .service(api::messages)
                .service(api::post_message)
                .service(api::disclosure)
                .service(api::rejection)
                .configure(ui::configure)
                .service(ingest::ingest)
                .default_service(web::to(methods::unrouted))
        })
        .shutdown_timeout(settings.server.shutdown_timeout_secs)
        // Against slowloris: a connection's first request head must arrive in time.
        .client_request_timeout(request_timeout)
        .client_disconnect_timeout(disconnect_timeout);
    if settings.server.workers > 0 {
        server = server.workers(settings.server.workers);
    }
    // Idle keep-alive connections neither pile up nor hold up a graceful shutdown.
    server = server.keep_alive(match settings.server.keep_alive_secs {
        0 => KeepAlive::Disabled,
        secs => KeepAlive::Timeout(Duration::from_secs(secs)),
    });
    // actix times only a connection's first request head: every later one must be complete
    // within the keep-alive idle time plus the head timeout after the previous response ended.
    let keepalive_limit = (settings.server.keep_alive_secs > 0)
        .then(|| Duration::from_secs(settings.server.keep_alive_secs) + request_timeout);
    let client_auth_on = settings.server.tls.client_auth();
    if keepalive_limit.is_some() || client_auth_on {
        server = server.on_connect(move |conn, data| {
            if let Some(limit) = keepalive_limit {
                keepalive::on_connect(conn, data, limit);
            }
            if client_auth_on {
                tls::on_connect(conn, data);
            }
        });
    }
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    };
    Ok(server.run())
}

/// A workspace form that does not parse: 413 naming the limit when it is too large, 408
/// naming the timeout when it came too slowly.
fn form_error(err: actix_web::error::UrlencodedError, limit: usize, secs: u64) -> actix_web::Error {
    use actix_web::error::{PayloadError, UrlencodedError};
    match err {
        UrlencodedError::Payload(PayloadError::Io(e))
            if e.kind() == std::io::ErrorKind::TimedOut =>
        {
            ui::UiError::TooSlow(format!(
                "The form did not arrive within {secs} seconds (server.body_read_timeout_secs)."
            ))
            .into()
        }
        UrlencodedError::Overflow { .. } => ui::UiError::TooLarge(format!(
            "The form is larger than {limit} bytes (server.form_limit_bytes)."
        ))
        .into(),
        // Other errors keep actix-web's answer (400, naming what did not parse).
        other => other.into(),
    }
}

/// The 413 problem for a body over `limit` bytes, naming the setting.
pub fn too_large(limit: usize, setting: &str) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
        "Request body too large",
    )
    .detail(format!(
        "the request body may be at most {limit} bytes ({setting})"
    ))
}
