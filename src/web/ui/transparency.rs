//! The transparency report in the workspace (administrators and auditors): the same report as
//! `writ transparency report`, for a chosen period, and its folder as one tar file.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{HttpResponse, get, web};
use askama::Template;
use chrono::{Datelike, Utc};
use serde::Deserialize;

use super::session::Frame;
use super::{Signed, UiError, html};
use crate::audit::service::SignerCell;
use crate::db::Db;
use crate::settings::TransparencySettings;
use crate::staff::Permission;
use crate::transparency::{self, Period, TransparencyError, publish};

#[derive(Template)]
#[template(path = "ui/transparency.html")]
struct TransparencyPage {
    frame: Frame,
    from: String,
    to: String,
    /// The report's body (tables and SVG charts), already escaped by the renderer.
    body: Option<String>,
    entries: u64,
}

/// The chosen period.
#[derive(Debug, Deserialize)]
pub struct PeriodQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

fn period_of(q: &PeriodQuery) -> Result<Period, UiError> {
    let from = Period::parse_date("from", &q.from).map_err(UiError::BadRequest)?;
    let to = Period::parse_date("to", &q.to).map_err(UiError::BadRequest)?;
    Period::new(from, to).map_err(|e| UiError::BadRequest(e.replace("--", "")))
}

impl From<TransparencyError> for UiError {
    fn from(e: TransparencyError) -> Self {
        match e {
            TransparencyError::Malformed(m) => UiError::Conflict(m),
            TransparencyError::Unverified(f) => {
                tracing::error!(error = %f, "transparency report refused: the audit log does not verify");
                UiError::Conflict(format!(
                    "the audit log does not verify, so no report is built across it: {f}"
                ))
            }
            other => {
                tracing::error!(error = %other, "transparency report failed");
                UiError::Internal
            }
        }
    }
}

async fn build(
    db: &Db,
    cell: &SignerCell,
    rules: &TransparencySettings,
    period: Period,
) -> Result<publish::Built, UiError> {
    let signer = cell.get(db).await.map_err(|e| {
        tracing::error!(error = %e, "no audit signer");
        UiError::Internal
    })?;
    let rules = rules.clone();
    let built = db
        .run(move |conn| {
            Ok::<_, crate::db::DbError>(transparency::build_from_db(
                conn,
                &signer,
                period,
                rules,
                Utc::now(),
            ))
        })
        .await??;
    Ok(built)
}

/// `GET /transparency`: the form, and with `from` and `to` the report for that period.
#[get("/transparency")]
pub async fn report(
    signed: Signed,
    query: web::Query<PeriodQuery>,
    db: web::Data<Db>,
    cell: web::Data<SignerCell>,
    rules: web::Data<TransparencySettings>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::Transparency)?.clone();
    let q = query.into_inner();
    let today = Utc::now().date_naive();
    if q.from.is_empty() && q.to.is_empty() {
        let first = today.with_day(1).unwrap_or(today);
        return Ok(html(
            StatusCode::OK,
            &TransparencyPage {
                frame: Frame { staff },
                from: first.format("%Y-%m-%d").to_string(),
                to: today.format("%Y-%m-%d").to_string(),
                body: None,
                entries: 0,
            },
        ));
    }
    let period = period_of(&q)?;
    let built = build(&db, &cell, &rules, period).await?;
    Ok(html(
        StatusCode::OK,
        &TransparencyPage {
            frame: Frame { staff },
            from: period.from.format("%Y-%m-%d").to_string(),
            to: period.to.format("%Y-%m-%d").to_string(),
            body: Some(transparency::render::body(&built.report)),
            entries: built.entries,
        },
    ))
}

/// `GET /transparency/report.tar`: the report's folder for the period, as one tar file.
#[get("/transparency/report.tar")]
pub async fn download(
    signed: Signed,
    query: web::Query<PeriodQuery>,
    db: web::Data<Db>,
    cell: web::Data<SignerCell>,
    rules: web::Data<TransparencySettings>,
) -> Result<HttpResponse, UiError> {
    signed.require(Permission::Transparency)?;
    let period = period_of(&query.into_inner())?;
    let built = build(&db, &cell, &rules, period).await?;
    let tar = publish::tar(&built.report)?;
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/x-tar"))
        .insert_header((
            CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"transparency-{}-{}.tar\"",
                period.from, period.to
            ),
        ))
        .body(tar))
}
