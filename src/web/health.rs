//! Liveness and readiness probes for load balancers and orchestrators.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use serde::Serialize;

use crate::audit::service::SignerCell;
use crate::db::{Db, DbError, migrations};
use crate::web::problem::Problem;

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

/// `GET /healthz`: the process is up and serving HTTP. Touches nothing else.
#[get("/healthz")]
#[tracing::instrument(name = "healthz", skip_all)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

#[derive(Serialize)]
struct Ready {
    status: &'static str,
    backend: String,
    migrations_applied: usize,
    /// Configuration that works but loses something (e.g. no legal-team address).
    warnings: Vec<&'static str>,
}

/// `GET /readyz`: the database answers, its schema is exactly what this binary expects, and the
/// audit log can sign checkpoints.
/// 503 with a problem naming the reason otherwise, so a load balancer stops sending traffic.
#[get("/readyz")]
#[tracing::instrument(name = "readyz", skip_all)]
pub async fn readyz(
    db: web::Data<Db>,
    signer: web::Data<SignerCell>,
    mail: Option<web::Data<crate::settings::MailSettings>>,
    package_key: Option<web::Data<crate::web::ui::PackageKey>>,
) -> HttpResponse {
    let backend = db.backend().to_string();
    let checked = db
        .run(|conn| migrations::status(conn).map_err(Unready::from))
        .await;
    let not_ready = |detail: String| {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", "Not ready")
            .detail(detail)
            .response()
    };
    match checked {
        Err(Unready(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            not_ready(format!("database unreachable ({backend})"))
        }
        Ok(status) if !status.pending.is_empty() => not_ready(format!(
            "{} database migration(s) pending: {}; run `writ migrate`",
            status.pending.len(),
            status.pending.join(", ")
        )),
        Ok(status) if !status.unknown.is_empty() => not_ready(format!(
            "the database has migration(s) this binary does not know ({}); a newer Writ migrated it",
            status.unknown.join(", ")
        )),
        Ok(status) => {
            if let Some(problem) = keys_unavailable(&db, &signer, package_key).await {
                tracing::warn!(error = %problem, "readiness: a signing key is not available");
                return not_ready(problem);
            }
            HttpResponse::Ok().json(Ready {
                status: "ready",
                backend,
                migrations_applied: status.applied.len(),
                warnings: mail
                    .filter(|m| m.legal_team.is_empty())
                    .map(|_| vec![crate::settings::NO_LEGAL_TEAM])
                    .unwrap_or_default(),
            })
        }
    }
}

/// Why the checkpoint key, the audit entry key or the package key cannot sign now, if one
/// cannot: a key in a PKCS#11 token is asked (module, token, PIN, key), off the async workers.
async fn keys_unavailable(
    db: &Db,
    signer: &SignerCell,
    package_key: Option<web::Data<crate::web::ui::PackageKey>>,
) -> Option<String> {
    let (checkpoint_key, entry_key) = match signer.get(db).await {
        Ok(s) => (s.key().clone(), s.entry_signing_key()),
        Err(crate::audit::AuditError::Key(reason)) => {
            return Some(format!(
                "the audit log's checkpoint key is not available: {reason}"
            ));
        }
        Err(crate::audit::AuditError::EntryKey(reason)) => {
            return Some(format!(
                "the audit log's entry key is not available: {reason}"
            ));
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the audit signer is not available");
            return Some("the audit log's signing key is not available; see the logs".to_owned());
        }
    };
    let package_key = package_key.map(|k| k.0.clone());
    web::block(move || {
        if let Err(e) = checkpoint_key.probe() {
            return Some(format!(
                "the audit log's checkpoint key is not available: {e}"
            ));
        }
        // Without it no entry can be appended, so nothing that records anything can work.
        if let Err(e) = entry_key.probe() {
            return Some(format!("the audit log's entry key is not available: {e}"));
        }
        match package_key.map(|k| k.probe()) {
            Some(Err(e)) => Some(format!("the package signing key is not available: {e}")),
            _ => None,
        }
    })
    .await
    .unwrap_or_else(|e| Some(format!("the key check did not finish: {e}")))
}

/// Any database failure during the readiness check.
struct Unready(DbError);

impl From<DbError> for Unready {
    fn from(e: DbError) -> Self {
        Self(e)
    }
}
