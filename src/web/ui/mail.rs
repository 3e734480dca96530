//! The mail outbox.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use chrono::Utc;

use super::session::{CsrfForm, Frame};
use super::{Signed, UiError, html, see_other};
use crate::db::Db;
use crate::staff::Permission;

#[derive(Template)]
#[template(path = "ui/outbox.html")]
struct OutboxPage {
    frame: Frame,
    messages: Vec<crate::mail::OutboxMessage>,
    /// Set while `mail.legal_team` is empty.
    warning: Option<&'static str>,
}

impl OutboxPage {
    fn when(&self, micros: &i64) -> String {
        crate::metadata::normalize::from_micros(*micros)
            .format("%Y-%m-%d %H:%M UTC")
            .to_string()
    }
}

pub(super) fn mail_error(e: crate::mail::MailError) -> UiError {
    match e {
        crate::mail::MailError::NotFound(_) => UiError::NotFound,
        crate::mail::MailError::Conflict(m) => UiError::Conflict(m),
        other => {
            tracing::error!(error = %other, "outbox request failed");
            UiError::Internal
        }
    }
}

/// `GET /mail`: the outbox.
#[get("/mail")]
pub async fn outbox(
    signed: Signed,
    db: web::Data<Db>,
    mail: web::Data<crate::settings::MailSettings>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ViewMail)?.clone();
    let messages = db
        .run(|conn| Ok::<_, crate::db::DbError>(crate::mail::list(conn, None, 200)))
        .await?
        .map_err(mail_error)?;
    Ok(html(
        StatusCode::OK,
        &OutboxPage {
            frame: Frame { staff },
            messages,
            warning: mail
                .legal_team
                .is_empty()
                .then_some(crate::settings::NO_LEGAL_TEAM),
        },
    ))
}

/// `POST /mail/{id}/retry`: a failed message back into the queue.
#[post("/mail/{id}/retry")]
pub async fn retry_mail(
    signed: Signed,
    id: web::Path<i64>,
    form: web::Form<CsrfForm>,
    db: web::Data<Db>,
) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ViewMail)?.clone();
    signed.check_csrf(&form.csrf)?;
    let id = id.into_inner();
    db.run(move |conn| {
        Ok::<_, crate::db::DbError>(crate::mail::retry(conn, &staff.actor(), id, Utc::now()))
    })
    .await?
    .map_err(mail_error)?;
    Ok(see_other("/mail"))
}
