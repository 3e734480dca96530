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
        Ok(_) if signer.get(&db).await.is_err() => {
            tracing::warn!("readiness: the audit signer is not available");
            not_ready("the audit log's signing key is not available; see the logs".to_owned())
        }
        Ok(status) => HttpResponse::Ok().json(Ready {
            status: "ready",
            backend,
            migrations_applied: status.applied.len(),
            warnings: mail
                .filter(|m| m.legal_team.is_empty())
                .map(|_| vec![crate::settings::NO_LEGAL_TEAM])
                .unwrap_or_default(),
        }),
    }
}

/// Any database failure during the readiness check.
struct Unready(DbError);

impl From<DbError> for Unready {
    fn from(e: DbError) -> Self {
        Self(e)
    }
}
